"""Records Kafka deleted after the index read them: the partition's log start passed them (``cut_start``).

A rebuild reads a partition from its log start: nothing of the records no longer held is in it, and each chain starts
at its first record held (``ChainState.first_seq``), whose start ``PartitionWalk`` checks against the retention (a
predecessor written within it was deleted, not expired). A catch-up continues from the chain states it holds, so
the records Kafka deleted after it read them stayed listed, and a deletion by hand (DeleteRecords, a retention
lowered on the topic) of a chain's front went unseen, while `audit verify` and a rebuild reported it.
``records_read`` keeps, per record read, what it takes to do as a rebuild does (its chain, seq, ``prev_at``,
``keep_days``, how it counted: ``COUNTED``). At a catch-up whose log start passed records read, ``cut_start``
drops every row and finding of those records and brings each chain of the partition to where a rebuild has it:

- a chain with a record read at or past the log start starts at the first such: its ``first_seq``, and the start
  check of that record (when it was sound), as a walk from the log start makes it;
- a chain with none read there yet, the log starting at or before the index's read position, starts at the next
  record read of it (``first_seq``: the seq the walk expects next, so the walk checks that record's start when it
  continues the chain; one that does not is a gap: every record from the log start on was read, and none was it);
- with the log starting past that position (records deleted before the index read them: DeleteRecords to the high
  watermark, an index idle longer than the retention), each chain starts anew, keeping only what the keys are
  checked by (``signers``, ``keys``, ``dated``): the walk's own log-start rule then starts it at its next record
  held, at whatever seq, and checks that record's start, as a rebuild does;
- its records, signed records and unsigned tail count the records held only, and its last signed record is none
  once that record is deleted;
- a chain whose first record held was not sound when read (a gap or a break: what the records now deleted made it)
  is one a rebuild starts there, sound, with its rows: the partition is read again from that record
  (``_read_again_from``), what the index holds from there on dropped as the records before the log start are, and
  every chain read from there on starts anew (it has no record read before it: the read goes back far enough).

What it gives back (``Cut``) the ingest applies (``PartitionIngest``): the receipts naming the deliveries dropped are
matched again, and the feed places and first receipts that dropped receipts had bound are bound again from the
receipts held. A catch-up still keeps what no rebuild can tell from the records held: the keys a chain's deleted
records were signed with (``signers``, ``dated``), how far a receipts partition's deleted receipts reached into feeds
(``receipt_reach``, a maximum), and a receipt matched, at its turn, against a place a dropped receipt had bound.
"""

# ruff: noqa: S608 - SQL text is built from fixed table and column names and '?' placeholders only

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.audit.verify import ChainState, Finding, Retention, emptied, emptied_deleted, when
from broker.audit_index._store import chain_key, chain_name

SOUND, IN_RECORDS, SIGNED, TAILED = 1, 2, 4, 8
"""``records_read.counted``: the record was sound (no finding at it but its start check's); it counted in its
chain's ``records``, ``signed`` and unsigned ``tail``."""
COUNTED = SOUND | IN_RECORDS | SIGNED | TAILED
PREV_AT_CHARS = 64  # a ``prev_at`` longer than any time the audit writes is kept as none (it checks nothing)
Counts = tuple[ChainState, int, int, int]  # a chain's state and its records, signed records and tail, as they were
StartCheck = Callable[[int, dict[str, Any]], list[Finding]]
"""The start check of a chain's first record held (``PartitionWalk._start_check``): its offset and what it states."""

_PAST_ALL = 2**63 - 1  # past every offset: SQLite's largest integer
# Every table with a row per record (or per part of one) of an audit partition, by its ``offset``.
_PER_RECORD = ("decisions", "dead_letters", "gaps", "denials", "queries", "receipts", "pending_receipts",
               "unmatched_receipts", "findings", "records_read")


