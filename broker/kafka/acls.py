"""The cluster's ACLs and SCRAM users, made equal to what ``broker.access`` plans, idempotently.

``acl_changes`` compares the plan with the ACLs the cluster holds: what to add, and what to remove
among the ACLs Puente manages (every rule of one of its parties, whatever its resource, name,
pattern, operation, permission or host: ``broker.access.managed``); other principals' rules on a
shared cluster are left alone, and listed; those that reach one of Puente's resources are drift
(``broker.access.reaches``). ``apply_acls`` makes the change and checks each result. Users are
SCRAM-SHA-512 credentials (``upsert_users``, ``delete_users``, listed by ``scram_users``), set
through the admin API as Kafka's own ``kafka-configs`` tool does. A change some users' credentials
failed raises ``ScramChangeFailed``, a KafkaOperationError that says whose change Kafka refused and
whose it did not answer: every other user's change was made.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from broker.access import DATA_OPERATIONS, Acl, looks_in, managed, ours_alone, puentes, reaches, unbounded, wildcard
from broker.kafka.admin import Admin
from broker.topology import TopicNames
from puente.errors import KafkaError, KafkaOperationError, KafkaUnavailableError

SCRAM_ITERATIONS = 8192  # Kafka's minimum is 4096
SCRAM_MECHANISM = ScramMechanism.SCRAM_SHA_512.name  # the one Puente's logins use
MANY_INTRUDERS = 4  # the most rules of other logins `acls apply` removes without --allow-many (``mass_removal``)


@dataclass(frozen=True)
class AclChanges:
    """What must change on the cluster for its ACLs to be the plan's, and what it holds that is not
    Puente's to change."""

    add: tuple[Acl, ...]
    remove: tuple[Acl, ...]
    others: tuple[Acl, ...] = ()
    """Rules of principals that are not Puente's parties: left as they are."""
    everyone: tuple[Acl, ...] = ()
    """Among ``others``, ALLOW rules for every user (``User:*``) but those in ``intruders``: they reach Puente's
    parties too, so the cluster grants them more than the plan, but they may be another application's to
    remove."""
    strangers: tuple[Acl, ...] = ()
    """Among ``others``, ALLOW rules of principals no policy names on a resource of the plan (``reaches``) that are
    not ``intruders``: matching more than this deployment's resources (Kafka's ``*``, a short prefix, the cluster),
    or to create or alter them (a topic-managing login's): a leftover login, another application's, a name
    differing from a party's only in case. Not removed here (they may be another application's, or needed), but
    the cluster grants more than the policy names."""
    held: int = 0
    """How many rules of Puente's parties the cluster holds now (those ``remove`` is drawn from)."""
    intruders: tuple[Acl, ...] = ()
    """Rules of principals that are not Puente's parties (``User:*`` too) letting them read or write records of, or
    use, resources of this deployment alone (``broker.access.ours_alone``, ``DATA_OPERATIONS``): removed, as a
    party's rule outside the plan is. A login no policy names never reads a feed or writes an audit topic because
    ``acls apply`` left it. Also every such rule on a resource Puente cannot bound (``broker.access.unbounded``: a
    USER resource naming a party, one of a type the client reads as UNKNOWN), whatever it allows: one that may let
    its holder mint a party's delegation tokens is removed, or reported to remove by hand, never left as it is."""

    @property
    def mass_removal(self) -> str | None:
        """Why applying these changes takes too many rights away at once to go on without ``--allow-many``, in one
        line; None when it removes none, or a few. Too many: more than half (two at least) of the rules Puente's
        parties hold. A ``PUENTE_TOPIC_PREFIX``, policy folder or agency list named by mistake plans another
        deployment's rules, and applying it would cut every party of this one off its topics at once; a policy
        change that retires a partner or an agreement removes a share of them, not most. Or more than
        ``MANY_INTRUDERS`` rules of other logins at once: a leftover grant or two go without a word, but as many as
        another application's whole set (a mirror's, a backup's) are the operator's to confirm."""
        why = []
        if len(self.remove) >= 2 and 2 * len(self.remove) > self.held:  # first: the mistake it guards against
            why.append(f"{len(self.remove)} of the {self.held} rules Puente's parties hold on the cluster (is "
                       "PUENTE_TOPIC_PREFIX, PUENTE_POLICY_DIR or PUENTE_AGENCIES the wrong one?)")
        if len(self.intruders) > MANY_INTRUDERS:
            why.append(f"{len(self.intruders)} rules of logins no policy names on this deployment's resources")
        if not why:
            return None
        return (f"refusing to remove {' and '.join(why)} at once: `puente acls plan` lists them; if they are to go, "
                "run `puente acls apply --allow-many`. Nothing was changed")

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove and not self.intruders

    @property
    def removals(self) -> tuple[Acl, ...]:
        """Every rule to remove: a party's the plan does not name, and ``intruders``."""
        return (*self.remove, *self.intruders)

    @property
    def drift(self) -> bool:
        """Whether anyone may do with Puente's resources, or Puente's parties with any, more than the plan names."""
        return not self.empty or bool(self.everyone) or bool(self.strangers)


