"""Feed test vectors: Puente's reader and a reader written from docs/feed-format.md alone both agree with them.

The second reader uses only the primitives the document names (cryptography's HPKE, AES-GCM,
X25519 and Ed25519, fastavro for Avro) and the constants it states; it never calls
broker.crypto.envelope. If the code or the document changes without the other, a test fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import to_parsing_canonical_form

from broker.crypto import FeedOpener
from broker.partner import open_record
from puente import errors, wire
from schemas import alert_codec

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "docs" / "feed-vectors.json"
DOCUMENT = ROOT / "docs" / "feed-format.md"
# The vectors are fixed once published: partners test against these very bytes.
PUBLISHED_SHA256 = "ae48548effc5d3491053229e75bd88a86c25d38fffd6e43369bc8f9d92e7854e"

DATA = json.loads(VECTORS.read_text(encoding="utf-8"))
POSITIVE: list[dict[str, Any]] = DATA["positive"]
NEGATIVE: list[dict[str, Any]] = DATA["negative"]


def _names(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


# Puente's own reader ---------------------------------------------------------------------------


def _opener(case: dict[str, Any]) -> FeedOpener:
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(case["partner_private_key"]))
    broker = Ed25519PublicKey.from_public_bytes(bytes.fromhex(case["broker_public_key"]))
    return FeedOpener(case["partner"], private, broker)


def _open(case: dict[str, Any]) -> bytes:
    headers = case["headers"]
    return _opener(case).open(
        bytes.fromhex(case["value"]),
        alert_id=headers["puente-alert-id"],
        topic=case["topic"],
        schema_fp=bytes.fromhex(headers["puente-schema"]),
        policy_version=headers["puente-policy"],
        agreement=headers["puente-agreement"],
    )


def _record(case: dict[str, Any]) -> wire.Record:
    headers = tuple((name, text.encode("utf-8")) for name, text in case["headers"].items())
    return wire.Record(case["topic"], 0, 0, case["key"].encode("utf-8"), bytes.fromhex(case["value"]), headers, 0)


@pytest.mark.parametrize("case", POSITIVE, ids=_names(POSITIVE))
def test_feed_opener_opens_every_positive_vector(case: dict[str, Any]) -> None:
    """FeedOpener opens each positive vector to exactly its expected plaintext."""
    assert _open(case) == bytes.fromhex(case["plaintext"])


@pytest.mark.parametrize("case", POSITIVE, ids=_names(POSITIVE))
def test_subscriber_reads_every_positive_vector(case: dict[str, Any]) -> None:
    """The subscriber's open_record verifies, decrypts and decodes each positive vector into its alert."""
    view = open_record(_record(case), _opener(case), alert_codec())
    assert view["alert_id"] == case["headers"]["puente-alert-id"] == case["key"]


@pytest.mark.parametrize("schema", [" 9D 1C AE 45 EA 38 14 4B\n", "9D1CAE45EA38144B", "9d1cae45ea38144b00", "9d1cae45"])
def test_a_schema_header_other_than_sixteen_lowercase_hex_digits_is_refused(schema: str) -> None:
    """The puente-schema header is 16 lowercase hex digits (docs/feed-format.md); what bytes.fromhex would take
    besides (spaces, capitals) is refused before anything is opened."""
    case = POSITIVE[0]
    rec = _record({**case, "headers": {**case["headers"], "puente-schema": schema}})
    with pytest.raises(errors.CodecError, match="puente-schema header is not a fingerprint"):
        open_record(rec, _opener(case), alert_codec())


@pytest.mark.parametrize("case", NEGATIVE, ids=_names(NEGATIVE))
def test_puente_refuses_every_negative_vector(case: dict[str, Any]) -> None:
    """Each negative vector is refused with exactly the error class and message its vector names."""
    refuse = case["refuse"]
    error = getattr(errors, refuse["error"])
    if refuse["step"] == "decode":
        assert _open(case)  # it decrypts: only the check after decoding catches it
        with pytest.raises(error, match=re.escape(refuse["message"])) as info:
            open_record(_record(case), _opener(case), alert_codec())
    else:
        with pytest.raises(error, match=re.escape(refuse["message"])) as info:
            _open(case)
    assert type(info.value) is error


# A reader written from docs/feed-format.md alone ------------------------------------------------

SIGNATURE_LABEL = b"puente/feed-key-block/v2"
HPKE_INFO_LABEL = b"puente/feed-data-key/v2"
RECORD_AAD_LABEL = b"puente/feed-record/v2"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
CRC64_EMPTY = 0xC15D213AA4D7A795


