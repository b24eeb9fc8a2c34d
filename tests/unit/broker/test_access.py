"""`broker.access` and `broker.kafka.acls`: the plan is the whole of what Puente's parties may do. Every rule of one
of them that the plan does not name is removed, whatever its resource type, name, pattern, operation, permission
or host; other principals' rules are left alone and listed. A partner partners.yaml lists keeps its feed, group,
receipts and transactional ids with no agreement, and its feed keeps notices long enough to read them."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from stray_acls import STRAYS as COMMON_STRAYS

from broker.access import (
    Acl,
    managed,
    parties,
    partner_principal,
    plan,
    subscriber_group,
    subscriber_transaction,
)
from broker.kafka.acls import acl_changes, apply_acls, cluster_acls, every_acl_filter
from broker.topology import NOTICE_RETENTION_FLOOR_DAYS, TopicNames, feed_retention
from policies import DEFAULT_DIR, PolicySet, load_policy_set
from puente.settings import PuenteSettings

NAMES = TopicNames("puente")
AGENCIES = ("PN", "SNM")
GROUP = "puente-broker"


@pytest.fixture(scope="module")
def policy() -> PolicySet:
    return load_policy_set()


@pytest.fixture(scope="module")
def without_cri(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    """The shipped policy with CRI's only agreement removed: CRI stays in partners.yaml."""
    root = tmp_path_factory.mktemp("policy") / "policy"
    shutil.copytree(DEFAULT_DIR, root)
    (root / "agreements" / "pan-cri.yaml").unlink()
    (root / "agreements" / "pan-cri.tests.yaml").unlink()
    return load_policy_set(Path(root))


