"""`puente recall|consent|reclassify` judge each copy on the ingress topic by the broker's own version and lifecycle
rule (``broker.lifecycle.lifecycle_problem``): a copy the broker refuses for either is never the latest, never a
recall, and never blocks a change of the alert partners hold."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import adapters.lifecycle as lifecycle
from adapters.ledger import admissible
from adapters.lifecycle import Change, Found, collect, next_of, next_version, own_mac_lookup
from broker.crypto import sign_ingress
from broker.kafka import KafkaConnection
from broker.keystore import Keystore
from broker.lifecycle import MAX_VERSION, lifecycle_problem
from broker.pipeline import Originator
from puente.errors import ConfigError
from puente.settings import PuenteSettings
from puente.wire import Record
from schemas import alert_codec, bounds
from tests.unit.adapters.test_lifecycle import HIT, stand_ins

SNM = Originator.of("SNM", "PAN", "PAN")
UPDATE: dict[str, Any] = {"action": "UPDATE", "reason": None, "partners": []}
RECALL: dict[str, Any] = {"action": "RECALL", "reason": "ERROR", "partners": []}


@pytest.fixture
def first(one: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """SNM's alert for HIT, version 1, as the broker would decode it."""
    codec = alert_codec()
    return codec.decode(codec.encode(one("snm", json.dumps(HIT, ensure_ascii=False).encode())))


def _as(alert: dict[str, Any], version: int, life: dict[str, Any] | None = None, **changed: Any) -> dict[str, Any]:
    out = copy.deepcopy(alert)
    out.update(version=version, lifecycle=life, **changed)
    return out


class _Topic:
    """SNM's ingress topic (one partition), every copy MACed with SNM's own key, read back as ``puente recall`` does."""

    def __init__(self, tmp_path: Path) -> None:
        sites = Keystore.provision(tmp_path / "keys", partners=[], agencies=["SNM"], agreements=[],
                                   generation="2026a", now=datetime(2026, 1, 5, tzinfo=UTC))
        self.keystore = sites.agencies["SNM"]
        self.mac = self.keystore.load_agency_mac("SNM")
        self.cfg = PuenteSettings(keys=tmp_path / "keys")

    def read(self, *alerts: dict[str, Any]) -> Found:
        codec, found = alert_codec(), Found(partitions=1)
        lookup = own_mac_lookup(self.keystore, "SNM")
        for offset, alert in enumerate(alerts):
            value = codec.encode(alert)
            headers = sign_ingress("SNM", self.mac.key_id, self.mac, value, alert["alert_id"])
            rec = Record("t.ingress.SNM", 0, offset, alert["alert_id"].encode(), value, tuple(headers), 0)
            collect(found, rec, alert["alert_id"], "SNM", lookup, codec, SNM)
        return found


