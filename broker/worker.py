"""The broker worker: a consumer group over the ingress topics, exactly-once into feeds and audit.

Exactly-once, the way it is done without KIP-447 (which aiokafka lacks): every
ingress partition is a *slot* with its own transactional producer, whose
``transactional.id`` names the slot. Whoever owns the slot after a rebalance or
a crash starts a producer with the same id, which fences the previous owner and
aborts its open transaction. Per slot and per batch, one transaction holds the
feed records, the audit records (the slot's own audit partition, so each audit
chain has one writer), the dead letters, the replay-state changelog entries and
the consumer offsets. A crash at any point leaves either all of them or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from broker.audit import ChainHead, ChainWriter
from broker.kafka_io import Record, _record, last_json_records, read_many, reader
from broker.metrics import Metrics
from broker.pipeline import Outcome, Pipeline
from broker.topics import Slots, TopicNames
from puente.errors import KafkaSetupError

log = structlog.get_logger("puente.broker")
# Seal unsigned audit tails once input has paused this long (not after every empty poll).
IDLE_CHECKPOINT_S = 1.0


@dataclass
class SlotState:
    """What a worker holds for one owned ingress partition."""

    tp: TopicPartition
    slot: int
    producer: AIOKafkaProducer
    chain: ChainWriter
    seen: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    group_id: str
    slots: Slots
    max_batch: int = 500
    checkpoint_every: int = 500
    signer_id: str = "broker"
    client_id: str = "puente-broker"


class _Both:
    """Membership in either of two sets, without copying them."""

    def __init__(self, a: set[str], b: set[str]) -> None:
        self.a, self.b = a, b

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: BrokerWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.worker._release(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.worker._acquire(assigned)


class BrokerWorker:
    """One worker of the consumer group. Several share the ingress partitions."""

    def __init__(
        self,
        config: WorkerConfig,
        pipeline: Pipeline,
        sign: Callable[[bytes], bytes],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.sign = sign
        self.metrics = metrics or Metrics()
        self.names: TopicNames = config.slots.names
        self._owned: dict[TopicPartition, SlotState] = {}
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    # ---- partition ownership ---------------------------------------------------------
    async def _acquire(self, assigned: list[TopicPartition]) -> None:
        async with self._lock:
            fresh = []
            for tp in assigned:
                if tp in self._owned:
                    continue
                slot = self.config.slots.slot(tp.topic, tp.partition)
                if slot is None:
                    raise KafkaSetupError(
                        f"{tp.topic}[{tp.partition}] is beyond the configured ingress partitions; "
                        "run `puente topics apply` with the same settings as the broker"
                    )
                fresh.append((tp, slot))
            if fresh:
                consumer = reader(self.config.bootstrap)
                await consumer.start()
                try:
                    # Producers start (and fence any previous owner) concurrently with reading the state.
                    async def state() -> tuple[Any, Any]:
                        # One consumer, so one read after the other.
                        heads = await last_json_records(
                            consumer, [TopicPartition(self.names.decisions, s) for _, s in fresh])
                        seen = await read_many(consumer, [TopicPartition(self.names.seen, s) for _, s in fresh])
                        return heads, seen

                    producers, (heads, seen) = await asyncio.gather(
                        asyncio.gather(*(self._producer(slot) for _, slot in fresh)), state())
                finally:
                    await consumer.stop()
                for (tp, slot), producer in zip(fresh, producers, strict=True):
                    head = ChainHead.after(heads[TopicPartition(self.names.decisions, slot)])
                    done = seen[TopicPartition(self.names.seen, slot)]
                    ids = {r.key.decode("utf-8", "replace") for r in done if r.key}
                    chain = ChainWriter(self.names.decisions, slot, head, self.config.checkpoint_every)
                    self._owned[tp] = SlotState(tp, slot, producer, chain, ids)
            log.info("partitions assigned", owned=sorted(f"{t.topic}[{t.partition}]" for t in self._owned))

    async def _producer(self, slot: int) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap,
            client_id=f"{self.config.client_id}-slot{slot}",
            transactional_id=f"{self.config.group_id}-slot-{slot}",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )
        await producer.start()  # init_transactions: fences a previous owner of this slot
        return producer

    async def _release(self, revoked: list[TopicPartition]) -> None:
        # Taking the lock waits for the transaction in flight, so offsets are committed
        # by their owner before another worker takes the slot.
        async with self._lock:
            for tp in revoked:
                state = self._owned.pop(tp, None)
                if state is not None:
                    await state.producer.stop()

    # ---- the loop ----------------------------------------------------------------
    def stop(self) -> None:
        """Ask the worker to finish its batch in flight and stop (what SIGTERM does)."""
        self._stopping.set()

    async def run(self, topics: list[str], *, idle_exit_s: float | None = None, max_restarts: int = 5) -> None:
        """Consume until stopped; with ``idle_exit_s``, also stop after that long without records.

        A Kafka error in a transaction (a fenced producer after a rebalance, a broker failing
        over) aborts that transaction; the worker then leaves the group, drops every slot and
        starts again from the committed offsets, reloading each slot's state from Kafka. After
        ``max_restarts`` failures in a row it gives up and raises.
        """
        failures = 0
        while True:
            try:
                await self._run_once(topics, idle_exit_s)
                return
            except KafkaError as exc:
                failures += 1
                if failures > max_restarts or self._stopping.is_set():
                    raise
                log.warning("worker restarting after a Kafka error", error=type(exc).__name__, attempt=failures)
                await asyncio.sleep(min(10.0, 0.5 * 2**failures))

    async def _run_once(self, topics: list[str], idle_exit_s: float | None) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            group_id=self.config.group_id,
            client_id=self.config.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.config.max_batch,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        self._consumer = consumer
        await consumer.start()
        idle_since = time.monotonic()
        try:
            # Know every topic's partitions before joining, or the first join sees some topics
            # without partitions and a second rebalance follows at once.
            await consumer.topics()
            consumer.subscribe(topics, listener=_Rebalance(self))
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.config.max_batch)
                if not batch:
                    if time.monotonic() - idle_since > IDLE_CHECKPOINT_S:
                        await self._checkpoint_idle()
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                idle_since = time.monotonic()
                async with self._lock:
                    # Every slot's transaction finishes (commits or aborts) before any error is raised.
                    results = await asyncio.gather(
                        *(self._transact(tp, msgs) for tp, msgs in batch.items() if tp in self._owned),
                        return_exceptions=True,
                    )
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
                self.metrics.observe_lag(consumer, {tp: msgs[-1].offset + 1 for tp, msgs in batch.items()})
        finally:
            async with self._lock:
                for state in self._owned.values():
                    with contextlib.suppress(KafkaError):
                        await state.producer.stop()
                self._owned.clear()
            with contextlib.suppress(KafkaError):
                await consumer.stop()
            self._consumer = None

    async def _checkpoint_idle(self) -> None:
        """When input pauses, seal every chain with records since its last checkpoint.

        Without this a quiet partition would keep an unsigned tail until the next busy spell.
        """
        async with self._lock:
            await asyncio.gather(*(self._checkpoint_slot(s) for s in self._owned.values()
                                   if s.chain.head.since_checkpoint))

    async def _checkpoint_slot(self, state: SlotState) -> None:
        async with state.producer.transaction():
            fut = await state.producer.send(self.names.decisions, self._checkpoint(state), partition=state.slot)
        await fut

    def _checkpoint(self, state: SlotState) -> bytes:
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return state.chain.checkpoint(self.config.signer_id, self.sign, at)

    async def _transact(self, tp: TopicPartition, msgs: list[Any]) -> None:
        state = self._owned[tp]
        producer = state.producer
        started = time.monotonic()
        outcomes: list[Outcome] = []
        pending: set[str] = set()  # ids processed in this batch: a replay within one batch is still a replay
        seen = _Both(state.seen, pending)
        async with producer.transaction():
            sends = []
            for i, msg in enumerate(msgs):
                if i % 64 == 63:
                    await asyncio.sleep(0)  # let heartbeats and other slots run during a long batch
                record: Record = _record(msg)
                outcome = self.pipeline.process(record, seen, datetime.now(UTC))
                outcomes.append(outcome)
                if outcome.seen_id:
                    pending.add(outcome.seen_id)
                sends.extend(await self._emit(state, record, outcome))
            if state.chain.checkpoint_due:
                sends.append(await producer.send(self.names.decisions, self._checkpoint(state), partition=state.slot))
            await asyncio.gather(*sends)
            offsets = {tp: OffsetAndMetadata(msgs[-1].offset + 1, "")}
            await producer.send_offsets_to_transaction(offsets, self.config.group_id)
        # Only now, after the commit, do the effects count.
        state.seen |= pending
        for msg, outcome in zip(msgs, outcomes, strict=True):
            self.metrics.count(outcome, msg.timestamp)
        self.metrics.batch(len(msgs), time.monotonic() - started)

    async def _emit(self, state: SlotState, record: Record, outcome: Outcome) -> list[Any]:
        """Queue every output of one ingress record in the open transaction; return the delivery futures.

        Each send is awaited in turn (it only waits when the buffer is full: that is the
        backpressure) so that audit records keep their chain order within the partition.
        """
        send = state.producer.send
        futures = []
        for out in outcome.feeds:
            futures.append(await send(out.topic, out.value, key=out.key, headers=list(out.headers)))
        for kind, body in outcome.audit:
            futures.append(await send(self.names.decisions, state.chain.append(kind, body), partition=state.slot))
        if outcome.dead_letter is not None:
            futures.append(await send(self.names.deadletter, record.value, key=record.key,
                                      headers=list(outcome.dead_letter)))
        if outcome.seen_id:
            futures.append(await send(self.names.seen, b"1", key=outcome.seen_id.encode(), partition=state.slot))
        return futures
