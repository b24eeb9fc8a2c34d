"""An agency pairs with the broker's newest key-agreement generation, never the one it happened to import last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.crypto.keys import KeyKind, compare_generations
from broker.keystore import Holder, Keystore
from puente.errors import KeyMaterialError

T0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(("a", "b", "order"), [
    ("2026a", "2026b", -1), ("2026b", "2026a", 1), ("2026a", "2026a", 0), ("2026z", "2027a", -1),
    ("9a", "10a", -1), ("2026A", "2026b", -1),
    ("2026a", "spring", None), ("2026z", "2026aa", None), ("2026A", "2026a", None), ("01", "1", None),
    ("2026", "2026a", None),
])
def test_generations_compare_only_where_their_labels_say(a: str, b: str, order: int | None) -> None:
    """Run by run, digits as numbers and letters alphabetically; labels that do not say give None, never a guess."""
    assert compare_generations(a, b) == order


def _site(tmp_path: Path, *generations: str) -> tuple[Keystore, Keystore]:
    """The broker with a key-agreement key per generation, and SENAN holding its own and none of the broker's."""
    broker, senan = Keystore(tmp_path / "broker"), Keystore(tmp_path / "SENAN")
    for i, generation in enumerate(generations):
        broker.generate_own(Holder.BROKER, "broker", generation=generation, now=T0 + timedelta(days=180 * i))
    senan.generate_own(Holder.AGENCY, "SENAN", generation="2026a", now=T0)
    broker.import_public(senan.public_pem("SENAN-kex-2026a"), "SENAN-kex-2026a", source="senan.pem", now=T0)
    return broker, senan


def _hand_over(broker: Keystore, senan: Keystore, key_id: str, minutes: int) -> None:
    senan.import_public(broker.public_pem(key_id), key_id, source=f"{key_id}.pem",
                        now=T0 + timedelta(days=181, minutes=minutes))


def test_the_broker_key_imported_last_is_not_taken_for_the_newest(tmp_path: Path) -> None:
    """broker-kex-2026b handed over first and 2026a (still in the feed documents) second: the adapter pairs with
    the one the agency names (2026b), so the broker retiring 2026a by removing its file leaves the agency's records
    verifying."""
    broker, senan = _site(tmp_path, "2026a", "2026b")
    _hand_over(broker, senan, "broker-kex-2026b", 0)
    _hand_over(broker, senan, "broker-kex-2026a", 1)
    senan.use_agency_key("broker-kex-2026b")
    mac = senan.load_agency_mac("SENAN")
    assert mac.key_id == "SENAN-kex-2026a+broker-kex-2026b"
    (broker.path / "broker-kex-2026a.json").unlink()
    assert broker.agency_mac_lookup()("SENAN", mac.key_id) == mac


def test_several_broker_generations_and_none_named_are_refused(tmp_path: Path) -> None:
    """broker-kex-2026a and broker-kex-2026b held and none named: the adapter never picks one by itself (its label
    is only what was typed at import), so it refuses in one line naming both and the command to run, before it
    MACs anything the broker could dead-letter."""
    broker, senan = _site(tmp_path, "2026a", "2026b")
    _hand_over(broker, senan, "broker-kex-2026a", 0)
    _hand_over(broker, senan, "broker-kex-2026b", 1)
    with pytest.raises(KeyMaterialError) as info:
        senan.load_agency_mac("SENAN")
    message = str(info.value)
    assert "\n" not in message and "broker-kex-2026a, broker-kex-2026b" in message and "keys use" in message


@pytest.mark.parametrize("typed", ["broker-kex-2026B", "broker-kex-2026c"])
def test_a_broker_key_imported_under_a_mistyped_id_is_never_paired_with(tmp_path: Path, typed: str) -> None:
    """The broker's rotation PEM (the right key: its fingerprint matches) imported under a mistyped id: the adapter
    keeps pairing with nothing it was not told to (it refuses until a generation is named), naming the id the
    broker's operator gave is refused since no such key is held, and importing it again under the right id is
    refused as one key under two ids. No pair id the broker lacks is ever MACed with."""
    broker, senan = _site(tmp_path, "2026a", "2026b")
    _hand_over(broker, senan, "broker-kex-2026a", 0)
    senan.import_public(broker.public_pem("broker-kex-2026b"), typed, source="broker-kex-2026b.pem",
                        now=T0 + timedelta(days=181))
    with pytest.raises(KeyMaterialError, match="names none in use"):
        senan.load_agency_mac("SENAN")
    with pytest.raises(KeyMaterialError, match=f"holds no such broker key .*{typed}"):
        senan.use_agency_key("broker-kex-2026b")
    with pytest.raises(KeyMaterialError, match=f"already holds this public key as {typed}"):
        _hand_over(broker, senan, "broker-kex-2026b", 1)
    (senan.path / f"{typed}.json").unlink()
    _hand_over(broker, senan, "broker-kex-2026b", 2)
    senan.use_agency_key("broker-kex-2026b")
    mac = senan.load_agency_mac("SENAN")
    assert broker.agency_mac_lookup()("SENAN", mac.key_id) == mac


