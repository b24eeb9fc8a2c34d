"""The store's "not in store" error sends the user to the store it read, not to the default one."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from broker.partner_store import PartnerStore
from puente.errors import NotInStore


def test_the_hint_of_an_absent_alert_names_the_store_file_that_was_read(tmp_path: Path) -> None:
    path = tmp_path / "a folder" / "COL's feed.sqlite"
    store = PartnerStore.open(path, "COL")
    try:
        with pytest.raises(NotInStore) as caught:
            store.show("SNM:NOPE")
    finally:
        store.close()
    message = str(caught.value)
    assert f"`puente store list --partner COL --store {shlex.quote(str(path))}`" in message
    assert "\n" not in message
