"""Receipts outliving the decisions that delivered them: Kafka deletes each topic's segments on its own schedule, so
past the audit's retention a partner's receipts are still held whose delivering blocks expired. Where the decisions
chain's start is retention's, such a receipt is sound (listed, acknowledging nothing), in `audit verify`, `audit log`
and the audit index alike; where a deletion within the retention took the blocks, it stays a problem."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.audit.receipts import FeedPlace, Placed, ReceiptMatch, Sent, match_receipt
from broker.audit.verify import (
    DecisionsStart,
    Holds,
    Retention,
    StartFinding,
    decisions_start,
    expired_before,
)
from broker.audit_index import AuditIndex
from tests.unit.broker.conftest import AuditRec
from tests.unit.broker.test_audit_chain import _sign, _verify

DECISIONS, RECEIPTS = "p.decisions", "p.receipts.COL"
ROLES: dict[str, Holds] = {DECISIONS: "decisions", RECEIPTS: "receipts"}
OWNERS = {RECEIPTS: "COL"}
KEEP = 30  # days: what each block states it is kept under
CUT = 3  # the decisions partition's log start: blocks 0-2 (alerts A0-A2) are gone


def _at(day: int, minutes: int = 0) -> str:
    return f"2026-03-{day:02d}T12:{minutes:02d}:00Z"


def _ms(at: str) -> int:
    return int(datetime.fromisoformat(at).timestamp() * 1000)


def _decisions(gap: str | None = None) -> list[bytes]:
    """Five blocks, a day apart, each delivering alert A<i> to COL (``gap``: the first block also records a GAP of
    that reason, as a worker beginning a new chain does)."""
    writer = ChainWriter(DECISIONS, 0, keep_days=KEEP)
    blocks = []
    for i in range(5):
        entries: list[dict[str, Any]] = [{"kind": "ALERT", "alert_id": f"A{i}", "version": 1, "at": _at(1 + i),
                                          "ingress": f"p.ingress.SNM:0:{i}", "decisions": [
                                              {"partner": "COL", "decision": "DELIVER", "feed": "p.feed.COL"}]}]
        if gap is not None and i == 0:
            entries.insert(0, {"kind": "GAP", "reason": gap, "ingress": "p.ingress.SNM:0:0"})
        blocks.append(writer.block(entries, "broker-sign-test", _sign, _at(1 + i)))
    return blocks


def _receipts(extra: tuple[str, str] | None = None) -> list[bytes]:
    """COL's receipt of each delivery, five minutes after it, and ``extra`` (alert, time) naming none; each followed
    by a checkpoint, as a subscriber signs each batch (receipt i at offset 2i)."""
    named = [(f"A{i}", _at(1 + i, 5)) for i in range(5)] + ([extra] if extra else [])
    writer = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL")
    values = []
    for i, (alert, at) in enumerate(named):
        values.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": alert, "version": 1,
                                                "status": "RECEIVED", "feed": f"p.feed.COL:0:{i}", "at": at}))
        values.append(writer.checkpoint("COL-rcpt-test", _sign, at))
    return values


def _appended(topic: str, value: bytes) -> int | None:
    """Kafka's append time of a record: a receipts topic keeps LogAppendTime (a second after the time it states);
    the decisions' is not read."""
    return _ms(orjson.loads(value)["at"]) + 1000 if topic == RECEIPTS else None


EXPIRED = Retention(KEEP, _ms(_at(3)) + KEEP * 86_400_000 + 3_600_000)  # block 2 (03-03) is past the 30 days
WITHIN = Retention(KEEP, _ms(_at(3)) + 86_400_000)  # block 2 was written yesterday: DeleteRecords took it


def _kafka(monkeypatch: pytest.MonkeyPatch, held: dict[str, list[bytes]], starts: dict[str, int]) -> None:
    """Have ``broker.auditor`` read ``held`` (one partition per topic) as Kafka holds it once each topic's records
    before ``starts[topic]`` were deleted."""

    class Consumer:
        async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return {tp: starts.get(tp.topic, 0) for tp in tps}

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield Consumer()

    async def partitions_of(consumer: Any, topic: str) -> list[int]:
        return [0] if topic in held else []

    async def read_range(consumer: Any, tp: Any, start: int | None = None) -> AsyncIterator[AuditRec]:
        for offset, value in enumerate(held[tp.topic]):
            if offset >= max(starts.get(tp.topic, 0), start or 0):
                yield AuditRec(offset, value, _appended(tp.topic, value))

    monkeypatch.setattr(auditor, "reader", lambda conn, name: None)
    monkeypatch.setattr(auditor, "running", running)
    monkeypatch.setattr(auditor, "partitions_of", partitions_of)
    monkeypatch.setattr(auditor, "read_range", read_range)


def _log(retention: Retention) -> tuple[list[str], int, int, list[Any]]:
    """`audit log`'s receipt rows (their alerts), records left out, receipts matched as expired, chains deleted."""
    left: list[int] = []
    expired: list[int] = []
    deleted: list[Any] = []

    async def rows() -> list[str]:
        return [row["alert_id"] async for row in auditor.read_log(
            None, ROLES, auditor.LogFilter(), _verify, left, OWNERS,  # type: ignore[arg-type]
            retention=retention, deleted=deleted, expired=expired) if row["kind"] == "RECEIPT"]

    return asyncio.run(rows()), sum(left), sum(expired), deleted


