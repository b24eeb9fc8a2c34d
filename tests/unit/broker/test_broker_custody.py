"""The broker's start refuses a folder holding another party's private half or one public key under two owners."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.crypto.keys import KeyKind, new_key
from broker.kafka import KafkaConnection
from broker.keystore import Holder, Keystore, Keystores, others_keys_problem
from broker.service import build_worker
from puente.errors import ConfigError, KeyMaterialError
from puente.settings import AGENCIES, PuenteSettings

PARTNERS = ["COL", "USA", "CRI", "FEAN"]
AGREEMENTS = ["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"]
NOW = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def made(tmp_path: Path) -> Keystores:
    """A site as `puente keys init` makes it: every party's keys in its own folder."""
    return Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")


def _start(made: Keystores) -> str:
    """The one line build_worker refuses with."""
    with pytest.raises(ConfigError) as info:
        build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)
    message = str(info.value)
    assert "\n" not in message and "will not start" in message
    return message


def _copy_as(folder: Path, source: str, key_id: str) -> None:
    """``source``'s file copied by hand under ``key_id``, as `keys import-public` would never write it."""
    doc = json.loads((folder / f"{source}.json").read_text("utf-8"))
    doc["key_id"] = key_id
    (folder / f"{key_id}.json").write_text(json.dumps(doc), "utf-8")


def test_a_provisioned_broker_folder_has_no_custody_problem(made: Keystores) -> None:
    """The control: the broker's own secrets (signing, key agreement, a pseudonym key per agreement) and others'
    public halves are no problem, nor is a pseudonym key of an agreement no policy names (the broker made it)."""
    made.broker.put(new_key(KeyKind.PSEUDONYM, "OLD-AGREEMENT", "2025a", NOW))
    assert made.broker.broker_custody_problems() == []


def test_two_agencies_holding_one_key_agreement_key_stop_the_start(made: Keystores) -> None:
    """SENAFRONT's public half copied in by hand as SENAN's: the broker would take SENAFRONT's MACs as SENAN's;
    the start stops with one line naming both key ids, and no key bytes."""
    folder = made.broker.path
    _copy_as(folder, "SENAFRONT-kex-2026a", "SENAN-kex-2026a")
    message = _start(made)
    assert "SENAN-kex-2026a" in message and "SENAFRONT-kex-2026a" in message and "same public key" in message
    public = json.loads((folder / "SENAN-kex-2026a.json").read_text("utf-8"))["public"]
    assert public not in message and base64.b64decode(public).hex() not in message


def test_one_public_key_under_two_owners_of_any_kind_is_found(made: Keystores) -> None:
    """COL's receipt key copied in as USA's: a public half under two owners is found whatever the kind."""
    _copy_as(made.broker.path, "COL-rcpt-2026a", "USA-rcpt-2026a")
    problems = made.broker.broker_custody_problems()
    assert len(problems) == 1 and "USA-rcpt-2026a" in problems[0] and "COL-rcpt-2026a, COL's" in problems[0]


def test_a_partners_receipt_private_key_in_the_broker_folder_stops_the_start(made: Keystores) -> None:
    """COL's receipt key with its private half, which the broker never loads: still a leak, so the start stops,
    naming the file."""
    target = made.broker.path / "COL-rcpt-2026a.json"
    shutil.copy(made.partners["COL"].path / "COL-rcpt-2026a.json", target)
    target.chmod(0o600)
    message = _start(made)
    assert "holds COL's private half" in message and str(target) in message


def test_the_private_key_of_a_partner_no_policy_names_stops_the_start(made: Keystores, tmp_path: Path) -> None:
    """ZZZ, a partner no policy names, has its private encryption key in the broker's folder: refused, named."""
    other = Keystore(tmp_path / "zzz")
    other.generate_own(Holder.PARTNER, "ZZZ", generation="2026a", now=NOW)
    shutil.copy(other.path / "ZZZ-enc-2026a.json", made.broker.path / "ZZZ-enc-2026a.json")
    message = _start(made)
    assert "holds ZZZ's private half" in message and str(made.broker.path / "ZZZ-enc-2026a.json") in message


def test_a_private_key_in_the_brokers_name_it_never_makes_is_refused(made: Keystores) -> None:
    """broker-enc-2026a with its secret: the broker makes no encryption key, so whose it is nothing says."""
    made.broker.put(new_key(KeyKind.PARTNER_ENCRYPTION, "broker", "2026a", NOW))
    problems = made.broker.broker_custody_problems()
    assert len(problems) == 1 and "broker-enc-2026a" in problems[0] and "never makes" in problems[0]


