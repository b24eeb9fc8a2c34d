"""A walk keeps a state for a bounded number of chains per partition: records naming a new chain each (written by
a partner's own account in its receipts topic) cost the verifier and the audit index nothing they keep, and
every record they give up is a finding. Records naming a chain no topic of theirs can hold get no state at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker import auditor
from broker.audit import ChainWriter, verify_partition
from broker.audit.chain import MAX_CHAIN_NAME
from broker.audit.verify import PartitionWalk
from broker.audit_index import AuditIndex
from broker.partner import receipt_chain
from puente.errors import ConfigError
from tests.unit.broker.test_receipt_forks import NEW, _receipt, _sign, _verify

CAP = 10


def _flood(junk: int = 50) -> tuple[list[bytes], int]:
    """COL's own chain (a receipt and its checkpoint), then ``junk`` chains of one receipt each, then COL's chain
    going on (a receipt and its checkpoint, twice). The offset where COL's chain goes on."""
    col = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt(col, "SNM:0"), col.checkpoint(NEW, _sign, "t")]
    for i in range(junk):
        values.append(_receipt(ChainWriter("access", 0, checkpoint_every=1 << 62, chain=f"COL/j{i}"), f"J:{i}"))
    back = len(values)
    for alert in ("SNM:1", "SNM:2"):
        values += [_receipt(col, alert), col.checkpoint(NEW, _sign, "t")]
    return values, back


def test_a_flood_of_chains_keeps_the_walk_bounded_and_every_junk_receipt_is_a_finding() -> None:
    values, back = _flood()
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, max_chains=CAP)
    found: list[tuple[int, str]] = []
    most = 0
    for offset, value in enumerate(values):
        _, at = walk.feed(offset, value)
        found += [(f.offset, f.problem) for f in (*at, *walk.settled)]
        most = max(most, len(walk.chains))
    found += [(f.offset, f.problem) for f in walk.tail_findings()]
    assert most == CAP
    # COL's chain, written least recently once nine junk chains came, is given up at its newest record.
    assert any(at == 1 and "chain COL is given up" in p for at, p in found)
    # Every junk receipt is reported: given up with its receipt waiting, or waiting at the end.
    junk_offsets = {at for at, p in found if 2 <= at < back}
    assert junk_offsets == set(range(2, back))
    assert all("vouched for by no checkpoint" in p or "no checkpoint" in p for at, p in found if 2 <= at < back)
    # COL's chain, started anew, is reported where it goes on and sound again from its next checkpoint.
    assert any(at == back for at, _ in found)
    assert not any(at >= back + 2 for at, _ in found)


def test_without_a_flood_nothing_is_given_up() -> None:
    values, _ = _flood(junk=CAP - 2)
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, max_chains=CAP)
    for offset, value in enumerate(values):
        _, at = walk.feed(offset, value)
        assert not walk.given_up and not any("given up" in f.problem for f in (*at, *walk.settled))
    assert set(walk.chains) == {"COL", *(f"COL/j{i}" for i in range(CAP - 2))}


def test_records_naming_a_chain_their_topic_cannot_hold_get_no_state() -> None:
    other = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="USA/x")
    long = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL/" + "x" * MAX_CHAIN_NAME)
    col = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt(other, "A"), _receipt(long, "B"), _receipt(col, "C"), col.checkpoint(NEW, _sign, "t")]
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    problems = {f.offset: f.problem for f in report.findings}
    assert set(problems) == {0, 1}
    assert "USA/x in COL's receipts topic" in problems[0]
    assert f"longer than any subscriber writes (at most {MAX_CHAIN_NAME})" in problems[1]
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL")
    for offset, value in enumerate(values):
        walk.feed(offset, value)
    assert set(walk.chains) == {"COL"}
    # A receipt chain's record in the broker's decisions topic: reported, no state.
    decisions = PartitionWalk("decisions", 0, _verify, "decisions")
    _, at = decisions.feed(0, values[2])
    assert at and "topic that holds only the broker's decisions" in at[0].problem and not decisions.chains


def test_the_index_keeps_no_more_chains_than_the_walk_and_finds_what_verify_finds(
        tmp_path: Path, audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexed a few records at a time (each ingest resuming from the saved states), the index holds at most
    ``max_chains`` chain rows and finds, word for word, what `audit verify` over the whole partition finds."""
    monkeypatch.setitem(PartitionWalk.__init__.__kwdefaults__, "max_chains", CAP)
    values, _ = _flood()
    with AuditIndex(tmp_path / "index.sqlite") as index:
        index.register({"access": "receipts"}, {"access": "COL"})
        most = 0
        for start in range(0, len(values), 7):  # a new ingest per 7 records: the chain states are saved and read
            ingest = index.partition("access", 0, "receipts", _verify, owner="COL")
            for offset in range(start, min(start + 7, len(values))):
                ingest.add(offset, values[offset])
            ingest.commit()
            most = max(most, index._all("SELECT count(*) FROM chains")[0][0])
        indexed = index._all("SELECT \"offset\", problem FROM findings WHERE unmatched = 0 ORDER BY 1, 2")
    assert most == CAP
    audit_topics["access"] = values
    reports = asyncio.run(auditor.verify_topics(None, {"access": "receipts"}, _verify, {"access": "COL"}))
    # The index reports receipts waiting for a checkpoint when it is read, not as findings it stores.
    verified = sorted((f.offset, f.problem) for r in reports for f in r.findings
                      if "from here on that no" not in f.problem)
    assert [tuple(row) for row in indexed] == verified
    assert any("is given up" in p for _, p in verified)


@pytest.mark.parametrize("name", ["", "-x", "a/b", "x" * 65, "sp ace", "é"])
def test_a_subscriber_instance_name_no_walk_keeps_a_chain_for_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="check --instance"):
        receipt_chain("COL", name)
    assert receipt_chain("COL", "backup-2.a_b") == "COL/backup-2.a_b"
    assert len(receipt_chain("C" * 64, "x" * 64)) == MAX_CHAIN_NAME
