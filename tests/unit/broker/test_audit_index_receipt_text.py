"""What a partner's signed receipts may put into the audit index and its timeline: text cut, receipts listed to a
bound per partner and alert, the rest counted."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit_index import (
    NOT_SHOWN,
    RECEIPT_DETAIL_BYTES,
    RECEIPT_FIELDS,
    RECEIPT_VALUE_BYTES,
    TIMELINE_RECEIPTS,
    UNKEPT,
    AuditIndex,
    Scope,
)
from broker.audit_index import _ingest as ingest
from broker.oversight import CUT
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import (
    COL_RCPT,
    DECISIONS,
    T0,
    _alert,
    _decision,
    _decisions_topic,
    _ingest,
    _signer,
)

BIG = "A" * 900_000


def _flood(count: int, **more: Any) -> list[bytes]:
    """COL's signed receipts of SNM:1 (sent to it at t.feed.COL:0:0): RECEIVED, then DUPLICATE ``count - 1`` times,
    each holding ``more``, all vouched for by its checkpoints."""
    writer = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    out = []
    for i in range(count):
        out.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:1", "version": 1,
                                             "status": "RECEIVED" if i == 0 else "DUPLICATE",
                                             "feed": "t.feed.COL:0:0",
                                             "at": iso_utc(T0 + timedelta(minutes=5, seconds=i)), **more}))
    out.append(writer.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0 + timedelta(minutes=30))))
    return out


def _indexed(tmp_path: Path, receipts: list[bytes]) -> AuditIndex:
    index = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(index, {DECISIONS: _decisions_topic(), COL_RCPT: receipts})
    assert index.problems() == 0
    return index


def test_a_receipts_free_text_is_cut_when_indexed(tmp_path: Path) -> None:
    """A receipt's 900 KB detail is kept cut, marked, and its other fields are the first few, each cut, with the
    number of the rest: the row takes a few KB whatever the partner signed."""
    fields = {f"f{i:03d}" + "n" * 100: "v" * 5_000 for i in range(40)}
    index = _indexed(tmp_path, _flood(1, detail=BIG, a_nested=[BIG[:5_000], {"x": 1}], **fields))
    detail, extra, size = index._all("SELECT detail, extra, size FROM receipts")[0]
    assert size > 1_000_000
    assert detail.endswith(CUT) and len(detail.encode()) <= RECEIPT_DETAIL_BYTES
    kept = json.loads(extra)
    # the chain's five fields and the partner's 41 (a record's keys come sorted): sixteen kept, the rest counted
    assert len(kept) == RECEIPT_FIELDS + 1 and kept[UNKEPT] == 5 + 41 - RECEIPT_FIELDS
    assert kept["a_nested"].startswith('["AAA') and kept["a_nested"].endswith(CUT)
    assert all(len(str(v).encode()) <= RECEIPT_VALUE_BYTES for v in kept.values())
    assert len(extra) < 5_000


def test_a_subscribers_receipt_is_kept_whole(tmp_path: Path) -> None:
    """A receipt as a subscriber writes it keeps every field it wrote, uncut."""
    index = _indexed(tmp_path, _flood(1, policy_version="p1", store="0123456789abcdef0123456789abcdef"))
    detail, extra = index._all("SELECT detail, extra FROM receipts")[0]
    kept = json.loads(extra)
    assert detail is None and UNKEPT not in kept
    assert kept["store"] == "0123456789abcdef0123456789abcdef" and kept["policy_version"] == "p1"
    assert set(kept) == {"v", "seq", "prev", "hash", "since_checkpoint", "policy_version", "store"}


def test_a_partners_field_named_as_the_index_count_is_a_field_not_kept(tmp_path: Path) -> None:
    """A receipt's own field named UNKEPT is never kept: it counts as one field not kept, so the name in a row is
    only ever the index's count (before: the partner's 999 was kept as if the index had counted 999)."""
    index = _indexed(tmp_path, _flood(1, fields_not_kept=999, store="ab" * 16))
    kept = json.loads(index._one("SELECT extra FROM receipts"))
    assert kept[UNKEPT] == 1 and kept["store"] == "ab" * 16


def test_a_receipt_row_cut_again_is_cut_as_it_was() -> None:
    """A row rebuilt from its columns (as a replay rebuilds one), held as text and matched again, keeps the extra
    its record gave it: the count of fields not kept is carried forward, not counted as one more (before: 20
    extra fields read 4 not kept, then 1)."""
    columns = ("alert_id", "status", "at", "feed", "detail", "appended_at", "version", "partner", "kind", "chain")
    record = {"kind": "RECEIPT", "chain": "COL", "partner": "COL", "alert_id": "SNM:1", "version": 1,
              "status": "DUPLICATE", "feed": "t.feed.COL:0:0", "at": iso_utc(T0),
              **{f"f{i:02d}": "x" * 300 for i in range(RECEIPT_FIELDS + 4)}}
    first = ingest.receipt_extra(record, columns)
    assert first[UNKEPT] == 4
    rebuilt = {**json.loads(ingest.json_text(first)), **{k: record[k] for k in columns if k in record}}
    again = ingest.receipt_extra(json.loads(ingest.json_text(rebuilt)), columns)
    assert again == first


def _receipt_events(events: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [e for e in events or [] if e["kind"] in ("RECEIPT", NOT_SHOWN)]


def test_a_timeline_lists_a_partners_first_receipts_and_counts_the_rest(tmp_path: Path) -> None:
    """Of COL's 130 receipts at its one delivery of an alert, its timeline lists the delivery's first and the first
    TIMELINE_RECEIPTS of the others, then one event counting the other 29, for a national auditor and COL's alike;
    text read stays a few KB per receipt."""
    count = TIMELINE_RECEIPTS + 30
    index = _indexed(tmp_path, _flood(count, detail="d" * 5_000))
    for scope in (Scope(), Scope("COL")):
        events = _receipt_events(index.timeline(scope, "SNM:1"))
        assert [e["kind"] for e in events] == ["RECEIPT"] * (TIMELINE_RECEIPTS + 1) + [NOT_SHOWN]
        assert [e["status"] for e in events[:2]] == ["RECEIVED", "DUPLICATE"]  # the first, in order
        last = events[-1]
        assert (last["partner"], last["not_shown"], last["capped"]) == ("COL", 29, False)
        assert last["detail"].startswith("29 more receipts from COL not shown")
        assert last["at"] == iso_utc(T0 + timedelta(minutes=5, seconds=TIMELINE_RECEIPTS + 1))  # the first not listed
        assert sum(len(e["detail"] or "") for e in events) < (TIMELINE_RECEIPTS + 1) * (RECEIPT_DETAIL_BYTES + 200)
    assert _receipt_events(index.timeline(Scope("USA"), "SNM:1")) == []


def test_a_timeline_within_the_bound_lists_every_receipt(tmp_path: Path) -> None:
    """At a delivery's first receipt and TIMELINE_RECEIPTS more, each is listed and nothing is said not shown."""
    index = _indexed(tmp_path, _flood(TIMELINE_RECEIPTS + 1))
    events = _receipt_events(index.timeline(Scope(), "SNM:1"))
    assert [e["kind"] for e in events] == ["RECEIPT"] * (TIMELINE_RECEIPTS + 1)


