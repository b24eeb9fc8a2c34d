"""Behind a reverse proxy that terminates TLS, the console sees plain HTTP under the proxy's public name, while the
browser is at https: its cookies are Secure and ``__Host-`` named and HSTS is sent, as when the console serves TLS
itself. A loopback name without TLS is the one plain origin; each origin's cookies are read under it alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.origin import Origin, every_origin_https, host_name

from .conftest import BROWSER, PASSWORD, FakeIndex, Sink, local_client, served

PROXIED = "http://console.example"  # what a TLS-terminating proxy forwards: plain HTTP, under its public name
HSTS = "strict-transport-security"


def _set(answer: Any) -> dict[str, str]:
    """The cookies an answer sets (or deletes), by name: each one's whole Set-Cookie value."""
    return {v.split("=", 1)[0]: v for k, v in answer.headers.multi_items() if k == "set-cookie"}


def _value(answer: Any, name: str) -> str:
    """The value of the cookie ``name`` an answer sets."""
    return _set(answer)[name].split("=", 1)[1].split(";", 1)[0]


def _host_only_secure(cookie: str) -> bool:
    """Whether a Set-Cookie value is one a browser keeps only from https, for this host alone (``__Host-``)."""
    parts = [p.strip() for p in cookie.lower().split(";")]
    return "secure" in parts and "httponly" in parts and "samesite=strict" in parts and "path=/" in parts \
        and not any(p.startswith("domain=") for p in parts)


def _token(form: Any) -> str:
    return str(form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0])


def _sign_in(client: TestClient, login: str, name: str = "ana", cookies: str = "") -> Any:
    """Sign in through the form, the form's cookie sent back by hand under the name ``login``: a client over http
    (as the console sees a proxied request) never sends a Secure cookie itself."""
    form = client.get("/login")
    sent = "; ".join(c for c in (f"{login}={_value(form, login)}", cookies) if c)
    return client.post("/login", data={"name": name, "password": PASSWORD, "form_token": _token(form)},
                       headers={"cookie": sent})


@pytest.mark.parametrize(("host", "tls", "secure"), [
    ("127.0.0.1:8443", False, False), ("localhost:8443", False, False), ("[::1]:8443", False, False),
    ("LocalHost", False, False), ("127.0.0.2:8443", False, False), ("127.0.0.1:8443", True, True),
    ("console.example", False, True), ("console.example:8443", False, True), ("10.0.0.5:8443", False, True),
    ("[fd00::5]", False, True), ("localhost.attacker.example:8443", False, True), ("", False, True),
    ("::1", False, True), ("localhost:", False, True),
])
def test_a_requests_origin_is_plain_only_under_a_loopback_name_without_tls(host: str, tls: bool, secure: bool) -> None:
    """A loopback name (any port) without TLS is the one plain origin; TLS, any other name, or a Host that is not
    plainly a loopback name (none, an unbracketed IPv6 address, an empty port) is https."""
    origin = Origin.of(host, tls)
    assert origin.secure is secure
    assert (origin.session, origin.login, origin.device) == (
        ("__Host-puente-console", "__Host-puente-login", "__Host-puente-device") if secure else
        ("puente-console", "puente-login", "puente-device"))


@pytest.mark.parametrize(("tls", "proxy_names", "every"), [
    (False, (), False), (True, (), True), (False, ("console.example",), True), (True, ("console.example",), True),
])
def test_a_console_behind_a_proxys_names_takes_every_request_as_https(tls: bool, proxy_names: tuple[str, ...],
                                                                      every: bool) -> None:
    """Named proxy hosts mean a proxy terminates TLS: every request is https, those the proxy passes under its own
    upstream (loopback) address too (nginx's default Host), so no cookie is ever given out plain."""
    assert every_origin_https(tls, proxy_names) is every
    origin = Origin.of("127.0.0.1:8443", every_origin_https(tls, proxy_names))
    assert origin.secure is every and origin.session == ("__Host-puente-console" if every else "puente-console")


def test_a_host_name_is_read_without_its_port_or_brackets() -> None:
    """``host_name`` drops a port and an IPv6 address's brackets, and keeps anything it cannot read as a name."""
    assert [host_name(h) for h in ("Console.Example:443", "[::1]:8443", "[fd00::5]", "localhost", "a:b")] == [
        "console.example", "::1", "fd00::5", "localhost", "a:b"]


