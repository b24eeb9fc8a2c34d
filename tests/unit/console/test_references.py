"""Over a real index of alerts partners know by references: a partner's auditor reads, links and opens each by its
partner's reference and never reads an agency's own id; a national auditor reads the own id, also when a partner's
reference opened the alert."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from broker.audit_index import AuditIndex
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from tests.unit.broker.test_audit_index_refs import COL_ONLY, OWN, SHARED, UNREAD, _topics, ref
from tests.unit.broker.test_audit_index_refs import _ingest as _index_topics

from .conftest import Sink, _sign_in, local_client


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    path = tmp_path / "audit" / "index.sqlite"
    with AuditIndex(path) as index:
        _index_topics(index, _topics())
    return path


def _client(path: Path, accounts: ConsoleAccounts, who: str) -> TestClient:
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, Sink())),
                          follow_redirects=False)
    assert _sign_in(client, who).status_code == 303
    return client


def test_a_partner_auditor_reads_links_and_opens_its_partners_reference_never_the_own_id(
        indexed: Path, accounts: ConsoleAccounts) -> None:
    """Every page and export USA's auditor reaches names the alerts USA was sent by USA's references (its rows, links,
    titles, CSV, the unreceipted list, timeline and "why"), and no text, link or title holds an agency's own id;
    the own id, and COL's reference, open nothing."""
    client = _client(indexed, accounts, "sam")
    mine, unread = ref("USA", SHARED), ref("USA", UNREAD)
    exported = list(csv.DictReader(io.StringIO(client.get("/search.csv").text)))
    assert {r["alert_id"] for r in exported if r["decision"] != "WITHHOLD" or r["alert_id"] == mine} == {mine, unread}
    pages = [client.get(p) for p in (
        "/search", "/search.csv", f"/search?alert={mine}", "/search?alert=ref-*", f"/alerts/{mine}",
        f"/alerts/{mine}?partner=USA", f"/why?alert={mine}&partner=USA&field=subject", "/receipts?hours=1",
        "/indicators", "/indicators.csv?table=shared", "/", "/integrity")]
    assert all(p.status_code == 200 for p in pages)
    assert not any(OWN in unquote(p.text) for p in pages)
    assert f'href="/alerts/{mine}"' in pages[0].text and f"<title>Alert {mine}" in pages[4].text
    assert "receipt" in pages[4].text.lower() and f'href="/alerts/{unread}' in pages[7].text
    for given in (SHARED, COL_ONLY, ref("COL", SHARED)):
        assert client.get(f"/alerts/{given}").status_code == 404
        assert 'id="total">0<' in client.get("/search", params={"alert": given}).text


def test_a_national_auditor_reads_the_own_id_when_a_reference_opens_the_alert(indexed: Path,
                                                                               accounts: ConsoleAccounts) -> None:
    """A partner's reference, as its receipts and findings name the alert, opens the alert's timeline titled and
    linked by its own id, with that partner's receipt; a search by it finds the alert's rows."""
    client = _client(indexed, accounts, "ana")
    page = client.get(f"/alerts/{ref('COL', SHARED)}")
    assert page.status_code == 200 and f"<title>Alert {SHARED}" in page.text
    assert f'href="/alerts/{SHARED.replace(":", "%3A")}?partner=COL"' in page.text
    assert page.text == client.get(f"/alerts/{SHARED}").text
    assert SHARED in client.get("/search", params={"alert": ref("USA", SHARED)}).text
