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


def test_a_future_watermark_in_a_journal_written_before_the_cap_hides_no_write(tmp_path: Path) -> None:
    """A journal an earlier watcher wrote with a pruned time a year ahead (it folded in a file dated ahead, before
    times were capped): loaded, the watermark is no later than the journal's own last write, so a file in done/
    written to after that, and not named, is warned of."""
    ahead = time.time_ns() + 365 * 86_400 * 10**9
    (tmp_path / ".puente-watch.archived").write_text(f'{{"version": 2, "settled_ns": {ahead}}}\n'
                                                     f'{{"settled_ns": {ahead}}}\n')
    written = os.stat(tmp_path / ".puente-watch.archived").st_mtime_ns
    os.utime(tmp_path / ".puente-watch.archived", ns=(written - 10**9, written - 10**9))
    journal = Journal.load(tmp_path, print)
    assert journal.settled_ns is not None and journal.settled_ns <= written
    done = tmp_path / "done"
    done.mkdir()
    (done / "late.jsonl").write_bytes(b"a\n")
    assert _looked(tmp_path).count("WARNING: done/late.jsonl") == 1


def test_a_journal_dated_ahead_hides_no_write(tmp_path: Path) -> None:
    """A journal whose watermark and modification time were both set a year ahead (touch -d, by whoever may write the
    folder): loaded, the watermark is no later than the watcher's clock, so a file in done/ written to after the
    load, and not named, is warned of. Before, the journal's own time capped it: every write for a year went unsaid."""
    ahead = time.time_ns() + 365 * 86_400 * 10**9
    (tmp_path / ".puente-watch.archived").write_text(f'{{"version": 2, "settled_ns": {ahead}}}\n')
    os.utime(tmp_path / ".puente-watch.archived", ns=(ahead, ahead))
    journal = Journal.load(tmp_path, print)
    assert journal.settled_ns is not None and journal.settled_ns < ahead
    done = tmp_path / "done"
    done.mkdir()
    late = done / "late.jsonl"
    late.write_bytes(b"a\n")
    written = journal.settled_ns + 10**9  # a second after the load, a year before the journal's date
    os.utime(late, ns=(written, written))
    run = _run()
    _look_at_done(run, journal, tmp_path, set())
    assert run.err.getvalue().count("WARNING: done/late.jsonl") == 1
