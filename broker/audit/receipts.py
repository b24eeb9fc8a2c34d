"""Receipts matched to the deliveries they acknowledge. Pure.

A receipt is the partner's signed word that its subscriber read one feed record: it names the
record's place (``feed``: topic:partition:offset), the alert id the record's header carried and,
when the record opened, the version its view held (a REJECTED receipt names none). The broker's
decision records say what was sent to whom: the alert, the partner, the version and the feed
topic, but not the record's partition and offset, which Kafka assigns once the transaction that
holds the block commits. So the place is bound to a delivery by the receipts themselves, and held
to it (``match_receipt``):

- the receipt names a delivery the audited decisions sent to its partner: the same alert, in the
  feed topic of its place, of the very version the record carried (``sent_version``), and dated
  no earlier than that delivery (give or take ``CLOCK_SKEW``);
- one feed record holds one delivery: once a partner's receipt puts a delivery (or, REJECTED, an
  alert) at a place, any other receipt of that partner naming the place must name the same, and a
  delivery is at one place only.

A receipt that fails either, or states a status no subscriber writes (``known_status``), is a finding,
never a row, and acknowledges nothing; but where retention deleted decisions, a receipt naming no delivery held
that is dated before the newest of them may be the receipt of a delivery that expired with its block, and is a
row acknowledging nothing (``match_receipt``'s ``expired_before``). Only a receipt of
a record the partner opened acknowledges the delivery it is bound to (``ReceiptMatch.key``): a
REJECTED receipt says the partner holds nothing it could read, so its delivery stays unreceipted
until a receipt of the same place opens it. Matching by version alone let one receipt stand for
every delivery of an alert, later ones and recall notices included, and a receipt naming a version
never sent count as received.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import orjson

from broker.audit.chain import chain_owner, flatten, shown
from broker.audit.verify import DELIVERED, feed_place, known_status, opened_status, plain, when
from puente.wire import iso_utc

CLOCK_SKEW = timedelta(hours=1)
"""How far a partner's clock may run behind the broker's: a receipt dated further before the delivery
it names cannot be its receipt (nor, in ``recalls``, a recall's acknowledgement)."""

RECEIPTS_PER_CHECKPOINT = 5_000
"""The most receipts a partner's subscriber writes before a checkpoint vouches for them (one batch: the
subscriber reads at most this many feed records at a time). What reads the audit holds a chain's receipts
until its checkpoint, so this bounds what it holds for a genuine chain."""

T = TypeVar("T")

UNVOUCHED_PER_CHAIN = 10 * RECEIPTS_PER_CHECKPOINT
UNVOUCHED_IN_ALL = 40 * RECEIPTS_PER_CHECKPOINT
UNVOUCHED_BYTES = 32 * 1024 * 1024  # of the receipts' records: a genuine receipt is a few hundred bytes
"""The bounds of ``Unvouched``. The bytes are the records' as written, and the same figures in `audit verify` and
the audit index, so both give up the same receipts; what a reader holds in memory for a receipt must then be no
larger than its record: bytes (``held_receipt``, or the record itself), never the parsed JSON, which may take twenty
times as many (``[{},{},...]``: 3 bytes written, 72 parsed, each)."""


class Unvouched(Generic[T]):
    """Receipts (or what a reader keeps of them: bytes no larger than the record, ``UNVOUCHED_BYTES``) waiting for
    a checkpoint of their chain, per chain, in offset order, bounded.

    Anyone with write access to a receipts topic can append receipts no checkpoint will ever vouch for,
    in one chain or in a million, each as large as Kafka takes; held without a bound they would fill the
    auditor's memory. A genuine chain holds at most ``RECEIPTS_PER_CHECKPOINT`` before its checkpoint, so
    a chain holding more than ``UNVOUCHED_PER_CHAIN`` gives up its oldest. Once all chains hold more than
    ``UNVOUCHED_IN_ALL`` receipts or ``UNVOUCHED_BYTES`` of records, a chain gives up its oldest: the one
    waiting longest among those no checkpoint has vouched for yet in this walk (a flood's: no one can sign
    its checkpoints), and only when every chain held has been vouched for, the one waiting longest. What
    is given up is returned by ``add`` as unvouched: a finding, never a row (a genuine receipt pushed out
    by a flood is reported, never silently kept or lost).
    """

    def __init__(self, per_chain: int = UNVOUCHED_PER_CHAIN, in_all: int = UNVOUCHED_IN_ALL,
                 in_bytes: int = UNVOUCHED_BYTES) -> None:
        self._per_chain, self._in_all, self._in_bytes = per_chain, in_all, in_bytes
        self._held: dict[str, deque[tuple[int, T, int]]] = {}  # oldest chain first: a chain popped goes last
        self._vouched: set[str] = set()  # chains a checkpoint has vouched for (``pop(..., vouched=True)``)
        self._count = self._bytes = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, chain: object) -> bool:
        """Whether ``chain`` holds anything (a chain added to when it holds nothing goes last in the order
        of giving up: what a reader that saves this order across runs needs to know)."""
        return chain in self._held

    def add(self, chain: str, offset: int, item: T, size: int = 0) -> list[tuple[int, T]]:
        """Hold ``item`` (the receipt at ``offset``, a record of ``size`` bytes) for ``chain``; returns what was
        given up to make room, oldest first per chain."""
        held = self._held.get(chain)
        if held is None:
            held = self._held[chain] = deque()
        held.append((offset, item, size))
        self._count += 1
        self._bytes += size
        out: list[tuple[int, T]] = []
        if len(held) > self._per_chain:
            out.append(self._give_up(chain))
        while self._count > self._in_all or self._bytes > self._in_bytes:
            out.append(self._give_up(self._victim()))
        return out

    def _victim(self) -> str:
        """The chain waiting longest that no checkpoint vouched for yet, or else the chain waiting longest."""
        return next((chain for chain in self._held if chain not in self._vouched), next(iter(self._held)))

    def _give_up(self, chain: str) -> tuple[int, T]:
        held = self._held[chain]
        offset, item, size = held.popleft()
        self._count -= 1
        self._bytes -= size
        if not held:
            del self._held[chain]
        return offset, item

    def pop(self, chain: str, *, vouched: bool = False) -> list[tuple[int, T]]:
        """``chain``'s held items, in offset order, no longer held: its checkpoint came (``vouched``: the chain
        is then the last to give up what it holds), or it was cut off."""
        if vouched:
            self._vouched.add(chain)
        held = self._held.pop(chain, None)
        if not held:
            return []
        self._count -= len(held)
        self._bytes -= sum(size for _, _, size in held)
        return [(offset, item) for offset, item, _ in held]

    def drop(self, chain: str, offsets: Iterable[int]) -> int:
        """Stop holding ``chain``'s items at ``offsets`` (records a signed record's path does not run through: a
        fork it settled against, ``PartitionWalk.pruned``), keeping the rest in order; returns how many."""
        held, gone = self._held.get(chain), set(offsets)
        if not held or not gone:
            return 0
        kept = deque(entry for entry in held if entry[0] not in gone)
        dropped = len(held) - len(kept)
        self._count -= dropped
        self._bytes -= sum(size for at, _, size in held if at in gone)
        if kept:
            self._held[chain] = kept
        else:
            del self._held[chain]
        return dropped

    def clear(self) -> int:
        """Drop everything held (a new partition's walk: no chain is vouched for yet); returns how many items."""
        count, self._count, self._bytes = self._count, 0, 0
        self._held.clear()
        self._vouched.clear()
        return count


