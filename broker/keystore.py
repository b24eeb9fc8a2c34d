"""The on-disk keystore: a folder of key files, each where its holder keeps it.

Every party makes its own keys in its own folder (``generate_own``; ``puente keys generate``) and
hands the other side public halves only, as PEM (``public_pem`` / ``import_public``; ``puente keys
export-public`` / ``import-public``). ``Keystore.provision`` does the same for a whole site on one
machine: ``<root>/broker``, ``<root>/partners/<P>``, ``<root>/agencies/<A>``, and only public
halves cross between those folders.

On disk a keystore is a folder of ``<key_id>.json`` files (the format is ``broker.crypto.keys``).
Files holding a secret are written 0600 (and refused when group- or world-readable, as ssh
does), in folders made 0700 whatever the umask (and a key in a folder others may write is
refused, as is writing into an existing folder others may write: ``broker.private_files`` holds
these checks for every secret file); a key file must be a regular file, reached through a link
only when no one but this user or root could have made or changed it (``broker.private_files``: a
mounted secret); every file is written to a temporary name, fsynced
and put in place, so a crash never leaves half a key: a key file only as a new name, never over one that
exists (``Keystore.put``: two runs on one folder never replace each other's key), a state file (``in-use``) by
a rename over the old one. A keystore holds a public half under one owner's
key id only, and the broker's holds no partner's or agency's private half (``load_public``, ``agency_mac_lookup``;
every file at the broker's start: ``broker_custody_problems``), nor does the keys root around it, unless a
single-site set-up marked it a trial's (``others_keys_problem``, ``TRIAL_MARK``).

When several generations of one owner's key exist, the newest ``created_at`` is current (the key a
holder signs or seals with), except an agency's key-agreement key, which the agency names (``in-use``,
``agency_key_in_use``), since the broker refuses what a key it does not hold yet MACed, and the broker's
key-agreement key an agency pairs with, named the same way once it holds several (``broker-in-use``,
``broker_key_in_use``), since its id is only what was typed at import. Older ones stay
loadable, and a reader verifies or decrypts with every generation it holds (``load_verify_keys``,
``load_decryption_keys``, ``signature_check``), so records made before a rotation still open. A key-agreement
key is the exception: every generation held would MAC for its owner for good, so once what the old one MACed is
processed the broker's operator retires it (``retire_kex``; ``puente keys retire``, named by ``keys use`` and
``keys import-public`` at each rotation, and flagged by ``keys list`` until it is done): its file is moved aside as
``<key id>.json.retired``, out of what the MAC table reads, and no MAC pair with it is derived again, even from a copy
imported later, nor when the ``retired-kex`` list is lost (a running broker stops instead).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.crypto.kex import ingress_mac_key
from broker.crypto.keys import (
    BROKER_OWNER,
    KEY_ID_PATTERN,
    KEY_LEN,
    MAX_KEY_FILE,
    KeyId,
    KeyKind,
    KeyRecord,
    SecretBytes,
    compare_generations,
    new_key,
    parse_key_id,
    possible_publics,
    record_from_json,
    record_to_json,
    refuse_one_key_two_ids,
)
from broker.crypto.pem import public_from_pem, public_pem
from broker.crypto.signing import checker
from broker.private_files import (
    TEMPORARY,
    folder_locked,
    folder_refusal,
    read_regular,
    remove_leftovers,
    secret_problem,
    write_new,
    write_new_all,
)
from broker.private_files import private_folder as private_folder  # re-exported: where callers have found it
from broker.private_files import write_atomic as write_atomic
from policies import MAX_PARTNER_ID_BYTES, RESERVED_OWNERS, load_policy_set
from puente.errors import KeyMaterialError, KeyUnusable, PuenteError
from puente.settings import PuenteSettings
from puente.strict import one_line


def load_key_file(path: Path | str) -> KeyRecord:
    """Load one key file, e.g. the partner's private key given as ``--key FILE``.

    The name must be a regular file, or a link followed only through folders no one but this user or
    root may change (``broker.private_files.read_regular``: a mounted secret). A file holding a secret
    passes the checks of every secret file (``broker.private_files``: this user's or root's, no
    permission for others, in a folder only its owner writes); a public half may be read by others, but not
    written, nor its folder: whoever may write either may swap it for their own.
    """
    path = Path(path)
    key_id = path.name.removesuffix(".json")
    record, info = _parse_key_file(path, key_id)
    if record.secret is not None:
        problem = secret_problem(path, info)
        if problem is not None:
            raise KeyMaterialError(f"key {key_id}: {path}: {problem}")
        return record
    if stat.S_IMODE(info.st_mode) & 0o022:
        # A public half others may write is one they may swap for their own (a verify key, say).
        raise KeyMaterialError(
            f"key {key_id}: {path} is writable by others (mode {stat.S_IMODE(info.st_mode):04o}); run chmod 644 on it"
        )
    problem = folder_refusal(path.parent)  # the folder the name is in, as given
    if problem is not None:
        raise KeyMaterialError(f"key {key_id}: {problem}")
    return record


def _parse_key_file(path: Path, key_id: str) -> tuple[KeyRecord, os.stat_result]:
    """The record in the key file ``path`` and the file's status, before any check of its mode or folder."""
    data, info = _read_key_file(path, key_id)
    if len(data) > MAX_KEY_FILE:
        raise KeyMaterialError(f"key {key_id}: {path} is too large to be a key file")
    return record_from_json(data, key_id=key_id), info


def _read_key_file(path: Path, key_id: str) -> tuple[bytes, os.stat_result]:
    """The first ``MAX_KEY_FILE + 1`` bytes of the regular file ``path`` and its status as opened; a link only
    as ``broker.private_files.read_regular`` trusts it."""

    def refuse(message: str) -> KeyMaterialError:
        return KeyMaterialError(f"key {key_id}: {message}")

    try:
        return read_regular(path, MAX_KEY_FILE, refuse)
    except FileNotFoundError:
        raise KeyMaterialError(f"key {key_id}: no key file at {path}") from None
    except OSError as exc:
        raise KeyMaterialError(f"key {key_id}: cannot read {path}: {exc.strerror}") from None


# In an agency's folder: the id of its key-agreement key in use, once it holds more than one generation.
IN_USE = "in-use"
# In an agency's folder: the id of the broker's key-agreement key its adapter pairs with, once it holds more than one.
BROKER_IN_USE = "broker-in-use"
# In the broker's folder: the key-agreement keys retired for good (``Keystore.retire_kex``; ``puente keys retire``),
# one ``<key id> <SHA-256 hex of its public half>`` line each: no MAC pair with one is derived again, whatever file
# holds it, under its id or another, so a leaked key imported again stays refused.
RETIRED_KEX = "retired-kex"
_MAX_RETIRED_KEX = 256 * 1024  # some 2,500 lines: far beyond the keys any site retires
_RETIRED_LINE = re.compile(r"(?P<key_id>\S+) (?P<digest>[0-9a-f]{64})")
# In the broker's folder: a retired key-agreement key's public half alone, ``<key id>.json.retired``, moved out of the
# ``<key id>.json`` files the MAC table reads (``Keystore.retire_kex``): the revocation needs no list to survive, and
# the public half it keeps refuses the same key imported again even when ``retired-kex`` is lost.
RETIRED_FORM = ".json.retired"
# A party's Kafka login, kept in the folder of its keys (``broker.credentials``, which imports this module).
CLIENT_CONFIG = "client.properties"
PENDING_CLIENT_CONFIG = f".{CLIENT_CONFIG}.pending"  # a new one written before Kafka took its password
# A former party's, moved aside when ``users apply`` disabled its login: no password is ever taken from it.
FORMER_CLIENT_CONFIG = f".{CLIENT_CONFIG}.former"
# A running broker's MAC table is read again at the latest every this many checks of a pair it holds
# (``fresh_agency_mac_lookup``), even when the folder's modification time never moved.
REREAD_HELD = 12
# Pauses (seconds) between the reads of a key file a running broker verified with that failed to load
# (``Keystore._load_held``): a file replaced by a rename fails one read, and no read should wait long.
_HELD_PAUSES = (0.01, 0.05, 0.2)

# The keystore cannot take puente.logs (a sibling of its layer); structlog's logger is the one that module configures.
log = structlog.get_logger("puente.broker.keystore")


class Holder(StrEnum):
    """Who makes and keeps a set of keys; the value is what ``puente keys generate --for`` takes."""

    PARTNER = "partner"
    AGENCY = "agency"
    BROKER = "broker"


_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # the owner part of KEY_ID_PATTERN
_RETIRED = re.compile(r"(?P<owner>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-mac-[A-Za-z0-9]{1,16}\.json")
# ``write_atomic``'s and ``write_new_all``'s temporary name for ``name``, left behind by a write that crashed.
_TEMPORARY = TEMPORARY
# Kubernetes' own entries in a secret volume (``..data -> ..2026_01_05_10_00_00.123``), taken on a read-only mount only.
_KUBERNETES = re.compile(r"\.\.data|\.\.data_tmp|\.\.[0-9]{4}(_[0-9]{2}){5}\.[0-9]+")


def holder_path(root: Path | str, holder: Holder, ident: str) -> Path:
    """Where ``holder`` ``ident`` keeps its keys under the keys root: ``broker``, ``partners/<P>``, ``agencies/<A>``."""
    _check_ident(holder, ident)
    root = Path(root)
    if holder is Holder.BROKER:
        return root / "broker"
    return root / ("partners" if holder is Holder.PARTNER else "agencies") / ident


def auditor_path(root: Path | str) -> Path:
    """The auditors' folder: public halves only (the broker's and the partners' signing keys), and
    their Kafka login. Auditors verify with it and can read nothing sealed."""
    return Path(root) / "auditor"


# Left by `keys init`, and by every single-site set-up (``Keystore.provision``: the demo's, the tests'), in the keys
# root it made every party's keys in: that root is a trial's, though it holds other parties' private keys beside the
# broker's own. Nothing else writes it; the deployment guards take nothing else for a trial's mark.
TRIAL_MARK = "single-site-trial"
TRIAL_TEXT = (b"made by `puente keys init`: a single-site trial, every party's private keys on this machine; "
              b"a deployment's keys folder never holds this file\n")
# How deep below the keys root ``others_private_files`` looks: <root>/partners/<P>/<file> is three down, and a
# party's ``--dir`` inside the root may sit a level deeper.
_ROOT_DEPTH = 4
_ROOT_SHOWN = 6  # files a refusal names before it counts the rest


def trial_marked(root: Path | str) -> bool:
    """Whether ``root`` holds ``TRIAL_MARK`` as ``mark_trial`` wrote it (a regular file of this user's or root's)."""
    mark = Path(root) / TRIAL_MARK
    if not mark.is_file():
        return False
    try:
        data, _ = read_regular(mark, len(TRIAL_TEXT), KeyMaterialError)
    except OSError:
        return False
    return data == TRIAL_TEXT


def mark_trial(root: Path | str, error: Callable[[str], PuenteError] = KeyMaterialError) -> bool:
    """Leave ``TRIAL_MARK`` in ``root`` (made 0700 if missing). ``Keystore.provision`` calls it once every refusal of
    a holder's keys has passed, right before that holder's first key is written: a set-up that stops half-way, keys
    made, leaves a root the next one still takes as the trial's, and one refused before any key leaves no mark, which
    would turn the broker's custody check (``others_keys_problem``) off for good. ``error`` (one line) for a file of
    that name that is not the mark, or one that cannot be written. Whether this call wrote the mark."""
    root = Path(root)
    if trial_marked(root):
        return False
    private_folder(root, error=error)
    try:
        write_new(root / TRIAL_MARK, TRIAL_TEXT, 0o644)
    except FileExistsError:
        if not trial_marked(root):  # something else by that name: not the trial's mark
            raise error(f"{root / TRIAL_MARK} is there but not as `keys init` writes it: check what it is, then "
                        "remove it") from None
        return False
    except OSError as exc:
        raise error(f"cannot write {root / TRIAL_MARK}: {exc.strerror}") from None
    return True


def others_private_files(root: Path | str) -> list[Path]:
    """Files under the keys root ``root`` (to ``_ROOT_DEPTH`` folders down, never through a link, the broker's own
    folder left to ``broker_custody_problems``) holding a private key the broker does not make for itself: another
    party's, made on this machine (``keys generate --for partner`` run before the broker's keys were made, or with
    ``--dir``), whatever the file's name. Told by what the file holds, never by where it is or what it is called,
    so the order the keys were made in does not matter. A folder or file that cannot be read is passed over (a
    mount's ``lost+found``): this finds a party's keys made here by mistake, not hidden ones."""
    root = Path(root)
    broker = root / "broker"
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if path != broker and depth < _ROOT_DEPTH:
                        walk(path, depth + 1)
                    continue
                regular = entry.is_file(follow_symlinks=False)
                small = regular and entry.stat(follow_symlinks=False).st_size <= MAX_KEY_FILE
            except OSError:
                continue
            if small and _holds_others_secret(path):
                found.append(path)

    walk(root, 1)
    return found


