"""How many requests one console account may make: a token bucket per account, and a tally of those refused.

Every request a signed-in auditor makes is written to the query log before it is answered: one Kafka transaction,
kept for the audit's retention, and the log has one writer, so each waits for the one before. Nothing else bounds
how fast one account asks, so one account could fill the log and keep every other auditor's pages waiting. Each
account is therefore given ``per_minute`` requests a minute, up to ``burst`` at once (a bucket of ``burst``
tokens, refilled at ``per_minute`` a minute). A request past that is refused (429) unrecorded, and tallied: the
refusals of one account are written as one summary record per ``window_s`` (``Console.summarise``), so a flood
still shows in the audit without filling it.

A rate bounds how often an account asks, not how long what it asked holds the console: an export streams for as
long as its client reads a trickle (up to ``pages.EXPORT_DEADLINE_S``), holding a connection and a snapshot of the
index, and a few a minute from a handful of addresses held every connection the server has, keeping every other
auditor out. So each account may also have only ``MAX_AT_ONCE`` requests being answered at once, and of those only
``MAX_EXPORTS`` exports (``Holds``); one past either is refused (429) and tallied with the account's other refusals.

Pure: no clock of its own (each call is given the time), no I/O. Accounts are counted by name: a session is found
before the budget is asked, so only real accounts are ever held, and an account's several sessions share one budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from puente.wire import iso_utc


@dataclass(frozen=True)
class Refusals:
    """Requests of one account refused over its budget: how many, the first and the last (one summary record)."""

    account: str
    scope: str
    count: int
    first: datetime
    last: datetime

    def params(self) -> dict[str, Any]:
        """The summary record's parameters: how many were refused, from when until when."""
        return {"refused": self.count, "from": iso_utc(self.first), "until": iso_utc(self.last)}


MAX_AT_ONCE = 4
"""Requests of one account being answered at once, exports included, whatever their rate: what an auditor's browser
needs (a page or two, an export), and a small share of the server's connections (``server.MAX_CONNECTIONS``), so
that no one account, from however many addresses, can hold them all. A request is being answered until its answer
has left the server or its connection is gone (``core.Holding``): an answer's tail, waiting in the connection's
buffer for a client that reads a trickle, keeps the connection busy, and so counts."""
MAX_EXPORTS = 2
"""Of those, CSV exports streaming at once: each holds a snapshot of the index for as long as its download lasts,
and two still leave the account's other requests room for its pages."""


class Holds:
    """What each account has in hand now (module docstring): requests being answered, and exports among them.
    Every ``take`` that succeeds is to be matched by one ``give_back`` when the request ends, however it ends: its
    answer has left the server, or its connection is gone."""

    def __init__(self, at_once: int = MAX_AT_ONCE, exports: int = MAX_EXPORTS) -> None:
        if at_once < 1 or exports < 1:
            raise ValueError("an account needs at least one request and one export at once")
        self.limits = {False: at_once, True: exports}
        self._held: dict[tuple[str, bool], int] = {}

    def take(self, account: str, export: bool = False) -> bool:
        """Whether ``account`` may have one more request (``export``: one more export) in hand; counted if so."""
        key = (account, export)
        held = self._held.get(key, 0)
        if held >= self.limits[export]:
            return False
        self._held[key] = held + 1
        return True

    def give_back(self, account: str, export: bool = False) -> None:
        """One request (``export``: export) of ``account``'s has ended."""
        key = (account, export)
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)  # an account holding nothing takes no room

    def held(self, account: str, export: bool = False) -> int:
        """How many requests (``export``: exports) ``account`` has in hand now."""
        return self._held.get((account, export), 0)


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class PageBudget:
    """The per-account budget (module docstring): ``per_minute`` requests a minute, ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int, window_s: float = 60.0) -> None:
        if per_minute < 1 or burst < 1 or window_s <= 0:
            raise ValueError("a page budget needs at least one request a minute, a burst of one, and a window")
        self.rate, self.burst, self.window_s = per_minute / 60.0, float(burst), window_s
        self._buckets: dict[str, _Bucket] = {}
        self._refused: dict[str, Refusals] = {}

    def admit(self, account: str, scope: str, now: datetime) -> float:
        """0 when ``account`` may be answered now (a token is spent); else the seconds until it may be, and the
        refusal is tallied for the account's summary. A clock set back refills nothing, and takes nothing."""
        bucket = self._buckets.get(account)
        if bucket is None:
            bucket = self._buckets[account] = _Bucket(self.burst, now)
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens, bucket.at = min(self.burst, bucket.tokens + elapsed * self.rate), max(now, bucket.at)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        self.refused(account, scope, now)
        return (1.0 - bucket.tokens) / self.rate

    def refused(self, account: str, scope: str, now: datetime) -> None:
        """Tally a request of ``account``'s refused at ``now`` (over its rate, or over what it may hold at once:
        ``Holds``), for the account's summary record."""
        tally = self._refused.get(account)
        self._refused[account] = (Refusals(account, scope, 1, now, now) if tally is None
                                  else replace(tally, count=tally.count + 1, last=max(tally.last, now)))

    def due_at(self, account: str) -> datetime | None:
        """When ``account``'s tally of refused requests is due to be written (its first refusal and ``window_s``),
        or None: it holds none."""
        tally = self._refused.get(account)
        return None if tally is None else tally.first + timedelta(seconds=self.window_s)

    def due(self, now: datetime | None) -> list[Refusals]:
        """The tallies whose window (``window_s`` from their first refusal) has ended by ``now``, each taken out:
        the caller writes them. ``now`` None: every tally (the console is stopping)."""
        # A clock set back (now before the first refusal) makes every tally due: waiting for it to come round
        # again could hold a tally for hours, to be lost with an unclean exit.
        ended = [name for name, tally in self._refused.items()
                 if now is None or now < tally.first or (now - tally.first).total_seconds() >= self.window_s]
        return [self._refused.pop(name) for name in ended]

    def restore(self, refusals: Refusals) -> None:
        """Put back a tally whose record could not be written, merged with any tallied since, so that it is
        written with the next one (one record then covers both windows: still at most one a window)."""
        since = self._refused.get(refusals.account)
        if since is not None:
            refusals = replace(refusals, count=refusals.count + since.count, first=min(refusals.first, since.first),
                               last=max(refusals.last, since.last))
        self._refused[refusals.account] = refusals
