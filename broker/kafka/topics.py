"""``topics plan`` and ``topics apply``: make Kafka's topics what the plan says, change only what Puente owns,
check every result.

Idempotent and incremental. A missing topic is created with its partitions, replication and every
setting Puente owns (``TopicSpec.owned``: the plan's retention, min ISR and largest batch, and the invariants
every topic carries: deletion by age only, no size limit, no unclean leader election). An existing
one gets only those settings changed, one by one (IncrementalAlterConfigs), so a setting an
operator changed by hand on a key Puente does not own is left as it is; one it owns that drifted
is set back, and named with the value it had, unless that would weaken the topic (``weakens``: a shorter
retention where the settings set it, a lower min ISR, producers' times): such a topic is refused, left as it
is, unless ``--allow-weaker`` (a feed's and the lifecycle topic's retention follow the agreements, and go down
with them; one kept for ever by hand, ``retention.ms=-1``, is kept). Every create and alter has its own result, and each
is checked: a topic Kafka refused (a replication factor larger than the cluster, an ACL) is
reported as failed, never as created. ``plan`` (``dry_run``) looks the same way and changes nothing.

What apply cannot change it refuses, and says so: a replication factor other than the plan's
(Kafka changes one only by reassigning partitions, an operator's decision), and the partition
count of a topic whose partitions carry meaning (``TopicSpec.fixed``: an ingress partition is a
slot, with its replay window and its audit chain; a receipts partition holds whole receipt chains). A feed's
count is kept as found, never grown (``TopicSpec.kept``: a delivery's partition is its key's among that count).
A topic refused for its shape still has what stops deletions set back (compaction or a size limit left in
force deletes audit records while the operator reassigns), never a weaker setting. While a topic is refused
for its shape no topic grows (the settings do not describe this cluster, and Kafka cannot remove a
partition); otherwise topics grow to the planned count, and more than planned is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

from broker.kafka.admin import Admin
from broker.kafka.clients import MAX_BATCH_BYTES
from broker.kafka.connection import KafkaConnection
from broker.topology import DAY_MS, TopicNames, TopicSpec, feed_retention, lifecycle_retention_days, slots_for
from policies import PolicySet
from puente.errors import ConfigError, KafkaAccessError, KafkaError
from puente.settings import PuenteSettings

Action = Literal["created", "updated", "unchanged", "failed", "refused", "to create", "to update"]


@dataclass(frozen=True)
class TopicResult:
    """What ``apply`` did to one topic (or, planning, would do), and the details a person needs (settings
    set back and what they were, or why it failed or was refused)."""

    spec: TopicSpec
    action: Action
    detail: str = ""
    changed: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.action not in ("failed", "refused")


HOUR_MS = 3_600_000
LIFECYCLE_COMPACTION: Mapping[str, str] = {"segment.ms": str(HOUR_MS), "max.compaction.lag.ms": str(HOUR_MS)}
"""How soon Kafka compacts a lifecycle partition: within about an hour of a record's writing. Each transaction
writes its feed records there too (``broker.lifecycle.outbox_records``) and the next one writes tombstones over
them; compaction drops those copies, and until it does, a slot taken over reads them all back with the states.
Kafka never compacts a partition's open segment, which its defaults (7 days, 1 GiB) would keep open for days on
a quiet deployment and fill with copies of encrypted views on a busy one: each taking of the slot would read them
all, and the copies would outlive the feed's own retention on disk. (Kafka rolls a segment only at an append: a slot
gone quiet keeps its last copies until its next batch.)"""


def plan_topics(settings: PuenteSettings, policy_set: PolicySet) -> list[TopicSpec]:
    """Every topic Puente needs, as the settings and the policy shape them (a feed's retention is the
    shortest its partner's agreements allow).

    Refuses (ConfigError) an audit retention shorter than the lifecycle topic's (``lifecycle_retention_days``: as
    long as an agreement lets a partner hold an alert): the decisions and receipts must outlive what they explain,
    or an auditor could no longer say why a partner holds an alert, nor check its recall."""
    lifecycle_days = lifecycle_retention_days(policy_set, settings.replay_window_days)
    if settings.audit_retention_days < lifecycle_days:
        floor = (f"PUENTE_REPLAY_WINDOW_DAYS ({lifecycle_days}): the broker rebuilds its replay window from the "
                 "decisions" if lifecycle_days == settings.replay_window_days else
                 f"the {lifecycle_days} days an agreement lets a partner hold an alert: the audit must explain every "
                 "delivery while it is held")
        raise ConfigError(f"PUENTE_AUDIT_RETENTION_DAYS is {settings.audit_retention_days}, shorter than {floor}; "
                          f"set it to at least {lifecycle_days}")
    names = TopicNames(settings.topic_prefix)
    rf, isr = settings.replication, str(settings.effective_min_insync)
    # The largest batch each topic takes, stated rather than left to the cluster's default (message.max.bytes):
    # every consumer fetches at least that much of a partition (``MAX_BATCH_BYTES``), so no fetch cuts a batch.
    # A topic found with another value is set back by ``topics apply`` and named in its report.
    base = {"min.insync.replicas": isr, "max.message.bytes": str(MAX_BATCH_BYTES)}
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
        TopicSpec(topic, settings.feed_partitions, rf, {**base, "retention.ms": str(days * DAY_MS)}, "feed",
                  kept=True)
        for topic, days in sorted(feed_retention(policy_set, names).items())
    ]
    # LogAppendTime on every audit topic: the broker's blocks are dated across its chains by when Kafka appended
    # them, which no holder of a (retired) signing key can choose (``broker.audit.verify.retired_keys``); and Kafka
    # deletes a segment by its newest record's time, so a writer stamping its own (a partner's receipts dated 1970)
    # would have its records deleted within minutes, its recall acknowledgements and refusals with them.
    audit = {**base, "retention.ms": str(settings.audit_retention_days * DAY_MS),
             "message.timestamp.type": "LogAppendTime"}
    dead = {**base, "retention.ms": str(settings.deadletter_retention_days * DAY_MS)}
    broker_audit = audit
    specs += [TopicSpec(names.decisions, slots, rf, broker_audit, "decisions")]
    # Compacted: the latest state of each alert, for as long as a partner may hold it. One partition per slot, as
    # the decisions topic: an agency added at the end of PUENTE_AGENCIES adds slots, and both grow with them.
    specs += [TopicSpec(names.lifecycle, slots, rf, {**base, "cleanup.policy": "compact,delete",
                                                      "retention.ms": str(lifecycle_days * DAY_MS),
                                                      **LIFECYCLE_COMPACTION},
                        "lifecycle")]
    # One partition per partner's receipts: its chains stay whole, and only it may write there.
    specs += [TopicSpec(names.receipts(p), 1, rf, audit, "receipts", fixed=True) for p in sorted(policy_set.partners)]
    specs += [
        TopicSpec(names.denials, 1, rf, broker_audit, "denials", fixed=True),
        # One chain, written by the one console of a deployment (its transactional id fences another).
        TopicSpec(names.queries, 1, rf, audit, "queries", fixed=True),
        TopicSpec(names.deadletter, settings.ingress_partitions, rf, dead, "dead-letter"),
    ]
    specs += [TopicSpec(names.adapter_deadletter(a), 1, rf, dead, "dead-letter") for a in settings.agencies]
    return specs


async def apply_topics(admin: Admin, specs: list[TopicSpec], *, dry_run: bool = False,
                       allow_weaker: bool = False) -> list[TopicResult]:
    """Create or update every topic in ``specs``; one result each, in the order given. With ``dry_run``,
    what it would do ("to create", "to update", "refused"), changing nothing.

    A setting that would keep less or guard less than the topic does now (``weakens``: a shorter retention, a
    lower min ISR, producers' times in place of Kafka's) is not changed, and its topic is refused saying so,
    unless ``allow_weaker``: a setting left over in a shell (``PUENTE_AUDIT_RETENTION_DAYS=1``) would otherwise
    have Kafka delete years of audit for good. A topic refused for its shape (replication, partitions) has only
    what stops records being deleted set back, never a weaker setting, and while any topic is refused no
    partitions are added (Kafka cannot remove them): settings that do not describe this cluster change nothing
    that cannot be undone."""
    # Another login's metadata leaves out every topic it may not describe: a plan to create them all.
    await admin.require_admin("planning topics" if dry_run else "creating and updating topics")
    timeout = admin.conn.timeout_s
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=timeout))
    existing = {name: t for name, t in metadata.topics.items() if t.error is None}
    missing = [s for s in specs if s.name not in existing]
    results: dict[str, TopicResult] = {}
    if missing and dry_run:
        results.update({s.name: TopicResult(s, "to create", _made(s)) for s in missing})
    elif missing:
        results.update(await _create(admin, missing))
    present = [s for s in specs if s.name in existing]
    if present:
        shapes = {s.name: (len(existing[s.name].partitions), _replicas(existing[s.name])) for s in present}
        results.update(await _update(admin, present, shapes, dry_run, allow_weaker))
    return [results[s.name] for s in specs]


def _replicas(topic: Any) -> tuple[int, ...]:
    """Each replica count a topic's partitions have (one value when all agree)."""
    return tuple(sorted({len(p.replicas) for p in topic.partitions.values()}))


