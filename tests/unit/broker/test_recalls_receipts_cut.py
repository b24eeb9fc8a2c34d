"""A recall of a view delivered before its partner's receipts partition lost its start (DeleteRecords, or retention)
is never acknowledged: a store whose RECEIVED receipt was there may hold the alert still, whatever holders are known
and answered. It is "not judged" (never overdue, never late), unless the receipts held show it open; a recall whose
deliveries all came after the cut, or whose delivery is in no decision held, keeps the usual rule."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import broker.audit.recalls as recalls
import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.audit.recalls import (
    ACKNOWLEDGED,
    FAILED,
    NOT_JUDGED,
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
from tests.unit.broker.test_recalls import NOW, _at, _delivered, _recall, _receipt

A, B, C = "a" * 32, "b" * 32, "c" * 32  # three stores' ids
CUT = ReceiptsCut("COL", "p.receipts.COL", 0, 5, NOW - timedelta(hours=20))  # COL's receipts before 20 h ago gone


def _col(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Decisions first, as ``read_log`` gives them."""
    return sorted(rows, key=lambda r: r["kind"] != "DECISION")


def test_two_holders_one_receipt_lost_the_others_answer_does_not_acknowledge_the_recall() -> None:
    """Store A received v1 before the cut (its receipt gone); store B took the feed partition over, received v2 after
    it (its receipt held) and answered the v3 recall: B's answer says nothing of A, so the recall is not judged,
    however long after its deadline, its row naming the cut and B's answer. With a third store C known and
    answering too, the same. Receipts whole, B's answer closes it."""
    rows = _col([_delivered("SNM:A", "COL", 1, 30), _delivered("SNM:A", "COL", 2, 12), _recall("SNM:A", "COL", 3, 10),
                 _receipt("SNM:A", "RECEIVED", 2, 11, "COL/b", B), _receipt("SNM:A", "RECALLED", 3, 9, "COL/b", B)])
    [row] = recall_status(rows, {}, NOW)
    assert (row.state, row.receipts_cut) == (ACKNOWLEDGED, None)
    for now in (NOW, NOW + timedelta(days=30)):
        [row] = recall_status(rows, {}, now, [CUT])
        assert (row.state, row.acknowledged_at, row.answered_at, row.waiting_on, row.receipts_cut) == (
            NOT_JUDGED, None, NOW - timedelta(hours=9), (), CUT)
        assert (row.overdue_by(now), row.late_by()) == (timedelta(0), timedelta(0))
    more = _col([*rows, _receipt("SNM:A", "RECEIVED", 2, 11, "COL/c", C),
                 _receipt("SNM:A", "RECALLED", 3, 8, "COL/c", C)])
    [row] = recall_status(more, {}, NOW, [CUT])
    assert (row.state, row.answered_at) == (NOT_JUDGED, NOW - timedelta(hours=8))


def test_a_single_store_that_answered_on_time_is_acknowledged_when_the_view_came_after_the_cut() -> None:
    """COL's one store answered the notice an hour after it was sent, 200 days ago, its RECEIVED receipt not held.
    Delivered after the cut (its receipts held: none was written), the answer closes it, as with receipts whole;
    delivered before the cut (its receipt may have expired with it), it is not judged, never overdue."""
    day = 24
    cut = ReceiptsCut("COL", "p.receipts.COL", 0, 7, NOW - timedelta(days=300))
    notice, answer = _recall("SNM:A", "COL", 2, 200 * day, ack_hours=72), _receipt("SNM:A", "RECALLED", 2,
                                                                                  200 * day - 1, "COL/a", A)
    [row] = recall_status([_delivered("SNM:A", "COL", 1, 250 * day), notice, answer], {}, NOW, [cut])
    assert (row.state, row.acknowledged_at, row.receipts_cut) == (ACKNOWLEDGED, NOW - timedelta(hours=200 * day - 1),
                                                                  None)
    [row] = recall_status([_delivered("SNM:A", "COL", 1, 310 * day), notice, answer], {}, NOW, [cut])
    assert (row.state, row.acknowledged_at, row.answered_at, row.receipts_cut) == (
        NOT_JUDGED, None, NOW - timedelta(hours=200 * day - 1), cut)
    assert row.overdue_by(NOW) == timedelta(0)


