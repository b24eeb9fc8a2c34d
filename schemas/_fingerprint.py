"""Avro single-object framing: the two-byte marker and the CRC-64-AVRO fingerprint."""

from __future__ import annotations

from typing import Any

from fastavro.schema import to_parsing_canonical_form

MARKER = b"\xc3\x01"
HEADER_LEN = len(MARKER) + 8

_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    """The Rabin fingerprint the Avro specification calls CRC-64-AVRO."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint(schema: Any) -> bytes:
    """The 8-byte little-endian fingerprint of a schema's Parsing Canonical Form.

    Canonical form keeps what the binary encoding depends on and drops the rest, logicalType,
    precision and scale included: two schemas that read the same bytes as different values
    (timestamp-millis and timestamp-micros) share a fingerprint. It stays the Avro-standard one,
    so other readers can check it; the registry refuses two such versions (``check_distinct``),
    and the compatibility check reports the change.
    """
    canonical = to_parsing_canonical_form(schema)
    return crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")


def header(fp: bytes) -> bytes:
    """The single-object header for a writer fingerprint."""
    return MARKER + fp