def _made(spec: TopicSpec) -> str:
    return f"{spec.partitions} partitions, replication {spec.replication}"


async def _create(admin: Admin, specs: list[TopicSpec]) -> dict[str, TopicResult]:
    timeout = admin.conn.timeout_s
    new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=s.owned)
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
            out[spec.name] = TopicResult(spec, "created", _made(spec))
    return out


def drift(spec: TopicSpec, current: Mapping[str, str | None]) -> list[tuple[str, str | None, str]]:
    """Each setting Puente owns (``TopicSpec.owned``) whose value on the topic differs from the plan, as
    (key, value found, value planned). ``cleanup.policy`` is a list: its order does not count."""
    out = []
    for key, want in spec.owned.items():
        have = current.get(key)
        if key == "cleanup.policy" and have is not None and _policies(have) == _policies(want):
            continue
        if have != want:
            out.append((key, have, want))
    return out


AGREED_RETENTION = ("feed", "lifecycle")
"""Roles whose retention follows the agreements (``feed_retention``, ``lifecycle_retention_days``): a shorter one is
what the agreements now say, applied, never a weakening (a partner's last agreement gone, its alerts go soon)."""


def weakens(key: str, have: str | None, want: str) -> bool:
    """Whether setting ``key`` from ``have`` to ``want`` keeps records for less time, or guards them less: a shorter
    ``retention.ms`` (-1 or unset is for ever), a lower ``min.insync.replicas``, or ``message.timestamp.type``
    moved off ``LogAppendTime``. What stops records being deleted (``cleanup.policy=delete``, ``retention.bytes=-1``,
    no unclean leader election) never weakens."""
    if have is None or have == want:
        return False
    try:
        if key == "retention.ms":
            return int(have) < 0 or 0 <= int(want) < int(have)
        if key == "min.insync.replicas":
            return int(want) < int(have)
    except ValueError:
        return False  # a value Kafka would not hold: set back
    return key == "message.timestamp.type" and have == "LogAppendTime"


