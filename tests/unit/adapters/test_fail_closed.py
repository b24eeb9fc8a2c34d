"""Input that says two things at once, or hides what it says, is refused; nothing in a file crashes the run."""

from __future__ import annotations

import copy
import io
import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters import _fields as f
from adapters._readers import Item, csv_rows, json_documents, json_lines, parse_json
from adapters.config import AdaptersConfig, AgencyProfile, Context, load_config, make_context
from adapters.core import Adapter, Result, convert
from adapters.registry import ADAPTERS
from puente import strict
from puente.errors import AdapterError, ConfigError
from puente.strict import emoji_unglued

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

SNM = {"id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
       "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "segundo_apellido": "Gómez",
                   "fecha_nacimiento": "1988-03-02", "sexo": "M", "nacionalidades": ["COL"],
                   "documentos": [{"tipo": "pasaporte", "numero": "AX1234567", "pais": "COL"}]},
       "coincidencia": {"lista": "INTERPOL_RED_NOTICE", "puntaje": 0.93}, "vuelo": "CM 204",
       "marcado": {"clasificacion": "SECRETO", "difusion": ["FEAN"]}}


def _error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        call(*args, **kwargs)
    return caught.value


def _line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False)


def test_the_record_these_tests_bend_is_valid(one: Callable[..., dict[str, Any]]) -> None:
    """SNM above maps to an alert, so each refusal below comes from the one change made to it."""
    assert one("snm", _line(SNM).encode() + b"\n")["alert_id"] == "SNM:PTY-20261103-00231"


# ---- 1. a key given twice ---------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}',
    '{"a": {"b": 1, "c": 2, "b": 1}}',  # nested, and the same value twice: still which-one is unknowable
    '{"a": [{"x": 1}, {"b": 1, "b": 2}]}',  # inside an array
    '{"clasificacion": "SECRETO", "clasificaci\\u006fn": "PUBLICO"}',  # the same key, once escaped
])
def test_parse_json_refuses_a_key_given_twice_at_any_depth(text: str) -> None:
    """A repeated key anywhere in the object is duplicate-key, where json.loads would keep the last value."""
    err = _error(parse_json, text, 7)
    assert err.reason == f.DUPLICATE_KEY and "line 7" in str(err)
    assert any(f"key of {len(k)} characters" in str(err) for k in ("a", "b", "clasificacion"))


def test_a_duplicate_key_in_a_document_is_located_at_its_own_line() -> None:
    """The message gives the key's length and the line of its second appearance, counted in the file."""
    doc = ('{\n  "numero_operacion": "X-1",\n  "marcado": {\n    "difusion": ["FEAN"],\n'
           '    "difusion": ["COL"]\n  }\n}\n')
    items = list(json_documents(io.BytesIO(b'{"ok": 1}\n' + doc.encode()), "utf-8", 10_000))
    assert items[0].parsed == {"ok": 1}
    err = items[1].error
    assert err is not None and err.reason == f.DUPLICATE_KEY
    assert "of 8 characters" in str(err) and "line 6" in str(err)  # line 2 opens the document; the repeat is on 6


def test_a_duplicate_key_message_says_an_odd_key_by_its_length() -> None:
    """A key longer than a field name, or with an invisible character in it, is said by its length: neither is
    shown, cut or escaped, since it may be data."""
    long_key = "k" * 39 + "X" + "z" * 60
    err = _error(parse_json, json.dumps({long_key: 1})[:-1] + f', "{long_key}": 2}}', 1)
    assert "of 100 characters" in str(err) and "kkk" not in str(err)
    err = _error(parse_json, '{"a\u202eb": 1, "a\u202eb": 2}', 1)
    assert "\u202e" not in str(err) and "of 3 characters" in str(err)


def test_json_lines_refuse_a_duplicate_key_alone() -> None:
    """The record with a repeated key is refused; the lines around it are read."""
    data = b'{"a": 1}\n{"b": 1, "b": 2}\n{"c": 3}\n'
    items = list(json_lines(io.BytesIO(data), "utf-8", 1000))
    assert [i.error.reason if i.error else i.parsed for i in items] == [{"a": 1}, f.DUPLICATE_KEY, {"c": 3}]


