"""A joint-oversight auditor names an alert its partner was never sent by a keyed alias, never by its id."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope, rebuilding
from broker.audit_index._index import _HELD_AS
from broker.audit_index._scope import scoped

from .test_audit_index import DECISIONS, T0, _alert, _decision, _ingest, _signer

USA, COL = Scope("USA"), Scope("COL")
SECRET = "SNM:PTY-20261117-000001"  # a reference names the post, the date and a per-post sequence
LATER = "SNM:PTY-20261117-000002"  # withheld from USA at version 1, sent at version 2
BOTH = "SNM:PTY-20261117-000003"  # withheld from USA and COL


def _decisions() -> dict[str, list[bytes]]:
    writer = ChainWriter(DECISIONS, 0)
    alerts = [
        _alert(SECRET, 0, [_decision("USA", "WITHHOLD", ["caveat.PANAMA_ONLY"]),
                           _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _alert(SECRET, 1, [_decision("USA", "WITHHOLD", ["caveat.PANAMA_ONLY"]),
                           _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")], version=2),
        _alert(LATER, 2, [_decision("USA", "WITHHOLD", ["partner.clearance"])]),
        _alert(LATER, 3, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")], version=2),
        _alert(BOTH, 4, [_decision("USA", "WITHHOLD", ["partner.clearance"]),
                         _decision("COL", "WITHHOLD", ["partner.clearance"])]),
    ]
    return {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]}


def _index(path: Path) -> AuditIndex:
    index = AuditIndex(path)
    _ingest(index, _decisions())
    return index


def _alias_of(index: AuditIndex, alert_id: str) -> str:
    """The alias the index keeps for ``alert_id`` in USA's scope (its rules, the alert's markings, are not USA's to
    read: ``OPEN_RULES``)."""
    return str(index._one("SELECT alias FROM decisions WHERE alert_id = ? AND partner = 'USA' LIMIT 1", [alert_id]))


def _aliases(index: AuditIndex, scope: Scope) -> dict[str, set[str]]:
    """Each alias or id ``scope`` reads on its rows, by the rules it reads beside it."""
    out: dict[str, set[str]] = {}
    for row in index.export(scope, Query()):
        out.setdefault(row["alert_id"], set()).update(row["rules"])
    return out


def test_a_scoped_auditor_reads_an_alias_for_an_alert_never_sent_to_its_partner(tmp_path: Path) -> None:
    """USA's auditor reads one alias per alert never sent to USA, the same on every version and page, another
    than COL's for the same alert; the id of an alert USA was sent at any version; the national auditor every id."""
    index = _index(tmp_path / "a" / "index.sqlite")
    rows = [*index.search(USA, Query()).rows, *index.export(USA, Query()),
            *index.unreceipted(USA, timedelta(0), T0 + timedelta(days=1))]
    assert "PTY-20261117-000001" not in repr(rows) and "PTY-20261117-000003" not in repr(rows)
    seen = _aliases(index, USA)
    secret = _alias_of(index, SECRET)
    both = next(a for a, rules in seen.items() if a not in (secret, LATER))
    assert secret.startswith("withheld-") and both.startswith("withheld-") and set(seen) == {secret, LATER, both}
    assert [r["version"] for r in index.export(USA, Query(alert=secret))] == [2, 1]  # one alias, both versions
    assert {r["alert_id"] for r in index.search(USA, Query(alert=LATER)).rows} == {LATER}  # v1 withheld: USA knows it
    assert set(_aliases(index, COL)) - {SECRET} != {both} and both not in _aliases(index, COL)
    assert SECRET in _aliases(index, COL) and {SECRET, LATER, BOTH} == set(_aliases(index, Scope()))
    with AuditIndex(index.path, readonly=True) as again:  # kept in the index: the same on any page, any time
        assert set(_aliases(again, USA)) == set(seen)


