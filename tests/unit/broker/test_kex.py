"""The ingress MAC key an agency and the broker agree on: same on both sides, bound to the pair, strict ids."""

from __future__ import annotations

import re
import struct
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.crypto import ingress_mac_key, pair_key_id, parse_pair_key_id
from broker.crypto.keys import KeyKind, KeyRecord, SecretBytes, new_key
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def kex(owner: str, generation: str = "2026a", seed: int | None = None) -> KeyRecord:
    """A key-agreement key with its private half: random, or from a fixed seed byte."""
    if seed is None:
        return new_key(KeyKind.KEY_AGREEMENT, owner, generation, NOW)
    private = X25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    key_id = f"{owner}-kex-{generation}"
    return KeyRecord(key_id, KeyKind.KEY_AGREEMENT, NOW, private.public_key().public_bytes(Encoding.Raw,
                     PublicFormat.Raw), SecretBytes(private.private_bytes_raw(), key_id=key_id))


def public(record: KeyRecord) -> KeyRecord:
    return record.public_only()


def test_both_sides_derive_the_same_key() -> None:
    """The agency (its private, the broker's public) and the broker (its private, the agency's public) agree."""
    agency, broker = kex("SENAN"), kex("broker")
    at_agency = ingress_mac_key(agency, public(broker))
    at_broker = ingress_mac_key(broker, public(agency))
    assert at_agency == at_broker
    assert at_agency.key_id == "SENAN-kex-2026a+broker-kex-2026a"
    assert len(at_agency) == 32


def test_the_key_is_the_documented_hkdf() -> None:
    """The key is HKDF-SHA256 over X25519, salt both publics, info the label and the length-prefixed names."""
    agency, broker = kex("SENAN", seed=7), kex("broker", seed=9)
    shared = X25519PrivateKey.from_private_bytes(bytes([7]) * 32).exchange(broker.agreement_public())

    def lp(text: str) -> bytes:
        return struct.pack(">H", len(text)) + text.encode()

    info = b"puente/ingress-mac/v1\x00" + lp("SENAN") + lp("SENAN-kex-2026a") + lp("broker-kex-2026a")
    assert agency.public is not None and broker.public is not None
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=agency.public + broker.public, info=info).derive(shared)
    assert ingress_mac_key(agency, public(broker)).reveal() == expected
    assert ingress_mac_key(broker, public(agency)).reveal() == expected


def test_each_pair_and_generation_has_its_own_key() -> None:
    """Another agency, or a new generation on either side, gives a different key with a different id."""
    senan, pn, broker, broker_b = kex("SENAN"), kex("PN"), kex("broker"), kex("broker", "2026b")
    senan_b = kex("SENAN", "2026b")
    keys = [
        ingress_mac_key(senan, public(broker)),
        ingress_mac_key(pn, public(broker)),
        ingress_mac_key(senan_b, public(broker)),
        ingress_mac_key(senan, public(broker_b)),
    ]
    assert len({k.reveal() for k in keys}) == 4
    assert len({k.key_id for k in keys}) == 4


@pytest.mark.parametrize(("owner", "generation"), [("SENAN", "2026z"), ("PN", "2026a")])
def test_the_names_are_bound_not_only_the_key_material(owner: str, generation: str) -> None:
    """The same X25519 halves under another agency code or generation give another MAC key."""
    agency, broker = kex("SENAN"), kex("broker")
    renamed_id = f"{owner}-kex-{generation}"
    assert agency.secret is not None
    renamed = replace(agency, key_id=renamed_id, secret=SecretBytes(agency.secret.reveal(), key_id=renamed_id))
    assert ingress_mac_key(renamed, public(broker)).reveal() != ingress_mac_key(agency, public(broker)).reveal()


def test_the_derived_key_never_shows_its_bytes() -> None:
    """The derived key is SecretBytes: its repr names the pair id, never the bytes."""
    key = ingress_mac_key(kex("SENAN"), public(kex("broker")))
    assert repr(key) == "SecretBytes(key_id='SENAN-kex-2026a+broker-kex-2026a', ****)"
    assert key.reveal().hex() not in repr(key)


def test_pair_ids_parse_into_the_agency_and_the_broker_key() -> None:
    """A pair id splits into the agency's key-agreement key id and the broker's."""
    agency, broker = parse_pair_key_id("FEAN-JTF-kex-2026a+broker-kex-2027b")
    assert (agency.owner, agency.kind, agency.generation) == ("FEAN-JTF", KeyKind.KEY_AGREEMENT, "2026a")
    assert (broker.owner, broker.kind, broker.generation) == ("broker", KeyKind.KEY_AGREEMENT, "2027b")
    assert pair_key_id("SENAN-kex-2026a", "broker-kex-2026a") == "SENAN-kex-2026a+broker-kex-2026a"


@pytest.mark.parametrize(
    "text",
    [
        "SENAN-kex-2026a",
        "SENAN-kex-2026a+",
        "+broker-kex-2026a",
        "broker-kex-2026a+SENAN-kex-2026a",
        "SENAN-kex-2026a+broker-kex-2026a+broker-kex-2026b",
        "SENAN-kex-2026a++broker-kex-2026a",
        "SENAN-kex-2026a+PN-kex-2026a",
        "broker-kex-2026a+broker-kex-2026a",
        "SENAN-enc-2026a+broker-kex-2026a",
        "SENAN-kex-2026a+broker-sign-2026a",
        "SENAN-mac-2026a",
        " SENAN-kex-2026a+broker-kex-2026a",
        "SENAN-kex-2026a+broker-kex-2026a\n",
        "",
    ],
)
def test_anything_but_an_exact_pair_id_is_refused(text: str) -> None:
    """A pair id is exactly <agency>-kex-<gen>+broker-kex-<gen>; every near miss is a KeyMaterialError."""
    with pytest.raises(KeyMaterialError):
        parse_pair_key_id(text)


@pytest.mark.parametrize(
    ("own", "other", "problem"),
    [
        (kex("SENAN"), public(kex("PN")), "between one agency and the broker"),
        (kex("broker"), public(kex("broker", "2026b")), "between one agency and the broker"),
        (kex("SENAN"), public(new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)), "expected key-agreement"),
        (public(kex("SENAN")), public(kex("broker")), "only the public half"),
    ],
)
def test_unsound_pairs_are_refused(own: KeyRecord, other: KeyRecord, problem: str) -> None:
    """Two agencies, two broker keys, another kind of key, or no private half: a KeyMaterialError, no key."""
    with pytest.raises(KeyMaterialError, match=re.escape(problem)):
        ingress_mac_key(own, other)


def test_a_low_order_public_half_is_refused() -> None:
    """An X25519 'public key' that makes the shared secret all zeros is refused, naming the key."""
    forged = KeyRecord("SENAN-kex-2026a", KeyKind.KEY_AGREEMENT, NOW, bytes(32), None)
    with pytest.raises(KeyMaterialError, match="SENAN-kex-2026a: not a usable X25519 public key"):
        ingress_mac_key(kex("broker"), forged)