@dataclass
class Cut:
    """What ``cut_start`` dropped that rows of other partitions depend on: ``deliveries`` (the id the partner knows
    the alert by, the partner) of the feed records sent that the decisions dropped record, whose receipts are
    matched again; and of the receipts dropped, the feed places they bound (partner, place) and the deliveries they
    were bound to (``acknowledged``), bound and dated again from the receipts held; ``findings``, the start checks'."""

    deliveries: list[tuple[str, str]] = field(default_factory=list)
    places: set[tuple[str, str]] = field(default_factory=set)
    acknowledged: set[int] = field(default_factory=set)
    findings: int = 0
    again: int | None = None  # where the partition is read again from (``_read_again_from``), the position set there
    judged: list[bool | None] = field(default_factory=list)
    """Per chain the log start passed every record of (``verify.emptied``): deleted (True), expired (False), or not
    known (None: nothing read says, or records were deleted unread)."""


def counted(before: Counts | None, state: ChainState | None, offset: int, sound: bool) -> int:
    """How the record at ``offset`` counted in its chain's ``state`` (``records_read.counted``), given the state
    and its counts before it (None: a chain the walk held no state for)."""
    flags = SOUND if sound else 0
    if state is None:
        return flags
    records, signed, tail = before[1:] if before is not None and before[0] is state else (0, 0, 0)
    if state.records > records:
        flags |= IN_RECORDS
    if state.signed > signed:
        flags |= SIGNED
    if state.tail and (state.tail_first == offset or state.tail > tail):
        flags |= TAILED
    return flags


def cut_due(conn: sqlite3.Connection, topic: str, partition: int, log_start: int) -> bool:
    """Whether the index holds a record of ``topic[partition]`` before ``log_start`` (Kafka deleted it since), or
    chain states continuing records before it, the log starting past the index's read position (Kafka deleted records
    the index never read: the states continue nothing held, though an earlier cut dropped every record read)."""
    if log_start <= 0:
        return False
    if conn.execute("SELECT 1 FROM records_read WHERE topic = ? AND partition = ? AND \"offset\" < ? LIMIT 1",
                    (topic, partition, log_start)).fetchone() is not None:
        return True
    return conn.execute("SELECT 1 FROM positions p WHERE topic = ? AND partition = ? AND next_offset < ? AND EXISTS ("
                        "SELECT 1 FROM chains c WHERE c.topic = p.topic AND c.partition = p.partition)",
                        (topic, partition, log_start)).fetchone() is not None


EMPTIED = "emptied"
"""meta key: per partition (``"<topic>:<partition>"``) the log start at which a cut judged every chain the log start
passed whole (``Cut.judged``: each deleted or expired, none unknown), so the index knows that partition, emptied,
was checked (``AuditIndex.emptied_unchecked``)."""


def cut_start(conn: sqlite3.Connection, topic: str, partition: int, log_start: int,
              check: StartCheck | None, retention: Retention | None = None) -> Cut:
    """Drop what the index holds of ``topic[partition]`` before ``log_start`` and start its chains as a rebuild
    does (module docstring), in the transaction the caller holds; ``check``: the start check (None: no retention
    to judge by, nothing checked). Where a chain's first record held was not sound, what the index holds from there
    on goes too and the partition is read again from there (``Cut.again``). A chain the log start passed every
    record of is judged by its newest record read, as ``verify.emptied`` judges it under ``retention`` (None: not
    judged; the caller gives none where the partition holds records past its log start, a continuing chain's next
    record then getting its start check): deleted within the retention, a finding at the log start
    (``verify.emptied_deleted``); the partition's verdict is kept (``EMPTIED``) for the check of partitions that hold
    no record (``AuditIndex.emptied_unchecked``)."""
    where = (topic, partition, log_start)
    cut = Cut()
    read_to = conn.execute("SELECT next_offset FROM positions WHERE topic = ? AND partition = ?",
                           (topic, partition)).fetchone()
    unread = read_to is not None and log_start > int(read_to[0])
    spans = {} if unread else _held_spans(conn, topic, partition, log_start)
    cut.again = _read_again_from(spans)
    anew = {key for key, (_, last, _) in spans.items() if cut.again is not None and last >= cut.again}
    for key, text in conn.execute("SELECT chain_key, state FROM chains WHERE topic = ? AND partition = ?",
                                  (topic, partition)).fetchall():
        state = ChainState.from_json(json.loads(text))
        if key in anew:  # read again from ``again``, where nothing of it is read yet: it starts there anew
            state = _anew(state)
        else:
            found, state = _start_chain(conn, where, key, state, check, unread, (cut, retention))
            cut.findings += found
        conn.execute("UPDATE chains SET state = ? WHERE topic = ? AND partition = ? AND chain_key = ?",
                     (json.dumps(state.to_json()), topic, partition, key))
    # Decision ids are never given again (``PartitionIngest._decision``): a receipt held unmatched is matched again
    # only against decisions numbered past the newest it was matched against.
    # (MAX(id) alone: the table's last rowid, one step; a condition on id beside it made it a pass over an index.)
    newest = conn.execute("SELECT MAX(id) FROM decisions").fetchone()[0]
    if newest is not None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('decision_ids', ?) ON CONFLICT (key) DO UPDATE SET value = "
                     "excluded.value WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)", (newest,))
    _drop(conn, (topic, partition, 0, log_start), cut)
    _note_judged(conn, topic, partition, log_start, cut.judged)
    if cut.again is not None:
        _drop(conn, (topic, partition, cut.again, _PAST_ALL), cut)
        _forget_waiting(conn, topic, partition, anew)
        conn.execute("UPDATE positions SET next_offset = ? WHERE topic = ? AND partition = ?",
                     (cut.again, topic, partition))
    return cut


