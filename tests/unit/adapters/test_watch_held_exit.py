"""A watched file left ending within a record when the watcher stops is unfinished: its held records are counted as
held at the stop, named with what to do, and ``puente adapt --watch`` exits 3, never 0."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.run import Tally
from adapters.watch import watch
from puente.commands import adapt as adapt_command
from puente.errors import EXIT_CONFIG

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:3]


def test_a_file_held_at_the_stop_is_named_and_counted(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """One whole line and half a second, unchanged until the idle exit: held 1, the file left in place and named
    left unfinished with what to do."""
    (tmp_path / "cut.jsonl").write_bytes(LINES[0] + LINES[1][:50])
    adapter_run, kafka = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(), out=io.StringIO()))
    assert (total.read, total.published, total.held, kafka.published) == (2, 1, 1, 1)
    assert total.read == _accounted(total)
    said = adapter_run.err.getvalue()
    assert "cut.jsonl in " in said and "is left unfinished: it ends within a record (1 result(s) held" in said
    assert (tmp_path / "cut.jsonl").exists()


def test_a_file_completed_after_a_cut_read_is_held_no_longer(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A file read while cut, then completed, read again and archived: nothing held at the stop, nothing named left
    unfinished. Before, the total summed every read's held records: held 1, for a file read in full."""
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(LINES[0] + LINES[1][:50])
    adapter_run, kafka = offline("snm")
    completed: list[bool] = []

    def complete(_: float) -> None:
        if "ends within a record" in adapter_run.err.getvalue() and not completed:
            cut.write_bytes(b"".join(LINES))
            completed.append(True)

    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, clock=ticks(complete),
                              out=io.StringIO()))
    assert kafka.published == 3 and (tmp_path / "done" / "cut.jsonl").exists()
    assert total.held == 0 and "left unfinished" not in adapter_run.err.getvalue()
    assert total.read == _accounted(total) == 4  # 3 published, 1 read again; before: read 5, the held one twice


def _accounted(total: Tally) -> int:
    """What the summary says became of the records read: it must add up to ``read``."""
    return total.published + total.duplicates + total.rejected + total.already_rejected + total.held


class _Run:
    async def __aenter__(self) -> _Run:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


@pytest.mark.parametrize(("tally", "status"), [(Tally(read=2, published=1, held=1), EXIT_CONFIG),
                                               (Tally(read=2, published=2), 0)])
def test_watch_exits_3_while_a_record_is_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], tally: Tally, status: int) -> None:
    """``--watch --exit-when-idle`` stopping with a record held (a file ending within a record): exit 3, saying what
    to do. Before, it exited 0 with "held 1" in its summary only."""

    async def watching(*_: Any, **__: Any) -> Tally:
        return tally

    monkeypatch.setattr(adapt_command, "AdapterRun", lambda *_: _Run())
    monkeypatch.setattr(adapt_command, "watching", watching)
    args = argparse.Namespace(watch=tmp_path, interval=0.1, exit_when_idle=1.0)
    adapter = SimpleNamespace(name="snm")
    assert asyncio.run(adapt_command._watch(Any, Any, adapter, Any, args)) == status  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert ("1 record(s) in " in err and "neither published nor dead-lettered" in err) == bool(tally.held)
