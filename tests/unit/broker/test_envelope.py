"""Feed envelopes: round trips, data-key rotation, HPKE key blocks, and refusal of every wrong key or altered byte."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import broker.crypto.envelope as envelope
from broker.crypto.envelope import (
    KEY_BLOCK_SIGNATURE_CONTEXT,
    KEY_ID_LEN,
    MAGIC,
    NONCE_LEN,
    TAG_LEN,
    FeedOpener,
    FeedSealer,
    peek_key_block,
    record_aad,
)
from broker.crypto.signing import CHECKPOINT_CONTEXT, sign_with_context
from policies._model import HPKE_INFO_MAX, MAX_PARTNER_ID_BYTES
from puente.errors import CryptoError, DecryptionError, SignatureError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
FP = bytes.fromhex("0123456789abcdef")
PLAINTEXT = b"SECRET-PAYLOAD: passport X1234567, name Juan Perez"
CONTEXT = {"alert_id": "SNM:HIT-00000001", "topic": "puente.feed.COL", "schema_fp": FP, "policy_version": "2026.01-3",
           "agreement": "COMBIFRON"}


@dataclass(frozen=True)
class Keys:
    signing: Ed25519PrivateKey
    col: X25519PrivateKey
    usa: X25519PrivateKey

    def sealer(self, partner: str = "COL", **limits: object) -> FeedSealer:
        private = self.col if partner == "COL" else self.usa
        return FeedSealer(partner, private.public_key(), self.signing, **limits)  # type: ignore[arg-type]

    def opener(self, partner: str = "COL", private: X25519PrivateKey | None = None, **kw: int) -> FeedOpener:
        private = private or (self.col if partner == "COL" else self.usa)
        return FeedOpener(partner, private, self.signing.public_key(), **kw)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), X25519PrivateKey.generate())


@pytest.fixture(scope="module")
def record(keys: Keys) -> bytes:
    return keys.sealer().seal(PLAINTEXT, now=NOW, **CONTEXT)  # type: ignore[arg-type]


def seal(sealer: FeedSealer, plaintext: bytes = PLAINTEXT, now: datetime = NOW, **changes: object) -> bytes:
    return sealer.seal(plaintext, now=now, **{**CONTEXT, **changes})  # type: ignore[arg-type]


def open_(opener: FeedOpener, value: bytes, **changes: object) -> bytes:
    return opener.open(value, **{**CONTEXT, **changes})  # type: ignore[arg-type]


def block_of(value: bytes) -> tuple[bytes, bytes]:
    """The key block of a record, and everything after it."""
    end = 5 + int.from_bytes(value[3:5], "big")
    return value[5:end], value[end:]


def resign(
    keys: Keys, value: bytes, change: Callable[[bytearray], None], context: bytes = KEY_BLOCK_SIGNATURE_CONTEXT
) -> bytes:
    """The record with its key block changed by ``change`` and signed again with the broker's own key."""
    block, rest = block_of(value)
    body = bytearray(block[:-64])
    change(body)
    signed = bytes(body) + sign_with_context(keys.signing, context, bytes(body))
    return value[:3] + len(signed).to_bytes(2, "big") + signed + rest


def secret_forms(keys: Keys) -> list[str]:
    raw = keys.col.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return [PLAINTEXT.decode(), "Juan", raw.hex(), base64.b64encode(raw).decode()]


@settings(max_examples=100, deadline=None)
@given(plaintext=st.binary(max_size=4096), alert_id=st.text(max_size=100))
def test_round_trip(keys: Keys, plaintext: bytes, alert_id: str) -> None:
    """Any plaintext sealed for a partner under any alert id opens with that partner's key."""
    value = seal(keys.sealer(), plaintext, alert_id=alert_id)
    assert open_(keys.opener(), value, alert_id=alert_id) == plaintext


