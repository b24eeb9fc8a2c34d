"""The auditor's service: walk the audit topics on Kafka, verify every chain, list what verifies.

``verify_topics`` and ``read_log`` take the topics to read and what each holds; ``index_topics``
verifies the same way into the audit index (``broker.audit_index``), continuing where it stopped;
``audit_topics`` finds them under the deployment's prefix and refuses when there are none (a wrong
prefix must not read as "no problems"); ``signature_checks`` gives the keys auditors verify with.
All of them stream: no partition is ever held in memory. What a walk must keep for the whole audit
(the deliveries receipts are matched against; ``audit log``'s rows, put in time order by
``broker.spill.TimeSorted``) goes to a private temporary SQLite file, so memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from broker.access import Acl, denials_transaction, subscriber_group
from broker.audit.chain import ChainHead, ChainWriter, flatten, last_ingress, listed
from broker.audit.denials import CutLine, concerns, denial, log_lines
from broker.audit.recalls import ReceiptsCut, deadline_hours
from broker.audit.receipts import (
    Unvouched,
    acknowledged,
    appended_at,
    given_up,
    held_receipt,
    match_receipt,
    sent_records,
)
from broker.audit.verify import (
    ChainState,
    DecisionsStart,
    EndCheck,
    FeedEnds,
    Finding,
    GroupEnds,
    Holds,
    PartitionReport,
    PartitionWalk,
    ReceiptReach,
    Retention,
    StartFinding,
    VerifyFn,
    decisions_start,
    emptied_check,
    emptied_kept_for_ever,
    end_check,
    expired_before,
    missing_topic,
    parse_record,
    plain,
    receipt_ends,
    retired_keys,
    unaccounted_ingress,
    undelivered_feeds,
    unnamed_ingress,
    when,
)
from broker.audit_index import PLACES_LAYOUT, AuditIndex, ChainEnds, SqlReceiptBook, at_ms
from broker.crypto import KeyKind, checker, parse_key_id, refuse_one_key_two_ids, sign_checkpoint
from broker.kafka import (
    Admin,
    KafkaConnection,
    StillOpen,
    TopicPartition,
    check_audit_retention,
    group_offsets,
    partitions_of,
    producer,
    read_range,
    reader,
    running,
    settle,
    topic_settings,
    transaction,
    wait_settled,
)
from broker.keystore import Keystore, load_key_file, signature_check
from broker.spill import Spill, sort_key, spill_error
from broker.topology import TopicNames, feed_readers
from policies import PolicySet, load_policy_set
from puente.errors import AuditChainError, ConfigError, KafkaAccessError, KafkaOperationError
from puente.strict import open_regular
from puente.wire import iso_utc

END_SETTLE_S = 15.0
"""How long ``verify_topics`` waits for the transactions open on a decisions partition to end before
checking a short-looking end again: Kafka writes a transaction's markers partition by partition, so
the broker group's offset can show before the block that committed with it (for seconds while a
node is down). A partition whose transactions do not end within it is "not checked", not short."""

PROGRESS_EVERY = 2_000  # records between two progress reports


@dataclass
class WalkProgress:
    """How far a walk of the audit topics is (``verify_topics``, ``read_log``): its ``report`` callback is called
    every ``PROGRESS_EVERY`` records and after each partition, so a command can say how far a long walk is."""

    report: Callable[[WalkProgress], None]
    partitions: int = 0
    records: int = 0
    partitions_done: int = 0
    began: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.began

    def record(self) -> None:
        self.records += 1
        if self.records % PROGRESS_EVERY == 0:
            self.report(self)

    def partition_done(self) -> None:
        self.partitions_done += 1
        self.report(self)


async def verify_topics(conn: KafkaConnection, topics: Mapping[str, Holds], verify: VerifyFn,
                        owners: Mapping[str, str] | None = None,
                        ends: Mapping[tuple[str, int], int] | None = None,
                        feed_ends: FeedEnds | None = None,
                        progress: Callable[[WalkProgress], None] | None = None,
                        retention: Retention | None = None) -> list[PartitionReport]:
    """Walk every partition of every audit topic, oldest record first, and report what is wrong.

    ``topics`` maps each topic to what it holds (``"decisions"``, ``"receipts"``, ``"denials"``,
    ``"queries"``); ``owners`` maps a receipts topic to its partner, whose chains alone it may hold. A
    topic given that the cluster does not hold is a finding (``missing_topic``), never an empty walk.
    When the decisions are among them (give them first), every receipt is also checked against them,
    even when they hold no record (a receipt then names a delivery never made):
    a receipt that names no delivery to that partner at the feed record it names (another alert, feed
    or version, a time before it, a record another receipt put another delivery at) is reported
    (``broker.audit.receipts``). ``ends``, the
    broker group's committed ingress offsets (``broker_ends``, fetched before the walk), has each
    decisions partition's end checked against them (``end_check``), and ``feed_ends``, the partners'
    subscriber groups' committed feed offsets (``subscriber_ends``, fetched before the walk too), has
    the receipts checked against them (``receipt_ends``): records dropped from a chain's end are a
    finding. A partition that holds no record while its log starts past offset 0 had every record deleted, by
    retention or by hand, which nothing this walk holds tells apart: its report says it is not checked
    (``PartitionReport.unchecked``), never sound. Each partition's walk knows where its log starts
    (``log_starts``): a chain whose first
    records retention deleted is vouched for from its first record held, not called a gap
    (``PartitionWalk``), unless that record says its predecessor was written since ``retention`` could take it
    (``Retention.since``): then records were deleted. Where retention took a decisions chain's first records, a
    receipt of a delivery they held is no finding (``decisions_starts``; counted in its report's ``expired``).
    Group offsets can be deleted, the logs' own offsets only with their records: each ingress and feed
    partition's log start and end (``held_spans``, read before the walk) that no sound chain accounts for and no
    group offset vouches for reads "not checked" (``unaccounted_ingress``, ``undelivered_feeds``). The broker's key
    order holds across all its chains (``retired_keys``): a block signed by a
    key it had moved on from in another partition is a finding too, given once every chain is walked.
    Records are verified as they stream in: what is held is one partition's findings and
    chain states, never its records; the deliveries, and the feed records receipts bound them to, go
    to a temporary file (``_Delivered``). ``progress``, when given, hears how far the walk is
    (``WalkProgress``).
    """
    reports = []
    budget = _Settle()
    walked = WalkProgress(progress) if progress is not None else None
    reach = ReceiptReach(feed_ends.readers, feed_ends.feeds) if feed_ends is not None else None
    unsettled: set[TopicPartition] = set()
    silent: set[str] = set()
    broker_chains: list[tuple[str, int, ChainState]] = []  # one key order across them all (``retired_keys``)
    forever = _KeptForEver(conn, topics)
    async with running(reader(conn, "puente-auditor"), conn, "reading the audit topics") as consumer, \
            _Delivered() as delivered:
        delivered.reads(topics)
        parts = {topic: await partitions_of(consumer, topic) for topic in topics}
        if walked is not None:
            walked.partitions = sum(len(ps) for ps in parts.values())
        # Where each partition's log starts: a chain whose first records retention deleted starts there.
        starts = await log_starts(consumer, [TopicPartition(t, p) for t, ps in parts.items() for p in ps])
        # Before the walk, as the groups' offsets are: what is appended meanwhile is not asked of the chains.
        held = await held_spans(consumer, topics, ends is not None, feed_ends)
        delivered.expired_before = expired_before(await decisions_starts(consumer, topics, parts, starts, verify,
                                                                         retention))
        receipts = {t: [TopicPartition(t, p) for p in parts[t]]
                    for t, holds in topics.items() if holds == "receipts"} if reach is not None else {}
        unsettled = await _receipts_settled(conn, receipts, feed_ends)
        for topic, holds in topics.items():
            if not parts[topic]:
                reports.append(missing_topic(topic, holds))
            for partition in parts[topic]:
                walk = PartitionWalk(topic, partition, verify, holds, (owners or {}).get(topic), prunes=True,
                                     log_start=starts.get(TopicPartition(topic, partition), 0),
                                     retention=retention)
                if reach is not None and holds == "receipts":
                    reach.begin(walk.owner)
                reports.append(report := await _verify_partition(conn, consumer, walk, delivered,
                                                                 ends if holds == "decisions" else None, budget,
                                                                 reach if holds == "receipts" else None, walked))
                # Emptied past offset 0: by retention or by hand, which no earlier state here tells apart.
                report.unchecked = emptied_check(topic, partition, walk.log_start, report.records > 0, holds)
                if report.unchecked is not None and await forever.for_ever(topic, holds):
                    report.unchecked = None
                    report.add([emptied_kept_for_ever(topic, partition, walk.log_start)])
                if walked is not None:
                    walked.partition_done()
                if holds in ("decisions", "denials") and None in walk.chains:
                    broker_chains.append((topic, partition, walk.chains[None]))
        silent = _silent(receipts, {r.topic for r in reports if r.records}, starts, owners)
        sent_to = delivered.feeds() if held.feeds else set()
    for found in retired_keys(broker_chains):
        next(r for r in reports if (r.topic, r.partition) == (found.topic, found.partition)).add([found])
    out = reports + _group_end_reports(reports, ends, reach, feed_ends, unsettled, silent, owners)
    if ends is not None:
        out += unaccounted_ingress(out, held.ingress, ends)
    return out + undelivered_feeds(held.feeds, sent_to, subscriber_group) + held.unlisted


async def _receipts_settled(conn: KafkaConnection, receipts: Mapping[str, list[TopicPartition]],
                            feed_ends: FeedEnds | None) -> set[TopicPartition]:
    """The receipts partitions whose open transactions did not end (``settle``), when any subscriber group has
    committed feed offsets: a subscriber's receipts commit with its feed offsets, whose markers Kafka may write on
    the receipts partition after it answers the offsets, so every transaction open there is let end first (within
    a settle time of its own: the decision chains' ends still have theirs). Every reader that checks the receipts'
    ends against those offsets (``verify_topics``, ``read_log``) calls it before its walk."""
    if feed_ends is None or not any(o > 0 for o in feed_ends.committed.values()):
        return set()
    return await settle(conn, [tp for tps in receipts.values() for tp in tps], timeout_s=END_SETTLE_S)


def _silent(receipts: Mapping[str, list[TopicPartition]], written: set[str], starts: Mapping[TopicPartition, int],
            owners: Mapping[str, str] | None) -> set[str]:
    """The partners whose receipts topic never held a record (none read, none deleted): each reads with a reader
    of its own, which writes no receipts (``receipt_ends``'s ``silent``); ``written``: the topics records were
    read from."""
    written = written | {tp.topic for tp, at in starts.items() if at > 0}
    return {(owners or {}).get(t) or "" for t in receipts if t not in written}


def _group_end_reports(reports: list[PartitionReport], ends: Mapping[tuple[str, int], int] | None,
                       reach: ReceiptReach | None, feed_ends: FeedEnds | None, unsettled: set[TopicPartition],
                       silent: set[str], owners: Mapping[str, str] | None) -> list[PartitionReport]:
    """The end reports no partition's walk gives, after every chain is walked: each ingress partition the broker
    group committed past that no decision chain's end names (``unnamed_ingress``, given the ``reports`` that hold
    the decision chains' ends), and each feed partition's receipts against its subscriber group's offsets
    (``receipt_ends``, given the ``reach`` the walk took every receipt into). The one end rule of `audit verify`,
    which `audit log` and `audit recalls` apply too (``read_log``'s ``end_reports``)."""
    out = []
    if ends is not None:  # with no decisions topic at all, every committed ingress partition is unnamed
        out += unnamed_ingress(reports, ends)
    if reach is not None and feed_ends is not None:
        stuck = {(owners or {}).get(tp.topic) for tp in unsettled}
        out += receipt_ends(reach, feed_ends.committed, feed_ends.asked, subscriber_group, stuck, silent)
    return out


async def _settled_end(conn: KafkaConnection, tp: TopicPartition, end: EndCheck | None,
                       settle: _Settle) -> EndCheck | None:
    """A decisions partition's ``end`` (``end_check``) that reads short, once every transaction open on the
    partition has ended: None when they all did (the caller reads on from its last offset and checks the end
    again: the block may have committed with the offset and not shown yet), else the end marked unsettled (not
    checked). An end that is not short is given back as it is."""
    if end is None or not end.short:
        return end
    try:
        await wait_settled(conn, tp, timeout_s=settle.left())
    except StillOpen:
        return replace(end, unsettled=True)
    return None


def _short_end(topic: str, partition: int, end: EndCheck | None, offset: int, newest_unsound: int,
               last_at: int) -> Finding | None:
    """The finding of a decisions partition whose chain ends short (``EndCheck.short``), at its last ``offset``
    read; none where records after the last sound one naming an ingress record (at ``last_at``) are unsound
    (``newest_unsound`` past it): they are findings already, and the end may be among them."""
    if end is None or not end.short or newest_unsound > last_at:
        return None
    return Finding(topic, partition, offset, end.problem())


async def log_starts(consumer: Any, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's first offset still held (above 0 once records were deleted or expired)."""
    return dict(await consumer.beginning_offsets(tps)) if tps else {}


MAX_SPANS = 10_000
"""The most ingress and feed partitions ``held_spans`` lists the offsets of: past it, the rest are not checked."""


@dataclass(frozen=True)
class HeldSpans:
    """The log (start, end) offsets of the deployment's ingress and feed partitions (``held_spans``), and a report
    saying what was not listed (``unlisted``: past ``MAX_SPANS``), for ``verify_topics``'s checks of what the
    decision chains account for (``verify.unaccounted_ingress``, ``verify.undelivered_feeds``)."""

    ingress: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    feeds: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    unlisted: list[PartitionReport] = field(default_factory=list)


async def held_spans(consumer: Any, topics: Mapping[str, Holds], ingress: bool,
                     feed_ends: FeedEnds | None) -> HeldSpans:
    """Where each ingress partition's log starts and ends (when ``ingress``: the broker group's ends are checked),
    and each feed partition's (when ``feed_ends``: the receipts' are), under the prefix of the decisions topic among
    ``topics`` (``TopicNames.decisions``; none there: nothing). One ListOffsets round for the starts and one for the
    ends, for at most ``MAX_SPANS`` partitions, which the auditor's DESCRIBE on those topics allows
    (``broker.access``); a group's offsets can be deleted, the logs' offsets only with their records."""
    suffix = TopicNames("").decisions
    decisions = [t for t, holds in topics.items() if holds == "decisions" and t.endswith(suffix)]
    if not decisions or not (ingress or feed_ends is not None):
        return HeldSpans()
    names = TopicNames(decisions[0][:-len(suffix)])
    wanted = ([names.ingress("")] if ingress else []) + ([names.feeds] if feed_ends is not None else [])
    tps = [TopicPartition(t, p) for t in sorted(await consumer.topics()) if t.startswith(tuple(wanted))
           for p in await partitions_of(consumer, t)]
    unlisted = []
    if len(tps) > MAX_SPANS:
        left = tps[MAX_SPANS:]
        unlisted.append(PartitionReport(left[0].topic, left[0].partition, unchecked=(
            f"{len(left)} ingress or feed partition(s) from {plain(left[0].topic, 120)}[{left[0].partition}] on, past "
            f"the first {MAX_SPANS:,}: their log offsets were not listed, so what they hold was not checked against "
            "the decision chains")))
        tps = tps[:MAX_SPANS]
    if not tps:
        return HeldSpans(unlisted=unlisted)
    starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    spans = {(tp.topic, tp.partition): (starts.get(tp, 0), ends.get(tp, 0)) for tp in tps}
    ingress_prefix = names.ingress("")
    return HeldSpans({k: v for k, v in spans.items() if k[0].startswith(ingress_prefix)},
                     {k: v for k, v in spans.items() if not k[0].startswith(ingress_prefix)}, unlisted)


async def decisions_starts(consumer: Any, topics: Mapping[str, Holds], parts: Mapping[str, list[int]],
                           starts: Mapping[TopicPartition, int], verify: VerifyFn,
                           retention: Retention | None) -> list[DecisionsStart]:
    """What the first record held of each decisions partition whose log starts above offset 0 says of the records
    before it (``verify.decisions_start``), read before the walk: receipts are matched against the deliveries held
    with it (``expired_before``), whichever partition a receipt's delivery was in and wherever the walk then is, so
    `audit verify`, `audit log` and the audit index (whose catch-up may not read that record again) judge them
    alike. Nothing without a ``retention`` to judge a start by."""
    if retention is None:
        return []
    out = []
    for topic in (t for t, holds in topics.items() if holds == "decisions"):
        for partition in parts.get(topic, []):
            tp = TopicPartition(topic, partition)
            if (log_start := starts.get(tp, 0)) <= 0:
                continue
            async with contextlib.aclosing(read_range(consumer, tp)) as records:
                async for rec in records:
                    if rec.unreadable is None:
                        out.append(decisions_start(topic, partition, log_start, rec.offset, rec.value or b"",
                                                   rec.appended_ms, verify, retention))
                    break
    return out


class _Settle:
    """One ``END_SETTLE_S`` for the whole walk, started by the first end that has to wait: a node down
    makes many ends wait at once, and each waits only for what is left of it."""

    def __init__(self) -> None:
        self.deadline: float | None = None

    def left(self) -> float:
        if self.deadline is None:
            self.deadline = time.monotonic() + END_SETTLE_S
        return max(0.0, self.deadline - time.monotonic())


async def _verify_partition(conn: KafkaConnection, consumer: Any, walk: PartitionWalk, delivered: _Delivered,
                            ends: Mapping[tuple[str, int], int] | None, settle: _Settle,
                            reach: ReceiptReach | None = None,
                            walked: WalkProgress | None = None) -> PartitionReport:
    """One partition's report (``verify_topics``); its end checked against ``ends`` when given, and each
    of its receipts taken into ``reach`` when given."""
    tp = TopicPartition(walk.topic, walk.partition)
    report = PartitionReport(walk.topic, walk.partition)
    unmatched = PartitionReport(walk.topic, walk.partition)  # receipts for no delivery, bounded as findings are
    last: dict[str, Any] | None = None  # the newest sound record naming an ingress record
    last_at = -1  # its offset
    offset = -1

    async def walk_from(start: int | None) -> None:
        nonlocal last, last_at, offset
        async for rec in read_range(consumer, tp, start):
            offset = rec.offset
            report.records += 1
            if walked is not None:
                walked.record()
            doc, found = walk.feed(rec.offset, rec.value, rec.appended_ms, rec.unreadable)
            report.add(found)
            report.add(walk.settled)
            # A chain's first record held whose predecessor was deleted (``StartFinding``) is sound itself: its
            # deliveries and its ingress count, as `audit log` and the audit index take them.
            sound = all(isinstance(f, StartFinding) for f in found)
            delivered.cut(walk.cut)
            delivered.prune(walk.pruned)
            # The reach holds a chain's waiting receipts as one lot: a fork settled cuts them there (its end
            # may then read short, never long with a forger's receipts).
            if reach is not None and (why := reach.take(doc, sound, [*walk.cut, *walk.pruned])) is not None:
                report.add([Finding(walk.topic, walk.partition, rec.offset, why)])
            if doc is not None and sound:
                if last_ingress(doc) is not None:
                    last, last_at = doc, rec.offset
                expired = delivered.expired
                unmatched.add(Finding(walk.topic, walk.partition, at, why) for at, why in delivered.check(
                    doc, rec.offset, len(rec.value or b""), rec.appended_ms))
                report.expired += delivered.expired - expired

    delivered.begin()
    await walk_from(None)
    if ends is not None:
        report.end = await _settled_end(conn, tp, end_check(last, ends), settle)
        if report.end is None and last is not None:  # settled: what was committed by then is there to read
            await walk_from(offset + 1)
            report.end = end_check(last, ends)
        if (short := _short_end(walk.topic, walk.partition, report.end, offset, report.newest, last_at)) is not None:
            report.add([short])
    report.chains = len(walk.chains)
    report.checkpoints = sum(c.signed for c in walk.chains.values())
    report.unsigned_tail = walk.unsigned_tail
    report.vouched = walk.vouched()
    tail = walk.tail_findings()
    report.add(tail)
    # A receipt already reported as unvouched is not reported again as unmatched (among those listed; past
    # ``MAX_LISTED`` they are counted as they came).
    report.add(f for f in unmatched.findings if f.offset not in {t.offset for t in tail})
    report.unlisted += unmatched.unlisted
    report.newest = max(report.newest, unmatched.newest)
    return report


async def broker_ends(conn: KafkaConnection, group: str, prefix: str) -> dict[tuple[str, int], int]:
    """The broker group's committed offset of every ingress partition of the deployment under ``prefix``,
    for ``verify_topics``'s ``ends`` (a group id set by hand could hold other topics' offsets too).

    Fetched before the walk: whatever the broker commits meanwhile only makes its chains longer than
    these offsets, never shorter. Kafka lists only the partitions of topics this login may describe,
    so a partition left out is reported as "end not checked", never as sound."""
    ingress = TopicNames(prefix).ingress("")
    return {tp: offset for tp, offset in (await group_offsets(conn, group)).items() if tp[0].startswith(ingress)}


async def group_ends(conn: KafkaConnection, prefix: str, broker_group: str, feeds: Iterable[str],
                     policy_dir: Path | None, *, ingress: bool = True, receipts: bool = True) -> GroupEnds:
    """Everything chain ends are checked against, read before the chains are (``verify_topics``'s
    ``ends`` and ``feed_ends``, ``index_topics``'s ``ends``): the broker group's committed ingress
    offsets (``broker_ends``), the partners' subscriber groups' committed offsets of the ``feeds``
    (``subscriber_ends``), with each feed's partner from the policy in ``policy_dir``. A login refused
    offsets, or a policy that cannot be read, still has every chain read: what it kept from view is
    in ``refused``, one line each, and those ends are "not checked", never sound.

    A reader that checks only some chains' ends reads only what they are checked against, so nothing else it
    cannot read makes them "not checked": ``ingress`` False skips the broker group's offsets (no decisions chain's
    end counts: its ends read not checked, ``EndCheck.committed`` None), ``receipts`` False the policy and the
    subscriber groups (no receipt's end counts: no feed's reader is needed)."""
    refused: list[str] = []
    names = TopicNames(prefix)
    committed: dict[tuple[str, int], int] = {}
    if ingress:
        try:
            committed = await broker_ends(conn, broker_group, prefix)
        except (KafkaAccessError, KafkaOperationError) as exc:
            refused.append(str(exc))
    if not receipts:
        return GroupEnds(committed, FeedEnds({}, frozenset(), names.feeds, {}), tuple(refused))
    # Which partner reads which feed is the policy's word: only that partner's receipts count for it.
    try:
        readers = feed_readers(load_policy_set(policy_dir), names)
    except ConfigError as exc:  # PolicyError too
        refused.append(f"the policy in {policy_dir} could not be read ({str(exc).splitlines()[0]}), and it says "
                       "which partner reads each feed: check PUENTE_POLICY_DIR")
        readers = {}
    try:
        feed_ends = await subscriber_ends(conn, prefix, feeds, readers)
    except (KafkaAccessError, KafkaOperationError) as exc:
        refused.append(str(exc))
        feed_ends = FeedEnds({}, frozenset(), names.feeds, readers)
    return GroupEnds(committed, feed_ends, tuple(refused))


async def subscriber_ends(conn: KafkaConnection, prefix: str, feeds: Iterable[str],
                          readers: Mapping[str, str]) -> FeedEnds:
    """Each partner's subscriber group's committed offset of every partition of its feed, for
    ``verify_topics``'s ``feed_ends``; ``feeds`` are the feed topics under ``prefix`` this login sees
    (``AuditTopics.feeds``), ``readers`` each feed's partner in the policy (``feed_readers``).

    Fetched before the walk, like ``broker_ends``: receipts committed meanwhile only reach further. A
    feed partition the receipts name with no offset here (none visible to this login, none settled,
    the offsets deleted, the feed topic gone) is reported as "end not checked", never as sound."""
    asked = frozenset(f for f in feeds if f.startswith(TopicNames(prefix).feeds))
    committed: dict[tuple[str, int], int] = {}
    for feed in sorted(asked):
        committed.update((tp, offset) for tp, offset in (await group_offsets(conn, subscriber_group(feed))).items()
                         if tp[0] == feed)
    return FeedEnds(committed, asked, TopicNames(prefix).feeds, dict(readers))


class _Delivered(Spill):
    """The feed records sound decision records say went out, and the check of receipts against them.

    Receipts are matched once the walk reads decisions (``known``): a decisions topic among those walked
    (``reads``), even one that holds no record, or a sound block seen. An empty decisions topic delivered
    nothing, so a receipt claiming a delivery is then a finding, never passed unchecked. Only a walk of
    no decisions topic at all (receipts alone, which cannot say what was delivered) leaves them unmatched.
    Call ``check`` with every sound record in order.
    A receipt may come any time after its delivery, so every delivery (alert, partner, feed topic,
    version sent, time) is needed until the walk ends, and so is the feed record each partner's
    receipts bound each to (``broker.audit.receipts.match_receipt``): they grow with the whole audit
    (millions in a year), so they are kept in a ``Spill`` file, the same tables the audit index
    matches with (``SqlReceiptBook``): memory stays flat, and matching a receipt is a few lookups.
    """

    _what = "the deliveries receipts are matched against"
    _schema = ("CREATE TABLE delivered (id INTEGER PRIMARY KEY, alert TEXT NOT NULL, partner TEXT NOT NULL, "
               "feed TEXT, version INTEGER, at_ms INTEGER)",
               "CREATE INDEX delivered_by_alert ON delivered (alert, partner)", *PLACES_LAYOUT)
    _SENT = "SELECT id AS k, feed, version, at_ms FROM delivered WHERE alert = ? AND partner = ?"

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__(folder)
        self.known = False
        # Deliveries decided before it may have expired with their decisions (``verify.expired_before``), and the
        # receipts matched as such so far (``match_receipt``).
        self.expired_before: int | None = None
        self.expired = 0
        # The partition being walked's receipts no checkpoint has vouched for yet, per chain, in offset order: what
        # ``match_receipt`` reads of each, as bytes (``held_receipt``), never the parsed record (``UNVOUCHED_BYTES``).
        self._waiting: Unvouched[bytes] = Unvouched()
        self._gave_up = 0  # receipts given up in the partition being walked

    def reads(self, topics: Mapping[str, Holds]) -> None:
        """The walk reads ``topics``: with a decisions topic among them, receipts are matched from the first one
        vouched for, whatever that topic holds (nothing, say) and wherever it comes (give it first: receipts
        walked before it are matched against no delivery, findings, never passed)."""
        if "decisions" in topics.values():
            self.known = True

    def feeds(self) -> set[str]:
        """The feed topics sound blocks record a delivery to (``sent_records``)."""
        try:
            return {feed for (feed,) in self.conn.execute("SELECT DISTINCT feed FROM delivered WHERE feed IS NOT NULL")}
        except sqlite3.Error as exc:
            raise spill_error(self._what, exc, self._folder) from None

    def begin(self) -> None:
        """A partition's walk begins: receipts left waiting in the one before will never be vouched for."""
        self._waiting.clear()
        self._gave_up = 0

    def cut(self, chains: Iterable[str]) -> None:
        """Chains the walk cut off: no checkpoint will vouch for their waiting receipts."""
        for chain in chains:
            self._waiting.pop(chain)

    def prune(self, pruned: Mapping[str, Iterable[int]]) -> None:
        """Receipts a signed record's path does not run through (``PartitionWalk.pruned``): never vouched for."""
        for chain, offsets in pruned.items():
            self._waiting.drop(chain, offsets)

    def check(self, doc: dict[str, Any], offset: int, size: int = 0,
              appended_ms: int | None = None) -> list[tuple[int, str]]:
        """Take in the sound record at ``offset`` (of ``size`` bytes, appended by Kafka at ``appended_ms`` when its
        time is Kafka's): a block's deliveries; a receipt, held until a checkpoint of its chain vouches for it; a
        checkpoint, whose chain's receipts are then matched to the deliveries they name and bound to their places, in
        order (``match_receipt``, each dated no earlier than the checkpoint's Kafka time, as ``appended_at`` dates its
        row). Returns (offset, why) of each of those receipts that matches none; those matched to a delivery that
        expired with its decision are counted (``expired``). Anyone may write a receipts topic: a receipt no
        checkpoint vouches for binds nothing, so it cannot take a delivery's place before the partner's own receipt
        does. What is held is bounded (``Unvouched``): a receipt given up to make room is returned as unvouched."""
        kind, chain = doc.get("kind"), doc.get("chain")
        if kind == "BLOCK" and chain is None:
            self.known = True
            self.write("INSERT INTO delivered (alert, partner, feed, version, at_ms) VALUES (?, ?, ?, ?, ?)",
                       [(alert, partner, feed, version if version is not None and _INT64[0] <= version <= _INT64[1]
                         else None, at_ms(at)) for alert, partner, feed, version, at in sent_records(doc)])
            return []
        if not isinstance(chain, str):
            return []
        if kind == "RECEIPT":
            return self._given_up([at for at, _ in self._waiting.add(chain, offset, held_receipt(doc), size)])
        if kind != "CHECKPOINT":
            return []
        vouched = self._waiting.pop(chain, vouched=True)
        if not self.known:
            return []
        book = SqlReceiptBook(self.conn, self._SENT)
        unmatched = []
        signed = _kafka_time(appended_ms)
        try:
            for at, receipt in vouched:
                row = orjson.loads(receipt)
                if signed is not None:
                    row["appended_at"] = iso_utc(signed)
                match = match_receipt(row, book, expired_before=self.expired_before)
                if isinstance(match, str):
                    unmatched.append((at, match))
                else:
                    self.expired += match.expired
                    book.bind(match)
        except sqlite3.Error as exc:
            raise spill_error(self._what, exc, self._folder) from None
        return unmatched

    def _given_up(self, offsets: list[int]) -> list[tuple[int, str]]:
        """Findings for receipts given up unvouched (``receipts.given_up``: the first of a partition one by one,
        then one line saying more follow unlisted, as the audit index has them)."""
        out = given_up(self._gave_up, offsets)
        self._gave_up += len(offsets)
        return out


_INT64 = (-(2**63), 2**63 - 1)  # what SQLite holds: a version beyond it is none a receipt can name


_ROW_KINDS: dict[str, frozenset[str]] = {"decisions": frozenset({"DECISION", "DEAD_LETTER", "GAP"}),
                                         "receipts": frozenset({"RECEIPT"}), "denials": frozenset({"DENIAL"}),
                                         "queries": frozenset({"QUERY"})}
"""The kinds of the rows ``LogFilter`` takes that a sound record of a topic holding each can give (``flatten``)."""


@dataclass(frozen=True)
class LogFilter:
    """Which audit records ``puente audit log`` shows."""

    partner: str | None = None
    alert: str | None = None
    agreement: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[str] = frozenset({"DECISION", "DEAD_LETTER", "GAP", "RECEIPT", "DENIAL"})
    # (partner, reference) of the decisions about ``alert`` passed so far, whose receipts are then about it too.
    refs: set[tuple[Any, str]] = field(default_factory=set, compare=False, repr=False)

    def accepts(self, doc: dict[str, Any], *, timed: bool = True) -> bool:
        """Whether row ``doc`` passes the filter; without ``timed``, all but its time window: a receipt held for its
        checkpoint is placed in time only once that vouches for it (``in_window``)."""
        kind = doc.get("kind")
        if not isinstance(kind, str):
            return False
        # First: a decision about the alert teaches its reference even when its own row is not listed (``--kind``).
        if self.alert and not self._names_alert(doc, kind):
            return False
        if kind not in self.kinds:
            return False
        if self.partner:
            who = doc.get("principal") if kind == "DENIAL" else doc.get("partner")
            if who != (f"User:partner-{self.partner}" if kind == "DENIAL" else self.partner):
                return False
        if self.agreement and doc.get("agreement") != self.agreement:
            return False
        return not timed or self.in_window(doc)

    def _names_alert(self, doc: dict[str, Any], kind: str) -> bool:
        """Whether row ``doc`` is about ``alert``, named by its own id or by a partner's reference for it (``flatten``).
        A receipt names only its partner's reference: one naming a reference a decision of the alert passed here gave
        its partner is the alert's too (``read_log`` reads the decisions before the receipts they deliver)."""
        if kind == "RECEIPT":
            return doc.get("alert_id") == self.alert or (doc.get("partner"), doc.get("alert_id")) in self.refs
        if doc.get("alert_id") == self.alert or doc.get("ref") == self.alert:
            if isinstance(ref := doc.get("ref"), str):
                self.refs.add((doc.get("partner"), ref))
            return True
        return False

    def lists_from(self, holds: Holds, owner: str | None = None) -> bool:
        """Whether a topic that ``holds`` (a receipts topic: ``owner``'s, when known) can give a row the filter passes:
        one of the kinds it takes (``_ROW_KINDS``), and for a receipts topic of its partner (each of its rows is its
        owner's: ``flatten``, ``verify.unheld``); or, the decisions, can teach it the references ``alert``'s receipts
        name. What a partition left out or lost counts toward a listing only then: a partner's unsound receipt is
        nothing missing from a list of another partner's decisions."""
        if holds == "decisions" and self.alert and "RECEIPT" in self.kinds:
            return True  # its decisions teach the references the alert's receipts name (``_names_alert``)
        if not self.kinds & _ROW_KINDS.get(holds, self.kinds):
            return False
        return not (holds == "receipts" and self.partner and owner is not None and owner != self.partner)

    def in_window(self, doc: dict[str, Any]) -> bool:
        """Whether row ``doc`` falls within ``since`` and ``until``, by the time it is listed at: a receipt's when it
        acknowledges (``receipts.acknowledged``: never earlier than Kafka appended it, whatever its partner wrote),
        any other row's its ``at``."""
        if not (self.since or self.until):
            return True
        # None: no time, or one without an offset, which is no time either
        at = acknowledged(doc) if doc.get("kind") == "RECEIPT" else when(doc.get("at"))
        return at is not None and not (self.since and at < self.since) and not (self.until and at > self.until)


async def read_log(conn: KafkaConnection, topics: Mapping[str, Holds], flt: LogFilter, verify: VerifyFn,
                   left_out: list[int] | None = None,
                   owners: Mapping[str, str] | None = None,
                   progress: Callable[[WalkProgress], None] | None = None,
                   retention: Retention | None = None,
                   deleted: list[Finding] | None = None,
                   receipts_cut: Callable[[ReceiptsCut], None] | None = None,
                   expired: list[int] | None = None, ends: GroupEnds | None = None,
                   end_reports: list[PartitionReport] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Audit rows (one per decision, dead letter, receipt, denial or query) from ``topics`` that pass ``flt``.

    ``topics`` maps each topic to what it holds (as for ``verify_topics``). Only what ``audit
    verify`` finds sound is listed: a record it reports (edited, out of place, badly or wrongly
    signed, not an audit record) is left out, and so are receipts that no sound checkpoint of their
    chain vouches for and receipts that name no delivery to that partner at the feed record they name
    (``broker.audit.receipts``). Their
    count is appended to ``left_out``, if given (one number per partition whose rows ``flt`` could list:
    ``LogFilter.lists_from``; so are ``deleted`` and ``expired``). Records stream through,
    in offset order per partition (``TimeSorted`` puts them in time order): what is held is the
    rows of receipts waiting for their chain's next checkpoint; the deliveries go to a temporary file
    (``_Delivered``). ``progress``, when given, hears how far the walk is (``WalkProgress``). A receipt's row
    carries when Kafka appended it and the checkpoint that signs it (``appended_at``), a time no partner chooses.
    ``retention`` (``Retention``) has each chain cut at its start checked as `audit verify` checks it:
    a chain that lost records to a deletion is named in ``deleted``, its first record's rows still listed (they are
    sound: what is missing is before them, and no row says what it was). ``receipts_cut``, if given, is called with
    each receipts partition whose log starts above offset 0 (``ReceiptsCut``: its partner, where it starts, when
    Kafka appended its first record held), whether retention or a deletion took its start, before any row is
    yielded: a partner's receipts chains state no retention to tell them apart by
    (``verify.PartitionWalk._start_check``), and a receipt lost there may have been the one naming a store that
    holds a recalled alert. Pass ``RecallBook.receipts_cut``: the book must know the cut before the decisions
    reach it, to keep the deliveries decided before it (``broker.audit.recalls``). A receipt of a delivery that
    expired with its decision (retention took the decisions chain's start: ``decisions_starts``) is listed, as
    sound, acknowledging no delivery (a store it names is a holder all the same), and counted in ``expired``, if
    given (one number per partition), never in ``left_out``.

    ``ends`` (``group_ends``, read before this is called, as for ``verify_topics``) has every chain's end checked as
    `audit verify` checks it, into ``end_reports`` (required with it): each decisions partition's end against the
    broker group's offsets (``end_check``, let settle first: ``_settled_end``), the ingress partitions no chain
    names and the receipts against the subscriber groups' offsets (``_group_end_reports``). Records dropped from a
    chain's end (a last block lost, with a recall notice in it) leave no row and no record unsound: only the end
    check shows them, so a list or a judgement built from the rows says so (a finding, or an end not checked).
    A partition whose log starts past offset 0 and from which no record was read (every record deleted, by
    retention or by hand: ``emptied_check``, `audit verify`'s rule) is reported into ``end_reports`` too, given or
    not ``ends``, not checked (``PartitionReport.unchecked``): it leaves no row and nothing unsound either.
    """
    if ends is not None and end_reports is None:
        raise ValueError("read_log: ends given without end_reports to put the ends' reports in")
    walked = WalkProgress(progress) if progress is not None else None
    budget = _Settle()
    reach = ReceiptReach(ends.feeds.readers, ends.feeds.feeds) if ends is not None else None
    forever = _KeptForEver(conn, topics)
    async with running(reader(conn, "puente-auditor"), conn, "reading the audit topics") as consumer, \
            _Delivered() as delivered:
        delivered.reads(topics)
        parts = {topic: await partitions_of(consumer, topic) for topic in topics}
        if walked is not None:
            walked.partitions = sum(len(ps) for ps in parts.values())
        # As `audit verify` walks them (``verify_topics``): a chain whose first records retention deleted starts at
        # its first record held, whose rows are listed, rather than at a gap that would leave them out.
        starts = await log_starts(consumer, [TopicPartition(t, p) for t, ps in parts.items() for p in ps])
        delivered.expired_before = expired_before(await decisions_starts(consumer, topics, parts, starts, verify,
                                                                         retention))
        if receipts_cut is not None:  # before any row: a recall judged by a decision read later needs it already
            for topic in (t for t, holds in topics.items() if holds == "receipts"):
                for partition in parts[topic]:
                    if (log_start := starts.get(TopicPartition(topic, partition), 0)) > 0:
                        first_at = await _first_appended(consumer, TopicPartition(topic, partition))
                        receipts_cut(ReceiptsCut((owners or {}).get(topic), topic, partition, log_start, first_at))
        receipts = {t: [TopicPartition(t, p) for p in parts[t]]
                    for t, holds in topics.items() if holds == "receipts"} if reach is not None else {}
        unsettled = await _receipts_settled(conn, receipts, ends.feeds if ends is not None else None)
        decided: list[PartitionReport] = []  # the decision chains' ends
        written: set[str] = set()  # the topics records were read from
        for topic, holds in topics.items():
            for partition in parts[topic]:
                tp = TopicPartition(topic, partition)
                walk = PartitionWalk(topic, partition, verify, holds, (owners or {}).get(topic), prunes=True,
                                     log_start=starts.get(tp, 0), retention=retention)
                if reach is not None and holds == "receipts":
                    reach.begin(walk.owner)
                end = PartitionReport(topic, partition)  # its receipts' findings at their ends (``ReceiptReach.take``)
                dropped = 0
                last: dict[str, Any] | None = None  # the newest sound record naming an ingress record
                last_at = unsound_at = offset = -1  # its offset; the newest unsound record's; the last read
                counts = flt.lists_from(holds, (owners or {}).get(topic))  # what it leaves out is missing from the list
                matched_expired = delivered.expired
                # Per receipt chain: the records waiting for a checkpoint (offset, when Kafka appended them, the
                # record, None if none of its rows passes ``flt``): its bytes, never its rows (``UNVOUCHED_BYTES``).
                waiting: Unvouched[tuple[int | None, bytes | None]] = Unvouched()
                delivered.begin()
                reading: int | None = None  # where a read starts: the log start, then past a short end, settled
                checked: EndCheck | None = None
                while True:
                    async for rec in read_range(consumer, tp, reading):
                        offset = rec.offset
                        written.add(topic)
                        if walked is not None:
                            walked.record()
                        doc, found = walk.feed(rec.offset, rec.value, rec.appended_ms, rec.unreadable)
                        if deleted is not None and counts:
                            deleted.extend(f for f in found if isinstance(f, StartFinding))
                        found = [f for f in found if not isinstance(f, StartFinding)]
                        delivered.cut(walk.cut)
                        delivered.prune(walk.pruned)
                        if reach is not None and holds == "receipts" and (why := reach.take(
                                doc, not found, [*walk.cut, *walk.pruned])) is not None:
                            end.add([Finding(topic, partition, rec.offset, why)])
                        for cut in walk.cut:  # cut off from the chain: no checkpoint will vouch for them
                            dropped += len(waiting.pop(cut))
                        for chain_name, offsets in walk.pruned.items():  # a fork its signed record settled against
                            dropped += waiting.drop(chain_name, offsets)
                        if doc is None or found:
                            dropped += 1
                            unsound_at = rec.offset
                            continue
                        if last_ingress(doc) is not None:
                            last, last_at = doc, rec.offset
                        unmatched = {at for at, _ in delivered.check(doc, rec.offset, len(rec.value or b""),
                                                                     rec.appended_ms)}
                        chain = doc.get("chain")
                        if chain is not None and holds != "queries":
                            # A receipt chain: its rows count once a checkpoint vouches for them, and the receipt
                            # matches a delivery (checked then).
                            if doc["kind"] == "CHECKPOINT":
                                for at, (appended, value) in waiting.pop(chain, vouched=True):
                                    if at in unmatched:
                                        dropped += 1
                                        continue
                                    for row in _rows(value, flt):
                                        if flt.in_window(timed := appended_at(row, appended, rec.appended_ms)):
                                            yield timed
                            else:
                                kept = rec.value if any(flt.accepts(r, timed=False) for r in flatten(doc)) else None
                                dropped += len(waiting.add(chain, rec.offset, (rec.appended_ms, kept),
                                                           len(rec.value or b"")))
                            continue
                        for row in flatten(doc):
                            if flt.accepts(row):
                                yield row
                    if ends is None or holds != "decisions":
                        break
                    if reading is None:
                        checked = await _settled_end(conn, tp, end_check(last, ends.ingress), budget)
                        if checked is None and last is not None:  # settled: what committed by then is there to read
                            reading = offset + 1
                            continue
                    else:
                        checked = end_check(last, ends.ingress)
                    break
                # Emptied past offset 0: not checked, as `audit verify` reports it (``emptied_check``), or a list
                # of a query log deleted whole would read as one of no query.
                end.unchecked = emptied_check(topic, partition, walk.log_start, offset >= 0, holds)
                if end.unchecked is not None and await forever.for_ever(topic, holds):
                    end.unchecked = None
                    end.add([emptied_kept_for_ever(topic, partition, walk.log_start)])
                if ends is not None and holds == "decisions":
                    end.end = checked
                    end.add([f for f in [_short_end(topic, partition, checked, offset, unsound_at, last_at)] if f])
                    if checked is not None or end.findings:
                        decided.append(end)
                    elif end.unchecked is not None and end_reports is not None:
                        end_reports.append(end)
                elif (end.findings or end.unchecked is not None) and end_reports is not None:
                    end_reports.append(end)
                dropped += waiting.clear()
                if left_out is not None and counts:
                    left_out.append(dropped)
                if expired is not None and counts:
                    expired.append(delivered.expired - matched_expired)
                if walked is not None:
                    walked.partition_done()
    if ends is not None and end_reports is not None:
        silent = _silent(receipts, written, starts, owners)
        end_reports += decided + _group_end_reports(decided, ends.ingress, reach, ends.feeds, unsettled, silent,
                                                    owners)


async def _first_appended(consumer: Any, tp: TopicPartition) -> datetime | None:
    """When Kafka appended the first record ``tp`` holds (None: it holds none, or keeps its producers' times)."""
    async with contextlib.aclosing(read_range(consumer, tp)) as records:
        async for rec in records:
            return _kafka_time(rec.appended_ms)
    return None


def _kafka_time(ms: int | None) -> datetime | None:
    """Kafka's append time ``ms`` as a time; None for none, or for one no clock gives."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _rows(value: bytes | None, flt: LogFilter) -> list[dict[str, Any]]:
    """The rows of the sound record ``value`` that pass ``flt`` but for its time window (``LogFilter.accepts``)."""
    doc = parse_record(value) if value is not None else None
    return [] if doc is None else [r for r in flatten(doc) if flt.accepts(r, timed=False)]


@dataclass(frozen=True)
class IndexProgress:
    """How far an indexing run is, as ``index_topics`` reports it to its ``progress`` callback."""

    records: int  # read in this run
    rows: int  # indexed in this run
    findings: int  # problems found in this run
    partitions_done: int
    partitions: int
    seconds: float


@dataclass(frozen=True)
class IndexRun:
    """What one indexing run did, and the index's problems after it (all of them, not only new ones)."""

    records: int
    rows: int
    findings: int
    problems: int
    partitions: int
    seconds: float
    ends: ChainEnds = field(default_factory=ChainEnds)  # the chains' ends against their groups' offsets


async def receipts_kept(conn: KafkaConnection, topics: Mapping[str, str]) -> dict[str, int]:
    """Each receipts topic's own ``retention.ms`` as Kafka holds it (-1: kept for ever), what a receipts chain
    emptied whole is judged by (``Retention.topics``): a receipt states no ``keep_days``, and a partner's receipts
    topic is not bound to PUENTE_AUDIT_RETENTION_DAYS (``topics apply`` keeps one kept for ever as it is). A topic
    whose settings could not be read, or say no number, is left out: its emptied partitions are not checked, never
    judged by a setting that is not the topic's."""
    receipts = [t for t, holds in topics.items() if holds == "receipts"]
    if not receipts:
        return {}
    admin, kept = Admin(conn), dict[str, int]()
    for topic in receipts:
        try:
            value = (await topic_settings(admin, topic)).get("retention.ms")
            if value is not None:
                kept[topic] = int(value)
        except (KafkaAccessError, KafkaOperationError, ValueError):
            continue
    return kept


class _KeptForEver:
    """Whether a receipts topic keeps its records for ever (retention.ms=-1, read once, only when a partition of it
    was emptied): then an emptied partition of it was deleted, a finding (``emptied_kept_for_ever``); with a finite
    retention, or one not read, it stays not checked (``emptied_check``), since a walk with no earlier state cannot
    tell expiry from deletion there."""

    def __init__(self, conn: KafkaConnection, topics: Mapping[str, str]) -> None:
        self.conn, self.topics = conn, topics
        self.read: dict[str, int] | None = None

    async def for_ever(self, topic: str, holds: str | None) -> bool:
        if holds != "receipts":
            return False
        if self.read is None:
            self.read = await receipts_kept(self.conn, self.topics)
        return self.read.get(topic) == -1


async def index_topics(conn: KafkaConnection, topics: Mapping[str, Holds], verify: VerifyFn, index: AuditIndex,
                       owners: Mapping[str, str] | None = None,
                       progress: Callable[[IndexProgress], None] | None = None, *, ends: GroupEnds,
                       batch_rows: int = 5_000, now: Callable[[], datetime] | None = None,
                       retention: Retention | None = None) -> IndexRun:
    """Bring ``index`` up to the end of every audit partition: read each read_committed from the
    position the index holds, verify each record from the chain states the index holds, and store
    the rows of the sound ones, committing position and rows together about every ``batch_rows``
    rows (a crash re-reads only from the last commit).

    ``topics`` and ``owners`` are as for ``verify_topics`` (``audit_topics`` gives them; the
    decisions first, so receipts are checked against them). The ends are taken once, before any
    read: every receipt read then names a delivery already read. The caller holds
    ``broker.audit_index.writer_lock`` for the index (one writer at a time). ``progress`` is called
    every ``PROGRESS_EVERY`` records and after each partition.

    ``ends`` (``group_ends``, read before this is called, as for ``verify_topics``) are kept, and the
    chains' ends checked against them when the index is read (``AuditIndex.end_reports``): each
    transaction open on a decisions or receipts partition is let end first (``END_SETTLE_S``), so
    that what committed with those offsets is read. SQLite writes are synchronous: a
    service with its own event loop (the console) runs this in a thread of its own
    (``asyncio.to_thread(asyncio.run, index_topics(...))``) so its pages stay answered.
    """
    began = time.monotonic()
    index.register(topics, owners)
    if retention is not None:
        retention = replace(retention, topics=await receipts_kept(conn, topics))
    records = rows = findings = done = 0
    async with running(reader(conn, "puente-auditor"), conn, "indexing the audit topics") as consumer:
        parts = [(topic, holds, p) for topic, holds in topics.items() for p in await partitions_of(consumer, topic)]
        watched = [TopicPartition(t, p) for t, holds, p in parts if holds in ("decisions", "receipts")]
        unsettled = await settle(conn, watched, timeout_s=END_SETTLE_S)
        starts = await log_starts(consumer, [TopicPartition(t, p) for t, _, p in parts])
        # As `audit verify` judges them: receipts of deliveries retention deleted with their decisions are rows.
        horizon = expired_before(await decisions_starts(consumer, topics, {t: [p for t2, _, p in parts if t2 == t]
                                                                           for t in topics}, starts, verify, retention))
        last = await consumer.end_offsets([TopicPartition(t, p) for t, _, p in parts]) if parts else {}
        index.record_lost(await _lost(consumer, index.positions(), last), datetime.now(UTC))
        missing = [topic for topic in topics if all(t != topic for t, _, _ in parts)]

        def report(now_rows: int = 0, now_findings: int = 0) -> None:
            if progress is not None:
                progress(IndexProgress(records, rows + now_rows, findings + now_findings, done, len(parts),
                                       time.monotonic() - began))

        for topic, holds, partition in parts:
            tp = TopicPartition(topic, partition)
            ingest = index.partition(topic, partition, holds, verify, owner=(owners or {}).get(topic),
                                     batch_rows=batch_rows, feeds=ends.feeds.feeds, log_start=starts.get(tp, 0),
                                     retention=retention, expired_before=horizon, log_end=last[tp])
            try:
                if ingest.start < last[tp]:
                    async for rec in read_range(consumer, tp, ingest.start):
                        if rec.offset >= last[tp]:
                            break
                        ingest.add(rec.offset, rec.value, rec.appended_ms, rec.unreadable)
                        records += 1
                        if records % PROGRESS_EVERY == 0:
                            report(ingest.rows, ingest.found)
                    ingest.reached(last[tp])  # past aborted records and transaction markers
                ingest.commit()
            except BaseException:
                ingest.abort()
                raise
            rows += ingest.rows
            findings += ingest.found
            done += 1
            report()
    index.record_ends(ends, {(tp.topic, tp.partition) for tp in unsettled},
                      {tp.topic for tp, at in starts.items() if at > 0 and topics[tp.topic] == "receipts"}, missing,
                      index.emptied_unchecked({(tp.topic, tp.partition): at for tp, at in starts.items()}))
    index.finish(now() if now is not None else datetime.now(UTC))
    ends_now = index.end_reports()
    return IndexRun(records, rows, findings, index.problems(given=ends_now), len(parts), time.monotonic() - began,
                    ends_now)


LOST_CONFIRM_S = 3.0
"""How long an end below the index's position must stay there before it counts as records lost: a new
partition leader's high watermark can trail the old one's for a moment after a node fails."""


async def _lost(consumer: Any, positions: Mapping[tuple[str, int], int],
                last: Mapping[TopicPartition, int]) -> dict[tuple[str, int], tuple[int, int]]:
    """The partitions Kafka now ends before where the index stands (truncated, deleted, made again), with
    the index's position and Kafka's end: records the index verified are gone, and nothing read from
    there would show it (records written again past the position show as a break in the chain)."""
    ends = {tp: last.get(TopicPartition(*tp), 0) for tp in positions}
    began = time.monotonic()
    while True:
        lost = {tp: (at, ends[tp]) for tp, at in positions.items() if ends[tp] < at}
        if not lost or time.monotonic() - began > LOST_CONFIRM_S:
            return lost
        await asyncio.sleep(0.5)
        present = [TopicPartition(*tp) for tp in lost if TopicPartition(*tp) in last]
        ends.update({(tp.topic, tp.partition): end for tp, end in (await consumer.end_offsets(present)).items()}
                    if present else {})


@dataclass(frozen=True)
class AuditTopics:
    """The audit topics found under a prefix: what each holds, and whose each receipts topic is."""

    roles: dict[str, Holds]
    owners: dict[str, str]
    feeds: list[str] = field(default_factory=list)  # the partners' feed topics, whose subscriber groups end receipts


async def audit_topics(conn: KafkaConnection, prefix: str) -> AuditTopics:
    """The audit topics under ``prefix``: the deployment's planned ones (``TopicNames.audit_roles``), with
    the receipts topics found in the cluster's metadata whatever partner they belong to; ConfigError when
    the cluster holds none of them. A planned one the cluster does not hold stays in ``roles``, for the
    walk to report (``missing_topic``).

    Nothing to verify where audit topics were expected is not "no problems": it is a wrong
    prefix, a wrong cluster, or topics never made. Nor are receipts without the decisions topic:
    a receipt is checked against the deliveries the decisions record, and a login that cannot see
    that topic (its ACL, a wrong prefix) would leave every receipt unchecked, so that is a
    ConfigError too, naming the topic.
    """
    names = TopicNames(prefix)
    async with running(reader(conn, "puente-auditor"), conn, "listing the audit topics") as consumer:
        present = sorted(await consumer.topics())
    receipts = [t for t in present if t.startswith(names.all_receipts)]
    owners = {t: t[len(names.all_receipts):] for t in receipts}
    # Every audit topic the deployment plans, present or not: one missing is a finding of the walk
    # (``missing_topic``), so the auditors' queries or the collected denials deleted outright never pass
    # as "no problems". (A partner's receipts topic deleted shows at its feed's end, ``receipt_ends``.)
    roles = names.audit_roles(owners.values())
    if not any(t in present for t in roles):
        raise ConfigError(f"no audit topics under prefix {prefix!r} at {conn.bootstrap} ({names.decisions}, "
                          f"{names.all_receipts}*): check PUENTE_TOPIC_PREFIX and PUENTE_BOOTSTRAP, or run "
                          "`puente topics apply`")
    if receipts and names.decisions not in present:
        raise ConfigError(f"receipts topics under prefix {prefix!r} but not the decisions topic {names.decisions} at "
                          f"{conn.bootstrap}: receipts cannot be checked against deliveries without it; check that "
                          "this login may read it (`puente acls plan`) and PUENTE_TOPIC_PREFIX")
    return AuditTopics(roles, owners, [t for t in present if t.startswith(names.feeds)])


def signature_checks(keys_dir: Path, verify_files: list[Path] | None, *, signer: bool = False) -> VerifyFn:
    """Signature checks for the audit: the given public key files, or every signing key (the
    broker's and the partners' receipt keys) in the keystore ``keys_dir`` (the auditors' own
    folder, ``keystore.auditor_path``, which holds public halves only: a secret there is refused). A
    folder holding none is a configuration error, not a verification that fails every record.
    ``signer``: ``keys_dir`` is the broker's own folder (collecting denials), which holds its signing
    key's secret beside the public half. Either way one public half under two ids is refused
    (KeyMaterialError naming both: ``broker.crypto.keys.refuse_one_key_two_ids``), in the folder across every key
    file of any kind and among the files given: a partner's receipt key given also as ``broker-sign-<g>`` would
    have decisions, deliveries and recall notices its owner signed pass as the broker's."""
    if not verify_files:
        store = Keystore(keys_dir)
        kinds = (KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
        if not any(parse_key_id(k).kind in kinds for k in store.key_ids()):
            raise ConfigError(f"no signing keys to verify with in {keys_dir}: import the broker's broker-sign-<g> "
                              "and each partner's <P>-rcpt-<g> public halves with "
                              f"`puente keys import-public FILE.pem --id KEY_ID --dir {keys_dir}` (on a single-site "
                              "trial, `puente keys init` makes them)")
        return signature_check(store, *kinds, public_only=not signer)
    records = [load_key_file(path) for path in verify_files]
    for rec, path in zip(records, verify_files, strict=True):
        if rec.secret is not None:  # an auditor verifies with public halves only; never holds a signer's secret
            raise ConfigError(f"--verify-key {path}: holds the private half of {rec.key_id}; give its public half "
                              "(`puente keys export-public` on its owner's side, then `puente keys import-public`)")
    refuse_one_key_two_ids(records, "the --verify-key files")
    return checker({rec.key_id: rec.ed25519_public() for rec in records})


_LOG_LINE = 262_144
"""Bytes of one authorizer log line held whole: more than any line Kafka writes (a name is at most 32,767 bytes, twice
that once the appender escapes its line breaks, and a matching ACL's name may follow it)."""
_CUT_HEAD = 4_096  # characters of a longer line kept for ``denial``: its time, principal and operation come first


def _authorizer_lines(path: Path) -> Iterator[str | CutLine]:
    """The lines of an authorizer log file as ``log_lines`` splits them (at ``\n`` only, a ``\r`` before it
    dropped), read line by line from a regular file (``open_regular``), so a log of any size is never held
    whole; a line longer than ``_LOG_LINE`` bytes is read through to its end and given as a ``CutLine`` (its start,
    with the whole line's length and hash), never passed over: ``denial`` still records it when it says a request
    was denied. A last line not ended by ``\n`` is not given: Kafka may be writing it (a line longer than its log
    library's buffer reaches the file in parts), and read now it would be recorded once cut (unparsed) and again,
    whole, by the next run; the next run reads it whole (after a crash mid-line, with the next message Kafka
    appends to it)."""
    with open_regular(path) as fh:
        while raw := fh.readline(_LOG_LINE):
            if not raw.endswith(b"\n") and len(raw) == _LOG_LINE:
                head, length, digest = raw[:_CUT_HEAD * 4], 0, hashlib.sha256()
                while raw and not raw.endswith(b"\n"):
                    length += len(raw)
                    digest.update(raw)
                    raw = fh.readline(_LOG_LINE)
                if not raw:
                    return  # the file ends inside this line: not yet written whole
                whole = raw.removesuffix(b"\n").removesuffix(b"\r")
                length += len(whole)
                digest.update(whole)
                yield CutLine(head.decode("utf-8", "replace")[:_CUT_HEAD], length, digest.hexdigest())
                continue
            if not raw.endswith(b"\n"):
                return  # the file ends inside this line: not yet written whole
            yield from log_lines(raw.removesuffix(b"\n").decode("utf-8", "replace"))


DENIALS_PER_TRANSACTION = 10_000
"""Denials ``collect_denials`` holds and writes in one transaction: a log of any size is read in runs of this many, so
a flood of denied requests (any login can make them) neither fills the collector's memory nor outlasts a
transaction's timeout."""


def denials_signer(keys: Keystore) -> tuple[str, Callable[[bytes], bytes]]:
    """The id and the signing function of the key the denials collector signs its blocks with, from the broker's
    keystore ``keys``: both of one record, the first of ``Keystore.broker_signing_keys`` (the broker's workers sign
    with it too), so the id a block names is the key that signed it. ``Keystore.current`` may name another: the
    newest by date, such as the public half of a retired generation imported back after a rotation."""
    record = keys.broker_signing_keys()[0]
    signing = record.ed25519_private()
    return record.key_id, lambda payload: sign_checkpoint(signing, payload)


async def collect_denials(conn: KafkaConnection, names: TopicNames, logs: list[Path], principals: frozenset[str],
                          signer_id: str, sign: Callable[[bytes], bytes], verify: VerifyFn,
                          since: datetime | None = None, *, per_transaction: int = DENIALS_PER_TRANSACTION,
                          keep_days: int | None = None, new_chain: bool = False, planned: Iterable[Acl] = ()) -> int:
    """Append the denials in Kafka's authorizer ``logs`` that concern this deployment (from ``since``
    on, when given), and are not yet collected, to its denials topic as broker-signed blocks; how
    many were added. ``planned``, the deployment's ACL plan (``broker.access.plan``): a denial of what it grants
    concerns the deployment whatever its name (``denials.concerns``), the broker's group among them.

    It runs as the broker (whose login alone may write the denials topic). One collector writes the
    chain: its transactional id fences any earlier one, and it extends the chain only when the whole
    of it verifies as `audit verify` would find it (``_denials_head``), never from a head that merely
    carries a good signature (an old block replayed at the end does). Log lines are read as
    ``denials.log_lines`` and ``denials.denial`` take them, split at newlines only: every line that says a request
    was denied is an entry, one that cannot be read whole (or too long to hold) marked ``unparsed``; such an entry
    concerns the deployment whoever it names, and one of no readable time is kept whatever ``since`` says.
    The logs are read as a stream, ``per_transaction`` new denials at a time, each run in time order and
    committed in its own transaction: what a failure leaves unwritten is collected by the next run (each
    line once, by its hash).
    """
    tp = TopicPartition(names.denials, 0)
    if keep_days is not None:  # each block states it: the topic must keep blocks so long
        await check_audit_retention(conn, tp.topic, keep_days, "the denials collector")
    writer = producer(conn, "puente-denials", transactional_id=denials_transaction(names), enable_idempotence=True,
                      acks="all")
    added = 0
    planned = list(planned)  # read once per denial
    async with running(writer, conn, f"writing {names.denials}"):
        async with running(reader(conn, "puente-auditor"), conn, f"reading {names.denials}") as consumer:
            head, seen = await _denials_head(consumer, tp, verify, new_chain)
        chain = ChainWriter(tp.topic, 0, head, keep_days=keep_days)
        fresh: dict[str, dict[str, Any]] = {}

        async def write() -> None:
            nonlocal added
            run = sorted(fresh.values(), key=lambda e: sort_key(e["at"]))  # the instant, not the text (``sort_key``)
            async with transaction(writer) as sends:  # a block not delivered aborts them all (``Sends``)
                for block in chain.blocks(run, signer_id, sign, iso_utc(datetime.now(UTC))):
                    sends.add(await writer.send(tp.topic, block, partition=0))
            seen.update(fresh)
            added += len(run)
            fresh.clear()

        for line in _lines_of(logs):
            entry = denial(line)
            if (entry is None or entry["line_sha256"] in seen
                    or not concerns(entry, names.prefix, principals, planned=planned)):
                continue
            at = when(entry["at"])
            if since is None or at is None or at >= since:  # a denial of no readable time may be a new one: kept
                fresh[entry["line_sha256"]] = entry
                if len(fresh) >= per_transaction:
                    await write()
        if fresh:
            await write()
    return added


def _lines_of(logs: list[Path]) -> Iterator[str | CutLine]:
    """Every line of the authorizer ``logs`` in turn (``_authorizer_lines``); a log that cannot be read is a
    ConfigError naming it (only the reading: an OSError of Kafka's, a timeout say, is not the log's)."""
    for path in logs:
        lines = _authorizer_lines(path)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                break
            except OSError as exc:
                raise ConfigError(f"cannot read the authorizer log {path}: {exc.strerror}") from None
            yield line


async def _denials_head(consumer: Any, tp: TopicPartition, verify: VerifyFn,
                        new_chain: bool = False) -> tuple[ChainHead, set[str]]:
    """Where the denials chain may be continued from, and the log lines it already holds.

    The whole partition is walked as `audit verify` walks it (``PartitionWalk``): the collector signs
    over everything before its new blocks, so any finding (a record someone else wrote, an old block
    replayed at the end, a gap) stops it, with one error that points to ``puente audit verify``; and
    "already collected" is taken from sound records only, so nothing written by someone else can keep
    a denial out. AuditChainError when the chain may not be extended. The walk starts where the partition's log
    starts (``log_starts``), as `audit verify`'s does: blocks retention deleted are no gap, and their lines, no
    longer held, no longer count as collected. A partition that holds no record but whose log starts past
    offset 0 had every record of its chain deleted, by retention or by hand, which nothing here tells apart: a new
    chain, whose start no record before it would vouch for, is begun only when ``new_chain`` says so
    (AuditChainError otherwise), as the console's query log refuses the same.
    """
    starts = await log_starts(consumer, [tp])
    walk = PartitionWalk(tp.topic, tp.partition, verify, "denials", log_start=starts.get(tp, 0))
    seen: set[str] = set()
    problems = 0
    first: Finding | None = None
    async for rec in read_range(consumer, tp):
        doc, found = walk.feed(rec.offset, rec.value, rec.appended_ms, rec.unreadable)
        if found:
            problems += len(found)
            first = first or found[0]
            continue
        for entry in listed((doc or {}).get("entries")):
            if isinstance(entry, dict) and isinstance(entry.get("line_sha256"), str):
                seen.add(entry["line_sha256"])
    state = walk.chains.get(None)
    others = [c for c in walk.chains if c is not None]
    if first is not None or others or (state is not None and state.tail):
        where = f"offset {first.offset}: {first.problem}" if first is not None else "it holds records of other chains"
        raise AuditChainError(f"{tp.topic} cannot be continued: {problems or 1} problem(s), the first at {where}; "
                              "run `puente audit verify`")
    if state is None:
        if starts.get(tp, 0) > 0 and not new_chain:
            raise AuditChainError(
                f"{tp.topic} holds no record, but its log starts at offset {starts[tp]}: every record of its chain "
                "was deleted, by retention (no denial collected for PUENTE_AUDIT_RETENTION_DAYS) or by hand; if by "
                "retention, run `puente audit collect-denials --new-chain` to begin a new chain, else restore the "
                "topic and run `puente audit verify`")
        return ChainHead(), seen
    # Every denials record is a signed block: the newest one's time is the chain's last (``ChainHead.at``).
    at = state.signed_at if state.signed_seq == state.seq - 1 else None
    return ChainHead(seq=state.seq, prev=state.prev, since_checkpoint=0, at=at), seen


def ack_deadlines(policy: PolicySet) -> dict[str, int]:
    """Each partner's recall deadline in hours under ``policy`` (``audit.recalls.deadline_hours``), for
    ``audit.recalls.recall_status``: only for notices whose decision did not record the deadline in force
    when it was sent (written before RECALL decisions recorded ``ack_hours``)."""
    return deadline_hours(policy.agreements.values())