def _drop(conn: sqlite3.Connection, span: tuple[str, int, int, int], cut: Cut) -> None:
    """Drop every row and finding of the records of ``span`` (topic, partition, from offset, to offset before),
    noting in ``cut`` what rows of other partitions depend on."""
    where = "topic = ? AND partition = ? AND \"offset\" >= ? AND \"offset\" < ?"
    cut.deliveries += [(str(name), str(partner)) for name, partner in conn.execute(
        f"SELECT DISTINCT COALESCE(ref, alert_id), partner FROM decisions WHERE {where} AND went = 1 AND decision IN "
        "('DELIVER', 'DELIVER_REDACTED', 'RECALL') AND partner IS NOT NULL", span)]
    for partner, place, delivery in conn.execute(f"SELECT partner, place, decision_id FROM receipts WHERE {where}",
                                                 span):
        if place is not None:
            cut.places.add((partner, place))
        if delivery is not None:
            cut.acknowledged.add(int(delivery))
    conn.execute(f"DELETE FROM decision_rules WHERE decision_id IN (SELECT id FROM decisions WHERE {where})", span)
    for table in (*_PER_RECORD, "chain_ends"):
        conn.execute(f"DELETE FROM {table} WHERE {where}", span)


Spans = dict[str, tuple[int, int, int]]  # per chain key: its first and last records held, how the first counted


def _held_spans(conn: sqlite3.Connection, topic: str, partition: int, log_start: int) -> Spans:
    """Per chain the index holds a state of, its first and last records read from ``log_start`` on (offsets) and how
    the first counted (``records_read.counted``); a chain with none is not named."""
    spans: Spans = {}
    for (key,) in conn.execute("SELECT chain_key FROM chains WHERE topic = ? AND partition = ?",
                               (topic, partition)).fetchall():
        mine = (topic, partition, key)
        first = conn.execute("SELECT \"offset\", counted FROM records_read WHERE topic = ? AND partition = ? AND "
                             "chain_key = ? AND \"offset\" >= ? ORDER BY \"offset\" LIMIT 1",
                             (*mine, log_start)).fetchone()
        if first is not None:
            last = conn.execute("SELECT MAX(\"offset\") FROM records_read WHERE topic = ? AND partition = ? AND "
                                "chain_key = ?", mine).fetchone()[0]
            spans[key] = (int(first[0]), int(last), int(first[1]))
    return spans


def _read_again_from(spans: Spans) -> int | None:
    """Where the partition is read again from (None: nowhere): the first record held of a chain that was not sound
    when read (a gap, a break: what the records deleted before it made it), which a rebuild takes as the chain's
    start, with its rows. Every chain with records read from there on starts there anew, so no chain read both
    before and after it may be: the read goes back to the first record held of such a chain, until none is."""
    again = min((first for first, _, flags in spans.values() if not flags & SOUND), default=None)
    while again is not None:
        earlier = min((first for first, last, _ in spans.values() if first < again <= last), default=None)
        if earlier is None:
            return again
        again = earlier
    return None


