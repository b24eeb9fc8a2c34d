"""Indexing one partition: verify each record as it comes, store the rows of the sound ones.

A :class:`PartitionIngest` continues from the position and chain states the index holds, writes in
SQLite transactions of about ``batch_rows`` rows, and commits the new position and chain states in
the same transaction as the rows they cover: a crash re-reads only what the last commit had not
covered, and a run that continues gives the index a run over everything would.
"""

# ruff: noqa: S608 - SQL text is built from fixed column names and '?' placeholders only; every value is bound

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from broker.audit.chain import bounded, chain_owner, flatten, last_ingress
from broker.audit.receipts import (
    UNVOUCHED_BYTES,
    UNVOUCHED_IN_ALL,
    UNVOUCHED_PER_CHAIN,
    FeedPlace,
    Placed,
    ReceiptMatch,
    Sent,
    Unvouched,
    acknowledged,
    appended_at,
    given_up,
    match_receipt,
    sent_version,
)
from broker.audit.verify import (
    ChainFinding,
    ChainState,
    Finding,
    Holds,
    PartitionWalk,
    ReceiptReach,
    Retention,
    StartFinding,
    VerifyFn,
    chain_fields,
)
from broker.audit_index._cut import PREV_AT_CHARS, Counts, Cut, counted, cut_due, cut_start
from broker.audit_index._places import SqlReceiptBook
from broker.audit_index._scope import alias, view_mask
from broker.audit_index._store import UNKNOWN_CHAIN, alias_key, at_ms, chain_key, chain_name, instant_ms, translated
from puente.errors import StoreError
from puente.wire import Unreadable

_DECISION_TEXT = ("alert_id", "partner", "decision", "agreement", "alert_type", "originator", "originator_country",
                  "classification", "sector", "action", "reason", "policy_version", "feed", "ingress", "at", "ref")
_DECISION_INT = ("block", "supersedes", "ingress_ms")
_DECISION_COLUMNS = ("topic, partition, \"offset\", block, alert_id, version, partner, decision, agreement, "
                     "alert_type, originator, originator_country, classification, sector, action, reason, "
                     "supersedes, policy_version, feed, ingress, ingress_ms, at, at_ms, went, first_rule, "
                     "sent_version, hidden, extra, alias, ref")
DELIVERS = ("DELIVER", "DELIVER_REDACTED")  # a view went out (a RECALL is a notice, not a view)
KNOWN_AS = "COALESCE({t}ref, {t}alert_id)"
"""SQL for the id by which a decision's partner knows its alert (``t``: the table's name and a dot, or ""): the
partner's reference the audit records (``ref``), or the alert's own id in a block written before references, when
partners were given that. What the partner's feed, and so its receipts, name the alert by: every join of receipts
to decisions is on it and the partner (``decisions_by_name``), never on the alert's own id."""
# The feed records sent, as ``SqlReceiptBook`` asks for them (given the id the receipt names and its partner): views
# delivered and recall notices sent.
_SENT_SQL = (f"SELECT id AS k, feed, sent_version AS version, at_ms FROM decisions INDEXED BY decisions_by_name WHERE "
             f"{KNOWN_AS.format(t='')} = ? AND partner = ? AND went = 1 "
             "AND decision IN ('DELIVER', 'DELIVER_REDACTED', 'RECALL')")
VOUCHING = ("RECEIVED", "DUPLICATE")  # receipt statuses that say the partner holds the version
# What a receipts partition holds in ``unmatched_receipts`` to match again, bounded as ``Unvouched`` bounds what
# waits for a checkpoint (the same figures): past them the oldest held is matched no more, its finding final.
HELD_PER_CHAIN, HELD_IN_ALL, HELD_BYTES = UNVOUCHED_PER_CHAIN, UNVOUCHED_IN_ALL, UNVOUCHED_BYTES
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what an SQLite INTEGER holds
RECEIPT_DETAIL_BYTES = 500
"""The most bytes a receipt row's ``detail`` takes as written (``bounded``, ending in ``CUT`` when cut). A partner
signs whatever its receipts hold, as long as Kafka takes (no subscriber of Puente's writes a ``detail``), and the
console's timeline shows it: kept whole, a partner's receipts grew the index and every page view by their size."""
RECEIPT_FIELDS, RECEIPT_NAME_BYTES, RECEIPT_VALUE_BYTES = 16, 40, 200
"""What a receipt row keeps of the receipt's other fields (``extra``): the first ``RECEIPT_FIELDS``, each name cut at
``RECEIPT_NAME_BYTES`` and each value at ``RECEIPT_VALUE_BYTES`` (text, or a list's or object's JSON text), and
the number of those past them under ``UNKEPT``. A subscriber writes seven (its chain's ``v``, ``seq``, ``prev``,
``hash``, ``since_checkpoint``, ``policy_version``, ``store``), none over 100 bytes: each stays whole. The name
``UNKEPT`` is the index's: a partner's own field of that name is one not kept (``receipt_row``)."""
UNKEPT = "fields_not_kept"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    """An integer SQLite can hold, or None (absent, not an int, or out of the signed 64-bit range: a
    partner-signed receipt may carry any number, and SQLite refuses those with OverflowError)."""
    return value if type(value) is int and INT_MIN <= value <= INT_MAX else None


def json_text(value: Any) -> str:
    """``value`` as compact JSON text for a column (what the index stores for states and extras)."""
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:  # an int beyond 64 bits, say: the standard library writes any
        return json.dumps(value, default=str, ensure_ascii=False)


def receipt_detail(value: Any) -> str | None:
    """A receipt's ``detail`` as its row keeps it: text cut at ``RECEIPT_DETAIL_BYTES``, else None."""
    return bounded(value, RECEIPT_DETAIL_BYTES) if isinstance(value, str) else None


def receipt_row(row: dict[str, Any]) -> dict[str, Any]:
    """Receipt ``row`` as the index holds it from its record: without an ``appended_at`` of the partner's (only
    Kafka's is kept: ``_vouch``), and with a field the partner named ``UNKEPT`` counted as one not kept, never
    kept: past here that name is only ever the index's count, which ``receipt_extra`` carries forward."""
    row = appended_at(row)
    if UNKEPT in row:
        row = {**{k: v for k, v in row.items() if k != UNKEPT}, UNKEPT: 1}
    return row


