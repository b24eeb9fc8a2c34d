"""Key material and the on-disk keystore: the only module of ``broker.crypto`` that does I/O.

Kinds of key (``KeyKind``), each 32 bytes, and who holds which half:

    partner-encryption  X25519   the partner keeps the private half; the broker has the public half
    broker-signing      Ed25519  the broker keeps the private half; partners and auditors get the public half
    agency-mac          HMAC     32 random bytes shared by one agency's adapter and the broker
    pseudonym           HMAC     32 random bytes per agreement, for the policy layer's pseudonyms
    partner-signing     Ed25519  the partner keeps the private half and signs its receipts; the broker's
                                 auditors get the public half

A key id reads ``<owner>-<role>-<generation>``, e.g. ``COL-enc-2026a``, ``broker-sign-2026a``,
``SENAN-mac-2026a``, ``PA-COL-2026-pseudo-2026a`` or ``COL-rcpt-2026a``; the role (``enc``,
``sign``, ``mac``, ``pseudo``, ``rcpt``) must agree with the kind written in the file. The owner
may contain dashes.

On disk a keystore is a folder of ``<key_id>.json`` files::

    {"key_id": "COL-enc-2026a", "kind": "partner-encryption", "created_at": "2026-01-05T10:00:00+00:00",
     "public": "<base64>", "secret": "<base64>"}

``public`` is present for X25519 and Ed25519 keys, ``secret`` wherever this holder has the
secret. Files holding a secret are written 0600 (and refused when group- or world-readable,
as ssh does); every file is written to a temporary name, fsynced and renamed, so a crash
never leaves half a key. When several generations of one owner's key exist, the newest
``created_at`` is current; older ones stay loadable by id so old records still verify.

Secrets are handed out as ``SecretBytes``, whose repr and str never show the bytes, and
every error names the key id and the problem, never the material.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from puente.errors import KeyMaterialError

KEY_LEN = 32
BROKER_OWNER = "broker"
_MAX_FILE = 64 * 1024  # a key file is a few hundred bytes; anything bigger is not one


class KeyKind(StrEnum):
    """What a key is for; the value is what the JSON file says."""

    PARTNER_ENCRYPTION = "partner-encryption"
    BROKER_SIGNING = "broker-signing"
    AGENCY_MAC = "agency-mac"
    PSEUDONYM = "pseudonym"
    PARTNER_SIGNING = "partner-signing"

    @property
    def role(self) -> str:
        """The short role word in key ids of this kind."""
        return _ROLES[self]

    @property
    def asymmetric(self) -> bool:
        """True for key pairs (a public half exists)."""
        return self in (KeyKind.PARTNER_ENCRYPTION, KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)


_ROLES = {
    KeyKind.PARTNER_ENCRYPTION: "enc",
    KeyKind.BROKER_SIGNING: "sign",
    KeyKind.AGENCY_MAC: "mac",
    KeyKind.PSEUDONYM: "pseudo",
    KeyKind.PARTNER_SIGNING: "rcpt",  # a partner's receipt-signing key
}
_SIGNING_KINDS = (KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
# Key ids become file names: a tight alphabet and an alphanumeric first character keep
# them out of path traversal and away from the dot-files used for atomic writes.
_KEY_ID = re.compile(
    r"(?P<owner>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-(?P<role>enc|sign|mac|pseudo|rcpt)-(?P<gen>[A-Za-z0-9]{1,16})"
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
        """The raw bytes, for the one call that needs them (HMAC, AES)."""
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
    match = _KEY_ID.fullmatch(key_id)
    if match is None:
        raise KeyMaterialError(
            f"{key_id[:80]!r} is not a key id: expected <owner>-<enc|sign|mac|pseudo|rcpt>-<generation> "
            "using letters, digits, '_', '.' and '-'"
        )
    kind = next(k for k, role in _ROLES.items() if role == match["role"])
    return KeyId(match["owner"], kind, match["gen"])


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
        """A verify key: the broker's, or a partner's for its receipts."""
        return Ed25519PublicKey.from_public_bytes(self._public(self._signing_kind()))

    def _signing_kind(self) -> KeyKind:
        if self.kind not in _SIGNING_KINDS:
            raise KeyMaterialError(f"key {self.key_id}: kind is {self.kind}, expected a signing key")
        return self.kind

    def symmetric(self, kind: KeyKind) -> SecretBytes:
        """The secret of an agency-mac or pseudonym key."""
        if kind.asymmetric:
            raise ValueError("symmetric() is for agency-mac and pseudonym keys")
        return self._secret(kind)


def new_key(kind: KeyKind, owner: str, generation: str, now: datetime) -> KeyRecord:
    """Fresh random key material of ``kind`` for ``owner`` (not yet written anywhere)."""
    key_id = str(KeyId(owner, kind, generation))
    parse_key_id(key_id)  # reject owners and generations that would not survive as file names
    public: bytes | None = None
    if kind is KeyKind.PARTNER_ENCRYPTION:
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
    if kind is KeyKind.PARTNER_ENCRYPTION:
        return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


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


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; in a key file that could swap a half unseen.
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateKey(name)
        out[name] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def record_from_json(data: bytes, *, key_id: str) -> KeyRecord:
    """Parse and check a key file's contents that should hold ``key_id``."""
    try:
        doc = json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _DuplicateKey as dup:
        raise KeyMaterialError(f"key {key_id}: field {str(dup)[:40]!r} appears twice in the file") from None
    except (UnicodeDecodeError, ValueError):
        raise KeyMaterialError(f"key {key_id}: file is not valid JSON") from None
    if not isinstance(doc, dict):
        raise KeyMaterialError(f"key {key_id}: file is not a JSON object")
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
    else:
        if secret is None:
            raise KeyMaterialError(f"key {key_id}: a {kind} key file must have a secret")
        if public is not None:
            raise KeyMaterialError(f"key {key_id}: a {kind} key has no public half, but the file has one")


