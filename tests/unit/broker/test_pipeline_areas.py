"""An alert's area labels (``location.province``, ``location.border_sector``) are held to the policy's areas (rule
``unknown.area``, ``policies.decide``): through the real pipeline and the shipped policy's decisions and views, any
other value, shaped as a code or not, reaches no partner."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from worker_fakes import counted

from broker.keystore import Keystore
from broker.lifecycle import AlertState
from broker.pipeline import WITHHOLD, Originator, Outcome, Pipeline
from broker.service import PolicyAdapter
from broker.topology import Slots, TopicNames, key_partition
from policies import alert_reference, decide, load_policy_set
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec

REF_KEY = b"unit-test-alert-reference-key-32b"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
CODEC = alert_codec()
POLICY = load_policy_set()  # the shipped policy and its areas.yaml
AREAS = POLICY.areas
SLOTS = Slots(("SENAFRONT", "SENAN", "SNM"), 3, TopicNames("t"))
ORIGINATORS = {a: Originator.of(a, "PAN", "PAN") for a in SLOTS.agencies}
FREE_TEXT = "JUAN_PEREZ_PA1234567"  # a name and a passport number, written as a code


class _Adapter(PolicyAdapter):
    """The broker's policy port over the shipped policy, with test keys in place of the keystore's."""

    def _pseudonym_key(self, agreement: str) -> bytes:
        return b"unit-test-pseudonym-key-32-bytes"

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class _Sealer:
    """Seals nothing: the plaintext is the record, so a test can read what the partner would."""

    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return plaintext


def _pipeline(tmp_path: Path) -> Pipeline:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return key.split(":", 1)[0], NOW_MS

    adapter = _Adapter(POLICY, Keystore(tmp_path / "keys"), SLOTS.names)
    pipe = counted(Pipeline(adapter, CODEC, {p: _Sealer() for p in POLICY.partners},  # type: ignore[arg-type]
                            origin, SLOTS, originators=ORIGINATORS, classifications=POLICY.scale,
                            areas=AREAS.border_sectors))
    pipe.feed_counts = {topic: 3 for _, topic in adapter.partners()}
    return pipe


def _delivered() -> dict[str, Any]:
    """A generated alert naming a known province and border sector that the shipped policy delivers to a partner,
    as it stands: with a position the labels must agree with, so it is dropped (the labels alone decide)."""
    for alert in generate(300, seed=5, now=NOW):
        location = alert.get("location") or {}
        if alert["agency"] not in SLOTS.agencies or location.get("border_sector") is None:
            continue
        alert = copy.deepcopy(alert)
        alert["location"].update(latitude=None, longitude=None)
        if any(decide(alert, p, POLICY, NOW).delivers for p in POLICY.partners):
            return alert
    raise AssertionError("no generated alert with a known area is delivered under the shipped policy")


def _record(alert: dict[str, Any]) -> Record:
    key = alert["alert_id"].encode()
    return Record(SLOTS.names.ingress(alert["agency"]), key_partition(key, 3), 7, key, CODEC.encode(alert), (),
                  NOW_MS)


def _process(pipe: Pipeline, alert: dict[str, Any], prior: AlertState | None = None) -> Outcome:
    return pipe.process(_record(alert), set(), NOW, lambda alert_id: prior)


@pytest.mark.parametrize("name", ["border_sector", "province"])
def test_an_area_label_the_policy_does_not_know_reaches_no_partner(tmp_path: Path, name: str) -> None:
    """A province or border sector shaped as a code but not one of the policy's areas is withheld from every
    partner, rule ``unknown.area``, the reason naming the field and never the value; the audit records no sector of
    it."""
    alert = _delivered()
    alert["location"][name] = FREE_TEXT
    out = _process(_pipeline(tmp_path), alert)
    assert out.dead_reason is None and out.feeds == []
    decisions = out.entry["decisions"]
    assert {d["decision"] for d in decisions} == {WITHHOLD} and len(decisions) == len(POLICY.partners)
    assert all("unknown.area" in d["rules"] for d in decisions)
    assert all(any(f"location.{name} is not a" in r for r in d["reasons"]) for d in decisions)
    assert FREE_TEXT not in str(out.entry)
    if name == "border_sector":
        assert out.entry["sector"] == "(not an area)"


def test_known_area_labels_are_delivered_as_they_are(tmp_path: Path) -> None:
    """An alert naming a province and a border sector of the policy's areas goes to the partners the policy
    delivers to; a view that keeps the labels keeps them as written, and the audit records the sector."""
    alert = _delivered()
    out = _process(_pipeline(tmp_path), alert)
    assert out.feeds
    location = alert["location"]
    for feed in out.feeds:
        kept = CODEC.decode(feed.value).get("location") or {}
        assert kept.get("province") in (location["province"], None)
        assert kept.get("border_sector") in (location["border_sector"], None)
    assert out.entry["sector"] == location["border_sector"]
    assert all("unknown.area" not in d["rules"] for d in out.entry["decisions"])


def test_a_later_version_naming_an_unknown_area_pulls_back_what_partners_hold(tmp_path: Path) -> None:
    """A later version whose sector the policy does not know is withheld as any other withhold: a partner holding
    an earlier version is sent a recall notice, so it does not keep a version this one corrects."""
    pipe = _pipeline(tmp_path)
    first = _delivered()
    out = _process(pipe, first)
    assert out.state is not None and out.state.holders
    holders = set(out.state.holders)
    later = {**copy.deepcopy(first), "version": 2, "lifecycle": {"action": "UPDATE", "reason": None, "partners": []}}
    later["location"]["border_sector"] = FREE_TEXT
    again = _process(pipe, later, out.state)
    by = {d["partner"]: d["decision"] for d in again.entry["decisions"]}
    assert {p for p, d in by.items() if d == "RECALL"} == holders
    assert {d for p, d in by.items() if p not in holders} <= {WITHHOLD}
    assert FREE_TEXT.encode() not in b"".join(f.value for f in again.feeds)


def test_every_synthetic_alert_names_only_the_policys_areas() -> None:
    """The demo's and the tests' generated alerts name only provinces and sectors of the shipped areas, so holding
    labels to them changes no decision a test counts."""
    for alert in generate(500, seed=11, now=NOW):
        location = alert.get("location") or {}
        assert location.get("province") in AREAS.provinces | {None}
        assert location.get("border_sector") in AREAS.border_sectors | {None}
