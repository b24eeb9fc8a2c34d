"""The local Kafka's and the compose deployment's secret files are trusted only as found by the checks of every
secret file: a passwords file others could have planted or read is never adopted, an open folder is refused,
and a link planted where a secret file goes is replaced, never followed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from puente.dev import compose, pki
from puente.dev.localkafka import LocalKafka
from puente.dev.localkafka._cluster import kept_cluster_id, kept_passwords
from puente.dev.localkafka._nodeconf import FIRST_LOGINS
from puente.errors import ConfigError

PLANTED = "planted-by-other-user"
T = TypeVar("T")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _plant(folder: Path, *, folder_mode: int, file_mode: int) -> None:
    folder.mkdir(parents=True)
    folder.chmod(folder_mode)
    path = folder / "secrets.json"
    path.write_text(json.dumps({name: PLANTED for name in FIRST_LOGINS}))
    path.chmod(file_mode)


def _stolen(tmp_path: Path) -> Path:
    target = tmp_path / "stolen"
    target.write_text("theirs\n")
    return target


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The local runner without Kafka: the storage tool 'runs' and succeeds."""
    monkeypatch.setattr("puente.dev.localkafka._cluster.fetch_kafka", lambda version: tmp_path / "classpath")
    monkeypatch.setattr("puente.dev.localkafka._cluster.subprocess.run",
                        lambda cmd, **_: subprocess.CompletedProcess(cmd, 0, "", ""))


def test_compose_refuses_an_open_deploy_folder_before_writing(tmp_path: Path) -> None:
    """The reviewer's probe: a 0777 deploy folder holding a planted secrets.json and admin/admin.properties
    linked to a file elsewhere. compose-files refuses in one line naming the folder and chmod 700, adopts no
    password, and leaves the link's target as it was."""
    deploy = tmp_path / "deploy"
    _plant(deploy, folder_mode=0o777, file_mode=0o644)
    (deploy / "admin").mkdir()
    target = _stolen(tmp_path)
    (deploy / "admin" / "admin.properties").symlink_to(target)
    with pytest.raises(ConfigError) as caught:
        compose.write(deploy, nodes=1)
    message = str(caught.value)
    assert "\n" not in message and str(deploy) in message and "chmod 700" in message
    assert target.read_text() == "theirs\n" and _mode(deploy) == 0o777
    assert not (deploy / "kafka-1").exists()


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o640], ids=oct)
def test_compose_never_adopts_a_passwords_file_others_may_read(tmp_path: Path, mode: int) -> None:
    """A secrets.json others may read or write, in a private folder, is refused, naming it and chmod 600 and
    never a password: it is not made the admin's."""
    deploy = tmp_path / "deploy"
    _plant(deploy, folder_mode=0o700, file_mode=mode)
    with pytest.raises(ConfigError) as caught:
        compose.write(deploy, nodes=1)
    message = str(caught.value)
    assert "secrets.json" in message and "chmod 600" in message and PLANTED not in message
    assert not (deploy / "admin" / "admin.properties").exists()


def test_compose_replaces_a_link_at_a_secret_file_instead_of_writing_through_it(tmp_path: Path) -> None:
    """In a private deploy folder, a link planted at admin/admin.properties (or a node's server.properties) is
    replaced by a 0600 file; where it led is left as it was."""
    deploy = tmp_path / "deploy"
    compose.write(deploy, nodes=1)
    target = _stolen(tmp_path)
    for secret in (deploy / "admin" / "admin.properties", deploy / "kafka-1" / "config" / "server.properties",
                   deploy / "kafka-1" / "config" / "node.pem"):
        secret.unlink()
        secret.symlink_to(target)
    compose.write(deploy, nodes=1)
    for secret in (deploy / "admin" / "admin.properties", deploy / "kafka-1" / "config" / "server.properties",
                   deploy / "kafka-1" / "config" / "node.pem"):
        assert not secret.is_symlink() and _mode(secret) == 0o600
    assert target.read_text() == "theirs\n"


def test_compose_files_pass_their_own_checks_under_the_usual_umask(tmp_path: Path) -> None:
    """Written under umask 022 from nothing, then written again, the deployment's folders and secret files pass
    the checks they are read with: the second run keeps the passwords."""
    old = os.umask(0o022)
    try:
        compose.write(tmp_path / "deploy", nodes=1)
        first = json.loads((tmp_path / "deploy" / "secrets.json").read_text())
        compose.write(tmp_path / "deploy", nodes=1)
    finally:
        os.umask(old)
    assert json.loads((tmp_path / "deploy" / "secrets.json").read_text()) == first
    assert _mode(tmp_path / "deploy") == _mode(tmp_path / "deploy" / "admin") == 0o700