def receipt_extra(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """The fields of receipt ``row`` (``receipt_row``'s) outside ``columns`` as its row keeps them
    (``RECEIPT_FIELDS``): a number, a boolean or None as it is, anything else cut as text; past the first
    ``RECEIPT_FIELDS``, only how many. Idempotent: a row rebuilt from its columns (``_rematch_row``) is cut again
    as it was, the count it holds under ``UNKEPT`` carried forward, not counted as a field."""
    kept: dict[str, Any] = {}
    carried = row.get(UNKEPT)
    unkept = carried if type(carried) is int and carried > 0 else 0
    for name, value in row.items():
        if name in columns or name == UNKEPT:
            continue
        if len(kept) >= RECEIPT_FIELDS:
            unkept += 1
            continue
        if not (value is None or isinstance(value, (bool, int, float))):  # (a record's int fits 64 bits: orjson)
            value = bounded(value if isinstance(value, str) else json_text(value), RECEIPT_VALUE_BYTES)
        kept[bounded(name, RECEIPT_NAME_BYTES)] = value
    if unkept:
        kept[UNKEPT] = unkept
    return kept


def _waiting(stored: Any) -> tuple[dict[str, dict[tuple[str, int], tuple[int, int]]], int]:
    """``ReceiptReach.waiting`` and ``given_up`` back from what ``_commit_reach`` stored (the index's own JSON)."""
    return ({chain: {(t, p): (newest, accepted) for t, p, newest, accepted in places}
             for chain, places in stored["waiting"]}, int(stored["given_up"]))


class PartitionIngest:
    """One partition's records into the index (module docstring). Made by ``AuditIndex.partition``."""

    def __init__(self, conn: sqlite3.Connection, topic: str, partition: int, holds: Holds, owner: str | None,
                 verify: VerifyFn, batch_rows: int = 5_000, path: Path | None = None,
                 feeds: str | None = None, log_start: int = 0,
                 retention: Retention | None = None, expired_before: int | None = None,
                 log_end: int | None = None) -> None:
        self._conn, self.topic, self.partition, self.holds = conn, topic, partition, holds
        self._expired_before = expired_before  # ``match_receipt``'s: set before ``_cut`` matches receipts again
        self.path = path or Path("(the audit index)")
        self.batch_rows = batch_rows
        self._book = SqlReceiptBook(conn, _SENT_SQL)
        self.found = 0  # problems found by this ingest
        if cut_due(conn, topic, partition, log_start):
            # Kafka deleted records this index read: what it holds of them goes, and its chains start where a
            # rebuild from the log start has them (``_cut``), which may read some of the partition again.
            self._cut(log_start, PartitionWalk(topic, partition, verify, holds, owner), retention,
                      log_end is not None and log_end <= log_start)
        row = conn.execute("SELECT next_offset FROM positions WHERE topic = ? AND partition = ?",
                           (topic, partition)).fetchone()
        self.start = self.next_offset = int(row[0]) if row else 0
        chains = {chain_name(key): ChainState.from_json(json.loads(state)) for key, state in conn.execute(
            "SELECT chain_key, state FROM chains WHERE topic = ? AND partition = ?", (topic, partition))}
        # ``prunes``: the index holds each waiting receipt by offset (``pending_receipts``), so a fork a signed
        # record settles drops exactly the branch off its path, as `audit verify` does (``_prune``).
        self._walk = PartitionWalk(topic, partition, verify, holds, owner, chains, prunes=True, log_start=log_start,
                                   retention=retention)
        # Where the chain ends, for the check against the groups' committed offsets (``AuditIndex.end_reports``):
        # a decisions partition's newest sound block naming an ingress record; how far a receipts
        # partition's sound receipts reach into feeds (``feeds``: what every feed topic's name starts
        # with), continued from what is stored. Every feed counts here: whose feed each is, is the
        # policy's word, applied when the index is read, as `audit verify` applies the policy at hand.
        self._end: tuple[str, int, int] | None = None  # (ingress "topic:partition", its offset, the block's offset)
        self._reach = ReceiptReach({}, feeds) if holds == "receipts" and feeds is not None else None
        self._open = False
        self._since_commit = 0
        self.records = self.rows = 0
        self._at: tuple[str | None, int | None] = (None, None)
        self._next_id: int | None = None  # the next decision id (the one writer numbers them itself)
        self._alias_key: bytes | None = None  # the index's aliases' key, read at the first decision
        # Each chain's state and counts as of its last record read, to note how the next one counted
        # (``records_read``, ``_cut.counted``).
        self._counts: dict[str, Counts] = {chain_key(n): (s, s.records, s.signed, s.tail)
                                           for n, s in self._walk.chains.items()}
        # The receipts no checkpoint has vouched for yet, bounded by the rule ``audit verify`` applies
        # (``Unvouched``): each held as its chain key, restored from ``pending_receipts`` as it stood.
        self._waiting: Unvouched[str] = Unvouched()
        self._given_up = 0  # receipts of this partition given up unvouched (the first few are listed)
        self._seq = 0  # the last chain to begin holding receipts, numbered (``pending_receipts.seq``)
        self._began: dict[str, int] = {}  # each chain holding receipts: the number it began holding at
        self._vouched: set[str] = set()  # chains a checkpoint vouched for in this partition (the last to give up)
        # The vouched receipts no indexed delivery matched (``unmatched_receipts``): how many, their bytes, per
        # chain; the newest decision id they were matched against; whether this ingest matched them again.
        self._held, self._held_bytes, self._held_chains = 0, 0, dict[str, int]()
        self._matched_to, self._rechecked, self._replaying = 0, False, False
        self._unheard: set[int] = set()  # deliveries a replay took a receipt from: their first receipt, after it
        if holds == "receipts":
            self._restore_waiting()
            self._restore_held()
        if self._reach is not None:
            self._restore_reach(self._reach, owner)

    def _cut(self, log_start: int, walk: PartitionWalk, retention: Retention | None, empty: bool = False) -> None:
        """Drop what the index holds of the records before ``log_start`` and start the partition's chains at their
        first records held (``_cut.cut_start``), then match again what rows of other partitions matched against what
        was dropped: the receipts naming the deliveries dropped, and the places and deliveries that receipts dropped
        had bound (``_rebind``, ``_unacknowledged``, from the receipts held), in one transaction."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            # (The walk's own start check, on what ``records_read`` kept of the record: one rule, `audit verify`'s.)
            cut = cut_start(c, self.topic, self.partition, log_start, None if retention is None else (
                lambda offset, doc: walk._start_check(offset, doc, retention)), retention if empty else None)
            self._after_cut(cut)
            c.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            raise
        self.found += cut.findings

    def _after_cut(self, cut: Cut) -> None:
        """What rows of other partitions matched against what ``cut`` dropped, matched again; what that holds
        unmatched, within the bounds (``_bound_elsewhere``)."""
        for partner, place in sorted(cut.places):
            self._rebind(partner, place, (INT_MAX, INT_MAX))  # as the receipts held (all of them) bind it
        held: set[tuple[str, int, str]] = set()
        touched = self._rematch_named(cut.deliveries, held) | cut.acknowledged
        for delivery in sorted(touched):
            self._unacknowledged(delivery)
        # Read again from ``cut.again``, the deliveries dropped there come back: the receipts naming them are
        # matched again at their partition's next recheck, which bounds what it holds after (``_recheck``). Let go
        # now, one would keep its finding for good.
        if cut.again is None:
            for topic, part in sorted({(t, p) for t, p, _ in held}):
                self._bound_elsewhere(topic, part, sorted(k for t, p, k in held if (t, p) == (topic, part)))

    def _bound_elsewhere(self, topic: str, part: int, keys: list[str]) -> None:
        """What ``topic[part]`` holds unmatched, within ``HELD_*`` as its own ingest keeps it (``_bound_held``): the
        oldest of chains ``keys``, then of all, let go (their findings stay), counted from the file."""
        c, mine = self._conn, (topic, part)
        for key in keys:
            over = int(c.execute("SELECT COUNT(*) FROM unmatched_receipts WHERE topic = ? AND partition = ? AND "
                                 "chain_key = ?", (*mine, key)).fetchone()[0]) - HELD_PER_CHAIN
            if over > 0:
                c.execute("DELETE FROM unmatched_receipts WHERE topic = ? AND partition = ? AND \"offset\" IN (SELECT "
                          "\"offset\" FROM unmatched_receipts WHERE topic = ? AND partition = ? AND chain_key = ? "
                          "ORDER BY \"offset\" LIMIT ?)", (*mine, *mine, key, over))
        count, size = c.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM unmatched_receipts WHERE topic = ? AND "
                                "partition = ?", mine).fetchone()
        count, size, gone = int(count), int(size), []
        if count > HELD_IN_ALL or size > HELD_BYTES:
            for offset, bytes_ in c.execute("SELECT \"offset\", size FROM unmatched_receipts WHERE topic = ? AND "
                                            "partition = ? ORDER BY \"offset\"", mine):
                if count <= HELD_IN_ALL and size <= HELD_BYTES:
                    break
                gone.append((*mine, offset))
                count, size = count - 1, size - int(bytes_)
        c.executemany("DELETE FROM unmatched_receipts WHERE topic = ? AND partition = ? AND \"offset\" = ?", gone)

    def _rematch_named(self, named: list[tuple[str, str]], held: set[tuple[str, int, str]]) -> set[int]:
        """Match again, in turn (topic, partition, vouched, offset), the receipt rows naming each alert of ``named``
        (the id its partner knows it by, the partner), whose deliveries the index dropped: the places they bound are
        bound again by them alone, and one that matches no delivery held any more is a finding, held unmatched (as a
        rebuild, which never read those deliveries, finds it). One alert at a time: a feed place holds one alert, so
        no other alert's receipt row is bound there. The deliveries whose receipts changed; ``held`` is told each
        partition and chain that now holds one more unmatched."""
        touched: set[int] = set()
        for name, partner in named:
            rows = sorted(self._conn.execute(
                "SELECT topic, partition, vouched, \"offset\", id, chain, alert_id, version, status, at, feed, detail, "
                "decision_id, extra, size, appended_at, place FROM receipts INDEXED BY receipts_by_alert_time WHERE "
                "alert_id = ? AND partner = ?", (name, partner)).fetchall())
            for place in {r[16] for r in rows if r[16] is not None}:
                self._book.unbind(partner, _feed_place(place))
            for row in rows:
                touched |= self._rematch_dropped(held, *row[:16])
        return touched

    def _rematch_dropped(self, held: set[tuple[str, int, str]], topic: str, part: int, vouched: int, offset: int,
                         ident: int, chain: str, alert: str | None, version: int | None, status: str | None,
                         at: str | None, feed: str | None, detail: str | None, delivery: int | None, extra: str,
                         size: int, appended: str | None) -> set[int]:
        """A receipt row of ``topic[part]`` matched again (``_rematch_named``): bound as it matches now, or deleted
        and held unmatched with its finding (as ``_unmatched``, in that partition's tables, noted in ``held``: its own
        ingest counts them when it opens). The deliveries whose receipts this changed."""
        c = self._conn
        row = {**json.loads(extra), "chain": chain, "alert_id": alert, "version": version, "status": status, "at": at,
               "feed": feed, "detail": detail}
        if appended is not None:
            row["appended_at"] = appended
        match = match_receipt(row, self._book, expired_before=self._expired_before)
        touched = {delivery} if delivery is not None else set()
        if isinstance(match, str):
            c.execute("DELETE FROM receipts WHERE id = ?", (ident,))
            found = c.execute("INSERT INTO findings (topic, partition, \"offset\", chain_key, problem, unmatched) "
                              "VALUES (?, ?, ?, ?, ?, 1)", (topic, part, offset, chain_key(chain), match)).lastrowid
            c.execute("INSERT INTO unmatched_receipts (topic, partition, chain_key, \"offset\", alert_id, partner, "
                      "row, size, finding, vouched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (topic, part, chain_key(chain), offset, alert, chain_owner(chain), json_text(row), size, found,
                       vouched))
            held.add((topic, part, chain_key(chain)))
            self.found += 1
            return touched
        self._book.bind(match)
        if match.key != delivery:
            c.execute("UPDATE receipts SET decision_id = ? WHERE id = ?", (match.key, ident))
            touched |= {match.key} if match.key is not None else set()
        return touched

    def _restore_reach(self, reach: ReceiptReach, owner: str | None) -> None:
        """``reach`` as the last commit left it: what waits, in its order, with the chains vouched for (those
        ``_waiting`` was told of: the same sound checkpoints), so it gives up what a walk of the whole partition
        would (``WAITING_PLACES``)."""
        row = self._conn.execute("SELECT waiting FROM receipts_waiting WHERE topic = ? AND partition = ?",
                                 (self.topic, self.partition)).fetchone()
        waiting, given_up = _waiting(json.loads(row[0])) if row else ({}, 0)
        vouched = [name for name in map(chain_name, sorted(self._vouched)) if name is not None]
        reach.begin(owner, waiting, vouched=vouched, given_up=given_up)
        # The places the partner's receipts were followed into by earlier ingests of its topic count toward
        # ``MAX_PLACES`` as in a walk of the whole topic (`audit verify`'s).
        reach.noted(owner, self._conn.execute("SELECT DISTINCT feed, feed_partition FROM receipt_reach WHERE "
                                              "topic = ?", (self.topic,)))

    def _restore_waiting(self) -> None:
        """``_waiting`` as the last commit left it: the chains vouched for, then every pending receipt in the
        order its chain began holding and by offset, so the next to give up is the one a walk over the whole
        partition would give up (a catch-up that continues finds what `audit verify` finds)."""
        row = self._conn.execute("SELECT vouched, given_up, matched_to FROM unvouched WHERE topic = ? AND "
                                 "partition = ?", (self.topic, self.partition)).fetchone()
        if row is not None:
            self._vouched, self._given_up, self._matched_to = set(json.loads(row[0])), int(row[1]), int(row[2])
            for key in sorted(self._vouched):
                self._waiting.pop(key, vouched=True)  # holds nothing yet: only marks it vouched for
        for key, offset, size, seq in _batches(self._conn.execute(
                "SELECT chain_key, \"offset\", size, seq FROM pending_receipts WHERE topic = ? AND partition = ? "
                "ORDER BY seq, \"offset\"", (self.topic, self.partition))):
            self._waiting.add(key, offset, key, size)  # within the bounds as committed: nothing is given up here
            self._began[key] = seq
            self._seq = max(self._seq, seq)

    def _restore_held(self) -> None:
        """The counts of ``unmatched_receipts`` as the last commit left them (one row per chain: the bound needs
        no receipt in memory)."""
        for key, count, size in self._conn.execute(
                "SELECT chain_key, COUNT(*), COALESCE(SUM(size), 0) FROM unmatched_receipts WHERE topic = ? AND "
                "partition = ? GROUP BY chain_key", (self.topic, self.partition)):
            self._held_chains[key] = int(count)
            self._held += int(count)
            self._held_bytes += int(size)

    # ---- the run ------------------------------------------------------------------------------
    def add(self, offset: int, value: bytes, appended_ms: int | None = None,
            unreadable: Unreadable | None = None) -> None:
        """Verify and index the record at ``offset`` (records come in offset order, from ``start``), which Kafka
        appended at ``appended_ms`` if its time is Kafka's, or which stands for a batch the client did not read
        (``PartitionWalk.feed``). StoreError (naming the index file) when SQLite fails."""
        try:
            self._add(offset, value, appended_ms, unreadable)
        except (sqlite3.Error, OverflowError) as exc:
            raise self._failed(exc, f"indexing {self.topic}[{self.partition}] offset {offset}") from None

    def _failed(self, exc: Exception, doing: str) -> StoreError:
        if isinstance(exc, sqlite3.Error):
            return translated(exc, self.path, doing)
        return StoreError(f"the audit index {self.path} failed while {doing}: {str(exc)[:200]}")

    def _begin(self) -> None:
        """Open the transaction rows go in; in a receipts partition, first (once per ingest) match again the
        receipts held unmatched (``_recheck``): before any receipt after them, as a walk from offset 0 would."""
        if not self._open:
            self._conn.execute("BEGIN IMMEDIATE")
            self._open = True
        if self.holds == "receipts" and not self._rechecked:
            self._rechecked = True
            self._recheck()

    def _add(self, offset: int, value: bytes, appended_ms: int | None = None,
             unreadable: Unreadable | None = None) -> None:
        self._begin()
        before = self.rows
        doc, found = self._walk.feed(offset, value, appended_ms, unreadable)
        self._note_read(offset, doc, not any(not isinstance(f, StartFinding) for f in found))
        for chain in self._walk.cut:  # receipts cut off from their chain: no checkpoint will vouch for them
            self._waiting.pop(chain_key(chain))
            self._began.pop(chain_key(chain), None)
            self._conn.execute("DELETE FROM pending_receipts WHERE topic = ? AND partition = ? AND chain_key = ?",
                               (self.topic, self.partition, chain_key(chain)))
        for chain in self._walk.given_up:  # a chain the walk holds no state for any more (``MAX_CHAINS``)
            self._counts.pop(chain_key(chain), None)
            self._conn.execute("DELETE FROM chains WHERE topic = ? AND partition = ? AND chain_key = ?",
                               (self.topic, self.partition, chain_key(chain)))
        for chain, offsets in self._walk.pruned.items():  # a fork the record settled: its branch off the path
            self._prune(chain_key(chain), offsets)
        # The forks it settled, at the offsets where they began, and a chain given up, at its own records (`audit
        # verify`'s findings, word for word).
        own = chain_key((doc or {}).get("chain"))
        placed: list[Finding] = [_ChainFinding(f.topic, f.partition, f.offset, f.problem,
                                               chain_key(f.chain) if isinstance(f, ChainFinding) else own)
                                 for f in self._walk.settled]
        # A sound receipt naming a place its partner cannot have read (``ReceiptReach.take``); the reach holds a
        # chain's waiting receipts as one lot, so a fork settled cuts them there, as in `audit verify`.
        cut = [*self._walk.cut, *self._walk.pruned]
        if self._reach is not None and (why := self._reach.take(doc, not found, cut)) is not None:
            placed.append(Finding(self.topic, self.partition, offset, why))
        unmatched = 0
        # A chain's first record held whose predecessor was deleted (``StartFinding``) is sound itself: its rows are
        # indexed, as `audit log` lists them, and the deletion is a finding beside them.
        placed += [f for f in found if isinstance(f, StartFinding)]
        found = [f for f in found if not isinstance(f, StartFinding)]
        if doc is not None and not found:
            if self.holds == "decisions" and (where := last_ingress(doc)) is not None:
                self._end = (f"{where[0]}:{where[1]}", where[2], offset)
            found = self._rows(offset, doc, len(value), appended_ms)
            unmatched = 1  # the only findings ``_rows`` gives: receipts for no audited delivery or given up unvouched
        for f, flag in [*((f, unmatched) for f in found), *((f, 0) for f in placed)]:
            # A receipt given up is a finding of its own chain, which may not be this record's.
            key = f.chain if isinstance(f, _ChainFinding) else UNKNOWN_CHAIN if doc is None else chain_key(
                doc.get("chain"))
            self._conn.execute("INSERT INTO findings (topic, partition, \"offset\", chain_key, problem, unmatched) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (f.topic, f.partition, f.offset, key, f.problem, flag))
        self.found += len(found) + len(placed)
        self.records += 1
        self._since_commit += max(1, self.rows - before)
        self.next_offset = offset + 1
        if self._since_commit >= self.batch_rows:
            self.commit()

    def _note_read(self, offset: int, doc: dict[str, Any] | None, sound: bool) -> None:
        """Keep what the record at ``offset`` takes once Kafka deletes the records before it (``records_read``,
        ``_cut``): its chain and seq, what its start check reads when it is sound, and how it counted in its chain."""
        name = doc.get("chain") if doc is not None else None
        named = doc is not None and (name is None or isinstance(name, str))
        key = chain_key(name) if named else UNKNOWN_CHAIN
        state = self._walk.chains.get(name) if named else None
        flags = counted(self._counts.get(key), state, offset, sound)
        if state is not None:
            self._counts[key] = (state, state.records, state.signed, state.tail)
        place = chain_fields(doc) if doc is not None else None
        prev_at = _text(doc.get("prev_at")) if doc is not None and sound else None
        self._conn.execute(
            "INSERT OR REPLACE INTO records_read (topic, partition, \"offset\", chain_key, seq, prev_at, keep_days, "
            "counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.topic, self.partition, offset, key, _int(place[0]) if place is not None else None,
             prev_at if prev_at is not None and len(prev_at) <= PREV_AT_CHARS else None,
             _int(doc.get("keep_days")) if doc is not None and sound else None, flags))

    def reached(self, end: int) -> None:
        """The partition's records up to ``end`` are all added: the next run starts there (past any
        aborted records and transaction markers after the last record)."""
        if end > self.next_offset:
            self.next_offset = end
            try:
                self._begin()
            except (sqlite3.Error, OverflowError) as exc:
                raise self._failed(exc, f"indexing {self.topic}[{self.partition}]") from None

    def commit(self) -> None:
        """Commit the rows added so far with the position and chain states they lead to. A receipts partition
        with no record to add still has its receipts held unmatched matched again once decisions were indexed
        since (the decisions may come after the receipts: read while empty, or written later)."""
        try:
            if not self._open and self._recheck_due():
                self._begin()
            if not self._open:
                return
            self._commit()
        except (sqlite3.Error, OverflowError) as exc:
            raise self._failed(exc, f"committing {self.topic}[{self.partition}]") from None

    def _commit(self) -> None:
        c = self._conn
        c.execute("INSERT INTO positions (topic, partition, next_offset) VALUES (?, ?, ?) "
                  "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                  (self.topic, self.partition, self.next_offset))
        c.executemany("INSERT INTO chains (topic, partition, chain_key, state) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (topic, partition, chain_key) DO UPDATE SET state = excluded.state",
                      [(self.topic, self.partition, chain_key(name), json_text(state.to_json()))
                       for name, state in self._walk.chains.items()])
        if self._end is not None:
            c.execute("INSERT INTO chain_ends (topic, partition, source, last, \"offset\") VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (topic, partition) DO UPDATE SET source = excluded.source, last = excluded.last, "
                      "\"offset\" = excluded.\"offset\"", (self.topic, self.partition, *self._end))
        if self._reach is not None:
            self._commit_reach(self._reach)
        if self.holds == "receipts":
            c.execute("INSERT INTO unvouched (topic, partition, vouched, given_up, matched_to) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (topic, partition) DO UPDATE SET vouched = excluded.vouched, given_up = "
                      "excluded.given_up, matched_to = excluded.matched_to",
                      (self.topic, self.partition, json_text(sorted(self._vouched)), self._given_up,
                       self._matched_to))
        c.execute("COMMIT")
        self._open = False
        self._since_commit = 0

    def _commit_reach(self, reach: ReceiptReach) -> None:
        """The reach this ingest's receipts add (each a maximum: a crash that re-reads adds nothing twice)
        and what waits for a checkpoint in this partition (bounded, ``WAITING_PLACES``: its JSON too)."""
        c = self._conn
        places = set(reach.sound) | set(reach.accepted) | set(reach.seen)
        c.executemany("INSERT INTO receipt_reach (topic, partition, feed, feed_partition, sound, accepted, seen) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (topic, partition, feed, feed_partition) DO UPDATE SET "
                      "sound = MAX(sound, excluded.sound), accepted = MAX(accepted, excluded.accepted), "
                      "seen = MAX(seen, excluded.seen)",
                      [(self.topic, self.partition, t, p, reach.sound.get((t, p), -1), reach.accepted.get((t, p), -1),
                        reach.seen.get((t, p), -1)) for t, p in sorted(places)])
        c.execute("INSERT INTO receipts_waiting (topic, partition, waiting) VALUES (?, ?, ?) ON CONFLICT (topic, "
                  "partition) DO UPDATE SET waiting = excluded.waiting",
                  (self.topic, self.partition, json_text({
                      "waiting": [[chain, [[t, p, newest, accepted] for (t, p), (newest, accepted) in places.items()]]
                                  for chain, places in reach.waiting.items()],
                      "given_up": reach.given_up})))

    def abort(self) -> None:
        """Forget what was added since the last commit (the next run reads it again)."""
        if self._open:
            self._open = False
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                self._conn.execute("ROLLBACK")

    # ---- rows ---------------------------------------------------------------------------------
    def _rows(self, offset: int, doc: dict[str, Any], size: int = 0, appended_ms: int | None = None) -> list[Finding]:
        """Store the rows of a sound record of ``size`` bytes, which Kafka appended at ``appended_ms`` (None: a
        time not Kafka's); findings it turns out to have (a receipt for no delivery, receipts given up
        unvouched)."""
        kind, chain = doc.get("kind"), doc.get("chain")
        if chain is not None and self.holds == "receipts":
            if kind == "CHECKPOINT":
                return self._vouch(chain_key(chain), offset, appended_ms)
            if kind == "RECEIPT":
                return self._hold(offset, chain_key(chain), json_text(receipt_row(flatten(doc)[0])), size,
                                  appended_ms)
            return []
        if kind == "QUERY":
            self._query(offset, doc)
            return []
        decisions: list[tuple[Any, ...]] = []
        rules: list[tuple[Any, ...]] = []
        for row in flatten(doc):
            kind = row.get("kind")
            if kind == "DECISION" and self.holds == "decisions":
                self._decision(offset, row, decisions, rules)
            elif kind == "DEAD_LETTER" and self.holds == "decisions":
                self._dead_letter(offset, row)
            elif kind == "GAP" and self.holds == "decisions":
                self._gap(offset, row)
            elif kind == "DENIAL" and self.holds == "denials":
                self._denial(offset, row)
        if decisions:  # one statement per record: a block's rows go in together
            self._conn.executemany(f"INSERT INTO decisions (id, {_DECISION_COLUMNS}) VALUES "
                                   f"({', '.join('?' * 31)})", decisions)
            self._conn.executemany("INSERT INTO decision_rules (decision_id, rule, partner) VALUES (?, ?, ?)", rules)
        return []

    def _key(self) -> bytes:
        # Read once per ingest: every row's alias in its partner's scope (``_scope.alias``).
        if self._alias_key is None:
            self._alias_key = alias_key(self._conn)
        return self._alias_key

    def _time(self, value: Any) -> int | None:
        # A block's rows share one time: parse it once.
        if value != self._at[0]:
            self._at = (value if isinstance(value, str) else None, at_ms(value))
        return self._at[1]

    def _decision(self, offset: int, row: dict[str, Any], decisions: list[tuple[Any, ...]],
                  rules_out: list[tuple[Any, ...]]) -> None:
        cols: dict[str, Any] = {k: _text(row.get(k)) for k in _DECISION_TEXT}
        cols.update({k: _int(row.get(k)) for k in _DECISION_INT})
        version = _int(row.get("version", 1))
        cols["version"] = 1 if version is None else version
        rules = row.get("rules")
        rules = [r for r in rules if isinstance(r, str)] if isinstance(rules, list) else []
        # A number the columns refused (not an int, or beyond SQLite's) is dropped, not kept in ``extra``.
        extra = {k: v for k, v in row.items() if k not in ("kind", "version", *_DECISION_INT)
                 and (k not in cols or (cols[k] is None and v is not None))}
        went = 0 if row.get("sent") is False or cols["decision"] not in (*DELIVERS, "RECALL") else 1
        sent = _int(sent_version(row)) if went else None
        when = self._time(row.get("at"))
        if self._next_id is None:
            # Past every id given, those of decisions Kafka deleted too (``_cut``): an id is never given twice.
            self._next_id = int(self._conn.execute(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM decisions), 0), COALESCE((SELECT CAST(value AS INTEGER) "
                "FROM meta WHERE key = 'decision_ids'), 0)) + 1").fetchone()[0])
        ident, self._next_id = self._next_id, self._next_id + 1
        decisions.append(
            (ident, self.topic, self.partition, offset, cols["block"], cols["alert_id"] or "", cols["version"],
             cols["partner"], cols["decision"], cols["agreement"], cols["alert_type"], cols["originator"],
             cols["originator_country"], cols["classification"], cols["sector"], cols["action"], cols["reason"],
             cols["supersedes"], cols["policy_version"], cols["feed"], cols["ingress"], cols["ingress_ms"],
             cols["at"], when, went, rules[0] if rules else None, sent, view_mask(row), json_text(extra),
             alias(self._key(), cols["partner"] or "", cols["alert_id"] or ""), cols["ref"]))
        rules_out += [(ident, r, cols["partner"]) for r in dict.fromkeys(rules)]
        self.rows += 1

    def _dead_letter(self, offset: int, row: dict[str, Any]) -> None:
        ingress = _text(row.get("ingress"))
        source = _source(ingress)
        self._conn.execute(
            "INSERT INTO dead_letters (topic, partition, \"offset\", block, alert_id, reason, detail, source, "
            "ingress, ingress_ms, at, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.topic, self.partition, offset, _int(row.get("block")), _text(row.get("alert_id")),
             _text(row.get("reason")), _text(row.get("detail")), source, ingress,
             _int(row.get("ingress_ms")), _text(row.get("at")), self._time(row.get("at"))))
        self.rows += 1

    def _gap(self, offset: int, row: dict[str, Any]) -> None:
        """Ingress records the broker never read (deleted before it did, skipped with --accept-gap)."""
        ingress = _text(row.get("ingress"))
        source = _source(ingress)
        self._conn.execute(
            "INSERT INTO gaps (topic, partition, \"offset\", block, reason, detail, source, ingress, from_offset, "
            "next_offset, skipped, at, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.topic, self.partition, offset, _int(row.get("block")), _text(row.get("reason")),
             _text(row.get("detail")), source, ingress, _int(row.get("from_offset")), _int(row.get("next_offset")),
             _int(row.get("skipped")), _text(row.get("at")), self._time(row.get("at"))))
        self.rows += 1

    def _denial(self, offset: int, row: dict[str, Any]) -> None:
        cols = ("principal", "operation", "resource", "request", "at")
        extra = {k: v for k, v in row.items() if k not in cols and k != "kind"}
        self._conn.execute(
            "INSERT INTO denials (topic, partition, \"offset\", principal, operation, resource, request, at, at_ms, "
            "extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.topic, self.partition, offset, *(_text(row.get(k)) for k in cols), self._time(row.get("at")),
             json_text(extra)))
        self.rows += 1

    def _query(self, offset: int, doc: dict[str, Any]) -> None:
        params = doc.get("params")
        self._conn.execute(
            "INSERT INTO queries (topic, partition, \"offset\", auditor, scope, page, params, results, at, at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.topic, self.partition, offset, _text(doc.get("auditor")), _text(doc.get("scope")),
             _text(doc.get("page")), json_text(params if isinstance(params, dict) else {}), _int(doc.get("results")),
             _text(doc.get("at")), self._time(doc.get("at"))))
        self.rows += 1

    def _hold(self, offset: int, key: str, row: str, size: int, appended_ms: int | None = None) -> list[Finding]:
        """A sound receipt (appended by Kafka at ``appended_ms``, kept with it) waits in ``pending_receipts`` for a
        checkpoint of its chain (``_vouch``): anyone may
        write a receipts topic, and a receipt no one signs must not bind a delivery's place before the real
        one. What waits is bounded as `audit verify` bounds it (``Unvouched``, the same rule and order): a
        receipt given up to make room leaves the table and is a finding with `audit verify`'s text."""
        if key not in self._waiting:  # the chain begins holding: it goes last in the order of giving up
            self._seq += 1
            self._began[key] = self._seq
        self._conn.execute("INSERT INTO pending_receipts (topic, partition, chain_key, \"offset\", row, decision_id, "
                           "size, seq, appended_ms) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                           (self.topic, self.partition, key, offset, row, size, self._began[key], appended_ms))
        out = self._waiting.add(key, offset, key, size)
        for gone in {k for _, k in out if k not in self._waiting}:
            del self._began[gone]
        self._conn.executemany("DELETE FROM pending_receipts WHERE topic = ? AND partition = ? AND chain_key = ? "
                               "AND \"offset\" = ?", [(self.topic, self.partition, k, at) for at, k in out])
        chains = dict(out)
        listed = given_up(self._given_up, [at for at, _ in out])
        self._given_up += len(out)
        return [_ChainFinding(self.topic, self.partition, at, why, chains[at]) for at, why in listed]

    def _prune(self, key: str, offsets: list[int]) -> None:
        """Chain ``key``'s waiting receipts at ``offsets``, on a branch a signed record settled a fork against
        (``PartitionWalk.pruned``): never vouched for, so they leave ``pending_receipts`` and what waits
        (``Unvouched.drop``), and the rest of the chain's waiting receipts stay. (None of them is in
        ``unmatched_receipts``: only receipts a checkpoint vouched for are held there, and a settled fork's
        branch holds only records no signed record vouched for yet.)"""
        self._waiting.drop(key, offsets)
        if key not in self._waiting:  # it holds nothing now: it goes last in the order of giving up
            self._began.pop(key, None)
        self._conn.executemany("DELETE FROM pending_receipts WHERE topic = ? AND partition = ? AND chain_key = ? "
                               "AND \"offset\" = ?", [(self.topic, self.partition, key, at) for at in offsets])

    def _vouch(self, key: str, at: int, appended_ms: int | None = None) -> list[Finding]:
        """A sound checkpoint (at offset ``at``, appended by Kafka at ``appended_ms``) of a receipt chain: its
        pending receipts, in offset order (their turn: ``at``, then their offsets), are matched to the
        deliveries they name (``match_receipt``, then bound to their places) and become rows; one that matches
        no delivery the index holds is no row but a finding, held to be matched again (``_unmatched``). Each
        gets its ``appended_at``, the later of its own and the checkpoint's append time (``appended_at``, as
        ``audit log`` gives it): what dates its acknowledgement no earlier than Kafka did (``_receipt``).
        Always matched: a receipts topic read while the decisions are not (yet) indexed cannot vouch for the
        deliveries it names. Read in batches: what waits is
        bounded, but by tens of thousands."""
        c = self._conn
        self._waiting.pop(key, vouched=True)
        self._began.pop(key, None)
        self._vouched.add(key)
        pending = c.execute("SELECT \"offset\", row, size, appended_ms FROM pending_receipts WHERE topic = ? AND "
                            "partition = ? AND chain_key = ? ORDER BY \"offset\"", (self.topic, self.partition, key))
        for offset, text, size, appended in _batches(pending):
            row = appended_at(json.loads(text), appended, appended_ms)
            match = match_receipt(row, self._book, expired_before=self._expired_before)
            if isinstance(match, str):
                self._unmatched(offset, key, row, json_text(row), int(size), match, at)
            else:
                self._receipt(offset, key, row, match, at, int(size))
        c.execute("DELETE FROM pending_receipts WHERE topic = ? AND partition = ? AND chain_key = ?",
                  (self.topic, self.partition, key))
        return []

    def _receipt(self, offset: int, key: str, row: dict[str, Any], match: ReceiptMatch, vouched: int,
                 size: int) -> None:
        """The row of a vouched receipt (of turn ``vouched``, a record of ``size`` bytes) matched to ``match``
        (bound to its place here), acknowledging its delivery when its partner opened the record (``match.key``)."""
        c = self._conn
        self._book.bind(match)
        delivery = match.key
        # ``appended_at``: Kafka's time (``_vouch``), its own column; a partner's went before it waited (``_rows``).
        # What else the partner wrote, ``detail`` and the other fields, is kept cut (``RECEIPT_*``): it signs any.
        extra = receipt_extra(row, ("alert_id", "status", "at", "feed", "detail", "appended_at", "version", "partner",
                                    "kind", "chain"))
        when = _acknowledged_ms(row)
        alert, version, status = _text(row.get("alert_id")), _int(row.get("version")), _text(row.get("status"))
        c.execute("INSERT INTO receipts (topic, partition, \"offset\", chain, partner, alert_id, version, status, "
                  "at, at_ms, feed, detail, decision_id, extra, vouched, size, place, appended_at) VALUES (?, ?, ?, ?, "
                  "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (self.topic, self.partition, offset, chain_name(key), chain_owner(chain_name(key) or ""), alert,
                   version, status, _text(row.get("at")), when, _text(row.get("feed")),
                   receipt_detail(row.get("detail")), delivery, json_text(extra), vouched, size,
                   _place_text(match.place), _text(row.get("appended_at"))))
        if status in VOUCHING and delivery is not None and when is not None:
            self._acknowledged(delivery, when)
        self.rows += 1

    def _acknowledged(self, delivery: int, when: int) -> None:
        """A receipt of ``delivery`` acknowledging at ``when`` (ms, ``_acknowledged_ms``): its first, unless one
        acknowledging earlier is bound to it."""
        self._conn.execute("UPDATE decisions SET receipt_at_ms = ? WHERE id = ? AND decision IN (?, ?) AND went = 1 "
                           "AND (receipt_at_ms IS NULL OR receipt_at_ms > ?)", (when, delivery, *DELIVERS, when))

    def _taken(self, delivery: int | None) -> None:
        """A receipt bound to ``delivery`` is bound to it no more: its first receipt is found again from the
        rows once the replay ends (``_unacknowledged``; nothing matched in a replay reads it)."""
        if delivery is not None:
            self._unheard.add(delivery)

    def _unacknowledged(self, delivery: int) -> None:
        """``delivery``'s first receipt again from the rows bound to it."""
        self._conn.execute(
            "UPDATE decisions SET receipt_at_ms = (SELECT MIN(r.at_ms) FROM receipts r WHERE r.decision_id = "
            "decisions.id AND r.status IN (?, ?)) WHERE id = ? AND decision IN (?, ?) AND went = 1",
            (*VOUCHING, delivery, *DELIVERS))

    def _unmatched(self, offset: int, key: str, row: dict[str, Any], text: str, size: int, why: str,
                   vouched: int) -> None:
        """A vouched receipt that matched no delivery the index holds: a finding (``why``, `audit verify`'s text)
        and held in ``unmatched_receipts`` to be matched again once decisions of its alert for its partner are
        indexed (``_recheck``), never a row meanwhile. Held within ``HELD_*`` (``Unvouched``'s figures): past
        them the oldest held is no longer matched again, and its finding stays."""
        c = self._conn
        found = c.execute("INSERT INTO findings (topic, partition, \"offset\", chain_key, problem, unmatched) "
                          "VALUES (?, ?, ?, ?, ?, 1)", (self.topic, self.partition, offset, key, why)).lastrowid
        self.found += 1
        c.execute("INSERT INTO unmatched_receipts (topic, partition, chain_key, \"offset\", alert_id, partner, row, "
                  "size, finding, vouched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (self.topic, self.partition, key, offset, _text(row.get("alert_id")),
                   chain_owner(chain_name(key) or ""), text, size, found, vouched))
        self._held_chains[key] = self._held_chains.get(key, 0) + 1
        self._held += 1
        self._held_bytes += size
        if not self._replaying:  # a replay still has held receipts of later turns to match: bound them after it
            self._bound_held([key])

    def _bound_held(self, keys: list[str]) -> None:
        """Let go of the oldest held (``_let_go``) until within ``HELD_*``: of chains ``keys``, then of all."""
        for key in keys:
            while self._held_chains.get(key, 0) > HELD_PER_CHAIN:
                self._let_go(key)
        while self._held > HELD_IN_ALL or self._held_bytes > HELD_BYTES:
            self._let_go(None)

    def _let_go(self, key: str | None) -> None:
        """Stop holding the oldest receipt held unmatched (of chain ``key``, or of any): its finding stays."""
        c = self._conn
        chain, args = ("AND chain_key = ? ", [key]) if key is not None else ("", [])
        offset, held_key, size = c.execute(
            f"SELECT \"offset\", chain_key, size FROM unmatched_receipts WHERE topic = ? AND partition = ? {chain}"
            "ORDER BY \"offset\" LIMIT 1", [self.topic, self.partition, *args]).fetchone()
        self._drop_held(offset, held_key, size)

    def _drop_held(self, offset: int, key: str, size: int) -> None:
        """Hold the receipt at ``offset`` no more; the counts change only if it was still held."""
        gone = self._conn.execute("DELETE FROM unmatched_receipts WHERE topic = ? AND partition = ? AND \"offset\" = ?",
                                  (self.topic, self.partition, offset)).rowcount
        if gone != 1:
            return
        self._held -= 1
        self._held_bytes -= size
        self._held_chains[key] -= 1
        if not self._held_chains[key]:
            del self._held_chains[key]

    def _newest(self) -> int:
        """The newest decision id indexed (0: none)."""
        return int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM decisions").fetchone()[0])

    def _recheck_due(self) -> bool:
        return (self.holds == "receipts" and not self._rechecked and self._held > 0
                and self._newest() > self._matched_to)

    def _recheck(self) -> None:
        """Match again each receipt held unmatched whose alert has decisions for its partner indexed since it was
        last matched (no other can match now). A walk of the whole audit matched it at its turn, before the
        receipts vouched for after it, which may since have bound the place (or delivery) it names: so each of
        their partners' receipts are matched again from the earliest such turn where one now matches
        (``_replay``), as that walk matched them, and the index a catch-up leaves is the one a rebuild gives. One
        that still fails at its turn (``_AtTurn``) changes nothing after it: only its finding's words change, and
        no receipt after it is matched again.

        Where a catch-up does not give a rebuild's index (``--rebuild`` does): a partner whose receipts are in
        several partitions of its topic (an honest subscriber writes one), which a rebuild, as `audit verify`,
        binds a partition wholly before the next, and a catch-up in the order it reads them, every other
        partition's rows counted as before a turn; and a receipt already a row when a delivery of its alert,
        version and feed dated before the one it names is indexed (only a broker's clock stepping back dates a
        later decision earlier): a rebuild names that earlier one, a catch-up matches no row again for it."""
        newest = self._newest()
        if not self._held or newest <= self._matched_to:
            self._matched_to = max(self._matched_to, newest)
            return
        first: dict[str, tuple[int, int]] = {}  # per partner (a few): the earliest turn due that matches now
        for partner, vouched, offset, text, found in _batches(self._conn.execute(
                "SELECT partner, vouched, \"offset\", row, finding FROM unmatched_receipts h WHERE topic = ? AND "
                f"partition = ? AND EXISTS (SELECT 1 FROM decisions d INDEXED BY decisions_by_name WHERE "
                f"{KNOWN_AS.format(t='d.')} = h.alert_id AND d.partner = h.partner AND d.id > ?) ORDER BY partner, "
                "vouched, \"offset\"",
                (self.topic, self.partition, self._matched_to))):
            if partner in first:  # the replay from an earlier turn matches it again at its own
                continue
            # Matched first as at its turn (the book as the receipts before it left it, read only): one that still
            # fails binds nothing, so no receipt after it can change; only its finding's words may. One that
            # matches now changes what those after it found: they are matched again from its turn on.
            why = match_receipt(json.loads(text), _AtTurn(self, (vouched, offset)),
                               expired_before=self._expired_before)
            if isinstance(why, str):
                self._conn.execute("UPDATE findings SET problem = ? WHERE id = ?", (why, found))
            else:
                first[partner] = (vouched, offset)
        self._replaying = True
        try:
            for partner in sorted(first):
                self._replay(partner, first[partner])
            # Once per delivery, not once per receipt taken from it (each reading all of its receipts: quadratic).
            for delivery in sorted(self._unheard):
                self._unacknowledged(delivery)
        finally:
            self._replaying = False
            self._unheard.clear()
        self._bound_held(sorted(k for k, n in self._held_chains.items() if n > HELD_PER_CHAIN))
        self._matched_to = newest

    def _replay(self, partner: str, turn: tuple[int, int]) -> None:
        """Match ``partner``'s vouched receipts of this partition again from ``turn`` (vouched, offset) on, in
        turn: first the places their rows bound are bound again from the receipts before (``_rebind``), then
        each is matched as at its turn. A row that matches no more becomes a finding, held; a held receipt
        that matches becomes a row and its finding goes; one that still does not keeps its finding, in
        today's words. Read a thousand at a time (what changes is at turns already passed), never all."""
        c = self._conn
        mine = "topic = ? AND partition = ? AND partner = ? AND (vouched, \"offset\") "
        after = (self.topic, self.partition, partner)
        # What a place is bound to depends on the turn only: each is bound again once, however often named.
        # (INDEXED BY: the receipts from the turn on, not the partner's whole history at every place.)
        for (place,) in _batches(c.execute(f"SELECT DISTINCT place FROM receipts INDEXED BY receipts_in_turn WHERE "
                                           f"{mine}>= (?, ?) AND place IS NOT NULL", (*after, *turn))):
            self._rebind(partner, place, turn)
        last, op = turn, ">="
        while True:
            rows = c.execute(f"SELECT vouched, \"offset\", id, chain, alert_id, version, status, at, feed, detail, "
                             f"decision_id, extra, size, appended_at FROM receipts WHERE {mine}{op} (?, ?) ORDER BY "
                             "vouched, "
                             "\"offset\" LIMIT 1000", (*after, *last)).fetchall()
            held = c.execute(f"SELECT vouched, \"offset\", chain_key, row, size, finding FROM unmatched_receipts "
                             f"WHERE {mine}{op} (?, ?) ORDER BY vouched, \"offset\" LIMIT 1000",
                             (*after, *last)).fetchall()
            if not rows and not held:
                return
            # Only up to where both lists are complete: past it, one may hold turns the other read none of.
            upto = min([(INT_MAX, INT_MAX), *([rows[-1][:2]] if len(rows) == 1000 else []),
                        *([held[-1][:2]] if len(held) == 1000 else [])])
            for item in sorted([*rows, *held], key=lambda r: (r[0], r[1])):
                if (item[0], item[1]) > upto:
                    break
                if len(item) == 14:
                    self._rematch_row(*item)
                else:
                    self._rematch_held(*item)
                last, op = (item[0], item[1]), ">"

    def _rebind(self, partner: str, place: str, turn: tuple[int, int]) -> None:
        """Bind ``place`` (text, as ``receipts.place``) as ``partner``'s receipts before ``turn`` in this
        partition (and those of its other partitions) bound it, forgetting what receipts from ``turn`` on did."""
        where = _feed_place(place)
        self._book.unbind(partner, where)
        if (placed := self._bound_before(partner, place, turn)) is not None:
            self._book.bind(ReceiptMatch(partner, where, placed.alert_id, placed.version, placed.key))

    def _bound_before(self, partner: str, place: str, turn: tuple[int, int]) -> Placed | None:
        """What ``partner``'s receipts before ``turn`` in this partition (and those of its other partitions)
        bound at ``place``, as ``SqlReceiptBook.bind`` binding each in turn leaves it: the first's alert (every
        row names one: ``match_receipt`` matches no other), the first version and delivery named. A few
        steps into the indexes, whatever the number of receipts there."""
        at, args = "WHERE partner = ? AND place = ?", (partner, place)
        first = self._first_before("alert_id, version, decision_id", "receipts_at_place", at, args, turn)
        if first is None:
            return None
        alert, version, delivery = first
        if version is None:
            numbered = self._first_before("version", "receipts_versioned_at_place", f"{at} AND version IS NOT NULL",
                                          args, turn)
            version = numbered[0] if numbered is not None else None
        if delivery is None:
            opened = self._first_before("decision_id", "receipts_opened_at_place", f"{at} AND decision_id IS NOT "
                                        "NULL", args, turn)
            delivery = opened[0] if opened is not None else None
        return Placed(alert, version, delivery)

    def _first_before(self, columns: str, index: str, where: str, args: tuple[Any, ...],
                      turn: tuple[int, int]) -> tuple[Any, ...] | None:
        """``columns`` of the first receipt (by topic, partition, vouched, offset) matching ``where`` that is of
        another partition or of this one before ``turn``: the first in six ranges of ``index`` (its columns after
        those ``where`` fixes: topic, partition, vouched, offset), each a seek. Never a range over two columns
        (SQLite ends a row-value range by its first column only, reading this partition's receipts from
        ``turn`` on, which a replay may have thousands of)."""
        (topic, partition), (vouched, offset) = (self.topic, self.partition), turn
        for before, more in _before(topic, partition, vouched, offset):
            row = self._conn.execute(f"SELECT {columns} FROM receipts INDEXED BY {index} {where} AND {before} ORDER "
                                     "BY topic, partition, vouched, \"offset\" LIMIT 1", (*args, *more)).fetchone()
            if row is not None:
                return tuple(row)
        return None

    def _rematch_row(self, vouched: int, offset: int, ident: int, chain: str, alert: str | None, version: int | None,
                     status: str | None, at: str | None, feed: str | None, detail: str | None, delivery: int | None,
                     extra: str, size: int, appended: str | None) -> None:
        """A receipt's row matched again at its turn (``_replay``): the receipt as its row has it, which matches
        as the record did (what the row does not keep, a number or text it could not hold, matched as none), with
        the Kafka time it was given when vouched for (``appended``)."""
        row = {**json.loads(extra), "chain": chain, "alert_id": alert, "version": version, "status": status,
               "at": at, "feed": feed, "detail": detail}
        if appended is not None:
            row["appended_at"] = appended
        match = match_receipt(row, self._book, expired_before=self._expired_before)
        if isinstance(match, str):
            self._conn.execute("DELETE FROM receipts WHERE id = ?", (ident,))
            self._taken(delivery)
            self._unmatched(offset, chain_key(chain), row, json_text(row), size, match, vouched)
            return
        self._book.bind(match)
        if match.key != delivery:
            self._conn.execute("UPDATE receipts SET decision_id = ? WHERE id = ?", (match.key, ident))
            self._taken(delivery)
            when = _acknowledged_ms(row)
            if status in VOUCHING and match.key is not None and when is not None:
                self._acknowledged(match.key, when)

    def _rematch_held(self, vouched: int, offset: int, key: str, text: str, size: int, found: int) -> None:
        """A receipt held unmatched, matched again at its turn (``_replay``), unless let go since it was read: its
        finding is final then."""
        if self._conn.execute("SELECT 1 FROM unmatched_receipts WHERE topic = ? AND partition = ? AND \"offset\" = ?",
                              (self.topic, self.partition, offset)).fetchone() is None:
            return
        row = json.loads(text)
        match = match_receipt(row, self._book, expired_before=self._expired_before)
        if isinstance(match, str):
            self._conn.execute("UPDATE findings SET problem = ? WHERE id = ?", (match, found))
            return
        self._receipt(offset, key, row, match, vouched, int(size))
        self._conn.execute("DELETE FROM findings WHERE id = ?", (found,))
        self._drop_held(offset, key, int(size))


