"""A stray in the broker's decisions chain (a record someone wrote continuing its newest block, unsigned or badly
signed) is reported where it stands and moves nothing: the broker's next block, signed over its real head, stays
sound, and its decisions (an overdue recall among them) are read."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

import broker.auditor as auditor
from broker.audit import ChainWriter, seal, verify_partition
from broker.audit.recalls import OVERDUE, RecallBook
from broker.audit_index import AuditIndex, Query, Scope
from broker.auditor import LogFilter
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import (
    DECISIONS,
    T0,
    VERIFY,
    _alert,
    _decision,
    _dump,
    _ingest,
    _same_alias_key,
    _signer,
)

KEY = "broker-sign-2026a"
DELIVER = _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")
RECALL = _decision("COL", "RECALL", ["lifecycle.recall"], recalls=1, notice_version=2, ack_hours=24,
                   feed="t.feed.COL")


def _stray(head: bytes, how: str) -> bytes:
    """A record continuing ``head`` (seq and hash right: SHA-256 is unkeyed), as anyone who may write the topic
    can append: an unsigned block, a block whose signature fails, or an unsigned record of a kind from before
    blocks."""
    doc = orjson.loads(head)
    base = {"v": 1, "seq": doc["seq"] + 1, "prev": doc["hash"], "at": iso_utc(T0)}
    if how == "unsigned block":
        return seal({**base, "kind": "BLOCK", "entries": []})
    if how == "bad signature":
        return seal({**base, "kind": "BLOCK", "entries": [], "signer": KEY, "sig": "00" * 64})
    return seal({**base, "kind": "DECISION", "alert_id": "SNM:1", "partner": "COL", "decision": "WITHHOLD"})


def _chain(how: str) -> list[bytes]:
    """A delivery to COL, a stray continuing that block, then the broker's block recalling the alert, signed over
    the delivery's block (the broker never read the stray as its head)."""
    writer = ChainWriter(DECISIONS, 0)
    first = writer.block([_alert("SNM:1", 0, [DELIVER])], KEY, _signer(KEY), iso_utc(T0))
    second = writer.block([_alert("SNM:1", 60, [RECALL], version=1, action="RECALL", reason="ERROR",
                                  previous_version=1)], KEY, _signer(KEY), iso_utc(T0 + timedelta(hours=1)))
    return [first, _stray(first, how), second]


HOW = ["unsigned block", "bad signature", "unsigned decision"]


def _recalls() -> tuple[list[tuple[str, int, str]], list[int]]:
    """What `audit recalls` makes of the decisions topic the ``audit_topics`` fixture holds, ten days on: each
    recall's (alert, version, state), and how many records `read_log` left out."""
    left_out: list[int] = []

    async def read() -> list[dict[str, Any]]:
        return [row async for row in auditor.read_log(None, {DECISIONS: "decisions"},  # type: ignore[arg-type]
                                                      LogFilter(kinds=frozenset({"DECISION"})), VERIFY, left_out)]

    book = RecallBook()
    for row in asyncio.run(read()):
        book.add(row)
    return [(r.alert_id, r.version, r.state) for r in book.status({}, T0 + timedelta(days=10))], left_out


@pytest.mark.parametrize("how", HOW)
def test_a_stray_is_reported_and_the_next_broker_block_stays_sound(how: str) -> None:
    """The stray is a finding at its own offset, and the only one: the broker's next block is in its place, and
    is what the chain is vouched for up to."""
    report = verify_partition(DECISIONS, 0, enumerate(_chain(how)), VERIFY, "decisions")
    assert report.findings and {f.offset for f in report.findings} == {1}
    assert [(v.seq, v.offset) for v in report.vouched] == [(1, 2)]


@pytest.mark.parametrize("how", HOW)
def test_the_decisions_after_a_stray_are_read_and_an_overdue_recall_shows(
        how: str, audit_topics: dict[str, list[bytes]]) -> None:
    """`audit log` and `audit recalls` read the broker's block after the stray: the recall in it is overdue, and
    only the stray is left out."""
    audit_topics[DECISIONS] = _chain(how)
    assert _recalls() == ([("SNM:1", 2, OVERDUE)], [1])


