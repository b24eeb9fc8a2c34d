"""What an agency already published, read back from its own ingress topic: the idempotence ledger.

The ledger is keyed by (alert id, version). An alert id is the agency's own record reference,
so the same record always yields the same id; its version is the record's revision (1 for a
first publication). For a record about to be published, ``Ledger.judge`` says:

    NEW        neither this (id, version) nor a later version of the id is known: publish it
               (a first version, or a later version of a known id, or of an id older than the topic)
    DUPLICATE  this (id, version) was published with the same content: skip it
    CONFLICT   this (id, version) was published with other content: dead-letter it. The broker takes
               one content per version, so a correction needs a higher revision
    OLDER      a later version of the id is already published: dead-letter it. Publishing it would
               put an older copy after a newer one
    RECALLED   the id was recalled by an earlier version: dead-letter it. A recall giving its reason is
               for good (the broker refuses any later version), so new content needs a new alert; one
               without it is a version the broker withdraws the alert for, not for good (``admissible``)
    UNDOES     a later version whose markings differ from those the latest RECLASSIFY or CONSENT of
               the id set (an officer's ``puente reclassify``, a partner's RECLASIFICACION): dead-letter
               it. An export's next revision carries the markings its system had, which never saw the
               reclassification; published, it would undo it (a restriction lifted, a consent
               withdrawn). Its markings are not replaced by the reclassification's either: the export
               may have changed them for a reason of its own (raised them, say), and which of two
               markings is the stricter is the policy's to say, not the adapter's. Exported with the
               markings the reclassification set, or as a RECLASSIFY itself, it is published; so is a
               RECALL, whatever it carries (the broker ignores a recall's content). A CONSENT only adds
               consents: it must keep every other marking, and every partner already consented to

Content is compared by a digest of the value as the current schema writes it. A record on the
topic written with an earlier schema (v1 has no version: it reads as 1) is decoded and encoded
again with the current one before hashing, so an alert published before a schema change is still
a duplicate when its export is read again, not a conflict. A record on the topic that does not
decode, or whose key is not its alert id, is left out: the broker dead-letters it, so it was
never published. (One holding an array past its bound, ``schemas.bounds``, is a version, which the
broker withdraws the alert for: its digest is that of its own bytes, since the codec does not build
that array; see ``_decoded``.) So is a record that does not prove the agency's origin with the agency's own
keys (``adapters.lifecycle.own_mac_lookup``), as ``adapters.lifecycle`` leaves it out: the broker
refuses it too, and counting it would let anyone who can write the topic recall, supersede or
conflict with the agency's genuine records. Such records are counted in ``Ledger.unverified``. Nor
does a record naming an originator the broker refuses for its id (``Originator.may_take``): the units
COMBIFRON relays share its keys, and one unit's copy of another's alert (in that unit's series) must
not make the other's genuine records look recalled, conflicting or older either; such records are
counted in ``Ledger.refused``. Nor does a record outside the partition its key belongs in
(``key_partition``, as ``adapters.lifecycle.collect`` holds copies to it): the broker dead-letters it
as ``misrouted``, so it must not make the real record a duplicate; such records are counted in
``Ledger.misrouted``. Nor does a record whose version and lifecycle the broker refuses in every state
(``admissible``: the broker's own rule, ``broker.lifecycle.lifecycle_problem``): a version outside 1 to
1,000,000 (2,000,000, 0, a negative one), content at 1,000,000 (kept for a recall), a first version with a
lifecycle, a recall without its reason at 1,000,000. The broker dead-lettered it whatever it held, so it is not
published, not the latest (a later export is not OLDER for it), not a recall (its id's later versions are not
RECALLED for it), no CONFLICT for the genuine copy of its version, and no copy to spare a re-run (``unchecked``)
when its key is gone: such records are counted in ``Ledger.invalid``. A version numbered where a later version
stands (2 to 999,999) whose lifecycle breaks a rule is still a version: the broker may have taken it, as a change
it withdraws the alert for. A recall without its reason among them: a version, not a recall for good
(``recalls_for_good``), so its id's later versions are not RECALLED for it.

One kind of record that does not prove the agency's origin is not quite left out: one that names a
MAC key of the agency's own the keystore does not hold (``unverifiable``), the generation that signed
it gone after a rotation, say. The broker, which held that key then, may have taken it; or someone
who can write the topic and holds no key made it up (any garbage MAC under a made-up generation
looks the same). Its provenance is unknown, so it takes nothing away from a genuine record: it is
never the latest, a recall nor a conflict, and the record about to be published is judged by the
verified copies alone. It spares a pure re-run only:

    UNCHECKED  no verified copy holds this (id, version), but a copy under a key the keystore lacks
               holds it with the same content: skip it, as a duplicate (``Ledger.unchecked``). Only
               an exact copy counts, so a forger must foresee a record's whole content to keep it
               off the topic; and never for a RECALL, which is always published (the broker refuses
               a replay of one, and a recall published twice recalls nothing more). It comes before
               RECALLED and OLDER, as DUPLICATE does: an old export run again is a re-run too.

Such copies are counted (``Ledger.unverifiable``, with the key ids they name), and so is a record
published where one stands at its version or later, or recalls its id (``Ledger.overtaken``): had
its key been held the record might have been OLDER, a CONFLICT or RECALLED, and the broker may
refuse it. The run's summary line says both (``adapters.run.Tally``), never silently.

Why the topic and not a local state file: the topic is the truth (a state file can be lost,
copied or disagree with Kafka after a crash), and a crash mid-file needs no recovery step. The
ledger reaches back as far as the ingress topic's retention; beyond it the broker's own replay
check still refuses a republished (id, version).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Collection, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from broker.crypto import SecretBytes, parse_pair_key_id, verify_ingress
from broker.kafka import Admin, KafkaConnection, TopicPartition, partitions_of, read_many, reader, running
from broker.lifecycle import MAX_VERSION, RECALL, lifecycle_problem
from broker.pipeline import Originator
from broker.topology import key_partition
from puente.errors import (
    BoundsExceededError,
    CodecError,
    ConfigError,
    CryptoError,
    KafkaAccessError,
    KeyMaterialError,
    PuenteError,
)
from puente.wire import ALERT_ID, Record
from schemas import AlertCodec


class Verdict(StrEnum):
    """What to do with a record, given what the agency already published (see the module docstring)."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    OLDER = "older"
    RECALLED = "recalled"
    UNDOES = "undoes-reclassification"
    UNCHECKED = "duplicate-of-unverifiable-copy"