class Refused(Exception):
    """The document's reader refused a record at ``step``."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


def _crc64_avro(data: bytes) -> int:
    """The Avro specification's CRC-64-AVRO (Rabin) fingerprint."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    fp = CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _released_writers() -> dict[bytes, Any]:
    """Every released expanded alert schema, by its fingerprint as the plaintext carries it."""
    writers = {}
    for path in sorted((ROOT / "schemas" / "releases").glob("v*/puente.Alert.avsc")):
        parsed = parse_schema(json.loads(path.read_text(encoding="utf-8")))
        canonical = to_parsing_canonical_form(parsed).encode("utf-8")
        writers[_crc64_avro(canonical).to_bytes(8, "little")] = parsed
    return writers


WRITERS = _released_writers()


def _decode(plaintext: bytes, alert_id: str) -> dict[str, Any]:
    """Section 6: single-object Avro under a released writer schema, whose alert id is the header's."""
    if len(plaintext) < 10 or plaintext[:2] != b"\xc3\x01" or plaintext[2:10] not in WRITERS:
        raise Refused("decode")
    body = BytesIO(plaintext[10:])
    try:
        alert = schemaless_reader(body, WRITERS[plaintext[2:10]], None)
    except Exception:  # noqa: BLE001 - any failure to decode is a refusal, whatever fastavro raises
        raise Refused("decode") from None
    if body.tell() != len(plaintext) - 10 or not isinstance(alert, dict) or alert.get("alert_id") != alert_id:
        raise Refused("decode")
    return alert


def read_as_documented(case: dict[str, Any]) -> tuple[bytes, dict[str, Any], dict[str, str]]:
    """Section 5, step by step: (plaintext, decoded alert, the intermediate values on the way)."""
    value, headers, me = bytes.fromhex(case["value"]), case["headers"], case["partner"].encode("utf-8")
    # 1. framing
    if len(value) < 5 or value[:2] != b"PF" or value[2] != 3:
        raise Refused("framing")
    size = int.from_bytes(value[3:5], "big")
    if len(value) < 5 + size + 12 + 16 or size < 2:
        raise Refused("framing")
    block = value[5 : 5 + size]
    p = block[1]
    if block[0] != 2 or p < 1 or size != 170 + p:
        raise Refused("framing")
    try:
        block[2 : 2 + p].decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("framing") from None
    alert_id, schema_hex = headers.get("puente-alert-id", ""), headers.get("puente-schema", "")
    if not alert_id or not re.fullmatch(r"[0-9a-fA-F]{16}", schema_hex):
        raise Refused("framing")
    # 2. signature
    signed = SIGNATURE_LABEL + b"\x00" + block[: 106 + p]
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(case["broker_public_key"])).verify(block[106 + p :], signed)
    except InvalidSignature:
        raise Refused("signature") from None
    # 3. partner
    if block[2 : 2 + p] != me:
        raise Refused("partner")
    # 4. unwrap
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(case["partner_private_key"]))
    info = HPKE_INFO_LABEL + b"\x00" + block[: 26 + p]
    try:
        data_key = SUITE.decrypt(block[26 + p : 106 + p], private, info=info)
    except InvalidTag:
        raise Refused("unwrap") from None
    # 5. record
    key_id = block[2 + p : 18 + p]
    fields = (me, key_id, case["topic"].encode(), bytes.fromhex(schema_hex), headers["puente-policy"].encode(),
              headers.get("puente-agreement", "").encode(), alert_id.encode())
    aad = RECORD_AAD_LABEL + b"\x00" + b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    nonce = value[5 + size : 17 + size]
    try:
        plaintext = AESGCM(data_key).decrypt(nonce, value[17 + size :], aad)
    except InvalidTag:
        raise Refused("record") from None
    # 6. decode
    alert = _decode(plaintext, alert_id)
    micros = int.from_bytes(block[18 + p : 26 + p], "big", signed=True)
    created = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    seen = {
        "key_block": block, "key_block_header": block[: 26 + p], "key_id": key_id,
        "hpke_enc": block[26 + p : 58 + p], "hpke_ciphertext": block[58 + p : 106 + p], "hpke_info": info,
        "signed_message": signed, "signature": block[106 + p :], "data_key": data_key, "nonce": nonce,
        "record_aad": aad,
    }
    intermediate = {name: raw.hex() for name, raw in seen.items()}
    intermediate["created_at"] = created.isoformat().replace("+00:00", "Z")
    return plaintext, alert, intermediate


