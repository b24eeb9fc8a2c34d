"""A partner's auditor reads of every row the index hands out only what an allow-list names for its kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.audit_index import AuditIndex, Scope, scoped
from broker.audit_index._index import DEAD_LETTERS_NOT_SHOWN, NOT_SHOWN, VERSIONS_NOT_SHOWN
from broker.audit_index._scope import (
    CONTENT_RULE,
    DECISION_EVENT_FIELDS,
    LIFECYCLE_FIELDS,
    NOT_SHOWN_FIELDS,
    RECEIPT_FIELDS,
    ROW_FIELDS,
    WHY_FIELDS,
)

from .test_audit_index import _ingest, _topics

USA = Scope("USA")
LEAK = "SECRET-COL-ONLY"
CHANGE = {"field": "subject.name", "action": "drop", "rule": "usa.cover", "named": True}


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    """A timeline event as ``AuditIndex.timeline`` makes one (every base field, then its own), and a field the
    index might add to it later, holding what only COL may read."""
    base = dict.fromkeys(("at", "partner", "version", "decision", "agreement", "rules", "reasons", "redacted",
                          "status", "detail"))
    return {**base, **fields, "kind": kind, "extra_leak": LEAK}


# Each kind of row the index hands to ``scoped`` besides decision rows, as it makes them for USA's auditor.
ROWS: dict[str, dict[str, Any]] = {
    "published": _event("PUBLISHED", at="2026-11-01T10:00:00Z", version=1, detail="PUBLISH seen at " + LEAK),
    "updated": _event("UPDATED", at="2026-11-01T10:00:00Z", version=2, detail="UPDATE " + LEAK),
    "recalled (the alert)": _event("RECALLED", at="2026-11-01T10:00:00Z", version=2, detail="RECALL " + LEAK),
    "recalled (the notice)": _event("RECALLED", at="t", partner="USA", version=2, decision="RECALL",
                                    agreement="USA-PAN", rules=["recall"], reasons=[LEAK], redacted=[]),
    "delivered": _event("DELIVERED", at="t", partner="USA", version=1, decision="DELIVER_REDACTED",
                        agreement="USA-PAN", rules=["usa.cover"], reasons=[LEAK],
                        redacted=[{**CHANGE, "reason": LEAK}]),
    "withheld": _event("WITHHELD", at="t", partner="USA", version=1, decision="WITHHOLD", rules=["caveat.x"],
                       reasons=[LEAK], redacted=[]),
    "decided": _event("DECIDED", at="t", partner="USA", version=1, decision="DELIVER", agreement="USA-PAN",
                      rules=["usa.cover"], reasons=[], redacted=[], detail="the feed record was not sent"),
    "receipt": _event("RECEIPT", at="t", partner="USA", version=1, status="RECEIVED", detail="t.feed.USA:0:1"),
    "receipts not shown": _event(NOT_SHOWN, at="t", partner="USA", not_shown=3, capped=False,
                                 detail="3 more receipts from USA not shown"),
    "versions not shown": _event(VERSIONS_NOT_SHOWN, not_shown=7, capped=False, detail="7 earlier versions"),
    "why": {"version": 1, "decision": "DELIVER_REDACTED", "agreement": "USA-PAN", "rules": ["usa.cover"],
            "policy_version": "p1", "outcome": "dropped", "rule": "usa.cover", "named": True, "at": "t",
            "changes": [{**CHANGE, "reason": LEAK}], "extra_leak": LEAK},
    "decision, delivered": {"kind": "DECISION", "partner": "USA", "decision": "DELIVER", "delivered": True,
                            "hidden": [], "alert_type": "SMUGGLING", "rules": ["usa.cover"], "reasons": [LEAK],
                            "redacted": [{**CHANGE, "reason": LEAK}], "held_as": "ref-1", "extra_leak": LEAK},
    "decision, withheld": {"kind": "DECISION", "partner": "USA", "decision": "WITHHOLD", "delivered": False,
                           "alert_type": "ARMS", "rules": ["caveat.x"], "reasons": [LEAK], "extra_leak": LEAK},
}


@pytest.mark.parametrize("name", list(ROWS))
def test_a_field_no_allow_list_names_never_reaches_a_partners_auditor(name: str) -> None:
    """A field added to any kind of row (a timeline event, a "why" row, a decision) is blanked for a partner's
    auditor, and no text the row holds outside its allow-list (a reason, a lifecycle detail) survives either."""
    row = ROWS[name]
    seen = scoped(USA, row)
    assert seen["extra_leak"] is None
    assert LEAK not in repr(seen)
    # Blanked, not dropped: the row keeps its shape (a decision row names its alert as its partner knows it).
    assert set(row) - {"held_as", "alias"} <= set(seen) <= set(row) | {"alert_id"}
    assert scoped(Scope(), row) == row  # a national auditor reads it whole


@pytest.mark.parametrize(("name", "allowed"), [
    ("published", LIFECYCLE_FIELDS), ("recalled (the alert)", LIFECYCLE_FIELDS),
    ("recalled (the notice)", DECISION_EVENT_FIELDS), ("delivered", DECISION_EVENT_FIELDS),
    ("withheld", DECISION_EVENT_FIELDS), ("decided", DECISION_EVENT_FIELDS), ("receipt", RECEIPT_FIELDS),
    ("receipts not shown", NOT_SHOWN_FIELDS), ("versions not shown", NOT_SHOWN_FIELDS), ("why", WHY_FIELDS),
])
def test_each_kind_keeps_what_its_allow_list_names(name: str, allowed: frozenset[str]) -> None:
    """What a kind's allow-list names reads as the index gave it (reasons emptied, changes cut to their paths,
    actions and rules); every other field is None."""
    row = ROWS[name]
    seen = scoped(USA, row)
    for key, value in seen.items():
        if key == "reasons":
            assert value in ([], None)
        elif key == "rules" and name in ("recalled (the notice)", "withheld", "decided"):
            assert value == [CONTENT_RULE]  # its view did not go: no rule id on the alert's content (``OPEN_RULES``)
        elif key == "agreement" and name in ("recalled (the notice)", "withheld", "decided"):
            assert value is None  # its view did not go: a withheld decision's agreement says the alert's type
        elif key in ("redacted", "changes") and isinstance(row[key], list):
            assert value == [{k: c[k] for k in CHANGE if k in c} for c in row[key]]
        elif key in allowed:
            assert value == row[key], key
        else:
            assert value is None, key


@pytest.mark.parametrize("kind", ["DEAD_LETTER", DEAD_LETTERS_NOT_SHOWN, "CONSENTED", "decision", 7])
def test_a_row_of_a_kind_no_allow_list_names_keeps_only_its_kind(kind: Any) -> None:
    """A kind a partner's auditor is never shown (dead letters) or one the index adds later reads as its kind
    alone: every other field blanked, fails closed."""
    row = _event("X", partner="USA", at="t", version=1, status="schema", detail=f"t.ingress.SNM: {LEAK}",
                 rules=["r"], reasons=[LEAK], redacted=[CHANGE])
    row["kind"] = kind
    seen = scoped(USA, row)
    assert seen["kind"] == kind
    assert {k: v for k, v in seen.items() if k != "kind"} == dict.fromkeys(set(row) - {"kind"})


@pytest.mark.parametrize("name", ["delivered", "receipt", "receipts not shown", "recalled (the notice)"])
def test_an_event_about_another_partner_keeps_only_its_kind(name: str) -> None:
    """An event naming another partner than the scope's is nothing its auditor may read: its kind alone."""
    seen = scoped(USA, {**ROWS[name], "partner": "COL"})
    assert {k: v for k, v in seen.items() if v is not None} == {"kind": ROWS[name]["kind"]}


