"""`puente users apply` names, in one line after its listing, every party whose password it changed: a running
party read its password once, at start, and Kafka's re-authentication cuts it off later, so each must be restarted
or handed its new client.properties. Kafka is a stub recording the passwords it holds (``ScramCluster``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from scram_cluster import stub_users_command

import broker.credentials as credentials
from puente.cli import build_parser

PARTIES = ["broker", "auditor", "agency-SENAN", "partner-COL", "partner-CRI", "partner-USA"]


class _Users:
    """`puente users VERB` against the stubbed cluster, naming ``PARTIES``, its logins under ``keys``."""

    def __init__(self, keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.keys, self._capsys = keys, capsys

    def __call__(self, *argv: str) -> list[str]:
        """The lines it prints."""
        args: argparse.Namespace = build_parser(["users", *argv]).parse_args(["users", *argv])
        assert args.func(args) in (0, 1)
        return self._capsys.readouterr().out.splitlines()


@pytest.fixture
def users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> _Users:
    """`puente users` with Kafka and the settings stubbed."""
    keys = tmp_path / "keys"
    stub_users_command(monkeypatch, keys, PARTIES)
    return _Users(keys, capsys)


def test_a_rotated_party_is_named_to_restart(users: _Users) -> None:
    """One party's file gone: after the listing, one line names it alone, to restart or hand its new file."""
    users("apply")
    os.unlink(credentials.party_folder(users.keys, "partner-CRI") / "client.properties")
    out = users("apply")
    [line] = [line for line in out if line.startswith("new password")]
    assert line.startswith("new password for partner-CRI: restart it with its new client.properties, or hand it ")
    assert out.index(line) == out.index("6 logins; hand each client.properties to its party only") + 1


def test_every_rotated_party_is_named_and_none_when_nothing_changed(users: _Users) -> None:
    """--rotate names every party in one line; a run that keeps every password, and a first run, print none."""
    assert not any(line.startswith("new password") for line in users("apply"))  # created: nothing ran with one
    [line] = [line for line in users("apply", "--rotate") if line.startswith("new password")]
    assert line.startswith(f"new passwords for {', '.join(PARTIES)}: restart each ")
    assert not any(line.startswith("new password") for line in users("apply"))