@pytest.mark.parametrize(("name", "data"), [
    ("snm", _line(SNM).replace('"difusion": ["FEAN"]', '"difusion": ["FEAN"], "difusion": ["COL", "USA"]')),
    ("snm", _line(SNM).replace('"clasificacion": "SECRETO"', '"clasificacion": "SECRETO", "clasificacion": "PUBLICO"')),
    ("senan", (SAMPLES / "senan" / "interdicciones-2026-11.json").read_text("utf-8").split("\n{")[0]
     .replace('"unidad": ', '"unidad": "Otra",\n  "unidad": ', 1)),
    ("combifron", (SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_text("utf-8").splitlines()[0]
     .replace('"manejo":"H2"', '"manejo":"H2","manejo":"H0"')),
])
def test_every_json_adapter_refuses_a_marking_given_twice(name: str, data: str,
                                                           run: Callable[..., list[Result]]) -> None:
    """A second 'difusion' or 'clasificacion' never decides who receives the alert: the record is dead-lettered."""
    results = run(name, data.encode() + b"\n")
    assert [(r.error.reason if r.error else "ok") for r in results] == [f.DUPLICATE_KEY]
    assert results[0].alert is None and results[0].value is None


def _config_text() -> str:
    return (ROOT / "adapters" / "agencies.yaml").read_text("utf-8")


def test_the_configuration_refuses_a_key_given_twice(tmp_path: Path) -> None:
    """A second releasable_to under one agency is a ConfigError naming the file and the line, not a silent override."""
    text = _config_text().replace("      releasable_to: [COL, CRI, USA, FEAN]\n",
                                  "      releasable_to: [COL, CRI, USA, FEAN]\n      releasable_to: [FEAN]\n", 1)
    path = tmp_path / "agencies.yaml"
    path.write_text(text, "utf-8")
    line = text.splitlines().index("      releasable_to: [FEAN]") + 1
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:{line}: " in str(caught.value)
    assert "'releasable_to' appears twice" in str(caught.value)


def test_the_configuration_refuses_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    """An alias bomb is refused at its first anchor, before anything expands; so are plain aliases and '<<'."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    cases = {"bomb": (bomb, 1), "alias": (_config_text() + "extra: &e 1\nmore: *e\n", None),
             "merge": ("base: {x: 1}\nother:\n  <<: {x: 2}\n  y: 1\n", 3)}
    for label, (text, line) in cases.items():
        path = tmp_path / f"{label}.yaml"
        path.write_text(text, "utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        message = str(caught.value)
        assert str(path) in message and ("anchors and aliases" in message or "merge keys" in message), label
        want = line or text.splitlines().index("extra: &e 1") + 1
        assert f"{path}:{want}: " in message, (label, message)


@pytest.mark.parametrize(("text", "said"), [
    ("a: [1, 2\n", ":2: expected ',' or ']', but got '<stream end>'"),
    ("a: 1\n\x01\n", ":2: character #x0001: special characters are not allowed"),
    ("- agencies\n", ": the file must be a YAML mapping"),
    ("", ": the file must be a YAML mapping"),
], ids=["unclosed", "control-character", "list", "empty"])
def test_a_configuration_that_is_no_yaml_mapping_is_one_line_with_its_line(tmp_path: Path, text: str,
                                                                           said: str) -> None:
    """Broken YAML is `file:line: problem` in one line, as in a policy file, never PyYAML's lines quoting the
    file; a document that is not a mapping says so, not pydantic's message under an empty location."""
    path = tmp_path / "agencies.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}{said}") and "\n" not in message and ": :" not in message, message


def test_the_shipped_configuration_still_loads() -> None:
    """The shipped agencies.yaml has no duplicate keys, anchors or merge keys."""
    assert isinstance(load_config(), AdaptersConfig)


# ---- 3. invisible characters ----------------------------------------------------------------
INVISIBLE = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0x200B, 0x2010), 0x2060, 0xFEFF, 0x00AD]


@pytest.mark.parametrize("point", INVISIBLE, ids=[f"U+{p:04X}" for p in INVISIBLE])
def test_text_refuses_bidi_overrides_zero_width_characters_and_soft_hyphens(point: int) -> None:
    """Each is invisible-character, and the message names the code point and its name but never the value."""
    value = f"Pérez{chr(point)} Gómez"
    for multiline in (False, True):
        err = _error(f.text, value, "Apellidos", 100, multiline=multiline)
        assert err.reason == f.INVISIBLE
        assert f"U+{point:04X} {unicodedata.name(chr(point))}" in str(err) and "Apellidos" in str(err)
        assert "Pérez" not in str(err) and chr(point) not in str(err)


@settings(max_examples=100, deadline=None)
@given(char=st.characters(categories=["Cf"]), before=st.text(max_size=8), after=st.text(max_size=8))
def test_text_refuses_every_format_character(char: str, before: str, after: str) -> None:
    """Any Unicode Cf character anywhere in a value is refused (or, before it, a control character is), but for the
    joiners and tags inside an emoji sequence Unicode recommends (next test)."""
    assume(char in emoji_unglued(f"a{before}{char}{after}z"))
    err = _error(f.text, f"a{before}{char}{after}z", "x", 100)
    assert err.reason in {f.INVISIBLE, f.INVALID}
    if err.reason == f.INVALID:
        assert any(unicodedata.category(c) in {"Cc", "Cs"} for c in before)


@pytest.mark.parametrize("multiline", [False, True])
def test_text_keeps_emoji_sequences_and_refuses_their_glue_elsewhere(multiline: bool) -> None:
    """Emoji with a presentation selector, a keycap, a zero-width joiner or a flag's tags are text, kept as written;
    the same joiner between letters, or a selector after a letter, is refused as invisible, named, never quoted."""
    emoji = ("\u26a0\ufe0f Jaqu\u00e9 1\ufe0f\u20e3 \U0001f468\u200d\U0001f469\u200d\U0001f467 "
             "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f")
    assert f.text(emoji, "Observaciones", 200, multiline=multiline) == emoji
    for value, point in (("P\u200d\u00e9rez \U0001f468", 0x200D), ("P\u00e9re\ufe0fz \u2764\ufe0f", 0xFE0F),
                         ("\U0001f98a\u200d\U0001f431 P\u00e9rez", 0x200D)):
        err = _error(f.text, value, "Observaciones", 200, multiline=multiline)
        assert err.reason == f.INVISIBLE and f"U+{point:04X}" in str(err) and "P\u00e9r" not in str(err)


