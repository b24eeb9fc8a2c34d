"""A recall again, for the partners a first recall's notice missed, is taken at the version the agency's tool
builds next (its latest on the ingress topic, plus one), even when the first recall reused a version and the
broker raised the state one above it; it reaches only the holders left and brings nothing back."""

from __future__ import annotations

import dataclasses
from typing import Any

from broker.lifecycle import MAX_VERSION, AlertState
from tests.unit.broker.test_lifecycle import CODEC, Run, _bare, _first, _headers, _next


def _recalled_with_a_holder_left() -> tuple[Run, dict[str, Any], dict[str, Any]]:
    """v1 and v2 to COL and USA; a recall built on v1 (version 2 again) whose notice to USA cannot be sealed."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    run.send(_next(first, "UPDATE"))
    usa = run.sealers.pop("USA")
    recall = _next(first, "RECALL", reason="ERROR")
    out = run.send(recall)
    assert _bare(out.state) == AlertState(3, {"USA": 2}, recalled=True, originator="SNM")
    run.sealers["USA"] = usa
    return run, first, recall


def test_the_tools_next_recall_after_a_recall_that_reused_a_version_is_taken() -> None:
    """The tool's next recall (version 3: the reused recall's 2, plus one) equals the state's version: it is taken,
    sends USA its notice at version 3, above the version 2 it holds, and nothing to COL, which has its notice."""
    run, _, recall = _recalled_with_a_holder_left()
    again = _next(recall, "RECALL", reason="ERROR")
    assert again["version"] == 3
    out = run.send(again)
    assert out.entry["kind"] == "ALERT" and _headers(out) == {"USA": "RECALL"}
    usa = next(d for d in out.entry["decisions"] if d["partner"] == "USA")
    assert usa["recalls"] == 2 and usa["notice_version"] == 3 and usa.get("sent") is not False
    assert usa["ack_hours"] == 24  # USA's own deadline (the test policy's), recorded with the notice
    assert CODEC.decode(run.sealers["USA"].sealed[-1])["version"] == 3
    assert _bare(out.state) == AlertState(3, {}, recalled=True, originator="SNM")


def test_a_recall_again_brings_nothing_back_and_is_not_repeated() -> None:
    """While USA still holds it, content at the state's version or above is refused as recalled, so is a recall
    below the state's version; the same recall again is a replay; once no holder is left, any recall is refused."""
    run, first, recall = _recalled_with_a_holder_left()
    for action, version in (("UPDATE", 3), ("UPDATE", 4), ("RECLASSIFY", 3)):
        content = {**_next(first, action), "version": version}
        assert run.send(content).dead_reason == "recalled"
    assert _bare(run.book.get(first["alert_id"])) == AlertState(3, {"USA": 2}, recalled=True, originator="SNM")
    usa = run.sealers.pop("USA")
    again = _next(recall, "RECALL", reason="ERROR")
    assert _bare(run.send(again).state) == AlertState(3, {"USA": 2}, recalled=True, originator="SNM")  # missed again
    run.sealers["USA"] = usa
    assert run.send(again).dead_reason == "replay"
    run.seen.clear()  # beyond the replay window: the state alone refuses a recall below its version
    below = {**_next(first, "RECALL", reason="ERROR"), "version": 2}
    assert run.send(below).dead_reason == "recalled"
    last = _next(again, "RECALL", reason="ERROR")
    assert _headers(run.send(last)) == {"USA": "RECALL"}
    assert run.send(_next(last, "RECALL", reason="ERROR")).dead_reason == "recalled"  # no holder left


def test_a_recall_again_that_can_reach_no_holder_is_refused_at_any_version() -> None:
    """The holders left are partners the policy no longer names: no notice can reach them, so a recall again, at a
    new version or at the last one (which any number may reuse), is refused as recalled, saying why, and adds no
    audit entry. Once the policy names a holder again, a recall again reaches it."""
    run, first, recall = _recalled_with_a_holder_left()
    alert_id = first["alert_id"]
    held = run.book.get(alert_id)
    assert held is not None
    run.book.put(alert_id, dataclasses.replace(held, holders={"GONE": 2}))
    again = _next(recall, "RECALL", reason="ERROR")
    out = run.send(again)
    assert out.dead_reason == "recalled" and "partners the policy no longer names" in out.entry["detail"]
    last = {**again, "version": MAX_VERSION}
    run.book.put(alert_id, dataclasses.replace(held, version=MAX_VERSION, holders={"GONE": 2}))
    for _ in range(3):
        assert run.send(last).dead_reason == "recalled"
    run.book.put(alert_id, dataclasses.replace(held, version=MAX_VERSION, holders={"USA": 2, "GONE": 2}))
    taken = run.send(last)
    assert taken.dead_reason is None and _headers(taken) == {"USA": "RECALL"}
