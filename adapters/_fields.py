"""Field parsers shared by the adapters: text, codes, numbers, dates, times and coordinates.

Each takes a raw value and the field's name as the agency writes it, and returns a clean
value or raises AdapterError with a reason code and a message that names the field and
says what was expected.

Messages go to stderr and into the dead letter's ``puente-dlq-detail`` header, where more
people read them than may read the record. When a column is shifted, a person's name or
document number lands in a date, number or id field, and an upper-case surname, a vessel's
name or a plate looks just like a code, so the rule is: a message names the field and the
kind of problem and never quotes the value. Where the field's vocabulary is closed (a code
table, the countries), :func:`did_you_mean` may offer the nearest member of that vocabulary:
only the vocabulary is ever printed, never what the record holds.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache
from typing import Any

from adapters._codes import COUNTRY_NAMES, ISO_ALPHA3, country, norm_key
from puente.errors import AdapterError
from puente.strict import emoji_unglued, unaccented, unseen_mark

# Reason codes, as they appear in the dead-letter header puente-dlq-reason.
ENCODING, SYNTAX, TRUNCATED, MISSING_COLUMN, MISSING_FIELD = (
    "encoding", "syntax", "truncated", "missing-column", "missing-field")
INVALID_DATE, FUTURE, OUT_OF_REGION, NEGATIVE, UNKNOWN_CODE, TOO_LONG, INVALID = (
    "invalid-date", "future-date", "out-of-region", "negative-quantity", "unknown-code", "too-long", "invalid-value")
SCHEMA, CONFLICT = "schema-violation", "conflict"
DUPLICATE_KEY = "duplicate-key"  # a key given twice: which value was meant cannot be known
# A character that hides or reorders text, or makes equal-looking names differ: a format character (bidi override,
# zero-width...), one drawn as nothing, an unassigned or private-use one, or a run of combining marks (unseen_mark).
INVISIBLE = "invisible-character"
# A word mixing Latin, Cyrillic or Greek letters with another script's ('Pеrez' with a Cyrillic 'е', 'Pօrez' with an
# Armenian 'օ'), or a letter in a compatibility form ('Ｐerez', '𝐏erez'): it looks like the plain word and does not
# compare equal to it, so a watchlist match or a partner's filter misses it (UTS #39's mixed-script test).
MIXED_SCRIPT = "mixed-script"
LOCATION_MISMATCH = "location-mismatch"  # the coordinates lie in another province than the one labelled
TRAILER_MISMATCH = "trailer-mismatch"  # a complete file whose trailer does not count what it holds
# A file whose first record is not in the adapter's format (another agency's export in its folder): refused whole,
# before any record, so none of another agency's records reaches this agency's dead-letter topic.
WRONG_FORMAT = "wrong-format"

OLDEST_EVENT = date(2000, 1, 1)  # older events are typing errors (a year of 0025, 1925), not archives
_NEAR = 0.8  # difflib's ratio for a near miss: 'COMBAT' for 'COMBATE', not 'GARCIA' for 'GARITA'
_COUNTRY_FORMS = sorted(ISO_ALPHA3 | set(COUNTRY_NAMES))


def fail(reason: str, message: str) -> AdapterError:
    """The error for one bad field or record (raise it)."""
    return AdapterError(message, reason)


def naming(field: str, code_value: object) -> str:
    """``field`` alone: a refused value is never quoted, however much it looks like a code (``code_value`` is kept
    so that call sites still say which value they refuse).

    An upper-case surname ('GARCIA-MARQUEZ'), a vessel's name or a plate has the shape of a
    code, and a message reaches stderr and the dead letter's header. Use :func:`did_you_mean`
    to point at the code probably meant.
    """
    return field


def did_you_mean(value: str, vocabulary: Iterable[str], *, near: bool = True) -> str:
    """' (did you mean 'X'?)' with X the member of ``vocabulary`` written as ``value`` is in norm_key form (case,
    accents, spacing), or with ``near`` the nearest one; '' if none is.

    Only a member of the (closed) vocabulary is printed, never ``value``: the hint points at the
    code or key meant without saying what the record holds.
    """
    by_form = {norm_key(member): member for member in vocabulary}
    form = norm_key(value[:80])
    close = by_form.get(form)
    if close is None and near:
        close = next((by_form[m] for m in difflib.get_close_matches(form, by_form, 1, _NEAR)), None)
    return f" (did you mean {key_name(close)}?)" if close else ""


def key_name(key: str) -> str:
    """A known key (one an adapter reads, or offers as the one meant) for a message: cut to 40 characters.

    Not for a key the record holds that no adapter knows: that key may be data (a record keyed by a
    traveller's name, documents keyed by passport number), so it is said by place and length only
    (``adapters.core._unknown_key``).

    repr() escapes control and invisible characters, so a key cannot hide itself in the message.
    """
    return repr(key if len(key) <= 40 else key[:40] + "…")


def text(value: Any, field: str, limit: int, *, required: bool = False, multiline: bool = False) -> str | None:
    """Trimmed text in NFC (accents composed, so 'Núñez' compares equal however it was typed).

    Empty text (or None) means absent; text of blanks only is refused as blank (``given``), required or not. A
    JSON whole number is taken as its digits; any other number is refused (``1.0``
    and ``1e3`` are not what anyone typed for a name or a reference, and two of them can read alike).
    Whitespace runs collapse to one space, except in multi-line free text,
    where line breaks are kept; the control characters Python counts as whitespace (tab, vertical tab, form feed,
    the separators U+001C to U+001F, NEL) are whitespace here too, as a label's separators. Other control
    characters are refused: they are binary junk or a wrong encoding, never something staff typed. In a one-line
    value (a name, a code, a place, a plate), a word that mixes Latin, Cyrillic or Greek letters with another
    script's, and a letter in a compatibility form (fullwidth, mathematical...), are refused (``mixed_script``).
    """
    if type(value) is not str:  # the common case first: this runs dozens of times per record
        if value is None:
            if required:
                raise _missing(field)
            return None
        if type(value) is not int:  # a whole number typed without quotes (a document number) reads as its digits
            kind = "a number with a fraction or an exponent" if isinstance(value, float) else type(value).__name__
            raise fail(INVALID, f"{field} must be text, got {kind}")
        value = str(value)
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    if multiline:
        clean = "\n".join(" ".join(line.split()) for line in value.replace("\r\n", "\n").split("\n")).strip()
    else:
        clean = " ".join(value.split())  # collapses every run of whitespace: staff did not mean them
    if not clean:
        if value:  # blanks only: neither absent nor a value (a value whose content was lost looks the same)
            raise _blank(field)
        if required:
            raise _missing(field)
        return None
    # isprintable() is a fast C check (False for controls, format characters, surrogates, line
    # breaks); only when it fails, even without the line breaks free text keeps, are characters looked at.
    # The joiners and selectors inside emoji sequences (❤️, 👨‍👩‍👧) are no disguise: they are left out of the check.
    checked = emoji_unglued(clean)
    if not checked.isprintable() and not (multiline and checked.replace("\n", "").isprintable()):
        _refuse_hidden(checked, field)
    if (mark := unseen_mark(checked)) is not None:  # drawn as nothing, unassigned, private-use, or stacked marks
        raise fail(INVISIBLE, f"{field} contains {mark}, which can hide text or make equal names differ")
    if not multiline and (mixed := mixed_script(clean)) is not None:
        raise fail(MIXED_SCRIPT, f"{field}: {mixed}: the value does not match the same word written plainly, in "
                                 "one script; retype it in one alphabet")
    if len(clean) > limit:
        raise fail(TOO_LONG, f"{field} has {len(clean):,} characters; at most {limit:,} are accepted")
    return clean


# Scripts whose words are written in that one script: a word holding one of their letters may hold no letter or
# digit of another script. Others mix by rule (Japanese writes Han, Hiragana and Katakana in one word).
_ALONE = ("LATIN", "CYRILLIC", "GREEK")
# Names' first words that name no script; a letter so named is said as of another script (it is one).
_NO_SCRIPT = frozenset({"", "MODIFIER", "CARON", "TURNED", "ROMAN", "VERTICAL"})


@lru_cache(maxsize=4096)
def _script(char: str) -> str | None:
    """The script of ``char``, a letter or digit, as the first word of its Unicode name ('ARMENIAN SMALL LETTER
    OH'); None for one that belongs to any script (an ASCII digit, a combining mark).

    Latin-1, what older exports are typed in, is Latin: its letters (ª º µ included, whose names do not say so)
    and its digits and fractions (¹ ² ½) go with any Latin word.
    """
    if char <= "\xff":
        return "LATIN" if char.isalpha() else None
    if unicodedata.category(char)[0] == "M":
        return None  # a diacritic, or an emoji's selector: not a letter of its own
    return unicodedata.name(char, "").partition(" ")[0]


@lru_cache(maxsize=4096)
def _compatibility(char: str) -> bool:
    """Whether ``char`` is a compatibility form of a letter or digit (fullwidth Ｐ, mathematical 𝐏, circled Ⓟ, the
    ligature ﬁ...): NFKC gives a letter or digit for it. Latin-1's own (ª º µ ¹ ² ½) are typed as they are."""
    if char <= "\xff":
        return False
    folded = unicodedata.normalize("NFKC", char)
    return folded != char and any(c.isalnum() for c in folded)


def _said(script: str) -> str:
    return "another script" if script in _NO_SCRIPT else "CJK" if script == "CJK" else script.title()


def mixed_script(value: str) -> str | None:
    """Why ``value``'s letters do not match the same word written plainly, or None when they do.

    Refused: a letter or digit in a compatibility form (fullwidth, mathematical, circled: it looks like the plain
    one, and NFKC would fold it); a word that holds a letter of Latin, Cyrillic or Greek and a letter or digit of
    any other script ('Pօrez' with an Armenian 'օ', 'Ꮲerez' with a Cherokee 'Ꮲ'). The Latin word is an
    allow-list: Latin letters (é, ñ, ü, with combining marks too), ASCII digits and Latin-1's letters and digits.
    A word wholly in one other script is a name, and so are words of different scripts side by side.

    A word is a run of letters, digits and combining marks, so that a mark between two letters does not split
    them. Only the scripts are said, never a letter: the message must not give back the value. ASCII returns at
    once, and Latin-1 text (Spanish) after a look at its distinct characters.
    """
    if value.isascii():
        return None
    wide = [c for c in set(value) if c > "\xff"]
    if not wide:
        return None
    if any(_compatibility(c) for c in wide):
        number = next(i for i, c in enumerate(value, 1) if c > "\xff" and _compatibility(c))
        return (f"character {number} is a letter or digit in a compatibility form (fullwidth, mathematical, "
                "circled, a ligature...), which looks like the plain one")
    if all(_script(c) in ("LATIN", None) for c in wide if c.isalnum()):
        return None
    word, inside = 0, False
    scripts: set[str] = set()
    for char in value:
        if not (char.isalnum() or unicodedata.category(char)[0] == "M"):
            inside = False
            continue
        if not inside:
            word, inside, scripts = word + 1, True, set()
        if (script := _script(char)) is not None:
            scripts.add(script)
            if len(scripts) > 1 and not scripts.isdisjoint(_ALONE):
                alone = [s for s in _ALONE if s in scripts]
                others = sorted(scripts.difference(alone))
                return f"word {word} mixes " + " and ".join(_said(s) for s in [*alone, *others]) + (
                    " letters, which look alike")
    return None


def _refuse_hidden(clean: str, field: str) -> None:
    """Refuse control characters, Unicode format (Cf) characters and lone surrogates; say which, never the value.

    A control character is binary junk or a wrong encoding, never something staff typed. A format
    character is invisible: a right-to-left override shows 'Pérez' to one reader and another
    name to the next, a zero-width space makes two equal names compare unequal, so a watchlist
    match or a partner's filter silently misses. A UTF-8 byte-order mark at the start of a file
    is not part of any value (the readers drop it); anywhere else it is one of these. Unassigned and
    private-use characters (not printable either) pass here to ``unseen_mark``, which names them.
    """
    for char in clean:
        if char.isprintable() or char == "\n":
            continue
        kind = unicodedata.category(char)
        if kind == "Cc":
            raise fail(INVALID, f"{field} contains control characters (binary data or a wrong encoding?)")
        if kind == "Cf":
            name = unicodedata.name(char, "")
            raise fail(INVISIBLE, f"{field} contains the invisible character U+{ord(char):04X}"
                                  f"{' ' + name if name else ''}, which can hide or reorder text")
        if kind == "Cs":
            raise fail(INVALID, f"{field} contains half of a UTF-16 surrogate pair (a broken \\u escape?)")


def given(value: Any, field: str) -> bool:
    """Whether an optional value is given: only None (JSON null, or the key left out) and "" are absent.

    Anything else (``false``, ``0``, ``{}``, ``[]``) is given, and goes to the field's parser, which refuses a
    wrong type by name: a truthiness test would drop it as absent, and a date, a country or an owner stated
    in the wrong type would be lost without a word. A text of whitespace alone is refused here, for every
    optional field alike, as ``text`` and every parser built on it refuse it: it is neither absent nor a value (a
    cell whose content was lost looks the same), and a field taken as absent falls back to its default. A
    fixed-width field of spaces is empty: its layout pads every field so (``adapters.pn`` strips them first).
    """
    if isinstance(value, str) and value and not value.strip():
        raise _blank(field)
    return value is not None and value != ""


def _missing(field: str) -> AdapterError:
    return fail(MISSING_FIELD, f"{field} is required and is empty")


def _blank(field: str) -> AdapterError:
    return fail(MISSING_FIELD, f"{field} is blank; leave it empty, out or null")


def _foreign_word(plain: str) -> bool:
    """Whether ``plain`` (accents dropped) holds, beyond ASCII, anything but punctuation and spaces: a letter or a
    digit of another script, or a sign that spells one (squared or circled letters, a flag's regional letters),
    which the lookup form (``norm_key``) would fold into a separator, as it does punctuation, so that it passed with
    its label ('cocaína — «Операция Буря» ٨١٢٣' is COCAINA), and a format that shows the agency's words (a summary)
    carried it past every rule that drops a field. Punctuation carries no name or number, and staff type it
    ('Aeropuerto Marcos A. Gelabert (Albrook)', 'Ngäbe–Buglé', 'USA,')."""
    return any(not c.isascii() and unicodedata.category(c)[0] not in "PZ" for c in plain)


def code(value: Any, field: str, table: Mapping[str, str] | Iterable[str], *, required: bool = True) -> str | None:
    """The canonical code for a label or code, looked up by its normalised form (see norm_key); a value holding a
    letter, a digit or a sign no label has (``_foreign_word``) is refused as an unknown code, not folded away."""
    raw = text(value, field, 80, required=required)
    if raw is None:
        return None
    if _foreign_word(unaccented(raw)):  # not quoted: what else it holds may be anything
        raise fail(UNKNOWN_CODE, f"{field} holds letters, digits or signs no code or label has: write the code or "
                                 "its label alone")
    key = norm_key(raw)
    found = table.get(key) if isinstance(table, Mapping) else (key if key in table else None)
    if found is None:
        known = sorted(table)  # what may be written (labels, in their normalised form), not what they map to
        listing = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        raise fail(UNKNOWN_CODE, f"{field} is not a known code{did_you_mean(raw, known)} (expected one of {listing})")
    return found


def countries(values: Any, field: str) -> list[str]:
    """Alpha-3 country codes from codes or Spanish names, as a list or a ',', ';' or '/'-separated text."""
    if values is None or values == "":
        return []
    items = re.split(r"[,;/]| y ", values) if isinstance(values, str) else values
    if not isinstance(items, list):
        raise fail(INVALID, f"{field} must be a list of countries")
    out: list[str] = []
    for number, item in enumerate(items, 1):
        name = text(item, field, 60)
        if name is None:
            continue
        which = f"{field} (entry {number} of {len(items)})" if len(items) > 1 else field
        if _foreign_word(unaccented(name)):  # the lookup form would fold it away: 'Colombia Иван' read as COL
            raise fail(UNKNOWN_CODE, f"{which} holds letters, digits or signs no country code or name has: write "
                                     "the code or the name alone")
        found = country(name)
        if found is None:  # which entry, and the nearest known country: never the text (a surname, often)
            raise fail(UNKNOWN_CODE, f"{which} is not an ISO 3166 alpha-3 code or a known country"
                                     f"{did_you_mean(name, _COUNTRY_FORMS)}")
        if found not in out:
            out.append(found)
    return out


def integer(value: Any, field: str, *, maximum: int = 1_000_000, required: bool = False) -> int | None:
    """A whole number from 0 to ``maximum``; a negative one is refused with its own reason."""
    if not given(value, field):
        if required:
            raise fail(MISSING_FIELD, f"{field} is required and is empty")
        return None
    if isinstance(value, bool):
        raise fail(INVALID, f"{field} must be a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        # at most 18 digits: a longer run is no count, and int() of thousands of digits is slow or refused; only
        # the blanks a cell carries around it (``_BLANKS``: \s and int() take others too, '\x1f', '\u2003')
        value = value.strip(_BLANKS)
        if not re.fullmatch(r"[-+]?[0-9]{1,18}", value):
            raise fail(INVALID, f"{field} must be a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise fail(INVALID, f"{field} must be a whole number")
    # the value itself is not shown: a document or phone number in a shifted column reads as a number
    if value < 0:
        raise fail(NEGATIVE, f"{field} is negative; counts cannot be")
    if value > maximum:
        raise fail(INVALID, f"{field} is more than the plausible {maximum:,}")
    return value


def quantity_text(amount: float) -> str:
    """A seized quantity written out exactly for a summary: whole digits for a whole amount, else the shortest digits
    that give back the same number. Never rounded (``:g`` kept six digits: 1,234,567 packages read 1.23457e+06), since
    a summary is kept under more agreements than the payload's figure, and may be all a partner sees of it."""
    return str(int(amount)) if amount.is_integer() else repr(amount)


def quantity(value: Any, field: str, *, maximum: float = 1e10, whole: bool = False) -> float:
    """A positive amount; '1250.5' or '1250,5' (a decimal comma when there is no point); with ``whole``, a count.

    One separator before exactly three digits ('1.250', '1,250') is refused: a thousands separator
    (1250) and a decimal one (1.25) write it alike, and the agencies use both; which was meant cannot
    be known, and guessing makes a seizure a thousand times smaller or larger. A 0 alone before it
    ('0.250') or four digits ('1250.500') cannot be thousands, and are read; a sign or zeros in front
    ('+1.250', '01,250') do not make it less ambiguous. Only digits 0-9 with at most one separator and
    a sign are read (``_AMOUNT``), before float(): float() reads much else ('１.２５０', '1_250',
    '1,250e0', 'nan'), and the thousands check, made on that pattern, would not see it.
    """
    if isinstance(value, str):
        raw = value.strip(_BLANKS)
        if not raw.isascii():
            raise fail(INVALID, f"{field} must be a number written with the digits 0-9")
        if raw and not _AMOUNT.fullmatch(raw):
            raise fail(INVALID, f"{field} must be a number written with the digits 0-9 and at most one decimal "
                                "separator (no exponent, no '_')")
        if _GROUPED.fullmatch(raw):
            raise fail(INVALID, f"{field} has one separator before three digits, which may be a thousands or a "
                                "decimal separator: write it without a thousands separator, and with a decimal "
                                "one only for a fraction")
        if "," in raw and "." not in raw and raw.count(",") == 1:
            raw = raw.replace(",", ".")
        try:
            value = float(raw)
        except ValueError:
            raise fail(INVALID if raw else MISSING_FIELD, f"{field} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(MISSING_FIELD if value is None else INVALID, f"{field} must be a number")
    try:
        amount = float(value)
    except OverflowError:  # an integer beyond any float
        raise fail(INVALID, f"{field} must be a finite number") from None
    if not math.isfinite(amount):
        raise fail(INVALID, f"{field} must be a finite number")
    if amount < 0:  # as in integer(): the amount is not shown
        raise fail(NEGATIVE, f"{field} is negative; a seized quantity cannot be")
    if amount == 0 or amount > maximum:
        raise fail(INVALID, f"{field} must be more than 0 and at most {maximum:g}")
    if whole and not amount.is_integer():
        raise fail(INVALID, f"{field} counts whole things (its unit is counted), and is not a whole number")
    return amount


_GROUPED = re.compile(r"\+?0*[1-9][0-9]{0,2}[.,][0-9]{3}")  # '1.250', '+12,500': thousands, or a decimal?
# What float() is given, nothing else it reads: '5', '5.5', '.5' (as number-to-text writes it), '5.'.
_AMOUNT = re.compile(r"[-+]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
# The blanks a cell may carry around a number: spaces, tabs, a spreadsheet's no-break space, a stray line end.
_BLANKS = " \t\u00a0\r\n"


# ---- dates and times ---------------------------------------------------------------------
# Dates and times are never quoted: a date of birth in a shifted column is personal data.
def _date(y: int, m: int, d: int, field: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise fail(INVALID_DATE, f"{field} is not a date that exists (day, month or year out of range)") from None


def dmy(value: Any, field: str) -> date:
    """dd/mm/yyyy (also d/m/yyyy and dd-mm-yyyy), as a Panamanian spreadsheet writes a date."""
    raw = text(value, field, 20, required=True) or ""
    m = re.fullmatch(r"([0-9]{1,2})[/-]([0-9]{1,2})[/-]([0-9]{4})", raw)
    if not m:
        raise fail(INVALID_DATE, f"{field} is not a date as dd/mm/yyyy")
    return _date(int(m[3]), int(m[2]), int(m[1]), field)


def ymd(value: Any, field: str, *, compact: bool = False) -> date:
    """yyyy-mm-dd, or yyyymmdd when ``compact`` (fixed-width exports)."""
    raw = text(value, field, 20, required=True) or ""
    m = re.fullmatch(r"([0-9]{4})([0-9]{2})([0-9]{2})" if compact else r"([0-9]{4})-([0-9]{2})-([0-9]{2})", raw)
    if not m:
        raise fail(INVALID_DATE, f"{field} is not a date as {'yyyymmdd' if compact else 'yyyy-mm-dd'}")
    return _date(int(m[1]), int(m[2]), int(m[3]), field)


def clock(value: Any, field: str) -> time:
    """HH:MM, H:MM, HH:MM:SS or HHMM, 24-hour."""
    raw = text(value, field, 12, required=True) or ""
    m = re.fullmatch(r"([0-9]{1,2}):?([0-9]{2})(?::([0-9]{2}))?", raw)
    if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3] or 0) > 59:
        raise fail(INVALID_DATE, f"{field} is not a time of day as HH:MM (24-hour)")
    return time(int(m[1]), int(m[2]), int(m[3] or 0))


def local(day: date, at: time, zone: tzinfo, field: str = "the date and time") -> datetime:
    """A local date and time in the agency's zone, as UTC."""
    try:
        return datetime.combine(day, at, zone).astimezone(UTC)
    except OverflowError:  # 31/12/9999 23:00 in Panama is in year 10000 in UTC
        raise fail(INVALID_DATE, f"{field} is beyond the calendar's range") from None


def iso_datetime(value: Any, field: str, zone: tzinfo) -> datetime:
    """An ISO 8601 date-time; one without an offset is taken in the agency's zone."""
    raw = text(value, field, 40, required=True) or ""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                        r"(Z|[+-][0-9]{2}:?[0-9]{2})?", raw):
        raise fail(INVALID_DATE, f"{field} is not an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise fail(INVALID_DATE, f"{field} is not a date and time that exists") from None
    try:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise fail(INVALID_DATE, f"{field} is beyond the calendar's range") from None


def birth_date(value: Any, field: str, today: date, *, compact: bool = False) -> date | None:
    """A date of birth: not in the future, not before 1900."""
    if not given(value, field):
        return None
    born = ymd(value, field, compact=compact)
    if not date(1900, 1, 1) <= born <= today:
        raise fail(INVALID_DATE, f"{field} is not a plausible date of birth (before 1900 or in the future)")
    return born


# ---- coordinates ---------------------------------------------------------------------------
_DMS = re.compile(
    r"""(?P<h1>[NSEWO])?\s*(?P<deg>[0-9]{1,3}(?:\.[0-9]+)?)\s*[°º:\s]?\s*(?:(?P<min>[0-9]{1,2}(?:\.[0-9]+)?)\s*['′:\s]?\s*
        (?:(?P<sec>[0-9]{1,2}(?:\.[0-9]+)?)\s*(?:"|″|''|)?)?)?\s*(?P<h2>[NSEWO])?""", re.VERBOSE)


def coordinate(value: Any, field: str, axis: str) -> float | None:
    """Decimal degrees from '-77.4267', '-77,4267', '8°40'12.5"N' or '77 25 36 O' (O: oeste, west).

    Without a hemisphere letter the sign decides; with one, a sign is refused as ambiguous.
    """
    if not given(value, field):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if abs(value) <= 1e300 else math.inf  # float() of a huge integer overflows
    else:
        raw = (text(value, field, 40) or "").upper().replace("\u2019", "'").replace("\u201d", '"')
        if re.fullmatch(r"[-+]?[0-9]{1,3}([.,][0-9]+)?", raw):
            number = float(raw.replace(",", "."))
        else:
            number = _dms(raw, field, axis)
    limit = 90.0 if axis == "lat" else 180.0
    if not math.isfinite(number) or abs(number) > limit:  # not quoted: a position is the record's data
        raise fail(OUT_OF_REGION, f"{field} is outside [-{limit:g}, {limit:g}] degrees")
    return round(number, 6)  # about 0.1 m: what a GPS reading supports, without float noise


def _dms(raw: str, field: str, axis: str) -> float:
    # neither the text (a shifted column puts a name here) nor the parsed number (a position) is quoted
    m = _DMS.fullmatch(raw.strip())
    if not m or (m["h1"] and m["h2"]) or not (m["h1"] or m["h2"]):
        raise fail(INVALID, f"{field} is neither decimal degrees nor degrees-minutes-seconds "
                            "with a hemisphere (N/S, E/W/O)")
    hemi = m["h1"] or m["h2"]
    if (axis == "lat") != (hemi in "NS"):
        raise fail(INVALID, f"{field} has hemisphere {hemi}, which belongs to the other axis")
    if "." in m["deg"] and m["min"]:
        raise fail(INVALID, f"{field} has decimal degrees and minutes; write one or the other")
    minutes, seconds = float(m["min"] or 0), float(m["sec"] or 0)
    if minutes >= 60 or seconds >= 60:
        raise fail(INVALID, f"{field} has minutes or seconds of 60 or more")
    number = float(m["deg"]) + minutes / 60 + seconds / 3600
    return -number if hemi in "SWO" else number
