"""``AuditIndex``: the index file, its one writer's entry points, and the scoped reading API."""

# ruff: noqa: S608 - SQL text is built from fixed column names and '?' placeholders only; every value is bound

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.access import subscriber_group
from broker.audit.chain import MAX_CHAIN_NAME, changes_whole
from broker.audit.verify import (
    ChainState,
    EndCheck,
    Finding,
    GroupEnds,
    Holds,
    PartitionReport,
    ReceiptReach,
    Retention,
    VerifyFn,
    emptied_unchecked,
    missing_topic,
    plain,
    receipt_ends,
    retired_keys,
    unnamed_ingress,
)
from broker.audit_index._cut import EMPTIED
from broker.audit_index._ingest import DELIVERS, KNOWN_AS, PartitionIngest, json_text
from broker.audit_index._scope import (
    ALIAS,
    ALL_HIDDEN,
    OPEN_RULES,
    UNDELIVERED_FIELDS,
    VIEW_COLUMNS,
    Scope,
    bit,
    mask_columns,
    open_rule_sql,
    open_rules_sql,
    scoped,
)
from broker.audit_index._store import UNKNOWN_CHAIN, at_ms, chain_key, chain_name, connect, iso_ms, translated
from broker.pipeline import ORIGIN_PROVEN, dead_letter_source
from policies import REFERENCE_PREFIX, within
from puente.wire import iso_utc

if TYPE_CHECKING:
    from policies import PolicySet

MAX_PER_PAGE = 500
TIMELINE_RECEIPTS = 100
"""The most receipts of one partner an alert's timeline lists beside the first of each delivery it was sent
(``AuditIndex.timeline``): the first of the others (more at one delivery, or bound to none), by when they
acknowledge, then a ``NOT_SHOWN`` event counting the rest. A subscriber writes one per version it is sent, and
another when a store reads one again; a partner signs as many as it likes, and listed whole they made one page
hundreds of megabytes. The first of each delivery is always listed: the broker's decisions bound their number, and
a partner's later acknowledgement (of a recall, say) is never pushed off the page by its earlier receipts."""
NOT_SHOWN = "RECEIPTS_NOT_SHOWN"  # the kind of that event
TIMELINE_VERSIONS = 200
"""Versions of an alert a timeline, or a "why" page, lists: the newest, then a ``VERSIONS_NOT_SHOWN`` event (a "why"
page, a row) counting the earlier ones. An agency may publish up to a million versions of one alert (a vessel's
track, updated every few minutes), and listed whole a timeline of 20,000 was a page of 35 MiB, made in seconds with a
quarter of a gigabyte of memory; `puente audit log --alert ID` lists every version."""
VERSIONS_NOT_SHOWN = "VERSIONS_NOT_SHOWN"  # the kind of that event
TIMELINE_DEAD_LETTERS = 200
"""Dead letters under one alert id a timeline lists: the newest, then a ``DEAD_LETTERS_NOT_SHOWN`` event counting the
others. The id is only their records' key, which anyone able to write the agency's topic may give them."""
DEAD_LETTERS_NOT_SHOWN = "DEAD_LETTERS_NOT_SHOWN"  # the kind of that event
MAX_FINDINGS = 500  # finding texts ``integrity`` gives at most (it counts them all)
_ROW_COLUMNS = ("id, topic, partition, \"offset\", block, alert_id, version, partner, decision, agreement, "
                "alert_type, originator, originator_country, classification, sector, action, reason, supersedes, "
                "policy_version, feed, ingress, ingress_ms, at, went, extra, hidden, ref")
# The id by which the partner of a decision row knows its alert, NULL while it was never sent the alert (no view or
# recall notice went, at any version): its scoped auditor reads that id, else the row's alias (``_scope.scoped``).
# That id is the partner's reference (``ref``) once any record sent to it named one, the alert's own id only where
# every record sent to it did (blocks written before references: its feed and receipts used that id). ``{t}``: the
# row's table. By ``decisions_held``, named: its first entry for the alert and partner is the answer, one seek per
# row. Without statistics SQLite took the partner's decisions index and scanned every delivery of the partner for
# each row (a page of a 200,000-decision index: 1.7 s; a scoped export: about 40 min); by ``decisions_by_alert`` it
# read and sorted every version's row for each row (a scoped page of an alert of 5,000 versions: 19 s, growing with
# the square of the versions).
_HELD_AS = (f"(SELECT {KNOWN_AS.format(t='k.')} FROM decisions k INDEXED BY decisions_held WHERE k.alert_id = "
            "{t}.alert_id AND k.partner = {t}.partner AND k.went = 1 AND k.decision IN ('DELIVER', 'DELIVER_REDACTED', "
            "'RECALL') ORDER BY k.ref IS NULL, k.id LIMIT 1)")
_ROW_KEYS = ("alert_id", "version", "partner", "decision", "agreement", "alert_type", "originator",
             "originator_country", "classification", "sector", "action", "reason", "supersedes", "policy_version",
             "feed", "ingress", "ingress_ms", "at")
_NATIONAL = Scope()  # the default scope of the counts: everything
_PAST = {"drop": "dropped", "mask": "masked", "pseudonymise": "pseudonymised", "generalise": "generalised"}


@dataclass(frozen=True)
class AlwaysKept:
    """The policy's envelope rule, for "why": the fields every partner's view keeps whatever its
    agreement says (an agreement may not change them), under ``rule``, in policy ``policy_version``."""

    rule: str
    paths: frozenset[str]
    policy_version: str

    @classmethod
    def of(cls, policy_set: PolicySet) -> AlwaysKept:
        envelope = policy_set.envelope
        return cls(envelope.rule, frozenset(envelope.keep), policy_set.version)

    def keeps(self, path: str) -> bool:
        """``path`` is one of the paths, or inside one (``a.b`` in ``a``; ``a[].b`` in ``a``)."""
        return any(within(path, p) for p in self.paths)


def _kept_by(d: Mapping[str, Any], field: str, envelope: AlwaysKept | None) -> str | None:
    """What kept ``field`` in the view of decision ``d``: the envelope's rule when it keeps the field,
    else every agreement rule in force (each one's changes apply, so each kept it). The envelope
    known here is the loaded policy's: for a decision made under another version, that is said."""
    rules = ", ".join(str(r) for r in d["rules"]) or None
    if envelope is None:
        return rules
    same = d.get("policy_version") == envelope.policy_version
    if envelope.keeps(field):
        return envelope.rule if same else f"{envelope.rule} (as in policy {envelope.policy_version[:12]})"
    if same:
        return rules
    return f"{rules} (unless the envelope of policy {str(d.get('policy_version'))[:12]}, not loaded, kept it)"


PARTLY = "partly changed"  # "why": a change inside the field, none of it whole
UNKNOWN_CUT = "unknown (the change list was cut)"  # "why": no listed change reaches it, but the list is not whole


def _fate(d: Mapping[str, Any], field: str, envelope: AlwaysKept | None) -> tuple[str, Any, bool, list[Any]]:
    """What the view of delivering decision ``d`` did with ``field``, for "why": its outcome, the rule behind it,
    whether a rule named it, and the changes inside the field. A change of the field or of one holding it is its
    fate; else the list not being whole (``broker.audit.chain.changes_whole``: cut short by ``shrink``, a change
    naming no field, or none at all for a redacted view) leaves it unknown; else a change inside it makes it partly
    changed; else it was kept (``_kept_by``)."""
    inside: list[dict[str, Any]] = []
    whole = changes_whole(d)  # a list cut short, a change cut to its text, a redacted view with none listed: not all
    for change in d["redacted"]:
        path = change.get("field") if isinstance(change, dict) else None
        if not isinstance(path, str) or not path:
            continue
        if within(field, path):
            return (_PAST.get(str(change.get("action")), str(change.get("action"))), change.get("rule"),
                    change.get("named", True) is not False, [])
        if within(path, field):
            inside.append({k: change[k] for k in ("field", "action", "rule", "named") if k in change})
    if not whole:
        return UNKNOWN_CUT, None, True, inside
    if inside:
        return PARTLY, _kept_by(d, field, envelope), True, inside
    return "kept", _kept_by(d, field, envelope), True, []


@dataclass(frozen=True)
class Query:
    """A search over decisions; every field given must match (``alert``: an id, or a prefix ending in ``*``)."""

    partner: str | None = None
    alert: str | None = None
    agency: str | None = None  # the originator
    agreement: str | None = None
    rule: str | None = None  # a rule id among the decision's rules
    decision: str | None = None
    alert_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


ANY_ROW_FILTERS = frozenset({"partner", "alert", "rule", "decision", "since", "until"})
"""The ``Query`` filters on what a decision says about its partner (and so shown for any row in scope):
they match a scoped auditor's every row (a rule on the alert's content its delivered rows alone, as
``scoped`` reads such rules: ``_where``). Any other filter is on the alert's descriptions (agency,
type...) and matches only rows delivered to the scoped partner whose view kept that description
(``FILTER_COLUMNS``), or on what its partner read only of a delivered row (``DELIVERED_FILTERS``): filtering
withheld decisions by agency or type, or delivered ones by a field their view dropped, would count and
characterise what that partner was never sent. A filter added to ``Query`` is such a one until it is named here."""

DELIVERED_FILTERS = frozenset({"agreement"})
"""The ``Query`` filters a scoped auditor's search matches on the rows delivered to its partner alone, whatever their
view kept: what ``scoped`` shows only on such a row (``_scope.DELIVERY_FIELDS``). A withheld decision's agreement
would say which type the alert was (those of the partner's agreements that cover it); the one a delivery was sent
under its partner read."""

FILTER_COLUMNS = {"agency": "originator", "alert_type": "alert_type"}
"""The ``VIEW_COLUMNS`` column each filter outside ``ANY_ROW_FILTERS`` matches: a scoped auditor's filter
matches only rows whose view kept that column's field. One not named here matches only rows whose
view kept every view column."""

_DELIVERED = "went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED')"  # a row whose view went to its partner
# The same, as a scoped query's restriction: +decision keeps SQLite from walking decisions_by_decision
# (every partner's rows) for it, where the partner's own index must lead (``_where``).
_DELIVERED_SCOPED = _DELIVERED.replace("decision IN", "+decision IN")


@dataclass
class ChainEnds:
    """The chains' ends against the groups' committed offsets, as the index's last catch-up read them
    (``AuditIndex.end_reports``): one report per end ``scope`` may see; ``counted`` the problems of
    ends it may count but not read (a scoped auditor's: the decision chains'); ``why`` why ends are
    not checked; ``read_at``, when the offsets were read."""

    reports: list[PartitionReport] = field(default_factory=list)
    counted: int = 0
    counted_unchecked: int = 0  # ends it may count but not read that were not checked (a scoped auditor's)
    why: list[str] = field(default_factory=list)
    read_at: str | None = None

    @property
    def problems(self) -> int:
        return self.counted + sum(len(r.findings) for r in self.reports)

    @property
    def unchecked(self) -> int:
        return self.counted_unchecked + sum(1 for r in self.reports if r.end is not None and not r.end.checked)

    @property
    def all_checked(self) -> bool:
        """Every end was checked against offsets read, and nothing was kept from view: only then may a
        page say the chains are whole to their ends."""
        return self.read_at is not None and not self.unchecked and not self.why


