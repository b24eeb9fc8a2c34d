"""Administration services refuse a login that may not administer the cluster, in one line, before any other call:
another party's login would get a refused DescribeUserScramCredentials (which aborts the process inside
librdkafka), an empty ACL list or a partial topic list. The AdminClient is a fake that answers DescribeCluster with
the operations given and records every other call; the real Kafka's answers are in the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest
from confluent_kafka.admin import AclOperation

import broker.kafka.admin as admin_module
from broker.credentials import apply_users
from broker.kafka import Admin, KafkaConnection, apply_topics
from broker.kafka.acls import AclChanges, apply_acls, cluster_acls, scram_users
from broker.kafka.topics import TopicSpec
from puente.errors import KafkaAccessError

PARTY = KafkaConnection(bootstrap="127.0.0.1:1", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                        username="partner-COL", password="x", source="/logins/partners/COL/client.properties")
ADMIN_OPS = [AclOperation.ALTER, AclOperation.ALTER_CONFIGS, AclOperation.CLUSTER_ACTION, AclOperation.CREATE,
             AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.IDEMPOTENT_WRITE]


class _Client:
    """An AdminClient: DescribeCluster answers ``ops`` (None: Kafka's answer to a login that may not describe the
    cluster); any other call is recorded and fails the test's expectations by being there."""

    ops: list[AclOperation] | None = None

    def __init__(self, config: dict[str, Any]) -> None:
        self.calls: list[str] = []

    def describe_cluster(self, include_authorized_operations: bool, request_timeout: float) -> Future[Any]:
        self.calls.append("describe_cluster" if include_authorized_operations else "describe_cluster without ops")
        done: Future[Any] = Future()
        done.set_result(NS(authorized_operations=self.ops))
        return done

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"{name} asked of a login that may not administer the cluster")
        return record

    def poll(self, timeout: float) -> int:
        return 0


def _admin(monkeypatch: pytest.MonkeyPatch, ops: list[AclOperation] | None) -> Admin:
    monkeypatch.setattr(admin_module, "AdminClient", _Client)
    monkeypatch.setattr(_Client, "ops", ops)
    return Admin(PARTY)


def _calls(admin: Admin) -> list[str]:
    assert isinstance(admin.client, _Client)
    return admin.client.calls


def test_a_party_login_is_refused_in_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cluster operations (a party's login): KafkaAccessError, one line naming the principal, its file, what needed
    the admin, and the admin's client.properties to use."""
    admin = _admin(monkeypatch, None)
    with pytest.raises(KafkaAccessError) as refused:
        asyncio.run(admin.require_admin("planning the parties' logins"))
    text = str(refused.value)
    assert "\n" not in text and refused.value.exit_code == 3
    for part in ("User:partner-COL", "/logins/partners/COL/client.properties", "planning the parties' logins",
                 "its operations on the cluster: none", "the admin's client.properties"):
        assert part in text, text


def test_describe_without_alter_is_not_the_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A login that may describe the cluster but not change its ACLs and logins is refused, naming what it may do."""
    admin = _admin(monkeypatch, [AclOperation.DESCRIBE, AclOperation.IDEMPOTENT_WRITE])
    with pytest.raises(KafkaAccessError, match=r"its operations on the cluster: DESCRIBE, IDEMPOTENT_WRITE\)"):
        asyncio.run(admin.require_admin("listing the cluster's ACLs"))


def test_the_admins_login_passes_and_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A super user's operations pass; a second check on the same Admin asks Kafka nothing more."""
    admin = _admin(monkeypatch, ADMIN_OPS)

    async def twice() -> None:
        await admin.require_admin("planning topics")
        await admin.require_admin("planning topics")

    asyncio.run(twice())
    assert _calls(admin) == ["describe_cluster"]


def _services(tmp_path: Path) -> dict[str, Callable[[Admin], Coroutine[Any, Any, Any]]]:
    spec = TopicSpec("p.decisions", 1, 1, {})
    return {
        "users plan": lambda a: apply_users(a, tmp_path / "logins", ["broker"], dry_run=True),
        "users apply": lambda a: apply_users(a, tmp_path / "logins", ["broker"]),
        "scram users": scram_users,
        "acls plan": cluster_acls,
        "acls apply": lambda a: apply_acls(a, AclChanges((), ())),
        "topics plan": lambda a: apply_topics(a, [spec], dry_run=True),
        "topics apply": lambda a: apply_topics(a, [spec]),
    }


@pytest.mark.parametrize("service", ["users plan", "users apply", "scram users", "acls plan", "acls apply",
                                     "topics plan", "topics apply"])
def test_every_administration_service_asks_first_and_nothing_else(service: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each service a command administers the cluster through checks the login before its first other call, so a
    party's login is refused and Kafka is asked nothing it would refuse or answer partially."""
    admin = _admin(monkeypatch, None)
    with pytest.raises(KafkaAccessError, match="may not administer"):
        asyncio.run(_services(tmp_path)[service](admin))
    assert _calls(admin) == ["describe_cluster"]
