"""Keys held by their owners: each party generates its own, only public halves cross, the broker holds no one else's."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from unreachable import unreachable_kafka

from broker.crypto import public_pem, sign_ingress, verify_ingress
from broker.crypto.kex import ingress_mac_key
from broker.crypto.keys import KeyKind, KeyRecord, SecretBytes, new_key
from broker.keystore import REREAD_HELD, Holder, Keystore, holder_path, own_kinds, provision_all
from broker.partner import opener_for
from puente.errors import KeyMaterialError, KeyUnusable, OriginError
from puente.settings import PuenteSettings

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
# The broker's own secrets: its signing and key-agreement keys, and its alert-reference key (a pseudonym key).
BROKER_OWN = {("broker", "broker-signing"), ("broker", "key-agreement"), ("broker", "pseudonym")}


def puente(keys: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the puente command line with PUENTE_KEYS at ``keys``."""
    env = {**os.environ, "PUENTE_KEYS": str(keys)}
    return subprocess.run([sys.executable, "-m", "puente.cli", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=60)


def key_files(folder: Path) -> dict[str, dict[str, str]]:
    """Every file in ``folder``, parsed as a key file, by name; the walk trusts nothing of the keystore's."""
    found = {}
    for path in sorted(folder.iterdir()):
        assert path.is_file() and path.suffix == ".json", f"unexpected entry {path}"
        found[path.name] = json.loads(path.read_text())
    return found


def owner(doc: dict[str, str]) -> str:
    role = {"partner-encryption": "-enc-", "partner-signing": "-rcpt-", "broker-signing": "-sign-",
            "key-agreement": "-kex-", "pseudonym": "-pseudo-"}[doc["kind"]]
    return doc["key_id"].rsplit(role, 1)[0]


def assert_custody(root: Path, partners: list[str], agencies: list[str], agreements: list[str]) -> None:
    """The broker's folder holds its own secrets and others' public halves only; every secret is in one file."""
    broker = key_files(root / "broker")
    for name, doc in broker.items():
        if "secret" not in doc:
            continue
        mine = (owner(doc), doc["kind"]) in BROKER_OWN
        assert mine or (doc["kind"] == "pseudonym" and owner(doc) in agreements), f"broker holds a secret: {name}"
    assert not [n for n, d in broker.items() if "secret" in d and d["kind"] != "pseudonym" and owner(d) != "broker"]
    assert {d["kind"] for d in broker.values()} <= {"partner-encryption", "partner-signing", "broker-signing",
                                                     "key-agreement", "pseudonym"}
    for partner in partners:
        assert {n for n, d in broker.items() if "secret" not in d and owner(d) == partner} == {
            f"{partner}-enc-2026a.json", f"{partner}-rcpt-2026a.json"}
        theirs = key_files(root / "partners" / partner)
        assert {n for n, d in theirs.items() if "secret" in d} == {f"{partner}-enc-2026a.json",
                                                                   f"{partner}-rcpt-2026a.json"}
        assert {n for n, d in theirs.items() if "secret" not in d} == {"broker-sign-2026a.json"}
    for agency in agencies:
        assert f"{agency}-kex-2026a.json" in broker
        theirs = key_files(root / "agencies" / agency)
        assert {n for n, d in theirs.items() if "secret" in d} == {f"{agency}-kex-2026a.json"}
        assert {n for n, d in theirs.items() if "secret" not in d} == {"broker-kex-2026a.json"}
    auditor = key_files(root / "auditor")
    assert not [n for n, d in auditor.items() if "secret" in d], "the auditors hold a secret"
    assert set(auditor) == {"broker-sign-2026a.json", *(f"{p}-rcpt-2026a.json" for p in partners)}
    secrets = Counter(d["secret"] for path in root.rglob("*.json") for d in [json.loads(path.read_text())]
                      if "secret" in d)
    assert secrets and max(secrets.values()) == 1, "a secret is in more than one file: shared"


def test_provision_all_leaves_the_broker_no_one_elses_private_key(tmp_path: Path) -> None:
    """After provision_all (the tests' and the demo's set-up) the broker's folder holds no partner's or agency's
    private key and no shared secret; each party's folder holds its own private keys and the broker's publics."""
    cfg = PuenteSettings(keys=tmp_path / "keys")
    made = provision_all(cfg)
    assert made.root == tmp_path / "keys"
    assert_custody(made.root, sorted(made.partners), sorted(made.agencies),
                   ["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"])
    assert sorted(made.agencies) == sorted(cfg.agencies)


def test_keys_init_leaves_the_broker_no_one_elses_private_key(tmp_path: Path) -> None:
    """`puente keys init` makes the same custody on disk: walked file by file, the broker holds only its own secrets."""
    root = tmp_path / "keys"
    done = puente(root, "keys", "init")
    assert done.returncode == 0, done.stderr
    assert "only public halves crossed" in done.stdout
    assert_custody(root, ["COL", "CRI", "FEAN", "USA"], ["COMBIFRON", "PN", "SENAFRONT", "SENAN", "SNM"],
                   ["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"])


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("shape", ["beside compose.yaml", "the broker's own keys only"])
def test_keys_init_refuses_a_deployments_keys_folder(tmp_path: Path, shape: str) -> None:
    """`keys init` makes every party's private keys on one machine, which only a trial may: in the folder compose.yaml
    mounts, or in a keystore `keys generate --for broker` made (its parties keep their own keys), it exits 3 with one
    line naming the folder and the way a deployment does it, writing nothing; `--trial` makes them all the same."""
    site = tmp_path / "site"
    root = site / "keys"
    site.mkdir()
    if shape == "beside compose.yaml":
        (site / "compose.yaml").write_text("services: {}\n")
    else:
        assert puente(root, "keys", "generate", "--for", "broker").returncode == 0
    before = _tree(root)
    done = puente(root, "keys", "init")
    assert done.returncode == 3 and done.stdout == "", done
    line, = done.stderr.strip().splitlines()
    assert str(root) in line and "single-site trial" in line and "keys generate" in line \
        and "keys import-public" in line and "nothing was written" in line, line
    assert _tree(root) == before
    done = puente(root, "keys", "init", "--trial")
    assert done.returncode == 0, done.stderr
    assert (root / "partners" / "COL" / "COL-enc-2026a.json").exists()


def test_keys_init_says_it_is_for_a_single_site_trial(tmp_path: Path) -> None:
    """Its help and its output say that `keys init` is for a single-site trial and makes every party's private keys
    on this machine, so no one takes it for a deployment's step."""
    done = puente(tmp_path / "keys", "keys", "init")
    assert done.returncode == 0, done.stderr
    assert "single-site trial" in done.stdout and "every party's private keys were made on this machine" \
        in done.stdout
    helped = puente(tmp_path / "keys", "keys", "init", "--help")
    assert "single-site trial" in helped.stdout and "EVERY party's private keys" in helped.stdout


def test_keys_init_warns_of_retired_shared_mac_files(tmp_path: Path) -> None:
    """A shared agency-mac file left from before is named in a warning on stderr, and nothing uses it."""
    root = tmp_path / "keys"
    assert puente(root, "keys", "init").returncode == 0  # the trial's keystore, from before the file was retired
    Keystore(root / "broker").put(new_key(KeyKind.PSEUDONYM, "SENAN", "2026a", NOW))
    (root / "broker" / "SENAN-pseudo-2026a.json").rename(root / "broker" / "SENAN-mac-2026a.json")
    done = puente(root, "keys", "init")
    assert done.returncode == 0, done.stderr
    assert "puente: warning: 1 retired shared agency-mac key file(s)" in done.stderr
    assert "SENAN-mac-2026a.json" in done.stderr
    assert "SENAN-mac-2026a" not in Keystore(root / "broker").key_ids()


def test_three_sides_exchange_public_halves_and_agree(tmp_path: Path) -> None:
    """Partner, agency and broker each generate on their own machine and import the others' PEM public halves with
    the command line; then the agency's MAC verifies at the broker and the partner holds the broker's verify key."""
    col, senan, broker = tmp_path / "col", tmp_path / "senan", tmp_path / "broker"
    for keys, args in ((col, ("--for", "partner", "COL")), (senan, ("--for", "agency", "SENAN")),
                       (broker, ("--for", "broker"))):
        done = puente(keys, "keys", "generate", *args)
        assert done.returncode == 0, done.stderr
        assert "hand over these public halves" in done.stdout
    agency_store = Keystore(holder_path(senan, Holder.AGENCY, "SENAN"))
    broker_store = Keystore(holder_path(broker, Holder.BROKER, "broker"))
    swaps = [(col / "partners" / "COL", "COL-enc-2026a", broker, ()),
             (col / "partners" / "COL", "COL-rcpt-2026a", broker, ()),
             (agency_store.path, "SENAN-kex-2026a", broker, ()),
             (broker_store.path, "broker-sign-2026a", col, ("--dir", str(col / "partners" / "COL"))),
             (broker_store.path, "broker-kex-2026a", senan, ("--dir", str(agency_store.path)))]
    for source, key_id, dest, where in swaps:
        pem = tmp_path / f"{key_id}.pem"
        pem.write_bytes(Keystore(source).public_pem(key_id))  # what `keys export-public --out` writes
        into = puente(dest, "keys", "import-public", str(pem), "--id", key_id, *where)
        assert into.returncode == 0, into.stderr
        assert f"stored {key_id}" in into.stdout
    mac = agency_store.load_agency_mac("SENAN")
    assert mac.key_id == "SENAN-kex-2026a+broker-kex-2026a"
    lookup = broker_store.agency_mac_lookup()
    assert lookup("SENAN", mac.key_id) == mac
    headers = sign_ingress("SENAN", mac.key_id, mac, b"v", "SENAN:1")
    assert verify_ingress(headers, b"v", lookup).key_id == "SENAN-kex-2026a+broker-kex-2026a"
    assert Keystore(col / "partners" / "COL").load_verify_key() == broker_store.load_signing_key().public_key()
    assert broker_store.load("COL-enc-2026a").secret is None
    assert_no_foreign_secret(broker_store.path)


def assert_no_foreign_secret(folder: Path) -> None:
    for name, doc in key_files(folder).items():
        assert "secret" not in doc or (owner(doc), doc["kind"]) in BROKER_OWN or doc["kind"] == "pseudonym", name


def test_generate_refuses_to_replace_a_key(tmp_path: Path) -> None:
    """A second `keys generate` for the same party and generation fails in one line and leaves the keys as they were."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "generate", "--for", "partner", "COL").returncode == 0
    folder = keys / "partners" / "COL"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = puente(keys, "keys", "generate", "--for", "partner", "COL", "--dir", str(folder))
    assert again.returncode == 3
    assert again.stderr.splitlines() == [
        f"puente: error: COL-enc-2026a, COL-rcpt-2026a already in {folder}: a key is never replaced; "
        "choose a new generation (--generation)"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def _private_pem() -> bytes:
    return X25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _ed25519_pem() -> bytes:
    return public_pem(new_key(KeyKind.PARTNER_SIGNING, "COL", "2026a", NOW))


def _malformed_pem() -> bytes:
    return b"-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize(
    ("make", "problem"),
    [(_private_pem, "holds a private key"), (_ed25519_pem, "must be X25519"),
     (_malformed_pem, "not a valid PEM public key")],
)
def test_import_public_refuses_a_wrong_file_in_one_line(tmp_path: Path, make: Callable[[], bytes],
                                                        problem: str) -> None:
    """A private key, a key of the wrong type or a malformed PEM: exit 3, one error line naming the file, no bytes."""
    path = tmp_path / "given.pem"
    path.write_bytes(make())
    done = puente(tmp_path / "keys", "keys", "import-public", str(path), "--id", "COL-enc-2026a")
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"puente: error: {path}: "), done.stderr
    assert problem in lines[0]
    body = "".join(line for line in path.read_text().splitlines() if not line.startswith("-----"))
    assert all(body[i:i + 16] not in done.stderr + done.stdout for i in range(0, len(body) - 15, 16))
    assert not (tmp_path / "keys" / "broker" / "COL-enc-2026a.json").exists()


def test_a_broker_key_import_needs_a_destination(tmp_path: Path) -> None:
    """Importing one of the broker's public halves without --dir is refused: many parties could be receiving it."""
    pem = Keystore(tmp_path / "b").public_pem(
        Keystore(tmp_path / "b").generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW).key_id)
    (tmp_path / "b.pem").write_bytes(pem)
    done = puente(tmp_path / "keys", "keys", "import-public", str(tmp_path / "b.pem"), "--id", "broker-sign-2026a")
    assert done.returncode == 3
    assert done.stderr.startswith("puente: error: keys import-public broker-sign-2026a: say whose keystore")


