"""A store that answered a recall RECALL_PASSED_ON (its --out copy holds the text) is not acknowledged by a RECALLED it
writes later (a copy of it restored from a backup reads the recall again without the mark): the recall stays open,
waiting on that store. A RECALLED before its RECALL_PASSED_ON, or another store's, still answers as ever."""

from datetime import UTC, datetime, timedelta
from typing import Any

from broker.audit.recalls import ACKNOWLEDGED, OUTSTANDING, OVERDUE, recall_status

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S1, S2 = "1" * 32, "2" * 32


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def _receipt(status: str, hours_ago: float, store: str, version: int, **extra: Any) -> dict[str, Any]:
    return {"kind": "RECEIPT", "status": status, "alert_id": "SNM:A", "partner": "COL", "version": version,
            "at": _at(hours_ago), "store": store, "chain": "COL", **extra}


def _recall(hours_ago: float) -> dict[str, Any]:
    return {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:A", "partner": "COL", "version": 2,
            "at": _at(hours_ago)}


def test_a_recalled_after_the_same_stores_passed_on_does_not_close_the_recall() -> None:
    rows = [_recall(10), _receipt("RECEIVED", 20, S1, 1), _receipt("RECALL_PASSED_ON", 9, S1, 2),
            _receipt("RECALLED", 5, S1, 2)]
    [row] = recall_status(rows, {}, NOW)
    assert row.state == OUTSTANDING
    assert row.waiting_on == (S1,)
    assert row.acknowledged_at is None
    # Past its deadline, overdue, as a store that never answered.
    [row] = recall_status(rows, {"COL": 4}, NOW)
    assert row.state == OVERDUE


def test_passed_on_dates_from_the_earlier_of_the_partners_time_and_kafkas() -> None:
    """A RECALL_PASSED_ON the partner dated late (its clock ahead) shuts out a RECALLED Kafka appended after it."""
    rows = [_recall(10), _receipt("RECEIVED", 20, S1, 1),
            _receipt("RECALL_PASSED_ON", 1, S1, 2, appended_at=_at(9)), _receipt("RECALLED", 5, S1, 2)]
    assert recall_status(rows, {}, NOW)[0].state == OUTSTANDING


def test_a_recalled_before_passed_on_and_other_stores_answers_still_count() -> None:
    rows = [_recall(10), _receipt("RECEIVED", 20, S1, 1), _receipt("RECEIVED", 20, S2, 1),
            _receipt("RECALLED", 9, S1, 2), _receipt("RECALL_PASSED_ON", 8, S1, 2),
            _receipt("RECALL_PASSED_ON", 8, S2, 2), _receipt("RECALLED", 7, S2, 2)]
    [row] = recall_status(rows, {}, NOW)
    assert row.state == OUTSTANDING and row.waiting_on == (S2,)  # S1 answered first; S2 only passed it on
    rows.remove(_receipt("RECALL_PASSED_ON", 8, S2, 2))
    [row] = recall_status(rows, {}, NOW)
    assert row.state == ACKNOWLEDGED
