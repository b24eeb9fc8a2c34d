"""Small readers over Kafka partitions, shared by the worker, the audit tools and the subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from broker.kafka.clients import RecordTooLarge, TooLarge, reader, running
from broker.kafka.connection import KafkaConnection
from broker.kafka.unreadable import UNREADABLE
from puente.errors import KafkaUnavailableError, PuenteError
from puente.wire import Record

LOG_APPEND_TIME = 1  # a record batch's timestamp type: 0 the producer's time (CreateTime), 1 Kafka's


def record(msg: Any) -> Record:
    """An aiokafka ConsumerRecord as Puente's ``Record``; one standing for a batch the client could not read
    (``broker.kafka.unreadable``) says what failed in ``Record.unreadable``."""
    headers = tuple(msg.headers or ())
    if headers and headers[0][0] is UNREADABLE:
        return Record(msg.topic, msg.partition, msg.offset, None, b"", (), msg.timestamp,
                      msg.timestamp_type == LOG_APPEND_TIME, headers[0][1])
    return Record(msg.topic, msg.partition, msg.offset, msg.key, msg.value or b"", headers,
                  msg.timestamp, msg.timestamp_type == LOG_APPEND_TIME)


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    # A group-less consumer only tracks metadata of what it has assigned; ask for the whole cluster.
    metadata = await consumer._client.fetch_all_metadata()
    return sorted(metadata.partitions_for_topic(topic) or ())


RECOUNT_READS = 3
RECOUNT_PAUSE_S = 1.0


async def partition_count_now(producer: AIOKafkaProducer, topic: str, at_least: int = 0) -> int:
    """How many partitions ``topic`` has, from metadata asked of Kafka now: ``partitions_for`` answers from the
    producer's cache, which may predate partitions added since.

    A count below ``at_least`` (what an alert's state recorded) says the topic was made anew with fewer, which the
    caller then takes for good. A topic's partitions are never removed, so such an answer may also be one node's
    metadata not yet holding partitions just added: it is taken only once every read says so (``_highest``)."""
    async def read() -> dict[str, int]:
        await producer.client.force_metadata_update()
        return {topic: len(await producer.partitions_for(topic))}

    return (await _highest(read, lambda counts: counts[topic] >= at_least))[topic]


async def feed_counts_now(producer: AIOKafkaProducer, topics: Collection[str]) -> dict[str, int]:
    """How many partitions each of ``topics`` has, from metadata of the whole cluster asked of Kafka now; 0 for one
    Kafka does not hold (deleted, or never made). A topic found missing is taken as gone only once every read says so
    (``_highest``): a node may not know a topic just made."""
    async def read() -> dict[str, int]:
        metadata = await producer.client.fetch_all_metadata()
        return {topic: len(metadata.partitions_for_topic(topic) or ()) for topic in topics}

    return await _highest(read, lambda counts: all(counts.values()))


async def _highest(read: Callable[[], Awaitable[dict[str, int]]], enough: Callable[[dict[str, int]], bool],
                   ) -> dict[str, int]:
    """The highest partition count of each topic ``read`` gives, read until the counts are ``enough``, at most
    ``RECOUNT_READS`` times, ``RECOUNT_PAUSE_S`` apart (each read may reach another node: the one the client finds
    least loaded then)."""
    counts: dict[str, int] = {}
    for attempt in range(RECOUNT_READS):
        if attempt:
            await asyncio.sleep(RECOUNT_PAUSE_S)
        for topic, count in (await read()).items():
            counts[topic] = max(counts.get(topic, 0), count)
        if enough(counts):
            break
    return counts


NOTE_AFTER_S = 2.0


class StillOpen(PuenteError):
    """A transaction open on a partition did not end within the time ``wait_settled`` was given."""


async def wait_settled(conn: KafkaConnection, tp: TopicPartition, *, timeout_s: float,
                       note: Callable[[str], None] | None = None) -> None:
    """Wait until every transaction open on ``tp`` when called has ended, committed or aborted
    (StillOpen past ``timeout_s``).

    A read_committed reader stops at the partition's last stable offset: the first record of the
    oldest transaction still open there, whoever writes it. A writer that shares a partition with
    others and reads back the head of its own chain must first let that point pass the partition's
    end as it was, or it misses its own committed records written after another writer's open
    transaction began, and forks its chain. A crashed writer's transaction is aborted by Kafka
    after its transaction timeout, so this ends.
    """
    if await settle(conn, [tp], timeout_s=timeout_s, note=note):
        raise StillOpen(f"{tp.topic}[{tp.partition}] still has a transaction open after {timeout_s:.0f}s "
                        "(another writer's); try again once it ends")


async def settle(conn: KafkaConnection, tps: Collection[TopicPartition], *, timeout_s: float,
                 note: Callable[[str], None] | None = None,
                 upto: Mapping[TopicPartition, int] | None = None) -> set[TopicPartition]:
    """``wait_settled`` for several partitions at once, with one pair of clients: the partitions where a
    transaction open when called has not ended after ``timeout_s`` (empty: all settled). With ``upto``, only the
    records before ``upto[tp]`` must be decided (the last stable offset reaches it; a partition whose end is
    before it waits for nothing): what a read_committed reader of the records before an offset needs."""
    if not tps:
        return set()
    async with running(reader(conn, "puente-settle", committed=False), conn, "reading partitions' ends") as raw, \
            running(reader(conn, "puente-settle"), conn, "reading partitions' ends") as committed:
        if upto is not None:  # a partition that is not there (a topic deleted, made with fewer) has nothing to wait for
            held = {topic: set(await partitions_of(raw, topic)) for topic in {tp.topic for tp in tps}}
            tps = [tp for tp in tps if tp.partition in held[tp.topic]]
            if not tps:
                return set()
        high = await raw.end_offsets(list(tps))
        if upto is not None:
            high = {tp: upto[tp] for tp, end in high.items() if tp in upto and end >= upto[tp]}
        began = time.monotonic()
        noted = False
        while high:
            stable = await committed.end_offsets(list(high))
            high = {tp: end for tp, end in high.items() if stable[tp] < end}
            waited = time.monotonic() - began
            if not high or waited > timeout_s:
                return set(high)
            if waited > NOTE_AFTER_S and not noted and note is not None:  # a live writer's ends in ms
                where = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(high)[:3])
                note(f"waiting for another writer's open transaction on {where} to end "
                     f"(a crashed writer's is aborted by Kafka within {timeout_s:.0f}s)")
                noted = True
            await asyncio.sleep(0.05)
        return set()


async def committed_with_metadata(consumer: AIOKafkaConsumer, tp: TopicPartition) -> tuple[int, str] | None:
    """The group's committed offset of ``tp`` with the metadata committed with it, or None when the group has
    none there. (``AIOKafkaConsumer.committed`` answers the offset alone; the metadata says who committed it.)"""
    found = (await consumer._coordinator.fetch_committed_offsets([tp])).get(tp)
    if found is None or found.offset < 0:
        return None
    return int(found.offset), str(found.metadata or "")


async def offsets_visible(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], *,
                          timeout_s: float) -> bool:
    """Wait until ``consumer``'s group answers each partition's committed offset with at least the
    one given: True, or False once ``timeout_s`` has passed.

    Offsets committed in a transaction become visible when Kafka writes its markers, after it has
    answered the commit, and an OffsetFetch without ``require_stable`` (KIP-447, which aiokafka does
    not send) meanwhile returns the offsets before. A group member handing partitions to a member
    whose producer does not fence it (another transactional id) waits for this before letting the
    rebalance go on: the new owner fetches its positions after, and reads each record once.
    """
    deadline = time.monotonic() + timeout_s
    waiting = dict(offsets)
    while waiting:
        found = await asyncio.gather(*(consumer.committed(tp) for tp in waiting))
        waiting = {tp: want for (tp, want), got in zip(waiting.items(), found, strict=True)
                   if got is None or got < want}
        if waiting:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
    return True


READ_STALL_S = 60.0
"""How long a read of records known to be there (below the end asked for at its start) may go without moving before
it is given up as Kafka gone (``Stall``)."""


class Stall:
    """Gives up a read to a partition's end that stopped moving: KafkaUnavailableError, naming what was read.

    aiokafka's fetcher logs a failed fetch (the node gone, a connection refused) and answers ``getmany`` with
    nothing, so a loop that waits for each partition to reach the end it asked for at the start would wait for
    ever, saying nothing. The end was a committed one (a read_committed reader's end is the last stable offset), so
    the records below it are there to read: ``limit_s`` without a record or a position moved is Kafka gone."""

    def __init__(self, what: str, limit_s: float | None = None) -> None:
        self.what, self.limit_s = what, READ_STALL_S if limit_s is None else limit_s
        self._seen: object = None
        self._since = time.monotonic()

    def check(self, where: object) -> None:
        """Call after each fetch with where the read stands (positions, or a count of records taken)."""
        now = time.monotonic()
        if where != self._seen:
            self._seen, self._since = where, now
        elif now - self._since > self.limit_s:
            raise KafkaUnavailableError(f"{self.what}: nothing came from Kafka for {self.limit_s:g}s while records "
                                        "remained to read; check that Kafka is up, then run the command again")


async def fetch(consumer: AIOKafkaConsumer, tps: Collection[TopicPartition], too_large: TooLarge, *,
                timeout_ms: int) -> dict[TopicPartition, list[Any]]:
    """``consumer.getmany`` of ``tps`` for a group-less read, with a batch that came cut read again (``too_large``,
    which stops the read once it has met it its tries): the partition is set back to where its fetch asked, and
    fetched alone, the others paused meanwhile, so it is the first partition of Kafka's answer and its batch comes
    whole (a batch over the fetch's limits too)."""
    try:
        batch = dict(await consumer.getmany(*tps, timeout_ms=timeout_ms))
    except RecordTooLarge as exc:
        tp = too_large.seek_back(consumer, exc)
    else:
        too_large.took_batch(batch)
        return batch
    if tp is None or tp not in tps:
        return {}
    others = sorted(set(consumer.assignment()) - {tp} - set(consumer.paused()))
    if others:
        consumer.pause(*others)
    try:
        return await fetch(consumer, [tp], too_large, timeout_ms=timeout_ms)
    finally:
        if others:
            consumer.resume(*others)


async def read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int | None = None
) -> AsyncGenerator[Record, None]:
    """Every committed record of one partition from ``start`` (default: the beginning) to its current end."""
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    begin = (await consumer.beginning_offsets([tp]))[tp]
    first = begin if start is None else max(start, begin)
    if first >= end:
        return
    consumer.seek(tp, first)
    stall = Stall(f"reading {tp.topic}[{tp.partition}]")
    too_large = TooLarge(stall.what)
    while (at := await consumer.position(tp)) < end:
        stall.check(at)
        batch = await fetch(consumer, [tp], too_large, timeout_ms=2000)
        for msg in batch.get(tp, []):
            if msg.offset >= end:
                return
            yield record(msg)


async def record_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> Record | None:
    """The committed record at ``offset`` of a partition, or None (gone with retention, or none there). Where
    ``offset`` lies in a batch the client does not read (``broker.kafka.unreadable``), the record standing for that
    batch, at the batch's last offset: the caller must not take the record at ``offset`` for gone."""
    async for rec in read_range(consumer, tp, offset):
        if rec.offset == offset:
            return rec
        covers = rec.unreadable
        return rec if covers is not None and covers.first <= offset <= covers.last else None
    return None


async def last_before(consumer: AIOKafkaConsumer, tp: TopicPartition, at: int) -> Record | None:
    """The last committed record of a partition before offset ``at``, or None (none between its first record and
    ``at``). Transaction markers and aborted records are never handed out by a read_committed consumer, so this is
    the last record such a reader read before ``at``, wherever markers put it. Reads back a window that grows until
    one is found or the partition's start. The records before ``at`` must be decided (the last stable offset at or
    past it: ``settle`` with ``upto``): a record of a transaction still open there is not read."""
    consumer.assign([tp])
    begin = (await consumer.beginning_offsets([tp]))[tp]
    window = 64
    while True:
        start = max(begin, at - window)
        last: Record | None = None
        async with contextlib.aclosing(read_range(consumer, tp, start)) as records:
            async for rec in records:
                if rec.offset >= at:
                    break
                last = rec
        if last is not None or start <= begin:
            return last
        window *= 8


async def read_many(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], back: int | None = None,
    complete: set[TopicPartition] | None = None, starts: dict[TopicPartition, int] | None = None,
    each: Callable[[Record], None] | None = None,
) -> dict[TopicPartition, list[Record]]:
    """Committed records of several partitions at once: all of each, the last ``back`` offsets,
    or from the offsets in ``starts`` on. With ``each``, every record goes to it as it arrives
    and none is kept (the lists come back empty): memory stays flat however much is read.

    One assignment and one offsets request for all of them: reading partitions one by one costs a
    metadata round per partition, which made a worker with many slots slow to start.
    """
    out: dict[TopicPartition, list[Record]] = {tp: [] for tp in tps}
    if not tps:
        return out
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    begins = await consumer.beginning_offsets(tps)
    todo = {}
    for tp in tps:
        first = begins[tp] if back is None else max(begins[tp], ends[tp] - back)
        if starts is not None and tp in starts:
            first = max(begins[tp], starts[tp])
        if complete is not None and first == begins[tp]:
            complete.add(tp)
        if first < ends[tp]:
            consumer.seek(tp, first)
            todo[tp] = ends[tp]
    stall = Stall(f"reading {', '.join(sorted({tp.topic for tp in tps}))}")
    too_large = TooLarge(stall.what)
    while todo:
        batch = await fetch(consumer, list(todo), too_large, timeout_ms=2000)
        for tp, msgs in batch.items():
            wanted = (record(m) for m in msgs if m.offset < todo.get(tp, 0))
            if each is None:
                out[tp].extend(wanted)
            else:
                for rec in wanted:
                    each(rec)
        at = {tp: await consumer.position(tp) for tp in todo}
        todo = {tp: end for tp, end in todo.items() if at[tp] < end}
        stall.check(at)
    return out


async def last_records(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                       ) -> dict[TopicPartition, tuple[Record | None, Record | None]]:
    """The last two committed records of each partition, (the one before the last, the last): None where there is
    none, and for the one before when it is not among the last 64 offsets (what a head is checked to follow)."""
    complete: set[TopicPartition] = set()
    found = await read_many(consumer, tps, back=64, complete=complete)
    out: dict[TopicPartition, tuple[Record | None, Record | None]] = {}
    for tp, records in found.items():
        if records or tp in complete:
            out[tp] = (records[-2] if len(records) > 1 else None, records[-1] if records else None)
        else:
            # Nothing in the last 64 offsets (e.g. aborted transactions only): look further back.
            out[tp] = (None, await last_chain_record(consumer, tp))
    return out


def names_chain(rec: Record, chain: str) -> bool:
    """Whether ``rec`` belongs to ``chain``: it parses as a JSON object naming it (anyone's record may not)."""
    try:
        doc = json.loads(rec.value)
    except (ValueError, RecursionError):  # not a chain record: anyone's, however nested
        return False
    return isinstance(doc, dict) and doc.get("chain") == chain


async def chain_records(consumer: AIOKafkaConsumer, tp: TopicPartition, chain: str, start: int | None = None,
                        ) -> AsyncGenerator[Record, None]:
    """Every committed record of ``chain`` in a partition, from ``start`` (default: the beginning) to its current
    end; the caller checks them (``names_chain``)."""
    async for rec in read_range(consumer, tp, start):
        if names_chain(rec, chain):
            yield rec


async def last_chain_record(consumer: AIOKafkaConsumer, tp: TopicPartition, chain: str | None = None) -> Record | None:
    """The last committed record of a partition (of one ``chain`` in it, when given), or None.

    Reads back as little as it can: a window at the end that grows until a match or the start.
    A record belongs to ``chain`` when it parses as a JSON object naming it; the caller checks
    the record itself (see ``broker.audit.head_problem``) before it trusts it.
    """
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    begin = (await consumer.beginning_offsets([tp]))[tp]
    window = 64
    while True:
        start = max(begin, end - window)
        last: Record | None = None
        async for rec in read_range(consumer, tp, start):
            if chain is None:
                last = rec
                continue
            if names_chain(rec, chain):
                last = rec
        if last is not None:
            return last
        if start == begin:
            return None
        window *= 8