def test_behind_a_proxy_every_cookie_is_secure_and_host_only_and_hsts_is_sent(accounts: ConsoleAccounts,
                                                                               sink: Sink) -> None:
    """Plain HTTP under a proxy's name (the console not serving TLS): the sign-in form's cookie, the session and
    the 30-day device token are all Secure, HttpOnly, host-only ``__Host-`` cookies, and every answer sends HSTS."""
    client = TestClient(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)), base_url=PROXIED,
                        headers=BROWSER, follow_redirects=False)
    form = client.get("/login")
    assert list(_set(form)) == ["__Host-puente-login"] and _host_only_secure(_set(form)["__Host-puente-login"])
    assert form.headers[HSTS] == "max-age=31536000"
    done = _sign_in(client, "__Host-puente-login")
    assert done.status_code == 303 and done.headers[HSTS] == "max-age=31536000"
    made = _set(done)
    assert sorted(made) == ["__Host-puente-console", "__Host-puente-device", "__Host-puente-login"]
    assert all(_host_only_secure(cookie) for cookie in made.values()), made
    assert "max-age=2592000" in made["__Host-puente-device"].lower()  # the device token: 30 days
    session = _value(done, "__Host-puente-console")
    page = client.get("/", headers={"cookie": f"__Host-puente-console={session}"})
    assert page.status_code == 200 and page.headers[HSTS] == "max-age=31536000"
    assert sink.records[-1]["auditor"] == "ana" and sink.records[-1]["page"] == "home"
    out = client.post("/logout", data={"csrf": page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]},
                      headers={"cookie": f"__Host-puente-console={session}"})
    assert out.status_code == 303 and _host_only_secure(_set(out)["__Host-puente-console"])


def test_a_cross_site_sign_out_deletes_no_cookie_and_ends_no_session(accounts: ConsoleAccounts, sink: Sink) -> None:
    """A cross-site page's form posting to /logout carries no cookie of the console's (SameSite=Strict): its answer
    deletes none, so it cannot sign the auditor's browser out while the session stays live, unrecorded. A request
    carrying a session cookie that names no live session has that stale cookie deleted."""
    app = create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink))
    client = TestClient(app, base_url=PROXIED, headers=BROWSER, follow_redirects=False)
    session = _value(_sign_in(client, "__Host-puente-login"), "__Host-puente-console")
    forged = client.post("/logout", content=b"", headers={"content-type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 303 and _set(forged) == {}, forged.headers
    assert client.get("/", headers={"cookie": f"__Host-puente-console={session}"}).status_code == 200
    stale = client.post("/logout", content=b"", headers={"cookie": "__Host-puente-console=ended",
                                                         "content-type": "application/x-www-form-urlencoded"})
    assert stale.status_code == 303 and "max-age=0" in _set(stale)["__Host-puente-console"].lower()


def test_a_cookie_set_under_one_origin_is_not_taken_under_the_other(accounts: ConsoleAccounts, sink: Sink) -> None:
    """A session is read only under its own origin's name: a proxied request bringing it as the plain loopback
    cookie is not signed in (no downgrade), nor a loopback request bringing it as the ``__Host-`` one."""
    app = create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink))
    proxied = TestClient(app, base_url=PROXIED, headers=BROWSER, follow_redirects=False)
    local = local_client(app, follow_redirects=False)
    secure = _value(_sign_in(proxied, "__Host-puente-login"), "__Host-puente-console")
    plain = _value(_sign_in(local, "puente-login"), "puente-console")
    assert proxied.get("/", headers={"cookie": f"__Host-puente-console={secure}"}).status_code == 200
    assert local.get("/", headers={"cookie": f"puente-console={plain}"}).status_code == 200
    for client, cookie in ((proxied, f"puente-console={secure}"), (proxied, f"puente-console={plain}"),
                           (local, f"__Host-puente-console={secure}"), (local, f"__Host-puente-console={plain}")):
        answer = client.get("/", headers={"cookie": cookie})
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), cookie


def test_a_planted_plain_sign_in_cookie_is_not_taken_under_a_proxy_name(accounts: ConsoleAccounts,
                                                                        sink: Sink) -> None:
    """Login CSRF: another host of the site can plant a plain ``puente-login`` cookie for the console's name, never
    a ``__Host-`` one. Under the proxy's name only the latter is read, so a form posted with a token of the
    planter's choosing is refused (expired), signs no one in, and sets no session."""
    client = TestClient(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)), base_url=PROXIED,
                        headers=BROWSER, follow_redirects=False)
    answer = client.post("/login", data={"name": "sam", "password": PASSWORD, "form_token": "planted" * 4},
                         headers={"cookie": f"puente-login={'planted' * 4}"})
    assert answer.status_code == 400 and "expired" in answer.text and "__Host-puente-console" not in _set(answer)
    assert sink.records[-1]["page"] == "sign-in refused" and sink.records[-1]["params"] == {"form": "expired"}


