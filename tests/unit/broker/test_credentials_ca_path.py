"""Each party's client.properties names the admin's CA by an absolute path, and is checked to read back before Kafka
takes any new password: an admin run with a relative CA path (``ssl.truststore.location=ca.pem`` in an
admin.properties read from its own folder) once wrote that path as given, each party read it from its own folder
and failed, and every later `users apply` took the unreadable files for lost and rotated every password. Kafka is a
stub recording the passwords it holds (``ScramCluster``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from scram_cluster import ScramCluster

import broker.credentials as credentials
from broker.kafka import KafkaConnection, connection_from_properties
from puente.errors import ConfigError

PARTIES = ["broker", "auditor", "agency-SENAN", "partner-COL", "partner-USA"]


class _Admin:
    """The admin's connection as given: ``conn``."""

    def __init__(self, conn: KafkaConnection) -> None:
        self.conn = conn

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


def _relative_admin(folder: Path, monkeypatch: pytest.MonkeyPatch) -> KafkaConnection:
    """The admin's connection read from ``admin.properties`` in ``folder``, the working folder, naming ``ca.pem``
    beside it by a relative path."""
    monkeypatch.chdir(folder)
    Path("ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", encoding="utf-8")
    Path("admin.properties").write_text(
        "bootstrap.servers=kafka:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
        'password="pw";\nssl.truststore.type=PEM\nssl.truststore.location=ca.pem\n', encoding="utf-8")
    os.chmod("admin.properties", 0o600)
    conn = connection_from_properties(Path("admin.properties"))
    assert conn.ca_file == Path("ca.pem")  # relative to the working folder, as given
    return conn


def _apply(conn: KafkaConnection, keys: Path, **options: Any) -> dict[str, str]:
    logins = asyncio.run(credentials.apply_users(_Admin(conn), keys, PARTIES,  # type: ignore[arg-type]
                                                 former="disable", **options))
    return {login.principal: login.action for login in logins}


def test_a_relative_ca_path_is_written_absolute_and_passwords_are_kept_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An admin connection with a relative CA path: every party's file names the CA by its absolute path and reads
    back from its own folder, and a second `users apply` keeps every password."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    conn = _relative_admin(tmp_path, monkeypatch)
    assert set(_apply(conn, keys).values()) == {"created"}
    held = dict(cluster.held)
    for party in PARTIES:
        party_conn = credentials.party_connection(keys, party)
        assert party_conn.ca_file == tmp_path / "ca.pem"
    assert _apply(conn, keys) == dict.fromkeys(PARTIES, "kept")
    assert cluster.held == held


def test_a_file_that_would_not_read_back_changes_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client configuration written that its party could not read is refused before any Kafka change: no password
    is set, and no new file is left behind."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    conn = KafkaConnection(bootstrap="kafka:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                           username="admin", password="x", ca_file=tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match=r"the client configuration written for broker would not work \(.*ca "
                                          r"file.*\); nothing was changed on Kafka"):
        _apply(conn, keys)
    assert cluster.held == {} and "upsert" not in cluster.calls
    assert not list(keys.rglob("*client.properties*"))
