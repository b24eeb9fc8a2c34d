"""The per-alert pipeline: authenticate, decode, check, decide, redact, encrypt. Pure; no Kafka.

``Pipeline.process`` turns one ingress record into an :class:`Outcome`: the feed
records to write, its audit entry (the alert's decisions for every partner, or its dead
letter), and, for bad input, the dead-letter headers.
It never raises for bad input and never logs payloads; the worker does the I/O.

Fail closed at every step: a record that does not prove its agency, does not
decode, names another agency, reuses an alert id, reached Kafka too long after it was
published (beyond the replay window, where alert ids are no longer remembered), fails
a sanity check, or is about an event so old that a lifecycle state of its alert may have aged out
while none is held (``Pipeline._forgettable``: it may have been recalled for good; a first version
too, since one republished would otherwise go out again as new) is dead-lettered. Nothing
is sent in clear: an alert the policy delivers to a partner without a sealer raises
``MissingDeliveryKey`` (configuration, not input), so the worker stops before committing it,
rather than record a WITHHOLD that would be final; so does a key the origin check needs that stopped
loading (``KeyUnusable``, from the broker's own key-agreement key), rather than dead-letter the record, and
an ``OSError`` (the machine's, never the input's: a keystore folder it cannot read) goes out the same way,
from the origin check, the policy's decision, a delivery or a recall notice alike. A
recall notice that cannot be sealed is recorded as not sent, and the partner stays a holder (``audit
recalls`` shows it; a later recall sends it again).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import orjson

from broker.lifecycle import MAX_VERSION, RECALL, AlertState, consent_given, lifecycle_problem
from broker.topology import Slots, key_partition
from puente import wire
from puente.errors import BoundsExceededError, CodecError, CryptoError, KeyUnusable, OriginError, PuenteError
from puente.strict import emoji_unglued, known_zone, prepare_unseen_mark, unseen_mark
from puente.wire import Record, iso_utc
from schemas import AlertCodec, bounds, bounds_problem

WITHHOLD = "WITHHOLD"
# How far in the future an event may claim to be before it is refused (clock skew between agencies).
MAX_FUTURE_SKEW = timedelta(hours=1)
MAX_FUTURE_SKEW_MS = int(MAX_FUTURE_SKEW.total_seconds() * 1000)
DAY_MS = 24 * 3600 * 1000
FED_LIMIT = 50_000  # delivered decisions' audit fields kept for sharing
MAX_INGRESS_RECORD = 1_048_576
"""The most bytes an ingress record's value may hold: Kafka's default max.message.bytes, so the most a producer
sends uncompressed. Anything larger arrived compressed, and is dead-lettered unread (``too-large``)."""
# A sealed view larger than this is withheld: Kafka's default record limit is 1 MiB, headers included.
MAX_FEED_RECORD = 900_000
# A dead letter's key and value together (its headers come on top, under 1 KiB): below the
# producer's 1 MiB request limit, so no ingress record can make its dead letter unsendable.
MAX_DEAD_LETTER = 900_000
MAX_DEAD_LETTER_KEY = 1_024
ORIGIN_PROVEN = frozenset({"stale", "not-avro", "unknown-schema", "corrupt", "schema-violation", "undecodable",
                           "invalid", "agency-mismatch", "originator", "key-mismatch", "misrouted", "replay",
                           "forgotten", "recalled"})
"""The dead-letter reasons given only once a record proved its origin (``Pipeline._admit``: its MAC verified for
the agency whose ingress topic it is on, over its key). A DEAD_LETTER entry of any other reason (``origin``, one
refused before the check, ``internal``, one this broker does not know) has an ``alert_id`` that is only the record's
key, which whoever could write to the topic chose: ``dead_letter_source`` says so wherever it is shown."""
# How much sooner than the lifecycle topic's retention a state is taken for possibly forgotten: clocks
# (the workers', Kafka's) and the event's allowed skew differ by less than this.
_FORGET_MARGIN = timedelta(days=1)


class DecisionLike(Protocol):
    """What the pipeline needs of a policy decision."""

    @property
    def partner(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def agreement(self) -> str | None: ...
    @property
    def rules(self) -> Sequence[str]: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def redactions(self) -> Sequence[tuple[str, str]]: ...
    @property
    def policy_version(self) -> str: ...
    @property
    def audit(self) -> dict[str, Any]:
        """The decision's audit fields (partner, decision, agreement, rules, reasons, redacted,
        policy_version). Shared between equal decisions: read, never change."""
        ...


class PolicyPort(Protocol):
    """The policy layer, as the pipeline calls it."""

    @property
    def version(self) -> str: ...
    def partners(self) -> Sequence[tuple[str, str]]:
        """(partner id, feed topic) for every partner."""
        ...
    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: datetime | None = None) -> Sequence[DecisionLike]:
        """``decide`` for each of ``partners``, in that order; with ``until``, held for every moment from ``now`` to
        it (``policies.decide``)."""
        ...
    def view(self, alert: dict[str, Any], decision: DecisionLike) -> dict[str, Any]: ...
    def notice(self, alert: dict[str, Any], version: int, reason: str | None) -> dict[str, Any]:
        """The content-free recall notice of ``alert`` as of ``version`` (``policies.recall_notice``)."""
        ...
    def reference(self, partner: str, alert_id: str) -> str:
        """The id by which ``partner`` knows ``alert_id`` (``policies.alert_reference``): what its views, recall
        notices, feed keys and headers name instead of the agency's own id. Raises only ``MissingDeliveryKey``."""
        ...
    def recall_ack_hours(self, partner: str) -> int:
        """How many hours ``partner`` has to acknowledge a recall notice under this policy: the shortest
        ``recall_ack_hours`` of its agreements, a default when none names it. Never raises. Each RECALL decision
        records it (``ack_hours``), so ``audit recalls`` judges a notice by the deadline in force when it was
        sent, not by whatever a later policy says."""
        ...


class Sealer(Protocol):
    def seal(self, plaintext: bytes, *, alert_id: str, topic: str, schema_fp: bytes, policy_version: str,
             agreement: str, now: datetime) -> bytes: ...


OriginCheck = Callable[[Sequence[tuple[str, bytes]], bytes, str], tuple[str, int]]
"""(headers, value, alert id from the record key) -> (the proven agency, its signed publication
time in Unix ms); raises OriginError."""


