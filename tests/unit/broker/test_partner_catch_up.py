"""A subscriber killed between its store's commit and Kafka's, whose partition another instance then read on: its
store holds alerts no committed receipt names, so on getting the partition back it reads the batch again, up to the
group's offset, and answers for what it holds (a recall among those records included). The catch-up is kept in the
store: a restart, a rebalance or the group's offsets expiring partway through go on with it, and the group's offset
is never committed back below its end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, GroupFeed, Msg, Receipts, run_batch, sealed, stub_committed, subscriber
from recall_views import recall_notice

import broker.partner as partner
from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.kafka.unreadable import UNREADABLE
from broker.partner import Subscriber
from broker.partner_store import PartnerStore, Retention
from puente.errors import FeedGapError, StoreError
from puente.wire import Unreadable
from tests.unit.broker.test_partner_store import SECRET, _bytes, _view

T0 = datetime.now(UTC) - timedelta(minutes=5)
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


class _Killed(Exception):
    pass


class _KilledAtCommit(Receipts):
    """The process dies as Kafka would commit: the receipts and the group's offsets are aborted."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        raise _Killed


class _Scene:
    """Instance A applied view V at 5 and was killed before Kafka's commit; instance B read V, another alert's view W
    (6) and V's recall R (7) on, committing the group's offset 8. ``later``: a new alert at 8, past B's offset."""

    def __init__(self, tmp_path: Path) -> None:
        self.keys = BrokerKeys("2026a")
        sealer = self.keys.sealer("broker-sign-2026a")
        self.a_store = PartnerStore.open(tmp_path / "a" / "feed.sqlite", "COL", retention=RETENTION)
        self.b_store = PartnerStore.open(tmp_path / "b" / "feed.sqlite", "COL", retention=RETENTION)
        self.notes: list[str] = []
        self.a = self.instance()
        self.b = subscriber(self.keys, self.b_store, lambda: datetime.now(UTC))
        self.first = sealed(sealer, _view("senan-gofast-seizure"), 4, T0)
        self.view = _view(summary=f"Avistamiento reportado por {SECRET}")
        self.v = sealed(sealer, self.view, 5, T0)
        self.w = sealed(sealer, _view("paso-canoas-migrant-flow"), 6, T0)
        self.r = sealed(sealer, recall_notice(self.view, 2, "ERROR"), 7, T0)
        self.later = sealed(sealer, _view("tocumen-red-notice-hit"), 8, T0)
        self.sealer = sealer

    def instance(self) -> Subscriber:
        """Instance A's subscriber over its store (a new one stands for a restart)."""
        return subscriber(self.keys, self.a_store, lambda: datetime.now(UTC), notes=self.notes)

    async def crash_and_hand_over(self) -> None:
        assert (await run_batch(self.a, self.first))[0] is None  # committed: A's store confirmed 5
        with pytest.raises(_Killed):
            await run_batch(self.a, self.v, receipts=_KilledAtCommit())
        assert self.a_store.feed_offset(FEED, 0) == 6 and self.a_store.feed_offset(FEED, 0, confirmed=True) == 5
        _, b_receipts = await run_batch(self.b, self.v, self.w, self.r)
        assert b_receipts.statuses() == ["RECEIVED", "RECEIVED", "RECALLED"] and b_receipts.offsets == {TP: 8}

    def close(self) -> None:
        self.a_store.close()
        self.b_store.close()


def _b_tag(scene: _Scene) -> str:
    return f"b|{scene.b_store.store_id}"


def _receipted(receipts: Receipts) -> list[str]:
    return [x["feed"] for x in receipts.sent if x["kind"] == "RECEIPT"]


async def test_a_store_that_applied_a_batch_another_instance_read_on_catches_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A, given the partition back, reads 5-7 again: V and R get their receipts in A's chain (RECEIVED, RECALLED) and
    the text goes from A's store; W, B's alone, is neither stored nor receipted; the group's offset stays 8."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    feed = GroupFeed()
    await scene.a._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [5] and "reading 3 record(s) from 5 again" in scene.notes[-1]
    _, a_receipts = await run_batch(scene.a, scene.v, scene.w, scene.r)
    assert a_receipts.statuses() == ["RECEIVED", "RECALLED"] and a_receipts.offsets == {TP: 8}
    assert _receipted(a_receipts) == [f"{FEED}:0:5", f"{FEED}:0:7"]
    assert scene.a_store.show(scene.view["alert_id"]).state == "RECALLED"
    assert not scene.a_store.has_row(scene.w.key.decode())
    assert SECRET.encode() not in _bytes(scene.a_store.path)
    assert scene.a_store.catch_up(FEED, 0) is None  # Kafka committed its end: over
    # Past the group's offset, every record is this store's again.
    assert (await run_batch(scene.a, scene.later))[1].statuses() == ["RECEIVED"]
    scene.close()


