"""Feed records left unsent by a crash for a partner the policy no longer names are never written at a restart, even
while Kafka still holds the partner's feed: the load refuses them as it does a deleted feed's, or, with --accept-gap,
drops them and returns the loss for the slot's chain (a ``deliveries-lost`` GAP entry)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS
from typing import Any

import pytest

from puente.errors import FeedGapError
from tests.unit.broker.test_worker_lifecycle_loss import _held, _Metadata, _taken_with, _worker


def test_unsent_records_for_a_partner_the_policy_no_longer_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy names COL and USA; the slot's last mark holds a record for CRI, whose feed Kafka still holds: the
    load stops (FeedGapError naming the feed and why, never the record), as for a feed gone."""
    monkeypatch.setattr("broker.kafka.io.RECOUNT_PAUSE_S", 0.0)
    metadata = _Metadata({"t.feed.COL": 3, "t.feed.CRI": 3})
    producers: dict[int, Any] = {1: NS(client=metadata)}
    unsent = {1: _held(("t.feed.COL", 0, b"ref-a"), ("t.feed.CRI", 1, b"ref-c"))}
    with pytest.raises(FeedGapError) as refused:
        asyncio.run(_worker()._place_unsent(producers, unsent))
    said = str(refused.value)
    assert "t.feed.CRI" in said and "no longer names" in said and "--accept-gap" in said
    assert "lifecycle partition t.lifecycle[1]" in said and "ref-c" not in said and "\n" not in said


def test_with_accept_gap_they_are_dropped_and_the_loss_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --accept-gap the record for CRI is dropped, the loss returned for the slot's chain and counted with a
    deleted feed's in one line; COL's record is kept as it was."""
    monkeypatch.setattr("broker.kafka.io.RECOUNT_PAUSE_S", 0.0)
    metadata = _Metadata({"t.feed.COL": 3, "t.feed.CRI": 3})
    producers: dict[int, Any] = {1: NS(client=metadata)}
    unsent = {1: _held(("t.feed.COL", 0, b"ref-a"), ("t.feed.CRI", 1, b"ref-c"), ("t.feed.USA", 0, b"ref-u")),
              2: _held(("t.feed.CRI", 2, b"ref-d"))}
    placed, gone = asyncio.run(_worker(accept_gaps=True)._place_unsent(producers, unsent))
    assert placed == {1: unsent[1][:1], 2: []}
    assert sorted(gone) == [1, 2]
    assert "2 feed record(s)" in gone[1] and "t.feed.USA, which Kafka no longer holds" in gone[1]
    assert "t.feed.CRI, the feed of a partner the policy no longer names" in gone[1]
    assert "1 feed record(s)" in gone[2] and "--accept-gap" in gone[2]


def test_the_next_mark_tombstones_the_dropped_entries_and_writes_only_the_rest() -> None:
    """The slot taken with what the load kept (COL's) and the mark's two entries: COL's record alone is written to a
    feed, and both entries of the old mark are tombstoned, so the dropped one for CRI is never sent later."""
    worker, producer, state = _taken_with(_held(("t.feed.COL", 0, b"ref-a")), marked=2)
    assert worker._failure is None and not state.unsent
    assert [(t, k) for t, _, k, _ in producer.records if t.startswith("t.feed.")] == [("t.feed.COL", b"ref-a")]
