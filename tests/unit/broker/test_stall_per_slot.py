"""Each slot has its own stall clock: one slot's commits never hide another slot that waits (a hung transaction,
records taken and not committed, records behind that Kafka does not hand over)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from worker_fakes import HeldProducer, Pipeline, settle

from broker.audit import ChainWriter
from broker.kafka import FetchView, KafkaConnection
from broker.replay import ReplayWindow
from broker.stall import SlotView, StallNote, StallWatch, WorkerView
from broker.topology import Slots, TopicNames
from broker.worker import BrokerWorker, SlotState, WorkerConfig

TOPIC = "t.ingress.SENAN"


def _busy_beside(hung: SlotView, t: float) -> WorkerView:
    """Slot 0 committed at ``t`` (with records still behind); ``hung`` has not committed since 0."""
    return WorkerView(joining=False, slots=[SlotView(0, committed_at=t, behind=500, last_fetch_at=t), hung])


def _warnings(watch: StallWatch, hung: SlotView, until: int) -> dict[int, list[StallNote]]:
    return {t: notes for t in range(1, until + 1) if (notes := watch.observe(float(t), _busy_beside(hung, float(t))))}


def test_a_hung_transaction_is_reported_while_another_slot_commits_every_second() -> None:
    """Slot 3's transaction open 600 s beside slot 0 committing each second: a warning naming slot 3 at 10 s, then
    one each interval (never one per look), and none for slot 0."""
    hung = SlotView(3, committed_at=0.0, txn_began=0.0, taken=True, behind=500, last_fetch_at=0.0)
    warned = _warnings(StallWatch(10.0, since=0.0), hung, 600)
    assert sorted(warned) == list(range(10, 601, 10))
    assert warned[10] == [StallNote("the commit of slot 3's transaction (open 10s)", 10.0, slot=3)]
    assert all(n.slot == 3 and not n.recovered for notes in warned.values() for n in notes)


@pytest.mark.parametrize(("hung", "words"), [
    (SlotView(2, committed_at=0.0, taken=True, queued=40, behind=40, last_fetch_at=0.0),
     "slot 2's next transaction to begin (40 records queued;"),
    (SlotView(5, committed_at=0.0, behind=40, last_fetch_at=None),
     "Kafka, unreachable: no fetch answered with 40 records to process in slot 5"),
])
def test_a_slot_with_records_and_no_commit_is_reported_whatever_the_others_do(hung: SlotView, words: str) -> None:
    """Records taken but no transaction begun, or records behind that no fetch brings: that slot stalls, named."""
    warned = _warnings(StallWatch(10.0, since=0.0), hung, 25)
    assert sorted(warned) == [10, 20]
    assert warned[10][0].slot == hung.slot and warned[10][0].waiting.startswith(words)


def test_the_stalled_slot_recovers_once_when_it_commits_or_is_no_longer_owned() -> None:
    """A commit of the stalled slot ends its stall with one note; a slot revoked while stalled ends its stall too."""
    watch = StallWatch(10.0, since=0.0)
    hung = SlotView(3, committed_at=0.0, txn_began=0.0, taken=True)
    assert [n.slot for t in range(1, 12) for n in watch.observe(float(t), _busy_beside(hung, float(t)))] == [3]
    moved = SlotView(3, committed_at=11.5)
    assert watch.observe(12.0, _busy_beside(moved, 12.0)) == [
        StallNote("the commit of slot 3's transaction (open 10s)", 12.0, recovered=True, slot=3)]
    assert watch.observe(13.0, _busy_beside(moved, 13.0)) == []
    again = SlotView(3, committed_at=11.5, behind=9, last_fetch_at=None)
    assert [n.slot for t in range(14, 24) for n in watch.observe(float(t), _busy_beside(again, float(t)))] == [3]
    gone = watch.observe(24.0, WorkerView(joining=False, slots=[SlotView(0, committed_at=24.0)]))
    assert [(n.slot, n.recovered) for n in gone] == [(3, True)]
    assert watch.observe(25.0, WorkerView(joining=False, slots=[SlotView(0, committed_at=24.0)])) == []


def _msgs(first: int, count: int) -> list[Any]:
    return [SimpleNamespace(topic=TOPIC, partition=0, offset=o, key=f"SENAN:{o}".encode(), value=b"v", headers=[],
                            timestamp=1_000 + o, timestamp_type=1) for o in range(first, first + count)]


class Consumer:
    def pause(self, tp: TopicPartition) -> None: ...
    def resume(self, tp: TopicPartition) -> None: ...


async def test_the_worker_names_a_hung_slot_while_its_other_slot_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the worker's own commits and watch: slot 1's transaction hangs while slot 0 commits between each
    look; the worker logs `worker stalled` naming slot 1 once, then `worker moving again` after slot 1 commits."""
    config = WorkerConfig(KafkaConnection(bootstrap="unused:9092"), "g", Slots(("SENAN",), 2, TopicNames("t")),
                          max_batch=10)
    worker = BrokerWorker(config, Pipeline(), lambda p: b"sig")  # type: ignore[arg-type]
    worker._joining = False
    busy, hung = HeldProducer(), HeldProducer()
    busy.gate.set()
    tps = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    states = [SlotState(tp, slot, producer, ChainWriter("t.audit", slot), ReplayWindow(7))  # type: ignore[arg-type]
              for slot, (tp, producer) in enumerate(zip(tps, (busy, hung), strict=True))]
    worker._owned = dict(zip(tps, states, strict=True))
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: FetchView(position=0, end=0, answered_at=None))
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(warning=lambda event, **kw: lines.append((event, kw))))
    worker._dispatch(Consumer(), {tps[1]: _msgs(0, 2)})  # type: ignore[arg-type]
    await settle()
    assert hung.in_flight == 1
    began = time.monotonic()
    worker._stall = StallWatch(10.0, since=began)

    def look(at: float) -> None:
        with monkeypatch.context() as m:  # the clock moves for the look only: asyncio keeps the real one
            m.setattr("broker.worker.time.monotonic", lambda: began + at)
            worker._watch(SimpleNamespace())  # type: ignore[arg-type]

    for n, at in enumerate((2.0, 6.0, 11.0, 12.0, 15.0)):
        worker._dispatch(Consumer(), {tps[0]: _msgs(n * 2, 2)})  # type: ignore[arg-type]
        await asyncio.wait_for(states[0].task, 5)  # type: ignore[arg-type]
        states[0].progress_at = began + at - 0.5  # slot 0 committed since the last look
        look(at)
    assert busy.committed == [2, 4, 6, 8, 10] and hung.committed == []
    assert [(event, kw["waiting_for"]) for event, kw in lines] == [
        ("worker stalled", "the commit of slot 1's transaction (open 11s)")]
    hung.gate.set()
    await asyncio.wait_for(states[1].task, 5)  # type: ignore[arg-type]
    look(16.0)
    assert [event for event, _ in lines] == ["worker stalled", "worker moving again"]
    assert lines[1][1]["was_waiting_for"] == "the commit of slot 1's transaction (open 11s)"


