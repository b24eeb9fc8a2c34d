"""The broker service: build the pipeline and the workers from settings, the keystore and the
policy set, check the topology is there, and run them with their metrics endpoint.

The policy set and the partners' sealing keys are read once, at start; there is no reload while
running, so a policy or key change takes a restart, and every start checks the keys again: it
refuses while a partner that an agreement in force delivers to has no usable sealing key
(``require_sealers``), rather than withhold that partner's alerts for good."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.recalls import DEFAULT_ACK_HOURS, deadline_hours
from broker.crypto import FeedSealer, KeyKind, sign_checkpoint, verify_ingress
from broker.kafka import Admin, KafkaConnection, check_audit_retention, topic_settings
from broker.keystore import Keystore, others_keys_problem, signature_check
from broker.metrics import Metrics, metrics_token, serve_metrics
from broker.pipeline import MissingDeliveryKey, Originator, Pipeline
from broker.topology import DAY_MS, Slots, TopicNames, lifecycle_retention_days, slots_for
from broker.worker import BrokerWorker, WorkerConfig
from policies import (
    DEFAULT_DIR,
    Decision,
    PolicySet,
    alert_reference,
    build_view,
    decide_many,
    load_policy_set,
    recall_notice,
)
from puente import logs
from puente.errors import ConfigError, KafkaAccessError, KeyMaterialError, OriginError
from puente.settings import PuenteSettings
from puente.signals import forget_stop_signals, on_stop_signals
from schemas import alert_codec

log = logs.get("puente.broker")


@dataclass(frozen=True, slots=True)
class RoutedDecision:
    """A policy decision in the shape the pipeline reads, with its audit fields built once.

    Built once per distinct decision and shared, so every field the pipeline reads per alert is
    a plain attribute rather than a property.
    """

    decision: Decision
    audit: dict[str, Any]
    partner: str
    outcome: str
    agreement: str | None
    rules: Sequence[str]
    reasons: Sequence[str]
    redactions: Sequence[tuple[str, str]]
    policy_version: str

    @classmethod
    def of(cls, decision: Decision) -> RoutedDecision:
        return cls(decision, _audit_fields(decision), decision.partner_id, decision.outcome.value,
                   decision.agreement_id, decision.rule_ids, decision.reasons,
                   [(r.path, r.action) for r in decision.redactions], decision.policy_version)


ROUTED_LIMIT = 50_000


def _audit_fields(decision: Decision) -> dict[str, Any]:
    """What the audit records of one decision: never alert content beyond what the reasons name."""
    delivered = decision.outcome.value != "WITHHOLD"
    return {
        "partner": decision.partner_id,
        "decision": decision.outcome.value,
        "agreement": decision.agreement_id,
        "rules": list(decision.rule_ids),
        "reasons": list(decision.reasons),
        # Each change names the rule behind it (the policy-wide rule for fields no rule names), so an
        # auditor can answer "why did this partner not get that field" from the audit alone.
        "redacted": [{"field": r.path, "action": r.action, "rule": r.rule_id, **({} if r.named else {"named": False})}
                     for r in decision.redactions] if delivered else [],
        "policy_version": decision.policy_version,
        # Whether the partner may pass it on; when not, its view is releasable to it alone (``build_view``).
        **({"onward_sharing": decision.onward_sharing} if delivered else {}),
    }


class PolicyAdapter:
    """The policy layer behind the pipeline's PolicyPort, with pseudonym keys from the keystore."""

    def __init__(self, policy_set: PolicySet, keystore: Keystore, names: TopicNames) -> None:
        self.policy_set = policy_set
        self.names = names
        self._pseudo: dict[str, bytes | None] = {}
        self._reference_key: bytes | None = None
        self.keystore = keystore
        self._routed: dict[int, RoutedDecision] = {}
        self._ack_hours = deadline_hours(policy_set.agreements.values())

    @property
    def version(self) -> str:
        return self.policy_set.version

    def partners(self) -> Sequence[tuple[str, str]]:
        return [(p.id, self.names.feed(p.feed_topic)) for p in sorted(self.policy_set.partners.values(),
                                                                       key=lambda p: p.id)]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: datetime | None = None) -> list[RoutedDecision]:
        return [self._routed_for(d) for d in decide_many(alert, partners, self.policy_set, now, until)]

    def _routed_for(self, inner: Decision) -> RoutedDecision:
        # The policy shares equal decisions between alerts; so does this wrapper, with its audit fields.
        routed = self._routed.get(id(inner))
        if routed is None or routed.decision is not inner:
            if len(self._routed) >= ROUTED_LIMIT:
                self._routed.clear()
            routed = RoutedDecision.of(inner)
            self._routed[id(inner)] = routed
        return routed

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return build_view(alert, decision.decision, self.policy_set, self._pseudonym_key)

    def _pseudonym_key(self, agreement: str) -> bytes:
        """The agreement's own pseudonym key (asked for by ``build_view`` only where a rule pseudonymises)."""
        if agreement not in self._pseudo:
            try:
                self._pseudo[agreement] = self.keystore.load_pseudonym_key(agreement).reveal()
            except KeyMaterialError:
                self._pseudo[agreement] = None
        key = self._pseudo[agreement]
        if key is None:
            raise MissingDeliveryKey(f"the broker has no pseudonym key for agreement {agreement}, whose rules "
                                     "pseudonymise: it stopped without committing this record or any after it. Put "
                                     "the agreement's key in the broker's keystore (`puente policy lint --keys DIR` "
                                     "checks it) and start the broker again")
        return key

    def notice(self, alert: dict[str, Any], version: int, reason: str | None) -> dict[str, Any]:
        return recall_notice(alert, version, reason)

    def reference(self, partner: str, alert_id: str) -> str:
        """The id by which ``partner`` knows ``alert_id`` (``policies.alert_reference``), under the broker's
        alert-reference key; ``MissingDeliveryKey`` while the keystore holds none (``require_reference_key`` refuses
        to start without one, so only a key file that stopped loading since gets here)."""
        if self._reference_key is None:
            try:
                self._reference_key = self.keystore.load_reference_key().reveal()
            except KeyMaterialError as exc:
                raise MissingDeliveryKey(f"the broker has no usable alert-reference key ({exc}): it stopped without "
                                         "committing this record or any after it. Fix the key in the broker's "
                                         "keystore and start the broker again") from None
        return alert_reference(self._reference_key, partner, alert_id)

    def recall_ack_hours(self, partner: str) -> int:
        return self._ack_hours.get(partner, DEFAULT_ACK_HOURS)


