"""The audit index: built from real sealed and signed chain records, verified as it goes, read by scope."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit import ChainWriter, verify_partition
from broker.audit_index import AlwaysKept, AuditIndex, Query, Scope, scoped
from broker.audit_index._scope import CONTENT_RULE
from broker.crypto import checker, sign_checkpoint
from puente.wire import iso_utc

DECISIONS, COL_RCPT, USA_RCPT, QUERIES = "t.audit.decisions", "t.receipts.COL", "t.receipts.USA", "t.audit.queries"
HOLDS = {DECISIONS: "decisions", COL_RCPT: "receipts", USA_RCPT: "receipts", QUERIES: "queries"}
OWNERS = {COL_RCPT: "COL", USA_RCPT: "USA"}
KEYS = {kid: Ed25519PrivateKey.generate() for kid in ("broker-sign-2026a", "COL-rcpt-2026a", "USA-rcpt-2026a")}
VERIFY = checker({kid: key.public_key() for kid, key in KEYS.items()})
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _signer(kid: str) -> Any:
    return lambda payload: sign_checkpoint(KEYS[kid], payload)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _decision(partner: str, outcome: str, rules: list[str], **more: Any) -> dict[str, Any]:
    return {"partner": partner, "decision": outcome, "agreement": f"{partner}-PAN" if outcome != "WITHHOLD" else None,
            "rules": rules, "reasons": [f"{outcome.lower()} by {rules[0]}"], "redacted": [], "policy_version": "p1",
            **more}


def _alert(alert_id: str, minute: int, decisions: list[dict[str, Any]], delay_ms: int = 500,
           **more: Any) -> dict[str, Any]:
    published = T0 + timedelta(minutes=minute)
    return {"kind": "ALERT", "alert_id": alert_id, "alert_type": "SMUGGLING", "originator": "SENAFRONT",
            "originator_country": "PAN", "classification": "RESTRICTED", "sector": "DARIEN",
            "ingress": f"t.ingress.SENAFRONT:0:{minute}", "ingress_ms": _ms(published),
            "at": iso_utc(published + timedelta(milliseconds=delay_ms)), "decisions": decisions, **more}


COL_DROP = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL",
                     redacted=[{"field": "subject.name", "action": "drop", "rule": "col.cover"},
                               {"field": "location", "action": "generalise", "rule": "col.grid"}])


def _decisions_topic() -> list[bytes]:
    """Two blocks: alerts for COL and USA, one only about COL, a dead letter."""
    writer = ChainWriter(DECISIONS, 0)
    first = [
        _alert("SNM:1", 0, [COL_DROP, _decision("USA", "WITHHOLD", ["partner.clearance"])]),
        _alert("SNM:2", 1, [_decision("COL", "WITHHOLD", ["agreement.coverage"]),
                            _decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")], delay_ms=900),
        {"kind": "DEAD_LETTER", "alert_id": "bad-1", "reason": "schema", "detail": "not an alert",
         "ingress": "t.ingress.SNM:0:7", "ingress_ms": _ms(T0), "at": iso_utc(T0)},
    ]
    second = [_alert("COL:only", 2, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")], delay_ms=100)]
    return [writer.block(first, "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0)),
            writer.block(second, "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))]


def _receipts(partner: str, alerts: list[str], *, checkpoint: bool = True, minute: int = 5) -> list[bytes]:
    writer = ChainWriter(f"t.receipts.{partner}", 0, checkpoint_every=1 << 62, chain=partner)
    out = [writer.append("RECEIPT", {"partner": partner, "alert_id": a, "version": 1, "status": "RECEIVED",
                                     "feed": f"t.feed.{partner}:0:{i}", "at": iso_utc(T0 + timedelta(minutes=minute))})
           for i, a in enumerate(alerts)]
    if checkpoint:
        out.append(writer.checkpoint(f"{partner}-rcpt-2026a", _signer(f"{partner}-rcpt-2026a"), iso_utc(T0)))
    return out


def _queries() -> list[bytes]:
    writer = ChainWriter(QUERIES, 0, checkpoint_every=1 << 62, chain="console")
    return [writer.append("QUERY", {"auditor": "ana", "scope": "national", "page": "search",
                                    "params": {"partner": "COL"}, "results": 3, "at": iso_utc(T0)})]


def _topics() -> dict[str, list[bytes]]:
    return {DECISIONS: _decisions_topic(), COL_RCPT: _receipts("COL", ["SNM:1"]),
            USA_RCPT: _receipts("USA", ["SNM:2"]), QUERIES: _queries()}


def _ingest(index: AuditIndex, topics: Mapping[str, Iterable[bytes]], upto: dict[str, int] | None = None) -> None:
    """Index each topic's records (up to ``upto[topic]`` in all) from where the index stands."""
    index.register({t: HOLDS[t] for t in topics}, OWNERS)  # type: ignore[misc]
    for topic, values in topics.items():
        ingest = index.partition(topic, 0, HOLDS[topic], VERIFY, owner=OWNERS.get(topic),  # type: ignore[arg-type]
                                 batch_rows=2)
        for offset, value in enumerate(values):
            if offset >= ingest.start and offset < (upto or {}).get(topic, 1 << 30):
                ingest.add(offset, value)
        ingest.commit()
    index.finish(T0)


@pytest.fixture
def index(tmp_path: Path) -> AuditIndex:
    made = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(made, _topics())
    return made


USA = Scope("USA")


def test_a_partner_scope_never_reads_another_partners_rows(index: AuditIndex) -> None:
    """A USA auditor gets USA's decisions and receipts only, by any page and any query, and no alert only COL has."""
    assert {r["partner"] for r in index.search(USA, Query()).rows} == {"USA"}
    assert index.search(USA, Query(partner="COL")).total == 0
    assert index.search(USA, Query(alert="COL:*")).total == 0
    assert {r["partner"] for r in index.export(USA, Query())} == {"USA"}
    assert index.timeline(USA, "COL:only") is None
    withheld = next(r["alert_id"] for r in index.search(USA, Query()).rows if r["decision"] == "WITHHOLD")
    assert {e["partner"] for e in index.timeline(USA, withheld) or [] if e["partner"]} == {"USA"}
    assert index.why(USA, "SNM:1", "COL", "subject.name") == []
    facets = index.facets(USA)
    assert facets["partners"] == ["USA"] and "col.cover" not in facets["rules"]
    indicators = index.indicators(USA)
    assert {r["partner"] for r in indicators["shared_by_month"] + indicators["withheld_by_reason"]
            + indicators["latency"]} == {"USA"}
    assert {r["partner"] for r in index.unreceipted(USA, timedelta(0), T0 + timedelta(days=1))} <= {"USA"}
    assert index.dead_letters(USA) == [] and index.queries(USA) == []
    chains = index.integrity(USA)["chains"]
    assert {c["topic"] for c in chains} == {DECISIONS, USA_RCPT}
    summary = index.summary(USA)
    assert summary["partners"] == ["USA"] and "dead_letters" not in summary


def test_a_national_auditor_sees_everything(index: AuditIndex) -> None:
    """The national scope reads every decision, receipt, dead letter and query, and the chains are sound."""
    national = Scope()
    assert index.search(national, Query()).total == 5
    assert index.summary(national)["receipts"] == 2
    assert index.dead_letters(national) == [{"reason": "schema", "source": "t.ingress.SNM", "count": 1,
                                             "first_at": iso_utc(T0), "last_at": iso_utc(T0)}]
    assert index.queries(national)[0]["auditor"] == "ana"
    assert index.problems() == 0
    assert index.search(national, Query(rule="agreement.coverage")).rows[0]["alert_id"] == "SNM:2"
    assert [r["alert_id"] for r in index.search(national, Query(alert="SNM:*")).rows] == ["SNM:2", "SNM:2", "SNM:1",
                                                                                         "SNM:1"]


def test_timeline_and_why_name_the_rule_behind_each_field(index: AuditIndex) -> None:
    """An alert's timeline runs from publication to receipt; "why" names the rule that dropped or kept a field."""
    kinds = [e["kind"] for e in index.timeline(Scope(), "SNM:1") or []]
    assert kinds[0] == "PUBLISHED" and "DELIVERED" in kinds and "WITHHELD" in kinds and kinds[-1] == "RECEIPT"
    dropped = index.why(Scope(), "SNM:1", "COL", "subject.name")[0]
    assert (dropped["outcome"], dropped["rule"], dropped["named"]) == ("dropped", "col.cover", True)
    assert index.why(Scope("COL"), "SNM:1", "COL", "location.lat")[0]["outcome"] == "generalised"
    kept = index.why(Scope(), "SNM:1", "COL", "alert_type")[0]
    assert (kept["outcome"], kept["rule"]) == ("kept", "col.cover")
    assert index.why(Scope(), "SNM:1", "USA", "alert_type")[0]["outcome"] == "withheld"


def _dump(index: AuditIndex) -> dict[str, list[Any]]:
    conn = sqlite3.connect(index.path)
    tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
              if t != "meta" and not t.startswith("sqlite_stat")]  # the planner's statistics are samples
    out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}  # noqa: S608
    conn.close()
    return out


