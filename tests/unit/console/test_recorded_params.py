"""What a query record keeps of a request: the parameters its page takes, by their names; the others counted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from broker.audit.chain import canonical
from broker.oversight import query_body
from puente.console.pages import ACCEPTS, FILTERS

from .conftest import Sink

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _size(record: dict[str, Any]) -> int:
    """The bytes of a record's body as the query log writes it."""
    return len(canonical(query_body(record["auditor"], record["scope"], record["page"], record["params"],
                                    record["results"], T0)))


def test_a_refused_page_records_its_own_parameters_and_counts_the_others(ana: TestClient, sink: Sink) -> None:
    """A 400 (a since that is no time) records the parameters the page takes as given, and only how many others
    there were: no name or value a client chose reaches the log."""
    params = {"since": "nonsense", "until": "2026-12-01", **{f"evil{i}": "planted text" for i in range(40)}}
    assert ana.get("/indicators", params=params).status_code == 400
    assert sink.records[-1]["params"] == {"since": "nonsense", "until": "2026-12-01", "unknown parameters": 40}
    assert ana.get("/search", params={"since": "x" * 41, "evil": "planted text"}).status_code == 400
    assert sink.records[-1]["params"] == {"since": "x" * 41, "unknown parameters": 1}
    assert "planted" not in repr(sink.records) and "evil" not in repr(sink.records)


def test_an_answered_page_counts_the_parameters_it_does_not_take(ana: TestClient, sink: Sink) -> None:
    """A page answered records what it read, by its names; parameters it does not take (a repeated name is one it
    takes) are counted, on every page and on a page that is not there."""
    assert ana.get("/search", params={"decision": "DELIVER", "x": "1", "y": "2"}).status_code == 200
    assert sink.records[-1]["params"] == {"decision": "DELIVER", "page": 1, "unknown parameters": 2}
    assert ana.get("/integrity?x=1&x=2").status_code == 200
    assert sink.records[-1]["params"] == {"unknown parameters": 2}
    assert ana.get("/receipts?hours=2&page=1&page=3&planted=1").status_code == 200
    assert sink.records[-1]["params"] == {"hours": 2, "page": 3, "unknown parameters": 1}
    assert ana.get("/no-such-page?planted=yes").status_code == 404
    assert sink.records[-1]["params"] == {"path": "/no-such-page", "unknown parameters": 1}
    assert ana.get("/search", params={"decision": "DELIVER"}).status_code == 200
    assert sink.records[-1]["params"] == {"decision": "DELIVER", "page": 1}  # none unknown: nothing added


def test_a_query_record_stays_small_whatever_the_request(ana: TestClient, sink: Sink) -> None:
    """Every parameter a page takes given at 1,000 characters, and 200 others of 200: each record is under 2.5 KB
    as written (it was 5 KB with twenty planted names)."""
    planted = {f"k{i:03}": "v" * 200 for i in range(200)}
    for page, path in (("search", "/search"), ("indicators.csv", "/indicators.csv"), ("why", "/why")):
        ana.get(path, params={**{name: "z" * 1000 for name in ACCEPTS[page]}, **planted})
        record = sink.records[-1]
        assert record["page"] == page and record["params"]["unknown parameters"] == 200
        assert set(record["params"]) <= {*ACCEPTS[page], "alert", "capped", "unknown parameters"}
        assert _size(record) < 2500, page
    assert len(ACCEPTS["search"]) == len(FILTERS) + 1  # the largest: nine filters and the page number
