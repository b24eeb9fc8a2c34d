"""A slot's head signed by a retired generation of the broker's key is not continued.

The broker signs with its newest key; a worker started before a rotation cannot verify the newer key's
blocks and refuses them. So a chain's last block signed by an older generation than a block before it is
a retired key signing again: whoever holds a leaked one and can write the topic. The Kafka seam (the last
record of each audit partition, the blocks read back for the replay window) is given by the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import pytest
from worker_fakes import Pipeline

from broker import worker as worker_module
from broker.audit import ChainWriter
from broker.kafka import KafkaConnection, TopicPartition
from broker.topology import Slots, TopicNames
from broker.worker import BrokerWorker, WorkerConfig
from puente.errors import AuditChainError
from puente.wire import Record

CONN = KafkaConnection(bootstrap="unused:9092")
NAMES = TopicNames("t")
KEY = b"k" * 32
NEW, OLD = "broker-sign-2026b", "broker-sign-2026a"


def _sign(payload: bytes) -> bytes:
    # 64 bytes, as an Ed25519 signature: a record's sig must be exactly 128 lowercase hex digits
    return hmac.new(KEY, payload, hashlib.sha512).digest()


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return signer in (NEW, OLD) and hmac.compare_digest(_sign(payload), sig)


def _blocks(signers: list[str]) -> list[Record]:
    writer = ChainWriter(NAMES.decisions, 0)
    return [Record(NAMES.decisions, 0, i, None, writer.block(
        [{"kind": "ALERT", "alert_id": f"SENAN:{i}", "ingress": f"{NAMES.ingress('SENAN')}:0:{i}",
          "ingress_ms": 1_700_000_000_000 + i, "decisions": []}], signer, _sign, "2026-11-01T10:00:00Z"), (),
        1_700_000_000_000 + i) for i, signer in enumerate(signers)]


class _Consumer:
    async def offsets_for_times(self, since: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        return {tp: type("Hit", (), {"offset": 0})() for tp in since}


def _load(monkeypatch: pytest.MonkeyPatch, signers: list[str], spoilt: int | None = None,
          again: tuple[int, ...] = (), committed: bool = True) -> None:
    records = _blocks(signers)
    for index in again:  # genuine blocks appended again at the end
        rec = records[index]
        records.append(Record(rec.topic, 0, len(records), None, rec.value, (), rec.timestamp_ms))
    if spoilt is not None:  # a block that names its signer, with a signature that does not verify
        rec = records[spoilt]
        records[spoilt] = Record(rec.topic, 0, rec.offset, None, rec.value.replace(b'"sig":"', b'"sig":"00', 1), (),
                                 rec.timestamp_ms)

    async def last_records(consumer: Any, tps: list[TopicPartition],
                           ) -> dict[TopicPartition, tuple[Record | None, Record | None]]:
        return {tp: (records[-2] if len(records) > 1 else None, records[-1]) for tp in tps}

    async def read_many(consumer: Any, tps: list[TopicPartition], *, starts: dict[TopicPartition, int],
                        each: Callable[[Record], None]) -> None:
        for rec in records:
            each(rec)

    monkeypatch.setattr(worker_module, "last_records", last_records)
    monkeypatch.setattr(worker_module, "read_many", read_many)
    config = WorkerConfig(CONN, "g", Slots(("SENAN",), 1, NAMES), verify=_verify, generations=(NEW, OLD))
    worker = BrokerWorker(config, Pipeline(), _sign)  # type: ignore[arg-type]
    asyncio.run(worker._read_state(_Consumer(), [0], {0: len(records) if committed else None}))  # type: ignore[arg-type]


def test_a_rotation_is_continued(monkeypatch: pytest.MonkeyPatch) -> None:
    _load(monkeypatch, [OLD, OLD, NEW, NEW])
    _load(monkeypatch, [OLD, OLD])  # the first start after a rotation: the new key continues the old one's head


def test_a_retired_key_signing_after_its_successor_is_not_continued(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuditChainError, match="moved on from"):
        _load(monkeypatch, [OLD, NEW, NEW, OLD])


def test_a_block_that_only_claims_a_newer_key_stops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks read back are checked only when they name a newer key than the head's, and then their signature
    must verify: a block that merely names one (anyone who may write the topic can) does not stop the slot."""
    _load(monkeypatch, [OLD, NEW, OLD], spoilt=1)


