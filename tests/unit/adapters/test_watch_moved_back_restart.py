"""A file moved back from done/ because it grew keeps what its first read knew (its name, its first size) across a
restart before it is archived again: the journal keeps it until then, and only for that very file."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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


def _plant(tmp_path: Path, *lines: dict[str, Any]) -> None:
    """Append ``lines`` to the folder's journal (begun if there is none), as whoever may write the folder may."""
    journal = tmp_path / JOURNAL_NAME
    if not journal.exists():
        journal.write_text(json.dumps({"version": 2, "settled_ns": None}) + "\n")
    with journal.open("a") as file:
        file.writelines(json.dumps(line) + "\n" for line in lines)


def _forged(path: Path, whole: int, read_as: str, entry: bool) -> list[dict[str, Any]]:
    """A ``back`` line for ``path`` (never archived), its head digest right, after a forged archive entry if
    ``entry``."""
    st = path.stat()
    identity = [st.st_dev, st.st_ino, whole, st.st_mtime_ns]
    head = hashlib.blake2b(path.read_bytes()[:whole], digest_size=16).hexdigest()
    back = {"back": path.name, "file": identity[:2], "whole": whole, "read_as": read_as, "archived": identity,
            "head": head}
    return [{"name": "x.jsonl", "identity": identity, "at": 0, "whole": whole, "read_as": read_as}, back] \
        if entry else [back]


CR = b"".join(line.rstrip(b"\r\n") + b"\r" for line in LINES)  # line ends CR only: refused whole


@pytest.mark.parametrize(("whole", "read_as", "entry"), [(0, "y.jsonl", False), (0, "y.jsonl", True),
                                                         (len(LINES[0]), "y.jsonl", True)])
def test_a_planted_back_line_makes_no_file_skip_its_dead_letter(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any, whole: int, read_as: str,
        entry: bool) -> None:
    """A dropper plants back lines for its own CR-only file and then for a new export of another's (never archived,
    refused whole too, the same first line): at a restart each is read as new, under its own name, a dead letter of
    its own. Before, both were keyed by the name and first bytes the lines chose: the victim's refusal collided with
    the dropper's dead letter, counted already rejected, its own never written."""
    (tmp_path / "mine.jsonl").write_bytes(CR[:len(LINES[0])] + b"junk\r")
    _plant(tmp_path, *_forged(tmp_path / "mine.jsonl", whole, read_as, entry))
    dropper, _ = offline("snm")
    asyncio.run(watch(dropper, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    (tmp_path / "victim.jsonl").write_bytes(CR)
    _plant(tmp_path, *_forged(tmp_path / "victim.jsonl", whole, read_as, entry))
    later, restarted = offline("snm", after=dropper)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (total.rejected, total.already_rejected) == (1, 0) and len(restarted.dead) == 1
    assert "victim.jsonl was moved back from done/, and the file there is not the one" in later.err.getvalue()
    # begun as version 2 (as a watcher before back lines wrote it): written whole since, as 3, never appended to
    assert json.loads((tmp_path / JOURNAL_NAME).read_bytes().splitlines()[0])["version"] == 3


def test_a_new_export_on_a_moved_back_files_inode_inherits_nothing(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """The moved-back file written over in place before a restart (a new export on its inode, as one removed and
    its inode reused): its first bytes are not those moved back, so it is read as its own, a dead letter of its own.
    Before, it was read under the first name: its bad record, as the first export's, counted already rejected."""
    first_run, _ = _numbered_archive(tmp_path, offline, ticks)
    stopped, _ = offline("snm", after=first_run)
    _move_back_and_stop(tmp_path, stopped, ticks)
    moved = tmp_path / "export.1.jsonl"
    inode = moved.stat().st_ino
    moved.write_bytes(LINES[0] + BAD + LINES[2] + LINES[1])  # as the first export began: its dead letter's key
    assert moved.stat().st_ino == inode
    later, restarted = offline("snm", after=stopped)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (total.rejected, total.already_rejected) == (1, 0) and len(restarted.dead) == 1


def test_a_moved_back_file_not_to_be_looked_at_at_the_start_keeps_its_line(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The moved-back file failing its first look at the restart (EIO): its line is kept, and its read, once it can
    be looked at, keeps its first name's keys. Before, any error let the line go: read under its numbered name, a
    new dead letter for a record rejected already."""
    first_run, _ = _numbered_archive(tmp_path, offline, ticks)
    stopped, _ = offline("snm", after=first_run)
    _move_back_and_stop(tmp_path, stopped, ticks)
    moved, failed = tmp_path / "export.1.jsonl", []
    real_open, real_lstat = os.open, os.lstat

    def once(real: Callable[..., Any]) -> Callable[..., Any]:
        def look(path: Any, *args: Any, **kwargs: Any) -> Any:
            if str(path) == str(moved) and not failed:
                failed.append(True)
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
            return real(path, *args, **kwargs)
        return look

    monkeypatch.setattr(os, "open", once(real_open))
    monkeypatch.setattr(os, "lstat", once(real_lstat))
    later, restarted = offline("snm", after=stopped)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert failed and (total.rejected, total.already_rejected) == (0, 1) and restarted.dead == []


def test_a_move_back_written_whole_still_vouches_for_its_file(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """The move back journalled by a whole write (the journal ended in an append cut short): the line still reads
    after an entry of its file, and the restart keeps the first name's keys."""
    first_run, _ = _numbered_archive(tmp_path, offline, ticks)
    with (tmp_path / JOURNAL_NAME).open("ab") as journal:
        journal.write(b'{"forg')  # a stop within an append: the next write is whole
    stopped, _ = offline("snm", after=first_run)
    _move_back_and_stop(tmp_path, stopped, ticks)
    assert json.loads((tmp_path / JOURNAL_NAME).read_bytes().splitlines()[0])["version"] == 3
    later, restarted = offline("snm", after=stopped)
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (total.rejected, total.already_rejected) == (0, 1) and restarted.dead == []
