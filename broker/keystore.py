"""The on-disk keystore: a folder of key files, each where its holder keeps it.

On disk a keystore is a folder of ``<key_id>.json`` files (the format is ``broker.crypto.keys``).
Files holding a secret are written 0600 (and refused when group- or world-readable, as ssh
does), in folders made 0700 whatever the umask (and a key in a folder others may write is
refused); every file is written to a temporary name, fsynced and renamed, so a crash never
leaves half a key. When several generations of one owner's key exist, the newest
``created_at`` is current; older ones stay loadable by id so old records still verify.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.crypto.keys import (
    BROKER_OWNER,
    KEY_ID_PATTERN,
    MAX_KEY_FILE,
    KeyId,
    KeyKind,
    KeyRecord,
    SecretBytes,
    new_key,
    parse_key_id,
    record_from_json,
    record_to_json,
)
from broker.crypto.signing import checker
from policies import load_policy_set
from puente.errors import KeyMaterialError
from puente.settings import PuenteSettings


def load_key_file(path: Path | str) -> KeyRecord:
    """Load one key file, e.g. the partner's private key given as ``--key FILE``."""
    path = Path(path)
    key_id = path.name.removesuffix(".json")
    try:
        with path.open("rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise KeyMaterialError(f"key {key_id}: no key file at {path}") from None
    except OSError as exc:
        raise KeyMaterialError(f"key {key_id}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE:
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
        return sorted(p.stem for p in self.path.glob("*.json") if KEY_ID_PATTERN.fullmatch(p.stem))

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
    def provision(
        path: Path | str,
        *,
        partners: Iterable[str],
        agencies: Iterable[str],
        agreements: Iterable[str],
        generation: str | None = None,
        now: datetime | None = None,
    ) -> Keystores:
        """Create every party's keys under ``path``, each where its holder keeps it (one site's set-up).

        ``path/broker`` is the broker's keystore; ``path/partners/<P>`` holds partner P's
        private key and the broker's verify key; ``path/agencies/<A>`` holds agency A's MAC
        key. Keys that already exist are kept, so provisioning twice reuses them.
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
        return Keystores(root, broker, partner_stores, agency_stores)


@dataclass(frozen=True)
class Keystores:
    """The keystores ``Keystore.provision`` made, by holder."""

    root: Path
    broker: Keystore
    partners: Mapping[str, Keystore]
    agencies: Mapping[str, Keystore]


def signature_check(keystore: Keystore, *kinds: KeyKind) -> Callable[[str, bytes, bytes], bool]:
    """(signer id, payload, signature) -> valid, for every generation of the signing keys of
    ``kinds`` in ``keystore``: a chain signed before a key rotation still verifies."""
    return checker({k: keystore.load(k).ed25519_public() for k in keystore.key_ids() if parse_key_id(k).kind in kinds})


KEY_GENERATION = "2026a"


def provision_all(settings: PuenteSettings) -> Keystores:
    """Every key the policy names under ``settings.keys``, each in its holder's folder (kept if present)."""
    policy_set = load_policy_set(settings.policy_dir)
    return Keystore.provision(settings.keys, partners=sorted(policy_set.partners), agencies=settings.agencies,
                              agreements=sorted(policy_set.agreements), generation=KEY_GENERATION)
