"""`broker.kafka.topics`: Puente owns the settings that carry its invariants on every topic it plans (deletion by age
only, no size limit, no unclean leader election, the planned min ISR and retention, LogAppendTime on ingress). They
are set on create and set back on apply, each named with what it was; a replication factor other than the plan's is
refused, never adopted as unchanged; a plan (dry run) shows the same and changes nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

import broker.auditor as auditor
import broker.kafka.topics as topics
import broker.oversight as oversight
import broker.service as service
from broker.kafka.topics import TopicResult, apply_topics, drift, plan_topics
from broker.oversight import QueryLog
from broker.topology import DAY_MS, INVARIANTS, TopicNames, TopicSpec
from policies import PolicySet, load_policy_set
from puente.errors import ConfigError
from puente.settings import PuenteSettings

AUDIT = {"min.insync.replicas": "2", "retention.ms": str(3650 * DAY_MS)}
RECEIPTS = TopicSpec("puente.receipts.COL", 1, 3, AUDIT, "receipts", fixed=True)
# What Kafka describes for a topic made without settings: the cluster's defaults.
DEFAULTS = {"cleanup.policy": "delete", "retention.bytes": "-1", "unclean.leader.election.enable": "false",
            "min.insync.replicas": "1", "retention.ms": str(7 * DAY_MS), "message.timestamp.type": "CreateTime",
            "max.message.bytes": "1048588", "compression.type": "producer"}


@dataclass
class Cluster:
    """Kafka's admin client, standing in: topics as (replicas of each partition, settings); what was asked of it."""

    topics: dict[str, tuple[list[int], dict[str, str]]] = field(default_factory=dict)
    created: list[Any] = field(default_factory=list)
    altered: dict[str, dict[str, str]] = field(default_factory=dict)

    def list_topics(self, timeout: float) -> Any:
        return NS(topics={name: NS(error=None, partitions={i: NS(replicas=list(range(n))) for i, n in
                                                         enumerate(replicas)})
                          for name, (replicas, _) in self.topics.items()})

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        return {r: {k: NS(value=v) for k, v in self.topics[r.name][1].items()} for r in resources}

    def incremental_alter_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        for r in resources:
            changes = {e.name: e.value for e in r.incremental_configs}
            self.altered[r.name] = changes
            self.topics[r.name][1].update(changes)
        return {r: None for r in resources}

    def create_topics(self, new: list[Any], operation_timeout: float, request_timeout: float) -> dict[str, Any]:
        self.created += new
        for t in new:
            self.topics[t.topic] = ([t.replication_factor] * t.num_partitions, {**DEFAULTS, **t.config})
        return {t.topic: None for t in new}

    def create_partitions(self, wanted: list[Any], request_timeout: float) -> dict[str, Any]:
        return {w.topic: None for w in wanted}


@dataclass
class FakeAdmin:
    cluster: Cluster
    conn: Any = field(default_factory=lambda: NS(timeout_s=5))

    async def call(self, what: str, fn: Any) -> Any:
        return fn(self.cluster)

    async def results(self, what: str, futures: Any) -> dict[Any, Any]:
        return dict(futures)

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


def _apply(cluster: Cluster, specs: list[TopicSpec], dry_run: bool = False) -> list[TopicResult]:
    return asyncio.run(apply_topics(FakeAdmin(cluster), specs, dry_run=dry_run))  # type: ignore[arg-type]


def _compacted_receipts(replicas: int) -> Cluster:
    """An existing receipts topic of `replicas` replicas, compacted, with a size limit and unclean elections."""
    return Cluster({RECEIPTS.name: ([replicas], {**DEFAULTS, **AUDIT, "cleanup.policy": "compact",
                                                 "retention.bytes": "1024",
                                                 "unclean.leader.election.enable": "true"})})


def test_a_replication_factor_other_than_the_plans_is_refused_not_unchanged() -> None:
    """1 replica where 3 are planned: refused, one line naming both counts and what to do; its settings that
    would go on deleting receipts (compaction, a size limit, unclean elections) are set back meanwhile."""
    cluster = _compacted_receipts(1)
    [result] = _apply(cluster, [RECEIPTS])
    assert result.action == "refused" and not result.ok
    assert "has 1 replica per partition, the settings say 3" in result.detail
    assert "kafka-reassign-partitions" in result.detail and "\n" not in result.detail
    assert cluster.altered[RECEIPTS.name] == {"cleanup.policy": "delete", "retention.bytes": "-1",
                                              "unclean.leader.election.enable": "false"}
    assert "cleanup.policy=delete (was compact)" in result.detail


