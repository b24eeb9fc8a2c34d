"""A slot's lifecycle partition made anew or emptied under its audit chain: the worker refuses it, rather than
load an empty book and have a recall of an alert a partner holds reach no one, committed for good."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace as NS
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from worker_fakes import HeldProducer, settle

import broker.worker as worker_module
from broker.audit import ChainHead, ChainWriter
from broker.audit.chain import resume_offset
from broker.kafka import KafkaConnection
from broker.lifecycle import OUTBOX_KEY, Unsent
from broker.pipeline import Pipeline
from broker.replay import ReplayWindow
from broker.topology import feed_partition, key_partition
from broker.worker import BrokerWorker, SlotState, WorkerConfig
from puente.dev.synthetic import generate
from puente.errors import FeedGapError
from puente.wire import Unreadable
from tests.unit.broker.test_lifecycle import CODEC, ORIGINATORS, SLOTS, Policy, Sealer

NOW = datetime.now(UTC)
NOW_MS = int(NOW.timestamp() * 1000)


class KeepingProducer(HeldProducer):
    """A slot producer that commits at once and keeps what it was given: (topic, partition, key, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate.set()
        self.records: list[tuple[str, int, bytes | None, bytes]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def stop(self) -> None:
        pass

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self.records += [(topic, partition, k, v) for k, v, _ in batch.records]
        return await super().send_batch(batch, topic, partition=partition)


def _worker(accept_gaps: bool = False, carry_wait_s: float = 0.02) -> BrokerWorker:
    def origin(headers: Any, value: bytes, key: str) -> tuple[str, int]:
        return "SNM", NOW_MS

    pipeline = Pipeline(Policy(), CODEC, {"COL": Sealer(), "USA": Sealer()}, origin, SLOTS,  # type: ignore[arg-type]
                        originators=ORIGINATORS)
    config = WorkerConfig(KafkaConnection(bootstrap="x:1"), "g", SLOTS, max_batch=10, accept_gaps=accept_gaps,
                          carry_wait_s=carry_wait_s)
    return BrokerWorker(config, pipeline, lambda payload: b"s")


def _slot(part: int, carry_wait_s: float = 0.02) -> tuple[TopicPartition, BrokerWorker, KeepingProducer, SlotState]:
    """A worker and one fresh slot of SNM's ingress partition ``part``, its producer keeping what it is given."""
    tp = TopicPartition("t.ingress.SNM", part)
    producer = KeepingProducer()
    state = SlotState(tp, part, producer, ChainWriter("t.audit.decisions", part), ReplayWindow(7))  # type: ignore[arg-type]
    return tp, _worker(carry_wait_s=carry_wait_s), producer, state


def _group(tp: TopicPartition) -> type:
    """The group consumer, as far as ``_dispatch`` asks: ``tp`` is assigned."""

    class Group:
        def pause(self, tp: TopicPartition) -> None: ...
        def resume(self, tp: TopicPartition) -> None: ...
        def assignment(self) -> set[TopicPartition]:
            return {tp}

    return Group


class _Ends:
    """The audit reader, as far as ``_check_books`` asks: each lifecycle partition's end offset."""

    def __init__(self, end: int) -> None:
        self.end = end

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.end)


def test_a_lifecycle_partition_ending_short_of_what_the_audit_says_is_refused() -> None:
    """A block says how far its slot's lifecycle partition reaches at least (``states``). Read back with the
    partition made anew (end 0), the slot is refused in one line naming the partition and --accept-gap; with
    the partition intact it loads; with --accept-gap it reads on and its count falls to what the partition holds,
    which its next block says."""
    alert = copy.deepcopy(next(a for a in generate(40, seed=3, now=NOW) if a["agency"] == "SNM"))
    alert["markings"].update(classification="RESTRINGIDO", originator_consent=[], expires_at=None)
    key = alert["alert_id"].encode()
    part = key_partition(key, 3)
    tp, worker, producer, state = _slot(part)
    Group = _group(tp)

    async def first_version() -> None:
        worker._owned[tp] = state
        msg = NS(topic=tp.topic, partition=part, offset=0, key=key, value=CODEC.encode(alert), headers=[],
                 timestamp=NOW_MS, timestamp_type=1)
        worker._dispatch(Group(), {tp: [msg]})  # type: ignore[arg-type]
        await settle()
        assert state.task is not None
        await asyncio.wait_for(state.task, 5)
        assert worker._failure is None

    asyncio.run(first_version())
    written = sum(topic == "t.lifecycle" for topic, *_ in producer.records)
    block = orjson.loads([v for topic, _, _, v in producer.records if topic == "t.audit.decisions"][-1])
    # The alert's state, its feed record's outbox entry and the mark; then the next transaction's tombstone of that
    # entry and its mark (none unsent).
    assert written == 5 and block["states"] == 3 and state.states == 5 and not state.unsent
    lifecycle = TopicPartition("t.lifecycle", part)
    for end in (3, 4):  # intact (a transaction marker may follow the records)
        asyncio.run(_worker()._check_books(_Ends(end), {part: (ChainHead.after(block), ReplayWindow(7))}))  # type: ignore[arg-type]
    with pytest.raises(FeedGapError) as caught:
        asyncio.run(_worker()._check_books(_Ends(0), {part: (ChainHead.after(block), ReplayWindow(7))}))  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"{lifecycle.topic}[{part}] ends at offset 0" in message and "--accept-gap" in message
    assert "\n" not in message
    head = ChainHead.after(block)
    accepting = _worker(accept_gaps=True)
    lost = asyncio.run(accepting._check_books(_Ends(0), {part: (head, ReplayWindow(7))}))  # type: ignore[arg-type]
    assert head.states == 0 and list(lost) == [part] and "--accept-gap" in lost[part]

    # Read on, the loss is recorded first in the slot's chain: a GAP entry naming it, which skips no record.
    later = KeepingProducer()
    again = SlotState(tp, part, later, ChainWriter("t.audit.decisions", part, head), ReplayWindow(7),  # type: ignore[arg-type]
                      states=head.states)

    async def read_on() -> None:
        accepting._owned[tp] = again
        accepting._start_slot(again, head.resume, 1)
        accepting._states_lost(Group(), again, head.resume, lost[part])  # type: ignore[arg-type]
        await settle()
        assert again.task is not None
        await asyncio.wait_for(again.task, 5)
        assert accepting._failure is None

    asyncio.run(read_on())
    [gap_block] = [orjson.loads(v) for topic, _, _, v in later.records if topic == "t.audit.decisions"]
    [entry] = gap_block["entries"]
    assert (entry["kind"], entry["reason"], entry["skipped"], entry["next_offset"]) == ("GAP", "states-lost", 0, 1)
    assert entry["ingress"] == f"{tp.topic}:{part}:0" and gap_block["states"] == 0
    assert gap_block["seq"] == block["seq"] + 1 and gap_block["prev"] == block["hash"]
    assert resume_offset(gap_block) == 1 and again.done_to == 1  # where the slot stood: nothing skipped


def test_a_worker_retiring_every_slot_stops_reporting_their_lag() -> None:
    """A worker that retires all its slots (a restart, a stop) forgets their lag gauges, as a revocation does: a
    restarted worker may never get those slots back, and a frozen lag for partitions another worker owns would
    read as a stall there."""
    worker = _worker()
    tp = TopicPartition("t.ingress.SNM", 1)
    state = SlotState(tp, 1, KeepingProducer(), ChainWriter("t.audit.decisions", 1), ReplayWindow(7))  # type: ignore[arg-type]
    worker._owned[tp] = state
    worker.metrics.lag(tp.topic, tp.partition, 5000, 12.0)
    assert worker.metrics.value("puente_consumer_lag_records", topic=tp.topic, partition="1") == 5000
    asyncio.run(worker._retire_all())
    assert worker.metrics.registry.get_sample_value("puente_consumer_lag_records",
                                                    {"topic": tp.topic, "partition": "1"}) is None


def test_an_ingress_topic_made_anew_and_filled_past_the_head_is_a_gap_not_a_silent_skip(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The head's last block took ingress offset 999, appended at T. Read back with the topic made anew and refilled
    past it, the record at 999 is another (appended at another time): reading on from 1,000 would pass the new
    topic's first thousand records in silence. The slot is refused (FeedGapError naming --accept-gap), or with
    --accept-gap marked for a gap read from offset 0; the same record, one gone with retention, or a time its
    producer chose, is no such finding."""
    tp = TopicPartition("t.ingress.SNM", 1)
    appended = 1_790_000_000_000
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": f"{tp.topic}:1:999", "ingress_ms": appended}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry]})
    assert (head.resume, head.resume_ms) == (1000, appended)
    def head_of(last: dict[str, Any]) -> ChainHead:
        return ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [last]})

    before, after = "2026-09-21T15:00:00Z", "2026-09-21T14:00:00Z"  # the entry's own time, around ``appended``
    assert appended <= int(datetime.fromisoformat(before).timestamp() * 1000)
    assert head_of({**entry, "kind": "DEAD_LETTER", "at": before}).resume_ms == appended  # the record's own time
    for other in ({**entry, "kind": "DEAD_LETTER", "at": after},  # later than its entry: capped, perhaps
                  {**entry, "kind": "DEAD_LETTER"}, {**entry, "kind": "GAP", "at": before},  # the slot's newest
                  # a batch refused unread: a Kafka node asked for the record at its time would inflate it whole
                  {**entry, "kind": "DEAD_LETTER", "at": before, "reason": "unreadable"}):
        assert (head_of(other).resume, head_of(other).resume_ms) == (1000, None)
    found: list[Any] = []

    async def record_at(consumer: Any, at_tp: TopicPartition, offset: int) -> Any:
        assert (at_tp, offset) == (tp, 999)
        if isinstance(found[0], BaseException):
            raise found[0]
        return found[0]

    monkeypatch.setattr(worker_module, "record_at", record_at)
    states = {1: (head, ReplayWindow(7))}
    hit: list[Any] = []

    class Offsets:
        async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
            assert times == {tp: appended}
            return {tp: hit[0]}

    def check(worker: BrokerWorker) -> dict[TopicPartition, str]:
        return asyncio.run(worker._remade_ingress(Offsets(), [(tp, 1)], states))  # type: ignore[arg-type]

    found[:] = [AssertionError("the record itself is read only when the time found differs")]
    for answer in (NS(offset=999, timestamp=appended), NS(offset=998, timestamp=appended),  # the same, or its twin
                   None, NS(offset=1000, timestamp=appended + 5)):  # nothing since, or gone with retention
        hit[:] = [answer]
        assert check(_worker()) == {}
    hit[:] = [NS(offset=0, timestamp=appended + 86_400_000)]  # an earlier offset at another time: read it
    for same in (NS(offset=999, timestamp_ms=appended, append_time=True, unreadable=None), None,
                 NS(offset=999, timestamp_ms=5, append_time=False, unreadable=None),
                 # the batch the head took, which the broker does not read: taken at its last offset, 999
                 NS(offset=999, timestamp_ms=appended, append_time=True, unreadable=Unreadable("x", 997, 999))):
        found[:] = [same]
        assert check(_worker()) == {}
    for other in (NS(offset=999, timestamp_ms=appended + 86_400_000, append_time=True, unreadable=None),
                  # 999 inside a batch the broker does not read, not at its end: the broker took 999 from another
                  # batch, so the topic is another (any agency login can write such a batch over where it stands)
                  NS(offset=1001, timestamp_ms=appended, append_time=True, unreadable=Unreadable("x", 998, 1001))):
        found[:] = [other]
        with pytest.raises(FeedGapError) as caught:
            check(_worker())
        assert "was made anew" in str(caught.value) and "--accept-gap" in str(caught.value)
        assert list(check(_worker(accept_gaps=True))) == [tp]


class _Seeking:
    """The group as a slot's load uses it: where it was told to read from."""

    def __init__(self, tp: TopicPartition) -> None:
        self.tp, self.seeks = tp, []  # type: list[int]

    def pause(self, *tps: TopicPartition) -> None: ...
    def resume(self, *tps: TopicPartition) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def seek(self, tp: TopicPartition, at: int) -> None:
        self.seeks.append(at)


def _loaded(head: ChainHead, committed: int | None) -> tuple[BrokerWorker, SlotState, KeepingProducer, _Seeking]:
    tp = TopicPartition("t.ingress.SNM", 1)
    worker, producer, group = _worker(accept_gaps=True), KeepingProducer(), _Seeking(tp)
    worker._group = group  # type: ignore[assignment]
    state = SlotState(tp, 1, producer, ChainWriter("t.audit.decisions", 1, head), ReplayWindow(7),  # type: ignore[arg-type]
                      states=head.states)
    worker._start_slot(state, head.resume, committed)
    worker._owned[tp] = state
    return worker, state, producer, group


def _gaps(worker: BrokerWorker, state: SlotState, producer: KeepingProducer,
          mark: Callable[[], None]) -> list[dict[str, Any]]:
    """The audit entries the slot writes once ``mark`` (a ``_mark_losses`` call) has run on the event loop."""
    async def drained() -> None:
        mark()
        await settle()
        assert state.task is not None
        await asyncio.wait_for(state.task, 5)
        assert worker._failure is None

    asyncio.run(drained())
    return [e for topic, _, _, v in producer.records if topic == "t.audit.decisions"
            for e in orjson.loads(v)["entries"]]


def test_states_lost_with_the_ingress_topic_made_anew_is_one_gap_read_from_the_new_topics_start() -> None:
    """Both topics made anew: the slot's lifecycle partition ends short, and its ingress partition holds another
    record where the head stands. One GAP entry records both, and the slot reads the new topic from its first
    record: a mark of its own for the states, first, left the slot busy, so the gap was neither recorded nor read
    (the new topic's first records passed in silence)."""
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": "t.ingress.SNM:1:999", "ingress_ms": NOW_MS}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry], "states": 0})
    worker, state, producer, group = _loaded(head, 1000)
    [gap] = _gaps(worker, state, producer, lambda: worker._mark_losses(
        group, state, head.resume, "t.ingress.SNM[1] was made anew", "lifecycle states lost"))  # type: ignore[arg-type]
    assert group.seeks[-1] == 0 and state.next_offset == 0
    assert (gap["reason"], gap["from_offset"], gap["next_offset"]) == ("topic-remade", 1000, 0)
    assert gap["states_lost"] == "lifecycle states lost"


def test_states_lost_at_a_head_that_is_a_gap_at_a_topic_made_anew_is_still_recorded() -> None:
    """A head whose last entry is a gap at a topic made anew stands at offset 0 and names no record; states lost
    there are recorded all the same, in an entry that names no record either."""
    gap_entry = {"kind": "GAP", "reason": "topic-remade", "from_offset": 40, "next_offset": 0, "skipped": 0}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [gap_entry], "states": 0})
    assert head.resume == 0
    worker, state, producer, group = _loaded(head, None)
    [gap] = _gaps(worker, state, producer, lambda: worker._mark_losses(
        group, state, head.resume, None, "lifecycle states lost"))  # type: ignore[arg-type]
    assert (gap["reason"], gap["next_offset"], gap["skipped"]) == ("states-lost", 0, 0) and "ingress" not in gap
    assert state.next_offset == 0


