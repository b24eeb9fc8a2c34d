"""Stand-ins for the worker's unit tests: a transactional producer whose commits the test holds and
releases, and a pipeline that decides nothing. The worker's own scheduling is what those tests check;
the integration tests run the same loop on the real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from broker.audit import resume_offset
from broker.pipeline import Outcome


class _Batch:
    """aiokafka's BatchBuilder as the worker uses it: records appended, never full."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []

    def append(self, *, timestamp: Any, key: Any, value: Any, headers: Any) -> object:
        self.records.append((key, value, headers))
        return object()


class HeldProducer:
    """Counts open transactions and records the offset each committed one moves to (the one its last
    audit block names: ``resume_offset``); a transaction's commit waits for ``gate``."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.committed: list[int] = []
        self.in_flight = 0
        self.batched: list[tuple[str, int, int]] = []  # (topic, partition, records) of each batch sent
        self._blocks: list[bytes] = []
        self.offsets_sent: list[int] = []  # offsets a transaction carried (a gap's mark's only)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.in_flight += 1
        self._blocks = []
        try:
            yield
            await self.gate.wait()
            at = resume_offset(orjson.loads(self._blocks[-1])) if self._blocks else None
            if at is not None:
                self.committed.append(at)
        finally:
            self.in_flight -= 1

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}  # every feed has three partitions

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: str) -> None:
        self.offsets_sent.append(next(iter(offsets.values())).offset)  # one slot, one partition per transaction

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.batched.append((topic, partition, len(batch.records)))
        self._blocks.extend(value for _, value, _ in batch.records if value and value.startswith(b'{"')
                            and b'"BLOCK"' in value)
        return await self.send(topic)


def counted(pipeline: Any, partitions: int = 3) -> Any:
    """``pipeline`` told that each of its feeds has ``partitions`` partitions, as a worker tells it from Kafka
    before its first batch (``BrokerWorker._count_feeds``); for tests that call ``process`` themselves."""
    pipeline.feed_counts.update(dict.fromkeys(pipeline.uncounted_feeds, partitions))
    return pipeline


class Pipeline:
    """Every record is an alert decided for no partner, its key its id."""

    uncounted_feeds: tuple[str, ...] = ()  # it feeds no one

    def process(self, record: Any, seen: Any, now: Any, states: Any = None) -> Outcome:
        alert_id = record.key.decode()
        return Outcome(entry={"kind": "ALERT", "alert_id": alert_id, "decisions": [],
                              "ingress": f"{record.topic}:{record.partition}:{record.offset}"}, seen_id=alert_id)


async def settle() -> None:
    """Let every task ready to run take its turn, a few times over."""
    for _ in range(50):
        await asyncio.sleep(0)