def test_a_file_that_is_no_key_file_is_named(made: Keystores) -> None:
    """A key file that does not parse could hold anyone's secret: named, with what to do."""
    (made.broker.path / "XYZ-enc-2026a.json").write_text("{", "utf-8")
    problems = made.broker.broker_custody_problems()
    assert len(problems) == 1 and "XYZ-enc-2026a" in problems[0] and "fix it, or move it out of" in problems[0]


def test_a_public_half_with_a_loose_mode_is_no_custody_problem(made: Keystores) -> None:
    """Whose key a file holds does not depend on its mode: a group-writable public half is the sealing check's
    problem (a warning while no agreement in force delivers to it), not a custody one."""
    (made.broker.path / "COL-enc-2026a.json").chmod(0o664)
    assert made.broker.broker_custody_problems() == []


def _copy_private(made: Keystores, name: str) -> Path:
    """COL's private encryption key copied by hand into the broker's folder as ``name``."""
    target = made.broker.path / name
    target.parent.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(made.partners["COL"].path / "COL-enc-2026a.json", target)
    target.chmod(0o600)
    return target


@pytest.mark.parametrize("name", ["COL-enc-2026a.json.bak", "backup/COL-enc-2026a.json", ".COL-enc-2026a.json",
                                  "COL-enc-2026a.JSON", "COL-enc-2026a (copy).json", "COL-enc-2026a.json~"])
def test_a_partners_private_key_under_another_name_stops_the_start(made: Keystores, name: str) -> None:
    """A backup copy of COL's private key (.bak, ~, a subfolder) is as leaked as one named as a key file: the start
    stops, naming the file or the folder holding it, whatever the name."""
    target = _copy_private(made, name)
    message = _start(made)
    named = made.broker.path / name.split("/")[0]
    assert f"{named}:" in message and "move it out" in message
    assert json.loads(target.read_text("utf-8"))["secret"] not in message


def test_a_partners_private_key_under_a_name_the_keystore_writes_stops_the_start(made: Keystores) -> None:
    """COL's private key as the login file or as a crashed write's temporary file: the names the keystore writes
    are skipped only for what they hold, never a key the broker does not make."""
    for name in ("client.properties", ".COL-enc-2026a.json.0123456789ab.tmp", "SENAN-mac-2025a.json"):
        target = _copy_private(made, name)
        problems = made.broker.broker_custody_problems()
        assert len(problems) == 1 and f"{target}:" in problems[0] and "holds a private key" in problems[0], name
        target.unlink()


def test_what_the_keystore_itself_writes_in_the_folder_is_no_custody_problem(made: Keystores) -> None:
    """The control: a login, an in-use file, a retired agency-mac key and the temporary files of crashed writes
    (one cut short, one of the broker's own key) are the keystore's own, not a stray key."""
    folder = made.broker.path
    (folder / "client.properties").write_text("security.protocol=SASL_SSL\n", "utf-8")
    (folder / "in-use").write_text("broker-kex-2026a\n", "utf-8")
    retired = {"key_id": "SENAN-mac-2025a", "kind": "agency-mac", "created_at": NOW.isoformat(),
               "secret": base64.b64encode(bytes(32)).decode()}
    (folder / "SENAN-mac-2025a.json").write_text(json.dumps(retired), "utf-8")
    (folder / ".COL-enc-2026b.json.00112233aabb.tmp").write_text('{"key_id": "COL-en', "utf-8")
    shutil.copy(folder / "broker-sign-2026a.json", folder / ".broker-sign-2026a.json.445566778899.tmp")
    assert made.broker.broker_custody_problems() == []


def test_a_stray_name_is_shown_on_one_line(made: Keystores) -> None:
    """A file name holding a line break cannot split the refusal into lines that seem the broker's own."""
    (made.broker.path / "x\nkey ok").write_text("", "utf-8")
    problems = made.broker.broker_custody_problems()
    assert len(problems) == 1 and "\n" not in problems[0] and "x\\nkey ok" in problems[0]


def _disguised(made: Keystores, source: str, key_id: str, kind: str) -> Path:
    """``source``'s private half (a partner's or an agency's, from its own folder) rewritten by hand as a ``kind``
    key named ``key_id`` in the broker's folder: a kind the broker may hold the secret of, with no public half to
    compare."""
    owner = source.split("-")[0]
    folder = made.partners[owner].path if owner in made.partners else made.agencies[owner].path
    doc = json.loads((folder / f"{source}.json").read_text("utf-8"))
    disguised = {"key_id": key_id, "kind": kind, "created_at": NOW.isoformat(), "secret": doc["secret"]}
    target = made.broker.path / f"{key_id}.json"
    target.write_text(json.dumps(disguised), "utf-8")
    target.chmod(0o600)
    return target


