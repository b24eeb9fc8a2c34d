"""An X25519 public half with a small-order component, or none of the curve's points, is refused wherever it enters;
every key X25519 makes passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.crypto import edwards
from broker.crypto.edwards import P, decode_point, in_prime_subgroup, montgomery_prime_order
from broker.crypto.keys import KeyKind, KeyRecord, check_x25519_public, record_from_json, record_to_json
from broker.keystore import Keystore
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
# RFC 7748 section 6.1: Alice's and Bob's public keys.
RFC7748 = [bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
           bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")]


def _edwards(u: int) -> tuple[int, int]:
    point = decode_point(((u - 1) * pow(u + 1, P - 2, P) % P).to_bytes(32, "little"))
    assert point is not None
    return point


def _montgomery(x: int, y: int) -> bytes:
    return ((1 + y) * pow(1 - y, P - 2, P) % P).to_bytes(32, "little")


def _torsion() -> dict[int, tuple[int, int]]:
    """One point of each small order but 1 (2, 4 and 8), from the eight edwards computes."""
    found: dict[int, tuple[int, int]] = {}
    for encoded in edwards.small_order_encodings():
        point = decode_point(encoded)
        if point is None:
            continue  # a non-canonical spelling
        x, y = point
        multiple, order = (x, y, 1, x * y % P), 1
        while not edwards._identity(multiple):
            multiple, order = edwards._add(multiple, (x, y, 1, x * y % P)), order + 1
        if order > 1:
            found.setdefault(order, point)
    assert sorted(found) == [2, 4, 8]
    return found


def _shifted(public: bytes, torsion: tuple[int, int]) -> bytes:
    """``public`` plus the small-order point ``torsion``, as an X25519 u-coordinate."""
    x, y = _edwards(int.from_bytes(public, "little"))
    tx, ty = torsion
    return _montgomery(*edwards._affine(edwards._add((x, y, 1, x * y % P), (tx, ty, 1, tx * ty % P))))


def _raw(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _pem(raw: bytes) -> bytes:
    return X25519PublicKey.from_public_bytes(raw).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def test_every_key_x25519_makes_passes() -> None:
    """RFC 7748's public keys and a hundred fresh ones from cryptography are of prime order, whichever sign of the
    Edwards x stands for them."""
    for public in [*RFC7748, *(_raw(X25519PrivateKey.generate()) for _ in range(100))]:
        check_x25519_public("COL-enc-2026a", public)
        x, y = _edwards(int.from_bytes(public, "little"))
        assert in_prime_subgroup(x, y) and in_prime_subgroup(P - x, y)


@pytest.mark.parametrize("order", [2, 4, 8])
def test_a_key_plus_a_small_order_point_is_refused(order: int) -> None:
    """A real key plus a point of order 2, 4 or 8 gives the key's holder the same shared secret under other bytes:
    refused, whichever sign stands for the point, while X25519 itself still takes it."""
    torsion = _torsion()[order]
    for _ in range(5):
        private = X25519PrivateKey.generate()
        public = _raw(private)
        shifted = _shifted(public, torsion)
        assert shifted != public
        peer = X25519PrivateKey.generate()
        assert peer.exchange(X25519PublicKey.from_public_bytes(shifted)) == peer.exchange(private.public_key())
        assert not montgomery_prime_order(shifted)
        x, y = _edwards(int.from_bytes(shifted, "little"))
        assert not in_prime_subgroup(x, y) and not in_prime_subgroup(P - x, y)
        with pytest.raises(KeyMaterialError, match="prime order"):
            check_x25519_public("USA-enc-2026b", shifted)


def test_a_u_coordinate_of_no_curve_point_is_refused() -> None:
    """A u on the curve's twist (here, the first few, and u = -1, where the map to Edwards has no y) is no key
    anyone made: refused."""
    twist = [u for u in range(2, 60) if decode_point(((u - 1) * pow(u + 1, P - 2, P) % P).to_bytes(32, "little"))
             is None][:5]
    assert twist
    for u in [*twist, P - 1]:
        assert not montgomery_prime_order(u.to_bytes(32, "little"))


def test_a_shifted_key_is_refused_at_import_and_at_load(tmp_path: Path) -> None:
    """SENAN's key-agreement half shifted by a point of order 8, imported as PN's, or COL's encryption half as
    USA's: refused at import, naming the file, and in a key file written by hand, naming the key."""
    made = Keystore.provision(tmp_path / "keys", partners=["COL", "USA"], agencies=["SENAN", "PN"], agreements=[],
                              generation="2026a")
    torsion = _torsion()[8]
    for owner, kind, other in [("SENAN", KeyKind.KEY_AGREEMENT, "PN-kex-2026b"),
                               ("COL", KeyKind.PARTNER_ENCRYPTION, "USA-enc-2026b")]:
        public = made.broker.current(owner, kind).public
        assert public is not None
        shifted = _shifted(public, torsion)
        with pytest.raises(KeyMaterialError, match="prime order") as info:
            made.broker.import_public(_pem(shifted), other, source="other.pem", now=NOW)
        assert "other.pem" in str(info.value)
        assert not (made.broker.path / f"{other}.json").exists()
        with pytest.raises(KeyMaterialError, match=other):
            record_from_json(record_to_json(KeyRecord(other, kind, NOW, shifted, None)), key_id=other)