# The shared strays (tests/support/stray_acls.py), and more of the kinds this module covers.
STRAYS = [
    *COMMON_STRAYS,
    Acl("partner-COL", "TOPIC", "puente.feed.USA", "LITERAL", "READ"),
    Acl("broker", "CLUSTER", "kafka-cluster", "LITERAL", "ALTER_CONFIGS"),
    Acl("auditor", "TOPIC", "other-app.orders", "LITERAL", "CREATE"),
    Acl("console", "TOPIC", "puente.audit.queries", "LITERAL", "READ", "ALLOW", "10.0.0.9"),
    Acl("partner-GONE", "TOPIC", "puente.feed.GONE", "LITERAL", "READ"),  # a partner the policy no longer lists
    # What an earlier Puente granted each partner: every transactional id under its prefix, as many as it liked.
    *(Acl("partner-COL", "TRANSACTIONAL_ID", "puente-subscriber:puente.receipts.COL:COL", "PREFIXED", op)
      for op in ("WRITE", "DESCRIBE")),
    # An instance partners.yaml does not name.
    Acl("partner-COL", "TRANSACTIONAL_ID", "puente-subscriber:puente.receipts.COL:COL/flood-1", "LITERAL", "WRITE"),
]
FOREIGN = [
    # A party's DENY only takes rights away (an operator's block on a compromised partner): never removed.
    Acl("partner-COL", "TOPIC", "puente.feed.COL", "LITERAL", "READ", "DENY"),
    Acl("admin", "TOPIC", "ops.", "PREFIXED", "ALL"),
    Acl("billing", "TOPIC", "orders", "LITERAL", "READ"),
    Acl("billing", "CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"),
    Acl("other", "TOPIC", "puente2.", "PREFIXED", "ALL"),  # another deployment's prefix: none of this one's names
    # A monitoring login describing only other applications' resources.
    Acl("exporter", "TOPIC", "orders", "LITERAL", "DESCRIBE"),
    Acl("burrow", "GROUP", "billing.", "PREFIXED", "DESCRIBE"),
]
# Rules only to describe this deployment's resources, of logins neither a policy nor PUENTE_ACL_OBSERVERS names: a
# feed's offsets over time say how many alerts its partner got and when; a group's members, the partner's hosts.
LOOKERS = [
    Acl("exporter", "TOPIC", "*", "LITERAL", "DESCRIBE"),
    Acl("burrow", "GROUP", "*", "LITERAL", "DESCRIBE"),
    Acl("eve", "TOPIC", "puente.feed.USA", "LITERAL", "DESCRIBE"),
    Acl("eve", "GROUP", "puente.feed.COL.subscriber", "LITERAL", "DESCRIBE"),
    Acl("eve", "TOPIC", "puente.", "PREFIXED", "DESCRIBE_CONFIGS"),
    Acl("eve", "TRANSACTIONAL_ID", "puente-subscriber:", "PREFIXED", "DESCRIBE"),
]
# Rules of logins no policy names that reach this deployment's topics, groups or transactional ids.
# Rules of logins no policy names on this deployment's resources alone: removed, whoever they name.
INTRUDERS = [
    Acl("eve", "TOPIC", "puente.feed.USA", "LITERAL", "READ"),
    Acl("eve", "TOPIC", "puente.feed.", "PREFIXED", "READ"),
    Acl("eve", "TOPIC", "puente.feed.USA.old", "LITERAL", "READ"),  # under the prefix: a topic the plan may make
    Acl("*", "TOPIC", "puente.feed.USA", "LITERAL", "READ"),  # every user, on a feed
    Acl("*", "GROUP", "puente.feed.", "PREFIXED", "READ"),  # every user, on the subscriber groups
    Acl("Partner-USA", "TOPIC", "puente.audit.decisions", "LITERAL", "WRITE"),
    Acl("svc-col", "GROUP", "puente.feed.COL.subscriber", "LITERAL", "READ"),
    Acl("eve", "TOPIC", "puente.feed.USA", "LITERAL", "READ", "ALLOW", "10.0.0.9"),
    Acl("ops", "TOPIC", "puente.audit.", "PREFIXED", "DELETE"),  # DeleteRecords: the audit's records gone
]
# Rules of logins no policy names reaching further than this deployment's resources: reported, left.
STRANGERS = [
    Acl("admin", "TOPIC", "*", "LITERAL", "ALL"),
    Acl("broker2", "TOPIC", "puente", "PREFIXED", "ALL"),
    Acl("ops", "TOPIC", "", "PREFIXED", "READ"),
    Acl("svc-col", "TRANSACTIONAL_ID", "puente-subscriber:", "PREFIXED", "WRITE"),
    Acl("ops", "CLUSTER", "kafka-cluster", "LITERAL", "ALTER"),  # may change the ACLs: reaches everything
    Acl("ops", "CLUSTER", "kafka-cluster", "LITERAL", "CREATE"),  # may make a Puente topic first, wrongly
    Acl("exporter", "CLUSTER", "kafka-cluster", "LITERAL", "DESCRIBE"),  # lists every ACL and every login
]


@pytest.mark.parametrize("stray", STRAYS, ids=str)
def test_every_rule_of_a_puente_party_the_plan_does_not_name_is_removed(policy: PolicySet, stray: Acl) -> None:
    """Whatever the resource type, name (wildcard, empty prefix, another deployment's), pattern, operation,
    permission or host: a party's rule outside the plan is to be removed, so `acls plan` reports drift."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {stray}, want, NAMES, parties(policy, AGENCIES))
    assert changes.remove == (stray,) and not changes.add and not changes.empty
    assert changes.others == () and changes.drift


def test_other_principals_rules_are_listed_and_left_alone(policy: PolicySet) -> None:
    """The admin's and other applications' rules are not Puente's: not removed, no drift, but listed."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | set(FOREIGN), want, NAMES, parties(policy, AGENCIES))
    assert changes.empty and not changes.drift
    assert set(changes.others) == set(FOREIGN) and changes.everyone == ()
    assert not any(managed(a, parties(policy, AGENCIES)) for a in FOREIGN)


