"""The search form's facets are cached for every console thread at once: the shared cache never breaks a page."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from broker.audit_index import _index
from broker.audit_index._index import AuditIndex


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
