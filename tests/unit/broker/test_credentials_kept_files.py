"""A party's password is kept whenever its client.properties is still a sound secret file of its login (this user's,
0600, naming the party, holding a SCRAM password), even when its TLS settings went stale (the CA renewed under
another name): a plain `users apply` once took any file that did not read for lost and rotated every password, and
the guard against mass rotation counted only missing files. Files present but unusable count as lost now, and each
rotation says why. Kafka is a stub recording the passwords it holds (``ScramCluster``)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from scram_cluster import FakeAdmin, ScramCluster, stub_users_command

import broker.credentials as credentials
from broker.kafka import KafkaConnection
from broker.keystore import PENDING_CLIENT_CONFIG
from puente.cli import build_parser
from puente.errors import ConfigError

PARTIES = ["broker", "auditor", "agency-SENAN", "agency-PN", "partner-COL", "partner-USA"]


class _Admin:
    """The admin's connection, naming ``ca_file`` as its CA."""

    def __init__(self, ca_file: Path) -> None:
        self.conn = KafkaConnection(bootstrap="kafka:9093", security_protocol="SASL_SSL",
                                    sasl_mechanism="SCRAM-SHA-512", username="admin", password="x", ca_file=ca_file)

    async def require_admin(self, doing: str) -> None:
        """The admin's login: it may administer the cluster."""


def _apply(admin: Any, keys: Path, principals: list[str] = PARTIES, **options: Any) -> list[credentials.PartyLogin]:
    return asyncio.run(credentials.apply_users(admin, keys, principals, former="disable", **options))


def _file(keys: Path, principal: str) -> Path:
    return credentials.party_folder(keys, principal) / "client.properties"


def test_a_renewed_ca_under_another_name_keeps_every_password_and_rewrites_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA the files name is gone (renewed as ca-2026.pem): `users apply` keeps every password, says each file's
    settings are rewritten, and every file names the new CA."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    for name in ("ca-2025.pem", "ca-2026.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    _apply(_Admin(tmp_path / "ca-2025.pem"), keys)
    held = dict(cluster.held)
    (tmp_path / "ca-2025.pem").unlink()
    plan = _apply(_Admin(tmp_path / "ca-2026.pem"), keys, dry_run=True)
    assert {login.action for login in plan} == {"kept"}
    logins = _apply(_Admin(tmp_path / "ca-2026.pem"), keys)
    assert {login.action for login in logins} == {"kept"} and cluster.held == held
    assert all(login.reason.startswith("its other settings are rewritten: ") and "ca file" in login.reason
               for login in logins)
    assert all(credentials.party_connection(keys, p).ca_file == tmp_path / "ca-2026.pem" for p in PARTIES)


@pytest.mark.parametrize("spoil", ["exposed", "another login", "not ours", "sent in clear", "host unchecked"])
def test_a_file_that_is_no_sound_secret_is_never_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      spoil: str) -> None:
    """A file others may read, one naming another login, one whose login line is not as Puente writes it: the party
    gets a new password, and its line says why."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    _apply(FakeAdmin(), keys)
    held = dict(cluster.held)
    path = _file(keys, "partner-COL")
    text = path.read_text(encoding="utf-8")
    if spoil == "exposed":
        path.chmod(0o640)
    elif spoil == "another login":
        path.write_text(text.replace('username="partner-COL"', 'username="partner-USA"'), encoding="utf-8")
    elif spoil == "sent in clear":  # its password may have gone to whoever answered, and the file no longer reads
        path.write_text(text.replace("SASL_SSL", "SASL_PLAINTEXT").replace("SCRAM-SHA-512", "PLAIN")
                        .replace("kafka:9093", "kafka.example:9092") + "ssl.truststore.location=/no\n",
                        encoding="utf-8")
    elif spoil == "host unchecked":
        path.write_text(text + "ssl.endpoint.identification.algorithm=\nssl.truststore.location=/no\n",
                        encoding="utf-8")
    else:  # a file that does not read, whose login line Puente did not write
        path.write_text(text.replace("required username", "required  username") + "ssl.truststore.location=/no\n",
                        encoding="utf-8")
    [login] = [login for login in _apply(FakeAdmin(), keys) if login.principal == "partner-COL"]
    assert login.action == "rotated" and login.lost
    assert login.reason.startswith("its client.properties cannot be used: ")
    assert {p for p in held if cluster.held[p] != held[p]} == {"partner-COL"}


def test_files_present_but_unusable_count_as_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Most files of a kind made unusable at once (chmod 644 on a tree): a plain `users apply` would give them all new
    passwords, so it is refused as a missing logins folder is, naming why one cannot be used; --rotate goes on."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    _apply(FakeAdmin(), keys)
    held = dict(cluster.held)
    for party in PARTIES:
        _file(keys, party).chmod(0o644)
    with pytest.raises(ConfigError, match=r"refusing to give 6 of the 6 parties .*their client.properties is "
                                          r"missing or cannot be used \(.*/keys/broker/client.properties: .*chmod "
                                          r"600 on it\); is the logins folder the wrong one"):
        _apply(FakeAdmin(), keys)
    assert cluster.held == held
    assert {login.action for login in _apply(FakeAdmin(), keys, rotate=True)} == {"rotated"}


def test_users_apply_says_why_each_password_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`puente users apply` and `users plan` put the reason on each rotated party's line."""
    keys = tmp_path / "keys"
    stub_users_command(monkeypatch, keys, PARTIES)

    def users(*argv: str) -> list[str]:
        args: argparse.Namespace = build_parser(["users", *argv]).parse_args(["users", *argv])
        args.func(args)
        return capsys.readouterr().out.splitlines()

    users("apply")
    os.unlink(_file(keys, "partner-USA"))
    for verb in ("plan", "apply"):
        [line] = [line for line in users(verb) if line.startswith("partner-USA ")]
        assert line.endswith("client.properties  (its client.properties is missing)")
    assert all(line.endswith("client.properties  (a new password asked for (--rotate))")
               for line in users("apply", "--rotate") if line.startswith(("broker ", "agency-")))


