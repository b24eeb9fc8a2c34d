"""A browser given plain cookies before its console took every request as https (behind a proxy) brings them to the
https origin: the session and device token they hold are ended there, and the answer deletes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.origin import every_origin_https

from .conftest import BROWSER, PASSWORD, FakeIndex, Sink, local_client

PROXIED = "http://console.example"
PLAIN = ("puente-console", "puente-device", "puente-login")


def _set(answer: Any) -> dict[str, str]:
    """The cookies an answer sets (or deletes), by name: each one's whole Set-Cookie value."""
    return {v.split("=", 1)[0]: v for k, v in answer.headers.multi_items() if k == "set-cookie"}


def _token(form: Any) -> str:
    return str(form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0])


def _sign_in(client: TestClient, login: str, cookies: str = "") -> Any:
    """Sign ana in through the form, its cookie (named ``login``) and ``cookies`` sent back by hand."""
    form = client.get("/login")
    value = _set(form)[login].split("=", 1)[1].split(";", 1)[0]
    sent = "; ".join(c for c in (f"{login}={value}", cookies) if c)
    return client.post("/login", data={"name": "ana", "password": PASSWORD, "form_token": _token(form)},
                       headers={"cookie": sent})


def _given_in_clear(accounts: ConsoleAccounts, sink: Sink) -> tuple[str, str]:
    """The session and device token a browser was given as plain cookies (the plain origin, as behind a proxy
    before the console took every request as https). The plain origin gives no device token any more: this one is
    made as a console before that gave it, by the accounts file."""
    done = _sign_in(local_client(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)),
                                 follow_redirects=False), "puente-login")
    made = _set(done)
    assert PLAIN[1] not in made
    device = accounts.sign_in("ana", PASSWORD, datetime.now(UTC)).device
    assert device is not None
    return made[PLAIN[0]].split("=", 1)[1].split(";", 1)[0], device


def _upgraded(accounts: ConsoleAccounts, sink: Sink, **options: Any) -> TestClient:
    """A client of the same accounts' console behind a proxy's name, now taking every request as https."""
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink, tls=every_origin_https(False, ("console.example",)),
                           **options)
    return TestClient(create_app(config), base_url=PROXIED, follow_redirects=False, headers=BROWSER)


def test_a_device_token_given_in_clear_is_ended_when_brought_to_the_https_origin(accounts: ConsoleAccounts,
                                                                                 sink: Sink) -> None:
    """A plain ``puente-device`` cookie brought to the https origin ends its token: sent again as the ``__Host-``
    cookie (by whoever read it in clear) it lets no one past the sign-in limits."""
    _, device = _given_in_clear(accounts, sink)
    client = _upgraded(accounts, sink, login_per_address=1, login_overall=1)
    assert client.get("/login", headers={"cookie": f"puente-device={device}"}).status_code == 200
    assert accounts.device(device, datetime.now(UTC)) is None
    assert _sign_in(client, "__Host-puente-login").status_code == 303  # spends the limits
    assert _sign_in(client, "__Host-puente-login", cookies=f"__Host-puente-device={device}").status_code == 429


def test_a_session_given_in_clear_is_ended_when_brought_to_the_https_origin(accounts: ConsoleAccounts,
                                                                            sink: Sink) -> None:
    """A plain ``puente-console`` cookie brought to the https origin, to any path, ends its session."""
    session, _ = _given_in_clear(accounts, sink)
    assert accounts.session(session) is not None
    assert _upgraded(accounts, sink).get("/static/missing.css",
                                         headers={"cookie": f"puente-console={session}"}).status_code == 404
    assert accounts.session(session) is None
    answer = _upgraded(accounts, sink).get("/", headers={"cookie": f"__Host-puente-console={session}"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_the_https_origins_answer_deletes_the_cookies_given_in_clear(accounts: ConsoleAccounts, sink: Sink) -> None:
    """The answer to a request bringing plain cookies deletes each of them as it was set (host-only, path "/", not
    Secure: an https origin may), beside its own cookies; one bringing none deletes nothing."""
    session, device = _given_in_clear(accounts, sink)
    client = _upgraded(accounts, sink)
    answer = client.get("/login", headers={"cookie": f"puente-console={session}; puente-device={device}; "
                                                     "puente-login=old"})
    made = _set(answer)
    assert sorted(made) == ["__Host-puente-login", *PLAIN]
    for name in PLAIN:
        parts = [p.strip().lower() for p in made[name].split(";")]
        assert "max-age=0" in parts and "path=/" in parts and "secure" not in parts, made[name]
        assert not any(p.startswith("domain=") for p in parts), made[name]
    assert list(_set(client.get("/login"))) == ["__Host-puente-login"]


def test_at_the_plain_loopback_origin_the_session_is_read_and_a_device_token_ended(accounts: ConsoleAccounts,
                                                                                     sink: Sink) -> None:
    """A console that takes a loopback name as the plain origin (no TLS, no proxy names) reads its plain session
    cookie as ever; a device token given there before (every port of the machine was sent it) is ended and
    deleted; an answer to a request bringing none deletes nothing."""
    session, device = _given_in_clear(accounts, sink)
    client = local_client(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)), follow_redirects=False)
    page = client.get("/", headers={"cookie": f"puente-console={session}; puente-device={device}"})
    assert page.status_code == 200 and sorted(_set(page)) == ["puente-device"]
    assert "max-age=0" in _set(page)["puente-device"].lower()
    assert accounts.session(session) is not None and accounts.device(device, datetime.now(UTC)) is None
    again = client.get("/", headers={"cookie": f"puente-console={session}"})
    assert again.status_code == 200 and not _set(again)


def test_a_token_given_in_clear_is_never_taken_as_the_https_origins_cookie(accounts: ConsoleAccounts,
                                                                          sink: Sink) -> None:
    """A session and device token given in clear, read on the way and brought to the https origin only as its
    ``__Host-`` cookies (never as the plain ones, which would end them), open no session and let no one past the
    sign-in limits: a token is taken only from the kind of origin it was given to."""
    session, device = _given_in_clear(accounts, sink)
    client = _upgraded(accounts, sink, login_per_address=1, login_overall=1)
    answer = client.get("/", headers={"cookie": f"__Host-puente-console={session}"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert _sign_in(client, "__Host-puente-login").status_code == 303  # spends the limits
    assert _sign_in(client, "__Host-puente-login", cookies=f"__Host-puente-device={device}").status_code == 429
    assert accounts.device(device, datetime.now(UTC)) == "ana"  # still live, at the plain origin it was given to