GIVEN_UP = (f"no checkpoint of its chain vouched for it within the {UNVOUCHED_PER_CHAIN:,} receipts held per "
            f"chain ({UNVOUCHED_IN_ALL:,} or {UNVOUCHED_BYTES // 2**20} MiB in all): matched to no delivery")
"""The finding at a receipt ``Unvouched`` gave up (``audit verify``'s and the audit index's alike)."""
GIVEN_UP_LISTED = 100
"""Receipts given up that a partition's findings list one by one; one more line says more follow."""


def given_up(before: int, offsets: Iterable[int]) -> list[tuple[int, str]]:
    """(offset, why) of the findings for receipts given up at ``offsets``, ``before`` of the partition's
    given up already: the first ``GIVEN_UP_LISTED`` one by one, then one line saying more follow unlisted
    (a flood must not grow the findings as it would have the memory)."""
    out = []
    for count, at in enumerate(offsets, start=before + 1):
        if count <= GIVEN_UP_LISTED:
            out.append((at, GIVEN_UP))
        elif count == GIVEN_UP_LISTED + 1:
            out.append((at, f"{GIVEN_UP}; more such receipts in this partition are not listed one by one"))
    return out


def appended_at(row: dict[str, Any], *appended_ms: int | None) -> dict[str, Any]:
    """``row``, a receipt's, with ``appended_at``: when Kafka had appended both the receipt and the checkpoint that
    signs it (the later of ``appended_ms``, Kafka's append times of the two records, ISO 8601 in UTC as the audit
    writes times); a row of another kind as it is.

    A receipt's ``at`` is the partner's word, written by its own clock; its append time is Kafka's (a receipts
    topic keeps ``LogAppendTime``), which no partner chooses, so what dates an acknowledgement takes it no
    earlier than that (``acknowledged``): a partner that back-dates a late one is caught. The checkpoint's
    time counts too: a receipt no checkpoint signs counts for nothing (anyone may have appended it), so a partner
    acknowledges when it signs, not when it appends a receipt it may never sign. A subscriber writes both in one
    transaction, seconds apart. A time that is not Kafka's (None: a topic with ``CreateTime``) gives none; then,
    and always, a field of that name the partner wrote itself is dropped. ``broker.auditor.read_log`` and the
    audit index (``broker.audit_index``) both give a vouched receipt its time by this one rule."""
    if row.get("kind") != "RECEIPT":
        return row
    out = {k: v for k, v in row.items() if k != "appended_at"}
    known = [ms for ms in appended_ms if ms is not None]
    if known:
        with contextlib.suppress(OverflowError, OSError, ValueError):  # no time Kafka writes: give none
            out["appended_at"] = iso_utc(datetime.fromtimestamp(max(known) / 1000, UTC))
    return out


