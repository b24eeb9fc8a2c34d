"""Ed25519 keys of small order or in non-canonical form are refused wherever they enter, and verification is strict."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.chain import ChainWriter
from broker.audit.verify import verify_partition
from broker.crypto import FeedOpener, FeedSealer, checker, edwards, public_from_pem
from broker.crypto.edwards import (
    L,
    P,
    canonical_scalar,
    decode_point,
    has_small_order,
    on_curve,
    small_order_encodings,
    strict_r,
    strong_point,
)
from broker.crypto.keys import KeyKind, KeyRecord, check_ed25519_public, new_key, record_from_json
from broker.crypto.signing import CHECKPOINT_CONTEXT, sign_checkpoint, verify_checkpoint, verify_with_context
from broker.keystore import Keystore
from puente.errors import KeyMaterialError, SignatureError

NOW = datetime(2026, 12, 1, tzinfo=UTC)
IDENTITY = bytes([1]) + bytes(31)
FORGED = IDENTITY + bytes(32)  # R = identity, S = 0: "verifies" for every message under the identity key
# The eight points of small order, as libsodium and the literature list them; the code computes, the test compares.
SMALL_ORDER = [bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
)]
# y >= p: a second spelling of y - p (p + 1 spells the identity), and x = 0 with its sign bit set.
NON_CANONICAL = [(P + 1).to_bytes(32, "little"), P.to_bytes(32, "little"), (IDENTITY[:31] + b"\x80"),
                 (2**255 - 1).to_bytes(32, "little")]


def _pem(raw: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("raw", SMALL_ORDER, ids=lambda b: b.hex()[:8] + b.hex()[-2:])
def test_every_small_order_point_is_found_by_arithmetic(raw: bytes) -> None:
    """Each of the eight small-order points decodes onto the curve and [8]P is the identity: refused."""
    point = decode_point(raw)
    assert point is not None and on_curve(*point) and has_small_order(*point)
    assert not strong_point(raw)


@pytest.mark.parametrize("raw", NON_CANONICAL, ids=["p+1", "p", "identity-with-sign", "all-ones"])
def test_non_canonical_encodings_are_refused(raw: bytes) -> None:
    """An encoding with y >= p, or x = 0 with the sign bit set, is no canonical point: refused."""
    assert decode_point(raw) is None and not strong_point(raw)


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32))
def test_every_generated_key_is_a_strong_point(seed: bytes) -> None:
    """A real Ed25519 public key decodes to the point its encoding names and is accepted."""
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    point = decode_point(raw)
    assert point is not None and on_curve(*point)
    x, y = point
    assert (y | (x & 1) << 255).to_bytes(32, "little") == raw
    assert strong_point(raw)


def test_s_must_be_below_the_group_order() -> None:
    """S = L - 1 is canonical; S = L, and anything up to 2^256 - 1, is not."""
    assert canonical_scalar((L - 1).to_bytes(32, "little"))
    assert not canonical_scalar(L.to_bytes(32, "little"))
    assert not canonical_scalar(bytes([255]) * 32)


@pytest.mark.parametrize("key_id", ["broker-sign-2026b", "COL-rcpt-2026a"])
@pytest.mark.parametrize("raw", [IDENTITY, SMALL_ORDER[4], NON_CANONICAL[0]], ids=["identity", "order-8", "p+1"])
def test_a_small_order_or_non_canonical_pem_is_not_imported(tmp_path: Path, key_id: str, raw: bytes) -> None:
    """import-public refuses a weak Ed25519 key in one line naming the file and the key id, and stores nothing."""
    store = Keystore(tmp_path / "ks")
    with pytest.raises(KeyMaterialError) as info:
        store.import_public(_pem(raw), key_id, source="their.pem", now=NOW)
    message = str(info.value)
    assert message.startswith(f"their.pem: key {key_id}: small-order or non-canonical Ed25519 key")
    assert "\n" not in message and raw.hex() not in message
    assert not (tmp_path / "ks" / f"{key_id}.json").exists()
    with pytest.raises(KeyMaterialError, match="small-order or non-canonical"):
        public_from_pem(_pem(raw), key_id=key_id, created_at=NOW, source="their.pem")


@pytest.mark.parametrize("key_id", ["broker-sign-2026a", "COL-rcpt-2026a"])
def test_a_key_file_holding_a_small_order_public_half_does_not_load(key_id: str) -> None:
    """A public-only key file written by hand with the identity point is refused when loaded, naming the key."""
    kind = KeyKind.BROKER_SIGNING if key_id.startswith("broker") else KeyKind.PARTNER_SIGNING
    doc = {"key_id": key_id, "kind": str(kind), "created_at": NOW.isoformat(),
           "public": base64.b64encode(IDENTITY).decode()}
    with pytest.raises(KeyMaterialError, match=f"key {key_id}: small-order or non-canonical Ed25519 key"):
        record_from_json(json.dumps(doc).encode(), key_id=key_id)


def test_a_record_built_by_hand_gives_no_weak_verify_key() -> None:
    """A KeyRecord built in code with the identity point never becomes an Ed25519 verify key."""
    record = KeyRecord("broker-sign-2026a", KeyKind.BROKER_SIGNING, NOW, IDENTITY, None)
    with pytest.raises(KeyMaterialError, match="broker-sign-2026a: small-order or non-canonical"):
        record.ed25519_public()


def test_real_keys_still_load_and_verify(tmp_path: Path) -> None:
    """A genuine key passes every entry point, and its signatures verify."""
    record = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW)
    assert record.public is not None
    check_ed25519_public(record.key_id, record.public)
    back = public_from_pem(_pem(record.public), key_id=record.key_id, created_at=NOW, source="f.pem")
    signature = sign_checkpoint(record.ed25519_private(), b"payload")
    verify_checkpoint(back.ed25519_public(), b"payload", signature)


@pytest.mark.parametrize("raw", [IDENTITY, SMALL_ORDER[1], SMALL_ORDER[6]], ids=["identity", "order-2", "order-8"])
def test_verification_refuses_a_weak_key_however_it_was_made(raw: bytes) -> None:
    """A verify key of small order made outside Puente's loaders is refused by the verifier itself."""
    with pytest.raises(SignatureError, match="verify key is a small-order or non-canonical Ed25519 key"):
        verify_with_context(Ed25519PublicKey.from_public_bytes(raw), CHECKPOINT_CONTEXT, b"anything", FORGED,
                            what="audit checkpoint")


