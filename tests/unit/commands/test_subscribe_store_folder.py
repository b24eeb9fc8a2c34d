"""`puente subscribe --store FILE`: a store inside the keys folder but outside the partner's own folder is refused
before Kafka is asked anything; one in the partner's own folder, or outside the keys folder, is taken."""

from __future__ import annotations

from pathlib import Path

import pytest

import puente.commands.subscribe as subscribe
from puente.cli import build_parser
from puente.errors import ConfigError


class _Reached(Exception):
    """The command went past its checks of --store to making the subscriber."""


def _subscribe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Path) -> None:
    """``puente subscribe --partner COL --store store`` with the keys under ``tmp_path``, Kafka left out."""
    keys = tmp_path / "keys"
    for who in ("COL", "USA"):
        (keys / "partners" / who).mkdir(parents=True, exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    monkeypatch.setenv("PUENTE_KEYS", str(keys))
    monkeypatch.setattr(subscribe, "kafka", lambda *_: None)
    monkeypatch.setattr(subscribe, "require_party", lambda *_: None)

    def reached(*_: object, **__: object) -> None:
        raise _Reached

    monkeypatch.setattr(subscribe, "subscriber_for", reached)
    args = build_parser().parse_args(["subscribe", "--partner", "COL", "--key", "k", "--store", str(store)])
    subscribe._subscribe(args)


@pytest.mark.parametrize("where", ["keys/partners/USA/x.sqlite", "keys/partners/COL/../USA/x.sqlite"])
def test_a_store_in_another_partners_keys_folder_is_refused(where: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """COL's store in USA's folder, named straight or through COL's: refused in one line naming both folders."""
    with pytest.raises(ConfigError) as caught:
        _subscribe(tmp_path, monkeypatch, tmp_path / where)
    message = str(caught.value)
    assert "\n" not in message and "outside COL's own folder" in message
    assert str(tmp_path / "keys" / "partners" / "COL") in message


def test_a_store_through_a_link_into_another_partners_folder_is_refused(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder outside the keys that links to USA's: compared resolved, so refused as well."""
    (tmp_path / "keys" / "partners" / "USA").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "keys" / "partners" / "USA")
    with pytest.raises(ConfigError, match="outside COL's own folder"):
        _subscribe(tmp_path, monkeypatch, tmp_path / "link" / "x.sqlite")


@pytest.mark.parametrize("where", ["keys/partners/COL/x.sqlite", "data/x.sqlite"])
def test_a_store_in_the_partners_own_folder_or_elsewhere_is_taken(where: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """COL's own folder, or a data folder outside the keys: the command goes on to make the subscriber."""
    with pytest.raises(_Reached):
        _subscribe(tmp_path, monkeypatch, tmp_path / where)


def _linked(tmp_path: Path, who: str) -> Path:
    """``keys/partners/<who>`` as a link to a folder on another volume (``vol/<who>``)."""
    target = tmp_path / "vol" / who
    target.mkdir(parents=True)
    (tmp_path / "keys" / "partners").mkdir(parents=True, exist_ok=True)
    (tmp_path / "keys" / "partners" / who).symlink_to(target)
    return target


def test_with_the_partners_own_folder_a_link_another_partners_folder_is_still_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """COL's keys kept on another volume: USA's folder is refused all the same, and a data folder on that volume,
    outside every keys folder, is taken."""
    _linked(tmp_path, "COL")
    with pytest.raises(ConfigError, match="outside COL's own folder"):
        _subscribe(tmp_path, monkeypatch, tmp_path / "keys" / "partners" / "USA" / "x.sqlite")
    (tmp_path / "vol" / "data").mkdir()
    with pytest.raises(_Reached):
        _subscribe(tmp_path, monkeypatch, tmp_path / "vol" / "data" / "x.sqlite")
    with pytest.raises(_Reached):
        _subscribe(tmp_path, monkeypatch, tmp_path / "keys" / "partners" / "COL" / "x.sqlite")


def test_a_store_in_another_partners_folder_that_is_a_link_is_refused(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """USA's folder a link elsewhere: a store named through it, or straight where it leads, is refused."""
    target = _linked(tmp_path, "USA")
    for store in (tmp_path / "keys" / "partners" / "USA" / "x.sqlite", target / "x.sqlite"):
        with pytest.raises(ConfigError, match="outside COL's own folder"):
            _subscribe(tmp_path, monkeypatch, store)


@pytest.mark.parametrize("where", ["keys/agencies/SNM/x.sqlite", "keys/broker/x.sqlite", "keys/x.sqlite"])
def test_a_store_elsewhere_in_the_keys_folder_is_refused(where: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An agency's, the broker's folder or the keys folder itself: none is the partner's; refused."""
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(ConfigError, match="outside COL's own folder"):
        _subscribe(tmp_path, monkeypatch, tmp_path / where)
