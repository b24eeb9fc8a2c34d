"""``done/`` swapped for a symbolic link by whoever may write the drop folder: the looks at archived files never
follow it, whenever the swap comes, so no file of the watcher's own is moved into the folder, read or named."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters import watch as watch_module
from adapters.watch import Journal, _Archived, _look_at_archived, _look_at_done


def _run() -> Any:
    return SimpleNamespace(adapter=SimpleNamespace(name="snm"), err=io.StringIO())


def _private(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A folder of the watcher's own holding a key, and a drop folder with its done/."""
    private = tmp_path / "watcher-private"
    private.mkdir()
    (private / "mac.key").write_bytes(b"SECRET-KEY-BYTES\n")
    drop = tmp_path / "drop"
    (drop / "done").mkdir(parents=True)
    return private, private / "mac.key", drop


def _swap(drop: Path, private: Path) -> None:
    os.rename(drop / "done", drop / "done.old")
    os.symlink(private, drop / "done")


def test_done_swapped_for_a_link_after_it_was_looked_at_moves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted journal entry naming mac.key with the device and inode of the watcher's key, and done/ swapped for
    a link to the key's folder once the look at archived files began: the key stays where it is, and nothing lands
    in the drop folder. Before, done/ was checked once and each file then looked up by path: the key was moved into
    the drop folder, to be read as an export."""
    private, key, drop = _private(tmp_path)
    st = key.stat()
    journal = Journal(drop, print)
    journal.entries["mac.key"] = _Archived((st.st_dev, st.st_ino, 1, 1), time.time())
    swapped: list[bool] = []

    def now() -> float:  # the race point: after done/ is looked at, before its files are
        if not swapped:
            _swap(drop, private)
            swapped.append(True)
        return time.time()

    monkeypatch.setattr(watch_module, "time", SimpleNamespace(time=now, time_ns=time.time_ns))
    regrown: dict[Path, int] = {}
    _look_at_archived(_run(), journal, drop, late=False, regrown=regrown)
    assert swapped and key.read_bytes() == b"SECRET-KEY-BYTES\n"
    assert sorted(name for name in os.listdir(drop) if not name.startswith(".")) == ["done", "done.old"]
    assert regrown == {}


def test_done_a_link_at_the_late_look_names_nothing_behind_it(tmp_path: Path) -> None:
    """done/ a link to the watcher's own folder at the look for late writes: nothing there is warned of, nor named in
    the journal. Before, the listing followed the link: the key's name was said and written into the journal."""
    private, _, drop = _private(tmp_path)
    journal = Journal(drop, print)
    journal.settled_ns = 1_000
    _swap(drop, private)
    run = _run()
    _look_at_done(run, journal, drop, set())
    assert run.err.getvalue() == "" and journal.entries == {}
