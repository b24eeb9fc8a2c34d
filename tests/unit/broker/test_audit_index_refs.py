"""Partners know each alert by a keyed reference: the index matches their receipts by it, a scoped auditor reads
it (never the alert's own id), and a national auditor reads the own id and finds the alert by any reference."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope
from policies import alert_reference

from .test_audit_index import COL_RCPT, DECISIONS, T0, USA_RCPT, _alert, _decision, _ingest, _receipts, _signer

REF_KEY = bytes(range(32))  # the broker's alert-reference key: the index never holds it
USA, COL, NATIONAL = Scope("USA"), Scope("COL"), Scope()
SHARED = "SENAFRONT:IP-BOC-2026-000014"  # sent to USA and COL at version 1, withheld from both at version 2
COL_ONLY = "SENAFRONT:IP-BOC-2026-000015"  # withheld from USA, sent to COL
UNREAD = "SENAFRONT:IP-BOC-2026-000016"  # sent to USA, which signs no receipt of it
OWN = "IP-BOC-2026"  # what every own id above holds, and no reference or alias


def ref(partner: str, alert_id: str) -> str:
    return alert_reference(REF_KEY, partner, alert_id)


def _entry(alert_id: str, minute: int, decisions: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    """An ALERT entry recording, as the broker does, each reference of a partner sent a feed record."""
    sent = [d["partner"] for d in decisions if d["decision"] != "WITHHOLD"]
    refs = {"refs": {p: ref(p, alert_id) for p in sent}} if sent else {}
    return _alert(alert_id, minute, decisions, **refs, **more)


def _decisions() -> list[bytes]:
    writer = ChainWriter(DECISIONS, 0)
    alerts = [
        _entry(SHARED, 0, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA"),
                           _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _entry(COL_ONLY, 1, [_decision("USA", "WITHHOLD", ["partner.clearance"]),
                             _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _entry(SHARED, 2, [_decision("USA", "WITHHOLD", ["caveat.PANAMA_ONLY"]),
                           _decision("COL", "WITHHOLD", ["caveat.PANAMA_ONLY"])], version=2),
        _entry(UNREAD, 3, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")]),
    ]
    return [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]


def _topics() -> dict[str, list[bytes]]:
    """The decisions, and each partner's receipts naming its references (at the feed records it was sent)."""
    return {DECISIONS: _decisions(), USA_RCPT: _receipts("USA", [ref("USA", SHARED)]),
            COL_RCPT: _receipts("COL", [ref("COL", SHARED), ref("COL", COL_ONLY)])}


def _index(path: Path) -> AuditIndex:
    index = AuditIndex(path)
    _ingest(index, _topics())
    return index


def _matched(index: AuditIndex) -> list[tuple[str, str, int | None]]:
    conn = sqlite3.connect(index.path)
    try:
        return sorted(conn.execute("SELECT partner, alert_id, decision_id FROM receipts").fetchall())
    finally:
        conn.close()


def test_receipts_naming_a_partners_reference_match_its_delivery(tmp_path: Path) -> None:
    """Each receipt names its partner's reference and is a row bound to the delivery it acknowledges: no finding,
    no delivery listed as unreceipted but the one no receipt names, the latency to receipt counted."""
    index = _index(tmp_path / "a" / "index.sqlite")
    assert index.problems() == 0, index.integrity(NATIONAL)["findings"]
    matched = _matched(index)
    assert [(p, a) for p, a, _ in matched] == sorted([("COL", ref("COL", SHARED)), ("COL", ref("COL", COL_ONLY)),
                                                      ("USA", ref("USA", SHARED))])
    assert all(d is not None for _, _, d in matched)
    waiting = index.unreceipted(NATIONAL, timedelta(0), T0 + timedelta(days=1))
    assert [(r["alert_id"], r["partner"]) for r in waiting] == [(UNREAD, "USA")]
    latency = {(r["partner"], r["to"]): r["n"] for r in index.indicators(NATIONAL)["latency"]}
    assert latency[("USA", "receipt")] == 1 and latency[("COL", "receipt")] == 2


def test_receipts_read_before_their_decisions_match_once_the_decisions_are_indexed(tmp_path: Path) -> None:
    """Receipts indexed before any decision are held unmatched, then matched by reference once the decisions
    come: the index a catch-up leaves is the one a single run gives."""
    topics = _topics()
    index = AuditIndex(tmp_path / "a" / "index.sqlite")
    _ingest(index, {t: topics[t] for t in (USA_RCPT, COL_RCPT)})
    assert index.problems() == 3 and _matched(index) == []
    _ingest(index, {DECISIONS: topics[DECISIONS]})
    _ingest(index, topics)
    assert index.problems() == 0 and len(_matched(index)) == 3
    assert _matched(index) == _matched(_index(tmp_path / "b" / "index.sqlite"))


