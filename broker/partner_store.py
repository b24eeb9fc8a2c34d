"""A partner's own store of the alerts it received: one SQLite file per partner.

What it keeps, one row per alert id: the version held, the view (JSON, as ``schemas.to_json``
gives it), when it was first and last received, the feed location of the record applied
(``topic:partition:offset``), the agreement the ``puente-agreement`` header names (for display
and retention: the record's associated data binds it, so once the record has opened it is the
broker's), the alert's ``markings.expires_at`` and ``markings.review_at`` (``due`` lists what is
held past its review date), whether a copy went beyond the store (``mark_passed_on``), and, once
the alert is recalled, a *tombstone*: version, reason and recall time, with the view deleted. Beside
the alerts it keeps what its subscriber needs to go on where it left off: feed offsets (with a mark of the record
before each one Kafka confirmed, so a topic made anew is not read on from the old one's offset), receipt chain
heads, and each generation of the broker's signing key that verified a record it took, with when it first
took one (``broker_keys_seen``: an older one signing long after a newer one was seen is a retired key's,
``broker.partner``).

Why SQLite (the standard library's ``sqlite3``), not JSON lines or DuckDB:

- **Transactions.** A feed batch is applied in one transaction that commits before the Kafka
  transaction holding the batch's receipts and offsets; a crash between the two redelivers the
  batch, which the outcomes kept with what was applied make harmless (below). JSON lines have no
  transactions at all.
- **Point lookups and deletes.** Every record is a lookup by alert id and an update in place; a
  recall deletes one alert's content. An append-only file can only be rewritten whole to forget
  one alert; DuckDB is built for scans over columns, not for many small keyed updates.
- **One file, no server.** The partner's people read it with ``puente store`` (or any SQLite
  tool) while the subscriber writes: the write-ahead log (WAL) lets readers read a consistent
  state without blocking the writer. Nothing listens on a port.
- **Forgetting for real.** ``PRAGMA secure_delete = ON`` makes SQLite overwrite deleted content
  with zeros, in the page that held it and in pages it frees; after a transaction that deleted
  content the WAL is checkpointed into the file and truncated (``wal_checkpoint(TRUNCATE)``), so
  neither the file nor its WAL holds a recalled alert's text any more. The deleting transaction
  also writes that a checkpoint is owed into the store (meta ``wipe-due``, cleared only by a
  checkpoint that completed): a process killed between its commit and its checkpoint leaves the
  old page in the file, and whichever process writes next (another subscriber instance sharing the
  file, reading the batch again) checkpoints before its own commit may vouch for the deletion.
  (What the disk itself keeps of overwritten blocks is the operating system's to handle: use
  full-disk encryption.)

The version rule, applied per alert id by :meth:`PartnerStore.apply` (decided by :func:`judge`):

    nothing held             a view is stored (RECEIVED); a recall notice leaves a tombstone (RECALLED)
    a view, version higher   replaces the one held (RECEIVED)
    a view, same version     nothing changes (DUPLICATE): at-least-once delivery sent it again
    older than what is held  ignored (SUPERSEDED)
    a recall notice          the content is deleted, the tombstone kept (RECALLED), unless a newer
                             view is held (SUPERSEDED); a recall of what is already recalled is
                             acknowledged again (RECALLED), since the partner holds none of it
    a view after a recall    refused (REFUSED) when the recall gave a reason (the originator withdrew
                             the alert for good); after a recall without a reason (the partner's
                             agreement stopped covering the alert) a higher version is the broker's
                             new decision that the partner is entitled again, and is stored (RECEIVED)
    a view sealed too long   not stored (EXPIRED) where it would be: sealed longer ago than its
    ago                      agreement's retention, it is a replay of what the partner had to delete
    a view already expired   not stored (EXPIRED) where it would be: its markings.expires_at has passed;
                             the text of an older version held goes too, and a content-free EXPIRED row
                             remembers the version, so a replay of an older one is SUPERSEDED, never
                             stored again (a higher version is taken as usual)
    a purged alert's         the same version again is EXPIRED, an older one SUPERSEDED: the purge leaves
    versions                 a content-free EXPIRED row (below); a higher version is EXPIRED too once the
                             retention has passed since the partner first received the alert

A record read again that the store applied past the feed offset Kafka last confirmed (its batch redelivered after
the Kafka transaction failed, or the process died between the two commits, or read again to catch the store up:
``broker.partner``) is not judged again: its first receipt was aborted, so it must get the outcome it first had,
and the version rule would judge it against what the records after it made of the alert's row (a recall followed
by a re-release of the same alert in one batch: judged again, the recall would be SUPERSEDED though the store
applied it, and auditors would see that recall overdue for good). So the transaction that applies a record also
keeps, by its feed place (topic, partition, offset), the outcome it got and the version held before it; the same
record read again gets both back and changes nothing. :meth:`PartnerStore.confirm_feed_offsets` drops them once
Kafka has committed the receipts: a record read after that (a feed rewound) is judged by the rule. The row's own
feed place says nothing of this, a later record may have overwritten it.

Retention (:meth:`PartnerStore.purge`): an alert's text is deleted once its ``markings.expires_at``
has passed, or once the retention of the agreement that delivered it has passed since the partner
first received it, or since the broker sealed what it first received if that is earlier (a partner
that reads its feed late keeps the alert no longer than the broker remembers that it holds it: the
broker's lifecycle state, through which a recall reaches the partner, lasts that retention from the
delivery; a correction does not extend how long the partner keeps what it first learnt; an
agreement the policy no longer names gets the shortest retention of the partner's agreements). The
sealing time is the record's verified key block's ``created_at`` (``Delivery.sealed_ms``), kept with
the alert (``sealed_ms``); a row stored before the store kept it (layout 5) counts from its first
receipt alone, as it did. What the purge leaves is a content-free EXPIRED row (``purged_ms`` set) that remembers the
version and when the partner first received the alert: the feed still holds the alert's genuine
records, and one written to it again (or read again after the partner rewinds its group) would
otherwise find nothing held and be stored anew, a superseded text or one past its retention back in
the store. Such rows, and tombstones, hold no content and are kept for the partner's longest retention
after the last version arrived (a copy may come under any of its agreements), and the sealing margin
(``SEALING_MARGIN_MS``) beyond it, so that a late copy of a purged or recalled version is still refused
until it is old enough to be refused as EXPIRED. Of an alert passed on (``mark_passed_on``) the purge keeps
the id for good once the row goes: the ``--out`` copy holds its text beyond the store's reach, so a recall
of it, however late it is read, is passed on, never acknowledged as though nothing were held.

Whose clock: every purge deletes for good, and what it leaves makes later copies EXPIRED, so it never goes by the
host's clock alone. The store keeps the latest time Kafka stamped on a record its subscriber wrote (``kafka_time``:
the append time of each batch's checkpoint, which the subscriber checks its clock against before the batch commits,
``broker.partner``), and a purge goes as of the host's clock but never past that time and the clock skew allowed
(``CLOCK_SKEW_MS``); a store that kept no such time yet (new, or kept by an earlier Puente) purges nothing. A host
clock running ahead then holds purges back (``Purged.deferred`` counts what it would have deleted) rather than
deleting everything held at one start, or at one ``puente store list`` (which never reaches Kafka). A quiet feed
brings no batch, so the subscriber then has Kafka vouch for a time with a checkpoint alone (``broker.partner``):
retention is a duty, and a purge held back waits for no feed record.

Files: the store is created 0600 in a folder made 0700 (``broker.keystore.private_folder``); one
that others may read, or whose folder others may write, is refused, as a key file is. SQLite
makes its ``-wal`` and ``-shm`` files with the store's own mode. Several processes may open one
store (subscriber instances of one partner, a person listing it): writers take turns through
SQLite's lock, waiting up to ``busy_timeout_s``, and each decision is taken inside the writer's
transaction, so the version rule holds whatever the order.

Errors: :class:`StoreError` (exit status 3: a file to check), :class:`StoreBusy` (another process
held the store too long; retriable), :class:`NotInStore` (exit status 1). Messages name files and
alert ids, never content.
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from broker.crypto.envelope import DEFAULT_MAX_AGE
from broker.keystore import Holder, holder_path
from broker.private_files import PrivateFile
from policies import PolicySet
from puente.errors import CodecError, NotInStore, StoreBusy, StoreError
from puente.strict import one_line
from schemas import to_json

STORE_FILE = "feed.sqlite"
WIPE_WAIT_MS = 200  # how long one checkpoint waits for readers to let go
# PRAGMA user_version of the layout below (1: without passed_on, 2: without review_ms, 3: without the EXPIRED
# state, 4: without purged_ms, 5: without sealed_ms, 6: without confirmed feed offsets, 7: without the outcomes of
# records applied past the confirmed offset; see _setup)
SCHEMA_VERSION = 8
MAX_VERSION = 1_000_000
RECALL = "RECALL"
HELD, RECALLED_STATE, EXPIRED_STATE = "HELD", "RECALLED", "EXPIRED"
_DAY_MS = 86_400_000
# How much earlier than its sealing a record's key-block time may be: a data key's lifetime
# (``broker.crypto.envelope.DEFAULT_MAX_AGE``) and 15 minutes of clock skew (see ``_too_old``). The skew is how far
# the broker's clock may run ahead of the partner's: a key block dated further ahead does not open
# (``broker.partner.future_key_block``).
CLOCK_SKEW_MS = 15 * 60_000
SEALING_MARGIN_MS = int(DEFAULT_MAX_AGE.total_seconds() * 1000) + CLOCK_SKEW_MS


class Outcome(StrEnum):
    """What applying one feed record did; it is the status of the partner's receipt for it."""

    RECEIVED = "RECEIVED"  # a new alert, or a newer version, stored
    DUPLICATE = "DUPLICATE"  # the version held, sent again: nothing changed
    SUPERSEDED = "SUPERSEDED"  # older than the version held: ignored
    RECALLED = "RECALLED"  # a recall notice: the content is deleted, the tombstone kept
    REFUSED = "REFUSED"  # a view of an alert its originator recalled for good: not stored
    EXPIRED = "EXPIRED"  # a view past its expires_at, or sealed longer ago than its retention: not stored


