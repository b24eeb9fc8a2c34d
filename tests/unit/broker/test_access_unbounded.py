"""`broker.access.unbounded` and `broker.kafka.acls.acl_changes`: a rule Puente cannot bound (a USER resource naming
one of its logins, a resource or pattern type the Kafka client cannot name) is drift whoever holds it, never "left
as it is": librdkafka reads Kafka's USER resource as UNKNOWN, and CreateTokens on ``User:partner-COL`` lets its
holder mint a delegation token that authenticates as that partner."""

from __future__ import annotations

from typing import Any

import pytest

from broker.access import Acl, parties, plan, unbounded
from broker.kafka.acls import acl_changes, apply_acls
from broker.topology import TopicNames
from policies import PolicySet, load_policy_set

NAMES = TopicNames("puente")
AGENCIES = ("PN", "SNM")
GROUP = "puente-broker"

# `kafka-acls --add --allow-principal User:evil --operation CreateTokens --operation DescribeTokens
# --user-principal User:partner-COL`, as librdkafka lists it.
TOKENS_FOR_COL = Acl("evil", "UNKNOWN", "User:partner-COL", "LITERAL", "UNKNOWN")

UNBOUNDED = [
    TOKENS_FOR_COL,
    Acl("*", "UNKNOWN", "User:broker", "LITERAL", "UNKNOWN"),  # every user may mint the broker's tokens
    Acl("evil", "UNKNOWN", "whatever", "LITERAL", "READ"),  # a type the client cannot name: whose, it cannot say
    Acl("evil", "UNKNOWN", "User:partner-COL", "PREFIXED", "UNKNOWN", "ALLOW", "10.0.0.9"),
    # A later client that names the USER type: a party's login, the admin's, any user, users by a prefix.
    Acl("evil", "USER", "User:partner-COL", "LITERAL", "CREATE_TOKENS"),
    Acl("evil", "USER", "User:agency-GONE", "LITERAL", "CREATE_TOKENS"),
    Acl("evil", "USER", "User:admin", "LITERAL", "DESCRIBE_TOKENS"),
    Acl("evil", "USER", "User:*", "LITERAL", "CREATE_TOKENS"),
    Acl("evil", "USER", "User:partner-", "PREFIXED", "CREATE_TOKENS"),
    # A pattern type the client cannot name, on a feed: what names it matches, no one here can say.
    Acl("evil", "TOPIC", "puente.feed.USA", "UNKNOWN", "READ"),
]


@pytest.fixture(scope="module")
def policy() -> PolicySet:
    return load_policy_set()


@pytest.mark.parametrize("rule", UNBOUNDED, ids=str)
def test_a_rule_puente_cannot_bound_is_an_intruder_whoever_holds_it(policy: PolicySet, rule: Acl) -> None:
    """A login no policy names, or every user, holding a rule on a login's resource or one the client reads as
    UNKNOWN: drift (`acls plan` exits 1) and a rule to remove, not one of the others left as they are."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {rule}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    assert changes.intruders == (rule,) and rule in changes.removals
    assert rule not in changes.others and changes.drift


def test_the_same_rule_held_by_a_party_is_removed(policy: PolicySet) -> None:
    """A party's own rule on an unnamed resource is outside the plan: removed, as any of its rules the plan omits."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    own = Acl("partner-USA", "UNKNOWN", "User:partner-COL", "LITERAL", "UNKNOWN")
    changes = acl_changes(want | {own}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    assert changes.remove == (own,) and changes.drift


def test_the_admins_own_unbounded_rule_is_drift_left_to_the_operator(policy: PolicySet) -> None:
    """The admin's rules are never removed by the login applying them, but one Puente cannot bound is reported
    (a stranger: drift), not left as it is."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    rule = Acl("admin", "UNKNOWN", "User:partner-COL", "LITERAL", "UNKNOWN")
    changes = acl_changes(want | {rule}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    assert changes.strangers == (rule,) and not changes.intruders and changes.drift


def test_a_cluster_power_the_client_cannot_name_is_drift(policy: PolicySet) -> None:
    """An operation on the cluster the client reads as UNKNOWN (a later Kafka's power) is never taken as harmless."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    rule = Acl("ops", "CLUSTER", "kafka-cluster", "LITERAL", "UNKNOWN")
    changes = acl_changes(want | {rule}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    assert changes.strangers == (rule,) and changes.drift


@pytest.mark.parametrize("rule", [
    Acl("evil", "USER", "User:billing", "LITERAL", "CREATE_TOKENS"),  # another application's login
    Acl("evil", "UNKNOWN", "User:partner-COL", "LITERAL", "UNKNOWN", "DENY"),  # takes rights away only
], ids=str)
def test_a_rule_that_cannot_reach_a_party_is_left_and_listed(policy: PolicySet, rule: Acl) -> None:
    """A named USER rule for another application's login, and a DENY, are not Puente's: listed, no drift."""
    assert not unbounded(rule, parties(policy, AGENCIES))
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {rule}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    assert changes.others == (rule,) and not changes.drift


class _Admin:
    """Only what ``apply_acls`` asks of the admin; every delete it is asked for is kept to check."""

    def __init__(self) -> None:
        self.deleted: list[Any] = []
        self.conn = type("Conn", (), {"timeout_s": 2.0, "bootstrap": "test"})()

    async def call(self, what: str, operation: Any) -> Any:
        return operation(self)

    def delete_acls(self, filters: list[Any], request_timeout: float) -> dict[Any, list[Any]]:
        self.deleted += filters
        return {f: [] for f in filters}

    async def results(self, what: str, futures: dict[Any, Any]) -> dict[Any, Any]:
        return dict(futures)

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


async def test_apply_reports_a_token_rule_to_remove_by_hand(policy: PolicySet) -> None:
    """`acls apply` fails on a rule the client cannot name, saying how to remove it with kafka-acls, and deletes
    nothing in its place (a filter with ANY would delete other rules too)."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {TOKENS_FOR_COL}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    admin = _Admin()
    assert not changes.add
    failed = await apply_acls(admin, changes)  # type: ignore[arg-type]
    assert len(failed) == 1 and "User:evil" in failed[0] and "kafka-acls --list --principal User:evil" in failed[0]
    assert admin.deleted == []
