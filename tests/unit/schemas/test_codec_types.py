"""Encoding refuses a value of the wrong type, on every path, instead of letting fastavro coerce it.

fastavro's writer turned 2.9 into 2, "PANAMA_ONLY" into the caveats P, A, N..., a dict into its
keys, True into 1 or 1.0, Decimal("1e400") into infinity, and a naive datetime into the host's
local time. Each is now a RecordMismatchError naming the field's path and the type expected,
never the value.
"""

from __future__ import annotations

import copy
import enum
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from codec_paths import NATIVE, codec_on

from puente.dev.synthetic import generate
from puente.errors import RecordMismatchError
from schemas import alert_codec, alert_from_json, current, to_json


def _alert(kind: str) -> dict[str, Any]:
    return next(a for a in generate(40, seed=5) if a["alert_type"] == kind)


def _set(kind: str, path: str, value: Any) -> dict[str, Any]:
    """A copy of an alert of ``kind`` with ``value`` at a dotted path (``payload.items.0.quantity``)."""
    alert = copy.deepcopy(_alert(kind))
    *parents, last = path.split(".")
    node: Any = alert
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    node[int(last) if isinstance(node, list) else last] = value
    return alert


class _Three(enum.IntEnum):
    THREE = 3


_SECRET = "PA123456"  # a value no message may echo
MISTYPED = [
    ("BORDER_EVENT", "version", True, "version: expected an int, got bool"),
    ("BORDER_EVENT", "version", 2.9, "version: expected an int, got float"),
    ("SEIZURE", "payload.persons_detained", 2.5, "payload.persons_detained: expected an int, got float"),
    ("SEIZURE", "payload.items.0.quantity", True, "payload.items[0].quantity: expected a number, got bool"),
    ("SEIZURE", "payload.items.0.quantity", Decimal("1e400"),
     "payload.items[0].quantity: expected a number, got Decimal"),
    ("BORDER_EVENT", "markings.caveats", "PANAMA_ONLY", "markings.caveats: expected a list, got str"),
    ("BORDER_EVENT", "markings.caveats", {"PANAMA_ONLY"}, "markings.caveats: expected a list, got set"),
    ("BORDER_EVENT", "markings.releasable_to", "COL", "markings.releasable_to: expected a list, got str"),
    ("BORDER_EVENT", "markings.releasable_to", {"COL": 1}, "markings.releasable_to: expected a list, got dict"),
    ("BORDER_EVENT", "markings.releasable_to", ("COL",), "markings.releasable_to: expected a list, got tuple"),
    ("BORDER_EVENT", "markings.releasable_to", ["COL", 7], "markings.releasable_to[1]: expected a string, got int"),
    ("WATCHLIST_HIT", "payload.risk_level", _SECRET, "payload.risk_level: expected a puente.RiskLevel symbol, got str"),
    ("BORDER_EVENT", "summary", _SECRET.encode(), "summary: expected a string, got bytes"),
    ("BORDER_EVENT", "occurred_at", datetime(2026, 1, 1, 12, 0), "occurred_at: expected a timezone-aware datetime"),
    ("BORDER_EVENT", "occurred_at", 10**12, "occurred_at: expected a timezone-aware datetime, got int"),
    ("WATCHLIST_HIT", "payload.person.date_of_birth", datetime(1990, 1, 1, tzinfo=UTC),
     "payload.person.date_of_birth: expected a date, got datetime"),
]  # fmt: skip


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize(("kind", "path", "value", "message"), MISTYPED, ids=[f"{m[1]}={m[2]!r}" for m in MISTYPED])
def test_a_mistyped_value_is_refused_naming_its_path(monkeypatch: pytest.MonkeyPatch, native: bool, kind: str,
                                                     path: str, value: Any, message: str) -> None:
    """A value fastavro would coerce is a RecordMismatchError naming the field path and type, not the value."""
    codec = codec_on(monkeypatch, native)
    with pytest.raises(RecordMismatchError) as info:
        codec.encode(_set(kind, path, value))
    assert message in str(info.value)
    assert _SECRET not in str(info.value)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("when", [datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
                                  datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))])
def test_a_time_outside_years_1_to_9999_in_utc_is_refused(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                          when: datetime) -> None:
    """An aware time within years 1-9999 as written but outside them in UTC ("never expires": 9999-12-31 in
    Panama) is refused by either codec, naming the field: no reader could read what was written (the native
    encoder wrote it, and the broker dead-lettered it as corrupt)."""
    with pytest.raises(RecordMismatchError, match="occurred_at: expected a datetime within years 1-9999 in UTC"):
        codec_on(monkeypatch, native).encode(_set("SEIZURE", "occurred_at", when))


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize(("kind", "path", "value", "read"), [
    ("SEIZURE", "payload.items.0.quantity", 3, 3.0),  # an int is a number: written exactly
    ("SEIZURE", "payload.items.0.quantity", math.inf, math.inf),  # a float is written as it is, as natively
    ("BORDER_EVENT", "version", _Three.THREE, 3),  # an int subclass is an int
    ("BORDER_EVENT", "occurred_at", datetime(2026, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5))),
     datetime(2026, 1, 1, 12, 0, tzinfo=UTC)),
    ("WATCHLIST_HIT", "payload.person.date_of_birth", date(1990, 1, 1), date(1990, 1, 1)),
    ("WATCHLIST_HIT", "payload.person.date_of_birth", None, None),
])  # fmt: skip
def test_values_of_the_right_type_still_encode(monkeypatch: pytest.MonkeyPatch, native: bool, kind: str, path: str,
                                               value: Any, read: Any) -> None:
    """Ints where a double goes, floats, int subclasses, aware datetimes in any zone, dates and nulls still encode."""
    codec = codec_on(monkeypatch, native)
    decoded: Any = codec.decode(codec.encode(_set(kind, path, value)))
    for step in path.split("."):
        decoded = decoded[int(step)] if isinstance(decoded, list) else decoded[step]
    assert decoded == read
    assert type(decoded) is type(read)


