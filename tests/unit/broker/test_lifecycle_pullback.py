"""A later version the broker cannot admit, whatever rule it breaks (its content's or its lifecycle's), withdraws the
alert from its holders when its number places it above what they hold: they must not keep the version it may correct
or restrict. It is dead-lettered alone only where it cannot be placed, or no partner holds the alert."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from broker.lifecycle import MAX_VERSION, AlertState
from tests.unit.broker.test_lifecycle import CODEC, Run, _bare, _first, _headers, _next


def _no_action(alert: dict[str, Any], **markings: Any) -> dict[str, Any]:
    """The next version of ``alert`` with no lifecycle (its action missing)."""
    later = _next(alert, "UPDATE", **markings)
    later["lifecycle"] = None
    return later


BROKEN = {  # the version after ``alert``, and what its audit reasons say of the rule it breaks
    "no action, raised to SECRETO": (lambda a: _no_action(a, classification="SECRETO"), "must say what it does"),
    "no action": (lambda a: _no_action(a), "must say what it does"),
    "consent to a partner not consented to, raised to SECRETO":
        (lambda a: _next(a, "CONSENT", partners=["USA"], classification="SECRETO"), "originator_consent"),
    "consent naming no partner": (lambda a: _next(a, "CONSENT"), "must name the partners"),
}


@pytest.mark.parametrize(("broken", "rule"), BROKEN.values(), ids=BROKEN.keys())
def test_a_later_version_with_a_broken_lifecycle_withdraws_the_alert_from_its_holders(broken: Any, rule: str) -> None:
    """COL holds v1; v2 breaks a lifecycle rule: withheld from everyone under ``alert.invalid`` with the rule as the
    reason, COL sent a recall notice, the state at v2 with no holder (not recalled: a sound v3 reaches COL again)."""
    run = Run()
    first = _first()
    assert run.send(first).state.holders == {"COL": 1}  # type: ignore[union-attr]
    out = run.send(broken(first))
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL"}
    col, usa = ({d["partner"]: d for d in out.entry["decisions"]}[p] for p in ("COL", "USA"))
    assert col["decision"] == "RECALL" and col["recalls"] == 1 and "alert.invalid" in col["rules"]
    assert usa["decision"] == "WITHHOLD" and usa["rules"] == ["alert.invalid"] and "consent" not in out.entry
    assert rule in col["reasons"][0] and rule in usa["reasons"][0]
    assert _bare(out.state, typed=True) == AlertState(2, {}, originator="SNM", alert_type="WATCHLIST_HIT")
    notice = CODEC.decode(run.sealers["COL"].sealed[-1])
    assert notice["lifecycle"]["action"] == "RECALL" and notice["version"] == 2
    assert notice["alert_type"] == out.entry["alert_type"] == "WATCHLIST_HIT"
    assert run.sealers["USA"].sealed == []
    sound = _next({**first, "version": 2}, "UPDATE")
    assert _headers(run.send(sound)) == {"COL": "DELIVER"}


def test_a_broken_version_seen_again_is_a_replay() -> None:
    """The version that withdrew the alert, sent again within the replay window, is a replay (it withdraws once);
    beyond it, the state alone refuses it, as a version not above the state's."""
    run = Run()
    first = _first()
    run.send(first)
    broken = _no_action(first)
    assert _headers(run.send(broken)) == {"COL": "RECALL"}
    assert run.send(copy.deepcopy(broken)).dead_reason == "replay"
    run.seen.clear()
    again = run.send(copy.deepcopy(broken))
    assert again.dead_reason == "invalid" and again.feeds == [] and again.state is None


@pytest.mark.parametrize("case", ["no state", "no holder", "not above the state's", "the last version", "recalled"])
def test_a_broken_lifecycle_is_dead_lettered_alone_where_it_cannot_be_placed_or_no_one_holds_it(case: str) -> None:
    """Dead-lettered (``invalid``, the rule in its detail) and nothing sent: there is no state, no holder, the alert
    was recalled for good, or the version's number is not a later content version's (equal to the state's, or the
    last, kept for a recall): there is nothing to pull back, or no version above what partners hold to do it at."""
    run = Run()
    first = _first("SECRETO" if case == "no holder" else "RESTRINGIDO")
    if case != "no state":
        run.send({**first, "alert_id": first["alert_id"]})
    if case == "no holder":
        run.send(_next(first, "UPDATE"))  # a state with no holder: v1 went to no one
        first = {**first, "version": 2}
    broken = _no_action(first)
    if case == "not above the state's":
        run.send(_next(first, "UPDATE"))
        run.seen.clear()
    elif case == "the last version":
        broken["version"] = MAX_VERSION
    elif case == "recalled":
        run.send(_next(first, "RECALL", reason="ERROR"))
        broken["version"] = 3
    before = run.book.get(first["alert_id"])
    out = run.send(broken)
    assert out.dead_reason == "invalid" and out.feeds == [] and out.state is None
    assert "lifecycle.action" in out.entry["detail"] or "kept for a recall" in out.entry["detail"]
    assert run.book.get(first["alert_id"]) is before