def test_a_delivery_within_the_clock_skew_of_the_cut_counts_as_before_it_and_one_not_held_as_after() -> None:
    """A delivery decided half an hour after the first receipt held (a worker's clock ahead of Kafka's) may still
    have lost its receipt; one 2 h after did not. A recall whose delivery is in no decision held (the decisions
    expired too) keeps the usual rule: `audit verify` judges the decisions topic's own cut."""
    answer = _receipt("SNM:A", "RECALLED", 2, 9, "COL/b", B)
    for delivered, state in ((19.5, NOT_JUDGED), (18, ACKNOWLEDGED)):
        [row] = recall_status([_delivered("SNM:A", "COL", 1, delivered), _recall("SNM:A", "COL", 2, 10), answer],
                              {}, NOW, [CUT])
        assert row.state == state
    [row] = recall_status([_recall("SNM:A", "COL", 2, 10), answer], {}, NOW, [CUT])
    assert (row.state, row.receipts_cut) == (ACKNOWLEDGED, None)


def test_what_the_receipts_held_show_open_stays_outstanding_or_overdue() -> None:
    """A view delivered before the cut, another after it held by store A (its receipt held): A not answering keeps the
    recall outstanding, then overdue, waiting on A and naming the cut; once A answers, it is not judged. A notice no
    one answered that was sent after the cut (an answer would be held) is overdue past its deadline; one sent before
    the cut, whose answer may be lost, is not judged."""
    rows = _col([_delivered("SNM:A", "COL", 1, 40), _delivered("SNM:A", "COL", 2, 15), _recall("SNM:A", "COL", 3, 10),
                 _receipt("SNM:A", "RECEIVED", 2, 14, "COL/a", A)])
    [row] = recall_status(rows, {}, NOW, [CUT])
    assert (row.state, row.waiting_on, row.receipts_cut) == (OUTSTANDING, (A,), CUT)
    [row] = recall_status(rows, {}, NOW + timedelta(days=5), [CUT])
    assert (row.state, row.waiting_on) == (OVERDUE, (A,))
    [row] = recall_status([*rows, _receipt("SNM:A", "RECALLED", 3, 2, "COL/a", A)], {}, NOW, [CUT])
    assert (row.state, row.answered_at, row.waiting_on) == (NOT_JUDGED, NOW - timedelta(hours=2), ())
    delivery = _delivered("SNM:B", "COL", 1, 40)
    for sent, state in ((10, OVERDUE), (30, NOT_JUDGED)):
        [row] = recall_status([delivery, _recall("SNM:B", "COL", 2, sent, ack_hours=1)], {}, NOW, [CUT])
        assert (row.state, row.answered_at, row.receipts_cut) == (state, None, CUT)


def test_only_the_cut_partners_recalls_are_not_judged_and_a_cut_of_no_known_partner_covers_every_one() -> None:
    """USA's receipts are whole: its recall answered by any store is acknowledged while COL's is not judged; a receipts
    topic of no known partner (None) may have held anyone's receipts, so neither is judged. Deliveries named by the
    partner's reference count as the notices do."""
    rows = [_delivered("SNM:A", "COL", 1, 30, ref="R"), _delivered("SNM:A", "USA", 1, 30),
            _recall("SNM:A", "COL", 2, 10, ref="R"), {**_ack_by("COL"), "alert_id": "R"},
            _recall("SNM:A", "USA", 2, 10), _ack_by("USA")]
    assert {r.partner: r.state for r in recall_status(rows, {}, NOW, [CUT])} == {"COL": NOT_JUDGED,
                                                                                  "USA": ACKNOWLEDGED}
    anyone = ReceiptsCut(None, "p.receipts.", 0, 1)
    assert {r.partner: r.state for r in recall_status(rows, {}, NOW, [anyone])} == {"COL": NOT_JUDGED,
                                                                                     "USA": NOT_JUDGED}


