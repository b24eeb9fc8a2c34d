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
from broker.audit.verify import MAX_LISTED, PartitionWalk
from broker.audit_index import AuditIndex
from broker.partner import receipt_chain
from puente.errors import ConfigError
from tests.unit.broker.test_receipt_forks import NEW, _receipt, _sign, _verify

SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
CAP = 10


def _junk(i: int) -> bytes:
    """One unsigned receipt in a chain of its own: what anyone holding COL's Kafka login (not its key) can write."""
    return _receipt(ChainWriter("access", 0, checkpoint_every=1 << 62, chain=f"COL/j{i}"), f"J:{i}")


def _flood(junk: int = 50) -> tuple[list[bytes], int]:
    """COL's own chain (a receipt and its checkpoint), then ``junk`` chains of one receipt each, then COL's chain
    going on (a receipt and its checkpoint, twice). The offset where COL's chain goes on."""
    col = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt(col, "SNM:0"), col.checkpoint(NEW, _sign, SIGNED_AT)]
    values += [_junk(i) for i in range(junk)]
    back = len(values)
    for alert in ("SNM:1", "SNM:2"):
        values += [_receipt(col, alert), col.checkpoint(NEW, _sign, SIGNED_AT)]
    return values, back


def _walked(values: list[bytes], **kw: object) -> tuple[PartitionWalk, list[tuple[int, str]], list[int], int]:
    """Walk ``values`` as a reader that holds each chain's receipts until its checkpoint: the walk, every finding
    (tail included), the offsets of the receipts a checkpoint vouched for, and the most chains held at once."""
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, max_chains=CAP, **kw)  # type: ignore
    found: list[tuple[int, str]] = []
    waiting: dict[str, list[int]] = {}
    vouched: list[int] = []
    most = 0
    for offset, value in enumerate(values):
        doc, at = walk.feed(offset, value)
        found += [(f.offset, f.problem) for f in (*at, *walk.settled)]
        most = max(most, len(walk.chains))
        for chain in walk.cut:
            waiting.pop(chain, None)
        if doc is None or at:
            continue
        if doc["kind"] == "CHECKPOINT":
            vouched += waiting.pop(doc["chain"], [])
        else:
            waiting.setdefault(doc["chain"], []).append(offset)
    found += [(f.offset, f.problem) for f in walk.tail_findings()]
    return walk, found, vouched, most


def test_a_flood_of_chains_keeps_the_walk_bounded_and_costs_an_anchored_chain_nothing() -> None:
    values, back = _flood()
    walk, found, vouched, most = _walked(values)
    assert most == CAP
    # COL's chain, anchored by its checkpoint, is never given up: it goes on, every receipt vouched for.
    assert not any("chain COL " in p for _, p in found)
    assert vouched == [0, back, back + 2]
    # The junk chains give each other up; every junk receipt is reported, given up or waiting at the end.
    assert {at for at, _ in found} == set(range(2, back))
    assert all("vouched for by no checkpoint" in p or "no checkpoint of the partner's vouches" in p
               for _, p in found)
    assert len(walk.chains) == CAP and "COL" in walk.chains


def test_a_new_chain_given_up_in_a_flood_before_its_first_checkpoint_is_reported() -> None:
    """The one thing a flood costs a genuine chain: its first batch, written before any checkpoint anchored it,
    given up and reported (never counted); from its checkpoint on it is anchored and kept."""
    col = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL/new")
    values = [_receipt(col, "SNM:0"), *(_junk(i) for i in range(CAP)), col.checkpoint(NEW, _sign, SIGNED_AT)]
    values += [*(_junk(i) for i in range(CAP, 3 * CAP)), _receipt(col, "SNM:1"), col.checkpoint(NEW, _sign, SIGNED_AT)]
    _, found, vouched, _ = _walked(values)
    assert any(at == 0 and "chain COL/new is given up" in p and "1 receipt record(s)" in p for at, p in found)
    assert 0 not in vouched and len(values) - 2 in vouched


def test_copies_of_a_chains_old_records_are_never_taken_again_after_a_flood() -> None:
    """Anchored chains are never given up: a copy of COL's old records, written after a flood, is a repeat."""
    col = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    old = [_receipt(col, "SNM:0"), col.checkpoint(NEW, _sign, SIGNED_AT), _receipt(col, "SNM:1"),
           col.checkpoint(NEW, _sign, SIGNED_AT)]
    values = [*old, *(_junk(i) for i in range(3 * CAP)), *old[1:]]
    values += [_receipt(col, "SNM:2"), col.checkpoint(NEW, _sign, SIGNED_AT)]
    _, found, vouched, _ = _walked(values)
    copies = range(4 + 3 * CAP, 4 + 3 * CAP + 3)
    assert all(any(at == c and "reordered or repeated" in p for at, p in found) for c in copies)
    assert vouched == [0, 2, len(values) - 2]


def test_when_every_chain_held_is_anchored_a_new_chain_is_reported_and_not_checked() -> None:
    """Only the partner's key anchors a chain: a partner that signs more chains than a walk keeps costs itself
    the newest ones, each record a finding; the chains held go on."""
    writers = [ChainWriter("access", 0, checkpoint_every=1 << 62, chain=f"COL/i{i}") for i in range(CAP + 1)]
    values = [v for w in writers for v in (_receipt(w, "SNM:a"), w.checkpoint(NEW, _sign, SIGNED_AT))]
    values += [_receipt(writers[0], "SNM:b"), writers[0].checkpoint(NEW, _sign, SIGNED_AT)]
    walk, found, vouched, most = _walked(values)
    assert most == CAP and "COL/i10" not in walk.chains
    last = 2 * CAP
    assert [at for at, _ in found] == [last, last + 1]
    assert all("is not checked" in p and "none of its records is vouched for" in p for _, p in found)
    assert vouched == [*range(0, 2 * CAP, 2), last + 2]


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
    values = [_receipt(other, "A"), _receipt(long, "B"), _receipt(col, "C"), col.checkpoint(NEW, _sign, SIGNED_AT)]
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


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "sp ace", "é"])
def test_a_subscriber_instance_name_no_walk_keeps_a_chain_for_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="--instance must be 1-64"):
        receipt_chain("COL", name)
    assert receipt_chain("COL", "_backup-2.a_b") == "COL/_backup-2.a_b"
    assert len(receipt_chain("C" * 64, "x" * 64)) == MAX_CHAIN_NAME


def test_a_flood_of_junk_records_is_counted_past_the_findings_a_report_lists() -> None:
    """Every junk record is a finding; a report lists the first MAX_LISTED (here as many as the default) and
    counts the rest, so a flood holds no more of `audit verify`'s memory than that."""
    values = [b"junk %d" % i for i in range(MAX_LISTED + 250)]
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    assert len(report.findings) == MAX_LISTED and report.unlisted == 250 and report.problems == len(values)
    assert report.newest == len(values) - 1 and not report.ok
