"""Fixtures the broker's unit tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

import broker.auditor as auditor


@dataclass(frozen=True)
class AuditRec:
    """A record as ``broker.auditor`` reads it, as far as it looks."""

    offset: int
    value: bytes
    appended_ms: int | None = None
    unreadable: None = None


class AuditConsumer:
    """The auditor's reader, as far as it asks: every log starts at offset 0 (nothing deleted)."""

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(tps, 0)


def read_audit_from(monkeypatch: pytest.MonkeyPatch, partitions: Callable[[str], list[int]],
                    records: Callable[[Any], Iterable[tuple[bytes, int | None]]],
                    consumer: Any = None) -> None:
    """Have ``broker.auditor`` read its topics from the test instead of Kafka: ``partitions(topic)`` (none: the
    topic does not exist), ``records(tp)`` as (value, Kafka append time or None) from offset 0, through
    ``consumer`` (default ``AuditConsumer``)."""

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield consumer if consumer is not None else AuditConsumer()

    async def partitions_of(consumer: Any, topic: str) -> list[int]:
        return partitions(topic)

    async def read_range(consumer: Any, tp: Any, start: int | None = None) -> AsyncIterator[AuditRec]:
        for offset, (value, appended) in enumerate(records(tp)):
            if start is None or offset >= start:
                yield AuditRec(offset, value, appended)

    monkeypatch.setattr(auditor, "reader", lambda conn, name: None)
    monkeypatch.setattr(auditor, "running", running)
    monkeypatch.setattr(auditor, "partitions_of", partitions_of)
    monkeypatch.setattr(auditor, "read_range", read_range)


@pytest.fixture
def audit_topics(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[bytes]]:
    """Audit topics, one partition each, that `read_log` and `verify_topics` read instead of Kafka's: a
    partition is the list of values put under its topic's name."""
    held: dict[str, list[bytes]] = {}
    read_audit_from(monkeypatch, lambda topic: [0], lambda tp: ((value, None) for value in held[tp.topic]))
    return held
