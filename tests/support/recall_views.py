"""Views of later versions of an alert, as the broker's lifecycle sends them, built by hand for tests.

``recall_notice`` empties every field the way a view empties a field no rule names (null, ``[]``,
or the schema's empty value) except ``alert_id``, ``alert_type``, ``version`` and ``lifecycle``; it
reads the shapes from the current alert schema, so the notice is schema-valid whatever the type.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from schemas import ALERT, PAYLOAD_TYPE, current

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOTICE_KEEPS = frozenset({"alert_id", "alert_type", "version", "lifecycle"})


def _full_name(schema: Any) -> str | None:
    if isinstance(schema, str):
        return schema if "." in schema else f"puente.{schema}"
    if isinstance(schema, dict) and "name" in schema:
        name = schema["name"]
        return name if "." in name else f"{schema.get('namespace', 'puente')}.{name}"
    return None


def _named(schema: Any, into: dict[str, Any]) -> None:
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            into.setdefault(str(_full_name(schema)), schema)
        for value in schema.values():
            _named(value, into)
    elif isinstance(schema, list):
        for item in schema:
            _named(item, into)


def _empty(schema: Any, named: dict[str, Any], branch: str | None = None) -> Any:
    if isinstance(schema, str):
        if _full_name(schema) in named:
            return _empty(named[str(_full_name(schema))], named)
        return {"string": "", "int": 0, "long": 0, "double": 0.0, "float": 0.0, "boolean": False,
                "bytes": b"", "null": None}[schema]
    if isinstance(schema, list):
        if "null" in schema:
            return None
        chosen = next((s for s in schema if _full_name(s) == branch), schema[0])
        return _empty(chosen, named)
    kind = schema["type"]
    if schema.get("logicalType", "").startswith("timestamp"):
        return EPOCH
    if kind == "record":
        return {f["name"]: _empty(f["type"], named) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return []
    if kind == "map":
        return {}
    return _empty(kind, named)


def recall_notice(view: dict[str, Any], version: int, reason: str | None) -> dict[str, Any]:
    """A recall notice for ``view``'s alert at ``version``: every content field emptied."""
    expanded = current(ALERT).expanded
    named: dict[str, Any] = {}
    _named(expanded, named)
    notice: dict[str, Any] = {}
    for f in expanded["fields"]:
        name = f["name"]
        if name in NOTICE_KEEPS:
            notice[name] = view[name]
        elif name == "payload":
            notice[name] = _empty(f["type"], named, PAYLOAD_TYPE[view["alert_type"]])
        else:
            notice[name] = _empty(f["type"], named)
    notice["version"] = version
    notice["lifecycle"] = {"action": "RECALL", "reason": reason, "partners": []}
    return notice


def updated(view: dict[str, Any], version: int, action: str = "UPDATE", **changes: Any) -> dict[str, Any]:
    """A later version of ``view``: ``changes`` applied to top-level fields (``summary="..."``)."""
    later = copy.deepcopy(view)
    later.update(changes)
    later["version"] = version
    later["lifecycle"] = {"action": action, "reason": None, "partners": []}
    return later
