"""The denials collector's blocks name the key that signed them, after a key rotation too (``denials_signer``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.auditor import denials_signer, signature_checks
from broker.crypto import BROKER_OWNER, KeyKind
from broker.crypto.keys import new_key
from broker.keystore import Holder, Keystore


def rotated_broker_keys(root: Path) -> Keystore:
    """The broker's folder after the rotation the keystore documents: generation 2026b made, 2026a's private half
    removed and its public half imported back (from a backup) a day later, so that 2026a's is the newest by date."""
    root.mkdir(mode=0o700, exist_ok=True)
    keys = Keystore(root / "broker")
    now = datetime.now(UTC)
    keys.generate_own(Holder.BROKER, "broker", generation="2026a", now=now, agreements=[])
    keys.put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026b", now + timedelta(days=1)))
    pem = keys.public_pem("broker-sign-2026a")
    (keys.path / "broker-sign-2026a.json").unlink()
    keys.import_public(pem, "broker-sign-2026a", source="backup", now=now + timedelta(days=2))
    return keys


def test_the_denials_signer_names_the_key_that_signs_after_a_rotation(tmp_path: Path) -> None:
    """After a rotation whose retired generation's public half came back newer by date (``current`` names it), the
    collector signs with 2026b and names 2026b, and what it signs verifies under the name it gives, as the broker's
    workers sign; the retired id never labels a block."""
    keys = rotated_broker_keys(tmp_path / "k")
    assert keys.current(BROKER_OWNER, KeyKind.BROKER_SIGNING).key_id == "broker-sign-2026a"  # the trap
    signer_id, sign = denials_signer(keys)
    assert signer_id == keys.broker_signing_keys()[0].key_id == "broker-sign-2026b"
    verify = signature_checks(keys.path, None, signer=True)
    assert verify(signer_id, b"block", sign(b"block"))
    assert not verify("broker-sign-2026a", b"block", sign(b"block"))
