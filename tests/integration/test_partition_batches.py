"""A worker transaction's records built into per-partition batches reach Kafka as ``send()`` would send them."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.kafka import KafkaConnection, PartitionBatches, partition_count_now

pytestmark = pytest.mark.kafka


async def _read_committed(conn: KafkaConnection, topic: str) -> list[tuple[int, bytes, bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(topic, **conn.aiokafka(), auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    got = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000)
            if not batch:
                break
            for records in batch.values():
                got.extend((r.partition, r.key, r.value, list(r.headers)) for r in records)
    finally:
        await consumer.stop()
    return got


async def _producer(conn: KafkaConnection, batch_bytes: int) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(**conn.aiokafka(), transactional_id=f"test-batches-{uuid.uuid4().hex[:8]}",
                                enable_idempotence=True, acks="all", linger_ms=0, max_batch_size=batch_bytes)
    await producer.start()
    return producer


async def test_batches_keep_each_partitions_order_headers_and_oversized_records(
        kafka_admin: KafkaConnection, topic_factory) -> None:
    """Records spill into further batches when one is full, a record larger than a batch goes alone,
    and a reader sees every record once, in its partition, in the order added, headers unchanged."""
    topic = await topic_factory("batches", partitions=3)
    producer = await _producer(kafka_admin, batch_bytes=2048)
    sent = []
    try:
        async with producer.transaction():
            batches = PartitionBatches(producer)
            for i in range(300):
                value = (b"v%04d" % i) * (10 + i % 40)
                headers = [("puente.n", str(i).encode())] if i % 3 else []
                if i == 150:
                    value = b"x" * 9000  # more than a batch holds
                await batches.add(topic, i % 3, b"k%04d" % i, value, headers)
                sent.append((i % 3, b"k%04d" % i, value, headers))
            futures = await batches.submit()
            assert len(futures) > 3  # full batches went on their own, before submit
            assert len(batches) == 0
            for result in [await f for f in futures]:
                assert result is not None
    finally:
        await producer.stop()
    got = await _read_committed(kafka_admin, topic)
    assert sorted(got) == sorted(sent)
    for partition in range(3):
        assert [g[1] for g in got if g[0] == partition] == [s[1] for s in sent if s[0] == partition]


async def test_batches_of_an_aborted_transaction_are_never_read(kafka_admin: KafkaConnection, topic_factory) -> None:
    """Batches join the transaction like sends: when it aborts, read_committed sees none of them."""
    topic = await topic_factory("batches-abort", partitions=2)
    producer = await _producer(kafka_admin, batch_bytes=16 * 1024)
    try:
        with pytest.raises(RuntimeError, match="abort"):
            async with producer.transaction():
                batches = PartitionBatches(producer)
                for i in range(50):
                    await batches.add(topic, i % 2, None, b"aborted %d" % i)
                for future in await batches.submit():
                    await future
                raise RuntimeError("abort")
        async with producer.transaction():
            batches = PartitionBatches(producer)
            await batches.add(topic, 1, b"k", b"committed")
            for future in await batches.submit():
                await future
    finally:
        await producer.stop()
    assert await _read_committed(kafka_admin, topic) == [(1, b"k", b"committed", [])]


async def test_a_feeds_partition_count_is_read_anew_past_the_producers_cache(
        kafka_admin: KafkaConnection, topic_factory, admin) -> None:
    """A producer's ``partitions_for`` answers from its cache: partitions added since it first looked are not
    there. ``partition_count_now`` (what a worker asks when an alert's state records more, ``FeedCountStale``)
    asks Kafka."""
    from aiokafka.admin import NewPartitions

    topic = await topic_factory("grown", partitions=3)
    producer = await _producer(kafka_admin, batch_bytes=16384)
    try:
        assert len(await producer.partitions_for(topic)) == 3
        await admin.create_partitions({topic: NewPartitions(total_count=6)})
        assert len(await producer.partitions_for(topic)) == 3  # cached
        assert await partition_count_now(producer, topic) == 6
    finally:
        await producer.stop()
