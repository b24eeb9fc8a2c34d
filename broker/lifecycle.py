"""What the broker remembers of each alert's life: its version and who holds which version. Pure.

An alert is not final: its originator may correct it (UPDATE), change its markings (RECLASSIFY),
consent to a partner (CONSENT) or withdraw it (RECALL), each as a later version of the same alert
id. The broker re-decides every version for every partner, and to do that it must know which
partners hold the alert now, and at which version: a holder still entitled gets the new version,
a holder no longer entitled gets a recall notice, a partner newly entitled gets its first copy.

That knowledge is an :class:`AlertState` per alert, kept in a compacted Kafka topic (one partition
per slot, like the audit; ``TopicNames.lifecycle``) and written in the same transaction as the
decisions it follows from, so it is exactly as durable as they are. A slot's new owner reads its
partition back whole. The topic keeps an alert's state for as long as an agreement lets a partner
keep the alert (``topology.lifecycle_retention_days``); after that there is nothing left to
update or recall.

A recalled state ages out like any other, and with it the refusal of the alert's later versions.
So the pipeline refuses any version with content (a first one republished too) of an alert it
holds no state for once the alert's event is older than the retention ("forgotten",
``Pipeline._forgettable``), rather than take it for one that never reached anyone. (Keeping
recalled states for good, re-written before they age out or in a compact-only topic, would need
the worker to write and load more than a batch's states; the age check costs one comparison, on
rare paths, and covers any state lost, not only recalled ones.)

A state is written whenever a version changes something: a first version that reached at least
one partner, or is about an event older than half the retention (so that its next version, even
a late one, finds it), and every later version. An alert that reached no partner otherwise has
no state, which means exactly what it should: no holder.

A state also names the alert's originator (``AlertState.originator``), and a later version naming
another is dead-lettered: an agency that relays several foreign units (COMBIFRON) may name any of
them, and without this one unit's version 2 would update, re-mark or recall another's alert.
It names the alert's type too (``AlertState.alert_type``): a later version of another type is refused,
and every recall notice names the type the alert was first published as.

State values are JSON, bounded, and read strictly: a state that does not parse stops the slot (the
broker will not guess who holds an alert).

The partition also keeps the slot's outbox: the feed records its last transaction decided and has not
yet written to the feeds (``outbox_records``, ``Outbox``), under keys no alert id takes.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from puente.errors import PuenteError

MAX_VERSION = 1_000_000
MAX_STATE_BYTES = 64 * 1024
MAX_FEED_PARTITIONS = 100_000
"""The most partitions a state may record a feed had (``AlertState.counts``): far beyond any feed, a bound on input."""
MAX_MARKING_ENTRIES = 64
"""The most codes a state's ``consent`` may list: ``schemas.bounds``' bound on a marking list, held equal by a test
(this layer may not import ``schemas``): a state the broker writes must be one its own decoder takes."""
MAX_CONSENT_CODE = 256
"""The longest code a state's ``consent`` may hold: four times ``schemas.bounds``' code bound (a bound on input)."""
_PARTNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# An originator as the pipeline admits one for a version with content: an agency (as settings allow its name)
# or a foreign unit it relays (COL-DIJIN, ``pipeline.Originator``).
_ORIGINATOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,67}")
_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")  # an alert type as the schema names one (a symbol: WATCHLIST_HIT)
ACTIONS = ("UPDATE", "RECLASSIFY", "CONSENT", "RECALL")
RECALL = "RECALL"
CONSENT = "CONSENT"


class LifecycleStateError(PuenteError):
    """A lifecycle state record that cannot be read: the slot stops rather than guess."""


@dataclass(slots=True, frozen=True, weakref_slot=True)
class AlertState:
    """One alert's life so far, as the broker acted on it. Never changed once made, and its dicts must never be
    changed in place either (a later state may take an earlier one's unchanged dicts; a changed one is a new dict): a
    slot's book shares one state between all the alerts whose states are equal (``LifecycleBook.put``)."""

    version: int
    """The latest version processed."""
    holders: dict[str, int] = field(default_factory=dict)
    """Partner -> the version it holds: delivered and neither superseded nor recalled since."""
    recalled: bool = False
    """Recalled by its originator: for good, later versions are refused."""
    originator: str | None = None
    """``markings.originator.agency`` of the first version the broker processed (the agency, or the foreign
    unit it relays: COL-ARC); every later version, a recall too, must name the same (``Pipeline._admit``).
    None in a state written before the broker recorded it: its alert's later versions are held only to what
    their agency may name, as before, and the state stays without one, since a later version's originator
    is not proof of the first's (such states age out with the lifecycle topic's retention)."""
    by_id: frozenset[str] = frozenset()
    """The partners that know the alert by its own id, not by their reference (``policies.alert_reference``): the
    holders of a state written before the broker named alerts to partners by reference. They were given the id,
    so every later version and recall notice of the alert reaches them under it, or their copy would stay beside
    a second one under the reference, unrecalled. Kept for the alert's life; empty for every alert first
    delivered since."""
    by_slot: frozenset[str] = frozenset()
    """The partners whose feed records of the alert go to its slot's feed partition (slot modulo the feed's
    partitions), not to the one their record key gives (``broker.topology.feed_partition``): the holders of a
    state written before feeds were partitioned by key. Their copy and its earlier versions are in that
    partition, so every later version and recall notice goes there too, where a subscriber instance that holds
    the copy reads it. Kept for the alert's life; empty for every alert first delivered since."""
    counts: dict[str, int] = field(default_factory=dict)
    """Partner -> how many partitions its feed had when the alert was first sent to it: every later record of the
    alert to that partner follows that count (``broker.topology.feed_partition``, or the slot modulo it for a
    partner fed by slot), so a feed given more partitions since keeps each earlier alert's versions and recall in
    the partition that holds its copy. Kept for the alert's life. Empty in a state written before the broker
    recorded it: such an alert follows its feed's count now, as it did then."""
    alert_type: str | None = None
    """The ``alert_type`` the alert was first published as: a later content version naming another is refused
    (``Pipeline._admit``), and every recall notice names this one, never a type a version the partner is denied
    named. None in a state written before the broker recorded it: the next content version admitted is not held
    to a type, and the state it writes records that version's, which holds every version after it. Part of ``==``,
    as every field: two states that name different types are different states."""
    consent: frozenset[str] | None = None
    """``markings.originator_consent`` of the latest version admitted (as given): the partners the originator has
    consented to so far. Consent is given per alert and per partner, and is itself recorded: whatever a later
    version adds to it is on its audit entry (``consent_given``), a CONSENT or not. None in a state written before it
    was recorded: every partner the next version names is then recorded as given, and the state it writes records
    that version's."""

    def encode(self, alert_id: str, at: str) -> bytes:
        """The state record's value (its key is the alert id). ``originator`` and ``alert_type`` only when known,
        so a state that has none is written as before; ``by_id``, ``by_slot`` and ``counts`` always, even empty: a
        state without one was written before references, before feeds were partitioned by key, or before counts
        were recorded (``decode``)."""
        doc: dict[str, Any] = {"alert_id": alert_id, "version": self.version, "holders": self.holders,
               "recalled": self.recalled, "by_id": sorted(self.by_id), "by_slot": sorted(self.by_slot),
               "counts": self.counts, "at": at}
        if self.originator is not None:
            doc["originator"] = self.originator
        if self.alert_type is not None:
            doc["alert_type"] = self.alert_type
        if self.consent is not None:
            doc["consent"] = sorted(self.consent)
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def decode(cls, alert_id: str, value: bytes) -> AlertState:
        """A state record read back; LifecycleStateError when it is not one Puente wrote for this id."""
        if len(value) > MAX_STATE_BYTES:
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} is larger than {MAX_STATE_BYTES} bytes")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} is not JSON") from None
        if not isinstance(doc, dict) or doc.get("alert_id") != alert_id:
            raise LifecycleStateError(f"the lifecycle state under key {alert_id[:120]} names another alert")
        version, holders, recalled = doc.get("version"), doc.get("holders"), doc.get("recalled")
        if type(version) is not int or not 1 <= version <= MAX_VERSION or type(recalled) is not bool:
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has no valid version")
        if not isinstance(holders, dict) or not all(
                isinstance(p, str) and _PARTNER.fullmatch(p) and type(v) is int and 1 <= v <= version
                for p, v in holders.items()):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has invalid holders")
        originator = doc.get("originator")  # absent from a state written before it was recorded
        if originator is not None and not (isinstance(originator, str) and _ORIGINATOR.fullmatch(originator)):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has an invalid originator")
        # Absent: written before references, every holder given the alert's own id (the broker never writes null).
        by_id = doc["by_id"] if "by_id" in doc else list(holders)
        if not isinstance(by_id, list) or not all(
                isinstance(p, str) and _PARTNER.fullmatch(p) for p in by_id):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has invalid partners named by id")
        # Absent: written before feeds were partitioned by key, every holder's records in the slot's partition.
        by_slot = doc["by_slot"] if "by_slot" in doc else list(holders)
        if not isinstance(by_slot, list) or not all(
                isinstance(p, str) and _PARTNER.fullmatch(p) for p in by_slot):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has invalid partners fed by slot")
        counts = doc.get("counts", {})  # absent: written before counts were recorded, each feed's count now
        if not isinstance(counts, dict) or not all(
                isinstance(p, str) and _PARTNER.fullmatch(p) and type(n) is int and 1 <= n <= MAX_FEED_PARTITIONS
                for p, n in counts.items()):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has invalid feed partition counts")
        alert_type = doc.get("alert_type")  # absent from a state written before it was recorded
        if alert_type is not None and not (isinstance(alert_type, str) and _TYPE.fullmatch(alert_type)):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has an invalid alert type")
        consent = doc.get("consent")  # absent from a state written before it was recorded
        if consent is not None and not (isinstance(consent, list) and len(consent) <= MAX_MARKING_ENTRIES and all(
                isinstance(p, str) and len(p) <= MAX_CONSENT_CODE for p in consent)):
            raise LifecycleStateError(f"the lifecycle state of {alert_id[:120]} has an invalid consent")
        return cls(version, dict(holders), recalled, originator, frozenset(by_id), frozenset(by_slot), dict(counts),
                   alert_type, None if consent is None else frozenset(consent))


