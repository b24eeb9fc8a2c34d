"""Retiring a key-agreement key (``Keystore.retire_kex``): the broker derives no MAC pair with it again, for good.

Every generation held on either side once verified for ever, so an agency's leaked old key kept MACing records taken
as the agency's after the rotation; removing its file lasted only until its PEM was imported again. The retired list
names each key by its id and its public half, and fails closed when it does not read.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from broker.crypto.keys import KeyKind
from broker.keystore import RETIRED_KEX, Keystore
from puente.errors import KeyMaterialError, KeyUnusable

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
OLD, NEW = "SNM-kex-2026a+broker-kex-2026a", "SNM-kex-2026b+broker-kex-2026a"


class Site(NamedTuple):
    """The broker's folder and SNM's, SNM rotated to 2026b, both public halves imported into the broker's."""

    broker: Keystore
    snm: Keystore


def _hand_over(source: Keystore, key_id: str, dest: Keystore, as_id: str | None = None) -> None:
    dest.import_public(source.public_pem(key_id), as_id or key_id, source=key_id, now=NOW)


def _site(tmp_path: Path, *, rotated: bool = True) -> Site:
    broker, snm = Keystore(tmp_path / "broker"), Keystore(tmp_path / "SNM")
    broker.generate(KeyKind.KEY_AGREEMENT, "broker", generation="2026a", now=NOW)
    for generation in ("2026a", "2026b") if rotated else ("2026a",):
        snm.generate(KeyKind.KEY_AGREEMENT, "SNM", generation=generation, now=NOW)
        _hand_over(snm, f"SNM-kex-{generation}", broker)
    return Site(broker, snm)


def _answers(store: Keystore) -> dict[str, bool]:
    lookup = store.agency_mac_lookup()
    return {pair: lookup("SNM", pair) is not None for pair in (OLD, NEW)}


def test_a_retired_agency_key_is_in_no_pair(tmp_path: Path) -> None:
    """Both generations verify after a rotation; once the old one is retired, no pair with it is derived, and the
    new one still verifies."""
    site = _site(tmp_path)
    assert _answers(site.broker) == {OLD: True, NEW: True}
    record, done = site.broker.retire_kex("SNM-kex-2026a")
    assert done and record.key_id == "SNM-kex-2026a"
    assert _answers(site.broker) == {OLD: False, NEW: True}
    assert site.broker.retire_kex("SNM-kex-2026a")[1] is False  # retired already: nothing changes
    assert site.broker.broker_custody_problems() == []  # the list is a file the broker's folder keeps


def test_a_retired_key_imported_again_stays_refused(tmp_path: Path) -> None:
    """Its file removed and its PEM imported again, under its id or another, is refused and stores nothing; a copy
    put back by hand under its id is in no pair; under another id it refuses the whole table at start, and a
    running broker's re-read leaves it out, naming it."""
    site = _site(tmp_path)
    site.broker.retire_kex("SNM-kex-2026a")
    kept = (site.broker.path / "SNM-kex-2026a.json.retired").read_bytes()
    assert not (site.broker.path / "SNM-kex-2026a.json").exists()  # moved aside by the retire
    for as_id in ("SNM-kex-2026a", "SNM-kex-2026c"):
        with pytest.raises(KeyMaterialError, match="SNM-kex-2026a was retired"):
            _hand_over(site.snm, "SNM-kex-2026a", site.broker, as_id)
        assert not (site.broker.path / f"{as_id}.json").exists()
    now = [0.0]
    told: list[str] = []
    running = site.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0], on_problem=told.append)
    copy = site.broker.path / "SNM-kex-2026a.json"
    copy.write_bytes(kept)
    os.chmod(copy, 0o644)
    assert _answers(site.broker) == {OLD: False, NEW: True}
    doc = json.loads(kept)
    doc["key_id"] = "SNM-kex-2026c"
    other = site.broker.path / "SNM-kex-2026c.json"
    other.write_text(json.dumps(doc))
    os.chmod(other, 0o644)
    with pytest.raises(KeyMaterialError, match="holds the public key of SNM-kex-2026a, retired"):
        site.broker.agency_mac_lookup()
    now[0] = 10.0
    assert running("SNM", "SNM-kex-2026c+broker-kex-2026a") is None
    assert running("SNM", OLD) is None and running("SNM", NEW) is not None
    assert any("SNM-kex-2026c" in problem and "retired" in problem for problem in told), told


def test_a_running_broker_stops_taking_a_key_once_retired(tmp_path: Path) -> None:
    """A running broker's lookup reads the folder again once its time moved and the interval passed: the retired key
    stops verifying then, without a restart."""
    site = _site(tmp_path)
    now = [0.0]
    lookup = site.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0])
    assert lookup("SNM", OLD) is not None
    site.broker.retire_kex("SNM-kex-2026a")
    now[0] = 5.0
    assert lookup("SNM", OLD) is None and lookup("SNM", NEW) is not None


