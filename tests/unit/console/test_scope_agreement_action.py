"""Console pages of a partner's auditor over a real index: no agreement of a decision its partner was not sent, and a
first copy of a later version read as the UPDATE its partner's feed read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex
from broker.console_accounts import ConsoleAccounts
from broker.crypto import checker, sign_checkpoint
from puente.console import ConsoleConfig, create_app

from .conftest import Sink, _sign_in, local_client
from .test_scope_reasons import _entry

_KEY = Ed25519PrivateKey.generate()


def _to(partner: str, outcome: str, agreement: str | None, **more: Any) -> dict[str, Any]:
    return {"partner": partner, "decision": outcome, "agreement": agreement, "rules": [f"{partner}.r"],
            "reasons": ["a reason"], "redacted": [], "policy_version": "p1",
            **({"feed": f"t.feed.{partner}"} if outcome != "WITHHOLD" else {}), **more}


@pytest.fixture
def client(tmp_path: Path, accounts: ConsoleAccounts, sink: Sink) -> Iterator[TestClient]:
    """W:1 withheld from USA though USA-ARMS covers its type; R:1 v3, a RECLASSIFY first sent to USA (it held no
    earlier version); H:1 v2, a RECLASSIFY re-sent to USA, which held v1."""
    path = tmp_path / "audit" / "index.sqlite"
    block = ChainWriter("t.audit.decisions", 0).block(
        [_entry("W:1", 0, [_to("USA", "WITHHOLD", "USA-ARMS"), _to("COL", "DELIVER", "COL-PAN")]),
         _entry("R:1", 1, [_to("USA", "DELIVER", "USA-PAN")], version=3, action="RECLASSIFY", previous_version=2),
         _entry("H:1", 2, [_to("USA", "DELIVER", "USA-PAN", supersedes=1)], version=2, action="RECLASSIFY",
                previous_version=1)],
        "broker-sign-2026a", lambda payload: sign_checkpoint(_KEY, payload), "2026-11-01T10:03:00Z")
    with AuditIndex(path) as index:
        index.register({"t.audit.decisions": "decisions"})
        ingest = index.partition("t.audit.decisions", 0, "decisions", checker({"broker-sign-2026a": _KEY.public_key()}))
        ingest.add(0, block)
        ingest.commit()
        index.finish(datetime(2026, 11, 1, 11, tzinfo=UTC))
    made = local_client(create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, sink)),
                        follow_redirects=False)
    yield made


def _rows(client: TestClient, **params: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(client.get("/search.csv", params=params).text)))


def test_a_partner_auditor_reads_no_agreement_of_a_decision_it_was_not_sent(client: TestClient) -> None:
    """Search, its choices, CSV, timeline and "why" of USA's auditor never name USA-ARMS, the agreement W:1's type
    falls under; filtering by it finds nothing; the national auditor reads and finds it."""
    _sign_in(client, "sam")
    rows = _rows(client)
    alias = next(r["alert_id"] for r in rows if r["decision"] == "WITHHOLD")
    pages = [client.get("/search").text, client.get("/search", params={"decision": "WITHHOLD"}).text,
             client.get(f"/alerts/{alias}").text, client.get(f"/why?alert={alias}&partner=USA&field=subject").text,
             client.get("/search.csv").text]
    assert "USA-PAN" in pages[0]  # what its partner was sent under is shown
    assert not any("USA-ARMS" in page for page in pages)
    assert 'id="total">0<' in client.get("/search", params={"agreement": "USA-ARMS"}).text
    assert _rows(client, agreement="USA-ARMS") == []
    client.cookies.clear()
    _sign_in(client, "ana")
    assert "USA-ARMS" in client.get("/search").text
    assert [r["alert_id"] for r in _rows(client, agreement="USA-ARMS")] == ["W:1"]


def test_a_partner_auditor_reads_a_first_copy_as_an_update(client: TestClient) -> None:
    """USA's CSV reads R:1 v3, which it never held before, as an UPDATE, and H:1 v2, re-sent while it held v1, as
    the RECLASSIFY it was; the national auditor's reads both RECLASSIFY."""
    _sign_in(client, "sam")
    assert sorted((r["version"], r["action"]) for r in _rows(client) if r["decision"] == "DELIVER") == [
        ("2", "RECLASSIFY"), ("3", "UPDATE")]
    client.cookies.clear()
    _sign_in(client, "ana")
    assert sorted((r["version"], r["action"]) for r in _rows(client, partner="USA") if r["decision"] == "DELIVER") == [
        ("2", "RECLASSIFY"), ("3", "RECLASSIFY")]
