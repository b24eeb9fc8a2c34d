"""Recalls and their acknowledgements, as auditors follow them. Pure.

A recall reaches a partner as a notice on its feed (a RECALL decision in the audit, naming the
version it held); the partner's subscriber deletes its copy and acknowledges with a receipt of
status RECALLED, signed like every receipt, naming the version the notice carried.

That version is the notice's, not the recall record's: an officer's recall may reuse an older
version, and its notice goes out above every version a partner holds (``broker.pipeline``). The
pipeline records it in each RECALL decision as ``notice_version``; a decision written before that
field existed gives it by the pipeline's rule (``receipts.sent_version``). Notices to one partner
about one alert are ordered by it (it only grows), and an acknowledgement counts only for a notice
whose version it names or passes: keyed by the record's version, an officer's recall reusing
version 2 would sort below an earlier pull-back at version 3, and that one's acknowledgement would
be reported for a recall the partner never acknowledged. An agreement sets how long a partner has to do that
(``recall_ack_hours``; a partner party to several has the shortest, ``deadline_hours``), and the deadline of a
notice is the one in force when it was sent: the pipeline records it in each RECALL decision as ``ack_hours``,
so a later policy (the hours raised, the agreement ended) neither clears an overdue notice nor makes a late
acknowledgement timely. Only a decision written before that field is judged by the policy given
(``RecallBook.status``'s ``ack_hours``). ``recall_status`` matches notices and acknowledgements from audit rows
(``flatten``'s) and says, for every recall, whether it is acknowledged, acknowledged late (after its deadline:
on the record for good, as a missed deadline it is), outstanding, outstanding past its deadline (overdue), or
failed: the notice could not be sent at all (no key to seal it with), so the partner still holds the alert until
a later recall reaches it, or a later delivery to it replaces the version it held (the partner entitled again, its
next version's decision names that version in ``supersedes``): the failed notice is then closed, shown as failed
and superseded, with the time of that delivery, and no longer makes ``audit recalls`` fail.

Every notice stays on the record, each known by its alert, partner and version: a later notice to the partner
about the alert (the alert delivered again, then pulled back again) replaces none, so a deadline missed before it
is not hidden by its acknowledgement. Each notice is closed by the first acknowledgement at or above its version
made after it was sent, whichever notice the partner answered: one that a later notice followed before its
deadline, and that the partner answered only through the later one, is acknowledged when that answer came, late
if that was past its own deadline. Only a failed notice gives way: once a later notice to the partner about the
alert exists (a recall again, perhaps at the same version), that one carries the recall on and is listed instead.

An acknowledgement's time is the later of the time its receipt states (``at``, written by the partner's clock)
and the time Kafka appended it and the checkpoint that signs it (``appended_at``: ``broker.auditor.read_log`` gives
every receipt's row read from a topic with ``LogAppendTime``, as receipts topics are). A partner chooses the first and
not the second: one that dated a late acknowledgement before its deadline would have it reported on time, and
its clock running ahead only makes its own acknowledgements later. A row without ``appended_at`` (from a topic that
keeps its producers' times) is taken at its word, as before.

A partner may run several subscriber instances, each with its own store, and a feed partition may change
hands between them mid-stream: the store that takes it over can receive an update and the recall of an
alert whose first version another store holds, and acknowledge the recall while that store keeps the text.
So a recall is acknowledged only once every *holder* of the alert has acknowledged it: each store that
receipted a view of it (RECEIVED or DUPLICATE) below the notice's version (a view sent before the notice: one at
or above it went out after, and the notice does not recall it) and not below the highest version it acknowledged
a recall at (a view received again after an earlier recall is held again). A receipt names its
store (``store``, the store's id); one written before receipts did, or by a subscriber without a store,
counts under its receipt chain, or under the store that chain's other receipts name. What an auditor then
sees outstanding is a holder that has not answered (``RecallRow.waiting_on``):
its store still holds the alert, or was purged of it without a receipt saying so. A store that answered a notice
RECALL_PASSED_ON (its ``--out`` copy holds lines it cannot take back) is waited on as one that has not answered, and a
RECALLED it writes after that, about the alert, answers nothing: a copy of it restored from a backup, reading the
recall again without the mark, says RECALLED while the copy still holds the text. (Receipts written before
receipts named their store count under their chain: if that store has since run under another ``--instance``
only, its old chain never names it, and the recall waits on the old chain until that instance runs once.)

A recall no receipt shows a holder of (none held, or none that answered this notice) is acknowledged by any
RECALLED receipt of the notice's version, as long as no receipt that would name a holder can have been lost. A
partner's receipts topic holds all its chains in one partition; Kafka deletes its oldest records by retention, an
admin by DeleteRecords (or by lowering the topic's retention), and the partition's log then starts above offset 0.
``broker.auditor.read_log`` reports that (``receipts_cut``: a ``ReceiptsCut``, with the time Kafka appended the first
record held, ``first_at``) before it yields any row, and tells the book (``RecallBook.receipts_cut``) before the
decisions reach it. What the cut costs is judged by *when the recalled view was delivered*: a store's RECEIVED
receipt is written after the delivery it answers, so only a view delivered before ``first_at`` (give or take
``CLOCK_SKEW``, the workers' clocks against Kafka's) can have lost its receipt. For a partner whose receipts were
cut, and only for deliveries of its decided before that time, the book keeps per (alert, partner) the lowest
version delivered (``RecallBook.early``), and a recall of a version above it (a view it recalls went out before
the cut) is never acknowledged, whatever holders are known and answered: a store whose receipt was lost may hold
the alert still (store A received v1, its receipt gone; store B took the feed partition over, received v2 and
answered the v3 recall: B's answer says nothing of A). Such a recall is ``NOT_JUDGED``, not outstanding nor overdue:
the record no longer says who held the alert, so it says neither that the partner complied nor that it did not;
its row names the cut (``RecallRow.receipts_cut``) and the time the answers seen would have closed it
(``RecallRow.answered_at``), and `audit recalls` counts it as not checked (exit 5), never as a failure. Only what
the record still shows settles it otherwise: a known holder that has not answered (its receipt is held, so is
anything it wrote since) keeps it outstanding, then overdue, as does a notice no one answered that was sent after
the cut (an answer to it would be held); such a row names the cut too, since more holders than those listed may
wait. A recall whose deliveries to the partner all came after the cut (their receipts all held) keeps the rules
above, "no holder known, any answer counts" included; so does one whose delivery is in no decision held (the
decisions expired too, or the alert was delivered before the audit began): the decisions topic's own cut is
judged by `audit verify`'s start check (``verify.PartitionWalk._start_check``) and its ``deleted`` findings, which
`audit recalls` reports too.

What the book keeps for this is small in practice: receipts and decisions are kept under the audit's one retention
(``PUENTE_AUDIT_RETENTION_DAYS``), so when a receipts partition's start merely expired, the deliveries older than
its first record held have mostly expired too (what is left is at most the difference between the two topics'
segments), and under a DeleteRecords attack it is bounded by what was deleted. A decisions topic kept for ever by
hand (which the broker takes) beside receipts topics kept for the audit's retention is where it grows: every
delivery older than the receipts still held counts. It is bounded all the same, at
``MAX_EARLY`` (alert, partner) pairs per partner: past it no recall of that partner is acknowledged (each is
``NOT_JUDGED``, unless what is held shows it open; ``RecallBook.blind``), nor is any of a partner whose cut reached
the book after rows did (the deliveries before it were not kept). A cut with no ``first_at`` (its partition holds
no record, or keeps its producers' times) has every delivery to the partner taken as one before it. The
trade-off is meant: a deployment whose receipts merely expired sees a recall of a view delivered before what it
still holds as not judged, with the reason, rather than as acknowledged on evidence the record no longer holds,
or as overdue against a partner that may have complied; DeleteRecords and retention cannot be told apart from a
receipts chain (the partners' subscribers do not state the retention their records are kept under:
``verify.PartitionWalk._start_check``), and only the first is an attack.

What a partner's receipts name is the partner's word, signed as often as it likes: ``RecallBook`` keeps, per
recalled (alert, partner), at most ``MAX_HOLDERS`` holders and ``MAX_ANSWERS`` acknowledgements, each holder's text
cut at ``MAX_HOLDER_BYTES`` (a store's id is 32 hex digits), and the store of at most ``MAX_CHAIN_STORES`` of the
partner's chains (its own bound: one partner's chains never take another's room). A
receipt past those bounds is counted (``RecallRow.unlisted``), never kept, and the judgement fails closed: a recall
of an alert whose partner's receipts were not all kept is never acknowledged (outstanding, or overdue past its
deadline), whatever the holders listed answered, since a holder not listed may hold the alert still and an answer
not kept may be all that closed it otherwise. Only the partner can cause this (its receipts count once its own key
signs them, and matched to what it was sent), and only against itself: no subscriber writes that many for one
alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from broker.audit.chain import bounded
from broker.audit.receipts import CLOCK_SKEW, acknowledged, sent_version
from broker.audit.verify import plain, when
from puente.wire import iso_utc

ACKNOWLEDGED = "acknowledged"
LATE = "acknowledged late"  # acknowledged, after its deadline: a deadline missed, as OVERDUE is
OUTSTANDING = "outstanding"
OVERDUE = "overdue"
FAILED = "failed"  # the notice could not be sent: the partner still holds the alert
SUPERSEDED = "failed/superseded"  # never sent, but a later delivery to the partner replaced the version it recalled
NOT_JUDGED = "not judged"
"""Holders not known: a view the notice recalls was delivered before its partner's receipts were cut, so a store
whose receipt was lost may hold the alert still; neither acknowledged nor overdue (module docstring)."""
DEFAULT_ACK_HOURS = 72
"""A partner's deadline when no agreement names it (an agreement's ``recall_ack_hours`` default too)."""
MAX_ACK_HOURS = 8760  # the most an agreement may set: a recorded ``ack_hours`` beyond it is not taken
_MIN, _MAX = datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
MAX_HOLDERS = 32
"""The most holders ``RecallBook`` keeps per (alert, partner): a partner runs a few subscriber instances, each with
a store (module docstring)."""
MAX_ANSWERS = 256
"""The most acknowledgements (RECALLED receipts) ``RecallBook`` keeps per (alert, partner): one per notice and
holder, a few more when a feed record is read twice."""
MAX_HOLDER_BYTES = 64
"""The most bytes of a receipt's ``store`` a holder is known by (``bounded``): a subscriber's is 32 hex digits."""
MAX_CHAIN_STORES = 1_024
"""The most receipt chains of one partner whose store ``RecallBook`` notes (a subscriber writes one chain per
instance): a chain's receipts past it count under the chain, which only that partner's own recalls can wait on."""
MAX_EARLY = 100_000
"""The most (alert, partner) pairs per partner whose delivery before that partner's receipts cut ``RecallBook`` keeps
(``RecallBook.early``): past it, no recall of that partner is acknowledged (``NOT_JUDGED``, module docstring)."""


@dataclass(frozen=True)
class RecallRow:
    """One recall notice sent to one partner, and what became of it."""

    alert_id: str
    partner: str
    version: int
    """The version the notice carried (``notice_version``), which the partner's RECALLED receipt names: with the
    alert and partner, it tells the notice apart from the partner's other notices about the alert."""
    sent_at: datetime
    deadline: datetime
    acknowledged_at: datetime | None
    state: str
    reason: str | None
    waiting_on: tuple[str, ...] = ()
    """The holders that received a view of the alert and have not acknowledged this recall (a store's id, or a
    receipt chain's name): set only while it is not acknowledged."""
    unlisted: int = 0
    """The partner's receipts of the alert not kept (naming a holder past ``MAX_HOLDERS``, or an acknowledgement past
    ``MAX_ANSWERS``): while any, the recall is not acknowledged, whatever those listed say (module docstring)."""
    superseded_at: datetime | None = None
    superseded_by: int | None = None
    """A failed notice closed by a later delivery to the partner (``SUPERSEDED``): when that delivery was decided,
    and the version it sent in place of the one the notice recalled."""
    receipts_cut: ReceiptsCut | None = None
    """Why who holds the alert is not all known: a view the notice recalls was delivered before its partner's
    receipts were cut (``RecallBook.receipts_cut``), so no answer closes it (module docstring). Set only on a notice
    sent: ``NOT_JUDGED``, or outstanding or overdue by what the receipts held show (a holder waiting)."""
    answered_at: datetime | None = None
    """A ``NOT_JUDGED`` notice's answer as seen: when the answers held would have acknowledged it, had no receipt
    been lost (None if none did)."""

    def overdue_by(self, now: datetime) -> timedelta:
        """How long past its deadline the notice is, unacknowledged at ``now`` (zero once acknowledged, and for one
        not judged)."""
        if self.acknowledged_at is not None or self.state == NOT_JUDGED:
            return timedelta(0)
        return max(timedelta(0), now - self.deadline)

    def late_by(self) -> timedelta:
        """How long after its deadline the notice was acknowledged (zero when in time, or not acknowledged)."""
        return max(timedelta(0), self.acknowledged_at - self.deadline) if self.acknowledged_at else timedelta(0)


