"""Records Kafka deleted after the index read them (DeleteRecords, a retention lowered, or retention's own work): a
catch-up whose log start passed them gives what a rebuild from that log start gives, the deletion's finding too."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit.verify import Holds, Retention
from broker.audit_index import AuditIndex, Query, Scope
from broker.audit_index import _ingest as ingest_module
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import (
    COL_DROP,
    COL_RCPT,
    DECISIONS,
    HOLDS,
    OWNERS,
    QUERIES,
    T0,
    VERIFY,
    _alert,
    _decision,
    _ms,
    _receipts,
    _signer,
)

NATIONAL = Scope()
DELETED = Retention(400, _ms(T0 + timedelta(days=1)))  # the blocks' predecessors cannot have expired yet
EXPIRED = Retention(1, _ms(T0 + timedelta(days=30)))  # they were written long before retention could take them


def _blocks(n: int) -> list[bytes]:
    """``n`` blocks of the broker's chain an hour apart, each an alert delivered to COL (ingress offset = block)."""
    writer = ChainWriter(DECISIONS, 0, keep_days=400)
    out = []
    for i in range(n):
        at = T0 + timedelta(hours=i)
        entry = _alert(f"SNM:{i}", i, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")])
        out.append(writer.block([{**entry, "at": iso_utc(at)}], "broker-sign-2026a", _signer("broker-sign-2026a"),
                                iso_utc(at)))
    return out


def _queries(n: int) -> list[bytes]:
    writer = ChainWriter(QUERIES, 0, checkpoint_every=1 << 62, chain="console", keep_days=400)
    return [writer.append("QUERY", {"auditor": "ana", "scope": "national", "page": "search", "params": {},
                                    "results": i, "at": iso_utc(T0 + timedelta(hours=i))}) for i in range(n)]


def _read(index: AuditIndex, topics: Mapping[str, list[bytes]], starts: Mapping[str, int],
          upto: Mapping[str, int] | None = None, retention: Retention | None = DELETED) -> None:
    """A catch-up as ``broker.auditor.index_topics`` makes it: each partition from where the index stands (or where
    its log now starts, past it) to ``upto``, told where its log starts."""
    index.register({t: HOLDS[t] for t in topics}, OWNERS)  # type: ignore[misc]
    for topic, values in topics.items():
        start = starts.get(topic, 0)
        holds: Holds = HOLDS[topic]  # type: ignore[assignment]
        ingest = index.partition(topic, 0, holds, VERIFY, owner=OWNERS.get(topic), log_start=start,
                                 retention=retention)
        for offset in range(max(ingest.start, start), (upto or {}).get(topic, len(values))):
            ingest.add(offset, values[offset])
        ingest.commit()
    index.finish(T0)


def _seen(index: AuditIndex) -> dict[str, Any]:
    """What the console shows of the index, but the numbers only the index gives (row ids, read positions)."""
    integrity = index.integrity(NATIONAL)
    rows = sorted((r["alert_id"], r["partner"], r["version"], r["record"]) for r in index.export(NATIONAL, Query()))
    unreceipted = sorted((r["alert_id"], r["partner"]) for r in index.unreceipted(NATIONAL, timedelta(0),
                                                                                    T0 + timedelta(days=1)))
    return {"problems": index.problems(), "chains": integrity["chains"], "findings": integrity["findings"],
            "rows": rows, "unreceipted": unreceipted, "queries": index.queries(NATIONAL),
            "indicators": index.indicators(NATIONAL),
            "summary": {k: v for k, v in index.summary(NATIONAL).items() if k != "indexed_at"}}


def _caught_up_and_rebuilt(tmp_path: Path, topics: Mapping[str, list[bytes]], first: Mapping[str, int],
                           starts: Mapping[str, int], retention: Retention | None = DELETED
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The index read up to ``first`` from offset 0, then caught up once the logs start at ``starts``; and one built
    anew from ``starts``."""
    with AuditIndex(tmp_path / "caught-up" / "index.sqlite") as index:
        _read(index, topics, {}, first, retention)
        _read(index, topics, starts, retention=retention)
        caught_up = _seen(index)
    with AuditIndex(tmp_path / "rebuilt" / "index.sqlite") as index:
        _read(index, topics, starts, retention=retention)
        return caught_up, _seen(index)


def test_a_decision_chain_s_front_deleted_after_it_was_indexed_is_reported_as_a_rebuild_reports_it(
        tmp_path: Path) -> None:
    """Blocks 0-2 indexed, then an admin deletes 0-1 (written within the retention) and block 3 comes: the catch-up
    says the chain starts at seq 2 and that its predecessor was deleted, not expired, lists none of the deleted
    decisions, and counts the chain's records from there: what a rebuild and `audit verify` say."""
    topics = {DECISIONS: _blocks(4)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {DECISIONS: 3}, {DECISIONS: 2})
    assert caught_up == rebuilt
    assert caught_up["problems"] == 1
    [finding] = caught_up["findings"]
    assert finding["offset"] == 2 and "the records before it were deleted, not expired" in finding["problem"]
    [chain] = caught_up["chains"]
    assert (chain["first_seq"], chain["records"], chain["signed"], chain["last_checkpoint_seq"]) == (2, 2, 2, 3)
    assert [r[0] for r in caught_up["rows"]] == ["SNM:2", "SNM:3"]


def test_a_chain_s_front_retention_took_is_dropped_as_a_rebuild_drops_it_without_a_finding(tmp_path: Path) -> None:
    """The same cut, its records written long before the retention could take them: no finding, and the index
    follows Kafka (rows dropped, the chain starting at seq 2), as a rebuild does."""
    topics = {DECISIONS: _blocks(4)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {DECISIONS: 4}, {DECISIONS: 2}, EXPIRED)
    assert caught_up == rebuilt
    assert caught_up["problems"] == 0 and caught_up["chains"][0]["first_seq"] == 2
    assert [r[0] for r in caught_up["rows"]] == ["SNM:2", "SNM:3"]


def test_the_auditors_query_log_s_front_deleted_after_it_was_indexed_is_reported(tmp_path: Path) -> None:
    """The console's query log cut the same way: the deletion is a finding and the queries gone are not listed."""
    topics = {QUERIES: _queries(5)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {QUERIES: 4}, {QUERIES: 3})
    assert caught_up == rebuilt
    assert caught_up["problems"] == 1 and caught_up["chains"][0]["first_seq"] == 3
    assert sorted(q["results"] for q in caught_up["queries"]) == [3, 4]


def test_a_chain_whose_records_read_are_all_deleted_has_its_next_record_s_start_checked(tmp_path: Path) -> None:
    """Everything the index read deleted, the log starting where it stands: the next block read is the chain's
    first held, and its start is checked, as a rebuild checks it."""
    topics = {DECISIONS: _blocks(4)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {DECISIONS: 2}, {DECISIONS: 2})
    assert caught_up == rebuilt
    assert caught_up["problems"] == 1 and caught_up["chains"][0]["first_seq"] == 2


@pytest.mark.parametrize("retention", [DELETED, EXPIRED], ids=["deleted", "expired"])
def test_records_deleted_before_the_index_read_them_start_the_chain_as_a_rebuild_starts_it(
        tmp_path: Path, retention: Retention) -> None:
    """Blocks 0-1 indexed, then the log starts at 3 (block 2 deleted unread): block 3 starts the chain, its
    decisions listed and its start checked, no gap reported, as a rebuild does."""
    topics = {DECISIONS: _blocks(5)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {DECISIONS: 2}, {DECISIONS: 3}, retention)
    assert caught_up == rebuilt
    assert [r[0] for r in caught_up["rows"]] == ["SNM:3", "SNM:4"]
    assert caught_up["chains"][0]["first_seq"] == 3
    problems = [f["problem"] for f in caught_up["findings"]]
    if retention is DELETED:
        assert len(problems) == 1 and "starts at seq 3" in problems[0]
    else:
        assert problems == []


def test_a_log_start_passing_the_read_position_after_an_earlier_cut_starts_the_chain_anew(tmp_path: Path) -> None:
    """Blocks 0-1 indexed and cut (the log starting where the index stands), then the log starts at 3, past it:
    block 3 starts the chain with no gap, as in a rebuild, though the index held no record read any more."""
    topics = {DECISIONS: _blocks(5)}
    with AuditIndex(tmp_path / "caught-up" / "index.sqlite") as index:
        _read(index, topics, {}, {DECISIONS: 2})
        _read(index, topics, {DECISIONS: 2}, {DECISIONS: 2})
        _read(index, topics, {DECISIONS: 3})
        caught_up = _seen(index)
    with AuditIndex(tmp_path / "rebuilt" / "index.sqlite") as index:
        _read(index, topics, {DECISIONS: 3})
        assert caught_up == _seen(index)
    assert [r[0] for r in caught_up["rows"]] == ["SNM:3", "SNM:4"]
    assert caught_up["problems"] == 1 and "starts at seq 3" in caught_up["findings"][0]["problem"]


@pytest.mark.parametrize("retention", [DELETED, EXPIRED], ids=["deleted", "expired"])
def test_a_cut_landing_on_a_record_read_as_a_gap_starts_the_chain_there_with_its_rows(
        tmp_path: Path, retention: Retention) -> None:
    """Block 2 never written, so block 3 was read as a gap; the log then starts at block 3: the partition is read
    again from there, and block 3 starts the chain, its decisions listed and acknowledged by COL's receipts (matched
    again once they are), its start checked, the gap gone, as in a rebuild."""
    blocks = _blocks(5)
    topics = {DECISIONS: [*blocks[:2], *blocks[3:]], COL_RCPT: _receipts("COL", ["SNM:3", "SNM:4"], minute=300)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {DECISIONS: 4}, {DECISIONS: 2}, retention)
    assert caught_up == rebuilt
    assert [r[0] for r in caught_up["rows"]] == ["SNM:3", "SNM:4"]
    assert caught_up["unreceipted"] == [] and caught_up["summary"]["receipts"] == 2
    problems = [f["problem"] for f in caught_up["findings"]]
    assert all("gap" not in p for p in problems)
    assert len(problems) == (1 if retention is DELETED else 0)


def test_cuts_that_find_the_same_chain_start_again_note_its_deletion_once(tmp_path: Path) -> None:
    """The log starting at 2, then at 3, past an unreadable record before block 2: each cut finds the chain starting
    at block 2, whose deletion is one finding, as in a rebuild; so does a cut past a start the walk itself checked."""
    blocks = _blocks(4)
    topics = {DECISIONS: [*blocks[:2], b"not an audit record", *blocks[2:]]}
    with AuditIndex(tmp_path / "rebuilt" / "index.sqlite") as index:
        _read(index, topics, {DECISIONS: 3})
        rebuilt = _seen(index)
    for name, first in (("caught-up", {}), ("started-there", {DECISIONS: 2})):
        with AuditIndex(tmp_path / name / "index.sqlite") as index:
            _read(index, topics, first)
            _read(index, topics, {DECISIONS: 2})
            _read(index, topics, {DECISIONS: 3})
            caught_up = _seen(index)
        assert caught_up == rebuilt
    assert caught_up["problems"] == 1 and "starts at seq 2" in caught_up["findings"][0]["problem"]


def test_a_chain_whose_every_record_read_was_deleted_is_listed_no_more(tmp_path: Path) -> None:
    """The console's query log read whole, then every record of it deleted: the integrity page lists no chain of
    it, as a rebuild from that log start lists none."""
    topics = {QUERIES: _queries(5)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {QUERIES: 5}, {QUERIES: 5})
    assert caught_up == rebuilt
    assert caught_up["chains"] == [] and caught_up["queries"] == []


def test_receipts_of_deliveries_whose_decisions_were_deleted_are_matched_again(tmp_path: Path) -> None:
    """The decisions of a delivery COL acknowledged deleted while the receipt is held: a rebuild matches that receipt
    to no delivery (a finding), and so does the catch-up, which held it as a row bound to the delivery."""
    writer = ChainWriter(DECISIONS, 0, keep_days=400)
    decisions = [writer.block([_alert("SNM:1", 0, [COL_DROP])], "broker-sign-2026a", _signer("broker-sign-2026a"),
                              iso_utc(T0)),
                 writer.block([_alert("COL:only", 2, [_decision("COL", "DELIVER", ["col.cover"],
                                                                feed="t.feed.COL")])],
                              "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))]
    receipts = _receipts("COL", ["SNM:1", "COL:only"])
    topics = {DECISIONS: decisions, "t.receipts.COL": receipts}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {}, {DECISIONS: 1}, EXPIRED)
    assert caught_up == rebuilt
    assert [f["topic"] for f in caught_up["findings"]] == ["t.receipts.COL"]
    assert "never delivered" in caught_up["findings"][0]["problem"]
    assert caught_up["summary"]["receipts"] == 1


def test_receipts_held_unmatched_by_a_cut_stay_within_the_bounds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five deliveries COL acknowledged, their decisions deleted, with room for two receipts held per chain: the cut
    holds the two newest, as a rebuild does, and the five stay findings."""
    monkeypatch.setattr(ingest_module, "HELD_PER_CHAIN", 2)
    alerts = [f"SNM:{i}" for i in range(5)]
    writer = ChainWriter(DECISIONS, 0, keep_days=400)
    decisions = [writer.block([_alert(a, i, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")])
                               for i, a in enumerate(alerts)], "broker-sign-2026a", _signer("broker-sign-2026a"),
                              iso_utc(T0)),
                 writer.block([_alert("SNM:9", 9, [COL_DROP])], "broker-sign-2026a", _signer("broker-sign-2026a"),
                              iso_utc(T0))]
    topics = {DECISIONS: decisions, COL_RCPT: _receipts("COL", alerts)}
    held = "SELECT \"offset\" FROM unmatched_receipts ORDER BY 1"
    with AuditIndex(tmp_path / "caught-up" / "index.sqlite") as index:
        _read(index, topics, {}, retention=EXPIRED)
        _read(index, {DECISIONS: decisions}, {DECISIONS: 1}, retention=EXPIRED)
        assert index._all(held) == [(3,), (4,)]
        _read(index, topics, {DECISIONS: 1}, retention=EXPIRED)
        caught_up, caught_up_held = _seen(index), index._all(held)
    with AuditIndex(tmp_path / "rebuilt" / "index.sqlite") as index:
        _read(index, topics, {DECISIONS: 1}, retention=EXPIRED)
        assert caught_up == _seen(index) and caught_up_held == index._all(held) == [(3,), (4,)]
    assert caught_up["problems"] == 5


def test_a_cut_that_reads_again_lets_no_receipt_go_before_its_delivery_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cut landing on a block read as a gap, with room for one receipt held per chain: the two receipts of the
    deliveries read again are both matched again once those are, as in a rebuild, none let go with its finding."""
    monkeypatch.setattr(ingest_module, "HELD_PER_CHAIN", 1)
    blocks = _blocks(5)
    topics = {DECISIONS: [*blocks[:2], *blocks[3:]], COL_RCPT: _receipts("COL", ["SNM:3", "SNM:4"], minute=300)}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {DECISIONS: 4}, {DECISIONS: 2}, EXPIRED)
    assert caught_up == rebuilt
    assert caught_up["unreceipted"] == [] and caught_up["problems"] == 0


def test_receipts_deleted_after_they_were_indexed_no_longer_acknowledge_their_deliveries(tmp_path: Path) -> None:
    """COL's first receipt deleted from its topic after it was indexed: its delivery is unreceipted and the place it
    bound free, as in a rebuild; the receipt after it still acknowledges its own."""
    writer = ChainWriter(DECISIONS, 0, keep_days=400)
    decisions = [writer.block([_alert("SNM:1", 0, [COL_DROP]),
                               _alert("COL:only", 2, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")])],
                              "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))]
    topics = {DECISIONS: decisions, "t.receipts.COL": _receipts("COL", ["SNM:1", "COL:only"])}
    caught_up, rebuilt = _caught_up_and_rebuilt(tmp_path, topics, {}, {"t.receipts.COL": 1}, EXPIRED)
    assert caught_up == rebuilt
    assert caught_up["unreceipted"] == [("SNM:1", "COL")] and caught_up["problems"] == 0