def test_receipts_of_deliveries_retention_deleted_are_sound_in_verify_and_log(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The decisions of A0-A2 expired, their receipts are held: `audit verify` finds no problem (3 receipts counted
    as of expired deliveries) and `audit log` lists every receipt, leaving none out."""
    _kafka(monkeypatch, {DECISIONS: _decisions(), RECEIPTS: _receipts()}, {DECISIONS: CUT})
    reports = asyncio.run(auditor.verify_topics(None, ROLES, _verify, OWNERS, retention=EXPIRED))  # type: ignore[arg-type]
    assert [(r.topic, r.problems, r.expired) for r in reports] == [(DECISIONS, 0, 0), (RECEIPTS, 0, 3)]
    assert _log(EXPIRED) == (["A0", "A1", "A2", "A3", "A4"], 0, 3, [])


def test_the_same_cut_within_the_retention_leaves_the_receipts_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same blocks deleted within the retention (DeleteRecords): the chain's start is a deletion, and the
    receipts of the deliveries it took name no delivery, as before; `audit log` leaves them out."""
    _kafka(monkeypatch, {DECISIONS: _decisions(), RECEIPTS: _receipts()}, {DECISIONS: CUT})
    reports = asyncio.run(auditor.verify_topics(None, ROLES, _verify, OWNERS, retention=WITHIN))  # type: ignore[arg-type]
    assert [isinstance(f, StartFinding) for f in reports[0].findings] == [True]
    assert [(f.offset, "never delivered to COL" in f.problem) for f in reports[1].findings] == [
        (0, True), (2, True), (4, True)]
    rows, left, expired, deleted = _log(WITHIN)
    assert (rows, left, expired, len(deleted)) == (["A3", "A4"], 3, 0, 1)


def test_a_receipt_naming_no_delivery_after_the_cut_stays_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a receipt dated before the newest expired block (give or take the clock skew) can be of a delivery that
    expired: one naming no delivery, dated after it, is a finding still; and with the decisions whole, nothing
    expired and every such receipt is one."""
    held = {DECISIONS: _decisions(), RECEIPTS: _receipts(extra=("Z", _at(4)))}
    _kafka(monkeypatch, held, {DECISIONS: CUT})
    reports = asyncio.run(auditor.verify_topics(None, ROLES, _verify, OWNERS, retention=EXPIRED))  # type: ignore[arg-type]
    assert [(f.offset, "never delivered" in f.problem) for f in reports[1].findings] == [(10, True)]
    assert reports[1].expired == 3
    held[RECEIPTS] = _receipts(extra=("Z", _at(2)))
    _kafka(monkeypatch, held, {})
    reports = asyncio.run(auditor.verify_topics(None, ROLES, _verify, OWNERS, retention=EXPIRED))  # type: ignore[arg-type]
    assert [f.offset for f in reports[1].findings] == [10] and reports[1].expired == 0


def test_what_a_decisions_partitions_first_record_held_says_of_the_records_before_it() -> None:
    """A sound first block held whose predecessor retention took: its deliveries were decided by the time it says
    that one was written. A deletion, no retention stated, a forged record, or a log starting at 0: nothing. A new
    chain the broker began where the old one expired whole: a retention before its first block."""
    blocks = _decisions()
    start = decisions_start(DECISIONS, 0, CUT, CUT, blocks[CUT], None, _verify, EXPIRED)
    assert start == DecisionsStart(DECISIONS, 0, CUT, CUT, _ms(_at(3)))
    assert decisions_start(DECISIONS, 0, CUT, CUT, blocks[CUT], None, _verify, WITHIN).decided_before is None
    assert decisions_start(DECISIONS, 0, CUT, CUT, blocks[CUT], None, lambda *a: False, EXPIRED).decided_before is None
    assert decisions_start(DECISIONS, 0, 0, 0, blocks[0], None, _verify, EXPIRED).decided_before is None
    renewed = _decisions(gap="audit-expired")[0]
    assert decisions_start(DECISIONS, 0, 7, 7, renewed, None, _verify, EXPIRED).decided_before == (
        _ms(_at(1)) - KEEP * 86_400_000)
    deleted = _decisions(gap="audit-deleted")[0]
    assert decisions_start(DECISIONS, 0, 7, 7, deleted, None, _verify, EXPIRED).decided_before is None
    assert expired_before([start, DecisionsStart("p.decisions", 1, 4, 4, None)]) == _ms(_at(3))
    assert expired_before([]) is None


def _indexed(index: AuditIndex, starts: dict[str, int], retention: Retention, values: dict[str, list[bytes]],
             horizon: int | None) -> None:
    """One catch-up of ``index`` over ``values``, each topic's log starting at ``starts``: decisions first."""
    for topic, holds in ROLES.items():
        ingest = index.partition(topic, 0, holds, _verify, owner=OWNERS.get(topic), log_start=starts.get(topic, 0),
                                 retention=retention, expired_before=horizon)
        for offset, value in enumerate(values[topic]):
            if offset >= max(ingest.start, starts.get(topic, 0)):
                ingest.add(offset, value, _appended(topic, value))
        ingest.commit()


@pytest.mark.parametrize("built", ["after the cut", "before the cut"])
def test_the_index_agrees_receipts_of_expired_deliveries_are_rows_not_problems(tmp_path: Path, built: str) -> None:
    """The audit index judges them as `audit verify` does, whether it is built after retention cut the decisions or
    had matched the receipts to their deliveries before a catch-up drops those blocks: no problem, every receipt a
    row, none acknowledging a delivery no longer held. Cut within the retention: the deletion and the three receipts
    are problems."""
    values = {DECISIONS: _decisions(), RECEIPTS: _receipts()}
    start = decisions_start(DECISIONS, 0, CUT, CUT, values[DECISIONS][CUT], None, _verify, EXPIRED)
    for retention, horizon, problems in ((EXPIRED, expired_before([start]), 0), (WITHIN, None, 4)):
        path = tmp_path / f"{retention.now_ms}.sqlite"
        with AuditIndex(path) as index:
            index.register(ROLES, OWNERS)
            if built == "before the cut":
                _indexed(index, {}, retention, values, None)
                assert index.problems() == 0
            _indexed(index, {DECISIONS: CUT}, retention, values, horizon)
            assert index.problems() == problems
        rows = sqlite3.connect(path).execute("SELECT alert_id, decision_id IS NULL FROM receipts ORDER BY id")
        expect = [(f"A{i}", i < CUT) for i in range(5)] if not problems else [("A3", 0), ("A4", 0)]
        assert sorted(rows.fetchall()) == expect


class _Book:
    """A ``ReceiptBook`` over fixed deliveries, binding nothing."""

    def __init__(self, sent: dict[tuple[str, str], list[Sent]] | None = None) -> None:
        self._sent = sent or {}

    def sent(self, partner: str, alert_id: str) -> list[Sent]:
        return self._sent.get((partner, alert_id), [])

    def placed(self, partner: str, place: FeedPlace) -> Placed | None:
        return None

    def bind(self, match: ReceiptMatch) -> None:
        pass


HORIZON = _ms("2026-03-10T00:00:00Z")  # the latest cut over every decisions partition
HELD = _Book({("COL", "X"): [Sent(1, "p.feed.COL", 1, _ms("2026-03-05T00:00:00Z"))]})  # X's delivery, still held


def _receipt(**fields: Any) -> dict[str, Any]:
    return {"chain": "COL", "alert_id": "X", "version": 1, "status": "RECEIVED", "feed": "p.feed.COL:0:4",
            "at": "2026-03-06T00:00:00Z", "appended_at": "2026-03-06T00:00:01Z"} | fields


@pytest.mark.parametrize("fields", [{"version": 7}, {"feed": "p.feed.OTHER:0:4"}, {"at": "2026-03-01T00:00:00Z"}],
                         ids=["version-never-sent", "wrong-feed", "dated-before-delivery"])
def test_a_receipt_failing_a_delivery_still_held_is_never_expired(fields: dict[str, Any]) -> None:
    """A receipt whose alert has a delivery to its partner still held, but which fails to match it, is a finding
    before the horizon too: only a receipt of an alert no delivery to the partner is held of may have expired."""
    assert isinstance(match_receipt(_receipt(**fields), HELD, expired_before=HORIZON), str)


def test_a_receipt_kafka_did_not_date_never_expires() -> None:
    """A receipt with no Kafka append time (a receipts topic with CreateTime) is dated by the partner alone, so a
    back-dated one naming no delivery held stays a finding, however early it says it was written."""
    backdated = _receipt(alert_id="NEVER", at="2020-01-01T00:00:00Z")
    del backdated["appended_at"]
    assert isinstance(match_receipt(backdated, _Book(), expired_before=HORIZON), str)
    dated = _receipt(alert_id="NEVER", at="2020-01-01T00:00:00Z", appended_at="2026-03-05T00:00:00Z")
    match = match_receipt(dated, _Book(), expired_before=HORIZON)
    assert isinstance(match, ReceiptMatch) and match.expired and match.key is None


@pytest.mark.parametrize("status", ["RECALLED", "RECALL_PASSED_ON", "RECALL_NOT_HELD"])
def test_an_answer_to_a_recall_never_expires(status: str) -> None:
    """A receipt answering a recall notice that names no delivery held is a finding before the horizon too: recalls
    match such answers by alert, partner and version alone, so one listed as expired would acknowledge a recall."""
    answer = _receipt(alert_id="NEVER", version=9, status=status, at="2026-03-05T01:00:00Z",
                      appended_at="2026-03-05T01:00:05Z")
    assert isinstance(match_receipt(answer, _Book(), expired_before=HORIZON), str)
    read = match_receipt(answer | {"status": "RECEIVED"}, _Book(), expired_before=HORIZON)
    assert isinstance(read, ReceiptMatch) and read.expired
