"""The index file: where it lives, who may read it, its layout, and the one writer's lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.audit_index._places import PLACES_LAYOUT
from broker.audit_index._scope import ALIAS_KEY
from broker.keystore import private_folder
from broker.private_files import PrivateFile
from puente.errors import StoreBusy, StoreError

DEFAULT_INDEX = ".puente/audit/index.sqlite"
"""Where ``puente audit index`` keeps the index unless told (``--index``, ``PUENTE_AUDIT_INDEX``)."""
SCHEMA_VERSION = 21  # PRAGMA user_version of the layout below (8: unvouched receipts bounded as in audit verify;
# 9: receipts matched to no indexed delivery held in ``unmatched_receipts`` and matched again, never rows unchecked;
# 10: chain states bounded per partition, ``verify.MAX_CHAINS``, none kept for a chain its topic cannot hold;
# 11: the broker's chain states date its blocks by Kafka's append time, not the time they state;
# 12: vouched receipts keep the order they were matched in and the place they bound, so one matched again later
# is matched as at its turn, and the receipts after it again;
# 13: a receipt is dated no earlier than Kafka appended it and its checkpoint, ``receipts.appended_at``, and a
# partner-written ``appended_at`` is kept nowhere;
# 14: a receipt row keeps its partner's free text cut, ``_ingest.RECEIPT_*``: an index of 13 may hold it whole;
# and ``receipts_by_alert_time`` lists a timeline's first receipts of each partner without reading the others;
# 15: ``receipts_waiting`` holds at most ``verify.WAITING_PLACES`` places, as `audit verify` does, with how many
# records gave up a chain's: an older one may hold a million;
# 16: ``receipts_by_delivery_time`` lists a timeline's first receipt of each delivery however many follow it; an
# index of 15 may also keep a partner's own ``fields_not_kept`` as the index's count, ``_ingest.receipt_row``;
# 17: each decision keeps its ``alias`` in its partner's scope, under the index's own key, meta ``alias_key``;
# 18: each decision keeps its partner's reference to the alert (``ref``), by which that partner's receipts name it
# and are matched: an index of 17 holds every receipt naming a reference unmatched;
# 19: ``decisions_held`` finds the id a partner knows an alert by in one seek, ``decisions_recalls`` an alert's
# recalls; the writer added them to an index of 18 in place;
# 20: ``records_read`` keeps, per record read, what checks its chain's start once Kafka deletes the records before it
# (``_cut``): an index of 19 holds none of it for the records it read, so it is made again;
# 21: ``decisions_by_partner_alert`` counts a partner's alerts in its own rows; the writer adds it to an index of 20 in
# place, ``UPGRADES``. The ``*_by_place`` and ``rules_by_decision`` indexes, which only the writer's cuts read, came
# later without a new number: the writer adds them to an index of 21 when it opens it, and a reader needs none.)
UPGRADES = frozenset({20})  # layouts the writer brings to SCHEMA_VERSION in place: it only adds indexes to them
BROKER_CHAIN = "-"  # chain_key of the broker's chain (records without a chain name)
UNKNOWN_CHAIN = "?"  # chain_key of a finding at a record that names no readable chain


def chain_key(chain: str | None) -> str:
    """How a chain is keyed in the file: a chain name may be any string, so names get a prefix that
    the broker's chain (no name) and unreadable records never have."""
    return BROKER_CHAIN if chain is None else "=" + chain


def chain_name(key: str) -> str | None:
    return None if key in (BROKER_CHAIN, UNKNOWN_CHAIN) else key[1:]