def test_a_block_the_walk_cannot_verify_is_still_what_the_next_block_continues() -> None:
    """A block signed by a key this walk does not hold is a finding, yet the chain runs through it: the broker's
    next block, continuing it, is sound (as is one after a gap), and a stray after that moves nothing either."""
    writer = ChainWriter(DECISIONS, 0)
    values = [writer.block([_alert(f"SNM:{i}", i, [DELIVER])], KEY if i != 1 else "broker-sign-2025z",
                           _signer(KEY), iso_utc(T0)) for i in range(3)]
    values.insert(3, _stray(values[2], "unsigned block"))
    values.append(writer.block([_alert("SNM:3", 3, [DELIVER])], KEY, _signer(KEY), iso_utc(T0)))
    report = verify_partition(DECISIONS, 0, enumerate(values), VERIFY, "decisions")
    assert [f.offset for f in report.findings] == [1, 3]
    assert [(v.seq, v.offset) for v in report.vouched] == [(3, 4)]


def test_copies_of_old_blocks_after_a_stray_stay_out_of_place() -> None:
    """A stray never lets an old block be taken again: a copy of one, written after it, is still a finding."""
    writer = ChainWriter(DECISIONS, 0)
    values = [writer.block([_alert(f"SNM:{i}", i, [DELIVER])], KEY, _signer(KEY), iso_utc(T0)) for i in range(3)]
    values += [_stray(values[2], "bad signature"), values[1]]
    report = verify_partition(DECISIONS, 0, enumerate(values), VERIFY, "decisions")
    assert [f.offset for f in report.findings] == [3, 4]
    assert "reordered or repeated record (expected seq 3, found 1)" in report.findings[1].problem


def test_catching_up_past_a_stray_gives_what_a_rebuild_gives(tmp_path: Path) -> None:
    """The audit index, stopping right after the stray and going on from its saved chain state, indexes the
    broker's next block, as a run over all does; the stray is its one finding."""
    topics = {DECISIONS: _chain("unsigned block")}
    whole = AuditIndex(tmp_path / "a" / "whole.sqlite")
    _ingest(whole, topics)
    parts = AuditIndex(tmp_path / "b" / "parts.sqlite")
    _same_alias_key(whole, parts)
    _ingest(parts, topics, upto={DECISIONS: 2})
    _ingest(parts, topics)
    assert _dump(parts) == _dump(whole)
    assert [r["decision"] for r in whole.search(Scope(), Query(alert="SNM:1")).rows] == ["RECALL", "DELIVER"]
    assert [f["offset"] for f in whole.integrity(Scope())["findings"]] == [1]


@pytest.mark.parametrize("states", [False, True])
def test_replayed_old_blocks_never_lead_the_walk_back_down_the_chain(
        states: bool, audit_topics: dict[str, list[bytes]]) -> None:
    """Copies of the chain's first blocks, written in their order after its head: the copy of the first is out of
    place, and a copy continuing it must be too, or the walk would follow the copies back down to a head behind
    the broker's, read the broker's next block (a recall) as a break and leave it out. Each copy is a finding; the
    broker's block is sound and its overdue recall shows."""
    writer = ChainWriter(DECISIONS, 0)
    blocks = [writer.block([_alert(f"SNM:{i}", i, [DELIVER])], KEY, _signer(KEY), iso_utc(T0),
                           states=10 + i if states else None) for i in range(5)]
    recall = writer.block([_alert("SNM:1", 60, [RECALL], version=1, action="RECALL", reason="ERROR",
                                  previous_version=1)], KEY, _signer(KEY), iso_utc(T0 + timedelta(hours=1)),
                          states=15 if states else None)
    values = [*blocks, blocks[0], blocks[1], blocks[2], recall]
    report = verify_partition(DECISIONS, 0, enumerate(values), VERIFY, "decisions")
    assert [f.offset for f in report.findings] == [5, 6, 7]
    assert [(v.seq, v.offset) for v in report.vouched] == [(5, 8)]
    audit_topics[DECISIONS] = values
    assert _recalls() == ([("SNM:1", 2, OVERDUE)], [3])
