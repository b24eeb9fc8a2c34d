"""Write docs/feed-vectors.json: feed records sealed by the real FeedSealer, and records to refuse.

Run once, from the repository root: ``.venv/bin/python docs/make_feed_vectors.py``. The vectors
are fixed from then on (partners test their readers against them, and
tests/unit/broker/test_feed_vectors.py keeps code and document in step with them), so this
refuses to overwrite the file; a new record format gets new vectors on purpose, never by a rerun.
Every key, key id, nonce and HPKE ephemeral key is fresh randomness, so two runs never agree.

Not part of the package: nothing imports it. The plaintexts are real partner views of the
fictional alerts in policies/examples/, encoded as the broker encodes them; pseudonyms in them
use the policy explainer's demonstration key. The version 1 and version 2 records are made by the
sealers of those formats (before HPKE; before the agreement entered the record's associated data),
read from git at the last commit that had each.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from broker.crypto import envelope
from broker.crypto.envelope import FeedSealer, peek_key_block, record_aad
from policies import DEMO_KEY, alert_value, build_view, decide, load_policy_set, read_alert_json, schema_fields
from schemas import alert_codec

OUT = Path(__file__).resolve().parent / "feed-vectors.json"
EXAMPLES = Path(__file__).resolve().parent.parent / "policies" / "examples"
V1_COMMIT = "f876bfb59d55ed018491e88419cf7141300e022e"  # the last commit with the format 1 sealer
V2_COMMIT = "6a6f776cf5d57c1f38c34959f43f6d51dfd8d1fa"  # the last commit with the format 2 sealer
SEALED_AT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def _raw_private(key: X25519PrivateKey) -> str:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()


def _raw_public(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _view(example: str, partner: str) -> tuple[str, bytes, str, str | None, str]:
    """(alert id, the view's single-object bytes, decision, agreement, policy version)."""
    ps = load_policy_set()
    path = EXAMPLES / example
    alert = alert_value(read_alert_json(path), schema_fields(), str(path))
    decision = decide(alert, partner, ps, alert["reported_at"] + timedelta(minutes=5))
    if not decision.delivers:
        raise SystemExit(f"{example} is not delivered to {partner}: pick another example")
    view = build_view(alert, decision, ps, DEMO_KEY)
    return alert["alert_id"], alert_codec().encode(view), decision.outcome.value, decision.agreement_id, ps.version


def _old_sealer(commit: str, name: str) -> Any:
    source = subprocess.run(
        ["git", "show", f"{commit}:broker/crypto/envelope.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = sys.modules[name] = types.ModuleType(name)  # dataclasses look it up there
    exec(compile(source, f"{name}.py", "exec"), module.__dict__)  # noqa: S102 - Puente's own code from its own history
    return module.FeedSealer


class _Unbound:
    """An older sealer, whose records bind no agreement: takes the argument and drops it."""

    def __init__(self, sealer: Any) -> None:
        self.sealer = sealer

    def seal(self, plaintext: bytes, *, agreement: str, **context: Any) -> bytes:
        return self.sealer.seal(plaintext, **context)  # type: ignore[no-any-return]


class Maker:
    """Seals views and writes complete cases, positive and negative."""

    def __init__(self) -> None:
        self.broker = Ed25519PrivateKey.generate()
        self.keys = {"COL": X25519PrivateKey.generate(), "USA": X25519PrivateKey.generate()}
        self.sealers = {p: FeedSealer(p, k.public_key(), self.broker) for p, k in self.keys.items()}

    def case(self, name: str, what: str, partner: str, example: str, **seal: Any) -> dict[str, Any]:
        """Seal the view of ``example`` for ``partner``; ``seal`` overrides the sealer or the alert id sealed."""
        alert_id, plaintext, outcome, agreement, policy = _view(example, partner)
        topic = f"puente.feed.{partner}"
        sealer = seal.get("sealer", self.sealers[partner])
        sealed_id = seal.get("alert_id", alert_id)
        schema_fp = alert_codec().fingerprint
        value = sealer.seal(plaintext, alert_id=sealed_id, topic=topic, schema_fp=schema_fp,
                            policy_version=policy, agreement=agreement or "", now=SEALED_AT)
        return {
            "name": name,
            "description": what,
            "partner": partner,
            "partner_private_key": _raw_private(self.keys[partner]),
            "broker_public_key": _raw_public(self.broker),
            "topic": topic,
            "key": sealed_id,
            "headers": {
                "puente-alert-id": sealed_id,
                "puente-schema": schema_fp.hex(),
                "puente-policy": policy,
                "puente-decision": outcome,
                "puente-agreement": agreement or "",
            },
            "value": value.hex(),
            "plaintext": plaintext.hex(),
        }

    def intermediates(self, case: dict[str, Any]) -> dict[str, str]:
        """What a reader computes on the way, so an implementation can find the step it gets wrong."""
        value = bytes.fromhex(case["value"])
        block_len = int.from_bytes(value[3:5], "big")
        block = value[5 : 5 + block_len]
        header_end = block_len - 64 - 80
        parsed = peek_key_block(value)
        info = envelope.HPKE_INFO_LABEL + b"\x00" + block[:header_end]
        data_key = envelope._HPKE.decrypt(block[header_end:-64], self.keys[case["partner"]], info=info)
        headers = case["headers"]
        aad = record_aad(alert_id=headers["puente-alert-id"], partner_id=case["partner"], topic=case["topic"],
                         schema_fp=bytes.fromhex(headers["puente-schema"]), policy_version=headers["puente-policy"],
                         key_id=parsed.key_id, agreement=headers["puente-agreement"])
        return {
            "key_block": block.hex(),
            "key_block_header": block[:header_end].hex(),
            "key_id": parsed.key_id.hex(),
            "created_at": parsed.created_at.isoformat().replace("+00:00", "Z"),
            "hpke_enc": parsed.ephemeral_public.hex(),
            "hpke_ciphertext": parsed.wrapped_key.hex(),
            "hpke_info": info.hex(),
            "signed_message": (envelope.KEY_BLOCK_SIGNATURE_CONTEXT + b"\x00" + block[:-64]).hex(),
            "signature": parsed.signature.hex(),
            "data_key": data_key.hex(),
            "nonce": value[5 + block_len : 17 + block_len].hex(),
            "record_aad": aad.hex(),
        }


def _refuse(case: dict[str, Any], name: str, what: str, step: str, error: str, message: str,
            **changes: Any) -> dict[str, Any]:
    out = {**case, **changes, "name": name, "description": what}
    out.pop("plaintext")
    out.pop("intermediate", None)
    out["refuse"] = {"step": step, "error": error, "message": message}
    return out


def _flip(hex_value: str, index: int) -> str:
    raw = bytearray(bytes.fromhex(hex_value))
    raw[index] ^= 0x01
    return raw.hex()


def main() -> None:
    """Write the vectors, once."""
    if OUT.exists():
        raise SystemExit(f"{OUT} exists: the vectors are fixed; delete it first only for a new record format")
    m = Maker()
    first = m.case("col-watchlist-hit", "COL's redacted view of a watchlist hit: the first record under a data key",
                   "COL", "colombia-inbound-watchlist-hit.json")
    second = m.case("col-seizure-same-data-key", "COL's view of a seizure, sealed next under the same data key: "
                    "the same key block as col-watchlist-hit, another nonce", "COL", "senan-gofast-seizure.json")
    usa = m.case("usa-red-notice-hit", "USA's redacted view of a red-notice hit, under its own key",
                 "USA", "tocumen-red-notice-hit.json")
    positive = [first, second, usa]
    for case in positive:
        case["intermediate"] = m.intermediates(case)
    block_len = int.from_bytes(bytes.fromhex(first["value"])[3:5], "big")
    created_at_byte = 5 + 2 + len("COL") + 16 + 7
    forged = FeedSealer("COL", m.keys["COL"].public_key(), Ed25519PrivateKey.generate())
    old = _Unbound(_old_sealer(V1_COMMIT, "envelope_v1")("COL", m.keys["COL"].public_key(), m.broker))
    older_aad = _Unbound(_old_sealer(V2_COMMIT, "envelope_v2")("COL", m.keys["COL"].public_key(), m.broker))
    swapped = m.case("x", "", "COL", "darien-armed-group-sighting.json", alert_id="SNM:TOC-2025-3321")
    negative = [
        _refuse(first, "altered-ciphertext-byte", "col-watchlist-hit with one bit of the record ciphertext flipped",
                "record", "DecryptionError", "does not decrypt", value=_flip(first["value"], 17 + block_len + 3)),
        _refuse(first, "altered-key-block-byte", "col-watchlist-hit with one bit of the key block's created_at flipped",
                "signature", "SignatureError", "does not verify", value=_flip(first["value"], created_at_byte)),
        _refuse(first, "wrong-alert-id", "col-watchlist-hit read with another alert id in puente-alert-id "
                "(so in the record AAD)", "record", "DecryptionError", "does not decrypt",
                headers={**first["headers"], "puente-alert-id": "COL:DIJIN-2025-5541"}),
        _refuse(first, "wrong-topic", "col-watchlist-hit read from another topic (so another record AAD)",
                "record", "DecryptionError", "does not decrypt", topic="puente.feed.USA"),
        _refuse(first, "wrong-agreement", "col-watchlist-hit read with another agreement in puente-agreement "
                "(so in the record AAD): the header a store keeps the alert's retention by", "record",
                "DecryptionError", "does not decrypt", headers={**first["headers"], "puente-agreement": "PAN-USA"}),
        _refuse(first, "wrong-partner-key", "col-watchlist-hit opened as COL with an X25519 key that is not COL's",
                "unwrap", "DecryptionError", "does not unwrap",
                partner_private_key=_raw_private(X25519PrivateKey.generate())),
        _refuse(usa, "record-for-another-partner", "usa-red-notice-hit given to COL, opened with COL's key",
                "partner", "DecryptionError", "its key block is for partner 'USA'", partner="COL",
                partner_private_key=first["partner_private_key"]),
        _refuse(m.case("x", "", "COL", "colombia-inbound-watchlist-hit.json", sealer=forged), "signed-by-another-key",
                "COL's view sealed to COL's key but signed by an Ed25519 key that is not the broker's",
                "signature", "SignatureError", "does not verify"),
        _refuse(m.case("x", "", "COL", "colombia-inbound-watchlist-hit.json", sealer=old), "format-version-1",
                "COL's view sealed by the format 1 sealer (hand-made X25519 wrap, before HPKE)",
                "framing", "DecryptionError", "unsupported format version 1"),
        _refuse(m.case("x", "", "COL", "colombia-inbound-watchlist-hit.json", sealer=older_aad), "format-version-2",
                "COL's view sealed by the format 2 sealer (the agreement not yet in the record AAD)",
                "framing", "DecryptionError", "unsupported format version 2"),
        _refuse(swapped, "decoded-alert-id-mismatch", "a record whose headers and AAD name alert SNM:TOC-2025-3321 "
                "but whose plaintext is the view of SENAFRONT:BD-2025-0412: it decrypts, and must be refused "
                "after decoding", "decode", "CryptoError", "decrypted alert id differs"),
    ]
    doc = {
        "about": "Puente feed record test vectors, format 3; see docs/feed-format.md. Fixed once generated. "
                 "All hex is lowercase; keys are raw (32-byte X25519 private, 32-byte Ed25519 public). "
                 "Every positive case must open to its plaintext; every negative case must be refused at its step.",
        "record_format_version": envelope.FORMAT_VERSION,
        "key_block_version": envelope.KEY_BLOCK_VERSION,
        "hpke": {"mode": "base", "kem": "DHKEM(X25519, HKDF-SHA256)", "kem_id": 32, "kdf": "HKDF-SHA256",
                 "kdf_id": 1, "aead": "AES-256-GCM", "aead_id": 2,
                 "info_label": envelope.HPKE_INFO_LABEL.decode(), "aad": ""},
        "signature_context": envelope.KEY_BLOCK_SIGNATURE_CONTEXT.decode(),
        "record_aad_label": envelope.RECORD_AAD_LABEL.decode(),
        "steps": ["framing", "signature", "partner", "unwrap", "record", "decode"],
        "positive": positive,
        "negative": negative,
    }
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {len(positive)} positive, {len(negative)} negative", file=sys.stderr)


if __name__ == "__main__":
    main()
