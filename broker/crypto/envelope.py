"""Envelope encryption of partner feed records: AES-256-GCM data keys sealed to the partner with HPKE.

Why this shape: a public-key operation per record (Ed25519 sign about 46k/s, X25519 about
39k/s on one core here) would cap the broker far below Kafka's own pace, while AES-GCM of
1 KiB runs at about 1.5M/s. So a ``FeedSealer`` keeps one data key per partner, seals it to
the partner's X25519 key with HPKE and signs that key block once, and replaces the data key
after ``max_records`` records or ``max_age``, whichever comes first. Every record carries the
signed key block, so any single record can be opened on its own (after a restart, a
compaction, or when read out of order); the ``FeedOpener`` verifies and unwraps each key
block once and caches the result. docs/feed-format.md describes the format for a partner
reading its feed in another language; docs/feed-vectors.json holds fixed test vectors.

Record layout (integers big-endian)::

    offset  size  field
    0       2     magic b"PF" (Puente Feed)
    2       1     record format version, 3
    3       2     L, length of the key block
    5       L     key block (below), the same bytes on every record under one data key
    5+L     12    nonce, random per record
    17+L    n+16  AES-256-GCM ciphertext of the plaintext, then its 16-byte tag

Key block layout, version 2 (the first five fields, 26 + p bytes, are its header)::

    size  field
    1     key block version, 2
    1     p, length of the partner id (1..255; the broker writes at most 14: HPKE's info below)
    p     partner id, UTF-8
    16    key id, random
    8     created_at, microseconds since 1970-01-01T00:00Z, signed
    32    HPKE enc: the encapsulated key (an ephemeral X25519 public key)
    48    HPKE ciphertext: the 32-byte data key sealed, then its 16-byte tag
    64    Ed25519 signature by the broker over the context label
          b"puente/feed-key-block/v2", a NUL, and every key-block byte before it

The data key is sealed with HPKE (RFC 9180), single-shot, Base mode, suite
DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (ids 0x0020, 0x0001, 0x0002), to the
partner's X25519 public key, with info = b"puente/feed-data-key/v2", a NUL, then the key-block
header (so at most 64 bytes, RFC 9180's bound for what every library takes: a partner id of at most 14
bytes), and an empty AAD. The header travels in ``info`` rather than in the AAD because
``cryptography``'s single-shot HPKE API takes no AAD (as RFC 9180 section 8.1 advises for
single-shot use); either way the partner's unwrap alone rejects a header altered in any byte,
even one re-signed by the broker's key.

The record's associated data is b"puente/feed-record/v2" NUL then, each as a 4-byte length
and the bytes: partner id (UTF-8), key id (16 bytes), topic (UTF-8), schema fingerprint
(8 bytes), policy version (UTF-8), agreement id (UTF-8; empty for a recall notice), alert id
(UTF-8). A record moved to another alert, partner, topic, schema, policy version or
agreement does not open. The agreement entered with record format 3 (label v2): the partner's
store keeps an alert for the retention of the agreement that delivered it, so the
``puente-agreement`` header it reads that from must be the broker's. The alert id comes last
so the rest, the same for many records, is built once and cached.

Random 96-bit nonces are safe here: a data key seals at most ``max_records`` (default
100,000) records, far below the 2**32 that NIST SP 800-38D allows per key.

Errors: bad framing, any version other than the current one (format 1, from before HPKE, and
format 2, whose agreement was not authenticated, included: there is no fallback), a key block
for another partner or that none of the opener's private keys can unwrap, altered ciphertext and
mismatched associated data raise DecryptionError; a key block whose signature verifies under
none of the opener's broker keys raises SignatureError. Messages never include
plaintext or key bytes. ``open_verified`` also says which of the broker's keys verified the key block
(``Opened.signer``) and when the block was made: the reader judges whether that key was still the
broker's to sign with then (a generation the broker had moved on from is a retired key in use), and
whether the time is plausible (this module has no clock). Sealers and openers are not thread-safe: use one per task.

Pure: no I/O and no clock (``seal`` takes ``now``); randomness comes from ``os.urandom`` and,
for the HPKE ephemeral key, from the library.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.crypto.signing import KEY_BLOCK_CONTEXT, SIGNATURE_LEN, sign_with_context, verify_with_context

# The data key's HPKE info label and RFC 9180's bound on info, from the layer below, where the policy bounds partner
# ids by them (``MAX_PARTNER_ID_BYTES``). Their module until ``policies`` names them among its public names.
from policies import FEED_INFO_LABEL, HPKE_INFO_MAX
from puente.errors import DecryptionError, SignatureError

MAGIC = b"PF"
FORMAT_VERSION = 3
KEY_BLOCK_VERSION = 2
KEY_ID_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
SCHEMA_FP_LEN = 8
DATA_KEY_LEN = 32
ENC_LEN = 32  # HPKE Nenc for DHKEM(X25519, HKDF-SHA256)
WRAPPED_LEN = DATA_KEY_LEN + TAG_LEN
DEFAULT_MAX_RECORDS = 100_000
DEFAULT_MAX_AGE = timedelta(hours=1)

# The label the broker signs key blocks under, kept beside the other signature labels.
KEY_BLOCK_SIGNATURE_CONTEXT = KEY_BLOCK_CONTEXT
HPKE_INFO_LABEL = FEED_INFO_LABEL
RECORD_AAD_LABEL = b"puente/feed-record/v2"

_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_HEAD = struct.Struct(">2sBH")
_CREATED = struct.Struct(">q")
_LEN = struct.Struct(">I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEADER_FIXED = 2 + KEY_ID_LEN + _CREATED.size  # the key-block header without the partner id
_INFO_PREFIX = HPKE_INFO_LABEL + b"\x00"
_AAD_LABEL = RECORD_AAD_LABEL + b"\x00"
_K = TypeVar("_K", X25519PrivateKey, Ed25519PublicKey)
_AAD_CACHE = 256  # distinct (key, topic, schema, policy) prefixes kept; a handful in practice


def _lp(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


def _partner_bytes(partner_id: str) -> bytes:
    raw = partner_id.encode("utf-8")
    if not 1 <= len(raw) <= 255:
        raise ValueError("partner id must be 1 to 255 bytes of UTF-8")
    return raw


def _sealable_partner(partner_id: str) -> bytes:
    """``_partner_bytes``, refused (ValueError) when the key blocks' HPKE info would pass ``HPKE_INFO_MAX`` bytes,
    RFC 9180's bound for what every library takes: a backstop, since the policy refuses such an id when it loads."""
    raw = _partner_bytes(partner_id)
    if len(_INFO_PREFIX) + _HEADER_FIXED + len(raw) > HPKE_INFO_MAX:
        raise ValueError(f"partner id is {len(raw)} bytes: the HPKE info of its key blocks would be "
                         f"{len(_INFO_PREFIX) + _HEADER_FIXED + len(raw)} bytes, past the {HPKE_INFO_MAX} every HPKE "
                         "library takes (RFC 9180, section 7.2.1)")
    return raw


