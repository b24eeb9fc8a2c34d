"""Reading input without letting it say two things at once: bounded files, JSON without duplicate keys.

``json.loads`` keeps the last of two equal keys and reads ``NaN`` and ``Infinity``; on a marking
or in a key file that silently changes what a document means. Every reader of JSON that comes
from outside Puente (agency exports, alert files, key files) uses ``unique_keys``,
``no_constants`` and ``finite_float`` here, and every file a person names is opened by ``open_regular``
(``read_bounded``). Text that hides what it says is found by ``unseen_mark``, less the glue of real emoji
(``emoji_unglued``), and a time zone that is no place's refused by ``known_zone``. Bottom layer: no Puente
imports.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import re
import stat
import unicodedata
import zoneinfo
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import emoji

# Unicode's Default_Ignorable_Code_Point property: the code points a renderer that does not support them must draw
# as nothing. Python's unicodedata has no such property, so its ranges are written out here, from
# DerivedCoreProperties.txt of Unicode 14.0.0, the version this Python's unicodedata ships (unidata_version; a
# unit test checks the two agree, and the table against the categories unicodedata gives). The property is derived
# (Other_Default_Ignorable_Code_Point, Cf and the variation selectors, less white space and the few format
# characters that are drawn: the prepended concatenation marks, interlinear annotation, Egyptian format controls)
# and its reserved code points are in it already, so a character assigned there later is still covered.
DEFAULT_IGNORABLE_VERSION = "14.0.0"
DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # Cf SOFT HYPHEN
    (0x034F, 0x034F),  # Mn COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),  # Cf ARABIC LETTER MARK
    (0x115F, 0x1160),  # Lo HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # Mn KHMER VOWEL INHERENT AQ, AA
    (0x180B, 0x180D),  # Mn MONGOLIAN FREE VARIATION SELECTOR ONE to THREE
    (0x180E, 0x180E),  # Cf MONGOLIAN VOWEL SEPARATOR
    (0x180F, 0x180F),  # Mn MONGOLIAN FREE VARIATION SELECTOR FOUR
    (0x200B, 0x200F),  # Cf ZERO WIDTH SPACE to RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),  # Cf LEFT-TO-RIGHT EMBEDDING to RIGHT-TO-LEFT OVERRIDE
    (0x2060, 0x2064),  # Cf WORD JOINER to INVISIBLE PLUS
    (0x2065, 0x2065),  # Cn reserved
    (0x2066, 0x206F),  # Cf LEFT-TO-RIGHT ISOLATE to NOMINAL DIGIT SHAPES
    (0x3164, 0x3164),  # Lo HANGUL FILLER
    (0xFE00, 0xFE0F),  # Mn VARIATION SELECTOR-1 to -16
    (0xFEFF, 0xFEFF),  # Cf ZERO WIDTH NO-BREAK SPACE
    (0xFFA0, 0xFFA0),  # Lo HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # Cn reserved
    (0x1BCA0, 0x1BCA3),  # Cf SHORTHAND FORMAT LETTER OVERLAP to UP STEP
    (0x1D173, 0x1D17A),  # Cf MUSICAL SYMBOL BEGIN BEAM to END PHRASE
    (0xE0000, 0xE0000),  # Cn reserved
    (0xE0001, 0xE0001),  # Cf LANGUAGE TAG
    (0xE0002, 0xE001F),  # Cn reserved
    (0xE0020, 0xE007F),  # Cf TAG SPACE to CANCEL TAG
    (0xE0080, 0xE00FF),  # Cn reserved
    (0xE0100, 0xE01EF),  # Mn VARIATION SELECTOR-17 to -256
    (0xE01F0, 0xE0FFF),  # Cn reserved
)
# Characters fonts draw as a blank that is no space, though Unicode does not make them default-ignorable: a name
# holding one looks like the name without it and compares unequal to it (a watchlist match misses it). Found by
# name and glyph (FILLER, BLANK, NULL in the names of this Unicode), as no property of Unicode marks them:
# U+2800 BRAILLE PATTERN BLANK ("Pérez\u2800Gómez" looks like "Pérez Gómez"), U+16FE4 KHITAN SMALL SCRIPT FILLER
# (a mark with no glyph) and U+1D159 MUSICAL SYMBOL NULL NOTEHEAD (a symbol with none). The Hangul fillers are
# default-ignorable, above. Unit-tested one by one with the table; a new one found goes here.
BLANK_LOOKING: tuple[int, ...] = (0x2800, 0x16FE4, 0x1D159)


def _drawn_as_nothing() -> str:
    """A regular-expression class body, as ranges, of ``DEFAULT_IGNORABLE`` and ``BLANK_LOOKING`` less the format
    (Cf) characters, which each reader refuses as such, and the unassigned (Cn) ones, which ``_unusable`` names as
    such: what ``unseen_mark`` names as drawn as nothing. Read once, at import (some 4,200 code points, 1 ms)."""
    points = [code for first, last in DEFAULT_IGNORABLE for code in range(first, last + 1)] + list(BLANK_LOOKING)
    kept = sorted(code for code in set(points) if unicodedata.category(chr(code)) not in ("Cf", "Cn"))
    runs: list[list[int]] = []
    for code in kept:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in runs)


# Every character drawn as nothing that is neither a format character nor unassigned: the combining grapheme
# joiner, the Hangul fillers, the Khmer inherent vowels, the variation selectors (Mongolian and Unicode's) and
# BLANK_LOOKING. They print as nothing, yet make two equal names compare unequal ("Pére\u034fz" is not "Pérez"
# to a watchlist match).
_IGNORABLE = _drawn_as_nothing()
_IGNORABLE_CHAR = re.compile(f"[{_IGNORABLE}]")
# The most combining marks (categories Mn and Me) one character may carry in a row. Names in the scripts
# people write stack at most four: a Vietnamese letter two even decomposed (none after NFC), a Hebrew
# letter with shin dot, dagesh, vowel and a cantillation mark four, Devanagari and Arabic three. "Zalgo"
# text stacks dozens, drawn over the lines above and below to hide or overlay the text there. Unicode's
# Stream-Safe Text Format (UAX #15) bounds a run at 30, a bound made for buffers and far too many to keep
# one name from covering another. Only rare Sanskrit stacks written in Tibetan reach five. A run is counted in
# its canonical decomposition (NFD): a few marks stand for two (U+0344 COMBINING GREEK DIALYTIKA TONOS is U+0308
# U+0301; Tibetan vowel signs such as U+0F73 and subjoined letters such as U+0F93; U+0C48 TELUGU VOWEL SIGN AI;
# two Chakma vowel signs), are drawn as both, and most are undone by NFC, so four of them are eight marks to a
# reader and to the adapters, which normalise text to NFC before they look. Counted as written they would stack
# eight marks past a broker that counts one each. For the same reason the marks of the letter a run follows count
# too: ``ệ`` is ``e`` with two marks, and four more on it draw six, as the same text decomposed does.
MAX_MARKS = 4
_MARKS = ("Mn", "Me")


def _plain_bmp(every: str, marks: list[str]) -> str:
    """A regular-expression class body, as ranges, of the characters of the Basic Multilingual Plane (``every``, its
    65,536 code points in order) that are neither combining marks (``marks``, the BMP's) nor drawn as nothing."""
    suspect = sorted(set(map(ord, marks)) | {ord(char) for char in _IGNORABLE_CHAR.findall(every)})
    gaps = ((after + 1, before - 1) for after, before in zip([-1, *suspect], [*suspect, 0x10000], strict=True)
            if before > after + 1)
    return "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in gaps)


# A character that is not in _plain_bmp() is suspect: a combining mark, one drawn as nothing, or any character
# beyond the BMP (marks there lie in planes 1 and 14; the text of names hardly goes there). Written so, the class
# is a single table lookup a character, faster than the old list of the ignorables; exact ranges of plane 1
# would be a comparison each, a character, and made plain Spanish twice as slow to search. ``_suspect`` finds
# where what ``unseen_mark`` refuses may start: a character drawn as nothing, a mark that decomposes into several
# (``_decomposing``: a run of two of them may already be too long), a mark right after a letter that holds marks
# (``ệ``: a run of three after it may be too long; NFC text hardly has one), or a suspect followed by at least
# MAX_MARKS more (a hit is confirmed by ``_confirmed``, on the whole run of marks around it). The lookbehinds are
# tried only on a suspect, so ordinary text pays nothing for them. Built on the first text that is not ASCII (or
# by ``prepare_unseen_mark``), not at import: the scans and compiling take some 60 ms, which every command would pay.
_suspect: re.Pattern[str] | None = None


def _decomposing(bmp_marks: list[str]) -> tuple[list[str], list[str]]:
    """The combining marks (Mn, Me) whose canonical decomposition is several characters, and the other characters
    whose decomposition holds a mark (``ệ`` is ``e`` and two marks, drawn as such under any marks that follow it).
    Read from ``bmp_marks`` (the BMP's marks) and the BMP and plane 1, the only planes with such characters (planes
    2 and 3 hold ideographs, whose decompositions hold none, 14 tags and variation selectors, 15 and 16 private use;
    unit tests check every code point). A block of 256 code points is read one character at a time only when NFD
    lengthens it: some 10 ms in all, where the BMP's scan of marks costs twice that."""
    several = [char for char in bmp_marks if len(unicodedata.normalize("NFD", char)) > 1]
    marked = []
    for at in range(0, 0x20000, 256):
        block = "".join(map(chr, range(at, at + 256)))
        if len(unicodedata.normalize("NFD", block)) == len(block):
            continue
        for char in block:
            parts = unicodedata.normalize("NFD", char)
            if len(parts) == 1:
                continue
            if unicodedata.category(char) in _MARKS:
                several += [char] if at >= 0x10000 else []
            elif any(unicodedata.category(part) in _MARKS for part in parts):
                marked.append(char)
    return several, marked


def _build_suspect() -> re.Pattern[str]:
    global _suspect
    every = "".join(map(chr, range(0x10000)))  # the BMP's marks, read from this Python's Unicode
    marks = [char for char, kind in zip(every, map(unicodedata.category, every), strict=True) if kind in _MARKS]
    several, marked = _decomposing(marks)
    char = f"[^{_plain_bmp(every, marks)}]"
    several_class, marked_class = "".join(map(re.escape, several)), "".join(map(re.escape, marked))
    _suspect = re.compile(f"{char}(?:(?<=[{_IGNORABLE}{several_class}])|(?<=[{marked_class}]{char})"
                          f"|{char}{{{MAX_MARKS},}})")
    return _suspect


def prepare_unseen_mark() -> None:
    """Build ``unseen_mark``'s scan now rather than on the first text that is not ASCII: a service that checks every
    record calls this as it starts, so the 60 ms fall on its start-up, not on the batch its first such record is in."""
    if _suspect is None:
        _build_suspect()


def unseen_mark(text: str) -> str | None:
    """The first thing in ``text`` that no one typed and that disguises what a reader sees, described without the
    text; None when there is none:

    - a character drawn as nothing though not a format or control character (``_IGNORABLE``: Unicode's
      ``DEFAULT_IGNORABLE`` and ``BLANK_LOOKING``): ``the invisible character U+XXXX NAME``;
    - one no version of Unicode this Python knows assigns (Cn): ``the unassigned character U+XXXX``;
    - a private-use character (Co: U+E000 to U+F8FF, planes 15 and 16): ``the private-use character U+XXXX``.
      Each vendor draws it as a glyph of its own or a box, no agency's staff typed it, and it makes two
      equal-looking names differ;
    - more than ``MAX_MARKS`` combining marks in a row, stacked to overlay the text around them:
      ``a run of N combining marks on one character``, N counted in the run's canonical decomposition (NFD) with
      the marks of the letter it follows, so that text in NFC or not, as the broker may receive it, counts the
      same.

    (Control, format and surrogate characters are each reader's own to name.) This runs on every adapter text
    field and on the non-ASCII part of every alert the broker admits: ASCII returns at once, other text costs one
    regular-expression scan, and only text that is not printable (Cn and Co are not) or in which the scan finds
    something is walked character by character. What it finds is mostly what is refused, but also runs of
    characters beyond the BMP, which it takes for possible marks: five emoji in a row are walked in Python
    (several microseconds) and cleared, as are a mark that decomposes into two and the short run around it."""
    if text.isascii():
        return None
    hit = (_suspect or _build_suspect()).search(text)
    if hit is None and text.isprintable():  # the common case: two scans in C
        return None
    return _first_unseen(text, hit)


def _first_unseen(text: str, hit: re.Match[str] | None) -> str | None:
    """``unseen_mark`` once the quick scans found something: each hit of ``_suspect`` confirmed in turn, then any
    unassigned or private-use character before the first confirmed one."""
    first, found = len(text), None
    while hit is not None:
        first, found = _confirmed(text, hit.start(), hit.end())
        if found is not None:
            break
        # a run of other characters beyond the BMP (emoji, say), or a short run of marks: look on after it
        first, hit = len(text), (_suspect or _build_suspect()).search(text, first)
    if not text.isprintable():
        for char in text[:first]:
            if not char.isprintable() and (what := _unusable(char)) is not None:
                return what
    return found


def _confirmed(text: str, start: int, end: int) -> tuple[int, str | None]:
    """The first thing from ``text[start:end]`` (a hit of ``_suspect``, which takes every character beyond the BMP
    for a possible mark) that ``unseen_mark`` refuses, with its index; (where to look on from, None) when there is
    none: the hit was no more than a run of such characters (emoji, say), or a run of marks short enough.

    A run of marks is taken whole, from its first mark before the hit (a hit on a mark that decomposes into several
    is that one character) to its last after it, and counted in its canonical decomposition (NFD) with the marks of
    the letter before it; a character drawn as nothing in it is named first, as the one a reader cannot see."""
    index = start
    while index and unicodedata.category(text[index - 1]) in _MARKS:
        index -= 1  # the hit began inside a run: from its first mark
    while index < end:
        char = text[index]
        if unicodedata.category(char) in _MARKS:
            after = index + 1
            while after < len(text) and unicodedata.category(text[after]) in _MARKS:
                after += 1
            run = text[index:after]
            if (unseen := _IGNORABLE_CHAR.search(run)) is not None:
                index, char = index + unseen.start(), unseen.group()
                return index, f"the invisible character U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()
            count = len(unicodedata.normalize("NFD", run)) + _marks_of(text[index - 1] if index else "")
            if count > MAX_MARKS:
                return index, f"a run of {count} combining marks on one character"
            index = after
            continue
        if _IGNORABLE_CHAR.match(char):
            return index, f"the invisible character U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()
        if (what := _unusable(char)) is not None:
            return index, what
        index += 1
    return index, None


def _marks_of(base: str) -> int:
    """How many combining marks ``base``, the character a run of marks follows, holds in its decomposition (two for
    ``ệ``): they are drawn in the same stack."""
    parts = unicodedata.normalize("NFD", base)
    return 0 if len(parts) < 2 else sum(unicodedata.category(part) in _MARKS for part in parts)


def _unusable(char: str) -> str | None:
    """``char`` described when it is unassigned (Cn) or for private use (Co), else None."""
    kind = unicodedata.category(char)
    if kind == "Cn":
        return f"the unassigned character U+{ord(char):04X}"
    if kind == "Co":
        return f"the private-use character U+{ord(char):04X}"
    return None


# What holds an emoji sequence together and is drawn as nothing on its own: the zero-width joiner (a format
# character), the text and emoji presentation selectors (VS15, VS16) and the tag characters of the subdivision
# flags (format characters too, and the "ASCII smuggling" of text no one sees when they stand elsewhere).
_GLUE = re.compile("[\u200d\ufe0e\ufe0f\U000e0020-\U000e007f]")
_emoji: tuple[re.Pattern[str], re.Pattern[str], dict[str, str]] | None = None


def _emoji_data() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    """The recommended emoji sequences that hold glue (about 2,900), as one regular expression written as a trie
    (each alternative a shared prefix, so a match costs its own length, however many sequences start alike, and
    the longest sequence wins), with each one's unglued form; and VS15 after a character Unicode gives an emoji
    variation sequence (U+2764 HEAVY BLACK HEART...), drawn as that character's text form, as visible as its emoji
    form with VS16. Built on first need (some 50 ms), from the ``emoji`` package's data."""
    global _emoji
    glued = [key for key in emoji.EMOJI_DATA if _GLUE.search(key)]
    trie: dict[str, Any] = {}
    for sequence in glued:
        node = trie
        for char in sequence:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        alternatives = [re.escape(char) + pattern(node[char]) for char in sorted(node) if char]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
        return f"(?:{body})?" if "" in node else body

    bases = sorted({key[0] for key in emoji.EMOJI_DATA if len(key) == 2 and key[1] == "\ufe0f"})
    _emoji = (re.compile(pattern(trie)), re.compile(f"(?<=[{''.join(map(re.escape, bases))}])\ufe0e"),
              {sequence: _GLUE.sub("", sequence) for sequence in glued})
    return _emoji


def emoji_unglued(text: str) -> str:
    """``text`` less the joiners, presentation selectors and tags (``_GLUE``) inside the emoji sequences Unicode
    recommends (RGI: ❤️, 1️⃣, 👨‍👩‍👧, the flag of Scotland) or a text presentation sequence (❤︎): what a reader
    of such text must check for hidden characters, so that ordinary emoji are not refused as disguises.

    An allow-list, by the data of the ``emoji`` package (Unicode's emoji-test.txt): the same characters anywhere
    else, between two letters of a name, after a character no sequence starts with, between emoji that form
    no recommended sequence, or tags that spell anything but a listed flag, stay in the result, for the reader
    to refuse. The emoji themselves are kept (they are visible); only the result is checked, never stored.
    ASCII text, and text holding none of these characters, is returned as it is after one scan; other text
    costs one linear pass of a regular expression (about 0.25 s for a megabyte of nothing but keycaps)."""
    if text.isascii() or _GLUE.search(text) is None:
        return text
    sequences, text_form, unglued = _emoji or _emoji_data()
    text = text_form.sub("", text)  # ("❤️︎" keeps its VS15: it follows VS16)
    return sequences.sub(lambda found: unglued[found.group()], text)


_NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA zone names of places on this machine: the tz database's list (a scan of its files, so read once),
    less ``Factory`` (no place: its abbreviation is "-00"), ``localtime`` (whatever this host's zone is, which
    differs from machine to machine), ``posixrules`` and the ``posix/`` and ``right/`` copies (the same zones
    again, the latter counting leap seconds, which no clock an agency reads does)."""
    return frozenset(name for name in zoneinfo.available_timezones()
                     if name not in _NOT_PLACES and not name.startswith(("posix/", "right/")))


def known_zone(name: str) -> bool:
    """Whether ``name`` is the IANA time zone of a place (``America/Panama``), or ``UTC`` or an ``Etc/`` zone,
    which are real offsets. Also accepted: the tz database's legacy names of rules rather than places (``EST``,
    ``MST``, ``HST``, ``EST5EDT``, ``CST6CDT``, ``MST7MDT``, ``PST8PDT``, ``CET``, ``MET``, ``EET``, ``WET``) and
    the other names of UTC (``GMT0``, ``GMT+0``, ``Greenwich``, ``UCT``, ``Universal``, ``Zulu``). Each names an
    offset, or an offset and its daylight-saving rule, that a clock follows and that is the same on every host, so
    a local time read in it is one instant, as in the zone of a place; ``Factory`` (no offset at all, "-00") and
    ``localtime`` (whatever zone this host has) name none, and are refused. An allow-list, not "does
    ``zoneinfo.ZoneInfo`` load it": that loads ``Factory``, ``localtime`` and any file under the zone folders. An
    alert's ``source_timezone`` and an agency's configured ``timezone`` are both checked here."""
    return name in _zones()


class DuplicateKey(ValueError):
    """A JSON object gave the same key twice; ``key`` is that key (a name, never a value)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key[:40]!r} appears twice in one object")
        self.key = key