@dataclass(frozen=True)
class ReceiptsCut:
    """A partner's receipts partition whose log starts above offset 0 (``broker.auditor.read_log``'s
    ``receipts_cut``): its records before ``offset`` expired or were deleted, and with them any receipt there that
    named a store holding an alert (module docstring)."""

    partner: str | None
    """Whose receipts: the topic's partner, or None for a receipts topic of no known partner (any partner's)."""
    topic: str
    partition: int
    offset: int  # the partition's first offset held
    first_at: datetime | None = None
    """When Kafka appended the partition's first record held (LogAppendTime): the receipts lost were appended before
    it. None when the partition holds no record, or keeps its producers' times."""

    def describe(self) -> str:
        """One line: whose receipts are no longer held, from where, and what to check."""
        who = plain(self.partner) if self.partner is not None else "every partner"
        # With no time, the records from the first offset held on are still held: only those before it are gone.
        before = iso_utc(self.first_at) if self.first_at is not None else f"offset {self.offset}"
        return (f"holders not known: {who}'s receipts before {before} are no longer held ({plain(self.topic)}"
                f"[{self.partition}] starts at offset {self.offset}), and a store whose receipt was among them may "
                "hold the alert still; check whether they expired (PUENTE_AUDIT_RETENTION_DAYS) or were deleted, "
                "and ask the partner which of its stores hold the alert")

    def until(self) -> datetime:
        """The latest a delivery can have been decided and its receipt be among those lost: ``first_at`` plus
        ``CLOCK_SKEW`` (a worker's clock ahead of Kafka's), or the end of time for a cut with no ``first_at``."""
        return self.first_at + CLOCK_SKEW if self.first_at is not None and self.first_at < _MAX else _MAX

    def loses_more(self, than: ReceiptsCut) -> bool:
        """Whether this cut loses receipts up to a later time than ``than``: the one a partner's rows name."""
        if self.first_at is None or than.first_at is None:
            return than.first_at is not None
        return self.first_at > than.first_at