def build_sealers(policy_set: PolicySet, keystore: Keystore, signing: Ed25519PrivateKey | None = None,
                  ) -> tuple[dict[str, FeedSealer], dict[str, str]]:
    """A sealer per partner whose own encryption key the keystore holds, and for every other
    partner why not: one line naming the key id (and file) and what to check. ``signing``: the broker's
    signing key already loaded (``build_worker``'s), else it is loaded here (``Keystore.load_signing_key``).

    Each sealer seals one trial record before it is handed out, so a key nothing can be sealed to
    is a start-up problem (``require_sealers``), never a WITHHOLD of every alert to that partner;
    two partners whose keys are one public key get no sealer, since each would read the other's feed.
    """
    signing = keystore.load_signing_key() if signing is None else signing
    sealers: dict[str, FeedSealer] = {}
    problems: dict[str, str] = {}
    holders: dict[bytes, list[tuple[str, str]]] = {}
    for partner in policy_set.partners.values():
        key_id = partner.encryption_key_id
        if not key_id:
            problems[partner.id] = "the policy names no encryption key for it (partners.yaml, keys.encryption)"
            continue
        try:
            key = keystore.load_public(key_id, KeyKind.PARTNER_ENCRYPTION)
        except KeyMaterialError as exc:
            missing = not (keystore.path / f"{key_id}.json").exists()
            problems[partner.id] = str(exc) + (
                f"; import {partner.id}'s public half with `puente keys import-public FILE.pem --id {key_id} "
                f"--dir {keystore.path}`" if missing else "")
            continue
        if key.owner != partner.id:  # a policy typo must not seal one partner's feed to another's key
            problems[partner.id] = (f"its encryption key {key.key_id} is {key.owner}'s, not its own: correct "
                                    "keys.encryption in partners.yaml")
            continue
        public = key.x25519_public()
        problem = _trial_seal(partner.id, key.key_id, FeedSealer(partner.id, public, signing))
        if problem:
            problems[partner.id] = problem
            continue
        sealers[partner.id] = FeedSealer(partner.id, public, signing)
        holders.setdefault(public.public_bytes_raw(), []).append((partner.id, key.key_id))
    for shared in (found for found in holders.values() if len(found) > 1):
        for partner_id, key_id in shared:
            others = ", ".join(f"{p}'s {k}" for p, k in shared if p != partner_id)
            sealers.pop(partner_id)
            problems[partner_id] = (f"its encryption key {key_id} is the same public key as {others}: one partner "
                                    "would read the other's feed; re-import each partner's own PEM under a new "
                                    f"generation (`puente keys import-public FILE.pem --id {partner_id}-enc-<g> "
                                    f"--dir {keystore.path}`) and name it in partners.yaml")
    return sealers, problems


