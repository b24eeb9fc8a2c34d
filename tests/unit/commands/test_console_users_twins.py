"""`puente audit users list` names the accounts an older accounts file holds whose names are one to a reader
(case, '.', '_' and '-' alike), which `audit users add` now refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from broker.console_accounts import ConsoleAccounts, default_accounts_path
from puente import cli


def test_list_names_twins_an_older_file_holds(bare_keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`Alice` and `alice` in the file: listed as two accounts, then one line names them and the way to rename one."""
    path = default_accounts_path(bare_keys)
    ConsoleAccounts.open(path, ["COL"]).close()
    with sqlite3.connect(path) as db:  # as an older Puente added them
        db.executemany("INSERT INTO accounts (name, scope, hash, created_ms) VALUES (?, ?, 'x', 0)",
                       [("Alice", "COL"), ("alice", "national"), ("bob", "national")])
    db.close()
    assert cli.main(["audit", "users", "list"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["Alice", "alice", "bob"]
    assert err.splitlines()[1:] == [
        "Alice and alice differ only in case or in '.', '_' and '-': a reader of the audit takes them for one "
        "auditor; remove one (`puente audit users remove NAME`) and add it under another name"]