class AckTerms(Protocol):
    """What ``deadline_hours`` reads of an agreement (``policies.CompiledAgreement``)."""

    @property
    def partner_ids(self) -> Sequence[str]: ...
    @property
    def recall_ack_hours(self) -> int: ...


def deadline_hours(agreements: Iterable[AckTerms]) -> dict[str, int]:
    """Each partner's recall deadline in hours: the shortest any of its agreements sets (``recall_ack_hours``).
    A partner none names is left out (its deadline is ``DEFAULT_ACK_HOURS``). The one rule for the pipeline,
    which records the deadline in each RECALL decision (``PolicyPort.recall_ack_hours``), and for auditors
    reading decisions written before it did (``broker.auditor.ack_deadlines``)."""
    out: dict[str, int] = {}
    for agreement in agreements:
        for partner in agreement.partner_ids:
            out[partner] = min(out.get(partner, agreement.recall_ack_hours), agreement.recall_ack_hours)
    return out


def recall_status(rows: Iterable[dict[str, Any]], ack_hours: Mapping[str, int], now: datetime,
                  cuts: Iterable[ReceiptsCut] = ()) -> list[RecallRow]:
    """``RecallBook.status`` of ``rows`` (decisions first, as ``broker.auditor.read_log`` gives them), the partners'
    receipts partitions in ``cuts`` known to have lost their start (``RecallBook.receipts_cut``)."""
    book = RecallBook()
    for cut in cuts:
        book.receipts_cut(cut)
    for row in rows:
        book.add(row)
    return book.status(ack_hours, now)


