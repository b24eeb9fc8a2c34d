"""The alert-id series of a relayed unit (``puente.wire.series_unit``): the one rule the adapter, the broker and
the officer's commands apply; and the end of a typed time range (``puente.wire.parse_until``), the one rule the
console and `audit log --until` read it by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from broker.pipeline import Originator
from puente.wire import parse_time, parse_until, series_unit


def test_an_id_is_in_one_units_series_at_most() -> None:
    """``COMBIFRON:COL-ARC-2026-1`` is COL-ARC's only: not a longer name's (COL-ARC-2026, a hyphenated "unit"), not
    a shorter one's, and an id with no unit code, or no hyphen after it, or of another agency, is in none."""
    assert series_unit("COMBIFRON:COL-ARC-2026-1", "COMBIFRON", "COL-") == "COL-ARC"
    for alert_id in ("COMBIFRON:COL-ARC", "COMBIFRON:COL--1", "COMBIFRON:OPS-2026-1", "SNM:COL-ARC-1",
                     "COMBIFRONX:COL-ARC-1", 7, None):
        assert series_unit(alert_id, "COMBIFRON", "COL-") is None, alert_id


def test_the_broker_holds_a_unit_to_its_series_and_the_agency_to_none() -> None:
    """A relaying agency's unit is in series only under its own code; a name with a hyphen (a recall's originator is
    not held to a code) never passes for the unit whose series it starts; the agency itself, and an agency relaying
    no units, are held to no series."""
    relay = Originator.of("COMBIFRON", "COL", "PAN")
    assert relay.in_series("COMBIFRON:COL-ARC-2026-1", "COL-ARC")
    for name in ("COL-ARC-2026", "COL-AR", "COL-DIJIN", None, 3):
        assert not relay.in_series("COMBIFRON:COL-ARC-2026-1", name), name
    assert relay.in_series("COMBIFRON:COL-ARC-2026-1", "COMBIFRON")
    assert Originator.of("SNM", "PAN", "PAN").in_series("SNM:COL-ARC-1", "SNM")


def test_a_date_alone_as_the_end_of_a_range_is_through_the_end_of_that_day() -> None:
    """``2026-12-31`` as an end is the last instant of the 31st (UTC), before the next midnight, in either ISO form;
    a time, with or without an offset, is the instant it names, as ``parse_time`` reads it."""
    last = datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert parse_until("2026-12-31") == parse_until(" 20261231 ") == last
    assert parse_until("2026-12-31") < datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_time("2026-12-31") == datetime(2026, 12, 31, tzinfo=UTC)  # a start is still its midnight
    for text in ("2026-12-31T00:00", "2026-12-31T10:00:00Z", "2026-12-31T10:00-05:00"):
        assert parse_until(text) == parse_time(text), text
    assert parse_until("2026-12-31T10:00-05:00").utcoffset() == timezone(timedelta(hours=-5)).utcoffset(None)
    assert parse_until("9999-12-31") == datetime.max.replace(tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_until("yesterday")
