"""The stall watch (pure: times and states in, a log line or nothing out), what the worker feeds it, and the
worker's restart loop (which errors it starts again after, and how it counts them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as aiokafka_errors
from prometheus_client.parser import text_string_to_metric_families
from worker_fakes import HeldProducer, Pipeline, settle

from broker.audit import ChainHead, ChainWriter
from broker.kafka import FetchView, KafkaConnection
from broker.lifecycle import LifecycleBook
from broker.metrics import Metrics
from broker.replay import ReplayWindow
from broker.stall import JOINING, SlotView, StallNote, StallWatch, WorkerView, slot_waiting_for
from broker.topology import Slots, TopicNames
from broker.worker import HEALTHY_RUN_S, BrokerWorker, Restarts, SlotState, WorkerConfig
from puente.errors import (
    AuditChainError,
    ConfigError,
    KafkaAccessError,
    KafkaAuthError,
    KafkaOperationError,
    KafkaUnavailableError,
    PuenteError,
)

CONN = KafkaConnection(bootstrap="unused:9092")
TP = TopicPartition("t.ingress.SENAN", 0)


class Consumer:
    def pause(self, tp: TopicPartition) -> None: ...
    def resume(self, tp: TopicPartition) -> None: ...
    def assignment(self) -> set[TopicPartition]:
        return {TP, TopicPartition(TP.topic, 1)}


def _msgs(first: int, count: int, partition: int = 0) -> list[Any]:
    return [SimpleNamespace(topic=TP.topic, partition=partition, offset=o, key=f"SENAN:{o}".encode(), value=b"v",
                            headers=[], timestamp=1_000 + o, timestamp_type=1) for o in range(first, first + count)]



BEHIND = WorkerView(joining=False, slots=[SlotView(0, committed_at=0.0, behind=40, last_fetch_at=0.0)])


def _committed(at: float) -> WorkerView:
    return WorkerView(joining=False, slots=[SlotView(0, committed_at=at, behind=40, last_fetch_at=0.0)])


def _idle(t: float) -> WorkerView:
    """A slot with nothing to do, whose fetches Kafka answers (the worker long-polls about every 100 ms)."""
    return WorkerView(joining=False, slots=[SlotView(0, committed_at=0.0, last_fetch_at=t - 0.1)])


def test_an_idle_worker_never_stalls() -> None:
    """No work (joined, nothing behind, nothing open, fetches answered) is never a stall, however long it lasts."""
    watch = StallWatch(10.0, since=0.0)
    assert all(watch.observe(t, _idle(t)) == [] for t in range(0, 120))


def test_a_caught_up_slot_whose_fetches_go_unanswered_stalls() -> None:
    """A slot caught up when Kafka stopped answering its fetches shows nothing behind for ever (the partition's end
    is the last answer's): the silence itself is the stall, warned each interval, its end noted once answered."""
    watch = StallWatch(10.0, since=0.0)
    assert all(watch.observe(float(t), _idle(float(t))) == [] for t in range(0, 20))
    gone = WorkerView(joining=False, slots=[SlotView(0, committed_at=0.0, last_fetch_at=19.9)])
    notes = {t: watch.observe(float(t), gone) for t in range(20, 50)}
    warned = {t: n for t, n in notes.items() if n}
    assert sorted(warned) == [34, 44]  # 10 s after the last look that found it answered (24), then each 10 s
    assert warned[34][0].waiting.startswith("Kafka, unreachable: slot 0 has had no fetch answered for 14s, caught up")
    assert watch.observe(50.0, _idle(50.0)) == [StallNote(warned[44][0].waiting, 26.0, recovered=True, slot=0)]


def test_a_stall_is_warned_once_per_interval_then_its_end_once() -> None:
    """Work without progress warns at the threshold, again each interval, and notes the recovery once."""
    watch = StallWatch(10.0, since=0.0)
    notes = {t: watch.observe(float(t), BEHIND) for t in range(1, 31)}
    warned = {t: n for t, n in notes.items() if n}
    assert sorted(warned) == [10, 20, 30]
    silent = "Kafka, unreachable: no fetch answered for 10s with 40 records to process in slot 0"
    assert warned[10] == [StallNote(silent, 10.0, slot=0)]
    assert warned[30][0].stalled_s == 30.0
    moved = watch.observe(31.0, _committed(31.0))
    assert moved == [StallNote(warned[30][0].waiting, 31.0, recovered=True, slot=0)]
    assert watch.observe(32.0, _committed(31.0)) == []  # the recovery is said once
    assert all(watch.observe(float(t), _committed(31.0)) == [] for t in range(33, 41))  # a new clock from 31


def test_progress_before_the_threshold_says_nothing() -> None:
    """A slot that commits now and then while it has work is not stalled, whatever its lag."""
    watch = StallWatch(10.0, since=0.0)
    assert all(watch.observe(float(t), _committed(float(t // 9 * 9))) == [] for t in range(1, 100))


def test_a_join_that_lasts_is_a_stall_of_the_worker() -> None:
    """Joining the group past the threshold warns, naming no slot; a completed join ends it, even if another began."""
    watch = StallWatch(10.0, since=0.0)
    notes = [n for t in range(1, 16) for n in watch.observe(float(t), WorkerView(joining=True, joins=0))]
    assert notes == [StallNote(JOINING, 10.0)]
    assert watch.observe(16.0, WorkerView(joining=True, joins=1)) == [StallNote(JOINING, 16.0, recovered=True)]


@pytest.mark.parametrize(("view", "expected"), [
    (SlotView(7, 0.0, txn_began=4.0, taken=True, queued=3, behind=5), "the commit of slot 7's transaction (open 16s)"),
    (SlotView(2, 0.0, taken=True, queued=3, behind=5), "slot 2's next transaction to begin (3 records queued;"),
    (SlotView(1, 0.0, behind=5, last_fetch_at=19.0), "fetching: 5 records to process in slot 1"),
    (SlotView(1, 0.0, behind=5, last_fetch_at=None), "Kafka, unreachable: no fetch answered with 5 records"),
    (SlotView(1, 0.0, behind=5, last_fetch_at=8.0), "Kafka, unreachable: no fetch answered for 12s"),
    (SlotView(1, 0.0, behind=0, last_fetch_at=19.9), None),
    (SlotView(1, 0.0, behind=0, last_fetch_at=None), "Kafka, unreachable: slot 1 has had no fetch answered since it"),
    (SlotView(1, 0.0, behind=0, last_fetch_at=8.0), "Kafka, unreachable: slot 1 has had no fetch answered for 12s"),
])
def test_the_warning_names_the_slot_and_what_it_waits_for(view: SlotView, expected: str | None) -> None:
    """The open transaction first, then records taken, then Kafka silent or slow to fetch; the slot named in each."""
    found = slot_waiting_for(view, 20.0, unreachable_after_s=5.0)
    assert found == expected if expected is None else found is not None and found.startswith(expected)


def _worker(max_concurrent_txns: int = 4, slots: int = 1) -> BrokerWorker:
    config = WorkerConfig(CONN, "g", Slots(("SENAN",), slots, TopicNames("t")), max_batch=10,
                          max_concurrent_txns=max_concurrent_txns)
    return BrokerWorker(config, Pipeline(), lambda p: b"sig")  # type: ignore[arg-type]


def _slot(worker: BrokerWorker, tp: Any, slot: int, producer: HeldProducer) -> SlotState:
    state = SlotState(tp, slot, producer, ChainWriter("t.audit", slot), ReplayWindow(7))  # type: ignore[arg-type]
    worker._owned[tp] = state
    return state


async def test_a_worker_keeps_at_most_its_permitted_transactions_open() -> None:
    """With one permit, the second slot's transaction begins only once the first has committed."""
    worker = _worker(max_concurrent_txns=1, slots=2)
    tp1 = TopicPartition(TP.topic, 1)
    first, second = HeldProducer(), HeldProducer()
    a, b = _slot(worker, TP, 0, first), _slot(worker, tp1, 1, second)

    worker._dispatch(Consumer(), {TP: _msgs(0, 2), tp1: _msgs(0, 2, partition=1)})  # type: ignore[arg-type]
    await settle()
    assert first.in_flight + second.in_flight == 1
    assert [s.txn_began is not None for s in (a, b)] == [True, False]
    second.gate.set()  # the waiting slot cannot commit before it gets the permit
    await settle()
    assert second.committed == [] and first.in_flight == 1
    first.gate.set()
    await asyncio.wait_for(asyncio.gather(a.task, b.task), 5)  # type: ignore[arg-type]
    assert worker.metrics.inputs == 4 and worker._progressed == {0, 1}


async def test_records_a_slot_committed_already_are_not_processed_again() -> None:
    """A fetch from a position that predates the slot's last commit brings records the slot committed: only those
    after its committed offset go into a transaction."""
    worker = _worker()
    producer = HeldProducer()
    producer.gate.set()
    state = _slot(worker, TP, 0, producer)
    state.next_offset = 5
    worker._dispatch(Consumer(), {TP: _msgs(3, 2)})  # type: ignore[arg-type]
    assert not state.busy
    worker._dispatch(Consumer(), {TP: _msgs(3, 4)})  # type: ignore[arg-type]
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert worker.metrics.inputs == 2 and state.next_offset == 7


async def test_a_batch_waiting_its_turn_is_dropped_when_the_worker_stops() -> None:
    """A batch not yet in a transaction when the worker stops is left for the next owner, uncommitted."""
    worker = _worker(max_concurrent_txns=1, slots=2)
    tp1 = TopicPartition(TP.topic, 1)
    first, second = HeldProducer(), HeldProducer()
    a, b = _slot(worker, TP, 0, first), _slot(worker, tp1, 1, second)
    second.gate.set()
    worker._dispatch(Consumer(), {TP: _msgs(0, 2), tp1: _msgs(0, 3, partition=1)})  # type: ignore[arg-type]
    await settle()
    worker.stop()
    first.gate.set()
    await asyncio.wait_for(asyncio.gather(a.task, b.task), 5)  # type: ignore[arg-type]
    assert first.committed == [2] and second.committed == [] and second.in_flight == 0
    assert "SENAN:0" in a.seen and b.next_offset == 0


def _watched(worker: BrokerWorker, monkeypatch: pytest.MonkeyPatch, views: dict[Any, FetchView]) -> list[Any]:
    lags: list[Any] = []
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: views.get(tp))
    monkeypatch.setattr(worker.metrics, "lag", lambda *args: lags.append(args))
    return lags


def test_a_transaction_marker_after_the_last_record_is_no_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle slot whose consumer has read past a transaction marker has no lag (the marker takes an offset)."""
    import time

    worker = _worker()
    state = _slot(worker, TP, 0, HeldProducer())
    state.next_offset = 10  # committed up to offset 9; the writer's commit marker sits at 10
    wall = time.time()
    lags = _watched(worker, monkeypatch, {TP: FetchView(position=11, end=11, answered_at=wall)})
    worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    assert lags == [(TP.topic, 0, 0, 0.0)]


def test_a_stalled_slot_shows_its_lag_in_seconds_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records behind and no commit: the lag in seconds grows with each look, though nothing arrives."""
    worker = _worker()
    state = _slot(worker, TP, 0, HeldProducer())
    state.next_offset, state.progress_at = 10, 100.0
    lags = _watched(worker, monkeypatch, {TP: FetchView(position=10, end=25, answered_at=None)})
    clock = iter([130.0, 160.0])
    monkeypatch.setattr("broker.worker.time.monotonic", lambda: next(clock))
    worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    assert lags == [(TP.topic, 0, 15, 30.0), (TP.topic, 0, 15, 60.0)]


def test_a_caught_up_slot_kafka_stopped_answering_shows_its_fetch_age(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot caught up as far as the last answer said shows 0 behind however long Kafka is silent; the fetch age
    gauge shows the silence (seconds since that answer, or since the slot was taken before any answer)."""
    worker = _worker()
    worker.metrics = Metrics()
    other = TopicPartition(TP.topic, 1)
    state, fresh = _slot(worker, TP, 0, HeldProducer()), _slot(worker, other, 1, HeldProducer())
    state.next_offset, fresh.taken_at = 100, 950.0
    views = {TP: FetchView(100, 100, 1_000_000.0 - 600), other: FetchView(None, None, None)}
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: views.get(tp))
    monkeypatch.setattr("broker.worker.time.time", lambda: 1_000_000.0)
    monkeypatch.setattr("broker.worker.time.monotonic", lambda: 1000.0)
    worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    value = worker.metrics.value
    assert value("puente_consumer_lag_records", topic=TP.topic, partition="0") == 0
    assert value("puente_consumer_fetch_age_seconds", topic=TP.topic, partition="0") == 600.0
    assert value("puente_consumer_fetch_age_seconds", topic=TP.topic, partition="1") == 50.0
    worker.metrics.forget(TP.topic, 0)
    assert "puente_consumer_fetch_age_seconds" not in {
        s.name for f in text_string_to_metric_families(worker.metrics.render().decode()) for s in f.samples
        if s.labels.get("partition") == "0"}


def test_the_worker_logs_a_stall_once_then_its_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's own watch: one warning naming the slot whose commit it waits for, then one recovery line."""
    worker = _worker()
    worker._joining = False
    state = _slot(worker, TP, 0, HeldProducer())
    state.next_offset, state.txn_began, state.progress_at = 10, 0.0, 0.0
    _watched(worker, monkeypatch, {TP: FetchView(position=12, end=12, answered_at=None)})
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(warning=lambda event, **kw: lines.append((event, kw))))
    worker._stall = StallWatch(10.0, since=0.0)
    for t in (5.0, 11.0, 12.0, 13.0):
        monkeypatch.setattr("broker.worker.time.monotonic", lambda t=t: t)
        worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    state.txn_began, state.progress_at = None, 13.5  # the slot committed
    monkeypatch.setattr("broker.worker.time.monotonic", lambda: 14.0)
    worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    assert [event for event, _ in lines] == ["worker stalled", "worker moving again"]
    assert lines[0][1]["waiting_for"] == "the commit of slot 0's transaction (open 11s)"
    assert lines[1][1]["stalled_s"] == 14.0


class StoppableProducer(HeldProducer):
    def __init__(self) -> None:
        super().__init__()
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_slot_assigned_back_in_the_same_rebalance_is_kept_as_it_was() -> None:
    """A revoked slot given back by the assignment that follows keeps its producer and state; the rest are retired."""
    worker = _worker(slots=2)
    tp1 = TopicPartition(TP.topic, 1)
    stays, moves = StoppableProducer(), StoppableProducer()
    stays.gate.set()
    kept, moved = _slot(worker, TP, 0, stays), _slot(worker, tp1, 1, moves)
    worker._dispatch(Consumer(), {TP: _msgs(0, 3)})  # type: ignore[arg-type]
    await settle()
    await worker._release([TP, tp1])  # waits for TP's transaction: committed before it is parked
    assert stays.committed == [3] and not worker._owned and not stays.stopped and not moves.stopped
    await worker._acquire([TP])  # nothing fresh: no producer started, no audit read back
    assert worker._owned == {TP: kept} and not stays.stopped and moves.stopped and not worker._parked
    assert "SENAN:2" in kept.seen and kept.next_offset == 3 and moved not in worker._owned.values()


async def test_after_a_failure_no_parked_slot_is_kept() -> None:
    """When anything failed, every parked slot is retired: the worker starts again from Kafka."""
    worker = _worker()
    producer = StoppableProducer()
    _slot(worker, TP, 0, producer)
    await worker._release([TP])
    worker._fail(RuntimeError("a slot's commit failed"))
    await worker._acquire([])
    assert producer.stopped and not worker._owned and not worker._parked


async def test_the_restart_count_is_of_failures_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that commits between Kafka errors keeps running; only errors with no commit between them add up."""
    worker = _worker()
    runs: list[int] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        runs.append(len(runs))
        if len(runs) <= 6:
            worker._progressed.add(0)  # each run commits an ingress batch, then Kafka fails
            raise KafkaUnavailableError("Kafka went away")
        if len(runs) == 7:
            raise KafkaUnavailableError("Kafka went away")  # the second in a row (none committed since the last)

    async def no_wait(seconds: float) -> None: ...

    monkeypatch.setattr(worker, "_run_once", run_once)
    monkeypatch.setattr("broker.worker.asyncio.sleep", no_wait)
    await worker.run([], max_restarts=2)
    assert len(runs) == 8
    runs.clear()

    async def always_failing(topics: list[str], idle_exit_s: float | None) -> None:
        runs.append(0)
        raise KafkaUnavailableError("Kafka went away")

    monkeypatch.setattr(worker, "_run_once", always_failing)
    with pytest.raises(KafkaUnavailableError):
        await worker.run([], max_restarts=2)
    assert len(runs) == 3


class RefusingProducer(StoppableProducer):
    """A slot producer whose every transaction Kafka refuses with a retriable error."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        raise KafkaUnavailableError("the transaction coordinator of slot 1 could not be reached")
        yield  # (a generator)


async def test_a_slot_failing_every_run_is_counted_though_another_slot_commits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Slot 0 commits a batch each run, then slot 1's transaction fails it with a retriable error: slot 1's failures
    are in a row (it never commits), so the worker gives up after max_restarts, each warning naming slot 1 and its
    running count. (One count that any commit reset restarted it for ever, each line saying attempt=1.)"""
    worker = _worker(slots=2)
    tp1 = TopicPartition(TP.topic, 1)
    runs: list[int] = []
    lines: list[dict[str, Any]] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        worker._failure, worker._failed_slots = None, ()
        runs.append(0)
        if len(runs) > 20:
            return  # never given up: the test fails below
        start = 2 * len(runs)
        committing, refusing = StoppableProducer(), RefusingProducer()
        committing.gate.set()
        a, b = _slot(worker, TP, 0, committing), _slot(worker, tp1, 1, refusing)
        worker._dispatch(Consumer(), {TP: _msgs(start, 2)})  # type: ignore[arg-type]
        await asyncio.wait_for(a.task, 5)  # type: ignore[arg-type]
        assert committing.committed == [start + 2]
        worker._dispatch(Consumer(), {tp1: _msgs(0, 2, partition=1)})  # type: ignore[arg-type]
        await asyncio.wait_for(b.task, 5)  # type: ignore[arg-type]
        worker._owned.clear()
        assert worker._failure is not None
        raise worker._failure

    async def no_wait(seconds: float) -> None: ...

    monkeypatch.setattr(worker, "_run_once", run_once)
    monkeypatch.setattr("broker.worker.asyncio.sleep", no_wait)
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(warning=lambda event, **kw: lines.append(kw)))
    with pytest.raises(KafkaUnavailableError, match="slot 1"):
        await worker.run([], max_restarts=5)
    assert len(runs) == 6
    assert [(line["attempt"], line.get("slots")) for line in lines] == [(n, [1]) for n in range(1, 6)]


def test_each_slot_counts_its_own_failures_and_the_worker_runs_without_any_batch() -> None:
    """A slot's count starts again only when that slot commits an ingress batch; the worker's when any slot does."""
    restarts = Restarts(3)
    assert restarts.failed({0}, [1]) == 1
    assert restarts.failed({0}, [1]) == 2
    assert restarts.failed({0, 1}, [2]) == 1  # slot 1 committed: its count is gone; slot 2's first
    assert restarts.failed((), [1]) == 2  # no batch at all: the worker's count is 2, slot 1's 1
    assert restarts.failed((), ()) == 3 and restarts.failed((), ()) == 4  # the worker's own (its consumer, say)
    assert restarts.failed({3}, [3]) == 1  # a slot that committed then failed: its first in a row


@pytest.mark.parametrize(("failure", "raised"), [
    (KafkaAuthError("credentials refused"), KafkaAuthError),
    (KafkaAccessError("no ACL allows it"), KafkaAccessError),
    (KafkaOperationError("unknown topic"), KafkaOperationError),
    (ConfigError("no signing key"), ConfigError),
    (AuditChainError("a chain ends with what this broker did not write"), AuditChainError),
    (aiokafka_errors.SaslAuthenticationFailed("bad password"), KafkaAuthError),
    (aiokafka_errors.TopicAuthorizationFailedError(), KafkaAccessError),
], ids=lambda v: v.__name__ if isinstance(v, type) else type(v).__name__)
async def test_an_error_a_restart_cannot_mend_is_raised_at_once(monkeypatch: pytest.MonkeyPatch, failure: Exception,
                                                                 raised: type[PuenteError]) -> None:
    """Refused credentials or access, bad configuration and a foreign chain end the run on the first failure,
    as Puente's error (the client's own translated), with no restart and no back-off."""
    worker = _worker()
    runs: list[int] = []
    waits: list[float] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        runs.append(0)
        raise failure

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(worker, "_run_once", run_once)
    monkeypatch.setattr("broker.worker.asyncio.sleep", no_wait)
    with pytest.raises(raised) as caught:
        await worker.run([], max_restarts=5)
    assert not caught.value.retriable
    assert len(runs) == 1 and waits == []
    if not isinstance(failure, PuenteError):
        assert caught.value.__cause__ is failure  # the client's error is kept as the cause, for the traceback


async def test_a_retriable_error_restarts_and_progress_resets_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retriable failure (Puente's or the client's, translated) starts the worker again; a run that committed
    something starts the count (and the back-off) again from one."""
    worker = _worker()
    runs: list[int] = []
    attempts: list[int] = []
    waits: list[float] = []
    failures: list[Exception] = [
        KafkaUnavailableError("Kafka went away"),
        aiokafka_errors.KafkaConnectionError("connection reset"),
        aiokafka_errors.ProducerFenced(),  # progress before this one: the count starts again
    ]

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        runs.append(0)
        if len(runs) == 3:
            worker._progressed.add(0)
        if failures:
            raise failures.pop(0)

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(worker, "_run_once", run_once)
    monkeypatch.setattr("broker.worker.asyncio.sleep", no_wait)
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(
        warning=lambda event, **kw: attempts.append(kw["attempt"])))
    await worker.run([], max_restarts=2)
    assert len(runs) == 4
    assert attempts == [1, 2, 1]
    assert waits == [1.0, 2.0, 1.0]


async def test_a_stopping_worker_does_not_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retriable failure while the worker is asked to stop ends the run instead of starting it again."""
    worker = _worker()
    runs: list[int] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        runs.append(0)
        worker.stop()
        raise KafkaUnavailableError("Kafka went away")

    monkeypatch.setattr(worker, "_run_once", run_once)
    with pytest.raises(KafkaUnavailableError):
        await worker.run([], max_restarts=5)
    assert len(runs) == 1


async def test_the_fetch_view_reads_what_aiokafka_knows_without_asking() -> None:
    """``fetch_view`` reads the position from aiokafka's state (a renamed internal must fail here, not in a worker)."""
    from broker.kafka import consumer, fetch_view

    client = consumer(CONN, "unit")
    try:
        assert fetch_view(client, TP) is None  # not assigned
        client.assign([TP])
        assert fetch_view(client, TP) == FetchView(position=None, end=None, answered_at=None)
        client._subscription.subscription.assignment.state_value(TP).seek(5)  # what seek() does once started
        assert fetch_view(client, TP) == FetchView(position=5, end=None, answered_at=None)
    finally:
        await client.stop()


class GroupConsumer:
    """The group consumer as the worker pauses and resumes it: records which partitions, in order."""

    def __init__(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        self.calls: list[tuple[str, tuple[TopicPartition, ...]]] = []
        self.offsets = offsets or {}  # none by default: a slot loading empty is a new one (_check_empty_slots)
        self.positions: dict[TopicPartition, int | str] = {}
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append({tp: at.offset for tp, at in offsets.items()})

    def pause(self, *tps: TopicPartition) -> None:
        self.calls.append(("pause", tps))

    def resume(self, *tps: TopicPartition) -> None:
        self.calls.append(("resume", tps))

    def assignment(self) -> set[TopicPartition]:
        return {tp for _, tps in self.calls for tp in tps}

    async def committed(self, tp: TopicPartition) -> int | None:
        self.calls.append(("committed", (tp,)))
        return self.offsets.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.positions.update(dict.fromkeys(tps, "beginning"))


class AuditReader:
    """The audit reader, as far as a slot load asks it directly: where each audit partition's log starts (0:
    nothing ever deleted)."""

    def __init__(self, log_start: int = 0) -> None:
        self.log_start = log_start

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.log_start)

    async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, None]:
        return dict.fromkeys(times)  # no record appended since: each ingress topic as its head left it


def _loading_worker(monkeypatch: pytest.MonkeyPatch, fail_reading: bool = False,
                    ) -> tuple[BrokerWorker, GroupConsumer, asyncio.Event, list[StoppableProducer]]:
    """A worker whose slot loads wait for the returned event (producers start, then the state is read back)."""
    worker = _worker(slots=2)
    group = GroupConsumer()
    worker._group = group  # type: ignore[assignment]
    gate = asyncio.Event()
    made: list[StoppableProducer] = []

    async def producer(slot: int) -> StoppableProducer:
        await gate.wait()  # fencing the previous owner: seconds, on a busy cluster
        made.append(StoppableProducer())
        return made[-1]

    async def read_state(consumer: Any, slots: list[int], committed: Any) -> dict[int, Any]:
        if fail_reading:
            raise KafkaUnavailableError("the audit partition's leader is away")
        return {slot: (ChainHead.after(None), ReplayWindow(7)) for slot in slots}

    async def read_books(consumer: Any, slots: list[int]) -> tuple[dict[int, LifecycleBook], dict[int, list[Any]]]:
        return {slot: LifecycleBook() for slot in slots}, {slot: [] for slot in slots}

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield client

    monkeypatch.setattr(worker, "_producer", producer)
    monkeypatch.setattr(worker, "_read_state", read_state)
    monkeypatch.setattr(worker, "_read_books", read_books)
    monkeypatch.setattr("broker.worker.reader", lambda *a, **k: AuditReader())
    monkeypatch.setattr("broker.worker.running", running)
    return worker, group, gate, made


async def test_a_fresh_slot_loads_after_the_listener_returns_and_a_revocation_waits_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka sends no heartbeat while a rebalance listener runs: the listener returns before a fresh slot's
    producer has started, with its partition paused; the load then installs the slot and resumes the partition.
    A revocation that comes meanwhile waits for the load, then parks the slot like any other."""
    worker, group, gate, made = _loading_worker(monkeypatch)
    await asyncio.wait_for(worker._acquire([TP]), 1)  # returns while the producer still waits
    assert group.calls == [("pause", (TP,))] and TP not in worker._owned and not worker.ready
    revoking = asyncio.create_task(worker._release([TP]))
    await settle()
    assert not revoking.done()  # the revocation waits for the load under way
    gate.set()
    await asyncio.wait_for(revoking, 1)
    assert group.calls == [("pause", (TP,)), ("committed", (TP,)), ("resume", (TP,))]
    assert TP in worker._parked and worker._parked[TP].producer is made[0] and not made[0].stopped
    assert worker._failure is None


async def test_a_fresh_slot_starts_at_the_offset_committed_once_its_producer_has_fenced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka fetched the positions when the assignment came, before the producers fenced the previous owner:
    a commit of that owner's not visible yet then (its markers written after Kafka answered) left the new owner
    reading the batch again. The offsets are asked for again once every producer has started, and the partitions
    start there: at the settled offset, or from offset 0 when none is committed (not "the beginning", which is past
    whatever retention deleted: from 0, those records meet the gap check)."""
    worker, group, gate, _ = _loading_worker(monkeypatch)
    tp1 = TopicPartition(TP.topic, 1)
    group.offsets = {TP: 5}  # what aiokafka saw at the assignment

    async def read_state(consumer: Any, slots: list[int], committed: Any) -> dict[int, Any]:
        return {slot: (ChainHead(seq=3), ReplayWindow(7)) for slot in slots}  # blocks there: not an empty slot

    monkeypatch.setattr(worker, "_read_state", read_state)
    await worker._acquire([TP, tp1])
    await settle()
    assert not [c for c in group.calls if c[0] == "committed"]  # nothing asked while the producers fence
    group.offsets = {TP: 9}  # the fenced owner's last commit, settled by the fencing
    gate.set()
    await worker._loaded()
    assert worker._failure is None and set(worker._owned) == {TP, tp1}
    assert group.positions == {TP: 9, tp1: 0}
    resumed = group.calls.index(("resume", (TP, tp1)))
    assert all(group.calls.index(("committed", (tp,))) < resumed for tp in (TP, tp1))


async def test_a_fresh_slot_starts_where_its_audit_head_stands_not_at_the_group_offset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The offsets are not in the slot's transactions: its last audit block names the records it took, and the
    group's committed offset trails it. The slot starts after its head's records (the group's offset is only
    checked against it), drops anything fetched before that, and commits its position at the revocation."""
    worker, group, gate, _ = _loading_worker(monkeypatch)
    head = {"seq": 6, "hash": "h", "kind": "BLOCK", "at": "2026-06-01T00:00:00Z", "entries": [
        {"kind": "ALERT", "ingress": f"{TP.topic}:0:10", "ingress_ms": 1_780_271_000_000},
        {"kind": "ALERT", "ingress": f"{TP.topic}:0:11", "ingress_ms": 1_780_271_000_001}]}

    async def read_state(consumer: Any, slots: list[int], committed: Any) -> dict[int, Any]:
        return {slot: (ChainHead.after(head), ReplayWindow(7)) for slot in slots}

    monkeypatch.setattr(worker, "_read_state", read_state)
    group.offsets = {TP: 9}  # committed by the previous owner before its last two records' commit
    gate.set()
    await worker._acquire([TP])
    await worker._loaded()
    state = worker._owned[TP]
    assert worker._failure is None and group.positions == {TP: 12} and state.next_offset == 12
    worker._dispatch(group, {TP: [SimpleNamespace(offset=o) for o in (10, 11)]})  # type: ignore[arg-type]
    assert not state.queue  # aiokafka's own position (the group's, older) brings nothing taken twice
    await worker._release([TP])
    assert group.commits == [{TP: 12}]


async def test_a_kept_slot_starts_where_it_last_committed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot parked by a revocation and assigned back starts at the offset after its last commit, which it knows,
    not at what aiokafka fetched for the new assignment (which may predate that commit's markers)."""
    worker, group, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    await worker._acquire([TP])
    await worker._loaded()
    worker._owned[TP].next_offset = worker._owned[TP].done_to = 42  # committed up to here since the load
    await worker._release([TP])
    await worker._acquire([TP])
    assert worker._owned[TP].next_offset == 42 and group.positions[TP] == 42
    assert group.commits == [{TP: 42}]  # its position, to the group, at the revocation


async def test_a_kept_slot_starts_where_its_last_transaction_left_it_not_past_a_dropped_gap_mark(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A gap's mark moves ``next_offset`` past the gap as it is queued (``_accept_gap``); a revocation that drops
    the mark before its transaction must not leave the kept slot reading on past records no block names: it
    starts where its last commit left it, and meets the gap again."""
    worker, group, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    await worker._acquire([TP])
    await worker._loaded()
    state = worker._owned[TP]
    state.done_to, state.next_offset = 5, 9  # committed up to 5; a mark for records 5-8 queued, then dropped
    await worker._release([TP])
    await worker._acquire([TP])
    assert worker._owned[TP].next_offset == 5 and group.positions[TP] == 5


async def test_an_empty_slot_with_committed_offsets_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit partition that never held a record (its log starts at 0) under a committed ingress offset: the
    slot's history is in another slot's partition. The load fails with a configuration error naming both, and
    installs nothing. (One whose chain retention deleted, its log starting past 0, loads: the integration test.)"""
    worker, group, gate, made = _loading_worker(monkeypatch)
    group.offsets = {TP: 12}
    gate.set()
    await worker._acquire([TP])
    await worker._loaded()
    assert isinstance(worker._failure, ConfigError) and "committed offset 12" in str(worker._failure)
    assert not worker._owned and all(p.stopped for p in made)


async def test_a_load_that_fails_installs_nothing_and_stops_what_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Producers started, then the audit read back fails: no slot is owned, the producers are stopped, the partition
    stays paused, and the failure goes to the main loop (which starts the worker again)."""
    worker, group, gate, made = _loading_worker(monkeypatch, fail_reading=True)
    gate.set()
    await worker._acquire([TP])
    await worker._loaded()
    assert not worker._owned and made and all(p.stopped for p in made)
    assert group.calls == [("pause", (TP,)), ("committed", (TP,))]
    assert isinstance(worker._failure, KafkaUnavailableError) and not worker.ready


async def test_a_load_cancelled_while_a_producer_still_fences_stops_those_already_started(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot's producer has started, the other's still fences, when the load is cancelled (its bound, or this
    worker's name found taken): the started one is stopped, not left open, and nothing is owned."""
    worker, _, _, made = _loading_worker(monkeypatch)
    one_started = asyncio.Event()

    async def producer(slot: int) -> StoppableProducer:
        if slot == 1:
            await asyncio.Event().wait()  # fencing a previous owner that does not answer
        made.append(StoppableProducer())
        one_started.set()
        return made[-1]

    monkeypatch.setattr(worker, "_producer", producer)
    await worker._acquire([TP, TopicPartition(TP.topic, 1)])
    await asyncio.wait_for(one_started.wait(), 1)
    assert worker._loading is not None
    worker._loading.cancel()
    await asyncio.gather(worker._loading, return_exceptions=True)
    assert len(made) == 1 and made[0].stopped and not worker._owned


async def test_a_load_that_ends_after_the_worker_began_stopping_installs_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is ending (``_closing``) when the load completes: its slots are not installed and its producers stop;
    an assignment that completes while the consumer stops loads nothing at all."""
    worker, group, gate, made = _loading_worker(monkeypatch)
    await worker._acquire([TP])
    worker._closing = True
    gate.set()
    await worker._loaded()
    assert not worker._owned and made and all(p.stopped for p in made) and worker._failure is None
    await worker._acquire([TopicPartition(TP.topic, 1)])
    assert worker._loading is None and len(made) == 1 and group.calls == [("pause", (TP,)), ("committed", (TP,))]


async def test_a_load_that_hangs_fails_as_retriable_after_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heartbeats go on while a worker loads, so the group never takes back slots whose load hung: past
    ``load_timeout_s`` the load fails as a retriable Kafka error and the worker starts again."""
    worker, _, _, _ = _loading_worker(monkeypatch)
    object.__setattr__(worker.config, "load_timeout_s", 0.05)
    await worker._acquire([TP])  # the gate never opens: the producer hangs
    await worker._loaded()
    assert isinstance(worker._failure, KafkaUnavailableError) and worker._failure.retriable
    assert "longer than 0.05s" in str(worker._failure) and not worker._owned


def _quiet_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(warning=lambda event, **kw: lines.append((event, kw)),
                                                              info=lambda *a, **k: None))
    return lines


def _restarting(worker: BrokerWorker, monkeypatch: pytest.MonkeyPatch,
                run_once: Callable[[list[str], float | None], Awaitable[None]]) -> list[tuple[str, dict[str, Any]]]:
    """``worker.run``'s restart loop over ``run_once`` (each run), with no backoff wait; the warnings it logs."""
    async def no_wait(seconds: float) -> None: ...

    monkeypatch.setattr(worker, "_run_once", run_once)
    monkeypatch.setattr("broker.worker.asyncio.sleep", no_wait)
    return _quiet_log(monkeypatch)


def _look(worker: BrokerWorker, monkeypatch: pytest.MonkeyPatch, at: float) -> None:
    """One look of the watch at ``at`` on a fake clock (the wall clock 1e6 s ahead of it)."""
    with monkeypatch.context() as fake:
        fake.setattr("broker.worker.time.monotonic", lambda: at)
        fake.setattr("broker.worker.time.time", lambda: 1_000_000.0 + at)
        worker._watch(SimpleNamespace())  # type: ignore[arg-type]


async def test_an_idle_slot_taken_back_later_is_not_warned_of_as_stalled(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle slot, caught up, its last batch an hour ago, moves to another worker in a rebalance and comes back
    later: its stall clock starts at its taking. Before Kafka answers the new assignment's first fetch it is not
    "stalled 3600 s" (a reload that kept the slot's old progress time said so at once)."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    lines = _quiet_log(monkeypatch)
    views: dict[Any, FetchView] = {}
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: views.get(tp))
    await worker._acquire([TP])
    await worker._loaded()
    t0 = worker._owned[TP].taken_at
    worker._owned[TP].progress_at = t0 - 3600  # its last batch an hour ago; nothing arrived since
    worker._stall = StallWatch(10.0, since=t0 - 3600)
    views[TP] = FetchView(100, 100, 1_000_000.0 + t0)  # answered now, caught up: idle
    _look(worker, monkeypatch, t0)
    worker._joining = True  # a rebalance: the slot goes to another worker
    await worker._retire_all()
    await worker._acquire([TopicPartition(TP.topic, 1)])
    await worker._loaded()
    _look(worker, monkeypatch, t0 + 1)  # joined without it
    worker._joining = True  # later, given back
    await worker._retire_all()
    await worker._acquire([TP])
    await worker._loaded()
    views[TP] = FetchView(None, None, None)  # no fetch of the new assignment answered yet
    _look(worker, monkeypatch, worker._owned[TP].taken_at)
    assert [kw for event, kw in lines if event == "worker stalled"] == []


async def test_an_idle_slot_reloaded_by_a_slow_restart_is_not_warned_of_as_stalled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle, caught-up slot; the worker restarts (an error elsewhere) and its backoff, join and load take longer
    than ``stall_warning_s``: the reloaded slot's clock starts again, so the first look before Kafka answers the new
    consumer's fetch does not warn (a clock kept across the restart counted the restart as the slot's stall)."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    lines = _quiet_log(monkeypatch)
    views: dict[Any, FetchView] = {}
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: views.get(tp))
    await worker._acquire([TP])
    await worker._loaded()
    state = worker._owned[TP]
    t0 = state.progress_at = state.taken_at = state.taken_at - 41  # taken 41 s ago (the reload comes at "now")
    worker._stall = StallWatch(10.0, since=t0)
    views[TP] = FetchView(100, 100, 1_000_000.0 + t0 + 1)
    _look(worker, monkeypatch, t0 + 1)
    worker._joining = True  # the restart: every slot retired
    await worker._retire_all()
    _look(worker, monkeypatch, t0 + 2)  # joining again, the slot not shown
    await worker._acquire([TP])  # the backoff, join and load took 39 s
    await worker._loaded()
    views[TP] = FetchView(None, None, None)
    _look(worker, monkeypatch, worker._owned[TP].taken_at + 1)
    assert [kw for event, kw in lines if event == "worker stalled"] == []


