"""An officer's change to an alert of a unit COMBIFRON relays, as `puente recall|consent|reclassify` builds it from
the agency's ingress topic: built on, and naming, the alert's own unit whatever other units' copies of the id that
topic holds, and taken by the broker; refused in one line when no copy can be built on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import adapters.lifecycle as lifecycle
from adapters.lifecycle import Change
from broker.crypto import sign_ingress
from broker.kafka import KafkaConnection
from broker.keystore import Keystore
from puente.errors import ConfigError
from puente.settings import PuenteSettings
from puente.wire import Record
from schemas import alert_codec
from tests.unit.adapters.test_lifecycle import publishing
from tests.unit.broker.test_lifecycle import _headers, _next
from tests.unit.broker.test_lifecycle_originator import Relay, _as, _colombian

ALERT_ID = "COMBIFRON:COL-ARC-2026-00412"


class _Topic:
    """COMBIFRON's ingress topic as ``puente recall`` reads it back, every copy MACed with the agency's own key (the
    units share it), and what the command publishes."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        sites = Keystore.provision(tmp_path / "keys", partners=[], agencies=["COMBIFRON"], agreements=[],
                                   generation="2026a", now=datetime(2026, 1, 5, tzinfo=UTC))
        self.mac = sites.agencies["COMBIFRON"].load_agency_mac("COMBIFRON")
        self.cfg = PuenteSettings(keys=tmp_path / "keys")
        self.records: list[Record] = []
        self.published: list[dict[str, Any]] = []
        topic = self

        async def scan(_conn: Any, _topic: str, keep: Callable[[Record], Any],
                       sized: Callable[[int], Any] | None = None) -> None:
            if sized is not None:
                sized(1)  # one partition: every copy is in its key's
            for rec in topic.records:
                keep(rec)

        def publish(alerts: list[dict[str, Any]]) -> None:
            topic.published.extend(alerts)
            topic.put(*alerts)

        monkeypatch.setattr(lifecycle, "scan", scan)
        publishing(monkeypatch, publish)

    def put(self, *alerts: dict[str, Any]) -> None:
        codec = alert_codec()
        for alert in alerts:
            value = codec.encode(alert)
            headers = sign_ingress("COMBIFRON", self.mac.key_id, self.mac, value, alert["alert_id"])
            self.records.append(Record("t.ingress.COMBIFRON", 0, len(self.records), alert["alert_id"].encode(),
                                       value, tuple(headers), 0))

    async def change(self, change: Change) -> dict[str, Any]:
        await lifecycle.change_alert(self.cfg, KafkaConnection(bootstrap="unused:9092"), ALERT_ID, change)
        return self.published[-1]


async def test_a_recall_names_the_alerts_unit_not_another_units_earlier_copy(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """DIJIN's copy of ARC's id comes first on the topic (the broker refused it): the officer's recall names ARC,
    the unit whose series the id is in, and the broker takes it and pulls the alert back from COL."""
    topic, relay = _Topic(tmp_path, monkeypatch), Relay()
    arc = _colombian()
    intruder = _as(arc, "DIJIN")
    topic.put(intruder, arc)
    assert relay.send(intruder).dead_reason == "originator"
    assert _headers(relay.send(arc)) == {"COL": "DELIVER"}
    recall = await topic.change(Change("RECALL", reason="ERROR"))
    assert recall["markings"]["originator"]["agency"] == "COL-ARC"
    out = relay.send(recall)
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL"}


@pytest.mark.parametrize("change", [Change("CONSENT", partners=("USA",)),
                                    Change("RECLASSIFY", markings={"classification": "SECRETO"})])
async def test_a_consent_or_reclassification_is_built_on_the_units_own_latest_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Change) -> None:
    """The latest copy on the topic is DIJIN's version 2 of ARC's alert (refused): the change is built on ARC's own
    version 1, names ARC, and the broker takes it (a reclassification to SECRETO pulls the alert back from COL)."""
    topic, relay = _Topic(tmp_path, monkeypatch), Relay()
    arc = _colombian()
    intruder = _as(_next(arc, "UPDATE"), "DIJIN")
    topic.put(arc, intruder)
    assert _headers(relay.send(arc)) == {"COL": "DELIVER"}
    assert relay.send(intruder).dead_reason == "originator"
    new = await topic.change(change)
    assert new["markings"]["originator"]["agency"] == "COL-ARC" and new["version"] == 2
    out = relay.send(new)
    assert out.dead_reason is None
    if change.action == "RECLASSIFY":
        assert _headers(out) == {"COL": "RECALL"}


async def test_a_change_with_only_other_units_copies_is_refused(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every copy of ARC's id on the topic names another unit: nothing the broker took to build on, so every change
    is refused in one line saying so, and nothing is published."""
    topic = _Topic(tmp_path, monkeypatch)
    topic.put(_as(_colombian(), "DIJIN"))
    for change in (Change("RECALL", reason="ERROR"), Change("CONSENT", partners=("USA",))):
        with pytest.raises(ConfigError, match="names an originator the broker refuses") as refused:
            await topic.change(change)
        assert "\n" not in str(refused.value)
    assert topic.published == []


@pytest.mark.parametrize("change", [Change("CONSENT", partners=("USA",)),
                                    Change("RECLASSIFY", markings={"classification": "SECRETO"})])
async def test_a_change_after_a_recall_is_refused_even_if_a_later_version_follows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Change) -> None:
    """ARC recalled its alert, and a producer other than Puente's then wrote a version 3: the broker refuses anything
    after a recall, so a consent or reclassification is refused, naming the recall, and nothing is published."""
    topic = _Topic(tmp_path, monkeypatch)
    arc = _colombian()
    recall = _next(arc, "RECALL", reason="ERROR")
    later = _next(recall, "UPDATE")
    topic.put(arc, recall, later)
    with pytest.raises(ConfigError, match="recalled in version 2"):
        await topic.change(change)
    assert topic.published == []
