"""The cluster's ACLs and SCRAM users, made equal to what ``broker.access`` plans, idempotently.

``acl_changes`` compares the plan with the ACLs the cluster holds: what to add, and what to remove
among the ACLs Puente manages (its principals on its deployment's resources; anything else on a
shared cluster is left alone). ``apply_acls`` makes the change and checks each result. Users are
SCRAM-SHA-512 credentials (``upsert_users``), set through the admin API as Kafka's own
``kafka-configs`` tool does.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
    UserScramCredentialUpsertion,
)

from broker.access import Acl, managed
from broker.kafka.admin import Admin
from broker.topology import TopicNames
from puente.errors import KafkaError, KafkaOperationError

SCRAM_ITERATIONS = 8192  # Kafka's minimum is 4096


@dataclass(frozen=True)
class AclChanges:
    """What must change on the cluster for its ACLs to be the plan's."""

    add: tuple[Acl, ...]
    remove: tuple[Acl, ...]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


def _binding(acl: Acl) -> AclBinding:
    return AclBinding(ResourceType[acl.resource], acl.name, ResourcePatternType[acl.pattern],
                      f"User:{acl.principal}", "*", AclOperation[acl.operation], AclPermissionType.ALLOW)


def _named(value: object) -> str:
    # confluent-kafka gives enums here; its annotations also allow the str or int they were built from.
    return str(getattr(value, "name", value))


def _acl(binding: AclBinding) -> Acl | None:
    """Puente's view of a cluster ACL, or None for one it never makes (DENY, a host, an operation or
    a resource type outside its vocabulary): such an ACL is reported, never silently dropped."""
    resource, pattern, operation = _named(binding.restype), _named(binding.resource_pattern_type), \
        _named(binding.operation)
    principal = str(binding.principal)
    if (_named(binding.permission_type) != "ALLOW" or binding.host != "*" or not principal.startswith("User:")
            or resource not in ("TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER")
            or operation not in ("READ", "WRITE", "DESCRIBE", "IDEMPOTENT_WRITE")
            or pattern not in ("LITERAL", "PREFIXED")):
        return None
    return Acl(principal[len("User:"):], resource, binding.name, pattern, operation)  # type: ignore[arg-type]


async def cluster_acls(admin: Admin) -> tuple[set[Acl], list[str]]:
    """Every ACL on the cluster that Puente's vocabulary can express, and a line for each other one."""
    # None matches any name, principal and host (the library's annotations say str only).
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
                                  AclOperation.ANY, AclPermissionType.ANY)
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
                principals: Iterable[str]) -> AclChanges:
    """What to add (planned, missing) and remove (managed by Puente, not planned)."""
    have, want = set(current), set(wanted)
    who = list(principals)
    return AclChanges(tuple(sorted(want - have)),
                      tuple(sorted(a for a in have - want if managed(a, names, who))))


async def apply_acls(admin: Admin, changes: AclChanges) -> list[str]:
    """Make ``changes``; a line for each one that failed (an empty list when all were made).

    An ACL reaches the brokers' authorizers through the metadata log, a moment after the call
    returns: this waits until the cluster lists the change, so that a party started right after
    is not refused by a rule that is still on its way.
    """
    failed = await _make(admin, changes)
    if not failed:
        await _settled(admin, changes)
    return failed


async def _settled(admin: Admin, changes: AclChanges) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + admin.conn.timeout_s
    while loop.time() < deadline:
        current, _ = await cluster_acls(admin)
        if set(changes.add) <= current and not set(changes.remove) & current:
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
    if changes.remove:
        filters = [AclBindingFilter(ResourceType[a.resource], a.name, ResourcePatternType[a.pattern],
                                    f"User:{a.principal}", "*", AclOperation[a.operation], AclPermissionType.ALLOW)
                   for a in changes.remove]
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
    changes: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
    done = await admin.results("setting SCRAM credentials", await admin.call(
        "setting SCRAM credentials",
        lambda c: c.alter_user_scram_credentials(changes, request_timeout=admin.conn.timeout_s)))
    failed = [f"{user}: {outcome}" for user, outcome in done.items() if isinstance(outcome, Exception)]
    if failed:
        raise KafkaOperationError("setting SCRAM credentials failed for " + "; ".join(failed)[:500])
