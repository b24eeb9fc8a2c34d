"""The console's server closes a connection that does not send a whole request in time (slowloris), and answers
one that does, however long the page then takes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from puente.console.server import DeadlineProtocol

from .conftest import closed


class _Quick(DeadlineProtocol):
    deadline_s = 0.5


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)  # longer than the deadline: the request is in, so the answer is not cut
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def _serving(app: Any, protocol: type[DeadlineProtocol]) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """uvicorn serving ``app`` with ``protocol`` on a free local port, until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           http=protocol))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        yield server, port
    finally:
        server.should_exit = True
        await task


async def test_a_client_that_sends_nothing_or_a_trickle_is_cut_off_and_others_are_answered() -> None:
    async with _serving(_app, _Quick) as (_, port):
        silent = await asyncio.open_connection("127.0.0.1", port)
        trickle = await asyncio.open_connection("127.0.0.1", port)
        trickle[1].write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        cut = False
        for _ in range(100):  # a header line every 0.1 s, for up to 10 s: it never completes its request
            await asyncio.sleep(0.1)
            try:
                trickle[1].write(b"X-A: b\r\n")
                await trickle[1].drain()
            except ConnectionError:
                cut = True
                break
            if trickle[0].at_eof():
                cut = True
                break
        assert cut and await closed(silent[0], 10.0)

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/slow", "/"):  # two requests on one connection, each within its own deadline
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
        writer.close()


class _Impatient(DeadlineProtocol):
    stall_s = 2.0  # well over a slow reader's pause between reads, even on a loaded machine


async def test_a_client_that_never_reads_its_answer_is_dropped_and_a_reader_gets_all_of_it() -> None:
    """A request for a large answer, then nothing read: writing pauses, and past the stall limit the connection is
    aborted, which ends the page's wait (its send returns); a client that reads gets every byte, however long."""
    ended: list[str] = []
    size = 16 * 1024 * 1024  # far over what the kernel's and the transport's buffers hold

    async def big(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        chunk = b"x" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        ended.append(scope["path"])

    async with _serving(big, _Impatient) as (server, port):
        _, idle = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        idle.transport.pause_reading()  # the client asks and reads nothing
        idle.write(b"GET /unread HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(300):
            if ended:
                break
            await asyncio.sleep(0.1)
        assert ended == ["/unread"] and not server.server_state.connections  # dropped, and the page let go
        idle.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /read HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        got = 0
        while got < size:
            piece = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert piece
            got += len(piece)
            await asyncio.sleep(0.02)  # a slow reader, but one that keeps reading
        assert got == size and ended == ["/unread", "/read"]
        writer.close()


class _Roomy(_Impatient):
    """Writing never pauses (a high-water mark above any answer here): the whole answer is taken into the
    transport's buffer and completes unsent, as an answer's tail under the usual mark does."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=64 * 1024 * 1024)


async def test_an_answer_complete_but_unread_does_not_hold_its_connection() -> None:
    """The answer is complete, so uvicorn's keep-alive timer (or a Connection: close) closes the connection, and
    that close waits for the flush: the client reads nothing, and the connection is dropped all the same."""
    size = 8 * 1024 * 1024

    async def sized(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        await send({"type": "http.response.body", "body": b"x" * size})

    async with _serving(sized, _Roomy) as (server, port):
        _, idle = await asyncio.open_connection("127.0.0.1", port, limit=1024)
        idle.transport.pause_reading()
        idle.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for _ in range(300):
            await asyncio.sleep(0.1)
            if not server.server_state.connections:
                break
        assert not server.server_state.connections
        idle.close()
