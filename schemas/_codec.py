"""Encode and decode Avro single-object records. Pure: bytes and values in, bytes and values out."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from typing import Any, NamedTuple

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from puente.errors import (
    BoundsExceededError,
    CorruptRecordError,
    NotSingleObjectError,
    RecordMismatchError,
    UnknownSchemaError,
)
from schemas._fingerprint import HEADER_LEN, MARKER, header
from schemas._registry import SchemaVersion, check_distinct


class SingleObjectCodec:
    """Writes with one schema and reads any known writer schema into the reader schema.

    Every record carries the writer's fingerprint, so no registry server is
    needed: a reader resolves old and new writers into the schema it was
    built with, and refuses fingerprints it does not know.

    ``bounds`` holds arrays and maps to a most entries, by the record type
    and field that hold them (an alert's: ``schemas.bounds.ARRAY_BOUNDS``):
    whichever writer wrote it, an array past its bound has its entries read
    past (checked as any value is, so that what is corrupt is refused as
    before) but never built, and the record is refused with
    BoundsExceededError carrying the rest of its value, that array empty.

    ``texts`` holds strings to a most characters the same way, for the native
    codec only: it decodes them whole and measures them as it goes
    (``decode_measured``), which saves a walk of the value; without it, the
    caller walks the value itself.
    """

    def __init__(self, writer: SchemaVersion, known: tuple[SchemaVersion, ...] = (),
                 bounds: Mapping[tuple[str, str], int] | None = None,
                 texts: Mapping[tuple[str, str], int] | None = None) -> None:
        check_distinct((*known, writer))  # one fingerprint, two meanings: the reader could not tell them apart
        self.writer = writer
        self._header = header(writer.fingerprint)
        self._writers = {v.fingerprint: v for v in known}
        self._writers[writer.fingerprint] = writer
        self._tag = union_tagger(writer.parsed)
        self._guard = type_guard(writer.parsed)
        self._settle = resolved_value(writer.parsed)
        bounds = dict(bounds or {})
        self._native = native_codec(writer.expanded, bounds, texts or {})
        # What checks a body before fastavro reads it (see body_check); the current writer's native codec
        # decodes, and so checks, by itself.
        self._checks = {fp: body_check(v, bounds) for fp, v in self._writers.items()
                        if v is not writer or self._native is None}

    @property
    def fingerprint(self) -> bytes:
        return self.writer.fingerprint

    @property
    def uses_native(self) -> bool:
        """Whether the native codec reads (and, where it can, writes) the current schema."""
        return self._native is not None

    def encode(self, record: dict[str, Any]) -> bytes:
        """Single-object bytes for ``record``; a record that does not fit raises RecordMismatchError."""
        if self._native is not None:
            data: bytes | None = self._native.encode(record, self._header)
            if data is not None:
                return data
        tagged = self._tag(record)
        try:
            self._guard(tagged)
        except TypeMismatch as exc:  # fastavro would coerce it, or write what a strict reader refuses
            raise RecordMismatchError(f"record does not fit {self.writer.name}: {exc}") from None
        out = BytesIO()
        out.write(self._header)
        try:
            schemaless_writer(out, self.writer.parsed, tagged)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, AttributeError...
            raise RecordMismatchError(self._explain(record, exc)) from exc
        return out.getvalue()

    def _explain(self, record: Any, exc: Exception) -> str:
        try:
            validate(record, self.writer.parsed, raise_errors=True)
        except ValidationError as verr:
            problems = dict.fromkeys(_problem(e) for e in verr.errors[:3])  # (once per union branch tried)
            return f"record does not fit {self.writer.name}: {'; '.join(problems)}"
        except Exception:  # noqa: BLE001, S110 - the explanation must never raise; fall back below
            pass
        return f"record does not fit {self.writer.name}: {type(exc).__name__}"

    @staticmethod
    def split(data: bytes) -> tuple[bytes, memoryview]:
        """The writer fingerprint and the body; bytes without the marker raise NotSingleObjectError, naming the
        length and whether the marker was there, never the bytes: the record's own bytes are payload, and the
        message reaches a dead letter's detail header (``broker.pipeline``) and logs."""
        if len(data) < HEADER_LEN or data[:2] != MARKER:
            seen = "no marker" if data[:2] != MARKER else "the marker, but no whole fingerprint"
            raise NotSingleObjectError(
                f"not an Avro single-object record: expected marker C3 01 and an 8-byte fingerprint, "
                f"got {len(data)} bytes with {seen}"
            )
        return bytes(data[2:HEADER_LEN]), memoryview(data)[HEADER_LEN:]

    def decode(self, data: bytes) -> dict[str, Any]:
        """The record in the reader (current) schema, whichever known writer wrote it.

        A record with an array past its bound raises BoundsExceededError, with the record's value, every such
        array decoded as empty, once the rest is decoded and checked (``checked``): a record refused as corrupt or
        as not fitting is refused so whatever its arrays hold."""
        return self.decode_measured(data)[0]

    def decode_measured(self, data: bytes) -> tuple[dict[str, Any], Text | None]:
        """``decode``'s value, and what its text holds (``Text``, by the ``texts`` bounds) where the native codec
        read it; None where it did not (an older writer, or no native codec), for the caller to measure."""
        value, over, text = self._decoded(data)
        self.checked(value)
        if over:
            path, count, bound = over[0][:3]
            raise BoundsExceededError(f"{path} has {count:,} entries; at most {bound:,} are accepted", value,
                                      tuple(o[0] for o in over))
        return value, text

    def checked(self, value: dict[str, Any]) -> None:
        """What a subclass holds a decoded value to (raising a CodecError), arrays past their bound emptied."""

    def _decoded(self, data: bytes) -> tuple[dict[str, Any], list[Over] | None, Text | None]:
        if len(data) >= HEADER_LEN and data[:2] == MARKER:  # split's checks, without building the body view
            fp = data[2:HEADER_LEN]
        else:
            fp, _ = self.split(data)  # raises, naming the problem
        writer = self._writers.get(fp)
        if writer is None:
            # Not shown: eight bytes anyone may set, which may be the record's own text (a dead letter's detail).
            raise UnknownSchemaError(f"unknown writer schema fingerprint for {self.writer.name}: not a schema this "
                                     "release reads (the record's bytes 3-10; the dead letter keeps the record)")
        if writer is self.writer and self._native is not None:
            try:
                value, end, over, text = self._native.decode(data, HEADER_LEN)
            except ValueError as exc:  # the native reader names the problem, never the bytes
                raise CorruptRecordError(f"{self.writer.name} body does not decode under writer {fp.hex()}: "
                                         f"{exc}") from None
            if end != len(data):
                raise CorruptRecordError(f"{self.writer.name} record has {len(data) - end} unexpected trailing bytes")
            return value, over, Text(*text)
        try:
            end, over = self._checks[fp](data)
        except ValueError as exc:  # the checks name the problem, never the bytes
            raise CorruptRecordError(f"{self.writer.name} body does not decode under writer {fp.hex()}: "
                                     f"{exc}") from None
        except IndexError:
            raise CorruptRecordError(f"{self.writer.name} body does not decode under writer {fp.hex()}: "
                                     f"truncated value") from None
        if end > len(data):
            raise CorruptRecordError(f"{self.writer.name} body does not decode under writer {fp.hex()}: "
                                     f"truncated value")
        if end < len(data):
            raise CorruptRecordError(f"{self.writer.name} record has {len(data) - end} unexpected trailing bytes")
        # An array past its bound was checked by the walk, entries and all: fastavro reads it as empty (one 0, the
        # end of an array or map, in place of its bytes), so it never builds an entry of it.
        body = memoryview(data if over is None else _emptied(data, over))[HEADER_LEN:]
        stream = BytesIO(body)
        try:
            if writer is self.writer:
                value = schemaless_reader(stream, writer.parsed, None)
            else:
                value = schemaless_reader(stream, writer.parsed, self.writer.parsed)
        except Exception as exc:
            raise CorruptRecordError(
                f"{self.writer.name} body does not decode under writer {fp.hex()}: {type(exc).__name__}"
            ) from exc
        if stream.tell() != len(body):
            raise CorruptRecordError(
                f"{self.writer.name} record has {len(body) - stream.tell()} unexpected trailing bytes"
            )
        if not isinstance(value, dict):
            raise CorruptRecordError(f"{self.writer.name} body is not a record")
        if writer is self.writer:
            return value, over, None
        try:  # resolved: fastavro filled in defaults as the schema holds them (see resolved_value)
            settled: dict[str, Any] = self._settle(value)
        except TypeMismatch as exc:
            raise RecordMismatchError(f"{self.writer.name} record of writer {fp.hex()} does not fit once "
                                      f"resolved: {exc}") from None
        return settled, over, None


class Text(NamedTuple):
    """What a decoded value's text holds, as the native codec measured it by its ``texts`` bounds."""

    chars: int
    """The characters (code points) of its bounded strings, in all."""
    plain: bool
    """Whether every string (and map key) is printable ASCII (U+0020 to U+007E) or line feeds, and no value is
    bytes: text in which no character can hide another."""
    long: tuple[str, int, int] | None
    """The first string past its bound: its path (``payload.detainees[].surnames``; ``[]`` for an array's string),
    its characters and its bound; None when there is none."""


# An array or map past its bound, as both decoders name it: its path (``payload.detainees[].documents``), its
# entries, its bound, and the offsets of its bytes in the record. None lies within another.
Over = tuple[str, int, int, int, int]


def _emptied(data: bytes, over: list[Over]) -> bytes:
    """``data`` with each array of ``over`` (in the order of their bytes) written as an empty one."""
    parts: list[bytes] = []
    at = 0
    for _, _, _, start, end in over:
        parts += (data[at:start], b"\x00")
        at = end
    parts.append(data[at:])
    return b"".join(parts)


# What the native module must say it is (its INTERFACE) for its codec to be used: one built from an older native/
# (before setup.sh rebuilt it) would not hold arrays to their bounds, nor answer ``decode`` as this one does.
_NATIVE_INTERFACE = 4


def native_codec(expanded: dict[str, Any], bounds: Mapping[tuple[str, str], int],
                 texts: Mapping[tuple[str, str], int] | None = None) -> Any | None:
    """Puente's native codec for this writer schema, holding arrays and maps to ``bounds`` and measuring strings by
    ``texts`` (``Text``), or None (then fastavro does everything).

    The native codec (``native/``, Rust, built by ``make setup``) reads bytes directly into
    the same Python values fastavro gives, and writes the same bytes for the values it is
    sure of, several times faster. None when it is not installed (or is a build of another
    interface), when the schema uses something it does not support, or when
    ``PUENTE_NATIVE_AVRO=0`` turns it off.
    """
    if os.environ.get("PUENTE_NATIVE_AVRO", "1") == "0":
        return None
    try:
        import puente_avro
    except ImportError:
        return None
    if getattr(puente_avro, "INTERFACE", None) != _NATIVE_INTERFACE:
        return None
    try:
        return puente_avro.Codec(json.dumps(expanded), UTC, dict(bounds), dict(texts or {}))
    except ValueError:
        return None


class _Over:
    """An array past its bound, as the Python walk finds it: its steps (innermost first, added on the way out)."""

    __slots__ = ("bound", "count", "end", "start", "steps")

    def __init__(self, count: int, bound: int, start: int, end: int) -> None:
        self.count, self.bound, self.start, self.end = count, bound, start, end
        self.steps: list[str] = []

    def named(self) -> Over:
        where = "".join(s if s.startswith("[") else f".{s}" for s in reversed(self.steps)).lstrip(".")
        return (where or "the record", self.count, self.bound, self.start, self.end)


# ---- what fastavro does not check ----------------------------------------------------------------
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_NAMED = frozenset({"record", "error", "enum", "fixed"})
# A check of one value's bytes at an offset, returning the offset after it; it adds each array past its bound it
# finds to the list it is given (one list per record checked: a codec may be used by any thread).
_Check = Callable[[bytes, int, list[_Over]], int]


def body_check(writer: SchemaVersion, bounds: Mapping[tuple[str, str], int]
               ) -> Callable[[bytes], tuple[int, list[Over] | None]]:
    """A check of a single-object record's body under ``writer``, run before fastavro reads it.

    It returns the offset where the body ends and the arrays past their bound (``Over``, None when there are
    none), and raises ValueError (or IndexError, for a body cut short) naming the problem, never the bytes.
    fastavro reads an enum or union index and indexes a Python list with it, so a negative index (a zigzag
    varint such as 01) takes a symbol or branch from the end of the list instead of being refused, and it reads
    an ``int`` as a 64-bit long: a record no strict reader (Java's readInt) accepts would be decoded, and later
    written on to partners. fastavro cannot be told to refuse these (its Cython reader indexes lists directly),
    so the body is walked first, by the rules of the native decoder: every enum and union index within its list,
    every ``int`` within 32 bits, every boolean 0 or 1, no negative length. Then fastavro reads what is known to
    be well formed, resolving an older writer into the reader schema as before.

    An array or map past its entry in ``bounds`` is walked to its end checking too what the walk otherwise leaves
    to fastavro, as the native decoder checks what it skips (a string or map key not UTF-8, a date or time
    outside years 1-9999): fastavro is given it as empty (``SingleObjectCodec.decode``), so never reads it, and a
    record is refused as corrupt for a bad value there as for one anywhere else, on either path.

    Where the native codec supports the writer schema, it is the check (it refuses the same things, and names the
    same arrays; its decoded value is dropped): older writers are rare, and one Rust pass is cheaper than the
    Python walk. Otherwise (the native codec not built, as in the container image, or turned off) the walk is
    compiled once per writer, here, into closures over the schema.
    """
    native = native_codec(writer.expanded, bounds)
    if native is not None:
        decode = native.decode

        def native_check(data: bytes) -> tuple[int, list[Over] | None]:
            _, end, over, _ = decode(data, HEADER_LEN)
            return end, over

        return native_check
    walk = _BodyCompiler(writer.parsed, bounds).compile(writer.parsed)

    def check(data: bytes) -> tuple[int, list[Over] | None]:
        over: list[_Over] = []
        end = walk(data, HEADER_LEN, over)
        return end, [o.named() for o in over] or None

    return check


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The zigzag long at ``pos`` and the offset after it, read as the native decoder reads it."""
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n, shift = b & 0x7F, 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            raise ValueError("varint longer than 64 bits")
        n |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0:  # one value, one form: a last byte of 0 after others only pads the value
                raise ValueError("varint not in its shortest form")
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")
    return (n >> 1) ^ -(n & 1), pos


def _index(buf: bytes, pos: int, count: int, what: str) -> tuple[int, int]:
    """An enum's or a union's index at ``pos``, refused outside ``[0, count)``, and the offset after it."""
    i = buf[pos]
    if i < 0x80 and not i & 1:  # the usual one-byte, non-negative index, without the call
        pos += 1
        i >>= 1
    else:
        i, pos = _varint(buf, pos)
    if not 0 <= i < count:
        raise ValueError(f"{what} index out of range")
    return i, pos


def _null(buf: bytes, pos: int, over: list[_Over]) -> int:
    return pos


def _boolean(buf: bytes, pos: int, over: list[_Over]) -> int:
    if buf[pos] > 1:
        raise ValueError("boolean byte is neither 0 nor 1")
    return pos + 1


def _int(buf: bytes, pos: int, over: list[_Over]) -> int:
    n, pos = _varint(buf, pos)
    if not _INT_MIN <= n <= _INT_MAX:
        raise ValueError("int outside 32 bits")
    return pos


def _long(buf: bytes, pos: int, over: list[_Over]) -> int:
    return _varint(buf, pos)[1]


def _float(buf: bytes, pos: int, over: list[_Over]) -> int:
    return pos + 4


def _double(buf: bytes, pos: int, over: list[_Over]) -> int:
    return pos + 8


def _sized(buf: bytes, pos: int, over: list[_Over]) -> int:
    b = buf[pos]
    if b < 0x80 and not b & 1:  # the usual one-byte, non-negative length, without the call
        return pos + 1 + (b >> 1)
    n, pos = _varint(buf, pos)
    if n < 0:
        raise ValueError("negative length")
    return pos + n


_PRIMITIVE_CHECKS: dict[str, _Check] = {
    "null": _null, "boolean": _boolean, "int": _int, "long": _long, "float": _float, "double": _double,
    "bytes": _sized, "string": _sized,
}


# ---- what the native decoder refuses as it builds values, and the walk leaves to fastavro but where it skips --
def _utf8(buf: bytes, pos: int, over: list[_Over]) -> int:
    length, start = _varint(buf, pos)
    if length < 0:
        raise ValueError("negative length")
    try:
        buf[start:start + length].decode()
    except UnicodeDecodeError:
        raise ValueError("string is not UTF-8") from None
    return start + length


def _ranged(low: int, high: int, check: _Check, what: str) -> _Check:
    def ranged(buf: bytes, pos: int, over: list[_Over]) -> int:
        end = check(buf, pos, over)  # the int's own check first, as the native decoder reads it
        if not low <= _varint(buf, pos)[0] <= high:
            raise ValueError(what)
        return end

    return ranged


# A logical type's values whose date falls within years 1-9999 (as a reader's datetime and date hold them).
_MIN_DAY = date(1, 1, 1).toordinal() - date(1970, 1, 1).toordinal()
_MAX_DAY = date(9999, 12, 31).toordinal() - date(1970, 1, 1).toordinal()
_VALUE_CHECKS: dict[tuple[str, str], _Check] = {
    ("timestamp-millis", "long"): _ranged(_MIN_DAY * 86_400_000, (_MAX_DAY + 1) * 86_400_000 - 1, _long,
                                          "date outside years 1-9999"),
    ("timestamp-micros", "long"): _ranged(_MIN_DAY * 86_400_000_000, (_MAX_DAY + 1) * 86_400_000_000 - 1, _long,
                                          "date outside years 1-9999"),
    ("date", "int"): _ranged(_MIN_DAY, _MAX_DAY, _int, "date outside years 1-9999"),
}


class _BodyCompiler:
    """Compiles a parsed (fastavro) schema into a check of its binary encoding; see body_check."""

    def __init__(self, root: Any, bounds: Mapping[tuple[str, str], int] | None = None, *,
                 values: bool = False) -> None:
        """``values``: check too what the native decoder refuses as it builds values (see body_check); such a
        walk holds no array to a bound."""
        self._root = root
        self._schemas: dict[str, Any] = dict(root.get("__named_schemas", {})) if isinstance(root, dict) else {}
        self._done: dict[str, _Check] = {}
        self._bounds = {} if values else dict(bounds or {})
        self._values = values
        self._primitives = {**_PRIMITIVE_CHECKS, "string": _utf8} if values else _PRIMITIVE_CHECKS
        self._strict: _BodyCompiler | None = None  # the ``values`` walk of what lies past a bound
        self._finding: set[_Check] = set()  # the checks that may find an array past its bound

    def compile(self, schema: Any, bound: int | None = None) -> _Check:
        """The check of ``schema``; ``bound``, a record field's, holds the array or map it is (or a union's) to it."""
        if isinstance(schema, list):
            return self._found(self._union([self.compile(b, bound) for b in schema]))
        if isinstance(schema, str):
            if schema in self._primitives:
                return self._primitives[schema]
            return self._named(schema)
        kind = schema["type"]
        if not isinstance(kind, str):
            return self.compile(kind, bound)
        if kind in _NAMED:
            name = schema["name"]
            if name not in self._done:
                self._schemas.setdefault(name, schema)
                self._build(name, schema)
            return self._done[name]
        if kind in ("array", "map"):
            items = schema["items"] if kind == "array" else schema["values"]
            key = None if kind == "array" else self._primitives["string"]
            if bound is None:
                return self._found(self._blocks(self.compile(items), key))
            if self._strict is None:
                self._strict = _BodyCompiler(self._root, values=True)
            skip = _counted(self._strict.compile(items), None if key is None else _utf8)
            self._finding.add(check := self._blocks(self.compile(items), key, bound, skip))
            return check
        if self._values and (schema.get("logicalType"), kind) in _VALUE_CHECKS:
            return _VALUE_CHECKS[schema["logicalType"], kind]
        return self.compile(kind)  # a primitive with a logical type: its bytes are the primitive's

    def _found(self, check: _Check) -> _Check:
        """``check``, marked as one that may find an array past its bound when one of the checks it holds may."""
        inner = getattr(check, "holds", ())
        if any(c in self._finding for c in inner):
            self._finding.add(check)
        return check

    def _named(self, name: str) -> _Check:
        if name not in self._done:
            self._build(name, self._schemas[name])
        return self._done[name]

    def _build(self, name: str, schema: dict[str, Any]) -> None:
        kind = schema["type"]
        if kind == "enum":
            self._done[name] = self._enum(len(schema["symbols"]))
        elif kind == "fixed":
            size = int(schema["size"])
            self._done[name] = lambda buf, pos, over: pos + size
        else:  # a record: it may hold itself, so its name answers (through `cell`) before its fields compile
            cell: list[_Check] = []
            self._done[name] = forward = lambda buf, pos, over: cell[0](buf, pos, over)
            self._finding.add(forward)  # what it holds is not known yet: its steps are added, to be sure
            fields = [(f["name"], self.compile(f["type"], self._bounds.get((name, f["name"]))))
                      for f in schema["fields"]]
            cell.append(self._record([(n, c, c in self._finding) for n, c in fields]))
            if any(c in self._finding for _, c in fields):
                self._finding.add(cell[0])
            self._done[name] = cell[0]

    @staticmethod
    def _record(fields: list[tuple[str, _Check, bool]]) -> _Check:
        checks = tuple((name, f, finds) for name, f, finds in fields if f is not _null)

        def record(buf: bytes, pos: int, over: list[_Over]) -> int:
            for name, check, finds in checks:
                if finds:  # the few fields that may hold an array past its bound add their name to its path
                    mark = len(over)
                    pos = check(buf, pos, over)
                    for found in over[mark:]:
                        found.steps.append(name)
                else:
                    pos = check(buf, pos, over)
            return pos

        return record

    @staticmethod
    def _enum(count: int) -> _Check:
        def enum(buf: bytes, pos: int, over: list[_Over]) -> int:
            return _index(buf, pos, count, "enum")[1]

        return enum

    @staticmethod
    def _union(branches: list[_Check]) -> _Check:
        count = len(branches)

        def union(buf: bytes, pos: int, over: list[_Over]) -> int:
            i, pos = _index(buf, pos, count, "union")
            return branches[i](buf, pos, over)

        union.holds = tuple(branches)  # type: ignore[attr-defined]
        return union

    @staticmethod
    def _blocks(item: _Check, key: _Check | None, bound: int | None = None,
                skip: Callable[[bytes, int], tuple[int, int]] | None = None) -> _Check:
        """An array's blocks of ``item``s, or a map's (each item after a ``key``), held to ``bound`` entries: once
        their counts pass it (counted before a block's entries are read, as the native decoder counts them), the
        array is walked again from its start by ``skip`` (the strict walk: see body_check), which finds its end
        and its entries, and it is added to ``over``, what was found within it dropped (none of it is kept)."""
        most = sys.maxsize if bound is None else bound

        def blocks(buf: bytes, pos: int, over: list[_Over]) -> int:
            at, mark, seen = pos, len(over), 0
            while True:
                count, size, at = _block(buf, at)
                if count == 0:
                    break
                seen += count
                if seen > most and skip is not None:
                    del over[mark:]
                    end, entries = skip(buf, pos)
                    over.append(_Over(entries, most, pos, end))
                    return end
                start = at
                for _ in range(count):
                    if key is not None:
                        at = key(buf, at, over)
                    at = item(buf, at, over)
                if size is not None and size != at - start:
                    raise ValueError("block size is not its items' size")
            for found in over[mark:]:
                found.steps.append("[]")
            return at

        blocks.holds = (item,)  # type: ignore[attr-defined]
        return blocks


def _block(buf: bytes, pos: int) -> tuple[int, int | None, int]:
    """A block's count (0: the end of its array or map), its size in bytes when given, and the offset after."""
    count, pos = _varint(buf, pos)
    size = None
    if count < 0:
        count = -count
        size, pos = _varint(buf, pos)  # the block's size in bytes: it must be the items' own
    if count > len(buf) - pos + 1:
        raise ValueError("block longer than the record")
    return count, size, pos


def _counted(item: _Check, key: _Check | None) -> Callable[[bytes, int], tuple[int, int]]:
    """The strict walk of an array's (or a map's) blocks: the offset after them, and their entries."""
    def counted(buf: bytes, pos: int) -> tuple[int, int]:
        seen: list[_Over] = []  # the strict walk holds nothing to a bound: never added to
        entries = 0
        while True:
            count, size, pos = _block(buf, pos)
            if count == 0:
                return pos, entries
            entries += count
            start = pos
            for _ in range(count):
                if key is not None:
                    pos = key(buf, pos, seen)
                pos = item(buf, pos, seen)
            if size is not None and size != pos - start:
                raise ValueError("block size is not its items' size")

    return counted


# ---- what fastavro would coerce ------------------------------------------------------------------
class TypeMismatch(ValueError):
    """A value that is not of its field's Avro type; the message is the field's path and the type expected.

    Never the value: the message reaches dead-letter reasons and audit entries.
    """

    def __init__(self, expected: str, found: Any) -> None:
        super().__init__(expected)
        self.expected = expected
        self.found = type(found).__name__
        self.path: list[str] = []  # innermost step first: each record and array adds its own on the way out

    def within(self, step: str) -> TypeMismatch:
        self.path.append(step)
        return self

    @property
    def where(self) -> str:
        steps = "".join(s if s.startswith("[") else f".{s}" for s in reversed(self.path))
        return steps.lstrip(".") or "the record"

    def __str__(self) -> str:
        return f"{self.where}: expected {self.expected}, got {self.found}"


class IntRangeError(TypeMismatch):
    """An integer outside its Avro type's range: fastavro writes it, and a strict reader then refuses the bytes."""

    def __str__(self) -> str:
        return f"{self.where} is outside the {self.expected} range"


class ExtraKeysError(TypeMismatch):
    """A record holding keys its Avro record type does not have: an encoder would drop them unsaid, and a
    misspelt field (``handling_codee``) would then be written as its default, a looser restriction."""

    def __init__(self, expected: str, extra: int) -> None:
        super().__init__(expected, None)
        self.extra = extra

    def __str__(self) -> str:
        return f"{self.where} holds {self.extra} key(s) that {self.expected} does not have"


class MissingFieldError(TypeMismatch):
    """A field left out of a record that only a null default may fill: fastavro and the native encoder's fallback
    wrote the schema's default, and Markings' defaults (handling code H0, no caveats) are its loosest values."""

    def __init__(self) -> None:
        super().__init__("", None)

    def __str__(self) -> str:
        return f"{self.where} is missing (only a field whose default is null may be left out)"


_Guard = Callable[[Any], None]
_MISSING = object()
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = sys.float_info.max


def type_guard(schema: Any) -> _Guard:
    """A function that raises TypeMismatch where a datum does not hold exactly the types of ``schema``.

    fastavro's writer converts what it is given instead of refusing it: 2.9 becomes the int 2, the
    string "COL" the array ['C', 'O', 'L'], a dict its keys, True the int 1, Decimal("1e400")
    infinity, and a naive datetime the host's local time; an ``int`` beyond 32 bits becomes bytes a
    strict reader refuses. This walks the (parsed) schema once and returns a function that checks a
    datum, tagged as fastavro is about to write it: a list for an array, a str for a string and a
    known symbol for an enum, an int (not a bool) within range for int and long, a float or an int
    (not a bool) for float and double, a bool for boolean, a timezone-aware datetime for the
    timestamp logical types, a date for date. A field may be left out only where its default is null:
    fastavro would write any other default unsaid, and a record's defaults are not the writer's values
    (Markings defaults to handling code H0 and no caveats, the loosest). At a union, fastavro's tuple
    notation, ``(branch name, value)``, is checked against the branch it names; any other value must
    fit one of the branches.
    """
    return _GuardCompiler(schema).compile(schema)[0]


def _none(value: Any) -> None:
    if value is not None:
        raise TypeMismatch("null", value)


def _instance(types: type | tuple[type, ...], expected: str) -> _Guard:
    def check(value: Any) -> None:
        if not isinstance(value, types):
            raise TypeMismatch(expected, value)

    return check


def _integer(low: int, high: int, name: str) -> _Guard:
    def check(value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeMismatch(f"an {name}" if name[0] == "i" else f"a {name}", value)
        if not low <= value <= high:
            raise IntRangeError(f"{high.bit_length() + 1}-bit {name}", value)

    return check


def _number(value: Any) -> None:
    # A float is written as it is, NaN and infinities included: Avro carries them, the native encoder writes them,
    # and the policy withholds a position it cannot place. What is refused is a value fastavro would convert:
    # Decimal("1e400") became infinity, True became 1.0, and an int beyond a double's range cannot be one.
    if isinstance(value, float):
        return
    if not isinstance(value, int) or isinstance(value, bool) or not -_FLOAT_MAX <= value <= _FLOAT_MAX:
        raise TypeMismatch("a number", value)


def _timestamp(value: Any) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:  # a naive time would be read as local time
        raise TypeMismatch("a timezone-aware datetime", value)
    if value.year in (1, 9999):  # an offset can carry it outside years 1-9999 in UTC, where no reader can go
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise TypeMismatch("a datetime within years 1-9999 in UTC", value) from None


def _date(value: Any) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeMismatch("a date", value)


_PRIMITIVE_GUARDS: dict[str, tuple[_Guard, str]] = {
    "null": (_none, "null"),
    "boolean": (_instance(bool, "a boolean"), "a boolean"),
    "int": (_integer(_INT_MIN, _INT_MAX, "int"), "an int"),
    "long": (_integer(_LONG_MIN, _LONG_MAX, "long"), "a long"),
    "float": (_number, "a number"),
    "double": (_number, "a number"),
    "bytes": (_instance(bytes, "bytes"), "bytes"),
    "string": (_instance(str, "a string"), "a string"),
}
_LOGICAL_GUARDS: dict[str, tuple[_Guard, str]] = {
    "timestamp-millis": (_timestamp, "a timezone-aware datetime"),
    "timestamp-micros": (_timestamp, "a timezone-aware datetime"),
    "date": (_date, "a date"),
}


class _GuardCompiler:
    """Compiles a parsed (fastavro) schema into a type_guard: each node into a guard and what it expects."""

    def __init__(self, root: Any) -> None:
        self._schemas: dict[str, Any] = dict(root.get("__named_schemas", {})) if isinstance(root, dict) else {}
        self._done: dict[str, tuple[_Guard, str]] = {}

    def compile(self, schema: Any) -> tuple[_Guard, str]:
        if isinstance(schema, list):
            return self._union(schema)
        if isinstance(schema, str):
            return _PRIMITIVE_GUARDS[schema] if schema in _PRIMITIVE_GUARDS else self._named(schema)
        kind = schema["type"]
        if not isinstance(kind, str):
            return self.compile(kind)
        if kind in _NAMED:
            self._schemas.setdefault(schema["name"], schema)
            return self._named(schema["name"])
        if kind == "array":
            return self._array(self.compile(schema["items"])[0]), "a list"
        if kind == "map":
            return self._map(self.compile(schema["values"])[0]), "a dict"
        # A logical type this does not know is checked as its underlying type (fastavro then refuses or writes it).
        return _LOGICAL_GUARDS.get(schema.get("logicalType", "")) or self.compile(kind)

    def _named(self, name: str) -> tuple[_Guard, str]:
        if name in self._done:
            return self._done[name]
        schema = self._schemas[name]
        kind = schema["type"]
        if kind == "enum":
            self._done[name] = self._enum(frozenset(schema["symbols"]), f"a {name} symbol")
        elif kind == "fixed":
            self._done[name] = self._fixed(int(schema["size"]), f"{schema['size']} bytes")
        else:  # a record may hold itself: its name answers (through `cell`) before its fields compile
            cell: list[_Guard] = []
            expected = f"a {name} record"
            self._done[name] = (lambda value: cell[0](value)), expected
            fields = [(f["name"], self.compile(f["type"])[0]) for f in schema["fields"]]
            omissible = frozenset(f["name"] for f in schema["fields"] if "default" in f and f["default"] is None)
            cell.append(self._record(fields, omissible, expected))
            self._done[name] = cell[0], expected
        return self._done[name]

    @staticmethod
    def _record(fields: list[tuple[str, _Guard]], omissible: frozenset[str], expected: str) -> _Guard:
        names = frozenset(name for name, _ in fields)

        def record(value: Any) -> None:
            if not isinstance(value, dict):
                raise TypeMismatch(expected, value)
            if not names.issuperset(value):  # never named: a key may be anything
                raise ExtraKeysError(expected, len(set(value) - names))
            for name, guard in fields:
                item = value.get(name, _MISSING)
                if item is _MISSING:  # fastavro would write the default: only null says nothing
                    if name not in omissible:
                        raise MissingFieldError().within(name)
                    continue
                try:
                    guard(item)
                except TypeMismatch as exc:
                    raise exc.within(name) from None

        return record

    @staticmethod
    def _array(item: _Guard) -> _Guard:
        def array(value: Any) -> None:
            if not isinstance(value, list):  # fastavro would take a string's characters or a dict's keys
                raise TypeMismatch("a list", value)
            for i, element in enumerate(value):
                try:
                    item(element)
                except TypeMismatch as exc:
                    raise exc.within(f"[{i}]") from None

        return array

    @staticmethod
    def _map(item: _Guard) -> _Guard:
        def mapping(value: Any) -> None:
            if not isinstance(value, dict):
                raise TypeMismatch("a dict", value)
            for key, element in value.items():
                if not isinstance(key, str):
                    raise TypeMismatch("string keys", key)
                try:
                    item(element)
                except TypeMismatch as exc:
                    raise exc.within("[]") from None  # the key is data: never in the message

        return mapping

    @staticmethod
    def _enum(symbols: frozenset[str], expected: str) -> tuple[_Guard, str]:
        def enum(value: Any) -> None:
            if not isinstance(value, str) or value not in symbols:
                raise TypeMismatch(expected, value)

        return enum, expected

    @staticmethod
    def _fixed(size: int, expected: str) -> tuple[_Guard, str]:
        def fixed(value: Any) -> None:
            if not isinstance(value, bytes) or len(value) != size:
                raise TypeMismatch(expected, value)

        return fixed, expected

    def _union(self, branches: list[Any]) -> tuple[_Guard, str]:
        by_name = {_branch_name(b): self.compile(b) for b in branches}  # as fastavro's tuple notation names them
        expected = " or ".join(want for _, want in by_name.values())
        nullable = "null" in by_name
        others = [guard for name, (guard, _) in by_name.items() if name != "null"]

        def union(value: Any) -> None:
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
                named = by_name.get(value[0])
                if named is None:
                    raise TypeMismatch(expected, value)
                named[0](value[1])
            elif value is None and nullable:
                return
            elif len(others) == 1:
                others[0](value)  # its own error names what is wrong inside
            elif not any(_fits(guard, value) for guard in others):
                raise TypeMismatch(expected, value)

        return union, expected


def _branch_name(branch: Any) -> str:
    if isinstance(branch, str):
        return branch
    kind = branch["type"]
    return str(branch["name"]) if kind in _NAMED else str(kind)


def _fits(guard: _Guard, value: Any) -> bool:
    try:
        guard(value)
    except TypeMismatch:
        return False
    return True


# ---- what fastavro leaves undone when it resolves an older writer's record -----------------------
_Convert = Callable[[Any], Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1).toordinal()


def resolved_value(schema: Any) -> _Convert:
    """A function that makes fastavro's resolution of an older writer's record into ``schema`` a value of its own.

    Where the older writer lacks a field, fastavro fills in the reader field's default as the parsed schema
    holds it: the same list or dict in every record (a change to one record showed in the next, and in the
    schema), and in its JSON form, not read by its logical type (an int where timestamp-millis gives a
    datetime). The function copies the value's dicts and lists, reads each logical-typed value still in its
    underlying type as its logical type says (a default, written as the Avro specification writes one), then
    checks the whole with ``schema``'s type_guard, raising TypeMismatch. Run only for older writers' records
    (about 35 us more for an alert, most of it the guard).
    """
    convert = _ConvertCompiler(schema).compile(schema) or _identity
    guard = type_guard(schema)

    def settle(value: Any) -> Any:
        value = convert(_fresh(value))
        guard(value)
        return value

    return settle


def _fresh(value: Any) -> Any:
    """A copy of a decoded value's dicts and lists, at every depth: what else a reader gives (str, bytes, numbers,
    datetimes, dates, None) cannot change. A fifth of copy.deepcopy's cost (it keeps a memo, for cycles)."""
    if isinstance(value, dict):
        return {key: _fresh(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fresh(item) for item in value]
    return value


def default_mismatch(root: Any, field: dict[str, Any]) -> TypeMismatch | None:
    """What is wrong with ``field``'s default as a reader of ``root`` fills it in (see resolved_value), or None."""
    try:
        value = (_ConvertCompiler(root).compile(field["type"]) or _identity)(_fresh(field["default"]))
        _GuardCompiler(root).compile(field["type"])[0](value)
    except TypeMismatch as exc:
        return exc.within("default")
    return None


def _timestamp_reader(micros_per_unit: int) -> _Convert:
    def read(value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return value  # already read by its logical type, or not a value of it: the guard says which
        try:
            return _EPOCH + timedelta(microseconds=value * micros_per_unit)
        except OverflowError:
            raise TypeMismatch("a datetime within years 1-9999 in UTC", value) from None

    return read


def _date_reader(value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    try:
        return date.fromordinal(_EPOCH_DAY + value)
    except (OverflowError, ValueError):
        raise TypeMismatch("a date within years 1-9999", value) from None


_LOGICAL_READS: dict[str, _Convert] = {
    "timestamp-millis": _timestamp_reader(1000), "timestamp-micros": _timestamp_reader(1), "date": _date_reader,
}


class _ConvertCompiler:
    """Compiles a parsed schema into resolved_value's logical-type reading (in place, on its copy): None where
    nothing below a node has a logical type."""

    def __init__(self, root: Any) -> None:
        self._schemas: dict[str, Any] = dict(root.get("__named_schemas", {})) if isinstance(root, dict) else {}
        self._done: dict[str, _Convert | None] = {}

    def compile(self, schema: Any) -> _Convert | None:
        if isinstance(schema, list):
            return self._union(schema)
        if isinstance(schema, str):
            return self._named(schema) if schema in self._schemas else None
        kind = schema["type"]
        if not isinstance(kind, str):
            return self.compile(kind)
        if kind in _NAMED:
            self._schemas.setdefault(schema["name"], schema)
            return self._named(schema["name"])
        if kind in ("array", "map"):
            item = self.compile(schema["items"] if kind == "array" else schema["values"])
            return None if item is None else self._each(item)
        return _LOGICAL_READS.get(schema.get("logicalType", ""))

    def _named(self, name: str) -> _Convert | None:
        if name in self._done:
            return self._done[name]
        schema = self._schemas[name]
        if schema["type"] not in ("record", "error"):
            self._done[name] = None
            return None
        cell: list[_Convert] = []  # a record that holds itself reads through its name until its fields compile
        self._done[name] = lambda value: cell[0](value)
        fields = [(f["name"], c) for f in schema["fields"] if (c := self.compile(f["type"])) is not None]
        record = self._record(fields) if fields else None
        cell.append(record or _identity)
        self._done[name] = record
        return record

    @staticmethod
    def _record(fields: list[tuple[str, _Convert]]) -> _Convert:
        def record(value: Any) -> Any:
            if isinstance(value, dict):
                for name, convert in fields:
                    if name in value:
                        try:
                            value[name] = convert(value[name])
                        except TypeMismatch as exc:
                            raise exc.within(name) from None
            return value

        return record

    @staticmethod
    def _each(item: _Convert) -> _Convert:
        def each(value: Any) -> Any:
            if isinstance(value, list):
                for i, element in enumerate(value):
                    try:
                        value[i] = item(element)
                    except TypeMismatch as exc:
                        raise exc.within(f"[{i}]") from None
            elif isinstance(value, dict):
                for key, element in value.items():
                    try:
                        value[key] = item(element)
                    except TypeMismatch as exc:
                        raise exc.within("[]") from None  # the key is data: never in the message
            return value

        return each

    def _union(self, branches: list[Any]) -> _Convert | None:
        """The branch a resolved value took, told by its Python type: an int is the one logical-typed branch's
        (unless an int or long branch could have it), a dict the record whose fields are its keys, else a map's,
        a list the array's."""
        converts = [self.compile(b) for b in branches]
        if all(c is None for c in converts):
            return None
        logical: list[_Convert | None] = []
        records: dict[frozenset[str], _Convert | None] = {}
        plain_int, array, mapping = False, None, None
        for branch, convert in zip(branches, converts, strict=True):
            node = self._schemas.get(branch, branch) if isinstance(branch, str) else branch
            kind = node if isinstance(node, str) else node["type"]
            if isinstance(node, dict) and node.get("logicalType") in _LOGICAL_READS:
                logical.append(convert)
            elif kind in ("int", "long"):
                plain_int = True
            elif kind in ("record", "error"):
                names = frozenset(f["name"] for f in node["fields"])
                records[names] = None if names in records else convert  # two alike: no telling them apart
            elif kind == "array":
                array = convert
            elif kind == "map":
                mapping = convert
        by_int = logical[0] if len(logical) == 1 and not plain_int else None

        def union(value: Any) -> Any:
            if isinstance(value, int) and not isinstance(value, bool):
                convert = by_int
            elif isinstance(value, dict):
                convert = records.get(frozenset(value), mapping)
            elif isinstance(value, list):
                convert = array
            else:
                convert = None
            return value if convert is None else convert(value)

        return union


_Tagger = Callable[[Any], Any]
_NAMED_RECORD = "record"


def _identity(value: Any) -> Any:
    return value


def union_tagger(schema: Any) -> _Tagger:
    """A function that marks, in a copy of a datum, which branch of each union holding records it takes.

    fastavro picks a union branch by validating the datum against each branch in turn,
    and for a record branch that is a full recursive validation: it was most of the cost
    of encoding an alert. Its tuple notation, ``(type name, value)``, names the branch
    instead. This walks the schema once and returns a function that rewrites only the
    paths that lead to such unions: ``[null, R]`` takes R for any non-null value; a union
    of several records takes the one whose required fields the value has and whose fields
    cover the value's keys. A value that matches no branch is left as it is, so fastavro's
    own check reports it.
    """
    return _compile(schema) or _identity


def _compile(schema: Any) -> _Tagger | None:
    """The rewrite for one schema node, or None where nothing below it needs one."""
    if isinstance(schema, list):
        return _compile_union(schema)
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind == _NAMED_RECORD:
        fields = [(f["name"], t) for f in schema["fields"] if (t := _compile(f["type"])) is not None]
        if not fields:
            return None

        def record(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            out = dict(value)
            for name, tag in fields:
                if name in out:
                    out[name] = tag(out[name])
            return out

        return record
    if kind == "array":
        item = _compile(schema["items"])
        if item is None:
            return None
        return lambda value: [item(v) for v in value] if isinstance(value, list) else value
    if kind == "map":
        val = _compile(schema["values"])
        if val is None:
            return None
        return lambda value: {k: val(v) for k, v in value.items()} if isinstance(value, dict) else value
    return None


def _compile_union(branches: list[Any]) -> _Tagger | None:
    records = [b for b in branches if isinstance(b, dict) and b.get("type") == _NAMED_RECORD]
    if not records:
        return None
    others = [b for b in branches if b not in records]
    if others not in ([], ["null"]):
        return None  # records beside other non-null types: leave the choice to fastavro
    choices = []
    for branch in records:
        names = frozenset(f["name"] for f in branch["fields"])
        required = frozenset(f["name"] for f in branch["fields"] if "default" not in f)
        choices.append((branch["name"], names, required, _compile(branch) or _identity))

    def union(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        keys = value.keys()
        for name, names, required, inner in choices:
            if required <= keys and keys <= names:
                return (name, inner(value))
        return value

    return union


def _problem(error: Any) -> str:
    """One validation error as its field path and the type found, never the offending value.

    Built from fastavro's error fields, not its message: a value's text would pass for part of the
    message (a value holding "; " or " of type " did, into dead-letter details and audit reasons).
    """
    field = str(getattr(error, "field", "") or "(the record)")[:200]
    datum = getattr(error, "datum", None)
    return f"{field} is missing" if datum is None else f"{field} has type {type(datum).__name__}"