@pytest.mark.parametrize("version", [2_000_000, MAX_VERSION])
async def test_a_copy_at_a_version_the_broker_refuses_does_not_block_a_recall(
        tmp_path: Path, first: dict[str, Any], monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """v1 delivered, then a signed content copy at 2,000,000 (out of range) or at 1,000,000 (kept for a recall): the
    broker dead-lettered it, so the recall and a consent are built on v1, as version 2."""
    bogus = _as(first, version, UPDATE)
    assert lifecycle_problem(bogus) is not None  # the broker refuses it whatever it holds
    topic = _Topic(tmp_path)
    found = topic.read(first, bogus)
    assert (found.invalid, found.rank) == (1, (1, 0))
    assert next_of(found, Change("CONSENT", partners=("USA",)))["version"] == 2
    published = stand_ins(monkeypatch, found)
    done = await lifecycle.change_alert(topic.cfg, KafkaConnection(bootstrap="unused:9092"), first["alert_id"],
                                        Change("RECALL", reason="ERROR"))
    assert (done.action, done.version) == ("RECALL", 2)
    assert [(a["version"], a["lifecycle"]["action"]) for a in published] == [(2, "RECALL")]


@pytest.mark.parametrize("version", [0, -3])
def test_a_copy_at_version_zero_or_below_is_refused_not_ranked_as_version_1(tmp_path: Path, first: dict[str, Any],
                                                                           version: int) -> None:
    """A signed copy at version 0 (or below) with other content is one the broker refuses, not a second version 1:
    no two copies differ, and a consent or a reclassification is built on v1."""
    other = _as(first, version, summary=(first.get("summary") or "") + " otra")
    found = _Topic(tmp_path).read(first, other)
    assert found.invalid == 1 and found.rank == (1, 0) and found.differs is None
    assert next_of(found, Change("RECLASSIFY", markings={"classification": "CONFIDENCIAL"}))["version"] == 2


@pytest.mark.parametrize("version", [1, 0, 2_000_000])
def test_a_recall_the_broker_refused_does_not_stop_a_consent(tmp_path: Path, first: dict[str, Any],
                                                              version: int) -> None:
    """A signed recall at version 1 (a first publication has no lifecycle), 0 or 2,000,000: the broker refused it in
    every state, so it recalled nothing, and a consent is still built on v1."""
    bogus = _as(first, version, RECALL)
    assert lifecycle_problem(bogus) is not None
    found = _Topic(tmp_path).read(first, bogus)
    assert found.invalid == 1 and found.recall is None
    consent = next_of(found, Change("CONSENT", partners=("USA",)))
    assert (consent["version"], consent["lifecycle"]["action"]) == (2, "CONSENT")


async def test_only_copies_the_broker_refuses_is_nothing_to_change(tmp_path: Path, first: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every copy of the id has a version the broker refuses: nothing is published, and the one-line refusal says
    so, with no content of the copies."""
    topic = _Topic(tmp_path)
    found = topic.read(_as(first, 0), _as(first, 2_000_000, UPDATE))
    published = stand_ins(monkeypatch, found)
    with pytest.raises(ConfigError, match="version or lifecycle the broker refuses") as refused:
        await lifecycle.change_alert(topic.cfg, KafkaConnection(bootstrap="unused:9092"), first["alert_id"],
                                     Change("RECALL", reason="ERROR"))
    message = str(refused.value)
    assert "\n" not in message and "2 record(s)" in message and "2,000,000" not in message and not published


@pytest.mark.parametrize("version", [0, 2_000_000])
def test_no_next_version_is_made_from_a_version_the_broker_refuses(first: dict[str, Any], version: int) -> None:
    """``next_version`` itself takes no version outside the broker's range as the one to build on."""
    with pytest.raises(ConfigError, match="not one the broker takes"):
        next_version(_as(first, version, UPDATE if version > 1 else None), Change("RECALL", reason="ERROR"))


def test_a_consent_past_its_bound_is_judged_as_the_broker_judges_it(tmp_path: Path, first: dict[str, Any]) -> None:
    """A v2 consent whose originator_consent is past its bound (decoded empty) is one the broker takes (and
    withdraws): its lists are not judged by what is left of them, so a recall is built on it, as version 3."""
    consent = next_version(first, Change("CONSENT", partners=("USA",)))
    consent["markings"]["originator_consent"] = [f"P{i}" for i in range(bounds.MAX_MARKING_ENTRIES + 1)]
    consent["lifecycle"]["partners"] = ["P0"]
    found = _Topic(tmp_path).read(first, consent)
    assert found.invalid == 0 and found.rank == (2, 1) and found.past_bound
    assert next_of(found, Change("RECALL", reason="LEGAL"))["version"] == 3


async def test_a_copy_whose_lifecycle_breaks_a_rule_takes_only_a_recall(tmp_path: Path, first: dict[str, Any],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed v2 that does not say what it does: the broker refused it, or, with holders, took it as a change no one
    can tell and withdrew the alert. It stays the latest, so a recall is built above it; a consent built on it would
    release its content again, so it is refused in one line naming the rule, and nothing is published."""
    topic = _Topic(tmp_path)
    found = topic.read(first, _as(first, 2))
    assert (found.invalid, found.rank) == (0, (2, 1))
    published = stand_ins(monkeypatch, found)
    conn = KafkaConnection(bootstrap="unused:9092")
    broken = r"version 2 on \S+ breaks a rule of its lifecycle .*lifecycle\.action"
    with pytest.raises(ConfigError, match=broken) as refused:
        await lifecycle.change_alert(topic.cfg, conn, first["alert_id"], Change("CONSENT", partners=("USA",)))
    assert "\n" not in str(refused.value) and not published
    done = await lifecycle.change_alert(topic.cfg, conn, first["alert_id"], Change("RECALL", reason="ERROR"))
    assert (done.action, done.version) == ("RECALL", 3)


def test_a_copy_refused_in_every_state_is_one_the_brokers_rule_refuses(first: dict[str, Any]) -> None:
    """``admissible`` refuses only copies ``lifecycle_problem`` refuses, and every copy it finds a version problem in,
    or a lifecycle problem in a first version; a later version it may take as a change (2 to 999,999, a recall
    without its reason too: ``test_lifecycle_reasonless``) stays a candidate."""
    refused = (_as(first, 0), _as(first, -1), _as(first, MAX_VERSION + 1, UPDATE), _as(first, MAX_VERSION, UPDATE),
               _as(first, 1, UPDATE), _as(first, 1, RECALL), _as(first, 0, RECALL), _as(first, 2_000_000, RECALL))
    for alert in refused:
        assert lifecycle_problem(alert) is not None and not admissible(alert), alert["version"]
    taken = (first, _as(first, 2, UPDATE), _as(first, MAX_VERSION, RECALL), _as(first, 2), _as(first, 999_999))
    for alert in taken:
        assert admissible(alert), alert["version"]
    assert not admissible({k: v for k, v in first.items() if k != "version"})
