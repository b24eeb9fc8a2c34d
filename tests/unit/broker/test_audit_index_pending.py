"""Receipts the audit index cannot match to a delivery it holds are findings held for later catch-ups, never rows.

A receipt read while the decisions it names are not indexed (the decisions topic read while empty, or its blocks
written after the receipts were read) must not show as received: it is a finding in `audit verify`'s words,
held and matched again once decisions of its alert for its partner are indexed, within ``Unvouched``'s bounds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from broker import auditor
from broker.audit import ChainHead, ChainWriter
from broker.audit_index import AuditIndex, Scope
from broker.audit_index import _ingest as ingest_module
from puente.errors import StoreError
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import (
    COL_RCPT,
    DECISIONS,
    HOLDS,
    OWNERS,
    T0,
    VERIFY,
    _alert,
    _decision,
    _decisions_topic,
    _ingest,
    _receipts,
    _signer,
)

NATIONAL = Scope()
LATER = T0 + timedelta(days=1)


def _problems(index: AuditIndex) -> list[tuple[int, str]]:
    return [(f["offset"], f["problem"]) for f in index.integrity(NATIONAL)["findings"]]


def _verify_says(audit_topics: dict[str, list[bytes]], topics: dict[str, list[bytes]]) -> list[tuple[int, str]]:
    """`audit verify`'s findings over the whole of ``topics`` (decisions first), as (offset, text)."""
    audit_topics.update(topics)
    reports = asyncio.run(auditor.verify_topics(None, {t: HOLDS[t] for t in topics},  # type: ignore[arg-type,misc]
                                                VERIFY, OWNERS))
    return sorted((f.offset, f.problem) for r in reports for f in r.findings)


def test_receipts_read_while_the_decisions_topic_is_empty_are_findings_then_rows_once_it_is_read(
        tmp_path: Path) -> None:
    """First catch-up: the decisions topic is empty, so COL's receipt names a delivery the index never saw: no
    row, no receipt acknowledging anything, one finding. Next catch-up (no new receipt): the decisions are read,
    the receipt is matched, becomes a row bound to its delivery, and the finding goes."""
    receipts = _receipts("COL", ["SNM:1"])
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, {DECISIONS: [], COL_RCPT: receipts})
    assert index._one("SELECT COUNT(*) FROM receipts") == 0
    assert _problems(index) == [(0, "receipt for alert 'SNM:1' version 1, which the audited decisions never delivered "
                                    "to COL")]
    assert index.problems() == 1 and index.summary(NATIONAL)["receipts"] == 0
    assert index.timeline(NATIONAL, "SNM:1") is None

    _ingest(index, {DECISIONS: _decisions_topic(), COL_RCPT: receipts})
    assert index._all("SELECT alert_id, status, decision_id IS NOT NULL FROM receipts") == [("SNM:1", "RECEIVED", 1)]
    assert index.problems() == 0 and _problems(index) == []
    assert index._one("SELECT COUNT(*) FROM unmatched_receipts") == 0
    unreceipted = {(d["alert_id"], d["partner"]) for d in index.unreceipted(NATIONAL, timedelta(0), LATER)}
    assert ("SNM:1", "COL") not in unreceipted
    latency = [r for r in index.indicators(NATIONAL)["latency"] if r["to"] == "receipt"]
    assert [(r["partner"], r["n"]) for r in latency] == [("COL", 1)]


def test_a_receipt_naming_decisions_indexed_in_a_later_catch_up_is_matched_then(tmp_path: Path) -> None:
    """The decisions topic read to its first block only: COL's receipt of COL:only (decided in the second block)
    is held as a finding, and the catch-up that reads the second block makes it a row."""
    receipts = _receipts("COL", ["COL:only"])
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, {DECISIONS: _decisions_topic(), COL_RCPT: receipts}, {DECISIONS: 1})
    assert index._one("SELECT COUNT(*) FROM receipts") == 0 and index.problems() == 1
    _ingest(index, {DECISIONS: _decisions_topic(), COL_RCPT: receipts})
    assert index._all("SELECT alert_id FROM receipts WHERE decision_id IS NOT NULL") == [("COL:only",)]
    assert index.problems() == 0


