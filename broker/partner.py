"""The partner subscriber: read one feed, verify and decrypt, decode, keep it in the partner's store, send receipts.

Each opened record is applied to the partner's store (``broker.partner_store``: one SQLite file)
by the version rule there, and the receipt says what that did: ``RECEIVED`` (a new alert or a newer
version stored), ``DUPLICATE`` (the version held, sent again), ``SUPERSEDED`` (older than the one
held), ``RECALLED`` (a recall notice: the content is deleted; this receipt is the partner's signed
acknowledgement of the recall, which auditors check against the agreement's ``recall_ack_hours``),
``REFUSED`` (a view of an alert its originator recalled for good), ``EXPIRED`` (a view past its
``markings.expires_at``, or sealed longer ago than its agreement's retention: a replay of what the
partner had to delete; not stored), or ``REJECTED: <reason>`` (a record that does not open). Every receipt names the
view's ``version`` (null when rejected). What a record is comes from its decrypted view only:
the ``puente-decision`` header is not authenticated, so one saying RECALL counts for nothing
(the alert id, schema, policy and agreement headers are: the record's associated data binds
them). The store's transaction for a batch
commits before the batch's Kafka transaction: a crash between the two redelivers the batch, and
that is harmless: the store keeps the outcome of each record it applied until Kafka confirms its receipt, so a record
applied already gets the status it first had, its first receipt having been aborted, however later records of the
batch changed its alert's row (``PartnerStore.apply``), and a RECALLED receipt is sent only once the deleted text is
gone from the store's files (else the batch's Kafka transaction is aborted). The store notes the feed
offsets it applied up to in the same transaction: one restored from a backup, or a new ``--store``, is
behind the group's committed offsets, and the records in between are read into it again, with a note,
never skipped (``resume_at``); each is marked passed on as it is applied, since whether an earlier run copied it to
``out`` is unknowable and the mark that run set is not in this store (fail closed: its recall says
``RECALL_PASSED_ON``); the re-read's end is kept in the store and the group's offset never committed back below it, so
a restart or rebalance partway through goes on marking. Where the group has no offset (it expired, or the feed topic
was deleted, which drops them), it reads on from the offset the store saw Kafka commit, once the last committed record
before it is the one the store read last (the store keeps a mark of it; a transaction open across that offset is
waited for first): a topic made anew stops the run (``Subscriber._remade``). An optional
JSON-lines copy (``out``) gets every view the store took (RECEIVED) and every recall notice
(RECALLED), never one it refused or already held, and is the reader's to honour: nothing can
recall a line once written, so the store marks each alert it wrote there (for good: the mark outlives the purge of
the alert's row), and a recall of a marked alert (whichever run, with or without ``out``, receives it, however late)
says ``RECALL_PASSED_ON``, which is no
acknowledgement. A newer version that ends an alert passed on (it arrived expired, or past its agreement's retention:
``EXPIRED``, the text held deleted) writes a content-free line to ``out`` (``end_line``), its reader to delete the
alert. A run without ``out`` that deletes or replaces the text of an alert an earlier run passed on (a recall, such a
version, a correction) says so in a note naming the feed place and the alert: that note, and for a recall the
``RECALL_PASSED_ON`` receipt, which keeps the recall outstanding for auditors, is all the contract; nothing is kept
pending for a later ``out``, which need not be the file the alert went to. Nor is ``RECALL_NOT_HELD``: a recall of
an alert the store never held, on a feed partition it took over mid-stream from another store (another instance's,
or one left under another ``--instance``), which may hold it.
The store is purged (expiry, the agreements' retention) when the subscriber starts and at most
every ``PURGE_EVERY_S`` after. A purge goes no further than a time Kafka vouched for (below); when it held something
back and no batch has vouched for a time since, as on a quiet feed, the subscriber has Kafka vouch for one with a
transaction holding its checkpoint alone, at the start of its read and every ``PURGE_EVERY_S`` while it holds back
(``_ask_time``), so a quiet feed never keeps what the agreement's retention ends.

Receipts are signed: each batch ends with a CHECKPOINT record signed by the partner's
receipt-signing key, vouching for its receipt chain up to there, so no one else can forge or
rewrite what a partner says it received. They are exactly once: each batch's receipts, its
checkpoint and the feed offsets commit in one Kafka transaction, under a transactional id that
names the partner and the subscriber instance. Starting a subscriber fences any earlier one with
the same partner and instance (a crashed one's open receipts are aborted), so each receipt chain
keeps a single writer and never forks; the fenced one stops with a clear error. Instances of one
partner with different names share the feed through the consumer group and each keeps its own
receipt chain. Their producers do not fence one another, so a partition changes hands only once
the instance giving it up has committed its batch in flight and the group shows that commit (a
rebalance waits for it, and so does leaving the group: ``_hand_over``); the new owner starts
after it, and each alert gets one receipt. (An instance that dies between asking Kafka to commit
and hearing back is the exception: the instance that takes its partitions may read the batch
before its commit shows, and the alert then has a receipt in two chains, each chain whole. So is one killed
between its store's commit and Kafka's whose partition another instance reads on: its store holds what it applied,
with no receipt naming it, so when it gets the partition back it reads those records again, up to the group's
offset, applying and receipting those of alerts its store holds or held, a recall among them included:
``_catch_store_up``. The same holds after a clean handover: a store given back a partition another store read on
reads what that one read since, for the alerts it holds, so a recall the other store could only answer
``RECALL_NOT_HELD`` reaches the store holding the alert.)
The receipt chains of a partner's
instances share its receipts topic's partition: a subscriber reads its chain's head only once every
transaction open on its partition has ended, so another writer's open transaction never hides
its own last receipts (see ``wait_settled``). What is written to the JSON-lines copy is at least
once: each batch's lines are synced to disk before its Kafka commit, and a crash after writing a
batch and before its commit writes those alerts again on restart (with one receipt each, as
before), after cutting off a last line the crash cut short (``open_copy``).

Fail closed. A subscriber extends its chain only from a head it can verify as its own (a
checkpoint signed by one of the partner's receipt keys): receipts someone else appended are never
signed over, and the subscriber stops saying so. With a store, it also keeps the last checkpoint
it committed, and refuses an older one of its own written again after it (which verifies, and
would fork the chain); without a store it cannot tell such a replay from its own head. And it
never commits past a feed record it could not open: it commits what came before, writes a
REJECTED receipt for that record so auditors see it, and stops with an error; the record stays
for a subscriber with the right keys. (Within a catch-up, ``_catch_store_up``, the group's offset already stands past
such a record, another instance having read it: one of an alert this store never held is passed over, and one of an
alert it holds or held stops the run, the store reading it again when it runs next.) So that a key rotation on either
side does not turn every
record still sealed or signed under an old key into such a stop, the subscriber holds every
generation of the partner's decryption keys and of the broker's signing keys it is given
(``opener_for``). Holding a retired broker key to read what it signed does not let it sign anew: a
key block signed by a generation older than one the subscriber had already accepted a block of, and
made more than an hour after the subscriber first did so (by its own clock), does not open
(``retired_broker_key``; the store keeps when each generation was first seen, committed with the
records). Nor does a key block dated more than the clock skew allowed ahead of the subscriber's
clock (``future_key_block``): the store counts an alert's retention from that date. The mirror: a batch decided
by a subscriber's clock running ahead of Kafka's by more than that skew commits nothing (``clock_ahead``, checked
against Kafka's append time of the batch's checkpoint before either transaction commits), since by a clock ahead by a
retention every view is EXPIRED, committed past and never stored. The store keeps that append time, and its purges,
final too, go no further than it (``PartnerStore.purge``): a start under such a clock, before Kafka is reached,
deletes nothing that clock alone says is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import re
import stat
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.access import subscriber_group, subscriber_transaction
from broker.audit import ChainHead, ChainWriter, VerifyFn, head_problem
from broker.audit.chain import INSTANCE, INSTANCE_RULE, receipt_chain
from broker.audit.receipts import RECEIPTS_PER_CHECKPOINT
from broker.audit.verify import ROTATION_GRACE_MS
from broker.crypto import (
    BROKER_OWNER,
    FeedOpener,
    KeyKind,
    KeyRecord,
    Opened,
    checker,
    refuse_one_key_two_ids,
    sign_checkpoint,
)
from broker.crypto.keys import compare_generations, newer_generation, parse_key_id
from broker.kafka import (
    ClientError,
    Consumer,
    ConsumerRebalanceListener,
    KafkaConnection,
    NoCommittedOffset,
    OffsetAndMetadata,
    OffsetOutOfRange,
    Producer,
    ProducerFenced,
    Sends,
    TopicPartition,
    chain_records,
    committed_with_metadata,
    consumer,
    fetch_view,
    last_before,
    offsets_visible,
    producer,
    reader,
    record,
    record_at,
    running,
    settle,
    stop_client,
    transaction,
    wait_settled,
)
from broker.kafka.clients import RecordTooLarge, TooLarge
from broker.keystore import Keystore, load_key_file, signing_order_problem
from broker.partner_store import CLOCK_SKEW_MS, Applied, Delivery, Outcome, PartnerStore, Retention, deferred_note
from broker.topology import TopicNames
from policies import DEFAULT_INSTANCE, load_policy_set, subscriber_instances
from puente import wire
from puente.errors import (
    AuditChainError,
    CodecError,
    ConfigError,
    CryptoError,
    FeedGapError,
    KafkaAccessError,
    KafkaUnavailableError,
    KeyMaterialError,
    PuenteError,
    SignatureError,
    StoreBusy,
    StoreError,
    SubscriberFenced,
    UnreadableFeedError,
)
from puente.settings import PuenteSettings
from puente.strict import json_text, one_line
from puente.wire import Record, Unreadable, iso_utc
from schemas import AlertCodec, alert_codec, to_json


class Opener(Protocol):
    def open_verified(self, value: bytes, *, alert_id: str, topic: str, schema_fp: bytes, policy_version: str,
                      agreement: str) -> Opened: ...


@dataclass
class SubscribeStats:
    """What a run did: ``received`` counts records opened (whatever the store made of them),
    ``outcomes`` the receipt status of each, ``reasons`` why records were rejected."""

    received: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    purged: int = 0
    skipped: int = 0  # records the feed no longer held, read past with accept_gaps
    given_up: int = 0  # records that did not open, read past because ``skip`` named them (counted in rejected)


def receipt_partition(partner: str, partitions: int) -> int:
    """Each partner's receipts go to one partition, so its receipt chain has one writer."""
    return zlib.crc32(partner.encode()) % partitions


# The receipt status of a recall applied to the store while an --out copy keeps earlier lines: not
# an acknowledgement, since the text still exists outside the store.
RECALL_PASSED_ON = "RECALL_PASSED_ON"
# The receipt status of a recall of an alert this store never held, on a feed partition it took over from another
# store mid-stream: that store may hold the alert, so this is no acknowledgement either.
RECALL_NOT_HELD = "RECALL_NOT_HELD"
_PASSED_ON = frozenset({Outcome.RECEIVED.value, Outcome.RECALLED.value})  # what --out gets
PURGE_EVERY_S = 300.0  # the store is purged at start and then at most this often
RECEIPT_TXN_TIMEOUT_S = 60.0  # a crashed subscriber's open receipts are aborted by Kafka after this
HANDOVER_WAIT_S = 30.0  # the longest an instance giving up a feed partition waits for its batch and commit
SETTLE_TIMEOUT_S = 1.5 * RECEIPT_TXN_TIMEOUT_S
DELIVERY_WAIT_S = 20.0
"""The longest a batch waits, from its first send and holding its store's write lock, for Kafka to take its receipts,
feed offsets and checkpoint (and stamp its time on the checkpoint): a transactional producer retries a delivery, the
partitions and offsets it adds to a transaction, without end, and another writer of the store (an instance sharing
it, ``puente store``) gives up after the store's 30 s (``PartnerStore.open``)."""
ABORT_WAIT_S = 5.0
"""Past ``DELIVERY_WAIT_S``, the longest the transaction's abort is waited for before the producer is stopped (Kafka
aborts a transaction left open itself, after ``RECEIPT_TXN_TIMEOUT_S``): aiokafka's abort waits without end too."""
IDLE_EXIT_S = 2.0  # a run without --follow ends once caught up and quiet this long (``Subscriber._caught_up``)
END_WAIT_S = 10.0  # the longest a quiet run waits for Kafka to say where the feed ends, before another quiet spell
BEHIND_NOTE_S = 30.0  # while a quiet run is not caught up, a note says why at most this often (``_still_behind``)
BEHIND_STOP_S = 300.0
"""The longest a run without --follow goes on through quiet spells that do not catch it up (a partition behind with
no record coming, or Kafka not saying where the feed ends) before it stops, not caught up, with exit 4
(``_still_behind``): a run from cron would otherwise never end. A batch read starts the count again."""


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
    generations: tuple[str, ...] = ()
    """The partner's receipt key ids ``verify`` takes, newest first (by when each was made here)."""


_FINGERPRINT = re.compile(rb"[0-9a-f]{16}")


def open_record(rec: Record, opener: Opener, codec: AlertCodec) -> dict[str, Any]:
    """Verify, decrypt and decode one feed record; raises CryptoError or CodecError saying what failed.
    Once it has opened, its alert id, schema, policy and agreement headers are the broker's."""
    return opened_record(rec, opener, codec)[0]


def opened_record(rec: Record, opener: Opener, codec: AlertCodec) -> tuple[dict[str, Any], Opened]:
    """``open_record``, with what the opener says of the record's verified key block: which broker key signed it
    and when it was made, for the subscriber to judge (``retired_broker_key``)."""
    alert_id = (rec.header(wire.ALERT_ID) or b"").decode("utf-8", "replace")
    policy = (rec.header(wire.POLICY) or b"").decode("utf-8", "replace")
    agreement = (rec.header(wire.AGREEMENT) or b"").decode("utf-8", "replace")
    schema_hex = rec.header(wire.SCHEMA) or b""
    if not alert_id or not schema_hex:
        raise CodecError("the record lacks its puente-alert-id or puente-schema header")
    if not _FINGERPRINT.fullmatch(schema_hex):  # as docs/feed-format.md has it: bytes.fromhex takes more
        raise CodecError("the record's puente-schema header is not a fingerprint (16 lowercase hex digits)")
    schema_fp = bytes.fromhex(schema_hex.decode("ascii"))
    opened = opener.open_verified(rec.value, alert_id=alert_id, topic=rec.topic, schema_fp=schema_fp,
                                  policy_version=policy, agreement=agreement)
    view = codec.decode(opened.plaintext)
    if view.get("alert_id") != alert_id:
        raise CryptoError("the decrypted alert id differs from the record's header")
    return view, opened


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """The feed consumer's rebalance listener: see ``Subscriber._hand_over``."""

    def __init__(self, subscriber: Subscriber, feed: Consumer) -> None:
        self.subscriber, self.feed = subscriber, feed

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await self.subscriber._hand_over(self.feed, set(revoked))
        except Exception as exc:  # noqa: BLE001 - aiokafka would log it and go on: said, not swallowed
            self.subscriber.on_note(f"handing feed partitions over failed ({type(exc).__name__}): the next owner "
                                    "may receive this subscriber's last batch again")

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """A new assignment starts at the group's committed offsets (where the group has none, at the partition's
        first record; where the feed no longer holds that record, ``_gap``), or where the store stands when it is
        behind them (``Subscriber._resume``). The partitions are paused first, before anything awaits: aiokafka
        lets the fetcher run while this listener does, and a batch applied before the store's offsets are
        compared would move the store on and hide the gap. (No record of the new assignment can have been
        returned yet: its positions are fetched only after this listener begins.)"""
        self.feed.pause(*assigned)
        try:
            async with self.subscriber._busy:
                await self.subscriber._resume(self.feed, set(assigned))
        except Exception as exc:  # noqa: BLE001 - aiokafka would log it and go on: the run stops instead
            self.subscriber._resume_failed = exc
        finally:
            self.feed.resume(*(set(assigned) & self.feed.assignment()))
            self.subscriber._assigned_at = time.monotonic()  # the idle clock starts here (``_quiet_for``)