# One row per decision (alert, version, partner), with a column for every filter and the lists
# (reasons, rules, field changes) and anything else the row holds in ``extra`` (JSON). ``went``: a
# feed record (or recall notice) was sent; ``sent_version``: the version that record carries, which its
# receipts name (``broker.audit.receipts.sent_version``); ``receipt_at_ms``: the partner's first vouched
# RECEIVED/DUPLICATE receipt bound to it (by its ``at_ms``), for the latency indicators; ``hidden``: the view
# columns a scoped auditor reads blank in the row (``_scope.view_mask``); ``alias``: what a scoped auditor reads for
# the alert id while its partner never held the alert (``_scope.alias``, keyed by meta ``alias_key``, made with the
# file and kept across a rebuild, ``rebuilding``); ``ref``: the id by which the partner knows the alert
# (``policies.alert_reference``), as the audit records it for a decision that sent the partner a feed record; NULL
# for one that sent none, and in blocks written before references, whose partners were given the alert's own id:
# ``COALESCE(ref, alert_id)`` of a delivery is the id its partner's feed and receipts use (``decisions_by_name``),
# and a receipt's ``alert_id`` the id it names, as its partner wrote it. A receipt's ``at`` is the time it
# states (the partner's clock), ``appended_at`` when Kafka had appended it and the checkpoint that vouched for it
# (``broker.audit.receipts.appended_at``; NULL from a topic with CreateTime), and ``at_ms`` when it acknowledges,
# the later of the two (``broker.audit.receipts.acknowledged``): a partner chooses its ``at``, never Kafka's
# time, so a back-dated receipt neither shortens the latency to receipt nor goes earlier in a timeline; a
# ``pending_receipts`` row keeps its record's append time (``appended_ms``) until then. A receipt's
# ``decision_id`` is the delivery it acknowledges (NULL: none, as a REJECTED one), ``place`` the feed record it
# was bound to (``topic:partition:offset``, as ``receipt_places`` keys it), ``vouched`` the offset of the
# checkpoint that vouched for it (its turn: receipts are matched by (vouched, offset), as `audit verify` matches
# them) and ``size`` its record's bytes; ``receipt_places`` (``_places``) what each partner's receipts bound at
# each feed record.
INDEX_FILE = PrivateFile("the audit index", "the audit index's folder",
                         "holds the audit trail but others may read it",
                         "keep the index in a folder of its own (--index), or run chmod 700 on it")

# How far each chain reaches, for the check of its end against its group's committed offset
# (``AuditIndex.end_reports``): ``chain_ends``, a decisions partition's newest sound block naming an
# ingress record; ``receipt_reach``, per receipts partition (so per partner) and feed partition, the
# newest feed offset its vouched receipts name (``ReceiptReach``: sound, accepted, seen), whatever the
# policy says of whose feed it is (read with the policy at hand); ``receipts_waiting``, the receipts no
# checkpoint vouches for yet, for the next catch-up (JSON: ``waiting``, per chain in the order they give up theirs,
# and ``given_up``, ``ReceiptReach``'s); meta ``ends``, the offsets the last catch-up read;
# ``lost``, the partitions Kafka ended before what the index had read, at the last catch-up.
# ``pending_receipts`` holds a receipts partition's receipts no checkpoint has vouched for yet, bounded as
# ``audit verify`` bounds them (``broker.audit.receipts.Unvouched``): ``size``, the record's bytes; ``seq``,
# when its chain last began to hold receipts (the order chains give up theirs); ``unvouched``, per
# partition, the chains a checkpoint vouched for (JSON) and how many receipts were given up (``given_up``).
# ``unmatched_receipts`` holds the vouched receipts that matched no delivery the index held when they were
# checked (each a finding, ``finding``: its id; ``vouched``: its turn, as a receipt's), matched again once
# decisions for their alert and partner are indexed, bounded as ``pending_receipts`` is; ``unvouched.matched_to``,
# the newest decision id they were checked against. ``receipts_*_place`` and ``receipts_to_delivery`` find
# the first receipt before a turn at a place or bound to a delivery in one step (``PartitionIngest._bound_before``),
# whatever the receipts after it (added in layout 12 without a new number: its writer made them, dropping the two
# they replace; an index of layout 12 now asks for --rebuild all the same, for layout 13).
_LAYOUT = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, holds TEXT NOT NULL, owner TEXT);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS chains (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, chain_key TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (topic, partition, chain_key));
CREATE TABLE IF NOT EXISTS findings (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    chain_key TEXT NOT NULL, problem TEXT NOT NULL, unmatched INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS findings_by_chain ON findings (topic, partition, chain_key);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL, block INTEGER,
    alert_id TEXT NOT NULL, version INTEGER NOT NULL, partner TEXT, decision TEXT, agreement TEXT,
    alert_type TEXT, originator TEXT, originator_country TEXT, classification TEXT, sector TEXT,
    action TEXT, reason TEXT, supersedes INTEGER, policy_version TEXT, feed TEXT,
    ingress TEXT, ingress_ms INTEGER, at TEXT, at_ms INTEGER, went INTEGER NOT NULL,
    first_rule TEXT, receipt_at_ms INTEGER, sent_version INTEGER, hidden INTEGER NOT NULL, extra TEXT NOT NULL,
    alias TEXT, ref TEXT);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (at_ms);
