"""A cut (``_cut.cut_start``) reads and drops a partition's rows by index: what it costs grows with the records it
drops, never with every partition's rows, which a catch-up would otherwise pay at every partition it cuts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from broker.audit_index import AuditIndex
from broker.audit_index._cut import cut_start
from tests.unit.broker.test_audit_index import DECISIONS, _ingest, _topics
from tests.unit.broker.test_audit_index_cut import _blocks


def _cut_statements(path: Path, log_start: int) -> list[str]:
    """Each statement a cut of the decisions partition at ``log_start`` runs (rolled back), its values inline."""
    ran: list[str] = []
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.set_trace_callback(ran.append)
        cut_start(conn, DECISIONS, 0, log_start, None)
        conn.set_trace_callback(None)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return ran


def test_a_cut_searches_every_table_by_index(tmp_path: Path) -> None:
    """Every statement a cut runs, and the one that reads the partition again (a chain's first record held read as
    a gap), searches each table by an index (a partition's place, a chain, an id), scanning none whole."""
    path = tmp_path / "audit" / "index.sqlite"
    blocks = _blocks(5)
    with AuditIndex(path) as index:
        _ingest(index, {**_topics(), DECISIONS: [*blocks[:2], *blocks[3:]]})
    statements = [*_cut_statements(path, 2), *_cut_statements(path, 1)]
    assert any("DELETE FROM decisions " in sql for sql in statements)
    conn = sqlite3.connect(path)
    try:
        scans = [f"{line}: {sql}" for sql in statements if not sql.startswith(("BEGIN", "ROLLBACK"))
                 for *_, line in conn.execute(f"EXPLAIN QUERY PLAN {sql}") if line.startswith("SCAN ")]
    finally:
        conn.close()
    assert scans == []


def test_an_index_made_before_the_cut_s_indexes_gets_them_from_its_writer(tmp_path: Path) -> None:
    """An index of this layout made without the indexes a cut reads (an earlier release's) is read as it is, and
    its writer adds them in place when it opens it: no rebuild."""
    path = tmp_path / "audit" / "index.sqlite"
    with AuditIndex(path) as index:
        _ingest(index, _topics())
    added = ("decisions_by_place", "rules_by_decision", "dead_letters_by_place", "gaps_by_place", "denials_by_place",
             "queries_by_place")
    conn = sqlite3.connect(path)
    try:
        for name in added:
            conn.execute(f"DROP INDEX {name}")
    finally:
        conn.close()
    with AuditIndex(path, readonly=True) as index:
        assert index.problems() == 0
    with AuditIndex(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} >= set(added)
    finally:
        conn.close()