class LifecycleBook:
    """One slot's alert states, committed ones only; a batch in the works overlays its own.

    ``retention_ms``: how long the lifecycle topic keeps a state (``topology.lifecycle_retention_days``).
    ``prune`` forgets, as the topic does, each state written longer ago than that and ``PRUNE_SLACK_MS``
    more, so a worker that runs for months holds what a new owner of the slot would read back, not every
    state it ever wrote: states are written for alerts each agency chooses, and held in every worker's
    memory. Times are Kafka's (the ingress records' append times, ``worker``), never the worker's own
    clock: a clock set ahead for a moment would otherwise forget states the topic still holds, and a later
    version of an alert recalled for good would find none once the clock is right again. Forgetting is
    safe for the same reason the topic's deletion is: a state is written no earlier than its alert's
    event, less ``pipeline.MAX_FUTURE_SKEW``, so an alert whose state is forgotten has an event older than
    the retention and the slack, less that skew, and ``Pipeline._forgettable`` refuses its versions (the
    slack covers a worker clock up to about half a day off Kafka's). None: every state is kept."""

    PRUNE_SLACK_MS = 86_400_000

    def __init__(self, retention_ms: int | None = None) -> None:
        self._states: dict[str, AlertState] = {}
        self._written: dict[str, int] = {}  # alert id -> when its state was written (ms), oldest first
        self._retention_ms = retention_ms
        # Each distinct state, for as long as some alert of the book (or of a batch in the works) holds it.
        self._shared: weakref.WeakValueDictionary[tuple[Any, ...], AlertState] = weakref.WeakValueDictionary()

    def __len__(self) -> int:
        return len(self._states)

    @property
    def newest_ms(self) -> int | None:
        """When the newest state held was written (ms), or None: none held. Its record's own timestamp: the writing
        worker's clock, since the lifecycle topic keeps the producer's time."""
        return max(self._written.values(), default=None)

    def get(self, alert_id: str) -> AlertState | None:
        return self._states.get(alert_id)

    def put(self, alert_id: str, state: AlertState, written_ms: int = 0) -> None:
        """``state`` is ``alert_id``'s from now on, written (committed) at ``written_ms``.

        The book holds one copy of equal states: most alerts reach the same partners at version 1 from the same
        originator, and a state of its own for each took about 1.1 KB (a book the lifecycle topic's five years
        fill would not fit in a worker's memory); shared, an alert costs its id and its place in the book. A state
        no alert holds any longer (pruned, or replaced by a later version's) is let go with its last holder."""
        key = (state.version, tuple(state.holders.items()), state.recalled, state.originator, state.by_id,
               state.by_slot, tuple(state.counts.items()), state.alert_type, state.consent)
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = state
        self._states[alert_id] = shared
        self._written.pop(alert_id, None)
        self._written[alert_id] = written_ms

    def prune(self, now_ms: int) -> int:
        """Forget the states written longer than the retention (and ``PRUNE_SLACK_MS``) before ``now_ms``, a
        Kafka time; how many. Written in time order, so the oldest are first: a state behind a younger one (a
        time out of order) waits for it."""
        if self._retention_ms is None:
            return 0
        cutoff, gone = now_ms - self._retention_ms - self.PRUNE_SLACK_MS, 0
        for written in self._written.values():
            if written >= cutoff:
                break
            gone += 1
        for alert_id in list(itertools.islice(self._written, gone)):
            del self._written[alert_id]
            del self._states[alert_id]
        return gone

    def load(self, key: bytes | None, value: bytes | None, written_ms: int = 0) -> None:
        """One record of the slot's lifecycle partition, read back in order (a later one wins), written at
        ``written_ms`` (its Kafka timestamp)."""
        if key is None:
            raise LifecycleStateError("a lifecycle state record has no key")
        alert_id = key.decode("utf-8", "replace")
        if value is None:  # a tombstone: nothing left to remember
            self._states.pop(alert_id, None)
            self._written.pop(alert_id, None)
            return
        self.put(alert_id, AlertState.decode(alert_id, value), written_ms)


