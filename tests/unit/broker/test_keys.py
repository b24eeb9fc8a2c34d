"""The keystore: key files, their modes, the demo layout, masking of secrets and clear errors."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import broker.keystore as keystore
from broker.crypto.keys import (
    KEY_FILE_FIELDS,
    KeyKind,
    KeyRecord,
    SecretBytes,
    new_key,
    newer_generation,
    parse_key_id,
    record_from_json,
    record_to_json,
)
from broker.keystore import Holder, Keystore, load_key_file
from broker.private_files import write_atomic
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SECRET = bytes(range(32))
SECRET_FORMS = (SECRET.hex(), base64.b64encode(SECRET).decode(), repr(SECRET))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def demo(tmp_path: Path) -> Keystore:
    return Keystore.provision(
        tmp_path,
        partners=["COL", "USA"],
        agencies=["SENAN", "PN"],
        agreements=["PA-COL-2026"],
        now=NOW,
    ).broker


def write_key(store: Keystore, key_id: str, doc: dict[str, object], file_mode: int = 0o600) -> Path:
    store.path.mkdir(parents=True, exist_ok=True)
    path = store.path / f"{key_id}.json"
    path.write_text(json.dumps(doc))
    path.chmod(file_mode)
    return path


PSEUDO_ID = "PA-COL-2026-pseudo-2026a"


def pseudo_doc(key_id: str = PSEUDO_ID, **changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "key_id": key_id,
        "kind": "pseudonym",
        "created_at": NOW.isoformat(),
        "secret": base64.b64encode(SECRET).decode(),
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def assert_no_secret(text: str) -> None:
    for form in SECRET_FORMS:
        assert form not in text


def test_secret_bytes_never_print_their_value() -> None:
    """repr, str and f-strings of SecretBytes show the key id and stars, never the bytes."""
    secret = SecretBytes(SECRET, key_id=PSEUDO_ID)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert f"SecretBytes(key_id='{PSEUDO_ID}', ****)" in text
        assert_no_secret(text)
    assert secret.reveal() == SECRET


def test_secret_bytes_refuse_pickling() -> None:
    """SecretBytes cannot be pickled, so secrets do not leak into caches or other processes."""
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(SecretBytes(SECRET, key_id="k-pseudo-1"))


def test_secret_bytes_compare_by_value_and_id() -> None:
    """Two SecretBytes are equal when id and bytes match, and they are not hashable."""
    assert SecretBytes(SECRET, key_id="a-pseudo-1") == SecretBytes(SECRET, key_id="a-pseudo-1")
    assert SecretBytes(SECRET, key_id="a-pseudo-1") != SecretBytes(SECRET[::-1], key_id="a-pseudo-1")
    with pytest.raises(TypeError):
        hash(SecretBytes(SECRET, key_id="a-pseudo-1"))


def test_key_record_repr_hides_the_secret() -> None:
    """A loaded key record can be logged without showing its secret."""
    record = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW)
    assert record.secret is not None
    raw = record.secret.reveal()
    assert raw.hex() not in repr(record)
    assert repr(raw) not in repr(record)


@pytest.mark.parametrize(
    ("key_id", "owner", "kind"),
    [
        ("COL-enc-2026a", "COL", KeyKind.PARTNER_ENCRYPTION),
        ("broker-sign-2026a", "broker", KeyKind.BROKER_SIGNING),
        ("SENAN-kex-2026a", "SENAN", KeyKind.KEY_AGREEMENT),
        ("broker-kex-2026a", "broker", KeyKind.KEY_AGREEMENT),
        ("PA-COL-2026-pseudo-2026a", "PA-COL-2026", KeyKind.PSEUDONYM),
        ("COL-rcpt-2026a", "COL", KeyKind.PARTNER_SIGNING),
    ],
)
def test_key_ids_parse(key_id: str, owner: str, kind: KeyKind) -> None:
    """Key ids split into owner (which may contain dashes), kind and generation."""
    parsed = parse_key_id(key_id)
    assert (parsed.owner, parsed.kind, str(parsed)) == (owner, kind, key_id)


@pytest.mark.parametrize(
    "key_id",
    ["../COL-enc-2026a", "COL/x-enc-1", ".hidden-kex-1", "COL-key-2026a", "COL-enc-", "", "SENAN-mac-2026a",
     "SENAN-kex-2026a+broker-kex-2026a"],
)
def test_bad_key_ids_are_refused(tmp_path: Path, key_id: str) -> None:
    """Strings that are not key ids, including path traversal, never reach the file system."""
    with pytest.raises(KeyMaterialError, match="not a key id"):
        Keystore(tmp_path).load(key_id)


def test_demo_layout_puts_each_half_with_its_holder(tmp_path: Path) -> None:
    """The broker holds partner and agency public keys only; each party holds its own private keys."""
    demo_keys = Keystore.provision(
        tmp_path, partners=["COL", "USA"], agencies=["SENAN"], agreements=["PA-COL-2026"], now=NOW
    )
    broker = demo_keys.broker
    assert broker.key_ids() == [
        "COL-enc-2026a",
        "COL-rcpt-2026a",
        "PA-COL-2026-pseudo-2026a",
        "SENAN-kex-2026a",
        "USA-enc-2026a",
        "USA-rcpt-2026a",
        "broker-kex-2026a",
        "broker-pseudo-2026a",
        "broker-sign-2026a",
    ]
    assert broker.load("SENAN-kex-2026a").secret is None  # the agency alone holds its private half
    assert broker.load("COL-enc-2026a").secret is None
    assert broker.load("COL-rcpt-2026a").secret is None  # the partner alone can sign its receipts
    col = demo_keys.partners["COL"]
    assert col.key_ids() == ["COL-enc-2026a", "COL-rcpt-2026a", "broker-sign-2026a"]
    receipt_key = col.load_receipt_key("COL")
    assert receipt_key.kind is KeyKind.PARTNER_SIGNING and receipt_key.secret is not None
    assert receipt_key.ed25519_private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == \
        broker.load("COL-rcpt-2026a").ed25519_public().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert col.load("broker-sign-2026a").secret is None
    senan = demo_keys.agencies["SENAN"]
    assert senan.key_ids() == ["SENAN-kex-2026a", "broker-kex-2026a"]
    assert senan.load("broker-kex-2026a").secret is None
    agency_mac = senan.load_agency_mac("SENAN")
    assert broker.agency_mac_lookup()("SENAN", "SENAN-kex-2026a+broker-kex-2026a") == agency_mac
    partner_public = col.current("COL", KeyKind.PARTNER_ENCRYPTION).x25519_private().public_key()
    broker_copy = broker.current("COL", KeyKind.PARTNER_ENCRYPTION).x25519_public()
    assert partner_public.public_bytes(Encoding.Raw, PublicFormat.Raw) == broker_copy.public_bytes(Encoding.Raw,
                                                                                                  PublicFormat.Raw)
    signing_public = broker.load_signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert signing_public == col.load_verify_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert len(broker.load_pseudonym_key("PA-COL-2026")) == 32


def test_secret_files_are_0600_and_public_files_0644(tmp_path: Path) -> None:
    """Every file holding a secret is owner-only; public-only files are world-readable."""
    demo(tmp_path)
    files = sorted(tmp_path.rglob("*.json"))
    assert files
    for path in files:
        has_secret = "secret" in json.loads(path.read_text())
        assert mode(path) == (0o600 if has_secret else 0o644), path
    assert mode(tmp_path / "broker") == 0o700


def test_secret_files_are_0600_despite_a_loose_umask(tmp_path: Path) -> None:
    """A permissive umask does not widen the mode of a new secret file."""
    old = os.umask(0)
    try:
        path = Keystore(tmp_path).put(new_key(KeyKind.PSEUDONYM, "PA-COL-2026", "2026a", NOW))
    finally:
        os.umask(old)
    assert mode(path) == 0o600


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    """Atomic writes rename their temporary file away."""
    demo(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_demo_twice_keeps_the_keys(tmp_path: Path) -> None:
    """Running provision again reuses every existing key instead of replacing it."""
    demo(tmp_path)
    first = Keystore(tmp_path / "agencies" / "SENAN").load_agency_mac("SENAN")
    later = NOW + timedelta(days=1)
    again = Keystore.provision(tmp_path, partners=["COL"], agencies=["SENAN"], agreements=[], now=later)
    assert again.agencies["SENAN"].load_agency_mac("SENAN") == first
    assert again.broker.load_pseudonym_key("PA-COL-2026") == demo(tmp_path).load_pseudonym_key("PA-COL-2026")


def test_record_round_trips_through_a_file(tmp_path: Path) -> None:
    """A key written and read back is the same record."""
    record = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    store = Keystore(tmp_path)
    store.put(record)
    assert store.load("COL-enc-2026a") == record


def test_load_key_file_reads_a_partner_private_key(tmp_path: Path) -> None:
    """The subscriber's --key FILE loads with load_key_file and gives the X25519 private key."""
    demo(tmp_path)
    record = load_key_file(tmp_path / "partners" / "COL" / "COL-enc-2026a.json")
    assert record.kind is KeyKind.PARTNER_ENCRYPTION
    record.x25519_private()