def unaccented(text: str) -> str:
    """``text`` decomposed (NFKD: compatibility forms to their plain letters too) with its combining marks dropped:
    'Ngäbe-Buglé' is 'Ngabe-Bugle'. What compares labels and values typed with or without accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def printable(text: str) -> str:
    """``text`` for a terminal: each character that is not printable escaped as Python writes it (``\x1b``,
    ``\u202e``), but for the line breaks between its lines. An escape sequence, a C1 control or a bidi override
    in a name a person or a file gave must not reach the terminal as one (it could clear the screen, retitle
    it, or reorder what a line appears to say)."""
    if text.isprintable():
        return text
    return "\n".join("".join(c if c.isprintable() else repr(c)[1:-1] for c in line) for line in text.split("\n"))


def as_written(text: str, stream: Any) -> str:
    """``text`` as ``stream`` (a text stream: standard output) will write it: each character its encoding cannot hold
    put as its error handler puts it (``puente.cli``'s ``\\u00b0``, ``replace``'s ``?``). What a table measures and
    pads its cells by: measured before, a cell the stream then escapes is wider than its column, and every column
    after it moves. Text the stream holds whole (UTF-8) comes back as it is."""
    encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None) or "strict"
    if not encoding or text.isascii():
        return text
    try:
        return text.encode(encoding, errors).decode(encoding, "replace")
    except (UnicodeError, LookupError):  # a strict stream fails on it anyway; an unknown handler says nothing
        return text


def one_line(text: str) -> str:
    """``text`` as :func:`printable` gives it, on one line: its line breaks escaped too (``\\n``), for what is
    never several lines (a file name, an id, a value read from a record, a file or Kafka), so that it can neither
    move the cursor nor start a line that seems Puente's own."""
    return printable(text.replace("\n", "\\n"))


