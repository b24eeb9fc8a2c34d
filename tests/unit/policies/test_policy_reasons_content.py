"""Reasons name the policy's vocabulary, never the alert's content nor a marking value the policy does not know.

Every decision's reasons go into the signed audit entry for every partner, the ones it was withheld from included,
and national auditors read them (``broker.service._audit_fields``: "never alert content beyond what the reasons
name"). So a value from the alert's payload or location (a name, a number, a position, even rounded) must never
reach a reason, whatever the value: each leaf of real synthetic alerts is set to a telltale value in turn, and every
partner's decision is read.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from policies import PolicySet, decide
from policies._conditions import _event_types, _watchlist
from puente.dev.synthetic import generate
from schemas import alert_codec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NAME = "Zqx Telltale Perez"  # not code-like: an area label is quoted only when it looks like a code
CODE = "ZQX_TELLTALE_PEREZ"  # shaped as a code, and none of the policy's: the agency's text all the same


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _variants(leaf: Any) -> list[tuple[Any, tuple[str, ...]]]:
    """Telltale values for a leaf, with the texts whose presence in a reason would show it."""
    if isinstance(leaf, bool) or leaf is None:
        return []
    if isinstance(leaf, str):
        return [(NAME, ("Telltale",)), (CODE, ("TELLTALE",))]
    if isinstance(leaf, float):  # a little, and far enough to leave the area its label names
        return [(moved, ("7431", f"{moved:.1f}", f"{moved:.2f}")) for moved in (leaf + 0.0374317431,
                                                                                leaf - 1.2374317431)]
    if isinstance(leaf, int):
        return [(74317431, ("7431", "74,317,431"))]
    return []


def test_no_payload_or_location_value_reaches_a_reason(policy_set: PolicySet) -> None:
    codec = alert_codec()
    leaked: dict[str, str] = {}
    tried = 0
    for alert in generate(60, seed=3, now=NOW):
        for path, leaf in _leaves(alert):
            if path[0] not in ("payload", "location", "markings"):
                continue  # ids and times are the audit's own columns
            for value, tells in _variants(leaf):
                changed = copy.deepcopy(alert)
                node = changed
                for step in path[:-1]:
                    node = node[step]
                node[path[-1]] = value
                try:  # only what the codec takes reaches a decision
                    changed = codec.decode(codec.encode(changed))
                except Exception:  # noqa: BLE001, S112 - a value the schema refuses never reaches the policy
                    continue
                tried += 1
                for partner in policy_set.partners:
                    text = " | ".join(decide(changed, partner, policy_set, NOW).reasons)
                    if any(tell in text for tell in tells):
                        leaked.setdefault("/".join(map(str, path)), text)
    assert tried > 500
    assert leaked == {}


def test_conditions_quote_an_enum_field_only_as_a_code() -> None:
    """The event type and risk level are enums the codec holds to their symbols, so a reason may name them; the
    conditions still quote them as every other value, through ``_label``, should a caller hand them text."""
    event = _event_types(frozenset({"CROSSING"}))({"payload": {"event_type": NAME}}, None)  # type: ignore[arg-type]
    risk = _watchlist(frozenset({"HIGH"}), False, {})({"payload": {"risk_level": NAME}}, None)  # type: ignore[arg-type]
    assert event is not None and risk is not None
    assert "Telltale" not in event and "Telltale" not in risk
    assert "(not a code)" in event and "(not a code)" in risk
    assert "LOW" in (_watchlist(frozenset({"HIGH"}), False, {})({"payload": {"risk_level": "LOW"}}, None) or "")  # type: ignore[arg-type]
