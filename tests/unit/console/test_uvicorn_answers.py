"""What the server answers without the app (a request it cannot read, one past the requests it answers at once) has
the security headers every answer of the console's has, and HSTS where every request is https."""

from __future__ import annotations

import asyncio

import pytest

from broker.console_accounts import ConsoleAccounts
from puente.console import server
from puente.console.core import SECURITY_HEADERS

from .conftest import Sink, served

HSTS = "strict-transport-security: max-age=31536000"


async def _head(reader: asyncio.StreamReader) -> tuple[str, list[str]]:
    """The status line and the headers, lowercase, of the answer ``reader`` gets."""
    data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status, *headers = data.decode("latin-1").rstrip("\r\n").split("\r\n")
    return status, [h.lower() for h in headers]


def _secured(headers: list[str]) -> bool:
    """Whether ``headers`` hold every one of ``SECURITY_HEADERS``, with its value."""
    return all(f"{name}: {value}".lower() in headers for name, value in SECURITY_HEADERS.items())


@pytest.mark.parametrize(("names", "hsts"), [((), False), (("console.example",), True)])
async def test_a_request_the_server_cannot_read_is_answered_with_the_security_headers(
        accounts: ConsoleAccounts, sink: Sink, names: tuple[str, ...], hsts: bool) -> None:
    """A malformed request is answered 400 by the server itself, never reaching the app: with the security headers,
    and HSTS when every request is https (behind a proxy's names)."""
    async with served(accounts, sink, names=names) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nnot a header\r\n\r\n".encode())
        try:
            status, headers = await _head(reader)
        finally:
            writer.close()
    assert status.startswith("HTTP/1.1 400") and _secured(headers)
    assert (HSTS in headers) is hsts


@pytest.mark.parametrize(("names", "hsts"), [((), False), (("console.example",), True)])
async def test_a_request_past_those_answered_at_once_is_answered_503_with_the_security_headers(
        accounts: ConsoleAccounts, sink: Sink, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...],
        hsts: bool) -> None:
    """While ``MAX_REQUESTS`` are being answered (here one, a sign-in whose form has not all come), the next is
    answered 503, one line, with the security headers and HSTS when every request is https; once the first is done,
    the next is answered as ever."""
    monkeypatch.setattr(server, "MAX_REQUESTS", 1)
    async with served(accounts, sink, names=names) as port:
        host = f"127.0.0.1:{port}"
        _, held = await asyncio.open_connection("127.0.0.1", port)
        held.write(f"POST /login HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: same-origin\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   "Content-Length: 20\r\n\r\nname=".encode())  # the rest of the form never comes
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /login HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: none\r\n\r\n".encode())
        try:
            status, headers = await _head(reader)
        finally:
            writer.close()
            held.close()
        assert status.startswith("HTTP/1.1 503") and _secured(headers) and "connection: close" in headers
        assert (HSTS in headers) is hsts
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /login HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: none\r\n"
                     "Connection: close\r\n\r\n".encode())
        try:
            status, _ = await _head(reader)
        finally:
            writer.close()
        assert status.startswith("HTTP/1.1 200")
