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
    2026b, so the broker retiring 2026a by removing its file leaves the agency's records verifying."""
    broker, senan = _site(tmp_path, "2026a", "2026b")
    _hand_over(broker, senan, "broker-kex-2026b", 0)
    _hand_over(broker, senan, "broker-kex-2026a", 1)
    mac = senan.load_agency_mac("SENAN")
    assert mac.key_id == "SENAN-kex-2026a+broker-kex-2026b"
    (broker.path / "broker-kex-2026a.json").unlink()
    assert broker.agency_mac_lookup()("SENAN", mac.key_id) == mac


def test_broker_generations_that_do_not_say_which_is_newest_are_refused(tmp_path: Path) -> None:
    """broker-kex-2026a and broker-kex-spring: nothing says which the broker moved to, so the adapter refuses in one
    line naming both and the agency's own folder, rather than guess from import times."""
    broker, senan = _site(tmp_path, "2026a")
    other = Keystore(tmp_path / "broker-elsewhere")  # `keys generate` refuses spring after 2026a in one folder
    other.generate_own(Holder.BROKER, "broker", generation="spring", now=T0 + timedelta(days=180))
    _hand_over(broker, senan, "broker-kex-2026a", 0)
    _hand_over(other, senan, "broker-kex-spring", 1)
    with pytest.raises(KeyMaterialError) as info:
        senan.load_agency_mac("SENAN")
    message = str(info.value)
    assert "\n" not in message and "broker-kex-2026a, broker-kex-spring" in message and str(senan.path) in message


@pytest.mark.parametrize(("held", "new"), [("2026nov", "2026dec"), ("2026b", "2026a"), ("2026a", "spring"),
                                           ("2026a", "2026A"), ("2026b", "2026b2")])
def test_a_new_generation_must_come_after_every_one_held(tmp_path: Path, held: str, new: str) -> None:
    """The other side takes the newest label for the key in use, and the broker's workers and `audit verify` take a
    block signed by a label that comes before one already used for a retired key: a new generation whose label does
    not come after the old one's is refused in one line naming it, and nothing is written."""
    broker = Keystore(tmp_path / "broker")
    broker.generate_own(Holder.BROKER, "broker", generation=held, now=T0)
    before = sorted(p.name for p in broker.path.iterdir())
    with pytest.raises(KeyMaterialError) as info:
        broker.generate_own(Holder.BROKER, "broker", generation=new, now=T0 + timedelta(days=30))
    message = str(info.value)
    assert "\n" not in message and f"generation {new} does not come after {held}" in message
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