async def test_a_slot_taken_back_counts_its_lag_from_its_taking(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot idle for an hour, retired and loaded again, with one record appended since: its lag in seconds is
    counted from its taking, not from its last batch an hour ago."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    worker.metrics = Metrics()
    await worker._acquire([TP])
    await worker._loaded()
    worker._owned[TP].progress_at -= 3600
    worker._joining = True
    await worker._retire_all()
    await worker._acquire([TP])
    await worker._loaded()
    state = worker._owned[TP]
    at = state.next_offset or 0
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: FetchView(at, at + 1, None))
    _look(worker, monkeypatch, state.taken_at + 2.0)
    lag_s = worker.metrics.value("puente_consumer_lag_seconds", topic=TP.topic, partition="0")
    # about 2 s (the look's clock is fake, the record's wall time real): counted from the batch an hour ago it was
    # 3600 s; any bound far from both holds on a loaded machine
    assert 0.0 <= lag_s < 600.0


async def test_load_failures_count_for_the_worker_not_the_fresh_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slot 0 commits a batch each run; each run then ends with a load that fails (an audit read, transiently): the
    failure is the worker's, whose count each run's batch starts again, so the worker carries on. Charged to the
    fresh slots (after a restart, every slot), it added up on slot 1, which has no traffic and never commits."""
    worker, _, gate, _ = _loading_worker(monkeypatch, fail_reading=True)
    gate.set()
    tp1 = TopicPartition(TP.topic, 1)
    runs: list[int] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        worker._failure, worker._failed_slots = None, ()
        runs.append(0)
        if len(runs) > 8:
            return
        worker._progressed.add(0)
        worker._joining = True
        await worker._acquire([TP, tp1])
        await worker._loaded()
        assert worker._failure is not None
        raise worker._failure

    lines = _restarting(worker, monkeypatch, run_once)
    await worker.run([], max_restarts=5)
    assert len(runs) == 9
    assert [(kw["attempt"], kw.get("slots")) for _, kw in lines] == [(1, None)] * 8


async def test_a_run_that_stayed_joined_long_enough_starts_the_workers_count_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker with no traffic commits no batch: its failures are in a row only when they come within
    ``HEALTHY_RUN_S`` of a join. Runs that stayed joined that long each count as the first; then three that failed
    sooner are in a row, and past max_restarts the worker gives up."""
    worker = _worker()
    runs: list[int] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        worker._failure, worker._failed_slots = None, ()
        runs.append(0)
        worker._joining, worker._joined_at = False, 0.0  # joined at 0 on a fake clock, slots loaded
        with monkeypatch.context() as fake:
            fake.setattr("broker.worker.time.monotonic",
                         lambda: HEALTHY_RUN_S if len(runs) <= 3 else HEALTHY_RUN_S - 1)
            worker._fail(KafkaUnavailableError("the group coordinator went away"))
        raise worker._failure

    lines = _restarting(worker, monkeypatch, run_once)
    with pytest.raises(KafkaUnavailableError, match="coordinator"):
        await worker.run([], max_restarts=2)
    assert len(runs) == 5 and [kw["attempt"] for _, kw in lines] == [1, 1, 1, 2]


