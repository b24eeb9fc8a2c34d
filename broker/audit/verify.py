"""Walk audit chains and report every gap, edit, reordering or bad signature. Pure.

What a walk cannot see from the topic alone: records dropped from the *end* of a chain, after its
last signed record, leave no trace there (the chain that remains is whole). A report therefore
names, per chain, the last signed record it found sound (``PartitionReport.vouched``): that is how
far the topic vouches for itself. For the broker's decision chains, Kafka keeps a witness elsewhere:
the broker commits its group's offset of an ingress partition only once the block that took the records
before it has committed, so the chain must reach the record just before that offset (``end_check``).
The offset trails the chain by what the broker took since its last commit of offsets that went through
(``broker.worker.COMMIT_EVERY_S``, and at each stop): records lost from within that stretch of the end are
not seen.

Nor can a walk tell retention from a deletion at a chain's *start* from the topic alone: Kafka deletes a
partition's oldest records (``audit_retention_days``, or an admin's DeleteRecords) and its log then starts
above offset 0. A walk told where the log starts (``PartitionWalk``'s ``log_start``) takes each chain's first
record held there as where the chain now starts, and says so in what it vouches for (``Vouched.since``); with
the log starting at 0, a chain that does not start at seq 0 is a gap. Each record a chain writer makes states when
the record before it was written (``prev_at``, ``ChainWriter``) and, where its writer knows it, the retention it is
kept under (``keep_days``): a chain whose first record held says its predecessor was written within that retention
(the shorter of it and today's, less a margin for clocks: ``Retention``) lost it to a deletion, not to retention
(``PartitionWalk._start_check``). A record missing either (an earlier release's; a partner's receipts, which state
no ``keep_days``) says nothing, and its chain's start is not checked: a receipts partition cut at its start, by
retention or by hand, is no finding here, and reaches the recall judgement instead (``broker.auditor.read_log``'s
``receipts_cut``, ``broker.audit.recalls``), where a recall of a view delivered before the cut is never acknowledged.
A decisions chain whose start is retention's says when the newest block retention took was written (``prev_at``):
receipts outlive their deliveries' blocks (Kafka deletes each topic's segments on its own schedule), and one naming
no delivery held, dated before then, is matched as a delivery that expired, never a finding (``decisions_start``,
``receipts.match_receipt``).

No record is read with ``str``/``repr`` of its values or iterated before its type is checked: a
record someone else wrote may hold anything JSON can (``entries: 5``, a signer nested a thousand
deep), and that is a finding at that record, never a crash of the walk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from broker.audit.chain import (
    GENESIS,
    MAX_CHAIN_NAME,
    MAX_OFFSET,
    MAX_PARTITION,
    canonical,
    chain_owner,
    checkpoint_payload,
    last_ingress,
    sealed,
    shown,
    unresolved_decisions,
)
from broker.crypto.keys import BROKER_OWNER, KeyKind, newer_generation, parse_key_id
from broker.crypto.signing import SIGNATURE_LEN
from puente.errors import KeyMaterialError
from puente.wire import Unreadable, iso_utc


@dataclass(frozen=True)
class Finding:
    """One problem at one place in one chain."""

    topic: str
    partition: int
    offset: int
    problem: str


@dataclass(frozen=True)
class StartFinding(Finding):
    """A chain's start check's finding (``PartitionWalk._start_check``): given at its first record held, which is
    sound; the records before it were deleted. A reader listing rows (``broker.auditor.read_log``, the audit
    index) keeps that record's rows and says records are missing."""


MAX_LISTED = 1_000
"""The most findings a walk lists per partition (``PartitionReport.add``); past it they are counted."""


@dataclass(frozen=True)
class ChainFinding(Finding):
    """A finding about chain ``chain``, given at one of its records rather than at the record being walked."""

    chain: str | None = None


@dataclass(frozen=True)
class Vouched:
    """The last signed record of one chain that a walk found sound: how far the topic vouches for that
    chain. Records dropped after it cannot be seen from the topic (module docstring)."""

    chain: str | None  # None: the broker's chain
    seq: int
    at: str | None  # the time it states, when it states one
    offset: int
    since: int = 0  # the seq of its first record held: above 0 where the log starts after its first records

    def describe(self) -> str:
        """``signed up to seq 41 (2026-11-01T10:00:00Z)``, one line whatever the record says; ``, from seq 12
        ...`` when the chain's first records are no longer held (``ChainState.first_seq``)."""
        stated = f" ({plain(self.at, 40)})" if self.at is not None else ""
        whose = f"chain {plain(self.chain)} " if self.chain is not None else ""
        cut = (f", from seq {self.since} on, where the partition's log now starts (its older records expired or were "
               "deleted)") if self.since else ""
        return f"{whose}signed up to seq {self.seq}{stated}{cut}"


def falls_short(last: int, committed: int | None) -> bool:
    """Whether a chain whose newest entry names offset ``last`` (-1: none) ends before the record just
    below ``committed``, the group offset committed after it (None: not known, so not short).

    A group's offset is committed only after the chain's records before it, so a whole chain reaches
    ``committed - 1``. Ending earlier means records dropped from its end, or offsets moved forward past
    records never handled; ending later is not short (offsets moved back make records come again).
    The one rule the broker applies to a slot's head before extending it (``broker.worker.head_behind``)
    and the auditors apply to every chain's end (``EndCheck.short``)."""
    return committed is not None and last + 1 < committed


@dataclass(frozen=True)
class EndCheck:
    """A chain's end against the consumer group offset committed after it: a decision chain's last
    block against the broker group's committed offset of the ingress partition it decided
    (``end_check``), or a partner's receipts against its subscriber group's committed offset of a feed
    partition (``receipt_ends``)."""

    source: str  # "<topic>:<partition>": the ingress partition (decisions) or the feed partition (receipts)
    last: int  # the newest offset there a sound record names; -1: none does
    committed: int | None  # the group's committed offset there; None when this login sees none settled
    unsettled: bool = False  # a transaction open on the chain's partition did not end: what it commits is unread
    group: str | None = None  # receipts: the partner's subscriber group; None: the broker group
    why: str | None = None  # why the end cannot be checked at all, when that is known
    held: tuple[int, int] | None = None  # the source partition's log (start, end), when no chain names it

    @property
    def checked(self) -> bool:
        return self.committed is not None and not self.unsettled and self.why is None

    @property
    def short(self) -> bool:
        """Records the group has committed past are missing from the chain's end."""
        return self.checked and falls_short(self.last, self.committed)

    @property
    def of_receipts(self) -> bool:
        return self.group is not None

    def _who(self) -> str:
        return "the broker group" if self.group is None else f"the subscriber group {plain(self.group, 120)}"

    def problem(self) -> str:
        gap = f"{self.last + 1} to {(self.committed or 0) - 1}"
        if self.of_receipts:
            reach = (f"the partner's sound receipts reach offset {self.last} there" if self.last >= 0
                     else "no sound receipt names any record there")
            return (f"{self._who()} has committed offset {self.committed} of feed {plain(self.source, 120)}, but "
                    f"{reach}: receipts of the feed records from offset {gap} are missing from the end of the "
                    "partner's receipt chains (records dropped), or the group's offsets were moved forward past "
                    "records never received")
        return (f"the chain ends with ingress {plain(self.source, 120)} offset {self.last}, but the broker group "
                f"has committed offset {self.committed} there: the decisions of offsets {gap} are missing from the "
                "chain's end (records dropped after it), or the group's offsets were moved forward past records "
                "never decided")

    def describe(self) -> str:
        if self.held is not None and self.why is not None:
            return (f"{plain(self.source, 120)} holds offsets {self.held[0]} to {self.held[1] - 1}; {self.why}: "
                    "not checked")
        if self.of_receipts:
            where = (f"receipts reach feed {plain(self.source, 120)} offset {self.last}" if self.last >= 0
                     else f"no sound receipt names feed {plain(self.source, 120)}")
        else:
            where = f"ends at ingress {plain(self.source, 120)} offset {self.last}"
        if self.why is not None:
            return f"{where}; {self.why}: end not checked"
        if self.committed is None:
            return f"{where}; no settled committed offset of {self._who()} there: end not checked"
        if self.unsettled:
            return (f"{where}, short of {self._who()}'s committed offset {self.committed}, while a transaction "
                    "open on the chain's partition did not end: end not checked (run verify again)")
        if self.short:
            return f"{where}, short of {self._who()}'s committed offset {self.committed}"
        if not self.of_receipts and self.committed is not None and self.last + 1 > self.committed:
            # The broker commits its group's offsets a little behind its blocks (``broker.worker.COMMIT_EVERY_S``).
            return f"{where}, at or past {self._who()}'s committed offset {self.committed}, which trails it"
        return f"{where}, as {self._who()}'s committed offset {self.committed} says"


def end_check(last: dict[str, Any] | None, committed: Mapping[tuple[str, int], int]) -> EndCheck | None:
    """How a decisions partition's last block (``last``, its newest record naming an ingress record)
    compares with the broker group's committed ingress offsets; None when no block names one.

    The broker commits an ingress offset only after the block that took the records before it
    committed, so a whole chain reaches the record just before the committed offset. One that ends
    earlier lost records from its end, which the walk itself cannot see, or the offsets were moved
    forward past records never decided: either way alerts have no decision on record. One that ends
    later is not short: the offset trails the chain by what the broker took since its last commit of
    offsets (or they were moved back, and the broker reads on from its chain's head all the same)."""
    found = last_ingress(last)
    if found is None:
        return None
    topic, partition, offset = found
    return EndCheck(f"{topic}:{partition}", offset, committed.get((topic, partition)))


def unnamed_ingress(reports: list[PartitionReport], ends: Mapping[tuple[str, int], int]) -> list[PartitionReport]:
    """A report, with one finding, for each ingress partition the broker group has committed past its first
    record while no decision chain's end names it: its whole chain is gone (a partition emptied, or all of it
    unsound), which no walk of what remains can see. Each ingress partition has one slot, whose chain's last
    block names it (``end_check``)."""
    named = {r.end.source for r in reports if r.end is not None and not r.end.of_receipts}
    out = []
    for (topic, partition), committed in sorted(ends.items()):
        if committed > 0 and f"{topic}:{partition}" not in named:
            report = PartitionReport(topic, partition)
            report.findings.append(Finding(topic, partition, committed - 1, (
                f"the broker group has committed offset {committed} here, but no sound decision chain records "
                "any of this partition's records: its chain is missing or unsound")))
            out.append(report)
    return out


MARKERS_NOTE = ("offsets alone cannot tell records from transaction markers and aborted records, and this login "
                "may not read the partition")
"""Why a partition's log offsets never prove a record missing (``unaccounted_ingress``, ``undelivered_feeds``):
adapters and the broker write transactionally, so every transaction leaves a marker on each partition it wrote (one
offset, no record), and an aborted one leaves its records and its marker, none of which anyone reads committed."""


def unaccounted_ingress(reports: list[PartitionReport], spans: Mapping[tuple[str, int], tuple[int, int]],
                        committed: Mapping[tuple[str, int], int]) -> list[PartitionReport]:
    """A report, its end not checked, for each ingress partition whose log holds offsets (``spans``: (topic,
    partition) -> (log start, log end), as Kafka lists them) that no sound decision chain's end names (``reports``)
    and no broker group offset (``committed``) vouches for.

    Such a partition's records were never decided as far as anything left can tell: the broker not yet run (or
    behind with its group gone), or the decisions topic and the broker group's offsets both deleted, which would
    otherwise read as "no problems" (the group's offsets are what ``unnamed_ingress`` judges by, and an operator can
    delete them). The offsets cannot tell those apart, nor prove a record there (``MARKERS_NOTE``), so it is not
    checked, never sound. A partition a chain names, or the group has committed, is judged by its end
    (``end_check``, ``unnamed_ingress``): a chain whose group offset is gone reads "end not checked" already."""
    named = {r.end.source for r in reports if r.end is not None and not r.end.of_receipts}
    out = []
    for (topic, partition), (start, end) in sorted(spans.items()):
        source = f"{topic}:{partition}"
        if end > start and source not in named and committed.get((topic, partition)) is None:
            why = ("no sound decision chain names any of them and the broker group has committed no offset there: "
                   "check whether the decisions topic and the broker group's offsets were deleted, or the broker "
                   f"has not yet run; {MARKERS_NOTE}")
            out.append(PartitionReport(topic, partition, end=EndCheck(source, -1, None, why=why, held=(start, end))))
    return out


def undelivered_feeds(spans: Mapping[tuple[str, int], tuple[int, int]], sent_to: Container[str],
                      group: Callable[[str], str]) -> list[PartitionReport]:
    """A report, its end not checked, for each feed partition whose log holds offsets (``spans``, as for
    ``unaccounted_ingress``) while no sound decision block records any delivery to its feed topic (``sent_to``).

    The broker writes a feed record in the transaction of the block recording its delivery, so a feed holding
    records no block accounts for is no lag: its decisions were deleted (the decisions topic remade, or expired
    with retention), or something else wrote the feed. The offsets alone cannot prove a record there
    (``MARKERS_NOTE``): not checked, never sound. ``group`` names a feed's subscriber group. Deliveries are not
    recorded with their feed offset, so a feed to which some delivery is recorded is not judged here: its
    partner's receipts are, against the subscriber group (``receipt_ends``)."""
    out = []
    for (topic, partition), (start, end) in sorted(spans.items()):
        if end > start and topic not in sent_to:
            why = ("no sound decision block records any delivery to this feed: check whether the decisions topic was "
                   f"deleted or its blocks expired, and who else may write the feed; {MARKERS_NOTE}")
            out.append(PartitionReport(topic, partition, end=EndCheck(f"{topic}:{partition}", -1, None, group=group(
                topic), why=why, held=(start, end))))
    return out