@dataclass(frozen=True)
class Page:
    """One page of rows: decision rows newest first (``search``), deliveries without a receipt oldest first
    (``unreceipted_page``), the auditors' queries newest first (``queries_page``)."""

    rows: list[dict[str, Any]]
    total: int  # at most COUNT_LIMIT: past it, ``capped``
    page: int
    per_page: int
    capped: bool = False  # more than COUNT_LIMIT rows match: ``total`` is a lower bound

    @property
    def pages(self) -> int:
        counted = max(1, math.ceil(self.total / self.per_page))
        return max(counted, self.page + 1) if self.capped and len(self.rows) == self.per_page else counted


_FACETS: dict[tuple[str, str | None, int], dict[str, list[str]]] = {}  # see AuditIndex.facets
MAX_CHOICES = 200
"""The most values a search field offers as choices (``AuditIndex.facets``). An agency that relays for units names
each alert's originator itself (``<prefix><unit>``), so a field's values can grow with every alert; past this the
field is named under ``TOO_MANY`` and typed in instead, and no page renders, nor the cache keeps, a list that long."""
TOO_MANY = "too_many"  # the facet listing the fields with more than ``MAX_CHOICES`` values
_FACETS_LOCK = threading.Lock()  # the console answers pages from worker threads, each with its own AuditIndex

# The partial indexes' conditions (``_store``), word for word: SQLite uses such an index only where
# the query's WHERE clause implies the index's, and a bound parameter implies nothing.
_SHARED = _DELIVERED
_TO_DELIVERY = f"{_SHARED} AND ingress_ms IS NOT NULL"
_TO_RECEIPT = f"{_TO_DELIVERY} AND receipt_at_ms IS NOT NULL"

# A search counts its matches up to this many: counting every one of a million rows took longer than
# the page itself, and a person reads "10,000+" as well as an exact figure.
COUNT_LIMIT = 10_000


RULE_SEEKS = 10_000
"""A scoped search by a rule reads the rows its partner's rule rows name by their ids while they are at most this many:
a rare rule's handful in as many seeks (1 ms), where a walk of all the partner's rows took 40 ms at 100,000 of them.
Past it, it walks the partner's rows by time, which stops at a page's end (seeking 100,000 ids, then sorting them,
took twice as long). Either way it reads its partner's rows alone, and the count that chooses, its partner's rules."""