def load_key_file(path: Path | str) -> KeyRecord:
    """Load one key file, e.g. the partner's private key given as ``--key FILE``."""
    path = Path(path)
    key_id = path.name.removesuffix(".json")
    try:
        with path.open("rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read(_MAX_FILE + 1)
    except FileNotFoundError:
        raise KeyMaterialError(f"key {key_id}: no key file at {path}") from None
    except OSError as exc:
        raise KeyMaterialError(f"key {key_id}: cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_FILE:
        raise KeyMaterialError(f"key {key_id}: {path} is too large to be a key file")
    record = record_from_json(data, key_id=key_id)
    if record.secret is not None and stat.S_IMODE(mode) & 0o077:
        raise KeyMaterialError(
            f"key {key_id}: {path} holds a secret but is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it"
        )
    try:
        folder = stat.S_IMODE(path.resolve().parent.stat().st_mode)
    except OSError:
        folder = 0
    if folder & 0o022:
        # Whoever may write the folder may swap the key file for their own, secret or public half.
        raise KeyMaterialError(
            f"key {key_id}: its folder {path.parent} is writable by others (mode {folder:04o}); run chmod 700 on it"
        )
    return record


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have changed the mode os.open gave
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def private_folder(path: Path) -> None:
    """Create ``path`` and any missing folder above it as 0700, whatever the umask.

    ``Path.mkdir(parents=True)`` gives the folders above the last the umask's default mode, and
    under a permissive umask (0) those are world-writable: anyone could then replace a key file.
    """
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask; this is not


class Keystore:
    """A folder of key files (see the module docstring)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Keystore({str(self.path)!r})"

    def key_ids(self) -> list[str]:
        """Ids of every key file here, sorted."""
        if not self.path.is_dir():
            return []
        return sorted(p.name.removesuffix(".json") for p in self.path.glob("*.json") if _KEY_ID.fullmatch(p.stem))

    def load(self, key_id: str, kind: KeyKind | None = None) -> KeyRecord:
        """The key ``key_id``, checked to be of ``kind`` when given."""
        # Parsed before the path is built: a key id can never name a file outside this folder.
        parsed = parse_key_id(key_id)
        if kind is not None and parsed.kind is not kind:
            raise KeyMaterialError(f"key {key_id}: kind is {parsed.kind}, expected {kind}")
        return load_key_file(self.path / f"{key_id}.json")

    def current(self, owner: str, kind: KeyKind) -> KeyRecord:
        """The newest key of ``kind`` belonging to ``owner``."""
        ids = [k for k in self.key_ids() if (p := parse_key_id(k)).owner == owner and p.kind is kind]
        if not ids:
            raise KeyMaterialError(f"no {kind} key for {owner!r} in keystore {self.path}")
        records = [self.load(k, kind) for k in ids]
        return max(records, key=lambda r: (r.created_at, r.key_id))

    def put(self, record: KeyRecord) -> Path:
        """Write ``record`` (replacing any file of the same id), 0600 if it holds a secret."""
        target = self.path / f"{record.key_id}.json"
        mode = 0o600 if record.secret is not None else 0o644
        try:
            private_folder(self.path)
            _write_atomic(target, record_to_json(record), mode)
        except OSError as exc:
            raise KeyMaterialError(f"key {record.key_id}: cannot write {target}: {exc.strerror}") from None
        return target

    def generate(self, kind: KeyKind, owner: str, *, generation: str, now: datetime) -> KeyRecord:
        """Create, store and return a new key; refuses to replace an existing one."""
        record = new_key(kind, owner, generation, now)
        if (self.path / f"{record.key_id}.json").exists():
            raise KeyMaterialError(f"key {record.key_id}: already exists in {self.path}; choose a new generation")
        self.put(record)
        return record

    def export_public(self, key_id: str, dest: Path | str) -> Path:
        """Write the public half of ``key_id`` into the folder ``dest``, for giving to the other side."""
        return Keystore(dest).put(self.load(key_id).public_only())

    def load_partner_public(self, partner_id: str) -> X25519PublicKey:
        """The partner's current public encryption key (broker side)."""
        return self.current(partner_id, KeyKind.PARTNER_ENCRYPTION).x25519_public()

    def load_partner_private(self, partner_id: str) -> X25519PrivateKey:
        """The partner's current private decryption key (partner side)."""
        return self.current(partner_id, KeyKind.PARTNER_ENCRYPTION).x25519_private()

    def load_signing_key(self) -> Ed25519PrivateKey:
        """The broker's current signing key (broker side)."""
        return self.current(BROKER_OWNER, KeyKind.BROKER_SIGNING).ed25519_private()

    def load_verify_key(self) -> Ed25519PublicKey:
        """The broker's current verify key (partner or auditor side)."""
        return self.current(BROKER_OWNER, KeyKind.BROKER_SIGNING).ed25519_public()

    def load_receipt_key(self, partner_id: str) -> KeyRecord:
        """The partner's current receipt-signing key (partner side: with its private half)."""
        return self.current(partner_id, KeyKind.PARTNER_SIGNING)

    def load_agency_mac(self, agency: str) -> SecretBytes:
        """The agency's current ingress MAC key (adapter side); its ``key_id`` goes in the headers."""
        return self.current(agency, KeyKind.AGENCY_MAC).symmetric(KeyKind.AGENCY_MAC)

    def load_pseudonym_key(self, agreement: str) -> SecretBytes:
        """The agreement's current pseudonymisation key."""
        return self.current(agreement, KeyKind.PSEUDONYM).symmetric(KeyKind.PSEUDONYM)

    def agency_mac_lookup(self) -> Callable[[str, str], SecretBytes | None]:
        """Load every agency MAC key now; return the ``lookup`` that ``verify_ingress`` wants.

        Every generation stays valid so records MACed before a rotation still verify;
        remove a key file to revoke it. A key only answers for the agency that owns it.
        """
        table: dict[tuple[str, str], SecretBytes] = {}
        for key_id in self.key_ids():
            parsed = parse_key_id(key_id)
            if parsed.kind is KeyKind.AGENCY_MAC:
                table[(parsed.owner, key_id)] = self.load(key_id).symmetric(KeyKind.AGENCY_MAC)

        def lookup(agency: str, key_id: str) -> SecretBytes | None:
            return table.get((agency, key_id))

        return lookup

    @staticmethod
    def generate_demo(
        path: Path | str,
        *,
        partners: Iterable[str],
        agencies: Iterable[str],
        agreements: Iterable[str],
        generation: str | None = None,
        now: datetime | None = None,
    ) -> DemoKeys:
        """Create every key the demo needs under ``path``, each where its holder would keep it.

        ``path/broker`` is the broker's keystore; ``path/partners/<P>`` holds partner P's
        private key and the broker's verify key; ``path/agencies/<A>`` holds agency A's MAC
        key. Keys that already exist are kept, so running the demo twice reuses them.
        """
        now = now or datetime.now(UTC)
        generation = generation or f"{now.year}a"
        root = Path(path)
        broker = Keystore(root / "broker")

        def ensure(store: Keystore, kind: KeyKind, owner: str) -> KeyRecord:
            key_id = str(KeyId(owner, kind, generation))
            if (store.path / f"{key_id}.json").exists():
                return store.load(key_id, kind)
            return store.generate(kind, owner, generation=generation, now=now)

        signing = ensure(broker, KeyKind.BROKER_SIGNING, BROKER_OWNER)
        partner_stores: dict[str, Keystore] = {}
        for partner in partners:
            store = partner_stores[partner] = Keystore(root / "partners" / partner)
            own = ensure(store, KeyKind.PARTNER_ENCRYPTION, partner)
            broker.put(own.public_only())
            receipts = ensure(store, KeyKind.PARTNER_SIGNING, partner)
            broker.put(receipts.public_only())  # so the broker's auditors can check the partner's receipts
            store.put(signing.public_only())
        agency_stores: dict[str, Keystore] = {}
        for agency in agencies:
            agency_stores[agency] = Keystore(root / "agencies" / agency)
            agency_stores[agency].put(ensure(broker, KeyKind.AGENCY_MAC, agency))
        for agreement in agreements:
            ensure(broker, KeyKind.PSEUDONYM, agreement)
        return DemoKeys(root, broker, partner_stores, agency_stores)


@dataclass(frozen=True)
class DemoKeys:
    """The keystores ``Keystore.generate_demo`` made, by holder."""

    root: Path
    broker: Keystore
    partners: Mapping[str, Keystore]
    agencies: Mapping[str, Keystore]