@pytest.mark.parametrize("point", [0x034F, 0x115F, 0x2800, 0x3164, 0xFE0F, 0xFFA0, 0x180B, 0xE0100, 0x0378, 0xFFFF,
                                   0x16FE4, 0x1D159])
def test_text_refuses_characters_drawn_as_nothing_and_unassigned_ones(point: int) -> None:
    """A combining grapheme joiner, a Hangul filler or a variation selector prints as nothing, yet "Pére\u034fz" is
    not "Pérez" to a watchlist match; an unassigned code point is no text anyone typed. Each is refused, named by
    its code point, never the value."""
    err = _error(f.text, f"Pére{chr(point)}z Gómez", "Apellidos", 100, multiline=True)
    assert err.reason == f.INVISIBLE and f"U+{point:04X}" in str(err) and "Pére" not in str(err)


def test_text_refuses_every_default_ignorable_and_blank_looking_character() -> None:
    """Every code point Unicode makes default-ignorable, and each one drawn as a blank that it does not
    (strict.BLANK_LOOKING), is refused in a name as invisible-character, by code point."""
    points = [*(code for first, last in strict.DEFAULT_IGNORABLE for code in range(first, last + 1)),
              *strict.BLANK_LOOKING]
    passed = []
    for point in points:
        try:
            f.text(f"Pére{chr(point)}z Gómez", "Apellidos", 100)
        except AdapterError as err:
            if err.reason == f.INVISIBLE and f"U+{point:04X}" in str(err):
                continue
        passed.append(f"U+{point:04X}")
    assert passed == []


@pytest.mark.parametrize("point", [0xE000, 0xF8FF, 0xF0000, 0x10FFFD])
@pytest.mark.parametrize("multiline", [False, True])
def test_text_refuses_private_use_characters(point: int, multiline: bool) -> None:
    """A private-use character is drawn as a vendor's glyph or a box and makes two equal-looking names differ; no
    agency's staff typed it. Refused as invisible-character, named as private-use by code point, never the value."""
    err = _error(f.text, f"Pére{chr(point)}z Gómez", "Apellidos", 100, multiline=multiline)
    assert err.reason == f.INVISIBLE and f"the private-use character U+{point:04X}" in str(err)
    assert "Apellidos" in str(err) and "Pére" not in str(err) and chr(point) not in str(err)


@pytest.mark.parametrize("count", [5, 9, 30])
def test_text_refuses_a_stack_of_combining_marks(count: int) -> None:
    """Five or more combining marks on one letter (zalgo text) draw over the text around it: invisible-character,
    said by the run's length, never the value."""
    marks = ("\u0300\u0303\u0304\u0306\u0308" * 6)[:count]
    err = _error(f.text, f"Pérez Gómez{marks}", "Apellidos", 100)
    assert err.reason == f.INVISIBLE and f"a run of {count} combining marks on one character" in str(err)
    assert "Pérez" not in str(err)


@pytest.mark.parametrize("value", [
    "Qq\u0300z",
    "Qq\u0300\u0303\u0304\u0306z",  # four marks on one letter (a q: none composes with it in NFC): the most accepted
    "Nguyễn Thị Phượng",
    "שָּׁ֖לוֹם",  # Hebrew: shin dot, dagesh, qamats, cantillation on one letter
    "क़ुँवर",
])
def test_text_takes_up_to_four_combining_marks_and_real_scripts(value: str) -> None:
    """Vietnamese, Hebrew and Devanagari names, and up to four marks on one letter, are text."""
    assert f.text(value, "Apellidos", 100) == unicodedata.normalize("NFC", value)


@pytest.mark.parametrize(("value", "word", "scripts"), [
    ("P\u0435rez Cuesta", 1, "Latin and Cyrillic"),  # a Cyrillic 'е'
    ("Pérez G\u00f3\u043cez", 2, "Latin and Cyrillic"),  # a Cyrillic 'м' after a Latin accented 'ó'
    ("S\u03bfto", 1, "Latin and Greek"),  # a Greek omicron
    ("AB12\u0421\u0421", 1, "Latin and Cyrillic"),  # a plate: digits do not split a word
    ("\u0415\u0301rez", 1, "Latin and Cyrillic"),  # a combining mark does not split one either
])
def test_text_refuses_a_word_mixing_latin_cyrillic_and_greek(value: str, word: int, scripts: str) -> None:
    """A one-line value (a name, a code, a plate) with a word mixing lookalike scripts reads as the Latin word and
    does not match it: refused as mixed-script, saying which word and which scripts, never a letter of it."""
    err = _error(f.text, value, "Apellidos", 100)
    assert err.reason == f.MIXED_SCRIPT and f"word {word} mixes {scripts}" in str(err) and "Apellidos" in str(err)
    assert not any(c in str(err) for c in value if not c.isascii())
    assert "rez" not in str(err) and "AB12" not in str(err)


@pytest.mark.parametrize("value", ["Иван Петров", "Σωκράτης Παππάς", "Иван Pérez", "Ngäbe-Buglé", "µg", "Pérez"])
def test_text_takes_a_name_wholly_in_one_script_and_free_text(value: str) -> None:
    """Each word in one script is a name (Cyrillic or Greek ones too, beside a Latin one); free text, which no
    watchlist matches, keeps what it was given."""
    assert f.text(value, "Apellidos", 100) == value
    remark = "Se vio la lancha P\u0435rez."
    assert f.text(remark, "Observaciones", 100, multiline=True) == remark


