"""The alert codec: single-object framing, round trips and clear errors on bad input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from codec_paths import NATIVE, codec_on
from hypothesis import given, settings
from hypothesis import strategies as st

from puente.dev.synthetic import generate
from puente.errors import (
    CodecError,
    CorruptRecordError,
    NotSingleObjectError,
    RecordMismatchError,
    SchemaError,
    UnknownSchemaError,
)
from schemas import MARKER, SingleObjectCodec, alert_codec, alert_from_json, crc64_avro, current, load_expanded, to_json
from schemas._alert import PAYLOAD_TYPE
from schemas._codec import HEADER_LEN, _BodyCompiler


@pytest.fixture
def alerts() -> list[dict]:
    return list(generate(60, seed=11))


def test_round_trip_every_alert_type(alerts: list[dict]) -> None:
    """Encoding then decoding gives back the same alert, for all three payload types."""
    codec = alert_codec()
    kinds = {a["alert_type"] for a in alerts}
    assert kinds == {"WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT"}
    for alert in alerts:
        assert codec.decode(codec.encode(alert)) == alert


def test_header_is_marker_and_little_endian_fingerprint(alerts: list[dict]) -> None:
    """Every record starts with C3 01 and the writer schema's fingerprint, as the Avro spec says."""
    data = alert_codec().encode(alerts[0])
    assert data[:2] == MARKER == b"\xc3\x01"
    assert data[2:10] == current().fingerprint


def test_crc64_matches_the_avro_specification_vector() -> None:
    """The fingerprint of the schema "int" is the value published with the Avro specification."""
    assert crc64_avro(b'"int"') == 8247732601305521295


def test_bytes_without_marker_are_refused() -> None:
    """Bytes that lack the marker raise NotSingleObjectError that says what was expected."""
    with pytest.raises(NotSingleObjectError, match="C3 01"):
        alert_codec().decode(b'{"alert_id": "x"}')


def test_empty_and_short_bytes_are_refused() -> None:
    """Empty input and a header cut short are clear errors, not crashes."""
    for data in (b"", b"\xc3", b"\xc3\x01\x00\x01"):
        with pytest.raises(NotSingleObjectError):
            alert_codec().decode(data)


def test_an_unknown_fingerprint_is_refused_without_its_bytes(alerts: list[dict]) -> None:
    """An unknown writer fingerprint raises UnknownSchemaError saying so, never its eight bytes, which anyone may
    set and may be the record's own text: the message becomes a dead letter's detail header. Nor are a record's
    first bytes shown when it has no single-object marker."""
    data = bytearray(alert_codec().encode(alerts[0]))
    data[2:10] = b"SECRETOS"
    with pytest.raises(UnknownSchemaError, match="unknown writer schema fingerprint") as refused:
        alert_codec().decode(bytes(data))
    assert "SECRETOS" not in str(refused.value) and b"SECRETOS".hex() not in str(refused.value).lower()
    for raw in (b'{"alert_id": "X"}', b"\xc3\x01SEC"):
        with pytest.raises(NotSingleObjectError) as refused:
            alert_codec().decode(raw)
        shown = str(refused.value)
        assert raw[:2].hex() not in shown.lower().replace("c3 01", "") and "SEC" not in shown


