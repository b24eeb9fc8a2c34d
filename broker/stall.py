"""Telling a stalled worker from an idle one: pure, given what the worker sees and when.

A worker *has work* when it is joining its group, holds a transaction open, or owns a partition
with committed records it has not processed. It *progresses* when it commits a transaction or
completes a join. Work without progress for longer than ``after_s`` is a stall: the watch gives
one warning naming what the worker waits for, another every ``after_s`` while the stall lasts,
and one note when the worker moves again. An idle worker (no work) never stalls.

Nothing here reads a clock or logs: the worker passes the time and its state, and logs what
comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What a worker sees of itself at one moment (times on one monotonic clock, in seconds)."""

    joining: bool
    """The group has not given this worker its partitions yet (a join or a rebalance under way)."""
    open_txns: Sequence[tuple[int, float]] = ()
    """(slot, when it began) of every transaction in flight."""
    behind: int = 0
    """Committed records in owned partitions not processed yet."""
    last_fetch_at: float | None = None
    """When Kafka last answered a fetch for an owned partition (None: not yet)."""


@dataclass(frozen=True, slots=True)
class StallNote:
    """A line for the log: a stall (``waiting`` says on what) or, with ``recovered``, its end."""

    waiting: str
    stalled_s: float
    recovered: bool = False


def waiting_for(view: WorkerView, now: float, unreachable_after_s: float) -> str | None:
    """What the worker waits for, in words for an operator; None when it has no work."""
    if view.joining:
        return "joining the consumer group (a rebalance, or the group coordinator out of reach)"
    if view.open_txns:
        slot, began = min(view.open_txns, key=lambda t: t[1])
        return f"the commit of slot {slot}'s transaction (open {now - began:.0f}s)"
    if view.behind > 0:
        if view.last_fetch_at is None or now - view.last_fetch_at > unreachable_after_s:
            silent = "" if view.last_fetch_at is None else f" for {now - view.last_fetch_at:.0f}s"
            return f"Kafka, unreachable: no fetch answered{silent} with {view.behind} records to process"
        return f"fetching: {view.behind} records to process"
    return None


@dataclass(slots=True)
class StallWatch:
    """Decides, each time it is shown the worker, whether a stall warning or a recovery is due."""

    after_s: float
    since: float
    """When the worker last progressed, or last had no work."""
    warned_at: float | None = None
    waiting: str = ""

    def observe(self, now: float, progressed: bool, view: WorkerView) -> StallNote | None:
        """Warn at most once per ``after_s`` while stalled; note the recovery once."""
        waiting = None if progressed else waiting_for(view, now, min(self.after_s, 5.0))
        if waiting is None:
            note = None
            if self.warned_at is not None:
                note = StallNote(self.waiting, now - self.since, recovered=True)
            self.since, self.warned_at = now, None
            return note
        if now - self.since < self.after_s:
            return None
        if self.warned_at is not None and now - self.warned_at < self.after_s:
            return None
        self.warned_at, self.waiting = now, waiting
        return StallNote(waiting, now - self.since)