def test_layout_matches_the_docstring(keys: Keys, record: bytes) -> None:
    """A record is magic, version, key-block length, key block, 12-byte nonce, ciphertext and tag."""
    assert record[:2] == MAGIC and record[2] == 3
    block_len = int.from_bytes(record[3:5], "big")
    assert len(record) == 5 + block_len + NONCE_LEN + len(PLAINTEXT) + TAG_LEN
    block = peek_key_block(record)
    assert block_len == 2 + len("COL") + KEY_ID_LEN + 8 + 32 + 48 + 64
    assert (block.version, block.partner_id, block.created_at) == (2, "COL", NOW)
    assert len(block.key_id) == KEY_ID_LEN
    assert record[5:12] == b"\x02\x03COL" + block.key_id[:2]
    assert PLAINTEXT not in record


def test_data_key_is_an_hpke_seal_to_the_partner(keys: Keys, record: bytes) -> None:
    """The key block holds an HPKE (X25519, HKDF-SHA256, AES-256-GCM) seal of the key that opens the record."""
    block, rest = block_of(record)
    header_end = len(block) - 64 - 80
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    info = b"puente/feed-data-key/v2\x00" + block[:header_end]
    data_key = suite.decrypt(block[header_end:-64], keys.col, info=info)
    assert len(data_key) == 32
    aad = record_aad(partner_id="COL", key_id=peek_key_block(record).key_id, **CONTEXT)  # type: ignore[arg-type]
    assert AESGCM(data_key).decrypt(rest[:NONCE_LEN], rest[NONCE_LEN:], aad) == PLAINTEXT
    with pytest.raises(InvalidTag):
        suite.decrypt(block[header_end:-64], keys.col, info=info[:-1] + bytes([info[-1] ^ 1]))


