"""`audit log`'s rows come back in the order of the instants their `at` states, not of its text; rows stating no
time are kept, after the others, in the order they came."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.spill import UNREADABLE_TIME, TimeSorted, sort_key
from puente.wire import iso_utc

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def _order(docs: list[dict[str, Any]], folder: Path) -> list[Any]:
    with TimeSorted(folder) as spill:
        for doc in docs:
            spill.add(doc)
        return [doc["n"] for doc in spill]


def test_a_time_on_the_whole_second_comes_before_a_fraction_of_that_second(tmp_path: Path) -> None:
    """`iso_utc` writes no fraction on a whole second (`...12:00:00Z`), which sorts as text after
    `...12:00:00.500000Z`: the rows still come back in time order."""
    docs = [{"n": "later", "at": iso_utc(T0 + timedelta(microseconds=500_000))}, {"n": "first", "at": iso_utc(T0)}]
    assert docs[1]["at"] == "2026-11-22T12:00:00Z"
    assert _order(docs, tmp_path) == ["first", "later"]
    assert _order(docs[::-1], tmp_path) == ["first", "later"]


def test_times_with_an_offset_are_ordered_by_the_instant_they_state(tmp_path: Path) -> None:
    """A receipt's `+00:00`, another zone's offset and `Z` are compared as instants; one instant keeps arrival order."""
    docs = [{"n": 0, "at": "2026-11-22T12:00:00.250+00:00"}, {"n": 1, "at": "2026-11-22T07:00:00-05:00"},
            {"n": 2, "at": "2026-11-22T11:59:59.999999Z"}, {"n": 3, "at": "2026-11-22T12:00:00Z"}]
    assert _order(docs, tmp_path) == [2, 1, 3, 0]


def test_a_row_stating_no_time_is_kept_last_in_arrival_order(tmp_path: Path) -> None:
    """No `at`, text that is no time, a time without an offset, a number, null, a year past 9999 in UTC: the walk
    does not fail, and those rows follow every row with a time, in the order they came."""
    odd: list[Any] = [None, "yesterday", "2026-11-22T12:00:00", 1795348800, "9999-12-31T23:59:59-14:00", "x" * 100]
    docs: list[dict[str, Any]] = [{"n": f"odd{i}", "at": at} for i, at in enumerate(odd)]
    docs.insert(2, {"n": "timed", "at": iso_utc(T0)})
    docs.append({"n": "absent"})
    assert _order(docs, tmp_path) == ["timed", *(f"odd{i}" for i in range(len(odd))), "absent"]
    assert all(sort_key(at) == UNREADABLE_TIME for at in odd)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
                          st.sampled_from([0, 60, -300, 14 * 60, -14 * 60]), st.booleans()), max_size=30))
def test_rows_come_back_as_a_stable_sort_on_their_instants(tmp_path_factory: Any,
                                                            times: list[tuple[datetime, int, bool]]) -> None:
    """Whatever the times, offsets and spellings (`Z` with or without a fraction, `+hh:mm`): a stable sort on the
    instant."""
    docs = []
    for n, (naive, minutes, zulu) in enumerate(times):
        at = naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
        docs.append({"n": n, "at": iso_utc(at) if zulu else at.isoformat(), "instant": at})
    expected = [d["n"] for d in sorted(docs, key=lambda d: d["instant"])]
    rows = [{"n": d["n"], "at": d["at"]} for d in docs]
    assert _order(rows, tmp_path_factory.mktemp("spill")) == expected


def test_a_receipt_is_placed_no_earlier_than_kafka_appended_it(tmp_path: Path) -> None:
    """A receipt's place is the later of its `at` and `appended_at` (Kafka's time, which `read_log` gives it); another
    kind's `appended_at` counts for nothing, and a receipt stating no time stays last."""
    docs = [{"n": "receipt", "kind": "RECEIPT", "at": iso_utc(T0), "appended_at": iso_utc(T0 + timedelta(hours=2))},
            {"n": "decision", "kind": "DECISION", "at": iso_utc(T0 + timedelta(hours=1)),
             "appended_at": iso_utc(T0 + timedelta(hours=3))},
            {"n": "unread", "kind": "RECEIPT", "at": "yesterday", "appended_at": iso_utc(T0)},
            {"n": "ahead", "kind": "RECEIPT", "at": iso_utc(T0 + timedelta(hours=4)), "appended_at": iso_utc(T0)}]
    assert _order(docs, tmp_path) == ["decision", "receipt", "ahead", "unread"]
