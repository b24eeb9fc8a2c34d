"""The audit index writer's lock: the index path is checked before anything is made beside it, a lock file a failed
run made is removed, and another SQLite file is never laid out as an index."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from broker.audit_index import DEFAULT_INDEX, AuditIndex, rebuilding, writer_lock
from puente.errors import StoreError


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_missing_folder_is_made_private_and_a_file_for_a_folder_refused(tmp_path: Path) -> None:
    """`--index` in folders that do not exist makes them 0700 (as the default place is); a file where the folder
    should be is one error naming it, with no lock made."""
    path = tmp_path / "some" / "missing" / "idx"
    with writer_lock(path):
        pass
    assert (tmp_path / "some" / "missing").stat().st_mode & 0o777 == 0o700
    (tmp_path / "plain").write_text("x")
    with pytest.raises(StoreError, match=r"plain/idx: Not a directory: check --index"), \
            writer_lock(tmp_path / "plain" / "idx"):
        pass
    assert _names(tmp_path) == ["plain", "some"]


def test_a_partner_store_or_any_layout_of_sqlite_file_is_never_written_nor_rebuilt_over(tmp_path: Path) -> None:
    """A partner store (layout 5, its own tables) named as the index: the writer, the reader and a rebuild each
    refuse it, and the file is left as it was (a rebuild would have replaced it: decrypted alerts gone)."""
    path = tmp_path / "feed.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alerts (alert_id TEXT PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    before = path.read_bytes()
    for attempt in (lambda: writer_lock(path).__enter__(), lambda: AuditIndex(path),
                    lambda: AuditIndex(path, readonly=True), lambda: rebuilding(path).__enter__()):
        with pytest.raises(StoreError, match="is not an audit index"):
            attempt()
    assert path.read_bytes() == before


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


def test_a_rebuild_cut_short_after_its_move_never_has_the_old_wal_replayed_onto_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite ties a WAL to no file: the old index's WAL left beside the rebuilt one (a crash right after the
    move) was replayed by the next writer, bringing the old index's rows back with no error. The old WAL is
    gone before the move."""
    import broker.audit_index._store as store

    path = tmp_path / "audit" / "index.sqlite"
    with AuditIndex(path) as old:
        old._conn.execute("PRAGMA wal_autocheckpoint = 0")
        old._conn.execute("INSERT INTO meta (key, value) VALUES ('whose', 'old')")
        assert os.path.getsize(f"{path}-wal") > 0
        replace = os.replace

        def crash_after(src: str, dst: str) -> None:
            replace(src, dst)
            raise KeyboardInterrupt("the process dies here")

        monkeypatch.setattr(store.os, "replace", crash_after)
        with pytest.raises(KeyboardInterrupt), rebuilding(path) as temp, AuditIndex(temp) as new:
            new._conn.execute("INSERT INTO meta (key, value) VALUES ('whose', 'new')")
        monkeypatch.setattr(store.os, "replace", replace)
        with AuditIndex(path) as reopened:
            assert reopened._conn.execute("SELECT value FROM meta WHERE key = 'whose'").fetchall() == [("new",)]