def test_one_hpke_operation_per_data_key(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sealing and opening 25 records under 3 data keys takes 3 HPKE seals and 3 HPKE opens, no more."""
    calls: list[str] = []
    real = envelope._HPKE

    class Counting:
        def encrypt(self, *args: Any, **kwargs: Any) -> bytes:
            calls.append("seal")
            return real.encrypt(*args, **kwargs)

        def decrypt(self, *args: Any, **kwargs: Any) -> bytes:
            calls.append("open")
            return real.decrypt(*args, **kwargs)

    monkeypatch.setattr(envelope, "_HPKE", Counting())
    sealer, opener = keys.sealer(max_records=10), keys.opener()
    for i in range(25):
        open_(opener, seal(sealer, alert_id=str(i)), alert_id=str(i))
    assert calls == ["seal", "open"] * 3


def test_records_share_one_key_block_and_differ_in_nonce(keys: Keys) -> None:
    """Records under one data key carry the same key block but fresh nonces."""
    sealer = keys.sealer()
    first, second = seal(sealer), seal(sealer)
    block_end = 5 + int.from_bytes(first[3:5], "big")
    assert first[:block_end] == second[:block_end]
    assert first[block_end : block_end + NONCE_LEN] != second[block_end : block_end + NONCE_LEN]


def test_first_seal_creates_the_data_key(keys: Keys) -> None:
    """A new sealer has no data key until it seals its first record."""
    sealer = keys.sealer()
    assert sealer.key_id is None
    value = seal(sealer)
    assert sealer.key_id == peek_key_block(value).key_id
    assert sealer.records_under_key == 1


def test_rotation_after_max_records(keys: Keys) -> None:
    """After max_records records the sealer makes a new data key, and both keys' records open."""
    sealer = keys.sealer(max_records=3)
    values = [seal(sealer, alert_id=f"A{i}") for i in range(7)]
    ids = [peek_key_block(v).key_id for v in values]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert ids[3] == ids[4] == ids[5] != ids[6]
    opener = keys.opener()
    assert all(open_(opener, v, alert_id=f"A{i}") == PLAINTEXT for i, v in enumerate(values))


def test_rotation_after_max_age(keys: Keys) -> None:
    """A data key older than max_age is replaced on the next seal, judged by the now passed in."""
    sealer = keys.sealer(max_age=timedelta(hours=1))
    first = peek_key_block(seal(sealer, now=NOW)).key_id
    assert peek_key_block(seal(sealer, now=NOW + timedelta(minutes=59))).key_id == first
    later = seal(sealer, now=NOW + timedelta(hours=1))
    assert peek_key_block(later).key_id != first
    assert peek_key_block(later).created_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize("back", [timedelta(minutes=2), timedelta(days=3)])
def test_a_clock_set_back_before_the_keys_date_makes_a_new_key(keys: Keys, back: timedelta) -> None:
    """A key made while the clock ran ahead (corrected since) is not kept: every block it dates lies in the future,
    which partners refuse, until real time caught up with it. The first seal after the step makes a new key."""
    sealer = keys.sealer(max_age=timedelta(hours=1))
    ahead = peek_key_block(seal(sealer, now=NOW + back)).key_id
    corrected = peek_key_block(seal(sealer, now=NOW))
    assert corrected.key_id != ahead and corrected.created_at == NOW
    assert peek_key_block(seal(sealer, now=NOW + timedelta(minutes=1))).key_id == corrected.key_id
    # Times read a few moments apart (slots sealing concurrently) keep the key.
    assert peek_key_block(seal(sealer, now=NOW + timedelta(seconds=30))).key_id == corrected.key_id


def test_explicit_rotate(keys: Keys) -> None:
    """rotate() starts a new data key at once."""
    sealer = keys.sealer()
    seal(sealer)
    old = sealer.key_id
    assert sealer.rotate(NOW) != old
    assert sealer.records_under_key == 0


def test_opener_verifies_each_key_block_once(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key-block signature is checked once per data key, not once per record."""
    calls: list[int] = []
    real = envelope.verify_with_context

    def counting(*args: object, **kwargs: object) -> None:
        calls.append(1)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(envelope, "verify_with_context", counting)
    sealer, opener = keys.sealer(max_records=10), keys.opener()
    for i in range(25):
        open_(opener, seal(sealer, alert_id=str(i)), alert_id=str(i))
    assert len(calls) == 3


def test_key_cache_is_bounded(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The opener keeps at most cache_size data keys and verifies again after eviction."""
    calls: list[int] = []
    real = envelope.verify_with_context
    monkeypatch.setattr(envelope, "verify_with_context", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    sealer, opener = keys.sealer(max_records=1), keys.opener(cache_size=2)
    values = [seal(sealer) for _ in range(3)]
    for value in values:
        open_(opener, value)
    assert len(opener._cache) == 2
    open_(opener, values[0])
    assert len(calls) == 4


def test_other_partner_cannot_open(keys: Keys, record: bytes) -> None:
    """USA's opener refuses a record of COL's feed as not encrypted for its key."""
    with pytest.raises(DecryptionError, match="not encrypted for this key") as info:
        open_(keys.opener("USA"), record)
    assert "'COL'" in str(info.value)


def test_wrong_private_key_cannot_unwrap(keys: Keys, record: bytes) -> None:
    """An opener for COL holding another private key cannot unwrap COL's data key."""
    with pytest.raises(DecryptionError, match="does not unwrap") as info:
        open_(keys.opener("COL", private=keys.usa), record)
    for form in secret_forms(keys):
        assert form not in str(info.value)


def test_forged_key_block_signature_fails(keys: Keys) -> None:
    """A record whose key block is signed by a key other than the broker's raises SignatureError."""
    forger = FeedSealer("COL", keys.col.public_key(), Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match="feed key block"):
        open_(keys.opener(), seal(forger))


KEY_BLOCK_V1 = b"puente/feed-key-block/v1"  # the label of format 1, which nothing signs any more


@pytest.mark.parametrize("context", [KEY_BLOCK_V1, CHECKPOINT_CONTEXT], ids=["key-block-v1", "checkpoint"])
def test_key_block_signed_under_another_label_fails(keys: Keys, record: bytes, context: bytes) -> None:
    """The broker's own signature over a key block under the v1 key-block label or the checkpoint label is refused."""
    assert context != KEY_BLOCK_SIGNATURE_CONTEXT
    with pytest.raises(SignatureError, match="feed key block"):
        open_(keys.opener(), resign(keys, record, lambda body: None, context))


def test_version_1_key_block_is_refused_even_when_signed(keys: Keys, record: bytes) -> None:
    """A key block marked version 1 is refused by version, even under a valid broker signature: no fallback."""

    def old(body: bytearray) -> None:
        body[0] = 1

    with pytest.raises(DecryptionError, match="key block has unsupported version 1"):
        open_(keys.opener(), resign(keys, record, old))


@pytest.mark.parametrize(
    ("offset", "opener_partner"),
    [(4, "COX"), (6, "COL"), (5 + KEY_ID_LEN + 7, "COL")],
    ids=["partner-id", "key-id", "created-at"],
)
def test_unwrap_rejects_a_header_changed_and_resigned(
    keys: Keys, record: bytes, offset: int, opener_partner: str
) -> None:
    """A header byte changed and signed again by the broker's key still fails the unwrap: HPKE info holds it."""

    def change(body: bytearray) -> None:
        body[offset] = ord("X") if opener_partner == "COX" else body[offset] ^ 1

    resigned = resign(keys, record, change)
    assert open_(keys.opener(), resign(keys, record, lambda body: None)) == PLAINTEXT
    with pytest.raises(DecryptionError, match="does not unwrap"):
        open_(keys.opener(opener_partner, private=keys.col), resigned)


def test_spliced_key_block_fails(keys: Keys) -> None:
    """A genuine key block glued to a ciphertext made under another data key does not open."""
    a, b = seal(keys.sealer()), seal(keys.sealer())
    split = 5 + int.from_bytes(a[3:5], "big")
    with pytest.raises(DecryptionError, match="does not decrypt"):
        open_(keys.opener(), a[:split] + b[split:])


def test_every_flipped_bit_fails(keys: Keys) -> None:
    """Flipping a bit at any byte of a record makes open fail with a CryptoError, never wrong plaintext."""
    value = seal(keys.sealer(), b"short")
    opener = keys.opener()
    for i in range(len(value)):
        for bit in (0, 7):
            tampered = bytearray(value)
            tampered[i] ^= 1 << bit
            with pytest.raises(CryptoError):
                open_(opener, bytes(tampered))


def test_every_truncation_and_extension_fails(keys: Keys, record: bytes) -> None:
    """A record cut at any length, or with a byte appended, does not open."""
    opener = keys.opener()
    for end in range(len(record)):
        with pytest.raises(DecryptionError):
            open_(opener, record[:end])
    with pytest.raises(DecryptionError):
        open_(opener, record + b"\x00")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alert_id", "SNM:HIT-00000002"),
        ("topic", "puente.feed.USA"),
        ("schema_fp", bytes.fromhex("0123456789abcdee")),
        ("schema_fp", FP[:7]),
        ("policy_version", "2026.01-4"),
        ("agreement", "PAN-USA"),  # the header the partner's store takes the alert's retention from
        ("agreement", ""),
    ],
)
def test_wrong_associated_data_fails(keys: Keys, record: bytes, field: str, value: object) -> None:
    """Opening with a different alert id, topic, schema fingerprint, policy version or agreement fails."""
    with pytest.raises(DecryptionError, match="do not match") as info:
        open_(keys.opener(), record, **{field: value})
    for form in secret_forms(keys):
        assert form not in str(info.value)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda v: b"XX" + v[2:], "magic"),
        (lambda v: v[:2] + b"\x01" + v[3:], "unsupported format version 1; this reader opens version 3"),
        (lambda v: v[:2] + b"\x02" + v[3:], "unsupported format version 2; this reader opens version 3"),
        (lambda v: v[:2] + b"\x04" + v[3:], "unsupported format version 4"),
        (lambda v: v[:5] + b"\x07" + v[6:], "key block has unsupported version 7"),
        (lambda v: v[:3] + b"\x00\x10" + v[5:], "key block is malformed"),
        (lambda v: v[:4], "truncated"),
    ],
)
def test_bad_framing_is_named(keys: Keys, record: bytes, mangle: Callable[[bytes], bytes], message: str) -> None:
    """Bad magic, versions, lengths and truncation each give a DecryptionError saying which."""
    with pytest.raises(DecryptionError, match=message):
        open_(keys.opener(), mangle(record))