def test_a_scoped_auditor_finds_a_withheld_alert_by_its_alias_and_never_by_its_id(tmp_path: Path) -> None:
    """Searching, the timeline and "why" by the id of an alert never sent to USA find nothing for USA's auditor,
    as for an alert that does not exist; by its alias they find USA's withheld decisions, and no receipt."""
    index = _index(tmp_path / "a" / "index.sqlite")
    secret = _alias_of(index, SECRET)
    for given in (SECRET, "SNM:PTY-20261117-999999"):
        assert index.search(USA, Query(alert=given)).total == 0 and index.count(USA, Query(alert=given)) == 0
        assert index.timeline(USA, given) is None and index.why(USA, given, "USA", "subject") == []
    assert index.search(USA, Query(alert="SNM:PTY-20261117-00000*")).total == 2  # LATER's, never SECRET's
    assert index.search(USA, Query(alert="withheld-*")).total == 3
    assert index.search(USA, Query(alert=secret)).total == 2
    events = index.timeline(USA, secret) or []
    assert [e["kind"] for e in events] == ["WITHHELD", "WITHHELD"] and {e["partner"] for e in events} == {"USA"}
    assert [w["outcome"] for w in index.why(USA, secret, "USA", "subject")] == ["withheld", "withheld"]
    assert index.timeline(COL, secret) is None and index.search(COL, Query(alert=secret)).total == 0
    assert index.search(Scope(), Query(alert=SECRET)).total == 4 and index.timeline(Scope(), secret) is None


def test_a_rebuild_keeps_the_aliases(tmp_path: Path) -> None:
    """An index rebuilt in place names each withheld alert by the alias it had: an auditor's notes stay true."""
    path = tmp_path / "a" / "index.sqlite"
    with _index(path) as index:
        before = _aliases(index, USA)
    assert sum(a.startswith("withheld-") for a in before) == 2
    with rebuilding(path) as temp, _index(temp):
        pass
    with AuditIndex(path, readonly=True) as index:
        assert _aliases(index, USA) == before


def test_whether_a_scoped_partner_held_an_alert_is_looked_up_by_alert(tmp_path: Path) -> None:
    """The "held" lookup of each row a scoped auditor reads is one seek of ``decisions_held``, its first entry for
    the alert and partner. Without statistics SQLite took the partner's decisions index, scanning every delivery of
    the partner for each row (a page of a 200,000-decision index took 1.7 s, a scoped export about 40 minutes); by
    ``decisions_by_alert`` it sorted every version's row for each row (a scoped page of an alert of 5,000 versions
    took 19 s, growing with the square of its versions). The plan is checked, not a time."""
    index = _index(tmp_path / "a" / "index.sqlite")
    rows = index._conn.execute(
        "EXPLAIN QUERY PLAN SELECT " + _HELD_AS.format(t="d") + " FROM decisions d WHERE d.partner = 'USA' "  # noqa: S608
        "ORDER BY d.version DESC LIMIT 50").fetchall()
    plan = [str(row[3]) for row in rows]
    held = [step for step in plan if step.startswith("SEARCH k ")]
    assert held and all("USING INDEX decisions_held (alert_id=? AND partner=?)" in step for step in held), plan
    subquery = next(row[0] for row in rows if str(row[3]).startswith("CORRELATED SCALAR SUBQUERY"))
    assert not [row for row in rows if row[1] == subquery and "TEMP B-TREE" in str(row[3])], plan  # no sort in it
    assert {r["alert_id"] for r in index.search(USA, Query(alert=LATER)).rows} == {LATER}


@pytest.mark.parametrize(("partner", "consent", "read"), [
    ("COL", ["USA"], "UPDATE"), ("USA", ["USA"], "CONSENT"), ("COL", None, "UPDATE"), ("COL", "USA", "UPDATE"),
])
def test_a_consent_to_another_partner_reads_to_a_scoped_auditor_as_an_update(partner: str, consent: Any,
                                                                             read: str) -> None:
    """A partner the consent does not name read that version as an UPDATE in its feed; its auditor reads the same
    (fails closed when the record names no list), while the national auditor reads CONSENT. (Each partner held the
    version before, ``supersedes``: one that held none read an UPDATE whatever the version did.)"""
    row = {"kind": "DECISION", "partner": partner, "action": "CONSENT", "consent": consent, "delivered": True,
           "alert_id": "SNM:TOC-2025-3321", "decision": "DELIVER_REDACTED", "held_as": "ref-x", "hidden": [],
           "supersedes": 1}
    assert scoped(Scope(partner), row)["action"] == read
    assert scoped(Scope(), row)["action"] == "CONSENT"