# What a record does to a text held, other than a replay of the record that stored it: deletes it (RECALLED, EXPIRED:
# ``_expired``) or replaces it (RECEIVED); the other outcomes leave it as it was.
_DROPS = frozenset({Outcome.RECEIVED, Outcome.RECALLED, Outcome.EXPIRED})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One opened feed record, as the store takes it (see :meth:`of`)."""

    alert_id: str
    alert_type: str
    version: int
    action: str | None  # lifecycle.action: None for a first version
    reason: str | None  # lifecycle.reason (recalls)
    feed: str  # topic:partition:offset
    agreement: str | None
    expires_ms: int | None
    view_json: str | None  # None for a recall notice: its (emptied) view is never stored
    sealed_ms: int | None = None  # when the broker's data key for it was made (its signed key block); None: unknown
    review_ms: int | None = None  # markings.review_at: when the partner must review its copy

    @property
    def recall(self) -> bool:
        return self.action == RECALL

    def expired(self, now: datetime) -> bool:
        """Whether its markings.expires_at has passed: purge would delete it at once, so it is never stored
        (its content would otherwise sit in the file until the next purge)."""
        return self.expires_ms is not None and self.expires_ms <= _ms(now)

    @classmethod
    def of(cls, view: Mapping[str, Any], feed: str, agreement: str | None,
           sealed_at: datetime | None = None) -> Delivery:
        """The delivery a decoded view makes; CodecError when its id, version or lifecycle cannot be
        acted on (the subscriber then rejects the record and stops before it). ``sealed_at``: the
        created_at of the record's verified key block, which the record was sealed at most an hour
        after (see :meth:`PartnerStore.apply`)."""
        alert_id, alert_type, version = view.get("alert_id"), view.get("alert_type"), view.get("version")
        if not isinstance(alert_id, str) or not alert_id or not isinstance(alert_type, str):
            raise CodecError("the view has no alert id or alert type")
        if not alert_id.isprintable():
            # No agency writes one (a line feed, a control or a bidi character): only a bad broker signature lets one
            # through, and kept, it would print as a row of its own wherever the store is read.
            raise CodecError(f"the view's alert id {one_line(alert_id[:200])} is not printable text on one line")
        if type(version) is not int or not 1 <= version <= MAX_VERSION:
            raise CodecError(f"the view of {alert_id[:200]} has no version between 1 and {MAX_VERSION:,}")
        life = view.get("lifecycle")
        if life is not None and not (isinstance(life, Mapping) and isinstance(life.get("action"), str)):
            raise CodecError(f"the view of {alert_id[:200]} has a lifecycle without an action")
        action = None if life is None else str(life["action"])
        reason = None if life is None or life.get("reason") is None else str(life["reason"])
        sealed_ms = None if sealed_at is None else _ms(sealed_at)
        if action == RECALL:
            return cls(alert_id, alert_type, version, action, reason, feed, agreement, None, None, sealed_ms)
        markings = view.get("markings")
        expires = markings.get("expires_at") if isinstance(markings, Mapping) else None
        review = markings.get("review_at") if isinstance(markings, Mapping) else None
        if expires is not None and not isinstance(expires, datetime):
            raise CodecError(f"the view of {alert_id[:200]} has an expiry that is not a time")
        if review is not None and not isinstance(review, datetime):
            raise CodecError(f"the view of {alert_id[:200]} has a review date that is not a time")
        text = json.dumps(to_json(dict(view)), ensure_ascii=False, separators=(",", ":"))
        return cls(alert_id, alert_type, version, action, reason, feed, agreement,
                   None if expires is None else _ms(expires), text, sealed_ms,
                   None if review is None else _ms(review))


@dataclass(frozen=True, slots=True)
class Held:
    """What the store holds of one alert, as far as the version rule needs it."""

    version: int
    recalled: bool
    final: bool  # recalled with a reason: withdrawn by its originator for good
    feed: str
    expired: bool = False  # content-free: this version arrived already expired, or its text was purged
    since_ms: int | None = None
    """When the retention of what the partner holds (or held) started: its first receipt, or when the broker
    sealed what it first received if earlier (``PartnerStore.purge``); None: no retention counts from it."""


def judge(held: Held | None, d: Delivery) -> Outcome:
    """The version rule (module docstring): what applying ``d`` over ``held`` does. Pure. A record the store applied
    already and reads again is not judged at all (``PartnerStore.apply`` gives back the outcome it kept): what the
    row holds now may be a later record's doing."""
    if held is None:
        return Outcome.RECALLED if d.recall else Outcome.RECEIVED
    if held.expired and not d.recall and d.version <= held.version:
        return Outcome.EXPIRED if d.version == held.version else Outcome.SUPERSEDED
    if d.recall:  # nothing held (recalled, or expired on arrival) is acknowledged whatever the version
        held_view = not held.recalled and not held.expired
        return Outcome.SUPERSEDED if held_view and held.version > d.version else Outcome.RECALLED
    if d.version < held.version:
        return Outcome.SUPERSEDED
    if held.recalled:
        return Outcome.REFUSED if held.final or d.version == held.version else Outcome.RECEIVED
    return Outcome.DUPLICATE if d.version == held.version else Outcome.RECEIVED


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one feed record, with the version the store held before it (None: nothing)."""

    alert_id: str
    version: int
    outcome: Outcome
    held_version: int | None
    passed_on: bool = False  # a copy of the alert went beyond the store before (``mark_passed_on``)
    dropped: bool = False
    """The store deleted or replaced the text it held of the alert (a recall, a newer version, one that arrived
    expired or past retention): a copy that went beyond it (``passed_on``) still holds that text."""
    holds_text: bool = False
    """The store holds this very version's text now, as applying it left the row (HELD, at this version: not
    purged, recalled, expired or replaced since). Only then may the view go beyond the store (``--out``): a record
    read again keeps its first outcome (RECEIVED, say) though a purge or a later record of its batch has deleted
    that text since, and a copy must not get back what the store had to delete."""


@dataclass(frozen=True)
class Retention:
    """How long a partner may keep an alert: days per agreement id, and for any other agreement."""

    days: Mapping[str, int]
    fallback_days: int

    @classmethod
    def for_partner(cls, policy_set: PolicySet, partner_id: str) -> Retention:
        """The retention of each agreement naming ``partner_id``; the shortest of them for an alert
        whose agreement the policy no longer names (none at all: such alerts are not kept)."""
        days = {a.id: a.retention_days for a in policy_set.agreements.values() if partner_id in a.partner_ids}
        return cls(days, min(days.values(), default=0))

    def of(self, agreement: str | None) -> int:
        """The days an alert delivered under ``agreement`` may be kept (the fallback for one not named)."""
        return self.days.get(agreement, self.fallback_days) if agreement is not None else self.fallback_days


PASSED_ON_LISTED = 50  # the most ids of purged alerts a --out copy holds that one purge names (``Purged.passed_on``)


@dataclass(frozen=True, slots=True)
class Purged:
    """What one purge deleted."""

    expired: int  # past markings.expires_at
    retention: int  # held longer than their agreement's retention
    tombstones: int  # tombstones past the same retention
    passed_on: tuple[str, ...] = ()
    """Of the alerts whose text went (expiry, retention), those a ``--out`` copy holds too (``mark_passed_on``), by
    id, at most ``PASSED_ON_LISTED``: that copy must delete them as well, and nothing but the subscriber's note tells
    its reader (retention is the agreement's, which no line of the copy states)."""
    passed_on_total: int = 0  # how many there were in all
    as_of: datetime | None = None
    """The time it purged as of: the caller's clock, but never past the latest time Kafka vouched for and the clock
    skew allowed (``PartnerStore.purge``); None when the store knows no such time yet, and nothing was purged."""
    deferred: int = 0
    """Alerts whose text the caller's clock says is past its expiry or retention, but not the time purged as of: kept
    until a time Kafka vouches for reaches them (or that clock is found wrong)."""

    @property
    def total(self) -> int:
        return self.expired + self.retention + self.tombstones


@dataclass(frozen=True, slots=True)
class Entry:
    """One alert as the partner's people see it: the version held, or the tombstone."""

    alert_id: str
    alert_type: str
    version: int
    state: str  # HELD, RECALLED, or EXPIRED (content-free: a version that arrived expired, or was purged)
    action: str | None
    first_received_at: datetime
    received_at: datetime
    feed: str
    agreement: str | None
    expires_at: datetime | None
    recall_reason: str | None
    recalled_at: datetime | None
    review_at: datetime | None  # markings.review_at of the version held
    view: dict[str, Any] | None  # only from show(), and only while held
    purged_at: datetime | None = None  # when the purge deleted its text (state EXPIRED)


@dataclass(frozen=True, slots=True)
class Counts:
    held: int
    recalled: int
    last_received_at: datetime | None
    expired: int = 0  # content-free rows of versions that arrived already expired
    purged: int = 0  # content-free rows of alerts whose text the purge deleted


def deferred_note(count: int, path: Path, partner: str, now: datetime, as_of: datetime | None, *,
                  running: bool = False) -> str:
    """What a person is told of ``count`` alerts a purge held back (``PartnerStore.purge``: ``Purged.deferred``):
    by the subscriber (``running``), or by ``puente store``, which never reaches Kafka."""
    since = ("Kafka has vouched for no time in this store yet" if as_of is None else
             f"nothing is purged past {_iso(as_of)}, the last time Kafka vouched for and {CLOCK_SKEW_MS // 60_000} "
             "minutes")
    who = "this run" if running else f"a run of `puente subscribe --partner {partner[:40]}`"
    return (f"{count} alert(s) in {path} are past their expiry or the agreement's retention by this host's clock "
            f"({_iso(now)}), but were not purged: {since}; {who} has Kafka vouch for the time (with a checkpoint of "
            "its own when the feed is quiet), and they go then (if this host's clock runs ahead, set it right: NTP)")


def default_store_path(keys: Path, partner_id: str) -> Path:
    """``<keys>/partners/<P>/feed.sqlite``: beside the partner's own keys and Kafka login, in the one
    folder (0700) that already holds what only the partner may read. The store is no key file
    (``Keystore`` reads ``*.json`` only); ``--store`` puts it elsewhere, e.g. on a data volume when
    the keys are mounted read-only."""
    return holder_path(keys, Holder.PARTNER, partner_id) / STORE_FILE


# The outcome of each record applied past the confirmed feed offset, by its feed place (``PartnerStore.apply``).
_APPLIED_TABLE = """
CREATE TABLE IF NOT EXISTS applied (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    at INTEGER NOT NULL,
    alert_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    recall INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    held_version INTEGER,
    dropped INTEGER NOT NULL,
    PRIMARY KEY (topic, part, at)
)
"""
_LAYOUT = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY NOT NULL,
    alert_type TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    state TEXT NOT NULL CHECK (state IN ('HELD', 'RECALLED', 'EXPIRED')),
    action TEXT,
    view TEXT,
    first_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    feed TEXT NOT NULL,
    agreement TEXT,
    expires_ms INTEGER,
    recall_reason TEXT,
    recalled_ms INTEGER,
    passed_on INTEGER NOT NULL DEFAULT 0,
    review_ms INTEGER,
    purged_ms INTEGER,
    sealed_ms INTEGER,
    CHECK ((state = 'HELD') = (view IS NOT NULL)),
    CHECK ((state = 'RECALLED') = (recalled_ms IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS alerts_by_received ON alerts (received_ms);
""" + _APPLIED_TABLE
_ALERT_COLUMNS = ("alert_id, alert_type, version, state, action, view, first_ms, received_ms, feed, agreement, "
                  "expires_ms, recall_reason, recalled_ms, passed_on, review_ms")  # layout 3's (purged_ms came in 5)
_CHAIN_KEY = "receipt-chain:"  # meta key prefix: the last committed checkpoint of a receipt chain
_FEED_KEY = "feed-offset:"  # meta key prefix: the next feed offset of a partition, as the store applied it
_CONFIRMED_KEY = "feed-confirmed:"  # meta key prefix: the same, once Kafka committed the batch's receipts
_MARK_KEY = "feed-mark:"  # meta key prefix: what identifies the record just before a partition's confirmed offset
_PARTIAL_KEY = "feed-partial:"  # meta key prefix: a partition this store took over mid-stream, and from where
_REREAD_KEY = "feed-reread:"  # meta key prefix: where a partition read again into a store missing it (a backup) ends
_CATCH_UP_KEY = "feed-catch-up:"  # meta key prefix: a partition read again to answer for what a crash left unreceipted
_ELSEWHERE_KEY = "recall-elsewhere:"  # meta key prefix: an alert whose recall this store could not acknowledge
_PASSED_KEY = "passed-on:"  # meta key prefix: an alert passed on (``mark_passed_on``) whose row the purge deleted
_BROKER_KEY = "broker-key"  # meta key: each broker signing key that verified a key block taken, first seen when
_WIPE_KEY = "wipe-due"  # meta key: content deleted since the last completed checkpoint may be in the files (``wipe``)
_KAFKA_TIME_KEY = "kafka-time"  # meta key: the latest time Kafka stamped on a record its subscriber wrote
_COLUMNS = ("alert_id, alert_type, version, state, action, first_ms, received_ms, feed, agreement, expires_ms, "
            "recall_reason, recalled_ms, review_ms, purged_ms")


class PartnerStore:
    """One partner's store file (module docstring). Open it with :meth:`open`; close it when done.

    Not for concurrent use from several threads; several processes may share the file.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, partner: str, retention: Retention | None) -> None:
        self._conn, self.path, self.partner, self.retention = conn, path, partner, retention
        self._wipe_due = False
        self.busy_timeout_ms = 30_000

    @classmethod
    def open(cls, path: Path, partner: str, *, create: bool = True, retention: Retention | None = None,
             busy_timeout_s: float = 30.0) -> PartnerStore:
        """The store at ``path`` for ``partner``: made (0600, folder 0700) when missing and ``create``;
        StoreError when it is another partner's, not a store, or readable by others."""
        path = Path(path)
        _PRIVATE.prepare(path, create=create, missing=f"no store for {partner} at {path}: run `puente subscribe "
                         f"--partner {partner}` first, or pass --store")
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise _translated(exc, path, "opening") from None
        store = cls(conn, path, partner, retention)
        store.busy_timeout_ms = int(busy_timeout_s * 1000)
        try:
            store._setup(create=create)
        except BaseException:
            conn.close()
            raise
        # A writer that crashed between its commit and the checkpoint left what it deleted in the WAL, and
        # only that process knew: every opening checkpoints before its first commit may vouch for a deletion.
        store._wipe_due = True
        return store

    def close(self) -> None:
        """Close the file, after one more try at wiping what was deleted (see :meth:`wipe`)."""
        try:
            if self._wipe_due:
                self.wipe()
        finally:
            self._conn.close()

    def __enter__(self) -> PartnerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self, *, create: bool) -> None:
        with self._sql("opening"):
            c = self._conn
            # Before WAL is switched on: a file that is no store is left exactly as it was.
            self._identify(create=create)
            mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            c.execute("PRAGMA secure_delete = ON")
            secure = c.execute("PRAGMA secure_delete").fetchone()[0]
            # FULL: a commit is on disk before the Kafka transaction commits the receipts that
            # vouch for it (a RECALLED receipt must never outlive the deletion it reports).
            c.execute("PRAGMA synchronous = FULL")
            c.execute("PRAGMA temp_store = MEMORY")  # no temporary file ever holds a view
            c.execute("PRAGMA trusted_schema = OFF")
            if str(mode).lower() != "wal" or secure != 1:
                raise StoreError(f"{self.path}: this SQLite cannot keep a store safely (WAL or secure_delete "
                                 "unavailable)")
            c.execute("BEGIN IMMEDIATE")
            try:
                # Again under the write lock: what another process made since is judged as it now is.
                version = self._identify(create=create)
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path} was written by a newer Puente (store layout {version}); "
                                     "upgrade Puente to read it")
                if version == 0:
                    for statement in _LAYOUT.split(";"):  # executescript would commit the transaction first
                        if statement.strip():
                            c.execute(statement)
                    c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('partner', ?)", (self.partner,))
                    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                if version == 1:
                    # No passed_on yet, though `subscribe --out` already copied views out: what an earlier run
                    # copied is not known, so every alert held counts as passed on (fails closed: a later recall
                    # of it is RECALL_PASSED_ON, never a RECALLED that a copy outside the store would belie).
                    c.execute("ALTER TABLE alerts ADD COLUMN passed_on INTEGER NOT NULL DEFAULT 0")
                    c.execute("UPDATE alerts SET passed_on = 1")
                    version = 2
                if version == 2:  # no review_ms yet: learnt from each alert's next version
                    c.execute("ALTER TABLE alerts ADD COLUMN review_ms INTEGER")
                    version = 3
                if version == 3:  # the state check without EXPIRED: SQLite changes a check only by a new table
                    c.execute("ALTER TABLE alerts RENAME TO alerts_layout3")
                    for statement in _LAYOUT.split(";"):
                        if statement.strip() and "alerts_by_received" not in statement:
                            c.execute(statement)
                    c.execute(f"INSERT INTO alerts ({_ALERT_COLUMNS}) "  # noqa: S608 - fixed text
                              f"SELECT {_ALERT_COLUMNS} FROM alerts_layout3")
                    c.execute("DROP TABLE alerts_layout3")  # secure_delete zeroes its pages; the WAL is wiped
                    c.execute("CREATE INDEX IF NOT EXISTS alerts_by_received ON alerts (received_ms)")
                    self._deleted()
                    version = 6  # the new table has purged_ms and sealed_ms already
                if version == 4:  # no purged_ms yet: every EXPIRED row so far arrived expired
                    c.execute("ALTER TABLE alerts ADD COLUMN purged_ms INTEGER")
                    version = 5
                if version == 5:  # no sealed_ms yet: the rows so far count their retention from the first receipt
                    c.execute("ALTER TABLE alerts ADD COLUMN sealed_ms INTEGER")
                    version = 6
                if version == 6:  # no confirmed feed offsets yet: the earlier rule trusted the applied ones
                    # A subscriber resumes from a confirmed offset when its group has none (``resume_at``); a store
                    # an earlier Puente kept resumed from its applied offset then, so that offset is taken as
                    # confirmed, rather than read from offset 0 (past retention, a gap for records it holds). Not
                    # one that confirms already (a Puente that confirmed before layout 7 said so): there an applied
                    # offset with none confirmed is a batch whose receipts Kafka never committed.
                    confirms = c.execute("SELECT 1 FROM meta WHERE key LIKE ? LIMIT 1", (f"{_CONFIRMED_KEY}%",))
                    if confirms.fetchone() is None:
                        c.execute("INSERT INTO meta (key, value) SELECT ? || substr(key, ?), value FROM meta "
                                  "WHERE key LIKE ?", (_CONFIRMED_KEY, len(_FEED_KEY) + 1, f"{_FEED_KEY}%"))
                    version = 7
                if version == 7:  # no outcomes kept of the records applied past the confirmed offset
                    # Layout 7 knew a record applied without a receipt Kafka committed by its row alone: one the
                    # row still names (its feed place, between the confirmed and applied offsets) read again got
                    # the status the row says it had. The version rule no longer infers that (``judge``), so each
                    # such place is kept as that rule would give it back (``_seed_applied``); every record applied
                    # from now on keeps its own outcome (``apply``).
                    c.execute(_APPLIED_TABLE)
                    self._seed_applied()
                    version = 8
                if c.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                # Who this store is, for the feed offsets its subscriber commits (``broker.partner.resume_at``):
                # a backup restored is the same store, another file another one.
                c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store-id', ?)", (uuid.uuid4().hex,))
                row = c.execute("SELECT value FROM meta WHERE key = 'partner'").fetchone()
                if row is None or row[0] != self.partner:
                    owner = "no partner" if row is None else f"partner {str(row[0])[:64]}"
                    raise StoreError(f"{self.path} is the store of {owner}, not of {self.partner}: pass that "
                                     "partner's own --store")
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

    def _seed_applied(self) -> None:
        """Keep, for a store of layout 7, the outcome of each record its rows name that was applied past the confirmed
        offset (its receipt aborted: Kafka's commit failed, or the process died between the two commits), as layout
        7's replay rule gave it: a row RECALLED says RECALLED, HELD RECEIVED, EXPIRED EXPIRED; no version held before
        it, nothing dropped (the text it dropped, if any, went then). Read again after the upgrade, the record gets
        that back, not a DUPLICATE or SUPERSEDED judged against its own row (a receipt that would never say the
        store applied it). In the caller's transaction. Offsets that do not read as numbers are left to
        ``feed_offset`` to report; no place is kept for them."""
        c = self._conn
        applied = {str(key)[len(_FEED_KEY):]: str(value) for key, value in c.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(_FEED_KEY), _FEED_KEY))}
        confirmed = {str(key)[len(_CONFIRMED_KEY):]: str(value) for key, value in c.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(_CONFIRMED_KEY), _CONFIRMED_KEY))}
        status = {"RECALLED": Outcome.RECALLED, "HELD": Outcome.RECEIVED, "EXPIRED": Outcome.EXPIRED}
        for alert_id, version, state, feed in c.execute("SELECT alert_id, version, state, feed FROM alerts").fetchall():
            try:
                topic, part, at = _place(str(feed), self.path)
            except StoreError:
                continue
            stored, since = applied.get(f"{topic}[{part}]"), confirmed.get(f"{topic}[{part}]", "0")
            numbers = re.compile(r"[0-9]{1,19}")
            if (stored is None or not numbers.fullmatch(stored) or not numbers.fullmatch(since)
                    or not int(since) <= at < int(stored) or state not in status or type(version) is not int):
                continue
            c.execute("INSERT OR IGNORE INTO applied (topic, part, at, alert_id, version, recall, outcome, "
                      "held_version, dropped) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)",
                      (topic, part, at, alert_id, version, state == "RECALLED", status[state].value))

    def _identify(self, *, create: bool) -> int:
        """The store layout (``PRAGMA user_version``) of the file; StoreError when it is no store. A layout of 0
        is a new store only when ``create`` and the database has no tables at all: an empty file opened to be
        read, or another SQLite file (the console accounts, an audit index), is refused, never laid out."""
        c = self._conn
        version = int(c.execute("PRAGMA user_version").fetchone()[0])
        tables = sorted(str(row[0]) for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        if version and {"meta", "alerts"} <= set(tables):
            return version
        if not tables and not version:
            if create:
                return 0
            raise StoreError(f"{self.path} is not a partner store (empty: no tables): check --store")
        named = ", ".join(t[:40] for t in tables[:4]) + (", ..." if len(tables) > 4 else "")
        held = f"tables {named}" if tables else "no tables"
        raise StoreError(f"{self.path} is not a partner store (an SQLite database with {held}): check --store")

    @contextmanager
    def _sql(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _translated(exc, self.path, doing) from None

    def chain_head(self, chain: str) -> tuple[int, str, int | None] | None:
        """The last checkpoint this store saw committed in receipt chain ``chain`` (its ``seq``, ``hash``
        and Kafka offset, None where an older Puente kept none), or None when it kept none (see
        :meth:`keep_chain_head`)."""
        with self._sql("reading the receipt chain's head"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (_CHAIN_KEY + chain,)).fetchone()
        if row is None:
            return None
        try:
            doc = json.loads(row[0])
            seq, digest, offset = doc["seq"], doc["hash"], doc.get("offset")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StoreError(f"{self.path}: the kept head of receipt chain {chain[:200]} is damaged") from None
        if type(seq) is not int or not isinstance(digest, str) or not (offset is None or type(offset) is int):
            raise StoreError(f"{self.path}: the kept head of receipt chain {chain[:200]} is damaged")
        return seq, digest, offset

    def keep_chain_head(self, chain: str, seq: int, digest: str, offset: int | None = None) -> None:
        """Remember the checkpoint ``seq``/``digest`` of receipt chain ``chain``, and where Kafka holds it
        (``offset``), once its Kafka transaction has committed. A subscriber then refuses to extend an
        older checkpoint that someone replayed after it, or a copy of this one: the chain would fork (see
        ``broker.partner``)."""
        value = json.dumps({"seq": seq, "hash": digest, "offset": offset})
        with self._sql("keeping the receipt chain's head"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (_CHAIN_KEY + chain, value))

    @property
    def store_id(self) -> str:
        """This store's own random id (32 hex digits), made when it was created or first opened by a Puente that
        names stores: a copy restored from a backup keeps it, another store file has its own."""
        with self._sql("reading the store's id"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'store-id'").fetchone()
        if row is None or not re.fullmatch(r"[0-9a-f]{32}", str(row[0])):
            raise StoreError(f"{self.path}: the store's id is damaged")
        return str(row[0])

    def feed_offset(self, topic: str, partition: int, *, confirmed: bool = False) -> int | None:
        """The offset of the next record of feed partition ``topic[partition]`` this store has not applied (one
        past the last it applied, as :meth:`keep_feed_offsets` noted it), or None when it noted none. With
        ``confirmed``, the same as far as Kafka is known to have committed the receipts of what was applied
        (:meth:`confirm_feed_offsets`): never past the applied offset."""
        with self._sql("reading the feed offsets"):
            rows = dict(self._conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)",
                                           (f"{_FEED_KEY}{topic}[{partition}]",
                                            f"{_CONFIRMED_KEY}{topic}[{partition}]")).fetchall())
        found: list[int] = []
        for prefix in (_FEED_KEY, _CONFIRMED_KEY) if confirmed else (_FEED_KEY,):
            value = rows.get(f"{prefix}{topic}[{partition}]")
            if value is None:
                return None
            if not re.fullmatch(r"[0-9]{1,19}", str(value)):
                raise StoreError(f"{self.path}: the kept offset of feed partition {topic[:200]}[{partition}] is "
                                 "damaged")
            found.append(int(value))
        return min(found)

    def confirmed_feed_offsets(self, topic: str) -> dict[int, int]:
        """Every partition of feed ``topic`` this store confirmed an offset of, with that offset as
        :meth:`feed_offset` gives it (``confirmed``)."""
        key = f"{_CONFIRMED_KEY}{topic}["
        with self._sql("reading the feed offsets"):
            rows = self._conn.execute("SELECT key FROM meta WHERE substr(key, 1, ?) = ?", (len(key), key)).fetchall()
        found: dict[int, int] = {}
        for (name,) in rows:
            part = str(name)[len(key):-1]
            if re.fullmatch(r"[0-9]{1,9}", part) and str(name).endswith("]"):
                at = self.feed_offset(topic, int(part), confirmed=True)
                if at is not None:
                    found[int(part)] = at
        return found

    def keep_feed_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Note, for each feed partition (topic, partition), the offset of the next record not yet applied: in the
        transaction that applied the records before it, so the two cannot part. A subscriber resumes from here
        when the group's committed offset is further on (``broker.partner.resume_at``): the store was restored
        from a backup, say, and the records in between were applied to a copy that is gone."""
        rows = [(f"{_FEED_KEY}{topic}[{partition}]", str(at)) for (topic, partition), at in offsets.items()]
        with self._sql("keeping the feed offsets"):
            self._conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", rows)

    def confirm_feed_offsets(self, offsets: Mapping[tuple[str, int], int],
                             marks: Mapping[tuple[str, int], str | None] | None = None) -> None:
        """Note, after a batch's Kafka transaction committed its receipts and the group's offsets, the feed offsets
        it committed (:meth:`keep_feed_offsets` noted them before, with what was applied). The store commits its
        batch first: a crash before Kafka's commit leaves the applied offsets ahead of what any receipt covers,
        and where the group has no offset of its own a subscriber resumes from the confirmed one, never past
        records whose receipts were aborted (``broker.partner.resume_at``).

        ``marks``: for a partition, what identifies the record just before its offset (``broker.partner.record_mark``;
        None: there was none, a gap read past), noted with the offset in one transaction (:meth:`feed_mark`). Kafka
        drops a deleted topic's committed offsets: the subscriber then resumes from the confirmed offset, and
        checks by the mark that the topic there is still the one the store read, not one made anew."""
        rows = [(f"{_CONFIRMED_KEY}{topic}[{partition}]", str(at)) for (topic, partition), at in offsets.items()]
        rows += [(f"{_MARK_KEY}{topic}[{partition}]", json.dumps({"offset": offsets[topic, partition] - 1,
                                                                  "sha256": mark}))
                 for (topic, partition), mark in (marks or {}).items() if (topic, partition) in offsets]
        with self._sql("confirming the feed offsets"), ExitStack() as stack:
            if not self._conn.in_transaction:  # an offset and its mark are never kept apart
                stack.enter_context(self.transaction())
            self._conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", rows)
            # Their receipts committed: a record before the offset read again is judged by the rule (``apply``).
            self._conn.executemany("DELETE FROM applied WHERE topic = ? AND part = ? AND at < ?",
                                   [(topic, partition, at) for (topic, partition), at in offsets.items()])
            for (topic, partition), at in offsets.items():  # a catch-up ends once Kafka committed past its end
                kept = self.catch_up(topic, partition)
                if kept is not None and at >= kept[1]:
                    self.end_catch_up(topic, partition)
                reread = self.reread(topic, partition)
                if reread is not None and at >= reread:  # and a re-read, once Kafka committed past its end
                    self.end_reread(topic, partition)

    def forget_applied(self, topic: str, partition: int) -> None:
        """Forget the outcomes kept of records of ``topic[partition]`` applied past the confirmed offset (``apply``),
        in the caller's transaction: the partition is read from elsewhere on (a feed topic made anew), whose records
        at those places are others."""
        with self._sql("forgetting the records applied"):
            self._conn.execute("DELETE FROM applied WHERE topic = ? AND part = ?", (topic, partition))

    def applied_unconfirmed(self, topic: str, partition: int) -> int | None:
        """The offset of the earliest record of feed partition ``topic[partition]`` that this store applied past its
        confirmed offset (:meth:`confirm_feed_offsets`; past none, when it confirmed none there) and that a row still
        names (its ``feed``), or whose outcome it kept (``apply``: a later record may have overwritten its row), or
        None when there is none. Such a record's receipt was aborted with its Kafka transaction (killed between the
        two commits): no receipt names this store as holding what it applied
        (``broker.partner.Subscriber._resume``). Reads the partition's rows only when the two offsets differ."""
        stored = self.feed_offset(topic, partition)
        confirmed = self.feed_offset(topic, partition, confirmed=True)
        if stored is None or (confirmed is not None and confirmed >= stored):
            return None
        since = 0 if confirmed is None else confirmed
        prefix = f"{topic}:{partition}:"
        with self._sql("reading the feed offsets"):
            rows = self._conn.execute("SELECT feed FROM alerts WHERE substr(feed, 1, ?) = ?",
                                      (len(prefix), prefix)).fetchall()
            kept = self._conn.execute("SELECT at FROM applied WHERE topic = ? AND part = ? AND at >= ? AND at < ?",
                                      (topic, partition, since, stored)).fetchall()
        offsets = [int(tail) for tail in (str(feed)[len(prefix):] for (feed,) in rows)
                   if re.fullmatch(r"[0-9]{1,19}", tail)]
        offsets += [at for (at,) in kept if type(at) is int]
        found = [at for at in offsets if since <= at < stored]
        return min(found) if found else None

    def has_row(self, alert_id: str) -> bool:
        """Whether the store holds, or remembers having held, anything of ``alert_id`` (a view, a tombstone, a
        version whose text was purged, or the mark of a copy passed on whose row the purge forgot); not the tombstone
        of a recall it took without ever holding the alert, on a partition it took over (``mark_held_elsewhere``):
        that alert is another store's."""
        with self._sql("reading the alerts"):
            if self._conn.execute("SELECT 1 FROM meta WHERE key = ?", (f"{_PASSED_KEY}{alert_id}",)).fetchone():
                return True
            return (self._conn.execute("SELECT 1 FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone() is not None
                    and not self.held_elsewhere(alert_id))

    def catch_up(self, topic: str, partition: int) -> tuple[int, int] | None:
        """The catch-up under way in feed partition ``topic[partition]`` (:meth:`keep_catch_up`): the offset it reads
        from and the one it ends at, or None. A value kept that is not such a pair is a StoreError."""
        with self._sql("reading the feed offsets"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                     (f"{_CATCH_UP_KEY}{topic}[{partition}]",)).fetchone()
        if row is None:
            return None
        try:
            doc = json.loads(row[0])
        except (ValueError, TypeError):
            doc = None
        start, end = (doc.get("from"), doc.get("to")) if isinstance(doc, dict) else (None, None)
        if type(start) is not int or type(end) is not int or not 0 <= start < end < 1 << 63:
            raise StoreError(f"{self.path}: the kept catch-up of feed partition {topic[:200]}[{partition}] is damaged")
        return start, end

    def keep_catch_up(self, topic: str, partition: int, start: int, end: int) -> None:
        """Remember that feed partition ``topic[partition]`` is read again from ``start`` up to ``end`` (the group's
        offset, which another store's subscriber committed) so that this store answers for what it applied without
        a receipt (``broker.partner.Subscriber._resume``): until a confirmed offset reaches ``end``
        (:meth:`confirm_feed_offsets` then ends it) or :meth:`end_catch_up`, across restarts."""
        with self._sql("keeping a catch-up"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               (f"{_CATCH_UP_KEY}{topic}[{partition}]", json.dumps({"from": start, "to": end})))

    def end_catch_up(self, topic: str, partition: int) -> None:
        """Forget the catch-up of ``topic[partition]`` (the partition is read from elsewhere: a topic made anew)."""
        with self._sql("ending a catch-up"):
            self._conn.execute("DELETE FROM meta WHERE key = ?", (f"{_CATCH_UP_KEY}{topic}[{partition}]",))

    def reread(self, topic: str, partition: int) -> int | None:
        """Where the records of feed partition ``topic[partition]`` this store is reading again, missing them (a backup
        restored: :meth:`keep_reread`), end, or None. A value kept that is no offset is a StoreError."""
        with self._sql("reading the feed offsets"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                     (f"{_REREAD_KEY}{topic}[{partition}]",)).fetchone()
        if row is None:
            return None
        try:
            end = json.loads(row[0])
        except (ValueError, TypeError):
            end = None
        if type(end) is not int or not 0 < end < 1 << 63:
            raise StoreError(f"{self.path}: the kept re-read of feed partition {topic[:200]}[{partition}] is damaged")
        return end

    def keep_reread(self, topic: str, partition: int, end: int) -> None:
        """Remember that the records of feed partition ``topic[partition]`` before ``end`` are read again into this
        store, which misses them (restored from a backup, or another store of its instance read them): an earlier run
        may have copied any of them to ``--out``, so each one applied is marked passed on
        (``broker.partner.Subscriber._handle``). Kept, not only in memory, because a re-read spans batches and a
        restart or rebalance partway through must go on marking: by then the store's own offset has moved on and
        nothing else tells the rest from this run's own records. Never moved back (the larger end is kept); ends once
        a confirmed offset reaches it (:meth:`confirm_feed_offsets`) or :meth:`end_reread`."""
        kept = self.reread(topic, partition)
        with self._sql("keeping a re-read"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               (f"{_REREAD_KEY}{topic}[{partition}]", json.dumps(max(end, kept or 0))))

    def end_reread(self, topic: str, partition: int) -> None:
        """Forget the re-read of ``topic[partition]`` (the topic was made anew: its offsets are another topic's)."""
        with self._sql("ending a re-read"):
            self._conn.execute("DELETE FROM meta WHERE key = ?", (f"{_REREAD_KEY}{topic}[{partition}]",))

    def feed_mark(self, topic: str, partition: int) -> tuple[int, str | None] | None:
        """What identifies the record of ``topic[partition]`` that the store read last before a confirmed offset
        (:meth:`confirm_feed_offsets`): its offset and the digest the subscriber made of it
        (``broker.partner.record_mark``; None: the partition held no record there, a gap read past), or None when
        none was kept (a store an earlier Puente kept). The mark of an older confirmed offset than the one kept
        (an earlier Puente confirmed on without one) names an offset other than the one just before it: the
        caller compares the two. A value kept that is not such a mark is a StoreError."""
        key = f"{_MARK_KEY}{topic}[{partition}]"
        with self._sql("reading the feed offsets"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        damaged = StoreError(f"{self.path}: the kept mark of feed partition {topic[:200]}[{partition}] is damaged")
        try:
            doc = json.loads(row[0])
        except (ValueError, TypeError):
            raise damaged from None
        offset, digest = (doc.get("offset"), doc.get("sha256")) if isinstance(doc, dict) else (None, None)
        if type(offset) is not int or not -1 <= offset < 1 << 63 or not (
                digest is None or (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest))):
            raise damaged
        return offset, digest

    def note_taken_over(self, topic: str, partition: int, at: int) -> None:
        """Remember for good that this store read feed partition ``topic[partition]`` from offset ``at`` on after
        another store had read what came before (a partition handed over by another subscriber instance, or the
        group's offsets committed under another ``--instance``). Alerts delivered there before ``at`` are in that
        store, not this one: a recall of one this store never held is not this store's to acknowledge
        (``taken_over``). The first offset noted stays."""
        with self._sql("noting a feed partition taken over"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                               (f"{_PARTIAL_KEY}{topic}[{partition}]", str(at)))

    def broker_keys_seen(self) -> dict[str, int]:
        """Every generation of the broker's signing key that verified a feed key block this store's subscriber
        accepted, by key id, and when the subscriber first accepted one (milliseconds since 1970, by the subscriber's
        own clock, never the block's); empty before any (:meth:`keep_broker_keys_seen`). A key block of an older
        generation made long after a newer one was first seen is a retired key's
        (``broker.partner.retired_broker_key``). A value kept that is not that map is a StoreError: the refusals it
        stands for are never forgotten silently."""
        with self._sql("reading the broker's signing keys seen"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (_BROKER_KEY,)).fetchone()
        if row is None:
            return {}
        damaged = StoreError(f"{self.path}: the kept broker signing keys seen (meta {_BROKER_KEY!r}) are damaged")
        try:
            doc = json.loads(row[0])
        except ValueError:
            raise damaged from None
        seen = doc.get("first_seen") if isinstance(doc, dict) else None
        if not isinstance(seen, dict) or not all(
                isinstance(key_id, str) and key_id and type(ms) is int for key_id, ms in seen.items()):
            raise damaged
        return seen

    def keep_broker_keys_seen(self, first_seen: Mapping[str, int]) -> None:
        """Remember ``first_seen`` as :meth:`broker_keys_seen`, in the caller's transaction: with the records whose
        key blocks those keys verified, so neither a restart nor a batch rolled back parts the two."""
        value = json.dumps({"first_seen": dict(sorted(first_seen.items()))})
        with self._sql("keeping the broker's signing keys seen"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (_BROKER_KEY, value))

    def held_elsewhere(self, alert_id: str) -> bool:
        """Whether a recall of ``alert_id`` was found to be another store's to acknowledge (``mark_held_elsewhere``),
        and this store has taken no view of it since."""
        with self._sql("reading the alerts held elsewhere"):
            return self._conn.execute("SELECT 1 FROM meta WHERE key = ?",
                                      (f"{_ELSEWHERE_KEY}{alert_id}",)).fetchone() is not None

    def mark_held_elsewhere(self, alert_id: str) -> None:
        """Remember, in the caller's transaction, that ``alert_id`` was recalled here without this store ever
        holding it, on a partition taken over from another store: the same record read again, or a second recall,
        must not acknowledge it either. A view of it this store takes later ends the mark (``_write``); the purge
        drops the marks of alerts it forgets."""
        with self._sql("marking an alert held elsewhere"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING",
                               (f"{_ELSEWHERE_KEY}{alert_id}",))

    def taken_over(self, topic: str, partition: int) -> bool:
        """Whether this store ever read ``topic[partition]`` from where another store left it (``note_taken_over``)."""
        with self._sql("reading the feed offsets"):
            return self._conn.execute("SELECT 1 FROM meta WHERE key = ?",
                                      (f"{_PARTIAL_KEY}{topic}[{partition}]",)).fetchone() is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE: the write lock is taken before anything is read, so
        each decision sees what the last writer committed). Commits on leaving, rolls back on an
        error. Content deleted inside it is wiped from the file after the commit (:meth:`wipe`)."""
        if self._conn.in_transaction:
            raise StoreError(f"{self.path}: a store transaction is already open")
        due_before = self._wipe_due
        with self._sql("starting a transaction"):
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            with self._sql("starting a transaction"):
                # Another connection's deletion whose checkpoint never completed (its process died between the
                # two): what this transaction commits may vouch for it (a recall read again), so this one
                # checkpoints too. Read under the write lock: no deletion commits between this and our commit.
                if self._conn.execute("SELECT 1 FROM meta WHERE key = ?", (_WIPE_KEY,)).fetchall():
                    self._wipe_due = True
            yield
        except BaseException:
            if self._conn.in_transaction:
                with self._sql("rolling back"):
                    self._conn.execute("ROLLBACK")
            self._wipe_due = due_before  # what this transaction deleted is back: nothing new to wipe
            raise
        with self._sql("committing"):
            self._conn.execute("COMMIT")
        if self._wipe_due:
            self.wipe()

    def wipe(self) -> bool:
        """Checkpoint the WAL into the store and truncate it, so deleted content is gone from both
        files; False when a reader kept it from completing (it is tried again after the next commit
        and on closing).

        A completed checkpoint also ends the obligation the deleting transaction wrote into the store (``_deleted``),
        but only the one read before it: a deletion another connection committed meanwhile wrote a token of its own,
        which stays for the next transaction to checkpoint again."""
        with self._sql("checkpointing"):
            # A reader blocks it for as long as it reads: do not wait the write lock's whole timeout.
            self._conn.execute(f"PRAGMA busy_timeout = {WIPE_WAIT_MS}")
            try:
                owed = self._conn.execute("SELECT value FROM meta WHERE key = ?", (_WIPE_KEY,)).fetchall()
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy and owed:
                    try:
                        self._conn.execute("DELETE FROM meta WHERE key = ? AND value = ?", (_WIPE_KEY, owed[0][0]))
                    except sqlite3.OperationalError as exc:  # another writer holds the lock: the mark stays, and
                        if "locked" not in str(exc) and "busy" not in str(exc):  # the next one checkpoints again
                            raise
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        self._wipe_due = bool(busy)
        return not busy

    def _deleted(self) -> None:
        """Note, in the transaction that deletes or replaces content, that the WAL must be checkpointed before
        anything committed after it vouches for the deletion: in this connection, and in the store itself
        (``_WIPE_KEY``), since a process killed between its commit and its checkpoint takes its own note with it,
        and another that has the file open already (a subscriber instance sharing it) would read the batch again,
        write nothing (a record already applied) and acknowledge a recall whose text the file still holds. A
        token of its own per transaction, so a checkpoint clears only what it covered (``wipe``)."""
        self._wipe_due = True
        self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                           "value = excluded.value", (_WIPE_KEY, uuid.uuid4().hex))

    @property
    def wipe_pending(self) -> bool:
        """Deleted content may still be in the WAL: a checkpoint did not complete yet."""
        return self._wipe_due

    def apply(self, d: Delivery, now: datetime) -> Applied:
        """Apply one feed record by the version rule; inside the caller's transaction, or in its own.

        A record this store applied already past the confirmed feed offset (its receipt aborted with its Kafka
        transaction, the same feed place read again) gets back the outcome, version held and ``dropped`` it first
        had, as kept with it (module docstring), and changes nothing: never judged again against what later records
        made of the row. ``passed_on`` and ``holds_text`` are read as the store stands: a copy that went out since
        still holds the alert, and a text purged or recalled since is not held, whatever the outcome kept."""
        if not self._conn.in_transaction:
            with self.transaction():
                return self.apply(d, now)
        place = _place(d.feed, self.path)
        with self._sql("applying a feed record"):
            row = self._conn.execute(
                "SELECT version, state, recall_reason, feed, passed_on, MIN(first_ms, COALESCE(sealed_ms, first_ms)), "
                "purged_ms FROM alerts WHERE alert_id = ?", (d.alert_id,)).fetchone()
            # A copy went out before, though the purge deleted the row that said so (the alert may have been stored
            # anew since): the mark outlives the row.
            passed = (row is not None and bool(row[4])) or self._conn.execute(
                "SELECT 1 FROM meta WHERE key = ?", (_PASSED_KEY + d.alert_id,)).fetchone() is not None
            kept = self._kept_outcome(place, d)
            if kept is not None:  # nothing changes: the row as it stands says whether this version's text is held
                outcome, held_version, dropped = kept
                holds = (not d.recall and row is not None and row[1] == "HELD" and type(row[0]) is int
                         and row[0] == d.version)
                return Applied(d.alert_id, d.version, outcome, held_version, passed, dropped, holds)
            held = None if row is None else _held(row, _Row(self.path, d.alert_id))
            outcome = judge(held, d)
            text_held = held is not None and not held.recalled and not held.expired
            now_ms = _ms(now)
            if outcome is Outcome.RECEIVED and (self._too_old(d, now_ms) or d.expired(now)
                                                or self._kept_too_long(held, d, now_ms)):
                outcome = Outcome.EXPIRED
                if d.expired(now) or held is not None:
                    # The originator says this version has expired: an older text held goes too, and a
                    # content-free row remembers the version (over a tombstone without reason too, which
                    # this newer version supersedes), so a replay of an older one is never stored.
                    self._expired(held, d, _ms(now))
            else:
                self._write(held, d, outcome, _ms(now))
            dropped = text_held and outcome in _DROPS
            held_version = None if held is None else held.version
            self._conn.execute(
                "INSERT INTO applied (topic, part, at, alert_id, version, recall, outcome, held_version, dropped) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (topic, part, at) DO UPDATE SET "
                "alert_id = excluded.alert_id, version = excluded.version, recall = excluded.recall, "
                "outcome = excluded.outcome, held_version = excluded.held_version, dropped = excluded.dropped",
                (*place, d.alert_id, d.version, d.recall, outcome.value, held_version, dropped))
        return Applied(d.alert_id, d.version, outcome, held_version, passed, dropped, outcome is Outcome.RECEIVED)

    def _kept_outcome(self, place: tuple[str, int, int], d: Delivery) -> tuple[Outcome, int | None, bool] | None:
        """What applying the record at ``place`` gave when this store applied it past the confirmed offset (outcome,
        version held before it, whether it dropped the text held), or None when it kept nothing there, in the
        caller's transaction. What is kept there of another record (another alert or version: a feed topic made
        anew whose offsets the store was not told of) is not this one's: dropped, and the record judged. A value
        that is not what ``apply`` writes is a StoreError."""
        found = self._conn.execute("SELECT alert_id, version, recall, outcome, held_version, dropped FROM applied "
                                   "WHERE topic = ? AND part = ? AND at = ?", place).fetchone()
        if found is None:
            return None
        alert_id, version, recall, outcome, held_version, dropped = found
        if (alert_id, version, recall) != (d.alert_id, d.version, int(d.recall)):
            self._conn.execute("DELETE FROM applied WHERE topic = ? AND part = ? AND at = ?", place)
            return None
        if outcome not in Outcome.__members__ or type(dropped) is not int or not (
                held_version is None or (type(held_version) is int and 1 <= held_version <= MAX_VERSION)):
            raise StoreError(f"{self.path}: the kept outcome of feed record {d.feed[:300]} is damaged; restore the "
                             "store from a backup")
        return Outcome(outcome), held_version, bool(dropped)

    def mark_passed_on(self, alert_id: str) -> None:
        """Remember that a copy of ``alert_id`` went beyond the store (``puente subscribe --out``), inside
        the caller's transaction: a later recall, whatever run receives it, is then passed on, never
        acknowledged, since no one can take that copy back. The mark stays with the tombstone, and outlives the
        row: when the purge deletes it, the alert's id is kept for good (``purge``)."""
        with self._sql("marking an alert passed on"):
            self._conn.execute("UPDATE alerts SET passed_on = 1 WHERE alert_id = ?", (alert_id,))

    def _too_old(self, d: Delivery, now_ms: int) -> bool:
        """Whether ``d`` was sealed longer ago than its agreement lets the partner keep an alert.

        The rule: a partner keeps an alert for its agreement's retention from when it first received
        it, and never past that retention counted from when the broker sealed it. A view that arrives
        later than that is not stored: a genuine old record written to the feed again after the store
        purged the alert (or, after a recall, its tombstone) would otherwise be stored anew, content
        the partner had to delete. The feed topic keeps records for about the partner's shortest
        retention (Kafka deletes whole segments, so a little longer), so only a replay or a very late
        reader meets this. The sealing time is the verified key block's created_at, up to a data
        key's lifetime (an hour) before the record was sealed: that and a clock-skew allowance are
        added, so a record sealed within the retention is never refused. The agreement is the
        broker's (the record's associated data binds it). What is stored, :meth:`purge` deletes at that
        retention from the key block's time itself (or from the first receipt, if earlier): up to that
        margin early, never late."""
        r = self.retention
        if r is None or d.sealed_ms is None:
            return False
        days = r.of(d.agreement)
        return now_ms - d.sealed_ms > days * _DAY_MS + SEALING_MARGIN_MS

    def _kept_too_long(self, held: Held | None, d: Delivery, now_ms: int) -> bool:
        """Whether a later version of what the partner held comes after the retention since it first received
        the alert (or since the broker sealed it, if earlier: ``Held.since_ms``): a correction does not extend
        how long the partner keeps what it first learnt, so it is not stored (the purge would delete it at once,
        or has already deleted what it corrects)."""
        r = self.retention
        if r is None or held is None or held.since_ms is None:
            return False
        days = r.of(d.agreement)
        return now_ms - held.since_ms >= days * _DAY_MS

    def _expired(self, held: Held | None, d: Delivery, now_ms: int) -> None:
        c = self._conn
        if held is None:
            c.execute("INSERT INTO alerts (alert_id, alert_type, version, state, action, view, first_ms, received_ms, "
                      "feed, agreement, expires_ms) VALUES (?, ?, ?, 'EXPIRED', ?, NULL, ?, ?, ?, ?, ?)",
                      (d.alert_id, d.alert_type, d.version, d.action, now_ms, now_ms, d.feed, d.agreement,
                       d.expires_ms))
            return
        # A text held goes now, as a purge's would: the row is a purged one (retention still counts from the first
        # receipt); over a row already without text, it stays what it was. Over a tombstone the recall ended a
        # holding: the row starts another, as a view would (``_write``), so a later view of it is not held to the
        # retention of what the partner held before the recall. No sealing time: this version's (one sealed too
        # long ago, perhaps) is not what the partner holds; the first view stored gives it, as over nothing.
        ended = held.recalled
        c.execute("UPDATE alerts SET view = NULL, state = 'EXPIRED', version = ?, action = ?, received_ms = ?, "
                  "feed = ?, agreement = COALESCE(?, agreement), expires_ms = ?, review_ms = NULL, "
                  "recall_reason = NULL, recalled_ms = NULL, "
                  "first_ms = CASE WHEN ? THEN ? ELSE first_ms END, "
                  "sealed_ms = CASE WHEN ? THEN NULL ELSE sealed_ms END, "
                  "purged_ms = CASE WHEN state = 'HELD' THEN ? ELSE purged_ms END WHERE alert_id = ?",
                  (d.version, d.action, now_ms, d.feed, d.agreement, d.expires_ms, ended, now_ms, ended,
                   now_ms, d.alert_id))
        self._deleted()  # secure_delete zeroed the text held; wipe() clears the WAL

    def _write(self, held: Held | None, d: Delivery, outcome: Outcome, now_ms: int) -> None:
        c = self._conn
        if outcome is Outcome.RECEIVED:
            c.execute("DELETE FROM meta WHERE key = ?", (f"{_ELSEWHERE_KEY}{d.alert_id}",))  # held here from now on
            fresh = held is None or held.recalled  # a holding starts again after a recall without reason
            if held is not None and not held.recalled and not held.expired:
                self._deleted()  # the text replaced, a correction's reason to be, goes from the file too
            # The sealing time kept is that of what the partner first received in this holding (the earliest), or,
            # when that one came without it, of the first version that had one.
            c.execute(
                "INSERT INTO alerts (alert_id, alert_type, version, state, action, view, first_ms, received_ms, "
                "feed, agreement, expires_ms, review_ms, sealed_ms) "
                "VALUES (?, ?, ?, 'HELD', ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (alert_id) DO UPDATE SET alert_type = excluded.alert_type, version = excluded.version, "
                "state = 'HELD', action = excluded.action, view = excluded.view, "
                "first_ms = CASE WHEN ? THEN excluded.first_ms ELSE first_ms END, "
                "sealed_ms = CASE WHEN ? THEN excluded.sealed_ms ELSE COALESCE(sealed_ms, excluded.sealed_ms) END, "
                "received_ms = excluded.received_ms, feed = excluded.feed, agreement = excluded.agreement, "
                "expires_ms = excluded.expires_ms, review_ms = excluded.review_ms, recall_reason = NULL, "
                "recalled_ms = NULL, purged_ms = NULL",
                (d.alert_id, d.alert_type, d.version, d.action, d.view_json, now_ms, now_ms, d.feed, d.agreement,
                 d.expires_ms, d.review_ms, d.sealed_ms, fresh, fresh))
        elif outcome is Outcome.RECALLED:
            if held is None:
                c.execute(
                    "INSERT INTO alerts (alert_id, alert_type, version, state, action, view, first_ms, received_ms, "
                    "feed, agreement, recall_reason, recalled_ms) VALUES (?, ?, ?, 'RECALLED', ?, NULL, ?, ?, ?, ?, "
                    "?, ?)",
                    (d.alert_id, d.alert_type, d.version, d.action, now_ms, now_ms, d.feed, d.agreement, d.reason,
                     now_ms))
            elif held.expired and d.version <= held.version:
                # A recall older than a version that arrived expired (a replay: the broker's recalls come above
                # what partners hold): acknowledged, since nothing is held, and the row is left as it is. Set
                # back to the recall's version, it would let a replayed version between the two be stored.
                return
            elif not held.recalled:
                # The content goes: secure_delete zeroes the bytes the view held; wipe() clears the WAL.
                c.execute(
                    "UPDATE alerts SET view = NULL, state = 'RECALLED', version = ?, action = ?, received_ms = ?, "
                    "feed = ?, agreement = COALESCE(?, agreement), expires_ms = NULL, review_ms = NULL, "
                    "recall_reason = ?, "
                    "recalled_ms = ?, purged_ms = NULL WHERE alert_id = ?",
                    (d.version, d.action, now_ms, d.feed, d.agreement, d.reason, now_ms, d.alert_id))
                self._deleted()
            elif d.version > held.version:
                # Recalled already: the tombstone follows the newest version; a reason, once given, stays.
                c.execute(
                    "UPDATE alerts SET version = ?, received_ms = ?, feed = ?, "
                    "recall_reason = COALESCE(?, recall_reason) WHERE alert_id = ?",
                    (d.version, now_ms, d.feed, d.reason, d.alert_id))

    def purge(self, now: datetime, *, kafka_now: datetime | None = None, by_host_clock: bool = False) -> Purged:
        """Delete what the partner may no longer keep (module docstring) as of ``now``, the caller's clock, but never
        past the latest time Kafka vouched for (``kafka_time``) and the clock skew allowed (``CLOCK_SKEW_MS``); as of
        no time at all, deleting nothing, while the store knows none. Its content is wiped.

        Why: what the purge deletes is gone for good, and the content-free row it leaves makes every later copy of
        the alert EXPIRED: a host clock running ahead by a retention would otherwise delete everything held at one
        start of the subscriber, before it has reached Kafka, or at one ``puente store list``, which never does.
        ``kafka_now``: a time the caller vouches Kafka's clock has reached (one Kafka stamped in this run, and what a
        monotonic clock measured since), kept first as ``keep_kafka_time`` keeps one, and purged as of when ``now``
        is behind it. What the bound holds back is
        counted (``Purged.deferred``), for the caller to say. ``by_host_clock``: as of ``now`` alone, whatever Kafka
        vouched for (a person's deliberate act, for a partner cut off from Kafka: ``puente store purge``); the time
        Kafka vouched for is not moved by it."""
        if self.retention is None:
            raise StoreError(f"{self.path}: opened without the partner's retention, so it cannot purge")
        host_ms = _ms(now)
        with self.transaction(), self._sql("purging"):
            if kafka_now is not None:
                self.keep_kafka_time(_ms(kafka_now))
            vouched = None if by_host_clock else self.kafka_time()
            if vouched is None and not by_host_clock:
                return Purged(0, 0, 0, deferred=self._past_time(host_ms))
            # A time Kafka's clock has reached in the caller's run is vouched for: a host clock behind it must not
            # keep what is past its time by it.
            at_ms = host_ms if kafka_now is None or by_host_clock else max(host_ms, _ms(kafka_now))
            now_ms = at_ms if vouched is None else min(at_ms, vouched + CLOCK_SKEW_MS)
            r = self.retention
            c = self._conn
            # First the content-free rows old enough to go, before this purge makes more (it would count them twice,
            # and forget at once the versions it is to remember). A tombstone outlives the views it refuses: a view
            # sealed before the recall is EXPIRED (``_too_old``) once its agreement's retention and the sealing
            # margin have passed since the recall, by the broker's clock, which may run ahead of this one by the skew
            # allowed. A view of the alert may come under any of the partner's agreements, so the longest retention
            # counts; a tombstone holds no content. So does the content-free row of a version that arrived expired
            # or was purged (counted from its arrival: no copy of a version arrives before it was sealed).
            longest = max([*r.days.values(), r.fallback_days])
            kept = now_ms - longest * _DAY_MS - SEALING_MARGIN_MS - CLOCK_SKEW_MS
            old = "(state = 'RECALLED' AND recalled_ms <= ?) OR (state = 'EXPIRED' AND received_ms <= ?)"
            # The row of an alert passed on goes, but not the fact: the --out copy holds its text beyond the store's
            # reach for good, so a recall of it however late (a subscriber reading its feed long after) is passed
            # on, never acknowledged (``apply``). Its id alone is kept, for good.
            c.execute(f"INSERT OR IGNORE INTO meta (key, value) SELECT ? || alert_id, '1' FROM alerts "  # noqa: S608
                      f"WHERE passed_on != 0 AND ({old})", (_PASSED_KEY, kept, kept))
            tombstones = c.execute(f"DELETE FROM alerts WHERE {old}", (kept, kept)).rowcount  # noqa: S608
            c.execute("DELETE FROM meta WHERE key >= ? AND key < ? AND substr(key, ?) NOT IN (SELECT alert_id FROM "
                      "alerts)", (_ELSEWHERE_KEY, _ELSEWHERE_KEY[:-1] + ";", len(_ELSEWHERE_KEY) + 1))
            # The text goes (secure_delete zeroes it); the row remembers the version (module docstring). The ids of
            # those a --out copy holds too are read first, for the subscriber to name (``Purged.passed_on``).
            gone = "UPDATE alerts SET view = NULL, state = 'EXPIRED', review_ms = NULL, purged_ms = ? WHERE "
            copied = "SELECT alert_id FROM alerts WHERE passed_on != 0 AND "
            past_expiry = "state = 'HELD' AND expires_ms IS NOT NULL AND expires_ms <= ?"
            passed = [row[0] for row in c.execute(copied + past_expiry, (now_ms,))]
            expired = c.execute(gone + past_expiry, (now_ms, now_ms)).rowcount
            retention = 0
            groups = [row[0] for row in c.execute("SELECT DISTINCT agreement FROM alerts").fetchall()]
            for agreement in groups:
                days = r.of(agreement)
                cutoff = now_ms - days * _DAY_MS
                same = "agreement IS ?" if agreement is None else "agreement = ?"
                # From the first receipt, or the sealing if earlier: a late reader keeps it no longer than the
                # broker remembers it as a holder (module docstring).
                past_retention = f"{same} AND state = 'HELD' AND MIN(first_ms, COALESCE(sealed_ms, first_ms)) <= ?"
                passed += [row[0] for row in c.execute(copied + past_retention, (agreement, cutoff))]
                retention += c.execute(gone + past_retention, (now_ms, agreement, cutoff)).rowcount
            if expired + retention + tombstones:
                self._deleted()
            deferred = self._past_time(host_ms) if now_ms < host_ms else 0
        return Purged(expired, retention, tombstones, tuple(sorted(passed)[:PASSED_ON_LISTED]), len(passed),
                      _time(now_ms), deferred)

    def _past_time(self, at_ms: int, alert_id: str | None = None) -> int:
        """How many alerts whose text the store holds are past their expiry or their agreement's retention at
        ``at_ms`` (what a purge as of then would delete the text of), of all or of ``alert_id``'s alone, in the
        caller's transaction."""
        r, c = self.retention, self._conn
        if r is None:
            return 0
        one, ids = ("", ()) if alert_id is None else (" AND alert_id = ?", (alert_id,))
        past_expiry = "expires_ms IS NOT NULL AND expires_ms <= ?"
        count = int(c.execute(f"SELECT COUNT(*) FROM alerts WHERE state = 'HELD' AND {past_expiry}{one}",  # noqa: S608
                              (at_ms, *ids)).fetchone()[0])
        for (agreement,) in c.execute(f"SELECT DISTINCT agreement FROM alerts WHERE state = 'HELD'{one}",  # noqa: S608
                                      ids).fetchall():
            same = "agreement IS ?" if agreement is None else "agreement = ?"
            count += int(c.execute(
                f"SELECT COUNT(*) FROM alerts WHERE {same} AND state = 'HELD' AND NOT ({past_expiry}) "  # noqa: S608
                f"AND MIN(first_ms, COALESCE(sealed_ms, first_ms)) <= ?{one}",
                (agreement, at_ms, at_ms - r.of(agreement) * _DAY_MS, *ids)).fetchone()[0])
        return count

    def past_time(self, alert_id: str, now: datetime) -> bool:
        """Whether ``alert_id``'s text, held, is past its expiry or its agreement's retention by ``now`` (a purge
        held it back: ``Purged.deferred``)."""
        with self._sql("reading an alert's time"):
            return self._past_time(_ms(now), alert_id) > 0

    def kafka_time(self) -> int | None:
        """The latest time (milliseconds since 1970) Kafka stamped on a record this store's subscriber wrote, as it
        kept it (``keep_kafka_time``), or None before any. Kafka's clock, not this host's: nothing is purged past it
        and the clock skew allowed (``purge``). A value kept that is not such a time is a StoreError."""
        with self._sql("reading the time Kafka vouched for"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (_KAFKA_TIME_KEY,)).fetchone()
        if row is None:
            return None
        if not re.fullmatch(r"-?[0-9]{1,16}", str(row[0])) or not _MS_MIN <= int(row[0]) <= _MS_MAX:
            raise StoreError(f"{self.path}: the kept time Kafka vouched for (meta {_KAFKA_TIME_KEY!r}) is damaged; "
                             "restore the store from a backup")
        return int(row[0])

    def keep_kafka_time(self, ms: int) -> None:
        """Remember ``ms``, a time Kafka stamped (its append time of the subscriber's checkpoint: ``broker.partner``),
        unless the store kept a later one already: in the caller's transaction, with the batch the subscriber checked
        its clock against it for."""
        kept = self.kafka_time()
        if kept is not None and kept >= ms:
            return
        with self._sql("keeping the time Kafka vouched for"):
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (_KAFKA_TIME_KEY, str(ms)))

    def recent(self, limit: int | None = None) -> list[Entry]:
        """Alerts, the most recently received first (without their views)."""
        with self._sql("reading"):
            rows = self._conn.execute(
                f"SELECT {_COLUMNS}, NULL FROM alerts ORDER BY received_ms DESC, alert_id LIMIT ?",  # noqa: S608
                (-1 if limit is None else limit,)).fetchall()
        return [_entry(row, self.path) for row in rows]

    def due(self, now: datetime, limit: int | None = None) -> list[Entry]:
        """Alerts held past their markings.review_at, the longest overdue first (without their views): the
        partner must review its copy (the originator extends an alert it keeps current with a version
        bearing a later date; what is not extended goes at its expiry)."""
        with self._sql("reading"):
            rows = self._conn.execute(
                f"SELECT {_COLUMNS}, NULL FROM alerts WHERE state = 'HELD' AND review_ms IS NOT NULL "  # noqa: S608
                "AND review_ms <= ? ORDER BY review_ms, alert_id LIMIT ?",
                (_ms(now), -1 if limit is None else limit)).fetchall()
        return [_entry(row, self.path) for row in rows]

    def due_count(self, now: datetime) -> int:
        """How many alerts are held past their review date (``due``)."""
        with self._sql("reading"):
            return int(self._conn.execute("SELECT COUNT(*) FROM alerts WHERE state = 'HELD' AND review_ms IS NOT NULL "
                                          "AND review_ms <= ?", (_ms(now),)).fetchone()[0])

    def show(self, alert_id: str) -> Entry:
        """One alert: its view while held, its tombstone once recalled; NotInStore when absent."""
        with self._sql("reading"):
            row = self._conn.execute(f"SELECT {_COLUMNS}, view FROM alerts WHERE alert_id = ?",  # noqa: S608
                                     (alert_id,)).fetchone()
        if row is None:
            # The hint names this store's file: without ``--store`` the command would read the default store,
            # which may be another file than the one asked.
            raise NotInStore(f"no alert {alert_id[:200]} in {self.partner}'s store ({self.path}): `puente store "
                             f"list --partner {self.partner} --store={shlex.quote(str(self.path))}` shows what it "
                             "holds")
        return _entry(row, self.path)

    def counts(self) -> Counts:
        with self._sql("reading"):
            held, recalled, last, expired, purged = self._conn.execute(
                "SELECT COALESCE(SUM(state = 'HELD'), 0), COALESCE(SUM(state = 'RECALLED'), 0), MAX(received_ms), "
                "COALESCE(SUM(state = 'EXPIRED' AND purged_ms IS NULL), 0), "
                "COALESCE(SUM(state = 'EXPIRED' AND purged_ms IS NOT NULL), 0) FROM alerts").fetchone()
        if last is not None and (type(last) is not int or not _MS_MIN <= last <= _MS_MAX):
            raise StoreError(f"{self.path}: a row's received_ms is damaged: it is not a time; `puente store list` "
                             "names the alert, or restore the store from a backup")
        return Counts(int(held), int(recalled), None if last is None else _time(last), int(expired), int(purged))