def missing_topic(topic: str, holds: str) -> PartitionReport:
    """A report, with one finding, for an audit topic the deployment plans that the cluster does not hold
    (``TopicNames.audit_roles``): deleted outright, never made, or hidden from this login. None of its
    records can be checked, and nothing else would say so: an absent topic walks as no partition at all."""
    report = PartitionReport(topic, 0)
    report.findings.append(Finding(topic, 0, 0, (
        f"this audit topic (it holds the {holds}) is not in the cluster: deleted, never made, or not visible to "
        "this login, so none of its records can be checked; check `puente topics plan` and `puente acls plan`")))
    return report


_FEED_PLACE = re.compile(r"([A-Za-z0-9._-]{1,249}):(\d{1,9}):(\d{1,19})", re.ASCII)  # Kafka's topic names


def feed_place(value: Any) -> tuple[tuple[str, int], int] | None:
    """A receipt's ``feed`` (``"<topic>:<partition>:<offset>"``) as ((topic, partition), offset); None
    when it is not of that form (it is the partner's word, and a record may hold anything)."""
    if not isinstance(value, str) or (m := _FEED_PLACE.fullmatch(value)) is None:
        return None
    partition, offset = int(m.group(2)), int(m.group(3))
    if partition > MAX_PARTITION or offset > MAX_OFFSET:  # no place in Kafka (nor in an index's SQLite)
        return None
    return (m.group(1), partition), offset


@dataclass(frozen=True)
class FeedEnds:
    """The partners' subscriber groups' committed feed offsets (``broker.auditor.subscriber_ends``):
    (feed topic, partition) -> offset, read for the feed topics in ``asked``; ``feeds`` is what every
    feed topic's name starts with (``TopicNames.feeds``), ``readers`` each feed topic's partner as the
    policy gives it (``topology.feed_readers``; empty when the policy could not be read: no end is
    then checked)."""

    committed: dict[tuple[str, int], int]
    asked: frozenset[str]
    feeds: str
    readers: dict[str, str]


@dataclass(frozen=True)
class GroupEnds:
    """What chain ends are checked against, read before the chains are (``broker.auditor.group_ends``):
    the broker group's committed ingress offsets (``ingress``), the subscriber groups' committed feed
    offsets (``feeds``), and why any of them could not be read (``refused``: those ends are then "not
    checked", never sound)."""

    ingress: dict[tuple[str, int], int]
    feeds: FeedEnds
    refused: tuple[str, ...] = ()


_DAY_MS = 86_400_000
RETENTION_MARGIN_MS = _DAY_MS
"""How much longer ago than the retention a record must have been written for its deletion to be retention's
(``Retention.since``): a day, more than a writer's clock, the auditor's and Kafka's nodes' may differ by. Kafka
deletes a segment only once its newest record is older than the retention."""


@dataclass(frozen=True)
class Retention:
    """What the start check (``PartitionWalk._start_check``) judges a chain's cut start by: the audit topics'
    retention as the auditor's settings give it now (PUENTE_AUDIT_RETENTION_DAYS, every audit topic's), and now."""

    days: int
    now_ms: int
    topics: Mapping[str, int] = field(default_factory=dict, hash=False, compare=False)
    """Each topic's own ``retention.ms`` as Kafka held it when read (-1: kept for ever); a topic absent was not
    read. What a chain whose records state no ``keep_days`` (receipts) is judged by: the auditor's setting is not
    what a partner's receipts topic keeps them for (``topics apply`` leaves one kept for ever as it is)."""

    @classmethod
    def now(cls, days: int) -> Retention:
        return cls(days, int(datetime.now(UTC).timestamp() * 1000))

    def topic_since(self, topic: str | None) -> int | bool | None:
        """For a record of ``topic`` stating no ``keep_days``: Unix ms after which one appended cannot yet have
        expired under the topic's own retention, less ``RETENTION_MARGIN_MS``; True when the topic keeps records
        for ever (nothing of it ever expired: a record gone was deleted); None when its retention was not read
        (nothing to judge by: not checked, never the auditor's setting, which is not the topic's)."""
        kept_ms = self.topics.get(topic) if topic is not None else None
        if kept_ms is None:
            return None
        if kept_ms < 0:
            return True
        return self.now_ms - kept_ms + RETENTION_MARGIN_MS

    def since(self, kept_days: int) -> int:
        """Unix ms after which a record written cannot yet have expired, for a record its writer kept under
        ``kept_days`` (its ``keep_days``): under the shorter of that and today's setting, less
        ``RETENTION_MARGIN_MS``. A retention raised since keeps the records cut under the shorter one from
        reading as deleted; one lowered since is today's. Only a retention lowered by hand on the topic, below
        both, deletes a record this says could not have expired."""
        return self.now_ms - min(self.days, kept_days) * _DAY_MS + RETENTION_MARGIN_MS


def expired_start(doc: dict[str, Any], retention: Retention) -> bool | None:
    """What took the records before a chain's first record held ``doc``, by when it says its predecessor was written
    (``prev_at``) and the retention it was kept under (``keep_days``): retention (True: written before
    ``Retention.since``), a deletion (False), or not said (None: it states neither). The start check's one rule
    (``PartitionWalk._start_check``), which ``decisions_start`` reads too."""
    prev, kept = when(doc.get("prev_at")), doc.get("keep_days")
    if prev is None or type(kept) is not int or kept <= 0:
        return None
    return int(prev.timestamp() * 1000) < retention.since(kept)


def emptied(retention: Retention, appended_ms: int | None, newest_ms: int | None, prev_at: Any,
            kept: Any, topic: str | None = None) -> bool | None:
    """What took every record of a chain whose partition's log now starts past its newest record (the partition
    holds none of it), judged by that newest record as a reader that read it knows it: a deletion (True) when it
    was written since retention could take it, retention (False) when before, None when nothing read says: not
    checked, never sound.

    Kafka's time judges first: ``appended_ms``, when Kafka appended the newest record read of the chain
    (LogAppendTime, the audit topics' timestamp type, is what retention deletes by; None: not known), against the
    retention it was kept under, its ``keep_days`` (``kept``) where it states one, else its ``topic``'s own
    retention as read from Kafka (``Retention.topic_since``: a receipt states none, and a partner's receipts topic
    may be kept for ever, or longer or shorter than PUENTE_AUDIT_RETENTION_DAYS): kept for ever, the records were
    deleted (True); not read, not checked (None). A
    writer's clock running slow cannot make a deletion look like expiry there. Only where Kafka's time is not
    known (an index that read the record before it kept it), the writer's own word judges, and only with its
    ``keep_days``: its time (``newest_ms``) or, a lower bound, its ``prev_at`` (its predecessor's, no later);
    the partial case's rule (``expired_start``) applied to the record after the last one deleted, which does not
    exist. A walk with no earlier state (`audit verify`) has no such record to judge by: every partition emptied
    past offset 0 is not checked there (``emptied_unchecked``)."""
    stated = type(kept) is int and kept > 0
    if appended_ms is not None:
        if stated:
            return appended_ms >= retention.since(kept)
        since = retention.topic_since(topic)
        return since if since is None or type(since) is bool else appended_ms >= since
    if not stated:
        return None
    since = retention.since(kept)
    if newest_ms is not None:
        return newest_ms >= since
    prev = when(prev_at)
    if prev is not None and int(prev.timestamp() * 1000) >= since:
        return True
    return None


def emptied_deleted(topic: str, partition: int, log_start: int, chain: str | None, seq: Any, kept: int | None,
                    retention: Retention) -> StartFinding:
    """The finding of a chain whose every record held was deleted, not expired (``emptied`` True), at the log
    start: no record is there to carry it, and the next one written will not say what went before it. ``kept``:
    the newest record's ``keep_days`` (None: it states none, today's setting judged it)."""
    label = f"chain {plain(chain)}" if chain is not None else "the chain"
    kept_ms = retention.topics.get(topic) if kept is None else None
    if kept_ms is not None and kept_ms < 0:
        within = "which its topic keeps for ever (retention.ms=-1)"
    else:
        days = min(retention.days, kept) if kept is not None else (kept_ms or 0) // _DAY_MS
        within = f"within the retention it was kept under ({days:,} days, less a day for clocks)"
    return StartFinding(topic, partition, log_start, (
        f"{label} holds no record: the partition's log starts at offset {log_start}, past its newest record (seq "
        f"{plain(str(seq), 20)}), which was written {within}: every record of it was deleted, not expired "
        "(DeleteRecords, or the topic's retention lowered by hand)"))


EMPTIED_REMEDY = {
    "queries": "if retention took them (no query written for PUENTE_AUDIT_RETENTION_DAYS), `puente audit serve "
               "--new-chain` begins a new chain",
    "denials": "if retention took them (no denial collected for PUENTE_AUDIT_RETENTION_DAYS), `puente audit "
               "collect-denials --new-chain` begins a new chain",
    "decisions": "if retention took them, the broker's next start (`puente broker run`) begins a new chain there "
                 "with a GAP entry saying so, once its ingress partition has a committed offset",
    "receipts": "the partner's next receipt starts the partition again; until then it stays not checked here, and "
                "only an audit index that read those receipts before they went (`puente audit index`) judges it, by "
                "the receipts topic's retention.ms",
}
"""Per what a partition holds (``Holds``), what makes a partition emptied past offset 0 checked again: the remedy
``emptied_unchecked`` names."""


INDEX_RECEIPTS_REMEDY = ("the index never read those receipts before they went (rebuilding it from the topics' "
                         "start cannot bring them back), or could not read the receipts topic's retention.ms to judge "
                         "them by (check the auditor's login may describe its settings); else the partner's next "
                         "receipt starts the partition again")
"""What the audit index says of an emptied receipts partition it could not judge: never to run the index, which
is what said it."""


def emptied_unchecked(topic: str, partition: int, log_start: int, holds: str | None, *, index: bool = False) -> str:
    """Why a partition that holds no record while its log starts past offset 0 is not checked (``emptied``): every
    record it held was deleted, by retention or by hand, and nothing held tells which. It names what really
    checks it again for what it holds (``EMPTIED_REMEDY``; ``index``: said by the audit index, whose receipts
    remedy is ``INDEX_RECEIPTS_REMEDY``), and to restore the topic where it was a deletion."""
    what = f" (it holds the {holds})" if holds else ""
    remedy = INDEX_RECEIPTS_REMEDY if index and holds == "receipts" else EMPTIED_REMEDY.get(holds or "")
    how = f"{remedy}; if by hand, restore the topic" if remedy else "restore the topic if records were deleted by hand"
    return (f"{topic}[{partition}]{what} holds no record, but its log starts at offset {log_start}: every record of "
            f"it was deleted, by retention or by hand, and no record read says which; its records are not checked "
            f"({how})")


def emptied_kept_for_ever(topic: str, partition: int, log_start: int) -> StartFinding:
    """The finding of a receipts partition emptied past offset 0 whose topic keeps records for ever
    (retention.ms=-1): nothing of it ever expired, so its records were deleted, a finding even to a walk with no
    earlier state, never merely not checked."""
    return StartFinding(topic, partition, log_start, (
        f"{topic}[{partition}] holds no record, but its log starts at offset {log_start}, and the topic keeps its "
        "records for ever (retention.ms=-1): every receipt of it was deleted, not expired (DeleteRecords); restore "
        "the topic"))


def emptied_check(topic: str, partition: int, log_start: int, read: bool, holds: str | None) -> str | None:
    """The one rule for a walk with no earlier state (`audit verify`, `audit log`, `audit recalls`): a partition
    whose log starts past offset 0 and from which it ``read`` no record had every record deleted, by retention or by
    hand, which nothing it holds tells apart: why it is not checked (``emptied_unchecked``), never sound; None for
    any other."""
    return emptied_unchecked(topic, partition, log_start, holds) if log_start > 0 and not read else None


@dataclass(frozen=True)
class DecisionsStart:
    """A decisions partition whose log starts above offset 0, as its first record held tells (``decisions_start``).

    ``decided_before`` (Unix ms, the broker's clock) is set only where retention took the records before it: every
    delivery those records decided was decided by then, so a receipt naming a delivery no decision held records,
    dated before it (give or take ``receipts.CLOCK_SKEW``), may be the receipt of one that expired with its decision
    (``receipts.match_receipt``'s ``expired_before``). None where a deletion took them (the start check's finding),
    or where nothing held says which: such a receipt stays a finding."""

    topic: str
    partition: int
    log_start: int
    offset: int  # its first record held
    decided_before: int | None


