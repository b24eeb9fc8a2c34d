"""Files handed over to their parties and removed from the logins folder: `users apply` must not rotate or cut off
a whole kind of party unseen. The guard against rotations no one asked for weighs the agencies and the partners
apart, as the guard against cutting logins off does (three partners of ten logins were rotated without a word).
Kafka is a stub recording the passwords it holds (``ScramCluster``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scram_cluster import ScramCluster, apply

import broker.credentials as credentials
from puente.errors import ConfigError

CORE = ["broker", "auditor", "console", "agency-SENAFRONT", "agency-SENAN", "agency-PN", "agency-SNM"]
PARTNERS = ["partner-COL", "partner-CRI", "partner-USA"]


def _hand_over(keys: Path) -> None:
    """Each partner's client.properties handed over and removed from the logins folder."""
    for partner in PARTNERS:
        os.unlink(credentials.party_folder(keys, partner) / "client.properties")


def test_every_partners_file_gone_is_refused_though_few_of_all_logins(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Three partners of ten logins with no file: a plain `users apply` (and its plan) is refused, naming the
    partners, and no password changes; --rotate asks for the new passwords."""
    cluster = ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    apply(keys, CORE + PARTNERS, former="disable")
    held = dict(cluster.held)
    _hand_over(keys)
    for dry_run in (True, False):
        with pytest.raises(ConfigError, match=r"^refusing to give 3 of the 3 partners whose logins Kafka holds a new "
                                              r"password \(partner-COL, partner-CRI, partner-USA\): their "
                                              r"client.properties is missing; .* once handed over"):
            apply(keys, CORE + PARTNERS, former="disable", dry_run=dry_run)
    assert cluster.held == held
    assert {login.principal for login in apply(keys, CORE + PARTNERS, former="disable", rotate=True)
            if login.action == "rotated"} == set(CORE + PARTNERS)


def test_one_partners_file_gone_is_rotated_without_a_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One partner of three with no file: it gets a new password, saying why, without --allow-many."""
    ScramCluster(monkeypatch)
    keys = tmp_path / "keys"
    apply(keys, CORE + PARTNERS, former="disable")
    os.unlink(credentials.party_folder(keys, "partner-CRI") / "client.properties")
    [login] = [login for login in apply(keys, CORE + PARTNERS, former="disable") if login.action == "rotated"]
    assert (login.principal, login.reason) == ("partner-CRI", "its client.properties is missing")
