"""The console's server closes a connection that does not send a whole request in time (slowloris), and answers
one that does, however long the page then takes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from puente.console.server import DeadlineProtocol


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


async def _closed(reader: asyncio.StreamReader, within_s: float = 10.0) -> bool:
    """Whether the server closed the connection (EOF or a reset) within ``within_s``."""
    try:
        return await asyncio.wait_for(reader.read(), within_s) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_a_client_that_sends_nothing_or_a_trickle_is_cut_off_and_others_are_answered() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           http=_Quick))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
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
        assert cut and await _closed(silent[0])

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/slow", "/"):  # two requests on one connection, each within its own deadline
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
        writer.close()
    finally:
        server.should_exit = True
        await task