@pytest.mark.parametrize(("source", "key_id", "kind"), [
    ("COL-enc-2026a", "SENAN-mac-2025a", "agency-mac"),  # as a retired MAC key, under the name the keystore keeps
    ("SENAN-kex-2026a", "SENAN-mac-2025a", "agency-mac"),  # an agency's own key-agreement key, under its name
    ("COL-enc-2026a", "COMBIFRON-pseudo-2024a", "pseudonym"),  # as a pseudonym key of an agreement
    ("USA-rcpt-2026a", "PAN-USA-pseudo-2024a", "pseudonym"),  # a signing key, as a pseudonym key
    ("COL-enc-2026a", "COL-pseudo-2024a", "pseudonym"),  # under its own owner's id
    ("COL-rcpt-2026a", "COL-pseudo-2024b", "pseudonym"),
])
def test_a_partners_private_key_called_by_another_kind_stops_the_start(made: Keystores, source: str, key_id: str,
                                                                       kind: str) -> None:
    """A partner's private key whose file calls it a kind the broker holds secrets of (a retired MAC key, a
    pseudonym key) has no public half to give it away, but its bytes are the private half of the partner's public
    key the broker holds: the start stops, naming the file and whose key it is, never the key."""
    target = _disguised(made, source, key_id, kind)
    message = _start(made)
    assert f"{target} holds the private half of {source}" in message
    assert json.loads(target.read_text("utf-8"))["secret"] not in message


def test_a_secret_that_is_no_ones_private_half_is_no_custody_problem(made: Keystores) -> None:
    """The control for the above: a retired MAC key and a pseudonym key of random bytes are the broker's own."""
    made.broker.put(new_key(KeyKind.PSEUDONYM, "OLD-AGREEMENT", "2024a", NOW))
    retired = {"key_id": "SENAN-mac-2025a", "kind": "agency-mac", "created_at": NOW.isoformat(),
               "secret": base64.b64encode(bytes(range(32))).decode()}
    (made.broker.path / "SENAN-mac-2025a.json").write_text(json.dumps(retired), "utf-8")
    assert made.broker.broker_custody_problems() == []


def test_a_signing_key_made_last_whose_label_comes_before_an_older_ones_stops_the_start(made: Keystores) -> None:
    """broker-sign-2026dec made after 2026nov (a folder filled by hand: `keys generate` refuses it): the broker
    would sign with 2026dec while its workers and `audit verify` take 2026nov for the newer key, so every block
    it signs would be a retired key's. Every signer loads its key through ``broker_signing_keys`` (the workers,
    and `audit collect-denials` by ``load_signing_key``): it refuses in one line naming both and what to do, and
    the start stops."""
    later = datetime.now(UTC)  # after the provisioned 2026a
    made.broker.put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026nov", later + timedelta(days=1)))
    made.broker.put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026dec", later + timedelta(days=2)))
    with pytest.raises(KeyMaterialError) as info:
        build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)
    message = str(info.value)
    assert "\n" not in message and "broker-sign-2026dec, made last" in message
    assert "broker-sign-2026nov's generation comes after" in message and "--generation" in message
    with pytest.raises(KeyMaterialError):
        made.broker.load_signing_key()
    made.broker.put(new_key(KeyKind.BROKER_SIGNING, "broker", "2027a", later + timedelta(days=3)))
    made.broker.load_signing_key()  # a generation after both: signed with, the old ones kept for verifying


def test_a_login_users_apply_left_pending_is_no_custody_problem(made: Keystores) -> None:
    """`users apply` writes the broker's next client configuration under a hidden name before Kafka takes its
    password, and keeps it when stopped before it knows (``broker.credentials.apply_users``): the broker still
    starts, rather than call it a file it does not keep."""
    pending = made.broker.path / ".client.properties.pending"
    pending.write_text("bootstrap.servers=127.0.0.1:9093\nsasl.username=broker\n")
    pending.chmod(0o600)
    assert made.broker.broker_custody_problems() == []


def test_an_older_signing_key_kept_as_its_public_half_only_does_not_sign(made: Keystores) -> None:
    """broker-sign-2026c made, 2026a's private half removed and its public half imported back to verify the blocks
    2026a signed: the imported half is dated when it was imported, yet the broker signs with 2026c (the start
    refused it as "made last" before), and both verify."""
    later = datetime.now(UTC)
    made.broker.put(new_key(KeyKind.BROKER_SIGNING, "broker", "2026c", later + timedelta(days=1)))
    pem = made.broker.public_pem("broker-sign-2026a")
    (made.broker.path / "broker-sign-2026a.json").unlink()
    made.broker.import_public(pem, "broker-sign-2026a", source="backup", now=later + timedelta(days=2))
    found = made.broker.broker_signing_keys()
    assert [r.key_id for r in found] == ["broker-sign-2026c", "broker-sign-2026a"] and found[1].secret is None
    made.broker.load_signing_key()
    worker = build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"),
                          audit_kept_forever=False)[0]
    # The imported half is dated when it was imported: the workers take it as possibly as old as the chain, so a
    # head a leaked 2026a signed is checked against every block since, not only those after its import.
    assert set(worker.config.generations) == {"broker-sign-2026c", "broker-sign-2026a"}
    assert set(worker.config.generations_made) == {"broker-sign-2026c"}


