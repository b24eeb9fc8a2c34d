"""A record batch a fetch could not take whole (aiokafka's RecordTooLargeError: Kafka sent a slice cut inside a
partition's first batch, the partition not being the first of its answer) is read again, never skipped, and never
stops a read at once: aiokafka has moved the partition's position one record past the batch's start, so the worker
and the readers set it back to the offset the error names and fetch again (``broker.kafka.clients.TooLarge``); met
at the same offset ``TOO_LARGE_TRIES`` times, the read stops with one error naming the partition, the offset and
max.message.bytes. Before, one such error stopped every worker that took the partition (it was not retriable), and a
reader near a partition's end took the moved position for the end and left the record out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import RecordTooLargeError

import broker.kafka.io as io
from broker.kafka.clients import MAX_BATCH_BYTES, TOO_LARGE_TRIES, TooLarge
from puente.errors import KafkaError, KafkaOperationError
from tests.unit.broker.test_fetch_limits import StoppingGroup, run_group
from tests.unit.broker.test_worker_stall import _worker

TP = TopicPartition("t.ingress.SENAN", 0)
A, B = TopicPartition("t.audit.decisions", 0), TopicPartition("t.audit.decisions", 1)


def _cut(tp: TopicPartition, offset: int) -> RecordTooLargeError:
    """The error as aiokafka's fetcher makes it: its text, the partition, the offset fetched and the fetch limit."""
    return RecordTooLargeError("There are some messages at [Partition=Offset]: %s=%s whose size is larger than the "
                               "fetch size %s and hence cannot be ever returned.", tp, offset, MAX_BATCH_BYTES)


def test_the_worker_sets_a_cut_batchs_partition_back_and_fetches_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's fetch raises a cut batch at offset 7 (aiokafka's position now 8): the worker seeks its partition
    back to 7 and goes on fetching, neither stopping nor restarting."""
    answers: list[Any] = [_cut(TP, 7), {}, None]

    def fetched(group: StoppingGroup) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    worker = _worker()
    group, _ = run_group(monkeypatch, worker, fetched, [TP])
    assert group.seeks == [(TP, 7)] and group.fetches == 3 and worker._failure is None


def test_a_batch_cut_again_and_again_stops_the_worker_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut at the same offset ``TOO_LARGE_TRIES`` times, the worker stops with one error that is not retriable (no
    restart onto it), naming the partition, the offset and max.message.bytes; each meeting before was sought back,
    never read past. A batch cut at another offset starts the count again."""
    offsets = [7, 7, 9, *[9] * TOO_LARGE_TRIES]

    def fetched(group: StoppingGroup) -> Any:
        raise _cut(TP, offsets.pop(0))

    worker = _worker()
    with pytest.raises(KafkaOperationError) as caught:
        run_group(monkeypatch, worker, fetched, [TP])
    assert not caught.value.retriable and offsets == [9]
    assert str(caught.value).startswith(f"the record batch at offset 9 of {TP.topic}[0] came cut {TOO_LARGE_TRIES} "
                                        "times while routing alerts in the broker group g")
    assert "max.message.bytes" in str(caught.value) and f"{MAX_BATCH_BYTES:,} bytes" in str(caught.value)
    assert "Nothing was read or committed past it" in str(caught.value)


def test_a_cut_batch_of_a_partition_revoked_meanwhile_is_left_to_its_next_owner() -> None:
    """The error names a partition no longer assigned: nothing is sought (its next owner reads it from the offset
    committed), and nothing counted."""
    group = NS(assignment=lambda: set(), seek=lambda tp, at: pytest.fail("sought"))
    assert TooLarge("reading").seek_back(group, _cut(TP, 7)) is None  # type: ignore[arg-type]


def test_a_cut_batch_whose_error_names_no_offset_stops_the_read() -> None:
    """An error that does not say where (another aiokafka): the position it moved cannot be set back, so the read
    stops there, saying so, rather than read on past a record."""
    with pytest.raises(KafkaError, match=r"a record batch came cut while reading .*did not say where"):
        TooLarge("reading").seek_back(NS(assignment=lambda: {TP}), RecordTooLargeError("too large"))  # type: ignore[arg-type]


class CutReader:
    """A group-less reader of partitions A (records 0-5, the batch at 5 larger than the fetch limit) and B (records
    0-99), as Kafka and aiokafka answer: A's batch at 5 comes cut whenever B, with data, is fetched with it (aiokafka
    raises, its position moved to 6); fetched alone, it comes whole."""

    def __init__(self) -> None:
        self.ends = {A: 6, B: 100}
        self.pos = {A: 0, B: 0}
        self.paused_tps: set[TopicPartition] = set()
        self.calls: list[tuple[str, tuple[TopicPartition, ...]]] = []

    def assign(self, tps: list[TopicPartition]) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {A, B}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(("seek", (tp,)))
        self.pos[tp] = offset

    async def position(self, tp: TopicPartition) -> int:
        return self.pos[tp]

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def pause(self, *tps: TopicPartition) -> None:
        self.calls.append(("pause", tps))
        self.paused_tps |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.calls.append(("resume", tps))
        self.paused_tps -= set(tps)

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        fetched = [tp for tp in tps or (A, B) if tp not in self.paused_tps and self.pos[tp] < self.ends[tp]]
        if A in fetched and self.pos[A] == 5 and B in fetched:
            self.pos[A] = 6  # aiokafka: consumed_to(position + 1)
            raise _cut(A, 5)
        out = {}
        for tp in fetched:
            upto = min(self.ends[tp], self.pos[tp] + 10, 5 if tp == A and self.pos[tp] < 5 else self.ends[tp])
            out[tp] = [NS(topic=tp.topic, partition=tp.partition, offset=o, key=None, value=b"v", headers=[],
                          timestamp=0, timestamp_type=1) for o in range(self.pos[tp], upto)]
            self.pos[tp] = upto
        return out


def test_a_reader_reads_a_cut_batch_again_alone_and_leaves_no_record_out() -> None:
    """``read_many`` meets A's batch at 5 cut: A is set back to 5 and fetched alone (B paused, then resumed), so the
    batch comes whole; every record of both partitions is read, A's 5 included. (Before, the error stopped the read;
    read on, the moved position was A's end, and record 5 was left out.)"""
    consumer = CutReader()
    read = asyncio.run(asyncio.wait_for(io.read_many(consumer, [A, B]), 10))  # type: ignore[arg-type]
    assert [r.offset for r in read[A]] == list(range(6)) and [r.offset for r in read[B]] == list(range(100))
    assert ("seek", (A,)) in consumer.calls and consumer.pos[A] == 6
    paused = consumer.calls.index(("pause", (B,)))
    assert consumer.calls[paused + 1] == ("resume", (B,)) and consumer.paused_tps == set()