class _Bounds(NamedTuple):
    """What ``Subscriber._bounded`` gives a transaction's block: ``kafka()`` around its Kafka awaits, ``settling()``
    around its work between them and the commit, and ``commit()`` as its last statement."""

    kafka: Callable[[], contextlib.AbstractAsyncContextManager[None]]
    settling: Callable[[], contextlib.AbstractAsyncContextManager[None]]
    commit: Callable[[], None]


class Subscriber:
    """Reads a partner's feed with read_committed, applies it to the partner's store (when given) and
    to ``out`` (when given), and writes the partner's signed receipts."""

    def __init__(self, conn: KafkaConnection, partner: str, feed_topic: str, access_topic: str, opener: Opener,
                 codec: AlertCodec, *, signer: ReceiptSigner, group_id: str | None = None,
                 instance: str = DEFAULT_INSTANCE, on_error: Callable[[str], None] | None = None,
                 on_note: Callable[[str], None] | None = None, store: PartnerStore | None = None,
                 clock: Callable[[], datetime] | None = None, accept_gaps: bool = False,
                 skip: Collection[str] = ()) -> None:
        self.conn, self.partner, self.feed_topic, self.access_topic = conn, partner, feed_topic, access_topic
        self.opener, self.codec = opener, codec
        self.group_id = group_id or subscriber_group(feed_topic)
        self.instance = instance
        self.chain_name = receipt_chain(partner, instance)
        self.transactional_id = subscriber_transaction(access_topic, partner, instance)
        self.signer = signer
        # Each message one line whatever a record's headers (never authenticated until it opens) hold.
        self.on_error = on_error or (lambda msg: print(one_line(msg), file=sys.stderr))
        self.on_note = on_note or (lambda msg: print(f"puente subscribe: {one_line(msg)}", file=sys.stderr))
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stats = SubscribeStats()
        self.accept_gaps = accept_gaps
        """Read on past records the feed no longer holds (a note names them) instead of stopping (``_gap``)."""
        self.skip = frozenset(skip)
        """Feed records (``topic:partition:offset``, as the stop names them) to give up if they do not open: each
        gets a REJECTED receipt saying "given up", and is committed past instead of stopping the run. An allow-list of
        exact places an operator chose: a record that opens is applied as usual, and any other that does not
        still stops the run. A batch the client cannot read is named whole, ``topic:partition:first-last``
        (``_unreadable``)."""
        self._purged_at: float | None = None
        self._busy = asyncio.Lock()
        """Held by a batch from its check to its commit, and by a revocation (see ``_hand_over``)."""
        self._generation = 0
        """Counts revocations: a batch fetched before one is not handled (its records come again)."""
        self._stopping = asyncio.Event()
        self._committed: dict[TopicPartition, int] = {}
        """The feed offsets this subscriber committed last, by partition."""
        self._kafka_committed = False  # whether the batch in hand reached Kafka's commit (``_batch``)
        self._resume_failed: Exception | None = None
        """Why the store's feed offsets could not be compared with the group's on an assignment: the run stops."""
        self._catch_up: dict[TopicPartition, int] = {}
        """Partitions read again to catch the store up (``_catch_store_up``), with the offset that ends it: records
        before it are applied and receipted only when of an alert the store holds or held (``_theirs``), and the
        group's offset committed there is never below it."""
        self._reread: dict[TopicPartition, int] = {}
        """Partitions read again into a store that misses records it (as a backup restored) or another store of this
        instance applied, with the group's offset that ends them (``_resume``; kept in the store, ``keep_reread``):
        whether an earlier run copied such a record to ``--out`` is unknowable, so each one applied is marked passed
        on (``_handle``)."""
        self._rewindow: Mapping[TopicPartition, int] = {}
        """``_reread`` as the batch under way began (``_transact``)."""
        self._window: Mapping[TopicPartition, int] = {}
        """``_catch_up`` as the batch under way began (``_transact``): the batch reads its records and commits its
        offsets by it, whatever changes meanwhile (a batch's awaits let a rebalance's callbacks run)."""
        self._tag: tuple[PartnerStore | None, str] | None = None
        self._sends = Sends()
        """The sends of the batch's transaction under way (``_transact``)."""
        self._deadline: asyncio.Timeout | None = None
        self._deadline_held = False  # a batch's records are being handled: its deadline starts after (``_transact``)
        """The bound of the Kafka awaits of the transaction under way (``_bounded``), started by its first send."""
        self._broker_keys_seen: Mapping[str, int] = {}
        """Without a store, what a store keeps as its ``broker_keys_seen``: for this run only."""
        self._kafka_seen: tuple[int, float] | None = None
        """The append time Kafka stamped on this run's last checkpoint (milliseconds since 1970) and the monotonic
        clock's reading when it came (``_vouched``): what the purge goes by (``_kafka_now``)."""
        self._fresh = False  # a batch had Kafka vouch for a time since the last purge
        self._deferred = False  # the last purge held back some alert past its time by this host's clock
        self._asked_at: float | None = None  # the monotonic clock when a checkpoint alone last asked Kafka's time
        self._assigned_at: float | None = None
        """The monotonic clock when the group's last assignment was set up (None: not joined yet): a run's idle
        clock starts there, never before the join, which may take longer than the quiet time (``_quiet_for``)."""
        self._steady: Callable[[], float] = time.monotonic  # the clock of ``_still_behind`` (tests give theirs)
        self._behind: tuple[float, float] | None = None
        """While quiet spells end with the run not caught up: when the first did, and when a note last said why
        (``_still_behind``); None once a batch is read or the run is caught up."""

    @property
    def commit_tag(self) -> str:
        """The metadata of every feed offset this subscriber commits: its instance and its store's id, so the next
        owner of a partition knows whether the records before were applied to its own store (``resume_at``)."""
        if self._tag is None or self._tag[0] is not self.store:
            self._tag = (self.store, f"{self.instance}|{self.store.store_id if self.store is not None else ''}")
        return self._tag[1]

    def close(self) -> None:
        """Close the store (the Kafka clients are closed by ``run``)."""
        if self.store is not None:
            self.store.close()

    def purge(self, *, force: bool = False) -> None:
        """Purge the store when it has a retention and ``PURGE_EVERY_S`` has passed (or ``force``, or the last purge
        held an alert back and a batch has had Kafka vouch for a later time since). As of this subscriber's clock, but
        never past a time Kafka vouched for (``PartnerStore.purge``): in this run, the append time of its last
        checkpoint and what the monotonic clock measured since (``_kafka_now``); before any, the time the store kept,
        so a start under a clock running ahead purges nothing that clock alone says is due. What that holds back on a
        quiet feed goes once ``_ask_time`` has had Kafka vouch for a time (``_follow``)."""
        store = self.store
        if store is None or store.retention is None:
            return
        if (not force and not (self._deferred and self._fresh) and self._purged_at is not None
                and time.monotonic() - self._purged_at < PURGE_EVERY_S):
            return
        self._purged_at, self._fresh = time.monotonic(), False
        now = self.clock()
        purged = store.purge(now, kafka_now=self._kafka_now())
        self._deferred = purged.deferred > 0
        self.stats.purged += purged.total
        if purged.total or force:
            self.on_note(f"purged {purged.total} alert(s) from {store.path}: the text of {purged.expired} past their "
                         f"expiry and {purged.retention} past the agreement's retention, {purged.tombstones} old "
                         "content-free row(s)")
        if purged.passed_on_total:
            more = purged.passed_on_total - len(purged.passed_on)
            self.on_note(f"{purged.passed_on_total} of the alert(s) purged from {store.path} went to a --out copy "
                         "before, which must delete them too (past their expiry or the agreement's retention): "
                         + ", ".join(a[:200] for a in purged.passed_on) + (f" and {more} more" if more else ""))
        if purged.deferred:
            self.on_note(deferred_note(purged.deferred, store.path, self.partner, now, purged.as_of, running=True))
        due = store.due_count(now)
        if due:
            self.on_note(f"{due} alert(s) in {store.path} are past their review date: `puente store list --partner "
                         f"{self.partner} --due` lists them")
        if store.wipe_pending:
            self.on_note(f"{store.path}: a reader kept the write-ahead log from being cleared; deleted content is "
                         "wiped from it after the next batch")

    def _kafka_now(self) -> datetime | None:
        """A time Kafka's clock has reached: the append time of this run's last checkpoint and what the monotonic
        clock measured since (never this host's clock, which may be set wrong meanwhile); None before any."""
        if self._kafka_seen is None:
            return None
        appended_ms, at = self._kafka_seen
        return _EPOCH + timedelta(milliseconds=appended_ms) + timedelta(seconds=max(0.0, time.monotonic() - at))

    def _vouched(self, now: datetime, delivered: object) -> None:
        """Inside a batch's transactions, once its checkpoint was delivered (``delivered``: what Kafka answered) and
        before anything commits: ConfigError when Kafka's append time of it says this subscriber's clock, which the
        batch decided by (``now``), runs ahead (``clock_ahead``), or when Kafka stamped no time of its own. Both
        transactions are then rolled back: what a clock running ahead decided (a view EXPIRED, its offset committed
        past) is final. Else the store keeps that time, with the batch, for its purges (``PartnerStore.purge``)."""
        stamp = self._kafka_stamp(now, delivered)
        self._kafka_seen, self._fresh = (stamp, time.monotonic()), True
        if self.store is not None:
            self.store.keep_kafka_time(stamp)

    def _kafka_stamp(self, now: datetime, delivered: object) -> int:
        """Kafka's append time of a checkpoint this subscriber wrote (``delivered``: what Kafka answered), checked
        against this host's clock as it read ``now`` before it was written: ConfigError as ``_vouched`` says."""
        stamp = getattr(delivered, "timestamp", None)
        if getattr(delivered, "timestamp_type", None) != LOG_APPEND_TIME or type(stamp) is not int:
            raise ConfigError(
                f"{self.access_topic} did not stamp Kafka's own time on {self.partner}'s checkpoint "
                "(message.timestamp.type is not LogAppendTime), so this host's clock cannot be checked against Kafka's "
                "before anything is expired by it; nothing of this batch was committed: ask the broker's operator to "
                "run `puente topics apply`")
        problem = clock_ahead(_epoch_ms(now), stamp)
        if problem is not None:
            raise ConfigError(f"{self.partner}'s subscriber stopped: {problem}; nothing of this batch was committed "
                              "(what that clock expires is final): set this host's clock right (NTP), or the Kafka "
                              "nodes' if theirs runs behind, and run again")
        return stamp

    def _time_wanted(self) -> bool:
        """Whether to have Kafka vouch for a time with a checkpoint alone (``_ask_time``): the last purge held an
        alert back and no batch has vouched for a time since, at the run's start or ``PURGE_EVERY_S`` after the last
        such checkpoint. Why: Kafka vouches for a time only when a batch commits, and a quiet feed brings none, so
        what is past its retention would be kept for as long as the feed stays quiet (a duty broken)."""
        if not self._deferred or self._fresh or self.store is None or self.store.retention is None:
            return False
        return self._asked_at is None or time.monotonic() - self._asked_at >= PURGE_EVERY_S

    async def _ask_time(self, producer: Producer, chain: ChainWriter, part: int) -> None:
        """Have Kafka vouch for a time: a transaction holding only a checkpoint of this subscriber's chain (no
        receipt, no feed offset: it vouches for no receipt, and auditors take it as any checkpoint), its append time
        checked against this host's clock before it commits (``_kafka_stamp``: a clock ahead stops the run, nothing
        committed), then kept by the store, after Kafka's commit, as a batch's is; the next purge goes by it. Under
        ``_busy``, as a batch. The same transactional id as every batch: a newer instance fences it, and one killed
        midway leaves an open transaction its successor's producer aborts, as a batch's. The store is not locked
        meanwhile: the time, kept only once committed, is Kafka's whichever way a crash falls."""
        self._asked_at = time.monotonic()
        now = self.clock()
        async with self._bounded(producer, "checkpoint") as bounds, transaction(producer) as sends:
            self._sends = sends
            async with bounds.kafka():
                signed = chain.checkpoint(self.signer.key_id, self.signer.sign, iso_utc(datetime.now(UTC)))
                sent = await self._send(producer, signed, part)
                sends.add(sent)
                await sends.settle()
                delivered = await sent
                stamp = self._kafka_stamp(now, delivered)
            bounds.commit()
        self._kafka_seen, self._fresh = (stamp, time.monotonic()), True
        if self.store is not None:
            with self.store.transaction():
                self.store.keep_kafka_time(stamp)
        self._keep_head(chain, part, delivered.offset)

    async def _chain(self, producer: Producer) -> tuple[ChainWriter, int]:
        partitions = await producer.partitions_for(self.access_topic)
        part = receipt_partition(self.partner, len(partitions))
        tp = TopicPartition(self.access_topic, part)
        # The partner's other instances' receipts share the partition: the head of this chain is
        # read only once every transaction open there now has ended (see wait_settled).
        await wait_settled(self.conn, tp, timeout_s=SETTLE_TIMEOUT_S, note=self.on_note)
        kept = self.store.chain_head(self._kept_key(part)) if self.store is not None else None
        async with running(reader(self.conn, "puente-subscriber-chain"), self.conn,
                           f"reading {self.partner}'s receipt chain") as chain_reader:
            # Every record of the chain from the head the store kept (from its first without one) must follow the
            # one before it: a run of old records written again after the real head links up within itself.
            since = kept[2] if kept is not None and kept[2] is not None else None
            if self.store is None:
                self.on_note(f"reading receipt chain {self.chain_name} in {self.access_topic}[{part}] from its first "
                             "record, to check it is whole (a --store keeps where it ended)")
            last, unlinked, batch_from = None, None, since  # batch_from: the last checkpoint before the head
            newer: list[Record] = []  # the chain's records past the head the store kept: written since its copy
            async for rec in chain_records(chain_reader, tp, self.chain_name, since):
                if since is None or rec.offset > since:
                    newer.append(rec)
                if last is not None:
                    unlinked = unlinked or _unlinked(last, rec)
                    if _is_checkpoint(last):
                        batch_from = last.offset
                last = rec
            # The checkpoint the store saw committed last, when the head is another: which key signed it.
            kept_record = (await record_at(chain_reader, tp, kept[2]) if kept is not None and kept[2] is not None
                           and last is not None and kept[2] != last.offset else None)
        where = f"receipt chain {self.chain_name} in {self.access_topic}[{part}]"
        if last is None:
            if kept is not None:
                raise AuditChainError(
                    f"{where} is empty, but this store saw it reach checkpoint {kept[0]}: its records are gone. "
                    "Run `puente audit verify`, and start with another --instance (one partners.yaml names in "
                    f"{self.partner}'s `instances`) to begin a new chain")
            return ChainWriter(self.access_topic, part, ChainHead(), checkpoint_every=1 << 62,
                               chain=self.chain_name), part
        # Every batch this chain's subscribers committed ends with their signed checkpoint: a head
        # that is not one was written by someone else, and signing over it would vouch for it.
        problem = head_problem(self.access_topic, part, last.value, self.chain_name, self.signer.verify,
                               self.signer.generations or None)
        if problem is None:
            problem = self._signed_by_a_newer_key(last)
        if problem is None:
            problem = _older_than_kept(json.loads(last.value), last.offset, kept)
        if problem is None:
            problem = unlinked
        if problem is None:  # an aborted original follows the checkpoint the head's batch follows
            problem = await self._aborted_twin(tp, batch_from, last)
        if problem is None and kept_record is not None:
            problem = self._signed_by_a_retired_key(part, last, kept_record)
        if problem is not None:
            raise AuditChainError(
                f"{where} (offset {last.offset}) cannot be continued: {problem}. This subscriber will not sign "
                "over receipts it did not write: run `puente audit verify`, and start with another --instance "
                f"(one partners.yaml names in {self.partner}'s `instances`) to begin a new chain")
        self._behind_chain(chain_covers(newer, self.feed_topic))
        head = ChainHead.after(json.loads(last.value))
        return ChainWriter(self.access_topic, part, head, checkpoint_every=1 << 62, chain=self.chain_name), part

    def _behind_chain(self, covered: Mapping[int, int]) -> None:
        """Keep, per feed partition, a re-read up to the offset past the last record this instance's chain receipted
        since the head the store kept (``covered``: ``chain_covers``), where the store's own offset is behind it. The
        chain lives in Kafka, which a restore cannot roll back: a store whose kept head is behind the chain's real
        head is a copy from before those batches (a backup restored), and the records they receipted that it reads
        again may be in a --out copy an earlier run wrote, though their marks are not in it. Kept in the store
        (``keep_reread``), so each record applied before that offset is marked passed on (``_handle``) whatever the
        group's offsets say: another instance may have committed them since (a handover), or they expired. A crash
        between Kafka's commit and the store's noting the head leaves the store's offset past what they cover:
        nothing is kept."""
        store = self.store
        if store is None or not covered:
            return
        with store.transaction():
            for partition, end in sorted(covered.items()):
                stored = store.feed_offset(self.feed_topic, partition)
                if stored is None or stored < end:
                    store.keep_reread(self.feed_topic, partition, end)
        behind = sorted(p for p, end in covered.items() if store.reread(self.feed_topic, p) is not None)
        if behind:
            self.on_note(f"{store.path}: its receipt chain {self.chain_name} runs past the head it kept (a store "
                         f"restored from a backup): the records of {self.feed_topic} partition(s) "
                         f"{', '.join(map(str, behind))} those receipts cover are marked passed on as they are read "
                         "again, since an earlier run may have copied them to --out")

    async def _aborted_twin(self, tp: TopicPartition, since: int | None, head: Record) -> str | None:
        """Why ``head``, the chain's last committed record, is a copy of a record of a batch Kafka aborted, or None.
        Whoever holds the partner's Kafka login may read its receipts topic uncommitted, and write an aborted
        batch of this chain again after the head (a crash, or a store that rolled back, left it): its records
        follow the head and end in a checkpoint the partner's key signed, so nothing else tells it from this
        chain's own last batch, but its receipts say what the store may never have applied. A batch written anew
        after an abort is another (its times are to the microsecond), so the same bytes at another offset, read
        uncommitted, are the aborted one's. ``since``: the last committed checkpoint before ``head`` (the batch an
        aborted original followed; after an abort the writer starts again from the committed head), so about one
        batch is read, store or none."""
        async with running(reader(self.conn, "puente-subscriber-chain", committed=False), self.conn,
                           f"reading {self.partner}'s receipt chain uncommitted") as raw:
            async for rec in chain_records(raw, tp, self.chain_name, since):
                if rec.offset != head.offset and rec.value == head.value:
                    return (f"its last checkpoint (offset {head.offset}) is a copy of the record at offset "
                            f"{rec.offset}, of a batch Kafka aborted: written again after the chain's head")
        return None

    def _signed_by_a_newer_key(self, head: Record) -> str | None:
        """Why this subscriber's key may not sign over ``head`` (a checkpoint of its chain that verifies), or None:
        ``head`` is signed by a newer generation of the partner's receipt key than the one it signs with. Keys
        rotate forward only, so signing after it would make this key a retired key in use to the auditors,
        and every receipt it signed would not count."""
        try:
            head_signer = str(json.loads(head.value).get("signer"))
        except (ValueError, AttributeError):
            return None
        # By label first, as the auditors rank receipt keys (an imported half's time is only when it was imported),
        # then by the generations' order where labels say nothing.
        if not newer_generation(head_signer, self.signer.key_id, self.signer.generations):
            return None
        return (f"its last checkpoint is signed by {head_signer[:80]}, a newer generation of {self.partner}'s receipt "
                f"key than {self.signer.key_id}, which this subscriber signs with: a retired key would be in use. "
                f"Sign with the newest (leave --sign-key out, or pass {head_signer[:80]}.json)")

    def _signed_by_a_retired_key(self, part: int, head: Record, kept: Record) -> str | None:
        """Why ``head`` is signed by a key the chain had moved on from, or None: the checkpoint the store saw
        committed last (``kept``, earlier in the chain) is signed by a newer generation of the partner's
        receipt key, with a signature that verifies. Keys rotate forward only (a subscriber signs with its
        newest), so an older key signing after it is a retired key in use: a leaked one, say."""
        try:
            head_signer, kept_signer = json.loads(head.value).get("signer"), json.loads(kept.value).get("signer")
        except (ValueError, AttributeError):
            return None
        if not newer_generation(str(kept_signer), str(head_signer), self.signer.generations):  # as above
            return None
        if head_problem(self.access_topic, part, kept.value, self.chain_name, self.signer.verify) is not None:
            return None  # not this chain's signed record: it tells nothing of the keys
        return (f"its last checkpoint is signed by {str(head_signer)[:80]}, a key this chain had moved on from (the "
                f"checkpoint this subscriber's store saw committed last, at offset {kept.offset}, is signed by "
                f"{str(kept_signer)[:80]}): a retired key in use")

    def _kept_key(self, part: int) -> str:
        """Where the store keeps this chain's last committed checkpoint: per access topic and partition."""
        return f"{self.access_topic}[{part}]/{self.chain_name}"

    def _keep_head(self, chain: ChainWriter, part: int, offset: int | None) -> None:
        """After a batch's Kafka commit: the store remembers the checkpoint that ended it, and its offset."""
        if self.store is not None:
            self.store.keep_chain_head(self._kept_key(part), chain.head.seq - 1, chain.head.prev, offset)

    async def run(self, out: TextIO | None = None, *, idle_exit_s: float | None = IDLE_EXIT_S,
                  limit: int | None = None) -> SubscribeStats:
        """Consume until caught up and quiet for ``idle_exit_s`` seconds from the group's assignment (None: for ever;
        ``_caught_up``), or ``limit`` records; a run with ``idle_exit_s`` that quiet spells do not catch up for
        ``BEHIND_STOP_S`` stops with ``KafkaUnavailableError`` (``_still_behind``)."""
        self.purge(force=True)
        receipts = producer(self.conn, f"puente-subscriber-{self.partner}", acks="all", enable_idempotence=True,
                            transactional_id=self.transactional_id,
                            transaction_timeout_ms=int(RECEIPT_TXN_TIMEOUT_S * 1000))
        try:
            # The producer starts first: it fences an earlier subscriber of this partner and instance,
            # whose open receipts are aborted, never seen; only then is the chain's head read. The feed's
            # consumer is made only then: one made before a producer that fails to start is never closed.
            async with running(receipts, self.conn, f"writing {self.partner}'s receipts"):
                feed = consumer(self.conn, f"puente-subscriber-{self.partner}", group_id=self.group_id,
                                enable_auto_commit=False, auto_offset_reset="none", isolation_level="read_committed")
                async with running(feed, self.conn, f"reading {self.feed_topic}"):
                    chain, part = await self._chain(receipts)
                    await self._settle_feed()
                    feed.subscribe([self.feed_topic], listener=_Handover(self, feed))
                    # Leaving the group hands every partition over, as a revocation does, when the run ends
                    # (idle, a limit, stop(), a record that does not open, a cancellation: not a Kafka error).
                    try:
                        unread = await self._follow(feed, out, receipts, chain, part, idle_exit_s, limit)
                    except (asyncio.CancelledError, FeedGapError):
                        await self._hand_over(feed, set(self._committed))
                        raise
                    await self._hand_over(feed, set(self._committed))
                    if unread is not None:
                        raise unread
        except ProducerFenced:
            raise SubscriberFenced(
                f"another subscriber for {self.partner} (instance {self.instance!r}) has started and taken over "
                "its receipts; this one stops. Give concurrent subscribers different --instance names (among the "
                f"`instances` partners.yaml names for {self.partner})."
            ) from None
        except KafkaAccessError as exc:
            if exc.resource != "TRANSACTIONAL_ID":
                raise
            # The policy this side loaded may name the instance while the cluster's ACLs (another copy of the
            # policy, or one `acls apply` has not been run for) do not.
            raise KafkaAccessError(
                f"Kafka at {self.conn.bootstrap} refused {self.conn.principal} the transactional id of subscriber "
                f"instance {self.instance!r} ({self.transactional_id}): check that {self.partner}'s `instances` in "
                "partners.yaml names it and that `puente acls apply` ran since, or start with an --instance it names"
            ) from exc
        return self.stats

    def stop(self) -> None:
        """Finish the batch in flight, hand the feed's partitions over and return (what SIGTERM does)."""
        self._stopping.set()

    async def _follow(self, feed: Consumer, out: TextIO | None, receipts: Producer, chain: ChainWriter, part: int,
                      idle_exit_s: float | None, limit: int | None) -> PuenteError | None:
        """The feed, batch by batch, until idle, ``limit``, ``stop()``, a record that does not open, or quiet spells
        that do not catch it up for ``BEHIND_STOP_S`` (the last two: the error the run stops with)."""
        idle_since = time.monotonic()
        too_large = TooLarge(f"reading {self.feed_topic} for {self.partner}")
        while not self._stopping.is_set() and (limit is None or self.stats.received + self.stats.rejected < limit):
            if self._time_wanted():  # a quiet feed: Kafka vouches for a time all the same, for the purge below
                async with self._busy:
                    await self._ask_time(receipts, chain, part)
            self.purge()
            try:
                batch = await feed.getmany(timeout_ms=500, max_records=RECEIPTS_PER_CHECKPOINT)
            except NoCommittedOffset as exc:
                # A partition this group never committed in: read from offset 0, not "the beginning", which is
                # past whatever retention deleted; so such records meet ``_gap`` too, never skipped in silence.
                for tp in exc.args:
                    if tp in feed.assignment():  # revoked meanwhile: its new owner reads it
                        feed.seek(tp, 0)
                continue
            except OffsetOutOfRange as exc:
                async with self._busy:  # no revocation while the gap is judged (an error the fetcher kept may
                    await self._gap(feed, exc.args[0])  # be of a partition revoked since: ``_gap`` skips those)
                continue
            except RecordTooLarge as exc:
                # A batch Kafka sent cut (more feed partitions on a node than one fetch's total covers, or a topic
                # taking batches over the fetch limit): aiokafka has moved the position one record past its start.
                # Read again from there, never on (``TooLarge``): aiokafka shuffles the partitions of each fetch, so
                # it usually comes first, and whole; cut again and again, the subscriber stops, naming the setting
                # to check, and nothing was applied or committed past it.
                too_large.seek_back(feed, exc)
                continue
            too_large.took_batch(batch)
            if self._resume_failed is not None:
                raise self._resume_failed  # nothing of the assignment was read: the next run compares again
            # Read after the fetch, with no await since: a revocation that begins from here on drops the batch
            # (its records come again from the committed offsets); one that ran while getmany waited left records
            # of partitions this instance may still hold, which are not to be dropped (see below).
            generation = self._generation
            if not batch:
                if feed.paused() & feed.assignment():
                    idle_since = time.monotonic()  # still setting where the assignment starts: not idle yet
                elif idle_exit_s is not None and self._quiet_for(idle_since) > idle_exit_s:
                    verdict = await self._caught_up(feed, generation)
                    if verdict is True:
                        break
                    stuck = self._still_behind(verdict) if verdict is not False else None
                    if stuck is not None:
                        return stuck
                    idle_since = time.monotonic()  # behind, or not known: another quiet spell, then ask again
                continue
            idle_since, self._behind = time.monotonic(), None
            async with self._busy:
                if generation != self._generation:
                    continue  # revoked meanwhile: the records come again from the committed offsets
                # Records of partitions no longer assigned (getmany may return while a revocation's callback
                # runs) are their new owner's, from the committed offsets: handled here they would get a second
                # receipt in another chain. Those of partitions still assigned are this instance's: dropping them
                # would lose them, since the fetcher has moved past them.
                batch = {tp: msgs for tp, msgs in batch.items() if tp in feed.assignment()}
                if not batch:
                    continue
                unread, offset = await self._batch(batch, out, receipts, chain, part)
                self._keep_head(chain, part, offset)  # committed: only now may a restart rely on it
            if unread is not None:
                return unread
        return None

    def _quiet_for(self, idle_since: float) -> float:
        """How long the feed has been quiet: since ``idle_since`` (the last batch, or the last look at where the feed
        ends) or the group's last assignment, whichever came later; 0 before the first assignment, so that a slow
        join never counts as quiet."""
        if self._assigned_at is None:
            return 0.0
        return time.monotonic() - max(idle_since, self._assigned_at)

    async def _caught_up(self, feed: Consumer, generation: int) -> bool | str:
        """Whether a quiet run may end: every feed partition assigned has been read, applied and committed up to where
        its committed records end as Kafka answers now (the feed consumer is read_committed: its ``end_offsets`` are
        the last stable offsets), and nothing else is due. Why: quiet alone is no proof of being caught up, since a
        fetch may be slow to come back (a busy node, a long fetch wait) while records wait unread, and a run that
        ends then leaves them for the next. Every batch handed out is applied and committed before the next fetch
        (``_follow``), so the position the consumer reached (past transaction markers and aborted records) is what
        this subscriber applied and committed. Otherwise, for another quiet spell: why, when it is a partition
        behind (which, by how much) or Kafka not answering (which ``_still_behind`` bounds); False when it is an
        assignment that changed, or set where it starts, while Kafka was asked, or a time Kafka is to vouch for
        before the purge (``_time_wanted``), which the loop's next turn asks for."""
        if self._time_wanted():
            return False
        assigned = feed.assignment()
        if not assigned:
            return True  # more instances than partitions: this one holds none
        try:
            async with asyncio.timeout(END_WAIT_S):
                ends = await feed.end_offsets(sorted(assigned))
        except (ClientError, TimeoutError) as exc:
            return f"Kafka did not say where {self.feed_topic} ends ({type(exc).__name__})"
        if generation != self._generation or feed.assignment() != assigned or feed.paused() & assigned:
            return False
        behind = []
        for tp in sorted(assigned):
            view = fetch_view(feed, tp)
            if view is None or view.position is None or tp not in ends:
                behind.append(f"{tp.topic}[{tp.partition}] (position unknown)")
            elif view.position < ends[tp]:
                behind.append(f"{tp.topic}[{tp.partition}] ({ends[tp] - view.position} record(s) behind, at "
                              f"{view.position} of {ends[tp]})")
        return f"{', '.join(behind)} not read up to where Kafka says it ends" if behind else True

    def _still_behind(self, why: str) -> KafkaUnavailableError | None:
        """A quiet spell ended with the run not caught up, for ``why``: a note says so once that has lasted
        ``BEHIND_NOTE_S``, and again at most that often; once it has lasted ``BEHIND_STOP_S``, the error the run
        stops with (``KafkaUnavailableError``, exit 4) after handing its partitions over: never as if caught up.
        Why: a run without --follow (from cron) whose partition stays behind with no record coming, or whose Kafka
        never says where the feed ends, would read on for ever; what it applied is committed, so the next run goes
        on from there."""
        now = self._steady()
        if self._behind is None:
            self._behind = (now, now)
        since, noted = self._behind
        if now - since >= BEHIND_STOP_S:
            return KafkaUnavailableError(
                f"{self.partner}'s subscriber stopped, not caught up after {now - since:.0f} s of quiet: {why}; what "
                f"it read is applied and committed: check that the Kafka nodes at {self.conn.bootstrap} are up and "
                f"lead {self.feed_topic}'s partitions, then run again")
        if now - noted >= BEHIND_NOTE_S:
            self._behind = (since, now)
            self.on_note(f"quiet for {now - since:.0f} s but not caught up: {why}; reading on, and stopping (exit 4) "
                         f"if still not caught up after {BEHIND_STOP_S:.0f} s")
        return None

    async def _resume(self, feed: Consumer, assigned: set[TopicPartition]) -> None:
        """Set where each newly assigned feed partition is read from (``resume_at``; the caller has paused them and
        holds the batch lock). When the records the group read last were applied by this instance to a store
        that is not this one as it stands (a backup restored, a new ``--store``), they would otherwise never reach
        it, and their recalls and corrections neither: they are read again, which the version rule makes
        harmless, each with a second receipt in this chain that auditors match to the same delivery. Records
        another instance read since this store read the partition went to that instance's store: they are read
        again only for the lifecycle of what this store holds (``_catch_store_up``)."""
        store = self.store
        if store is None:
            return
        for tp in sorted(assigned):
            self._catch_up.pop(tp, None)
            self._reread.pop(tp, None)
            if tp not in feed.assignment():
                continue  # revoked meanwhile
            found = await committed_with_metadata(feed, tp)
            committed, tag = found if found is not None else (None, "")
            # A re-read a restart or rebalance interrupted goes on marking (``keep_reread``), whatever the group's
            # offset says now (an earlier Puente committed it back to each batch's end; it may have expired). A topic
            # made anew ends it (``_remade``, ``_gap``); else it ends once a confirmed offset passes it.
            reread = store.reread(tp.topic, tp.partition)
            if reread is not None:
                self._reread[tp] = reread
            owner: Owner = ("store" if tag == self.commit_tag else
                            "instance" if tag.startswith(f"{self.instance}|") else "other")
            stored = store.feed_offset(tp.topic, tp.partition)
            if owner == "other" and committed is not None and (stored is None or stored < committed):
                # What came before the group's offset went to another store: its alerts' recalls are not ours to
                # acknowledge (``_apply``).
                store.note_taken_over(tp.topic, tp.partition, committed)
            if committed is not None and self._catch_store_up(feed, tp, committed, owner, store):
                continue
            # No offset of its own: another store of this instance read the records, or this very store did, and it
            # is a copy restored from before it noted one (a store notes its offset in the batch that first
            # commits there): everything the feed still holds is read again.
            start = (await feed.beginning_offsets([tp]))[tp] if stored is None and owner != "other" else None
            if start:  # the records were read into a store that is not this one as it stands, and retention has
                # deleted some since: the same, from there
                store.note_taken_over(tp.topic, tp.partition, start)
            confirmed = store.feed_offset(tp.topic, tp.partition, confirmed=True) if committed is None else None
            if committed is not None and owner == "store":
                await self._mark_kept(feed, tp, committed, store)
            at = resume_at(stored, committed, start, owner, confirmed)
            if at is not None and tp in feed.assignment() and committed is None and await self._remade(
                    feed, tp, at, store):
                continue
            kept = store.catch_up(tp.topic, tp.partition) if committed is None else None
            if kept is not None and at is not None:  # the group's offsets gone mid catch-up, the topic the same
                self._catch_up[tp] = kept[1]  # (``_remade``): it goes on from the confirmed offset
            elif kept is not None:  # nothing confirmed to tell the topic by: every record read is this store's
                store.end_catch_up(tp.topic, tp.partition)
            if at is None or tp not in feed.assignment():
                continue
            where = f"{tp.topic}[{tp.partition}]"
            feed.seek(tp, at)
            if committed is not None and at < committed:  # owner store or instance: records this store misses
                store.keep_reread(tp.topic, tp.partition, committed)  # kept: the re-read spans batches, and restarts
                self._reread[tp] = max(committed, self._reread.get(tp, 0))
            if committed is None:
                self.on_note(f"{where}: the group {self.group_id} has no committed offset; reading on from offset "
                             f"{at}, where {store.path} saw Kafka commit its receipts last")
            else:
                whose = (f"stands at offset {at}" if stored is not None else "is new to this instance"
                         if owner == "instance" else "has no offset of its own there (restored from a backup made "
                         "before it read the partition)")
                lost = ("; whether an earlier run passed them on (--out) is unknowable, so each is marked passed on "
                        "as it is applied: a recall of one says RECALL_PASSED_ON, never an acknowledgement")
                self.on_note(f"{where}: {store.path} {whose}, behind the group's committed offset {committed}; "
                             f"reading {committed - at} record(s) again into it (a store restored from a backup, or "
                             f"another --store, misses them){lost}")

    def _catch_store_up(self, feed: Consumer, tp: TopicPartition, committed: int, owner: Owner,
                        store: PartnerStore) -> bool:
        """Whether a partition whose group offset ``committed`` another instance committed is read again from before
        it, so the store answers for what it holds. Two ways a store falls behind another's reading there: handed
        over (a rebalance, or the instance stopped and another read on), it holds alerts whose later records
        (a recall, a correction) another store read, which answers RECALL_NOT_HELD for a recall of what it never
        held; and killed between its commit and Kafka's, it holds alerts no committed receipt names
        (``PartnerStore.applied_unconfirmed``) while the other instance read the batch again into its own store and
        on. Read on from the group's offset, it would keep their text until retention (a recall the other store
        could not apply never reaching the one holding the alert), or hold them silently (``audit recalls`` knows
        holders by their receipts). So from where it stopped reading (its applied offset, or the earliest record it
        applied without a receipt) up to the group's offset, records of alerts the store holds or held are
        applied again (the store gives a record it applied already the status it first had, kept with it until Kafka
        confirms the receipt: ``PartnerStore.apply``) and receipted;
        the others are the other instance's, receipted there, and get nothing here (``_theirs``).

        The catch-up is kept in the store (``keep_catch_up``), so a restart, a rebalance or the group's offsets
        expiring partway through goes on with it rather than take the other instance's records as this store's;
        each batch commits the group's offset at its end at least, never back (the other instance, taking the
        partition again, reads on from there); it ends once Kafka committed past its end (``confirm_feed_offsets``),
        and is extended to a later group offset another instance committed meanwhile. A group offset below its end
        was never committed on the topic it was kept for (no one commits below it there): the feed topic was made
        anew (another instance read the new one first) or the offsets were reset, and the catch-up is over."""
        kept = store.catch_up(tp.topic, tp.partition)
        if kept is not None and (owner == "instance" or committed < kept[1]
                                 or (owner == "store" and committed > kept[1])):
            # Kafka committed past it (its last batch did; the store did not hear back), read elsewhere, or another
            # topic's offset: over.
            store.end_catch_up(tp.topic, tp.partition)
            kept = None
        unconfirmed = store.applied_unconfirmed(tp.topic, tp.partition) if owner == "other" else None
        if kept is None:
            if owner != "other":
                return False
            # Where this store stopped reading the partition (it was handed over, cleanly or not): what another store
            # read since is read too, for the lifecycle of what this one holds.
            stored = store.feed_offset(tp.topic, tp.partition)
            back = min((at for at in (unconfirmed, stored) if at is not None), default=None)
            if back is None or back >= committed:
                return False
            kept = (back, committed)
        confirmed = store.feed_offset(tp.topic, tp.partition, confirmed=True)
        start, end = max(kept[0], confirmed or 0), max(kept[1], committed)
        if start >= end:
            store.end_catch_up(tp.topic, tp.partition)
            return False
        store.keep_catch_up(tp.topic, tp.partition, kept[0], end)
        if tp not in feed.assignment():
            return True  # revoked meanwhile: kept, for when it comes back
        self._catch_up[tp] = end
        feed.seek(tp, start)
        why = (f"applied records from offset {unconfirmed} on whose receipts Kafka never committed"
               if unconfirmed is not None else f"read this partition up to offset {kept[0]}")
        self.on_note(f"{tp.topic}[{tp.partition}]: {store.path} {why}, and another instance read on to offset {end}: "
                     f"reading {end - start} record(s) from {start} again, applying and receipting only those of "
                     "alerts the store holds or held, so a recall or correction among them reaches it too")
        return True

    async def _remade(self, feed: Consumer, tp: TopicPartition, at: int, store: PartnerStore) -> bool:
        """Before a partition the group has no offset in is read on from the store's confirmed offset ``at``: whether
        the topic is still the one the store read (the last record before ``at`` is the one it read last, by the mark
        kept with the offset: ``remade_feed``). Kafka drops a deleted topic's committed offsets, so a feed topic
        deleted and made again comes here, and reading the new one on from the old one's offset would pass every
        record before it unread, neither stored nor receipted. FeedGapError when it is not known to be the same,
        unless ``accept_gaps``: then the partition is read from its first record (True), as ``_gap`` reads on
        after a topic made anew; records the store holds already come again, which the version rule makes
        harmless. False: read on from ``at``.

        Whether the partition ends before ``at`` is its high-water mark's to say, not the feed consumer's end: that
        is read_committed, so it ends at the first record of a transaction still open, which on a topic made anew
        may begin before ``at`` and end past it. The records before ``at`` are compared once that transaction has
        ended (``_settle_feed`` waits for it before the group is joined: no heartbeat goes out while this runs);
        one still open here stops the run too, never read past."""
        begin = (await feed.beginning_offsets([tp]))[tp]
        stable = (await feed.end_offsets([tp]))[tp]
        high = await self._high(tp) if begin < at and stable < at else stable
        mark = store.feed_mark(tp.topic, tp.partition)
        rec = None
        if begin < at <= stable and mark is not None and mark[0] == at - 1 and mark[1] is not None:
            rec = await self._last_before(tp, at)
        problem = remade_feed(mark, at, begin, high, rec, stable)
        if problem is None:
            return False
        where = f"{tp.topic}[{tp.partition}]"
        what = (f"{where}: the group {self.group_id} has no committed offset, and {store.path} read this partition up "
                f"to offset {at}, but {problem}. A feed topic deleted and made again loses the group's offsets too: "
                f"reading on from {at} would pass the records {begin}-{at - 1} it holds unread")
        if not self.accept_gaps:
            raise FeedGapError(
                f"{what}. Nothing was skipped: ask the broker's operator whether the topic was made anew, then "
                f"subscribe with --accept-gap to read it from its first record ({begin}); records the store holds "
                "already come again harmlessly (the version rule), each with another receipt")
        if tp not in feed.assignment():
            return True  # revoked while the offsets were asked: its new owner judges it
        self.on_note(f"{what}; reading it from its first record, {begin} (--accept-gap)")
        feed.seek(tp, begin)
        # The store stands there too, so that a run ending before the first batch commits reads from there again
        # rather than meet the old offset's mark anew; a catch-up of the old topic's offsets is over.
        self._reread.pop(tp, None)
        with store.transaction():
            store.end_catch_up(tp.topic, tp.partition)
            store.end_reread(tp.topic, tp.partition)
            store.forget_applied(tp.topic, tp.partition)  # the old topic's records: not the new one's at those places
            store.keep_feed_offsets({(tp.topic, tp.partition): begin})
        store.confirm_feed_offsets({(tp.topic, tp.partition): begin}, {(tp.topic, tp.partition): None})
        return True

    async def _mark_kept(self, feed: Consumer, tp: TopicPartition, committed: int, store: PartnerStore) -> None:
        """Give the store the mark of its confirmed offset where it has none (a store an earlier Puente kept, which
        confirmed offsets without one): once the group's offset, committed by this very store, is its confirmed
        offset, the topic is the one it read (a deleted topic's offsets are gone with it), so the last record before
        that offset is the one it read last. Without this, such a store got a mark only with its next batch, and a
        feed idle until the group's offsets expired stopped the next honest restart (``remade_feed``: no mark). The
        records before a committed offset are decided (a read_committed reader read them). A partition holding no
        record before it is marked so; one whose records there are only markers or aborted ones gets no mark."""
        mark = store.feed_mark(tp.topic, tp.partition)
        if (store.feed_offset(tp.topic, tp.partition, confirmed=True) != committed
                or (mark is not None and mark[0] == committed - 1)):
            return
        begin = (await feed.beginning_offsets([tp]))[tp]
        rec = await self._last_before(tp, committed) if begin < committed else None
        if rec is None and begin < committed:
            return
        store.confirm_feed_offsets({(tp.topic, tp.partition): committed},
                                   {(tp.topic, tp.partition): None if rec is None else record_mark(rec)})

    async def _settle_feed(self) -> None:
        """Before the group is joined: wait, as long as a crashed writer's transaction may stay open
        (``SETTLE_TIMEOUT_S``, with a note), until the records before each offset the store confirmed in the feed
        are decided, so that ``_remade`` can read the last one. Nothing waits where they are (the topic the store
        read, whose records before that offset it read committed), nor where the partition ends before it."""
        store = self.store
        if store is None:
            return
        upto = {TopicPartition(self.feed_topic, part): at
                for part, at in store.confirmed_feed_offsets(self.feed_topic).items()}
        await settle(self.conn, list(upto), timeout_s=SETTLE_TIMEOUT_S, note=self.on_note, upto=upto)

    async def _high(self, tp: TopicPartition) -> int:
        """The high-water mark of a feed partition: where its records end, decided or not."""
        async with running(reader(self.conn, "puente-subscriber-feed-check", committed=False), self.conn,
                           f"reading {tp.topic}[{tp.partition}]") as raw:
            return int((await raw.end_offsets([tp]))[tp])

    async def _last_before(self, tp: TopicPartition, at: int) -> Record | None:
        """The last committed record of a feed partition before offset ``at`` (``last_before``: past transaction
        markers and aborted records, as the feed consumer read it), read by a reader of its own (the feed's consumer
        is the group's: assigning it by hand would leave the group)."""
        async with running(reader(self.conn, "puente-subscriber-feed-check"), self.conn,
                           f"reading {tp.topic}[{tp.partition}]") as check:
            return await last_before(check, tp, at)

    async def _gap(self, feed: Consumer, positions: dict[TopicPartition, int]) -> None:
        """The feed no longer holds the record this subscriber would read next: stop (FeedGapError), or with
        ``accept_gaps`` read on from where the partition now starts, saying what was skipped.

        Kafka's own answer, resetting to the earliest record, would skip the deleted records in silence:
        alerts the broker delivered that this partner never read, acknowledged or kept. They have no
        receipt, so auditors see them outstanding; the subscriber's operator has to know too.

        Records deleted within a catch-up (``_catch_store_up``: before its end, which another instance read to) are
        no such gap: that instance read and receipted them, and only this store's answer to a recall among them is
        lost. It reads on past them with a note, ``accept_gaps`` or not; what was deleted past the catch-up's end
        is a gap as any other."""
        positions = {tp: at for tp, at in positions.items() if tp in feed.assignment()}
        if not positions:
            return
        starts = await feed.beginning_offsets(list(positions))
        ends = await feed.end_offsets(list(positions))
        for tp, at in sorted(positions.items()):
            start, end = starts[tp], ends[tp]
            held = f"holds records {start}-{end - 1}" if end > start else f"is empty from {start}"
            window = self._catch_up.get(tp)
            if window is not None and at < min(start, window):  # deleted before this store caught up on them
                self.on_note(f"{tp.topic}[{tp.partition}] {held}: records {at}-{min(start, window) - 1} were deleted "
                             "(the feed's retention) before this store caught up on them; another instance read and "
                             f"receipted them (the group's offset stood at {window}), so no delivery is lost, but a "
                             "recall among them does not reach this store")
                at = min(start, window)
            gap = f"{tp.topic}[{tp.partition}] {held}, but this subscriber's next record is {at}"
            what = (f"records {at}-{start - 1} were deleted (the feed's retention) before {self.partner} read them"
                    if at < start else f"it ends before {at}: the topic was made anew, and what it held before is "
                    "gone")
            if not self.accept_gaps and at != start:
                raise FeedGapError(
                    f"{gap}: {what}; their alerts have no receipt and are in no store. Nothing was skipped: ask the "
                    "broker's operator to send them again (auditors see them unacknowledged), or subscribe with "
                    "--accept-gap to read on from the feed's first record")
            if tp not in feed.assignment():
                continue  # revoked while the offsets were asked: its new owner meets the gap
            if at != start:
                self.on_note(f"{gap}: {what}; reading on from {start} (--accept-gap)")
            self.stats.skipped += max(0, start - at)
            feed.seek(tp, start)
            if at > end and self.store is not None:  # a topic made anew: a catch-up of the old one's offsets is over,
                self._catch_up.pop(tp, None)  # and what the store kept of the old one's records applied
                self._reread.pop(tp, None)
                with self.store.transaction():
                    self.store.end_catch_up(tp.topic, tp.partition)
                    self.store.end_reread(tp.topic, tp.partition)
                    self.store.forget_applied(tp.topic, tp.partition)
            # Committed at once: with nothing after the gap to carry it in a receipt transaction, the next
            # run would meet the same gap. No batch is in flight (this holds ``_busy``). Should the group
            # refuse it (a rebalance began), the next owner or run meets the gap again: nothing is lost.
            try:
                await feed.commit({tp: OffsetAndMetadata(max(start, self._catch_up.get(tp, 0)), self.commit_tag)})
            except ClientError as exc:
                self.on_note(f"{tp.topic}[{tp.partition}]: the offset past the gap was not committed "
                             f"({type(exc).__name__}); the next reader meets the gap again")
            else:
                self._committed[tp] = max(start, self._catch_up.get(tp, 0))
                if self.store is not None:  # the store reads on from here too (``_resume``), confirmed: Kafka has it
                    with self.store.transaction():
                        self.store.keep_feed_offsets({(tp.topic, tp.partition): start})
                    # No record before ``start`` is held: the mark says so (``remade_feed``).
                    self.store.confirm_feed_offsets({(tp.topic, tp.partition): start}, {(tp.topic, tp.partition): None})

    async def _hand_over(self, feed: Consumer, revoked: set[TopicPartition]) -> None:
        """Before the group takes ``revoked`` partitions away (a rebalance among instances): let the
        batch in flight commit, drop any batch fetched before now, and wait until the group answers
        the offsets this instance committed there, so that the next owner starts after them.

        Another instance's producer has another transactional id and does not fence this one:
        without this, this instance could commit a batch the new owner was reading again, and the
        alert would get a receipt in two chains. The wait is bounded by ``HANDOVER_WAIT_S``; past
        it (or when Kafka does not answer), a note says the new owner may read some records again (a
        second receipt, in its own chain; never a loss).
        """
        self._generation += 1
        # A partition's catch-up entry stays until its next assignment (``_resume`` sets it anew): a batch fetched, or
        # a gap judged, while this callback runs is of a partition still held until it ends, and is read by it.
        try:
            async with asyncio.timeout(HANDOVER_WAIT_S):
                await self._settle(feed, revoked)
        except TimeoutError:
            self.on_note(f"handing feed partitions over, this subscriber's last commit did not show within "
                         f"{HANDOVER_WAIT_S:g}s: the next owner may receive its last batch again")
        except ClientError as exc:
            self.on_note(f"handing feed partitions over, Kafka did not confirm this subscriber's last commit "
                         f"({type(exc).__name__}): the next owner may receive its last batch again")

    async def _settle(self, feed: Consumer, revoked: set[TopicPartition]) -> None:
        async with self._busy:  # the batch in flight commits first
            mine = {tp: self._committed.pop(tp) for tp in revoked if tp in self._committed}
            if mine and not await offsets_visible(feed, mine, timeout_s=HANDOVER_WAIT_S):
                raise TimeoutError

    async def _batch(self, batch: dict[TopicPartition, list[Any]], out: TextIO | None, producer: Producer,
                     chain: ChainWriter, part: int) -> tuple[UnreadableFeedError | None, int | None]:
        """``_transact``, with the run's counts (``stats``) set back when the batch does not commit: they report
        what committed, not a batch that comes again (a recall counted as acknowledged whose receipt aborted). A
        failure after Kafka's commit (the store busy noting it) keeps them: the batch was applied and acknowledged,
        and a summary without it would not add up."""
        counted, keys_seen = copy.deepcopy(self.stats), self._broker_keys_seen
        self._kafka_committed = False
        try:
            return await self._transact(batch, out, producer, chain, part)
        except BaseException:
            if not self._kafka_committed:
                self.stats, self._broker_keys_seen = counted, keys_seen  # (a store rolls its own back)
            raise

    async def _transact(self, batch: dict[TopicPartition, list[Any]], out: TextIO | None, producer: Producer,
                        chain: ChainWriter, part: int) -> tuple[UnreadableFeedError | None, int | None]:
        """One transaction: the batch's receipts, the partner's checkpoint and the feed offsets, with
        the store's own transaction for the batch committed just before it. Returns the error of the
        first record that did not open (or None), and the offset of the checkpoint that ended the batch.

        Offsets advance only over records that were opened. At the first record that does not
        open (a wrong key, a record not from the broker), the records before it commit with their
        receipts, it gets a REJECTED receipt so auditors see it, and the error comes back: nothing
        past it is committed, so it stays for a correctly configured subscriber. When anything
        fails before the Kafka commit, the store's transaction is rolled back first, or, if it had
        committed, the batch comes again and the store gives each record it applied the outcome it first had
        (``PartnerStore.apply``), so its receipt says what the aborted one said.
        """
        next_offsets: dict[TopicPartition, int] = {}
        last: dict[TopicPartition, Record] = {}  # the record before each next offset: its mark is kept (``_remade``)
        unread: UnreadableFeedError | None = None
        now = self.clock()
        lines: list[str] = []  # the --out copy's, written once the store has committed their marks
        self._window = window = dict(self._catch_up)
        self._rewindow = rewindow = dict(self._reread)
        async with self._bounded(producer, "receipts, feed offsets and checkpoint") as bounds, \
                transaction(producer) as sends:
            self._sends = sends  # every receipt's delivery, awaited before the commit (``Sends``)
            # Every Kafka await while the store's write lock is held is bounded (``_bounded``): other writers of the
            # store are not kept out.
            async with bounds.kafka():
                with self._store_transaction():
                    # The deadline runs from the end of the records' handling, not from their first receipt: a
                    # long batch on a slow host (decryption, checks, the store's writes) is no sign of Kafka out of
                    # reach, and one timed from its first send would stop every run at the same backlog. A receipt
                    # sent meanwhile waits at most aiokafka's request timeout for room in its buffer.
                    self._deadline_held = True
                    for tp, msgs in batch.items():
                        for msg in msgs:
                            rec = record(msg)
                            unread = await self._handle(rec, lines if out is not None else None, producer, chain, part,
                                                        now)
                            if unread is not None:
                                break
                            next_offsets[tp], last[tp] = msg.offset + 1, rec
                        if unread is not None:
                            break
                    tag = self.commit_tag
                    # Never back over a catch-up's end (``_catch_store_up``): the other instance read to there; nor
                    # over a re-read's (``_resume``): the group read to there, and a store behind the group's offset
                    # is how the next run, here or on another --store, knows the rest is read again, not its own.
                    offsets = {tp: OffsetAndMetadata(max(at, window.get(tp, 0), rewindow.get(tp, 0)), tag)
                               for tp, at in next_offsets.items()}
                    if self.store is not None and offsets:  # committed with what was applied, before the receipts
                        self.store.keep_feed_offsets({(tp.topic, tp.partition): at for tp, at in next_offsets.items()})
                    self._deadline_held = False
                    self._arm_deadline()
                    # The partner vouches for its chain so far, batch by batch.
                    signed = chain.checkpoint(self.signer.key_id, self.signer.sign, iso_utc(datetime.now(UTC)))
                    sent = await self._send(producer, signed, part)
                    sends.add(sent)
                    if offsets:
                        await producer.send_offsets_to_transaction(offsets, self.group_id)
                    # What this batch decided by this host's clock (a view EXPIRED, then committed past) is final:
                    # Kafka's append time of the checkpoint checks that clock before either transaction commits.
                    # Every receipt is delivered first, so a refused one aborts the batch as itself (``Sends``).
                    await sends.settle()
                    self._vouched(now, await sent)
            async with bounds.settling():  # unbounded: a slow reader of the copy is no fault of Kafka
                # The store has committed, with each alert passed on marked: only now may a line leave it (a
                # line written before a rollback would outlive the mark). Before the Kafka commit: at least once.
                if out is not None and lines:
                    out.write("".join(lines))
                    out.flush()
                    durable(out)  # a power cut after the Kafka commit must not lose lines never to come again
                # The store has committed; what it deleted (a recall) or replaced (an update) must be gone from its
                # files before a receipt says so. If a reader keeps the WAL from being cleared, the Kafka transaction
                # is aborted instead: the batch comes again, each record with the outcome it first had (the store
                # kept it: ``PartnerStore.apply``).
                await self._wiped()
            bounds.commit()  # the receipts commit on leaving, within the bound
        self._kafka_committed = True
        self._committed.update((tp, at.offset) for tp, at in offsets.items())
        if self.store is not None and offsets:  # committed: a restart with no group offset may rely on them now
            self.store.confirm_feed_offsets({(tp.topic, tp.partition): at for tp, at in next_offsets.items()},
                                            {(tp.topic, tp.partition): record_mark(last[tp]) for tp in offsets})
        for tp, at in next_offsets.items():
            if at >= self._catch_up.get(tp, at):
                self._catch_up.pop(tp, None)  # caught up (the store ended it with the confirmation)
        return unread, (await sent).offset  # delivered: the transaction committed

    async def _send(self, producer: Producer, value: bytes, part: int) -> Any:
        """``value`` sent to this subscriber's receipts partition: its delivery. The first send of a transaction
        starts its deadline (``_bounded``), unless a batch's records are still being handled (``_transact``)."""
        if not self._deadline_held:
            self._arm_deadline()
        return await producer.send(self.access_topic, value, key=self.partner.encode(), partition=part)

    def _arm_deadline(self) -> None:
        """Start the open transaction's deadline (``_bounded``), ``DELIVERY_WAIT_S`` from now, unless started."""
        deadline = self._deadline
        if deadline is not None and deadline.when() is None:
            deadline.reschedule(asyncio.get_running_loop().time() + DELIVERY_WAIT_S)

    @contextlib.asynccontextmanager
    async def _bounded(self, producer: Producer, what: str) -> AsyncIterator[_Bounds]:
        """Around ``transaction(producer)``: bounds every Kafka await of the transaction, so that Kafka out of reach
        never hangs a run in silence. Why: aiokafka retries adding partitions and offsets to a transaction, and a
        delivery, without end, its abort waits for them, and its commit waits for EndTxn without end; one outliving
        the transaction's timeout came out, once Kafka answered, as another subscriber taking over.

        The block enters ``bounds.kafka()`` around its Kafka awaits (sends, feed offsets, deliveries): they have
        ``DELIVERY_WAIT_S`` from the first send (``_send``), or, for a batch, from the end of its records' handling
        (``_transact``); past it the block stops with KafkaUnavailableError (exit 4, retriable, nothing committed).
        Whatever the block raises (that error, or any other, in ``bounds.kafka()`` or ``bounds.settling()``, the
        work between the Kafka awaits and the commit), the abort on leaving ``transaction`` is waited for
        ``ABORT_WAIT_S`` at most, then the producer is stopped (Kafka aborts the transaction it left open) and the
        block's own error comes out. The block's last statement, ``bounds.commit()``, gives the commit that follows
        ``DELIVERY_WAIT_S``: past it the run stops as one killed there would (KafkaUnavailableError), the producer
        stopped, whatever Kafka made of the commit; the store's transaction, committed before it, holds what the batch
        applied, and a batch that comes again meets the version rule (``_transact``)."""
        loop = asyncio.get_running_loop()
        aborting = asyncio.timeout(None)
        failed: BaseException | None = None  # what the block raised: the run stops with it once its abort ends
        committing = False

        def failing(error: BaseException) -> None:
            nonlocal failed
            if failed is None:
                failed = error
                aborting.reschedule(loop.time() + ABORT_WAIT_S)  # the abort on leaving ``transaction`` is bounded

        @contextlib.asynccontextmanager
        async def kafka() -> AsyncIterator[None]:
            bound = self._deadline = asyncio.timeout(None)
            try:
                async with bound:
                    yield
            except TimeoutError as exc:
                if not bound.expired():
                    failing(exc)
                    raise
                stopped = KafkaUnavailableError(
                    f"Kafka at {self.conn.bootstrap} did not take {self.partner}'s {what} within "
                    f"{DELIVERY_WAIT_S:g} s (unreachable, or not answering); nothing of this batch was committed (the "
                    "store is not held longer: other programs use it): run again once Kafka answers")
                failing(stopped)
                raise stopped from None
            except BaseException as exc:
                failing(exc)
                raise
            finally:
                self._deadline, self._deadline_held = None, False

        @contextlib.asynccontextmanager
        async def settling() -> AsyncIterator[None]:
            try:
                yield
            except BaseException as exc:
                failing(exc)
                raise

        def commit() -> None:
            nonlocal committing
            committing = True
            aborting.reschedule(loop.time() + DELIVERY_WAIT_S)

        try:
            async with aborting:
                yield _Bounds(kafka, settling, commit)
        except TimeoutError:
            if not aborting.expired() or (failed is None and not committing):
                raise
            stopped = failed if failed is not None else KafkaUnavailableError(
                f"Kafka at {self.conn.bootstrap} did not confirm the commit of {self.partner}'s {what} within "
                f"{DELIVERY_WAIT_S:g} s (unreachable, or not answering); the store keeps what it applied, and records "
                "read again are harmless: run again once Kafka answers")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ABORT_WAIT_S):
                    await stop_client(producer)
            raise stopped from None

    async def _wiped(self, tries: int = 20) -> None:
        """The store's write-ahead log cleared of what the batch deleted or replaced, waiting for readers on the
        event loop (a rebalance's callbacks and the group's heartbeats go on meanwhile); StoreBusy past ``tries``."""
        store = self.store
        if store is None or not store.wipe_pending:
            return
        for _ in range(tries):
            if store.wipe():
                return
            await asyncio.sleep(0.05)
        raise StoreBusy(f"{store.path}: another program reading the store keeps deleted or replaced content in its "
                        "write-ahead log, so none of this batch is acknowledged yet; close it and run the subscriber "
                        "again")

    @contextlib.contextmanager
    def _store_transaction(self) -> Iterator[None]:
        if self.store is None:
            yield
            return
        with self.store.transaction():
            yield

    async def _handle(self, rec: Record, out: list[str] | None, producer: Producer, chain: ChainWriter,
                      part: int, now: datetime) -> UnreadableFeedError | None:
        if rec.unreadable is not None:
            return await self._unreadable(rec, rec.unreadable, producer, chain, part)
        where = f"{rec.topic}:{rec.partition}:{rec.offset}"
        alert_id = (rec.header(wire.ALERT_ID) or b"").decode("utf-8", "replace")[:200]
        shown = one_line(alert_id) or "?"  # for messages: a header is anyone's text until the record opens
        agreement = (rec.header(wire.AGREEMENT) or b"").decode("utf-8", "replace")[:100] or None
        unread = None
        version: int | None = None
        # A record that does not open gets a receipt without its policy header (anyone's text until the record
        # opens, which the partner's checkpoint would otherwise sign); its alert id header stays, for auditors bind
        # the place to it (``broker.audit.receipts``).
        policy = ""
        opened_here = False  # opened, and of an alert this store holds or held (not another store's)
        end = self._passed_by_another(rec.topic, rec.partition, rec.offset)
        try:
            view, opened = opened_record(rec, self.opener, self.codec)
            # Opened: the key block's signature verified, so its created_at is the broker's.
            delivery = Delivery.of(view, where, agreement, opened.created_at)
            if self._theirs(rec, delivery):  # another store's record: not judged here at all
                return None
            opened_here = True
            keys_seen = self._trust_key_block(opened, now)
        except (CryptoError, CodecError) as exc:
            # Within a catch-up, a record that does not open here and whose alert (as its header names it: only the
            # broker writes the feed) this store never held is another store's, which opened it or gave it up: the
            # group read on past it. One of an alert this store holds or held (a recall it cannot open, say) stops
            # the run as anywhere else, the catch-up kept, so that a run with the right keys or clock applies it.
            if end is not None and not opened_here and self.store is not None and not self.store.has_row(alert_id):
                self.on_note(f"{where} (alert {shown}) does not open ({type(exc).__name__}), but lies within this "
                             f"store's catch-up, and is of an alert it never held: another instance read past it "
                             f"(the group's offset stands at {end}); passed over here, with no receipt")
                return None
            reason = type(exc).__name__
            self.stats.rejected += 1
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
            self.on_error(f"puente subscribe: rejected {where} (alert {shown}): {exc}")
            status = f"REJECTED: {reason}"
            check = (f"check that every generation of {self.partner}'s decryption key the feed holds records for is "
                     "beside --key, and every generation of the broker's public signing key beside it or given with "
                     "--verify-key")
            if "unsupported format version" in str(exc):  # not a key problem: an older or newer broker wrote it
                check = "this subscriber reads only feed records of the format it names: run the broker's version"
            elif isinstance(exc, SignatureError) and RETIRED_KEY in str(exc):
                check = ("tell the broker's operator (a leaked key, or a worker left on it: `puente audit verify`); "
                         "loading other keys does not help")
            elif FUTURE_BLOCK in str(exc):
                check = "check the broker's clock and this host's (NTP); loading other keys does not help"
            if where in self.skip:
                status += "; given up"  # auditors tell the record given up from a stop at it
                self.stats.given_up += 1
                self.on_error(f"puente subscribe: gave up {where} (alert {shown}) as --skip named it; its "
                              "REJECTED receipt tells auditors it was never applied")
            elif end is not None:  # the group read past it already; this store reads it again when it runs next
                unread = UnreadableFeedError(
                    f"{self.partner}'s subscriber stopped at {where} (alert {shown}, which its store holds or held): "
                    f"{exc}. It lies within the store's catch-up: the group's offset stands past it, another "
                    f"instance having read it, but this store reads it again when it runs next: {check}; or, to give "
                    f"this one record up for good, run again with --skip {where}")
            else:
                unread = UnreadableFeedError(
                    f"{self.partner}'s subscriber stopped at {where} (alert {shown}): {exc}. Nothing past "
                    f"it was committed, so it stays for a subscriber that can read it: {check}; or, to give this "
                    f"one record up for good, run again with --skip {where}")
        else:
            self.stats.received += 1
            version = delivery.version
            policy = (rec.header(wire.POLICY) or b"").decode("utf-8", "replace")[:100]  # verified as the record opened
            self._note_broker_key(opened, now, keys_seen)
            status, applied = self._apply(delivery, now)
            passed_on = applied is not None and applied.passed_on
            # What the store refused is not passed on either; nor a view whose text it no longer holds (read again,
            # its kept RECEIVED stands, but a purge or a later record of its batch deleted the text since).
            if out is not None and status in _PASSED_ON and (
                    applied is None or delivery.recall or applied.holds_text):
                out.append(json_text(to_json(view)) + "\n")
                if self.store is not None:
                    self.store.mark_passed_on(delivery.alert_id)
            elif applied is not None and applied.passed_on and applied.dropped:
                self._tell_copy(delivery, view, status, applied.held_version, out)
            if applied is not None and self.store is not None and self._read_again(rec):
                # Read again into a store missing it (a backup restored): an earlier run may have copied it to
                # --out, and the mark it set then is not in this store. Fail closed: marked now.
                self.store.mark_passed_on(delivery.alert_id)
                passed_on = True
            if (out is not None or passed_on) and status == Outcome.RECALLED.value:
                # The store deleted it, but a --out copy (this run's, or an earlier run's) holds lines this
                # subscriber cannot take back: passed on, not acknowledged (auditors keep the recall outstanding).
                status = RECALL_PASSED_ON
                if out is None:  # and no line of it goes to any copy: its reader learns of it from this note alone
                    self.on_note(f"{delivery.feed}: alert {delivery.alert_id[:200]} recalled (version "
                                 f"{delivery.version}), but an earlier run passed it (or, read again into a store "
                                 "restored from a backup, may have passed it) to a --out copy, and this run "
                                 f"writes none: {RECALL_PASSED_ON}, no acknowledgement; the copy it went to must "
                                 "apply the recall (delete the alert)")
            self.stats.outcomes[status] = self.stats.outcomes.get(status, 0) + 1
        await self._receipt(producer, chain, part, where, status, alert_id or None, version, policy)
        return unread

    async def _receipt(self, producer: Producer, chain: ChainWriter, part: int, where: str, status: str,
                       alert_id: str | None, version: int | None, policy_version: str) -> None:
        receipt = {"partner": self.partner, "alert_id": alert_id, "feed": where, "status": status,
                   "version": version, "policy_version": policy_version, "at": iso_utc(datetime.now(UTC))}
        if self.store is not None:
            # Which store holds what it received: a recall is acknowledged once every store holding the alert
            # answers (``broker.audit.recalls``), not by one that took its feed partition over mid-stream.
            receipt["store"] = self.commit_tag.partition("|")[2]
        self._sends.add(await self._send(producer, chain.append("RECEIPT", receipt), part))

    async def _unreadable(self, rec: Record, batch: Unreadable, producer: Producer, chain: ChainWriter,
                          part: int) -> UnreadableFeedError | None:
        """A record standing for a batch this Kafka client cannot read (``broker.kafka.unreadable``: a compressed
        one, say): every record of the batch, ``batch.read_from`` to ``batch.last`` (the offset it stands at), at once.
        It stops the run, nothing of the batch committed, with one REJECTED receipt (at its last offset, where it
        stands), unless ``skip`` names the whole batch (``TOPIC:PARTITION:FIRST-LAST``, as the stop names it):
        then each of its records is given up with a REJECTED receipt of its own, so auditors see every delivery
        given up, not one of them. A skip naming one offset of it gives up nothing; nor does one of a batch of
        more records than one transaction's receipts (``RECEIPTS_PER_CHECKPOINT``), which no feed batch the
        broker writes holds. Read from a position inside the batch (``Unreadable.start``: its records before were
        deleted, or read past with ``accept_gaps``), it stands for the records from there on only: those before are
        not this subscriber's to receipt."""
        first = batch.read_from
        count = batch.last - first + 1
        tp = f"{rec.topic}:{rec.partition}"
        end = self._passed_by_another(rec.topic, rec.partition, batch.last)
        if end is not None:  # another instance read past the whole batch (or gave it up): not this store's to stop at
            self.on_note(f"{tp} records {first}-{batch.last} are one batch this Kafka client cannot read, within this "
                         f"store's catch-up: another instance read past it (the group's offset stands at {end}); "
                         "passed over here, with no receipt")
            return None
        place = f"{tp}:{first}-{batch.last}" if count > 1 else f"{tp}:{batch.last}"
        what = (f"{tp} records {first}-{batch.last} ({count} record(s)) are one batch this Kafka client "
                f"cannot read ({one_line(batch.what)[:200]})")
        reason = "UnreadableBatch"
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        self.on_error(f"puente subscribe: rejected {place}: {what}")
        if place in self.skip and count <= RECEIPTS_PER_CHECKPOINT:
            self.stats.rejected += count
            self.stats.given_up += count
            self.on_error(f"puente subscribe: gave up {place}, all {count} record(s) of the batch, as --skip named "
                          "it; each has a REJECTED receipt telling auditors it was never applied")
            for offset in range(first, batch.last + 1):
                await self._receipt(producer, chain, part, f"{tp}:{offset}", f"REJECTED: {reason}; given up", None,
                                    None, "")
            return None
        self.stats.rejected += 1
        if count > RECEIPTS_PER_CHECKPOINT:
            skip = (f"--skip cannot give up a batch of more than {RECEIPTS_PER_CHECKPOINT:,} records (no feed batch "
                    "the broker writes holds so many)")
        else:
            named = (f" (--skip {rec.topic}:{rec.partition}:{batch.last} names one record of it: a batch is given up "
                     "whole or not at all)" if count > 1 and f"{tp}:{batch.last}" in self.skip else "")
            skip = f"or, to give up all {count} record(s) of it for good, run again with --skip {place}{named}"
        await self._receipt(producer, chain, part, f"{tp}:{batch.last}", f"REJECTED: {reason}", None, None, "")
        return UnreadableFeedError(
            f"{self.partner}'s subscriber stopped at {tp}:{first}: {what}. Nothing of it was committed. The "
            "broker never compresses the feed, and its topics keep each batch as its producer wrote it "
            "(compression.type=producer): ask the broker's operator to check the feed topic's compression.type "
            "(`puente topics plan`) and who else may write to it; other keys do not help; " + skip)

    def _trust_key_block(self, opened: Opened, now: datetime) -> Mapping[str, int]:
        """Whether the record's verified key block may be taken, else it does not open: CryptoError when it is dated
        ahead of this subscriber's clock (``future_key_block``), SignatureError when a broker key this subscriber
        had moved on from signed it (``retired_broker_key``). Returns the broker keys seen it judged by, read once
        per record, for ``_note_broker_key``: nothing writes them between the two."""
        made_ms = _epoch_ms(opened.created_at)
        problem = future_key_block(made_ms, _epoch_ms(now))
        if problem is not None:
            raise CryptoError(problem)
        seen = self._keys_seen()
        problem = retired_broker_key(seen, opened.signer, made_ms)
        if problem is not None:
            raise SignatureError(problem)
        return seen

    def _keys_seen(self) -> Mapping[str, int]:
        return self.store.broker_keys_seen() if self.store is not None else self._broker_keys_seen

    def _note_broker_key(self, opened: Opened, now: datetime, seen: Mapping[str, int]) -> None:
        """Remember the broker key that verified the key block of a record accepted, if it is the first of that key
        (``note_broker_key``, at this batch's ``now``; ``seen``, what ``_trust_key_block`` read for the record): in
        the store, in the batch's transaction, so that it is committed with the records and outlives a restart;
        without one, for the run, set back with a batch that does not commit (``_batch``)."""
        noted = note_broker_key(seen, opened.signer, _epoch_ms(now))
        if noted is seen:
            return
        if self.store is not None:
            self.store.keep_broker_keys_seen(noted)
        else:
            self._broker_keys_seen = noted

    def _passed_by_another(self, topic: str, partition: int, offset: int) -> int | None:
        """The end of the catch-up of the batch under way (``_window``) when ``offset`` lies before it, else None: the
        group's offset stands past that record, which another instance read (opened, or gave up with --skip)."""
        end = self._window.get(TopicPartition(topic, partition))
        return end if end is not None and offset < end and self.store is not None else None

    def _read_again(self, rec: Record) -> bool:
        """Whether ``rec`` lies before the end of a partition read again into a store that misses it (``_rewindow``):
        a backup restored, or a store of this instance other than the one that applied it."""
        end = self._rewindow.get(TopicPartition(rec.topic, rec.partition))
        return end is not None and rec.offset < end

    def _theirs(self, rec: Record, delivery: Delivery) -> bool:
        """Whether a record read again to catch the store up (``_catch_store_up``), before its end, is of an alert the
        store holds nothing of and never held: the instance that read it first applied it to its own store and
        receipted it, so it is neither applied nor receipted here (a second holder, a second receipt, for nothing)."""
        end = self._window.get(TopicPartition(rec.topic, rec.partition))
        if end is None or rec.offset >= end or self.store is None:
            return False
        return not self.store.has_row(delivery.alert_id)

    def _held_elsewhere(self, delivery: Delivery, held_version: int | None) -> bool:
        """Whether a recall the store took is another store's to acknowledge: one of an alert found so before (the
        same record read again, a second recall), or of one this store holds nothing of, on a feed partition it
        took over mid-stream (``PartnerStore.note_taken_over``)."""
        store = self.store
        if store is None:
            return False
        if store.held_elsewhere(delivery.alert_id):
            return True
        if held_version is not None:
            return False
        topic, partition, _ = delivery.feed.rsplit(":", 2)
        return store.taken_over(topic, int(partition))

    def _tell_copy(self, delivery: Delivery, view: Mapping[str, Any], status: str, held_version: int | None,
                   out: list[str] | None) -> None:
        """Tell the ``--out`` copy an earlier run passed the alert to that the store deleted or replaced the text it
        holds (``Applied.dropped``) by a record of which this run writes no line: an alert that ended (EXPIRED) gets
        a content-free line in this run's copy (``end_line``); without one, a note names the feed place and the
        alert, as it does for a newer version (whose view goes only to a copy this run writes). (A recall's note
        is ``_handle``'s: it is owed whatever the store still held.)"""
        place, alert = delivery.feed, delivery.alert_id[:200]
        if status == Outcome.EXPIRED.value:
            if out is not None:
                out.append(end_line(view, status) + "\n")
                return
            self.on_note(f"{place}: alert {alert} version {delivery.version} ended ({status}): the store deleted the "
                         f"text of version {held_version} it held, but an earlier run passed that to a --out copy, "
                         "and this run writes none: the copy it went to must delete the alert")
        elif status == Outcome.RECEIVED.value and out is None:
            self.on_note(f"{place}: alert {alert} version {delivery.version} replaced version {held_version} in the "
                         "store, but an earlier run passed the older one to a --out copy, and this run writes none: "
                         "the copy it went to holds the older text; take the new version from the store")

    def _apply(self, delivery: Delivery, now: datetime) -> tuple[str, Applied | None]:
        """The receipt status of one opened record: what the store made of it (RECEIVED without a store),
        and what applying it did (``PartnerStore.apply``; None without a store): whether a copy of its alert went
        beyond the store before (``PartnerStore.mark_passed_on``), and whether it deleted or replaced the text
        held."""
        if self.store is None:
            return Outcome.RECEIVED.value, None
        applied = self.store.apply(delivery, now)
        if applied.outcome is Outcome.RECALLED and self._held_elsewhere(delivery, applied.held_version):
            self.store.mark_held_elsewhere(delivery.alert_id)
            self.on_note(f"{delivery.feed}: alert {delivery.alert_id[:200]} recalled, but this store never held it, "
                         f"and took the partition over from another store, which may: {RECALL_NOT_HELD}, no "
                         "acknowledgement; that store applies it when its subscriber (its --instance and --store) is "
                         "next given this partition, reading what others read meanwhile for the alerts it holds "
                         "(`puente audit recalls` shows the recall outstanding until then)")
            return RECALL_NOT_HELD, applied
        if applied.outcome is Outcome.SUPERSEDED:
            self.on_note(f"{delivery.feed}: alert {delivery.alert_id[:200]} version {delivery.version} is older than "
                         f"version {applied.held_version}, already received; ignored")
        elif applied.outcome is Outcome.EXPIRED and delivery.expired(now):
            self.on_note(f"{delivery.feed}: alert {delivery.alert_id[:200]} version {delivery.version} expired before "
                         "it arrived: not stored")
        elif applied.outcome is Outcome.EXPIRED:
            self.on_note(f"{delivery.feed}: alert {delivery.alert_id[:200]} version {delivery.version} is past its "
                         "agreement's retention (sealed, or the alert first received, longer ago than that; or its "
                         "text already purged): not stored")
        elif applied.outcome is Outcome.REFUSED:
            self.on_note(f"{delivery.feed}: alert {delivery.alert_id[:200]} version {delivery.version} refused: its "
                         f"originator recalled it (version {applied.held_version})")
        return applied.outcome.value, applied