def test_error_messages_never_hold_plaintext_or_keys(keys: Keys, record: bytes) -> None:
    """No error raised while opening shows the plaintext or the partner's private key."""
    opener = keys.opener()
    attempts = [record[:-1] + bytes([record[-1] ^ 1]), record[:40], b"PF" + record[2:3] + b"\xff\xff" + record[5:]]
    for attempt in attempts:
        with pytest.raises(CryptoError) as info:
            open_(opener, attempt)
        for form in secret_forms(keys):
            assert form not in str(info.value)


def test_caller_mistakes_raise_value_error(keys: Keys) -> None:
    """A naive now, a fingerprint that is not 8 bytes or silly limits are caller bugs: ValueError."""
    with pytest.raises(ValueError, match="timezone"):
        seal(keys.sealer(), now=datetime(2026, 1, 5))
    with pytest.raises(ValueError, match="8 bytes"):
        seal(keys.sealer(), schema_fp=b"short")
    with pytest.raises(ValueError, match="max_records"):
        keys.sealer(max_records=0)
    with pytest.raises(ValueError, match="partner id"):
        FeedSealer("", keys.col.public_key(), keys.signing)


@settings(max_examples=100, deadline=None)
@given(a=st.text(max_size=8), b=st.text(max_size=8), c=st.text(max_size=8), d=st.text(max_size=8))
def test_associated_data_is_unambiguous(a: str, b: str, c: str, d: str) -> None:
    """Two different (alert id, topic, policy version, agreement) tuples never give the same associated data."""
    common = {"partner_id": "COL", "schema_fp": FP, "key_id": bytes(16)}
    first = record_aad(alert_id=a, topic=b, policy_version=c, agreement=d, **common)  # type: ignore[arg-type]
    second = record_aad(alert_id=a + b, topic=c, policy_version=d, agreement="", **common)  # type: ignore[arg-type]
    assert (first == second) == ((a, b, c, d) == (a + b, c, d, ""))