def _acknowledged_ms(row: dict[str, Any]) -> int | None:
    """When vouched receipt ``row`` acknowledges (ms): the later of the time it states and Kafka's ``appended_at``
    (``broker.audit.receipts.acknowledged``, the rule ``audit recalls`` and ``audit log`` apply), so a partner
    cannot date its receipts, and so the latency to receipt, as it likes; None when it states no time."""
    acked = acknowledged(row)
    return None if acked is None else instant_ms(acked)


def _before(topic: str, partition: int, vouched: int, offset: int) -> list[tuple[str, tuple[Any, ...]]]:
    """The receipts of other partitions and of ``topic``'s ``partition`` before turn (``vouched``, ``offset``), as
    ranges in turn order: (SQL, its values)."""
    return [("topic < ?", (topic,)), ("topic = ? AND partition < ?", (topic, partition)),
            ("topic = ? AND partition = ? AND vouched < ?", (topic, partition, vouched)),
            ("topic = ? AND partition = ? AND vouched = ? AND \"offset\" < ?", (topic, partition, vouched, offset)),
            ("topic = ? AND partition > ?", (topic, partition)), ("topic > ?", (topic,))]


def _batches(cursor: sqlite3.Cursor, size: int = 1000) -> Iterator[Any]:
    """``cursor``'s rows, read ``size`` at a time (never all at once)."""
    while batch := cursor.fetchmany(size):
        yield from batch


