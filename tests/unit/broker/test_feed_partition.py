"""A delivery's feed partition follows the partner's reference for the alert, not the slot it came from.

The slot is the ingress partition, the murmur2 of the agency's own alert id (and which agency): writing each
slot to a feed partition of its own told a partner which third of candidate ids each alert was in. The real
pipeline runs inside two slots' loops, with the stand-in producer of ``worker_fakes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from worker_fakes import HeldProducer, settle

import broker.kafka.io as kafka_io
from broker.audit import ChainWriter
from broker.kafka.batches import PartitionBatches
from broker.lifecycle import AlertState, LifecycleStateError, Unsent
from broker.pipeline import FeedCountStale, FeedCountUnknown, FeedOut, Originator, Outcome, Pipeline
from broker.replay import ReplayWindow
from broker.topology import Slots, TopicNames, feed_partition, key_partition
from broker.worker import BrokerWorker, SlotState, WorkerConfig
from policies import alert_reference
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec
from tests.unit.broker.test_lifecycle import CODEC, NOW, NOW_MS, REF_KEY, Run, _first, _next
from tests.unit.broker.test_worker_no_sealer import CONN, _Consumer, _DeliverToUSA, _Sealer

SLOTS = Slots(("SNM",), 2, TopicNames("t"))
FEED = "t.feed.USA"


class _Producer(HeldProducer):
    """Commits at once, keeps each feed record's (partition, key); the feed has three partitions."""

    def __init__(self, kept: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self.gate.set()
        self.kept = kept

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if topic == FEED:
            self.kept += [(partition, key) for key, _, _ in batch.records]
        return await super().send_batch(batch, topic, partition=partition)


def _usa_worker() -> tuple[Pipeline, BrokerWorker]:
    """A real pipeline delivering every SNM alert to USA, in a worker of batches of ten."""

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return "SNM", int(dict(headers)["published"])

    pipeline = Pipeline(_DeliverToUSA(), alert_codec(), {"USA": _Sealer()}, origin, SLOTS,  # type: ignore[arg-type]
                        originators={"SNM": Originator.of("SNM", "PAN", "PAN")})
    return pipeline, BrokerWorker(WorkerConfig(CONN, "g", SLOTS, max_batch=10), pipeline, lambda p: b"sig")


async def _emitted(feeds: list[FeedOut]) -> list[tuple[int, bytes]]:
    """The (partition, key) of each feed record the worker writes of ``feeds``, from slot 1."""
    worker = BrokerWorker(WorkerConfig(CONN, "g", SLOTS), None, lambda p: b"s")  # type: ignore[arg-type]
    kept: list[tuple[int, bytes]] = []
    producer = _Producer(kept)
    state = SlotState(TopicPartition("t.ingress.SNM", 1), 1, producer, ChainWriter("t.audit", 1),  # type: ignore[arg-type]
                      ReplayWindow(7))
    batches = PartitionBatches(producer)  # type: ignore[arg-type]
    unsent: list[Unsent] = []
    worker._emit(state, unsent, None, Outcome(entry={}, feeds=feeds))
    for sent in unsent:  # as the slot's next transaction writes them
        await batches.add(sent.topic, sent.partition, sent.key, sent.value, sent.headers)
    await batches.submit()
    return kept


class _AllConsumer(_Consumer):
    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t.ingress.SNM", p) for p in (0, 1)}


async def test_each_delivery_goes_to_the_partition_of_its_reference_whichever_slot_sent_it() -> None:
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    alerts = [a for a in generate(400, seed=5, now=now) if a["agency"] == "SNM"][:60]

    _, worker = _usa_worker()
    kept: list[tuple[int, bytes]] = []
    batch: dict[TopicPartition, list[Any]] = {}
    for slot in (0, 1):
        tp = TopicPartition("t.ingress.SNM", slot)
        state = SlotState(tp, slot, _Producer(kept), ChainWriter("t.audit", slot),  # type: ignore[arg-type]
                          ReplayWindow(7))
        worker._owned[tp] = state
        mine = [a for a in alerts if key_partition(a["alert_id"].encode(), 2) == slot]
        batch[tp] = [SimpleNamespace(topic=tp.topic, partition=slot, offset=i, key=a["alert_id"].encode(),
                                     value=alert_codec().encode(a), headers=[("published", str(ms).encode())],
                                     timestamp=ms, timestamp_type=1) for i, a in enumerate(mine)]
        assert len(mine) >= 10
    worker._dispatch(_AllConsumer(), batch)
    await settle()
    await asyncio.wait_for(asyncio.gather(*(s.task for s in worker._owned.values())), 5)  # type: ignore[arg-type]
    assert worker._failure is None
    assert len(kept) == len(alerts)
    assert all(key.startswith(b"ref-") for _, key in kept)
    # The partition is the reference's: every record, whichever slot; so each slot writes to all three.
    assert all(partition == feed_partition(key, 3) for partition, key in kept)
    for slot in (0, 1):
        refs = {_DeliverToUSA().reference("USA", a["alert_id"]).encode() for a in alerts
                if key_partition(a["alert_id"].encode(), 2) == slot}
        assert {partition for partition, key in kept if key in refs} == {0, 1, 2}


def test_the_feed_partition_is_the_keys_alone_and_spreads_evenly() -> None:
    keys = [f"ref-{i:032x}".encode() for i in range(3000)]
    counts = [0, 0, 0]
    for key in keys:
        counts[feed_partition(key, 3)] += 1
        assert feed_partition(key, 3) == feed_partition(bytes(key), 3)
    assert min(counts) > 900


LEGACY = (b'{"alert_id":"SNM:SCR-00000000","at":"2026-11-22T12:00:00Z","by_id":[],"holders":{"COL":1},'
          b'"recalled":false,"version":1}')  # written with references, before feeds went by key: COL fed by slot


def test_a_partner_fed_through_the_slot_before_feeds_went_by_key_is_fed_there_for_the_alerts_life() -> None:
    """COL holds version 1 in its slot's feed partition (a broker before feeds went by key sent it there): the update
    and the recall notice are marked for that partition, or a subscriber instance reading another partition would
    take the recall for an alert it never held while the instance holding the copy never saw it. The states say so
    for the alert's life; a partner first fed the alert since, and every alert first delivered since, go by key."""
    run = Run()
    first = _first()
    assert first["alert_id"] == "SNM:SCR-00000000"
    run.book.load(first["alert_id"].encode(), LEGACY)
    assert run.book.get(first["alert_id"]) == AlertState(1, {"COL": 1}, by_slot=frozenset({"COL"}))
    update = _next(first, "UPDATE")
    out = run.send(update)
    col = alert_reference(REF_KEY, "COL", first["alert_id"]).encode()  # by reference, as since references
    assert [(f.key, f.by_slot) for f in out.feeds] == [(col, True)]
    assert out.state is not None and out.state.by_slot == frozenset({"COL"})
    assert b'"by_slot":["COL"]' in out.state.encode(first["alert_id"], "2026-11-22T12:00:00Z")
    recall = run.send(_next(update, "RECALL", reason="ERROR"))
    assert [f.by_slot for f in recall.feeds] == [True] and recall.state is not None
    assert recall.state.by_slot == frozenset({"COL"})
    fresh = Run()
    fresh.send(first)
    later = fresh.send(update)
    assert [f.by_slot for f in later.feeds] == [False] and later.state is not None and later.state.by_slot == set()


@pytest.mark.parametrize("value", [b'null', b'"COL"', b'[1]', b'["col lower"]'])
def test_a_state_with_invalid_partners_fed_by_slot_stops_the_slot(value: bytes) -> None:
    body = LEGACY.replace(b'"by_id":[]', b'"by_id":[],"by_slot":' + value)
    with pytest.raises(LifecycleStateError, match="invalid partners fed by slot"):
        AlertState.decode("SNM:SCR-00000000", body)
    assert AlertState.decode("SNM:SCR-00000000", LEGACY.replace(b'"by_id":[]', b'"by_id":[],"by_slot":[]')) == \
        AlertState(1, {"COL": 1})


async def test_the_worker_sends_a_by_slot_record_to_its_slots_partition() -> None:
    """Whatever its key's partition, a record marked by slot goes to slot modulo the feed's partitions, as before
    feeds went by key; the others to their key's."""
    keys = [f"ref-{i:032x}".encode() for i in range(30)]
    kept = await _emitted([FeedOut(FEED, k, b"v", (), 3, i % 2 == 0) for i, k in enumerate(keys)])
    assert sorted(kept) == sorted((1 if i % 2 == 0 else feed_partition(k, 3), k) for i, k in enumerate(keys))
    assert {feed_partition(k, 3) for k in keys[1::2]} == {0, 1, 2}


def test_an_alerts_later_records_follow_the_partition_count_it_was_first_sent_under() -> None:
    """A feed given more partitions since (by hand: ``kafka-topics --alter``; ``topics apply`` never does) would
    move an alert's update and recall to another partition than its copy's: a subscriber instance that never held
    it would take the recall, while the one holding the copy never saw it. Each state records the count each
    partner's first record of the alert followed; later records follow it, and a partner first fed since, or an
    alert first delivered since, follows the feed's count now."""
    run = Run()
    first = _first()
    out = run.send(first)
    assert [f.partitions for f in out.feeds] == [3] and out.state is not None and out.state.counts == {"COL": 3}
    run.pipeline.feed_counts.update({"t.feed.COL": 6, "t.feed.USA": 6})  # both feeds grown, the worker restarted
    update = run.send(_next(first, "CONSENT", partners=["USA"], originator_consent=["USA"]))
    assert {(f.topic, f.partitions) for f in update.feeds} == {("t.feed.COL", 3), ("t.feed.USA", 6)}
    assert update.state is not None and update.state.counts == {"COL": 3, "USA": 6}
    consent = _next(first, "CONSENT", partners=["USA"], originator_consent=["USA"])
    recall = run.send(_next(consent, "RECALL", reason="ERROR"))
    assert {(f.topic, f.partitions) for f in recall.feeds} == {("t.feed.COL", 3), ("t.feed.USA", 6)}
    assert recall.state is not None and recall.state.counts == {"COL": 3, "USA": 6}
    other = Run()
    other.pipeline.feed_counts.update({"t.feed.COL": 6})
    assert [f.partitions for f in other.send(first).feeds] == [6]


def test_a_count_above_the_feeds_now_gives_way_to_it() -> None:
    """A feed made anew with fewer partitions holds none of the alert's earlier records: its count now is taken and
    recorded, never a partition the feed does not have."""
    run = Run()
    first = _first()
    run.send(first)
    run.pipeline.feed_counts["t.feed.COL"] = 2
    update = _next(first, "UPDATE")
    with pytest.raises(FeedCountStale):  # until the worker has read the count anew (below)
        run.send(update)
    key = update["alert_id"].encode()
    rec = Record(run.topic, key_partition(key, 3), 99, key, CODEC.encode(update), (), NOW_MS)
    out = run.pipeline.process_recounted(rec, run.seen, NOW, run.book.get, {"t.feed.COL"})
    assert [f.partitions for f in out.feeds] == [2] and out.state is not None and out.state.counts == {"COL": 2}


def test_a_delivery_to_a_feed_of_unknown_count_stops_the_worker_instead_of_guessing() -> None:
    run = Run()
    run.pipeline.feed_counts.pop("t.feed.COL")
    with pytest.raises(FeedCountUnknown, match=r"t\.feed\.COL"):
        run.send(_first())


def test_counts_are_read_back_and_invalid_ones_stop_the_slot() -> None:
    state = AlertState(1, {"COL": 1}, counts={"COL": 3})
    assert AlertState.decode("SNM:SCR-00000000", state.encode("SNM:SCR-00000000", "2026-11-22T12:00:00Z")) == state
    assert AlertState.decode("SNM:SCR-00000000", LEGACY).counts == {}  # written before counts: the feed's now
    for value in (b'null', b'[3]', b'{"COL":0}', b'{"COL":"3"}', b'{"COL":3.0}', b'{"col lower":3}',
                  b'{"COL":100001}', b'{"COL":true}'):
        with pytest.raises(LifecycleStateError, match="invalid feed partition counts"):
            AlertState.decode("SNM:SCR-00000000", LEGACY.replace(b'"by_id":[]', b'"by_id":[],"counts":' + value))


async def test_the_worker_writes_each_record_under_the_count_it_carries() -> None:
    """The feed has six partitions now; records first sent under three stay in the partition three gives."""
    keys = [f"ref-{i:032x}".encode() for i in range(40)]
    kept = await _emitted([FeedOut(FEED, k, b"v", (), 3 if i % 2 else 6) for i, k in enumerate(keys)])
    assert sorted(kept) == sorted((feed_partition(k, 3 if i % 2 else 6), k) for i, k in enumerate(keys))
    assert {p for p, _ in kept} - {0, 1, 2}  # the six-partition records do reach the new partitions


def test_a_count_above_this_workers_is_read_anew_before_anything_is_decided() -> None:
    """Another worker, started after partitions were added, sent the alert under six; this one read three at its
    start. Taking three would move the alert's next records to another partition than its copy's (about half the
    keys move), and write three into its state for good: the pipeline stops short (``FeedCountStale``), and once
    the worker has read the count anew, a count still below the recorded one is of a feed made anew."""
    run = Run()
    first = _first()
    run.pipeline.feed_counts["t.feed.COL"] = 6
    run.send(first)
    run.pipeline.feed_counts["t.feed.COL"] = 3
    update = _next(first, "UPDATE")
    with pytest.raises(FeedCountStale, match=r"t\.feed\.COL has 3 partitions as this worker read them, fewer than "
                                             r"the 6"):
        run.send(update)
    assert run.book.get(first["alert_id"]).counts == {"COL": 6}  # type: ignore[union-attr]
    key = update["alert_id"].encode()
    rec = Record(run.topic, key_partition(key, 3), 99, key, CODEC.encode(update), (), NOW_MS)
    out = run.pipeline.process_recounted(rec, run.seen, NOW, run.book.get, {"t.feed.COL"})
    assert [f.partitions for f in out.feeds] == [3] and out.state is not None and out.state.counts == {"COL": 3}
    with pytest.raises(FeedCountStale):  # read anew for that record only
        run.pipeline.process(rec._replace(offset=100), set(), NOW, run.book.get)


class _GrownProducer(_Producer):
    """The feed had three partitions when the worker started; six, once metadata is asked of Kafka anew."""

    def __init__(self, kept: list[tuple[int, bytes]]) -> None:
        super().__init__(kept)
        self.partitions = 3
        self.client = SimpleNamespace(force_metadata_update=self._refresh)

    async def _refresh(self) -> bool:
        self.partitions = 6
        return True

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))


