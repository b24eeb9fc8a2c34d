"""Recalls matched with their acknowledgements: failed, overdue and late first, then outstanding, then acknowledged;
each judged by the deadline in force when its notice was sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker import auditor
from broker.audit import ChainWriter
from broker.audit.recalls import (
    ACKNOWLEDGED,
    FAILED,
    LATE,
    OUTSTANDING,
    OVERDUE,
    SUPERSEDED,
    RecallBook,
    recall_status,
)
from broker.auditor import LogFilter
from tests.unit.broker.conftest import read_audit_from

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def _recall(alert: str, partner: str, version: int, hours_ago: float, **more: object) -> dict[str, object]:
    return {"kind": "DECISION", "decision": "RECALL", "alert_id": alert, "partner": partner, "version": version,
            "at": _at(hours_ago), **more}


def _ack(alert: str, partner: str, version: int, hours_ago: float) -> dict[str, object]:
    return {"kind": "RECEIPT", "status": "RECALLED", "alert_id": alert, "partner": partner, "version": version,
            "at": _at(hours_ago)}


def test_each_recall_is_acknowledged_outstanding_or_overdue_by_its_partners_deadline() -> None:
    rows = [
        _recall("SNM:A", "COL", 3, 100, reason="ERROR"),       # 72 h deadline: overdue by 28 h
        _recall("SNM:B", "COL", 2, 10, action="RECLASSIFY"),   # within the deadline
        _recall("SNM:C", "USA", 2, 50), _ack("SNM:C", "USA", 2, 49),
        _recall("SNM:D", "USA", 2, 30),                        # USA's deadline is 24 h: overdue by 6 h
        _recall("SNM:E", "COL", 4, 5), _ack("SNM:E", "COL", 3, 4),  # acknowledged an older version only
        {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:F", "partner": "COL", "at": _at(1),
         "sent": False},                                       # never sent: the partner still holds it
        _ack("SNM:F", "COL", 1, 0.5),                          # a forged or stray receipt changes nothing
        _recall("SNM:G", "COL", 2, 10), _ack("SNM:G", "COL", 2, 30),  # "acknowledged" a day before it was sent
    ]
    out = recall_status(rows, {"USA": 24}, NOW)
    assert [(r.alert_id, r.state) for r in out] == [
        ("SNM:F", FAILED), ("SNM:A", OVERDUE), ("SNM:D", OVERDUE), ("SNM:B", OUTSTANDING), ("SNM:G", OUTSTANDING),
        ("SNM:E", OUTSTANDING), ("SNM:C", ACKNOWLEDGED)]
    first = out[1]
    assert first.reason == "ERROR" and first.overdue_by(NOW) == timedelta(hours=28)
    assert out[3].reason == "RECLASSIFY"
    assert out[6].acknowledged_at == NOW - timedelta(hours=49) and out[6].overdue_by(NOW) == timedelta(0)


def test_a_notice_keeps_the_deadline_recorded_when_it_was_sent_whatever_the_policy_says_later() -> None:
    """A notice whose decision recorded 24 h is overdue after 40 h however many hours the policy at hand gives the
    partner (72), or none (the agreement ended); only a decision written before ``ack_hours`` takes the policy's."""
    rows = [_recall("SNM:A", "FEAN", 2, 40, ack_hours=24), _recall("SNM:B", "FEAN", 2, 40)]
    for policy in ({"FEAN": 72}, {}):
        out = {r.alert_id: r for r in recall_status(rows, policy, NOW)}
        assert out["SNM:A"].state == OVERDUE and out["SNM:A"].overdue_by(NOW) == timedelta(hours=16)
        assert out["SNM:A"].deadline == NOW - timedelta(hours=16)
        assert out["SNM:B"].state == OUTSTANDING  # no hours recorded: the policy's 72 (or the default)
    assert {r.alert_id: r.state for r in recall_status(rows, {"FEAN": 24}, NOW)} == {"SNM:A": OVERDUE,
                                                                                      "SNM:B": OVERDUE}
    # A recorded value no agreement could set is not taken: the policy's instead.
    [row] = recall_status([_recall("SNM:A", "FEAN", 2, 40, ack_hours=10**9)], {"FEAN": 72}, NOW)
    assert row.state == OUTSTANDING


