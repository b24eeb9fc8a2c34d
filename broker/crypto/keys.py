"""Key material: kinds, ids, secret bytes and the key-file format. Pure: the keystore
(``broker.keystore``) reads and writes the files.

Kinds of key (``KeyKind``), each 32 bytes, and who holds which half. Every private half is
made by its holder, on its holder's side, and never leaves it; only public halves are handed
over (``broker.crypto.pem``). No secret is shared between two parties.

    partner-encryption  X25519   the partner keeps the private half; the broker has the public half
    broker-signing      Ed25519  the broker keeps the private half; partners and auditors get the public half
    partner-signing     Ed25519  the partner keeps the private half and signs its receipts; the broker's
                                 auditors get the public half
    key-agreement       X25519   an agency's (owner: its code) or the broker's (owner: ``broker``); each
                                 keeps its private half and gives the other its public half, and both
                                 derive their pair's ingress MAC key (``broker.crypto.kex``)
    pseudonym           HMAC     32 random bytes per agreement, made and kept by the broker alone

A key id reads ``<owner>-<role>-<generation>``, e.g. ``COL-enc-2026a``, ``broker-sign-2026a``,
``SENAN-kex-2026a``, ``broker-kex-2026a``, ``PA-COL-2026-pseudo-2026a`` or ``COL-rcpt-2026a``; the
role (``enc``, ``sign``, ``kex``, ``pseudo``, ``rcpt``) must agree with the kind written in the
file. The owner may contain dashes. A new generation is a new key; a key is never replaced.

A key file is JSON (``record_to_json`` / ``record_from_json``)::

    {"key_id": "COL-enc-2026a", "kind": "partner-encryption", "created_at": "2026-01-05T10:00:00+00:00",
     "public": "<base64>", "secret": "<base64>"}

``public`` is present for X25519 and Ed25519 keys, ``secret`` wherever this holder has the
secret. Those five fields are all a key file may hold (``KEY_FILE_FIELDS``): any other field is
refused by name, since a reader could take one (``"revoked": true``, ``"algorithm"``...) to mean
something Puente does not enforce.

An Ed25519 public half is checked wherever it enters (a key file, a PEM, a record built by hand):
one of small order or not canonically encoded is refused (``check_ed25519_public``), since under it
anyone can make signatures that verify (``broker.crypto.edwards``).

Secrets are handed out as ``SecretBytes``, whose repr and str never show the bytes, and every
error names the key id and the problem, never the material.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.crypto.edwards import montgomery_prime_order, strong_point

# The broker's own key owner, from the layer below, where the policy refuses it as an agreement's or a partner's
# id (``RESERVED_OWNERS``): one name for both. Its module until ``policies`` names it among its public names.
from policies import BROKER_OWNER as BROKER_OWNER
from puente.errors import KeyMaterialError
from puente.strict import DuplicateKey, finite_float, no_constants, one_line, unique_keys

KEY_LEN = 32
MAX_KEY_FILE = 64 * 1024  # a key file is a few hundred bytes; anything bigger is not one
KEY_FILE_FIELDS = ("key_id", "kind", "created_at", "public", "secret")  # all that record_to_json writes


class KeyKind(StrEnum):
    """What a key is for; the value is what the JSON file says."""

    PARTNER_ENCRYPTION = "partner-encryption"
    BROKER_SIGNING = "broker-signing"
    KEY_AGREEMENT = "key-agreement"
    PSEUDONYM = "pseudonym"
    PARTNER_SIGNING = "partner-signing"

    @property
    def role(self) -> str:
        """The short role word in key ids of this kind."""
        return _ROLES[self]

    @property
    def asymmetric(self) -> bool:
        """True for key pairs (a public half exists)."""
        return self is not KeyKind.PSEUDONYM

    @property
    def algorithm(self) -> str | None:
        """``X25519`` or ``Ed25519`` for key pairs; None for a secret without a public half."""
        if self in _X25519_KINDS:
            return "X25519"
        return "Ed25519" if self in _SIGNING_KINDS else None


_ROLES = {
    KeyKind.PARTNER_ENCRYPTION: "enc",
    KeyKind.BROKER_SIGNING: "sign",
    KeyKind.KEY_AGREEMENT: "kex",  # an agency's or the broker's half of an ingress MAC key agreement
    KeyKind.PSEUDONYM: "pseudo",
    KeyKind.PARTNER_SIGNING: "rcpt",  # a partner's receipt-signing key
}
_SIGNING_KINDS = (KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
_X25519_KINDS = (KeyKind.PARTNER_ENCRYPTION, KeyKind.KEY_AGREEMENT)
# Key ids become file names: a tight alphabet and an alphanumeric first character keep
# them out of path traversal and away from the dot-files used for atomic writes.
_OWNER = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
KEY_OWNER = re.compile(_OWNER)  # a party's name as key ids hold it (``KEY_ID_PATTERN``'s owner)
KEY_ID_PATTERN = re.compile(
    rf"(?P<owner>{_OWNER})-(?P<role>enc|sign|kex|pseudo|rcpt)-(?P<gen>[A-Za-z0-9]{{1,16}})"
)


class SecretBytes:
    """Secret key bytes that never show themselves in repr, str, f-strings or pickles."""

    __slots__ = ("_key_id", "_value")

    def __init__(self, value: bytes, *, key_id: str) -> None:
        self._value = bytes(value)
        self._key_id = key_id

    @property
    def key_id(self) -> str:
        """The id of the key these bytes are."""
        return self._key_id

    def reveal(self) -> bytes:
        """The raw bytes, for the one call that needs them (HMAC, AES, X25519, Ed25519)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(key_id={self._key_id!r}, ****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return self._key_id == other._key_id and hmac.compare_digest(self._value, other._value)

    __hash__ = None  # type: ignore[assignment]  # equal secrets must not become dict keys by value

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled: secrets stay in this process")


@dataclass(frozen=True)
class KeyId:
    """A parsed key id."""

    owner: str
    kind: KeyKind
    generation: str

    def __str__(self) -> str:
        return f"{self.owner}-{self.kind.role}-{self.generation}"


def parse_key_id(key_id: str) -> KeyId:
    """Split ``COL-enc-2026a`` into owner, kind and generation; KeyMaterialError if it is no key id."""
    match = KEY_ID_PATTERN.fullmatch(key_id)
    if match is None:
        raise KeyMaterialError(
            f"{key_id[:80]!r} is not a key id: expected <owner>-<enc|sign|kex|pseudo|rcpt>-<generation> "
            "using letters, digits, '_', '.' and '-'"
        )
    kind = next(k for k, role in _ROLES.items() if role == match["role"])
    return KeyId(match["owner"], kind, match["gen"])


_GENERATION_RUNS = re.compile(r"[0-9]+|[A-Za-z]+")


def compare_generations(a: str, b: str) -> int | None:
    """Whether generation ``a`` is older (-1), the same as (0) or newer (1) than ``b``, or None when their labels
    do not say. Labels are compared run by run, digits as numbers and letters alphabetically, so ``2026a`` <
    ``2026b`` < ``2027a`` and ``9a`` < ``10a``. Runs of different sorts (``2026a``, ``spring``), letter runs of
    different lengths (``2026z``, ``2026aa``), the same run spelt two ways (``2026A``, ``2026a``; ``01``, ``1``)
    or one label running on past the other (``2026``, ``2026a``) say nothing: the caller refuses rather than
    guess."""
    runs_a, runs_b = _GENERATION_RUNS.findall(a), _GENERATION_RUNS.findall(b)
    if len(runs_a) != len(runs_b):
        return None
    for x, y in zip(runs_a, runs_b, strict=True):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            if int(x) == int(y):
                return None  # 01 and 1
            return -1 if int(x) < int(y) else 1
        if x.isdigit() or y.isdigit() or len(x) != len(y) or x.lower() == y.lower():
            return None
        return -1 if x.lower() < y.lower() else 1
    return 0


def newer_generation(key: str, than: str, order: Sequence[str] = ()) -> bool:
    """Whether key id ``key`` is a newer generation of the same owner's key of the same kind as ``than``: by their
    labels where they say (``compare_generations``: ``broker-sign-2026b`` is newer than ``broker-sign-2026a``),
    else by ``order``, the keys newest first (the broker's workers pass their keystore's). False for the same key,
    and for keys neither orders: not key ids, not the same owner's or kind, or labels that say nothing and no
    ``order`` holding both."""
    if key == than:
        return False
    try:
        a, b = parse_key_id(key), parse_key_id(than)
    except KeyMaterialError:
        pass
    else:
        if (a.owner, a.kind) == (b.owner, b.kind):
            by_label = compare_generations(a.generation, b.generation)
            if by_label is not None:
                return by_label == 1
    return key in order and than in order and order.index(key) < order.index(than)


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored: its id, kind, creation time and whichever halves this holder has."""

    key_id: str
    kind: KeyKind
    created_at: datetime
    public: bytes | None
    secret: SecretBytes | None

    @property
    def owner(self) -> str:
        """The partner, agency, agreement or ``broker`` the key belongs to."""
        return parse_key_id(self.key_id).owner

    def public_only(self) -> KeyRecord:
        """This key without its secret: what may be given to the other side."""
        if self.public is None:
            raise KeyMaterialError(f"key {self.key_id}: a {self.kind} key has no public half to export")
        return replace(self, secret=None)

    def _secret(self, kind: KeyKind) -> SecretBytes:
        self._expect(kind)
        if self.secret is None:
            raise KeyMaterialError(f"key {self.key_id}: this keystore holds only the public half")
        return self.secret

    def _public(self, kind: KeyKind) -> bytes:
        self._expect(kind)
        if self.public is None:  # loaded files always have it; a hand-built record may not
            raise KeyMaterialError(f"key {self.key_id}: has no public half")
        return self.public

    def _expect(self, kind: KeyKind) -> None:
        if self.kind is not kind:
            raise KeyMaterialError(f"key {self.key_id}: kind is {self.kind}, expected {kind}")

    def x25519_private(self) -> X25519PrivateKey:
        """The partner's private decryption key."""
        return X25519PrivateKey.from_private_bytes(self._secret(KeyKind.PARTNER_ENCRYPTION).reveal())

    def x25519_public(self) -> X25519PublicKey:
        """The partner's public encryption key."""
        return X25519PublicKey.from_public_bytes(self._public(KeyKind.PARTNER_ENCRYPTION))

    def ed25519_private(self) -> Ed25519PrivateKey:
        """A signing key: the broker's, or a partner's receipt-signing key."""
        return Ed25519PrivateKey.from_private_bytes(self._secret(self._signing_kind()).reveal())

    def ed25519_public(self) -> Ed25519PublicKey:
        """A verify key: the broker's, or a partner's for its receipts (checked by ``ed25519_public_key``)."""
        return ed25519_public_key(self.key_id, self._public(self._signing_kind()))

    def agreement_private(self) -> X25519PrivateKey:
        """This holder's private key-agreement key (an agency's, or the broker's)."""
        return X25519PrivateKey.from_private_bytes(self._secret(KeyKind.KEY_AGREEMENT).reveal())

    def agreement_public(self) -> X25519PublicKey:
        """A key-agreement public half: the other side's, as imported, or this holder's own."""
        return X25519PublicKey.from_public_bytes(self._public(KeyKind.KEY_AGREEMENT))

    def _signing_kind(self) -> KeyKind:
        if self.kind not in _SIGNING_KINDS:
            raise KeyMaterialError(f"key {self.key_id}: kind is {self.kind}, expected a signing key")
        return self.kind

    def symmetric(self, kind: KeyKind) -> SecretBytes:
        """The secret of a pseudonym key (the one kind without a public half)."""
        if kind.asymmetric:
            raise ValueError("symmetric() is for pseudonym keys")
        return self._secret(kind)


def x25519_exchange(private: X25519PrivateKey, public: X25519PublicKey, *, key_id: str) -> bytes:
    """The X25519 shared secret of ``private`` and the public half ``key_id``; KeyMaterialError when
    there is none: the public half is a low-order point (all-zero, one, an order-8 point...), which
    gives the all-zero result whatever the private half, so nothing can be sealed or agreed with it."""
    try:
        return private.exchange(public)
    except ValueError:  # cryptography refuses the all-zero result
        raise KeyMaterialError(f"key {key_id}: not a usable X25519 public key (a low-order point: no shared "
                               "secret); ask its owner for the public half of a freshly generated key") from None


# A key's point check costs about 2 ms (``edwards.in_prime_subgroup``) and depends on its 32 bytes alone: the
# same keys are loaded again and again (each ``ed25519_public``, every reader's keystore walk).
_strong = functools.lru_cache(maxsize=1024)(strong_point)


_FIELD_PRIME = 2**255 - 19  # X25519's u-coordinate is a number below this, in 255 bits
# As ``_strong``: about 2 ms a key, the same keys loaded again and again.
_prime_order = functools.lru_cache(maxsize=1024)(montgomery_prime_order)


def check_x25519_public(key_id: str, public: bytes) -> None:
    """Refuse (KeyMaterialError) an X25519 public half that is not the canonical encoding of its u-coordinate (the
    top bit set, or a number not below the field prime: X25519 ignores the one and reduces the other, so one key
    has several encodings, and could be held under two ids with two fingerprints); one nothing can be sealed
    to or agreed with: one trial exchange with a fresh private key, which fails for every low-order point and
    only for those; and one that is not a point of prime order (``edwards.montgomery_prime_order``): a real key
    ``P`` plus a point of small order gives ``P``'s holder the same shared secrets under other bytes, so it
    would pass every check that compares keys by their bytes (one key under two parties' ids), and a u-coordinate
    on the curve's twist is no key at all. Every X25519 key made by its holder passes."""
    try:
        key = X25519PublicKey.from_public_bytes(public)
    except ValueError:
        raise KeyMaterialError(f"key {key_id}: not an X25519 public key") from None
    if int.from_bytes(public, "little") >= _FIELD_PRIME:  # the top bit set makes it 2**255 or more
        raise KeyMaterialError(f"key {key_id}: not the canonical encoding of an X25519 public key (the top bit set, "
                               "or a value past the field prime), so one key would read as several; ask its owner "
                               "for the public half as its key tools export it")
    x25519_exchange(X25519PrivateKey.generate(), key, key_id=key_id)
    if not _prime_order(public):
        raise KeyMaterialError(f"key {key_id}: not an X25519 public key of prime order (a key with a small-order "
                               "component, which its maker's private half agrees with as with the key itself, or no "
                               "point of the curve at all); ask its owner for the public half as its key tools "
                               "export it")


def check_ed25519_public(key_id: str, public: bytes) -> None:
    """Refuse (KeyMaterialError, naming ``key_id``) an Ed25519 public half that is not the canonical
    encoding of a curve point, or whose point has small order (under such a key anyone can make a
    signature that verifies, with no private key) or a small-order component (``broker.crypto.edwards``)."""
    if not _strong(public):
        raise KeyMaterialError(f"key {key_id}: small-order or non-canonical Ed25519 key, or one with a small-order "
                               "component, under which signatures are forgeable or ambiguous; ask its owner for the "
                               "public half of a freshly generated key")


def ed25519_public_key(key_id: str, public: bytes) -> Ed25519PublicKey:
    """The verify key ``key_id`` from its raw 32 bytes, checked by ``check_ed25519_public``: the one
    place Puente turns bytes into an Ed25519 public key."""
    check_ed25519_public(key_id, public)
    return Ed25519PublicKey.from_public_bytes(public)


FINGERPRINT_PREFIX = "sha256:"
_FINGERPRINT_TEXT = re.compile(r"\s*(?:[sS][hH][aA]256:)?\s*((?:[0-9a-fA-F]{2}[\s:]?){31}[0-9a-fA-F]{2})\s*", re.ASCII)


def fingerprint(public: bytes) -> str:
    """The fingerprint of a raw public half, e.g. ``sha256:ab12 cd34 ...`` (SHA-256 of the raw 32
    bytes, lowercase hex in groups of four): what two parties read to each other, over a channel
    other than the one the key came by, to know a public half is the one its owner made."""
    digest = hashlib.sha256(public).hexdigest()
    return FINGERPRINT_PREFIX + " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def parse_fingerprint(text: str) -> str | None:
    """``text`` as a fingerprint in the form ``fingerprint`` writes, or None if it is none: the
    ``sha256:`` prefix is optional, the case of the hex digits free, and spaces or colons may
    separate them, so an operator may type what was read out, or paste the colon form."""
    match = _FINGERPRINT_TEXT.fullmatch(text)
    if match is None:
        return None
    digits = re.sub(r"[\s:]", "", match[1]).lower()
    return FINGERPRINT_PREFIX + " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


def new_key(kind: KeyKind, owner: str, generation: str, now: datetime) -> KeyRecord:
    """Fresh random key material of ``kind`` for ``owner`` (not yet written anywhere)."""
    key_id = str(KeyId(owner, kind, generation))
    # Reject owners and generations that would not survive as file names, and any whose id reads back as
    # another key's: a generation holding a role (``x-enc-y``) would give COL's key the id of owner COL-enc-x.
    if parse_key_id(key_id) != KeyId(owner, kind, generation):
        raise KeyMaterialError(f"{key_id[:80]!r} does not read back as {owner[:64]}'s {kind.value} key of generation "
                               f"{generation[:20]!r}: a generation is 1-16 letters and digits")
    public: bytes | None = None
    if kind in _X25519_KINDS:
        x_priv = X25519PrivateKey.generate()
        raw = x_priv.private_bytes_raw()
        public = x_priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    elif kind in _SIGNING_KINDS:
        e_priv = Ed25519PrivateKey.generate()
        raw = e_priv.private_bytes_raw()
        public = e_priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    else:
        raw = secrets.token_bytes(KEY_LEN)
    return KeyRecord(key_id, kind, now, public, SecretBytes(raw, key_id=key_id))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(key_id: str, field: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise KeyMaterialError(f"key {key_id}: field {field!r} is not a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # from None: the failed input may be secret and must not ride along in the chain
        raise KeyMaterialError(f"key {key_id}: field {field!r} is not valid base64") from None
    if len(data) != KEY_LEN:
        raise KeyMaterialError(f"key {key_id}: field {field!r} holds {len(data)} bytes, expected {KEY_LEN}")
    return data


def _derived_public(kind: KeyKind, secret: bytes) -> bytes:
    if kind in _X25519_KINDS:
        return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def possible_publics(secret: bytes) -> tuple[bytes, bytes]:
    """The public halves ``secret`` would have as an X25519 and as an Ed25519 private key. A file can call a
    private key by another kind (a pseudonym key, a retired MAC key, which have no public half to check it
    against): comparing these with the public keys held tells whose key it really is."""
    return (_derived_public(KeyKind.KEY_AGREEMENT, secret), _derived_public(KeyKind.BROKER_SIGNING, secret))


def refuse_one_key_two_ids(records: Iterable[KeyRecord], where: str) -> None:
    """KeyMaterialError (one line naming both ids, never key material) when ``records``, the keys a reader verifies
    with or looks up by id, hold one public half under two ids, or two public halves under one id; ``where`` names
    what they were read from (``keystore PATH``, ``the --verify-key files``).

    A reader takes a key's id for its owner and generation. One key under two owners' ids lets either act as the
    other: a partner's receipt key filed also as ``broker-sign-<g>`` signs decision blocks, deliveries and recall
    notices the auditors take for the broker's, and names a newer broker generation so the real key looks retired.
    Under two generations of one owner's key, one id was mistyped, and its label can retire the key in use. Two
    keys under one id (two files given for it) leave the reader to keep whichever came last. Public halves are
    compared as bytes whatever kind each file calls its key, as the keystore's own checks do
    (``broker.keystore.Keystore.broker_custody_problems``): one key filed as another kind is still one key. The
    same key under the same id twice (one file given twice) is one key, not two. Every reader that builds a
    verifier or a lookup from a folder or a list of public halves refuses through this one check."""
    by_public: dict[bytes, KeyRecord] = {}
    by_id: dict[str, KeyRecord] = {}
    shown = one_line(where)
    for record in records:
        same_id = by_id.setdefault(record.key_id, record)
        if same_id.public != record.public:
            raise KeyMaterialError(
                f"{shown}: two different keys are given as {record.key_id}: keep {record.owner}'s own, compared with "
                "its fingerprint (`puente keys export-public` prints it), and leave out the other")
        if record.public is None:
            continue  # a pseudonym key: no public half to take for another's
        first = by_public.setdefault(record.public, record)
        if first.key_id == record.key_id:
            continue
        if first.owner == record.owner and first.kind is record.kind:
            raise KeyMaterialError(
                f"{shown}: one public key is held as {first.key_id} and as {record.key_id}, two generations of "
                f"{record.owner}'s key: one id was mistyped; remove the one whose id is not the one its owner gave")
        if first.owner == record.owner:
            raise KeyMaterialError(
                f"{shown}: one public key is held as {first.key_id} and as {record.key_id}, two kinds of "
                f"{record.owner}'s keys: one of them is not the key its id says; compare each with its owner's "
                "fingerprint (`puente keys export-public` prints it) and remove the one that is not")
        raise KeyMaterialError(
            f"{shown}: one public key is held as {first.key_id} ({first.owner}'s) and as {record.key_id} "
            f"({record.owner}'s), so {first.owner} and {record.owner} could act as each other: compare each with its "
            "owner's fingerprint (`puente keys export-public` prints it), remove the file that is not its owner's "
            "key and import the right PEM (`puente keys import-public`)")


def record_to_json(record: KeyRecord) -> bytes:
    """The file contents for ``record``."""
    doc: dict[str, str] = {
        "key_id": record.key_id,
        "kind": str(record.kind),
        "created_at": record.created_at.isoformat(),
    }
    if record.public is not None:
        doc["public"] = _b64(record.public)
    if record.secret is not None:
        doc["secret"] = _b64(record.secret.reveal())
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def record_from_json(data: bytes, *, key_id: str) -> KeyRecord:
    """Parse and check a key file's contents that should hold ``key_id``."""
    try:
        doc = json.loads(data, object_pairs_hook=unique_keys, parse_constant=no_constants, parse_float=finite_float)
    except DuplicateKey as dup:
        raise KeyMaterialError(f"key {key_id}: field {dup.key[:40]!r} appears twice in the file") from None
    except (UnicodeDecodeError, ValueError):
        raise KeyMaterialError(f"key {key_id}: file is not valid JSON") from None
    except RecursionError:  # lists or objects nested thousands deep: no key file is
        raise KeyMaterialError(f"key {key_id}: file is not a key file (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise KeyMaterialError(f"key {key_id}: file is not a JSON object")
    unknown = [f for f in doc if f not in KEY_FILE_FIELDS]
    if unknown:
        # The name only, cut and escaped: a value could be secret, and a name could hold anything.
        raise KeyMaterialError(f"key {key_id}: unknown field {unknown[0][:40]!r} in the key file (a key file "
                               f"holds only {', '.join(KEY_FILE_FIELDS)})")
    missing = [f for f in ("key_id", "kind", "created_at") if f not in doc]
    if missing:
        raise KeyMaterialError(f"key {key_id}: file lacks {', '.join(missing)}")
    if doc["key_id"] != key_id:
        raise KeyMaterialError(f"key {key_id}: file names key {str(doc['key_id'])[:80]!r} instead")
    try:
        kind = KeyKind(doc["kind"])
    except ValueError:
        raise KeyMaterialError(f"key {key_id}: unknown kind {str(doc['kind'])[:40]!r}") from None
    if parse_key_id(key_id).kind is not kind:
        raise KeyMaterialError(f"key {key_id}: file says kind {kind} but the id's role is not {kind.role!r}")
    try:
        created_at = datetime.fromisoformat(str(doc["created_at"]))
    except ValueError:
        raise KeyMaterialError(f"key {key_id}: created_at is not an ISO 8601 time") from None
    if created_at.tzinfo is None:
        raise KeyMaterialError(f"key {key_id}: created_at has no time zone")
    public = _unb64(key_id, "public", doc["public"]) if "public" in doc else None
    secret = _unb64(key_id, "secret", doc["secret"]) if "secret" in doc else None
    _check_halves(key_id, kind, public, secret)
    wrapped = None if secret is None else SecretBytes(secret, key_id=key_id)
    return KeyRecord(key_id, kind, created_at, public, wrapped)


def _check_halves(key_id: str, kind: KeyKind, public: bytes | None, secret: bytes | None) -> None:
    if kind.asymmetric:
        if public is None:
            raise KeyMaterialError(f"key {key_id}: a {kind} key file must have a public half")
        if secret is not None and not hmac.compare_digest(_derived_public(kind, secret), public):
            raise KeyMaterialError(f"key {key_id}: the public half does not belong to the secret half")
        if secret is None and kind in _X25519_KINDS:
            # Only an imported half can be low-order (one derived from a secret never is); refused at load,
            # so a bad key stops start-up instead of every seal to it failing later.
            check_x25519_public(key_id, public)
        if kind in _SIGNING_KINDS:
            check_ed25519_public(key_id, public)
    else:
        if secret is None:
            raise KeyMaterialError(f"key {key_id}: a {kind} key file must have a secret")
        if public is not None:
            raise KeyMaterialError(f"key {key_id}: a {kind} key has no public half, but the file has one")


