"""Reading the audit topics from Kafka: verify every chain, list decisions and receipts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition

from broker.audit.chain import flatten
from broker.audit.verify import PartitionReport, VerifyFn, misplaced, verify_partition
from broker.kafka_io import partitions_of, read_range, reader


async def verify_topics(bootstrap: str, topics: dict[str, str], verify: VerifyFn) -> list[PartitionReport]:
    """Walk every partition of every audit topic, oldest record first, and report what is wrong.

    ``topics`` maps each topic to what it holds: ``"decisions"`` or ``"receipts"``.
    """
    consumer = reader(bootstrap)
    await consumer.start()
    reports = []
    try:
        for topic, holds in topics.items():
            for partition in await partitions_of(consumer, topic):
                values = [(r.offset, r.value) async for r in read_range(consumer, TopicPartition(topic, partition))]
                reports.append(verify_partition(topic, partition, values, verify, holds))
    finally:
        await consumer.stop()
    return reports


@dataclass(frozen=True)
class LogFilter:
    """Which audit records ``puente audit log`` shows."""

    partner: str | None = None
    alert: str | None = None
    agreement: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[str] = frozenset({"DECISION", "DEAD_LETTER", "RECEIPT"})

    def accepts(self, doc: dict[str, Any]) -> bool:
        if doc.get("kind") not in self.kinds:
            return False
        if self.partner and doc.get("partner") != self.partner:
            return False
        if self.alert and doc.get("alert_id") != self.alert:
            return False
        if self.agreement and doc.get("agreement") != self.agreement:
            return False
        if self.since or self.until:
            try:
                at = datetime.fromisoformat(str(doc.get("at", "")).replace("Z", "+00:00"))
            except ValueError:
                return False
            if (self.since and at < self.since) or (self.until and at > self.until):
                return False
        return True


async def read_log(bootstrap: str, topics: dict[str, str], flt: LogFilter) -> AsyncIterator[dict[str, Any]]:
    """Audit rows (one per decision, dead letter or receipt) from ``topics`` that pass ``flt``.

    ``topics`` maps each topic to what it holds (``"decisions"`` or ``"receipts"``). A record
    that does not belong where it is (a block in a partner's receipt chain, a receipt in the
    decisions topic) is left out: ``audit verify`` reports it.
    """
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        for topic, holds in topics.items():
            for partition in await partitions_of(consumer, topic):
                async for rec in read_range(consumer, TopicPartition(topic, partition)):
                    try:
                        doc = json.loads(rec.value)
                    except ValueError:
                        continue
                    if not isinstance(doc, dict) or misplaced(doc.get("chain"), doc, holds) is not None:
                        continue
                    for row in flatten(doc):
                        if flt.accepts(row):
                            yield row
    finally:
        await consumer.stop()
