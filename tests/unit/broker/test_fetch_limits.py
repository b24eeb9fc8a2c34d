"""No fetch cuts a record batch: every topic Puente makes states the largest batch it takes (``max.message.bytes``,
``MAX_BATCH_BYTES``), and every consumer fetches at least that much of a partition, and in all what each partition
read together may bring (``fetch_total``). Kafka ignores the per-partition limit only for the first partition of an
answer with data: a later one whose first batch is larger comes cut, and aiokafka raises RecordTooLargeError with its
position moved one record on (the worker's group consumer took 256 KiB, its load reader 512 KiB: one 1 MiB alert
stopped every worker that took its partition)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.audit.chain import MAX_BLOCK_BYTES
from broker.kafka import KafkaConnection, consumer, reader
from broker.kafka.clients import FETCH_PARTITIONS, MAX_BATCH_BYTES, MAX_FETCH_BYTES, fetch_total
from broker.kafka.topics import plan_topics
from broker.lifecycle import MAX_ENTRY_BYTES
from broker.pipeline import MAX_DEAD_LETTER, MAX_FEED_RECORD, MAX_INGRESS_RECORD
from broker.worker import BrokerWorker
from policies import load_policy_set
from puente.errors import ConfigError
from puente.settings import PuenteSettings
from tests.unit.broker.test_worker_stall import AuditReader, _loading_worker, _worker

CONN = KafkaConnection(bootstrap="x:1")
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's message.max.bytes default (1 MiB and a batch's log overhead)


def test_every_topic_planned_states_the_largest_batch_the_consumers_fetch_whole() -> None:
    """Each topic the plan makes owns max.message.bytes, at ``MAX_BATCH_BYTES``: a topic found with another value is
    set back by ``topics apply`` (named in its report), so no topic takes a batch the consumers would cut."""
    specs = plan_topics(PuenteSettings(), load_policy_set())
    assert {s.role for s in specs} >= {"ingress", "feed", "decisions", "lifecycle", "receipts", "dead-letter"}
    assert {s.owned["max.message.bytes"] for s in specs} == {str(MAX_BATCH_BYTES)}


def test_the_largest_batch_is_kafkas_default_and_holds_the_largest_records_puente_takes() -> None:
    """``MAX_BATCH_BYTES`` is Kafka's default limit, stated: at least an ingress record's, an outbox entry's, an audit
    block's, a feed record's and a dead letter's largest value."""
    assert MAX_BATCH_BYTES == KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    largest = (MAX_INGRESS_RECORD, MAX_ENTRY_BYTES, MAX_BLOCK_BYTES, MAX_FEED_RECORD, MAX_DEAD_LETTER)
    assert max(largest) <= MAX_BATCH_BYTES


@pytest.mark.parametrize("partitions", [0, 1, 2, 12, 24, FETCH_PARTITIONS, FETCH_PARTITIONS + 1, 500])
def test_a_fetch_total_leaves_every_partition_its_whole_limit_up_to_the_bound(partitions: int) -> None:
    """``fetch_total(n)`` is n partitions' whole limit, so the answer's total cuts no batch of theirs, up to
    ``FETCH_PARTITIONS`` partitions (about 50 MiB, below a Kafka node's own 55 MiB answer limit); never below one."""
    total = fetch_total(partitions)
    assert total == min(max(1, partitions), FETCH_PARTITIONS) * MAX_BATCH_BYTES <= MAX_FETCH_BYTES < 55 * 1024 * 1024


async def test_a_consumer_fetches_at_least_the_largest_batch_and_refuses_less() -> None:
    """A consumer made here fetches ``MAX_BATCH_BYTES`` of a partition unless told more (aiokafka's own default, 1 MiB,
    is 12 bytes short of Kafka's largest batch), and ``MAX_FETCH_BYTES`` in all; a limit below the largest batch is
    refused (ConfigError) before a client is made; a reader's limits are the same."""
    made = [consumer(CONN, "unit"), consumer(CONN, "unit", max_partition_fetch_bytes=4 * MAX_BATCH_BYTES),
            reader(CONN)]
    try:
        assert [(c._max_partition_fetch_bytes, c._fetch_max_bytes) for c in made] == [
            (MAX_BATCH_BYTES, MAX_FETCH_BYTES), (4 * MAX_BATCH_BYTES, MAX_FETCH_BYTES),
            (MAX_BATCH_BYTES, MAX_FETCH_BYTES)]
    finally:
        for client in made:
            await client.stop()
    for small in ({"max_partition_fetch_bytes": 256 * 1024}, {"fetch_max_bytes": 512 * 1024}):
        with pytest.raises(ConfigError, match=r"consumer unit: a fetch limit below 1048588 bytes"):
            consumer(CONN, "unit", **small)


