"""Pages of a partner's auditor: rule ids, never reason texts, nothing of an alert it was not sent; integrity
counted in full and bounded; a failing refresh is shown."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Scope
from broker.console_accounts import ConsoleAccounts
from broker.crypto import checker, sign_checkpoint
from puente.console import ConsoleConfig, create_app
from puente.console.pages import REFRESH, RefreshStatus
from puente.console.server import refresher

from .conftest import FakeIndex, Sink, _sign_in, known_as, local_client


def test_a_partner_auditor_reads_rules_not_reasons(sam: TestClient) -> None:
    """Search and timeline say the reasons are for national auditors and list the rule ids instead."""
    for path in ("/search", f"/alerts/{known_as('USA', 'A-BOTH')}"):
        page = sam.get(path).text
        assert "USA reason" not in page
        assert "reasons: shown to national auditors; rules: USA-r1" in page.replace("Reasons:", "reasons:")


def test_a_national_auditor_reads_the_reasons(ana: TestClient) -> None:
    assert "USA reason" in ana.get("/search").text and "USA reason" in ana.get("/alerts/A-BOTH").text


class _ManyFindings(FakeIndex):
    def integrity(self, scope: Scope) -> dict[str, Any]:
        found = super().integrity(scope)
        return {**found, "findings": found["findings"] * 600, "findings_total": 1200}


def test_the_integrity_page_lists_at_most_500_findings(accounts: ConsoleAccounts, sink: Sink) -> None:
    client = local_client(create_app(ConsoleConfig(lambda: _ManyFindings(), accounts, sink)), follow_redirects=False)
    _sign_in(client, "ana")
    page = client.get("/integrity").text
    assert page.count('class="finding"') == 500 and "1,200 problems" not in page and "1200 problems" in page
    assert "and 700 more" in page


def test_a_failing_refresh_keeps_serving_and_is_shown(ana: TestClient, accounts: ConsoleAccounts, sink: Sink) -> None:
    """Any exception from a catch-up is noted, the refresher keeps going, and every page shows since when."""
    status, notes, calls = RefreshStatus(), list[str](), [0]

    async def catch_up() -> None:
        calls[0] += 1
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    async def run() -> None:
        task = asyncio.create_task(refresher(catch_up, 0.001, notes.append, status))
        while calls[0] < 3:
            await asyncio.sleep(0.001)
        assert not task.done()
        task.cancel()

    asyncio.run(run())
    assert status.failed_since is not None and "OverflowError" in status.reason and len(notes) >= 2
    REFRESH.failed(datetime(2026, 11, 1, 12, tzinfo=UTC), "the audit index x failed while indexing")
    try:
        page = ana.get("/").text
        assert "could not be refreshed since 2026-11-01 12:00:00 UTC: the audit index x failed" in page
        # The reason may name other partners' topics and offsets: a scoped auditor is told only since when.
        sam = local_client(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)), follow_redirects=False)
        _sign_in(sam, "sam")
        scoped = sam.get("/").text
        assert 'id="refresh-failed"' in scoped and "2026-11-01 12:00:00 UTC" in scoped
        assert "the audit index x failed" not in scoped and "a national auditor sees why" in scoped
    finally:
        REFRESH.recovered()
    assert 'id="refresh-failed"' not in ana.get("/").text


class _UntoldProblems(FakeIndex):
    """What the index gives a scoped auditor when the decisions' chain has problems: counts, no texts."""

    def integrity(self, scope: Scope) -> dict[str, Any]:
        found = super().integrity(scope)
        chains = [{**found["chains"][0], "problems": 2}, {**found["chains"][0], "topic": "t.receipts.USA"}]
        return {**found, "chains": [{**c, "problems": c["problems"] if c["topic"] != "t.receipts.USA" else 0}
                                    for c in chains], "findings": [], "findings_total": 0}


def test_a_scoped_auditor_is_told_of_problems_it_may_count_but_not_read(accounts: ConsoleAccounts,
                                                                       sink: Sink) -> None:
    """The integrity banner counts every chain's problems: a USA auditor, given the decisions' chain's
    counts without their texts, reads "2 problems" and that the details are for national auditors, never
    "No problem found"; the query records that count."""
    client = local_client(create_app(ConsoleConfig(lambda: _UntoldProblems(), accounts, sink)), follow_redirects=False)
    _sign_in(client, "sam")
    page = client.get("/integrity").text
    assert 'id="no-findings"' not in page and "No problem found" not in page
    assert "2 problems" in page and "shown to national auditors" in page and 'class="finding"' not in page
    assert sink.records[-1]["page"] == "integrity" and sink.records[-1]["results"] == 2


def test_a_national_auditor_reads_every_problem_without_the_scoped_note(ana: TestClient) -> None:
    """A national auditor's problems are all listed: no note that details are kept from it."""
    page = ana.get("/integrity").text
    assert "1 problem<" in page and "was edited" in page and 'id="untold-findings"' not in page


