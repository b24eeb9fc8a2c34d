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
from tests.unit.broker.test_lifecycle import CODEC, Run, _bare, _first, _headers, _next


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
    elif flaw == "caveats":
        bad["markings"]["caveats"] = [f"Z{i}" for i in range(1_000)]
    return bad


@pytest.mark.parametrize("flaw", ["times", "future", "zone", "position", "hidden", "score", "caveats"])
def test_a_later_version_refused_for_its_content_withdraws_the_alert_at_once(flaw: str) -> None:
    """The agency's v2 breaks a content rule: its originator changed the alert and no one can tell how (it may
    restrict what v1 released), so every holder is sent a recall notice at once and no one gets v2; the notices and
    the audit entry carry none of that content. An officer's recall built on it (v3) then finds no holder."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    bad = _bad_content(_next(first, "UPDATE"), flaw)
    out = run.send(bad)
    assert out.dead_reason is None and out.entry["kind"] == "ALERT"
    assert _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert _bare(out.state, typed=True) == AlertState(2, {}, originator="SNM", alert_type="WATCHLIST_HIT")
    assert all("breaks a rule every alert must keep" in d["reasons"][0] for d in out.entry["decisions"])
    assert all("alert.invalid" in d["rules"] for d in out.entry["decisions"])  # holders' recalls too
    assert run.send(bad).dead_reason == "replay"  # processed once: a copy is a replay, as any other's
    for partner in ("COL", "USA"):
        notice = CODEC.decode(run.sealers[partner].sealed[-1])
        assert notice["version"] == 2 and notice["summary"] is None and notice["location"] is None
        assert notice["alert_type"] == "WATCHLIST_HIT"
        assert notice["occurred_at"] != bad["occurred_at"] and notice["source_timezone"] != "Factory"
    entry = orjson.dumps(out.entry)
    assert b"oculto" not in entry and b"95.0" not in entry and b"Z999" not in entry  # the rules' text, no value
    recall = run.send(_next(bad, "RECALL", reason="ERROR"))
    assert recall.feeds == [] and {d["decision"] for d in recall.entry["decisions"]} == {"WITHHOLD"}
    assert _bare(recall.state, typed=True) == AlertState(3, {}, recalled=True, originator="SNM",
                                                         alert_type="WATCHLIST_HIT")


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
    """A recall under another agency, or with an id no adapter writes, is dead-lettered; one at version 1 too (a first
    version has no lifecycle). One without its reason is no final recall: it withdraws the alert from its holders as
    an invalid version does (``test_lifecycle_pullback``), or, with nothing to withdraw, is dead-lettered."""
    run = Run()
    first = _first()
    run.send(first)
    recall = _next(first, "RECALL", reason="ERROR")
    assert run.send({**recall, "agency": "SENAN"}).dead_reason == "agency-mismatch"
    wrong_id = {**recall, "alert_id": "SNM:x y"}
    assert run.send(wrong_id).dead_reason == "invalid"
    out = run.send({**recall, "version": 1})
    assert out.dead_reason == "invalid" and "has no lifecycle action" in out.entry["detail"]
    out = run.send({**wrong_id, "lifecycle": {"action": "RECALL", "reason": None, "partners": []}})
    assert out.dead_reason == "invalid" and "give its reason" in out.entry["detail"] and out.feeds == []
    assert _headers(run.send(recall)) == {"COL": "RECALL"}


def test_content_versions_are_still_held_to_every_content_check() -> None:
    """An UPDATE with the flaws a recall may carry is never delivered: where no partner holds the alert (v1 withheld
    from everyone) it is dead-lettered as before, and nothing is sent."""
    for flaw in ("times", "future", "zone", "position", "hidden", "score", "caveats"):
        run = Run()
        first = _first("SECRETO")
        assert {d["decision"] for d in run.send(first).entry["decisions"]} == {"WITHHOLD"}
        out = run.send(_bad_content(_next(first, "UPDATE"), flaw))
        assert out.dead_reason == "invalid" and out.feeds == [], flaw


@pytest.mark.parametrize("version", [1, 2])
def test_the_audit_records_a_classification_only_as_a_level_of_the_scale(version: int) -> None:
    """A classification in the form of a code but not a level (an agency's text: a name written as one) is recorded
    as ``(not a level)`` for every version, first or later, never as written; a level is recorded as it is."""
    run = Run()
    first = _first()
    if version == 1:
        first["markings"]["classification"] = "Juan.Perez.Pasaporte.AB123456"
        out = run.send(first)
    else:
        run.send(first)
        out = run.send(_next(first, "RECLASSIFY", classification="Juan.Perez.Pasaporte.AB123456"))
    assert out.dead_reason is None and out.entry["classification"] == "(not a level)"
    assert b"Juan.Perez" not in orjson.dumps(out.entry)
    assert run.send(_first("CONFIDENCIAL") | {"alert_id": "SNM:LEVEL-1"}).entry["classification"] == "CONFIDENCIAL"