def test_replicas_that_differ_between_partitions_are_refused() -> None:
    """A topic whose partitions have 3 and 1 replicas is not what the plan says either."""
    cluster = Cluster({"puente.deadletter": ([3, 1, 3], {**DEFAULTS, **AUDIT})})
    [result] = _apply(cluster, [TopicSpec("puente.deadletter", 3, 3, AUDIT, "dead-letter")])
    assert result.action == "refused" and "has 1/3 replicas per partition" in result.detail


def test_drifted_invariants_are_set_back_and_named() -> None:
    """With the planned replication, a compacted, size-limited receipts topic is updated: each setting set back,
    named with the value it had; a setting Puente does not own is left as it is."""
    cluster = _compacted_receipts(3)
    cluster.topics[RECEIPTS.name][1]["segment.ms"] = "3600000"
    [result] = _apply(cluster, [RECEIPTS])
    assert result.action == "updated"
    assert set(result.changed) == {"cleanup.policy", "retention.bytes", "unclean.leader.election.enable"}
    assert "retention.bytes=-1 (was 1024)" in result.detail and "unclean.leader.election.enable=false" in result.detail
    assert cluster.topics[RECEIPTS.name][1]["segment.ms"] == "3600000"
    assert _apply(cluster, [RECEIPTS])[0].action == "unchanged"


def test_a_plan_shows_the_drift_and_changes_nothing() -> None:
    """dry_run: "refused" or "to update" with the same details, "to create" for a missing topic; nothing asked of
    Kafka but to look."""
    cluster = _compacted_receipts(1)
    missing = TopicSpec("puente.audit.denials", 1, 3, AUDIT, "denials", fixed=True)
    refused, made = _apply(cluster, [RECEIPTS, missing], dry_run=True)
    assert refused.action == "refused" and "would set back cleanup.policy=delete (was compact)" in refused.detail
    assert made.action == "to create" and made.ok
    assert cluster.altered == {} and cluster.created == []
    cluster = _compacted_receipts(3)
    [planned] = _apply(cluster, [RECEIPTS], dry_run=True)
    assert planned.action == "to update" and "cleanup.policy=delete (was compact)" in planned.detail
    assert cluster.altered == {}


def test_a_topic_is_created_with_every_setting_puente_owns() -> None:
    """Create sets the invariants too, not only the spec's own settings: the cluster's defaults decide none of them."""
    cluster = Cluster()
    [result] = _apply(cluster, [RECEIPTS])
    assert result.action == "created"
    assert cluster.created[0].config == {**INVARIANTS, **AUDIT, "retention.bytes": "-1"}


def test_the_lifecycle_keeps_its_compaction_in_any_order() -> None:
    """The lifecycle topic is planned compact,delete: Kafka's "delete,compact" is the same list, no drift; its
    unclean elections are still Puente's."""
    spec = TopicSpec("puente.lifecycle", 3, 1, {"cleanup.policy": "compact,delete", "retention.ms": "1"}, "lifecycle")
    have = {**DEFAULTS, "cleanup.policy": "delete,compact", "retention.ms": "1"}
    assert drift(spec, have) == []
    assert drift(spec, {**have, "unclean.leader.election.enable": "true"}) == [
        ("unclean.leader.election.enable", "true", "false")]
    assert drift(spec, {**have, "compression.type": "zstd"}) == [("compression.type", "zstd", "producer")]


@pytest.fixture(scope="module")
def policy() -> PolicySet:
    return load_policy_set()


