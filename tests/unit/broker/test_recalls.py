"""Recalls matched with their acknowledgements: overdue first, then outstanding, then acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.audit.recalls import ACKNOWLEDGED, FAILED, OUTSTANDING, OVERDUE, recall_status
from broker.auditor import LogFilter

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def _recall(alert: str, partner: str, version: int, hours_ago: float, **more: object) -> dict[str, object]:
    return {"kind": "DECISION", "decision": "RECALL", "alert_id": alert, "partner": partner, "version": version,
            "at": _at(hours_ago), **more}


def _ack(alert: str, partner: str, version: int, hours_ago: float) -> dict[str, object]:
    return {"kind": "RECEIPT", "status": "RECALLED", "alert_id": alert, "partner": partner, "version": version,
            "at": _at(hours_ago)}


def test_each_recall_is_acknowledged_outstanding_or_overdue_by_its_partners_deadline() -> None:
    rows = [
        _recall("SNM:A", "COL", 3, 100, reason="ERROR"),       # 72 h deadline: overdue by 28 h
        _recall("SNM:B", "COL", 2, 10, action="RECLASSIFY"),   # within the deadline
        _recall("SNM:C", "USA", 2, 50), _ack("SNM:C", "USA", 2, 49),
        _recall("SNM:D", "USA", 2, 30),                        # USA's deadline is 24 h: overdue by 6 h
        _recall("SNM:E", "COL", 4, 5), _ack("SNM:E", "COL", 3, 4),  # acknowledged an older version only
        {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:F", "partner": "COL", "at": _at(1),
         "sent": False},                                       # never sent: the partner still holds it
        _ack("SNM:F", "COL", 1, 0.5),                          # a forged or stray receipt changes nothing
        _recall("SNM:G", "COL", 2, 10), _ack("SNM:G", "COL", 2, 30),  # "acknowledged" a day before it was sent
    ]
    out = recall_status(rows, {"USA": 24}, NOW)
    assert [(r.alert_id, r.state) for r in out] == [
        ("SNM:F", FAILED), ("SNM:A", OVERDUE), ("SNM:D", OVERDUE), ("SNM:B", OUTSTANDING), ("SNM:G", OUTSTANDING),
        ("SNM:E", OUTSTANDING), ("SNM:C", ACKNOWLEDGED)]
    first = out[1]
    assert first.reason == "ERROR" and first.overdue_by(NOW) == timedelta(hours=28)
    assert out[3].reason == "RECLASSIFY"
    assert out[6].acknowledged_at == NOW - timedelta(hours=49) and out[6].overdue_by(NOW) == timedelta(0)


def test_a_later_recall_needs_its_own_acknowledgement() -> None:
    rows = [_recall("SNM:A", "COL", 2, 20), _ack("SNM:A", "COL", 2, 19), _recall("SNM:A", "COL", 5, 2)]
    [row] = recall_status(rows, {}, NOW)
    assert row.version == 5 and row.state == OUTSTANDING


def test_a_time_without_an_offset_is_no_time_never_a_crash() -> None:
    """A receipt or notice whose `at` has no offset (or is no time at all) counts for nothing: `audit recalls`
    and `audit log --since/--until` never compare it naively with an aware time (which raises)."""
    naive = _ack("SNM:A", "COL", 2, 1) | {"at": "2026-12-01T11:00:00"}
    nested = _ack("SNM:A", "COL", 2, 1) | {"at": [[["x"]]]}
    rows = [_recall("SNM:A", "COL", 2, 10), naive, nested, _recall("SNM:B", "COL", 1, 1) | {"at": "2026-12-01"}]
    [row] = recall_status(rows, {}, NOW)
    assert (row.alert_id, row.state) == ("SNM:A", OUTSTANDING)
    since = LogFilter(since=NOW - timedelta(days=1), until=NOW)
    assert not since.accepts(naive) and not since.accepts(nested)
    assert since.accepts(_ack("SNM:A", "COL", 2, 1))
