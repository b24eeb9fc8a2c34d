"""Public halves as PEM SubjectPublicKeyInfo: round trips, and every kind of wrong file refused in one line."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from broker.crypto import public_from_pem, public_pem
from broker.crypto.keys import KeyKind, new_key
from broker.keystore import Keystore
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 2, 1, tzinfo=UTC)
X_PEM = X25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
ED_PEM = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _body(pem: bytes) -> str:
    """The base64 inside a PEM, which no error message may quote."""
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


@pytest.mark.parametrize(
    ("kind", "owner"),
    [(KeyKind.PARTNER_ENCRYPTION, "COL"), (KeyKind.PARTNER_SIGNING, "COL"), (KeyKind.BROKER_SIGNING, "broker"),
     (KeyKind.KEY_AGREEMENT, "SENAN"), (KeyKind.KEY_AGREEMENT, "broker")],
)
def test_a_public_half_round_trips_through_pem(kind: KeyKind, owner: str) -> None:
    """Each kind of key pair exports as SubjectPublicKeyInfo PEM and imports back as its public half only."""
    record = new_key(kind, owner, "2026a", NOW)
    pem = public_pem(record)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    load_pem_public_key(pem)  # any toolkit reads it
    back = public_from_pem(pem, key_id=record.key_id, created_at=LATER, source="f.pem")
    assert (back.key_id, back.kind, back.public, back.secret, back.created_at) == (
        record.key_id, kind, record.public, None, LATER)


def test_a_pem_with_windows_line_ends_blank_lines_or_a_bom_still_imports() -> None:
    for data in (X_PEM.replace(b"\n", b"\r\n"), b"\n\n" + X_PEM + b"\n  \n", b"\xef\xbb\xbf" + X_PEM):
        assert public_from_pem(data, key_id="COL-enc-2026a", created_at=NOW, source="f.pem").public == \
            public_from_pem(X_PEM, key_id="COL-enc-2026a", created_at=NOW, source="f.pem").public


def test_a_pseudonym_key_has_nothing_to_export_or_import() -> None:
    """A pseudonym key has no public half: exporting or importing one is refused, naming the key."""
    with pytest.raises(KeyMaterialError, match="PAN-USA-pseudo-2026a: a pseudonym key has no public half"):
        public_pem(new_key(KeyKind.PSEUDONYM, "PAN-USA", "2026a", NOW))
    with pytest.raises(KeyMaterialError, match=r"f\.pem: key PAN-USA-pseudo-2026a is a pseudonym key"):
        public_from_pem(X_PEM, key_id="PAN-USA-pseudo-2026a", created_at=NOW, source="f.pem")


def _private_pems() -> list[bytes]:
    x = X25519PrivateKey.generate()
    return [
        x.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()),
        rsa.generate_private_key(65537, 2048).private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL,
                                                            NoEncryption()),
        X_PEM + x.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),  # a public key with a stowaway
    ]


@pytest.mark.parametrize(
    ("key_id", "data", "problem"),
    [
        ("COL-enc-2026a", ED_PEM, "type Ed25519, but COL-enc-2026a is a partner-encryption key, which must be X25519"),
        ("SENAN-kex-2026a", ED_PEM, "type Ed25519, but SENAN-kex-2026a is a key-agreement key, which must be X25519"),
        ("COL-rcpt-2026a", X_PEM, "type X25519, but COL-rcpt-2026a is a partner-signing key, which must be Ed25519"),
        ("broker-sign-2026a", X_PEM, "which must be Ed25519"),
        ("COL-enc-2026a", ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), "which must be X25519"),
        ("COL-rcpt-2026a", ed448.Ed448PrivateKey.generate().public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), "which must be Ed25519"),
        ("COL-enc-2026a", b"", "found no PEM block"),
        ("COL-enc-2026a", b'{"key_id": "COL-enc-2026a"}', "found no PEM block"),
        ("COL-enc-2026a", X_PEM + ED_PEM, "expected one PEM 'PUBLIC KEY' block"),
        ("COL-enc-2026a", X_PEM.replace(b"PUBLIC KEY", b"CERTIFICATE"), "found PEM block(s) 'CERTIFICATE'"),
        ("COL-enc-2026a", X_PEM[:40] + X_PEM[50:], "not a valid PEM public key"),
        ("COL-enc-2026a", X_PEM.replace(_body(X_PEM)[5:9].encode(), b"AAAA"), "not a valid PEM public key"),
        *(("COL-enc-2026a", pem, "holds a private key") for pem in _private_pems()),
        # Text around the block, or a second block the label pattern did not see: the file is the key, nothing else.
        ("COL-enc-2026a", b"trailing garbage\n" + X_PEM, "found text before or after the block"),
        ("COL-enc-2026a", X_PEM + b"#!/bin/sh\n", "found text before or after the block"),
        ("COL-enc-2026a", X_PEM + ED_PEM.replace(b"PUBLIC KEY", b"public key"), "expected one PEM 'PUBLIC KEY' block"),
        ("COL-enc-2026a", X_PEM + ED_PEM.replace(b"PUBLIC KEY", b"PUBLIC-KEY"), "expected one PEM 'PUBLIC KEY' block"),
        ("COL-enc-2026a", X_PEM + ED_PEM.replace(b"PUBLIC KEY", b"PUBLIC\tKEY"), "expected one PEM 'PUBLIC KEY' block"),
        ("COL-enc-2026a", X_PEM + b"-----begin private key-----\nAAAA\n-----end private key-----\n",
         "holds a private key"),
    ],
)
def test_wrong_files_are_refused_naming_the_file_never_the_key(key_id: str, data: bytes, problem: str) -> None:
    """Another key type, a private key, several blocks or a malformed PEM: one line naming the file, no key bytes."""
    with pytest.raises(KeyMaterialError) as info:
        public_from_pem(data, key_id=key_id, created_at=NOW, source="/in/their.pem")
    text = str(info.value)
    assert problem in text
    assert text.startswith("/in/their.pem: ")
    assert "\n" not in text
    body = _body(data)
    for chunk in [body[i:i + 16] for i in range(0, len(body) - 15, 16)]:
        assert chunk not in text


def test_importing_the_same_public_half_again_changes_nothing(tmp_path: Path) -> None:
    """A second import of the same PEM under the same id is a no-op, not a new file or an error."""
    store = Keystore(tmp_path / "broker")
    first, written = store.import_public(X_PEM, "COL-enc-2026a", source="a.pem", now=NOW)
    again, written_again = store.import_public(X_PEM, "COL-enc-2026a", source="a.pem", now=LATER)
    assert (written, written_again) == (True, False)
    assert again == first and again.created_at == NOW
    assert store.load("COL-enc-2026a").secret is None


def test_a_different_public_half_under_a_known_id_is_refused(tmp_path: Path) -> None:
    """Importing another key under an id already held is refused: a new key needs a new generation."""
    store = Keystore(tmp_path / "broker")
    store.import_public(X_PEM, "COL-enc-2026a", source="a.pem", now=NOW)
    other = X25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyMaterialError, match=r"b\.pem: .* already holds a different public key COL-enc-2026a"):
        store.import_public(other, "COL-enc-2026a", source="b.pem", now=LATER)
    assert store.public_pem("COL-enc-2026a") == X_PEM


def test_a_holder_cannot_import_over_its_own_private_key(tmp_path: Path) -> None:
    """Importing a public half under the id of a key whose private half is here is refused, and the key is kept."""
    store = Keystore(tmp_path / "partners" / "COL")
    own = store.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    with pytest.raises(KeyMaterialError, match="holds the private half of COL-enc-2026a itself"):
        store.import_public(public_pem(own), "COL-enc-2026a", source="mine.pem", now=LATER)
    assert store.load("COL-enc-2026a").secret == own.secret


def test_pem_text_of_a_key_file_is_not_its_json(tmp_path: Path) -> None:
    """The exported PEM carries the public bytes only: neither the JSON file's secret nor its fields."""
    store = Keystore(tmp_path)
    record = store.generate(KeyKind.KEY_AGREEMENT, "SENAN", generation="2026a", now=NOW)
    pem = store.public_pem(record.key_id)
    assert record.secret is not None
    assert base64.b64encode(record.secret.reveal()) not in pem
    assert b"secret" not in pem and b"key_id" not in pem
