"""A running broker's re-read of its MAC keys revokes a key only when it read the folder: a folder moved aside,
emptied at once or that cannot be listed stops the worker (``KeyUnusable``) instead of dead-lettering every agency's
genuine records as of unknown origin."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from broker.crypto.origin import sign_ingress, verify_ingress
from broker.keystore import Keystore, Keystores
from puente.errors import KeyUnusable, OriginError


class _Site:
    def __init__(self, tmp_path: Path) -> None:
        self.keys: Keystores = Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=["SENAN", "PN"],
                                                  agreements=[], generation="2026a")
        self.folder = self.keys.broker.path
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


def test_a_folder_moved_aside_stops_the_worker_and_verifies_once_back(tmp_path: Path) -> None:
    """The broker's folder moved aside during a rotation: the re-read raises KeyUnusable rather than take every key
    as revoked and dead-letter SENAN's genuine record; the folder back, SENAN's records verify again."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    aside = site.folder.with_name("broker.old")
    os.rename(site.folder, aside)
    site.later()
    with pytest.raises(KeyUnusable, match="cannot list the folder"):
        site.verified()
    os.rename(aside, site.folder)
    site.later()
    assert site.verified() == "SENAN" and site.problems == []


def test_a_folder_left_empty_stops_the_worker(tmp_path: Path) -> None:
    """An empty folder put in place of the broker's (a new one not yet filled, a volume remounting): a read that
    would drop every key held at once raises KeyUnusable, not a dead letter."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    aside = site.folder.with_name("broker.old")
    os.rename(site.folder, aside)
    site.folder.mkdir(mode=0o700)
    site.later()
    with pytest.raises(KeyUnusable, match="not one of the key-agreement keys"):
        site.verified()
    shutil.rmtree(site.folder)
    os.rename(aside, site.folder)
    site.later()
    assert site.verified() == "SENAN"


def test_a_folder_that_cannot_be_listed_stops_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file descriptor left to list the folder (EMFILE): the re-read raises KeyUnusable naming the folder, not a
    bare OSError that the pipeline would dead-letter as ``internal``."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    folder = str(site.folder)
    scandir, listdir = os.scandir, os.listdir

    def refuse(real: Any) -> Any:
        def call(path: Any = ".") -> Any:
            if os.fspath(path) == folder:
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
            return real(path)
        return call

    monkeypatch.setattr(os, "scandir", refuse(scandir))
    monkeypatch.setattr(os, "listdir", refuse(listdir))
    site.later()
    with pytest.raises(KeyUnusable, match="Too many open files"):
        site.verified()
    monkeypatch.undo()
    site.later()
    assert site.verified() == "SENAN"


def test_a_file_removed_from_a_folder_that_still_lists_is_revoked(tmp_path: Path) -> None:
    """The control: PN's key file removed to revoke it, the folder readable, SENAN's still there: PN's records no
    longer verify (a dead letter ``origin``), SENAN's do, and the worker carries on."""
    site = _Site(tmp_path)
    assert site.verified("PN") == "PN"
    (site.folder / "PN-kex-2026a.json").unlink()
    site.later()
    assert site.verified("PN") is None
    assert site.verified() == "SENAN"