def _ack_by(partner: str) -> dict[str, object]:
    return {**_receipt("SNM:A", "RECALLED", 2, 9, f"{partner}/b", B), "partner": partner}


def test_a_failed_notice_carries_no_cut_and_the_cut_losing_most_is_the_one_named() -> None:
    """A notice never sent is failed, as before, with no cut on its row; of two cuts of one partner's receipts, the
    row names the one that lost receipts up to the later time (one with no time: every delivery before it)."""
    [row] = recall_status([_delivered("SNM:A", "COL", 1, 30), _recall("SNM:A", "COL", 2, 10, sent=False)], {}, NOW,
                          [CUT])
    assert (row.state, row.receipts_cut) == (FAILED, None)
    book = RecallBook()
    whole = ReceiptsCut("COL", "p.receipts.COL", 1, 9, None)
    for cut in (CUT, whole, ReceiptsCut("COL", "p.receipts.COL", 2, 3, NOW - timedelta(hours=1))):
        book.receipts_cut(cut)
    book.add(_delivered("SNM:A", "COL", 1, 1000))
    book.add(_recall("SNM:A", "COL", 2, 10))
    [row] = book.status({}, NOW)
    assert (row.state, row.receipts_cut) == (NOT_JUDGED, whole)


def test_past_the_deliveries_kept_or_told_of_a_cut_late_every_recall_of_the_partner_is_not_judged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for two (alert, partner) deliveries before COL's cut, a third makes every COL recall not judged,
    one of a view delivered after the cut too, while USA's is acknowledged; a cut told after rows came (the
    deliveries before it not kept) does the same."""
    monkeypatch.setattr(recalls, "MAX_EARLY", 2)
    after = [_delivered("SNM:Z", "COL", 1, 15), _recall("SNM:Z", "COL", 2, 10),
             {**_receipt("SNM:Z", "RECALLED", 2, 9, "COL/b", B)}, _delivered("SNM:A", "USA", 1, 30),
             _recall("SNM:A", "USA", 2, 10), _ack_by("USA")]
    early = [_delivered(f"SNM:{n}", "COL", 1, 30) for n in "ABC"]
    assert {r.alert_id: r.state for r in recall_status([*early[:2], *after], {}, NOW, [CUT])} == {
        "SNM:Z": ACKNOWLEDGED, "SNM:A": ACKNOWLEDGED}
    book = RecallBook()
    book.receipts_cut(CUT)
    for row in [*early, *after]:
        book.add(row)
    assert {(r.alert_id, r.partner): r.state for r in book.status({}, NOW)} == {
        ("SNM:Z", "COL"): NOT_JUDGED, ("SNM:A", "USA"): ACKNOWLEDGED}
    assert book.blind == {"COL"}
    book = RecallBook()
    for row in after:
        book.add(row)
    book.receipts_cut(CUT)
    assert {(r.alert_id, r.partner): r.state for r in book.status({}, NOW)} == {
        ("SNM:Z", "COL"): NOT_JUDGED, ("SNM:A", "USA"): ACKNOWLEDGED}


def test_the_reason_is_one_line_naming_the_partner_the_time_and_what_to_check() -> None:
    """What a row says: whose receipts before when are gone, where the partition starts, and what to check; with no
    time for the first record held, those before its first offset held (the rest are held)."""
    assert CUT.describe() == (
        f"holders not known: COL's receipts before {iso_utc(NOW - timedelta(hours=20))} are no longer held "
        "(p.receipts.COL[0] starts at offset 5), and a store whose receipt was among them may hold the alert still; "
        "check whether they expired (PUENTE_AUDIT_RETENTION_DAYS) or were deleted, and ask the partner which of its "
        "stores hold the alert")
    assert ReceiptsCut("COL", "t", 0, 3).describe().startswith(
        "holders not known: COL's receipts before offset 3 are no longer held (t[0] starts at offset 3)")
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
    beginning offset there), the cuts ``read_log`` reports given to the book as it reports them (or, without
    ``cuts``, once every row was added), and checked to come before any row."""
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
    rows: list[dict[str, Any]] = []

    def told(cut: ReceiptsCut) -> None:
        assert not rows  # before any row: the book keeps the deliveries decided before it
        found.append(cut)
        if cuts:
            book.receipts_cut(cut)

    async def read() -> None:
        async for row in auditor.read_log(None, roles, LogFilter(kinds=frozenset({"DECISION", "RECEIPT"})),  # type: ignore[arg-type]
                                          VERIFY, left_out, {RECEIPTS: "COL"},
                                          retention=Retention(3650, int(T0.timestamp() * 1000)),
                                          receipts_cut=told):
            rows.append(row)
            book.add(row)

    asyncio.run(read())
    assert sum(left_out) == 0  # every record held is sound: nothing else keeps the recall from being judged
    if not cuts:
        for cut in found:
            book.receipts_cut(cut)
    return book, found


