"""The journal of archived files stays bounded: each archive appends a line (written whole only now and then), files
unchanged a week past their window are pruned yet a later growth is still said, and a journal that would pass its cap
is refused loudly, the one on disk kept, never replaced by an empty one."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import watch as watch_module
from adapters.watch import JOURNAL_NAME, Journal, watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]


def test_archiving_a_backlog_appends_instead_of_rewriting_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five thousand files archived: the journal is written whole a handful of times (each time it doubled), every
    other archive an append of one line, and it reads back whole. Before, it was written whole at every archive, its
    cost growing with all it held (quadratic over a backlog)."""
    real, wholes = watch_module._write_whole, []

    def counting(path: Path, data: bytes) -> None:
        wholes.append(len(data))
        real(path, data)

    monkeypatch.setattr(watch_module, "_write_whole", counting)
    journal = Journal(tmp_path, print)
    for n in range(5_000):
        journal.note(f"export-{n}.jsonl", (1, n, 100, 1_000 + n))
    journal.forget("export-7.jsonl")
    assert len(wholes) <= 3, wholes
    again = Journal.load(tmp_path, print)
    assert len(again.entries) == 4_999 and "export-7.jsonl" not in again.entries
    assert again.entries["export-4999.jsonl"].identity == (1, 4_999, 100, 5_999)


def test_a_journal_past_its_cap_is_refused_loudly_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that would pass JOURNAL_BYTES is refused and said once, naming the cap; the journal on disk keeps what
    it held. One found past the cap at a start is said and never written over (an empty journal replacing it was the
    fault: past ~516k entries the next start read none and overwrote it)."""
    monkeypatch.setattr(watch_module, "JOURNAL_BYTES", 8 << 10)
    said: list[str] = []
    journal = Journal(tmp_path, said.append)
    n = 0
    while not said and n < 1_000:  # about 80 bytes a file: the cap is passed near the hundredth
        journal.note(f"export-{n}.jsonl", (1, n, 100, 1_000 + n))
        n += 1
    assert said, "no write was refused"
    for more in range(20):
        journal.note(f"more-{more}.jsonl", (2, more, 100, 1_000))
    assert len(said) == 1 and "WARNING" in said[0] and "would pass 8,192 bytes" in said[0]
    assert "kept as it was" in said[0]
    kept = Journal.load(tmp_path, print)
    assert 0 < len(kept.entries) < n and not any(name.startswith("more-") for name in kept.entries)
    assert (tmp_path / JOURNAL_NAME).stat().st_size <= 8 << 10

    big = tmp_path / "big"
    big.mkdir()
    (big / JOURNAL_NAME).write_bytes(b"x" * ((8 << 10) + 1))
    said.clear()
    over = Journal.load(big, said.append)
    over.note("hits.jsonl", (1, 1, 1, 1))
    over.forget("hits.jsonl")
    assert (big / JOURNAL_NAME).read_bytes() == b"x" * ((8 << 10) + 1)
    assert "larger than" in said[0] and "never written over" in said[0] and "move it aside" in said[-1]


def test_an_unchanged_file_is_pruned_after_its_late_period_and_a_later_growth_still_said(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], monkeypatch: pytest.MonkeyPatch, ticks: Any) -> None:
    """Past REGROWN_WATCH_S + JOURNAL_KEEP_S an archived file unchanged leaves the journal (its time folded into
    settled_ns); written to later, it is warned of by the look at done/, once per change, by a restarted watcher too,
    with what to do. Before, the journal kept every file ever archived."""
    monkeypatch.setattr(watch_module, "REGROWN_WATCH_S", 0.0)
    monkeypatch.setattr(watch_module, "JOURNAL_KEEP_S", 0.0)
    monkeypatch.setattr(watch_module, "LATE_LOOK_S", 0.0)
    export = tmp_path / "hits.jsonl"
    export.write_bytes(b"".join(LINES[:3]))
    os.utime(export, ns=(1_000_000_000, 1_000_000_000))  # written long ago: a later write's time is past it
    first, kafka = offline("snm")
    asyncio.run(watch(first, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
    assert kafka.published == 3
    journal = Journal.load(tmp_path, print)
    assert journal.entries == {} and journal.settled_ns == 1_000_000_000
    assert "WARNING" not in first.err.getvalue()
    with (tmp_path / "done" / "hits.jsonl").open("ab") as exporter:
        exporter.write(b"".join(LINES[3:]))
    for _ in range(2):
        later, kafka = offline("snm", after=first)
        asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
        said = later.err.getvalue()
        assert kafka.published == 0 and said.count("WARNING: done/hits.jsonl was written to after it was archived") == 1
        assert "since is not read; move it back into" in said  # the second by name: the journal names it again
