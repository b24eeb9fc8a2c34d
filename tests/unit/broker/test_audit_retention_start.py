"""A chain whose oldest records retention deleted is vouched for from where the partition's log now starts, not
reported as damaged on every run; records missing that the log start does not explain stay a gap."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import broker.auditor as auditor
from broker.audit import ChainWriter, verify_partition
from broker.audit.chain import seal
from broker.audit.verify import RETENTION_MARGIN_MS, Holds, Retention, StartFinding
from broker.audit_index import AuditIndex, Scope
from puente.errors import AuditChainError
from tests.unit.broker import test_audit_trust as trust
from tests.unit.broker.test_audit_chain import _sign, _verify

DECISIONS, RECEIPTS = "t.audit.decisions", "t.receipts.COL"
SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)


KEEP = 30  # the retention the broker's settings keep the audit for, which each block states


def _blocks(n: int, keep: int = KEEP) -> list[bytes]:
    writer = ChainWriter(DECISIONS, 0, keep_days=keep)
    return [writer.block([{"kind": "ALERT", "alert_id": f"A{i}", "ingress": f"t.ingress.SNM:0:{i}", "decisions": [
        {"partner": "COL", "decision": "WITHHOLD", "rules": ["partner.clearance"], "reasons": ["x"]}]}],
                         "broker-sign-test", _sign, f"2026-03-0{1 + i}T12:00:00Z") for i in range(n)]


def _cut(values: list[bytes], start: int) -> list[tuple[int, bytes]]:
    """What Kafka still holds once records before offset ``start`` were deleted."""
    return list(enumerate(values))[start:]


def test_a_decision_chain_cut_by_retention_is_vouched_for_from_the_log_start() -> None:
    """Offsets 0-1 expired, the log starts at 2: the chain verifies from seq 2, and what it vouches for says so."""
    report = verify_partition(DECISIONS, 0, _cut(_blocks(5), 2), _verify, "decisions", log_start=2)
    assert report.ok and report.chains == 1
    [vouched] = report.vouched
    assert (vouched.seq, vouched.since) == (4, 2)
    assert report.vouched_text() == ("signed up to seq 4 (2026-03-05T12:00:00Z), from seq 2 on, where the "
                                     "partition's log now starts (its older records expired or were deleted)")


def test_records_missing_that_the_log_start_does_not_explain_stay_a_gap() -> None:
    """With the log starting at 0 a chain starting at seq 2 lost records no retention deleted; with it starting at
    2, a record missing after the first one held is a gap all the same."""
    blocks = _blocks(5)
    report = verify_partition(DECISIONS, 0, _cut(blocks, 2), _verify, "decisions", log_start=0)
    assert [f.problem for f in report.findings] == ["gap: records missing (expected seq 0, found 2)"]
    held = [(2, blocks[2]), (4, blocks[4])]
    report = verify_partition(DECISIONS, 0, held, _verify, "decisions", log_start=2)
    assert [f.problem for f in report.findings] == ["gap: records missing (expected seq 3, found 4)"]


def test_each_receipt_chain_of_a_cut_partition_starts_where_it_is_held() -> None:
    """Two subscriber instances' chains in one receipts partition, its oldest records expired: each chain's first
    record held starts it (a marker or another chain's record may sit at the log start itself), and the partner's
    checkpoints vouch for both."""
    a = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL/a")
    b = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL/b")
    values = []
    for i in range(3):
        for w in (a, b):
            values += [w.append("RECEIPT", {"partner": "COL", "alert_id": f"A{i}", "status": "RECEIVED"}),
                       w.checkpoint("COL-rcpt-test", _sign, SIGNED_AT)]
    report = verify_partition(RECEIPTS, 0, _cut(values, 5), _verify, "receipts", "COL", log_start=5)
    assert report.ok, [f.problem for f in report.findings]
    assert {(v.chain, v.seq, v.since) for v in report.vouched} == {("COL/a", 5, 3), ("COL/b", 5, 2)}


def test_verify_topics_walks_each_partition_from_where_its_log_starts(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """`audit verify` reads each partition's beginning offset and gives it to the walk: a decisions partition cut by
    retention verifies, and `--json` gives the seq it is vouched from."""
    blocks = _blocks(5)
    audit_topics[DECISIONS] = []  # the partition is there; what it still holds is read below

    async def log_starts(consumer: Any, tps: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(tps, 2)

    async def read_range(consumer: Any, tp: Any, start: int | None = None) -> Any:
        for offset, value in _cut(blocks, 2):
            if start is None or offset >= start:
                yield SimpleNamespace(offset=offset, value=value, appended_ms=None, unreadable=None)

    monkeypatch.setattr(auditor, "log_starts", log_starts)
    monkeypatch.setattr(auditor, "read_range", read_range)
    roles: dict[str, Holds] = {DECISIONS: "decisions"}
    [report] = asyncio.run(auditor.verify_topics(None, roles, _verify))  # type: ignore[arg-type]
    assert report.ok and report.records == 3 and [(v.seq, v.since) for v in report.vouched] == [(4, 2)]


def _held_from(monkeypatch: pytest.MonkeyPatch, values: list[bytes], start: int) -> None:
    """Have ``broker.auditor`` read ``values`` as Kafka holds them once records before ``start`` were deleted."""

    async def log_starts(consumer: Any, tps: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(tps, start)

    async def read_range(consumer: Any, tp: Any, begin: int | None = None) -> Any:
        for offset, value in _cut(values, start):
            if begin is None or offset >= begin:
                yield SimpleNamespace(offset=offset, value=value, appended_ms=None, unreadable=None)

    monkeypatch.setattr(auditor, "log_starts", log_starts)
    monkeypatch.setattr(auditor, "read_range", read_range)


def test_audit_log_lists_the_first_block_held_of_a_chain_cut_by_retention(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """`audit log` walks each partition from where its log starts, as `audit verify` does: the first block held
    after retention is listed, not left out as a gap, so its decisions stay in the log and under `--alert`."""
    writer = ChainWriter(DECISIONS, 0)
    blocks = [writer.block([{"kind": "ALERT", "alert_id": f"A{i}", "ingress": f"t.ingress.SNM:0:{i}",
                             "decisions": [{"partner": "COL", "decision": "DENY"}]}],
                           "broker-sign-test", _sign, f"2026-03-0{1 + i}T12:00:00Z") for i in range(5)]
    audit_topics[DECISIONS] = []
    _held_from(monkeypatch, blocks, 2)
    left: list[int] = []

    async def rows(flt: auditor.LogFilter) -> list[Any]:
        return [row["alert_id"] async for row in auditor.read_log(
            None, {DECISIONS: "decisions"}, flt, _verify, left)]  # type: ignore[arg-type]

    assert asyncio.run(rows(auditor.LogFilter())) == ["A2", "A3", "A4"] and left == [0]
    assert asyncio.run(rows(auditor.LogFilter(alert="A2"))) == ["A2"]


def test_collect_denials_continues_a_denials_chain_cut_by_retention(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The denials topic's oldest blocks expired: the collector walks it from where its log starts, as `audit
    verify` does, so it continues the chain after its last block (no gap that `audit verify` never finds), and a
    line a block still held lists counts as collected and is not added again."""
    monkeypatch.setitem(auditor.collect_denials.__kwdefaults__, "per_transaction", 1)
    audit_topics[trust.NAMES.denials] = []
    added, blocks = trust._collect(monkeypatch, tmp_path, [trust.LINE.format(s=s) for s in range(5)])
    assert added == len(blocks) == 5
    _held_from(monkeypatch, blocks, 2)
    added, more = trust._collect(monkeypatch, tmp_path, [trust.LINE.format(s=s) for s in (2, 3, 4, 9)])
    assert added == len(more) == 1 and json.loads(more[0])["seq"] == 5
    report = verify_partition(trust.NAMES.denials, 0, _cut([*blocks, *more], 2), trust._verify, "denials",
                              log_start=2)
    assert report.ok and [(v.seq, v.since) for v in report.vouched] == [(5, 2)]


def test_collect_denials_begins_no_new_chain_over_one_deleted_whole_unless_told(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every denials block gone (the log starting at offset 5, past all of them): retention's work or a deletion by
    hand, which nothing tells apart. The collector refuses to begin a chain whose start nothing vouches for (a
    deletion would then verify clean), naming `--new-chain`; told so, it begins one at seq 0, its blocks stating the
    retention they are kept under."""
    monkeypatch.setitem(auditor.collect_denials.__kwdefaults__, "per_transaction", 1)
    audit_topics[trust.NAMES.denials] = []
    added, blocks = trust._collect(monkeypatch, tmp_path, [trust.LINE.format(s=s) for s in range(5)])
    assert added == len(blocks) == 5
    _held_from(monkeypatch, blocks, 5)
    with pytest.raises(AuditChainError, match=r"holds no record, but its log starts at offset 5.*--new-chain"):
        trust._collect(monkeypatch, tmp_path, [trust.LINE.format(s=9)])
    added, fresh = trust._collect(monkeypatch, tmp_path, [trust.LINE.format(s=9)], new_chain=True)
    assert added == 1 and (json.loads(fresh[0])["seq"], json.loads(fresh[0])["keep_days"]) == (0, 30)


def test_the_index_starts_a_new_chain_at_the_log_start_and_anew_past_records_deleted_unread(tmp_path: Path) -> None:
    """An index built after retention cut the partition starts the chain at its first record held; so does an index
    that held the chain at seq 2 when Kafka deleted seq 0-3, seq 2-3 unread: no gap, as a rebuild has it."""
    blocks = _blocks(6)
    with AuditIndex(tmp_path / "new.sqlite") as index:
        index.register({DECISIONS: "decisions"})
        ingest = index.partition(DECISIONS, 0, "decisions", _verify, log_start=2)
        for offset, value in _cut(blocks, 2):
            ingest.add(offset, value)
        ingest.commit()
        assert index.problems() == 0 and index.integrity(Scope())["chains"][0]["last_checkpoint_seq"] == 5
    with AuditIndex(tmp_path / "old.sqlite") as index:
        index.register({DECISIONS: "decisions"})
        ingest = index.partition(DECISIONS, 0, "decisions", _verify)
        for offset, value in _cut(blocks, 0)[:2]:
            ingest.add(offset, value)
        ingest.commit()
        ingest = index.partition(DECISIONS, 0, "decisions", _verify, log_start=4)
        for offset, value in _cut(blocks, 4):
            ingest.add(offset, value)
        ingest.commit()
        integrity = index.integrity(Scope())
        assert integrity["findings"] == [] and integrity["chains"][0]["first_seq"] == 4


def _ms(at: str) -> int:
    return int(datetime.fromisoformat(at).timestamp() * 1000)


def _kept_since(at: str, days: int = 30) -> Retention:
    """A retention of ``days`` (today's setting) judged at a time such that records written since ``at`` cannot
    have expired."""
    return Retention(days, _ms(at) + days * 86_400_000 - RETENTION_MARGIN_MS)


def test_a_chain_cut_after_a_record_written_within_the_retention_was_deleted_not_expired() -> None:
    """Each record states when the one before it was written (``prev_at``) and the retention it is kept under
    (``keep_days``). The decision chain held from seq 3, whose record says seq 2 was written on 2026-03-03: with the
    retention reaching back to 2026-03-02, seq 2 cannot have expired, so it was deleted, and `audit verify` says so;
    reaching back only to 2026-03-04, retention may have taken it, and the chain is vouched for from seq 3 as before.
    A whole chain has nothing cut."""
    blocks = _blocks(6)
    assert [json.loads(b).get("prev_at") for b in blocks[:3]] == [None, "2026-03-01T12:00:00Z",
                                                                  "2026-03-02T12:00:00Z"]
    assert {json.loads(b)["keep_days"] for b in blocks} == {KEEP}
    report = verify_partition(DECISIONS, 0, _cut(blocks, 3), _verify, "decisions", log_start=3,
                              retention=_kept_since("2026-03-02T00:00:00+00:00"))
    assert [(f.offset, f.problem) for f in report.findings] == [(3, (
        "the chain starts at seq 3, and that record says the one before it was written at 2026-03-03T12:00:00Z, "
        "within the retention it was kept under (30 days, less a day for clocks): the records before it were "
        "deleted, not expired (DeleteRecords, or the topic's retention lowered by hand)"))]
    assert all(isinstance(f, StartFinding) for f in report.findings)  # listings keep the record's rows
    for retention in (_kept_since("2026-03-04T00:00:00+00:00"), None):
        assert verify_partition(DECISIONS, 0, _cut(blocks, 3), _verify, "decisions", log_start=3,
                                retention=retention).ok
    assert verify_partition(DECISIONS, 0, _cut(blocks, 0), _verify, "decisions", log_start=0,
                            retention=_kept_since("2026-01-01T00:00:00+00:00")).ok


def test_a_retention_raised_since_judges_a_cut_by_the_retention_its_records_were_kept_under() -> None:
    """Records written under a retention of 30 days, cut by it; the setting raised to ten years since (an agreement
    keeping alerts longer asks for it): judged by today's setting alone, every such cut would read as a deletion
    for years. The shorter of the two, the one each record states, is what Kafka could delete by. Lowered since,
    today's shorter setting is the one."""
    blocks = _blocks(6)
    now = _ms("2026-04-04T00:00:00+00:00")  # seq 2 (2026-03-03) is 32 days old: past 30 days, within ten years
    raised = Retention(3650, now)
    assert verify_partition(DECISIONS, 0, _cut(blocks, 3), _verify, "decisions", log_start=3, retention=raised).ok
    lowered = [json.loads(b) for b in _blocks(6, keep=3650)]
    assert lowered[3]["keep_days"] == 3650
    assert verify_partition(DECISIONS, 0, _cut(_blocks(6, keep=3650), 3), _verify, "decisions", log_start=3,
                            retention=Retention(30, now)).ok
    assert not verify_partition(DECISIONS, 0, _cut(_blocks(6, keep=3650), 3), _verify, "decisions", log_start=3,
                                retention=raised).ok


def test_a_record_that_states_no_retention_or_predecessor_is_not_checked() -> None:
    """A block an earlier release wrote states neither ``prev_at`` nor ``keep_days``, and a partner's subscriber
    knows no retention: their chains' starts cannot be told from retention's, and are vouched for from where they
    are held, as before (receipts deleted read as recalls not acknowledged, never as acknowledged)."""
    for drop in ("prev_at", "keep_days"):
        old = [json.loads(b) for b in _blocks(4)]
        for doc in old:
            doc.pop(drop, None)
        values = [seal(doc) for doc in old]  # re-sealed without it (their links break: other findings)
        report = verify_partition(DECISIONS, 0, _cut(values, 2), lambda *_: True, "decisions", log_start=2,
                                  retention=_kept_since("2026-01-01T00:00:00+00:00"))
        assert not any(isinstance(f, StartFinding) for f in report.findings), drop
    writer = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL/a")
    values = [writer.append("RECEIPT", {"partner": "COL", "alert_id": f"A{i}", "version": 1, "status": "RECEIVED",
                                        "feed": f"t.feed.COL:0:{i}", "at": f"2026-03-0{1 + i}T12:00:00Z"})
              for i in range(3)]
    values.append(writer.checkpoint("COL-rcpt-test", _sign, "2026-03-05T12:00:00Z"))
    assert json.loads(values[3])["prev_at"] == "2026-03-03T12:00:00Z" and "keep_days" not in json.loads(values[3])
    report = verify_partition(RECEIPTS, 0, _cut(values, 3), _verify, "receipts", "COL", log_start=3,
                              retention=_kept_since("2026-03-01T00:00:00+00:00"))
    assert not any(isinstance(f, StartFinding) for f in report.findings)


def test_an_index_built_after_a_deletion_reports_it_and_a_rebuild_keeps_reporting_it(tmp_path: Path) -> None:
    """The index's catch-up walks a cut chain with the retention's horizon, as `audit verify` does: the deletion is
    its finding, and a rebuild (a new index walking from the log start) finds it again rather than forget it; the
    later catch-ups, continuing from the index's position, do not repeat it."""
    blocks = _blocks(6)
    since = _kept_since("2026-03-01T00:00:00+00:00")
    for name in ("first.sqlite", "rebuilt.sqlite"):
        with AuditIndex(tmp_path / name) as index:
            index.register({DECISIONS: "decisions"})
            ingest = index.partition(DECISIONS, 0, "decisions", _verify, log_start=4, retention=since)
            for offset, value in _cut(blocks, 4)[:1]:
                ingest.add(offset, value)
            ingest.commit()
            ingest = index.partition(DECISIONS, 0, "decisions", _verify, log_start=4, retention=since)
            for offset, value in _cut(blocks, 5):
                ingest.add(offset, value)
            ingest.commit()
            problems = [f["problem"] for f in index.integrity(Scope())["findings"]]
            assert index.problems() == 1 and len(problems) == 1
            assert "the records before it were deleted, not expired" in problems[0]
        # The first block held is sound: its decisions are indexed, as `audit log` lists them.
        held = sqlite3.connect(tmp_path / name).execute("SELECT alert_id FROM decisions ORDER BY id").fetchall()
        assert held == [("A4",), ("A5",)]


def test_verify_matches_receipts_to_the_first_block_held_of_a_chain_cut_by_a_deletion(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain's first block held whose predecessor was deleted is sound itself (``StartFinding``): `audit verify`
    reports the deletion, and matches receipts to that block's deliveries as `audit log` and the index do, rather
    than call its partner's receipt of it one for a delivery never made."""
    writer = ChainWriter(DECISIONS, 0, keep_days=KEEP)
    blocks = [writer.block([{"kind": "ALERT", "alert_id": f"A{i}", "version": 1, "at": f"2026-03-0{1 + i}T12:00:00Z",
                             "ingress": f"t.ingress.SNM:0:{i}", "decisions": [
                                 {"partner": "COL", "decision": "DELIVER", "feed": "t.feed.COL"}]}],
                           "broker-sign-test", _sign, f"2026-03-0{1 + i}T12:00:00Z") for i in range(4)]
    receipts = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL")
    audit_topics[DECISIONS] = blocks[2:]  # blocks 0-1 deleted: the log starts at 2
    audit_topics[RECEIPTS] = [
        receipts.append("RECEIPT", {"partner": "COL", "alert_id": "A2", "version": 1, "status": "RECEIVED",
                                    "feed": "t.feed.COL:0:0", "at": "2026-03-03T12:05:00Z"}),
        receipts.checkpoint("COL-rcpt-test", _sign, "2026-03-09T12:00:00Z")]

    async def log_starts(consumer: Any, tps: list[Any]) -> dict[Any, int]:
        return {tp: 2 if tp.topic == DECISIONS else 0 for tp in tps}

    monkeypatch.setattr(auditor, "log_starts", log_starts)
    roles: dict[str, Holds] = {DECISIONS: "decisions", RECEIPTS: "receipts"}
    reports = asyncio.run(auditor.verify_topics(None, roles, _verify, {RECEIPTS: "COL"},  # type: ignore[arg-type]
                                                retention=_kept_since("2026-03-01T00:00:00+00:00")))
    assert [type(f).__name__ for r in reports for f in r.findings] == ["StartFinding"]
