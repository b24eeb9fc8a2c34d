"""A read to a partition's end gives up when Kafka goes away mid-read (``broker.kafka.io.Stall``): aiokafka's fetcher
logs a failed fetch and answers with nothing, and the loops waiting for the end they asked for waited for ever,
saying nothing (an adapter's start, a watcher's daily ledger read, the audit tools, a worker's load)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace as NS
from typing import Any

import pytest
from aiokafka import TopicPartition

import adapters.ledger as ledger
import broker.kafka.io as io
from puente.errors import KafkaUnavailableError


class _Gone:
    """A consumer whose node went away after ``read`` records of each partition: positions stay, fetches answer {}."""

    def __init__(self, read: int = 40, end: int = 100, moving: int = 0) -> None:
        self.at, self.end, self.moving, self.fetches = read, end, moving, 0

    def assign(self, tps: Any) -> None:
        pass

    def seek(self, tp: Any, offset: int) -> None:
        pass

    async def seek_to_beginning(self, *tps: Any) -> None:
        pass

    async def end_offsets(self, tps: Any) -> dict[Any, int]:
        return {tp: self.end for tp in tps}

    async def beginning_offsets(self, tps: Any) -> dict[Any, int]:
        return {tp: 0 for tp in tps}

    async def position(self, tp: Any) -> int:
        return self.at

    async def getmany(self, *tps: Any, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        self.fetches += 1
        await asyncio.sleep(0.001)
        if self.moving and self.at < self.end:  # a slow Kafka: aborted records or markers move it, no record
            self.at += self.moving
        return {}


def test_a_read_that_stops_moving_is_given_up_naming_what_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "READ_STALL_S", 0.05)
    tp = TopicPartition("t.audit.decisions", 3)
    with pytest.raises(KafkaUnavailableError, match=r"reading t.audit.decisions\[3\]: nothing came from Kafka for "
                                                    r"0.05s while records remained to read; check that Kafka is up"):
        asyncio.run(asyncio.wait_for(_drain(io.read_range(_Gone(), tp)), 10))
    with pytest.raises(KafkaUnavailableError, match=r"reading t\.audit\.decisions, t\.lifecycle: nothing came"):
        asyncio.run(asyncio.wait_for(io.read_many(_Gone(), [tp, TopicPartition("t.lifecycle", 0)]),
                                     10))


def test_a_read_that_moves_however_slowly_goes_on_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "READ_STALL_S", 0.5)
    consumer = _Gone(read=0, end=20, moving=1)
    assert asyncio.run(io.read_many(consumer, [TopicPartition("t.x", 0)])) == {
        TopicPartition("t.x", 0): []}
    assert consumer.fetches == 20


def test_the_adapters_ledger_read_is_given_up_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "READ_STALL_S", 0.05)
    consumer = _Gone()

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[_Gone]:
        yield consumer

    async def partitions_of(c: Any, topic: str) -> list[int]:
        return [0, 1, 2]

    monkeypatch.setattr(ledger, "running", running)
    monkeypatch.setattr(ledger, "partitions_of", partitions_of)
    monkeypatch.setattr(ledger, "reader", lambda conn, name: None)
    with pytest.raises(KafkaUnavailableError, match=r"reading t\.ingress\.SNM: nothing came from Kafka"):
        asyncio.run(asyncio.wait_for(ledger.scan(NS(timeout_s=15), "t.ingress.SNM",  # type: ignore[arg-type]
                                                 lambda rec: None), 10))


async def _drain(records: Any) -> None:
    async for _ in records:
        pass
