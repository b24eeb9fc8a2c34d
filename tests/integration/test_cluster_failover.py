"""The 3-node local cluster keeps acknowledged messages when one node stops."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.kafka import KafkaConnection
from puente.dev.localkafka import LocalKafka

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]


async def _produce(conn: KafkaConnection, topic: str, start: int, count: int) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka(), acks="all", enable_idempotence=True, request_timeout_ms=30_000)
    await producer.start()
    try:
        for i in range(start, start + count):
            await producer.send(topic, f"m{i}".encode(), key=str(i % 7).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _read_all(conn: KafkaConnection, topic: str, want: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, **conn.aiokafka(), auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list[bytes] = []
    try:
        idle = 0
        while len(got) < want and idle < 3:
            batch = await consumer.getmany(timeout_ms=5_000)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                got.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return got


async def test_acks_all_messages_survive_a_stopped_node(local_cluster: LocalKafka) -> None:
    """With replication 3 and min ISR 2, messages acknowledged before and after a node stops are all readable."""
    bootstrap = local_cluster.admin_connection()
    admin = AIOKafkaAdminClient(**bootstrap.aiokafka())
    await admin.start()
    try:
        await admin.create_topics([NewTopic("failover", 3, 3, topic_configs={"min.insync.replicas": "2"})])
        described = await admin.describe_topics(["failover"])
    finally:
        await admin.close()
    assert all(len(p["replicas"]) == 3 for p in described[0]["partitions"])

    await _produce(bootstrap, "failover", 0, 2000)
    await asyncio.to_thread(local_cluster.stop_node, 2, kill=True)
    assert [s.alive for s in local_cluster.status()] == [True, False, True]
    # Still two in-sync replicas: acks=all writes keep succeeding.
    await _produce(bootstrap, "failover", 2000, 1000)

    values = await _read_all(bootstrap, "failover", 3000)
    assert sorted(values, key=lambda v: int(v[1:])) == [f"m{i}".encode() for i in range(3000)]
