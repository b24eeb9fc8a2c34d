"""What a request holds of its account's (``rate.Holds``) is given back once its answer has left the server, or its
connection is gone: not when the app has handed the answer's last part to a buffer a slow client may take minutes
to read, keeping the connection busy meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.core import FLUSHED, HELD, Console, Holding
from puente.console.server import DeadlineProtocol, Listen

from .conftest import FakeIndex, Sink, _decision, free_port

ROWS = sorted((_decision(i, f"A-{i:08d}-" + "x" * 200, "USA", "DELIVER") for i in range(2_000)),
              key=lambda row: str(row["at"]), reverse=True)  # an export of some 700 KB: far more than kernel buffers
SMALL = 4096  # the sockets' kernel buffers, the server's to send and the client's to receive (the least Linux takes)


class _Roomy(DeadlineProtocol):
    """Writing never pauses (a high-water mark above any answer here): the whole export is taken into the
    transport's buffer and its app returns with it unsent, as an export's tail is under the usual mark. The kernel's
    buffers are small, so that what they take of it is little."""

    stall_s = 2.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=64 * 1024 * 1024)
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)


@contextlib.asynccontextmanager
async def _console(accounts: ConsoleAccounts, sink: Sink) -> AsyncIterator[tuple[int, Console, uvicorn.Server]]:
    """The console over ``ROWS``, served with ``_Roomy`` on a free port of 127.0.0.1, until the block ends."""
    port = free_port()
    listen = Listen("127.0.0.1", port)
    config = replace(ConsoleConfig(lambda: FakeIndex(ROWS), accounts, sink), tls=listen.every_origin_https,
                     names=listen.names)
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           http=_Roomy))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.05)
        yield port, app.state.console, server
    finally:
        server.should_exit = True
        await task


async def _export_unread(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A GET of /search.csv whose answer the client does not read (yet)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    writer.transport.pause_reading()
    writer.write(f"GET /search.csv HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: none\r\n"
                 f"Cookie: puente-console={token}\r\n\r\n".encode())
    return reader, writer


async def _until(done: Callable[[], bool], within_s: float = 20.0) -> bool:
    for _ in range(int(within_s / 0.05)):
        if done():
            return True
        await asyncio.sleep(0.05)
    return done()


async def test_an_export_holds_its_account_until_its_answer_has_left(accounts: ConsoleAccounts, sink: Sink) -> None:
    """An export answered whole but unread (its bytes in the connection's buffer) still counts as one of its
    account's requests and exports, and a third is refused while two such wait; read to its end, or its connection
    gone, it is given back."""
    ana = next(account for account in accounts.list() if account.name == "ana")
    token = accounts.start_session(ana, datetime.now(UTC)).token
    async with _console(accounts, sink) as (port, console, server):
        conns: Any = server.server_state.connections
        first = await _export_unread(port, token)
        second = await _export_unread(port, token)

        def both_answered() -> bool:
            cycles = [conn.cycle for conn in conns]
            return len(cycles) == 2 and all(c is not None and c.response_complete for c in cycles)

        assert await _until(both_answered)
        await asyncio.sleep(0.3)  # many looks at the buffers (``FLUSH_POLL_S``): still unsent
        assert (console.holds.held("ana"), console.holds.held("ana", export=True)) == (2, 2)
        third = await _export_unread(port, token)
        third[1].transport.resume_reading()
        assert (await asyncio.wait_for(third[0].readline(), 10)).startswith(b"HTTP/1.1 429")
        third[1].close()

        reader, writer = first
        writer.transport.resume_reading()
        got = b""
        while not got.endswith(b"0\r\n\r\n"):  # the chunked answer's end
            piece = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert piece
            got = got[-16:] + piece
        assert await _until(lambda: console.holds.held("ana", export=True) == 1, 5)

        second[1].transport.abort()  # gone unread: given back as well
        assert await _until(lambda: console.holds.held("ana") == 0, 5)
        assert console.holds.held("ana", export=True) == 0
        writer.close()


async def test_an_answer_never_read_is_given_back_once_its_connection_is_cut(accounts: ConsoleAccounts,
                                                                            sink: Sink) -> None:
    """The wait for an answer to leave is bounded as every wait on a client is: one that reads nothing for the stall
    limit is cut, and what its request held is given back."""
    ana = next(account for account in accounts.list() if account.name == "ana")
    token = accounts.start_session(ana, datetime.now(UTC)).token
    async with _console(accounts, sink) as (port, console, server):
        _, writer = await _export_unread(port, token)
        assert await _until(lambda: console.holds.held("ana", export=True) == 1, 10)
        assert await _until(lambda: console.holds.held("ana") == 0, 4 * _Roomy.stall_s + 10)
        assert await _until(lambda: not server.server_state.connections, 5)
        writer.close()


def _scope(flushed: Any = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http"}
    if flushed is not None:
        scope[FLUSHED] = flushed
    return scope


async def _noop(*_: Any) -> Any:
    return None


async def test_what_a_request_holds_is_given_back_after_the_flush_and_on_every_path() -> None:
    """``Holding`` waits for the server's ``flushed`` before giving back; a request that holds nothing does not wait;
    without a server's ``flushed`` (another server, a test client), it gives back when the app returns; and cancelled
    or failing while it waits, it gives back all the same."""
    log: list[str] = []
    gate = asyncio.Event()

    async def flushed() -> None:
        log.append("waiting")
        await gate.wait()
        log.append("flushed")

    async def holding(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[HELD].append(lambda: log.append("given back"))

    task = asyncio.create_task(Holding(holding)(_scope(flushed), _noop, _noop))
    await asyncio.sleep(0.05)
    assert log == ["waiting"]
    gate.set()
    await task
    assert log == ["waiting", "flushed", "given back"]

    log.clear()
    await Holding(_noop)(_scope(flushed), _noop, _noop)  # holds nothing: no wait
    await Holding(holding)(_scope(), _noop, _noop)
    assert log == ["given back"]

    log.clear()
    gate.clear()
    task = asyncio.create_task(Holding(holding)(_scope(flushed), _noop, _noop))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["waiting", "given back"]

    async def failing() -> None:
        raise OSError("gone")

    log.clear()
    with pytest.raises(OSError):
        await Holding(holding)(_scope(failing), _noop, _noop)
    assert log == ["given back"]
