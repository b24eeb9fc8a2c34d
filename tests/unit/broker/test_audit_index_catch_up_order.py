"""However the same records are split into catch-ups, the audit index ends as a rebuild (and `audit verify`) has it.

A receipt whose delivery is indexed only at a later catch-up is held unmatched and matched again then; by
then receipts vouched for after it may have bound the place (or delivery) it names. A rebuild matches every
receipt at its turn (the checkpoint that vouched for it, then its offset), so the index must too: the
receipts after it are matched again, and which receipt is the finding never depends on when Kafka was read.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Scope
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import COL_RCPT, DECISIONS, T0, _alert, _decision, _ingest, _signer
from tests.unit.broker.test_audit_index_pending import _verify_says

NATIONAL = Scope()
BROKER_KEY = "broker-sign-2026a"


def _decisions() -> list[bytes]:
    """One block per alert delivered to COL, in time order: B, A, C, D."""
    writer = ChainWriter(DECISIONS, 0)
    return [writer.block([_alert(alert, minute, [_decision("COL", "DELIVER", ["c"], feed="t.feed.COL")])],
                         BROKER_KEY, _signer(BROKER_KEY), iso_utc(T0))
            for minute, alert in enumerate(("SNM:B", "SNM:A", "SNM:C", "SNM:D"))]


def _receipts() -> list[bytes]:
    """COL's two chains interleaved, so the turn (checkpoint, then offset) is not the offset order: COL/b's
    checkpoint (offset 7) comes first. Places and deliveries named twice, a REJECTED receipt naming a place."""
    main = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    side = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL/b")
    at = iso_utc(T0 + timedelta(minutes=30))
    out = []
    for writer, alert, place, status in (
            (main, "SNM:A", 5, "RECEIVED"), (side, "SNM:D", 9, "RECEIVED"), (main, "SNM:B", 5, "RECEIVED"),
            (main, "SNM:B", 6, "RECEIVED"), (side, "SNM:C", 7, "REJECTED: KeyError"), (main, "SNM:C", 7, "RECEIVED"),
            (side, "SNM:A", 8, "DUPLICATE"), (side, None, 0, ""), (main, "SNM:A", 9, "RECEIVED"), (main, None, 0, "")):
        if alert is None:
            out.append(writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0)))
            continue
        body: dict[str, Any] = {"partner": "COL", "alert_id": alert, "status": status, "feed": f"t.feed.COL:0:{place}",
                                "at": at}
        if not status.startswith("REJECTED"):
            body["version"] = 1
        out.append(writer.append("RECEIPT", body))
    return out


TOPICS = {DECISIONS: _decisions(), COL_RCPT: _receipts()}


def _state(index: AuditIndex) -> dict[str, Any]:
    """What the console and `audit log` read of receipts: rows, findings, unreceipted deliveries, first receipts."""
    return {
        "receipts": index._all("SELECT \"offset\", chain, alert_id, version, status, decision_id FROM receipts "
                               "ORDER BY \"offset\""),
        "findings": sorted((f["offset"], f["problem"]) for f in index.integrity(NATIONAL)["findings"]),
        "unreceipted": [d["alert_id"] for d in index.unreceipted(NATIONAL, timedelta(0), T0 + timedelta(days=1))],
        "first_receipt": index._all("SELECT id, receipt_at_ms FROM decisions ORDER BY id"),
        "places": index._all("SELECT feed, feed_partition, feed_offset, alert_id, version, decision_id FROM "
                             "receipt_places ORDER BY feed_offset"),
    }


def _indexed(folder: Path, cuts: list[tuple[int, int]]) -> dict[str, Any]:
    """The index after one catch-up per cut (how many decisions and receipts records it had read), then a last."""
    index = AuditIndex(folder / "index.sqlite")
    for decisions, receipts in cuts:
        _ingest(index, TOPICS, {DECISIONS: decisions, COL_RCPT: receipts})
    _ingest(index, TOPICS)
    state = _state(index)
    index.close()
    return state


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _indexed(tmp_path_factory.mktemp("rebuild"), [])


def test_the_rebuild_matches_each_receipt_at_its_turn_as_audit_verify_does(
        rebuilt: dict[str, Any], audit_topics: dict[str, list[bytes]]) -> None:
    """A rebuild's findings are `audit verify`'s, COL/b's receipts (vouched first) take A's delivery and D's place."""
    assert rebuilt["findings"] == _verify_says(audit_topics, dict(TOPICS))
    assert [(r[0], r[2]) for r in rebuilt["receipts"]] == [(1, "SNM:D"), (2, "SNM:B"), (4, "SNM:C"), (5, "SNM:C"),
                                                          (6, "SNM:A")]
    assert {offset for offset, _ in rebuilt["findings"]} == {0, 3, 8}
    assert rebuilt["unreceipted"] == []


@pytest.mark.parametrize("decisions", range(len(TOPICS[DECISIONS]) + 1))
def test_one_catch_up_then_another_gives_the_rebuilds_index(
        tmp_path: Path, rebuilt: dict[str, Any], decisions: int) -> None:
    """Every split into two catch-ups (any number of decision blocks, any number of receipt records read first)
    leaves the receipt rows, findings, unreceipted deliveries, first receipts and bound places of a rebuild."""
    for receipts in range(len(TOPICS[COL_RCPT]) + 1):
        assert _indexed(tmp_path / f"r{receipts}", [(decisions, receipts)]) == rebuilt, (decisions, receipts)


@pytest.mark.parametrize("cuts", [
    [(0, 8), (2, 10)], [(1, 10), (2, 10), (3, 10)], [(0, 3), (1, 8), (2, 9)], [(2, 5), (2, 8), (3, 10)],
    [(0, 10), (1, 10)], [(1, 8), (1, 10), (3, 10)], [(0, 1), (1, 3), (2, 6), (3, 8)]])
def test_more_catch_ups_give_the_rebuilds_index(
        tmp_path: Path, rebuilt: dict[str, Any], cuts: list[tuple[int, int]]) -> None:
    """Three to five catch-ups, decisions arriving one block at a time while receipts are held: still a rebuild's."""
    assert _indexed(tmp_path, cuts) == rebuilt