def _aad_prefix(partner: bytes, key_id: bytes, topic: str, schema_fp: bytes, policy_version: str,
                agreement: str) -> bytes:
    return b"".join(
        (
            _AAD_LABEL,
            _lp(partner),
            _lp(key_id),
            _lp(topic.encode("utf-8")),
            _lp(schema_fp),
            _lp(policy_version.encode("utf-8")),
            _lp(agreement.encode("utf-8")),
        )
    )


def record_aad(
    *, alert_id: str, partner_id: str, topic: str, schema_fp: bytes, policy_version: str, key_id: bytes,
    agreement: str,
) -> bytes:
    """The associated data a record is sealed under (see the module docstring)."""
    prefix = _aad_prefix(partner_id.encode("utf-8"), key_id, topic, schema_fp, policy_version, agreement)
    return prefix + _lp(alert_id.encode("utf-8"))


@dataclass(frozen=True)
class KeyBlock:
    """A parsed key block. ``peek_key_block`` returns one unverified; trust it only after ``open``.

    ``ephemeral_public`` is the HPKE enc and ``wrapped_key`` the HPKE ciphertext of the data key.
    """

    version: int
    partner_id: str
    key_id: bytes
    created_at: datetime
    ephemeral_public: bytes
    wrapped_key: bytes
    signature: bytes


