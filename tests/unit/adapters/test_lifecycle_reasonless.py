"""A recall without its reason, numbered where a later version stands, is a copy the broker may have taken as a
withdrawal, not a recall for good: the agency's tools number the officer's next change above it, and do not call
the alert recalled for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.ledger import Verdict, admissible, recalls_for_good
from adapters.lifecycle import Change, next_of, next_version
from broker.lifecycle import MAX_VERSION, lifecycle_problem
from puente.errors import ConfigError
from schemas import alert_codec
from tests.unit.adapters.test_ledger_versions import _alerts, _copy, _keystore, _ledger, _mine
from tests.unit.adapters.test_lifecycle import HIT
from tests.unit.adapters.test_lifecycle_versions import RECALL, UPDATE, _as, _Topic

REASONLESS: dict[str, Any] = {"action": "RECALL", "reason": None, "partners": []}


@pytest.fixture
def first(one: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """SNM's alert for HIT, version 1, as the broker would decode it."""
    codec = alert_codec()
    return codec.decode(codec.encode(one("snm", json.dumps(HIT, ensure_ascii=False).encode())))


def test_a_recall_without_its_reason_is_admissible_where_a_later_version_stands(first: dict[str, Any]) -> None:
    """Numbered 2 to 999,999 the broker may take it (as a withdrawal); at 1 or 1,000,000 it refuses it in every state.
    Only a recall giving its reason is one for good."""
    for version in (2, 3, 999_999):
        alert = _as(first, version, REASONLESS)
        assert lifecycle_problem(alert) is not None and admissible(alert) and not recalls_for_good(alert), version
    for version in (1, MAX_VERSION):
        assert not admissible(_as(first, version, REASONLESS)), version
    assert recalls_for_good(_as(first, 2, RECALL)) and not recalls_for_good(_as(first, 2, UPDATE))


def test_the_officers_recall_is_numbered_above_a_recall_without_its_reason(tmp_path: Path,
                                                                            first: dict[str, Any]) -> None:
    """v1, then an agency system's recall without its reason at v2 (the broker withdrew the alert for it): `puente
    recall` builds on that copy, as version 3, which the broker takes as the recall for good; the alert is not called
    recalled for the copy, so the change is not refused as one after a recall."""
    found = _Topic(tmp_path).read(first, _as(first, 2, REASONLESS))
    assert (found.invalid, found.rank, found.recall) == (0, (2, 1), None)
    recall = next_of(found, Change("RECALL", reason="ERROR"))
    assert recall["version"] == 3 and recall["lifecycle"]["reason"] == "ERROR"
    reclassified = next_version(_as(first, 2, REASONLESS), Change("RECLASSIFY", markings={"classification": "SECRETO"}))
    assert reclassified["version"] == 3
    done = _Topic(tmp_path).read(first, _as(first, 2, REASONLESS), recall)
    assert done.recall == (3, 2)
    with pytest.raises(ConfigError, match="recalled in version 3"):
        next_of(done, Change("RECLASSIFY", markings={"classification": "SECRETO"}))


def test_the_ledger_does_not_take_a_recall_without_its_reason_for_a_recall(
        tmp_path: Path, run: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """On the topic at v2, it is a version: its copy again is a duplicate, other content at v2 a conflict, the next
    export at v3 new (not RECALLED); a recall giving its reason still recalls the id for good."""
    keystore = _keystore(tmp_path)
    mac = keystore.load_agency_mac("SNM")
    first, second = _alerts(run)
    withdrawn = _as(first, 2, REASONLESS)
    topic = [_copy(first, mac), _copy(withdrawn, mac), _copy(second, mac), _copy(_as(second, 2, RECALL), mac)]
    ledger = _ledger(topic, keystore, monkeypatch)
    assert ledger.invalid == 0 and ledger.latest(first["alert_id"]) == 2
    assert ledger.judge_alert(withdrawn, _mine(withdrawn)) is Verdict.DUPLICATE
    assert ledger.judge_alert(_as(first, 2, UPDATE), _mine(_as(first, 2, UPDATE))) is Verdict.CONFLICT
    assert ledger.judge_alert(_as(first, 3, UPDATE), b"three") is Verdict.NEW
    assert ledger.judge_alert(_as(second, 3, UPDATE), b"three") is Verdict.RECALLED
