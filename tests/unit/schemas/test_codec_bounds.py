"""The alert codec holds every array to its bound (``schemas.bounds.ARRAY_BOUNDS``) on both decoding paths, for every
writer: an array past it is read past, checked as any value is, but never built, and the alert is refused with the rest
of its value, that array empty."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from codec_paths import NATIVE, codec_on

from puente.dev.synthetic import generate
from puente.errors import BoundsExceededError, CorruptRecordError
from schemas import AlertCodec, bounds, current, releases
from schemas._fingerprint import HEADER_LEN

Change = Callable[[dict[str, Any], int], None]


def _alert(alert_type: str) -> dict[str, Any]:
    return copy.deepcopy(next(a for a in generate(60, seed=11) if a["alert_type"] == alert_type))


def _payload(field: str) -> Change:
    def change(alert: dict[str, Any], n: int) -> None:
        alert["payload"][field] = [alert["payload"][field][0]] * n
    return change


def _markings(field: str) -> Change:
    def change(alert: dict[str, Any], n: int) -> None:
        alert["markings"][field] = ["COL"] * n
    return change


def _person(field: str, where: str) -> Change:
    def change(alert: dict[str, Any], n: int) -> None:
        person = alert["payload"]["detainees"][0] if where == "detainees" else alert["payload"]["person"]
        person[field] = [(person[field] or ["COL"])[0]] * n
    return change


def _partners(alert: dict[str, Any], n: int) -> None:
    alert["version"], alert["lifecycle"] = 2, {"action": "CONSENT", "reason": None, "partners": ["COL"] * n}


ARRAYS = [
    ("SEIZURE", _payload("detainees"), "payload.detainees", bounds.MAX_PERSONS),
    ("SEIZURE", _payload("items"), "payload.items", bounds.MAX_ITEMS),
    ("SEIZURE", _person("documents", "detainees"), "payload.detainees[].documents", bounds.MAX_DOCUMENTS),
    ("SEIZURE", _person("nationalities", "detainees"), "payload.detainees[].nationalities", bounds.MAX_NATIONALITIES),
    ("WATCHLIST_HIT", _person("documents", "person"), "payload.person.documents", bounds.MAX_DOCUMENTS),
    ("BORDER_EVENT", _payload("nationalities_observed"), "payload.nationalities_observed",
     bounds.MAX_NATIONALITIES_OBSERVED),
    ("BORDER_EVENT", _markings("releasable_to"), "markings.releasable_to", bounds.MAX_MARKING_ENTRIES),
    ("SEIZURE", _markings("caveats"), "markings.caveats", bounds.MAX_MARKING_ENTRIES),
    ("WATCHLIST_HIT", _markings("originator_consent"), "markings.originator_consent", bounds.MAX_MARKING_ENTRIES),
    ("SEIZURE", _partners, "lifecycle.partners", bounds.MAX_MARKING_ENTRIES),
]


def _over(path: str, count: int, bound: int) -> str:
    return f"{path} has {count:,} entries; at most {bound:,} are accepted"


def _emptied(alert: dict[str, Any], path: str) -> dict[str, Any]:
    """``alert`` with the array at ``path`` (its person's, where ``[]`` says so: the first detainee's) empty."""
    out = copy.deepcopy(alert)
    *parents, last = path.replace("[]", ".0").split(".")
    target: Any = out
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = []
    return out


def _arrays(schema: Any, record: str = "", field: str = "") -> set[tuple[str, str]]:
    """The (record type, field) of every array and map in an expanded schema."""
    if isinstance(schema, list):
        return set().union(*(_arrays(b, record, field) for b in schema))
    if not isinstance(schema, dict):
        return set()
    kind = schema["type"]
    if kind in ("record", "error"):
        return set().union(*(_arrays(f["type"], schema["name"], f["name"]) for f in schema["fields"]))
    if kind in ("array", "map"):
        return {(record, field)} | _arrays(schema.get("items", schema.get("values")), record, field)
    return _arrays(kind, record, field) if isinstance(kind, (dict, list)) else set()


def test_every_array_of_every_alert_schema_has_a_bound() -> None:
    """Every array of the current alert schema and of each release is bounded, and each bound names one of them:
    an array added to the schema without a bound, or a bound whose field was renamed, fails here."""
    for version in (current(), *releases()):
        assert _arrays(version.expanded) <= set(bounds.ARRAY_BOUNDS), version.name
    assert _arrays(current().expanded) == set(bounds.ARRAY_BOUNDS)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize(("alert_type", "change", "path", "bound"), ARRAYS, ids=[a[2] for a in ARRAYS])
def test_an_array_past_its_bound_is_refused_with_the_rest_of_the_alert(
        monkeypatch: pytest.MonkeyPatch, native: bool, alert_type: str, change: Change, path: str,
        bound: int) -> None:
    """At its bound an array decodes; one entry more is BoundsExceededError naming its path, entries and bound, and
    carrying the alert with that array empty: the same on the native path and fastavro's."""
    codec = codec_on(monkeypatch, native)
    alert = _alert(alert_type)
    change(alert, bound)
    assert codec.decode(codec.encode(alert)) == alert
    change(alert, bound + 1)
    with pytest.raises(BoundsExceededError) as info:
        codec.decode(codec.encode(alert))
    assert str(info.value) == _over(path, bound + 1, bound)
    assert info.value.alert == _emptied(alert, path) and info.value.emptied == (path,)


