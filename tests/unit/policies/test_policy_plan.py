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
ENVELOPE = ("alert_id", "alert_type", "markings.classification", "markings.originator.country")


def _plan(alert_type: str, fields: dict[str, str], others: str = "drop") -> dict[str, str]:
    cover = Cover.model_validate({"rule": "R", "alert_type": alert_type, "others": others, "fields": fields})
    return {p.path: p.rule.action.value for p in plan_fields(FIELDS[alert_type], cover, ENVELOPE, FIELDS[alert_type])}


def test_a_kept_record_keeps_only_the_fields_of_the_reviewed_release() -> None:
    """``payload.person: keep`` keeps what the person record held in the release the policy was reviewed against:
    a field a later release adds under it (here one made up, a biometric template, and one the reviewed release is
    taken to lack) is planned as an unnamed drop, not shared because its record is kept; a rule naming it decides."""
    fields = dict(FIELDS["WATCHLIST_HIT"])
    fields["payload.person.biometric_template"] = fields["payload.person.surnames"]
    reviewed = set(FIELDS["WATCHLIST_HIT"]) - {"payload.person.sex"}
    cover = Cover.model_validate({"rule": "R", "alert_type": "WATCHLIST_HIT", "fields": {"payload.person": "keep"}})
    planned = {p.path: p for p in plan_fields(fields, cover, ENVELOPE, reviewed)}
    for newer in ("payload.person.biometric_template", "payload.person.sex"):
        assert planned[newer].rule.action.value == "drop" and not planned[newer].named and planned[newer].unreviewed
    assert "payload.person.surnames" not in planned  # reviewed: kept with its record
    named = Cover.model_validate({"rule": "R", "alert_type": "WATCHLIST_HIT",
                                  "fields": {"payload.person": "keep", "payload.person.sex": "keep"}})
    assert [p.path for p in plan_fields(fields, named, ENVELOPE, reviewed) if p.unreviewed] == [
        "payload.person.biometric_template"]


def test_schema_paths_follow_the_payload_branch() -> None:
    """Each alert type sees its own payload fields, with [] for array items."""
    assert "payload.detainees[].documents[].number" in FIELDS["SEIZURE"]
    assert "payload.person.surnames" in FIELDS["WATCHLIST_HIT"]
    assert "payload.person.surnames" not in FIELDS["SEIZURE"]
    assert FIELDS["SEIZURE"]["payload.detainees"].kind == "array"
    assert parent_path("payload.detainees[].surnames") == "payload.detainees"


def test_every_unnamed_field_is_dropped_envelope_fields_included() -> None:
    """A view is an allow-list: content and envelope fields nothing names are dropped; the envelope stays."""
    plan = _plan("BORDER_EVENT", {"payload.headcount": "keep"})
    assert plan["location"] == "drop"
    assert plan["summary"] == "drop"
    assert plan["payload.remarks"] == "drop"
    assert plan["payload.nationalities_observed"] == "drop"
    assert plan["payload.headcount"] == "keep"
    for path in ("agency", "occurred_at", "reported_at", "source_timezone", "markings.originator.unit",
                 "markings.caveats", "markings.originator.agency"):  # fmt: skip
        assert plan[path] == "drop", path
    assert not set(ENVELOPE) & set(plan)


def test_required_fields_nothing_names_are_emptied_and_required_records_opened() -> None:
    """An unnamed required leaf is planned as a drop (emptied by the view); a required record is not
    dropped whole, its own fields are, one by one."""
    plan = _plan("WATCHLIST_HIT", {"payload.risk_level": "keep"})
    assert plan["payload.list_name"] == "drop"  # a required string: emptied to ""
    assert plan["payload.person.surnames"] == "drop"
    assert plan["payload.person.documents"] == "drop"
    assert "payload.person" not in plan and "payload" not in plan and "markings" not in plan
    assert FIELDS["WATCHLIST_HIT"]["payload.list_name"].empty() == ""
    assert FIELDS["WATCHLIST_HIT"]["occurred_at"].empty().timestamp() == 0
    assert FIELDS["WATCHLIST_HIT"]["payload.risk_level"].empty() == "UNKNOWN"  # the enum's schema default
    assert not FIELDS["WATCHLIST_HIT"]["alert_type"].droppable  # a required enum without a default
    assert not FIELDS["WATCHLIST_HIT"]["payload.person"].droppable  # a required record


def test_others_drop_is_a_no_op() -> None:
    """others: drop, still accepted, plans exactly what leaving it out plans."""
    fields = {"payload.operation_name": "mask", "payload.items": "keep"}
    assert _plan("SEIZURE", fields, others="drop") == _plan("SEIZURE", fields)


def test_keeping_a_container_keeps_what_it_holds() -> None:
    """Keeping a record keeps its unnamed sub-fields, while named sub-fields still apply."""
    plan = _plan("SEIZURE", {"payload.detainees": "keep", "payload.detainees[].surnames": "mask"})
    assert plan["payload.detainees"] == "keep"
    assert plan["payload.detainees[].surnames"] == "mask"
    assert "payload.detainees[].given_names" not in plan


def test_named_sub_field_keeps_its_parents_open() -> None:
    """A rule deep inside an array keeps the way to it, and drops its unnamed siblings."""
    plan = _plan("SEIZURE", {"payload.detainees[].documents[].number": "pseudonymise"})
    assert "payload.detainees" not in plan
    assert plan["payload.detainees[].documents[].number"] == "pseudonymise"
    assert plan["payload.detainees[].given_names"] == "drop"
    assert plan["payload.detainees[].documents[].expires_on"] == "drop"
    assert plan["payload.detainees[].documents[].document_type"] == "drop"  # required: emptied


def test_rules_under_a_dropped_field_are_shadowed() -> None:
    """A rule under a dropped field is reported as shadowed and left out of the plan."""
    fields = {"payload.detainees": "drop", "payload.detainees[].surnames": "mask"}
    cover = Cover.model_validate({"rule": "R", "alert_type": "SEIZURE", "fields": fields})
    assert shadowed(cover) == [("payload.detainees[].surnames", "payload.detainees")]
    assert "payload.detainees[].surnames" not in _plan("SEIZURE", fields)


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
