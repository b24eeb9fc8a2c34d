"""Load the Avro schemas kept in this folder: the current ones and every released version."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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
_RELEASE = re.compile(r"v([1-9][0-9]*)")  # one name per number: v01 is not a second v1


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


OLDER_RECORDS = "puente.older_records"
"""The attribute an added field names, beside a default that states something (any but null), with why that
value is true of every record written before the field existed: a reader fills it in for them all
(``schemas.compat``). Prose, as a ``doc`` is: rewording it changes no meaning (``check_distinct``)."""
_PROSE = frozenset({"doc", OLDER_RECORDS})


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, dict):  # a default is data, not schema: kept whole, even a record's "doc" key
        return {k: v if k == "default" else _without_docs(v) for k, v in schema.items() if k not in _PROSE}
    if isinstance(schema, list):
        return [_without_docs(v) for v in schema]
    return schema


def check_distinct(versions: Iterable[SchemaVersion]) -> None:
    """Raise SchemaError where two versions share a fingerprint but differ in more than their ``doc`` strings.

    The fingerprint hashes Avro's canonical form, which drops logicalType, precision, scale,
    defaults and aliases: a next version that only turns timestamp-millis into timestamp-micros
    keeps the fingerprint, and a reader would take the other's records for its own and misread them.
    """
    seen: dict[bytes, SchemaVersion] = {}
    for version in versions:
        first = seen.setdefault(version.fingerprint, version)
        if first is not version and _without_docs(first.expanded) != _without_docs(version.expanded):
            raise SchemaError(
                f"{version.name}: {first.label} and {version.label} have the same fingerprint "
                f"{version.fingerprint.hex()} but differ beyond their docs (a logicalType, precision, scale, default "
                f"or alias, which canonical form drops); a reader could not tell their records apart"
            )


@cache
def current(name: str = ALERT) -> SchemaVersion:
    """The current (development) version of a schema, from ``schemas/avro``."""
    return version_from(load_expanded(SCHEMA_DIR / f"{name}.avsc"), "current")


@cache
def releases(name: str = ALERT) -> tuple[SchemaVersion, ...]:
    """Every released version of a schema, oldest first (``schemas/releases/vN/<name>.avsc``)."""
    found = []
    for folder in _release_folders():
        path = folder / f"{name}.avsc"
        if path.exists():
            try:
                expanded = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise _wrap(path, exc) from exc
            found.append(version_from(expanded, folder.name))
    check_distinct(found)
    return tuple(found)


def _release_folders() -> list[Path]:
    """The release folders, oldest first; SchemaError for any other ``v*`` entry (``v3-draft``, ``v01``, a file).

    An entry that only looks like a release is refused rather than skipped: readers would start without a
    version someone meant to release, or with one that was not."""
    numbered = []
    for entry in RELEASE_DIR.glob("v*"):
        match = _RELEASE.fullmatch(entry.name)
        if match is None or not entry.is_dir():
            raise SchemaError(f"{RELEASE_DIR.name}/{entry.name[:60]!r} is not a release folder: releases are "
                              f"folders named v1, v2, ... (v and a number without leading zeros)")
        numbered.append((int(match[1]), entry))
    return [entry for _, entry in sorted(numbered)]


def known_writers(name: str = ALERT) -> tuple[SchemaVersion, ...]:
    """Every version a reader may meet: the releases, then the current one if it differs."""
    out = list(releases(name))
    cur = current(name)
    check_distinct((*out, cur))
    if all(v.fingerprint != cur.fingerprint for v in out):
        out.append(cur)
    return tuple(out)
