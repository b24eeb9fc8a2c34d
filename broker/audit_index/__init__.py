"""The audit index: the audit topics, verified, as one SQLite file auditors search.

Kafka stays the source of truth. The index holds one row per decision (alert, version, partner),
dead letter, vouched receipt, collected denial and auditor query, never payload content (only what
the audit records hold), plus what verification found: every problem ``audit verify`` reports,
and each chain's state. It is built by one writer, ``broker.auditor.index_topics`` (``puente audit
index``, or the console's periodic catch-up), which reads each audit partition read_committed from
the position the index holds to its end, verifies each record as it comes (``broker.audit.verify.
PartitionWalk``, continued from the chain states the index holds) and stores the rows of the
sound ones. It can always be rebuilt from offset 0 (``rebuilding``: built beside it, then moved into place).
Records Kafka deletes after the index read them (a partition's log start passing them: retention, or a deletion by
hand) are dropped at the next catch-up, and their chains started at their first records held, the start checked,
as a rebuild from the log start has them (``_cut``).

What is indexed (the same rule as ``audit log``): a record verification reports (edited, out of
place, badly or wrongly signed, not an audit record) is a finding, and none of its rows are
indexed; a receipt becomes a row only once a checkpoint of its chain vouches for it (until then
it waits in ``pending_receipts``, bounded and given up as ``audit verify`` bounds and gives up what
it holds, ``broker.audit.receipts.Unvouched``: a receipt given up is a finding with the same text),
and a receipt that names no audited delivery at the feed record
it names is a finding, not a row (``broker.audit.receipts``: the same alert, by the id its partner knows it by
(the decision's ``ref``, or the alert's own id in blocks written before references), feed and version sent,
dated after it, at a feed record that holds that delivery alone). Such a receipt is matched against the
decisions indexed when it is vouched for, whether or not any are indexed yet (a receipts topic alone
vouches for no delivery), and held in ``unmatched_receipts`` (bounded as what waits for a checkpoint) to
be matched again at each later catch-up that indexes decisions of its alert for its partner: decisions
read after the receipts (a topic read while empty, written later) then make it a row, and until they do
it is a finding with `audit verify`'s text, never a row shown as received. It is matched again at its
turn (the checkpoint that vouched for it, then its offset), and its partner's receipts after it with it,
as a rebuild and `audit verify` match them: a place or delivery a later receipt bound meanwhile is its
again. A receipt row acknowledges the one delivery it was bound to (``decision_id``), and only when its
partner opened the record. What a receipt row keeps of the partner's own text, its ``detail`` and any
other field it wrote, is cut (``RECEIPT_DETAIL_BYTES``, ``RECEIPT_FIELDS``): a partner signs whatever its
receipts hold.

Why SQLite (the standard library's ``sqlite3``), not DuckDB:

- **Incremental, transactional writes.** A catch-up adds a few thousand rows and moves its stored
  position and chain states in the same transaction, so a crash re-reads only from the last commit
  and a continued run equals a rebuild. That is SQLite's everyday work; DuckDB is built for bulk
  loads and scans over columns, and small keyed upserts are its slow path.
- **Point lookups and paged search.** The console's pages are lookups by alert id (timeline,
  "why") and filtered, paged searches newest first: B-tree indexes per filter answer them in
  milliseconds without scanning. The indicators are a few small GROUP BYs, which SQLite does well
  enough at this size (a million rows a year); percentiles are read from a sorted cursor, exactly.
- **Many readers, one writer.** In WAL mode the console's readers see a consistent state while
  the indexer writes; DuckDB allows one process to open a file for writing and no other process
  to read it meanwhile.
- **No new dependency**, one file, no server: an auditor can also open it with any SQLite tool.

Files: the index is made 0600 in a folder made 0700 (it holds the audit trail: who got which
alert, and why) and refused when others may read it or write its folder, as the partner store is;
errors name the file (``StoreError``, exit status 3; ``StoreBusy`` when another writer holds it).
One writer at a time holds ``writer_lock``; readers open with ``readonly=True``.

What a joint-oversight auditor reads (``Scope``): the decisions about its partner, of any outcome, but of an alert
only what that partner's view kept. A decision that delivered nothing shows the fields ``UNDELIVERED_FIELDS`` names
(an allow-list: alert id, partner, decision, rules, time...) and nothing of the alert (type, agency, sector,
markings, publication; nor its agreement, which says what type it was). No row, page, timeline, export or search of
that scope holds an alert's own id (``AGENCY:reference``, which names the agency and often a post, a date and a
sequence, and which partners are never given): an alert the partner was sent at some version (a view or a recall
notice) is named on every row by the id the partner knows it by, its reference (``policies.alert_reference``,
recorded in the audit for each partner sent a feed record: what its feed and receipts name; the alert's own id only
where every record sent named it so, in blocks written before references); one it was never sent by an alias, an
HMAC of partner and id under a key only the index holds, the same on every row and page of that scope. By that
reference or alias the auditor searches and opens the alert's timeline; the alert's own id, or another partner's
reference, finds nothing, as an absent one's. A national auditor reads each alert's own id, with each decision's
reference beside it (``ref``), and finds the alert by any partner's reference too. A decision that delivered shows
the scoped auditor besides ``DELIVERY_FIELDS`` and each of ``VIEW_COLUMNS`` (type, agency, sector... each keyed to
the alert field it is copied from) whose field no change of that view covers (``scoped``). Filters outside
``ANY_ROW_FILTERS`` (an agreement's among them: ``DELIVERED_FILTERS``), search choices and indicators on those
descriptions see those values only. Of the decision chains, which hold every partner's blocks, it reads each one's
state and problem count only (``AuditIndex.integrity``: an allow-list of chain fields per scope), never their size,
checkpoints or position: those grow with what other partners were sent.
"""

