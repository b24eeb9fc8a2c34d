"""A sign-in or sign-out form whose client leaves before its whole body came is unreadable, as any cut form: None,
never the ClientDisconnect that uvicorn logged with a traceback for anyone without an account to cause."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message

from puente.console.core import small_form


def _request(messages: list[Message]) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/login", "headers": [
        (b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", b"40")]}

    async def receive() -> Message:
        return messages.pop(0)

    return Request(scope, receive)


async def test_a_form_whose_client_left_mid_body_is_unreadable() -> None:
    left = _request([{"type": "http.request", "body": b"name=ana&pass", "more_body": True},
                     {"type": "http.disconnect"}])
    assert await small_form(left) is None


async def test_a_whole_form_is_read() -> None:
    whole = _request([{"type": "http.request", "body": b"name=ana&password=x", "more_body": False}])
    assert await small_form(whole) == {"name": "ana", "password": "x"}
