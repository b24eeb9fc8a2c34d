"""A slot handed over or retired waits for its transaction in flight, but not for ever: aiokafka's commit waits
without a bound, and a producer fenced mid-commit was seen never to hear back, holding the rebalance so that the
worker neither stopped nor went on."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from worker_fakes import HeldProducer

import broker.worker as worker_module
from broker.audit import ChainWriter
from broker.replay import ReplayWindow
from broker.worker import SlotState
from puente.errors import KafkaUnavailableError
from tests.unit.broker.test_worker_lifecycle_loss import _worker


def test_a_transaction_that_never_ends_is_given_up_and_the_worker_starts_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``SETTLE_WAIT_S`` the slot's loop is cancelled, the worker's failure names the slot, and settling
    returns: the revocation goes on, and the main loop starts the worker again."""
    monkeypatch.setattr(worker_module, "SETTLE_WAIT_S", 0.2)
    worker = _worker()
    tp = TopicPartition("t.ingress.SNM", 1)
    state = SlotState(tp, 1, HeldProducer(), ChainWriter("t.audit.decisions", 1), ReplayWindow(7))  # type: ignore[arg-type]

    async def settle() -> bool:
        state.task = asyncio.create_task(asyncio.Event().wait())  # a commit that never hears back
        await asyncio.wait_for(worker._settle(state), 5)
        return state.task.cancelled()

    assert asyncio.run(settle())
    assert isinstance(worker._failure, KafkaUnavailableError)
    assert "slot 1 (t.ingress.SNM[1])" in str(worker._failure) and "did not end within 0.2s" in str(worker._failure)


def test_a_transaction_that_ends_in_time_is_waited_for_and_nothing_is_recorded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "SETTLE_WAIT_S", 2.0)
    worker = _worker()
    tp = TopicPartition("t.ingress.SNM", 1)
    state = SlotState(tp, 1, HeldProducer(), ChainWriter("t.audit.decisions", 1), ReplayWindow(7))  # type: ignore[arg-type]

    async def settle() -> bool:
        state.task = asyncio.create_task(asyncio.sleep(0.1))
        await worker._settle(state)
        return state.task.done() and not state.task.cancelled()

    assert asyncio.run(settle())
    assert worker._failure is None
