"""Schema evolution: the current schema stays compatible both ways with every release."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from puente.dev.synthetic import generate
from schemas import ALERT, SCHEMA_DIR, AlertCodec, SchemaVersion, current, load_expanded, releases, version_from
from schemas.compat import OLDER_RECORDS, check_compatible


def test_there_is_a_first_release() -> None:
    """At least one released version of the alert schema is kept."""
    assert releases(ALERT), "schemas/releases/v1/puente.Alert.avsc is missing"


@pytest.mark.parametrize("release", releases(ALERT), ids=lambda r: r.label)
def test_current_is_compatible_with_each_release(release) -> None:
    """Data written by the release reads under the current schema, and the other way round."""
    assert check_compatible(release, current(ALERT)) == []


def test_each_release_is_compatible_with_the_one_before() -> None:
    """Every release reads and is read by the release it followed."""
    rels = releases(ALERT)
    for older, newer in itertools.pairwise(rels):
        assert check_compatible(older, newer) == [], f"{older.label} -> {newer.label}"


def test_the_current_files_expand_to_the_registry_schema() -> None:
    """The one-type-per-file schemas expand to what the codec writes with."""
    assert load_expanded(SCHEMA_DIR / f"{ALERT}.avsc") == current(ALERT).expanded


def _with_extra_field(field: dict) -> dict:
    schema = copy.deepcopy(current(ALERT).expanded)
    schema["fields"].append(field)
    return schema


def test_adding_an_optional_field_is_compatible() -> None:
    """An added field with a default passes the check (the change a new release may make)."""
    newer = version_from(_with_extra_field({"name": "extra", "type": ["null", "string"], "default": None}), "v-new")
    assert check_compatible(current(ALERT), newer, samples=50) == []


def test_adding_a_required_field_is_caught() -> None:
    """An added field without a default breaks backward compatibility, and the check says so."""
    newer = version_from(_with_extra_field({"name": "extra", "type": "string"}), "v-bad")
    problems = check_compatible(current(ALERT), newer, samples=20)
    assert problems and problems[0].startswith("backward")


def test_changing_a_field_type_is_caught() -> None:
    """Turning a string field into an int breaks compatibility both ways."""
    schema = copy.deepcopy(current(ALERT).expanded)
    for field in schema["fields"]:
        if field["name"] == "agency":
            field["type"] = "int"
    problems = check_compatible(current(ALERT), version_from(json.loads(json.dumps(schema)), "v-bad"), samples=20)
    assert len(problems) == 2


# ---- changes that resolve but change what a record says ----------------------------------------
def _variant(change: Callable[[dict[str, Any]], None], label: str = "v-next") -> SchemaVersion:
    schema = copy.deepcopy(current(ALERT).expanded)
    change(schema)
    return version_from(schema, label)


def _field(record: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in record["fields"] if f["name"] == name)
    return found


def _markings(schema: dict[str, Any]) -> dict[str, Any]:
    return _field(schema, "markings")["type"]  # type: ignore[no-any-return]


def test_renaming_a_marking_is_caught_both_ways() -> None:
    """Renaming handling_code and caveats resolves (readers fill H0 and no caveats) but is reported, by path."""
    def rename(schema: dict) -> None:
        _field(_markings(schema), "handling_code")["name"] = "handling"
        _field(_markings(schema), "caveats")["name"] = "caveat_codes"

    problems = check_compatible(current(ALERT), _variant(rename), samples=20)
    assert any(p.startswith("backward") and "markings.handling_code: written by current" in p for p in problems)
    assert any(p.startswith("forward") and "markings.handling_code: current reads its default, 'H0'" in p
               for p in problems)
    assert any("markings.caveats" in p for p in problems)


def test_renaming_with_an_alias_still_fails_forward() -> None:
    """An alias lets the new reader read old data, but an older reader still fills its default: forward finding."""
    def rename(schema: dict) -> None:
        field = _field(_markings(schema), "handling_code")
        field["name"], field["aliases"] = "handling", ["handling_code"]

    problems = check_compatible(current(ALERT), _variant(rename), samples=20)
    assert problems and all(p.startswith("forward") for p in problems)
    assert "markings.handling_code: current reads its default" in problems[0]


def test_dropping_a_field_is_caught() -> None:
    """Dropping markings.caveats: older readers would read every new alert as having no caveats."""
    def drop(schema: dict) -> None:
        _markings(schema)["fields"] = [f for f in _markings(schema)["fields"] if f["name"] != "caveats"]

    problems = check_compatible(current(ALERT), _variant(drop), samples=20)
    assert [p.split(":")[0] for p in problems] == ["backward (v-next reading current)",
                                                   "forward (current reading v-next)"]
    assert all("markings.caveats" in p for p in problems)


def test_an_enum_symbol_an_older_reader_maps_to_its_default_is_caught() -> None:
    """A symbol added to an enum with a default reads, in older readers, as that default: a finding naming it."""
    def add(schema: dict) -> None:
        hit = next(b for b in _field(schema, "payload")["type"] if b["name"].endswith("WatchlistHit"))
        _field(hit, "risk_level")["type"]["symbols"].append("SEVERE")

    problems = check_compatible(current(ALERT), _variant(add), samples=20)
    assert len(problems) == 1
    assert problems[0].startswith("forward") and "payload(WatchlistHit).risk_level: symbol SEVERE" in problems[0]


@pytest.mark.parametrize(("before", "after"), [
    ({"type": "long", "logicalType": "timestamp-millis"}, {"type": "long", "logicalType": "timestamp-micros"}),
    ({"type": "long", "logicalType": "timestamp-millis"}, "long"),
    ({"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
     {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 3}),
])  # fmt: skip
def test_a_change_canonical_form_drops_is_caught(before: object, after: object) -> None:
    """A logicalType, precision or scale change keeps the fingerprint but changes the value: reported once."""
    old = _variant(lambda s: s["fields"].append({"name": "at", "type": before}), "v-old")
    new = _variant(lambda s: s["fields"].append({"name": "at", "type": after}), "v-new")
    problems = check_compatible(old, new, samples=5)
    assert len(problems) == 1 and problems[0].startswith("backward (v-new reading v-old): at: ")
    assert "does not see it" in problems[0]


def _headcount(types: object, label: str) -> SchemaVersion:
    """The current schema with the border event's headcount of ``types`` (without its null default if not a union)."""
    def change(schema: dict) -> None:
        border = next(b for b in _field(schema, "payload")["type"] if b["name"].endswith("BorderEvent"))
        _field(border, "headcount")["type"] = types
        if not isinstance(types, list):
            del _field(border, "headcount")["default"]

    return _variant(change, label)


