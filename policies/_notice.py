"""The recall notice: what a partner receives in place of an alert it may no longer hold. Pure.

A notice says which alert, which version and why, and nothing else: it is a schema-valid Alert
whose every field is emptied (the way a view empties a field no rule names) except ``alert_id``,
``alert_type``, ``version`` and ``lifecycle``. The partner's software deletes its copy of the alert
and acknowledges the recall with a signed receipt; the markings are not repeated, since the
copy they protected is gone. Being an Alert, the notice travels, is sealed and is decoded like
every other feed record, and a reader that does not know recalls still reads a valid record
(with no content) rather than failing.

Its payload is never the alert's: it is the empty payload of the type the notice names (every field of
it emptied anyway), so a notice may name a type other than the version's own. The broker names the
type the alert was first published as: a later version that changed it is refused, and a notice of
that version must not tell a partner denied it what it changed to (``broker.pipeline``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from policies._fields import FieldInfo, children
from policies._load import schema_fields
from policies._model import Cover, ViewSettings
from policies._plan import plan_fields
from policies._view import Step, ViewContext, compile_step

NOTICE_KEEPS = ("alert_id", "alert_type", "version", "lifecycle.action", "lifecycle.reason", "lifecycle.partners")
RECALL = "RECALL"


@cache
def _steps(alert_type: str) -> tuple[Step, ...]:
    fields: Mapping[str, FieldInfo] = schema_fields()[alert_type]
    settings = ViewSettings()
    # Every field the notice keeps is named, none a record: no release to review against.
    planned = plan_fields(fields, Cover(rule="RECALL-NOTICE", alert_type=alert_type), NOTICE_KEEPS, None)
    steps = (compile_step(fields[p.path], p.rule, settings) for p in planned)
    return tuple(step for step in steps if step is not None)


_ARRAY = object()  # an array in a shape (``_shape``): every array of an empty payload is empty, and made anew


def _shape(path: str, fields: Mapping[str, FieldInfo], kids: Mapping[str, list[str]]) -> tuple[Any, ...]:
    """The record at ``path`` with every field emptied, as (name, value) pairs nothing can change: a required
    record's own fields emptied in turn (a tuple of pairs), an array ``_ARRAY``, any other value as it is (None, a
    string, a number, a time: none mutable)."""
    out: list[tuple[str, Any]] = []
    for child in kids.get(path, ()):
        info = fields[child]
        if info.kind == "record" and not info.nullable:
            value: Any = _shape(child, fields, kids)
        else:
            value = info.empty()
            value = _ARRAY if type(value) is list else value
        out.append((child.rsplit(".", 1)[-1], value))
    return tuple(out)


@cache
def _empty_payload(alert_type: str) -> tuple[Any, ...]:
    """The shape of ``alert_type``'s empty payload, built once per type (``children`` walks every field)."""
    fields: Mapping[str, FieldInfo] = schema_fields()[alert_type]
    return _shape("payload", fields, children(fields))


def _record(shape: tuple[Any, ...]) -> dict[str, Any]:
    """A new record of ``shape``: its records and arrays new too, so a notice shares no mutable value."""
    return {name: _record(value) if type(value) is tuple else [] if value is _ARRAY else value
            for name, value in shape}


def recall_notice(alert: Mapping[str, Any], version: int, reason: str | None) -> dict[str, Any]:
    """The notice that withdraws ``alert`` (any version of it) as of ``version``, for ``reason``
    (a RecallReason symbol, or None when the alert is withdrawn from one partner only because its
    agreement no longer covers it). Its payload is the empty one of ``alert["alert_type"]``, whatever
    ``alert``'s payload holds (a new one each time: a notice shares no mutable value)."""
    notice = {**alert, "payload": _record(_empty_payload(str(alert["alert_type"]))), "version": version,
              "lifecycle": {"action": RECALL, "reason": reason, "partners": []}}
    ctx = ViewContext(b"", "", ViewSettings())
    for step in _steps(str(alert["alert_type"])):
        step(notice, ctx)
    return notice
