"""An idle exit (``--exit-when-idle``) comes even when a failing file is never tried again: it cannot hang."""

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


def _eio(path: Path) -> OSError:
    return OSError(errno.EIO, os.strerror(errno.EIO), str(path))


def test_a_refusal_after_a_failure_does_not_hold_an_idle_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A file that failed once, then is refused (EMLINK), no longer holds the idle exit, and is not unfinished."""
    opens: list[Path] = []

    def open_dropped(path: Path) -> tuple[BinaryIO, tuple[int, int, int, int]]:
        opens.append(path)
        if len(opens) == 1:
            raise _eio(path)
        raise OSError(errno.EMLINK, os.strerror(errno.EMLINK), str(path))

    monkeypatch.setattr(watch_module, "open_dropped", open_dropped)
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, _ = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(limit=60.0),
                              out=io.StringIO()))
    assert len(opens) == 2
    assert total.unfinished == 0


def test_a_fault_after_a_failure_is_a_failed_try(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A fault that is no OSError (an adapter's bug) counts as a failed try: retried, then left unfinished."""
    opens: list[Path] = []
    real = watch_module.open_dropped

    def open_dropped(path: Path) -> tuple[BinaryIO, tuple[int, int, int, int]]:
        opens.append(path)
        if len(opens) == 1:
            raise _eio(path)
        return real(path)

    async def fault(*_: Any, **__: Any) -> Any:
        raise ValueError("a fault of the adapter's")

    monkeypatch.setattr(watch_module, "open_dropped", open_dropped)
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, _ = offline("snm")
    monkeypatch.setattr(adapter_run, "run", fault)
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(limit=60.0),
                              out=io.StringIO()))
    assert len(opens) == 1 + watch_module.IDLE_RETRIES
    assert total.unfinished == 1
    assert "left unfinished: reading it failed 4 time(s) (ValueError)" in adapter_run.err.getvalue()


def test_a_folder_that_cannot_be_listed_does_not_hold_an_idle_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """A failing file not tried again because its folder can no longer be listed is left unfinished at the idle exit."""

    def open_dropped(path: Path) -> tuple[BinaryIO, tuple[int, int, int, int]]:
        raise _eio(path)

    real_scan = watch_module.scan
    scans: list[Path] = []

    def scan(folder: Path, patterns: tuple[str, ...]) -> Any:
        scans.append(folder)
        if len(scans) > 2:
            raise _eio(folder)
        return real_scan(folder, patterns)

    monkeypatch.setattr(watch_module, "open_dropped", open_dropped)
    monkeypatch.setattr(watch_module, "scan", scan)
    (tmp_path / "hits.jsonl").write_bytes(b"".join(LINES))
    adapter_run, _ = offline("snm")
    total = asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.4, clock=ticks(limit=60.0),
                              out=io.StringIO()))
    assert total.unfinished == 1
    assert "hits.jsonl in" in adapter_run.err.getvalue()
