"""Key material the broker must refuse at import or start-up, not trust or trip over while it runs: links in a
keystore, low-order or non-canonical X25519 public halves, one public key under two owners, and partners' private
halves."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.auditor import signature_checks
from broker.crypto import FeedSealer, public_from_pem
from broker.crypto.keys import KeyKind, KeyRecord, record_from_json, record_to_json
from broker.keystore import Holder, Keystore, Keystores, load_key_file, signature_check
from broker.partner import opener_for
from broker.service import build_sealers, require_sealers
from policies import load_policy_set
from puente.errors import ConfigError, KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
IN_FORCE = datetime(2026, 6, 1, tzinfo=UTC)
PARTNERS = ["COL", "USA", "CRI", "FEAN"]
AGREEMENTS = ["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"]
LOW_ORDER = {
    "zero": bytes(32),
    "one": (1).to_bytes(32, "little"),
    "order8": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
}


def _site(tmp_path: Path) -> Keystores:
    return Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=["SENAN"], agreements=AGREEMENTS,
                              generation="2026a")


def _pem(raw: bytes) -> bytes:
    return X25519PublicKey.from_public_bytes(raw).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _one_line_naming(exc: pytest.ExceptionInfo[BaseException], *words: str) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


# 1. links


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",  # under CI=true: runs, never skips
                    reason="giving a link to another user needs root")
def test_a_key_file_that_is_a_link_of_another_user_is_refused_naming_it(tmp_path: Path) -> None:
    """A key file linked from a private keystore to a file kept elsewhere loads only while the link is this user's
    or root's: one another user made is refused, in one line naming the path."""
    store = Keystore(tmp_path / "ks")
    store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (store.path / "broker-sign-2026a.json").rename(elsewhere / "broker-sign-2026a.json")
    link = store.path / "broker-sign-2026a.json"
    link.symlink_to("../elsewhere/broker-sign-2026a.json")
    assert store.load("broker-sign-2026a").secret is not None
    os.chown(link, 4321, 4321, follow_symlinks=False)
    with pytest.raises(KeyMaterialError) as info:
        store.load("broker-sign-2026a")
    _one_line_naming(info, str(link), "symbolic link", "another user")


def test_links_out_of_an_open_keystore_folder_do_not_bypass_its_check(tmp_path: Path) -> None:
    """The review's attack: an open (0777) partner folder whose files are moved to a 0755 folder and linked back,
    the broker's verify key swapped for an attacker's: COL's opener refuses, it never trusts the attacker's key."""
    col = Keystore(tmp_path / "COL")
    col.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    broker = Keystore(tmp_path / "broker")
    broker.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    col.import_public(broker.public_pem("broker-sign-2026a"), "broker-sign-2026a", source="b.pem", now=NOW)
    os.chmod(col.path, 0o777)  # noqa: S103 - the careless operator's open folder is what is tested
    attacker = tmp_path / "attacker"
    attacker.mkdir(mode=0o755)
    for path in list(col.path.iterdir()):
        path.rename(attacker / path.name)
        path.symlink_to(attacker / path.name)
    evil = Keystore(tmp_path / "evil").generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    (attacker / "broker-sign-2026a.json").write_bytes(record_to_json(evil.public_only()))
    with pytest.raises(KeyMaterialError):
        opener_for("COL", col.path / "COL-enc-2026a.json", None)


def test_a_keystore_folder_reached_through_a_link_still_loads_and_is_checked(tmp_path: Path) -> None:
    """Only key files may not be links: a keystore folder given through a link to a private folder loads, and
    that folder opened to others is refused as before."""
    private = tmp_path / "private"
    store = Keystore(private)
    store.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=NOW)
    via = tmp_path / "via"
    via.symlink_to(private, target_is_directory=True)
    assert Keystore(via).load("broker-sign-2026a").key_id == "broker-sign-2026a"
    os.chmod(private, 0o777)  # noqa: S103 - the permissive folder is what is tested
    with pytest.raises(KeyMaterialError) as info:
        load_key_file(via / "broker-sign-2026a.json")
    _one_line_naming(info, "writable by others", "chmod 700")


# 2. low-order X25519 public halves


@pytest.mark.parametrize("name", sorted(LOW_ORDER))
def test_a_low_order_x25519_public_half_is_refused_at_import(tmp_path: Path, name: str) -> None:
    """An all-zero, one or order-8 X25519 public key is refused when imported, in one line naming the file,
    and nothing is written: nothing could ever be sealed to it."""
    with pytest.raises(KeyMaterialError) as info:
        public_from_pem(_pem(LOW_ORDER[name]), key_id="COL-enc-2026b", created_at=NOW, source=f"{name}.pem")
    _one_line_naming(info, f"{name}.pem", "COL-enc-2026b", "low-order")
    store = Keystore(tmp_path / "broker")
    with pytest.raises(KeyMaterialError):
        store.import_public(_pem(LOW_ORDER[name]), "SENAN-kex-2026b", source=f"{name}.pem", now=NOW)
    assert store.key_ids() == []


