"""The folder watcher's journal of archived files: what it archived is looked at for growth across a restart, and
after its watch window a file that grows is said, never passed over."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import watch as watch_module
from adapters.watch import JOURNAL_NAME, watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]


def _archive_then_write_on(drop: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> Any:
    """A watcher archives an export its exporter keeps open, and stops; the exporter then writes three more records
    into the file, which done/ names by then. Returns the stopped watcher's run."""
    first, kafka = offline("snm")
    with (drop / "hits.jsonl").open("ab") as exporter:
        exporter.write(b"".join(LINES[:3]))
        exporter.flush()
        asyncio.run(watch(first, drop, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
        assert kafka.published == 3 and (drop / "done" / "hits.jsonl").exists()
        exporter.write(b"".join(LINES[3:]))
    return first


def test_a_restarted_watcher_reads_what_was_written_into_an_archived_file(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """An export archived, its watcher restarted, then written on into done/: the new watcher (the journal says what
    was archived and when) moves it back, reads it, and publishes only the three new records. Before, it published
    nothing and said nothing."""
    first = _archive_then_write_on(tmp_path, offline, ticks)
    second, kafka = offline("snm", after=first)
    total = asyncio.run(watch(second, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert kafka.published == 3 and (total.read, total.published, total.duplicates) == (6, 3, 3)
    assert "done/hits.jsonl was written to after it was archived" in second.err.getvalue()
    assert (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(LINES) and not (tmp_path / "hits.jsonl").exists()


def test_an_archived_file_that_grows_after_its_window_is_said_loudly(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], monkeypatch: pytest.MonkeyPatch, ticks: Any) -> None:
    """Past the watch window a grown archive is not moved, but warned of, naming it and what to do: once per change
    while one watcher runs, and again by a watcher restarted (what it holds is still unread)."""
    monkeypatch.setattr(watch_module, "REGROWN_WATCH_S", 0.0)
    monkeypatch.setattr(watch_module, "LATE_LOOK_S", 0.0)
    first = _archive_then_write_on(tmp_path, offline, ticks)
    for _ in range(2):
        later, kafka = offline("snm", after=first)
        asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
        said = later.err.getvalue()
        assert kafka.published == 0 and said.count("WARNING: done/hits.jsonl was written to after it was archived") == 1
        assert "what was written since is not read; move it back into" in said
        assert (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(LINES)
    os.rename(tmp_path / "done" / "hits.jsonl", tmp_path / "hits.jsonl")  # as the warning says
    last, kafka = offline("snm", after=first)
    asyncio.run(watch(last, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
    assert kafka.published == 3 and "WARNING" not in last.err.getvalue()


def test_a_journal_that_cannot_be_read_is_said_and_replaced(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A journal that is not one (garbled), or a link (never followed), is said with what to check; the watcher goes
    on, and its next archive writes a journal of its own in its place, never through the link."""
    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    for bad in ("garbled", "link"):
        drop = tmp_path / bad
        drop.mkdir()
        if bad == "link":
            (drop / JOURNAL_NAME).symlink_to(target)
        else:
            (drop / JOURNAL_NAME).write_text("{not json")
        (drop / "hits.jsonl").write_bytes(LINES[0])
        adapter_run, kafka = offline("snm")
        asyncio.run(watch(adapter_run, drop, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
        said = adapter_run.err.getvalue()
        assert "the journal of files archived to done/" in said and "cannot be read" in said
        assert kafka.published == 1 and not (drop / JOURNAL_NAME).is_symlink()
        assert list(watch_module.Journal.load(drop, print).entries) == ["hits.jsonl"]
    assert target.read_text() == "keep me"


def _cut_short(drop: Path, offline: Callable[..., tuple[Any, Any]], *, recorded: bool) -> Any:
    """The state a stop inside ``archive`` leaves: an export of three records read and published, linked into
    done/, its drop-folder name not yet removed (``recorded``: after the journal noted it); its exporter then wrote
    three more records. Returns the run that read it."""
    (drop / "done").mkdir(parents=True)
    export = drop / "hits.jsonl"
    export.write_bytes(b"".join(LINES[:3]))
    first, kafka = offline("snm")
    with export.open("rb") as stream:
        asyncio.run(first.run(stream, str(export)))
    assert kafka.published == 3
    os.link(export, drop / "done" / "hits.jsonl")
    if recorded:
        st = export.stat()
        watch_module.Journal(drop, print).note("hits.jsonl", (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    with export.open("ab") as exporter:
        exporter.write(b"".join(LINES[3:]))
    return first


@pytest.mark.parametrize("recorded", [False, True])
def test_a_move_cut_short_of_a_file_written_on_since_is_read_again(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], recorded: bool, ticks: Any) -> None:
    """A file left with two names by a stop between its archive's link and unlink, and written to since, is not
    taken for read in full: its done/ name is removed, it is read again, and only the three new records are published
    (the ledger skips the three published before), recorded in the journal or not. Before, the move was finished and
    the three records lost, unsaid."""
    first = _cut_short(tmp_path, offline, recorded=recorded)
    again, kafka = offline("snm", after=first)
    total = asyncio.run(watch(again, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert kafka.published == 3 and (total.read, total.published, total.duplicates) == (6, 3, 3)
    said = again.err.getvalue()
    assert "a move a stop cut short: taken out of done/ and read again" in said
    assert "moved back" not in said
    assert (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(LINES) and not (tmp_path / "hits.jsonl").exists()
    assert list((tmp_path / "done").iterdir()) == [tmp_path / "done" / "hits.jsonl"]


def test_a_planted_journal_entry_and_hard_link_never_make_an_export_skip_its_read(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """Whoever may write the drop folder links an unread export into done/ and writes a journal entry naming it as
    it is: the watcher still reads it (four records published) and archives it, never removing it unread. Before,
    the move was "finished": the export removed from the folder, nothing published."""
    (tmp_path / "done").mkdir()
    export = tmp_path / "hits.jsonl"
    export.write_bytes(b"".join(LINES[:4]))
    os.link(export, tmp_path / "done" / "hits.jsonl")
    st = export.stat()
    watch_module.Journal(tmp_path, print).note("hits.jsonl", (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    adapter_run, kafka = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert kafka.published == 4 and (total.read, total.published) == (4, 4)
    assert "finished moving" not in adapter_run.err.getvalue()
    assert (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(LINES[:4]) and not export.exists()


def test_the_archive_records_a_file_before_removing_its_drop_folder_name(tmp_path: Path) -> None:
    """``archive`` calls ``noted`` with the file's name in done/ while the file still has its drop-folder name: a stop
    between the two leaves it named in the journal, looked at for growth after the restart."""
    export = tmp_path / "hits.jsonl"
    export.write_bytes(LINES[0])
    stream, identity = watch_module.open_dropped(export)
    stream.close()
    seen: list[tuple[Path, bool]] = []
    moved = watch_module.archive(export, tmp_path / "done", identity, lambda kept: seen.append((kept, export.exists())))
    assert moved == tmp_path / "done" / "hits.jsonl" and seen == [(moved, True)]