def test_read_log_reports_a_receipts_partition_cut_before_any_row_and_the_recall_is_not_judged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole, the recall waits on store A. With A's records deleted (the log starting at offset 2), `read_log`
    reports the cut (COL's, at B's first record's Kafka time) before any row, and the recall of v1, delivered
    before it, is not judged (B's answer seen), not acknowledged by it; told only after the rows, the book has no
    deliveries before the cut, and judges none of COL's recalls either."""
    later = T0 + timedelta(days=10)
    book, found = _read(monkeypatch, 0)
    [row] = book.status({}, later)
    assert (found, row.state, row.waiting_on) == ([], OVERDUE, (A,))
    book, found = _read(monkeypatch, 2)
    assert found == [ReceiptsCut("COL", RECEIPTS, 0, 2, T0 + timedelta(minutes=70))]
    [row] = book.status({}, later)
    assert (row.state, row.acknowledged_at, row.answered_at, row.waiting_on, row.receipts_cut) == (
        NOT_JUDGED, None, T0 + timedelta(minutes=70), (), found[0])
    book, _ = _read(monkeypatch, 2, cuts=False)
    assert (book.status({}, later)[0].state, book.blind) == (NOT_JUDGED, {"COL"})


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


def test_a_holder_that_answered_an_earlier_recall_after_the_cut_keeps_the_usual_rule() -> None:
    """Every view delivered after the cut (all their receipts held): A held v1 and acknowledged the first recall
    (v2), B received v3 and answered the second (v4), and both are acknowledged, cut or not. With v1 delivered
    before the cut instead, A's receipts are not all held, and neither recall is judged (the v2 notice, sent before
    the cut with no answer held, may have had its answer lost)."""
    rows = [_recall("SNM:A", "COL", 2, 16), _recall("SNM:A", "COL", 4, 10),
            _receipt("SNM:A", "RECEIVED", 1, 17, "COL", A), _receipt("SNM:A", "RECALLED", 2, 15, "COL", A),
            _receipt("SNM:A", "RECEIVED", 3, 13, "COL/b", B), _receipt("SNM:A", "RECALLED", 4, 9, "COL/b", B)]
    deliveries = [_delivered("SNM:A", "COL", 1, 18), _delivered("SNM:A", "COL", 3, 14)]
    for cuts in ([], [CUT]):
        out = recall_status([*deliveries, *rows], {}, NOW, cuts)
        assert [(r.version, r.state) for r in out] == [(4, ACKNOWLEDGED), (2, ACKNOWLEDGED)]
    old = [_delivered("SNM:A", "COL", 1, 40), _delivered("SNM:A", "COL", 3, 14), _recall("SNM:A", "COL", 2, 30),
           *rows[1:2], *rows[4:]]
    out = recall_status(old, {}, NOW, [CUT])
    assert [(r.version, r.state) for r in out] == [(2, NOT_JUDGED), (4, NOT_JUDGED)]
