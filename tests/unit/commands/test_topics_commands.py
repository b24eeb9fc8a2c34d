"""`puente topics plan|apply` with a stand-in for Kafka's admin client: plan shows each drifted setting Puente owns
and each refused topic, changes nothing and exits 1; apply sets the drift back, reports a refused replication
factor as refused (exit 1), and reads a clean cluster as unchanged."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest

import puente.commands.topics as topics
from broker.kafka.topics import plan_topics
from policies import load_policy_set
from puente.cli import build_parser
from puente.settings import PuenteSettings


class Cluster:
    """Topics as (replicas per partition, settings); the settings each alter asked for."""

    def __init__(self, topics_: dict[str, tuple[list[int], dict[str, str]]]) -> None:
        self.topics = topics_
        self.altered: list[str] = []

    def list_topics(self, timeout: float) -> Any:
        return NS(topics={n: NS(error=None, partitions={i: NS(replicas=[0] * r) for i, r in enumerate(reps)})
                          for n, (reps, _) in self.topics.items()})

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        return {r: {k: NS(value=v) for k, v in self.topics[r.name][1].items()} for r in resources}

    def incremental_alter_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        for r in resources:
            self.altered.append(r.name)
            self.topics[r.name][1].update({e.name: e.value for e in r.incremental_configs})
        return {r: None for r in resources}


class FakeAdmin:
    conn = NS(timeout_s=5)

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def call(self, what: str, fn: Any) -> Any:
        return fn(self.cluster)

    async def results(self, what: str, futures: Any) -> dict[Any, Any]:
        return dict(futures)

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """Every planned topic exists as planned, but Colombia's receipts: compacted, size-limited, 1 replica of 1."""
    cfg = PuenteSettings()
    specs = plan_topics(cfg, load_policy_set(cfg.policy_dir))
    held = Cluster({s.name: ([s.replication] * s.partitions, dict(s.owned)) for s in specs})
    held.topics["puente.receipts.COL"][1].update({"cleanup.policy": "compact", "retention.bytes": "1024"})
    monkeypatch.setattr(topics, "settings", lambda args: cfg)
    monkeypatch.setattr(topics, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(topics, "Admin", lambda conn: FakeAdmin(held))
    return held


def _puente(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


def test_topics_plan_shows_the_drift_and_changes_nothing(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """The receipts topic's line reads "to update" with each setting and its old value; the others unchanged."""
    assert _puente("topics", "plan") == 1
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("puente.receipts.COL "))
    assert " to update " in line
    assert "cleanup.policy=delete (was compact)" in line and "retention.bytes=-1 (was 1024)" in line
    assert cluster.altered == [] and cluster.topics["puente.receipts.COL"][1]["cleanup.policy"] == "compact"
    assert "1 of " in out.splitlines()[-1]


def test_topics_apply_sets_the_drift_back_then_plan_is_clean(cluster: Cluster,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """apply updates the receipts topic only; a plan after it finds no change and exits 0."""
    assert _puente("topics", "apply") == 0
    assert cluster.altered == ["puente.receipts.COL"]
    assert _puente("topics", "plan") == 0
    assert "no change" in capsys.readouterr().out.splitlines()[-1]


def test_topics_apply_refuses_a_replication_it_cannot_change(cluster: Cluster,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A receipts topic of 2 replicas under a plan of 1: refused on one line, exit 1."""
    cluster.topics["puente.receipts.COL"] = ([2], cluster.topics["puente.receipts.COL"][1])
    assert _puente("topics", "apply") == 1
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("puente.receipts.COL "))
    assert " refused " in line and "has 2 replicas per partition, the settings say 1" in line
    assert "failed or were refused" in out.splitlines()[-1]
