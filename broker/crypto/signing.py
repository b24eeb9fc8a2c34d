"""The broker's Ed25519 signatures, each bound to the use it was made for.

One broker signing key signs two kinds of thing: the feed key blocks (see
:mod:`broker.crypto.envelope`) and the audit checkpoints. Each signature covers
a context label before the payload, so a signature made for one use can never
be replayed as a valid signature for the other, even if the payload bytes of a
checkpoint happened to parse as a key block. The labels are fixed ASCII without
NUL, and a NUL separates label from payload, so the signed message is
unambiguous.

Verification is strict, and every signature Puente checks goes through ``verify_with_context``:
besides the RFC 8032 equation OpenSSL checks, the verify key must be a canonical point of prime order
(no small-order component), the signature's ``R`` a canonical point not of small order, and its
``S`` below the group order. A small-order key or ``R`` lets anyone forge, and a mixed-order key
makes a signature's validity depend on the verifier's equation (``broker.crypto.edwards``); a
non-canonical ``R`` or an ``S + L`` is a second signature for the same message, which an audit
record would hash differently.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.crypto.edwards import POINT_LEN, canonical_scalar, strict_r, strong_point
from puente.errors import SignatureError

CHECKPOINT_CONTEXT = b"puente/audit-checkpoint/v1"
KEY_BLOCK_CONTEXT = b"puente/feed-key-block/v2"  # v2: the signed bytes changed meaning with HPKE

SIGNATURE_LEN = 64

# A verifier checks the same few keys again and again; the answer depends on the public bytes alone.
_strong_key = lru_cache(maxsize=1024)(strong_point)


def _message(context: bytes, payload: bytes) -> bytes:
    return context + b"\x00" + payload


def sign_with_context(signing_key: Ed25519PrivateKey, context: bytes, payload: bytes) -> bytes:
    """Sign ``payload`` for the use named by ``context``; 64 bytes."""
    return signing_key.sign(_message(context, payload))


def verify_with_context(
    verify_key: Ed25519PublicKey, context: bytes, payload: bytes, signature: bytes, *, what: str
) -> None:
    """Raise SignatureError unless ``signature`` is the broker's over ``payload`` for ``context``,
    verified strictly (module docstring): the one function every Ed25519 signature check in Puente
    goes through.

    ``what`` names the signed thing in the error message (never its bytes).
    """
    if len(signature) != SIGNATURE_LEN:
        raise SignatureError(f"{what} signature has {len(signature)} bytes, expected {SIGNATURE_LEN}")
    if not _strong_key(verify_key.public_bytes_raw()):
        raise SignatureError(f"{what}: the verify key is a small-order or non-canonical Ed25519 key, or has a "
                             "small-order component, under which signatures are forgeable or ambiguous; replace it "
                             "with the public half of a freshly generated key")
    if not (strict_r(signature[:POINT_LEN]) and canonical_scalar(signature[POINT_LEN:])):
        raise SignatureError(f"{what} signature is not in strict form (its R a small-order or non-canonical "
                             "point, or its S not below the group order): forged or altered")
    try:
        verify_key.verify(signature, _message(context, payload))
    except InvalidSignature as exc:
        raise SignatureError(
            f"{what} signature does not verify with the broker's key: forged, altered or signed by another key"
        ) from exc


def sign_checkpoint(signing_key: Ed25519PrivateKey, payload: bytes) -> bytes:
    """The broker's signature over an audit checkpoint's canonical bytes."""
    return sign_with_context(signing_key, CHECKPOINT_CONTEXT, payload)


def verify_checkpoint(verify_key: Ed25519PublicKey, payload: bytes, signature: bytes) -> None:
    """Return quietly if ``signature`` is the broker's over ``payload``; else raise SignatureError."""
    verify_with_context(verify_key, CHECKPOINT_CONTEXT, payload, signature, what="audit checkpoint")


def checker(keys: Mapping[str, Ed25519PublicKey]) -> Callable[[str, bytes, bytes], bool]:
    """(signer id, payload, signature) -> whether ``keys[signer]`` made that checkpoint signature.

    What the audit verifier and the chains' owners take: an unknown signer is simply not valid.
    """

    def verify(signer: str, payload: bytes, sig: bytes) -> bool:
        key = keys.get(signer)
        if key is None:
            return False
        try:
            verify_checkpoint(key, payload, sig)
        except SignatureError:
            return False
        return True

    return verify