def lifecycle_problem(alert: dict[str, Any], emptied: Collection[str] = ()) -> str | None:
    """Why an alert's version and lifecycle do not agree (None when they do): a first version has no
    lifecycle, every later one has one, a consent names partners its markings consent to, and a recall says why.
    A recall's reason is what makes it final: a partner's store reads a notice with a null reason as the broker's
    withdrawal (an agreement that no longer covers the alert, a version that could not be admitted), after which
    a later version may reach it again, and one with a reason as the originator's, after which nothing does. So a
    recall without its reason is not taken as final: it is a version that breaks a rule, withdrawn from its holders
    as such, with a null reason that is then true. ``emptied``: the paths of lists the codec emptied, being past
    their bound (``BoundsExceededError``); a consent's lists are then not judged by what is left of them (nothing),
    since the version is invalid for its content anyway and is withdrawn from its holders as such.

    A problem here dead-letters the version only where it cannot be placed among the alert's versions (its number
    out of range, not above the state's) or no partner holds the alert: otherwise the pipeline withdraws the alert
    from its holders, as for a broken content rule (``Pipeline._admit``)."""
    version, life = alert.get("version", 1), alert.get("lifecycle")
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        return f"version must be between 1 and {MAX_VERSION:,}"
    if version == MAX_VERSION and not (isinstance(life, dict) and life.get("action") == RECALL):
        # The last version is kept for a recall: a recall's notice goes out above the version partners hold,
        # and a state, a notice or a partner's store above MAX_VERSION would be refused when read back.
        return f"version {MAX_VERSION:,} is kept for a recall: an alert's content versions end at {MAX_VERSION - 1:,}"
    if version == 1:
        return "version 1 is the first publication and has no lifecycle action" if life is not None else None
    if life is None:
        return f"version {version} is a later version and must say what it does (lifecycle.action)"
    action = life.get("action")
    if action not in ACTIONS:
        return "lifecycle.action is not one Puente knows"
    if action == RECALL and life.get("reason") is None:
        return "a recall must give its reason (lifecycle.reason)"
    if action == CONSENT and not {"lifecycle.partners", "markings.originator_consent"} & set(emptied):
        partners = life.get("partners") or []
        if not partners:
            return "a consent must name the partners it is for (lifecycle.partners)"
        if not set(partners) <= set(alert["markings"]["originator_consent"]):
            return "a consent's partners must also be in markings.originator_consent, which the policy reads"
    return None


