"""`puente acls plan` and `acls apply` with the cluster's ACLs and client quotas standing in for Kafka: a rule of one of
Puente's parties that the plan does not name is drift (plan exits 1) whatever its resource, pattern or operation, and
apply removes it; other principals' rules are listed as not Puente's and change nothing. The same for the parties'
client quotas, shown and counted beside the rules and applied after them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from stray_acls import STRAYS as COMMON_STRAYS

import puente.commands.access as access
from broker.access import Acl, parties, plan, quota_plan
from broker.kafka.acls import AclChanges
from broker.topology import TopicNames
from policies import load_policy_set
from puente.cli import build_parser
from puente.errors import ConfigError, KafkaUnavailableError
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
    quotas = quota_plan(policy, cfg.agencies, logins=())
    held: dict[str, Any] = {"acls": set(wanted), "applied": [], "wanted": wanted,
                            "parties": parties(policy, cfg.agencies), "quota_plan": quotas,
                            "quotas": {user: dict(values) for user, values in quotas.items()}, "quotas_set": [],
                            "quota_refusals": {}, "logins": list(parties(policy, cfg.agencies))}

    async def cluster_acls(admin: Any) -> tuple[set[Acl], list[str]]:
        return set(held["acls"]), ["ResourcePattern(...) Group:ops"]

    async def apply_acls(admin: Any, changes: AclChanges) -> list[str]:
        held["applied"].append(changes)
        held["acls"] = (held["acls"] | set(changes.add)) - set(changes.removals)
        return []

    async def scram_users(admin: Any) -> dict[str, frozenset[str]]:
        return {user: frozenset({"SCRAM_SHA_512"}) for user in held["logins"]}

    async def user_quotas(conn: Any) -> dict[str, dict[str, float]]:
        return {user: dict(values) for user, values in held["quotas"].items()}

    async def set_user_quotas(conn: Any, changes: dict[str, dict[str, float | None]]) -> dict[str, str]:
        held["quotas_set"].append(changes)
        for user, ops in changes.items():
            if user in held["quota_refusals"]:
                continue
            for key, value in ops.items():
                if value is None:
                    held["quotas"].get(user, {}).pop(key, None)
                else:
                    held["quotas"].setdefault(user, {})[key] = value
        return dict(held["quota_refusals"])

    monkeypatch.setattr(access, "settings", lambda args: cfg)
    monkeypatch.setattr(access, "user_quotas", user_quotas)
    monkeypatch.setattr(access, "set_user_quotas", set_user_quotas)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: SimpleNamespace(username="admin"))
    monkeypatch.setattr(access, "Admin", lambda conn: None)
    monkeypatch.setattr(access, "cluster_acls", cluster_acls)
    monkeypatch.setattr(access, "scram_users", scram_users)
    monkeypatch.setattr(access, "apply_acls", apply_acls)
    return held


def _puente(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


def test_a_cluster_as_planned_is_no_change(cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    cluster["acls"] |= set(FOREIGN)
    assert _puente("acls", "plan") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "no change: the cluster's ACLs and client quotas are what the policy implies"
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
    """`User:*` on every topic reaches Puente's parties and others': flagged (`!`), exit 1, left for the operator
    to judge."""
    everyone = Acl("*", "TOPIC", "*", "LITERAL", "READ")
    cluster["acls"].add(everyone)
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out
    assert f"! for every user, Puente's parties included; not removed here, remove it if it is not needed: " \
           f"{everyone}" in out
    assert _puente("acls", "apply") == 1
    assert everyone in cluster["acls"]


def test_a_login_no_policy_names_reading_every_topic_fails_plan_and_apply_but_stays(
        cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A rule for a login no policy names on every topic, this deployment's among them: flagged (`!`), exit 1,
    never "no change"; left for the operator to judge, as it may be another application's too."""
    eve = Acl("eve", "TOPIC", "", "PREFIXED", "READ")
    cluster["acls"].add(eve)
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out
    assert f"! a login no policy names, on this deployment's topics; not removed here, remove it if it is not " \
           f"needed: {eve}" in out
    assert "no change" not in out and out.splitlines()[-1].endswith("1 rule(s) of logins no policy names left to "
                                                                     "the operator")
    assert _puente("acls", "apply") == 1
    assert eve in cluster["acls"]


