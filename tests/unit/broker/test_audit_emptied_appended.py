"""A partition emptied past offset 0 judged by Kafka's append time (LogAppendTime, what retention deletes by): a
partner's receipts, which state no keep_days, judged against today's retention rather than never; a writer whose
clock runs slow cannot make a deletion look like expiry; and `audit verify`'s not-checked line names the remedy
that really exists for what the partition holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

import broker.auditor as auditor
from broker.audit.verify import EMPTIED_REMEDY, Holds, Retention
from broker.audit_index import AuditIndex
from broker.audit_index._index import Scope
from tests.unit.broker.conftest import read_audit_from
from tests.unit.broker.test_audit_chain import _verify
from tests.unit.broker.test_audit_emptied import CONN, _queries
from tests.unit.broker.test_audit_receipts_expired import (
    DECISIONS,
    KEEP,
    OWNERS,
    RECEIPTS,
    ROLES,
    _appended,
    _decisions,
    _ms,
    _receipts,
)
from tests.unit.broker.test_audit_topics_wiped import DENIALS, ENDS, QUERIES, VERIFY
from tests.unit.broker.test_audit_topics_wiped import ROLES as WIPED_ROLES
from tests.unit.broker.test_audit_topics_wiped import _decisions as _wiped_decisions


def _catch_up(index: AuditIndex, starts: dict[str, int], values: dict[str, list[bytes]], ends: dict[str, int],
              retention: Retention) -> None:
    for topic, holds in ROLES.items():
        ingest = index.partition(topic, 0, holds, _verify, owner=OWNERS.get(topic), log_start=starts.get(topic, 0),
                                 retention=retention, log_end=ends[topic])
        for offset, value in enumerate(values[topic]):
            if offset >= max(ingest.start, starts.get(topic, 0)):
                ingest.add(offset, value, _appended(topic, value))
        ingest.commit()


def _emptied(tmp_path: Path, later: str, days: int = KEEP,
             kept: dict[str, int] | None = None) -> tuple[list[tuple[str, int, int]], list[str]]:
    """Read every record, then catch up at ``later`` with both partitions emptied: what is not checked, and the
    findings on the receipts. ``days``: the auditor's setting then; ``kept``: the topics' retention.ms as read
    from Kafka (default: the receipts topic's is ``KEEP`` days)."""
    values = {DECISIONS: _decisions(), RECEIPTS: _receipts()}
    ends = {t: len(v) for t, v in values.items()}
    topics = {RECEIPTS: KEEP * 86_400_000} if kept is None else kept
    with AuditIndex(tmp_path / "i.sqlite") as index:
        _catch_up(index, {}, values, ends, Retention(KEEP, _ms("2026-03-07T00:00:00Z"), topics))
        _catch_up(index, dict(ends), {DECISIONS: [], RECEIPTS: []}, ends, Retention(days, _ms(later), topics))
        unchecked = index.emptied_unchecked({(t, 0): e for t, e in ends.items()})
        found = [f["problem"] for f in index.integrity(Scope())["findings"] if f["topic"] == RECEIPTS]
    return unchecked, found


def test_receipts_emptied_by_retention_are_judged_expired(tmp_path: Path) -> None:
    unchecked, found = _emptied(tmp_path, "2027-06-01T00:00:00Z")  # appended 15 months before: long expired
    assert unchecked == [] and found == []


def test_receipts_emptied_within_retention_are_a_deletion(tmp_path: Path) -> None:
    unchecked, found = _emptied(tmp_path, "2026-03-10T00:00:00Z")  # appended days before: not yet expirable
    assert not [u for u in unchecked if u[0] == RECEIPTS]
    assert found and "holds no record" in found[0] and "deleted, not expired" in found[0]


@pytest.fixture
def appended_cluster(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, list[tuple[bytes, int | None]]],
                                                                dict[str, int]]:
    """As ``test_audit_emptied.cluster``, but each record held with Kafka's append time."""
    held: dict[str, list[tuple[bytes, int | None]]] = {DECISIONS_W: [(v, None) for v in _wiped_decisions()],
                                                       DENIALS: [], QUERIES: []}
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

    read_audit_from(monkeypatch, lambda t: [0] if t in held else [], lambda tp: iter(held[tp.topic]), Consumer())
    monkeypatch.setattr(auditor, "settle", settle)
    monkeypatch.setattr(auditor, "LOST_CONFIRM_S", 0.0)
    return held, starts


DECISIONS_W = next(t for t, h in WIPED_ROLES.items() if h == "decisions")


def _index(path: Path) -> list[str]:
    with AuditIndex(path) as index:
        asyncio.run(auditor.index_topics(CONN, WIPED_ROLES, VERIFY, index, {}, ends=ENDS,
                                         retention=Retention.now(90)))
        return [f["problem"] for f in index.integrity(Scope())["findings"] if f["topic"] == QUERIES]


def test_a_slow_writer_clock_does_not_make_a_deletion_look_like_expiry(appended_cluster: Any, tmp_path: Path) -> None:
    held, starts = appended_cluster
    now = int(datetime.now(UTC).timestamp() * 1000)
    # The console's clock ran 200 days slow: each query states a time past its 90 days' retention, while Kafka
    # appended it today.
    held[QUERIES] = [(v, now) for v in _queries(5, datetime.now(UTC) - timedelta(days=200))]
    path = tmp_path / "i.sqlite"
    assert _index(path) == []
    held[QUERIES], starts[QUERIES] = [], 5  # DeleteRecords: every query gone
    found = _index(path)
    assert found and "deleted, not expired" in found[0]


def test_verify_names_the_remedy_for_what_an_emptied_partition_holds(appended_cluster: Any) -> None:
    _, starts = appended_cluster
    starts[QUERIES], starts[DENIALS] = 40, 12
    reports = asyncio.run(auditor.verify_topics(CONN, WIPED_ROLES, VERIFY, retention=Retention.now(90)))
    why = {r.topic: r.unchecked or "" for r in reports if r.unchecked is not None}
    assert "`puente audit serve --new-chain`" in why[QUERIES]
    assert "`puente audit collect-denials --new-chain`" in why[DENIALS]
    assert set(EMPTIED_REMEDY) == set(get_args(Holds))  # every kind of partition names its own
