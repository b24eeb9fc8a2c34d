"""unseen_mark refuses what disguises text (private-use characters, stacks of combining marks) and leaves real
scripts alone; known_zone takes only the time zones of places."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from puente.strict import (
    BLANK_LOOKING,
    DEFAULT_IGNORABLE,
    DEFAULT_IGNORABLE_VERSION,
    MAX_MARKS,
    emoji_unglued,
    json_text,
    known_zone,
    one_line,
    printable,
    unseen_mark,
)

ACUTE, GRAVE, TILDE, MACRON, BREVE = "\u0301", "\u0300", "\u0303", "\u0304", "\u0306"


@pytest.mark.parametrize("point", [0xE000, 0xE8D5, 0xF8FF, 0xF0000, 0xFFFFD, 0x100000, 0x10FFFD])
def test_private_use_characters_are_named_as_such(point: int) -> None:
    """A private-use character (the BMP's area, planes 15 and 16) is refused as one, by code point, without the text."""
    said = unseen_mark(f"Pére{chr(point)}z Gómez")
    assert said == f"the private-use character U+{point:04X}"


@pytest.mark.parametrize("count", [5, 6, 12, 30])
def test_more_than_four_combining_marks_in_a_row_are_refused(count: int) -> None:
    """Zalgo text, a letter under a stack of marks drawn over its neighbours, is refused with the run's length."""
    marks = (ACUTE + GRAVE + TILDE + MACRON + BREVE) * 6
    assert unseen_mark(f"Pérez Z{marks[:count]}algo") == f"a run of {count} combining marks on one character"


def test_enclosing_marks_count_as_combining_marks() -> None:
    """Enclosing marks (Me, such as U+20DD COMBINING ENCLOSING CIRCLE) stack like the others."""
    assert unseen_mark("x" + "\u20dd" * 5) == "a run of 5 combining marks on one character"
    assert unseen_mark("x" + "\u20dd" * 4) is None


@pytest.mark.parametrize("count", range(1, MAX_MARKS + 1))
def test_up_to_four_combining_marks_in_a_row_are_text(count: int) -> None:
    """One to four marks on a letter are what real scripts write; MAX_MARKS is four."""
    assert unseen_mark("Pe" + (ACUTE + GRAVE + TILDE + MACRON)[:count] + "rez") is None


@pytest.mark.parametrize("text", [
    "Nguyễn Thị Phượng",  # Vietnamese, composed (NFC)
    unicodedata.normalize("NFD", "Nguyễn Thị Phượng"),  # and decomposed: two marks on a letter
    "שָּׁ֖לוֹם בְּרֵאשִׁ֖ית",  # Hebrew: shin dot, dagesh, qamats and a cantillation mark on one letter
    "क़ुँवर हिन्दी",  # Devanagari: nukta, vowel sign, candrabindu
    "الْعَرَبِيَّة",  # Arabic with its vowel marks
    "Ñame, Güiro y Peña",
    "😀😀😀😀😀😀 🇵🇦🇵🇦🇵🇦",  # characters beyond the BMP that are no marks: the search's false alarms, cleared
    "𝐇𝐞𝐥𝐥𝐨 𝐖𝐨𝐫𝐥𝐝",
])
def test_real_scripts_are_text(text: str) -> None:
    """Vietnamese, Hebrew, Devanagari and Arabic names, and runs of emoji, pass."""
    assert unseen_mark(text) is None


def test_the_first_thing_refused_is_the_one_named() -> None:
    """A private-use character before a run of marks is named, and the other way round; so is an ignorable one
    that ends a run too short to be refused."""
    assert unseen_mark("a\ue000b" + ACUTE * 6) == "the private-use character U+E000"
    assert unseen_mark("b" + ACUTE * 6 + "a\ue000") == "a run of 6 combining marks on one character"
    assert unseen_mark("b" + ACUTE * 3 + "\ufe0f") == "the invisible character U+FE0F VARIATION SELECTOR-16"
    assert unseen_mark("😀" * 5 + "\U000f0000") == "the private-use character U+F0000"
    assert unseen_mark("😀" * 5 + ACUTE * 5) == "a run of 5 combining marks on one character"


def test_the_search_misses_no_combining_mark() -> None:
    """Every combining mark (Mn, Me) of this Python's Unicode, in any plane, is found in a run of five: the quick
    search takes the BMP's marks from the Unicode data and everything beyond the BMP as a possible one."""
    missed = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in ("Mn", "Me") and unseen_mark("a" + char * 5) is None:
            missed.append(f"U+{code:04X}")
    assert missed == []


# Marks that decompose into two (and NFC leaves decomposed, but for U+0C48 and the Chakma ones): drawn as both.
DIALYTIKA_TONOS, TIBETAN_II = "\u0344", "\u0f73"


@pytest.mark.parametrize("text, count", [
    ("a" + DIALYTIKA_TONOS * 4, 8),  # four code points, eight marks drawn
    ("\u0f40" + TIBETAN_II * 4, 8),
    ("a" + DIALYTIKA_TONOS * 2 + ACUTE, 5),
    ("a" + ACUTE + DIALYTIKA_TONOS * 2, 5),  # the hit, on the first that decomposes, reaches back to the run's start
    ("Pérez a" + DIALYTIKA_TONOS * 3 + "z", 6),
    ("x" + "\U0001112e" * 3, 6),  # CHAKMA VOWEL SIGN O, beyond the BMP
    ("\u0c15" + "\u0c48" * 3, 6),  # TELUGU VOWEL SIGN AI, which NFC keeps whole
])
def test_a_run_of_marks_is_counted_in_its_canonical_decomposition(text: str, count: int) -> None:
    """A mark that decomposes into two counts as two, as it is drawn and as the adapters see it after NFC: four
    U+0344 are refused as eight, not passed as four; and so are shorter runs the quick search alone would miss."""
    assert unseen_mark(text) == f"a run of {count} combining marks on one character"


@pytest.mark.parametrize("text", [
    "a" + DIALYTIKA_TONOS * 2,  # four marks, decomposed
    "a" + DIALYTIKA_TONOS + ACUTE + GRAVE,
    "\u0f40" + TIBETAN_II + " \u0f40" + TIBETAN_II * 2 + "\u0f40" + TIBETAN_II,  # short runs, each cleared in turn
    unicodedata.normalize("NFD", "José Luis Pérez Gómez, Ñame, Güiro y Peña"),  # Spanish not in NFC
    "Pe\u0301rez",
    unicodedata.normalize("NFD", "Nguyễn Thị Phượng Trần Ngọc Ánh"),  # Vietnamese not in NFC: two marks a letter
])
def test_text_not_in_nfc_with_up_to_four_marks_a_letter_is_text(text: str) -> None:
    """Decomposed accents, Spanish or Vietnamese, and up to four marks after decomposition, pass."""
    assert unseen_mark(text) is None


def test_the_search_misses_no_mark_that_decomposes_into_several() -> None:
    """Every combining mark of this Python's Unicode whose NFD is several characters, in any plane, is found in a run
    of three (six marks or more), which the search for five suspects in a row alone would miss."""
    missed = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        several = unicodedata.category(char) in ("Mn", "Me") and len(unicodedata.normalize("NFD", char)) > 1
        if several and (unseen_mark("a" + char * 3) is None or unseen_mark("a" + char) is not None):
            missed.append(f"U+{code:04X}")
    assert missed == []


def test_an_invisible_character_in_a_run_is_named_before_the_runs_length() -> None:
    """A character drawn as nothing that is itself a mark (a variation selector, the grapheme joiner) in a run that
    is too long is named as what it is, as before: the one a reader cannot see."""
    assert unseen_mark("b" + ACUTE * 6 + "\u034f") == "the invisible character U+034F COMBINING GRAPHEME JOINER"
    assert unseen_mark("b" + DIALYTIKA_TONOS + "\ufe0f") == "the invisible character U+FE0F VARIATION SELECTOR-16"


DRAWN_AS_NOTHING = sorted({code for first, last in DEFAULT_IGNORABLE for code in range(first, last + 1)}
                          | set(BLANK_LOOKING))
# The format characters of Unicode 14.0 that are drawn, so not default-ignorable: the prepended concatenation marks,
# the interlinear annotation characters and the Egyptian hieroglyph format controls.
_DRAWN_FORMAT = {*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD,
                 *range(0xFFF9, 0xFFFC), *range(0x13430, 0x13439)}
# Other_Default_Ignorable_Code_Point's assigned letters and marks (PropList.txt): the grapheme joiner, the Hangul
# fillers and the Khmer inherent vowels.
_OTHER_IGNORABLE = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0}


