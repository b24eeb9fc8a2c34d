"""What one account may hold at once: requests being answered and exports streaming, each past its bound refused
429, tallied with the account's refusals, and given back when the request ends, however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from broker.audit_index import Scope
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app, pages
from puente.console.rate import MAX_AT_ONCE, MAX_EXPORTS, Holds
from puente.console.server import MAX_CONNECTIONS, Listen, serve

from .conftest import FakeIndex, Sink, _decision, _Log, _sign_in, free_port, local_client

ROWS = sorted((_decision(i, f"A-{i:08d}-" + "x" * 60, "USA", "DELIVER") for i in range(20_000)),
              key=lambda r: r["at"], reverse=True)  # an export of some 6 MB: it never fits in the sockets' buffers


class SlowHome(FakeIndex):
    """The index over ``ROWS``, whose summary (the home page) waits for ``go``: a page that stays in flight."""

    go = threading.Event()

    def summary(self, scope: Scope) -> dict[str, Any]:
        self.go.wait(10)
        return super().summary(scope)


@contextlib.asynccontextmanager
async def _served(accounts: ConsoleAccounts, sink: Sink) -> AsyncIterator[int]:
    port, servers = free_port(), list[Any]()
    config = ConsoleConfig(lambda: SlowHome(ROWS), accounts, sink)
    task = asyncio.create_task(serve(Listen("127.0.0.1", port), config, _Log(sink),  # type: ignore[arg-type]
                                     started=servers.append))
    try:
        while not (servers and servers[0].started):
            assert not task.done(), task
            await asyncio.sleep(0.05)
        yield port
    finally:
        SlowHome.go.set()
        if servers:
            servers[0].should_exit = True
        await task


class Held:
    """One request on a connection of its own that reads only the head of its answer, then nothing more."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def send(cls, port: int, path: str, cookie: str) -> Held:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: none\r\n"
                     f"Cookie: puente-console={cookie}\r\n\r\n".encode())
        return cls(reader, writer)

    async def status(self) -> int:
        return int((await asyncio.wait_for(self.reader.readline(), 5)).split(b" ")[1])

    async def text(self) -> str:
        return (await asyncio.wait_for(self.reader.read(4096), 5)).decode()

    def close(self) -> None:
        self.writer.transport.abort()  # gone mid-answer, as a closed browser tab is


def _token(accounts: ConsoleAccounts, name: str) -> str:
    account = next(a for a in accounts.list() if a.name == name)
    return accounts.start_session(account, datetime.now(UTC)).token


async def _answered(port: int, path: str, cookie: str) -> int:
    """The status of ``path``, its answer read whole."""
    held = await Held.send(port, path, cookie)
    try:
        return await held.status()
    finally:
        held.close()


async def _until(port: int, path: str, cookie: str, status: int) -> None:
    """Wait (a few seconds at most) until ``path`` answers ``status``: what was held has been given back."""
    for _ in range(50):
        if await _answered(port, path, cookie) == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}")


async def test_one_account_holds_two_exports_and_four_requests_at_once(accounts: ConsoleAccounts,
                                                                       sink: Sink) -> None:
    """Within its rate, an account streaming two exports to clients that do not read gets 429 for a third, saying to
    wait for its exports; with two pages in flight besides, 429 for a fifth request. Another account is answered
    meanwhile, each refusal is tallied in the account's summary record, and what was held is given back as each
    request ends: the pages answered, the exports' clients gone."""
    SlowHome.go.clear()
    ana, sam = _token(accounts, "ana"), _token(accounts, "sam")
    refused = 0
    async with _served(accounts, sink) as port:
        exports = [await Held.send(port, "/search.csv", ana) for _ in range(MAX_EXPORTS)]
        assert [await e.status() for e in exports] == [200] * MAX_EXPORTS
        third = await Held.send(port, "/search.csv", ana)
        assert await third.status() == 429 and "wait for your exports to finish" in await third.text()
        third.close()
        assert await _answered(port, "/indicators.csv?table=shared", ana) == 429  # an export too
        refused += 2
        homes = [await Held.send(port, "/", ana) for _ in range(MAX_AT_ONCE - MAX_EXPORTS)]
        await asyncio.sleep(0.3)  # both in flight, waiting on the index
        fifth = await Held.send(port, "/integrity", ana)
        assert await fifth.status() == 429 and "wait for them to finish" in await fifth.text()
        fifth.close()
        refused += 1
        assert await _answered(port, "/integrity", sam) == 200  # another auditor is answered
        SlowHome.go.set()
        assert [await h.status() for h in homes] == [200] * len(homes)
        for home in homes:
            home.close()
        await _until(port, "/integrity", ana, 200)  # the pages gave theirs back
        for export in exports:
            export.close()
        await _until(port, "/search.csv", ana, 200)  # the exports' clients gone: theirs are given back too
    summary = next(r for r in sink.records if r["page"] == "over the page rate")
    assert summary["auditor"] == "ana" and summary["params"]["refused"] == refused


def test_what_a_request_holds_is_given_back_however_it_ends(accounts: ConsoleAccounts, sink: Sink,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Answered, refused (400, 404, 429), or an export cut short by its deadline (an error mid-stream): the account
    holds nothing once each request has ended."""
    app = create_app(ConsoleConfig(lambda: FakeIndex(ROWS[:50]), accounts, sink))
    holds: Holds = app.state.console.holds
    client = local_client(app, follow_redirects=False, raise_server_exceptions=False)
    assert _sign_in(client, "ana").status_code == 303
    for path, status in (("/search.csv", 200), ("/indicators.csv?table=shared", 200), ("/", 200),
                         ("/search.csv?since=nonsense", 400), ("/nope", 404)):
        assert client.get(path).status_code == status, path
        assert (holds.held("ana"), holds.held("ana", export=True)) == (0, 0), path
    monkeypatch.setattr(pages, "EXPORT_DEADLINE_S", -1.0)  # every export past its deadline at its first row
    with contextlib.suppress(Exception):
        client.get("/search.csv")
    assert (holds.held("ana"), holds.held("ana", export=True)) == (0, 0)


def test_holds_count_each_account_apart_and_forget_one_that_holds_nothing() -> None:
    """``MAX_AT_ONCE`` requests and ``MAX_EXPORTS`` exports an account; one account's take none of another's; an
    account whose requests have all ended takes no room."""
    holds = Holds()
    assert [holds.take("ana") for _ in range(MAX_AT_ONCE + 1)] == [True] * MAX_AT_ONCE + [False]
    assert [holds.take("ana", export=True) for _ in range(MAX_EXPORTS + 1)] == [True] * MAX_EXPORTS + [False]
    assert holds.take("sam") and holds.take("sam", export=True)
    for _ in range(MAX_AT_ONCE):
        holds.give_back("ana")
    for _ in range(MAX_EXPORTS):
        holds.give_back("ana", export=True)
    assert holds.take("ana")
    holds.give_back("ana")
    assert "ana" not in {account for account, _ in holds._held}
    with pytest.raises(ValueError):
        Holds(0, 1)


def test_the_bounds_are_small_beside_the_servers_connections() -> None:
    """An account holds a small share of the connections (4 requests, 2 exports of them), however many addresses it
    comes from: many accounts would be needed to hold them all."""
    assert (MAX_AT_ONCE, MAX_EXPORTS) == (4, 2) and MAX_EXPORTS < MAX_AT_ONCE <= MAX_CONNECTIONS // 20
