"""A slot whose audit head gives no time of the record it took last (a GAP entry, an unreadable batch's dead letter)
is checked for an ingress topic made anew like any other head: a topic deleted, made again and refilled past where
the head stands is refused, never read on from there in silence (its first records neither decided, dead-lettered
nor recorded); the same topic as the head left it still reads on, whatever the Kafka nodes' clocks (within the
hour the worker allows elsewhere). Such a head is never checked by a lookup by time, which a Kafka node may answer
by inflating a batch the broker refused unread: the log's start, or the record itself, read raw."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace as NS
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

import broker.kafka.topics as kafka_topics
from broker.audit import ChainHead, ChainWriter
from broker.kafka.io import LOG_APPEND_TIME
from broker.kafka.unreadable import UNREADABLE
from broker.lifecycle import AlertState, LifecycleBook
from broker.replay import ReplayWindow
from puente.errors import ConfigError, FeedGapError
from puente.wire import Unreadable
from tests.unit.broker.test_worker_lifecycle_loss import _gaps, _loaded, _worker

TP = TopicPartition("t.ingress.SNM", 1)
AT = "2026-06-01T00:00:00Z"  # when the head's block was written
AT_MS = int(datetime.fromisoformat(AT).timestamp() * 1000)
TOOK_MS = AT_MS - 3_600_000  # when Kafka appended the record at offset 99, the last the old chain took
MINUTE_MS, DAY_MS = 60_000, 86_400_000
REASONS = ["states-lost", "audit-expired", "deleted", "topic-remade", "unreadable"]


def _entry(reason: str) -> dict[str, Any]:
    """The head's last entry, standing at offset 100: a GAP as a release before ``taken_ms`` wrote it (``deleted``
    and ``topic-remade`` read on from where the log started then), or an unreadable batch's dead letter."""
    if reason == "unreadable":
        return {"kind": "DEAD_LETTER", "reason": "unreadable", "detail": "x", "at": AT,
                "ingress": f"{TP.topic}:1:99", "ingress_ms": TOOK_MS}
    skipped = 60 if reason == "deleted" else 0
    return {"kind": "GAP", "reason": reason, "detail": "x", "next_offset": 100, "skipped": skipped, "at": AT,
            "from_offset": {"deleted": 40, "topic-remade": 150}.get(reason, 100),
            "ingress": f"{TP.topic}:1:99", "ingress_ms": TOOK_MS}


def _head(entry: dict[str, Any], appended_ms: int | None = None) -> ChainHead:
    block = ChainWriter("t.audit.decisions", 1).block([entry], "broker", lambda p: b"s", AT, states=0)
    doc = orjson.loads(block)
    return ChainHead.after(doc) if appended_ms is None else ChainHead.after(doc, appended_ms)