async def test_a_catch_up_stopped_partway_goes_on_after_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catch-up's first batch (V) committed the group's offset at the catch-up's end, 8, under A's own tag; A
    restarted there goes on with the catch-up from where its store confirmed (6), so W, B's, is still not taken
    as A's (a store behind its own commit would otherwise read everything again into itself)."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    _, first = await run_batch(scene.a, scene.v)
    assert first.statuses() == ["RECEIVED"] and first.offsets == {TP: 8}  # never back below the catch-up's end
    assert scene.a_store.catch_up(FEED, 0) == (5, 8) and scene.a_store.feed_offset(FEED, 0, confirmed=True) == 6
    restarted = scene.instance()
    stub_committed(monkeypatch, (8, restarted.commit_tag))
    feed = GroupFeed()
    await restarted._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [6]
    _, rest = await run_batch(restarted, scene.w, scene.r)
    assert rest.statuses() == ["RECALLED"] and rest.offsets == {TP: 8}
    assert not scene.a_store.has_row(scene.w.key.decode()) and scene.a_store.catch_up(FEED, 0) is None
    scene.close()


async def test_a_catch_up_killed_at_its_commit_reads_its_batch_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catch-up's own batch killed between the store's commit and Kafka's: the next run reads it again from the
    confirmed offset, still passing over B's records, and each record gets the status it first had (V RECEIVED,
    though the recall in the same batch replaced its row since: the store kept V's outcome, never judging it again
    against the recall held)."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    with pytest.raises(_Killed):
        await run_batch(scene.a, scene.v, scene.w, scene.r, receipts=_KilledAtCommit())
    restarted = scene.instance()
    feed = GroupFeed()
    await restarted._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [5]
    _, again = await run_batch(restarted, scene.v, scene.w, scene.r)
    assert again.statuses() == ["RECEIVED", "RECALLED"] and again.offsets == {TP: 8}
    assert _receipted(again) == [f"{FEED}:0:5", f"{FEED}:0:7"] and scene.a_store.catch_up(FEED, 0) is None
    scene.close()


async def test_a_catch_up_handed_over_midway_is_extended_to_the_other_instances_offset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Revoked after the catch-up's first batch, the partition went back to B, which read on to 10; A, given it
    again, catches up from 6 to 10: records of alerts it holds are applied, B's new ones passed over."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    assert (await run_batch(scene.a, scene.v))[1].offsets == {TP: 8}
    ninth = sealed(scene.sealer, _view("colon-panama-only-seizure"), 9, T0)  # an alert A never held
    stub_committed(monkeypatch, (10, _b_tag(scene)))
    feed = GroupFeed()
    await scene.a._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [6] and "another instance read on to offset 10" in scene.notes[-1]
    _, rest = await run_batch(scene.a, scene.w, scene.r, scene.later, ninth)
    assert rest.statuses() == ["RECALLED"] and rest.offsets == {TP: 10}
    assert scene.a_store.catch_up(FEED, 0) is None
    scene.close()


async def test_a_catch_up_goes_on_when_the_groups_offsets_are_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's offsets expired mid catch-up (no committed offset): A reads on from its confirmed offset, as
    always then, and still passes over B's records before the catch-up's end."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    await run_batch(scene.a, scene.v)
    restarted = scene.instance()

    async def same_topic(feed: Any, tp: TopicPartition, at: int, store: PartnerStore) -> bool:
        return False
    monkeypatch.setattr(restarted, "_remade", same_topic)
    stub_committed(monkeypatch, None)
    feed = GroupFeed()
    await restarted._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [6]
    _, rest = await run_batch(restarted, scene.w, scene.r)
    assert rest.statuses() == ["RECALLED"] and rest.offsets == {TP: 8}
    scene.close()


