"""The audit index writer's lock: the index path is checked before anything is made beside it, a lock file a failed
run made is removed, and another SQLite file is never laid out as an index."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from broker.audit_index import DEFAULT_INDEX, AuditIndex, writer_lock
from puente.errors import StoreError


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_missing_folder_the_user_named_is_refused_and_not_made(tmp_path: Path) -> None:
    """`--index` in folders that do not exist: one error naming the folder; neither the folders nor a lock made."""
    path = tmp_path / "some" / "missing" / "idx"
    with pytest.raises(StoreError, match=r"folder .*some/missing does not exist"), writer_lock(path):
        pass
    assert _names(tmp_path) == []


@pytest.mark.parametrize("kind", ["folder", "fifo", "link to /dev/zero"])
def test_an_index_that_is_no_regular_file_leaves_no_lock(tmp_path: Path, kind: str) -> None:
    """`--index` naming a folder, a pipe or a device (through a link, so the test makes nothing in /dev) is refused
    before the lock is taken: no `X.lock` is left beside it, and the pipe is never opened."""
    path = tmp_path / "X"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(StoreError, match=r"X is not a regular file.*check --index"), writer_lock(path):
        pass
    assert _names(tmp_path) == ["X"]


def test_a_lock_this_run_made_goes_when_the_run_fails(tmp_path: Path) -> None:
    """A block that fails removes the lock file its own call made, but never one that was there before."""
    path = tmp_path / "idx.sqlite"
    with pytest.raises(RuntimeError), writer_lock(path):
        assert (tmp_path / "idx.sqlite.lock").is_file()
        raise RuntimeError("the catch-up failed")
    assert _names(tmp_path) == []
    with writer_lock(path):
        pass
    assert _names(tmp_path) == ["idx.sqlite.lock"]  # a run that succeeded keeps it, as before
    with pytest.raises(RuntimeError), writer_lock(path):
        raise RuntimeError("the catch-up failed")
    assert _names(tmp_path) == ["idx.sqlite.lock"]
    with writer_lock(path, wait_s=0):  # and it can be taken again
        pass


def test_the_default_index_folder_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Puente's own place for the index (no --index) is made when missing, 0700, as before."""
    monkeypatch.chdir(tmp_path)
    with writer_lock(Path(DEFAULT_INDEX)):
        pass
    folder = (tmp_path / DEFAULT_INDEX).parent
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    assert _names(folder) == [Path(DEFAULT_INDEX).name + ".lock"]


def test_another_sqlite_file_is_not_laid_out_as_an_index(tmp_path: Path) -> None:
    """The console accounts given as the index (layout 0, tables of its own) are refused and left as they were."""
    path = tmp_path / "accounts.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (name TEXT PRIMARY KEY)")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"is not an audit index \(.*accounts\): check --index"):
        AuditIndex(path)
    assert path.read_bytes() == before and _names(tmp_path) == ["accounts.sqlite"]
