"""``broker.kafka.settle``: waiting for the transactions open on partitions to end, without Kafka (clients faked)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.kafka import StillOpen, io

A, B = TopicPartition("r", 0), TopicPartition("r", 1)


class _Ends:
    """A client whose ``end_offsets`` answers from a list of answers, the last one for ever."""

    def __init__(self, answers: list[dict[TopicPartition, int]]) -> None:
        self.answers, self.asked = answers, []

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked.append(sorted(tps))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {tp: answer[tp] for tp in tps}


def _clients(monkeypatch: pytest.MonkeyPatch, high: dict[TopicPartition, int],
             stable: list[dict[TopicPartition, int]]) -> _Ends:
    raw, committed = _Ends([high]), _Ends(stable)
    stable_client = committed

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield client

    monkeypatch.setattr(io, "reader", lambda conn, name, committed=True: stable_client if committed else raw)
    monkeypatch.setattr(io, "running", running)
    return committed


def test_settle_waits_for_each_partition_to_pass_its_end_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each partition is done once its last stable offset reaches the high watermark read first; only those not
    done are asked again; records appended later (a higher watermark) are not waited for."""
    committed = _clients(monkeypatch, {A: 10, B: 5}, [{A: 8, B: 5}, {A: 9, B: 5}, {A: 12, B: 5}])
    assert asyncio.run(io.settle(None, [A, B], timeout_s=5)) == set()  # type: ignore[arg-type]
    assert committed.asked == [[A, B], [A], [A]]


def test_settle_gives_back_what_stays_open_and_wait_settled_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the time given, the partitions still behind come back (none for nothing asked); ``wait_settled`` turns
    one into StillOpen naming it."""
    _clients(monkeypatch, {A: 10, B: 5}, [{A: 8, B: 5}])
    assert asyncio.run(io.settle(None, [A, B], timeout_s=0.1)) == {A}  # type: ignore[arg-type]
    assert asyncio.run(io.settle(None, [], timeout_s=0.1)) == set()  # type: ignore[arg-type]
    with pytest.raises(StillOpen, match=r"r\[0\] still has a transaction open"):
        asyncio.run(io.wait_settled(None, A, timeout_s=0.1))  # type: ignore[arg-type]
