"""An alert's area labels (``location.province``, ``location.border_sector``) are held to the policy's areas: any
other value, shaped as a code or not, reaches no partner."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from worker_fakes import counted

from broker.pipeline import WITHHOLD, Originator, Pipeline
from broker.topology import Slots, TopicNames, key_partition
from policies import alert_reference, load_areas, recall_notice
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec

REF_KEY = b"unit-test-alert-reference-key-32b"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SENAFRONT", "SENAN", "SNM"), 3, TopicNames("t"))
ORIGINATORS = {a: Originator.of(a, "PAN", "PAN") for a in SLOTS.agencies}
AREAS = load_areas()  # the shipped policy's outlines
FREE_TEXT = "JUAN_PEREZ_PA1234567"  # a name and a passport number, written as a code


class _Decision:
    def __init__(self, partner: str, outcome: str) -> None:
        self.partner, self.outcome, self.policy_version = partner, outcome, "v1"
        self.agreement = "AGR"
        self.rules: Sequence[str] = ("AGR.r1",) if outcome != WITHHOLD else ("caveat.ORCON",)
        self.reasons: Sequence[str] = ("because",) if outcome != WITHHOLD else ("ORCON withholds",)
        self.redactions: Sequence[tuple[str, str]] = ()
        self.audit = {"partner": partner, "decision": outcome, "agreement": "AGR", "rules": list(self.rules),
                      "reasons": list(self.reasons), "redacted": [], "policy_version": "v1",
                      **({"onward_sharing": False} if outcome != WITHHOLD else {})}


class _Policy:
    """Delivers to COL and USA, withholds from CRI (a caveat): what the policy says, before the areas."""

    version = "v1"

    def partners(self) -> list[tuple[str, str]]:
        return [("COL", "t.feed.COL"), ("CRI", "t.feed.CRI"), ("USA", "t.feed.USA")]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[_Decision]:
        return [_Decision(p, WITHHOLD if p == "CRI" else "DELIVER") for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert  # keeps the location whole, as an agreement keeping it does

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)

    def notice(self, alert: dict[str, Any], version: int, reason: str | None) -> dict[str, Any]:
        return recall_notice(alert, version, reason)

    def recall_ack_hours(self, partner: str) -> int:
        return 24


class _Sealer:
    """Seals nothing: the plaintext is the record, so a test can read what the partner would."""

    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return plaintext


def _pipeline() -> Pipeline:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return key.split(":", 1)[0], NOW_MS

    pipe = counted(Pipeline(_Policy(), alert_codec(), {p: _Sealer() for p in ("COL", "CRI", "USA")},  # type: ignore[arg-type]
                            origin, SLOTS, originators=ORIGINATORS, areas=AREAS.border_sectors,
                            provinces=AREAS.provinces))
    pipe.feed_counts = {f"t.feed.{p}": 3 for p in ("COL", "CRI", "USA")}
    return pipe


def _border_event(**location: Any) -> dict[str, Any]:
    alert = next(a for a in generate(60, seed=5, now=NOW) if a["alert_type"] == "BORDER_EVENT")
    alert = copy.deepcopy(alert)
    alert["location"].update(location)
    return alert


def _record(alert: dict[str, Any]) -> Record:
    key = alert["alert_id"].encode()
    return Record(f"t.ingress.{alert['agency']}", key_partition(key, 3), 7, key, alert_codec().encode(alert),
                  (), NOW_MS)


@pytest.mark.parametrize("name", ["border_sector", "province"])
def test_an_area_label_the_policy_does_not_know_reaches_no_partner(name: str) -> None:
    """A province or border sector shaped as a code but not one of the policy's areas is withheld from every
    partner, rule ``unknown.area``, the reason naming the field and never the value; the audit records no sector of
    it. (Delivered as written before: the agency's text in a field meant for a vocabulary code.)"""
    out = _pipeline().process(_record(_border_event(**{name: FREE_TEXT})), set(), NOW)
    assert out.dead_reason is None and out.feeds == []
    decisions = out.entry["decisions"]
    assert [d["decision"] for d in decisions] == [WITHHOLD] * 3
    assert all("unknown.area" in d["rules"] for d in decisions)
    assert all(f"location.{name} is not a" in d["reasons"][-1] for d in decisions)
    assert FREE_TEXT not in str(out.entry)
    assert out.decisions == [("COL", WITHHOLD), ("CRI", WITHHOLD), ("USA", WITHHOLD)]
    if name == "border_sector":
        assert out.entry["sector"] == "(not an area)"


def test_known_area_labels_are_delivered_as_they_are() -> None:
    """A province and a border sector of the policy's areas go to the partners the policy delivers to, in their
    views as written; the audit records the sector."""
    out = _pipeline().process(_record(_border_event(province="DARIEN", border_sector="DARIEN_BAJO_CHIQUITO")),
                              set(), NOW)
    assert sorted(f.topic for f in out.feeds) == ["t.feed.COL", "t.feed.USA"]
    for feed in out.feeds:
        location = alert_codec().decode(feed.value)["location"]
        assert (location["province"], location["border_sector"]) == ("DARIEN", "DARIEN_BAJO_CHIQUITO")
    assert out.entry["sector"] == "DARIEN_BAJO_CHIQUITO"
    assert all("unknown.area" not in d["rules"] for d in out.entry["decisions"])


def test_a_withhold_keeps_the_policys_rules_and_reasons_and_a_delivery_gives_way() -> None:
    """Where the policy withheld already, its rules and reasons stay, the area's added after them; where it would
    have delivered, the withhold names the agreement but none of the delivery's rules, and carries no redactions
    nor onward-sharing flag."""
    out = _pipeline().process(_record(_border_event(province=FREE_TEXT, border_sector=FREE_TEXT)), set(), NOW)
    by = {d["partner"]: d for d in out.entry["decisions"]}
    assert by["CRI"]["rules"] == ["caveat.ORCON", "unknown.area"]
    assert by["CRI"]["reasons"][0] == "ORCON withholds"
    assert by["COL"]["rules"] == ["unknown.area"] and by["COL"]["agreement"] == "AGR"
    assert "onward_sharing" not in by["COL"] and by["COL"]["redacted"] == []
    assert ("location.province is not a province or comarca of the policy's areas and location.border_sector is "
            "not a border sector of the policy's areas") in by["COL"]["reasons"][0]


def test_a_later_version_naming_an_unknown_area_pulls_back_what_partners_hold() -> None:
    """A later version whose sector the policy does not know is withheld as any other withhold: a partner holding
    an earlier version is sent a recall notice, so it does not keep a version this one corrects."""
    pipe = _pipeline()
    first = _border_event(province="DARIEN", border_sector="DARIEN_BAJO_CHIQUITO")
    out = pipe.process(_record(first), set(), NOW)
    assert out.state is not None and set(out.state.holders) == {"COL", "USA"}
    later = {**copy.deepcopy(first), "version": 2,
             "lifecycle": {"action": "UPDATE", "reason": None, "partners": []}}
    later["location"]["border_sector"] = FREE_TEXT
    again = pipe.process(_record(later), set(), NOW, lambda alert_id: out.state)
    by = {d["partner"]: d["decision"] for d in again.entry["decisions"]}
    assert by == {"COL": "RECALL", "CRI": WITHHOLD, "USA": "RECALL"}
    assert FREE_TEXT.encode() not in b"".join(f.value for f in again.feeds)


def test_every_synthetic_alert_names_only_the_policys_areas() -> None:
    """The demo's and the tests' generated alerts name only provinces and sectors of the shipped areas, so holding
    labels to them changes no decision a test counts."""
    for alert in generate(500, seed=11, now=NOW):
        location = alert.get("location") or {}
        assert location.get("province") in AREAS.provinces | {None}
        assert location.get("border_sector") in AREAS.border_sectors | {None}
