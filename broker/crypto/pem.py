"""Public halves in a standard format, for handing a key to the other side. Pure: bytes in, bytes out.

A public half travels as PEM SubjectPublicKeyInfo (RFC 5280 and RFC 8410; ``-----BEGIN PUBLIC
KEY-----``), which OpenSSL and every other toolkit read, so no party needs Puente to inspect what
it is given. The receiving side names the key with its id, since SubjectPublicKeyInfo carries no
name; the id's role says which key type the PEM must hold:

    enc, kex      X25519
    sign, rcpt    Ed25519
    pseudo        none: a pseudonym key has no public half and never leaves the broker

Anything else is refused with one line naming the file: another key type, a private key (of any
PEM flavour), more than one PEM block (whatever its label or case), text before or after the block
(CRLF line ends and a UTF-8 byte-order mark are fine), a block that is not the DER encoding of one
key, an X25519 public key not canonically encoded (the top bit set, or past the field prime: one key
would read as several) or of low order (nothing could be sealed to it or agreed with it), or an
Ed25519 public key of small order or not canonically encoded (anyone could forge signatures under
it: ``broker.crypto.edwards``). Messages never quote the input.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from broker.crypto.keys import KeyRecord, check_ed25519_public, check_x25519_public, ed25519_public_key, parse_key_id
from puente.errors import KeyMaterialError

_BEGIN = re.compile(rb"-----\s*BEGIN\s*([^-\r\n]{0,40})-----", re.IGNORECASE)  # any label, any case: counted
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, which some editors put first: not text around the key
_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----\n((?:[^-\n][^\n]*\n)+)-----END PUBLIC KEY-----")
_TYPES = {"X25519": X25519PublicKey, "Ed25519": Ed25519PublicKey}


def public_pem(record: KeyRecord) -> bytes:
    """``record``'s public half as PEM SubjectPublicKeyInfo; KeyMaterialError for a key without one."""
    public = record.public
    if public is None or record.kind.algorithm is None:
        raise KeyMaterialError(f"key {record.key_id}: a {record.kind} key has no public half to export")
    if record.kind.algorithm == "X25519":
        key: X25519PublicKey | Ed25519PublicKey = X25519PublicKey.from_public_bytes(public)
    else:
        key = ed25519_public_key(record.key_id, public)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def public_from_pem(data: bytes, *, key_id: str, created_at: datetime, source: str) -> KeyRecord:
    """The public-only record ``key_id`` from PEM ``data`` read from ``source`` (named in every error).

    ``created_at`` is when this side received it: SubjectPublicKeyInfo carries no time.
    """
    kind = parse_key_id(key_id).kind
    expected = kind.algorithm
    if expected is None:
        raise KeyMaterialError(f"{source}: key {key_id} is a {kind} key, which has no public half to import")
    blocks = [m.group(1).decode("ascii", "replace") for m in _BEGIN.finditer(data)]
    if any("PRIVATE" in label.upper() for label in blocks):
        raise KeyMaterialError(f"{source}: holds a private key; import only the other side's public half "
                               "(PEM SubjectPublicKeyInfo, BEGIN PUBLIC KEY), and keep private keys where they are")
    whole = _PUBLIC.fullmatch(data.removeprefix(_BOM).replace(b"\r\n", b"\n").strip())
    if blocks != ["PUBLIC KEY"] or whole is None:
        found = ("no PEM block" if not blocks else
                 f"PEM block(s) {', '.join(repr(b[:30]) for b in blocks[:3])}" if blocks != ["PUBLIC KEY"] else
                 "text before or after the block")
        raise KeyMaterialError(f"{source}: expected one PEM 'PUBLIC KEY' block (SubjectPublicKeyInfo) and nothing "
                               f"else, found {found}")
    try:
        der = base64.b64decode(b"".join(whole.group(1).split()), validate=True)
        key = load_der_public_key(der)
        if key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != der:
            raise ValueError("not DER")  # one key, one encoding: nothing rides along inside the block
    except (ValueError, TypeError):  # from None: the failing input stays out of the chain
        raise KeyMaterialError(f"{source}: not a valid PEM public key (SubjectPublicKeyInfo)") from None
    except UnsupportedAlgorithm:
        raise KeyMaterialError(f"{source}: holds a public key of a type Puente does not use") from None
    wanted = _TYPES[expected]
    if not isinstance(key, wanted):
        got = next((name for name, cls in _TYPES.items() if isinstance(key, cls)), type(key).__name__.lstrip("_"))
        raise KeyMaterialError(f"{source}: holds a public key of type {got}, but {key_id} is a {kind} key, "
                               f"which must be {expected}")
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        if isinstance(key, X25519PublicKey):
            check_x25519_public(key_id, raw)
        else:
            check_ed25519_public(key_id, raw)
    except KeyMaterialError as exc:
        raise KeyMaterialError(f"{source}: {exc}") from None
    return KeyRecord(key_id, kind, created_at, raw, None)
