"""A recall no held receipt shows a holder of is acknowledged by any answer only while its partner's receipts are
whole: once the receipts partition lost its start (DeleteRecords, or retention), the store whose RECEIVED receipt
was there may hold the alert still, so the recall stays outstanding (then overdue) and says why."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.audit.recalls import (
    ACKNOWLEDGED,
    OUTSTANDING,
    OVERDUE,
    RecallBook,
    ReceiptsCut,
    recall_status,
)
from broker.audit.verify import Holds, PartitionWalk, Retention
from broker.auditor import LogFilter
from puente.wire import iso_utc
from tests.unit.broker.conftest import read_audit_from
from tests.unit.broker.test_audit_index import DECISIONS, T0, VERIFY, _alert, _decision, _signer
from tests.unit.broker.test_recalls import NOW, _at, _recall, _receipt

A, B = "a" * 32, "b" * 32  # two stores' ids
CUT = ReceiptsCut("COL", "p.receipts.COL", 0, 5, NOW - timedelta(hours=20))


def test_an_answer_from_another_store_does_not_close_a_recall_once_the_partners_receipts_lost_their_start() -> None:
    """Store A received v1 (its receipt deleted with the partition's start); store B acknowledged the notice: with
    the cut known the recall is outstanding, not acknowledged, and its row names the cut; without it (receipts
    whole, A's receipt never written) B's answer closes it, as before."""
    rows = [_recall("SNM:A", "COL", 2, 10), _receipt("SNM:A", "RECALLED", 2, 9, "COL/b", B)]
    [row] = recall_status(rows, {}, NOW)
    assert (row.state, row.receipts_cut) == (ACKNOWLEDGED, None)
    [row] = recall_status(rows, {}, NOW, [CUT])
    assert (row.state, row.acknowledged_at, row.waiting_on, row.receipts_cut) == (OUTSTANDING, None, (), CUT)
    [row] = recall_status(rows, {}, NOW + timedelta(hours=100), [CUT])  # 72 h to acknowledge: overdue, not closed
    assert (row.state, row.receipts_cut) == (OVERDUE, CUT)


def test_a_recall_with_a_holder_known_keeps_todays_rule_whatever_the_cut() -> None:
    """A's RECEIVED receipt is held: the recall waits on A, and is acknowledged once A answers, cut or not."""
    rows = [_recall("SNM:A", "COL", 2, 10), _receipt("SNM:A", "RECEIVED", 1, 30, "COL", A),
            _receipt("SNM:A", "RECALLED", 2, 9, "COL/b", B)]
    [row] = recall_status(sorted(rows, key=lambda r: r["kind"] != "DECISION"), {}, NOW, [CUT])
    assert (row.state, row.waiting_on, row.receipts_cut) == (OUTSTANDING, (A,), None)
    rows.append(_receipt("SNM:A", "RECALLED", 2, 2, "COL", A))
    [row] = recall_status(sorted(rows, key=lambda r: r["kind"] != "DECISION"), {}, NOW, [CUT])
    assert (row.state, row.acknowledged_at, row.receipts_cut) == (ACKNOWLEDGED, NOW - timedelta(hours=2), None)


def test_only_the_cut_partners_recalls_are_held_open_and_a_cut_of_no_known_partner_holds_every_ones() -> None:
    """USA's receipts are whole: its recall answered by any store is acknowledged while COL's stays open; a receipts
    topic of no known partner (None) may have held anyone's receipts, so both stay open."""
    rows = [_recall("SNM:A", "COL", 2, 10), _ack_by("COL"), _recall("SNM:A", "USA", 2, 10), _ack_by("USA")]
    assert {r.partner: r.state for r in recall_status(rows, {}, NOW, [CUT])} == {"COL": OUTSTANDING,
                                                                                  "USA": ACKNOWLEDGED}
    anyone = ReceiptsCut(None, "p.receipts.", 0, 1)
    assert {r.partner: r.state for r in recall_status(rows, {}, NOW, [anyone])} == {"COL": OUTSTANDING,
                                                                                     "USA": OUTSTANDING}


def _ack_by(partner: str) -> dict[str, object]:
    return {**_receipt("SNM:A", "RECALLED", 2, 9, f"{partner}/b", B), "partner": partner}


def test_a_failed_notice_carries_no_cut_and_the_cut_losing_most_is_the_one_named() -> None:
    """A notice never sent is failed, as before, with no cut on its row; of two cuts of one partner's receipts, the
    row names the one that lost receipts up to the later time (or all of them)."""
    [row] = recall_status([_recall("SNM:A", "COL", 2, 10, sent=False)], {}, NOW, [CUT])
    assert row.receipts_cut is None
    book = RecallBook()
    whole = ReceiptsCut("COL", "p.receipts.COL", 1, 9, None)
    for cut in (CUT, whole, ReceiptsCut("COL", "p.receipts.COL", 2, 3, NOW - timedelta(hours=1))):
        book.receipts_cut(cut)
    book.add(_recall("SNM:A", "COL", 2, 10))
    [row] = book.status({}, NOW)
    assert row.receipts_cut == whole


def test_the_reason_is_one_line_naming_the_partner_the_time_and_what_to_check() -> None:
    """What a row says: whose receipts before when are gone, where the partition starts, and what to check."""
    assert CUT.describe() == (
        f"COL's receipts before {iso_utc(NOW - timedelta(hours=20))} are no longer held (p.receipts.COL[0] starts at "
        "offset 5): no receipt shows which store held the alert, so no answer closes the recall; check whether they "
        "expired (PUENTE_AUDIT_RETENTION_DAYS) or were deleted, and ask the partner which of its stores hold the "
        "alert")
    assert ReceiptsCut("COL", "t", 0, 3).describe().startswith(
        "COL's receipts (all of them) are no longer held (t[0] starts at offset 3)")
    assert "\x1b" not in ReceiptsCut("C\x1bL", "t\x1b", 0, 3).describe()  # one line of plain text, whatever named


# Through `read_log`, as `audit recalls` reads Kafka: the receipts partition's start deleted.

RECEIPTS = "t.receipts.COL"
DELIVER = _decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")
RECALL = _decision("COL", "RECALL", ["lifecycle.recall"], recalls=1, notice_version=2, ack_hours=24,
                   feed="t.feed.COL")


def _decisions() -> list[bytes]:
    writer = ChainWriter(DECISIONS, 0)
    key = "broker-sign-2026a"
    return [writer.block([_alert("SNM:1", 0, [DELIVER])], key, _signer(key), iso_utc(T0)),
            writer.block([_alert("SNM:1", 60, [RECALL], version=1, action="RECALL", reason="ERROR",
                                 previous_version=1)], key, _signer(key), iso_utc(T0 + timedelta(hours=1)))]


def _receipts() -> list[bytes]:
    """Store A's chain (COL/a) received v1; store B's (COL/b), which took the feed partition over, acknowledged the
    notice. Each signed by COL's key; A's two records first, at offsets 0-1."""
    out = []
    for chain, store, status, version, offset, minutes in (("COL/a", A, "RECEIVED", 1, 0, 5),
                                                           ("COL/b", B, "RECALLED", 2, 1, 70)):
        writer = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain=chain)
        at = iso_utc(T0 + timedelta(minutes=minutes))
        out += [writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:1", "version": version, "status": status,
                                          "store": store, "feed": f"t.feed.COL:0:{offset}", "at": at}),
                writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), at)]
    return out