def test_export_public_writes_pem_to_stdout_or_a_file(tmp_path: Path) -> None:
    """export-public prints the PEM, found in its owner's folder under PUENTE_KEYS, or writes it to --out."""
    keys = tmp_path / "keys"
    record = Keystore(keys / "agencies" / "SENAN").generate(KeyKind.KEY_AGREEMENT, "SENAN", generation="2026a",
                                                            now=NOW)
    done = puente(keys, "keys", "export-public", "SENAN-kex-2026a")
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == Keystore(keys / "agencies" / "SENAN").public_pem(record.key_id)
    assert record.secret is not None and base64.b64encode(record.secret.reveal()).decode() not in done.stdout
    out = puente(keys, "keys", "export-public", "SENAN-kex-2026a", "--out", str(tmp_path / "s.pem"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s.pem").read_text() == done.stdout
    assert "puente keys import-public" in out.stdout


def test_own_kinds_are_each_holders_private_keys() -> None:
    """A partner makes decryption and receipt keys, an agency a key-agreement key, the broker its own and pseudonyms."""
    assert own_kinds(Holder.PARTNER, "COL") == [(KeyKind.PARTNER_ENCRYPTION, "COL"), (KeyKind.PARTNER_SIGNING, "COL")]
    assert own_kinds(Holder.AGENCY, "SENAN") == [(KeyKind.KEY_AGREEMENT, "SENAN")]
    assert own_kinds(Holder.BROKER, "broker", ["PAN-USA", "COMBIFRON"]) == [
        (KeyKind.BROKER_SIGNING, "broker"), (KeyKind.KEY_AGREEMENT, "broker"), (KeyKind.PSEUDONYM, "broker"),
        (KeyKind.PSEUDONYM, "COMBIFRON"), (KeyKind.PSEUDONYM, "PAN-USA")]


@pytest.mark.parametrize(
    ("holder", "ident", "problem"),
    [(Holder.PARTNER, "broker", "the broker's name"), (Holder.AGENCY, "../x", "not a usable agency id"),
     (Holder.BROKER, "SENAN", "belong to 'broker'"), (Holder.PARTNER, "", "not a usable partner id"),
     (Holder.PARTNER, "P" * 15, "at most 14 characters"), (Holder.PARTNER, "BROKER", "the broker's name"),
     (Holder.AGENCY, "Broker", "the broker's name")],
)
def test_holder_ids_that_cannot_be_folders_or_owners_are_refused(holder: Holder, ident: str, problem: str) -> None:
    """A party id that would escape the keys root, or pose as the broker (in any case, as the policy refuses it), is
    refused before any folder is made."""
    with pytest.raises(KeyMaterialError, match=problem):
        holder_path("/nonexistent", holder, ident)


def test_the_broker_refuses_an_agencys_private_half_in_its_folder(tmp_path: Path) -> None:
    """If an agency's private key-agreement key sits in the broker's folder, the broker will not start on it."""
    store = Keystore(tmp_path / "broker")
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW)
    store.generate(KeyKind.KEY_AGREEMENT, "SENAN", generation="2026a", now=NOW)
    with pytest.raises(KeyMaterialError, match="holds agency SENAN's private half, which only the agency may hold"):
        store.agency_mac_lookup()


def test_an_agency_without_the_brokers_public_half_is_told_how_to_get_it(tmp_path: Path) -> None:
    """load_agency_mac with no broker key-agreement key names the import-public command to run."""
    store = Keystore(tmp_path / "agencies" / "SENAN")
    store.generate_own(Holder.AGENCY, "SENAN", generation="2026a", now=NOW)
    with pytest.raises(KeyMaterialError, match="import the broker's public half with puente keys import-public"):
        store.load_agency_mac("SENAN")


def test_an_adapter_pointed_at_the_brokers_folder_is_refused(tmp_path: Path) -> None:
    """The broker's copy of an agency key is public only: an adapter cannot derive its MAC key from it."""
    made = Keystore.provision(tmp_path, partners=[], agencies=["SENAN"], agreements=[], now=NOW)
    with pytest.raises(KeyMaterialError, match="holds only its public half"):
        made.broker.load_agency_mac("SENAN")


def test_provision_will_not_take_a_public_copy_for_a_partys_own_key(tmp_path: Path) -> None:
    """A party folder holding only the public half of that party's own key is refused, not silently used."""
    made = Keystore.provision(tmp_path, partners=["COL"], agencies=[], agreements=[], now=NOW)
    (made.partners["COL"].path / "COL-enc-2026a.json").unlink()
    made.partners["COL"].put(made.broker.load("COL-enc-2026a"))
    with pytest.raises(KeyMaterialError, match="holds only its public half, but this is where COL keeps"):
        Keystore.provision(tmp_path, partners=["COL"], agencies=[], agreements=[], now=NOW)


def _files(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.parametrize(("folder", "key_id", "way_out"), [
    ("partners/COL", "COL-enc-2026a", "--for partner COL"),
    ("partners/COL", "COL-rcpt-2026a", "--for partner COL"),
    ("broker", "broker-sign-2026a", "--for broker"),
    ("broker", "broker-kex-2026a", "--for broker"),
    ("agencies/SENAN", "SENAN-kex-2026a", "--for agency SENAN"),
])
def test_provision_refuses_a_lost_key_another_side_holds_and_writes_nothing(tmp_path: Path, folder: str,
                                                                            key_id: str, way_out: str) -> None:
    """A key lost from its owner's folder while another side holds its public half is never made again under its
    id: provisioning refuses before writing anything (no new private half left behind), naming `keys generate`."""
    Keystore.provision(tmp_path, partners=["COL"], agencies=["SENAN"], agreements=["PAN-CRI"], now=NOW)
    (tmp_path / folder / f"{key_id}.json").unlink()
    before = _files(tmp_path)
    with pytest.raises(KeyMaterialError, match=f"{key_id} is missing from .*`puente keys generate {way_out} "
                                               "--generation NEW`"):
        Keystore.provision(tmp_path, partners=["COL"], agencies=["SENAN"], agreements=["PAN-CRI"], now=NOW)
    assert _files(tmp_path) == before


def test_keys_init_after_a_lost_key_refuses_in_one_line_and_leaves_nothing_new(tmp_path: Path) -> None:
    """`puente keys init` after a partner's private key was lost exits 3 with one line naming the way out, and
    writes no new private half: a rerun says the same, rather than failing after writing one more."""
    root = tmp_path / "keys"
    assert puente(root, "keys", "init").returncode == 0
    (root / "partners" / "USA" / "USA-enc-2026a.json").unlink()
    before = _files(root)
    for _ in range(2):
        done = puente(root, "keys", "init")
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1 and "USA-enc-2026a is missing from" in done.stderr
        assert "`puente keys generate --for partner USA --generation NEW`" in done.stderr
        assert _files(root) == before


def test_audit_without_verify_keys_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    """An auditor whose folder holds no verify key is told which folder and how to fill it, before any
    connection: not a verification in which every record fails."""
    root = tmp_path / "keys"
    assert puente(root, "keys", "init").returncode == 0
    for path in (root / "auditor").iterdir():
        path.unlink()
    env = {k: v for k, v in os.environ.items() if k not in ("PUENTE_CLIENT_CONFIG", "PUENTE_BOOTSTRAP")}
    done = subprocess.run([sys.executable, "-m", "puente.cli", "audit", "verify"], capture_output=True, text=True,
                          env={**env, "PUENTE_KEYS": str(root), **unreachable_kafka(tmp_path, port=1)}, check=False,
                          timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and str(root / "auditor") in done.stderr and "import-public" in done.stderr


def test_a_verify_key_that_is_not_the_brokers_signing_key_is_refused(tmp_path: Path) -> None:
    """--verify-key names the broker's public signing key: another partner's receipt key (one folder over in the
    auditor's keys) would let that partner forge this partner's feed, so any other key is refused in one line."""
    made = Keystore.provision(tmp_path / "keys", partners=["COL", "USA"], agencies=[], agreements=[],
                              generation="2026a")
    col = made.partners["COL"].path
    usa_receipt_key = made.partners["USA"].path / "USA-rcpt-2026a.json"
    with pytest.raises(KeyMaterialError, match="is not the broker's signing key"):
        opener_for("COL", col / "COL-enc-2026a.json", usa_receipt_key)
    assert opener_for("COL", col / "COL-enc-2026a.json", col / "broker-sign-2026a.json") is not None


def test_an_agency_rotates_its_key_without_its_alerts_being_dead_lettered(tmp_path: Path) -> None:
    """An agency makes a new generation of its key-agreement key before the broker holds its public half: its
    adapter keeps MACing with the generation the broker holds (the broker would dead-letter the rest, for good),
    says how to switch, and switches only on `keys use`, once the broker has imported the new half. Two generations
    and no choice are refused by the adapter, naming them."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    agency, broker = Keystore(keys / "agencies" / "SENAN"), Keystore(keys / "broker")

    def verified() -> str:
        mac = agency.load_agency_mac("SENAN")
        headers = sign_ingress("SENAN", mac.key_id, mac, b"alert", "SENAN-1")
        return verify_ingress(headers, b"alert", broker.agency_mac_lookup()).key_id

    made = puente(keys, "keys", "generate", "--for", "agency", "SENAN", "--generation", "2026b")
    assert made.returncode == 0, made.stderr
    assert "keeps MACing with SENAN-kex-2026a" in made.stdout and "puente keys use SENAN-kex-2026b" in made.stdout
    assert verified() == "SENAN-kex-2026a+broker-kex-2026a"  # the broker holds it: nothing dead-lettered
    (agency.path / "in-use").unlink()
    with pytest.raises(KeyMaterialError, match=r"2 generations .* names none in use"):
        agency.load_agency_mac("SENAN")
    pem = tmp_path / "SENAN-kex-2026b.pem"
    assert puente(keys, "keys", "export-public", "SENAN-kex-2026b", "--out", str(pem)).returncode == 0
    assert puente(keys, "keys", "import-public", str(pem), "--id", "SENAN-kex-2026b").returncode == 0
    switched = puente(keys, "keys", "use", "SENAN-kex-2026b")
    assert switched.returncode == 0 and "SENAN-kex-2026b" in switched.stdout, switched.stderr
    assert verified() == "SENAN-kex-2026b+broker-kex-2026a"
    for wrong in ("broker-kex-2026z", "SENAN-kex-2026c", "COL-enc-2026a"):
        refused = puente(keys, "keys", "use", wrong, "--dir", str(agency.path))
        assert refused.returncode != 0 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    (agency.path / "in-use").write_text("SENAN-kex-2026z\n")
    with pytest.raises(KeyMaterialError, match="names SENAN-kex-2026z, which is not one of"):
        agency.load_agency_mac("SENAN")
    (agency.path / "in-use").chmod(0o666)
    with pytest.raises(KeyMaterialError, match="writable by others"):
        agency.load_agency_mac("SENAN")


def test_a_new_broker_generation_keeps_the_agreements_pseudonym_keys(tmp_path: Path) -> None:
    """`keys generate --for broker --generation 2026b` makes new signing and key-agreement keys, not new pseudonym
    keys: views use the newest, so a new one would change every pseudonym partners hold (and give one subject two
    while workers restart one by one). An agreement with none yet gets one."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    broker = Keystore(keys / "broker")
    before = {agreement: broker.load_pseudonym_key(agreement).reveal() for agreement in ("PAN-USA", "COMBIFRON")}
    (keys / "broker" / "COMBIFRON-pseudo-2026a.json").unlink()
    made = puente(keys, "keys", "generate", "--for", "broker", "--generation", "2026b")
    assert made.returncode == 0, made.stderr
    ids = set(broker.key_ids())
    assert {"broker-sign-2026b", "broker-kex-2026b", "COMBIFRON-pseudo-2026b"} <= ids
    assert "PAN-USA-pseudo-2026b" not in ids and "PAN-USA-pseudo-2026b" not in made.stdout
    assert broker.load_pseudonym_key("PAN-USA").reveal() == before["PAN-USA"]
    assert broker.load_pseudonym_key("COMBIFRON").reveal() != before["COMBIFRON"]


def test_a_running_broker_takes_keys_imported_while_it_runs(tmp_path: Path) -> None:
    """The broker's MAC lookup is built at start; one built by ``fresh_agency_mac_lookup`` reads the keystore again
    (at most once per interval) when a record names a pair it does not hold, so neither an agency's new key put in
    use once the broker imported it, nor the broker's own new key-agreement key (which agencies pair with once they
    import it and name it with `keys use`), has a running worker dead-letter what they MACed."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    agency, broker = Keystore(keys / "agencies" / "SENAN"), Keystore(keys / "broker")
    now = [0.0]
    lookup = broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0])

    def verified() -> str | None:
        mac = agency.load_agency_mac("SENAN")
        try:
            return verify_ingress(sign_ingress("SENAN", mac.key_id, mac, b"a", "SENAN-1"), b"a", lookup).key_id
        except OriginError:
            return None

    assert verified() == "SENAN-kex-2026a+broker-kex-2026a"
    assert puente(keys, "keys", "generate", "--for", "agency", "SENAN", "--generation", "2026b").returncode == 0
    pem = tmp_path / "senan.pem"
    assert puente(keys, "keys", "export-public", "SENAN-kex-2026b", "--out", str(pem)).returncode == 0
    assert puente(keys, "keys", "import-public", str(pem), "--id", "SENAN-kex-2026b").returncode == 0
    assert puente(keys, "keys", "use", "SENAN-kex-2026b").returncode == 0
    now[0] = 1.0  # within the interval, but the folder changed (the import, then `keys use`): read again
    assert verified() == "SENAN-kex-2026b+broker-kex-2026a"
    assert puente(keys, "keys", "generate", "--for", "broker", "--generation", "2026b").returncode == 0
    pem = tmp_path / "broker-kex.pem"
    assert puente(keys, "keys", "export-public", "broker-kex-2026b", "--out", str(pem)).returncode == 0
    assert puente(keys, "keys", "import-public", str(pem), "--id", "broker-kex-2026b", "--dir",
                  str(agency.path)).returncode == 0
    with pytest.raises(KeyMaterialError, match="names none in use"):
        verified()  # the adapter pairs with a new broker generation only once told to
    used = puente(keys, "keys", "use", "broker-kex-2026b", "--dir", str(agency.path))
    assert used.returncode == 0 and "broker-in-use" in used.stdout, used.stderr
    now[0] = 2.0
    assert verified() == "SENAN-kex-2026b+broker-kex-2026b"
    reads: list[int] = []
    original = broker.agency_mac_lookup

    def counted() -> Callable[[str, str], SecretBytes | None]:
        reads.append(1)
        return original()

    broker.agency_mac_lookup = counted  # type: ignore[method-assign]
    unknown = SecretBytes(b"k" * 32, key_id="SENAN-kex-2026z+broker-kex-2026b")
    headers = sign_ingress("SENAN", unknown.key_id, unknown, b"a", "SENAN-1")
    for _ in range(50):  # a flood of an unknown pair, nothing changed: the folder is not read again for it
        with pytest.raises(OriginError):
            verify_ingress(headers, b"a", lookup)
    assert reads == []


class _Revocable(NamedTuple):
    """A broker's running MAC lookup on a fresh keystore, its clock, and SENAN's MACed record."""

    broker: Keystore
    now: list[float]
    lookup: Callable[[str, str], SecretBytes | None]
    headers: list[tuple[str, bytes]]

    def verified(self) -> str | None:
        try:
            return verify_ingress(self.headers, b"a", self.lookup).key_id
        except OriginError:
            return None

    def revoke(self, *, time_shows: bool = True) -> None:
        """Remove SENAN's key from the broker's keystore; without ``time_shows``, as if the folder's modification
        time never moved (a file system that caches or coarsens it)."""
        stamp = os.stat(self.broker.path)
        (self.broker.path / "SENAN-kex-2026a.json").unlink()
        if not time_shows:
            os.utime(self.broker.path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def _revocable(tmp_path: Path) -> _Revocable:
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    agency, broker = Keystore(keys / "agencies" / "SENAN"), Keystore(keys / "broker")
    now = [0.0]
    mac = agency.load_agency_mac("SENAN")
    return _Revocable(broker, now, broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0]),
                      sign_ingress("SENAN", mac.key_id, mac, b"a", "SENAN-1"))


def test_a_running_broker_stops_taking_a_key_removed_to_revoke_it(tmp_path: Path) -> None:
    """Removing an agency's key file revokes it (``agency_mac_lookup``): a running broker's lookup checks the pairs
    it holds too, once per interval, so records MACed with the leaked key stop verifying within it, not at the
    next restart. Within the interval a pair held costs no look at the folder."""
    site = _revocable(tmp_path)
    assert site.verified() == "SENAN-kex-2026a+broker-kex-2026a"
    site.revoke()
    site.now[0] = 1.0
    assert site.verified() == "SENAN-kex-2026a+broker-kex-2026a"  # within the interval: not looked at yet
    site.now[0] = 5.0
    assert site.verified() is None
    site.now[0] = 60.0
    assert site.verified() is None


def test_a_bad_file_in_the_folder_never_keeps_a_revoked_key(tmp_path: Path) -> None:
    """A re-read that meets an unrelated bad key file (PN's new public half copied in group-writable) once kept the
    whole old table, so SENAN's removed key verified for good, silently: the pairs of the files that load are
    taken, the revoked one is gone, and the bad file is reported once, naming it, not on every read."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    agency, broker = Keystore(keys / "agencies" / "SENAN"), Keystore(keys / "broker")
    now, told = [0.0], []
    lookup = broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0], on_problem=told.append)
    pn = Keystore(keys / "agencies" / "PN").load_agency_mac("PN")
    mac = agency.load_agency_mac("SENAN")
    assert lookup("SENAN", mac.key_id) == mac
    (broker.path / "SENAN-kex-2026a.json").unlink()
    bad = broker.path / "PN-kex-2026b.json"
    doc = json.loads((broker.path / "PN-kex-2026a.json").read_text())
    bad.write_text(json.dumps({**doc, "key_id": "PN-kex-2026b"}))
    bad.chmod(0o664)
    for step in (5.0, 60.0, 600.0, 6000.0):
        now[0] = step
        assert lookup("SENAN", mac.key_id) is None
        assert lookup("PN", pn.key_id) == pn  # what still loads still verifies
    assert len(told) == 1 and "PN-kex-2026b" in told[0] and str(bad) in told[0] and "\n" not in told[0]
    assert doc["public"] not in told[0]


def test_a_public_half_copied_in_as_another_agencys_is_left_out_and_the_first_kept(tmp_path: Path) -> None:
    """SENAFRONT's public half written in by hand as SENAN's new key while the broker runs: SENAFRONT could MAC as
    SENAN, so the copy never verifies after the re-read, and the file is reported; SENAFRONT's own key, which the
    broker verified with before, keeps verifying (its genuine records are not dead-lettered for another's file).
    The start refuses the folder."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    broker = Keystore(keys / "broker")
    now, told = [0.0], []
    lookup = broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0], on_problem=told.append)
    mac = Keystore(keys / "agencies" / "SENAFRONT").load_agency_mac("SENAFRONT")
    assert lookup("SENAFRONT", mac.key_id) == mac
    doc = json.loads((broker.path / "SENAFRONT-kex-2026a.json").read_text())
    (broker.path / "SENAN-kex-2026b.json").write_text(json.dumps({**doc, "key_id": "SENAN-kex-2026b"}))
    now[0] = 5.0
    assert lookup("SENAN", "SENAN-kex-2026b+broker-kex-2026a") is None
    assert lookup("SENAFRONT", mac.key_id) == mac
    assert any("SENAN-kex-2026b" in line and "same public key" in line for line in told)
    with pytest.raises(KeyMaterialError, match="same public key"):
        broker.agency_mac_lookup()


def test_a_partners_encryption_half_copied_in_as_an_agencys_key_never_verifies(tmp_path: Path) -> None:
    """COL's encryption public half written in by hand as SENAN's new key-agreement key while the broker runs: COL,
    holding that key's private half, could MAC as SENAN, so the re-read leaves the file out and reports it."""
    made = Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=["SENAN"], agreements=["COMBIFRON"],
                              generation="2026a", now=NOW)
    broker = made.broker
    now, told = [0.0], []
    lookup = broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0], on_problem=told.append)
    doc = json.loads((broker.path / "COL-enc-2026a.json").read_text())
    (broker.path / "SENAN-kex-2026b.json").write_text(json.dumps({**doc, "key_id": "SENAN-kex-2026b",
                                                                  "kind": "key-agreement"}))
    col = made.partners["COL"].load("COL-enc-2026a")
    forged = ingress_mac_key(KeyRecord("SENAN-kex-2026b", KeyKind.KEY_AGREEMENT, NOW, col.public, col.secret),
                             made.agencies["SENAN"].load("broker-kex-2026a"))
    now[0] = 5.0
    assert lookup("SENAN", forged.key_id) is None
    senan = made.agencies["SENAN"].load_agency_mac("SENAN")
    assert lookup("SENAN", senan.key_id) == senan  # SENAN's own key still verifies
    assert len(told) == 1 and "SENAN-kex-2026b" in told[0] and "COL-enc-2026a" in told[0] and "\n" not in told[0]
    assert doc["public"] not in told[0]
    with pytest.raises(KeyMaterialError, match="COL could MAC as SENAN"):
        broker.agency_mac_lookup()