def test_a_spoilt_newer_block_does_not_hide_a_genuine_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The genuine newer-key blocks are found even when the last block naming the newer key does not verify."""
    with pytest.raises(AuditChainError, match="moved on from"):
        _load(monkeypatch, [OLD, NEW, NEW, OLD], spoilt=2)


def test_a_genuine_block_appended_again_is_not_continued(monkeypatch: pytest.MonkeyPatch) -> None:
    """An older block written again after the head verifies on its own; but it does not follow the record before
    it (one seq on, naming its hash), so the slot does not continue from it (it would read its records again and
    fork the chain there)."""
    _load(monkeypatch, [NEW, NEW, NEW])
    with pytest.raises(AuditChainError, match=r"does not follow the record before it \(offset 2\)"):
        _load(monkeypatch, [NEW, NEW, NEW], again=(1,))


def test_blocks_appended_again_with_their_predecessor_are_not_continued(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks 0 and 1 written again after the chain's newest (5) follow each other, so the head passes ``_follows``,
    and with the group's offset unknown (``head_behind`` has nothing to compare) nothing else stopped it; but the
    blocks read back for the replay window include seqs at or past the head's: refused, naming the first."""
    with pytest.raises(AuditChainError, match=r"a record before its last block \(offset 1\) names the same seq"):
        _load(monkeypatch, [NEW] * 6, again=(0, 1), committed=False)


# A chain as Kafka holds it, dated: the blocks' append times are Kafka's (LogAppendTime), and the time each
# block claims for its ingress records is its signer's. The fake answers as Kafka would: offsets_for_times by
# append time, read_many from the offsets asked.
DAY = 86_400_000
NOW = int(time.time() * 1000) - DAY  # a head is never ahead of this machine's clock (``head_ahead``)


def _dated(plan: list[tuple[str, int, int]]) -> list[Record]:
    """Blocks signed by each (signer, Kafka append time, claimed ingress time) in turn, one chain."""
    writer = ChainWriter(NAMES.decisions, 0)
    return [Record(NAMES.decisions, 0, i, None, writer.block(
        [{"kind": "ALERT", "alert_id": f"SENAN:{i}", "ingress": f"{NAMES.ingress('SENAN')}:0:{i}",
          "ingress_ms": claimed, "decisions": []}], signer, _sign, "2026-11-01T10:00:00Z"), (), appended, True)
        for i, (signer, appended, claimed) in enumerate(plan)]


class _Kafka:
    """The audit partition's reader: what the worker asked for is kept."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.asked: list[dict[TopicPartition, int]] = []
        self.starts: dict[TopicPartition, int] = {}

    async def offsets_for_times(self, since: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        self.asked.append(dict(since))
        hit = {tp: next((r.offset for r in self.records if r.timestamp_ms >= ms), None) for tp, ms in since.items()}
        return {tp: None if off is None else type("Hit", (), {"offset": off})() for tp, off in hit.items()}


def _state(monkeypatch: pytest.MonkeyPatch, records: list[Record], made: dict[str, int] | None = None,
           ) -> tuple[_Kafka, Any]:
    kafka = _Kafka(records)

    async def last_records(consumer: Any, tps: list[TopicPartition],
                           ) -> dict[TopicPartition, tuple[Record | None, Record | None]]:
        return {tp: (records[-2] if len(records) > 1 else None, records[-1]) for tp in tps}

    async def read_many(consumer: Any, tps: list[TopicPartition], *, starts: dict[TopicPartition, int],
                        each: Callable[[Record], None]) -> None:
        kafka.starts = dict(starts)
        for rec in records:
            if rec.offset >= starts[TopicPartition(rec.topic, rec.partition)]:
                each(rec)

    monkeypatch.setattr(worker_module, "last_records", last_records)
    monkeypatch.setattr(worker_module, "read_many", read_many)
    config = WorkerConfig(CONN, "g", Slots(("SENAN",), 1, NAMES), verify=_verify, generations=(NEW, OLD),
                          generations_made=made or {})
    worker = BrokerWorker(config, Pipeline(), _sign)  # type: ignore[arg-type]
    return kafka, asyncio.run(worker._read_state(kafka, [0], {0: None}))  # type: ignore[arg-type]


TP = TopicPartition(NAMES.decisions, 0)
MADE = {OLD: NOW - 400 * DAY, NEW: NOW - 30 * DAY}


def test_a_retired_head_claiming_a_fresh_time_is_refused_by_the_block_before_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A head a leaked retired key signed right after its successor's block, claiming a fresh ingress time (so the
    window's read starts past every block the successor signed), is refused: the record before it is checked."""
    records = _dated([(NEW, NOW - 10 * DAY + i, NOW - 10 * DAY + i) for i in range(3)] + [(OLD, NOW, NOW)])
    worker = BrokerWorker(WorkerConfig(CONN, "g", Slots(("SENAN",), 1, NAMES), verify=_verify,
                                       generations=(NEW, OLD)), Pipeline(), _sign)  # type: ignore[arg-type]
    with pytest.raises(AuditChainError, match=r"moved on from \(a newer generation, broker-sign-2026b, signed the "
                                              r"block before it at offset 2\)"):
        worker._verified_head(TP, records[-1], records[-2])
    with pytest.raises(AuditChainError, match="moved on from"):
        _state(monkeypatch, records, MADE)


