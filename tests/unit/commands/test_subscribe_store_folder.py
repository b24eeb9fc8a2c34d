"""`puente subscribe --store FILE`: a store inside another partner's keys folder is refused before Kafka is asked
anything; one in the partner's own folder, or outside the partners' folders, is taken."""

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
    assert "\n" not in message and "another partner's keys folder" in message
    partners = tmp_path / "keys" / "partners"
    assert str(partners / "USA") in message and str(partners / "COL") in message


def test_a_store_through_a_link_into_another_partners_folder_is_refused(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder outside the keys that links to USA's: compared resolved, so refused as well."""
    (tmp_path / "keys" / "partners" / "USA").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "keys" / "partners" / "USA")
    with pytest.raises(ConfigError, match="another partner's keys folder"):
        _subscribe(tmp_path, monkeypatch, tmp_path / "link" / "x.sqlite")


@pytest.mark.parametrize("where", ["keys/partners/COL/x.sqlite", "data/x.sqlite"])
def test_a_store_in_the_partners_own_folder_or_elsewhere_is_taken(where: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """COL's own folder, or a data folder outside the keys: the command goes on to make the subscriber."""
    with pytest.raises(_Reached):
        _subscribe(tmp_path, monkeypatch, tmp_path / where)