class StoppingGroup:
    """The worker's group consumer, as far as its main loop asks: each ``getmany`` runs ``fetched`` (the batch, or a
    raise), and the worker stops once ``fetched`` answers None. Notes each seek."""

    def __init__(self, worker: BrokerWorker, fetched: Callable[[StoppingGroup], Any], tps: list[TopicPartition],
                 ) -> None:
        self.worker, self.fetched, self.tps = worker, fetched, tps
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.fetches = 0

    async def topics(self) -> set[str]:
        return {tp.topic for tp in self.tps}

    def subscribe(self, topics: list[str], listener: Any) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return set(self.tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int | None = None,
                      ) -> dict[TopicPartition, list[Any]]:
        self.fetches += 1
        await asyncio.sleep(0)
        batch = self.fetched(self)
        if batch is None:
            self.worker._stopping.set()
            return {}
        return dict(batch)


def run_group(monkeypatch: pytest.MonkeyPatch, worker: BrokerWorker, fetched: Callable[[StoppingGroup], Any],
              tps: list[TopicPartition]) -> tuple[StoppingGroup, dict[str, Any]]:
    """Run ``worker``'s main loop once over a ``StoppingGroup``: the group, and the settings it was made with."""
    made: dict[str, Any] = {}
    group = StoppingGroup(worker, fetched, tps)

    def make(conn: Any, name: str, *topics: str, **options: Any) -> StoppingGroup:
        made.update(options)
        return group

    async def started(client: Any, conn: Any, what: str) -> Any:
        return client

    async def idle(*args: Any) -> None:
        await asyncio.Event().wait()

    async def nothing(*args: Any) -> None: ...

    monkeypatch.setattr("broker.worker.consumer", make)
    monkeypatch.setattr("broker.worker.start", started)
    monkeypatch.setattr("broker.worker.stop_client", nothing)
    monkeypatch.setattr(worker, "_watch_every", idle)
    monkeypatch.setattr(worker, "_commit_every", idle)
    monkeypatch.setattr(worker, "_fetching", lambda *args: None)
    asyncio.run(asyncio.wait_for(worker._run_once(sorted({tp.topic for tp in tps}), None), 10))
    return group, made


def test_the_group_consumer_fetches_every_slots_largest_batch_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's group consumer fetches the largest batch of each ingress partition (a 1 MiB alert is never
    cut), and in all every slot's partition's limit at once (``fetch_total`` of the slots)."""
    worker = _worker(slots=24)
    _, made = run_group(monkeypatch, worker, lambda group: None, [TopicPartition("t.ingress.SENAN", 0)])
    assert made["max_partition_fetch_bytes"] >= MAX_BATCH_BYTES >= MAX_INGRESS_RECORD
    assert made["fetch_max_bytes"] >= 24 * made["max_partition_fetch_bytes"]


async def test_a_slots_load_reads_every_fresh_partitions_largest_batch_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A load reads its fresh slots' audit, lifecycle and ingress partitions with a reader fetching the largest
    batch of each (an outbox entry holds a sealed view of up to 1 MiB), and in all all of theirs at once."""
    worker, _, gate, _ = _loading_worker(monkeypatch)
    asked: list[dict[str, Any]] = []

    def made(*args: Any, **options: Any) -> Any:
        asked.append(options)
        return AuditReader()

    monkeypatch.setattr("broker.worker.reader", made)
    fresh = [TopicPartition("t.ingress.SENAN", 0), TopicPartition("t.ingress.SENAN", 1)]
    gate.set()
    await asyncio.wait_for(worker._acquire(fresh), 1)
    await asyncio.wait_for(worker._loaded(), 1)
    assert worker._failure is None and set(worker._owned) == set(fresh)
    [options] = asked
    assert options["partition_fetch_bytes"] >= MAX_BATCH_BYTES >= MAX_ENTRY_BYTES
    assert options["fetch_bytes"] >= len(fresh) * options["partition_fetch_bytes"]
