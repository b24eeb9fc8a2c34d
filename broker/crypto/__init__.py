"""Puente's cryptographic core: keys, feed envelopes, ingress origin and checkpoint signatures.

Who calls what::

    agency adapter     sign_ingress(agency, key_id, mac_key, value, alert_id) -> Kafka headers
    agency and broker  ingress_mac_key(own kex key, other's kex public half) -> the pair's MAC key
    broker worker      verify_ingress(headers, value, lookup) -> IngressOrigin
                       FeedSealer(partner_id, partner_public, signing_key).seal(..., now=now) -> bytes
                       sign_checkpoint(signing_key, payload) -> signature
    partner subscriber FeedOpener(partner_id, partner_private, broker_verify_key).open(...) -> bytes
                       (each key, or every generation held by key id: rotation strands no record)
    auditor            verify_checkpoint(verify_key, payload, signature)
    everyone           broker.keystore.Keystore(path).load_*(...) to get the keys above
                       public_pem(record) / public_from_pem(...) to hand public halves over

Modules:

    keys       KeyKind, SecretBytes, KeyRecord, the key-file format (the files: broker.keystore), and
               refuse_one_key_two_ids, which every reader's set of keys passes before it verifies with them
    envelope   FeedSealer, FeedOpener: AES-256-GCM data keys sealed with HPKE (RFC 9180), signed with Ed25519
    origin     sign_ingress, verify_ingress: HMAC-SHA256 per agency on ingress records
    kex        ingress_mac_key: the MAC key an agency and the broker agree on (X25519, HKDF-SHA256)
    pem        public_pem, public_from_pem: public halves as PEM SubjectPublicKeyInfo
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

from broker.crypto.envelope import FeedOpener, FeedSealer, KeyBlock, Opened, peek_key_block
from broker.crypto.kex import ingress_mac_key, pair_key_id, parse_pair_key_id
from broker.crypto.keys import (
    BROKER_OWNER,
    KeyKind,
    KeyRecord,
    SecretBytes,
    parse_key_id,
    record_from_json,
    record_to_json,
    refuse_one_key_two_ids,
)
from broker.crypto.origin import IngressOrigin, sign_ingress, verify_ingress
from broker.crypto.pem import public_from_pem, public_pem
from broker.crypto.signing import checker, sign_checkpoint, verify_checkpoint

__all__ = [
    "BROKER_OWNER",
    "FeedOpener",
    "FeedSealer",
    "IngressOrigin",
    "KeyBlock",
    "KeyKind",
    "KeyRecord",
    "Opened",
    "SecretBytes",
    "checker",
    "ingress_mac_key",
    "pair_key_id",
    "parse_key_id",
    "parse_pair_key_id",
    "peek_key_block",
    "public_from_pem",
    "public_pem",
    "record_from_json",
    "record_to_json",
    "refuse_one_key_two_ids",
    "sign_checkpoint",
    "sign_ingress",
    "verify_checkpoint",
    "verify_ingress",
]