def _policies(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(","))


def _drift_text(drifted: list[tuple[str, str | None, str]]) -> str:
    return ", ".join(f"{key}={want} (was {'unset' if have is None else have})" for key, have, want in drifted)


async def _update(admin: Admin, specs: list[TopicSpec], shapes: dict[str, tuple[int, tuple[int, ...]]],
                  dry_run: bool, allow_weaker: bool) -> dict[str, TopicResult]:
    timeout = admin.conn.timeout_s
    resources = {s.name: ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs}
    described = await admin.results("describing topic settings", await admin.call(
        "describing topic settings", lambda c: c.describe_configs(list(resources.values()), request_timeout=timeout)))
    out: dict[str, TopicResult] = {}
    alters: dict[str, list[tuple[str, str | None, str]]] = {}
    grow: dict[str, int] = {}
    notes: dict[str, str] = {}
    refusals: dict[str, str] = {}
    shape_refused = False
    for spec in specs:
        have, replicas = shapes[spec.name]
        current = described.get(resources[spec.name])
        if isinstance(current, KafkaError):
            out[spec.name] = TopicResult(spec, "failed", _short(current))
            continue
        if replicas and replicas != (spec.replication,):
            refusals[spec.name] = _replication_reason(spec, replicas)
            shape_refused = True
        elif have != spec.partitions and spec.kept:
            notes[spec.name] = (f"keeps its {have} partitions (planned {spec.partitions}): a delivery's partition "
                                "follows its key and the feed's count, which never changes")
        elif have != spec.partitions and (spec.fixed or have < spec.partitions):
            if spec.fixed:
                refusals[spec.name] = _fixed_reason(spec, have)
                shape_refused = True
            else:
                grow[spec.name] = spec.partitions
        elif have > spec.partitions:
            notes[spec.name] = f"keeps its {have} partitions (planned {spec.partitions}; Kafka cannot remove any)"
        drifted = drift(spec, {name: entry.value for name, entry in (current or {}).items()})
        agreed = spec.role in AGREED_RETENTION
        kept = [d for d in drifted if d[0] == "retention.ms" and not agreed and _for_ever(d[1])]
        if kept:  # kept for ever by hand (a legal hold, say): never shortened, and no refusal
            drifted = [d for d in drifted if d not in kept]
            notes[spec.name] = "; ".join(filter(None, (notes.get(spec.name), "keeps retention.ms=-1 (for ever), "
                                                                                 "set by hand")))
        weaker = [d for d in drifted if weakens(*d) and not (agreed and d[0] == "retention.ms")]
        if weaker and (spec.name in refusals or not allow_weaker):
            drifted = [d for d in drifted if d not in weaker]
            if spec.name not in refusals:
                refusals[spec.name] = _weaker_reason(weaker)
        if drifted:
            alters[spec.name] = drifted
    if shape_refused and grow:
        for name in grow:
            notes[name] = (f"not grown to {grow[name]} partitions while another topic is refused (Kafka cannot "
                           "remove any)")
        grow = {}
    by_spec = {s.name: s for s in specs}
    if alters and not dry_run:
        requests = [ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(key, want, incremental_operation=AlterConfigOpType.SET) for key, _, want in drifted])
            for name, drifted in alters.items()]
        done = await admin.results("changing topic settings", await admin.call(
            "changing topic settings", lambda c: c.incremental_alter_configs(requests, request_timeout=timeout)))
        for resource, outcome in done.items():
            if isinstance(outcome, KafkaError):
                names = ", ".join(key for key, _, _ in alters[resource.name])
                out[resource.name] = TopicResult(by_spec[resource.name], "failed",
                                                 f"setting {names}: {_short(outcome)}")
    if grow and not dry_run:
        wanted = [NewPartitions(name, count) for name, count in grow.items()]
        done = await admin.results("adding partitions", await admin.call(
            "adding partitions", lambda c: c.create_partitions(wanted, request_timeout=timeout)))
        for name, outcome in done.items():
            if isinstance(outcome, KafkaError):
                out[name] = TopicResult(by_spec[name], "failed", _short(outcome))
    for spec in specs:
        if spec.name not in out:
            out[spec.name] = _outcome(spec, shapes[spec.name][0], grow.get(spec.name), alters.get(spec.name, []),
                                      refusals.get(spec.name), notes.get(spec.name, ""), dry_run)
    return out


