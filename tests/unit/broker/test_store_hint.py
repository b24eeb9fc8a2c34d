"""The store's "not in store" error sends the user to the store it read, in a command that parses as written."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from broker.partner_store import PartnerStore
from puente.cli import build_parser
from puente.errors import NotInStore


def _hint(path: Path) -> str:
    """The NotInStore message of an absent alert in a new COL store at ``path``."""
    store = PartnerStore.open(path, "COL")
    try:
        with pytest.raises(NotInStore) as caught:
            store.show("SNM:NOPE")
    finally:
        store.close()
    return str(caught.value)


def test_the_hint_of_an_absent_alert_names_the_store_file_that_was_read(tmp_path: Path) -> None:
    """The hint names the store file read, quoted and joined to --store by '=', on one line."""
    path = tmp_path / "a folder" / "COL's feed.sqlite"
    message = _hint(path)
    assert f"`puente store list --partner COL --store={shlex.quote(str(path))}`" in message
    assert "\n" not in message


def test_the_hint_parses_for_a_relative_path_that_starts_with_a_dash(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative store path starting with '-' stays --store's value when the hint's command is parsed, not an
    option of its own."""
    monkeypatch.chdir(tmp_path)
    message = _hint(Path("-feed.sqlite"))
    command = shlex.split(message.split("`")[1])
    assert command[0] == "puente"
    args = build_parser(command[1:]).parse_args(command[1:])
    assert (args.command, args.action, args.partner, args.store) == ("store", "list", "COL", Path("-feed.sqlite"))
