"""`puente acls plan` says why it removes a rule of a login no policy names: on this deployment's resources alone,
or on a resource the Kafka client cannot name (a party's delegation tokens: librdkafka reads Kafka's USER resource
as UNKNOWN), which is no topic, group or transactional id of this deployment's, whatever it reaches."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import puente.commands.access as access
from broker.access import Acl, parties, plan, quota_plan
from broker.topology import TopicNames
from policies import load_policy_set
from puente.cli import build_parser
from puente.settings import PuenteSettings


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The command's settings and Kafka replaced: the cluster holds the plan (``held["acls"]``, to add to), the
    parties' logins and their planned quotas."""
    cfg = PuenteSettings(topic_prefix="puente")
    policy = load_policy_set(cfg.policy_dir)
    quotas = quota_plan(policy, cfg.agencies, logins=())
    held: dict[str, Any] = {"acls": set(plan(policy, TopicNames("puente"), cfg.agencies, cfg.broker_group))}

    async def cluster_acls(admin: Any) -> tuple[set[Acl], list[str]]:
        return set(held["acls"]), []

    async def scram_users(admin: Any) -> dict[str, frozenset[str]]:
        return {user: frozenset({"SCRAM_SHA_512"}) for user in parties(policy, cfg.agencies)}

    async def user_quotas(conn: Any) -> dict[str, dict[str, float]]:
        return {user: dict(values) for user, values in quotas.items()}

    monkeypatch.setattr(access, "settings", lambda args: cfg)
    monkeypatch.setattr(access, "user_quotas", user_quotas)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: SimpleNamespace(username="admin"))
    monkeypatch.setattr(access, "Admin", lambda conn: None)
    monkeypatch.setattr(access, "cluster_acls", cluster_acls)
    monkeypatch.setattr(access, "scram_users", scram_users)
    return held


def _puente(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


@pytest.mark.parametrize("rule", [
    Acl("evil", "UNKNOWN", "User:partner-COL", "LITERAL", "UNKNOWN"),  # CreateTokens on partner-COL, as read
    Acl("evil", "USER", "User:partner-COL", "LITERAL", "CREATE_TOKENS"),  # a later client that names USER
], ids=str)
def test_a_rule_on_a_resource_the_client_cannot_name_is_not_said_to_be_on_this_deployments(
        rule: Acl, cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A token rule for a party's login is removed as one on a resource the client cannot name, never as one on
    "this deployment's unknowns" (a type Puente's plan has none of)."""
    cluster["acls"].add(rule)
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    assert f"- {rule} (a login no policy names, on a resource the Kafka client cannot name: a party's delegation " \
           "tokens, perhaps)" in out, out
    assert not [line for line in out if "unknowns" in line or "users alone" in line], out


def test_a_rule_by_a_pattern_the_client_cannot_name_says_so(cluster: dict[str, Any],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A topic rule by a pattern type the client reads as UNKNOWN is removed as such, not as one on this
    deployment's topics alone (which it may not be)."""
    rule = Acl("evil", "TOPIC", "puente.feed.COL", "UNKNOWN", "READ")
    cluster["acls"].add(rule)
    assert _puente("acls", "plan") == 1
    assert f"- {rule} (a login no policy names, on topics by a pattern the Kafka client cannot name)" \
        in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(("rule", "where"), [
    (Acl("admin", "UNKNOWN", "User:partner-COL", "LITERAL", "UNKNOWN"),  # the admin's own: left to the operator
     "on a resource the Kafka client cannot name: a party's delegation tokens, perhaps"),
    (Acl("ops", "CLUSTER", "kafka-cluster", "LITERAL", "UNKNOWN"), "on the cluster"),  # a later Kafka's power
], ids=str)
def test_a_rule_left_to_the_operator_says_where_it_is(rule: Acl, where: str, cluster: dict[str, Any],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A rule left to the operator (`!`) on a resource the client cannot name, or on the cluster, says so, never
    "this deployment's unknowns" or "this deployment's clusters"."""
    cluster["acls"].add(rule)
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.endswith(f": {rule}")] == [
        f"! a login no policy names, {where}; not removed here, remove it if it is not needed: {rule}"], out