def _trial_seal(partner: str, key_id: str, sealer: FeedSealer) -> str | None:
    """Why ``sealer`` cannot seal, or None. A throwaway sealer is tried, not the one handed out: the trial
    record's data key must not become the first one the partner's feed is sealed under."""
    try:
        sealer.seal(b"", alert_id="puente-start-up-trial", topic="puente-start-up-trial", schema_fp=bytes(8),
                    policy_version="trial", agreement="", now=datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001 - whatever stops a seal must stop the start, not each alert
        said = " ".join(str(exc).split())[:120]
        return (f"nothing can be sealed to its encryption key {key_id} ({type(exc).__name__}: {said}): ask "
                f"{partner} for the public half of a new key and import it under a new generation")
    return None


def agreements_in_force(policy_set: PolicySet, now: datetime) -> dict[str, list[str]]:
    """Partner id -> the ids of the agreements in force at ``now`` that deliver to it."""
    found: dict[str, list[str]] = {}
    for agreement in sorted(policy_set.agreements.values(), key=lambda a: a.id):
        if agreement.starts <= now < agreement.ends:
            for partner in agreement.partner_ids:
                found.setdefault(partner, []).append(agreement.id)
    return found


def require_sealers(policy_set: PolicySet, problems: Mapping[str, str], keys_dir: Path, now: datetime) -> list[str]:
    """Refuse (ConfigError, one line) while a partner that an agreement in force delivers to has no
    usable sealing key; else the warnings for the partners with a key problem that none delivers to.

    Why refuse rather than run: the alternative was to withhold that partner's alerts at delivery,
    commit the ingress offsets past them and carry on, and nothing would ever deliver them once
    the key was fixed. Refusing loses nothing: the records wait in the ingress topics. A partner
    with a key problem and no agreement in force is only warned about (its recall notices cannot
    be sealed, and the audit says so per notice); should one of its agreements come into force
    while the broker runs, the pipeline stops the worker before committing (``MissingDeliveryKey``).
    """
    in_force = agreements_in_force(policy_set, now)
    blocking = [f"{partner} (agreement {', '.join(in_force[partner])} in force delivers to it): {problem}"
                for partner, problem in sorted(problems.items()) if partner in in_force]
    if blocking:
        raise ConfigError(
            f"the broker will not start while a partner it must deliver to has no usable sealing key, or that "
            f"partner's alerts would be withheld for good: {'; '.join(blocking)}. Fix the key in {keys_dir} "
            f"(`puente policy lint --keys {keys_dir}` checks every partner key) and start it again; nothing was read")
    return [f"{partner}: {problem}; no agreement in force delivers to it now, so only recall notices to it cannot be "
            "sealed (the audit says so), and the broker stops if one of its agreements comes into force"
            for partner, problem in sorted(problems.items())]


def require_pseudonym_keys(policy_set: PolicySet, keystore: Keystore, now: datetime) -> None:
    """Refuse (ConfigError, one line) while an agreement in force whose rules pseudonymise has no
    usable pseudonym key in ``keystore``: each view under it would fail, for the same reason as a
    missing sealing key (``require_sealers``). One that comes into force while the broker runs
    stops the worker before committing (``MissingDeliveryKey``, from ``PolicyAdapter.view``)."""
    needed = sorted({c.agreement.id for c in policy_set.covers.values()
                     if c.pseudonymises and c.agreement.starts <= now < c.agreement.ends})
    missing = []
    for agreement in needed:
        try:
            keystore.load_pseudonym_key(agreement)
        except KeyMaterialError as exc:
            missing.append(f"{agreement}: {exc}")
    if missing:
        raise ConfigError(
            f"the broker will not start while an agreement in force that pseudonymises has no usable pseudonym key, "
            f"or its partners' alerts would be withheld for good: {'; '.join(missing)}. Make or fix the key in "
            f"{keystore.path} (`puente policy lint --keys {keystore.path}` checks it) and start it again; nothing "
            "was read")


def require_reference_key(keystore: Keystore) -> None:
    """Refuse (ConfigError, one line) while the broker's keystore holds no usable alert-reference key
    (``Keystore.load_reference_key``): no partner could be given an alert without it, since a partner never
    gets an agency's own alert id (``policies.alert_reference``)."""
    try:
        keystore.load_reference_key()
    except KeyMaterialError as exc:
        raise ConfigError(
            f"the broker will not start without its alert-reference key, which names each alert to each partner: "
            f"{exc}. Restore it from the keystore's backup if it was lost (a new one gives every alert partners hold "
            "a new id); a keystore made before references makes it with `puente keys generate --for broker "
            f"--generation G --missing-only --dir {keystore.path}`, G being the generation of the broker's keys in "
            "use; nothing was read") from None


def require_custody(keystore: Keystore, root: Path) -> None:
    """Refuse (ConfigError, one line) while the broker's folder holds another party's private half, one public
    key under two owners' ids, or a file no one can tell the owner of (``Keystore.broker_custody_problems``):
    checked over every file, not only the keys the broker loads, since a key it holds but never loads is
    still leaked, and one it loads under two names lets one party act as another. Refused too while the keys
    root ``root`` (``PUENTE_KEYS``) holds another party's private keys beside the broker's folder and is no
    single-site trial's (``others_keys_problem``): made on the broker's machine, whatever the order they were
    made in, they are in the broker operator's hands as much as if they were in its folder."""
    problems = keystore.broker_custody_problems()
    if problems:
        raise ConfigError(f"the broker will not start from {keystore.path}: {'; '.join(problems)}. `puente policy "
                          f"lint --keys {keystore.path}` lists every such file; nothing was read")
    problem = others_keys_problem(root)
    if problem is not None:
        raise ConfigError(f"the broker will not start from {keystore.path}: {problem}; nothing was read")


def build_worker(settings: PuenteSettings, conn: KafkaConnection, *, client_suffix: str = "",
                 group_instance_id: str | None = None, policy_set: PolicySet | None = None,
                 accept_gaps: bool = False, audit_kept_forever: bool,
                 ) -> tuple[BrokerWorker, list[str], list[str]]:
    """A worker ready to run, the ingress topics it consumes, and key problems to report.

    Refuses (ConfigError) while the broker's folder holds a key it must not (``require_custody``), or a
    partner an agreement in force delivers to has no usable sealing key (``require_sealers``); the key
    problems returned are the other partners'.
    ``policy_set``: the one already loaded (``settings.policy_dir``'s), else it is read here.
    ``audit_kept_forever``: what ``check_topology`` found (``WorkerConfig.audit_kept_forever``), stated by every
    caller (no default: a worker told nothing would read a slot emptied on a topic kept for ever as expiry); a
    worker built before that check is given it after.
    """
    keystore = Keystore(settings.keys / "broker")
    require_custody(keystore, settings.keys)
    policy_set = load_policy_set(settings.policy_dir) if policy_set is None else policy_set
    slots: Slots = slots_for(settings.agencies, settings.ingress_partitions, settings.topic_prefix)
    names = slots.names
    # Read once, refused here (``broker_signing_keys``) before any sealer is built, as ``load_signing_key`` would be.
    signing_keys = keystore.broker_signing_keys()
    signing = signing_keys[0].ed25519_private()
    sealers, key_problems = build_sealers(policy_set, keystore, signing)
    started = datetime.now(UTC)
    problems = require_sealers(policy_set, key_problems, keystore.path, started)
    require_pseudonym_keys(policy_set, keystore, started)
    require_reference_key(keystore)
    # A key imported while it runs is taken, not dead-lettered against; a key file that stops loading is left out.
    lookup = keystore.fresh_agency_mac_lookup(
        on_problem=lambda problem: log.warning("agency key file left out", problem=problem))

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        proven = verify_ingress(list(headers), value, lookup)
        if proven.alert_id != key:
            raise OriginError("the MAC-protected alert id differs from the record key")
        return proven.agency, proven.published_ms

    home = [a for a in settings.agency_units if settings.agency_countries.get(a) == policy_set.home_country]
    if home:  # the settings cannot know the policy's country: named so, an agency relays nothing, and says so
        raise ConfigError(f"PUENTE_AGENCY_UNITS names units of {', '.join(home)}, an agency of the policy's home "
                          f"country ({policy_set.home_country}), which names itself and relays no units: remove them")
    originators = {a: Originator.of(a, settings.agency_countries.get(a, policy_set.home_country),
                                    policy_set.home_country, settings.agency_units.get(a, ()))
                   for a in settings.agencies}
    pipeline = Pipeline(PolicyAdapter(policy_set, keystore, names), alert_codec(), dict(sealers), origin, slots,
                        replay_window_days=settings.replay_window_days, originators=originators,
                        lifecycle_retention_days=lifecycle_retention_days(policy_set, settings.replay_window_days),
                        classifications=policy_set.scale, areas=policy_set.areas.border_sectors)
    signer_id = signing_keys[0].key_id

    def sign(payload: bytes) -> bytes:
        return sign_checkpoint(signing, payload)

    config = WorkerConfig(
        conn=conn, group_id=settings.broker_group, slots=slots, max_batch=settings.max_batch,
        replay_window_days=settings.replay_window_days, signer_id=signer_id,
        client_id=f"puente-broker{client_suffix}", verify=signature_check(keystore, KeyKind.BROKER_SIGNING),
        generations=tuple(r.key_id for r in signing_keys),
        # Only keys made here: an imported half is dated when it was imported, and a key left out is taken as
        # possibly as old as the chain (``WorkerConfig.generations_made``).
        generations_made={r.key_id: int(r.created_at.timestamp() * 1000) for r in signing_keys if r.secret},
        max_concurrent_txns=settings.max_concurrent_txns, retry_backoff_ms=settings.producer_retry_backoff_ms,
        session_timeout_ms=settings.session_timeout_ms, heartbeat_interval_ms=settings.heartbeat_interval_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms, fetch_min_bytes=settings.fetch_min_bytes,
        stall_warning_s=settings.stall_warning_s, carry_wait_s=settings.feed_carry_wait_ms / 1000,
        group_instance_id=group_instance_id, accept_gaps=accept_gaps,
        audit_retention_days=settings.audit_retention_days, audit_kept_forever=audit_kept_forever,
    )
    topics = [names.ingress(a) for a in settings.agencies]
    return BrokerWorker(config, pipeline, sign), topics, problems


async def check_topology(settings: PuenteSettings, conn: KafkaConnection, policy_set: PolicySet | None = None,
                         ) -> bool:
    """Refuse to start unless every topic the broker reads or writes exists, with the ingress
    partitions the settings give and stamping Kafka's append time, a decisions and a lifecycle partition
    for each slot, and the lifecycle topic keeps states
    as long as the agreements need. Idling on a missing topic would hide a wrong prefix or a forgotten
    ``topics apply``: the operator would see a running broker that routes nothing. A lifecycle topic that deletes states
    sooner (``retention.ms`` shortened, or a ``retention.bytes`` limit) would let an alert recalled
    for good come back as a first publication: the pipeline takes a missing state for an alert no
    partner ever held unless its event is older than the retention it is told (``Pipeline``).
    ``policy_set``: as for ``build_worker``. Returns whether the decisions topic keeps its records for ever
    (``check_audit_retention``), which each worker's ``WorkerConfig.audit_kept_forever`` is then set to."""
    names = TopicNames(settings.topic_prefix)
    admin = Admin(conn)
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=conn.timeout_s))
    have = {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}
    policy_set = load_policy_set(settings.policy_dir) if policy_set is None else policy_set
    wanted = [names.ingress(a) for a in settings.agencies] + [names.decisions, names.deadletter, names.lifecycle]
    wanted += sorted({names.feed(p.feed_topic) for p in policy_set.partners.values()})
    missing = [t for t in wanted if t not in have]
    if missing:
        raise ConfigError(f"{len(missing)} of the broker's topics do not exist under prefix "
                          f"{settings.topic_prefix!r} ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): "
                          "run `puente topics apply`, or check PUENTE_TOPIC_PREFIX")
    for agency in settings.agencies:
        count = have[names.ingress(agency)]
        if count != settings.ingress_partitions:
            raise ConfigError(f"{names.ingress(agency)} has {count} partitions but PUENTE_INGRESS_PARTITIONS is "
                              f"{settings.ingress_partitions}: each partition is a slot; use the topics' count")
    slots = slots_for(settings.agencies, settings.ingress_partitions, settings.topic_prefix).count
    for topic in (names.decisions, names.lifecycle):
        # A partition per slot: a slot past the end (an agency added, `topics apply` not run since) would have
        # no audit chain or lifecycle states to load, and its worker would fail and restart until it gave up.
        if have[topic] < slots:
            raise ConfigError(f"{topic} has {have[topic]} partitions but the {len(settings.agencies)} agencies' "
                              f"ingress partitions make {slots} slots, one partition each: run `puente topics "
                              "apply`, or check PUENTE_AGENCIES and PUENTE_INGRESS_PARTITIONS")
    for agency in settings.agencies:
        await _check_append_time(admin, names.ingress(agency))
    await _check_append_time(admin, names.decisions, "the audit dates the broker's blocks by it, to tell a retired "
                                                     "key signing on")
    await _check_lifecycle_retention(admin, names.lifecycle,
                                     lifecycle_retention_days(policy_set, settings.replay_window_days))
    return await check_audit_retention(conn, names.decisions, settings.audit_retention_days, "the broker")