def _holds_others_secret(path: Path) -> bool:
    """Whether the regular file ``path`` is a key file holding a private key the broker does not make for itself
    (``_broker_makes``: its signing and key-agreement keys, the pseudonym keys) nor keeps (a retired shared
    agency-mac key): one whose key id names no such key, or names none at all. One that cannot be opened or read
    (EIO on a failing disk, a stale NFS handle, a /proc file) is passed over, as ``others_private_files`` says."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:  # closed below, even when fdopen itself fails (a folder)
            data = fh.read(MAX_KEY_FILE + 1)
    except OSError:
        return False
    finally:
        os.close(fd)
    if b'"secret"' not in data:
        return False
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(doc, dict) or "secret" not in doc or doc.get("kind") == "agency-mac":
        return False
    key_id = doc.get("key_id")
    if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
        return True  # a secret no one can tell the owner of
    parsed = parse_key_id(key_id)
    return not (parsed.kind is KeyKind.PSEUDONYM or (parsed.owner == BROKER_OWNER and parsed.kind in _BROKER_PRIVATE))


def others_keys_problem(root: Path | str) -> str | None:
    """Why the broker's keys must not be made in, nor the broker started from, the keys root ``root``: it holds
    other parties' private keys (``others_private_files``), as no deployment's does; None when it holds none, or
    when ``root`` is a single-site trial's (``trial_marked``). Names the files to move out, never what they hold."""
    root = Path(root)
    if trial_marked(root):
        return None
    found = others_private_files(root)
    if not found:
        return None
    shown = ", ".join(one_line(str(path)) for path in found[:_ROOT_SHOWN])
    more = f" and {len(found) - _ROOT_SHOWN} more" if len(found) > _ROOT_SHOWN else ""
    # The way out for a trial is named, but as a trial's only: it makes every party's keys here, and its mark stops
    # this check for good. No one is kept from running it; the words are what keep a deployment from taking it.
    return (f"{one_line(str(root))} holds private keys of parties other than the broker ({shown}{more}), which in a "
            "deployment each party makes and keeps on its own machine: move them out to their owners (each may be its "
            "owner's only copy); only on a machine that is a single-site trial, every party's keys kept on it, run "
            "`puente keys init --trial`: it makes every party's keys here and marks the folder a trial's, a mark that "
            "guards against mistakes, not against an operator who means to keep other parties' keys")


def own_kinds(holder: Holder, ident: str, agreements: Iterable[str] = ()) -> list[tuple[KeyKind, str]]:
    """The (kind, owner) of every private key ``holder`` makes for itself.

    A partner: its decryption and receipt-signing keys. An agency: its key-agreement key. The
    broker: its signing key, its key-agreement key, its alert-reference key (a pseudonym key of its own,
    ``load_reference_key``) and a pseudonym key per agreement.
    """
    _check_ident(holder, ident)
    if holder is Holder.PARTNER:
        return [(KeyKind.PARTNER_ENCRYPTION, ident), (KeyKind.PARTNER_SIGNING, ident)]
    if holder is Holder.AGENCY:
        return [(KeyKind.KEY_AGREEMENT, ident)]
    return [(KeyKind.BROKER_SIGNING, BROKER_OWNER), (KeyKind.KEY_AGREEMENT, BROKER_OWNER),
            (KeyKind.PSEUDONYM, BROKER_OWNER),
            *((KeyKind.PSEUDONYM, agreement) for agreement in sorted(set(agreements)) if agreement != BROKER_OWNER)]


# The private keys the broker makes in its own name (``own_kinds``); the pseudonym keys it makes are each
# an agreement's, so any owner goes for those.
_BROKER_PRIVATE = frozenset({KeyKind.BROKER_SIGNING, KeyKind.KEY_AGREEMENT})
# The kinds whose newest generation puts a holder's set in use: the broker signs with its newest signing key
# (``load_signing_key``), a partner its receipts with its newest receipt key (``load_receipt_key``); the rest are
# used in every generation held, or named (an agency's ``in-use``). Linked last in a set (``Keystore._put_set``), so a
# run killed half-way leaves the generation in use as it was.
_PUTS_IN_USE = frozenset({KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING})


def _broker_makes(record: KeyRecord) -> bool:
    """Whether ``record``, held with its private half, is one the broker makes for itself."""
    if record.kind is KeyKind.PSEUDONYM:
        return True
    return record.owner == BROKER_OWNER and record.kind in _BROKER_PRIVATE


_RESERVED = frozenset(owner.casefold() for owner in RESERVED_OWNERS)  # no partner's nor agency's id, in any case


def _check_ident(holder: Holder, ident: str) -> None:
    if holder is Holder.BROKER:
        if ident != BROKER_OWNER:
            raise KeyMaterialError(f"the broker's keys belong to {BROKER_OWNER!r}, not {ident[:40]!r}")
        return
    if ident.casefold() in _RESERVED:
        # In any case, as the policy refuses it (``policies.RESERVED_OWNERS``): keys made for it would serve no one.
        raise KeyMaterialError(f"{ident[:40]!r} is the broker's name (in any case), not a {holder}'s")
    # The id becomes a folder name and the owner of key ids: it must pass as one.
    if not _OWNER.fullmatch(ident):
        raise KeyMaterialError(f"{ident[:40]!r} is not a usable {holder} id: use up to 64 letters, digits, '_', '.' "
                               "and '-', starting with a letter or digit")
    if holder is Holder.PARTNER and len(ident.encode()) > MAX_PARTNER_ID_BYTES:
        # The policy refuses it (a feed's HPKE info holds the id: ``policies.MAX_PARTNER_ID_BYTES``): keys made
        # for it would serve no partner.
        raise KeyMaterialError(f"{ident[:40]!r} is not a usable partner id: a partner id has at most "
                               f"{MAX_PARTNER_ID_BYTES} characters (a feed's HPKE info holds it)")


@dataclass(frozen=True)
class _Custody:
    """Whose folder a custody scan (``Keystore._custody_problems``) looks at, and what that holder keeps there: one
    rule for the broker's folder and an agency's, each with its own allow-list."""

    owner: str  # the key owner whose folder it is
    holder: str  # as messages name it: "the broker", "agency SENAN"
    keeps: Callable[[KeyRecord], bool]  # whether it holds this key with its private half
    names: frozenset[str]  # what it keeps besides key files: its login, its choices of key
    retired_owner: str | None  # whose retired shared agency-mac keys it keeps: any (None), or its own
    retired_forms: bool  # whether it keeps retired key-agreement keys' public halves (``<key id>.json.retired``)
    makes: str  # what makes the private keys it holds, for one in its name it never makes
    kept: str  # the entries it keeps, as a message says them


_BROKER_CUSTODY = _Custody(
    BROKER_OWNER, "the broker", _broker_makes,
    frozenset({CLIENT_CONFIG, PENDING_CLIENT_CONFIG, IN_USE, RETIRED_KEX}), None, True,
    "`puente keys generate --for broker` makes its signing and key-agreement keys",
    f"only <key id>.json key files, {CLIENT_CONFIG}, {RETIRED_KEX} and <key id>{RETIRED_FORM}")


def _agency_custody(agency: str) -> _Custody:
    """An agency's folder: its own key-agreement key is the one private half it holds, beside the broker's public
    halves, its login, and its choices of key (``in-use``, ``broker-in-use``)."""
    return _Custody(
        agency, f"agency {agency}", lambda record: record.owner == agency and record.kind is KeyKind.KEY_AGREEMENT,
        frozenset({CLIENT_CONFIG, PENDING_CLIENT_CONFIG, FORMER_CLIENT_CONFIG, IN_USE, BROKER_IN_USE}), agency, False,
        f"`puente keys generate --for agency {agency}` makes its key-agreement key",
        f"only <key id>.json key files, {CLIENT_CONFIG}, {IN_USE} and {BROKER_IN_USE}")


def _key_file_name(name: str) -> bool:
    """Whether ``name`` is a key file's, ``<key id>.json``."""
    return name.endswith(".json") and bool(KEY_ID_PATTERN.fullmatch(name[:-5]))


def _retired_form_id(name: str) -> str | None:
    """The key id of ``name`` when it is a retired key-agreement key's file (``<key id>.json.retired``), else None."""
    key_id = name.removesuffix(RETIRED_FORM)
    return key_id if key_id != name and KEY_ID_PATTERN.fullmatch(key_id) else None


def _retired_kept(name: str, custody: _Custody) -> bool:
    """Whether ``name`` is a retired shared agency-mac key's file (``retired_files``) ``custody``'s holder keeps."""
    found = _RETIRED.fullmatch(name)
    return found is not None and custody.retired_owner in (None, found["owner"])


def _kept_name(name: str, custody: _Custody) -> bool:
    """Whether the keystore itself writes ``name`` into ``custody``'s folder, besides its key files: a party's Kafka
    login (and its next one, which ``broker.credentials.apply_users`` writes before Kafka takes its password, and,
    in an agency's folder, the one it moved aside when the agency was no longer named and its login disabled), the
    agency's ``in-use`` and ``broker-in-use`` choices, the broker's ``retired-kex`` list and retired key-agreement keys'
    public halves (``<key id>.json.retired``; ``Keystore.retire_kex``), a retired shared agency-mac key
    (``retired_files``), or ``write_atomic``'s temporary name for any of them or for a
    key file, left by a write that crashed."""
    temporary = _TEMPORARY.fullmatch(name)
    if temporary is not None:
        inner = temporary["name"]
        return _kept_name(inner, custody) or (inner.endswith(".json") and bool(KEY_ID_PATTERN.fullmatch(inner[:-5])))
    return (name in custody.names or _retired_kept(name, custody)
            or (custody.retired_forms and _retired_form_id(name) is not None))


