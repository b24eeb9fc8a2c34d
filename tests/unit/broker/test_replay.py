"""The replay window: ids are remembered as long as a replay of them could still be admitted, and no longer."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.pipeline import DAY_MS, MAX_FUTURE_SKEW_MS
from broker.replay import ReplayWindow
from broker.worker import remember_block


def test_ids_within_the_window_are_kept() -> None:
    window = ReplayWindow(7)
    window.add("A", 0)
    window.add("B", 6 * DAY_MS)
    assert window.prune() == 0
    assert "A" in window and "B" in window and len(window) == 2


def test_ids_older_than_window_and_skew_are_forgotten() -> None:
    window = ReplayWindow(1)
    window.add("old", 0)
    window.add("new", DAY_MS + MAX_FUTURE_SKEW_MS + 1)
    assert window.prune() == 1
    assert "old" not in window and "new" in window


def test_advance_moves_the_end_without_adding() -> None:
    window = ReplayWindow(1)
    window.add("A", 0)
    window.advance(5 * DAY_MS)
    window.prune()
    assert len(window) == 0 and "" not in window


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=DAY_MS), min_size=1, max_size=60),
    replay_of=st.integers(min_value=0, max_value=59),
    replay_gap=st.integers(min_value=0, max_value=4 * DAY_MS),
    publish_lead=st.integers(min_value=0, max_value=MAX_FUTURE_SKEW_MS),
)
def test_a_forgotten_id_can_only_come_back_stale(gaps: list[int], replay_of: int, replay_gap: int,
                                                  publish_lead: int) -> None:
    """Whenever the window no longer holds an id, a replay of it is beyond the window from its publication.

    The pipeline admits a record only if append - published <= window and published - append <= skew;
    the original was published at most ``skew`` after its own append time.
    """
    window = ReplayWindow(2)
    times, t = [], 0
    for i, gap in enumerate(gaps):
        t += gap
        times.append(t)
        window.add(f"id{i}", t)
    original = replay_of % len(gaps)
    replay_at = times[-1] + replay_gap
    window.advance(replay_at)
    window.prune()
    published = times[original] + publish_lead  # the latest publication time consistent with the original
    if f"id{original}" not in window:
        assert replay_at - published > 2 * DAY_MS, "a forgotten id would have been admitted again"


def test_a_block_read_back_cannot_move_the_window_past_its_verified_head() -> None:
    """The blocks a slot reads back for its window are not verified one by one: one forged with an append
    time 400 days ahead must not prune the genuine ids (they would then be decided again)."""
    def block(*entries: tuple[str, int]) -> bytes:
        return orjson.dumps({"entries": [{"kind": "ALERT", "alert_id": a, "ingress_ms": t} for a, t in entries]})

    head_ms = 30 * DAY_MS
    window = ReplayWindow(7)
    window.advance(head_ms)
    remember_block(window, block(("SNM:A0", head_ms - DAY_MS)), head_ms)
    remember_block(window, block(("zz", head_ms + 400 * DAY_MS)), head_ms)
    remember_block(window, block(("SNM:A2", head_ms)), head_ms)
    window.prune()
    assert window.latest == head_ms and all(i in window for i in ("SNM:A0", "SNM:A2", "zz"))


def test_an_id_keeps_the_latest_time_any_block_gives_it() -> None:
    """A forged block read back early, listing a genuine id at time 1, must not have it pruned: the id stays as
    long as its genuine time keeps it. A block of any other shape is skipped, not a crash of the slot's load."""
    head_ms = 30 * DAY_MS
    window = ReplayWindow(7)
    window.advance(head_ms)
    forged = orjson.dumps({"entries": [{"kind": "ALERT", "alert_id": "SENAN:3", "ingress_ms": 1}]})
    genuine = orjson.dumps({"entries": [{"kind": "ALERT", "alert_id": "SENAN:3", "ingress_ms": head_ms}]})
    remember_block(window, forged, head_ms)
    remember_block(window, genuine, head_ms)
    assert window.prune() == 0 and "SENAN:3" in window
    for odd in (b'{"entries": 5}', b'{"entries": {"a": 1}}', b"[1, 2]", b"not json", b'{"entries": [5, null]}'):
        assert remember_block(window, odd, head_ms) == (None, None)
