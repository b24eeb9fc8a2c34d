"""An ignored cell or key value is normalised without a cache: cells of up to a record's size need not repeat, and
the label cache (``norm_key``) would keep thousands of them for the life of a watching process (1,500 rows of a
60 KB ignored cell held some 360 MiB)."""

from __future__ import annotations

from collections.abc import Callable

from adapters._codes import norm_key
from adapters.config import Context
from adapters.core import marking_vocabulary, reads_as_marking


def test_an_ignored_value_does_not_enter_the_label_cache(ctx_for: Callable[[str], Context]) -> None:
    """Reading ignored values as markings leaves norm_key's cache as it was, however many distinct values pass."""
    ctx = ctx_for("SENAFRONT")
    vocabulary = marking_vocabulary(ctx)
    reads_as_marking("warm up", vocabulary)
    before = norm_key.cache_info().currsize
    for number in range(200):
        assert not reads_as_marking(f"sin novedad en el puesto {number} " + "x" * 1000, vocabulary)
    assert norm_key.cache_info().currsize == before