def _held(row: tuple[Any, ...], row_of: _Row) -> Held:
    """What ``PartnerStore.apply`` reads of an alert's row (version, state, recall_reason, feed, passed_on, the
    retention's start, purged_ms), each value checked (``_Row``)."""
    version, state = row_of.version(row[0]), row_of.state(row[1])
    reason, feed = row_of.text("recall_reason", row[2], none=True), row_of.text("feed", row[3])
    if type(row[4]) is not int:
        raise row_of.damaged("passed_on", "is not a whole number")
    since, purged = row_of.ms("first_ms or sealed_ms", row[5]), row_of.ms("purged_ms", row[6], none=True)
    # Retention counts from the first receipt (or sealing) of what the partner held (or holds): not across a
    # recall, after which a holding starts again, nor from a version that arrived expired.
    return Held(version, state == RECALLED_STATE, state == RECALLED_STATE and reason is not None, feed,
                state == EXPIRED_STATE, since if state == HELD or purged is not None else None)


def _entry(row: tuple[Any, ...], path: Path) -> Entry:
    (alert_id, alert_type, version, state, action, first_ms, received_ms, feed, agreement, expires_ms, reason,
     recalled_ms, review_ms, purged_ms, view) = row
    row_of = _Row(path, alert_id)
    when = row_of.time
    text = row_of.text
    return Entry(text("alert_id", alert_id), text("alert_type", alert_type), row_of.version(version),
                 row_of.state(state), text("action", action, none=True), when("first_ms", first_ms),
                 when("received_ms", received_ms), text("feed", feed), text("agreement", agreement, none=True),
                 when("expires_ms", expires_ms, none=True), text("recall_reason", reason, none=True),
                 when("recalled_ms", recalled_ms, none=True), when("review_ms", review_ms, none=True),
                 row_of.view(view), when("purged_ms", purged_ms, none=True))