async def test_a_topic_made_anew_ends_a_catch_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catch-up of a feed topic deleted and made again is over (``_gap``, --accept-gap): the new topic is read
    from its first record like any other, committed there, not at the old topic's catch-up end; every record of the
    new topic is this store's."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    scene.a.accept_gaps = True
    feed = GroupFeed(begin=0, end=2)  # made anew: it ends before the next record, 5
    await scene.a._gap(feed, {TP: 5})  # type: ignore[arg-type]
    assert feed.seeks == [0] and feed.commits == [0] and scene.a_store.catch_up(FEED, 0) is None
    fresh = sealed(scene.sealer, _view("paso-canoas-migrant-flow"), 0, T0)  # W's alert, new to this store
    _, receipts = await run_batch(scene.a, fresh)
    assert receipts.statuses() == ["RECEIVED"] and receipts.offsets == {TP: 1}
    scene.close()


async def test_records_deleted_mid_catch_up_are_read_past_with_a_note_and_no_gap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed's retention deleted records the catch-up had still to read: another instance read and receipted
    them, so no delivery is lost and the run does not stop (--accept-gap or not): it says so and reads on from the
    partition's first record, the group's offset committed at the catch-up's end, never back below it. Deleted
    past the catch-up's end too, the rest is a gap like any other."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    feed = GroupFeed(begin=7, end=9)
    await scene.a._gap(feed, {TP: 5})  # type: ignore[arg-type]
    assert "records 5-6 were deleted" in scene.notes[-1] and "no delivery is lost" in scene.notes[-1]
    assert feed.seeks == [7] and feed.commits == [8] and scene.a_store.catch_up(FEED, 0) == (5, 8)
    assert scene.a.stats.skipped == 0
    _, receipts = await run_batch(scene.a, scene.r)
    assert receipts.statuses() == ["RECALLED"] and receipts.offsets == {TP: 8}
    other = _Scene(tmp_path / "other")
    await other.crash_and_hand_over()
    await other.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    with pytest.raises(FeedGapError, match="records 8-9 were deleted"):
        await other.a._gap(GroupFeed(begin=10, end=12), {TP: 5})  # type: ignore[arg-type]
    scene.close()
    other.close()