def _versions_then_recalled(versions: int, duplicates: int) -> dict[str, list[bytes]]:
    """SNM:T sent to COL in ``versions`` versions, then recalled; COL's receipts: one RECEIVED per version, the
    first followed by ``duplicates`` DUPLICATEs of it, and the RECALLED of the notice, all vouched for."""
    writer = ChainWriter(DECISIONS, 0)
    blocks = [writer.block([_alert("SNM:T", v, [_decision("COL", "DELIVER", ["c"], feed="t.feed.COL")], version=v)],
                           "broker-sign-2026a", _signer("broker-sign-2026a"), iso_utc(T0 + timedelta(minutes=v)))
              for v in range(1, versions + 1)]
    notice = _decision("COL", "RECALL", ["c"], feed="t.feed.COL", action="RECALL", notice_version=versions + 1)
    blocks.append(writer.block([_alert("SNM:T", versions + 1, [notice], version=versions, action="RECALL")],
                               "broker-sign-2026a", _signer("broker-sign-2026a"),
                               iso_utc(T0 + timedelta(minutes=versions + 1))))
    receipts = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")

    def receipt(version: int, status: str, second: int) -> bytes:
        return receipts.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:T", "version": version,
                                           "status": status, "feed": f"t.feed.COL:0:{version}",
                                           "at": iso_utc(T0 + timedelta(minutes=version, seconds=second))})

    out = [receipt(1, "RECEIVED", 5)] + [receipt(1, "DUPLICATE", 6) for _ in range(duplicates)]
    out += [receipt(v, "RECEIVED" if v <= versions else "RECALLED", 5) for v in range(2, versions + 2)]
    out.append(receipts.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"),
                                   iso_utc(T0 + timedelta(minutes=versions + 2))))
    return {DECISIONS: blocks, COL_RCPT: out}


@pytest.mark.parametrize("duplicates", [0, 3 * TIMELINE_RECEIPTS])
def test_a_timeline_lists_the_first_receipt_of_every_delivery(tmp_path: Path, duplicates: int) -> None:
    """An alert updated past TIMELINE_RECEIPTS versions, then recalled: the receipt of every version and the recall's
    acknowledgement are listed, the newest too, however many DUPLICATEs of v1 came before them; only DUPLICATEs past
    TIMELINE_RECEIPTS are counted (before: the first TIMELINE_RECEIPTS receipts of all, the newest not shown)."""
    versions = TIMELINE_RECEIPTS + 30
    index = AuditIndex(tmp_path / "audit" / "index.sqlite")
    _ingest(index, _versions_then_recalled(versions, duplicates))
    assert index.problems() == 0
    for scope in (Scope(), Scope("COL")):
        events = _receipt_events(index.timeline(scope, "SNM:T"))
        listed = [(e["version"], e["status"]) for e in events if e["kind"] == "RECEIPT"]
        assert {v for v, status in listed if status == "RECEIVED"} == set(range(1, versions + 1))
        assert listed[-1] == (versions + 1, "RECALLED")
        assert len(listed) == versions + 1 + min(duplicates, TIMELINE_RECEIPTS)
        not_shown = [e["not_shown"] for e in events if e["kind"] == NOT_SHOWN]
        assert not_shown == ([duplicates - TIMELINE_RECEIPTS] if duplicates > TIMELINE_RECEIPTS else [])