@pytest.mark.parametrize("intruder", INTRUDERS, ids=str)
def test_a_login_no_policy_names_on_this_deployments_resources_alone_is_removed(policy: PolicySet,
                                                                                 intruder: Acl) -> None:
    """A leftover login, another's, a name differing from a party's only in case, every user: reading a feed,
    writing the audit, taking a party's group. No other application's resource is in the rule, so it is removed,
    as a party's rule outside the plan is; it does not count as a party's rule taken away (``mass_removal``)."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {intruder}, want, NAMES, parties(policy, AGENCIES), admin="admin")
    assert changes.intruders == changes.removals == (intruder,) and changes.remove == ()
    assert not changes.empty and changes.drift and changes.mass_removal is None
    assert intruder not in changes.others and not changes.everyone and not changes.strangers


def test_the_login_applying_the_plan_keeps_its_rules(policy: PolicySet) -> None:
    """The admin may change every ACL: its rules on Puente's topics grant it nothing more, and taking them away
    could stop its work on a cluster where it is no super user."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    own = Acl("ops-admin", "TOPIC", "puente.", "PREFIXED", "READ")
    changes = acl_changes(want | {own}, want, NAMES, parties(policy, AGENCIES), admin="ops-admin")
    assert changes.intruders == () and changes.strangers == (own,)
    assert acl_changes(want | {own}, want, NAMES, parties(policy, AGENCIES), admin="admin").intruders == (own,)


@pytest.mark.parametrize("operation", ["CREATE", "ALTER", "ALTER_CONFIGS"])
def test_another_logins_rule_to_manage_the_topics_is_flagged_not_removed(policy: PolicySet, operation: str) -> None:
    """How a topic-managing login that is no super user works (an admin reached by certificate, whose principal the
    client cannot know): flagged for the operator, never taken away by `acls apply`. So is ALL while the admin's
    own principal is not known."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    rule = Acl("CN=admin,O=Ministry", "TOPIC", "puente.", "PREFIXED", operation)
    changes = acl_changes(want | {rule}, want, NAMES, parties(policy, AGENCIES))
    assert changes.intruders == () and changes.strangers == (rule,) and changes.drift
    everything = dataclasses.replace(rule, operation="ALL")
    assert acl_changes(want | {everything}, want, NAMES, parties(policy, AGENCIES)).strangers == (everything,)
    assert acl_changes(want | {everything}, want, NAMES, parties(policy, AGENCIES),
                       admin="admin").intruders == (everything,)


def test_many_rules_of_other_logins_at_once_need_allow_many(policy: PolicySet) -> None:
    """A leftover grant or two go without a word; as many as another application's whole set are the operator's to
    confirm (``mass_removal``)."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    few = {Acl("mirror", "TOPIC", f"puente.feed.{p}", "LITERAL", "READ") for p in ("COL", "USA", "CRI", "PAN")}
    assert acl_changes(want | few, want, NAMES, parties(policy, AGENCIES)).mass_removal is None
    many = few | {Acl("mirror", "GROUP", "puente.feed.", "PREFIXED", "READ")}
    refusal = acl_changes(want | many, want, NAMES, parties(policy, AGENCIES)).mass_removal
    assert refusal is not None and "5 rules of logins no policy names" in refusal and "--allow-many" in refusal
    # Beside a plan that would take most of the parties' rules away (a wrong policy), both are said, that first.
    col = {a for a in want if a.principal == "partner-COL"}
    hosts = {Acl("mirror", "TOPIC", "puente.feed.COL", "LITERAL", "READ", "ALLOW", f"10.0.0.{i}") for i in range(5)}
    both = acl_changes(want | hosts, col, NAMES, parties(policy, AGENCIES)).mass_removal
    assert both is not None and both.index("PUENTE_TOPIC_PREFIX") < both.index("5 rules of logins no policy names")


