"""SIGTERM and Ctrl-C: the first asks a long-running command to stop cleanly, a second one ends it at once
(status 130, one line), so that a stop stuck waiting on Kafka never leaves SIGKILL as the only way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A command whose clean stop never ends: ``stop`` is called, says so, and the loop waits on.
PROGRAM = """
import asyncio, sys
from puente.signals import on_stop_signals

async def main():
    on_stop_signals(lambda: print("stopping", flush=True), "the test's service")
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _started() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


@pytest.mark.parametrize(("first", "second"), [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT),
                                               (signal.SIGTERM, signal.SIGINT)])
def test_the_first_stop_signal_asks_and_the_second_ends_the_process(first: int, second: int) -> None:
    proc = _started()
    try:
        assert proc.stdout is not None
        proc.send_signal(first)
        assert proc.stdout.readline() == "stopping\n"
        time.sleep(0.3)
        assert proc.poll() is None  # the first one only asks: the clean stop goes on
        proc.send_signal(second)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("puente: the test's service stopped at once"), err
    assert "Traceback" not in err
