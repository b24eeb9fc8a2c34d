"""Records of one transaction, built into one record batch per partition and sent whole.

aiokafka's ``send()`` costs a coroutine, a metadata check, a serializer pass and a delivery
future for every record, and resolves each future when its batch is acknowledged. A worker's
transaction already knows every record it will write and where (its slot's feed, audit and
lifecycle partitions), so ``PartitionBatches`` appends them straight into aiokafka's
``BatchBuilder`` (its record format is native code) and submits one batch per partition with
``send_batch``: one future per partition instead of one per record. The records, their order
within a partition, the transaction they join and the acknowledgement waited for are the same as
with ``send()``. One check is not: ``send()`` refuses a record larger than the producer's
``max_request_size`` before sending it, where here the broker refuses its batch, and the
transaction fails. The worker's records are bounded well below that (a feed record, an audit block).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer


class PartitionBatches:
    """One open transaction's records, per (topic, partition), in the order they were added.

    ``add`` only builds (no I/O); ``submit`` hands every batch to the producer and returns their
    delivery futures, each of which must succeed before the transaction is committed. A batch that
    reaches the producer's ``max_batch_size`` is submitted at once and a new one begun for that
    partition; a record larger than that goes alone in a batch of its own.
    """

    __slots__ = ("_batches", "_futures", "_producer")

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._batches: dict[tuple[str, int], Any] = {}
        self._futures: list[asyncio.Future[Any]] = []

    def __len__(self) -> int:
        return len(self._batches)

    async def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                  headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Append one record (``value`` None: a tombstone); waits only when a full batch has to be handed over first."""
        where = (topic, partition)
        batch = self._batches.get(where)
        if batch is None:
            batch = self._batches[where] = self._producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value, headers=list(headers)) is not None:
            return
        # Full: this one goes now, the record starts the next (a fresh batch always takes its first).
        del self._batches[where]
        self._futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        batch = self._batches[where] = self._producer.create_batch()
        batch.append(timestamp=None, key=key, value=value, headers=list(headers))

    async def submit(self) -> list[asyncio.Future[Any]]:
        """Hand every batch still being built to the producer; the delivery futures of all of them."""
        batches, self._batches = self._batches, {}
        for (topic, partition), batch in batches.items():
            self._futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        futures, self._futures = self._futures, []
        return futures