class FeedOut(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    partitions: int
    """The partition count the record's partition follows: the feed's when the alert was first sent to the partner
    (``AlertState.counts``)."""
    by_slot: bool = False
    """To the slot's feed partition (the slot modulo ``partitions``), not the key's (``AlertState.by_slot``)."""


@dataclass(slots=True)
class Outcome:
    """Everything one ingress record produces."""

    entry: dict[str, Any]
    """The audit entry: an ALERT with one decision per partner, or a DEAD_LETTER; never payload content."""
    feeds: list[FeedOut] = field(default_factory=list)
    dead_letter: tuple[tuple[str, bytes], ...] | None = None
    """The dead letter's headers; its key and value are the record's, or ``dead_record`` when cut."""
    dead_reason: str | None = None
    dead_record: tuple[bytes, bytes] | None = None
    """The key and value of a dead letter cut to ``MAX_DEAD_LETTER`` (see ``dead_letter_body``)."""
    seen_id: str | None = None
    decisions: list[tuple[str, str]] = field(default_factory=list)
    """(partner, outcome) of each decision, as the metrics count them: the policy's partners, or ``FORMER_PARTNER``."""
    state: AlertState | None = None
    """The alert's lifecycle state after this version, to write with the batch; None: nothing to keep."""
    by_id: frozenset[str] = frozenset()
    """The partners given the alert's own id before references (``AlertState.by_id``): named by it still."""
    by_slot: frozenset[str] = frozenset()
    """The partners fed the alert through its slot's feed partition before feeds were partitioned by key
    (``AlertState.by_slot``): fed there still."""
    counts: dict[str, int] = field(default_factory=dict)
    """Partner -> the partition count its feed records of the alert follow (``AlertState.counts``): the prior
    state's (shared, never changed in place) with each partner first fed by this record added."""
    records: int = 1
    """How many ingress records (offsets) this outcome answers for: one, or, for the record standing for a batch the
    Kafka client could not read, each of the batch's from where the reader stood (``Unreadable.records``), all
    dead-lettered by its one dead letter. The metrics count inputs by it."""


_EARLIEST_APPEND_MS = 946_684_800_000  # 2000-01-01T00:00:00Z


FORMER_PARTNER = "(not in the policy)"
"""How a holder the policy no longer names is counted (``Pipeline._orphans``): one label for all such partners."""


def seen_key(alert_id: str, version: int, recall: bool = False) -> str:
    """What the replay window remembers of a processed alert version: the id alone for a first
    version (as before versions existed), the id and the version for a later one; a recall is
    told apart, since it may carry a version already used (see ``Pipeline._admit``). Only a recall
    for good, giving its reason (``_final_recall``): one without it is a version the broker withdraws
    the alert for, remembered as any such version is, so the originator's recall at its number is no
    replay of it."""
    # A space: no alert id holds one (``_REFERENCE``), so no id's key can pass for another's version or
    # recall ("X#v2#recall" is an id the adapters have written).
    if recall:
        return f"{alert_id} v{version} recall"
    return alert_id if version == 1 else f"{alert_id} v{version}"


def _is_recall(life: Any) -> bool:
    return isinstance(life, dict) and life.get("action") == RECALL


def _first_copy(alert: dict[str, Any]) -> dict[str, Any]:
    """``alert`` as a partner that holds no version of it reads a later version: its lifecycle an UPDATE giving no
    reason and naming no partner, whatever the version did (RECLASSIFY, CONSENT, UPDATE). Holding none is what the
    alert's state says (``AlertState.holders``): never sent a version, or what it was sent pulled back since, or no
    state at all.

    The lifecycle says what this version changed against the one before it, which such a partner never held: a
    RECLASSIFY that lowered the markings to let it in, or a CONSENT that named it, would tell it the alert's marking
    history, what it was refused and why. It reads what any later version's content reads, built anew (an allow-list:
    nothing of the agency's lifecycle passes), never a lifecycle of None, which the version rules keep for version 1.
    The audit keeps the version's own action and reason for national auditors.

    Known limit: the version number is not hidden. A first copy at version 3 says that earlier versions exist, not
    what they held or did. Numbering versions per partner would change what its store judges by (``partner_store``'s
    version rule), its receipts and the recall notices that must supersede what it holds, all of which name the
    alert's own version; so the number stays the alert's."""
    return {**alert, "lifecycle": {"action": "UPDATE", "reason": None, "partners": []}}


def _final_recall(life: Any) -> bool:
    """Whether a lifecycle is a recall for good, the replay window's ``recall`` (``seen_key``): a RECALL giving its
    reason. One without it is withdrawn as a version the broker cannot admit (``Pipeline._admit``), and remembered
    as such a version is, by its id and version: the originator's own recall at that number (``puente recall``
    builds on the latest copy) must not then be refused as its replay. The worker rebuilds the window from audit
    entries by the same rule (``broker.worker._processed_ids``: action RECALL and a reason)."""
    return _is_recall(life) and life.get("reason") is not None


StateLookup = Callable[[str], AlertState | None]


class Originator(NamedTuple):
    """The originator an agency's alerts may name: ``country`` always; as agency, the publishing
    agency itself, or, for an agency relaying a foreign country's services (COMBIFRON for
    Colombia's), ``prefix`` (``COL-``) and one of its ``units`` (``COL-DIJIN``): an allow-list, so
    an agency naming no units relays none."""

    country: str
    prefix: str | None = None
    agency: str = ""
    units: frozenset[str] = frozenset()

    def names(self, originator_agency: Any, codes: bool = True) -> bool:
        if originator_agency == self.agency:
            return True
        prefix = self.prefix
        if prefix is None or not isinstance(originator_agency, str) or not originator_agency.startswith(prefix):
            return False
        # A content version names one of the configured units (COL-DIJIN), as the adapters write them: any other
        # name, even one shaped as a code, is the agency system's own text, and it would reach the audit and every
        # partner's envelope, which no agreement may redact. (``codes`` False: a recall, whose originator reaches the
        # audit only coded, of an alert perhaps published before units were named, or by a unit no longer named: a
        # withdrawal delivers nothing, and where the alert's state names its originator the recall is held to it.)
        unit = originator_agency[len(prefix):]
        return unit in self.units if codes else unit != ""

    def in_series(self, alert_id: Any, originator_agency: Any, recall: bool = False) -> bool:
        """Whether a version of ``alert_id`` naming ``originator_agency`` keeps to the units' series
        (``wire.series_unit``, the COMBIFRON adapter's rule): always for an agency naming itself, or one relaying no
        units; for an id in a unit's series, that unit only; for an id in none (published before the rule, or
        another way), only a ``recall``: nothing in the id says whose it is, so a recall is held only to the names
        the agency may give, as before the rule, and its own unit can still withdraw it."""
        if self.prefix is None or originator_agency == self.agency:
            return True
        unit = wire.series_unit(alert_id, self.agency, self.prefix)
        return recall if unit is None else unit == originator_agency

    def may_take(self, alert_id: Any, originator: Any, recall: bool) -> bool:
        """Whether the broker may take a version of ``alert_id`` naming ``originator`` (its markings' originator), as
        far as that can be told without the alert's state: ``Pipeline._admit``'s rules, the same functions. A content
        version names the agency itself or a unit it relays (``units``), of its country; a recall, any name of a
        unit's form (``names``, codes False); either keeps to the units' series (``in_series``: for an id in no
        unit's series, a content version names the agency itself). The broker holds a version to the series only
        where no state names the alert's originator, and a state it alone reads may name a unit for an id in none
        (one published before the rule): that unit's content versions are refused here though the broker would take
        them, never the reverse."""
        if not isinstance(originator, Mapping):
            return False
        name = originator.get("agency")
        if not (self.names(name, codes=False) if recall
                else originator.get("country") == self.country and self.names(name)):
            return False
        return self.in_series(alert_id, name, recall)

    @classmethod
    def of(cls, agency: str, country: str, home_country: str, units: Iterable[str] = ()) -> Originator:
        """An agency of the home country names itself; one of another country relays that country's
        services ``units``, each named ``<COUNTRY>-<unit>``."""
        if country == home_country:
            return cls(country, None, agency)
        return cls(country, f"{country}-", agency, frozenset(units))


def _no_states(alert_id: str) -> AlertState | None:
    return None


def _first_originator(alert: dict[str, Any], prior: AlertState | None, allowed: Originator | None) -> str | None:
    """The originator a later version's state records: the prior state's (None there stays None: a later
    version's originator is no proof of the first's); with no prior state (no version reached anyone, so
    none was written), this version's, when the agency may name it (``allowed``: a content version's was
    checked so; a recall's only for its form, and a unit no longer configured, or one the agency system made up,
    is recorded as none). Either way it passed ``Pipeline._admit``'s series check, a recall's too: with no state,
    no unit's name is recorded for an alert in another unit's series."""
    if prior is not None:
        return prior.originator
    name = alert["markings"]["originator"]["agency"]
    if allowed is None or not allowed.names(name):
        return None
    return name if isinstance(name, str) and _AUDIT_CODE.fullmatch(name) else None


class Pipeline:
    """Applies the policies to one ingress record at a time."""

    def __init__(
        self,
        policy: PolicyPort,
        codec: AlertCodec,
        sealers: dict[str, Sealer],
        origin: OriginCheck,
        slots: Slots,
        replay_window_days: int = 7,
        *,
        originators: Mapping[str, Originator] | None = None,
        lifecycle_retention_days: int | None = None,
        classifications: Collection[str] = (),
        areas: Collection[str] = (),
    ) -> None:
        """``originators``: per agency, the originator its alerts may name (``Originator``); an
        agency without an entry (all of them when None) has every alert dead-lettered.
        ``lifecycle_retention_days``: how long the lifecycle topic keeps a state
        (``topology.lifecycle_retention_days``); None: the replay window, the least it ever keeps one,
        so a pipeline told nothing takes a state for forgotten sooner, never later (``_forgettable``).
        ``classifications``: the policy's classification scale, the only values an audit entry records as its
        classification (any other is the agency's text; a recall's markings are checked for nothing else).
        ``areas``: the policy's border sectors (its outlines of that kind), the only ones an audit entry records as its
        sector; none given, every sector is recorded as ``(not an area)``, never as the agency wrote it. Whether an
        alert naming another sector or province reaches a partner is the policy's to say (rule ``unknown.area``)."""
        self.policy = policy
        self._levels = frozenset(classifications)
        self._areas = frozenset(areas or ())
        self.originators = dict(originators or {})
        self.codec = codec
        self.sealers = sealers
        self.origin = origin
        self.slots = slots
        self.replay_window_ms = replay_window_days * DAY_MS
        self.lifecycle_retention = timedelta(days=lifecycle_retention_days or replay_window_days)
        self._half_retention = self.lifecycle_retention / 2  # ``_forgettable``'s margin for an alert withheld from all
        # The latest time Kafka appended any record this pipeline admitted: Kafka's present is at least that, so a
        # worker clock behind it is behind Kafka's for every record, a backlog's too (``process``).
        self._kafka_ms = 0
        self._partners = list(policy.partners())
        self._partner_ids = [p for p, _ in self._partners]
        self._named = frozenset(self._partner_ids)
        self._schema_hex = codec.fingerprint.hex().encode()
        self._at: tuple[datetime | None, str] = (None, "")
        self._fed: dict[int, tuple[dict[str, Any], str, dict[str, Any]]] = {}
        self.feed_counts: dict[str, int] = {}
        """Feed topic -> how many partitions it has now, as the worker read it from Kafka (``BrokerWorker``):
        a first record of an alert to a partner follows it (``_feed_count``)."""
        self._recounted: frozenset[str] = frozenset()  # feeds read anew for the record in hand (``process_recounted``)
        prepare_unseen_mark()  # every record's text is scanned (``hidden_char``): built now, not in a batch

    @property
    def uncounted_feeds(self) -> list[str]:
        """The partners' feed topics whose partition count ``feed_counts`` lacks: the worker reads them from Kafka
        before its first batch."""
        return sorted({topic for _, topic in self._partners} - self.feed_counts.keys())

    def process(self, record: Record, seen: Container[str], now: datetime,
                states: StateLookup = _no_states) -> Outcome:
        """The outcome of one ingress record. ``seen`` holds the alert versions this slot processed
        within the window (``seen_key``); ``states`` gives an alert's lifecycle state as of the
        records before this one (committed, or earlier in the batch).

        ``record.timestamp_ms`` must be the time Kafka appended the record (ingress topics use
        LogAppendTime), which a replayer cannot choose.

        Raises only ``KeyUnusable``: ``MissingDeliveryKey`` when the policy delivers to a partner this pipeline has
        no sealer for, ``FeedCountUnknown`` when it would write to a feed whose partition count it was not given,
        ``FeedCountStale`` when a state records a count above it (read it anew and ``process_recounted``), or the
        origin check's own when a key it needs stopped loading; or ``OSError``, the machine's (a key read from a
        keystore it could not read), never the record's: the caller must not commit the record (see
        ``MissingDeliveryKey``).
        """
        where = f"{record.topic}:{record.partition}:{record.offset}"
        key = (record.key or b"").decode("utf-8", "replace")
        try:
            alert, prior, invalid = self._admit(record, key, seen, now, states)
        except _Reject as rej:
            return self._dead(record, where, key, rej.reason, rej.detail, now, rej.version)
        except (KeyUnusable, OSError):
            # Configuration, or the machine's (a keystore folder that cannot be listed, no file descriptor left),
            # never the input's, which is bytes in memory: not a dead letter, which would be final (MissingDeliveryKey)
            raise
        except Exception as exc:  # noqa: BLE001 - one record must never stop a worker; it is dead-lettered
            return self._dead(record, where, key, "internal", f"the record could not be checked "
                              f"({type(exc).__name__}); report it to Puente's maintainers", now)
        if record.timestamp_ms > self._kafka_ms:  # admitted: no more than MAX_FUTURE_SKEW ahead of ``now``
            self._kafka_ms = record.timestamp_ms
        m = alert["markings"]
        decisions: list[dict[str, Any]] = []
        version: int = alert.get("version", 1)
        life = alert.get("lifecycle")
        recall = _is_recall(life)
        unchecked = recall or invalid is not None  # content no rule passed: codes only into the audit
        # The alert's type as first published (``AlertState.alert_type``), where its state records it: what the audit
        # and every recall notice name, never a type a version refused (or a recall's unchecked copy) gave.
        kind = alert["alert_type"] if prior is None or prior.alert_type is None else prior.alert_type
        told = alert if kind == alert["alert_type"] else {**alert, "alert_type": kind}
        out = Outcome(entry={
            "kind": "ALERT",
            "alert_id": alert["alert_id"],
            "alert_type": kind,
            # Marking values are the agency's strings: bounded, so no input can swell an audit block. A recall's
            # markings are whatever copy it was built on, checked for nothing (``_admit``): the audit takes the
            # alert's first originator from its state, the country the agency's alerts name, and codes only.
            "originator": (self._recall_originator(alert["agency"], m["originator"]["agency"], prior) if recall
                           else _coded(m["originator"]["agency"])),
            "originator_country": (self._country(alert["agency"], m["originator"]["country"]) if unchecked
                                   else _bounded(m["originator"]["country"])),
            # A level of the policy's scale, whatever the version: any other value, a code in form as it may be,
            # is the agency's text (a name, say), and the decisions say it is not a level.
            "classification": m["classification"] if m["classification"] in self._levels else "(not a level)",
            # The border sector (a coarse area code, no coordinates): the follow-up indicators count by it.
            "sector": _sector(alert, self._areas),
            "ingress": where,
            "ingress_ms": record.timestamp_ms,
            "at": self._iso(now),
            "decisions": decisions,
        }, seen_id=seen_key(alert["alert_id"], version, _final_recall(life)))
        if prior is not None:
            out.by_id, out.by_slot, out.counts = prior.by_id, prior.by_slot, prior.counts
        if version > 1 or prior is not None:
            out.entry["version"] = version
            if life is not None:
                out.entry["action"] = life["action"]
                if life.get("reason") is not None:
                    out.entry["reason"] = life["reason"]
            if prior is not None:
                out.entry["previous_version"] = prior.version
        if life is not None and life["action"] == RECALL and invalid is None:  # one without its reason: below
            # The notice's version must be above any a partner holds, or its store would take it
            # for an old one; a recall may reuse a version (see _admit).
            # A recall again (the alert already recalled) sends its notices at its own version.
            notice_version = version if prior is None or prior.recalled else max(version, prior.version + 1)
            self._recall(told, notice_version, life.get("reason"), prior, now, out)
            return out
        verdicts: Sequence[DecisionLike]
        if invalid is not None:  # a later version no rule passed: withheld from everyone, pulled back from holders
            verdicts = [_Invalid(partner, self.policy.version, version, invalid) for partner in self._partner_ids]
        else:
            try:
                # The present is between the worker's clock and the latest time Kafka appended a record this
                # pipeline admitted (Kafka's present is at least that), and the decision holds for every moment
                # between them (``policies.decide``): a slow worker clock never delivers past an agreement's end or
                # an alert's expiry, not even a backlog's older records, and a fast one never under an agreement
                # before its start (a record Kafka appended before it began is decided as of then).
                latest = self._kafka_ms
                kafka = datetime.fromtimestamp(latest / 1000, UTC)
                earlier, later = (now, kafka) if kafka > now else (kafka, now)
                verdicts = self.policy.decide_all(alert, self._partner_ids, earlier, later if later > earlier else None)
            except OSError:
                raise  # the machine's, never the alert's: not a withhold from everyone, which is final (process)
            except Exception as exc:  # noqa: BLE001 - the policy must not stop a worker: withhold from everyone
                verdicts = [_Undecided(partner, self.policy.version, exc) for partner in self._partner_ids]
        if prior is None and version == 1:  # the common case: a first publication
            holders: dict[str, int] = {}
            for (partner, topic), decision in zip(self._partners, verdicts, strict=True):
                routed = self._route(alert, decision, partner, topic, now, out)
                decisions.append(routed)
                if routed["decision"] != WITHHOLD:
                    holders[partner] = version
            if holders or self._forgettable(alert, now, self._half_retention):
                # Withheld from everyone, an alert about an old event is remembered all the same: its next
                # version, if it comes late, must find a state, or ``_admit`` takes it for one forgotten.
                out.state = AlertState(version, holders, originator=m["originator"]["agency"], by_id=out.by_id,
                                       by_slot=out.by_slot, counts=out.counts, alert_type=kind,
                                       consent=frozenset(m["originator_consent"]))
            return out
        held = prior.holders if prior is not None else {}
        holders = {}
        for (partner, topic), decision in zip(self._partners, verdicts, strict=True):
            was = held.get(partner)
            if decision.outcome == WITHHOLD and was is not None:
                # No longer entitled: what it holds is pulled back.
                reasons = [*decision.reasons, f"held version {was}, which this version no longer lets it keep"]
                routed = self._notice(told, version, None, partner, topic, decision.policy_version, was,
                                      reasons, now, out, ("lifecycle.recall", "alert.invalid") if invalid else None)
                if routed.get("sent") is False:
                    holders[partner] = was  # the notice could not be sealed: it still holds it, and the audit says so
            else:
                # A partner that holds no version of it (the state names none) reads no lifecycle history
                # (``_first_copy``); one that holds a version reads what this version did to it.
                routed = self._route(alert if was is not None else _first_copy(alert), decision, partner, topic,
                                     now, out)
                if routed["decision"] != WITHHOLD:
                    holders[partner] = version
                    if was is not None:
                        routed = {**routed, "supersedes": was}
                elif was is not None:
                    # Entitled, but the new version could not be sent: the old one must not stay,
                    # since this version may correct or restrict it. Pulled back instead, and that recall is
                    # the partner's one decision for this input, its reasons saying why the version did not go.
                    out.decisions.pop()  # the withhold ``_route`` just counted for this partner
                    routed = self._notice(told, version, None, partner, topic, decision.policy_version, was,
                                          [*routed["reasons"], f"held version {was}; version {version} could not be "
                                           "delivered, so what it holds is pulled back"], now, out)
                    if routed.get("sent") is False:
                        holders[partner] = was
            decisions.append(routed)
        if invalid is None:  # an invalid one consents to nothing
            self._consented(*consent_given(alert, prior), version, decisions, out)
        self._orphans(held, version, holders, out)
        first = _first_originator(alert, prior, self.originators.get(alert["agency"]))
        # A state without a type (written before it was recorded) takes this version's once one is admitted: no proof
        # of the first's, but it holds every later version to one type from here on.
        # An invalid version consents to nothing: the consent recorded stays the state's.
        out.state = AlertState(version, holders, originator=first, by_id=out.by_id, by_slot=out.by_slot,
                               counts=out.counts, alert_type=kind if invalid is None or prior is None
                               else prior.alert_type,
                               consent=(frozenset(m["originator_consent"]) if invalid is None
                                        else None if prior is None else prior.consent))
        return out

    def _consented(self, named: list[Any], added: list[Any], version: int, decisions: list[dict[str, Any]],
                   out: Outcome) -> None:
        """Record whom a version consents to (``lifecycle.consent_given``): consent is given per alert and per partner,
        and is itself on the record, whatever the decision (a partner consented to may still be withheld for its
        clearance or its agreement, and its decision's reasons then said nothing of the consent). The entry lists the
        partners a CONSENT names (``consent``) and those any version adds to ``markings.originator_consent`` besides
        (``consent_added``), apart: a partner's feed reads a CONSENT as one only when it names that partner, and the
        index scopes on ``consent`` alone (``audit_index._scope``). An id the policy does not know is listed as such,
        never its text; each partner consented to has it in its decision's reasons. Both are for national auditors: a
        partner's auditor reads neither, as it reads no reason of a decision and nothing of whom else the originator
        consented to."""
        ids = set(self._partner_ids)
        for key, partners in (("consent", named), ("consent_added", added)):
            if partners:
                known = sorted(set(partners) & ids)
                out.entry[key] = known + (["(not a partner)"] if set(partners) - ids else [])
        given = set(named) | set(added)
        if not given:
            return
        for i, decision in enumerate(decisions):
            if decision.get("partner") in given:
                decisions[i] = {**decision, "reasons": [*decision.get("reasons", ()), f"the originator consented to "
                                                        f"release it to {decision['partner']} (version {version})"]}

    def _orphans(self, held: dict[str, int], version: int, holders: dict[str, int], out: Outcome) -> None:
        """Holders the policy no longer names: no key to seal a notice with, so they still hold it,
        and the audit says so for every version until the policy names them again (under the partner's
        reference, as its later notices: ``audit recalls`` takes those as carrying on the failed one).
        Counted (``Outcome.decisions``, the metrics' partner label) as ``FORMER_PARTNER``, not by name: the names
        come from the lifecycle states, and only the policy's partners may make a metric's labels."""
        for partner in sorted(set(held) - set(self._partner_ids)):
            self._reference(partner, out.entry["alert_id"], out)
            holders[partner] = held[partner]
            out.decisions.append((FORMER_PARTNER, "RECALL_FAILED"))
            out.entry["decisions"].append({
                "partner": partner, "decision": RECALL, "agreement": None, "rules": ["lifecycle.recall"],
                "reasons": [f"held version {held[partner]}; version {version} cannot reach it: the policy no longer "
                            "names this partner, so there is no key to seal a recall notice with"],
                "redacted": [], "policy_version": self.policy.version, "recalls": held[partner],
                "notice_version": version, "ack_hours": self.policy.recall_ack_hours(partner), "sent": False})

    def _recall(self, alert: dict[str, Any], version: int, reason: str | None, prior: AlertState | None,
                now: datetime, out: Outcome) -> None:
        """A recall: a notice to every partner that holds the alert; nothing to anyone else."""
        held = prior.holders if prior is not None else {}
        holders: dict[str, int] = {}
        why = f"recalled by its originator ({reason})"  # a recall without its reason is withdrawn as invalid instead
        for partner, topic in self._partners:
            was = held.get(partner)
            if was is None:
                out.entry["decisions"].append({
                    "partner": partner, "decision": WITHHOLD, "agreement": None, "rules": ["lifecycle.recall"],
                    "reasons": [f"{why}; this partner holds no version of it that the broker knows of"],
                    "redacted": [], "policy_version": self.policy.version})
                out.decisions.append((partner, WITHHOLD))
                continue
            routed = self._notice(alert, version, reason, partner, topic, self.policy.version, was,
                                  [f"{why}; it held version {was}"], now, out)
            if routed.get("sent") is False:
                holders[partner] = was
            out.entry["decisions"].append(routed)
        self._orphans(held, version, holders, out)
        first = _first_originator(alert, prior, self.originators.get(alert["agency"]))
        # A recall's type is its copy's, unchecked: only a state's is kept.
        out.state = AlertState(version, holders, recalled=True, originator=first, by_id=out.by_id,
                               by_slot=out.by_slot, counts=out.counts,
                               alert_type=None if prior is None else prior.alert_type,
                               consent=None if prior is None else prior.consent)

    def _notice(self, alert: dict[str, Any], version: int, reason: str | None, partner: str, topic: str,
                policy_version: str, was: int, reasons: list[str], now: datetime, out: Outcome,
                rules: Sequence[str] | None = None) -> dict[str, Any]:
        """Send ``partner`` the recall notice of what it holds, at ``version``; its audit entry.

        The entry names the notice's version (``notice_version``), which the partner's RECALLED receipt
        names back: for an officer's recall it may be above the entry's own ``version`` (see ``process``),
        and ``audit recalls`` tells a partner's notices apart and matches its acknowledgements by it. It also
        names the hours the partner has to acknowledge the notice (``ack_hours``, the policy's
        ``recall_ack_hours`` now): a later policy may change them, and the deadline is the one in force when the
        notice was sent."""
        entry: dict[str, Any] = {"partner": partner, "decision": RECALL, "agreement": None,
                                 "rules": list(rules or ("lifecycle.recall",)), "reasons": reasons, "redacted": [],
                                 "policy_version": policy_version, "recalls": was, "notice_version": version,
                                 "ack_hours": self.policy.recall_ack_hours(partner)}
        ref = self._reference(partner, alert["alert_id"], out)  # recorded for a notice that fails too
        count = self._feed_count(partner, topic, out)  # FeedCountUnknown: configuration, not a failed notice
        try:
            sealer = self.sealers.get(partner)
            if sealer is None:
                raise CryptoError(f"no encryption key is configured for partner {partner}")
            notice = {**self.policy.notice(alert, version, reason), "alert_id": ref}
            value = sealer.seal(self.codec.encode(notice), alert_id=ref, topic=topic,
                                schema_fp=self.codec.fingerprint, policy_version=policy_version, agreement="",
                                now=now)
        except OSError:
            raise  # the machine's: the worker stops uncommitted and the restart sends the notice (process)
        except Exception as exc:  # noqa: BLE001 - the partner keeps its copy; the audit must say so
            detail = f": {str(exc)[:300]}" if isinstance(exc, (CryptoError, CodecError)) else ""
            out.decisions.append((partner, "RECALL_FAILED"))
            return {**entry, "sent": False,
                    "reasons": [*reasons, f"the recall notice could not be sent: {type(exc).__name__}{detail}"]}
        out.feeds.append(FeedOut(topic, ref.encode(), value, (
            (wire.ALERT_ID, ref.encode()),
            (wire.SCHEMA, self._schema_hex),
            (wire.POLICY, policy_version.encode()),
            (wire.DECISION, RECALL.encode()),
            (wire.AGREEMENT, b""),
        ), count, partner in out.by_slot))
        self._counted(partner, count, out)
        out.decisions.append((partner, RECALL))
        return {**entry, "feed": topic}

    # ---- admission: everything that dead-letters ----------------------------------------
    def _admit(self, record: Record, key: str, seen: Container[str], now: datetime,
               states: StateLookup) -> tuple[dict[str, Any], AlertState | None, str | None]:
        """The decoded alert, its state as of the records before it, and, for a later version of an alert some
        partner holds that fails a content rule (``_sanity``, ``schemas.bounds``, a hidden character), a rule of
        its lifecycle (``lifecycle_problem``: no action, a consent to partners its markings do not name, a recall
        without its reason) or names another type than the alert's, why: its originator changed the alert and no
        one can tell how (or, for the recall, withdrew it without saying why, which is no final recall), so
        ``process`` withholds it from everyone and pulls back what partners hold (dead-lettered, as any other
        record failing a rule, they would keep the earlier version, perhaps the one this version restricts). Such a
        version is dead-lettered alone only when its number is no later content version's (out of range, the last,
        not above the state's), or the alert has no state, no holder, or was recalled; one of another type then
        takes the reason a version of the alert's own type would (``recalled``, ``replay``, ``stale``), else
        ``invalid``. ``_Reject`` for every record to be dead-lettered."""
        agency = self.slots.agency_of(record.topic)
        if agency is None:
            raise _Reject("unknown-topic", "record on a topic that is not an ingress topic")
        if record.unreadable is not None:
            # A batch Kafka took but its client cannot read (``broker.kafka.unreadable``): refused here, so its
            # offsets end recorded and the slot reads on, rather than every fetch of the partition failing on it.
            raise _Reject("unreadable", f"the broker does not read this record batch ({record.unreadable}): a "
                                        "producer other than Puente's wrote it (a header key that is not UTF-8, or a "
                                        "compressed batch: Puente's producers never compress, and no batch is inflated "
                                        "unbounded); none of its alerts was decided: have the agency publish them "
                                        "again with Puente's adapters")
        if not record.value:
            # A tombstone (no value) or an empty record: nothing to check, decode or decide. Said as what it is,
            # before the origin check, which would take its missing bytes for a fault of Puente's own.
            raise _Reject("empty", "the record holds no value (a tombstone or an empty record): not an alert")
        if len(record.value) > MAX_INGRESS_RECORD:
            # Before anything reads it: Kafka bounds a compressed batch, not what it holds, so a small batch can
            # carry hundreds of megabytes that would take every slot of this process minutes to check.
            raise _Reject("too-large", f"the record holds {len(record.value):,} bytes, over the "
                                       f"{MAX_INGRESS_RECORD:,} an alert may take (no producer sends more "
                                       "uncompressed); nothing of it was read")
        try:
            proven, published_ms = self.origin(record.headers, record.value, key)
        except OriginError as exc:
            raise _Reject("origin", str(exc)) from exc
        # The MAC proves who wrote the record, not that its key is an id of theirs: a dead letter filed under another
        # agency's id would read, in that alert's timeline, as that agency's record. So a key outside the agency's
        # ids is refused before the proof counts, and its entry shown as naming an id nobody proved
        # (``dead_letter_source``).
        if proven != agency or not key.startswith(f"{agency}:"):
            raise _Reject("origin", f"record proves agency {proven} but arrived on {agency}'s ingress topic"
                          if proven != agency else f"the record's key is no alert id of {agency} (its ids begin "
                          f"'{agency}:'), though {agency} wrote it: an agency files records under its own ids only")
        # Its origin is proven from here on: every reason below is in ORIGIN_PROVEN, and none above is.
        if record.append_time is False:
            # Stamped by its producer: checked on every record, since the topic's setting may have been changed
            # while the broker ran, and records appended meanwhile keep the times their producers chose.
            raise _Reject("stale", "the record's Kafka time is its producer's (CreateTime), not an append time: its "
                                   "age cannot be checked (an ingress topic must use "
                                   "message.timestamp.type=LogAppendTime; `puente topics apply`)")
        if record.timestamp_ms < _EARLIEST_APPEND_MS:
            # Kafka's append time (LogAppendTime) is never that early: a producer's own time, on a topic left on
            # CreateTime, would set the age check (and the replay window) to whatever it chose.
            raise _Reject("stale", "the record's Kafka time is before 2000: not an append time (an ingress topic "
                                   "must use message.timestamp.type=LogAppendTime; `puente topics apply`)")
        if record.timestamp_ms > now.timestamp() * 1000 + MAX_FUTURE_SKEW_MS:
            # Nor is one ahead of this worker's clock: it would set the replay window (and the slot's audit head,
            # which a later load then refuses as a block no append time explains) days ahead.
            raise _Reject("stale", "the record's Kafka time is more than an hour ahead of this worker's clock: not "
                                   "an append time (check the clocks, and message.timestamp.type=LogAppendTime)")
        age_ms = record.timestamp_ms - published_ms
        if age_ms > self.replay_window_ms:
            raise _Reject("stale", f"record reached Kafka {age_ms // 3_600_000} h after it was published, beyond "
                                   f"the {self.replay_window_ms // DAY_MS}-day replay window; publish it again")
        if -age_ms > MAX_FUTURE_SKEW_MS:
            raise _Reject("stale", "record claims a publication time ahead of Kafka's clock")
        over: str | None = None  # an array past its bound (``schemas.bounds``): a content problem, as below
        emptied: tuple[str, ...] = ()
        try:
            # Its text measured too (``schemas.bounds``), as the native decoder reads it: ``content_problem``'s
            # first check, and whether its text is plain ASCII, in which nothing can hide (``hidden_char``).
            alert, oversized, plain = self.codec.decode_bounded(record.value)
        except BoundsExceededError as exc:
            # The codec built no entry past the bound, and gives the rest of the alert (that array empty): its id,
            # version and lifecycle still say which alert this version changes, and whom to pull it back from.
            alert, over, emptied = exc.alert, str(exc), exc.emptied
            oversized, plain = None, False
        except CodecError as exc:
            raise _Reject(_codec_reason(exc), str(exc)) from exc
        # A recall's content is never used: its notices carry its id, type, version and lifecycle, and its audit entry
        # takes its markings from the state or coded (``process``). Only its id is checked, so a recall built on any
        # copy of the alert (``puente recall`` takes the latest on the topic, one dead-lettered too) is taken, and
        # one of an alert published before the code rules below (``_sanity``, ``Originator.names``) too. Its
        # originator is still held to the first version's (below): one unit may not recall another's alert.
        recall = _is_recall(alert.get("lifecycle"))
        content = not recall
        final = _final_recall(alert.get("lifecycle"))  # how the replay window knows it (``seen_key``)
        # A content rule broken (``content_problem``): too much held, a hidden character, an unsound value. A
        # recall's content is neither scanned nor viewed: only its id, held to its length before it is read.
        unsound = (over or oversized or _bounded_content_problem(alert, now, plain)) if content else None
        if not content:
            if len(alert["alert_id"]) > bounds.ALERT_ID:
                raise _Reject("invalid", f"the alert id has {len(alert['alert_id']):,} characters; at most "
                                         f"{bounds.ALERT_ID} are accepted")
            if (char := hidden_char({"alert_id": alert["alert_id"]})) is not None:
                raise _Reject("invalid", _hidden(char))
        if alert["agency"] != agency:
            named = alert["agency"] if alert["agency"] in self.slots.agencies else "another agency"
            raise _Reject("agency-mismatch", f"alert names {named} as its agency on {agency}'s topic")
        problem = self._originator_problem(agency, alert["markings"]["originator"]) if content else None
        if problem:
            raise _Reject("originator", problem)
        if recall and not self._may_name(agency, alert["markings"]["originator"]["agency"]):
            # Where the alert's state names its first originator, the recall is held to that (below); where it
            # cannot (none reached anyone, or a state from before originators were kept), to those the agency may
            # name at all, and to the id's series (below): one foreign unit's, or another country's service, must
            # not withdraw an alert.
            raise _Reject("originator", f"a recall of {agency} must name {agency} (or the unit it relays) as "
                                        "originator agency; this one names another")
        if alert["alert_id"] != key:
            raise _Reject("key-mismatch", "the record key is not the alert id (replays could not be detected)")
        placed = key_partition(record.key or b"", self.slots.partitions)
        if record.partition != placed:
            # Replays and lifecycle state are kept per partition (per slot): a version written to
            # another partition than its key's would meet neither.
            raise _Reject("misrouted", f"the record is in partition {record.partition} but its key belongs in "
                                       f"partition {placed}; publish with Kafka's default partitioner")
        problem = unsound if content else _id_problem(alert)
        structural = lifecycle_problem(alert, emptied)  # its version and lifecycle disagree (a recall says no reason)
        alert_id, version = alert["alert_id"], alert.get("version", 1)
        prior = states(alert_id)
        # Its type says which rules of every agreement apply, which payload it carries, and what partners were told
        # it is: a content version of another is no update of the alert the partners hold, and never admitted.
        retyped = (content and prior is not None and prior.alert_type is not None
                   and alert["alert_type"] != prior.alert_type)
        named = alert["markings"]["originator"]["agency"]
        # The originator rules (below): a version one fails is no version of the alert's own originator.
        off_series = ((prior is None or prior.originator is None)
                      and not (content and prior is not None and prior.recalled)
                      and not self._in_series(agency, alert_id, named, recall))
        other_originator = prior is not None and prior.originator is not None and named != prior.originator
        invalid: str | None = None
        if problem or structural or retyped:
            # A version the originator numbered above what partners hold, of an alert not recalled, changed the
            # alert whatever it broke (a rule of its content, or of its lifecycle: no action, a consent to partners
            # its markings do not name; another type): withdrawn from its holders (``process``), or they would keep
            # the version it may correct or restrict. A recall without its reason too (its id sound): its originator
            # wants the alert withdrawn, but no reason makes that final (``lifecycle_problem``), so it is withdrawn
            # as the broker withdraws a version it cannot admit. Only where that number cannot be placed (out of
            # range, the last kept for a recall, not above the state's) or no one holds the alert is it
            # dead-lettered alone.
            placeable = (prior is not None and bool(prior.holders) and not prior.recalled and type(version) is int
                         and prior.version < version < MAX_VERSION and (content or not problem))
            if problem or structural or placeable:
                broken = [p for p in (problem, structural) if p]
                if retyped:
                    broken.append(_retyped(version, prior))
                invalid = "; ".join(broken)
                if (content or not problem) and seen_key(alert_id, version, final) in seen:
                    # Processed already (a broken version withdraws the alert once): a replay, as any other's copy. A
                    # recall without its reason is known as a content version is (``_final_recall``). What this copy
                    # breaks is said too: a sender resending a broken record learns what to fix.
                    raise _Reject("replay", _replayed(version, invalid))
                if not placeable:
                    # Remembered, where it is a version the alert's own originator numbered (``_remembered``): the
                    # same bytes again within the window, once some partner holds the alert, would withdraw it.
                    taken = _remembered(alert, version) if not (off_series or other_originator) else None
                    raise _Reject("invalid", invalid + _taken_note(taken, prior), taken)
            # Else retyped alone, with nothing to withdraw: refused below, where a recalled alert, a replay or a
            # stale version is first said to be one (as a copy of its own type would be), else for its type.
        if off_series:
            # A relayed unit numbers its messages in its own series (``COMBIFRON:COL-ARC-...``): without this, one
            # unit could publish under another's id a version the broker takes as the first it knows (the first
            # reached no one, so no state holds its originator), and the other's own versions were then refused.
            # A recall too, of an id in a unit's series: one unit's recall of another's alert would pull it back
            # from a state that names no originator, or, with no state, be kept for good as the recalled state
            # naming that unit. An id in no unit's series says nothing of whose it is: its recall is held only to
            # the names the agency may give (above), as before this rule, so a legacy alert's own unit can still
            # withdraw it (and, where no state names its originator, so can another unit of the agency).
            # Where the state names the originator, that holds every version to it (below), and an alert delivered
            # off the series (published before this rule, or another way) can still be updated and recalled.
            raise _Reject("originator", f"an alert id of {agency} relaying a unit must start with {agency}:<unit>- "
                                        "for the unit the alert names as originator agency; this one does not")
        # A recall again at the last version reuses it (there is no higher one): its id was seen.
        again_at_last = (recall and version == MAX_VERSION and prior is not None and prior.recalled
                         and prior.version == MAX_VERSION and self._reachable(prior))
        if not again_at_last and seen_key(alert_id, version, final) in seen:
            raise _Reject("replay", _replayed(version, None))
        if prior is None and not recall and self._forgettable(alert, now, _FORGET_MARGIN):
            # A first version too: one republished after its alert's state aged out (recalled for good, say) would
            # otherwise go to every partner again as new.
            days = self.lifecycle_retention.days
            raise _Reject("forgotten", f"version {version} of an alert id the broker holds no state for, about an "
                                       f"event older than the {days} days the lifecycle topic keeps a state: its "
                                       "state (who holds it, whether it was recalled for good) may have aged out, "
                                       "so it cannot be told from an alert that never reached anyone; an event "
                                       "this old is not shared (a new alert about it is refused the same way)")
        if prior is not None:
            if other_originator:
                # An agency relaying several foreign units may name any of them: one unit's version must not
                # update, re-mark or recall another's alert.
                raise _Reject("originator", f"this alert id's first version names originator {prior.originator}; "
                                            f"version {version} names another, and only an alert's originator may "
                                            "update, re-mark or recall it (check the message's id and entity)")
            if prior.recalled:
                # A recall again is taken only while some partner still holds the alert (its notice could not be
                # sent): it sends the notices again, at its own version. That version may equal the state's: a
                # recall that reused a version raised the state one above the agency's count (``process``), and
                # the agency's next recall (``puente recall``: its latest on the topic, plus one) lands on it.
                # Only the holders left are sent a notice, and none of them got one at that version (theirs were
                # the ones not sent); a content version is refused whatever its number, so nothing comes back.
                if not (recall and self._reachable(prior) and version >= prior.version):
                    # Holders the policy no longer names only: no notice can reach them (no key to seal it with)
                    # until it names them again, and each recall again would add an audit entry saying so, without
                    # bound at the last version, which any number of them may reuse.
                    left = (" (its holders left are partners the policy no longer names: none can be sent a notice "
                            "until the policy names them again)" if recall and prior.holders else "")
                    raise _Reject("recalled", f"this alert id was recalled at version {prior.version}, for good"
                                              f"{left}; publish a new alert instead")
                return alert, prior, None
            if recall and not prior.recalled:
                # A recall carries no content, so its version need not be new: an officer's recall
                # built on the latest version the agency still has on its topic must not be lost.
                if prior.version >= MAX_VERSION:  # its notice would go above what any reader takes
                    raise _Reject("invalid", f"this alert id is at version {prior.version:,}: no notice can go "
                                             "above it")
                return alert, prior, invalid  # one without its reason: withdrawn, not for good (above)
            if version == prior.version:
                raise _Reject("replay", f"this alert id's version {version} was already processed")
            if version < prior.version:
                raise _Reject("stale", f"version {version} of this alert id is older than version "
                                       f"{prior.version}, already processed")
            if retyped and invalid is None:  # nothing to withdraw (no holder), and no reason above to refuse it
                taken = _remembered(alert, version)  # remembered, as any broken version
                raise _Reject("invalid", _retyped(version, prior) + _taken_note(taken, prior), taken)
        return alert, prior, invalid

    def _forgettable(self, alert: dict[str, Any], now: datetime, margin: timedelta) -> bool:
        """Whether a state written for ``alert`` may have aged out of the lifecycle topic by ``now``,
        give or take ``margin``: its event is older than the topic's retention, less ``margin``.

        Why this holds: the lifecycle topic is ``compact,delete``, and Kafka deletes a record only once
        it is older than the retention; every state of an alert is written when one of its versions is
        processed, which is never before its event (``_sanity`` refuses an ``occurred_at`` more than
        ``MAX_FUTURE_SKEW`` ahead). So while the event is younger than the retention, a state written
        for the alert is still there, and a missing one means none was written (the first version
        reached no one): what ``_admit`` relies on to refuse a later version it cannot place, rather
        than deliver it as a first publication when it may be one recalled for good. The originator's
        ``occurred_at`` is taken as it is signed, and the check reads the version at hand: once the
        alert's state is gone, a later version whose ``occurred_at`` is more than about a day after that
        state was written escapes it (stated limit: only the originator, with its own ingress key, can do
        this, and it could as well publish under a new alert id)."""
        occurred = alert.get("occurred_at")
        return isinstance(occurred, datetime) and occurred < now - self.lifecycle_retention + margin

    def _in_series(self, agency: str, alert_id: Any, originator_agency: Any, recall: bool) -> bool:
        """Whether a version of ``alert_id`` naming ``originator_agency`` keeps to the units' series, for an agency
        relaying units (``Originator.in_series``; the COMBIFRON adapter's rule, ``<agency>:<unit>-...``); always for
        an agency naming itself. An agency with no configured originator is refused elsewhere."""
        allowed = self.originators.get(agency)
        return allowed is None or allowed.in_series(alert_id, originator_agency, recall)

    def _may_name(self, agency: str, originator_agency: Any) -> bool:
        """Whether a recall of ``agency`` may name ``originator_agency`` (``Originator.names``, a unit not held to
        be a code; no configured originator: none)."""
        allowed = self.originators.get(agency)
        return allowed is not None and allowed.names(originator_agency, codes=False)

    def _reachable(self, prior: AlertState) -> bool:
        """Whether a recall again can reach anyone: some holder of the alert is a partner the policy names."""
        return any(partner in self._named for partner in prior.holders)

    def _recall_originator(self, agency: str, given: Any, prior: AlertState | None) -> str:
        """The originator the audit entry of a recall records: the alert's first, from its state; with none there,
        the recall's own name only when the agency may name it as a content version would (itself, or a unit the
        settings name): a recall is held to the form of a unit only, so any other name is the agency system's own
        text, and the audit records the agency that sent the recall (its MAC proves it) instead, a name the
        auditors' agency filter finds."""
        if prior is not None and prior.originator is not None:
            return _coded(prior.originator)
        allowed = self.originators.get(agency)
        return _coded(given) if allowed is not None and allowed.names(given) else agency

    def _country(self, agency: str, given: Any) -> str:
        """The originator country an audit entry of a recall records: the one ``agency``'s alerts name, as
        configured, never the recall's own (unchecked) value; coded when none is configured."""
        allowed = self.originators.get(agency)
        return allowed.country if allowed is not None else _coded(given)

    def _originator_problem(self, agency: str, originator: dict[str, Any]) -> str | None:
        """Why the alert's originator is not one ``agency`` may name, or None. The policy applies the
        originator country's restrictions (a third country only on its consent): an agency naming
        another country's originator, or its own country in place of a foreign one, would move
        them. Values are quoted only when they are the configured ones (they are agency text)."""
        allowed = self.originators.get(agency)
        if allowed is None:
            return f"no originator is configured for agency {agency}: set PUENTE_AGENCY_COUNTRIES"
        if originator["country"] != allowed.country:
            return f"{agency}'s alerts must name originator country {allowed.country}; this one names another"
        if not allowed.names(originator["agency"]):
            if allowed.prefix is None:
                whom = agency
            elif allowed.units:
                units = sorted(allowed.units)
                shown = ", ".join(allowed.prefix + u for u in units[:_UNITS_SHOWN])
                more = f" and {len(units) - _UNITS_SHOWN} more" if len(units) > _UNITS_SHOWN else ""
                whom = f"{agency} or one of the units PUENTE_AGENCY_UNITS names ({shown}{more})"
            else:
                whom = f"{agency} (it relays no units: PUENTE_AGENCY_UNITS names none)"
            return f"{agency}'s alerts must name {whom} as originator agency; this one names another"
        return None

    def _iso(self, now: datetime) -> str:
        # The worker passes one time per batch: format it once.
        if self._at[0] != now:
            self._at = (now, iso_utc(now))
        return self._at[1]

    def _dead(self, record: Record, where: str, key: str, reason: str, detail: str, now: datetime,
              version: int | None = None) -> Outcome:
        """A dead letter. ``version``: the record is remembered in the replay window at that version of its key (an
        alert id ``_admit`` found sound, past the origin check: ``_remembered``), and its audit entry says so, which
        the worker rebuilds the window from (``broker.worker._processed_ids``)."""
        at = self._iso(now)
        headers: tuple[tuple[str, bytes], ...] = (
            (wire.DLQ_REASON, reason.encode()),
            (wire.DLQ_DETAIL, detail[: wire.DLQ_DETAIL_MAX].encode()),
            (wire.DLQ_SOURCE, where.encode()),
            (wire.DLQ_AT, at.encode()),
        )
        # The record's key as sent, which no check has passed: its unprintable characters escaped, so an
        # escape sequence in it never reaches a terminal through the audit (the dead letter keeps it whole).
        # Its Kafka time no later than the clock allows: a block's newest ingress time sets the slot's replay
        # window when it loads again, and one ahead of the clock is refused then (``worker.head_ahead``); a
        # record refused for a time ahead must not put that time into the chain.
        entry = {"kind": "DEAD_LETTER", "alert_id": _escaped(key[:200]) or None, "reason": reason,
                 "detail": detail[: wire.DLQ_DETAIL_MAX],
                 "ingress": where,
                 "ingress_ms": min(record.timestamp_ms, int(now.timestamp() * 1000) + MAX_FUTURE_SKEW_MS), "at": at}
        seen_id = None
        if version is not None:
            entry["version"] = version
            seen_id = seen_key(key, version)
        records = 1 if record.unreadable is None else record.unreadable.records
        cut = dead_letter_body(record.key or b"", record.value or b"")
        if cut is None:
            return Outcome(entry=entry, dead_letter=headers, dead_reason=reason, seen_id=seen_id, records=records)
        dead_key, dead_value, note = cut
        entry["cut"] = note
        return Outcome(entry=entry, dead_letter=(*headers, (wire.DLQ_CUT, note.encode())), dead_reason=reason,
                       dead_record=(dead_key, dead_value), seen_id=seen_id, records=records)

    # ---- routing: one decision per partner ------------------------------------------------
    def _route(self, alert: dict[str, Any], decision: DecisionLike, partner: str, topic: str, now: datetime,
               out: Outcome) -> dict[str, Any]:
        outcome = decision.outcome
        if outcome == WITHHOLD:
            out.decisions.append((partner, outcome))
            return decision.audit
        sealer = self.sealers.get(partner)
        if sealer is None:
            # Not a withhold: that would be committed with the ingress offset, final, and nothing
            # would deliver the alert once the key is there. The worker stops before committing.
            raise MissingDeliveryKey(f"the policy delivers the alert at ingress {out.entry.get('ingress', '?')} "
                           f"to partner {partner} under agreement "
                           f"{decision.agreement}, but the broker has no usable sealing key for {partner}: it "
                           f"stopped without committing this record or any after it. Fix {partner}'s encryption "
                           "key in the broker's keystore (`puente policy lint --keys DIR` checks it) and start "
                           "the broker again")
        count = self._feed_count(partner, topic, out)  # FeedCountUnknown: configuration, not a withhold
        try:
            self._deliver(alert, decision, sealer, topic, count, now, out)
        except (MissingDeliveryKey, OSError):
            raise  # configuration, or the machine's (a key read from the keystore): not a withhold (MissingDeliveryKey)
        except Exception as exc:  # noqa: BLE001 - fail closed: whatever goes wrong, nothing leaves
            # Only Puente's own messages are quoted: they name keys and problems, never values;
            # another exception's text might quote the alert, so only its kind is recorded.
            detail = f": {str(exc)[:300]}" if isinstance(exc, (CryptoError, CodecError, ViewTooLarge)) else ""
            out.decisions.append((partner, WITHHOLD))
            return {**decision.audit, "decision": WITHHOLD, "redacted": [],
                    "reasons": [*decision.audit["reasons"], f"withheld at delivery: {type(exc).__name__}{detail}"]}
        out.decisions.append((partner, outcome))
        # Shared like the decision's own audit fields, so the audit block writes it once per batch.
        fed = self._fed.get(id(decision.audit))
        if fed is None or fed[0] is not decision.audit or fed[1] != topic:
            if len(self._fed) >= FED_LIMIT:
                self._fed.clear()
            fed = self._fed[id(decision.audit)] = (decision.audit, topic, {**decision.audit, "feed": topic})
        return fed[2]

    def _deliver(self, alert: dict[str, Any], decision: DecisionLike, sealer: Sealer, topic: str, count: int,
                 now: datetime, out: Outcome) -> None:
        view = self.policy.view(alert, decision)
        alert_id = self._reference(decision.partner, alert["alert_id"], out)
        plain = self.codec.encode({**view, "alert_id": alert_id})  # the partner's id for the alert, not the agency's
        agreement = decision.agreement or ""
        value = sealer.seal(plain, alert_id=alert_id, topic=topic, schema_fp=self.codec.fingerprint,
                            policy_version=decision.policy_version, agreement=agreement, now=now)
        if len(value) > MAX_FEED_RECORD:
            # Kafka would refuse it and abort the whole batch's transaction, again at every retry.
            raise ViewTooLarge(f"the partner's view takes {len(value):,} bytes sealed, over the feed's "
                               f"{MAX_FEED_RECORD:,}")
        out.feeds.append(FeedOut(topic, alert_id.encode(), value, (
            (wire.ALERT_ID, alert_id.encode()),
            (wire.SCHEMA, self._schema_hex),
            (wire.POLICY, decision.policy_version.encode()),
            (wire.DECISION, decision.outcome.encode()),
            (wire.AGREEMENT, agreement.encode()),
        ), count, decision.partner in out.by_slot))
        self._counted(decision.partner, count, out)

    def _feed_count(self, partner: str, topic: str, out: Outcome) -> int:
        """The partition count ``partner``'s next record of the alert follows: the one its state records, or the
        feed's now (``feed_counts``) for a partner not fed the alert before. A recorded count above the feed's now
        raises FeedCountStale, unless the worker has just read that count anew (``process_recounted``): the feed was
        then made anew with fewer, its old records gone, and its count now is taken. FeedCountUnknown when the
        worker has not said the feed's count."""
        now_has = self.feed_counts.get(topic)
        if now_has is None:
            raise FeedCountUnknown(f"the broker has not read how many partitions feed {topic[:200]} has: it stopped "
                                   "without committing this record or any after it; check that the topic exists")
        kept = out.counts.get(partner)
        if kept is None:
            return now_has
        if kept <= now_has:
            return kept
        if topic in self._recounted:
            return now_has  # read anew from Kafka for this record, and still fewer: the feed was made anew
        # Or this worker read the count before partitions were added, and another since sent the alert under more.
        raise FeedCountStale(topic, kept, now_has)

    def process_recounted(self, record: Record, seen: Container[str], now: datetime, states: StateLookup,
                          recounted: Collection[str]) -> Outcome:
        """``process`` again, once the worker has read the count of the feeds ``recounted`` from Kafka anew
        (``FeedCountStale``): a count recorded above one read anew is of a feed made anew since, and gives way."""
        self._recounted = frozenset(recounted)
        try:
            return self.process(record, seen, now, states)
        finally:
            self._recounted = frozenset()

    @staticmethod
    def _counted(partner: str, count: int, out: Outcome) -> None:
        """Record that ``partner`` was sent a record of the alert under ``count`` (``AlertState.counts``). A new
        dict, not a change in place: ``out.counts`` may be the prior state's, which a later record of the batch
        reads, or a transaction retried."""
        if out.counts.get(partner) != count:
            out.counts = {**out.counts, partner: count}


    def _reference(self, partner: str, alert_id: str, out: Outcome) -> str:
        """``partner``'s id for ``alert_id`` (``PolicyPort.reference``; the alert's own id for a partner given it
        before references, ``Outcome.by_id``), recorded in the alert's audit entry (``refs``, by partner), where
        the auditors' tools find the alert a partner's receipt names."""
        ref = alert_id if partner in out.by_id else self.policy.reference(partner, alert_id)
        out.entry.setdefault("refs", {})[partner] = ref
        return ref


def dead_letter_body(key: bytes, value: bytes) -> tuple[bytes, bytes, str] | None:
    """The key and value a dead letter carries when the record's own would not fit, with a note of
    what was cut; None when they fit.

    Anyone able to write an ingress topic can send a record near Kafka's own limit; with the dead
    letter's headers added it would then exceed what the producer sends, abort the slot's
    transaction and stop the worker at that record for good. Cut, it is still a dead letter: the
    note gives both original sizes and the value's SHA-256, so the original can be matched.
    """
    if len(key) + len(value) <= MAX_DEAD_LETTER:
        return None
    short_key = key[:MAX_DEAD_LETTER_KEY]
    short_value = value[: MAX_DEAD_LETTER - len(short_key)]
    note = (f"cut to fit the dead-letter topic: key {len(key):,} bytes (kept {len(short_key):,}), value "
            f"{len(value):,} bytes (kept {len(short_value):,}), value sha256 {hashlib.sha256(value).hexdigest()}")
    return short_key, short_value, note


class ViewTooLarge(PuenteError):
    """A partner's sealed view is larger than a feed record may be."""


class FeedCountUnknown(KeyUnusable):
    """The pipeline was asked to deliver to a feed whose partition count the worker has not given it
    (``Pipeline.feed_counts``): it cannot say which partition the record goes to, and guessing could put an
    alert's versions in two. Configuration, not input: raised out of ``process``, nothing is committed."""


class FeedCountStale(KeyUnusable):
    """An alert's state records that a partner's first record of it followed more partitions than this worker knows
    its feed to have: partitions were added after the worker read the count, and another worker sent the alert
    under the new one; or the feed was made anew with fewer. The worker reads the count from Kafka anew and
    processes the record again (``Pipeline.process_recounted``); guessing would put the alert's versions in two."""

    def __init__(self, topic: str, kept: int, now_has: int) -> None:
        super().__init__(f"feed {topic[:200]} has {now_has} partitions as this worker read them, fewer than the {kept} "
                         "an alert was first sent under: it stopped without committing this record; start it again")
        self.topic, self.kept = topic, kept


class MissingDeliveryKey(KeyUnusable):
    """The policy delivers an alert to a partner the broker has no key for: no sealing key for the
    partner, or no pseudonym key for an agreement whose rules pseudonymise (the policy port raises
    it from ``view``).

    Raised out of ``Pipeline.process`` (the one thing it raises): the alert can be neither sent
    (never in clear) nor withheld, since a WITHHOLD is committed with the ingress offset and is
    final, so the alert would be lost once the key is fixed. The worker stops with this error
    before its batch commits, and the record waits in the ingress topic for a broker with the
    key. The service refuses to start without keys for the partners of the agreements in force
    (``broker.service.require_sealers``); this covers an agreement coming into force while the
    broker runs.
    """


class _Undecided:
    """The decision for a partner when the policy itself failed on an alert: withhold, saying so."""

    outcome = WITHHOLD
    agreement = None
    rules: Sequence[str] = ()
    redactions: Sequence[tuple[str, str]] = ()

    def __init__(self, partner: str, policy_version: str, exc: Exception) -> None:
        self.partner = partner
        self.policy_version = policy_version
        self.reasons = (f"the policy could not decide on this alert ({type(exc).__name__}); withheld",)
        self.audit = {"partner": partner, "decision": WITHHOLD, "agreement": None, "rules": ["policy.error"],
                      "reasons": list(self.reasons), "redacted": [], "policy_version": policy_version}


class _Invalid:
    """The decision for a partner on a later version that fails a content rule (``Pipeline._admit``): withhold,
    saying which rule (never a value); a partner holding an earlier version is sent a recall notice."""

    outcome = WITHHOLD
    agreement = None
    rules: Sequence[str] = ()
    redactions: Sequence[tuple[str, str]] = ()

    def __init__(self, partner: str, policy_version: str, version: int, problem: str) -> None:
        self.partner = partner
        self.policy_version = policy_version
        self.reasons = (f"version {version} breaks a rule every alert must keep ({problem}): withheld from every "
                        "partner, and an earlier version held is pulled back, since this one changed the alert in "
                        "a way no one can read",)
        self.audit = {"partner": partner, "decision": WITHHOLD, "agreement": None, "rules": ["alert.invalid"],
                      "reasons": list(self.reasons), "redacted": [], "policy_version": policy_version}


def _retyped(version: int, prior: AlertState | None) -> str:
    """Why a content version of an alert first published as another type is refused (``Pipeline._admit``)."""
    first = None if prior is None else prior.alert_type
    return (f"version {version} names another alert type than the alert was first published as ({first}): an "
            "alert's type is fixed; publish a new alert for another kind of event")


def _sector(alert: dict[str, Any], areas: Collection[str]) -> str | None:
    """The alert's border sector as the audit records it: a label of the policy's areas, ``(not an area)`` for any
    other (a code in form as it may be, it is the agency's text), None when it names none."""
    location = alert.get("location")
    sector = location.get("border_sector") if isinstance(location, dict) else None
    if sector is None:
        return None
    return sector if sector in areas else "(not an area)"


def _coded(value: Any) -> str:
    """A code as the audit records it (an originator, a sector); anything else, which only a recall can carry (it
    is held to no content rule: ``Pipeline._admit``), as ``(not a code)``: free text never."""
    return value if isinstance(value, str) and _AUDIT_CODE.fullmatch(value) else "(not a code)"


def _bounded(value: Any, limit: int = 64) -> str:
    """A marking value as the audit records it: text, at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# UTF-8 of every Unicode format character (category Cf), the characters that reorder or hide text:
# bidirectional marks, embeddings, overrides and isolates, zero-width characters, the word joiner,
# invisible operators, BOM, interlinear annotation, the Mongolian vowel separator, tag characters and
# the rest. A search over an alert's JSON form (``hidden_char``) is cheap; a hit is confirmed on the
# decoded strings. Written out as a trie on the first bytes so the search stays
# near one pass; a unit test checks that it matches exactly the Cf characters of this Python.
_FORMAT_BYTES = re.compile(
    rb"\xc2\xad|\xd8[\x80-\x85\x9c]|\xdb\x9d|\xdc\x8f|\xe0(?:\xa2[\x90-\x91]|\xa3\xa2)|\xe1\xa0\x8e"
    rb"|\xe2(?:\x80[\x8b-\x8f\xaa-\xae]|\x81[\xa0-\xa4\xa6-\xaf])|\xef(?:\xbb\xbf|\xbf[\xb9-\xbb])"
    rb"|\xf0(?:\x91(?:\x82\xbd|\x83\x8d)|\x93\x90[\xb0-\xb8]|\x9b\xb2[\xa0-\xa3]|\x9d\x85[\xb3-\xba])"
    rb"|\xf3\xa0(?:\x80[\x81\xa0-\xbf]|\x81[\x80-\xbf])"
)


# In an alert's JSON form (orjson: UTF-8 as is, control characters U+0000 to U+001F escaped), an
# escape that may be a control character: \b \f \r \t or \u00XX (\n is text; a literal backslash
# before one of these letters is a false alarm the walk clears). A literal prefix: one fast scan.
_ESCAPE = re.compile(rb"\\[bfrtu]")
# What is left once printable ASCII is deleted holds every other character whole (UTF-8 sequences are
# all non-ASCII bytes): DEL, the C1 controls (U+0080 to U+009F) and the format characters are looked for
# in those few bytes, with the line and paragraph separators (U+2028, U+2029); the rest (drawn as nothing,
# unassigned, private-use, runs of combining marks) by ``unseen_mark`` on those bytes decoded. Deleting can
# only join runs of marks, never split one, so a run is never missed; marks that each follow an ASCII letter
# (decomposed accents) may look like a run there, and the walk of the strings clears that.
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_HIDDEN_UTF8 = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|" + _FORMAT_BYTES.pattern)


def hidden_char(alert: dict[str, Any]) -> str | None:
    """The first character in any string of ``alert`` that no one typed and that can disguise what a
    reader sees, as ``a control character``, ``the invisible formatting character U+XXXX NAME`` or what
    ``unseen_mark`` says (a character drawn as nothing, unassigned or for private use, a run of combining
    marks), never the text around it; None when there is none. Line feeds are text (remarks span lines).

    Control characters (category Cc: escape sequences that rewrite a terminal or forge a line in a
    log, NULs that cut a string short in C readers) and format characters (Cf: bidirectional
    overrides, zero-width characters that make two equal names compare unequal) are what the
    adapters refuse; a record published another way must not bring them past the broker. Looked for
    in the alert's JSON form with C-speed scans (a few microseconds, where a walk of every string
    takes several times that) and confirmed on the strings only on a hit. The joiners, selectors and tags inside
    the emoji sequences Unicode recommends (``puente.strict.emoji_unglued``) are emoji, not disguises."""
    try:
        text = orjson.dumps(alert)
    except orjson.JSONEncodeError:  # a lone surrogate, say: the walk names it
        return _hidden_in(alert)
    if _ESCAPE.search(text) is None:
        rest = text.translate(None, _PRINTABLE_ASCII)
        if not rest:
            return None
        if _HIDDEN_UTF8.search(rest) is None and unseen_mark(rest.decode("utf-8")) is None:
            return None
    return _hidden_in(alert)


def _hidden_in(value: Any) -> str | None:
    if isinstance(value, str):
        value = emoji_unglued(value)  # the joiners and selectors of emoji sequences (❤️, 👨‍👩‍👧) disguise nothing
        if value.isprintable():
            return unseen_mark(value)  # printable, yet drawn as nothing, or a run of combining marks
        for char in value:
            kind = unicodedata.category(char)
            if kind == "Cc" and char != "\n":
                return "a control character"
            if kind in ("Zl", "Zp"):  # U+2028, U+2029: a line break a log or a viewer may honour
                return "a line or paragraph separator"
            if kind in ("Cf", "Cs"):
                name = unicodedata.name(char, "FORMAT CHARACTER")
                return f"the invisible formatting character U+{ord(char):04X} {name}"
        return unseen_mark(value)  # what is left: unassigned (Cn) or private-use (Co), say, named as such
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = _hidden_in(item)
        if found is not None:
            return found
    return None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str, version: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail
        self.version = version  # the version its dead letter is remembered at (``Pipeline._dead``); None: not


def _replayed(version: Any, broken: str | None) -> str:
    """Why a copy at a version the replay window holds (``seen_key``) is refused: processed already, or taken by a
    broken version dead-lettered at that number (``_remembered``; never a first version), and what this copy itself
    breaks, if anything: a sender resending a broken record learns what to fix."""
    said = f"this alert id's version {version} was already processed"
    if type(version) is int and version > 1:
        said += " (or taken by a broken version dead-lettered at that number: publish the next version above it)"
    return f"{said}; this copy also breaks: {broken}" if broken else said


def _taken_note(taken: int | None, prior: AlertState | None) -> str:
    """What a dead letter remembered at ``taken`` (``_remembered``) adds to its detail: the number is taken, and what
    to publish instead, as the alert's state ``prior`` allows: the next version above it, unless the alert was
    recalled (a new alert then) or the number is not above the state's (the next above the state's)."""
    if taken is None:
        return ""
    if prior is not None and prior.recalled:
        return f"; version {taken} is now taken, and the alert was recalled for good: publish a new alert instead"
    if prior is not None and taken <= prior.version:
        return (f"; version {taken} is now taken: publish the corrected alert as the next version above "
                f"{prior.version}")
    return f"; version {taken} is now taken: publish the corrected alert as the next version above it"


def _remembered(alert: dict[str, Any], version: Any) -> int | None:
    """The version a later version dead-lettered for a rule it breaks, only because it could not be placed then (no
    state, no holder, its number not above the state's), is remembered at, or None. Remembered as a version
    withdrawn for such a rule is (``seen_key``, a recall without its reason too): the same bytes appended again
    within the window, once the alert reached a partner, would withdraw it from partners who should keep it, and
    refuse the originator's next versions as stale. Only a sound id (the record's key, which its MAC covers) and
    a version numbered 2 to 999,999 (one the agency's tools count as one the broker may have taken,
    ``adapters.ledger.admissible``), never a first version: the agency's corrected first version
    after a broken one (a hidden character, a time in the future) must not be its replay, and a broken first version
    appended again after a later one is below the state's anyway."""
    if _id_problem(alert) is not None or type(version) is not int:
        return None
    return version if 1 < version < MAX_VERSION else None