class _Notice(NamedTuple):
    """One recall notice, as its RECALL decision recorded it (``RecallBook.sent``)."""

    sent_at: datetime
    reason: str | None
    went: bool  # False: the notice could not be sent (``sent`` False)
    hours: int | None  # the hours to acknowledge it, as its decision recorded them (``ack_hours``)
    recalls: int | None = None  # the version the partner held, which it recalled (``recalls``)


class RecallBook:
    """Recalls and their answers, gathered one audit row at a time (``add``), so that a reader of the whole audit
    keeps what recalls need and nothing else: the recall notices, the RECALLED receipts of recalled alerts, and
    who holds each recalled alert. Receipts are kept only for an (alert, partner) a recall notice named before
    them: give the decisions first (``read_log`` does), or a recall's holders are unknown and any answer counts;
    tell it whose receipts lost their start (``receipts_cut``) before any row, or a recall whose holder's receipt
    was lost with them counts any answer too (told after rows, every recall of that partner is not judged).
    A receipt chain's store, as its receipts name one, is noted per partner, for at most ``MAX_CHAIN_STORES`` of
    its chains, first come first kept: a partner's receipts never change which of another's chains are noted.
    What it keeps per (alert, partner) is bounded, the rest counted in ``unlisted`` (module docstring)."""

    def __init__(self) -> None:
        # Every notice to a partner about an alert, by the version it carried (``notice_version``).
        self.sent: dict[tuple[str, str], dict[int, _Notice]] = {}
        self.acks: dict[tuple[str, str], list[tuple[int, datetime, str]]] = {}
        # The RECALL_PASSED_ON answers: (version, at, holder). A holder's later RECALLED answers nothing (``_row``).
        self.passed: dict[tuple[str, str], list[tuple[int, datetime, str]]] = {}
        self.held: dict[tuple[str, str], dict[str, set[int]]] = {}  # the versions each holder receipted as held
        # Per partner, a receipt chain's store, as its receipts that name one give it (``MAX_CHAIN_STORES``).
        self.stores: dict[str, dict[str, str]] = {}
        self.named: dict[tuple[str, str], set[str]] = {}  # the holders kept, held or answering (``MAX_HOLDERS``)
        self.unlisted: dict[tuple[str, str], int] = {}  # receipts not kept, past ``MAX_HOLDERS``, ``MAX_ANSWERS``
        self.ids: dict[tuple[str, str], str] = {}  # (reference, partner) -> the alert's own id
        # Deliveries to a partner that replaced a version it held, after a notice about the alert to it: (the
        # version replaced, when, the version sent), what closes a failed notice (``SUPERSEDED``).
        self.replaced: dict[tuple[str, str], list[tuple[int, datetime, int]]] = {}
        # Per partner (None: any partner's), its receipts partition that lost the most of its start.
        self.cuts: dict[str | None, ReceiptsCut] = {}
        # Per (alert, partner) of a partner whose receipts were cut: the lowest version delivered to it before the
        # cut (``ReceiptsCut.until``), whose receipt may be lost. At most ``MAX_EARLY`` pairs per partner.
        self.early: dict[tuple[str, str], int] = {}
        self.early_count: dict[str, int] = {}
        # Partners (None: every partner) none of whose recalls is judged: past ``MAX_EARLY``, or cut after rows came.
        self.blind: set[str | None] = set()
        self.rows_added = False

    def receipts_cut(self, cut: ReceiptsCut) -> None:
        """Note that ``cut.partner``'s receipts (every partner's, for None) before ``cut`` are no longer held: a
        recall of a view delivered to it before then is not acknowledged (module docstring). Before the first row
        (``add``): told after, the deliveries before it were not kept, so every recall of that partner is not
        judged. Of a partner's several cuts, the one losing receipts up to the latest time is the one it goes by."""
        if self.rows_added:
            self.blind.add(cut.partner)
        held = self.cuts.get(cut.partner)
        if held is None or cut.loses_more(held):
            self.cuts[cut.partner] = cut

    def cut_of(self, partner: str) -> ReceiptsCut | None:
        """The cut ``partner``'s receipts go by: its own or one of no known partner's, whichever loses more."""
        own, anyone = self.cuts.get(partner), self.cuts.get(None)
        if own is None or anyone is None:
            return own or anyone
        return anyone if anyone.loses_more(own) else own

    def add(self, row: dict[str, Any]) -> None:
        """Take one audit row (``flatten``'s, or ``read_log``'s); a row of no use to recalls is dropped. A RECALLED
        receipt acknowledges at the later of its ``at`` (the partner's clock) and its ``appended_at`` (Kafka's,
        which ``read_log`` gives it; module docstring)."""
        self.rows_added = True
        kind, alert, partner = row.get("kind"), row.get("alert_id"), row.get("partner")
        if kind == "DECISION" and row.get("decision") in _DELIVERIES:
            self._replaced(row)
            self._early(row)
            return
        if kind == "RECEIPT" and (status := row.get("status")) in RECALL_RECEIPTS:
            if not isinstance(partner, str):
                return
            # Noted for every chain of the partner's, whatever the alert: which store it writes for.
            holder = _holder(row, self.stores.setdefault(partner, {}))
        elif kind == "DECISION" and row.get("decision") == "RECALL":
            status = None
        else:
            return
        if not isinstance(alert, str) or not isinstance(partner, str):
            return
        if status is None and isinstance(ref := row.get("ref"), str):
            # The partner's receipts name the alert by its reference (``flatten``); the rows name it by its own id.
            self.ids[(ref, partner)] = alert
            alert = ref
        at = when(row.get("at"))
        if at is None or not _MIN < at < _MAX:  # beyond them, a deadline or the clock skew would overflow
            return
        pair = (alert, partner)
        if status is None:
            notices = self.sent.setdefault(pair, {})
            version = notice_version(row)
            previous = notices.get(version)
            if previous is None or at >= previous.sent_at:  # a version sent twice: the later (a recall again)
                rules = row.get("rules")
                # A recall's category, or what pulled it back: a version that broke a rule (``alert.invalid``)
                # before the action it names, which it did not carry out.
                reason = ("alert.invalid" if isinstance(rules, list) and "alert.invalid" in rules
                          else row.get("reason") or row.get("action"))
                hours, held = row.get("ack_hours"), row.get("recalls")
                notices[version] = _Notice(at, reason if isinstance(reason, str) else None,
                                           row.get("sent") is not False,
                                           hours if type(hours) is int and 0 < hours <= MAX_ACK_HOURS else None,
                                           held if type(held) is int else None)
            return
        if pair not in self.sent:
            return  # no recall of it (the decisions came first): nothing to answer
        named = self.named.setdefault(pair, set())
        if (holder not in named and len(named) >= MAX_HOLDERS) or (
                status == "RECALLED" and len(self.acks.get(pair, ())) >= MAX_ANSWERS) or (
                status == RECALL_PASSED_ON and len(self.passed.get(pair, ())) >= MAX_ANSWERS):
            self.unlisted[pair] = self.unlisted.get(pair, 0) + 1  # counted, never kept: the recall fails closed
            return
        named.add(holder)
        version = row.get("version", 1)
        version = version if type(version) is int else 1
        if status == "RECALLED":
            # Acknowledged no earlier than Kafka appended it (``appended_at``), whatever time the partner wrote.
            acked = acknowledged(row)
            if acked is not None and acked < _MAX:
                at = acked
            self.acks.setdefault(pair, []).append((version, at, holder))
        elif status == RECALL_PASSED_ON:
            # From the earlier of the partner's time and Kafka's: a RECALLED after it by either answers nothing.
            appended = when(row.get("appended_at"))
            if appended is not None and _MIN < appended < at:
                at = appended
            self.passed.setdefault(pair, []).append((version, at, holder))
        else:
            self.held.setdefault(pair, {}).setdefault(holder, set()).add(version)

    def _replaced(self, row: dict[str, Any]) -> None:
        """A delivery that replaced the version its partner held (``supersedes``), kept only for an (alert, partner)
        a recall notice named before it (the decisions of an alert come in order), at most ``MAX_ANSWERS`` of
        them: past that, a failed notice stays failed."""
        alert, partner, was, version = row.get("alert_id"), row.get("partner"), row.get("supersedes"), row.get(
            "version", 1)
        if not isinstance(alert, str) or not isinstance(partner, str) or type(was) is not int:
            return
        if isinstance(ref := row.get("ref"), str):
            alert = ref  # as its notices are kept (``add``)
        at = when(row.get("at"))
        kept = self.replaced.setdefault((alert, partner), []) if (alert, partner) in self.sent else None
        if kept is not None and at is not None and _MIN < at < _MAX and len(kept) < MAX_ANSWERS:
            kept.append((was, at, version if type(version) is int else 1))

    def _early(self, row: dict[str, Any]) -> None:
        """A delivery decided before its partner's receipts cut (``ReceiptsCut.until``): its receipt may be among
        those lost, so a recall of the version it sent is not judged (module docstring). Kept only for a partner
        with a cut, at most ``MAX_EARLY`` pairs per partner; past that, the partner is ``blind``."""
        alert, partner, version = row.get("alert_id"), row.get("partner"), row.get("version", 1)
        if not isinstance(alert, str) or not isinstance(partner, str) or (cut := self.cut_of(partner)) is None:
            return
        at = when(row.get("at"))
        if at is None or not _MIN < at < cut.until():
            return  # after the cut (its receipts held), or at no time: the delivery a recall needs is then unknown
        if isinstance(ref := row.get("ref"), str):
            alert = ref  # as its notices are kept (``add``)
        version = version if type(version) is int else 1
        pair = (alert, partner)
        if pair in self.early:
            self.early[pair] = min(version, self.early[pair])
        elif self.early_count.get(partner, 0) < MAX_EARLY:
            self.early[pair] = version
            self.early_count[partner] = self.early_count.get(partner, 0) + 1
        else:
            self.blind.add(partner)  # counted no further: fails closed for all the partner's recalls

    def _doubt(self, alert: str, partner: str, version: int) -> ReceiptsCut | None:
        """The cut a notice at ``version`` is not judged by: one of its partner's, when a view it recalls (below
        ``version``) was delivered before it, or the partner is ``blind``; else None."""
        cut = self.cut_of(partner)
        if cut is None:
            return None
        if partner in self.blind or None in self.blind:
            return cut
        lowest = self.early.get((alert, partner))
        return cut if lowest is not None and lowest < version else None

    def status(self, ack_hours: Mapping[str, int], now: datetime) -> list[RecallRow]:
        """Every recall notice: those that make ``audit recalls`` fail first (failed, then overdue, longest overdue
        first, then acknowledged late, latest sent first), then outstanding and not judged (nearest deadline first) and
        acknowledged (latest sent first). Each notice to a partner counts on its own, a later one replacing none
        (module docstring), but for a failed one: a later notice to the partner about the alert carries the
        recall on, so the failed one is no longer listed; a later delivery replacing the version it recalled
        closes it (``SUPERSEDED``), listed before the acknowledged ones. A notice's deadline is the one its
        decision recorded (its ``ack_hours`` field); for a decision written before it did, the argument
        ``ack_hours`` gives each partner's deadline in hours under the policy at hand (``deadline_hours``), and
        a partner it does not name gets the default. A row whose ``at`` is no time with an offset (``verify.when``)
        counts for nothing: a time without one is never compared as if it were UTC."""
        out = []
        for (alert, partner), notices in self.sent.items():
            last = max(notices)
            answers = self.acks.get((alert, partner), [])
            passed = self.passed.get((alert, partner), [])
            held = self.held.get((alert, partner), {})
            for version, notice in notices.items():
                if notice.went or version == last:
                    hours = notice.hours or ack_hours.get(partner, DEFAULT_ACK_HOURS)
                    out.append(self._row(alert, partner, version, notice, hours, answers, held, now,
                                         self.unlisted.get((alert, partner), 0), passed))
        rank = {FAILED: 0, OVERDUE: 1, LATE: 2, OUTSTANDING: 3, NOT_JUDGED: 3, SUPERSEDED: 4, ACKNOWLEDGED: 5}

        def order(r: RecallRow) -> tuple[int, float, str, str, int]:
            if r.acknowledged_at is not None:
                return (rank[r.state], -r.sent_at.timestamp(), r.alert_id, r.partner, r.version)
            return (rank[r.state], r.deadline.timestamp(), r.alert_id, r.partner, r.version)  # longest overdue first

        return sorted(out, key=order)

    def _row(self, alert: str, partner: str, version: int, notice: _Notice, hours: int,
             answers: list[tuple[int, datetime, str]], held: dict[str, set[int]], now: datetime,
             unlisted: int = 0, passed: Sequence[tuple[int, datetime, str]] = ()) -> RecallRow:
        """What became of one notice: acknowledged once every holder of the alert when it was sent answered it, and
        never while ``unlisted`` receipts of the partner's about the alert were not kept, nor while a view it
        recalls was delivered before its partner's receipts were cut (``NOT_JUDGED``, unless the receipts held show
        it not acknowledged: module docstring). ``passed``: the partner's RECALL_PASSED_ON answers about the alert;
        a holder that gave one to this notice (its version or a later one, after it was sent) is not acknowledged by
        any RECALLED it wrote since, which a copy of its store restored from a backup, reading the recall again
        without the mark, would write while the ``--out`` copy still holds the text."""
        stores, at = self.stores.get(partner, {}), notice.sent_at
        deadline = at + timedelta(hours=hours)
        passed_on: dict[str, datetime] = {}  # each holder's first RECALL_PASSED_ON to this notice
        for v, a, holder in passed:
            holder = stores.get(holder, holder)
            if v >= version and a >= at - CLOCK_SKEW and (holder not in passed_on or a < passed_on[holder]):
                passed_on[holder] = a
        answers = [(v, a, holder) for v, a, holder in answers
                   if (since := passed_on.get(stores.get(holder, holder))) is None or a < since]
        # Only an acknowledgement of this notice's version (the one the partner was sent) or a later one,
        # made after it was sent (give or take the clock skew allowed between parties).
        first: dict[str, datetime] = {}
        for v, a, holder in answers:
            holder = stores.get(holder, holder)
            if v >= version and a >= at - CLOCK_SKEW and (holder not in first or a < first[holder]):
                first[holder] = a
        # Its holders received a view below its version (one at or above it went out after it: not recalled by it).
        before = {h: max(below) for h, versions in held.items() if (below := [v for v in versions if v < version])}
        holding = _holding(before, answers, stores)
        waiting_on = tuple(sorted(holding - first.keys()))
        # Acknowledged when the last holder answered (any answer, when no receipt shows who holds it).
        times = [] if waiting_on else [first[h] for h in holding] if holding else list(first.values())
        answered = max(times) if times and not unlisted else None
        # A view it recalls was delivered before the partner's receipts were cut: a holder's receipt may be among
        # those lost, so no answer closes it, whatever holders are known and answered.
        cut = self._doubt(alert, partner, version) if notice.went else None
        acknowledged_at = answered if notice.went and cut is None else None
        # Unless what is held shows it not acknowledged: a known holder waits (anything it wrote since its receipt
        # is held), receipts were not kept, or no one answered a notice sent after the cut (an answer would be held).
        shown_open = bool(waiting_on) or unlisted > 0 or (
            not first and cut is not None and cut.first_at is not None and at - CLOCK_SKEW >= cut.first_at)
        if not notice.went:
            # Replaced since by a delivery of a later version to the partner: the version it recalled is gone. A
            # delivery before the notice replaced a version below the one it recalls, so ``was`` alone tells them
            # apart; the decisions' times are their workers' clocks, which may differ once the alert's slot moved
            # to another worker, and are never compared here.
            later = [(a, v) for was, a, v in self.replaced.get((alert, partner), ())
                     if notice.recalls is not None and was >= notice.recalls]
            if later:
                superseded_at, by = min(later)
                return RecallRow(self.ids.get((alert, partner), alert), partner, version, at, deadline, None,
                                 SUPERSEDED, notice.reason, (), unlisted, superseded_at, by)
            state = FAILED
        elif acknowledged_at is not None:
            state = LATE if acknowledged_at > deadline else ACKNOWLEDGED
        elif cut is not None and not shown_open:
            state = NOT_JUDGED  # neither on time nor late, nor overdue: the record no longer says who held it
        else:
            state = OVERDUE if now > deadline else OUTSTANDING
        return RecallRow(self.ids.get((alert, partner), alert), partner, version, at, deadline, acknowledged_at,
                         state, notice.reason,
                         () if acknowledged_at is not None else waiting_on, unlisted,
                         receipts_cut=cut, answered_at=answered if state == NOT_JUDGED else None)


