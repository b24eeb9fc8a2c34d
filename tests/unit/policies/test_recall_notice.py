"""A recall notice's payload is the empty one of the type it names, made anew for every notice: the empty payload of
each type is built once (``policies._notice._empty_payload``), and no notice shares a list or a record with another or
with that cache (a notice changed by whatever handles it must not change the next)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import recall_notice
from puente.dev.synthetic import generate

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _one(alert_type: str) -> dict[str, Any]:
    return next(a for a in generate(40, seed=3, now=NOW) if a["alert_type"] == alert_type)


def _containers(value: Any) -> list[Any]:
    """Every list and dict inside ``value``, ``value`` too."""
    if isinstance(value, dict):
        return [value, *(c for v in value.values() for c in _containers(v))]
    if isinstance(value, list):
        return [value, *(c for v in value for c in _containers(v))]
    return []


@pytest.mark.parametrize("alert_type", ["WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT"])
def test_no_two_notices_share_a_list_or_a_record_of_their_payload(alert_type: str) -> None:
    """Two notices of one type hold equal payloads, none of whose lists or records is the other's; filling every
    list and record of one leaves the next notice's payload empty."""
    alert = _one(alert_type)
    first, second = recall_notice(alert, 3, None), recall_notice(alert, 3, None)
    assert first["payload"] == second["payload"]
    ids = {id(c) for c in _containers(second["payload"])}
    assert not ids & {id(c) for c in _containers(first["payload"])}
    assert any(isinstance(c, list) for c in _containers(first["payload"]))  # there is a list to share
    for c in _containers(first["payload"]):
        if isinstance(c, list):
            c.append("kept")
        else:
            c["kept"] = "kept"
    assert recall_notice(alert, 3, None)["payload"] == second["payload"]
