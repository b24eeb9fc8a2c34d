"""``topics apply``: make Kafka's topics what the plan says, change only what Puente owns, check every result.

Idempotent and incremental. A missing topic is created with its partitions, replication and the
settings Puente owns (``TopicSpec.config``); an existing one gets only those settings changed,
one by one (IncrementalAlterConfigs), so a setting an operator changed by hand on a key Puente
does not own is left as it is. Every create and alter has its own result, and each is checked:
a topic Kafka refused (a replication factor larger than the cluster, an ACL) is reported as
failed, never as created.

Partition counts: a topic whose partitions carry meaning (``TopicSpec.fixed``: an ingress
partition is a slot, with its replay window and its audit chain; a receipts partition holds
whole receipt chains) is never grown or shrunk by apply, which refuses and explains instead.
Others grow to the planned count; Kafka cannot remove partitions, so more than planned is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

from broker.kafka.admin import Admin
from broker.topology import DAY_MS, TopicNames, TopicSpec, feed_retention, lifecycle_retention_days, slots_for
from policies import PolicySet
from puente.errors import KafkaError
from puente.settings import PuenteSettings

Action = Literal["created", "updated", "unchanged", "failed", "refused"]


@dataclass(frozen=True)
class TopicResult:
    """What ``apply`` did to one topic, and the details a person needs (keys changed, or why it failed)."""

    spec: TopicSpec
    action: Action
    detail: str = ""
    changed: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.action in ("created", "updated", "unchanged")


def plan_topics(settings: PuenteSettings, policy_set: PolicySet) -> list[TopicSpec]:
    """Every topic Puente needs, as the settings and the policy shape them (a feed's retention is the
    shortest its partner's agreements allow)."""
    names = TopicNames(settings.topic_prefix)
    rf, isr = settings.replication, str(settings.effective_min_insync)
    base = {"min.insync.replicas": isr}
    slots = slots_for(settings.agencies, settings.ingress_partitions, settings.topic_prefix).count
    specs = [
        # LogAppendTime: the broker's replay window is measured against the time Kafka appended
        # each record, which a producer replaying an old record cannot set.
        TopicSpec(names.ingress(a), settings.ingress_partitions, rf,
                  {**base, "retention.ms": str(settings.ingress_retention_days * DAY_MS),
                   "message.timestamp.type": "LogAppendTime"}, "ingress", fixed=True)
        for a in settings.agencies
    ]
    specs += [
        TopicSpec(topic, settings.feed_partitions, rf, {**base, "retention.ms": str(days * DAY_MS)}, "feed")
        for topic, days in sorted(feed_retention(policy_set, names).items())
    ]
    audit = {**base, "retention.ms": str(settings.audit_retention_days * DAY_MS)}
    dead = {**base, "retention.ms": str(settings.deadletter_retention_days * DAY_MS)}
    specs += [TopicSpec(names.decisions, slots, rf, audit, "decisions")]
    # Compacted: the latest state of each alert, for as long as a partner may hold it.
    lifecycle_days = lifecycle_retention_days(policy_set, settings.replay_window_days)
    specs += [TopicSpec(names.lifecycle, slots, rf, {**base, "cleanup.policy": "compact,delete",
                                                      "retention.ms": str(lifecycle_days * DAY_MS)},
                        "lifecycle", fixed=True)]
    # One partition per partner's receipts: its chains stay whole, and only it may write there.
    specs += [TopicSpec(names.receipts(p), 1, rf, audit, "receipts", fixed=True) for p in sorted(policy_set.partners)]
    specs += [
        TopicSpec(names.denials, 1, rf, audit, "denials", fixed=True),
        # One chain, written by the one console of a deployment (its transactional id fences another).
        TopicSpec(names.queries, 1, rf, audit, "queries", fixed=True),
        TopicSpec(names.deadletter, settings.ingress_partitions, rf, dead, "dead-letter"),
    ]
    specs += [TopicSpec(names.adapter_deadletter(a), 1, rf, dead, "dead-letter") for a in settings.agencies]
    return specs


async def apply_topics(admin: Admin, specs: list[TopicSpec]) -> list[TopicResult]:
    """Create or update every topic in ``specs``; one result each, in the order given."""
    timeout = admin.conn.timeout_s
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=timeout))
    existing = {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}
    missing = [s for s in specs if s.name not in existing]
    results: dict[str, TopicResult] = {}
    if missing:
        results.update(await _create(admin, missing))
    present = [s for s in specs if s.name in existing]
    if present:
        results.update(await _update(admin, present, existing))
    return [results[s.name] for s in specs]


