"""Splitting an export into records: each yields (record number, line, raw bytes, parsed or error).

Readers work on bytes and decode record by record, so one record in a wrong encoding is
refused alone and the rest of the file still flows. They stream: a file of any size is
read with memory for one record, and a record longer than the limit is skipped unread.

A UTF-8 byte-order mark at the very start of a file (Excel's "CSV UTF-8" writes one) is not
part of any record, and every reader drops it; anywhere else it is a character of a value,
which ``_fields.text`` refuses as invisible. A JSON object that names a key twice is refused
(``duplicate-key``): a parser would keep one of the two values, and on a marking such as
``clasificacion`` or ``difusion`` that choice decides who receives the alert.

Lines end at LF (CRLF too). A file whose line ends are CR alone (old Mac software) would read as one
line without its end, which looks like a file cut short: every reader refuses it once instead, as
``syntax``, saying to export it with LF or CRLF line ends (``cr_only``, on the file's first line).
A file in UTF-16 or UTF-32 (Excel's "Unicode text") is refused once as ``encoding`` before either,
saying so (``wide``): split at its LF bytes, its lines were bad bytes each, its CRLF a CR alone, and
its last line a NUL without its end, which looked cut.

A file in another adapter's format (another agency's export dropped in this agency's folder) is refused once too,
whole, as ``wrong-format`` (``recognised``, ``wrong_format``): read on, each of its lines or records would be a dead
letter holding that agency's content, on a topic that agency's readers are not meant to see. A format is recognised
by what only it shows on a record (``FORMATS``), never by whether the record is valid.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from adapters._fields import DUPLICATE_KEY, ENCODING, INVALID, SYNTAX, TOO_LONG, TRUNCATED, WRONG_FORMAT, fail
from puente.errors import AdapterError
from puente.strict import DuplicateKey, finite_float, no_constants, unique_keys

BOM = codecs.BOM_UTF8


@dataclass(frozen=True, slots=True)
class Item:
    """One record as read. ``number`` counts records from 1 (0: the file as a whole, e.g. its header)."""

    number: int
    line: int
    raw: bytes
    parsed: Any = None
    error: AdapterError | None = None


def physical_lines(stream: BinaryIO, limit: int,
                   rest_of: Callable[[bytes], None] | None = None) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line with its end, too long) for every line; a long line is read to its end, not kept.

    Line ends are kept so that a record of several lines can be given back byte for byte, and so that the
    file's last line, when the file stops within it, can be told by its missing end: a long line is given as
    its first ``limit + 1`` bytes (``limit + 2`` when a CR there is not followed by its LF), followed by a line
    break if it had one. A CRLF line of exactly ``limit`` bytes is not long: CR LF is its end. ``rest_of`` is
    given, in order and as they are read, every part of a long line, its start included, before the line
    is yielded (a CSV reader follows the quotes through it without keeping it).
    """
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and line.endswith(b"\r"):  # a CRLF line of exactly the limit: '\r\n' is its end
            line += stream.readline(1)
        too_long = len(line) > limit and not line.endswith(b"\n")
        if too_long:
            if rest_of is not None:
                rest_of(line[len(BOM):] if number == 1 and line.startswith(BOM) else line)
            while rest := stream.readline(1 << 16):
                if rest_of is not None:
                    rest_of(rest)
                if rest.endswith(b"\n"):
                    line += b"\n"  # its start and its end: a line the file stops within has none
                    break
        if number == 1 and line.startswith(BOM):  # after the length check: the BOM was read as part of the line
            line = line[len(BOM):]
        yield number, line, too_long


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
              (codecs.BOM_UTF16_BE, "UTF-16"))  # UTF-32 first: its little-endian mark starts as UTF-16's does
_LABELS = {"utf8": "UTF-8", "utf8sig": "UTF-8", "cp1252": "Windows-1252", "windows1252": "Windows-1252"}


