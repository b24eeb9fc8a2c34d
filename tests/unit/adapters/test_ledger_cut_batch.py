"""The adapters' ledger scan (``read_ledger``, the lifecycle reader) reads a record batch that came cut again,
alone, and leaves no record out: with more partitions on one Kafka node than one fetch covers whole, a later
partition's first batch comes cut, and aiokafka raises RecordTooLargeError with its position moved one record on.
Before, the scan called ``getmany`` itself, and the error stopped it with aiokafka's raw text."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition

from adapters.ledger import scan
from broker.kafka import KafkaConnection
from puente.wire import Record
from tests.unit.broker.test_record_too_large import A, B, CutReader


class LedgerReader(CutReader):
    """``CutReader`` (partition 0's batch at 5 cut whenever partition 1 comes with it, whole alone), also answering
    what a scan asked of it before (``seek_to_beginning``, ``max_records``)."""

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.seek(tp, 0)

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        return await super().getmany(*tps, timeout_ms=timeout_ms)


async def test_a_scan_reads_a_cut_batch_again_alone_and_keeps_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record of both partitions reaches ``keep`` once, partition 0's record 5 (its batch cut once) included;
    partition 1 was paused for the read alone, then resumed."""
    consumer = LedgerReader()

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield client

    async def partitions_of(client: Any, topic: str) -> list[int]:
        return [A.partition, B.partition]

    monkeypatch.setattr("adapters.ledger.reader", lambda conn, name: consumer)
    monkeypatch.setattr("adapters.ledger.running", running)
    monkeypatch.setattr("adapters.ledger.partitions_of", partitions_of)
    kept: list[Record] = []
    sized: list[int] = []
    await scan(KafkaConnection(bootstrap="x:1"), A.topic, kept.append, sized.append)
    assert sized == [2]
    assert sorted(r.offset for r in kept if r.partition == A.partition) == list(range(6))
    assert sorted(r.offset for r in kept if r.partition == B.partition) == list(range(100))
    assert ("pause", (B,)) in consumer.calls and consumer.paused_tps == set()