def _outcome(spec: TopicSpec, have: int, grow: int | None, drifted: list[tuple[str, str | None, str]],
             refusal: str | None, note: str, dry_run: bool) -> TopicResult:
    """One existing topic's result, once its changes are made (or, with ``dry_run``, planned)."""
    keys = tuple(key for key, _, _ in drifted)
    settings = _drift_text(drifted)
    if refusal is not None:
        if settings:  # still set back: compaction or a size limit would go on deleting audit records
            refusal += f"; {'would set back' if dry_run else 'set back'} {settings}"
        return TopicResult(spec, "refused", "; ".join(filter(None, (refusal, note))), keys)
    parts = ([f"partitions {have} -> {grow}"] if grow is not None else []) + ([settings] if settings else [])
    if not parts:
        return TopicResult(spec, "unchanged", note, keys)
    return TopicResult(spec, "to update" if dry_run else "updated", "; ".join(filter(None, (", ".join(parts), note))),
                       keys)


def _for_ever(value: str | None) -> bool:
    try:
        return value is not None and int(value) < 0
    except ValueError:
        return False


def _weaker_reason(weaker: list[tuple[str, str | None, str]]) -> str:
    def shown(key: str, value: str | None) -> str:
        if key == "retention.ms" and value is not None and value.lstrip("-").isdigit():
            days, rest = divmod(int(value), DAY_MS)
            return f"{days} d" if not rest else f"{int(value) / 3_600_000:.1f} h"
        return str(value)
    changes = ", ".join(f"{key} {shown(key, have)} -> {shown(key, want)}" for key, have, want in weaker)
    return (f"the settings would weaken it ({changes}): left as it is; check PUENTE_* in this shell, or, if meant, "
            "run `puente topics apply --allow-weaker`")