def decisions_start(topic: str, partition: int, log_start: int, offset: int, value: bytes, appended_ms: int | None,
                    verify: VerifyFn, retention: Retention) -> DecisionsStart:
    """What the first record held (``offset``, ``value``) of decisions partition ``topic[partition]``, whose log
    starts at ``log_start`` (above 0), says of the records before it (``DecisionsStart``). Only a sound block of
    the broker's chain says anything: one whose start check finds retention's work (``expired_start``) says that
    the records before it were decided by the time it states its predecessor was written (``prev_at``: the newest
    of them); a first block of a new chain whose GAP entry records the old one expired whole (``audit-expired``, the
    broker's word when it began it: ``broker.worker``) says they were decided a retention before it (its ``at``,
    less its ``keep_days``: Kafka deletes only records older than the retention)."""
    walk = PartitionWalk(topic, partition, verify, "decisions", log_start=log_start, retention=retention)
    doc, found = walk.feed(offset, value, appended_ms)
    before = None
    if doc is not None and not found and doc.get("chain") is None and log_start > 0:
        seq = doc.get("seq")
        if seq == walk.chains[None].first_seq and type(seq) is int and seq > 0:
            if expired_start(doc, retention) is True and (prev := when(doc.get("prev_at"))) is not None:
                before = int(prev.timestamp() * 1000)
        elif seq == 0 and _begun_after_expiry(doc) and (at := when(doc.get("at"))) is not None \
                and type(kept := doc.get("keep_days")) is int and kept > 0:
            # No margin here: a margin added would widen what counts as expired, the permissive side.
            before = int(at.timestamp() * 1000) - kept * _DAY_MS
    return DecisionsStart(topic, partition, log_start, offset, before)


def _begun_after_expiry(doc: dict[str, Any]) -> bool:
    """Whether block ``doc`` records that its chain began where retention had deleted the slot's chain whole (a GAP
    entry of reason ``audit-expired``)."""
    entries = doc.get("entries")
    return doc.get("kind") == "BLOCK" and isinstance(entries, list) and any(
        isinstance(e, dict) and e.get("kind") == "GAP" and e.get("reason") == "audit-expired" for e in entries)


def expired_before(starts: Iterable[DecisionsStart]) -> int | None:
    """The latest time (Unix ms) before which a delivery may have expired with its decision, over every decisions
    partition retention cut (``DecisionsStart.decided_before``); None when none was. A receipt names the partner's
    reference for an alert, not the slot that decided it, so any such partition may have held its delivery."""
    return max((s.decided_before for s in starts if s.decided_before is not None), default=None)


MAX_PLACES = 1_024
"""The most feed partitions a walk follows one partner's receipts into (``ReceiptReach``), all its feeds together: a
partner reads a feed or two of tens of partitions. A receipt names its place itself, any topic and partition Kafka
could have; noted without a bound, a flood of receipts naming a new place each would grow every walk, and the audit
index's reach rows, without end. A place counts toward it only once a checkpoint of the partner's vouches for a
receipt naming it, so only the partner's own key can spend it (anyone with its Kafka login can write receipts; no one
else can sign them). Past it, a place is followed no further, and the checkpoint that names it is a finding. A
chain's receipts waiting for a checkpoint name at most as many places (one more is a finding at that receipt), and
all the chains' of one receipts partition together at most ``WAITING_PLACES``."""

WAITING_PLACES = 4 * MAX_PLACES
"""The most feed partitions the receipts waiting for a checkpoint in one receipts partition name, all its chains
together (``ReceiptReach``). ``MAX_PLACES`` bounds one chain's, but a partition holds up to ``MAX_CHAINS`` chains:
anyone with a partner's Kafka login could have a thousand chains name a thousand places each, a million held (and
saved by the audit index at every commit) for checkpoints that never come. A partner's few subscriber chains name a
few feed partitions each between checkpoints. Past it, the waiting receipts of a whole chain are given up, by
``receipts.Unvouched``'s rule: the chain waiting longest that no checkpoint vouched for yet in the partition (a
flood's: only the partner's key signs its checkpoints), or, when every chain waiting was, the chain waiting longest.
They count for no end: a finding at the receipt that went past, and their chain's next checkpoint vouches only for
its receipts after it."""
LOTS_LISTED = 100
"""Records at which chains' waiting receipts were given up (``WAITING_PLACES``) that a partition's findings list one
by one; one more line says more follow."""

Waiting = dict[str, dict[tuple[str, int], tuple[int, int]]]
"""Receipts no checkpoint vouches for yet, per chain: (feed topic, partition) -> (newest, newest accepted)."""


RECEIPT_STATUSES = frozenset({"RECEIVED", "DUPLICATE", "SUPERSEDED", "RECALLED", "REFUSED", "EXPIRED",
                              "RECALL_PASSED_ON", "RECALL_NOT_HELD"})
"""The statuses a subscriber writes for a record it opened (``broker.partner_store.Outcome``, and
``broker.partner``'s ``RECALL_PASSED_ON`` and ``RECALL_NOT_HELD``); one it could not open is ``REJECTED: <error>``,
with ``; given up`` when ``--skip`` named it (``known_status``)."""
_REJECTED = re.compile(r"REJECTED: [A-Za-z][A-Za-z0-9_]{0,99}(?:; given up)?", re.ASCII)


def known_status(status: object) -> bool:
    """Whether a receipt's ``status`` is one a subscriber writes (``RECEIPT_STATUSES``, or a REJECTED one naming
    an error class). A partner signs whatever status it likes: one that merely looks like a known one (another
    script's letters, a bidi override) must be shown as what it is, since what reads receipts compares the
    exact strings and takes it for none of them."""
    return isinstance(status, str) and (status in RECEIPT_STATUSES or _REJECTED.fullmatch(status) is not None)


def opened_status(status: object) -> bool:
    """Whether a receipt's ``status`` says its partner opened the record: a status a subscriber writes
    (``known_status``) other than REJECTED. Only such a receipt acknowledges a delivery or moves an accepted end."""
    return isinstance(status, str) and status in RECEIPT_STATUSES


class ReceiptReach:
    """How far each partner's receipts reach into its own feed's partitions, as the walks of the receipts
    topics go (``begin`` each partition, then ``take`` each of its records).

    ``feeds`` maps each feed topic to the partner the policy gives it: only that partner's receipts
    count for it. A receipt counts once a sound checkpoint of its chain in the same partition vouches
    for it: ``sound`` has the newest feed offset such receipts name per (topic, partition),
    ``accepted`` the same without REJECTED receipts (a record the subscriber could not open is not
    committed past). ``seen`` has the newest offset any receipt names, sound or not, in its own
    partner's topic. A subscriber's batch commits its receipts, its checkpoint and its feed offsets
    in one transaction, so the sound receipts reach the record just before the subscriber group's
    committed offset of each feed partition (``receipt_ends``). At most ``max_places`` places are followed per
    partner (``MAX_PLACES``): those its checkpoints vouched for first, each checkpoint's in sorted order, whatever
    the policy says of them, so the audit index, which reads the policy later, follows the same ones. ``seen``
    notes only places followed. The receipts waiting for a checkpoint name at most ``max_places`` places per chain
    and ``waiting_places`` in all per partition (``WAITING_PLACES``): past that, a chain's are given up."""

    def __init__(self, feeds: Mapping[str, str], prefix: str, *, max_places: int = MAX_PLACES,
                 waiting_places: int = WAITING_PLACES) -> None:
        self.feeds, self.prefix = feeds, prefix
        self._max_places, self._waiting_places = max_places, waiting_places
        self._places: dict[str | None, set[tuple[str, int]]] = {}  # per partner: the places noted
        self.sound: dict[tuple[str, int], int] = {}
        self.accepted: dict[tuple[str, int], int] = {}
        self.seen: dict[tuple[str, int], int] = {}
        self.claims: dict[str, set[str]] = {}  # a feed no partner in the policy reads: whose sound receipts name it
        self._owner: str | None = None
        self._waiting: Waiting = {}  # per chain, the receipts no checkpoint vouches for yet
        # Per chain, every place its waiting sound receipts name in this deployment's feeds, whoever's the policy
        # says each is (what a checkpoint spends ``MAX_PLACES`` on): the places of ``_waiting`` and, in `audit
        # verify`, those of other partners' feeds, which the index, reading no policy, keeps in ``_waiting`` too.
        # The chain waiting longest first (one vouched for, or cut off, goes last when it waits again): the order
        # chains give up theirs in (``WAITING_PLACES``), the same in `audit verify` and the index.
        self._named: dict[str, set[tuple[str, int]]] = {}
        self._held = 0  # the places ``_named`` holds, all chains together
        self._vouched: set[str] = set()  # chains a sound checkpoint vouched for in this partition: the last to give up
        self.given_up = 0  # records of this partition at which chains' waiting receipts were given up

    def reader(self, topic: str) -> str | None:
        """The partner whose receipts count for ``topic``: the policy's, or for a feed the policy gives no
        partner (one that left, its feed kept), the one partner whose sound receipts name it."""
        if (partner := self.feeds.get(topic)) is not None:
            return partner
        claims = self.claims.get(topic, set())
        return next(iter(claims)) if len(claims) == 1 else None

    def begin(self, owner: str | None, waiting: Waiting | None = None, *, vouched: Iterable[str] = (),
              given_up: int = 0) -> None:
        """A new partition, of ``owner``'s receipts topic: receipts left waiting in the last one stay
        unvouched. For a walk that continues from earlier records of this partition (the audit index's), what
        the walk of those left: ``waiting`` (``waiting``, in its order), the chains a sound checkpoint of theirs
        vouched for (``vouched``) and ``given_up``."""
        self._owner = owner
        self._waiting = {chain: dict(places) for chain, places in (waiting or {}).items()}
        self._named = {chain: set(places) for chain, places in self._waiting.items()}
        self._held = sum(len(places) for places in self._named.values())
        self._vouched = set(vouched)
        self.given_up = given_up

    def noted(self, owner: str | None, places: Iterable[tuple[str, int]]) -> None:
        """``places`` were noted for ``owner`` by a walk of earlier records (the audit index's stored reach): they
        count toward its ``MAX_PLACES`` as they did then."""
        self._places.setdefault(owner, set()).update(places)

    def _room(self, place: tuple[str, int]) -> bool:
        """Whether ``place`` is followed for the partition's partner: already, or now, within ``MAX_PLACES``."""
        held = self._places.setdefault(self._owner, set())
        if place in held:
            return True
        if len(held) >= self._max_places:
            return False
        held.add(place)
        return True

    @property
    def waiting(self) -> Waiting:
        """The partition's receipts no checkpoint vouches for yet, in the order their chains give them up, for
        ``begin`` of a walk that continues."""
        return {chain: dict(places) for chain, places in self._waiting.items()}

    def take(self, doc: dict[str, Any] | None, sound: bool, cut: Iterable[str]) -> str | None:
        """One record as ``PartitionWalk.feed`` gave it: its document, whether it had no finding, and the
        chains it cut off (``PartitionWalk.cut``), whose waiting receipts no checkpoint will vouch for.
        A problem when it is a sound receipt naming a place its partner cannot have read: another
        partner's feed, or a topic outside the deployment's feeds (its own key signed it); or when
        chains' waiting receipts were given up to hold its own (``WAITING_PLACES``)."""
        for gone in cut:
            self._drop(gone)
        chain = doc.get("chain") if doc is not None else None
        if doc is None or not isinstance(chain, str):
            return None
        kind = doc.get("kind")
        if kind == "CHECKPOINT" and sound:
            return self._vouch(chain)
        if kind != "RECEIPT" or (place := feed_place(doc.get("feed"))) is None:
            return None
        (topic, partition), offset = place
        owner, reader = chain_owner(chain), self.feeds.get(topic)
        if sound and not topic.startswith(self.prefix):
            return (f"receipt names {plain(topic, 120)}, which is no feed of this deployment "
                    f"({plain(self.prefix)}*): {plain(owner)} signed a receipt for a record it cannot have read")
        gave = None
        if sound:
            if (topic, partition) not in (named := self._named.get(chain, ())) and len(named) >= self._max_places:
                return (f"receipt names feed partition {plain(topic, 120)}:{partition}, one more than the "
                        f"{self._max_places:,} its chain's receipts waiting for a checkpoint may name: it counts "
                        "for no end")
            gave = self._name(chain, (topic, partition))
        if sound and reader is not None and reader != owner:
            why = (f"receipt names feed {plain(topic, 120)}, which the policy gives {plain(reader)}, not "
                   f"{plain(owner)}: {plain(owner)} signed a receipt for a record it cannot have read")
            return f"{why}; {gave}" if gave else why
        if reader is not None and reader != owner:
            return None
        if owner == self._owner and (topic, partition) in self._places.get(owner, ()):
            self.seen[(topic, partition)] = max(self.seen.get((topic, partition), -1), offset)
        if sound and (topic, partition) in self._named.get(chain, ()):  # not given up to make room for itself
            status = doc.get("status")
            rejected = not opened_status(status)
            waiting = self._waiting.setdefault(chain, {})
            newest, accepted = waiting.get((topic, partition), (-1, -1))
            waiting[(topic, partition)] = (max(newest, offset), accepted if rejected else max(accepted, offset))
        return gave

    def _vouch(self, chain: str) -> str | None:
        """A sound checkpoint of ``chain``: its waiting receipts count, in the places followed (``MAX_PLACES``)."""
        self._vouched.add(chain)
        named = self._named.pop(chain, set())
        self._held -= len(named)
        over = [tp for tp in sorted(named) if not self._room(tp)]
        unfollowed = set(over)
        for tp, (newest, accepted) in self._waiting.pop(chain, {}).items():
            if tp in unfollowed:
                continue
            self.sound[tp] = max(self.sound.get(tp, -1), newest)
            if accepted >= 0:
                self.accepted[tp] = max(self.accepted.get(tp, -1), accepted)
            if tp[0] not in self.feeds:
                self.claims.setdefault(tp[0], set()).add(chain_owner(chain))
        if over:
            return (f"checkpoint vouches for receipts naming {len(over):,} feed partition(s) past the "
                    f"{self._max_places:,} {plain(chain_owner(chain))}'s receipts are followed into (the first "
                    f"{plain(over[0][0], 120)}:{over[0][1]}): they count for no end")
        return None

    def _drop(self, chain: str) -> int:
        """Forget ``chain``'s waiting receipts (cut off, or given up); how many places they named."""
        self._waiting.pop(chain, None)
        count = len(self._named.pop(chain, ()))
        self._held -= count
        return count

    def _name(self, chain: str, place: tuple[str, int]) -> str | None:
        """Note that ``chain``'s waiting sound receipts name ``place``; past ``WAITING_PLACES`` in all, give up whole
        chains' waiting receipts (``receipts.Unvouched``'s order) until within, this chain's included if it is
        the one: a finding at this record, listed for the first ``LOTS_LISTED`` records of the partition."""
        named = self._named.setdefault(chain, set())
        if place in named:
            return None
        named.add(place)
        self._held += 1
        lots: list[tuple[str, int]] = []
        while self._held > self._waiting_places:
            victim = next((c for c in self._named if c not in self._vouched), None)
            victim = next(iter(self._named)) if victim is None else victim
            lots.append((victim, self._drop(victim)))
        if not lots:
            return None
        self.given_up += 1
        if self.given_up > LOTS_LISTED + 1:
            return None
        whose = (f"chain {plain(lots[0][0])}" if len(lots) == 1 else
                 f"{len(lots):,} chains (the first {plain(lots[0][0])})")
        why = (f"receipts of {whose} waiting for a checkpoint, naming {sum(n for _, n in lots):,} feed partition(s), "
               f"are given up: the receipts waiting in this partition may name {self._waiting_places:,} in all; they "
               "count for no end")
        if self.given_up > LOTS_LISTED:
            why += "; more such receipts given up in this partition are not listed one by one"
        return why