def test_a_travellers_surname_with_a_cyrillic_letter_is_refused(run: Callable[..., list[Result]]) -> None:
    """'Pеrez' with a Cyrillic 'е' looks like 'Perez' and a partner's watchlist match on it would miss: the hit is
    refused as mixed-script, naming the field, not published."""
    hit = json.loads((SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0])
    hit["viajero"]["primer_apellido"] = "P\u0435rez"
    [result] = run("snm", (_line(hit) + "\n").encode())
    assert result.alert is None and result.error is not None and result.error.reason == f.MIXED_SCRIPT
    assert "primer apellido" in str(result.error) and "rez" not in str(result.error)


@pytest.mark.parametrize(("value", "word", "scripts"), [
    ("P\u0585rez", 1, "Latin and Armenian"),  # an Armenian 'օ'
    ("Cuesta \u13e2erez", 2, "Latin and Cherokee"),  # a Cherokee 'Ꮲ'
    ("\ua4d1erez", 1, "Latin and Lisu"),  # a Lisu 'ꓑ'
    ("P\u0966rez", 1, "Latin and Devanagari"),  # a Devanagari zero, drawn as an 'o': a digit of another script
    ("\u0418\u03b1\u043d", 1, "Cyrillic and Greek"),  # Cyrillic and Greek do not mix either
])
def test_text_refuses_a_latin_word_holding_any_other_scripts_letter(value: str, word: int, scripts: str) -> None:
    """A Latin word may hold Latin letters only, not those of any other script drawn alike (Armenian, Cherokee,
    Lisu, a Devanagari digit); a Cyrillic or Greek word keeps to its own script too. Refused as mixed-script,
    saying the word and the scripts, never a letter; only Cyrillic and Greek were looked at before."""
    err = _error(f.text, value, "Apellidos", 100)
    assert err.reason == f.MIXED_SCRIPT and f"word {word} mixes {scripts}" in str(err)
    assert not any(c in str(err) for c in value if not c.isascii()) and "rez" not in str(err)


@pytest.mark.parametrize(("value", "number"), [
    ("\uff30erez", 1),  # fullwidth 'Ｐ'
    ("Per\uff45z", 4),  # fullwidth 'ｅ'
    ("\U0001d40ferez", 1),  # mathematical bold '𝐏'
    ("\u24c5erez", 1),  # circled 'Ⓟ', a symbol: no word holds it
    ("\ufb01gueroa", 1),  # the ligature 'ﬁ'
    ("ABC-\uff11\uff12\uff13", 5),  # a plate with fullwidth digits
    ("\uff30\uff25\uff32\uff25\uff3a", 1),  # wholly fullwidth: one script, still not the plain word
])
def test_text_refuses_letters_and_digits_in_a_compatibility_form(value: str, number: int) -> None:
    """A fullwidth, mathematical or circled letter, a ligature or a fullwidth digit looks like the plain one and
    does not compare equal to it: refused as mixed-script, naming the character's place, never the character
    (NFKC would fold it, but rewriting what the agency typed is not the adapter's to do)."""
    err = _error(f.text, value, "Placa", 100)
    assert err.reason == f.MIXED_SCRIPT and f"character {number} is a letter or digit in a compatibility form" in str(
        err) and "Placa" in str(err)
    assert not any(c in str(err) for c in value if not c.isascii()) and "rez" not in str(err)


@pytest.mark.parametrize("value", [
    "Pérez Muñoz", "Müller", "Pe\u0301rez", "Nguyễn Thị Phượng", "Հայաստան", "ᏣᎳᎩ", "山田たろう", "ꓡꓲꓢꓳ",
    "Batallón de Darién, 3.ª compañía", "N.º 12", "2½ km", "µg",
])
def test_text_takes_latin_with_its_accents_latin_1_and_a_word_in_one_other_script(value: str) -> None:
    """Latin letters with accents (composed or by combining marks), Latin-1's own letters and digits (ª, º, µ, ½),
    and a word wholly in another script (Armenian, Cherokee, Lisu; Han beside Hiragana, as Japanese writes them)
    are text."""
    assert f.text(value, "Apellidos", 100) == unicodedata.normalize("NFC", value)


def test_a_travellers_surname_with_an_armenian_letter_is_refused(run: Callable[..., list[Result]]) -> None:
    """'Pօrez' with an Armenian 'օ' looks like 'Perez' as the Cyrillic 'е' does: the hit is refused as
    mixed-script, naming the field, not published."""
    hit = json.loads((SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0])
    for surname in ("P\u0585rez", "\uff30erez"):
        hit["viajero"]["primer_apellido"] = surname
        [result] = run("snm", (_line(hit) + "\n").encode())
        assert result.alert is None and result.error is not None and result.error.reason == f.MIXED_SCRIPT
        assert "primer apellido" in str(result.error) and "rez" not in str(result.error)