def _everything(index: AuditIndex, scope: Scope, names: list[str]) -> str:
    """Every text ``scope`` reads of the index: its pages, exports, timelines and "why" of each name given."""
    now = T0 + timedelta(days=1)
    read: list[Any] = [index.search(scope, Query()).rows, list(index.export(scope, Query())),
                       index.unreceipted(scope, timedelta(0), now), index.facets(scope), index.summary(scope),
                       index.indicators(scope), index.indicators(scope, since=T0, until=now), index.integrity(scope),
                       index.dead_letters(scope), index.queries(scope)]
    for name in names:
        read += [index.search(scope, Query(alert=name)).rows, index.timeline(scope, name),
                 index.why(scope, name, str(scope.partner), "subject"),
                 index.search(scope, Query(alert=name[:6] + "*")).rows]
    return repr(read)


def test_a_scoped_auditor_reads_its_partners_reference_and_never_the_alerts_own_id(tmp_path: Path) -> None:
    """USA's auditor reads an alert USA was sent by USA's reference on every row (its withheld version 2 too), one
    never sent by its alias, and nowhere the alert's own id; it finds and opens the alert by that reference, with
    USA's receipt, and by neither the own id nor another partner's reference."""
    index = _index(tmp_path / "a" / "index.sqlite")
    mine, unread = ref("USA", SHARED), ref("USA", UNREAD)
    rows = list(index.export(USA, Query()))
    named = {(r["alert_id"], r["version"], r["decision"]) for r in rows}
    alias = next(a for a, _, d in named if a.startswith("withheld-"))
    assert named == {(mine, 1, "DELIVER"), (mine, 2, "WITHHOLD"), (alias, 1, "WITHHOLD"), (unread, 1, "DELIVER")}
    assert OWN not in _everything(index, USA, [mine, unread, alias])
    assert [r["version"] for r in index.search(USA, Query(alert=mine)).rows] == [2, 1]
    assert index.search(USA, Query(alert="ref-*")).total == 3 and index.count(USA, Query(alert="withheld-*")) == 1
    assert [r["alert_id"] for r in index.unreceipted(USA, timedelta(0), T0 + timedelta(days=1))] == [unread]
    kinds = [e["kind"] for e in index.timeline(USA, mine) or []]
    assert kinds.count("RECEIPT") == 1 and "DELIVERED" in kinds and "WITHHELD" in kinds
    assert [w["outcome"] for w in index.why(USA, mine, "USA", "subject")] == ["kept", "withheld"]
    for given in (SHARED, UNREAD, COL_ONLY, ref("COL", SHARED), "SENAFRONT:*"):
        assert index.search(USA, Query(alert=given)).total == 0 and index.timeline(USA, given) is None
        assert index.why(USA, given, "USA", "subject") == []
    theirs = ref("COL", COL_ONLY)
    assert {r["alert_id"] for r in index.export(COL, Query())} == {ref("COL", SHARED), theirs}
    assert OWN not in _everything(index, COL, [theirs, ref("COL", SHARED)])
    assert [e["kind"] for e in index.timeline(COL, theirs) or []][-1] == "RECEIPT"


def test_a_national_auditor_reads_the_alerts_own_id_and_finds_it_by_any_reference(tmp_path: Path) -> None:
    """The national auditor reads each alert's own id, with each row's reference beside it where its partner was
    sent a record; a partner's reference (what its receipts name) opens the alert's own timeline, with every
    partner's receipts."""
    index = _index(tmp_path / "a" / "index.sqlite")
    rows = list(index.export(NATIONAL, Query()))
    assert {r["alert_id"] for r in rows} == {SHARED, COL_ONLY, UNREAD}
    assert {(r["partner"], r["version"], r["ref"]) for r in rows if r["alert_id"] == SHARED} == {
        ("USA", 1, ref("USA", SHARED)), ("COL", 1, ref("COL", SHARED)), ("USA", 2, None), ("COL", 2, None)}
    whole = index.timeline(NATIONAL, SHARED) or []
    assert {e["partner"] for e in whole if e["kind"] == "RECEIPT"} == {"USA", "COL"}
    for given in (ref("USA", SHARED), ref("COL", SHARED)):
        assert index.timeline(NATIONAL, given) == whole
        assert {r["alert_id"] for r in index.search(NATIONAL, Query(alert=given)).rows} == {SHARED}
        assert index.why(NATIONAL, given, "COL", "subject") == index.why(NATIONAL, SHARED, "COL", "subject")
        # And by its start, as a scoped auditor finds its own: every row of the alert, whosever reference it is.
        assert {r["alert_id"] for r in index.search(NATIONAL, Query(alert=given[:12] + "*")).rows} == {SHARED}
        assert index.search(NATIONAL, Query(alert=given[:12] + "*")).total == 4
    assert index.search(NATIONAL, Query(alert="ref-*")).total == 7  # every row of the three alerts, each sent
    assert index.search(NATIONAL, Query(alert="SENAFRONT:*")).total == 7
    assert index.timeline(NATIONAL, "ref-" + "a" * 26) is None
