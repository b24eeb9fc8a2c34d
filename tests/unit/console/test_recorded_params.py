"""What a query record keeps of a request: the parameters its page takes, by their names; the others counted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.testclient import TestClient

from broker.audit.chain import ChainHead, ChainWriter, canonical
from broker.oversight import CHAIN, CUT, KIND, MAX_PARAMS, MAX_QUERY_BODY_BYTES, MAX_VALUE_BYTES, bounded, query_body
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


def test_a_recorded_value_is_bounded_in_bytes_as_written_whatever_its_characters() -> None:
    """Control characters (six bytes each as JSON escapes them), emoji, accents, quotes and long names: each value
    takes at most its bound as written, cut between characters and marked, and a body of twenty parameters at
    their worst stays under ``MAX_QUERY_BODY_BYTES`` (control characters once made a search record of 12.5 KB)."""
    worst = ("\x01", "\U0001f600", "\u00e9", "\u2028", '"', "\\", "\n", "a", "a\x01", "\x01\U0001f600a")
    for char in worst:
        for size in (1, 33, 199, 200, 201, 1000):
            text = (char * size)[:size]
            kept = bounded(text, MAX_VALUE_BYTES)
            assert len(orjson.dumps(kept)) - 2 <= MAX_VALUE_BYTES, (char, size)
            assert kept == text or (kept.endswith(CUT) and text.startswith(kept[:-1])), (char, size)
            assert kept != text or len(orjson.dumps(text)) - 2 <= MAX_VALUE_BYTES  # kept whole only when it fits
        params = {f"{i:02}" + char * 300: char * 1000 for i in range(MAX_PARAMS + 5)}
        body = query_body(char * 100, char * 100, char * 100, params, 2**63 - 1, T0)
        assert len(body["params"]) == MAX_PARAMS and len(canonical(body)) <= MAX_QUERY_BODY_BYTES, char
        record = ChainWriter("t.audit.queries", 0, ChainHead(seq=10**18), chain=CHAIN).append(KIND, body)
        assert len(record) <= MAX_QUERY_BODY_BYTES + 300, char
    sample = [*range(0x800), 0x2028, 0x202E, 0xFEFF, 0xFFFF, 0x1F600, 0x10FFFF]
    assert all(len(orjson.dumps(bounded(chr(c) * 300, 20))) - 2 <= 20 for c in sample)


def test_a_search_with_control_characters_in_every_filter_writes_a_small_record(ana: TestClient, sink: Sink) -> None:
    """Seven filters of 200 control characters each: answered (refused: no partner has that id), recorded cut and
    marked, the record under 2.6 KB as written (it was 8.8 KB)."""
    params = {k: "\x01" * 200 for k in FILTERS if k not in ("since", "until")}
    assert ana.get("/search", params=params).status_code == 400
    record = sink.records[-1]
    assert record["page"] == "search"
    written = query_body(record["auditor"], record["scope"], record["page"], record["params"], record["results"], T0)
    assert all(v == "\x01" * 32 + CUT for k, v in written["params"].items() if k != "page")
    assert len(ChainWriter("t.audit.queries", 0, ChainHead(), chain=CHAIN).append(KIND, written)) < 2600
