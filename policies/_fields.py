"""The alert's fields, per alert type, as paths that field rules may name.

Derived from the expanded Avro schema, so a rule can only name a field the
schema has. ``payload`` is the branch of the union that ``alert_type``
selects; items of an array are addressed with ``[]``, e.g.
``payload.detainees[].documents[].number``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import schemas
from puente.errors import PolicyError, SchemaError

PRIMITIVES = frozenset({"string", "double", "float", "int", "long", "boolean", "bytes"})
# The only fields the envelope rule (vocabulary.yaml) may keep, for every partner under every agreement:
# which alert and version it is, its markings but the originator's unit, and what its lifecycle does. An
# allow-list: any other field, a new one of a later schema too, even under ``markings``, reaches a partner
# only when an agreement names it (a deny-list of content let ``agency`` or ``occurred_at`` go to all).
ENVELOPE_FIELDS = frozenset({
    "alert_id", "alert_type", "version",
    "markings.classification", "markings.releasable_to", "markings.caveats", "markings.handling_code",
    "markings.handling_text", "markings.originator_consent", "markings.source_reliability",
    "markings.information_credibility", "markings.originator.agency", "markings.originator.country",
    "markings.review_at", "markings.expires_at",
    "lifecycle.action", "lifecycle.reason", "lifecycle.partners",
})  # fmt: skip
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a required field the view drops holds instead, so that the view still fits the schema:
# the value that says least. (A default such as handling_code H0 or country PAN would say
# something that may be false; an empty string or the epoch says nothing.)
_EMPTY: dict[str, Any] = {
    "string": "", "bytes": b"", "int": 0, "long": 0, "float": 0.0, "double": 0.0, "boolean": False,
    "timestamp": EPOCH, "date": date(1970, 1, 1),
}  # fmt: skip
_NO_EMPTY = object()


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field of the alert: its path, kind and whether a view may empty it."""

    path: str
    kind: str  # record, array, enum, string, double, int, long, boolean, date, timestamp
    nullable: bool
    items: str | None = None  # kind of an array's items
    symbols: tuple[str, ...] = ()  # an enum's symbols
    enum_default: str | None = None  # an enum's schema default, the symbol for "not known"

    @property
    def droppable(self) -> bool:
        """Whether a view can drop the field's value and still fit the schema (see ``empty``).

        A required record cannot be dropped as a whole (its fields can), nor can a
        required enum without a schema default: no symbol of it means "nothing".
        """
        return self._empty() is not _NO_EMPTY

    def empty(self) -> Any:
        """The value a dropped field takes: None when nullable, a new [] for an array, else the
        schema-valid value that says nothing ("", 0, the epoch, an enum's default).

        Raises PolicyError for a field that has none; loading refuses a policy that would drop one.
        """
        value = self._empty()
        if value is _NO_EMPTY:
            raise PolicyError(f"{self.path} is required by the schema and has no empty value")
        return value

    def _empty(self) -> Any:
        if self.nullable:
            return None
        if self.kind == "array":
            return []  # a new list each time: a view must not share a mutable value with another
        if self.kind == "enum":
            return _NO_EMPTY if self.enum_default is None else self.enum_default
        return _EMPTY.get(self.kind, _NO_EMPTY)

    @property
    def textual(self) -> bool:
        return self.kind == "string" or (self.kind == "array" and self.items == "string")


def within(path: str, outer: str) -> bool:
    """``path`` is ``outer`` or a field inside it: ``a.b`` and ``a[].b`` are inside ``a``, ``ab`` is not. What a
    change or rule of ``outer`` (a field dropped, kept, masked) reaches: every reader of a view's changes asks
    this one question the one way."""
    return path == outer or path.startswith((outer + ".", outer + "[]"))


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
        default = resolved.get("default") if kind == "enum" else None
        default = default if default in symbols else None
        self.out[path] = FieldInfo(path, kind, nullable, symbols=symbols, enum_default=default)
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


@cache
def schema_fields() -> Mapping[str, Mapping[str, FieldInfo]]:
    """The current alert schema's field paths per alert type (the schema is fixed for a process)."""
    try:
        current = schemas.current(schemas.ALERT)
    except SchemaError as exc:
        raise PolicyError(f"cannot read the alert schema the policy refers to: {exc}") from exc
    return alert_fields(current.expanded, schemas.PAYLOAD_TYPE)


@cache
def schema_releases() -> Mapping[str, Mapping[str, frozenset[str]]]:
    """Each released alert schema's field paths per alert type, by release label (``v1``, ``v2``...):
    what a policy's ``reviewed_schema`` may name."""
    try:
        found = schemas.releases(schemas.ALERT)
    except SchemaError as exc:
        raise PolicyError(f"cannot read the alert schema releases the policy refers to: {exc}") from exc
    return {v.label: {t: frozenset(f) for t, f in alert_fields(v.expanded, schemas.PAYLOAD_TYPE).items()}
            for v in found}
