"""A store restored from a backup marks passed on what it reads again even where the group's offsets say nothing of it
(another instance committed since, or they expired): its kept receipt-chain head behind the chain's real head (Kafka's,
which a restore cannot roll back) tells a restore, and the feed offsets the newer receipts cover are read again marked
(``Subscriber._behind_chain``, ``chain_covers``)."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from broker.partner import RECALL_NOT_HELD, RECALL_PASSED_ON, chain_covers
from broker.partner_store import PartnerStore, Retention
from puente.wire import Record
from tests.unit.broker.test_partner_store import SECRET, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


def _restore(backup: Path, path: Path) -> None:
    shutil.copy(backup, path)
    for tail in ("-wal", "-shm"):
        path.with_name(path.name + tail).unlink(missing_ok=True)


def _chain(receipts: Receipts) -> list[Record]:
    """What a run's receipts and checkpoints are in its chain, in order (as ``Subscriber._chain`` reads them)."""
    return [Record(RECEIPTS, 0, at, b"COL", json.dumps(doc).encode(), (), 0) for at, doc in enumerate(receipts.sent)]


async def test_a_restored_store_given_its_partition_back_marks_what_its_chain_receipted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """main copied v2 (1) to --out, then the standby read on (the recall, 2). main's store, restored from before v2,
    is given the partition back: the group's offset is the standby's, but main's chain receipted offset 1 past the
    head the backup kept, so v2 read again is marked and its recall is RECALL_PASSED_ON, not RECALLED."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    mpath = tmp_path / "main" / "feed.sqlite"
    v1, v2 = _view(), _view(version=2, summary=f"Corregido: {SECRET}")
    main_store = PartnerStore.open(mpath, "COL", retention=RETENTION)
    main = subscriber(keys, main_store, lambda: datetime.now(UTC))
    stub_committed(monkeypatch, None)
    await main._resume(GroupFeed(), {TP})
    await run_batch(main, sealed(sealer, v1, 0, T0))
    main_store.close()
    shutil.copy(mpath, tmp_path / "backup.sqlite")
    main_store = PartnerStore.open(mpath, "COL", retention=RETENTION)
    main = subscriber(keys, main_store, lambda: datetime.now(UTC))
    rec2 = sealed(sealer, v2, 1, T0)
    out, run2 = io.StringIO(), Receipts(appended=main.clock)
    await main._batch({TP: [Msg(rec2)]}, out, run2, ChainWriter(RECEIPTS, 0, chain="COL"), 0)
    assert SECRET in out.getvalue()
    main_tag = main.commit_tag
    main_store.close()
    sb_store = PartnerStore.open(tmp_path / "standby" / "feed.sqlite", "COL", retention=RETENTION)
    sb = subscriber(keys, sb_store, lambda: datetime.now(UTC))
    sb.instance = "standby"
    stub_committed(monkeypatch, (2, main_tag))
    await sb._resume(GroupFeed(), {TP})
    recall = sealed(sealer, recall_notice(v2, 3, "ERROR"), 2, T0)
    _, theirs = await run_batch(sb, recall)
    assert theirs.statuses() == [RECALL_NOT_HELD]

    _restore(tmp_path / "backup.sqlite", mpath)
    main_store = PartnerStore.open(mpath, "COL", retention=RETENTION)
    notes: list[str] = []
    main = subscriber(keys, main_store, lambda: datetime.now(UTC), notes=notes)
    main._behind_chain(chain_covers(_chain(run2), FEED))  # the chain's records past the head the backup kept
    assert any("restored from a backup" in note for note in notes)
    stub_committed(monkeypatch, (3, sb.commit_tag))
    await main._resume(GroupFeed(), {TP})
    _, ours = await run_batch(main, rec2, recall)
    assert ours.statuses() == ["RECEIVED", RECALL_PASSED_ON]
    main_store.close()
    sb_store.close()


async def test_a_restored_store_marks_what_its_chain_receipted_when_the_group_offsets_expired(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's offsets expired while the store was restored from before V (1), which an earlier run copied to
    --out: the store reads on from its own confirmed offset, and V, which its chain receipted past the head the
    backup kept, is marked as it is applied again: V's recall is RECALL_PASSED_ON."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    path = tmp_path / "col" / "feed.sqlite"
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    stub_committed(monkeypatch, None)
    await sub._resume(GroupFeed(), {TP})
    r0 = sealed(sealer, _view("senan-gofast-seizure"), 0, T0)
    await run_batch(sub, r0)
    store.close()
    backup = tmp_path / "backup.sqlite"
    shutil.copy(path, backup)
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    v = sealed(sealer, view, 1, T0)
    out, run2 = io.StringIO(), Receipts(appended=sub.clock)
    await sub._batch({TP: [Msg(v)]}, out, run2, ChainWriter(RECEIPTS, 0, chain="COL"), 0)
    assert SECRET in out.getvalue()
    store.close()
    _restore(backup, path)

    store = PartnerStore.open(path, "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))

    async def last_before(tp: TopicPartition, at: int) -> Record:
        return r0
    sub._last_before = last_before  # type: ignore[method-assign]
    sub._behind_chain(chain_covers(_chain(run2), FEED))
    feed = GroupFeed()
    await sub._resume(feed, {TP})
    assert feed.seeks == [1]
    _, again = await run_batch(sub, v, sealed(sealer, recall_notice(view, 2, "ERROR"), 2, T0))
    assert again.statuses() == ["RECEIVED", RECALL_PASSED_ON]
    store.close()


def test_chain_covers_counts_only_receipts_of_the_feed_topic() -> None:
    """The offset past the last record each partition's receipts name; checkpoints, other topics and places that are
    no offset count for nothing."""
    docs: list[dict[str, Any]] = [
        {"kind": "RECEIPT", "feed": f"{FEED}:0:4"}, {"kind": "RECEIPT", "feed": f"{FEED}:0:2"},
        {"kind": "RECEIPT", "feed": f"{FEED}:3:0"}, {"kind": "RECEIPT", "feed": "other:0:9"},
        {"kind": "CHECKPOINT", "feed": f"{FEED}:1:9"}, {"kind": "RECEIPT", "feed": f"{FEED}:x:1"},
        {"kind": "RECEIPT", "feed": None}]
    records = [Record(RECEIPTS, 0, at, b"COL", json.dumps(doc).encode(), (), 0) for at, doc in enumerate(docs)]
    records.append(Record(RECEIPTS, 0, 99, b"COL", b"not json", (), 0))
    assert chain_covers(records, FEED) == {0: 5, 3: 1}
