"""Encode and decode Avro single-object records. Pure: bytes and values in, bytes and values out."""

from __future__ import annotations

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

    @property
    def fingerprint(self) -> bytes:
        return self.writer.fingerprint

    def knows(self, fp: bytes) -> bool:
        return fp in self._writers

    def encode(self, record: dict[str, Any]) -> bytes:
        """Single-object bytes for ``record``; a record that does not fit raises RecordMismatchError."""
        out = BytesIO()
        out.write(self._header)
        try:
            schemaless_writer(out, self.writer.parsed, record)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, AttributeError...
            raise RecordMismatchError(self._explain(record, exc)) from exc
        return out.getvalue()

    def _explain(self, record: Any, exc: Exception) -> str:
        try:
            validate(record, self.writer.parsed, raise_errors=True)
        except ValidationError as verr:
            problems = "; ".join(str(e) for e in verr.errors[:3])
            return f"record does not fit {self.writer.name}: {_scrub(problems)}"
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
        fp, body = self.split(data)
        writer = self._writers.get(fp)
        if writer is None:
            raise UnknownSchemaError(f"unknown writer schema fingerprint {fp.hex()} for {self.writer.name}")
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


def _scrub(text: str) -> str:
    """Keep field paths and types from a validation message, never the offending value."""
    # fastavro formats errors as "<path> is <value> of type <type> expected <schema>"; drop the value.
    out = []
    for part in text.split("; "):
        head, sep, rest = part.partition(" is ")
        if sep and " of type " in rest:
            out.append(f"{head} has type {rest.split(' of type ', 1)[1].split(' ', 1)[0]}")
        else:
            out.append(head[:200])
    return "; ".join(out)