# ---- key rotation: an opener holding several generations -------------------------------------


def test_records_sealed_to_either_generation_of_the_partners_key_open(keys: Keys) -> None:
    """After COL's key rotates, the backlog sealed to the old key and new records sealed to the new one both open
    with one opener holding both generations, whichever order they come in."""
    new = X25519PrivateKey.generate()
    old_record = seal(keys.sealer(), alert_id="old")
    new_record = seal(FeedSealer("COL", new.public_key(), keys.signing), alert_id="new")
    opener = FeedOpener("COL", {"COL-enc-2026b": new, "COL-enc-2026a": keys.col}, keys.signing.public_key())
    for value, alert_id in ((old_record, "old"), (new_record, "new"), (old_record, "old")):
        assert open_(opener, value, alert_id=alert_id) == PLAINTEXT
    assert opener.key_ids == ("COL-enc-2026b", "COL-enc-2026a")


def test_a_block_sealed_to_a_generation_not_held_names_the_keys_tried(keys: Keys, record: bytes) -> None:
    """A record sealed to a key the opener does not hold stays refused (fail closed); the error names the key ids
    it tried and when the key block was made, so the reader knows which generation to load, and no secret."""
    opener = FeedOpener("COL", {"COL-enc-2026b": X25519PrivateKey.generate(), "COL-enc-2026c": keys.usa},
                        keys.signing.public_key())
    with pytest.raises(DecryptionError, match="does not unwrap") as info:
        open_(opener, record)
    message = str(info.value)
    assert "COL-enc-2026b, COL-enc-2026c" in message and "2026-01-05T10:00:00Z" in message
    assert "load the generation of COL's decryption key" in message
    for form in secret_forms(keys):
        assert form not in message