_DELIVERIES = frozenset({"DELIVER", "DELIVER_REDACTED"})  # decisions that sent the partner a version
_HOLDING = frozenset({"RECEIVED", "DUPLICATE"})  # the receipt statuses of a store that holds the view
RECALL_PASSED_ON = "RECALL_PASSED_ON"  # a store's answer to a recall its --out copy holds (``broker.partner``)
RECALL_RECEIPTS = _HOLDING | {"RECALLED", RECALL_PASSED_ON}
"""The receipt statuses ``RecallBook`` reads: it drops any other."""
_CHAIN = "chain "  # a holder known by its receipt chain: a subscriber without a store, or before receipts named one


def _holder(row: dict[str, Any], stores: dict[str, str]) -> str:
    """Who a receipt speaks for: its store (``store``, cut at ``MAX_HOLDER_BYTES``; noting in ``stores``, its
    partner's, that its chain writes for that store, for at most ``MAX_CHAIN_STORES`` chains), else its receipt
    chain, marked as one (a chain's name is at most ``chain.MAX_CHAIN_NAME`` characters in a sound record)."""
    chain = row.get("chain")
    chain = f"{_CHAIN}{chain if isinstance(chain, str) else row.get('partner')}"
    store = row.get("store")
    if isinstance(store, str) and store:
        store = bounded(store, MAX_HOLDER_BYTES)
        if chain in stores or len(stores) < MAX_CHAIN_STORES:
            stores.setdefault(chain, store)
        return store
    return chain


def _holding(held: dict[str, int], answers: list[tuple[int, datetime, str]], stores: dict[str, str]) -> set[str]:
    """The holders that still hold a view of the alert, as far as receipts tell: each that receipted one at a
    version not below the highest it acknowledged a recall at (a later view, after a recall without reason, is
    held again). ``held``: each holder's highest version receipted as held, of those a notice recalls (below its
    version); ``answers``: every acknowledgement of the partner's, whichever notice it answered."""
    recalled: dict[str, int] = {}
    for v, _, holder in answers:
        holder = stores.get(holder, holder)
        recalled[holder] = max(v, recalled.get(holder, 0))
    versions: dict[str, int] = {}
    for holder, v in held.items():
        holder = stores.get(holder, holder)
        versions[holder] = max(v, versions.get(holder, 0))
    return {holder for holder, v in versions.items() if v >= recalled.get(holder, 0)}


def notice_version(row: dict[str, Any]) -> int:
    """The version the recall notice of RECALL decision ``row`` carried (``receipts.sent_version``: its
    ``notice_version``, or the pipeline's rule for a decision written before that field); 1 when the row
    states no integer version, as for any version a row does not state."""
    version = sent_version(row)
    return version if version is not None else 1
