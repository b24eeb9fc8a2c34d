"""Every reader that verifies with, or looks up, public halves by id refuses one public key under two ids.

The reviewer's case: the auditors' folder holding COL's receipt key also saved as a broker signing key (or both files
given with ``--verify-key``) had a decision block COL signed with its own private key verify as the broker's.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from unreachable import unreachable_kafka

from adapters.lifecycle import own_mac_lookup
from broker.audit import ChainWriter, verify_partition
from broker.auditor import signature_checks
from broker.crypto import SecretBytes, ingress_mac_key, refuse_one_key_two_ids, sign_checkpoint
from broker.crypto.keys import BROKER_OWNER, KeyKind, KeyRecord, record_from_json, record_to_json
from broker.kafka import KafkaConnection
from broker.keystore import Keystore, Keystores, signature_check
from broker.partner import opener_for, receipt_signer
from puente.console.server import catch_up_index
from puente.errors import KeyMaterialError
from puente.settings import PuenteSettings

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _site(tmp_path: Path) -> Keystores:
    return Keystore.provision(tmp_path / "keys", partners=["COL", "USA"], agencies=[], agreements=[],
                              generation="2026a")


def _file_as(folder: Path, record: KeyRecord, key_id: str, kind: KeyKind) -> Path:
    """``record``'s public half written into ``folder`` by hand under ``key_id`` as ``kind`` (past
    ``import_public``'s check, as a copied file is)."""
    return Keystore(folder).put(replace(record.public_only(), key_id=key_id, kind=kind))


def _one_line(info: pytest.ExceptionInfo[BaseException], *words: str) -> str:
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


def _forged_block(col: KeyRecord, signer: str) -> bytes:
    """A decision block COL signed with its own private key, labelled ``signer``."""
    return ChainWriter("p.audit.decisions", 0).block(
        [{"kind": "ALERT", "alert_id": "SNM:forged", "ingress": "p.ingress.SNM:0:0", "at": "2026-03-01T00:00:00Z",
          "decisions": [{"partner": "COL", "decision": "DELIVER", "feed": "p.feed.COL"}]}],
        signer, lambda payload: sign_checkpoint(col.ed25519_private(), payload), "2026-03-01T00:00:00Z")


