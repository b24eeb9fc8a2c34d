"""A slot whose audit head is a GAP entry is checked for an ingress topic made anew like any other head: a topic
deleted, made again and refilled past where the head stands is refused, never read on from there in silence (its
first records neither decided, dead-lettered nor recorded); the same topic as the head left it still reads on."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace as NS
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from broker.audit import ChainHead, ChainWriter
from broker.replay import ReplayWindow
from broker.worker import NODE_SKEW_MS
from puente.errors import FeedGapError
from tests.unit.broker.test_worker_lifecycle_loss import _gaps, _loaded, _worker

TP = TopicPartition("t.ingress.SNM", 1)
AT = "2026-06-01T00:00:00Z"  # when the head's block was written
AT_MS = int(datetime.fromisoformat(AT).timestamp() * 1000)
TOOK_MS = AT_MS - 3_600_000  # when Kafka appended the record at offset 99, the last the old chain took
DAY_MS = 86_400_000


def _gap(reason: str) -> dict[str, Any]:
    """A GAP entry standing at offset 100, as a release before ``taken_ms`` wrote it."""
    skipped = 60 if reason == "deleted" else 0
    return {"kind": "GAP", "reason": reason, "detail": "x", "from_offset": 100 - skipped, "next_offset": 100,
            "skipped": skipped, "at": AT, "ingress": f"{TP.topic}:1:99", "ingress_ms": TOOK_MS}


def _head(entry: dict[str, Any], appended_ms: int | None = None) -> ChainHead:
    block = ChainWriter("t.audit.decisions", 1).block([entry], "broker", lambda p: b"s", AT, states=0)
    doc = orjson.loads(block)
    return ChainHead.after(doc) if appended_ms is None else ChainHead.after(doc, appended_ms)


class _Ingress:
    """The ingress partition as ``_remade_ingress`` asks it: its records' (offset, Kafka append time), answering
    with the first appended at or after each time asked, as Kafka does; and the times it was asked."""

    def __init__(self, records: list[tuple[int, int]]) -> None:
        self.records, self.asked = records, []  # type: list[dict[TopicPartition, int]]

    async def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        self.asked.append(times)
        return {tp: next((NS(offset=o, timestamp=t) for o, t in self.records if t >= ms), None)
                for tp, ms in times.items()}


def _remade(worker: Any, ingress: _Ingress, head: ChainHead) -> dict[TopicPartition, str]:
    return asyncio.run(worker._remade_ingress(ingress, [(TP, 1)], {1: (head, ReplayWindow(7))}))


def _made_anew() -> _Ingress:
    """The topic deleted a day after the head's block, made again and refilled past offset 100."""
    return _Ingress([(o, AT_MS + DAY_MS + o) for o in range(120)])


@pytest.mark.parametrize("reason", ["states-lost", "audit-expired", "deleted"])
def test_a_gap_head_at_an_ingress_topic_made_anew_and_refilled_is_refused(reason: str) -> None:
    """A head whose last entry is a gap (no record's own time) at a topic made anew and refilled past it: the slot
    is refused (FeedGapError naming --accept-gap), or with --accept-gap marked for a gap read from offset 0. It was
    skipped unchecked, and read on from offset 100, past the new topic's records 0-99 in silence."""
    head = _head(_gap(reason))
    assert (head.resume, head.resume_ms) == (100, None)
    with pytest.raises(FeedGapError) as caught:
        _remade(_worker(), _made_anew(), head)
    assert "was made anew" in str(caught.value) and "--accept-gap" in str(caught.value)
    assert list(_remade(_worker(accept_gaps=True), _made_anew(), head)) == [TP]


@pytest.mark.parametrize("reason", ["states-lost", "audit-expired", "deleted"])
def test_a_gap_head_at_the_topic_it_left_reads_on(reason: str) -> None:
    """A normal restart: the topic is as the gap's head left it, its records before offset 100 appended before the
    head's block (the last one 30 s after, by a node whose clock runs ahead, within ``NODE_SKEW_MS``), or deleted
    below 100 (a gap past records retention deleted), the later ones appended since. Nothing is found, and the
    slot reads on from 100. A gap's head is checked by when its block was appended, Kafka's time where known (else
    the time it states); one past deleted records by any record before it, whenever appended."""
    before = [(o, TOOK_MS - (99 - o) * 1000) for o in range(99)] + [(99, AT_MS + 30_000)]
    since = [(o, AT_MS + DAY_MS + o) for o in range(100, 120)]
    ingress = _Ingress(since if reason == "deleted" else before + since)
    kafka_ms = AT_MS + 5
    for head, asked in ((_head(_gap(reason)), AT_MS), (_head(_gap(reason), kafka_ms), kafka_ms)):
        assert head.resume == 100 and _remade(_worker(), ingress, head) == {}
        assert ingress.asked[-1] == {TP: (0 if reason == "deleted" else asked) + NODE_SKEW_MS}


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


def test_a_head_giving_no_time_to_tell_by_is_refused() -> None:
    """A head standing past offset 0 whose block gives no time at all (neither a record's nor its own) cannot be
    told from one at a topic made anew: refused the same way (fails closed), never read on unchecked."""
    head = ChainHead.after({"seq": 4, "hash": "ab" * 32, "kind": "BLOCK", "entries": [
        {k: v for k, v in _gap("states-lost").items() if k != "at"}]})
    assert (head.resume, head.resume_ms, head.resume_by_ms) == (100, None, None)
    with pytest.raises(FeedGapError) as caught:
        _remade(_worker(), _Ingress([]), head)
    assert "cannot be told from a topic made anew" in str(caught.value) and "--accept-gap" in str(caught.value)
