"""Field parsers: text, codes, countries, numbers, dates, times and coordinates, with their reasons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import _fields as f
from adapters._codes import country, norm_key
from puente.errors import AdapterError

PANAMA = ZoneInfo("America/Panama")


def _reason(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(AdapterError) as caught:
        call(*args, **kwargs)
    assert str(caught.value)
    return caught.value.reason


def test_text_trims_collapses_and_composes_accents() -> None:
    """Whitespace runs collapse and a decomposed 'Núñez' becomes the composed one."""
    decomposed = "Nu\u0301n\u0303ez"
    assert f.text(f"  {decomposed}   Gómez ", "x", 50) == "Núñez Gómez"


def test_text_keeps_line_breaks_only_in_free_text() -> None:
    """Remarks keep their lines; other fields fold them into spaces."""
    assert f.text("uno  dos\r\ntres ", "Observaciones", 100, multiline=True) == "uno dos\ntres"
    assert f.text("uno\ndos", "Lugar", 100) == "uno dos"


def test_text_empty_is_absent_unless_required() -> None:
    """Empty text or None is None, or missing-field when the field is required."""
    assert f.text("", "x", 10) is None
    assert f.text(None, "x", 10) is None
    assert _reason(f.text, "", "Fecha", 10, required=True) == f.MISSING_FIELD


@pytest.mark.parametrize("blank", [" ", "   ", "\t", "\u00a0", "\r\n", " \n \n "])
@pytest.mark.parametrize("multiline", [False, True])
def test_text_of_blanks_only_is_refused_as_blank_never_absent(blank: str, multiline: bool) -> None:
    """Text of blanks only is neither absent nor a value: refused as blank, optional or required, one-line or not,
    so that no field falls back to its default (risk UNKNOWN, the agency's unit) on a value whose content was lost."""
    for required in (False, True):
        with pytest.raises(AdapterError) as refused:
            f.text(blank, "unidad", 10, required=required, multiline=multiline)
        assert refused.value.reason == f.MISSING_FIELD
        assert str(refused.value) == "unidad is blank; leave it empty, out or null"


@pytest.mark.parametrize("parse", [
    lambda v: f.integer(v, "cantidad"), lambda v: f.coordinate(v, "latitud", "lat"),
    lambda v: f.birth_date(v, "fecha_nacimiento", date(2026, 11, 22)), lambda v: f.countries(v, "nacionalidades"),
    lambda v: f.countries(["COL", v], "nacionalidades"),
    lambda v: f.code(v, "riesgo", {"ALTO": "HIGH"}, required=False),
], ids=["integer", "coordinate", "birth_date", "countries", "country-entry", "code"])
def test_every_parser_refuses_blanks_and_takes_empty_as_absent(parse: Callable[[Any], Any]) -> None:
    """Numbers, positions, dates of birth, countries and codes read "" and null as absent, and refuse blanks alike."""
    assert parse(None) in (None, [], ["COL"]) and parse("") in (None, [], ["COL"])
    with pytest.raises(AdapterError) as refused:
        parse("  ")
    assert refused.value.reason == f.MISSING_FIELD and "is blank" in str(refused.value)


def test_text_refuses_control_characters_and_oversize() -> None:
    """Binary junk is invalid-value; text over its limit is too-long, never cut."""
    assert _reason(f.text, "a\x00b", "x", 10) == f.INVALID
    assert _reason(f.text, "a" * 11, "x", 10) == f.TOO_LONG
    assert _reason(f.text, {"a": 1}, "x", 10) == f.INVALID


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_text_never_raises_anything_but_adapter_error(value: str) -> None:
    """Any string gives clean text, None, or an AdapterError; nothing else escapes."""
    try:
        out = f.text(value, "x", 40, multiline=True)
    except AdapterError as exc:
        assert exc.reason in {f.INVALID, f.INVISIBLE, f.TOO_LONG, f.MISSING_FIELD}
    else:
        assert out is None or (out == out.strip() and len(out) <= 40)


def test_norm_key_matches_labels_however_typed() -> None:
    """Accents, case and separators do not matter when matching a label."""
    assert norm_key("Darién") == norm_key("DARIEN") == "DARIEN"
    assert norm_key("Ngäbe-Buglé") == "NGABE_BUGLE"
    assert norm_key(" lancha  rápida ") == "LANCHA_RAPIDA"


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_norm_key_is_idempotent(label: str) -> None:
    """Normalising twice changes nothing."""
    assert norm_key(norm_key(label)) == norm_key(label)


def test_code_unknown_label_lists_what_may_be_written() -> None:
    """An unknown label is unknown-code, and the message names accepted labels."""
    with pytest.raises(AdapterError) as caught:
        f.code("en círculos", "Dirección", {"NORTE": "NORTHBOUND", "SUR": "SOUTHBOUND"})
    assert caught.value.reason == f.UNKNOWN_CODE
    assert "NORTE, SUR" in str(caught.value)


def test_every_post_name_the_configuration_gives_is_a_label(config: Any) -> None:
    """A label is taken with the punctuation staff type (a post named 'Aeropuerto Marcos A. Gelabert (Albrook)', a
    dash of another kind, a trailing comma) but with no letter or digit beyond A-Z and 0-9 beside it."""
    table = {norm_key(p.name): code for code, p in config.ports.items()}
    for code, post in config.ports.items():
        assert f.code(post.name, "puesto", table) == code
    assert f.code("Aeropuerto Enrique Malek (David),", "puesto", table) == "DAV"
    provinces = {"NGABE_BUGLE": "NGABE_BUGLE"}
    for typed in ("Ngäbe–Buglé", "Ngäbe\u2010Buglé", "NGÄBE-BUGLÉ:"):
        assert f.code(typed, "provincia", provinces) == "NGABE_BUGLE", typed
    for hostile in ("Ngäbe-Buglé Иван", "Ngäbe-Buglé \u0968\u0966", "Ngäbe-Buglé ø"):
        assert _reason(f.code, hostile, "provincia", provinces) == f.UNKNOWN_CODE, hostile


def test_countries_from_codes_and_spanish_names() -> None:
    """Codes and Spanish nationality names, in any case or gender, become alpha-3 codes, once each."""
    assert f.countries("venezolanos, Haitianas; COL / colombiana", "n") == ["VEN", "HTI", "COL"]
    assert f.countries(["nepalíes", "CMR"], "n") == ["NPL", "CMR"]
    assert country("Costa Rica") == "CRI" and country("Marte") is None
    assert _reason(f.countries, "marcianos", "Nacionalidades") == f.UNKNOWN_CODE


def test_integer_negative_has_its_own_reason() -> None:
    """A negative count is negative-quantity; words and absurd sizes are invalid-value."""
    assert f.integer("240", "n") == 240 and f.integer(None, "n") is None
    assert _reason(f.integer, "-40", "Cantidad") == f.NEGATIVE
    assert _reason(f.integer, "unos 40", "Cantidad") == f.INVALID
    assert _reason(f.integer, 10**9, "Cantidad") == f.INVALID


def test_quantity_accepts_decimal_comma_and_refuses_zero_and_negative() -> None:
    """'1250,5' is 1250.5; zero is invalid and a negative amount is negative-quantity."""
    assert f.quantity("1250,5", "q") == 1250.5 and f.quantity(3, "q") == 3.0
    assert _reason(f.quantity, -1, "q") == f.NEGATIVE
    assert _reason(f.quantity, 0, "q") == f.INVALID
    assert _reason(f.quantity, None, "q") == f.MISSING_FIELD
    assert _reason(f.quantity, float("nan"), "q") == f.INVALID


def test_day_month_year_dates_and_impossible_ones() -> None:
    """dd/mm/yyyy is read day first; 31 February and month 13 are invalid-date."""
    assert f.dmy("03/11/2026", "Fecha") == date(2026, 11, 3)
    assert f.dmy("3-1-2026", "Fecha") == date(2026, 1, 3)
    for bad in ("31/02/2026", "13/13/2026", "2026-11-03", "ayer"):
        assert _reason(f.dmy, bad, "Fecha") == f.INVALID_DATE


def test_times_of_day() -> None:
    """HH:MM, H:MM, HHMM and HH:MM:SS are read; 25:61 is invalid-date."""
    assert f.clock("6:40", "Hora") == time(6, 40)
    assert f.clock("2359", "Hora") == time(23, 59)
    assert _reason(f.clock, "25:61", "Hora") == f.INVALID_DATE


BENGALI = str.maketrans("0123456789", "\u09e6\u09e7\u09e8\u09e9\u09ea\u09eb\u09ec\u09ed\u09ee\u09ef")
"""Digits of another script: Python's int(), float() and a regex's \\d read them, and the Bengali 4 looks like an 8."""


@pytest.mark.parametrize(("parse", "ascii_text"), [
    (lambda v: f.integer(v, "Cantidad de personas"), "14"),
    (lambda v: f.coordinate(v, "Latitud", "lat"), "8.67211"),
    (lambda v: f.coordinate(v, "Longitud", "lon"), "77 25 36 O"),
    (lambda v: f.dmy(v, "Fecha"), "04/11/2026"),
    (lambda v: f.ymd(v, "Fecha"), "2026-11-04"),
    (lambda v: f.ymd(v, "Fecha", compact=True), "20261104"),
    (lambda v: f.clock(v, "Hora"), "06:40"),
    (lambda v: f.iso_datetime(v, "t", PANAMA), "2026-11-03T06:40:00Z"),
])
def test_only_the_digits_0_to_9_are_read(parse: Callable[[str], Any], ascii_text: str) -> None:
    """Every numeric parser reads the ASCII digits only, as ``quantity`` does: one digit of another script in a
    count, a position, a date or a time is refused, never read as the number it stands for."""
    assert parse(ascii_text) is not None
    first = next(i for i, c in enumerate(ascii_text) if c.isdigit())
    one_swapped = ascii_text[:first] + ascii_text[first].translate(BENGALI) + ascii_text[first + 1:]
    for hostile in (ascii_text.translate(BENGALI), one_swapped):
        with pytest.raises(AdapterError):  # whichever reason comes first: an invalid value, or mixed scripts
            parse(hostile)


def test_panama_local_time_becomes_utc() -> None:
    """Panama is UTC-5 all year: 06:40 local is 11:40 UTC."""
    assert f.local(date(2026, 11, 3), time(6, 40), PANAMA) == datetime(2026, 11, 3, 11, 40, tzinfo=UTC)
    assert f.iso_datetime("2026-11-03 06:40:00", "t", PANAMA) == datetime(2026, 11, 3, 11, 40, tzinfo=UTC)
    assert f.iso_datetime("2026-11-03T06:40:00Z", "t", PANAMA) == datetime(2026, 11, 3, 6, 40, tzinfo=UTC)
    assert _reason(f.iso_datetime, "2026-02-30T10:00:00", "t", PANAMA) == f.INVALID_DATE


def test_birth_dates_must_be_plausible() -> None:
    """A birth date in the future or before 1900 is invalid-date."""
    today = date(2026, 11, 22)
    assert f.birth_date("1988-03-02", "dob", today) == date(1988, 3, 2)
    assert f.birth_date("19880302", "dob", today, compact=True) == date(1988, 3, 2)
    assert _reason(f.birth_date, "2031-01-01", "dob", today) == f.INVALID_DATE
    assert _reason(f.birth_date, "1850-01-01", "dob", today) == f.INVALID_DATE


@pytest.mark.parametrize(("text", "axis", "value"), [
    ("8°40'12.5\"N", "lat", 8.670139),
    ("77°25'36\"O", "lon", -77.426667),
    ("77 25 36 W", "lon", -77.426667),
    ("N 8 40 12", "lat", 8.67),
    ("8° 40.5' N", "lat", 8.675),
    ("-77,4267", "lon", -77.4267),
    ("8.67N", "lat", 8.67),
])
def test_coordinates_decimal_and_degrees_minutes_seconds(text: str, axis: str, value: float) -> None:
    """Decimal degrees (point or comma) and DMS with N/S and E/W/O (oeste) are read."""
    assert f.coordinate(text, "c", axis) == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize(("text", "axis", "reason"), [
    ("8°75'00\"N", "lat", f.INVALID),      # 75 minutes
    ("8 40 12 E", "lat", f.INVALID),       # a longitude's hemisphere on a latitude
    ("77°25'36\"", "lon", f.INVALID),      # DMS without a hemisphere
    ("95.0", "lat", f.OUT_OF_REGION),
    ("norte del río", "lat", f.INVALID),
])
def test_bad_coordinates_say_why(text: str, axis: str, reason: str) -> None:
    """Impossible minutes, crossed axes, missing hemispheres and out-of-range values each have a reason."""
    assert _reason(f.coordinate, text, "c", axis) == reason


@pytest.mark.parametrize(("value", "axis", "shown"), [
    ("95.123456", "lat", ("95.1235", "95.123456")),
    (-195.5, "lon", ("195.5",)),
    ("97°25'36\"N", "lat", ("97.4267", "97.42667", "97.426667")),
])
def test_an_out_of_range_coordinate_is_not_quoted(value: Any, axis: str, shown: tuple[str, ...]) -> None:
    """A coordinate beyond ±90/±180 is refused naming the field and the range, never the number read: a position is
    the record's data, and the message reaches stderr and the dead letter."""
    with pytest.raises(AdapterError) as caught:
        f.coordinate(value, "Latitud", axis)
    message = str(caught.value)
    assert caught.value.reason == f.OUT_OF_REGION and message.startswith("Latitud is outside [-")
    assert not [form for form in shown if form in message], message


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-89.99, max_value=89.99), st.sampled_from(["lat", "lon"]))
def test_dms_round_trips_to_decimal(value: float, axis: str) -> None:
    """A decimal written as degrees, minutes and tenths of seconds reads back within 0.05 seconds."""
    hemi = ("N" if value >= 0 else "S") if axis == "lat" else ("E" if value >= 0 else "O")
    tenths = round(abs(value) * 36000)
    deg, rest = divmod(tenths, 36000)
    minutes, tsec = divmod(rest, 600)
    written = f"{deg}°{minutes:02d}'{tsec / 10:04.1f}\"{hemi}"
    back = f.coordinate(written, "c", axis)
    assert back is not None and abs(back - value) <= 0.05 / 3600 + 1e-6


def test_a_thousands_separator_is_refused_whatever_is_in_front_or_the_digits() -> None:
    """A sign or zeros in front of one separator before three digits ('+1.250', '01,250') are as ambiguous as
    '1.250', and digits other than 0-9 ('１.２５０', which float() reads as 1.25) are no number: all refused; a
    negative grouped amount is still negative-quantity, and '0.250' and '+1250.5' are read."""
    for amount in ("1.250", "+1.250", "+1,250", "01,250", "001.250", "\uff11.\uff12\uff15\uff10",
                   "\uff11\uff12\uff15\uff10", "1\u0662"):
        assert _reason(f.quantity, amount, "q") == f.INVALID, amount
    assert _reason(f.quantity, "-1.250", "q") == f.NEGATIVE
    assert f.quantity("0.250", "q") == 0.25 and f.quantity("+1250.5", "q") == 1250.5 and f.quantity(" 12 ", "q") == 12
