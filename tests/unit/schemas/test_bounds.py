"""``schemas.bounds``: each field and array held to its bound, named with the bound and never the value."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import bounds, bounds_problem


def _border(**payload: Any) -> dict[str, Any]:
    return {"alert_id": "SENAFRONT:R-1", "agency": "SENAFRONT", "summary": "x", "source_timezone": "America/Panama",
            "markings": {"classification": "PUBLICO", "releasable_to": [], "originator": {"agency": "SENAFRONT"}},
            "payload": {"event_type": "OTHER", "nationalities_observed": [], **payload}}


@pytest.mark.parametrize(("payload", "field", "bound"), [
    ({"remarks": "é"}, "payload.remarks", bounds.REMARKS),
    ({"direction": "N"}, "payload.direction", bounds.CODE),
    ({"patrol_unit": "é"}, "payload.patrol_unit", bounds.UNIT),
])
def test_text_at_its_bound_passes_and_over_it_is_named(payload: dict[str, Any], field: str, bound: int) -> None:
    """At the bound no problem; one character more names the field and the bound, not the text."""
    [(key, char)] = payload.items()
    assert bounds_problem(_border(**{key: char * bound})) is None
    assert bounds_problem(_border(**{key: char * (bound + 1)})) == (
        f"{field} has {bound + 1:,} characters; at most {bound:,} are accepted")


def test_arrays_are_counted_before_their_entries() -> None:
    """An array over its bound is named by its count, whatever its entries hold."""
    assert bounds_problem(_border(nationalities_observed=["COL"] * bounds.MAX_NATIONALITIES_OBSERVED)) is None
    alert = _border(nationalities_observed=[None] * (bounds.MAX_NATIONALITIES_OBSERVED + 1))
    assert bounds_problem(alert) == "payload.nationalities_observed has 51 entries; at most 50 are accepted"
    alert = _border()
    alert["markings"]["releasable_to"] = ["COL"] * (bounds.MAX_MARKING_ENTRIES + 1)
    assert bounds_problem(alert) == "markings.releasable_to has 65 entries; at most 64 are accepted"