@pytest.mark.parametrize(("remade", "lost"), [(None, "lifecycle states lost"),
                                               ("t.ingress.SNM[1] was made anew", "lifecycle states lost"),
                                               ("t.ingress.SNM[1] was made anew", None)])
def test_a_slot_whose_loss_mark_a_revocation_dropped_is_loaded_again_not_kept(remade: str | None,
                                                                              lost: str | None) -> None:
    """A rebalance revokes the slot before the mark of what its load found lost commits (alert states, an ingress
    topic made anew, or both) and gives it straight back: the slot is not kept but retired, so its load runs again
    and finds the loss again. Kept, its next block stated the lower count with no GAP entry, or it read on at its
    old offset in the new topic, past the new topic's first records, never decided nor recorded."""
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": "t.ingress.SNM:1:999", "ingress_ms": NOW_MS}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry], "states": 0})
    worker, state, producer, group = _loaded(head, 1000)
    tp = state.tp

    async def revoked_and_assigned_again() -> None:
        worker._mark_losses(group, state, head.resume, remade, lost)  # type: ignore[arg-type]
        assert state.loss == (lost or remade)
        await worker._settle(state)  # the revocation drops what is queued, unsent
        worker._parked = {tp: worker._owned.pop(tp)}
        assert worker._unpark([tp]) == 0
        assert tp not in worker._owned and worker._retiring == [state]

    asyncio.run(revoked_and_assigned_again())
    assert not [v for topic, _, _, v in producer.records if topic == "t.audit.decisions"]


