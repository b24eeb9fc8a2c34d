"""An agency's folder holds no other party's private half: its adapter refuses to derive a MAC key beside one."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("name", ["broker-kex-2026a.json.bak", "PN-kex-2026a.json", "broker-kex-2026a",
                                  "keys.d/broker-kex-2026a.json"])
def test_the_brokers_private_half_under_any_name_in_an_agencys_folder_is_refused(tmp_path: Path, name: str) -> None:
    """The broker's key-agreement file copied into SENAN's folder as a backup, under another key's id, without its
    extension or into a subfolder: every entry is looked at, as in the broker's folder, so SENAN's adapter stops
    in one line naming it rather than skip a file it does not parse."""
    made = _site(tmp_path)
    folder = made.agencies["SENAN"].path
    (folder / name).parent.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(made.root / "broker" / "broker-kex-2026a.json", folder / name)
    (folder / name).chmod(0o600)
    with pytest.raises(KeyMaterialError) as info:
        made.agencies["SENAN"].load_agency_mac("SENAN")
    message = str(info.value)
    assert "\n" not in message and name.split("/")[0] in message, message


def test_what_an_agency_keeps_in_its_folder_is_taken(tmp_path: Path) -> None:
    """The control: SENAN's login, its pending login, the one moved aside when it was no longer named (`users
    apply` disabled it), its in-use and broker-in-use choices and a temporary file a crashed write left stop
    nothing."""
    made = _site(tmp_path)
    store = made.agencies["SENAN"]
    store.use_agency_key("SENAN-kex-2026a")
    store.use_agency_key("broker-kex-2026a")
    for name in ("client.properties", ".client.properties.pending", ".client.properties.former",
                 ".in-use.0123456789ab.tmp"):
        (store.path / name).write_text("x\n")
        (store.path / name).chmod(0o600)
    assert store.agency_custody_problems("SENAN") == []
    assert store.load_agency_mac("SENAN").key_id == "SENAN-kex-2026a+broker-kex-2026a"


@pytest.mark.parametrize(("copied", "as_id"), [("broker-kex-2026a", "PN-kex-2026a"),
                                              ("SENAN-kex-2026a", "broker-kex-2026b")])
def test_one_public_half_under_two_ids_in_an_agencys_folder_is_refused(tmp_path: Path, copied: str,
                                                                      as_id: str) -> None:
    """The broker's public half copied in as PN's key, or SENAN's own public half as a broker generation (named in
    use, it has SENAN MAC with a pair the broker lacks, every record dead-lettered): refused whoever's the two ids
    are, not only among the broker's halves, in one line naming both."""
    made = _site(tmp_path)
    store = made.agencies["SENAN"]
    doc = json.loads((store.path / f"{copied}.json").read_text())
    doc.pop("secret", None)
    (store.path / f"{as_id}.json").write_text(json.dumps({**doc, "key_id": as_id}))
    if as_id.startswith("broker"):
        store.use_agency_key(as_id)
    with pytest.raises(KeyMaterialError) as info:
        store.load_agency_mac("SENAN")
    message = str(info.value)
    assert "\n" not in message and copied in message and as_id in message, message
