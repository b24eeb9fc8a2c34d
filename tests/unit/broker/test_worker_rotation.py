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
