"""The search form's facets are cached for every console thread at once: the shared cache never breaks a page."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import Scope, _index
from broker.audit_index._index import AuditIndex
from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from tests.unit.broker.test_audit_index import DECISIONS, _alert, _decision, _ingest, _signer
from tests.unit.console.conftest import PARTNERS, PASSWORD, Sink, _sign_in, cheap_hasher, local_client


class _Index:
    """What ``AuditIndex.facets`` reads of an index: its path, its read position and its facets."""

    path = "index.sqlite"

    def __init__(self, position: int) -> None:
        self.position = position

    def _generation(self) -> int:
        return self.position

    def _facets(self, scope: Any) -> dict[str, list[str]]:
        return {"partner": ["COL"]}


class _Scope:
    partner = None


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter allows: a race in the cache shows within a run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
        _index._FACETS.clear()


def test_pages_answered_in_many_threads_share_the_cache_without_failing(fast_switching: None) -> None:
    """Eight threads each read 3,000 facets of an index that keeps moving on (a new key each time), so the cache
    evicts all the while: no page fails (KeyError, "dictionary changed size"), and the cache stays at 64."""
    failures: list[str] = []

    def pages(thread: int) -> None:
        try:
            for n in range(3000):
                assert AuditIndex.facets(_Index(thread * 100_000 + n), _Scope()) == {"partner": ["COL"]}  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - what a page would have failed with
            failures.append(repr(exc))

    threads = [threading.Thread(target=pages, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(_index._FACETS) == 64


def test_a_field_with_more_values_than_a_form_lists_is_typed_in(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An agency relaying for units names each alert's originator itself: past ``MAX_CHOICES`` values (here 3) the
    field lists none and is named under ``too_many``, so no page renders a list that grows with every alert; the
    console's search form then offers a text box for it, and the choices for the rest."""
    monkeypatch.setattr(_index, "MAX_CHOICES", 3)
    writer = ChainWriter(DECISIONS, 0)
    entries = [_alert(f"COMBIFRON:{i}", i, [_decision("COL", "DELIVER", ["r"], feed="t.feed.COL")],
                      originator=f"COL-unit{i}") for i in range(4)]
    blocks = [writer.block(entries, "broker-sign-2026a", _signer("broker-sign-2026a"), "2026-03-01T12:00:00Z")]
    path = tmp_path / "index.sqlite"
    with AuditIndex(path) as index:
        _ingest(index, {DECISIONS: blocks})
        _index._FACETS.clear()
        facets = index.facets(Scope())
    assert facets["agencies"] == [] and facets["too_many"] == ["agencies"] and facets["partners"] == ["COL"]
    accounts = ConsoleAccounts.open(tmp_path / "auditor" / "accounts.sqlite", PARTNERS, hasher=cheap_hasher())
    accounts.add("ana", "national", PASSWORD)
    client = local_client(create_app(ConsoleConfig(lambda: AuditIndex(path, readonly=True), accounts, Sink())),
                          follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    page = client.get("/search").text
    assert '<input name="agency"' in page and '<select name="partner">' in page
    accounts.close()
    _index._FACETS.clear()
