"""The audit index dates a receipt when it acknowledges: no earlier than Kafka appended it and its checkpoint,
whatever time its partner wrote with its own clock, and keeps no `appended_at` a partner wrote."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Scope
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
    _ms,
    _signer,
)

HOUR = timedelta(hours=1)


def _decisions() -> list[bytes]:
    """One alert published at T0 and delivered to COL 100 ms later."""
    alerts = [_alert("A:0", 0, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")], delay_ms=100)]
    return [ChainWriter(DECISIONS, 0).block(alerts, "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0))]


def _receipt(at: datetime, **more: Any) -> list[bytes]:
    """COL's RECEIVED receipt of A:0 stating ``at``, then the checkpoint that signs it."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    return [writer.append("RECEIPT", {"partner": "COL", "alert_id": "A:0", "version": 1, "status": "RECEIVED",
                                      "feed": "t.feed.COL:0:0", "at": iso_utc(at), **more}),
            writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0))]


def _add(index: AuditIndex, topic: str, values: list[bytes], appended: list[int | None]) -> None:
    """Index ``values`` of ``topic``, from where the index stands, each appended by Kafka at ``appended`` (ms)."""
    index.register({DECISIONS: "decisions", COL_RCPT: "receipts"}, OWNERS)
    ingest = index.partition(topic, 0, HOLDS[topic], VERIFY, owner=OWNERS.get(topic),  # type: ignore[arg-type]
                             batch_rows=2)
    for offset, (value, ms) in enumerate(zip(values, appended, strict=True)):
        if offset >= ingest.start:
            ingest.add(offset, value, ms)
    ingest.commit()
    index.finish(T0 + 2 * HOUR)


def _latency(index: AuditIndex, **window: Any) -> dict[str, Any]:
    return next(r for r in index.indicators(Scope(), **window)["latency"] if r["to"] == "receipt")


def _stored(path: Path) -> tuple[str, int, str | None, dict[str, Any]]:
    """The receipt's row as the index keeps it: at, at_ms, appended_at, extra."""
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM receipts").fetchone())
    return row["at"], row["at_ms"], row.get("appended_at"), json.loads(row["extra"])


def test_a_back_dated_receipt_counts_from_when_kafka_appended_it(tmp_path: Path) -> None:
    """A receipt its partner dated 10 minutes before publication, appended by Kafka an hour after it, makes the
    latency to receipt an hour (over the whole index and over a window), and the timeline places it after the
    delivery at Kafka's time, with the partner's time beside it."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _add(index, DECISIONS, _decisions(), [_ms(T0)])
    _add(index, COL_RCPT, _receipt(T0 - timedelta(minutes=10)), [_ms(T0 + HOUR)] * 2)
    assert _latency(index).items() >= {"p50_ms": 3_600_000, "p95_ms": 3_600_000, "n": 1}.items()
    assert _latency(index, since=T0 - HOUR, until=T0 + HOUR).items() >= {"p50_ms": 3_600_000, "n": 1}.items()
    events = index.timeline(Scope("COL"), "A:0") or []
    assert [e["kind"] for e in events] == ["PUBLISHED", "DELIVERED", "RECEIPT"]
    assert events[-1]["at"] == "2026-03-01T13:00:00Z"
    assert events[-1]["detail"] == "dated 2026-03-01T11:50:00Z by COL; t.feed.COL:0:0"


def test_a_receipt_acknowledges_once_its_checkpoint_is_appended(tmp_path: Path) -> None:
    """The checkpoint that signs a receipt, appended later than the receipt, dates the acknowledgement: an unsigned
    receipt counts for nothing until then."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _add(index, DECISIONS, _decisions(), [_ms(T0)])
    _add(index, COL_RCPT, _receipt(T0 + timedelta(minutes=1)), [_ms(T0 + timedelta(minutes=1)), _ms(T0 + HOUR)])
    assert _latency(index)["p50_ms"] == 3_600_000
    at, ms, appended, _ = _stored(tmp_path / "i" / "index.sqlite")
    assert (at, ms, appended) == ("2026-03-01T12:01:00Z", _ms(T0 + HOUR), "2026-03-01T13:00:00Z")


def test_a_clock_running_ahead_only_makes_its_receipts_later(tmp_path: Path) -> None:
    """A receipt dated after Kafka appended it is taken at its own time: the later of the two."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _add(index, DECISIONS, _decisions(), [_ms(T0)])
    _add(index, COL_RCPT, _receipt(T0 + HOUR), [_ms(T0 + timedelta(minutes=1))] * 2)
    assert _latency(index)["p50_ms"] == 3_600_000
    assert (index.timeline(Scope(), "A:0") or [])[-1]["detail"] == "t.feed.COL:0:0"


def test_a_partner_written_appended_at_is_kept_nowhere(tmp_path: Path) -> None:
    """An `appended_at` the partner signed into its receipt is dropped: not in the row's extra, not its time;
    from a topic whose times are not Kafka's the receipt is taken at its word, with no appended_at."""
    forged = {"appended_at": iso_utc(T0 - HOUR)}
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _add(index, DECISIONS, _decisions(), [_ms(T0)])
    _add(index, COL_RCPT, _receipt(T0 - timedelta(minutes=10), **forged), [_ms(T0 + HOUR)] * 2)
    _, ms, appended, extra = _stored(tmp_path / "i" / "index.sqlite")
    assert "appended_at" not in extra and appended == "2026-03-01T13:00:00Z" and ms == _ms(T0 + HOUR)

    create_time = AuditIndex(tmp_path / "c" / "index.sqlite")
    _add(create_time, DECISIONS, _decisions(), [_ms(T0)])
    _add(create_time, COL_RCPT, _receipt(T0 + timedelta(minutes=2), **forged), [None, None])
    _, ms, appended, extra = _stored(tmp_path / "c" / "index.sqlite")
    assert "appended_at" not in extra and appended is None and ms == _ms(T0 + timedelta(minutes=2))
    assert _latency(create_time)["p50_ms"] == 120_000


def test_a_receipt_matched_again_later_keeps_kafkas_time(tmp_path: Path) -> None:
    """A receipt indexed before the delivery it names (held unmatched, then matched once the decisions are indexed)
    is dated by Kafka's time as one matched at once is."""
    index = AuditIndex(tmp_path / "i" / "index.sqlite")
    _add(index, COL_RCPT, _receipt(T0 - timedelta(minutes=10)), [_ms(T0 + HOUR)] * 2)
    assert index.summary(Scope())["receipts"] == 0
    _add(index, DECISIONS, _decisions(), [_ms(T0)])
    _add(index, COL_RCPT, _receipt(T0 - timedelta(minutes=10)), [_ms(T0 + HOUR)] * 2)  # nothing new: matched again
    assert index.summary(Scope())["receipts"] == 1
    assert _latency(index)["p50_ms"] == 3_600_000
    assert (index.timeline(Scope(), "A:0") or [])[-1]["at"] == "2026-03-01T13:00:00Z"