async def _check_append_time(admin: Admin, topic: str, why: str = "the replay checks need Kafka's append time",
                             ) -> None:
    """ConfigError unless ``topic`` stamps each record with Kafka's append time (``check_topology``). On an ingress
    topic, the replay window and the ``stale`` check measure a record's signed publication time against that stamp:
    on a topic that keeps the producer's own time (CreateTime), whoever may write it could replay an agency's signed
    record of months ago with a fresh stamp, and once its alert's state had aged out it would go out again. On the
    decisions topic, ``audit verify`` dates the broker's blocks by it (``broker.audit.verify.retired_keys``)."""
    try:
        held = await topic_settings(admin, topic)
    except KafkaAccessError:
        raise ConfigError(f"the broker's login may not read {topic}'s settings, which it checks before it starts: "
                          "run `puente acls apply`") from None
    if held.get("message.timestamp.type") != "LogAppendTime":
        found = str(held.get("message.timestamp.type"))[:40]
        raise ConfigError(f"{topic} keeps the producers' own times (message.timestamp.type={found}), but {why}: "
                          "run `puente topics apply`")


async def _check_lifecycle_retention(admin: Admin, topic: str, days: int) -> None:
    """ConfigError unless ``topic`` keeps every record at least ``days`` days (``check_topology``)."""
    try:
        held = await topic_settings(admin, topic)
    except KafkaAccessError:
        raise ConfigError(f"the broker's login may not read {topic}'s settings, which it checks before it starts: "
                          "run `puente acls apply`") from None
    kept_ms, limit = held.get("retention.ms"), held.get("retention.bytes")
    try:
        short = kept_ms is None or (int(kept_ms) != -1 and int(kept_ms) < days * DAY_MS)
        capped = limit is not None and int(limit) != -1
    except ValueError:
        short = capped = True
    if short or capped:
        kept = "by size (retention.bytes)" if capped and not short else f"for retention.ms={str(kept_ms)[:20]}"
        raise ConfigError(f"{topic} keeps alert states {kept}, but the agreements need them kept {days} days (the "
                          "longest any lets a partner keep an alert): run `puente topics apply`")


