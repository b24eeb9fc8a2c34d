"""The auditor's service: walk the audit topics on Kafka, verify every chain, list what verifies.

``verify_topics`` and ``read_log`` take the topics to read and what each holds; ``audit_topics``
finds them under the deployment's prefix and refuses when there are none (a wrong prefix must
not read as "no problems"); ``signature_checks`` gives the keys auditors verify with.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.access import denials_transaction
from broker.audit.chain import ChainHead, ChainWriter, flatten
from broker.audit.denials import concerns, denial
from broker.audit.verify import (
    Finding,
    Holds,
    PartitionReport,
    VerifyFn,
    delivered_pairs,
    head_problem,
    parse_record,
    unmatched_receipt,
    verify_partition,
)
from broker.crypto import KeyKind, checker, parse_key_id
from broker.kafka import KafkaConnection, TopicPartition, partitions_of, producer, read_range, reader, running
from broker.keystore import Keystore, load_key_file, signature_check
from broker.topology import TopicNames
from policies import PolicySet
from puente.errors import AuditChainError, ConfigError
from puente.wire import iso_utc


async def verify_topics(conn: KafkaConnection, topics: Mapping[str, Holds], verify: VerifyFn,
                        owners: Mapping[str, str] | None = None) -> list[PartitionReport]:
    """Walk every partition of every audit topic, oldest record first, and report what is wrong.

    ``topics`` maps each topic to what it holds (``"decisions"``, ``"receipts"``, ``"denials"``);
    ``owners`` maps a receipts topic to its partner, whose chains alone it may hold. When the
    decisions are among them (give them first), every receipt is also checked against them: a
    receipt for an alert the broker never delivered to that partner is reported.
    """
    reports = []
    async with running(reader(conn, "puente-auditor"), conn, "reading the audit topics") as consumer:
        delivered = _Delivered()
        for topic, holds in topics.items():
            for partition in await partitions_of(consumer, topic):
                values = [(r.offset, r.value) async for r in read_range(consumer, TopicPartition(topic, partition))]
                report = verify_partition(topic, partition, values, verify, holds, (owners or {}).get(topic))
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
    kinds: frozenset[str] = frozenset({"DECISION", "DEAD_LETTER", "RECEIPT", "DENIAL"})

    def accepts(self, doc: dict[str, Any]) -> bool:
        kind = doc.get("kind")
        if not isinstance(kind, str) or kind not in self.kinds:
            return False
        if self.partner:
            who = doc.get("principal") if kind == "DENIAL" else doc.get("partner")
            if who != (f"User:partner-{self.partner}" if kind == "DENIAL" else self.partner):
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


async def read_log(conn: KafkaConnection, topics: Mapping[str, Holds], flt: LogFilter, verify: VerifyFn,
                   left_out: list[int] | None = None,
                   owners: Mapping[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
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
                report = verify_partition(topic, partition, values, verify, holds, (owners or {}).get(topic))
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


@dataclass(frozen=True)
class AuditTopics:
    """The audit topics found under a prefix: what each holds, and whose each receipts topic is."""

    roles: dict[str, Holds]
    owners: dict[str, str]


async def audit_topics(conn: KafkaConnection, prefix: str) -> AuditTopics:
    """The audit topics under ``prefix``, found in the cluster's metadata (receipts topics whatever
    partner they belong to); ConfigError when there is none.

    Nothing to verify where audit topics were expected is not "no problems": it is a wrong
    prefix, a wrong cluster, or topics never made.
    """
    names = TopicNames(prefix)
    async with running(reader(conn, "puente-auditor"), conn, "listing the audit topics") as consumer:
        present = sorted(await consumer.topics())
    receipts = [t for t in present if t.startswith(names.all_receipts)]
    owners = {t: t[len(names.all_receipts):] for t in receipts}
    roles: dict[str, Holds] = {}
    if names.decisions in present:
        roles[names.decisions] = "decisions"
    roles.update({t: "receipts" for t in receipts})
    if names.denials in present:
        roles[names.denials] = "denials"
    if not roles:
        raise ConfigError(f"no audit topics under prefix {prefix!r} at {conn.bootstrap} ({names.decisions}, "
                          f"{names.all_receipts}*): check PUENTE_TOPIC_PREFIX and PUENTE_BOOTSTRAP, or run "
                          "`puente topics apply`")
    return AuditTopics(roles, owners)


def signature_checks(keys_dir: Path, verify_files: list[Path] | None) -> VerifyFn:
    """Signature checks for the audit: the given public key files, or every signing key (the
    broker's and the partners' receipt keys) in the keystore ``keys_dir`` (the auditors' own
    folder, ``keystore.auditor_path``). A folder holding none is a configuration error, not a
    verification that fails every record."""
    if not verify_files:
        store = Keystore(keys_dir)
        kinds = (KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
        if not any(parse_key_id(k).kind in kinds for k in store.key_ids()):
            raise ConfigError(f"no signing keys to verify with in {keys_dir}: run `puente keys init`, or import the "
                              "broker's broker-sign-<g> and each partner's <P>-rcpt-<g> public halves with "
                              f"`puente keys import-public FILE.pem --id KEY_ID --dir {keys_dir}`")
        return signature_check(store, *kinds)
    records = [load_key_file(path) for path in verify_files]
    return checker({rec.key_id: rec.ed25519_public() for rec in records})


def _when(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00"))


async def collect_denials(conn: KafkaConnection, names: TopicNames, logs: list[Path], principals: frozenset[str],
                          signer_id: str, sign: Callable[[bytes], bytes], verify: VerifyFn,
                          since: datetime | None = None) -> int:
    """Append the denials in Kafka's authorizer ``logs`` that concern this deployment (from ``since``
    on, when given), and are not yet collected, to its denials topic as broker-signed blocks; how
    many were added.

    It runs as the broker (whose login alone may write the denials topic). One collector writes the
    chain: its transactional id fences any earlier one, and it extends the chain only from a head
    the broker signed, as every chain's owner does.
    """
    entries = []
    for path in logs:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(f"cannot read the authorizer log {path}: {exc.strerror}") from None
        entries += [e for line in text.splitlines() if (e := denial(line)) is not None
                    and concerns(e, names.prefix, principals) and (since is None or _when(e) >= since)]
    tp = TopicPartition(names.denials, 0)
    writer = producer(conn, "puente-denials", transactional_id=denials_transaction(names), enable_idempotence=True,
                      acks="all")
    async with running(writer, conn, f"writing {names.denials}"):
        async with running(reader(conn, "puente-auditor"), conn, f"reading {names.denials}") as consumer:
            seen: set[str] = set()
            head_record = None
            async for rec in read_range(consumer, tp):
                head_record = rec
                doc = parse_record(rec.value)
                for entry in (doc or {}).get("entries") or ():
                    if isinstance(entry, dict):
                        seen.add(str(entry.get("line_sha256")))
        head = ChainHead()
        if head_record is not None:
            problem = head_problem(tp.topic, 0, head_record.value, None, verify)
            if problem is not None:
                raise AuditChainError(f"{tp.topic} cannot be continued: {problem}; run `puente audit verify`")
            head = ChainHead.after(json.loads(head_record.value))
        fresh = sorted({e["line_sha256"]: e for e in entries if e["line_sha256"] not in seen}.values(),
                       key=lambda e: e["at"])
        if not fresh:
            return 0
        chain = ChainWriter(tp.topic, 0, head)
        async with writer.transaction():
            for block in chain.blocks(fresh, signer_id, sign, iso_utc(datetime.now(UTC))):
                await writer.send(tp.topic, block, partition=0)
    return len(fresh)


def ack_deadlines(policy: PolicySet) -> dict[str, int]:
    """Each partner's recall deadline in hours: the shortest any of its agreements sets
    (``recall_ack_hours``), for ``audit.recalls.recall_status``."""
    out: dict[str, int] = {}
    for agreement in policy.agreements.values():
        for partner in agreement.partner_ids:
            out[partner] = min(out.get(partner, agreement.recall_ack_hours), agreement.recall_ack_hours)
    return out
