"""The "why" page says when a field was changed inside, or when its decision's change list was cut."""

from __future__ import annotations

from pathlib import Path

from broker.audit_index import AuditIndex
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from tests.unit.broker.test_audit_index import _views_index
from tests.unit.console.conftest import Sink, _sign_in, local_client


def test_why_shows_a_field_changed_inside_and_one_whose_changes_were_cut(tmp_path: Path,
                                                                         accounts: ConsoleAccounts) -> None:
    """``location`` with its border sector dropped reads "partly changed", naming that change; a field of a decision
    whose change list the block cut reads "unknown (the change list was cut)" and says so; neither reads "kept"."""
    index = _views_index(tmp_path)
    path = index.path
    index.close()
    app = create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, Sink()))
    client = local_client(app, follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    partly = client.get("/why", params={"alert": "S:1", "partner": "USA", "field": "location"})
    assert partly.status_code == 200
    row = partly.text.split('<table class="results" id="why">', 1)[1]
    assert ">partly changed<" in row and "location.border_sector (drop" in row and ">kept<" not in row
    cut = client.get("/why", params={"alert": "S:4", "partner": "USA", "field": "subject.passport"})
    row = cut.text.split('<table class="results" id="why">', 1)[1]
    assert ">unknown (the change list was cut)<" in row and "cut this decision's change list short" in row
    assert ">kept<" not in row
