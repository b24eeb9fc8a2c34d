"""A quiet feed keeps nothing past its time: with no batch to vouch for a time, the subscriber has Kafka vouch for one
with a checkpoint alone, and the purge goes by it; each purge goes no further than Kafka's time and the skew."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from partner_feed import FEED, RECEIPTS, BrokerKeys, Receipts, ms, run_batch, sealed, subscriber

import broker.partner as partner
from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.partner import Subscriber
from broker.partner_store import CLOCK_SKEW_MS, Delivery, PartnerStore, Retention
from puente.errors import ConfigError, KafkaUnavailableError
from tests.unit.broker.test_partner_clock_ahead import _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SKEW = timedelta(milliseconds=CLOCK_SKEW_MS)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=180)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartnerStore]:
    with PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION) as opened:
        yield opened


class _QuietFeed:
    """The feed's group consumer with nothing to read: every fetch comes back empty."""

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
        return {}

    def paused(self) -> set[TopicPartition]:
        return set()

    def assignment(self) -> set[TopicPartition]:
        return set()

    def pause(self, *tps: TopicPartition) -> None: ...

    def resume(self, *tps: TopicPartition) -> None: ...


class _At12(Receipts):
    """A receipts producer whose records Kafka holds at offset 12 (a batch's fake holds them at 7)."""

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
        sent = await super().send(topic, value, **kwargs)
        sent.offset = 12
        return sent


async def _quiet_run(sub: Subscriber, receipts: Receipts) -> None:
    """A run of ``sub`` as ``Subscriber.run`` makes it, over a feed with no record: the start's purge, then reading
    until idle."""
    sub.purge(force=True)
    feed = _QuietFeed()
    await partner._Handover(sub, feed).on_partitions_assigned(set())  # type: ignore[arg-type]  # joined
    await sub._follow(feed, None, receipts, ChainWriter(RECEIPTS, 0, chain="COL"), 0,  # type: ignore[arg-type]
                      idle_exit_s=0, limit=None)


async def test_a_quiet_feed_has_kafka_vouch_for_a_time_and_the_retention_ends_the_alert(store: PartnerStore) -> None:
    """One batch at T0, then no feed record for 200 days (past the 180-day retention), every clock right: a run that
    reads nothing writes one transaction holding only a checkpoint (no receipt, no feed offset), keeps Kafka's time
    of it, and purges the alert, rather than keeping it for as long as the feed stays quiet."""
    keys = BrokerKeys("2026a")
    await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0))
    later = T0 + 200 * DAY
    receipts = _At12(appended=lambda: later)
    notes: list[str] = []
    await _quiet_run(subscriber(keys, store, lambda: later, notes=notes), receipts)
    assert [r["kind"] for r in receipts.sent] == ["CHECKPOINT"] and receipts.sent[0]["covers"] == 0
    assert receipts.offsets == {} and receipts.ended == ["commit"]
    kept = store.kafka_time()  # Kafka's time of the checkpoint, and what the monotonic clock measured since
    assert kept is not None and ms(later) <= kept < ms(later + timedelta(minutes=1))
    head = store.chain_head(f"{RECEIPTS}[0]/COL")  # the checkpoint's, with where Kafka holds it
    assert head is not None and head[2] == 12
    assert (store.counts().held, store.counts().purged) == (0, 1)
    assert any("purged 1 alert(s)" in note for note in notes)


async def test_nothing_held_back_asks_kafka_for_no_time(store: PartnerStore) -> None:
    """A quiet feed whose store holds nothing past its time writes nothing to the receipts topic."""
    keys = BrokerKeys("2026a")
    await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0))
    receipts = Receipts(appended=lambda: T0 + DAY)
    await _quiet_run(subscriber(keys, store, lambda: T0 + DAY), receipts)
    assert receipts.sent == [] and store.counts().held == 1


async def test_a_clock_ahead_on_a_quiet_feed_stops_the_run_and_commits_no_checkpoint(store: PartnerStore) -> None:
    """The host's clock 200 days ahead of Kafka's, on a quiet feed: the checkpoint asked for shows it, the run stops
    in one line naming the clock, and nothing is purged or kept (no time, no chain head)."""
    keys = BrokerKeys("2026a")
    await run_batch(subscriber(keys, store, lambda: T0), sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0))
    head = store.chain_head(f"{RECEIPTS}[0]/COL")
    receipts = Receipts(appended=lambda: T0 + DAY)
    with pytest.raises(ConfigError, match="this host's clock runs ahead") as stopped:
        await _quiet_run(subscriber(keys, store, lambda: T0 + 200 * DAY), receipts)
    assert "\n" not in str(stopped.value) and receipts.ended == ["abort"]  # Kafka's transaction too
    assert store.kafka_time() == ms(T0) and store.chain_head(f"{RECEIPTS}[0]/COL") == head
    assert store.counts().held == 1


