"""The alert codec measures an alert's text as it decodes it (``AlertCodec.decode_bounded``): the answer is the walk's
(``schemas.bounds_problem``) for every string of the schema, on both decoding paths, and text it calls plain is text in
which the hidden-character scan finds nothing."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from codec_paths import NATIVE, codec_on
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.pipeline import hidden_char
from puente.dev.synthetic import generate
from schemas import bounds, bounds_problem, current
from tests.unit.broker.test_pipeline_bounds import _budget

TYPES = ("WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT")
# Every bound a string has, and one character either side: each string is tried at each of these lengths.
LENGTHS = sorted({n + d for n in (bounds.CODE, bounds.ALERT_ID, bounds.ORIGINATOR_AGENCY, bounds.NAME, bounds.PLACE,
                                  bounds.UNIT, bounds.SUMMARY, bounds.REMARKS, bounds.HANDLING_TEXT, bounds.DOCUMENT,
                                  bounds.PORT) for d in (0, 1)})


def _strings(schema: Any, record: str = "", field: str = "") -> set[tuple[str, str]]:
    """The (record type, field) of every string, and every array of strings, in an expanded schema."""
    if schema == "string":
        return {(record, field)}
    if isinstance(schema, list):
        return set().union(*(_strings(b, record, field) for b in schema))
    if not isinstance(schema, dict):
        return set()
    kind = schema["type"]
    if kind in ("record", "error"):
        return set().union(*(_strings(f["type"], schema["name"], f["name"]) for f in schema["fields"]))
    if kind == "array":
        return _strings(schema["items"], record, field)
    return _strings(kind, record, field) if isinstance(kind, (dict, list, str)) else set()


def _alert(alert_type: str) -> dict[str, Any]:
    """A generated alert of ``alert_type`` with every optional string, list and record filled, so each is tried."""
    alert = copy.deepcopy(next(a for a in generate(200, seed=3) if a["alert_type"] == alert_type))
    alert["summary"] = "s"  # generated summaries hold accents
    alert["location"] = {**(alert["location"] or {"latitude": None, "longitude": None}),
                         "province": "P", "border_sector": "B", "place_name": "n"}
    m = alert["markings"]
    m["releasable_to"], m["caveats"], m["originator_consent"] = ["COL"], ["C"], ["USA"]
    m["handling_code"], m["handling_text"] = "H3", "t"
    m["originator"]["unit"] = "U"
    alert["version"], alert["lifecycle"] = 2, {"action": "CONSENT", "reason": None, "partners": ["COL"]}
    p = alert["payload"]
    people = [p["person"]] if alert_type == "WATCHLIST_HIT" else p.get("detainees", [])
    if alert_type == "SEIZURE":
        person = {"given_names": "g", "surnames": "s", "date_of_birth": None, "birth_year": None, "sex": "M",
                  "nationalities": ["PAN"], "documents": []}
        p["detainees"] = people = [person]
        p["items"] = p["items"] or [{"category": "OTHER", "kind": "k", "quantity": 1.0, "unit": "u"}]
        p["conveyance"] = {"kind": "YACHT", "name": "n", "identifier": "i", "flag_country": "PAN"}
    for person in people:
        person["documents"] = [{"document_type": "PASSPORT", "number": "1", "issuing_country": "PAN",
                                "expires_on": None}]
        person["nationalities"] = person["nationalities"] or ["PAN"]
        person["given_names"], person["surnames"], person["sex"] = "g", "s", "M"
    if alert_type == "BORDER_EVENT":
        p["nationalities_observed"] = p["nationalities_observed"] or ["VEN"]
    for key, value in list(p.items()):
        if value is None and key in {k for _, k in bounds._PAYLOAD}:
            p[key] = "x"
    return alert


_ENUMS = {"alert_type", "event_type", "action", "reason", "category", "risk_level"}  # symbols decode as str


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every string in a decoded alert (list entries by index), enum symbols left out."""
    if isinstance(value, str):
        if path[-1] not in _ENUMS and path[-2:] != ("conveyance", "kind"):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))


def _with(alert: dict[str, Any], path: tuple[Any, ...], text: str) -> dict[str, Any]:
    out = copy.deepcopy(alert)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = text
    return out