def test_key_blocks_signed_by_either_generation_of_the_brokers_key_verify(keys: Keys) -> None:
    """After the broker's signing key rotates, blocks signed by the old key (the backlog) and by the new one both
    verify with an opener holding both generations, current first."""
    new_signing = Ed25519PrivateKey.generate()
    old_record = seal(keys.sealer(), alert_id="old")
    new_record = seal(FeedSealer("COL", keys.col.public_key(), new_signing), alert_id="new")
    verify = {"broker-sign-2026b": new_signing.public_key(), "broker-sign-2026a": keys.signing.public_key()}
    opener = FeedOpener("COL", keys.col, verify)
    for value, alert_id in ((old_record, "old"), (new_record, "new")):
        assert open_(opener, value, alert_id=alert_id) == PLAINTEXT


def test_a_block_no_broker_key_held_signed_is_refused_naming_the_keys(keys: Keys) -> None:
    """Holding several broker keys is no looser: a block signed by any other key is refused, naming the keys held."""
    forger = FeedSealer("COL", keys.col.public_key(), Ed25519PrivateKey.generate())
    verify = {"broker-sign-2026b": Ed25519PrivateKey.generate().public_key(),
              "broker-sign-2026a": keys.signing.public_key()}
    with pytest.raises(SignatureError, match="any of the 2 broker signing keys held") as info:
        open_(FeedOpener("COL", keys.col, verify), seal(forger))
    assert "broker-sign-2026b, broker-sign-2026a" in str(info.value)


def test_several_broker_keys_still_verify_each_key_block_once(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the old key listed second, its first block costs two checks, its next ones one (the key that verified
    last is tried first), and a block seen before none: the cache is per block, as with one key."""
    calls: list[int] = []
    real = envelope.verify_with_context
    monkeypatch.setattr(envelope, "verify_with_context", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    verify = {"broker-sign-2026b": Ed25519PrivateKey.generate().public_key(),
              "broker-sign-2026a": keys.signing.public_key()}
    sealer, opener = keys.sealer(max_records=10), FeedOpener("COL", keys.col, verify)
    for i in range(25):
        open_(opener, seal(sealer, alert_id=str(i)), alert_id=str(i))
    assert len(calls) == 2 + 1 + 1


def test_an_opener_needs_at_least_one_key_of_each_kind(keys: Keys) -> None:
    """An empty set of partner keys or broker keys is a caller bug, not an opener that refuses everything later."""
    with pytest.raises(ValueError, match="partner_private_key"):
        FeedOpener("COL", {}, keys.signing.public_key())
    with pytest.raises(ValueError, match="broker_verify_key"):
        FeedOpener("COL", keys.col, {})


def test_the_sealer_keeps_hpke_info_within_rfc_9180s_64_bytes(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The longest partner id the policy takes seals with an info of at most 64 bytes and opens; one byte more, which
    the policy refuses, is refused by the sealer too (a backstop), while a reader still takes what p can say."""
    infos: list[int] = []
    real = envelope._HPKE

    class Measuring:
        def encrypt(self, *args: Any, info: bytes, **kwargs: Any) -> bytes:
            infos.append(len(info))
            return real.encrypt(*args, info=info, **kwargs)

        def decrypt(self, *args: Any, **kwargs: Any) -> bytes:
            return real.decrypt(*args, **kwargs)

    monkeypatch.setattr(envelope, "_HPKE", Measuring())
    longest = "P" * MAX_PARTNER_ID_BYTES
    sealer = FeedSealer(longest, keys.col.public_key(), keys.signing)
    value = seal(sealer)
    assert infos == [HPKE_INFO_MAX]
    assert open_(keys.opener(longest, private=keys.col), value) == PLAINTEXT
    with pytest.raises(ValueError, match="RFC 9180"):
        FeedSealer(longest + "P", keys.col.public_key(), keys.signing)
    FeedOpener("P" * 255, keys.col, keys.signing.public_key())