def _same_alias_key(source: AuditIndex, target: AuditIndex) -> None:
    """Give ``target`` the aliases' key of ``source`` (as a rebuild keeps it): each index file makes its own."""
    read, conn = sqlite3.connect(source.path), sqlite3.connect(target.path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'alias_key'",
                     read.execute("SELECT value FROM meta WHERE key = 'alias_key'").fetchone())
    read.close()
    conn.close()


def test_catching_up_gives_what_a_rebuild_gives(tmp_path: Path) -> None:
    """Indexing in several runs, one stopping between receipts and their checkpoint, equals one run over all."""
    topics = _topics()
    whole = AuditIndex(tmp_path / "a" / "whole.sqlite")
    _ingest(whole, topics)
    parts = AuditIndex(tmp_path / "b" / "parts.sqlite")
    _same_alias_key(whole, parts)
    _ingest(parts, topics, upto={DECISIONS: 1, COL_RCPT: 1, USA_RCPT: 0})
    assert parts.summary(Scope())["receipts"] == 0  # COL's receipt waits for its checkpoint
    _ingest(parts, topics, upto={DECISIONS: 2})
    _ingest(parts, topics)
    assert _dump(parts) == _dump(whole)
    assert parts.position(DECISIONS, 0) == 2


def test_an_edited_record_is_a_finding_and_none_of_its_rows_are_indexed(tmp_path: Path) -> None:
    """A block edited after signing is reported where it is, and its decisions stay out of the index."""
    topics = _topics()
    topics[DECISIONS][1] = topics[DECISIONS][1].replace(b'"decision":"DELIVER"', b'"decision":"WITHHOLD"')
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, topics)
    assert index.search(Scope(), Query(alert="COL:only")).total == 0
    problems = [f["problem"] for f in index.integrity(Scope())["findings"]]
    assert any("was edited" in p for p in problems)
    assert index.integrity(Scope())["chains"][0]["problems"] >= 1  # problems first
    usa = index.integrity(USA)
    assert usa["findings"] == [] and any(c["problems"] for c in usa["chains"] if c["topic"] == DECISIONS)


def test_receipts_count_only_once_a_checkpoint_vouches_for_them(tmp_path: Path) -> None:
    """A receipt without its checkpoint is no row yet (the delivery stays unreceipted); the checkpoint makes it one."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    values = _receipts("COL", ["SNM:1"])
    _ingest(index, {DECISIONS: _decisions_topic(), COL_RCPT: values[:1]})
    late = T0 + timedelta(days=1)
    assert [r["alert_id"] for r in index.unreceipted(Scope("COL"), timedelta(hours=1), late)] == ["SNM:1", "COL:only"]
    assert any("no checkpoint" in f["problem"] for f in index.integrity(Scope("COL"))["findings"])
    _ingest(index, {COL_RCPT: values})
    assert [r["alert_id"] for r in index.unreceipted(Scope("COL"), timedelta(hours=1), late)] == ["COL:only"]
    assert index.problems() == 0


def test_a_receipt_for_no_audited_delivery_is_a_finding_not_a_row(tmp_path: Path) -> None:
    """A receipt naming an alert never delivered to that partner is reported and not indexed."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: _decisions_topic(), USA_RCPT: _receipts("USA", ["SNM:1"])})
    assert index.summary(Scope())["receipts"] == 0
    assert any("never delivered" in f["problem"] for f in index.integrity(USA)["findings"])


def test_queries_are_unsigned_by_design_but_only_queries() -> None:
    """The console's chain holds unsigned QUERY records (no tail problem); any other kind there is reported."""
    assert verify_partition(QUERIES, 0, enumerate(_queries()), VERIFY, "queries").ok
    writer = ChainWriter(QUERIES, 0, chain="console")
    other = writer.append("RECEIPT", {"partner": "console", "alert_id": "x"})
    assert not verify_partition(QUERIES, 0, enumerate([other]), VERIFY, "queries").ok
    elsewhere = ChainWriter(QUERIES, 0, chain="COL").append("QUERY", {"auditor": "x"})
    assert not verify_partition(QUERIES, 0, enumerate([elsewhere]), VERIFY, "queries").ok


def test_latency_percentiles_are_exact_nearest_rank(tmp_path: Path) -> None:
    """p50 and p95 from publication to delivery and to receipt are the nearest-rank values, per partner."""
    writer = ChainWriter(DECISIONS, 0)
    delays = list(range(100, 2100, 100))  # 20 deliveries: 100 ms ... 2000 ms
    alerts = [_alert(f"A:{i}", i, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")], delay_ms=d)
              for i, d in enumerate(delays)]
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    block = writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))
    _ingest(index, {DECISIONS: [block], COL_RCPT: _receipts("COL", ["A:0"], minute=1)})
    latency = {row["to"]: row for row in index.indicators(Scope())["latency"]}
    assert latency["delivery"].items() >= {"p50_ms": 1000, "p95_ms": 1900, "n": 20}.items()
    assert latency["receipt"].items() >= {"p50_ms": 60_000, "p95_ms": 60_000, "n": 1}.items()
    shared = index.indicators(Scope())["shared_by_month"]
    assert shared == [{"month": "2026-03", "alert_type": "SMUGGLING", "sector": "DARIEN", "partner": "COL",
                       "alerts": 20}]
    # Over the whole index the figures come from the partial indexes; with a period, from the rows:
    # the same figures either way.
    everything = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    for scope in (Scope(), Scope("COL"), Scope("USA")):
        assert index.indicators(scope) == index.indicators(scope, *everything)


def test_search_pages_newest_first_without_overlap(tmp_path: Path) -> None:
    """120 decisions page as 50, 50 and 20, newest first, each once."""
    writer = ChainWriter(DECISIONS, 0)
    alerts = [_alert(f"A:{i:03}", i, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")])
              for i in range(120)]
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    pages = [index.search(Scope(), Query(), page=p, per_page=50) for p in (1, 2, 3)]
    assert [len(p.rows) for p in pages] == [50, 50, 20] and pages[0].total == 120 and pages[0].pages == 3
    ids = [r["alert_id"] for p in pages for r in p.rows]
    assert ids == [f"A:{i:03}" for i in reversed(range(120))]


def test_a_reader_opens_the_index_read_only(index: AuditIndex) -> None:
    """The console's read-only handle reads what the indexer wrote; a missing index is a clear error."""
    with AuditIndex(index.path, readonly=True) as reader:
        assert reader.search(Scope(), Query()).total == 5
        with pytest.raises(sqlite3.OperationalError):
            reader._conn.execute("DELETE FROM decisions")
    from puente.errors import StoreError

    with pytest.raises(StoreError, match="run `puente audit index`"):
        AuditIndex(index.path.parent / "missing.sqlite", readonly=True)


def test_a_partner_scope_gets_rule_ids_never_reason_texts(tmp_path: Path) -> None:
    """Reason texts quote the alert and name other partners, and an agency's lifecycle reason is its free
    text: a partner's auditor gets the rules, decision, agreement and changed fields, never those texts."""
    writer = ChainWriter(DECISIONS, 0)
    usa = _decision("USA", "DELIVER_REDACTED", ["usa.cover"], feed="t.feed.USA",
                    reasons=["releasable_to (COL, CRI) omits USA"],
                    redacted=[{"field": "location", "action": "drop", "rule": "usa.area",
                               "why": "sector X is outside the agreed area"}])
    alerts = [_alert("UPD:1", 0, [usa], version=2, action="UPDATE", reason="informant named in annex")]
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    national = index.search(Scope(), Query()).rows[0]
    assert national["reasons"] == ["releasable_to (COL, CRI) omits USA"]
    assert national["reason"] == "informant named in annex"
    rows = [*index.search(USA, Query()).rows, *index.export(USA, Query()),
            *index.unreceipted(USA, timedelta(0), T0 + timedelta(days=1))]
    assert rows and all(r["reasons"] == [] and r["reason"] is None for r in rows)
    assert rows[0]["rules"] == ["usa.cover"] and rows[0]["decision"] == "DELIVER_REDACTED"
    assert rows[0]["redacted"] == [{"field": "location", "action": "drop", "rule": "usa.area"}]
    events = index.timeline(USA, "UPD:1") or []
    assert [e["kind"] for e in events] == ["UPDATED", "DELIVERED"]
    assert all(not e["reasons"] for e in events) and events[0]["detail"] is None
    assert "informant" not in repr(events) and "omits" not in repr(events) and "outside" not in repr(events)
    national_events = index.timeline(Scope(), "UPD:1") or []
    assert "informant named in annex" in str(national_events[0]["detail"])
    assert index.why(USA, "UPD:1", "USA", "location")[0]["rule"] == "usa.area"


def test_why_a_field_was_kept_names_every_agreement_rule_in_force(tmp_path: Path) -> None:
    """Under two agreements' rules each one's changes apply: a field neither changed was kept by both,
    and "why" names both, not whichever came first; a field one of them dropped names that one."""
    writer = ChainWriter(DECISIONS, 0)
    two = _decision("COL", "DELIVER_REDACTED", ["combifron.watchlist", "col-pan.border"], feed="t.feed.COL",
                    redacted=[{"field": "subject.name", "action": "drop", "rule": "col-pan.border"}])
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block([_alert("TWO:1", 0, [two])], "broker-sign-2026a",
                                             _signer("broker-sign-2026a"), "t")]})
    kept = index.why(Scope(), "TWO:1", "COL", "sector")[0]
    assert (kept["outcome"], kept["rule"]) == ("kept", "combifron.watchlist, col-pan.border")
    dropped = index.why(Scope("COL"), "TWO:1", "COL", "subject.name")[0]
    assert (dropped["outcome"], dropped["rule"]) == ("dropped", "col-pan.border")
    # What the policy's envelope keeps, every view keeps whatever the agreements say: its rule is the answer.
    envelope = AlwaysKept("ENVELOPE", frozenset({"alert_type", "markings", "lifecycle.action"}), "p1")
    for field in ("alert_type", "markings.classification", "markings.originator.country"):
        assert index.why(Scope("COL"), "TWO:1", "COL", field, envelope)[0]["rule"] == "ENVELOPE"
    assert index.why(Scope(), "TWO:1", "COL", "sector", envelope)[0]["rule"] == "combifron.watchlist, col-pan.border"
    assert index.why(Scope(), "TWO:1", "COL", "markingsX", envelope)[0]["rule"] != "ENVELOPE"
    later = AlwaysKept("ENVELOPE", envelope.paths, "p2")
    assert index.why(Scope(), "TWO:1", "COL", "alert_type", later)[0]["rule"] == "ENVELOPE (as in policy p2)"
    assert index.why(Scope(), "TWO:1", "COL", "sector", later)[0]["rule"] == (
        "combifron.watchlist, col-pan.border (unless the envelope of policy p1, not loaded, kept it)")


