"""The alert codec and the JSON form of an alert, as people and files write it."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from puente.errors import RecordMismatchError
from schemas._bounds import ARRAY_BOUNDS, TEXT_BOUNDS, bounds_problem, text_problem
from schemas._codec import SingleObjectCodec
from schemas._registry import ALERT, SchemaVersion, current, known_writers

PAYLOAD_TYPE = {
    "WATCHLIST_HIT": "puente.WatchlistHit",
    "SEIZURE": "puente.Seizure",
    "BORDER_EVENT": "puente.BorderEvent",
}

# Fields that hold logical timestamps or dates, by their name anywhere in an alert.
_TIMESTAMPS = frozenset({"occurred_at", "reported_at", "review_at", "expires_at", "encountered_at"})
_DATES = frozenset({"date_of_birth", "expires_on"})


def payload_fields(version: SchemaVersion) -> dict[str, frozenset[str]]:
    """Each alert type's payload field names in ``version``: what a decoded payload of that type holds.

    A decoded union value does not say which branch it was; the branches' field sets do, so no two may
    be the same (ValueError)."""
    payload = next(f for f in version.expanded["fields"] if f["name"] == "payload")
    by_name = {b["name"]: frozenset(f["name"] for f in b["fields"]) for b in payload["type"] if isinstance(b, dict)}
    fields = {alert_type: by_name[branch] for alert_type, branch in PAYLOAD_TYPE.items()}
    if len(set(fields.values())) != len(fields):
        raise ValueError(f"two payload records of {version.name} have the same fields")
    return fields


class AlertCodec(SingleObjectCodec):
    """Single-object codec for ``puente.Alert`` that pins the payload branch to ``alert_type``, both ways:
    an alert is written with the branch its type names, and one read whose payload is another type's is
    refused (a seizure payload under ``alert_type: WATCHLIST_HIT`` would be judged by the watchlist rules
    while carrying what only the seizure rules may release). Each array is held to its bound
    (``schemas.bounds.ARRAY_BOUNDS``): past it, its entries are never built, and the alert is refused with
    BoundsExceededError, which carries the rest of it (that array empty) for the broker to judge the version by.
    ``decode_bounded`` holds its text to its bounds too (``schemas.bounds``), measured as it is decoded where it can."""

    def __init__(self, writer: SchemaVersion, known: tuple[SchemaVersion, ...] = ()) -> None:
        super().__init__(writer, known, ARRAY_BOUNDS, TEXT_BOUNDS)  # an array past its bound is never built
        self._payload_fields = payload_fields(writer)

    def decode_bounded(self, data: bytes) -> tuple[dict[str, Any], str | None, bool]:
        """``decode``'s alert, why it holds more text than an adapter can write (``bounds_problem``'s answer) or
        None, and whether all its text is printable ASCII or line feeds (False where that was not measured): what
        the broker needs of every record, from the native decoder's one pass where it read the alert, else from a
        walk of the value."""
        value, text = self.decode_measured(data)
        if text is None:
            return value, bounds_problem(value), False
        return value, text_problem(text.chars, text.long), text.plain

    def checked(self, value: dict[str, Any]) -> None:
        want = self._payload_fields.get(str(value.get("alert_type")))
        payload = value.get("payload")
        if want is None or not isinstance(payload, dict) or payload.keys() != want:
            named = str(value.get("alert_type"))[:40]
            raise RecordMismatchError(f"{self.writer.name} record's payload is not the one its alert_type {named} "
                                      f"names ({PAYLOAD_TYPE.get(named, 'none')})")

    def encode(self, record: dict[str, Any]) -> bytes:
        payload = record.get("payload")
        if isinstance(payload, (dict, tuple)):
            alert_type = str(record.get("alert_type"))
            branch = PAYLOAD_TYPE.get(alert_type)
            if branch is None:
                raise RecordMismatchError(f"alert_type must be one of {', '.join(PAYLOAD_TYPE)}")
            if isinstance(payload, dict):
                record = {**record, "payload": (branch, payload)}
            elif len(payload) != 2 or payload[0] != branch:  # fastavro's tuple notation names the branch itself
                raise RecordMismatchError(f"{self.writer.name} record's payload does not name the branch its "
                                          f"alert_type {alert_type} names ({branch})")
        return super().encode(record)


@cache
def alert_codec() -> AlertCodec:
    """The process-wide alert codec: writes the current schema, reads every known version."""
    return AlertCodec(current(ALERT), known_writers(ALERT))


def _parse_ts(value: Any, path: str) -> datetime:
    # A datetime comes from YAML, which reads an unquoted 2025-01-01 10:00:00 as one: without an offset it is
    # refused as the same time quoted is, since its zone would be a guess (Panama is UTC-5, not UTC).
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordMismatchError(f"{path}: not an ISO-8601 timestamp") from exc
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise RecordMismatchError(f"{path}: expected an ISO-8601 timestamp string")
    if parsed.utcoffset() is None:
        raise RecordMismatchError(f"{path}: timestamp needs a UTC offset (e.g. 'Z' or '-05:00')")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: before year 1 in UTC
        raise RecordMismatchError(f"{path}: timestamp is outside the years 1 to 9999 in UTC") from None


def _parse_date(value: Any, path: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise RecordMismatchError(f"{path}: not an ISO-8601 date (YYYY-MM-DD)") from exc
    raise RecordMismatchError(f"{path}: expected an ISO-8601 date string")


def _walk(value: Any, path: str, on_leaf: Any) -> Any:
    if isinstance(value, dict):
        return {k: on_leaf(k, _walk(v, f"{path}.{k}", on_leaf), f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, f"{path}[{i}]", on_leaf) for i, v in enumerate(value)]
    return value


def alert_from_json(doc: dict[str, Any]) -> dict[str, Any]:
    """An alert value from its JSON form: ISO timestamps and dates become datetime and date, and a field
    left out takes the schema's default (the codec refuses a record that leaves one out)."""

    def leaf(key: str, value: Any, path: str) -> Any:
        if value is None:
            return None
        if key in _TIMESTAMPS:
            return _parse_ts(value, path)
        if key in _DATES:
            return _parse_date(value, path)
        return value

    if not isinstance(doc, dict):
        raise RecordMismatchError("an alert must be a JSON object")
    out: dict[str, Any] = _walk(doc, "alert", leaf)
    # The JSON form leaves out what the schema's defaults say (a file written before alerts had versions is
    # the first version); the codec writes no default unsaid, so they are filled here, where it is the rule.
    schema = current(ALERT).parsed
    named = schema["__named_schemas"]
    out = _with_defaults(out, schema, named)
    branch = PAYLOAD_TYPE.get(str(out.get("alert_type")))
    if branch is not None and isinstance(out.get("payload"), dict):
        out["payload"] = _with_defaults(out["payload"], named[branch], named)
    return out


