"""An agency officer's changes to an alert already published: recall it, consent to a partner, reclassify it.

Each change is the alert's next version, published by the agency that owns the alert (the alert
id's prefix: ``SNM:PTY-...`` is SNM's) on its own ingress topic, as its adapter publishes:

1. Find the alert's latest version on the ingress topic, read from its beginning as the ledger is
   (``adapters.ledger.scan``). Only records in the partition the id belongs in (``key_partition``: the
   broker refuses any other as misrouted, and offsets then compare within one log) that prove the
   agency's origin with the agency's own keys count: those are the ones the broker accepts, and a
   version built on a record anyone
   else wrote would launder it under the agency's MAC. Of those, only copies naming an originator
   the broker may take for the id count (``Originator.may_take``: the units COMBIFRON relays share
   its keys, and one unit's copy of another's alert, in that unit's series, is refused), and of
   those only the first copy's originator's (``Found.own``): the broker holds every later version
   to it, so a change built on, or a recall naming, another's copy would be dead-lettered. A unit's
   content copy of an id in no unit's series (published before the series rule) is refused, as the
   broker refuses it where no state names that unit; a recall, which may name it, builds on such
   copies when nothing else counts (``Found.recallable``). A copy the broker refuses for its version
   and lifecycle whatever state it holds (``admissible``, by ``broker.lifecycle.lifecycle_problem``,
   the function it admits by: a version outside 1 to 1,000,000, the last kept for a recall, a first
   version with a lifecycle) is refused here too (``Found.invalid``): it is never the latest, the first
   nor a recall, so one such copy cannot block a change. A recall without its reason numbered 2 to
   999,999 is a copy the broker may have taken, as a withdrawal, not a recall for good
   (``recalls_for_good``): it may be the latest, and the next change is numbered above it.
2. Make version + 1 (``next_version``, pure): the content as it stands, the lifecycle set, and
   for a CONSENT the partners added to ``markings.originator_consent`` (which holds every consent
   given, and is what the policy reads) and named in ``lifecycle.partners``; for a RECLASSIFY the
   new markings. Every version carries the whole alert; the broker ignores a RECALL's content.
3. Publish it, keyed by the alert id and with its origin MAC (``IngressPublisher``), and wait for
   Kafka's acknowledgement.

Refused before anything is read, each in one line naming what to check: an id whose prefix is no
agency; a partner the policy does not know; a marking the policy does not know; a reclassification
with no change. Refused after reading: an alert not on the topic (never published there, or older
than the topic's retention: the agency can republish it from its own system with ``puente adapt``);
copies that all name an originator the broker refuses for the id, or all have a version or lifecycle it
refuses; an alert already recalled (any of its originator's copies a recall giving its reason, even one a
later version follows: such a recall is for good); a change other than a recall built on a version whose content or
lifecycle breaks a rule; a partner already consented; a reclassification that leaves the markings as
they are. Kafka itself refuses another agency's login.

Limits, stated: two officers changing one alert at the same moment could both publish the same
version; the broker keeps the first and dead-letters the second as a replay. Changes to one
alert are one officer's at a time, as adapter runs are one per agency. The copies are judged by
what the topic holds and the broker's rules that need no state (origin, partition, originator,
version and lifecycle), not by the broker's decisions: a version the broker dead-lettered for a
reason only it can tell (stale, past its replay window) still counts here; `puente audit log
--alert ID` shows what it decided.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters import _fields as f
from adapters.config import Context, Vocabulary, load_config, make_context
from adapters.core import LIFECYCLE_ACTIONS, MAX_REVISION, RECALL_REASONS, check_lifecycle, lifecycle, names
from adapters.ledger import admissible, is_recall, proves, recalls_for_good, scan
from adapters.publisher import IngressPublisher
from broker.crypto import SecretBytes, ingress_mac_key, parse_pair_key_id
from broker.kafka import KafkaConnection
from broker.keystore import Keystore
from broker.lifecycle import MAX_VERSION, lifecycle_problem
from broker.pipeline import Originator, content_problem
from broker.topology import TopicNames, key_partition
from policies import load_policy_set
from puente.errors import AdapterError, BoundsExceededError, CodecError, ConfigError, KeyMaterialError
from puente.settings import PuenteSettings
from puente.wire import Record
from schemas import AlertCodec, alert_codec

# The markings a reclassification may change: the release markings. Grading and originator are
# facts about the source, not markings an officer re-decides; consent has its own command.
RECLASSIFIABLE = ("classification", "releasable_to", "caveats", "handling_code", "handling_text")


@dataclass(frozen=True)
class Change:
    """What an officer asks of an alert: ``action`` is RECALL, CONSENT or RECLASSIFY."""

    action: str
    reason: str | None = None  # RECALL: one of RECALL_REASONS
    partners: tuple[str, ...] = ()  # CONSENT: partner ids
    markings: Mapping[str, Any] = field(default_factory=dict)  # RECLASSIFY: new values of RECLASSIFIABLE fields


@dataclass(frozen=True)
class Published:
    """A version an officer's change published."""

    alert_id: str
    version: int
    action: str
    reason: str | None = None
    partners: tuple[str, ...] = ()
    changed: Mapping[str, Any] = field(default_factory=dict)  # RECLASSIFY: the markings that changed, new values


