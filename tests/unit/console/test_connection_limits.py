"""The console's server keeps its connections for requests: connections without a request in hand, however many
and from wherever, never keep a request out; a request in hand is never cut for a new connection."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from broker.console_accounts import ConsoleAccounts
from puente.console.server import MAX_CONNECTIONS, MAX_PER_ADDRESS, DeadlineProtocol, Gate, client_address

from .conftest import Sink, closed, free_port, served

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int, source: str = "127.0.0.1") -> Streams:
    """A connection to ``port`` from the loopback address ``source`` (any of 127.0.0.0/8 is this machine)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def status(port: int, source: str = "127.0.0.1") -> bytes:
    """The status line answered to a GET of the sign-in page on a new connection from ``source``."""
    reader, writer = await connect(port, source)
    writer.write(f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: none\r\n"
                 "Connection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


async def test_idle_connections_from_many_addresses_do_not_keep_a_request_out(accounts: ConsoleAccounts,
                                                                              sink: Sink) -> None:
    """Past MAX_CONNECTIONS silent connections (ten from each of eleven addresses), a request is answered 200, not
    503: the oldest idle connections were closed for the new ones, so no more than MAX_CONNECTIONS are open."""
    async with served(accounts, sink) as port:
        idle = [await connect(port, f"127.0.0.{2 + i % 11}") for i in range(MAX_CONNECTIONS + 10)]
        await asyncio.sleep(0.2)
        assert (await status(port)).startswith(b"HTTP/1.1 200")
        cut = await asyncio.gather(*(closed(reader, 0.2) for reader, _ in idle))
        assert sum(cut) >= len(idle) + 1 - MAX_CONNECTIONS
        for _, writer in idle:
            writer.close()


async def test_a_flood_from_a_few_addresses_displaces_its_own_never_a_slow_client(accounts: ConsoleAccounts,
                                                                                  sink: Sink) -> None:
    """An auditor's connection whose request is slow to come (a long link, a TLS handshake) counts as idle; a flood
    of new connections from eight addresses, past MAX_CONNECTIONS, turns over its own connections (the address
    holding the most gives way), never the auditor's, whose request is then answered."""
    async with served(accounts, sink) as port:
        reader, writer = await connect(port, "127.0.0.50")
        # the head, not yet whole
        writer.write(f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: none\r\n".encode())
        flood = [await connect(port, f"127.0.0.{2 + i % 8}") for i in range(MAX_CONNECTIONS + 60)]
        await asyncio.sleep(0.2)
        writer.write(b"Connection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
        for _, other in flood:
            other.close()


def test_an_ipv6_client_counts_by_its_64() -> None:
    """One host holds a whole IPv6 /64: its addresses count as one client; an IPv4 one, mapped or not, as itself."""
    assert client_address("2001:db8:1:2::a") == client_address("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::a") != client_address("2001:db8:1:2::a")
    assert client_address("::ffff:192.0.2.7") == client_address("192.0.2.7") == "192.0.2.7"


async def test_one_address_displaces_its_own_idle_connections_first(accounts: ConsoleAccounts, sink: Sink) -> None:
    """One address holds at most MAX_PER_ADDRESS connections: its new ones close its own oldest idle ones, another
    address's stay open, and a request from either is answered."""
    async with served(accounts, sink) as port:
        other = await connect(port, "127.0.0.9")
        mine = [await connect(port, "127.0.0.2") for _ in range(MAX_PER_ADDRESS + 3)]
        await asyncio.sleep(0.2)
        cut = await asyncio.gather(*(closed(reader, 0.2) for reader, _ in mine))
        assert cut == [True] * 3 + [False] * MAX_PER_ADDRESS and not await closed(other[0], 0.2)
        assert (await status(port, "127.0.0.2")).startswith(b"HTTP/1.1 200")
        assert (await status(port, "127.0.0.9")).startswith(b"HTTP/1.1 200")
        for _, writer in [other, *mine]:
            writer.close()


class _Gated(DeadlineProtocol):
    gate = Gate(overall=3, per_address=2)


async def _slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/slow":
        await asyncio.sleep(1.0)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_request_in_hand_is_never_cut_for_a_new_connection() -> None:
    """With both of an address's places taken by requests being answered, a third connection from it is closed
    and both requests are answered whole; once they are, a new connection displaces the one used longest ago."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_slow, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           http=_Gated))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        busy = [await connect(port) for _ in range(2)]
        for _, writer in busy:  # the first is answered first, so it is the one used longest ago after
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.2)
        third = await connect(port)
        assert await closed(third[0], 0.5)
        for reader, _ in busy:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
        fourth = await connect(port)
        fourth[1].write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(fourth[0].readline(), 5)).startswith(b"HTTP/1.1 200")
        assert await closed(busy[0][0]) and not await closed(busy[1][0])
        for _, writer in [*busy, third, fourth]:
            writer.close()
    finally:
        server.should_exit = True
        await task


# TLS: the handshake is within the request deadline and the caps --------------------------------------------------


async def tls_status(port: int, source: str = "127.0.0.1") -> bytes:
    """As ``status``, over TLS (the certificate is not checked: it is the test's own)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), ssl=context)
    writer.write(f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: none\r\n"
                 "Connection: close\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


async def test_an_unfinished_tls_handshake_ends_at_the_request_deadline(
        accounts: ConsoleAccounts, sink: Sink, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that sends nothing, or half a ClientHello, is closed when the request deadline passes (not at
    asyncio's 60 s handshake timeout); a whole handshake and request is answered."""
    monkeypatch.setattr(DeadlineProtocol, "deadline_s", 0.5)
    async with served(accounts, sink, *tls_files) as port:
        silent = await connect(port)
        half = await connect(port)
        half[1].write(b"\x16\x03\x01\x02\x00")  # a TLS record header announcing a ClientHello that never comes
        assert await closed(silent[0], 5) and await closed(half[0], 5)
        assert (await tls_status(port)).startswith(b"HTTP/1.1 200")
        for _, writer in (silent, half):
            writer.close()


async def test_tls_handshakes_count_against_the_caps(accounts: ConsoleAccounts, sink: Sink,
                                                     tls_files: tuple[Path, Path]) -> None:
    """Connections still in their handshake count: past MAX_PER_ADDRESS from one address, its oldest are closed,
    and a request from it over TLS is answered."""
    async with served(accounts, sink, *tls_files) as port:
        mine = [await connect(port, "127.0.0.2") for _ in range(MAX_PER_ADDRESS + 2)]
        await asyncio.sleep(0.2)
        cut = await asyncio.gather(*(closed(reader, 0.2) for reader, _ in mine))
        assert cut == [True] * 2 + [False] * MAX_PER_ADDRESS
        assert (await tls_status(port, "127.0.0.2")).startswith(b"HTTP/1.1 200")
        for _, writer in mine:
            writer.close()
