"""The alert codec and the JSON form of an alert, as people and files write it."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from puente.errors import RecordMismatchError
from schemas._codec import SingleObjectCodec
from schemas._registry import ALERT, current, known_writers

PAYLOAD_TYPE = {
    "WATCHLIST_HIT": "puente.WatchlistHit",
    "SEIZURE": "puente.Seizure",
    "BORDER_EVENT": "puente.BorderEvent",
}

# Fields that hold logical timestamps or dates, by their name anywhere in an alert.
_TIMESTAMPS = frozenset({"occurred_at", "reported_at", "review_at", "expires_at", "encountered_at"})
_DATES = frozenset({"date_of_birth", "expires_on"})


class AlertCodec(SingleObjectCodec):
    """Single-object codec for ``puente.Alert`` that pins the payload branch to ``alert_type``."""

    def encode(self, record: dict[str, Any]) -> bytes:
        payload = record.get("payload")
        if isinstance(payload, dict):
            branch = PAYLOAD_TYPE.get(str(record.get("alert_type")))
            if branch is None:
                raise RecordMismatchError(f"alert_type must be one of {', '.join(PAYLOAD_TYPE)}")
            record = {**record, "payload": (branch, payload)}
        return super().encode(record)


@cache
def alert_codec() -> AlertCodec:
    """The process-wide alert codec: writes the current schema, reads every known version."""
    return AlertCodec(current(ALERT), known_writers(ALERT))


def _parse_ts(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordMismatchError(f"{path}: not an ISO-8601 timestamp") from exc
        if parsed.tzinfo is None:
            raise RecordMismatchError(f"{path}: timestamp needs a UTC offset (e.g. 'Z' or '-05:00')")
        return parsed.astimezone(UTC)
    raise RecordMismatchError(f"{path}: expected an ISO-8601 timestamp string")


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
    """An alert value from its JSON form: ISO timestamps and dates become datetime and date."""

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
    # Written before alerts had versions: the first version, as the schema's defaults say.
    out.setdefault("version", 1)
    out.setdefault("lifecycle", None)
    return out


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
