"""The worker's counters: decisions, dead letters and the latency histogram of committed batches."""

from __future__ import annotations

import bisect
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import broker.metrics as metrics_module
from broker.metrics import _BUCKETS_MS, Metrics

NOW_S = 1_800_000_000.0


def _outcome(decisions: list[tuple[str, str]], dead: str | None = None) -> Any:
    return SimpleNamespace(decisions=decisions, dead_reason=dead)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.floats(min_value=-50, max_value=20_000, allow_nan=False), max_size=60), max_size=4))
def test_latency_buckets_match_one_bisection_per_alert(batches: list[list[float]]) -> None:
    m = Metrics()
    expected = [0] * (len(_BUCKETS_MS) + 1)
    total = 0.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metrics_module.time, "time", lambda: NOW_S)
        for latencies in batches:
            stamps = [int(NOW_S * 1000 - lat) for lat in latencies]
            m.count_batch([_outcome([]) for _ in stamps], stamps)
            for ts in stamps:
                latency = max(0.0, NOW_S * 1000 - ts)
                expected[bisect.bisect_left(_BUCKETS_MS, latency)] += 1
                total += latency
    assert m.latency_buckets == expected
    assert m.latency_sum_ms == pytest.approx(total)
    assert m.inputs == sum(len(b) for b in batches)


def test_decisions_and_dead_letters_are_counted_and_rendered() -> None:
    m = Metrics()
    m.count_batch([_outcome([("COL", "DELIVER"), ("USA", "WITHHOLD")]), _outcome([], "replay"),
                   _outcome([("COL", "DELIVER"), ("USA", "DELIVER_REDACTED")])], [1, 2, 3])
    m.count(_outcome([], "stale"), 4)
    assert m.decisions == {("COL", "DELIVER"): 2, ("USA", "WITHHOLD"): 1, ("USA", "DELIVER_REDACTED"): 1}
    assert m.dead_letters == {"replay": 1, "stale": 1}
    text = m.render()
    assert 'partner="COL"' in text and 'reason="replay"' in text
    assert "puente_latency_ms_count 4" in text