@pytest.mark.parametrize("key_id", ["COL-enc-2026b", "SENAN-kex-2026b"])
def test_a_low_order_public_half_is_refused_when_loaded(key_id: str) -> None:
    """A key file written by hand with a low-order X25519 public half is refused when loaded, naming the key."""
    kind = KeyKind.PARTNER_ENCRYPTION if "-enc-" in key_id else KeyKind.KEY_AGREEMENT
    data = record_to_json(KeyRecord(key_id, kind, NOW, LOW_ORDER["order8"], None))
    with pytest.raises(KeyMaterialError) as info:
        record_from_json(data, key_id=key_id)
    _one_line_naming(info, key_id, "low-order")


def _non_canonical(raw: bytes, how: str) -> bytes:
    """``raw``'s u-coordinate spelt otherwise: with the top bit set, or plus the field prime (when that fits)."""
    if how == "top-bit":
        return raw[:31] + bytes([raw[31] | 0x80])
    return (int.from_bytes(raw, "little") + 2**255 - 19).to_bytes(32, "little")


@pytest.mark.parametrize("how", ["top-bit", "plus-prime"])
def test_a_non_canonical_x25519_public_half_is_refused(tmp_path: Path, how: str) -> None:
    """COL's public half with its top bit set (or u + p) is the same key to X25519 under other bytes and another
    fingerprint: imported as USA's key, it would seal USA's feed for COL. Refused at import and at load, in one
    line naming the file or key; the canonical encoding imports."""
    made = _site(tmp_path)
    raw = made.broker.load("COL-enc-2026a").public or b""
    if how == "plus-prime":
        raw = (5).to_bytes(32, "little")  # a small u-coordinate, so that u + p still fits in 255 bits
    odd = _non_canonical(raw, how)
    with pytest.raises(KeyMaterialError) as info:
        made.broker.import_public(_pem(odd), "USA-enc-2026b", source="flip.pem", now=NOW)
    _one_line_naming(info, "flip.pem", "USA-enc-2026b", "canonical")
    assert not (made.broker.path / "USA-enc-2026b.json").exists()
    data = record_to_json(KeyRecord("SENAN-kex-2026b", KeyKind.KEY_AGREEMENT, NOW, odd, None))
    with pytest.raises(KeyMaterialError) as info:
        record_from_json(data, key_id="SENAN-kex-2026b")
    _one_line_naming(info, "SENAN-kex-2026b", "canonical")
    canonical = made.broker.public_pem("COL-enc-2026a")
    assert made.broker.import_public(canonical, "COL-enc-2026a", source="same.pem", now=NOW)[1] is False


def test_a_low_order_partner_key_stops_start_up_instead_of_withholding_every_alert(tmp_path: Path) -> None:
    """COL's key file replaced by a low-order one (bypassing import): COL gets no sealer, and the broker refuses to
    start naming COL and the key, rather than start and withhold every alert to COL at delivery."""
    made = _site(tmp_path)
    (made.broker.path / "COL-enc-2026a.json").unlink()  # put never writes over a key file
    made.broker.put(KeyRecord("COL-enc-2026a", KeyKind.PARTNER_ENCRYPTION, NOW, LOW_ORDER["zero"], None))
    policy = load_policy_set()
    sealers, problems = build_sealers(policy, made.broker)
    assert "COL" not in sealers and "COL-enc-2026a" in problems["COL"]
    with pytest.raises(ConfigError) as info:
        require_sealers(policy, problems, made.broker.path, IN_FORCE)
    _one_line_naming(info, "COL (agreement", "COL-enc-2026a")


def test_a_sealer_that_cannot_seal_is_a_start_up_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sealer seals one trial record at start: one that raises gives its partner no sealer and a problem
    naming the key id, so the broker does not start rather than withhold that partner's alerts for good."""
    made = _site(tmp_path)
    real_seal = FeedSealer.seal

    def seal(self: FeedSealer, plaintext: bytes, **context: Any) -> bytes:  # a stand-in: USA's cannot seal
        if self.partner_id == "USA":
            raise ValueError("Error computing shared key.")
        return real_seal(self, plaintext, **context)

    monkeypatch.setattr(FeedSealer, "seal", seal)
    policy = load_policy_set()
    sealers, problems = build_sealers(policy, made.broker)
    assert sorted(sealers) == ["COL", "CRI", "FEAN"] and list(problems) == ["USA"]
    assert "USA-enc-2026a" in problems["USA"] and "\n" not in problems["USA"]
    with pytest.raises(ConfigError, match="USA"):
        require_sealers(policy, problems, made.broker.path, IN_FORCE)


# 3. one public key under two owners


