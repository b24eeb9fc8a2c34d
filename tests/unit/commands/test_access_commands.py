"""`puente acls plan` and `acls apply` with the cluster's ACLs standing in for Kafka: a rule of one of Puente's parties
that the plan does not name is drift (plan exits 1) whatever its resource, pattern or operation, and apply removes it;
other principals' rules are listed as not Puente's and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from stray_acls import STRAYS as COMMON_STRAYS

import puente.commands.access as access
from broker.access import Acl, parties, plan
from broker.kafka.acls import AclChanges
from broker.topology import TopicNames
from policies import load_policy_set
from puente.cli import build_parser
from puente.settings import PuenteSettings

STRAYS = [
    *COMMON_STRAYS,
    Acl("broker", "CLUSTER", "kafka-cluster", "LITERAL", "ALTER_CONFIGS"),
    Acl("auditor", "TOPIC", "puente.audit.decisions", "LITERAL", "CREATE"),
]
FOREIGN = [Acl("admin", "TOPIC", "ops.m", "LITERAL", "ALL"), Acl("billing", "TOPIC", "orders", "LITERAL", "WRITE"),
           # An operator's block on a party only takes rights away: listed, never removed, no drift.
           Acl("partner-COL", "TOPIC", "puente.feed.COL", "LITERAL", "READ", "DENY")]


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The command's settings and Kafka replaced: the cluster holds the plan plus ``held["extra"]``; apply records
    the changes it was given and makes them."""
    cfg = PuenteSettings(topic_prefix="puente")
    policy = load_policy_set(cfg.policy_dir)
    wanted = plan(policy, TopicNames("puente"), cfg.agencies, cfg.broker_group)
    held: dict[str, Any] = {"acls": set(wanted), "applied": [], "wanted": wanted,
                            "parties": parties(policy, cfg.agencies)}

    async def cluster_acls(admin: Any) -> tuple[set[Acl], list[str]]:
        return set(held["acls"]), ["ResourcePattern(...) Group:ops"]

    async def apply_acls(admin: Any, changes: AclChanges) -> list[str]:
        held["applied"].append(changes)
        held["acls"] = (held["acls"] | set(changes.add)) - set(changes.remove)
        return []

    monkeypatch.setattr(access, "settings", lambda args: cfg)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(access, "Admin", lambda conn: None)
    monkeypatch.setattr(access, "cluster_acls", cluster_acls)
    monkeypatch.setattr(access, "apply_acls", apply_acls)
    return held


def _puente(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


def test_a_cluster_as_planned_is_no_change(cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    cluster["acls"] |= set(FOREIGN)
    assert _puente("acls", "plan") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "no change: the cluster's ACLs are what the policy implies"
    assert all(f"? not Puente's to manage, left as it is: {a}" in out for a in FOREIGN)
    assert "Group:ops" in out and "- " not in out


@pytest.mark.parametrize("stray", STRAYS, ids=str)
def test_plan_reports_a_partys_stray_rule_as_drift(cluster: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                                   stray: Acl) -> None:
    cluster["acls"] |= {stray, *FOREIGN}
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    assert f"- {stray}" in out and out[-1] == "0 to add, 1 to remove"
    assert not any(line.startswith("?") and str(stray) in line for line in out)


def test_apply_removes_every_stray_rule_and_leaves_others(cluster: dict[str, Any],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cluster["acls"] |= {*STRAYS, *FOREIGN}
    assert _puente("acls", "apply") == 0
    (changes,) = cluster["applied"]
    assert set(changes.remove) == set(STRAYS) and not changes.add
    assert cluster["acls"] == cluster["wanted"] | set(FOREIGN)
    capsys.readouterr()
    assert _puente("acls", "plan") == 0


def test_a_rule_for_every_user_fails_plan_and_apply_but_stays(cluster: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`User:*` reaches Puente's parties: flagged (`!`), exit 1, left for the operator to judge."""
    everyone = Acl("*", "TOPIC", "puente.feed.USA", "LITERAL", "READ")
    cluster["acls"].add(everyone)
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out
    assert f"! for every user, Puente's parties included; not removed here, remove it if it is not needed: " \
           f"{everyone}" in out
    assert _puente("acls", "apply") == 1
    assert everyone in cluster["acls"]


def test_a_login_no_policy_names_reading_a_feed_fails_plan_and_apply_but_stays(
        cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A rule for a login no policy names on one of this deployment's topics: flagged (`!`), exit 1, never
    "no change"; left for the operator to judge."""
    eve = Acl("eve", "TOPIC", "puente.feed.USA", "LITERAL", "READ")
    cluster["acls"].add(eve)
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out
    assert f"! a login no policy names, on this deployment's topics; not removed here, remove it if it is not " \
           f"needed: {eve}" in out
    assert "no change" not in out and out.splitlines()[-1].endswith("1 rule(s) of logins no policy names left to "
                                                                     "the operator")
    assert _puente("acls", "apply") == 1
    assert eve in cluster["acls"]


def test_names_from_the_cluster_reach_the_terminal_escaped(cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Principals, resource names, hosts, other principals' rules and failures, as Kafka stores them, are printed
    one line each, with no control character, escape sequence, bidi override or line break of theirs."""
    forged = "x\nno change: the cluster's ACLs are what the policy implies\x1b]0;owned\x07"
    cluster["acls"] |= {Acl("partner-COL", "TOPIC", forged, "LITERAL", "READ"),
                        Acl("eve\x1b[2K\r", "TOPIC", "puente.feed.USA", "LITERAL", "READ"),
                        Acl("billing", "TOPIC", "orders\x1b[31m", "LITERAL", "READ", "ALLOW", "10.0.0.1\u202e")}

    async def cluster_acls(admin: Any) -> tuple[set[Acl], list[str]]:
        return set(cluster["acls"]), ["ResourcePattern(name=ops\x1b[8m\n) Group:ops"]

    async def apply_acls(admin: Any, changes: AclChanges) -> list[str]:
        return [f"remove {changes.remove[0]}: refused\x9b2J"]

    monkeypatch.setattr(access, "cluster_acls", cluster_acls)
    monkeypatch.setattr(access, "apply_acls", apply_acls)
    for verb, lines in (("plan", 5), ("apply", 6)):
        assert _puente("acls", verb) == 1
        out = capsys.readouterr().out
        assert out.endswith("\n") and all(line.isprintable() for line in out[:-1].split("\n"))
        assert len(out.splitlines()) == lines and not any(line.startswith("no change") for line in out.splitlines())
