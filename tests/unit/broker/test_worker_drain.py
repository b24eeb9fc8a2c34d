"""A slot's loop, with the Kafka client replaced by a stand-in whose commits we hold and release.

This checks the worker's own scheduling (which batch goes into which transaction, and when),
not Kafka: the integration tests run the same loop on the real broker.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from worker_fakes import HeldProducer, Pipeline, settle

from broker.audit import ChainWriter
from broker.kafka import KafkaConnection
from broker.pipeline import Outcome
from broker.replay import ReplayWindow
from broker.topology import Slots, TopicNames
from broker.worker import WORK_SLICE_S, BrokerWorker, GapMark, SlotState, WorkerConfig

CONN = KafkaConnection(bootstrap="unused:9092")
TP = TopicPartition("t.ingress.SENAN", 0)


class Consumer:
    def pause(self, tp: TopicPartition) -> None: ...
    def resume(self, tp: TopicPartition) -> None: ...
    def assignment(self) -> set[TopicPartition]:
        return {TP}


def _msgs(first: int, count: int) -> list[Any]:
    return [SimpleNamespace(topic=TP.topic, partition=0, offset=o, key=f"SENAN:{o}".encode(), value=b"v",
                            headers=[], timestamp=1_000 + o, timestamp_type=1) for o in range(first, first + count)]



def _slot(pipeline: Any = None, max_batch: int = 10,
          chain: ChainWriter | None = None) -> tuple[BrokerWorker, HeldProducer, SlotState]:
    """A worker owning the one slot TP, whose producer's commits are held until its gate is set."""
    slots = Slots(("SENAN",), 1, TopicNames("t"))
    worker = BrokerWorker(WorkerConfig(CONN, "g", slots, max_batch=max_batch), pipeline or Pipeline(),  # type: ignore[arg-type]
                          lambda p: b"sig")
    producer = HeldProducer()
    state = SlotState(TP, 0, producer, chain or ChainWriter("t.audit", 0), ReplayWindow(7))  # type: ignore[arg-type]
    worker._owned[TP] = state
    return worker, producer, state




async def test_records_queued_while_the_last_commit_is_in_flight_are_not_left_behind() -> None:
    worker, producer, state = _slot()
    consumer = Consumer()

    worker._dispatch(consumer, {TP: _msgs(0, 3)})  # type: ignore[arg-type]
    await settle()
    assert producer.in_flight == 1 and producer.committed == []  # the first batch is committing, held
    worker._dispatch(consumer, {TP: _msgs(3, 2)})  # type: ignore[arg-type]  # arrives meanwhile
    await settle()
    producer.gate.set()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert producer.committed == [3, 5]  # both batches, each in its own transaction, in order
    assert not state.queue and "SENAN:4" in state.seen and worker.metrics.inputs == 5


async def test_the_next_batch_is_worked_out_while_the_previous_one_commits() -> None:
    seen_during_commit: list[bool] = []

    class Watching(Pipeline):
        def process(self, record: Any, seen: Any, now: Any, states: Any = None) -> Outcome:
            seen_during_commit.append(bool(worker._owned[TP].task) and not producer.committed)
            if record.key == b"SENAN:0":  # batch 2 carries a replay of batch 1's first alert
                assert record.offset == 0 or "SENAN:0" in seen
            return super().process(record, seen, now)

    worker, producer, state = _slot(Watching(), max_batch=3)
    replay = _msgs(0, 1)[0]
    replay.offset = 3
    worker._dispatch(Consumer(), {TP: [*_msgs(0, 3), replay]})  # type: ignore[arg-type]
    await settle()
    # Batch 1 is held in its commit; batch 2 (the replay) was already worked out, seeing batch 1's ids.
    assert producer.committed == [] and producer.in_flight == 1 and len(seen_during_commit) == 4
    assert all(seen_during_commit)
    producer.gate.set()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert producer.committed == [3, 4]


def test_transactions_retry_soon_when_the_broker_is_still_ending_the_last_one() -> None:
    """A worker shortens aiokafka's fixed 20 ms wait before retrying a transaction the broker is still
    closing, when it starts (never at import); a renamed constant in a new aiokafka must not drop that silently."""
    import aiokafka.producer.sender as sender

    from broker.kafka import tune_transactions
    from broker.kafka.clients import TXN_RETRY_BACKOFF_S

    before = sender.BACKOFF_OVERRIDE
    try:
        assert tune_transactions()
        assert sender.BACKOFF_OVERRIDE == TXN_RETRY_BACKOFF_S < 0.02
    finally:
        sender.BACKOFF_OVERRIDE = before