def _codec_reason(exc: CodecError) -> str:
    return {
        "NotSingleObjectError": "not-avro",
        "UnknownSchemaError": "unknown-schema",
        "CorruptRecordError": "corrupt",
        "RecordMismatchError": "schema-violation",
    }.get(type(exc).__name__, "undecodable")


# An alert id's reference, after ``AGENCY:``: what the adapters write (``adapters.core.alert_id``). No
# ':', no space (the replay window's keys add `` v<n>`` to an id: ``seen_key``), no control character.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/#-]*")
_UNITS_SHOWN = 8  # an originator problem names this many of a relaying agency's units, and counts the rest
# A province or a border sector: a code of the adapters' tables (DARIEN_JAQUE).
_AREA_CODE = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}")
_AUDIT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,67}")  # an area code, an originator (SNM, COL-DIJIN)
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)  # no alert reports an event older; year 1 is a broken clock
_LATEST_MARKING = timedelta(days=100 * 365)  # the furthest a review or expiry date may lie ahead
# A marking list's entries (a partner, a country, a caveat): codes of the policy's vocabulary (``policies``'
# ``Code``), and no more of them than a vocabulary could name. Each unknown entry is a reason in every partner's
# decision: a million of them in one record held the worker past its session for every agency.
_MARKING_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
STATED_HANDLING = "H3"  # the handling code whose restriction markings.handling_text states, as the adapters write it
MAX_MARKING_ENTRIES = 64
_MARKING_LISTS = ("releasable_to", "caveats", "originator_consent")
_MARKING_VALUES = ("classification", "handling_code", "source_reliability", "information_credibility")