CREATE INDEX IF NOT EXISTS decisions_by_partner ON decisions (partner, at_ms);
CREATE INDEX IF NOT EXISTS decisions_by_alert ON decisions (alert_id, partner, version);
CREATE INDEX IF NOT EXISTS decisions_by_alias ON decisions (alias);
-- The id a partner knows an alert by (``_index._HELD_AS``), its WHERE clause repeated there word for word: the first
-- entry for (alert, partner) is the answer, where a search of decisions_by_alert read and sorted every version's
-- row for each row shown (a scoped page of an alert of 5,000 versions: 19 s).
CREATE INDEX IF NOT EXISTS decisions_held ON decisions (alert_id, partner, ref IS NULL, id)
    WHERE went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED', 'RECALL');
-- An alert's recalls, whatever version they reuse: a timeline of its newest versions lists them too (_index.py).
CREATE INDEX IF NOT EXISTS decisions_recalls ON decisions (alert_id, partner, version) WHERE action = 'RECALL';
-- Receipts meet their deliveries here: by the id the partner knows the alert by, and the partner.
CREATE INDEX IF NOT EXISTS decisions_by_name ON decisions (COALESCE(ref, alert_id), partner);
CREATE INDEX IF NOT EXISTS decisions_by_agency ON decisions (originator, at_ms);
CREATE INDEX IF NOT EXISTS decisions_by_agreement ON decisions (agreement, at_ms);
CREATE INDEX IF NOT EXISTS decisions_by_decision ON decisions (decision, at_ms);
CREATE INDEX IF NOT EXISTS decisions_by_type ON decisions (alert_type, at_ms);
CREATE INDEX IF NOT EXISTS decisions_by_partner_decision ON decisions (partner, decision, at_ms);
-- A partner's distinct alerts (a scoped auditor's home page), counted in its own rows: decisions_by_alert holds every
-- partner's, and its pass took as long as every partner's decisions.
CREATE INDEX IF NOT EXISTS decisions_by_partner_alert ON decisions (partner, alert_id);
-- What a cut drops (``_cut``): a partition's rows before its log start (or from where it is read again) in one range,
-- and their rules by their ids, not a pass over every partition's decisions and rules at each cut.
CREATE INDEX IF NOT EXISTS decisions_by_place ON decisions (topic, partition, "offset");
-- The indicators read these partial indexes alone (covering), not the decisions' wide rows: at a
-- million decisions a full pass over the table took seconds per indicator. Their WHERE clauses are
-- repeated word for word in _index.py, which SQLite needs to use them.
CREATE INDEX IF NOT EXISTS decisions_shared ON decisions (substr(at, 1, 7), alert_type, sector, partner, alert_id)
    WHERE went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED');
CREATE INDEX IF NOT EXISTS decisions_shared_by_partner ON decisions (partner, substr(at, 1, 7), alert_type, sector,
    hidden, alert_id) WHERE went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED');
CREATE INDEX IF NOT EXISTS decisions_withheld ON decisions (partner, first_rule) WHERE decision = 'WITHHOLD';
CREATE INDEX IF NOT EXISTS decisions_to_delivery ON decisions (partner, at_ms - ingress_ms)
    WHERE went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED') AND ingress_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS decisions_to_receipt ON decisions (partner, receipt_at_ms - ingress_ms)
    WHERE went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED') AND ingress_ms IS NOT NULL
    AND receipt_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS decision_rules (decision_id INTEGER NOT NULL, rule TEXT NOT NULL, partner TEXT);