def test_the_local_kafka_refuses_a_planted_passwords_file(tmp_path: Path, no_java: None) -> None:
    """`puente kafka up` never takes the admin's password from a secrets.json others may read, nor from one in a
    folder others may write: each is refused in one line with the chmod to run."""
    local = LocalKafka("single", root=tmp_path)
    _plant(local.folder, folder_mode=0o700, file_mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600") as caught:
        local._prepare()
    assert PLANTED not in str(caught.value) and not local.admin_config.exists()
    (local.folder / "secrets.json").chmod(0o600)
    local.folder.chmod(0o777)
    with pytest.raises(ConfigError, match="chmod 700"):
        local._prepare()
    assert not local.admin_config.exists()


def test_the_local_kafka_replaces_a_link_at_its_admin_login(tmp_path: Path, no_java: None) -> None:
    """A link planted at the local Kafka's admin.properties or a node's server.properties is replaced by a 0600
    file of its own: the file it led to is not truncated. What `_prepare` makes passes its own checks."""
    local = LocalKafka("single", root=tmp_path)
    local._prepare()
    first = json.loads((local.folder / "secrets.json").read_text())
    target = _stolen(tmp_path)
    for secret in (local.admin_config, local.nodes[0].folder / "server.properties"):
        secret.unlink()
        secret.symlink_to(target)
    local._prepare()
    for secret in (local.admin_config, local.nodes[0].folder / "server.properties"):
        assert not secret.is_symlink() and _mode(secret) == 0o600
    assert target.read_text() == "theirs\n"
    assert json.loads((local.folder / "secrets.json").read_text()) == first
    assert local.admin_connection().username == "admin"


def test_compose_copies_a_long_ca_bundle_whole(tmp_path: Path) -> None:
    """A ministry's CA bundle can run past 64 KiB: each node gets it whole, never cut short without a word; one
    too large to be a certificate file is refused."""
    compose.write(tmp_path / "deploy", nodes=1)
    ca = tmp_path / "deploy" / "tls" / "ca.pem"
    bundle = ca.read_bytes() * (100_000 // len(ca.read_bytes()) + 1)
    ca.write_bytes(bundle)
    compose.write(tmp_path / "deploy", nodes=1)
    assert (tmp_path / "deploy" / "kafka-1" / "config" / "ca.pem").read_bytes() == bundle
    ca.write_bytes(b"x" * (5 * 2**20))
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        compose.write(tmp_path / "deploy", nodes=1)


def test_the_trial_ca_key_is_read_as_a_secret_and_written_past_a_link(tmp_path: Path) -> None:
    """The CA's key is read only from a private regular file (a link or a file others may read is refused), and
    a certificate is written in place of a link planted at its name, never through it."""
    folder = tmp_path / "tls"
    pki.ensure_ca(folder)
    key = folder / "ca-key.pem"
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"ca-key\.pem"):
        pki.issue(folder, "node1", ["127.0.0.1"], common="kafka-node")
    key.chmod(0o600)
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched")
    (folder / "node1.pem").symlink_to(target)
    pki.issue(folder, "node1", ["127.0.0.1"], common="kafka-node")
    assert target.read_text() == "untouched" and not (folder / "node1.pem").is_symlink()


def _at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """``work(i)`` for each i in ``count`` threads released together, as runs started at once would be."""
    start = threading.Barrier(count)

    def run(i: int) -> T:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_runs_making_the_passwords_at_once_all_use_the_ones_kept(tmp_path: Path) -> None:
    """Two `puente kafka up` or `compose` runs on a fresh folder: every one returns the passwords the file keeps, so
    no client config holds a password another run's file replaced."""
    folder = tmp_path / "kafka"
    folder.mkdir(mode=0o700)
    for round_ in range(5):
        path = folder / f"secrets-{round_}.json"
        got = _at_once(6, partial(lambda path, _: kept_passwords(path, "the passwords", [], ""), path))
        kept = json.loads(path.read_text())
        assert all(each == kept for each in got)


def test_runs_making_the_cluster_id_at_once_all_use_the_one_kept(tmp_path: Path) -> None:
    for round_ in range(5):
        path = tmp_path / f"cluster-{round_}.id"
        got = _at_once(6, partial(lambda path, _: kept_cluster_id(path), path))
        assert set(got) == {path.read_text().strip()}


def test_certificates_issued_at_once_on_a_fresh_folder_all_chain_to_the_ca_kept(tmp_path: Path) -> None:
    """Each run making the CA wrote its own key and certificate: a node certificate could be signed by one run's key
    under the other's CA certificate, and TLS between nodes then fails. The pair is made under a lock."""
    for round_ in range(3):
        folder = tmp_path / f"tls-{round_}"
        issued = _at_once(4, partial(lambda at, i: pki.issue(at, f"node{i}", ["127.0.0.1"], common="kafka-node"),
                                     folder))
        ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
        ca_key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
        assert ca_key.public_key().public_numbers() == ca.public_key().public_numbers()  # type: ignore[union-attr]
        for pem in issued:
            cert = x509.load_pem_x509_certificates(pem.read_bytes())[0]
            cert.verify_directly_issued_by(ca)


def _login_files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*.properties")) if p.name != "meta.properties"}


def test_compose_refuses_new_passwords_once_a_node_is_formatted(tmp_path: Path) -> None:
    """The reviewer's probe: secrets.json removed from a deployment whose node storage holds meta.properties.
    compose-files refuses in one line naming the file and how to recover, and rewrites no login file with
    passwords Kafka does not hold."""
    deploy = tmp_path / "deploy"
    compose.write(deploy, nodes=3)
    (deploy / "kafka-2" / "data" / "meta.properties").write_text("version=1\n")
    before = _login_files(deploy)
    (deploy / "secrets.json").unlink()
    with pytest.raises(ConfigError) as caught:
        compose.write(deploy, nodes=3)
    message = str(caught.value)
    assert "\n" not in message and str(deploy / "secrets.json") in message and "backup" in message
    assert str(deploy / "kafka-2" / "data" / "meta.properties") in message
    assert _login_files(deploy) == before and not (deploy / "secrets.json").exists()


def test_compose_refuses_a_damaged_passwords_file_once_formatted_without_advising_new_ones(tmp_path: Path) -> None:
    """Once a node is formatted, a secrets.json of another shape is refused with the advice to restore it, not to
    remove it for new ones (which would lock the admin out)."""
    deploy = tmp_path / "deploy"
    compose.write(deploy, nodes=1)
    (deploy / "kafka-1" / "data" / "meta.properties").write_text("version=1\n")
    before = _login_files(deploy)
    (deploy / "secrets.json").write_text(json.dumps({"kafka-node": "only-one"}))  # no admin's password
    with pytest.raises(ConfigError, match="backup") as caught:
        compose.write(deploy, nodes=1)
    assert "run again for new ones" not in str(caught.value) and "only-one" not in str(caught.value)
    assert _login_files(deploy) == before


def test_compose_makes_new_passwords_while_no_node_is_formatted(tmp_path: Path) -> None:
    """Before any node's first start, a removed secrets.json is simply made again."""
    deploy = tmp_path / "deploy"
    compose.write(deploy, nodes=1)
    first = json.loads((deploy / "secrets.json").read_text())
    (deploy / "secrets.json").unlink()
    compose.write(deploy, nodes=1)
    assert json.loads((deploy / "secrets.json").read_text()) != first


def test_the_local_kafka_refuses_new_passwords_once_formatted(tmp_path: Path, no_java: None) -> None:
    """`puente kafka up` on a formatted local Kafka whose secrets.json is gone refuses in one line naming the file
    and `puente kafka wipe`; admin.properties and server.properties keep the logins Kafka holds."""
    local = LocalKafka("cluster", root=tmp_path)
    local._prepare()
    (local.nodes[0].folder / "data").mkdir(exist_ok=True)
    (local.nodes[0].folder / "data" / "meta.properties").write_text("version=1\n")
    before = _login_files(local.folder)
    (local.folder / "secrets.json").unlink()
    with pytest.raises(ConfigError) as caught:
        local._prepare()
    message = str(caught.value)
    assert "\n" not in message and str(local.folder / "secrets.json") in message
    assert "puente kafka wipe --shape cluster" in message
    assert _login_files(local.folder) == before
