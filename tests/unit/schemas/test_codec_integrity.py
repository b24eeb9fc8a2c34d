"""What a strict Avro reader refuses, every decode path refuses, and no encode path writes.

A record must not reach partners if their own (strict) readers would stall on it: an ``int``
beyond 32 bits, a date beyond the calendar, an enum or union index outside its list. The
native decoder, fastavro for the current writer and fastavro resolving an older writer must
all refuse the same bytes.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pytest
from codec_paths import NATIVE, codec_on
from fastavro import schemaless_writer

from puente.dev.synthetic import generate
from puente.errors import CodecError, CorruptRecordError, RecordMismatchError
from schemas import PAYLOAD_TYPE, AlertCodec, SchemaVersion, SingleObjectCodec, current, known_writers, releases
from schemas import version_from as _version_from
from schemas._fingerprint import header
from schemas.compat import OLDER_RECORDS, check_compatible


def _raw(version: SchemaVersion, record: dict[str, Any]) -> bytes:
    """Bytes as fastavro writes them with no range check: what a careless writer could send."""
    names = {f["name"] for f in version.expanded["fields"]}
    record = {k: v for k, v in record.items() if k in names}
    if isinstance(record.get("payload"), dict):
        record["payload"] = (PAYLOAD_TYPE[record["alert_type"]], record["payload"])
    out = BytesIO()
    schemaless_writer(out, version.parsed, record)
    return header(version.fingerprint) + out.getvalue()


def _alert(kind: str) -> dict[str, Any]:
    return next(a for a in generate(40, seed=5) if a["alert_type"] == kind)


def _with_payload(alert: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**alert, "payload": {**alert["payload"], **fields}}


def _with_person(alert: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return _with_payload(alert, person={**alert["payload"]["person"], **fields})


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**40, -(2**62), 2**63 - 1])
def test_an_int_beyond_32_bits_is_corrupt_on_every_path(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                        value: int) -> None:
    """An int field holding a value beyond 32 bits (top level, in the payload, a date's days) is a CorruptRecordError
    that does not echo the value, from the current writer and from an older one alike. So is a date outside years
    1-9999 (never a panic or an OverflowError); the first and last days of the calendar round trip."""
    from datetime import date

    codec = codec_on(monkeypatch, native)
    seizure, hit = _alert("SEIZURE"), _alert("WATCHLIST_HIT")
    samples = [_raw(current(), {**seizure, "version": value}),
               _raw(current(), _with_payload(seizure, persons_detained=value)),
               _raw(releases()[0], _with_payload(seizure, persons_detained=value)),
               _raw(current(), _with_person(hit, date_of_birth=("int", value)))]  # fastavro writes these unchecked
    for days in (2**31 - 1, -(2**31), 2_932_897, -719_163):
        with pytest.raises(CorruptRecordError):
            codec.decode(_raw(current(), _with_person(hit, date_of_birth=("int", days))))
    for first_or_last in (date(1, 1, 1), date(9999, 12, 31)):
        alert = _with_person(hit, date_of_birth=first_or_last)
        assert codec.decode(codec.encode(alert)) == alert
    for data in samples:
        with pytest.raises(CorruptRecordError) as info:
            codec.decode(data)
        assert str(value) not in str(info.value)


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**40, 2**70])
def test_encoding_an_int_beyond_32_bits_is_refused(monkeypatch: pytest.MonkeyPatch, native: bool,
                                                   value: int) -> None:
    """An int beyond 32 bits is a RecordMismatchError naming the field and not the value; nothing is written. The
    largest and smallest ints themselves encode and decode unchanged."""
    codec = codec_on(monkeypatch, native)
    edges = [{**_alert("SEIZURE"), "version": 2**31 - 1}, _with_payload(_alert("SEIZURE"), persons_detained=-(2**31))]
    for edge in edges:
        assert codec.decode(codec.encode(edge)) == edge
    cases = [({**_alert("SEIZURE"), "version": value}, "version"),
             (_with_payload(_alert("SEIZURE"), persons_detained=value), "persons_detained"),
             (_with_person(_alert("WATCHLIST_HIT"), birth_year=value), "birth_year"),
             (_with_payload(_alert("SEIZURE"), detainees=[{**_alert("WATCHLIST_HIT")["payload"]["person"],
                                                           "birth_year": value}]), "birth_year")]
    for alert, field in cases:
        with pytest.raises(RecordMismatchError) as info:
            codec.encode(alert)
        assert field in str(info.value)
        assert str(value) not in str(info.value)


# ---- enum and union indexes ------------------------------------------------------------------------
_OLD = {"type": "record", "name": "T", "namespace": "t", "fields": [
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
    {"name": "u", "type": ["null", "int"]},
]}
_NEW = {**_OLD, "fields": [*_OLD["fields"], {"name": "n", "type": "long", "default": 0}]}


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize(("body", "problem"), [
    (bytes([1, 2, 4]), "enum"),   # e = -1: fastavro alone took "C", the last symbol
    (bytes([2, 1, 4]), "union"),  # u's branch = -1: fastavro alone took "int", the last branch
    (bytes([6, 2, 4]), "enum"),   # e = 3: one past the end
    (bytes([2, 4, 4]), "union"),  # u's branch = 2: one past the end
])
def test_an_index_outside_its_list_is_refused_from_old_and_current_writers(
        monkeypatch: pytest.MonkeyPatch, native: bool, body: bytes, problem: str) -> None:
    """A negative or too-large enum or union index is a CorruptRecordError naming which, whether the body comes from
    the current writer or from an older one that fastavro resolves, native codec or not."""
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "1" if native else "0")
    old, new = _version_from(_OLD, "v1"), _version_from(_NEW, "v2")
    codec = SingleObjectCodec(new, (old,))
    assert codec.decode(header(old.fingerprint) + bytes([2, 2, 4])) == {"e": "B", "u": 2, "n": 0}
    for data in (header(old.fingerprint) + body, header(new.fingerprint) + body + b"\x00"):
        with pytest.raises(CorruptRecordError, match=f"{problem} index out of range"):
            codec.decode(data)


@pytest.mark.parametrize("native", NATIVE)
def test_a_negative_alert_type_from_a_first_release_writer_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                      native: bool) -> None:
    """A v1 alert whose alert_type index is -1 is refused, not read as the last alert type."""
    codec = codec_on(monkeypatch, native)
    alert = _alert("SEIZURE")
    data = _raw(releases()[0], alert)
    assert codec.decode(data)["alert_type"] == "SEIZURE"
    at = data.index(alert["alert_id"].encode()) + len(alert["alert_id"])  # alert_type follows alert_id
    with pytest.raises(CorruptRecordError, match="enum index"):
        codec.decode(data[:at] + b"\x01" + data[at + 1:])


@pytest.mark.skipif(NATIVE == [False], reason="the native codec is not built here")
@pytest.mark.parametrize("release", known_writers(), ids=lambda v: v.label)
def test_native_and_fastavro_paths_agree_on_every_altered_byte(monkeypatch: pytest.MonkeyPatch,
                                                              release: SchemaVersion) -> None:
    """Each byte of an alert's body in turn set to a negative or an oversized varint: the native codec and the fastavro
    path give the same value, or both refuse."""
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "1")
    native = AlertCodec(current(), known_writers())
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "0")
    slow = AlertCodec(current(), known_writers())
    for alert in (_alert("SEIZURE"), _alert("WATCHLIST_HIT"), _alert("BORDER_EVENT")):
        data = _raw(release, alert)
        for at in range(10, len(data)):
            for byte in (0x01, 0x7F, 0xFF):
                altered = data[:at] + bytes([byte]) + data[at + 1:]
                assert _outcome(native, altered) == _outcome(slow, altered), f"byte {at} set to {byte:#x}"


def _outcome(codec: SingleObjectCodec, data: bytes) -> str:
    try:
        return repr(codec.decode(data))  # repr: a NaN read from altered bytes equals itself
    except CodecError:
        return "refused"


def _with_added_markings(*fields: dict[str, Any]) -> SchemaVersion:
    """The current schema with ``fields`` added to the markings: a next release whose reader fills their defaults."""
    schema = copy.deepcopy(current().expanded)
    markings = next(f for f in schema["fields"] if f["name"] == "markings")["type"]
    markings["fields"].extend(copy.deepcopy(list(fields)))
    return _version_from(json.loads(json.dumps(schema)), "v-next")


_DECLASSIFY = {"name": "declassify_at", "type": {"type": "long", "logicalType": "timestamp-millis"},
               "default": 4102444800000, OLDER_RECORDS: "nothing released before it is to be declassified earlier"}
_DISSEMINATION = {"name": "dissemination", "type": {"type": "array", "items": "string"}, "default": [],
                  OLDER_RECORDS: "no release before it limited dissemination beyond releasable_to"}


@pytest.mark.parametrize("native", NATIVE)
def test_defaults_an_older_writer_lacks_are_each_records_own(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """A default fastavro fills in for an older writer's record was the schema's own list, shared by every record read
    (appending to one changed the next): each record now holds its own copy, and the schema is untouched."""
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "1" if native else "0")
    reader = AlertCodec(_with_added_markings(_DISSEMINATION), (current(),))
    data = AlertCodec(current()).encode(_alert("SEIZURE"))
    one, two = reader.decode(data), reader.decode(data)
    one["markings"]["dissemination"].append("PANAMA_ONLY")
    assert two["markings"]["dissemination"] == [] and reader.decode(data)["markings"]["dissemination"] == []


@pytest.mark.parametrize("native", NATIVE)
def test_a_logical_default_is_read_by_its_logical_type(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    """A timestamp-millis default (a long, as Avro writes one) filled in for an older writer is read as the datetime it
    stands for, not left an int the codec then refuses to write on."""
    monkeypatch.setenv("PUENTE_NATIVE_AVRO", "1" if native else "0")
    reader = AlertCodec(_with_added_markings(_DECLASSIFY), (current(),))
    back = reader.decode(AlertCodec(current()).encode(_alert("SEIZURE")))
    assert back["markings"]["declassify_at"] == datetime(2100, 1, 1, tzinfo=UTC)
    assert reader.decode(reader.encode(back)) == back


def test_a_default_beyond_its_logical_type_is_refused_by_the_check_and_the_reader() -> None:
    """A timestamp default beyond year 9999 resolves, but no reader can hold it: check_compatible reports it, and a
    reader built over it anyway refuses the older writer's records, naming the field, instead of passing an int on."""
    bad = _with_added_markings({**_DECLASSIFY, "default": 10**15 * 300})
    problems = check_compatible(current(), bad, samples=5)
    assert len(problems) == 1 and problems[0].startswith("backward (v-next reading current): markings.declassify_at")
    assert "default: expected a datetime within years 1-9999 in UTC" in problems[0]
    with pytest.raises(RecordMismatchError, match=r"does not fit once resolved: markings\.declassify_at: expected"):
        AlertCodec(bad, (current(),)).decode(AlertCodec(current()).encode(_alert("SEIZURE")))
    assert check_compatible(current(), _with_added_markings(_DECLASSIFY, _DISSEMINATION), samples=5) == []