def test_importing_the_broker_leaves_aiokafka_as_it_was() -> None:
    """Importing every Puente module changes nothing in aiokafka: its retry constant and its logger's level."""
    import subprocess
    import sys

    code = ("import logging, aiokafka.producer.sender as s; before = s.BACKOFF_OVERRIDE; "
            "import puente.cli, broker.worker, broker.pipeline, broker.service; "
            "assert s.BACKOFF_OVERRIDE == before, s.BACKOFF_OVERRIDE; "
            "assert logging.getLogger('aiokafka').level == logging.NOTSET")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


async def test_a_gap_goes_in_its_own_transaction_between_the_records_around_it() -> None:
    """An accepted gap's mark, queued after records read before it and before records read after it, commits alone
    and in order: the records before it, then its GAP entry with the offset past the gap, then the records after;
    it counts as no input, only as records skipped. With nothing after it, its own commit still moves the offset."""
    chain = ChainWriter("t.audit", 0)
    worker, producer, state = _slot(chain=chain)
    consumer = Consumer()
    entry = {"kind": "GAP", "reason": "deleted", "from_offset": 3, "next_offset": 10, "skipped": 7,
             "ingress": f"{TP.topic}:0:9", "at": "2026-12-03T00:00:00Z"}

    worker._dispatch(consumer, {TP: _msgs(0, 3)})  # type: ignore[arg-type]
    worker._enqueue(consumer, state, [GapMark(9, 5_000, 7, entry)])  # type: ignore[arg-type]
    worker._dispatch(consumer, {TP: _msgs(10, 2)})  # type: ignore[arg-type]
    producer.gate.set()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert producer.committed == [3, 10, 12] and state.gaps_queued == 0 and state.next_offset == 12
    # Only the gap's transaction carries the group offset (a topic made anew sets it back: ``_transaction``).
    assert producer.offsets_sent == [10] and state.group_has == 10
    assert worker.metrics.inputs == 5
    assert worker.metrics.value("puente_ingress_skipped_records_total", topic=TP.topic) == 7
    assert chain.head.seq == 3  # three blocks: the records, the gap, the records

    later = {**entry, "from_offset": 12, "next_offset": 20, "ingress": f"{TP.topic}:0:19"}  # as ``_accept_gap`` has it
    worker._enqueue(consumer, state, [GapMark(19, 6_000, 7, later)])  # type: ignore[arg-type]
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert producer.committed == [3, 10, 12, 20] and not state.queue


class Seeking(Consumer):
    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


async def test_a_gap_is_taken_only_where_the_slot_stands() -> None:
    """The fetcher's gap is accepted only for a slot that is idle and expects the gap's first offset next: a slot
    still committing what it read before, or one set back to its last commit by a rebalance that kept it (its queue
    dropped) while the offsets were asked, gets no mark and no seek (the fetcher meets the gap again from where the
    slot stands). The mark carries the slot's newest append time, for the replay window of a later owner."""
    worker, producer, state = _slot()
    group = Seeking()

    worker._dispatch(group, {TP: _msgs(0, 3)})  # type: ignore[arg-type]
    worker._accept_gap(group, TP, 3, 8, "records 3-7 were deleted")  # type: ignore[arg-type]
    assert group.seeks == [] and state.gaps_queued == 0  # still committing records 0-2
    producer.gate.set()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    worker._accept_gap(group, TP, 1, 8, "stale")  # type: ignore[arg-type]  # not where the slot stands (3)
    assert group.seeks == [] and state.gaps_queued == 0
    worker._accept_gap(group, TP, 3, 8, "records 3-7 were deleted")  # type: ignore[arg-type]
    assert group.seeks == [(TP, 8)]
    assert state.queue[0].entry["ingress_ms"] == 1_002 and state.queue[0].entry["skipped"] == 5  # newest: record 2
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert producer.committed == [3, 8] and state.next_offset == 8
    assert worker.metrics.value("puente_ingress_skipped_records_total", topic=TP.topic) == 5


async def test_a_batch_of_slow_records_lets_the_loop_run_between_them() -> None:
    """Working a batch out yields to the event loop by time, not by count: three records that each take longer
    than a slice (a megabyte of emoji to check, say) let heartbeats and other slots run between them, where a
    yield every 64 records would hold the loop for the whole batch."""
    ran_between: list[int] = []

    class Slow(Pipeline):
        def process(self, record: Any, seen: Any, now: Any, states: Any = None) -> Outcome:
            time.sleep(WORK_SLICE_S * 1.5)
            ran_between.append(ticks)
            return super().process(record, seen, now, states)

    worker, _, state = _slot(Slow())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        outcomes, _, _ = await worker._work_out(state, _msgs(0, 3), {}, {})
    finally:
        task.cancel()
    assert len(outcomes) == 3 and ran_between[0] < ran_between[1] < ran_between[2]
