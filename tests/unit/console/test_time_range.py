"""A console time range: a date alone as ``until`` takes that whole day, and ``since`` after ``until`` is refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from broker.audit_index import AuditIndex
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from tests.unit.broker.test_audit_index import _ingest, _topics
from tests.unit.console.conftest import Sink, _sign_in, local_client


@pytest.fixture
def indexed(tmp_path: Path, accounts: ConsoleAccounts, sink: Sink) -> TestClient:
    """A national auditor's console over a real index whose decisions were all made on 2026-03-01 (UTC, midday)."""
    path = tmp_path / "index.sqlite"
    with AuditIndex(path) as index:
        _ingest(index, _topics())
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, sink)),
                          follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    return client


def _total(page: str) -> int:
    found = re.search(r'id="total">([0-9,]+)', page)
    assert found is not None, page[:300]
    return int(found.group(1).replace(",", ""))


def test_a_date_alone_as_until_takes_that_whole_day(indexed: TestClient) -> None:
    """``until=2026-03-01`` is through the end of the 1st, not its midnight: the day's decisions are found by search,
    counted in the indicators and exported, as with no until at all; the day before finds none."""
    everything = _total(indexed.get("/search").text)
    assert everything > 0
    for since in ("", "2026-03-01", "2026-01-01"):
        page = indexed.get("/search", params={"since": since, "until": "2026-03-01"})
        assert page.status_code == 200 and _total(page.text) == everything, since
    assert _total(indexed.get("/search", params={"until": "2026-02-28"}).text) == 0
    csv = indexed.get("/search.csv", params={"since": "2026-03-01", "until": "2026-03-01"})
    assert len(csv.text.splitlines()) == everything + 1
    shared = indexed.get("/indicators.csv", params={"table": "shared", "since": "2026-03-01", "until": "2026-03-01"})
    assert len(shared.text.splitlines()) > 1
    # An explicit time is the instant it names: midnight itself takes nothing of that day.
    assert _total(indexed.get("/search", params={"until": "2026-03-01T00:00:00Z"}).text) == 0


@pytest.mark.parametrize(("path", "extra"), [("/search", {}), ("/search.csv", {}), ("/indicators", {}),
                                             ("/indicators.csv", {"table": "shared"})])
def test_since_after_until_is_refused_not_answered_with_zeros(indexed: TestClient, sink: Any, path: str,
                                                               extra: dict[str, str]) -> None:
    """``since`` later than ``until`` matches nothing: a recorded 400 saying so, on every page that takes a range,
    never a page of zeros; the same day as both is a range, and is answered."""
    answer = indexed.get(path, params={**extra, "since": "2026-03-02", "until": "2026-03-01"})
    assert answer.status_code == 400 and "since is after until" in answer.text
    assert sink.records[-1]["params"]["since"] == "2026-03-02" and sink.records[-1]["results"] == 0
    assert indexed.get(path, params={**extra, "since": "2026-03-01", "until": "2026-03-01"}).status_code == 200


def test_the_forms_say_a_date_alone_as_until_is_the_whole_day(indexed: TestClient) -> None:
    """The search and indicators forms tell the auditor how a date alone as until is read."""
    for path in ("/search", "/indicators"):
        assert "A date alone as until is through the end of that day" in indexed.get(path).text, path