def test_a_slot_whose_loss_is_recorded_is_kept_across_a_rebalance() -> None:
    """Once the block recording the loss commits, the slot holds nothing unrecorded: a rebalance giving it back
    keeps it, with no second mark."""
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": "t.ingress.SNM:1:999", "ingress_ms": NOW_MS}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry], "states": 0})
    worker, state, producer, group = _loaded(head, 1000)
    [gap] = _gaps(worker, state, producer, lambda: worker._mark_losses(
        group, state, head.resume, None, "lifecycle states lost"))  # type: ignore[arg-type]
    assert gap["reason"] == "states-lost" and state.loss is None
    tp = state.tp

    async def kept() -> None:
        worker._parked = {tp: worker._owned.pop(tp)}
        assert worker._unpark([tp]) == 1
        assert not state.busy

    asyncio.run(kept())


def _two_alerts() -> tuple[dict[str, Any], dict[str, Any], int]:
    """Two SNM alerts of one ingress partition (so of one slot), each delivered; and that partition."""
    alerts = [copy.deepcopy(a) for a in generate(200, seed=3, now=NOW) if a["agency"] == "SNM"]
    for alert in alerts:
        alert["markings"].update(classification="RESTRINGIDO", originator_consent=[], expires_at=None)
    part = key_partition(alerts[0]["alert_id"].encode(), 3)
    second = next(a for a in alerts[1:] if key_partition(a["alert_id"].encode(), 3) == part)
    return alerts[0], second, part