def consent_given(alert: Mapping[str, Any], prior: AlertState | None) -> tuple[list[str], list[str]]:
    """Whose consent a later version admitted (its state before it: ``prior``) gives, for the record: the partners
    a CONSENT names (``lifecycle.partners``), and the others it adds to ``markings.originator_consent``.

    Consent is given per alert and per partner, and is itself recorded. A CONSENT gives it to the partners it names;
    any version whose ``originator_consent`` names a partner the state's does not gives it too (an agency's own
    system may carry a consent in an update or a reclassification): both are on the record
    (``Pipeline._consented``), apart, since a partner's feed reads a CONSENT as one only when it names that partner.
    With no state, or a state that records no consent (written before it was recorded), every partner the version
    names is taken as new: recorded again at worst, never released on a consent that has no record. Each in the
    order given, once."""
    life = alert.get("lifecycle")
    named = (list(dict.fromkeys(life["partners"])) if isinstance(life, Mapping) and life.get("action") == CONSENT
             and type(life.get("partners")) is list else [])
    given = alert["markings"]["originator_consent"]
    before = prior.consent if prior is not None and prior.consent is not None else frozenset()
    added = [p for p in dict.fromkeys(given) if p not in before and p not in named] if type(given) is list else []
    return named, added


OUTBOX_KEY = b"\x00outbox"
"""The key of an outbox mark in a slot's lifecycle partition; an outbox entry's key is this, a colon and its index.
No alert id begins with a NUL byte (``pipeline``'s ids are printable), so neither is ever taken for a state."""
_ENTRY_PREFIX = OUTBOX_KEY + b":"
_WHERE = "puente.outbox"
_KEY = "puente.outbox.key"
MAX_UNSENT = 1_000_000
"""The most entries a mark may name: far beyond any batch (a bound on input)."""
MAX_ENTRY_BYTES = 1_048_576
"""The most bytes an entry's record may hold: Kafka's default record limit (a sealed view is withheld well below it)."""