# Kafka's CLUSTER resource is librdkafka's BROKER (both are resource type 4).
_RESOURCE_TO_LIB = {"CLUSTER": "BROKER"}
_RESOURCE_FROM_LIB = {lib: ours for ours, lib in _RESOURCE_TO_LIB.items()}


def _binding(acl: Acl) -> AclBinding:
    return AclBinding(ResourceType[_RESOURCE_TO_LIB.get(acl.resource, acl.resource)], acl.name,
                      ResourcePatternType[acl.pattern], f"User:{acl.principal}", acl.host,
                      AclOperation[acl.operation], AclPermissionType[acl.permission])


def _filter(acl: Acl) -> AclBindingFilter | None:
    """A filter matching ``acl`` and no other rule, or None when the client cannot name one of its
    values (Kafka knows resource types and operations librdkafka reads as UNKNOWN): a filter with ANY
    in their place would delete other rules too."""
    try:
        values = (ResourceType[_RESOURCE_TO_LIB.get(acl.resource, acl.resource)], ResourcePatternType[acl.pattern],
                  AclOperation[acl.operation], AclPermissionType[acl.permission])
    except KeyError:
        return None
    resource, pattern, operation, permission = values
    if {resource.name, pattern.name, operation.name, permission.name} & {"UNKNOWN", "ANY", "MATCH"}:
        return None
    return AclBindingFilter(resource, acl.name, pattern, f"User:{acl.principal}", acl.host, operation, permission)


def _named(value: object) -> str:
    # confluent-kafka gives enums here; its annotations also allow the str or int they were built from.
    return str(getattr(value, "name", value))


def _acl(binding: AclBinding) -> Acl | None:
    """Puente's view of a cluster ACL, whatever its resource type, pattern, operation, permission or host;
    None for one whose principal is no user (``User:``), which can never be one of Puente's parties."""
    principal = str(binding.principal)
    if not principal.startswith("User:"):
        return None
    resource = _named(binding.restype)
    return Acl(principal[len("User:"):], _RESOURCE_FROM_LIB.get(resource, resource), str(binding.name),
               _named(binding.resource_pattern_type), _named(binding.operation), _named(binding.permission_type),
               str(binding.host))


def every_acl_filter() -> AclBindingFilter:
    """A filter for every rule on the cluster: any resource type (CLUSTER included), any name (None: the
    wildcard ``*`` and prefixes too), any pattern type, principal, host, operation and permission."""
    # None matches any name, principal and host (the library's annotations say str only).
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
                            AclOperation.ANY, AclPermissionType.ANY)


