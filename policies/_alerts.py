"""Alerts written by people (example files, suite fixtures) into the value the codec would decode."""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import schemas
from policies._fields import FieldInfo, schema_fields
from puente.errors import CodecError, PolicyError
from puente.strict import DuplicateKey, TooLarge, no_constants, read_bounded, unique_keys

_INDEX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")
MAX_ALERT_BYTES = 1024 * 1024  # an alert is a few KB; its largest field, remarks, 2,000 characters
MAX_DEPTH = 32  # an alert nests six levels; deeper is not an alert (and Python's walkers recurse)
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class _Refused(ValueError):
    pass


# A number refused is named by its size, never quoted: its digits are the alert's (a document number, a phone).
def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number is too large for a double (beyond about 1.8e308)")
    return value


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > 20:  # an Avro long has 19 digits
        raise _Refused(f"a number of {digits} digits is too large (an Avro long has at most 19)")
    return int(text)


def read_alert_json(path: Path, label: str | None = None) -> dict[str, Any]:
    """A JSON alert file, read strictly; every problem is a one-line PolicyError naming the file.

    ``json.loads`` alone keeps the last of two equal keys, reads NaN and
    Infinity, turns 1e999 into infinity and recurses once per level of nesting;
    here those are refused, and so are files over a MiB and nesting deeper
    than an alert's.
    """
    label = label or str(path)
    try:
        raw = read_bounded(path, MAX_ALERT_BYTES)
    except TooLarge:
        raise PolicyError(f"{label}: larger than {MAX_ALERT_BYTES // 1024} KiB; not an alert") from None
    except OSError as exc:
        raise PolicyError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{label}: not UTF-8 text (byte {exc.start + 1})") from None
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):  # strings skipped whole: a bracket in a string is text
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in "]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise PolicyError(f"{label}: nested deeper than {MAX_DEPTH} levels; not an alert")
    try:
        doc = json.loads(
            text, object_pairs_hook=unique_keys, parse_float=_finite, parse_int=_integer, parse_constant=no_constants
        )
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{label}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except DuplicateKey as exc:
        raise PolicyError(f"{label}: {key_shown(exc.key)} appears twice in one object") from None
    except (ValueError, RecursionError) as exc:  # _Refused, and what else json may raise on odd input
        raise PolicyError(f"{label}: {str(exc)[:120]}") from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{label}: an alert is a JSON object")
    return doc


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@cache
def _field_names() -> frozenset[str]:
    """Every name the alert schema gives a field, at any depth of any alert type: the only keys a message quotes."""
    return frozenset(
        part.removesuffix("[]") for fields in schema_fields().values() for path in fields for part in path.split(".")
    )


def key_shown(key: str) -> str:
    """A key of a JSON alert for a message, quoted only when the schema names a field so: any other key may be data
    (documents keyed by a passport number, people by name, 'juan' as much as 'Juan Perez'), and an alert being
    explained may be a real one. An allow-list, so that no shape of data is quoted by mistake; a key close to a
    field's name gets that name as a suggestion instead, so a typo is still found."""
    names = _field_names()
    if key in names:
        return f"key {key!r}"
    shown = f"a key of {len(key)} character{'' if len(key) == 1 else 's'}"
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
    return f"{shown} (did you mean {near[0]!r}?)" if near else shown


def unknown_keys(doc: Mapping[str, Any], fields: Mapping[str, FieldInfo]) -> list[str]:
    """Keys of a JSON alert that its schema lacks (the codec would silently ignore them), each by its path, its own
    name shown only when the schema names a field so elsewhere (``key_shown``)."""
    out: list[str] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                if path in fields:
                    walk(sub, path)
                else:
                    shown = str(key) if str(key) in _field_names() else f"<{key_shown(str(key))}>"
                    out.append(f"{prefix}.{shown}" if prefix else shown)
        elif isinstance(value, list):
            for item in value:
                walk(item, prefix + "[]")

    walk(doc, "")
    return out


def alert_value(doc: Mapping[str, Any], fields: Mapping[str, Mapping[str, FieldInfo]], label: str) -> dict[str, Any]:
    """The decoded form of a JSON alert: checked for stray keys, encoded and decoded once.

    The round trip fills schema defaults and proves the alert fits the schema,
    so that a decision is never made on something the broker could not carry.
    """
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{label}: an alert is a mapping of fields")
    if _too_deep(doc, MAX_DEPTH):
        raise PolicyError(f"{label}: nested deeper than {MAX_DEPTH} levels; not an alert")
    alert_type = doc.get("alert_type")
    if not isinstance(alert_type, str) or alert_type not in fields:
        raise PolicyError(f"{label}: alert_type must be one of {', '.join(fields)}")
    stray = unknown_keys(doc, fields[alert_type])
    if stray:
        raise PolicyError(f"{label}: fields the {alert_type} schema lacks: {', '.join(stray)}")
    codec = schemas.alert_codec()
    try:
        return codec.decode(codec.encode(schemas.alert_from_json(dict(doc))))
    except CodecError as exc:
        raise PolicyError(f"{label}: {exc}") from exc


def _steps(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        match = _INDEX.match(part)
        if match is None:
            raise PolicyError(f"bad field path {path!r}: use a.b[0].c")
        out.append(match["name"])
        if match["index"] is not None:
            out.append(int(match["index"]))
    return out


def get_path(value: Any, path: str) -> Any:
    """The value at a dotted path with ``[i]`` indexes; a missing step raises PolicyError."""
    for step in _steps(path):
        # Names step into objects and indexes into lists only: "summary[0]" is not a string's first letter.
        found = (isinstance(step, int) and isinstance(value, list) and step < len(value)) or (
            isinstance(step, str) and isinstance(value, dict) and step in value
        )
        if not found:
            raise PolicyError(f"the view has no {path}")
        value = value[step]
    return value


def with_changes(doc: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON alert with ``path: value`` changes applied."""
    out = copy.deepcopy(dict(doc))
    for path, new in changes.items():
        steps = _steps(path)
        target: Any = out
        for step in steps[:-1]:
            try:
                target = target[step]
            except (KeyError, IndexError, TypeError) as exc:
                raise PolicyError(f"cannot set {path}: no {step!r} on the way") from exc
        try:
            target[steps[-1]] = copy.deepcopy(new)
        except (IndexError, TypeError) as exc:
            raise PolicyError(f"cannot set {path}") from exc
    return out