def test_a_signature_with_a_small_order_r_or_an_oversized_s_is_not_strict() -> None:
    """R of small order, R not canonical, or S >= L: refused as not strict, before the equation is tried."""
    key = Ed25519PrivateKey.generate()
    good = sign_checkpoint(key, b"payload")
    s = int.from_bytes(good[32:], "little")
    for bad in (IDENTITY + good[32:], NON_CANONICAL[0] + good[32:], good[:32] + (s + L).to_bytes(32, "little")):
        with pytest.raises(SignatureError, match="not in strict form"):
            verify_checkpoint(key.public_key(), b"payload", bad)


def test_a_receipt_chain_forged_under_an_identity_key_is_reported() -> None:
    """An auditor holding a small-order partner key does not take a checkpoint forged without a private key."""
    writer = ChainWriter("puente.receipts.COL", 0, chain="COL")
    records = [writer.append("RECEIPT", {"partner": "COL", "alert_id": "PA:X-1", "feed": "puente.feed.COL:0:0",
                                         "status": "RECALLED", "at": "2026-12-01T00:00:00Z"})]
    records.append(writer.checkpoint("COL-rcpt-2026a", lambda payload: FORGED, "2026-12-01T00:00:01Z"))
    check = checker({"COL-rcpt-2026a": Ed25519PublicKey.from_public_bytes(IDENTITY)})
    report = verify_partition("puente.receipts.COL", 0, list(enumerate(records)), check, holds="receipts", owner="COL")
    assert any("invalid signature" in f.problem for f in report.findings)
    assert report.vouched == []


class _NoKey:
    """A 'signing key' that signs nothing: the forger has no private key at all."""

    def sign(self, message: bytes) -> bytes:
        return FORGED


def test_a_feed_record_forged_under_an_identity_broker_key_does_not_open() -> None:
    """A partner holding a small-order 'broker' key refuses a key block forged with no private key."""
    partner = X25519PrivateKey.generate()
    sealer = FeedSealer("COL", partner.public_key(), _NoKey())  # type: ignore[arg-type]
    context = {"alert_id": "A", "topic": "puente.feed.COL", "schema_fp": bytes(8), "policy_version": "p",
               "agreement": "X"}
    value = sealer.seal(b"forged alert", now=NOW, **context)  # type: ignore[arg-type]
    opener = FeedOpener("COL", partner, Ed25519PublicKey.from_public_bytes(IDENTITY))
    with pytest.raises(SignatureError):
        opener.open(value, **context)  # type: ignore[arg-type]


