"""The watcher's clock is injected: its idle exit and retry waits count the seconds the watcher waited, not the time a
loaded machine took, so the watcher's tests neither flake nor wait."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.watch import watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:3]


def test_an_idle_exit_counts_the_watchers_own_seconds(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """An hour's idle exit at a minute's polls, on a clock whose polls take no time: the file is read and archived on
    the second poll, and the watch returns after exactly an hour of the clock's time, its pauses all the clock's,
    however slow each poll was in fact (each here sleeps a little, as a loaded machine would)."""
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, kafka = offline("snm")
    clock = ticks(lambda now: time.sleep(0.001))
    total = asyncio.run(watch(adapter_run, tmp_path, interval=60.0, idle_exit=3_600.0, clock=clock,
                              out=io.StringIO()))
    assert kafka.published == 3 and total.published == 3 and (tmp_path / "done" / "hits.jsonl").exists()
    assert clock.now() == 60.0 + 3_600.0 and clock.pauses == 61
