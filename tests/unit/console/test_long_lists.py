"""Pages listing more than one page holds: they count what they do not show, page through it, and say so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from broker.audit import ChainWriter
from broker.audit_index import TIMELINE_RECEIPTS, TIMELINE_VERSIONS, AuditIndex, Scope
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import (
    COL_RCPT,
    DECISIONS,
    QUERIES,
    T0,
    _alert,
    _decision,
    _decisions_topic,
    _ingest,
    _signer,
    track_blocks,
)
from tests.unit.broker.test_audit_index_receipt_text import _flood
from tests.unit.console.conftest import PASSWORD, Sink, _sign_in, local_client


def _undelivered_receipts(folder: Path, n: int) -> Path:
    """An index of ``n`` deliveries to USA, none of them receipted."""
    writer = ChainWriter(DECISIONS, 0)
    alerts = [_alert(f"U:{i}", i % 50, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")])
              for i in range(n)]
    blocks = [writer.block(alerts[i:i + 300], "broker-sign-2026a", _signer("broker-sign-2026a"), "2026-03-01T12:00:00Z")
              for i in range(0, n, 300)]
    path = folder / "index.sqlite"
    with AuditIndex(path) as made:
        _ingest(made, {DECISIONS: blocks})
    return path


def _client(path: Path, accounts: ConsoleAccounts, sink: Sink, who: str) -> TestClient:
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, sink)),
                          follow_redirects=False)
    assert _sign_in(client, who).status_code == 303
    return client


def test_receipts_counts_every_delivery_without_a_receipt_and_pages_through_them(
        tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """1,005 deliveries without a receipt are said and recorded as 1,005 (not the first 1,000), 50 a page."""
    sink = Sink()
    sam = _client(_undelivered_receipts(tmp_path, 1005), accounts, sink, "sam")
    first = sam.get("/receipts?hours=1").text
    assert re.search(r'id="total">1,005</strong> deliveries with no vouched receipt after 1 hours · page 1 of 21',
                     first)
    assert first.count("<tr><td>USA</td>") == 50 and 'rel="next" href="/receipts?hours=1&amp;page=2"' in first
    assert (sink.records[-1]["results"], sink.records[-1]["params"]) == (1005, {"hours": 1, "page": 1})
    last = sam.get("/receipts?hours=1&page=21").text
    assert last.count("<tr><td>USA</td>") == 5 and 'rel="next"' not in last and 'rel="prev"' in last
    beyond = sam.get("/receipts?hours=1&page=22").text
    assert 'id="past-the-end"' in beyond and "has a vouched receipt" not in beyond


def test_receipts_says_and_records_that_its_count_stopped(tmp_path: Path, accounts: ConsoleAccounts,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the count's cap the page says "N+" and the query log records the count as capped."""
    sink = Sink()
    sam = _client(_undelivered_receipts(tmp_path, 120), accounts, sink, "sam")
    monkeypatch.setattr("broker.audit_index._index.COUNT_LIMIT", 100)
    page = sam.get("/receipts?hours=1").text
    assert re.search(r'id="total">100\+</strong> deliveries with no vouched receipt after 1 hours · page 1,', page)
    assert (sink.records[-1]["results"], sink.records[-1]["params"]) == (100, {"hours": 1, "page": 1,
                                                                               "capped": "yes"})


