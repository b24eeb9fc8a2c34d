"""A transactional producer fenced while its transaction is built comes out as ProducerFenced, never as aiokafka's
IllegalOperation.

aiokafka's sender meets the fence in the background, marks the producer FATAL and stops; the transaction learns of it
at its next send (IllegalOperation, "not in transaction": a plain Exception) and leaves without aborting. A worker did
not restart on that, and stopped both its workers with "internal error (IllegalOperation)", exit 70, for a slot another
worker had simply taken. ``FencedMidway`` does what aiokafka's producer does; the integration test fences a real one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import IllegalOperation, ProducerFenced
from aiokafka.producer.producer import TransactionContext
from worker_fakes import _Batch

from broker.kafka import KafkaConnection, transaction, translate
from broker.pipeline import Outcome
from broker.worker import GapMark
from puente.errors import KeyUnusable
from tests.unit.broker.test_worker_lifecycle_loss import _worker
from tests.unit.broker.test_worker_settle import _slot


class _Manager:
    """aiokafka's transaction manager, as far as a fence touches it."""

    def __init__(self) -> None:
        self.fatal = False
        self._transaction_waiter: asyncio.Future[None] | None = None

    def is_fatal_error(self) -> bool:
        return self.fatal


class FencedMidway:
    """aiokafka's transactional producer, fenced by another owner of its transactional id once its first batch
    is handed over: its sender dies on ProducerFenced and marks it FATAL, so every later send, offsets commit or
    commit is refused, and leaving the transaction skips the abort (aiokafka's own ``TransactionContext``)."""

    def __init__(self) -> None:
        self._txn_manager = _Manager()
        self.aborted = False

    def transaction(self) -> TransactionContext:
        return TransactionContext(self)

    async def begin_transaction(self) -> None:
        pass

    async def abort_transaction(self) -> None:
        self.aborted = True

    async def commit_transaction(self) -> None:
        self._refuse()

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        self._refuse()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter.set_exception(ProducerFenced())
        self._txn_manager._transaction_waiter, self._txn_manager.fatal = waiter, True  # the sender, meanwhile
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        return delivered  # never delivered: the sender is gone

    async def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: str) -> None:
        self._refuse()

    def _refuse(self) -> None:
        if self._txn_manager.fatal:
            raise IllegalOperation("Can't send messages while not in transaction")


def test_a_fence_met_while_a_transaction_is_built_comes_out_as_producer_fenced() -> None:
    """The send after the fence fails with IllegalOperation; the transaction gives the error that broke the
    producer, which Kafka's error mapping marks as mended by a restart."""
    made = FencedMidway()

    async def go() -> None:
        async with transaction(made):  # type: ignore[arg-type]
            await made.send_batch(made.create_batch(), "t", partition=0)
            await made.send_batch(made.create_batch(), "t", partition=1)

    with pytest.raises(ProducerFenced) as raised:
        asyncio.run(go())
    assert isinstance(raised.value.__cause__, IllegalOperation)
    assert translate(raised.value, KafkaConnection(bootstrap="x:1"), "routing alerts").retriable


def test_an_error_of_puentes_own_is_kept_and_a_producer_not_broken_is_aborted() -> None:
    """Only a client's failure is replaced: Puente's own error raised in the block comes out as it is, even from a
    broken producer; and a producer that can still write has its transaction aborted, its error kept."""
    broken = FencedMidway()

    async def refuse_key() -> None:
        async with transaction(broken):  # type: ignore[arg-type]
            await broken.send_batch(broken.create_batch(), "t", partition=0)
            raise KeyUnusable("the broker's signing key stopped loading")

    with pytest.raises(KeyUnusable):
        asyncio.run(refuse_key())

    dead = FencedMidway()

    async def bug() -> None:
        async with transaction(dead):  # type: ignore[arg-type]
            await dead.send_batch(dead.create_batch(), "t", partition=0)
            raise KeyError("a bug of Puente's own code, met while the producer happens to be dead")

    with pytest.raises(KeyError):  # never taken for the fence, on which the worker would restart
        asyncio.run(bug())

    whole = FencedMidway()

    async def fail() -> None:
        async with transaction(whole):  # type: ignore[arg-type]
            raise IllegalOperation("a bug of its own")

    with pytest.raises(IllegalOperation):
        asyncio.run(fail())
    assert whole.aborted


def test_a_slots_transaction_fenced_midway_fails_with_producer_fenced() -> None:
    """A slot's transaction (here a gap's mark: its block, then its offsets) on a producer fenced after the block
    is handed over fails with ProducerFenced, which the worker restarts on; before, with IllegalOperation, which
    stopped it as an internal error."""
    worker = _worker()
    state = _slot(0)
    state.producer = FencedMidway()  # type: ignore[assignment]
    entry = {"kind": "GAP", "reason": "deleted", "from_offset": 0, "next_offset": 5, "skipped": 5,
             "ingress": "t.ingress.SNM:0:4", "at": "2026-01-01T00:00:00Z"}
    mark = GapMark(4, 0, 5, entry)

    with pytest.raises(ProducerFenced):
        asyncio.run(worker._transaction(state, [mark], [Outcome(entry=entry)]))