@pytest.mark.parametrize("stranger", STRANGERS, ids=str)
def test_a_login_no_policy_names_reaching_past_the_plan_is_drift(policy: PolicySet, stranger: Acl) -> None:
    """A rule of a login no policy names that reaches a resource of the plan and others' too (Kafka's ``*``, a short
    prefix, the cluster): reported (drift), not removed, as it may be another application's too."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {stranger}, want, NAMES, parties(policy, AGENCIES))
    assert changes.empty and changes.strangers == (stranger,) and changes.drift


@pytest.mark.parametrize("looker", LOOKERS, ids=str)
def test_a_login_no_one_names_describing_this_deployment_is_drift(policy: PolicySet, looker: Acl) -> None:
    """Describing moves no data, but tells who gets what: a rule only to describe this deployment's resources, of a
    login no policy names, is reported (drift, never removed: it may be a monitoring tool's) unless
    PUENTE_ACL_OBSERVERS names the login; then it is left as another application's rule, and not drift."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    changes = acl_changes(want | {looker}, want, NAMES, parties(policy, AGENCIES))
    assert changes.empty and changes.strangers == (looker,) and changes.drift
    named = acl_changes(want | {looker}, want, NAMES, parties(policy, AGENCIES), observers=(looker.principal,))
    assert named.empty and named.strangers == () and named.others == (looker,) and not named.drift
    other = acl_changes(want | {looker}, want, NAMES, parties(policy, AGENCIES), observers=("someone-else",))
    assert other.strangers == (looker,)


def test_an_observer_may_only_describe(policy: PolicySet) -> None:
    """Naming a login in PUENTE_ACL_OBSERVERS lets it describe, nothing more: its rule to read a feed is removed, and
    one to describe the cluster (every ACL and login) is still drift."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    reads = Acl("exporter", "TOPIC", "puente.feed.USA", "LITERAL", "READ")
    lists = Acl("exporter", "CLUSTER", "kafka-cluster", "LITERAL", "DESCRIBE")
    changes = acl_changes(want | {reads, lists}, want, NAMES, parties(policy, AGENCIES), observers=("exporter",))
    assert changes.intruders == (reads,) and changes.strangers == (lists,)


def test_a_rule_for_every_user_past_the_plan_is_drift_left_to_the_operator(policy: PolicySet) -> None:
    """`User:*` on every topic reaches Puente's parties too: reported (drift) but not removed, since it may be
    another application's too."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    everyone = Acl("*", "TOPIC", "*", "LITERAL", "READ")
    changes = acl_changes(want | {everyone}, want, NAMES, parties(policy, AGENCIES))
    assert changes.empty and changes.everyone == (everyone,) and changes.drift


def test_a_partner_without_agreement_keeps_what_it_needs_for_recalls(policy: PolicySet,
                                                                     without_cri: PolicySet) -> None:
    """The broker still sends CRI recall notices with its agreement gone: CRI's rules stay exactly as they were
    (its feed, its group, its receipts, its transactional ids)."""
    assert "CRI" in without_cri.partners and "CRI" not in without_cri.partners_with_agreements
    cri = partner_principal("CRI")
    before = {a for a in plan(policy, NAMES, AGENCIES, GROUP) if a.principal == cri}
    after = {a for a in plan(without_cri, NAMES, AGENCIES, GROUP) if a.principal == cri}
    assert after == before
    assert Acl(cri, "TOPIC", "puente.feed.CRI", "LITERAL", "READ") in after
    assert Acl(cri, "GROUP", "puente.feed.CRI.subscriber", "LITERAL", "READ") in after
    assert Acl(cri, "TOPIC", "puente.receipts.CRI", "LITERAL", "WRITE") in after
    assert {a.operation for a in after if a.resource == "TRANSACTIONAL_ID"} == {"WRITE", "DESCRIBE"}


def _with_instances(root: Path, lines: str) -> PolicySet:
    """The shipped policy with each partner's ``instances`` line replaced by ``lines`` (empty: left out)."""
    shutil.copytree(DEFAULT_DIR, root)
    partners = root / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    assert text.count("    instances: [main, standby]\n") == 4
    partners.write_text(text.replace("    instances: [main, standby]\n", lines), encoding="utf-8")
    return load_policy_set(root)


def _transactions(policy: PolicySet, partner: str) -> set[tuple[str, str, str]]:
    return {(a.name, a.pattern, a.operation) for a in plan(policy, NAMES, AGENCIES, GROUP)
            if a.principal == partner_principal(partner) and a.resource == "TRANSACTIONAL_ID"}


def test_a_partner_may_use_the_transactional_ids_of_its_named_instances_only(policy: PolicySet,
                                                                             tmp_path: Path) -> None:
    """Each instance partners.yaml names gets its LITERAL id, written and described, and no prefix does: a login free
    to name ids under a prefix made thousands a second, each kept in Kafka's coordinator memory for days."""
    receipts = "puente-subscriber:puente.receipts.COL:COL"
    assert _transactions(policy, "COL") == {(f"{receipts}{tail}", "LITERAL", op) for tail in ("", "/standby")
                                            for op in ("WRITE", "DESCRIBE")}
    assert subscriber_transaction("puente.receipts.COL", "COL", "standby") == f"{receipts}/standby"
    default = _with_instances(tmp_path / "default", "")  # no `instances`: the main subscriber's alone
    assert _transactions(default, "COL") == {(receipts, "LITERAL", "WRITE"), (receipts, "LITERAL", "DESCRIBE")}
    three = _with_instances(tmp_path / "three", "    instances: [main, site-b, moving.2]\n")
    assert {name for name, _, _ in _transactions(three, "USA")} == {
        "puente-subscriber:puente.receipts.USA:USA", "puente-subscriber:puente.receipts.USA:USA/site-b",
        "puente-subscriber:puente.receipts.USA:USA/moving.2"}
    assert not any(a.resource == "TRANSACTIONAL_ID" and a.pattern != "LITERAL" and a.principal.startswith("partner-")
                   for a in plan(three, NAMES, AGENCIES, GROUP))


def test_a_feed_without_agreement_keeps_notices_for_a_week_or_the_longest_ack_deadline(
        policy: PolicySet, without_cri: PolicySet) -> None:
    """Not one day: at least a week, and at least the longest time any agreement gives to acknowledge a recall;
    feeds with agreements keep the shortest retention of their partner's agreements, as before."""
    days = feed_retention(without_cri, NAMES)
    assert days["puente.feed.CRI"] == NOTICE_RETENTION_FLOOR_DAYS == 7
    assert days["puente.feed.COL"] == 180 and days["puente.feed.USA"] == 365
    assert feed_retention(policy, NAMES)["puente.feed.CRI"] == 90


def test_a_long_ack_deadline_lengthens_a_feed_without_agreement(without_cri: PolicySet) -> None:
    """An agreement giving 20 days and an hour to acknowledge a recall: a feed without agreement keeps 21 days."""
    agreement = next(iter(without_cri.agreements.values()))
    slow = dataclasses.replace(agreement, recall_ack_hours=24 * 20 + 1)
    changed = dataclasses.replace(without_cri, agreements={**without_cri.agreements, agreement.id: slow})
    assert feed_retention(changed, NAMES)["puente.feed.CRI"] == 21


# --- the cluster side, with confluent-kafka's admin client replaced by a list of bindings ---------------------------


def _matches(flt: AclBindingFilter, b: AclBinding) -> bool:
    """Kafka's filter semantics for the values Puente uses: ANY and None match anything."""
    pairs = [(flt.restype, b.restype, ResourceType.ANY), (flt.resource_pattern_type, b.resource_pattern_type,
                                                         ResourcePatternType.ANY),
             (flt.operation, b.operation, AclOperation.ANY), (flt.permission_type, b.permission_type,
                                                             AclPermissionType.ANY)]
    if any(f != any_ and f != v for f, v, any_ in pairs):
        return False
    return all(f is None or f == v for f, v in ((flt.name, b.name), (flt.principal, b.principal),
                                                (flt.host, b.host)))


@dataclass
class _Client:
    bindings: list[AclBinding]
    described: list[AclBindingFilter] = field(default_factory=list)

    def describe_acls(self, flt: AclBindingFilter, request_timeout: float) -> list[AclBinding]:
        self.described.append(flt)
        return [b for b in self.bindings if _matches(flt, b)]

    def create_acls(self, bindings: list[AclBinding], request_timeout: float) -> dict[AclBinding, None]:
        self.bindings += [b for b in bindings if b not in self.bindings]
        return dict.fromkeys(bindings)

    def delete_acls(self, filters: list[AclBindingFilter], request_timeout: float) -> dict[Any, list[AclBinding]]:
        out = {}
        for flt in filters:
            out[flt] = [b for b in self.bindings if _matches(flt, b)]
            self.bindings = [b for b in self.bindings if not _matches(flt, b)]
        return out


class _Admin:
    def __init__(self, bindings: list[AclBinding]) -> None:
        self.client = _Client(bindings)
        self.conn = type("Conn", (), {"timeout_s": 2.0, "bootstrap": "test"})()

    async def call(self, what: str, operation: Any) -> Any:
        return operation(self.client)

    async def results(self, what: str, futures: dict[Any, Any]) -> dict[Any, Any]:
        return dict(futures)

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


def _raw(principal: str, restype: ResourceType, name: str, pattern: ResourcePatternType, operation: AclOperation,
         permission: AclPermissionType = AclPermissionType.ALLOW, host: str = "*") -> AclBinding:
    return AclBinding(restype, name, pattern, principal, host, operation, permission)


def test_listing_asks_for_every_rule() -> None:
    """The describe filter matches any resource type, name, pattern, principal, host, operation, permission."""
    flt = every_acl_filter()
    assert (flt.restype, flt.resource_pattern_type, flt.operation, flt.permission_type) == (
        ResourceType.ANY, ResourcePatternType.ANY, AclOperation.ANY, AclPermissionType.ANY)
    assert (flt.name, flt.principal, flt.host) == (None, None, None)


async def test_cluster_rules_of_every_kind_are_read_as_they_are() -> None:
    """librdkafka's BROKER is Kafka's CLUSTER; ALL, DENY and a host are kept; a non-user principal is a line."""
    admin = _Admin([
        _raw("User:partner-COL", ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
             AclOperation.DESCRIBE),
        _raw("User:partner-COL", ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, AclOperation.ALL,
             AclPermissionType.DENY, "10.0.0.9"),
        _raw("Group:ops", ResourceType.TOPIC, "x", ResourcePatternType.LITERAL, AclOperation.READ),
    ])
    acls, others = await cluster_acls(admin)  # type: ignore[arg-type]
    assert acls == {Acl("partner-COL", "CLUSTER", "kafka-cluster", "LITERAL", "DESCRIBE"),
                    Acl("partner-COL", "TOPIC", "*", "LITERAL", "ALL", "DENY", "10.0.0.9")}
    assert len(others) == 1 and "Group:ops" in others[0]


async def test_apply_removes_every_stray_rule_of_a_party_and_nothing_else(policy: PolicySet) -> None:
    """After `acls apply`, Puente's parties hold the plan exactly; the admin's and another application's rules
    (and a rule for every user) are still there."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    stray = [
        _raw("User:partner-COL", ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, AclOperation.READ),
        _raw("User:partner-COL", ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
             AclOperation.DESCRIBE),
        _raw("User:partner-COL", ResourceType.GROUP, "*", ResourcePatternType.LITERAL, AclOperation.READ),
        _raw("User:partner-COL", ResourceType.TOPIC, "puente", ResourcePatternType.PREFIXED, AclOperation.READ),
        _raw("User:partner-COL", ResourceType.TRANSACTIONAL_ID, "", ResourcePatternType.PREFIXED,
             AclOperation.WRITE),
        _raw("User:agency-PN", ResourceType.TOPIC, "", ResourcePatternType.PREFIXED, AclOperation.WRITE),
        _raw("User:broker", ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
             AclOperation.ALTER_CONFIGS),
    ]
    kept = [
        _raw("User:partner-COL", ResourceType.TOPIC, "puente.feed.COL", ResourcePatternType.LITERAL,
             AclOperation.READ, AclPermissionType.DENY, "10.0.0.9"),
        _raw("User:admin", ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, AclOperation.ALL),
        _raw("User:billing", ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
             AclOperation.IDEMPOTENT_WRITE),
        _raw("User:*", ResourceType.TOPIC, "news", ResourcePatternType.LITERAL, AclOperation.READ),
    ]
    admin = _Admin(stray + kept)
    current, _ = await cluster_acls(admin)  # type: ignore[arg-type]
    changes = acl_changes(current, want, NAMES, parties(policy, AGENCIES))
    assert len(changes.remove) == len(stray) and len(changes.add) == len(want)
    assert await apply_acls(admin, changes) == []  # type: ignore[arg-type]
    after, _ = await cluster_acls(admin)  # type: ignore[arg-type]
    mine = {a for a in after if managed(a, parties(policy, AGENCIES))}
    assert mine == want
    assert {str(b.principal) for b in admin.client.bindings} - {f"User:{a.principal}" for a in want} == {
        "User:admin", "User:billing", "User:*"}
    assert acl_changes(after, want, NAMES, parties(policy, AGENCIES)).empty


async def test_a_rule_the_client_cannot_name_is_a_failure_not_a_wider_delete(policy: PolicySet) -> None:
    """A party's rule with an operation librdkafka reads as UNKNOWN cannot be deleted by an exact filter: apply
    says so (remove it with kafka-acls) and deletes nothing else in its place."""
    want = plan(policy, NAMES, AGENCIES, GROUP)
    odd = Acl("partner-COL", "TOPIC", "puente.feed.COL", "LITERAL", "UNKNOWN")
    admin = _Admin([])
    changes = acl_changes(want | {odd}, want, NAMES, parties(policy, AGENCIES))
    failed = await apply_acls(admin, changes)  # type: ignore[arg-type]
    assert len(failed) == 1 and "kafka-acls" in failed[0] and "partner-COL" in failed[0]


def test_the_auditor_may_see_the_broker_groups_offsets_but_read_no_alert(policy: PolicySet) -> None:
    """`audit verify` and the console's index check each decision chain's end against the broker group's committed
    ingress offsets: the auditor and the console may DESCRIBE that group and the ingress topics (OffsetFetch), and
    nothing more of them; no other party but the broker gets any of it."""
    acls = plan(policy, NAMES, AGENCIES, GROUP)
    ingress = {a for a in acls if a.resource == "TOPIC" and a.name.startswith("puente.ingress")}
    group = {a for a in acls if a.resource == "GROUP" and a.name == GROUP}
    for checker in ("auditor", "console"):
        assert {a for a in ingress | group if a.principal == checker} == {
            Acl(checker, "GROUP", GROUP, "LITERAL", "DESCRIBE"),
            Acl(checker, "TOPIC", "puente.ingress.", "PREFIXED", "DESCRIBE")}
    assert {a.principal for a in group} == {"broker", "auditor", "console"}


def test_the_auditor_may_see_the_subscriber_groups_offsets_but_read_no_feed(policy: PolicySet) -> None:
    """`audit verify` checks each partner's receipts against its subscriber group's committed feed offsets: the
    auditor may DESCRIBE the feed topics and the groups named after them (OffsetFetch), never READ a feed nor
    join, commit in or delete a group; the console, which checks the same ends in its index, likewise."""
    acls = plan(policy, NAMES, AGENCIES, GROUP)
    feeds = {a for a in acls if a.name.startswith(NAMES.feeds) and a.principal in ("auditor", "console")}
    assert feeds == {Acl(checker, resource, NAMES.feeds, "PREFIXED", "DESCRIBE")
                     for checker in ("auditor", "console") for resource in ("GROUP", "TOPIC")}
    for partner in policy.partners:
        feed = NAMES.feed(policy.partners[partner].feed_topic)
        assert subscriber_group(feed).startswith(NAMES.feeds)  # the prefix covers every partner's group


def test_an_observer_is_named_as_kafka_names_its_login() -> None:
    """PUENTE_ACL_OBSERVERS takes a SCRAM user name and a certificate's principal as Kafka names it (the hint says to
    name it there, whichever the login is), never every user nor a name with a control character."""
    observers = ("lag-exporter", "CN=lag-exporter,OU=ops")
    assert PuenteSettings(acl_observers=observers).acl_observers == observers
    for bad in ("*", "", "a\nb", "x" * 256):
        with pytest.raises(ValueError, match="acl_observers"):
            PuenteSettings(acl_observers=(bad,))


def test_the_auditor_may_read_the_receipts_topics_settings(policy: PolicySet) -> None:
    """A receipts partition emptied whole is judged by its topic's own retention.ms (kept for ever: a deletion),
    so the auditor and the console, which judge it, may describe the receipts topics' settings; no partner may."""
    acls = plan(policy, NAMES, AGENCIES, GROUP)
    settings = {a for a in acls if a.operation == "DESCRIBE_CONFIGS" and a.name == NAMES.all_receipts}
    assert settings == {Acl(checker, "TOPIC", NAMES.all_receipts, "PREFIXED", "DESCRIBE_CONFIGS")
                        for checker in ("auditor", "console")}