def acknowledged(row: dict[str, Any]) -> datetime | None:
    """When receipt ``row`` (one ``appended_at`` gave its Kafka time) acknowledges: the later of the time it states
    (``at``, the partner's clock) and ``appended_at`` (Kafka's). A partner chooses the first and not the second, so
    a back-dated receipt is taken at Kafka's time, and a clock running ahead only makes its own receipts later.
    None when ``at`` states no time (``verify.when``): such a receipt dates nothing, whatever Kafka's time. Give it
    receipts' rows only: of another kind, an ``appended_at`` is no time ``appended_at`` gave."""
    at = when(row.get("at"))
    if at is None:
        return at
    appended = when(row.get("appended_at"))
    return at if appended is None else max(at, appended)


EXPIRES_WITH_DELIVERY = frozenset({"RECEIVED", "DUPLICATE", "SUPERSEDED", "REFUSED", "EXPIRED"})
"""The statuses of a receipt of a view that ``match_receipt`` may take as of a delivery that expired (and REJECTED
ones). Not an answer to a recall notice (RECALLED, RECALL_PASSED_ON, RECALL_NOT_HELD): ``broker.audit.recalls``
matches those by alert, partner and version alone, so one taken as expired would acknowledge a recall held."""


FeedPlace = tuple[str, int, int]
"""A feed record's place: (feed topic, partition, offset)."""


def sent_version(row: dict[str, Any]) -> int | None:
    """The version the feed record of decision ``row`` (a row as ``flatten`` gives it) carries, which a
    receipt of it names: the alert's version, but for a recall notice the version the notice carried,
    which the pipeline records as ``notice_version`` (an officer's recall may reuse an older version,
    and its notice goes out above any version a partner holds); in a decision written before that
    field, the pipeline's rule gives it (``max(version, previous_version + 1)``). None when the row's
    version is no integer."""
    if row.get("decision") == "RECALL" and type(notice := row.get("notice_version")) is int:
        return notice
    version = row.get("version", 1)
    if type(version) is not int:
        return None
    previous = row.get("previous_version")
    if row.get("decision") == "RECALL" and row.get("action") == "RECALL" and type(previous) is int:
        return max(version, previous + 1)
    return version


@dataclass(frozen=True)
class Sent:
    """A feed record the audited decisions sent to a partner (a view or a recall notice), as a
    ``ReceiptBook`` holds it: ``key`` is the book's id for it, ``feed`` its feed topic, ``version`` the
    version it carries (None: none a receipt can name), ``at_ms`` when the broker decided it (None: no
    time it states), and ``place`` where that partner's receipts put it, once one has."""

    key: int
    feed: str | None
    version: int | None
    at_ms: int | None
    place: FeedPlace | None = None