@pytest.mark.parametrize("zone", ["Factory", "localtime", "posixrules", "posix/America/Panama", "right/UTC"])
def test_a_time_zone_that_is_no_place_is_refused_in_the_configuration(zone: str) -> None:
    """An agency's timezone must be the zone of a place: Factory, this host's localtime, posixrules and the posix/
    and right/ copies load with zoneinfo yet are refused, as an unknown IANA time zone that is no place."""
    snm = load_config().agencies["SNM"].model_dump()
    with pytest.raises(ValidationError) as caught:
        AgencyProfile.model_validate({**snm, "timezone": zone})
    assert "unknown IANA time zone" in str(caught.value) and "no place" in str(caught.value)


@pytest.mark.parametrize("zone", ["America/Panama", "UTC", "Etc/GMT+5"])
def test_the_time_zone_of_a_place_or_utc_is_taken_in_the_configuration(zone: str) -> None:
    """America/Panama, UTC and Etc/GMT+5 are agencies' time zones."""
    snm = load_config().agencies["SNM"].model_dump()
    assert AgencyProfile.model_validate({**snm, "timezone": zone}).timezone == zone


def test_text_still_takes_accents_and_line_breaks_in_free_text() -> None:
    """The check leaves ordinary Spanish text and the line breaks of remarks alone."""
    assert f.text("Ñame, Güiro y Peña", "x", 50) == "Ñame, Güiro y Peña"
    assert f.text("uno\ndos", "Observaciones", 50, multiline=True) == "uno\ndos"
    assert f.text("Núñez\u00a0y\u3000Peña", "x", 50) == "Núñez y Peña"  # spaces of other widths, collapsed


def test_a_code_with_an_invisible_character_is_refused_not_normalised(ctx_for: Callable[[str], Context]) -> None:
    """'CONFIDENCIAL' followed by a zero-width space used to be matched as CONFIDENCIAL; now it is refused."""
    from adapters.core import markings

    err = _error(markings, ctx_for("SNM"), {"classification": "CONFIDENCIAL\u200b"})
    assert err.reason == f.INVISIBLE


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_a_byte_order_mark_at_the_start_of_a_file_is_dropped(name: str, run: Callable[..., list[Result]]) -> None:
    """Each reader takes an export that starts with a UTF-8 BOM exactly as the same export without it."""
    sample = sorted(p for p in (SAMPLES / name).iterdir() if p.is_file())[0].read_bytes()
    plain = sample.removeprefix(b"\xef\xbb\xbf")

    def outcome(data: bytes) -> list[tuple[int, int, str | None, bytes | None]]:
        return [(r.item.number, r.item.line, r.error and r.error.reason, r.value) for r in run(name, data)]

    with_bom = outcome(b"\xef\xbb\xbf" + plain)
    assert with_bom == outcome(plain) and all(error is None for _, _, error, _ in with_bom)


def test_a_byte_order_mark_that_is_not_the_files_start_is_refused() -> None:
    """A BOM opening a later record is a character of a value (refused by text()), never dropped silently."""
    rows = list(csv_rows(io.BytesIO(b"a;b\n1;2\n\xef\xbb\xbf3;4\n"), "utf-8-sig", 1000))
    assert rows[2][2] == ["\ufeff3", "4"]
    assert _error(f.text, "\ufeff3", "N° Informe", 20).reason == f.INVISIBLE
    items = list(json_lines(io.BytesIO(b'\xef\xbb\xbf{"a": 1}\n\xef\xbb\xbf{"b": 2}\n'), "utf-8", 1000))
    assert items[0].parsed == {"a": 1} and items[1].error is not None


# ---- 5. the same faults elsewhere ---------------------------------------------------------------
def test_an_invisible_character_in_a_csv_header_refuses_the_file(run: Callable[..., list[Result]]) -> None:
    """'Difu<ZWSP>sión' would be an unknown column and its SOLO PANAMÁ lost; the file is refused instead."""
    data = "N° Informe;Fecha;Hora;Tipo de evento;Difu\u200bsión\nR-1;03/11/2026;06:40;Cruce;SOLO PANAMÁ\n".encode()
    results = run("senafront", data)
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(0, f.INVISIBLE)]
    assert "header column 5" in str(results[0].error)