async def test_a_revocation_during_a_catch_up_batch_does_not_change_how_it_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebalance revokes the partition while a catch-up batch is sending its receipts (its callback runs at the
    batch's awaits): the batch still passes over B's records and commits the group's offset at the catch-up's end,
    as it began; the partition's next owner reads on from there."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]

    async def visible(*args: Any, **kwargs: Any) -> bool:
        return True
    monkeypatch.setattr(partner, "offsets_visible", visible)
    revoking: list[asyncio.Task[None]] = []

    class RevokedMidBatch(Receipts):
        async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
            sent = await super().send(topic, value, **kwargs)
            if not revoking:
                revoking.append(asyncio.ensure_future(scene.a._hand_over(GroupFeed(), {TP})))  # type: ignore[arg-type]
                await asyncio.sleep(0)  # the callback runs up to its wait for the batch
            return sent

    receipts = RevokedMidBatch()
    async with scene.a._busy:  # held by the batch, as ``_follow`` holds it
        await run_batch(scene.a, scene.v, scene.w, receipts=receipts)
    await revoking[0]
    assert receipts.statuses() == ["RECEIVED"] and receipts.offsets == {TP: 8}
    assert not scene.a_store.has_row(scene.w.key.decode()) and scene.a_store.catch_up(FEED, 0) == (5, 8)
    scene.close()


async def test_a_group_offset_below_a_kept_catch_ups_end_ends_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed topic deleted and made again while A was away, and another instance read the new one first (its
    group offset 3, below the kept catch-up's end, 8, which no one commits below on the topic it was kept for): the
    catch-up is over, and A reads on from the group's offset, passing nothing of the new topic over."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    await run_batch(scene.a, scene.v)
    assert scene.a_store.catch_up(FEED, 0) == (5, 8)
    stub_committed(monkeypatch, (3, "c|" + "c" * 32))
    restarted = scene.instance()
    feed = GroupFeed(begin=0, end=10)
    await restarted._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and scene.a_store.catch_up(FEED, 0) is None and restarted._catch_up == {}
    new = sealed(scene.sealer, _view("colon-panama-only-seizure"), 3, T0)
    _, receipts = await run_batch(restarted, new)
    assert receipts.statuses() == ["RECEIVED"] and receipts.offsets == {TP: 4}
    scene.close()


async def test_a_record_of_another_store_is_passed_over_before_its_key_block_is_judged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the catch-up, a record of an alert the store never held is B's: passed over, not judged by this
    subscriber's key-block rules (a block dated ahead of its clock stopped A at a delivery B took and receipted)."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    ahead = sealed(scene.sealer, _view("paso-canoas-migrant-flow"), 6, T0 + timedelta(days=3))
    unread, receipts = await run_batch(scene.a, scene.v, ahead, scene.r)
    assert unread is None and receipts.statuses() == ["RECEIVED", "RECALLED"] and receipts.offsets == {TP: 8}
    scene.close()


async def test_a_recall_taken_of_an_alert_another_store_held_is_not_a_holding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recall this store took of an alert it never held, on a partition it took over (RECALL_NOT_HELD, its
    tombstone marked held elsewhere), does not make the alert this store's: within a catch-up its later views are
    B's, passed over."""
    scene = _Scene(tmp_path)
    with scene.a_store.transaction():
        scene.a_store.note_taken_over(FEED, 0, 0)
    x = _view("paso-canoas-migrant-flow")
    _, first = await run_batch(scene.a, sealed(scene.sealer, recall_notice(x, 2, None), 3, T0), scene.first)
    assert first.statuses() == ["RECALL_NOT_HELD", "RECEIVED"] and not scene.a_store.has_row(x["alert_id"])
    scene.close()


async def test_a_store_whose_receipts_all_committed_reads_on_from_the_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that read a partition up to where the group's offset stands (nothing there another store read since)
    reads on from the group's offset: nothing is read again."""
    scene = _Scene(tmp_path)
    assert (await run_batch(scene.a, scene.first))[0] is None
    stub_committed(monkeypatch, (5, _b_tag(scene)))
    feed = GroupFeed()
    await scene.a._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and scene.a_store.catch_up(FEED, 0) is None
    scene.close()


def test_a_damaged_catch_up_is_refused(tmp_path: Path) -> None:
    """A kept catch-up that is not a pair of offsets, from before to its end, stops the run rather than be read
    as none (which would take the other instance's records as this store's, or leave a recall unapplied)."""
    with PartnerStore.open(tmp_path / "feed.sqlite", "COL", retention=RETENTION) as store:
        for value in ('{"from": 8, "to": 8}', '{"from": -1, "to": 3}', '{"from": true, "to": 3}', "[5, 8]", "x"):
            store._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                                "value = excluded.value", (f"feed-catch-up:{FEED}[0]", value))
            with pytest.raises(StoreError, match=r"catch-up of feed partition .* is damaged"):
                store.catch_up(FEED, 0)


def test_a_confirmed_offset_ends_a_catch_up_only_at_its_end(tmp_path: Path) -> None:
    with PartnerStore.open(tmp_path / "feed.sqlite", "COL", retention=RETENTION) as store:
        store.keep_catch_up(FEED, 0, 5, 8)
        store.confirm_feed_offsets({(FEED, 0): 7})
        assert store.catch_up(FEED, 0) == (5, 8)
        store.confirm_feed_offsets({(FEED, 0): 8})
        assert store.catch_up(FEED, 0) is None


class _RevokingFeed(GroupFeed):
    """Its offsets asked, a rebalance's revocation callback runs meanwhile (aiokafka runs it at any await)."""

    def __init__(self, scene: _Scene, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scene = scene
        self.revoking: asyncio.Task[None] | None = None

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.revoking is None:
            self.revoking = asyncio.ensure_future(self.scene.a._hand_over(GroupFeed(), {TP}))  # type: ignore[arg-type]
            await asyncio.sleep(0)
        return await super().beginning_offsets(tps)


async def test_a_gap_judged_or_a_batch_read_as_a_revocation_begins_keeps_the_catch_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revocation beginning while a gap in the catch-up is judged, or before a batch fetched meanwhile is read (the
    partition is held until the rebalance ends): both still read by the catch-up. No false stop, no group offset
    committed back below its end, no record of B's taken."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    assert (await run_batch(scene.a, scene.v))[1].offsets == {TP: 8}

    async def visible(*args: Any, **kwargs: Any) -> bool:
        return True
    monkeypatch.setattr(partner, "offsets_visible", visible)
    feed = _RevokingFeed(scene, begin=7, end=9)  # retention deleted 6, B's W
    async with scene.a._busy:
        await scene.a._gap(feed, {TP: 6})  # type: ignore[arg-type]
    assert feed.revoking is not None
    await feed.revoking
    assert feed.commits == [8] and any("no delivery is lost" in note for note in scene.notes)
    _, rest = await run_batch(scene.a, scene.w, scene.r)  # a batch fetched while the callback ran
    assert rest.statuses() == ["RECALLED"] and rest.offsets == {TP: 8}
    assert not scene.a_store.has_row(scene.w.key.decode())
    scene.close()


async def test_with_no_group_offset_and_nothing_confirmed_a_kept_catch_up_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A's first batch in the partition killed at Kafka's commit (nothing confirmed there), B read on, A kept a
    catch-up; then the group's offsets are gone (the feed topic made anew). With nothing confirmed, the topic cannot
    be told the same: the catch-up is over and every record read is A's, never a new topic's passed over."""
    scene = _Scene(tmp_path)
    with pytest.raises(_Killed):
        await run_batch(scene.a, scene.v, receipts=_KilledAtCommit())
    await run_batch(scene.b, scene.v, scene.w, scene.r)
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    assert scene.a_store.catch_up(FEED, 0) == (5, 8)
    restarted = scene.instance()
    stub_committed(monkeypatch, None)
    await restarted._resume(GroupFeed(begin=0, end=3), {TP})  # type: ignore[arg-type]
    assert restarted._catch_up == {} and scene.a_store.catch_up(FEED, 0) is None
    fresh = [sealed(scene.sealer, _view(name), at, T0)
             for at, name in enumerate(["colon-panama-only-seizure", "tocumen-red-notice-hit"])]
    _, receipts = await run_batch(restarted, *fresh)
    assert receipts.statuses() == ["RECEIVED", "RECEIVED"] and receipts.offsets == {TP: 2}
    scene.close()


async def test_a_record_that_does_not_open_within_the_catch_up_is_passed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the catch-up, the group's offset already stands past a record that does not open here (another
    instance opened it, or gave it up): passed over with a note and no receipt, rather than a stop saying nothing
    past it was committed, and a second "given up" receipt for a delivery already answered for."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    bad = scene.w._replace(value=scene.w.value[:-1] + bytes([scene.w.value[-1] ^ 1]))
    unread, receipts = await run_batch(scene.a, scene.v, bad, scene.r)
    assert unread is None and receipts.statuses() == ["RECEIVED", "RECALLED"] and receipts.offsets == {TP: 8}
    assert "does not open (DecryptionError), but lies within this store's catch-up" in "\n".join(scene.notes)
    scene.close()


async def test_a_record_of_a_held_alert_that_does_not_open_within_the_catch_up_stops_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the catch-up, a record of an alert this store holds that does not open here (the recall of V, sealed
    for another key, or dated ahead of this host's clock) is not passed over: the run stops, with a REJECTED
    receipt, the catch-up kept, so a run with the right keys or clock applies it; the stop says the group's offset
    already stands past it."""
    for broken in ("sealed wrong", "dated ahead"):
        scene = _Scene(tmp_path / broken.replace(" ", "-"))
        await scene.crash_and_hand_over()
        stub_committed(monkeypatch, (8, _b_tag(scene)))
        await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
        recall = (scene.r._replace(value=scene.r.value[:-1] + bytes([scene.r.value[-1] ^ 1]))
                  if broken == "sealed wrong" else
                  sealed(scene.sealer, recall_notice(scene.view, 2, "ERROR"), 7, T0 + timedelta(days=3)))
        unread, receipts = await run_batch(scene.a, scene.v, recall)
        assert unread is not None and "the group's offset stands past it" in str(unread)
        assert receipts.statuses()[0] == "RECEIVED" and receipts.statuses()[1].startswith("REJECTED")
        assert scene.a_store.catch_up(FEED, 0) == (5, 8) and scene.a_store.feed_offset(FEED, 0, confirmed=True) == 6
        assert scene.a_store.show(scene.view["alert_id"]).state == "HELD"
        scene.close()


async def test_a_batch_the_client_cannot_read_within_the_catch_up_is_passed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch this Kafka client cannot read (compressed), wholly within the catch-up: another instance read past it,
    so it is passed over with a note, not a stop saying nothing of it was committed."""
    scene = _Scene(tmp_path)
    await scene.crash_and_hand_over()
    stub_committed(monkeypatch, (8, _b_tag(scene)))
    await scene.a._resume(GroupFeed(), {TP})  # type: ignore[arg-type]
    blob = SimpleNamespace(topic=FEED, partition=0, offset=7, key=None, value=None, timestamp=0, timestamp_type=1,
                           headers=[(UNREADABLE, Unreadable("a gzip-compressed batch, not inflated", 6, 7))])
    receipts = Receipts()
    unread, _ = await scene.a._batch({TP: [Msg(scene.v), blob]}, None, receipts,
                                     ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    assert unread is None and receipts.statuses() == ["RECEIVED"] and receipts.offsets == {TP: 8}
    assert "cannot read, within this store's catch-up" in "\n".join(scene.notes)
    scene.close()


def test_a_store_restored_from_before_it_read_a_partition_reads_it_all_again(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A store backed up before its subscriber first committed in a partition, then restored: the group's offset
    carries this very store's id, and the store has no offset there. It reads the partition again from its first
    record, saying so, and holds its alerts again; before, it read on from the group's offset, and alerts its lost
    copy had receipted as RECEIVED never came back, with nothing said."""
    import shutil

    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    path = tmp_path / "col" / "feed.sqlite"
    PartnerStore.open(path, "COL", retention=RETENTION).close()
    shutil.copytree(tmp_path / "col", tmp_path / "backup")  # a nightly backup, before any record was read
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    first = subscriber(keys, store, lambda: datetime.now(UTC))
    records = [sealed(sealer, _view(name), offset, T0) for offset, name in
               enumerate(["senan-gofast-seizure", "paso-canoas-migrant-flow", "tocumen-red-notice-hit"])]
    unread, receipts = asyncio.run(run_batch(first, *records))
    assert unread is None and receipts.statuses() == ["RECEIVED"] * 3 and store.counts().held == 3
    store.close()
    shutil.rmtree(tmp_path / "col")
    shutil.copytree(tmp_path / "backup", tmp_path / "col")  # the disk lost; the backup restored

    async def committed_with_metadata(consumer: Any, tp: TopicPartition) -> tuple[int, str]:
        return 3, first.commit_tag  # the group's offset, committed by this very store

    monkeypatch.setattr(partner, "committed_with_metadata", committed_with_metadata)
    restored = PartnerStore.open(path, "COL", retention=RETENTION)
    notes: list[str] = []
    again = subscriber(keys, restored, lambda: datetime.now(UTC), notes=notes)
    assert again.commit_tag == first.commit_tag  # the same store, as a copy restored is
    feed = GroupFeed()
    asyncio.run(again._resume(feed, {TP}))  # type: ignore[arg-type]
    assert feed.seeks == [0]
    assert len(notes) == 1 and "has no offset of its own there" in notes[0] and "reading 3 record(s) again" in notes[0]
    assert "each is marked passed on as it is applied" in notes[0]
    unread, receipts = asyncio.run(run_batch(again, *records))
    assert unread is None and restored.counts().held == 3
    restored.close()


def test_a_batch_kafka_committed_stays_counted_when_the_store_fails_after(tmp_path: Path) -> None:
    """The store busy as it notes Kafka's commit (another process holding it): the batch's receipts and offsets are
    committed and the store holds its alert, so the run's counts keep it; set back, the summary said nothing of a
    batch applied and acknowledged. A failure before the commit still sets them back (the batch comes again)."""
    from puente.errors import StoreBusy

    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    store = PartnerStore.open(tmp_path / "s" / "feed.sqlite", "COL", retention=RETENTION)
    sub = subscriber(keys, store, lambda: datetime.now(UTC))

    def busy(*args: Any, **kwargs: Any) -> None:
        raise StoreBusy("another process holds the store")

    store.confirm_feed_offsets = busy  # type: ignore[method-assign]
    receipts = Receipts()
    with pytest.raises(StoreBusy):
        asyncio.run(run_batch(sub, sealed(sealer, _view("senan-gofast-seizure"), 0, T0), receipts=receipts))
    assert receipts.statuses() == ["RECEIVED"] and store.counts().held == 1 and sub.stats.received == 1
    # Killed at Kafka's commit instead: nothing committed, nothing counted.
    later = subscriber(keys, store, lambda: datetime.now(UTC))
    with pytest.raises(_Killed):
        asyncio.run(run_batch(later, sealed(sealer, _view("paso-canoas-migrant-flow"), 1, T0),
                              receipts=_KilledAtCommit()))
    assert later.stats.received == 0
    store.close()
