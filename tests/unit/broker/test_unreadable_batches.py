"""A fetched batch the Kafka client cannot read comes out as one record saying so, and the broker dead-letters it.

The batches are real Kafka record batches (aiokafka's own builder, the bytes Kafka stores and serves), read by
aiokafka's own per-partition reader as a fetch hands them to it; tests/integration/test_broker_faults.py sends
such a batch through a real Kafka to a running worker.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

from broker.audit.verify import PartitionWalk
from broker.kafka import unreadable
from broker.kafka.io import record, record_at
from broker.kafka.unreadable import UNREADABLE, guard_fetches
from puente.wire import Record, Unreadable

TP = TopicPartition("t.ingress.SENAN", 0)
T0 = 1_780_000_000_000


class _RawKey(str):
    """A header key a producer other than Kafka's clients writes: bytes that are not UTF-8."""

    def encode(self, *_: Any, **__: Any) -> bytes:
        return b"\xff\xfe"


def _batch(base: int, records: Sequence[tuple[bytes, list[tuple[str, bytes]]]], compression: int = 0,
           deltas: Sequence[int] | None = None) -> bytes:
    """A batch at ``base``; ``deltas``: each record's own offset delta as its producer wrote it (Kafka checks only
    the batch's last delta against its count, so the builder is given the true last one)."""
    builder = _DefaultRecordBatchBuilderPy(magic=2, compression_type=compression, is_transactional=0,
                                           producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 24)
    for delta, (value, headers) in enumerate(records):
        claimed = delta if deltas is None else deltas[delta]
        assert builder.append(claimed, T0 + delta, b"key", value, headers) is not None
    if deltas is not None:
        builder._last_offset = len(records) - 1  # the header's last delta stays honest
    raw = bytearray(builder.build())
    raw[0:8] = struct.pack(">q", base)  # the base offset Kafka assigns (outside the checksum)
    return bytes(raw)


def _recrc(raw: bytearray) -> bytes:
    """The batch with its CRC-32C made right again (it covers everything from the attributes on)."""
    raw[17:21] = struct.pack(">I", calc_crc32c(bytes(raw[21:])))
    return bytes(raw)


def _text(rec: Record) -> str | None:
    return None if rec.unreadable is None else str(rec.unreadable)


def _read(*batches: bytes, fetch_offset: int = 0) -> list[Record]:
    guard_fetches()
    reader = fetcher.PartitionRecords(TP, MemoryRecords(b"".join(batches)), [], fetch_offset, None, None, True,
                                      fetcher.READ_UNCOMMITTED)
    return [record(msg) for msg in reader]


def test_a_header_key_that_is_not_utf8_gives_one_record_for_its_batch_and_the_rest_reads_on() -> None:
    """aiokafka raised UnicodeDecodeError out of the fetch for such a batch, at the same offset on every fetch; now
    the batch (both its records: aiokafka reads a batch whole) is one record at its last offset, saying what failed
    and which offsets, with no key, no value and none of the batch's headers, and the batches after it read on."""
    got = _read(_batch(0, [(b"first", [("h", b"1")])]),
                _batch(1, [(b"secret-payload", [(_RawKey("XX"), b"v")]), (b"same-batch", [])]),
                _batch(3, [(b"after", [])]))
    assert [(r.offset, r.value, _text(r)) for r in got] == [
        (0, b"first", None), (2, b"", "UnicodeDecodeError reading it: records 1-2"), (3, b"after", None)]
    bad = got[1]
    assert bad.key is None and bad.timestamp_ms == T0 + 1 and bad.append_time is False
    assert b"secret" not in repr(bad).encode()


@pytest.mark.parametrize(("codec", "name"), [(1, "gzip"), (4, "zstd")])
def test_a_compressed_batch_is_one_record_and_never_inflated(monkeypatch: pytest.MonkeyPatch, codec: int,
                                                             name: str) -> None:
    """Kafka bounds a compressed batch's size, not what it inflates to (a few kilobytes of zstd hold gigabytes), and
    Puente's producers never compress: a compressed batch, sound or not, is one record saying so, and its
    compressed bytes are never inflated (the batch's own reading would raise here)."""
    sound = _batch(5, [(b"\x00" * 1_000_000, []), (b"\x00" * 1_000_000, [])], compression=codec)
    broken = bytearray(_batch(9, [(b"x" * 200, [])], compression=codec))
    broken[-20:] = b"\x00" * 20  # inside the compressed records, the checksum made right again
    assert len(sound) < 10_000
    seen: list[int] = []
    reading = unreadable._Batch.__iter__

    def watched(self: Any) -> Any:
        seen.append(self.compression_type)
        return reading(self)

    monkeypatch.setattr(unreadable._Batch, "__iter__", watched)
    got = _read(sound, _batch(7, [(b"after", [])]), _recrc(broken), fetch_offset=5)
    assert [(r.offset, r.value, _text(r)) for r in got] == [
        (6, b"", f"a {name}-compressed batch, not inflated: records 5-6"), (7, b"after", None),
        (9, b"", f"a {name}-compressed batch, not inflated: records 9-9")]
    assert seen == [0]  # only the uncompressed batch was read


