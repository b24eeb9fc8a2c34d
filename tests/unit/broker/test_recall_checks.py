"""A recall is held to what it uses: its id, agency, key, version, lifecycle and origin, and the fields that reach
the audit. Its content is never delivered, so a recall built on a copy the broker refused (``puente recall``
takes the latest version on the ingress topic, a dead-lettered one too) still withdraws the alert."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import orjson
import pytest

from broker.lifecycle import AlertState
from tests.unit.broker.test_lifecycle import CODEC, Run, _first, _headers, _next


def _bad_content(alert: dict[str, Any], flaw: str) -> dict[str, Any]:
    """``alert`` with content no version that is delivered may carry."""
    bad = copy.deepcopy(alert)
    if flaw == "times":
        bad["reported_at"] = bad["occurred_at"] - timedelta(hours=3)
    elif flaw == "future":
        bad["occurred_at"] = bad["reported_at"] = bad["occurred_at"] + timedelta(days=30)
    elif flaw == "zone":
        bad["source_timezone"] = "Factory"
    elif flaw == "position":
        bad["location"] = {**(bad.get("location") or {}), "latitude": 95.0}
    elif flaw == "hidden":
        bad["summary"] = "Reporte \x1b[2J\u202eoculto"
    elif flaw == "score":
        bad["payload"]["match_score"] = 7.0
    return bad


@pytest.mark.parametrize("flaw", ["times", "future", "zone", "position", "hidden", "score"])
def test_a_recall_built_on_a_refused_version_withdraws_the_alert(flaw: str) -> None:
    """The agency's v2 is dead-lettered for its content; the officer's recall built on it (v3, the same content)
    reaches every holder, and the notices and the audit entry carry none of that content."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    bad = _bad_content(_next(first, "UPDATE"), flaw)
    assert run.send(bad).dead_reason == "invalid"
    recall = _next(bad, "RECALL", reason="ERROR")
    out = run.send(recall)
    assert out.entry["kind"] == "ALERT" and _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert out.state == AlertState(3, {}, recalled=True, originator="SNM")
    for partner in ("COL", "USA"):
        notice = CODEC.decode(run.sealers[partner].sealed[-1])
        assert notice["version"] == 3 and notice["summary"] is None and notice["location"] is None
        assert notice["occurred_at"] != recall["occurred_at"] and notice["source_timezone"] != "Factory"
    entry = orjson.dumps(out.entry)
    assert b"oculto" not in entry and b"Factory" not in entry and b"95.0" not in entry


@pytest.mark.parametrize(("field", "value"), [("classification", "RESTRINGIDO\x1b[2J"),
                                              ("classification", "RESTRINGIDO\u202e"),
                                              ("classification", "RESTRINGIDO\u200b"),
                                              ("classification", "Juan.Perez.Pasaporte.AB123456"),  # code-shaped
                                              ("country", "PAN\x00"),
                                              ("country", "COL")])
def test_a_recall_withdraws_the_alert_whatever_its_markings_and_the_audit_never_takes_them_as_they_are(
        field: str, value: str) -> None:
    """A recall's markings are whatever copy it was built on (``puente recall`` copies the latest on the topic, one
    the broker refused too): they are never read for a decision, so they cannot stop it, and the audit records the
    state's originator, the country the agency's alerts name (as configured) and the classification only as a level
    of the scale (``(not a level)`` otherwise): a hidden character or a foreign country reaches no one."""
    run = Run()
    first = _first()
    run.send(first)
    recall = _next(first, "RECALL", reason="ERROR")
    if field == "country":
        recall["markings"]["originator"]["country"] = value
    else:
        recall["markings"][field] = value
    out = run.send(recall)
    assert out.dead_reason is None and [f.topic for f in out.feeds] == ["t.feed.COL"]  # a notice to its holder
    assert out.state is not None and out.state.recalled and out.state.holders == {}
    assert out.entry["originator_country"] == "PAN" and out.entry["originator"] == "SNM"
    expected = "(not a level)" if field == "classification" else first["markings"]["classification"]
    assert out.entry["classification"] == expected
    assert value == "COL" or value not in orjson.dumps(out.entry).decode()


def test_a_recall_is_still_held_to_its_id_agency_and_lifecycle() -> None:
    """A recall under another agency, with an id no adapter writes, or without its reason is dead-lettered."""
    run = Run()
    first = _first()
    run.send(first)
    recall = _next(first, "RECALL", reason="ERROR")
    assert run.send({**recall, "agency": "SENAN"}).dead_reason == "agency-mismatch"
    wrong_id = {**recall, "alert_id": "SNM:x y"}
    assert run.send(wrong_id).dead_reason == "invalid"
    no_reason = {**recall, "lifecycle": {"action": "RECALL", "reason": None, "partners": []}}
    out = run.send(no_reason)
    assert out.dead_reason == "invalid" and "give its reason" in out.entry["detail"]
    assert _headers(run.send(recall)) == {"COL": "RECALL"}


def test_content_versions_are_still_held_to_every_content_check() -> None:
    """An UPDATE with the flaws a recall may carry is dead-lettered as before."""
    run = Run()
    first = _first()
    run.send(first)
    for flaw in ("times", "future", "zone", "position", "hidden", "score"):
        out = run.send(_bad_content(_next(first, "UPDATE"), flaw))
        assert out.dead_reason == "invalid" and out.feeds == [], flaw
