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
import structlog

from broker.crypto.origin import sign_ingress, verify_ingress
from broker.keystore import Keystore, Keystores
from puente import logs
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
    """An empty folder put in place of the broker's (a new one not yet filled, a volume remounting): another folder
    than the one read raises KeyUnusable, not a dead letter."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    aside = site.folder.with_name("broker.old")
    os.rename(site.folder, aside)
    site.folder.mkdir(mode=0o700)
    site.later()
    with pytest.raises(KeyUnusable, match="no longer the one the running broker read"):
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
    scandir, listdir, opened = os.scandir, os.listdir, os.open

    def refuse(real: Any) -> Any:
        def call(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
            if not isinstance(path, int) and os.fspath(path) == folder:
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "scandir", refuse(scandir))
    monkeypatch.setattr(os, "listdir", refuse(listdir))
    monkeypatch.setattr(os, "open", refuse(opened))
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


def _copy(source: Path, target: Path, only: str = "") -> None:
    target.mkdir(mode=0o700, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.name.startswith(only) and not (target / path.name).exists():
            shutil.copy2(path, target / path.name)


def test_a_folder_swapped_in_holding_only_the_brokers_files_stops_the_worker(tmp_path: Path) -> None:
    """A new folder put in place while a copy fills it, so far with the broker's own files only: the re-read sees
    another folder than it read and raises KeyUnusable, rather than take SENAN's and PN's keys as revoked and
    dead-letter their genuine records ``origin``; the copy done and the broker started again, both verify."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    aside = site.folder.with_name("broker.old")
    os.rename(site.folder, aside)
    _copy(aside, site.folder, only="broker")
    site.later()
    with pytest.raises(KeyUnusable, match="no longer the one the running broker read"):
        site.verified()
    _copy(aside, site.folder)
    restarted = _Site.__new__(_Site)
    restarted.keys, restarted.folder, restarted.now, restarted.problems = site.keys, site.folder, [0.0], []
    restarted.lookup = site.keys.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: restarted.now[0])
    assert restarted.verified() == "SENAN" and restarted.verified("PN") == "PN"


def test_a_link_swapped_to_another_folder_stops_the_worker(tmp_path: Path) -> None:
    """The keystore a link to a folder, pointed at another one at once (a copy holding only the broker's files):
    the re-read, listing through the descriptor it identified, raises KeyUnusable instead of revoking every
    agency's key."""
    site = _Site(tmp_path)
    first = site.folder.with_name("broker.v1")
    os.rename(site.folder, first)
    os.symlink(first.name, site.folder)
    site.lookup = site.keys.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: site.now[0])
    assert site.verified() == "SENAN"
    second = site.folder.with_name("broker.v2")
    _copy(first, second, only="broker")
    link = site.folder.with_name("broker.tmp")
    os.symlink(second.name, link)
    os.replace(link, site.folder)
    site.later()
    with pytest.raises(KeyUnusable, match="no longer the one the running broker read"):
        site.verified()


def test_a_revoked_key_is_logged_by_id(tmp_path: Path) -> None:
    """A key file removed from the folder read: the re-read revokes it and logs a warning naming its id, owner and
    file (never its material), since its records are dead-lettered without a word otherwise."""
    site = _Site(tmp_path)
    assert site.verified("PN") == "PN"
    (site.folder / "PN-kex-2026a.json").unlink()
    site.later()
    with structlog.testing.capture_logs() as lines:
        assert site.verified("PN") is None
    revoked = [line for line in lines if line.get("key_id") == "PN-kex-2026a"]
    assert len(revoked) == 1 and revoked[0]["log_level"] == "warning" and revoked[0]["agency"] == "PN"
    assert set(revoked[0]) <= logs.FIELDS | {"log_level"}
    with structlog.testing.capture_logs() as lines:
        site.later()
        assert site.verified() == "SENAN"
    assert not [line for line in lines if "revoked" in line["event"]]


def test_every_key_rotated_at_once_stops_the_worker_with_advice_to_restart(tmp_path: Path) -> None:
    """Every held key-agreement file replaced by a new generation in one step: the re-read raises KeyUnusable that
    tells the operator to start the broker again to take the new keys, not only to put the old ones back (which
    could restore a revoked key); the restart's first read takes the new generation."""
    site = _Site(tmp_path)
    assert site.verified() == "SENAN"
    new = Keystore.provision(tmp_path / "new", partners=["COL"], agencies=["SENAN", "PN"], agreements=[],
                             generation="2026b")
    for path in site.folder.glob("*-kex-*.json"):
        path.unlink()
    for path in new.broker.path.glob("*-kex-*.json"):
        shutil.copy2(path, site.folder / path.name)
    site.later()
    with pytest.raises(KeyUnusable, match=r"If every key was rotated at once, start the broker again to take the "
                                          r"new ones; otherwise .* put the keys back"):
        site.verified()
    restarted = site.keys.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: site.now[0])
    mac = new.agencies["SENAN"].load_agency_mac("SENAN")
    assert verify_ingress(sign_ingress("SENAN", mac.key_id, mac, b"a", "SENAN-1"), b"a", restarted).agency == "SENAN"