async def run_broker(settings: PuenteSettings, conn: KafkaConnection, workers: int, *,
                     exit_when_idle: float | None = None, metrics_port: int | None = None,
                     accept_gaps: bool = False) -> list[BrokerWorker]:
    """Run ``workers`` workers of one group in this process until SIGTERM or SIGINT (or idle).
    ``accept_gaps``: read on past ingress records retention deleted unread (``WorkerConfig``)."""
    metrics = Metrics()
    running: list[BrokerWorker] = []
    server = None
    if metrics_port:
        # Local configuration fails before anything remote is tried: a port in use is reported at once,
        # not after a Kafka timeout. /readyz answers 503 until the workers exist and have joined.
        server = await serve_metrics(metrics, settings.metrics_address, metrics_port,
                                     lambda: bool(running) and all(w.ready for w in running),
                                     hosts=settings.metrics_hosts, token=metrics_token(settings))
    try:
        # Read once for the check and every worker: reading the policy files is most of a start's own work.
        policy_set = load_policy_set(settings.policy_dir)
        # The workers are built first: a key problem is local and is said before Kafka is asked anything.
        built = [build_worker(settings, conn, client_suffix=f"-{i}", policy_set=policy_set,
                              group_instance_id=instance_id(settings.group_instance_id, i, workers),
                              accept_gaps=accept_gaps, audit_kept_forever=False)  # set below, once checked
                 for i in range(workers)]
        forever = await check_topology(settings, conn, policy_set)
        for problem in built[0][2]:
            log.warning("partner key problem", problem=problem)
        for worker, _, _ in built:
            worker.metrics = metrics
            worker.config = replace(worker.config, audit_kept_forever=forever)
        running.extend(w for w, _, _ in built)
        on_stop_signals(lambda: _stop_all(running), "the broker")
        # Which agreements it decides by, for whoever reads its log: the folder (PUENTE_POLICY_DIR, else the shipped,
        # illustrative one) and the version every decision names.
        log.info("broker starting", workers=workers, group=settings.broker_group, bootstrap=conn.bootstrap,
                 principal=conn.principal, instance=settings.group_instance_id,
                 policy=str(settings.policy_dir) if settings.policy_dir is not None else f"{DEFAULT_DIR} (shipped)",
                 policy_version=policy_set.version)
        async def run_one(worker: BrokerWorker, topics: list[str]) -> None:
            try:
                await worker.run(topics, idle_exit_s=exit_when_idle)
            except BaseException:
                _stop_all(running)  # the process ends: the others finish their batch in flight and stop
                raise

        try:
            results = await asyncio.gather(*(run_one(w, topics) for w, topics, _ in built), return_exceptions=True)
            failures = [result for result in results if isinstance(result, BaseException)]
            if failures:
                # A worker's error says what to check; another's CancelledError (one nobody asked for: the
                # command line reports it as an internal error) says nothing, and must not hide it.
                raise next((f for f in failures if not isinstance(f, asyncio.CancelledError)), failures[0])
        finally:
            forget_stop_signals()
    finally:
        if server:
            server.close()
    log.info("broker stopped", inputs=metrics.inputs)
    return running


def instance_id(name: str | None, index: int, workers: int) -> str | None:
    """The ``group.instance.id`` of worker ``index`` of ``workers`` in one process: the name itself for a
    lone worker, ``<name>-<index>`` for several, so that no two workers of the process share one."""
    if name is None:
        return None
    return name if workers == 1 else f"{name}-{index}"


def _stop_all(workers: list[BrokerWorker]) -> None:
    for worker in workers:
        worker.stop()
