"""Only requests from the console's own origin are answered (``puente.console.sameorigin``): a page of another host of
the same site, or of another port of 127.0.0.1, has the auditor's browser send the auditor's SameSite=Strict
cookies, and must not plant queries in the oversight log under the auditor's name nor spend the account's budget."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.core import SECURITY_HEADERS
from puente.console.sameorigin import own_origins

from .conftest import BROWSER, LOCAL, PASSWORD, FakeIndex, Sink, _sign_in

BURST = 3  # the account's page budget at once, in these tests: small, so that a request spent would show

# What the browser says of a request another page had it make, and of one that says nothing: each refused.
FOREIGN = {
    "same-site subresource": {"sec-fetch-site": "same-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"},
    "same-site form": {"sec-fetch-site": "same-site", "sec-fetch-mode": "navigate",
                       "origin": "http://127.0.0.1:9000"},
    "sibling host": {"sec-fetch-site": "same-site", "origin": "https://evil.example.gob.pa"},
    "cross-site": {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},
    "no fetch metadata": {"sec-fetch-site": ""},
    "no fetch metadata, foreign origin": {"sec-fetch-site": "", "origin": "http://127.0.0.1:9000"},
    "typed, foreign origin": {"sec-fetch-site": "none", "origin": "http://127.0.0.1:9000"},
    "same-origin, foreign origin": {"sec-fetch-site": "same-origin", "origin": "https://evil.example.gob.pa"},
    "null origin, not same-origin": {"sec-fetch-site": "none", "origin": "null"},
    "unknown value": {"sec-fetch-site": "same-origin, cross-site"},
}
# What the browser says of the console's own requests: each served.
OWN = {
    "link or form of its own pages": {"sec-fetch-site": "same-origin"},
    "typed or bookmarked": {"sec-fetch-site": "none"},
    "its own origin named": {"sec-fetch-site": "same-origin", "origin": LOCAL},
    "its own form under no-referrer": {"sec-fetch-site": "same-origin", "origin": "null"},
}


def _asked(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` as sent: an empty value is a header left out (the client's own default one too)."""
    return {name: value for name, value in headers.items() if value}


def _client(accounts: ConsoleAccounts, sink: Sink, burst: int = BURST) -> TestClient:
    """A plain-origin console whose accounts may make ``burst`` requests at once (and one a minute after)."""
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink, page_rate=1, page_burst=burst)
    return TestClient(create_app(config), base_url=LOCAL, follow_redirects=False)