def test_rules_of_others_on_this_deployments_feeds_alone_are_removed(cluster: dict[str, Any],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A login no policy names, or every user, reading a partner's feed or joining its subscriber group: `acls plan`
    shows them to be removed (exit 1), `acls apply` removes them (exit 0), and Kafka then refuses those logins."""
    intruders = {Acl("eve", "TOPIC", "puente.feed.USA", "LITERAL", "READ"),
                 Acl("*", "GROUP", "puente.feed.", "PREFIXED", "READ")}
    cluster["acls"] |= intruders
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    for acl in intruders:
        assert f"- {acl} (a login no policy names, on this deployment's {acl.resource.lower()}s alone)" in out
    assert out[-1] == "0 to add, 2 to remove"
    assert _puente("acls", "apply") == 0
    assert not intruders & cluster["acls"]
    capsys.readouterr()
    assert _puente("acls", "plan") == 0


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


def test_a_partys_hand_set_quota_is_drift_that_apply_sets_back(cluster: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A partner's rate raised by hand and a key the plan does not name, and the broker's quota: `acls plan` shows
    each (`+ quota`, `- quota`), counts them and exits 1; `acls apply` makes them the plan's, after the ACLs."""
    cluster["quotas"]["partner-COL"].update(producer_byte_rate=100 * 1048576, connection_creation_rate=5.0)
    cluster["quotas"]["broker"] = {"request_percentage": 10.0}
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    assert "+ quota User:partner-COL producer_byte_rate=1048576 (now 104857600)" in out
    assert "- quota User:partner-COL connection_creation_rate=5" in out
    assert "- quota User:broker request_percentage=10" in out
    assert out[-1] == "0 to add, 0 to remove; client quotas: 1 to set, 2 to remove"
    assert _puente("acls", "apply") == 0
    assert cluster["quotas_set"] == [{"partner-COL": {"producer_byte_rate": 1048576.0,
                                                      "connection_creation_rate": None},
                                      "broker": {"request_percentage": None}}]
    assert cluster["quotas"] == {**cluster["quota_plan"], "broker": {}}
    capsys.readouterr()
    assert _puente("acls", "plan") == 0


def test_a_former_partys_kept_login_keeps_a_trickle_of_quota(cluster: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`acls apply` with a former partner's login still on the cluster (no `users apply --prune` yet) sets its quotas
    to the trickle instead of removing them: a login that still authenticates is never left without a rate limit.
    Once the login is deleted, its quotas are removed."""
    cluster["logins"].append("partner-GONE")
    cluster["quotas"]["partner-GONE"] = dict(cluster["quota_plan"]["partner-COL"])
    assert _puente("acls", "apply") == 0
    assert cluster["quotas"]["partner-GONE"] == {"producer_byte_rate": 1024.0, "consumer_byte_rate": 1024.0,
                                                 "request_percentage": 1.0}
    capsys.readouterr()
    assert _puente("acls", "plan") == 0
    cluster["logins"].remove("partner-GONE")
    assert _puente("acls", "apply") == 0
    assert cluster["quotas"]["partner-GONE"] == {}


def test_a_cluster_without_quotas_gets_every_partys(cluster: dict[str, Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """No quota yet (a cluster from before quotas): every party's is to set, and apply sets them."""
    cluster["quotas"] = {}
    assert _puente("acls", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    count = sum(len(values) for values in cluster["quota_plan"].values())
    assert len([line for line in out if line.startswith("+ quota ")]) == count
    assert out[-1] == f"0 to add, 0 to remove; client quotas: {count} to set, 0 to remove"
    assert _puente("acls", "apply") == 0
    assert cluster["quotas"] == cluster["quota_plan"]


def test_other_users_quotas_are_listed_and_left(cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The admin's and the default's quotas are not Puente's: listed with `?`, no drift, never changed."""
    cluster["quotas"].update({"admin": {"request_percentage": 300.0}, "<default>": {"producer_byte_rate": 10.0}})
    assert _puente("acls", "plan") == 0
    out = capsys.readouterr().out.splitlines()
    assert "? not Puente's to manage, left as it is: quota User:admin request_percentage=300" in out
    assert ("? not Puente's to manage, left as it is: quota User:<default> producer_byte_rate=10 (the default of "
            "every user without one of its own: the broker's and the admin's too)") in out
    assert _puente("acls", "apply") == 0 and cluster["quotas_set"] == [{}]


def test_a_refused_quota_change_fails_apply(cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A user whose quota change Kafka refused is reported as FAILED, and apply exits 1."""
    cluster["quotas"]["partner-COL"]["producer_byte_rate"] = 1.0
    cluster["quota_refusals"] = {"partner-COL": "INVALID_REQUEST: refused\x1b[2J"}
    assert _puente("acls", "apply") == 1
    out = capsys.readouterr().out
    assert "FAILED quota User:partner-COL: INVALID_REQUEST: refused\\x1b[2J" in out.splitlines()
    assert all(line.isprintable() for line in out.splitlines())


def test_user_names_from_the_cluster_reach_the_terminal_escaped(cluster: dict[str, Any],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A user name holding a line break or an escape sequence is printed on one line, escaped, in every quota line."""
    cluster["quotas"]["partner-X\nno change: forged\x1b[2K"] = {"producer_byte_rate": 1.0}
    cluster["quotas"]["ops\u202e\n"] = {"producer_byte_rate": 1.0}
    for verb in ("plan", "apply"):
        _puente("acls", verb)
        out = capsys.readouterr().out
        assert all(line.isprintable() for line in out.splitlines())
        assert not any(line.startswith("no change") for line in out.splitlines())


def test_apply_shows_the_acl_changes_made_when_the_quota_step_fails(cluster: dict[str, Any],
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The ACL changes stand on the cluster when the quota step then stops on an error: apply prints them, and that
    the quotas were not set, before the error reaches the person."""
    cluster["acls"] |= {*STRAYS}
    cluster["quotas"]["partner-COL"]["producer_byte_rate"] = 1.0

    async def unreachable(conn: Any, changes: dict[str, dict[str, float | None]]) -> dict[str, str]:
        raise KafkaUnavailableError("Kafka at 127.0.0.1:1 did not answer")

    monkeypatch.setattr(access, "set_user_quotas", unreachable)
    with pytest.raises(KafkaUnavailableError):
        _puente("acls", "apply")
    out = capsys.readouterr().out.splitlines()
    assert {f"- {acl}" for acl in STRAYS} <= set(out)
    assert out[-1] == ("ACLs: the changes above were made (0 failed); the client quotas were not set (1 to set, 0 to "
                       "remove): `puente acls plan` shows them")
    assert not any(line.startswith("+ quota") for line in out)


def test_apply_refuses_to_take_most_rights_away_at_once_unless_told(cluster: dict[str, Any],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The cluster holds another prefix's plan for the same parties (`acls apply` run with this deployment's
    PUENTE_TOPIC_PREFIX by mistake would remove them all, cutting every party off its topics): `plan` says apply
    would refuse; `apply` refuses in one line, changing nothing; with --allow-many it goes ahead. A few strays
    among the plan's rules are removed without it (above)."""
    cfg = PuenteSettings(topic_prefix="other")
    theirs = plan(load_policy_set(cfg.policy_dir), TopicNames("other"), cfg.agencies, cfg.broker_group)
    cluster["acls"] = set(theirs)
    assert _puente("acls", "plan") == 1
    assert "! `puente acls apply` refuses this without --allow-many" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"refusing to remove \d+ of the \d+ rules .*--allow-many"):
        _puente("acls", "apply")
    assert cluster["applied"] == [] and cluster["acls"] == set(theirs)
    assert _puente("acls", "apply", "--allow-many") == 0
    assert cluster["acls"] == set(cluster["wanted"])