def test_the_allow_lists_name_the_index_own_kinds() -> None:
    """The kinds named are the index's own (a renamed kind would fall to its kind alone); dead letters are not."""
    assert {NOT_SHOWN, VERSIONS_NOT_SHOWN} <= set(ROW_FIELDS)
    assert DEAD_LETTERS_NOT_SHOWN not in ROW_FIELDS and "DEAD_LETTER" not in ROW_FIELDS
    assert "DECISION" not in ROW_FIELDS  # a decision row has its own allow-lists


@given(st.text(min_size=1, max_size=20), st.sampled_from([*ROW_FIELDS, "DEAD_LETTER", "NEW"]))
def test_any_field_name_outside_its_kinds_allow_list_is_blanked(field: str, kind: str | None) -> None:
    """Whatever a field is called, outside the allow-list of its row's kind it reads None."""
    row: dict[str, Any] = {"partner": "USA", field: LEAK}
    if kind is not None:
        row["kind"] = kind
    seen = scoped(USA, row)
    if field not in ROW_FIELDS.get(kind, frozenset({"kind"})):
        assert seen.get(field) is None


def test_a_partners_timeline_and_why_read_as_before(tmp_path: Path) -> None:
    """Of a real index, COL's auditor reads every event of the alert its partner was sent under a named kind (none
    cut to its kind alone), with the decision, rules, changes and receipt status the console shows, and no field
    outside its kind's allow-list; "why" still names the rule."""
    index = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(index, _topics())
    col = Scope("COL")
    name = index.alert_name(col, "SNM:1")
    assert name is not None
    events = index.timeline(col, name) or []
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "PUBLISHED" and "DELIVERED" in kinds and kinds[-1] == "RECEIPT"
    for e in events:
        allowed = LIFECYCLE_FIELDS if e["kind"] == "PUBLISHED" else ROW_FIELDS[e["kind"]]
        assert {k for k, v in e.items() if v not in (None, [])} <= allowed, e
    delivered = next(e for e in events if e["kind"] == "DELIVERED")
    assert (delivered["partner"], delivered["decision"], delivered["rules"]) == ("COL", "DELIVER_REDACTED",
                                                                                 ["col.cover"])
    assert [c["field"] for c in delivered["redacted"]] == ["subject.name", "location"]
    assert next(e for e in events if e["kind"] == "RECEIPT")["status"] == "RECEIVED"
    why = index.why(col, name, "COL", "subject.name")
    assert [(r["outcome"], r["rule"], r["named"]) for r in why] == [("dropped", "col.cover", True)]
    assert all(set(r) <= WHY_FIELDS for r in why)