def test_why_a_field_inside_a_dropped_array_names_the_drop(tmp_path: Path) -> None:
    """A field inside an array's items (``payload.items[].category``) went wherever the array did: an array
    dropped whole dropped it, and "why" says so, as it does for a field inside a dropped record; a field of a
    like name beside the array (``payload.itemsX``) is not inside it."""
    writer = ChainWriter(DECISIONS, 0)
    dropped = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL",
                        redacted=[{"field": "payload.items", "action": "drop", "rule": "col.cover", "named": False},
                                  {"field": "location", "action": "drop", "rule": "col.cover"}])
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block([_alert("PN:1", 0, [dropped])], "broker-sign-2026a",
                                             _signer("broker-sign-2026a"), "t")]})
    for scope in (Scope(), Scope("COL")):
        name = "PN:1" if scope.national else index.alert_name(scope, "PN:1") or "PN:1"
        for field in ("payload.items", "payload.items[].category", "location.latitude"):
            assert index.why(scope, name, "COL", field)[0]["outcome"] == "dropped", field
        assert index.why(scope, name, "COL", "payload.itemsX")[0]["outcome"] == "kept"


def test_why_a_field_with_a_change_inside_it_or_a_cut_change_list_is_never_kept(tmp_path: Path) -> None:
    """A field a change reached only inside (``location`` with ``location.border_sector`` dropped) is "partly changed",
    listing that change; a field no listed change reaches while the list was cut (``truncated`` not 0, -1 when all was
    cut, or a change cut to its text) is "unknown (the change list was cut)", never "kept"; a change of the field
    itself still says what it was, and a whole list that reaches it nowhere says "kept"."""
    writer = ChainWriter(DECISIONS, 0)
    inside = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL",
                       redacted=[{"field": "location.border_sector", "action": "drop", "rule": "col.cover"}])
    cut = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL", truncated=3,
                    redacted=[{"field": "location.border_sector", "action": "drop", "rule": "col.cover"}] * 20)
    # Only its reasons or rules were cut (``truncated`` counts them too): a change list shorter than what ``shrink``
    # keeps is whole.
    reasons_cut = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL", truncated=30,
                            redacted=[{"field": "location.border_sector", "action": "drop", "rule": "col.cover"}])
    emptied = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL", truncated=-1)
    unreadable = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL", redacted=["{'field': 'subj"])
    unlisted = _decision("COL", "DELIVER_REDACTED", ["col.cover"], feed="t.feed.COL", redacted="not a list")
    alerts = [_alert(f"CUT:{i}", i, [d]) for i, d in enumerate((inside, cut, emptied, unreadable, unlisted,
                                                                 reasons_cut))]
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    for scope in (Scope(), Scope("COL")):
        def why(alert: str, field: str, scope: Scope = scope) -> dict[str, Any]:
            name = alert if scope.national else index.alert_name(scope, alert) or alert
            return index.why(scope, name, "COL", field)[0]

        partly = why("CUT:0", "location")
        assert (partly["outcome"], partly["rule"]) == ("partly changed", "col.cover")
        assert partly["changes"] == [{"field": "location.border_sector", "action": "drop", "rule": "col.cover"}]
        assert why("CUT:0", "location.border_sector")["outcome"] == "dropped"
        assert (why("CUT:0", "subject.name")["outcome"], why("CUT:0", "subject.name")["changes"]) == ("kept", [])
        for alert in ("CUT:1", "CUT:2", "CUT:3", "CUT:4"):
            assert why(alert, "subject.name")["outcome"] == "unknown (the change list was cut)", (alert, scope)
        assert why("CUT:1", "location.border_sector")["outcome"] == "dropped"  # listed: known whatever was cut
        assert why("CUT:1", "location")["changes"] == [{"field": "location.border_sector", "action": "drop",
                                                       "rule": "col.cover"}] * 20
        assert why("CUT:5", "subject.name")["outcome"] == "kept"
        assert why("CUT:5", "location")["outcome"] == "partly changed"


def test_why_a_withheld_field_names_the_rule_that_withheld_not_the_envelope(index: AuditIndex) -> None:
    """A withheld decision names its first failing rule, whatever the envelope keeps."""
    envelope = AlwaysKept("ENVELOPE", frozenset({"alert_type"}), "p1")
    withheld = index.why(Scope(), "SNM:1", "USA", "alert_type", envelope)[0]
    assert (withheld["outcome"], withheld["rule"]) == ("withheld", "partner.clearance")


def test_numbers_beyond_sqlite_integers_are_absent_not_a_crash(tmp_path: Path) -> None:
    """A partner-signed receipt (or a decision) may carry any number: one beyond SQLite's 64-bit integers is
    stored as absent (a version sent that no receipt can name: the receipt is a finding, not a row), and the
    index keeps catching up."""
    writer = ChainWriter(USA_RCPT, 0, checkpoint_every=1 << 62, chain="USA")
    huge = 18446744073709551615
    receipts = [writer.append("RECEIPT", {"partner": "USA", "alert_id": "BIG:1", "version": huge, "status": "RECEIVED",
                                          "feed": "t.feed.USA:0:0", "at": iso_utc(T0)}),
                writer.checkpoint("USA-rcpt-2026a", _signer("USA-rcpt-2026a"), iso_utc(T0))]
    block = ChainWriter(DECISIONS, 0).block(
        [_alert("BIG:1", 0, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")], ingress_ms=2**63,
                version=2**63)], "broker-sign-2026a", _signer("broker-sign-2026a"), "t")
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: [block], USA_RCPT: receipts})
    assert index.summary(Scope())["receipts"] == 0 and index.problems() == 1
    assert any("never delivered to USA at that version" in f["problem"] for f in index.integrity(USA)["findings"])
    assert index.position(USA_RCPT, 0) == 2
    big = index.search(Scope(), Query(alert="BIG:1")).rows[0]
    assert big["ingress_ms"] is None and big["version"] == 1
    assert index.timeline(Scope(), "BIG:1") is not None
    _ingest(index, {DECISIONS: [block], USA_RCPT: receipts})  # a later run goes on


def test_a_failing_sqlite_write_is_a_store_error_naming_the_index(tmp_path: Path) -> None:
    """SQLite failing while indexing is one StoreError naming the file, not a raw sqlite3 error."""
    from puente.errors import StoreError

    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    index.register({DECISIONS: "decisions"})
    ingest = index.partition(DECISIONS, 0, "decisions", VERIFY)
    index.close()
    with pytest.raises(StoreError, match=r"index\.sqlite"):
        ingest.add(0, _decisions_topic()[0])
    ingest.abort()


def test_a_rebuild_is_moved_into_place_only_once_whole(tmp_path: Path) -> None:
    """While a rebuild runs, readers of the index read the old one; it replaces it only when complete, and
    a rebuild that fails leaves the old one and no temporary file."""
    from broker.audit_index import rebuilding

    path = tmp_path / "audit" / "index.sqlite"
    with AuditIndex(path) as old:
        _ingest(old, {DECISIONS: _decisions_topic()[:1]})
    with rebuilding(path) as temp:
        assert temp.parent == path.parent and temp != path
        with AuditIndex(temp) as new:
            _ingest(new, _topics(), upto={DECISIONS: 2})
            with AuditIndex(path, readonly=True) as reader:
                assert reader.search(Scope(), Query()).total == 4  # the old index, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.sqlite"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with AuditIndex(path, readonly=True) as reader:
        assert reader.search(Scope(), Query()).total == 5
    with pytest.raises(RuntimeError), rebuilding(path) as temp:
        with AuditIndex(temp) as new:
            _ingest(new, {DECISIONS: _decisions_topic()[:1]})
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.sqlite"]
    with AuditIndex(path) as again:  # the next writer continues it
        assert again.search(Scope(), Query()).total == 5 and again.problems() == 0


