"""A later version dead-lettered for a rule it breaks, only because it could not be placed then (no state, no holder),
is remembered in the replay window as a version withdrawn for such a rule is: the same bytes appended again within
the window, once the alert reached a partner, are a replay, not a pull-back from partners who should keep it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from broker.lifecycle import MAX_VERSION, AlertState
from broker.pipeline import _taken_note, seen_key
from broker.replay import ReplayWindow
from broker.worker import remember_block
from tests.unit.broker.test_lifecycle import NOW_MS, Run, _first, _headers, _next
from tests.unit.broker.test_lifecycle_originator import Relay, _as, _colombian
from tests.unit.broker.test_lifecycle_pullback import _no_action
from tests.unit.broker.test_lifecycle_type import _as as _typed


def _hidden(alert: dict[str, Any]) -> dict[str, Any]:
    """The next version of ``alert`` with a character drawn as nothing in its summary (a content rule broken)."""
    later = _next(alert, "UPDATE")
    later["summary"] = "Alerta\u200bmigratoria"
    return later


BROKEN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {  # the version after ``alert``, broken
    "a recall without its reason": lambda a: _next(a, "RECALL"),
    "no action": _no_action,
    "another type": lambda a: _typed(_next(a, "UPDATE"), "BORDER_EVENT"),
    "a hidden character": _hidden,
}


def _at(alert: dict[str, Any], version: int) -> dict[str, Any]:
    return {**alert, "version": version}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_version_no_one_could_be_withdrawn_from_is_a_replay_once_a_partner_holds_the_alert(
        broken: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """v1 to COL, v2 raised to SECRETO (pulled back: no holder), a broken v4 dead-lettered ``invalid`` and
    remembered; v3 lowers it and reaches COL; the v4 bytes again are a replay: nothing sent, COL keeps v3, and the
    originator's v5 reaches COL."""
    run = Run()
    first = _first()
    run.send(first)
    assert _headers(run.send(_next(first, "RECLASSIFY", classification="SECRETO"))) == {"COL": "RECALL"}
    bad = broken(_at(first, 3))
    out = run.send(bad)
    assert out.dead_reason == "invalid" and out.feeds == [] and out.state is None
    assert out.seen_id == seen_key(first["alert_id"], 4) and out.entry["version"] == 4
    assert _headers(run.send(_next(_at(first, 2), "RECLASSIFY", classification="RESTRINGIDO"))) == {"COL": "DELIVER"}
    again = run.send(copy.deepcopy(bad))
    assert again.dead_reason == "replay" and again.feeds == [] and again.state is None
    assert run.book.get(first["alert_id"]).holders == {"COL": 3}  # type: ignore[union-attr]
    assert _headers(run.send(_next(_at(first, 4), "UPDATE"))) == {"COL": "DELIVER"}


def test_a_recall_without_its_reason_before_the_alert_reached_anyone_is_a_replay_after() -> None:
    """v1 SECRETO reaches no one (no state); a recall without its reason at v4 is dead-lettered; v2 lowers it and
    reaches COL; the v4 bytes again are a replay (COL keeps v2), and the originator's v3 is taken, not stale."""
    run = Run()
    first = _first("SECRETO")
    assert run.send(first).state is None
    reasonless = _next(_at(first, 3), "RECALL")
    assert run.send(reasonless).dead_reason == "invalid"
    v2 = _next(first, "RECLASSIFY", classification="RESTRINGIDO")
    assert _headers(run.send(v2)) == {"COL": "DELIVER"}
    again = run.send(copy.deepcopy(reasonless))
    assert again.dead_reason == "replay" and again.feeds == []
    assert _headers(run.send(_next(v2, "UPDATE"))) == {"COL": "DELIVER"}


def test_a_restart_remembers_a_dead_letter_as_the_pipeline_did() -> None:
    """The worker rebuilds the window from the audit: the remembered dead letter's entry gives back its key, at its
    ingress time; a dead letter without a version (not remembered) gives none."""
    run = Run()
    first = _first("SECRETO")
    remembered = run.send(_next(_at(first, 3), "RECALL"))
    forgotten = run.send({**_next(first, "UPDATE"), "version": 1})  # a first version with a lifecycle
    assert forgotten.dead_reason == "invalid" and forgotten.seen_id is None and "version" not in forgotten.entry
    window = ReplayWindow(7)
    remember_block(window, orjson.dumps({"entries": [remembered.entry, forgotten.entry]}), NOW_MS)
    assert len(window) == 1 and seen_key(first["alert_id"], 4) in window and remembered.seen_id in window