def _feed_records(producer: KeepingProducer) -> list[bytes | None]:
    return [k for topic, _, k, _ in producer.records if topic.startswith("t.feed.")]


def test_a_batch_that_comes_soon_carries_the_last_ones_feed_records_and_a_stop_sends_the_rest() -> None:
    """A slot's transaction keeps its feed records unsent; a batch that comes within ``carry_wait_s`` writes them in
    its own transaction, with no transaction of their own; the worker stopping writes what is left."""
    first, second, part = _two_alerts()
    tp, worker, producer, state = _slot(part, carry_wait_s=60.0)  # no batch is ever late here
    Group = _group(tp)

    def msg(offset: int, alert: dict[str, Any]) -> Any:
        return NS(topic=tp.topic, partition=part, offset=offset, key=alert["alert_id"].encode(),
                  value=CODEC.encode(alert), headers=[], timestamp=NOW_MS, timestamp_type=1)

    async def run() -> None:
        worker._owned[tp] = state
        worker._dispatch(Group(), {tp: [msg(0, first)]})  # type: ignore[arg-type]
        await settle()
        assert len(producer.committed) == 1 and state.unsent and _feed_records(producer) == []
        carried = [sent.key for sent in state.unsent]
        worker._dispatch(Group(), {tp: [msg(1, second)]})  # type: ignore[arg-type]
        await settle()
        assert len(producer.committed) == 2 and _feed_records(producer) == carried and state.unsent
        assert state.task is not None and not state.task.done()  # waiting for a batch to carry the second's
        worker.stop()  # wakes the wait: it writes them at once
        await asyncio.wait_for(state.task, 5)
        assert worker._failure is None and not state.unsent and len(_feed_records(producer)) == 2 * len(carried)

    asyncio.run(run())


