"""Puente's cryptographic core: keys, feed envelopes, ingress origin and checkpoint signatures.

Who calls what::

    agency adapter     sign_ingress(agency, key_id, mac_key, value, alert_id) -> Kafka headers
    broker worker      verify_ingress(headers, value, lookup) -> IngressOrigin
                       FeedSealer(partner_id, partner_public, signing_key).seal(..., now=now) -> bytes
                       sign_checkpoint(signing_key, payload) -> signature
    partner subscriber FeedOpener(partner_id, partner_private, broker_verify_key).open(...) -> bytes
    auditor            verify_checkpoint(verify_key, payload, signature)
    everyone           broker.keystore.Keystore(path).load_*(...) to get the keys above

Modules:

    keys       KeyKind, SecretBytes, KeyRecord, the key-file format (the files: broker.keystore)
    envelope   FeedSealer, FeedOpener: AES-256-GCM data keys wrapped with X25519, signed with Ed25519
    origin     sign_ingress, verify_ingress: HMAC-SHA256 per agency on ingress records
    signing    sign_checkpoint, verify_checkpoint: Ed25519 over audit checkpoints

Errors (all from ``puente.errors``, under CryptoError)::

    CryptoError
    ├── KeyMaterialError   a key file is missing, malformed, of the wrong kind or too open
    ├── SignatureError     a feed key block or audit checkpoint signature does not verify
    ├── DecryptionError    a feed record is malformed, for another key, altered, or opened with other AAD
    └── OriginError        an ingress record lacks, or fails, its agency's MAC

Messages name key ids and what went wrong, never plaintext or key bytes. Caller bugs
(a naive ``now``, a schema fingerprint that is not 8 bytes) raise ValueError.
"""

from __future__ import annotations

from broker.crypto.envelope import FeedOpener, FeedSealer, KeyBlock, peek_key_block
from broker.crypto.keys import KeyKind, KeyRecord, SecretBytes, parse_key_id, record_from_json, record_to_json
from broker.crypto.origin import IngressOrigin, sign_ingress, verify_ingress
from broker.crypto.signing import checker, sign_checkpoint, verify_checkpoint

__all__ = [
    "FeedOpener",
    "FeedSealer",
    "IngressOrigin",
    "KeyBlock",
    "KeyKind",
    "KeyRecord",
    "SecretBytes",
    "checker",
    "parse_key_id",
    "peek_key_block",
    "record_from_json",
    "record_to_json",
    "sign_checkpoint",
    "sign_ingress",
    "verify_checkpoint",
    "verify_ingress",
]
