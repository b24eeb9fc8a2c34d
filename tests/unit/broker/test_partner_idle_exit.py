"""A run without --follow ends only once caught up and quiet: its idle clock starts at the group's assignment, and
when the quiet time runs out it asks Kafka where the feed's committed records end, reading on while any partition is
behind (``Subscriber._caught_up``), and stopping with exit 4, never as if caught up, when quiet spells do not catch it
up for ``BEHIND_STOP_S`` (``Subscriber._still_behind``), by a fake clock."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from partner_feed import FEED, RECEIPTS, BrokerKeys, Receipts, subscriber

import broker.partner as partner
from broker.audit import ChainWriter
from broker.kafka import FetchView, TopicPartition
from broker.partner import BEHIND_STOP_S, Subscriber
from puente.errors import EXIT_UNAVAILABLE, KafkaUnavailableError, PuenteError

TP = TopicPartition(FEED, 0)
TP1 = TopicPartition(FEED, 1)


class _Feed:
    """The feed's group consumer over partition 0 of ``FEED``, whose committed records end at ``end``: the group
    assigns it at fetch number ``join`` (running the subscriber's rebalance listener, as aiokafka's coordinator does),
    and every fetch comes back empty until fetch number ``slow``, which hands out every record up to ``end``, as a
    slow fetch does; with ``every``, fetches from ``slow`` on hand out one record every ``every`` fetches instead.
    Kafka fails to say where the partition ends the first ``failures`` times it is asked. The first time it is asked,
    with ``grow``, partition 1 joins the assignment meanwhile. At fetch number ``defer``, a purge has held an alert
    back: a time for Kafka to vouch for is due (``Subscriber._time_wanted``)."""

    def __init__(self, sub: Subscriber, *, end: int, join: int = 1, slow: int = 1, failures: int = 0,
                 every: int = 0, grow: bool = False, defer: int = 0) -> None:
        self.sub, self.end, self.join, self.slow, self.failures = sub, end, join, slow, failures
        self.every, self.grow, self.defer = every, grow, defer
        self.position = 0
        self.fetches = self.asked = self.handed = 0
        self.assigned: set[TopicPartition] = set()

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[int]]:
        await asyncio.sleep(0.001)  # time passes: each empty fetch is a quiet spell past idle_exit_s=0
        self.fetches += 1
        if self.fetches == self.join:
            self.assigned = {TP}
            await partner._Handover(self.sub, self).on_partitions_assigned({TP})  # type: ignore[arg-type]
        if self.fetches == self.defer:
            self.sub.store = SimpleNamespace(retention=timedelta(days=1))  # type: ignore[assignment]
            self.sub._deferred, self.sub._asked_at = True, None
        if self.every and self.fetches >= self.slow and self.fetches % self.every == 0 and self.position < self.end:
            self.position += 1
            return {TP: [self.position - 1]}
        if not self.every and self.assigned and self.fetches >= self.slow and self.position < self.end:
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
        if self.grow and self.asked == 1:
            self.assigned.add(TP1)
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        return {tp: self.end for tp in tps}


async def _run(monkeypatch: pytest.MonkeyPatch, notes: list[str], step: float = 1.0,
               **feed: Any) -> tuple[_Feed, PuenteError | None, list[int]]:
    """A run of COL's subscriber (no store) with ``idle_exit_s`` 0 over ``_Feed(**feed)``, each batch counted as
    applied and committed, whose clock of quiet spells not caught up (``_steady``) moves ``step`` seconds each time it
    is read; bounded, so that a run that never ends fails rather than hangs. Gives the feed, what the run stopped
    with, and how many times Kafka was asked to vouch for a time."""
    sub = subscriber(BrokerKeys("2026a"), None, lambda: None, notes=notes)  # type: ignore[arg-type, return-value]
    fake = _Feed(sub, **feed)
    ticks = itertools.count()
    asked_time: list[int] = []

    async def batch(got: dict[TopicPartition, list[int]], *_: Any) -> tuple[None, None]:
        fake.handed += sum(len(msgs) for msgs in got.values())
        return None, None

    async def ask_time(*_: Any) -> None:
        asked_time.append(fake.fetches)
        sub._fresh = True  # as a checkpoint Kafka stamped

    monkeypatch.setattr(sub, "_batch", batch)
    monkeypatch.setattr(sub, "_ask_time", ask_time)
    monkeypatch.setattr(sub, "purge", lambda **_: None)
    monkeypatch.setattr(sub, "_steady", lambda: next(ticks) * step)
    monkeypatch.setattr(partner, "fetch_view", lambda feed, tp: FetchView(feed.position, None, None)
                        if tp in feed.assignment() else None, raising=False)
    async with asyncio.timeout(30):
        stopped = await sub._follow(fake, None, Receipts(), ChainWriter(RECEIPTS, 0, chain="COL"),  # type: ignore[arg-type]
                                    0, idle_exit_s=0, limit=None)
    return fake, stopped, asked_time


async def test_a_quiet_spell_while_committed_records_wait_unread_does_not_end_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three committed records whose fetch comes back only at the fourth try: the quiet time runs out at each empty
    fetch, Kafka says the partition ends past the subscriber's position, and the run reads on; it ends once it has
    applied all three and is quiet again."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, end=3, slow=4)
    assert fake.handed == 3 and fake.fetches == 5 and fake.asked == 4 and notes == [] and stopped is None


async def test_a_caught_up_quiet_run_ends_at_its_first_quiet_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty feed: the run asks once where it ends, is caught up, and ends at its first empty fetch."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, end=0)
    assert fake.fetches == 1 and fake.asked == 1 and fake.handed == 0 and notes == [] and stopped is None


async def test_the_idle_clock_starts_at_the_assignment_not_before_the_join(monkeypatch: pytest.MonkeyPatch) -> None:
    """A join that takes three fetches: the empty fetches before it are no quiet spell (nothing is asked, the run goes
    on); the two records are read at the join, and the run ends at the next empty fetch."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, end=2, join=3, slow=3)
    assert fake.handed == 2 and fake.fetches == 4 and fake.asked == 1 and stopped is None


