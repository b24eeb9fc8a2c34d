"""A receipts partition emptied whole is judged by the receipts topic's own retention.ms as Kafka holds it, never
by the auditor's PUENTE_AUDIT_RETENTION_DAYS (a receipt states no keep_days, and the topic may keep them for ever):
kept for ever, an emptied partition was deleted (a finding); retention known, judged by it; not read, not
checked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import broker.auditor as auditor
import tests.unit.broker.test_audit_emptied as _shared
from broker.audit.verify import PartitionReport, Retention, emptied_unchecked
from puente.errors import KafkaAccessError
from tests.unit.broker.test_audit_emptied import CONN
from tests.unit.broker.test_audit_emptied_appended import _emptied
from tests.unit.broker.test_audit_receipts_expired import DECISIONS, RECEIPTS, ROLES
from tests.unit.broker.test_audit_topics_wiped import ROLES as WIPED_ROLES
from tests.unit.broker.test_audit_topics_wiped import VERIFY

cluster = _shared.cluster  # the fixture, shared

DAY_MS = 86_400_000


def test_a_topic_kept_for_ever_makes_an_emptied_partition_a_deletion(tmp_path: Path) -> None:
    # The auditor keeps 30 days; the receipts topic keeps for ever: emptied ~55 days after the last receipt.
    unchecked, found = _emptied(tmp_path, "2026-05-01T00:00:00Z", 30, {RECEIPTS: -1})
    assert not [u for u in unchecked if u[0] == RECEIPTS]
    assert found and "deleted, not expired" in found[0] and "keeps for ever" in found[0]


def test_an_expiry_under_the_topics_retention_is_no_deletion_when_the_setting_rose(tmp_path: Path) -> None:
    # The topic kept 30 days and the receipts expired; the auditor's setting now says 365.
    unchecked, found = _emptied(tmp_path, "2026-05-01T00:00:00Z", 365, {RECEIPTS: 30 * DAY_MS})
    assert not [u for u in unchecked if u[0] == RECEIPTS] and found == []


def test_a_deletion_within_the_topics_retention_is_found_whatever_the_setting(tmp_path: Path) -> None:
    unchecked, found = _emptied(tmp_path, "2026-05-01T00:00:00Z", 30, {RECEIPTS: 365 * DAY_MS})
    assert not [u for u in unchecked if u[0] == RECEIPTS]
    assert found and "(365 days" in found[0]


def test_a_topics_retention_not_read_leaves_the_partition_not_checked(tmp_path: Path) -> None:
    unchecked, found = _emptied(tmp_path, "2026-05-01T00:00:00Z", 30, {})
    assert [u for u in unchecked if u[0] == RECEIPTS] and found == []


def test_the_index_reads_each_receipts_topics_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def settings(admin: Any, topic: str) -> dict[str, str | None]:
        asked.append(topic)
        if topic == "p.receipts.GONE":
            raise KafkaAccessError("may not describe")
        return {"retention.ms": "-1"}

    monkeypatch.setattr(auditor, "topic_settings", settings)
    monkeypatch.setattr(auditor, "Admin", lambda conn: conn)
    kept = asyncio.run(auditor.receipts_kept(object(), {**ROLES, "p.receipts.GONE": "receipts"}))  # type: ignore[arg-type]
    assert kept == {RECEIPTS: -1} and DECISIONS not in asked


def test_the_index_never_tells_to_run_the_index_for_receipts_it_could_not_judge(tmp_path: Path) -> None:
    said = emptied_unchecked(RECEIPTS, 0, 10, "receipts", index=True)
    assert "`puente audit index`" not in said and "never read those receipts" in said
    # What the walks with no earlier state say names the partner's next receipt, which starts it again.
    assert "partner's next receipt" in emptied_unchecked(RECEIPTS, 0, 10, "receipts")


@pytest.mark.parametrize("kept, finding", [("-1", True), (str(30 * DAY_MS), False)])
def test_walks_find_an_emptied_receipts_partition_of_a_topic_kept_for_ever(
        cluster: Any, monkeypatch: pytest.MonkeyPatch, kept: str, finding: bool) -> None:
    held, starts = cluster
    held[RECEIPTS], starts[RECEIPTS] = [], 12  # a partner's receipts: every one gone

    async def settings(admin: Any, topic: str) -> dict[str, str | None]:
        return {"retention.ms": kept}

    monkeypatch.setattr(auditor, "topic_settings", settings)
    monkeypatch.setattr(auditor, "Admin", lambda conn: conn)
    roles = {**WIPED_ROLES, RECEIPTS: "receipts"}
    reports = [r for r in asyncio.run(auditor.verify_topics(CONN, roles, VERIFY, retention=Retention.now(90)))
               if r.topic == RECEIPTS]
    ends: list[PartitionReport] = []

    async def log() -> None:
        async for _ in auditor.read_log(CONN, roles, auditor.LogFilter(), VERIFY, [], {}, retention=Retention.now(90),
                                        deleted=[], end_reports=ends):
            pass
    asyncio.run(log())
    assert len(reports) == 1 and len([r for r in ends if r.topic == RECEIPTS]) == 1
    for report in reports + [r for r in ends if r.topic == RECEIPTS]:
        if finding:  # kept for ever: only a deletion empties it, exit 1 rather than not checked
            assert report.unchecked is None and "keeps its records for ever" in report.findings[0].problem
        else:  # a finite retention: expiry or a deletion, which a walk with no earlier state cannot tell
            assert report.unchecked is not None and not report.findings
