"""A transaction commits only once every record it sent was delivered. aiokafka fails only the futures of a record
batch it gives up on (a non-retriable error: an out-of-order sequence, an unknown producer id, a record Kafka
refuses), and its flush before the commit waits for every batch without raising: a writer that does not await each
send would commit the rest without it (a receipt chain with a hole, feed offsets past records never receipted, a
denials chain broken for good). ``broker.kafka.transaction`` awaits each send the block adds to its ``Sends``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber
from partner_feed import Msg, Receipts

import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.kafka import transaction
from tests.unit.broker.test_audit_trust import LINE, NAMES, _sign, _verify, kept_as_stated
from tests.unit.broker.test_partner_skip import TP, _junk, _subscriber


class AiokafkaLike(Receipts):
    """Commits as aiokafka does: the flush before the commit waits for every record's delivery and never raises; the
    ``fail``-th record sent (0 first) is refused for good, failing only its own delivery."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.delivered: list[tuple[asyncio.Future[Any], bytes]] = []
        self.committed: list[dict[str, Any]] | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        await asyncio.wait([f for f, _ in self.delivered])  # flush for the commit: never raises
        self.committed = [json.loads(v) for f, v in self.delivered if f.exception() is None]

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[Any]:  # type: ignore[override]
        delivery = asyncio.get_running_loop().create_future()
        if len(self.delivered) == self.fail:
            delivery.set_exception(OutOfOrderSequenceNumber())
        else:
            delivery.set_result(type("Sent", (), {"offset": len(self.delivered)})())
        self.delivered.append((delivery, value))
        return delivery


async def test_a_receipt_kafka_refused_aborts_its_batch() -> None:
    """Two records given up: the first one's REJECTED receipt is refused for good. The batch does not commit (its
    receipts, checkpoint and feed offsets stay out together) rather than commit the feed offsets past a record
    with no receipt, and a checkpoint vouching for one Kafka never took."""
    sub = _subscriber([f"{TP.topic}:0:3", f"{TP.topic}:0:4"], [])
    producer = AiokafkaLike(fail=0)
    with pytest.raises(OutOfOrderSequenceNumber):
        await sub._batch({TP: [Msg(_junk(3)), Msg(_junk(4))]}, None, producer, ChainWriter("t.receipts.COL", 0,
                                                                                           chain="COL"), 0)
    assert producer.committed is None


def test_a_denials_block_kafka_refused_aborts_the_collection(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """The denials collector's block refused for good: nothing commits, and the run stops saying why (the next
    run collects the same lines from the chain's head), never committing a later block over the hole."""
    monkeypatch.setitem(auditor.collect_denials.__kwdefaults__, "per_transaction", 1)
    audit_topics[NAMES.denials] = []
    out = AiokafkaLike(fail=0)
    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: out)
    monkeypatch.setattr(auditor, "check_audit_retention", kept_as_stated)
    log = tmp_path / "authorizer.log"
    log.write_text("".join(LINE.format(s=s) + "\n" for s in range(3)))
    with pytest.raises(OutOfOrderSequenceNumber):
        asyncio.run(auditor.collect_denials(None, NAMES, [log], frozenset({"partner-COL"}),  # type: ignore[arg-type]
                                            "broker-sign-2026a", _sign, _verify, keep_days=30))
    assert out.committed is None


async def test_every_send_added_is_delivered_before_the_commit() -> None:
    made = AiokafkaLike(fail=1)
    with pytest.raises(OutOfOrderSequenceNumber):
        async with transaction(made) as sends:  # type: ignore[arg-type]
            for n in range(3):
                sends.add(await made.send("t", json.dumps({"n": n}).encode()))
    assert made.committed is None
    made = AiokafkaLike(fail=9)
    async with transaction(made) as sends:  # type: ignore[arg-type]
        for n in range(3):
            sends.add(await made.send("t", json.dumps({"n": n}).encode()))
    assert made.committed == [{"n": 0}, {"n": 1}, {"n": 2}]
