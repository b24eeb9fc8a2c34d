"""Kafka's side of ``broker.credentials.apply_users`` as the unit tests see it: no Kafka, a record of the
passwords it holds and of the calls it got."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import broker.credentials as credentials
import puente.commands.access as access
from broker.kafka import KafkaConnection
from broker.kafka.acls import SCRAM_MECHANISM
from puente.settings import PuenteSettings


class ScramCluster:
    """The SCRAM logins of a cluster: ``held`` the password of each user with Puente's mechanism, ``others`` the
    other mechanisms a user has a credential of, ``given`` every password an upsert was asked to set, ``deleted``
    every credential a delete was asked to remove, ``calls`` the calls in order. ``fail`` is raised by the next
    upsert, after the passwords of ``taken`` (None: all) were set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, held: dict[str, str] | None = None,
                 others: dict[str, set[str]] | None = None) -> None:
        self.held: dict[str, str] = dict(held or {})
        self.others: dict[str, set[str]] = {user: set(mechanisms) for user, mechanisms in (others or {}).items()}
        self.given: dict[str, str] = {}
        self.deleted: dict[str, set[str]] = {}
        self.calls: list[str] = []
        self.fail: BaseException | None = None
        self.taken: set[str] | None = None

        async def scram_users(admin: Any) -> dict[str, frozenset[str]]:
            self.calls.append("list")
            users = {*self.held, *(user for user, mechanisms in self.others.items() if mechanisms)}
            return {user: frozenset({SCRAM_MECHANISM} if user in self.held else set()) | self.others.get(user, set())
                    for user in users}

        async def upsert(admin: Any, passwords: dict[str, str]) -> None:
            self.calls.append("upsert")
            self.given.update(passwords)
            self.held.update({u: p for u, p in passwords.items() if self.taken is None or u in self.taken})
            fail, self.fail, self.taken = self.fail, None, None
            if fail is not None:
                raise fail

        async def delete(admin: Any, users: dict[str, Any]) -> None:
            self.calls.append("delete")
            for user, mechanisms in users.items():
                self.deleted.setdefault(user, set()).update(mechanisms)
                if SCRAM_MECHANISM in mechanisms:
                    self.held.pop(user, None)
                self.others.get(user, set()).difference_update(mechanisms)

        async def nothing(*args: Any) -> None:
            return None

        monkeypatch.setattr(credentials, "scram_users", scram_users)
        monkeypatch.setattr(credentials, "upsert_users", upsert)
        monkeypatch.setattr(credentials, "delete_users", delete)
        monkeypatch.setattr(credentials, "_wait_usable", nothing)


class FakeAdmin:
    """The admin connection ``apply_users`` writes each party's bootstrap servers and CA from."""

    conn = KafkaConnection(bootstrap="kafka:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                           username="admin", password="x")

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


def apply(keys: Path, principals: list[str], **options: Any) -> list[credentials.PartyLogin]:
    """``apply_users`` against the stubbed cluster (``ScramCluster``)."""
    return asyncio.run(credentials.apply_users(FakeAdmin(), keys, principals, **options))  # type: ignore[arg-type]


def stub_users_command(monkeypatch: pytest.MonkeyPatch, keys: Path, principals: list[str]) -> ScramCluster:
    """`puente users` run in process against a ``ScramCluster``: the settings name ``keys``, the parties are
    ``principals``, and the admin's connection is a ``FakeAdmin``."""
    cluster = ScramCluster(monkeypatch)
    monkeypatch.setattr(access, "settings", lambda args: PuenteSettings(topic_prefix="puente", keys=keys))
    monkeypatch.setattr(access, "load_policy_set", lambda folder: None)
    monkeypatch.setattr(access, "parties", lambda policy, agencies: principals)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(access, "Admin", lambda conn: FakeAdmin())
    return cluster
