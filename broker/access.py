"""Who may do what on Kafka, derived from the agreements and the topology. Pure.

One principal per party, each with exactly the ACLs its role needs, and nothing for anyone else
(the cluster's authorizer denies whatever no ACL names)::

    agency-<A>     writes and reads back its own ingress topic (reading: its idempotence ledger),
                   and its own adapter dead-letter topic
    broker         reads every ingress topic in its consumer group; writes the feeds, the decisions,
                   its dead letters, under its own transactional ids; reads the decisions back
                   (replay windows, chain heads) and its lifecycle state; appends the denials it collects from Kafka's
                   authorizer logs to the denials topic, under one transactional id
    partner-<P>    reads its own feed in its own consumer group, writes and reads its own receipts
                   topic under its own transactional ids; for every partner partners.yaml lists, an
                   agreement or not (see ``plan``)
    auditor        reads the decisions, every partner's receipts, the collected denials and the console's
                   query log: read only (verify, log, index, recalls), so no auditor's tool can write the
                   record of what auditors looked at; describes the broker group and the ingress topics,
                   and the partners' subscriber groups and feed topics (the committed offsets each
                   decision chain's end and each partner's receipts must reach), never reads them
    console        the auditors' console service: reads what the auditor reads, and alone appends each
                   auditor's query to the queries topic (reading its head back) under one transactional id
    admin          the cluster's super user (topics, ACLs, users): no ACL here

ACLs are on whole topics (Kafka has no per-partition ACL), which is why each partner's receipts
and each agency's adapter dead letters have a topic of their own. ``plan`` gives the set the
policy implies; ``broker.kafka.acls`` compares it with the cluster's and makes them equal. The plan
is an allow-list for Puente's principals: every rule the cluster holds for one of them (``managed``),
whatever its resource, name, pattern, operation, permission or host, is either in the plan or removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from broker.topology import TopicNames
from policies import PolicySet

# What ``plan`` makes. A rule read from the cluster may hold any of Kafka's values (CLUSTER, ALL,
# ALTER_CONFIGS, a DENY, a host, UNKNOWN for one the client cannot name): ``Acl`` keeps them as text.
ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
Pattern = Literal["LITERAL", "PREFIXED"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "IDEMPOTENT_WRITE"]

BROKER = "broker"
AUDITOR = "auditor"
CONSOLE = "console"
ADMIN = "admin"


def agency_principal(agency: str) -> str:
    return f"agency-{agency}"


def partner_principal(partner: str) -> str:
    return f"partner-{partner}"


@dataclass(frozen=True, order=True)
class Acl:
    """One rule: ``principal`` (a SCRAM user name; ``*`` is every user) may (ALLOW) or may not (DENY)
    ``operation`` on a resource, from ``host`` (``*``: any). ``plan`` makes ALLOW rules from any host
    only; the other values are for rules found on the cluster."""

    principal: str
    resource: str  # a ResourceType, or another of Kafka's
    name: str
    pattern: str  # a Pattern, or UNKNOWN
    operation: str  # an Operation, or another of Kafka's (ALL, CREATE, ALTER_CONFIGS...)
    permission: str = "ALLOW"
    host: str = "*"

    def __str__(self) -> str:
        if self.pattern == "LITERAL":
            name = "* (every one)" if self.name == "*" else self.name
        elif self.pattern == "PREFIXED":
            name = f"{self.name}*" if self.name else "* (any name: an empty prefix)"
        else:
            name = f"{self.name} ({self.pattern})"
        deny = "" if self.permission == "ALLOW" else f"{self.permission} "
        host = "" if self.host == "*" else f" from host {self.host}"
        return f"User:{self.principal} {deny}{self.operation} {self.resource} {name}{host}"


def _topic(principal: str, name: str, operations: Iterable[Operation], pattern: Pattern = "LITERAL") -> list[Acl]:
    return [Acl(principal, "TOPIC", name, pattern, op) for op in operations]


def subscriber_group(feed_topic: str) -> str:
    """The consumer group a partner's subscribers share for its feed."""
    return f"{feed_topic}.subscriber"


def subscriber_transactions(receipts_topic: str, partner: str) -> str:
    """What every transactional id of a partner's subscribers starts with (one per instance)."""
    return f"puente-subscriber:{receipts_topic}:{partner}"


def denials_transaction(names: TopicNames) -> str:
    """The transactional id of the one denials collector of a deployment."""
    return f"{names.denials}.collector"


def console_transaction(names: TopicNames) -> str:
    """The transactional id of the one auditors' console of a deployment (a second one fences the first)."""
    return f"{names.prefix}.console"


