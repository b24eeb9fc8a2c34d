"""`puente keys export-public` / `import-public`: the PEM goes to a file of its own, never through a link planted
there, and both print the key's fingerprint, which `import-public --fingerprint` holds the key to."""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.keys import KeyKind, fingerprint
from broker.keystore import Keystore
from puente.commands.keys import _export_public, _import_public
from puente.errors import ConfigError, KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_export_public_out_never_replaces_what_is_there(tmp_path: Path) -> None:
    """--out names only a new file: run in the key folder with the private key's own name, a store's, or a link
    planted there, it refuses, writing nothing and leaving what was there as it was (0600 private key included);
    a new name gets the PEM, 0644."""
    store = Keystore(tmp_path / "broker")
    store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    private = store.path / "broker-sign-2026a.json"
    before = private.read_bytes()
    victim = tmp_path / "victim.conf"
    victim.write_text("important config\n")
    link = tmp_path / "link.pem"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling.pem"
    dangling.symlink_to(tmp_path / "nowhere")
    for out in (private, victim, link, dangling, tmp_path):
        with pytest.raises(ConfigError, match="already there; nothing was written"):
            _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=store.path, out=out))
    assert private.read_bytes() == before and private.stat().st_mode & 0o777 == 0o600
    assert victim.read_text() == "important config\n" and link.is_symlink() and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broker", "dangling.pem", "link.pem", "victim.conf"]
    out = tmp_path / "broker-sign-2026a.pem"
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=store.path, out=out))
    assert not out.is_symlink() and out.read_bytes() == store.public_pem("broker-sign-2026a")
    assert out.stat().st_mode & 0o777 == 0o644


def _exported(tmp_path: Path) -> tuple[Path, str]:
    """The broker's signing key exported to a PEM file, and its fingerprint as export-public printed it."""
    store = Keystore(tmp_path / "broker")
    record = store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    assert record.public is not None
    return tmp_path / "broker-sign-2026a.pem", fingerprint(record.public)


def _import(pem: Path, folder: Path, given: str | None) -> int:
    return _import_public(argparse.Namespace(pem=pem, key_id="broker-sign-2026a", dir=folder, fingerprint=given))


def test_export_public_prints_the_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """export-public names the key's SHA-256 fingerprint: beside --out, or on stderr when the PEM is on stdout."""
    pem, fp = _exported(tmp_path)
    assert fp.startswith("sha256:") and len(fp.split()) == 16
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=tmp_path / "broker", out=pem))
    assert fp in capsys.readouterr().out
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=tmp_path / "broker", out=None))
    out, err = capsys.readouterr()
    assert out.encode() == pem.read_bytes() and fp in err


def test_import_public_prints_the_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """import-public names the fingerprint of the key it stored, for comparing with the owner's."""
    pem, fp = _exported(tmp_path)
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=tmp_path / "broker", out=pem))
    capsys.readouterr()
    assert _import(pem, tmp_path / "COL", None) == 0
    assert fp in capsys.readouterr().out


@pytest.mark.parametrize("spell", [lambda fp: fp, lambda fp: fp.upper(), lambda fp: fp.replace(" ", ""),
                                   lambda fp: ":".join(fp[7:].replace(" ", "")[i:i + 2] for i in range(0, 64, 2))],
                         ids=["as-printed", "upper", "no-spaces", "colons"])
def test_import_public_with_the_owners_fingerprint_stores_the_key(tmp_path: Path, spell: Callable[[str], str]) -> None:
    """--fingerprint as export-public printed it (or respaced, or in capitals, or the colon form) lets the key in."""
    pem, fp = _exported(tmp_path)
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=tmp_path / "broker", out=pem))
    assert _import(pem, tmp_path / "COL", spell(fp)) == 0
    assert (tmp_path / "COL" / "broker-sign-2026a.json").exists()


def test_import_public_with_another_fingerprint_stores_nothing(tmp_path: Path) -> None:
    """A key whose fingerprint is not the one given (a swapped PEM) is refused in one line, and nothing is stored."""
    pem, fp = _exported(tmp_path)
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=tmp_path / "broker", out=pem))
    other = fingerprint(bytes(32))
    with pytest.raises(KeyMaterialError, match=f"has fingerprint {fp}, not the {other} given") as info:
        _import(pem, tmp_path / "COL", other)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "COL" / "broker-sign-2026a.json").exists()


@pytest.mark.parametrize("given", ["", "sha256:abcd", "md5:" + "ab" * 32, "ab" * 33, "zz" * 32])
def test_import_public_refuses_a_fingerprint_that_is_none(tmp_path: Path, given: str) -> None:
    """--fingerprint text that is not 64 hex digits is a configuration error, not quoted back; nothing is stored."""
    pem, _ = _exported(tmp_path)
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=tmp_path / "broker", out=pem))
    with pytest.raises(ConfigError, match="--fingerprint: expected a fingerprint"):
        _import(pem, tmp_path / "COL", given)
    assert not (tmp_path / "COL" / "broker-sign-2026a.json").exists()


def test_export_public_out_writes_where_there_are_no_hard_links(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system without hard links (vfat, exFAT: a USB stick), --out still writes a new file, leaves no
    temporary one, and still never replaces what is there."""
    store = Keystore(tmp_path / "broker")
    store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)

    def no_links(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    stick = tmp_path / "stick"
    stick.mkdir()
    out = stick / "broker-sign-2026a.pem"
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=store.path, out=out))
    assert out.read_bytes() == store.public_pem("broker-sign-2026a") and [p.name for p in stick.iterdir()] == [out.name]
    with pytest.raises(ConfigError, match="already there; nothing was written"):
        _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=store.path, out=out))
    assert [p.name for p in stick.iterdir()] == [out.name]