@dataclass(frozen=True)
class Placed:
    """What one partner's receipts say the record at a place held: an alert, its version (None while only
    receipts naming no version name it) and the delivery it was bound to (None: not yet)."""

    alert_id: str
    version: int | None
    key: int | None


@dataclass(frozen=True)
class ReceiptMatch:
    """A receipt bound to its place: ``key`` is the delivery it acknowledges, None for a receipt of a
    record its partner did not open (REJECTED), which acknowledges nothing, and for one whose delivery expired with
    its decision (``expired``: ``match_receipt``'s ``expired_before``)."""

    partner: str
    place: FeedPlace
    alert_id: str
    version: int | None
    key: int | None
    expired: bool = False


class ReceiptBook(Protocol):
    """The deliveries receipts are matched against and the places receipts bound so far (the audit
    index's tables, or ``audit verify``'s temporary file)."""

    def sent(self, partner: str, alert_id: str) -> list[Sent]:
        """Every feed record of ``alert_id`` sent to ``partner``, oldest first."""
        ...

    def placed(self, partner: str, place: FeedPlace) -> Placed | None:
        """What ``partner``'s receipts bound at ``place``, or None."""
        ...

    def bind(self, match: ReceiptMatch) -> None:
        """Keep what a sound receipt says of its place (a version and a delivery once one names them)."""
        ...


def sent_records(doc: dict[str, Any]) -> list[tuple[str, str, str | None, int | None, str | None]]:
    """(alert id as its partner knows it, partner, feed topic, version sent, decision time) of every feed record a
    sound BLOCK says went out: a view delivered or a recall notice sent (``sent`` not False). The id is the
    decision's ``ref`` (``flatten``), which the partner's receipts name; the alert's own id in a block written
    before references, when partners were given that."""
    if doc.get("kind") != "BLOCK":
        return []
    out = []
    for row in flatten(doc):
        alert, partner, feed, at = row.get("ref", row.get("alert_id")), row.get("partner"), row.get("feed"), \
            row.get("at")
        if (row.get("kind") == "DECISION" and row.get("decision") in DELIVERED and row.get("sent") is not False
                and isinstance(alert, str) and isinstance(partner, str)):
            out.append((alert, partner, feed if isinstance(feed, str) else None, sent_version(row),
                        at if isinstance(at, str) else None))
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _where(place: FeedPlace) -> str:
    return f"{plain(place[0], 120)}:{place[1]}:{place[2]}"


MATCHED_FIELDS = ("chain", "alert_id", "version", "status", "feed", "at")
"""What ``match_receipt`` reads of a receipt."""


def held_receipt(doc: dict[str, Any]) -> bytes:
    """What ``match_receipt`` reads of receipt ``doc`` (``MATCHED_FIELDS``), as compact JSON: what a reader holds while
    the receipt waits for a checkpoint (``Unvouched``), to match once one vouches for it (``orjson.loads`` gives it
    back). No larger than the record but for a number's digits: a value that is a list or an object is held as an
    empty one, which ``match_receipt`` takes as it takes any (no string, no number: shown by its kind alone)."""
    return orjson.dumps({k: v if v is None or isinstance(v, (str, int, float)) else type(v)()
                         for k in MATCHED_FIELDS if k in doc for v in (doc[k],)})


