"""A store reading again records it misses (a backup restored) marks each one passed on, since an earlier run may have
copied it to ``--out``: across batches and restarts, since the re-read's end is kept in the store and the group's offset
is never committed back below it."""

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
from broker.partner_store import PartnerStore, Retention, StoreError
from tests.unit.broker.test_partner_store import SECRET, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


def _restore(backup: Path, path: Path) -> None:
    shutil.copy(backup, path)
    for tail in ("-wal", "-shm"):
        path.with_name(path.name + tail).unlink(missing_ok=True)


async def test_a_reread_interrupted_by_a_restart_goes_on_marking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run 2 copied V (1) and W (2) to --out; the store, restored from before, reads them again. The first batch
    holds only V: the group's offset it commits stays at 3, not back at 2, and the re-read's end is kept in the store;
    a restart (whatever the group's offset then says) still marks W, so W's recall is RECALL_PASSED_ON."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    path = tmp_path / "col" / "feed.sqlite"
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    stub_committed(monkeypatch, None)
    await sub._resume(GroupFeed(), {TP})
    await run_batch(sub, sealed(sealer, _view("senan-gofast-seizure"), 0, T0))
    store.close()
    backup = tmp_path / "backup.sqlite"
    shutil.copy(path, backup)
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    v = sealed(sealer, _view("tocumen-red-notice-hit"), 1, T0)
    wview = _view(summary=f"Avistamiento reportado por {SECRET}")
    w = sealed(sealer, wview, 2, T0)
    out = io.StringIO()
    await sub._batch({TP: [Msg(v), Msg(w)]}, out, Receipts(appended=sub.clock), ChainWriter(RECEIPTS, 0, chain="COL"),
                     0)
    assert SECRET in out.getvalue()
    tag = sub.commit_tag
    store.close()
    _restore(backup, path)

    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    stub_committed(monkeypatch, (3, tag))
    feed = GroupFeed()
    await sub._resume(feed, {TP})
    assert feed.seeks == [1]
    _, first = await run_batch(sub, v)
    assert first.offsets[TP] == 3  # never back below the re-read's end
    assert store.reread(FEED, 0) == 3
    store.close()

    # A restart: even with the group's offset where this store stands (as a Puente that committed each re-read batch's
    # end left it), the kept end goes on marking.
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    stub_committed(monkeypatch, (2, tag))
    await sub._resume(GroupFeed(), {TP})
    _, again = await run_batch(sub, w, sealed(sealer, recall_notice(wview, 2, "ERROR"), 3, T0))
    assert again.statuses() == ["RECEIVED", RECALL_PASSED_ON]
    assert store.reread(FEED, 0) is None  # confirmed past its end: over
    store.close()


def test_a_kept_reread_never_moves_back_and_ends_once_confirmed_past(tmp_path: Path) -> None:
    """The larger end is kept; a confirmed offset short of it keeps it, one at it ends it; a damaged value is a
    StoreError naming the store, not a guess."""
    path = tmp_path / "feed.sqlite"
    with PartnerStore.open(path, "COL", retention=RETENTION) as store:
        store.keep_reread(FEED, 0, 5)
        store.keep_reread(FEED, 0, 3)
        assert store.reread(FEED, 0) == 5
        store.confirm_feed_offsets({(FEED, 0): 4})
        assert store.reread(FEED, 0) == 5
        store.confirm_feed_offsets({(FEED, 0): 5})
        assert store.reread(FEED, 0) is None
        store._conn.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (f"feed-reread:{FEED}[1]",))
        with pytest.raises(StoreError, match="re-read"):
            store.reread(FEED, 1)