# The key ids of unverifiable copies a ledger keeps (``Ledger.unverifiable_keys``): a forger may name a new one per
# record, and a summary line names a few.
KEYS_KEPT = 64

# What a RECLASSIFY or a CONSENT sets, and a later version must keep unless it is one itself.
CHANGING = ("RECLASSIFY", "CONSENT")
HELD_MARKINGS = ("classification", "releasable_to", "caveats", "handling_code", "handling_text", "originator_consent")


class Entry(NamedTuple):
    """One published version as the ledger keeps it."""

    alert_id: str
    version: int
    content: bytes  # digest of the value as the current schema writes it
    recalled: bool = False  # this version is a RECALL for good, giving its reason (``recalls_for_good``)
    held: tuple[Any, ...] | None = None  # the markings this version sets, when it is a RECLASSIFY or a CONSENT


def markings_of(alert: dict[str, Any]) -> tuple[Any, ...]:
    """The markings a RECLASSIFY or a CONSENT sets, comparable: lists as sets, since the same partners, caveats or
    consents in another order are the same markings (an export need not keep the order a consent left)."""
    marks = alert["markings"]
    return tuple(frozenset(v) if isinstance(v, list) else v for v in (marks.get(k) for k in HELD_MARKINGS))


def held(alert: dict[str, Any]) -> tuple[Any, ...] | None:
    """``markings_of(alert)`` when the alert is a RECLASSIFY or a CONSENT, else None."""
    return markings_of(alert) if _action(alert) in CHANGING else None


