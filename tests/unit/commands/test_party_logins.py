"""A command that runs as one party refuses another party's login by name, before Kafka: with it, Kafka's answers
mislead (a broker told its topics do not exist, an audit with problems it does not have). Kafka here is a closed
port, so a refusal that waited for Kafka would exit 4, not 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from unreachable import closed_port

from broker.credentials import require_party
from broker.kafka import KafkaConnection
from puente.errors import ConfigError


def _login(folder: Path, user: str) -> Path:
    """A client configuration logging in as ``user`` to a Kafka at a closed port."""
    path = folder / f"{user}.properties"
    path.write_text(f"bootstrap.servers=127.0.0.1:{closed_port()}\nsecurity.protocol=SASL_SSL\n"
                    "sasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram."
                    f'ScramLoginModule required username="{user}" password="not-a-real-one";\n', encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore made by `puente keys init`, with one console account, so that each command gets as far as Kafka."""
    root = tmp_path_factory.mktemp("party") / "keys"
    password = root.parent / "password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    for args in (("keys", "init"), ("audit", "users", "add", "alice", "--scope", "national",
                                    "--password-file", str(password))):
        done = subprocess.run([sys.executable, "-m", "puente.cli", *args], env={**os.environ, "PUENTE_KEYS": str(root)},
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    return root


def _puente(keys: Path, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k not in ("PUENTE_CLIENT_CONFIG", "PUENTE_BOOTSTRAP")}
    variables.update({"PUENTE_CLIENT_CONFIG": str(_login(keys.parent, user)), "PUENTE_KAFKA_TIMEOUT_S": "2",
                      "PUENTE_KEYS": str(keys), "PUENTE_AUDIT_INDEX": str(keys.parent / "index.sqlite")})
    return subprocess.run([sys.executable, "-m", "puente.cli", *args], env=variables, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(("user", "command", "party"), [
    ("partner-COL", ("broker", "run"), "User:broker"),
    ("auditor", ("broker", "run"), "User:broker"),
    ("partner-COL", ("subscribe", "--partner", "USA", "--key", "{keys}/partners/USA/USA-enc-2026a.json"),
     "User:partner-USA"),
    ("broker", ("audit", "verify"), "User:auditor or User:console"),
    ("partner-COL", ("audit", "log"), "User:auditor or User:console"),
    ("agency-SNM", ("audit", "recalls"), "User:auditor or User:console"),
    ("broker", ("audit", "index"), "User:auditor or User:console"),
    ("auditor", ("audit", "serve", "--port", "{port}"), "User:console"),
    ("auditor", ("audit", "collect-denials", "--log", "{log}"), "User:broker"),
])
def test_another_partys_login_is_refused_by_name_before_kafka(keys: Path, user: str, command: tuple[str, ...],
                                                              party: str) -> None:
    """Another party's login: exit 3 (not Kafka's 4), one line naming the party the command runs as, the login and
    its file, and nothing else printed (no "0 feed record(s) opened")."""
    log = keys.parent / "authorizer.log"
    log.touch()
    args = [part.format(keys=keys, port=closed_port(), log=log) for part in command]
    done = _puente(keys, user, *args)
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"puente: error: `puente {' '.join(command[:2])}"), line
    assert f"runs as {party}, but the login in {keys.parent / user}.properties is User:{user}" in line, line
    assert done.stdout == ""


def test_a_subscriber_kafka_refuses_prints_no_summary_of_nothing(keys: Path) -> None:
    """Its own login, Kafka unreachable: the error line, without "COL: 0 feed record(s) opened" above it."""
    done = _puente(keys, "partner-COL", "subscribe", "--partner", "COL", "--key",
                   str(keys / "partners" / "COL" / "COL-enc-2026a.json"))
    assert done.returncode == 4, done.stderr
    assert "feed record(s) opened" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "error" in line]
    assert line.startswith("puente: error:") and "could not be reached" in line


def _conn(user: str | None) -> KafkaConnection:
    if user is None:
        return KafkaConnection(bootstrap="kafka:9093", source="/etc/puente/client.properties")
    return KafkaConnection(bootstrap="kafka:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                           username=user, password="x", source="/etc/puente/client.properties")


@pytest.mark.parametrize("user", ["broker", "admin", "ops-team", None])
def test_the_partys_own_the_admins_and_unknown_logins_pass(user: str | None) -> None:
    """Its own login passes; so does one that is no party's (the admin, a name of the deployment's own, no SASL):
    Kafka's ACLs judge those."""
    require_party(_conn(user), "puente broker run", "broker")


@pytest.mark.parametrize("user", ["auditor", "console", "partner-COL", "agency-SNM", "partner-GONE"])
def test_every_other_party_is_refused(user: str) -> None:
    """Each other party's login, a former partner's too, is refused in one line naming both."""
    with pytest.raises(ConfigError) as refused:
        require_party(_conn(user), "puente broker run", "broker")
    text = str(refused.value)
    assert "\n" not in text and f"is User:{user}, another party's" in text and "broker's client.properties" in text
