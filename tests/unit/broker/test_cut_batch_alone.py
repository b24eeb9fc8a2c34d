"""A record batch that came cut (aiokafka's RecordTooLargeError) is fetched again alone by the worker: its other
partitions are paused (those a busy slot paused are left as they are) until Kafka answers for it, then exactly those
are resumed. Kafka sends a first batch whole only to the first partition of its answer; with k partitions busy on a
node, a try with them fetched alongside comes first about once in k, so ten such tries could all fail and stop the
worker (again after each restart, for as long as retention keeps the batch). Only tries made alone count towards
the limit."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.kafka.clients import TOO_LARGE_TRIES, TooLarge
from broker.worker import BrokerWorker
from puente.errors import KafkaOperationError
from tests.unit.broker.test_cut_count_forgotten import _cut, _msg
from tests.unit.broker.test_fetch_limits import StoppingGroup, run_group
from tests.unit.broker.test_worker_stall import _worker

TP = TopicPartition("t.ingress.SENAN", 0)
B, C, S = (TopicPartition("t.ingress.SENAN", p) for p in (1, 2, 3))


class KafkaLike:
    """Pausing, resuming and Kafka's answer as the cut partition meets it: ``cut``'s batch at 7 comes cut (aiokafka
    moving its position to 8) whenever another partition is fetched with it, and whole when it is fetched alone."""

    def __init__(self, cut: TopicPartition, tps: list[TopicPartition], paused: set[TopicPartition]) -> None:
        self.cut, self.tps, self.paused_tps = cut, tps, set(paused)
        self.pos = {cut: 7}
        self.polled: dict[TopicPartition, int | None] = dict.fromkeys(tps)
        self.calls: list[tuple[str, tuple[TopicPartition, ...]]] = []
        self.took = False

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def pause(self, *tps: TopicPartition) -> None:
        self.calls.append(("pause", tps))
        self.paused_tps |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.calls.append(("resume", tps))
        self.paused_tps -= set(tps)

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        return self.polled[tp]

    def answer(self) -> dict[TopicPartition, list[Any]]:
        tp = self.cut
        if self.pos[tp] == 7 and set(self.tps) - self.paused_tps != {tp}:
            self.pos[tp] = 8  # aiokafka: consumed_to(position + 1)
            raise _cut(tp, 7)
        self.took, self.polled[tp], self.pos[tp] = True, 1, 8
        return {tp: [_msg(tp, 7)]}


class CuttingGroup(KafkaLike, StoppingGroup):
    """The worker's group consumer over ``TP``, two partitions B and C, and S, which a busy slot has paused."""

    def __init__(self, worker: BrokerWorker) -> None:
        StoppingGroup.__init__(self, worker, lambda group: None, [TP, B, C, S])
        KafkaLike.__init__(self, TP, [TP, B, C, S], {S})

    def seek(self, tp: TopicPartition, offset: int) -> None:
        StoppingGroup.seek(self, tp, offset)
        self.pos[tp] = offset

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int | None = None,
                      ) -> dict[TopicPartition, list[Any]]:
        self.fetches += 1
        await asyncio.sleep(0)
        if self.took or self.fetches > 3 * TOO_LARGE_TRIES:
            self.worker._stopping.set()
            return {}
        return self.answer()


def test_the_worker_fetches_a_cut_batch_alone_and_resumes_exactly_what_it_paused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut at 7 with B and C fetched alongside, the worker sets ``TP`` back to 7 and pauses B and C (not S, which its
    slot paused), so the next fetch takes the batch whole; then it resumes B and C, and S stays paused. (Before, it
    fetched with them again each time: cut every time here, it stopped after ten tries.)"""
    worker = _worker()
    cutting = CuttingGroup(worker)
    monkeypatch.setattr("tests.unit.broker.test_fetch_limits.StoppingGroup", lambda *args: cutting)
    run_group(monkeypatch, worker, lambda group: None, cutting.tps)  # ``run_group``, over this group
    assert worker._failure is None and cutting.took and cutting.seeks[0] == (TP, 7)
    assert cutting.calls == [("pause", (B, C)), ("resume", (B, C))] and cutting.paused_tps == {S}


def test_only_cuts_met_alone_count_towards_the_limit() -> None:
    """With another partition fetchable, a cut is sought back and not counted, however often; with every other one
    paused, the ``TOO_LARGE_TRIES``-th stops the read, in one line naming the partition, offset and setting."""
    paused: set[TopicPartition] = set()
    seeks: list[tuple[TopicPartition, int]] = []
    consumer = NS(assignment=lambda: {TP, B}, paused=lambda: set(paused), seek=lambda tp, at: seeks.append((tp, at)))
    too_large = TooLarge("reading")
    for _ in range(3 * TOO_LARGE_TRIES):
        assert too_large.seek_back(consumer, _cut(TP, 7)) == TP  # type: ignore[arg-type]
    paused.add(B)
    for _ in range(TOO_LARGE_TRIES - 1):
        too_large.seek_back(consumer, _cut(TP, 7))  # type: ignore[arg-type]
    with pytest.raises(KafkaOperationError) as caught:
        too_large.seek_back(consumer, _cut(TP, 7))  # type: ignore[arg-type]
    text = str(caught.value)
    assert f"at offset 7 of {TP.topic}[0] came cut {TOO_LARGE_TRIES} times" in text and "fetched alone" in text
    assert "max.message.bytes" in text and "\n" not in text and "%s" not in text
    assert len(seeks) == 4 * TOO_LARGE_TRIES - 1 and set(seeks) == {(TP, 7)}