def test_newest_generation_is_current(tmp_path: Path) -> None:
    """With two generations of a key, the newer created_at is current and the older stays loadable."""
    store = Keystore(tmp_path)
    old = store.generate(KeyKind.PSEUDONYM, "PA-COL-2026", generation="2026a", now=NOW)
    new = store.generate(KeyKind.PSEUDONYM, "PA-COL-2026", generation="2026b", now=NOW + timedelta(days=30))
    assert store.load_pseudonym_key("PA-COL-2026") == new.secret
    assert store.load(old.key_id).secret == old.secret


def test_lookup_answers_only_for_the_owning_agency(tmp_path: Path) -> None:
    """agency_mac_lookup gives a key only to the agency whose key it is, and only for an exact pair id."""
    lookup = demo(tmp_path).agency_mac_lookup()
    assert lookup("SENAN", "SENAN-kex-2026a+broker-kex-2026a") is not None
    assert lookup("PN", "PN-kex-2026a+broker-kex-2026a") is not None
    assert lookup("PN", "SENAN-kex-2026a+broker-kex-2026a") is None
    assert lookup("SENAN", "SENAN-kex-2099z+broker-kex-2026a") is None
    for near in ("SENAN-kex-2026a", "broker-kex-2026a+SENAN-kex-2026a", "SENAN-kex-2026a+broker-kex-2026a+x",
                 " SENAN-kex-2026a+broker-kex-2026a", "SENAN-kex-2026a+broker-kex-2026a\n", "SENAN-mac-2026a"):
        assert lookup("SENAN", near) is None, near


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    """Generating a key id that exists is refused, so a secret is never silently replaced."""
    store = Keystore(tmp_path)
    store.generate(KeyKind.PSEUDONYM, "PA-COL-2026", generation="2026a", now=NOW)
    with pytest.raises(KeyMaterialError, match="already exists"):
        store.generate(KeyKind.PSEUDONYM, "PA-COL-2026", generation="2026a", now=NOW)