def test_search_records_that_its_count_stopped(tmp_path: Path, accounts: ConsoleAccounts,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A search past the count's cap is recorded with its count as capped, as /receipts and /queries are: the
    query log's figure is a lower bound, and says so."""
    sink = Sink()
    sam = _client(_undelivered_receipts(tmp_path, 120), accounts, sink, "sam")
    monkeypatch.setattr("broker.audit_index._index.COUNT_LIMIT", 100)
    assert sam.get("/search?partner=USA").status_code == 200
    record = sink.records[-1]
    assert record["results"] == 100 and record["params"].get("capped") == "yes"
    assert sam.get("/search?partner=USA&decision=WITHHOLD").status_code == 200
    assert "capped" not in sink.records[-1]["params"]


def test_queries_counts_every_query_and_pages_through_them(tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """205 queries indexed: the page says 205, shows the latest 200 and links the 5 older; the log records 205."""
    writer = ChainWriter(QUERIES, 0, checkpoint_every=1 << 62, chain="console")
    records = [writer.append("QUERY", {"auditor": "ana", "scope": "national", "page": "search",
                                       "params": {"alert": f"Q:{i}"}, "results": 1, "at": iso_utc(T0)})
               for i in range(205)]
    path = tmp_path / "index.sqlite"
    with AuditIndex(path) as made:
        _ingest(made, {QUERIES: records})
    sink = Sink()
    ana = _client(path, accounts, sink, "ana")
    first = ana.get("/queries").text
    assert re.search(r'id="total">205</strong> queries indexed · page 1 of 2', first)
    assert first.count('<td class="nowrap">') == 200 and "alert=Q:204" in first and "alert=Q:4<" not in first
    assert (sink.records[-1]["results"], sink.records[-1]["params"]) == (205, {"page": 1})
    older = ana.get(re.search(r'rel="next" href="([^"]*)"', first).group(1).replace("&amp;", "&")).text  # type: ignore[union-attr]
    assert older.count('<td class="nowrap">') == 5 and "alert=Q:0<" in older
    sam = _client(path, accounts, sink, "sam")
    assert sam.get("/queries").status_code == 404 and sink.records[-1]["results"] == 0


def test_a_timeline_says_how_many_receipts_of_a_partner_it_does_not_list(
        tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """An alert COL sent 130 receipts of, at its one delivery, lists the first and the first TIMELINE_RECEIPTS of the
    others, and says, at the top and where they begin, that 29 more are not shown: to a national auditor, to
    COL's, and under ?partner=COL."""
    path = tmp_path / "index.sqlite"
    with AuditIndex(path) as made:
        _ingest(made, {DECISIONS: _decisions_topic(), COL_RCPT: _flood(TIMELINE_RECEIPTS + 30)})
    accounts.add("cole", "COL", PASSWORD)
    sink = Sink()
    for who, url in (("ana", "/alerts/SNM:1"), ("cole", "/alerts/SNM:1"), ("ana", "/alerts/SNM:1?partner=COL")):
        page = _client(path, accounts, sink, who).get(url).text
        assert page.count('<li class="event receipt">') == TIMELINE_RECEIPTS + 1
        assert re.search(r'id="not-shown">Not shown: 29 receipts from COL\. A timeline lists each partner.s first '
                         rf'receipt of each delivery and its first {TIMELINE_RECEIPTS} other receipts', page)
        assert page.count('<li class="event receipts_not_shown">') == 1
        assert ("29 more receipts from COL not shown: a timeline lists the first receipt of each delivery and the "
                f"first {TIMELINE_RECEIPTS} of a partner") in page


def test_a_timeline_and_why_of_a_long_track_say_how_many_versions_they_leave_out(
        tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """An alert of TIMELINE_VERSIONS + 37 versions: its timeline and "why" pages say at the top that 37 earlier
    versions are not shown, and list the newest, to a national auditor and to USA's."""
    path = tmp_path / "index.sqlite"
    with AuditIndex(path) as made:
        _ingest(made, {DECISIONS: track_blocks(TIMELINE_VERSIONS + 37)})
    accounts.add("usa", "USA", PASSWORD)
    with AuditIndex(path, readonly=True) as index:  # the name USA's auditor reads on its rows
        names = {"ana": "SENAN:TRACK-1", "usa": index.alert_name(Scope("USA"), "SENAN:TRACK-1")}
    for who, name in names.items():
        client = _client(path, accounts, Sink(), who)
        page = client.get(f"/alerts/{name}").text
        assert re.search(r'id="versions-not-shown">Not shown: 37 earlier versions\. A timeline lists the newest '
                         rf'{TIMELINE_VERSIONS} versions', page), who
        assert page.count('<li class="event delivered">') == (2 if who == "ana" else 1) * TIMELINE_VERSIONS
        why = client.get(f"/why?alert={name}&partner=USA&field=summary").text
        assert 'id="versions-not-shown">Not shown: 37 earlier versions' in why, who
        assert why.count("<tr>") == TIMELINE_VERSIONS + 1  # the header's row and one per version shown


def test_a_timeline_within_the_bound_says_nothing_is_left_out(tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """An alert with few receipts shows no "not shown" line."""
    path = tmp_path / "index.sqlite"
    with AuditIndex(path) as made:
        _ingest(made, {DECISIONS: _decisions_topic(), COL_RCPT: _flood(3)})
    page = _client(path, accounts, Sink(), "ana").get("/alerts/SNM:1").text
    assert page.count('<li class="event receipt">') == 3 and 'id="not-shown"' not in page