def test_a_receipt_unmatched_and_unvouched_is_one_problem(tmp_path: Path) -> None:
    """A receipt for no delivery that no checkpoint vouches for counts once, as `audit verify` counts it; the
    integrity texts are bounded and counted."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: _decisions_topic(), USA_RCPT: _receipts("USA", ["SNM:1"], checkpoint=False)})
    assert index.problems() == 1 and index.problems(USA) == 1 and index.summary(USA)["problems"] == 1
    assert index.problems(Scope("COL")) == 0
    found = index.integrity(USA)
    assert found["findings_total"] == 1 and len(found["findings"]) == 1
    assert sum(c["problems"] for c in found["chains"]) == 1
    _ingest(index, {USA_RCPT: _receipts("USA", ["SNM:1", "COL:only"], checkpoint=False)})
    assert index.problems() == 1  # the tail: a receipt is matched to a delivery only once vouched for
    again = AuditIndex(tmp_path / "j" / "index.sqlite")
    _ingest(again, {DECISIONS: _decisions_topic(), USA_RCPT: _receipts("USA", ["COL:only", "COL:too"])})
    assert again.problems() == 2  # vouched for, each receipt for no delivery is a problem
    bounded = again.integrity(Scope(), limit=1)
    assert len(bounded["findings"]) == 1 and bounded["findings_total"] == 2


def test_a_receipt_no_checkpoint_vouches_for_binds_no_delivery(tmp_path: Path) -> None:
    """Anyone may write a partner's receipts topic. An unsigned receipt in a chain of its own, naming a real
    delivery at another feed record, must not take that delivery's place: the partner's own receipt, vouched
    for by its checkpoint, still acknowledges it (a row, and the decision's receipt time)."""
    forged = ChainWriter("t.receipts.USA", 0, checkpoint_every=1 << 62, chain="USA/x").append(
        "RECEIPT", {"partner": "USA", "alert_id": "SNM:2", "version": 1, "status": "RECEIVED",
                    "feed": "t.feed.USA:0:99", "at": iso_utc(T0 + timedelta(minutes=5))})
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: _decisions_topic(), USA_RCPT: [forged, *_receipts("USA", ["SNM:2"])]})
    rows = index._conn.execute("SELECT alert_id, feed FROM receipts WHERE partner = 'USA'").fetchall()
    assert rows == [("SNM:2", "t.feed.USA:0:0")]
    got = index._conn.execute("SELECT receipt_at_ms FROM decisions WHERE alert_id = 'SNM:2' AND partner = 'USA' "
                              "AND went = 1").fetchall()
    assert got and all(r[0] is not None for r in got)
    assert index.problems() == 1  # the forged receipt: no checkpoint vouches for it