def test_only_a_version_the_agencys_tools_count_is_remembered() -> None:
    """A copy numbered 1 with a lifecycle, or content at the last version, is refused in every state (the agency's
    tools do not count it, ``adapters.ledger.admissible``): not remembered, so the genuine first version after it is
    taken, not a replay."""
    run = Run()
    first = _first()
    odd = {**_next(first, "UPDATE"), "version": 1}
    last = {**_next(first, "UPDATE"), "version": MAX_VERSION}
    for out in (run.send(odd), run.send(last)):
        assert out.dead_reason == "invalid" and out.seen_id is None and "version" not in out.entry
    assert _headers(run.send(first)) == {"COL": "DELIVER"}


def test_another_units_broken_version_is_not_remembered() -> None:
    """COMBIFRON relays units that share its keys: DIJIN's recall without its reason of ARC's alert (no state yet) is
    dead-lettered and not remembered, so ARC's own recall without its reason at that number, once COL holds the
    alert, withdraws it from COL rather than being refused as a replay of DIJIN's."""
    run = Relay()
    first = _colombian(classification="SECRETO")
    run.send(first)
    dijin = run.send(_as(_next(_at(first, 3), "RECALL"), "DIJIN"))
    assert dijin.dead_reason == "invalid" and dijin.seen_id is None
    assert _headers(run.send(_next(first, "RECLASSIFY", classification="RESTRINGIDO"))) == {"COL": "DELIVER"}
    own = run.send(_next(_at(first, 3), "RECALL"))
    assert own.dead_reason is None and _headers(own) == {"COL": "RECALL"}


def test_a_broken_first_version_is_not_remembered_and_its_correction_is_delivered() -> None:
    """A first version dead-lettered for a content rule (a hidden character) takes no number: the agency's corrected
    first version reaches COL, never a replay of the broken one."""
    run = Run()
    first = _first()
    broken = {**first, "summary": "Alerta\u200bmigratoria"}
    out = run.send(broken)
    assert out.dead_reason == "invalid" and out.seen_id is None and "now taken" not in out.entry["detail"]
    assert _headers(run.send(first)) == {"COL": "DELIVER"}


def test_a_version_a_dead_letter_took_says_so_and_a_copy_at_it_says_what_it_breaks() -> None:
    """The dead letter of a later version remembered at its number says the number is taken and to publish above it;
    a copy at that number after (the sender resending it broken) is a replay that says what it breaks."""
    run = Run()
    first = _first("SECRETO")
    run.send(first)  # reaches no one: a broken v2 cannot be placed
    bad = _hidden(first)
    out = run.send(bad)
    assert out.dead_reason == "invalid" and "version 2 is now taken: publish the corrected alert as the next version" \
        in out.entry["detail"]
    again = run.send(copy.deepcopy(bad))
    assert again.dead_reason == "replay" and "this copy also breaks: " in again.entry["detail"]
    assert "invisible" in again.entry["detail"] or "character" in again.entry["detail"]
    sound = run.send(_next(first, "UPDATE"))
    assert sound.dead_reason == "replay" and "publish the next version above it" in sound.entry["detail"]
    assert run.send(_next(_at(first, 2), "UPDATE")).dead_reason is None


def test_a_taken_number_says_what_to_publish_as_the_state_allows() -> None:
    """The advice a remembered dead letter gives follows the alert's state: the next version above it; above the
    state's when the number is not above it; a new alert when the alert was recalled for good; none when nothing
    was remembered."""
    assert _taken_note(None, None) == ""
    assert _taken_note(4, None).endswith("publish the corrected alert as the next version above it")
    assert _taken_note(4, AlertState(2, {})).endswith("next version above it")
    assert _taken_note(2, AlertState(3, {})).endswith("publish the corrected alert as the next version above 3")
    assert "publish a new alert instead" in _taken_note(4, AlertState(3, {}, recalled=True))