def _parse_key_block(block: bytes) -> KeyBlock:
    if len(block) < 2:
        raise DecryptionError("feed record key block is truncated")
    if block[0] != KEY_BLOCK_VERSION:
        raise DecryptionError(
            f"feed record key block has unsupported version {block[0]}; this reader opens version {KEY_BLOCK_VERSION}"
        )
    p = block[1]
    expected = _HEADER_FIXED + p + ENC_LEN + WRAPPED_LEN + SIGNATURE_LEN
    if p == 0 or len(block) != expected:
        raise DecryptionError(f"feed record key block is malformed: {len(block)} bytes, expected {expected}")
    try:
        partner_id = block[2 : 2 + p].decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("feed record key block names a partner id that is not UTF-8") from None
    pos = 2 + p
    key_id = block[pos : pos + KEY_ID_LEN]
    pos += KEY_ID_LEN
    (micros,) = _CREATED.unpack_from(block, pos)
    pos += _CREATED.size
    try:
        created_at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise DecryptionError("feed record key block has an impossible created_at") from None
    enc = block[pos : pos + ENC_LEN]
    pos += ENC_LEN
    wrapped = block[pos : pos + WRAPPED_LEN]
    pos += WRAPPED_LEN
    return KeyBlock(block[0], partner_id, key_id, created_at, enc, wrapped, block[pos:])


def _split(value: bytes) -> tuple[bytes, int]:
    """The key block bytes and the offset of the nonce, after checking the framing."""
    if len(value) < _HEAD.size:
        raise DecryptionError(f"feed record is truncated: {len(value)} bytes")
    magic, version, block_len = _HEAD.unpack_from(value)
    if magic != MAGIC:
        raise DecryptionError("not a Puente feed record: the magic bytes are wrong")
    if version != FORMAT_VERSION:
        raise DecryptionError(
            f"feed record has unsupported format version {version}; this reader opens version {FORMAT_VERSION}"
        )
    end = _HEAD.size + block_len
    if len(value) < end + NONCE_LEN + TAG_LEN:
        raise DecryptionError(f"feed record is truncated: {len(value)} bytes")
    return value[_HEAD.size : end], end


def peek_key_block(value: bytes) -> KeyBlock:
    """The key block of a sealed record, parsed but NOT verified: for logs, receipts and tests."""
    block, _ = _split(value)
    return _parse_key_block(block)


_STEP_BACK = timedelta(minutes=1)
"""How far the clock may read before a data key's date before the key is replaced (``FeedSealer.seal``)."""