def _count_at(codec: AlertCodec, alert: dict[str, Any], set_to: Callable[[int], None]) -> tuple[bytes, int]:
    """``alert``'s bytes with an array of none, and the offset of that array's count (a 0)."""
    set_to(1)
    one = codec.encode(alert)
    set_to(0)
    none = codec.encode(alert)
    at = next(i for i, (x, y) in enumerate(zip(one, none, strict=False)) if x != y)
    assert (one[at], none[at]) == (2, 0)
    return none, at


@pytest.mark.parametrize("native", NATIVE)
def test_the_bound_counts_the_entries_of_every_block(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """Avro may split an array into blocks: two of 32 codes decode, two of 40 are refused, each block within the
    bound but not the two, and the entries of the first are dropped with the rest (and checked as they are)."""
    codec = codec_on(monkeypatch, native)
    alert = _alert("SEIZURE")
    none, at = _count_at(codec, alert, lambda n: alert["markings"].update(releasable_to=["COL"] * n))
    code = b"\x06COL"

    def blocks(*counts: int) -> bytes:
        body = b"".join(bytes([2 * n]) + code * n for n in counts)
        return none[:at] + body + none[at:]

    assert codec.decode(blocks(32, 32))["markings"]["releasable_to"] == ["COL"] * 64
    with pytest.raises(BoundsExceededError) as info:
        codec.decode(blocks(40, 40))
    assert str(info.value) == _over("markings.releasable_to", 80, bounds.MAX_MARKING_ENTRIES)
    assert info.value.alert["markings"]["releasable_to"] == []
    # A code not UTF-8 in the first block, read (and, natively, built) before the second passed the bound.
    with pytest.raises(CorruptRecordError):
        codec.decode(blocks(40, 40).replace(code, b"\x06\xff\xfeZ", 1))


@pytest.mark.parametrize("native", NATIVE)
def test_entries_past_the_bound_are_read_past_and_checked(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """A count of 301 detainees followed by bytes no person is made of is corrupt, as it was before the bounds: the
    entries are read past, to the record's end, not taken on their count (then a record could hide anything
    there)."""
    codec = codec_on(monkeypatch, native)
    alert = _alert("SEIZURE")
    none, at = _count_at(codec, alert, lambda n: alert["payload"].update(detainees=alert["payload"]["detainees"] * n))
    data = none[:at] + b"\xda\x04" + b"\xff" * 400 + none[at:]  # 301 as a zigzag varint (602), then no person
    with pytest.raises(CorruptRecordError):
        codec.decode(data)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("fault", ["a name not UTF-8", "a birth date in year 10000"])
@pytest.mark.parametrize("which", [0, 150, 300])
def test_a_bad_value_in_an_entry_past_the_bound_is_corrupt_on_both_paths(
        monkeypatch: pytest.MonkeyPatch, native: bool, fault: str, which: int) -> None:
    """A value the native decoder refuses as it builds it (a string not UTF-8, a date beyond year 9999) makes the
    record corrupt in an entry never built too, first, within the bound or past it, on both paths: fastavro never
    reads those entries, so the Python walk checks them as the native decoder does."""
    codec = codec_on(monkeypatch, native)
    alert = _alert("SEIZURE")
    person = {**alert["payload"]["detainees"][0], "given_names": "QQQQ", "date_of_birth": date(1980, 1, 2)}
    alert["payload"]["detainees"] = [dict(person) for _ in range(bounds.MAX_PERSONS + 1)]
    alert["payload"]["detainees"][which]["given_names"] = "WWWW"
    alert["payload"]["detainees"][which]["date_of_birth"] = date(1980, 1, 3)
    data = codec.encode(alert)
    with pytest.raises(BoundsExceededError):
        codec.decode(data)
    if fault == "a name not UTF-8":
        bad = data.replace(b"WWWW", b"\xff\xfeWW")
    else:
        days = (date(1980, 1, 3) - date(1970, 1, 1)).days
        at = data.index(_zigzag(days), data.index(b"WWWW"))  # that person's birth date, after its name
        bad = data[:at] + _zigzag(2_932_897) + data[at + len(_zigzag(days)):]  # 10000-01-01
    with pytest.raises(CorruptRecordError):
        codec.decode(bad)


@pytest.mark.parametrize("native", NATIVE)
def test_every_array_past_its_bound_is_emptied_and_the_first_named(monkeypatch: pytest.MonkeyPatch,
                                                                   native: bool) -> None:
    """Two arrays past their bound, the one within an entry of another dropped: the alert comes with both empty, the
    rest of it decoded, and the message names the first in the record (its markings come before its payload)."""
    codec = codec_on(monkeypatch, native)
    alert = _alert("SEIZURE")
    alert["markings"]["caveats"] = ["ORCON"] * 65
    person = {**alert["payload"]["detainees"][0]}
    person["nationalities"] = ["COL"] * 11
    alert["payload"]["detainees"] = [person] * 301
    with pytest.raises(BoundsExceededError) as info:
        codec.decode(codec.encode(alert))
    assert str(info.value) == _over("markings.caveats", 65, bounds.MAX_MARKING_ENTRIES)
    assert info.value.emptied == ("markings.caveats", "payload.detainees")
    assert info.value.alert == _emptied(_emptied(alert, "markings.caveats"), "payload.detainees")


@pytest.mark.parametrize("native", NATIVE)
def test_an_older_writers_record_is_held_to_the_same_bounds(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """A record of the first schema version is checked before fastavro resolves it: its arrays are held to the same
    bounds, by the native check or the Python one, and fastavro resolves the rest, that array empty."""
    codec = codec_on(monkeypatch, native)
    alert = {k: v for k, v in _alert("SEIZURE").items() if k not in ("version", "lifecycle")}
    alert["payload"] = ("puente.Seizure", alert["payload"])
    alert["payload"][1]["detainees"] = alert["payload"][1]["detainees"] * (bounds.MAX_PERSONS + 1)
    with pytest.raises(BoundsExceededError) as info:
        codec.decode(AlertCodec(releases()[0]).encode(alert))
    assert str(info.value) == _over("payload.detainees", bounds.MAX_PERSONS + 1, bounds.MAX_PERSONS)
    resolved = info.value.alert
    assert resolved["payload"]["detainees"] == [] and resolved["version"] == 1  # resolved, the schema's default


@pytest.mark.skipif(True not in NATIVE, reason="the native codec is not built here")
def test_a_native_build_of_another_interface_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A native module built from an older native/ (no bounds) is left unused, and fastavro decodes instead."""
    import puente_avro

    monkeypatch.delattr(puente_avro, "INTERFACE")
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "1")
    assert not AlertCodec(current()).uses_native


def _zigzag(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z >= 0x80:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    return bytes([*out, z])


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("fault", ["summary not UTF-8", "occurred_at in year 10000"])
def test_a_bad_value_before_an_array_past_its_bound_is_corrupt_on_both_paths(
        monkeypatch: pytest.MonkeyPatch, native: bool, fault: str) -> None:
    """A bad value before an array past its bound (the native decoder's to refuse, and fastavro's after the Python
    walk): both paths refuse the record as corrupt, not as over its bound, so it is dead-lettered for one reason
    whichever decodes it. The array alone is over its bound on both."""
    codec = codec_on(monkeypatch, native)
    alert = _alert("SEIZURE")
    alert["summary"] = "ZZZZ"
    alert["payload"]["detainees"] = alert["payload"]["detainees"] * (bounds.MAX_PERSONS + 1)
    data = codec.encode(alert)
    with pytest.raises(BoundsExceededError):
        codec.decode(data)
    if fault == "summary not UTF-8":
        bad = data.replace(b"ZZZZ", b"\xff\xfeZZ")
    else:
        millis = int(alert["occurred_at"].timestamp() * 1000)
        at = data.index(_zigzag(millis), HEADER_LEN)
        bad = data[:at] + _zigzag(253_402_300_800_000) + data[at + len(_zigzag(millis)):]
    with pytest.raises(CorruptRecordError):
        codec.decode(bad)