def _send(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    """One request with exactly ``headers`` as fetch metadata (none of the client's own)."""
    request = client.build_request(method, path, headers=_asked(headers),
                                   data={"csrf": "x"} if method == "POST" else None)
    for name in ("sec-fetch-site", "origin"):
        if name not in _asked(headers) and name in request.headers:
            del request.headers[name]
    return client.send(request)


def _every_route(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route the console has, read from its router (a route added later is in too), a path
    it does not have (its "not found" is recorded for a signed-in auditor), and a static file."""
    found = [("GET", "/nowhere"), ("GET", "/static/console.css")]
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            path = route.path.replace("{alert_id:path}", "A-BOTH")
            found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def _signed_in(accounts: ConsoleAccounts, sink: Sink, burst: int = BURST) -> TestClient:
    client = _client(accounts, sink, burst)
    client.headers.update(BROWSER)
    assert _sign_in(client, "ana").status_code == 303
    return client


@pytest.mark.parametrize("kind", FOREIGN)
def test_every_route_refuses_a_request_from_another_origin_unrecorded_and_unspent(accounts: ConsoleAccounts,
                                                                                  kind: str) -> None:
    """Every route (each page, CSV export, the sign-in form and post, the sign-out, a missing page, a static file),
    asked by a signed-in browser from another origin or saying nothing of where it comes from: 403, a line naming
    why, no-store and the security headers; no query recorded, not one request of the account's budget spent, the
    session still live."""
    sink = Sink()
    client = _signed_in(accounts, sink)
    before = list(sink.records)
    routes = _every_route(client)
    assert {"/", "/search", "/search.csv", "/indicators.csv", "/login", "/logout", "/queries"} <= {p for _, p in routes}
    for method, path in routes * 2:  # twice the budget's burst, and more
        answer = _send(client, method, path, FOREIGN[kind])
        assert answer.status_code == 403, (kind, method, path, answer.status_code)
        assert answer.text.startswith("Refused: ") and answer.text.count("\n") == 1, answer.text
        assert all(answer.headers.get(name) == value for name, value in SECURITY_HEADERS.items())
        assert "set-cookie" not in answer.headers
    assert sink.records == before
    # The account's whole burst is still there, and the session with it: then the budget holds as ever.
    assert [_send(client, "GET", "/search", OWN["typed or bookmarked"]).status_code for _ in range(BURST + 1)] == \
        [200] * BURST + [429]
    assert [r["page"] for r in sink.records[len(before):]] == ["search"] * BURST


@pytest.mark.parametrize("kind", OWN)
def test_a_request_from_the_consoles_own_origin_is_answered_and_recorded(accounts: ConsoleAccounts,
                                                                         kind: str) -> None:
    """A link or form of the console's own pages (same-origin), an address typed or a bookmark (none), its own
    origin named, and Chromium's ``Origin: null`` for the console's own form under no-referrer: each page and export
    answered, and recorded."""
    sink = Sink()
    client = _signed_in(accounts, sink, burst=60)
    before = len(sink.records)
    for path in ("/", "/search?partner=COL", "/search.csv", "/alerts/A-BOTH", "/indicators.csv?table=shared",
                 "/queries"):
        assert _send(client, "GET", path, OWN[kind]).status_code == 200, (kind, path)
    assert len(sink.records) == before + 6


def test_a_sign_in_posted_from_another_port_is_neither_checked_nor_recorded(accounts: ConsoleAccounts) -> None:
    """A form on another port of 127.0.0.1 posting the auditor's name and a password (a guess, or a login CSRF with
    a form token it planted: cookies are not kept apart by port) is refused before the password is checked: nothing
    recorded, no failure counted, no cookie set. The same form from the console's own page signs in."""
    sink = Sink()
    client = _client(accounts, sink)
    client.headers.update(BROWSER)
    form = client.get("/login")
    token = form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    data = {"name": "ana", "password": PASSWORD, "form_token": token, "next": "/"}
    for _ in range(6):  # past the lock's five failures, were they counted
        refused = client.post("/login", data={**data, "password": "a wrong password"},
                              headers={"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:9000"})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert sink.records == []
    done = client.post("/login", data=data, headers={"origin": "null"})  # Chromium, under no-referrer
    assert done.status_code == 303 and [r["page"] for r in sink.records] == ["sign-in"]


def test_a_sign_out_from_another_origin_ends_no_session(accounts: ConsoleAccounts) -> None:
    """A sign-out posted from another port, with the session's own form token even, ends nothing and records
    nothing; the auditor's pages go on."""
    sink = Sink()
    client = _signed_in(accounts, sink)
    page = client.get("/")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    before = list(sink.records)
    refused = client.post("/logout", data={"csrf": csrf}, headers={"sec-fetch-site": "same-site"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert sink.records == before and client.get("/").status_code == 200


def test_a_client_that_says_it_is_typed_is_answered_and_one_that_says_nothing_is_told_how(
        accounts: ConsoleAccounts) -> None:
    """A non-browser client (curl) without Sec-Fetch-Site is refused, told to send ``Sec-Fetch-Site: none``; with
    it, it is answered as a typed address is."""
    client = _client(accounts, Sink())
    refused = _send(client, "GET", "/login", {})
    assert refused.status_code == 403 and "Sec-Fetch-Site: none" in refused.text
    assert _send(client, "GET", "/login", {"sec-fetch-site": "none"}).status_code == 200


@pytest.mark.parametrize(("host", "tls", "names", "own"), [
    ("127.0.0.1:8443", False, (), {"http://127.0.0.1:8443"}),
    ("LocalHost:8443", False, (), {"http://localhost:8443"}),
    ("[::1]:8443", False, (), {"http://[::1]:8443"}),
    ("127.0.0.1:8443", True, (), {"https://127.0.0.1:8443"}),
    ("console.example", False, (), {"https://console.example"}),
    ("127.0.0.1:8443", True, ("Console.Example", "*.audit.example"),
     {"https://127.0.0.1:8443", "https://console.example"}),
])
def test_the_consoles_own_origins_are_its_scheme_and_host_and_a_proxys_exact_names(
        host: str, tls: bool, names: tuple[str, ...], own: set[str]) -> None:
    """The request's scheme and Host, as a browser serializes its origin; behind a proxy, also each exact public
    name (which a proxy passing its own upstream address as the Host hides), never a wildcard's other hosts."""
    assert own_origins(host, tls, names) == own


def test_behind_a_proxy_passing_its_upstream_host_the_proxys_origin_is_the_consoles_own(
        accounts: ConsoleAccounts) -> None:
    """A proxy that passes its own upstream address as the Host: the browser's Origin names the proxy's public
    name, which is the console's (PUENTE_CONSOLE_HOSTS), and is answered; a sibling host's is refused."""
    config = ConsoleConfig(lambda: FakeIndex(), accounts, Sink(), tls=True, names=("console.example",))
    client = TestClient(create_app(config), base_url="http://127.0.0.1:8443", follow_redirects=False)
    assert _send(client, "GET", "/login", {"sec-fetch-site": "none", "origin": "https://console.example"}) \
        .status_code == 200
    assert _send(client, "GET", "/login", {"sec-fetch-site": "none", "origin": "https://evil.console.example"}) \
        .status_code == 403