def test_every_string_of_the_alert_schema_has_a_text_bound() -> None:
    """Every string field of the current alert schema (and each string of an array) has a bound in characters, and
    each bound names one: a string field added without one, or a bound whose field was renamed, fails here."""
    strings = _strings(current().expanded)
    assert strings <= set(bounds.TEXT_BOUNDS)
    # The payload's bounds are looked for in each payload type (as the walk does): a field one type lacks is left.
    payload = {(record, field) for record in ("puente.WatchlistHit", "puente.Seizure", "puente.BorderEvent")
               for field, _ in bounds._PAYLOAD}
    assert set(bounds.TEXT_BOUNDS) - strings <= payload
    assert {field for _, field in payload} == {field for record, field in strings & payload}


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("alert_type", TYPES)
def test_the_measured_text_gives_the_walks_answer_for_every_string(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                                     alert_type: str) -> None:
    """Each string of an alert, at each bound and one character over it, in two-byte characters (a bound counts
    characters, not bytes): ``decode_bounded`` answers as ``bounds_problem`` does on the decoded alert, word for
    word, and the alert comes back whole."""
    codec = codec_on(monkeypatch, native)
    base = _alert(alert_type)
    leaves = list(_leaves(codec.decode(codec.encode(base))))
    assert len(leaves) >= 20
    refused = 0
    for path in leaves:
        for length in LENGTHS:
            alert = _with(base, path, "é" * length)
            value, problem, plain = codec.decode_bounded(codec.encode(alert))
            assert value == alert
            assert problem == bounds_problem(value), (path, length)
            assert not plain
            refused += problem is not None
    assert refused > len(leaves)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("extra", [0, 1, 500])
def test_the_measured_text_in_all_gives_the_walks_answer(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                         extra: int) -> None:
    codec = codec_on(monkeypatch, native)
    alert = copy.deepcopy(next(a for a in generate(60, seed=5) if a["alert_type"] == "SEIZURE"))
    _budget(extra)(alert)
    value, problem, _ = codec.decode_bounded(codec.encode(alert))
    assert problem == bounds_problem(value)
    assert (problem is None) is (extra == 0)


@pytest.mark.parametrize("native", NATIVE)
def test_characters_are_counted_as_code_points(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Four-byte characters count one each: a name of 100 emoji is at its bound, 101 are over it."""
    codec = codec_on(monkeypatch, native)
    base = _alert("WATCHLIST_HIT")
    path = ("payload", "person", "surnames")
    assert codec.decode_bounded(codec.encode(_with(base, path, "😀" * bounds.NAME)))[1] is None
    problem = codec.decode_bounded(codec.encode(_with(base, path, "😀" * (bounds.NAME + 1))))[1]
    assert problem == f"payload.person.surnames has {bounds.NAME + 1} characters; at most {bounds.NAME} are accepted"


def test_without_the_native_codec_nothing_is_called_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fastavro path measures nothing as it reads: the value is walked, and the scan always runs."""
    codec = codec_on(monkeypatch, False)
    alert = _alert("BORDER_EVENT")
    assert codec.decode_bounded(codec.encode(alert)) == (alert, None, False)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=12), where=st.sampled_from([("summary",), ("payload", "remarks"),
                                                           ("markings", "caveats", 0), ("location", "place_name")]))
def test_text_called_plain_holds_nothing_the_scan_finds(text: str, where: tuple[Any, ...]) -> None:
    """Plain is printable ASCII and line feeds in every string: then the hidden-character scan finds nothing. Any
    other character (a tab, DEL, an accent, a direction override) makes the alert not plain."""
    for native in NATIVE:
        with pytest.MonkeyPatch.context() as monkeypatch:
            codec = codec_on(monkeypatch, native)
        alert = _with(_alert("BORDER_EVENT"), where, text)
        value, _, plain = codec.decode_bounded(codec.encode(alert))
        assert plain is (native and all(c == "\n" or " " <= c <= "~" for c in text))
        if plain:
            assert hidden_char(value) is None


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("char", ["\t", "\x7f", "\u202e", "\u200b", "é", "\x00", "\r"])
def test_one_character_outside_printable_ascii_makes_the_alert_not_plain(monkeypatch: pytest.MonkeyPatch,
                                                                          native: bool, char: str) -> None:
    codec = codec_on(monkeypatch, native)
    base = _alert("SEIZURE")
    assert codec.decode_bounded(codec.encode(base))[2] is native
    for path in _leaves(base):
        assert codec.decode_bounded(codec.encode(_with(base, path, f"a{char}b")))[2] is False, path
