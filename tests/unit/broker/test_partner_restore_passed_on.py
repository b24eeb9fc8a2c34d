"""A store restored from a backup (or another ``--store`` of the same instance) reads again what the group read since:
whether an earlier run copied those records to ``--out`` is unknowable, and the mark it set is not in this store, so
each record read again is marked passed on as it is applied (fail closed): its recall says RECALL_PASSED_ON, never an
acknowledgement. Records past the group's offset are this run's own, judged as ever."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from partner_feed import (
    FEED,
    RECEIPTS,
    BrokerKeys,
    GroupFeed,
    Msg,
    Receipts,
    run_batch,
    sealed,
    stub_committed,
    subscriber,
)
from recall_views import recall_notice

from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.partner import RECALL_PASSED_ON
from broker.partner_store import PartnerStore, Retention
from tests.unit.broker.test_partner_store import SECRET, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


async def test_a_recall_of_what_a_restored_store_read_again_is_passed_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup was made after offset 0; a run with --out then passed V (1) on. Restored, the store reads V again
    (no --out this time): V is marked passed on, so V's recall (2, past the group's offset) is RECALL_PASSED_ON with
    a note, not RECALLED; a new alert (3) and its recall (4), read by this run alone, are RECALLED as ever."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    path = tmp_path / "col" / "feed.sqlite"
    notes: list[str] = []
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC), notes=notes)
    stub_committed(monkeypatch, None)
    await sub._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    await run_batch(sub, sealed(sealer, _view("senan-gofast-seizure"), 0, T0))
    store.close()
    backup = tmp_path / "backup.sqlite"
    shutil.copy(path, backup)
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC), notes=notes)
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    v = sealed(sealer, view, 1, T0)
    out = io.StringIO()
    copied = Receipts(appended=sub.clock)
    await sub._batch({TP: [Msg(v)]}, out, copied, ChainWriter(RECEIPTS, 0, chain="COL"), 0)
    assert copied.statuses() == ["RECEIVED"] and SECRET in out.getvalue()
    tag = sub.commit_tag
    store.close()
    shutil.copy(backup, path)
    for tail in ("-wal", "-shm"):
        path.with_name(path.name + tail).unlink(missing_ok=True)
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC), notes=notes)
    stub_committed(monkeypatch, (2, tag))
    feed = GroupFeed()
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [1] and "marked passed on" in notes[-1]
    _, again = await run_batch(sub, v, sealed(sealer, recall_notice(view, 2, "ERROR"), 2, T0))
    assert again.statuses() == ["RECEIVED", RECALL_PASSED_ON]
    assert "may have passed it" in notes[-1] and store.show(view["alert_id"]).state == "RECALLED"
    fresh = _view("tocumen-red-notice-hit")
    _, own = await run_batch(sub, sealed(sealer, fresh, 3, T0), sealed(sealer, recall_notice(fresh, 2, "ERROR"), 4, T0))
    assert own.statuses() == ["RECEIVED", "RECALLED"]
    store.close()


async def test_a_new_store_of_the_same_instance_marks_what_it_reads_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another --store of the same instance reads the partition from its first record: the other store's run may
    have copied those records to --out, so a recall of one read again is RECALL_PASSED_ON."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    store = PartnerStore.open(tmp_path / "new" / "feed.sqlite", "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    stub_committed(monkeypatch, (1, f"{sub.instance}|" + "0" * 32))
    feed = GroupFeed()
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [0]
    view = _view()
    _, receipts = await run_batch(sub, sealed(sealer, view, 0, T0), sealed(sealer, recall_notice(view, 2, None), 1, T0))
    assert receipts.statuses() == ["RECEIVED", RECALL_PASSED_ON]
    store.close()
