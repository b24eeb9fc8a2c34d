"""What `audit log` and `audit recalls` count as left out is what their filter could have listed: a partition whose
rows the filter cannot return (another partner's receipts, a kind not asked for) leaves nothing out of the list."""

from __future__ import annotations

import asyncio
from typing import Any

from broker.audit import ChainWriter
from broker.auditor import LogFilter, read_log
from tests.unit.broker.test_auditor_spill import _block, _verify

ROLES: dict[str, Any] = {"p.decisions": "decisions", "p.receipts.COL": "receipts", "p.receipts.USA": "receipts"}
OWNERS = {"p.receipts.COL": "COL", "p.receipts.USA": "USA"}


def _left_out(flt: LogFilter) -> int:
    left: list[int] = []

    async def rows() -> list[Any]:
        return [row async for row in read_log(None, ROLES, flt, _verify, left, OWNERS)]  # type: ignore[arg-type]

    asyncio.run(rows())
    return sum(left)


def test_a_partners_unsound_receipt_leaves_nothing_out_of_another_partners_decisions(
        audit_topics: dict[str, list[bytes]]) -> None:
    """COL writes one receipt no checkpoint vouches for to its own receipts topic: a listing of USA's decisions, or
    of COL's decisions alone, or of USA's rows (recalls' filter), is whole; any listing that could show COL's
    receipts is not, nor is one of an alert's receipts, whose references the decisions teach."""
    audit_topics["p.decisions"] = [_block(["SNM:1"])]
    audit_topics["p.receipts.COL"] = [ChainWriter("p.receipts.COL", 0, chain="COL").append("RECEIPT", {
        "partner": "COL", "alert_id": "SNM:1", "version": 1, "status": "RECEIVED", "feed": "p.feed.COL:0:0",
        "at": "2026-11-01T10:00:00Z"})]
    audit_topics["p.receipts.USA"] = []
    decisions = frozenset({"DECISION"})
    assert _left_out(LogFilter(partner="USA", kinds=decisions)) == 0
    assert _left_out(LogFilter(kinds=decisions)) == 0
    assert _left_out(LogFilter(partner="USA", kinds=frozenset({"DECISION", "RECEIPT"}))) == 0
    assert _left_out(LogFilter(partner="COL", kinds=frozenset({"RECEIPT"}))) == 1
    assert _left_out(LogFilter()) == 1
    assert LogFilter(alert="SNM:1", kinds=frozenset({"RECEIPT"})).lists_from("decisions")
    assert not LogFilter(kinds=frozenset({"RECEIPT"})).lists_from("decisions")
    assert not LogFilter(kinds=decisions).lists_from("denials")
