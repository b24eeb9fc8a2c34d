"""`broker.access.plan` fails closed on the names it grants, and the settings refuse the broker group before it: no
wildcard, no character outside Kafka's legal set, no group, transactional id or written topic shared with another
party, no prefix of one party that matches another's names; each refusal is one line naming the setting to check."""

from __future__ import annotations

import dataclasses

import pytest

from broker.access import Acl, check_grants, overlaps, plan
from broker.topology import TopicNames
from policies import PolicySet, load_policy_set
from puente.errors import ConfigError
from puente.settings import PuenteSettings, load_settings

NAMES = TopicNames("puente")
AGENCIES = ("PN", "SNM")


@pytest.fixture(scope="module")
def policy() -> PolicySet:
    return load_policy_set()


@pytest.mark.parametrize("group", ["*", "x\ny", "", "puente broker", "grp*"])
def test_plan_refuses_a_broker_group_that_is_a_wildcard_or_not_a_plain_name(policy: PolicySet, group: str) -> None:
    """A LITERAL `*` is every group in Kafka: the plan names PUENTE_GROUP_ID instead of granting READ on all of them."""
    with pytest.raises(ConfigError, match="check PUENTE_GROUP_ID") as caught:
        plan(policy, NAMES, AGENCIES, group)
    assert "\n" not in str(caught.value)


def test_plan_refuses_a_broker_group_that_is_a_partners_subscriber_group(policy: PolicySet) -> None:
    """READ on Colombia's subscriber group would let the broker join it and take its partitions: refused."""
    with pytest.raises(ConfigError, match=r"puente\.feed\.COL\.subscriber.*check PUENTE_GROUP_ID"):
        plan(policy, NAMES, AGENCIES, "puente.feed.COL.subscriber")


def test_no_agency_or_partner_may_reach_a_topic_another_one_is_granted() -> None:
    """Agencies and partners are kept from each other's topics, for reading too: a plan granting two of them one
    topic is refused, naming both sources; a trusted reader (the auditor) of a partner's topic is no conflict."""
    receipts = Acl("partner-COL", "TOPIC", "puente.receipts.COL", "LITERAL", "READ")
    with pytest.raises(ConfigError, match=r"check PUENTE_AGENCIES \(agency X\) and partners\.yaml"):
        check_grants({Acl("agency-X", "TOPIC", "puente.receipts.", "PREFIXED", "READ"): "PUENTE_AGENCIES (agency X)",
                      receipts: "partners.yaml"})
    check_grants({Acl("auditor", "TOPIC", "puente.receipts.", "PREFIXED", "READ"): "PUENTE_TOPIC_PREFIX",
                  receipts: "partners.yaml"})


def test_plan_refuses_a_feed_outside_the_feed_prefix(policy: PolicySet) -> None:
    """A partner whose feed_topic names another party's topic (Colombia's receipts) would be granted READ on it:
    refused, naming the partner's feed_topic."""
    usa = dataclasses.replace(policy.partners["USA"], feed_topic="puente.receipts.COL")
    bent = dataclasses.replace(policy, partners={**policy.partners, "USA": usa})
    with pytest.raises(ConfigError, match=r"partner USA's feed_topic .*check its feed_topic in partners\.yaml"):
        plan(bent, NAMES, AGENCIES, "puente-broker")


def test_a_prefix_of_one_party_may_not_match_another_partys_transactional_id() -> None:
    """A PREFIXED transactional id of the broker that matches the console's literal one (or a prefix of it) is
    refused, naming both sources; the same rule twice for one party is no conflict."""
    console = Acl("console", "TRANSACTIONAL_ID", "puente.console", "LITERAL", "WRITE")
    for broad in ("puente.", "puente.console", "puente.c"):
        broker = Acl("broker", "TRANSACTIONAL_ID", broad, "PREFIXED", "WRITE")
        with pytest.raises(ConfigError, match="check PUENTE_GROUP_ID and PUENTE_TOPIC_PREFIX"):
            check_grants({broker: "PUENTE_GROUP_ID", console: "PUENTE_TOPIC_PREFIX"})
    check_grants({console: "PUENTE_TOPIC_PREFIX",
                  Acl("console", "TRANSACTIONAL_ID", "puente.", "PREFIXED", "WRITE"): "PUENTE_TOPIC_PREFIX"})


def test_reading_what_another_writes_and_describing_groups_stay_allowed(policy: PolicySet) -> None:
    """Shared by design, so not refused: the auditor describes the broker group and every feed's group, the broker
    reads the ingress topics the agencies write (the shipped plan passes the check)."""
    acls = plan(policy, NAMES, AGENCIES, "puente-broker")
    assert Acl("auditor", "GROUP", "puente-broker", "LITERAL", "DESCRIBE") in acls
    assert Acl("broker", "TOPIC", "puente.ingress.", "PREFIXED", "READ") in acls


def test_overlaps_is_kafkas_matching() -> None:
    """A PREFIXED pattern matches every literal name and every prefix that starts with it; literals match only
    themselves; different resource types never match."""
    lit = Acl("a", "GROUP", "puente.feed.COL.subscriber", "LITERAL", "READ")
    assert overlaps(Acl("b", "GROUP", "puente.feed.", "PREFIXED", "READ"), lit)
    assert overlaps(lit, Acl("b", "GROUP", "puente.feed.", "PREFIXED", "READ"))
    assert overlaps(Acl("b", "GROUP", "puente.", "PREFIXED", "READ"), Acl("c", "GROUP", "puente.feed.", "PREFIXED",
                                                                          "READ"))
    assert not overlaps(Acl("b", "GROUP", "puente.feed.USA", "PREFIXED", "READ"), lit)
    assert not overlaps(Acl("b", "TOPIC", "puente.feed.COL.subscriber", "LITERAL", "READ"), lit)


@pytest.mark.parametrize("group", ["*", "x\ny", "-lead", "a" * 201, "puente.feed.COL.subscriber", "puente.x"])
def test_the_settings_refuse_a_group_id_that_is_no_name_or_another_partys(monkeypatch: pytest.MonkeyPatch,
                                                                          group: str) -> None:
    """PUENTE_GROUP_ID follows the identifiers' rule and stays out of <topic_prefix>.*, the partners' subscriber
    groups: one line naming PUENTE_GROUP_ID."""
    monkeypatch.setenv("PUENTE_GROUP_ID", group)
    with pytest.raises(ConfigError, match="PUENTE_GROUP_ID") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("prefix", [".", "..", "_x", "a*", "a" * 101])
def test_the_settings_refuse_a_topic_prefix_that_is_no_name(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """PUENTE_TOPIC_PREFIX names every topic and ACL: a letter or digit first, Kafka's characters, bounded."""
    monkeypatch.setenv("PUENTE_TOPIC_PREFIX", prefix)
    with pytest.raises(ConfigError, match="PUENTE_TOPIC_PREFIX"):
        load_settings()


def test_the_settings_keep_a_plain_group_id() -> None:
    """A group of its own (the default, or another plain name outside the topics' prefix) is accepted."""
    assert PuenteSettings(group_id="ops.puente-broker").broker_group == "ops.puente-broker"
    assert PuenteSettings(topic_prefix="t-1").broker_group == "t-1-broker"