def test_a_revocation_ends_a_slots_wait_for_a_batch_at_once() -> None:
    """A slot handed over while it waits for a batch to carry its feed records stops waiting at once (the
    revocation holds the group's rebalance): it writes nothing, since it is no longer this worker's, and keeps the
    records unsent for whoever takes the slot; given back, it writes them once."""
    first, _, part = _two_alerts()
    tp, worker, producer, state = _slot(part, carry_wait_s=60.0)
    Group = _group(tp)
    msg = NS(topic=tp.topic, partition=part, offset=0, key=first["alert_id"].encode(), value=CODEC.encode(first),
             headers=[], timestamp=NOW_MS, timestamp_type=1)

    class Seeking(Group):  # type: ignore[misc,valid-type]
        def seek(self, tp: TopicPartition, offset: int) -> None:
            pass

    async def run() -> None:
        worker._owned[tp] = state
        worker._group = Seeking()
        worker._dispatch(Seeking(), {tp: [msg]})  # type: ignore[arg-type]
        await settle()
        assert producer.committed == [1] and state.unsent and state.task is not None and not state.task.done()
        worker._parked[tp] = worker._owned.pop(tp)  # what a revocation does, under the worker's lock
        await asyncio.wait_for(worker._settle(state), 5)  # with the wait not woken: 60 s
        assert state.unsent and _feed_records(producer) == []
        assert worker._unpark([tp]) == 1  # given straight back
        await asyncio.wait_for(state.task, 5)
        assert not state.unsent and len(_feed_records(producer)) == len(set(_feed_records(producer))) > 0

    asyncio.run(run())


