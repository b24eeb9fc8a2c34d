"""`users apply` never changes a password on Kafka unless the party's new client configuration can be written: every
folder is made and every new file written, under a hidden name, before Kafka is asked, and put in place once Kafka
took the password. A run stopped between the two is completed by the next, so no party stays locked out. Kafka is a
stub recording the passwords it holds; the command-line tests point at a port nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scram_cluster import ScramCluster, apply

import broker.credentials as credentials
from broker.kafka import connection_from_properties
from broker.kafka.acls import ScramChangeFailed
from puente.errors import ConfigError, KafkaAccessError, KafkaUnavailableError

ROOT = Path(__file__).resolve().parents[3]
PARTIES = ["broker", "partner-COL"]


def _apply(keys: Path, **options: Any) -> list[credentials.PartyLogin]:
    return apply(keys, PARTIES, former="leave", **options)


def _file_password(keys: Path, principal: str) -> str | None:
    path = credentials.party_folder(keys, principal) / "client.properties"
    if not path.exists():
        return None
    secret = connection_from_properties(path).password
    return None if secret is None else secret.get_secret_value()


def _pending(keys: Path) -> list[Path]:
    return sorted(keys.rglob(".client.properties.pending*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a folder no one can make folders in")
def test_a_folder_that_cannot_be_made_is_refused_before_any_kafka_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A party folder that cannot be made (here under /proc) stops the run with one line naming it before Kafka is
    asked anything: no party's password changes."""
    cluster = ScramCluster(monkeypatch, {"broker": "old", "partner-COL": "old"})
    with pytest.raises(ConfigError, match=r"cannot make /proc/self/.* nothing was changed on Kafka"):
        _apply(Path("/proc/self/puente-logins"))
    assert cluster.calls == [] and cluster.held == {"broker": "old", "partner-COL": "old"}


def test_kafka_refusing_one_users_change_keeps_its_old_file_and_puts_the_others_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When Kafka refuses one user's new password, that party keeps its old file (which still logs in) and no new
    file of it is left; every other party's new file, whose password Kafka took, is in place."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    _apply(keys)
    before = dict(cluster.held)
    cluster.fail = ScramChangeFailed("setting SCRAM credentials failed for partner-COL: refused",
                                     frozenset({"partner-COL"}), frozenset())
    cluster.taken = {"broker"}
    with pytest.raises(ScramChangeFailed):
        _apply(keys, rotate=True)
    assert cluster.held["partner-COL"] == before["partner-COL"] == _file_password(keys, "partner-COL")
    assert cluster.held["broker"] != before["broker"] and cluster.held["broker"] == _file_password(keys, "broker")
    assert _pending(keys) == []


def test_the_admin_refused_leaves_every_old_file_and_nothing_new(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka refusing the admin's rights changes no password: every old file stays and no new file is left."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    _apply(keys)
    files = {p: _file_password(keys, p) for p in PARTIES}
    cluster.fail, cluster.taken = KafkaAccessError("not allowed"), set()
    with pytest.raises(KafkaAccessError):
        _apply(keys, rotate=True)
    assert {p: _file_password(keys, p) for p in PARTIES} == files == cluster.held
    assert _pending(keys) == []


@pytest.mark.parametrize("stop", [KafkaUnavailableError("no answer"), KeyboardInterrupt()], ids=["no-answer", "ctrl-c"])
def test_a_run_stopped_after_kafka_took_the_passwords_is_completed_by_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException) -> None:
    """A rotation stopped once Kafka took the new passwords (no answer, Ctrl-C) leaves the new files beside the old,
    and says to run again; the next `users apply` (without --rotate) takes them up: the cluster ends holding the
    rotated passwords and every party's file has the password the cluster holds. The rotation is never undone."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    _apply(keys)
    old = dict(cluster.held)
    cluster.fail = stop
    with pytest.raises(type(stop)) as raised:
        _apply(keys, rotate=True)
    rotated = dict(cluster.held)
    assert rotated["broker"] != old["broker"] and rotated["partner-COL"] != old["partner-COL"]
    assert len(_pending(keys)) == 2
    if isinstance(stop, KafkaUnavailableError):
        assert "run `puente users apply` again" in str(raised.value) and "\n" not in str(raised.value)
    assert {login.action for login in _apply(keys, dry_run=True)} == {"rotated"}  # a plan shows it unfinished
    logins = _apply(keys)
    assert cluster.held == rotated
    assert {p: _file_password(keys, p) for p in PARTIES} == rotated
    assert {login.action for login in logins} == {"rotated"} and _pending(keys) == []
    assert {login.action for login in _apply(keys)} == {"kept"}  # and after that, nothing changes


def test_a_plan_makes_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`users plan` (dry_run) makes no folder and writes no file."""
    ScramCluster(monkeypatch)
    apply(tmp_path / "keys", PARTIES, dry_run=True)
    assert not (tmp_path / "keys").exists()


def _puente(tmp_path: Path, logins: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "plain.properties"
    config.write_text("bootstrap.servers=127.0.0.1:1\nsecurity.protocol=PLAINTEXT\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("PUENTE_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", PUENTE_CLIENT_CONFIG=str(config),
               PUENTE_KAFKA_TIMEOUT_S="2", PUENTE_KEYS=str(tmp_path / "keys"), PUENTE_LOGINS=logins)
    return subprocess.run([sys.executable, "-m", "puente.cli", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False, timeout=60)


@pytest.mark.parametrize("verb", ["apply", "plan"])
def test_a_named_logins_folder_that_is_not_there_is_refused_first(tmp_path: Path, verb: str) -> None:
    """`users apply` (and `users plan`) with PUENTE_LOGINS naming a folder that does not exist exits 3 with one
    line naming it, before Kafka is reached and without making any folder: a mistyped path is not made."""
    logins = tmp_path / "typo" / "deep" / "logins"
    done = _puente(tmp_path, str(logins), "users", verb)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [f"puente: error: PUENTE_LOGINS {logins} does not exist: make it first "
                                        "(mkdir -m 700), or name the folder the logins are in"]
    assert not (tmp_path / "typo").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a folder no one can make folders in")
def test_users_apply_refuses_a_party_folder_it_cannot_make_before_kafka(tmp_path: Path) -> None:
    """`users apply` with PUENTE_LOGINS a folder in which no folder can be made exits 3 at once with one line
    naming the folder, before it reaches Kafka (which here would answer nothing: status 4)."""
    done = _puente(tmp_path, "/proc/self", "users", "apply")
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("puente: error: cannot make /proc/self/") and "nothing was changed on Kafka" in line