def json_text(value: Any, **dumps: Any) -> str:
    """``value`` as JSON (``json.dumps``'s keyword arguments), letters of every script kept as they are, but each
    character that is not printable (a C1 control, a line or paragraph separator, a bidi override, DEL) escaped
    as ``\\uXXXX``, as JSON allows inside any string; line breaks only where ``indent`` puts them. Text a record,
    a partner or an agency wrote must not split a JSON line for a reader that also breaks lines at U+2028 or
    U+0085 (Python's ``splitlines``), nor reach a terminal as a control sequence."""
    text = json.dumps(value, ensure_ascii=False, **dumps)
    if text.isprintable():
        return text
    # A line break or tab outside a string is ``indent``'s layout: json.dumps escapes both inside strings.
    return "".join(c if c.isprintable() or c in "\n\t" else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: an object's members as a dict, refusing a key given twice (the hook
    sees every object, so at any depth). The common case costs one dict and one length check."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return doc


def no_constants(name: str) -> Any:
    """``parse_constant``: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON numbers."""
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """``parse_float``: a number too large for a float (``1e999``) is refused, not read as infinity (which
    would then pass for a value: the text "inf", a quantity no bound compares). The message has no digits."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large to be read")
    return value


class TooLarge(ValueError):
    """A file over the size a reader accepts."""


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading: a regular file, or a pipe (``<(pass show x)``, ``/dev/stdin`` fed by
    one); OSError as open gives it, and OSError (strerror "not a regular file or a pipe") for anything
    else, a folder or a device such as /dev/zero, which never ends. Opened without blocking, so a FIFO no
    one writes to reads as empty instead of hanging the command. Every file a person names is read
    through this (``read_bounded``, or a reader that streams it with a bound of its own)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    fh = os.fdopen(fd, "rb")
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode):
        os.set_blocking(fd, True)  # a writer that is there may take its time; one that is not gives EOF
    elif not stat.S_ISREG(mode):
        fh.close()
        raise OSError(errno.EINVAL, "not a regular file or a pipe", str(path))
    return fh


def read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` (``open_regular``); TooLarge when there are more."""
    with open_regular(path) as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge(f"{path} is larger than {limit:,} bytes")
    return raw


def case_slip(name: str, names: Iterable[str]) -> str | None:
    """The one of ``names`` that ``name`` differs from in case alone (``usa`` for ``USA``), or None: ids are exact,
    and a command told of such a slip says which was meant rather than match nothing."""
    near = sorted(n for n in names if n != name and n.casefold() == name.casefold())
    return near[0] if near else None