def test_with_no_carry_wait_a_slot_sends_its_feed_records_at_once() -> None:
    """``PUENTE_FEED_CARRY_WAIT_MS=0``: a slot whose queue ran dry writes its last transaction's feed records in a
    transaction of their own straight after its commit, waiting for no batch; the slot's loop then ends."""
    first, _, part = _two_alerts()
    tp, worker, producer, state = _slot(part, carry_wait_s=0.0)
    Group = _group(tp)
    msg = NS(topic=tp.topic, partition=part, offset=0, key=first["alert_id"].encode(), value=CODEC.encode(first),
             headers=[], timestamp=NOW_MS, timestamp_type=1)

    async def run() -> None:
        worker._owned[tp] = state
        worker._dispatch(Group(), {tp: [msg]})  # type: ignore[arg-type]
        assert state.task is not None
        await asyncio.wait_for(state.task, 5)  # with the wait at 60 s, it would still be waiting
        assert worker._failure is None and producer.committed == [1] and not state.unsent
        assert _feed_records(producer) != [] and producer.records[-1][:3] == ("t.lifecycle", part, OUTBOX_KEY)

    asyncio.run(run())


def _taken_with(unsent: list[Unsent], marked: int = -1) -> tuple[BrokerWorker, KeepingProducer, SlotState]:
    """A slot taken with ``unsent`` feed records (its last mark naming ``marked`` entries: by default as many), its
    loop started as a load starts it, and run until it ends."""
    tp = TopicPartition("t.ingress.SNM", 1)
    producer = KeepingProducer()
    state = SlotState(tp, 1, producer, ChainWriter("t.audit.decisions", 1), ReplayWindow(7),  # type: ignore[arg-type]
                      unsent=unsent, marked=marked)
    worker = _worker(carry_wait_s=60.0)

    async def run() -> None:
        worker._owned[tp] = state
        worker._send_unsent(None, state)  # type: ignore[arg-type]
        assert state.task is not None
        await asyncio.wait_for(state.task, 5)

    asyncio.run(run())
    return worker, producer, state


def test_a_slot_taken_with_unsent_feed_records_writes_them_before_any_batch() -> None:
    worker, producer, state = _taken_with([Unsent("t.feed.COL", 0, b"ref-1", b"sealed", ())])
    assert worker._failure is None and not state.unsent and _feed_records(producer) == [b"ref-1"]
    assert [(t, k) for t, _, k, _ in producer.records if t == "t.lifecycle"] == [
        ("t.lifecycle", OUTBOX_KEY + b":0"), ("t.lifecycle", OUTBOX_KEY)]  # the entry deleted, none unsent


