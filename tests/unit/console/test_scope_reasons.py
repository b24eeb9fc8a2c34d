"""Pages of a partner's auditor: rule ids, never reason texts; a failing refresh is shown; integrity bounded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from broker.audit_index import Scope
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.pages import REFRESH, RefreshStatus
from puente.console.server import refresher

from .conftest import FakeIndex, Sink, _sign_in


def test_a_partner_auditor_reads_rules_not_reasons(sam: TestClient) -> None:
    """Search and timeline say the reasons are for national auditors and list the rule ids instead."""
    for path in ("/search", "/alerts/A-BOTH"):
        page = sam.get(path).text
        assert "USA reason" not in page
        assert "reasons: shown to national auditors; rules: USA-r1" in page.replace("Reasons:", "reasons:")


def test_a_national_auditor_reads_the_reasons(ana: TestClient) -> None:
    assert "USA reason" in ana.get("/search").text and "USA reason" in ana.get("/alerts/A-BOTH").text


class _ManyFindings(FakeIndex):
    def integrity(self, scope: Scope) -> dict[str, Any]:
        found = super().integrity(scope)
        return {**found, "findings": found["findings"] * 600, "findings_total": 1200}


def test_the_integrity_page_lists_at_most_500_findings(accounts: ConsoleAccounts, sink: Sink) -> None:
    client = TestClient(create_app(ConsoleConfig(lambda: _ManyFindings(), accounts, sink)), follow_redirects=False)
    _sign_in(client, "ana")
    page = client.get("/integrity").text
    assert page.count('class="finding"') == 500 and "1,200 problems" not in page and "1200 problems" in page
    assert "and 700 more" in page


def test_a_failing_refresh_keeps_serving_and_is_shown(ana: TestClient) -> None:
    """Any exception from a catch-up is noted, the refresher keeps going, and every page shows since when."""
    status, notes, calls = RefreshStatus(), list[str](), [0]

    async def catch_up() -> None:
        calls[0] += 1
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    async def run() -> None:
        task = asyncio.create_task(refresher(catch_up, 0.001, notes.append, status))
        while calls[0] < 3:
            await asyncio.sleep(0.001)
        assert not task.done()
        task.cancel()

    asyncio.run(run())
    assert status.failed_since is not None and "OverflowError" in status.reason and len(notes) >= 2
    REFRESH.failed(datetime(2026, 11, 1, 12, tzinfo=UTC), "the audit index x failed while indexing")
    try:
        page = ana.get("/").text
        assert "could not be refreshed since 2026-11-01 12:00:00 UTC: the audit index x failed" in page
    finally:
        REFRESH.recovered()
    assert 'id="refresh-failed"' not in ana.get("/").text
