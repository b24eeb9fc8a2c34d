"""A fetched record batch the client cannot or will not read, handed out as one record saying so: never an error out
of a fetch, never a batch inflated.

aiokafka reads a batch's records (inflating a compressed batch, reading each header key as UTF-8) while it hands them
out of ``getmany``, and an error there leaves the consumer's position where it was, and loses whatever that call
had drained of other partitions: the next fetch meets the same batch again. Kafka takes what aiokafka cannot read:
its own side reads header keys leniently, and a client other than Kafka's or Puente's (kcat, a hand-made producer)
writes whatever bytes it likes. So one agency's login could stop the broker's workers, every agency's alerts with
them (they restarted onto the same batch until they gave up), and one partner's login, through its receipts topic,
the auditors' index.

Nor does Kafka bound what a compressed batch holds, only its compressed size: a few kilobytes of zstd inflate to
gigabytes, all in memory before the first record is handed out. Puente's producers never compress, and its topics
keep each batch as its producer wrote it (``compression.type=producer``, ``broker.topology.INVARIANTS``), so only a
producer of another's making sends one: a compressed batch is refused whole, never inflated.

``guard_fetches`` gives aiokafka's per-partition reader (``PartitionRecords``) its batches through ``_Batches``:
each uncompressed data batch is read whole before its first record is handed out, and one that cannot be read, or a
compressed one, becomes a single record at the batch's last offset, with no key and no value, whose one header is
(``UNREADABLE``, a ``puente.wire.Unreadable`` naming what it is and the batch's offsets). ``UNREADABLE`` is matched
by identity (``is``), never by its text: a header key a producer wrote is another object whatever it spells.
``broker.kafka.io.record`` reads it as ``Record.unreadable``, and what reads records refuses such a record with a
reason (the broker: a dead letter, ``unreadable``; an audit reader: a record that is not a block), so the batch
ends recorded, never skipped in silence, and the position moves past it.

A batch whose records' offsets do not rise within the batch's own range (each record's offset is its producer's
delta from the base, which Kafka does not check) is one such record too: it would make readers skip records. Control
batches (transaction markers, which Kafka writes itself) and legacy (v0/v1) batches, which Kafka 4 takes from no
producer, pass untouched: aiokafka reads them on its own. A batch whose checksum fails is still aiokafka's
CorruptRecordException (Kafka checks every batch's checksum when it is produced, so only a damaged disk gives one).
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher as _fetcher

from puente.wire import Unreadable

# The header key of the record standing for a batch that could not be read. Built at run time so that it is an
# object of its own: no header key read from a batch is this object (``is``), whatever its text.
UNREADABLE: str = "".join(["puente", ":unreadable-batch"])


class _UnreadableRecord:
    """What aiokafka's reader turns into a ConsumerRecord for a batch that could not be read: its last offset, its
    newest time, no key, no value, one header whose value is the ``Unreadable`` naming the failure and the batch's
    offsets (never a byte of the batch)."""

    __slots__ = ("headers", "offset", "timestamp", "timestamp_type")
    key = None
    value = None
    checksum = None

    def __init__(self, batch: Any, what: str, position: int) -> None:
        first, after = batch.base_offset, batch.next_offset
        self.offset = after - 1
        self.timestamp = getattr(batch, "max_timestamp", -1)
        self.timestamp_type = getattr(batch, "timestamp_type", 0)
        # A fetch from a position inside the batch (its records before it deleted, or read past) gets the whole
        # batch from Kafka: what reads it is to answer only for the records from the position on.
        start = position if first < position <= after - 1 else None
        self.headers = [(UNREADABLE, Unreadable(what, first, after - 1, start))]


# Kafka's codes for a batch's compression (the low three bits of its attributes).
CODECS = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


class _Batch:
    """One data batch, read whole when aiokafka first iterates it; anything else asked of it is the batch's.
    ``position``: the offset the fetch that brought it asked for."""

    __slots__ = ("_batch", "_position")

    def __init__(self, batch: Any, position: int) -> None:
        self._batch, self._position = batch, position

    def __iter__(self) -> Any:
        batch = self._batch
        try:
            records = list(batch)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the batch's, handed on as a record
            return iter([_UnreadableRecord(batch, f"{type(exc).__name__} reading it", self._position)])
        # Each record's offset is its producer's delta from the batch's base, which Kafka does not check (only the
        # batch's last delta against its count): a record claiming offset 1,000,010 in a batch at 10-11, or two
        # records at one offset, would make every reader skip or misplace records (a read up to an end stops at it;
        # a slot would stand past records never decided). Offsets must rise within the batch's own range.
        before, last = batch.base_offset - 1, batch.next_offset - 1
        for rec in records:
            if not before < rec.offset <= last:
                return iter([_UnreadableRecord(batch, "its records' offsets are not the batch's", self._position)])
            before = rec.offset
        return iter(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)


class _Compressed:
    """A compressed data batch, handed out as one record saying so without inflating it."""

    __slots__ = ("_batch", "_position")

    def __init__(self, batch: Any, position: int) -> None:
        self._batch, self._position = batch, position

    def __iter__(self) -> Any:
        codec = CODECS.get(self._batch.compression_type, f"codec {self._batch.compression_type}")
        return iter([_UnreadableRecord(self._batch, f"a {codec}-compressed batch, not inflated", self._position)])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)


class _Batches:
    """A fetched partition's batches (aiokafka's MemoryRecords), each data batch as a ``_Batch``, or, compressed,
    a ``_Compressed``; ``position``: the offset the fetch asked for."""

    __slots__ = ("_position", "_records")

    def __init__(self, records: Any, position: int) -> None:
        self._records, self._position = records, position

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self, *args: Any) -> Any:
        batch = self._records.next_batch(*args)
        # A legacy (v0/v1) batch, which aiokafka's reader gives no compression_type, as before: Kafka 4 takes
        # none from producers.
        codec = getattr(batch, "compression_type", None)
        if batch is None or codec is None or batch.is_control_batch:
            return batch
        return _Compressed(batch, self._position) if codec else _Batch(batch, self._position)


class _GuardedPartitionRecords(_fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's per-partition reader, reading its batches through ``_Batches``."""

    def __init__(self, tp: Any, records: Any, aborted: Any, fetch_offset: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(tp, _Batches(records, fetch_offset), aborted, fetch_offset, *args, **kwargs)


def guard_fetches() -> None:
    """Have every aiokafka consumer of this process read fetched batches through ``_Batches`` (idempotent): its
    fetcher makes a ``PartitionRecords`` for each partition's fetched data by that module name."""
    _fetcher.PartitionRecords = _GuardedPartitionRecords
