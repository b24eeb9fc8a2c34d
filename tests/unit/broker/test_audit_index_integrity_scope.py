"""What ``integrity`` tells a partner's auditor of the decision chains: their state, never how they grow."""

from __future__ import annotations

from pathlib import Path

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Scope
from tests.unit.broker.test_audit_index import (
    DECISIONS,
    USA_RCPT,
    _alert,
    _decision,
    _ingest,
    _receipts,
    _signer,
)


def _index(folder: Path, col_only: int) -> AuditIndex:
    """One block about USA, then ``col_only`` blocks about COL only, and USA's receipt of its alert."""
    writer = ChainWriter(DECISIONS, 0)
    blocks = [writer.block([_alert("U:1", 0, [_decision("USA", "DELIVER", ["usa.cover"], feed="t.feed.USA")])],
                           "broker-sign-2026a", _signer("broker-sign-2026a"), "2026-03-01T12:00:00Z")]
    blocks += [writer.block([_alert(f"C:{i}", 1 + i, [_decision("COL", "DELIVER", ["col.cover"], feed="t.feed.COL")])],
                            "broker-sign-2026a", _signer("broker-sign-2026a"), "2026-03-01T12:00:00Z")
               for i in range(col_only)]
    index = AuditIndex(folder / "index.sqlite")
    _ingest(index, {DECISIONS: blocks, USA_RCPT: _receipts("USA", ["U:1"])})
    return index


def test_a_scoped_auditor_reads_the_same_integrity_whatever_others_were_sent(tmp_path: Path) -> None:
    """Blocks about COL alone change nothing a USA auditor reads on the integrity page."""
    seen = [_index(tmp_path / str(n), n).integrity(Scope("USA")) for n in (0, 7)]
    for found in seen:
        found.pop("indexed_at", None)
    assert seen[0] == seen[1]


def test_a_scoped_auditor_gets_only_the_state_of_a_decision_chain(tmp_path: Path) -> None:
    """A decision chain reads as its state and problem count; no records, signatures, checkpoint or position."""
    found = _index(tmp_path, 3).integrity(Scope("USA"))
    decided = [c for c in found["chains"] if c["topic"] == DECISIONS]
    assert decided == [{"topic": DECISIONS, "partition": 0, "chain": None, "problems": 0, "state": "sound"}]
    assert DECISIONS not in {p["topic"] for p in found["positions"]}
    own = next(c for c in found["chains"] if c["topic"] == USA_RCPT)
    assert own["records"] == 2 and own["signed"] == 1 and own["last_checkpoint_seq"] is not None


def test_a_national_auditor_keeps_every_chain_field(tmp_path: Path) -> None:
    """National scope: every chain's records, signatures, checkpoint and the positions of every topic."""
    found = _index(tmp_path, 3).integrity(Scope())
    decided = next(c for c in found["chains"] if c["topic"] == DECISIONS)
    assert decided["records"] == 4 and decided["signed"] == 4 and decided["state"] == "sound"
    assert {"last_checkpoint_seq", "last_checkpoint_offset", "last_checkpoint_at"} <= decided.keys()
    assert {p["topic"] for p in found["positions"]} == {DECISIONS, USA_RCPT}


def test_a_hostile_chain_name_reaches_the_integrity_page_escaped(tmp_path: Path) -> None:
    """A receipt chain named with an escape sequence and a right-to-left mark shows, in its unvouched-receipts
    finding and its chain row, as visible escapes, for the partner's auditor and the national one alike."""
    name = "USA/\x1b[31mred\u202e"
    writer = ChainWriter(USA_RCPT, 0, checkpoint_every=1 << 62, chain=name)
    waiting = writer.append("RECEIPT", {"partner": "USA", "alert_id": "U:1", "version": 1, "status": "RECEIVED",
                                        "feed": "t.feed.USA:0:0", "at": "2026-03-01T12:05:00Z"})
    index = AuditIndex(tmp_path / "index.sqlite")
    _ingest(index, {USA_RCPT: [waiting]})
    for scope in (Scope("USA"), Scope()):
        found = index.integrity(scope)
        texts = [f["problem"] for f in found["findings"]] + [str(c["chain"]) for c in found["chains"]]
        assert any("USA/\\x1b[31mred\\u202e" in t for t in texts if "receipt record(s)" in t)
        assert "USA/\\x1b[31mred\\u202e" in [c["chain"] for c in found["chains"]]
        assert all(t.isprintable() for t in texts)
