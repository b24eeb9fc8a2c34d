"""Structured JSON logs for the services. Events name what happened; never payloads or key bytes."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_FORBIDDEN = ("payload", "value", "secret", "key_bytes", "plaintext")


def _scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A last line of defence: fields whose names suggest content are replaced, whatever the caller passed.
    for name in list(event):
        if name in _FORBIDDEN:
            event[name] = "[withheld from logs]"
    return event


def configure_logging(level: int = logging.INFO) -> Any:
    """JSON lines on stderr: timestamp, level, logger, event and its fields."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger("puente.broker")
