"""A fork settled while more receipts waited than the walk tracks: none of the waiting receipts is vouched for,
so a forger's record past the bounds is never counted as received (by verify, the log or the index)."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from broker import auditor
from broker.audit import ChainHead, ChainWriter
from broker.audit.receipts import Unvouched
from broker.audit.verify import PartitionWalk
from broker.audit_index import AuditIndex
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import (
    COL_RCPT,
    DECISIONS,
    HOLDS,
    OWNERS,
    T0,
    VERIFY,
    _decisions_topic,
    _ingest,
    _signer,
)
from tests.unit.broker.test_receipt_forks import NEW, _receipt, _sign, _verify

SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
AT = iso_utc(T0 + timedelta(minutes=5))


def _rcpt(w: ChainWriter, alert: str, place: int) -> bytes:
    return w.append("RECEIPT", {"partner": "COL", "alert_id": alert, "version": 1, "status": "RECEIVED",
                                "feed": f"t.feed.COL:0:{place}", "at": AT})


def _fork_past_bound(n_forged: int) -> tuple[list[bytes], int]:
    """COL: batch of one genuine receipt G1 (SNM:1); a forger continues G1 with n_forged receipts
    (the last for COL:only, a delivery COL never acknowledged); COL's checkpoint continues G1."""
    g = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    values = [_rcpt(g, "SNM:1", 0)]
    f = ChainWriter(COL_RCPT, 0, ChainHead.after(json.loads(values[0])), checkpoint_every=1 << 62, chain="COL")
    for i in range(n_forged - 1):
        values.append(_rcpt(f, f"JUNK:{i}", 100 + i))
    values.append(_rcpt(f, "COL:only", 1))
    forged_at = len(values) - 1
    values.append(g.checkpoint("COL-rcpt-2026a", _signer("COL-rcpt-2026a"), iso_utc(T0)))
    return values, forged_at


def test_a_forged_receipt_past_the_tracking_bound_is_vouched_by_neither_index_nor_verify(
        tmp_path: Path, audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Small bounds (3 per chain) stand for the default 20,000."""
    monkeypatch.setitem(PartitionWalk.__init__.__kwdefaults__, "tracked", (3, 100))
    receipts, forged_at = _fork_past_bound(3)
    topics = {DECISIONS: _decisions_topic(), COL_RCPT: receipts}
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, topics)
    rows = index._all("SELECT \"offset\", alert_id, decision_id IS NOT NULL FROM receipts ORDER BY \"offset\"")
    audit_topics.update(topics)
    reports = asyncio.run(auditor.verify_topics(None, {t: HOLDS[t] for t in topics}, VERIFY, OWNERS))
    found = sorted((f.offset, f.problem) for r in reports for f in r.findings)
    assert not any(at == forged_at for at, _, _ in rows)  # the forged receipt is no row
    assert any("none of the chain's waiting records is vouched for" in problem for _, problem in found)


def test_one_forged_record_is_not_vouched_once_the_partition_budget_is_spent() -> None:
    """Junk chain COL/j spends TRACKED_IN_ALL (here 10; default 200,000, persisted forever in the index's
    chain state: nothing ever settles a keyless chain); then ONE forged record after G1 is vouched for by nothing,
    and the settling checkpoint says why."""
    j = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL/j")
    values = [j.append("RECEIPT", {"partner": "COL", "alert_id": f"J{i}", "status": "RECEIVED"}) for i in range(9)]
    g = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values.append(_receipt(g, "SNM:genuine"))
    f = ChainWriter("access", 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62, chain="COL")
    values.append(_receipt(f, "SNM:forged"))
    values.append(g.checkpoint(NEW, _sign, SIGNED_AT))
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, tracked=(20_000, 10))
    held: Unvouched[int] = Unvouched()
    vouched, findings = [], []
    for offset, value in enumerate(values):
        doc, found = walk.feed(offset, value)
        findings += [(x.offset, x.problem) for x in (*found, *walk.settled)]
        for c in walk.cut:
            held.pop(c)
        for c, offs in walk.pruned.items():
            held.drop(c, offs)
        if doc is None or found:
            continue
        if doc["kind"] == "RECEIPT":
            held.add(doc["chain"], offset, offset)
        elif doc["kind"] == "CHECKPOINT":
            vouched += [o for o, _ in held.pop(doc["chain"], vouched=True)]
    assert 10 not in vouched  # the forged SNM:forged receipt
    assert any("none of the chain's waiting records is vouched for" in p for _, p in findings)