def keeps(alert: dict[str, Any], last: tuple[Any, ...]) -> bool:
    """Whether ``alert`` keeps the markings ``last`` (its id's latest RECLASSIFY or CONSENT) set.

    A RECALL keeps them whatever it carries: the broker ignores a recall's content. A RECLASSIFY
    sets markings of its own. A CONSENT may add partners to ``originator_consent``, never drop one,
    and keeps every other marking: a partner's CONSENTIMIENTO carries its own restrictions, which
    may be those an officer's reclassification replaced. Any other version keeps them all.
    """
    action = _action(alert)
    if action in ("RECALL", "RECLASSIFY"):
        return True
    mine = markings_of(alert)
    if action != "CONSENT":
        return mine == last
    at = HELD_MARKINGS.index("originator_consent")
    others = [i for i in range(len(HELD_MARKINGS)) if i != at]
    return all(mine[i] == last[i] for i in others) and (last[at] or frozenset()) <= (mine[at] or frozenset())


def is_recall(alert: Mapping[str, Any]) -> bool:
    """Whether ``alert`` is a recall, as the broker tells one: its lifecycle's action is RECALL."""
    life = alert.get("lifecycle")
    return isinstance(life, Mapping) and life.get("action") == RECALL


def recalls_for_good(alert: Mapping[str, Any]) -> bool:
    """Whether ``alert`` recalls its id for good: a recall giving its reason. The broker takes one without it,
    numbered above what partners hold, as a version it cannot admit: it withdraws the alert from its holders, not
    for good, and a later version goes out again (``broker.pipeline._final_recall``)."""
    life = alert.get("lifecycle")
    return is_recall(alert) and isinstance(life, Mapping) and life.get("reason") is not None


def admissible(alert: Mapping[str, Any], emptied: Collection[str] = ()) -> bool:
    """Whether the broker may take ``alert``, in some state, for its version and lifecycle (``emptied``: the paths of
    the lists the codec left empty, past their bound). ``lifecycle_problem``, the function the broker admits by,
    finds none; or the copy is numbered where a later version stands (2 to 999,999), which the broker may take,
    whatever its lifecycle breaks, as a change it withdraws the alert for (``Pipeline._admit``): a content version
    with no action, say, or a recall without its reason (a withdrawal, not a recall for good: ``recalls_for_good``).
    Otherwise the broker refuses it in every state: a version out of range, content at the last version, a first
    version with a lifecycle, a recall without its reason at the last. The codec always gives a version (1 by the
    schema's default), so an alert without one was not read from the topic: refused, never taken as 1.

    ``adapters.lifecycle`` judges the copies an officer's change builds on by this same function (no change but a
    recall is built on such a later version): both sides of an agency's tools must judge a copy alike, or ``puente
    adapt`` and ``puente recall`` would disagree on its latest."""
    if "version" not in alert:
        return False
    if lifecycle_problem(dict(alert), emptied) is None:
        return True
    version = alert["version"]
    return type(version) is int and 1 < version < MAX_VERSION


def _action(alert: dict[str, Any]) -> str | None:
    action = (alert.get("lifecycle") or {}).get("action")
    return action if isinstance(action, str) else None


def digest(value: bytes) -> bytes:
    """A short digest of an encoded alert: equal content, equal digest."""
    return hashlib.blake2b(value, digest_size=16).digest()


def published_entry(codec: AlertCodec, key: bytes | None, value: bytes) -> Entry | None:
    """The ledger entry of a record on an ingress topic; None when the broker would refuse it as undecodable, keyed
    by something else than its alert id, or for a version and lifecycle it refuses in every state (``admissible``).
    Its origin is not checked here: ``read_ledger`` checks it."""
    decoded = _decoded(codec, key, value)
    return None if decoded is None or not decoded[2] else decoded[0]


# A marking list past its bound, as the ledger holds it: equal to no list an export can carry, nor within one.
_PAST_BOUND = frozenset({None})