def _withheld_index(tmp_path: Path) -> AuditIndex:
    """SNM:1 goes to USA; W:1 (another agency, type, sector, marking) is withheld from USA and sent to COL;
    W:2 is decided for USA but its feed record never went."""
    writer = ChainWriter(DECISIONS, 0)
    hidden: dict[str, Any] = {"alert_type": "ARMS", "originator": "DNI", "originator_country": "PAN",
                              "classification": "SECRET", "sector": "BOCAS", "markings": ["NOFORN"],
                              "area": "Isla Colon"}
    alerts = [
        _alert("SNM:1", 0, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")]),
        _alert("W:1", 1, [_decision("USA", "WITHHOLD", ["partner.clearance"]),
                          _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")], **hidden),
        _alert("W:2", 2, [_decision("USA", "DELIVER", ["usa.cover"], sent=False, redacted=[
            {"field": "subject.passport", "action": "drop", "rule": "usa.cover", "named": False}])], **hidden),
    ]
    index = AuditIndex(tmp_path / "w" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    return index


_HIDDEN = ("ARMS", "DNI", "SECRET", "BOCAS", "NOFORN", "Isla Colon", "SENAFRONT")


def test_a_partner_scope_reads_nothing_descriptive_of_an_alert_it_was_not_sent(tmp_path: Path) -> None:
    """A decision about USA that delivered nothing shows USA's auditor only the allowed fields (alert id,
    partner, decision, rules, time decided...), by search, export, timeline and "why"; the national auditor
    reads the whole row."""
    index = _withheld_index(tmp_path)
    rows = [*index.search(USA, Query()).rows, *index.export(USA, Query())]
    hidden = [r for r in rows if r["alert_id"] != "SNM:1"]
    assert all(r["alert_id"].startswith("withheld-") for r in hidden)  # never sent to USA: no id (``alias``)
    assert len(hidden) == 4 and {r["decision"] for r in hidden} == {"WITHHOLD", "DELIVER"}
    for row in hidden:
        assert not any(h in repr(v) for v in row.values() for h in _HIDDEN)
        assert row["rules"] and row["at"] and row["partner"] == "USA"
    from broker.audit_index import UNDELIVERED_FIELDS

    assert all({k for k, v in row.items() if v not in (None, [], False)} <= UNDELIVERED_FIELDS for row in hidden)
    sent = next(r for r in rows if r["alert_id"] == "SNM:1")
    assert (sent["alert_type"], sent["originator"], sent["sector"]) == ("SMUGGLING", "SENAFRONT", "DARIEN")
    named = {r["decision"]: r["alert_id"] for r in hidden}  # W:1 withheld, W:2 decided: each by its alias
    w1, w2 = named["WITHHOLD"], named["DELIVER"]
    for alert in (w1, w2):
        events = index.timeline(USA, alert) or []
        assert [e["kind"] for e in events] in (["WITHHELD"], ["DECIDED"]), events
        assert not any(h in repr(events) for h in _HIDDEN)
    assert index.why(USA, w1, "USA", "subject.name")[0]["outcome"] == "withheld"
    # A view never sent: its changed paths would say what the alert held (a passport: a person).
    assert not any("passport" in repr(r) for r in hidden)
    never_sent = index.why(USA, w2, "USA", "subject.passport")
    assert [(w["outcome"], w["rule"]) for w in never_sent] == [("not sent", CONTENT_RULE)]  # usa.cover: its type
    assert index.why(Scope(), "W:2", "USA", "subject.passport")[0]["outcome"] == "dropped"
    assert [e["kind"] for e in index.timeline(USA, "SNM:1") or []] == ["PUBLISHED", "DELIVERED"]
    national = index.search(Scope(), Query(alert="W:1", partner="USA")).rows[0]
    assert (national["alert_type"], national["originator"], national["markings"]) == ("ARMS", "DNI", ["NOFORN"])
    assert next(e["kind"] for e in index.timeline(Scope(), "W:1") or []) == "PUBLISHED"


def test_a_partner_scope_cannot_filter_or_count_what_it_was_not_sent_by_its_descriptions(tmp_path: Path) -> None:
    """Filters on an alert's descriptions (agency, type) match only rows delivered to a scoped auditor's
    partner, and the choices and indicators it gets come from those rows: withheld decisions stay countable
    by decision and rule, never characterised."""
    index = _withheld_index(tmp_path)
    assert index.search(USA, Query(decision="WITHHOLD")).total == 1  # its own decision: countable
    assert index.search(USA, Query(decision="WITHHOLD", agency="DNI")).total == 0
    assert index.search(USA, Query(alert_type="ARMS")).total == 0
    assert list(index.export(USA, Query(agency="DNI"))) == []
    assert index.search(USA, Query(agency="SENAFRONT")).total == 1
    assert index.search(Scope(), Query(decision="WITHHOLD", agency="DNI")).total == 1
    facets = index.facets(USA)
    assert facets["agencies"] == ["SENAFRONT"] and facets["alert_types"] == ["SMUGGLING"]
    assert "WITHHOLD" in facets["decisions"] and facets["rules"] == ["usa.cover"]  # partner.clearance: withheld
    assert "DNI" in index.facets(Scope())["agencies"]
    everything = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    for found in (index.indicators(USA), index.indicators(USA, *everything)):
        assert not any(h in repr(found) for h in ("ARMS", "BOCAS", "DNI"))
        assert found["withheld_by_reason"] == [{"reason": CONTENT_RULE, "partner": "USA", "count": 1}]


def test_the_scoped_row_is_an_allow_list_and_fails_closed() -> None:
    """A field the allow-list does not name (one the audit adds later, say) is blanked for a row that did
    not deliver, and a row that does not say it delivered counts as not delivered."""
    from broker.audit_index import scoped

    changed = [{"field": "subject.passport", "action": "drop", "rule": "r", "named": False}]
    row = {"kind": "DECISION", "alert_id": "X:1", "partner": "USA", "decision": "DELIVER", "rules": ["r"],
           "reasons": ["why"], "redacted": changed, "at": "t", "alert_type": "ARMS", "future_marking": "NOFORN"}
    for given in (row, {**row, "delivered": False}, {**row, "delivered": "yes"}):
        out = scoped(USA, given)
        assert out["future_marking"] is None and out["alert_type"] is None and out["reasons"] == []
        assert out["redacted"] == []  # the view's changed paths say what the alert held (a passport: a person)
        assert (out["alert_id"], out["partner"], out["decision"], out["rules"]) == (None, "USA", "DELIVER",
                                                                                    [CONTENT_RULE])
        # The index says USA was sent it, and by which id USA knows it: that one, never the alert's own.
        assert scoped(USA, {**given, "held_as": "ref-abc"})["alert_id"] == "ref-abc"
    shown = scoped(USA, {**row, "delivered": True})
    assert shown["alert_type"] == "ARMS" and shown["reasons"] == [] and shown["redacted"] == changed
    assert shown["alert_id"] is None  # delivered, but the index named no id for it: never the row's own
    # Delivered, a field no allow-list names is blanked too: it is nothing the partner's view is known to keep.
    assert shown["future_marking"] is None
    assert scoped(Scope(), row) == row


@pytest.mark.parametrize("partner", ["", " ", "U SA", "USA\n", "Ü", "x" * 65, 0, b"USA"])
def test_a_scope_refuses_a_partner_that_is_no_partner_id(partner: Any) -> None:
    """Only None is national: an empty or malformed partner is refused, never read as every partner's rows."""
    with pytest.raises(ValueError, match="not a partner id"):
        Scope(partner)


def test_the_index_reads_a_scope_as_national_only_when_its_partner_is_none(index: AuditIndex) -> None:
    """A scope whose partner tests false (made past the check) reads that partner's rows, none, not everyone's."""
    empty = object.__new__(Scope)
    object.__setattr__(empty, "partner", "")
    assert not empty.national
    assert index.search(empty, Query()).rows == [] and index.count(empty, Query()) == 0
    assert index.timeline(empty, "COL:only") is None and index.facets(empty)["partners"] == []
    assert index.unreceipted(empty, timedelta(0), datetime.now(UTC)) == []
    summary = index.summary(empty)
    assert (summary["decisions"], summary["partners"], summary["receipts"]) == (0, [], 0)
    assert "dead_letters" not in summary
    assert index.indicators(empty) == {"shared_by_month": [], "withheld_by_reason": [], "latency": []}
    assert index.search(empty, Query(rule="col.cover")).rows == []


@pytest.fixture(scope="module")
def big_index(tmp_path_factory: pytest.TempPathFactory) -> AuditIndex:
    """The index above with 20,000 more decisions spread over four partners, two outcomes and its agencies, and
    SQLite's statistics gathered: the planner then chooses as it would on a real index."""
    made = AuditIndex(tmp_path_factory.mktemp("big") / "audit" / "index.sqlite")
    _ingest(made, _topics())
    conn = made._conn
    columns = [row[1] for row in conn.execute("PRAGMA table_info(decisions)")]
    rows = conn.execute("SELECT * FROM decisions").fetchall()
    conn.execute("BEGIN")
    for i in range(20_000):
        row = dict(zip(columns, rows[i % len(rows)], strict=True))
        row.update(id=10_000 + i, partner=("USA", "COL", "CRI", "FEAN")[i % 4], at_ms=row["at_ms"] + i,
                   decision="WITHHOLD" if i % 20 == 0 else "DELIVER")
        conn.execute(f"INSERT INTO decisions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608
                     list(row.values()))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    return made


@pytest.mark.parametrize("q", [Query(agency="SNM"), Query(alert_type="WATCHLIST_HIT"), Query(agreement="A1"),
                               Query(decision="WITHHOLD"), Query(decision="WITHHOLD", agency="SNM"),
                               Query(rule="col.cover"), Query(agency="SNM", since=T0, until=T0 + timedelta(days=1))],
                         ids=["agency", "type", "agreement", "decision", "decision-and-agency", "rule",
                              "agency-in-window"])
def test_a_scoped_search_walks_only_its_partners_rows(big_index: AuditIndex, q: Query) -> None:
    """How long a search answering 0 takes must not tell a partner's auditor how many rows other partners have:
    its query is led by the partner (the plan names an index on the partner first), never by an index over
    every partner's rows of an agency, a type, an agreement, an outcome or a rule."""
    index = big_index
    where, args = index._where(USA, q)
    plan = " ".join(str(row[-1]) for row in index._all(
        f"EXPLAIN QUERY PLAN SELECT id FROM decisions WHERE {where} ORDER BY at_ms DESC, id DESC", args))  # noqa: S608 - the index's own clause
    used = set(re.findall(r"(?:INDEX|USING COVERING INDEX) (\w+)", plan))
    # A rule on the content matches a row by its own id (``_where``): a seek of one rule row, by rule and that id.
    assert all(m == "(rule=? AND decision_id=?)" for m in re.findall(r"INDEX rules_by_rule (\([^)]*\))", plan)), plan
    assert used and used <= {"decisions_by_partner", "decisions_by_partner_decision", "rules_by_partner",
                             "rules_by_rule"}, plan


def test_count_is_uncapped_where_a_search_page_stops(index: AuditIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search page counts up to COUNT_LIMIT; ``count`` (what an export streams, for the query log) does not."""
    everything = len(list(index.export(Scope(None), Query())))
    monkeypatch.setattr("broker.audit_index._index.COUNT_LIMIT", 2)
    page = index.search(Scope(None), Query())
    assert (page.total, page.capped) == (2, True) and index.count(Scope(None), Query()) == everything > 2
    assert index.count(USA, Query()) == len(list(index.export(USA, Query())))


def test_an_index_file_from_before_the_partner_led_index_still_answers_a_scoped_auditor(tmp_path: Path) -> None:
    """A file written before decisions_shared_by_partner existed, opened read-only (the console's way): a
    scoped auditor's indicators come from the general index until a catch-up adds the new one."""
    path = tmp_path / "audit" / "index.sqlite"
    made = AuditIndex(path)
    _ingest(made, _topics())
    want = made.indicators(USA)
    made.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX decisions_shared_by_partner")  # as the older file has it
    older = AuditIndex(path, readonly=True)
    try:
        assert older.indicators(USA) == want
    finally:
        older.close()


# ---- receipts bound to the feed records they name ----------------------------------------------------------------
DAY = 24 * 60  # minutes


def _lifecycle() -> list[bytes]:
    """X delivered to COL as version 1 (T0), version 2 (two days on) and a recall notice, version 3 (four days on)."""
    writer = ChainWriter(DECISIONS, 0)
    versions = [
        _alert("X", 0, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _alert("X", 2 * DAY, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL", supersedes=1)],
               version=2, action="UPDATE", previous_version=1),
        _alert("X", 4 * DAY, [_decision("COL", "RECALL", ["lifecycle.recall"], feed="t.feed.COL", recalls=2)],
               version=3, action="RECALL", previous_version=2),
    ]
    return [writer.block([e], "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0)) for e in versions]


def test_why_names_a_recall_notice_and_an_unknown_decision_never_withheld(tmp_path: Path) -> None:
    """A recall notice is "recall notice sent" (or "not sent") under the recall's rule, an unknown decision is
    "unknown decision": "withheld" is WITHHOLD's alone."""
    writer = ChainWriter(DECISIONS, 0)
    versions = [
        _alert("X", 0, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _alert("X", DAY, [_decision("COL", "RECALL", ["lifecycle.recall"], feed="t.feed.COL", recalls=1)],
               version=2, action="RECALL", previous_version=1),
        _alert("X", 2 * DAY, [_decision("COL", "RECALL", ["lifecycle.recall"], feed="t.feed.COL", recalls=1,
                                        sent=False)], version=3, action="RECALL", previous_version=2),
        _alert("X", 3 * DAY, [_decision("COL", "QUARANTINE", ["future.rule"])], version=4, previous_version=3),
        _alert("X", 4 * DAY, [_decision("COL", "WITHHOLD", ["partner.clearance"])], version=5, previous_version=4),
    ]
    blocks = [writer.block([e], "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0)) for e in versions]
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _ingest(index, {DECISIONS: blocks})
        for scope in (Scope(), Scope("COL")):
            # COL's auditor reads no rule id of a row whose view did not go to COL (``OPEN_RULES``): a placeholder.
            hid = (lambda rule: rule) if scope.national else (lambda rule: CONTENT_RULE)
            assert [(r["decision"], r["outcome"], r["rule"]) for r in index.why(scope, "X", "COL", "subject.name")] == [
                ("DELIVER", "kept", "col.cover"), ("RECALL", "recall notice sent", hid("lifecycle.recall")),
                ("RECALL", "recall notice not sent", hid("lifecycle.recall")),
                ("QUARANTINE", "unknown decision", hid("future.rule")),
                ("WITHHOLD", "withheld", hid("partner.clearance"))]


def _col_receipts(*receipts: tuple[int | None, str, int, int], batch: int = 1 << 30) -> list[bytes]:
    """COL's receipts, each (version, status, feed offset, minutes after T0), a checkpoint vouching for every
    ``batch`` of them and for the last."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    out = []
    for i, (version, status, offset, minutes) in enumerate(receipts, 1):
        out.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": "X", "version": version, "status": status,
                                             "feed": f"t.feed.COL:0:{offset}",
                                             "at": iso_utc(T0 + timedelta(minutes=minutes))}))
        if i % batch == 0 or i == len(receipts):
            out.append(writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0)))
    return out


def _waiting(index: AuditIndex) -> list[tuple[int, str]]:
    late = T0 + timedelta(days=30)
    return [(r["version"], r["decision"]) for r in index.unreceipted(Scope("COL"), timedelta(hours=1), late)]


ALL_THREE = [(1, "DELIVER"), (2, "DELIVER"), (3, "RECALL")]


def test_a_rejected_receipt_acknowledges_no_delivery_of_its_alert(tmp_path: Path) -> None:
    """A REJECTED receipt (the partner could not open the record: no version) is sound, and acknowledges nothing:
    not its own delivery, not a later version, not a recall notice the subscriber never read. The receipt of the
    same record once opened acknowledges that delivery alone."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    receipts = _col_receipts((None, "REJECTED: SignatureError", 0, 1), (1, "RECEIVED", 0, 5), batch=1)
    _ingest(index, {DECISIONS: _lifecycle(), COL_RCPT: receipts}, upto={COL_RCPT: 2})
    assert index.problems() == 0 and index.summary(Scope())["receipts"] == 1
    assert _waiting(index) == ALL_THREE
    _ingest(index, {COL_RCPT: receipts})
    assert index.problems() == 0 and _waiting(index) == ALL_THREE[1:]


def test_a_receipt_naming_a_version_never_sent_is_a_finding_and_acknowledges_nothing(tmp_path: Path) -> None:
    """One receipt naming version 99 does not acknowledge every version up to it: it is a problem, not a row, and
    every delivery of the alert stays without a receipt."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: _lifecycle(), COL_RCPT: _col_receipts((99, "RECEIVED", 0, 1))})
    assert index.problems() == 1 and index.problems(Scope("COL")) == 1 and index.summary(Scope())["receipts"] == 0
    assert [f["problem"] for f in index.integrity(Scope("COL"))["findings"]] == [
        "receipt for alert 'X' version 99 at feed t.feed.COL:0:0, which the audited decisions never delivered to COL "
        "at that version (it sent version 1, 2, 3 there)"]
    assert _waiting(index) == ALL_THREE


def test_a_receipt_dated_before_the_delivery_it_names_is_a_finding(tmp_path: Path) -> None:
    """A receipt of version 2 signed a minute after version 1 went out (two days before version 2 did) cannot be
    version 2's: a partner does not acknowledge in advance."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _ingest(index, {DECISIONS: _lifecycle(), COL_RCPT: _col_receipts((1, "RECEIVED", 0, 1), (2, "RECEIVED", 1, 2))})
    assert index.problems() == 1 and _waiting(index) == ALL_THREE[1:]
    assert "a receipt cannot precede its delivery" in index.integrity(Scope())["findings"][0]["problem"]


def test_each_delivery_is_acknowledged_by_the_receipt_of_its_own_feed_record(tmp_path: Path) -> None:
    """Receipts of version 1, version 2 and the recall notice, each at its own record, acknowledge each delivery
    (and time the receipt latency of the views); a receipt naming a record that held another version, or a
    delivery at a second record, is a finding."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    receipts = _col_receipts((1, "RECEIVED", 0, 5), (2, "RECEIVED", 1, 2 * DAY + 5), (3, "RECALLED", 2, 4 * DAY + 5),
                             (2, "RECEIVED", 0, 4 * DAY + 6), (1, "DUPLICATE", 3, 4 * DAY + 7))
    _ingest(index, {DECISIONS: _lifecycle(), COL_RCPT: receipts})
    assert _waiting(index) == [] and index.summary(Scope())["receipts"] == 3
    problems = [f["problem"] for f in index.integrity(Scope())["findings"]]
    assert len(problems) == 2 and index.problems() == 2
    assert "names feed record t.feed.COL:0:0, which COL's receipts already name for alert 'X' version 1" in problems[0]
    assert "already put that delivery at t.feed.COL:0:0: one delivery is one feed record" in problems[1]
    latency = next(r for r in index.indicators(Scope())["latency"] if r["to"] == "receipt")
    assert latency["n"] == 2  # the two views; a recall notice is no view


def test_an_index_of_an_older_layout_asks_for_a_rebuild(tmp_path: Path) -> None:
    """An index written before receipts were bound to feed records (layout 5) is refused, read-only or not, with
    the command that makes it again: its receipts were matched by alert and version."""
    from puente.errors import StoreError

    path = tmp_path / "audit" / "index.sqlite"
    AuditIndex(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 5")
    for readonly in (True, False):
        with pytest.raises(StoreError, match=r"layout 5\): run `puente audit index --rebuild`"):
            AuditIndex(path, readonly=readonly)


def test_an_index_of_layout_19_asks_for_a_rebuild(tmp_path: Path) -> None:
    """Layout 20 keeps, per record read, what checks its chain's start once Kafka deletes the records before it
    (``records_read``): an index of 19 holds none of it for the records it read, so reader and writer alike ask for
    a rebuild, and nothing is written to it."""
    from broker.audit_index._store import SCHEMA_VERSION
    from puente.errors import StoreError

    path = tmp_path / "audit" / "index.sqlite"
    AuditIndex(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE records_read")
        conn.execute("PRAGMA user_version = 19")
    for readonly in (True, False):
        with pytest.raises(StoreError, match=r"layout 19\): run `puente audit index --rebuild`"):
            AuditIndex(path, readonly=readonly)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 19 != SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'records_read'").fetchone() == (0,)


def test_an_index_of_layout_20_is_brought_up_to_date_by_the_writer_in_place(tmp_path: Path) -> None:
    """Layout 21 only adds ``decisions_by_partner_alert``: a reader of an index of 20 says to run `puente audit index`
    once (no rebuild), and the writer adds the index and the new layout number, keeping the rows."""
    from broker.audit_index._store import SCHEMA_VERSION
    from puente.errors import StoreError

    path = tmp_path / "audit" / "index.sqlite"
    AuditIndex(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
        conn.execute("DROP INDEX decisions_by_partner_alert")
        conn.execute("PRAGMA user_version = 20")
    with pytest.raises(StoreError, match=r"layout 20: run `puente audit index` once, which adds what this version "
                                         r"reads \(no rebuild\)"):
        AuditIndex(path, readonly=True)
    AuditIndex(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 21
        assert conn.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone() == ("yes",)
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'decisions_by_partner_alert'"
                            ).fetchone() == (1,)
    AuditIndex(path, readonly=True).close()


# ---- a scoped auditor reads of an alert only what its partner's view kept ----------------------------------------
def _changed(*changes: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"field": f, "action": a, "rule": None, "named": False} for f, a in changes]


def _views_index(tmp_path: Path) -> AuditIndex:
    """Alerts delivered to USA whose views changed the fields its columns describe: S:1 dropped the border sector,
    S:2 the whole location, S:3 generalised the originator (DNI), S:4's changes were cut short in its block; K:1
    kept everything."""
    writer = ChainWriter(DECISIONS, 0)

    def to_usa(alert_id: str, minute: int, changes: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        # A view that changed nothing is a DELIVER (``_audit_fields``: DELIVER_REDACTED lists its changes).
        outcome = "DELIVER_REDACTED" if changes else "DELIVER"
        return _alert(alert_id, minute, [_decision("USA", outcome, ["usa.cover"], feed="t.feed.USA",
                                                   redacted=changes, **more)], alert_type="WATCHLIST_HIT",
                      sector="DARIEN_PUERTO_OBALDIA", originator_country="PAN")

    alerts = [
        to_usa("S:1", 0, _changed(("location.border_sector", "drop"))),
        to_usa("S:2", 1, _changed(("location", "drop"))),
        {**to_usa("S:3", 2, _changed(("markings.originator", "generalise"))), "originator": "DNI",
         "ingress": "t.ingress.DNI:0:2"},
        # As ``shrink`` leaves a list it cut: its first 20 changes.
        to_usa("S:4", 3, _changed(*[("subject.name", "drop")] * 20), truncated=12),
        to_usa("K:1", 4, []),
    ]
    index = AuditIndex(tmp_path / "v" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    return index


def test_a_partner_scope_reads_no_column_its_partners_view_did_not_keep(tmp_path: Path) -> None:
    """A delivered row shows a scoped auditor each descriptive column only where the view kept the field it comes
    from: the sector blank where the view dropped the border sector or the location, the agency (and the ingress
    topic that names it) blank where it generalised the originator, every one blank where the changes were cut
    short; by search, export, timeline and the indicators (chart and CSV alike). The national auditor reads all."""
    index = _views_index(tmp_path)
    rows = {r["alert_id"]: r for r in index.search(USA, Query()).rows}
    assert all(r["delivered"] for r in rows.values())
    assert [rows[a]["sector"] for a in ("S:1", "S:2", "S:3", "S:4", "K:1")] == [
        None, None, "DARIEN_PUERTO_OBALDIA", None, "DARIEN_PUERTO_OBALDIA"]
    assert (rows["S:1"]["alert_type"], rows["S:1"]["originator"], rows["S:1"]["classification"]) == (
        "WATCHLIST_HIT", "SENAFRONT", "RESTRICTED")
    assert (rows["S:3"]["originator"], rows["S:3"]["ingress"], rows["S:3"]["originator_country"]) == (None, None, None)
    assert all(rows["S:4"][c] is None for c in ("alert_type", "originator", "sector", "classification", "ingress"))
    assert {r["alert_id"]: r["sector"] for r in index.export(USA, Query())} == {a: r["sector"] for a, r in rows.items()}
    assert not any("DNI" in repr(e) for e in index.timeline(USA, "S:3") or [])
    everything = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    for found in (index.indicators(USA), index.indicators(USA, *everything)):
        by = {(r["alert_type"], r["sector"]): r["alerts"] for r in found["shared_by_month"]}
        assert by == {("WATCHLIST_HIT", None): 2, ("WATCHLIST_HIT", "DARIEN_PUERTO_OBALDIA"): 2, (None, None): 1}
    national = {r["alert_id"]: r for r in index.search(Scope(), Query()).rows}
    assert {r["sector"] for r in national.values()} == {"DARIEN_PUERTO_OBALDIA"}
    assert national["S:3"]["originator"] == "DNI"
    assert index.indicators(Scope())["shared_by_month"][0]["sector"] == "DARIEN_PUERTO_OBALDIA"


def test_a_partner_scope_cannot_filter_or_choose_by_a_value_its_view_did_not_keep(tmp_path: Path) -> None:
    """A scoped auditor's agency and type filters, and the choices offered, see a row only where its view kept the
    field: DNI (generalised away) matches nothing and is not offered; the national auditor finds it."""
    index = _views_index(tmp_path)
    assert index.search(USA, Query(agency="DNI")).total == 0 and list(index.export(USA, Query(agency="DNI"))) == []
    assert index.search(Scope(), Query(agency="DNI")).total == 1
    assert index.search(USA, Query(alert_type="WATCHLIST_HIT")).total == 4  # not S:4, whose changes were cut short
    facets = index.facets(USA)
    assert facets["agencies"] == ["SENAFRONT"] and facets["alert_types"] == ["WATCHLIST_HIT"]
    assert "DNI" in index.facets(Scope())["agencies"]


def test_the_view_columns_are_an_allow_list_keyed_by_source_field() -> None:
    """Each descriptive column names the alert field it is copied from; a change of that field, of one holding it or
    of one inside it covers it; changes that cannot be read whole cover every column."""
    from broker.audit_index import VIEW_COLUMNS, covered_columns

    assert VIEW_COLUMNS["sector"] == "location.border_sector"
    assert covered_columns({"redacted": _changed(("location", "drop"))}) == {"sector"}
    assert covered_columns({"redacted": _changed(("markings", "mask"))}) == {
        "originator", "originator_country", "classification", "ingress"}
    assert covered_columns({"redacted": _changed(("subject.name", "drop"))}) == set()
    for unreadable in ({}, {"redacted": "location"}, {"redacted": [{"action": "drop"}]},
                       {"redacted": [], "truncated": -1}, {"decision": "DELIVER_REDACTED", "redacted": []},
                       {"redacted": _changed(*[("subject.name", "drop")] * 20), "truncated": 3}):
        assert covered_columns(unreadable) == set(VIEW_COLUMNS)
    # Only reasons or rules cut (``truncated`` counts them too): a change list shorter than what ``shrink`` keeps is
    # whole, and covers what it names.
    assert covered_columns({"redacted": _changed(("location", "drop")), "truncated": 30}) == {"sector"}


def test_records_never_read_are_counted_beside_the_dead_letters(tmp_path: Path) -> None:
    """A GAP entry (ingress records deleted before the broker read them, skipped with --accept-gap) is indexed,
    verifies as a decision block's entry, and shows on the national dead-letters page counted by record, under
    "never read"; a partner's auditor sees nothing of it."""
    gap = {"kind": "GAP", "reason": "deleted", "detail": "records 4-9 of t.ingress.SNM[0] were deleted",
           "from_offset": 4, "next_offset": 10, "skipped": 6, "ingress": "t.ingress.SNM:0:9", "at": iso_utc(T0)}
    chain = ChainWriter(DECISIONS, 0)
    values = [chain.block(b, "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))
              for b in ([_alert("SNM:1", 0, [COL_DROP])], [gap, {**gap, "skipped": 2, "from_offset": 10,
                                                                  "next_offset": 12, "ingress": "t.ingress.SNM:0:11"}])]
    index = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(index, {DECISIONS: values})
    assert index.problems() == 0
    assert index.dead_letters(Scope()) == [{"reason": "never read (deleted)", "source": "t.ingress.SNM", "count": 8,
                                            "first_at": iso_utc(T0), "last_at": iso_utc(T0)}]
    assert index.dead_letters(USA) == []


def test_alert_states_lost_are_named_as_such_not_as_records_never_read(tmp_path: Path) -> None:
    """A GAP entry recording alert states lost (``states-lost``, read on with --accept-gap) skips no ingress record:
    the dead-letters page names it for what it is and counts the entries, not "never read" with a count of 0."""
    lost = {"kind": "GAP", "reason": "states-lost", "detail": "t.lifecycle[0] ends at offset 0", "from_offset": 10,
            "next_offset": 10, "skipped": 0, "ingress": "t.ingress.SNM:0:9", "at": iso_utc(T0)}
    chain = ChainWriter(DECISIONS, 0)
    values = [chain.block(b, "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))
              for b in ([_alert("SNM:1", 9, [COL_DROP])], [lost])]
    index = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(index, {DECISIONS: values})
    assert index.problems() == 0
    assert index.dead_letters(Scope()) == [{"reason": "alert states lost (who holds what)", "source": "t.ingress.SNM",
                                            "count": 1, "first_at": iso_utc(T0), "last_at": iso_utc(T0)}]


@pytest.mark.parametrize(("reason", "named"), [
    ("audit-expired", "audit chain expired (a new one started)"),
    ("audit-deleted", "audit chain deleted, not expired (a new one started, --accept-gap)"),
    ("deliveries-lost", "deliveries decided, never written (their feed gone, --accept-gap)")])
def test_an_audit_chain_gone_whole_is_named_as_such_not_as_records_never_read(tmp_path: Path, reason: str,
                                                                             named: str) -> None:
    """The GAP entry that opens a slot's new chain once its old one went whole (``audit-expired``: retention;
    ``audit-deleted``: deleted, the broker found, and read past with --accept-gap) skips no ingress record: the
    dead-letters page names it as what it is and counts the entries, not "never read" with 0."""
    expired = {"kind": "GAP", "reason": reason, "detail": "t.audit.decisions[0] held no block",
               "from_offset": 10, "next_offset": 10, "skipped": 0, "ingress": "t.ingress.SNM:0:9", "at": iso_utc(T0)}
    chain = ChainWriter(DECISIONS, 0)
    values = [chain.block([expired], "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))]
    index = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(index, {DECISIONS: values})
    assert index.problems() == 0
    assert index.dead_letters(Scope()) == [{"reason": named, "source": "t.ingress.SNM", "count": 1,
                                            "first_at": iso_utc(T0), "last_at": iso_utc(T0)}]


def test_an_index_made_before_gap_entries_still_lists_its_dead_letters(index: AuditIndex) -> None:
    """The console reads an index without writing: one made before the gaps table lists its dead letters
    all the same, rather than failing on the missing table."""
    index._conn.execute("DROP TABLE gaps")
    assert [r["reason"] for r in index.dead_letters(Scope())] == ["schema"]


def test_a_partner_auditor_reads_no_place_in_the_audit() -> None:
    """Where a decision sits (its index row id, its record and block, its ingress offset) would count and place the
    decisions about other alerts and partners, and name the agency of one withheld: blanked for a partner's
    auditor, who reads the agency's topic only where the view kept the originator; a national one reads all."""
    row = {"kind": "DECISION", "id": 5, "record": "t.audit.decisions:4:17", "block": 3, "delivered": True,
           "partner": "USA", "decision": "DELIVER", "ingress": "t.ingress.SNM:1:9", "redacted": []}
    seen = scoped(Scope("USA"), row)
    assert (seen["id"], seen["record"], seen["block"], seen["ingress"]) == (None, None, None, "t.ingress.SNM")
    assert scoped(Scope(), row) == row


def track_blocks(versions: int, partners: Callable[[int], tuple[str, ...]] = lambda _: ("COL", "USA"),
                 recall_at: int | None = None, dead: int = 0, foreign: int = 0) -> list[bytes]:
    """Decision blocks of one alert, SENAN:TRACK-1, of ``versions`` versions, each delivered to ``partners(v)``;
    then a recall reusing version ``recall_at``, ``dead`` dead letters under the alert's id, and ``foreign`` more
    another agency wrote under it (refused as ``origin``: not proven SENAN's)."""
    writer, blocks, entries = ChainWriter(DECISIONS, 0), [], []
    for version in range(1, versions + 1):
        alert = _alert("SENAN:TRACK-1", 0, [_decision(p, "DELIVER", [f"{p}.cover"], feed=f"t.feed.{p}")
                                            for p in partners(version)],
                       version=version, action=None if version == 1 else "UPDATE")
        alert["ingress"] = f"t.ingress.SENAN:0:{version}"
        alert["at"] = iso_utc(T0 + timedelta(seconds=version))
        entries.append(alert)
    if recall_at is not None:
        recall = _alert("SENAN:TRACK-1", 0, [_decision(p, "RECALL", ["lifecycle.recall"], feed=f"t.feed.{p}")
                                             for p in ("COL", "USA")], version=recall_at, action="RECALL")
        recall["ingress"] = f"t.ingress.SENAN:0:{versions + 1}"
        recall["at"] = iso_utc(T0 + timedelta(seconds=versions + 1))
        entries.append(recall)
    entries += [{"kind": "DEAD_LETTER", "alert_id": "SENAN:TRACK-1", "reason": "replay", "detail": f"copy {i}",
                 "ingress": f"t.ingress.SENAN:1:{i}", "ingress_ms": _ms(T0), "at": iso_utc(T0)} for i in range(dead)]
    entries += [{"kind": "DEAD_LETTER", "alert_id": "SENAN:TRACK-1", "reason": "origin", "detail": f"forged {i}",
                 "ingress": f"t.ingress.PN:1:{i}", "ingress_ms": _ms(T0), "at": iso_utc(T0)} for i in range(foreign)]
    for first in range(0, len(entries), 100):
        blocks.append(writer.block(entries[first:first + 100], "broker-sign-2026a", _signer("broker-sign-2026a"), "t"))
    return blocks


def test_a_timeline_and_why_list_an_alerts_newest_versions_and_count_the_rest(tmp_path: Path) -> None:
    """An alert of more versions than ``TIMELINE_VERSIONS`` (a vessel's track): its timeline and its "why" rows list
    the newest that many, and say first how many earlier versions they leave out, for a national auditor and a
    partner's alike; one of no more lists every version and says nothing. The page's size no longer grows with the
    alert's versions (20,000 made a timeline of 35 MiB)."""
    from broker.audit_index import TIMELINE_VERSIONS, VERSIONS_NOT_SHOWN

    versions = TIMELINE_VERSIONS + 37
    path = tmp_path / "audit" / "index.sqlite"
    index = AuditIndex(path)
    index.register({DECISIONS: "decisions"})
    ingest = index.partition(DECISIONS, 0, "decisions", VERIFY, batch_rows=5000)
    for offset, block in enumerate(track_blocks(versions)):
        ingest.add(offset, block)
    ingest.commit()
    index.finish(T0)
    for scope in (Scope(), Scope("USA")):
        named = "SENAN:TRACK-1" if scope.national else index.alert_name(scope, "SENAN:TRACK-1")
        assert named is not None
        events = index.timeline(scope, named)
        assert events is not None and events[0]["kind"] == VERSIONS_NOT_SHOWN and events[0]["not_shown"] == 37
        assert "37 earlier versions not shown" in events[0]["detail"]
        shown = {e["version"] for e in events if e["kind"] in ("DELIVERED", "UPDATED", "PUBLISHED")}
        assert shown == set(range(38, versions + 1)), scope
        why = index.why(scope, named, "USA", "summary")
        assert why[0]["kind"] == VERSIONS_NOT_SHOWN and why[0]["not_shown"] == 37
        assert [r["version"] for r in why[1:]] == list(range(38, versions + 1))
    index.close()


def _track_index(path: Path, versions: int, **more: Any) -> AuditIndex:
    index = AuditIndex(path)
    index.register({DECISIONS: "decisions"})
    ingest = index.partition(DECISIONS, 0, "decisions", VERIFY, batch_rows=5000)
    for offset, block in enumerate(track_blocks(versions, **more)):
        ingest.add(offset, block)
    ingest.commit()
    index.finish(T0)
    return index


def test_a_long_timeline_lists_a_recall_that_reuses_an_old_version(tmp_path: Path) -> None:
    """A recall may reuse a version number long past (the agency's latest it still had): the timeline and "why"
    list it however many versions came after, as the newest event it is."""
    from broker.audit_index import TIMELINE_VERSIONS

    index = _track_index(tmp_path / "audit" / "index.sqlite", TIMELINE_VERSIONS + 50, recall_at=5)
    for scope in (Scope(), Scope("COL")):
        named = index.alert_name(scope, "SENAN:TRACK-1")
        events = index.timeline(scope, named or "")
        assert events is not None
        recalls = [e for e in events if e["decision"] == "RECALL"]
        assert recalls and all(e["version"] == 5 for e in recalls) and events[-1]["decision"] == "RECALL", scope
        why = index.why(scope, named or "", "COL", "summary")
        assert why[-1]["decision"] == "RECALL" and why[-1]["version"] == 5  # last: after the versions it follows
        assert [r["version"] for r in why[1:-1]] == list(range(51, TIMELINE_VERSIONS + 51))
    index.close()


def test_a_national_timeline_of_one_partner_is_bounded_by_that_partners_versions(tmp_path: Path) -> None:
    """COL was decided only in the first 50 of 300 versions: a national auditor's timeline of COL (``partner``)
    lists those 50, not the newest 200 versions of all partners, which hold none of COL's."""
    index = _track_index(tmp_path / "audit" / "index.sqlite", 300,
                         partners=lambda v: ("COL", "USA") if v <= 50 else ("USA",))
    events = index.timeline(Scope(), "SENAN:TRACK-1", "COL")
    assert events is not None
    assert {e["version"] for e in events if e["partner"] == "COL"} == set(range(1, 51))
    assert not [e for e in events if e["partner"] not in ("COL", None)]
    everyone = index.timeline(Scope(), "SENAN:TRACK-1")
    assert everyone is not None and not [e for e in everyone if e["partner"] == "COL"]  # the newest 200: USA's
    index.close()


def test_dead_letters_others_wrote_under_an_id_never_push_its_own_out_of_the_timeline(tmp_path: Path) -> None:
    """PN writes, with its own key, hundreds of records keyed with SENAN's alert id: each is refused as ``origin``
    (not proven SENAN's), and listed apart, its own newest TIMELINE_DEAD_LETTERS, so SENAN's own dead letters under
    the id stay listed however many come after."""
    from broker.audit_index import DEAD_LETTERS_NOT_SHOWN, TIMELINE_DEAD_LETTERS

    index = _track_index(tmp_path / "audit" / "index.sqlite", 3, dead=5, foreign=TIMELINE_DEAD_LETTERS + 30)
    events = index.timeline(Scope(), "SENAN:TRACK-1")
    assert events is not None and events[0]["kind"] == DEAD_LETTERS_NOT_SHOWN and events[0]["not_shown"] == 30
    listed = [e["detail"] for e in events if e["kind"] == "DEAD_LETTER"]
    assert sum("copy" in d for d in listed) == 5  # SENAN's own, all listed
    forged = [d for d in listed if "forged" in d]
    assert len(forged) == TIMELINE_DEAD_LETTERS and all("(unproven)" in d for d in forged)
    index.close()


def test_a_timeline_lists_the_newest_dead_letters_under_an_id_and_counts_the_rest(tmp_path: Path) -> None:
    """Dead letters under one id (its records' key, which whoever writes the agency's topic chooses): the newest
    TIMELINE_DEAD_LETTERS are listed, and an event first says how many earlier ones are not."""
    from broker.audit_index import DEAD_LETTERS_NOT_SHOWN, TIMELINE_DEAD_LETTERS

    index = _track_index(tmp_path / "audit" / "index.sqlite", 3, dead=TIMELINE_DEAD_LETTERS + 12)
    events = index.timeline(Scope(), "SENAN:TRACK-1")
    assert events is not None and events[0]["kind"] == DEAD_LETTERS_NOT_SHOWN and events[0]["not_shown"] == 12
    assert "12 earlier dead letters under this id not shown" in events[0]["detail"]
    listed = [e["detail"] for e in events if e["kind"] == "DEAD_LETTER"]
    assert len(listed) == TIMELINE_DEAD_LETTERS and listed[-1].endswith(f"copy {TIMELINE_DEAD_LETTERS + 11}")
    assert not [e for e in index.timeline(Scope("USA"), index.alert_name(Scope("USA"), "SENAN:TRACK-1") or "") or []
                if e["kind"] in (DEAD_LETTERS_NOT_SHOWN, "DEAD_LETTER")]
    index.close()