def test_export_public_writes_no_secret(tmp_path: Path) -> None:
    """The public-only export for a partner has the public half and no secret."""
    store = Keystore(tmp_path / "broker")
    store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    path = store.export_public("broker-sign-2026a", tmp_path / "out")
    doc = json.loads(path.read_text())
    assert set(doc) == {"key_id", "kind", "created_at", "public"}
    assert mode(path) == 0o644


def test_export_into_the_keys_own_folder_leaves_the_private_key_alone(tmp_path: Path) -> None:
    """Exporting a key's public half into the folder that holds the key would have written the public half over
    the private one (the key lost for good): refused, and the key is still there."""
    store = Keystore(tmp_path / "partner")
    store.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    with pytest.raises(KeyMaterialError, match="holds its private half"):
        store.export_public("COL-enc-2026a", store.path)
    assert store.load("COL-enc-2026a").secret is not None
    assert mode(store.path / "COL-enc-2026a.json") == 0o600
    exported = store.export_public("COL-enc-2026a", tmp_path / "out")
    assert Keystore(tmp_path / "out").export_public("COL-enc-2026a", tmp_path / "out") == exported  # public again


def test_export_of_a_symmetric_key_is_refused(tmp_path: Path) -> None:
    """A pseudonym key has no public half, so exporting it is an error, not a leak."""
    store = Keystore(tmp_path)
    store.generate(KeyKind.PSEUDONYM, "PA-COL-2026", generation="2026a", now=NOW)
    with pytest.raises(KeyMaterialError, match="no public half"):
        store.export_public(PSEUDO_ID, tmp_path / "out")