def _decoded(codec: AlertCodec, key: bytes | None, value: bytes) -> tuple[Entry, dict[str, Any], bool] | None:
    """The entry and alert of a record, and whether the broker may take it for its version and lifecycle
    (``admissible``); None when it does not decode or its key is not its alert id. The entry of a copy it may not
    take holds its version as written (0, 2,000,000): it is never added."""
    emptied: tuple[str, ...] = ()
    try:
        alert = codec.decode(value)
        # Always written again: Avro gives one value several byte forms (an array in one block or two), and
        # equal content must have an equal digest whatever form a record came in.
        content = digest(codec.encode(alert))
        marks = held(alert)
    except BoundsExceededError as exc:
        # An array past its bound (``schemas.bounds``): the broker takes it as a version all the same (and
        # withdraws the alert), so it is one here too. The codec built none of that array's entries, so the record
        # is known by its own bytes, which no alert within the bounds is written as, and a marking list past its
        # bound (a RECLASSIFY's, say) by one no later export keeps: as they were when such arrays were decoded.
        alert, content, emptied = exc.alert, digest(value), exc.emptied
        past = {path.removeprefix("markings.") for path in exc.emptied}
        marks = held(alert)
        if marks is not None:
            marks = tuple(_PAST_BOUND if k in past else v for k, v in zip(HELD_MARKINGS, marks, strict=True))
    except CodecError:
        return None
    alert_id = alert.get("alert_id")
    if not isinstance(alert_id, str) or key != alert_id.encode():
        return None
    taken = admissible(alert, emptied)
    version = alert.get("version")
    entry = Entry(alert_id, version if type(version) is int else 0, content, taken and recalls_for_good(alert), marks)
    return entry, alert, taken


def proves(rec: Record, alert: dict[str, Any], agency: str, lookup: Callable[[str, str], SecretBytes | None]) -> bool:
    """Whether ``rec`` proves ``agency``'s origin for ``alert`` (decoded from it): the origin MAC verifies with
    ``lookup`` (the agency's own keys: ``adapters.lifecycle.own_mac_lookup``), and its headers and the alert
    name the same agency and alert id."""
    try:
        origin = verify_ingress(rec.headers, rec.value, lookup)
    except CryptoError:
        return False
    return (origin.agency, origin.alert_id, alert.get("agency")) == (agency, alert["alert_id"], agency)


def unverifiable(rec: Record, alert: dict[str, Any], agency: str,
                 lookup: Callable[[str, str], SecretBytes | None]) -> str | None:
    """For ``rec``, which does not prove ``agency``'s origin for ``alert``: the key id it names when that is a MAC key
    pair of ``agency``'s own that ``lookup`` does not hold (a generation removed from the keystore after a
    rotation), its headers naming the agency and the alert id; the broker, holding that key, may have taken it.
    None when it fails otherwise (no headers, another agency's key, a MAC that does not verify with a key held):
    the broker refuses such a record whatever keys it holds."""
    missed: list[str] = []

    def asking(who: str, key_id: str) -> SecretBytes | None:
        key = lookup(who, key_id)
        if key is None and who == agency:
            missed.append(key_id)
        return key

    with contextlib.suppress(CryptoError):  # it fails: whether it asked for a key it lacks is what counts
        verify_ingress(rec.headers, rec.value, asking)
    if not missed:  # the headers failed before any key was asked for, or the key held does not verify
        return None
    said = next((raw for name, raw in rec.headers or () if name == ALERT_ID), None)
    if said != alert["alert_id"].encode() or alert.get("agency") != agency:
        return None  # the broker refuses it as another id's, or another agency's, whatever its key
    try:
        mine, _ = parse_pair_key_id(missed[0])
    except KeyMaterialError:
        return None
    return missed[0] if mine.owner == agency else None


