"""A subscriber killed between its store's commit and Kafka's, whose partition another instance then read on: its
store holds alerts no committed receipt names, so on getting the partition back it reads the batch again, up to the
group's offset, and answers for what it holds (a recall among those records included)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, Receipts, run_batch, sealed, subscriber
from recall_views import recall_notice

import broker.partner as partner
from broker.kafka import TopicPartition
from broker.partner_store import PartnerStore, Retention
from tests.unit.broker.test_partner_store import SECRET, _bytes, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


class _Killed(Exception):
    pass


class _KilledAtCommit(Receipts):
    """The process dies as Kafka would commit: the receipts and the group's offsets are aborted."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        raise _Killed


class _Feed:
    """The feed's group consumer as ``_resume`` uses it, holding records from offset 0 on."""

    def __init__(self) -> None:
        self.seeks: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    def seek(self, tp: TopicPartition, at: int) -> None:
        self.seeks.append(at)


async def test_a_store_that_applied_a_batch_another_instance_read_on_catches_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Instance A applies view V at 5 and dies before Kafka's commit; instance B reads V, another alert's view W and
    V's recall R on, committing 8. A, given the partition back, reads 5-7 again: V and R get their receipts in A's
    chain (RECEIVED, RECALLED) and the text goes from A's store; W, B's alone, is neither stored nor receipted."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    a_store = PartnerStore.open(tmp_path / "a" / "feed.sqlite", "COL", retention=RETENTION)
    b_store = PartnerStore.open(tmp_path / "b" / "feed.sqlite", "COL", retention=RETENTION)
    a_notes: list[str] = []
    a = subscriber(keys, a_store, lambda: datetime.now(UTC), notes=a_notes)
    b = subscriber(keys, b_store, lambda: datetime.now(UTC))
    first = sealed(sealer, _view("senan-gofast-seizure"), 4, T0)
    view = _view(summary=f"Avistamiento reportado por {SECRET}")
    v, w = sealed(sealer, view, 5, T0), sealed(sealer, _view("paso-canoas-migrant-flow"), 6, T0)
    r = sealed(sealer, recall_notice(view, 2, "ERROR"), 7, T0)
    assert (await run_batch(a, first))[0] is None  # committed: A's store confirmed 5
    with pytest.raises(_Killed):
        await run_batch(a, v, receipts=_KilledAtCommit())
    assert a_store.feed_offset(FEED, 0) == 6 and a_store.feed_offset(FEED, 0, confirmed=True) == 5
    _, b_receipts = await run_batch(b, v, w, r)
    assert b_receipts.statuses() == ["RECEIVED", "RECEIVED", "RECALLED"] and b_receipts.offsets == {TP: 8}

    async def committed_by_b(consumer: Any, tp: TopicPartition) -> tuple[int, str]:
        return 8, f"b|{b_store.store_id}"
    monkeypatch.setattr(partner, "committed_with_metadata", committed_by_b)
    feed = _Feed()
    await a._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [5] and "reading 3 record(s) again" in a_notes[-1]
    _, a_receipts = await run_batch(a, v, w, r)
    assert a_receipts.statuses() == ["RECEIVED", "RECALLED"] and a_receipts.offsets == {TP: 8}
    assert [x["feed"] for x in a_receipts.sent if x["kind"] == "RECEIPT"] == [f"{FEED}:0:5", f"{FEED}:0:7"]
    assert a_store.show(view["alert_id"]).state == "RECALLED" and not a_store.has_row(w.key.decode())
    assert SECRET.encode() not in _bytes(a_store.path)
    # Past the group's offset, every record is this store's again.
    later = sealed(sealer, _view("tocumen-red-notice-hit"), 8, T0)
    assert (await run_batch(a, later))[1].statuses() == ["RECEIVED"]
    a_store.close()
    b_store.close()


async def test_a_store_whose_receipts_all_committed_reads_on_from_the_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that applied nothing without a receipt reads a partition another instance read on from the group's
    offset, as before: nothing of that instance's is read again."""
    keys = BrokerKeys("2026a")
    store = PartnerStore.open(tmp_path / "a" / "feed.sqlite", "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))
    assert (await run_batch(sub, sealed(keys.sealer("broker-sign-2026a"), _view(), 4, T0)))[0] is None

    async def committed_by_b(consumer: Any, tp: TopicPartition) -> tuple[int, str]:
        return 8, "b|" + "0" * 32
    monkeypatch.setattr(partner, "committed_with_metadata", committed_by_b)
    feed = _Feed()
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == []
    store.close()