def test_an_acknowledgement_after_the_deadline_is_late_not_plain_acknowledged() -> None:
    """Acknowledged 16 h past its 24 h deadline, a notice is "acknowledged late", by 16 h, and stays so; it is
    listed after the overdue ones and before those outstanding. One acknowledged in time is acknowledged."""
    rows = [_recall("SNM:A", "FEAN", 2, 50, ack_hours=24), _ack("SNM:A", "FEAN", 2, 10),
            _recall("SNM:B", "FEAN", 2, 50, ack_hours=24), _ack("SNM:B", "FEAN", 2, 27),
            _recall("SNM:C", "FEAN", 2, 30, ack_hours=24), _recall("SNM:D", "FEAN", 2, 5, ack_hours=24)]
    out = recall_status(rows, {"FEAN": 72}, NOW)
    assert [(r.alert_id, r.state) for r in out] == [("SNM:C", OVERDUE), ("SNM:A", LATE), ("SNM:D", OUTSTANDING),
                                                    ("SNM:B", ACKNOWLEDGED)]
    late = out[1]
    assert late.acknowledged_at == NOW - timedelta(hours=10) and late.late_by() == timedelta(hours=16)
    assert late.overdue_by(NOW) == timedelta(0) and late.waiting_on == ()
    assert out[3].late_by() == timedelta(0) and out[0].late_by() == timedelta(0)


def test_a_later_recall_needs_its_own_acknowledgement() -> None:
    """An acknowledged notice does not answer a later one; both stay listed."""
    rows = [_recall("SNM:A", "COL", 2, 20), _ack("SNM:A", "COL", 2, 19), _recall("SNM:A", "COL", 5, 2)]
    assert [(r.version, r.state) for r in recall_status(rows, {}, NOW)] == [(5, OUTSTANDING), (2, ACKNOWLEDGED)]


def test_a_missed_deadline_stays_on_the_record_when_a_later_notice_follows() -> None:
    """COL ignored the v2 pull-back for ten days; the alert went to it again (v3) and was recalled (v4), which it
    acknowledged at once. The v2 notice is overdue until then and acknowledged late after, never hidden by v4's."""
    rows = [_receipt("SNM:A", "RECEIVED", 1, 300, "COL", A), _recall("SNM:A", "COL", 2, 290),
            _receipt("SNM:A", "RECEIVED", 3, 50, "COL", A), _recall("SNM:A", "COL", 4, 48)]
    assert [(r.version, r.state, r.waiting_on) for r in recall_status(_as_read(rows), {}, NOW)] == [
        (2, OVERDUE, (A,)), (4, OUTSTANDING, (A,))]
    rows.append(_receipt("SNM:A", "RECALLED", 4, 47, "COL", A))
    late, in_time = recall_status(_as_read(rows), {}, NOW)
    assert (late.version, late.state, late.acknowledged_at) == (2, LATE, NOW - timedelta(hours=47))
    assert late.late_by() == timedelta(hours=290 - 72 - 47) and late.waiting_on == ()
    assert (in_time.version, in_time.state) == (4, ACKNOWLEDGED)


def test_a_notice_superseded_before_its_deadline_is_answered_by_the_later_ones_acknowledgement() -> None:
    """A notice followed within its deadline by another, and the later one acknowledged in time for both: both
    acknowledged, at that time. Acknowledged after the first one's deadline (not the second's), the first is late."""
    rows = [_recall("SNM:A", "COL", 2, 30, ack_hours=24), _recall("SNM:A", "COL", 3, 20, ack_hours=24)]
    ack = NOW - timedelta(hours=19)
    out = recall_status([*rows, _ack("SNM:A", "COL", 3, 19)], {}, NOW)
    assert [(r.version, r.state, r.acknowledged_at) for r in out] == [(3, ACKNOWLEDGED, ack), (2, ACKNOWLEDGED, ack)]
    out = recall_status([*rows, _ack("SNM:A", "COL", 3, 1)], {}, NOW)
    assert [(r.version, r.state) for r in out] == [(2, LATE), (3, ACKNOWLEDGED)]
    assert out[0].late_by() == timedelta(hours=5)