def match_receipt(doc: dict[str, Any], book: ReceiptBook, *,
                  expired_before: int | None = None) -> ReceiptMatch | str:
    """The delivery a sound RECEIPT record ``doc`` names, bound to the place it names (module docstring),
    or why it names none: one line, a finding at the receipt. The caller ``book.bind``s a match.

    ``expired_before`` (Unix ms, ``verify.expired_before``): retention deleted decisions, every delivery of theirs
    decided by then. A receipt naming no delivery held that acknowledges before it (``acknowledged``: no earlier
    than Kafka appended it), give or take ``CLOCK_SKEW``, names one that may have expired with its decision: Kafka
    deletes each topic's segments on its own schedule, so receipts outlive their deliveries' blocks by days. It is
    matched to its place as ``expired`` and acknowledges nothing; only a receipt Kafka dated (``appended_at``),
    otherwise sound (a status subscribers write, a place, a time, one alert per place), and only where no delivery of
    its alert to its partner is held at all: the horizon is the latest over every decisions partition, so a receipt
    that fails to match a delivery still held (a version never sent, another feed, a place taken, a date before it)
    names a real mismatch."""
    owner = chain_owner(str(doc.get("chain")))
    alert, version, status = doc.get("alert_id"), doc.get("version"), doc.get("status")
    numbered = type(version) is int
    what = f"receipt for alert {shown(alert)}" + (f" version {shown(version)}" if numbered else "")
    never = f"which the audited decisions never delivered to {plain(owner)}"
    if not known_status(status):
        # An allow-list: a status that only looks like RECEIVED (another script's letters, a bidi override) would
        # otherwise acknowledge the delivery as any status but REJECTED did.
        return f"{what} states a status no subscriber writes ({shown(status, 40)}): it acknowledges nothing"

    def lost(why: str) -> ReceiptMatch | str:
        """``why``, unless the receipt's delivery may have expired with its decision (``expired_before``)."""
        found, acked = feed_place(doc.get("feed")), acknowledged(doc)
        # Without Kafka's append time (a topic with CreateTime) the partner alone dates it: a back-dated receipt
        # would pass for an expired one.
        if (expired_before is None or not isinstance(alert, str) or found is None or acked is None
                or not (status in EXPIRES_WITH_DELIVERY or not opened_status(status))
                or when(doc.get("appended_at")) is None
                or acked.timestamp() * 1000 >= expired_before + CLOCK_SKEW.total_seconds() * 1000):
            return why
        place: FeedPlace = (found[0][0], found[0][1], found[1])
        placed = book.placed(owner, place)
        if placed is not None and (placed.alert_id != alert or (
                numbered and placed.version is not None and placed.version != version)):
            return why  # one feed record, two alerts: no expiry explains that
        return ReceiptMatch(owner, place, alert, version if numbered else None, None, expired=True)

    sent = book.sent(owner, alert) if isinstance(alert, str) else []
    if not isinstance(alert, str) or not sent:
        return lost(f"{what}, {never}")
    found = feed_place(doc.get("feed"))
    if found is None:
        return (f"{what} names no feed record ({shown(doc.get('feed'))}, not topic:partition:offset): it matches no "
                "delivery")
    place: FeedPlace = (found[0][0], found[0][1], found[1])
    where = _where(place)
    sent = [s for s in sent if s.feed == place[0]]
    if not sent:
        return f"{what} at feed {where}, {never} in that feed"
    if numbered:
        versions = sorted({s.version for s in sent if s.version is not None})
        sent = [s for s in sent if s.version == version]
        if not sent:
            listed = f" (it sent version {', '.join(str(v) for v in versions[:5])} there)" if versions else ""
            return f"{what} at feed {where}, {never} at that version{listed}"
    at = when(doc.get("at"))
    if at is None:
        return f"{what} at feed {where} states no time: it cannot be shown to follow the delivery it names"
    placed = book.placed(owner, place)
    if placed is not None and (placed.alert_id != alert or (
            numbered and placed.version is not None and placed.version != version)):
        held = f"alert {shown(placed.alert_id)}" + (f" version {placed.version}" if placed.version is not None else "")
        return (f"{what} names feed record {where}, which {plain(owner)}'s receipts already name for {held}: one feed "
                "record holds one delivery")
    opened = numbered and opened_status(status)
    if placed is not None and placed.key is not None:
        sent = [s for s in sent if s.key == placed.key]
    elif opened:
        free = [s for s in sent if s.place is None]
        if not free:
            elsewhere = sorted({_where(s.place) for s in sent if s.place is not None})
            return (f"{what} names feed record {where}, but {plain(owner)}'s receipts already put that delivery "
                    f"at {', '.join(elsewhere[:3])}: one delivery is one feed record")
        sent = free
    at_ms = int(at.timestamp() * 1000)
    skew = int(CLOCK_SKEW.total_seconds() * 1000)
    after = [s for s in sent if s.at_ms is not None and at_ms >= s.at_ms - skew]
    if not after:
        known = [s.at_ms for s in sent if s.at_ms is not None]
        sent_at = f"delivered it {_iso(min(known))}" if known else "states no time it delivered it"
        return (f"{what} at feed {where} is dated {shown(doc.get('at'), 40)}, before the broker {sent_at}: a "
                "receipt cannot precede its delivery")
    # Only a receipt of a record its partner opened acknowledges a delivery; any other names the place.
    return ReceiptMatch(owner, place, alert, version if numbered else None, after[0].key if opened else None)