CREATE INDEX IF NOT EXISTS rules_by_rule ON decision_rules (rule, decision_id);
CREATE INDEX IF NOT EXISTS rules_by_partner ON decision_rules (partner, rule);
CREATE INDEX IF NOT EXISTS rules_by_decision ON decision_rules (decision_id);
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    chain TEXT NOT NULL, partner TEXT NOT NULL, alert_id TEXT, version INTEGER, status TEXT, at TEXT,
    at_ms INTEGER, feed TEXT, detail TEXT, decision_id INTEGER, extra TEXT NOT NULL,
    vouched INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0, place TEXT, appended_at TEXT);
CREATE INDEX IF NOT EXISTS receipts_by_alert_time ON receipts (alert_id, partner, at_ms);
DROP INDEX IF EXISTS receipts_by_alert;
CREATE INDEX IF NOT EXISTS receipts_in_turn ON receipts (topic, partition, partner, vouched, "offset");
CREATE INDEX IF NOT EXISTS receipts_at_place ON receipts (partner, place, topic, partition, vouched, "offset");
CREATE INDEX IF NOT EXISTS receipts_versioned_at_place ON receipts (partner, place, topic, partition, vouched, "offset")
    WHERE version IS NOT NULL;
CREATE INDEX IF NOT EXISTS receipts_opened_at_place ON receipts (partner, place, topic, partition, vouched, "offset")
    WHERE decision_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS receipts_to_delivery ON receipts (decision_id, topic, partition, vouched, "offset");
CREATE INDEX IF NOT EXISTS receipts_by_delivery_time ON receipts (decision_id, at_ms);
CREATE INDEX IF NOT EXISTS receipts_by_partner ON receipts (partner, at_ms);
DROP INDEX IF EXISTS receipts_by_place;
DROP INDEX IF EXISTS receipts_by_decision;
CREATE TABLE IF NOT EXISTS pending_receipts (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, chain_key TEXT NOT NULL, "offset" INTEGER NOT NULL,
    row TEXT NOT NULL, decision_id INTEGER, size INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0,
    appended_ms INTEGER, PRIMARY KEY (topic, partition, chain_key, "offset"));
CREATE TABLE IF NOT EXISTS unvouched (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, vouched TEXT NOT NULL, given_up INTEGER NOT NULL,
    matched_to INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS unmatched_receipts (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, chain_key TEXT NOT NULL, "offset" INTEGER NOT NULL,
    alert_id TEXT, partner TEXT NOT NULL, row TEXT NOT NULL, size INTEGER NOT NULL, finding INTEGER NOT NULL,
    vouched INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (topic, partition, "offset"));
CREATE INDEX IF NOT EXISTS unmatched_by_chain ON unmatched_receipts (topic, partition, chain_key, "offset");
CREATE INDEX IF NOT EXISTS unmatched_in_turn ON unmatched_receipts (topic, partition, partner, vouched, "offset");
CREATE TABLE IF NOT EXISTS chain_ends (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, source TEXT NOT NULL, last INTEGER NOT NULL,
    "offset" INTEGER NOT NULL, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS receipt_reach (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, feed TEXT NOT NULL, feed_partition INTEGER NOT NULL,
    sound INTEGER NOT NULL, accepted INTEGER NOT NULL, seen INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, feed, feed_partition));
CREATE TABLE IF NOT EXISTS lost (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, position INTEGER NOT NULL, kafka_end INTEGER NOT NULL,
    at TEXT NOT NULL, PRIMARY KEY (topic, partition));
-- One row per record read, while Kafka may still hold it: its chain, seq, what the start check reads of it
-- (``prev_at``, ``keep_days``) and how it counted in its chain's state (``counted``, ``_cut.COUNTED``). When the
-- partition's log start passes records read, the index drops what it holds of them and starts each chain where a
-- rebuild would, at its first record held (``_cut.cut_start``).
CREATE TABLE IF NOT EXISTS records_read (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL, chain_key TEXT NOT NULL,
    seq INTEGER, prev_at TEXT, keep_days INTEGER, counted INTEGER NOT NULL, PRIMARY KEY (topic, partition, "offset"));
CREATE INDEX IF NOT EXISTS records_read_by_chain ON records_read (topic, partition, chain_key, "offset");
CREATE TABLE IF NOT EXISTS receipts_waiting (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, waiting TEXT NOT NULL, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    block INTEGER, alert_id TEXT, reason TEXT, detail TEXT, source TEXT, ingress TEXT, ingress_ms INTEGER,
    at TEXT, at_ms INTEGER);
CREATE INDEX IF NOT EXISTS dead_letters_by_alert ON dead_letters (alert_id);
CREATE INDEX IF NOT EXISTS dead_letters_by_reason ON dead_letters (reason, source);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    block INTEGER, reason TEXT, detail TEXT, source TEXT, ingress TEXT, from_offset INTEGER,
    next_offset INTEGER, skipped INTEGER, at TEXT, at_ms INTEGER);
