"""Ingress authenticity: agency MAC headers verify, and every kind of forgery is refused."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.crypto.keys import KeyKind, SecretBytes
from broker.crypto.origin import (
    AGENCY_HEADER,
    ALERT_ID_HEADER,
    KEY_ID_HEADER,
    MAC_HEADER,
    PUBLISHED_HEADER,
    IngressOrigin,
    sign_ingress,
    verify_ingress,
)
from broker.keystore import Keystore, Keystores
from puente.errors import OriginError

SENAN_KEY = SecretBytes(b"S" * 32, key_id="SENAN-kex-2026a+broker-kex-2026a")
PN_KEY = SecretBytes(b"P" * 32, key_id="PN-kex-2026a+broker-kex-2026a")
VALUE = b"\xc3\x01avro-body-with-a-secret-name Juan Perez"
KEYS = {("SENAN", "SENAN-kex-2026a+broker-kex-2026a"): SENAN_KEY, ("PN", "PN-kex-2026a+broker-kex-2026a"): PN_KEY}


def lookup(agency: str, key_id: str) -> SecretBytes | None:
    return KEYS.get((agency, key_id))


def headers_for(agency: str = "SENAN", key: SecretBytes = SENAN_KEY, alert_id: str = "SENAN:OP-1") -> list:
    return sign_ingress(agency, key.key_id, key, VALUE, alert_id)


def replace_header(headers: list, name: str, value: bytes | None) -> list:
    return [(n, value if n == name else v) for n, v in headers]


@settings(max_examples=100, deadline=None)
@given(
    value=st.binary(max_size=2048), alert_id=st.text(min_size=1, max_size=80), agency=st.text(min_size=1, max_size=20)
)
def test_round_trip(value: bytes, alert_id: str, agency: str) -> None:
    """Headers made by sign_ingress verify and give back the agency, alert id and key id."""
    key = SecretBytes(b"k" * 32, key_id="X-kex-1+broker-kex-1")
    headers = sign_ingress(agency, "X-kex-1+broker-kex-1", key, value, alert_id, published_ms=1_795_000_000_123)
    origin = verify_ingress(headers, value, lambda a, k: key if (a, k) == (agency, "X-kex-1+broker-kex-1") else None)
    assert origin == IngressOrigin(agency, alert_id, "X-kex-1+broker-kex-1", 1_795_000_000_123)


def test_headers_are_the_documented_five() -> None:
    """sign_ingress emits the agency, key id, alert id, publication time and a 32-byte MAC as Kafka headers."""
    before = int(datetime.now(UTC).timestamp() * 1000)
    headers = dict(headers_for())
    assert before <= int(headers[PUBLISHED_HEADER]) <= before + 60_000
    assert headers[AGENCY_HEADER] == b"SENAN"
    assert headers[KEY_ID_HEADER] == b"SENAN-kex-2026a+broker-kex-2026a"
    assert headers[ALERT_ID_HEADER] == b"SENAN:OP-1"
    assert len(headers[MAC_HEADER]) == 32


def test_extra_headers_and_order_do_not_matter() -> None:
    """Unrelated headers are ignored and the Puente headers may come in any order."""
    headers = [("traceparent", b"00-abc"), *reversed(headers_for()), ("other", None)]
    assert verify_ingress(headers, VALUE, lookup).agency == "SENAN"


@pytest.mark.parametrize("missing", [AGENCY_HEADER, KEY_ID_HEADER, ALERT_ID_HEADER, PUBLISHED_HEADER, MAC_HEADER])
def test_missing_header_fails(missing: str) -> None:
    """A record without one of the four headers is refused, naming the header."""
    headers = [(n, v) for n, v in headers_for() if n != missing]
    with pytest.raises(OriginError, match=missing):
        verify_ingress(headers, VALUE, lookup)


@pytest.mark.parametrize("empty", [None, b""])
def test_empty_header_counts_as_missing(empty: bytes | None) -> None:
    """A header present with no value is as good as missing."""
    with pytest.raises(OriginError, match=MAC_HEADER):
        verify_ingress(replace_header(headers_for(), MAC_HEADER, empty), VALUE, lookup)


def test_a_record_with_no_value_is_refused_as_such() -> None:
    """A tombstone (value None) with good headers is an OriginError, not a TypeError from the MAC's input."""
    with pytest.raises(OriginError, match="no value"):
        verify_ingress(headers_for(), None, lookup)  # type: ignore[arg-type]