def test_missing_key_names_the_key(tmp_path: Path) -> None:
    """Loading a key that has no file says which key id is missing."""
    with pytest.raises(KeyMaterialError, match="COL-enc-2026a: no key file"):
        Keystore(tmp_path).load("COL-enc-2026a")


def test_missing_owner_names_the_owner(tmp_path: Path) -> None:
    """Asking for a partner with no key says which partner and which kind."""
    with pytest.raises(KeyMaterialError, match="no partner-encryption key for 'CRI'"):
        demo(tmp_path).current("CRI", KeyKind.PARTNER_ENCRYPTION)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("not json {", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (pseudo_doc(created_at=None), "lacks created_at"),
        (pseudo_doc(key_id="PN-pseudo-2026a"), "names key 'PN-pseudo-2026a'"),
        (pseudo_doc(kind="rot13"), "unknown kind"),
        (pseudo_doc(kind="agency-mac"), "unknown kind"),
        (pseudo_doc(kind="key-agreement"), "role is not 'kex'"),
        (pseudo_doc(created_at="yesterday"), "not an ISO 8601"),
        (pseudo_doc(created_at="2026-01-05T10:00:00"), "no time zone"),
        (pseudo_doc(secret="!!!" + base64.b64encode(SECRET).decode()), "not valid base64"),
        (pseudo_doc(secret=base64.b64encode(SECRET[:31]).decode()), "31 bytes, expected 32"),
        (pseudo_doc(secret=None), "must have a secret"),
        (pseudo_doc(public=base64.b64encode(SECRET).decode()), "has no public half"),
        (pseudo_doc(secret=12345), "not a base64 string"),
    ],
)
def test_malformed_key_files_are_refused(tmp_path: Path, doc: object, problem: str) -> None:
    """Each kind of malformed key file gives a KeyMaterialError naming the key and problem, never the bytes."""
    store = Keystore(tmp_path)
    path = store.path / f"{PSEUDO_ID}.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    path.chmod(0o600)
    with pytest.raises(KeyMaterialError, match=problem) as info:
        store.load(PSEUDO_ID)
    assert PSEUDO_ID in str(info.value)
    assert_no_secret(str(info.value))


def test_mismatched_key_pair_is_refused(tmp_path: Path) -> None:
    """A file whose public half does not belong to its secret half is refused."""
    record = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    other = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    assert other.public is not None
    store = Keystore(tmp_path)
    path = store.put(record)
    doc = json.loads(path.read_text())
    doc["public"] = base64.b64encode(other.public).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyMaterialError, match="does not belong"):
        store.load("COL-enc-2026a")


def test_wrong_kind_is_refused(tmp_path: Path) -> None:
    """Asking for one kind of key and finding another is a KeyMaterialError naming both."""
    store = demo(tmp_path)
    with pytest.raises(KeyMaterialError, match="kind is pseudonym, expected a signing key"):
        store.load(PSEUDO_ID).ed25519_private()
    with pytest.raises(KeyMaterialError, match="expected key-agreement"):
        store.load(PSEUDO_ID, KeyKind.KEY_AGREEMENT)
    with pytest.raises(KeyMaterialError, match="kind is partner-encryption, expected key-agreement"):
        store.load("COL-enc-2026a").agreement_public()


def test_public_only_key_cannot_give_a_private_key(tmp_path: Path) -> None:
    """The broker's copy of a partner key cannot be used to decrypt: it has no secret."""
    store = demo(tmp_path)
    with pytest.raises(KeyMaterialError, match="only the public half"):
        store.current("COL", KeyKind.PARTNER_ENCRYPTION).x25519_private()