async def _create(admin: Admin, specs: list[TopicSpec]) -> dict[str, TopicResult]:
    timeout = admin.conn.timeout_s
    new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=dict(s.config))
           for s in specs]
    futures = await admin.call("creating topics", lambda c: c.create_topics(new, operation_timeout=timeout,
                                                                           request_timeout=timeout))
    done = await admin.results("creating topics", futures)
    out = {}
    for spec in specs:
        outcome = done.get(spec.name)
        if isinstance(outcome, KafkaError):
            out[spec.name] = TopicResult(spec, "failed", _short(outcome))
        else:
            made = f"{spec.partitions} partitions, replication {spec.replication}"
            out[spec.name] = TopicResult(spec, "created", made)
    return out


async def _update(admin: Admin, specs: list[TopicSpec], partitions: dict[str, int]) -> dict[str, TopicResult]:
    timeout = admin.conn.timeout_s
    resources = {s.name: ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs}
    described = await admin.results("describing topic settings", await admin.call(
        "describing topic settings", lambda c: c.describe_configs(list(resources.values()), request_timeout=timeout)))
    out: dict[str, TopicResult] = {}
    alters: dict[str, list[str]] = {}
    grow: dict[str, int] = {}
    notes: dict[str, str] = {}
    for spec in specs:
        have = partitions[spec.name]
        current = described.get(resources[spec.name])
        if isinstance(current, KafkaError):
            out[spec.name] = TopicResult(spec, "failed", _short(current))
            continue
        if have != spec.partitions and (spec.fixed or have < spec.partitions):
            if spec.fixed:
                out[spec.name] = TopicResult(spec, "refused", _fixed_reason(spec, have))
                continue
            grow[spec.name] = spec.partitions
        elif have > spec.partitions:
            notes[spec.name] = f"keeps its {have} partitions (planned {spec.partitions}; Kafka cannot remove any)"
        values = {name: entry.value for name, entry in (current or {}).items()}
        changed = [k for k, v in spec.config.items() if values.get(k) != v]
        if changed:
            alters[spec.name] = changed
    if alters:
        by_spec = {s.name: s for s in specs}
        requests = [ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(k, by_spec[name].config[k], incremental_operation=AlterConfigOpType.SET) for k in keys])
            for name, keys in alters.items()]
        done = await admin.results("changing topic settings", await admin.call(
            "changing topic settings", lambda c: c.incremental_alter_configs(requests, request_timeout=timeout)))
        for resource, outcome in done.items():
            if isinstance(outcome, KafkaError):
                out[resource.name] = TopicResult(by_spec[resource.name], "failed", _short(outcome))
    if grow:
        wanted = [NewPartitions(name, count) for name, count in grow.items()]
        done = await admin.results("adding partitions", await admin.call(
            "adding partitions", lambda c: c.create_partitions(wanted, request_timeout=timeout)))
        for name, outcome in done.items():
            if isinstance(outcome, KafkaError):
                out[name] = TopicResult(next(s for s in specs if s.name == name), "failed", _short(outcome))
    for spec in specs:
        if spec.name in out:
            continue
        keys = tuple(alters.get(spec.name, ()))
        parts = ([f"partitions {partitions[spec.name]} -> {grow[spec.name]}"] if spec.name in grow else [])
        parts += [f"{k}={spec.config[k]}" for k in keys]
        action: Action = "updated" if parts else "unchanged"
        out[spec.name] = TopicResult(spec, action, ", ".join(parts) or notes.get(spec.name, ""), keys)
    return out


def _fixed_reason(spec: TopicSpec, have: int) -> str:
    why = {
        "ingress": "each ingress partition is a broker slot, with its own replay window and audit chain: a "
                   "different count would move alerts to other slots",
        "receipts": "a partner's receipt chains live in its one partition: another count would split them",
        "denials": "the collected denials are one chain in one partition",
    }.get(spec.role, "its partitions carry meaning")
    return (f"has {have} partitions, the settings say {spec.partitions}; refused: {why}. Keep the setting at "
            f"{have}, or move to new topics under another PUENTE_TOPIC_PREFIX")


def _short(error: Any) -> str:
    return str(error)[:300]
