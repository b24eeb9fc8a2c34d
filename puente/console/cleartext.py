"""Cookies a browser was given in clear, before the console took its origin as https: ended on sight.

A console served behind a TLS-terminating proxy used to give its browsers plain cookies (``puente-console``, the
session; ``puente-device``, the 30-day device token that lets its browser past the account lock and the sign-in
limits; ``puente-login``). Under the https origin (``origin``) they are no longer read, nor their tokens taken under
any name (``broker.console_accounts``), but a browser keeps them, and sends them in clear to any http:// URL of the
name until they expire; and the accounts file keeps their tokens live. So a request to an https origin that brings
any of them ends them (``PlainCookies``): the session and the device token are ended in the accounts file, and the
answer expires the cookies in the browser (a secure origin may delete cookies that are not Secure).

The plain loopback origin itself no longer gives a device token (``origin``: any other port of the machine is sent
its cookies): one a browser brings there, given before, is ended and expired the same way.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.console_accounts import ConsoleAccounts
from puente.console.origin import Origin, host_header

PLAIN = Origin(secure=False)
"""The plain loopback origin, whose cookie names are those a browser was given in clear."""


def expired(names: list[str]) -> list[tuple[bytes, bytes]]:
    """Set-Cookie headers that delete the plain cookies ``names`` (as they were set: host-only, path "/", not
    Secure)."""
    answer = Response()
    for name in names:
        answer.delete_cookie(name, path="/", secure=False, httponly=True, samesite="strict")
    return [(k, v) for k, v in answer.raw_headers if k == b"set-cookie"]


class PlainCookies:
    """Ends the plain cookies a request to an https origin brings, and a device token one to the plain origin brings
    (module docstring), before it is answered, and adds their deletion to whatever answers it."""

    def __init__(self, app: ASGIApp, accounts: ConsoleAccounts, tls: bool) -> None:
        self.app, self.accounts, self.tls = app, accounts, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = Origin.of(host_header(scope), self.tls).secure
        cookies = HTTPConnection(scope).cookies  # read as the pages read them
        ended = (PLAIN.session, PLAIN.device, PLAIN.login) if secure else (PLAIN.device,)
        held = [name for name in ended if name in cookies]
        if not held:
            await self.app(scope, receive, send)
            return
        await run_in_threadpool(self._end, cookies.get(PLAIN.session) if secure else None, cookies.get(PLAIN.device))
        deleting = expired(held)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *deleting]}
            await send(message)

        await self.app(scope, receive, sending)

    def _end(self, session: str | None, device: str | None) -> None:
        self.accounts.end_session(session)
        self.accounts.end_device(device)
