"""Kafka out of reach never keeps the store's write lock: every Kafka await of a transaction, from its first send, is
under one deadline (``DELIVERY_WAIT_S``), and past it the abort is waited for a bounded time before the producer is
stopped."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, RECEIPTS, BrokerKeys, Msg, Receipts, run_batch, sealed, subscriber

import broker.partner as partner
from broker.audit import ChainWriter
from broker.kafka import TopicPartition
from broker.partner_store import PartnerStore, Retention
from puente.errors import KafkaUnavailableError, StoreBusy
from tests.unit.broker.test_partner_clock_ahead import _view

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=180)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PartnerStore]:
    monkeypatch.setattr(partner, "DELIVERY_WAIT_S", 0.05)
    monkeypatch.setattr(partner, "ABORT_WAIT_S", 0.05, raising=False)  # (absent before it was bounded)
    with PartnerStore.open(tmp_path / "col" / "feed.sqlite", "COL", retention=RETENTION) as opened:
        yield opened


def _never() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


class _OffsetsUnanswered(Receipts):
    """Kafka never answers the feed offsets added to the transaction (aiokafka retries AddOffsetsToTxn without end)."""

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any], group: str) -> None:
        await _never()


class _AbortUnanswered(_OffsetsUnanswered):
    """Nor the abort that follows (aiokafka's waits for the same requests)."""

    async def abort(self) -> None:
        await super().abort()
        await _never()


def _one_line_naming_kafka(error: BaseException) -> None:
    text = str(error)
    assert "\n" not in text and "Kafka at unused:9092" in text and "nothing of this batch was committed" in text


def _lock_free(store: PartnerStore) -> None:
    with PartnerStore.open(store.path, "COL", busy_timeout_s=0.1) as other, other.transaction():
        pass


async def test_feed_offsets_kafka_never_takes_stop_the_batch_within_the_deadline(store: PartnerStore) -> None:
    """Kafka never answers the batch's feed offsets: past the deadline the batch stops in one line naming Kafka,
    nothing kept, the Kafka transaction aborted and the store's write lock free again."""
    keys = BrokerKeys("2026a")
    receipts = _OffsetsUnanswered(appended=lambda: T0)
    with pytest.raises(KafkaUnavailableError) as stopped:
        await asyncio.wait_for(run_batch(subscriber(keys, store, lambda: T0),
                                         sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0),
                                         receipts=receipts), 5)
    _one_line_naming_kafka(stopped.value)
    assert receipts.ended == ["abort"] and not receipts.stopped
    assert store.counts().held == 0 and store.feed_offset(FEED, 0) is None
    _lock_free(store)


async def test_an_abort_kafka_never_answers_is_given_up_and_the_producer_stopped(store: PartnerStore) -> None:
    """The abort after the deadline never ends either: it is given up after ``ABORT_WAIT_S`` and the producer
    stopped (Kafka aborts the open transaction itself), and the batch stops as Kafka out of reach, not later as
    another subscriber taking over."""
    keys = BrokerKeys("2026a")
    receipts = _AbortUnanswered(appended=lambda: T0)
    with pytest.raises(KafkaUnavailableError) as stopped:
        await asyncio.wait_for(run_batch(subscriber(keys, store, lambda: T0),
                                         sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0),
                                         receipts=receipts), 5)
    _one_line_naming_kafka(stopped.value)
    assert receipts.stopped and store.counts().held == 0
    _lock_free(store)


async def test_a_checkpoint_alone_kafka_never_takes_stops_within_the_deadline(store: PartnerStore) -> None:
    """The checkpoint-only transaction asking Kafka for a time, never delivered nor aborted: it stops within the
    deadline and the abort's bound, the producer stopped, no time kept."""

    class Unanswered(_AbortUnanswered):
        async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
            await super().send(topic, value, **kwargs)
            return _never()

    keys = BrokerKeys("2026a")
    receipts = Unanswered(appended=lambda: T0)
    sub = subscriber(keys, store, lambda: T0 + timedelta(days=1))
    with pytest.raises(KafkaUnavailableError) as stopped:
        await asyncio.wait_for(sub._ask_time(receipts, ChainWriter(RECEIPTS, 0, chain="COL"), 0),  # type: ignore[arg-type]
                               5)
    assert "\n" not in str(stopped.value) and "Kafka at unused:9092" in str(stopped.value)
    assert receipts.stopped and store.kafka_time() is None


