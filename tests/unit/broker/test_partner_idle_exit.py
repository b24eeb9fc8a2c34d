"""A run without --follow ends only once caught up and quiet: its idle clock starts at the group's assignment, and
when the quiet time runs out it asks Kafka where the feed's committed records end, reading on while any partition is
behind (``Subscriber._caught_up``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from partner_feed import FEED, RECEIPTS, BrokerKeys, Receipts, subscriber

import broker.partner as partner
from broker.audit import ChainWriter
from broker.kafka import FetchView, TopicPartition
from broker.partner import Subscriber

TP = TopicPartition(FEED, 0)


class _Feed:
    """The feed's group consumer over partition 0 of ``FEED``, whose committed records end at ``end``: the group
    assigns it at fetch number ``join`` (running the subscriber's rebalance listener, as aiokafka's coordinator does),
    and every fetch comes back empty until fetch number ``slow``, which hands out every record up to ``end``, as a
    slow fetch does. Kafka fails to say where the partition ends the first ``failures`` times it is asked."""

    def __init__(self, sub: Subscriber, *, end: int, join: int = 1, slow: int = 1, failures: int = 0) -> None:
        self.sub, self.end, self.join, self.slow, self.failures = sub, end, join, slow, failures
        self.position = 0
        self.fetches = self.asked = self.handed = 0
        self.assigned: set[TopicPartition] = set()

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[int]]:
        await asyncio.sleep(0.001)  # time passes: each empty fetch is a quiet spell past idle_exit_s=0
        self.fetches += 1
        if self.fetches == self.join:
            self.assigned = {TP}
            await partner._Handover(self.sub, self).on_partitions_assigned({TP})  # type: ignore[arg-type]
        if self.assigned and self.fetches >= self.slow and self.position < self.end:
            handed, self.position = list(range(self.position, self.end)), self.end
            return {TP: handed}
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set()

    def pause(self, *tps: TopicPartition) -> None: ...

    def resume(self, *tps: TopicPartition) -> None: ...

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        return {tp: self.end for tp in tps}


async def _run(monkeypatch: pytest.MonkeyPatch, notes: list[str], **feed: int) -> _Feed:
    """A run of COL's subscriber (no store) with ``idle_exit_s`` 0 over ``_Feed(**feed)``, each batch counted as
    applied and committed; bounded, so that a run that never ends fails rather than hangs."""
    sub = subscriber(BrokerKeys("2026a"), None, lambda: None, notes=notes)  # type: ignore[arg-type, return-value]
    fake = _Feed(sub, **feed)

    async def batch(got: dict[TopicPartition, list[int]], *_: Any) -> tuple[None, None]:
        fake.handed += sum(len(msgs) for msgs in got.values())
        return None, None

    monkeypatch.setattr(sub, "_batch", batch)
    monkeypatch.setattr(partner, "fetch_view", lambda feed, tp: FetchView(feed.position, None, None)
                        if tp in feed.assignment() else None, raising=False)
    async with asyncio.timeout(30):
        await sub._follow(fake, None, Receipts(), ChainWriter(RECEIPTS, 0, chain="COL"), 0,  # type: ignore[arg-type]
                          idle_exit_s=0, limit=None)
    return fake


async def test_a_quiet_spell_while_committed_records_wait_unread_does_not_end_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three committed records whose fetch comes back only at the fourth try: the quiet time runs out at each empty
    fetch, Kafka says the partition ends past the subscriber's position, and the run reads on; it ends once it has
    applied all three and is quiet again."""
    notes: list[str] = []
    fake = await _run(monkeypatch, notes, end=3, slow=4)
    assert fake.handed == 3 and fake.fetches == 5 and fake.asked == 4 and notes == []


async def test_a_caught_up_quiet_run_ends_at_its_first_quiet_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty feed: the run asks once where it ends, is caught up, and ends at its first empty fetch."""
    notes: list[str] = []
    fake = await _run(monkeypatch, notes, end=0)
    assert fake.fetches == 1 and fake.asked == 1 and fake.handed == 0 and notes == []


async def test_the_idle_clock_starts_at_the_assignment_not_before_the_join(monkeypatch: pytest.MonkeyPatch) -> None:
    """A join that takes three fetches: the empty fetches before it are no quiet spell (nothing is asked, the run goes
    on); the two records are read at the join, and the run ends at the next empty fetch."""
    notes: list[str] = []
    fake = await _run(monkeypatch, notes, end=2, join=3, slow=3)
    assert fake.handed == 2 and fake.fetches == 4 and fake.asked == 1


async def test_kafka_not_saying_where_the_feed_ends_is_no_exit_and_no_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka fails to answer twice: each failure counts as not caught up (one check per quiet spell, one note for the
    run), and the run ends once Kafka answers that it is caught up."""
    notes: list[str] = []
    fake = await _run(monkeypatch, notes, end=0, failures=2)
    assert fake.asked == 3 and fake.fetches == 3
    assert len(notes) == 1 and "KafkaConnectionError" in notes[0] and "ends only once caught up" in notes[0]
