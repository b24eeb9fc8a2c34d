"""Fixtures the broker's unit tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

import broker.auditor as auditor


@dataclass(frozen=True)
class _Rec:
    offset: int
    value: bytes
    appended_ms: int | None = None


@pytest.fixture
def audit_topics(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[bytes]]:
    """Audit topics, one partition each, that `read_log` and `verify_topics` read instead of Kafka's: a
    partition is the list of values put under its topic's name."""
    held: dict[str, list[bytes]] = {}

    class Consumer:
        async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return dict.fromkeys(tps, 0)  # nothing deleted: every log starts at offset 0

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield Consumer()

    async def partitions_of(consumer: Any, topic: str) -> list[int]:
        return [0]

    async def read_range(consumer: Any, tp: Any, start: int | None = None) -> AsyncIterator[_Rec]:
        for offset, value in enumerate(held[tp.topic]):
            if start is None or offset >= start:
                yield _Rec(offset, value)

    monkeypatch.setattr(auditor, "reader", lambda conn, name: None)
    monkeypatch.setattr(auditor, "running", running)
    monkeypatch.setattr(auditor, "partitions_of", partitions_of)
    monkeypatch.setattr(auditor, "read_range", read_range)
    return held
