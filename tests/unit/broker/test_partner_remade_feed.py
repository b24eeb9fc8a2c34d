"""A feed topic deleted and made again: Kafka drops the group's offsets with it, and a subscriber resuming from its
store's confirmed offset checks that the record before it is the one the store read there, never reading the new
topic on from the old one's offset (its records before that would be passed unread, unstored, unreceipted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, GroupFeed, run_batch, sealed, subscriber

import broker.partner as partner
from broker.kafka import TopicPartition
from broker.partner import Subscriber, record_mark, remade_feed
from broker.partner_store import PartnerStore, Retention
from puente.errors import FeedGapError, StoreError
from puente.wire import Record, Unreadable
from tests.unit.broker.test_partner_store import _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "broker-sign-2026a"
TP = TopicPartition(FEED, 0)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


async def _no_group_offset(consumer: Any, tp: TopicPartition) -> None:
    return None


def _reading(sub: Subscriber, found: Record | None, asked: list[int], high: int | None = None) -> None:
    """The subscriber's own readers find ``found`` as the last record before wherever they are asked (and note
    where), and the partition's high-water mark at ``high``."""
    async def last_before(tp: TopicPartition, at: int) -> Record | None:
        asked.append(at)
        return found

    async def high_water(tp: TopicPartition) -> int:
        assert high is not None, "the high-water mark was not to be asked"
        return high
    sub._last_before = last_before  # type: ignore[method-assign]
    sub._high = high_water  # type: ignore[method-assign]


async def _store_that_read(tmp_path: Path, keys: BrokerKeys) -> tuple[PartnerStore, Record]:
    """A store that read the old feed topic's records 0-4 (one batch, committed): confirmed at 5."""
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    records = [sealed(keys.sealer(KEY), _view(alert_id=f"SENAFRONT:BD-{n}"), n, T0) for n in range(5)]
    unread, _ = await run_batch(subscriber(keys, store, lambda: T0), *records)
    assert unread is None and store.feed_offset(FEED, 0, confirmed=True) == 5
    return store, records[-1]


