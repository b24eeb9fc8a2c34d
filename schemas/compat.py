"""Compatibility between schema versions, checked by resolving real records both ways.

Backward: a reader on the newer schema reads data written with the older one.
Forward: a reader on the older schema reads data written with the newer one.
fastavro has no static checker, so records generated from each writer schema
(every union branch and enum symbol appears over enough samples) are written
and read back under the other schema; any resolution failure is a finding.
"""

from __future__ import annotations

from io import BytesIO

from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from schemas._registry import SchemaVersion


def _resolves(writer: SchemaVersion, reader: SchemaVersion, samples: int, seed_note: str) -> str | None:
    for i, record in enumerate(generate_many(writer.parsed, samples)):
        out = BytesIO()
        schemaless_writer(out, writer.parsed, record)
        out.seek(0)
        try:
            schemaless_reader(out, writer.parsed, reader.parsed)
        except Exception as exc:  # noqa: BLE001 - every resolution failure is a finding
            return f"{seed_note}: sample {i} fails: {type(exc).__name__}: {exc}"
    return None


def check_compatible(old: SchemaVersion, new: SchemaVersion, samples: int = 300) -> list[str]:
    """Problems found resolving ``old`` and ``new`` against each other; empty when compatible both ways."""
    problems = []
    backward = _resolves(old, new, samples, f"backward ({new.label} reading {old.label})")
    if backward:
        problems.append(backward)
    forward = _resolves(new, old, samples, f"forward ({old.label} reading {new.label})")
    if forward:
        problems.append(forward)
    return problems
