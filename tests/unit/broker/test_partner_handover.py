"""A subscriber instance hands a feed partition over only after its batch in flight and its commit show."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as aiokafka_errors
from aiokafka.structs import OffsetAndMetadata

from broker.kafka import KafkaConnection, offsets_visible
from broker.partner import RECALL_NOT_HELD, Subscriber, _Handover
from broker.partner_store import Delivery, PartnerStore

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


async def test_a_batch_returned_across_a_revocation_keeps_only_partitions_still_held() -> None:
    """getmany waits, the group revokes meanwhile (the callback runs while it waits), and getmany then returns
    records of a partition given away and of one this instance still holds: the first are the new owner's (from the
    committed offsets), never receipted here; the second are handled, not dropped (the fetcher is past them)."""
    notes: list[str] = []
    sub = _subscriber(notes)
    handled: list[Any] = []
    kept = TopicPartition("t.feed.COL", 2)
    held = {TP, kept}

    class Feed:
        calls = 0

        def assignment(self) -> set[TopicPartition]:
            return set(held)

        def paused(self) -> set[TopicPartition]:
            return set()

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
            Feed.calls += 1
            if Feed.calls == 1:
                await asyncio.sleep(0)
                sub._generation += 1  # what _hand_over does first, as a revocation begins
                held.discard(TP)  # TP is given away; ``kept`` stays
                return {TP: ["a record of the revoked partition"], kept: ["a record of a partition still held"]}
            sub.stop()
            return {}

    async def batch(got: dict[TopicPartition, list[Any]], *args: Any) -> tuple[None, None]:
        handled.append(got)
        return None, None

    sub._batch = batch  # type: ignore[method-assign, assignment]
    assert await sub._follow(Feed(), None, object(), object(), 0, None, None) is None  # type: ignore[arg-type]
    assert handled == [{kept: ["a record of a partition still held"]}] and Feed.calls == 2


TP0 = TopicPartition("t.feed.COL", 0)


class _Group:
    """The group's committed offsets and their metadata, answered after a round trip, as OffsetFetch does."""

    def __init__(self, committed: dict[TopicPartition, tuple[int, str]]) -> None:
        self.committed = committed

    async def fetch_committed_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        await asyncio.sleep(0.01)
        return {tp: OffsetAndMetadata(*self.committed[tp]) for tp in tps if tp in self.committed}


class _Feed:
    """A feed consumer owning ``assigned``: where each partition is sought, and one early batch of TP's records."""

    def __init__(self, group: _Group, assigned: set[TopicPartition], sub: Subscriber) -> None:
        self._coordinator, self.assigned, self.sub = group, assigned, sub
        self.seeks: dict[TopicPartition, int] = {}
        self.held: set[TopicPartition] = set()
        self.calls = 0

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps: TopicPartition) -> None:
        self.held |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.held -= set(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.held)

    def seek(self, tp: TopicPartition, at: int) -> None:
        self.seeks[tp] = at

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        self.calls += 1
        if self.calls == 1:  # the fetcher, at the group's offsets, would return TP's next record meanwhile
            await asyncio.sleep(0.005)
            return {} if TP in self.held else {TP: [SimpleNamespace(offset=50)]}
        self.sub.stop()
        return {}


def _with_store(tmp_path: Path, instance: str = "default") -> tuple[Subscriber, PartnerStore]:
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL")
    with store.transaction():  # a backup restored: the store stands at 10 on both partitions
        store.keep_feed_offsets({(TP0.topic, 0): 10, (TP.topic, 1): 10})
    notes: list[str] = []
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", "t.receipts.COL",
                     object(), object(), signer=object(), on_note=notes.append, store=store,  # type: ignore[arg-type]
                     instance=instance)
    return sub, store


