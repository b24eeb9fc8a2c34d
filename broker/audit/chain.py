"""Hash-chained, checkpointed audit records. Pure: values in, bytes out.

Each chain has a single writer. In the decisions topic a chain is a whole partition,
written by the worker that owns the matching ingress partition; in the access topic
several partners' subscribers share a partition, so each record names its ``chain``
(the partner) and every chain is checked on its own. A record is canonical JSON (sorted keys, no spaces)::

    {"v": 1, "seq": n, "prev": <hash of record n-1>, "kind": ..., ...body..., "hash": <sha256>}

``hash`` is SHA-256 over the canonical JSON of every other field, so editing any
field breaks that record's hash, and removing, inserting or reordering records
breaks ``prev`` or ``seq``. Because SHA-256 is unkeyed, someone who can write the
topic could recompute a whole forged tail; signatures stop that. A *signed* record
carries ``signer`` and ``sig``, an Ed25519 signature over the topic, the partition
and the record (without ``hash`` and ``sig``), so over its ``seq`` and the ``prev``
hash it continues from: it vouches for the whole chain before it.

The broker writes the decisions topic as signed BLOCK records: one per slot batch
(cut into pieces of at most ``BLOCK_ALERTS`` alerts), each holding an ``entries``
list with one entry per ingress record: the alert's shared fields and a
``decisions`` list, one per partner (indexes into the block's ``decision_table``, which
holds each distinct decision once), or a dead letter. One Kafka record and one
signature per batch instead of one record per decision is what keeps the audit
trail cheap; :func:`flatten` turns a block back into one row per decision for
auditors. Receipt chains (written by subscribers, who hold no signing key) are
plain records; the CHECKPOINT kind signs a plain chain's head after the fact.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from policies import DEFAULT_INSTANCE
from puente.errors import ConfigError

GENESIS = "0" * 64
VERSION = 1
# At most this many ingress records per block, which keeps a block far below Kafka's 1 MiB record limit.
BLOCK_ALERTS = 200
# And at most this many bytes, whatever the records hold: blocks are cut further to fit.
MAX_BLOCK_BYTES = 512 * 1024


def canonical(doc: dict[str, Any]) -> bytes:
    """The one byte form of a JSON document that hashes and signatures cover.

    UTF-8 JSON with sorted keys and no spaces, as orjson writes it (its serialiser is about
    eight times faster than the standard library's, which mattered: the audit blocks were the
    largest cost after decoding). Writer and verifier both use this function.
    """
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def sealed(body: bytes, digest: str) -> bytes:
    """The stored bytes of a record: its canonical body (without ``hash``) with the hash appended.

    A record is stored in exactly this form, so a verifier can demand it byte for byte: a record
    with a duplicate key, or one re-encoded by another JSON writer, is not what its owner wrote.
    """
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}'


def seal(doc: dict[str, Any]) -> bytes:
    """The stored bytes of ``doc`` (any ``hash`` in it is replaced by the right one)."""
    body = canonical({k: v for k, v in doc.items() if k != "hash"})
    return sealed(body, hashlib.sha256(body).hexdigest())


def record_hash(doc: dict[str, Any]) -> str:
    """SHA-256 (hex) of a record without its own ``hash`` field."""
    return hashlib.sha256(canonical({k: v for k, v in doc.items() if k != "hash"})).hexdigest()


def checkpoint_payload(topic: str, partition: int, doc: dict[str, Any]) -> bytes:
    """What a record's signature covers: where the chain lives, and the SHA-256 of the record without
    its sig and hash (so a block of hundreds of kilobytes is hashed once, not fed whole to Ed25519)."""
    body = {k: v for k, v in doc.items() if k not in ("hash", "sig")}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    return canonical({"topic": topic, "partition": partition, "record_sha256": digest})


@dataclass
class ChainHead:
    """Where a chain stands: the next sequence number, the last hash, records since the last checkpoint."""

    seq: int = 0
    prev: str = GENESIS
    since_checkpoint: int = 0
    resume: int | None = None
    """For a slot's decision chain read back: the ingress offset after the records its last block took
    (``resume_offset``); None when not known (an empty partition, or a head the writer moved on)."""
    states: int = 0
    """For a slot's decision chain read back: how far its lifecycle partition reached at least when the last
    block committed (the block's ``states``; 0 for a block without one)."""
    resume_ms: int | None = None
    """For a slot's decision chain read back: when Kafka appended the ingress record before ``resume`` (the last
    its last block took), as that block's entry says; None when no entry says."""
    resume_by_ms: int | None = None
    """For a slot's decision chain read back, the heads whose ``resume_ms`` is None: when the last block was
    appended, after every ingress record before ``resume`` the partition held then (the worker compares the
    record before ``resume`` with it, read itself: ``BrokerWorker._remade_ingress``), so that a topic made anew is
    still told; or 0 when that block's last entry is a gap read on from where the partition's log started
    (``_gap_from_log_start``: a log's start never moves back, so the worker asks where it starts now, no time).
    None when neither is known (a block stating no time, read from outside Kafka)."""
    at: str | None = None
    """The time the chain's last record states (its ``at``), which the next record carries as ``prev_at``: a
    chain cut at its start then says when its first record's predecessor was written, which tells a deletion from
    retention's (``broker.audit.verify.PartitionWalk``'s start check). None: no record, or one stating no time."""

    @classmethod
    def after(cls, last: dict[str, Any] | None, appended_ms: int | None = None) -> ChainHead:
        """The head that continues after ``last`` (None: an empty partition). ``appended_ms``: Kafka's append time
        of ``last``'s record, where it is known (else the time the block states dates it, ``resume_by_ms``)."""
        if last is None:
            return cls()
        since = 0 if last.get("kind") == "CHECKPOINT" else int(last.get("since_checkpoint", 1))
        states = last.get("states")
        at = last.get("at")
        written = appended_ms if appended_ms is not None else _ms(at)
        return cls(seq=int(last["seq"]) + 1, prev=str(last["hash"]), since_checkpoint=since,
                   resume=resume_offset(last), states=states if type(states) is int and states >= 0 else 0,
                   resume_ms=_last_taken_ms(last), resume_by_ms=0 if _gap_from_log_start(last) else written,
                   at=at if isinstance(at, str) else None)


@dataclass
class ChainWriter:
    """Appends records to one partition's chain and decides when a checkpoint is due."""

    topic: str
    partition: int
    head: ChainHead = field(default_factory=ChainHead)
    checkpoint_every: int = 500
    chain: str | None = None  # set where several chains share one partition
    keep_days: int | None = None
    """The retention, in days, its writer's settings keep the topic's records for (PUENTE_AUDIT_RETENTION_DAYS):
    each record states it (``keep_days``), beside when the one before it was written (``prev_at``), so a
    chain cut at its start is judged by the retention its records were kept under, raised or lowered since
    (``broker.audit.verify.Retention``). None for a writer that does not know it (a partner's subscriber)."""

    def _start(self, kind: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"v": VERSION, "seq": self.head.seq, "prev": self.head.prev, "kind": kind}
        if self.chain is not None:
            doc["chain"] = self.chain
        if self.head.at is not None:  # when the record before this one was written (``ChainHead.at``)
            doc["prev_at"] = self.head.at
        if self.keep_days is not None:
            doc["keep_days"] = self.keep_days
        return doc

    def append(self, kind: str, body: dict[str, Any]) -> bytes:
        """The bytes of the next record; the head moves on."""
        doc = {**body, **self._start(kind)}
        doc["since_checkpoint"] = self.head.since_checkpoint + 1
        return self._seal(doc, self.head.since_checkpoint + 1)

    def _seal(self, doc: dict[str, Any], since: int) -> bytes:
        # Serialise once: the stored record is the canonical body with its hash appended.
        # The verifier parses it, drops "hash" and re-canonicalises, which gives the same bytes.
        body = canonical(doc)
        digest = hashlib.sha256(body).hexdigest()
        at = doc.get("at")
        self.head = ChainHead(self.head.seq + 1, digest, since, at=at if isinstance(at, str) else None)
        return sealed(body, digest)

    @property
    def checkpoint_due(self) -> bool:
        return self.head.since_checkpoint >= self.checkpoint_every

    def checkpoint(self, signer_id: str, sign: Callable[[bytes], bytes], at: str) -> bytes:
        """A signed CHECKPOINT record vouching for the current head."""
        doc = {**self._start("CHECKPOINT"), "signer": signer_id, "at": at, "covers": self.head.since_checkpoint}
        return self._signed(doc, signer_id, sign)

    def block(self, entries: list[dict[str, Any]], signer_id: str, sign: Callable[[bytes], bytes], at: str,
              states: int | None = None) -> bytes:
        """A signed BLOCK record holding ``entries``, vouching for itself and the chain before it; with
        ``states``, the offset its slot's lifecycle partition reaches at least once the block commits
        (``ChainHead.states``: a slot refuses a lifecycle partition that ends short of it).

        Each decision an entry lists is written once per block, in its ``decision_table``, and
        the entry refers to it by index: the same decision (same partner, outcome, rules and
        reasons) recurs across a batch's alerts, and writing it out each time made the audit
        trail four times the size of the alerts. Decisions are matched by identity (the
        pipeline shares equal decisions' audit fields), so nothing is compared or copied.
        """
        table: list[dict[str, Any]] = []
        index: dict[int, int] = {}
        out: list[dict[str, Any]] = []
        for entry in entries:
            decisions = entry.get("decisions")
            if decisions is None:
                out.append(entry)
                continue
            refs = []
            for decision in decisions:
                i = index.get(id(decision))
                if i is None:
                    i = index[id(decision)] = len(table)
                    table.append(decision)
                refs.append(i)
            out.append({**entry, "decisions": refs})
        doc = {**self._start("BLOCK"), "signer": signer_id, "at": at, "decision_table": table, "entries": out}
        if states is not None:
            doc["states"] = states
        return self._signed(doc, signer_id, sign)

    def blocks(self, entries: list[dict[str, Any]], signer_id: str, sign: Callable[[bytes], bytes], at: str,
               max_bytes: int = MAX_BLOCK_BYTES, states: int | None = None) -> list[bytes]:
        """``entries`` as signed blocks of at most ``BLOCK_ALERTS`` entries and ``max_bytes`` each.

        Kafka refuses a record over its size limit, and a refused audit block aborts the whole
        batch at every retry: so a block that comes out too large is cut in two (the chain is
        set back first), and one entry too large on its own is written with its decisions cut
        short (see ``shrink``). Whatever the input, every block fits.
        """
        out: list[bytes] = []
        for first in range(0, len(entries), BLOCK_ALERTS):
            self._fit(entries[first:first + BLOCK_ALERTS], signer_id, sign, at, max_bytes, out, states)
        return out

    def _fit(self, entries: list[dict[str, Any]], signer_id: str, sign: Callable[[bytes], bytes], at: str,
             max_bytes: int, out: list[bytes], states: int | None = None) -> None:
        head = self.head
        data = self.block(entries, signer_id, sign, at, states)
        if len(data) <= max_bytes:
            out.append(data)
            return
        self.head = head
        if len(entries) > 1:
            half = len(entries) // 2
            self._fit(entries[:half], signer_id, sign, at, max_bytes, out, states)
            self._fit(entries[half:], signer_id, sign, at, max_bytes, out, states)
            return
        out.append(self.block([shrink(entries[0], max_bytes)], signer_id, sign, at, states))

    def _signed(self, doc: dict[str, Any], signer_id: str, sign: Callable[[bytes], bytes]) -> bytes:
        doc["signer"] = signer_id
        doc["sig"] = sign(checkpoint_payload(self.topic, self.partition, doc)).hex()
        return self._seal(doc, 0)


_KEEP_LISTED = 20  # reasons, rules and field changes a shrunk decision keeps


def shrink(entry: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """An entry cut down to fit ``max_bytes`` in a block: each decision keeps its partner, outcome,
    agreement and policy, whether its feed record was sent, which versions it replaced or recalled,
    the version a recall notice carried and the hours its partner had to acknowledge it (``_FACTS``: a
    recall notice not sent must never read as sent, nor its deadline as another policy's),
    and the first few reasons, rules and field changes, with ``truncated``
    saying how many were left out; the entry's own strings are cut short, but for ``ingress``, which the
    broker writes itself (a Kafka topic name is at most 249 characters) and which the slot and end
    checks read (``last_ingress``). (Only an alert built to flood the audit gets here: a normal block
    holds hundreds of entries.)"""

    def cut(values: Any) -> tuple[list[Any], int]:
        items = list(values) if isinstance(values, list) else []
        kept = [v if len(repr(v)) <= 300 else repr(v)[:300] for v in items[:_KEEP_LISTED]]
        return kept, len(items) - len(kept)

    decisions = []
    for decision in entry.get("decisions") or ():
        small = {k: (str(v)[:200] if isinstance(v, str) else v) for k, v in decision.items()
                 if k in ("partner", "decision", "agreement", "policy_version", "feed")}
        small.update(_facts(decision))
        dropped = 0
        for name in ("reasons", "rules", "redacted"):
            small[name], n = cut(decision.get(name))
            dropped += n
        small["truncated"] = dropped
        decisions.append(small)
    out = {k: (v[:200] if isinstance(v, str) and k != "ingress" else v) for k, v in entry.items() if k != "decisions"}
    if "decisions" in entry:
        out["decisions"] = decisions
    if len(canonical(out)) > max_bytes // 2:  # still too large: only what identifies it remains
        # ``refs`` too: a partner's receipts name its reference, which the auditors' tools could not tell apart from
        # no alert without it (and a partner's auditor would read the alert's own id: ``audit_index._scope``).
        # ``version`` and ``action`` too: the worker's replay window is rebuilt from these entries after a restart or
        # a rebalance, and one read as version 1, no recall, would let a replay of the real version (or of the
        # recall) through it; ``reason`` (a category, or a dead letter's reason) too: a recall counts as one for good
        # there only with its reason, and a dead letter's version only as ``invalid``.
        out = {k: out[k] for k in ("kind", "alert_id", "refs", "version", "action", "reason", "ingress", "ingress_ms",
                                   "at") if k in out}
        out["decisions"] = [{k: d[k] for k in ("partner", "decision") if k in d} | _facts(d) | {"truncated": -1}
                            for d in decisions]
    return out


def changes_whole(decision: Mapping[str, Any]) -> bool:
    """Whether a decision entry lists every change its view made to the alert, which an auditor may then read as
    all (a field no change names was kept). ``shrink`` keeps the first ``_KEEP_LISTED`` of each of a decision's
    reasons, rules and changes and counts all it left out together in ``truncated`` (-1: it kept none), so a change
    list shorter than that was kept whole whatever else was cut. Never whole: a change cut to its text (it names
    no field), or a redacted view (DELIVER_REDACTED) with no change listed."""
    redacted = decision.get("redacted")
    listed = redacted if isinstance(redacted, list) else []
    if not all(isinstance(c, dict) and isinstance(c.get("field"), str) and c["field"] for c in listed):
        return False
    if decision.get("decision") == "DELIVER_REDACTED" and not listed:
        return False
    truncated = decision.get("truncated")
    return truncated in (None, 0) or (type(truncated) is int and truncated > 0 and len(listed) < _KEEP_LISTED)


_FACTS = ("sent", "recalls", "supersedes", "notice_version", "ack_hours")


def _facts(decision: dict[str, Any]) -> dict[str, Any]:
    """What a decision says of the feed record beside its outcome, when it is a boolean or an integer (the
    pipeline writes nothing else there): bounded, whatever else the entry holds."""
    return {k: decision[k] for k in _FACTS if type(decision.get(k)) in (bool, int)}


def shown(value: Any, limit: int = 60) -> str:
    """A value from a record, quoted and cut short for a finding or a row: a string by the ``repr`` of
    its start (so control characters are escaped and the quote stays on one line), a number, None or
    a boolean whole when short, anything else by its type alone. Never ``repr`` or ``str`` of a whole
    value: a hostile record may hold megabytes, or lists nested a thousand deep (RecursionError)."""
    if isinstance(value, str):
        text = repr(value[:limit])
    elif value is None or isinstance(value, (bool, float)) or (type(value) is int and -(10**20) < value < 10**20):
        text = repr(value)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


CUT = "\u2026"
"""What ends a string ``bounded`` cut short (an ellipsis)."""
_SHORT_ESCAPES = frozenset('"\\\b\t\n\f\r')


def _json_bytes(char: str) -> int:
    """The bytes ``char`` takes inside a JSON string as ``canonical`` writes it (orjson: UTF-8, each control
    character escaped, six bytes as ``\\u0001`` but for the five with a two-byte escape, as ``"`` and ``\\``)."""
    if char in _SHORT_ESCAPES:
        return 2
    code = ord(char)
    return 6 if code < 0x20 else 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def bounded(text: str, limit: int) -> str:
    """``text`` whole when it takes at most ``limit`` bytes inside a JSON string as written (``_json_bytes``); else
    its longest start that, with ``CUT`` after it, does: cut between two characters, never inside one's UTF-8 or
    its escape. A bound in characters was none in bytes: ``\\x01`` takes six, an emoji four."""
    if len(text) * 6 <= limit:
        return text  # no character takes more than six bytes
    keep, used, end = limit - _json_bytes(CUT), 0, 0
    for i, char in enumerate(text):  # at most limit + 1 characters: each takes a byte at least
        used += _json_bytes(char)
        if used > limit:
            return text[:end] + CUT
        if used <= keep:
            end = i + 1
    return text


def listed(value: Any) -> list[Any]:
    """``value`` when it is a list, else no items: a record's ``entries`` or ``decisions`` may be anything
    (``audit verify`` reports a block whose are not lists; readers of such a record skip them)."""
    return value if isinstance(value, list) else []


MAX_PARTITION = 2**31 - 1  # Kafka's partition numbers are int32
MAX_OFFSET = 2**63 - 1  # and its offsets int64


def ingress_of(where: object) -> tuple[str, int, int] | None:
    """(topic, partition, offset) of an audit entry's ``ingress`` ("<topic>:<partition>:<offset>"), or None."""
    if not isinstance(where, str):
        return None
    rest, _, offset = where.rpartition(":")
    topic, _, part = rest.rpartition(":")
    # Kafka's partitions are int32 and its offsets int64: longer digit strings are no place in Kafka (and
    # a number past 64 bits is more than an index's SQLite column, or int(), takes).
    if not (topic and part.isascii() and part.isdigit() and len(part) <= 10 and offset.isascii()
            and offset.isdigit() and len(offset) <= 19):
        return None
    number, at = int(part), int(offset)
    return (topic, number, at) if number <= MAX_PARTITION and at <= MAX_OFFSET else None


def last_ingress(doc: dict[str, Any] | None) -> tuple[str, int, int] | None:
    """The newest ingress record a block's entries name: (topic, partition, offset), or None when none does.

    A slot's blocks hold the entries of one ingress partition, one entry per record it took (decided
    or dead-lettered): the newest entry of a slot's last block is the last record the slot took, where it
    reads on from (``resume_offset``), and at or past the record before the broker group's committed offset."""
    found = [where for entry in listed((doc or {}).get("entries")) if isinstance(entry, dict)
             if (where := ingress_of(entry.get("ingress"))) is not None]
    return max(found, key=lambda w: w[2]) if found else None


def _last_taken_ms(doc: dict[str, Any]) -> int | None:
    """The append time the entry naming a block's last ingress record (``last_ingress``) gives it, or None. A
    decided alert's entry (kind ALERT) holds the record's own time; a dead letter's is capped a little ahead of the
    worker's clock, so it is the record's own only when it is no later than the entry's own time (``at``), and an
    ``unreadable`` one's is none (a Kafka node asked for the record at its time would inflate its batch). A GAP
    entry's ``ingress_ms`` is the slot's newest time (for the replay window), not the record's: its ``taken_ms``
    is, where the gap skipped nothing and the time was known when it was written (``states-lost``,
    ``audit-expired``, ``audit-deleted``, ``deliveries-lost``). A gap read past records retention deleted names the
    last of them, which has none."""
    found = last_ingress(doc)
    if found is None:
        return None
    for entry in listed(doc.get("entries")):
        if isinstance(entry, dict) and ingress_of(entry.get("ingress")) == found:
            kind = entry.get("kind")
            if kind == "GAP":
                taken = entry.get("taken_ms")
                return taken if type(taken) is int and taken >= 0 else None
            ms = entry.get("ingress_ms")
            if type(ms) is not int:
                return None
            if kind == "ALERT":
                return ms
            if kind == "DEAD_LETTER" and entry.get("reason") == "unreadable":
                # A batch the broker refused unread (``broker.kafka.unreadable``), perhaps compressed: a Kafka
                # node asked for the first record at its time inflates the batch whole to answer.
                return None
            if kind == "DEAD_LETTER" and (at := _ms(entry.get("at"))) is not None and ms <= at:
                return ms
            return None
    return None


def _gap_from_log_start(doc: dict[str, Any]) -> bool:
    """Whether the entry naming a block's last ingress record (``last_ingress``) is a gap read on from where its
    ingress partition's log started then (reason ``deleted``, or ``topic-remade`` at a new topic's start above
    0: ``BrokerWorker._gap``): the slot stands at that start, and the partition held no record before it."""
    found = last_ingress(doc)
    if found is None:
        return False
    for entry in listed(doc.get("entries")):
        if isinstance(entry, dict) and ingress_of(entry.get("ingress")) == found:
            return entry.get("kind") == "GAP" and entry.get("reason") in ("deleted", "topic-remade")
    return False


def _ms(value: object) -> int | None:
    """Unix milliseconds of an ISO 8601 time with its offset, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int(parsed.timestamp() * 1000) if parsed.tzinfo is not None else None


def resume_offset(doc: dict[str, Any] | None) -> int | None:
    """The ingress offset a slot reads on from when ``doc`` is the last block of its audit partition, or
    None when it is no such block.

    A slot's block holds one entry per ingress record it took, and commits in the same transaction as
    the alert states of those records and their feed records (kept as unsent,
    ``broker.lifecycle.outbox_records``): the block, not the group's committed offset, is
    where the slot stands. It reads on past the newest record the entries name; after a gap at a topic
    made anew (a ``GAP`` entry that names no record) from the entry's ``next_offset``, 0."""
    found = last_ingress(doc)
    if found is not None:
        return found[2] + 1
    for entry in listed((doc or {}).get("entries")):
        if isinstance(entry, dict) and entry.get("kind") == "GAP" and entry.get("next_offset") == 0:
            return 0
    return None


INSTANCE = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A subscriber instance's name, as its receipt chain and transactional id carry it."""
MAX_CHAIN_NAME = 64 + 1 + 64
"""The longest receipt chain name a subscriber writes: a partner's id (a policy code, at most 64
characters), a slash and its instance's name (``INSTANCE``)."""


INSTANCE_RULE = "--instance must be 1-64 letters, digits, '-', '_' or '.'"


def receipt_chain(partner: str, instance: str = DEFAULT_INSTANCE) -> str:
    """The receipt chain a subscriber instance writes: the partner's id, with the instance's name
    after a slash unless it is the default one. A name no walk of the audit keeps a chain for
    (``INSTANCE``) is refused before anything is written."""
    if INSTANCE.fullmatch(instance) is None:
        raise ConfigError(INSTANCE_RULE)
    return partner if instance == DEFAULT_INSTANCE else f"{partner}/{instance}"


def chain_owner(chain: str) -> str:
    """The partner a receipt chain belongs to: ``COL`` for ``COL`` and ``COL/backup``."""
    return str(chain).split("/", 1)[0]


def flatten(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """An audit record as auditors read it: one row per decision, dead letter or receipt.

    A BLOCK gives one DECISION row per (alert, partner) and one DEAD_LETTER row per
    refused record, each with the block's ``seq`` and the alert's shared fields; a
    decision that sent the partner a feed record also has ``ref``, the id by which that
    partner knows the alert (``policies.alert_reference``; each partner's row its own,
    never another's); any other record is its own row. A receipt is listed under the partner whose chain holds it,
    whatever partner it names (``audit verify`` reports a receipt naming another).
    """
    if doc.get("kind") != "BLOCK":
        chain = doc.get("chain")
        if doc.get("kind") == "RECEIPT" and chain is not None and doc.get("partner") != chain_owner(chain):
            return [{**doc, "partner": chain_owner(chain)}]
        return [doc]
    rows: list[dict[str, Any]] = []
    table = doc.get("decision_table")
    for entry in listed(doc.get("entries")):
        if not isinstance(entry, dict):
            continue
        decisions = entry.get("decisions")
        shared = {k: v for k, v in entry.items() if k not in ("decisions", "refs")}
        shared["block"] = doc.get("seq")
        refs = entry.get("refs")
        refs = refs if isinstance(refs, dict) else {}
        if decisions is None:
            rows.append(shared)
            continue
        for decision in listed(decisions):
            found = resolve_decision(table, decision)
            if found is None:
                rows.append({**shared, "kind": "DECISION", "decision": "UNREADABLE",
                             "reasons": [f"the block's decision table has no entry {shown(decision)}"]})
            else:
                row = {**shared, "kind": "DECISION", **found}
                ref = refs.get(found.get("partner"))
                if isinstance(ref, str):
                    row["ref"] = ref
                rows.append(row)
    return rows


def resolve_decision(table: Any, ref: Any) -> dict[str, Any] | None:
    """A block entry's decision: an index into the block's ``decision_table`` (or, in blocks
    written before the table, the decision itself); None when it does not resolve."""
    if isinstance(ref, dict):
        return ref
    if type(ref) is int and isinstance(table, list) and 0 <= ref < len(table) and isinstance(table[ref], dict):
        return table[ref]  # type: ignore[no-any-return]
    return None


def unresolved_decisions(doc: dict[str, Any]) -> int:
    """How many of a BLOCK's decision references do not resolve (0 for a sound block). A ``decisions``
    that is present but not a list counts as one: none of what it should list can be read."""
    table = doc.get("decision_table")
    bad = 0
    for entry in listed(doc.get("entries")):
        decisions = entry.get("decisions") if isinstance(entry, dict) else None
        if decisions is not None and not isinstance(decisions, list):
            bad += 1
            continue
        bad += sum(1 for ref in listed(decisions) if resolve_decision(table, ref) is None)
    return bad
