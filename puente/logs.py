"""Logging for Puente's long-running processes: one structlog pipeline for Puente's lines and the
standard library's (aiokafka's, librdkafka's), as JSON lines or as text for a terminal.

Log lines name what happened, never payloads or key material. Fields are an allow-list
(``FIELDS``): a field not named there is replaced by a marker, whatever a caller passes, so a
value cannot reach the logs by a new keyword argument. Tracebacks are structured (a dict per
frame) in JSON. ``PUENTE_LOG_LEVEL`` and ``PUENTE_LOG_FORMAT`` choose level and form.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Every field a Puente log line may carry, beside the ones structlog adds.
FIELDS = frozenset({
    "event", "level", "logger", "timestamp", "exception", "exc_info", "stack_info",
    "error", "attempt", "restarts", "workers", "worker", "group", "bootstrap", "principal", "owned", "slots",
    "alert_ids", "problem", "inputs", "topic", "partition", "offset", "waited_s", "waiting_for", "lag",
    "adapter", "agency", "file", "partner", "instance", "received", "rejected", "published", "duplicates",
    "seconds", "count", "port", "address", "reason", "retriable", "node", "state",
    "stalled_s", "was_waiting_for", "client", "kept", "loaded", "alerts", "took_s", "producers_s", "audit_s",
    "lifecycle_s",
})  # fmt: skip
_STRUCTLOG_META = frozenset({"_record", "_from_structlog"})


def _allow_listed(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event):
        if name not in FIELDS and name not in _STRUCTLOG_META:
            event[name] = "[not logged]"
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
        _allow_listed,
    ]
    if form == "json":
        tail: list[Any] = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer(ensure_ascii=False)]
    else:
        tail = [structlog.dev.ConsoleRenderer(colors=False)]
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
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())


def get(name: str) -> Any:
    """A logger named ``name`` (e.g. ``puente.broker``)."""
    return structlog.get_logger(name)
