"""Ingress authenticity: proof that an ingress record comes from the agency it names.

Each agency's adapter MACs every record it produces with HMAC-SHA256 under a 32-byte key
it shares with the broker, and sends the proof as Kafka headers::

    puente-agency    the agency code, UTF-8 (e.g. SENAN)
    puente-key-id    the MAC key's id, UTF-8 (e.g. SENAN-mac-2026a), so keys can rotate
    puente-alert-id  the alert id, UTF-8, so the broker can check for replays before decoding
    puente-published when the adapter published it: Unix milliseconds, ASCII digits
    puente-mac       32 bytes: HMAC-SHA256(key, message)

    message = b"puente/ingress/v2" NUL
              || the lengths of agency, key id, alert id, published and value, each 4 bytes big-endian
              || agency || key id || alert id || published || value

Giving all the lengths first makes the message unambiguous: no two different
(agency, key id, alert id, published, value) tuples encode to the same bytes. (One struct
call for the lengths is also cheaper than five.)

Why a shared-key MAC and not a per-record Ed25519 signature by the agency: the only
verifier of an ingress record is the broker, and the agencies already trust the broker
(it reads every alert in clear to apply their policies), so the one thing a signature
adds, proof that even the broker could not have forged, buys nothing here. The cost
does matter: measured on one core of this 2-core machine (bench/bench_crypto.py), Ed25519
verifies about 8k records/s, which alone would cap the broker far below Kafka's 50-100k/s,
while the HMAC-SHA256 check of a 1 KiB record runs at about 160k/s. What the MAC proves
is that a holder of that agency's key produced exactly these
bytes under this alert id; one agency cannot pass records off as another's, and a record
altered in Kafka fails. Partners never see these MACs: they verify the broker's own
Ed25519 signature on the feed key blocks instead. In a real deployment Kafka's SASL
authentication and per-topic ACLs would add authenticated producers (only SENAN's
principal may write SENAN's ingress topic); the MAC still holds if the ACLs are
misconfigured or the record is copied elsewhere.

What it does not prove on its own: freshness. A replayed record verifies again. The
signed publication time bounds how long the broker must remember alert ids: a record
that reaches Kafka more than the replay window after it was published is refused as
stale, and within the window the broker's check on the (authenticated) alert id catches
the replay.

Pure: no I/O, and no clock unless ``sign_ingress`` is left to stamp the time.
``verify_ingress`` gets keys through ``lookup``, e.g. ``Keystore.agency_mac_lookup()``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from broker.crypto.keys import SecretBytes
from puente import wire
from puente.errors import OriginError

AGENCY_HEADER = wire.AGENCY
KEY_ID_HEADER = wire.KEY_ID
ALERT_ID_HEADER = wire.ALERT_ID
PUBLISHED_HEADER = wire.PUBLISHED
MAC_HEADER = wire.MAC
_HEADERS = (AGENCY_HEADER, KEY_ID_HEADER, ALERT_ID_HEADER, PUBLISHED_HEADER, MAC_HEADER)
_HEADER_SET = frozenset(_HEADERS)
_LABEL = b"puente/ingress/v2\x00"
_LENGTHS = struct.Struct(">IIIII")


class IngressOrigin(NamedTuple):
    """Who verifiably produced an ingress record, and under which alert id and key."""

    agency: str
    alert_id: str
    key_id: str
    published_ms: int


def _message(agency: bytes, key_id: bytes, alert_id: bytes, published: bytes, value: bytes) -> bytes:
    lengths = _LENGTHS.pack(len(agency), len(key_id), len(alert_id), len(published), len(value))
    return b"".join((_LABEL, lengths, agency, key_id, alert_id, published, value))


def _mac(key: bytes, agency: bytes, key_id: bytes, alert_id: bytes, published: bytes, value: bytes) -> bytes:
    message = _message(agency, key_id, alert_id, published, value)
    return hmac.digest(key, message, "sha256")  # the name, not hashlib.sha256, takes the faster one-shot path


_TRANS_36 = bytes(x ^ 0x36 for x in range(256))
_TRANS_5C = bytes(x ^ 0x5C for x in range(256))
_PADS_LIMIT = 1024
_pads_cache: dict[int, tuple[SecretBytes, Any, Any]] = {}


def _verifier_mac(key: SecretBytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) from the key's inner and outer pad states, hashed once per key.

    The broker checks every record against one of a few keys: starting from the hashed pads
    halves the cost of ``hmac.digest``, which sets the key up again for every message. The
    adapters sign with ``hmac.digest``, so every verification also checks one against the other.
    """
    found = _pads_cache.get(id(key))
    if found is None or found[0] is not key:  # an id can be reused once its object is gone
        raw = key.reveal()
        if len(raw) > 64:
            raw = hashlib.sha256(raw).digest()
        raw = raw.ljust(64, b"\0")
        if len(_pads_cache) >= _PADS_LIMIT:
            _pads_cache.clear()
        found = (key, hashlib.sha256(raw.translate(_TRANS_36)), hashlib.sha256(raw.translate(_TRANS_5C)))
        _pads_cache[id(key)] = found
    inner = found[1].copy()
    inner.update(message)
    outer = found[2].copy()
    outer.update(inner.digest())
    return outer.digest()