def test_behind_a_proxy_only_the_secure_device_token_lets_its_browser_past_the_limits(accounts: ConsoleAccounts,
                                                                                     sink: Sink) -> None:
    """The device token that lets an auditor's browser past the sign-in limits is read under the proxy's name only
    as the ``__Host-`` cookie it was set as: the same token as a plain cookie (one sent in clear, or planted) is no
    device there, and is ended (``cleartext``), so that it lets no one past as the ``__Host-`` one after."""
    app = create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink, login_per_address=2, login_overall=1))
    client = TestClient(app, base_url=PROXIED, headers=BROWSER, follow_redirects=False)
    device = _value(_sign_in(client, "__Host-puente-login"), "__Host-puente-device")
    assert _sign_in(client, "__Host-puente-login").status_code == 429  # the limits are spent
    again = _sign_in(client, "__Host-puente-login", cookies=f"__Host-puente-device={device}")
    assert again.status_code == 303
    device = _value(again, "__Host-puente-device")  # each sign-in through a device token gives a new one
    assert _sign_in(client, "__Host-puente-login", cookies=f"puente-device={device}").status_code == 429
    assert _sign_in(client, "__Host-puente-login", cookies=f"__Host-puente-device={device}").status_code == 429


async def _exchange(port: int, request: str) -> tuple[str, list[str], bytes]:
    """The status line, headers and body answered to ``request`` (whole, as sent) on a new connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.encode())
    try:
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status, *headers = head.decode("latin-1").split("\r\n")
    return status, headers, body


async def _served_sign_in(port: int, host: str) -> tuple[list[str], list[str]]:
    """The headers of the sign-in form, then of the sign-in, asked of the console at ``port`` under ``host``."""
    status, form, body = await _exchange(port, f"GET /login HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: none\r\n"
                                                "Connection: close\r\n\r\n")
    assert status.startswith("HTTP/1.1 200"), (host, status)
    cookie = next(h.split(":", 1)[1].strip().split(";", 1)[0] for h in form if h.lower().startswith("set-cookie:"))
    token = body.decode().split('name="form_token" value="', 1)[1].split('"', 1)[0]
    posted = f"name=ana&password={PASSWORD.replace(' ', '+')}&form_token={token}&next=/"
    status, done, _ = await _exchange(port, (
        f"POST /login HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: same-origin\r\nConnection: close\r\n"
        f"Cookie: {cookie}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(posted)}\r\n\r\n{posted}"))
    assert status.startswith("HTTP/1.1 303"), (host, status)
    return form, done


def _secure_and_hsts(headers: list[str]) -> bool:
    """Whether an answer's cookies are all Secure ``__Host-`` ones (it sets some) and it sends HSTS."""
    cookies = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("set-cookie:")]
    return bool(cookies) and all(c.startswith("__Host-puente-") and _host_only_secure(c) for c in cookies) and \
        "strict-transport-security: max-age=31536000" in [h.lower() for h in headers]


async def test_served_in_plain_http_behind_a_proxys_names_every_name_gets_secure_cookies(
        accounts: ConsoleAccounts, sink: Sink) -> None:
    """``serve`` on 127.0.0.1 without TLS, answering a proxy's name too (PUENTE_CONSOLE_HOSTS), wired as ``audit
    serve`` wires it: signing in under that name, and under a loopback one (a proxy passing its upstream address as
    the Host, or a browser on the same machine), sets only Secure ``__Host-`` cookies and sends HSTS."""
    async with served(accounts, sink, names=("console.example",)) as port:
        for host in ("console.example", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            form, done = await _served_sign_in(port, host)
            assert _secure_and_hsts(form) and _secure_and_hsts(done), host
            assert sum(h.lower().startswith("set-cookie: __host-puente-device=") for h in done) == 1, host


async def test_served_in_plain_http_without_proxy_names_loopback_names_get_plain_cookies(
        accounts: ConsoleAccounts, sink: Sink) -> None:
    """``serve`` on 127.0.0.1 without TLS and no proxy names (``make console``): the one plain origin, its
    cookies plain and no HSTS."""
    async with served(accounts, sink) as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            form, done = await _served_sign_in(port, host)
            for headers in (form, done):
                cookies = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("set-cookie:")]
                assert cookies and all(c.startswith("puente-") and "secure" not in c.lower() for c in cookies), host
                assert not any(h.lower().startswith(HSTS) for h in headers), host