def test_the_default_ignorable_table_is_of_the_unicode_this_python_ships() -> None:
    """DEFAULT_IGNORABLE is Unicode 14.0's, as unicodedata is: a Python with another Unicode needs the table of
    that version's DerivedCoreProperties.txt (and DEFAULT_IGNORABLE_VERSION set to it)."""
    assert unicodedata.unidata_version == DEFAULT_IGNORABLE_VERSION


def test_the_default_ignorable_table_agrees_with_the_categories_unicodedata_gives() -> None:
    """The table holds 4,174 code points in ascending ranges, every format character but the few drawn ones, and
    otherwise only variation selectors, Other_Default_Ignorable letters and marks, and unassigned code points;
    no white space; BLANK_LOOKING is outside it and printable."""
    table = [code for first, last in DEFAULT_IGNORABLE for code in range(first, last + 1)]
    assert len(table) == len(set(table)) == 4174 and table == sorted(table)
    formats = {code for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"}
    assert formats - set(table) == _DRAWN_FORMAT
    odd = [f"U+{code:04X}" for code in table if unicodedata.category(chr(code)) not in ("Cf", "Cn")
           and "VARIATION SELECTOR" not in unicodedata.name(chr(code)) and code not in _OTHER_IGNORABLE]
    assert odd == [] and not any(chr(code).isspace() for code in table)
    assert not set(BLANK_LOOKING) & set(table) and all(chr(code).isprintable() for code in BLANK_LOOKING)


def test_every_character_drawn_as_nothing_is_refused() -> None:
    """Each code point of DEFAULT_IGNORABLE and BLANK_LOOKING inside a name is named without the name: as drawn as
    nothing, or as unassigned when it is; the format characters among them are the readers' own to name first
    (the pipeline's and the adapters' tests refuse every one)."""
    missed = []
    for code in DRAWN_AS_NOTHING:
        char = chr(code)
        kind = unicodedata.category(char)
        said = unseen_mark(f"Pére{char}z Gómez")
        expected = (None if kind == "Cf" else f"the unassigned character U+{code:04X}" if kind == "Cn"
                    else f"the invisible character U+{code:04X} {unicodedata.name(char)}")
        if said != expected:
            missed.append(f"U+{code:04X}: {said}")
    assert missed == []


@pytest.mark.parametrize("point", [0x2800, 0x16FE4, 0x1D159, 0x3164, 0x115F, 0x1160, 0xFFA0])
def test_fillers_and_blanks_are_refused_at_either_end_and_alone(point: int) -> None:
    """The Braille blank, the Khitan filler, the null notehead and the Hangul fillers are refused alone, at the start
    or end of a name, and after a letter with an accent."""
    for text in (chr(point), f"{chr(point)}Pérez", f"Pérez{chr(point)}", f"Pé{chr(point)}rez", f"Castro{chr(point)}"):
        assert unseen_mark(text) == f"the invisible character U+{point:04X} {unicodedata.name(chr(point))}"


@pytest.mark.parametrize("name", ["José Luis Pérez Gómez", "María Ñúñez-Peña", "Ángela Güemes Ibáñez",
                                  "Sean O'Brien-Smith", "Zoë Brontë", "Façade Naïve Café", "ÀÉÎÕÜ àéîõü ÿ"])
def test_names_in_spanish_and_english_are_text(name: str) -> None:
    """Names written in Spanish and English, composed or decomposed, pass."""
    assert unseen_mark(name) is None and unseen_mark(unicodedata.normalize("NFD", name)) is None


def test_every_latin_letter_is_text() -> None:
    """No letter of Latin-1 Supplement, Latin Extended-A or B, or Latin Extended Additional is taken for a
    character drawn as nothing."""
    letters = [chr(code) for code in (*range(0xC0, 0x250), *range(0x1E00, 0x1F00))
               if unicodedata.category(chr(code)).startswith("L")]
    assert [char for char in letters if unseen_mark(f"Pe{char}rez") is not None] == []


@pytest.mark.parametrize("name", ["EST", "EST5EDT", "PST8PDT", "CST6CDT", "MST", "CET", "GMT0", "Zulu"])
def test_the_legacy_names_of_rules_and_of_utc_are_known(name: str) -> None:
    """The tz database's names of rules a clock follows (EST, EST5EDT, PST8PDT...) and of UTC (GMT0, Zulu) are the
    same offsets on every host: known, as the docstring of known_zone says."""
    assert known_zone(name)


@pytest.mark.parametrize("name", ["Factory", "localtime", "posixrules", "posix/America/Panama", "right/UTC",
                                  "right/America/Panama", "", "Mars/Olympus_Mons", "../../etc/passwd",
                                  "america/panama"])
def test_zones_that_are_no_place_are_unknown(name: str) -> None:
    """Factory (abbreviated "-00"), localtime (each host's own), posixrules and the posix/ and right/ copies load
    with zoneinfo where the tz files are, yet name no place: unknown, like names that are no zone at all."""
    assert not known_zone(name)


@pytest.mark.parametrize("name", ["America/Panama", "America/Bogota", "UTC", "Etc/UTC", "Etc/GMT+5"])
def test_the_zones_of_places_and_utc_are_known(name: str) -> None:
    """IANA names of places, UTC and the Etc/ offsets are known."""
    assert known_zone(name)


# ---- the marks of the letter a run follows ------------------------------------------------------------------------
@pytest.mark.parametrize("text, count", [
    ("\u1ec7" + ACUTE * 3, 5),  # ệ is e with two marks: three more draw five
    ("Nguy\u1ec7" + ACUTE * 3 + "n", 5),
    ("\u01d8" + GRAVE * 3, 5),  # ǘ: u, diaeresis, acute
    ("\u1ec7" + DIALYTIKA_TONOS * 2, 6),
])
def test_the_marks_of_the_letter_a_run_follows_count(text: str, count: int) -> None:
    """A precomposed letter under a run of marks draws its own marks in the same stack: counted, as the same text
    decomposed is (which the broker may receive, and which NFC in the adapters turns back into this)."""
    assert unseen_mark(text) == f"a run of {count} combining marks on one character"
    assert unseen_mark(unicodedata.normalize("NFD", text)) == unseen_mark(text)


def test_every_letter_that_holds_marks_counts_them() -> None:
    """Every character that is not a mark but whose canonical decomposition holds marks, in any plane, counts them
    under a run that follows it: refused one mark past MAX_MARKS in all, and admitted at MAX_MARKS."""
    wrong = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        parts = unicodedata.normalize("NFD", char)
        if len(parts) < 2 or unicodedata.category(char) in ("Mn", "Me"):
            continue
        held = sum(unicodedata.category(part) in ("Mn", "Me") for part in parts)
        if held == 0 or held > MAX_MARKS:
            continue
        over = unseen_mark("x" + char + ACUTE * (MAX_MARKS - held + 1) + "y")
        at = unseen_mark("x" + char + ACUTE * (MAX_MARKS - held) + "y")
        if over != f"a run of {MAX_MARKS + 1} combining marks on one character" or at is not None:
            wrong.append(f"U+{code:04X}")
    assert wrong == []


# ---- emoji sequences --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "\u2764\ufe0f", "\u26a0\ufe0f peligro", "1\ufe0f\u20e3", "#\ufe0f\u20e3",  # VS16, keycaps
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 familia",  # a family: two zero-width joiners
    "\U0001f469\U0001f3fd\u200d\U0001f692",  # a woman firefighter, with a skin tone
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # the flag of Scotland: tags
    "\u2764\ufe0e",  # the heart's text presentation (VS15)
    "Llegó \u2764\ufe0f a Jaqué, \U0001f1f5\U0001f1e6",
])
def test_the_glue_of_emoji_sequences_unicode_recommends_is_no_disguise(text: str) -> None:
    """The joiners, presentation selectors and tags inside a recommended emoji sequence are left out of the check,
    and what is left is printable text with nothing unseen: ordinary emoji are not refused."""
    checked = emoji_unglued(text)
    assert checked.isprintable() and unseen_mark(checked) is None


