"""The count of cuts ``TooLarge`` keeps for a partition is forgotten once its records reach past the offset cut: the
same batch met again later (a rebalance, a slot read anew) starts from none, instead of stopping the worker on the
first cuts of a later meeting."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import RecordTooLargeError

from broker.kafka.clients import MAX_BATCH_BYTES, TOO_LARGE_TRIES, TooLarge
from puente.errors import KafkaOperationError
from tests.unit.broker.test_fetch_limits import StoppingGroup, run_group
from tests.unit.broker.test_worker_stall import _worker

TP = TopicPartition("t.ingress.SENAN", 0)
B = TopicPartition("t.ingress.SENAN", 1)


def _cut(tp: TopicPartition, offset: int) -> RecordTooLargeError:
    """The error as aiokafka's fetcher makes it: its text, the partition, the offset fetched and the fetch limit."""
    return RecordTooLargeError("There are some messages at [Partition=Offset]: %s=%s whose size is larger than the "
                               "fetch size %s and hence cannot be ever returned.", tp, offset, MAX_BATCH_BYTES)


def _msg(tp: TopicPartition, offset: int) -> Any:
    return NS(topic=tp.topic, partition=tp.partition, offset=offset, key=None, value=b"v", headers=[], timestamp=0,
              timestamp_type=1)


def test_the_worker_forgets_a_cut_once_its_batch_came_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut at 7 nine times (alone: one partition), then taken whole, then met cut at 7 again (a slot read anew)
    nine times, then taken: the count started again, and the worker goes on. (Before, the count of the first nine
    stayed, and the tenth cut in all stopped the worker.)"""
    tries = TOO_LARGE_TRIES - 1
    answers: list[Any] = [*[_cut(TP, 7)] * tries, {TP: [_msg(TP, 7)]}, *[_cut(TP, 7)] * tries, {TP: [_msg(TP, 7)]},
                          None]

    def fetched(group: StoppingGroup) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    worker = _worker()
    group, _ = run_group(monkeypatch, worker, fetched, [TP])
    assert worker._failure is None and answers == [] and group.seeks.count((TP, 7)) >= 2 * tries


def test_a_cut_count_is_forgotten_once_the_partitions_records_pass_it() -> None:
    """Records of the partition at or past the offset cut clear its count; records before it, or of another
    partition, do not."""
    consumer = NS(assignment=lambda: {TP}, seek=lambda tp, at: None)
    too_large = TooLarge("reading")
    for _ in range(TOO_LARGE_TRIES - 1):
        too_large.seek_back(consumer, _cut(TP, 7))  # type: ignore[arg-type]
    too_large.took_batch({TP: [_msg(TP, 5), _msg(TP, 6)], B: [_msg(B, 9)]})
    with pytest.raises(KafkaOperationError):
        too_large.seek_back(consumer, _cut(TP, 7))  # type: ignore[arg-type]
    too_large.took_batch({TP: [_msg(TP, 7)]})
    for _ in range(TOO_LARGE_TRIES - 1):
        too_large.seek_back(consumer, _cut(TP, 7))  # type: ignore[arg-type]