@dataclass
class Found:
    """What the ingress topic holds under one alert id: every copy that proves the agency's origin and names an
    originator the broker may take for the id (``Originator.may_take``: another unit's copy of a unit's alert is
    not one), and how many did not.

    The broker holds every later version to the originator of the first version it takes, so only the copies naming
    the first copy's originator count (``own``): the latest of them is what a change builds on, never a copy of
    another originator the broker refused."""

    copies: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (offset, alert), as read
    unverified: int = 0  # carry the id but do not prove the agency's origin with its keys
    refused: int = 0  # prove it, but name an originator the broker refuses for this id
    past_bound: dict[int, str] = field(default_factory=dict)
    """The copies, by offset, holding an array past its bound (``schemas.bounds``), decoded with it empty: why."""
    past_digest: dict[int, bytes] = field(default_factory=dict)
    """Those copies' SHA-256, by offset: the same as another copy only when its bytes are (``differs``)."""
    recallable: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """Refused copies whose originator a recall may still name (``Originator.may_take`` as a recall): a unit's
    content version of an id in no unit's series (one published before the broker held units to their series),
    which the broker now refuses, but whose recall it takes. A recall is built on them when no copy counts
    (``for_change``)."""
    partitions: int = 0
    """The topic's partition count, which the broker places each id by (``key_partition``); 0: not known yet, and
    then no copy counts (``collect``)."""
    misrouted: int = 0
    """Records of the id in a partition its key does not belong in: the broker refused them (``misrouted``), so no
    change is built on one. Only copies in the key's own partition count, so offsets compare within one log."""
    invalid: int = 0
    """Copies that prove the agency's origin but whose version and lifecycle the broker refuses whatever state it
    holds (``admissible``): none is a candidate for the latest, nor the first, nor a recall, so none blocks a change."""

    def own(self) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        """The copies naming the first copy's originator, each with its rank (version, offset), in rank order."""
        if not self.copies:
            return []
        first = min(self.copies, key=lambda c: c[0])[1]["markings"]["originator"]["agency"]
        return sorted(((a["version"], o), a) for o, a in self.copies if a["markings"]["originator"]["agency"] == first)

    def for_change(self, action: str) -> Found:
        """What a change of ``action`` builds on: these copies, or, for a RECALL when none counts, the refused ones
        a recall may name the originator of (``recallable``). The broker ignores a recall's content and holds it
        only to its originator: with no copy it takes, it holds no state naming another, so such a recall lands."""
        if action != "RECALL" or self.copies or not self.recallable:
            return self
        return Found(list(self.recallable), self.unverified, self.refused - len(self.recallable), self.past_bound,
                     self.past_digest, partitions=self.partitions, misrouted=self.misrouted, invalid=self.invalid)

    @property
    def alert(self) -> dict[str, Any] | None:
        """The latest version of the first originator's copies (of one version, the later copy); None: none."""
        own = self.own()
        return own[-1][1] if own else None

    @property
    def rank(self) -> tuple[int, int]:
        """The (version, offset) of ``alert``; (-1, -1): none."""
        own = self.own()
        return own[-1][0] if own else (-1, -1)

    @property
    def differs(self) -> tuple[int, int] | None:
        """Offsets of two copies of the latest version whose content differs, or None. Two officers changed one
        version at once, or an agency published a version twice: the broker acted on the first copy it accepted
        and refused the other as a replay, and which one that was is not for this reader to guess."""
        own = self.own()
        if not own:
            return None
        (version, at), last = own[-1]
        other = next(((r[1], a) for r, a in own
                      if r[0] == version and r[1] != at and not self._same(r[1], a, at, last)), None)
        return None if other is None else (other[0], at)

    def _same(self, one: int, first: dict[str, Any], two: int, second: dict[str, Any]) -> bool:
        """Whether the copies at offsets ``one`` and ``two`` hold the same version. A copy with an array past its bound
        was decoded with that array empty: it is the same as another only byte for byte."""
        if one in self.past_bound or two in self.past_bound:
            return one in self.past_digest and self.past_digest.get(one) == self.past_digest.get(two)
        return first == second

    @property
    def recall(self) -> tuple[int, int] | None:
        """The rank (version, offset) of the first of the originator's copies that is a recall for good (giving its
        reason), or None: the broker refuses anything after one, whatever its version or place on the topic. One
        without its reason it took, if at all, as a withdrawal (``recalls_for_good``): changes go on above it."""
        return next((r for r, a in self.own() if recalls_for_good(a)), None)