def dead_letter_source(entry: Mapping[str, Any]) -> str:
    """Where a DEAD_LETTER entry's record came from, as auditors are to read it before its detail: its ingress
    place (``from t.ingress.PN:0:5``), led, when its origin was not proven (``ORIGIN_PROVEN``), by its alert id
    marked as the record's unproven key (``key SNM:1 (unproven), from ...``); "" when the entry names neither.

    Its ``alert_id`` is the record's key whatever the reason; unproven, it may name another agency's alert, and a
    row listed under that alert must not read as a record of that agency's."""
    ingress, key = entry.get("ingress"), entry.get("alert_id")
    where = f"from {ingress}" if ingress not in (None, "") else ""
    if entry.get("reason") in ORIGIN_PROVEN or key in (None, ""):
        return where
    return f"key {key} (unproven)" + (f", {where}" if where else "")


def _escaped(text: str) -> str:
    """``text`` with every character that is not printable written as its Python escape (``\\x1b``)."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def content_problem(alert: dict[str, Any], now: datetime) -> str | None:
    """Why the content of ``alert`` (any version but a recall) breaks a rule every alert must keep, or None: more
    than an adapter writes (``schemas.bounds``, checked first, before a character is read: one record's scan and
    views would otherwise hold every slot's event loop for a third of a second), a hidden character, or a value no
    adapter writes (``_sanity``). The broker withholds or dead-letters such a version (``Pipeline._admit``); an
    officer's change built on an older copy is held to the same rules before it is published
    (``adapters.lifecycle.change_alert``), or it would withdraw the alert instead."""
    if (oversized := bounds_problem(alert)) is not None:
        return oversized
    return _bounded_content_problem(alert, now, False)


def _bounded_content_problem(alert: dict[str, Any], now: datetime, plain: bool) -> str | None:
    """``content_problem`` for an alert within its bounds: a hidden character (none where ``plain``: its text is
    printable ASCII and line feeds, as the codec measured it), or ``_sanity``'s problem."""
    if not plain and (char := hidden_char(alert)) is not None:
        return _hidden(char)
    return _sanity(alert, now)


def _hidden(char: str) -> str:
    return f"a text field holds {char}, which can disguise what a partner reads or what a log shows; the adapters " \
           "refuse these"


def _id_problem(alert: dict[str, Any]) -> str | None:
    """Why the alert id is not ``AGENCY:reference`` as the adapters write it (``_REFERENCE``), or None."""
    prefix, alert_id = alert["agency"] + ":", alert["alert_id"]
    if (not alert_id.startswith(prefix) or len(alert_id) > 200
            or not _REFERENCE.fullmatch(alert_id, len(prefix))):
        return (f"alert id must be {prefix!r} and a reference of letters, digits and . _ / # -, at most 200 "
                "characters in all")
    return None


def _sanity(alert: dict[str, Any], now: datetime) -> str | None:
    """Checks the schema cannot express, an allow-list of sound values: what the adapters refuse, refused
    again for records published another way; a problem here is a schema violation, not a crash.
    Messages name the field and the rule, never the value. For versions whose content is delivered: a recall
    is held to ``_id_problem`` alone."""
    if (problem := _id_problem(alert)) is not None:
        return problem
    for name in ("occurred_at", "reported_at"):
        if alert[name] > now + MAX_FUTURE_SKEW:
            return f"{name} is in the future"
        if alert[name] < _EARLIEST:
            return f"{name} is before 1900"
    if alert["reported_at"] < alert["occurred_at"] - MAX_FUTURE_SKEW:
        return "reported_at is before occurred_at"
    markings = alert["markings"]
    if (problem := _marking_lists_problem(markings, alert.get("lifecycle"))) is not None:
        return problem
    for name in _MARKING_VALUES:
        # Codes of the vocabulary, as the adapters write them. Still the agency's text (a name written as a code):
        # the audit records a classification only as a level, and no reason or problem quotes any of them.
        if not _MARKING_CODE.fullmatch(markings[name]):
            return f"markings.{name} must be a code: letters, digits and _ . -, at most 64"
    if markings.get("handling_text") and markings["handling_code"] != STATED_HANDLING:
        # As the adapters refuse it: the text states an H3 restriction, which under another code no partner
        # honours (views hold it only with H3), so the alert would go out wider than its originator wrote.
        return (f"markings.handling_text is stated under a handling code other than {STATED_HANDLING}: only "
                f"{STATED_HANDLING} carries a restriction in text")
    for name in ("review_at", "expires_at"):
        # Dates the partners' stores act on (a review notice, a deletion): a year-1 review date reached every
        # partner as overdue, and a negative time in its store. Decades ahead is an agency's choice; centuries not.
        when = markings.get(name)
        if when is not None and not _EARLIEST <= when <= now + _LATEST_MARKING:
            return f"markings.{name} is before 1900 or more than {_LATEST_MARKING.days // 365} years ahead"
    if not known_zone(alert["source_timezone"]):
        return ("source_timezone is not an IANA time zone of a place (such as America/Panama, or UTC); Factory, "
                "localtime and the posix/ and right/ copies are not")
    loc = alert.get("location") or {}
    for name in ("province", "border_sector"):
        # Codes, as the adapters write them (a table's): free text there (a name, a document number) would reach
        # the audit's sector column, the indicators and every partner's view that keeps the field.
        value = loc.get(name)
        if value is not None and not _AREA_CODE.fullmatch(value):
            return f"location.{name} must be a code: capitals, digits and _, at most 64"
    lat, lon = loc.get("latitude"), loc.get("longitude")
    for name, value, bound in (("latitude", lat, 90.0), ("longitude", lon, 180.0)):
        if value is not None and (not math.isfinite(value) or abs(value) > bound):
            return f"location.{name} is outside [-{bound:g}, {bound:g}]"
    return _payload_problem(alert["alert_type"], alert["payload"], now)


def _marking_lists_problem(markings: dict[str, Any], life: dict[str, Any] | None) -> str | None:
    """Why a marking list (and a CONSENT version's ``lifecycle.partners``) is not at most
    ``MAX_MARKING_ENTRIES`` codes (``_MARKING_CODE``), or None. The adapters write codes of the vocabulary's
    tables; anything else is refused whole, before the decisions give each entry a reason per partner."""
    code = _MARKING_CODE.fullmatch
    for name in _MARKING_LISTS:
        values = markings.get(name)
        # Decoded lists of the schema's strings (``all(map(...))``: the check costs a worker about a microsecond).
        if values and (len(values) > MAX_MARKING_ENTRIES or not all(map(code, values))):
            return _list_problem(f"markings.{name}", values)
    partners = life.get("partners") if life is not None else None
    if partners and (len(partners) > MAX_MARKING_ENTRIES or not all(map(code, partners))):
        return _list_problem("lifecycle.partners", partners)
    return None


def _list_problem(name: str, values: list[Any]) -> str:
    if len(values) > MAX_MARKING_ENTRIES:
        return f"{name} has more than {MAX_MARKING_ENTRIES} entries"
    return f"{name} must hold codes: letters, digits and _ . -, at most 64 each"


def _payload_problem(alert_type: str, payload: dict[str, Any], now: datetime) -> str | None:
    """The payload's numbers: counts and quantities finite and not negative, a match score from 0 to 1,
    birth years from 1900 to now (the schema says only int or double)."""
    people: list[Any] = []
    if alert_type == "SEIZURE":
        for item in payload["items"]:
            quantity = item["quantity"]
            if not (math.isfinite(quantity) and quantity >= 0):
                return "payload.items[].quantity must be a finite number, not negative"
        if payload["persons_detained"] < 0:
            return "payload.persons_detained is negative"
        people = payload["detainees"]
    elif alert_type == "BORDER_EVENT":
        if payload["headcount"] is not None and payload["headcount"] < 0:
            return "payload.headcount is negative"
    elif alert_type == "WATCHLIST_HIT":
        score = payload["match_score"]
        if score is not None and not (math.isfinite(score) and 0 <= score <= 1):
            return "payload.match_score must be a number from 0 to 1"
        seen = payload.get("encountered_at")
        if isinstance(seen, datetime) and not _EARLIEST <= seen <= now + MAX_FUTURE_SKEW:
            return "payload.encountered_at is before 1900 or in the future"
        people = [payload["person"]]
    for person in people:
        year = person.get("birth_year") if isinstance(person, dict) else None
        if year is not None and not 1900 <= year <= now.year:
            return "a birth_year is before 1900 or in the future"
        born = person.get("date_of_birth") if isinstance(person, dict) else None
        if isinstance(born, date) and not _EARLIEST.date() <= born <= now.date():
            return "a date_of_birth is before 1900 or in the future"
    return None