async def test_a_batch_slow_to_handle_with_kafka_answering_is_not_stopped(store: PartnerStore,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline runs from the end of the records' handling: a batch whose records take longer than
    ``DELIVERY_WAIT_S`` to check and store (a long backlog on a slow host), Kafka answering at once, commits, where a
    deadline from its first receipt would stop every run at the same backlog."""
    keys = BrokerKeys("2026a")
    receipts = Receipts(appended=lambda: T0)
    sub = subscriber(keys, store, lambda: T0)
    handle = sub._handle

    async def slow(*args: Any, **kwargs: Any) -> Any:
        done = await handle(*args, **kwargs)  # its receipt is sent here, before the wait
        await asyncio.sleep(0.2)  # four times the deadline, in the records' handling alone
        return done

    monkeypatch.setattr(sub, "_handle", slow)
    views = [sealed(keys.sealer("broker-sign-2026a"), _view(), offset, T0) for offset in range(2)]
    await asyncio.wait_for(run_batch(sub, *views, receipts=receipts), 5)
    assert receipts.ended == ["commit"] and store.counts().held == 1


class _CommitUnanswered(Receipts):
    """Kafka takes every send and the feed offsets, and never answers the commit (aiokafka waits for EndTxn without
    end)."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with super().transaction():
            yield
        self.ended.pop()  # (the parent noted a commit that never came)
        await _never()


async def test_a_commit_kafka_never_confirms_stops_the_run_in_one_line(store: PartnerStore) -> None:
    """Kafka never confirms the batch's commit: the run stops within the deadline in one line naming Kafka (exit 4,
    retriable), the producer stopped, the store's write lock free and what the store applied kept (the batch read
    again meets the version rule), instead of a subscriber hung in silence."""
    keys = BrokerKeys("2026a")
    receipts = _CommitUnanswered(appended=lambda: T0)
    with pytest.raises(KafkaUnavailableError) as stopped:
        await asyncio.wait_for(run_batch(subscriber(keys, store, lambda: T0),
                                         sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0),
                                         receipts=receipts), 5)
    text = str(stopped.value)
    assert "\n" not in text and "Kafka at unused:9092" in text and "did not confirm the commit" in text
    assert receipts.stopped and receipts.ended == [] and store.counts().held == 1
    _lock_free(store)


async def test_a_checkpoint_whose_commit_kafka_never_confirms_stops_with_no_time_kept(store: PartnerStore) -> None:
    """The checkpoint-only transaction's commit never confirmed: it stops as a batch's does, no Kafka time kept."""
    keys = BrokerKeys("2026a")
    receipts = _CommitUnanswered(appended=lambda: T0)
    sub = subscriber(keys, store, lambda: T0)
    with pytest.raises(KafkaUnavailableError) as stopped:
        await asyncio.wait_for(sub._ask_time(receipts, ChainWriter(RECEIPTS, 0, chain="COL"), 0),  # type: ignore[arg-type]
                               5)
    assert "did not confirm the commit" in str(stopped.value) and receipts.stopped and store.kafka_time() is None


class _CommitAnswered(Receipts):
    """Kafka answers the commit at once (one EndTxn round trip)."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with super().transaction():
            yield
        await asyncio.sleep(0.001)


class _SlowCopy(io.StringIO):
    """The --out copy's reader is slow: a write blocks, as a full pipe's does."""

    def write(self, text: str) -> int:
        time.sleep(0.2)  # four times the deadline
        return super().write(text)


async def test_a_slow_copy_with_kafka_answering_commits(store: PartnerStore) -> None:
    """The copy's writes are no Kafka await: a slow reader of ``--out`` (four times the deadline), Kafka answering
    the commit at once, commits the batch, never reported as Kafka not confirming it."""
    keys = BrokerKeys("2026a")
    receipts = _CommitAnswered(appended=lambda: T0)
    sub = subscriber(keys, store, lambda: T0)
    record = sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0)
    out = _SlowCopy()
    await asyncio.wait_for(sub._batch({TopicPartition(FEED, 0): [Msg(record)]}, out, receipts,  # type: ignore[arg-type]
                                      ChainWriter(RECEIPTS, 0, chain="COL"), 0), 5)
    assert receipts.ended == ["commit"] and not receipts.stopped and out.getvalue().count("\n") == 1


class _OnlyAbortUnanswered(Receipts):
    """Kafka takes the batch, then goes out of reach: the abort is never answered."""

    async def abort(self) -> None:
        await super().abort()
        await _never()


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


async def test_an_error_after_the_kafka_awaits_comes_out_as_itself_its_abort_bounded(store: PartnerStore) -> None:
    """The copy's disk full after Kafka took everything, and an abort Kafka never answers: the run stops within the
    abort's bound, the producer stopped, with the disk's error (what to act on), not a Kafka one."""
    keys = BrokerKeys("2026a")
    receipts = _OnlyAbortUnanswered(appended=lambda: T0)
    sub = subscriber(keys, store, lambda: T0)
    record = sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0)
    with pytest.raises(OSError) as stopped:
        await asyncio.wait_for(sub._batch({TopicPartition(FEED, 0): [Msg(record)]}, _FullDisk(), receipts,  # type: ignore[arg-type]
                                          ChainWriter(RECEIPTS, 0, chain="COL"), 0), 5)
    assert stopped.value.errno == errno.ENOSPC and receipts.stopped and receipts.ended == ["abort"]


async def test_a_store_busy_after_the_kafka_awaits_has_its_abort_bounded(store: PartnerStore,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader keeps the store's deleted content in its WAL (StoreBusy), and Kafka never answers the abort: the run
    stops with StoreBusy within the abort's bound, the producer stopped, never hung."""
    monkeypatch.setattr(PartnerStore, "wipe_pending", property(lambda self: True))
    monkeypatch.setattr(PartnerStore, "wipe", lambda self: False)
    keys = BrokerKeys("2026a")
    receipts = _OnlyAbortUnanswered(appended=lambda: T0)
    sub = subscriber(keys, store, lambda: T0)
    record = sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0)
    with pytest.raises(StoreBusy):
        await asyncio.wait_for(sub._batch({TopicPartition(FEED, 0): [Msg(record)]}, None, receipts,  # type: ignore[arg-type]
                                          ChainWriter(RECEIPTS, 0, chain="COL"), 0), 5)
    assert receipts.stopped and receipts.ended == ["abort"]