def receipt_ends(reach: ReceiptReach, committed: Mapping[tuple[str, int], int], asked: Container[str],
                 group_of: Callable[[str], str], unsettled: Container[str | None],
                 silent: Container[str]) -> list[PartitionReport]:
    """A report per feed partition, its ``end`` its partner's sound receipts against the subscriber group's
    committed offset there. ``committed`` maps (feed topic, partition) to the offset the group
    ``group_of(topic)`` has committed, read for the feed topics in ``asked``; ``unsettled`` names the
    partners whose receipts partitions kept a transaction open that did not end (None in it: a
    receipts topic whose partner is unknown); ``silent`` the partners whose receipts topic never held
    a record (a reader of their own, which writes no receipts).

    A finding: receipts short of the record before the committed offset, unless receipts that are
    not sound name the records missing (those are findings already); a partition committed past that
    no sound receipt names while its partner's receipts topic held records (emptied, or lost). Not
    checked, never sound: a feed whose partner is unknown; a partition its partner's accepted
    receipts name where the group has no committed offset (offsets deleted or unsettled, the feed
    topic gone), or whose group was not read; a partner that writes no receipts; and a short end
    while the feed's partner, or a receipts topic of unknown partner, kept a transaction open; and a feed
    the policy gives a partner that is not in ``asked`` (its offsets not read) and no receipt names."""
    places = {tp for tp, offset in committed.items() if offset > 0} | set(reach.accepted)
    places |= {tp for tp in reach.sound if tp[0] not in asked}
    out = []
    for tp in sorted(places):
        topic, partition = tp
        offset, partner = committed.get(tp), reach.reader(topic)
        why = None
        if partner is None:
            why = ("no partner in the policy reads this feed, and no one partner's receipts name it: whose receipts "
                   "to expect is unknown")
        elif tp not in reach.sound and partner in silent:
            why = (f"{plain(partner)}'s receipts topic holds no committed record and none was deleted from it (a "
                   "reader of its own, which writes no receipts, or the topic deleted and made again)")
        end = EndCheck(f"{topic}:{partition}", reach.sound.get(tp, -1), offset, group=group_of(topic), why=why)
        if end.short and (partner in unsettled or None in unsettled):
            end = replace(end, unsettled=True)
        report = PartitionReport(topic, partition, end=end)
        if end.short and reach.seen.get(tp, -1) + 1 < (offset or 0):
            report.findings.append(Finding(topic, partition, (offset or 0) - 1, end.problem()))
        out.append(report)
    # A feed the policy gives a partner whose offsets were not read (the topic not visible to this login,
    # or the offsets refused), and which no receipt names: nothing above reports it, and it is not sound.
    named = {topic for topic, _ in places}
    for topic in sorted(t for t in reach.feeds if t not in asked and t not in named):
        out.append(PartitionReport(topic, 0, end=EndCheck(
            f"{topic}:0", -1, None, group=group_of(topic), why=(
                "this feed's committed offsets were not read (the topic is not visible to this login, or reading "
                "the offsets was refused): check `puente acls plan` and that the feed topic exists"))))
    return out


@dataclass
class PartitionReport:
    """The result of walking one partition."""

    topic: str
    partition: int
    records: int = 0
    chains: int = 0  # the chains its records were walked in (a receipts partition holds one per subscriber instance)
    checkpoints: int = 0  # signed records: checkpoints and blocks
    unsigned_tail: int = 0
    findings: list[Finding] = field(default_factory=list)  # the first ``MAX_LISTED`` taken with ``add``
    vouched: list[Vouched] = field(default_factory=list)  # per chain: its last sound signed record
    end: EndCheck | None = None  # a chain's end against its group's committed offsets, when checked
    unlisted: int = 0  # findings past ``MAX_LISTED``: counted, not kept
    newest: int = -1  # the highest offset of any finding, listed or not
    expired: int = 0  # receipts of deliveries retention deleted with their decisions (``match_receipt``): no finding
    unchecked: str | None = None  # why its records could not be checked at all (``emptied_unchecked``), never sound

    @property
    def ok(self) -> bool:
        return not self.findings and not self.unlisted

    @property
    def problems(self) -> int:
        """How many findings the walk made, listed or not."""
        return len(self.findings) + self.unlisted

    def add(self, findings: Iterable[Finding]) -> None:
        """Take ``findings``: listed up to ``MAX_LISTED``, counted past it. A partition's records are whatever
        anyone who may write it wrote, a finding each at worst: kept whole, a flood of them would hold a report,
        and the walk's memory, without bound, and list nothing a person could read."""
        for found in findings:
            self.newest = max(self.newest, found.offset)
            if len(self.findings) < MAX_LISTED:
                self.findings.append(found)
            else:
                self.unlisted += 1

    def vouched_text(self) -> str:
        """What this partition's signatures vouch for, one line: each chain's last sound signed record, or
        that none is signed. Anything dropped after those records cannot be seen from the topic."""
        if not self.vouched:
            return "no sound signed record" if self.records else "empty"
        return "; ".join(v.describe() for v in self.vouched)


# Kinds that must carry a signature: one without is reported, not taken as an unsigned record.
_SIGNED_KINDS = frozenset({"CHECKPOINT", "BLOCK"})

VerifyFn = Callable[[str, bytes, bytes], bool]
"""(signer id, payload, signature) -> whether the signature is valid for that signer."""


def may_sign(chain: str | None, signer: str) -> bool:
    """Whose key may sign a chain: the broker's signing key for the decisions, the partner's own
    receipt-signing key for its receipts (chain ``COL`` or ``COL/<instance>``), so no one vouches
    for another's records and no key vouches for records of a kind it is not for."""
    try:
        key = parse_key_id(signer)
    except KeyMaterialError:
        return False
    if chain is None:
        return key.owner == BROKER_OWNER and key.kind is KeyKind.BROKER_SIGNING
    return key.owner == chain_owner(chain) and key.kind is KeyKind.PARTNER_SIGNING


# What each kind of chain may hold. The broker's chains (no chain name: its decisions, and the
# denials it collects) hold signed records only: BLOCKs, and CHECKPOINTs. The broker writes every
# batch as one signed block, so an unsigned record there (such as the per-record DECISION and
# DEAD_LETTER kinds written before blocks) is someone else's: SHA-256 is unkeyed, and anyone who may
# write the topic can give a record a seq, prev and hash that continue the chain. The simplest sound
# rule is to take no unsigned record in these chains at all: each is reported where it stands and
# left out of the log, the recalls and the index. (Letting a later signed record vouch for unsigned
# ones, as a receipt checkpoint does, would be sound too, but the broker writes none such: it buys
# nothing and would keep forged records waiting in every reader.) A partner's receipt chain holds
# only its receipts and their checkpoints: a partner's key never vouches for a decision.
DECISION_KINDS = frozenset({"BLOCK", "CHECKPOINT"})
RECEIPT_KINDS = frozenset({"RECEIPT", "CHECKPOINT"})
DELIVERED = frozenset({"DELIVER", "DELIVER_REDACTED", "RECALL"})  # a feed record went out: a receipt may name it
# What the broker's decision blocks hold: an entry per ingress record taken (decided or dead-lettered), and
# one per run of ingress records deleted before it read them and skipped with --accept-gap.
DECISION_ENTRIES = frozenset({"ALERT", "DEAD_LETTER", "GAP"})
DENIAL_ENTRIES = frozenset({"DENIAL"})  # what the collected-denials blocks hold
QUERY_CHAIN = "console"  # the auditors' console writes the one chain of the queries topic
QUERY_KINDS = frozenset({"QUERY"})


Holds = Literal["decisions", "receipts", "denials", "queries"]
"""What an audit topic is for: the broker's decision blocks, a partner's receipt chains, the
access denials collected from Kafka's authorizer (broker-signed blocks of DENIAL entries), or the
auditors' own queries (chain ``console``, unsigned QUERY records: auditors hold no signing key;
Kafka's ACLs keep others from writing it, and the hash chain shows any edit or gap)."""


_shown = shown  # a value from a record, quoted and cut short for a finding (``chain.shown``)


def plain(value: str, limit: int = 60) -> str:
    """A string from a record (a chain name, a kind, a signer) cut short, unquoted, with every character
    that is not printable escaped: a finding stays one line whatever a record holds."""
    cut = value[:limit]
    return cut if cut.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)


def when(value: Any) -> datetime | None:
    """The time a record's ``at`` states, in UTC, or None when it states none: not a string, not ISO 8601,
    or without an offset (``Z``, ``+00:00``, ``-05:00``...). A time without one is unreadable, never taken
    as UTC or as local time (nor compared with one that has an offset, which raises)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        at = datetime.fromisoformat(value)
        return at.astimezone(UTC) if at.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def utc_problem(value: Any) -> str | None:
    """Why a receipt's or a checkpoint's ``at`` is not a time as subscribers write it (ISO 8601 in UTC), or None:
    absent, or one."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        return f"its time {_shown(value)} is not an ISO 8601 time"
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return f"its time {_shown(value)} is not an ISO 8601 time"
    if at.utcoffset() != timedelta(0):
        return f"its time {_shown(value)} is not in UTC (Z or +00:00)"
    return None


def parse_record(value: bytes) -> dict[str, Any] | None:
    """An audit record's JSON object, or None when it is not one: unreadable JSON, not an object,
    a kind that is not a string, a chain name that is not a string."""
    try:
        doc = orjson.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        return None
    chain = doc.get("chain")
    return doc if chain is None or isinstance(chain, str) else None