def test_receipts_for_deliveries_never_made_stay_findings_in_audit_verifys_words(
        tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """Receipts indexed before the decisions that still match none once they are read (an alert withheld from
    COL, a version never sent) stay findings and rows never, worded as `audit verify` words them over the
    whole of the topics; the genuine receipt among them becomes a row."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    at = iso_utc(T0 + timedelta(minutes=5))
    receipts = [writer.append("RECEIPT", {"partner": "COL", "alert_id": alert, "version": version,
                                          "status": "RECEIVED", "feed": f"t.feed.COL:0:{i}", "at": at})
                for i, (alert, version) in enumerate([("SNM:2", 1), ("SNM:1", 2), ("SNM:1", 1)])]
    receipts.append(writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0)))
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, {DECISIONS: [], COL_RCPT: receipts})
    assert index.problems() == 3 and index._one("SELECT COUNT(*) FROM receipts") == 0

    topics = {DECISIONS: _decisions_topic(), COL_RCPT: receipts}
    _ingest(index, topics)
    verified = _verify_says(audit_topics, topics)
    assert _problems(index) == verified and len(verified) == 2
    assert "at that version (it sent version 1 there)" in verified[1][1]
    assert index._all("SELECT alert_id, version FROM receipts") == [("SNM:1", 1)]
    assert index.problems() == 2


def test_what_is_held_unmatched_stays_within_the_bounds_and_what_is_let_go_stays_a_finding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five receipts matched to nothing with room for two per chain: the two newest are held and become rows once
    their decisions are read; the three let go are no longer matched, and stay findings (never rows)."""
    monkeypatch.setattr(ingest_module, "HELD_PER_CHAIN", 2)
    alerts = [f"A:{i}" for i in range(5)]
    receipts = _receipts("COL", alerts)
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, {DECISIONS: [], COL_RCPT: receipts})
    assert index._all("SELECT \"offset\" FROM unmatched_receipts ORDER BY 1") == [(3,), (4,)]
    assert index.problems() == 5

    decided = ChainWriter(DECISIONS, 0)
    block = decided.block([_alert(a, i, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")])
                           for i, a in enumerate(alerts)], "broker-sign-2026a", _signer("broker-sign-2026a"),
                          iso_utc(T0))
    _ingest(index, {DECISIONS: [block], COL_RCPT: receipts})
    assert index._all("SELECT alert_id FROM receipts ORDER BY \"offset\"") == [("A:3",), ("A:4",)]
    assert [at for at, _ in _problems(index)] == [0, 1, 2] and index.problems() == 3


def test_the_in_all_and_bytes_bounds_let_the_oldest_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound over all chains (by count, then by bytes) the oldest held receipt is let go first."""
    monkeypatch.setattr(ingest_module, "HELD_IN_ALL", 3)
    index = AuditIndex(tmp_path / "count.sqlite")
    _ingest(index, {DECISIONS: [], COL_RCPT: _receipts("COL", [f"A:{i}" for i in range(5)])})
    assert index._all("SELECT \"offset\" FROM unmatched_receipts ORDER BY 1") == [(2,), (3,), (4,)]
    monkeypatch.setattr(ingest_module, "HELD_IN_ALL", 100)
    size = index._one("SELECT MAX(size) FROM unmatched_receipts")
    monkeypatch.setattr(ingest_module, "HELD_BYTES", 2 * size + 1)
    index = AuditIndex(tmp_path / "bytes.sqlite")
    _ingest(index, {DECISIONS: [], COL_RCPT: _receipts("COL", [f"A:{i}" for i in range(5)])})
    assert index._all("SELECT \"offset\" FROM unmatched_receipts ORDER BY 1") == [(3,), (4,)]


def test_the_bounds_carry_over_from_one_catch_up_to_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is held is counted again from the file: a catch-up in two runs holds what one run holds."""
    monkeypatch.setattr(ingest_module, "HELD_PER_CHAIN", 2)
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    at = iso_utc(T0 + timedelta(minutes=5))
    records = []
    for i in range(4):
        records.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": f"A:{i}", "version": 1,
                                                 "status": "RECEIVED", "feed": f"t.feed.COL:0:{i}", "at": at}))
        if i in (1, 3):
            records.append(writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0)))
    whole = AuditIndex(tmp_path / "whole.sqlite")
    _ingest(whole, {DECISIONS: [], COL_RCPT: records})
    parts = AuditIndex(tmp_path / "parts.sqlite")
    _ingest(parts, {DECISIONS: [], COL_RCPT: records}, {COL_RCPT: 3})
    assert parts._all("SELECT \"offset\" FROM unmatched_receipts ORDER BY 1") == [(0,), (1,)]
    _ingest(parts, {DECISIONS: [], COL_RCPT: records})
    held = "SELECT \"offset\" FROM unmatched_receipts ORDER BY 1"
    assert parts._all(held) == whole._all(held) == [(3,), (4,)]
    assert parts.problems() == whole.problems() == 4


