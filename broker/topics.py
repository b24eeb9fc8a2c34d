"""Puente's topics: their names, their shapes, and ``apply`` that creates or updates them idempotently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from puente.settings import PuenteSettings

if TYPE_CHECKING:
    from broker.audit.verify import Holds

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicNames:
    """Every topic name, derived from one prefix."""

    prefix: str = "puente"

    def ingress(self, agency: str) -> str:
        return f"{self.prefix}.ingress.{agency}"

    def feed(self, policy_topic: str) -> str:
        """A partner's feed topic: the policy's name, under this prefix when it is not the default.

        Policies name feeds ``puente.feed.<PARTNER>``; a deployment (or a test) with another
        prefix keeps them apart by swapping the first component.
        """
        head, _, rest = policy_topic.partition(".")
        return policy_topic if self.prefix == head or not rest else f"{self.prefix}.{rest}"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}.audit.decisions"

    @property
    def access(self) -> str:
        return f"{self.prefix}.audit.access"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    def audit_roles(self) -> dict[str, Holds]:
        """The audit topics and what each holds, as ``audit verify`` walks them."""
        return {self.decisions: "decisions", self.access: "receipts"}


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it should be."""

    name: str
    partitions: int
    replication: int
    config: Mapping[str, str] = field(default_factory=dict)
    role: str = ""


@dataclass(frozen=True)
class Slots:
    """Maps each ingress (topic, partition) to one slot: its audit partition and its producer."""

    agencies: tuple[str, ...]
    partitions: int
    names: TopicNames

    @property
    def count(self) -> int:
        return len(self.agencies) * self.partitions

    def slot(self, topic: str, partition: int) -> int | None:
        for i, agency in enumerate(self.agencies):
            if topic == self.names.ingress(agency):
                return i * self.partitions + partition if partition < self.partitions else None
        return None

    def agency_of(self, topic: str) -> str | None:
        for agency in self.agencies:
            if topic == self.names.ingress(agency):
                return agency
        return None


def slots_for(settings: PuenteSettings) -> Slots:
    return Slots(settings.agencies, settings.ingress_partitions, TopicNames(settings.topic_prefix))


def plan_topics(settings: PuenteSettings, feeds: Mapping[str, int]) -> list[TopicSpec]:
    """Every topic Puente needs; ``feeds`` maps each partner feed topic to its retention in days."""
    names = TopicNames(settings.topic_prefix)
    rf, isr = settings.replication, str(settings.effective_min_insync)
    base = {"min.insync.replicas": isr}
    slots = slots_for(settings).count
    specs = [
        # LogAppendTime: the broker's replay window is measured against the time Kafka appended
        # each record, which a producer replaying an old record cannot set.
        TopicSpec(names.ingress(a), settings.ingress_partitions, rf,
                  {**base, "retention.ms": str(settings.ingress_retention_days * DAY_MS),
                   "message.timestamp.type": "LogAppendTime"}, "ingress")
        for a in settings.agencies
    ]
    specs += [
        TopicSpec(topic, settings.feed_partitions, rf,
                  {**base, "retention.ms": str(days * DAY_MS)}, "feed")
        for topic, days in sorted(feeds.items())
    ]
    audit = {**base, "retention.ms": str(settings.audit_retention_days * DAY_MS)}
    specs += [
        TopicSpec(names.decisions, slots, rf, audit, "audit"),
        TopicSpec(names.access, settings.feed_partitions, rf, audit, "audit"),
        TopicSpec(names.deadletter, settings.ingress_partitions, rf,
                  {**base, "retention.ms": str(settings.deadletter_retention_days * DAY_MS)}, "dead-letter"),
    ]
    return specs


async def apply_topics(bootstrap: str, specs: list[TopicSpec]) -> list[tuple[TopicSpec, str]]:
    """Create missing topics, update the configuration of existing ones, and add partitions where fewer.

    Returns each spec with what was done: created, updated, or unchanged. Running it twice changes nothing.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        done: list[tuple[TopicSpec, str]] = []
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config)) for s in missing]
            )
            done += [(s, "created") for s in missing]
        present = [s for s in specs if s.name in existing]
        if present:
            described = {d["topic"]: d for d in await admin.describe_topics([s.name for s in present])}
            resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in present]
            current = await admin.describe_configs(resources)
            values = _config_values(current)
            grow = {}
            for spec in present:
                have = len(described[spec.name]["partitions"])
                changed = any(values.get(spec.name, {}).get(k) != v for k, v in spec.config.items())
                if have < spec.partitions:
                    grow[spec.name] = NewPartitions(spec.partitions)
                if changed:
                    await admin.alter_configs(
                        [ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=dict(spec.config))]
                    )
                done.append((spec, "updated" if changed or have < spec.partitions else "unchanged"))
            if grow:
                await admin.create_partitions(grow)
        return done
    finally:
        await admin.close()


def _config_values(responses: list[object]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in getattr(response, "resources", []):
            # (error_code, error_message, resource_type, resource_name, config_entries)
            name, entries = resource[3], resource[4]
            out[name] = {entry[0]: entry[1] for entry in entries}
    return out
