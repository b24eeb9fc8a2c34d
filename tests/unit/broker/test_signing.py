"""Audit checkpoint signatures: round trips, forgeries and separation from key-block signatures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.crypto.signing import KEY_BLOCK_CONTEXT, sign_checkpoint, verify_checkpoint, verify_with_context
from puente.errors import SignatureError

SIGNING_KEY = Ed25519PrivateKey.generate()
VERIFY_KEY = SIGNING_KEY.public_key()


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=2048))
def test_signature_round_trip(payload: bytes) -> None:
    """A checkpoint signed with the broker key verifies with its public half."""
    verify_checkpoint(VERIFY_KEY, payload, sign_checkpoint(SIGNING_KEY, payload))


def test_altered_payload_fails() -> None:
    """Changing one byte of the checkpoint makes its signature fail."""
    payload = b'{"partition": 0, "offset": 1000, "head": "ab12"}'
    signature = sign_checkpoint(SIGNING_KEY, payload)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_checkpoint(VERIFY_KEY, payload.replace(b"1000", b"1001"), signature)


@pytest.mark.parametrize("bit", [0, 7, 100, 255, 256, 400, 511])
def test_altered_signature_fails(bit: int) -> None:
    """Flipping any bit of the signature makes it fail."""
    payload = b"checkpoint"
    signature = bytearray(sign_checkpoint(SIGNING_KEY, payload))
    signature[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureError):
        verify_checkpoint(VERIFY_KEY, payload, bytes(signature))


def test_other_key_fails() -> None:
    """A signature by another Ed25519 key does not pass as the broker's."""
    payload = b"checkpoint"
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), payload)
    with pytest.raises(SignatureError, match="broker's key"):
        verify_checkpoint(VERIFY_KEY, payload, forged)


@pytest.mark.parametrize("length", [0, 63, 65])
def test_wrong_length_signature_fails(length: int) -> None:
    """A signature that is not 64 bytes is refused with its length named."""
    with pytest.raises(SignatureError, match=f"{length} bytes"):
        verify_checkpoint(VERIFY_KEY, b"checkpoint", bytes(length))


def test_checkpoint_signature_is_not_a_key_block_signature() -> None:
    """A checkpoint signature cannot be replayed as a feed key-block signature over the same bytes."""
    payload = b"bytes that might look like a key block"
    signature = sign_checkpoint(SIGNING_KEY, payload)
    with pytest.raises(SignatureError):
        verify_with_context(VERIFY_KEY, KEY_BLOCK_CONTEXT, payload, signature, what="feed key block")
