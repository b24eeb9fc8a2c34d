"""A batch whose records change one alert's row twice (a recall without reason, then a re-release), applied by the
store and then read again before Kafka committed its receipts: each record gets the status it first had, kept by the
store with it, never one judged again against what the later record made of the row. Read again after Kafka's commit
failed (the batch redelivered), or to catch up after a kill between the two commits (``_catch_store_up``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, EndTxnFails, GroupFeed, Receipts, run_batch, sealed, subscriber
from recall_views import recall_notice, updated

import broker.partner as partner
from broker.kafka import TopicPartition
from broker.partner_store import PartnerStore, Retention
from tests.unit.broker.test_partner_store import SECRET, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)


class _Killed(Exception):
    pass


class _KilledAtCommit(Receipts):
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        raise _Killed


def _scene(tmp_path: Path, keys: BrokerKeys) -> tuple[PartnerStore, partner.Subscriber, list[Any], list[str]]:
    """COL's store and subscriber; the alert's version 1 (offset 4), and the batch of its recall without reason (5)
    and its re-release (6)."""
    sealer = keys.sealer("broker-sign-2026a")
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=Retention({"COMBIFRON": 180}, 10))
    notes: list[str] = []
    view = _view(summary=SECRET)
    records = [sealed(sealer, view, 4, T0), sealed(sealer, recall_notice(view, 2, None), 5, T0),
               sealed(sealer, updated(view, 3), 6, T0)]
    return store, subscriber(keys, store, lambda: datetime.now(UTC), notes=notes), records, notes


async def test_a_batch_redelivered_after_kafka_refused_its_commit_gets_the_statuses_it_first_had(
        tmp_path: Path) -> None:
    """The recall is RECALLED again, not SUPERSEDED by the re-release the store applied after it: its only receipt
    that commits acknowledges the recall the store applied (the text is gone)."""
    store, sub, (v1, notice, v3), _ = _scene(tmp_path, BrokerKeys("2026a"))
    assert (await run_batch(sub, v1))[1].statuses() == ["RECEIVED"]
    failed = EndTxnFails()
    with pytest.raises(RuntimeError, match="EndTxn"):
        await run_batch(sub, notice, v3, receipts=failed)
    assert failed.statuses() == ["RECALLED", "RECEIVED"] and failed.ended == ["abort"]
    _, again = await run_batch(sub, notice, v3)
    assert again.statuses() == failed.statuses() and again.ended == ["commit"]
    assert store.show(_view()["alert_id"]).version == 3 and store.counts().held == 1
    assert store.feed_offset(FEED, 0, confirmed=True) == 7
    store.close()


async def test_a_catch_up_reads_from_the_recall_a_later_record_rewrote_the_row_of(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between the store's commit and Kafka's, while another instance read on to 7: the catch-up starts at the
    recall (5), though the re-release (6) rewrote the alert's row since, and the two get the statuses they first had
    (the recall was never answered for by this store otherwise)."""
    keys = BrokerKeys("2026a")
    store, sub, (v1, notice, v3), notes = _scene(tmp_path, keys)
    assert (await run_batch(sub, v1))[1].statuses() == ["RECEIVED"]
    killed = _KilledAtCommit()
    with pytest.raises(_Killed):
        await run_batch(sub, notice, v3, receipts=killed)
    assert killed.statuses() == ["RECALLED", "RECEIVED"]

    async def committed_with_metadata(consumer: Any, tp: TopicPartition) -> tuple[int, str]:
        return 7, "b|" + "0" * 32  # another instance's store read on to 7

    monkeypatch.setattr(partner, "committed_with_metadata", committed_with_metadata)
    restarted = subscriber(keys, store, lambda: datetime.now(UTC), notes=notes)
    feed = GroupFeed()
    await restarted._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [5] and "reading 2 record(s) from 5 again" in notes[-1]
    _, again = await run_batch(restarted, notice, v3)
    assert again.statuses() == killed.statuses() and again.offsets == {TP: 7}
    assert store.catch_up(FEED, 0) is None and store.show(_view()["alert_id"]).version == 3
    store.close()
