"""The queries chain's head check and the QUERY record body (pure parts of broker.oversight)."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.audit.chain import ChainHead, ChainWriter, canonical
from broker.oversight import CHAIN, KIND, head_problem, query_body
from puente.wire import Record

AT = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _chain(n: int) -> list[Record]:
    writer = ChainWriter("t.audit.queries", 0, ChainHead(), chain=CHAIN)
    return [Record("t.audit.queries", 0, i, None, writer.append(KIND, query_body("ana", "national", "search",
                                                                                  {"partner": "COL"}, i, AT)), (), 0)
            for i in range(n)]


def test_an_empty_or_sound_chain_may_be_extended() -> None:
    """No records, one first record, or a last record following the one before: no problem."""
    assert head_problem([], whole=True) is None
    assert head_problem(_chain(1), whole=True) is None
    assert head_problem(_chain(5), whole=True) is None
    assert head_problem(_chain(5)[-2:], whole=False) is None


def test_an_edited_foreign_or_disconnected_head_is_refused() -> None:
    """The console will not extend a chain ending with an edit, another kind or chain, or a gap."""
    records = _chain(3)
    edited = records[-1]._replace(value=records[-1].value.replace(b'"ana"', b'"eve"'))
    assert "edited" in str(head_problem([*records[:-1], edited], whole=True))
    foreign = ChainWriter("t.audit.queries", 0, ChainHead(seq=3, prev="0" * 64)).append("RECEIPT", {"x": 1})
    assert "not a QUERY" in str(head_problem([*records, records[-1]._replace(offset=9, value=foreign)], whole=False))
    assert "does not follow" in str(head_problem([records[0], records[2]], whole=False))
    assert "not a QUERY" in str(head_problem([records[0]._replace(value=b"not json")], whole=True))


def test_a_query_body_names_who_what_and_how_many_but_cuts_what_was_typed() -> None:
    """Auditor, scope, page, parameters (cut short) and result count, with the time."""
    body = query_body("ana", "USA", "search", {"alert": "x" * 500, "page": 2}, 7, AT)
    assert body == {"auditor": "ana", "scope": "USA", "page": "search",
                    "params": {"alert": "x" * 197 + "\u2026", "page": "2"}, "results": 7, "at": "2026-11-01T10:00:00Z"}
    assert canonical(body)  # JSON-serialisable as the chain writes it