def sign_ingress(
    agency: str, key_id: str, mac_key: SecretBytes, value: bytes, alert_id: str, published_ms: int | None = None
) -> list[tuple[str, bytes]]:
    """The Kafka headers an agency's adapter adds to an ingress record to prove its origin.

    ``published_ms`` is the publication time in Unix milliseconds; by default, the clock now.
    """
    if mac_key.key_id != key_id:
        raise ValueError(f"mac_key is key {mac_key.key_id!r}, not {key_id!r}")
    if not (agency and alert_id):
        # verify_ingress treats an empty header as missing, so refuse to make one
        raise ValueError("agency and alert_id must not be empty")
    if published_ms is None:
        published_ms = time.time_ns() // 1_000_000
    agency_b, key_id_b, alert_b = agency.encode("utf-8"), key_id.encode("utf-8"), alert_id.encode("utf-8")
    published_b = str(int(published_ms)).encode()
    mac = _mac(mac_key.reveal(), agency_b, key_id_b, alert_b, published_b, value)
    return [(AGENCY_HEADER, agency_b), (KEY_ID_HEADER, key_id_b), (ALERT_ID_HEADER, alert_b),
            (PUBLISHED_HEADER, published_b), (MAC_HEADER, mac)]


def _short(raw: bytes) -> str:
    # Header text is attacker-controlled: quote it and cut it so it cannot flood a log line.
    return repr(raw[:64].decode("utf-8", "replace"))


def verify_ingress(
    headers: Iterable[tuple[str, bytes | None]] | None,
    value: bytes,
    lookup: Callable[[str, str], SecretBytes | None],
) -> IngressOrigin:
    """Return who produced ``value`` if its headers prove it; raise OriginError otherwise.

    ``lookup(agency, key_id)`` returns that agency's MAC key with that id, or None. Other
    headers are ignored; a Puente header given twice is refused rather than guessed at.
    The caller should still check that the decoded alert names the same agency and
    alert id as the returned origin.
    """
    found: dict[str, bytes] = {}
    for name, raw in headers or ():
        if name in _HEADER_SET:
            if name in found:
                raise OriginError(f"ingress record has header {name} more than once")
            found[name] = raw or b""
    if len(found) != len(_HEADERS) or not all(found.values()):
        missing = [h for h in _HEADERS if not found.get(h)]
        raise OriginError(f"ingress record lacks origin header(s): {', '.join(missing)}")
    try:
        agency = found[AGENCY_HEADER].decode("utf-8")
        key_id = found[KEY_ID_HEADER].decode("utf-8")
        alert_id = found[ALERT_ID_HEADER].decode("utf-8")
    except UnicodeDecodeError:
        raise OriginError("ingress record has an origin header that is not UTF-8") from None
    key = lookup(agency, key_id)
    if key is None:
        raise OriginError(
            f"ingress record names agency {_short(found[AGENCY_HEADER])} and key "
            f"{_short(found[KEY_ID_HEADER])}, which is not a known MAC key of that agency"
        )
    published = found[PUBLISHED_HEADER]
    if not (published.isdigit() and len(published) <= 15):
        raise OriginError("ingress record has a publication time that is not Unix milliseconds")
    expected = _verifier_mac(key, _message(found[AGENCY_HEADER], found[KEY_ID_HEADER], found[ALERT_ID_HEADER],
                                           published, value))
    if not hmac.compare_digest(expected, found[MAC_HEADER]):
        raise OriginError(
            f"ingress record MAC does not verify for agency {_short(found[AGENCY_HEADER])} with key "
            f"{_short(found[KEY_ID_HEADER])}: the record, its alert id or its headers were altered, "
            "or it was not made with that agency's key"
        )
    return IngressOrigin(agency, alert_id, key_id, int(published))