@pytest.mark.parametrize(("name", "data"), [
    ("snm", _line({**SNM, "marcado": {"clasificacion": "SECRETO", "difusión": ["FEAN"]}})),
    ("snm", _line({**SNM, "marcado": {"classification": "SECRETO"}})),
    ("combifron", (SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_text("utf-8").splitlines()[0]
     .replace('"manejo":"H2"', '"manejo":"H2","manejo_especial":"H3"')),
])
def test_a_marking_block_key_nobody_reads_is_refused(name: str, data: str, run: Callable[..., list[Result]]) -> None:
    """A misspelt marking key would leave the (often wider) default in force: the record is refused, its place said."""
    results = run(name, data.encode() + b"\n")
    assert len(results) == 1 and results[0].error is not None and results[0].error.reason == f.UNKNOWN_CODE
    assert "has an unexpected key (" in str(results[0].error)


@pytest.mark.parametrize(("name", "data"), [
    ("snm", _line({**SNM, "cruce": "ventanilla 6"})),  # vuelo and cruce
    ("snm", _line({**SNM, "viajero": {**SNM["viajero"], "apellidos": "Pérez Gómez"}})),  # both ways of surnames
    ("senan", (SAMPLES / "senan" / "interdicciones-2026-11.json").read_text("utf-8").split("\n{")[0]
     .replace('"nacionalidades": [', '"nacionalidad": "COL",\n      "nacionalidades": [', 1)),
])
def test_one_field_under_two_names_is_refused(name: str, data: str, run: Callable[..., list[Result]]) -> None:
    """Two alternative names of one field both filled is duplicate-key, not one of them silently dropped."""
    results = run(name, data.encode() + b"\n")
    assert len(results) == 1 and results[0].error is not None and results[0].error.reason == f.DUPLICATE_KEY


@pytest.mark.parametrize(("name", "data"), [
    ("senafront", "N° Informe;Fecha;Hora;Tipo de evento\nR-1;31/12/9999;23:59;Cruce\n".encode()),
    ("snm", _line({**SNM, "fecha_hora": "9999-12-31T23:59:00-05:00"}).encode()),
    ("snm", _line({**SNM, "fecha_hora": "0001-01-01T00:00:00+05:00"}).encode()),
    ("snm", _line({**SNM, "coincidencia": {"lista": "PAN_NATIONAL", "puntaje": 10**400}}).encode()),
    ("combifron", (SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_bytes().splitlines()[0]
     .replace(b'"latitud":8.67211', b'"latitud":' + b"9" * 400)),
])
def test_values_at_the_ends_of_the_calendar_and_of_numbers_are_refused_not_raised(
        name: str, data: bytes, run: Callable[..., list[Result]]) -> None:
    """A date whose UTC form leaves the calendar, or a number beyond any float, is a dead letter, not a crash."""
    results = run(name, data + b"\n")
    assert len(results) == 1 and results[0].error is not None
    assert results[0].error.reason in {f.INVALID_DATE, f.INVALID, f.OUT_OF_REGION}


def test_quantities_and_counts_beyond_any_float_are_refused() -> None:
    """quantity(), integer() and coordinate() refuse huge numbers with a reason instead of OverflowError."""
    assert _error(f.quantity, 10**400, "q").reason == f.INVALID
    assert _error(f.integer, "9" * 5000, "n").reason == f.INVALID
    assert _error(f.coordinate, 10**400, "c", "lat").reason == f.OUT_OF_REGION


def test_a_csv_field_over_the_csv_modules_limit_is_refused_alone(config: AdaptersConfig,
                                                                 run: Callable[..., list[Result]]) -> None:
    """With record_bytes above 131,072 a huge remark is too-long for its record; the next row is still read."""
    big = config.model_copy(update={"limits": config.limits.model_copy(update={"record_bytes": 900_000})})
    ctx = make_context("SENAFRONT", NOW, big)
    rows = ["N° Informe;Fecha;Hora;Tipo de evento;Observaciones", "R-1;03/11/2026;06:40;Cruce;" + "x" * 140_000,
            "R-2;03/11/2026;06:40;Cruce;ok"]
    results = run("senafront", "\n".join(rows).encode() + b"\n", ctx)
    assert [r.error.reason if r.error else "ok" for r in results] == [f.TOO_LONG, "ok"]


def test_a_reader_that_fails_ends_its_file_as_a_dead_letter(ctx_for: Callable[[str], Context]) -> None:
    """Records read before the failure keep their results; the failure is one file-level dead letter, not a raise."""
    import csv

    def read(stream: Any, ctx: Context) -> Any:
        yield Item(1, 1, b"x", error=AdapterError("bad", f.SYNTAX))
        raise csv.Error("something the reader did not foresee")

    adapter = Adapter("t", "SNM", "test", ("*",), read, lambda doc, ctx: doc, keys=None)
    results = list(convert(adapter, io.BytesIO(b""), ctx_for("SNM")))
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(1, f.SYNTAX), (0, f.INVALID)]
    assert "after line 1" in str(results[1].error)


def test_an_io_error_reading_the_file_is_not_taken_for_a_bad_record(ctx_for: Callable[[str], Context]) -> None:
    """OSError is the file failing, not its content: it propagates, for the edge to report."""
    def read(stream: Any, ctx: Context) -> Any:
        raise OSError(5, "Input/output error")
        yield  # a generator

    adapter = Adapter("t", "SNM", "test", ("*",), read, lambda doc, ctx: doc, keys=None)
    with pytest.raises(OSError):
        list(convert(adapter, io.BytesIO(b""), ctx_for("SNM")))


# ---- 6. a province label the coordinates contradict ----------------------------------------------
_BORDER_CSV = ("No. Informe,Fecha del evento,Hora del evento,Provincia o comarca,Sector fronterizo,Localidad,Lat,Long,"
               "Tipo,Personas,Sentido,Nacionalidad,Patrulla,Dependencia,Novedades,Clasificación,Difusión,Manejo,"
               "Calificación\n")


def _border(province: str, lat: str, lon: str) -> bytes:
    row = (f"BOC-2026-0999,02/11/2026,05:15,{province},,Sitio,{lat},{lon},Cruce irregular,3,Norte,colombianos,"
           "Patrulla Puma 4,Batallón de Darién,Sin novedad.,,,,\n")
    return (_BORDER_CSV + row).encode()


def test_a_province_the_coordinates_contradict_is_refused(run: Callable[..., list[Result]],
                                                          one: Callable[..., dict[str, Any]]) -> None:
    """A border event labelled Darién whose position is in Panama City is refused as location-mismatch,
    naming codes only; the same label with a position in Darién passes."""
    results = run("senafront", _border("Darién", "8.98", "-79.52"))
    err = results[0].error
    assert err is not None and err.reason == f.LOCATION_MISMATCH
    assert "PANAMA" in str(err) and "DARIEN" in str(err)
    assert one("senafront", _border("Darién", "8.05", "-77.60"))["location"]["province"] == "DARIEN"


def test_positions_at_sea_are_not_held_against_their_zone(one: Callable[..., dict[str, Any]]) -> None:
    """SENAN reports positions at sea, where the zone it names need not hold the point: not judged."""
    sample = next((SAMPLES / "senan").glob("*.json"))
    first = sample.read_bytes().split(b"\n{")[0]
    assert one("senan", first)["location"] is not None


@pytest.mark.parametrize("value, count", [("q" + "\u0344" * 4, 8), ("\u0f40" + "\u0f73" * 4, 8),
                                          ("q" + "\u0344" * 2 + "\u0301", 5), ("\u0c15" + "\u0c48" * 3, 6)])
def test_text_counts_a_run_of_marks_in_its_decomposition(value: str, count: int) -> None:
    """A mark that decomposes into two counts as two, whether NFC undoes it (U+0344, U+0F73) or keeps it whole
    (U+0C48 TELUGU VOWEL SIGN AI): the adapters and the broker count a run alike (on a q, with which no mark
    composes)."""
    err = _error(f.text, f"Pérez {value}", "Apellidos", 100)
    assert err.reason == f.INVISIBLE and f"a run of {count} combining marks on one character" in str(err)


@pytest.mark.parametrize("value", ["q\u0344\u0344", "Pe\u0301rez", unicodedata.normalize("NFD", "Nguyễn Thị Phượng")])
def test_text_takes_decomposed_accents_and_four_marks_after_decomposition(value: str) -> None:
    """Four marks after decomposition, and decomposed Spanish or Vietnamese, are text (given back in NFC)."""
    assert f.text(value, "Apellidos", 100) == unicodedata.normalize("NFC", value)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b"\xef\xbb\xbf \r\n\t\r\n"],
                         ids=["empty", "bom", "blank-lines", "bom-and-blanks"])