def misplaced(chain: str | None, doc: dict[str, Any], holds: Holds | None,
              owner: str | None = None) -> str | None:
    """Why a record does not belong in a chain ``chain`` of a topic that ``holds`` decisions,
    receipts, denials or queries (``owner``: the partner whose receipts topic it is), or None. A partner's
    key vouches for its own receipts and for nothing else; the broker's key for decisions and
    collected denials, each in its own topic. ``doc`` is as ``parse_record`` gives it."""
    kind = doc["kind"]
    if holds == "queries":
        if chain != QUERY_CHAIN:
            return f"{_shown(kind)} record outside the console's chain, in a topic that holds the auditors' queries"
        if kind not in QUERY_KINDS:
            return f"{_shown(kind)} record in the console's chain, which may hold only queries"
        return None
    if chain is None:
        if holds == "receipts":
            return f"{_shown(kind)} record outside any partner's receipt chain, in a topic that holds receipts"
        if kind not in DECISION_KINDS:
            return (f"{_shown(kind)} record in the broker's chain, which holds only signed blocks: "
                    "the broker never wrote it")
        if kind != "BLOCK":
            return None
        if not isinstance(doc.get("entries"), list):
            return f"block whose entries are {_shown(doc.get('entries'))}, not a list"
        kinds = {e.get("kind") if isinstance(e, dict) and isinstance(e.get("kind"), str) else None
                 for e in doc["entries"]}
        allowed = DENIAL_ENTRIES if holds == "denials" else DECISION_ENTRIES
        if holds is not None and not kinds <= allowed:
            odd = sorted(_shown(k, 20) if k is not None else "unreadable" for k in kinds - allowed)
            return f"block with {', '.join(odd[:5])} entries in a topic that holds {holds}"
        return None
    if holds in ("decisions", "denials"):
        return f"chain {plain(chain)} record in a topic that holds only the broker's {holds}"
    if kind not in RECEIPT_KINDS:
        return (f"{_shown(kind)} record in {plain(chain)}'s receipt chain, which may hold only receipts "
                "and checkpoints")
    if owner is not None and chain_owner(chain) != owner:
        return f"chain {plain(chain)} in {plain(owner)}'s receipts topic"
    if kind == "RECEIPT" and doc.get("partner") != chain_owner(chain):
        return f"receipt for partner {_shown(doc.get('partner'))} in {plain(chain)}'s receipt chain"
    if kind == "RECEIPT" and (why := utc_problem(doc.get("at"))) is not None:
        return f"receipt in {plain(chain)}'s receipt chain: {why}"
    if kind == "CHECKPOINT" and (why := utc_problem(doc.get("at"))) is not None:
        # Its time is the partner's signed word as much as a receipt's, and is shown as when the chain was last
        # vouched for (the console's Integrity page): held to the same form.
        return f"checkpoint in {plain(chain)}'s receipt chain: {why}"
    return None


def unheld(chain: str | None, doc: dict[str, Any], holds: Holds | None, owner: str | None = None) -> str | None:
    """Why a record's ``chain`` can be no chain of a topic that ``holds`` decisions, receipts, denials or queries
    (``owner``: the partner whose receipts topic it is), or None. Such a record is reported and nothing more: a walk
    keeps no state for its chain, so records naming a new chain each (a name as long as Kafka takes, another
    partner's, a chain in the broker's own topic) cost a walk, and an index saving its states, nothing they keep."""
    if chain is not None and len(chain) > MAX_CHAIN_NAME:
        return (f"chain name of {len(chain):,} characters, longer than any subscriber writes "
                f"(at most {MAX_CHAIN_NAME})")
    if ((holds in ("decisions", "denials") and chain is not None)
            or (holds == "queries" and chain != QUERY_CHAIN)
            or (holds == "receipts" and (chain is None or (owner is not None and chain_owner(chain) != owner)))):
        return misplaced(chain, doc, holds, owner)
    return None


def form_problem(value: bytes, doc: dict[str, Any], claimed: str) -> str | None:
    """Why a record is not as its writer sealed it, or None: its content must hash to its ``hash``
    and its bytes must be exactly the canonical form (see ``chain.sealed``), so a duplicate key or
    a re-encoding, which a JSON parser would silently resolve, is reported too."""
    try:
        body = canonical({k: v for k, v in doc.items() if k != "hash"})
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (it reads deeper): no writer sealed it
        return "is not in the form its writer sealed (nested too deeply to be written back)"
    if hashlib.sha256(body).hexdigest() != claimed:
        return "was edited: its content does not match its hash"
    if value != sealed(body, claimed):
        return "is not in the form its writer sealed (a duplicate key, or JSON re-encoded by someone else)"
    return None


# A record's signature is exactly the lowercase hex its writer made (``chain.ChainWriter``): bytes.fromhex
# also takes capitals and spaces, so one signature would fit many records, each with its own hash.
_SIGNATURE_HEX = re.compile(f"[0-9a-f]{{{2 * SIGNATURE_LEN}}}", re.ASCII)


def signature_bytes(sig: object) -> bytes | None:
    """The signature bytes a record's ``sig`` field holds, or None unless it is exactly
    ``2 * SIGNATURE_LEN`` lowercase hex digits: the one spelling of a signature its writer makes."""
    if not isinstance(sig, str) or _SIGNATURE_HEX.fullmatch(sig) is None:
        return None
    return bytes.fromhex(sig)


def head_problem(topic: str, partition: int, value: bytes, chain: str | None, verify: VerifyFn,
                 held: Container[str] | None = None) -> str | None:
    """Why the last record of a chain may not be extended, or None when it may.

    A chain's owner only ever ends a batch with a record it signed (the broker a BLOCK, a
    subscriber a CHECKPOINT), so a sound head is such a record: sealed as written, signed by a
    key that may vouch for ``chain`` (see ``may_sign``), with a signature that verifies. Anything
    else at the end was written by someone else, and signing over it would vouch for it.
    ``held``: the key ids ``verify`` takes; a signer that may vouch for the chain but is not among them is
    named as a key not held (an older generation's file removed too early), not as a signature that fails.
    """
    doc = parse_record(value)
    if doc is None or doc.get("chain") != chain:
        return "its last record is not one of this chain's audit records"
    fields = chain_fields(doc)
    if fields is None:
        return "its last record lacks its seq or hash"
    seq, _, claimed = fields
    if (why := form_problem(value, doc, claimed)) is not None:
        return f"its last record (seq {seq}) {why}"
    kind, signer, sig = doc["kind"], doc.get("signer"), doc.get("sig")
    if kind not in _SIGNED_KINDS or "sig" not in doc:
        return f"its last record (seq {seq}, {_shown(kind)}) is unsigned: its owner always ends with a signed record"
    if not isinstance(signer, str) or not may_sign(chain, signer):
        return f"its last record (seq {seq}) is signed by {_shown(signer)}, which may not vouch for this chain"
    if held is not None and signer not in held:
        return (f"its last record (seq {seq}) is signed by {plain(signer)}, which this keystore does not hold, so it "
                "cannot be told from a forgery: put that key file back (or import its public half with `puente keys "
                "import-public`)")
    raw = signature_bytes(sig)
    try:
        good = raw is not None and verify(signer, checkpoint_payload(topic, partition, doc), raw)
    except (ValueError, TypeError):
        good = False
    return None if good else f"its last record (seq {seq}) has a signature that does not verify with {plain(signer)}"


MAX_SIGNERS = 64  # key generations remembered per chain (a rotation a month for five years)


def moved_back(signers: list[str], signer: str) -> str | None:
    """Why ``signer`` may not sign a chain whose sound records ``signers`` signed (in the order each first
    did), or None. A chain's key only ever rotates forward: its owner signs with its
    newest key, and a worker or subscriber started before a rotation cannot verify the newer key's records
    (it refuses to continue them). So a key signing again after its successor has is a retired key in use,
    which a leak of it would look like; it is reported, and the chain's owner will not sign over it. A key is
    noted (``note_key``) only once a record it signed is taken into the chain: a copy of an old record, signed
    with a key retention has since deleted every record of, must not make the key in use look retired. A key the
    chain never used is retired too when its generation is older than one that signed the chain
    (``newer_generation``): a chain begun under the newer key (or whose records of the older expired) must not take
    a block of the older."""
    return _moved_past(signers, signer, "this chain", "")


def retired(keys: list[str], signer: str, owner: str) -> str | None:
    """Why ``signer`` may not vouch for any of ``owner``'s receipt chains, whose sound records ``keys`` signed
    in this partition (in the order each first did, all chains together), or None; a new key is noted.

    A partner's receipt key retires for the partner, not for a chain: once a newer generation has signed
    any of its chains, the older one signing again (in that chain, another, or a chain never seen before)
    is a retired key in use, which a leak of it would look like. Its subscribers rotate together (one
    keystore's newest key), so no genuine chain starts or goes on with a key another chain moved past; an
    instance still running on the old key after another moved on is reported too, as the rotation
    unfinished. Noted as ``moved_back``'s are."""
    return _moved_past(keys, signer, plain(owner), " in this partition")


def _moved_past(order: list[str], signer: str, whose: str, where: str) -> str | None:
    """``moved_back`` and ``retired``: why ``signer`` comes after its successor in ``order`` (keys in the order
    each first signed), or after a key of a newer generation when ``order`` does not hold it, or None."""
    if order and order[-1] == signer:
        return None
    if signer in order:
        after = order[order.index(signer) + 1]
        return (f"is signed by {plain(signer)}, a key {whose} had moved on from ({plain(after)} signed after "
                f"it{where}): a retired key in use")
    newer = next((key for key in reversed(order) if newer_generation(key, signer)), None)
    if newer is None:
        return None
    return (f"is signed by {plain(signer)}, a key {whose} had moved on from ({plain(newer)}, of a newer generation, "
            f"signed before it{where}): a retired key in use")


# How long after a newer broker key first signed in one chain an older one may still sign in another: the workers
# of a deployment move to a new key as each restarts, one after another. Past it, the older key signing is a
# retired key in use (a leak, or a worker never restarted).
ROTATION_GRACE_MS = 3_600_000


def note_dated(dated: dict[str, dict[str, Any]], signer: str, appended_ms: int | None, seq: int, offset: int) -> None:
    """Note in ``dated`` (``ChainState.dated``) that ``signer`` signed the sound block at ``offset`` (``seq``),
    which Kafka appended at ``appended_ms``: its earliest and newest time in the chain. Kafka's append time
    (the audit topics use LogAppendTime), never the time the block states, which whoever signed it chose: a
    block with no append time (written while the topic stamped its producers' times) is not noted."""
    if appended_ms is None:
        return
    ms, at = appended_ms, iso_utc(datetime.fromtimestamp(appended_ms / 1000, UTC))
    held = dated.get(signer)
    if held is None:
        dated[signer] = {"first": ms, "first_at": at, "last": ms, "last_at": at, "seq": seq, "offset": offset}
        return
    if ms < held["first"]:
        held.update(first=ms, first_at=at)
    if ms >= held["last"]:
        held.update(last=ms, last_at=at, seq=seq, offset=offset)


def retired_keys(chains: Iterable[tuple[str, int, ChainState]]) -> list[Finding]:
    """The blocks the broker signed with a key it had moved on from in another of its chains: one key order
    across all the broker's chains (every decisions partition and the collected denials, ``chains`` given as
    (topic, partition, the broker's chain's state)), as a partner's receipt key has across its chains
    (``retired``).

    Within a chain its offsets give the order (``moved_back``, at each record). Across chains nothing orders
    records but when Kafka appended them (``note_dated``: LogAppendTime, which no signer chooses), so: a key is
    newer than another when its generation is (``newer_generation``), or, where their labels say nothing of their
    order, when it first signed later, in any chain; a block signed by the older one appended more
    than ``ROTATION_GRACE_MS`` after the newer one first signed in another chain is a retired key in use. A
    leak of the key looks like that; so does a worker left on it long after the others moved on, which is the
    same finding a partner's subscriber left on its old key gives, and nothing worse: the block's signature is
    good, so it stays sound (its deliveries, its chain's end) and the finding is the key's alone. Workers
    restarted one after another within the grace give none. One finding per chain and retired key, at the
    newest such block (a chain keeps each key's earliest and newest time, not every block's:
    ``ChainState.dated``)."""
    held = [(topic, partition, state.dated) for topic, partition, state in chains if state.dated]
    first: dict[str, int] = {}  # each key: the earliest block it signed, in any chain
    for _, _, dated in held:
        for key, d in dated.items():
            first[key] = min(first.get(key, d["first"]), d["first"])
    out = []
    for topic, partition, dated in held:
        for key, d in dated.items():
            newer = [(o[k]["first"], k, t, p, str(o[k]["first_at"])) for t, p, o in held
                     if (t, p) != (topic, partition) for k in o
                     if k != key and _succeeds(k, key, first) and o[k]["first"] + ROTATION_GRACE_MS < d["last"]]
            if not newer:
                continue
            _, successor, t, p, since = min(newer)
            out.append(Finding(topic, partition, d["offset"], (
                f"block seq {d['seq']} is signed by {plain(key)}, a key the broker had moved on from "
                f"({plain(successor)} signed a block of {t}[{p}] Kafka appended at {plain(since, 40)}, more than "
                f"{ROTATION_GRACE_MS // 60_000} minutes before this one's {plain(str(d['last_at']), 40)}): a retired "
                "key in use, or a worker left on it (this chain's newest such block)")))
    return out


def _succeeds(key: str, than: str, first: Mapping[str, int]) -> bool:
    """``retired_keys``: whether the broker's ``key`` is newer than ``than``: a newer generation, or, where their
    labels say nothing of their order, first signed later (``first``: each key's earliest block, in any chain). A
    chain begun under the newer key, in every partition, must not make the older look newer when it signs later."""
    if newer_generation(key, than):
        return True
    if newer_generation(than, key):
        return False
    return first[key] > first[than]


def note_key(order: list[str], signer: str) -> None:
    """Note ``signer`` at the end of ``order`` if it is new (the last ``MAX_SIGNERS`` kept): a record it signed,
    found in use by ``moved_back`` and ``retired``, was taken into its chain."""
    if signer not in order:
        order.append(signer)
        del order[:-MAX_SIGNERS]