class _Ingress:
    """The ingress partition as ``_remade_ingress`` asks it, through the audit reader: its records' (offset, Kafka
    append time) and the batches it holds that the broker does not read ((first, last, time): read, each comes
    back as one record at its last offset, never inflated), from ``start`` on. Notes each lookup by time
    (``asked``) and each read of records (``read``: the offsets sought)."""

    def __init__(self, records: list[tuple[int, int]], unread: list[tuple[int, int, int]] | None = None,
                 start: int | None = None) -> None:
        self.records, self.unread = dict(records), unread or []
        held = [*self.records, *(o for first, last, _ in self.unread for o in (first, last))]
        self.start = min(held, default=0) if start is None else start
        self.end = max(held, default=self.start - 1) + 1
        self.asked: list[dict[TopicPartition, int]] = []
        self.read: list[int] = []
        self.pos = 0

    async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        # As Kafka answers, inflating a batch it holds to find the record in it (here its first).
        self.asked.append(times)
        held = sorted([*self.records.items(), *((first, ms) for first, _, ms in self.unread)])
        return {tp: next((NS(offset=o, timestamp=t) for o, t in held if t >= ms), None) for tp, ms in times.items()}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.start)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.end)

    def assign(self, tps: list[TopicPartition]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.read.append(offset)
        self.pos = offset

    async def position(self, tp: TopicPartition) -> int:
        return self.pos

    async def getmany(self, *tps: TopicPartition, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        while self.pos < self.end:
            at = self.pos
            for first, last, ms in self.unread:
                if first <= at <= last:
                    self.pos = last + 1
                    why = Unreadable("a zstd-compressed batch, not inflated", first, last, at if at > first else None)
                    return {TP: [self._msg(last, ms, [(UNREADABLE, why)])]}
            self.pos += 1
            if at in self.records:
                return {TP: [self._msg(at, self.records[at], [])]}
        return {}

    @staticmethod
    def _msg(offset: int, ms: int, headers: list[Any]) -> Any:
        return NS(topic=TP.topic, partition=TP.partition, offset=offset, key=None, value=b"v", headers=headers,
                  timestamp=ms, timestamp_type=LOG_APPEND_TIME)


def _remade(worker: Any, ingress: _Ingress, head: ChainHead) -> dict[TopicPartition, str]:
    return asyncio.run(worker._remade_ingress(ingress, [(TP, 1)], {1: (head, ReplayWindow(7))}))


def _made_anew() -> _Ingress:
    """The topic deleted a day after the head's block, made again and refilled past offset 100."""
    return _Ingress([(o, AT_MS + DAY_MS + o) for o in range(120)])


@pytest.mark.parametrize("reason", REASONS)
def test_a_head_at_an_ingress_topic_made_anew_and_refilled_is_refused(reason: str) -> None:
    """A head whose last entry gives no time of the record before it, at a topic made anew and refilled past it: the
    slot is refused (FeedGapError naming --accept-gap), or with --accept-gap marked for a gap read from offset 0,
    and no lookup by time is asked. (Read on from offset 100, the new topic's records 0-99 would pass in silence.)"""
    head = _head(_entry(reason))
    assert (head.resume, head.resume_ms) == (100, None)
    ingress = _made_anew()
    with pytest.raises(FeedGapError) as caught:
        _remade(_worker(), ingress, head)
    assert "was made anew" in str(caught.value) and "--accept-gap" in str(caught.value)
    assert list(_remade(_worker(accept_gaps=True), ingress, head)) == [TP]
    assert ingress.asked == []


@pytest.mark.parametrize("reason", REASONS)
def test_a_normal_restart_reads_on_with_the_nodes_clocks_ten_minutes_apart(reason: str) -> None:
    """A normal restart: the topic is as the head left it, its record at offset 99 appended by an ingress leader
    whose clock runs 10 minutes ahead of the decisions leader's (it seems appended after the head's block, within
    the hour the worker allows: ``MAX_FUTURE_SKEW_MS``), or its records below 100 deleted (a gap read on from the
    log's start), the later ones appended since. Nothing is found and the slot reads on from 100, whether the
    block is dated by Kafka's time or the one it states; no lookup by time is asked. (A minute's bound refused it.)"""
    since = [(o, AT_MS + DAY_MS + o) for o in range(100, 120)]
    if reason in ("deleted", "topic-remade"):
        ingress = _Ingress(since)
    else:
        # The last record before 100, or the batch the broker took at 99 without reading it.
        end, last, unread = ((97, [], [(97, 99, AT_MS + 10 * MINUTE_MS)]) if reason == "unreadable" else
                             (99, [(99, AT_MS + 10 * MINUTE_MS)], None))
        before = [(o, TOOK_MS - (99 - o) * 1000) for o in range(end)]
        ingress = _Ingress(before + last + since, unread)
    for head in (_head(_entry(reason)), _head(_entry(reason), AT_MS + 5)):
        assert head.resume == 100 and _remade(_worker(), ingress, head) == {}
    assert ingress.asked == []


@pytest.mark.parametrize("reason", ["deleted", "topic-remade"])
def test_a_gap_head_read_on_from_the_log_start_is_refused_by_the_log_start_alone(reason: str) -> None:
    """A gap read on from where the log started (offset 100) meets a log starting at 0 now: a log's start never
    moves back, so the topic was made anew, whenever its records were appended (here all before the head's block,
    which no time would tell). Refused with what was seen, asking no time and reading no record."""
    ingress = _Ingress([(o, TOOK_MS - (120 - o) * 1000) for o in range(120)])
    with pytest.raises(FeedGapError) as caught:
        _remade(_worker(), ingress, _head(_entry(reason)))
    assert "its log starts at offset 0 now, below offset 100" in str(caught.value)
    assert (ingress.asked, ingress.read) == ([], [])
    for start in (100, 130):  # where the log started then, or past it since (retention)
        assert _remade(_worker(), _Ingress([], start=start), _head(_entry(reason))) == {}


def test_a_head_after_a_batch_the_broker_does_not_read_is_checked_by_reading_it_raw() -> None:
    """An unreadable batch's dead letter at the head (the broker took the batch at its last offset, 99): the batch
    read back raw ends at 99 and was appended before the block, so the slot reads on; offset 99 inside such a batch
    that ends further on (the broker took 99 from another), or a record there appended a day after the block, is a
    topic made anew. Gone with retention, or a partition ending before it, is not. No lookup by time is asked:
    the batch may be compressed, and a Kafka node may inflate it whole to answer one."""
    head = _head(_entry("unreadable"))
    unread = [(97, 99, TOOK_MS)]
    ingress = _Ingress([(o, TOOK_MS - 1000) for o in range(97)], unread)
    assert _remade(_worker(), ingress, head) == {}
    for gone in (_Ingress([(o, AT_MS + DAY_MS) for o in range(100, 110)]), _Ingress([(5, TOOK_MS)])):
        assert _remade(_worker(), gone, head) == {}
    inside = _Ingress([(o, AT_MS + DAY_MS) for o in range(97)], [(97, 101, AT_MS + DAY_MS)])
    later = _Ingress([(o, AT_MS + DAY_MS + o) for o in range(97)], [(97, 99, AT_MS + DAY_MS)])
    for ingress, seen in ((inside, "lies inside a batch the broker does not read (offsets 97-101), not at its end"),
                          (later, "was appended at 2026-06-02T00:00:00Z, 1440 minutes after")):
        with pytest.raises(FeedGapError) as caught:
            _remade(_worker(), ingress, head)
        assert "was made anew" in str(caught.value) and seen in str(caught.value)
        assert ingress.asked == [] and ingress.read == [99]


def test_states_lost_carries_the_time_of_the_record_it_names_and_its_head_is_checked_by_it() -> None:
    """The GAP entry recording states lost names the last record the slot took (before it stands), and now
    carries that record's append time (``taken_ms``), which its ``ingress_ms`` (the slot's newest) is not: a head
    it ends is checked by that time, as the record's own entry was."""
    appended = 1_790_000_000_000
    entry = {"kind": "ALERT", "alert_id": "SNM:X", "ingress": f"{TP.topic}:1:999", "ingress_ms": appended}
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [entry], "states": 0})
    worker, state, producer, group = _loaded(head, 1000)
    [gap] = _gaps(worker, state, producer, lambda: worker._mark_losses(
        group, state, head.resume, None, "lifecycle states lost", None, head.resume_ms))  # type: ignore[arg-type]
    assert (gap["reason"], gap["ingress"], gap["taken_ms"]) == ("states-lost", f"{TP.topic}:1:999", appended)
    after = ChainHead.after({"seq": 5, "hash": "cd" * 32, "kind": "BLOCK", "at": AT, "entries": [gap]})
    assert (after.resume, after.resume_ms) == (1000, appended)
    ingress = _Ingress([(999, appended), (1000, appended + 10)])
    assert _remade(_worker(), ingress, after) == {} and ingress.asked == [{TP: appended}]