def test_no_headers_at_all_fails() -> None:
    """A record with no headers (None from the client) is refused."""
    with pytest.raises(OriginError, match="lacks"):
        verify_ingress(None, VALUE, lookup)


def test_duplicate_header_fails() -> None:
    """A Puente header given twice is refused rather than one copy being picked."""
    headers = [*headers_for(), (AGENCY_HEADER, b"PN")]
    with pytest.raises(OriginError, match="more than once"):
        verify_ingress(headers, VALUE, lookup)


def test_unknown_agency_fails() -> None:
    """A record naming an agency the broker has no key for is refused."""
    rogue = SecretBytes(b"R" * 32, key_id="ROGUE-kex-1+broker-kex-1")
    with pytest.raises(OriginError, match="not a known MAC key"):
        verify_ingress(sign_ingress("ROGUE", "ROGUE-kex-1+broker-kex-1", rogue, VALUE, "R:1"), VALUE, lookup)


def test_one_agency_cannot_claim_to_be_another() -> None:
    """PN, MACing with its own key but naming SENAN, does not pass as SENAN."""
    headers = sign_ingress("SENAN", "PN-kex-2026a+broker-kex-2026a", PN_KEY, VALUE, "SENAN:OP-1")
    with pytest.raises(OriginError, match="not a known MAC key"):
        verify_ingress(headers, VALUE, lookup)


def test_agency_key_with_wrong_bytes_fails() -> None:
    """A MAC made with a guessed key under a real key id does not verify."""
    guessed = SecretBytes(b"G" * 32, key_id="SENAN-kex-2026a+broker-kex-2026a")
    with pytest.raises(OriginError, match="does not verify"):
        verify_ingress(headers_for(key=guessed), VALUE, lookup)


def test_altered_value_fails() -> None:
    """Changing the record value after the adapter MACed it is caught."""
    with pytest.raises(OriginError, match="does not verify"):
        verify_ingress(headers_for(), VALUE + b"!", lookup)


@pytest.mark.parametrize(
    ("name", "value"),
    [(ALERT_ID_HEADER, b"SENAN:OP-2"), (AGENCY_HEADER, b"PN"), (KEY_ID_HEADER, b"PN-kex-2026a+broker-kex-2026a"),
     (PUBLISHED_HEADER, b"1795000000000")],
)
def test_altered_header_fails(name: str, value: bytes) -> None:
    """Changing the alert id, agency, key id or publication time header after MACing is caught."""
    with pytest.raises(OriginError):
        verify_ingress(replace_header(headers_for(), name, value), VALUE, lookup)