@pytest.mark.parametrize("made", [MADE, None], ids=["made-times-known", "made-times-unknown"])
def test_retired_blocks_claiming_fresh_times_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                         made: dict[str, int] | None) -> None:
    """Two blocks a leaked retired key signed after its successor's, claiming fresh ingress times: the record
    before the head is the retired key's own, and the window's read (from the head's claimed time) meets no block
    of the successor; the read from when the successor was made (from the start when that is unknown) does."""
    records = _dated([(OLD, NOW - 90 * DAY, NOW - 90 * DAY), (NEW, NOW - 10 * DAY, NOW - 10 * DAY),
                      (NEW, NOW - 10 * DAY + 1, NOW - 10 * DAY + 1), (OLD, NOW - 1, NOW - 1), (OLD, NOW, NOW)])
    with pytest.raises(AuditChainError, match=r"a newer generation signed the block at offset 1\)"):
        _state(monkeypatch, records, made)


def test_a_head_the_newest_key_signed_reads_back_the_window_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common start costs what it did: a head the newest key signed is looked behind only over the window."""
    records = _dated([(OLD, NOW - 40 * DAY, NOW - 40 * DAY)] + [(NEW, NOW - (20 - i) * DAY, NOW - (20 - i) * DAY)
                                                                  for i in range(21)])
    kafka, states = _state(monkeypatch, records, MADE)
    assert len(kafka.asked) == 1
    assert kafka.starts == {TP: 14}  # the blocks of the last 7 days (and twice the skew allowed)
    assert states[0][0].seq == len(records)


def test_the_first_start_after_a_rotation_reads_back_from_when_the_new_key_was_made(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A genuine head the old key signed, its successor made since: continued, after a read from the first block
    appended once the successor was made (workers restarted one after another meanwhile), not the whole chain."""
    records = _dated([(OLD, NOW - (30 - i) * DAY, NOW - (30 - i) * DAY) for i in range(31)])
    kafka, states = _state(monkeypatch, records, {OLD: NOW - 400 * DAY, NEW: NOW - 10 * DAY})
    assert kafka.asked[-1] == {TP: NOW - 10 * DAY - 3_600_000}
    assert kafka.starts == {TP: 20}  # the window's read alone would start at 23, the last 7 days
    assert states[0][0].seq == len(records)
    kafka, states = _state(monkeypatch, records, {OLD: NOW - 400 * DAY, NEW: NOW - 2 * DAY})
    assert kafka.starts == {TP: 23}  # made within the window: no more than the window's read
    _, states = _state(monkeypatch, records, {OLD: NOW - 400 * DAY})  # the new key's making time unknown
    assert states[0][0].seq == len(records)


def test_generations_are_ordered_by_their_labels_first() -> None:
    """Labels order the broker's keys where they say (2026b after 2026a, 10a after 9a); the keystore's order
    decides only where they do not (2026a, spring); a key neither orders is newer than none."""
    from broker.crypto.keys import newer_generation

    assert newer_generation("broker-sign-10a", "broker-sign-9a", ("broker-sign-9a", "broker-sign-10a"))
    assert not newer_generation("broker-sign-9a", "broker-sign-10a", ("broker-sign-9a", "broker-sign-10a"))
    assert newer_generation("broker-sign-spring", "broker-sign-2026a", ("broker-sign-spring", "broker-sign-2026a"))
    assert not newer_generation("broker-sign-2026a", "broker-sign-spring", ("broker-sign-spring",))
    assert not newer_generation(NEW, NEW, (NEW,))
