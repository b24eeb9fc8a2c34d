"""Load the Avro schemas kept in this folder: the current ones and every released version."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import load_schema

from puente.errors import SchemaError
from schemas._fingerprint import fingerprint

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"
RELEASE_DIR = Path(__file__).resolve().parent / "releases"
ALERT = "puente.Alert"


@dataclass(frozen=True)
class SchemaVersion:
    """One parsed schema: its name, its release label, its fingerprint and the expanded JSON."""

    name: str
    label: str
    fingerprint: bytes
    expanded: dict[str, Any] = field(repr=False)
    parsed: Any = field(repr=False, compare=False)


def _wrap(path: Path, exc: Exception) -> SchemaError:
    return SchemaError(f"{path.name}: {type(exc).__name__}: {exc}")


def load_expanded(path: Path) -> dict[str, Any]:
    """Load one .avsc, resolving named types from sibling files, as one self-contained schema."""
    try:
        schema = load_schema(str(path), _write_hint=False)
    except FileNotFoundError as exc:
        raise SchemaError(f"{path.name}: refers to a named type with no file: {exc.filename}") from exc
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise _wrap(path, exc) from exc
    except Exception as exc:  # fastavro raises its own SchemaParseException and friends
        raise _wrap(path, exc) from exc
    if not isinstance(schema, dict):
        raise SchemaError(f"{path.name}: expected a named record schema")
    return schema


def version_from(expanded: dict[str, Any], label: str) -> SchemaVersion:
    """Parse an expanded schema into a :class:`SchemaVersion`."""
    try:
        parsed = parse_schema(expanded)
    except Exception as exc:
        raise SchemaError(f"{label}: {type(exc).__name__}: {exc}") from exc
    name = expanded.get("namespace", "") + "." + expanded["name"] if "." not in expanded["name"] else expanded["name"]
    return SchemaVersion(name.lstrip("."), label, fingerprint(parsed), expanded, parsed)


@cache
def current(name: str = ALERT) -> SchemaVersion:
    """The current (development) version of a schema, from ``schemas/avro``."""
    return version_from(load_expanded(SCHEMA_DIR / f"{name}.avsc"), "current")


@cache
def releases(name: str = ALERT) -> tuple[SchemaVersion, ...]:
    """Every released version of a schema, oldest first (``schemas/releases/vN/<name>.avsc``)."""
    found = []
    for folder in sorted(RELEASE_DIR.glob("v*"), key=lambda p: int(p.name[1:])):
        path = folder / f"{name}.avsc"
        if path.exists():
            try:
                expanded = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise _wrap(path, exc) from exc
            found.append(version_from(expanded, folder.name))
    return tuple(found)


def known_writers(name: str = ALERT) -> tuple[SchemaVersion, ...]:
    """Every version a reader may meet: the releases, then the current one if it differs."""
    out = list(releases(name))
    cur = current(name)
    if all(v.fingerprint != cur.fingerprint for v in out):
        out.append(cur)
    return tuple(out)