def test_a_public_half_held_under_another_owner_is_refused_at_import(tmp_path: Path) -> None:
    """COL's PEM imported as USA-enc-2026b is refused in one line naming both key ids, and nothing is written;
    re-importing COL's own key under its own id still works."""
    made = _site(tmp_path)
    pem = made.partners["COL"].public_pem("COL-enc-2026a")
    with pytest.raises(KeyMaterialError) as info:
        made.broker.import_public(pem, "USA-enc-2026b", source="USA-enc-2026b.pem", now=NOW)
    _one_line_naming(info, "USA-enc-2026b.pem", "COL-enc-2026a", "USA-enc-2026b")
    assert "USA-enc-2026b" not in made.broker.key_ids()
    assert made.broker.import_public(pem, "COL-enc-2026a", source="COL-enc-2026a.pem", now=NOW)[1] is False


def test_two_partners_with_one_encryption_public_key_get_no_sealer(tmp_path: Path) -> None:
    """USA's key file holding COL's public half (written past import): neither gets a sealer, each problem names
    the other's key, so the broker never seals USA's feed to a key COL can open."""
    made = _site(tmp_path)
    col = made.broker.load("COL-enc-2026a")
    made.broker.put(dataclasses.replace(col, key_id="USA-enc-2026b"))
    policy = load_policy_set()
    usa = dataclasses.replace(policy.partners["USA"], encryption_key_id="USA-enc-2026b")
    policy = dataclasses.replace(policy, partners={**policy.partners, "USA": usa})
    sealers, problems = build_sealers(policy, made.broker)
    assert sorted(sealers) == ["CRI", "FEAN"]
    assert "COL's COL-enc-2026a" in problems["USA"] and "USA's USA-enc-2026b" in problems["COL"]
    with pytest.raises(ConfigError):
        require_sealers(policy, problems, made.broker.path, IN_FORCE)


# 4. partners' private halves in the broker's keystore


def test_a_partners_private_encryption_key_in_the_brokers_keystore_is_refused(tmp_path: Path) -> None:
    """COL's private decryption key copied into the broker's folder: COL gets no sealer, and the one-line problem
    says to move the private file out to COL (it may be COL's only copy) and import the public half; never to
    remove it."""
    made = _site(tmp_path)
    (made.broker.path / "COL-enc-2026a.json").unlink()  # put never writes over a key file
    made.broker.put(made.partners["COL"].load("COL-enc-2026a"))
    sealers, problems = build_sealers(load_policy_set(), made.broker)
    assert "COL" not in sealers
    assert "\n" not in problems["COL"] and "COL's private half" in problems["COL"]
    assert "puente keys import-public" in problems["COL"]
    assert f"move {made.broker.path / 'COL-enc-2026a.json'} out to COL's own keystore" in problems["COL"]
    assert "remove" not in problems["COL"]


def test_a_partners_private_receipt_key_is_refused_by_the_signature_check(tmp_path: Path) -> None:
    """COL's private receipt-signing key in the broker's or the auditors' folder: the signature check over partner
    receipt keys refuses it, naming the key; the broker's own signing secret there is fine."""
    made = _site(tmp_path)
    signature_check(made.broker, KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)  # no secret but its own
    (made.broker.path / "COL-rcpt-2026a.json").unlink()  # put never writes over a key file
    made.broker.put(made.partners["COL"].load("COL-rcpt-2026a"))
    with pytest.raises(KeyMaterialError) as info:
        signature_check(made.broker, KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
    _one_line_naming(info, "COL-rcpt-2026a", "import-public")
    with pytest.raises(KeyMaterialError):
        made.broker.load_public("COL-rcpt-2026a", KeyKind.PARTNER_SIGNING)


def test_an_auditors_verify_key_holding_a_private_half_is_refused(tmp_path: Path) -> None:
    """`audit verify --verify-key` takes public halves only: a partner's or the broker's own key file (its private
    half) given there is refused with what to give instead, and a public half is taken."""
    site = _site(tmp_path)
    own = site.partners["COL"].path / "COL-rcpt-2026a.json"
    with pytest.raises(ConfigError, match="holds the private half of COL-rcpt-2026a"):
        signature_checks(tmp_path, [own])
    public = site.auditor.path / "COL-rcpt-2026a.json"
    assert load_key_file(public).secret is None
    signature_checks(tmp_path, [public])


def test_the_auditors_folder_holds_no_secret_at_all(tmp_path: Path) -> None:
    """The auditors verify with public halves only: the broker's own signing key file (its secret) copied into
    their folder is refused; the broker's folder, read to collect denials, keeps its own secret."""
    site = _site(tmp_path)
    signer = next(p for p in site.broker.path.iterdir() if p.name.startswith("broker-sign-"))
    assert signature_checks(site.auditor.path, None)(signer.stem, b"x", b"y") is False  # public halves: fine
    (site.auditor.path / signer.name).write_bytes(signer.read_bytes())
    (site.auditor.path / signer.name).chmod(0o600)
    with pytest.raises(KeyMaterialError, match="holds broker's private half"):
        signature_checks(site.auditor.path, None)
    signature_checks(site.broker.path, None, signer=True)
