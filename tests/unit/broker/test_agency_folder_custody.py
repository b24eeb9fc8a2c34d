"""An agency's folder holds no other party's private half: its adapter refuses to derive a MAC key beside one."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.keystore import Keystore, Keystores
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _site(tmp_path: Path) -> Keystores:
    return Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=["SENAN", "PN"], agreements=[],
                              generation="2026a", now=NOW)


@pytest.mark.parametrize(("source", "name"), [("broker", "broker-kex-2026a.json"), ("broker", "broker-sign-2026a.json"),
                                              ("agencies/PN", "PN-kex-2026a.json"),
                                              ("partners/COL", "COL-enc-2026a.json")])
def test_another_partys_private_half_in_an_agencys_folder_is_refused(tmp_path: Path, source: str, name: str) -> None:
    """The broker's key-agreement file copied whole over the public half SENAN holds (from it every agency's MAC key
    can be derived), or any other party's private key copied in, stops SENAN's adapter in one line naming the file
    and its owner, rather than being used or ignored."""
    made = _site(tmp_path)
    shutil.copy(made.root / source / name, made.agencies["SENAN"].path / name)
    with pytest.raises(KeyMaterialError) as info:
        made.agencies["SENAN"].load_agency_mac("SENAN")
    message = str(info.value)
    assert "\n" not in message and name in message and "private half" in message, message
