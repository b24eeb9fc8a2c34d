"""`puente users apply` and `users plan` with the cluster's SCRAM logins standing in for Kafka: a former party's
login is deleted only with `--prune`; without it it is disabled (a password no one holds), said so per login, and
the way to delete it is named. A plan counts a former login as a change while it is still to disable, or with
`--prune`, so a plan after `users apply` is clean."""

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
    partner's among them), and ``held["disabled"]`` those disabled; ``apply_users`` answers as the real one does
    and records each call."""
    cfg = PuenteSettings(topic_prefix="puente", keys=tmp_path)
    held: dict[str, Any] = {"users": {FORMER}, "disabled": set(), "calls": []}

    async def apply_users(admin: Any, keys: Path, principals: list[str], *, rotate: bool = False,
                          former: str = "delete", dry_run: bool = False,
                          allow_many: bool = False) -> list[PartyLogin]:
        held["calls"].append({"former": former, "dry_run": dry_run})
        out = [PartyLogin(p, keys / p, "kept" if p in held["users"] else "created") for p in principals]
        gone = sorted(u for u in held["users"] if u not in principals) if former != "leave" else []
        out += [PartyLogin(u, keys / u, "removed" if former == "delete" else
                           "former" if u in held["disabled"] else "disabled") for u in gone]
        if not dry_run:
            held["users"] = (held["users"] - set(gone)) | set(principals) if former == "delete" else \
                held["users"] | set(principals)
            held["disabled"] = set() if former == "delete" else held["disabled"] | set(gone)
        return out

    monkeypatch.setattr(access, "settings", lambda args: cfg)
    monkeypatch.setattr(access, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(access, "Admin", lambda conn: None)
    monkeypatch.setattr(access, "apply_users", apply_users)
    return held


def _puente(*argv: str) -> int:
    args = build_parser(list(argv)).parse_args(list(argv))
    return int(args.func(args))


def test_apply_without_prune_disables_a_former_partys_login(cluster: dict[str, Any],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Without --prune a former party's login is not deleted but disabled, said so on its line, and the command
    says what that means and how to delete it (exit 0); run again, the login is listed as former."""
    assert _puente("users", "apply") == 0
    assert FORMER in cluster["users"] and cluster["disabled"] == {FORMER}
    assert [call["former"] for call in cluster["calls"]] == ["disable"]
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if FORMER in line] == [[FORMER, "disabled"]]
    assert not any(" removed " in line for line in out)
    assert out[-1] == ("1 former party not named any more: its login has a new password no one holds, so it no "
                       "longer authenticates, and its client.properties is moved aside (.client.properties.former); "
                       "named again, a party gets a new password; `puente users apply --prune` deletes it")
    assert _puente("users", "apply") == 0
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines() if FORMER in line] == [
        [FORMER, "former"]]


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


def test_plan_without_prune_lists_a_former_login_without_counting_it(cluster: dict[str, Any],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """After `users apply` without --prune, `users plan` is clean (exit 0): the former login `apply` disabled is
    listed as former, not as a change, and the footer says --prune would remove it."""
    assert _puente("users", "apply") == 0
    capsys.readouterr()
    cluster["calls"].clear()
    assert _puente("users", "plan") == 0
    assert FORMER in cluster["users"] and all(call["dry_run"] for call in cluster["calls"])
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if FORMER in line and "former" in line.split()[:2]] == [
        [FORMER, "former"]]
    assert not any(line.split()[1:2] == ["remove"] for line in out if line.split())
    assert out[-2].endswith(" 0 to change; nothing was changed (`puente users apply` does it)")
    assert out[-1] == ("1 former party not named any more: `puente users apply` disables its login (`former`: "
                       "disabled already, no change), `--prune` would remove it (`puente users plan --prune` counts "
                       "it as a change)")


def test_plan_without_prune_still_counts_other_changes(cluster: dict[str, Any],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A login to create is a change with or without --prune, and so is a former login not disabled yet: exit 1."""
    assert _puente("users", "plan") == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if FORMER in line.split()[:1]] == [[FORMER, "disable"]]
    created = sum(1 for line in out if line.split()[1:2] == ["create"])
    assert created and f" {created + 1} to change;" in out[-2]


def test_plan_with_nothing_former_says_nothing_of_it(cluster: dict[str, Any],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """No former login: the plan ends on its summary, with no line about --prune."""
    cluster["users"] = set()
    assert _puente("users", "apply") == 0
    capsys.readouterr()
    assert _puente("users", "plan") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith(" 0 to change; nothing was changed (`puente users apply` does it)")
    assert not any(line.split()[1:2] == ["former"] for line in out)  # the tmp_path in each line names "former"


def test_plan_with_prune_shows_the_removal_and_changes_nothing(cluster: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`users plan --prune` names the former login as one to remove and counts it (exit 1), changing nothing;
    after `users apply --prune` it is clean."""
    assert _puente("users", "apply") == 0
    capsys.readouterr()
    assert _puente("users", "plan", "--prune") == 1
    assert FORMER in cluster["users"] and all(call["dry_run"] for call in cluster["calls"][-1:])
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out if FORMER in line] == [[FORMER, "remove"]]
    assert not any(line.split()[1:2] == ["former"] for line in out)
    assert out[-1].endswith(" 1 to change; nothing was changed (`puente users apply --prune` does it)")
    assert _puente("users", "apply", "--prune") == 0
    capsys.readouterr()
    assert _puente("users", "plan", "--prune") == 0
    assert not any(FORMER in line for line in capsys.readouterr().out.splitlines())


def test_a_former_user_name_from_the_cluster_reaches_the_terminal_escaped(cluster: dict[str, Any],
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A user name the cluster gives is printed with its control characters escaped, on one line."""
    hostile = "partner-X\x1b]0;owned\x07\nforged line"
    cluster["users"] = {hostile}
    for argv in (("users", "plan"), ("users", "plan", "--prune"), ("users", "apply")):
        assert _puente(*argv) in (0, 1)
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out
        assert not any(line.startswith("forged line") for line in out.splitlines())  # one line, not two
        assert "partner-X\\x1b]0;owned\\x07\\nforged line" in out