def _puente(keys: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PUENTE_CLIENT_CONFIG", "PUENTE_BOOTSTRAP")}
    return subprocess.run([sys.executable, "-m", "puente.cli", *args], capture_output=True, text=True,
                          env={**env, "PUENTE_KEYS": str(keys), **unreachable_kafka(tmp_path, port=1)}, check=False,
                          timeout=60)


# The auditors' tools: `audit verify|log|recalls|index`, the console's index


def test_a_decision_block_col_signs_never_verifies_from_a_folder_holding_its_key_as_the_brokers(
        tmp_path: Path) -> None:
    """The reviewer's probe: COL's receipt key saved also as broker-sign-2026b in the auditors' folder is refused
    in one line naming both ids, so no block COL signs can pass as the broker's."""
    made = _site(tmp_path)
    col = made.partners["COL"].load("COL-rcpt-2026a")
    _file_as(made.auditor.path, col, "broker-sign-2026b", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        check = signature_checks(made.auditor.path, None)
        # Reached only before the fix: what the refusal keeps from passing.
        assert not verify_partition("p.audit.decisions", 0, [(0, _forged_block(col, "broker-sign-2026b"))], check,
                                    "decisions").ok
    _one_line(info, "COL-rcpt-2026a", "broker-sign-2026b", str(made.auditor.path))


def test_two_verify_key_files_holding_one_key_are_refused(tmp_path: Path) -> None:
    """`--verify-key COL-rcpt-2026a.json --verify-key broker-sign-2026a.json`, one key in both: refused in one line
    naming both ids, never a checker under which COL's own signature is the broker's."""
    made = _site(tmp_path)
    col = made.partners["COL"].load("COL-rcpt-2026a")
    elsewhere = tmp_path / "given"
    forged = _file_as(elsewhere, col, "broker-sign-2026a", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        check = signature_checks(made.auditor.path, [made.auditor.path / "COL-rcpt-2026a.json", forged])
        assert not verify_partition("p.audit.decisions", 0, [(0, _forged_block(col, "broker-sign-2026a"))], check,
                                    "decisions").ok
    _one_line(info, "--verify-key", "COL-rcpt-2026a", "broker-sign-2026a")


def _x25519_that_is_also_ed25519(key_id: str) -> KeyRecord:
    """A partner encryption public half whose 32 bytes also pass as a broker signing key's: found from fixed seeds,
    so the test is the same on every run."""
    for n in range(2000):
        secret = hashlib.sha256(b"seed %d" % n).digest()
        public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
        record = KeyRecord(key_id, KeyKind.PARTNER_ENCRYPTION, NOW, public, None)
        try:
            record_from_json(record_to_json(replace(record, key_id="broker-sign-2026b",
                                                    kind=KeyKind.BROKER_SIGNING)), key_id="broker-sign-2026b")
        except KeyMaterialError:
            continue
        return record
    raise AssertionError("no seed gave a key valid as both kinds")


def test_the_auditors_folder_compares_every_key_file_not_only_the_signing_keys(tmp_path: Path) -> None:
    """A key of a kind the auditors never load (USA's encryption half) held also as broker-sign-2026b is one key
    under two ids: refused, naming both."""
    made = _site(tmp_path)
    usa = _x25519_that_is_also_ed25519("USA-enc-2026a")
    made.auditor.put(usa)
    _file_as(made.auditor.path, usa, "broker-sign-2026b", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        signature_checks(made.auditor.path, None)
    _one_line(info, "USA-enc-2026a", "broker-sign-2026b")


def test_the_consoles_index_refuses_the_folder_too(tmp_path: Path) -> None:
    """The console's catch-up verifies with the auditors' folder: refused before any read, as `audit index` is."""
    made = _site(tmp_path)
    _file_as(made.auditor.path, made.partners["COL"].load("COL-rcpt-2026a"), "broker-sign-2026b",
             KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        catch_up_index(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"), tmp_path / "i.db")
    _one_line(info, "COL-rcpt-2026a", "broker-sign-2026b")


@pytest.mark.parametrize("verb", [["verify"], ["log"], ["recalls"], ["index", "--index", "INDEX"]])
def test_audit_commands_exit_3_on_a_folder_holding_one_key_under_two_ids(tmp_path: Path, verb: list[str]) -> None:
    """`puente audit verify|log|recalls|index` with the auditors' folder holding COL's key also as the broker's:
    exit 3, one line naming both ids, before Kafka is reached."""
    made = _site(tmp_path)
    _file_as(made.auditor.path, made.partners["COL"].load("COL-rcpt-2026a"), "broker-sign-2026b",
             KeyKind.BROKER_SIGNING)
    args = [str(tmp_path / "index.db") if word == "INDEX" else word for word in verb]
    done = _puente(made.root, tmp_path, "audit", *args)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "COL-rcpt-2026a" in done.stderr and "broker-sign-2026b" in done.stderr, done.stderr


def test_audit_verify_exits_3_on_two_verify_key_files_holding_one_key(tmp_path: Path) -> None:
    """`puente audit verify --verify-key F1 --verify-key F2`, one key in both: exit 3, one line naming both ids."""
    made = _site(tmp_path)
    forged = _file_as(tmp_path / "given", made.partners["COL"].load("COL-rcpt-2026a"), "broker-sign-2026a",
                      KeyKind.BROKER_SIGNING)
    done = _puente(made.root, tmp_path, "audit", "verify", "--verify-key",
                   str(made.auditor.path / "COL-rcpt-2026a.json"), "--verify-key", str(forged))
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "COL-rcpt-2026a" in done.stderr and "broker-sign-2026a" in done.stderr, done.stderr


# The broker's own folder: its workers' check of their chains, `audit collect-denials`


def test_the_brokers_chain_check_compares_the_keys_it_does_not_load(tmp_path: Path) -> None:
    """The workers verify their chains' heads with the broker's signing keys only; COL's receipt key, held beside
    them, saved also as broker-sign-2025z would let COL sign a head they continue: refused, naming both."""
    made = _site(tmp_path)
    _file_as(made.broker.path, made.broker.load("COL-rcpt-2026a"), "broker-sign-2025z", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        signature_check(made.broker, KeyKind.BROKER_SIGNING)
    _one_line(info, "COL-rcpt-2026a", "broker-sign-2025z")


def test_collect_denials_refuses_the_brokers_folder_holding_one_key_under_two_ids(tmp_path: Path) -> None:
    """`audit collect-denials` verifies the denials chain with the broker's folder (its own secret beside): one key
    under two ids there is refused too."""
    made = _site(tmp_path)
    _file_as(made.broker.path, made.broker.load("USA-rcpt-2026a"), "broker-sign-2025z", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        signature_checks(made.broker.path, None, signer=True)
    _one_line(info, "USA-rcpt-2026a", "broker-sign-2025z")
    assert BROKER_OWNER in str(info.value)


# A partner's subscriber: the broker's keys it verifies its feed with, its own receipt keys


def test_the_subscriber_refuses_a_folder_holding_one_key_under_two_ids(tmp_path: Path) -> None:
    """COL's folder holding its receipt key's public half also as broker-sign-2026b: the feed would verify blocks
    signed with a key that is not the broker's; refused in one line naming both ids."""
    made = _site(tmp_path)
    col = made.partners["COL"]
    _file_as(col.path, col.load("COL-rcpt-2026a"), "broker-sign-2026b", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        opener_for("COL", col.path / "COL-enc-2026a.json", None)
    _one_line(info, "COL-rcpt-2026a", "broker-sign-2026b")


def test_the_subscriber_refuses_verify_key_files_holding_one_key_under_two_ids(tmp_path: Path) -> None:
    """`subscribe --verify-key` with the broker's key given under 2026a and again as 2026b: one id was mistyped, and
    its label would make the broker's key in use look retired; refused naming both."""
    made = _site(tmp_path)
    col = made.partners["COL"]
    copy = _file_as(tmp_path / "given", col.load("broker-sign-2026a"), "broker-sign-2026b", KeyKind.BROKER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        opener_for("COL", col.path / "COL-enc-2026a.json", [col.path / "broker-sign-2026a.json", copy])
    _one_line(info, "--verify-key", "broker-sign-2026a", "broker-sign-2026b")


def test_the_receipt_signer_refuses_its_key_under_two_generations(tmp_path: Path) -> None:
    """COL's receipt key's public half also held as COL-rcpt-2025z beside it: the checker of COL's own chain would
    take one key under two generations; refused naming both."""
    made = _site(tmp_path)
    col = made.partners["COL"]
    _file_as(col.path, col.load("COL-rcpt-2026a"), "COL-rcpt-2025z", KeyKind.PARTNER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        receipt_signer("COL", col.path / "COL-enc-2026a.json", None)
    _one_line(info, "COL-rcpt-2025z", "COL-rcpt-2026a")


def test_the_receipt_signer_compares_the_keys_across_both_folders(tmp_path: Path) -> None:
    """--sign-key from another folder, its public half held beside --key as COL-rcpt-2025z: neither folder alone
    holds one key twice, but the two together do; refused naming both."""
    made = _site(tmp_path)
    col = made.partners["COL"]
    signing = col.path / "COL-rcpt-2026a.json"
    mounted = tmp_path / "mounted"
    mounted.mkdir(mode=0o700)
    os.rename(signing, mounted / signing.name)
    _file_as(col.path, Keystore(mounted).load("COL-rcpt-2026a"), "COL-rcpt-2025z", KeyKind.PARTNER_SIGNING)
    with pytest.raises(KeyMaterialError) as info:
        receipt_signer("COL", col.path / "COL-enc-2026a.json", mounted / signing.name)
    _one_line(info, "COL-rcpt-2025z", "COL-rcpt-2026a")


# An agency's adapter: the broker's key-agreement key it pairs with


def test_the_broker_key_an_agency_pairs_with_is_refused_under_two_ids(tmp_path: Path) -> None:
    """The broker's key-agreement half held in SENAN's folder as broker-kex-2026a and again as broker-kex-2026b:
    the pair id would name a key the broker may not hold under that id; refused naming both, by the shared check."""
    made = Keystore.provision(tmp_path / "keys", partners=[], agencies=["SENAN"], agreements=[], generation="2026a")
    senan = made.agencies["SENAN"]
    _file_as(senan.path, senan.load("broker-kex-2026a"), "broker-kex-2026b", KeyKind.KEY_AGREEMENT)
    with pytest.raises(KeyMaterialError) as info:
        senan.broker_key_in_use()
    _one_line(info, "broker-kex-2026a", "broker-kex-2026b", "mistyped")


def test_an_agencys_own_mac_lookup_refuses_another_agencys_key_filed_as_the_brokers(tmp_path: Path) -> None:
    """SENAFRONT's key-agreement half in SENAN's folder under its own id and again as broker-kex-2026b: the pair
    SENAN-kex-2026a+broker-kex-2026b has a MAC key SENAFRONT derives too, so the lookup SENAN's officer tools read
    its own records with is refused, naming both ids."""
    made = Keystore.provision(tmp_path / "keys", partners=[], agencies=["SENAN", "SENAFRONT"], agreements=[],
                              generation="2026a")
    senan, senafront = made.agencies["SENAN"], made.agencies["SENAFRONT"]
    theirs = senafront.load("SENAFRONT-kex-2026a")
    _file_as(senan.path, theirs, "SENAFRONT-kex-2026a", KeyKind.KEY_AGREEMENT)
    _file_as(senan.path, theirs, "broker-kex-2026b", KeyKind.KEY_AGREEMENT)
    with pytest.raises(KeyMaterialError) as info:
        lookup = own_mac_lookup(senan, "SENAN")
        # Reached only before the fix: SENAFRONT derives the MAC key SENAN's lookup takes as SENAN's own.
        as_broker = replace(theirs, key_id="broker-kex-2026b")
        forged = ingress_mac_key(as_broker, senan.load("SENAN-kex-2026a").public_only())
        assert lookup("SENAN", "SENAN-kex-2026a+broker-kex-2026b") != forged
    _one_line(info, "SENAFRONT-kex-2026a", "broker-kex-2026b")


def test_a_sign_key_file_not_named_by_its_id_is_checked_against_the_folders(tmp_path: Path) -> None:
    """A --sign-key file not named ``<id>.json`` is in no folder's listing: a copy of COL-rcpt-2026a saved as
    ``COL-rcpt-2026b`` (no suffix) is still one key under two ids, refused with both named."""
    made = Keystore.provision(tmp_path / "keys", partners=["COL"], agencies=[], agreements=[], generation="2026a")
    col = made.partners["COL"]
    rec = col.load("COL-rcpt-2026a")
    mounted = tmp_path / "mounted"
    mounted.mkdir(mode=0o700)
    copy = mounted / "COL-rcpt-2026b"
    assert rec.secret is not None
    copy.write_bytes(record_to_json(replace(rec, key_id="COL-rcpt-2026b",
                                            secret=SecretBytes(rec.secret.reveal(), key_id="COL-rcpt-2026b"))))
    copy.chmod(0o600)
    with pytest.raises(KeyMaterialError, match=r"COL-rcpt-2026a.*COL-rcpt-2026b|COL-rcpt-2026b.*COL-rcpt-2026a"):
        receipt_signer("COL", col.path / "COL-enc-2026a.json", copy)


def test_one_owners_key_under_two_kinds_is_named_as_such(tmp_path: Path) -> None:
    """The same public half as PN's encryption key and its key-agreement key: not two generations of one key."""
    made = Keystore.provision(tmp_path / "keys", partners=[], agencies=["PN"], agreements=[],
                              generation="2026a")
    kex = made.agencies["PN"].load("PN-kex-2026a")
    enc = replace(kex, key_id="PN-enc-2026a", kind=KeyKind.PARTNER_ENCRYPTION)
    with pytest.raises(KeyMaterialError, match="two kinds of PN's keys"):
        refuse_one_key_two_ids([kex, enc], "the folder")