def test_a_held_pair_is_read_again_even_when_the_folder_time_never_moves(tmp_path: Path) -> None:
    """A file system that caches or coarsens modification times must not keep a revoked key for good: a pair held is
    read again at the latest every ``REREAD_HELD`` intervals whatever the time says."""
    site = _revocable(tmp_path)
    assert site.verified() is not None
    site.revoke(time_shows=False)
    for step in range(1, REREAD_HELD):
        site.now[0] = 5.0 * step
        assert site.verified() is not None  # the time did not move: held
    site.now[0] = 5.0 * REREAD_HELD
    assert site.verified() is None


def test_a_stream_of_unknown_pairs_neither_keeps_a_revoked_key_nor_hides_a_new_one(tmp_path: Path) -> None:
    """Records naming a pair no one holds, a few seconds apart, must not hold back the reads that revocation and a
    new key wait for (a miss once moved the clock of both): with the folder's time never moving, a key removed
    stops verifying, and a key imported starts, within a read interval or two."""
    site = _revocable(tmp_path)
    unknown = SecretBytes(b"k" * 32, key_id="SENAN-kex-2026z+broker-kex-2026a")
    junk = sign_ingress("SENAN", unknown.key_id, unknown, b"a", "SENAN-2")
    assert site.verified() is not None
    site.revoke(time_shows=False)
    for step in range(1, 4):
        site.now[0] = 4.0 * step
        with pytest.raises(OriginError):
            verify_ingress(junk, b"a", site.lookup)
    site.now[0] = 12.5
    assert site.verified() is None


