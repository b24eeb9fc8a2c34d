"""Alerts written by people (example files, suite fixtures) into the value the codec would decode."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import schemas
from policies._fields import FieldInfo
from puente.errors import CodecError, PolicyError

_INDEX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")


def unknown_keys(doc: Mapping[str, Any], fields: Mapping[str, FieldInfo]) -> list[str]:
    """Keys of a JSON alert that its schema lacks (the codec would silently ignore them)."""
    out: list[str] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                if path in fields:
                    walk(sub, path)
                else:
                    out.append(path)
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
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError) as exc:
            raise PolicyError(f"the view has no {path}") from exc
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
