"""National Police seizures: the legacy case system's fixed-width export -> SEIZURE alerts.

Windows-1252 text, one line per record, its kind in the first character::

    H  header: source system, export time, exporting unit (first line)
    S  a seizure case: case number, date, time, place, position, unit, operation, conveyance, markings
    I  an item seized in the case above (one line each)
    P  a person detained in the case above (one line each)
    T  trailer: how many cases the file holds (last line)

A case is its S line and every I and P line after it, up to the next S line or the T trailer;
a bad I or P line refuses the whole case (a seizure without one of its items would be published
as smaller than it was). An I or P line whose case number is not its case's is a bad line of
that case, not the end of it, and so is an H line among its lines: ending the case there would
publish it without the lines still to come, and refuse those as lines of no case. A plate
or flag without a conveyance code, or a document type or country without a document number,
refuses it too: those fields describe what they belong to, and would be dropped unread.
Trailing spaces may have been trimmed by a transfer tool, so short lines are padded;
longer ones are refused, since every field after the extra character would be shifted.

A case is complete only once the next S line, or the T trailer and the line after it (if any),
has been read: nothing else says that its last I or P line was its last. An I or P line after
the trailer is the case's too, and refuses it: the trailer is the file's last line, so one
among a case's lines is out of place, and ending the case there would lose the items after
it. A file cut short (or still being written) thus never publishes its last case smaller than
it is: at the end of a file the open case is refused as ``truncated``, and a dead letter says
the file has no trailer; a final line without its line end and shorter than its layout was
cut (its missing characters are not trimmed spaces) and is refused as ``truncated`` too, with
the case it belongs to, or on its own after the case if it is the trailer; one of its layout's
full width (a T trailer saved without a final line break) is whole, and read as any other. The
complete export, read later, publishes that case. A trailer whose count is not the number of
cases read is ``trailer-mismatch``: that file has its end, and disagrees with itself; it is not
a cut one, and is not waited on. So is a trailer that any line but a blank one follows, whatever the
last trailer counts: the trailer is the file's last line, and one within the file (two exports joined,
a count typed in) says the file ended where it did not, and counts only part of it; the cases are read
as any others.

A case is all the lines of the file that name it, not only those after its S line: an I or P line
among another case's lines (or outside any case) that names a case closed before it, or one
opened after it (a reordered or merged export), and a second S line of a case number already
read, each refuse the case they name as well as the one they stand in: published from its S line's
group alone, it would be smaller than it was, and its corrected export (PN has no revisions) only
a conflict. Which cases a later line names is known only at the file's end, so the file is read
twice (``read``; three times when a case number may be opened twice, to tell it for sure): first a scan of each
line's kind and case number (``_scan``), then record by
record, which gives every case, published or refused with the line that named it elsewhere. A
file is read twice where it lies, both times only as far as it went when the read began (a file
still being written shows neither read a line half-written); a stream that cannot be rewound (a
pipe) is copied in memory first, at most ``PIPE_BYTES``, past which it is refused whole, saying
so: adapt the file itself. Nothing of the file is written elsewhere. The second read gives only
the bytes the first read checked (``_Again``): the first keeps a digest of every stretch it read
(``_Seen``: at most ``MARKS``, whatever the file's length), and the second gives a stretch only
once its digest is the same. A file written again in place between the reads (truncated and
written anew, on the same inode), or cut, gives the cases closed within the stretches both
reads share; the rest is refused as one ``truncated`` result, ``cut`` (a watcher holds it and
reads the file again once it is still), saying that the file changed while it was read.

Memory does not grow with the file (``_Order``): the case numbers opened are kept as a fixed
filter of ``SEEN_BITS`` bits, whatever the count of cases; the numbers it may have seen before
(opened twice, or a chance match) are at most ``STRAY_CASES``, and are checked exactly by a third
scan of their S lines, when there are any; the numbers named out of place are at most
``STRAY_CASES``. Past either bound, the file's order cannot be checked, and every case is refused,
saying why (a file of some two million cases or more may be refused so: export it in parts). The
digests the second read is checked against are at most ``MARKS`` (512 KiB), and it holds one stretch
(``CHECK_BYTES``, 64 KiB, up to a file of 2 GiB; past it, 1/32768 of the file). A case
number is read from the line's bytes, so a line that does not parse names the same case as one
that does. A last line without its line end names a case only once the case number is written
whole (its first 15 bytes, or a CR after a shorter line): a line cut within the number (a file
still being written) would name another case, and refuse it for good while the complete file
publishes it. A file read before its end (no trailer yet) still gives the cases closed so far: a
line written later for one of them is caught when the whole file is read, which refuses that
case, too late for what the first read published; the watcher reads it then.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from adapters import _fields as f
from adapters import _shared as sh
from adapters._readers import (
    FORMATS,
    Item,
    cut_line,
    decode,
    looks_like,
    physical_lines,
    too_long,
    whole_file,
    wrong_format,
)
from adapters.config import Context
from adapters.core import Adapter, alert, alert_id, location, markings
from puente.errors import AdapterError

Layout = tuple[tuple[str, int], ...]
LAYOUTS: dict[str, Layout] = {
    "H": (("kind", 1), ("system", 10), ("exported", 14), ("unit", 24)),
    "S": (("kind", 1), ("case", 14), ("date", 8), ("time", 4), ("province", 16), ("place", 30), ("lat", 10),
          ("lon", 11), ("unit", 24), ("operation", 20), ("conveyance", 2), ("plate", 12), ("flag", 3),
          ("classification", 1), ("handling", 2), ("grading", 2), ("release", 20)),
    "I": (("kind", 1), ("case", 14), ("category", 2), ("item", 12), ("quantity", 12), ("unit", 4)),
    "P": (("kind", 1), ("case", 14), ("surname1", 20), ("surname2", 20), ("given", 30), ("born", 8), ("sex", 1),
          ("nationality", 3), ("doc_type", 2), ("doc_number", 16), ("doc_country", 3)),
    "T": (("kind", 1), ("count", 8)),
}
WIDTHS = {kind: sum(w for _, w in layout) for kind, layout in LAYOUTS.items()}
CLASSIFICATION = {"P": "PUBLICO", "R": "RESTRINGIDO", "C": "CONFIDENCIAL", "S": "SECRETO"}
CATEGORY = {"DR": "DRUGS", "AR": "ARMS", "MU": "AMMUNITION", "EF": "CASH", "OT": "OTHER"}
CONVEYANCE = {"VH": "VEHICLE", "CA": "TRUCK", "LA": "GO_FAST", "PE": "FISHING_VESSEL", "AE": "AIRCRAFT",
              "AP": "ON_FOOT", "OT": "OTHER"}
DOCUMENT = {"CE": "cedula", "PA": "pasaporte", "OT": "otro"}
# UTF-8 read as Windows-1252: 'é' arrives as 'Ã©'. No name or place in Spanish has these pairs.
_MOJIBAKE = re.compile("[ÂÃ][\u00a0-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                       "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]")


def split(line: str, line_no: int) -> dict[str, str]:
    """The fields of one line by its layout, stripped."""
    kind = line[:1]
    layout = LAYOUTS.get(kind)
    if layout is None:
        raise f.fail(f.UNKNOWN_CODE, f"line {line_no}: {f.naming('the record kind', kind)} is not H, S, I, P or T")
    if _MOJIBAKE.search(line):  # first: it is also why such a line is too long
        raise f.fail(f.ENCODING, f"line {line_no} looks like UTF-8 text; the layout needs Windows-1252")
    if len(line) > WIDTHS[kind]:
        raise f.fail(f.MISSING_COLUMN, f"line {line_no}: a {kind} line has {WIDTHS[kind]} characters, "
                                       f"this one {len(line)}; its fields would be shifted")
    out, pos = {}, 0
    for name, width in layout:
        out[name] = line[pos:pos + width].strip(" ")  # the layout pads with spaces: anything else is the field's
        pos += width
    return out


class _Case:
    """A case being collected: its S line's fields, its I and P lines, its raw bytes, its first error.

    Memory is bounded by the record limit, whatever the file holds: the size is kept as lines
    arrive (not summed again per line, which made a long case quadratic), and once the case is
    over the limit it is refused, its later lines are taken as its own (they must not read as
    lines outside a case) but no longer stored, and its raw bytes stay the first ``limit``.
    """

    def __init__(self, line_no: int, case_id: str, fields: dict[str, str] | None, raw: bytes, limit: int,
                 error: AdapterError | None = None) -> None:
        self.line_no, self.case_id, self.raw, self.error = line_no, case_id, [raw[:limit]], error
        self.size, self.limit = len(raw), limit
        if self.size > limit:
            self.error = error or too_long(f"the case at line {line_no}", limit)
        self.doc: dict[str, Any] = {"case": fields, "items": [], "persons": [], "lines": {"S": line_no}}
        self.trailer = 0  # the line of a T trailer read while the case is open: it is complete unless I or P follows
        self.bad_trailer: Item | None = None  # that T line's refusal, if it is bad (cut within its count...)

    def take(self, kind: str, line_no: int, raw: bytes, fields: dict[str, str] | None,
             error: AdapterError | None) -> None:
        """A line read while the case is open. A T trailer ends it unless an I or P line follows (a bad one too,
        refused on its own once the case is given out); any other line is the case's, and one that is not an I
        or P line of this case number refuses it."""
        if kind == "T" and not self.trailer:
            self.trailer = line_no
            if error is not None:
                self.bad_trailer = Item(0, line_no, raw.rstrip(b"\r\n"), error=error)
            return
        at = f"line {line_no}: "
        if error is not None or fields is None:
            pass
        elif self.trailer:
            error = f.fail(f.INVALID, f"{at}the {kind} line follows the T trailer at line {self.trailer}, within the "
                                      f"case at line {self.line_no}: the trailer must be the file's last line")
        elif kind not in ("I", "P"):  # an H line: a second T closes the case first (``read``)
            error = f.fail(f.INVALID, f"{at}an H line within the case at line {self.line_no}: the header is the "
                                      "file's first line only")
        elif fields["case"] != self.case_id:
            error = f.fail(f.INVALID, f"{at}the {kind} line's case number is not that of the case at line "
                                      f"{self.line_no}, whose lines it is among: check the case numbers")
        self.add(kind, line_no, raw, None if error else fields, error)

    def add(self, kind: str, line_no: int, raw: bytes, fields: dict[str, str] | None,
            error: AdapterError | None) -> None:
        """One more line of the case; one that does not parse refuses the case."""
        self.error = self.error or error
        if self.size > self.limit:  # refused already: the line is the case's, and is not kept
            return
        self.raw.append(raw[:self.limit - self.size])
        self.size += len(raw)
        if self.size > self.limit:
            self.error = self.error or too_long(f"the case at line {self.line_no}", self.limit)
        elif fields:
            self.doc["items" if kind == "I" else "persons"].append((line_no, fields))

    def item(self, number: int) -> Item:
        raw = b"".join(self.raw).rstrip(b"\r\n")  # the case's lines byte for byte, at most the limit
        return Item(number, self.line_no, raw, None if self.error else self.doc, self.error)

    def close(self, number: int) -> list[Item]:
        """The case as record ``number + 1``, then the refusal of a bad T line that ended it, if any."""
        done = [self.item(number + 1)]
        if (bad := self.bad_trailer) is not None:
            done.append(Item(number + 2, bad.line, bad.raw, error=bad.error))
        return done


PIPE_BYTES = 32 << 20  # of a stream that cannot be rewound (a pipe), copied in memory to be read twice (``read``)
STRAY_CASES = 10_000  # case numbers named out of place, or maybe opened twice, a file may have before it is refused
SEEN_BITS = 1 << 24  # the filter of case numbers opened (``_Order.open``), a power of two: 2 MiB, whatever the file
_PROBES = 4  # bits of the filter per case number
_NUMBER = 15  # a line's kind and its case number: the bytes that say which case it names


class _Order:
    """What the whole file says of each case number: the S lines that open it, and the I and P lines that name it
    from outside its own lines. Memory: ``SEEN_BITS`` bits, and at most ``STRAY_CASES`` numbers in doubt and as many
    named out of place, however many cases the file holds.

    The numbers opened are bits of a filter (a Bloom filter): a number whose bits were all set before may have been
    opened before, or only share them by chance, so it is kept in doubt and its S lines scanned again (``check``),
    which keeps only the numbers opened twice, with their first two S lines."""

    def __init__(self) -> None:
        self.seen = bytearray(SEEN_BITS // 8)
        self.doubts: dict[bytes, int] = {}  # number that may be opened twice -> its first S line (0 until checked)
        self.doubted = 0  # the S line that put one number too many in doubt
        self.again: dict[bytes, tuple[int, int]] = {}  # number opened twice -> its first two S lines
        self.strays: dict[bytes, tuple[int, int]] = {}  # number -> (first line naming it elsewhere, how many)
        self.crowded = 0  # the line that named one case number too many out of place

    def open(self, case_id: bytes, line_no: int) -> None:
        bits, mask = self.seen, SEEN_BITS - 1
        h = hash(case_id) & 0xFFFF_FFFF_FFFF_FFFF  # the process's own hash: no file can aim at its bits
        at, step, new = h & mask, (h >> 32) | 1, False
        for _ in range(_PROBES):
            if not bits[at >> 3] & (1 << (at & 7)):
                bits[at >> 3] |= 1 << (at & 7)
                new = True
            at = (at + step) & mask
        if new or case_id in self.doubts:
            return
        if len(self.doubts) < STRAY_CASES:
            self.doubts[case_id] = 0
        else:
            self.doubted = self.doubted or line_no

    def check(self, case_id: bytes, line_no: int) -> None:
        """An S line read again, when numbers are in doubt: those opened twice are kept, with their lines."""
        first = self.doubts.get(case_id)
        if first == 0:
            self.doubts[case_id] = line_no
        elif first is not None and first != line_no:
            self.again.setdefault(case_id, (first, line_no))

    def stray(self, case_id: bytes, line_no: int) -> None:
        first, count = self.strays.get(case_id, (line_no, 0))
        if count or len(self.strays) < STRAY_CASES:
            self.strays[case_id] = (first, count + 1)
        else:
            self.crowded = self.crowded or line_no

    def refusal(self, case_id: bytes, line_no: int) -> AdapterError | None:
        """Why the case whose S line is ``line_no`` must not be published, if a line elsewhere names it."""
        at = f"line {line_no}: the case's number"
        advice = "check the export's order with the case system"
        if case_id in self.again:
            first, second = self.again[case_id]
            return f.fail(f.INVALID, f"{at} is also that of the S line at line {second if first == line_no else first}"
                                     ": a case is one S line and the I and P lines after it, and either part alone "
                                     f"would be published as smaller than it was; {advice}")
        if case_id in self.strays:
            first, count = self.strays[case_id]
            more = f" and {count - 1:,} more" if count > 1 else ""
            return f.fail(f.INVALID, f"{at} is named by the I or P line at line {first}{more}, not among the "
                                     "lines after its S line: published without them, the case would be smaller "
                                     f"than it was; {advice}")
        if self.crowded:
            return f.fail(f.INVALID, f"line {self.crowded}: more than {STRAY_CASES:,} case numbers are named by I or P "
                                     f"lines out of place; no case of the file is published; {advice}")
        if self.doubted:
            return f.fail(f.INVALID, f"line {self.doubted}: more than {STRAY_CASES:,} case numbers may be opened by a "
                                     "second S line (the file holds too many cases to tell each one apart); no case "
                                     "of the file is published; export the cases in smaller files")
        return None


def read(stream: BinaryIO, ctx: Context) -> Iterator[Item]:
    """Cases, each as {"case": S fields, "items": [(line, I fields)], "persons": [(line, P fields)]}; a case that a
    line elsewhere in the file names is refused (``_Order``), so the file is scanned to its end before its first
    case is read. Every read after the first gives only bytes the first read saw (``_Again``): once one differs,
    the rest is refused as cut (``_changed``). Memory: ``_Order``'s bound, ``_Seen``'s, one case's lines (the
    record limit), and for a pipe its copy, at most ``PIPE_BYTES``. OSError: the stream failing, as met."""
    extent = _extent(stream)
    if extent is None:  # a pipe: read once, so copied, within a bound (nothing of it is written to disk)
        copy = io.BytesIO()
        while block := stream.read(1 << 16):
            if copy.tell() + len(block) > PIPE_BYTES:
                yield Item(0, 1, b"", error=f.fail(f.TOO_LONG, f"the input cannot be read twice (a pipe) and is longer "
                                                               f"than the {PIPE_BYTES:,} bytes kept to read it so: "
                                                               "adapt the file itself; nothing was read"))
                return
            copy.write(block)
        extent = (0, copy.tell())
        stream = copy
    start, size = extent
    order, seen = _Order(), _Seen(stream, size)
    stream.seek(start)
    _scan(_buffered(seen), ctx, order.open, order.stray)
    if order.doubts:
        stream.seek(start)
        _scan(_buffered(checked := _Again(stream, seen)), ctx, order.check, None)
        if checked.changed:  # which numbers are opened twice was read from other bytes: no case is given
            yield _changed(checked, 1)
            return
    stream.seek(start)
    again, line = _Again(stream, seen), 1
    for item, case_id in _records(_buffered(again), ctx):
        if again.changed:  # met at a stretch that differs: this item was made at the end the read came to there
            yield _changed(again, item.line or line)
            return
        if case_id is not None and item.error is None and (why := order.refusal(case_id, item.line)):
            item = Item(item.number, item.line, item.raw, error=why)
        line = item.line
        yield item
    if again.changed:  # met at the file's end, with nothing left to give
        yield _changed(again, line)


def _extent(stream: BinaryIO) -> tuple[int, int] | None:
    """Where ``stream`` stands and how many bytes follow it now (a file's size as ``fstat`` gives it, or as far as a
    watcher's view of it goes), so that no read sees what is written after; None when it cannot be rewound."""
    try:
        if not stream.seekable():
            return None
        start = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(start)
    except OSError:  # a pipe behind a file object that claims to seek
        return None
    return start, max(0, end - start)


def _buffered(raw: io.RawIOBase) -> BinaryIO:
    return io.BufferedReader(raw, 1 << 16)


CHECK_BYTES = 1 << 16  # a stretch of the file whose digest the first read keeps, to check a later read against
MARKS = 1 << 15  # digests kept at most (16 bytes each: 512 KiB); past it, stretches are twice as long


class _Seen(io.RawIOBase):
    """The first read of a file: at most ``size`` bytes of ``stream`` (fixed before it, so that a file still being
    written does not show it a line half-written and then its end as another line), and a digest of what it read
    at the end of every stretch of ``every`` bytes, and at its end, for ``_Again``.

    The digests are of all the bytes read so far, keyed for this read alone (no file can aim at them): keeping every
    other one gives those of stretches twice as long, so ``MARKS`` digests are kept however long the file is. A file
    of up to ``MARKS * CHECK_BYTES`` bytes (2 GiB) is checked in stretches of ``CHECK_BYTES``; a longer one in longer
    stretches (an 8 GiB file: 256 KiB), each held in memory by ``_Again`` while it is checked."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        super().__init__()
        self._stream, self._left, self.key = stream, size, secrets.token_bytes(16)
        self._hash = self.hasher()
        self.length, self.every, self._marks = 0, CHECK_BYTES, bytearray()

    def hasher(self) -> Any:
        return hashlib.blake2b(digest_size=16, key=self.key)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._left)) if self._left > 0 else b""
        buffer[:len(data)] = data
        self._left -= len(data)
        view = memoryview(data)
        while view:  # split at each stretch's end, whose digest is kept
            part = view[:self.every - self.length % self.every]
            self._hash.update(part)
            self.length += len(part)
            view = view[len(part):]
            if self.length % self.every == 0:
                self._mark()
        return len(data)

    def _mark(self) -> None:
        if len(self._marks) == MARKS * 16:  # full: keep the digests at the ends of stretches twice as long
            self._marks = bytearray().join(self._marks[i:i + 16] for i in range(16, len(self._marks), 32))
            self.every *= 2
        if self.length % self.every == 0:
            self._marks += self._hash.digest()

    def end(self, at: int) -> int:
        """Where the stretch that starts at ``at`` ends: the next digest kept, or the end of what was read."""
        return min(at - at % self.every + self.every, self.length)

    def digest(self, end: int) -> bytes:
        """The digest of the first ``end`` bytes read, ``end`` a stretch's end as ``end()`` gives it."""
        if end == self.length:
            return bytes(self._hash.digest())
        return bytes(self._marks[(end // self.every - 1) * 16:end // self.every * 16])


class _Again(io.RawIOBase):
    """A later read of the bytes ``seen`` read, given a stretch at a time (``_Seen.end``), each only once its digest
    is the first read's: a file written again in place (truncated and written anew, on the same inode) or cut
    between the reads shows no byte the first did not, however soon after its last change it is read (times kept
    by a file system are coarse, and a share's may be cached). At the first stretch that differs, or ends early,
    ``changed`` is set and the read ends there, at ``at``, the end of the bytes checked."""

    def __init__(self, stream: BinaryIO, seen: _Seen) -> None:
        super().__init__()
        self._stream, self._seen, self._hash = stream, seen, seen.hasher()
        self._ready = memoryview(b"")
        self.at, self.changed = 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._ready:
            self._ready = memoryview(self._stretch())
        n = min(len(buffer), len(self._ready))
        buffer[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def _stretch(self) -> bytes:
        end = self._seen.end(self.at)
        if self.changed or end <= self.at:
            return b""
        parts, want = [], end - self.at
        while want and (block := self._stream.read(want)):
            parts.append(block)
            want -= len(block)
        data = b"".join(parts)
        self._hash.update(data)
        if want or self._hash.digest() != self._seen.digest(end):
            self.changed = True
            return b""
        self.at = end
        return data


def _changed(again: _Again, line: int) -> Item:
    """The rest of a file whose bytes changed between two reads, refused as cut: read again once it is still."""
    return Item(0, line, b"", error=AdapterError(
        f"the file changed while it was read (written again in place, or cut short): its bytes after the first "
        f"{again.at:,} are not those its case order was checked on, and no case among them was given; read it "
        "again once it is still", f.TRUNCATED, cut=True))


def _number(raw: bytes) -> bytes:
    """The case number a line names, from its bytes (a Windows-1252 character is a byte), whether it parses or not."""
    return raw.rstrip(b"\r\n")[1:_NUMBER].strip(b" ")


def _scan(stream: BinaryIO, ctx: Context, opened: Callable[[bytes, int], None],
          stray: Callable[[bytes, int], None] | None) -> None:
    """Each S line's case number to ``opened``, and to ``stray`` each I or P line's that is not among the lines of
    the case it names, as ``_records`` groups them, without reading the fields. A last line without its line end
    names nothing until its case number is written whole: cut within it, it would name another case."""
    case, trailer = None, False  # the number of the case open, and whether a T line was read within it
    for line_no, raw, long in physical_lines(stream, 4096):
        if line_no == 1 and whole_file(raw, ctx.profile.encoding) is not None:
            return
        if not raw.strip() and not long:
            continue
        kind, whole = raw[:1], raw.endswith((b"\n", b"\r")) or len(raw) >= _NUMBER
        if case is not None and (kind == b"S" or (trailer and kind not in (b"I", b"P"))):
            case = None
        if kind == b"S":
            case, trailer = _number(raw), False
            if whole:
                opened(case, line_no)
        elif kind == b"T":
            trailer = case is not None
        elif stray is not None and kind in (b"I", b"P") and whole and (named := _number(raw)) != case:
            stray(named, line_no)  # and refused by ``_records`` too, as a line of the case it is among or of none


def _case_id(fields: dict[str, str] | None, raw: bytes) -> str:
    """A line's case number as its fields give it; from the raw bytes if the line is bad."""
    return fields["case"] if fields else raw.rstrip(b"\r\n")[1:_NUMBER].decode("latin-1").strip(" ")


def _records(stream: BinaryIO, ctx: Context) -> Iterator[tuple[Item, bytes | None]]:
    """Every record of the file, each with its case number (``_number``) if it is a case."""
    enc, limit = ctx.profile.encoding, ctx.limits.record_bytes
    number, cases, case, trailer, last = 0, 0, None, None, 0
    # The last T line read; the first T line a line follows, the line after it, and how many such T lines in all
    # (one refusal for them all: a file of nothing but T lines must not hold one per line until its end).
    ended, misplaced, strays = 0, None, 0
    shown = False  # a line that is not blank was read: the first, which shows the format
    for line_no, raw, long in physical_lines(stream, 4096):
        if line_no == 1 and (refused := whole_file(raw, enc)) is not None:
            yield Item(0, 1, b"", error=refused), None
            return
        last = line_no
        if not raw.strip() and not long:  # a long line is not blank: only its start was looked at
            continue
        # The first line shows the format, by its layout's digits in place (``FORMATS``), however bad the line
        # otherwise (a bad date, leading blanks, a line too long are a dead letter of PN's own): another agency's
        # export, read on, would be a dead letter per line, each holding that agency's content
        # (``_readers.wrong_format``); a SENAFRONT header starting 'HORA;' has a kind letter and a capital too. Unless
        # the file stops within it: its writer may not have got to it (a watcher reads the file again once it changes).
        if not shown and raw.endswith(b"\n") and not FORMATS["pn"].shows.match(raw):
            yield wrong_format("pn", line_no, looks_like(raw, "pn")), None
            return
        shown = True
        try:
            if long:
                raise too_long(f"line {line_no}", 4096)
            text = decode(raw.rstrip(b"\r\n"), enc, f"line {line_no}")
            # Only the last line can lack its end. Shorter than its layout, it may stop anywhere (its missing
            # characters are not trimmed spaces); of its full width (a trailer saved without a final line
            # break), nothing of it is missing.
            if not raw.endswith(b"\n") and len(text) < WIDTHS.get(text[:1], 0):
                raise cut_line(line_no)
            fields: dict[str, str] | None = split(text, line_no)
            error = None
        except AdapterError as exc:
            fields, error = None, exc
        kind = fields["kind"] if fields else raw[:1].decode("latin-1")
        if ended:  # a line after a trailer, whatever it is: that trailer was not the file's last line
            misplaced, strays = misplaced or (ended, line_no), strays + 1
        ended = line_no if kind == "T" else 0
        # Only an S line ends a case, or its trailer followed by a line that is not an I or P line: every other
        # line is the case's (``_Case.take``), and one out of place refuses it rather than cutting it short.
        if case is not None and (kind == "S" or (case.trailer and kind not in ("I", "P"))):
            done = case.close(number)
            number += len(done)
            yield from _with_case(done, case)
            case = None
        if kind == "T" and fields:
            trailer = (line_no, fields["count"])
        if kind == "S":
            cases += 1
            # The case number as its I and P lines are read (``split``); from the raw bytes if the line is bad.
            case = _Case(line_no, _case_id(fields, raw), fields, raw, limit, error)
        elif case is not None:
            case.take(kind, line_no, raw, fields, error)
        elif not (kind == "H" and line_no == 1 and fields) and not (kind == "T" and fields):
            number += 1
            yield Item(number, line_no, raw.rstrip(b"\r\n"), error=error or f.fail(
                f.INVALID, f"line {line_no}: a {kind} line outside a case (or not the header's first line)")), None
    if case is not None:  # no line after it says it is complete, unless its trailer did
        if not case.trailer:
            case.error = case.error or AdapterError(f"the case at line {case.line_no} is the file's last and no T "
                                                    "trailer follows it: the export may be cut within it",
                                                    f.TRUNCATED, cut=True)
        yield from _with_case(case.close(number), case)
    if misplaced is not None:
        at, after = misplaced
        more = f", nor are {strays - 1:,} later T line(s)" if strays > 1 else ""
        error = f.fail(f.TRAILER_MISMATCH, f"line {at}: the T trailer is not the file's last line (line {after} "
                                           f"follows it{more}): a trailer ends the file; check the export with the "
                                           "case system")
        yield Item(0, at, b"", error=error), None
    yield from ((item, None) for item in _trailer_check(trailer, cases, last))


def _with_case(done: list[Item], case: _Case) -> Iterator[tuple[Item, bytes | None]]:
    """A closed case's items (``_Case.close``): the case with its number, then a bad trailer's refusal without."""
    yield done[0], _number(case.raw[0])
    yield from ((item, None) for item in done[1:])


def _trailer_check(trailer: tuple[int, str] | None, cases: int, last: int) -> Iterator[Item]:
    """The file as a whole: no trailer is a file that stops before its end (``cut``: read again once it changes); a
    trailer that does not count the cases read is a complete file that disagrees with itself, not a cut one. The
    last trailer is the one held against the cases; any before it is refused on its own (``read``)."""
    if trailer is None:
        yield Item(0, last, b"", error=AdapterError(f"the file ends at line {last} without its T trailer; the "
                                                    "export may be incomplete", f.TRUNCATED, cut=True))
    elif not (trailer[1].isascii() and trailer[1].isdigit()):  # not quoted: no count ('²' is a digit to isdigit)
        yield Item(0, trailer[0], b"", error=f.fail(f.TRAILER_MISMATCH, f"the trailer's case count is not a number; "
                                                                        f"the file holds {cases}"))
    elif int(trailer[1]) != cases:
        yield Item(0, trailer[0], b"", error=f.fail(f.TRAILER_MISMATCH, f"the trailer counts {int(trailer[1])} "
                                                                        f"cases; the file holds {cases}: check the "
                                                                        "export with the case system"))


def _coordinate(value: str, field: str, axis: str) -> float | None:
    return f.coordinate(value, field, axis) if value else None


def to_alert(case: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One case -> a SEIZURE alert (pure)."""
    s, limits = case["case"], ctx.limits
    at = f"line {case['lines']['S']}"
    occurred = f.local(f.ymd(s["date"], f"{at}: date", compact=True), f.clock(s["time"], f"{at}: time"),
                       ctx.profile.zone)
    items = [sh.item(CATEGORY.get(i["category"], i["category"]), i["item"], i["quantity"], i["unit"], f"line {n}:")
             for n, i in case["items"]]
    if not items:
        raise f.fail(f.MISSING_FIELD, f"{at}: the case has no I (item) lines")
    first = case["items"][0][1]
    # the summary keeps the agency's words, cleaned as they were when checked (text() folds control characters
    # that cp1252 decodes, as whitespace; they must not come back raw)
    unit = f.text(first["unit"], f"line {case['items'][0][0]}: unit", 80) or ""
    kind = f.text(first["item"], f"line {case['items'][0][0]}: item", 80) or ""
    persons = []
    for n, p in case["persons"]:
        born = f.birth_date(p["born"], f"line {n}: date of birth", ctx.now.date(), compact=True)
        if not p["doc_number"] and (p["doc_type"] or p["doc_country"]):  # read only with a number: never dropped
            raise f.fail(f.MISSING_FIELD, f"line {n}: the document type or country is filled and the document "
                                          "number is empty")
        doc = {"tipo": DOCUMENT.get(p["doc_type"], p["doc_type"]), "numero": p["doc_number"],
               "pais": p["doc_country"]} if p["doc_number"] else None
        family = sh.surnames(p["surname1"], p["surname2"], f"line {n}: apellidos", ctx)
        persons.append(sh.person(p["given"], family, born, p["sex"], p["nationality"], [doc] if doc else [],
                                 f"line {n}:", ctx))
    over = {"classification": CLASSIFICATION.get(s["classification"], s["classification"]) or None,
            "handling_code": s["handling"] or None, "grading": s["grading"] or None,
            "releasable_to": s["release"] or None}
    conveyance = None
    if not s["conveyance"] and (s["plate"] or s["flag"]):  # read only with a conveyance: never dropped
        raise f.fail(f.MISSING_FIELD, f"{at}: the conveyance plate or flag is filled and the conveyance code is empty")
    if s["conveyance"]:
        conveyance = sh.conveyance(CONVEYANCE.get(s["conveyance"], s["conveyance"]), None, s["plate"], s["flag"],
                                   f"{at}: conveyance", ctx)
    return alert(
        ctx,
        alert_id=alert_id(ctx, s["case"], f"{at}: case number"),
        alert_type="SEIZURE",
        occurred_at=occurred,
        reported_at=None,
        location=location(ctx, _coordinate(s["lat"], f"{at}: latitude", "lat"),
                          _coordinate(s["lon"], f"{at}: longitude", "lon"), province=s["province"] or None,
                          place=s["place"], where=f"{at}: position", labels=(f"{at}: province", "", f"{at}: place")),
        markings=markings(ctx, over, f.text(s["unit"], f"{at}: unit", limits.unit)),
        summary=f"Aprehensión: {f.quantity_text(items[0]['quantity'])} {unit.lower()} de {kind.lower()}"
                + (f", {len(persons)} detenidos" if persons else ""),
        payload={"items": items, "conveyance": conveyance, "persons_detained": len(persons), "detainees": persons,
                 "operation_name": f.text(s["operation"], f"{at}: operation", limits.name)},
    )


# keys=None: a record is the fields of its fixed layout (LAYOUTS), which the reader alone names.
ADAPTER = Adapter("pn", "PN", "National Police seizures (fixed-width) -> seizures", ("*.txt", "*.dat"), read, to_alert,
                  keys=None)
