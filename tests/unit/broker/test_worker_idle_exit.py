"""The worker's idle exit (``run(idle_exit_s=...)``, ``puente broker run --exit-when-idle``): quiet alone is not
enough, the worker must also be caught up with every assigned partition, as Kafka answers when the quiet time has
run out. Driven through ``run`` with a group consumer whose fetches bring nothing (a fetch slower than the quiet
time, on a loaded machine) and a fake clock: each fetch moves it on half a second. The integration tests run the
same loop on the real Kafka."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from worker_fakes import HeldProducer, Pipeline

from broker.audit import ChainWriter
from broker.kafka import FetchView, KafkaConnection
from broker.replay import ReplayWindow
from broker.topology import Slots, TopicNames
from broker.worker import BrokerWorker, SlotState, WorkerConfig

CONN = KafkaConnection(bootstrap="unused:9092")
TP = TopicPartition("t.ingress.SENAN", 0)
FETCH_S = 0.5  # the fake clock's step per fetch
BOUND = 40  # fetches after which the test stops a worker that has not exited by itself


class QuietGroup:
    """A group consumer whose first fetch joins the worker with slot 0 standing at ``stands`` (its last committed
    transaction's end), and whose fetches bring nothing; Kafka's end of the partition is ``end``. Each fetch moves
    the fake clock on ``FETCH_S``; the ``bound``-th (``BOUND`` unless set) stops the worker. ``answer`` stands in for
    Kafka's answer to the question of the partition's end (a coroutine function of the partitions asked)."""

    def __init__(self, worker: BrokerWorker, clock: list[float], stands: int, end: int) -> None:
        self.worker, self.clock, self.stands, self.end = worker, clock, stands, end
        self.fetches = 0
        self.asked = 0
        self.bound = BOUND
        self.answer: Any = self._ends

    async def _ends(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.end)

    async def topics(self) -> set[str]:
        return set()

    def subscribe(self, topics: list[str], listener: Any) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {TP} if self.fetches else set()

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        self.fetches += 1
        if self.fetches == 1:
            state = SlotState(TP, 0, HeldProducer(), ChainWriter("t.audit", 0), ReplayWindow(7))  # type: ignore[arg-type]
            state.next_offset = state.done_to = self.stands
            self.worker._owned[TP] = state
            self.worker._joined(0, 1, self.clock[0], {})
        self.clock[0] += FETCH_S
        if self.fetches == self.bound:
            self.worker.stop()
        return {}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        ends: dict[TopicPartition, int] = await self.answer(tps)
        return ends

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None: ...


def _quiet(monkeypatch: pytest.MonkeyPatch, stands: int, end: int, position: int | None = None,
           ) -> tuple[BrokerWorker, QuietGroup, list[tuple[str, dict[str, Any]]]]:
    """A worker whose group consumer is a ``QuietGroup`` (its position in the partition: ``position``), on a fake
    clock; the lines it logs."""
    worker = BrokerWorker(WorkerConfig(CONN, "g", Slots(("SENAN",), 1, TopicNames("t"))), Pipeline(),  # type: ignore[arg-type]
                          lambda p: b"sig")
    clock = [1000.0]
    group = QuietGroup(worker, clock, stands, end)
    lines: list[tuple[str, dict[str, Any]]] = []

    async def started(client: Any, conn: Any, what: str) -> Any:
        return client

    async def idle(*args: Any) -> None:
        await asyncio.Event().wait()

    async def nothing(*args: Any) -> None: ...

    monkeypatch.setattr("broker.worker.time", SimpleNamespace(monotonic=lambda: clock[0],
                                                              time=lambda: 1_000_000.0 + clock[0]))
    monkeypatch.setattr("broker.worker.consumer", lambda *args, **kwargs: group)
    monkeypatch.setattr("broker.worker.start", started)
    monkeypatch.setattr("broker.worker.stop_client", nothing)
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: FetchView(position, end, None))
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(
        warning=lambda event, **kw: lines.append((event, kw)), info=lambda event, **kw: lines.append((event, kw))))
    monkeypatch.setattr(worker, "_watch_every", idle)
    monkeypatch.setattr(worker, "_commit_every", idle)
    monkeypatch.setattr(worker, "_fetching", lambda *args: None)
    return worker, group, lines


async def test_a_quiet_worker_with_records_unread_at_the_partitions_end_does_not_exit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet for the idle time, but Kafka's end of its partition (5) is past where its slot stands (0): the worker
    goes on (before, it exited at the first quiet deadline, its records unread), asking again once per quiet
    period, never in a loop: 13 times in the 20 s until the test stops it."""
    worker, group, lines = _quiet(monkeypatch, stands=0, end=5, position=0)
    await worker.run([TP.topic], idle_exit_s=1.0)
    assert group.fetches == BOUND  # stopped by the test, not by the idle exit
    assert group.asked == 13  # after 1.5 s quiet (the first fetch past 1 s), then each 1.5 s
    put_off = [(event, kw["lag"], kw["count"]) for event, kw in lines if event.startswith("idle exit")]
    assert put_off == [("idle exit put off: records not processed yet", 5, 1)] * 13


async def test_a_quiet_worker_caught_up_exits_at_the_first_quiet_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet for the idle time and its slot standing at the partition's end: the worker exits there, having asked
    Kafka once."""
    worker, group, _ = _quiet(monkeypatch, stands=5, end=5, position=5)
    await worker.run([TP.topic], idle_exit_s=1.0)
    assert (group.fetches, group.asked) == (3, 1)


async def test_a_position_past_a_transaction_marker_is_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slot's last transaction took the records up to offset 4 (it stands at 5), and the partition's end is
    past the marker of the transaction that wrote them (6): the consumer's position, past the marker, says the
    worker has read everything, and it exits."""
    worker, group, _ = _quiet(monkeypatch, stands=5, end=6, position=6)
    await worker.run([TP.topic], idle_exit_s=1.0)
    assert (group.fetches, group.asked) == (3, 1)


async def test_a_worker_exits_once_its_records_are_processed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind at the first quiet deadline, it goes on; its slot then stands at the end (a fetch came and its
    transaction committed), and it exits at the next deadline."""
    worker, group, _ = _quiet(monkeypatch, stands=0, end=5, position=0)

    async def processed_after_the_first_answer(tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if group.asked > 1:
            worker._owned[TP].done_to = 5
        return dict.fromkeys(tps, 5)

    group.answer = processed_after_the_first_answer
    await worker.run([TP.topic], idle_exit_s=1.0)
    assert (group.fetches, group.asked) == (6, 2)


async def _refused(tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    raise KafkaConnectionError("no node answered")


async def _unanswered(tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    await asyncio.Event().wait()
    raise AssertionError("never answered")


@pytest.mark.parametrize("answer", [_refused, _unanswered])
async def test_a_worker_that_cannot_learn_the_ends_goes_on_without_failing(monkeypatch: pytest.MonkeyPatch,
                                                                           answer: Any) -> None:
    """Caught up, but Kafka refuses the question or does not answer it within ``CAUGHT_UP_WAIT_S``: the worker is not
    known to be caught up, so it neither exits nor fails; it logs it and asks again once per quiet period."""
    monkeypatch.setattr("broker.worker.CAUGHT_UP_WAIT_S", 0.01)
    worker, group, lines = _quiet(monkeypatch, stands=5, end=5, position=5)
    group.answer = answer
    await worker.run([TP.topic], idle_exit_s=1.0)
    assert (group.fetches, group.asked) == (BOUND, 13)
    put_off = [event for event, _ in lines if event.startswith("idle exit")]
    assert put_off == ["idle exit put off: the partitions' ends not known"] * 13


def test_a_slot_stands_at_the_consumers_position_only_with_nothing_queued() -> None:
    """Where a slot stands (the idle exit's and the lag's measure): what it processed, or the consumer's position if
    further once nothing is queued or in flight (what lies between is markers and aborted records); None when
    neither is known."""
    state = SlotState(TP, 0, HeldProducer(), ChainWriter("t.audit", 0), ReplayWindow(7))  # type: ignore[arg-type]
    assert state.stands(None, None) is None
    assert state.stands(5, FetchView(None, 9, None)) == 5
    assert state.stands(5, FetchView(7, 9, None)) == 7
    assert state.stands(None, FetchView(7, 9, None)) == 7
    assert state.stands(8, FetchView(7, 9, None)) == 8
    state.queue.append(object())
    assert state.stands(5, FetchView(7, 9, None)) == 5


async def test_a_stop_while_kafka_is_asked_for_the_ends_does_not_wait_for_the_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker is stopped (SIGTERM) while its question of the partitions' ends is unanswered: it returns without
    waiting for the answer, nor for ``CAUGHT_UP_WAIT_S``, counted in turns of the event loop, not in time."""
    monkeypatch.setattr("broker.worker.CAUGHT_UP_WAIT_S", 3600.0)
    worker, group, lines = _quiet(monkeypatch, stands=5, end=5, position=5)
    answered = asyncio.Event()

    async def stopped_meanwhile(tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        worker.stop()
        await answered.wait()
        return dict.fromkeys(tps, 5)

    group.answer = stopped_meanwhile
    run = asyncio.create_task(worker.run([TP.topic], idle_exit_s=1.0))
    for _ in range(1000):
        if run.done():
            break
        await asyncio.sleep(0)
    waited_for_the_answer = not run.done()
    answered.set()
    await run
    assert not waited_for_the_answer
    assert group.asked == 1
    assert not [event for event, _ in lines if event.startswith("idle exit")]


@pytest.mark.parametrize(("answer", "why"), [
    (None, {"lag": 5, "count": 1, "waiting_for": "t.ingress.SENAN[0]: 5 behind"}),
    (_refused, {"count": 1, "error": f"KafkaConnectionError: {KafkaConnectionError('no node answered')}"}),
])
async def test_a_worker_put_off_for_long_warns_every_30_s_and_does_not_exit(monkeypatch: pytest.MonkeyPatch,
                                                                            answer: Any, why: dict[str, Any]) -> None:
    """Behind for good (a partition it cannot read on), or Kafka refusing the question: the worker never exits, and
    its note of why the idle exit is put off is a warning once it has been put off 30 s, then once per 30 s, naming
    the partitions behind and by how much, or Kafka's error: 3 warnings in the 100 s until the test stops it."""
    worker, group, lines = _quiet(monkeypatch, stands=0, end=5, position=0)
    warnings: list[dict[str, Any]] = []
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(
        warning=lambda event, **kw: warnings.append({"event": event, **kw}),
        info=lambda event, **kw: lines.append((event, kw))))
    group.bound = 200
    group.answer = answer or group.answer
    await worker.run([TP.topic], idle_exit_s=1.0)
    assert group.fetches == group.bound  # stopped by the test, not by the idle exit
    event = "idle exit put off: records not processed yet" if answer is None else \
        "idle exit put off: the partitions' ends not known"
    assert warnings == [{"event": event, "waited_s": waited, **why} for waited in (30.0, 60.0, 90.0)]