def _anew(state: ChainState) -> ChainState:
    """A chain that continues no record held: the walk's log-start rule starts it at its next record held, at
    whatever seq, and checks that record's start, as a rebuild does. Only what the keys are checked by stays (the
    keys its deleted records were signed with, which no rebuild can tell), and its place in the order chains are
    given up in."""
    return ChainState(signers=state.signers, keys=state.keys, dated=state.dated, last=state.last)


def _forget_waiting(conn: sqlite3.Connection, topic: str, partition: int, keys: set[str]) -> None:
    """Chains ``keys`` of a receipts partition read again from their start: not vouched for, nothing waiting, until
    their records read again say so."""
    row = conn.execute("SELECT vouched FROM unvouched WHERE topic = ? AND partition = ?", (topic, partition)).fetchone()
    if row is not None:
        conn.execute("UPDATE unvouched SET vouched = ? WHERE topic = ? AND partition = ?",
                     (json.dumps(sorted(set(json.loads(row[0])) - keys)), topic, partition))
    row = conn.execute("SELECT waiting FROM receipts_waiting WHERE topic = ? AND partition = ?",
                       (topic, partition)).fetchone()
    if row is not None:
        doc = json.loads(row[0])
        doc["waiting"] = [[chain, places] for chain, places in doc["waiting"] if chain_key(chain) not in keys]
        conn.execute("UPDATE receipts_waiting SET waiting = ? WHERE topic = ? AND partition = ?",
                     (json.dumps(doc), topic, partition))