def test_each_notice_waits_on_the_holders_of_the_alert_when_it_was_sent() -> None:
    """A acknowledged the v2 recall of the v1 it held; v3 then went to B alone, which no notice has recalled since.
    The v2 notice is acknowledged: B holds only a view sent after it, which it does not recall."""
    rows = [_receipt("SNM:A", "RECEIVED", 1, 40, "COL", A), _recall("SNM:A", "COL", 2, 35),
            _receipt("SNM:A", "RECALLED", 2, 34, "COL", A), _receipt("SNM:A", "RECEIVED", 3, 20, "COL/b", B)]
    [row] = recall_status(_as_read(rows), {}, NOW)
    assert (row.version, row.state, row.waiting_on) == (2, ACKNOWLEDGED, ())
    # B had received v1 too, and never answered: the v2 notice waits on B, and a later v4 notice on B as well.
    rows += [_receipt("SNM:A", "RECEIVED", 1, 39, "COL/b", B), _recall("SNM:A", "COL", 4, 10)]
    assert [(r.version, r.state, r.waiting_on) for r in recall_status(_as_read(rows), {}, NOW)] == [
        (2, OUTSTANDING, (B,)), (4, OUTSTANDING, (B,))]  # nearest deadline first


def test_a_failed_notice_is_listed_until_a_later_notice_carries_the_recall_on() -> None:
    """A notice that could not be sent is listed as failed while it is the partner's last about the alert; a later
    notice (at a later version, or a recall again at the same one) takes its place, with its own deadline."""
    failed = _recall("SNM:A", "USA", 3, 30, sent=False)
    [row] = recall_status([failed], {}, NOW)
    assert (row.version, row.state) == (3, FAILED)
    for later in (_recall("SNM:A", "USA", 4, 2), _recall("SNM:A", "USA", 3, 2)):
        [row] = recall_status([failed, later], {}, NOW)
        assert (row.version, row.state, row.sent_at) == (later["version"], OUTSTANDING, NOW - timedelta(hours=2))


def _delivered(alert: str, partner: str, version: int, hours_ago: float, **more: object) -> dict[str, object]:
    return {"kind": "DECISION", "decision": "DELIVER", "alert_id": alert, "partner": partner, "version": version,
            "at": _at(hours_ago), **more}


def test_a_failed_notice_is_closed_once_a_later_delivery_replaces_the_version_it_recalled() -> None:
    """USA held v1; the notice pulling it back (v2) could not be sent; USA, entitled again, was sent v3 in place of
    v1. The notice is failed and superseded, at v3's time, and no longer failed (`audit recalls` exits 0). Both
    decisions name the alert by USA's reference."""
    failed = _recall("SNM:A", "USA", 2, 90, sent=False, recalls=1, notice_version=2, ack_hours=24, ref="R")
    rows = [_delivered("SNM:A", "USA", 1, 100, ref="R"), failed,
            _delivered("SNM:A", "USA", 3, 80, ref="R", supersedes=1)]
    [row] = recall_status(rows, {}, NOW)
    assert (row.alert_id, row.version, row.state) == ("SNM:A", 2, SUPERSEDED)
    assert (row.superseded_at, row.superseded_by, row.acknowledged_at) == (NOW - timedelta(hours=80), 3, None)


@pytest.mark.parametrize("later", [
    _delivered("SNM:A", "USA", 3, 80),  # no version replaced: not what the partner held
    _delivered("SNM:A", "USA", 3, 80, supersedes=0),  # replaced a version older than the one recalled
    _delivered("SNM:A", "COL", 3, 80, supersedes=1),  # to another partner
    _delivered("SNM:B", "USA", 3, 80, supersedes=1),  # another alert
    {**_delivered("SNM:A", "USA", 3, 80, supersedes=1), "decision": "WITHHOLD"},
])
def test_a_failed_notice_stays_failed_unless_a_later_delivery_replaced_its_version(later: dict[str, object]) -> None:
    """Only a delivery to the same partner about the same alert, after the notice, replacing the version it
    recalled (or a later one) closes it."""
    failed = _recall("SNM:A", "USA", 2, 90, sent=False, recalls=1, notice_version=2)
    [row] = recall_status([failed, later], {}, NOW)
    assert (row.state, row.superseded_at) == (FAILED, None)


def test_the_chain_order_not_the_workers_clocks_says_which_delivery_came_after_the_notice() -> None:
    """The notice and the delivery of one alert are in one slot's chain, in the order they were decided; their
    times are their workers' clocks, which differ once the slot moved to another worker. A delivery after the
    notice, its worker's clock 2 s behind, still closes it; one before it, whatever its time, does not."""
    failed = _recall("SNM:A", "USA", 2, 90, sent=False, recalls=1, notice_version=2)
    behind = _delivered("SNM:A", "USA", 3, 90 + 2 / 3600, supersedes=1)
    [row] = recall_status([failed, behind], {}, NOW)
    assert (row.state, row.superseded_by) == (SUPERSEDED, 3)
    ahead = _delivered("SNM:A", "USA", 1, 80, supersedes=0)
    [row] = recall_status([ahead, failed], {}, NOW)
    assert (row.state, row.superseded_at) == (FAILED, None)