@pytest.mark.parametrize("bit", [0, 9, 128, 255])
def test_flipped_mac_bit_fails(bit: int) -> None:
    """Any flipped bit in the MAC is caught."""
    headers = headers_for()
    mac = bytearray(dict(headers)[MAC_HEADER])
    mac[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(OriginError, match="does not verify"):
        verify_ingress(replace_header(headers, MAC_HEADER, bytes(mac)), VALUE, lookup)


@pytest.mark.parametrize("bad", [b"-5", b"12.5", b"soon", b"9" * 16])
def test_publication_time_must_be_unix_milliseconds(bad: bytes) -> None:
    """A publication time that is not plain digits (or absurdly long) is refused before any MAC check."""
    with pytest.raises(OriginError, match="Unix milliseconds"):
        verify_ingress(replace_header(headers_for(), PUBLISHED_HEADER, bad), VALUE, lookup)


def test_non_utf8_header_fails() -> None:
    """An agency header that is not UTF-8 is refused with a clear message."""
    with pytest.raises(OriginError, match="not UTF-8"):
        verify_ingress(replace_header(headers_for(), AGENCY_HEADER, b"\xff\xfe"), VALUE, lookup)


def test_length_prefixes_prevent_field_shifting() -> None:
    """Moving bytes between the alert id and the value does not keep the MAC valid."""
    headers = sign_ingress("SENAN", "SENAN-kex-2026a+broker-kex-2026a", SENAN_KEY, b"BC", "A")
    shifted = replace_header(headers, ALERT_ID_HEADER, b"AB")
    with pytest.raises(OriginError):
        verify_ingress(shifted, b"C", lookup)


def test_mac_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MAC check goes through hmac.compare_digest, not ==."""
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    verify_ingress(headers_for(), VALUE, lookup)
    assert calls


def test_errors_never_show_the_value_or_key() -> None:
    """Error messages name agency and key id but never the record bytes or the MAC key."""
    cases: list[Callable[[], object]] = [
        lambda: verify_ingress(headers_for(), VALUE + b"x", lookup),
        lambda: verify_ingress(headers_for(key=SecretBytes(b"S" * 31 + b"T", key_id=SENAN_KEY.key_id)), VALUE, lookup),
        lambda: verify_ingress(headers_for()[:2], VALUE, lookup),
    ]
    for case in cases:
        with pytest.raises(OriginError) as info:
            case()
        text = str(info.value)
        assert "Juan" not in text
        assert "SSSS" not in text
        assert SENAN_KEY.reveal().hex() not in text


def test_attacker_header_text_is_cut_short() -> None:
    """A huge forged agency header is truncated in the error message."""
    headers = replace_header(headers_for(), AGENCY_HEADER, b"A" * 10_000)
    with pytest.raises(OriginError) as info:
        verify_ingress(headers, VALUE, lookup)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(("agency", "alert_id"), [("", "SENAN:OP-1"), ("SENAN", "")])
def test_empty_agency_or_alert_id_is_refused(agency: str, alert_id: str) -> None:
    """sign_ingress will not make headers that verify_ingress would read as missing."""
    with pytest.raises(ValueError, match="empty"):
        sign_ingress(agency, "SENAN-kex-2026a+broker-kex-2026a", SENAN_KEY, VALUE, alert_id)


def test_key_id_must_match_the_key() -> None:
    """sign_ingress refuses a key id that is not the id of the key it is given."""
    with pytest.raises(ValueError, match=re.escape("SENAN-kex-2026a+broker-kex-2026a")):
        sign_ingress("SENAN", "SENAN-kex-2026b+broker-kex-2026a", SENAN_KEY, VALUE, "SENAN:OP-1")


def test_keystore_lookup_round_trip(tmp_path: Path) -> None:
    """The adapter's key from its own keystore verifies at the broker through agency_mac_lookup, under both key ids."""
    demo = Keystore.provision(
        tmp_path, partners=[], agencies=["SENAN", "PN"], agreements=[], now=datetime(2026, 1, 5, tzinfo=UTC)
    )
    key = demo.agencies["SENAN"].load_agency_mac("SENAN")
    headers = sign_ingress("SENAN", key.key_id, key, VALUE, "SENAN:OP-9", published_ms=7)
    origin = verify_ingress(headers, VALUE, demo.broker.agency_mac_lookup())
    assert origin == IngressOrigin("SENAN", "SENAN:OP-9", "SENAN-kex-2026a+broker-kex-2026a", 7)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.binary(max_size=2000))
def test_the_verifiers_precomputed_hmac_is_hmac_sha256(raw_key: bytes, message: bytes) -> None:
    # Keys longer than SHA-256's 64-byte block are hashed first, shorter ones padded: both paths.
    from broker.crypto.origin import _verifier_mac

    key = SecretBytes(raw_key, key_id="X-kex-1+broker-kex-1")
    assert _verifier_mac(key, message) == hmac.digest(raw_key, message, "sha256")
    assert _verifier_mac(key, message + b"x") == hmac.digest(raw_key, message + b"x", "sha256")  # state not consumed