class _Row:
    """The values of one alert's row as read back, each checked against what the store writes: a file edited or
    damaged outside Puente (any SQLite tool writes it; SQLite keeps text in an INTEGER column) is a StoreError
    naming the alert and the column, never another error out of whatever reads the value."""

    def __init__(self, path: Path, alert_id: object) -> None:
        self.path, self.alert_id = path, alert_id

    def damaged(self, column: str, what: str) -> StoreError:
        shown = one_line(self.alert_id[:200]) if isinstance(self.alert_id, str) else "(its id is not text)"
        return StoreError(f"{self.path}: the row of alert {shown} is damaged: its {column} {what}; restore the store "
                          "from a backup")

    def text(self, column: str, value: object, *, none: bool = False) -> Any:
        if value is None and none:
            return None
        if not isinstance(value, str) or (not value and column in {"alert_id", "feed"}):
            raise self.damaged(column, "is not text" if not isinstance(value, str) else "is empty")
        return value

    def version(self, value: object) -> int:
        if type(value) is not int or not 1 <= value <= MAX_VERSION:
            raise self.damaged("version", f"is not a whole number from 1 to {MAX_VERSION:,}")
        return value

    def state(self, value: object) -> str:
        if value not in (HELD, RECALLED_STATE, EXPIRED_STATE):
            raise self.damaged("state", f"is none of {HELD}, {RECALLED_STATE}, {EXPIRED_STATE}")
        return str(value)

    def ms(self, column: str, value: object, *, none: bool = False) -> Any:
        if value is None and none:
            return None
        if type(value) is not int or not _MS_MIN <= value <= _MS_MAX:
            raise self.damaged(column, "is not a time (milliseconds since 1970, within years 1 to 9999)")
        return value

    def time(self, column: str, value: object, *, none: bool = False) -> Any:
        ms = self.ms(column, value, none=none)
        return None if ms is None else _time(ms)

    def view(self, value: object) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            doc = json.loads(value) if isinstance(value, str) else None
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            raise self.damaged("view", "is not a JSON object")
        return doc


def _place(feed: str, path: Path) -> tuple[str, int, int]:
    """A delivery's feed place (``topic:partition:offset``) as topic, partition and offset; StoreError when it is
    none (the subscriber makes it: never so)."""
    topic, _, rest = feed.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic or not re.fullmatch(r"[0-9]{1,9}", partition) or not re.fullmatch(r"[0-9]{1,19}", rest):
        raise StoreError(f"{path}: the feed place {one_line(feed[:300])} is not topic:partition:offset")
    return topic, int(partition), int(rest)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_MIN = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)  # what a datetime can hold
_MS_MAX = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)










_PRIVATE = PrivateFile("the store", "the store's folder", "holds decrypted alerts but others may read it",
                       "keep the store in a folder of its own (--store), or run chmod 700 on it")


def _translated(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusy(f"the store {path} stayed locked by another process while {doing}: another subscriber "
                         "of this partner may be in the middle of a batch; try again")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return StoreError(f"{path} is not a partner store (not an SQLite database): pass the right --store")
    return StoreError(f"the store {path} failed while {doing}: {text[:200]}")