# A console over a real index: a withheld alert must not be described to the partner it was withheld from.
_KEY = Ed25519PrivateKey.generate()
_HIDDEN = ("ARMS", "DNI", "BOCAS", "NOFORN", "SECRET", "t.ingress.DNI")


def _entry(alert_id: str, minute: int, decisions: list[dict[str, Any]], **about: Any) -> dict[str, Any]:
    at = datetime(2026, 11, 1, 10, minute, tzinfo=UTC)
    return {"kind": "ALERT", "alert_id": alert_id, "alert_type": "SMUGGLING", "originator": "SENAFRONT",
            "classification": "RESTRICTED", "sector": "DARIEN", "ingress": f"t.ingress.SENAFRONT:0:{minute}",
            "ingress_ms": int(at.timestamp() * 1000) - 500, "at": at.isoformat().replace("+00:00", "Z"),
            "decisions": decisions, **about}


def _to(partner: str, outcome: str, rule: str) -> dict[str, Any]:
    return {"partner": partner, "decision": outcome, "agreement": f"{partner}-PAN", "rules": [rule],
            "reasons": [f"{outcome} by {rule}"], "redacted": [], "policy_version": "p1",
            **({"feed": f"t.feed.{partner}"} if outcome != "WITHHOLD" else {})}


@pytest.fixture
def real_index(tmp_path: Path) -> Iterator[Path]:
    """An index of SNM:1 (delivered to USA) and W:1 (ARMS, from DNI in BOCAS, marked NOFORN: withheld
    from USA, delivered to COL)."""
    path = tmp_path / "audit" / "index.sqlite"
    hidden = {"alert_type": "ARMS", "originator": "DNI", "classification": "SECRET", "sector": "BOCAS",
              "markings": ["NOFORN"], "ingress": "t.ingress.DNI:0:1"}
    block = ChainWriter("t.audit.decisions", 0).block(
        [_entry("SNM:1", 0, [_to("USA", "DELIVER", "usa.cover")]),
         _entry("W:1", 1, [_to("USA", "WITHHOLD", "partner.clearance"), _to("COL", "DELIVER", "col.cover")],
                **hidden)], "broker-sign-2026a", lambda payload: sign_checkpoint(_KEY, payload), "2026-11-01T10:02:00Z")
    with AuditIndex(path) as index:
        index.register({"t.audit.decisions": "decisions"})
        ingest = index.partition("t.audit.decisions", 0, "decisions", checker({"broker-sign-2026a": _KEY.public_key()}))
        ingest.add(0, block)
        ingest.commit()
        index.finish(datetime(2026, 11, 1, 11, tzinfo=UTC))
    yield path


def test_a_partner_auditor_reads_nothing_of_an_alert_withheld_from_it(real_index: Path, accounts: ConsoleAccounts,
                                                                      sink: Sink) -> None:
    """Over a real index, a USA auditor's search, choices, CSV, timeline and indicators show its WITHHOLD
    decision about W:1 (alert id, decision, rule, time) but not W:1's type, agency, sector, markings or
    publication, and filtering withheld decisions by agency or type finds nothing; a national auditor reads
    them all."""
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(real_index, readonly=True), accounts, sink)),
                          follow_redirects=False)
    _sign_in(client, "sam")
    search = client.get("/search").text
    # Its rule too is a function of W:1's content (its classification): read as the placeholder, never by its id.
    assert "WITHHOLD" in search and "a rule on the alert" in search
    assert "SENAFRONT" in search  # what USA was sent is described
    exported = client.get("/search.csv").text
    withheld = [r for r in csv.DictReader(io.StringIO(exported)) if r["decision"] == "WITHHOLD"]
    assert len(withheld) == 1 and withheld[0]["alert_type"] == ""
    alias = withheld[0]["alert_id"]  # W:1 was never sent to USA: its id is not USA's to read
    assert alias.startswith("withheld-") and alias in search
    timeline = client.get(f"/alerts/{alias}").text
    assert "Withheld" in timeline and "Published" not in timeline
    for page in (search, timeline, exported, client.get("/search?decision=WITHHOLD").text,
                 client.get("/indicators").text, client.get("/indicators.csv?table=shared").text,
                 client.get("/indicators.csv?table=withheld").text, client.get(f"/why?alert={alias}&partner=USA"
                                                                                "&field=subject").text):
        assert not any(h in page for h in _HIDDEN), [h for h in _HIDDEN if h in page]
        assert "partner.clearance" not in page
    assert 'id="total">0<' in client.get("/search", params={"rule": "partner.clearance"}).text
    for params in ({"decision": "WITHHOLD", "agency": "DNI"}, {"alert_type": "ARMS"}):
        assert 'id="total">0<' in client.get("/search", params=params).text
        assert client.get("/search.csv", params=params).text.splitlines()[1:] == []
    # Where a decision sits in the audit names its ingress partition (one agency's), and offsets count that
    # agency's alerts: a partner's auditor reads neither, only the agency's topic of what it was sent.
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {(r["alert_id"], r["ingress"], r["block"]) for r in rows} == {("SNM:1", "t.ingress.SENAFRONT", ""),
                                                                        (alias, "", "")}
    client.cookies.clear()
    _sign_in(client, "ana")
    national = client.get("/search", params={"alert": "W:1", "partner": "USA"}).text
    assert "ARMS" in national and "DNI" in national
    assert "Published" in client.get("/alerts/W:1").text