async def test_a_worker_that_read_the_feed_before_it_grew_sends_an_alerts_update_where_its_copy_is() -> None:
    """The alert was first sent under six partitions (by a worker started after the feed grew); this worker read
    three at its start. Its update goes to the partition six gives, which the worker reads anew from Kafka."""
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    first = next(a for a in generate(400, seed=5, now=now) if a["agency"] == "SNM"
                 and feed_partition(_DeliverToUSA().reference("USA", a["alert_id"]).encode(), 6)
                 != feed_partition(_DeliverToUSA().reference("USA", a["alert_id"]).encode(), 3))
    update = _next(first, "UPDATE")

    pipeline, worker = _usa_worker()
    kept: list[tuple[int, bytes]] = []
    slot = key_partition(first["alert_id"].encode(), 2)
    tp = TopicPartition("t.ingress.SNM", slot)
    producer = _GrownProducer(kept)
    state = SlotState(tp, slot, producer, ChainWriter("t.audit", slot), ReplayWindow(7))  # type: ignore[arg-type]
    state.book.put(first["alert_id"], AlertState(1, {"USA": 1}, originator="SNM", counts={"USA": 6}))
    worker._owned[tp] = state
    msg = SimpleNamespace(topic=tp.topic, partition=slot, offset=0, key=update["alert_id"].encode(),
                          value=alert_codec().encode(update), headers=[("published", str(ms).encode())],
                          timestamp=ms, timestamp_type=1)
    worker._dispatch(_AllConsumer(), {tp: [msg]})
    await settle()
    await asyncio.wait_for(asyncio.gather(*(s.task for s in worker._owned.values())), 5)  # type: ignore[arg-type]
    assert worker._failure is None
    ref = _DeliverToUSA().reference("USA", first["alert_id"]).encode()
    assert kept == [(feed_partition(ref, 6), ref)]
    assert pipeline.feed_counts == {FEED: 6}


