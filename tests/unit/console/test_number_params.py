"""``hours`` and ``page`` are read as ASCII digits within their range, or refused: never replaced by another value."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from puente.console.pages import MAX_HOURS, MAX_PAGE

NOT_NUMBERS = ["abc", "1e3", "48\x00", "\u0664\u0668", "\uff14\uff18", "+5", " 5", "5_0", "-5", "0", "2.0", "0x10"]


@pytest.mark.parametrize("value", [*NOT_NUMBERS, str(MAX_HOURS + 1), "9" * 40])
def test_an_hours_that_is_not_a_whole_number_in_range_is_refused_and_recorded_as_given(
        ana: TestClient, sink: Any, value: str) -> None:
    """``hours`` of anything but ASCII digits from 1 to 8,784 (Arabic-Indic or fullwidth digits, an exponent, a sign,
    a NUL, 0) is a 400 naming the range, recorded with the value as given; never the 24 or the clamp put in its
    place, which the page showed and the log recorded as if asked."""
    answer = ana.get("/receipts", params={"hours": value})
    assert answer.status_code == 400 and f"hours: give a whole number from 1 to {MAX_HOURS:,}" in answer.text
    assert sink.records[-1]["page"] == "receipts" and sink.records[-1]["params"] == {"hours": value}
    assert sink.records[-1]["results"] == 0


@pytest.mark.parametrize("path", ["/search", "/receipts", "/queries"])
@pytest.mark.parametrize("value", [*NOT_NUMBERS, str(MAX_PAGE + 1)])
def test_a_page_that_is_not_a_whole_number_in_range_is_refused_and_recorded_as_given(
        ana: TestClient, sink: Any, path: str, value: str) -> None:
    """``page`` of anything but ASCII digits from 1 to 1,000,000 is a recorded 400 on every paged page, never page 1."""
    answer = ana.get(path, params={"page": value})
    assert answer.status_code == 400 and "page: give a whole number from 1 to 1,000,000" in answer.text
    assert sink.records[-1]["params"] == {"page": value}


def test_whole_numbers_in_range_are_taken_and_an_empty_one_is_the_default(ana: TestClient, sink: Any) -> None:
    """ASCII digits within range are read as given (leading zeros too); a value left empty, or none, is the default."""
    assert ana.get("/receipts", params={"hours": "48", "page": "2"}).status_code == 200
    assert sink.records[-1]["params"] == {"hours": 48, "page": 2}
    assert ana.get("/receipts", params={"hours": "0048"}).status_code == 200
    assert sink.records[-1]["params"] == {"hours": 48, "page": 1}
    assert ana.get("/receipts", params={"hours": str(MAX_HOURS)}).status_code == 200
    assert ana.get("/receipts", params={"hours": ""}).status_code == 200
    assert sink.records[-1]["params"] == {"hours": 24, "page": 1}
    for path in ("/search", "/queries"):
        assert ana.get(path, params={"page": str(MAX_PAGE)}).status_code == 200, path
        assert ana.get(path).status_code == 200, path