def test_a_union_reordered_so_a_long_reads_as_a_double_is_caught() -> None:
    """fastavro reads a union value into the first reader branch it fits, promotions included: after
    [null, long, double] becomes [null, double, long], a long reads as a double (2**53 + 1 as 2**53). Reported,
    as the branch fastavro really takes."""
    old, new = _headcount(["null", "long", "double"], "v-old"), _headcount(["null", "double", "long"], "v-new")
    problems = check_compatible(old, new, samples=20)
    assert problems == ["backward (v-new reading v-old): payload(BorderEvent).headcount(long): v-old's long is read "
                        "by v-new as double, which does not hold every long: readers may read another number"]
    alert = next(a for a in generate(30, seed=2) if a["alert_type"] == "BORDER_EVENT")
    alert["payload"]["headcount"] = 2**53 + 1
    assert AlertCodec(new, (old,)).decode(AlertCodec(old).encode(alert))["payload"]["headcount"] == 2.0**53


@pytest.mark.parametrize(("before", "after", "lossy"), [
    ("long", "double", True), ("long", "float", True), ("int", "float", True),
    ("int", "double", False), ("int", "long", False), ("float", "double", False),
    (["null", "long"], ["null", "double"], True),
    (["null", "int", "long"], ["null", "long", "int"], False),  # an int read as a long is the same number
])  # fmt: skip
def test_a_promotion_that_can_change_a_number_is_caught(before: object, after: object, lossy: bool) -> None:
    """A type change the reader promotes is a finding only where the new type cannot hold every old value."""
    problems = check_compatible(_headcount(before, "v-old"), _headcount(after, "v-new"), samples=20)
    found = [p for p in problems if p.startswith("backward") and "does not hold every" in p]
    assert bool(found) is lossy


@pytest.mark.parametrize(("kind", "default"), [
    ("boolean", True), ({"type": "array", "items": "string"}, []), ("string", "H0"), ("int", 0)])
def test_an_added_field_whose_default_states_something_is_caught(kind: object, default: object) -> None:
    """A reader fills an added field's default in for every older record, whose writers never stated it: anything
    but null is a finding (an added flag defaulting to true would clear every older alert), unless the field says
    why the value is true of them all."""
    field = {"name": "cleared_for_court", "type": kind, "default": default}
    problems = check_compatible(current(ALERT), version_from(_with_extra_field(field), "v-new"), samples=20)
    assert any("cleared_for_court" in p and "never stated it" in p for p in problems), problems
    said = {**field, OLDER_RECORDS: "no alert before this release was cleared"}
    assert check_compatible(current(ALERT), version_from(_with_extra_field(said), "v-new"), samples=20) == []
    blank = {**field, OLDER_RECORDS: "  "}
    assert check_compatible(current(ALERT), version_from(_with_extra_field(blank), "v-new"), samples=20) != []