def test_group_readable_secret_is_refused(tmp_path: Path) -> None:
    """A secret key file readable by group or others is refused, as ssh does."""
    path = write_key(Keystore(tmp_path), PSEUDO_ID, pseudo_doc(), file_mode=0o640)
    with pytest.raises(KeyMaterialError, match="chmod 600") as info:
        load_key_file(path)
    assert_no_secret(str(info.value))


def test_readable_public_file_is_fine(tmp_path: Path) -> None:
    """A world-readable public-only key file loads."""
    store = demo(tmp_path)
    assert mode(store.path / "COL-enc-2026a.json") == 0o644
    store.current("COL", KeyKind.PARTNER_ENCRYPTION).x25519_public()


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """A huge file is not read as a key."""
    store = Keystore(tmp_path)
    path = write_key(store, PSEUDO_ID, pseudo_doc())
    path.write_text(" " * 70_000 + path.read_text())
    with pytest.raises(KeyMaterialError, match="too large"):
        store.load(PSEUDO_ID)


def test_key_record_helpers_check_kind() -> None:
    """symmetric() refuses an asymmetric key, naming the key."""
    record = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW)
    with pytest.raises(KeyMaterialError, match="broker-sign-2026a"):
        record.symmetric(KeyKind.PSEUDONYM)
    assert isinstance(record, KeyRecord)


def test_keys_init_under_a_permissive_umask_leaves_no_folder_open(tmp_path: Path) -> None:
    """`puente keys init` run with umask 0 makes every key folder (and the ones above it that it creates) 0700."""
    import subprocess
    import sys

    root = tmp_path / "deploy" / "keys"
    env = {**os.environ, "PUENTE_KEYS": str(root)}
    run = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "init"], env=env, capture_output=True,
                         text=True, check=False, preexec_fn=lambda: os.umask(0))
    assert run.returncode == 0, run.stderr
    folders = [root.parent, root, *(p for p in root.rglob("*") if p.is_dir())]
    assert len(folders) > 5
    for folder in folders:
        assert mode(folder) == 0o700, folder


def test_a_key_in_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    """Whoever may write a key's folder may swap the key: loading from a group- or world-writable folder fails."""
    path = Keystore(tmp_path / "ks").put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW))
    os.chmod(tmp_path / "ks", 0o777)  # noqa: S103 - the permissive folder is what is tested
    with pytest.raises(KeyMaterialError, match="writable by others"):
        load_key_file(path)


def test_a_public_key_file_others_may_write_is_refused(tmp_path: Path) -> None:
    """A public half holds no secret, but whoever may write it may swap it for their own (the broker's verify
    key, say): a group- or world-writable key file is refused, in a folder only its owner writes."""
    keystore = Keystore(tmp_path / "ks")
    path = keystore.put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW))
    public = keystore.export_public("broker-sign-2026a", tmp_path / "pub")
    os.chmod(public, 0o666)  # noqa: S103 - the permissive file is what is tested
    with pytest.raises(KeyMaterialError, match="writable by others"):
        load_key_file(public)
    assert load_key_file(path).kind is KeyKind.BROKER_SIGNING


def test_a_key_file_with_a_duplicate_field_is_refused(tmp_path: Path) -> None:
    """A key file naming a field twice (the last would silently win) is refused, naming the field only."""
    record = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    other = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    path = Keystore(tmp_path / "ks").put(record.public_only())
    text = path.read_text()
    forged = text.replace('"public":', f'"public": "{base64.b64encode(other.public or b"").decode()}", "public":')
    path.write_text(forged)
    with pytest.raises(KeyMaterialError, match="'public' appears twice"):
        load_key_file(path)


def test_a_key_file_with_a_field_the_writer_never_writes_is_refused() -> None:
    """Fields beyond key_id, kind, created_at, public and secret ("revoked", "algorithm"...) are refused by name,
    never quietly loaded as if they meant something."""
    record = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW)
    doc = json.loads(record_to_json(record))
    assert set(doc) == set(KEY_FILE_FIELDS)  # the allow-list is what the writer writes
    for extra in ({"algorithm": "RSA-PSS"}, {"not_after": "2020-01-01T00:00:00+00:00"}, {"revoked": True},
                  {"owner": "COL"}):
        with pytest.raises(KeyMaterialError, match=f"broker-sign-2026a: unknown field {next(iter(extra))!r}") as info:
            record_from_json(json.dumps({**doc, **extra}).encode(), key_id="broker-sign-2026a")
        assert doc["secret"] not in str(info.value)


