"""A partner keeps an alert for its agreement's retention from when it first received it, and never past that
retention counted from when the broker sealed it: a store that reads its feed late purges the text when the broker
stops remembering it as a holder, not later. Stores written before the sealing time was kept still open."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from partner_feed import KAFKA_LATER
from recall_views import recall_notice, updated

from broker.partner_store import SCHEMA_VERSION, Outcome, PartnerStore
from tests.unit.broker.test_partner_store import RETENTION, SECRET, T0, _at, _bytes, _older_layout, _sealed, _view

DAY = timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartnerStore]:
    """A fresh store of partner COL with a 180-day agreement (COMBIFRON) and a 10-day one (SHORT), that purges by the
    test's clock (``KAFKA_LATER``)."""
    with PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION) as opened:
        opened.keep_kafka_time(KAFKA_LATER)
        yield opened


def test_a_late_reader_purges_at_the_retention_counted_from_the_sealing(store: PartnerStore) -> None:
    """Sealed at T0 under a 10-day agreement, read five days late: the text goes at T0 + 10 days, not 10 days after
    the late receipt; the purge leaves its content-free row as usual."""
    view = _view(summary=SECRET)
    assert store.apply(_sealed(view, 1, T0), T0 + 5 * DAY).outcome is Outcome.RECEIVED
    assert store.purge(T0 + 10 * DAY - timedelta(minutes=1)).retention == 0
    assert store.purge(T0 + 10 * DAY).retention == 1
    entry = store.show(view["alert_id"])
    assert (entry.state, entry.view, entry.first_received_at) == ("EXPIRED", None, T0 + 5 * DAY)
    assert SECRET.encode() not in _bytes(store.path)


def test_a_prompt_reader_still_counts_from_its_first_receipt(store: PartnerStore) -> None:
    """Read as soon as it is sealed: the retention runs from the first receipt, as before (the earlier of the two)."""
    view = _view()
    store.apply(_sealed(view, 1, T0 + DAY), T0)  # a key block a little ahead of this clock: the receipt counts
    assert store.purge(T0 + 10 * DAY - timedelta(minutes=1)).retention == 0
    assert store.purge(T0 + 10 * DAY).retention == 1


def test_a_correction_does_not_move_the_sealing_the_retention_counts_from(store: PartnerStore) -> None:
    """Version 2, sealed and read later, leaves the retention counted from version 1's sealing; one that arrives
    after that retention is not stored (the purge would delete it at once)."""
    view = _view()
    store.apply(_sealed(view, 1, T0), T0 + 5 * DAY)
    assert store.apply(_sealed(updated(view, 2), 2, T0 + 6 * DAY), T0 + 6 * DAY).outcome is Outcome.RECEIVED
    assert store.purge(T0 + 10 * DAY).retention == 1
    other = _view("senan-gofast-seizure")
    store.apply(_sealed(other, 3, T0), T0 + 5 * DAY)
    late = _sealed(updated(other, 2), 4, T0 + 10 * DAY)
    assert store.apply(late, T0 + 10 * DAY + timedelta(minutes=1)).outcome is Outcome.EXPIRED
    assert store.show(other["alert_id"]).view is None


def test_a_holding_that_starts_again_counts_from_its_own_sealing(store: PartnerStore) -> None:
    """After a recall without reason (the partner no longer covered), a later version starts a new holding: its
    retention counts from its own receipt and sealing, not the first holding's."""
    view = _view()
    store.apply(_sealed(view, 1, T0), T0)
    store.apply(_sealed(recall_notice(view, 2, None), 2, T0 + DAY, None), T0 + DAY)
    assert store.apply(_sealed(updated(view, 3), 3, T0 + 4 * DAY), T0 + 6 * DAY).outcome is Outcome.RECEIVED
    assert store.purge(T0 + 14 * DAY - timedelta(minutes=1)).retention == 0
    assert store.purge(T0 + 14 * DAY).retention == 1


def test_a_store_of_the_fifth_layout_counts_its_rows_from_their_first_receipt(tmp_path: Path) -> None:
    """A store without sealed_ms opens: the column is added, a row it held counts from its first receipt as it did,
    and what it receives from then on counts from the sealing too."""
    path = _older_layout(tmp_path, 5, "sealed_ms")
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        store.keep_kafka_time(KAFKA_LATER)
        store.apply(_sealed(_view("senan-gofast-seizure"), 2, T0 - 5 * DAY), T0)
        assert store.purge(T0 + 5 * DAY).retention == 1  # the new row: sealed 10 days before
        assert store.counts().held == 1  # the old one, received at T0 under a 180-day agreement
        assert store.purge(T0 + 180 * DAY).retention == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_delivery_without_its_sealing_time_counts_from_its_receipt(store: PartnerStore) -> None:
    """A delivery that names no sealing time (a store fed without the key block's time) keeps the old rule."""
    store.apply(_at(_view(), 1, "SHORT"), T0 + 5 * DAY)
    assert store.purge(T0 + 15 * DAY - timedelta(minutes=1)).retention == 0
    assert store.purge(T0 + 15 * DAY).retention == 1