from broker.audit_index._index import (
    ANY_ROW_FILTERS,
    DEAD_LETTERS_NOT_SHOWN,
    DELIVERED_FILTERS,
    FILTER_COLUMNS,
    MAX_FINDINGS,
    MAX_PER_PAGE,
    NOT_SHOWN,
    TIMELINE_DEAD_LETTERS,
    TIMELINE_RECEIPTS,
    TIMELINE_VERSIONS,
    TOO_MANY,
    VERSIONS_NOT_SHOWN,
    AlwaysKept,
    AuditIndex,
    ChainEnds,
    Page,
    Query,
)
from broker.audit_index._ingest import (
    RECEIPT_DETAIL_BYTES,
    RECEIPT_FIELDS,
    RECEIPT_VALUE_BYTES,
    UNKEPT,
    PartitionIngest,
)
from broker.audit_index._places import PLACES_LAYOUT, SqlReceiptBook
from broker.audit_index._scope import (
    DELIVERY_FIELDS,
    UNDELIVERED_FIELDS,
    VIEW_COLUMNS,
    Scope,
    covered_columns,
    scoped,
)
from broker.audit_index._store import DEFAULT_INDEX, at_ms, rebuilding, remove_index, writer_lock

__all__ = [
    "ANY_ROW_FILTERS",
    "DEAD_LETTERS_NOT_SHOWN",
    "DEFAULT_INDEX",
    "DELIVERED_FILTERS",
    "DELIVERY_FIELDS",
    "FILTER_COLUMNS",
    "MAX_FINDINGS",
    "MAX_PER_PAGE",
    "NOT_SHOWN",
    "PLACES_LAYOUT",
    "RECEIPT_DETAIL_BYTES",
    "RECEIPT_FIELDS",
    "RECEIPT_VALUE_BYTES",
    "TIMELINE_DEAD_LETTERS",
    "TIMELINE_RECEIPTS",
    "TIMELINE_VERSIONS",
    "TOO_MANY",
    "UNDELIVERED_FIELDS",
    "UNKEPT",
    "VERSIONS_NOT_SHOWN",
    "VIEW_COLUMNS",
    "AlwaysKept",
    "AuditIndex",
    "ChainEnds",
    "Page",
    "PartitionIngest",
    "Query",
    "Scope",
    "SqlReceiptBook",
    "at_ms",
    "covered_columns",
    "rebuilding",
    "remove_index",
    "scoped",
    "writer_lock",
]
