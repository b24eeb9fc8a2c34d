"""The pure pipeline: fail closed at delivery, the replay window's stale check, and what the audit entry holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.synthetic import generate
from broker.kafka_io import Record
from broker.pipeline import DAY_MS, MAX_FUTURE_SKEW_MS, WITHHOLD, Pipeline
from broker.topics import Slots, TopicNames
from schemas import alert_codec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SENAN", "SNM"), 3, TopicNames("t"))


@dataclass(frozen=True)
class FakeDecision:
    partner: str
    outcome: str
    agreement: str | None = "AGR"
    rules: Sequence[str] = ("AGR.r1",)
    reasons: Sequence[str] = ("because",)
    redactions: Sequence[tuple[str, str]] = ()
    policy_version: str = "v1"
    audit: dict[str, Any] = field(default_factory=dict)


class FakePolicy:
    """Delivers everything; like the real adapter, hands out one shared decision per partner."""

    version = "v1"

    def __init__(self) -> None:
        self.shared: dict[str, FakeDecision] = {}

    def partners(self) -> list[tuple[str, str]]:
        return [("COL", "t.feed.COL"), ("USA", "t.feed.USA")]

    def decide(self, alert: dict[str, Any], partner: str, now: datetime) -> FakeDecision:
        if partner not in self.shared:
            audit = {"partner": partner, "decision": "DELIVER", "agreement": "AGR", "rules": ["AGR.r1"],
                     "reasons": ["because"], "redacted": [], "policy_version": "v1"}
            self.shared[partner] = FakeDecision(partner, "DELIVER", audit=audit)
        return self.shared[partner]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime) -> list[FakeDecision]:
        return [self.decide(alert, p, now) for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert


class FakeSealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed:" + plaintext[:4]


def _pipeline(sealers: dict[str, Any]) -> Pipeline:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return key.split(":", 1)[0], int(dict(headers)["published"])

    return Pipeline(FakePolicy(), alert_codec(), sealers, origin, SLOTS, replay_window_days=7)  # type: ignore[arg-type]


def _record(published_ms: int, appended_ms: int = NOW_MS) -> tuple[Record, dict[str, Any]]:
    alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
    value = alert_codec().encode(alert)
    headers = (("published", str(published_ms).encode()),)
    return Record("t.ingress.SNM", 0, 7, alert["alert_id"].encode(), value, headers, appended_ms), alert


def test_a_partner_without_a_key_is_withheld_not_sent_in_clear() -> None:
    """The policy says deliver, but no sealer exists for USA: USA is withheld with the reason; COL is delivered."""
    record, alert = _record(NOW_MS)
    out = _pipeline({"COL": FakeSealer()}).process(record, set(), NOW)
    assert [f.topic for f in out.feeds] == ["t.feed.COL"]
    assert dict(out.decisions) == {"COL": "DELIVER", "USA": WITHHOLD}
    usa = next(d for d in out.entry["decisions"] if d["partner"] == "USA")
    assert usa["decision"] == WITHHOLD and "withheld at delivery: CryptoError" in usa["reasons"][-1]
    assert "feed" not in usa
    assert out.entry["alert_id"] == alert["alert_id"] and out.seen_id == alert["alert_id"]


def test_shared_audit_fields_are_not_changed_by_a_delivery_failure() -> None:
    """The policy's shared audit fields stay as they were when a delivery fails (no sealer at all here)."""
    record, _ = _record(NOW_MS)
    pipe = _pipeline({})
    first = pipe.process(record, set(), NOW)
    assert all(d["decision"] == WITHHOLD for d in first.entry["decisions"])
    shared = pipe.policy.shared  # type: ignore[attr-defined]
    assert {p: d.audit["decision"] for p, d in shared.items()} == {"COL": "DELIVER", "USA": "DELIVER"}
    assert all(len(d.audit["reasons"]) == 1 for d in shared.values())


@pytest.mark.parametrize(("published_ms", "ok"), [
    (NOW_MS - 7 * DAY_MS, True),
    (NOW_MS - 7 * DAY_MS - 1, False),
    (NOW_MS + MAX_FUTURE_SKEW_MS, True),
    (NOW_MS + MAX_FUTURE_SKEW_MS + 1, False),
])
def test_publication_time_must_fall_within_the_replay_window(published_ms: int, ok: bool) -> None:
    """A record published longer ago than the window (or ahead of Kafka's clock by more than the skew) is stale."""
    record, _ = _record(published_ms)
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert (out.dead_reason is None) is ok
    if not ok:
        assert out.dead_reason == "stale" and out.entry["kind"] == "DEAD_LETTER" and not out.feeds


def test_an_id_in_the_window_is_a_replay() -> None:
    record, alert = _record(NOW_MS)
    out = _pipeline({"COL": FakeSealer()}).process(record, {alert["alert_id"]}, NOW)
    assert out.dead_reason == "replay" and not out.feeds and out.seen_id is None
