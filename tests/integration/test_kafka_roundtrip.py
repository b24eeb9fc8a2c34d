"""Avro alerts travel through the real Kafka and come back unchanged."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.kafka import KafkaConnection
from puente.dev.synthetic import generate
from schemas import alert_codec

pytestmark = pytest.mark.kafka


async def _consume(conn: KafkaConnection, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, **conn.aiokafka(), auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        while len(got) < count:
            batch = await consumer.getmany(timeout_ms=10_000)
            if not batch:
                break
            for records in batch.values():
                got.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return got


async def test_alerts_round_trip_through_kafka(kafka_admin: KafkaConnection, topic_factory) -> None:
    """Alerts produced as single-object Avro to a real topic decode back to the same values."""
    topic = await topic_factory("roundtrip")
    alerts = list(generate(300, seed=5))
    codec = alert_codec()
    producer = AIOKafkaProducer(**kafka_admin.aiokafka(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for alert in alerts:
            await producer.send(topic, codec.encode(alert), key=alert["alert_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()
    got = await _consume(kafka_admin, topic, len(alerts))
    assert len(got) == len(alerts)
    by_id = {a["alert_id"]: a for a in alerts}
    for key, value in got:
        decoded = codec.decode(value)
        assert key.decode() == decoded["alert_id"]
        assert decoded == by_id[decoded["alert_id"]]


async def test_bad_records_on_a_topic_are_errors_not_crashes(kafka_admin: KafkaConnection, topic_factory) -> None:
    """Garbage and foreign records read from Kafka raise codec errors one by one; good ones still decode."""
    from puente.errors import CodecError

    topic = await topic_factory("mixed", partitions=1)
    codec = alert_codec()
    good = next(generate(1, seed=9))
    values = [b"not avro", codec.encode(good), b"\xc3\x01" + b"\xff" * 8 + b"body", b""]
    producer = AIOKafkaProducer(**kafka_admin.aiokafka())
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    outcomes = []
    for _, value in await _consume(kafka_admin, topic, len(values)):
        try:
            outcomes.append(codec.decode(value)["alert_id"])
        except CodecError as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == ["NotSingleObjectError", good["alert_id"], "UnknownSchemaError", "NotSingleObjectError"]