class _Metadata:
    """Kafka's metadata as ``feed_counts_now`` reads it: topic -> its partitions (a topic absent: Kafka holds none)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.reads = 0

    async def fetch_all_metadata(self) -> Any:
        self.reads += 1
        return NS(partitions_for_topic=lambda topic: set(range(self.counts[topic])) if topic in self.counts else None)


def _held(*sent: tuple[str, int, bytes]) -> list[Unsent]:
    return [Unsent(topic, partition, key, b"sealed", (("puente-kind", b"ALERT"),)) for topic, partition, key in sent]


def test_unsent_records_read_back_are_placed_as_their_feeds_are_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record for a partition its feed no longer has (made anew with fewer) goes where its key goes under the
    count now, as the alert's next records will; one for a feed Kafka no longer holds stops the load, naming the
    feed, and never the record; with --accept-gap it is dropped and the loss returned for the slot's chain. A
    feed found missing is asked for again before it is taken as gone."""
    monkeypatch.setattr("broker.kafka.io.RECOUNT_PAUSE_S", 0.0)
    metadata = _Metadata({"t.feed.COL": 1, "t.feed.USA": 3})
    producers: dict[int, Any] = {1: NS(client=metadata)}
    unsent = {1: _held(("t.feed.COL", 2, b"ref-a"), ("t.feed.USA", 2, b"ref-b"), ("t.feed.CRI", 0, b"ref-c")),
              2: _held(("t.feed.USA", 1, b"ref-d"))}
    with pytest.raises(FeedGapError) as refused:
        asyncio.run(_worker()._place_unsent(producers, unsent))
    said = str(refused.value)
    assert "t.feed.CRI" in said and "lifecycle partition t.lifecycle[1]" in said and "--accept-gap" in said
    assert "ref-c" not in said and "sealed" not in said and "\n" not in said
    assert metadata.reads == 3  # a topic missing is read for three times
    placed, gone = asyncio.run(_worker(accept_gaps=True)._place_unsent(producers, unsent))
    assert [(u.topic, u.partition, u.key) for u in placed[1]] == [("t.feed.COL", 0, b"ref-a"),
                                                                   ("t.feed.USA", 2, b"ref-b")]
    assert placed[2] == unsent[2] and list(gone) == [1] and "1 feed record(s)" in gone[1] and "t.feed.CRI" in gone[1]
    # Every feed found: asked once, only the record for a partition gone moved.
    metadata.counts["t.feed.CRI"] = 1
    metadata.reads = 0
    assert asyncio.run(_worker()._place_unsent(producers, unsent)) == (
        {1: [unsent[1][0]._replace(partition=0, placed=1), *unsent[1][1:]], 2: unsent[2]}, {})
    assert metadata.reads == 1