def test_every_planned_topic_carries_the_invariants_and_ingress_its_append_time(policy: PolicySet) -> None:
    """Each topic the plan makes owns cleanup.policy, retention.bytes and unclean elections; the ingress topics
    own LogAppendTime, so an ingress topic made with CreateTime is set back (the replay window reads it)."""
    cfg = PuenteSettings(replication=3)
    specs = plan_topics(cfg, policy)
    for spec in specs:
        owned = spec.owned
        assert owned["unclean.leader.election.enable"] == "false" and owned["retention.bytes"] == "-1"
        assert owned["compression.type"] == "producer"  # never inflated whole in a node (broker.kafka.unreadable)
        assert owned["min.insync.replicas"] == "2"
        assert owned["cleanup.policy"] == ("compact,delete" if spec.role == "lifecycle" else "delete")
        # The lifecycle partitions are compacted within the hour (their outbox copies dropped): no other topic
        # is compacted, and none has its segments rolled on a timer of Puente's.
        rolled = {k: owned.get(k) for k in ("segment.ms", "max.compaction.lag.ms")}
        assert rolled == ({"segment.ms": "3600000", "max.compaction.lag.ms": "3600000"} if spec.role == "lifecycle"
                          else {"segment.ms": None, "max.compaction.lag.ms": None})
    ingress = next(s for s in specs if s.role == "ingress")
    assert drift(ingress, {**DEFAULTS, **ingress.config, "message.timestamp.type": "CreateTime"}) == [
        ("message.timestamp.type", "CreateTime", "LogAppendTime")]


def test_a_second_apply_after_create_reads_unchanged(policy: PolicySet) -> None:
    """What apply creates, a second apply finds as planned: every topic unchanged (as the integration test expects
    of a real Kafka)."""
    cluster = Cluster()
    specs = plan_topics(PuenteSettings(), policy)
    assert {r.action for r in _apply(cluster, specs)} == {"created"}
    assert {r.action for r in _apply(cluster, specs)} == {"unchanged"}


def test_an_agency_added_at_the_end_grows_decisions_and_lifecycle_and_the_broker_checks_both(
        policy: PolicySet, monkeypatch: pytest.MonkeyPatch) -> None:
    """An agency added at the end of PUENTE_AGENCIES adds slots: `topics apply` grows the decisions and the lifecycle
    topic alike (one partition per slot; the lifecycle topic was refused before, and the broker then started with
    slots that had no lifecycle partition, failing until it gave up), and the broker refuses to start while either
    has fewer partitions than slots, naming `topics apply`."""
    before = PuenteSettings(agencies=("SENAFRONT", "SENAN"), agency_countries={})
    after = PuenteSettings(agencies=("SENAFRONT", "SENAN", "PN"), agency_countries={})
    cluster = Cluster()
    _apply(cluster, plan_topics(before, policy))
    grown: list[tuple[str, int]] = []

    def grow(wanted: list[Any], request_timeout: float) -> dict[str, Any]:
        grown.extend((w.topic, w.new_total_count) for w in wanted)
        return {w.topic: None for w in wanted}

    cluster.create_partitions = grow  # type: ignore[method-assign]
    planned = plan_topics(after, policy)
    refused = [r.spec.name for r in _apply(cluster, planned) if r.action == "refused"]
    assert refused == [] and sorted(grown) == [("puente.audit.decisions", 9), ("puente.lifecycle", 9)]
    monkeypatch.setattr(service, "Admin", lambda conn: FakeAdmin(cluster))
    monkeypatch.setattr(topics, "Admin", lambda conn: FakeAdmin(cluster))
    for topic in ("puente.audit.decisions", "puente.lifecycle"):
        with pytest.raises(ConfigError, match=r"has 6 partitions but the 3 agencies' ingress partitions make 9 slots"):
            asyncio.run(service.check_topology(after, NS(timeout_s=5), policy))  # type: ignore[arg-type]
        replicas, config = cluster.topics[topic]
        cluster.topics[topic] = (replicas + replicas[:1] * 3, config)  # as Kafka grows it
    asyncio.run(service.check_topology(after, NS(timeout_s=5), policy))  # type: ignore[arg-type]