def agency_of(alert_id: str, agencies: Iterable[str]) -> str:
    """The agency that owns ``alert_id``: its prefix before ':'."""
    agency, sep, ref = alert_id.partition(":")
    known = tuple(agencies)
    if not sep or not ref or agency not in known:
        raise ConfigError(f"an alert id starts with the code of the agency that published it and ':' (one of "
                          f"{', '.join(f'{a}:' for a in known)}); check the id")
    return agency


def check_change(change: Change, ctx: Context, partners: Iterable[str]) -> Change:
    """The change with its codes checked against the policy and put in canonical form; nothing read yet."""
    if change.action not in LIFECYCLE_ACTIONS or change.action == "UPDATE":
        raise ConfigError(f"an officer's change is RECALL, CONSENT or RECLASSIFY, not {change.action}")
    if change.action == "RECALL":
        if change.reason not in RECALL_REASONS:
            raise ConfigError(f"a recall needs its reason, one of {', '.join(RECALL_REASONS)}")
        return Change("RECALL", reason=change.reason)
    if change.action == "CONSENT":
        known = frozenset(partners)
        asked = tuple(dict.fromkeys(p.strip().upper() for p in change.partners))
        unknown = [p for p in asked if p not in known]
        if unknown or not asked:
            raise ConfigError(f"--partner {', '.join(unknown) or '(none)'}: not a partner the policy knows (known: "
                              f"{', '.join(sorted(known))}); check the id, or the partners file in the policy")
        return Change("CONSENT", partners=asked)
    given = {k: v for k, v in change.markings.items() if v is not None}
    if not given:
        raise ConfigError(f"a reclassification changes at least one of {', '.join(RECLASSIFIABLE)}")
    extra = sorted(set(given) - set(RECLASSIFIABLE))
    if extra:
        raise ConfigError(f"a reclassification changes only {', '.join(RECLASSIFIABLE)}, not {', '.join(extra)}")
    try:
        return Change("RECLASSIFY", markings=_marking_codes(given, ctx))
    except AdapterError as exc:
        raise ConfigError(str(exc)) from None