async def cluster_acls(admin: Admin) -> tuple[set[Acl], list[str]]:
    """Every ACL on the cluster of a user principal, and a line for each other one (never Puente's)."""
    await admin.require_admin("listing the cluster's ACLs")
    everything = every_acl_filter()
    future = await admin.call("listing ACLs", lambda c: c.describe_acls(everything,
                                                                         request_timeout=admin.conn.timeout_s))
    found = (await admin.results("listing ACLs", {"acls": future}))["acls"]
    if isinstance(found, KafkaError):
        raise found
    acls, others = set(), []
    for binding in found:
        acl = _acl(binding)
        if acl is None:
            others.append(str(binding)[:200])
        else:
            acls.add(acl)
    return acls, others


def acl_changes(current: Iterable[Acl], wanted: Iterable[Acl], names: TopicNames,
                principals: Iterable[str], *, admin: str | None = None, observers: Collection[str] = ()) -> AclChanges:
    """What to add (planned, missing) and remove (a rule of one of Puente's parties, not planned; a rule of anyone
    else on this deployment's resources alone, ``intruders``), and the other rules of other principals, left alone.
    A party's rules are Puente's whatever the resource, under this deployment's prefix (``names``) or not. The
    ``admin``, the login applying the plan, keeps its rules: it may change every ACL, so they grant it nothing. Only
    rules to read, write or use them are intruders (``DATA_OPERATIONS``; ALL too once ``admin`` is known); a rule
    to create, delete or alter them is left to the operator (``strangers``), and so is one only to describe them
    whose login is not among ``observers`` (``broker.access.looks_in``). A rule on a resource Puente cannot bound (a
    USER resource naming a party or the admin, a resource type the client cannot name: ``broker.access.unbounded``)
    is an intruder whatever it allows, and one the client cannot name ``apply_acls`` reports to remove by hand; the
    admin's own is a stranger."""
    have, want = set(current), set(wanted)
    who = list(principals)
    takes = DATA_OPERATIONS | ({"ALL"} if admin else set())
    logins = [*who, *([admin] if admin else [])]  # a rule minting tokens for the admin would make its holder one
    intruders = tuple(sorted(a for a in have - want if not managed(a, who) and a.principal != admin
                             and (unbounded(a, logins) or (a.operation in takes and reaches(a, want)
                                                           and ours_alone(a, want, names)))))
    others = tuple(sorted(a for a in have if not managed(a, who) and a not in intruders))
    everyone = tuple(a for a in others if wildcard(a))
    return AclChanges(tuple(sorted(want - have)), tuple(sorted(a for a in have - want if managed(a, who))),
                      others, everyone,
                      tuple(a for a in others if a not in everyone and not puentes(a.principal, who)
                            and (reaches(a, want) or looks_in(a, want, observers))),
                      sum(1 for a in have if managed(a, who)), intruders)


async def apply_acls(admin: Admin, changes: AclChanges) -> list[str]:
    """Make ``changes``; a line for each one that failed (an empty list when all were made).

    An ACL reaches the brokers' authorizers through the metadata log, a moment after the call
    returns: this waits until the cluster lists the change, so that a party started right after
    is not refused by a rule that is still on its way.
    """
    await admin.require_admin("changing the cluster's ACLs")
    failed = await _make(admin, changes)
    if not failed:
        await _settled(admin, changes)
    return failed


async def _settled(admin: Admin, changes: AclChanges) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + admin.conn.timeout_s
    while loop.time() < deadline:
        current, _ = await cluster_acls(admin)
        if set(changes.add) <= current and not set(changes.removals) & current:
            return
        await asyncio.sleep(0.1)
    raise KafkaOperationError(f"Kafka at {admin.conn.bootstrap} did not list the ACL changes within "
                              f"{admin.conn.timeout_s:g}s; run `puente acls plan` to see where they stand")


