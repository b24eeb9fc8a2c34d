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
                   topic under the transactional ids of the subscriber instances partners.yaml names for
                   it (``instances``), each by its literal id; for every partner partners.yaml lists, an
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

``plan`` fails closed (``check_grants``): its names come from settings and policy files, so it refuses,
naming the setting to check, a name that is a wildcard or holds characters Kafka's names do not, and a
group, transactional id or written topic of one party that matches (literally, or through a prefix)
one of another party; agencies and partners are kept from each other's topics altogether.

What a party may cost the node every party shares is bounded too: ``quota_plan`` gives each agency,
partner, the auditor and the console Kafka client quotas (bytes written and read a second, a share
of the request handlers' time), and a former party's login that still exists (``users apply`` without
``--prune`` disables it, a password no one holds, but does not delete it) a trickle (``former``): it has
no rights left, and should it still authenticate (a password set by hand, ``users apply`` not run since),
a login without a quota may cost the node as much as it likes. ``quota_changes`` makes the quotas exactly
the plan's, with the same allow-list: any other quota of one of Puente's parties (the broker's, that of
a former party whose login is deleted) is removed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from broker.audit.chain import receipt_chain
from broker.topology import TopicNames
from policies import PolicySet, subscriber_instances
from puente.errors import ConfigError
from puente.strict import one_line

# What ``plan`` makes. A rule read from the cluster may hold any of Kafka's values (CLUSTER, ALL,
# ALTER_CONFIGS, a DENY, a host, UNKNOWN for one the client cannot name): ``Acl`` keeps them as text.
ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
Pattern = Literal["LITERAL", "PREFIXED"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE"]

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


def subscriber_transaction(receipts_topic: str, partner: str, instance: str) -> str:
    """The transactional id of ``partner``'s subscriber instance ``instance``: one per receipt chain
    (``receipt_chain``), so that a subscriber started again fences its earlier self."""
    return f"puente-subscriber:{receipts_topic}:{receipt_chain(partner, instance)}"


def denials_transaction(names: TopicNames) -> str:
    """The transactional id of the one denials collector of a deployment."""
    return f"{names.denials}.collector"


def console_transaction(names: TopicNames) -> str:
    """The transactional id of the one auditors' console of a deployment (a second one fences the first)."""
    return f"{names.prefix}.console"


def plan(policy_set: PolicySet, names: TopicNames, agencies: Iterable[str], broker_group: str) -> set[Acl]:
    """Every ACL the policy and the topology imply, and no other; ``ConfigError`` naming the setting to check
    when a name it would grant is unsafe (``check_grants``), rather than a plan an operator would apply.

    The names come from settings and policy files an operator edits (``PUENTE_GROUP_ID``,
    ``PUENTE_TOPIC_PREFIX``, ``PUENTE_AGENCIES``, partners.yaml): the settings check each, and this checks
    again what they combine into, so no path to ``acls apply`` can grant a wildcard or another party's group."""
    return set(_grants(policy_set, names, tuple(agencies), broker_group))


_PREFIX = "PUENTE_TOPIC_PREFIX"
_GROUP = "PUENTE_GROUP_ID"


def _grants(policy_set: PolicySet, names: TopicNames, agencies: tuple[str, ...], broker_group: str) -> dict[Acl, str]:
    """``plan``'s rules, each with the setting its name comes from (what a refusal tells the operator to check)."""
    grants: dict[Acl, str] = {}

    def grant(source: str, acls: Iterable[Acl]) -> None:
        for acl in acls:
            grants.setdefault(acl, source)

    for agency in agencies:
        who, source = agency_principal(agency), f"PUENTE_AGENCIES (agency {agency})"
        grant(source, _topic(who, names.ingress(agency), ("WRITE", "READ", "DESCRIBE")))
        grant(source, _topic(who, names.adapter_deadletter(agency), ("WRITE", "READ", "DESCRIBE")))
    # DESCRIBE_CONFIGS: the broker checks at start that each ingress topic stamps LogAppendTime (the replay window's
    # clock, which a producer must not set).
    grant(_PREFIX, _topic(BROKER, f"{names.prefix}.ingress.", ("READ", "DESCRIBE", "DESCRIBE_CONFIGS"), "PREFIXED"))
    grant(_GROUP, [Acl(BROKER, "GROUP", broker_group, "LITERAL", "READ")])
    grant(_PREFIX, _topic(BROKER, names.feeds, ("WRITE", "DESCRIBE"), "PREFIXED"))
    # DESCRIBE_CONFIGS: the broker checks at start that its audit blocks are stamped with Kafka's append time, which
    # dates them across its chains for the audit's key order (``broker.audit.verify.retired_keys``).
    grant(_PREFIX, _topic(BROKER, names.decisions, ("WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS")))
    # DESCRIBE_CONFIGS: the broker checks at start that the topic keeps states as long as the agreements need.
    grant(_PREFIX, _topic(BROKER, names.lifecycle, ("WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS")))
    grant(_PREFIX, _topic(BROKER, names.deadletter, ("WRITE", "DESCRIBE")))
    grant(_GROUP, (Acl(BROKER, "TRANSACTIONAL_ID", f"{broker_group}-slot-", "PREFIXED", op)
                   for op in ("WRITE", "DESCRIBE")))
    # DESCRIBE_CONFIGS: the denials collector checks at start that the topic keeps its blocks as long as the
    # retention each block states (``check_audit_retention``).
    grant(_PREFIX, _topic(BROKER, names.denials, ("WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS")))
    grant(_PREFIX, (Acl(BROKER, "TRANSACTIONAL_ID", denials_transaction(names), "LITERAL", op)
                    for op in ("WRITE", "DESCRIBE")))
    # Every partner partners.yaml lists, not only those an agreement names: the broker sends recall
    # and correction notices to every listed partner holding an alert, also once its last agreement
    # is gone, and the partner must be able to read them and acknowledge each with a receipt. What
    # may reach its feed is the decisions' business: with no agreement, only notices do.
    for partner in sorted(policy_set.partners):
        info = policy_set.partners[partner]
        who, source = partner_principal(partner), f"partners.yaml of PUENTE_POLICY_DIR (partner {partner})"
        feed = names.feed(info.feed_topic)
        if not feed.startswith(names.feeds) or feed == names.feeds:
            # The broker writes feeds under this prefix only; a feed named elsewhere (another party's
            # receipts, the decisions) would give the partner READ on what is not its own.
            raise ConfigError(f"partner {partner[:40]}'s feed_topic {feed[:80]!r} is not under {names.feeds}: check "
                              f"its feed_topic in partners.yaml of PUENTE_POLICY_DIR, and PUENTE_TOPIC_PREFIX")
        receipts = names.receipts(partner)
        grant(source, _topic(who, feed, ("READ", "DESCRIBE")))
        grant(source, [Acl(who, "GROUP", subscriber_group(feed), "LITERAL", "READ")])
        grant(source, _topic(who, receipts, ("WRITE", "READ", "DESCRIBE")))
        # Each instance partners.yaml names, by its literal id, and no other: Kafka keeps every transactional id used
        # in its coordinators' memory and its transaction log for days, so a prefix would let the login fill them.
        grant(source, (Acl(who, "TRANSACTIONAL_ID", subscriber_transaction(receipts, partner, instance), "LITERAL", op)
                       for instance in subscriber_instances(policy_set, partner) for op in ("WRITE", "DESCRIBE")))
    for reader in (AUDITOR, CONSOLE):
        grant(_PREFIX, _topic(reader, names.decisions, ("READ", "DESCRIBE")))
        grant(_PREFIX, _topic(reader, names.all_receipts, ("READ", "DESCRIBE"), "PREFIXED"))
        grant(_PREFIX, _topic(reader, names.denials, ("READ", "DESCRIBE")))
        grant(_PREFIX, _topic(reader, names.queries, ("READ", "DESCRIBE")))
    for checker in (AUDITOR, CONSOLE):  # `audit verify`, and the index the console keeps (`audit index`)
        # The broker group's committed ingress offsets, which each decision chain's end must reach:
        # DESCRIBE on the group and on the ingress topics is what OffsetFetch needs. It shows offsets
        # and the group's members, never a record: reading the ingress topics stays refused.
        grant(_GROUP, [Acl(checker, "GROUP", broker_group, "LITERAL", "DESCRIBE")])
        grant(_PREFIX, _topic(checker, f"{names.prefix}.ingress.", ("DESCRIBE",), "PREFIXED"))
        # Likewise the partners' subscriber groups' committed feed offsets, which their receipts must
        # reach: DESCRIBE on every feed topic and on the groups named after them (``subscriber_group``).
        grant(_PREFIX, [Acl(checker, "GROUP", names.feeds, "PREFIXED", "DESCRIBE")])
        grant(_PREFIX, _topic(checker, names.feeds, ("DESCRIBE",), "PREFIXED"))
        # DESCRIBE_CONFIGS on the receipts topics: a receipts partition emptied whole is judged by its topic's own
        # retention.ms (kept for ever: a deletion), which only its settings tell; refused, it stays not checked.
        grant(_PREFIX, _topic(checker, names.all_receipts, ("DESCRIBE_CONFIGS",), "PREFIXED"))
    # DESCRIBE_CONFIGS: the console checks at start that the query log keeps its records as long as the retention
    # each record states (``check_audit_retention``).
    grant(_PREFIX, _topic(CONSOLE, names.queries, ("WRITE", "DESCRIBE_CONFIGS")))
    grant(_PREFIX, (Acl(CONSOLE, "TRANSACTIONAL_ID", console_transaction(names), "LITERAL", op)
                    for op in ("WRITE", "DESCRIBE")))
    check_grants(grants)
    return grants


# Kafka's legal topic characters; a transactional id also holds the ``:`` and the ``/`` of ``subscriber_transaction``.
# Nothing else: ``*`` as a LITERAL name is Kafka's wildcard (every topic, group or id), and a newline or a
# space would make a rule no one can read back as it was meant.
_LEGAL = {"TOPIC": re.compile(r"[A-Za-z0-9._-]{1,249}"), "GROUP": re.compile(r"[A-Za-z0-9._-]{1,255}"),
          "TRANSACTIONAL_ID": re.compile(r"[A-Za-z0-9._:/-]{1,255}")}


def _exclusive(acl: Acl) -> bool:
    """Whether a rule uses a resource only one party may use so: joining a consumer group (a second member
    would take its partitions), a transactional id (a second producer fences the first), writing a topic
    (an audit chain has one writer). Reading a topic another writes and describing a group are shared by
    design (the broker reads the ingress topics an agency writes; auditors describe every group)."""
    return ((acl.resource == "GROUP" and acl.operation == "READ") or acl.resource == "TRANSACTIONAL_ID"
            or (acl.resource == "TOPIC" and acl.operation == "WRITE"))


def _isolated(principal: str) -> bool:
    """Agencies and partners: no one of them may reach a topic another of them is granted."""
    return principal.startswith(("agency-", "partner-"))


def overlaps(a: Acl, b: Acl) -> bool:
    """Whether two rules' resource patterns can match one name (a PREFIXED pattern matches every name
    and every prefix that starts with it)."""
    if a.resource != b.resource:
        return False
    if a.pattern == b.pattern == "LITERAL":
        return a.name == b.name
    if a.pattern == "PREFIXED" and b.pattern == "PREFIXED":
        return a.name.startswith(b.name) or b.name.startswith(a.name)
    prefixed, literal = (a, b) if a.pattern == "PREFIXED" else (b, a)
    return literal.name.startswith(prefixed.name)


def _shown(acl: Acl, most: int) -> str:
    """A rule on one line of a terminal, whatever its name holds (a newline, an escape sequence)."""
    return one_line(str(acl))[:most]


def check_grants(grants: Mapping[Acl, str]) -> None:
    """Fail closed on a plan that would grant more than each party's own: ``ConfigError``, one line naming the
    rule and the setting (the value of ``grants``) to check, when a name is empty, a wildcard or holds a
    character outside Kafka's legal set, or when an exclusive rule (``_exclusive``) of one party overlaps
    (``overlaps``) one of the same kind of another, or a topic of one agency or partner overlaps another's."""
    for acl, source in grants.items():
        legal = _LEGAL.get(acl.resource)
        if acl.permission != "ALLOW" or acl.host != "*" or legal is None or not legal.fullmatch(acl.name):
            raise ConfigError(f"refusing the ACL plan: {_shown(acl, 160)} names a {acl.resource.lower()} "
                              "that is empty, too long, a wildcard or holds characters outside [A-Za-z0-9._-] "
                              f"(':' and '/' too in a transactional id): check {source}")
    rules = sorted(grants)
    for i, a in enumerate(rules):
        for b in rules[i + 1:]:
            if a.principal == b.principal or not overlaps(a, b):
                continue
            if (_exclusive(a) and _exclusive(b)) or (a.resource == "TOPIC" and _isolated(a.principal)
                                                     and _isolated(b.principal)):
                either = grants[a] if grants[a] == grants[b] else f"{grants[a]} and {grants[b]}"
                raise ConfigError(f"refusing the ACL plan: {_shown(a, 120)} overlaps another party's "
                                  f"{_shown(b, 120)}: check {either}")


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

    Rules of other principals (other applications on a shared cluster, the admin) are not Puente's, but
    one that lets them do more than describe a resource of this deployment alone is removed all the same
    (``ours_alone``, ``broker.kafka.acls.acl_changes``). A wider one, and one for every user (``User:*``;
    ``wildcard``), is left for the operator to judge. A cluster holds one Puente deployment's parties: the
    logins are cluster-wide, so a second deployment on it would share them, and each would remove the
    other's rules."""
    return acl.permission == "ALLOW" and puentes(acl.principal, principals)


def wildcard(acl: Acl) -> bool:
    """Whether an ACL grants something to every user (``User:*``), Puente's parties included."""
    return acl.principal == "*" and acl.permission == "ALLOW"


def reaches(acl: Acl, planned: Iterable[Acl]) -> bool:
    """Whether an ALLOW rule to do more than describe matches a resource the plan grants (one of this deployment's
    topics, groups or transactional ids: ``overlaps``, a LITERAL ``*`` being Kafka's wildcard), or gives power over
    the cluster itself (ALTER: its ACLs; CLUSTER_ACTION: a node's; DESCRIBE: every ACL and login). For a principal
    that is none of Puente's parties, such a rule lets a login no policy names read a feed, write an audit topic,
    take a party's group or transactional id, or map who may reach what: ``acls plan`` reports it, however it came
    there."""
    if acl.permission != "ALLOW":
        return False
    if acl.resource not in _BOUNDED or acl.pattern not in _PATTERNS:
        # A login's resource (delegation tokens), or one the client cannot name: ``unbounded`` says whether it may.
        return unbounded(acl, {w.principal for w in planned})
    if acl.resource == "CLUSTER":
        # It may change the ACLs, act as a node, or make any topic first (a Puente topic not made yet, wrongly), or
        # list every ACL and every SCRAM login (DESCRIBE: DescribeAcls, DescribeUserScramCredentials), the map of
        # who may reach what; or do what the client cannot name (UNKNOWN: a power of a later Kafka, such as
        # CreateTokens), never taken to be harmless. (Puente's own admin login is a super user, as the local and
        # compose Kafka make it: no rule of its here.)
        return acl.operation in _CLUSTER_POWERS or acl.operation == "UNKNOWN"
    if acl.operation in _LOOK_ONLY:
        return False  # only describes: a monitoring login's, when named (``looks_in``)
    return _matches(acl, planned)


def unbounded(acl: Acl, principals: Iterable[str]) -> bool:
    """Whether an ALLOW rule is on a resource Puente cannot bound, and so may reach one of its parties: a USER
    resource naming one of ``principals`` or any ``agency-`` or ``partner-`` login (``puentes``), any user
    (``User:*``), or users by a pattern; or a resource type or pattern type other than those the plan uses (the
    client names a type it does not know UNKNOWN: librdkafka reads Kafka's USER and DELEGATION_TOKEN so, and says
    neither which nor whose). Fail closed: such a rule is drift whoever holds it, never "left as it is". A USER rule
    is how a login mints delegation tokens for another (CreateTokens, DescribeTokens on ``User:partner-COL``): were
    tokens ever enabled, its holder would authenticate as that party. Kafka's own ``kafka-acls`` names and removes
    it; Puente's client cannot, so ``broker.kafka.acls.apply_acls`` reports it to remove by hand."""
    if acl.permission != "ALLOW":
        return False
    if acl.resource == "USER":  # a later client that names the type: whose login the rule reaches is in its name
        user = acl.name.removeprefix("User:")
        return (acl.pattern != "LITERAL" or user == acl.name or user == "*"
                or puentes(user, (*principals, BROKER, AUDITOR, CONSOLE, ADMIN)))
    return acl.resource not in _BOUNDED or acl.pattern not in _PATTERNS


def looks_in(acl: Acl, planned: Iterable[Acl], observers: Collection[str]) -> bool:
    """Whether an ALLOW rule only to describe (topics, groups, transactional ids) matches a resource the plan
    grants, for a login not among ``observers`` (``PUENTE_ACL_OBSERVERS``: the monitoring tools an operator
    names, lag exporters, Burrow). Describing moves no data, but it tells who gets what: a topic's offsets over
    time are how many alerts each partner's feed carried and when, and a group's members are the partners' hosts.
    So such a rule is drift unless its login is named, as every rule of Puente's own is named by the plan. (A rule
    on the cluster is ``reaches``'s: describing it lists every ACL and login.)"""
    return (acl.permission == "ALLOW" and acl.operation in _LOOK_ONLY and acl.resource != "CLUSTER"
            and acl.principal not in observers and _matches(acl, planned))


def _matches(acl: Acl, planned: Iterable[Acl]) -> bool:
    """Whether ``acl`` matches a resource a rule of ``planned`` grants (``overlaps``, a LITERAL ``*`` being Kafka's
    wildcard)."""
    return any(w.resource == acl.resource and ((acl.pattern == "LITERAL" and acl.name == "*") or overlaps(acl, w))
               for w in planned)


def ours_alone(acl: Acl, planned: Iterable[Acl], names: TopicNames) -> bool:
    """Whether every resource ``acl`` matches is this deployment's: a topic under its prefix (``<prefix>.``), or a
    name one of the plan's rules of the same type covers (a LITERAL one the same name, a PREFIXED one every name
    starting with it). Such a rule, whoever it names, is Puente's to remove when the plan does not name it: no other
    application's resource is in it. One matching more (Kafka's ``*``, an empty or shorter prefix, the cluster)
    may be another application's too, and only an operator may judge it."""
    if acl.resource == "CLUSTER" or (acl.pattern == "LITERAL" and acl.name == "*") \
            or acl.pattern not in ("LITERAL", "PREFIXED"):
        return False
    if acl.resource == "TOPIC" and acl.name.startswith(f"{names.prefix}."):
        return True
    return any(w.resource == acl.resource and (w.name == acl.name if w.pattern == "LITERAL" else
                                               w.pattern == "PREFIXED" and acl.name.startswith(w.name))
               and (w.pattern == "PREFIXED" or acl.pattern == "LITERAL") for w in planned)


DATA_OPERATIONS = frozenset({"READ", "WRITE", "IDEMPOTENT_WRITE", "DELETE"})
"""What an intruder's rule (``broker.kafka.acls.AclChanges.intruders``) may allow to be removed without an operator's
word: reading, writing or deleting records (DeleteRecords on an audit topic), joining a group or deleting its
offsets, using a transactional id. A rule to create or alter this deployment's topics is flagged instead: it is how
a topic-managing login that is not a super user works (an admin reached by certificate, whose principal the client
cannot know), and taking it away would stop `topics apply`, which never deletes. ALL is among them only where the
admin's own rules are known to be spared."""


_BOUNDED = frozenset({"TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"})
"""The resource types whose reach ``reaches`` can judge from a rule's name and pattern: those the plan grants, and
the cluster. Any other is ``unbounded``'s."""
_PATTERNS = frozenset({"LITERAL", "PREFIXED"})
_LOOK_ONLY = frozenset({"DESCRIBE", "DESCRIBE_CONFIGS"})
_CLUSTER_POWERS = frozenset({"ALL", "ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE"})


# ---- client quotas ---------------------------------------------------------------------------------------
# What one party's login may cost the node every party shares. Kafka throttles a client past its quota (it holds
# back the answers), never refuses it: a quota only delays a party that does more than its work needs, so that
# one hostile or broken login (junk written at 100 MiB/s, a flood of costly lookups) cannot slow the others.
MiB = 1024 * 1024
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage")
"""Kafka's per-user quotas: bytes a second written, bytes a second fetched, and percent of one request handler
thread's time over the quota window (a client's share of the node's work, whatever its requests cost)."""

_QUOTAS: dict[str, tuple[float, float, float]] = {
    # producer_byte_rate, consumer_byte_rate, request_percentage
    # An adapter publishes its agency's alerts (a few KiB each; 4 MiB/s is a thousand a second, a large backlog
    # at a steady pace) and reads its whole ingress topic back when it starts (its idempotence ledger): that read
    # may be long, hence 16 MiB/s. Half a handler thread is far beyond what its batches ask of the node.
    "agency": (4 * MiB, 16 * MiB, 50),
    # A partner writes only its receipts (small, one per alert): 1 MiB/s. It reads its feed, and a new subscriber
    # reads it from the start: 16 MiB/s. Half a thread: enough for its fetches, commits and transactions, and far
    # below what a flood of costly requests (offset lookups by time, each inflating a batch) would take.
    "partner": (1 * MiB, 16 * MiB, 50),
    # The auditor writes nothing, the console only its queries log: 1 MiB/s. Both read every decision and receipt
    # (`audit verify`, the console's index catching up): 32 MiB/s. A whole thread: they describe every group and
    # ask offsets of every partition, and few people run them, all trusted with the whole audit.
    "reader": (1 * MiB, 32 * MiB, 100),
    # A former party (an agency or partner no longer named) whose login is kept until `users apply --prune`: `acls
    # apply` took its rights, so Kafka refuses all it asks, and `users apply` disables it; should it log in all the
    # same, each request still costs the node. A trickle, 1 KiB/s each way and a hundredth of a handler thread, is
    # room to be told "not authorized".
    "former": (1024, 1024, 1),
}


def quota_plan(policy_set: PolicySet, agencies: Iterable[str], *,
               logins: Iterable[str]) -> dict[str, dict[str, float]]:
    """Each party's client quotas (``_QUOTAS``): every agency and every partner partners.yaml lists, the auditor
    and the console; and every ``agency-`` or ``partner-`` login among ``logins`` (the cluster's SCRAM users) that
    they do not name, a former party's, the ``former`` trickle until its login is deleted. Not the broker, the one
    trusted service whose pace every party's alerts wait on, nor the admin, the super user who must be able to mend
    the cluster whatever load it is under. ``logins`` is required: left out, a former party's login that still
    authenticates would lose its quota and be unbounded."""
    def role(kind: str) -> dict[str, float]:
        return {key: float(value) for key, value in zip(QUOTA_KEYS, _QUOTAS[kind], strict=True)}
    out = {agency_principal(a): role("agency") for a in agencies}
    out.update({partner_principal(p): role("partner") for p in sorted(policy_set.partners)})
    out.update({AUDITOR: role("reader"), CONSOLE: role("reader")})
    out.update({login: role("former") for login in sorted(set(logins))
                if login not in out and login.startswith(("agency-", "partner-"))})
    return out


@dataclass(frozen=True, order=True)
class Quota:
    """One quota of one user: ``key`` (a ``QUOTA_KEYS`` one, or another of Kafka's) at ``value``."""

    principal: str
    key: str
    value: float

    @property
    def amount(self) -> str:
        """The value as an operator gives it to Kafka's ``kafka-configs``: a whole number without a fraction."""
        return str(int(self.value) if self.value.is_integer() and abs(self.value) < 2**63 else self.value)

    def __str__(self) -> str:
        return f"User:{self.principal} {self.key}={self.amount}"


@dataclass(frozen=True)
class QuotaChanges:
    """What must change on the cluster for the parties' quotas to be the plan's, and the quotas of other users."""

    set: tuple[Quota, ...]
    """Quotas to set: missing, or holding another value (``replaced``)."""
    remove: tuple[Quota, ...]
    """Quotas of Puente's parties the plan does not name, as the cluster holds them."""
    replaced: tuple[Quota, ...] = ()
    """The values ``set`` overwrites, as the cluster holds them."""
    others: tuple[Quota, ...] = ()
    """Quotas of users that are not Puente's parties (the admin, another application's, the default for every user
    written as ``<default>``): left as they are."""

    @property
    def empty(self) -> bool:
        return not self.set and not self.remove

    def requests(self) -> dict[str, dict[str, float | None]]:
        """The changes per user, as ``broker.kafka.quotas.set_user_quotas`` takes them (None: remove the key)."""
        out: dict[str, dict[str, float | None]] = {}
        for quota in self.remove:
            out.setdefault(quota.principal, {})[quota.key] = None
        for quota in self.set:
            out.setdefault(quota.principal, {})[quota.key] = quota.value
        return out


FOR_CLIENT = "/client-id="
"""Between a user and a client id in the key of a quota of both (``broker.kafka.quotas.user_entity``): no party's
name holds a '/'."""


def quota_changes(current: Mapping[str, Mapping[str, float]], wanted: Mapping[str, Mapping[str, float]],
                  principals: Iterable[str]) -> QuotaChanges:
    """What makes every Puente party's quotas exactly ``wanted``'s (``quota_plan``): an allow-list, as for the
    ACLs (``managed``). Every quota of one of Puente's parties (``puentes``: the broker's, and any ``agency-`` or
    ``partner-`` login's, a former party's too) that the plan does not name, whatever its key, is removed; one
    the plan names at another value is set. Another user's quotas are left, and listed."""
    who = list(principals)
    have = {Quota(user, key, float(value)) for user, values in current.items() for key, value in values.items()}
    want = {Quota(user, key, float(value)) for user, values in wanted.items() for key, value in values.items()}
    planned = {(q.principal, q.key) for q in want}
    # A key names a user, or a user and a client id (``FOR_CLIENT``): one for a client id of a party's login outranks
    # the party's own quota in Kafka, and the plan names none, so it is removed.
    mine = {q for q in have if puentes(q.principal.partition(FOR_CLIENT)[0], who) or q.principal in wanted}
    return QuotaChanges(tuple(sorted(want - have)),
                        tuple(sorted(q for q in mine if (q.principal, q.key) not in planned)),
                        tuple(sorted(q for q in mine - want if (q.principal, q.key) in planned)),
                        tuple(sorted(have - mine)))