def test_a_head_giving_no_time_to_tell_by_is_refused_even_with_accept_gap() -> None:
    """A head standing past offset 0 whose block gives no time at all (neither a record's nor its own) cannot be
    told from one at a topic made anew: refused (fails closed), never read on unchecked, and --accept-gap does not
    read past it either, since it would read a topic that was not made anew from offset 0 again. The message names
    what to check."""
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [
        {k: v for k, v in _entry("states-lost").items() if k != "at"}]})
    assert (head.resume, head.resume_ms, head.resume_by_ms) == (100, None, None)
    for accept in (False, True):
        ingress = _Ingress([(o, TOOK_MS) for o in range(120)])
        with pytest.raises(FeedGapError) as caught:
            _remade(_worker(accept_gaps=accept), ingress, head)
        assert "cannot be told from a topic made anew" in str(caught.value)
        assert "--accept-gap does not read past this" in str(caught.value)
        assert "`puente topics apply`" in str(caught.value) and "`puente audit verify`" in str(caught.value)
        assert (ingress.asked, ingress.read) == ([], [])


@pytest.mark.parametrize("reason", ["states-lost", "audit-expired", "unreadable"])
def test_a_marker_where_the_head_stands_does_not_hide_a_topic_made_anew(reason: str) -> None:
    """The topic made anew by a transactional producer: offset 99, the last before where the head stands, is a
    transaction's marker (no record a reader is given). The last committed record before it is read instead: appended
    a day after the head's block, the topic is refused as made anew; in the topic as the head left it (the record
    before the marker appended before the block), the slot reads on. Still no lookup by time."""
    head = _head(_entry(reason))
    remade = _Ingress([(o, AT_MS + DAY_MS + o) for o in range(99)] + [(o, AT_MS + DAY_MS + o) for o in range(100, 120)])
    with pytest.raises(FeedGapError) as caught:
        _remade(_worker(), remade, head)
    assert "was made anew" in str(caught.value) and "the record at offset 98" in str(caught.value)
    kept = _Ingress([(o, TOOK_MS - (99 - o) * 1000) for o in range(99)] + [(o, AT_MS + DAY_MS + o)
                                                                          for o in range(100, 120)])
    assert _remade(_worker(), kept, head) == {}
    assert remade.asked == kept.asked == []