CREATE TABLE IF NOT EXISTS denials (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    principal TEXT, operation TEXT, resource TEXT, request TEXT, at TEXT, at_ms INTEGER, extra TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    auditor TEXT, scope TEXT, page TEXT, params TEXT, results INTEGER, at TEXT, at_ms INTEGER);
-- As ``decisions_by_place``: a cut of any partition looks for its rows in each of these tables too.
CREATE INDEX IF NOT EXISTS dead_letters_by_place ON dead_letters (topic, partition, "offset");
CREATE INDEX IF NOT EXISTS gaps_by_place ON gaps (topic, partition, "offset");
CREATE INDEX IF NOT EXISTS denials_by_place ON denials (topic, partition, "offset");
CREATE INDEX IF NOT EXISTS queries_by_place ON queries (topic, partition, "offset");
"""

_TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", _LAYOUT + ";".join(PLACES_LAYOUT)))
_CORE = frozenset({"positions", "decisions", "chains"})  # what every layout of the index has had


def _index_tables(tables: set[str]) -> bool:
    """Whether an SQLite file's ``tables`` are an audit index's: this layout's (or some of them: a first
    opening cut short), or an older layout's, which has the tables every layout has had."""
    return tables <= _TABLES or tables >= _CORE

_MAX_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z


def at_ms(value: Any) -> int | None:
    """Milliseconds since the epoch of an ISO time as the audit writes it, or None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        return None
    return instant_ms(when if when.tzinfo is not None else when.replace(tzinfo=UTC))


def instant_ms(when: datetime) -> int | None:
    """Milliseconds since the epoch of an instant (with its offset), or None outside what the index keeps."""
    try:
        ms = int(when.timestamp() * 1000)
    except (ValueError, OverflowError):
        return None
    # A time others signed may lie anywhere datetime reaches: outside the epoch to year 9999 (UTC) it
    # is no time the index orders or shows (``iso_ms`` could not write it back).
    return ms if 0 <= ms < _MAX_MS else None


def iso_ms(ms: int) -> str:
    """The audit's time format for milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def connect(path: Path, readonly: bool, busy_timeout_s: float) -> sqlite3.Connection:
    """The index at ``path``, opened and (unless ``readonly``) made: 0600 in a folder made 0700, WAL.

    The index holds what the audit holds (who got which alert, why): as private as the audit.
    """
    path = Path(path)
    if readonly:
        if not INDEX_FILE.exists(path):
            raise StoreError(f"no audit index at {path}: run `puente audit index` first (or pass --index)")
        INDEX_FILE.check(path)
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_s,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise translated(exc, path, "opening") from None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:
            conn.close()
            raise translated(exc, path, "opening") from None
        if not _index_tables(tables):
            conn.close()
            raise StoreError(f"{path} is not an audit index: check --index")
        if version != SCHEMA_VERSION:
            conn.close()
            if version in UPGRADES:
                raise StoreError(f"{path} is an audit index of layout {version}: run `puente audit index` once, "
                                 "which adds what this version reads (no rebuild)")
            raise StoreError(f"{path} is not an audit index of this version (layout {version}): run "
                             "`puente audit index --rebuild`")
        return conn
    if not INDEX_FILE.exists(path):
        private_folder(path.parent, error=StoreError)
        INDEX_FILE.check_folder(path, missing_ok=False)
        INDEX_FILE.create(path)
    INDEX_FILE.check(path)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise translated(exc, path, "opening") from None
    try:
        # Before WAL is switched on: another SQLite file (a partner store, the console accounts) is left as it was.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        found = sorted(str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        if not _index_tables(set(found)):
            named = ", ".join(t[:40] for t in found[:4]) + (", ..." if len(found) > 4 else "")
            raise StoreError(f"{path} is not an audit index (an SQLite database with tables {named}): check --index")
        if version not in (0, SCHEMA_VERSION, *UPGRADES):
            raise StoreError(f"{path} is an audit index of another version (layout {version}): run "
                             "`puente audit index --rebuild`")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: this SQLite cannot keep the audit index in WAL mode")
        # NORMAL: a crash may lose the last commits, never corrupt the file; what is lost is re-read
        # from Kafka, since progress commits with the rows it covers.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA trusted_schema = OFF")
        # One transaction: a reader never sees the indexes an older layout had dropped before their successors
        # are built, nor does a writer killed meanwhile leave it so.
        conn.executescript("BEGIN IMMEDIATE;\n" + _LAYOUT + ";\n".join(PLACES_LAYOUT) + ";\nCOMMIT;")
        # The aliases' key, made once with the file (before its version: no reader opens a file without it).
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (ALIAS_KEY, secrets.token_hex(32)))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.Error as exc:
        conn.close()
        raise translated(exc, path, "opening") from None
    except BaseException:
        conn.close()
        raise
    return conn


