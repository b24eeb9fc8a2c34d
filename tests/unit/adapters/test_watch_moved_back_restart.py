"""A file moved back from done/ because it grew keeps what its first read knew (its name, its first size) across a
restart before it is archived again: the journal keeps it until then, and only for that very file."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.watch import JOURNAL_NAME, watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:3]
BAD = b'{"id_control": "PTY-1", "oops": 1}\n'


def _numbered_archive(tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> tuple[Any, Any]:
    """Two exports named export.jsonl, each with its own bad record: the second archived as done/export.1.jsonl."""
    adapter_run, kafka = offline("snm")
    for first in LINES[:2]:
        (tmp_path / "export.jsonl").write_bytes(first + BAD)
        asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (tmp_path / "done" / "export.1.jsonl").exists() and len(kafka.dead) == 2
    return adapter_run, kafka


def _move_back_and_stop(tmp_path: Path, run: Any, ticks: Any, name: str = "export.1.jsonl",
                        more: bytes = LINES[2]) -> None:
    """Grow done/<name> by ``more`` and run a watcher that stops at the poll it moves the file back, before its
    read."""
    with (tmp_path / "done" / name).open("ab") as file:
        file.write(more)
    stop = asyncio.Event()

    def stop_once_back(_: float) -> None:
        if (tmp_path / name).exists():
            stop.set()

    total = asyncio.run(watch(run, tmp_path, interval=0.05, stop=stop, clock=ticks(stop_once_back),
                              out=io.StringIO()))
    assert f"moved back as {name}" in run.err.getvalue() and total.read == 0


def test_a_file_moved_back_then_restarted_keeps_its_first_names_keys(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """Moved back as export.1.jsonl, the watcher stopped before its read, restarted: its bad record keeps the key it
    had under export.jsonl, counted already rejected, no new dead letter; archived again, the journal lets it go.
    Before, the restart read it under its numbered name: a new dead letter for a record rejected already."""
    first_run, _ = _numbered_archive(tmp_path, offline, ticks)
    stopped, _ = offline("snm", after=first_run)
    _move_back_and_stop(tmp_path, stopped, ticks)
    later, restarted = offline("snm", after=stopped)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (total.rejected, total.already_rejected) == (0, 1) and restarted.dead == []
    assert (tmp_path / "done" / "export.1.jsonl").read_bytes() == LINES[1] + BAD + LINES[2]
    lines = [json.loads(line) for line in (tmp_path / JOURNAL_NAME).read_bytes().splitlines()]
    archived = [line for line in lines if line.get("name") == "export.1.jsonl"][-1]
    assert archived["read_as"] == "export.jsonl" and lines[-1].get("unback") is not None


def test_a_file_put_at_a_moved_back_name_inherits_nothing(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """The moved-back file replaced, before a restart, by a dropper's new export of the same name and bytes: the
    restarted watcher reads the new file as its own (keyed by its own name: a dead letter of its own), never as the
    file the journal says was moved back."""
    first_run, _ = _numbered_archive(tmp_path, offline, ticks)
    stopped, _ = offline("snm", after=first_run)
    _move_back_and_stop(tmp_path, stopped, ticks)
    moved = tmp_path / "export.1.jsonl"
    # another file, written beside it while it still holds its inode (so another), renamed over it when done
    (tmp_path / "export.1.jsonl.part").write_bytes(moved.read_bytes())
    (tmp_path / "export.1.jsonl.part").rename(moved)
    later, restarted = offline("snm", after=stopped)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (total.rejected, total.already_rejected) == (1, 0) and len(restarted.dead) == 1


def test_a_move_back_journalled_but_not_made_is_let_go(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A journal naming a file moved back that is not in the folder (a stop between the line and the move) loads:
    nothing is read for it, the file still in done/ is moved back, read as its first read knew it."""
    first_run, _ = _numbered_archive(tmp_path, offline, ticks)
    numbered = tmp_path / "done" / "export.1.jsonl"
    st = numbered.stat()
    with (tmp_path / JOURNAL_NAME).open("a") as journal:  # as a stop just after the line, before the rename, leaves it
        journal.write(json.dumps({"back": "export.1.jsonl", "file": [st.st_dev, st.st_ino], "whole": st.st_size,
                                  "read_as": "export.jsonl"}) + "\n")
    with numbered.open("ab") as file:
        file.write(LINES[2])
    later, restarted = offline("snm", after=first_run)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert "cannot be read" not in later.err.getvalue() and "moved back as export.1.jsonl" in later.err.getvalue()
    assert (total.rejected, total.already_rejected) == (0, 1) and restarted.dead == []


def test_a_file_refused_whole_moved_back_then_restarted_keeps_its_key(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A CR-only export (refused whole) archived, grown, moved back, the watcher stopped before its read, restarted:
    its refusal is keyed by its first size's bytes, counted already rejected, no new dead letter. Before, the restart
    keyed it by all its bytes now: a second dead letter for the same export."""
    cr = b"".join(line.rstrip(b"\r\n") + b"\r" for line in LINES)
    (tmp_path / "hits.jsonl").write_bytes(cr[:-len(LINES[2])])
    first_run, kafka = offline("snm")
    asyncio.run(watch(first_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert len(kafka.dead) == 1
    stopped, _ = offline("snm", after=first_run)
    _move_back_and_stop(tmp_path, stopped, ticks, "hits.jsonl", LINES[2].rstrip(b"\r\n") + b"\r")
    later, restarted = offline("snm", after=stopped)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (tmp_path / "done" / "hits.jsonl").read_bytes() == cr
    assert (total.rejected, total.already_rejected) == (0, 1) and restarted.dead == []