@pytest.mark.parametrize("encode", [
    lambda raw: raw.hex(),  # hex
    lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),  # url-safe, unpadded
    lambda raw: base64.b64encode(raw).decode()[:20] + "\n" + base64.b64encode(raw).decode()[20:],  # a line break in it
    lambda raw: base64.b64encode(raw + b"\0").decode(),  # 33 bytes
])
def test_a_retired_mac_file_whose_secret_does_not_read_as_a_key_stops_the_start(made: Keystores, encode: Any) -> None:
    """A retired MAC key's secret is compared with every public key held (a partner's private key called by another
    kind); one written so that it does not read as a key (hex, url-safe base64, a line break, a byte too many) would
    escape the comparison: refused, naming the file, never the secret."""
    raw = base64.b64decode(json.loads((made.partners["COL"].path / "COL-enc-2026a.json").read_text("utf-8"))["secret"])
    written = encode(raw)
    doc = {"key_id": "SENAN-mac-2025a", "kind": "agency-mac", "created_at": NOW.isoformat(), "secret": written}
    target = made.broker.path / "SENAN-mac-2025a.json"
    target.write_text(json.dumps(doc), "utf-8")
    problems = made.broker.broker_custody_problems()
    assert len(problems) == 1 and f"{target}: holds a secret that does not read as a key" in problems[0]
    assert written not in problems[0] and raw.hex() not in problems[0]


def test_other_parties_private_keys_in_the_keys_root_stop_the_start_unless_a_trial(made: Keystores,
                                                                                  tmp_path: Path) -> None:
    """A keys root holding partners' and agencies' private keys beside the broker's folder (every party's keys made on
    one machine, in whatever order) stops the start in one line naming those files, not the public halves the
    auditors hold, and no key bytes; a backup of the broker's own key there is no one else's; the mark a single-site
    set-up leaves lets the trial start."""
    shutil.copy(made.broker.path / "broker-sign-2026a.json", made.root / "broker-sign-2026a.json.bak")
    (made.root / "single-site-trial").unlink()
    message = _start(made)
    assert str(made.partners["COL"].path / "COL-enc-2026a.json") in message
    assert str(made.agencies["SENAN"].path / "SENAN-kex-2026a.json") in message
    assert "and 7 more" in message and "`puente keys init --trial`" in message  # 5 agencies' and 4 partners' keys
    assert "auditor" not in message and "broker-sign-2026a.json.bak" not in message
    secret = json.loads((made.partners["COL"].path / "COL-enc-2026a.json").read_text("utf-8"))["secret"]
    assert secret not in message and base64.b64decode(secret).hex() not in message
    Keystore.provision(made.root, partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                       generation="2026a")  # `keys init --trial` marks it again, keeping every key
    build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)


def test_a_partners_keys_made_before_the_brokers_stop_the_start(tmp_path: Path) -> None:
    """The order the guard by looks missed: a partner's keys made in a fresh keys root (``--dir`` anywhere inside
    it), then the broker's, still stop the broker's start naming the partner's files; moved out, the start goes on
    past the custody check."""
    root = tmp_path / "keys"
    Keystore(root / "elsewhere" / "col").generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    Keystore(root / "broker").generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW,
                                           agreements=AGREEMENTS)
    message = _start(Keystores(root, Keystore(root / "broker"), {}, {}, Keystore(root / "auditor")))
    assert str(root / "elsewhere" / "col" / "COL-enc-2026a.json") in message and "move them out" in message
    shutil.move(root / "elsewhere", tmp_path / "col-usb")
    with pytest.raises(ConfigError) as info:  # the next check: partners the policy names have no keys here
        build_worker(PuenteSettings(keys=root), KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)
    assert "other than the broker" not in str(info.value)


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux's /proc")
def test_a_file_that_fails_to_read_is_passed_over_in_the_keys_root() -> None:
    """A file the walk of the keys root opens but cannot read (/proc/self's files fail with EINVAL or EIO, as a failing
    disk's or a stale mount's would) is passed over: no OSError reaches the broker's start."""
    assert others_keys_problem(Path("/proc/self")) is None