def test_the_broker_refuses_a_decisions_topic_that_keeps_producers_times(policy: PolicySet,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit dates the broker's blocks by Kafka's append time (a retired key's holder cannot choose it): a
    decisions topic set back to CreateTime stops the broker at start, naming `topics apply`, which sets it again."""
    settings = PuenteSettings()
    cluster = Cluster()
    _apply(cluster, plan_topics(settings, policy))
    monkeypatch.setattr(service, "Admin", lambda conn: FakeAdmin(cluster))
    monkeypatch.setattr(topics, "Admin", lambda conn: FakeAdmin(cluster))
    asyncio.run(service.check_topology(settings, NS(timeout_s=5), policy))  # type: ignore[arg-type]
    cluster.topics["puente.audit.decisions"][1]["message.timestamp.type"] = "CreateTime"
    with pytest.raises(ConfigError, match=r"puente.audit.decisions keeps the producers' own times .* topics apply"):
        asyncio.run(service.check_topology(settings, NS(timeout_s=5), policy))  # type: ignore[arg-type]
    assert [r.action for r in _apply(cluster, plan_topics(settings, policy)) if r.spec.role == "decisions"] == [
        "updated"]
    asyncio.run(service.check_topology(settings, NS(timeout_s=5), policy))  # type: ignore[arg-type]


def test_the_broker_refuses_an_audit_retention_other_than_its_decisions_topics(policy: PolicySet,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block states PUENTE_AUDIT_RETENTION_DAYS, and deletions are told from expiries by it: a broker whose
    value differs from what the decisions topic keeps (a day left in its shell, the topic keeping ten years) would
    have a deletion by hand of blocks a few days old read as retention's. It stops at start naming both; a topic
    kept for ever by hand is taken."""
    settings = PuenteSettings()
    cluster = Cluster()
    _apply(cluster, plan_topics(settings, policy))
    monkeypatch.setattr(service, "Admin", lambda conn: FakeAdmin(cluster))
    monkeypatch.setattr(topics, "Admin", lambda conn: FakeAdmin(cluster))
    asyncio.run(service.check_topology(settings, NS(timeout_s=5), policy))  # type: ignore[arg-type]
    for days in (1, 3651):
        shell = settings.model_copy(update={"audit_retention_days": days})
        with pytest.raises(ConfigError, match=rf"keeps records for retention.ms=315360000000, but "
                                              rf"PUENTE_AUDIT_RETENTION_DAYS is {days} .* topics apply"):
            asyncio.run(service.check_topology(shell, NS(timeout_s=5), policy))  # type: ignore[arg-type]
    for forever in ("-1", str(2**63 - 1), str(3650 * 86_400_000 + 3_600_000)):  # an hour over: the same days
        cluster.topics["puente.audit.decisions"][1]["retention.ms"] = forever
        asyncio.run(service.check_topology(settings, NS(timeout_s=5), policy))  # type: ignore[arg-type]


@pytest.mark.parametrize("who", ["the console", "the denials collector"])
def test_the_console_and_the_collector_refuse_a_retention_other_than_their_topics(
        who: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The query log's and the denials' records state their writer's PUENTE_AUDIT_RETENTION_DAYS too: each writer
    checks it against its topic before it writes anything (a shell's stray value would make a deletion by hand read
    as retention's in the log that audits the auditors)."""
    settings = PuenteSettings()
    cluster = Cluster()
    _apply(cluster, plan_topics(settings, load_policy_set(settings.policy_dir)))
    topic = "puente.audit.queries" if who == "the console" else "puente.audit.denials"
    cluster.topics[topic][1]["retention.ms"] = str(30 * 86_400_000)
    monkeypatch.setattr(topics, "Admin", lambda conn: FakeAdmin(cluster))
    made: list[Any] = []
    monkeypatch.setattr(oversight, "producer", lambda *args, **kwargs: made.append(args))
    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: made.append(args))

    async def started(*args: Any) -> None: ...
    monkeypatch.setattr(oversight, "start", started)
    with pytest.raises(ConfigError, match=rf"{topic} keeps records for retention.ms=2592000000, but "
                                          r"PUENTE_AUDIT_RETENTION_DAYS is 3650"):
        if who == "the console":
            log = QueryLog(NS(timeout_s=5), TopicNames("puente"), 3650)  # type: ignore[arg-type]
            log.stop = started  # type: ignore[method-assign]
            asyncio.run(log.start())
        else:
            log_file = tmp_path / "authorizer.log"
            log_file.write_text("")
            asyncio.run(auditor.collect_denials(NS(timeout_s=5), TopicNames("puente"), [log_file],  # type: ignore[arg-type]
                                                frozenset(), "broker-sign-2026a", lambda b: b"", lambda *a: True,
                                                keep_days=3650))
    assert made == []  # refused before a producer is made: a console's would fence the one running


def _deployed(**update: Any) -> tuple[Cluster, list[TopicSpec]]:
    """A production cluster as `topics apply` made it (replication 3, min ISR 2), and the plan of a shell whose
    settings differ by ``update``."""
    policy = load_policy_set(PuenteSettings().policy_dir)
    cluster = Cluster()
    _apply(cluster, plan_topics(PuenteSettings(replication=3, min_insync=2), policy))
    return cluster, plan_topics(PuenteSettings().model_copy(update={"replication": 3, "min_insync": 2, **update}),
                                policy)


@pytest.mark.parametrize(("update", "key", "was"), [
    ({"audit_retention_days": 2000}, "retention.ms", str(3650 * DAY_MS)),  # a setting left in the shell
    ({"min_insync": 1}, "min.insync.replicas", "2"),
])
def test_a_setting_that_would_weaken_a_topic_is_refused_and_left_as_it_is(update: dict[str, Any], key: str,
                                                                          was: str) -> None:
    """Settings that would keep less (a shorter retention: Kafka deletes what is older, for good) or guard less (a
    lower min ISR) are not applied: the topic is refused, naming the change in days and the flag that allows it,
    and keeps its value; `--allow-weaker` applies them."""
    cluster, specs = _deployed(**update)
    results = _apply(cluster, specs)
    weakened = [r for r in results if r.action == "refused"]
    assert weakened and all("would weaken it" in r.detail and "--allow-weaker" in r.detail for r in weakened)
    assert all(settings[key] == was for name, (_, settings) in cluster.topics.items()
               if name in {r.spec.name for r in weakened})
    if key == "retention.ms":
        assert any("retention.ms 3650 d -> 2000 d" in r.detail for r in weakened)
        assert "puente.audit.decisions" in {r.spec.name for r in weakened}
    allowed = asyncio.run(apply_topics(FakeAdmin(cluster), specs, allow_weaker=True))  # type: ignore[arg-type]
    assert all(r.ok for r in allowed)
    assert cluster.topics["puente.audit.decisions"][1][key] != was


def test_a_topic_refused_for_its_replication_keeps_its_min_isr_and_nothing_grows() -> None:
    """A shell without PUENTE_REPLICATION=3 against a cluster of three: every topic is refused for its replication
    factor, and none has its min ISR lowered to the shell's (a write acknowledged by one replica would count as
    committed), nor its retention changed; a size limit or compaction is still set back."""
    cluster, _ = _deployed()
    policy = load_policy_set(PuenteSettings().policy_dir)
    cluster.topics["puente.audit.decisions"][1]["retention.bytes"] = "1000"
    results = _apply(cluster, plan_topics(PuenteSettings(replication=1, min_insync=1), policy))
    assert all(r.action == "refused" for r in results)
    assert all(settings["min.insync.replicas"] == "2" for _, settings in cluster.topics.values())
    assert cluster.topics["puente.audit.decisions"][1]["retention.bytes"] == "-1"  # set back all the same


def test_no_partitions_are_added_while_another_topic_is_refused() -> None:
    """PUENTE_INGRESS_PARTITIONS raised by mistake on a running deployment: every ingress topic is refused, and the
    decisions, lifecycle and dead-letter topics, which would grow with it, are not grown (Kafka cannot remove a
    partition), saying why."""
    cluster, specs = _deployed(ingress_partitions=4)
    grown: list[Any] = []
    cluster.create_partitions = lambda wanted, request_timeout: grown.extend(wanted) or {}  # type: ignore[method-assign]
    results = {r.spec.name: r for r in _apply(cluster, specs)}
    assert results["puente.ingress.SENAN"].action == "refused" and grown == []
    assert "not grown" in results["puente.audit.decisions"].detail


def test_every_audit_topic_takes_kafkas_append_time() -> None:
    """Kafka deletes a segment by its newest record's time: a partner stamping its receipts 1970 would have them
    deleted within minutes. Receipts and the queries log take Kafka's append time, as the broker's chains do."""
    specs = {s.role: s for s in plan_topics(PuenteSettings(), load_policy_set(PuenteSettings().policy_dir))}
    for role in ("decisions", "receipts", "denials", "queries"):
        assert specs[role].owned["message.timestamp.type"] == "LogAppendTime", role


def test_an_audit_retention_shorter_than_partners_may_hold_an_alert_is_refused() -> None:
    """The decisions and receipts must outlive what they explain: an audit retention shorter than the longest
    agreement lets a partner hold an alert is refused in one line naming the least it may be."""
    policy = load_policy_set(PuenteSettings().policy_dir)
    longest = max(a.retention_days for a in policy.agreements.values())
    with pytest.raises(ConfigError) as info:
        plan_topics(PuenteSettings(audit_retention_days=longest - 1), policy)
    assert "\n" not in str(info.value) and f"set it to at least {longest}" in str(info.value)
    assert plan_topics(PuenteSettings(audit_retention_days=longest), policy)


def test_a_feed_retention_the_agreements_shorten_is_applied() -> None:
    """A feed's retention follows its partner's agreements: with CRI's last agreement gone its feed keeps a week, so
    the alerts it holds go soon. That is applied, not refused as a weakening."""
    policy = load_policy_set(PuenteSettings().policy_dir)
    cluster = Cluster()
    specs = plan_topics(PuenteSettings(), policy)
    _apply(cluster, specs)
    feed = next(s for s in specs if s.name == "puente.feed.CRI")
    cluster.topics[feed.name][1]["retention.ms"] = str(900 * DAY_MS)  # as a longer agreement had it
    results = {r.spec.name: r for r in _apply(cluster, specs)}
    assert results[feed.name].action == "updated" and cluster.topics[feed.name][1]["retention.ms"] == \
        feed.owned["retention.ms"]


def test_an_audit_topic_kept_for_ever_by_hand_is_kept_and_blocks_nothing() -> None:
    """retention.ms=-1 set by hand on the decisions (a legal hold): kept, said, not refused; and a topic refused as a
    weakening elsewhere does not stop the others growing (only a refusal of a topic's shape does)."""
    cluster, specs = _deployed()
    cluster.topics["puente.audit.decisions"][1]["retention.ms"] = "-1"
    results = {r.spec.name: r for r in _apply(cluster, specs)}
    assert results["puente.audit.decisions"].ok and "for ever" in results["puente.audit.decisions"].detail
    assert cluster.topics["puente.audit.decisions"][1]["retention.ms"] == "-1"
    cluster, specs = _deployed(min_insync=1)
    grown: list[Any] = []
    cluster.create_partitions = lambda wanted, request_timeout: grown.extend(wanted) or {}  # type: ignore[method-assign]
    cluster.topics["puente.deadletter"] = ([3], cluster.topics["puente.deadletter"][1])  # one partition short
    results = {r.spec.name: r for r in _apply(cluster, specs)}
    assert results["puente.audit.decisions"].action == "refused" and [w.topic for w in grown] == ["puente.deadletter"]



def test_a_feeds_partition_count_is_kept_as_found(policy: PolicySet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery's partition follows its key and its feed's count: `topics apply` makes a new feed with
    PUENTE_FEED_PARTITIONS and never grows an existing one (an alert's next version or recall would land in another
    partition than its copy), saying so and refusing nothing; the broker starts with feeds of several counts (each
    is written with its own), as after the setting changed and a partner was added."""
    settings = PuenteSettings()
    cluster = Cluster()
    _apply(cluster, plan_topics(settings, policy))
    grown: list[Any] = []
    cluster.create_partitions = lambda wanted, request_timeout: grown.extend(wanted) or {}  # type: ignore[method-assign]
    more = PuenteSettings(feed_partitions=settings.feed_partitions + 3)
    results = {r.spec.name: r for r in _apply(cluster, plan_topics(more, policy))}
    feeds = [name for name, r in results.items() if r.spec.role == "feed"]
    assert feeds and all(results[f].action == "unchanged" for f in feeds), [results[f] for f in feeds]
    assert "keeps its 3 partitions (planned 6): a delivery's partition follows its key" in results[feeds[0]].detail
    assert grown == []
    cluster.topics[feeds[0]][1]["retention.ms"] = "1"  # drifted: set back, and the note still said
    again = {r.spec.name: r for r in _apply(cluster, plan_topics(more, policy))}
    assert again[feeds[0]].action == "updated" and "keeps its 3 partitions (planned 6)" in again[feeds[0]].detail
    replicas, config = cluster.topics[feeds[0]]
    cluster.topics[feeds[0]] = (replicas * 2, config)  # a feed made later, with the new setting
    monkeypatch.setattr(service, "Admin", lambda conn: FakeAdmin(cluster))
    monkeypatch.setattr(topics, "Admin", lambda conn: FakeAdmin(cluster))
    for either in (settings, more):
        asyncio.run(service.check_topology(either, NS(timeout_s=5), policy))  # type: ignore[arg-type]