def test_a_time_without_an_offset_is_no_time_never_a_crash() -> None:
    """A receipt or notice whose `at` has no offset (or is no time at all) counts for nothing: `audit recalls`
    and `audit log --since/--until` never compare it naively with an aware time (which raises)."""
    naive = _ack("SNM:A", "COL", 2, 1) | {"at": "2026-12-01T11:00:00"}
    nested = _ack("SNM:A", "COL", 2, 1) | {"at": [[["x"]]]}
    rows = [_recall("SNM:A", "COL", 2, 10), naive, nested, _recall("SNM:B", "COL", 1, 1) | {"at": "2026-12-01"}]
    [row] = recall_status(rows, {}, NOW)
    assert (row.alert_id, row.state) == ("SNM:A", OUTSTANDING)
    since = LogFilter(since=NOW - timedelta(days=1), until=NOW)
    assert not since.accepts(naive) and not since.accepts(nested)
    assert since.accepts(_ack("SNM:A", "COL", 2, 1))


def _receipt(alert: str, status: str, version: int, hours_ago: float, chain: str = "COL",
             store: str | None = None) -> dict[str, object]:
    """A receipt of partner COL as ``flatten`` gives it: its chain (``COL/<instance>``), and its store's id."""
    row: dict[str, object] = {"kind": "RECEIPT", "status": status, "alert_id": alert, "partner": "COL",
                              "version": version, "at": _at(hours_ago), "chain": chain}
    if store is not None:
        row["store"] = store
    return row


A, B = "a" * 32, "b" * 32  # two stores' ids


