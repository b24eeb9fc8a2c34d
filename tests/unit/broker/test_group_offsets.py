"""`broker.kafka.admin.group_offsets`: a consumer group's committed offsets, each as Kafka settled it.

Kafka 4.1 answers a partition whose offset sits in an open transaction (asked with ``require_stable``)
with UNSTABLE_OFFSET_COMMIT and no offset, and librdkafka's admin call does not retry it: those are asked
again, and an answer once settled is kept. The AdminClient is a fake here; the integration tests
(`test_fail_closed.py`) read real offsets."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError

import broker.kafka.admin as admin_module
from broker.kafka import KafkaConnection, group_offsets


@dataclass(frozen=True)
class _TP:
    """What librdkafka answers per partition (its TopicPartition's ``error`` cannot be set from Python)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


def TopicPartition(topic: str, partition: int, offset: int) -> _TP:
    return _TP(topic, partition, offset)


def _unstable(topic: str, partition: int) -> _TP:
    return _TP(topic, partition, -1001, KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT))


class _Client:
    def __init__(self, answers: list[list[_TP]]) -> None:
        self.answers = answers
        self.asked = 0

    def list_consumer_group_offsets(self, groups: list[ConsumerGroupTopicPartitions], **options: Any) -> Any:
        assert options["require_stable"] is True
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        future: Future[Any] = Future()
        future.set_result(SimpleNamespace(group_id=groups[0].group_id, topic_partitions=answer))
        return {groups[0].group_id: future}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> list[_Client]:
    made: list[_Client] = []

    def admin_client(config: dict[str, Any]) -> _Client:
        return made[0]

    monkeypatch.setattr(admin_module, "AdminClient", admin_client)
    monkeypatch.setattr(admin_module.asyncio, "sleep", _no_sleep)
    return made


async def _no_sleep(seconds: float) -> None:
    return None


def _conn(timeout_s: float = 5.0) -> KafkaConnection:
    return KafkaConnection(bootstrap="k:9093", timeout_s=timeout_s)


def test_an_offset_in_an_open_transaction_is_asked_again_until_it_settles(client: list[_Client]) -> None:
    client.append(_Client([[_unstable("p.ingress.SNM", 0), TopicPartition("p.ingress.SNM", 1, 5)],
                           [_unstable("p.ingress.SNM", 0), TopicPartition("p.ingress.SNM", 1, 6)],
                           [TopicPartition("p.ingress.SNM", 0, 9), TopicPartition("p.ingress.SNM", 1, 7)]]))
    got = asyncio.run(group_offsets(_conn(), "p-broker"))
    assert got == {("p.ingress.SNM", 0): 9, ("p.ingress.SNM", 1): 5}  # the first settled answer is kept
    assert client[0].asked == 3


def test_an_offset_that_never_settles_is_left_out_once_the_time_is_up(client: list[_Client]) -> None:
    client.append(_Client([[_unstable("p.ingress.SNM", 0), TopicPartition("p.ingress.SNM", 1, 5)]]))
    got = asyncio.run(group_offsets(_conn(timeout_s=0.01), "p-broker"))
    assert got == {("p.ingress.SNM", 1): 5}


def test_no_committed_offset_is_no_offset(client: list[_Client]) -> None:
    client.append(_Client([[TopicPartition("p.ingress.SNM", 0, -1001), TopicPartition("p.ingress.PN", 2, 0)]]))
    assert asyncio.run(group_offsets(_conn(), "p-broker")) == {("p.ingress.PN", 2): 0}