class Ledger:
    """Every (alert id, version) published, with its content digest, and each id's latest version."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], bytes] = {}
        self._latest: dict[str, int] = {}
        self._recalled: dict[str, int] = {}  # id -> the version that recalled it
        self._held: dict[str, tuple[int, tuple[Any, ...]]] = {}  # id -> its latest RECLASSIFY/CONSENT and markings
        self.unverified = 0  # records read from the topic that did not prove the agency's origin: left out
        self.refused = 0  # records that proved it, but name an originator the broker refuses for the id: left out
        self.misrouted = 0  # records outside the partition their key belongs in: the broker refuses them, left out
        self.invalid = 0  # records that proved it, with a version or lifecycle the broker refuses always: left out
        # Copies naming a MAC key of the agency's the keystore lacks (``unverifiable``), which the ledger cannot check:
        # (id, version) -> their content digests; id -> their highest version; the ids one of them recalls.
        self._unchecked: dict[tuple[str, int], set[bytes]] = {}
        self._unchecked_top: dict[str, int] = {}
        self._unchecked_recall: set[str] = set()
        self.unverifiable = 0  # such copies (each counted in ``unverified`` too)
        self.unverifiable_keys: set[str] = set()  # the key ids they name, at most KEYS_KEPT

    def __len__(self) -> int:
        return len(self._seen)

    def latest(self, alert_id: str) -> int | None:
        """The highest version of ``alert_id`` published, or None."""
        return self._latest.get(alert_id)

    def unchecked(self, entry: Entry, key_id: str) -> None:
        """Note a copy on the topic, ``entry``, that names ``key_id``, a MAC key of the agency's the keystore does not
        hold: the broker may have taken it, or someone without the key wrote it. It only makes a record of the same
        id, version and content UNCHECKED (``judge``), and counts for ``overtaken``."""
        self._unchecked.setdefault((entry.alert_id, entry.version), set()).add(entry.content)
        self._unchecked_top[entry.alert_id] = max(entry.version, self._unchecked_top.get(entry.alert_id, 0))
        if entry.recalled:
            self._unchecked_recall.add(entry.alert_id)
        self.unverifiable += 1
        if len(self.unverifiable_keys) < KEYS_KEPT:
            self.unverifiable_keys.add(key_id)

    def overtaken(self, alert_id: str, version: int) -> bool:
        """Whether a copy ``unchecked`` noted stands at ``version`` of ``alert_id`` or later, or recalls the id: had
        its key been held, (``alert_id``, ``version``) might not have been NEW, and the broker may refuse it."""
        return self._unchecked_top.get(alert_id, 0) >= version or alert_id in self._unchecked_recall

    def judge(self, alert_id: str, version: int, content: bytes, recall: bool = False) -> Verdict:
        """What to do with (``alert_id``, ``version``) of digest ``content``; ``recall``: it is a RECALL, which a copy
        the ledger cannot check never holds back."""
        known = self._seen.get((alert_id, version))
        if known is not None:
            return Verdict.DUPLICATE if known == content else Verdict.CONFLICT
        if not recall and content in self._unchecked.get((alert_id, version), ()):
            return Verdict.UNCHECKED
        if alert_id in self._recalled:
            return Verdict.RECALLED
        if version < self._latest.get(alert_id, 0):
            return Verdict.OLDER
        return Verdict.NEW

    def judge_alert(self, alert: dict[str, Any], content: bytes) -> Verdict:
        """``judge`` for an alert about to be published, and UNDOES when, NEW, it would undo the markings the
        latest RECLASSIFY or CONSENT of its id set (``keeps``)."""
        alert_id, version = alert["alert_id"], alert["version"]
        verdict = self.judge(alert_id, version, content, recall=is_recall(alert))
        last = self._held.get(alert_id)
        if verdict is Verdict.NEW and last is not None and not keeps(alert, last[1]):
            return Verdict.UNDOES
        return verdict

    def add(self, alert_id: str, version: int, content: bytes, recalled: bool = False,
            held: tuple[Any, ...] | None = None) -> None:
        """Record (``alert_id``, ``version``) as published with digest ``content``; ``recalled``: it is a RECALL for
        good, giving its reason (``recalls_for_good``);
        ``held``: the markings it sets as a RECLASSIFY or a CONSENT."""
        self._seen[(alert_id, version)] = content
        if held is not None and version >= self._held.get(alert_id, (0, ()))[0]:
            self._held[alert_id] = (version, held)
        if version > self._latest.get(alert_id, 0):
            self._latest[alert_id] = version
        if recalled:
            self._recalled[alert_id] = min(version, self._recalled.get(alert_id, version))

    def why(self, verdict: Verdict, alert_id: str, version: int) -> str:
        """The dead letter's message for a record not published (the id is not quoted: it is the agency's
        reference, and a shifted column may have made it a name; a version is no one's data, nor a key id)."""
        if verdict is Verdict.CONFLICT:
            return (f"version {version} of this record's alert id was already published with other content; "
                    "the broker takes one content per version, so a correction needs a higher revision")
        if verdict is Verdict.UNDOES:
            by = self._held[alert_id][0]
            return (f"version {by} of this record's alert id reclassified it (or recorded a consent); version "
                    f"{version} has other markings and would undo that: export it with the markings version {by} "
                    "set (a consent may only add partners to them), or have them changed by another "
                    "reclassification")
        if verdict is Verdict.RECALLED:
            return (f"this record's alert id was recalled in version {self._recalled.get(alert_id)}, for good; "
                    "new content needs a new record number")
        return (f"version {self._latest.get(alert_id)} of this record's alert id is already published; version "
                f"{version} would put an older copy after it (a correction needs a revision above the latest)")