async def test_a_purge_held_back_goes_as_soon_as_a_batch_vouches_for_a_later_time(store: PartnerStore) -> None:
    """A start whose purge held an alert back (the store's time 200 days old), then a batch Kafka stamps 200 days on:
    the next purge runs at once, well within ``PURGE_EVERY_S`` of the start's, and the alert goes."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    await run_batch(subscriber(keys, store, lambda: T0), sealed(sealer, _view(), 0, T0))
    later = T0 + 200 * DAY
    sub = subscriber(keys, store, lambda: later)
    sub.purge(force=True)
    assert store.counts().held == 1
    await run_batch(sub, sealed(sealer, _view("senan-gofast-seizure"), 1, later))
    sub.purge()
    assert (store.counts().held, store.counts().purged) == (1, 1)  # the new alert held, the old one purged


async def test_in_a_run_the_purge_goes_by_kafkas_time_and_the_monotonic_clock_since(
        store: PartnerStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's batch at T0 (Kafka's time T0); two days on by the monotonic clock and the host's, an alert whose
    retention ended a day after T0 is purged, with no new batch: the purge goes by Kafka's last time and what the
    monotonic clock measured since, not by the time the store kept (T0 and the skew, which would hold it back)."""
    keys = BrokerKeys("2026a")
    store.apply(Delivery.of(_view("senan-gofast-seizure"), f"{FEED}:0:0", "COMBIFRON"), T0 - 179 * DAY)
    ticks = [1000.0]
    monkeypatch.setattr(partner, "time", SimpleNamespace(monotonic=lambda: ticks[0]))
    now = [T0]
    sub = subscriber(keys, store, lambda: now[0])
    await run_batch(sub, sealed(keys.sealer("broker-sign-2026a"), _view(), 1, T0))
    ticks[0] += 2 * DAY.total_seconds()
    now[0] = T0 + 2 * DAY
    sub.purge(force=True)
    assert (store.counts().held, store.counts().purged) == (1, 1)


def test_the_purge_goes_by_retention_up_to_kafkas_time_and_the_skew_and_no_further(store: PartnerStore) -> None:
    """Kafka vouched for T0; the host's clock reads T0 + 30 days. Of three alerts whose 180-day retention ends at
    T0 + the skew, a millisecond later, and ten days later, the first is purged and the other two are held back,
    counted, the purge as of T0 + the skew exactly."""
    due = T0 + SKEW
    for name, offset, ends in (("darien-armed-group-sighting", 0, due),
                               ("senan-gofast-seizure", 1, due + timedelta(milliseconds=1)),
                               ("tocumen-red-notice-hit", 2, due + 10 * DAY)):
        store.apply(Delivery.of(_view(name), f"{FEED}:0:{offset}", "COMBIFRON"), ends - 180 * DAY)
    store.keep_kafka_time(ms(T0))
    purged = store.purge(T0 + 30 * DAY)
    assert (purged.retention, purged.deferred, purged.as_of) == (1, 2, due)
    assert (store.counts().held, store.counts().purged) == (2, 1)


async def test_a_batch_holds_the_store_no_longer_than_kafka_takes_to_deliver_within_the_bound(
        store: PartnerStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka never takes the batch's checkpoint: past ``DELIVERY_WAIT_S`` the batch stops (retriable, nothing of it
    kept), and the store's write lock is free again for its other writers."""

    class Unanswered(Receipts):
        async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
            await super().send(topic, value, **kwargs)
            return asyncio.get_running_loop().create_future()  # never delivered

    monkeypatch.setattr(partner, "DELIVERY_WAIT_S", 0.05)
    keys = BrokerKeys("2026a")
    with pytest.raises(KafkaUnavailableError, match="nothing of this batch was committed"):
        await asyncio.wait_for(run_batch(subscriber(keys, store, lambda: T0),
                                         sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0),
                                         receipts=Unanswered(appended=lambda: T0)), 5)
    assert store.counts().held == 0 and store.feed_offset(FEED, 0) is None
    with PartnerStore.open(store.path, "COL", busy_timeout_s=0.1) as other, other.transaction():
        pass  # the write lock is free


def test_a_host_clock_behind_kafkas_purges_as_of_kafkas_time_in_a_run(store: PartnerStore) -> None:
    """The host's clock two days behind the time Kafka's clock reached in a run: an alert whose retention ended a day
    before that time is purged, as of Kafka's time, rather than kept until the host's clock catches up."""
    store.apply(Delivery.of(_view(), f"{FEED}:0:0", "COMBIFRON"), T0 - 181 * DAY)
    purged = store.purge(T0 - DAY, kafka_now=T0)
    assert (purged.retention, purged.deferred, purged.as_of) == (1, 0, T0)
    assert (store.counts().held, store.counts().purged) == (0, 1)