def _marking_codes(given: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    vocab: Vocabulary = ctx.vocab
    out: dict[str, Any] = {}
    if "classification" in given:
        table = {c: c for c in vocab.classifications} | dict(ctx.profile.classification_map)
        out["classification"] = f.code(given["classification"], "--classification", table)
    if "releasable_to" in given:
        out["releasable_to"] = list(dict.fromkeys(names(given["releasable_to"], "--releasable-to", vocab.names) or []))
    if "caveats" in given:
        out["caveats"] = list(dict.fromkeys(names(given["caveats"], "--caveats", vocab.caveats) or []))
    if "handling_code" in given:
        out["handling_code"] = f.code(given["handling_code"], "--handling-code", vocab.handling_codes)
    if "handling_text" in given:
        out["handling_text"] = f.text(given["handling_text"], "--handling-text", ctx.limits.handling_text)
    return out


def next_version(latest: Mapping[str, Any], change: Change) -> dict[str, Any]:
    """The alert's next version for a checked ``change`` (see check_change): pure; ConfigError when it cannot be."""
    alert_id, version = latest["alert_id"], latest.get("version")
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        # A version the broker refuses (``admissible``): it holds no state at it, so none is built on it.
        raise ConfigError(f"{alert_id}: the version to build on is not one the broker takes (versions count from 1 to "
                          f"{MAX_VERSION:,}); check the copies on the agency's ingress topic")
    done = latest.get("lifecycle") or {}
    # A recall without its reason is no recall for good: the broker withdrew the alert for it, if it took it, as a
    # version it cannot admit (``recalls_for_good``); the next change is numbered above it.
    final = done.get("action") == "RECALL" and done.get("reason") is not None
    if final and change.action != "RECALL":
        raise ConfigError(f"{alert_id} was recalled in version {version} (reason {done['reason']}); a recall is for "
                          "good, so it takes no further change")
    # A recall again is allowed: the broker sends the notices again to any partner that still holds
    # the alert (one whose notice could not be sent), and records it as a dead letter when none does.
    # A recall at the last version is repeated at that version: there is no higher one.
    again_at_last = final and version == MAX_REVISION
    if not again_at_last and (version + 1 > MAX_REVISION
                              or (version + 1 == MAX_REVISION and change.action != "RECALL")):
        raise ConfigError(f"{alert_id} is at version {version:,}: versions count to {MAX_REVISION - 1:,}, and "
                          f"{MAX_REVISION:,} is kept for its recall; publish a new alert instead")
    new = copy.deepcopy(dict(latest))
    new["version"] = version if again_at_last else version + 1
    marks = new["markings"]
    if change.action == "RECALL":
        new["lifecycle"] = lifecycle(new["version"], "RECALL", reason=change.reason)
    elif change.action == "CONSENT":
        already = [p for p in change.partners if p in marks["originator_consent"]]
        if already:
            raise ConfigError(f"{alert_id}: {', '.join(already)} already {'has' if len(already) == 1 else 'have'} "
                              f"the originator's consent (version {version}); name only partners without it")
        marks["originator_consent"] = [*marks["originator_consent"], *change.partners]
        new["lifecycle"] = lifecycle(version + 1, "CONSENT", partners=change.partners)
    else:
        new["markings"] = _reclassified(alert_id, version, marks, change.markings)
        new["lifecycle"] = lifecycle(version + 1, "RECLASSIFY")
    check_lifecycle(new)
    return new


def _reclassified(alert_id: str, version: int, marks: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    out = {**marks, **given}
    if given.get("handling_text") and out["handling_code"] != "H3":
        raise ConfigError("--handling-text states an H3 restriction; give --handling-code H3 with it")
    if out["handling_code"] != "H3":
        out["handling_text"] = None  # only H3 states its restriction in text, as the adapters write it
    elif not out["handling_text"]:
        raise ConfigError("handling code H3 needs its restriction stated: give --handling-text")
    if all(out[k] == marks[k] for k in RECLASSIFIABLE):
        raise ConfigError(f"{alert_id}: the markings of version {version} are already these; nothing to reclassify")
    return out


def changed_markings(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The release markings that differ between two versions, with their new values."""
    return {k: after["markings"][k] for k in RECLASSIFIABLE if after["markings"][k] != before["markings"][k]}


def own_mac_lookup(keystore: Keystore, agency: str) -> Callable[[str, str], SecretBytes | None]:
    """``lookup`` for ``verify_ingress`` from the agency's own keystore: any generation of its key-agreement key
    still there, paired with the broker's public half named in the record; nothing for another agency. Refused
    (KeyMaterialError naming both ids) while the folder holds one public half under two ids
    (``Keystore.refuse_one_key_two_ids``): another agency's key filed also as ``broker-kex-<g>`` gives a pair whose
    MAC key that agency derives too, so its records would read as this agency's own."""
    keystore.refuse_one_key_two_ids()
    cache: dict[str, SecretBytes | None] = {}

    def lookup(who: str, key_id: str) -> SecretBytes | None:
        if who != agency:
            return None
        if key_id not in cache:
            try:
                mine, broker = parse_pair_key_id(key_id)
                own = keystore.load(str(mine)) if mine.owner == agency else None
                cache[key_id] = ingress_mac_key(own, keystore.load(str(broker))) if own and own.secret else None
            except KeyMaterialError:
                cache[key_id] = None
        return cache[key_id]

    return lookup


def own_originator(cfg: PuenteSettings, agency: str, home_country: str) -> Originator:
    """The originator ``agency``'s alerts may name, as the broker configures it (``PUENTE_AGENCY_COUNTRIES`` and
    ``PUENTE_AGENCY_UNITS``)."""
    return Originator.of(agency, cfg.agency_countries.get(agency, home_country), home_country,
                         cfg.agency_units.get(agency, ()))


def collect(found: Found, rec: Record, alert_id: str, agency: str, lookup: Callable[[str, str], SecretBytes | None],
            codec: AlertCodec, origin: Originator) -> None:
    """Take ``rec`` into ``found`` if it is a version of ``alert_id`` that proves ``agency``'s origin and names an
    originator the broker may take for it (``origin``: the agency's ``Originator``)."""
    if rec.key != alert_id.encode():
        return
    if found.partitions < 1 or rec.partition != key_partition(rec.key, found.partitions):
        found.misrouted += 1  # the broker refuses a version outside its key's partition: it holds no state there
        return
    past: str | None = None
    emptied: tuple[str, ...] = ()
    try:
        alert = codec.decode(rec.value)
    except BoundsExceededError as exc:
        # A copy with an array past its bound (``schemas.bounds``), that array not built: a recall may still be built
        # on it, any other change is refused for it (``change_alert``), as for any copy breaking a content rule.
        alert, past, emptied = exc.alert, str(exc), exc.emptied
    except CodecError:
        found.unverified += 1
        return
    if alert["alert_id"] != alert_id or not proves(rec, alert, agency, lookup):
        found.unverified += 1
        return
    if past is not None:
        found.past_bound[rec.offset] = past
        found.past_digest[rec.offset] = hashlib.sha256(rec.value).digest()
    take(found, rec.offset, alert, origin, emptied)


def take(found: Found, offset: int, alert: dict[str, Any], origin: Originator, emptied: tuple[str, ...] = ()) -> None:
    """Keep a verified copy of the alert, at ``offset``, if the broker could take its version and lifecycle
    (``admissible``; ``emptied``: the lists the codec left empty, past their bound) and it names an originator the
    broker may take for its id (``origin``: the agency's ``Originator``); count it invalid or refused otherwise."""
    if not admissible(alert, emptied):
        # A version out of range (2,000,000; 0; 1,000,000 for content, or for a recall without its reason), or a
        # first version with a lifecycle: the broker dead-lettered it whatever its state, so it is neither the
        # latest to build on nor a recall. A recall without its reason at 2 to 999,999 is kept: the broker may have
        # taken it as a withdrawal, so the next change goes above it (``admissible``).
        found.invalid += 1
        return
    recall = is_recall(alert)
    if not origin.may_take(alert["alert_id"], alert["markings"]["originator"], recall):
        # Another unit's copy of this unit's alert (the units of a relaying agency share its keys), or a name the
        # agency may not give: the broker refused it, so no change is built on it nor names its originator. A unit's
        # copy of an id in no unit's series may still be recalled in that unit's name (``Found.recallable``).
        found.refused += 1
        if not recall and origin.may_take(alert["alert_id"], alert["markings"]["originator"], True):
            found.recallable.append((offset, alert))
        return
    found.copies.append((offset, alert))


async def find_latest(conn: KafkaConnection, topic: str, alert_id: str, agency: str,
                      lookup: Callable[[str, str], SecretBytes | None], origin: Originator) -> Found:
    """The copies of ``alert_id`` on ``topic`` that prove ``agency``'s origin and name an originator the broker may
    take for it (``collect``)."""
    found, codec = Found(), alert_codec()

    def sized(partitions: int) -> None:
        found.partitions = partitions

    await scan(conn, topic, lambda rec: collect(found, rec, alert_id, agency, lookup, codec, origin), sized=sized)
    return found


def next_of(found: Found, change: Change) -> dict[str, Any]:
    """The next version of the alert ``found`` holds for a checked ``change``: ``next_version`` on the latest of the
    first originator's copies (``Found.own``), so it names the originator the broker holds the alert to. A change
    other than a recall is refused once any of those copies is a recall for good, even one a later version follows (the
    broker refused that version as recalled); a recall without its reason is none (``recalls_for_good``)."""
    found = found.for_change(change.action)
    latest = found.alert
    if latest is None:
        raise ValueError("next_of needs a version found")
    recalled = found.recall
    if recalled is not None and change.action != "RECALL":
        raise ConfigError(f"{latest['alert_id']} was recalled in version {recalled[0]} (offset {recalled[1]}); a "
                          "recall is for good, so it takes no further change")
    return next_version(latest, change)


def _not_found(alert_id: str, topic: str, found: Found, cfg: PuenteSettings, keystore: Keystore) -> ConfigError:
    if found.misrouted and not (found.refused or found.unverified or found.invalid):
        return ConfigError(f"{alert_id}: {found.misrouted} record(s) on {topic} carry this id, but each lies in a "
                           "partition its key does not belong in, which the broker refuses (misrouted): there is no "
                           "version it took to change; publish the alert with Kafka's default partitioner (`puente "
                           "adapt`), then change it")
    if found.refused:
        return ConfigError(f"{alert_id}: {found.refused} record(s) on {topic} carry this id, but each names an "
                           "originator the broker refuses for it (another unit's, one the agency may not name, or, "
                           "for an id in no unit's series, a unit, which only a recall may name): there is no "
                           "version of the alert's own originator to change; check the id")
    if found.invalid:
        return ConfigError(f"{alert_id}: {found.invalid} record(s) on {topic} carry this id and prove the agency's "
                           "origin, but each has a version or lifecycle the broker refuses (versions count from 1 to "
                           f"{MAX_VERSION - 1:,}, {MAX_VERSION:,} kept for a recall; a later version says what it "
                           "does): there is no version it took to change; check the id, or publish the alert from "
                           "the agency's own system with `puente adapt`")
    if found.unverified:
        return ConfigError(f"{alert_id}: {found.unverified} record(s) on {topic} carry this id but none proves the "
                           f"agency's origin with its keys in {keystore.path} (a key generation removed, or records "
                           "the agency did not write); check the keystore")
    return ConfigError(f"{alert_id} is not on {topic}: it was never published there, or it is older than the topic's "
                       f"retention ({cfg.ingress_retention_days} days); the agency can republish the record from its "
                       "own system with `puente adapt`, then change it")


async def change_alert(cfg: PuenteSettings, conn: KafkaConnection | Callable[[], KafkaConnection], alert_id: str,
                       change: Change) -> Published:
    """Publish the next version of ``alert_id`` with ``change``, as the agency that owns it; returns what was published.

    Everything that needs no Kafka (the id, the change's codes, the agency's keys) is checked first; ``conn`` may be
    given as the function that makes it (the command's: reading the Kafka settings), called only after those
    checks, so the first error an officer sees names the first thing to fix.
    """
    agency = agency_of(alert_id, cfg.agencies)
    policy = load_policy_set(cfg.policy_dir)
    ctx = make_context(agency, datetime.now(UTC), load_config(), Vocabulary.from_policy(policy))
    checked = check_change(change, ctx, policy.partners)
    keystore = Keystore(cfg.keys / "agencies" / agency)
    mac = keystore.load_agency_mac(agency)
    if callable(conn):
        conn = conn()
    names = TopicNames(cfg.topic_prefix)
    topic = names.ingress(agency)
    found = (await find_latest(conn, topic, alert_id, agency, own_mac_lookup(keystore, agency),
                               own_originator(cfg, agency, policy.home_country))).for_change(checked.action)
    if found.alert is None:
        raise _not_found(alert_id, topic, found, cfg, keystore)
    if found.differs is not None and checked.action != "RECALL":  # a recall withdraws whichever copy was taken
        first, other = found.differs
        raise ConfigError(f"{alert_id}: version {found.rank[0]} is on {topic} twice with different content (offsets "
                          f"{first} and {other}), and a change built on the copy the broker refused would undo the "
                          f"other: see which it decided with `puente audit log --alert {alert_id}`, then publish the "
                          "next version from the agency's own system with `puente adapt`")
    new = next_of(found, checked)
    if (checked.action != "RECALL" and found.rank[1] not in found.past_bound
            and (broken := lifecycle_problem(found.alert)) is not None):
        # A content version whose lifecycle breaks a rule (no action, a consent its markings do not name): the broker
        # refused it, or took it as a change no one can tell and withdrew the alert (``admissible``); a version built
        # on it would release that content again in the officer's name. A recall is still built on it.
        raise ConfigError(f"{alert_id}: version {found.rank[0]} on {topic} breaks a rule of its lifecycle ({broken}), "
                          "so the broker refused it or withdrew the alert for it, and a change built on it would "
                          "release its content again: publish the next version from the agency's own system with "
                          "`puente adapt`")
    if checked.action != "RECALL" and (unsound := (found.past_bound.get(found.rank[1])
                                                   or content_problem(new, datetime.now(UTC)))) is not None:
        # A copy published before a content rule (``schemas.bounds``, the hidden characters, the sanity rules): the
        # broker would take this version for one that breaks it, withhold it from everyone and pull the alert back,
        # the opposite of a consent.
        raise ConfigError(f"{alert_id}: version {found.rank[0]} breaks a rule the broker now holds alerts to "
                          f"({unsound}), so a change built on it would withdraw the alert from every partner: publish "
                          "the next version from the agency's own system with `puente adapt`")
    async with IngressPublisher(conn, agency, mac.key_id, mac, names) as publisher:
        await publisher.publish([new])
    life = new["lifecycle"]
    return Published(alert_id, new["version"], life["action"], life["reason"], tuple(life["partners"]),
                     changed_markings(found.alert, new) if checked.action == "RECLASSIFY" else {})
