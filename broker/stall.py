"""Telling a stalled slot or worker from an idle one: pure, given what the worker sees and when.

Each slot is watched on its own, since one slot's commits say nothing of another's: a slot whose
transaction hangs stalls its partition, however often the other slots of the worker commit. A
slot *has work* when it holds a transaction open, has records taken from Kafka and not committed
(queued, being worked out, or waiting for a transaction permit), or has committed records in its
partition it has not processed, or cannot tell: no fetch of its partition answered for a while
(``unreachable_after_s``). The records behind are counted from the partition's end as the last
answered fetch gave it, which stops moving when Kafka stops answering (its leader gone, say): a slot
caught up then would show none behind for ever while records pile up. The worker's consumer fetches
every partition it holds without a pause, a long poll about every 100 ms when quiet, so a slot Kafka
answers is never silent for seconds. It *progresses* when it commits. The worker itself has work
while it joins its group, and progresses when a join completes.

Work without progress for longer than ``after_s`` is a stall: the watch gives one warning naming
the slot (or the join) and what it waits for, another every ``after_s`` while the stall lasts, and
one note when it ends (a commit, no work left, or the slot no longer this worker's). An idle slot
or worker (no work) never stalls. At most one line per stalled slot per ``after_s``.

Nothing here reads a clock or logs: the worker passes the time and its state, and logs what
comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SlotView:
    """What a worker sees of one owned slot at one moment (times on one monotonic clock, in seconds)."""

    slot: int
    committed_at: float
    """When the slot last committed, or was taken: any change from one look to the next is progress."""
    txn_began: float | None = None
    """When its transaction in flight began (None: none open)."""
    taken: bool = False
    """Records taken from Kafka and not committed: queued, being worked out, or waiting for a permit."""
    queued: int = 0
    """Of those, how many are queued (for the warning's words)."""
    behind: int = 0
    """Committed records in its partition not processed yet."""
    last_fetch_at: float | None = None
    """When Kafka last answered a fetch for its partition (None: not since the slot was taken)."""


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What a worker sees of itself at one moment."""

    joining: bool
    """The group has not given this worker its partitions yet (a join or a rebalance under way)."""
    joins: int = 0
    """Joins completed so far: a count, so a join between two looks is progress even if another began."""
    slots: Sequence[SlotView] = ()


@dataclass(frozen=True, slots=True)
class StallNote:
    """A line for the log: a stall (``waiting`` says on what) or, with ``recovered``, its end;
    ``slot`` is the slot stalled (None: the worker, joining its group)."""

    waiting: str
    stalled_s: float
    recovered: bool = False
    slot: int | None = None


JOINING = "joining the consumer group (a rebalance, or the group coordinator out of reach)"


def slot_waiting_for(view: SlotView, now: float, unreachable_after_s: float) -> str | None:
    """What a slot waits for, in words for an operator naming the slot; None when it has no work."""
    slot = view.slot
    if view.txn_began is not None:
        return f"the commit of slot {slot}'s transaction (open {now - view.txn_began:.0f}s)"
    if view.taken:
        return (f"slot {slot}'s next transaction to begin ({view.queued} records queued; "
                "a transaction permit, or its batch being worked out)")
    unanswered = view.last_fetch_at is None or now - view.last_fetch_at > unreachable_after_s
    silent = "" if view.last_fetch_at is None else f" for {now - view.last_fetch_at:.0f}s"
    if view.behind > 0:
        if unanswered:
            return (f"Kafka, unreachable: no fetch answered{silent} with {view.behind} records "
                    f"to process in slot {slot}")
        return f"fetching: {view.behind} records to process in slot {slot}"
    if unanswered:  # caught up as far as it last heard, which says nothing of what was appended since
        return (f"Kafka, unreachable: slot {slot} has had no fetch answered{silent or ' since it was taken'}, "
                "caught up as far as it last heard (records appended since are not seen)")
    return None


@dataclass(slots=True)
class _Clock:
    """One stall clock (a slot's, or the join's): when its work last progressed or was none, and
    whether it has warned."""

    since: float
    mark: float | int
    """What says progress when it changes: the slot's ``committed_at``, the worker's ``joins``."""
    warned_at: float | None = None
    waiting: str = ""

    def look(self, now: float, after_s: float, waiting: str | None, slot: int | None) -> StallNote | None:
        """Warn at most once per ``after_s`` while stalled; note the end once."""
        if waiting is None:
            note = self.end(now, slot)
            self.since, self.warned_at = now, None
            return note
        if now - self.since < after_s:
            return None
        if self.warned_at is not None and now - self.warned_at < after_s:
            return None
        self.warned_at, self.waiting = now, waiting
        return StallNote(waiting, now - self.since, slot=slot)

    def end(self, now: float, slot: int | None) -> StallNote | None:
        return None if self.warned_at is None else StallNote(self.waiting, now - self.since, True, slot)


@dataclass(slots=True)
class StallWatch:
    """Decides, each time it is shown the worker, which stall warnings or recoveries are due: one
    clock for the join, one for each slot it sees."""

    after_s: float
    since: float
    """When the watch began: the join's clock starts there."""
    _join: _Clock | None = field(default=None, init=False, repr=False)
    _slots: dict[int, _Clock] = field(default_factory=dict, init=False, repr=False)

    def observe(self, now: float, view: WorkerView) -> list[StallNote]:
        """The notes due now, the worker's join first, then by slot."""
        unreachable_after_s = min(self.after_s, 5.0)
        if self._join is None:
            self._join = _Clock(self.since, view.joins)
        joined, self._join.mark = view.joins != self._join.mark, view.joins
        notes = [self._join.look(now, self.after_s, JOINING if view.joining and not joined else None, None)]
        seen = set()
        for slot in sorted(view.slots, key=lambda s: s.slot):
            seen.add(slot.slot)
            clock = self._slots.get(slot.slot)
            if clock is None:  # newly taken (or first seen): its work is no older than its last commit or taking
                clock = self._slots[slot.slot] = _Clock(min(now, slot.committed_at), slot.committed_at)
            committed, clock.mark = slot.committed_at != clock.mark, slot.committed_at
            waiting = None if committed else slot_waiting_for(slot, now, unreachable_after_s)
            notes.append(clock.look(now, self.after_s, waiting, slot.slot))
        for gone in sorted(set(self._slots) - seen):  # no longer this worker's: whatever it waited for, not here
            notes.append(self._slots.pop(gone).end(now, gone))
        return [note for note in notes if note is not None]