def wide(first: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when ``first``, the file's first bytes, start as those encodings write text; else None.

    Their byte-order mark says so, and without one the first character does: every export starts with an ASCII
    one ('{', a header's letter, an H or S line), which UTF-16 writes as that byte and a NUL (or a NUL and that
    byte), and UTF-32 with three NULs. No text in the encodings the agencies use has a NUL there; a file of NULs
    (space reserved, not yet written) has no byte that is not one, and is not taken for either.
    """
    for bom, name in _WIDE_BOMS:
        if first.startswith(bom):
            return name
    if len(first) >= 4 and ((first[0] and not any(first[1:4])) or (first[3] and not any(first[:3]))):
        return "UTF-32"
    if len(first) >= 2 and bool(first[0]) != bool(first[1]):
        return "UTF-16"
    return None


def whole_file(first: bytes, encoding: str) -> AdapterError | None:
    """The file's one refusal, from ``first``, its first line as ``physical_lines`` gives it (or its first bytes),
    when nothing in it can be read as records: a file in UTF-16 or UTF-32 (``wide``), whose NULs would split it
    into lines of bad bytes and its CRLF read as CR alone, and whose last line, a NUL, as cut; or a file whose line
    ends are CR alone (``cr_only``). Neither is ``cut``: the same bytes, read again, say the same."""
    name = wide(first)
    if name is not None:
        want = _LABELS.get(encoding.lower().replace("-", "").replace("_", ""), encoding)
        return fail(ENCODING, f"the file is {name}: export it as {want}; nothing was read")
    return cr_only(first)


def cr_only(first: bytes) -> AdapterError | None:
    """The file's refusal when ``first``, its first line as ``physical_lines`` gives it, holds a CR before its end.

    Old Mac software ends lines with CR alone. Lines are split at LF, so such a file reads as one line: without
    a line end it looked cut (and a watcher left it in place for ever, advising a final line break that only
    made it bad CSV or JSON). A CR at the end of what was read is left alone: it may be the first half of a CRLF
    whose LF is not written yet. A CR inside a later line (in a quoted CSV remark) is the reader's to judge.
    """
    if b"\r" not in first.rstrip(b"\r\n"):
        return None
    return fail(SYNTAX, "line ends are CR only (as old Mac software writes them): export the file with LF or CRLF "
                        "line ends; nothing was read")


def too_long(what: str, limit: int) -> AdapterError:
    return fail(TOO_LONG, f"{what} is longer than {limit:,} bytes and was not read")


def cut_line(line_no: int) -> AdapterError:
    """A last line without its line end: the file stops within it (cut short, or still being written). A complete
    export saved without a final line break (some editors save so) looks the same, and is refused too, since a
    cell lost at the cut reads as empty: the message says how to have it read."""
    return AdapterError(f"line {line_no} has no line end: the file stops within it (cut short, or still being "
                        "written); if the export is complete, end its last line with a line break and drop it again",
                        TRUNCATED, cut=True)


def no_record(line: int, after: str = "") -> Item:
    """The file as a whole when it holds no record (0 bytes, a byte-order mark, blank lines; ``after`` its header):
    an exporter that has opened its file and not yet written looks the same, so it is ``cut``, left in place and
    read again once it changes, never taken as a complete export. An export of nothing has nothing to send."""
    return Item(0, line, b"", error=AdapterError(
        f"the file holds no record{after} (empty, or still being written); nothing was read", TRUNCATED, cut=True))


def stops_within(exc: AdapterError) -> AdapterError:
    """``exc``, the error of a file's last record, flagged ``cut``: the file stops within that record (its last
    line has no line end, or its document does not close), so what reads as bad syntax or a bad byte may be
    where the file was cut, or where its writer has got to."""
    return AdapterError(f"{exc}; the file stops within this record (cut short, or still being written)", exc.reason,
                        cut=True)


@dataclass(frozen=True, slots=True)
class Format:
    """What an adapter's export shows on its file's first record, valid or not (``shows``), and says so (``what``)."""

    shows: re.Pattern[bytes]
    what: str


# Each adapter's export, by what only it shows on a record of it: an allow-list of what the format is, judged on the
# record's bytes, so a record of the right format that is itself bad (cut, a bad byte, a key twice, a field wrong)
# still shows it, and stays one dead letter. JSON: a key of its own, written as a key ('"key":'; a quote within a value
# is escaped, so no value can write one); PN: its first line's layout (``pn.LAYOUTS``), the H line's ('H', the system's
# 10 characters, the export time's 14 digits), or where the H line is missing an S line's (the case's 14 characters, its
# date and time's 12 digits) or the T trailer's ('T', the count's 8 digits), after any spaces or tabs a transfer tool
# put before it (a bad line of PN's own, one dead letter). The digits in their place, not the kind letter alone, tell
# it: a CSV header whose first column is HORA, TIPO, SECTOR, PROVINCIA or INFORME starts with a kind and a capital too,
# and no header holds 8 digits in a row. Whether they make a valid date is not looked at;
# SENAFRONT: a header naming its report number, which every header it reads names (``senafront.REQUIRED``, each alias
# holding INFORME; ``senafront.read`` recognises its header by every column it reads; this mark names the format).
# Looked for in this order when naming what a refused file looks like.
FORMATS: dict[str, Format] = {
    "snm": Format(re.compile(rb'"(?:id_control|viajero|coincidencia)"\s*:'),
                  "JSON lines, each hit an object on one line holding id_control, viajero or coincidencia"),
    "combifron": Format(re.compile(rb'"(?:id_mensaje|entidad|restricciones)"\s*:'),
                        "JSON lines, each message an object on one line holding id_mensaje, entidad or restricciones"),
    "senan": Format(re.compile(rb'"(?:numero_operacion|embarcacion|carga|tripulacion)"\s*:'),
                    "JSON documents holding numero_operacion, embarcacion, carga or tripulacion"),
    "senafront": Format(re.compile(rb"(?i)\A[^\r\n]*\binforme\b[^\r\n]*[;,\t]"),
                        "CSV whose header names the columns it reads (No. Informe, Fecha, Hora, Tipo de evento...)"),
    "pn": Format(re.compile(rb"\A[ \t]*(?:H[^\r\n]{10}[0-9]{14}|S[^\r\n]{14}[0-9]{12}|T[0-9]{8})"),
                 "fixed-width lines, each starting with its kind: H, S, I, P or T; the first an H line, with the "
                 "export time's 14 digits"),
}
# Records that show no export's format (a JSON array, a line of prose) a reader holds back, at most, waiting for one
# that does: they are dead letters of the file once a record shows its adapter's format, and part of its refusal if
# none does. Memory: this many records (``limits.record_bytes`` each, 64 KiB by default).
HELD = 16


def looks_like(first: bytes, but: str) -> str | None:
    """The adapter other than ``but`` whose export ``first``, a record, shows (``FORMATS``), if any."""
    return next((name for name, form in FORMATS.items() if name != but and form.shows.search(first)), None)


def wrong_format(adapter: str, line: int, other: str | None, *, cut: bool = False) -> Item:
    """The file's one refusal when it is not in ``adapter``'s format: its record at ``line`` is in ``other``'s, or
    (``other`` None) no record up to ``line`` shows ``adapter``'s.

    Read on, another agency's export gives one dead letter per line or record, each holding that agency's content,
    on this agency's dead-letter topic, whose readers must never see it. The message names the format expected and
    the adapter whose export the file looks like, never a byte of it (nor does the dead letter: its value is empty).
    ``cut``: the file stops within its last record, which its writer may not have finished; a watcher reads the file
    again once it changes.
    """
    why = (f"line {line} is as {other}'s export writes it: give the file to that adapter" if other else
           f"no record up to line {line} shows it")
    return Item(0, line, b"", error=AdapterError(
        f"the file is not in {adapter}'s format ({FORMATS[adapter].what}): {why}; nothing was read", WRONG_FORMAT,
        cut=cut))


def recognised(items: Iterator[Item], adapter: str) -> Iterator[Item]:
    """``items``, a reader's, once a record shows ``adapter``'s format (``FORMATS``); else the file's one refusal.

    The file's first record that shows a format decides: ``adapter``'s, and the file is read, the records before it
    (which show none: a JSON array, a line of prose) each a dead letter; another adapter's, or none within ``HELD``
    records or before the file's end, and the file is refused whole, before any record is given. Whether a record is
    valid is never asked: one bad record of the right format is one dead letter, and the rest of the file is read. A
    result of the file's own (record 0: UTF-16, line ends CR only, no record at all) is given as it is.
    """
    held: list[Item] = []
    for item in items:
        if not item.number:
            yield from held
            yield item
            held = []
            continue
        form = adapter if FORMATS[adapter].shows.search(item.raw) else looks_like(item.raw, adapter)
        if form == adapter:
            yield from held
            yield item
            yield from items
            return
        if form is not None or len(held) == HELD:
            yield wrong_format(adapter, item.line, form)
            return
        held.append(item)
    if held:
        last = held[-1]
        yield wrong_format(adapter, last.line, None, cut=last.error is not None and last.error.cut)


def decode(raw: bytes, encoding: str, what: str) -> str:
    """The text of ``raw``; a byte sequence invalid in ``encoding`` is refused, never guessed.

    'utf-8-sig' decodes as UTF-8: the readers drop the file's byte-order mark, and one at the
    start of a later record is not a file's start, so it must stay (and be refused) rather than
    vanish silently.
    """
    if encoding.lower().replace("_", "-") == "utf-8-sig":
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 1]
        # Cut in the middle of a character, or a Windows-1252 accent on the last character? The
        # same bytes; a text that is already UTF-8 up to there (with some accents in it) was cut.
        if exc.reason == "unexpected end of data" and not raw[: exc.start].isascii() and _is_utf8(raw[: exc.start]):
            raise fail(TRUNCATED, f"{what} ends in the middle of a character (truncated?)") from None
        hint = ""
        if encoding.replace("-", "").lower().startswith("utf8") and bad and 0xA0 <= bad[0] <= 0xFF:
            hint = " (the file looks like Windows-1252 or Latin-1: export it as UTF-8)"
        elif _is_utf8(raw):
            hint = f" (the file looks like UTF-8: export it as {encoding})"
        raise fail(ENCODING, f"{what}: byte {exc.start + 1} (0x{bad.hex()}) is not valid {encoding}{hint}") from None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# One decoder for every record: json.loads with arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=no_constants, parse_float=finite_float, object_pairs_hook=unique_keys)
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)


def _first_duplicate(text: str) -> tuple[str, int] | None:
    """The first key, in reading order, that its object already has, and where it is in ``text``.

    Run only once a duplicate was found, to name its line: the parser's hook sees keys, not positions.
    """
    objects: list[set[str] | None] = []  # the keys of each open object; None for an open array
    want_key = False
    for token in _JSON_TOKEN.finditer(text):
        t = token.group()
        if t in "{[":
            objects.append(set() if t == "{" else None)
            want_key = t == "{"
        elif t in "}]":
            if objects:
                objects.pop()
            want_key = False
        elif t == ",":
            want_key = bool(objects) and objects[-1] is not None
        elif t == ":":
            want_key = False
        elif want_key:
            keys = objects[-1]
            try:
                key = json.loads(t)
            except ValueError:
                key = t[1:-1]
            if keys is not None and key in keys:
                return key, token.start()
            if keys is not None:
                keys.add(key)
            want_key = False
    return None


def _key_shown(key: str) -> str:
    """A repeated key for a message: by its length only. The parse comes before any adapter knows which keys
    are its fields, and a key may be data (documents keyed by passport number, people by name); the line
    number the message gives finds it."""
    return f"of {len(key)} characters"


def parse_json(text: str, first_line: int) -> dict[str, Any]:
    """One JSON object; the error names the file line and column, and tells truncation from bad syntax."""
    try:
        doc = _DECODER.decode(text)
    except DuplicateKey as exc:
        found = _first_duplicate(text)
        key, line = (found[0], first_line + text.count("\n", 0, found[1])) if found else (exc.key, first_line)
        raise fail(DUPLICATE_KEY, f"line {line}: the key {_key_shown(key)} appears twice in one object; "
                                  "which value was meant cannot be known, so the record is refused") from None
    except json.JSONDecodeError as exc:
        line = first_line + exc.lineno - 1
        unclosed = exc.msg.startswith("Unterminated string") and text.find('"', exc.pos + 1) < 0
        if unclosed or exc.pos >= len(text.rstrip()):
            raise fail(TRUNCATED, f"JSON ends at line {line} before the document is complete (truncated?)") from None
        raise fail(SYNTAX, f"invalid JSON at line {line} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise fail(SYNTAX, f"invalid JSON from line {first_line}: {reason}") from None
    if not isinstance(doc, dict):
        raise fail(INVALID, f"line {first_line}: expected a JSON object, got a JSON {type(doc).__name__}")
    return doc


def json_lines(stream: BinaryIO, encoding: str, limit: int) -> Iterator[Item]:
    """JSON Lines: one object per line; blank lines are skipped (a file of nothing else holds no record)."""
    number, line_no = 0, 0
    for line_no, line, long in physical_lines(stream, limit):
        if line_no == 1 and (refused := whole_file(line, encoding)) is not None:
            yield Item(0, 1, b"", error=refused)
            return
        raw = line.rstrip(b"\r\n")
        if not raw.strip() and not long:  # a long line is not blank: only its start was looked at
            continue
        number += 1
        try:
            if long:
                raise too_long(f"line {line_no}", limit)
            yield Item(number, line_no, raw, parse_json(decode(raw, encoding, f"line {line_no}"), line_no))
        except AdapterError as exc:
            # Without its line end the line is the file's last, and may be cut anywhere: within a number, a
            # 'null', a character of several bytes, which read as bad syntax or a bad byte, not as a cut; and a
            # line too long to be read may be one whose writer has not got to its end.
            cut = not line.endswith(b"\n")
            yield Item(number, line_no, raw, error=stops_within(exc) if cut else exc)
    if not number:
        yield no_record(line_no)


def json_documents(stream: BinaryIO, encoding: str, limit: int) -> Iterator[Item]:
    """Pretty-printed JSON objects one after another, each starting with '{' at the start of a line.

    Splitting at those lines, before parsing, keeps one truncated or broken document from
    taking the rest of the file with it. The stream is read in large blocks and split with
    ``bytes.find``: a pretty-printed document has dozens of lines, and reading them one by one
    cost more than parsing them. A document longer than the limit is read through, a block at a
    time, keeping only what may start the next one and how it ends (``_ending``). Whitespace around
    a document is not part of it, however much of it there is: it is counted in lines, not kept.
    """
    buf, off, line, number, eof = b"", 0, 1, 0, False
    skipped: Item | None = None  # the document longer than the limit being read through, refused once it ends
    ending = b""  # of the skipped document, what tells whether it closes (``_ending``)
    gap: int | None = None  # whitespace after the document at ``off`` was dropped from ``off + gap`` ...
    gap_lines = 0  # ... holding this many line breaks
    start = True  # before the file's first bytes: a byte-order mark there is dropped
    while True:
        cut = buf.find(b"\n{", off)
        if skipped is not None:
            if cut >= 0:  # the long document ends where the next one starts
                line += buf.count(b"\n", off, cut) + 1
                off = cut + 1
                yield skipped
                skipped = None
                continue
            if eof:  # no document follows it: it is complete if it closes, else the file may stop within it
                if skipped.error is not None and not _closes(_ending(ending, buf[off:])):
                    skipped = Item(skipped.number, skipped.line, skipped.raw, error=stops_within(skipped.error))
                yield skipped
                return
            # Nothing of it is kept but a last line break, which may be the start of the next document's boundary;
            # a block is always read, so the loop moves on however long the line.
            keep = len(buf) - 1 if buf.endswith(b"\n") else len(buf)
            line += buf.count(b"\n", off, keep)
            ending = _ending(ending, buf[off:keep])
            buf, off = buf[keep:], 0
        elif cut >= 0 or eof:
            end = len(buf) if cut < 0 else cut
            doc = buf[off:end]
            body_bytes = doc.lstrip()
            first = line + doc.count(b"\n", 0, len(doc) - len(body_bytes))
            line += doc.count(b"\n") + gap_lines + (cut >= 0)
            off = end + 1
            raw = body_bytes.rstrip()
            if gap is not None and doc[gap:].strip():  # content after the dropped whitespace: all of it counts
                number += 1
                error = too_long(f"the document from line {first}", limit)
                closes = cut >= 0 or _closes(raw[-2:] + body_bytes[len(raw):])
                yield Item(number, first, raw[:limit], error=error if closes else stops_within(error))
            elif raw:
                number += 1
                closes = len(raw) > limit and _closes(raw[-2:] + b"\n" * bool(gap_lines) + body_bytes[len(raw):])
                yield _document(number, first, raw, encoding, limit, last=cut < 0, ended=doc.endswith(b"\n"),
                                closes=closes)
            gap, gap_lines = None, 0
            if cut < 0:
                if not number:
                    yield no_record(line - (not doc or doc.endswith(b"\n")))
                return
            continue
        elif len(buf) - off > limit:  # no end in sight yet, and more than a document may hold
            text = buf[off:]
            lead = len(text) - len(text.lstrip())
            if lead:  # blank lines before the first document: counted, not kept
                line += buf.count(b"\n", off, off + lead)
                off += lead
                continue
            content = len(text.rstrip())
            if content > limit:  # too long (content after dropped whitespace, too): note it, keep its first bytes
                number += 1
                skipped = Item(number, line, text[:limit], error=too_long(f"the document from line {line}", limit))
                line += gap_lines
                gap, gap_lines, ending = None, 0, b""
                continue
            if len(text) > 2 * limit:  # a document followed by much whitespace: its first bytes and last are kept
                gap = limit
                gap_lines += buf.count(b"\n", off + limit, len(buf) - 1)
                buf = buf[:off + limit] + buf[-1:]
        block = stream.read(1 << 20)
        eof = not block
        buf, off = buf[off:] + block, 0  # compacting here keeps the buffer near one block
        if start and (len(buf) >= len(BOM) or eof):
            start = False
            if buf.startswith(BOM):
                buf = buf[len(BOM):]
            if (refused := whole_file(buf[:buf.find(b"\n") + 1 or len(buf)], encoding)) is not None:
                yield Item(0, 1, b"", error=refused)
                return


def _ending(ending: bytes, more: bytes) -> bytes:
    """What tells whether a document closes, of its bytes up to the end of ``more`` (``ending``: up to its start).

    A few bytes, however long the document: its last two bytes that are not whitespace, a line break if one
    follows them, and the last byte of the whitespace after them (see ``_closes``)."""
    both = ending + more
    body = both.rstrip()
    after = both[len(body):]
    return body[-2:] + (b"\n" if b"\n" in after[:-1] else b"") + after[-1:]


def _closes(ending: bytes) -> bool:
    """Whether a document ends as a pretty-printed one closes: a '}' at the start of its last line, with a line
    break after it. A writer stopped within a document stops at the end of an indented line, or within one."""
    body = ending.rstrip()
    return body.endswith(b"\n}") and b"\n" in ending[len(body):]


def _document(number: int, first: int, raw: bytes, encoding: str, limit: int, *, last: bool, ended: bool,
              closes: bool) -> Item:
    """One document's Item. The file's last is cut when the file stops within a line, or before the document
    closes (a writer flushing line by line stops at a line's end, mid-document), or, when it is too long to be
    parsed, unless its last line closes it as a pretty-printed document closes (``_closes``)."""
    try:
        if len(raw) > limit:
            raise too_long(f"the document from line {first}", limit)
        return Item(number, first, raw, parse_json(decode(raw, encoding, f"document at line {first}"), first))
    except AdapterError as exc:
        stops = last and (not ended or exc.reason == TRUNCATED or (exc.reason == TOO_LONG and not closes))
        return Item(number, first, raw[:limit], error=stops_within(exc) if stops else exc)


class _Quotes:
    """The quotes of one CSV record, followed line by line, and through a long line part by part (it is not kept).

    The rule is strict CSV's, the one ``_split_csv`` parses by. A quote opens a cell only at its start; inside,
    '""' is a literal quote and '"' closes it. A quote in the middle of an unquoted cell (8°40'12"N) is a plain
    character. A closing quote followed by other text than the delimiter or the line end makes the record invalid
    from there: the rest of its line is not looked at, so the record ends with that line (and is refused as
    ``syntax``) rather than taking the lines after it. A lenient reader takes ``"a"b`` as the text ``ab`` and goes
    on, so a stray quote opening a remark (``"Fuente humana;SECRETO;...``) closes at the next row's first quoted
    cell, and that row becomes remark text of the first, its markings the first row's.

    ``column`` counts the delimiters outside quotes since the record's start: while a cell is open it is that
    cell's column, which ``csv_rows`` checks against the columns that may hold line breaks. ``delimiters``
    counts every delimiter of the current line, quoted or not: what the line would hold as a row of its own.
    """

    def __init__(self, delimiter: int) -> None:
        self.delimiter = delimiter
        self.ends = (delimiter, 0x0D, 0x0A)  # what may follow a closing quote (a long line's part may end in CR)
        self.inside = False  # within a quoted cell
        self.prev = -1  # the byte before the part: -1 at the line's start, a cell's start
        self.pending = False  # inside, the part ended on a quote: it closes the cell unless '"' follows
        self.broken = False  # a closing quote was followed by other text: the record is invalid from there
        self.column = 0
        self.delimiters = 0

    def feed(self, part: bytes) -> None:
        if not part:
            return
        self.delimiters += part.count(self.delimiter)
        if self.broken:
            return
        pos, end = 0, len(part)
        if self.pending:
            self.pending = False
            if part[0] == 0x22:
                pos = 1  # '""': a literal quote, still inside
            elif part[0] in self.ends:
                self.inside = False
            else:
                self._break()
                return
        while pos < end:
            if self.inside:
                close = part.find(b'"', pos)
                if close < 0:
                    break
                if close + 1 == end:
                    self.pending = True
                    break
                if part[close + 1] == 0x22:
                    pos = close + 2
                    continue
                if part[close + 1] not in self.ends:
                    self._break()
                    return
                self.inside, pos = False, close + 1
            quote = part.find(b'"', pos)
            self.column += part.count(self.delimiter, pos, end if quote < 0 else quote)
            if quote < 0:
                break
            before = part[quote - 1] if quote > 0 else self.prev
            if before in (-1, self.delimiter):
                self.inside = True
            pos = quote + 1
        self.prev = part[-1]

    def _break(self) -> None:
        self.broken, self.inside, self.pending = True, False, False

    def end_line(self) -> tuple[bool, int]:
        """Whether a quoted cell is open at the line's end (a quote ending the line closes its cell), and the
        line's delimiters; what follows is the next line's."""
        if self.pending:
            self.pending, self.inside = False, False
        delimiters, self.delimiters, self.prev = self.delimiters, 0, -1
        return self.inside, delimiters


def csv_rows(stream: BinaryIO, encoding: str, limit: int,
             multiline: Callable[[list[str]], Iterable[int]] = lambda header: ()) -> Iterator[
                 tuple[int, bytes, list[str] | AdapterError]]:
    """(line, raw, fields or error) for each CSV record; the delimiter (';', ',' or tab) comes from the first.

    The header is the first record read as fields. ``multiline`` names, from the header's cells, the columns
    (from 0) whose quoted cells may span lines (remarks typed with Alt+Enter in a spreadsheet): physical lines
    are joined while such a cell is open. Nowhere else, and in no column before the header is read, may a
    quoted cell span lines: a stray quote opening one (``"Pérez``) ends its record at its line, refused as
    ``syntax``, and the next row is read on its own. A cell that may span lines is still refused, as
    ``syntax`` naming the record's lines, when a line it takes in holds as many delimiters as a row (the
    header's columns less one): that line may be a row of its own, taken in by a stray quote and closed by a
    quote ending a cell of it (``Tubo de 12"``) in a record of the header's width, which would be published
    with the other row's markings. Either way the record ends where strict CSV ends it, so a line inside a
    quoted remark is never read as a record of its own.

    A last record without its line end is refused as ``truncated``: a file cut within it (or still being
    written) may have lost its last cells, and a cell lost just after a delimiter reads as empty, which the
    markings fill with a default (a wider release). JSON needs no such rule: an object cut anywhere lacks its
    closing brace and does not parse. So is a quoted cell the file stops within (``cut``: its writer may not
    have got to its closing quote), unless a line it took in holds a row's delimiters: that record is refused
    whatever follows, as above, and is not left waiting for a quote that a stray one never gets.
    """
    delimiter: bytes | None = None
    parts: list[bytes] = []
    start, size, long = 0, 0, False
    width, spans = 0, frozenset[int]()  # the header's: 0 and none until it is read
    crowded = 0  # the first line the record takes in that holds as many delimiters as a row (0: none yet)
    # The quotes are followed through every byte, a long line's and a long record's too: a line inside a
    # quoted field is never read as a record of its own, however long the field (remarks can be long, and
    # whoever types them chooses what a line of them looks like).
    scan: _Quotes | None = None  # the quotes of the record being read (None between records)
    fed = False  # the line being read is long, and was followed part by part

    def follow(part: bytes) -> None:
        nonlocal delimiter, scan, fed
        if not fed and delimiter is None and part.strip():  # at its start, as for any line: the first not blank
            delimiter = max((b";", b",", b"\t"), key=part.count)
        if scan is None:  # it starts a record
            scan = _Quotes((delimiter or b";")[0])
        fed = True
        scan.feed(part.rstrip(b"\r\n") if part.endswith(b"\n") else part)

    for line_no, raw, line_long in physical_lines(stream, limit, rest_of=follow):
        if line_no == 1 and (refused := whole_file(raw, encoding)) is not None:
            yield line_no, b"", refused
            return
        if not parts:
            start, size, long, crowded = line_no, 0, False, 0
            if not raw.strip() and not line_long:  # a long line is not blank: only its start was looked at
                continue
        if delimiter is None and raw.strip():
            delimiter = max((b";", b",", b"\t"), key=raw.count)
        if size <= limit:  # a record refused for its length keeps its start, not the rest
            parts.append(raw)
        size += len(raw)
        long = long or line_long or size > limit
        if scan is None:
            scan = _Quotes((delimiter or b";")[0])
        if not fed:
            scan.feed(raw.rstrip(b"\r\n"))
        fed = False
        inside, delimiters = scan.end_line()
        if line_no > start and width and delimiters >= width - 1 and not crowded:
            crowded = line_no
        if inside and scan.column in spans:
            continue
        column, scan = scan.column, None
        record = b"".join(parts).rstrip(b"\r\n")  # the record byte for byte, line breaks in it included
        parts = []
        if not raw.endswith(b"\n"):  # only the last line can lack its end: the file stops within it
            if long:  # a writer may not have got to its end yet
                yield start, record[:limit], stops_within(too_long(f"the record at line {start}", limit))
                continue
            yield start, record, cut_line(line_no)
            continue
        if long:
            yield start, record[:limit], too_long(f"the record at line {start}", limit)
            continue
        fields: list[str] | AdapterError
        if inside:
            fields = _open_cell(start, line_no, column, spans)
        elif crowded:
            fields = _crowded(start, line_no, crowded, width)
        else:
            try:
                fields = _split_csv(decode(record, encoding, f"line {start}"), (delimiter or b";").decode(), start)
            except AdapterError as exc:
                fields = exc
            if not width and not isinstance(fields, AdapterError):
                width, spans = len(fields), frozenset(multiline(fields))
        yield start, record, fields
    if parts:  # the file stops within the quoted field
        record = b"".join(parts)[:limit]
        if crowded:  # refused whatever follows (a stray quote took rows in): said so, not left waiting as cut
            yield start, record, too_long(f"the record at line {start}", limit) if long else _crowded(
                start, line_no, crowded, width)
            return
        yield start, record, AdapterError(f"a quoted field opened at line {start} never closes", TRUNCATED, cut=True)


def _lines(start: int, end: int) -> str:
    return f"the record at line {start}" + (f" (lines {start}-{end})" if end > start else "")


def _open_cell(start: int, line: int, column: int, spans: frozenset[int]) -> AdapterError:
    """A record ended at ``line`` with a quoted cell still open in ``column``, where no cell may span lines."""
    may = (f"only column{'s' * (len(spans) > 1)} {', '.join(str(c + 1) for c in sorted(spans))} may hold line "
           "breaks" if spans else "no cell may hold line breaks here")
    return fail(SYNTAX, f"{_lines(start, line)} is not valid CSV: a quoted cell in column {column + 1} does not "
                        f"close on line {line}, and {may} (a stray quote opening a cell would take the rows after "
                        "it into that cell); the record ends with that line")


def _crowded(start: int, end: int, line: int, width: int) -> AdapterError:
    """A record whose quoted cell took in ``line``, a line that holds as many delimiters as a row."""
    return fail(SYNTAX, f"{_lines(start, end)} is not valid here: a quoted cell takes in line {line}, which holds "
                        f"{width - 1} delimiters or more, as a row of its own does (a stray quote opening a cell "
                        "takes the rows after it into that cell, up to a quote that ends a cell of theirs); if the "
                        "cell is meant to span lines, write it without so many delimiters on one line")


def _split_csv(text: str, delimiter: str, line: int) -> list[str]:
    """The fields of one record, read as strict CSV; the csv module's own errors become the record's, never the file's.

    Strict, as ``_Quotes`` follows the quotes: a closing quote followed by other text than the delimiter or
    the line end is refused, never read as text of the field, which would let one row's stray quote take the
    next row, its markings and all, into a remark.
    """
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True), [])
    except csv.Error as exc:
        # e.g. a field over csv.field_size_limit() (131,072), which a record_bytes above it lets through
        if "field larger than field limit" in str(exc):
            raise fail(TOO_LONG, f"a field of the record at line {line} is longer than "
                                 f"{csv.field_size_limit():,} characters") from None
        spans = text.count("\n")
        where = f"the record at line {line}" + (f" (lines {line}-{line + spans})" if spans else "")
        hint = ""
        if "expected after" in str(exc):
            hint = (": a closing quote is followed by other text than the delimiter or the line end (a quote "
                    "within a quoted cell is written twice; a stray quote opening a cell takes the lines after it "
                    "into that cell)")
        raise fail(SYNTAX, f"{where} is not valid CSV{hint}") from None