def test_truncated_body_is_corrupt(alerts: list[dict]) -> None:
    """A body cut short raises CorruptRecordError."""
    data = alert_codec().encode(alerts[0])
    with pytest.raises(CorruptRecordError):
        alert_codec().decode(data[: len(data) // 2])


def test_trailing_garbage_is_corrupt(alerts: list[dict]) -> None:
    """Extra bytes after a valid record are refused rather than ignored."""
    data = alert_codec().encode(alerts[0]) + b"\x00\x00"
    with pytest.raises(CorruptRecordError, match="trailing"):
        alert_codec().decode(data)


def test_naming_union_branches_writes_the_bytes_fastavro_would_choose(alerts: list[dict]) -> None:
    """The union tagger only saves fastavro its branch search: the bytes are the same as without it."""
    from io import BytesIO

    from fastavro import schemaless_writer

    codec = alert_codec()
    for alert in alerts:
        plain = BytesIO()
        schemaless_writer(plain, codec.writer.parsed, alert)
        assert codec.encode(alert)[10:] == plain.getvalue()
        tagged = codec._tag(alert)
        assert isinstance(tagged["payload"], tuple)
        assert tagged["payload"][0] == {"WATCHLIST_HIT": "puente.WatchlistHit", "SEIZURE": "puente.Seizure",
                                        "BORDER_EVENT": "puente.BorderEvent"}[alert["alert_type"]]
        assert not isinstance(alert["payload"], tuple), "the caller's alert must not be changed"


def test_payload_matching_no_branch_is_still_a_mismatch(alerts: list[dict]) -> None:
    """A payload missing what every branch requires is refused, not forced into a branch."""
    for payload in ({}, {"unrelated": 1}, "not a record"):
        with pytest.raises(RecordMismatchError):
            alert_codec().encode({**alerts[0], "payload": payload})


@pytest.mark.parametrize("writer", ["native", "fastavro"])
def test_a_payload_of_another_alert_type_is_refused_when_read(alerts: list[dict], writer: str) -> None:
    """Bytes whose payload branch is not the one ``alert_type`` names (a watchlist hit labelled a seizure, written
    by any Avro writer) are refused on reading: the seizure rules would judge what only the watchlist rules may
    release. The error names the types, never a value."""
    by_type = {a["alert_type"]: a for a in alerts}
    codec = alert_codec()
    for alert_type, alert in by_type.items():
        for other, donor in by_type.items():
            mixed = {**alert, "payload": (PAYLOAD_TYPE[other], donor["payload"])}
            if writer == "fastavro":
                from io import BytesIO

                from fastavro import schemaless_writer

                out = BytesIO()
                schemaless_writer(out, current().parsed, codec._tag(mixed))
                data = MARKER + current().fingerprint + out.getvalue()
            else:  # the plain single-object writer (native where built): AlertCodec.encode refuses it
                data = SingleObjectCodec.encode(codec, mixed)
            if other == alert_type:
                assert codec.decode(data)["alert_type"] == alert_type
                continue
            with pytest.raises(RecordMismatchError, match=f"alert_type {alert_type} names"):
                codec.decode(data)


def test_record_that_does_not_fit_names_the_field_not_the_value(alerts: list[dict]) -> None:
    """A wrong type raises RecordMismatchError naming the field and never echoing the value."""
    bad = dict(alerts[0])
    bad["agency"] = 12345678
    with pytest.raises(RecordMismatchError) as info:
        alert_codec().encode(bad)
    assert "agency" in str(info.value)
    assert "12345678" not in str(info.value)


@pytest.mark.parametrize("value", ["x; Juan Perez passport PA123456 is here", "A of type B; PA123456 of type str"])
def test_a_value_written_like_an_error_message_is_never_echoed(alerts: list[dict], value: str) -> None:
    """The explanation is built from the error's field and the value's type, never from the message's text, which
    a value holding "; " or " of type " would pass for part of."""
    bad = dict(alerts[0])
    bad["version"] = value
    with pytest.raises(RecordMismatchError) as info:
        alert_codec().encode(bad)
    assert str(info.value) == "record does not fit puente.Alert: version: expected an int, got str"


def test_missing_required_field_is_a_mismatch(alerts: list[dict]) -> None:
    """An alert without its markings cannot be encoded."""
    bad = {k: v for k, v in alerts[0].items() if k != "markings"}
    with pytest.raises(RecordMismatchError, match="markings"):
        alert_codec().encode(bad)


def test_unknown_alert_type_is_a_mismatch(alerts: list[dict]) -> None:
    """An alert type outside the enum is refused with the list of valid ones."""
    bad = {**alerts[0], "alert_type": "RUMOUR"}
    with pytest.raises(RecordMismatchError, match="WATCHLIST_HIT"):
        alert_codec().encode(bad)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Any bytes at all either decode or raise a CodecError; nothing else escapes."""
    with contextlib.suppress(CodecError):
        alert_codec().decode(MARKER + current().fingerprint + data)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=8), max_size=5), st.integers(0, 2**40))
def test_round_trip_of_varied_text_and_times(text: str, codes: list[str], millis: int) -> None:
    """Accents, odd Unicode and any millisecond timestamp survive a round trip."""
    alert = next(generate(1, seed=3))
    when = datetime.fromtimestamp(millis / 1000, tz=UTC).replace(microsecond=(millis % 1000) * 1000)
    alert = {**alert, "summary": text, "occurred_at": when,
             "markings": {**alert["markings"], "releasable_to": codes}}
    back = alert_codec().decode(alert_codec().encode(alert))
    assert back["summary"] == text and back["markings"]["releasable_to"] == codes
    assert back["occurred_at"] == when


def test_json_form_round_trips(alerts: list[dict]) -> None:
    """An alert written as JSON (ISO times) reads back into the same value."""
    for alert in alerts[:10]:
        doc = json.loads(json.dumps(to_json(alert)))
        assert alert_from_json(doc) == alert


def test_json_timestamp_without_offset_is_refused(alerts: list[dict]) -> None:
    """A naive timestamp in JSON is refused: its time zone would be a guess."""
    doc = to_json(alerts[0])
    doc["occurred_at"] = "2026-11-01T10:00:00"
    with pytest.raises(RecordMismatchError, match="occurred_at"):
        alert_from_json(doc)


@pytest.mark.parametrize("field", ["occurred_at", "reported_at"])
def test_a_naive_datetime_is_refused_as_the_same_time_written_as_text(alerts: list[dict], field: str) -> None:
    """YAML reads an unquoted ``2025-01-01 10:00:00`` as a naive datetime: it is refused with the message the quoted
    text gets, instead of being taken as UTC (five hours off for a time written in Panama)."""
    doc = to_json(alerts[0])
    doc[field] = "2025-01-01T10:00:00"
    with pytest.raises(RecordMismatchError) as as_text:
        alert_from_json(doc)
    doc[field] = datetime(2025, 1, 1, 10, 0)
    with pytest.raises(RecordMismatchError) as as_datetime:
        alert_from_json(doc)
    assert str(as_datetime.value) == str(as_text.value) == f"alert.{field}: timestamp needs a UTC offset (e.g. 'Z' " \
        "or '-05:00')"


def test_an_aware_datetime_is_taken_in_utc(alerts: list[dict]) -> None:
    """A datetime with an offset (YAML's unquoted ``2025-01-01 10:00:00-05:00``) is the same instant, in UTC."""
    doc = to_json(alerts[0])
    doc["occurred_at"] = datetime(2025, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    got = alert_from_json(doc)["occurred_at"]
    assert got == datetime(2025, 1, 1, 15, 0, tzinfo=UTC) and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_json_timestamp_outside_utcs_years_is_a_mismatch(alerts: list[dict], value: str) -> None:
    """A timestamp whose offset takes it before year 1 or past 9999 in UTC is a mismatch naming the field, not an
    OverflowError escaping to the command line as a traceback."""
    doc = to_json(alerts[0])
    doc["occurred_at"] = value
    with pytest.raises(RecordMismatchError, match="occurred_at: timestamp is outside the years 1 to 9999"):
        alert_from_json(doc)


def test_malformed_schema_file_is_a_clear_error(tmp_path) -> None:
    """A schema file that is not valid JSON or not valid Avro raises SchemaError naming the file."""
    broken = tmp_path / "puente.Broken.avsc"
    broken.write_text('{"type": "record", "name": "Broken", "fields": [')
    with pytest.raises(SchemaError, match=r"puente\.Broken\.avsc"):
        load_expanded(broken)
    wrong = tmp_path / "puente.Wrong.avsc"
    wrong.write_text('{"type": "record", "name": "Wrong", "fields": [{"name": "a", "type": "nosuchtype"}]}')
    with pytest.raises(SchemaError, match=r"puente\.Wrong\.avsc"):
        load_expanded(wrong)


# ---- the native decoder ----------------------------------------------------------------------
def _fastavro_decode(data: bytes) -> dict:
    from io import BytesIO

    from fastavro import schemaless_reader

    return schemaless_reader(BytesIO(data[10:]), current().parsed, None)


def test_native_decoder_is_built_where_ci_runs() -> None:
    """`make setup` builds the native decoder; CI must exercise it, not silently fall back to fastavro."""
    import os

    if os.environ.get("CI") == "true":
        assert alert_codec()._native is not None, "the native Avro decoder is not installed (scripts/setup.sh)"


@pytest.mark.skipif(True not in NATIVE, reason="the native codec is not built here")
async def test_the_native_codec_works_from_another_thread(monkeypatch: pytest.MonkeyPatch,
                                                         alerts: list[dict]) -> None:
    """One native codec, built in this thread, encodes and decodes in a worker thread (``asyncio.to_thread``)
    as here: it once panicked there, with a BaseException no ``except`` caught."""
    codec = codec_on(monkeypatch, native=True)
    data = codec.encode(alerts[0])
    assert await asyncio.to_thread(codec.encode, alerts[0]) == data
    assert await asyncio.to_thread(codec.decode, data) == codec.decode(data) == alerts[0]


def test_native_and_fastavro_decode_to_the_same_values() -> None:
    """Every alert type, every optional field set or not: the native decoder gives exactly fastavro's values."""
    codec = alert_codec()
    for alert in generate(400, seed=17):
        data = codec.encode(alert)
        assert codec.decode(data) == _fastavro_decode(data) == alert


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60), st.integers(-(2**41), 2**41), st.integers(-3000, 2_900_000))
def test_native_decoder_matches_fastavro_on_odd_values(text: str, millis: int, days: int) -> None:
    """Times before 1970, odd Unicode, far dates: the same values as fastavro."""
    from datetime import date, timedelta

    alert = next(generate(1, seed=3))
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    person = {**alert["payload"].get("person", {})} if alert["alert_type"] == "WATCHLIST_HIT" else None
    alert = {**alert, "summary": text, "occurred_at": when}
    if person is not None:
        person["date_of_birth"] = date(1970, 1, 1) + timedelta(days=days)
        alert["payload"] = {**alert["payload"], "person": person}
    data = alert_codec().encode(alert)
    assert alert_codec().decode(data) == _fastavro_decode(data)


@pytest.mark.parametrize("cut", [11, 20, 57, -1])
def test_native_decoder_refuses_truncated_bodies(alerts: list[dict], cut: int) -> None:
    data = alert_codec().encode(alerts[1])
    with pytest.raises(CorruptRecordError):
        alert_codec().decode(data[:cut])


def test_native_decoder_refuses_bad_utf8_and_bad_indexes(alerts: list[dict]) -> None:
    """A string that is not UTF-8, or an enum index out of range, is corrupt; neither value is echoed."""
    codec = alert_codec()
    data = bytearray(codec.encode(alerts[0]))
    alert_id = alerts[0]["alert_id"].encode()
    at = data.index(alert_id)
    bad_utf8 = bytes(data[:at]) + b"\xff" + bytes(data[at + 1:])
    with pytest.raises(CorruptRecordError) as info:
        codec.decode(bad_utf8)
    assert alert_id.decode()[1:] not in str(info.value)
    enum_at = at + len(alert_id)  # alert_type follows alert_id: its varint index
    bad_enum = bytes(data[:enum_at]) + b"\x7e" + bytes(data[enum_at + 1:])
    with pytest.raises(CorruptRecordError):
        codec.decode(bad_enum)


@pytest.mark.parametrize("native", NATIVE)
def test_a_payload_naming_another_branch_is_refused_when_written(monkeypatch: pytest.MonkeyPatch,
                                                                 alerts: list[dict], native: bool) -> None:
    """A payload in fastavro's tuple notation is held to the branch ``alert_type`` names, as a dict payload is: a
    seizure payload under WATCHLIST_HIT was written, and only refused by the reader."""
    by_type = {a["alert_type"]: a for a in alerts}
    codec = codec_on(monkeypatch, native)
    for alert_type, alert in by_type.items():
        for other, donor in by_type.items():
            mixed = {**alert, "payload": (PAYLOAD_TYPE[other], donor["payload"])}
            if other == alert_type:
                assert codec.decode(codec.encode(mixed)) == alert
                continue
            named = re.escape(f"alert_type {alert_type} names ({PAYLOAD_TYPE[alert_type]})")
            with pytest.raises(RecordMismatchError, match=named):
                codec.encode(mixed)
    for odd in ((PAYLOAD_TYPE["SEIZURE"],), (PAYLOAD_TYPE["SEIZURE"], by_type["SEIZURE"]["payload"], None)):
        with pytest.raises(RecordMismatchError, match="does not name the branch"):
            codec.encode({**by_type["SEIZURE"], "payload": odd})
    with pytest.raises(RecordMismatchError, match="alert_type must be one of"):
        codec.encode({**alert, "alert_type": "OTHER", "payload": (PAYLOAD_TYPE["SEIZURE"], {})})


def _fastavro_encode(record: dict) -> bytes:
    from io import BytesIO

    from fastavro import schemaless_writer

    out = BytesIO()
    tagged = {**record, "payload": (PAYLOAD_TYPE[record["alert_type"]], record["payload"])}
    schemaless_writer(out, current().parsed, alert_codec()._tag(tagged))
    return MARKER + current().fingerprint + out.getvalue()


def test_native_encoder_writes_fastavros_bytes_for_alerts_and_partner_views() -> None:
    """The same bytes as fastavro for whole alerts and for every partner view the shipped policy builds."""
    from policies import build_view, decide, load_policy_set

    policy = load_policy_set(None)
    codec = alert_codec()
    assert codec._native is not None or os.environ.get("CI") != "true"
    views = native = 0
    header = MARKER + current().fingerprint
    for alert in generate(300, seed=23):
        assert codec.encode(alert) == _fastavro_encode(alert)
        for partner in policy.partners:
            decision = decide(alert, partner, policy, datetime.now(UTC))
            if decision.outcome.value != "WITHHOLD":
                view = build_view(alert, decision, policy, b"k" * 32)
                assert codec.encode(view) == _fastavro_encode(view)
                views += 1
                tagged = {**view, "payload": (PAYLOAD_TYPE[view["alert_type"]], view["payload"])}
                native += codec._native is not None and codec._native.encode(tagged, header) is not None
    assert views > 100
    if codec._native is not None:
        assert native == views, "every view should take the native path, not fall back to fastavro"


def test_values_the_native_encoder_is_unsure_of_go_to_fastavro(alerts: list[dict]) -> None:
    """An int where a double goes: fastavro writes it, as before (a missing field is refused: test_codec_types)."""
    codec = alert_codec()
    loc = alerts[0]["location"] or {}
    whole = {**alerts[0], "location": {**loc, "latitude": 8, "longitude": -77}}
    assert codec.decode(codec.encode(whole))["location"]["latitude"] == 8.0
    assert codec.encode(whole) == _fastavro_encode(whole)


def _both_refuse(data: bytes) -> list[str]:
    """What the native decoder and the pure-Python body check each say of ``data`` (both must refuse it)."""
    said = []
    with pytest.raises(CorruptRecordError) as info:
        alert_codec().decode(data)
    said.append(str(info.value))
    with pytest.raises(ValueError) as checked:
        _BodyCompiler(current().parsed).compile(current().parsed)(data, HEADER_LEN, [])
    said.append(str(checked.value))
    return said


def test_one_alert_has_one_byte_form_padded_varints_are_refused(alerts: list[dict]) -> None:
    """A varint padded with a last 0 byte, or with a tenth byte above 1, reads as a canonical one would: refused by
    both decoders, so an alert has one byte form (the ledger digests the bytes)."""
    data = alert_codec().encode(alerts[0])
    alert_id = alerts[0]["alert_id"].encode()
    at = data.index(alert_id)
    assert data[at - 1] == 2 * len(alert_id) < 0x80  # its length, one byte
    padded = data[:at - 1] + bytes([data[at - 1] | 0x80, 0]) + data[at:]
    assert all("shortest form" in s for s in _both_refuse(padded))
    overlong = data[:at - 1] + bytes([data[at - 1] | 0x80]) + b"\x80" * 8 + b"\x7e" + data[at:]
    assert all("64 bits" in s or "shortest" in s for s in _both_refuse(overlong))
    assert alert_codec().decode(data) == alert_codec().decode(bytes(data))  # the canonical form still reads


def test_a_block_with_a_negative_count_must_state_its_own_size(alerts: list[dict]) -> None:
    """Avro lets a block give a negative count and its size in bytes; Puente's writers never do, and a size that
    is not the items' own is refused by both decoders (the right one still reads)."""
    alert = alerts[0]
    one = alert_codec().encode({**alert, "markings": {**alert["markings"], "releasable_to": ["COL"]}})
    none = alert_codec().encode({**alert, "markings": {**alert["markings"], "releasable_to": []}})
    at = next(i for i, (x, y) in enumerate(zip(one, none, strict=False)) if x != y)
    assert (one[at], none[at]) == (2, 0)
    item = one[at + 1:at + len(one) - len(none)]

    def block(size: int) -> bytes:
        return one[:at] + bytes([1, 2 * size]) + item + one[at + 1 + len(item):]

    assert alert_codec().decode(block(len(item))) == alert_codec().decode(one)
    assert all("size" in s for s in _both_refuse(block(len(item) + 1)))