def _heads(worker: BrokerWorker, resume: dict[int, int]) -> None:
    """The loads of ``_loading_worker``'s worker read each slot's head at ``resume`` (a block there, its records
    taken up to it), with no ingress topic made anew."""
    async def read_state(consumer: Any, slots: list[int], committed: Any) -> dict[int, Any]:
        return {slot: (ChainHead(seq=1, prev="x" * 64, resume=resume.get(slot), resume_by_ms=0), ReplayWindow(7))
                for slot in slots}

    async def not_remade(*args: Any) -> dict[Any, Any]:
        return {}  # the ingress topics as they were (no topic made anew under the heads)

    worker._read_state = read_state  # type: ignore[method-assign]
    worker._remade_ingress = not_remade  # type: ignore[method-assign]


async def _take(worker: BrokerWorker, tps: list[TopicPartition]) -> None:
    """A rebalance: every slot retired, ``tps`` loaded."""
    worker._joining = True
    await worker._retire_all()
    await worker._acquire(tps)
    await worker._loaded()


async def test_a_slot_away_and_back_keeps_its_count_until_its_head_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot's failures in a row are counted across its leaving the worker: handed to another worker and back with
    its head where it stood at its last failure here, it goes on counting (dropped at each move, a slot failing
    wherever it runs restarted both workers for ever); back with its head moved on, it progressed elsewhere, and
    its count starts again. An ingress batch it commits starts it again too."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    tp1 = TopicPartition(TP.topic, 1)
    restarts = worker._restarts = Restarts(5)
    _heads(worker, {1: 40})
    await _take(worker, [TP, tp1])
    assert worker._owned[tp1].done_to == 40
    assert [restarts.failed({0}, [1], stood={1: 40}) for _ in range(3)] == [1, 2, 3]
    await _take(worker, [TP])  # a rebalance hands it to another worker
    await _take(worker, [TP, tp1])  # back, its head unmoved: the other failed on it too
    assert restarts.failed({0}, [1], stood={1: 40}) == 4
    _heads(worker, {1: 41})
    await _take(worker, [TP])
    await _take(worker, [TP, tp1])  # back, one record further: the other committed a batch of it
    assert restarts.failed({0}, [1], stood={1: 41}) == 1
    assert restarts.failed({1}, [0], stood={0: 0}) == 1 and 1 not in restarts.slots


