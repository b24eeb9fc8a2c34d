"""`read_log` reports a partition whose log starts past offset 0 and from which it read no record as not checked
(``emptied_check``, `audit verify`'s rule), with or without the groups' offsets: a query log deleted whole leaves no
row and nothing unsound, and would otherwise list as a log of no query."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

import broker.auditor as auditor
import tests.unit.broker.test_audit_emptied as _shared
from broker.audit.verify import GroupEnds, PartitionReport, Retention
from tests.unit.broker.test_audit_emptied import CONN, _queries
from tests.unit.broker.test_audit_topics_wiped import ENDS, QUERIES, ROLES, VERIFY

cluster = _shared.cluster  # the fixture, shared


def _log(ends: GroupEnds | None) -> tuple[int, list[PartitionReport]]:
    reports: list[PartitionReport] = []

    async def go() -> int:
        rows = auditor.read_log(CONN, ROLES, auditor.LogFilter(kinds=frozenset({"QUERY"})), VERIFY, [], {},
                                retention=Retention.now(90), deleted=[], ends=ends, end_reports=reports)
        return len([r async for r in rows])
    return asyncio.run(go()), reports


@pytest.mark.parametrize("ends", [ENDS, None])
def test_a_query_log_deleted_whole_is_not_checked(cluster: Any, ends: GroupEnds | None) -> None:
    held, starts = cluster
    held[QUERIES] = _queries(3, datetime.now(UTC))
    rows, reports = _log(ends)
    assert rows == 3 and not [r for r in reports if r.unchecked is not None]
    held[QUERIES], starts[QUERIES] = [], 3  # DeleteRecords: every query gone
    rows, reports = _log(ends)
    emptied = [r for r in reports if r.unchecked is not None]
    assert rows == 0 and [(r.topic, r.partition) for r in emptied] == [(QUERIES, 0)]
    assert "log starts at offset 3" in (emptied[0].unchecked or "")
