"""The alert ids one slot has processed within the replay window. Pure; no Kafka, no clock.

Memory is bounded by the window, not by the history: an id is forgotten once Kafka's
append time in its partition has moved on by more than the window plus the allowed clock
skew. That is safe because the pipeline refuses, as stale, any record that reaches Kafka
more than the window after its signed publication time, and a publication time may run
ahead of Kafka's clock by at most the skew. So a replay of a forgotten id is always stale:
if the original was appended at T0 (published at P <= T0 + skew) and the replay at T1, the
id is forgotten only when T1 > T0 + window + skew >= P + window.
"""

from __future__ import annotations

from collections import deque

from broker.pipeline import DAY_MS, MAX_FUTURE_SKEW_MS


class ReplayWindow:
    """A set of alert ids, each with the Kafka append time (ms) of the record that carried it."""

    def __init__(self, window_days: int) -> None:
        self.keep_ms = window_days * DAY_MS + MAX_FUTURE_SKEW_MS
        self._ids: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()
        self._latest = 0

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, alert_id: str, appended_ms: int) -> None:
        """Remember ``alert_id`` at the latest time given for it (an earlier one never shortens its stay)."""
        known = self._ids.get(alert_id)
        if known is None or appended_ms > known:
            self._ids[alert_id] = appended_ms
            self._order.append((appended_ms, alert_id))
        self.advance(appended_ms)

    @property
    def latest(self) -> int:
        """The newest append time noted (0: none yet)."""
        return self._latest

    def advance(self, appended_ms: int) -> None:
        """Note that the partition has reached this append time."""
        self._latest = max(self._latest, appended_ms)

    def cutoff(self) -> int:
        """Ids appended before this time (ms) are no longer needed."""
        return self._latest - self.keep_ms

    def prune(self) -> int:
        """Forget the ids older than the window; return how many were forgotten."""
        cutoff, order, ids, dropped = self.cutoff(), self._order, self._ids, 0
        while order and order[0][0] < cutoff:
            appended, alert_id = order.popleft()
            if ids.get(alert_id) == appended:  # else a later time keeps it (``add``)
                del ids[alert_id]
                dropped += 1
        return dropped