def _read(monkeypatch: pytest.MonkeyPatch, start: int, *, cuts: bool = True) -> tuple[RecallBook, list[ReceiptsCut]]:
    """`audit recalls`' book of the two topics, the receipts partition's records before ``start`` deleted (Kafka's
    beginning offset there), with the cuts ``read_log`` reported given to the book."""
    topics: dict[str, list[bytes]] = {DECISIONS: _decisions(), RECEIPTS: _receipts()}
    appended = {DECISIONS: [None, None], RECEIPTS: [int((T0 + timedelta(minutes=m)).timestamp() * 1000)
                                                    for m in (5, 5, 70, 70)]}
    read_audit_from(monkeypatch, lambda topic: [0], lambda tp: ())

    async def log_starts(consumer: Any, tps: list[Any]) -> dict[Any, int]:
        return {tp: start if tp.topic == RECEIPTS else 0 for tp in tps}

    async def read_range(consumer: Any, tp: Any, begin: int | None = None) -> Any:
        first = start if tp.topic == RECEIPTS else 0
        for offset, value in list(enumerate(topics[tp.topic]))[first:]:
            yield SimpleNamespace(offset=offset, value=value, appended_ms=appended[tp.topic][offset], unreadable=None)

    monkeypatch.setattr(auditor, "log_starts", log_starts)
    monkeypatch.setattr(auditor, "read_range", read_range)
    roles: dict[str, Holds] = {DECISIONS: "decisions", RECEIPTS: "receipts"}
    found: list[ReceiptsCut] = []
    left_out: list[int] = []
    book = RecallBook()

    async def read() -> None:
        async for row in auditor.read_log(None, roles, LogFilter(kinds=frozenset({"DECISION", "RECEIPT"})),  # type: ignore[arg-type]
                                          VERIFY, left_out, {RECEIPTS: "COL"},
                                          retention=Retention(3650, int(T0.timestamp() * 1000)),
                                          receipts_cut=found):
            book.add(row)

    asyncio.run(read())
    assert sum(left_out) == 0  # every record held is sound: nothing else keeps the recall from being judged
    if cuts:
        for cut in found:
            book.receipts_cut(cut)
    return book, found


