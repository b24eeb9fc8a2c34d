"""A file refused whole (CR-only line ends) that grows after its archive keeps its dead letter's key when the
watcher moves it back and reads it again: one dead letter, however often it grows."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.watch import watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]


def _cr(lines: list[bytes]) -> bytes:
    return b"".join(line.rstrip(b"\r\n") + b"\r" for line in lines)


def test_a_refused_file_that_grows_after_its_archive_keeps_its_key(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A CR-only export archived, written on twice (each time moved back and read again): one dead letter, its two
    reads again counted already rejected. Before, each growth changed its whole-file key: three dead letters."""
    (tmp_path / "hits.jsonl").write_bytes(_cr(LINES[:3]))
    adapter_run, kafka = offline("snm")
    archived = tmp_path / "done" / "hits.jsonl"
    grown: list[int] = []

    def write_on(_: float) -> None:
        if archived.exists() and len(grown) < 2 and archived.stat().st_size == len(_cr(LINES[:3 + len(grown)])):
            with archived.open("ab") as file:
                file.write(_cr([LINES[3 + len(grown)]]))
            grown.append(archived.stat().st_size)

    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=1.0, clock=ticks(write_on),
                              out=io.StringIO()))
    assert len(grown) == 2 and archived.read_bytes() == _cr(LINES[:5])
    assert len(kafka.dead) == 1 and total.rejected == 1 and total.already_rejected == 2


def test_another_export_refused_whole_still_gets_its_own(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """Another export of that name, differing within the first file's bytes, dropped later: its own dead letter."""
    (tmp_path / "hits.jsonl").write_bytes(_cr(LINES[:3]))
    adapter_run, kafka = offline("snm")
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    (tmp_path / "hits.jsonl").write_bytes(_cr(LINES[1:4]))
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert len(kafka.dead) == 2


def test_a_numbered_archive_moved_back_keeps_its_first_names_keys(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """Two exports named export.jsonl, each with its own bad record, the second archived as done/export.1.jsonl, which
    then grows and is moved back as export.1.jsonl: its bad record keeps the key it had under export.jsonl, counted
    already rejected, two dead letters in all; and so after a restart (the journal keeps the name). Before, the
    numbered name made new keys: a third dead letter for a record rejected already."""
    bad = b'{"id_control": "PTY-1", "oops": 1}\n'
    adapter_run, kafka = offline("snm")
    for first in LINES[:2]:
        (tmp_path / "export.jsonl").write_bytes(first + bad)
        asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    numbered = tmp_path / "done" / "export.1.jsonl"
    assert numbered.exists() and len(kafka.dead) == 2
    later, restarted = offline("snm", after=adapter_run)  # a restart: the name is the journal's to keep
    with numbered.open("ab") as file:
        file.write(LINES[2])
    total = asyncio.run(watch(later, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert "moved back as export.1.jsonl" in later.err.getvalue() and numbered.read_bytes() == LINES[1] + bad + LINES[2]
    assert (total.rejected, total.already_rejected) == (0, 1) and restarted.dead == []