def _as_read(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """``rows`` in the order ``read_log`` gives them: the decisions topic first, then the receipts."""
    return sorted(rows, key=lambda row: row["kind"] != "DECISION")


def test_a_recall_waits_for_every_store_that_holds_the_alert() -> None:
    """Store A received v1; store B took the feed partition over, received v2 and the recall, and acknowledged
    it. A still holds v1's text: the recall is outstanding, waiting on A, until A acknowledges it too."""
    rows = [_receipt("SNM:A", "RECEIVED", 1, 30, "COL", A), _receipt("SNM:A", "RECEIVED", 2, 20, "COL/b", B),
            _recall("SNM:A", "COL", 3, 10), _receipt("SNM:A", "RECALLED", 3, 9, "COL/b", B)]
    [row] = recall_status(_as_read(rows), {}, NOW)
    assert (row.state, row.waiting_on, row.acknowledged_at) == (OUTSTANDING, (A,), None)
    [row] = recall_status(_as_read([*rows, _receipt("SNM:A", "RECALLED", 3, 2, "COL", A)]), {}, NOW)
    assert (row.state, row.waiting_on, row.acknowledged_at) == (ACKNOWLEDGED, (), NOW - timedelta(hours=2))


def test_a_store_that_never_held_the_alert_cannot_answer_for_the_one_that_does() -> None:
    """A recall record copied into a partition another store reads (or read there after a takeover) is answered
    RECALLED by a store that never held the alert: that answers for nothing."""
    rows = [_receipt("SNM:A", "RECEIVED", 1, 30, "COL", A), _recall("SNM:A", "COL", 2, 10),
            _receipt("SNM:A", "RECALLED", 2, 9, "COL/b", B)]
    [row] = recall_status(_as_read(rows), {}, NOW)
    assert (row.state, row.waiting_on) == (OUTSTANDING, (A,))


def test_a_store_that_acknowledged_an_earlier_recall_and_holds_nothing_since_is_not_waited_on() -> None:
    """A held v1 and acknowledged the first recall (v2); re-entitled, the alert's v3 went to B alone, and the
    second recall (v4) is acknowledged once B answers."""
    rows = [_receipt("SNM:A", "RECEIVED", 1, 40, "COL", A), _recall("SNM:A", "COL", 2, 35),
            _receipt("SNM:A", "RECALLED", 2, 34, "COL", A), _receipt("SNM:A", "RECEIVED", 3, 20, "COL/b", B),
            _recall("SNM:A", "COL", 4, 10), _receipt("SNM:A", "RECALLED", 4, 9, "COL/b", B)]
    assert [(r.version, r.state, r.waiting_on) for r in recall_status(_as_read(rows), {}, NOW)] == [
        (4, ACKNOWLEDGED, ()), (2, ACKNOWLEDGED, ())]
    # A received v3 again itself instead: then it is waited on for the second recall (the first stays answered).
    rows[3] = _receipt("SNM:A", "RECEIVED", 3, 20, "COL", A)
    assert [(r.version, r.state, r.waiting_on) for r in recall_status(_as_read(rows), {}, NOW)] == [
        (4, OUTSTANDING, (A,)), (2, ACKNOWLEDGED, ())]


def test_receipts_without_a_store_count_under_their_chain_or_the_store_it_names_later() -> None:
    """Receipts written before receipts named their store count under their chain; a chain whose later receipts
    name a store speaks for that store, so a subscriber upgraded between delivery and recall is not waited on
    twice. A subscriber without a store is a holder by its chain alone."""
    rows = [_receipt("SNM:A", "RECEIVED", 1, 30, "COL"), _recall("SNM:A", "COL", 2, 10),
            _receipt("SNM:A", "RECALLED", 2, 9, "COL", A)]
    [row] = recall_status(_as_read(rows), {}, NOW)
    assert (row.state, row.waiting_on) == (ACKNOWLEDGED, ())
    rows = [_receipt("SNM:A", "RECEIVED", 1, 30, "COL/x"), _recall("SNM:A", "COL", 2, 10),
            _receipt("SNM:A", "RECALLED", 2, 9, "COL", A)]
    [row] = recall_status(_as_read(rows), {}, NOW)
    assert (row.state, row.waiting_on) == (OUTSTANDING, ("chain COL/x",))


def test_with_no_receipt_of_a_view_any_acknowledgement_answers() -> None:
    """No receipt shows who holds the alert (receipts lost, or the view's receipt not read): one RECALLED of the
    notice's version acknowledges it, as it always did."""
    [row] = recall_status([_recall("SNM:A", "COL", 2, 10), _receipt("SNM:A", "RECALLED", 2, 9, "COL/b", B)], {}, NOW)
    assert (row.state, row.waiting_on) == (ACKNOWLEDGED, ())


def test_receipts_of_alerts_never_recalled_are_not_kept() -> None:
    """``audit recalls`` reads the whole audit: the receipts of views held are kept only for alerts a recall named
    (the decisions come first), so its memory follows the recalls, not every delivery."""
    book = RecallBook()
    book.add(_recall("SNM:A", "COL", 2, 10))
    for n in range(1000):
        book.add(_receipt(f"SNM:{n}", "RECEIVED", 1, 30, "COL", A))
    book.add(_receipt("SNM:A", "RECEIVED", 1, 30, "COL", A))
    assert list(book.held) == [("SNM:A", "COL")] and book.stores == {"COL": {"chain COL": A}}
    [row] = book.status({}, NOW)
    assert (row.state, row.waiting_on) == (OUTSTANDING, (A,))


def test_a_version_pulled_back_for_breaking_a_rule_is_reported_so_not_as_its_action() -> None:
    """A CONSENT or UPDATE version that broke a rule pulls the alert back (rule alert.invalid) without doing what
    its action says: the recall's reason is alert.invalid, not CONSENT."""
    rows = [_recall("SNM:A", "COL", 2, 10, action="CONSENT", rules=["lifecycle.recall", "alert.invalid"]),
            _recall("SNM:B", "COL", 2, 10, action="CONSENT", rules=["lifecycle.recall"])]
    assert {r.alert_id: r.reason for r in recall_status(rows, {}, NOW)} == {"SNM:A": "alert.invalid",
                                                                           "SNM:B": "CONSENT"}


def _ms(hours_ago: float) -> int:
    return int((NOW - timedelta(hours=hours_ago)).timestamp() * 1000)


def test_an_acknowledgement_counts_from_when_kafka_appended_it_not_the_time_the_partner_wrote() -> None:
    """A RECALLED receipt Kafka appended ten days after its 24 h notice but dated an hour after it is acknowledged
    late, when Kafka appended it; one dated after Kafka appended it (its partner's clock ahead) counts at its own
    time; an append time that is no time (no offset) leaves the receipt's own."""
    rows = [_recall("SNM:A", "FEAN", 2, 240, ack_hours=24), _ack("SNM:A", "FEAN", 2, 239) | {"appended_at": _at(0)},
            _recall("SNM:B", "FEAN", 2, 240, ack_hours=24), _ack("SNM:B", "FEAN", 2, 200) | {"appended_at": _at(235)},
            _recall("SNM:C", "FEAN", 2, 240, ack_hours=24),
            _ack("SNM:C", "FEAN", 2, 239) | {"appended_at": "2026-12-01T12:00:00"}]
    out = {r.alert_id: r for r in recall_status(rows, {}, NOW)}
    assert (out["SNM:A"].state, out["SNM:A"].acknowledged_at) == (LATE, NOW)
    assert out["SNM:A"].late_by() == timedelta(hours=240 - 24)
    assert (out["SNM:B"].state, out["SNM:B"].acknowledged_at) == (LATE, NOW - timedelta(hours=200))
    assert (out["SNM:C"].state, out["SNM:C"].acknowledged_at) == (ACKNOWLEDGED, NOW - timedelta(hours=239))


def _hmac(payload: bytes) -> bytes:
    return hmac.new(b"k" * 32, payload, hashlib.sha512).digest()  # 64 bytes, as an Ed25519 signature


def test_read_log_gives_a_receipt_kafkas_append_time_of_it_and_its_checkpoint(monkeypatch: pytest.MonkeyPatch,
                                                                            ) -> None:
    """Through ``read_log``: a back-dated RECALLED receipt's row carries ``appended_at``, the later of when Kafka
    appended it and the checkpoint that signs it, and ``audit recalls``' book reports it late; from a topic that
    keeps its producers' times (no append time) a row carries none, not even one the partner wrote itself."""
    writer = ChainWriter("receipts", 0, checkpoint_every=1 << 62, chain="FEAN")
    values = [writer.append("RECEIPT", {"partner": "FEAN", "alert_id": "SNM:A", "version": 2, "status": "RECALLED",
                                        "feed": "t.feed.FEAN:0:7", "at": _at(239), "appended_at": _at(239)}),
              writer.checkpoint("FEAN-rcpt-2026a", _hmac, _at(239))]
    appended: list[int | None] = [_ms(3), _ms(2)]  # the receipt, then its checkpoint: days after the notice
    read_audit_from(monkeypatch, lambda topic: [0], lambda tp: zip(values, appended, strict=True))

    def check(signer: str, payload: bytes, sig: bytes) -> bool:
        return hmac.compare_digest(_hmac(payload), sig)

    def rows() -> list[dict[str, Any]]:
        return asyncio.run(_listed(auditor.read_log(None, {"receipts": "receipts"}, LogFilter(),  # type: ignore[arg-type]
                                                    check, None, {"receipts": "FEAN"})))

    [row] = rows()
    assert row["at"] == _at(239) and row["appended_at"] == _at(2)
    book = RecallBook()
    book.add(_recall("SNM:A", "FEAN", 2, 240, ack_hours=24))
    book.add(row)
    [recall] = book.status({}, NOW)
    assert (recall.state, recall.acknowledged_at) == (LATE, NOW - timedelta(hours=2))

    appended[:] = [None, None]
    [row] = rows()
    assert "appended_at" not in row and row["at"] == _at(239)


def test_read_log_windows_a_receipt_by_when_it_acknowledges(monkeypatch: pytest.MonkeyPatch) -> None:
    """`audit log --since/--until` places a back-dated receipt where it is listed: at Kafka's time, not the time its
    partner wrote. Before, it was picked by its stated time, so it left the window it arrived in and showed, outside
    its own, in the window it claimed."""
    writer = ChainWriter("receipts", 0, checkpoint_every=1 << 62, chain="FEAN")
    values = [writer.append("RECEIPT", {"partner": "FEAN", "alert_id": "SNM:A", "version": 2, "status": "RECALLED",
                                        "feed": "t.feed.FEAN:0:7", "at": _at(239)}),
              writer.checkpoint("FEAN-rcpt-2026a", _hmac, _at(239))]
    read_audit_from(monkeypatch, lambda topic: [0], lambda tp: zip(values, [_ms(3), _ms(2)], strict=True))

    def check(signer: str, payload: bytes, sig: bytes) -> bool:
        return hmac.compare_digest(_hmac(payload), sig)

    def rows(since: int, until: int) -> list[dict[str, Any]]:
        flt = LogFilter(since=NOW - timedelta(hours=since), until=NOW - timedelta(hours=until))
        return asyncio.run(_listed(auditor.read_log(None, {"receipts": "receipts"}, flt,  # type: ignore[arg-type]
                                                    check, None, {"receipts": "FEAN"})))

    assert [r["alert_id"] for r in rows(3, 1)] == ["SNM:A"]  # when Kafka appended it and its checkpoint
    assert rows(240, 238) == []  # the time it states


async def _listed(rows: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row async for row in rows]