def remove_index(path: Path) -> None:
    """Delete the index file and its WAL (for a rebuild); a reader that has it open keeps its old copy."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


@contextlib.contextmanager
def rebuilding(path: Path) -> Iterator[Path]:
    """A fresh index to build at a temporary file beside ``path`` (same private folder, made 0600 when
    opened), moved over ``path`` only once the block completes: a console serving ``path`` reads the
    old index until the new one is whole, never a half-built one. Hold ``writer_lock(path)`` around it.
    A block that fails leaves ``path`` as it was and the temporary file deleted."""
    path = Path(path)
    private_folder(path.parent, error=StoreError)
    INDEX_FILE.check_folder(path, missing_ok=False)
    if os.path.lexists(path):
        _check_is_index(path)  # a rebuild replaces the file: never a partner store or the accounts
    temp = path.with_name(f".{path.name}.rebuild-{os.getpid()}")
    remove_index(temp)
    try:
        _keep_alias_key(path, temp)
        yield temp
        _settle(temp)
        # The old index's WAL and shared memory go first, for good (on disk) before the move: SQLite ties a WAL
        # to no file, so one left beside the new file (a crash between the move and its removal) would be
        # replayed onto it by its next writer, bringing the old index's pages back with no error. A reader that
        # has the old file open keeps its own handles; one opening it meanwhile reads it as of its last
        # checkpoint (what its WAL held is re-read from Kafka by any writer).
        _unlink_wal(path)
        os.replace(temp, path)
    except BaseException:
        remove_index(temp)
        raise
    _unlink_wal(path)  # one a reader made meanwhile holds no frames, but the new file is single until its writer


def alias_key(conn: sqlite3.Connection) -> bytes:
    """The aliases' key the index at ``conn`` holds (``_scope.alias``)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ALIAS_KEY,)).fetchone()
    if row is None or not isinstance(row[0], str) or len(row[0]) != 64:
        raise sqlite3.DatabaseError("the index holds no alias key: rebuild it")
    return bytes.fromhex(row[0])


def _keep_alias_key(path: Path, temp: Path) -> None:
    """Make the index at ``temp`` with the aliases' key of the index at ``path``, when it holds one: an alias a
    joint-oversight auditor noted stays the same alert's after a rebuild. The key is the index's own, never derived
    from anything another file holds; delete the index to make a new one."""
    if not os.path.lexists(path):
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            key = alias_key(conn).hex()
        finally:
            conn.close()
    except (sqlite3.Error, ValueError):
        return  # an older layout's (or unreadable): the new index makes its own
    conn = connect(temp, readonly=False, busy_timeout_s=30.0)
    try:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (key, ALIAS_KEY))
    except sqlite3.Error as exc:
        raise translated(exc, temp, "keeping the aliases' key") from None
    finally:
        conn.close()