def test_every_generated_alert_passes_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard refuses nothing the synthetic generator makes: each alert round trips on the fastavro path."""
    codec = codec_on(monkeypatch, False)
    for alert in generate(200, seed=31):
        assert codec.decode(codec.encode(alert)) == alert


def test_a_key_the_record_type_does_not_have_is_refused_on_every_path() -> None:
    """A misspelt field (``handling_codee``) would be dropped and its field written as its default, a looser
    restriction: the native encoder declines a record with a key its type lacks, and the fallback refuses it,
    naming where and how many, never the key."""
    alert = _alert("WATCHLIST_HIT")
    for bad in ({**alert, "extra": 1},
                {**alert, "markings": {**alert["markings"], "handling_codee": "H2"}}):
        with pytest.raises(RecordMismatchError) as caught:
            alert_codec().encode(bad)
        assert "key(s) that" in str(caught.value) and "codee" not in str(caught.value)
    assert "markings holds 1 key(s)" in str(caught.value)


def _defaulted(record: str) -> list[str]:
    """The fields of ``record`` whose default is not null: what fastavro would write unsaid."""
    fields = current().parsed["__named_schemas"][record]["fields"]
    return [f["name"] for f in fields if f.get("default") is not None]


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("field", _defaulted("puente.Markings"))
def test_a_marking_left_out_is_refused_not_written_as_its_default(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                                   field: str) -> None:
    """A Markings field left out was written as its default, handling code H0 and no caveats being the loosest:
    both paths refuse it, naming it."""
    alert = copy.deepcopy(_alert("WATCHLIST_HIT"))
    alert["markings"]["handling_code"] = "H2"
    alert["markings"]["caveats"] = ["PANAMA_ONLY"]
    del alert["markings"][field]
    with pytest.raises(RecordMismatchError, match=rf"markings\.{field} is missing"):
        codec_on(monkeypatch, native).encode(alert)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize(("kind", "path"), [("BORDER_EVENT", "source_timezone"), ("BORDER_EVENT", "version"),
                                            ("SEIZURE", "payload.persons_detained"),
                                            ("WATCHLIST_HIT", "payload.risk_level")])
def test_any_field_with_a_default_other_than_null_must_be_given(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                                kind: str, path: str) -> None:
    """Outside the markings too, a field whose default is not null is refused when left out: a default is not a value
    the writer chose."""
    alert = copy.deepcopy(_alert(kind))
    *parents, last = path.split(".")
    node = alert
    for step in parents:
        node = node[step]
    del node[last]
    with pytest.raises(RecordMismatchError, match=rf"{path.replace('.', '[.]')} is missing"):
        codec_on(monkeypatch, native).encode(alert)


@pytest.mark.parametrize("native", NATIVE)
def test_a_field_whose_default_is_null_may_be_left_out(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Null says nothing: handling_text, review_at, summary and lifecycle may still be left out, and read as None."""
    alert = copy.deepcopy(_alert("WATCHLIST_HIT"))
    for name in ("summary", "lifecycle"):
        alert.pop(name)
    for name in ("handling_text", "review_at"):
        alert["markings"].pop(name)
    codec = codec_on(monkeypatch, native)
    back = codec.decode(codec.encode(alert))
    assert back["summary"] is None and back["lifecycle"] is None
    assert back["markings"]["handling_text"] is None and back["markings"]["review_at"] is None


def test_the_json_form_fills_defaults_as_copies() -> None:
    """The JSON form as people write it takes the schema's defaults for what it leaves out, each its own copy."""
    doc = to_json(_alert("SEIZURE"))
    for name in ("caveats", "originator_consent"):
        del doc["markings"][name]
    for name in ("source_timezone", "version"):
        del doc[name]
    del doc["payload"]["detainees"]
    one, two = alert_from_json(doc), alert_from_json(doc)
    assert (one["source_timezone"], one["version"], one["markings"]["caveats"]) == ("America/Panama", 1, [])
    assert one["payload"]["detainees"] == [] and one["markings"]["caveats"] is not two["markings"]["caveats"]
    assert alert_codec().decode(alert_codec().encode(one))["markings"]["originator_consent"] == []