async def test_a_slot_failing_wherever_it_runs_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dynamic group of two: every other join hands slot 1 to the peer (which fails on it too) and back; slot 1
    fails each run it is here, slot 0 commits a batch each run. Slot 1's count goes on across its moves, its head
    never moving, and past max_restarts the worker gives up (its count dropped at each move, it restarted for ever,
    each line saying attempt 1)."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    _heads(worker, {0: 7, 1: 40})
    tp1 = TopicPartition(TP.topic, 1)
    runs: list[int] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        worker._failure, worker._failed_slots, worker._failed_at = None, (), {}
        runs.append(0)
        if len(runs) > 40:
            return
        given = [TP, tp1] if len(runs) % 2 else [TP]
        await _take(worker, given)
        worker._progressed.add(0)
        if tp1 in given:
            worker._fail(KafkaUnavailableError("slot 1: its transaction failed (retriable)"), [1])
        else:  # the peer's leave and rejoin fences slot 0's transaction here
            worker._fail(KafkaUnavailableError("slot 0 fenced in the rebalance"), [0])
        await worker._retire_all()
        raise worker._failure

    lines = _restarting(worker, monkeypatch, run_once)
    with pytest.raises(KafkaUnavailableError, match="slot 1"):
        await worker.run([], max_restarts=5)
    assert len(runs) == 11
    assert [kw["attempt"] for _, kw in lines if kw.get("slots") == [1]] == [1, 2, 3, 4, 5]


