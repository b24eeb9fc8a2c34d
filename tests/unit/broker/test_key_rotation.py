"""Key rotation on either side leaves a partner's feed readable: the subscriber holds every generation it is given.

The partner's encryption key rotating (the policy then names the new one) and the broker's signing key rotating
(the partner imports the new public half) must not strand the records already in the feed: the subscriber
never commits past a record it cannot open, so one it could not open would stop its feed for good.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import puente.commands.subscribe as subscribe_command
from broker.crypto import FeedSealer, KeyKind
from broker.kafka import KafkaConnection
from broker.keystore import Keystore
from broker.partner import opener_for
from puente.cli import build_parser
from puente.errors import ConfigError, DecryptionError, KeyMaterialError, SignatureError

NO_KAFKA = KafkaConnection(bootstrap="kafka:9092")  # commands reach no Kafka here: every call is stubbed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONTEXT = {"topic": "t.feed.COL", "schema_fp": b"12345678", "policy_version": "p", "agreement": "COMBIFRON"}


class Site:
    """The broker's and COL's keystores, each party making its own keys and importing public halves only."""

    def __init__(self, root: Path) -> None:
        self.broker = Keystore(root / "broker")
        self.col = Keystore(root / "partners" / "COL")
        self.sign_a = self.broker.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=T0)
        self.hand_to_col(self.sign_a.key_id, T0)
        self.enc_a = self.col.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=T0)

    def hand_to_col(self, key_id: str, now: datetime) -> None:
        self.col.import_public(self.broker.public_pem(key_id), key_id, source="test", now=now)

    def file(self, key_id: str) -> Path:
        return self.col.path / f"{key_id}.json"

    def seal(self, enc_key_id: str, alert_id: str) -> bytes:
        """A record of COL's feed as the broker seals it now: to COL's key ``enc_key_id``, signed by its current key."""
        public = self.col.load(enc_key_id).x25519_public()
        sealer = FeedSealer("COL", public, self.broker.load_signing_key())
        return sealer.seal(b"view of " + alert_id.encode(), alert_id=alert_id, now=T0, **CONTEXT)  # type: ignore[arg-type]


def opens(opener: Any, value: bytes, alert_id: str) -> bytes:
    return bytes(opener.open(value, alert_id=alert_id, **CONTEXT))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_after_the_partners_key_rotates_the_backlog_and_new_records_both_open(site: Site) -> None:
    """The policy now names COL-enc-2026b; records already in the feed were sealed to 2026a. The subscriber, given
    either generation as --key, opens both: the other generation beside it is loaded too."""
    backlog = site.seal("COL-enc-2026a", "old")
    site.col.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026b", now=T0 + timedelta(days=30))
    fresh = site.seal("COL-enc-2026b", "new")
    for key in ("COL-enc-2026a", "COL-enc-2026b"):
        opener = opener_for("COL", site.file(key), None, expected_key_id="COL-enc-2026b")
        assert opens(opener, backlog, "old") == b"view of old" and opens(opener, fresh, "new") == b"view of new"
        assert opener.key_ids[0] == "COL-enc-2026b"  # the key the broker seals for now is tried first


def test_the_key_the_policy_names_must_be_held(site: Site) -> None:
    """The policy names a key the subscriber does not hold: refused at start, naming the key and the folder, rather
    than stopping at the first new record."""
    with pytest.raises(KeyMaterialError) as info:
        opener_for("COL", site.file("COL-enc-2026a"), None, expected_key_id="COL-enc-2026b")
    message = str(info.value)
    assert "COL-enc-2026b" in message and str(site.col.path) in message and "held: COL-enc-2026a" in message


def test_a_record_sealed_to_a_generation_no_longer_held_stays_a_clear_error(site: Site) -> None:
    """Fail closed: a backlog record sealed to a generation deleted from the folder does not open, and the error
    names the generations held."""
    backlog = site.seal("COL-enc-2026a", "old")
    site.col.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026b", now=T0 + timedelta(days=30))
    site.file("COL-enc-2026a").unlink()
    opener = opener_for("COL", site.file("COL-enc-2026b"), None, expected_key_id="COL-enc-2026b")
    with pytest.raises(DecryptionError, match="does not unwrap with partner 'COL''s private key\\(s\\) COL-enc-2026b"):
        opens(opener, backlog, "old")


def test_another_partners_decryption_keys_are_never_loaded(site: Site) -> None:
    """Only COL's own decryption keys are taken from the folder: a USA key lying there is not tried, and a --key of
    another partner is refused as before."""
    usa = site.col.generate(KeyKind.PARTNER_ENCRYPTION, "USA", generation="2026a", now=T0)
    opener = opener_for("COL", site.file("COL-enc-2026a"), None)
    assert opener.key_ids == ("COL-enc-2026a",)
    with pytest.raises(KeyMaterialError, match="is not a decryption key of COL"):
        opener_for("COL", site.file(usa.key_id), None)


def test_an_unusable_generation_beside_the_key_stops_the_start_naming_it(site: Site) -> None:
    """Every generation is checked: an old one left readable by others is refused in one line naming it and what to
    run, not skipped (the records sealed to it would then stop the feed later, with no word why)."""
    site.col.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026b", now=T0 + timedelta(days=30))
    site.file("COL-enc-2026a").chmod(0o644)
    with pytest.raises(KeyMaterialError) as info:
        opener_for("COL", site.file("COL-enc-2026b"), None, expected_key_id="COL-enc-2026b")
    message = str(info.value)
    assert "COL-enc-2026a" in message and "chmod 600" in message and "\n" not in message


def test_after_the_broker_rotates_its_signing_key_old_and_new_blocks_verify(site: Site) -> None:
    """The broker made broker-sign-2026b and COL imported its public half (so it is COL's newest import): records
    the broker signed before (2026a, still unread) and after (2026b) both verify with the keys beside --key."""
    old = site.seal("COL-enc-2026a", "old")
    later = T0 + timedelta(days=30)
    site.broker.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026b", now=later)
    site.hand_to_col("broker-sign-2026b", later)
    new = site.seal("COL-enc-2026a", "new")
    opener = opener_for("COL", site.file("COL-enc-2026a"), None)
    assert opens(opener, old, "old") == b"view of old" and opens(opener, new, "new") == b"view of new"


def test_verify_key_may_be_given_once_per_generation_and_stays_strict(site: Site) -> None:
    """--verify-key given twice takes both generations; given only the new one, a block the old one signed is
    refused; a key of any other kind or owner among them is refused at start."""
    old = site.seal("COL-enc-2026a", "old")
    site.broker.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026b", now=T0 + timedelta(days=30))
    site.hand_to_col("broker-sign-2026b", T0 + timedelta(days=30))
    both = [site.file("broker-sign-2026b"), site.file("broker-sign-2026a")]
    assert opens(opener_for("COL", site.file("COL-enc-2026a"), both), old, "old") == b"view of old"
    with pytest.raises(SignatureError):
        opens(opener_for("COL", site.file("COL-enc-2026a"), [both[0]]), old, "old")
    receipt = site.col.generate(KeyKind.PARTNER_SIGNING, "COL", generation="2026a", now=T0)
    with pytest.raises(KeyMaterialError, match="is not the broker's signing key"):
        opener_for("COL", site.file("COL-enc-2026a"), [both[0], site.file(receipt.key_id)])


def test_the_keystore_gives_only_the_brokers_signing_keys_to_verify_with(site: Site) -> None:
    """load_verify_keys takes every broker-sign-<g> held, newest first, and nothing else of the folder (COL's own
    receipt key, an Ed25519 key too, is not one of them)."""
    site.col.generate(KeyKind.PARTNER_SIGNING, "COL", generation="2026a", now=T0 + timedelta(days=60))
    site.broker.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026b", now=T0 + timedelta(days=30))
    site.hand_to_col("broker-sign-2026b", T0 + timedelta(days=30))
    assert list(site.col.load_verify_keys()) == ["broker-sign-2026b", "broker-sign-2026a"]
    with pytest.raises(KeyMaterialError, match="no broker-signing key"):
        Keystore(site.col.path.parent / "nowhere").load_verify_keys()


def test_subscribe_takes_verify_key_more_than_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`puente subscribe --verify-key A --verify-key B` hands both files to the subscriber, in that order."""
    seen: dict[str, Any] = {}

    def subscriber_for(cfg: Any, conn: Any, partner: str, key: Path, verify: Any, *rest: Any, **kw: Any) -> Any:
        seen["verify"] = verify
        raise ConfigError("stop here")

    monkeypatch.setattr(subscribe_command, "subscriber_for", subscriber_for)
    monkeypatch.setattr(subscribe_command, "kafka", lambda cfg, name: NO_KAFKA)
    monkeypatch.setenv("PUENTE_KEYS", str(tmp_path))
    args: argparse.Namespace = build_parser().parse_args(
        ["subscribe", "--partner", "COL", "--key", "k.json", "--verify-key", "a.json", "--verify-key", "b.json"])
    with pytest.raises(ConfigError, match="stop here"):
        args.func(args)
    assert seen["verify"] == [Path("a.json"), Path("b.json")]


def test_a_partner_refuses_the_brokers_private_signing_key(site: Site) -> None:
    """The broker's signing key with its private half, copied into COL's folder or given as --verify-key, is not a
    key to verify with: refused at start, naming the file, whichever way it comes."""
    leaked = site.broker.path / "broker-sign-2026a.json"
    with pytest.raises(KeyMaterialError, match="which only the broker holds"):
        opener_for("COL", site.file("COL-enc-2026a"), [leaked])
    (site.col.path / "broker-sign-2026a.json").write_bytes(leaked.read_bytes())
    (site.col.path / "broker-sign-2026a.json").chmod(0o600)
    with pytest.raises(KeyMaterialError, match="which only broker may hold"):
        site.col.load_verify_keys()
    with pytest.raises(KeyMaterialError, match="which only broker may hold"):
        opener_for("COL", site.file("COL-enc-2026a"), None)


def test_the_brokers_private_key_as_verify_key_is_never_to_be_removed(site: Site) -> None:
    """--verify-key naming the broker's own signing key file, in the broker's folder: the one line says to pass its
    public half, with the commands that make it, and never to remove that file (the broker's only signing key)."""
    own = site.broker.path / "broker-sign-2026a.json"
    with pytest.raises(KeyMaterialError) as info:
        opener_for("COL", site.file("COL-enc-2026a"), [own])
    message = str(info.value)
    assert "\n" not in message and "remove" not in message and "delete" not in message
    assert f"--verify-key {own}: holds the private half of broker-sign-2026a" in message
    assert "puente keys export-public broker-sign-2026a" in message
    assert f"puente keys import-public FILE.pem --id broker-sign-2026a --dir {site.col.path}" in message
    assert own.exists()
