"""The console's pages over a fake index: sign-in, scope, headers, and the audit of every query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from broker.audit_index import Scope
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.core import Console
from puente.console.pages import unknown_partner

from .conftest import ROWS, FakeIndex, _sign_in, known_as, local_client

PASSWORD = "correct horse battery"


def _main(page: str) -> str:
    """A page's content, without the header (whose navigation marks the current page)."""
    return page.split("<main>", 1)[1]


def test_a_page_without_a_session_sends_to_the_sign_in_form(client: TestClient) -> None:
    """No session: every page redirects to /login, keeping where the auditor was going."""
    answer = client.get("/search?partner=COL")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=%2Fsearch")


def test_signing_in_sets_a_strict_httponly_session_cookie_and_is_recorded(client: TestClient, sign_in: Any,
                                                                           sink: Any) -> None:
    """A right password opens a session (HttpOnly, SameSite=Strict) and the sign-in is written to the audit."""
    answer = sign_in(client, "ana")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "puente-console=" in v)
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "secure" not in cookie.lower()
    assert sink.records[-1] == {"auditor": "ana", "scope": "national", "page": "sign-in", "params": {}, "results": 1}
    page = client.get("/")
    assert page.status_code == 200 and 'id="auditor">ana<' in page.text and "national scope" in page.text


def test_over_tls_the_cookie_is_secure_and_hsts_is_sent(make_client: Callable[..., TestClient],
                                                        sign_in: Any) -> None:
    """Served over TLS, the session cookie is Secure (a __Host- cookie) and HSTS is sent."""
    client = make_client(tls=True)
    answer = sign_in(client, "ana")
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "puente-console=" in v)
    assert cookie.startswith("__Host-") and "secure" in cookie.lower()
    assert "max-age" in client.get("/").headers["strict-transport-security"]


def test_a_wrong_password_is_refused_and_recorded_without_the_typed_unknown_name(client: TestClient, sign_in: Any,
                                                                                   sink: Any) -> None:
    """A wrong password answers 401 with no session; the attempt is audited, an unknown name never written."""
    answer = sign_in(client, "ana", "wrong password!!")
    assert answer.status_code == 401 and "Sign-in refused" in answer.text
    assert "set-cookie" not in {k for k, v in answer.headers.multi_items() if "puente-console=" in v}
    assert sink.records[-1]["auditor"] == "ana" and sink.records[-1]["page"] == "sign-in refused"
    sign_in(client, "my-secret-password-typed-in-the-name-box", "whatever whatever")
    assert sink.records[-1]["auditor"] == "(unknown name)"
    assert client.get("/").status_code == 303


def test_sign_in_needs_the_forms_own_token(client: TestClient) -> None:
    """A sign-in posted from elsewhere (without the form's token cookie) is refused."""
    answer = client.post("/login", data={"name": "ana", "password": PASSWORD, "form_token": "forged"})
    assert answer.status_code == 400


def test_after_sign_in_only_a_local_path_is_followed(client: TestClient, sign_in: Any) -> None:
    """``next`` pointing at another site sends to / instead (no open redirect)."""
    assert sign_in(client, "ana", target="//evil.example/").headers["location"] == "/"
    assert sign_in(client, "ana", target="/integrity").headers["location"] == "/integrity"


@pytest.mark.parametrize("path", ["/login", "/", "/search", "/alerts/nothing", "/static/console.css", "/nope"])
def test_every_answer_carries_the_security_headers(ana: TestClient, path: str) -> None:
    """CSP without scripts, no framing, no referrer, no caching: on pages, errors and static files alike."""
    headers = ana.get(path).headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "script-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_pages_hold_no_script_and_escape_what_the_audit_holds(ana: TestClient) -> None:
    """An alert id holding markup is shown as text; no page carries a script element."""
    page = ana.get("/search")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    for path in ("/", "/search", "/integrity", "/indicators", "/receipts", "/dead-letters", "/queries", "/why"):
        body = ana.get(path)
        assert body.status_code == 200, path
        assert "<script" not in body.text.replace("&lt;script", ""), path


def test_a_national_auditor_sees_every_partner(ana: TestClient, sink: Any) -> None:
    """Search lists COL and USA decisions, and the query is recorded with its filters and result count."""
    page = ana.get("/search", params={"decision": "DELIVER"})
    assert "A-COL-ONLY" in page.text and 'id="total">2<' in page.text
    assert sink.records[-1]["page"] == "search" and sink.records[-1]["results"] == 2
    assert sink.records[-1]["params"] == {"decision": "DELIVER", "page": 1}
    assert ana.get("/alerts/A-COL-ONLY").status_code == 200