def _with_defaults(value: Any, schema: Any, named: dict[str, Any]) -> Any:
    """``value`` with each record field it leaves out set to a copy of the field's default, where there is one.

    A union is followed only where its one record branch is certain (``[null, R]``); the payload, a union
    of several, is followed by alert_from_json through its alert_type. What does not fit is left as it
    is, for the codec to refuse by path."""
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        records = [b for b in (named.get(b, b) if isinstance(b, str) else b for b in schema)
                   if isinstance(b, dict) and b["type"] == "record"]
        return _with_defaults(value, records[0], named) if len(records) == 1 and isinstance(value, dict) else value
    if not isinstance(schema, dict):
        return value
    kind = schema["type"]
    if not isinstance(kind, str):
        return _with_defaults(value, kind, named)
    if kind == "record" and isinstance(value, dict):
        out = dict(value)
        for field in schema["fields"]:
            name = field["name"]
            if name in out:
                out[name] = _with_defaults(out[name], field["type"], named)
            elif "default" in field:
                out[name] = copy.deepcopy(field["default"])  # the schema's own list, else shared by every alert
        return out
    if kind == "array" and isinstance(value, list):
        return [_with_defaults(item, schema["items"], named) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: _with_defaults(item, schema["values"], named) for key, item in value.items()}
    return value


def to_json(value: Any) -> Any:
    """A JSON-ready copy of a decoded value: datetimes as ISO 8601 UTC, dates as ISO dates."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