def test_unsent_records_placed_under_more_partitions_follow_the_alerts_next_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A record placed under more partitions than its feed has now goes where the alert's next record will go (the
    count now, ``Pipeline._feed_count``), even when the partition it was placed in still exists: by its key, or by
    the slot for an alert fed by slot. Placed under the count now, or under fewer (the feed made anew with more: the
    alert keeps its first count), it stays. An entry of an earlier release, which says no count, moves by its key
    only when its partition is gone."""
    monkeypatch.setattr("broker.kafka.io.RECOUNT_PAUSE_S", 0.0)
    metadata = _Metadata({"t.feed.COL": 3})
    producers: dict[int, Any] = {1: NS(client=metadata)}
    key = next(k for k in (f"ref-{i}".encode() for i in range(100)) if feed_partition(k, 3) != feed_partition(k, 8)
               and feed_partition(k, 8) < 3)
    kept, lost_at = feed_partition(key, 3), feed_partition(key, 8)
    sent = _held(("t.feed.COL", lost_at, key))[0]
    unsent = {7: [sent._replace(placed=8), sent._replace(partition=7 % 8, placed=8, by_slot=True),
                  sent._replace(partition=kept, placed=3), sent._replace(partition=kept, placed=2), sent]}
    placed, gone = asyncio.run(_worker()._place_unsent(producers, unsent))
    assert not gone
    assert [(u.partition, u.placed, u.by_slot) for u in placed[7]] == [
        (kept, 3, False), (7 % 3, 3, True), (kept, 3, False), (kept, 2, False), (lost_at, 0, False)]


def test_a_mark_tombstones_the_entries_a_load_dropped() -> None:
    """Entries a load dropped (their feed gone) stay in the lifecycle partition until the next mark: it tombstones
    every entry the last committed mark named, not only as many as are still unsent, so compaction drops them."""
    worker, producer, state = _taken_with(_held(("t.feed.COL", 0, b"ref-1")), marked=3)
    assert worker._failure is None and not state.unsent and state.marked == 0
    lifecycle = [(k, v) for t, _, k, v in producer.records if t == "t.lifecycle"]
    assert lifecycle == [(OUTBOX_KEY + b":0", None), (OUTBOX_KEY + b":1", None), (OUTBOX_KEY + b":2", None),
                         (OUTBOX_KEY, b'{"unsent":0}')]


def test_deliveries_dropped_for_a_feed_gone_are_recorded_with_the_mark_that_ends_them() -> None:
    """With --accept-gap, a load that dropped unsent records for a feed gone (``_place_unsent``) records it in the
    slot's chain: one GAP entry (``deliveries-lost``), skipping no record, committed in the transaction that writes
    the records still unsent, tombstones every entry of the old mark and names none unsent; the slot's loss is then
    recorded, so a rebalance may give it back as it is."""
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": "t.ingress.SNM:1:999", "ingress_ms": NOW_MS}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry], "states": 7})
    worker, state, producer, group = _loaded(head, 1000)
    state.unsent, state.marked = _held(("t.feed.COL", 0, b"ref-1")), 2  # entry 1 was for the feed gone
    what = "lifecycle partition t.lifecycle[1] holds 1 feed record(s) ... for t.feed.CRI, which Kafka no longer holds"

    def mark() -> None:
        worker._states_lost(group, state, head.resume, what, "deliveries-lost", head.resume_ms)  # type: ignore[arg-type]
        worker._send_unsent(group, state)  # type: ignore[arg-type]

    [gap] = _gaps(worker, state, producer, mark)
    assert (gap["kind"], gap["reason"], gap["skipped"], gap["from_offset"], gap["next_offset"]) == (
        "GAP", "deliveries-lost", 0, 1000, 1000)
    assert gap["detail"] == what and state.loss is None and not state.unsent and state.marked == 0
    assert _feed_records(producer) == [b"ref-1"]
    assert [(k, v) for t, _, k, v in producer.records if t == "t.lifecycle"] == [
        (OUTBOX_KEY + b":0", None), (OUTBOX_KEY + b":1", None), (OUTBOX_KEY, b'{"unsent":0}')]


def test_a_stop_before_the_loss_is_recorded_writes_nothing() -> None:
    """A stop that comes before the GAP entry recording deliveries dropped (their feed gone) commits writes neither
    the records still unsent nor a mark: that mark would end the dropped entries with nothing in the audit saying
    so. The slot's next owner reads the same outbox back and finds the loss again."""
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": "t.ingress.SNM:1:999", "ingress_ms": NOW_MS}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry], "states": 7})
    worker, state, producer, group = _loaded(head, 1000)
    state.unsent, state.marked = _held(("t.feed.COL", 0, b"ref-1")), 2

    async def run() -> None:
        worker._states_lost(group, state, head.resume, "what", "deliveries-lost", head.resume_ms)  # type: ignore[arg-type]
        worker._send_unsent(group, state)  # type: ignore[arg-type]
        worker.stop()  # SIGTERM lands before the slot's loop first runs
        assert state.task is not None
        await asyncio.wait_for(state.task, 5)

    asyncio.run(run())
    assert producer.records == [] and state.loss == "what" and len(state.unsent) == 1 and state.marked == 2
