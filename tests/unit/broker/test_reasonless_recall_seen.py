"""A recall without its reason that withdrew the alert is remembered as the version it was taken for, by its id and
version, never as a recall for good: the originator's recall at that number is then taken, not refused as its
replay, and a restart rebuilds the same replay window from the audit."""

from __future__ import annotations

import copy

import orjson
import pytest

from broker.pipeline import Outcome, seen_key
from broker.replay import ReplayWindow
from broker.worker import remember_block
from tests.unit.broker.test_lifecycle import NOW_MS, Run, _first, _headers, _next


@pytest.mark.parametrize("at", [2, 3], ids=["its number again", "the next number"])
def test_the_originators_recall_after_a_recall_without_its_reason_is_taken_for_good(at: int) -> None:
    """v1 to COL; a recall without its reason at v2 pulls it back; the officer's recall (a reason) at v2, as the
    agency's tools built it on v1, or at v3, built on the v2 copy, is the recall for good: no replay dead letter, the
    state recalled, a later version refused as recalled."""
    run = Run()
    first = _first()
    run.send(first)
    withdrawn = run.send(_next(first, "RECALL"))
    assert withdrawn.dead_reason is None and _headers(withdrawn) == {"COL": "RECALL"}
    assert withdrawn.seen_id == seen_key(first["alert_id"], 2)  # as a version withdrawn for a rule
    recall = _next({**first, "version": at - 1}, "RECALL", reason="ERROR")
    out = run.send(recall)
    assert out.dead_reason is None and out.entry["action"] == "RECALL" and out.entry["reason"] == "ERROR"
    assert out.seen_id == seen_key(first["alert_id"], at, True)
    state = run.book.get(first["alert_id"])
    assert state is not None and state.recalled and state.version == 3
    assert run.send(copy.deepcopy(recall)).dead_reason == "replay"
    assert run.send(_next({**first, "version": 3}, "UPDATE")).dead_reason == "recalled"


def test_a_recall_without_its_reason_is_a_replay_of_the_content_version_at_its_number() -> None:
    """A content version processed at v2, then a recall without its reason at v2 within the window: a replay, as any
    copy of a version processed is (the replay window knows the two by one key)."""
    run = Run()
    first = _first()
    run.send(first)
    assert run.send(_next(first, "UPDATE")).dead_reason is None
    out = run.send(_next(first, "RECALL"))
    assert out.dead_reason == "replay" and out.feeds == []


def _window(outcomes: list[Outcome]) -> ReplayWindow:
    """The replay window a worker rebuilds after a restart from the audit block holding ``outcomes``' entries."""
    window = ReplayWindow(7)
    remember_block(window, orjson.dumps({"entries": [o.entry for o in outcomes]}), NOW_MS)
    return window


def test_a_restart_rebuilds_the_replay_window_the_records_left() -> None:
    """The audit entries of a first version, a recall without its reason that withdrew it and the recall for good
    after it give back the very keys the pipeline remembered: the recall without its reason by its id and version,
    the recall with one as a recall: a restart leaves the window as the records left it."""
    run = Run()
    first = _first()
    outcomes = [run.send(first), run.send(_next(first, "RECALL")),
                run.send(_next(first, "RECALL", reason="ERROR"))]
    assert all(o.dead_reason is None for o in outcomes)
    window = _window(outcomes)
    assert len(window) == len(run.seen) == 3 and all(key in window for key in run.seen)
    assert seen_key(first["alert_id"], 2) in window and seen_key(first["alert_id"], 2, True) in window

