"""The registry refuses two versions with one fingerprint and two meanings.

The fingerprint hashes Avro's canonical form, which drops logicalType (and precision, scale,
defaults, aliases): a next version that turns timestamp-millis into timestamp-micros keeps it, and
a reader would decode the other version's records as its own, years off.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from puente.errors import SchemaError
from schemas import ALERT, AlertCodec, current, releases, version_from
from schemas import _registry as registry


def _micros(label: str = "next") -> registry.SchemaVersion:
    schema = copy.deepcopy(current(ALERT).expanded)
    for field in schema["fields"]:
        if field["name"] in ("occurred_at", "reported_at"):
            field["type"] = {"type": "long", "logicalType": "timestamp-micros"}
    return version_from(schema, label)


def _with_docs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {**{k: _with_docs(v) for k, v in schema.items()}, "doc": "reworded"}
    if isinstance(schema, list):
        return [_with_docs(v) for v in schema]
    return schema


def test_a_logical_type_change_keeps_the_fingerprint() -> None:
    """The premise: canonical form does not see timestamp-millis become timestamp-micros."""
    assert _micros().fingerprint == current(ALERT).fingerprint


def test_the_same_fingerprint_with_another_meaning_is_refused() -> None:
    """check_distinct names both labels and the fingerprint when versions differ beyond their docs."""
    with pytest.raises(SchemaError, match=r"current and next have the same fingerprint [0-9a-f]{16}"):
        registry.check_distinct((current(ALERT), _micros()))


def test_versions_differing_only_in_docs_are_accepted() -> None:
    """Rewording docs changes nothing a reader does: the versions may share a fingerprint."""
    reworded = version_from(_with_docs(current(ALERT).expanded), "reworded")
    assert reworded.fingerprint == current(ALERT).fingerprint
    registry.check_distinct((*releases(ALERT), current(ALERT), reworded))


def test_a_codec_is_not_built_over_two_meanings_of_one_fingerprint() -> None:
    """A reader on the next schema that also knows today's refuses to start, instead of misreading dates."""
    with pytest.raises(SchemaError, match="same fingerprint"):
        AlertCodec(_micros(), (*releases(ALERT), current(ALERT)))


def test_releases_refuse_a_release_that_only_changes_a_logical_type(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading releases/ fails when a release keeps the one before's fingerprint but not its meaning."""
    for label, version in (("v1", current(ALERT)), ("v2", _micros())):
        (tmp_path / label).mkdir()
        (tmp_path / label / f"{ALERT}.avsc").write_text(json.dumps(version.expanded))
    monkeypatch.setattr(registry, "RELEASE_DIR", tmp_path)
    with pytest.raises(SchemaError, match="v1 and v2 have the same fingerprint"):
        registry.releases.__wrapped__(ALERT)


def _release_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labels: list[str]) -> None:
    """A releases/ folder holding today's schema under each of ``labels``, loaded in its place."""
    for label in labels:
        (tmp_path / label).mkdir()
        (tmp_path / label / f"{ALERT}.avsc").write_text(json.dumps(current(ALERT).expanded))
    monkeypatch.setattr(registry, "RELEASE_DIR", tmp_path)


@pytest.mark.parametrize("stray", ["v3-draft", "v01", "v0", "vnext", "v\u0663", "v3 "])
def test_an_entry_that_only_looks_like_a_release_is_a_schema_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    stray: str) -> None:
    """A v* folder that is not v and a number without leading zeros (a draft, a second name for v1, an Arabic-Indic
    digit) is a SchemaError naming it, not a ValueError from int() nor a release loaded under a number it lacks."""
    _release_tree(tmp_path, monkeypatch, ["v1", stray])
    with pytest.raises(SchemaError, match="is not a release folder"):
        registry.releases.__wrapped__(ALERT)


def test_a_file_named_like_a_release_is_a_schema_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file named v2 beside the release folders is refused, not skipped."""
    _release_tree(tmp_path, monkeypatch, ["v1"])
    (tmp_path / "v2").write_text("")
    with pytest.raises(SchemaError, match="'v2' is not a release folder"):
        registry.releases.__wrapped__(ALERT)


def test_releases_are_ordered_by_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """v10 comes after v9 and v2, as numbers, not as text; entries not starting with v are not releases."""
    _release_tree(tmp_path, monkeypatch, ["v10", "v2", "v9", "drafts"])
    assert [v.label for v in registry.releases.__wrapped__(ALERT)] == ["v2", "v9", "v10"]


def test_rewording_why_an_added_default_holds_changes_no_meaning() -> None:
    """``puente.older_records`` is prose, as a doc is: a release and the current schema that word it differently (or
    one without it) share their fingerprint and their meaning, and a reader is built over both."""
    reworded = copy.deepcopy(current(ALERT).expanded)
    field = next(f for f in reworded["fields"] if f["name"] == "version")
    assert registry.OLDER_RECORDS in field
    field[registry.OLDER_RECORDS] = "reworded: " + field[registry.OLDER_RECORDS]
    without = copy.deepcopy(reworded)
    del next(f for f in without["fields"] if f["name"] == "version")[registry.OLDER_RECORDS]
    for schema in (reworded, without):
        registry.check_distinct([current(ALERT), version_from(schema, "next")])
        AlertCodec(version_from(schema, "next"), (*releases(ALERT), current(ALERT)))