class Unsent(NamedTuple):
    """A feed record decided and committed, not yet written to its feed (``outbox_records``)."""

    topic: str
    partition: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    placed: int = 0
    """The feed's partition count ``partition`` was chosen under (0: not said, an entry of an earlier release)."""
    by_slot: bool = False
    """Chosen as the slot's partition, not the key's (``AlertState.by_slot``)."""


def outbox_records(unsent: Sequence[Unsent], held: int = 0,
                   ) -> list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]]:
    """The lifecycle records (key, value, headers) that keep ``unsent`` until it is written: one entry per feed record,
    then the mark naming how many; first a tombstone for each entry of the previous mark (``held`` of them) that no
    entry here replaces, so that compaction soon drops the sealed copies of views already written to their feeds
    (the lifecycle topic keeps records far longer than a feed may).

    Why: a partner's feed must never hold a record the committed audit does not deliver. Kafka leaves an aborted
    transaction's records in the log, marked aborted, and any consumer that reads ``read_uncommitted`` gets them:
    Kafka checks only READ on the topic. So a slot's transaction decides and records (audit block, alert states, and
    these entries) but writes no feed record of its own batch; its feed records go out in the slot's next
    transaction, after that commit, with a mark naming what is still unsent (none, or that transaction's own). An
    aborted transaction then leaves in a feed only records the audit already delivered. Whoever owns the slot next
    reads the partition back (``Outbox``) and sends the last mark's entries first.

    The entries of one transaction come right before its mark, and the mark is its last lifecycle record, so they
    are the mark's n records before it (one producer writes the partition). Compaction keeps them: each key's newest
    record is kept, and no later record shares the last mark's key, nor an entry's key with a later entry of its
    transaction (each has its own index)."""
    out: list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]] = [
        (_ENTRY_PREFIX + str(i).encode(), None, []) for i in range(len(unsent), held)]
    for i, sent in enumerate(unsent):
        where = orjson.dumps([sent.topic, sent.partition, sent.placed, sent.by_slot] if sent.placed
                             else [sent.topic, sent.partition])
        out.append((_ENTRY_PREFIX + str(i).encode(), sent.value,
                    [(_WHERE, where), (_KEY, sent.key), *sent.headers]))
    out.append((OUTBOX_KEY, orjson.dumps({"unsent": len(unsent)}), []))
    return out


