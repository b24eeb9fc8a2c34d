"""`puente keys export-public --out`: the PEM goes to a file of its own, never through a link planted there."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from broker.crypto.keys import KeyKind
from broker.keystore import Keystore
from puente.commands.keys import _export_public

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_export_public_out_replaces_a_planted_link_without_writing_through_it(tmp_path: Path) -> None:
    """A link planted at --out pointing at another file: that file is untouched and --out becomes a regular file
    holding the PEM."""
    store = Keystore(tmp_path / "broker")
    store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    victim = tmp_path / "victim.conf"
    victim.write_text("important config\n")
    out = tmp_path / "broker-sign-2026a.pem"
    out.symlink_to(victim)
    _export_public(argparse.Namespace(key_id="broker-sign-2026a", dir=store.path, out=out))
    assert victim.read_text() == "important config\n"
    assert not out.is_symlink() and out.read_bytes() == store.public_pem("broker-sign-2026a")
    assert out.stat().st_mode & 0o777 == 0o644