def test_an_unknown_field_name_is_shown_cut_and_escaped_never_its_value() -> None:
    """A hostile field name is cut to 40 characters and escaped; its value never appears."""
    record = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    doc = json.loads(record_to_json(record.public_only()))
    name = "\x1b[31m" + "x" * 100
    with pytest.raises(KeyMaterialError) as info:
        record_from_json(json.dumps({**doc, name: "VALUE-NEVER-SHOWN"}).encode(), key_id="COL-enc-2026a")
    message = str(info.value)
    assert "\x1b" not in message and "x" * 41 not in message and "VALUE-NEVER-SHOWN" not in message
    assert "\\x1b[31m" in message and "\n" not in message


def test_without_an_order_only_the_labels_make_a_key_newer() -> None:
    """With no order given, only labels decide: a key whose label says nothing, another owner's or kind's, or no key
    id at all is newer than none; a label that says orders as it does with an order given."""
    assert newer_generation("broker-sign-2026b", "broker-sign-2026a")
    assert not newer_generation("broker-sign-2026a", "broker-sign-2026b")
    assert not newer_generation("broker-sign-spring", "broker-sign-2026a")
    assert not newer_generation("COL-rcpt-2026b", "broker-sign-2026a")
    assert not newer_generation("broker-kex-2026b", "broker-sign-2026a")
    assert not newer_generation("not a key", "broker-sign-2026a")
    assert not newer_generation("broker-sign-2026a", "broker-sign-2026b", ("broker-sign-2026a", "broker-sign-2026b"))


def test_a_key_made_meanwhile_by_another_run_is_kept_not_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `keys init` runs on one folder: the one whose key file another run created between its look and its
    write loads that key, as it would have a key there before it started, rather than stopping with "choose a new
    generation", and writes the rest of its set; without keep_existing the run is refused, writing nothing."""
    real = keystore.private_folder
    rival: dict[str, KeyRecord] = {}

    def then_the_rival(path: Path, *, error: Callable[[str], Exception]) -> None:
        real(path, error=error)
        owner = path.name
        if not any(key_id.startswith(owner) for key_id in rival):  # the other run wins one name, once
            record = new_key(KeyKind.PARTNER_ENCRYPTION, owner, "2026a", NOW)
            write_atomic(path / f"{record.key_id}.json", record_to_json(record), 0o600)
            rival[record.key_id] = record

    monkeypatch.setattr(keystore, "private_folder", then_the_rival)
    store = Keystore(tmp_path / "COL")
    made = {r.key_id: r for r in store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW,
                                                     keep_existing=True)}
    assert sorted(made) == ["COL-enc-2026a", "COL-rcpt-2026a"] and made["COL-enc-2026a"] == rival["COL-enc-2026a"]
    assert store.load("COL-rcpt-2026a") == made["COL-rcpt-2026a"]
    with pytest.raises(KeyMaterialError, match="already exists"):
        Keystore(tmp_path / "USA").generate_own(Holder.PARTNER, "USA", generation="2026a", now=NOW)
    assert sorted(p.name for p in (tmp_path / "USA").iterdir()) == ["USA-enc-2026a.json"]  # the rival's alone


def test_provisioning_twice_at_once_gives_both_the_same_keys(tmp_path: Path) -> None:
    start = threading.Barrier(2)

    def run(_: int) -> Keystore:
        start.wait()
        return Keystore.provision(tmp_path, partners=["COL", "USA"], agencies=["SENAN"], agreements=["PA-COL-2026"],
                                  now=NOW).broker

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(run, range(2))
    kept = Keystore(tmp_path / "broker")
    for key_id in kept.key_ids():
        assert first.load(key_id) == second.load(key_id) == kept.load(key_id)
