"""A pruned file warned of as written to late stays named in the journal, warned of after every restart until it is
moved back, whatever files are pruned after it; a pruned time in the future does not hide a later write."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adapters.watch import Journal, _look_at_archived, _look_at_done


def _run() -> Any:
    return SimpleNamespace(adapter=SimpleNamespace(name="snm"), err=io.StringIO())


def _looked(folder: Path) -> str:
    run, journal = _run(), Journal.load(folder, print)
    _look_at_archived(run, journal, folder, late=True)
    _look_at_done(run, journal, folder, set())
    return str(run.err.getvalue())


def test_a_late_write_warned_of_is_warned_of_after_later_prunes(tmp_path: Path) -> None:
    """x.jsonl, pruned, written to weeks on, warned of; then y.jsonl, archived after that write, pruned in turn: x is
    still warned of at the next start (once), and no longer once moved back. Before, y's time hid x for ever."""
    done = tmp_path / "done"
    done.mkdir()
    x = done / "x.jsonl"
    x.write_bytes(b"a\n")
    os.utime(x, ns=(1_000, 1_000))
    Journal.load(tmp_path, print).prune({"x.jsonl": 1_000})
    with x.open("ab") as file:
        file.write(b"b\n")
    assert _looked(tmp_path).count("WARNING: done/x.jsonl") == 1
    Journal.load(tmp_path, print).prune({"y.jsonl": time.time_ns()})
    assert _looked(tmp_path).count("WARNING: done/x.jsonl") == 1
    x.rename(tmp_path / "x.jsonl")
    assert "x.jsonl" not in _looked(tmp_path) and "x.jsonl" not in Journal.load(tmp_path, print).entries


def test_a_pruned_time_in_the_future_is_capped(tmp_path: Path) -> None:
    """A file pruned with a modification time a year ahead (a clock set wrong) moves the watermark to now at most."""
    before = time.time_ns()
    journal = Journal.load(tmp_path, print)
    journal.prune({"ahead.jsonl": before + 365 * 86_400 * 10**9})
    assert journal.settled_ns is not None and journal.settled_ns <= time.time_ns()
    assert Journal.load(tmp_path, print).settled_ns == journal.settled_ns