@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_a_file_with_no_record_is_refused_as_cut(name: str, data: bytes, run: Callable[..., list[Result]]) -> None:
    """A file holding no record (0 bytes, a byte-order mark, blank lines) is one refusal of the file, flagged
    ``cut``: an exporter that opened its file and has not written yet looks the same, so the watcher leaves it in
    place and a run exits non-zero; SENAFRONT says it has no header."""
    results = run(name, data)
    assert len(results) == 1 and results[0].item.number == 0, results
    err = results[0].error
    assert err is not None and err.cut
    assert err.reason == (f.MISSING_COLUMN if name == "senafront" else f.TRUNCATED), err
    if name == "senafront":
        assert "the file has no header" in str(err)
    elif name != "pn":  # PN says its trailer is missing
        assert "the file holds no record" in str(err)


SAMPLE_FILES = {"senafront": "senafront/patrullas-2026-11.csv", "senan": "senan/interdicciones-2026-11.json",
                "pn": "pn/incautaciones-2026-11.txt", "snm": "snm/alertas-migratorias-2026-11.jsonl",
                "combifron": "combifron/mensajes-colombia-2026-11.jsonl"}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_a_file_with_cr_only_line_ends_is_refused_once_and_not_cut(name: str,
                                                                   run: Callable[..., list[Result]]) -> None:
    """A sample exported with CR alone as its line ends (old Mac software), with or without a final LF, is one
    refusal of the file, syntax, saying to export with LF or CRLF; not a cut file a watcher would wait on for
    ever. A file whose only line ends with a CR, which may be the first half of a CRLF, is read as before (a JSON
    line whole, a CSV header or PN line cut)."""
    lines = (SAMPLES / SAMPLE_FILES[name]).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    for data in (lines, lines + b"\n", b"\xef\xbb\xbf" + lines):
        results = run(name, data)
        assert len(results) == 1 and results[0].item.number == 0, results
        err = results[0].error
        assert err is not None and err.reason == f.SYNTAX and not err.cut
        assert "line ends are CR only" in str(err) and "LF or CRLF" in str(err)
    first = lines[:lines.index(b"\r") + 1]
    assert not any(r.error is not None and "CR only" in str(r.error) for r in run(name, first))


def test_a_csv_with_its_header_and_no_row_is_cut(run: Callable[..., list[Result]]) -> None:
    """A header written and no row yet is a file still being written as far as anyone can tell: refused, cut."""
    header = next((SAMPLES / "senafront").glob("*.csv")).read_bytes().split(b"\n")[0] + b"\n"
    results = run("senafront", header + b"\r\n")
    assert [(r.item.number, r.item.line, r.error.reason if r.error else None, r.error and r.error.cut)
            for r in results] == [(0, 1, f.TRUNCATED, True)]


