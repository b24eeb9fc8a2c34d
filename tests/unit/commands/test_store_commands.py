"""`puente store`: a --store that is no partner store is refused in one line and left as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

import puente.commands.store as store
from puente.cli import build_parser
from puente.errors import StoreError


@pytest.mark.parametrize("kind", ["accounts", "empty"])
def test_store_list_refuses_a_file_that_is_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    kind: str) -> None:
    """`store list --store acc.sqlite` on the console accounts (or an empty file) exits with a StoreError (status 3)
    naming the file and --store, never "0 of 0 alert(s)"; the file's bytes are unchanged and no WAL is left."""
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=tmp_path / "keys", policy_dir=None))
    path = tmp_path / "acc.sqlite"
    if kind == "accounts":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE accounts (name TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE sessions (token_sha256 TEXT PRIMARY KEY)")
        conn.commit()
        conn.close()
    else:
        path.touch()
    path.chmod(0o600)
    before = path.read_bytes()
    args = build_parser().parse_args(["store", "list", "--partner", "COL", "--store", str(path)])
    with pytest.raises(StoreError, match=r"acc\.sqlite is not a partner store \(.*\): check --store") as raised:
        args.func(args)
    assert raised.value.exit_code == 3 and "\n" not in str(raised.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.sqlite"]