@pytest.mark.parametrize("text, glue", [
    ("P\u200d\u00e9rez", "\u200d"),  # a joiner between letters
    ("Pe\ufe0frez", "\ufe0f"), ("x\ufe0e", "\ufe0e"),  # a selector after a letter no sequence starts with
    ("\ufe0fhola", "\ufe0f"),
    ("\u2764\ufe0f\ufe0f", "\ufe0f"), ("\u2764\ufe0f\ufe0e", "\ufe0e"),  # a second selector
    ("\U0001f98a\u200d\U0001f431", "\u200d"),  # a fox joined to a cat: no recommended sequence
    ("\U0001f468\u200d\U0001f469\u200d", "\u200d"), ("\u200d\U0001f469", "\u200d"),  # a joiner at either end
    ("\U0001f468\u200dP\u00e9rez", "\u200d"),
    ("\U0001f3f4\U000e0041\U000e0042\U000e007f", "\U000e0041"),  # tags that spell no flag: text smuggled unseen
    ("abc\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "\U000e0067"),  # a flag's tags, no flag
])
def test_the_same_characters_anywhere_else_stay_for_the_reader_to_refuse(text: str, glue: str) -> None:
    """Outside a recommended sequence a joiner, selector or tag is what it always was, a character drawn as nothing:
    emoji_unglued keeps it, so the reader refuses it."""
    assert glue in emoji_unglued(text)


def test_printable_keeps_lines_unless_the_text_is_one_line() -> None:
    """Text of several lines keeps its line breaks; a name (one_line) has them escaped, with every control."""
    assert printable("a\x1b[2J\nb") == "a\\x1b[2J\nb"
    assert one_line("a\x1b[2J\nb\udcf1") == "a\\x1b[2J\\nb\\udcf1"
    assert one_line("año.jsonl") == "año.jsonl"


@pytest.mark.parametrize("hostile", ["\u2028", "\u2029", "\x85", "\x9b31m", "\u202e", "\x7f", "\x1c", "\U000e0041"])
def test_json_text_is_one_line_for_every_reader_and_keeps_real_scripts(hostile: str) -> None:
    """A JSON line carrying text someone else wrote stays one line even for a reader that also breaks lines at
    U+2028, U+0085 or U+001C (Python's ``splitlines``), with no control sequence in it; letters stay letters,
    and the line reads back as the same value."""
    value = {"detail": f"Panamá {hostile} Bogotá", "n": [1, "Ωμέγα"]}
    line = json_text(value)
    assert len(line.splitlines()) == 1 and line.isprintable() and hostile not in line
    assert "Panamá" in line and "Ωμέγα" in line and json.loads(line) == value
    pretty = json_text(value, indent=2)
    assert json.loads(pretty) == value and all(part.isprintable() for part in pretty.split("\n"))
    assert len(pretty.splitlines()) == len(pretty.split("\n"))
    assert json.loads(json_text(value, indent="\t")) == value  # a tab of layout stays layout
