"""A chain begun again at seq 0 in a partition whose log starts past offset 0 is a start-cut finding unless its
first record says a new chain began there: a partner's receipts deleted and its chain restarted must not read
clean."""

from __future__ import annotations

from broker.audit import ChainWriter, verify_partition
from broker.audit.verify import StartFinding
from tests.unit.broker.test_audit_chain import _sign, _verify

RECEIPTS, DECISIONS = "t.receipts.COL", "t.audit.decisions"
SIGNED_AT = "2026-11-01T00:00:00Z"


def _receipts(writer: ChainWriter, n: int, mark: int | None = None) -> list[bytes]:
    """``n`` receipts of ``writer``'s chain, each checkpointed; the first stating ``new_chain_after`` when given."""
    out = []
    for i in range(n):
        body = {"partner": "COL", "alert_id": f"A{i}", "status": "RECEIVED"}
        if mark is not None and i == 0:
            body["new_chain_after"] = mark
        out += [writer.append("RECEIPT", body), writer.checkpoint("COL-rcpt-test", _sign, SIGNED_AT)]
    return out


def _deleted_then_restarted(mark: int | None = None) -> list[tuple[int, bytes]]:
    """Four records of chain COL deleted (DeleteRecords up to 4), then the chain written again from seq 0."""
    again = _receipts(ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL"), 2, mark)
    return [(4 + i, v) for i, v in enumerate(again)]


def test_a_receipt_chain_restarted_at_seq_0_after_its_records_were_deleted_is_a_finding() -> None:
    """The first record held is seq 0 while the log starts at offset 4: a start-cut finding naming both."""
    report = verify_partition(RECEIPTS, 0, _deleted_then_restarted(), _verify, "receipts", "COL", log_start=4)
    [found] = report.findings
    assert isinstance(found, StartFinding) and found.offset == 4
    assert "chain COL starts at seq 0 at offset 4" in found.problem and "log starts at offset 4" in found.problem


def test_a_new_chain_that_states_the_log_start_it_began_after_is_sound() -> None:
    """A subscriber that begins a new chain over an emptied partition and says so (``new_chain_after``) reads
    clean; a mark past the record's own offset says nothing."""
    ok = verify_partition(RECEIPTS, 0, _deleted_then_restarted(4), _verify, "receipts", "COL", log_start=4)
    assert ok.ok, [f.problem for f in ok.findings]
    bad = verify_partition(RECEIPTS, 0, _deleted_then_restarted(9), _verify, "receipts", "COL", log_start=4)
    assert not bad.ok


def test_chains_at_seq_0_that_are_not_the_first_record_held_or_in_an_uncut_log_are_sound() -> None:
    """A second subscriber instance begun after the partition's oldest records expired, and any chain in a log
    starting at 0, are no restart."""
    a = ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL/a")
    old = _receipts(a, 3)
    late = _receipts(ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL/b"), 1)
    held = list(enumerate([*old, *late]))[2:]
    assert verify_partition(RECEIPTS, 0, held, _verify, "receipts", "COL", log_start=2).ok
    whole = list(enumerate(_receipts(ChainWriter(RECEIPTS, 0, checkpoint_every=1 << 62, chain="COL"), 2)))
    assert verify_partition(RECEIPTS, 0, whole, _verify, "receipts", "COL", log_start=0).ok


def test_the_brokers_new_chain_over_an_emptied_decisions_partition_is_sound() -> None:
    """The broker's chain begun anew where retention emptied its partition opens with a GAP entry saying so."""
    gap = {"kind": "GAP", "reason": "audit-expired", "detail": "retention deleted its chain", "from_offset": 7,
           "next_offset": 7, "skipped": 0, "ingress": "t.ingress.SNM:0:6", "at": "2026-03-01T12:00:00Z"}
    block = ChainWriter(DECISIONS, 0).block([gap], "broker-sign-test", _sign, "2026-03-01T12:00:00Z")
    assert verify_partition(DECISIONS, 0, [(3, block)], _verify, "decisions", log_start=3).ok
    plain = ChainWriter(DECISIONS, 0).block([{"kind": "ALERT", "alert_id": "A0", "ingress": "t.ingress.SNM:0:7",
                                              "decisions": []}], "broker-sign-test", _sign, "2026-03-01T12:00:00Z")
    assert not verify_partition(DECISIONS, 0, [(3, plain)], _verify, "decisions", log_start=3).ok