def _note_judged(conn: sqlite3.Connection, topic: str, partition: int, log_start: int,
                 judged: list[bool | None]) -> None:
    """Keep (``EMPTIED``) that every chain the log start passed whole was judged, at this log start; forget it
    where one was not (or none was passed whole): the partition, if it holds no record, is then not checked."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (EMPTIED,)).fetchone()
    marks: dict[str, int] = json.loads(row[0]) if row is not None else {}
    place = f"{topic}:{partition}"
    if judged and all(j is not None for j in judged):
        marks[place] = log_start
    else:
        marks.pop(place, None)
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (EMPTIED, json.dumps(marks, sort_keys=True)))


def _judge_emptied(conn: sqlite3.Connection, where: tuple[str, int, int], key: str, state: ChainState,
                   retention: Retention | None) -> tuple[bool | None, list[Finding]]:
    """Chain ``key``, every record of which the index read lies before the log start, judged by the newest of them
    that was sound (``verify.emptied``): first by when Kafka appended the chain's newest record read
    (``ChainState.appended_ms``, read before the cut forgets it), what retention deletes by, against its
    ``keep_days`` or, stating none (receipts), the topic's own retention as read from Kafka (``Retention.topics``;
    not read: not checked); where Kafka's time is not known, by its own time
    where the index holds it (a query's ``at``; a signed record's, ``ChainState.signed_at``), its ``prev_at`` and
    ``keep_days``."""
    topic, partition, log_start = where
    newest = conn.execute(
        f"SELECT \"offset\", seq, prev_at, keep_days FROM records_read WHERE topic = ? AND partition = ? AND "
        f"chain_key = ? AND \"offset\" < ? AND counted & {SOUND} ORDER BY \"offset\" DESC LIMIT 1",
        (topic, partition, key, log_start)).fetchone()
    if retention is None or newest is None:
        return None, []
    offset, seq, prev_at, kept = newest
    appended = state.appended_ms if type(state.appended_ms) is int and state.last >= offset else None
    row = conn.execute("SELECT at_ms FROM queries WHERE topic = ? AND partition = ? AND \"offset\" = ? AND at_ms IS "
                       "NOT NULL LIMIT 1", (topic, partition, offset)).fetchone()
    at_ms = int(row[0]) if row is not None else None
    if at_ms is None and state.signed_offset == offset and (signed := when(state.signed_at)) is not None:
        at_ms = int(signed.timestamp() * 1000)
    verdict = emptied(retention, appended, at_ms, prev_at, kept, topic)
    if verdict is not True:
        return verdict, []
    stated = int(kept) if type(kept) is int and kept > 0 else None
    return True, [emptied_deleted(topic, partition, log_start, chain_name(key), seq, stated, retention)]


def _start_chain(conn: sqlite3.Connection, where: tuple[str, int, int], key: str, state: ChainState,
                 check: StartCheck | None, unread: bool,
                 judging: tuple[Cut, Retention | None] | None = None) -> tuple[int, ChainState]:
    """Bring chain ``key``'s ``state`` to where a walk from the log start leaves it (module docstring), noting the
    start check's finding; how many findings it noted, and the state to keep. ``unread``: the log starts past the
    index's read position, so Kafka also deleted records the index never read. ``judging``: the cut, whose
    ``judged`` takes the verdict on a chain the log start passed whole, and the retention it is judged by."""
    topic, partition, log_start = where
    mine = (topic, partition, key)
    verdict: tuple[bool | None, list[Finding]] = (None, [])
    if judging is not None and not unread and conn.execute(
            "SELECT 1 FROM records_read WHERE topic = ? AND partition = ? AND chain_key = ? AND \"offset\" >= ? "
            "LIMIT 1", (*mine, log_start)).fetchone() is None:
        # Before the state forgets its last signed record: that record's time may judge the chain.
        verdict = _judge_emptied(conn, where, key, state, judging[1])
    gone, signed = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM(counted & {SIGNED} != 0), 0) FROM records_read WHERE topic = ? AND "
        f"partition = ? AND chain_key = ? AND \"offset\" < ? AND counted & {IN_RECORDS}", (*mine, log_start)).fetchone()
    state.records, state.signed = max(0, state.records - int(gone)), max(0, state.signed - int(signed))
    if state.signed_offset is not None and state.signed_offset < log_start:
        state.signed_seq = state.signed_at = state.signed_offset = None
    if state.tail and state.tail_first is not None and state.tail_first < log_start:
        tail, first = conn.execute(
            f"SELECT COUNT(*), MIN(\"offset\") FROM records_read WHERE topic = ? AND partition = ? AND chain_key = ? "
            f"AND \"offset\" >= ? AND counted & {TAILED}", (*mine, log_start)).fetchone()
        state.tail, state.tail_first = int(tail), first
    held = conn.execute("SELECT \"offset\", seq, prev_at, keep_days, counted FROM records_read WHERE topic = ? AND "
                        "partition = ? AND chain_key = ? AND \"offset\" >= ? ORDER BY \"offset\" LIMIT 1",
                        (*mine, log_start)).fetchone()
    if held is None and unread:
        # Its next records may be among those deleted unread: what the walk holds of it continues nothing held, so
        # it starts anew, and the walk's log-start rule starts it at its next record held, whatever its seq (a
        # rebuild's start, checked as a rebuild checks it), rather than report the records deleted as a gap.
        if judging is not None:
            judging[0].judged.append(None)  # what went unread is not known
        return 0, _anew(state)
    if held is None:
        state.first_seq = state.seq  # its next record read is its first held: the walk checks it
        if judging is None:
            return 0, state
        # The log start passed every record of it read: judged by the newest (``_judge_emptied``), as a chain cut
        # at its start is by its first record held, never dropped unsaid.
        judging[0].judged.append(verdict[0])
        return _note_findings(conn, mine, verdict[1]), state
    offset, seq, prev_at, keep_days, flags = held
    if seq is None:
        return 0, state
    state.first_seq = int(seq)
    if check is None or not flags & SOUND or seq <= 0:
        return 0, state
    found = check(int(offset), {"seq": seq, "chain": chain_name(key), "prev_at": prev_at, "keep_days": keep_days})
    return _note_findings(conn, mine, found), state


def _note_findings(conn: sqlite3.Connection, mine: tuple[str, int, str], found: list[Finding]) -> int:
    """Note ``found`` at chain ``mine`` (topic, partition, chain key), each once; how many were new."""
    topic, partition, key = mine
    noted = 0
    for f in found:
        # An earlier cut (or the walk, reading it first held) may have noted it already: a later cut whose log
        # start passed only records before it (of other chains, say) finds the same start again.
        noted += conn.execute(
            "INSERT INTO findings (topic, partition, \"offset\", chain_key, problem, unmatched) "
            "SELECT ?, ?, ?, ?, ?, 0 WHERE NOT EXISTS (SELECT 1 FROM findings WHERE topic = ? AND partition = ? "
            "AND chain_key = ? AND \"offset\" = ? AND problem = ?)",
            (topic, partition, f.offset, key, f.problem, topic, partition, key, f.offset, f.problem)).rowcount
    return noted