def test_read_log_reports_a_receipts_partition_cut_at_its_start_and_the_recall_stays_open(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole, the recall waits on store A. With A's records deleted (the log starting at offset 2), `read_log`
    reports the cut (COL's, from B's first record's Kafka time) and the recall is overdue, not acknowledged by
    B's answer, as it was before the cut reached the book."""
    later = T0 + timedelta(days=10)
    book, found = _read(monkeypatch, 0)
    [row] = book.status({}, later)
    assert (found, row.state, row.waiting_on) == ([], OVERDUE, (A,))
    book, found = _read(monkeypatch, 2)
    assert found == [ReceiptsCut("COL", RECEIPTS, 0, 2, T0 + timedelta(minutes=70))]
    [row] = book.status({}, later)
    assert (row.state, row.acknowledged_at, row.waiting_on, row.receipts_cut) == (OVERDUE, None, (), found[0])
    book, _ = _read(monkeypatch, 2, cuts=False)  # the book not told: any answer counts (the old behaviour)
    assert book.status({}, later)[0].state != OVERDUE


def test_a_subscribers_chain_states_no_retention_so_its_cut_start_is_no_finding() -> None:
    """A partner's receipt chain cut at its start, its first record held saying its predecessor was written two hours
    before: no ``keep_days``, so `audit verify` raises no finding there (judged by today's retention alone, a
    retention raised since would make an expiry read as a deletion); the cut reaches recalls through the
    partition's log start instead. The same chain stating ``keep_days`` is a finding, as the broker's are."""
    for keep, findings in ((None, 0), (30, 1)):
        writer = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL", keep_days=keep)
        values = [writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{i}", "version": 1,
                                            "status": "RECEIVED", "at": _at(2 - i)}) for i in range(2)]
        walk = PartitionWalk(RECEIPTS, 0, VERIFY, "receipts", "COL", log_start=1,
                             retention=Retention(30, int(NOW.timestamp() * 1000)))
        _, found = walk.feed(1, values[1])
        assert (len(found), walk.chains["COL"].first_seq) == (findings, 1)


def test_a_holder_that_answered_only_an_earlier_recall_does_not_make_the_holder_of_a_later_view_known() -> None:
    """A held v1 and acknowledged the first recall (v2); v3 then went to a store whose receipt the cut took, and the
    second recall (v4) is answered by B alone: A is no holder of what v4 recalls, so with the cut it stays open."""
    rows = [_recall("SNM:A", "COL", 2, 40), _recall("SNM:A", "COL", 4, 10),
            _receipt("SNM:A", "RECEIVED", 1, 45, "COL", A), _receipt("SNM:A", "RECALLED", 2, 39, "COL", A),
            _receipt("SNM:A", "RECALLED", 4, 9, "COL/b", B)]
    assert [(r.version, r.state) for r in recall_status(rows, {}, NOW)] == [(4, ACKNOWLEDGED), (2, ACKNOWLEDGED)]
    out = recall_status(rows, {}, NOW, [CUT])
    assert [(r.version, r.state, r.receipts_cut) for r in out] == [(4, OUTSTANDING, CUT), (2, ACKNOWLEDGED, None)]