def _unlink_wal(path: Path) -> None:
    """Delete the WAL and shared-memory files beside ``path``, and make that last (the folder synced)."""
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _settle(path: Path) -> None:
    """Fold the WAL of the closed index at ``path`` into the file and leave it a single file."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise translated(exc, path, "finishing the rebuild") from None


@contextlib.contextmanager
def writer_lock(path: Path, wait_s: float = 30.0) -> Iterator[None]:
    """Hold the one writer's lock of the index at ``path`` (a ``.lock`` file beside it).

    Two indexers catching up at once would both index the same records from the same stored
    position; SQLite's own lock is per transaction, not per run, so a run holds this one. StoreBusy
    when another run holds it for longer than ``wait_s``. ``path`` is checked first (``check_index_path``),
    so a wrong one leaves nothing behind; a lock file this call made is removed when the block fails.
    """
    path = Path(path)
    check_index_path(path)
    lock = Path(f"{path}.lock")
    deadline = time.monotonic() + wait_s
    while True:
        fd, made = _open_lock(lock)
        try:
            _flock(fd, path, wait_s, deadline)
        except BaseException:
            os.close(fd)  # not held: another run has it open, so the file stays
            raise
        if _same_file(fd, lock):
            break
        os.close(fd)  # a run that made it removed it after taking the lock: take the new one
    try:
        yield
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                os.unlink(lock)  # still held: a run waiting for it finds it gone and makes its own
        raise
    finally:
        os.close(fd)  # closing releases the lock


def check_index_path(path: Path) -> None:
    """Refuse an index path that is not a regular file or absent, an SQLite file that is no index (a partner
    store, the console accounts), or a folder others may write; a missing folder is made, 0700."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise StoreError(f"cannot reach the audit index {path}: {exc.strerror}: check --index") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise StoreError(f"the audit index {path} is not a regular file (a folder, a link, a device or a pipe): "
                         "check --index")
    if info is None and not os.path.isdir(path.parent):
        if os.path.lexists(path.parent):
            raise StoreError(f"the audit index's folder {path.parent} is not a folder: check --index")
        private_folder(path.parent, error=StoreError)  # made 0700, as the default place is
    INDEX_FILE.check_folder(path, missing_ok=False)
    if info is not None:
        _check_is_index(path)


def _check_is_index(path: Path) -> None:
    """StoreError unless the SQLite file at ``path`` holds the index's tables only (or none yet): a partner
    store or the console's accounts, named by mistake, must never be written into, nor replaced by a rebuild."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            tables = sorted(str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not an audit index ({str(exc)[:80]}): check --index") from None
    if not _index_tables(set(tables)):
        named = ", ".join(t[:40] for t in tables[:4]) + (", ..." if len(tables) > 4 else "")
        raise StoreError(f"{path} is not an audit index (an SQLite database with tables {named}): check --index")


def _open_lock(lock: Path) -> tuple[int, bool]:
    """The lock file, opened for writing (made 0600 when missing), and whether this call made it."""
    while True:
        try:
            return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot make the audit index's lock {lock}: {exc.strerror}") from None
        try:
            # O_NONBLOCK: a pipe put there must not hang the run (it is refused just below).
            fd = os.open(lock, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            continue  # removed meanwhile by a run that made it: make it again
        except OSError as exc:
            raise StoreError(f"cannot open the audit index's lock {lock}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"the audit index's lock {lock} is not a regular file: remove it")
            os.fchmod(fd, 0o600)
        except BaseException:
            os.close(fd)
            raise
        return fd, False


def _flock(fd: int, path: Path, wait_s: float, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreBusy(f"another indexer has been writing the audit index {path} for over "
                                f"{wait_s:.0f}s (`puente audit index`, or the console's catch-up); try again "
                                "once it ends") from None
            time.sleep(0.1)


def _same_file(fd: int, lock: Path) -> bool:
    """Whether the locked file is still the one at ``lock`` (a failed run removes the lock file it made)."""
    try:
        here = os.stat(lock, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def translated(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusy(f"the audit index {path} stayed locked by another process while {doing}; try again")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return StoreError(f"{path} is not an audit index (not an SQLite database): pass the right --index, or "
                          "delete it and run `puente audit index`")
    return StoreError(f"the audit index {path} failed while {doing}: {text[:200]}")





