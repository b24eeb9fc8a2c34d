"""The ingress MAC key of one agency and the broker, agreed without either giving up a secret.

Each agency generates an X25519 key-agreement key (``<agency>-kex-<gen>``) and the broker its own
(``broker-kex-<gen>``); each keeps its private half and imports the other's public half. Both
then compute the same 32-byte HMAC key for the agency's ingress MACs (``broker.crypto.origin``)::

    shared = X25519(own private, other public)                 the same on both sides
    salt   = agency public (32 bytes) || broker public (32 bytes)
    info   = b"puente/ingress-mac/v1" NUL
             || len(agency) || agency                          the agency code, UTF-8
             || len(agency key id) || agency key id            e.g. SENAN-kex-2026a
             || len(broker key id) || broker key id            e.g. broker-kex-2026a
             (each length 2 bytes big-endian)
    key    = HKDF-SHA256(shared, salt, info, length 32)

The label keeps this key apart from anything else derived from X25519 in Puente (the feeds' HPKE
uses ``puente/feed-data-key/v2``); the agency code and both key ids make it one key per pair and per
generation, so a new generation on either side is a new MAC key; both public halves in the salt
tie it to exactly the keys named. The key is handed out as ``SecretBytes`` whose id is the pair
id, ``<agency key id>+<broker key id>`` (``SENAN-kex-2026a+broker-kex-2026a``): what the adapter
writes in the ``puente-key-id`` header so the broker knows which pair's key to check with. Key
ids never contain ``+``, so a pair id splits one way only.

Pure: no I/O; the keystore reads the key files and calls ``ingress_mac_key``.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.crypto.keys import (
    BROKER_OWNER,
    KEY_LEN,
    KeyId,
    KeyKind,
    KeyRecord,
    SecretBytes,
    parse_key_id,
    x25519_exchange,
)
from puente.errors import KeyMaterialError

INGRESS_MAC_INFO = b"puente/ingress-mac/v1\x00"
PAIR_SEPARATOR = "+"
_LEN = struct.Struct(">H")


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _LEN.pack(len(raw)) + raw


def _raw(record: KeyRecord) -> bytes:
    return record.agreement_public().public_bytes(Encoding.Raw, PublicFormat.Raw)


def pair_key_id(agency_key_id: str, broker_key_id: str) -> str:
    """The id of the MAC key an agency's key and the broker's key agree on, checked as ``parse_pair_key_id`` does."""
    pair = f"{agency_key_id}{PAIR_SEPARATOR}{broker_key_id}"
    parse_pair_key_id(pair)
    return pair


def parse_pair_key_id(text: str) -> tuple[KeyId, KeyId]:
    """Split ``SENAN-kex-2026a+broker-kex-2026a`` into the agency's and the broker's key ids, strictly.

    Exactly one ``+``; first an agency's key-agreement key id, then the broker's. Anything else
    is a KeyMaterialError.
    """
    parts = text.split(PAIR_SEPARATOR)
    if len(parts) != 2:
        raise KeyMaterialError(f"{text[:80]!r} is not a MAC key pair id: expected <agency>-kex-<gen>+broker-kex-<gen>")
    agency, broker = parse_key_id(parts[0]), parse_key_id(parts[1])
    if agency.kind is not KeyKind.KEY_AGREEMENT or agency.owner == BROKER_OWNER:
        raise KeyMaterialError(f"{text[:80]!r}: {parts[0]} is not an agency's key-agreement key id")
    if broker.kind is not KeyKind.KEY_AGREEMENT or broker.owner != BROKER_OWNER:
        raise KeyMaterialError(f"{text[:80]!r}: {parts[1]} is not the broker's key-agreement key id")
    return agency, broker


def ingress_mac_key(own: KeyRecord, other: KeyRecord) -> SecretBytes:
    """The agency's ingress MAC key from this side's key-agreement key (with its private half) and the
    other side's public half: an agency passes its own and the broker's, the broker its own and the agency's.
    """
    for record in (own, other):
        if record.kind is not KeyKind.KEY_AGREEMENT:
            raise KeyMaterialError(f"key {record.key_id}: kind is {record.kind}, expected {KeyKind.KEY_AGREEMENT}")
    if (own.owner == BROKER_OWNER) == (other.owner == BROKER_OWNER):
        raise KeyMaterialError(f"keys {own.key_id} and {other.key_id}: a MAC key is agreed between one agency "
                               "and the broker")
    agency_key, broker_key = (other, own) if own.owner == BROKER_OWNER else (own, other)
    agency = agency_key.owner
    pair = pair_key_id(agency_key.key_id, broker_key.key_id)
    shared = x25519_exchange(own.agreement_private(), other.agreement_public(), key_id=other.key_id)
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LEN,
        salt=_raw(agency_key) + _raw(broker_key),
        info=INGRESS_MAC_INFO + _lp(agency) + _lp(agency_key.key_id) + _lp(broker_key.key_id),
    )
    return SecretBytes(hkdf.derive(shared), key_id=pair)
