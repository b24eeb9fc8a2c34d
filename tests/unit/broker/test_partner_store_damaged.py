"""A row of the partner's store damaged or edited outside Puente (SQLite keeps text in an INTEGER column, and any
SQLite tool writes the file) is a StoreError naming the alert and the column (exit status 3: a file to check),
never an internal error out of whatever reads the value: ``store list``, ``store show`` and the subscriber."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.partner_store import Delivery, PartnerStore, Retention
from puente.errors import StoreError
from tests.unit.broker.test_partner_store import _at, _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)

DAMAGE = [
    ("view", "'{not json'"), ("view", "'[1, 2]'"), ("view", "x'00ff'"),
    ("received_ms", "9223372036854775807"), ("first_ms", "'yesterday'"), ("expires_ms", "-99999999999999999"),
    ("review_ms", "1.5"), ("version", "'abc'"), ("version", "0"), ("version", "1000001"), ("state", "'GONE'"),
    ("alert_type", "x'00'"), ("agreement", "x'41'"), ("feed", "''"), ("action", "x'41'"),
]


def _damaged_store(tmp_path: Path, column: str, value: str) -> tuple[PartnerStore, str]:
    """A store holding one alert whose ``column`` was set to ``value`` (SQL) by another tool, checks off."""
    path = tmp_path / "col" / "feed.sqlite"
    view = _view()
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        store.apply(_at(view, 1), T0)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA ignore_check_constraints = ON")
    raw.execute(f"UPDATE alerts SET {column} = {value}")  # noqa: S608 - the test's own text
    raw.commit()
    raw.close()
    return PartnerStore.open(path, "COL", retention=RETENTION), view["alert_id"]


@pytest.mark.parametrize(("column", "value"), DAMAGE)
def test_a_damaged_row_read_back_is_a_store_error_naming_the_alert(tmp_path: Path, column: str, value: str) -> None:
    """Listing or showing the alert, whatever column is damaged, says which alert and column, and nothing else."""
    store, alert_id = _damaged_store(tmp_path, column, value)
    with store:
        with pytest.raises(StoreError) as damaged:
            store.show(alert_id)
        assert f"the row of alert {alert_id} is damaged: its {column} " in str(damaged.value)
        assert "\n" not in str(damaged.value)
        if column == "view":  # the list reads no view
            assert [e.alert_id for e in store.recent()] == [alert_id]
        else:
            with pytest.raises(StoreError, match=f"the row of alert {alert_id} is damaged: its {column} "):
                store.recent()


@pytest.mark.parametrize(("column", "value"), [("version", "'abc'"), ("version", "0"), ("state", "'GONE'"),
                                               ("feed", "x'41'"), ("first_ms", "'x'"), ("passed_on", "'yes'"),
                                               ("purged_ms", "'then'")])
def test_the_subscriber_applying_over_a_damaged_row_stops_with_a_store_error(tmp_path: Path, column: str,
                                                                            value: str) -> None:
    """The version rule reads the row held before it decides: a damaged one stops the batch (StoreError), rather
    than compare a version that is text, or take a row of no known state for none."""
    store, alert_id = _damaged_store(tmp_path, column, value)
    with store, pytest.raises(StoreError, match=f"the row of alert {alert_id} is damaged: its "):
        store.apply(Delivery.of(_view(version=2), "t.feed.col:0:2", "COMBIFRON"), T0)


def test_a_damaged_last_received_time_is_a_store_error_in_the_counts(tmp_path: Path) -> None:
    """The counts' last received time is read back too."""
    store, _ = _damaged_store(tmp_path, "received_ms", "'later'")
    with store, pytest.raises(StoreError, match="received_ms is damaged"):
        store.counts()
