"""How many connections one server keeps open, and from whom: the gate the console and the metrics endpoint share.

Bookkeeping only, no I/O: a server tells ``Gate`` of each connection it accepts (``admit``), serves (``used``) and
closes (``leave``); the gate closes one through the connection's own ``evict``. What makes a connection ``idle`` (no
request in hand) is the server's to say.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Protocol


class Held(Protocol):
    """One open connection, as the gate sees it."""

    @property
    def peer(self) -> str:
        """The client it counts against (``client_address``)."""
        ...

    def idle(self) -> bool:
        """Whether no request is in hand: it may be closed for a new connection and nothing is cut."""
        ...

    def evict(self) -> None:
        """Close at once, for a new connection."""
        ...


class Gate:
    """The connections one server keeps open: at most ``overall``, and ``per_address`` from one client address.

    A connection without a request in hand (``Held.idle``) gives way: when a new connection finds a cap reached, an
    idle connection is closed for it; only when none may be is the new connection closed instead. Past
    ``per_address``, one of its own address's. Past ``overall``, one of the address holding the most connections,
    more than the newcomer's holds (else one of the newcomer's own): a flood of new connections from a few
    addresses, however fast it turns over, displaces its own, never those of a client holding fewer (an auditor
    whose request is slow to arrive over a long link, a health check from this machine). Of an address, the one
    used longest ago. So idle connections never keep a request out, and a request in hand is never cut: how many
    of those there are is the server's to bound. An IPv6 client counts by its /64, which one host holds whole
    (``client_address``).

    Why: a single cap on open connections, idle or not, let whoever could reach the port hold it with connections
    that sent nothing, opened again as the request deadline closed them, and every other client was refused (the
    console's auditors; the broker's /readyz health checks)."""

    def __init__(self, overall: int, per_address: int) -> None:
        self.overall, self.per_address = overall, per_address
        self._open: dict[Held, None] = {}  # in the order last used: the longest ago first
        self._by_address: Counter[str] = Counter()

    def admit(self, conn: Held) -> bool:
        """Whether ``conn`` may be served (it then counts), having closed an idle connection for it where a cap
        was reached; False when every connection under that cap has a request in hand."""
        if self._by_address[conn.peer] >= self.per_address and not self._evict(conn.peer):
            return False
        if len(self._open) >= self.overall and not self._evict_for(conn.peer):
            return False
        self._open[conn] = None
        self._by_address[conn.peer] += 1
        return True

    def used(self, conn: Held) -> None:
        """``conn`` has answered a request: it is the last to be closed for a new one."""
        if conn in self._open:
            del self._open[conn]
            self._open[conn] = None

    def leave(self, conn: Held) -> None:
        """``conn`` is closed, or closing: it no longer counts."""
        if conn in self._open:
            del self._open[conn]
            self._by_address[conn.peer] -= 1
            if not self._by_address[conn.peer]:
                del self._by_address[conn.peer]

    def _evict_for(self, peer: str) -> bool:
        """Close an idle connection for a newcomer from ``peer``: of the address holding the most connections, if it
        holds more than ``peer`` does, else of ``peer`` itself (``Gate``); False when there is none."""
        mine = self._by_address[peer]
        for address, held in self._by_address.most_common():
            if held <= mine:
                break
            if self._evict(address):
                return True
        return self._evict(peer)

    def _evict(self, peer: str | None) -> bool:
        """Close the idle connection used longest ago (of ``peer``, when given); False when there is none."""
        found = next((c for c in self._open if (peer is None or c.peer == peer) and c.idle()), None)
        if found is None:
            return False
        self.leave(found)
        found.evict()
        return True


def client_address(address: str) -> str:
    """What ``Gate`` counts a client by: its IP address, or for IPv6 its /64 (one host is given a whole one)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