def states_fall(doc: dict[str, Any], before: int) -> str | None:
    """What is wrong when a broker block states a lifecycle offset (``states``) below ``before``, the one its
    chain's previous block stated, and records no loss of alert states: a slot's count only grows, and falls
    only when its load found the lifecycle partition short and read on with ``--accept-gap``, which that
    block's GAP entry records (``reason`` ``states-lost``, or ``states_lost`` beside a gap of the ingress). A
    fall unrecorded would hide that recalls and updates of the alerts the lost states named reach no one."""
    states = doc.get("states")
    if doc.get("kind") != "BLOCK" or type(states) is not int or states >= before:
        return None
    entries = doc.get("entries")
    if isinstance(entries, list) and any(
            isinstance(e, dict) and e.get("kind") == "GAP" and (e.get("reason") == "states-lost" or "states_lost" in e)
            for e in entries):
        return None
    return (f"states lifecycle offset {states}, below the {before} its chain's block before it stated, and records "
            "no loss of alert states: the states between were lost without a GAP entry saying so")


def chain_fields(doc: dict[str, Any]) -> tuple[int, str, str] | None:
    """A record's ``seq``, ``prev`` and ``hash``, or None when one is missing or not of its type (an
    integer, two strings): a record's place in its chain is read from nothing else."""
    seq, prev, claimed = doc.get("seq"), doc.get("prev"), doc.get("hash")
    if type(seq) is not int or not isinstance(prev, str) or not isinstance(claimed, str):
        return None
    return seq, prev, claimed


@dataclass
class ChainState:
    """Where one chain stands after the records walked so far: what the next record must continue
    from, the unsigned records since its last signed one, and that signed record. Plain values, so
    an index can save it and a later walk continue from it without reading the old records again."""

    seq: int = 0  # the seq the next record must have
    prev: str = GENESIS  # the hash it must continue from
    records: int = 0
    signed: int = 0  # signed records: checkpoints and blocks
    tail: int = 0  # unsigned records since the last signed one
    tail_first: int | None = None  # offset of the first of them
    signed_seq: int | None = None  # the last signed record: seq, time and offset
    signed_at: str | None = None
    signed_offset: int | None = None
    first_seq: int = 0
    """The seq of its first record held: above 0 when the partition's log starts after the chain's first
    records (``PartitionWalk``'s ``log_start``), which a walk then starts from rather than report as a gap."""
    signers: list[str] = field(default_factory=list)
    """The keys that signed its sound records, in the order each first did: the last is the one in use.
    A key rotates forward only; one the chain moved on from signing again is a retired key in use."""
    keys: list[str] = field(default_factory=list)
    """Receipt chains: the keys that signed sound records of any of its owner's chains in the partition, in
    the order each first did (one list, shared by the owner's chains): a key retires for the partner, not
    for one chain, so a retired key vouches for no chain of its owner, a new one included."""
    dated: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The broker's chains: per key that signed its sound blocks, the earliest and the newest time Kafka appended
    them (``first``/``last`` in ms, ``first_at``/``last_at`` in ISO 8601) and the newest one's ``seq`` and ``offset``:
    what the one key order across all the broker's chains is checked with (``retired_keys``). Only keys a
    signature verifies with are noted: the keystore's, a handful."""
    anchor: str = GENESIS  # receipt chains: the hash the waiting records hang from (last signed or break)
    anchor_seq: int = -1  # its seq
    nodes: dict[str, list[Any]] = field(default_factory=dict)
    """Receipt chains: the waiting records tracked, hash -> [seq, prev, offset, on a side branch (0/1)]:
    what a record claiming a place already taken can fork from, and what a signed record's path runs
    back through (``PartitionWalk``, forks); records that are not sound start branches of their own.
    Bounded (``TRACKED_PER_CHAIN``, ``TRACKED_IN_ALL``)."""
    untracked: bool = False  # more waiting records than tracked: no fork can then be settled for a side
    strays: int = 0  # records not sound tracked since the last signed record (``STRAYS_TRACKED``)
    last: int = -1  # the offset of its newest record walked: the chain written least recently is given up first
    appended_ms: int | None = None
    """When Kafka appended its newest record walked (Unix ms; None: not known, the topic keeping its producers'
    times, or a state saved before this was kept): what retention deletes by, which judges a chain the log start
    passed whole (``emptied``) where a writer's clock could not."""
    stray_seq: int = -1
    stray_prev: str = GENESIS
    """Chains that do not fork (the broker's, the queries'): where a record continuing the newest record walked
    stands (its seq and hash), when that record was not sound; -1 when it was (it is then the head, ``seq`` and
    ``prev``). A record that is not sound never moves the head (``PartitionWalk``, strays), but the chain may run
    through it (a block signed by a key this walk does not hold, the first block after a gap): a record continuing
    it is in its place too, as is one continuing the head."""
    states: int = 0
    """The broker's chains: the lifecycle offset (``states``) its newest block in place with the broker's signature
    states (0 before one does, and after one without it). A slot's blocks only count up; a later block stating less
    is a loss of alert states, sound only where that block records it (``states_fall``)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ChainState:
        state = cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})
        if state.anchor_seq >= 0 and any(node[0] <= state.anchor_seq for node in state.nodes.values()):
            # A state an earlier version saved may hold a copy of an old record at or below the anchor, which this
            # one never tracks (``PartitionWalk.feed``): a copy of an old checkpoint could settle its branch.
            state.nodes = {h: node for h, node in state.nodes.items() if node[0] > state.anchor_seq}
            state.strays = sum(1 for node in state.nodes.values() if node[3] == 2)
        return state


TRACKED_PER_CHAIN = 20_000
"""The most waiting records a receipt chain's walk tracks by hash (``ChainState.nodes``), forks included: a
genuine chain has at most 5,000 receipts before its checkpoint (``receipts.RECEIPTS_PER_CHECKPOINT``), so
this leaves room for the forks a forger adds; past it, a record forking the chain is a finding, never kept."""
TRACKED_IN_ALL = 200_000
"""The same, for all chains of a partition together that no signed record of their owner's has anchored yet: a flood
in many chains stays bounded too. An anchored chain is bounded by ``TRACKED_PER_CHAIN`` alone: only its owner's key
anchors one, so a forger's chains, which never settle, cannot spend the room its owner's chains need for good."""
STRAYS_TRACKED = 100
"""The most records that are not sound a receipt chain tracks between its signed records (``PartitionWalk``):
a genuine chain has one at most (the first record walked after retention), so a flood of them never takes the
room ``TRACKED_PER_CHAIN`` keeps for the partner's records and the forks a forger adds."""
MAX_CHAINS = 1_000
"""The most chains one partition's walk keeps a state for (``PartitionWalk``). A partner's chains are its subscriber
instances, a handful; records naming a new chain each would otherwise grow the walk, and every save of an index's,
without end. Past it, the chain written least recently that no signed record of its partner's has anchored yet is
given up: reported, its waiting records cut off (no checkpoint vouches for them), and a record of it after that
starts it anew. Anyone holding the partner's Kafka login can write such chains, so an anchored chain is never given
up: its anchor is what keeps a copy of its old records from being taken again, and only its partner's key makes
one. When every chain held is anchored, a record of a new chain is reported and not checked."""
FORKS_LISTED = 100
"""Branches one signed record settles that are listed one by one; one more line says more follow."""

Place = Literal["main", "side", "break"]
"""Where a record stands in its chain: continuing the newest record (``main``), continuing an earlier
waiting record or the anchor at a place another record holds (``side``: a fork), or neither."""


