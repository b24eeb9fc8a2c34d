"""`audit log` and `audit recalls` read the chains through ``read_log``: given the groups' offsets it checks every
chain's end as `audit verify` does, so a recall notice lost from the decisions chain's end is a problem, never a
recall that vanished while the read said nothing was missing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.audit.recalls import RecallBook
from broker.audit.verify import FeedEnds, GroupEnds, PartitionReport
from broker.auditor import LogFilter
from broker.kafka import KafkaConnection
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import DECISIONS, T0, VERIFY, _alert, _decision, _signer

S = "broker-sign-2026a"
INGRESS = ("t.ingress.SENAFRONT", 0)


def _chain() -> list[bytes]:
    """A delivery to COL (ingress offset 0), then its RECALL notice (ingress offset 1)."""
    w = ChainWriter(DECISIONS, 0)
    b0 = w.block([_alert("SNM:A", 0, [_decision("COL", "DELIVER", ["c"], feed="t.feed.COL", ref="R1")])], S,
                 _signer(S), iso_utc(T0))
    b1 = w.block([_alert("SNM:A", 1, [_decision("COL", "RECALL", ["lifecycle.recall"], feed="t.feed.COL", ref="R1",
                                                notice_version=2, recalls=1, ack_hours=24)], version=2,
                         action="RECALL")], S, _signer(S), iso_utc(T0))
    return [b0, b1]


def _recalls(committed: dict[tuple[str, int], int] | None) -> tuple[list[Any], list[PartitionReport]]:
    ends = None if committed is None else GroupEnds(committed, FeedEnds({}, frozenset(), "t.feed.", {}))
    reports: list[PartitionReport] = []

    async def go() -> RecallBook:
        book = RecallBook()
        async for doc in auditor.read_log(KafkaConnection(bootstrap="k:9093"), {DECISIONS: "decisions"},
                                          LogFilter(kinds=frozenset({"DECISION", "RECEIPT"})), VERIFY, [], {},
                                          deleted=[], receipts_cut=book.receipts_cut, ends=ends,
                                          end_reports=None if ends is None else reports):
            book.add(doc)
        return book
    book = asyncio.run(go())
    return [(r.alert_id, r.state) for r in book.status({}, T0 + timedelta(days=5))], reports


@pytest.fixture(autouse=True)
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    async def done(conn: object, tp: object, *, timeout_s: float) -> None:
        return None
    monkeypatch.setattr(auditor, "wait_settled", done)


def test_a_recall_notice_lost_from_the_chains_end_is_a_short_end(audit_topics: dict[str, list[bytes]]) -> None:
    audit_topics[DECISIONS] = _chain()
    rows, reports = _recalls({INGRESS: 2})
    assert rows == [("SNM:A", "overdue")]
    assert [len(r.findings) for r in reports] == [0] and reports[0].end is not None and reports[0].end.checked
    audit_topics[DECISIONS] = _chain()[:1]  # the last block lost
    rows, reports = _recalls({INGRESS: 2})
    assert rows == []
    [report] = reports
    assert report.end is not None and report.end.short
    [finding] = report.findings
    assert "offsets 1 to 1 are missing from the chain's end" in finding.problem


def test_an_end_with_no_committed_offset_is_not_checked(audit_topics: dict[str, list[bytes]]) -> None:
    audit_topics[DECISIONS] = _chain()[:1]
    _, reports = _recalls({})
    [report] = reports
    assert report.end is not None and not report.end.checked and not report.findings


def test_a_chain_emptied_whole_names_its_ingress_partition(audit_topics: dict[str, list[bytes]]) -> None:
    audit_topics[DECISIONS] = []
    _, reports = _recalls({INGRESS: 2})
    assert [(r.topic, len(r.findings)) for r in reports] == [(INGRESS[0], 1)]
