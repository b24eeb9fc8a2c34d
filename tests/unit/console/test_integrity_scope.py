"""The integrity page of a partner's auditor: a decision chain's state, never its size or checkpoints."""

from __future__ import annotations

import re
from pathlib import Path

from broker.audit_index import AuditIndex, Scope
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from tests.unit.broker.test_audit_chain import _verify
from tests.unit.broker.test_audit_index import DECISIONS
from tests.unit.broker.test_audit_index_integrity_scope import _index
from tests.unit.broker.test_audit_retention_start import _blocks, _cut
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


def test_a_chain_whose_first_records_kafka_deleted_is_named_as_starting_late(tmp_path: Path,
                                                                            accounts: ConsoleAccounts) -> None:
    """A decision chain held from seq 2 (retention, or a deletion) reads "from seq 2" on the integrity page, and
    the page says which chains start late and what is checked of them, not only "every chain verifies"; a whole
    chain reads no such thing."""
    for start, late in ((2, True), (0, False)):
        path = tmp_path / f"from-{start}.sqlite"
        with AuditIndex(path) as index:
            index.register({DECISIONS: "decisions"})
            ingest = index.partition(DECISIONS, 0, "decisions", _verify, log_start=start)
            for offset, value in _cut(_blocks(5), start):
                ingest.add(offset, value)
            ingest.commit()
            assert index.problems() == 0
            assert index.integrity(Scope())["chains"][0]["first_seq"] == start
        config = ConsoleConfig(lambda p=path: AuditIndex(p, readonly=True), accounts, Sink())
        ana = local_client(create_app(config), follow_redirects=False)
        assert _sign_in(ana, "ana").status_code == 303
        page = ana.get("/integrity").text
        assert ('id="late-starts"' in page) is late and ("from seq 2" in _chain_rows(page)[DECISIONS]) is late
        assert 'id="no-findings"' in page or 'id="no-findings-unchecked"' in page
