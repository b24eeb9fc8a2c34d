"""How a long-running command hears SIGTERM and Ctrl-C: the first asks it to stop cleanly (finish the batch in
flight, hand its partitions over, commit what it did); a second one stops the process at once.

A clean stop waits on Kafka (a transaction's commit, leaving the group), within bounds, but those bounds are tens
of seconds each. An operator who has seen the first signal taken and will not wait, or an orchestrator whose grace
period is shorter, must not be left with SIGKILL as the only way out: the second signal ends the process with
status 130, saying so in one line. Nothing is lost either way: what was in flight was not committed, so Kafka
aborts its transaction (or the next owner fences it) and its records are read again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable

from puente.errors import EXIT_INTERRUPTED

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signals(stop: Callable[[], None], what: str) -> None:
    """From now on, in the running loop, the first SIGTERM or Ctrl-C calls ``stop``; the next one ends the
    process at once (``EXIT_INTERRUPTED``), after one line on stderr naming ``what`` was stopping."""
    heard = [0]

    def on_signal() -> None:
        heard[0] += 1
        if heard[0] == 1:
            stop()
            return
        try:
            sys.stderr.write(f"puente: {what} stopped at once (a second stop signal): what was in flight was not "
                             "committed, so it is read again on the next start\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr gone: the status says it
        os._exit(EXIT_INTERRUPTED)

    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal)


def forget_stop_signals() -> None:
    """SIGTERM and Ctrl-C end the process again, as by default (the command has stopped)."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.remove_signal_handler(sig)