def _reasonless(alert: dict[str, Any]) -> dict[str, Any]:
    """A recall of ``alert`` at its next version that gives no reason."""
    return _next(alert, "RECALL")


def test_a_recall_without_its_reason_withdraws_the_alert_but_not_for_good() -> None:
    """No reason, no final recall (a partner's store reads a null reason as the broker's withdrawal, after which a
    later version may reach it): every holder is sent a notice with a null reason, which is then true, under
    ``alert.invalid`` with the rule as the reason; the state is not recalled, so a sound later version goes out."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    recall = _reasonless(first)
    assert recall["lifecycle"] == {"action": "RECALL", "reason": None, "partners": []}
    out = run.send(recall)
    assert out.dead_reason is None and _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert out.entry["action"] == "RECALL" and "reason" not in out.entry
    for d in out.entry["decisions"]:
        assert d["decision"] == "RECALL" and "alert.invalid" in d["rules"] and "give its reason" in d["reasons"][0]
    assert _bare(out.state, typed=True) == AlertState(2, {}, originator="SNM", alert_type="WATCHLIST_HIT")
    for partner in ("COL", "USA"):
        notice = CODEC.decode(run.sealers[partner].sealed[-1])
        assert notice["lifecycle"] == {"action": "RECALL", "reason": None, "partners": []} and notice["version"] == 2
        assert notice["alert_type"] == "WATCHLIST_HIT"
    later = run.send(_next({**first, "version": 2}, "UPDATE"))
    assert later.dead_reason is None and _headers(later) == {"COL": "DELIVER", "USA": "DELIVER"}


def test_a_recall_without_its_reason_seen_again_is_a_replay() -> None:
    """It withdraws the alert once: sent again within the replay window, a replay; beyond it, no holder is left, so
    it is dead-lettered (``invalid``, the rule in its detail)."""
    run = Run()
    first = _first()
    run.send(first)
    recall = _reasonless(first)
    assert _headers(run.send(recall)) == {"COL": "RECALL"}
    assert run.send(copy.deepcopy(recall)).dead_reason == "replay"
    run.seen.clear()
    again = run.send(copy.deepcopy(recall))
    assert again.dead_reason == "invalid" and "give its reason" in again.entry["detail"] and again.feeds == []


@pytest.mark.parametrize("case", ["no state", "no holder", "not above the state's", "the last version", "recalled"])
def test_a_recall_without_its_reason_is_dead_lettered_where_it_cannot_be_placed_or_no_one_holds_it(case: str) -> None:
    """As any version that breaks a rule: dead-lettered (``invalid``, the rule in its detail), nothing sent and the
    state left as it was, where there is nothing to withdraw or its number is not above the state's (nor the last)."""
    run = Run()
    first = _first("SECRETO" if case == "no holder" else "RESTRINGIDO")
    if case != "no state":
        run.send(first)
    recall = _reasonless(first)
    if case == "no holder":
        run.send(_next(first, "UPDATE"))  # a state at v2 with no holder: v1 went to no one
        recall["version"] = 3
    elif case == "not above the state's":
        run.send(_next(first, "UPDATE"))
        # Known by its id and version, as a content version is (no recall for good): within the window, a replay of
        # the processed version 2; beyond it, refused for its rule.
        assert run.send(copy.deepcopy(recall)).dead_reason == "replay"
        run.seen.clear()
    elif case == "the last version":
        recall["version"] = MAX_VERSION
    elif case == "recalled":
        run.send(_next(first, "RECALL", reason="ERROR"))
        recall["version"] = 3
    before = run.book.get(first["alert_id"])
    out = run.send(recall)
    assert out.dead_reason == "invalid" and "give its reason" in out.entry["detail"]
    assert out.feeds == [] and out.state is None and run.book.get(first["alert_id"]) is before