def test_the_only_key_is_retired_only_when_forced(tmp_path: Path) -> None:
    """Retiring an owner's only key left unretired is refused, writing nothing, unless forced (a leaked key): the
    agency's own, or the broker's, whose retirement drops every pair with it."""
    site = _site(tmp_path, rotated=False)
    with pytest.raises(KeyMaterialError, match=r"only key-agreement key .* not retired.*--force"):
        site.broker.retire_kex("SNM-kex-2026a")
    assert not (site.broker.path / RETIRED_KEX).exists()
    with pytest.raises(KeyMaterialError, match="only key-agreement key"):
        site.broker.retire_kex("broker-kex-2026a")
    assert site.broker.retire_kex("SNM-kex-2026a", force=True)[1]
    assert site.broker.agency_mac_lookup()("SNM", OLD) is None
    site.broker.generate(KeyKind.KEY_AGREEMENT, "broker", generation="2026b", now=NOW)
    site.snm.generate(KeyKind.KEY_AGREEMENT, "SNM", generation="2026b", now=NOW)
    _hand_over(site.snm, "SNM-kex-2026b", site.broker)
    lookup = site.broker.agency_mac_lookup()
    assert lookup("SNM", NEW) is not None and lookup("SNM", "SNM-kex-2026b+broker-kex-2026b") is not None
    site.broker.retire_kex("broker-kex-2026a")
    lookup = site.broker.agency_mac_lookup()
    assert lookup("SNM", NEW) is None and lookup("SNM", "SNM-kex-2026b+broker-kex-2026b") is not None


def test_retire_refuses_what_is_no_retirement(tmp_path: Path) -> None:
    """Not a key-agreement key, a key not held (it is retired by its public half), and an agency's own folder (it
    stops using a key with `keys use`) are refused, writing nothing."""
    site = _site(tmp_path)
    with pytest.raises(KeyMaterialError, match="not a key-agreement key"):
        site.broker.retire_kex("SNM-sign-2026a")
    with pytest.raises(KeyMaterialError, match="holds no such key"):
        site.broker.retire_kex("SNM-kex-2026z")
    with pytest.raises(KeyMaterialError, match="holds an agency's own key"):
        site.snm.retire_kex("SNM-kex-2026a")
    assert not (site.broker.path / RETIRED_KEX).exists() and not (site.snm.path / RETIRED_KEX).exists()


@pytest.mark.parametrize("spoil", ["garbled", "writable"])
def test_a_retired_list_that_does_not_read_fails_closed(tmp_path: Path, spoil: str) -> None:
    """A retired list that does not read (a line not as `keys retire` writes it, or one others may rewrite) says
    nothing of which keys it retires: the start refuses the table, a running broker stops before committing, and the
    custody check names the file."""
    site = _site(tmp_path)
    now = [0.0]
    lookup = site.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0])
    site.broker.retire_kex("SNM-kex-2026a")
    listed = site.broker.path / RETIRED_KEX
    if spoil == "garbled":
        listed.write_text(listed.read_text() + "SNM-kex-2026b\n")
    else:
        listed.chmod(0o664)  # group-writable: others may rewrite the list
    with pytest.raises(KeyMaterialError, match=RETIRED_KEX):
        site.broker.agency_mac_lookup()
    now[0] = 60.0
    with pytest.raises(KeyUnusable, match=RETIRED_KEX):
        lookup("SNM", NEW)
    assert any(RETIRED_KEX in problem for problem in site.broker.broker_custody_problems())


def test_older_generations_not_retired_are_named(tmp_path: Path) -> None:
    """``older_kex`` names each owner holding more than one key-agreement generation not retired, the older ones by
    label, and no longer once they are retired."""
    site = _site(tmp_path)
    assert site.broker.older_kex() == [("SNM", ["SNM-kex-2026a"], "SNM-kex-2026b")]
    site.broker.retire_kex("SNM-kex-2026a")
    assert site.broker.older_kex() == []


def _lose_list(store: Keystore, how: str) -> None:
    """Empty the ``retired-kex`` list in place (a truncation, a backup of an empty one) or remove it."""
    listed = store.path / RETIRED_KEX
    if how == "emptied":
        listed.write_bytes(b"")
    else:
        listed.unlink()


def test_retire_moves_the_key_file_aside_holding_its_public_half_alone(tmp_path: Path) -> None:
    """The retired key's ``<id>.json`` is gone from what the MAC table reads, its public half alone kept as
    ``<id>.json.retired``, which the broker's custody rules allow; the broker's own key loses its private half."""
    site = _site(tmp_path)
    site.broker.generate(KeyKind.KEY_AGREEMENT, "broker", generation="2026b", now=NOW)
    for key_id in ("SNM-kex-2026a", "broker-kex-2026a"):
        site.broker.retire_kex(key_id)
        aside = site.broker.path / f"{key_id}.json.retired"
        assert not (site.broker.path / f"{key_id}.json").exists() and aside.exists()
        assert "secret" not in json.loads(aside.read_bytes())
    assert site.broker.broker_custody_problems() == []
    assert set(site.broker.retired_keys()) == {"SNM-kex-2026a", "broker-kex-2026a"}