def test_a_partner_auditor_reads_no_border_sector_its_view_dropped(tmp_path: Path, accounts: ConsoleAccounts,
                                                                   sink: Sink) -> None:
    """Over a real index, an alert delivered to USA with its border sector dropped from USA's view: USA's auditor
    finds no sector in the indicators (chart and CSV), the search or its CSV, or the timeline; the national
    auditor's indicators count it by its sector."""
    path = tmp_path / "audit" / "index.sqlite"
    dropped = {**_to("USA", "DELIVER_REDACTED", "usa.cover"),
               "redacted": [{"field": "location.border_sector", "action": "drop", "rule": None, "named": False}]}
    block = ChainWriter("t.audit.decisions", 0).block(
        [_entry("S:1", 0, [dropped], sector="DARIEN_PUERTO_OBALDIA")], "broker-sign-2026a",
        lambda payload: sign_checkpoint(_KEY, payload), "2026-11-01T10:02:00Z")
    with AuditIndex(path) as index:
        index.register({"t.audit.decisions": "decisions"})
        ingest = index.partition("t.audit.decisions", 0, "decisions", checker({"broker-sign-2026a": _KEY.public_key()}))
        ingest.add(0, block)
        ingest.commit()
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, sink)),
                          follow_redirects=False)
    _sign_in(client, "sam")
    pages = [client.get(p).text for p in ("/indicators", "/indicators.csv?table=shared", "/search", "/search.csv",
                                          "/alerts/S:1")]
    assert "S:1" in pages[2] and "SMUGGLING" in pages[1]  # delivered: what the view kept is shown
    assert not any("OBALDIA" in page for page in pages)
    client.cookies.clear()
    _sign_in(client, "ana")
    assert "DARIEN_PUERTO_OBALDIA" in client.get("/indicators.csv?table=shared").text


def test_signing_in_again_ends_the_browsers_previous_session(accounts: ConsoleAccounts, sink: Sink) -> None:
    """A browser that signs in again gets a new session token, and the one it held before stops working: whoever
    had copied it cannot go on with it."""
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink)
    browser = local_client(create_app(config), follow_redirects=False)
    _sign_in(browser, "ana")
    old = browser.cookies["puente-console"]
    _sign_in(browser, "ana")
    assert sink.records[-1]["page"] == "sign-in" and sink.records[-1]["params"] == {"previous_session": "ended"}
    assert browser.cookies["puente-console"] != old and browser.get("/").status_code == 200
    thief = local_client(create_app(config), follow_redirects=False)
    thief.cookies.set("puente-console", old)
    assert thief.get("/").status_code == 303  # to the sign-in page


class _Ends(FakeIndex):
    """An index with no chain problem whose ends are given per test: ``ends`` rows, ``counted`` end problems."""

    ends: ClassVar[list[dict[str, Any]]] = []
    counted = 0
    read_at: str | None = "2026-11-01T11:00:00Z"

    def integrity(self, scope: Scope) -> dict[str, Any]:
        found = super().integrity(scope)
        end_findings = [{"topic": e["topic"], "partition": e["partition"], "offset": 9, "problem": e["text"]}
                        for e in self.ends if e["state"] == "short"]
        return {**found, "chains": [{**found["chains"][0], "problems": 0}], "findings": end_findings,
                "findings_total": len(end_findings), "ends": self.ends,
                "end_problems": len(end_findings) + self.counted,
                "ends_unchecked": sum(1 for e in self.ends if e["state"] == "not checked"),
                "ends_why": ["a reason given"] if any(e["state"] == "not checked" for e in self.ends) else [],
                "ends_read_at": self.read_at, "ends_counted": self.counted,
                "ends_all_checked": self.read_at is not None and all(e["state"] != "not checked" for e in self.ends)}


def _end(state: str, text: str) -> dict[str, Any]:
    return {"topic": "t.feed.USA", "partition": 0, "source": "t.feed.USA:0", "group": "t.feed.USA.subscriber",
            "last_offset": 3, "committed": 7, "state": state, "text": text, "problems": int(state == "short")}