def end_line(view: Mapping[str, Any], status: str) -> str:
    """The ``--out`` line telling a copy's reader that an alert it holds ended: the store deleted its text (status
    EXPIRED: a newer version arrived expired, or past its agreement's retention). Content-free, as a recall notice
    is: the alert's id and type, the version that ended it, the status and that version's ``markings.expires_at``
    (null when retention ended it); no other field of the view. Its reader deletes what it holds of the alert, as
    for a recall notice (``lifecycle.action`` RECALL), which it is not."""
    markings = view.get("markings")
    expires = markings.get("expires_at") if isinstance(markings, Mapping) else None
    return json_text(to_json({"alert_id": view["alert_id"], "alert_type": view["alert_type"],
                              "version": view["version"], "status": status, "expires_at": expires}))


def open_copy(path: Path, on_note: Callable[[str], None]) -> TextIO:
    """The ``--out`` copy at ``path``, opened to append (made 0600 when missing). A line a crash cut short at its
    end is cut off first, with a note: its batch was never committed, so it comes again whole (each line is
    written, flushed and synced before its batch's Kafka commit: ``durable``).

    A file that is not such a copy (its first line, its last whole line or the part after it is no JSON line of
    an alert: a store, a key file, a document of the user's own) is refused before anything is cut or appended.
    The folder is synced on every open: the file's name must outlive a power cut, or the synced lines go with
    it, whoever made the file (``puente subscribe`` makes it when it checks it, before this)."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        size = os.fstat(fd).st_size
        end = _line_start(fd, size)  # after the last newline
        problem = _not_a_copy(fd, size, end)
        if problem is not None:
            raise StoreError(f"the --out file {path} {problem}, so it is no copy `puente subscribe` wrote: nothing "
                             "was cut or appended; name a new file, or the copy an earlier run wrote")
        if end < size:
            os.ftruncate(fd, end)
            os.fsync(fd)
            on_note(f"{path}: its last {size - end} byte(s) were a line a crash cut short; cut off (that batch was "
                    "never committed, so its lines come again)")
        return open(fd, "a", encoding="utf-8", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _line_start(fd: int, end: int) -> int:
    """Where the line holding the byte before ``end`` starts: just after the newline before it (0 for none)."""
    while end > 0:  # back to the newline, a block at a time
        block = os.pread(fd, min(end, 1 << 16), max(0, end - (1 << 16)))
        cut = block.rfind(b"\n")
        if cut >= 0:
            return end - len(block) + cut + 1
        end -= len(block)
    return 0


COPY_LINE_MAX = 64 << 20  # the longest line read back to check it: far above any alert's view


def _not_a_copy(fd: int, size: int, end: int) -> str | None:
    """Why the file is not a ``--out`` copy (``open_copy``), or None: it is empty, or its first and last whole lines
    (the last ending at ``end``) are alerts' JSON objects and what follows is what a crash leaves of one
    (``_cut_short``)."""
    if size == 0:
        return None
    if end > 0 and os.pread(fd, 2, 0) != b'{"':
        return "does not start as a JSON line"
    if end < size:
        if size - end > COPY_LINE_MAX:
            return "ends in a line too long to be an alert's"
        if not _cut_short(os.pread(fd, size - end, end)):
            return "ends in something other than a JSON line"
    if end == 0:
        return None  # one line a crash cut short: nothing whole to read
    start = _line_start(fd, end - 1)
    if end - start > COPY_LINE_MAX:
        return "ends in a line too long to be an alert's"
    if not _alert_line(os.pread(fd, end - start, start)):
        return "has a last line that is no alert's JSON line"
    return None


def _cut_short(tail: bytes) -> bool:
    """Whether ``tail`` (what follows a file's last line feed) is what a crash leaves of an alert's line: its first
    bytes (as little as ``{``), none of it (a file system that had grown the file but not written it leaves zero
    bytes), or a whole line but its line feed; never another JSON value that parses."""
    written = tail.rstrip(b"\0")
    if not written:
        return True
    if not b'{"'.startswith(written[:2]):
        return False
    try:
        json.loads(written)
    except (ValueError, RecursionError):
        return True  # the part written of a line
    return _alert_line(written)


def _alert_line(line: bytes) -> bool:
    """Whether ``line`` is one alert's JSON object."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):  # (nesting deep enough to exhaust the parser is no alert either)
        return False
    return isinstance(doc, dict) and isinstance(doc.get("alert_id"), str)


def durable(out: TextIO) -> None:
    """Sync ``out`` to disk when it is a file (standard output, a pipe, is the reader's to keep)."""
    try:
        fd = out.fileno()
    except (OSError, ValueError, AttributeError):
        return
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fsync(fd)


Owner = Literal["store", "instance", "other"]
"""Who committed a feed partition's offset, by the metadata committed with it (``Subscriber.commit_tag``): this
very store (a copy restored from a backup is the same store), this instance with another store, or anyone else
(another instance, with its own store; or a Puente that tagged no commits)."""


def resume_at(stored: int | None, committed: int | None, start: int | None, owner: Owner,
              confirmed: int | None = None) -> int | None:
    """Where to read a newly assigned feed partition from, or None for the group's committed offset (``committed``,
    None when the group has none there), given the store's noted offset (``stored``, None when it noted none), who
    committed the group's offset (``owner``), the offset of the partition's first record (``start``, asked only
    when this instance read the records, into another store or into this one as a backup restored from before it
    noted an offset, and the store has none) and, when the group has no offset,
    the store's offset as far as Kafka is known to have committed its receipts (``confirmed``,
    ``PartnerStore.confirm_feed_offsets``).

    - The group has no offset: from the store's confirmed offset (a new group, or its offsets expired; the caller
      checks that the topic is still the one the store read: ``Subscriber._remade``), else the group's rule
      (offset 0). Never the store's applied offset alone: a crash between the store's commit and
      Kafka's first commit in a partition leaves it past records whose receipts were aborted, which would then
      never be written.
    - This store committed it and stands behind it (restored from a backup): from the store's offset; with none
      (a backup made before it first read the partition): from the partition's first record.
    - This instance committed it from another store (a new or another ``--store``): from the store's offset, or,
      when it has none, from the partition's first record.
    - Another instance committed it: from the group's offset. Its store holds those records; this store's offset
      is from when it last owned the partition, and reading on from there would take them as this store's. (The
      records between are read as a catch-up first, for the alerts this store holds: ``Subscriber._catch_store_up``,
      which the caller asks before this.)
    - A store ahead of the group (a crash between its commit and Kafka's): from the group's, so the batch's aborted
      receipts are written again."""
    if committed is None:
        return confirmed
    if owner == "other":
        return None
    if stored is not None:
        return stored if stored < committed else None
    return start if start is not None and committed > start else None


def record_mark(rec: Record) -> str:
    """What identifies a feed record for ``remade_feed``: the SHA-256 of its value (a sealed envelope, under a
    data key and nonce of its own, so no other record has it), and of the batch's offsets for one standing for a
    batch the client cannot read (``Record.unreadable``), which has no value. Pure."""
    digest = hashlib.sha256(rec.value)
    if rec.unreadable is not None:
        digest.update(f"\0unreadable {rec.unreadable.first}-{rec.unreadable.last}".encode())
    return digest.hexdigest()


def remade_feed(mark: tuple[int, str | None] | None, at: int, begin: int, end: int, rec: Record | None,
                stable: int | None = None) -> str | None:
    """Why a feed partition that holds records ``begin`` to ``end - 1`` (``end``: its high-water mark, decided or
    not; ``stable``: its last stable offset, the first record of a transaction still open, ``end`` when None) may
    not be read on from ``at`` (the store's confirmed offset; the group has none), or None. ``mark``: what the store
    kept of the last record it read before ``at`` (``PartnerStore.feed_mark``: the offset before ``at`` and
    ``record_mark``, or None where it read none), ``rec``: the last committed record before ``at`` now
    (``broker.kafka.last_before``, read only when the mark names one to compare). Pure.

    Nothing can be passed when the partition holds nothing before ``at`` (reading from ``at`` is reading from its
    first record, or ``_gap`` meets retention's gap), nor when it ends before ``at`` (``_gap`` meets a topic made
    anew shorter). Otherwise the last committed record before ``at`` must be the one the store read last: the
    subscriber confirms the offset after the last record it read, which a read_committed reader hands out past
    transaction markers and aborted records, so that record, not whatever is at ``at - 1``, is the one to compare.
    Another, or one where the store read past none, is another topic, made anew and filled past ``at``; with no
    mark of that offset (a store an earlier Puente kept) nothing tells, and it is not taken on trust; and while a
    transaction open before ``at`` has not ended, the records before it cannot be read yet."""
    if begin >= at or end < at:
        return None
    if mark is None or mark[0] != at - 1:
        return (f"it keeps no mark of the record before offset {at} (kept by an earlier Puente), so nothing tells "
                "whether the topic is still the one it read")
    if mark[1] is None:
        return (f"the partition holds records before offset {at}, where it held none when the store read past it: "
                "the topic is another")
    if stable is not None and stable < at:
        return (f"a transaction open on it from offset {stable} to past {at - 1} has not ended, so the records before "
                f"{at} cannot be compared yet (a crashed writer's is aborted by Kafka within its transaction "
                "timeout: run again once it has ended)")
    if rec is None or rec.offset >= at or record_mark(rec) != mark[1]:
        return f"the last record before offset {at} is not the one the store read there: the topic is another"
    return None


def chain_covers(records: Iterable[Record], feed_topic: str) -> dict[int, int]:
    """Per partition of ``feed_topic``, the offset past the last feed record the receipts among ``records`` (a receipt
    chain's) name (``"feed": "TOPIC:PARTITION:OFFSET"``). Records that are no receipt, or name no such place, count for
    nothing: the caller has checked the chain links (``_unlinked``)."""
    covered: dict[int, int] = {}
    for rec in records:
        try:
            doc = json.loads(rec.value)
        except (ValueError, TypeError):
            continue
        where = doc.get("feed") if isinstance(doc, dict) and doc.get("kind") == "RECEIPT" else None
        if not isinstance(where, str):
            continue
        topic, _, place = where.rpartition(":")
        topic, _, part = topic.rpartition(":")
        if topic != feed_topic or not part.isdigit() or not place.isdigit():
            continue
        covered[int(part)] = max(covered.get(int(part), 0), int(place) + 1)
    return covered


def _older_than_kept(last: dict[str, Any], offset: int, kept: tuple[int, str, int | None] | None) -> str | None:
    """Why the chain's last checkpoint in Kafka (``last``, at ``offset``), though signed by the partner, is
    not where the partner's store saw the chain end, or None. An older checkpoint replayed after the real
    head (whoever holds the partner's login may write its receipts topic, and replaying needs no key; and
    ``_unlinked`` refuses the chain's records that do not follow the one before them) must not be extended:
    the chain would fork. So must a copy of the kept one, at another offset: the store notes a head only
    after its batch commits, so after a crash between the two it holds the one before, and a copy of that
    one written after the real head would pass for it. A newer one is this chain's own last batch,
    committed just before a crash kept the store from noting it."""
    if kept is None:
        return None
    seq, digest = last.get("seq"), last.get("hash")
    kept_seq, kept_hash, kept_offset = kept
    if type(seq) is not int or seq < kept_seq or (seq == kept_seq and digest != kept_hash):
        return (f"its last checkpoint (seq {seq}) is not the one this subscriber's store saw committed last "
                f"(seq {kept_seq}); an old checkpoint was written again after it")
    if seq == kept_seq and kept_offset is not None and offset != kept_offset:
        return (f"its last checkpoint (seq {seq}, offset {offset}) is a copy of the one this subscriber's store saw "
                f"committed last, at offset {kept_offset}; it was written again after the chain's real head")
    return None


def _is_checkpoint(rec: Record) -> bool:
    """Whether a record of a receipt chain is one of its checkpoints (those end each batch)."""
    try:
        doc = json.loads(rec.value)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == "CHECKPOINT"


def _unlinked(previous: Record, rec: Record) -> str | None:
    """Why a record of a receipt chain (``rec``) does not follow the chain's record before it in the partition
    (``previous``), or None. A chain's one writer appends each record after the one before it, so records of the
    chain written again after its real head (by a holder of the partner's login; replaying needs no key) name
    another predecessor where the copies begin: extending the last of them would fork the chain. Pure."""
    try:
        before, doc = json.loads(previous.value), json.loads(rec.value)
    except (ValueError, RecursionError):
        return f"its record at offset {rec.offset} does not parse"
    if not isinstance(before, dict) or not isinstance(doc, dict):
        return f"its record at offset {rec.offset} is not a chain record"
    seq, prev_seq = doc.get("seq"), before.get("seq")
    if type(seq) is not int or type(prev_seq) is not int or seq != prev_seq + 1 or doc.get("prev") != before.get(
            "hash"):
        return (f"its record at offset {rec.offset} (seq {str(seq)[:20]}) does not follow the chain's record before "
                f"it at offset {previous.offset} (seq {str(prev_seq)[:20]}): written again, or by another writer")
    return None


RETIRED_KEY = "a retired key in use"  # the end of every refusal ``retired_broker_key`` gives
FUTURE_BLOCK = "dated ahead of this subscriber's clock"  # in every refusal ``future_key_block`` gives
LOG_APPEND_TIME = 1  # aiokafka's RecordMetadata.timestamp_type when the time is Kafka's append time


def clock_ahead(now_ms: int, appended_ms: int) -> str | None:
    """Why this subscriber's clock, reading ``now_ms`` as a batch began, is not to be trusted with it, or None: Kafka
    appended the batch's checkpoint at ``appended_ms`` (LogAppendTime, Kafka's clock), after the batch began, so a
    clock reading more than the skew allowed (``partner_store.CLOCK_SKEW_MS``) later runs ahead. The mirror of
    ``future_key_block``: by a clock ahead by a retention, every view is sealed too long ago (EXPIRED, not stored,
    and committed past) and the purge deletes everything held, both for good. Pure."""
    if now_ms <= appended_ms + CLOCK_SKEW_MS:
        return None
    return (f"this host's clock read {_iso_ms(now_ms)}, more than {CLOCK_SKEW_MS // 60_000} minutes after Kafka "
            f"appended the batch's checkpoint ({_iso_ms(appended_ms)}): this host's clock runs ahead of Kafka's")


def future_key_block(made_ms: int, now_ms: int) -> str | None:
    """Why a feed key block made at ``made_ms`` (its created_at, signed by the broker) is not to be taken at
    ``now_ms`` (this subscriber's clock), or None: it is dated more than the clock skew allowed
    (``partner_store.CLOCK_SKEW_MS``) ahead. The store counts an alert's retention from that time, and a record
    sealed "in the future" would never be too old: once a recall's tombstone were purged, the same genuine record
    written to the feed again would be stored anew, text and all. A broker's clock that far ahead is as wrong as a
    block signed ahead of time. Pure."""
    if made_ms <= now_ms + CLOCK_SKEW_MS:
        return None
    return (f"its key block is {FUTURE_BLOCK}: made at {_iso_ms(made_ms)}, more than {CLOCK_SKEW_MS // 60_000} "
            f"minutes after {_iso_ms(now_ms)} (a broker clock running ahead, or a block signed ahead of time)")


def retired_broker_key(first_seen: Mapping[str, int], signer: str | None, made_ms: int) -> str | None:
    """Why a feed key block the broker's key ``signer`` verified, made at ``made_ms`` (its created_at, milliseconds
    since 1970), is a retired key's, or None. ``first_seen``: every generation that verified a key block this
    subscriber accepted, and when it first accepted one, by its own clock (``note_broker_key``). Pure.

    The broker's signing keys rotate forward only, by their labels (``broker.crypto.keys.newer_generation``), as
    ``audit verify``, the broker's workers and this subscriber's own receipt chain have it: once a newer generation
    has signed, an older one signing again is a retired key in use. A leak of it looks like that, and its holder,
    able to write the feed, could sign a later version of an alert that would replace the real text. The partner
    holds the older generations only to read what they signed before the rotation. So the block is refused when
    some generation newer than ``signer`` was first seen more than ``ROTATION_GRACE_MS`` (an hour, as ``audit
    verify`` allows) before ``made_ms``. Every newer one counts, not only the newest: after 2026a, 2026b and 2026c a
    leaked 2026a is bounded by when 2026b came, not 2026c. The hour is the broker's rolling restart, its workers
    moving to the new key one after another; a block of the older key dated before then is taken (one made before
    the rotation, read late from another partition, is genuine).

    Why this subscriber's clock, not the newer key's block's created_at: that is one broker worker's clock, and one
    restarted on the new key with its clock hours behind would date the rotation hours early, for good; the other
    workers' genuine blocks of the rolling restart would then all be refused, stopping every partner (``--skip`` is
    per record, and one key block serves up to 100,000). The subscriber meets the new key after the broker made it,
    so its own time is not early (but for its clock running behind, below). The price: a subscriber that first meets
    the new key days after the rotation (down meanwhile, or a new store reading an old feed again) takes the old
    key's blocks dated up to then and an hour; and a holder of the old key can still date a forgery back to before
    that, no further than the store allows: it refuses a view sealed longer ago than its agreement's retention, and
    keeps versions it has seen. A block dated more than ``CLOCK_SKEW_MS`` ahead of the subscriber's clock is refused
    before this, as such (``future_key_block``), so a generation first seen at ``t`` refuses nothing until the
    subscriber's clock reads past ``t`` + 45 minutes (never in the batch that first saw it), and a subscriber's
    clock behind the broker's, by no more than that check lets pass, shortens the hour by as much. The one unnamed
    key of an opener given a single key is never refused; key ids whose labels say nothing of their order never
    reach this: the subscriber refuses such a set of keys when it loads them (``ordered_broker_keys``)."""
    if signer is None:
        return None
    newer = sorted((since_ms, key) for key, since_ms in first_seen.items()
                   if made_ms > since_ms + ROTATION_GRACE_MS and newer_generation(key, signer))
    if not newer:
        return None
    since_ms, key = newer[0]
    return (f"its key block is signed by {signer[:80]}, a broker key this subscriber had moved on from ({key[:80]}, a "
            f"newer generation, signed a key block it first accepted at {_iso_ms(since_ms)} by its own clock, more "
            f"than {ROTATION_GRACE_MS // 60_000} minutes before this one's created_at {_iso_ms(made_ms)}): "
            f"{RETIRED_KEY}")


def note_broker_key(first_seen: Mapping[str, int], signer: str | None, now_ms: int) -> Mapping[str, int]:
    """``first_seen`` (``retired_broker_key``) once a key block ``signer`` verified is accepted at ``now_ms``, this
    subscriber's clock: with ``signer`` added at ``now_ms`` when it is not there yet (a new mapping), else
    ``first_seen`` itself, unchanged (the first time stays). The one unnamed key of an opener given a single key is
    not noted. Pure."""
    if signer is None or signer in first_seen:
        return first_seen
    return {**first_seen, signer: now_ms}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _iso_ms(ms: int) -> str:
    try:
        return iso_utc(_EPOCH + timedelta(milliseconds=ms))
    except OverflowError:
        return f"{ms} ms after 1970"


def opener_for(partner: str, key_file: Path, verify_files: Path | Sequence[Path] | None,
               expected_key_id: str | None = None) -> FeedOpener:
    """The partner's feed opener, holding every generation of its keys, after checking they are its own.

    Decryption: ``key_file`` must be one of ``partner``'s own decryption keys, and every other
    generation of them in the same folder is loaded too (each checked as ``load_key_file`` does:
    one that cannot be loaded stops the start, naming it). After the partner's key rotates, the
    records already in its feed stay sealed to the old key and the subscriber never commits past
    a record it cannot open: holding only the new key would stop the feed for good.
    ``expected_key_id`` is the key the policy names for the partner (the one the broker seals
    new records for): it must be among them, or the first new record would stop the subscriber.

    Verification: ``verify_files`` (``--verify-key``, any number of them), each the broker's
    public signing key, else every ``broker-sign-<g>`` key in ``key_file``'s folder. A key block
    does not name the broker key that signed it, so after the broker rotates its key the old
    records verify only under the old one; any other kind of key, or another owner's, is refused
    (it could sign for the broker). The opener says which one verified each block, and the subscriber
    refuses an old generation's block made more than an hour after it first took one of a newer
    generation (``retired_broker_key``).

    Wrong keys fail here, in one line, before anything is read.
    """
    key = load_key_file(key_file)
    if key.kind is not KeyKind.PARTNER_ENCRYPTION or key.owner != partner:
        raise KeyMaterialError(f"key {key.key_id} ({key.kind}) is not a decryption key of {partner}; "
                               f"pass {partner}'s own key with --key")
    folder = Keystore(key_file.parent)
    try:
        privates = folder.load_decryption_keys(partner)
    except KeyMaterialError as exc:
        raise KeyMaterialError(f"{exc}; every generation of {partner}'s decryption keys beside --key is loaded, "
                               "so that records sealed before a key rotation still open") from exc
    if expected_key_id is not None:
        if expected_key_id not in privates:
            raise KeyMaterialError(
                f"the policy names {expected_key_id} as {partner}'s encryption key and the broker seals {partner}'s "
                f"feed for it, but it is not in {folder.path} beside --key (held: {', '.join(privates)}): put "
                f"{partner}'s {expected_key_id}.json there")
        privates = {expected_key_id: privates[expected_key_id], **privates}  # the current one is tried first
    return FeedOpener(partner, privates, _broker_verify_keys(verify_files, folder))


def _broker_verify_keys(verify_files: Path | Sequence[Path] | None, folder: Keystore) -> dict[str, Ed25519PublicKey]:
    """The broker's public signing keys a subscriber verifies with: the files given, else the folder's. One public
    half under two ids is refused among the files as in the folder (``refuse_one_key_two_ids``): the same key under
    two generations' ids has one of them mistyped, and its label can make the broker's key in use look retired.
    So are two whose labels do not order (``ordered_broker_keys``)."""
    if isinstance(verify_files, Path):
        verify_files = [verify_files]
    if not verify_files:
        try:
            held = folder.load_verify_keys()
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{exc}; pass the broker's public key with --verify-key") from exc
        return ordered_broker_keys(held, str(folder.path))
    records: list[KeyRecord] = []
    for path in verify_files:
        broker_key = load_key_file(path)
        if broker_key.kind is not KeyKind.BROKER_SIGNING or broker_key.owner != BROKER_OWNER:
            raise KeyMaterialError(f"key {broker_key.key_id} ({broker_key.kind}) is not the broker's signing key; "
                                   "pass the broker's public key (broker-sign-...) with --verify-key")
        if broker_key.secret is not None:
            # Only the broker holds its private half. The file is most likely the broker's own key, in the broker's
            # folder: this says what to pass instead, never to remove it (that would destroy the broker's key).
            raise KeyMaterialError(
                f"--verify-key {path}: holds the private half of {broker_key.key_id}, which only the broker holds; "
                f"pass its public half: on the broker's side `puente keys export-public {broker_key.key_id} --out "
                f"FILE.pem`, then `puente keys import-public FILE.pem --id {broker_key.key_id} --dir {folder.path}` "
                f"and pass {folder.path / f'{broker_key.key_id}.json'} (or leave --verify-key out)")
        records.append(broker_key)
    refuse_one_key_two_ids(records, "the --verify-key files")
    return ordered_broker_keys({record.key_id: record.ed25519_public() for record in records}, "the --verify-key files")


def ordered_broker_keys(keys: dict[str, Ed25519PublicKey], where: str) -> dict[str, Ed25519PublicKey]:
    """``keys``, the broker's signing keys a subscriber verifies with, once every two of them order by their labels
    (``compare_generations``); KeyMaterialError naming two that do not. Why: a retired key signing again is told by
    a newer generation having signed before (``retired_broker_key``), and two labels that say nothing of their order
    (``2026a`` and ``2027``, ``2026z`` and ``2026aa``) would make neither the newer: a leaked old key would never
    retire on this side, and its holder could sign later versions of alerts. The broker's own keystore refuses such
    a label when it makes a key (``Keystore._require_after``); a partner's ids are typed at ``import-public``, or
    files are put in its folder by hand."""
    ids = sorted(keys)
    for n, a in enumerate(ids):
        for b in ids[n + 1:]:
            try:
                ga, gb = parse_key_id(a).generation, parse_key_id(b).generation
            except KeyMaterialError:
                continue  # not a key id: one key given alone is used unnamed, and never ranked
            if compare_generations(ga, gb) is None:
                raise KeyMaterialError(
                    f"the broker's signing keys {a[:80]} and {b[:80]} ({where}) cannot be ordered by their labels, so "
                    "a retired one could not be told from the one in use: labels order run by run, digits as numbers "
                    "and letters alphabetically, each run the same shape (2026a < 2026b < 2027a); import each under "
                    "the id the broker exported it under (`puente keys export-public`)")
    return keys


def receipt_signer(partner: str, key_file: Path, sign_file: Path | None) -> ReceiptSigner:
    """The partner's receipt signer: ``sign_file``, or the current receipt key beside ``key_file``;
    it verifies with every generation of the partner's receipt keys in either key's folder.

    A ``sign_file`` that is not the newest generation held in either folder is refused: keys rotate forward only,
    so the auditors would read its receipts as signed by a retired key, and count none of them. Both folders,
    since a copy of an old key alone in a folder of its own would otherwise pass, and the generations the
    subscriber ranks a chain's head by (``Subscriber._signed_by_a_newer_key``) would not know the newer one."""
    if sign_file is not None:
        key = load_key_file(sign_file)
    else:
        try:
            key = Keystore(key_file.parent).load_receipt_key(partner)
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{exc}; pass the partner's receipt-signing key with --sign-key") from exc
    if key.kind is not KeyKind.PARTNER_SIGNING or key.owner != partner:
        raise KeyMaterialError(f"key {key.key_id} is not {partner}'s receipt-signing key")
    private = key.ed25519_private()
    held = _receipt_generations(partner, [key_file.parent] + ([] if sign_file is None else [sign_file.parent]))
    held.setdefault(key.key_id, (key, sign_file or key_file.parent / f"{key.key_id}.json"))
    # The signing key itself too: a --sign-key file not named <id>.json is no folder's listing, so the checks of
    # the folders above never saw it (a copy of COL-rcpt-2026a as COL-rcpt-2026b would pass as a newer key).
    refuse_one_key_two_ids([*(found for found, _ in held.values()), key], f"{partner}'s receipt keys")
    order = sorted(held.values(), key=lambda found: (found[0].created_at, found[0].key_id), reverse=True)
    order.sort(key=lambda found: found[0].secret is None)  # held whole first (``signers_first``)
    problem = signing_order_problem([found for found, _ in order])
    if problem is not None:  # the auditors order receipt keys by label: its receipts would not count
        raise KeyMaterialError(f"{partner}'s receipt keys: {problem}")
    newest, where = order[0]
    if newest.key_id != key.key_id:
        raise KeyMaterialError(
            f"--sign-key {one_line(str(sign_file))} is {key.key_id}, but {one_line(str(where))} is {newest.key_id}, a "
            f"newer generation of {partner}'s receipt key: receipts signed with an older one are a retired key in use "
            f"to the auditors and do not count; pass {one_line(str(where))} with --sign-key, or leave it out")
    own = {found.key_id: found.ed25519_public() for found, _ in order}
    own[key.key_id] = private.public_key()

    def sign(payload: bytes) -> bytes:
        return sign_checkpoint(private, payload)

    return ReceiptSigner(key.key_id, sign, checker(own), tuple(found.key_id for found, _ in order))


def _receipt_generations(partner: str, folders: Sequence[Path]) -> dict[str, tuple[KeyRecord, Path]]:
    """Every generation of ``partner``'s receipt key in ``folders``, by key id, with the file it was read from. One
    id held as two different keys is refused: which of them is the partner's, nothing here says. So is one public
    half under two ids (``refuse_one_key_two_ids``), in each folder across every key file of any kind and across
    the folders' receipt keys: one key under two generations' ids has one mistyped, and the receipts it signs
    rank by a label that is not the key's own."""
    held: dict[str, tuple[KeyRecord, Path]] = {}
    for folder in folders:
        Keystore(folder).refuse_one_key_two_ids()
        for found in Keystore(folder).generations(partner, KeyKind.PARTNER_SIGNING):
            path = folder / f"{found.key_id}.json"
            first, first_path = held.setdefault(found.key_id, (found, path))
            if first.public != found.public:
                raise KeyMaterialError(
                    f"{one_line(str(first_path))} and {one_line(str(path))} hold two different keys as "
                    f"{found.key_id}: keep {partner}'s own receipt key, compared with its fingerprint (`puente keys "
                    "export-public` prints it), and remove the other")
    refuse_one_key_two_ids([found for found, _ in held.values()], f"{partner}'s receipt keys in "
                           f"{' and '.join(str(folder) for folder in dict.fromkeys(folders))}")
    return held


def subscriber_for(settings: PuenteSettings, conn: KafkaConnection, partner_id: str, key_file: Path,
                   verify_files: Path | Sequence[Path] | None = None, sign_file: Path | None = None,
                   instance: str = DEFAULT_INSTANCE, store_path: Path | None = None,
                   accept_gaps: bool = False, skip: Collection[str] = ()) -> Subscriber:
    """A subscriber for ``partner_id`` as the policy and settings describe it, its keys checked first,
    applying its feed to the store at ``store_path`` (made when missing) with the retention of the
    partner's agreements. Close it (``Subscriber.close``) when done."""
    policy_set = load_policy_set(settings.policy_dir)
    partner = policy_set.partners.get(partner_id)
    if partner is None:
        raise ConfigError(f"unknown partner {partner_id[:40]!r}; known: {', '.join(sorted(policy_set.partners))}")
    if not INSTANCE.fullmatch(instance):
        raise ConfigError(INSTANCE_RULE)
    named = subscriber_instances(policy_set, partner.id)
    if instance not in named:
        raise ConfigError(f"subscriber instance {instance!r} is not among those partners.yaml names for {partner.id} "
                          f"({', '.join(named)}): start with one of them, or add it to {partner.id}'s `instances` in "
                          "partners.yaml of PUENTE_POLICY_DIR and have the operator run `puente acls apply`")
    names = TopicNames(settings.topic_prefix)
    opener = opener_for(partner.id, key_file, verify_files, partner.encryption_key_id)
    signer = receipt_signer(partner.id, key_file, sign_file)
    store = None if store_path is None else PartnerStore.open(
        store_path, partner.id, retention=Retention.for_partner(policy_set, partner.id))
    return Subscriber(conn, partner.id, names.feed(partner.feed_topic), names.receipts(partner.id), opener,
                      alert_codec(), instance=instance, signer=signer, store=store, accept_gaps=accept_gaps,
                      skip=skip)