@pytest.mark.parametrize("generation", ["x-enc-y", "x-rcpt-y", "x-kex-y", "2026-b", "a" * 17, "", "2026_b"])
def test_a_generation_that_would_give_the_key_another_id_is_refused(tmp_path: Path, generation: str) -> None:
    """A key's id is its owner, role and generation: a generation holding a role (``x-enc-y``) gave COL's key the
    id of an owner ``COL-enc-x``, and a broker one whose id read as another kind could not start. It is refused
    before any key is made, in one line."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    before = sorted(p.name for p in (keys / "broker").iterdir())
    with pytest.raises(KeyMaterialError, match=r"a generation is 1-16 letters and digits|is not a key id"):
        new_key(KeyKind.PARTNER_ENCRYPTION, "COL", generation, datetime.now(UTC))
    made = puente(keys, "keys", "generate", "--for", "broker", "--generation", generation)
    assert made.returncode == 3 and made.stderr.count("\n") == 1, made.stderr
    assert sorted(p.name for p in (keys / "broker").iterdir()) == before


def test_the_brokers_own_key_agreement_file_that_stops_loading_stops_the_worker(tmp_path: Path) -> None:
    """The broker's own key-agreement file made group-readable while it runs: the start refuses that folder, so the
    re-read must not leave the file out (every agency's record MACed with it would be dead-lettered for good as not
    proving its origin): it raises ``KeyUnusable``, which the pipeline passes on, and the worker stops before
    committing. An agency's file that stops loading is still left out and reported."""
    site = _revocable(tmp_path)
    assert site.verified() == "SENAN-kex-2026a+broker-kex-2026a"
    (site.broker.path / "broker-kex-2026a.json").chmod(0o640)
    site.now[0] = 600.0
    with pytest.raises(KeyUnusable, match="broker-kex-2026a") as raised:
        site.verified()
    assert "stopped without committing" in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(KeyMaterialError):  # as the start refuses it
        site.broker.agency_mac_lookup()
    (site.broker.path / "broker-kex-2026a.json").chmod(0o600)
    site.now[0] = 1200.0
    assert site.verified() == "SENAN-kex-2026a+broker-kex-2026a"



