"""A partner's auditor reads a first copy of a later version as the partner's feed read it: an UPDATE, never what
the version did (``broker.pipeline._first_copy``), which would tell it the alert's marking history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope, scoped

from .test_audit_index import DECISIONS, _alert, _decision, _ingest, _signer

USA = Scope("USA")


def _index(tmp_path: Path) -> AuditIndex:
    """As the pipeline records them: R v1 withheld from USA (sent to COL), then R v3 RECLASSIFY, which let it in (USA
    holds none: no ``supersedes``; COL held v1); C v2 a CONSENT naming USA, its first copy; H v2 a RECLASSIFY
    re-sent to USA, which held v1; P v1 a first publication delivered to USA (no action)."""
    writer = ChainWriter(DECISIONS, 0)
    later = {"previous_version": 1}
    alerts = [
        _alert("R:1", 0, [_decision("USA", "WITHHOLD", ["partner.clearance"]),
                          _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")]),
        _alert("R:1", 1, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA"),
                          _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL", supersedes=1)],
               version=3, action="RECLASSIFY", reason="downgraded for release", **later),
        _alert("C:1", 2, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")], version=2,
               action="CONSENT", consent=["USA"], **later),
        _alert("H:1", 3, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA", supersedes=1)],
               version=2, action="RECLASSIFY", **later),
        _alert("P:1", 4, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")]),
    ]
    index = AuditIndex(tmp_path / "r" / "index.sqlite")
    _ingest(index, {DECISIONS: [writer.block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), "t")]})
    return index


def _actions(rows: list[dict[str, Any]]) -> list[tuple[int | None, Any, Any]]:
    return sorted(((r.get("version") or 1, r.get("supersedes"), r["action"]) for r in rows if r["delivered"]),
                  key=repr)


def test_a_first_copy_of_a_later_version_reads_as_an_update(tmp_path: Path) -> None:
    """Searched and exported, USA's auditor reads its first copies (R v3, a RECLASSIFY; C v2, a CONSENT naming it)
    as UPDATEs, as its feed did; a version re-sent to it while it held one reads what it did (H v2's RECLASSIFY); a
    first publication reads no action. The national auditor reads what each version did."""
    index = _index(tmp_path)
    for rows in (index.search(USA, Query(partner="USA")).rows, list(index.export(USA, Query()))):
        assert _actions(rows) == sorted([(1, None, None), (2, None, "UPDATE"), (2, 1, "RECLASSIFY"),
                                         (3, None, "UPDATE")], key=repr)
        assert "CONSENT" not in repr(rows)
    national = index.search(Scope(), Query(partner="USA")).rows
    assert _actions(national) == sorted([(1, None, None), (2, None, "CONSENT"), (2, 1, "RECLASSIFY"),
                                         (3, None, "RECLASSIFY")], key=repr)
    # COL held R v1: its auditor reads R v3's RECLASSIFY, as its feed did.
    col = [r for r in index.search(Scope("COL"), Query()).rows if r.get("version") == 3]
    assert [r["action"] for r in col] == ["RECLASSIFY"]


@pytest.mark.parametrize(("row", "read"), [
    ({"action": "RECLASSIFY"}, "UPDATE"),  # a first copy: no ``supersedes``
    ({"action": "RECLASSIFY", "supersedes": "1"}, "UPDATE"),  # unreadable: fails closed
    ({"action": "RECLASSIFY", "supersedes": 2}, "RECLASSIFY"),  # re-sent to a holder
    ({"action": "CONSENT", "consent": ["USA"]}, "UPDATE"),
    ({"action": None}, None),  # a first publication
])
def test_scoped_reads_a_delivered_rows_action_as_its_partners_feed_did(row: dict[str, Any], read: Any) -> None:
    """A delivered row's action reads UPDATE unless the partner held an earlier version (``supersedes``, an int);
    no action (a version 1) stays none; a national auditor reads the row whole."""
    whole = {"kind": "DECISION", "partner": "USA", "decision": "DELIVER", "delivered": True, "hidden": [],
             "version": 3, **row}
    assert scoped(USA, whole)["action"] == read
    assert scoped(Scope(), whole) == whole