async def test_no_batch_is_handled_before_the_store_is_compared_with_the_group(tmp_path: Path) -> None:
    """aiokafka lets the fetcher run while the assignment listener awaits Kafka: a batch of a partition fetched
    from the group's offset before the listener set where it starts is not applied (it would move the store to
    the group's offset and hide the gap); the partition is sought back to the store's offset, records 10 to 49
    are read again, and no batch reaches the store before that."""
    sub, store = _with_store(tmp_path)
    group = _Group({TP0: (50, sub.commit_tag), TP: (50, sub.commit_tag)})
    feed = _Feed(group, {TP0, TP}, sub)
    applied: list[Any] = []

    async def batch(*args: Any) -> tuple[None, None]:
        applied.append(args[0])
        return None, None

    sub._batch = batch  # type: ignore[method-assign, assignment]
    sub._keep_head = lambda *a: None  # type: ignore[method-assign]
    sub.purge = lambda force=False: None  # type: ignore[method-assign]
    listener = _Handover(sub, feed)  # type: ignore[arg-type]
    await asyncio.gather(listener.on_partitions_assigned({TP0, TP}),
                         sub._follow(feed, None, object(), object(), 0, None, None))  # type: ignore[arg-type]
    assert sub._resume_failed is None and applied == [] and feed.held == set()
    assert feed.seeks == {TP0: 10, TP: 10} and store.feed_offset(TP.topic, 1) == 10
    store.close()


async def test_a_partition_another_instance_read_on_is_caught_up_on(tmp_path: Path) -> None:
    """Instance B gets back a partition instance A read on since B last owned it: B's store stands where B left it,
    and A's store holds what A read. B reads A's records again as a catch-up (``_catch_store_up``: only those of
    alerts B's store holds or held are applied and receipted, so a recall or correction of what B holds reaches it;
    A's own are passed over, never stored twice), up to the group's offset; its own store restored behind its own
    commits goes back too."""
    sub, store = _with_store(tmp_path, instance="b")
    group = _Group({TP0: (50, "a|" + "0" * 32), TP: (50, sub.commit_tag)})
    feed = _Feed(group, {TP0, TP}, sub)
    await _Handover(sub, feed).on_partitions_assigned({TP0, TP})  # type: ignore[arg-type]
    assert sub._resume_failed is None and feed.seeks == {TP0: 10, TP: 10} and feed.held == set()
    assert sub._catch_up == {TP0: 50} and store.catch_up(TP0.topic, 0) == (10, 50)
    assert sub.commit_tag == f"b|{store.store_id}"
    assert store.taken_over(TP0.topic, 0) and not store.taken_over(TP.topic, 1)
    store.close()


def test_a_recall_of_an_alert_another_store_may_hold_is_not_acknowledged(tmp_path: Path) -> None:
    """On a partition taken over from another instance's store, a recall of an alert this store never held says
    RECALL_NOT_HELD (that store may hold it), not RECALLED; one of an alert it held, or on a partition it read
    whole, is RECALLED as before."""
    sub, store = _with_store(tmp_path, instance="b")
    notes: list[str] = []
    sub.on_note = notes.append
    store.note_taken_over(TP0.topic, 0, 50)
    now = datetime.now(UTC)

    def recall(alert_id: str, feed: str, version: int = 2) -> str:
        d = Delivery(alert_id, "SEIZURE", version, "RECALL", None, feed, None, None, None)  # no reason: not for good
        with store.transaction():
            return sub._apply(d, now)[0]

    assert recall("SNM:A", f"{TP0.topic}:0:60") == RECALL_NOT_HELD
    assert "never held it, and took the partition over from another store" in notes[-1]
    # The same record read again (its Kafka transaction aborted), or a second recall: still no acknowledgement.
    assert recall("SNM:A", f"{TP0.topic}:0:60") == RECALL_NOT_HELD
    assert recall("SNM:A", f"{TP0.topic}:0:70") == RECALL_NOT_HELD
    assert recall("SNM:B", f"{TP.topic}:1:60") == "RECALLED"
    with store.transaction():
        store.apply(Delivery("SNM:C", "SEIZURE", 1, None, None, f"{TP0.topic}:0:61", None, None, "{}"), now)
    assert recall("SNM:C", f"{TP0.topic}:0:62") == "RECALLED"
    # A view of A taken here later: held here from then on, so its recall is this store's to acknowledge.
    with store.transaction():
        store.apply(Delivery("SNM:A", "SEIZURE", 3, "UPDATE", None, f"{TP0.topic}:0:80", None, None, "{}"), now)
    assert not store.held_elsewhere("SNM:A")
    assert recall("SNM:A", f"{TP0.topic}:0:81", 3) == "RECALLED"
    store.close()
