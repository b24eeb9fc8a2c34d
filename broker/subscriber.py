"""The partner subscriber: read one feed, verify and decrypt, decode, write JSON lines, send receipts.

Receipts are signed: each batch ends with a CHECKPOINT record signed by the partner's
receipt-signing key, vouching for its receipt chain up to there, so no one else can forge or
rewrite what a partner says it received. They are exactly once: each batch's receipts, its
checkpoint and the feed offsets commit in one Kafka transaction, under a transactional id that
names the partner and the subscriber instance. Starting a subscriber fences any earlier one with
the same partner and instance (a crashed one's open receipts are aborted), so each receipt chain
keeps a single writer and never forks; the fenced one stops with a clear error. Instances of one
partner with different names share the feed through the consumer group and each keeps its own
receipt chain; when the group rebalances, an instance that has just lost a partition may still
commit the batch it was handling while the new owner reads it again, so an alert can then have
a receipt in two instances' chains (each chain stays whole). Receipt chains of several partners
share the access topic's partitions: a subscriber reads its chain's head only once every
transaction open on its partition has ended, so another writer's open transaction never hides
its own last receipts (see ``wait_settled``). What is written to the output is at least once: a
crash after writing a batch and before its commit writes those alerts again on restart (with one
receipt each, as before).

Fail closed. A subscriber extends its chain only from a head it can verify as its own (a
checkpoint signed by one of the partner's receipt keys): receipts someone else appended are never
signed over, and the subscriber stops saying so. And it never commits past a feed record it could
not open: it commits what came before, writes a REJECTED receipt for that record so auditors see
it, and stops with an error; the record stays for a subscriber with the right keys.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import OffsetAndMetadata

from broker.audit import ChainHead, ChainWriter, VerifyFn, head_problem
from broker.kafka_io import Record, _record, last_chain_record, reader, wait_settled
from puente.errors import AuditChainError, CodecError, CryptoError, PuenteError, UnreadableFeedError
from schemas import AlertCodec, to_json


class Opener(Protocol):
    def open(self, value: bytes, *, alert_id: str, topic: str, schema_fp: bytes, policy_version: str) -> bytes: ...


@dataclass
class SubscribeStats:
    received: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def receipt_partition(partner: str, partitions: int) -> int:
    """Each partner's receipts go to one partition, so its receipt chain has one writer."""
    return zlib.crc32(partner.encode()) % partitions


DEFAULT_INSTANCE = "main"
RECEIPT_TXN_TIMEOUT_S = 60.0  # a crashed subscriber's open receipts are aborted by Kafka after this
SETTLE_TIMEOUT_S = 1.5 * RECEIPT_TXN_TIMEOUT_S


def receipt_chain(partner: str, instance: str = DEFAULT_INSTANCE) -> str:
    """The receipt chain a subscriber instance writes: the partner's id, with the instance's name
    after a slash unless it is the default one."""
    return partner if instance == DEFAULT_INSTANCE else f"{partner}/{instance}"


class SubscriberFenced(PuenteError):
    """A newer subscriber with the same partner and instance has taken over."""


@dataclass(frozen=True)
class ReceiptSigner:
    """The partner's receipt-signing key as a subscriber uses it.

    ``sign`` makes the checkpoint signatures; ``verify`` checks a checkpoint against every
    generation of the partner's own receipt keys it holds, so the subscriber can tell that the
    head of its chain is its own before it signs over it.
    """

    key_id: str
    sign: Callable[[bytes], bytes]
    verify: VerifyFn


def open_record(rec: Record, opener: Opener, codec: AlertCodec) -> dict[str, Any]:
    """Verify, decrypt and decode one feed record; raises CryptoError or CodecError saying what failed."""
    alert_id = (rec.header("puente-alert-id") or b"").decode("utf-8", "replace")
    policy = (rec.header("puente-policy") or b"").decode("utf-8", "replace")
    schema_hex = (rec.header("puente-schema") or b"").decode("ascii", "replace")
    try:
        schema_fp = bytes.fromhex(schema_hex)
    except ValueError as exc:
        raise CodecError("the record's puente-schema header is not a fingerprint") from exc
    if not alert_id or len(schema_fp) != 8:
        raise CodecError("the record lacks its puente-alert-id or puente-schema header")
    plain = opener.open(rec.value, alert_id=alert_id, topic=rec.topic, schema_fp=schema_fp, policy_version=policy)
    view = codec.decode(plain)
    if view.get("alert_id") != alert_id:
        raise CryptoError("the decrypted alert id differs from the record's header")
    return view