class FeedSealer:
    """Seals one partner's feed records under a data key it rotates by count and age."""

    def __init__(
        self,
        partner_id: str,
        partner_public_key: X25519PublicKey,
        signing_key: Ed25519PrivateKey,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        self._partner = _sealable_partner(partner_id)
        self._partner_id = partner_id
        self._partner_key = partner_public_key
        self._signing_key = signing_key
        self._max_records = max_records
        self._max_age = max_age
        self._aead: AESGCM | None = None
        self._key_id = b""
        self._count = 0
        self._head = b""
        self._expires_at = _EPOCH
        self._made_at = _EPOCH
        self._prefixes: dict[tuple[str, bytes, str, str], bytes] = {}

    @property
    def partner_id(self) -> str:
        """The partner whose feed this sealer encrypts."""
        return self._partner_id

    @property
    def key_id(self) -> bytes | None:
        """The current data key's id, or None before the first record."""
        return self._key_id if self._aead is not None else None

    @property
    def records_under_key(self) -> int:
        """How many records the current data key has sealed."""
        return self._count

    def rotate(self, now: datetime) -> bytes:
        """Start a new data key now (e.g. after the partner's public key changed); return its id."""
        self._new_data_key(now)
        return self._key_id

    def _new_data_key(self, now: datetime) -> AESGCM:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        data_key = AESGCM.generate_key(bit_length=256)
        key_id = os.urandom(KEY_ID_LEN)
        micros = (now - _EPOCH) // timedelta(microseconds=1)
        header = b"".join(
            (bytes((KEY_BLOCK_VERSION, len(self._partner))), self._partner, key_id, _CREATED.pack(micros))
        )
        # One HPKE operation per data key; its output is enc || ciphertext, 32 + 48 bytes.
        body = header + _HPKE.encrypt(data_key, self._partner_key, info=_INFO_PREFIX + header)
        block = body + sign_with_context(self._signing_key, KEY_BLOCK_SIGNATURE_CONTEXT, body)
        self._aead = aead = AESGCM(data_key)
        self._key_id = key_id
        self._count = 0
        self._head = _HEAD.pack(MAGIC, FORMAT_VERSION, len(block)) + block
        self._expires_at = now + self._max_age
        self._made_at = now
        self._prefixes = {}
        return aead

    def seal(
        self, plaintext: bytes, *, alert_id: str, topic: str, schema_fp: bytes, policy_version: str,
        agreement: str, now: datetime,
    ) -> bytes:
        """Encrypt ``plaintext`` for this partner, bound to the alert, topic, schema, policy version and
        agreement (empty for a recall notice)."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        aead = self._aead
        # The age is judged from the caller's clock. A key made while it ran ahead (a bad time source, since
        # corrected) would go on dating every key block in the future, which partners refuse as a forged date
        # (``broker.partner.future_key_block``) until real time caught up: a clock now before the key's date
        # makes a new one (a minute's leeway: slots of a worker seal with times read a few moments apart).
        if (aead is None or self._count >= self._max_records or now >= self._expires_at
                or now < self._made_at - _STEP_BACK):
            aead = self._new_data_key(now)
        context = (topic, schema_fp, policy_version, agreement)
        prefix = self._prefixes.get(context)
        if prefix is None:
            if len(schema_fp) != SCHEMA_FP_LEN:
                raise ValueError(f"schema_fp must be {SCHEMA_FP_LEN} bytes")
            if len(self._prefixes) >= _AAD_CACHE:
                self._prefixes.clear()
            prefix = self._prefixes[context] = _aad_prefix(self._partner, self._key_id, *context)
        self._count += 1
        alert = alert_id.encode("utf-8")
        aad = prefix + _LEN.pack(len(alert)) + alert
        nonce = os.urandom(NONCE_LEN)
        return b"".join((self._head, nonce, aead.encrypt(nonce, plaintext, aad)))


@dataclass(frozen=True, slots=True)
class Opened:
    """A record ``FeedOpener.open_verified`` opened: its plaintext, and what its key block says, verified."""

    plaintext: bytes
    signer: str | None
    """The id of the broker key its key block verified under, as the opener was given it (None: one unnamed key)."""
    created_at: datetime
    """The key block's created_at: when the broker made the data key, by its clock (the signature covers it)."""


PartnerKeys: TypeAlias = X25519PrivateKey | Mapping[str, X25519PrivateKey]
"""What ``FeedOpener`` decrypts with: one private key, or every generation held, by key id."""
BrokerKeys: TypeAlias = Ed25519PublicKey | Mapping[str, Ed25519PublicKey]
"""What ``FeedOpener`` verifies with: the broker's public signing key, or every generation held, by key id."""


@dataclass(frozen=True, slots=True)
class _Unwrapped:
    """A key block verified and unwrapped, as ``FeedOpener`` caches it by the block's exact bytes."""

    key_id: bytes
    aead: AESGCM
    signer: str | None
    created_at: datetime


def _named(keys: Mapping[str, _K], what: str) -> list[tuple[str | None, _K]]:
    if not isinstance(keys, Mapping) or not keys:
        raise ValueError(f"{what} must be a key or a non-empty mapping of key id to key")
    return list(keys.items())


class FeedOpener:
    """Verifies and decrypts one partner's feed records with the partner's private key(s).

    Key rotation on either side must not strand records already in the feed, so an opener may
    hold several generations of each kind of key:

    - ``partner_private_key``: one X25519 private key, or every generation of the partner's own
      decryption keys it holds, by key id. A key block does not say which of the partner's keys
      its data key was sealed to (its key id names the data key; the format stays as it is so
      records already written still open), so the unwrap tries each, the one that unwrapped the
      last key block first, then in the order given (give the current one first). A wrong key
      costs one failed X25519 operation per data key, not per record. A block none of them
      unwraps raises DecryptionError naming the key ids tried and when the block was made:
      fail closed, and the reader knows which generation to load.
    - ``broker_verify_key``: the broker's Ed25519 public key, or every generation of the broker's
      signing keys it holds, by key id. The key block does not name its signer either, so it
      must verify under one of them (the one that verified the last key block first, then the
      order given); a block none of them verifies raises SignatureError. Only the broker's own
      signing keys belong here: any key given may sign for the broker. Which one verified is
      ``Opened.signer`` (``open_verified``): holding a retired generation, to read the records it
      signed, must not let it sign new ones, and only the reader, which knows what it read before,
      can tell (``broker.partner``).

    Each key block is verified and unwrapped once and the result cached by its exact bytes, so
    the extra generations cost nothing per record.
    """

    def __init__(
        self,
        partner_id: str,
        partner_private_key: PartnerKeys,
        broker_verify_key: BrokerKeys,
        *,
        cache_size: int = 64,
    ) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self._partner = _partner_bytes(partner_id)
        self._partner_id = partner_id
        self._privates: list[tuple[str | None, X25519PrivateKey]] = (
            [(None, partner_private_key)] if isinstance(partner_private_key, X25519PrivateKey)
            else _named(partner_private_key, "partner_private_key"))
        self._verify_keys: list[tuple[str | None, Ed25519PublicKey]] = (
            [(None, broker_verify_key)] if isinstance(broker_verify_key, Ed25519PublicKey)
            else _named(broker_verify_key, "broker_verify_key"))
        self._key_ids = tuple(label for label, _ in self._privates if label is not None)
        self._cache_size = cache_size
        # Keyed by the exact key-block bytes, not the key id alone, so a block altered in any
        # byte (even one that keeps the id) is verified afresh rather than served from cache.
        self._cache: OrderedDict[bytes, _Unwrapped] = OrderedDict()
        self._prefixes: dict[tuple[bytes, str, bytes, str, str], bytes] = {}

    @property
    def partner_id(self) -> str:
        """The partner whose feed this opener decrypts."""
        return self._partner_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the partner's private keys this opener holds, as given (empty for one unnamed key)."""
        return self._key_ids

    def _verify(self, signed: bytes, signature: bytes) -> str | None:
        """The id of the broker's key held that the block verifies under (None: the one unnamed key); that key is
        tried first next time."""
        failed: list[SignatureError] = []
        for i, (label, key) in enumerate(self._verify_keys):
            try:
                verify_with_context(key, KEY_BLOCK_SIGNATURE_CONTEXT, signed, signature, what="feed key block")
            except SignatureError as exc:
                failed.append(exc)
                continue
            if i:
                self._verify_keys.insert(0, self._verify_keys.pop(i))
            return label
        if len(failed) == 1:
            raise failed[0]
        held = ", ".join(label or "?" for label, _ in self._verify_keys)
        raise SignatureError(
            f"feed key block signature does not verify with any of the {len(self._verify_keys)} broker signing keys "
            f"held ({held}): forged, altered or signed by another key") from failed[0]

    def _unwrap(self, sealed: bytes, info: bytes, block: KeyBlock) -> bytes:
        """The data key, unwrapped with whichever private key held it was sealed to."""
        for i, (_, private) in enumerate(self._privates):
            try:
                data_key = _HPKE.decrypt(sealed, private, info=info)
            except (InvalidTag, ValueError):
                continue
            if i:
                self._privates.insert(0, self._privates.pop(i))
            return data_key
        if self._privates[0][0] is None:
            raise DecryptionError(
                f"record is not encrypted for this key: the data key does not unwrap with partner "
                f"{self._partner_id!r}'s private key"
            )
        held = ", ".join(sorted(label for label, _ in self._privates if label is not None))
        raise DecryptionError(
            f"record is not encrypted for any key held: the data key (key block made "
            f"{block.created_at.isoformat().replace('+00:00', 'Z')}) does not unwrap with partner "
            f"{self._partner_id!r}'s private key(s) {held}: load the generation of {self._partner_id}'s "
            "decryption key it was sealed to (the one the broker's policy named when it was made)"
        )

    def _data_key(self, block_bytes: bytes) -> _Unwrapped:
        hit = self._cache.get(block_bytes)
        if hit is not None:
            self._cache.move_to_end(block_bytes)
            return hit
        block = _parse_key_block(block_bytes)
        signed = block_bytes[:-SIGNATURE_LEN]
        signer = self._verify(signed, block.signature)
        if block.partner_id != self._partner_id:
            raise DecryptionError(
                f"record is not encrypted for this key: its key block is for partner {block.partner_id[:40]!r}, "
                f"this opener is for {self._partner_id!r}"
            )
        header_end = len(signed) - ENC_LEN - WRAPPED_LEN
        data_key = self._unwrap(signed[header_end:], _INFO_PREFIX + signed[:header_end], block)
        entry = _Unwrapped(block.key_id, AESGCM(data_key), signer, block.created_at)
        self._cache[block_bytes] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    def open(self, value: bytes, *, alert_id: str, topic: str, schema_fp: bytes, policy_version: str,
             agreement: str) -> bytes:
        """The plaintext of a sealed record, if it verifies for exactly these alert, topic, schema, policy
        and agreement."""
        return self.open_verified(value, alert_id=alert_id, topic=topic, schema_fp=schema_fp,
                                  policy_version=policy_version, agreement=agreement).plaintext

    def open_verified(self, value: bytes, *, alert_id: str, topic: str, schema_fp: bytes, policy_version: str,
                      agreement: str) -> Opened:
        """``open``, with the id of the broker key that verified the record's key block and the block's
        created_at: whether that key was still the broker's to sign with, the caller judges (class docstring)."""
        block_bytes, pos = _split(value)
        unwrapped = self._data_key(block_bytes)
        key_id, aead = unwrapped.key_id, unwrapped.aead
        context = (key_id, topic, schema_fp, policy_version, agreement)
        prefix = self._prefixes.get(context)
        if prefix is None:
            if len(self._prefixes) >= _AAD_CACHE:
                self._prefixes.clear()
            prefix = self._prefixes[context] = _aad_prefix(self._partner, *context)
        alert = alert_id.encode("utf-8")
        aad = prefix + _LEN.pack(len(alert)) + alert
        try:
            plaintext = aead.decrypt(value[pos : pos + NONCE_LEN], value[pos + NONCE_LEN :], aad)
        except InvalidTag as exc:
            raise DecryptionError(
                "record does not decrypt: its ciphertext was altered, or the alert id, topic, schema "
                "fingerprint, policy version or agreement given do not match the ones it was sealed with"
            ) from exc
        return Opened(plaintext, unwrapped.signer, unwrapped.created_at)