async def _make(admin: Admin, changes: AclChanges) -> list[str]:
    failed: list[str] = []
    timeout = admin.conn.timeout_s
    if changes.add:
        bindings = [_binding(a) for a in changes.add]
        made = await admin.results("creating ACLs", await admin.call(
            "creating ACLs", lambda c: c.create_acls(bindings, request_timeout=timeout)))
        failed += [f"add {_acl(b)}: {outcome}" for b, outcome in made.items() if isinstance(outcome, Exception)]
    unnamed = [a for a in changes.removals if _filter(a) is None]
    failed += [f"remove {a}: the Kafka client cannot name this rule's {a.resource}/{a.pattern}/{a.operation}/"
               f"{a.permission}; remove it with Kafka's kafka-acls tool (`kafka-acls --list --principal "
               f"User:{a.principal}` shows it as Kafka names it)" for a in unnamed]
    filters = [f for f in map(_filter, changes.removals) if f is not None]
    if filters:
        gone = await admin.results("deleting ACLs", await admin.call(
            "deleting ACLs", lambda c: c.delete_acls(filters, request_timeout=timeout)))
        failed += [f"remove {f}: {outcome}" for f, outcome in gone.items() if isinstance(outcome, Exception)]
    return failed


def new_password() -> str:
    """A random SCRAM password (URL-safe, 32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


async def upsert_users(admin: Admin, passwords: Mapping[str, str]) -> None:
    """Set each user's SCRAM-SHA-512 credential to its password; KafkaOperationError naming those that failed."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    await _alter_scram(admin, "setting SCRAM credentials", [
        UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()])


class ScramChangeFailed(KafkaOperationError):
    """A SCRAM change failed for some users: ``refused``, those Kafka answered with an error (their credential
    is as it was), and ``unanswered``, those it did not answer in time (theirs may or may not have changed).
    Every other user's change was made."""

    def __init__(self, message: str, refused: frozenset[str], unanswered: frozenset[str]) -> None:
        super().__init__(message)
        self.refused = refused
        self.unanswered = unanswered


async def _alter_scram(admin: Admin, doing: str, changes: list[UserScramCredentialAlteration]) -> None:
    """Make the SCRAM ``changes``; ScramChangeFailed naming the users whose change failed."""
    await admin.require_admin(doing)
    done = await admin.results(doing, await admin.call(
        doing, lambda c: c.alter_user_scram_credentials(changes, request_timeout=admin.conn.timeout_s)))
    failed = {str(user): outcome for user, outcome in done.items() if isinstance(outcome, Exception)}
    if failed:
        unanswered = frozenset(user for user, outcome in failed.items() if isinstance(outcome, KafkaUnavailableError))
        raise ScramChangeFailed(f"{doing} failed for " + "; ".join(f"{u}: {e}" for u, e in failed.items())[:500],
                                frozenset(failed) - unanswered, unanswered)


async def scram_users(admin: Admin) -> dict[str, frozenset[str]]:
    """Every user the cluster holds a SCRAM credential for, with the names of the mechanisms it has one
    for (``SCRAM_MECHANISM`` is Puente's). Asked only of the admin: librdkafka aborts the process when Kafka
    refuses this call (``Admin.require_admin``)."""
    await admin.require_admin("listing the SCRAM users")
    future = await admin.call("listing SCRAM users", lambda c: c.describe_user_scram_credentials(
        request_timeout=admin.conn.timeout_s))
    found = (await admin.results("listing SCRAM users", {"users": cast("Future[Any]", future)}))["users"]
    if isinstance(found, KafkaError):
        raise found
    return {str(user): frozenset(info.mechanism.name for info in description.scram_credential_infos)
            for user, description in found.items()}


async def delete_users(admin: Admin, users: Mapping[str, Iterable[str]]) -> None:
    """Delete each user's credentials of the mechanisms named (as ``scram_users`` gives them): that login
    works no more. KafkaOperationError naming those that failed."""
    changes: list[UserScramCredentialAlteration] = [
        UserScramCredentialDeletion(user, ScramMechanism[mechanism])
        for user, mechanisms in users.items() for mechanism in mechanisms]
    if changes:
        await _alter_scram(admin, "deleting SCRAM credentials", changes)
