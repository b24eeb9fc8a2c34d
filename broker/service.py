"""Wiring: build the pipeline and the worker from settings, the keystore and the policy set."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto import (
    FeedSealer,
    KeyKind,
    Keystore,
    parse_key_id,
    sign_checkpoint,
    verify_checkpoint,
    verify_ingress,
)
from broker.pipeline import Pipeline
from broker.topics import Slots, TopicNames, slots_for
from broker.worker import BrokerWorker, WorkerConfig
from policies import Decision, PolicySet, build_view, decide, decide_many, load_policy_set
from puente.errors import KeyMaterialError, OriginError, SignatureError
from puente.settings import PuenteSettings
from schemas import alert_codec


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
        "redacted": [{"field": r.path, "action": r.action} for r in decision.redactions] if delivered else [],
        "policy_version": decision.policy_version,
    }


class PolicyAdapter:
    """The policy layer behind the pipeline's PolicyPort, with pseudonym keys from the keystore."""

    def __init__(self, policy_set: PolicySet, keystore: Keystore, names: TopicNames) -> None:
        self.policy_set = policy_set
        self.names = names
        self._pseudo: dict[str, bytes | None] = {}
        self.keystore = keystore
        self._routed: dict[int, RoutedDecision] = {}

    @property
    def version(self) -> str:
        return self.policy_set.version

    def partners(self) -> Sequence[tuple[str, str]]:
        return [(p.id, self.names.feed(p.feed_topic)) for p in sorted(self.policy_set.partners.values(),
                                                                       key=lambda p: p.id)]

    def decide(self, alert: dict[str, Any], partner: str, now: datetime) -> RoutedDecision:
        return self._routed_for(decide(alert, partner, self.policy_set, now))

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime) -> list[RoutedDecision]:
        return [self._routed_for(d) for d in decide_many(alert, partners, self.policy_set, now)]

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
        inner: Decision = decision.decision
        agreement = inner.agreement_id or ""
        if agreement not in self._pseudo:
            try:
                self._pseudo[agreement] = self.keystore.load_pseudonym_key(agreement).reveal()
            except KeyMaterialError:
                self._pseudo[agreement] = None
        key = self._pseudo[agreement]
        if key is None:
            raise KeyMaterialError(f"no pseudonymisation key for agreement {agreement}")
        return build_view(alert, inner, self.policy_set, key)


def feed_retention(policy_set: PolicySet, names: TopicNames) -> dict[str, int]:
    """Each feed topic's retention in days: the shortest any of its partner's agreements allows."""
    out: dict[str, int] = {}
    for agreement in policy_set.agreements.values():
        for pid in agreement.partner_ids:
            partner = policy_set.partners.get(pid)
            if partner is None:
                continue
            topic = names.feed(partner.feed_topic)
            out[topic] = min(out.get(topic, agreement.retention_days), agreement.retention_days)
    for partner in policy_set.partners.values():
        out.setdefault(names.feed(partner.feed_topic), 1)  # no agreement: nothing to keep
    return out


def build_sealers(policy_set: PolicySet, keystore: Keystore) -> tuple[dict[str, FeedSealer], list[str]]:
    """A sealer per partner whose encryption key is in the keystore, and the problems for the rest."""
    signing = keystore.load_signing_key()
    sealers: dict[str, FeedSealer] = {}
    problems = []
    for partner in policy_set.partners.values():
        if not partner.encryption_key_id:
            problems.append(f"{partner.id}: no encryption key id in the policy; its alerts are withheld")
            continue
        try:
            public = keystore.load(partner.encryption_key_id, KeyKind.PARTNER_ENCRYPTION).x25519_public()
        except KeyMaterialError as exc:
            problems.append(f"{partner.id}: {exc}; its alerts are withheld")
            continue
        sealers[partner.id] = FeedSealer(partner.id, public, signing)
    return sealers, problems


def signature_check(keystore: Keystore, *kinds: KeyKind) -> Callable[[str, bytes, bytes], bool]:
    """(signer id, payload, signature) -> valid, for every generation of the signing keys of
    ``kinds`` in ``keystore``: a chain signed before a key rotation still verifies."""
    return checker({k: keystore.load(k).ed25519_public() for k in keystore.key_ids() if parse_key_id(k).kind in kinds})


def checker(keys: Mapping[str, Ed25519PublicKey]) -> Callable[[str, bytes, bytes], bool]:
    """(signer id, payload, signature) -> whether ``keys[signer]`` made that checkpoint signature."""

    def verify(signer: str, payload: bytes, sig: bytes) -> bool:
        key = keys.get(signer)
        if key is None:
            return False
        try:
            verify_checkpoint(key, payload, sig)
        except SignatureError:
            return False
        return True

    return verify


def build_worker(settings: PuenteSettings, *, client_suffix: str = "") -> tuple[BrokerWorker, list[str], list[str]]:
    """A worker ready to run, the ingress topics it consumes, and key problems to report."""
    keystore = Keystore(settings.keys / "broker")
    policy_set = load_policy_set(settings.policy_dir)
    slots: Slots = slots_for(settings)
    names = slots.names
    sealers, problems = build_sealers(policy_set, keystore)
    lookup = keystore.agency_mac_lookup()

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        proven = verify_ingress(list(headers), value, lookup)
        if proven.alert_id != key:
            raise OriginError("the MAC-protected alert id differs from the record key")
        return proven.agency, proven.published_ms

    pipeline = Pipeline(PolicyAdapter(policy_set, keystore, names), alert_codec(), dict(sealers), origin, slots,
                        replay_window_days=settings.replay_window_days)
    signing = keystore.load_signing_key()
    signer_id = keystore.current("broker", KeyKind.BROKER_SIGNING).key_id

    def sign(payload: bytes) -> bytes:
        return sign_checkpoint(signing, payload)

    config = WorkerConfig(
        bootstrap=settings.bootstrap, group_id=settings.broker_group, slots=slots, max_batch=settings.max_batch,
        replay_window_days=settings.replay_window_days, signer_id=signer_id,
        client_id=f"puente-broker{client_suffix}", verify=signature_check(keystore, KeyKind.BROKER_SIGNING),
    )
    topics = [names.ingress(a) for a in settings.agencies]
    return BrokerWorker(config, pipeline, sign), topics, problems
