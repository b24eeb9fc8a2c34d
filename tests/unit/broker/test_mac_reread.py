"""A running broker's re-read of its MAC keys stops the worker on a key it verified with that stopped loading, and
keeps the first of one public half under two ids, rather than dead-letter an agency's genuine records."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.keys import record_to_json
from broker.crypto.origin import sign_ingress, verify_ingress
from broker.keystore import Holder, Keystore, Keystores, write_atomic
from puente.errors import KeyMaterialError, KeyUnusable, OriginError


class _Site:
    def __init__(self, tmp_path: Path) -> None:
        self.keys: Keystores = Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=["SENAN", "PN"],
                                                  agreements=[], generation="2026a")
        self.now = [0.0]
        self.problems: list[str] = []
        self.lookup = self.keys.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: self.now[0],
                                                               on_problem=self.problems.append)

    def verified(self, agency: str = "SENAN") -> str | None:
        mac = self.keys.agencies[agency].load_agency_mac(agency)
        try:
            return verify_ingress(sign_ingress(agency, mac.key_id, mac, b"a", f"{agency}-1"), b"a", self.lookup).agency
        except OriginError:
            return None

    def later(self, seconds: float = 61.0) -> None:
        self.now[0] += seconds


def test_a_held_agency_key_that_stops_loading_stops_the_worker(tmp_path: Path) -> None:
    """SENAN's key file made writable by others while the broker runs: the re-read raises KeyUnusable (the worker
    stops before committing), as the start refuses the same file, instead of leaving SENAN's pair out and
    dead-lettering its genuine records; fixed, SENAN's records verify again."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    path = site.keys.broker.path / "SENAN-kex-2026a.json"
    os.chmod(path, 0o664)
    site.later()
    with pytest.raises(KeyUnusable, match="SENAN-kex-2026a"):
        site.verified()
    os.chmod(path, 0o644)
    site.later()
    assert site.verified() == "SENAN"


def test_a_new_file_that_does_not_load_is_left_out(tmp_path: Path) -> None:
    """A key-agreement file new since the last read that does not load is left out and reported once: nothing was
    verified with it, so the worker carries on and the other agencies' records verify."""
    site = _Site(tmp_path)
    (site.keys.broker.path / "PN-kex-2026b.json").write_text("{}")
    os.chmod(site.keys.broker.path / "PN-kex-2026b.json", 0o644)
    site.later()
    assert site.verified() == "SENAN" and site.verified("PN") == "PN"
    assert len(site.problems) == 1 and "PN-kex-2026b" in site.problems[0]


def test_a_copy_of_a_held_public_half_under_another_id_is_refused_and_the_first_kept(tmp_path: Path) -> None:
    """SENAN's public half copied by hand as PN-kex-2026b while the broker runs: the newcomer is left out and
    reported, and SENAN's own pair is kept, so its genuine records still verify; PN's pair under the copy is never
    made."""
    site = _Site(tmp_path)
    doc = json.loads((site.keys.broker.path / "SENAN-kex-2026a.json").read_text())
    doc["key_id"] = "PN-kex-2026b"
    copy = site.keys.broker.path / "PN-kex-2026b.json"
    copy.write_text(json.dumps(doc))
    os.chmod(copy, 0o644)
    site.later()
    assert site.verified() == "SENAN"
    assert site.lookup("PN", "PN-kex-2026b+broker-kex-2026a") is None
    assert len(site.problems) == 1 and "PN-kex-2026b" in site.problems[0], site.problems


@pytest.mark.parametrize("times", [1, 3])
def test_a_held_file_replaced_while_it_is_read_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              times: int) -> None:
    """SENAN's key file replaced by a rename (``write_atomic``, a Kubernetes secret update) between the re-read's
    walk to it and its open, once or on three reads in a row: the read that saw it change is done again, and
    SENAN's records verify, instead of the worker stopping on a key that never stopped loading."""
    site = _Site(tmp_path)
    mac = site.keys.agencies["SENAN"].load_agency_mac("SENAN")
    record = sign_ingress("SENAN", mac.key_id, mac, b"a", "SENAN-1")
    assert verify_ingress(record, b"a", site.lookup).agency == "SENAN"
    path = site.keys.broker.path / "SENAN-kex-2026a.json"
    real_open, fired = os.open, []

    def racing_open(name: str, flags: int, *args: int, dir_fd: int | None = None) -> int:
        if name == path.name and dir_fd is not None and len(fired) < times:
            fired.append(name)
            write_atomic(path, path.read_bytes(), 0o644)
        return real_open(name, flags, *args, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", racing_open)
    site.later()
    assert verify_ingress(record, b"a", site.lookup).agency == "SENAN" and len(fired) == times
    assert site.problems == []


def test_a_held_file_rewritten_to_copy_another_held_key_stops_the_worker(tmp_path: Path) -> None:
    """PN's key file, held, rewritten in place to hold SENAN's public half under PN's id: the re-read raises
    KeyUnusable naming PN's file, rather than drop both pairs and dead-letter SENAN's genuine records with a
    warning; PN's file put back, both verify again."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN" and site.verified("PN") == "PN"
    pn = site.keys.broker.path / "PN-kex-2026a.json"
    original = pn.read_bytes()
    doc = json.loads((site.keys.broker.path / "SENAN-kex-2026a.json").read_text())
    doc["key_id"] = "PN-kex-2026a"
    write_atomic(pn, json.dumps(doc).encode(), 0o644)
    site.later()
    with pytest.raises(KeyUnusable, match=r"PN-kex-2026a\.json now holds another key"):
        site.verified()
    write_atomic(pn, original, 0o644)
    site.later()
    assert site.verified() == "SENAN" and site.verified("PN") == "PN"


def test_a_held_file_rewritten_with_another_key_under_its_id_stops_the_worker(tmp_path: Path) -> None:
    """SENAN's key file, held, rewritten with another key under the same id (a key is never replaced: a new one
    needs a new generation): the re-read raises KeyUnusable instead of taking the new key without a word."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    other = Keystore(tmp_path / "elsewhere")
    other.generate_own(Holder.AGENCY, "SENAN", generation="2026a", now=datetime(2026, 1, 5, tzinfo=UTC))
    write_atomic(site.keys.broker.path / "SENAN-kex-2026a.json",
                 record_to_json(other.load("SENAN-kex-2026a").public_only()), 0o644)
    site.later()
    with pytest.raises(KeyUnusable, match=r"SENAN-kex-2026a\.json now holds another key"):
        site.lookup("SENAN", "SENAN-kex-2026a+broker-kex-2026a")


def test_the_brokers_key_file_without_its_private_half_is_refused(tmp_path: Path) -> None:
    """The broker's key-agreement file replaced by its public half: a running broker's re-read raises KeyUnusable
    and the start refuses it, naming the file, rather than drop every pair with it and dead-letter the records of
    each agency told to use it."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    broker = site.keys.broker
    write_atomic(broker.path / "broker-kex-2026a.json",
                 record_to_json(broker.load("broker-kex-2026a").public_only()), 0o644)
    site.later()
    with pytest.raises(KeyUnusable, match=r"broker-kex-2026a\.json holds only the public half"):
        site.verified()
    with pytest.raises(KeyMaterialError, match=r"broker-kex-2026a\.json holds only the public half"):
        broker.fresh_agency_mac_lookup()