@pytest.mark.parametrize("accept", [False, True])
def test_a_slot_whose_blocks_are_all_gone_while_what_they_decided_is_young_was_deleted(accept: bool) -> None:
    """A slot's decisions partition holds no block (its log starts past 0) while its ingress partition has a
    committed offset: retention's work, the worker took it for, and began a new chain. But the ingress record the
    slot took last is still held, appended an hour ago, and the block deciding it was appended after it: within
    the audit's retention, it cannot have expired. Refused (FeedGapError), or with --accept-gap read on with the
    new chain's first entry saying the blocks were deleted; ten years and more ago, it is retention's as before."""
    now_ms = int(datetime.now().timestamp() * 1000)
    head = ChainHead()
    for appended, deleted in ((now_ms - 3_600_000, True), (now_ms - 3700 * DAY_MS, False)):
        worker = _worker(accept_gaps=accept)
        worker.config = replace(worker.config, audit_retention_days=3650)
        ingress = _Ingress([(o, appended + o) for o in range(5, 100)], start=5)
        if deleted and not accept:
            with pytest.raises(FeedGapError, match="its blocks were deleted, or expired under a shorter retention"):
                asyncio.run(worker._check_empty_slots(ingress, [(TP, 1)], {1: (head, ReplayWindow(7))}, {TP: 100}))
            continue
        found = asyncio.run(worker._check_empty_slots(ingress, [(TP, 1)], {1: (head, ReplayWindow(7))}, {TP: 100}))
        what, reason = found[TP]
        assert ("were deleted, or expired under a shorter" in what) is deleted
        assert ("retention deleted its chain" in what) is not deleted
        # Recorded as what it is: a deletion read past is no expiry to auditors (the index's dead-letter page).
        assert reason == ("audit-deleted" if deleted else "audit-expired")
        assert ingress.asked == []


