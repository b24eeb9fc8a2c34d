"""The integrity page of a partner's auditor: a decision chain's state, never its size or checkpoints."""

from __future__ import annotations

import re
from pathlib import Path

from broker.audit_index import AuditIndex
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from tests.unit.broker.test_audit_index import DECISIONS
from tests.unit.broker.test_audit_index_integrity_scope import _index
from tests.unit.console.conftest import Sink, _sign_in, local_client


def _chain_rows(page: str) -> dict[str, str]:
    table = page.split('id="chains"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", table, re.S)
    return {re.search(r'<td class="mono">([^<]*)</td>', r).group(1): r for r in rows}  # type: ignore[union-attr]


def test_the_usa_auditor_sees_the_decision_chain_state_only(tmp_path: Path, accounts: ConsoleAccounts) -> None:
    """The decision chain's row says "sound" and shows no record count; the national auditor's row shows it."""
    _index(tmp_path, 7).close()
    config = ConsoleConfig(lambda: AuditIndex(tmp_path / "index.sqlite", readonly=True), accounts, Sink())
    sam = local_client(create_app(config), follow_redirects=False)
    assert _sign_in(sam, "sam").status_code == 303
    row = _chain_rows(sam.get("/integrity").text)[DECISIONS]
    assert "counted-only" in row and "sound" in row and not re.search(r'class="num">\d', row.replace(
        '<td class="num">0</td>', ""))
    ana = local_client(create_app(config), follow_redirects=False)
    assert _sign_in(ana, "ana").status_code == 303
    row = _chain_rows(ana.get("/integrity").text)[DECISIONS]
    assert '<td class="num">8</td>' in row and "counted-only" not in row
