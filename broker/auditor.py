"""The auditor's service: walk the audit topics on Kafka, verify every chain, list what verifies.

``verify_topics`` and ``read_log`` take the topics to read and what each holds; ``audit_topics``
finds them under the deployment's prefix and refuses when there are none (a wrong prefix must
not read as "no problems"); ``signature_checks`` gives the keys auditors verify with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.audit.chain import flatten
from broker.audit.verify import (
    Finding,
    Holds,
    PartitionReport,
    VerifyFn,
    delivered_pairs,
    parse_record,
    unmatched_receipt,
    verify_partition,
)
from broker.crypto import KeyKind, checker
from broker.kafka import KafkaConnection, TopicPartition, partitions_of, read_range, reader, running
from broker.keystore import Keystore, load_key_file, signature_check
from broker.topology import TopicNames
from puente.errors import ConfigError


async def verify_topics(conn: KafkaConnection, topics: dict[str, Holds], verify: VerifyFn) -> list[PartitionReport]:
    """Walk every partition of every audit topic, oldest record first, and report what is wrong.

    ``topics`` maps each topic to what it holds: ``"decisions"`` or ``"receipts"``. When the
    decisions are among them (give them first), every receipt is also checked against them: a
    receipt for an alert the broker never delivered to that partner is reported.
    """
    reports = []
    async with running(reader(conn, "puente-auditor"), conn, "reading the audit topics") as consumer:
        delivered = _Delivered()
        for topic, holds in topics.items():
            for partition in await partitions_of(consumer, topic):
                values = [(r.offset, r.value) async for r in read_range(consumer, TopicPartition(topic, partition))]
                report = verify_partition(topic, partition, values, verify, holds)
                reports.append(report)
                delivered.learn(report, values)
    return reports


class _Delivered:
    """The deliveries sound decision records name, and the check of receipts against them.

    Receipts are checked only once some decisions topic was walked: on its own, a receipts
    topic cannot say what was delivered.
    """

    def __init__(self) -> None:
        self.pairs: set[tuple[str, str]] = set()
        self.known = False

    def learn(self, report: PartitionReport, values: list[tuple[int, bytes]]) -> set[int]:
        """Take in a walked partition's deliveries, or report its unmatched receipts; the offsets of those."""
        bad = {f.offset for f in report.findings}
        unmatched: set[int] = set()
        for offset, value in values:
            doc = parse_record(value)
            if doc is None or offset in bad:
                continue
            if doc.get("kind") == "BLOCK" and doc.get("chain") is None:
                self.known = True
                self.pairs.update(delivered_pairs(doc))
            elif self.known and (why := unmatched_receipt(doc, self.pairs)) is not None:
                report.findings.append(Finding(report.topic, report.partition, offset, why))
                unmatched.add(offset)
        return unmatched


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


async def read_log(conn: KafkaConnection, topics: dict[str, Holds], flt: LogFilter, verify: VerifyFn,
                   left_out: list[int] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Audit rows (one per decision, dead letter or receipt) from ``topics`` that pass ``flt``.

    ``topics`` maps each topic to what it holds (``"decisions"`` or ``"receipts"``). Only what
    ``audit verify`` finds sound is listed: a record it reports (edited, out of place, badly or
    wrongly signed, not an audit record) is left out, and so are receipts that no sound
    checkpoint of their chain vouches for and receipts for alerts the decisions never delivered
    to that partner. Their count is appended to ``left_out``, if given.
    """
    async with running(reader(conn, "puente-auditor"), conn, "reading the audit topics") as consumer:
        delivered = _Delivered()
        for topic, holds in topics.items():
            for partition in await partitions_of(consumer, topic):
                values = [(r.offset, r.value) async for r in read_range(consumer, TopicPartition(topic, partition))]
                report = verify_partition(topic, partition, values, verify, holds)
                delivered.learn(report, values)
                bad = {f.offset for f in report.findings}
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


async def audit_topics(conn: KafkaConnection, prefix: str) -> dict[str, Holds]:
    """The audit topics under ``prefix`` and what each holds; ConfigError when none exists there.

    Nothing to verify where audit topics were expected is not "no problems": it is a wrong
    prefix, a wrong cluster, or topics never made.
    """
    names = TopicNames(prefix)
    wanted = names.audit_roles()
    async with running(reader(conn, "puente-auditor"), conn, "listing the audit topics") as consumer:
        present = {t: h for t, h in wanted.items() if await partitions_of(consumer, t)}
    if not present:
        raise ConfigError(f"no audit topics under prefix {prefix!r} at {conn.bootstrap} ({', '.join(wanted)}): "
                          "check PUENTE_TOPIC_PREFIX and PUENTE_BOOTSTRAP, or run `puente topics apply`")
    return present


def signature_checks(keys_dir: Path, verify_files: list[Path] | None) -> VerifyFn:
    """Signature checks for the audit: the given public key files, or every signing key (the
    broker's and the partners' receipt keys) in the broker's keystore ``keys_dir``."""
    if not verify_files:
        return signature_check(Keystore(keys_dir), KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
    records = [load_key_file(path) for path in verify_files]
    return checker({rec.key_id: rec.ed25519_public() for rec in records})