def plan(policy_set: PolicySet, names: TopicNames, agencies: Iterable[str], broker_group: str) -> set[Acl]:
    """Every ACL the policy and the topology imply, and no other."""
    acls: set[Acl] = set()
    for agency in agencies:
        who = agency_principal(agency)
        acls.update(_topic(who, names.ingress(agency), ("WRITE", "READ", "DESCRIBE")))
        acls.update(_topic(who, names.adapter_deadletter(agency), ("WRITE", "READ", "DESCRIBE")))
    acls.update(_topic(BROKER, f"{names.prefix}.ingress.", ("READ", "DESCRIBE"), "PREFIXED"))
    acls.add(Acl(BROKER, "GROUP", broker_group, "LITERAL", "READ"))
    acls.update(_topic(BROKER, names.feeds, ("WRITE", "DESCRIBE"), "PREFIXED"))
    acls.update(_topic(BROKER, names.decisions, ("WRITE", "READ", "DESCRIBE")))
    acls.update(_topic(BROKER, names.lifecycle, ("WRITE", "READ", "DESCRIBE")))
    acls.update(_topic(BROKER, names.deadletter, ("WRITE", "DESCRIBE")))
    acls.update(Acl(BROKER, "TRANSACTIONAL_ID", f"{broker_group}-slot-", "PREFIXED", op)
                for op in ("WRITE", "DESCRIBE"))
    acls.update(_topic(BROKER, names.denials, ("WRITE", "READ", "DESCRIBE")))
    acls.update(Acl(BROKER, "TRANSACTIONAL_ID", denials_transaction(names), "LITERAL", op)
                for op in ("WRITE", "DESCRIBE"))
    # Every partner partners.yaml lists, not only those an agreement names: the broker sends recall
    # and correction notices to every listed partner holding an alert, also once its last agreement
    # is gone, and the partner must be able to read them and acknowledge each with a receipt. What
    # may reach its feed is the decisions' business: with no agreement, only notices do.
    for partner in sorted(policy_set.partners):
        info = policy_set.partners[partner]
        who = partner_principal(partner)
        feed = names.feed(info.feed_topic)
        receipts = names.receipts(partner)
        acls.update(_topic(who, feed, ("READ", "DESCRIBE")))
        acls.add(Acl(who, "GROUP", subscriber_group(feed), "LITERAL", "READ"))
        acls.update(_topic(who, receipts, ("WRITE", "READ", "DESCRIBE")))
        acls.update(Acl(who, "TRANSACTIONAL_ID", subscriber_transactions(receipts, partner), "PREFIXED", op)
                    for op in ("WRITE", "DESCRIBE"))
    for reader in (AUDITOR, CONSOLE):
        acls.update(_topic(reader, names.decisions, ("READ", "DESCRIBE")))
        acls.update(_topic(reader, names.all_receipts, ("READ", "DESCRIBE"), "PREFIXED"))
        acls.update(_topic(reader, names.denials, ("READ", "DESCRIBE")))
        acls.update(_topic(reader, names.queries, ("READ", "DESCRIBE")))
    for checker in (AUDITOR, CONSOLE):  # `audit verify`, and the index the console keeps (`audit index`)
        # The broker group's committed ingress offsets, which each decision chain's end must reach:
        # DESCRIBE on the group and on the ingress topics is what OffsetFetch needs. It shows offsets
        # and the group's members, never a record: reading the ingress topics stays refused.
        acls.add(Acl(checker, "GROUP", broker_group, "LITERAL", "DESCRIBE"))
        acls.update(_topic(checker, f"{names.prefix}.ingress.", ("DESCRIBE",), "PREFIXED"))
        # Likewise the partners' subscriber groups' committed feed offsets, which their receipts must
        # reach: DESCRIBE on every feed topic and on the groups named after them (``subscriber_group``).
        acls.add(Acl(checker, "GROUP", names.feeds, "PREFIXED", "DESCRIBE"))
        acls.update(_topic(checker, names.feeds, ("DESCRIBE",), "PREFIXED"))
    acls.update(_topic(CONSOLE, names.queries, ("WRITE",)))
    acls.update(Acl(CONSOLE, "TRANSACTIONAL_ID", console_transaction(names), "LITERAL", op)
                for op in ("WRITE", "DESCRIBE"))
    return acls


def parties(policy_set: PolicySet, agencies: Iterable[str]) -> list[str]:
    """Every principal Puente's parties log in as (the admin excepted): a SCRAM user each."""
    return [BROKER, AUDITOR, CONSOLE, *(agency_principal(a) for a in agencies),
            *(partner_principal(p) for p in sorted(policy_set.partners))]


def puentes(principal: str, principals: Iterable[str]) -> bool:
    """Whether ``principal`` is one of Puente's parties: one ``parties`` names, or any ``agency-`` or
    ``partner-`` login (a party the policy or the settings no longer name keeps no right either)."""
    return principal in set(principals) or principal.startswith(("agency-", "partner-"))


def managed(acl: Acl, principals: Iterable[str]) -> bool:
    """Whether an ACL found on the cluster is Puente's to keep or remove: every ALLOW rule of one of
    Puente's parties (``puentes``), whatever its resource type (CLUSTER too), name (``*`` too), pattern
    (a prefix, even an empty one), operation or host. The plan is the whole of what a party may do: a
    rule that allows more is removed, never kept because it looks like someone else's.

    A DENY rule of a party is not Puente's: it can only take rights away (an operator blocking a
    compromised partner, say), so removing it could only widen access. It is listed, and left.

    Rules of other principals (other applications on a shared cluster, the admin) are left alone. So
    are rules for every user (``User:*``), though they reach Puente's parties too: ``wildcard`` finds
    those, for the operator to remove. A cluster holds one Puente deployment's parties: the logins
    are cluster-wide, so a second deployment on it would share them, and each would remove the
    other's rules."""
    return acl.permission == "ALLOW" and puentes(acl.principal, principals)


def wildcard(acl: Acl) -> bool:
    """Whether an ACL grants something to every user (``User:*``), Puente's parties included."""
    return acl.principal == "*" and acl.permission == "ALLOW"
