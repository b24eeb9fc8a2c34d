"""A feed made anew with fewer partitions is read for once per recorded count: once a fresh read confirms the feed
has fewer than a state recorded, later states recording that count take the count now without reading Kafka's
metadata again, until the feed's count changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from worker_fakes import counted

from broker.lifecycle import AlertState
from broker.pipeline import FeedCountStale, Originator, Pipeline
from broker.topology import Slots, TopicNames, key_partition
from policies import alert_reference
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec

REF_KEY = b"unit-test-alert-reference-key-32b"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SNM",), 3, TopicNames("t"))
FEED = "t.feed.COL"


@dataclass(frozen=True)
class _Deliver:
    partner: str
    outcome: str = "DELIVER"
    agreement: str | None = "AGR"
    rules: Sequence[str] = ("AGR.r1",)
    reasons: Sequence[str] = ("because",)
    redactions: Sequence[tuple[str, str]] = ()
    policy_version: str = "v1"
    audit: dict[str, Any] = field(default_factory=dict)


class _Policy:
    version = "v1"

    def partners(self) -> list[tuple[str, str]]:
        return [("COL", FEED)]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[_Deliver]:
        return [_Deliver(p, audit={"partner": p, "decision": "DELIVER", "reasons": ["because"]}) for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class _Sealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed"


def _pipeline() -> Pipeline:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return "SNM", int(dict(headers)["published"])

    return counted(Pipeline(_Policy(), alert_codec(), {"COL": _Sealer()}, origin, SLOTS,  # type: ignore[arg-type]
                            replay_window_days=7, originators={"SNM": Originator.of("SNM", "PAN", "PAN")}), 3)


_ALERTS = [a for a in generate(60, seed=5, now=NOW) if a["agency"] == "SNM" and a.get("lifecycle") is None]


def _update(i: int, recorded: int) -> tuple[Record, Any]:
    """Version 2 of alert ``i``, whose state records COL fed version 1 under ``recorded`` partitions."""
    alert = {**_ALERTS[i], "version": 2, "lifecycle": {"action": "UPDATE", "reason": None, "partners": []}}
    key = alert["alert_id"].encode()
    record = Record("t.ingress.SNM", key_partition(key, 3), i, key, alert_codec().encode(alert),
                    (("published", str(NOW_MS - 1000).encode()),), NOW_MS)
    state = AlertState(1, {"COL": 1}, originator="SNM", counts={"COL": recorded}, alert_type=alert["alert_type"],
                       consent=frozenset(alert["markings"]["originator_consent"]))
    return record, lambda alert_id: state if alert_id == alert["alert_id"] else None


def _sent_under(pipe: Pipeline, i: int, recorded: int) -> int:
    record, states = _update(i, recorded)
    [out] = pipe.process(record, set(), NOW, states).feeds
    return out.partitions


def _stale(pipe: Pipeline, i: int, recorded: int) -> None:
    record, states = _update(i, recorded)
    with pytest.raises(FeedCountStale):
        pipe.process(record, set(), NOW, states)


def test_a_count_confirmed_above_the_feeds_is_not_read_for_again() -> None:
    """The first state recording 6 partitions over a feed of 3 is read for (FeedCountStale), and the fresh read
    confirms 3: the next alerts recording 6 go under 3 at once, with no FeedCountStale and so no metadata reads."""
    pipe = _pipeline()
    _stale(pipe, 0, 6)
    record, states = _update(0, 6)
    [out] = pipe.process_recounted(record, set(), NOW, states, {FEED}).feeds
    assert out.partitions == 3
    assert [_sent_under(pipe, i, 6) for i in (1, 2, 3)] == [3, 3, 3]


def test_another_count_or_a_changed_feed_is_read_for_again() -> None:
    """What was confirmed holds only for that count and that feed count: a state recording 5 (partitions added
    since, under another worker, say) is read for, and so is one recording 6 once the worker read the feed anew as
    4; a count at or below the feed's is taken as recorded, as before."""
    pipe = _pipeline()
    record, states = _update(0, 6)
    pipe.process_recounted(record, set(), NOW, states, {FEED})
    _stale(pipe, 1, 5)
    assert _sent_under(pipe, 2, 2) == 2
    pipe.feed_counts[FEED] = 4
    _stale(pipe, 3, 6)
    assert _sent_under(pipe, 4, 4) == 4
