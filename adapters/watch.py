"""Watching a drop folder: adapt each new export once it has stopped growing, then move it to ``done/``.

Polling (every ``interval`` seconds) rather than inotify: it works the same on network shares
and in containers, and an export lands every few minutes, not every millisecond. A file is
taken only when its size and modification time are the same on two polls in a row, so a file
still being copied is not read half-written; writers should still write under a temporary
name (hidden, or ending in .tmp or .part, which are ignored) and rename when done. Moving a
processed file to ``done/`` keeps the folder's meaning simple (what is there is pending); if
the move fails, the file is remembered for as long as the watcher runs, and a restart would
read it again harmlessly: the run is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import TextIO

from adapters.run import AdapterRun, Tally

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


def pending(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Files in ``folder`` (not below it) matching the adapter's patterns, oldest first."""
    found = {p for pattern in patterns for p in folder.glob(pattern)}
    ready = [p for p in found if p.is_file() and not p.name.startswith(".") and not p.name.endswith(IGNORED_SUFFIXES)]
    return sorted(ready, key=lambda p: (p.stat().st_mtime, p.name))


async def watch(run: AdapterRun, folder: Path, *, interval: float = 2.0, idle_exit: float | None = None,
                stop: asyncio.Event | None = None, out: TextIO | None = None) -> Tally:
    """Adapt files as they arrive until ``stop`` is set, or until nothing arrived for ``idle_exit`` seconds."""
    out = out or sys.stdout
    if not folder.is_dir():
        from puente.errors import ConfigError

        raise ConfigError(f"{folder} is not a folder")
    stop = stop or asyncio.Event()
    done_dir = folder / "done"
    total = Tally()
    sizes: dict[Path, tuple[int, float]] = {}
    handled: set[tuple[Path, int, float]] = set()
    idle_since = time.monotonic()
    while not stop.is_set():
        for path in pending(folder, run.adapter.patterns):
            st = path.stat()
            sig = (st.st_size, st.st_mtime)
            if sizes.get(path) != sig or (path, *sig) in handled:
                sizes[path] = sig  # seen for the first time, or still changing: wait one more poll
                continue
            with open(path, "rb") as stream:
                tally = await run.run(stream, str(path))
            total.add(tally)
            print(f"{run.adapter.name} {path.name}: {tally.line()}", file=out, flush=True)
            handled.add((path, *sig))
            try:
                done_dir.mkdir(exist_ok=True)
                path.rename(done_dir / path.name)
            except OSError as exc:
                print(f"{run.adapter.name}: could not move {path.name} to done/: {exc.strerror}", file=run.err)
            sizes.pop(path, None)
            idle_since = time.monotonic()
        if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
            break
        with contextlib.suppress(TimeoutError):  # the poll interval passed without a stop
            await asyncio.wait_for(stop.wait(), interval)
    return total