async def test_a_slot_paused_for_backpressure_shows_no_fetch_age(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka fetches nothing for a paused partition: a slot paused because a full batch is queued shows a fetch
    age of 0, and once its loop takes the batch and resumes it, counts from then, not from the last answer before
    the pause (which read as a slot Kafka had stopped answering)."""
    worker = _worker()
    worker.metrics = Metrics()
    producer = HeldProducer()
    state = _slot(worker, TP, 0, producer)
    state.taken_at = 0.0
    # The worker's clock, fake throughout (the event loop's stays real): the loop's resumption reads 1000, after the
    # last answer at 400, on any host (the real clock reads under 400 on a machine booted minutes ago).
    clock = SimpleNamespace(monotonic=lambda: 1000.0, time=lambda: 1_000_000.0 + 1000.0)
    monkeypatch.setattr("broker.worker.time", clock)
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: FetchView(10, 30, 1_000_000.0 + 400))
    age = worker.metrics.value
    worker._dispatch(Consumer(), {TP: _msgs(0, 10)})  # type: ignore[arg-type]  # a full batch: paused
    assert state.paused
    _look(worker, monkeypatch, 1000.0)  # last answered 600 s ago, before the pause
    assert age("puente_consumer_fetch_age_seconds", topic=TP.topic, partition="0") == 0.0
    for _ in range(500):  # the loop takes the batch and resumes the partition while its transaction commits
        if not state.paused:
            break
        await asyncio.sleep(0.01)
    assert not state.paused and state.resumed_at == 1000.0
    _look(worker, monkeypatch, 1003.0)
    assert age("puente_consumer_fetch_age_seconds", topic=TP.topic, partition="0") == pytest.approx(3.0)
    producer.gate.set()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]


def _worker_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The worker module's clock, fake (the event loop's stays real): the returned list's one value, in seconds."""
    clock = [1000.0]
    monkeypatch.setattr("broker.worker.time", SimpleNamespace(monotonic=lambda: clock[0],
                                                              time=lambda: 1_000_000.0 + clock[0]))
    return clock


async def _rejoining_runs(monkeypatch: pytest.MonkeyPatch, joined_s: list[float]) -> list[int]:
    """Each run of a worker (its loads on the fake clock): joined and loaded for each of ``joined_s`` in turn, each
    stretch ended by a revocation (``_release``), then a failure of the worker's own while it joins again. Returns
    the runs made; the 9th ends the restarts (the run returns)."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    clock = _worker_clock(monkeypatch)
    runs: list[int] = []

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        worker._failure, worker._failed_slots = None, ()
        runs.append(0)
        if len(runs) > 8:
            return
        for stretch_s in joined_s:
            await worker._acquire([TP])
            await worker._loaded()
            clock[0] += stretch_s
            await worker._release([TP])  # a rebalance: the stretch ends here
        worker._fail(KafkaUnavailableError("the group coordinator went away"))  # while joining again
        await worker._retire_all()
        raise worker._failure

    _restarting(worker, monkeypatch, run_once)
    with contextlib.suppress(KafkaUnavailableError):
        await worker.run([], max_restarts=2)
    return runs


async def test_a_stretch_joined_ends_at_a_revocation_and_counts_for_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run joined and loaded for ``HEALTHY_RUN_S``, then revoked, that fails while joining again: its stretch,
    ended by the revocation (``_release``), makes the run a healthy one, so the worker never counts two in a row."""
    assert len(await _rejoining_runs(monkeypatch, [HEALTHY_RUN_S])) == 9
    assert len(await _rejoining_runs(monkeypatch, [HEALTHY_RUN_S - 1])) == 3  # in a row: past max_restarts at the 3rd


async def test_a_runs_stretches_between_rebalances_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group that rebalances more often than ``HEALTHY_RUN_S`` (every 40 s): a run joined 40 s twice stayed joined
    80 s, healthy, though no single stretch reached 60 s (the longest stretch alone made hours-apart errors add up)."""
    assert len(await _rejoining_runs(monkeypatch, [HEALTHY_RUN_S * 2 / 3] * 2)) == 9
    assert len(await _rejoining_runs(monkeypatch, [HEALTHY_RUN_S / 4] * 3)) == 3  # 45 s in all: in a row


class _FailingGroup:
    """A group consumer for ``_run_once``: its first fetch joins (no slot) and then fails, ``HEALTHY_RUN_S`` later on
    the worker's fake clock, with an error of the consumer's own (recorded by no ``_fail``); with ``stop``, it stops the
    worker instead (the run returns)."""

    def __init__(self, worker: BrokerWorker, clock: list[float], joined_s: float, stop: bool) -> None:
        self.worker, self.clock, self.joined_s, self.stop = worker, clock, joined_s, stop

    async def topics(self) -> set[str]:
        return set()

    def subscribe(self, topics: list[str], listener: Any) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return set()

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if self.stop:
            self.worker._stopping.set()
            return {}
        await self.worker._acquire([])  # joined, nothing to load
        self.clock[0] += self.joined_s
        raise KafkaUnavailableError("the consumer's fetch failed")


async def _consumer_failing_runs(monkeypatch: pytest.MonkeyPatch, joined_s: float) -> list[int]:
    worker = _worker()
    clock = _worker_clock(monkeypatch)
    runs: list[int] = []

    def make(conn: Any, name: str, *topics: str, **options: Any) -> _FailingGroup:
        runs.append(0)
        return _FailingGroup(worker, clock, joined_s, stop=len(runs) > 8)

    async def started(client: Any, conn: Any, what: str) -> Any:
        return client

    async def idle(*args: Any) -> None:
        await asyncio.Event().wait()

    async def nothing(*args: Any) -> None: ...

    monkeypatch.setattr("broker.worker.consumer", make)
    monkeypatch.setattr("broker.worker.start", started)
    monkeypatch.setattr("broker.worker.stop_client", nothing)
    monkeypatch.setattr("broker.worker.asyncio.sleep", nothing)
    monkeypatch.setattr(worker, "_watch_every", idle)
    monkeypatch.setattr(worker, "_commit_every", idle)
    monkeypatch.setattr(worker, "_fetching", lambda *args: None)
    _quiet_log(monkeypatch)
    with contextlib.suppress(KafkaUnavailableError):
        await worker.run([], max_restarts=2)
    return runs


async def test_a_run_whose_consumer_fails_after_a_healthy_stretch_counts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer's own error (a fetch failing) is recorded by no ``_fail``: the stretch joined before it ends at the
    run's end (``_run_once``'s ``finally``), so a run joined for ``HEALTHY_RUN_S`` first is not in a row."""
    assert len(await _consumer_failing_runs(monkeypatch, HEALTHY_RUN_S)) == 9
    assert len(await _consumer_failing_runs(monkeypatch, HEALTHY_RUN_S - 1)) == 3


async def test_a_slot_whose_head_moved_while_away_starts_its_count_again_through_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through ``run`` and the real ``_fail``: slot 1 fails three runs at head 40 (each time taken away and back),
    then comes back at 41, another worker having committed a batch of it meanwhile: its count starts again (1, 2),
    where a count never told where the slot stood (``_failed_at`` not passed on) would go on to 4 and 5."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    gate.set()
    tp1 = TopicPartition(TP.topic, 1)
    runs: list[int] = []
    heads = [40, 40, 40, 41, 41]

    async def run_once(topics: list[str], idle_exit_s: float | None) -> None:
        worker._failure, worker._failed_slots, worker._failed_at = None, (), {}
        runs.append(0)
        if len(runs) > len(heads):
            return
        _heads(worker, {1: heads[len(runs) - 1]})
        await _take(worker, [TP])  # away: a peer has slot 1
        await _take(worker, [TP, tp1])  # back
        worker._progressed.add(0)  # slot 0 commits a batch each run
        worker._fail(KafkaUnavailableError("slot 1 failed"), [1])
        await worker._retire_all()
        raise worker._failure

    lines = _restarting(worker, monkeypatch, run_once)
    await worker.run([], max_restarts=5)
    assert [kw["attempt"] for _, kw in lines] == [1, 2, 3, 1, 2]
