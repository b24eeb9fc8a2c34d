"""A secret is never written into a file others could read: where the file system does not keep the private mode
asked for (vfat takes its modes from its mount; a chmod it ignores), the write is refused and nothing is left."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.keys import KeyKind
from broker.keystore import Keystore
from broker.private_files import write_atomic, write_new
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def modeless(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system as a USB stick's vfat with fmask=022: no hard links, and every file 0644 whatever chmod asks."""
    fchmod: Callable[[int, int], None] = os.fchmod

    def no_link(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "fchmod", lambda fd, mode: fchmod(fd, 0o644))


@pytest.mark.usefixtures("modeless")
@pytest.mark.parametrize("write", [write_new, write_atomic])
def test_a_secret_is_not_written_where_its_mode_does_not_hold(tmp_path: Path,
                                                              write: Callable[[Path, bytes, int], None]) -> None:
    """write_new (its in-place fallback included) and write_atomic refuse a 0600 file that comes out 0644, with an
    OSError naming the mode, and leave no file, temporary or not, holding the secret."""
    path = tmp_path / "key.json"
    with pytest.raises(OSError, match=r"others could read it there \(its mode is 0644, not 0600"):
        write(path, b"SECRET", 0o600)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("modeless")
def test_a_public_half_is_still_written_there(tmp_path: Path) -> None:
    """A public half (0644) goes on such a file system as before: the USB stick a PEM is handed over on."""
    write_new(tmp_path / "COL-enc-2026a.pem", b"PUBLIC", 0o644)
    assert (tmp_path / "COL-enc-2026a.pem").read_bytes() == b"PUBLIC"


@pytest.mark.usefixtures("modeless")
def test_keys_generate_there_is_refused_in_one_line(tmp_path: Path) -> None:
    """A private key made in such a folder is refused as a KeyMaterialError naming the file and why; no key file
    is left."""
    with pytest.raises(KeyMaterialError, match=r"cannot write .*COL-enc-2026a\.json: others could read it there"):
        Keystore(tmp_path / "usb").generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    assert list((tmp_path / "usb").iterdir()) == []
