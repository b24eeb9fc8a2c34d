"""A partition emptied past offset 0 (every record deleted, its log start at its end) is never sound: `audit verify`,
which holds no earlier state, reports it not checked; the audit index, which read its newest record, judges it as
it judges a chain cut at its start (deleted within the retention: a finding), and where it cannot, not checked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.audit.verify import Retention
from broker.audit_index import AuditIndex, Scope
from broker.kafka import KafkaConnection
from broker.oversight import query_body
from tests.unit.broker.conftest import read_audit_from
from tests.unit.broker.test_audit_topics_wiped import DECISIONS, DENIALS, ENDS, QUERIES, ROLES, VERIFY, _decisions

CONN = KafkaConnection(bootstrap="k:9093")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, list[bytes]], dict[str, int]]:
    """Topic -> the records its one partition holds, and topic -> where its log starts (0 unless named)."""
    held: dict[str, list[bytes]] = {DECISIONS: _decisions(), DENIALS: [], QUERIES: []}
    starts: dict[str, int] = {}

    class Consumer:
        async def topics(self) -> set[str]:
            return set(held)

        async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return {tp: starts.get(tp.topic, 0) for tp in tps}

        async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return {tp: starts.get(tp.topic, 0) + len(held[tp.topic]) for tp in tps}

    async def settle(conn: Any, tps: Any, timeout_s: float) -> set[Any]:
        return set()

    def records(tp: Any) -> Any:
        return ((v, None) for v in held[tp.topic])

    read_audit_from(monkeypatch, lambda t: [0] if t in held else [], records, Consumer())
    monkeypatch.setattr(auditor, "settle", settle)
    monkeypatch.setattr(auditor, "LOST_CONFIRM_S", 0.0)
    return held, starts


def _queries(n: int, at: datetime) -> list[bytes]:
    w = ChainWriter(QUERIES, 0, chain="console", keep_days=90)
    return [w.append("QUERY", query_body("ana", "national", "search", {"partner": "USA"}, 3, at)) for _ in range(n)]


def test_verify_reports_a_partition_emptied_past_offset_0_not_checked(cluster: Any) -> None:
    _, starts = cluster
    starts[QUERIES] = 40  # DeleteRecords(before=40): all 40 queries gone
    reports = asyncio.run(auditor.verify_topics(CONN, ROLES, VERIFY, retention=Retention.now(90)))
    emptied = [r for r in reports if r.unchecked is not None]
    assert [(r.topic, r.partition) for r in emptied] == [(QUERIES, 0)]
    assert "log starts at offset 40" in (emptied[0].unchecked or "")
    starts[QUERIES] = 0  # never written: empty from offset 0, nothing deleted
    reports = asyncio.run(auditor.verify_topics(CONN, ROLES, VERIFY, retention=Retention.now(90)))
    assert all(r.unchecked is None for r in reports)


def _catch_up(path: Path) -> tuple[int, list[str], int, bool]:
    with AuditIndex(path) as index:
        run = asyncio.run(auditor.index_topics(CONN, ROLES, VERIFY, index, {}, ends=ENDS,
                                               retention=Retention.now(90)))
        texts = [f["problem"] for f in index.integrity(Scope())["findings"]]
        return run.problems, texts, len(index.queries(Scope())), run.ends.all_checked


def test_index_finds_a_query_log_deleted_whole_within_its_retention(cluster: Any, tmp_path: Path) -> None:
    held, starts = cluster
    held[QUERIES] = _queries(40, datetime.now(UTC))
    path = tmp_path / "i.sqlite"
    assert _catch_up(path) == (0, [], 40, True)
    held[QUERIES], starts[QUERIES] = [], 40
    problems, texts, rows, _ = _catch_up(path)
    assert problems == 1 and rows == 0
    assert "chain console holds no record" in texts[0] and "deleted, not expired" in texts[0]
    problems, texts, _, _ = _catch_up(path)  # kept on the next catch-up
    assert problems == 1


def test_index_takes_a_query_log_expired_whole(cluster: Any, tmp_path: Path) -> None:
    held, starts = cluster
    held[QUERIES] = _queries(5, datetime.now(UTC) - timedelta(days=200))
    path = tmp_path / "i.sqlite"
    _catch_up(path)
    held[QUERIES], starts[QUERIES] = [], 5
    assert _catch_up(path) == (0, [], 0, True)


def test_index_not_checked_where_it_read_nothing_of_an_emptied_partition(cluster: Any, tmp_path: Path) -> None:
    _, starts = cluster
    starts[QUERIES], starts[DENIALS] = 40, 12  # deleted before this index read them
    problems, _, _, all_checked = _catch_up(tmp_path / "i.sqlite")
    assert problems == 0 and not all_checked