def test_a_scoped_auditor_gets_404_for_a_decision_about_another_partner(sam: TestClient) -> None:
    """A USA auditor asking for COL's decisions by URL gets the page an absent alert gets; naming COL as the
    partner, the answer a partner that does not exist gets (the partner filter's: it may name USA alone)."""
    absent = sam.get("/alerts/NO-SUCH-ALERT")
    assert absent.status_code == 404
    for path in ("/alerts/A-COL-ONLY", "/dead-letters", "/queries"):
        answer = sam.get(path)
        assert answer.status_code == 404, path
        assert _main(answer.text) == _main(absent.text), path
    for path in ("/alerts/A-BOTH?partner=", "/why?alert=A-BOTH&field=subject.name&partner="):
        answer, unknown = sam.get(path + "COL"), sam.get(path + "NOPE")
        assert answer.status_code == unknown.status_code == 400, path
        assert _main(answer.text).replace("COL", "NOPE") == _main(unknown.text), path
    mine = sam.get(f"/alerts/{known_as('USA', 'A-BOTH')}")
    assert mine.status_code == 200 and "COL" not in mine.text.replace("joint oversight: USA", "")
    assert sam.get("/alerts/A-BOTH").status_code == 404  # the alert's own id: USA knows it by its reference


def test_a_signed_in_auditors_request_for_no_such_page_is_recorded(ana: TestClient, sink: Any,
                                                                      make_client: Callable[..., TestClient]) -> None:
    """Probing for pages is looking: a signed-in auditor's 404 is written to the query log, then answered like
    any absent record; an anonymous one is sent nowhere near the log."""
    absent = ana.get("/alerts/NO-SUCH-ALERT")
    answer = ana.get("/admin/export-everything")
    assert answer.status_code == 404 and _main(answer.text) == _main(absent.text)
    assert sink.records[-1]["page"] == "not found"
    assert sink.records[-1]["params"] == {"path": "/admin/export-everything"}
    before = len(sink.records)
    assert make_client().get("/admin/export-everything").status_code == 404  # no session: nothing to record
    assert len(sink.records) == before


def test_a_path_with_a_trailing_slash_is_not_found_and_recorded_never_redirected(
        sink: Any, make_client: Callable[..., TestClient], sign_in: Callable[..., Any]) -> None:
    """No redirect to the path without its slash (Starlette's would name the Host header's host, unrecorded): a
    404 like any page that is not there, recorded for a signed-in auditor."""
    ana = make_client(tls=True)  # an https origin, as any name but a loopback one is: its session is one of those
    assert sign_in(ana, "ana").status_code == 303
    for path in ("/queries/", "/search/", "/login/"):
        answer = ana.get(path, headers={"host": "evil.example"})
        assert answer.status_code == 404 and "location" not in answer.headers, path
        assert sink.records[-1]["page"] == "not found" and sink.records[-1]["params"] == {"path": path}
    assert make_client().get("/dead-letters/").status_code == 404


def test_the_deployments_name_is_shown_only_to_a_signed_in_auditor(accounts: ConsoleAccounts, sink: Any) -> None:
    """The deployment (its topic prefix) names where the audit lives: not on the sign-in page or an anonymous 404,
    only in the pages of a signed-in auditor."""
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink, deployment="pa-prod-minseg")
    client = local_client(create_app(config), follow_redirects=False)
    for path in ("/login", "/no-such-page"):
        assert "pa-prod-minseg" not in client.get(path).text, path
    assert _sign_in(client, "ana").status_code == 303
    assert "pa-prod-minseg" in client.get("/").text and "pa-prod-minseg" in client.get("/no-such-page").text


def test_a_scoped_auditor_finds_no_other_partners_rows_by_search_or_csv(sam: TestClient) -> None:
    """Whatever the filters, a USA auditor's search and CSV hold only USA rows; naming another partner is refused
    (400), as an unknown one is: its scope holds no other partner's decisions."""
    for params in ({"partner": "COL"}, {"partner": "usa"}):
        for path in ("/search", "/search.csv"):
            refused = sam.get(path, params=params)
            assert refused.status_code == 400 and "you may name USA (" in refused.text, path
    for params in ({}, {"partner": "USA"}, {"alert": "A-COL-ONLY"}):
        page = sam.get("/search", params=params)
        assert page.status_code == 200
        results = page.text.split('class="result-line"', 1)[1]  # what was found, not the filters typed
        assert "A-COL-ONLY" not in results and ">COL<" not in results
        csv = sam.get("/search.csv", params=params)
        assert csv.status_code == 200
        rows = csv.text.splitlines()[1:]
        assert all('","USA","' in row for row in rows), rows
    assert ">COL<" not in sam.get("/indicators").text