def _ms(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _shown(scope: Scope, column: str) -> str:
    """SQL for ``column`` (one of ``VIEW_COLUMNS``) as ``scope`` reads it: blank (NULL) for a scoped
    auditor where the row's view changed its field (``hidden``), as ``scoped`` blanks it in a row."""
    return column if scope.national else f"CASE WHEN hidden & {bit(column)} THEN NULL ELSE {column} END"


def _first_rule(scope: Scope) -> str:
    """SQL for a withheld row's reason as ``scope`` reads it: its first rule (``-`` for none); for a scoped auditor
    the first of its rules as ``scoped`` reads them (``_scope.open_rule_sql``), so that one never counts by a rule
    on the content of alerts its partner was not sent."""
    return f"COALESCE({'first_rule' if scope.national else open_rule_sql('first_rule')}, '-')"


def _decisions(scope: Scope, index: str, alias: str = "decisions") -> str:
    """The decisions table as ``scope`` reads it: for a scoped auditor, by ``index``, one its partner leads (or that
    finds one alert's rows of that partner), named so that the planner cannot take one over every partner's rows (an
    agency's, a type's, the time's) however its statistics read: how long an answer took would tell how many rows
    the other partners have. A national auditor's, as the planner chooses. ``alias``: the table's name in the query."""
    named = "decisions" if alias == "decisions" else f"decisions {alias}"
    return named if scope.national else f"{named} INDEXED BY {index}"


def _version_cuts(since: int, table: str = "") -> list[tuple[str, str, list[Any]]]:
    """(index, clause, arguments) of each index range that lists an alert's decisions of versions from ``since`` on,
    then its recalls of earlier versions (every row of it when ``since`` is 0); ``table``: the decisions' alias and a
    dot, or "". Ranges apart: an OR of the two clauses reads every row of the alert."""
    if not since:
        return [("decisions_by_alert", "", [])]
    return [("decisions_by_alert", f" AND {table}version >= ?", [since]),
            ("decisions_recalls", f" AND {table}action = 'RECALL' AND {table}version < ?", [since])]


def _counted(count: int, capped: bool, noun: str) -> str:
    """``count`` of ``noun`` as a "not shown" line says it: "more than" when the count stopped at its bound."""
    return f"{'more than ' if capped else ''}{count:,} {noun}{'s' if count != 1 or capped else ''}"


def _columns(scope: Scope, table: str = "decisions") -> str:
    """The columns of a decision row ``_decision_row`` reads, of ``table`` (a name or an alias): for a scoped
    auditor, its ``alias`` and the id by which its partner knows the alert (``_HELD_AS``) besides."""
    own = ", ".join(f"{table}.{c.strip()}" for c in _ROW_COLUMNS.split(","))
    return own if scope.national else f"{own}, {table}.alias, {_HELD_AS.format(t=table)}"


def _decision_row(r: tuple[Any, ...]) -> dict[str, Any]:
    """A decision as ``flatten`` gave it (``ref`` None where the audit records none), with its index ``id``,
    ``record`` (topic:partition:offset), ``delivered`` (its view went to the partner) and ``hidden`` (the
    ``VIEW_COLUMNS`` its view's changes cover, as indexed), and when read for a scoped auditor (``_columns``) its
    ``alias`` and ``held_as``. Those are set last: the audit record's own fields (``extra``) cannot stand in for
    them, since ``scoped`` trusts them."""
    own = {"kind": "DECISION", "id": r[0], "record": f"{r[1]}:{r[2]}:{r[3]}", "block": r[4],
           "delivered": r[23] == 1 and r[8] in DELIVERS, "hidden": mask_columns(int(r[25]))}
    if len(r) > 27:
        own.update(alias=r[27], held_as=r[28] if isinstance(r[28], str) and r[28] else None)
    row: dict[str, Any] = dict(own)
    row.update(zip(_ROW_KEYS, r[5:23], strict=True))
    row.update(json.loads(r[24]))
    row["ref"] = r[26]
    row.update(own)
    for name in ("rules", "reasons", "redacted"):
        if not isinstance(row.get(name), list):
            row[name] = []
    return row


CHAIN_FIELDS = ("topic", "partition", "chain", "records", "first_seq", "signed", "unsigned_tail",
                "last_checkpoint_at", "last_checkpoint_seq", "last_checkpoint_offset", "problems", "state")
"""What ``integrity`` gives of a chain whose problems the auditor reads: a national auditor's every chain,
a scoped auditor's own receipts chains. ``first_seq``: the seq of its first record held, above 0 when Kafka
deleted its first records (``ChainState.first_seq``): retention's work, or a deletion, which the start check tells
apart only where that record states when its predecessor was written (``PartitionWalk``), so the console says
which chains start late."""
COUNTED_CHAIN_FIELDS = ("topic", "partition", "chain", "problems", "state")
"""What ``integrity`` gives a scoped auditor of a chain it may count but not read (the decision chains): its
state only. Their records, signatures, checkpoint sequence, offset and time grow with every block about any
partner, so they would tell a partner's auditor how much the broker decided for others (as ``_scope`` keeps
record and block out of its rows)."""


def _chain_row(readable: bool, chain: dict[str, Any]) -> dict[str, Any]:
    """``chain`` (every field of ``CHAIN_FIELDS`` but ``state``) cut to what the auditor may see of it, with its
    ``state``: "sound" or "has problems"."""
    full = {**chain, "state": "has problems" if chain["problems"] else "sound"}
    return {k: full[k] for k in (CHAIN_FIELDS if readable else COUNTED_CHAIN_FIELDS)}


def _named(chain: str | None) -> str | None:
    """A chain's name as ``integrity`` shows it: whole, its unprintable characters escaped (``plain``). The name is
    whatever a record written to a receipts topic says, and a page showing it raw would let an escape sequence or a
    right-to-left mark pass for something else."""
    return plain(chain, MAX_CHAIN_NAME) if chain is not None else None


def _shared(scope: Scope, topics: Mapping[str, tuple[str, str | None]], topic: str) -> str | None:
    """What ``scope`` may know of a problem at audit topic ``topic``: "read" (its text), "counted" (that it is
    one), or None (nothing). An allow-list: a partner's auditor counts the decision chains' problems and reads
    its own receipts topic's; any other topic (another partner's receipts, the denials, the queries, a kind
    added later, one the index does not know) is neither counted nor described."""
    if scope.national:
        return "read"
    holds, owner = topics.get(topic, ("", None))
    if holds == "decisions":
        return "counted"
    if holds == "receipts" and owner is not None and owner == scope.partner:
        return "read"
    return None


def _end_row(report: PartitionReport) -> dict[str, Any]:
    """A chain's end as ``integrity`` gives it: the audit partition (decisions) or the feed partition
    (receipts) and what its end says against the group's committed offset."""
    end = report.end
    assert end is not None
    state = "not checked" if not end.checked else "short" if end.short else "reaches"
    return {"topic": report.topic, "partition": report.partition, "source": end.source, "group": end.group,
            "last_offset": end.last if end.last >= 0 else None, "committed": end.committed, "state": state,
            "text": end.describe(), "problems": len(report.findings)}


class AuditIndex:
    """The audit index at ``path`` (package docstring): made when missing unless ``readonly``.

    One writer at a time (``writer_lock``; ``broker.auditor.index_topics``) and any number of
    readers. Every reading method takes the auditor's :class:`Scope` first and applies it in the SQL
    itself, so no row beyond the scope is ever read into memory. Not for use from several threads at
    once: open one per thread (or request); opening is cheap.
    """

    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._conn = connect(self.path, readonly, busy_timeout_s)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AuditIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _all(self, sql: str, args: Any = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "reading") from None

    def _one(self, sql: str, args: Any = ()) -> Any:
        rows = self._all(sql, args)
        return rows[0][0] if rows else None

    # ---- writing (the indexer) ----------------------------------------------------------------
    def register(self, topics: Mapping[str, Holds], owners: Mapping[str, str] | None = None) -> None:
        """Record what each audit topic holds and whose receipts topic each is (scopes read it)."""
        try:
            with self._conn:
                self._conn.executemany(
                    "INSERT INTO topics (topic, holds, owner) VALUES (?, ?, ?) ON CONFLICT (topic) DO UPDATE SET "
                    "holds = excluded.holds, owner = COALESCE(excluded.owner, topics.owner)",
                    [(t, h, (owners or {}).get(t)) for t, h in topics.items()])
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "registering the audit topics") from None

    def partition(self, topic: str, partition: int, holds: Holds, verify: VerifyFn, *, owner: str | None = None,
                  batch_rows: int = 5_000, feeds: str | None = None, log_start: int = 0,
                  retention: Retention | None = None, expired_before: int | None = None,
                  log_end: int | None = None) -> PartitionIngest:
        """An ingest of ``topic[partition]`` from its stored position (``.start``): ``add`` each record
        from there in offset order, then ``commit`` (``abort`` on failure). Every vouched receipt is matched
        against the decisions indexed, and one they do not match (none indexed yet, say: a receipts topic
        alone cannot say what was delivered) is a finding, held and matched again at later catch-ups, never
        a row unchecked. ``feeds``: what every feed topic's name starts with, to count how far a receipts
        partition's receipts reach into the feeds (``end_reports``). ``log_start``: the partition's first offset
        Kafka still holds: a chain the index holds nothing of whose first records were before it starts where
        it is held (``PartitionWalk``); records the index read before it are dropped, with every row and finding
        of theirs, and their chains start at their first records held, as a rebuild has them (``_cut``); a chain
        whose next records were deleted unread shows the gap. ``retention``: as ``PartitionWalk``'s, the start
        check of a chain so cut. ``expired_before``: as ``match_receipt``'s, a receipt of a delivery that expired with
        its decision is a row acknowledging nothing, no finding (``broker.auditor.decisions_starts``).
        ``log_end``: where Kafka ends the partition now; at its log start (it holds no record), a chain the log
        start passed every record read of is judged by its newest one (``_cut.cut_start``): one that continues
        gets its next record's start check instead."""
        try:
            return PartitionIngest(self._conn, topic, partition, holds, owner, verify, batch_rows, self.path, feeds,
                                   log_start, retention, expired_before, log_end)
        except sqlite3.Error as exc:
            raise translated(exc, self.path, f"reading where {topic}[{partition}] stands") from None

    def _set_meta(self, key: str, value: str, doing: str) -> None:
        try:
            with self._conn:
                self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                                   "value = excluded.value", (key, value))
        except sqlite3.Error as exc:
            raise translated(exc, self.path, doing) from None

    def positions(self) -> dict[tuple[str, int], int]:
        """Where the index stands in each audit partition it has read (the next offset): every kind, the
        auditors' queries and the collected denials too, so that one Kafka now ends before it (emptied, or
        deleted and made again) is a finding (``record_lost``), never a chain read on from a stale place."""
        return {(t, p): n for t, p, n in self._all(
            "SELECT p.topic, p.partition, p.next_offset FROM positions p JOIN topics t ON t.topic = p.topic "
            "WHERE p.next_offset > 0")}

    def record_lost(self, lost: Mapping[tuple[str, int], tuple[int, int]], now: datetime) -> None:
        """Note, as of this catch-up, each partition Kafka ends before what the index read of it (``lost``:
        (topic, partition) -> (the index's position, Kafka's end)): records it verified are gone (truncated,
        deleted, the topic made again), and the ends it holds vouch for nothing there. Once records are
        written there again past the position, the chain's break is a finding of its own."""
        at = iso_utc(now)
        try:
            with self._conn:
                self._conn.execute("DELETE FROM lost")
                self._conn.executemany("INSERT INTO lost (topic, partition, position, kafka_end, at) "
                                       "VALUES (?, ?, ?, ?, ?)", [(t, p, pos, end, at)
                                                                  for (t, p), (pos, end) in sorted(lost.items())])
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "noting partitions Kafka lost") from None

    def emptied_unchecked(self, starts: Mapping[tuple[str, int], int]) -> list[tuple[str, int, int]]:
        """The audit partitions, of ``starts`` (each one's log start), that hold no record while their log starts
        past offset 0 and that no cut judged at that log start (``_cut.EMPTIED``: every chain it passed whole found
        deleted or expired by its newest record read): every record was deleted, by retention or by hand, and the
        index cannot tell which (it read none of them, or they state no time or retention). Not checked, never
        sound, as `audit verify` reports each such partition (``verify.emptied_unchecked``)."""
        text = self._one("SELECT value FROM meta WHERE key = ?", (EMPTIED,))
        judged: dict[str, int] = json.loads(text) if text is not None else {}
        out = []
        for (topic, partition), log_start in sorted(starts.items()):
            if log_start <= 0 or judged.get(f"{topic}:{partition}") == log_start:
                continue
            if self._one("SELECT 1 FROM records_read WHERE topic = ? AND partition = ? AND \"offset\" >= ? LIMIT 1",
                         (topic, partition, log_start)) is None:
                out.append((topic, partition, log_start))
        return out

    def record_ends(self, ends: GroupEnds, unsettled: set[tuple[str, int]], trimmed: set[str],
                    missing: Iterable[str] = (), emptied: Iterable[tuple[str, int, int]] = ()) -> None:
        """Keep the groups' committed offsets this catch-up read before its reads (``end_reports`` checks
        the chains' ends against them), the audit partitions whose open transactions did not end before
        it read (``unsettled``), the receipts topics records were deleted from (``trimmed``), the
        planned audit topics the cluster did not hold (``missing``: each a finding, ``missing_topic``) and the
        partitions emptied past offset 0 that are not checked (``emptied``: ``emptied_unchecked``)."""
        feeds = ends.feeds
        self._set_meta("ends", json_text({
            "ingress": [[t, p, c] for (t, p), c in sorted(ends.ingress.items())],
            "feeds": [[t, p, c] for (t, p), c in sorted(feeds.committed.items())], "asked": sorted(feeds.asked),
            "prefix": feeds.feeds, "readers": feeds.readers, "refused": list(ends.refused),
            "unsettled": sorted([t, p] for t, p in unsettled), "trimmed": sorted(trimmed), "missing": sorted(missing),
            "emptied": sorted([t, p, at] for t, p, at in emptied),
            "read_at": iso_utc(datetime.now(UTC))}), "keeping the groups' offsets")

    def finish(self, now: datetime) -> None:
        """Note when the index last caught up."""
        self._set_meta("indexed_at", iso_utc(now), "noting the catch-up")
        try:
            # Statistics for the query planner, from a bounded sample: without them SQLite may walk a
            # partner's whole index in time order where an alert's index finds a handful of rows.
            self._conn.execute("PRAGMA analysis_limit = 1000")
            self._conn.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "noting the catch-up") from None

    def position(self, topic: str, partition: int) -> int:
        """The next offset of ``topic[partition]`` to index (0: none yet)."""
        return int(self._one("SELECT next_offset FROM positions WHERE topic = ? AND partition = ?",
                             (topic, partition)) or 0)

    def problems(self, scope: Scope = _NATIONAL, given: ChainEnds | None = None) -> int:
        """How many problems verification found that ``scope`` may count (all: national), counted in
        SQL over the topics the scope may see, as ``audit verify`` counts them; with the chain ends'
        problems (``given``: ``end_reports(scope)`` already made)."""
        topics = self._topics()
        chains, repeated = self._chain_states(scope, topics)
        where, args = self._findings_where(scope, topics, repeated, texts=False)
        tails = sum(1 for t, _, key, s in chains if topics.get(t, ("", None))[0] == "receipts"
                    and chain_name(key) is not None and s.tail)
        seen = self._visible(scope, topics, texts=False)
        retired = sum(1 for f in self._retired(topics) if seen is None or f.topic in seen)
        ends = (given if given is not None else self.end_reports(scope)).problems
        return int(self._one(f"SELECT COUNT(*) FROM findings WHERE {where}", args) or 0) + tails + retired + ends

    def _retired(self, topics: Mapping[str, tuple[str, str | None]]) -> list[Finding]:
        """The broker's blocks signed by a key it had moved on from in another of its chains (``retired_keys``),
        from the chain states the index holds, all of the broker's chains together whatever the scope: a later
        catch-up of one partition can make a key retired in every other, so this is read, never stored."""
        return retired_keys((t, p, ChainState.from_json(json.loads(text))) for t, p, text in self._all(
            "SELECT topic, partition, state FROM chains WHERE chain_key = ? ORDER BY topic, partition",
            [chain_key(None)]) if topics.get(t, ("", None))[0] in ("decisions", "denials"))

    def end_reports(self, scope: Scope = _NATIONAL) -> ChainEnds:
        """Each chain's end against the offset its group committed with it, as ``audit verify`` checks them
        (``end_check``, ``unnamed_ingress``, ``receipt_ends``), from the offsets the last catch-up read
        before its reads (``record_ends``) and the ends the index holds. A national auditor gets every
        end; a scoped one the count of the decision chains' end problems, and its own feeds' and receipts
        topic's ends, never another partner's or a national-only topic's (``_shared``)."""
        text = self._one("SELECT value FROM meta WHERE key = 'ends'")
        if text is None:
            return ChainEnds(why=["the index has not been caught up with the groups' committed offsets: run "
                                  "`puente audit index` (or `--rebuild`) as the auditor"])
        snap = json.loads(text)
        topics = self._topics()
        # Kafka's refusals and a policy error name groups, feeds and partners: a scoped auditor is told
        # only that some offsets were kept from view.
        refused = list(snap["refused"]) if scope.national or not snap["refused"] else [
            "some groups' committed offsets or the policy could not be read: those ends were not checked (the "
            "details are shown to national auditors)"]
        out = ChainEnds(why=refused, read_at=snap["read_at"])
        unsettled = {(t, p) for t, p in snap["unsettled"]}
        ingress = {(t, p): c for t, p, c in snap["ingress"]}
        decided = []
        for topic, part, source, last, at in self._all("SELECT topic, partition, source, last, \"offset\" FROM "
                                                       "chain_ends ORDER BY topic, partition"):
            if topics.get(topic, ("", None))[0] != "decisions":
                continue
            where, _, number = source.rpartition(":")
            end = EndCheck(source, last, ingress.get((where, int(number))) if number.isdigit() else None)
            if end.short and (topic, part) in unsettled:
                end = replace(end, unsettled=True)
            report = PartitionReport(topic, part, end=end)
            # Unsound records after the last sound block are findings already, and the end may be among them.
            if end.short and not self._one("SELECT 1 FROM findings WHERE topic = ? AND partition = ? AND "
                                           "\"offset\" > ? LIMIT 1", (topic, part, at)):
                report.findings.append(Finding(topic, part, at, end.problem()))
            decided.append(report)
        decided += unnamed_ingress(decided, ingress)
        lost = {(t, p): (pos, end, at) for t, p, pos, end, at in self._all(
            "SELECT topic, partition, position, kafka_end, at FROM lost ORDER BY topic, partition")}
        gone = []
        for (t, p), (pos, end, at) in lost.items():
            report = PartitionReport(t, p)
            report.findings.append(Finding(t, p, end, (
                f"the index verified this partition to offset {pos - 1}, but Kafka ended it at offset {end} "
                f"({plain(at)}): records were removed after they were indexed (truncated, deleted, or the topic made "
                "again), and no end check can vouch for them; run `puente audit verify` and `puente audit index "
                "--rebuild`")))
            gone.append(report)
        # Partitions lost and planned topics missing, of any kind: each is shared as its topic allows (``_shared``).
        placed = [r for r in gone if topics.get(r.topic, ("", None))[0] != "receipts"]
        placed += [missing_topic(t, topics[t][0]) for t in snap.get("missing", []) if t in topics]
        placed += [r for r in gone if topics.get(r.topic, ("", None))[0] == "receipts"]
        if scope.national:
            out.reports += decided + placed
        else:
            # The decision chains' own ends (and ingress partitions no decision chain records) concern every
            # partner: counted. The rest only as its topic allows: a partner's auditor counts a decisions
            # topic's, reads its own receipts topic's, and is told nothing of another partner's or a
            # national-only topic's (denials, queries).
            counted = decided + [r for r in placed if _shared(scope, topics, r.topic) == "counted"]
            out.counted = sum(len(r.findings) for r in counted)
            out.counted_unchecked = sum(1 for r in counted if r.end is not None and not r.end.checked)
            out.reports += [r for r in placed if _shared(scope, topics, r.topic) == "read"]
        out.reports += self._receipt_ends(scope, snap, topics, unsettled, {(r.topic, r.partition) for r in gone})
        for topic, part, log_start in snap.get("emptied", []):  # not checked, as its topic allows (``_shared``)
            shared = _shared(scope, topics, topic)
            if shared == "read":
                out.why.append(emptied_unchecked(topic, part, log_start, topics.get(topic, ("", None))[0] or None,
                                                index=True))
            elif shared == "counted":
                out.counted_unchecked += 1
        return out

    def _receipt_ends(self, scope: Scope, snap: dict[str, Any], topics: Mapping[str, tuple[str, str | None]],
                      unsettled: set[tuple[str, int]], lost: set[tuple[str, int]]) -> list[PartitionReport]:
        """The receipts' ends (``receipt_ends``) under the policy the last catch-up read: each feed's reach is
        its partner's receipts' (stored per receipts partition, so per partner), and a partner's vouched
        receipts naming a feed the policy gives another are a problem at its receipts partition. What a
        receipts partition Kafka lost had reached counts for nothing.

        A partner's auditor reads by an allow-list: the ends of the feeds the policy gives its partner, never of
        one its partner's receipts merely claim (a feed the policy gives no partner: a former partner's, whose
        offsets say how many alerts that partner got and when), and of its partner's receipts naming any feed the
        policy does not give it, that they did, neither whose nor where."""
        readers: dict[str, str] = snap["readers"]
        reach = ReceiptReach(readers, snap["prefix"])
        rows = [(owner, t, p, feed, fp, sound, accepted, seen) for t, p, feed, fp, sound, accepted, seen in self._all(
            "SELECT topic, partition, feed, feed_partition, sound, accepted, seen FROM receipt_reach "
            "ORDER BY topic, partition, feed, feed_partition")
            if (owner := topics.get(t, ("", None))[1]) is not None and (t, p) not in lost]
        for owner, _, _, feed, _, sound, _, _ in rows:
            if feed not in readers and sound >= 0:  # a feed no partner in the policy reads: who claims it
                reach.claims.setdefault(feed, set()).add(owner)
        foreign: list[PartitionReport] = []
        for owner, t, p, feed, fp, sound, accepted, seen in rows:
            if (reader := readers.get(feed)) is not None and reader != owner:
                if sound >= 0 and scope.national:
                    foreign.append(self._foreign(t, p, owner, f"feed {plain(feed, 120)}:{fp}, which the policy "
                                                              f"gives {plain(reader)}, not {plain(owner)}"))
                continue
            for kept, value in ((reach.sound, sound), (reach.accepted, accepted), (reach.seen, seen)):
                if value >= 0:
                    kept[(feed, fp)] = max(kept.get((feed, fp), -1), value)
        receipts = {t: owner for t, (holds, owner) in topics.items() if holds == "receipts"}
        written = {t for (t,) in self._all("SELECT DISTINCT topic FROM chains UNION "
                                           "SELECT DISTINCT topic FROM findings")}
        silent = {owner or "" for t, owner in receipts.items() if t not in written and t not in snap["trimmed"]}
        stuck = {receipts[t] for t, _ in unsettled if t in receipts}
        reports = receipt_ends(reach, {(t, p): c for t, p, c in snap["feeds"]}, frozenset(snap["asked"]),
                               subscriber_group, stuck, silent)
        if scope.national:
            return foreign + reports
        # Which partner the policy gives a feed, or that it gives it none, is the policy's word about another
        # partner: the scope's auditor reads that its partner's receipts named a feed not its own, not whose.
        named = [self._foreign(t, p, owner, f"a feed the policy does not give {plain(owner)}")
                 for owner, t, p, feed, _, sound, _, _ in rows
                 if owner == scope.partner and sound >= 0 and readers.get(feed) != owner]
        return named + [r for r in reports if readers.get(r.topic) == scope.partner]

    def _foreign(self, topic: str, partition: int, owner: str, named: str) -> PartitionReport:
        """A problem at ``owner``'s receipts partition: its sound receipts name a feed not its own (``named``)."""
        report = PartitionReport(topic, partition)
        report.findings.append(Finding(topic, partition, self._last_offset(topic, partition), (
            f"receipts name {named}: {plain(owner)} signed receipts for records it cannot have read")))
        return report

    def _last_offset(self, topic: str, partition: int) -> int:
        return int(self._one("SELECT next_offset FROM positions WHERE topic = ? AND partition = ?",
                             (topic, partition)) or 1) - 1

    # ---- scope ----------------------------------------------------------------------------------
    def _topics(self) -> dict[str, tuple[str, str | None]]:
        return {t: (h, o) for t, h, o in self._all("SELECT topic, holds, owner FROM topics")}

    @staticmethod
    def _visible(scope: Scope, topics: Mapping[str, tuple[str, str | None]], texts: bool) -> list[str] | None:
        """The topics whose problems ``scope`` may count (``texts``: read), None for all (national)."""
        if scope.national:
            return None
        return [t for t in topics if _shared(scope, topics, t) == "read" or
                (not texts and _shared(scope, topics, t) == "counted")]

    def _chain_states(self, scope: Scope, topics: Mapping[str, tuple[str, str | None]],
                      ) -> tuple[list[tuple[str, int, str, ChainState]], list[int]]:
        """The chains ``scope`` may count, and the ids of the findings not to count again: a receipt
        both for no audited delivery and the first one no checkpoint vouches for is one problem (the
        unvouched tail), as ``verify_topics`` reports it."""
        seen = self._visible(scope, topics, texts=False)
        chains = [(t, p, k, ChainState.from_json(json.loads(text))) for t, p, k, text in self._all(
            "SELECT topic, partition, chain_key, state FROM chains ORDER BY topic, partition, chain_key")
            if seen is None or t in seen]
        repeated: list[int] = []
        for t, p, k, s in chains:
            if s.tail and s.tail_first is not None and chain_name(k) is not None:
                repeated += [i for (i,) in self._all(
                    "SELECT id FROM findings WHERE topic = ? AND partition = ? AND chain_key = ? AND \"offset\" = ? "
                    "AND unmatched = 1", [t, p, k, s.tail_first])]
        return chains, repeated

    def _findings_where(self, scope: Scope, topics: Mapping[str, tuple[str, str | None]], repeated: list[int],
                        texts: bool) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1 = 1"]
        args: list[Any] = []
        seen = self._visible(scope, topics, texts)
        if seen is not None:
            clauses.append(f"topic IN ({', '.join('?' * len(seen))})" if seen else "0 = 1")
            args += seen
        if repeated:
            clauses.append(f"id NOT IN ({', '.join('?' * len(repeated))})")
            args += repeated
        return " AND ".join(clauses), args

    def _where(self, scope: Scope, q: Query) -> tuple[str, list[Any]]:
        """The SQL condition of ``q`` within ``scope``. For a scoped auditor, a filter outside
        ``ANY_ROW_FILTERS`` also keeps to the rows delivered to its partner whose view kept the field it
        filters on (``FILTER_COLUMNS``; one in ``DELIVERED_FILTERS``, to those rows whatever their view kept; any
        other, to rows whose view kept every one of them): a row whose column the auditor reads blank must not
        match a value it was never sent."""
        clauses: list[str] = ["1 = 1"]
        args: list[Any] = []
        given = [f.name for f in fields(Query) if f.name not in ANY_ROW_FILTERS and getattr(q, f.name) is not None]
        describing = [n for n in given if n not in DELIVERED_FILTERS]
        if not scope.national and given:
            clauses.append(_DELIVERED_SCOPED)
            clauses += [f"(hidden & {bit(FILTER_COLUMNS[n]) if n in FILTER_COLUMNS else ALL_HIDDEN}) = 0"
                        for n in describing]
        # With one alert id asked for, the alert's index finds its handful of rows; unary + keeps SQLite
        # from walking a partner's (or agency's) whole index in time order instead.
        keep_off = "+" if q.alert and not q.alert.endswith("*") else ""
        # A scoped auditor's query walks its partner's rows, never an index over every partner's (an
        # agency's, a type's): how long an answer of 0 took would tell how many rows others have. (The
        # outcome keeps its index: with the partner's, (partner, decision, at_ms) is the one it leads.)
        others = "+" if keep_off or not scope.national else ""
        if scope.partner is not None:  # the scope's own clause, never left out for a partner that tests false
            clauses.append("partner = ?")  # what the partner's own index seeks by (``_source``)
            args.append(scope.partner)
        for column, value in (("partner", q.partner), ("originator", q.agency), ("agreement", q.agreement),
                              ("decision", q.decision), ("alert_type", q.alert_type)):
            if value:
                clauses.append(f"{keep_off if column in ('partner', 'decision') else others}{column} = ?")
                args.append(value)
        if q.alert:
            # A scoped auditor names an alert by the id its partner knows it by (its reference), or by its alias
            # while its partner was never sent it: the alert's own id finds nothing, as an alert that does not
            # exist (``_resolve``), and a prefix matches what the auditor reads of each row, never the own id.
            if q.alert.endswith("*"):
                prefix = q.alert[:-1]
                if prefix and scope.national and prefix.startswith(REFERENCE_PREFIX):
                    # A national auditor names an alert by any partner's reference too (``_resolve``): by its start.
                    clauses.append(f"alert_id IN (SELECT alert_id FROM decisions INDEXED BY decisions_by_name WHERE "
                                   f"{KNOWN_AS.format(t='')} >= ? AND {KNOWN_AS.format(t='')} < ? AND ref IS NOT NULL)")
                    args += [prefix, prefix + "\U0010ffff"]
                elif prefix and scope.national:
                    clauses.append("alert_id >= ? AND alert_id < ?")
                    args += [prefix, prefix + "\U0010ffff"]
                elif prefix:
                    named = f"COALESCE({_HELD_AS.format(t='decisions')}, alias)"  # as ``scoped`` names the row
                    clauses.append(f"substr({named}, 1, ?) = ?")
                    args += [len(prefix), prefix]
            else:
                resolved = self._resolve(scope, q.alert)
                # One not found seeks nothing (NULL equals no id), by the alert's index all the same (``_source``).
                clauses.append("alert_id = ?")
                args.append(resolved[0] if resolved is not None else None)
        if q.rule:
            if scope.partner is not None and q.rule not in OPEN_RULES:
                # A rule on the alert's content: its partner's auditor reads it only on a row whose view went to the
                # partner (``scoped``), so it matches those alone, each by its own rules (by the row's id, never by
                # a count of the rule's rows, which would count the withheld ones too: ``_source``).
                clauses += [_DELIVERED_SCOPED, "EXISTS (SELECT 1 FROM decision_rules WHERE decision_id = decisions.id "
                                               "AND rule = ?)"]
                args.append(q.rule)
            elif scope.partner is not None:  # (the same: only its partner's rule rows, which ``_source`` seeks by)
                clauses.append("id IN (SELECT decision_id FROM decision_rules INDEXED BY rules_by_partner WHERE "
                               "partner = ? AND rule = ?)")
                args += [scope.partner, q.rule]
            else:
                clauses.append("id IN (SELECT decision_id FROM decision_rules WHERE rule = ?)")
                args.append(q.rule)
        if q.since is not None:
            clauses.append("at_ms >= ?")
            args.append(_ms(q.since))
        if q.until is not None:
            clauses.append("at_ms <= ?")
            args.append(_ms(q.until))
        return " AND ".join(clauses), args

    def _source(self, scope: Scope, q: Query) -> str:
        """The decisions table as a search of ``q`` within ``scope`` reads it (``_decisions``): for a scoped
        auditor, one alert's rows of its partner by the alert's index; else, filtered by a rule its partner's rule
        rows name at most ``RULE_SEEKS`` times, those rows each by its id (``NOT INDEXED``: by id, never by an index
        over every partner's rows; the ids only its partner's rule rows give, ``_where``); else its partner's rows by
        outcome, when filtered by one, or by time (a rule outside ``OPEN_RULES``, which matches its delivered rows
        alone, ``_where``, by time too: how many rows of the rule there are, withheld ones included, chooses
        nothing)."""
        if q.alert and not q.alert.endswith("*"):
            return _decisions(scope, "decisions_by_alert")
        if q.rule in OPEN_RULES and scope.partner is not None and int(self._one(
                "SELECT COUNT(*) FROM (SELECT 1 FROM decision_rules INDEXED BY rules_by_partner WHERE partner = ? AND "
                "rule = ? LIMIT ?)", [scope.partner, q.rule, RULE_SEEKS + 1]) or 0) <= RULE_SEEKS:
            return "decisions NOT INDEXED"
        return _decisions(scope, "decisions_by_partner_decision" if q.decision else "decisions_by_partner")

    def _resolve(self, scope: Scope, given: str) -> tuple[str, bool] | None:
        """The alert ``given`` names in ``scope`` (its own id), and whether that scope's partner held it (was sent a
        view or a recall notice of it, at some version). A national auditor names it by its id, or by any partner's
        reference to it (what that partner's receipts name), held. A scoped auditor names it by what it reads on
        its rows (``_scope.scoped``): once its partner held it, by the id the partner knows it by (``_HELD_AS``: its
        reference), otherwise by its alias in that scope (``_scope.alias``); never by its own id (unless every record
        sent to the partner named it so, in blocks written before references). None for any other name, whether or
        not such an alert exists: an alert's own id is for national auditors only, and finding it would say that it
        exists, and which alert the partner's reference stands for."""
        if scope.partner is None:
            if given.startswith(REFERENCE_PREFIX):
                found = self._one(f"SELECT alert_id FROM decisions INDEXED BY decisions_by_name WHERE "
                                  f"{KNOWN_AS.format(t='')} = ? AND ref IS NOT NULL LIMIT 1", [given])
                if found is not None:
                    return str(found), True
            return given, True
        if ALIAS.fullmatch(given):
            found = self._one("SELECT alert_id FROM decisions WHERE alias = ? AND partner = ? LIMIT 1",
                              [given, scope.partner])
            return (str(found), self._held_as(scope.partner, str(found)) is not None) if found is not None else None
        found = self._one(f"SELECT alert_id FROM decisions INDEXED BY decisions_by_name WHERE {KNOWN_AS.format(t='')} "
                          "= ? AND partner = ? AND went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED', 'RECALL') "
                          "LIMIT 1", [given, scope.partner])
        if found is None or self._held_as(scope.partner, str(found)) != given:
            return None
        return str(found), True

    def _held_as(self, partner: str, alert_id: str) -> str | None:
        """The id by which ``partner`` knows alert ``alert_id`` (``_HELD_AS``), None while it was never sent it."""
        found = self._one(f"SELECT {_HELD_AS.format(t='a')} FROM (SELECT ? AS alert_id, ? AS partner) a",
                          [alert_id, partner])
        return str(found) if found is not None else None

    # ---- reading --------------------------------------------------------------------------------
    def search(self, scope: Scope, q: Query, page: int = 1, per_page: int = 50) -> Page:
        """Decision rows matching ``q`` within ``scope``, newest first, one page of them."""
        page, per_page = max(1, page), min(max(1, per_page), MAX_PER_PAGE)
        where, args = self._where(scope, q)
        source = self._source(scope, q)
        total = int(self._one(f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?)",
                              [*args, COUNT_LIMIT + 1]) or 0)
        rows = self._all(f"SELECT {_columns(scope)} FROM {source} WHERE {where} ORDER BY at_ms DESC, id DESC "
                         "LIMIT ? OFFSET ?", [*args, per_page, (page - 1) * per_page])
        return Page([scoped(scope, _decision_row(r)) for r in rows], min(total, COUNT_LIMIT), page, per_page,
                    capped=total > COUNT_LIMIT)

    def count(self, scope: Scope, q: Query) -> int:
        """How many decision rows match ``q`` within ``scope``, uncapped (what an export will stream)."""
        where, args = self._where(scope, q)
        return int(self._one(f"SELECT COUNT(*) FROM {self._source(scope, q)} WHERE {where}", args) or 0)

    def counted_export(self, scope: Scope, q: Query) -> tuple[int, Iterator[dict[str, Any]]]:
        """``count`` and ``export`` read from one snapshot of the index: a read transaction begins before the
        count and ends once the rows are all read (or the iterator is closed). A catch-up that commits
        between the two would otherwise make the oversight log record one number and the CSV hold another."""
        try:
            self._conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "reading") from None
        try:
            total = self.count(scope, q)
        except BaseException:
            self._end_snapshot()
            raise
        return total, self._in_snapshot(self.export(scope, q))

    def _in_snapshot(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from rows
        finally:
            self._end_snapshot()

    def _end_snapshot(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # nothing was written: ending the read is all there is to do
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def export(self, scope: Scope, q: Query) -> Iterator[dict[str, Any]]:
        """Every decision row matching ``q`` within ``scope``, newest first, streamed (for CSV)."""
        where, args = self._where(scope, q)
        try:
            cursor = self._conn.execute(f"SELECT {_columns(scope)} FROM {self._source(scope, q)} WHERE {where} "
                                        "ORDER BY at_ms DESC, id DESC", args)
            while batch := cursor.fetchmany(1000):
                for r in batch:
                    yield scoped(scope, _decision_row(r))
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "reading") from None

    def facets(self, scope: Scope) -> dict[str, list[str]]:
        """The values each search field takes within ``scope`` (for the search form's choices).

        Each is a pass over an index (hundreds of milliseconds at a million decisions), and every
        search page shows them: they are kept per index file, scope and read position, so they are
        read again only once the index has taken in new records."""
        key = (str(self.path), scope.partner, self._generation())
        with _FACETS_LOCK:
            cached = _FACETS.get(key)
        if cached is None:
            cached = self._facets(scope)  # outside the lock: another page's facets need not wait for these
            with _FACETS_LOCK:
                while len(_FACETS) >= 64:
                    _FACETS.pop(next(iter(_FACETS)))
                _FACETS[key] = cached
        return {name: list(values) for name, values in cached.items()}

    def _generation(self) -> int:
        """Where the index stands: the sum of its read positions, which grows with every record taken in."""
        return int(self._one("SELECT COALESCE(SUM(next_offset), 0) FROM positions") or 0)

    def _facets(self, scope: Scope) -> dict[str, list[str]]:
        """For a scoped auditor, a column outside ``UNDELIVERED_FIELDS`` (the alert's descriptions, and the
        agreement, which a withheld decision names by the alert's type) lists only the values of rows delivered to its
        partner whose view kept it, as its rows show them; the others list every value of the partner's rows
        (WITHHOLD among the decisions, say)."""
        where, args = ("partner = ?", [scope.partner]) if scope.partner is not None else ("1 = 1", [])
        out: dict[str, list[str]] = {TOO_MANY: []}

        def listed(name: str, sql: str, bound: list[Any] = args) -> None:
            values = [v for (v,) in self._all(f"{sql} LIMIT {MAX_CHOICES + 1}", bound)]
            if len(values) > MAX_CHOICES:
                out[TOO_MANY].append(name)
                values = []
            out[name] = values

        for name, column in (("partners", "partner"), ("agencies", "originator"), ("agreements", "agreement"),
                             ("decisions", "decision"), ("alert_types", "alert_type")):
            only = "" if scope.national or column in UNDELIVERED_FIELDS else f" AND {_DELIVERED}"
            if not scope.national and column in VIEW_COLUMNS:
                only += f" AND (hidden & {bit(column)}) = 0"
            listed(name, f"SELECT DISTINCT {column} FROM {_decisions(scope, 'decisions_by_partner_decision')} WHERE "
                         f"{where}{only} AND {column} IS NOT NULL ORDER BY 1")
        if scope.national:
            listed("rules", f"SELECT DISTINCT rule FROM decision_rules WHERE {where} ORDER BY 1")
        else:  # as ``scoped`` reads them: on a row not sent to its partner, only ``OPEN_RULES`` (``_where`` matches so)
            delivered = (f"SELECT id FROM {_decisions(scope, 'decisions_by_partner_decision')} WHERE {where} AND "
                         f"{_DELIVERED}")
            listed("rules", f"SELECT DISTINCT rule FROM decision_rules INDEXED BY rules_by_partner WHERE {where} AND "
                            f"(rule IN ({open_rules_sql()}) OR decision_id IN ({delivered})) ORDER BY 1", args * 2)
        return out

    def alert_name(self, scope: Scope, given: str) -> str | None:
        """The id ``scope`` reads on the rows of the alert ``given`` names (``_resolve``): a national auditor's is
        the alert's own id, whether ``given`` is that or a partner's reference; a scoped auditor's its partner's
        reference once its partner held the alert, else its alias. None when ``given`` names no alert in scope."""
        resolved = self._resolve(scope, given)
        if resolved is None:
            return None
        alert_id, held = resolved
        if scope.partner is None:
            return alert_id
        return self._held_as(scope.partner, alert_id) if held else given  # not held: found by its alias alone

    def timeline(self, scope: Scope, alert_id: str, partner: str | None = None) -> list[dict[str, Any]] | None:
        """One alert's life as ``scope`` may see it, oldest first: published (and updated or recalled)
        per version, decided for each partner (DELIVERED, WITHHELD, RECALLED notice, or DECIDED when
        nothing went out), receipted (when the receipt acknowledges: no earlier than Kafka appended it, its partner's
        earlier time in its detail; of each partner the first of each delivery and the first ``TIMELINE_RECEIPTS`` of
        the others, then a ``NOT_SHOWN`` event with the number of the rest, ``not_shown``, and ``capped`` when past
        ``COUNT_LIMIT``), dead-lettered (national
        scope only; its detail led by where the record came from, and its id marked the record's unproven key when
        its origin was not proven: ``dead_letter_source``). None when the scope sees nothing of it: a scoped auditor
        cannot tell an alert about another partner from one that does not exist, nor one its partner was never sent
        from one that does not exist: it finds an alert by the name it reads on its rows (its partner's reference,
        or its alias while its partner was never sent it: ``_resolve``), never by its own id, and one never sent
        shows that partner's decisions alone, no receipt. A national auditor finds it by its own id or by any
        partner's reference, whose receipts are listed whatever id they name it by. ``partner``: one partner's
        events only (a national auditor's ``?partner=``), the scope's own when scoped.

        An alert of many versions lists its newest ``TIMELINE_VERSIONS`` versions decided for the partners listed,
        and its recalls whatever version they reuse, and says first how many earlier versions it leaves out; receipts
        from the first of those decisions on; the newest ``TIMELINE_DEAD_LETTERS`` dead letters, saying how many
        others there are."""
        resolved = self._resolve(scope, alert_id)
        if resolved is None:
            return None
        alert_id, held = resolved
        partner = scope.partner if scope.partner is not None else partner
        since, earlier, capped = self._newest_versions(alert_id, partner)
        # The alert's own index, its partner's rows alone: not the partner's whole history (see _where), nor the
        # other partners' rows of the alert.
        who, args = ((" AND partner = ?", [alert_id, partner]) if partner is not None else ("", [alert_id]))
        kept, recalls = self._listed_decisions(_columns(scope), who, args, since, "at_ms, id")
        decisions = sorted((scoped(scope, _decision_row(r)) for r in (*kept, *recalls)),
                           key=lambda d: at_ms(d.get("at")) or 0)  # stable: each part is in time order already
        first_ms = min((ms for d in decisions if (ms := at_ms(d.get("at"))) is not None), default=None)
        receipts, unshown = (self._timeline_receipts(scope, alert_id, partner, since, first_ms if since else None)
                             if held else ([], {}))
        # Those whose origin was proven (the agency whose id it is wrote them) and the others, each its own newest
        # TIMELINE_DEAD_LETTERS: records anyone able to write some ingress topic keyed with this id never push the
        # agency's own out of the list.
        dead, more_dead = [], 0
        if scope.national:
            proven = f"reason IN ({', '.join('?' * len(ORIGIN_PROVEN))})"
            for kind in (proven, f"NOT {proven}"):
                listed = self._all(
                    "SELECT id, reason, detail, source, ingress, ingress_ms, at, at_ms FROM (SELECT * FROM "
                    f"dead_letters WHERE alert_id = ? AND {kind} ORDER BY id DESC LIMIT ?)",
                    [alert_id, *sorted(ORIGIN_PROVEN), TIMELINE_DEAD_LETTERS])
                dead += listed
                if len(listed) == TIMELINE_DEAD_LETTERS:
                    more_dead += int(self._one(
                        f"SELECT COUNT(*) FROM (SELECT 1 FROM dead_letters WHERE alert_id = ? AND {kind} LIMIT ?)",
                        [alert_id, *sorted(ORIGIN_PROVEN), COUNT_LIMIT + 1]) or 0) - TIMELINE_DEAD_LETTERS
            dead = [row[1:] for row in sorted(dead, key=lambda row: row[0])]
        if not (decisions or receipts or dead):
            return None
        events: list[tuple[int, int, dict[str, Any]]] = []

        def event(when: int | None, rank: int, kind: str, **fields: Any) -> None:
            base = dict.fromkeys(("at", "partner", "version", "decision", "agreement", "rules", "reasons", "redacted",
                                  "status", "detail"))
            events.append((when if when is not None else 0, rank, {**base, **fields, "kind": kind}))

        if earlier:  # first: what is not listed, before all that is
            event(-1, -1, VERSIONS_NOT_SHOWN, not_shown=earlier, capped=capped,
                  detail=f"{_counted(earlier, capped, 'earlier version')} not shown: a timeline lists the newest "
                  f"{TIMELINE_VERSIONS} (`puente audit log --alert` lists them all)")
        if more_dead > 0:
            capped_dead = more_dead + TIMELINE_DEAD_LETTERS > COUNT_LIMIT
            shown = min(more_dead, COUNT_LIMIT - TIMELINE_DEAD_LETTERS)
            event(-1, -1, DEAD_LETTERS_NOT_SHOWN, not_shown=shown, capped=capped_dead,
                  detail=f"{_counted(shown, capped_dead, 'earlier dead letter')} under this id not shown: a timeline "
                  f"lists the newest {TIMELINE_DEAD_LETTERS} (the dead letters page lists them all)")

        published: set[int] = set()
        for d in decisions:
            version = d["version"]
            if version not in published and isinstance(d.get("ingress_ms"), int):
                published.add(version)
                kind = ("RECALLED" if d.get("action") == "RECALL" else "PUBLISHED" if version == 1 and
                        not d.get("action") else "UPDATED")
                event(d["ingress_ms"], 0, kind, at=iso_ms(d["ingress_ms"]), version=version,
                      detail=" ".join(str(x) for x in (d.get("action"), d.get("reason")) if x) or None)
        for d in decisions:
            outcome = d.get("decision")
            went = d.get("sent") is not False
            kind = ("DELIVERED" if outcome in DELIVERS and went else "WITHHELD" if outcome == "WITHHOLD" else
                    "RECALLED" if outcome == "RECALL" and went else "DECIDED")
            event(at_ms(d.get("at")), 1, kind, at=d.get("at"), partner=d.get("partner"), version=d["version"],
                  decision=outcome, agreement=d.get("agreement"), rules=d["rules"], reasons=d["reasons"],
                  redacted=d["redacted"], detail=None if went else "the feed record was not sent")
        for partner, version, status, at, ms, detail, feed in receipts:
            # Placed and dated when it acknowledges (``at_ms``: no earlier than Kafka appended it and its checkpoint,
            # whatever its partner's clock said), the time the partner stated beside it when that is earlier.
            stated = at_ms(at)
            dated = f"dated {at} by {partner}" if ms is not None and stated is not None and stated < ms else None
            event(ms, 2, "RECEIPT", at=iso_ms(ms) if ms is not None else at, partner=partner, version=version,
                  status=status, detail="; ".join(x for x in (dated, detail or feed) if x) or None)
        for partner, (more, capped, ms) in unshown.items():  # where the first receipt not listed would be
            event(ms, 2, NOT_SHOWN, at=iso_ms(ms) if ms is not None else None, partner=partner, not_shown=more,
                  capped=capped, detail=f"{_counted(more, capped, 'more receipt')} from {partner} "
                  f"not shown: a timeline lists the first receipt of each delivery and the first "
                  f"{TIMELINE_RECEIPTS} of a partner's others")
        for reason, detail, source, ingress, ingress_ms, at, ms in dead:
            # Listed under the alert id it names, which is only its record's key: where it came from is said first.
            came = dead_letter_source({"alert_id": alert_id, "reason": reason, "ingress": ingress or source})
            event(ms if ms is not None else ingress_ms, 1, "DEAD_LETTER", at=at, status=reason,
                  detail=f"{came}: {detail or ''}" if came else detail)
        return [scoped(scope, e) for _, _, e in sorted(events, key=lambda t: (t[0], t[1]))]

    def _listed_decisions(self, columns: str, who: str, args: list[Any], since: int,
                          order: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(the alert's decision rows of versions from ``since`` on, its recalls of earlier versions), each part in
        ``order``: ``args`` give ``alert_id = ?`` and the ``who`` clause. Each part one range of an index
        (``decisions_by_alert``, ``decisions_recalls``): an OR of the two read every row of the alert."""
        kept, *recalls = [self._all("SELECT " + columns + " FROM decisions INDEXED BY " + index + " WHERE alert_id = ?"
                                    + who + cut + " ORDER BY " + order, [*args, *more])
                          for index, cut, more in _version_cuts(since)]
        return kept, recalls[0] if recalls else []

    def _newest_versions(self, alert_id: str, partner: str | None) -> tuple[int, int, bool]:
        """(the oldest version of ``alert_id`` a timeline lists, how many earlier versions it leaves out, whether
        that count stopped at ``COUNT_LIMIT``): its newest ``TIMELINE_VERSIONS`` versions decided (for ``partner``,
        when given). Seeks into ``decisions_by_alert``, which orders an alert's rows by partner, then version."""
        who, args = (" AND partner = ?", [alert_id, partner]) if partner is not None else ("", [alert_id])
        newest = [int(v) for (v,) in self._all(
            f"SELECT DISTINCT version FROM decisions INDEXED BY decisions_by_alert WHERE alert_id = ?{who} "
            "ORDER BY version DESC LIMIT ?", [*args, TIMELINE_VERSIONS + 1])]
        if len(newest) <= TIMELINE_VERSIONS:
            return 0, 0, False
        since = newest[TIMELINE_VERSIONS - 1]
        earlier = int(self._one(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT version FROM decisions INDEXED BY decisions_by_alert WHERE "
            f"alert_id = ?{who} AND version < ? LIMIT ?)", [*args, since, COUNT_LIMIT + 1]) or 0)
        return since, min(earlier, COUNT_LIMIT), earlier > COUNT_LIMIT

    def _timeline_receipts(self, scope: Scope, alert_id: str, partner: str | None = None, since: int = 0,
                           from_ms: int | None = None
                           ) -> tuple[list[tuple[Any, ...]], dict[str, tuple[int, bool, int | None]]]:
        """The receipts of ``alert_id`` a timeline lists (partner, version, status, at, at_ms, detail, feed), by when
        they acknowledge: of each partner in ``scope``, the first of each delivery it was sent, and the first
        ``TIMELINE_RECEIPTS`` of its others (``TIMELINE_RECEIPTS``); and per partner with more, how many more
        (counted up to ``COUNT_LIMIT``: past it, capped) and when the first of them acknowledges. A seek per
        delivery into ``receipts_by_delivery_time`` and a few per partner into ``receipts_by_alert_time``, whatever
        the number of receipts. Of ``partner`` alone when given; where the timeline leaves earlier versions out, the
        firsts of deliveries of versions from ``since`` on (a recall's, whatever its version) and the others from
        ``from_ms`` on, the first decision it lists: what acknowledges a version not listed is not listed either."""
        # Each partner sent the alert and the ids it knows it by (its reference; the alert's own id where a block
        # written before references sent it): its receipts name those, and every receipt row is bound to a
        # delivery of them to its partner (``_ingest._SENT_SQL``). A handful: the broker's decisions bound them.
        only = scope.partner if scope.partner is not None else partner
        who, args = (" AND partner = ?", [alert_id, only]) if only is not None else ("", [alert_id])
        # Each part one range of an index: an OR of the two would read every row (every receipt) of the alert.
        cuts = _version_cuts(since, "d.")
        lates = [(" AND at_ms IS NULL", []), (" AND at_ms >= ?", [from_ms])] if from_ms is not None else [("", [])]
        names: dict[str, list[str]] = {}
        for partner, name in self._all(
                f"SELECT DISTINCT partner, {KNOWN_AS.format(t='')} FROM decisions INDEXED BY decisions_by_alert WHERE "
                f"alert_id = ?{who} AND went = 1 AND decision IN ('DELIVER', 'DELIVER_REDACTED', 'RECALL') "
                "AND partner IS NOT NULL ORDER BY 1, 2", args):
            names.setdefault(partner, []).append(name)
        columns = "id, partner, version, status, at, at_ms, detail, feed"
        rows: list[tuple[Any, ...]] = []
        unshown: dict[str, tuple[int, bool, int | None]] = {}
        for partner, known in names.items():
            firsts = [r for index, cut, more in cuts for r in self._all(
                f"SELECT {', '.join('r.' + c for c in columns.split(', '))} FROM decisions d INDEXED BY {index} JOIN "
                "receipts r ON r.id = (SELECT id FROM receipts INDEXED BY receipts_by_delivery_time WHERE decision_id "
                f"= d.id ORDER BY at_ms, id LIMIT 1) WHERE d.alert_id = ? AND d.partner = ?{cut} AND d.went = 1 "
                "AND r.partner = d.partner", [alert_id, partner, *more])]
            listed = {r[0] for r in firsts}
            # The first TIMELINE_RECEIPTS + 1 of the others are among the first that many and the firsts, of each id.
            others = sorted((r for name in known for late, more in lates for r in self._all(
                f"SELECT {columns} FROM receipts INDEXED BY receipts_by_alert_time WHERE alert_id = ? AND partner = ?"
                f"{late} ORDER BY at_ms, id LIMIT ?", [name, partner, *more, len(listed) + TIMELINE_RECEIPTS + 1])
                if r[0] not in listed), key=lambda r: (r[5] is not None, r[5] or 0, r[0]))
            if len(others) > TIMELINE_RECEIPTS:
                total = sum(int(self._one(f"SELECT COUNT(*) FROM (SELECT 1 FROM receipts WHERE alert_id = ? AND "
                                          f"partner = ?{late} LIMIT ?)",
                                          [name, partner, *more, len(listed) + COUNT_LIMIT + 1]) or 0)
                            for name in known for late, more in lates)
                rest = total - len(listed)
                unshown[partner] = (min(rest, COUNT_LIMIT) - TIMELINE_RECEIPTS, rest > COUNT_LIMIT,
                                    others[TIMELINE_RECEIPTS][5])
                others = others[:TIMELINE_RECEIPTS]
            rows += firsts + others
        rows.sort(key=lambda r: (r[5] is not None, r[5] or 0, r[0]))  # as ORDER BY at_ms, id: no time first
        return [r[1:] for r in rows], unshown

    def why(self, scope: Scope, alert_id: str, partner: str, field: str,
            envelope: AlwaysKept | None = None) -> list[dict[str, Any]]:
        """For each version of ``alert_id`` decided for ``partner``: what became of ``field`` and which
        rule said so (``named`` False: dropped because no rule names it, views being allow-lists). A
        kept field names ``envelope``'s rule when the envelope keeps it (with the policy version it
        was read from, when the decision was made under another), else every agreement rule in force:
        each one's changes apply, so each of them kept it.
        A change to a field above ``field`` (``location`` dropped) counts for it too; with none, a change inside it
        (``location.border_sector`` dropped) makes it "partly changed", listed in ``changes``, and a change list the
        block cut short (``truncated``), or a change that names no field, "unknown (the change list was cut)": never
        "kept" unless every change is known and none reaches it. A decision that sent
        no view says what it was instead: "withheld" (WITHHOLD, with the first rule that withheld it),
        "recall notice sent" or "recall notice not sent" (RECALL: a notice holds none of the alert's
        fields), "unknown decision" (any other). Empty outside the scope (``alert_id`` as ``_resolve`` takes it: a
        scoped auditor names the alert by its partner's reference, or its alias while never sent it)."""
        if scope.partner is not None and partner != scope.partner:
            return []
        resolved = self._resolve(scope, alert_id)
        if resolved is None:
            return []
        alert_id = resolved[0]
        out: list[dict[str, Any]] = []
        since, earlier, capped = self._newest_versions(alert_id, partner)
        if earlier:  # as the timeline: its newest versions, and a row counting the others first
            out.append({"kind": VERSIONS_NOT_SHOWN, "not_shown": earlier, "capped": capped, "version": None})
        # Its versions in order, then its recalls of earlier versions, by time: after all those listed, as they came.
        kept, recalls = self._listed_decisions(_columns(scope), " AND partner = ?", [alert_id, partner], since,
                                               "version, at_ms, id")
        for r in (*kept, *sorted(recalls, key=lambda row: row[0])):  # by id: the order the chain holds them in
            whole = _decision_row(r)
            d = scoped(scope, whole)
            outcome, rule, named = "kept", d["rules"][0] if d["rules"] else None, True
            decision = d.get("decision")
            if decision == "WITHHOLD":
                outcome = "withheld"  # the rule is the first that withheld it
            elif decision == "RECALL":  # a notice holds no field of the alert: the rule is the recall's
                outcome = "recall notice sent" if d.get("sent") is not False else "recall notice not sent"
            elif decision not in DELIVERS:
                outcome = "unknown decision"  # named as what it is, never passed off as a withholding
            elif not scope.national and d.get("delivered") is not True:
                outcome = "not sent"  # what the view held is not for a partner that was never sent it
            else:
                # Judged on the row as indexed: the scoped one leaves out a change cut to its text, which says
                # the list is not whole (what it passes on, ``changes``, is paths, actions and rules, as ``scoped``).
                outcome, rule, named, inside = _fate(whole, field, envelope)
            out.append(scoped(scope, {
                "version": d["version"], "decision": d.get("decision"), "agreement": d.get("agreement"),
                "rules": d["rules"], "policy_version": d.get("policy_version"), "outcome": outcome, "rule": rule,
                "named": named, "at": d.get("at"), "changes": inside if outcome in (PARTLY, UNKNOWN_CUT) else []}))
        return out

    def integrity(self, scope: Scope, limit: int = MAX_FINDINGS) -> dict[str, Any]:
        """Each chain's state and problems, problems first; the findings' texts (at most ``limit`` of
        them, first by place; ``findings_total`` counts them all). A scoped auditor sees the decisions'
        chains' state and problem counts only (``COUNTED_CHAIN_FIELDS``) and its own receipts' chains whole
        (``CHAIN_FIELDS``, with texts and positions)."""
        topics = self._topics()
        chains_seen, repeated = self._chain_states(scope, topics)
        readable = self._visible(scope, topics, texts=True)

        def texts(topic: str) -> bool:
            return readable is None or topic in readable

        where, args = self._findings_where(scope, topics, repeated, texts=False)
        counts: dict[tuple[str, int, str], int] = {
            (t, p, k): n for t, p, k, n in self._all(
                f"SELECT topic, partition, chain_key, COUNT(*) FROM findings WHERE {where} "
                "GROUP BY topic, partition, chain_key", args)}
        where, args = self._findings_where(scope, topics, repeated, texts=True)
        total = int(self._one(f"SELECT COUNT(*) FROM findings WHERE {where}", args) or 0)
        findings = [{"topic": t, "partition": p, "offset": o, "problem": problem} for t, p, o, problem in self._all(
            f"SELECT topic, partition, \"offset\", problem FROM findings WHERE {where} "
            "ORDER BY topic, partition, \"offset\", id LIMIT ?", [*args, max(0, limit)])]
        broker = chain_key(None)
        seen = {(t, p) for t, p, k, _ in chains_seen if k == broker}
        for f in self._retired(topics):  # the broker's key order across its chains: a finding of that chain
            if (f.topic, f.partition) in seen:
                counts[(f.topic, f.partition, broker)] = counts.get((f.topic, f.partition, broker), 0) + 1
                if texts(f.topic):
                    total += 1
                    findings.append({"topic": f.topic, "partition": f.partition, "offset": f.offset,
                                     "problem": f.problem})
        chains = []
        for topic, part, key, s in chains_seen:
            if not s.records:
                # Every record of it read is deleted (``_cut``): a rebuild lists no such chain. Its state stays for
                # the keys it is checked by; a problem still counted of it is listed below, as one of no chain.
                continue
            problems = counts.pop((topic, part, key), 0)
            name = chain_name(key)
            if topics.get(topic, ("", None))[0] == "receipts" and name is not None and s.tail:
                problems += 1  # receipts no checkpoint vouches for (yet): as `audit verify` reports them
                if texts(topic):
                    total += 1
                    findings.append({"topic": topic, "partition": part, "offset": s.tail_first or 0, "problem": (
                        f"chain {plain(name)}: {s.tail} receipt record(s) from here on that no checkpoint of the "
                        "partner's vouches for")})
            chains.append(_chain_row(texts(topic), {
                "topic": topic, "partition": part, "chain": _named(name), "records": s.records,
                "first_seq": s.first_seq, "signed": s.signed,
                "unsigned_tail": s.tail, "last_checkpoint_at": s.signed_at, "last_checkpoint_seq": s.signed_seq,
                "last_checkpoint_offset": s.signed_offset, "problems": problems}))
        for (topic, part, key), n in counts.items():  # problems at records that name no readable chain
            name = None if key == UNKNOWN_CHAIN else chain_name(key)
            chains.append(_chain_row(texts(topic), {
                "topic": topic, "partition": part, "chain": _named(name), "records": 0, "first_seq": 0, "signed": 0,
                "unsigned_tail": 0,
                "last_checkpoint_at": None, "last_checkpoint_seq": None, "last_checkpoint_offset": None,
                "problems": n}))
        chains.sort(key=lambda c: (c["problems"] == 0, c["topic"], c["partition"], str(c["chain"])))
        ends = self.end_reports(scope)
        for f in (f for r in ends.reports for f in r.findings):
            total += 1
            findings.append({"topic": f.topic, "partition": f.partition, "offset": f.offset, "problem": f.problem})
        findings.sort(key=lambda f: (f["topic"], f["partition"], f["offset"]))
        # Where the index stands in a chain grows with every block, whoever it is about: a scoped auditor
        # reads it only for the topics whose texts it reads (its own receipts).
        positions = [{"topic": t, "partition": p, "next_offset": n} for t, p, n in
                     self._all("SELECT topic, partition, next_offset FROM positions ORDER BY topic, partition")
                     if texts(t)]
        return {"chains": chains, "findings": findings[:max(0, limit)], "findings_total": total,
                "positions": positions, "indexed_at": self._one("SELECT value FROM meta WHERE key = 'indexed_at'"),
                "ends": [_end_row(r) for r in ends.reports if r.end is not None], "end_problems": ends.problems,
                "ends_unchecked": ends.unchecked, "ends_all_checked": ends.all_checked, "ends_why": ends.why,
                "ends_counted": ends.counted, "ends_counted_unchecked": ends.counted_unchecked,
                "ends_read_at": ends.read_at}

    def dead_letters(self, scope: Scope) -> list[dict[str, Any]]:
        """Dead letters grouped by reason and source (the ingress topic), then the ingress records the broker
        never read (GAP entries: deleted before it read them, skipped with --accept-gap), counted by record
        under reason ``never read (<why>)``, and the losses of alert states accepted (``states-lost`` GAP
        entries) and audit chains retention deleted whole (``audit-expired``), or deleted otherwise and read past
        with --accept-gap (``audit-deleted``), and deliveries decided but never written, their feed gone, dropped
        with --accept-gap (``deliveries-lost``), which skip no record, counted by entry; never a payload. Scoped:
        none."""
        if not scope.national:
            return []
        rows = self._all("SELECT reason, source, COUNT(*), MIN(at), MAX(at) FROM dead_letters "
                         "GROUP BY reason, source ORDER BY COUNT(*) DESC, reason, source")
        # An index made before GAP entries has no such table until a writer opens it (the console reads only).
        if self._one("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'gaps'"):
            # A loss of alert states (``states-lost``) and a chain retention deleted whole (``audit-expired``: the
            # slot's new chain starts with it) skipped no record: each is named as what it is, counted by the gaps
            # that record it.
            rows += self._all("SELECT CASE WHEN reason = 'states-lost' THEN 'alert states lost (who holds what)' "
                              "WHEN reason = 'audit-expired' THEN 'audit chain expired (a new one started)' "
                              "WHEN reason = 'audit-deleted' THEN 'audit chain deleted, not expired (a new one "
                              "started, --accept-gap)' "
                              "WHEN reason = 'deliveries-lost' THEN 'deliveries decided, never written (their feed "
                              "gone, --accept-gap)' "
                              "ELSE 'never read (' || COALESCE(reason, '?') || ')' END, source, "
                              "CASE WHEN reason IN ('states-lost', 'audit-expired', 'audit-deleted', "
                              "'deliveries-lost') THEN COUNT(*) "
                              "ELSE SUM(COALESCE(skipped, 0)) END, "
                              "MIN(at), MAX(at) FROM gaps GROUP BY reason, source ORDER BY reason, source")
        return [{"reason": r, "source": s, "count": n, "first_at": first, "last_at": last}
                for r, s, n, first, last in rows]

    def unreceipted(self, scope: Scope, older_than: timedelta, now: datetime,
                    limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        """Deliveries (views and recall notices sent) at least ``older_than`` old that no vouched
        receipt of their partner acknowledges. A receipt acknowledges the one delivery it was bound to
        when indexed (``broker.audit.receipts.match_receipt``: the same alert, feed and version sent,
        at a feed record no other delivery holds), and only when its partner opened the record: a
        REJECTED receipt names no version and acknowledges nothing, and no receipt stands for another
        version's delivery or a recall notice the partner never read. Oldest first, at most ``limit``
        of them after the first ``offset``."""
        where, args = self._unreceipted_where(scope, older_than, now)
        rows = self._all(
            f"SELECT {_columns(scope, 'd')} FROM {_decisions(scope, 'decisions_by_partner', 'd')} "
            f"WHERE {where} ORDER BY d.at_ms, d.id LIMIT ? OFFSET ?", [*args, max(0, limit), max(0, offset)])
        out = []
        for r in rows:
            d = scoped(scope, _decision_row(r))
            when = at_ms(d.get("at"))
            d["waiting_ms"] = _ms(now) - when if when is not None else None
            out.append(d)
        return out

    def unreceipted_page(self, scope: Scope, older_than: timedelta, now: datetime, page: int = 1,
                         per_page: int = 50) -> Page:
        """``unreceipted``, one page of them (oldest first), counted as ``search`` counts: up to
        ``COUNT_LIMIT``, past it ``capped``. A page that stopped at a fixed number would pass for all of them."""
        page, per_page = max(1, page), min(max(1, per_page), MAX_PER_PAGE)
        where, args = self._unreceipted_where(scope, older_than, now)
        total = int(self._one(f"SELECT COUNT(*) FROM (SELECT 1 FROM {_decisions(scope, 'decisions_by_partner', 'd')} "
                              f"WHERE {where} LIMIT ?)",
                              [*args, COUNT_LIMIT + 1]) or 0)
        rows = self.unreceipted(scope, older_than, now, per_page, (page - 1) * per_page)
        return Page(rows, min(total, COUNT_LIMIT), page, per_page, capped=total > COUNT_LIMIT)

    def _unreceipted_where(self, scope: Scope, older_than: timedelta, now: datetime) -> tuple[str, list[Any]]:
        who, args = ("AND d.partner = ?", [scope.partner]) if scope.partner is not None else ("", [])
        return (f"d.went = 1 AND d.decision IN (?, ?, 'RECALL') AND d.at_ms <= ? {who} AND NOT EXISTS ("
                "SELECT 1 FROM receipts r WHERE r.decision_id = d.id)", [*DELIVERS, _ms(now - older_than), *args])

    def indicators(self, scope: Scope, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]:
        """The binational follow-up indicators within ``scope`` and the decision times given:

        - ``shared_by_month``: distinct alerts whose view went to a partner, per month of the
          decision (UTC), alert type, border sector and partner;
        - ``withheld_by_reason``: withheld decisions per partner and reason, the reason being the
          first rule that failed (``partner.clearance``, ``agreement.coverage``...: a stable code,
          where the reason texts quote values);
        - ``latency``: per partner, publication (the ingress record's Kafka time) to delivery (the
          decision, which commits with the feed record) and to the partner's first vouched
          RECEIVED/DUPLICATE receipt bound to that delivery, taken when it acknowledges (no earlier than
          Kafka appended it and its checkpoint: a partner's clock cannot shorten it): p50 and p95 by
          nearest rank, exact, and n.
        """
        if since is None and until is None:
            return self._indicators_indexed(scope)
        where, args = self._where(scope, Query(since=since, until=until))
        table = _decisions(scope, "decisions_by_partner_decision")  # each part is of one outcome or two
        shared = [{"month": m, "alert_type": t, "sector": s, "partner": p, "alerts": n} for m, t, s, p, n in self._all(
            f"SELECT substr(at, 1, 7), {_shown(scope, 'alert_type')}, {_shown(scope, 'sector')}, partner, "
            f"COUNT(DISTINCT alert_id) FROM {table} "
            f"WHERE {where} AND went = 1 AND decision IN (?, ?) GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            [*args, *DELIVERS])]
        withheld = [{"reason": r, "partner": p, "count": n} for r, p, n in self._all(
            f"SELECT {_first_rule(scope)}, partner, COUNT(*) FROM {table} WHERE {where} AND "
            "decision = 'WITHHOLD' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2", args)]
        latency = []
        for to, expr in (("delivery", "at_ms - ingress_ms"), ("receipt", "receipt_at_ms - ingress_ms")):
            base = (f"FROM {table} WHERE {where} AND went = 1 AND decision IN (?, ?) AND ingress_ms IS NOT NULL "
                    f"AND ({expr}) IS NOT NULL")
            counts = dict(self._all(f"SELECT partner, COUNT(*) {base} GROUP BY partner", [*args, *DELIVERS]))
            latency += self._percentiles(f"SELECT partner, {expr} AS lat {base} ORDER BY partner, lat",
                                         [*args, *DELIVERS], counts, to)
        return {"shared_by_month": shared, "withheld_by_reason": withheld, "latency": latency}

    def _indicators_indexed(self, scope: Scope) -> dict[str, Any]:
        """``indicators`` over the whole index, read from the partial indexes made for them (see
        ``_store``): the same figures as the general path, without a pass over the decisions' rows.
        Each percentile is one step into a sorted index (nearest rank, exact). INDEXED BY: the planner,
        sampling, preferred the outcome's index and read every row; and a query that could no longer
        use its index fails here instead of turning slow."""
        mine, args = ("partner = ? AND ", [scope.partner]) if scope.partner is not None else ("", [])
        # A scoped auditor's figures come from an index led by the partner: its time then depends on that
        # partner's rows only, not on every partner's (decisions_shared has the partner fourth).
        # (An index file written before that index existed has it from its next read-write open, its
        # catch-up; until then the general one answers.)
        shared_index = "decisions_shared_by_partner" if scope.partner is not None and self._has_index(
            "decisions_shared_by_partner") else "decisions_shared"
        shared = [{"month": m, "alert_type": t, "sector": s, "partner": p, "alerts": n} for m, t, s, p, n in self._all(
            f"SELECT substr(at, 1, 7), {_shown(scope, 'alert_type')}, {_shown(scope, 'sector')}, partner, "
            f"COUNT(DISTINCT alert_id) FROM decisions "
            f"INDEXED BY {shared_index} WHERE {mine}{_SHARED} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4", args)]
        withheld = [{"reason": r, "partner": p, "count": n} for r, p, n in self._all(
            f"SELECT {_first_rule(scope)}, partner, COUNT(*) FROM decisions INDEXED BY decisions_withheld "
            f"WHERE {mine}decision = 'WITHHOLD' "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2", args)]
        latency = []
        for to, expr, holds, made in (("delivery", "at_ms - ingress_ms", _TO_DELIVERY, "decisions_to_delivery"),
                                      ("receipt", "receipt_at_ms - ingress_ms", _TO_RECEIPT, "decisions_to_receipt")):
            counts = dict(self._all(f"SELECT partner, COUNT(*) FROM decisions INDEXED BY {made} WHERE {mine}{holds} "
                                    "GROUP BY partner", args))
            for partner, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
                ranks = [max(1, math.ceil(0.5 * n)), max(1, math.ceil(0.95 * n))]
                p50, p95 = (self._one(f"SELECT {expr} FROM decisions INDEXED BY {made} WHERE partner = ? AND {holds} "
                                      f"ORDER BY {expr} LIMIT 1 OFFSET ?", [partner, rank - 1]) for rank in ranks)
                latency.append({"partner": partner, "to": to, "p50_ms": p50, "p95_ms": p95, "n": n})
        return {"shared_by_month": shared, "withheld_by_reason": withheld, "latency": latency}

    def _has_index(self, name: str) -> bool:
        return self._one("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name]) is not None

    def _percentiles(self, sql: str, args: list[Any], counts: dict[str, int], to: str) -> list[dict[str, Any]]:
        """p50 and p95 per partner by nearest rank (the value at rank ceil(p * n)), read from a cursor
        sorted by partner and value, so no more than one value is held at a time."""
        out = []
        ranks = {p: (max(1, math.ceil(0.5 * n)), max(1, math.ceil(0.95 * n))) for p, n in counts.items()}
        found: dict[str, dict[str, int]] = {}
        rank, last = 0, None
        try:
            for partner, value in self._conn.execute(sql, args):
                rank = rank + 1 if partner == last else 1
                last = partner
                p50, p95 = ranks.get(partner, (0, 0))
                if rank == p50:
                    found.setdefault(partner, {})["p50_ms"] = value
                if rank == p95:
                    found.setdefault(partner, {})["p95_ms"] = value
        except sqlite3.Error as exc:
            raise translated(exc, self.path, "reading") from None
        for partner, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
            got = found.get(partner, {})
            out.append({"partner": partner, "to": to, "p50_ms": got.get("p50_ms"), "p95_ms": got.get("p95_ms"),
                        "n": n})
        return out

    def queries(self, scope: Scope, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        """The auditors' own queries, newest first, at most ``limit`` after the first ``offset`` (national
        auditors only)."""
        if not scope.national:
            return []
        return [{"auditor": a, "scope": s, "page": p, "params": json.loads(params), "results": n, "at": at}
                for a, s, p, params, n, at in self._all(
                    "SELECT auditor, scope, page, params, results, at FROM queries ORDER BY at_ms DESC, id DESC "
                    "LIMIT ? OFFSET ?", [max(0, limit), max(0, offset)])]

    def queries_page(self, scope: Scope, page: int = 1, per_page: int = 200) -> Page:
        """``queries``, one page of them (newest first), counted as ``search`` counts (national auditors only:
        none for a partner's)."""
        if not scope.national:
            return Page([], 0, 1, per_page)
        page, per_page = max(1, page), min(max(1, per_page), MAX_PER_PAGE)
        total = int(self._one("SELECT COUNT(*) FROM (SELECT 1 FROM queries LIMIT ?)", [COUNT_LIMIT + 1]) or 0)
        return Page(self.queries(scope, per_page, (page - 1) * per_page), min(total, COUNT_LIMIT), page, per_page,
                    capped=total > COUNT_LIMIT)

    def summary(self, scope: Scope) -> dict[str, Any]:
        """Counts for the console's home page, within ``scope``."""
        ends = self.end_reports(scope)
        where, args = ("partner = ?", [scope.partner]) if scope.partner is not None else ("1 = 1", [])
        by = dict(self._all(f"SELECT decision, COUNT(*) FROM {_decisions(scope, 'decisions_by_partner_decision')} "
                            f"WHERE {where} GROUP BY decision", args))
        first, last = self._all(f"SELECT MIN(at_ms), MAX(at_ms) FROM {_decisions(scope, 'decisions_by_partner')} "
                                f"WHERE {where}", args)[0]
        out: dict[str, Any] = {
            "decisions": sum(by.values()), "by_decision": by,
            "alerts": self._one(f"SELECT COUNT(DISTINCT alert_id) FROM "
                                f"{_decisions(scope, 'decisions_by_partner_alert')} WHERE {where}", args) or 0,
            "partners": [p for (p,) in self._all(f"SELECT DISTINCT partner FROM "
                                                 f"{_decisions(scope, 'decisions_by_partner')} WHERE {where} "
                                                 "AND partner IS NOT NULL ORDER BY 1", args)],
            "receipts": self._one(f"SELECT COUNT(*) FROM receipts WHERE {where}", args) or 0,
            "first_at": iso_ms(first) if first is not None else None,
            "last_at": iso_ms(last) if last is not None else None,
            "problems": self.problems(scope, ends), "ends_all_checked": ends.all_checked,
            "indexed_at": self._one("SELECT value FROM meta WHERE key = 'indexed_at'"),
        }
        if scope.national:
            out["dead_letters"] = self._one("SELECT COUNT(*) FROM dead_letters") or 0
            out["denials"] = self._one("SELECT COUNT(*) FROM denials") or 0
            out["queries"] = self._one("SELECT COUNT(*) FROM queries") or 0
        return out