def _replication_reason(spec: TopicSpec, replicas: tuple[int, ...]) -> str:
    found = "/".join(str(n) for n in replicas)
    return (f"has {found} {'replica' if found == '1' else 'replicas'} per partition, the settings say "
            f"{spec.replication}; refused: topics apply does "
            f"not change a replication factor. Reassign its partitions to {spec.replication} replicas "
            "(kafka-reassign-partitions.sh), or check PUENTE_REPLICATION")


def _fixed_reason(spec: TopicSpec, have: int) -> str:
    why = {
        "ingress": "each ingress partition is a broker slot, with its own replay window and audit chain: a "
                   "different count would move alerts to other slots",
        "receipts": "a partner's receipt chains live in its one partition: another count would split them",
        "denials": "the collected denials are one chain in one partition",
    }.get(spec.role, "its partitions carry meaning")
    return (f"has {have} partitions, the settings say {spec.partitions}; refused: {why}. Keep the setting at "
            f"{have}, or move to new topics under another PUENTE_TOPIC_PREFIX")


async def topic_settings(admin: Admin, topic: str) -> dict[str, str | None]:
    """``topic``'s settings as Kafka holds them (``retention.ms`` and the like); the Puente error the description
    failed with is raised (KafkaAccessError when the login may not describe them)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    what = f"describing {topic}'s settings"
    described = await admin.results(what, await admin.call(
        what, lambda c: c.describe_configs([resource], request_timeout=admin.conn.timeout_s)))
    outcome = described[resource]
    if isinstance(outcome, Exception):
        raise outcome
    return {name: entry.value for name, entry in outcome.items()}


async def check_audit_retention(conn: KafkaConnection, topic: str, days: int, who: str) -> bool:
    """ConfigError unless audit ``topic`` keeps its records as long as PUENTE_AUDIT_RETENTION_DAYS (``days``) says,
    or for ever, checked by ``who`` (the broker, the console or the denials collector) before it writes there.
    Each record it writes states ``days`` (``keep_days``), and a chain cut at its start is judged deleted or
    expired by it (``broker.audit.verify.Retention``): a setting shorter than the topic's retention (a value left in
    a shell) would make a deletion by hand of records older than it read as retention's, and a longer one every
    expiry as a deletion. A topic kept for ever (-1, or more days than any setting may say), or for the same whole
    days (a part of a day over, set by hand, is no other retention to judge by), agrees. True when it keeps them for
    ever: then nothing of it ever expired, and records gone from it were deleted (``broker.worker``'s empty-slot
    check)."""
    try:
        held = await topic_settings(Admin(conn), topic)
    except KafkaAccessError:
        raise ConfigError(f"{who}'s login may not read {topic}'s settings, which it checks before it writes there: "
                          "run `puente acls apply`") from None
    kept_ms = held.get("retention.ms")
    try:
        kept = int(kept_ms) if kept_ms is not None else None
    except ValueError:
        kept = None
    if kept is not None and (kept == -1 or kept // DAY_MS >= (2**63 - 1) // DAY_MS):
        return True
    if kept is not None and kept // DAY_MS == days:
        return False
    raise ConfigError(f"{topic} keeps records for retention.ms={str(kept_ms)[:20]}, but PUENTE_AUDIT_RETENTION_DAYS "
                      f"is {days} ({days * DAY_MS} ms), which each record states and the audit judges deletions "
                      "by: run `puente topics apply` with the retention meant, or set the variable to the topic's")


def _short(error: Any) -> str:
    return str(error)[:300]