async def test_a_topic_made_anew_and_filled_past_the_store_stops_the_subscriber(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group has no offset (the topic was deleted), the new topic holds 0-7999: its record at 4 is another one,
    so the subscriber stops (FeedGapError naming --accept-gap), never seeking to 5 past the new records 0-4."""
    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    keys = BrokerKeys("2026a")
    store, _ = await _store_that_read(tmp_path, keys)
    notes: list[str] = []
    sub = subscriber(keys, store, lambda: T0, notes=notes)
    another = sealed(keys.sealer(KEY), _view(alert_id="SENAFRONT:BD-NEW"), 4, T0 + timedelta(days=1))
    asked: list[int] = []
    _reading(sub, another, asked)
    feed = GroupFeed(0, 8000)
    with pytest.raises(FeedGapError) as stop:
        await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and asked == [5]
    assert "the last record before offset 5 is not the one the store read there" in str(stop.value)
    assert "--accept-gap" in str(stop.value) and "records 0-4" in str(stop.value) and "\n" not in str(stop.value)
    store.close()


async def test_the_same_topic_is_read_on_from_the_confirmed_offset(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's offsets expired, the topic is the same: the record before the confirmed offset is the one the store
    read, and the subscriber reads on from there, as before."""
    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    keys = BrokerKeys("2026a")
    store, last = await _store_that_read(tmp_path, keys)
    notes: list[str] = []
    sub = subscriber(keys, store, lambda: T0, notes=notes)
    _reading(sub, last, [])
    feed = GroupFeed(0, 9)
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [5] and "reading on from offset 5" in notes[-1]
    store.close()


async def test_with_accept_gap_a_topic_made_anew_is_read_from_its_first_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--accept-gap reads the new topic from its first record, with a note, and the store stands there too, so a run
    that ends before its first batch commits starts there again rather than at the old topic's offset."""
    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    keys = BrokerKeys("2026a")
    store, _ = await _store_that_read(tmp_path, keys)
    notes: list[str] = []
    sub = subscriber(keys, store, lambda: T0, notes=notes)
    sub.accept_gaps = True
    _reading(sub, None, [])
    feed = GroupFeed(0, 8000)
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [0] and "reading it from its first record, 0 (--accept-gap)" in notes[-1]
    assert store.feed_offset(FEED, 0, confirmed=True) == 0 and store.feed_mark(FEED, 0) == (-1, None)
    store.close()


async def test_a_store_with_no_mark_is_not_taken_on_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store kept by an earlier Puente has a confirmed offset and no mark: with the group's offsets gone, nothing
    tells the topic is the same, so the subscriber stops rather than read on from 5000 (the reviewer's probe)."""
    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    with store.transaction():
        store.keep_feed_offsets({(FEED, 0): 5000})
    store.confirm_feed_offsets({(FEED, 0): 5000})
    sub = subscriber(BrokerKeys("2026a"), store, lambda: T0)
    asked: list[int] = []
    _reading(sub, None, asked)
    feed = GroupFeed(0, 8000)
    with pytest.raises(FeedGapError, match="keeps no mark of the record before offset 5000"):
        await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and asked == []
    store.close()


async def test_a_topic_made_anew_with_a_transaction_open_across_the_offset_is_not_read_past(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new topic holds committed records 0-4 and a transaction still open from 6 to 15: its last stable offset
    (6) is before the store's offset 12, its high-water mark (16) past it. The subscriber stops in one line, never
    seeking to 12 past the new records 0-11, and reads nothing it cannot compare yet."""
    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    with store.transaction():
        store.keep_feed_offsets({(FEED, 0): 12})
    store.confirm_feed_offsets({(FEED, 0): 12}, {(FEED, 0): record_mark(_record(11, b"old-11"))})
    sub = subscriber(BrokerKeys("2026a"), store, lambda: T0)
    asked: list[int] = []
    _reading(sub, None, asked, high=16)
    feed = GroupFeed(0, 6)  # read_committed: it ends at the open transaction
    with pytest.raises(FeedGapError) as stop:
        await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and asked == []
    assert "a transaction open on it from offset 6 to past 11 has not ended" in str(stop.value)
    assert "records 0-11" in str(stop.value) and "\n" not in str(stop.value)
    store.close()


async def test_the_last_committed_record_before_the_offset_is_compared_past_a_marker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same topic, the store's offset 6 just past a transaction's commit marker at 5: the last committed record
    before it (4) is the one the store read, so the subscriber reads on from 6."""
    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    with store.transaction():
        store.keep_feed_offsets({(FEED, 0): 6})
    store.confirm_feed_offsets({(FEED, 0): 6}, {(FEED, 0): record_mark(_record(4))})
    notes: list[str] = []
    sub = subscriber(BrokerKeys("2026a"), store, lambda: T0, notes=notes)
    asked: list[int] = []
    _reading(sub, _record(4), asked)
    feed = GroupFeed(0, 9)
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [6] and asked == [6] and "reading on from offset 6" in notes[-1]
    store.close()


async def test_a_store_an_earlier_puente_kept_gets_its_mark_while_the_group_offset_stands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store kept by an earlier Puente (confirmed at 5, no mark) restarts with the group's offset, committed by this
    store, at 5: the topic is the one it read, so the record before 5 is marked then, with no new record needed.
    Once the feed has stayed idle until the group's offsets expired, the next honest restart reads on from 5. A
    group offset past the store's (a backup restored), or another store's, proves nothing: no mark from those."""
    keys = BrokerKeys("2026a")
    store = PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION)
    with store.transaction():
        store.keep_feed_offsets({(FEED, 0): 5})
    store.confirm_feed_offsets({(FEED, 0): 5})
    last = sealed(keys.sealer(KEY), _view(alert_id="SENAFRONT:BD-4"), 4, T0)
    notes: list[str] = []
    sub = subscriber(keys, store, lambda: T0, notes=notes)
    asked: list[int] = []
    _reading(sub, last, asked)

    found = [(7, sub.commit_tag), (5, "main|" + "0" * 32)]

    async def group_offset(consumer: Any, tp: TopicPartition) -> tuple[int, str]:
        return found[0]
    monkeypatch.setattr(partner, "committed_with_metadata", group_offset)
    for _ in range(2):
        await sub._resume(GroupFeed(0, 9), {TP})  # type: ignore[arg-type]
        found.pop(0)
    assert asked == [] and store.feed_mark(FEED, 0) is None
    found.append((5, sub.commit_tag))
    feed = GroupFeed(0, 5)
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [] and asked == [5] and store.feed_mark(FEED, 0) == (4, record_mark(last))
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert asked == [5]  # marked once

    monkeypatch.setattr(partner, "committed_with_metadata", _no_group_offset)
    await sub._resume(feed, {TP})  # type: ignore[arg-type]
    assert feed.seeks == [5] and "reading on from offset 5" in notes[-1]
    store.close()


def _record(offset: int, value: bytes = b"sealed") -> Record:
    return Record(FEED, 0, offset, None, value, (), 0)


@pytest.mark.parametrize(("mark", "at", "begin", "end", "found", "refused"), [
    ((4, record_mark(_record(4))), 5, 0, 9, _record(4), False),  # the same record
    ((4, record_mark(_record(4))), 5, 0, 9, _record(4, b"other"), True),  # another record there
    ((4, record_mark(_record(4))), 5, 0, 9, None, True),  # none there now (a transaction marker, say)
    ((4, record_mark(_record(4))), 5, 5, 9, None, False),  # gone with retention: nothing before 5 is held
    ((4, record_mark(_record(4))), 5, 0, 3, None, False),  # ends before 5: ``_gap`` meets a topic made anew
    ((4, None), 5, 5, 9, None, False),  # read past a gap at 5, and still nothing before it
    ((4, None), 5, 0, 9, _record(4), True),  # read past a gap, and now a record there: another topic
    (None, 5, 0, 9, None, True),  # no mark (an earlier Puente kept the store)
    ((2, record_mark(_record(2))), 5, 0, 9, _record(4), True),  # a mark of an older offset: none of this one
    (None, 5, 5, 9, None, False),  # nothing before 5 held: nothing to pass
    (None, 0, 0, 9, None, False),
    ((5, record_mark(_record(4))), 6, 0, 9, _record(4), False),  # a commit marker at 5: the last record is 4
    ((5, record_mark(_record(4))), 6, 0, 9, _record(5, b"new"), True),  # at 5 another record, committed on a new topic
    ((11, record_mark(_record(11))), 12, 0, 6, None, False),  # ends before 12 (its high-water mark): ``_gap``
])
def test_what_a_store_resumed_from_its_confirmed_offset_can_tell(
        mark: tuple[int, str | None] | None, at: int, begin: int, end: int, found: Record | None,
        refused: bool) -> None:
    """``remade_feed`` refuses reading on from ``at`` when the partition holds records before it and the last
    committed one is not known to be the one the store read last; with nothing held before ``at``, nothing is
    passed."""
    assert (remade_feed(mark, at, begin, end, found) is not None) == refused


def test_records_before_the_offset_still_undecided_are_not_compared() -> None:
    """A transaction open across ``at`` (last stable offset before it, high-water mark past it) is a refusal, not a
    pass: its records before ``at`` may yet commit; decided (the stable offset at ``at`` or past), it is compared."""
    mark = (11, record_mark(_record(11)))
    assert "has not ended" in str(remade_feed(mark, 12, 0, 16, None, 6))
    assert remade_feed(mark, 12, 0, 16, _record(11), 12) is None
    assert remade_feed(mark, 12, 0, 6, None, 6) is None  # it ends before 12: ``_gap``


def test_a_batch_the_client_cannot_read_is_marked_by_its_offsets() -> None:
    """A record standing for an unreadable batch has no value: its mark names the batch's offsets, so another such
    batch at the same place is not taken for it."""
    one = Record(FEED, 0, 19, None, b"", (), 0, True, Unreadable("gzip", 10, 19))
    other = one._replace(unreadable=Unreadable("gzip", 15, 19))
    assert record_mark(one) != record_mark(other) != record_mark(_record(19, b""))


@pytest.mark.parametrize("damaged", ["x", "[]", '{"offset": "4", "sha256": null}', '{"offset": 4, "sha256": "AB"}',
                                     '{"offset": -2, "sha256": null}', '{"sha256": null}'])
def test_a_damaged_mark_is_refused(tmp_path: Path, damaged: str) -> None:
    """A kept mark that is not an offset and a digest stops the subscriber (StoreError), never read as no mark."""
    with PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL") as store:
        store.confirm_feed_offsets({(FEED, 0): 5}, {(FEED, 0): None})
        assert store.feed_mark(FEED, 0) == (4, None) and store.feed_mark(FEED, 1) is None
        store._conn.execute("UPDATE meta SET value = ? WHERE key = 'feed-mark:t.feed.COL[0]'", (damaged,))
        with pytest.raises(StoreError, match=r"mark of feed partition t\.feed\.COL\[0\] is damaged"):
            store.feed_mark(FEED, 0)


def test_an_offset_and_its_mark_are_confirmed_together(tmp_path: Path) -> None:
    """The confirmed offset and its mark are written in one transaction: a failure leaves neither."""
    with PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL") as store:
        store._conn.execute("CREATE TRIGGER no_marks BEFORE INSERT ON meta WHEN NEW.key LIKE 'feed-mark:%' "
                            "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        with pytest.raises(StoreError):
            store.confirm_feed_offsets({(FEED, 0): 5}, {(FEED, 0): "0" * 64})
        assert store._conn.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'feed-%'").fetchone()[0] == 0