@dataclass(frozen=True)
class _ChainFinding(Finding):
    """A finding at a receipt of ``chain`` (its key), which need not be the chain of the record being added."""

    chain: str = ""


class _AtTurn:
    """A ``ReceiptBook`` as the receipts before ``turn`` in ``ingest``'s partition (and those of its other
    partitions) left it, as ``PartitionIngest._replay`` binds it again at that turn: read only, the bindings of
    later turns ignored, nothing written (a match against it is only looked at)."""

    def __init__(self, ingest: PartitionIngest, turn: tuple[int, int]) -> None:
        self._ingest, self._turn = ingest, turn

    def sent(self, partner: str, alert_id: str) -> list[Sent]:
        ingest = self._ingest
        out = []
        for s in ingest._book.sent(partner, alert_id):
            # Where the delivery was put: the place of a receipt before the turn bound to it (every receipt bound
            # to a delivery names the one place that delivery is at).
            row = ingest._first_before("place", "receipts_to_delivery", "WHERE decision_id = ? AND partner = ? AND "
                                       "place IS NOT NULL", (s.key, partner), self._turn)
            out.append(replace(s, place=_feed_place(row[0]) if row is not None else None))
        return list(dict.fromkeys(out))  # the book lists a delivery once per place bound to it

    def placed(self, partner: str, place: FeedPlace) -> Placed | None:
        return self._ingest._bound_before(partner, _place_text(place), self._turn)

    def bind(self, match: ReceiptMatch) -> None:
        """Keeps nothing: a match against this book is only looked at."""


def _feed_place(text: str) -> FeedPlace:
    """A feed place from its ``receipts.place`` text (``_place_text``)."""
    topic, part, at = text.rsplit(":", 2)
    return (topic, int(part), int(at))


def _place_text(place: FeedPlace) -> str:
    """A feed place as ``receipts.place`` keeps it (``topic:partition:offset``, numbers as Kafka writes them)."""
    return f"{place[0]}:{place[1]}:{place[2]}"


def _source(ingress: str | None) -> str | None:
    """The ingress topic (an agency's) of an entry's ``<topic>:<partition>:<offset>``: what dead letters and
    gaps are grouped by (grouping by the whole place would group nothing)."""
    return ingress.rsplit(":", 2)[0] if ingress and ingress.count(":") >= 2 else ingress