def test_a_key_object_replaced_under_the_same_id_is_not_confused_with_the_old_one() -> None:
    from broker.crypto.origin import _pads_cache, _verifier_mac

    first = SecretBytes(b"A" * 32, key_id="X-kex-1+broker-kex-1")
    assert _verifier_mac(first, b"m") == hmac.digest(b"A" * 32, b"m", "sha256")
    second = SecretBytes(b"B" * 32, key_id="X-kex-1+broker-kex-1")
    _pads_cache[id(second)] = _pads_cache.pop(id(first))  # as if ``second`` had reused a freed id
    assert _verifier_mac(second, b"m") == hmac.digest(b"B" * 32, b"m", "sha256")


def _site(tmp_path: Path, generation: str = "2026a") -> Keystores:
    return Keystore.provision(tmp_path, partners=[], agencies=["SENAN", "PN"], agreements=[], generation=generation,
                              now=datetime(2026, 1, 5, tzinfo=UTC))


def test_the_key_id_header_names_both_key_agreement_keys(tmp_path: Path) -> None:
    """The adapter's puente-key-id header is its own key id and the broker's, joined by '+'."""
    key = _site(tmp_path).agencies["SENAN"].load_agency_mac("SENAN")
    headers = dict(sign_ingress("SENAN", key.key_id, key, VALUE, "SENAN:OP-1"))
    assert headers[KEY_ID_HEADER] == b"SENAN-kex-2026a+broker-kex-2026a"


def test_an_agency_key_the_broker_never_imported_does_not_verify(tmp_path: Path) -> None:
    """An agency's new generation, not yet handed to the broker but put in use all the same (`keys use`), gives
    records the broker refuses."""
    site = _site(tmp_path)
    senan = site.agencies["SENAN"]
    senan.generate(KeyKind.KEY_AGREEMENT, "SENAN", generation="2026b", now=datetime(2026, 6, 1, tzinfo=UTC))
    senan.use_agency_key("SENAN-kex-2026b")
    key = senan.load_agency_mac("SENAN")
    assert key.key_id == "SENAN-kex-2026b+broker-kex-2026a"
    headers = sign_ingress("SENAN", key.key_id, key, VALUE, "SENAN:OP-1")
    with pytest.raises(OriginError, match="not a known MAC key"):
        verify_ingress(headers, VALUE, site.broker.agency_mac_lookup())


def test_both_generations_verify_after_an_agency_rotates(tmp_path: Path) -> None:
    """Once the broker holds both of an agency's public halves, records under the old and the new pair verify."""
    site = _site(tmp_path)
    senan = site.agencies["SENAN"]
    old = senan.load_agency_mac("SENAN")
    new_half = senan.generate(KeyKind.KEY_AGREEMENT, "SENAN", generation="2026b", now=datetime(2026, 6, 1, tzinfo=UTC))
    site.broker.import_public(senan.public_pem(new_half.key_id), new_half.key_id, source="test",
                              now=datetime(2026, 6, 1, tzinfo=UTC))
    senan.use_agency_key(new_half.key_id)
    new = senan.load_agency_mac("SENAN")
    assert new.key_id != old.key_id and new.reveal() != old.reveal()
    lookup = site.broker.agency_mac_lookup()
    for key in (old, new):
        origin = verify_ingress(sign_ingress("SENAN", key.key_id, key, VALUE, "SENAN:OP-1"), VALUE, lookup)
        assert origin.key_id == key.key_id


def test_a_key_agreed_by_another_agency_cannot_pass_as_this_one(tmp_path: Path) -> None:
    """PN's derived key, under SENAN's pair id or its own, never verifies a record naming SENAN."""
    site = _site(tmp_path)
    pn = site.agencies["PN"].load_agency_mac("PN")
    lookup = site.broker.agency_mac_lookup()
    as_senan = SecretBytes(pn.reveal(), key_id="SENAN-kex-2026a+broker-kex-2026a")
    with pytest.raises(OriginError, match="does not verify"):
        verify_ingress(sign_ingress("SENAN", as_senan.key_id, as_senan, VALUE, "SENAN:1"), VALUE, lookup)
    with pytest.raises(OriginError, match="not a known MAC key"):
        verify_ingress(sign_ingress("SENAN", pn.key_id, pn, VALUE, "SENAN:1"), VALUE, lookup)
