"""Schema evolution: the current schema stays compatible both ways with every release."""

from __future__ import annotations

import copy
import itertools
import json

import pytest

from schemas import ALERT, SCHEMA_DIR, current, load_expanded, releases, version_from
from schemas.compat import check_compatible


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