class PartitionWalk:
    """Verification of one partition, one record at a time, from saved chain states.

    ``feed(offset, value)`` checks the next record and gives its parsed document (None when it is
    no audit record) with the findings *at that record*: a record with none is sound as far as its
    chain goes. ``chains`` is the state per chain (None: the broker's chain); give the states a
    previous walk left to continue after the records it walked, and the findings are those a walk
    over the whole partition would give. ``tail_findings`` are the problems of the partition's end
    as it stands (receipts no checkpoint vouches for yet), which a later record may mend.

    Forks. Anyone who may write a receipts topic can append a record continuing a receipt chain's
    newest record, hash and seq right (SHA-256 is unkeyed), before the partner's own record at that
    seq: two records then claim one place. Which is the chain is the one a sound signed record's hash
    path runs back through, never the one seen first: until a signed record settles it, each branch's
    records wait (they are sound so far, and vouched for by nothing); when one does, the records on
    its path are vouched for and every other branch is a finding (its chain, seq and offset, never its
    content), its records ``pruned``. A reader that holds waiting records per offset (``prunes``) drops
    exactly those; for any other reader the chain is ``cut`` and the findings are given at the signed
    record, so it takes none of the chain's waiting records rather than a forger's. A record that is not
    sound (a failed signature, a gap, an edit) is reported and starts a branch of its own in the same way:
    it never becomes the newest record, so it cuts off nothing the partner's next checkpoint vouches for.

    Strays in a chain that does not fork (the broker's decisions or denials, the queries). Anyone who may write
    the decisions topic can append a record continuing the broker's newest block, seq and hash right, unsigned or
    badly signed: it is reported, and it does not move the chain's head either, so the broker's next block, signed
    over its real head, stays sound and its decisions are read. A record continuing the stray is in its place as
    well (``ChainState.stray_seq``): a block the walk could not verify, or the first after a gap, is still what the
    broker's next block continues. A record continuing neither is a break, reported, and the next one may continue
    it in turn.

    Bounds. A record naming a chain its topic cannot hold (``unheld``) is reported and kept nowhere; the walk keeps
    at most ``max_chains`` chain states (``MAX_CHAINS``), giving up the chain written least recently that no signed
    record of its partner's anchored: a writer without the partner's key can cost a chain its first batch at most.

    Retention. ``log_start`` is the partition's first offset Kafka still holds (its beginning offset). Above 0,
    records before it were deleted, so a chain the walk holds no state for may have had its first records there:
    its first record held starts it, at whatever seq (``ChainState.first_seq``), and is no gap. The first record
    held need not sit at ``log_start`` itself (a transaction's marker or an aborted record may), so the rule is
    per chain, not per offset. At 0 nothing was deleted, and a chain not starting at seq 0 is a gap. Given
    ``retention``, a chain's first record held that says its predecessor was written (``prev_at``) since
    retention could take it (``Retention.since``) is a finding: that predecessor was deleted (``_start_check``).
    """

    def __init__(self, topic: str, partition: int, verify: VerifyFn, holds: Holds | None = None,
                 owner: str | None = None, chains: dict[str | None, ChainState] | None = None, *,
                 prunes: bool = False, tracked: tuple[int, int] = (TRACKED_PER_CHAIN, TRACKED_IN_ALL),
                 max_chains: int = MAX_CHAINS, log_start: int = 0, retention: Retention | None = None) -> None:
        self.topic, self.partition, self.verify, self.holds, self.owner = topic, partition, verify, holds, owner
        self.log_start = log_start
        self.retention = retention
        self.chains: dict[str | None, ChainState] = chains if chains is not None else {}
        # Written least recently first (``_state`` moves a chain last at each of its records): the order chains are
        # given up in, kept across a save of the states by their ``last`` offset.
        order = sorted(self.chains.items(), key=lambda kv: kv[1].last)
        self.chains.clear()
        self.chains.update(order)
        self.cut: list[str] = []  # receipt chains only: see ``feed``
        self.pruned: dict[str, list[int]] = {}  # receipt chains only, with ``prunes``: see ``feed``
        # Findings at other records than the one fed: the forks it settled (with ``prunes``, at their own offsets),
        # and the chain given up to make room for its chain (``ChainFinding``, at that chain's records).
        self.settled: list[Finding] = []
        self.given_up: list[str] = []  # the chains whose states were dropped at this record (``MAX_CHAINS``)
        self.prunes = prunes
        self._max_chains = max(2, max_chains)
        self._owned: dict[str, int] = {}  # chains held per owner: an owner none is held for keeps no key order
        self._owners_ahead = False  # ``feed``: this record is a break signed with a key that may sign its chain
        self._signer: str | None = None  # ``feed``: the key that signed this record, good and in use
        self._appended_ms: int | None = None  # ``feed``: when Kafka appended this record, if its time is Kafka's
        self._per_chain, self._in_all = tracked
        self._tracked = sum(len(s.nodes) for s in self.chains.values())
        # Each owner's key order, shared by its chains' states (so an index saving them keeps it).
        self._keys: dict[str, list[str]] = {}
        for name, state in self.chains.items():
            if name is not None:
                held = self._keys.setdefault(chain_owner(name), state.keys)
                if len(state.keys) > len(held):
                    self._keys[chain_owner(name)] = state.keys
        for name, state in self.chains.items():
            if name is not None:
                state.keys = self._keys[chain_owner(name)]
                self._owned[chain_owner(name)] = self._owned.get(chain_owner(name), 0) + 1

    def _state(self, chain: str | None, offset: int) -> ChainState | None:
        """``chain``'s state, new if the walk holds none, moved last in ``chains`` (written most recently); None
        when the walk holds as many chains as it keeps and none of them may be given up (``MAX_CHAINS``)."""
        state = self.chains.pop(chain, None)
        if state is None:
            while len(self.chains) >= self._max_chains:
                if not self._give_up():
                    return None
            state = ChainState()
            if chain is not None:
                owner = chain_owner(chain)
                state.keys = self._keys.setdefault(owner, [])
                self._owned[owner] = self._owned.get(owner, 0) + 1
        self.chains[chain] = state
        state.last = offset
        state.appended_ms = self._appended_ms  # this record's: None where its time is not Kafka's
        return state

    def _give_up(self) -> bool:
        """Drop the state of the chain written least recently that no signed record of its partner's anchored
        (``MAX_CHAINS``): a finding at its newest record, or at the first of its records waiting for a checkpoint,
        which are cut off (``cut``). False when every chain held is anchored (or the broker's)."""
        name = next((c for c, s in self.chains.items() if c is not None and s.anchor_seq < 0), None)
        if name is None:
            return False
        state = self.chains.pop(name)
        self._tracked -= len(state.nodes)
        owner = chain_owner(name)
        self._owned[owner] -= 1
        if not self._owned[owner]:
            del self._owned[owner]
            if not self._keys.get(owner):  # a key order is noted only by an anchoring record: none to forget
                self._keys.pop(owner, None)
        self.cut.append(name)
        self.given_up.append(name)
        waiting = (f"; its {state.tail:,} receipt record(s) from here on are vouched for by no checkpoint"
                   if state.tail and state.tail_first is not None else "")
        at = state.tail_first if waiting and state.tail_first is not None else state.last
        self.settled.append(ChainFinding(self.topic, self.partition, at, (
            f"chain {plain(name)} is given up: more than {self._max_chains:,} chains are written in this partition "
            "and it is the one written least recently that no checkpoint of its partner's anchored"
            f"{waiting}; a record of it after that starts it anew"), name))
        return True

    def _forks(self, chain: str | None) -> bool:
        """Whether ``chain`` is a receipt chain, whose waiting records a later checkpoint vouches for."""
        return chain is not None and self.holds != "queries"

    def feed(self, offset: int, value: bytes, appended_ms: int | None = None,
             unreadable: Unreadable | None = None) -> tuple[dict[str, Any] | None, list[Finding]]:
        """Check the record at ``offset``; its document and the findings at it. ``appended_ms``: when Kafka
        appended it, if its time is Kafka's (LogAppendTime; None otherwise): what dates a broker block
        across chains (``note_dated``). ``unreadable``: the record stands for a batch the Kafka client did not
        read (``Record.unreadable``): a finding that says so, as any record that is not a block is one.

        ``cut`` then names the chains whose unsigned records waiting for a checkpoint this record
        cut off (it breaks the chain after them): a reader holding those records for the chain's
        next checkpoint drops them, since no checkpoint will vouch for them. With ``prunes``,
        ``pruned`` maps a chain to the offsets of its waiting records that a signed record just
        settled a fork against (off its path: the reader drops those, then takes the record), and
        ``settled`` holds those forks' findings, at the offsets where they began.
        """
        found: list[Finding] = []
        self._owners_ahead = False
        self._signer = None
        self._appended_ms = appended_ms
        self.cut.clear()
        self.pruned, self.settled, self.given_up = {}, [], []

        def flag(problem: str) -> None:
            found.append(Finding(self.topic, self.partition, offset, problem))

        if unreadable is not None:
            flag(f"not an audit record: a record batch this reader's Kafka client does not read ({unreadable})")
            return None, found
        doc = parse_record(value)
        fields = chain_fields(doc) if doc is not None else None
        if doc is None or fields is None:
            flag("not an audit record (unreadable JSON, no kind, or missing seq/prev/hash)")
            return None, found
        seq, prev, claimed = fields
        chain = doc.get("chain")
        if (why := unheld(chain, doc, self.holds, self.owner)) is not None:
            flag(f"seq {seq}: {why}")
            return doc, found
        state = self._state(chain, offset)
        if state is None:
            flag(f"chain {plain(str(chain))} record seq {seq} is not checked: this partition holds "
                 f"{self._max_chains:,} chains, each anchored by a checkpoint of its partner's, and no more are kept; "
                 "none of its records is vouched for")
            return doc, found
        if self.log_start > 0 and state.records == 0 and state.seq == 0 and seq > 0:
            # Records before the log start were deleted (retention): the chain now starts here (class docstring).
            state.seq, state.prev, state.first_seq = seq, prev, seq
        state.records += 1
        label = f"chain {plain(chain)} " if chain is not None else ""
        signed = "sig" in doc or doc.get("kind") in _SIGNED_KINDS
        place = self._place(state, chain, seq, prev, claimed)
        try:
            self._check(doc, value, seq, prev, claimed, chain, state, signed, flag, place)
        except (RecursionError, TypeError, ValueError, OverflowError) as exc:
            # A backstop: whatever in a record a check did not expect, it is that record's finding.
            flag(f"{label}record seq {seq} could not be checked ({type(exc).__name__}): not as its writer sealed it")
        sound = not found
        if not sound and self._forks(chain) and place != "side":
            # A receipt chain's record that is not sound (a signature that fails, a gap, a record not following
            # the newest) never moves the chain's newest record, nor cuts off the receipts waiting for the
            # partner's checkpoint: anyone who may write the receipts topic can put one there. It is reported,
            # and (sealed as written, and not a copy of a record walked) waits as the start of a branch of its
            # own, so the partner's next checkpoint settles which line is the chain (``_settle``): the partner's
            # own line, or, where its signature runs back through this record (the first record of a partition
            # its retention cut short, say), the branch this record starts. Only the partner's own signed record
            # that must be new (``_owners_break``) breaks the chain there. Every record the walk holds has a seq
            # past the anchor, so a copy of an old record, signed or not, never starts a branch nor settles one.
            if self._owners_ahead and self._owners_break(state, seq):
                self._main(offset, doc, seq, prev, claimed, chain, state, signed, sound, flag)
            elif (state.strays < STRAYS_TRACKED and seq > state.anchor_seq
                    and not (claimed in state.nodes or claimed == state.anchor)
                    and form_problem(value, doc, claimed) is None):
                if self._track(state, claimed, seq, prev, offset, side=True, stray=True):
                    state.strays += 1
                elif not state.untracked:
                    # The bounds are full: the partner's own line may run through this record, so the partner's
                    # next signed record breaks the chain rather than wait for a path no one can show.
                    flag(f"{label}record seq {seq} starts a branch while more records wait for a checkpoint than "
                         f"are tracked ({self._per_chain:,} per chain, {self._in_all:,} in all): no checkpoint can "
                         "vouch for it")
                    self._untrack(str(chain), state)
        elif place == "side":
            self._side(offset, doc, seq, prev, claimed, str(chain), state, signed, sound, flag)
        else:
            self._main(offset, doc, seq, prev, claimed, chain, state, signed, sound, flag)
        if self.retention is not None and not found and seq == state.first_seq > 0:
            found.extend(self._start_check(offset, doc, self.retention))
        if self.pruned and not self.prunes:
            # A reader that holds a chain's waiting records as one lot cannot tell the branches apart: it
            # takes none of them (the chain is cut) and the forks are findings at the settling record.
            self.cut.extend(c for c in self.pruned if c not in self.cut)
            found.extend(f for f in self.settled if not isinstance(f, ChainFinding))
            self.pruned, self.settled = {}, [f for f in self.settled if isinstance(f, ChainFinding)]
        return doc, found

    def _start_check(self, offset: int, doc: dict[str, Any], retention: Retention) -> list[Finding]:
        """The start check of a chain whose first records are no longer held (``first_seq``), at its first record
        held, sound: the record before it was written when this one's ``prev_at`` says, and kept for as long as its
        ``keep_days`` says. Written since retention could take it (``Retention.since``), it cannot have expired,
        so it was deleted (DeleteRecords, or the topic's retention lowered by hand), which the chain alone cannot
        otherwise show. A record stating neither (written before chains stated them, or by a partner's subscriber,
        which does not know the deployment's retention) is not checked, and gives no ``StartFinding``.

        Nor is such a record judged by ``retention.days`` alone (the auditor's setting, which receipts topics are
        kept under too): a retention raised since (the setting and the topic both, by ``puente topics apply``)
        keeps what expired under the shorter one expired, and the first record held would then say its predecessor
        was written within today's retention, a deletion reported on every run where there was none. ``keep_days``
        is what tells those apart, and a subscriber writes none. What a receipts partition cut at its start costs is
        judged where it matters instead: ``broker.auditor.read_log`` reports every receipts partition whose log
        starts above offset 0 (``receipts_cut``), whatever took its start, and a recall of that partner's whose
        recalled view a decision still held delivered before the cut is then never acknowledged
        (``broker.audit.recalls``): receipts deleted, or expired, read as a recall not judged (or outstanding, where
        the receipts held show a holder waiting), never as one acknowledged. A view whose delivering decision is no
        longer held either is judged by the receipts held, as before: the decisions' own cut is checked here (the
        broker's blocks state ``keep_days``) and reported as ``deleted`` by ``audit recalls`` too."""
        prev, kept = when(doc.get("prev_at")), doc.get("keep_days")
        if prev is None or type(kept) is not int or expired_start(doc, retention) is not False:
            return []
        label = f"chain {plain(doc['chain'])} " if isinstance(doc.get("chain"), str) else "the chain "
        return [StartFinding(self.topic, self.partition, offset, (
            f"{label}starts at seq {doc.get('seq')}, and that record says the one before it was written at "
            f"{iso_utc(prev)}, within the retention it was kept under ({min(retention.days, kept):,} days, less a "
            "day for clocks): the records before it were deleted, not expired (DeleteRecords, or the topic's "
            "retention lowered by hand)"))]

    @staticmethod
    def _owners_break(state: ChainState, seq: int) -> bool:
        """Whether the partner's own signed record at ``seq``, continuing no record the walk holds, is one it wrote
        after every record walked, so the chain breaks there (the records waiting are cut off) rather than a copy of
        an old one (reported, and nothing more). Once the walk has anchored at a signed record of the partner's,
        past the anchor is new: the anchor is its newest signed record, and a copy has a seq at or below it. Before
        any anchor (the walk began where retention cut the partition, say), a copy of a checkpoint retention
        deleted is older than the records it would cut off: new is ahead of the chain and of every record the walk
        holds. Where the walk holds more records than it tracks (a flood of records continuing the chain, or of
        strays), past the anchor is new again: the flood must not keep the partner's next checkpoints from
        vouching for its receipts, and what a copy then cuts off is reported."""
        if seq <= state.anchor_seq:
            return False
        if state.anchor_seq >= 0 or state.untracked or state.strays >= STRAYS_TRACKED:
            return True
        return seq >= state.seq and all(seq > node[0] for node in state.nodes.values())

    def _place(self, state: ChainState, chain: str | None, seq: int, prev: str, claimed: str) -> Place:
        """Where a record of ``seq``, continuing ``prev``, stands in its chain (``Place``)."""
        if (seq, prev) == self._expected(state, chain, prev):
            return "main"
        if not self._forks(chain) or claimed in state.nodes or claimed == state.anchor:
            return "break"  # a copy of a record already walked is a repeat, never a branch
        parent = state.nodes.get(prev)
        if (prev == state.anchor and seq == state.anchor_seq + 1) or (parent is not None and parent[0] == seq - 1):
            return "side"
        return "break"

    def _expected(self, state: ChainState, chain: str | None, prev: str) -> tuple[int, str]:
        """The place (seq, hash) a record of ``chain`` continuing ``prev`` must have to be in place: the head's, or
        in a chain that does not fork, the stray's it continues, where the newest record walked was one
        (``ChainState.stray_seq``)."""
        if (not self._forks(chain) and state.stray_seq > state.seq and prev == state.stray_prev
                and prev != state.prev):
            return state.stray_seq, state.stray_prev
        return state.seq, state.prev

    def _track(self, state: ChainState, claimed: str, seq: int, prev: str, offset: int, side: bool,
               stray: bool = False) -> bool:
        """Track a waiting record by its hash, within the bounds; False when they are reached. A record that is
        not sound (``stray``) is marked 2: it is reported already, and no reader holds it to drop."""
        if claimed in state.nodes:  # a stray under a sound record's hash: the sound record's place
            state.nodes[claimed] = [seq, prev, offset, 2 if stray else int(side)]
            return True
        if (state.untracked or len(state.nodes) >= self._per_chain
                or (self._tracked >= self._in_all and state.anchor_seq < 0)):
            return False
        state.nodes[claimed] = [seq, prev, offset, 2 if stray else int(side)]
        self._tracked += 1
        return True

    def _forget(self, state: ChainState, anchor: str, anchor_seq: int) -> None:
        """The chain's waiting records are settled or cut off: what follows hangs from ``anchor``."""
        self._tracked -= len(state.nodes)
        state.nodes = {}
        state.anchor, state.anchor_seq, state.untracked, state.strays = anchor, anchor_seq, False, 0

    def _side(self, offset: int, doc: dict[str, Any], seq: int, prev: str, claimed: str, chain: str,
              state: ChainState, signed: bool, sound: bool, flag: Callable[[str], None]) -> None:
        """A record at a place another waiting record holds (a fork): it waits on its own branch, or, signed
        and sound, settles the fork for its branch. It never moves the chain's newest record, and one not
        sound is reported and followed by nothing (it cuts nothing: it is off the line)."""
        label = f"chain {plain(chain)} "
        if not sound:  # reported, and off the line (``feed``)
            return
        if signed:
            if state.untracked:
                # Records past the tracking bounds are held by the readers but not in ``nodes``: a forger's may
                # be among them, neither on this record's path nor prunable. None of the waiting records is
                # vouched for (the chain is cut), rather than one the signature does not cover.
                self.cut.append(chain)
                self.settled.append(Finding(self.topic, self.partition, offset, (
                    f"chain {plain(chain)}: the signed record at offset {offset} (seq {seq}) settles a fork while "
                    f"more records waited than are tracked ({self._per_chain:,} per chain, {self._in_all:,} in "
                    "all): none of the chain's waiting records is vouched for")))
            else:
                self._settle(chain, state, prev, seq, offset)
            self._take_signer(chain, state)
            self._forget(state, claimed, seq)
            state.tail, state.tail_first = 0, None
            at = doc.get("at")
            state.signed_seq, state.signed_offset = seq, offset
            state.signed_at = at if isinstance(at, str) else None
            state.seq, state.prev = seq + 1, claimed
            return
        if not self._track(state, claimed, seq, prev, offset, side=True):
            flag(f"{label}record seq {seq} forks the chain while more records wait for a checkpoint than are "
                 f"tracked ({self._per_chain:,} per chain, {self._in_all:,} in all): no checkpoint can vouch for it")
            self._untrack(chain, state)
            return
        if state.tail == 0:
            state.tail_first = offset
        state.tail += 1

    def _main(self, offset: int, doc: dict[str, Any], seq: int, prev: str, claimed: str, chain: str | None,
              state: ChainState, signed: bool, sound: bool, flag: Callable[[str], None]) -> None:
        """A record continuing the chain's newest record, or breaking it: as a linear chain, and for a receipt
        chain the waiting records tracked, settled or cut off with it."""
        forks = self._forks(chain)  # a receipt chain's record comes here sound, or the owner's own (``feed``)
        self._take_signer(chain, state)
        if not sound and state.tail and forks:
            # The partner's own signed record ahead of the chain: the records waiting are cut off from it (a
            # later checkpoint's hash path runs through this record, not through them). They are reported
            # here, and readers holding them drop them (``cut``).
            flag(f"chain {plain(str(chain))} {state.tail} unsigned record(s) from offset {state.tail_first} on are cut "
                 "off from the chain by this record: no later checkpoint vouches for them")
            state.tail, state.tail_first = 0, None
            self.cut.append(str(chain))
        if forks and (signed or not sound):
            if sound:
                self._settle(str(chain), state, None, seq, offset)
            self._forget(state, claimed, seq)
        elif forks and not state.untracked and not self._track(state, claimed, seq, prev, offset, side=False):
            self._untrack(str(chain), state)
        if signed and sound:
            state.tail, state.tail_first = 0, None
            at = doc.get("at")
            state.signed_seq, state.signed_offset = seq, offset
            state.signed_at = at if isinstance(at, str) else None
            if chain is None and self._signer is not None:
                note_dated(state.dated, self._signer, self._appended_ms, seq, offset)
        else:  # unsigned, or signed but not sound: vouches for nothing, and waits like a receipt
            if state.tail == 0:
                state.tail_first = offset
            state.tail += 1
        if forks or sound:
            state.seq, state.prev, state.stray_seq = seq + 1, claimed, -1
        elif seq >= state.seq:
            # A stray (class docstring): the head stays where the chain's newest sound record left it, so the
            # broker's next block, signed over it, is in its place; a record continuing the stray is too. Only a
            # stray at or past the head: a copy of an older record would otherwise lead the walk back down the
            # chain, through copies of the records after it, to a head behind the broker's.
            state.stray_seq, state.stray_prev = seq + 1, claimed

    def _take_signer(self, chain: str | None, state: ChainState) -> None:
        """The record ``feed`` checks is taken into its chain: the key that signed it, if good and in use, is noted
        as the chain's (and for a receipt chain its owner's) newest."""
        if self._signer is not None:
            note_key(state.signers, self._signer)
            if chain is not None:
                note_key(state.keys, self._signer)

    def _untrack(self, chain: str, state: ChainState) -> None:
        """The bounds kept a record of ``chain`` from being tracked: the walk holds less than the chain has, so no
        fork can be settled for a side (``_give_up_sides``), and the partner's next signed record breaks the chain
        (``_owners_break``)."""
        if not state.untracked:
            state.untracked = True
            self._give_up_sides(chain, state)

    def _give_up_sides(self, chain: str, state: ChainState) -> None:
        """Too many records wait for this chain to track them all: no signed record could be shown to run
        back through a side branch, so each is given up now (pruned, and a finding), never kept."""
        sides = {h: n for h, n in state.nodes.items() if n[3]}
        if not sides:
            return
        self._report(chain, sides, "no checkpoint came while the chain's waiting records were within the bounds "
                                   "tracked: none is vouched for")
        for h in sides:
            del state.nodes[h]
        self._tracked -= len(sides)

    def _settle(self, chain: str, state: ChainState, top: str | None, seq: int, offset: int) -> None:
        """A sound signed record (seq ``seq``) settles the chain's waiting records: those on its hash path
        (back from ``top``, the record it continues; None: the newest record, the main line) are vouched
        for, every other branch is pruned and reported as a fork."""
        if top is None:
            off = {h: n for h, n in state.nodes.items() if n[3]}
        else:
            path = set()
            at: str | None = top
            while at is not None and at in state.nodes and at not in path:
                path.add(at)
                at = state.nodes[at][1]
            off = {h: n for h, n in state.nodes.items() if h not in path}
        if off:
            self._report(chain, off, f"the signed record at offset {offset} (seq {seq}) vouches for the other branch")

    def _report(self, chain: str, off: dict[str, list[Any]], why: str) -> None:
        """Prune the records ``off`` (hash -> node) of ``chain``, with a finding per branch, where it began."""
        roots: dict[str, str] = {}  # each record off the path -> the first record of its branch

        def root(h: str) -> str:
            trail: list[str] = []
            seen: set[str] = set()
            while h not in roots and off[h][1] in off and h not in seen:  # hashes are real: a loop is a backstop
                seen.add(h)
                trail.append(h)
                h = off[h][1]
            top = roots.get(h, h)
            for t in (*trail, h):
                roots[t] = top
            return top

        sizes: dict[str, int] = {}
        for h in off:
            r = root(h)
            sizes[r] = sizes.get(r, 0) + 1
        held = sorted(int(n[2]) for n in off.values() if n[3] != 2)  # strays: held by no reader
        if held:
            self.pruned.setdefault(chain, []).extend(held)
        branches = sorted(sizes, key=lambda r: int(off[r][2]))
        for count, r in enumerate(branches, start=1):
            seq, at = int(off[r][0]), int(off[r][2])
            if count > FORKS_LISTED:
                self.settled.append(Finding(self.topic, self.partition, at, (
                    f"chain {plain(chain)}: {len(branches) - FORKS_LISTED} more fork(s) settled by the same signed "
                    "record are not listed one by one")))
                break
            self.settled.append(Finding(self.topic, self.partition, at, (
                f"chain {plain(chain)} fork at seq {seq}: {sizes[r]} record(s) from offset {at} on hold places in the "
                f"chain that other records hold, and {why}: no signature vouches for them")))

    def _check(self, doc: dict[str, Any], value: bytes, seq: int, prev: str, claimed: str, chain: str | None,
               state: ChainState, signed: bool, flag: Callable[[str], None], place: Place = "main") -> None:
        """The checks of one record (``feed``), each finding given to ``flag``."""
        label = f"chain {plain(chain)} " if chain is not None else ""
        if (why := misplaced(chain, doc, self.holds, self.owner)) is not None:
            flag(f"seq {seq}: {why}")
        if (why := form_problem(value, doc, claimed)) is not None:
            flag(f"{label}record seq {seq} {why}")
        want_seq, want_prev = self._expected(state, chain, prev)
        in_place = place != "side" and seq == want_seq and prev == want_prev
        if place == "side":
            pass  # a branch of the waiting records: a signed record's path settles it (``_settle``)
        elif seq != want_seq:
            kind = "gap: records missing" if seq > want_seq else "reordered or repeated record"
            flag(f"{label}{kind} (expected seq {want_seq}, found {seq})")
        elif prev != want_prev:
            flag(f"{label}record seq {seq} does not follow the record before it (prev hash differs)")
        if not signed:
            return
        state.signed += 1
        what = plain(doc["kind"], 40).lower()
        signer, raw = doc.get("signer"), signature_bytes(doc.get("sig"))
        try:
            good = (isinstance(signer, str) and raw is not None
                    and self.verify(signer, checkpoint_payload(self.topic, self.partition, doc), raw))
        except (KeyError, ValueError, TypeError):
            good = False
        if not good:
            flag(f"{what} seq {seq} has an invalid signature")
        elif not may_sign(chain, str(signer)):
            whose = "the broker's decisions" if chain is None else f"{plain(chain)}'s receipts"
            flag(f"{label}{what} seq {seq} is signed by {plain(str(signer))}, which may not vouch for {whose}")
        else:
            why = moved_back(state.signers, str(signer))
            if why is None and chain is not None:  # and a key its owner retired, in whichever chain
                why = retired(state.keys, str(signer), chain_owner(chain))
            if why is not None:
                flag(f"{label}{what} seq {seq} {why}")
            else:  # the owner's signature, with a key in use, whatever else is wrong (``feed``)
                self._owners_ahead = place == "break" and chain is not None
                self._signer = str(signer)  # noted if the record is taken (``_take_signer``)
                if chain is None and in_place and self.holds in (None, "decisions") and doc.get("kind") == "BLOCK":
                    # Only the broker's block, in its place, counts: a forged, foreign or replayed one neither hides
                    # a fall nor makes one. A block without a count (a worker from before it) sets it to 0, as a
                    # worker reading that head back counts from 0.
                    if (why := states_fall(doc, state.states)) is not None:
                        flag(f"block seq {seq} {why}")
                    states = doc.get("states")
                    state.states = states if type(states) is int and states >= 0 else 0
        if doc.get("kind") == "BLOCK" and (bad := unresolved_decisions(doc)):
            flag(f"block seq {seq} refers {bad} time(s) to decisions missing from its decision table")


    def vouched(self) -> list[Vouched]:
        """Each chain's last signed record found sound, as walked so far (``PartitionReport.vouched``)."""
        return [Vouched(chain, s.signed_seq, s.signed_at, s.signed_offset if s.signed_offset is not None else 0,
                        s.first_seq)
                for chain, s in sorted(self.chains.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
                if s.signed_seq is not None]

    @property
    def unsigned_tail(self) -> int:
        """Unsigned records after the last signed record of each chain, all chains together."""
        return sum(s.tail for s in self.chains.values())

    def tail_findings(self) -> list[Finding]:
        """In a topic of receipts, the receipts that no checkpoint of their partner's vouches for (yet):
        a subscriber signs every batch it commits, so only someone else can have written them. (The
        queries topic holds unsigned records by design: its tail is no problem.)"""
        if self.holds != "receipts":
            return []
        return [Finding(self.topic, self.partition, s.tail_first if s.tail_first is not None else 0, (
            f"chain {plain(chain)}: {s.tail} receipt record(s) from here on that no checkpoint of "
            "the partner's vouches for")) for chain, s in self.chains.items() if chain is not None and s.tail]


def verify_partition(
    topic: str, partition: int, records: Iterable[tuple[int, bytes]], verify: VerifyFn,
    holds: Holds | None = None, owner: str | None = None, log_start: int = 0,
    retention: Retention | None = None,
) -> PartitionReport:
    """Check one partition's records, given in offset order as (offset, value).

    ``holds`` says what the topic is for, ``"decisions"``, ``"receipts"`` (of partner ``owner``,
    when given), ``"denials"`` or ``"queries"``: a record of another sort there is reported (None:
    any may be). In a topic of receipts, receipts that no checkpoint of their partner's vouches for
    are reported too: a subscriber signs every batch it commits, so only someone else can have
    written them. ``log_start``: the partition's first offset Kafka still holds (``PartitionWalk``: a chain
    whose first records were before it starts where it is held), ``retention`` what such a chain's start is
    judged by (``PartitionWalk._start_check``). (A :class:`PartitionWalk` over every record; ``records`` is read
    once, as a stream.)
    """
    report = PartitionReport(topic, partition)
    walk = PartitionWalk(topic, partition, verify, holds, owner, prunes=True, log_start=log_start,
                         retention=retention)
    for offset, value in records:
        report.records += 1
        report.add(walk.feed(offset, value)[1])
        report.add(walk.settled)
    report.chains = len(walk.chains)
    report.checkpoints = sum(s.signed for s in walk.chains.values())
    report.unsigned_tail = walk.unsigned_tail
    report.add(walk.tail_findings())
    report.vouched = walk.vouched()
    return report