class _Metadata:
    """A producer whose metadata answers the given partition counts in turn, one per forced update."""

    def __init__(self, counts: list[int]) -> None:
        self.counts, self.reads = counts, 0
        self.client = self

    async def force_metadata_update(self) -> bool:
        self.reads += 1
        return True

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.counts[min(self.reads, len(self.counts)) - 1]))


@pytest.mark.parametrize(("counts", "at_least", "answer", "reads"), [
    ([6], 0, 6, 1),  # nothing recorded: one read
    ([6], 6, 6, 1),  # as recorded: one read
    ([3, 3, 6], 6, 6, 3),  # a node behind on partitions just added, then one that has them
    ([3, 3, 3], 6, 3, 3),  # fewer on every read: the feed was made anew with fewer
    ([3, 6, 3], 6, 6, 2),  # the highest count read is the answer
])
async def test_a_count_below_the_recorded_one_is_read_again_before_it_is_taken(
        counts: list[int], at_least: int, answer: int, reads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A topic's partitions are never removed: a count below what an alert's state recorded is taken for a feed
    made anew only once every one of ``RECOUNT_READS`` reads says so, never from one node's stale metadata."""
    monkeypatch.setattr(kafka_io, "RECOUNT_PAUSE_S", 0.0)
    producer = _Metadata(counts)
    assert await kafka_io.partition_count_now(producer, "t.feed.COL", at_least) == answer  # type: ignore[arg-type]
    assert producer.reads == reads