def test_the_brokers_key_agreement_half_copied_in_as_an_agencys_is_left_out(tmp_path: Path) -> None:
    """The broker's own key-agreement public half written in by hand as PN's new key while it runs: the start refuses
    that folder, and the re-read must not drop the broker's own key with the copy (every agency's record would be
    dead-lettered for good): the copy, the newcomer, is left out, and the broker's own key kept."""
    site = _revocable(tmp_path)
    assert site.verified() == "SENAN-kex-2026a+broker-kex-2026a"
    doc = json.loads((site.broker.path / "broker-kex-2026a.json").read_text())
    copy = {"key_id": "PN-kex-2099a", "kind": doc["kind"], "created_at": doc["created_at"], "public": doc["public"]}
    (site.broker.path / "PN-kex-2099a.json").write_text(json.dumps(copy))
    site.now[0] = 600.0
    assert site.verified() == "SENAN-kex-2026a+broker-kex-2026a"
    assert site.lookup("PN", "PN-kex-2099a+broker-kex-2026a") is None
    with pytest.raises(KeyMaterialError, match="PN-kex-2099a"):
        site.broker.agency_mac_lookup()


def test_the_brokers_key_file_removed_while_read_again_is_revoked_not_fatal(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A retired broker key-agreement file removed as the running broker reads its folder again (listed, then gone
    when loaded) is dropped as a revoked key, not taken for the broker's own key stopping to load."""
    site = _revocable(tmp_path)
    site.broker.generate_own(Holder.BROKER, "broker", generation="2026b", now=NOW)
    loading = Keystore.load

    def load(self: Keystore, key_id: str, *args: Any, **kwargs: Any) -> Any:
        if key_id == "broker-kex-2026a":
            (self.path / "broker-kex-2026a.json").unlink(missing_ok=True)
        return loading(self, key_id, *args, **kwargs)

    monkeypatch.setattr(Keystore, "load", load)
    site.now[0] = 600.0
    assert site.verified() is None  # its pairs are gone with it; the worker goes on


@pytest.mark.parametrize(("holder", "ident", "said"), [
    ("agency", "snm", " names no agency of PUENTE_AGENCIES (ids are exact, case included): COMBIFRON, PN, SENAFRONT, "
                      "SENAN, SNM"),
    ("agency", "FOO", " names no agency of PUENTE_AGENCIES"),
    ("partner", "col", " names no partner of partners.yaml; did you mean COL? (ids are exact, case included)"),
    ("partner", "../COL", " is no partner id: letters, digits"),
    ("broker", "other", ": the broker's keys take no id (or 'broker')"),
])
def test_keys_generate_refuses_an_id_no_one_is_named_by(tmp_path: Path, holder: str, ident: str, said: str) -> None:
    """Keys made for `snm`, a misspelt agency or `col` are named for no party: their import and the broker's lookup
    would refuse them later. `keys generate` refuses such an id in one line saying what it takes, and writes
    nothing."""
    keys = tmp_path / "keys"
    done = puente(keys, "keys", "generate", "--for", holder, ident)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and f"{ident!r}{said}" in done.stderr
    assert not keys.exists() or not any(p.is_file() for p in keys.rglob("*"))


def test_a_partner_the_policy_does_not_name_yet_makes_its_keys_without_the_policy(tmp_path: Path) -> None:
    """A partner makes its keys on its own side, often before the ministry adds it to partners.yaml (with these
    keys' ids), and holds no copy of the ministry's policy: GTM's keys are made with PUENTE_POLICY_DIR naming no
    folder at all, and so are an agency's."""
    keys = tmp_path / "keys"
    for args in (("partner", "GTM"), ("agency", "SENAN")):
        done = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "generate", "--for", *args],
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "PUENTE_KEYS": str(keys), "PUENTE_POLICY_DIR": str(tmp_path / "none")})
        assert done.returncode == 0, done.stderr
    assert {"GTM-enc-2026a", "GTM-rcpt-2026a"} <= set(Keystore(keys / "partners" / "GTM").key_ids())


