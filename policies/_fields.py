"""The alert's fields, per alert type, as paths that field rules may name.

Derived from the expanded Avro schema, so a rule can only name a field the
schema has. ``payload`` is the branch of the union that ``alert_type``
selects; items of an array are addressed with ``[]``, e.g.
``payload.detainees[].documents[].number``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from puente.errors import PolicyError

PRIMITIVES = frozenset({"string", "double", "float", "int", "long", "boolean", "bytes"})
# Fields of the alert that carry its content; the rest (ids, times, markings) is its envelope.
CONTENT_ROOTS = ("location", "summary", "payload")


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field of the alert: its path, kind and whether a view may empty it."""

    path: str
    kind: str  # record, array, enum, string, double, int, long, boolean, date, timestamp
    nullable: bool
    items: str | None = None  # kind of an array's items
    symbols: tuple[str, ...] = ()  # an enum's symbols

    @property
    def droppable(self) -> bool:
        """A dropped field becomes None, or [] for an array; a required field cannot be emptied."""
        return self.nullable or self.kind == "array"

    @property
    def textual(self) -> bool:
        return self.kind == "string" or (self.kind == "array" and self.items == "string")


def parent_path(path: str) -> str | None:
    """The field that holds ``path``: ``a.b[].c`` -> ``a.b``; a root field has none."""
    head, sep, _ = path.rpartition(".")
    if not sep:
        return None
    return head[:-2] if head.endswith("[]") else head


class _Walker:
    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}
        self.out: dict[str, FieldInfo] = {}

    def collect(self, schema: Any) -> None:
        """Register every named type first: a later field may refer to one defined inside another branch."""
        if isinstance(schema, list):
            for branch in schema:
                self.collect(branch)
        elif isinstance(schema, dict):
            if schema.get("type") in ("record", "enum", "fixed"):
                self.named[schema["name"]] = schema
                self.named[schema["name"].rsplit(".", 1)[-1]] = schema
            for f in schema.get("fields", ()):
                self.collect(f["type"])
            for key in ("items", "values", "type"):
                if isinstance(schema.get(key), (dict, list)):
                    self.collect(schema[key])

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES and schema != "null":
            found = self.named.get(schema) or self.named.get(schema.rsplit(".", 1)[-1])
            if found is None:
                raise PolicyError(f"alert schema refers to unknown type {schema!r}")
            return found
        return schema

    def kind(self, schema: Any) -> tuple[str, Any]:
        schema = self.resolve(schema)
        if isinstance(schema, str):
            return schema, schema
        if isinstance(schema, dict):
            logical = schema.get("logicalType")
            if logical == "date":
                return "date", schema
            if logical in ("timestamp-millis", "timestamp-micros"):
                return "timestamp", schema
            if schema["type"] in ("record", "enum", "array"):
                return str(schema["type"]), schema
            return self.kind(schema["type"])
        raise PolicyError(f"alert schema has a type the policy cannot follow: {schema!r}")

    def field(self, path: str, schema: Any) -> None:
        nullable = False
        if isinstance(schema, list):
            branches = [b for b in schema if b != "null"]
            if len(branches) != 1:
                raise PolicyError(f"alert schema field {path} is a union the policy cannot follow")
            nullable, schema = len(branches) != len(schema), branches[0]
        kind, resolved = self.kind(schema)
        if kind == "array":
            item_kind, item = self.kind(resolved["items"])
            self.out[path] = FieldInfo(path, "array", nullable, items=item_kind)
            if item_kind == "record":
                self.record(path + "[]", item)
            return
        symbols = tuple(resolved.get("symbols", ())) if kind == "enum" else ()
        self.out[path] = FieldInfo(path, kind, nullable, symbols=symbols)
        if kind == "record":
            self.record(path, resolved)

    def record(self, prefix: str, schema: Mapping[str, Any]) -> None:
        for f in schema["fields"]:
            self.field(f"{prefix}.{f['name']}" if prefix else f["name"], f["type"])


def alert_fields(expanded: Mapping[str, Any], payload_types: Mapping[str, str]) -> dict[str, dict[str, FieldInfo]]:
    """For each alert type, every field path of an alert of that type and what it holds."""
    out: dict[str, dict[str, FieldInfo]] = {}
    for alert_type, branch_name in payload_types.items():
        walker = _Walker()
        walker.collect(dict(expanded))
        for f in expanded["fields"]:
            if f["name"] == "payload":
                walker.field("payload", walker.resolve(branch_name))
            else:
                walker.field(f["name"], f["type"])
        out[alert_type] = walker.out
    return out


def children(fields: Mapping[str, FieldInfo]) -> dict[str, list[str]]:
    """Each field's direct sub-fields, in schema order."""
    out: dict[str, list[str]] = {}
    for path in fields:
        parent = parent_path(path)
        if parent is not None:
            out.setdefault(parent, []).append(path)
    return out