def _worker_holding(slots: int) -> tuple[BrokerWorker, list[TopicPartition], list[SlotState]]:
    """A worker past joining, holding ``slots`` slots of SENAN's ingress topic."""
    config = WorkerConfig(KafkaConnection(bootstrap="unused:9092"), "g", Slots(("SENAN",), slots, TopicNames("t")),
                          max_batch=10)
    worker = BrokerWorker(config, Pipeline(), lambda p: b"sig")  # type: ignore[arg-type]
    worker._joining = False
    tps = [TopicPartition(TOPIC, n) for n in range(slots)]
    states = [SlotState(tp, n, HeldProducer(), ChainWriter("t.audit", n), ReplayWindow(7))  # type: ignore[arg-type]
              for n, tp in enumerate(tps)]
    worker._owned = dict(zip(tps, states, strict=True))
    return worker, tps, states


async def test_slots_stalled_at_once_make_one_line_per_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka out of reach stalls every slot at once: one `worker stalled` line per look names them all (the first
    few spelled out, the rest counted), and one `worker moving again` line when they move."""
    worker, _, states = _worker_holding(5)
    behind: dict[str, Any] = {"end": 7, "answered": None}
    monkeypatch.setattr("broker.worker.fetch_view",
                        lambda consumer, tp: FetchView(position=0, end=behind["end"], answered_at=behind["answered"]))
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(warning=lambda event, **kw: lines.append((event, kw))))
    began = time.monotonic()
    for state in states:
        state.next_offset, state.progress_at = 0, began
    worker._stall = StallWatch(10.0, since=began)
    for at in (11.0, 15.0, 22.0):
        with monkeypatch.context() as m:
            m.setattr("broker.worker.time.monotonic", lambda at=at: began + at)
            worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    assert [event for event, _ in lines] == ["worker stalled", "worker stalled"]
    assert lines[0][1]["slots"] == [0, 1, 2, 3, 4] and lines[0][1]["waiting_for"].endswith("; and 2 more slot(s)")
    assert lines[0][1]["waiting_for"].count("Kafka, unreachable") == 3
    behind.update(end=0, answered=time.time())  # answered again, all processed
    with monkeypatch.context() as m:
        m.setattr("broker.worker.time.monotonic", lambda: began + 23.0)
        worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    assert [event for event, _ in lines][-1] == "worker moving again" and len(lines) == 3
    assert lines[-1][1]["slots"] == [0, 1, 2, 3, 4]


async def test_the_worker_names_a_caught_up_slot_kafka_stopped_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the worker's own watch: slot 0 caught up (its partition's end, as last heard, is where it stands)
    and answered a moment ago is not named; slot 1, caught up too but last answered 30 s ago (its leader gone),
    is named as Kafka out of reach, though it shows nothing behind."""
    worker, tps, states = _worker_holding(2)
    silent_since = {tps[0]: 0.1, tps[1]: 30.0}
    monkeypatch.setattr("broker.worker.fetch_view", lambda consumer, tp: FetchView(
        position=5, end=5, answered_at=time.time() - silent_since[tp]))
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("broker.worker.log", SimpleNamespace(warning=lambda event, **kw: lines.append((event, kw))))
    began = time.monotonic()
    for state in states:
        state.next_offset, state.progress_at = 5, began
    worker._stall = StallWatch(10.0, since=began)
    for at in (1.0, 11.0):
        with monkeypatch.context() as m:
            m.setattr("broker.worker.time.monotonic", lambda at=at: began + at)
            worker._watch(SimpleNamespace())  # type: ignore[arg-type]
    assert [(event, kw["slots"]) for event, kw in lines] == [("worker stalled", [1])]
    assert lines[0][1]["waiting_for"].startswith("Kafka, unreachable: slot 1 has had no fetch answered for 3")