def test_a_file_that_sent_its_password_to_an_unchecked_server_is_never_kept(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A file naming a CA of the deployment's own that is usable, but with the server's name check off: any
    certificate that CA signed (another party's client certificate too) could have posed as Kafka and relayed the
    login. The file no longer reads, and the party gets a new password, its line saying why."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    _apply(_Admin(ca), keys)
    held = dict(cluster.held)
    path = _file(keys, "partner-COL")
    path.write_text(path.read_text(encoding="utf-8") + "ssl.endpoint.identification.algorithm=\n", encoding="utf-8")
    [login] = [login for login in _apply(_Admin(ca), keys) if login.principal == "partner-COL"]
    assert login.action == "rotated" and "ssl.endpoint.identification.algorithm is off" in login.reason
    assert {p for p in held if cluster.held[p] != held[p]} == {"partner-COL"}


@pytest.mark.parametrize("blank", [" ", "\t", "  \t "])
def test_a_stray_blank_at_a_lines_end_keeps_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        blank: str) -> None:
    """A space or tab after a value, as an editor leaves it: Kafka's client trims it and logs in as before. The
    reader refused such a line (1ff16a6), and `users apply` took the file as unusable and gave its party a new
    password no one asked for, cutting off whoever held the file."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    _apply(FakeAdmin(), keys)
    held = dict(cluster.held)
    path = _file(keys, "partner-COL")
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(f"{line}{blank}" for line in lines) + "\n", encoding="utf-8")
    assert credentials.party_connection(keys, "partner-COL").password is not None
    [login] = [login for login in _apply(FakeAdmin(), keys) if login.principal == "partner-COL"]
    assert login.action == "kept" and cluster.held == held


@pytest.mark.parametrize(("line", "number"), [("ssl.truststore.typo=PEM", 6), ("client.id=col\\\\sub", 6),
                                              ("ssl.truststore.type=P\u00c9M", 6)])
def test_a_sound_file_whose_text_does_not_read_stops_the_run_naming_the_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, number: int) -> None:
    """A sound secret file of the party's (0600, its login) with one line the reader refuses, away from the login:
    which password it holds cannot be told, and nothing says anyone else knows it. `users apply` and `users plan`
    are refused in one line naming the file and line, nothing changed; a new password was given before."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    _apply(FakeAdmin(), keys)
    held = dict(cluster.held)
    path = _file(keys, "partner-COL")
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    for dry_run in (True, False):
        with pytest.raises(ConfigError) as caught:
            _apply(FakeAdmin(), keys, dry_run=dry_run)
        message = str(caught.value)
        assert message.startswith(f"cannot tell whether partner-COL keeps its password: {path}:{number}: ")
        assert message.endswith("Nothing was changed") and "\n" not in message and "col\\" not in message
    assert cluster.held == held


def test_a_pending_file_whose_text_does_not_read_is_named_with_its_own_remedy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pending client configuration (a run stopped before Kafka took its password) whose text does not read stops
    the run as client.properties does, but removing it gives no new password: the one in client.properties is set
    again, and the message says so, not "to give it a new password"."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    _apply(FakeAdmin(), keys)
    held = dict(cluster.held)
    path = _file(keys, "partner-COL")
    pending = path.with_name(PENDING_CLIENT_CONFIG)
    pending.write_text(path.read_text(encoding="utf-8") + "ssl.truststore.typo=PEM\n", encoding="utf-8")
    pending.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        _apply(FakeAdmin(), keys)
    message = str(caught.value)
    assert message.startswith(f"cannot tell whether partner-COL keeps its password: {pending}:")
    assert "or remove it: the password in client.properties is set again. Nothing was changed" in message
    assert cluster.held == held
