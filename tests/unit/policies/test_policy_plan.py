"""How field rules expand over the schema, and reading YAML with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

import schemas
from policies._fields import alert_fields, parent_path
from policies._model import Cover
from policies._plan import plan_fields, shadowed
from policies._yamlio import line_of, read_yaml
from puente.errors import PolicyError

FIELDS = alert_fields(schemas.current().expanded, schemas.PAYLOAD_TYPE)


def _plan(alert_type: str, others: str, fields: dict[str, str]) -> dict[str, str]:
    cover = Cover.model_validate({"rule": "R", "alert_type": alert_type, "others": others, "fields": fields})
    return {p.path: p.rule.action.value for p in plan_fields(FIELDS[alert_type], cover)}


def test_schema_paths_follow_the_payload_branch() -> None:
    """Each alert type sees its own payload fields, with [] for array items."""
    assert "payload.detainees[].documents[].number" in FIELDS["SEIZURE"]
    assert "payload.person.surnames" in FIELDS["WATCHLIST_HIT"]
    assert "payload.person.surnames" not in FIELDS["SEIZURE"]
    assert FIELDS["SEIZURE"]["payload.detainees"].kind == "array"
    assert parent_path("payload.detainees[].surnames") == "payload.detainees"


def test_others_drop_empties_unnamed_content_but_keeps_the_envelope() -> None:
    """With others: drop, every unnamed optional content field is dropped; ids and markings stay."""
    plan = _plan("BORDER_EVENT", "drop", {"payload.headcount": "keep"})
    assert plan["location"] == "drop"
    assert plan["summary"] == "drop"
    assert plan["payload.remarks"] == "drop"
    assert plan["payload.nationalities_observed"] == "drop"
    assert plan["payload.headcount"] == "keep"
    assert "payload.event_type" not in plan  # required: kept, the view must fit the schema
    assert not any(p.startswith("markings") or p in ("alert_id", "occurred_at") for p in plan)


def test_others_keep_changes_only_named_fields() -> None:
    """With others: keep, only the named fields change."""
    assert _plan("SEIZURE", "keep", {"payload.operation_name": "mask"}) == {"payload.operation_name": "mask"}


def test_keeping_a_container_keeps_what_it_holds() -> None:
    """Keeping a record keeps its unnamed sub-fields, while named sub-fields still apply."""
    plan = _plan("SEIZURE", "drop", {"payload.detainees": "keep", "payload.detainees[].surnames": "mask"})
    assert plan["payload.detainees"] == "keep"
    assert plan["payload.detainees[].surnames"] == "mask"
    assert "payload.detainees[].given_names" not in plan


def test_named_sub_field_keeps_its_parents_open() -> None:
    """A rule deep inside an array keeps the way to it, and drops its unnamed siblings."""
    plan = _plan("SEIZURE", "drop", {"payload.detainees[].documents[].number": "pseudonymise"})
    assert "payload.detainees" not in plan
    assert plan["payload.detainees[].documents[].number"] == "pseudonymise"
    assert plan["payload.detainees[].given_names"] == "drop"
    assert plan["payload.detainees[].documents[].expires_on"] == "drop"


def test_rules_under_a_dropped_field_are_shadowed() -> None:
    """A rule under a dropped field is reported as shadowed and left out of the plan."""
    fields = {"payload.detainees": "drop", "payload.detainees[].surnames": "mask"}
    cover = Cover.model_validate({"rule": "R", "alert_type": "SEIZURE", "fields": fields})
    assert shadowed(cover) == [("payload.detainees[].surnames", "payload.detainees")]
    assert "payload.detainees[].surnames" not in _plan("SEIZURE", "drop", fields)


def test_line_of_skips_pydantic_union_tags(tmp_path: Path) -> None:
    """Location parts that are not keys (pydantic's tags) are skipped, reaching the right line."""
    path = tmp_path / "a.yaml"
    path.write_text("covers:\n  - rule: R\n    fields:\n      a.b: drop\n      c.d: {action: mask}\n")
    _, node = read_yaml(path, "a.yaml")
    assert line_of(node, ("covers", 0, "fields", "c.d", "function-before[_bare_action(), FieldRule]", "action")) == 5
    assert line_of(node, ("covers", 0, "missing")) == 2


def test_duplicate_keys_in_flow_mappings_are_refused(tmp_path: Path) -> None:
    """Duplicate keys are refused even on one line."""
    path = tmp_path / "a.yaml"
    path.write_text("x: {a: 1, a: 2}\n")
    with pytest.raises(PolicyError, match=r"a\.yaml:1: duplicate key 'a'"):
        read_yaml(path, "a.yaml")
