"""A former party's login (an agency or partner no longer named) never keeps working, and a party named again never
gets back the password it had: `users apply` without --prune disables the login (a new random password no file
holds) and moves its client.properties aside, where no password is ever taken from; --prune deletes it. Kafka is a
stub recording the passwords it holds (``ScramCluster``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from scram_cluster import FakeAdmin, ScramCluster, apply

import broker.credentials as credentials
import puente.commands.access as access
from broker.kafka import connection_from_properties
from broker.kafka.acls import ScramChangeFailed
from puente.cli import build_parser
from puente.settings import PuenteSettings

CRI = "partner-CRI"
# The parties that stay: one partner of four ended on purpose needs no --allow-many (``credentials.mass_cut_off``).
STAYING = ["broker", "agency-SENAN", "partner-COL", "partner-USA", "partner-FEAN"]
KEPT = dict.fromkeys(STAYING, "kept")


def _file(keys: Path, principal: str, name: str = "client.properties") -> Path:
    return credentials.party_folder(keys, principal) / name


def _password(path: Path) -> str:
    secret = connection_from_properties(path).password
    assert secret is not None
    return secret.get_secret_value()


def _actions(logins: list[credentials.PartyLogin]) -> dict[str, str]:
    return {login.principal: login.action for login in logins}


def _users_apply(monkeypatch: pytest.MonkeyPatch, keys: Path, principals: list[str], *argv: str) -> None:
    """`puente users apply` naming ``principals``, against the stubbed cluster."""
    monkeypatch.setattr(access, "settings", lambda args: PuenteSettings(topic_prefix="puente", keys=keys))
    monkeypatch.setattr(access, "load_policy_set", lambda folder: None)
    monkeypatch.setattr(access, "parties", lambda policy, agencies: principals)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(access, "Admin", lambda conn: FakeAdmin())
    args: argparse.Namespace = build_parser(["users", "apply", *argv]).parse_args(["users", "apply", *argv])
    assert args.func(args) == 0


def test_users_apply_shuts_out_a_removed_partner_and_gives_it_a_new_password_when_added_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewer's probe, as compose's setup runs it (`users apply`, no --prune): a partner removed has its login
    disabled (the cluster no longer holds the password its file had) and, added again, gets a new password, never
    the one it had."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    _users_apply(monkeypatch, keys, [*STAYING, CRI])
    first = _password(_file(keys, CRI))
    assert cluster.held[CRI] == first
    capsys.readouterr()
    _users_apply(monkeypatch, keys, STAYING)
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines() if CRI in line] == [[CRI, "disabled"]]
    assert cluster.held[CRI] != first  # the old client.properties no longer logs in
    _users_apply(monkeypatch, keys, [*STAYING, CRI])
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines() if CRI in line] == [[CRI, "created"]]
    assert _password(_file(keys, CRI)) == cluster.held[CRI] != first


def test_disabling_moves_the_file_aside_removes_a_pending_one_and_is_done_again_each_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A former party's client.properties goes to .client.properties.former and a pending one is removed; its login
    gets a password neither holds. Run again, it is listed as former and given a new password no one holds again."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    apply(keys, [*STAYING, CRI])
    old = _password(_file(keys, CRI))
    pending = _file(keys, CRI, ".client.properties.pending")
    pending.write_bytes(_file(keys, CRI).read_bytes().replace(old.encode(), b"pending-one"))
    pending.chmod(0o600)
    assert _actions(apply(keys, STAYING, former="disable")) == {**KEPT, CRI: "disabled"}
    assert not _file(keys, CRI).exists() and not pending.exists()
    assert _password(_file(keys, CRI, ".client.properties.former")) == old
    disabled = cluster.held[CRI]
    assert disabled not in (old, "pending-one")
    assert _actions(apply(keys, STAYING, former="disable")) == {**KEPT, CRI: "former"}
    assert cluster.held[CRI] not in (disabled, old)


def test_a_party_named_again_after_being_disabled_is_created_and_its_old_file_goes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Named again, a disabled party gets a new password (`created`), never the one in the file moved aside, which
    is then removed; the run after keeps the new one."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    apply(keys, [*STAYING, CRI])
    old = _password(_file(keys, CRI))
    apply(keys, STAYING, former="disable")
    assert _actions(apply(keys, [*STAYING, CRI], former="disable", dry_run=True))[CRI] == "created"
    assert _actions(apply(keys, [*STAYING, CRI], former="disable"))[CRI] == "created"
    assert _password(_file(keys, CRI)) == cluster.held[CRI] != old
    assert not _file(keys, CRI, ".client.properties.former").exists()
    assert _actions(apply(keys, [*STAYING, CRI], former="disable"))[CRI] == "kept"


def test_a_former_partys_other_mechanism_is_deleted_when_its_login_is_disabled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SCRAM-SHA-256 credential beside Puente's would still log in once the other is disabled: it is deleted."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch, {CRI: "old"}, others={CRI: {"SCRAM_SHA_256"}})
    assert _actions(apply(keys, STAYING, former="disable"))[CRI] == "former"  # no file of it here
    assert cluster.deleted == {CRI: {"SCRAM_SHA_256"}} and cluster.held[CRI] != "old"


def test_a_plan_disables_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`users plan` names the login to disable, and changes nothing on the cluster or on disk."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    apply(keys, [*STAYING, CRI])
    held, text = dict(cluster.held), _file(keys, CRI).read_text()
    assert _actions(apply(keys, STAYING, former="disable", dry_run=True))[CRI] == "disabled"
    assert cluster.held == held and _file(keys, CRI).read_text() == text
    assert not _file(keys, CRI, ".client.properties.former").exists()


def test_leave_touches_no_former_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cluster several deployments share, a login one does not name is left as it is, and its file too."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    apply(keys, [*STAYING, CRI])
    held = dict(cluster.held)
    assert _actions(apply(keys, STAYING, former="leave")) == KEPT
    assert cluster.held == held and _file(keys, CRI).exists()


def test_prune_after_disabling_removes_every_file_of_the_login(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """--prune deletes a disabled login and the file moved aside with it; named again, the party is created."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    apply(keys, [*STAYING, CRI])
    apply(keys, STAYING, former="disable")
    assert _actions(apply(keys, STAYING, former="delete"))[CRI] == "removed"
    assert CRI not in cluster.held and list(credentials.party_folder(keys, CRI).iterdir()) == []
    assert _actions(apply(keys, [*STAYING, CRI], former="disable"))[CRI] == "created"


def test_a_refused_disable_still_leaves_no_password_to_take_up(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka refusing to disable a former login fails the run, saying so, before any other password changes; the
    file was moved aside first, so the party named again still gets a new password."""
    keys = tmp_path / "keys"
    cluster = ScramCluster(monkeypatch)
    apply(keys, [*STAYING, CRI])
    old = dict(cluster.held)
    cluster.fail = ScramChangeFailed(f"setting SCRAM credentials failed for {CRI}: refused", frozenset({CRI}),
                                     frozenset())
    cluster.taken = set()
    with pytest.raises(ScramChangeFailed, match=r"^disabling the logins of former parties: .*--prune"):
        apply(keys, STAYING, former="disable", rotate=True)
    assert cluster.held == old and sorted(keys.rglob(".client.properties.pending")) == []
    assert _actions(apply(keys, [*STAYING, CRI], former="disable"))[CRI] == "created"
    assert cluster.held[CRI] != old[CRI]