class Subscriber:
    """Reads a partner's feed with read_committed and writes what it may see."""

    def __init__(self, bootstrap: str, partner: str, feed_topic: str, access_topic: str, opener: Opener,
                 codec: AlertCodec, *, signer: ReceiptSigner, group_id: str | None = None,
                 instance: str = DEFAULT_INSTANCE, on_error: Callable[[str], None] | None = None,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.bootstrap, self.partner, self.feed_topic, self.access_topic = bootstrap, partner, feed_topic, access_topic
        self.opener, self.codec = opener, codec
        self.group_id = group_id or f"{feed_topic}.subscriber"
        self.instance = instance
        self.chain_name = receipt_chain(partner, instance)
        self.transactional_id = f"puente-subscriber:{access_topic}:{self.chain_name}"
        self.signer = signer
        self.on_error = on_error or (lambda msg: print(msg, file=sys.stderr))
        self.on_note = on_note or (lambda msg: print(f"puente subscribe: {msg}", file=sys.stderr))
        self.stats = SubscribeStats()

    async def _chain(self, producer: AIOKafkaProducer) -> tuple[ChainWriter, int]:
        partitions = await producer.partitions_for(self.access_topic)
        part = receipt_partition(self.partner, len(partitions))
        tp = TopicPartition(self.access_topic, part)
        # Other partners' and instances' receipts share the partition: the head of this chain is
        # read only once every transaction open there now has ended (see wait_settled).
        await wait_settled(self.bootstrap, tp, timeout_s=SETTLE_TIMEOUT_S, note=self.on_note)
        consumer = reader(self.bootstrap)
        await consumer.start()
        try:
            last = await last_chain_record(consumer, tp, chain=self.chain_name)
        finally:
            await consumer.stop()
        if last is None:
            return ChainWriter(self.access_topic, part, ChainHead(), checkpoint_every=1 << 62,
                               chain=self.chain_name), part
        # Every batch this chain's subscribers committed ends with their signed checkpoint: a head
        # that is not one was written by someone else, and signing over it would vouch for it.
        problem = head_problem(self.access_topic, part, last.value, self.chain_name, self.signer.verify)
        if problem is not None:
            raise AuditChainError(
                f"receipt chain {self.chain_name} in {self.access_topic}[{part}] (offset {last.offset}) cannot be "
                f"continued: {problem}. This subscriber will not sign over receipts it did not write: run "
                "`puente audit verify`, and start with another --instance to begin a new chain")
        head = ChainHead.after(json.loads(last.value))
        return ChainWriter(self.access_topic, part, head, checkpoint_every=1 << 62, chain=self.chain_name), part

    async def run(self, out: TextIO, *, idle_exit_s: float | None = 5.0, limit: int | None = None) -> SubscribeStats:
        """Consume until idle for ``idle_exit_s`` (None: forever) or ``limit`` records."""
        consumer = AIOKafkaConsumer(
            self.feed_topic, bootstrap_servers=self.bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    transactional_id=self.transactional_id,
                                    transaction_timeout_ms=int(RECEIPT_TXN_TIMEOUT_S * 1000))
        await producer.start()  # fences an earlier subscriber of this partner and instance; aborts its receipts
        await consumer.start()
        try:
            # Read the chain's head only now: the fenced writer's open receipts are aborted, never seen.
            chain, part = await self._chain(producer)
            idle_since = time.monotonic()
            while limit is None or self.stats.received + self.stats.rejected < limit:
                batch = await consumer.getmany(timeout_ms=500)
                if not batch:
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                idle_since = time.monotonic()
                unread = await self._batch(batch, out, producer, chain, part)
                if unread is not None:
                    raise unread
        except ProducerFenced:
            raise SubscriberFenced(
                f"another subscriber for {self.partner} (instance {self.instance!r}) has started and taken over "
                "its receipts; this one stops. Give concurrent subscribers different --instance names."
            ) from None
        finally:
            await consumer.stop()
            await producer.stop()
        return self.stats

    async def _batch(self, batch: dict[TopicPartition, list[Any]], out: TextIO, producer: AIOKafkaProducer,
                     chain: ChainWriter, part: int) -> UnreadableFeedError | None:
        """One transaction: the batch's receipts, the partner's checkpoint and the feed offsets.

        Offsets advance only over records that were opened. At the first record that does not
        open (a wrong key, a record not from the broker), the records before it commit with their
        receipts, it gets a REJECTED receipt so auditors see it, and the error comes back: nothing
        past it is committed, so it stays for a correctly configured subscriber.
        """
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        unread: UnreadableFeedError | None = None
        async with producer.transaction():
            for tp, msgs in batch.items():
                for msg in msgs:
                    unread = await self._handle(_record(msg), out, producer, chain, part)
                    if unread is not None:
                        break
                    offsets[tp] = OffsetAndMetadata(msg.offset + 1, "")
                if unread is not None:
                    break
            out.flush()  # written before the commit: at least once, never lost
            # The partner vouches for its chain so far, batch by batch.
            signed = chain.checkpoint(self.signer.key_id, self.signer.sign, _iso(datetime.now(UTC)))
            await producer.send(self.access_topic, signed, key=self.partner.encode(), partition=part)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.group_id)
        return unread

    async def _handle(self, rec: Record, out: TextIO, producer: AIOKafkaProducer, chain: ChainWriter,
                      part: int) -> UnreadableFeedError | None:
        where = f"{rec.topic}:{rec.partition}:{rec.offset}"
        alert_id = (rec.header("puente-alert-id") or b"").decode("utf-8", "replace")[:200]
        unread = None
        try:
            view = open_record(rec, self.opener, self.codec)
        except (CryptoError, CodecError) as exc:
            reason = type(exc).__name__
            self.stats.rejected += 1
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
            self.on_error(f"puente subscribe: rejected {where} (alert {alert_id or '?'}): {exc}")
            status = f"REJECTED: {reason}"
            unread = UnreadableFeedError(
                f"{self.partner}'s subscriber stopped at {where} (alert {alert_id or '?'}): {exc}. Nothing past it "
                "was committed, so it stays for a subscriber with the right keys: check that --key is "
                f"{self.partner}'s current decryption key and --verify-key the broker's public key")
        else:
            self.stats.received += 1
            out.write(json.dumps(to_json(view), ensure_ascii=False) + "\n")
            status = "RECEIVED"
        receipt = {"partner": self.partner, "alert_id": alert_id or None, "feed": where, "status": status,
                   "policy_version": (rec.header("puente-policy") or b"").decode("utf-8", "replace")[:100],
                   "at": _iso(datetime.now(UTC))}
        await producer.send(self.access_topic, chain.append("RECEIPT", receipt), key=self.partner.encode(),
                            partition=part)
        return unread
