"""A read that fails partway through a watched file: what was read is counted, the file is tried again after a wait,
and one still failing when the watcher stops is counted left unfinished, never passed over."""

from __future__ import annotations

import asyncio
import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from adapters import watch as watch_module
from adapters.watch import watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]


class _FailingAfter(io.RawIOBase):
    """A file whose reads fail with EIO past its first ``good`` bytes, as a share dropping mid-read."""

    def __init__(self, raw: BinaryIO, good: int) -> None:
        super().__init__()
        self._raw, self._left = raw, good

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        data = self._raw.read(min(len(buffer), self._left))
        buffer[:len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _failing_opens(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Make the watcher's first ``times`` opens give a file failing after its first three records; returns a list
    that counts the opens."""
    real, opens = watch_module.open_dropped, []

    def open_dropped(path: Path) -> tuple[BinaryIO, tuple[int, int, int, int]]:
        stream, identity = real(path)
        opens.append(1)
        if len(opens) > times:
            return stream, identity
        return io.BufferedReader(_FailingAfter(stream, len(b"".join(LINES[:3]))), 64), identity

    monkeypatch.setattr(watch_module, "open_dropped", open_dropped)
    return opens


def test_a_file_failing_partway_is_counted_and_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """EIO after three records: those three are published and counted, the file stays, is tried again after a
    wait, and its second read publishes the other three, nothing left unfinished. Before, the three were counted
    nowhere (read 0) and the file never tried again."""
    opens = _failing_opens(monkeypatch, times=1)
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, kafka = offline("snm")
    out = io.StringIO()
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.6, clock=ticks(), out=out))
    assert len(opens) == 2 and kafka.published == 6 and (tmp_path / "done" / "hits.jsonl").exists()
    assert (total.read, total.published, total.duplicates, total.unfinished) == (9, 6, 3, 0)
    assert "read 3, published 3, duplicates 0, rejected 0 (unfinished: reading failed partway)" in out.getvalue()
    said = adapter_run.err.getvalue()
    assert "cannot read hits.jsonl: Input/output error after 3 record(s)" in said and "trying again in" in said


def test_a_file_still_failing_when_the_watcher_stops_is_left_unfinished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A file whose reads keep failing is tried again with a growing wait, at least IDLE_RETRIES times before an
    idle exit comes; when the watcher stops it is counted left unfinished, in the total's line too, and named with
    what to do; what it read is counted. Before, the idle exit came after one retry, its timer never reset."""
    opens = _failing_opens(monkeypatch, times=1_000)
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, kafka = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert kafka.published == 3 and total.published == 3 and total.unfinished == 1
    assert (tmp_path / "hits.jsonl").exists() and not (tmp_path / "done" / "hits.jsonl").exists()
    assert total.line().endswith("files left unfinished 1 (reading failed partway)")
    said = adapter_run.err.getvalue()
    assert "hits.jsonl in " in said and "is left unfinished: reading it failed 4 time(s)" in said
    assert "check the folder's disk or share, then run the watcher again" in said
    waits = [float(part.split("s ", 1)[0]) for part in said.split("trying again in ")[1:]]
    assert len(opens) == 1 + watch_module.IDLE_RETRIES and waits == [0.1, 0.2, 0.4, 0.8]  # three retries seen


def test_a_file_that_cannot_be_opened_is_retried_and_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A file the watcher cannot open (an I/O error, not a refusal) is tried again too, and left unfinished if it
    still cannot be; a refused one (a hard link) is said as before and not counted."""
    refused = tmp_path / "refused"
    refused.mkdir()
    (tmp_path / "elsewhere.jsonl").write_bytes(LINES[0])
    (refused / "linked.jsonl").hardlink_to(tmp_path / "elsewhere.jsonl")
    adapter_run, _ = offline("snm")
    total = asyncio.run(watch(adapter_run, refused, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
    assert total.unfinished == 0 and adapter_run.err.getvalue().count("cannot read linked.jsonl") == 1

    def failing(path: Path) -> Any:
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(watch_module, "open_dropped", failing)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, _ = offline("snm")
    total = asyncio.run(watch(adapter_run, drop, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
    assert total.unfinished == 1 and adapter_run.err.getvalue().count("cannot read hits.jsonl") >= 2


def _refusing_opens(monkeypatch: pytest.MonkeyPatch, code: int, then: Callable[[Path], None] | None = None) -> None:
    """Make every open of the watcher's fail with ``code``, after ``then(path)`` if given."""

    def open_dropped(path: Path) -> Any:
        if then is not None:
            then(path)
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(watch_module, "open_dropped", open_dropped)


def test_a_file_this_account_may_not_read_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """An open refused for permission (EACCES, EPERM) is retried, each time and at the stop advising the file's owner
    and mode, never the disk or share. Before, it said to check the folder's disk or share."""
    for code in (errno.EACCES, errno.EPERM):
        _refusing_opens(monkeypatch, code)
        drop = tmp_path / str(code)
        drop.mkdir()
        (drop / "hits.jsonl").write_bytes(b"".join(LINES))
        adapter_run, _ = offline("snm")
        total = asyncio.run(watch(adapter_run, drop, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
        said = adapter_run.err.getvalue()
        assert total.unfinished == 1 and "disk or share" not in said
        assert said.count("let this account read it: its owner and mode") == 1 + watch_module.IDLE_RETRIES + 1


def test_a_file_gone_before_its_read_is_no_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A file removed between the listing and its open (ENOENT) is gone: not retried, not said to be tried again, not
    left unfinished. Before, it was "left in place, trying again", and counted unfinished."""
    _refusing_opens(monkeypatch, errno.ENOENT, then=lambda path: path.unlink())
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, _ = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(), out=io.StringIO()))
    assert total.unfinished == 0 and "trying again" not in adapter_run.err.getvalue()
    assert "left unfinished" not in adapter_run.err.getvalue()


def test_an_idle_exit_waits_for_a_pending_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A file whose first read fails and whose retry succeeds, its wait longer than the idle exit: the watcher waits
    for the retry, reads the file in full, archives it, and leaves nothing unfinished. Before, it exited idle before
    the retry, the file unfinished."""
    opens = _failing_opens(monkeypatch, times=1)
    monkeypatch.setattr(watch_module, "RETRY_MAX_S", 10.0)
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, kafka = offline("snm")
    clock = ticks()
    total = asyncio.run(watch(adapter_run, tmp_path, interval=5.0, idle_exit=6.0, clock=clock, out=io.StringIO()))
    assert len(opens) == 2 and kafka.published == 6 and total.unfinished == 0
    assert (tmp_path / "done" / "hits.jsonl").exists()
