"""A partner's feed for the subscriber's unit tests: records sealed by real FeedSealers, a receipts producer that
keeps what was sent, and one batch run through ``Subscriber._batch`` (no Kafka)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import broker.partner as partner
from broker.audit import ChainWriter
from broker.crypto import FeedOpener, FeedSealer
from broker.kafka import KafkaConnection, TopicPartition
from broker.partner import Subscriber
from broker.partner_store import PartnerStore
from puente import wire
from puente.errors import UnreadableFeedError
from puente.wire import Record
from schemas import alert_codec

FEED = "t.feed.COL"
RECEIPTS = "t.receipts.COL"
CODEC = alert_codec()
KAFKA_LATER = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp() * 1000)
"""A time Kafka vouched for later than any a test purges at: a store purges no further than the one it kept
(``PartnerStore.purge``), so tests of the purge's own rules keep this one and purge by their own clock."""


def ms(when: datetime) -> int:
    """``when`` in milliseconds since 1970, as Kafka stamps a record."""
    return int(when.timestamp() * 1000)


class BrokerKeys:
    """COL's decryption key and the broker's signing keys, by key id (the first given is the one made first)."""

    def __init__(self, *generations: str) -> None:
        self.col = X25519PrivateKey.generate()
        self.signing = {f"broker-sign-{g}": Ed25519PrivateKey.generate() for g in generations}

    def sealer(self, key_id: str) -> FeedSealer:
        return FeedSealer("COL", self.col.public_key(), self.signing[key_id])

    def opener(self) -> FeedOpener:
        """An opener holding every generation, as ``opener_for`` loads them from the partner's folder."""
        return FeedOpener("COL", {"COL-enc-2026a": self.col},
                          {key_id: key.public_key() for key_id, key in self.signing.items()})


def sealed(sealer: FeedSealer, view: Mapping[str, Any], offset: int, now: datetime,
           agreement: str = "COMBIFRON") -> Record:
    """The feed record the broker writes for ``view``, its key block made at ``now`` (a new data key each time)."""
    sealer.rotate(now)
    value = sealer.seal(CODEC.encode(dict(view)), alert_id=view["alert_id"], topic=FEED, schema_fp=CODEC.fingerprint,
                        policy_version="p1", agreement=agreement, now=now)
    headers = ((wire.ALERT_ID, view["alert_id"].encode()), (wire.SCHEMA, CODEC.fingerprint.hex().encode()),
               (wire.POLICY, b"p1"), (wire.AGREEMENT, agreement.encode()))
    return Record(FEED, 0, offset, view["alert_id"].encode(), value, headers, 0)


class ReceiptSigner:
    """A receipt signer that signs nothing: the subscriber's batch only needs its key id and a signature's size."""

    key_id = "COL-rcpt-2026a"

    def sign(self, payload: bytes) -> bytes:
        return bytes(64)


class _Sent:
    """A record delivered, as aiokafka's RecordMetadata says it: on a receipts topic, stamped with Kafka's append time
    (``timestamp_type`` 1: LogAppendTime)."""

    offset = 7
    timestamp_type = 1

    def __init__(self, timestamp: int) -> None:
        self.timestamp = timestamp

    def __await__(self) -> Any:
        yield from ()
        return self


class Receipts:
    """The receipts producer as a batch uses it: what was sent, and the offsets committed with the transaction.
    ``appended``: Kafka's clock, which stamps each record delivered (this host's by default; ``run_batch`` gives it
    the subscriber's clock unless told)."""

    def __init__(self, appended: Callable[[], datetime] | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.offsets: dict[TopicPartition, int] = {}
        self.appended = appended
        self.ended: list[str] = []  # how each transaction ended: "commit" or "abort"
        self.stopped = False

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            await self.abort()
            raise
        self.ended.append("commit")

    async def abort(self) -> None:
        """The transaction's abort (aiokafka's ``abort_transaction``), noted."""
        self.ended.append("abort")

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **_: Any) -> _Sent:
        self.sent.append(json.loads(value))
        when = self.appended() if self.appended is not None else datetime.now(UTC)
        return _Sent(ms(when))

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any], group: str) -> None:
        self.offsets = {tp: at.offset for tp, at in offsets.items()}

    def statuses(self) -> list[str]:
        return [r["status"] for r in self.sent if r["kind"] == "RECEIPT"]


class GroupFeed:
    """The feed's group consumer as ``Subscriber._resume`` and ``_gap`` use it: partition 0 of ``FEED`` holding records
    ``begin`` to ``end - 1``; the seeks and commits made are noted."""

    def __init__(self, begin: int = 0, end: int = 100) -> None:
        self.begin, self.end = begin, end
        self.seeks: list[int] = []
        self.commits: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(FEED, 0)}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.begin for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end for tp in tps}

    def seek(self, tp: TopicPartition, at: int) -> None:
        self.seeks.append(at)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.extend(at.offset for at in offsets.values())


class Msg:
    """A feed record as aiokafka's consumer gives it."""

    def __init__(self, rec: Record) -> None:
        self.topic, self.partition, self.offset = rec.topic, rec.partition, rec.offset
        self.key, self.value, self.headers, self.timestamp, self.timestamp_type = rec.key, rec.value, rec.headers, 0, 1


def subscriber(keys: BrokerKeys, store: PartnerStore | None, clock: Callable[[], datetime],
               skip: tuple[str, ...] = (), notes: list[str] | None = None) -> Subscriber:
    """COL's subscriber over ``store`` (or none), its clock ``clock``."""
    said = notes if notes is not None else []
    return Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", FEED, RECEIPTS, keys.opener(), CODEC,
                      signer=ReceiptSigner(), store=store, clock=clock, on_error=said.append,  # type: ignore[arg-type]
                      on_note=said.append, skip=skip)


class FailingReceipts(Receipts):
    """A receipts producer that fails as the batch's offsets are sent: inside the store's transaction, rolled back."""

    async def send_offsets_to_transaction(self, offsets: dict[TopicPartition, Any], group: str) -> None:
        raise RuntimeError("Kafka refused the offsets")


async def run_batch(sub: Subscriber, *records: Record, receipts: Receipts | None = None,
                    partition: int = 0) -> tuple[UnreadableFeedError | None, Receipts]:
    """One batch of ``records`` (one partition, ``partition``) through the subscriber: the error it stopped at, and
    its receipts."""
    receipts = receipts if receipts is not None else Receipts()
    if receipts.appended is None:  # Kafka's clock agrees with the subscriber's
        receipts.appended = sub.clock
    msgs = [Msg(rec._replace(partition=partition)) for rec in records]
    unread, _ = await sub._batch({TopicPartition(FEED, partition): msgs}, None, receipts,
                                 ChainWriter(RECEIPTS, 0, chain="COL"), 0)
    return unread, receipts


def stub_committed(monkeypatch: Any, found: tuple[int, str] | None) -> None:
    """Make the subscriber read ``found`` as the group's committed offset and tag of every partition (None: none)."""
    async def committed_with_metadata(consumer: Any, tp: TopicPartition) -> tuple[int, str] | None:
        return found
    monkeypatch.setattr(partner, "committed_with_metadata", committed_with_metadata)


class EndTxnFails(Receipts):
    """Kafka refuses the commit (EndTxn) after the store has committed the batch: the receipts are aborted."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            await self.abort()
            raise
        self.ended.append("abort")
        raise RuntimeError("EndTxn failed")