def _holds_foreign_secret(name: str, data: bytes, custody: _Custody) -> bool:
    """Whether ``data``, read from ``name`` (a name ``_kept_name`` takes), is a key file holding a private key
    ``custody``'s holder does not keep: any but a retired agency-mac key under its own name, or one of its own keys
    under the temporary name of its key file. What is not a JSON object (a login, a key id, a write cut short)
    holds no key file."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(doc, dict) or "secret" not in doc:
        return False
    if _RETIRED.fullmatch(name):
        return doc.get("kind") != "agency-mac"
    temporary = _TEMPORARY.fullmatch(name)
    inner = "" if temporary is None else temporary["name"].removesuffix(".json")
    if KEY_ID_PATTERN.fullmatch(inner):
        try:
            return not custody.keeps(record_from_json(data, key_id=inner))
        except KeyMaterialError:
            return True
    return True


def signers_first(found: Sequence[KeyRecord]) -> list[KeyRecord]:
    """``found`` (one owner's generations of one kind, newest ``created_at`` first) with the generations held with
    their private half first, each part in its order: the one to sign with is the newest held whole. A public half
    imported only to verify what an older generation signed (its private half removed) is dated when it was
    imported, and would otherwise rank as the key made last."""
    return sorted(found, key=lambda record: record.secret is None)


def signing_order_problem(found: Sequence[KeyRecord]) -> str | None:
    """Why the signing key made last of ``found`` (one owner's generations of one kind, newest ``created_at`` first,
    those held with their private half before the others, as ``signers_first`` gives them) must not sign, or None:
    another's generation label comes after it (``compare_generations``). Whoever checks the signatures (the broker's
    workers, ``audit verify``, a partner's subscriber) orders the keys by label, as it must for imported halves, so
    everything it signed would be taken for a retired key's. ``generate_own`` refuses such a label; a folder filled
    by hand may still hold one."""
    if not found:
        return None
    current, label = found[0], parse_key_id(found[0].key_id).generation
    for other in found[1:]:
        if compare_generations(parse_key_id(other.key_id).generation, label) == 1:
            owner = current.owner
            who = "broker" if owner == BROKER_OWNER else f"partner {owner}"
            return (f"{owner} would sign with {current.key_id}, made last, but {other.key_id}'s generation comes after "
                    f"it by label, so whoever checks its signatures would take them for a retired key's: make a "
                    f"generation whose label comes after both (`puente keys generate --for {who} --generation "
                    "<label>`)")
    return None


def _retired_secret(data: bytes) -> bytes | None:
    """The secret of a retired agency-mac key file's contents: None when it holds none, ``b""`` when it holds one
    that does not read as a key (strict base64 of ``KEY_LEN`` bytes)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or "secret" not in doc:
        return None
    try:
        secret = base64.b64decode(doc["secret"], validate=True)
    except (ValueError, TypeError, binascii.Error):
        return b""
    return secret if len(secret) == KEY_LEN else b""


@dataclass
class _Retirements:
    """What a running broker has read of the retirements (``Keystore._mac_table``), each key id to the SHA-256 hex of
    its public half; it only grows, since a retirement is never taken back."""

    listed: dict[str, str]  # every entry the ``retired-kex`` list held at a read
    kept: dict[str, str]  # every key retired, on the list or moved aside (``Keystore.retired_keys``)


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

    def load_public(self, key_id: str, kind: KeyKind) -> KeyRecord:
        """The other side's public half ``key_id`` of ``kind``, as the broker or its auditors hold it: a
        record holding a secret is refused (``refuse_private``), since only its owner may hold that."""
        record = self.load(key_id, kind)
        self.refuse_private(record)
        return record

    def refuse_secrets(self) -> None:
        """KeyMaterialError (one line, naming the file) when any file of this folder, whatever its name, is a key file
        holding a secret (a private half, a pseudonym or alert-reference key): for a folder that holds none at all,
        the auditors'. Other files (a login, the console's accounts) are left alone; one too large to be a key file is
        no key any reader loads."""
        try:
            entries = sorted(os.scandir(self.path), key=lambda entry: entry.name)
        except OSError as exc:
            raise KeyMaterialError(f"{self.path}: cannot read the folder: {exc.strerror}") from None
        for entry in entries:
            path = self.path / entry.name
            try:
                data, _ = read_regular(path, MAX_KEY_FILE, KeyMaterialError)
            except (KeyMaterialError, OSError):
                continue
            try:
                doc = json.loads(data)
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(doc, dict) and "secret" in doc:
                key_id = entry.name.removesuffix(".json")
                if key_id != entry.name and KEY_ID_PATTERN.fullmatch(key_id):
                    try:
                        record = self.load(key_id)
                    except KeyMaterialError:
                        record = None  # one that does not load is refused below, by its file
                    if record is not None:
                        self.refuse_private(record)  # its owner named, and where it belongs
                raise KeyMaterialError(f"{one_line(str(path))}: a key file holding a secret, in {self.path}, which "
                                       "holds public halves only: move it out to its owner's keystore (it may be its "
                                       "only copy)")

    def refuse_private(self, record: KeyRecord) -> None:
        """KeyMaterialError (one line) when ``record``, someone else's key, holds its private half here."""
        if record.secret is None:
            return
        raise KeyMaterialError(self._private_refusal(record))

    def _private_refusal(self, record: KeyRecord) -> str:
        # Never "remove": the file may be its owner's only copy (a partner's folder named for the broker's), and
        # without it that party could never decrypt or sign again. Moved out, it is its owner's to keep.
        if not record.kind.asymmetric:  # a pseudonym or alert-reference key: the broker's, with no public half
            return (f"key {record.key_id}: keystore {self.path} holds the broker's secret {record.kind} key, which "
                    f"only the broker may hold: move {self.path / f'{record.key_id}.json'} out to the broker's "
                    "keystore (it may be its only copy)")
        return (f"key {record.key_id}: keystore {self.path} holds {record.owner}'s private half, which only "
                f"{record.owner} may hold: move {self.path / f'{record.key_id}.json'} out to {record.owner}'s own "
                f"keystore (it may be {record.owner}'s only copy), then import its public half here (`puente keys "
                f"import-public FILE.pem --id {record.key_id} --dir {self.path}`)")

    def own_folder_of(self) -> str | None:
        """The party whose own keystore this folder looks like, or None: every private half it holds is that one
        party's, and none is the broker's own (an agreement's pseudonym key, which no party owns, marks no one's
        folder). Such a folder is no broker's
        folder another party's key leaked into but that party's own, named where the broker's was meant
        (``policy lint --keys keys/partners/COL``): its keys are to be left where they are."""
        owners: set[str] = set()
        for key_id in self.key_ids():
            try:
                record = self.load(key_id)
            except KeyMaterialError:
                continue  # ``broker_custody_problems`` names it
            if record.secret is not None and record.owner == BROKER_OWNER:  # its own keys, its reference key too
                return None
            if record.secret is not None and record.kind.asymmetric:  # an agreement's pseudonym key marks no one
                owners.add(record.owner)
        return owners.pop() if len(owners) == 1 else None

    def broker_custody_problems(self) -> list[str]:
        """Why this folder, the broker's, must not be started from: one line per file, empty when none.

        Every entry of the folder is looked at, not only the key files the broker loads, and whatever its mode
        (whose key a file holds does not depend on it). Refused: a private half the broker does not make for itself
        (``own_kinds``: its signing and key-agreement keys, and a pseudonym key per agreement), since it is
        another party's whether or not anything uses it; one public key under two owners' ids (any kinds),
        since one of them could act as the other (an agency MAC as another, a partner read another's feed),
        and a file copied in by hand skips ``import_public``'s check; a key file that does not read as one,
        since no one can tell whose key it holds; and every other entry but the few the keystore writes here
        (``_kept_name``), since a key copied in under any other name (``.bak``, ``~``, a subfolder) is as leaked
        and no reader would look at it. A private key the broker may hold (its own, a pseudonym key, a retired MAC
        key) whose bytes are the private half of any public key held here but its own is refused too, whoever's:
        a file can call another party's private key by any kind, and only its bytes tell. Messages name the file,
        never key material.
        """
        return self._custody_problems(_BROKER_CUSTODY)

    def agency_custody_problems(self, agency: str) -> list[str]:
        """Why this folder, ``agency``'s own, must not be used by its adapter: one line per file, empty when none.
        ``broker_custody_problems``' rules over every entry, with the agency's allow-list (``_agency_custody``):
        its own key-agreement key is the only private half it may hold (the broker's above all derives every
        agency's MAC key), and a copy under any other name (``.bak``, no extension, another key's id) is as leaked;
        one public half under two ids, whoever's, has the adapter pair with a key the broker does not hold, or one
        party's key taken for another's."""
        return self._custody_problems(_agency_custody(agency))

    def _custody_problems(self, custody: _Custody) -> list[str]:
        """``broker_custody_problems`` for the folder of ``custody``'s holder."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.path))
        except FileNotFoundError:
            return []
        except OSError as exc:
            return [f"{self.path}: cannot read {custody.holder}'s folder: {exc.strerror}; fix its permissions"]
        kubernetes = bool(os.statvfs(self.path).f_flag & os.ST_RDONLY)
        problems: list[str] = []
        owners: dict[bytes, KeyRecord] = {}
        held: list[tuple[Path, str | None, bytes]] = []  # private halves passed: (file, its key id if any, secret)
        claimed: dict[str, bytes | None] = {}  # the public half each of those key files gives with its secret
        for name in names:
            if kubernetes and _KUBERNETES.fullmatch(name):
                continue  # its files show here as links, each checked under its own name
            key_id = name.removesuffix(".json")
            if key_id == name or not KEY_ID_PATTERN.fullmatch(key_id):
                problem = self._stray_problem(self.path / name, held, custody)
                problems += [] if problem is None else [problem]
                continue
            path = self.path / name
            try:
                record, info = _parse_key_file(path, key_id)
            except KeyMaterialError as exc:
                problems.append(f"{exc} ({path}): {custody.holder} cannot tell whose key it holds; fix it, or move it "
                                f"out of {self.path}")
                continue
            if record.secret is not None and (exposed := secret_problem(path, info)) is not None:
                problems.append(f"key {key_id}: {path}: {exposed}")  # whatever loads it or not, now or later
            if record.secret is not None and not custody.keeps(record):
                problems.append(self._private_refusal(record) if record.owner != custody.owner else (
                    f"key {key_id}: {path} holds a private {record.kind} key in {custody.holder}'s name, which "
                    f"{custody.holder} never makes ({custody.makes}): move it out of {self.path}"))
            elif record.secret is not None:
                held.append((path, record.key_id, record.secret.reveal()))
                claimed[record.key_id] = record.public
            if record.public is None:
                continue
            first = owners.setdefault(record.public, record)
            if first.key_id != record.key_id and first.owner == record.owner:
                problems.append(
                    f"key {key_id}: {path} holds the same public key as {first.key_id}: one of the two ids was "
                    "mistyped, and what names it names a key no one else holds under that id: remove the file whose "
                    "id is not the one its owner gave")
            elif first.owner != record.owner:
                problems.append(
                    f"key {key_id}: {path} holds the same public key as {first.key_id}, {first.owner}'s, so "
                    f"{record.owner} and {first.owner} could act as each other: compare each with its owner's "
                    "fingerprint (`puente keys export-public` prints it), remove the file that is not its owner's "
                    "key and import the right PEM (`puente keys import-public`)")
        for path, own_id, secret in held:
            for public in possible_publics(secret):
                other = owners.get(public)
                # A file's own public half held under another id too is one key under two ids, named above: the
                # file holding the private half is its owner's, not the copy.
                if other is not None and other.key_id != own_id and public != claimed.get(own_id or ""):
                    problems.append(
                        f"{one_line(str(path))} holds the private half of {other.key_id}, {other.owner}'s key, "
                        f"whatever kind the file calls it: move it out of {one_line(str(self.path))} (its owner must "
                        "make a new generation)")
        return problems

    def _stray_problem(self, path: Path, held: list[tuple[Path, str | None, bytes]], custody: _Custody) -> str | None:
        """Why ``path``, an entry of ``custody``'s holder's folder whose name is no key id's, must not be there; None
        for one the keystore writes itself (``_kept_name``) holding no private key the holder does not keep. The
        secret of a retired MAC key passed is added to ``held``, as no key's own."""
        shown = one_line(str(path))
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None  # a temporary file renamed into place meanwhile
        except OSError as exc:
            return (f"{shown}: cannot be read ({exc.strerror}), so no one can tell whether it holds a key: move it out "
                    f"of {one_line(str(self.path))}")
        if stat.S_ISDIR(info.st_mode) or not _kept_name(path.name, custody):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "a file"
            return (f"{shown}: {what} {custody.holder} does not keep in its folder ({custody.kept}), where a copied "
                    f"key would go unchecked: move it out of {one_line(str(self.path))}")
        try:
            data, _ = read_regular(path, MAX_KEY_FILE, KeyMaterialError)
        except FileNotFoundError:
            return None
        except (KeyMaterialError, OSError):
            return (f"{shown}: cannot be read as a regular file of yours, so no one can tell whether it holds a key: "
                    f"move it out of {one_line(str(self.path))}")
        if not _holds_foreign_secret(path.name, data, custody):
            if path.name == RETIRED_KEX:
                return self._retired_list_problem()
            if _retired_form_id(path.name) is not None:
                return self._retired_form_problem(path)
            if _RETIRED.fullmatch(path.name) is None:
                return None
            secret = _retired_secret(data)
            if secret is None:
                return None  # no secret at all
            if not secret:  # not compared with the keys held, so no one can tell whose it is
                return (f"{shown}: holds a secret that does not read as a key (32 bytes, base64), so no one can tell "
                        f"whose it is: move it out of {one_line(str(self.path))}")
            held.append((path, None, secret))
            return None
        return (f"{shown}: holds a private key under a name no reader checks, so no one can tell whose it is: move it "
                f"out of {one_line(str(self.path))} (if it is another party's, its owner must make a new generation)")

    def _retired_list_problem(self) -> str | None:
        """Why ``retired-kex`` must not be started from: it does not read (the MAC table would refuse it: named here
        before), or it names a key whose ``<key id>.json`` is still here, as ``retire_kex`` left it before retired
        keys were moved aside: that key's revocation would then last only as long as the list, and a list emptied,
        removed or restored from an older backup would have it verify again."""
        try:
            listed = self.retired_kex()
        except KeyMaterialError as exc:
            return str(exc)
        live = sorted(key_id for key_id in listed if os.path.lexists(self.path / f"{key_id}.json"))
        if not live:
            return None
        return (f"{self.path / RETIRED_KEX} retires {', '.join(live)}, whose key file is still in {self.path}, so it "
                f"would verify again were the list lost: run `puente keys retire {live[0]} --dir {self.path}` (for "
                f"each of them) to move it aside as {live[0]}{RETIRED_FORM}")

    def _retired_form_problem(self, path: Path) -> str | None:
        """Why ``path``, a retired key's public half (``<key id>.json.retired``), must not be started from: it does
        not read as one (no one can tell which key it retires), the list lost it, or the key's own file is back."""
        try:
            record = self._retired_form(path)
        except KeyMaterialError as exc:
            return str(exc)
        if os.path.lexists(self.path / f"{record.key_id}.json"):
            return (f"key {record.key_id}: {self.path / f'{record.key_id}.json'} is back beside {path.name}, the "
                    f"key retired under that id: run `puente keys retire {record.key_id} --dir {self.path}` to move it "
                    "aside again (or remove it)")
        try:
            listed = self.retired_kex()
        except KeyMaterialError:
            return None  # named by the list's own check
        if record.key_id not in listed:
            return (f"key {record.key_id}: {path} is retired but not on {self.path / RETIRED_KEX} (the list was "
                    "emptied, removed or restored from an older backup): the key stays revoked; run `puente keys "
                    f"retire {record.key_id} --dir {self.path}` to list it again, and find out what changed the list")
        return None

    def generations(self, owner: str, kind: KeyKind) -> list[KeyRecord]:
        """Every key of ``kind`` belonging to ``owner`` here, newest ``created_at`` first (then by id).

        Each is loaded and checked as ``load`` does: one unreadable generation is an error, never
        skipped, since a reader relying on the set would otherwise miss it without a word.
        """
        ids = [k for k in self.key_ids() if (p := parse_key_id(k)).owner == owner and p.kind is kind]
        return sorted((self.load(k, kind) for k in ids), key=lambda r: (r.created_at, r.key_id), reverse=True)

    def current(self, owner: str, kind: KeyKind) -> KeyRecord:
        """The newest key of ``kind`` belonging to ``owner``.

        Newest by ``created_at``: for a key made here, when it was made; for an imported public
        half, when it was imported. So on the receiving side "current" is only a guess; whatever
        verifies or decrypts with the other side's keys takes every generation
        (``load_verify_keys``, ``signature_check``), and this only orders them.
        """
        found = self.generations(owner, kind)
        if not found:
            raise KeyMaterialError(f"no {kind} key for {owner!r} in keystore {self.path}")
        return found[0]

    def put(self, record: KeyRecord) -> Path:
        """Write ``record`` as a new file, 0600 if it holds a secret; KeyMaterialError when anything is at its name
        already. A key is never replaced: the file is created so that creating it fails when the name exists
        (``write_new``), since a check before the write leaves a window in which a second ``keys generate`` on the
        same folder would replace a private key whose public half may already have been handed out. A public half
        over a file that holds the private one is named as such: exporting a key into its own folder."""
        target = self.path / f"{record.key_id}.json"
        mode = 0o600 if record.secret is not None else 0o644
        if record.secret is None and os.path.lexists(target) and self._holds_secret(target):
            raise KeyMaterialError(f"key {record.key_id}: {target} holds its private half, which a public half is "
                                   "never written over: give another folder")
        try:
            private_folder(self.path, error=KeyMaterialError)
            with folder_locked(self.path, KeyMaterialError):  # never while a set write clears what a killed run left
                write_new(target, record_to_json(record), mode)
        except FileExistsError:
            raise self._exists(record.key_id) from None
        except OSError as exc:
            raise KeyMaterialError(f"key {record.key_id}: cannot write {target}: {exc.strerror}") from None
        return target

    def _exists(self, key_id: str) -> KeyMaterialError:
        """The refusal of a key ``key_id`` that is here already: a key is never replaced."""
        return KeyMaterialError(f"key {key_id}: already exists in {self.path}; choose a new generation")

    @staticmethod
    def _holds_secret(path: Path) -> bool:
        """Whether the key file at ``path`` holds a private half; one that does not read counts as holding one (the
        caller refuses to write over it)."""
        try:
            return load_key_file(path).secret is not None
        except (KeyMaterialError, OSError):
            return True

    def generate(self, kind: KeyKind, owner: str, *, generation: str, now: datetime) -> KeyRecord:
        """Create, store and return a new key; refuses to replace an existing one."""
        record = new_key(kind, owner, generation, now)
        if os.path.lexists(self.path / f"{record.key_id}.json"):
            raise self._exists(record.key_id)
        self.put(record)  # which refuses a name made since, by another run on this folder
        return record

    def export_public(self, key_id: str, dest: Path | str) -> Path:
        """Write the public half of ``key_id`` into the folder ``dest``, for giving to the other side; one there
        already with the same public half is left as it is (a key file is never replaced)."""
        record = self.load(key_id).public_only()
        target = Path(dest) / f"{key_id}.json"
        if os.path.lexists(target) and not self._holds_secret(target) and load_key_file(target).public == record.public:
            return target
        return Keystore(dest).put(record)

    def load_signing_key(self) -> Ed25519PrivateKey:
        """The broker's current signing key (broker side): the one made last (``current``), refused
        (KeyMaterialError, one line) as ``broker_signing_keys`` refuses. Every signer (the workers, ``audit
        collect-denials``) loads its key here or there, so none signs with a key whose label a newer one's
        comes after."""
        return self.broker_signing_keys()[0].ed25519_private()

    def broker_signing_keys(self) -> list[KeyRecord]:
        """Every generation of the broker's signing key here, newest ``created_at`` first, those held with their
        private half before the others (``signers_first``): the first is the one to sign with. Refused
        (KeyMaterialError, one line) when there is none, or while another's generation label comes after the
        first's (``signing_order_problem``): the broker's workers and ``audit verify`` order its keys by label, as
        the other side must (an imported half's time is only when it was imported), so every block it signed would
        be taken for a retired key's. ``generate_own`` refuses such a label; a folder filled by hand may still hold
        one. For a signer that needs the generations too (the workers order their chains' signers by them), so that
        it reads the folder once."""
        found = signers_first(self.generations(BROKER_OWNER, KeyKind.BROKER_SIGNING))
        if not found:
            raise KeyMaterialError(f"no {KeyKind.BROKER_SIGNING} key for {BROKER_OWNER!r} in keystore {self.path}")
        problem = signing_order_problem(found)
        if problem is not None:
            raise KeyMaterialError(f"keystore {self.path}: {problem}")
        return found

    def load_verify_key(self) -> Ed25519PublicKey:
        """The broker's current verify key (partner or auditor side)."""
        return self.current(BROKER_OWNER, KeyKind.BROKER_SIGNING).ed25519_public()

    def load_verify_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every generation of the broker's signing key held here, by key id, newest first (partner
        side): a feed key block does not name the key that signed it, and records the broker signed
        before it rotated its key stay in the feed, so a subscriber verifies with all of them.
        Only ``broker-sign-<g>`` keys: no other party's key may sign for the broker. One held with its
        private half is refused: only the broker holds that, and a copy in a partner's folder is a leak
        to be removed, not a key to use. So is a folder holding one public half under two ids, of any kinds
        (``refuse_one_key_two_ids``): another party's key filed also as the broker's would sign its feed."""
        self.refuse_one_key_two_ids()
        found = self.generations(BROKER_OWNER, KeyKind.BROKER_SIGNING)
        if not found:
            raise KeyMaterialError(f"no {KeyKind.BROKER_SIGNING} key for {BROKER_OWNER!r} in keystore {self.path}")
        for record in found:
            self.refuse_private(record)
        return {record.key_id: record.ed25519_public() for record in found}

    def load_decryption_keys(self, partner_id: str) -> dict[str, X25519PrivateKey]:
        """Every generation of the partner's own decryption key held here, by key id, newest first
        (partner side): records sealed to an older generation stay in the feed after the partner's
        key rotates, and must still open. A generation held without its private half is refused."""
        found = self.generations(partner_id, KeyKind.PARTNER_ENCRYPTION)
        if not found:
            raise KeyMaterialError(f"no {KeyKind.PARTNER_ENCRYPTION} key for {partner_id!r} in keystore {self.path}")
        return {record.key_id: record.x25519_private() for record in found}

    def load_receipt_key(self, partner_id: str) -> KeyRecord:
        """The partner's current receipt-signing key (partner side: with its private half): the newest held with
        it (``signers_first``), so a public half imported to verify an older generation's receipts is not taken."""
        found = signers_first(self.generations(partner_id, KeyKind.PARTNER_SIGNING))
        if not found:
            raise KeyMaterialError(f"no {KeyKind.PARTNER_SIGNING} key for {partner_id!r} in keystore {self.path}")
        return found[0]

    def agency_key_in_use(self, agency: str) -> KeyRecord:
        """The agency's own key-agreement key its adapter MACs with: the one generation held, or, once there
        are several, the one ``in-use`` names (``use_agency_key``; ``puente keys use``), never simply the
        newest. The broker verifies only with agency keys whose public half it has imported, and refuses
        (dead-letters, for good) whatever an unknown key MACed: a new generation goes into use only once
        the agency says the broker holds it. Several generations and no choice is refused, naming them."""
        held = self.generations(agency, KeyKind.KEY_AGREEMENT)
        if not held:
            raise KeyMaterialError(f"no {KeyKind.KEY_AGREEMENT} key for {agency!r} in keystore {self.path}")
        use = f"puente keys use KEY_ID --dir {self.path}"
        return self._chosen(held, IN_USE, f"{agency}'s", f"once the broker holds the public half of the one to use, "
                            f"run `{use}`", use)

    def _chosen(self, held: Sequence[KeyRecord], file: str, whose: str, to_name: str, use: str) -> KeyRecord:
        """The one of ``held`` (generations of ``whose`` key-agreement key) the ``file`` in this folder names, or the
        only one when it names none; KeyMaterialError naming them when several are held and none is named
        (``to_name``: what to run), or the file names one not held (``use``: the command)."""
        chosen = self._in_use(file)
        ids = ", ".join(sorted(r.key_id for r in held))
        if chosen is None:
            if len(held) == 1:
                return held[0]
            raise KeyMaterialError(f"keystore {self.path} holds {len(held)} generations of {whose} key-agreement key "
                                   f"({ids}) and names none in use: {to_name}")
        for record in held:
            if record.key_id == chosen:
                return record
        raise KeyMaterialError(f"{self.path / file} names {chosen}, which is not one of {whose} key-agreement keys "
                               f"here ({ids}): run `{use}`")

    def _in_use(self, name: str = IN_USE) -> str | None:
        """The key id the ``in-use`` file (or ``name``) names, or None without one; refused as a public file is when
        others may rewrite it (whoever may could switch the adapter to a key the broker does not hold)."""
        data = self._read_state(name, 200)
        if data is None:
            return None
        path = self.path / name
        text = data.decode("ascii", "replace").strip()
        if len(data) > 200 or not KEY_ID_PATTERN.fullmatch(text):
            raise KeyMaterialError(f"{path} does not hold one key id: run `puente keys use KEY_ID --dir {self.path}`")
        return text

    def _read_state(self, name: str, limit: int) -> bytes | None:
        """The first ``limit + 1`` bytes of the state file ``name`` here (``in-use``, ``retired-kex``), or None when
        there is none; KeyMaterialError (one line) when it cannot be read, or others may rewrite it or its folder:
        whoever may could switch the adapter to a key the broker does not hold, or take a key off the retired list."""
        path = self.path / name
        if not os.path.lexists(path):
            return None
        try:
            data, info = read_regular(path, limit, KeyMaterialError)
        except OSError as exc:
            raise KeyMaterialError(f"cannot read {path}: {exc.strerror}") from None
        problem = (f"writable by others (mode {stat.S_IMODE(info.st_mode):04o}); run chmod 644 on it"
                   if stat.S_IMODE(info.st_mode) & 0o022 else folder_refusal(path.parent))
        if problem is not None:
            raise KeyMaterialError(f"{path}: {problem}")
        return data

    def retired_kex(self) -> dict[str, str]:
        """The key-agreement keys retired here (``retire_kex``), key id to the SHA-256 hex of its public half; empty
        without ``retired-kex``. KeyMaterialError (one line) when the list is there but cannot be read, others may
        rewrite it, or a line is not as ``retire_kex`` writes it: a list no one can read cannot say which keys it
        retires, so every reader refuses rather than take one of them again."""
        data = self._read_state(RETIRED_KEX, _MAX_RETIRED_KEX)
        if data is None:
            return {}
        path = self.path / RETIRED_KEX
        if len(data) > _MAX_RETIRED_KEX:
            raise KeyMaterialError(f"{path} is too large to be the list `puente keys retire` writes: check what it is")
        retired: dict[str, str] = {}
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            text = "\0"  # refused below, by its first line
        for number, line in enumerate(text.splitlines(), 1):
            found = _RETIRED_LINE.fullmatch(line)
            if found is None or not KEY_ID_PATTERN.fullmatch(found["key_id"]):
                raise KeyMaterialError(f"{path} line {number} is not '<key id> <sha256 hex>' as `puente keys retire` "
                                       "writes it, so no one can tell which keys it retires: restore it from a backup")
            retired[found["key_id"]] = found["digest"]
        return retired

    def _retired_form(self, path: Path) -> KeyRecord:
        """The retired key-agreement key whose public half alone ``path`` (``<key id>.json.retired``) holds;
        KeyMaterialError (one line) when it is not that: no one could tell which key it retires."""
        key_id = _retired_form_id(path.name) or path.name
        record, info = _parse_key_file(path, key_id)
        if record.kind is not KeyKind.KEY_AGREEMENT or record.secret is not None or record.public is None:
            raise KeyMaterialError(f"key {key_id}: {path} is not a key-agreement key's public half alone, as `puente "
                                   "keys retire` writes it: restore it from a backup")
        if stat.S_IMODE(info.st_mode) & 0o022:
            raise KeyMaterialError(f"key {key_id}: {path} is writable by others (mode "
                                   f"{stat.S_IMODE(info.st_mode):04o}); run chmod 644 on it")
        return record

    def retired_forms(self) -> dict[str, str]:
        """The retired key-agreement keys moved aside here (``<key id>.json.retired``; ``retire_kex``), key id to the
        SHA-256 hex of its public half; KeyMaterialError (one line) when one does not read or the folder does not
        list: which keys are retired would then be unknown."""
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyMaterialError(f"{self.path}: cannot list the folder: {exc.strerror}") from None
        found: dict[str, str] = {}
        for name in names:
            if _retired_form_id(name) is not None:
                record = self._retired_form(self.path / name)
                found[record.key_id] = hashlib.sha256(record.public or b"").hexdigest()
        return found

    def retired_keys(self, listed: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every key-agreement key retired here, key id to the SHA-256 hex of its public half: those the
        ``retired-kex`` list names (``listed``, when read already) and those moved aside (``retired_forms``), so
        losing either one alone takes back no retirement. KeyMaterialError (one line) when either does not read, or
        the two give one id two keys."""
        retired = dict(self.retired_kex() if listed is None else listed)
        for key_id, digest in self.retired_forms().items():
            if retired.setdefault(key_id, digest) != digest:
                raise KeyMaterialError(f"key {key_id}: {self.path / (key_id + RETIRED_FORM)} holds another public key "
                                       f"than {self.path / RETIRED_KEX} names for it: restore both from a backup")
        return retired

    def retire_kex(self, key_id: str, *, force: bool = False) -> tuple[KeyRecord, bool]:
        """Retire the key-agreement key ``key_id`` (an agency's public half or the broker's own) in this folder, the
        broker's, for good; return it and whether this call retired it (False: retired already).

        Its id and the SHA-256 of its public half go on the ``retired-kex`` list, and its file ``<key id>.json`` is
        moved aside as ``<key id>.json.retired``, holding its public half alone (the broker's own key's private half
        is destroyed: no pair with it is derived again). The MAC table reads only ``<key id>.json`` files, so the
        revocation lasts whatever becomes of the list (emptied, removed, restored from an older backup, left behind
        by a copy of ``*.json``); the list and the public half moved aside each refuse the same key under any id,
        in the MAC table and at ``import_public``. Retiring again a key on the list whose file is still (or again)
        here, as ``retire_kex`` left it before keys were moved aside, moves it aside; one moved aside but off the
        list is listed again; either returns True. Refused, with nothing written: an agency's own folder (it stops
        using a key with `keys use`), a key not held here (its public half names it on the list), a file under a
        retired id holding another key than the one retired, and, unless ``force``, the only key-agreement key of
        its owner left unretired (for an agency, every record it MACs would then be dead-lettered; for the broker,
        every agency's)."""
        parsed = parse_key_id(key_id)
        if parsed.kind is not KeyKind.KEY_AGREEMENT:
            raise KeyMaterialError(f"key {key_id} is not a key-agreement key (<AGENCY>-kex-<generation>, or the "
                                   "broker's broker-kex-<generation>): only those derive ingress MAC keys; other "
                                   "keys rotate by their generation")
        with self._alone():  # two retirements at once never lose one of them
            if self._holds_agency_private():
                raise KeyMaterialError(f"keystore {self.path} holds an agency's own key: keys are retired in the "
                                       "broker's folder (--dir <keys>/broker); an agency stops using a key with "
                                       "`puente keys use`")
            live, aside = self.path / f"{key_id}.json", self.path / f"{key_id}{RETIRED_FORM}"
            moved = self._retired_form(aside) if os.path.lexists(aside) else None
            if not os.path.lexists(live):
                if moved is None:
                    raise KeyMaterialError(f"key {key_id}: keystore {self.path} holds no such key, and a key is "
                                           "retired by its public half: import its PEM (`puente keys import-public`), "
                                           "then retire it")
                return moved, self._list_retired(moved, self.retired_kex())
            record = self.load(key_id, KeyKind.KEY_AGREEMENT)
            if record.owner != BROKER_OWNER:
                self.refuse_private(record)
            if moved is not None and moved.public != record.public:
                raise KeyMaterialError(f"key {key_id}: {live} holds another key than the one retired under that id "
                                       f"({aside.name}): a key is never replaced under its id; remove {live.name}")
            retired = self.retired_keys()
            if key_id not in retired:
                self._refuse_last(record, retired, force)
            self._list_retired(record, self.retired_kex())
            try:
                write_atomic(aside, record_to_json(record.public_only()), 0o644)
                live.unlink()
            except OSError as exc:
                raise KeyMaterialError(f"cannot move {live} aside as {aside.name}: {exc.strerror}; {key_id} is on "
                                       f"{RETIRED_KEX} but its file is still read: run the retire again") from None
        return record, True

    def _refuse_last(self, record: KeyRecord, retired: Mapping[str, str], force: bool) -> None:
        """Refuse, unless ``force``, retiring ``record`` when it is its owner's only key-agreement key here left
        unretired (``retired``): every record its owner MACs (every agency's, for the broker's own) would then be
        dead-lettered."""
        left = [r.key_id for r in self.generations(record.owner, KeyKind.KEY_AGREEMENT)
                if r.key_id != record.key_id and r.key_id not in retired
                and hashlib.sha256(r.public or b"").hexdigest() not in retired.values()
                and (record.owner != BROKER_OWNER or r.secret is not None)]
        if not left and not force:
            whose = "the broker's" if record.owner == BROKER_OWNER else f"{record.owner}'s"
            cut = "every agency's records" if record.owner == BROKER_OWNER else f"every record {record.owner} MACs"
            raise KeyMaterialError(
                f"key {record.key_id} is {whose} only key-agreement key in {self.path} not retired: retired, {cut} "
                "would be dead-lettered until a new generation is in use; make and hand over the new generation first "
                "(`puente keys generate --generation G`, `keys import-public`, `keys use`), or add --force to cut "
                f"{record.owner} off now (a leaked key); nothing was written")

    def _list_retired(self, record: KeyRecord, listed: dict[str, str]) -> bool:
        """Put ``record`` on the ``retired-kex`` list (``listed``, as read) unless it is there; whether it wrote."""
        if record.key_id in listed:
            return False
        listed[record.key_id] = hashlib.sha256(record.public or b"").hexdigest()
        text = "".join(f"{kid} {value}\n" for kid, value in listed.items())
        try:
            write_atomic(self.path / RETIRED_KEX, text.encode("ascii"), 0o644)
        except OSError as exc:
            raise KeyMaterialError(f"cannot write {self.path / RETIRED_KEX}: {exc.strerror}; {record.key_id} was not "
                                   "retired") from None
        return True

    def older_kex(self) -> list[tuple[str, list[str], str]]:
        """(owner, its older generations not retired, its newest) for each owner of which this folder, the broker's,
        holds more than one key-agreement generation not retired (``retire_kex``), the broker's own counted only with
        their private half; newest by generation label (``compare_generations``), then by when made or imported.
        Every generation held keeps verifying what it MACs, so after a rotation the older one is a leaked key's way
        in until it is retired: what `keys list` and `keys import-public` name."""
        retired = self.retired_keys()
        by_owner: dict[str, list[KeyRecord]] = {}
        for record in self.parsed_keys():
            if record.kind is not KeyKind.KEY_AGREEMENT or record.key_id in retired:
                continue
            if hashlib.sha256(record.public or b"").hexdigest() in retired.values():
                continue
            if record.owner == BROKER_OWNER and record.secret is None:
                continue
            by_owner.setdefault(record.owner, []).append(record)

        def order(a: KeyRecord, b: KeyRecord) -> int:
            label = compare_generations(parse_key_id(a.key_id).generation, parse_key_id(b.key_id).generation)
            if label:
                return label
            return (a.created_at > b.created_at) - (a.created_at < b.created_at)

        found = []
        for owner, records in sorted(by_owner.items()):
            if len(records) > 1:
                ranked = sorted(records, key=functools.cmp_to_key(order))
                found.append((owner, [r.key_id for r in ranked[:-1]], ranked[-1].key_id))
        return found

    def use_agency_key(self, key_id: str) -> KeyRecord:
        """Name ``key_id``, one of this folder's agency key-agreement keys with its private half, as the one
        the adapter MACs with from its next start (``agency_key_in_use``), or one of the broker's key-agreement
        public halves held here as the one it pairs with (``broker_key_in_use``), and return it."""
        parsed = parse_key_id(key_id)
        if parsed.kind is not KeyKind.KEY_AGREEMENT:
            raise KeyMaterialError(f"key {key_id} is not a key-agreement key (<AGENCY>-kex-<generation>, or the "
                                   "broker's broker-kex-<generation>)")
        broker = parsed.owner == BROKER_OWNER
        if broker and key_id not in self.key_ids():
            held = [r.key_id for r in self.generations(BROKER_OWNER, KeyKind.KEY_AGREEMENT)]
            raise KeyMaterialError(f"key {key_id}: keystore {self.path} holds no such broker key (it holds "
                                   f"{', '.join(held) or 'none'}): import the broker's PEM under the id the broker's "
                                   "operator gave, exactly, before naming it")
        record = self.load(key_id, KeyKind.KEY_AGREEMENT)
        if broker and record.secret is not None and not self._holds_agency_private():
            # Not a leak into an agency's folder (which holds the agency's own key) but the broker's folder itself:
            # "move it out" would strip the broker of its key.
            raise KeyMaterialError(f"key {key_id}: {self.path} is the broker's folder (it holds {key_id} with its "
                                   "private half, and no agency's own key): the broker key an agency pairs with is "
                                   "named in that agency's folder; give the agency's folder with --dir (e.g. "
                                   "<keys>/agencies/<A>)")
        if broker:
            self.refuse_private(record)
        elif record.secret is None:
            raise KeyMaterialError(f"key {key_id}: keystore {self.path} holds only its public half; the agency "
                                   f"uses a key from the folder where it keeps its own keys")
        name = BROKER_IN_USE if broker else IN_USE
        try:
            write_atomic(self.path / name, f"{key_id}\n".encode("ascii"), 0o644)
        except OSError as exc:
            raise KeyMaterialError(f"cannot write {self.path / name}: {exc.strerror}") from None
        return record

    def _holds_agency_private(self) -> bool:
        """Whether a key file here holds an agency's key-agreement key with its private half, as an agency's own
        folder does and the broker's never should."""
        for key_id in self.key_ids():
            parsed = parse_key_id(key_id)
            if parsed.kind is not KeyKind.KEY_AGREEMENT or parsed.owner == BROKER_OWNER:
                continue
            try:
                record, _ = _parse_key_file(self.path / f"{key_id}.json", key_id)
            except KeyMaterialError:
                continue
            if record.secret is not None:
                return True
        return False

    def broker_key_in_use(self) -> KeyRecord:
        """The broker's key-agreement public half the agency's adapter pairs with: the one generation held, or,
        once there are several, the one ``broker-in-use`` names (``use_agency_key``; ``puente keys use
        broker-kex-<gen>``), never one taken by itself. The pair id names the broker's key id as it was typed at
        import, and nothing on the agency's side can tell a mistyped id from the right one (the fingerprint is the
        key's, not its id's): taking the newest label by itself, one import under a wrong id had the broker
        dead-letter everything the adapter MACed. Refused: any of the broker's halves held with its secret, and
        one public half held under two ids (``broker.crypto.keys.refuse_one_key_two_ids``)."""
        held = self.generations(BROKER_OWNER, KeyKind.KEY_AGREEMENT)
        if not held:
            raise KeyMaterialError(
                f"no broker key-agreement key in keystore {self.path}: import the broker's public half with "
                f"puente keys import-public FILE.pem --id broker-kex-<generation> --dir {self.path}"
            )
        for record in held:
            self.refuse_private(record)
        refuse_one_key_two_ids(held, f"keystore {self.path}")
        use = f"puente keys use broker-kex-<generation> --dir {self.path}"
        return self._chosen(held, BROKER_IN_USE, "the broker's", f"run `{use}` with the id the broker's operator gave",
                            use)

    def load_agency_mac(self, agency: str) -> SecretBytes:
        """The agency's ingress MAC key (adapter side), derived from its key-agreement key in use
        (``agency_key_in_use``) and the broker's public half in use (``broker_key_in_use``: the one held, or the
        one named); its ``key_id``, the pair id, goes in the headers. Refused while the folder holds any other
        party's private half under any name, one public half under two ids, or any entry it does not keep
        (``agency_custody_problems``): the broker's key-agreement half above all, from which every agency's MAC
        key can be derived."""
        own = self.agency_key_in_use(agency)
        if own.secret is None:
            raise KeyMaterialError(f"key {own.key_id}: keystore {self.path} holds only its public half; "
                                   f"the adapter of {agency} needs the folder where {agency} keeps its own keys")
        problems = self.agency_custody_problems(agency)
        if problems:
            raise KeyMaterialError("; ".join(problems))
        return ingress_mac_key(own, self.broker_key_in_use())

    def load_pseudonym_key(self, agreement: str) -> SecretBytes:
        """The agreement's current pseudonymisation key."""
        return self.current(agreement, KeyKind.PSEUDONYM).symmetric(KeyKind.PSEUDONYM)

    def load_reference_key(self) -> SecretBytes:
        """The broker's alert-reference key (``policies.alert_reference``): made once, with its first keys, and never
        again (``generate_own``), since a new one would give every alert partners hold a new id."""
        return self.current(BROKER_OWNER, KeyKind.PSEUDONYM).symmetric(KeyKind.PSEUDONYM)

    def agency_mac_lookup(self, skip: Callable[[str], None] | None = None,
                          ) -> Callable[[str, str], SecretBytes | None]:
        """Derive every agency's MAC key now, once per pair; return the ``lookup`` that ``verify_ingress`` wants.

        One key per pair of a broker key-agreement key held here (with its private half) and an
        agency's imported public half, so every generation on either side stays valid and records
        MACed before a rotation still verify, until it is retired (``retire_kex``; ``puente keys
        retire``, which ``keys use`` and ``keys import-public`` name at each rotation): a key on the
        ``retired-kex`` list, by its id or its public half, is in no pair, and a list that does not read
        refuses the whole table (fails closed). Removing a key file revokes it too, but only until its PEM
        is imported again. ``lookup(agency, key_id)`` answers only for an exact pair id
        (``<agency>-kex-<gen>+broker-kex-<gen>``) of that agency's own key. An agency's private half found
        here is refused: only the agency holds it; so is a key-agreement key whose public half is held
        under another key id, of any owner and kind (``_public_owners``): that owner could MAC as this one.

        A key-agreement file that does not load, or is refused, refuses the whole table; with ``skip`` it is
        left out instead and its problem (one line, naming the file) handed to ``skip`` (``_mac_table``: what a
        running broker's re-read does with files new since its last read).
        """
        table, _, _ = self._mac_table(skip, {}, None)

        def lookup(agency: str, key_id: str) -> SecretBytes | None:
            return table.get((agency, key_id))  # exact pair ids only: no parsing, no guessing

        return lookup

    def _mac_table(self, skip: Callable[[str], None] | None, held: Mapping[str, bytes],
                   folder: tuple[int, int] | None, seen: _Retirements | None = None,
                   ) -> tuple[dict[tuple[str, str], SecretBytes], dict[str, bytes], tuple[int, int] | None]:
        """``agency_mac_lookup``'s table, the ids of the key-agreement files it was made from, each with its
        public half, and (with ``skip``) the identity of the folder read (``_listed_ids``; ``folder``, the last
        read's, which it must match).

        With ``skip`` (a running broker's re-read; ``held``, the files the last table was made from), a file new
        since then that does not load, or is refused, is left out, its problem handed to ``skip``: records MACed
        with it were never verified. A file ``held`` that is still there but stopped loading raises
        ``KeyUnusable`` instead, the broker's own or an agency's alike: leaving it out would dead-letter, for good,
        every genuine record MACed with it, which the start refuses to read at all; the worker stops before
        committing; one that fails a read is read again first (``_load_held``: a file replaced by a rename may fail
        one). A file ``held`` that now holds another public half than it did counts as stopped loading too: a key
        is never replaced under its id, and one rewritten to copy another held key must not have that key's innocent
        owner dropped beside it. A key retired (``retire_kex``: on the list, or moved aside) is left out, and a
        ``retired-kex`` list that no longer reads raises ``KeyUnusable`` (which keys it retires is unknown). ``seen``,
        the running broker's memory of every retirement it has read (updated here), only grows: a re-read whose
        list lost one of its entries, or whose list and moved-aside keys together lost one (emptied, removed,
        restored from an older backup), raises
        ``KeyUnusable`` rather than derive its pairs again. Only a file removed from a folder that still lists revokes
        a key otherwise: a folder that cannot
        be listed (``_listed_ids``), or a read that would leave out every file ``held`` at once, raises ``KeyUnusable``
        too, since that is a folder moved aside or remounting, not a revocation; so does a folder that is no longer
        the one the last read listed (``folder``), though it holds the broker's own files (a copy under way). Each
        held key it revokes is logged, by id. One public half under several ids
        keeps the one ``held`` (unchanged, by then) and leaves out the newcomers; when none of them was held, all are
        left out."""
        problems: list[str] = []
        loaded: list[KeyRecord] = []

        def stopped(message: str) -> KeyUnusable:
            return KeyUnusable(f"{message}. A key-agreement key the running broker verified with stopped loading, so "
                               "the records MACed with it could not be checked: it stopped without committing the "
                               "record it was checking or any after it; fix the file (or remove it to revoke the "
                               "key) and start it again")

        listed, found = (self.key_ids(), None) if skip is None else self._listed_ids(folder)
        try:
            on_list = self.retired_kex()
            retired = self.retired_keys(on_list)
        except KeyMaterialError as exc:
            # Which keys it retires is unknown: none may be taken as not retired.
            if skip is None:
                raise
            raise stopped(str(exc)) from None
        if seen is not None:
            # The list is checked on its own: a retired key moved aside still revokes, but a list that lost it is
            # one emptied, removed or restored from an older backup, which a running broker never takes in silence.
            lost = sorted({key_id for key_id, digest in seen.listed.items() if on_list.get(key_id) != digest}
                          | {key_id for key_id, digest in seen.kept.items() if retired.get(key_id) != digest})
            if lost:
                raise KeyUnusable(
                    f"keystore {self.path}: {', '.join(lost)}, retired when the running broker last read it, is no "
                    f"longer on {RETIRED_KEX} nor moved aside ({lost[0]}{RETIRED_FORM}): a retirement is never taken "
                    "back, so it stopped without committing the record it was checking or any after it; restore the "
                    f"list and the files from a backup, or retire the keys again (`puente keys retire KEY_ID --dir "
                    f"{self.path}`), and find out what changed them")
            seen.listed.update(on_list)
            seen.kept.update(retired)
        for key_id in listed:
            parsed = parse_key_id(key_id)
            if parsed.kind is not KeyKind.KEY_AGREEMENT or key_id in retired:
                continue
            try:
                record = (self._load_held(key_id) if skip is not None and key_id in held
                          else self.load(key_id, KeyKind.KEY_AGREEMENT))
            except KeyMaterialError as exc:
                if skip is not None and not os.path.lexists(self.path / f"{key_id}.json"):
                    continue  # removed since the folder was listed: revoked, as on the next read
                if skip is not None and key_id in held:
                    raise stopped(str(exc)) from None
                problems.append(str(exc))
                continue
            problem = self._mac_file_problem(record, held.get(key_id) if skip is not None else None, retired)
            if problem is not None:
                if skip is not None and key_id in held:
                    raise stopped(problem)
                problems.append(problem)
                continue
            loaded.append(record)
        owners = self._public_owners()
        usable: list[KeyRecord] = []
        for record in loaded:
            same = owners.get(record.public or b"", {})
            others = {key_id: owner for key_id, owner in same.items() if key_id != record.key_id}
            if not others or (skip is not None and record.key_id in held and not held.keys() & others.keys()):
                usable.append(record)  # alone, or the one the last table held, whatever was added beside it
                continue
            problems.append(
                f"key {record.key_id}: {self.path / f'{record.key_id}.json'} holds the same public key as "
                f"{', '.join(sorted(others))}, so {' and '.join(sorted(set(others.values())))} could MAC as "
                f"{record.owner}: compare each with its owner's fingerprint and remove the one that is not")
        if skip is not None:
            # The files were opened by name: the folder moved aside, unmounted or swapped meanwhile revokes nothing.
            self._same_folder(found, self._identity)
        if problems:
            if skip is None:
                raise KeyMaterialError(problems[0])
            for problem in problems:
                skip(problem)
        if skip is not None and held and not held.keys() & {r.key_id for r in usable}:
            # Every held key gone at once is a whole rotation in one step, or a folder emptied or half-filled in
            # place: the running broker cannot tell them apart, the operator can, and only a restart's first read
            # may take a folder with none of the keys it held.
            raise KeyUnusable(
                f"keystore {self.path}: not one of the key-agreement keys the running broker verified with "
                f"({', '.join(sorted(held))}) is there now: it stopped without committing the record it was "
                "checking or any after it. If every key was rotated at once, start the broker again to take the new "
                "ones; otherwise (a folder emptied or being filled in place, a revocation by mistake) put the keys "
                "back and start it again")
        own = [r for r in usable if r.owner == BROKER_OWNER and r.secret is not None]
        theirs = [r for r in usable if r.owner != BROKER_OWNER]
        table: dict[tuple[str, str], SecretBytes] = {}
        for mine in own:
            for agency_key in theirs:
                key = ingress_mac_key(mine, agency_key)
                table[(agency_key.owner, key.key_id)] = key
        if skip is not None:
            for key_id in sorted(held.keys() - {r.key_id for r in usable}):
                # Revocation is silent to the records (a dead letter ``origin``): the operator hears of it here.
                how = "retired (`puente keys retire`)" if key_id in retired else "its file was removed"
                log.warning(f"key-agreement key revoked: {how}", key_id=key_id,
                            agency=parse_key_id(key_id).owner, file=str(self.path / f"{key_id}.json"))
        return table, {r.key_id: r.public or b"" for r in usable}, found

    def _identity(self) -> tuple[int, int]:
        """The keystore folder's (st_dev, st_ino), as its path now leads to it; ``OSError`` if it does not."""
        info = os.stat(self.path)
        return info.st_dev, info.st_ino

    def _same_folder(self, was: tuple[int, int] | None, now: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        """The identity ``now`` reads; ``KeyUnusable`` when it cannot read it, or when it is not the folder ``was``
        names (None: no read before)."""
        try:
            identity = now()
        except OSError as exc:
            raise KeyUnusable(
                f"keystore {self.path}: cannot list the folder ({exc.strerror or type(exc).__name__}) to read the "
                "agencies' MAC keys again: it stopped without committing the record it was checking or any after "
                "it; start it again once the folder is there and readable") from None
        if was is not None and identity != was:
            raise KeyUnusable(
                f"keystore {self.path}: the folder is no longer the one the running broker read its MAC keys from "
                "(moved aside, remounted, a link pointed at another folder, perhaps one still being filled), so a "
                "key file missing from it is no revocation: it stopped without committing the record it was "
                "checking or any after it; start it again once the folder is whole, and the start reads it anew")
        return identity

    def _listed_ids(self, was: tuple[int, int] | None) -> tuple[list[str], tuple[int, int]]:
        """``key_ids`` for a running broker's re-read, with the identity (st_dev, st_ino) of the folder listed, which
        must tell an empty folder from one it could not list, and the folder it read from another put in its place:
        ``KeyUnusable`` when the folder cannot be listed (gone while a rotation moves it aside or a volume remounts;
        no file descriptor left; its mode changed), since ``key_ids`` answers none for it and every key held would
        count as revoked, or when it is not the folder ``was`` names (``_same_folder``): a folder swapped in before
        it was filled holds the broker's own files but not yet the agencies'. The folder is listed through the
        descriptor its identity was read from, so the names are the identified folder's."""
        names: list[str] = []

        def listed() -> tuple[int, int]:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                info = os.fstat(fd)
                names.extend(os.listdir(fd))
            finally:
                os.close(fd)
            return info.st_dev, info.st_ino

        identity = self._same_folder(was, listed)
        return sorted(name[:-5] for name in names
                      if name.endswith(".json") and KEY_ID_PATTERN.fullmatch(name[:-5])), identity

    def _mac_file_problem(self, record: KeyRecord, was: bytes | None, retired: Mapping[str, str]) -> str | None:
        """Why the key-agreement file of ``record`` is refused for the MAC table, or None; ``was``, the public half
        it held when a running broker last read it, if it did; ``retired``, the ``retired-kex`` list, whose keys
        come back under no other id."""
        path = self.path / f"{record.key_id}.json"
        digest = hashlib.sha256(record.public or b"").hexdigest()
        if digest in retired.values():
            old = next(key_id for key_id, value in retired.items() if value == digest)
            return (f"key {record.key_id}: {path} holds the public key of {old}, retired ({RETIRED_KEX}, "
                    f"{old}{RETIRED_FORM}): a retired key is never taken again under any id; remove the file (its "
                    "owner makes a new generation)")
        if record.owner != BROKER_OWNER and record.secret is not None:
            return (f"key {record.key_id}: keystore {self.path} holds agency {record.owner}'s private half, which "
                    "only the agency may hold: delete that file and import the agency's public half instead")
        if record.owner == BROKER_OWNER and record.secret is None:
            # Left out, the broker would pair with it no more, and every agency told to use it be dead-lettered.
            return (f"key {record.key_id}: {path} holds only the public half of the broker's own key-agreement key, "
                    "so nothing MACed with it can be verified: put its private half back, or retire the key "
                    f"(`puente keys retire {record.key_id} --dir {self.path}`)")
        if was is not None and record.public != was:
            return (f"key {record.key_id}: {path} now holds another key than the one the broker verified with under "
                    "this id (a key is never replaced: a new key needs a new generation); put the file back as it was")
        return None

    def _load_held(self, key_id: str) -> KeyRecord:
        """The key-agreement key ``key_id``, one a running broker verified with, read again up to
        ``len(_HELD_PAUSES)`` times while it fails to load and its name is still there: a file replaced by a rename
        between the walk to it and its open (``write_atomic``, or Kubernetes swapping a secret volume's ``..data``
        link) fails one read as changed or missing, and the next read finds the new file whole. Only a refusal that
        persists is raised."""
        for pause in _HELD_PAUSES:
            try:
                return self.load(key_id, KeyKind.KEY_AGREEMENT)
            except KeyMaterialError:
                if not os.path.lexists(self.path / f"{key_id}.json"):
                    raise  # removed: revoked
            time.sleep(pause)
        return self.load(key_id, KeyKind.KEY_AGREEMENT)

    def _public_owners(self) -> dict[bytes, dict[str, str]]:
        """Each public half held here, of any kind, to the ids it is held under, with their owners: from
        every key file that parses, whatever its mode, since whose key a file holds does not depend on it (a
        partner's encryption half copied in as an agency's key-agreement key lets the partner MAC as the agency)."""
        owners: dict[bytes, dict[str, str]] = {}
        for record in self.parsed_keys():  # a key-agreement file that does not read is refused by its own load
            if record.public is not None:
                owners.setdefault(record.public, {})[record.key_id] = record.owner
        return owners

    def parsed_keys(self) -> list[KeyRecord]:
        """Every key file here that reads as one, of any kind and whatever its mode, sorted by id: what the checks of
        one key under two ids compare, since whose key a file holds does not depend on its mode, nor on whether the
        reader loads its kind. A file that does not read is left out here; whatever loads it refuses it."""
        found: list[KeyRecord] = []
        for key_id in self.key_ids():
            try:
                record, _ = _parse_key_file(self.path / f"{key_id}.json", key_id)
            except KeyMaterialError:
                continue
            found.append(record)
        return found

    def refuse_one_key_two_ids(self) -> None:
        """KeyMaterialError (one line naming both ids) when two key files here, of any kinds, hold one public half
        (``broker.crypto.keys.refuse_one_key_two_ids``). Called by every reader that builds a verifier from this
        folder (``signature_check``, ``load_verify_keys``, ``broker.partner.receipt_signer``) before it loads a key:
        comparing only the kinds a reader loads would miss a key it loads that copies one it does not (a partner's
        receipt key beside the broker's signing keys), and a file copied in by hand skips ``import_public``'s own
        check."""
        refuse_one_key_two_ids(self.parsed_keys(), f"keystore {self.path}")

    def fresh_agency_mac_lookup(self, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                                on_problem: Callable[[str], None] | None = None,
                                ) -> Callable[[str, str], SecretBytes | None]:
        """``agency_mac_lookup`` that reads the keystore again when asked for a pair it does not hold and the
        folder's modification time moved since it was read (a key file written or removed; a file system with
        coarse times, or one caching them, falls back to the interval), or at most once per ``every_s`` else:
        a running broker takes an agency's new key (imported, then put in use with `keys use`) and its own new
        key-agreement key (which agencies use once they name it, `keys use`) without a restart, rather than
        dead-letter, for good, what they MACed meanwhile. A pair it holds is checked too: once ``every_s`` has
        passed, a moved modification time reads the keystore again (at the latest every ``REREAD_HELD`` such
        intervals whatever the time says), so a key retired (``retire_kex``), or its file removed, stops
        verifying within about that, not at the next restart.

        The first read refuses what ``agency_mac_lookup`` refuses (the start names the file). A re-read never keeps
        the old table: a key retired or its file removed is revoked (and logged, by id), but only from the folder it
        read first, and never every key it held at once: a folder moved aside, remounting or put in another's place
        (its device and inode no longer the first read's, a link pointed elsewhere, a copy still filling it) raises
        ``KeyUnusable``, as does one it could not list for want of a file descriptor. A file it was made from that
        is still there but stopped loading (a mode others may write, say; after a read again) or now holds another
        key raises ``KeyUnusable``, so the worker stops before committing rather than dead-letter that key's genuine
        records; a new file that does not load, or a newcomer holding a public
        half already held under another id, is left out, the first kept (``_mac_table``). Each file left out has
        its problem go to ``on_problem`` once, again only after it was gone from a read."""

        def changed() -> int | None:
            try:
                return os.stat(self.path).st_mtime_ns
            except OSError:
                return None

        reported: set[str] = set()
        held: Mapping[str, bytes] = {}
        retirements = _Retirements({}, {})  # every retirement read so far: it only grows (``_mac_table``)
        # Which folder the first read read, taken before it: one swapped in meanwhile stops the worker at a re-read.
        folder: tuple[int, int] | None
        try:
            folder = self._identity()
        except OSError:
            folder = None  # no folder to read: nothing is held, and the first re-read that lists one names it

        def read_again() -> dict[tuple[str, str], SecretBytes]:
            nonlocal reported, held, folder
            found: list[str] = []
            pairs, held, folder = self._mac_table(found.append, held, folder, retirements)
            for problem in found:
                if problem not in reported and on_problem is not None:
                    on_problem(problem)
            reported = set(found)
            return pairs

        seen = changed()  # before the read: a file written meanwhile makes the first miss read again
        table, held, _ = self._mac_table(None, held, None, retirements)
        read_at = checked = clock()  # when the keystore was last read; when a held pair last looked at the folder

        def lookup(agency: str, key_id: str) -> SecretBytes | None:
            nonlocal table, seen, read_at, checked
            found = table.get((agency, key_id))
            now_s = clock()
            if found is None:
                # A miss reads again when the folder moved, or once ``every_s`` has passed since the last read:
                # its clock is the read's alone, so a stream of unknown pairs neither delays the next read nor
                # holds back the check of the pairs held.
                due = now_s - read_at >= every_s
            elif now_s - checked >= every_s:  # a hit costs one clock reading until the interval
                checked = now_s
                due = now_s - read_at >= every_s * REREAD_HELD
            else:
                return found
            now = changed()
            if now != seen or due:
                seen, read_at = now, now_s
                table = read_again()
                found = table.get((agency, key_id))
            return found

        return lookup

    def public_pem(self, key_id: str) -> bytes:
        """The public half of ``key_id`` as PEM SubjectPublicKeyInfo, for the other side."""
        return public_pem(self.load(key_id))

    def import_public(self, pem: bytes, key_id: str, *, source: str, now: datetime) -> tuple[KeyRecord, bool]:
        """Store the other side's public half ``key_id`` from ``pem`` (read from ``source``).

        Returns the record and whether it was written: importing the same public half again is a
        no-op, while a different one under an id already here is refused (a new key needs a new
        generation), as is an id whose private half this keystore holds, and one whose generation label does
        not order against a generation of the same owner's key of the same kind held here (``compare_generations``:
        ``2027`` beside ``2026a``): whoever reads this keystore ranks the generations by their labels to tell a
        retired key from the one in use (a partner's subscriber, the broker's own key rotating forward only), and
        two that do not order would make neither the newer, so a leaked old key never retires.
        """
        record = public_from_pem(pem, key_id=key_id, created_at=now, source=source)
        self._refuse_retired(record, source)
        self._refuse_held_by_another(record, source)
        self._refuse_unordered(record, source)
        target = self.path / f"{key_id}.json"
        if not target.exists():
            try:
                self.put(record)
                return record, True
            except KeyMaterialError:
                if not os.path.lexists(target):
                    raise
                # Written since it was looked for, by an import on this folder at the same time: judged as one
                # found here (the same half is the no-op it would have been; another is refused).
        existing = self.load(key_id, record.kind)
        if existing.secret is not None:
            raise KeyMaterialError(f"{source}: keystore {self.path} holds the private half of {key_id} itself; "
                                   "import public halves into the other side's keystore")
        if existing.public != record.public:
            raise KeyMaterialError(f"{source}: keystore {self.path} already holds a different public key "
                                   f"{key_id}; a new key needs a new generation")
        return existing, False

    def _refuse_retired(self, record: KeyRecord, source: str) -> None:
        """Refuse a key-agreement key retired here (``retire_kex``), by its id or by its public half under any id: a
        retired key is often a leaked one, and imported again it would MAC for its owner once more."""
        if record.kind is not KeyKind.KEY_AGREEMENT:
            return
        retired = self.retired_keys()
        digest = hashlib.sha256(record.public or b"").hexdigest()
        old = record.key_id if record.key_id in retired else next(
            (key_id for key_id, value in retired.items() if value == digest), None)
        if old is not None:
            raise KeyMaterialError(f"{source}: {old} was retired in {self.path} ({RETIRED_KEX}, {old}{RETIRED_FORM}), "
                                   "and a retired key "
                                   f"is never taken again: {record.owner} makes a new generation and hands over its "
                                   "public half; nothing stored")

    def _refuse_unordered(self, record: KeyRecord, source: str) -> None:
        """Refuse ``record`` when its generation label does not order against another generation of its owner's key
        of its kind held here (``import_public``)."""
        label = parse_key_id(record.key_id).generation
        for key_id in self.key_ids():
            held = parse_key_id(key_id)
            if key_id != record.key_id and (held.owner, held.kind) == (record.owner, record.kind) \
                    and compare_generations(label, held.generation) is None:
                raise KeyMaterialError(
                    f"{source}: {record.key_id} cannot be ordered against {key_id}, held in {self.path}, by their "
                    "generation labels, so a retired key could not be told from the one in use: labels order run by "
                    "run, digits as numbers and letters alphabetically, each run the same shape (2026a < 2026b < "
                    "2027a); import it under the id its owner exported it under (`puente keys export-public`)")

    def _refuse_held_by_another(self, record: KeyRecord, source: str) -> None:
        """Refuse a public half held here already under another key id: as another owner's key, the wrong PEM
        picked up would otherwise seal one partner's feed to another's key, or let one agency MAC as another; as
        another generation of the same owner's, one id is mistyped (``broker-kex-2026B`` for ``2026b``), and a
        pair id naming it is one the broker does not hold."""
        for key_id in self.key_ids():
            if key_id == record.key_id:
                continue
            held = self.load(key_id)
            if held.public is not None and hmac.compare_digest(held.public, record.public or b""):
                whose = "" if held.owner != record.owner else " (the same key under two generations' ids)"
                raise KeyMaterialError(
                    f"{source}: keystore {self.path} already holds this public key as {key_id}, {held.owner}'s{whose}, "
                    f"so it cannot also be {record.key_id}: check that {source} is {record.owner}'s own key and "
                    "that the id is the one its owner gave"
                )

    def generate_own(self, holder: Holder, ident: str, *, generation: str, now: datetime,
                     agreements: Iterable[str] = (), keep_existing: bool = False,
                     missing_only: bool = False, before_write: Callable[[], None] | None = None) -> list[KeyRecord]:
        """Create ``holder``'s own private keys here (``own_kinds``), all of them or none (``_put_set``), and return
        them.

        Refuses, before writing anything, when any of them exists; with ``keep_existing`` an
        existing key is loaded and kept instead (what ``provision`` does on a second run). With
        ``missing_only``, the broker's generation named again makes only the pseudonym keys it lacks and returns
        those: its alert-reference key (a keystore made before references) or a new agreement's key. Asked for,
        never taken as the way out of a refusal: made for one that was lost, a key gives partners new references or
        pseudonyms for what they hold, which a backup of the lost file would not.

        ``before_write`` is called once every refusal has passed, right before the first key (or ``in-use``) is
        written, and not at all when none is (``provision``: the trial's mark).
        """
        # Decided and written alone in the folder (``_alone``): a run under way at the same time is never seen
        # half-way, its first keys linked and the one that puts its set in use (``_PUTS_IN_USE``) not yet.
        with self._alone() as locked:
            self._refuse_foreign_secrets(holder, ident)
            wanted = own_kinds(holder, ident, agreements)
            # A pseudonym key is made once per agreement, never with a new generation of the broker's own keys: the
            # newest is the one views use, so a new one would change every pseudonym partners already hold, and
            # workers restarted at different times would give one subject two pseudonyms meanwhile. So is the
            # broker's alert-reference key, for the same reason: a new one would give every alert partners hold a
            # new id.
            wanted = [(kind, owner) for kind, owner in wanted
                      if kind is not KeyKind.PSEUDONYM or not self.generations(owner, KeyKind.PSEUDONYM)
                      or (self.path / f"{KeyId(owner, kind, generation)}.json").exists()]
            ids = [str(KeyId(owner, kind, generation)) for kind, owner in wanted]
            for key_id in ids:
                parse_key_id(key_id)  # an owner or generation that cannot be a file name stops here
            present = [k for k in ids if (self.path / f"{k}.json").exists()]
            absent = [(kind, owner) for key_id, (kind, owner) in zip(ids, wanted, strict=True)
                      if key_id not in present]
            only_pseudonyms = holder is Holder.BROKER and bool(present) and all(kind is KeyKind.PSEUDONYM
                                                                                for kind, _ in absent)
            if missing_only:
                return self._add_missing(present, absent, only_pseudonyms, generation, now, locked)
            # Part of a generation is never finished: a key made now under an id already handed out (a set written
            # whole, one of its files lost since) would be a second key under that id.
            if present and not keep_existing:
                self._refuse_present(present, [key_id for key_id in ids if key_id not in present], only_pseudonyms,
                                     "the broker" if holder is Holder.BROKER else f"{holder} {ident}", generation)
            for key_id, (kind, owner) in zip(ids, wanted, strict=True):
                if key_id not in present:
                    self._require_after(kind, owner, generation)
            for key_id, (kind, owner) in zip(ids, wanted, strict=True):
                if key_id in present:  # kept (keep_existing): checked before anything is written
                    self._own_private(key_id, kind, owner)
            fresh = [new_key(kind, owner, generation, now)
                     for key_id, (kind, owner) in zip(ids, wanted, strict=True) if key_id not in present]
            if fresh and before_write is not None:
                before_write()
            if holder is Holder.AGENCY and not present and self._in_use() is None:
                held = self.generations(ident, KeyKind.KEY_AGREEMENT)
                if held:  # a new generation: the adapter keeps MACing with the one the broker holds until told
                    self.use_agency_key(held[0].key_id)
            written = {record.key_id: record
                       for record in self._put_set(fresh, keep_existing=keep_existing, locked=locked)}
        return [written[key_id] if key_id in written else self._own_private(key_id, kind, owner)
                for key_id, (kind, owner) in zip(ids, wanted, strict=True)]

    def _add_missing(self, present: list[str], absent: list[tuple[KeyKind, str]], only_pseudonyms: bool,
                     generation: str, now: datetime, locked: bool) -> list[KeyRecord]:
        """``generate_own --missing-only``: the pseudonym keys the broker lacks beside its keys of ``generation``
        (``present``), made and returned, without rotating the keys partners and agencies hold."""
        if not (only_pseudonyms and absent):
            raise KeyMaterialError(
                f"--missing-only makes only the pseudonym keys the broker lacks beside its keys of generation "
                f"{generation} in {self.path}: " + ("it lacks none" if only_pseudonyms else
                                                    "those keys are not there; name the generation in use"))
        for key_id in present:
            if self.load(key_id).secret is None:
                raise KeyMaterialError(f"key {key_id}: keystore {self.path} holds only its public half, but this "
                                       "is where the broker keeps its own private keys; this folder is someone "
                                       "else's")
        for kind, owner in absent:
            self._require_after(kind, owner, generation)
        return self._put_set([new_key(kind, owner, generation, now) for kind, owner in absent], locked=locked)

    @contextlib.contextmanager
    def _alone(self) -> Iterator[bool]:
        """This folder locked while the block runs (``folder_locked``), yielding whether it is; a folder not there
        yet holds no key to decide on, and is locked by the write that makes it (``_put_set``)."""
        if not self.path.is_dir():
            yield False
            return
        with folder_locked(self.path, KeyMaterialError) as locked:
            yield locked

    def _refuse_present(self, present: list[str], absent: list[str], only_pseudonyms: bool, whose: str,
                        generation: str) -> None:
        """KeyMaterialError (one line): keys ``present`` of ``whose`` generation asked for are here already
        (``generate_own``). With ``absent``, the rest of the set, the generation is incomplete and stays unused: the
        key that puts a set in use is written last (``_put_set``), so it is not there. Its files are never to be
        removed, since one may have been handed out; only the broker's pseudonym keys are added beside a generation
        (``--missing-only``)."""
        if only_pseudonyms and absent:
            raise KeyMaterialError(
                f"{', '.join(present)} already in {self.path}: a key is never replaced; choose a new generation "
                "(--generation); or add --missing-only to make only the pseudonym keys it lacks (a keystore made "
                "before alert references, a new agreement's key): never for a key that was lost, which its backup "
                "restores, since a new one gives partners new references or pseudonyms for what they hold")
        if absent:
            raise KeyMaterialError(
                f"generation {generation} of {whose} in {self.path} is incomplete (a run stopped half-way, or a key "
                f"file was lost): choose a new generation (`--generation`); the files present "
                f"({', '.join(f'{key_id}.json' for key_id in present)}) stay unused")
        raise KeyMaterialError(f"{', '.join(present)} already in {self.path}: a key is never replaced; "
                               "choose a new generation (--generation)")

    def _own_private(self, key_id: str, kind: KeyKind, owner: str) -> KeyRecord:
        """The key ``key_id`` held here, which must hold its private half: this is ``owner``'s own folder."""
        kept = self.load(key_id, kind)
        if kept.secret is None:
            raise KeyMaterialError(f"key {key_id}: keystore {self.path} holds only its public half, but this is "
                                   f"where {owner} keeps its own private key; this folder is someone else's")
        return kept

    def _put_set(self, records: Sequence[KeyRecord], *, keep_existing: bool = False,
                 locked: bool = False) -> list[KeyRecord]:
        """Write ``records``, one holder's new private keys, as new files, all of them or none
        (``write_new_all``), and return those written. A run that failed half-way (a full disk on the second file)
        would otherwise leave some behind, which a rerun must refuse to replace ("choose a new generation"), or,
        for the broker, a new signing key without the rest, which its next start would sign with. A name taken
        meanwhile is refused (KeyMaterialError) with nothing written; with ``keep_existing``, by a run on this folder
        at the same time (two ``keys init``), that key is kept instead (whole once its name exists) and the rest
        written again, all or none, the folder locked meanwhile (``folder_locked``; by the caller already when
        ``locked``: a second lock on another descriptor would wait for the first). A run killed half-way (no
        exception to undo it) leaves the generation in use as it was: the key that puts a set in use
        (``_PUTS_IN_USE``) is linked last, and ``generate_own`` refuses the rest of that generation; the temporary
        files a killed run left go once a set is written."""
        pending = sorted(records, key=lambda record: record.kind in _PUTS_IN_USE)  # the one putting it in use last
        if not pending:
            return []
        try:
            private_folder(self.path, error=KeyMaterialError)
        except OSError as exc:
            raise KeyMaterialError(f"cannot write {', '.join(r.key_id for r in pending)} in {self.path}: "
                                   f"{exc.strerror}; none of them was written") from None
        if locked:
            return self._write_set(pending, keep_existing, locked=True)
        # Alone in the folder: a run at the same time (two ``keys init``) waits, so this one's rollback never removes
        # a key the other kept in the meantime and returned as its own.
        with folder_locked(self.path, KeyMaterialError) as alone:
            return self._write_set(pending, keep_existing, locked=alone)

    def _write_set(self, pending: list[KeyRecord], keep_existing: bool, *, locked: bool) -> list[KeyRecord]:
        """``_put_set``'s write, then, the folder ``locked``, the temporary key files a killed run left removed:
        unlocked (a file system without locks), they may be a run's under way."""
        while pending:
            files = [(self.path / f"{record.key_id}.json", record_to_json(record),
                      0o600 if record.secret is not None else 0o644) for record in pending]
            try:
                write_new_all(files)
                break
            except FileExistsError as exc:
                key_id = Path(str(exc.filename)).name.removesuffix(".json")
                if not keep_existing or all(record.key_id != key_id for record in pending):
                    raise self._exists(key_id) from None
                pending = [record for record in pending if record.key_id != key_id]
            except OSError as exc:
                ids = ", ".join(record.key_id for record in pending)
                raise KeyMaterialError(f"cannot write {ids} in {self.path}: {exc.strerror}; none of them was "
                                       "written") from None
        # The temporary key files a killed run left (its private keys among them): its generation was given up for
        # another, or is this one kept whole. Still locked, so no write under way loses its own.
        if locked:
            remove_leftovers(self.path, _key_file_name)
        return pending

    def _refuse_foreign_secrets(self, holder: Holder, ident: str) -> None:
        """KeyMaterialError, before anything is written, when this folder holds a private half that is not
        ``holder``'s own (for the broker: one it makes for itself, ``_broker_makes``): it is another party's folder
        (a mistyped ``--dir``), and the keys made here would be in that party's custody."""
        for key_id in self.key_ids():
            try:
                record, _ = _parse_key_file(self.path / f"{key_id}.json", key_id)
            except KeyMaterialError:
                continue  # no one can tell whose: the custody checks name it
            if record.secret is None or (_broker_makes(record) if holder is Holder.BROKER else record.owner == ident):
                continue
            whose = "the broker's" if holder is Holder.BROKER else f"{holder} {ident}'s"
            raise KeyMaterialError(f"keystore {self.path} holds {record.owner}'s private key {key_id}: it is not "
                                   f"{whose} own folder, and keys made here would be in {record.owner}'s custody; "
                                   "give --dir the right folder")

    def _require_after(self, kind: KeyKind, owner: str, generation: str) -> None:
        """KeyMaterialError unless ``generation`` comes after every generation of ``owner``'s ``kind`` key held here
        (``compare_generations``). Whoever reads the keys on the other side orders them by their labels (an imported
        half's time is only when it was imported), and the broker's workers and ``audit verify`` take a block
        signed by a generation that comes before one already used for a retired key in use: a new key whose label
        comes before the old one's (``2026dec`` after ``2026nov``: letters compare alphabetically) would have its
        own blocks refused, and the other side keep using the old key. The key of ``generation`` itself, held already,
        is no conflict here: the caller found it absent, so another run made it meanwhile (two ``keys init`` at once),
        and the write that follows settles it (``put``: the one made first is kept, or the write is refused)."""
        for held in self.generations(owner, kind):
            old = parse_key_id(held.key_id).generation
            if old == generation:
                continue
            order = compare_generations(generation, old)
            if order != 1:
                why = ("comes before it or is the same" if order is not None else
                       "cannot be ordered against it: labels compare only when they have the same shape, runs of "
                       "digits and of letters in the same order, each letter run as long (2027a after 2026b, not 2027 "
                       "or 2026ba), and the first run that differs not the same spelt another way (2026A and 2026a, "
                       "01 and 1)")
                raise KeyMaterialError(
                    f"generation {generation[:40]} does not come after {old} ({held.key_id}, held in {self.path}): "
                    f"it {why}; the other side takes the newest label for the key in use, and labels compare run by "
                    "run, digits as numbers and letters alphabetically (2026a < 2026b < 2027a): choose one that "
                    "comes after every generation held")

    def retired_files(self) -> list[Path]:
        """Files of the retired shared ``agency-mac`` keys (``<agency>-mac-<gen>.json``) still here."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob("*-mac-*.json") if _RETIRED.fullmatch(p.name))

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
        """One site's set-up on one machine, exactly as the parties would do it on their own sides.

        Each party generates its own keys in its own folder under ``path`` (``holder_path``), and
        only public halves, as PEM, cross to the others: each partner's encryption and receipt
        keys to the broker, the broker's signing key to each partner, each agency's key-agreement
        key to the broker and the broker's to each agency. Keys that already exist are kept, so
        provisioning twice reuses them. A key its owner lost while another side holds its public half
        is refused before anything is written (``_refuse_lost``): it is never made again under that id.
        ``path`` is marked a single-site trial's (``TRIAL_MARK``) right before the first key is made, once the
        refusals before it have passed, and at the end when no key was made (a trial's root made before the mark); a
        set-up refused before any key leaves none.
        """
        now = now or datetime.now(UTC)
        generation = generation or f"{now.year}a"
        root = Path(path)
        partners, agencies = list(partners), list(agencies)
        _refuse_lost(root, partners, agencies, generation)
        broker = Keystore(holder_path(root, Holder.BROKER, BROKER_OWNER))

        def own(store: Keystore, holder: Holder, ident: str, found: Iterable[str] = ()) -> dict[KeyKind, KeyRecord]:
            # Every party's private keys on one machine: a trial's root, which the deployment guards (``keys generate
            # --for broker``, the broker's start: ``others_keys_problem``) must take as one. Marked only once a key is
            # about to be made: a mark left by a refused set-up would turn those guards off with nothing made.
            marked: list[bool] = []
            try:
                made = store.generate_own(holder, ident, generation=generation, now=now, agreements=found,
                                          keep_existing=True, before_write=lambda: marked.append(mark_trial(root)))
            except KeyMaterialError:
                if any(marked):  # this call's mark, its keys not written (``_put_set``: all or none)
                    with contextlib.suppress(OSError):
                        (root / TRIAL_MARK).unlink()
                raise
            return {r.kind: r for r in made if r.owner == ident}

        def hand_over(record: KeyRecord, source: Keystore, dest: Keystore) -> None:
            dest.import_public(source.public_pem(record.key_id), record.key_id, now=now,
                               source=f"{record.key_id} from {source.path}")

        mine = own(broker, Holder.BROKER, BROKER_OWNER, agreements)
        partner_stores: dict[str, Keystore] = {}
        for partner in partners:
            store = partner_stores[partner] = Keystore(holder_path(root, Holder.PARTNER, partner))
            for record in own(store, Holder.PARTNER, partner).values():
                hand_over(record, store, broker)  # enc to seal its feed; rcpt so the auditors check its receipts
            hand_over(mine[KeyKind.BROKER_SIGNING], broker, store)
        agency_stores: dict[str, Keystore] = {}
        for agency in agencies:
            store = agency_stores[agency] = Keystore(holder_path(root, Holder.AGENCY, agency))
            hand_over(own(store, Holder.AGENCY, agency)[KeyKind.KEY_AGREEMENT], store, broker)
            hand_over(mine[KeyKind.KEY_AGREEMENT], broker, store)
        # The auditors hold no secret: the broker's verify key and each partner's receipt key.
        auditor = Keystore(auditor_path(root))
        hand_over(mine[KeyKind.BROKER_SIGNING], broker, auditor)
        for partner, store in partner_stores.items():
            hand_over(store.current(partner, KeyKind.PARTNER_SIGNING), store, auditor)
        mark_trial(root)  # when every key was there already: a trial's root made before the mark is marked now
        return Keystores(root, broker, partner_stores, agency_stores, auditor)


def _refuse_lost(root: Path, partners: list[str], agencies: list[str], generation: str) -> None:
    """KeyMaterialError (one line, the way out named) when a key ``Keystore.provision`` would make is missing from
    its owner's folder while a folder it is handed to holds its public half already: the owner lost it.

    Made again it would be another key under the same id, which the other side refuses (``import_public``: a new
    key needs a new generation), after the new private half was written; so each rerun wrote one more and failed
    the same way. Checked for every party before any key is made, so a refusal leaves nothing new behind."""
    broker = holder_path(root, Holder.BROKER, BROKER_OWNER)
    auditor = auditor_path(root)
    partner_folders = [holder_path(root, Holder.PARTNER, partner) for partner in partners]
    agency_folders = [holder_path(root, Holder.AGENCY, agency) for agency in agencies]
    # (whose, the owner's folder, the key, the folders its public half is handed to): as ``provision`` hands them
    handed: list[tuple[tuple[Holder, str], Path, KeyId, list[Path]]] = [
        ((Holder.BROKER, BROKER_OWNER), broker, KeyId(BROKER_OWNER, KeyKind.BROKER_SIGNING, generation),
         [*partner_folders, auditor]),
        ((Holder.BROKER, BROKER_OWNER), broker, KeyId(BROKER_OWNER, KeyKind.KEY_AGREEMENT, generation),
         agency_folders)]
    for partner, folder in zip(partners, partner_folders, strict=True):
        handed += [((Holder.PARTNER, partner), folder, KeyId(partner, KeyKind.PARTNER_ENCRYPTION, generation),
                    [broker]),
                   ((Holder.PARTNER, partner), folder, KeyId(partner, KeyKind.PARTNER_SIGNING, generation),
                    [broker, auditor])]
    handed += [((Holder.AGENCY, agency), folder, KeyId(agency, KeyKind.KEY_AGREEMENT, generation), [broker])
               for agency, folder in zip(agencies, agency_folders, strict=True)]
    for (holder, ident), folder, key_id, importers in handed:
        if (folder / f"{key_id}.json").exists():
            continue
        for importer in importers:
            if (importer / f"{key_id}.json").exists():
                whose = f"--for {holder} {ident}" if holder is not Holder.BROKER else "--for broker"
                raise KeyMaterialError(
                    f"{key_id} is missing from {folder}, but {importer} holds its public half: a lost key is never "
                    f"made again under its id, so nothing was written; make the next generation with `puente keys "
                    f"generate {whose} --generation NEW` (NEW after {generation}) and hand its public halves over "
                    f"(`puente keys export-public`, `puente keys import-public`): `keys init` makes {generation} only")


@dataclass(frozen=True)
class Keystores:
    """The keystores ``Keystore.provision`` made, by holder."""

    root: Path
    broker: Keystore
    partners: Mapping[str, Keystore]
    agencies: Mapping[str, Keystore]
    auditor: Keystore


def signature_check(keystore: Keystore, *kinds: KeyKind,
                    public_only: bool = False) -> Callable[[str, bytes, bytes], bool]:
    """(signer id, payload, signature) -> valid, for every generation of the signing keys of
    ``kinds`` in ``keystore``: a chain signed before a key rotation still verifies. A partner's receipt
    key is refused with its secret; with ``public_only`` (the auditors' folder, which holds no secret at
    all), so is any key's. Refused too: a folder holding one public half under two ids, compared over every
    key file of any kind, not only those of ``kinds`` (``Keystore.refuse_one_key_two_ids``): a partner's
    receipt key saved also as ``broker-sign-<g>`` would have its owner's blocks pass as the broker's."""
    keystore.refuse_one_key_two_ids()
    if public_only:
        keystore.refuse_secrets()
    records = [keystore.load(k) for k in keystore.key_ids() if parse_key_id(k).kind in kinds]
    for record in records:
        if record.kind is KeyKind.PARTNER_SIGNING:
            keystore.refuse_private(record)  # a verifier holds a partner's receipt key, never its secret
    return checker({record.key_id: record.ed25519_public() for record in records})


KEY_GENERATION = "2026a"


def provision_all(settings: PuenteSettings) -> Keystores:
    """Every key the policy names under ``settings.keys``, each in its holder's folder (kept if present)."""
    policy_set = load_policy_set(settings.policy_dir)
    return Keystore.provision(settings.keys, partners=sorted(policy_set.partners), agencies=settings.agencies,
                              agreements=sorted(policy_set.agreements), generation=KEY_GENERATION)