def test_a_producer_cannot_pass_a_record_off_as_the_unreadable_marker() -> None:
    """The marker is matched by identity: a record whose header key spells the marker's text is an ordinary record."""
    got = _read(_batch(0, [(b"v", [(str(UNREADABLE), b"UnicodeDecodeError reading records 0-0")])]))
    assert [(r.value, _text(r)) for r in got] == [(b"v", None)]


def test_readable_batches_read_as_before() -> None:
    """Records, headers and offsets as aiokafka gives them without the guard, a fetch offset inside a batch included."""
    batches = [_batch(0, [(b"a", [("k", b"1")]), (b"b", [])]), _batch(2, [(b"c", [("k", b"2"), ("k", b"3")])])]
    got = _read(*batches, fetch_offset=1)
    assert [(r.offset, r.value, r.headers) for r in got] == [(1, b"b", ()), (2, b"c", (("k", b"2"), ("k", b"3")))]



@pytest.mark.parametrize("deltas", [[0, 1_000_000], [0, 2], [1, 1], [1, 0], [-1, 1]],
                         ids=["far-ahead", "past-the-batch", "twice", "backwards", "before-the-base"])
def test_a_batch_whose_records_claim_other_offsets_is_one_record(deltas: list[int]) -> None:
    """Each record's offset is its producer's delta from the batch's base, which Kafka does not check: a record
    claiming an offset outside the batch's range, or not after the one before it, would make a reader skip or
    misplace records (a slot standing past records never decided). The batch is one record at its own last offset,
    and the next batch reads on."""
    got = _read(_batch(10, [(b"a", []), (b"b", [])], deltas=deltas), _batch(12, [(b"after", [])]), fetch_offset=10)
    assert [(r.offset, r.value, _text(r)) for r in got] == [
        (11, b"", "its records' offsets are not the batch's: records 10-11"), (12, b"after", None)]


def test_a_legacy_batch_reads_as_aiokafka_reads_it() -> None:
    """A v0/v1 batch (Kafka 4 takes none from producers; an upgraded log may hold some) is aiokafka's to read."""
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=T0, key=b"k", value=b"old")
    got = _read(bytes(builder.build()))
    assert [(r.offset, r.value, _text(r)) for r in got] == [(0, b"old", None)]


class _Partition:
    """Just what ``read_range`` asks of a consumer, over fetched bytes read by aiokafka's (guarded) reader."""

    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.end, self.pos = data, end, 0

    def assign(self, tps: Any) -> None:
        pass

    async def end_offsets(self, tps: Any) -> dict[TopicPartition, int]:
        return {TP: self.end}

    async def beginning_offsets(self, tps: Any) -> dict[TopicPartition, int]:
        return {TP: 0}

    def seek(self, tp: Any, offset: int) -> None:
        self.pos = offset

    async def position(self, tp: Any) -> int:
        return self.pos

    async def getmany(self, *tps: Any, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        guard_fetches()
        reader = fetcher.PartitionRecords(TP, MemoryRecords(self.data), [], self.pos, None, None, True,
                                          fetcher.READ_COMMITTED)
        msgs = list(reader)
        self.pos = reader.next_fetch_offset
        return {TP: msgs}


def test_the_record_at_an_offset_inside_an_unreadable_batch_is_the_batch_not_gone() -> None:
    """``record_at`` answers for an offset inside a batch the broker does not read with the record standing for
    that batch, never None (which callers take for a record gone with retention)."""
    data = _batch(0, [(b"a", []), (b"b", [])]) + _batch(2, [(b"c", [(_RawKey("XX"), b"v")]), (b"d", [])])
    for offset, expected in ((1, (1, None)), (2, (3, "UnicodeDecodeError reading it: records 2-3")),
                             (3, (3, "UnicodeDecodeError reading it: records 2-3"))):
        found = asyncio.run(record_at(_Partition(data, 4), TP, offset))  # type: ignore[arg-type]
        assert found is not None and (found.offset, _text(found)) == expected, offset
    assert asyncio.run(record_at(_Partition(data, 4), TP, 4)) is None  # past the end


def test_an_audit_reader_names_the_batch_it_does_not_read() -> None:
    """An audit reader refuses the record standing for an unreadable batch as it refuses any record that is not a
    block, and its finding says which batch and why, not "unreadable JSON"."""
    walk = PartitionWalk("receipts.COL", 0, lambda *_: True, "receipts", "COL")  # type: ignore[arg-type]
    doc, found = walk.feed(7, b"", None, Unreadable("a zstd-compressed batch, not inflated", 6, 7))
    assert doc is None and [f.problem for f in found] == [
        "not an audit record: a record batch this reader's Kafka client does not read (a zstd-compressed batch, "
        "not inflated: records 6-7)"]
