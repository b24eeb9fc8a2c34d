"""Slots handed over or retired wait for their transactions in flight, but not for ever: aiokafka's commit waits
without a bound, and a producer fenced mid-commit was seen never to hear back, holding the rebalance so that the
worker neither stopped nor went on."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from aiokafka import TopicPartition
from worker_fakes import HeldProducer

from broker.audit import ChainWriter
from broker.replay import ReplayWindow
from broker.worker import BrokerWorker, SlotState
from puente.errors import KafkaUnavailableError
from tests.unit.broker.test_worker_lifecycle_loss import _worker


def _slot(partition: int) -> SlotState:
    tp = TopicPartition("t.ingress.SNM", partition)
    return SlotState(tp, partition, HeldProducer(), ChainWriter("t.audit.decisions", partition),  # type: ignore[arg-type]
                     ReplayWindow(7))


def test_transactions_that_never_end_are_given_up_together_and_the_worker_starts_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past one deadline for all of them (not one each: up to 16 can be open), every slot loop still in a
    transaction is cancelled and forgotten, the worker's failure names a slot, and settling returns: the
    revocation goes on, and the main loop starts the worker again."""
    monkeypatch.setattr(BrokerWorker, "settle_wait_s", property(lambda self: 0.3))
    waits: list[float | None] = []
    wait = asyncio.wait

    async def counted(tasks: Any, *, timeout: float | None = None) -> Any:
        waits.append(timeout)
        return await wait(tasks, timeout=timeout)

    monkeypatch.setattr(asyncio, "wait", counted)
    worker = _worker()
    states = [_slot(n) for n in range(4)]

    async def settle() -> list[bool]:
        tasks = []
        for state in states:
            state.task = asyncio.create_task(asyncio.Event().wait())  # a commit that never hears back
            tasks.append(state.task)
        await asyncio.wait_for(worker._settle(*states), 5)
        return [task.cancelled() for task in tasks]

    assert all(asyncio.run(settle())) and all(state.task is None for state in states)
    assert waits.count(0.3) == 1  # one deadline for the four, not one each
    assert isinstance(worker._failure, KafkaUnavailableError)
    assert "did not end within 0.3s of the slot being handed over" in str(worker._failure)


def test_transactions_that_end_in_time_are_waited_for_and_nothing_is_recorded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that ends within the deadline is simply waited for: no failure, its loop left to finish."""
    monkeypatch.setattr(BrokerWorker, "settle_wait_s", property(lambda self: 2.0))
    worker = _worker()
    state = _slot(1)

    async def settle() -> bool:
        state.task = asyncio.create_task(asyncio.sleep(0.1))
        await worker._settle(state)
        return state.task.done() and not state.task.cancelled()

    assert asyncio.run(settle())
    assert worker._failure is None


def test_the_deadline_is_never_shorter_than_a_request_to_kafka_may_take() -> None:
    """A commit still retrying within its request's timeout is not given up: the deadline grows with
    PUENTE_KAFKA_TIMEOUT_S."""
    worker = _worker()
    assert worker.settle_wait_s >= 40.0
    slow = dataclasses.replace(worker.config, conn=worker.config.conn.model_copy(update={"timeout_s": 120.0}))
    assert BrokerWorker(slow, worker.pipeline, lambda payload: b"s").settle_wait_s >= 130.0
