"""Reading the audit topics from Kafka: verify every chain, list decisions and receipts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition

from broker.audit.chain import flatten
from broker.audit.verify import Holds, PartitionReport, VerifyFn, parse_record, verify_partition
from broker.kafka_io import partitions_of, read_range, reader


async def verify_topics(bootstrap: str, topics: dict[str, Holds], verify: VerifyFn) -> list[PartitionReport]:
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
        kind = doc.get("kind")
        if not isinstance(kind, str) or kind not in self.kinds:
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


async def read_log(bootstrap: str, topics: dict[str, Holds], flt: LogFilter, verify: VerifyFn,
                   left_out: list[int] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Audit rows (one per decision, dead letter or receipt) from ``topics`` that pass ``flt``.

    ``topics`` maps each topic to what it holds (``"decisions"`` or ``"receipts"``). Only what
    ``audit verify`` finds sound is listed: a record it reports (edited, out of place, badly or
    wrongly signed, not an audit record) is left out, and so are receipts that no sound
    checkpoint of their chain vouches for. Their count is appended to ``left_out``, if given.
    """
    consumer = reader(bootstrap)
    await consumer.start()
    try:
        for topic, holds in topics.items():
            for partition in await partitions_of(consumer, topic):
                values = [(r.offset, r.value) async for r in read_range(consumer, TopicPartition(topic, partition))]
                bad = {f.offset for f in verify_partition(topic, partition, values, verify, holds).findings}
                dropped = 0
                pending: dict[str, list[list[dict[str, Any]]]] = {}  # per receipt chain: records not yet vouched for
                for offset, value in values:
                    doc = parse_record(value)
                    if doc is None or offset in bad:
                        dropped += 1
                        continue
                    chain = doc.get("chain")
                    if chain is not None:  # a receipt chain: its rows count once a checkpoint vouches for them
                        if doc["kind"] == "CHECKPOINT":
                            for rows in pending.pop(chain, ()):
                                for row in rows:
                                    yield row
                        else:
                            pending.setdefault(chain, []).append([r for r in flatten(doc) if flt.accepts(r)])
                        continue
                    for row in flatten(doc):
                        if flt.accepts(row):
                            yield row
                dropped += sum(len(rows) for rows in pending.values())
                if left_out is not None:
                    left_out.append(dropped)
    finally:
        await consumer.stop()