def is_outbox(key: bytes | None) -> bool:
    """Whether a lifecycle record under ``key`` is an outbox entry or mark, not an alert's state."""
    return key is not None and key[:1] == b"\x00"


class Outbox:
    """A slot's unsent feed records, from its lifecycle partition read in order (``outbox_records``).

    ``take`` each record of the partition; ``unsent`` then gives the last mark's entries. Fails closed
    (LifecycleStateError): a last mark not right after its entries, numbered from 0, an entry for a topic outside the
    feeds (``feeds``, every feed topic's prefix) or larger than ``MAX_ENTRY_BYTES``, entries or tombstones after the
    last mark (each transaction ends its outbox records with a mark, and compaction keeps the last), an outbox key
    Puente does not write (an index with a leading zero included: Kafka would keep it as another key), a mark with
    headers or anything beside its count."""

    def __init__(self, where: str, feeds: str) -> None:
        self._where = where
        self._feeds = feeds
        self._run: list[tuple[int, Unsent]] = []
        self._mark: tuple[int, list[tuple[int, Unsent]]] = (0, [])
        self._loose = False  # a tombstone with no mark after it yet

    def take(self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> None:
        if not is_outbox(key):  # an alert's state: entries before it belong to no later mark
            self._run = []
            return
        if key == OUTBOX_KEY:
            # Only the last mark is held to its entries: compaction may have kept an older mark whose entries a
            # later transaction's replaced (the cleaner may stop between that transaction's entries and its mark).
            self._mark = (self._count(value, headers), self._run)
            self._run = []
            self._loose = False
            return
        index = key[len(_ENTRY_PREFIX):] if key is not None and key.startswith(_ENTRY_PREFIX) else b""
        if not (index.isdigit() and len(index) <= 7 and (index == b"0" or index[:1] != b"0")):
            raise LifecycleStateError(f"{self._where}: a record under a key Puente does not write")
        if not value:  # a tombstone (``outbox_records``): before its transaction's entries, like a state
            self._run = []
            self._loose = True
            return
        self._run.append((int(index), self._entry(value, headers)))

    @property
    def unsent(self) -> list[Unsent]:
        if self._run or self._loose:
            what = f"{len(self._run)} outbox entries" if self._run else "an outbox tombstone"
            raise LifecycleStateError(f"{self._where}: {what} with no mark after them")
        count, run = self._mark
        last = run[len(run) - count:]
        if count > len(run) or [i for i, _ in last] != list(range(count)):
            raise LifecycleStateError(f"{self._where}: the last outbox mark names {count} unsent feed records, but the "
                                      f"{min(count, len(run))} right before it are not its entries 0 to {count - 1}")
        return [sent for _, sent in last]

    def _count(self, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> int:
        try:
            doc = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            doc = None
        count = doc["unsent"] if isinstance(doc, dict) and doc.keys() == {"unsent"} and not headers else None
        if type(count) is not int or not 0 <= count <= MAX_UNSENT:
            raise LifecycleStateError(f"{self._where}: an outbox mark that does not say how many records are unsent")
        return count

    def _entry(self, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Unsent:
        where: Any = None
        if (len(headers) >= 2 and headers[0][0] == _WHERE and headers[1][0] == _KEY
                and all(isinstance(k, str) and isinstance(v, bytes) for k, v in headers)):
            try:
                where = orjson.loads(headers[0][1])
            except orjson.JSONDecodeError:
                where = None
        # [topic, partition], or with the count it was placed under and how: [topic, partition, count, by_slot].
        if not (isinstance(where, list) and len(where) in (2, 4) and isinstance(where[0], str)
                and where[0].startswith(self._feeds) and type(where[1]) is int
                and 0 <= where[1] < MAX_FEED_PARTITIONS and value and len(value) <= MAX_ENTRY_BYTES
                and (len(where) == 2 or (type(where[2]) is int and where[1] < where[2] <= MAX_FEED_PARTITIONS
                                         and type(where[3]) is bool))):
            raise LifecycleStateError(f"{self._where}: an outbox entry that names no feed partition of this "
                                      f"deployment, or holds no record, or one over {MAX_ENTRY_BYTES} bytes")
        placed, by_slot = (where[2], where[3]) if len(where) == 4 else (0, False)
        return Unsent(where[0], where[1], headers[1][1], value, tuple(headers[2:]), placed, by_slot)
