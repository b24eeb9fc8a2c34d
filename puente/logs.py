"""Logging for Puente's long-running processes: one structlog pipeline for Puente's lines and the
standard library's (aiokafka's, librdkafka's), as JSON lines or as text for a terminal.

Log lines name what happened, never payloads or key material. Fields are an allow-list
(``FIELDS``): a field not named there is replaced by a marker, whatever a caller passes, so a
value cannot reach the logs by a new keyword argument. Tracebacks are structured (a dict per
frame) in JSON and plain text on a console, and never show a frame's local variables: those hold
records, payloads and keys (structlog's default renderers print them). A line a library repeats
(aiokafka's "Unable connect to node" while a node is down, once per retry of every client) is
written once per ``REPEAT_S`` with the count of the same text left out. ``PUENTE_LOG_LEVEL`` and
``PUENTE_LOG_FORMAT`` choose level and form; a library's debug lines are never written, whatever the level
(``LIBRARY_FLOOR``): their free text carries what Puente's fields keep out (aiokafka's debug lines print every
request it sends, the SASL password and each record's bytes among them).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
import structlog.tracebacks

from puente.strict import json_text, one_line

# Every field a Puente log line may carry, beside the ones structlog adds.
FIELDS = frozenset({
    "event", "level", "logger", "timestamp", "exception", "exc_info", "stack_info",
    "error", "attempt", "restarts", "workers", "worker", "group", "bootstrap", "principal", "owned", "slots",
    "alert_ids", "problem", "inputs", "topic", "partition", "offset", "waited_s", "waiting_for", "lag",
    "adapter", "agency", "file", "partner", "instance", "received", "rejected", "published", "duplicates",
    "seconds", "count", "port", "address", "reason", "retriable", "node", "state",
    "stalled_s", "was_waiting_for", "client", "kept", "loaded", "alerts", "took_s", "producers_s", "audit_s",
    "lifecycle_s", "repeated", "log_start", "ingress", "policy", "policy_version", "key_id",
})  # fmt: skip
_STRUCTLOG_META = frozenset({"_record", "_from_structlog"})


def _allow_listed(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event):
        if name not in FIELDS and name not in _STRUCTLOG_META:
            event[name] = "[not logged]"
    return event


REPEAT_S = 5.0
# The lowest level of a line from outside Puente that is written: below it, a library's text is not Puente's to
# vouch for (an allow-list of loggers: only Puente's own lines may be debug lines).
LIBRARY_FLOOR = logging.INFO


class _Repeats(logging.Filter):
    """Let a library's line through once per ``REPEAT_S`` for each (logger, message text); the
    next one let through carries ``repeated``, how many were left out meanwhile; never one below
    ``LIBRARY_FLOOR``. Puente's own lines (structlog's) always pass: each is written on purpose."""

    def __init__(self, every_s: float = REPEAT_S) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "_logger") or record.name == "puente" or record.name.startswith("puente."):
            return True  # one of Puente's own lines (structlog's wrap_for_formatter marks them), never by its type
        if record.levelno < LIBRARY_FLOOR:
            return False
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a library's malformed arguments: let logging report it
            return True
        key = (record.name, text[:300])  # the whole text: librdkafka's lines all share one template
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.repeated = last[1]
        if len(self._last) > 1000:
            self._last.clear()  # bounded: a library logging ever-new templates cannot grow it
        self._last[key] = (now, 0)
        return True


def _one_line(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The console form: each text value on one line, with nothing a terminal would act on (``one_line``). A
    library's message or an error's text can quote what came from outside (a file name, a Kafka error about
    a topic): a line break there would start a line that seems Puente's own, an escape sequence rewrite the
    screen. (The JSON form escapes them as JSON: ``json_text``.)"""
    for name, value in event.items():
        if isinstance(value, str) and not value.isprintable():
            event[name] = one_line(value)
    return event


def _repeats(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if record is not None and getattr(record, "repeated", None):
        event["repeated"] = record.repeated
    return event


def configure(level: str = "info", form: str = "console", stream: TextIO | None = None) -> None:
    """Route every log line through one pipeline onto ``stream`` (default stderr).

    ``form`` is ``json`` (one JSON object per line, structured tracebacks) or ``console``.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _repeats,
        _allow_listed,
    ]
    if form == "json":
        tracebacks = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        tail: list[Any] = [structlog.processors.ExceptionRenderer(tracebacks),
                           structlog.processors.JSONRenderer(json_text)]
    else:
        tail = [_one_line,
                structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_Repeats())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())


def get(name: str) -> Any:
    """A logger named ``name`` (e.g. ``puente.broker``)."""
    return structlog.get_logger(name)