def test_one_broker_key_under_two_ids_in_an_agencys_folder_is_refused(tmp_path: Path) -> None:
    """A file copied in by hand (skipping import's check) holding the broker's key under a second id: the adapter
    refuses in one line naming both ids, whichever it was told to pair with."""
    broker, senan = _site(tmp_path, "2026a")
    _hand_over(broker, senan, "broker-kex-2026a", 0)
    text = (senan.path / "broker-kex-2026a.json").read_text().replace("broker-kex-2026a", "broker-kex-2026b")
    (senan.path / "broker-kex-2026b.json").write_text(text)
    senan.use_agency_key("broker-kex-2026a")
    with pytest.raises(KeyMaterialError) as info:
        senan.load_agency_mac("SENAN")
    assert "broker-kex-2026a" in str(info.value) and "broker-kex-2026b" in str(info.value)


@pytest.mark.parametrize(("held", "new", "why"), [("2026nov", "2026dec", "comes before it"),
                                                  ("2026b", "2026a", "comes before it"),
                                                  ("2026a", "spring", "cannot be ordered"),
                                                  ("2026a", "2026A", "cannot be ordered"),
                                                  ("2026b", "2026b2", "cannot be ordered"),
                                                  ("2026b", "2027", "cannot be ordered"),
                                                  ("2026b", "2026ba", "cannot be ordered")])
def test_a_new_generation_must_come_after_every_one_held(tmp_path: Path, held: str, new: str, why: str) -> None:
    """The other side takes the newest label for the key in use, and the broker's workers and `audit verify` take a
    block signed by a label that comes before one already used for a retired key: a new generation whose label does
    not come after the old one's is refused in one line naming it and saying whether it comes before or cannot be
    ordered (a label of another shape: 2027 after 2026b), and nothing is written."""
    broker = Keystore(tmp_path / "broker")
    broker.generate_own(Holder.BROKER, "broker", generation=held, now=T0)
    before = sorted(p.name for p in broker.path.iterdir())
    with pytest.raises(KeyMaterialError) as info:
        broker.generate_own(Holder.BROKER, "broker", generation=new, now=T0 + timedelta(days=30))
    message = str(info.value)
    assert "\n" not in message and f"generation {new} does not come after {held}" in message
    assert f"it {why}" in message
    assert sorted(p.name for p in broker.path.iterdir()) == before


def test_a_new_generation_after_every_one_held_is_made(tmp_path: Path) -> None:
    """The control: 2026b after 2026a, 2027a after both, 10a after 9a."""
    broker = Keystore(tmp_path / "broker")
    for i, generation in enumerate(("2026a", "2026b", "2027a")):
        broker.generate_own(Holder.BROKER, "broker", generation=generation, now=T0 + timedelta(days=i))
    partner = Keystore(tmp_path / "COL")
    for i, generation in enumerate(("9a", "10a")):
        partner.generate_own(Holder.PARTNER, "COL", generation=generation, now=T0 + timedelta(days=i))
    assert broker.current("broker", KeyKind.BROKER_SIGNING).key_id == "broker-sign-2027a"


def test_one_agency_key_under_two_of_its_generations_is_refused_by_the_broker(tmp_path: Path) -> None:
    """SENAN's public half imported again under a second generation's id is refused at import, and a copy written by
    hand stops the broker's start (``broker_custody_problems``), naming both ids."""
    broker, senan = _site(tmp_path, "2026a")
    with pytest.raises(KeyMaterialError, match="already holds this public key as SENAN-kex-2026a"):
        broker.import_public(senan.public_pem("SENAN-kex-2026a"), "SENAN-kex-2026b", source="s.pem", now=T0)
    text = (broker.path / "SENAN-kex-2026a.json").read_text().replace("SENAN-kex-2026a", "SENAN-kex-2026b")
    (broker.path / "SENAN-kex-2026b.json").write_text(text)
    problems = broker.broker_custody_problems()
    assert any("SENAN-kex-2026a" in p and "SENAN-kex-2026b" in p for p in problems), problems


def test_keys_use_given_the_brokers_own_folder_says_so(tmp_path: Path) -> None:
    """`keys use broker-kex-2026b --dir <keys>/broker`: the broker's own folder, holding its key whole, is named as
    such and the agency's folder asked for, never "move it out" (which would strip the broker of its key); the
    broker's private half copied into an agency's folder is still a leak to move out."""
    broker, senan = _site(tmp_path, "2026a", "2026b")
    with pytest.raises(KeyMaterialError) as info:
        broker.use_agency_key("broker-kex-2026b")
    message = str(info.value)
    assert "the broker's folder" in message and "agency's folder with --dir" in message and "move" not in message
    assert not (broker.path / "broker-in-use").exists()
    (senan.path / "broker-kex-2026b.json").write_bytes((broker.path / "broker-kex-2026b.json").read_bytes())
    (senan.path / "broker-kex-2026b.json").chmod(0o600)
    with pytest.raises(KeyMaterialError, match=r"move .* out"):
        senan.use_agency_key("broker-kex-2026b")
