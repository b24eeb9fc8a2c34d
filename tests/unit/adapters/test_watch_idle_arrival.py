"""An idle exit never leaves unread a file that arrived at the last poll: an arrival counts as activity, as the help
of ``--exit-when-idle`` says ("no file arrived, was read or failed for this long")."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.watch import watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:3]


def test_a_file_arriving_at_the_idle_point_is_read_before_the_exit(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """An empty folder watched with a one-second idle exit; an export lands in the wait that ends that second: it is
    read and archived before the watcher exits. Before, the poll that first saw it was also the idle exit's: the
    export was left unread, the run a success that published nothing."""
    export = tmp_path / "hits.jsonl"

    def drop(now: float) -> None:
        if now == 1.0:
            export.write_bytes(b"".join(LINES))

    adapter_run, kafka = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.25, idle_exit=1.0, clock=ticks(drop),
                              out=io.StringIO()))
    assert kafka.published == 3 and total.published == 3 and (tmp_path / "done" / "hits.jsonl").exists()