def test_keys_init_refuses_a_deployment_whose_logins_made_the_party_folders(tmp_path: Path) -> None:
    """`users apply` writes each party's Kafka login into a folder of its own under the keystore: a folder holding
    only a login is no party's keys, and the keystore `keys generate --for broker` made is still a deployment's."""
    root = tmp_path / "keys"
    assert puente(root, "keys", "generate", "--for", "broker").returncode == 0
    login = root / "partners" / "COL"
    login.mkdir(parents=True, mode=0o700)
    (login / "client.properties").write_text("security.protocol=SASL_SSL\n")
    done = puente(root, "keys", "init")
    assert done.returncode == 3 and "holds the broker's own keys and no single-site-trial mark" in done.stderr, done
    assert not (login / "COL-enc-2026a.json").exists()


def test_keys_generate_never_writes_into_another_partys_folder(tmp_path: Path) -> None:
    """A mistyped --dir naming another party's folder (one holding that party's private keys) is refused before
    anything is written, in one line (exit 3): the broker's keys in an agency's folder, a partner's in the broker's,
    an agency's in a partner's. Each party's own folder, and an empty one, take its keys."""
    keys = tmp_path / "keys"
    assert puente(keys, "keys", "init").returncode == 0
    cases = [(("--for", "broker"), keys / "agencies" / "SENAN"), (("--for", "partner", "COL"), keys / "broker"),
             (("--for", "agency", "SENAN"), keys / "partners" / "COL")]
    for args, folder in cases:
        before = sorted(p.name for p in folder.iterdir())
        run = puente(keys, "keys", "generate", *args, "--generation", "2027a", "--dir", str(folder))
        assert run.returncode == 3, (args, run.stdout, run.stderr)
        assert "private key" in run.stderr and "not" in run.stderr and "--dir" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert sorted(p.name for p in folder.iterdir()) == before
    run = puente(keys, "keys", "generate", "--for", "partner", "COL", "--generation", "2027a", "--dir",
                 str(keys / "partners" / "COL"))
    assert run.returncode == 0, run.stderr
    run = puente(keys, "keys", "generate", "--for", "agency", "SENAN", "--generation", "2027a", "--dir",
                 str(tmp_path / "empty"))
    assert run.returncode == 0, run.stderr


def test_a_secret_others_may_read_is_a_custody_problem_whether_loaded_or_not(tmp_path: Path) -> None:
    """The broker loads an agreement's pseudonym key only while the agreement is in force; a world-readable one is
    named by the custody check (``policy lint --keys``, the broker's start) all the same, as is any other secret."""
    keys = tmp_path / "keys"
    provision_all(PuenteSettings(keys=keys))
    store = Keystore(keys / "broker")
    assert store.broker_custody_problems() == []
    pseudo = next(p for p in store.path.glob("*-pseudo-*.json") if not p.name.startswith("broker-"))
    pseudo.chmod(0o644)
    problems = store.broker_custody_problems()
    assert len(problems) == 1 and pseudo.name in problems[0] and "others may read" in problems[0]
