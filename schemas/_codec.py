"""Encode and decode Avro single-object records. Pure: bytes and values in, bytes and values out."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from puente.errors import (
    CorruptRecordError,
    NotSingleObjectError,
    RecordMismatchError,
    UnknownSchemaError,
)
from schemas._fingerprint import HEADER_LEN, MARKER, header
from schemas._registry import SchemaVersion


class SingleObjectCodec:
    """Writes with one schema and reads any known writer schema into the reader schema.

    Every record carries the writer's fingerprint, so no registry server is
    needed: a reader resolves old and new writers into the schema it was
    built with, and refuses fingerprints it does not know.
    """

    def __init__(self, writer: SchemaVersion, known: tuple[SchemaVersion, ...] = ()) -> None:
        self.writer = writer
        self._header = header(writer.fingerprint)
        self._writers = {v.fingerprint: v for v in known}
        self._writers[writer.fingerprint] = writer
        self._tag = union_tagger(writer.parsed)
        self._native = native_codec(writer.expanded)

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
        out = BytesIO()
        out.write(self._header)
        try:
            schemaless_writer(out, self.writer.parsed, self._tag(record))
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
        """The writer fingerprint and the body; bytes without the marker raise NotSingleObjectError."""
        if len(data) < HEADER_LEN or data[:2] != MARKER:
            raise NotSingleObjectError(
                f"not an Avro single-object record: expected marker C3 01 and an 8-byte fingerprint, "
                f"got {len(data)} bytes starting {data[:2].hex() or 'nothing'}"
            )
        return bytes(data[2:HEADER_LEN]), memoryview(data)[HEADER_LEN:]

    def decode(self, data: bytes) -> dict[str, Any]:
        """The record in the reader (current) schema, whichever known writer wrote it."""
        if len(data) >= HEADER_LEN and data[:2] == MARKER:  # split's checks, without building the body view
            fp = data[2:HEADER_LEN]
        else:
            fp, _ = self.split(data)  # raises, naming the problem
        writer = self._writers.get(fp)
        if writer is None:
            raise UnknownSchemaError(f"unknown writer schema fingerprint {bytes(fp).hex()} for {self.writer.name}")
        if writer is self.writer and self._native is not None:
            try:
                value, end = self._native.decode(data, HEADER_LEN)
            except ValueError as exc:  # the native reader names the problem, never the bytes
                raise CorruptRecordError(f"{self.writer.name} body does not decode under writer {fp.hex()}: "
                                         f"{exc}") from None
            if end != len(data):
                raise CorruptRecordError(f"{self.writer.name} record has {len(data) - end} unexpected trailing bytes")
            return value  # type: ignore[no-any-return]
        body = memoryview(data)[HEADER_LEN:]
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
        return value


def native_codec(expanded: dict[str, Any]) -> Any | None:
    """Puente's native codec for this writer schema, or None (then fastavro does everything).

    The native codec (``native/``, Rust, built by ``make setup``) reads bytes directly into
    the same Python values fastavro gives, and writes the same bytes for the values it is
    sure of, several times faster. None when it is not installed, when the schema uses
    something it does not support, or when ``PUENTE_NATIVE_AVRO=0`` turns it off.
    """
    if os.environ.get("PUENTE_NATIVE_AVRO", "1") == "0":
        return None
    try:
        import puente_avro
    except ImportError:
        return None
    try:
        return puente_avro.Codec(json.dumps(expanded), UTC)
    except ValueError:
        return None


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