async def test_kafka_not_saying_where_the_feed_ends_is_no_exit_and_no_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka fails to answer twice, within the first 30 s of quiet: each failure counts as not caught up (one check
    per quiet spell, no note yet), and the run ends once Kafka answers that it is caught up."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, end=0, failures=2)
    assert fake.asked == 3 and fake.fetches == 3 and notes == [] and stopped is None


async def test_a_partition_left_behind_with_no_record_coming_stops_the_run_with_exit_4(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three committed records whose fetch never comes back, 10 s of quiet spell each: a note every 30 s names the
    partition and how far behind it is, and after 300 s the run stops with exit 4, not as if caught up."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, step=10.0, end=3, slow=10**9)
    assert isinstance(stopped, KafkaUnavailableError) and stopped.exit_code == EXIT_UNAVAILABLE
    assert f"{FEED}[0] (3 record(s) behind, at 0 of 3)" in str(stopped) and "check that the Kafka nodes" in str(stopped)
    assert fake.asked == int(BEHIND_STOP_S / 10) + 1 and fake.handed == 0
    assert len(notes) == 9 and all("3 record(s) behind" in note for note in notes)


async def test_kafka_never_saying_where_the_feed_ends_stops_the_run_with_exit_4(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka never says where the feed ends: a note every 30 s says so, and after 300 s the run stops with exit 4
    naming it."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, step=10.0, end=0, failures=10**9)
    assert isinstance(stopped, KafkaUnavailableError) and stopped.exit_code == EXIT_UNAVAILABLE
    assert "did not say where" in str(stopped) and "KafkaConnectionError" in str(stopped)
    assert fake.asked == int(BEHIND_STOP_S / 10) + 1
    assert len(notes) == 9 and all("KafkaConnectionError" in note for note in notes)


async def test_a_record_read_starts_the_count_of_quiet_spells_behind_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three records that come one every 20 fetches, 10 s of quiet spell each: 570 s behind in all, but never 300 s
    without a record read, so the run reads all three and ends caught up."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, step=10.0, end=3, every=20)
    assert stopped is None and fake.handed == 3 and fake.fetches == 61


async def test_an_assignment_that_changes_while_kafka_is_asked_is_another_quiet_spell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Partition 1 joins the assignment while Kafka says where partition 0 ends: the answer, of partition 0 alone, is
    no proof of being caught up; the run asks again at the next quiet spell, and ends then."""
    notes: list[str] = []
    fake, stopped, _ = await _run(monkeypatch, notes, end=0, grow=True)
    assert stopped is None and fake.asked == 2 and fake.fetches == 2


async def test_a_time_due_for_kafka_to_vouch_for_is_asked_before_the_run_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge held an alert back during the first fetch (a time ask due, none made): the quiet spell does not end
    the run; the next turn has Kafka vouch for a time, and the run ends at the quiet spell after."""
    notes: list[str] = []
    fake, stopped, asked_time = await _run(monkeypatch, notes, end=0, defer=1)
    assert stopped is None and asked_time == [1] and fake.fetches == 2 and fake.asked == 1