def test_the_query_is_recorded_before_the_answer_is_made(ana: TestClient, sink: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit write comes before the page is rendered."""
    events: list[str] = []
    sink.events = events
    render = Console.html

    def html(self: Console, *args: Any, **kwargs: Any) -> Any:
        events.append("render")
        return render(self, *args, **kwargs)

    monkeypatch.setattr(Console, "html", html)
    assert ana.get("/search").status_code == 200
    assert events == ["record", "render"]


def test_when_the_query_cannot_be_recorded_the_answer_is_503_without_data(ana: TestClient, sink: Any) -> None:
    """A failing query log: every page and export answers 503 with one line, never the data."""
    sink.failing = True
    for path in ("/search", "/search.csv", "/alerts/A-BOTH", "/integrity", "/indicators.csv?table=shared"):
        answer = ana.get(path)
        assert answer.status_code == 503, path
        assert "cannot record this query in the audit: check Kafka" in answer.text
        assert "A-BOTH" not in answer.text and "AG-COL" not in answer.text and "edited" not in answer.text


def test_the_csv_export_streams_every_matching_row_safely(ana: TestClient, sink: Any) -> None:
    """CSV: an attachment with a header, every row, and a cell a spreadsheet would run quoted as text."""
    answer = ana.get("/search.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    lines = answer.text.splitlines()
    assert lines[0].startswith('"at","alert_id",') and len(lines) == 5
    assert '"\'=HYPERLINK' in answer.text and '"=HYPERLINK' not in answer.text
    assert sink.records[-1]["page"] == "search.csv" and sink.records[-1]["results"] == 4


def test_the_timeline_shows_reasons_and_field_changes(ana: TestClient) -> None:
    """Each decision's reasons and dropped fields (with the rule) appear, linked to "why"."""
    page = ana.get("/alerts/A-BOTH")
    assert "USA reason" in page.text and "COL reason" in page.text
    assert "Dropped" in page.text and "subject.name" in page.text and "/why?alert=A-BOTH" in page.text


def test_integrity_shows_problems_first(ana: TestClient) -> None:
    """The finding's text heads the page, before the chains table."""
    page = ana.get("/integrity").text
    assert page.index("was edited") < page.index('id="chains"')


def test_indicators_render_svg_charts_and_csv(ana: TestClient) -> None:
    """Charts are inline SVG; each table downloads as CSV; an unknown table is 404."""
    page = ana.get("/indicators").text
    assert page.count("<svg") >= 5 and "DARIEN" in page
    assert ana.get("/indicators.csv?table=latency").text.splitlines()[0] == '"partner","to","p50_ms","p95_ms","n"'
    assert ana.get("/indicators.csv?table=nope").status_code == 404


def test_a_partner_the_policy_does_not_name_is_refused_not_answered_with_no_decisions(
        ana: TestClient, sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner filter names a partner exactly: one of the policy's in another case (``usa``) is refused naming the
    right one, and one neither the policy nor the audit names (``NOPE``) is refused too: each a recorded 400 saying
    it is unknown and which may be named, never "0 decisions". A known one is searched, and so is a partner that
    left the policy whose decisions the audit keeps (``BRA``), as the form's choices offer it."""
    for partner in ("usa", "NOPE", " COL x"):
        for path in ("/search", "/search.csv"):
            answer = ana.get(path, params={"partner": partner})
            assert answer.status_code == 400, (path, partner)
            assert "unknown partner" in answer.text and "COL, CRI, USA" in answer.text
            assert sink.records[-1]["params"]["partner"] == partner.strip() and sink.records[-1]["results"] == 0
    assert "did you mean USA?" in ana.get("/search", params={"partner": "usa"}).text
    assert ana.get("/search", params={"partner": "COL"}).status_code == 200
    assert ana.get("/search", params={"partner": "BRA"}).status_code == 400
    monkeypatch.setattr(FakeIndex, "__init__", lambda self, rows=None: setattr(
        self, "rows", [*ROWS, {**ROWS[1], "id": 9, "alert_id": "A-BRA", "partner": "BRA"}]))
    offered = ana.get("/search")
    assert '<option value="BRA"' in offered.text
    for path in ("/search", "/search.csv"):
        assert ana.get(path, params={"partner": "BRA"}).status_code == 200, path


def test_a_bad_time_is_a_400_not_a_crash(ana: TestClient) -> None:
    """A since that is not a time answers 400 with the reason."""
    answer = ana.get("/search?since=yesterday")
    assert answer.status_code == 400 and "since" in answer.text


def test_signing_out_needs_the_sessions_form_token_and_ends_it(ana: TestClient, sink: Any) -> None:
    """Logout without the form token is refused, and the refusal recorded (503 when it cannot be); with the token
    the session ends and later pages need sign-in."""
    assert ana.post("/logout", data={"csrf": "forged"}).status_code == 400
    assert sink.records[-1] == {"auditor": "ana", "scope": "national", "page": "sign-out refused",
                                "params": {"form": "expired"}, "results": 0}
    sink.failing = True
    assert ana.post("/logout", data={"csrf": "forged"}).status_code == 503
    sink.failing = False
    token = ana.get("/").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert ana.post("/logout", data={"csrf": token}).status_code == 303
    assert sink.records[-1]["page"] == "sign-out"
    assert ana.get("/").status_code == 303


def test_the_query_log_records_what_an_export_streams_not_the_capped_count(
        ana: TestClient, sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Search pages count up to a cap; an export streams every row: its log entry has the whole count."""
    monkeypatch.setattr(FakeIndex, "cap", 2)
    lines = ana.get("/search.csv").text.splitlines()
    assert len(lines) == 5 and sink.records[-1]["results"] == 4
    assert ana.get("/search").status_code == 200 and sink.records[-1]["results"] == 2  # the page's capped count


def test_a_time_longer_than_the_log_keeps_is_refused(ana: TestClient, sink: Any) -> None:
    """Python reads any number of fractional digits: a since the log would cut (dropping its offset) is refused
    rather than answered for a window other than the one logged."""
    long = "2026-01-01T00:00:00." + "0" * 30 + "-23:59"
    for path in (f"/search?since={long}", f"/indicators?since={long}"):
        answer = ana.get(path.replace("+", "%2B"))
        assert answer.status_code == 400 and "too long" in answer.text, path


def test_the_alert_and_why_pages_refuse_a_partner_as_the_search_does(ana: TestClient, sink: Any,
                                                                     make_client: Any, sign_in: Any) -> None:
    """``partner=usa`` on an alert's timeline or its why page is refused naming USA, and an id neither the policy
    nor the audit names is refused as unknown: a recorded 400, never "not found" as if the alert had none."""
    pages = (("/alerts/A-BOTH", {}), ("/why", {"alert": "A-BOTH", "field": "subject.name"}))
    for path, params in pages:
        for partner in ("usa", "NOPE"):
            answer = ana.get(path, params={**params, "partner": partner})
            assert answer.status_code == 400, (path, partner)
            assert "unknown partner" in answer.text and "COL, CRI, USA" in answer.text
            assert sink.records[-1]["params"]["partner"] == partner and sink.records[-1]["results"] == 0
            assert sink.records[-1]["params"]["alert"] == "A-BOTH"  # the alert asked for, path or query parameter
        assert "did you mean USA?" in ana.get(path, params={**params, "partner": "usa"}).text
        assert ana.get(path, params={**params, "partner": "USA"}).status_code == 200
    # A joint-oversight auditor is told the same for another partner as for one that does not exist.
    sam = make_client()
    assert sign_in(sam, "sam").status_code == 303
    for path, params in pages:
        told = {partner: sam.get(path, params={**params, "partner": partner}) for partner in ("COL", "NOPE")}
        assert {a.status_code for a in told.values()} == {400}
        assert told["COL"].text.replace("COL", "NOPE") == told["NOPE"].text
        assert "you may name USA (ids are exact)" in told["COL"].text
        assert sink.records[-1]["params"] == {**params, "alert": "A-BOTH", "partner": "NOPE"}


def test_a_joint_oversight_auditors_own_partner_is_never_refused_as_unknown() -> None:
    """A partner that left the policy, with no decision in the audit yet, is refused to a national auditor naming the
    policy's partners; its own joint-oversight auditor is never told them (its filter names its own partner only)."""
    index = FakeIndex()
    assert "unknown partner" in (unknown_partner(index, Scope(), "BRA", {"COL", "USA"}) or "")  # type: ignore[arg-type]
    assert unknown_partner(index, Scope(partner="BRA"), "BRA", {"COL", "USA"}) is None  # type: ignore[arg-type]