@pytest.mark.parametrize("how", ["emptied", "removed"])
def test_a_lost_list_revokes_nothing_back_at_restart(tmp_path: Path, how: str) -> None:
    """The retired list emptied or removed after a retirement: a start still derives no pair with the retired key,
    still refuses its PEM imported again, and the custody check names the key the list lost."""
    site = _site(tmp_path)
    site.broker.retire_kex("SNM-kex-2026a")
    _lose_list(site.broker, how)
    assert _answers(site.broker) == {OLD: False, NEW: True}
    for as_id in ("SNM-kex-2026a", "SNM-kex-2026c"):
        with pytest.raises(KeyMaterialError, match="SNM-kex-2026a was retired"):
            _hand_over(site.snm, "SNM-kex-2026a", site.broker, as_id)
    problems = site.broker.broker_custody_problems()
    assert len(problems) == 1 and "SNM-kex-2026a" in problems[0] and "puente keys retire" in problems[0], problems
    assert site.broker.retire_kex("SNM-kex-2026a")[1]  # listed again
    assert site.broker.broker_custody_problems() == []


@pytest.mark.parametrize("how", ["emptied", "removed"])
@pytest.mark.parametrize("retired_before_start", [False, True])
def test_a_running_broker_stops_when_the_list_loses_a_key(tmp_path: Path, how: str,
                                                          retired_before_start: bool) -> None:
    """A running broker remembers every retirement it read: a re-read whose list lost one stops it (KeyUnusable)
    rather than take the key back, whether it was retired before its start or while it ran."""
    site = _site(tmp_path)
    if retired_before_start:
        site.broker.retire_kex("SNM-kex-2026a")
    now = [0.0]
    lookup = site.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0])
    if not retired_before_start:
        site.broker.retire_kex("SNM-kex-2026a")
    now[0] = 5.0
    assert lookup("SNM", OLD) is None and lookup("SNM", NEW) is not None
    _lose_list(site.broker, how)
    now[0] = 10.0
    with pytest.raises(KeyUnusable, match="SNM-kex-2026a, retired when the running broker last read it"):
        lookup("SNM", OLD)


def test_a_running_broker_stops_when_a_retired_key_is_put_back_with_no_list(tmp_path: Path) -> None:
    """The list removed and the key file put back (a backup from before the retirement restored): a running broker
    stops rather than verify with the retired key again."""
    site = _site(tmp_path)
    kept = (site.broker.path / "SNM-kex-2026a.json").read_bytes()
    now = [0.0]
    lookup = site.broker.fresh_agency_mac_lookup(every_s=5.0, clock=lambda: now[0])
    site.broker.retire_kex("SNM-kex-2026a")
    now[0] = 5.0
    assert lookup("SNM", OLD) is None
    (site.broker.path / RETIRED_KEX).unlink()
    (site.broker.path / "SNM-kex-2026a.json.retired").unlink()
    (site.broker.path / "SNM-kex-2026a.json").write_bytes(kept)
    now[0] = 10.0
    with pytest.raises(KeyUnusable, match="SNM-kex-2026a"):
        lookup("SNM", OLD)


def test_a_key_retired_before_keys_were_moved_aside_is_refused_until_retired_again(tmp_path: Path) -> None:
    """A folder whose list names a key whose file is still ``<id>.json`` (as the first `keys retire` left it) is
    refused by the custody check, with the command that moves it aside; the MAC table keeps it out meanwhile, and
    that command moves it."""
    site = _site(tmp_path)
    site.broker.retire_kex("SNM-kex-2026a")
    (site.broker.path / "SNM-kex-2026a.json.retired").rename(site.broker.path / "SNM-kex-2026a.json")
    problems = site.broker.broker_custody_problems()
    assert len(problems) == 1 and "puente keys retire SNM-kex-2026a" in problems[0], problems
    assert _answers(site.broker) == {OLD: False, NEW: True}
    assert site.broker.retire_kex("SNM-kex-2026a")[1]
    assert not (site.broker.path / "SNM-kex-2026a.json").exists()
    assert site.broker.broker_custody_problems() == []
    _lose_list(site.broker, "removed")
    assert _answers(site.broker) == {OLD: False, NEW: True}


def test_a_retired_key_back_under_its_id_is_named(tmp_path: Path) -> None:
    """The retired key's file put back beside its moved-aside public half is named by the custody check and kept out
    of the MAC table; another key under the retired id is refused by the retire rather than replace what it keeps."""
    site = _site(tmp_path)
    site.broker.retire_kex("SNM-kex-2026a")
    aside = site.broker.path / "SNM-kex-2026a.json.retired"
    back = site.broker.path / "SNM-kex-2026a.json"
    back.write_bytes(aside.read_bytes())
    os.chmod(back, 0o644)
    assert any("is back beside" in problem for problem in site.broker.broker_custody_problems())
    assert _answers(site.broker) == {OLD: False, NEW: True}
    doc = json.loads((site.broker.path / "SNM-kex-2026b.json").read_bytes())
    doc["key_id"] = "SNM-kex-2026a"
    back.write_text(json.dumps(doc))
    with pytest.raises(KeyMaterialError, match="another key than the one retired"):
        site.broker.retire_kex("SNM-kex-2026a")
    assert aside.exists()