@pytest.mark.parametrize(("ends", "counted", "read_at", "banner", "problems"), [
    ([_end("reaches", "receipts reach it")], 0, "2026-11-01T11:00:00Z", 'id="no-findings"', 0),
    ([_end("short", "receipts of the feed records from offset 4 to 6 are missing")], 0, "2026-11-01T11:00:00Z",
     'id="findings"', 1),
    ([_end("not checked", "end not checked")], 0, "2026-11-01T11:00:00Z", 'id="no-findings-unchecked"', 0),
    ([], 0, None, 'id="no-findings-unchecked"', 0),  # an index never caught up with the groups' offsets
    ([], 2, "2026-11-01T11:00:00Z", 'id="findings"', 2),  # a scoped auditor's counted decision-chain ends
])
def test_the_integrity_page_shows_every_chain_end_and_never_calls_an_unchecked_one_sound(
        accounts: ConsoleAccounts, sink: Sink, ends: list[dict[str, Any]], counted: int, read_at: str | None,
        banner: str, problems: int) -> None:
    """Chain ends the index checked against their groups' committed offsets are a table; a short one is a problem
    the banner counts, and an end not checked (or none checked at all) turns "No problem found" into a banner
    that says records dropped from a chain's end would not show."""
    fake = type("Fake", (_Ends,), {"ends": ends, "counted": counted, "read_at": read_at})
    client = local_client(create_app(ConsoleConfig(lambda: fake(), accounts, sink)), follow_redirects=False)
    _sign_in(client, "sam")
    page = client.get("/integrity").text
    assert banner in page
    assert ('id="no-findings"' in page) == (banner == 'id="no-findings"')
    assert ('id="ends-counted"' in page) == bool(counted)
    assert page.count('class="end ') == len(ends)
    for e in ends:
        assert f'data-state="{e["state"]}"' in page and e["text"] in page
    if problems:
        assert f"{problems} problem" in page
    assert sink.records[-1]["results"] == problems


@pytest.mark.parametrize(("all_checked", "shown", "absent"), [
    (True, "verifies, to its end", 'id="ends-unchecked"'),
    (False, 'id="ends-unchecked"', "verifies, to its end"),
    (None, 'id="ends-unchecked"', "verifies, to its end"),  # an index that says nothing of its ends
])
def test_the_summary_says_whole_to_the_end_only_when_every_end_was_checked(
        accounts: ConsoleAccounts, sink: Sink, all_checked: bool | None, shown: str, absent: str) -> None:
    class Whole(FakeIndex):
        def summary(self, scope: Scope) -> dict[str, Any]:
            found = {**super().summary(scope), "problems": 0}
            if all_checked is not None:
                found["ends_all_checked"] = all_checked
            return found

    client = local_client(create_app(ConsoleConfig(lambda: Whole(), accounts, sink)), follow_redirects=False)
    _sign_in(client, "ana")
    page = client.get("/").text
    assert shown in page and absent not in page


def test_a_partner_auditor_names_an_alert_never_sent_to_it_by_its_alias(real_index: Path, accounts: ConsoleAccounts,
                                                                        sink: Sink) -> None:
    """Over a real index, no page or export USA's auditor reaches names W:1 (withheld from USA): its rows, links,
    timeline and "why" name an alias; W:1's timeline is "not found" as an alert that does not exist, and a search
    by W:1 finds nothing while one by the alias finds the decision; the national auditor reads W:1."""
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(real_index, readonly=True), accounts, sink)),
                          follow_redirects=False)
    _sign_in(client, "sam")
    alias = next(r["alert_id"] for r in csv.DictReader(io.StringIO(client.get("/search.csv").text))
                 if r["decision"] == "WITHHOLD")
    pages = [client.get(p).text for p in (
        "/search", "/search.csv", "/search?decision=WITHHOLD", f"/alerts/{alias}", f"/alerts/{alias}?partner=USA",
        f"/why?alert={alias}&partner=USA&field=subject", "/receipts?hours=1", "/indicators", "/", "/integrity")]
    assert not any("W:1" in page or "W%3A1" in page for page in pages)
    assert f'href="/alerts/{alias}"' in pages[0] and "Withheld" in pages[3] and "withheld" in pages[5]
    absent, named = client.get("/alerts/NOPE:1"), client.get("/alerts/W:1")
    assert named.status_code == absent.status_code == 404 and named.text == absent.text.replace("NOPE:1", "W:1")
    assert client.get("/why", params={"alert": "W:1", "partner": "USA", "field": "subject"}).status_code == 404
    assert 'id="total">0<' in client.get("/search", params={"alert": "W:1"}).text
    assert 'id="total">1<' in client.get("/search", params={"alert": alias}).text
    client.cookies.clear()
    _sign_in(client, "ana")
    assert "W:1" in client.get("/search").text and client.get(f"/alerts/{alias}").status_code == 404