async def scan(conn: KafkaConnection, topic: str, keep: Callable[[Record], Any],
               sized: Callable[[int], Any] | None = None) -> None:
    """Call ``keep(record)`` for every committed record of ``topic``, up to its end at the start; first
    ``sized(count)`` with its partition count, when given.

    A topic that the login may not read and a topic that does not exist both look empty to a
    reader (Kafka hides what a principal may not describe): when no partition is found, the
    topic is looked up once more to say which it is.
    """
    async with running(reader(conn, "puente-adapter-ledger"), conn, f"reading {topic}") as consumer:
        parts = await partitions_of(consumer, topic)
        if not parts:
            raise await _why_unreadable(conn, topic)
        if sized is not None:
            sized(len(parts))
        # ``read_many`` reads a batch that came cut again, alone (``broker.kafka.io.fetch``): a topic with more
        # partitions on one node than one fetch covers whole, and no record is left out or read twice.
        await read_many(consumer, [TopicPartition(topic, p) for p in parts], each=keep)


async def _why_unreadable(conn: KafkaConnection, topic: str) -> PuenteError:
    """Why ``topic`` shows no partition to this login: refused (no ACL), or missing."""
    try:
        metadata = await Admin(conn).call(f"looking up {topic}",
                                          lambda client: client.list_topics(topic=topic, timeout=conn.timeout_s))
    except PuenteError as exc:
        return exc
    found = metadata.topics.get(topic)
    error = getattr(found, "error", None)
    if error is not None and "AUTHORIZATION" in str(error.name()):
        return KafkaAccessError(f"Kafka at {conn.bootstrap} refused {conn.principal} access to {topic}: no ACL allows "
                                "it (an agency's login reads and writes only its own topics); check that the login is "
                                "this agency's, or ask the operator to check the ACLs (`puente acls plan`)")
    return ConfigError(f"topic {topic} does not exist; create the topics with `puente topics apply`")


async def read_ledger(conn: KafkaConnection, topic: str, codec: AlertCodec, agency: str,
                      lookup: Callable[[str, str], SecretBytes | None], origin: Originator | None) -> Ledger:
    """The ledger of ``agency``'s ingress topic, read from its beginning: only the records that prove its origin
    with ``lookup``, which answers with the agency's own keys (``adapters.lifecycle.own_mac_lookup``), and name an
    originator the broker may take for their id (``origin``, the agency's; None: any), in the partition their key
    belongs in, with a version and lifecycle the broker may take (``admissible``). A copy of the agency's the
    keystore cannot check (``unverifiable``) is noted apart (``Ledger.unchecked``): it only spares a pure re-run."""
    ledger = Ledger()
    partitions = [0]  # the topic's, given by ``scan`` before any record (``sized``)

    def keep(rec: Record) -> None:
        decoded = _decoded(codec, rec.key, rec.value)
        if decoded is None:
            return  # the broker dead-letters it: never published
        entry, alert, taken = decoded
        if partitions[0] < 1 or rec.partition != key_partition(rec.key or b"", partitions[0]):
            ledger.misrouted += 1  # the broker dead-letters it (``misrouted``): it keeps no state there
            return
        if not proves(rec, alert, agency, lookup):
            ledger.unverified += 1
            # Whatever originator it names: the broker may take a unit's copy this side would refuse (``may_take``).
            # Not one it refuses for its version or lifecycle whatever key it holds: that copy was never taken.
            if taken and (key_id := unverifiable(rec, alert, agency, lookup)) is not None:
                ledger.unchecked(entry, key_id)
        elif not taken:
            ledger.invalid += 1  # dead-lettered by the broker in every state: not a version, a recall nor a conflict
        elif origin is not None and not origin.may_take(entry.alert_id, alert["markings"]["originator"],
                                                         is_recall(alert)):  # a recall's names, reason or not
            ledger.refused += 1
        else:
            ledger.add(*entry)

    def sized(count: int) -> None:
        partitions[0] = count

    await scan(conn, topic, keep, sized)
    return ledger