@pytest.mark.parametrize("accept", [False, True])
def test_an_idle_slot_whose_blocks_are_all_gone_while_its_states_are_young_was_deleted(accept: bool) -> None:
    """The slot idle for longer than the ingress topic keeps records (its last record gone, nothing to read):
    the witness is its newest alert state, written in the transaction of the block that decided it, and kept no
    longer than the audit keeps blocks. Written an hour ago, the block cannot have expired: refused, or read on
    with --accept-gap as a deletion; written longer ago than the retention, or no state held, retention's."""
    now_ms = int(datetime.now().timestamp() * 1000)
    head = ChainHead()
    for written, deleted in ((now_ms - 3_600_000, True), (now_ms - 3700 * DAY_MS, False), (None, False)):
        worker = _worker(accept_gaps=accept)
        worker.config = replace(worker.config, audit_retention_days=3650)
        book = LifecycleBook()
        if written is not None:
            book.put("SNM:A", AlertState(1, {"COL": 1}), written)
        ingress = _Ingress([], start=100)  # everything up to the committed offset gone
        check = worker._check_empty_slots(ingress, [(TP, 1)], {1: (head, ReplayWindow(7))}, {TP: 100}, {1: book})
        if deleted and not accept:
            with pytest.raises(FeedGapError, match="lifecycle partition still holds an alert state written at"):
                asyncio.run(check)
            continue
        what, reason = asyncio.run(check)[TP]
        assert reason == ("audit-deleted" if deleted else "audit-expired")
        assert ("still holds an alert state" in what) is deleted


@pytest.mark.parametrize("accept", [False, True])
def test_on_a_decisions_topic_kept_for_ever_blocks_all_gone_were_deleted(accept: bool) -> None:
    """Nothing held to tell by (the slot idle past the ingress topic's retention, no alert state written): on a
    decisions topic kept for time-limited days, retention is taken at its word (expired); on one kept for ever
    (retention.ms=-1, which the topology check accepts whatever PUENTE_AUDIT_RETENTION_DAYS says) nothing expired,
    so the blocks were deleted: refused, or read on with --accept-gap recorded as a deletion, never as expiry."""
    head = ChainHead()
    for forever in (False, True):
        worker = _worker(accept_gaps=accept)
        worker.config = replace(worker.config, audit_retention_days=3650, audit_kept_forever=forever)
        ingress = _Ingress([], start=100)
        check = worker._check_empty_slots(ingress, [(TP, 1)], {1: (head, ReplayWindow(7))}, {TP: 100}, {})
        if forever and not accept:
            with pytest.raises(FeedGapError, match=r"keeps its records for ever \(retention.ms -1, or the most"):
                asyncio.run(check)
            continue
        what, reason = asyncio.run(check)[TP]
        assert reason == ("audit-deleted" if forever else "audit-expired")
        assert ("for ever" in what) is forever


@pytest.mark.parametrize(("kept_ms", "forever"), [("-1", True), (str(2**63 - 1), True), (str(3650 * DAY_MS), False),
                                                  (str(3650 * DAY_MS + 5), False)])
def test_the_retention_check_says_whether_the_decisions_topic_keeps_records_for_ever(
        monkeypatch: pytest.MonkeyPatch, kept_ms: str, forever: bool) -> None:
    """``check_audit_retention`` accepts a topic kept for ever or for the days the setting says, and tells which, so
    the worker knows a chain gone from a topic kept for ever was deleted; any other retention is still refused."""
    held = {"retention.ms": kept_ms}

    async def described(admin: Any, topic: str) -> dict[str, str]:
        return held

    monkeypatch.setattr(kafka_topics, "Admin", lambda conn: None)
    monkeypatch.setattr(kafka_topics, "topic_settings", described)
    assert asyncio.run(kafka_topics.check_audit_retention(None, "pa.audit.decisions", 3650, "the broker")) is forever
    held["retention.ms"] = str(30 * DAY_MS)
    with pytest.raises(ConfigError, match="PUENTE_AUDIT_RETENTION_DAYS"):
        asyncio.run(kafka_topics.check_audit_retention(None, "pa.audit.decisions", 3650, "the broker"))