@pytest.mark.parametrize("case", POSITIVE, ids=_names(POSITIVE))
def test_document_alone_opens_every_positive_vector(case: dict[str, Any]) -> None:
    """The document's reader opens each positive vector via its intermediate values to its plaintext and alert."""
    plaintext, alert, intermediate = read_as_documented(case)
    assert plaintext == bytes.fromhex(case["plaintext"])
    assert intermediate == case["intermediate"]
    assert alert["alert_id"] == case["key"]
    assert plaintext[2:10].hex() == case["headers"]["puente-schema"]


@pytest.mark.parametrize("case", NEGATIVE, ids=_names(NEGATIVE))
def test_document_alone_refuses_every_negative_vector_at_its_step(case: dict[str, Any]) -> None:
    """The reader written from the document refuses each negative vector at the step the vector names."""
    with pytest.raises(Refused) as info:
        read_as_documented(case)
    assert info.value.step == case["refuse"]["step"]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, b"HPKE-v1" + suite_id + label + ikm, hashlib.sha256).digest()


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    message = length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
    return hmac.new(prk, message + b"\x01", hashlib.sha256).digest()[:length]  # length <= 32: one block


def _rfc9180_open_base(enc: bytes, private: X25519PrivateKey, info: bytes, ct: bytes) -> bytes:
    """RFC 9180 sections 4.1, 5.1 and 5.2 for suite 0x0020/0x0001/0x0002, Base mode, first message."""
    kem_id = b"KEM" + bytes.fromhex("0020")
    dh = private.exchange(X25519PublicKey.from_public_bytes(enc))
    kem_context = enc + private.public_key().public_bytes_raw()
    eae_prk = _labeled_extract(kem_id, b"", b"eae_prk", dh)
    shared_secret = _labeled_expand(kem_id, eae_prk, b"shared_secret", kem_context, 32)
    suite_id = b"HPKE" + bytes.fromhex("0020" "0001" "0002")
    context = (b"\x00" + _labeled_extract(suite_id, b"", b"psk_id_hash", b"")
               + _labeled_extract(suite_id, b"", b"info_hash", info))
    secret = _labeled_extract(suite_id, shared_secret, b"secret", b"")
    key = _labeled_expand(suite_id, secret, b"key", context, 32)
    base_nonce = _labeled_expand(suite_id, secret, b"base_nonce", context, 12)
    return AESGCM(key).decrypt(base_nonce, ct, b"")


@pytest.mark.parametrize("case", POSITIVE, ids=_names(POSITIVE))
def test_hpke_step_is_rfc_9180_with_the_documented_suite(case: dict[str, Any]) -> None:
    """RFC 9180 Base mode written out for suite 0x0020/0x0001/0x0002 and an empty AAD unwraps each data key."""
    step = case["intermediate"]
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(case["partner_private_key"]))
    enc, info, ct = (bytes.fromhex(step[name]) for name in ("hpke_enc", "hpke_info", "hpke_ciphertext"))
    data_key = _rfc9180_open_base(enc, private, info, ct)
    assert data_key.hex() == step["data_key"]


def test_document_states_what_its_reader_uses() -> None:
    """Every label, suite id and offset the document's reader uses is in the document and the vector file."""
    text = DOCUMENT.read_text(encoding="utf-8")
    for label in (SIGNATURE_LABEL, HPKE_INFO_LABEL, RECORD_AAD_LABEL):
        assert f'"{label.decode()}"' in text
    for fact in ("`0x0020`", "`0x0001`", "`0x0002`", "**Base mode**", "`aad`: empty", "170 + p", "26+p", "106+p",
                 "**little-endian**", "`C3 01`", "`0xc15d213aa4d7a795`", "record format version: **3**",
                 "key block version: **2**"):
        assert fact in text, fact
    assert DATA["signature_context"].encode() == SIGNATURE_LABEL
    assert DATA["hpke"]["info_label"].encode() == HPKE_INFO_LABEL
    assert DATA["record_aad_label"].encode() == RECORD_AAD_LABEL


def test_vectors_cover_every_step_and_stay_as_published() -> None:
    """The negative vectors refuse at every step the document names, and the file is the published one."""
    assert {case["refuse"]["step"] for case in NEGATIVE} == set(DATA["steps"])
    assert [line.split("**")[1] for line in DOCUMENT.read_text(encoding="utf-8").splitlines()
            if re.match(r"\d\. \*\*[a-z]+\*\*", line)] == DATA["steps"]
    assert hashlib.sha256(VECTORS.read_bytes()).hexdigest() == PUBLISHED_SHA256
