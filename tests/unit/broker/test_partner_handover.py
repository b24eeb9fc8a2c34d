"""A subscriber instance hands a feed partition over only after its batch in flight and its commit show."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as aiokafka_errors

from broker.kafka import KafkaConnection, offsets_visible
from broker.partner import Subscriber

TP = TopicPartition("t.feed.COL", 1)


class Group:
    """The feed consumer as the hand-over asks it: the committed offsets it answers, one per call, in order."""

    def __init__(self, answers: Iterator[int | None] | None = None, error: Exception | None = None) -> None:
        self.answers, self.error, self.asked = answers, error, 0

    async def committed(self, tp: TopicPartition) -> int | None:
        self.asked += 1
        if self.error is not None:
            raise self.error
        return next(self.answers) if self.answers is not None else None


def _subscriber(notes: list[str]) -> Subscriber:
    return Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", "t.receipts.COL",
                      object(), object(), signer=object(), on_note=notes.append)  # type: ignore[arg-type]


def _forever(value: int) -> Iterator[int]:
    while True:
        yield value


async def test_offsets_show_once_the_group_answers_them() -> None:
    """Stale answers (none, then an older offset) are asked again until the committed one shows; past the bound,
    False."""
    group = Group(iter([None, 3, 7]))
    assert await offsets_visible(group, {TP: 7}, timeout_s=5) is True  # type: ignore[arg-type]
    assert group.asked == 3
    assert await offsets_visible(Group(_forever(3)), {TP: 7}, timeout_s=0.05) is False  # type: ignore[arg-type]


async def test_a_revocation_waits_for_the_batch_in_flight_then_for_its_commit() -> None:
    """The hand-over takes the batch lock (held by a batch until its commit), drops batches fetched before it (the
    generation moves on), and returns once the group shows the offset this instance committed, quietly."""
    notes: list[str] = []
    sub = _subscriber(notes)
    group = Group(iter([5, 9]))
    await sub._busy.acquire()  # a batch in flight
    handing = asyncio.create_task(sub._hand_over(group, {TP}))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not handing.done() and group.asked == 0 and sub._generation == 1
    sub._committed[TP] = 9  # the batch commits up to offset 9
    sub._busy.release()
    await asyncio.wait_for(handing, 5)
    assert group.asked == 2 and notes == [] and TP not in sub._committed


@pytest.mark.parametrize("group", [Group(_forever(3)), Group(error=aiokafka_errors.KafkaConnectionError())],
                         ids=["never-shows", "kafka-error"])
async def test_a_hand_over_that_cannot_confirm_says_so_and_returns(monkeypatch: pytest.MonkeyPatch,
                                                                   group: Any) -> None:
    """A commit that does not show within the bound, or Kafka not answering, ends the wait with a note: the next
    owner may read the last batch again (a second receipt, never a loss)."""
    monkeypatch.setattr("broker.partner.HANDOVER_WAIT_S", 0.05)
    notes: list[str] = []
    sub = _subscriber(notes)
    sub._committed[TP] = 9
    await asyncio.wait_for(sub._hand_over(group, {TP}), 5)
    assert len(notes) == 1 and "may receive its last batch again" in notes[0]


async def test_a_revocation_of_partitions_it_never_committed_does_not_ask_kafka() -> None:
    notes: list[str] = []
    group = Group(error=AssertionError("asked"))
    await _subscriber(notes)._hand_over(group, {TP})  # type: ignore[arg-type]
    assert group.asked == 0 and notes == []


async def test_a_batch_fetched_while_a_revocation_ran_is_not_handled() -> None:
    """getmany waits, the group revokes meanwhile (the callback runs while it waits) and then getmany returns what
    it fetched under the old assignment: that batch is dropped (its records come again from the committed offsets,
    to whoever owns them now), never receipted and committed after the hand-over."""
    notes: list[str] = []
    sub = _subscriber(notes)
    handled: list[Any] = []

    class Feed:
        calls = 0

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
            Feed.calls += 1
            if Feed.calls == 1:
                await asyncio.sleep(0)
                sub._generation += 1  # what _hand_over does first, as a revocation begins
                return {TP: ["a record of the revoked partition"]}
            sub.stop()
            return {}

    async def batch(*args: Any) -> tuple[None, None]:
        handled.append(args)
        return None, None

    sub._batch = batch  # type: ignore[method-assign, assignment]
    assert await sub._follow(Feed(), None, object(), object(), 0, None, None) is None  # type: ignore[arg-type]
    assert handled == [] and Feed.calls == 2