def test_an_index_of_layout_8_asks_for_a_rebuild(tmp_path: Path) -> None:
    """An index written before unmatched receipts were held (layout 8) holds unchecked receipts as rows: refused,
    read-only or not, until rebuilt."""
    path = tmp_path / "audit" / "index.sqlite"
    AuditIndex(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 8")
    conn.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"layout 8\): run `puente audit index --rebuild`"):
            AuditIndex(path, readonly=readonly)



def _forked_receipts() -> list[bytes]:
    """COL's receipt of SNM:1 and its checkpoint; then a receipt of COL:only written at COL's next seq by someone
    holding COL's Kafka login (not its key), before COL's own receipt of COL:only and the checkpoint over it."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    at = iso_utc(T0 + timedelta(minutes=5))

    def receipt(by: ChainWriter, alert: str, place: int, when: str = at) -> bytes:
        return by.append("RECEIPT", {"partner": "COL", "alert_id": alert, "version": 1, "status": "RECEIVED",
                                     "feed": f"t.feed.COL:0:{place}", "at": when})

    values = [receipt(writer, "SNM:1", 0), writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0))]
    forger = ChainWriter(COL_RCPT, 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62, chain="COL")
    return [*values, receipt(forger, "COL:only", 1, iso_utc(T0 + timedelta(minutes=4))), receipt(writer, "COL:only", 1),
            writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0))]


@pytest.mark.parametrize("runs", [1, 2], ids=["one-catch-up", "fork-and-checkpoint-in-two"])
def test_a_forged_fork_is_the_indexs_finding_as_verifys_and_the_signed_path_is_received(
        tmp_path: Path, audit_topics: dict[str, list[bytes]], runs: int) -> None:
    """The index settles a fork by the signed path as `audit verify` does: the forged receipt is the one finding,
    in verify's words, and never a row; COL's own receipt on its checkpoint's path is indexed as received, bound
    to its delivery (the chain is not cut, so it is not left unreceipted). The same when the catch-up stops between
    the fork and the checkpoint that settles it."""
    topics = {DECISIONS: _decisions_topic(), COL_RCPT: _forked_receipts()}
    verified = _verify_says(audit_topics, topics)
    assert verified == [(2, "chain COL fork at seq 2: 1 record(s) from offset 2 on hold places in the chain that other "
                            "records hold, and the signed record at offset 4 (seq 3) vouches for the other branch: no "
                            "signature vouches for them")]
    index = AuditIndex(tmp_path / "index.sqlite")
    if runs == 2:
        _ingest(index, topics, {COL_RCPT: 4})
        assert index._all("SELECT \"offset\" FROM pending_receipts ORDER BY 1") == [(2,), (3,)]
    _ingest(index, topics)
    assert _problems(index) == verified and index.problems() == 1
    assert index._all("SELECT \"offset\", alert_id, decision_id IS NOT NULL FROM receipts ORDER BY 1") == [
        (0, "SNM:1", 1), (3, "COL:only", 1)]
    assert index._one("SELECT COUNT(*) FROM pending_receipts") == 0
    assert index._one("SELECT COUNT(*) FROM unmatched_receipts") == 0
    unreceipted = {(d["alert_id"], d["partner"]) for d in index.unreceipted(NATIONAL, timedelta(0), LATER)}
    assert ("COL:only", "COL") not in unreceipted and ("SNM:1", "COL") not in unreceipted