# Records of each JSON format with every optional field these tests bend filled in; each maps to an alert.
_OPTIONAL_BASES: dict[str, dict[str, Any]] = {
    "snm": {**SNM, "fecha_reporte": "2026-11-03 22:30:00",
            "coincidencia": {**SNM["coincidencia"], "lista": "PAN_NATIONAL", "propietario": "PAN"},
            "viajero": {**SNM["viajero"], "documentos": [{"tipo": "pasaporte", "numero": "AX1234567", "pais": "COL",
                                                          "vence": "2029-05-01"}]}},
    "senan": {"numero_operacion": "FTC-2026-0311", "fecha_hora": "2026-11-03T03:40:00-05:00",
              "fecha_hora_reporte": "2026-11-03 09:15", "unidad": "Grupo Aeronaval Oriental",
              "posicion": {"latitud": 7.35, "longitud": -78.3},
              "embarcacion": {"tipo": "lancha rápida", "bandera": "COL"},
              "carga": [{"tipo": "droga", "descripcion": "cocaína", "cantidad": 1250, "unidad": "paquetes"}]},
    "combifron": {"version": "1.0", "id_mensaje": "COL-ARC-2026-00412", "entidad": "ARC", "tipo": "INCAUTACION",
                  "fecha_evento": "2026-11-02T05:10:00-05:00", "fecha_envio": "2026-11-02T09:00:00-05:00",
                  "contenido": {"elementos": [{"tipo": "droga", "descripcion": "cocaína", "cantidad": 1100,
                                               "unidad": "kg"}],
                                "medio": {"tipo": "semisumergible", "bandera": "COL"}}},
}
_OPTIONAL_PATHS = [
    ("snm", ("fecha_reporte",)), ("snm", ("coincidencia", "propietario")),
    ("snm", ("viajero", "documentos", 0, "pais")), ("snm", ("viajero", "documentos", 0, "vence")),
    ("senan", ("fecha_hora_reporte",)), ("senan", ("embarcacion", "bandera")),
    ("combifron", ("fecha_envio",)), ("combifron", ("contenido", "medio", "bandera")),
]


def _record(name: str, path: tuple[str | int, ...] = (), value: Any = None) -> bytes:
    doc = copy.deepcopy(_OPTIONAL_BASES[name])
    if path:
        at: Any = doc
        for step in path[:-1]:
            at = at[step]
        at[path[-1]] = value
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


@pytest.mark.parametrize("name", sorted(_OPTIONAL_BASES))
def test_the_records_with_every_optional_field_are_valid(name: str, one: Callable[..., dict[str, Any]]) -> None:
    """Each base record maps to an alert, so each refusal below comes from the one value bent in it."""
    assert one(name, _record(name))["alert_id"]


@pytest.mark.parametrize("value", [False, 0, {}, []], ids=["false", "zero", "object", "array"])
@pytest.mark.parametrize(("name", "path"), _OPTIONAL_PATHS, ids=[".".join(map(str, p)) for _, p in _OPTIONAL_PATHS])
def test_an_optional_value_of_the_wrong_type_is_refused_not_taken_as_absent(
        name: str, path: tuple[str | int, ...], value: Any, run: Callable[..., list[Result]]) -> None:
    """false, 0, {} or [] where an optional date, country or list owner belongs is refused, naming the field:
    only null and "" are absent, and a value stated in the wrong type is never dropped as if it were not there."""
    results = run(name, _record(name, path, value))
    err = results[0].error
    assert len(results) == 1 and err is not None, results[0].alert
    assert str(path[-1]) in str(err) and "unexpected shape" not in str(err), str(err)


@pytest.mark.parametrize(("name", "path"), _OPTIONAL_PATHS, ids=[".".join(map(str, p)) for _, p in _OPTIONAL_PATHS])
def test_an_optional_value_left_null_or_empty_is_absent(name: str, path: tuple[str | int, ...],
                                                        one: Callable[..., dict[str, Any]]) -> None:
    """null and "" still mean the optional value is not given."""
    for value in (None, ""):
        assert one(name, _record(name, path, value))["alert_id"]


@pytest.mark.parametrize("blank", [" ", "\u00a0", "\t\n"], ids=["space", "nbsp", "tab-newline"])
@pytest.mark.parametrize(("name", "path"), [("snm", ("coincidencia", "propietario")),
                                            ("combifron", ("contenido", "propietario"))])
def test_a_blank_list_owner_is_refused_by_name(name: str, path: tuple[str, ...], blank: str,
                                               run: Callable[..., list[Result]]) -> None:
    """A propietario of blanks is refused as missing, naming the field; it never fails as an unexpected shape."""
    if name == "combifron":
        doc = {"version": "1.0", "id_mensaje": "COL-MIGRACION-2026-00412", "entidad": "MIGRACION",
               "tipo": "ALERTA_MIGRATORIA", "fecha_evento": "2026-11-02T05:10:00-05:00",
               "ubicacion": {"provincia": "Guna Yala", "sector": "Puerto Obaldía", "lugar": "Puerto Obaldía"},
               "contenido": {"persona": {"nombres": "Yeison", "apellidos": "Murillo Palacios"},
                             "lista": "COL_PARTNER", "puesto": "PUERTO_OBALDIA", "propietario": blank}}
    else:
        doc = {**SNM, "coincidencia": {**SNM["coincidencia"], "propietario": blank}}
    err = run(name, _line(doc).encode() + b"\n")[0].error
    assert err is not None and err.reason == f.MISSING_FIELD and "propietario" in str(err), err
