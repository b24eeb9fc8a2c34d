"""A delivery the broker has no sealing key for stops the worker before its batch commits: nothing is withheld for good.

The real pipeline runs inside a slot's loop, with the Kafka client replaced by the stand-in producer
of ``worker_fakes``; the integration tests run the same loop on the real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from worker_fakes import HeldProducer, settle

from broker.audit import ChainWriter
from broker.kafka import KafkaConnection
from broker.pipeline import MissingDeliveryKey, Originator, Pipeline
from broker.replay import ReplayWindow
from broker.topology import Slots, TopicNames, key_partition
from broker.worker import BrokerWorker, SlotState, WorkerConfig
from policies import alert_reference
from puente.dev.synthetic import generate
from schemas import alert_codec

REF_KEY = b"unit-test-alert-reference-key-32b"  # the broker's alert-reference key in these tests

CONN = KafkaConnection(bootstrap="unused:9092")
SLOTS = Slots(("SNM",), 1, TopicNames("t"))
TP = TopicPartition("t.ingress.SNM", 0)


@dataclass(frozen=True)
class _Deliver:
    partner: str
    outcome: str = "DELIVER"
    agreement: str | None = "AGR"
    rules: Sequence[str] = ("AGR.r1",)
    reasons: Sequence[str] = ("because",)
    redactions: Sequence[tuple[str, str]] = ()
    policy_version: str = "v1"
    audit: dict[str, Any] = field(default_factory=dict)


class _DeliverToUSA:
    """Every alert is delivered to USA, the one partner."""

    version = "v1"

    def partners(self) -> list[tuple[str, str]]:
        return [("USA", "t.feed.USA")]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[_Deliver]:
        return [_Deliver(p, audit={"partner": p, "decision": "DELIVER", "reasons": ["because"]}) for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class _Sealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed"


def _msgs(count: int) -> list[Any]:
    now = datetime.now(UTC)
    alerts = [a for a in generate(40, seed=3, now=now) if a["agency"] == "SNM"][:count]
    ms = int(now.timestamp() * 1000)
    return [SimpleNamespace(topic=TP.topic, partition=0, offset=i, key=a["alert_id"].encode(),
                            value=alert_codec().encode(a), headers=[("published", str(ms).encode())], timestamp=ms,
                            timestamp_type=1)
            for i, a in enumerate(alerts)]


class _Producer(HeldProducer):
    """The stand-in producer, with one partition per feed."""

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}


def _worker(sealers: dict[str, Any]) -> tuple[BrokerWorker, SlotState, HeldProducer]:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return "SNM", int(dict(headers)["published"])

    pipeline = Pipeline(_DeliverToUSA(), alert_codec(), sealers, origin, SLOTS,  # type: ignore[arg-type]
                        originators={"SNM": Originator.of("SNM", "PAN", "PAN")})
    worker = BrokerWorker(WorkerConfig(CONN, "g", SLOTS, max_batch=10), pipeline, lambda p: b"sig")
    producer = _Producer()
    producer.gate.set()
    state = SlotState(TP, 0, producer, ChainWriter("t.audit", 0), ReplayWindow(7))  # type: ignore[arg-type]
    worker._owned[TP] = state
    return worker, state, producer


class _Consumer:
    def pause(self, tp: TopicPartition) -> None: ...
    def resume(self, tp: TopicPartition) -> None: ...
    def assignment(self) -> set[TopicPartition]:
        return {TP}


async def test_a_partner_without_a_sealer_stops_the_worker_before_anything_commits() -> None:
    """USA is entitled but has no sealer: the slot fails with MissingDeliveryKey and commits no offset, so the records
    stay in the ingress topic for a broker with the key, instead of committing a WITHHOLD that is final."""
    msgs = _msgs(3)
    assert all(m.partition == key_partition(m.key, 1) for m in msgs)
    worker, state, producer = _worker({})
    worker._dispatch(_Consumer(), {TP: msgs})
    await settle()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert isinstance(worker._failure, MissingDeliveryKey) and "USA" in str(worker._failure)
    assert producer.committed == [] and producer.batched == []


async def test_with_the_sealer_the_same_records_are_delivered_and_committed() -> None:
    """The control: with USA's sealer the same batch is sealed, sent and committed past its last record."""
    msgs = _msgs(3)
    worker, state, producer = _worker({"USA": _Sealer()})
    worker._dispatch(_Consumer(), {TP: msgs})
    await settle()
    await asyncio.wait_for(state.task, 5)  # type: ignore[arg-type]
    assert worker._failure is None and producer.committed == [len(msgs)]
    assert ("t.feed.USA", 0, len(msgs)) in producer.batched
