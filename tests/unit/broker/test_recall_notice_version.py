"""A recall is audited at the version its notice carried, and `audit recalls` follows that version: an
officer's recall reusing an old version is not hidden behind an earlier, acknowledged pull-back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from broker.audit.chain import flatten, shrink
from broker.audit.recalls import ACKNOWLEDGED, OUTSTANDING, notice_version, recall_status
from broker.audit.receipts import sent_version
from broker.pipeline import Outcome
from tests.unit.broker.test_lifecycle import CODEC, NOW, Run, _first, _headers, _next


def _rows(out: Outcome, minutes: int) -> list[dict[str, Any]]:
    at = (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    block = {"kind": "BLOCK", "seq": 1, "entries": [{**out.entry, "at": at}]}
    return [r for r in flatten(block) if r.get("decision") == "RECALL"]


def _ack(alert_id: str, version: int, minutes: int) -> dict[str, Any]:
    at = (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return {"kind": "RECEIPT", "status": "RECALLED", "alert_id": alert_id, "partner": "COL", "version": version,
            "at": at}


def _reused_recall() -> tuple[str, list[dict[str, Any]], int]:
    """COL holds v2; a RECLASSIFY pulls it back (notice v3); a downgrade delivers v4; an officer's recall
    built on v1 (version 2) goes out at v5. COL's reference for the alert (what its receipts name), the audit rows
    of both notices, and the version COL was sent."""
    run = Run()
    first = _first()
    run.send(first)
    update = _next(first, "UPDATE")
    run.send(update)
    raised = _next(update, "RECLASSIFY", classification="SECRETO")
    pulled = run.send(raised)
    run.send(_next(raised, "RECLASSIFY", classification="RESTRINGIDO"))
    recall = _next(first, "RECALL", reason="ERROR")
    assert recall["version"] == 2
    out = run.send(recall)
    assert _headers(out) == {"COL": "RECALL"}
    sent = CODEC.decode(run.sealers["COL"].sealed[-1])["version"]
    rows = _rows(pulled, 0) + _rows(out, 60 * 48)
    assert {r["alert_id"] for r in rows} == {first["alert_id"]} and len({r["ref"] for r in rows}) == 1
    return rows[0]["ref"], rows, sent


def test_a_recall_decision_names_the_version_its_notice_carried() -> None:
    """The RECALL decision of an officer's recall reusing version 2 records the notice's version (5)."""
    _, rows, sent = _reused_recall()
    assert sent == 5
    assert [(r["version"], r["notice_version"]) for r in rows] == [(3, 3), (2, 5)]


def test_a_recall_decision_records_the_hours_its_partner_has_to_acknowledge_it() -> None:
    """Each notice's decision records the partner's ``recall_ack_hours`` under the policy it was decided with (the
    policy port's), so a later policy cannot move its deadline."""
    _, rows, _ = _reused_recall()
    assert [(r["partner"], r["ack_hours"]) for r in rows] == [("COL", 72), ("COL", 72)]


def test_an_acknowledged_pull_back_does_not_hide_a_later_recall_at_a_lower_record_version() -> None:
    """COL acknowledged the v3 pull-back but never the recall sent at v5: the recall is outstanding, at v5, beside
    the pull-back, acknowledged."""
    ref, rows, _ = _reused_recall()
    alert_id = rows[0]["alert_id"]
    recall, pull_back = recall_status([*rows, _ack(ref, 3, 5)], {}, NOW + timedelta(hours=49))
    assert (recall.version, recall.state, recall.reason) == (5, OUTSTANDING, "ERROR")
    assert recall.alert_id == pull_back.alert_id == alert_id  # the auditors read the alert's own id
    assert (pull_back.version, pull_back.state) == (3, ACKNOWLEDGED)
    out = recall_status([*rows, _ack(ref, 3, 5), _ack(ref, 5, 60 * 48 + 3)], {}, NOW + timedelta(hours=49))
    assert [(r.version, r.state) for r in out] == [(5, ACKNOWLEDGED), (3, ACKNOWLEDGED)]
    # COL was never given the alert's own id: a receipt naming it acknowledges nothing.
    out = recall_status([*rows, _ack(alert_id, 3, 5), _ack(alert_id, 5, 60 * 48 + 3)], {}, NOW + timedelta(hours=49))
    assert sorted((r.version, r.state) for r in out) == [(3, OUTSTANDING), (5, OUTSTANDING)]


def test_a_decision_written_before_notice_version_still_reads_at_its_notice_version() -> None:
    """An older RECALL decision without ``notice_version`` gives the version by the pipeline's rule."""
    old = {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:A", "partner": "COL", "version": 2,
           "action": "RECALL", "previous_version": 4, "at": "2026-11-22T11:00:00Z"}
    assert notice_version(old) == 5
    assert notice_version({**old, "action": "RECLASSIFY"}) == 2
    assert notice_version({**old, "notice_version": 7}) == 7
    assert notice_version({**old, "notice_version": "7", "version": None}) == 1
    [row] = recall_status([old, _ack("SNM:A", 3, 0)], {}, NOW)
    assert (row.version, row.state) == (5, OUTSTANDING)


def test_a_shrunk_entry_keeps_the_notice_version() -> None:
    """An entry cut down to fit a block keeps each recall's notice version and deadline, as it keeps ``recalls``."""
    _, rows, _ = _reused_recall()
    decision = {k: v for k, v in rows[-1].items()
                if k in ("partner", "decision", "recalls", "notice_version", "ack_hours")}
    entry = {"kind": "ALERT", "alert_id": "SNM:A", "ingress": "t:0:1", "at": "x", "version": 2,
             "decisions": [{**decision, "reasons": ["r" * 400] * 100}]}
    [small] = shrink(entry, 2_000)["decisions"]
    assert small["notice_version"] == 5 and small["recalls"] == 4 and small["ack_hours"] == 72


def test_the_version_a_receipt_must_name_is_the_notices_own() -> None:
    """What the index and verify match a partner's RECALLED receipt against (``sent_version``): the notice's
    recorded version, even where the pipeline's old rule would give another (a repeated recall at the last
    version goes out at that version, not above it); the rule only for a decision written without it."""
    row = {"kind": "DECISION", "decision": "RECALL", "action": "RECALL", "version": 9, "previous_version": 9,
           "notice_version": 9}
    assert sent_version(row) == 9 and notice_version(row) == 9
    assert sent_version({**row, "notice_version": None}) == 10  # the rule, as before the field
    assert sent_version({**row, "notice_version": True}) == 10  # a bool is no version