def test_a_signatures_r_is_checked_against_the_computed_torsion_points() -> None:
    """The R check a verification makes is a set lookup (decoding R would cost as much as the verification): the
    set, computed from one point of order 8, is the eight listed points and the two x = 0 spellings with the sign
    bit set; every one of them, and every y >= p spelling, is refused, and the R of real signatures is not."""
    assert small_order_encodings() == frozenset(
        {*SMALL_ORDER, IDENTITY[:31] + b"\x80", (P - 1).to_bytes(32, "little")[:31] + b"\xff"})
    for raw in (*small_order_encodings(), *NON_CANONICAL):
        assert not strict_r(raw), raw.hex()
    for seed in range(20):
        key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        assert strict_r(key.sign(b"alert %d" % seed)[:32])


def _affine_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Twisted Edwards addition in affine form (a = -1), written out apart from the code under test."""
    d = -121665 * pow(121666, P - 2, P) % P
    t = d * a[0] * b[0] * a[1] * b[1] % P
    x = (a[0] * b[1] + a[1] * b[0]) * pow(1 + t, P - 2, P) % P
    y = (a[1] * b[1] + a[0] * b[0]) * pow(1 - t, P - 2, P) % P
    return x, y


def _encode(point: tuple[int, int]) -> bytes:
    return (point[1] | ((point[0] & 1) << 255)).to_bytes(32, "little")


def _mixed(public: bytes, torsion: bytes) -> bytes:
    point, small = decode_point(public), decode_point(torsion)
    assert point is not None and small is not None
    return _encode(_affine_add(point, small))


@pytest.mark.parametrize("torsion", [t for t in SMALL_ORDER if t != IDENTITY and decode_point(t) is not None],
                         ids=lambda b: b.hex()[:8] + b.hex()[-2:])
def test_a_key_with_a_small_order_component_is_refused(torsion: bytes) -> None:
    """A real key's point plus a point of small order is neither of small order nor in the prime-order subgroup:
    such a "mixed-order" key is refused where keys enter, and by verification."""
    public = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key().public_bytes_raw()
    mixed = _mixed(public, torsion)
    point = decode_point(mixed)
    assert point is not None and on_curve(*point) and not has_small_order(*point)
    assert strong_point(public) and not strong_point(mixed)
    with pytest.raises(KeyMaterialError, match="small-order component"):
        check_ed25519_public("col-receipts", mixed)
    with pytest.raises(SignatureError, match="verify key"):
        verify_with_context(Ed25519PublicKey.from_public_bytes(mixed), CHECKPOINT_CONTEXT, b"x", bytes(64),
                            what="checkpoint")


def test_a_signature_openssl_accepts_under_a_mixed_order_key_is_refused() -> None:
    """Why mixed-order keys matter: under ``A + T`` (``T`` of order 8) the key owner's signature passes OpenSSL's
    cofactorless check only when the challenge ``k`` is a multiple of 8, and a cofactored verifier would accept it
    always; Puente refuses the key, so no signature under it counts, whichever check another auditor uses."""
    seed = bytes(range(32))
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    base_y = 4 * pow(5, P - 2, P) % P
    base = decode_point(base_y.to_bytes(32, "little"))
    assert base is not None
    base_point = (base[0], base[1], 1, base[0] * base[1] % P)
    order8 = next(t for t in SMALL_ORDER if (p := decode_point(t)) is not None and p[0] and p[1])
    mixed = _mixed(_encode(edwards._affine(edwards._times(base_point, scalar))), order8)
    for nonce in range(1, 400):
        r_bytes = _encode(edwards._affine(edwards._times(base_point, nonce)))
        message = b"\x00" + b"receipt %d" % nonce
        challenge = int.from_bytes(hashlib.sha512(r_bytes + mixed + CHECKPOINT_CONTEXT + message).digest(),
                                   "little") % L
        if challenge % 8 == 0:
            break
    else:
        pytest.fail("no challenge divisible by 8 in 400 tries")
    signature = r_bytes + ((nonce + challenge * scalar) % L).to_bytes(32, "little")
    key = Ed25519PublicKey.from_public_bytes(mixed)
    key.verify(signature, CHECKPOINT_CONTEXT + message)  # OpenSSL accepts it
    with pytest.raises(SignatureError):
        verify_with_context(key, CHECKPOINT_CONTEXT, message[1:], signature, what="checkpoint")
