"""`puente users apply` and `users plan` with the cluster's SCRAM logins standing in for Kafka: a former party's
login is deleted only with `--prune`; without it it is listed, kept, and the way to delete it is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import puente.commands.access as access
from broker.credentials import PartyLogin
from puente.cli import build_parser
from puente.settings import PuenteSettings

FORMER = "partner-OLD"


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The command's settings and Kafka replaced: the cluster holds the logins in ``held["users"]`` (a former
    partner's among them); ``apply_users`` answers as the real one does and records each call."""
    cfg = PuenteSettings(topic_prefix="puente", keys=tmp_path)
    held: dict[str, Any] = {"users": {FORMER}, "calls": []}

    async def apply_users(admin: Any, keys: Path, principals: list[str], *, rotate: bool = False,
                          prune: bool = True, dry_run: bool = False) -> list[PartyLogin]:
        held["calls"].append({"prune": prune, "dry_run": dry_run})
        out = [PartyLogin(p, keys / p, "kept" if p in held["users"] else "created") for p in principals]
        gone = sorted(u for u in held["users"] if u not in principals) if prune else []
        out += [PartyLogin(u, keys / u, "removed") for u in gone]
        if not dry_run:
            held["users"] = (held["users"] - set(gone)) | set(principals)
        return out

    monkeypatch.setattr(access, "settings", lambda args: cfg)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(access, "Admin", lambda conn: None)
    monkeypatch.setattr(access, "apply_users", apply_users)
    return held


def _puente(*argv: str) -> int:
    args = build_parser(list(argv)).parse_args(list(argv))
    return int(args.func(args))


def test_apply_without_prune_lists_a_former_partys_login_and_keeps_it(cluster: dict[str, Any],
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A policy folder named by mistake must not delete partners' logins: without --prune the former login is
    listed, left on the cluster, and the command says how to delete it (exit 0)."""
    assert _puente("users", "apply") == 0
    assert FORMER in cluster["users"]
    assert all(not call["prune"] for call in cluster["calls"] if not call["dry_run"])
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if FORMER in line] == [[FORMER, "former"]]
    assert not any(" removed " in line for line in out)
    assert out[-1] == ("1 former party not named any more, left in place: each login still authenticates "
                       "(`puente acls apply` takes its rights); `puente users apply --prune` deletes them")


def test_apply_with_prune_deletes_a_former_partys_login(cluster: dict[str, Any],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--prune deletes the login of every party no longer named, and says so per login."""
    assert _puente("users", "apply", "--prune") == 0
    assert FORMER not in cluster["users"]
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines() if FORMER in line] == [[FORMER, "removed"]]
    assert "former" not in out


def test_apply_with_nothing_to_prune_says_nothing_of_it(cluster: dict[str, Any],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """With no former party's login on the cluster, apply ends as before: no line about pruning."""
    cluster["users"] = set()
    assert _puente("users", "apply") == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("logins; hand each client.properties to its party only")


def test_plan_still_shows_the_removal_and_changes_nothing(cluster: dict[str, Any],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`users plan` names the former login as one to remove (exit 1) and points at --prune."""
    assert _puente("users", "plan") == 1
    assert FORMER in cluster["users"] and all(call["dry_run"] for call in cluster["calls"])
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if FORMER in line] == [[FORMER, "remove"]]
    assert out[-1].endswith("nothing was changed (`puente users apply` does it; `--prune` for the ones to remove)")
