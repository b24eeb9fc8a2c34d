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


def _previous(rows: list[dict[str, Any]]) -> list[tuple[int | None, Any, Any]]:
    return sorted(((r.get("version") or 1, r.get("supersedes"), r.get("previous_version")) for r in rows
                   if r["delivered"]), key=repr)


def test_a_first_copy_does_not_say_which_version_came_before_it(tmp_path: Path) -> None:
    """Searched and exported, USA's auditor reads no ``previous_version`` on its first copies (R v3, C v2: version 1
    was never its partner's), only on H v2, re-sent while it held v1; the national auditor reads it on each."""
    index = _index(tmp_path)
    for rows in (index.search(USA, Query(partner="USA")).rows, list(index.export(USA, Query()))):
        assert _previous(rows) == sorted([(1, None, None), (2, None, None), (2, 1, 1), (3, None, None)], key=repr)
    national = index.search(Scope(), Query(partner="USA")).rows
    assert _previous(national) == sorted([(1, None, None), (2, None, 1), (2, 1, 1), (3, None, 1)], key=repr)


@pytest.mark.parametrize(("row", "read"), [
    ({"previous_version": 6}, None),  # a first copy at v7: the versions before it were never its partner's
    ({"previous_version": 2, "supersedes": 1}, None),  # held v1, sent v3: v2 was kept from it
    ({"previous_version": 2, "supersedes": 2}, 2),  # held the version before: it read it
    ({"previous_version": 2, "supersedes": "2"}, None),  # unreadable ``supersedes``: fails closed
    ({"previous_version": True, "supersedes": 1}, None),  # no version number
    ({"previous_version": 1, "supersedes": True}, None),
])
def test_scoped_shows_the_previous_version_only_where_its_partner_held_it(row: dict[str, Any], read: Any) -> None:
    """A delivered row's ``previous_version`` reads only where it is the version its partner held (``supersedes``,
    both ints), else None; a national auditor reads the row whole."""
    whole = {"kind": "DECISION", "partner": "USA", "decision": "DELIVER", "delivered": True, "hidden": [],
             "version": 7, "action": "UPDATE", **row}
    assert scoped(USA, whole)["previous_version"] == read
    assert scoped(Scope(), whole) == whole
