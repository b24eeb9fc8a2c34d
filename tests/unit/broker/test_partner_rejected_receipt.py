"""A REJECTED receipt (a record that did not open) carries no policy version: the record's policy header is anyone's
text until it opens, and the partner's signed checkpoint covers its receipts."""

from __future__ import annotations

from aiokafka import TopicPartition
from partner_feed import Msg, Receipts, ReceiptSigner

from broker.audit import ChainWriter
from broker.kafka import KafkaConnection
from broker.partner import Subscriber
from puente.wire import Record

TP = TopicPartition("t.feed.COL", 0)


async def test_a_rejected_receipt_leaves_the_unopened_policy_header_out() -> None:
    """A record that does not open, given up by --skip, with a policy header: its receipt's policy_version is empty,
    its place and status as before, and its alert id the header's (auditors bind the place to it)."""
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", TP.topic, "t.receipts.COL",
                     object(), object(), signer=ReceiptSigner(), on_error=lambda _: None,  # type: ignore[arg-type]
                     skip=[f"{TP.topic}:0:3"])
    rec = Record(TP.topic, TP.partition, 3, b"A-3", b"junk",
                 (("puente-alert-id", b"A-3"), ("puente-policy", b"forged-policy-text")), 0)
    producer = Receipts()
    unread, _ = await sub._batch({TP: [Msg(rec)]}, None, producer,  # type: ignore[arg-type]
                                 ChainWriter("t.receipts.COL", 0, chain="COL"), 0)
    receipts = [r for r in producer.sent if r["kind"] == "RECEIPT"]
    assert unread is None and [r["status"] for r in receipts] == ["REJECTED: CodecError; given up"]
    assert receipts[0]["policy_version"] == "" and receipts[0]["feed"] == f"{TP.topic}:0:3"
    assert receipts[0]["alert_id"] == "A-3" and receipts[0]["version"] is None
