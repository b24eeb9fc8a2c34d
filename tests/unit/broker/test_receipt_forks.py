"""Forks in a partner's receipt chain are settled by the signed path, and a retired receipt key vouches for no chain."""

from __future__ import annotations

import hashlib
import hmac
import json

from broker.audit import ChainHead, ChainWriter, verify_partition
from broker.audit.receipts import Unvouched
from broker.audit.verify import ChainState, PartitionWalk

SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
KEY = b"k" * 32
OLD, NEW = "COL-rcpt-2026a", "COL-rcpt-2026b"


def _sign(payload: bytes) -> bytes:
    return hmac.new(KEY, payload, hashlib.sha512).digest()  # 64 bytes, as an Ed25519 signature


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return hmac.compare_digest(_sign(payload), sig)


def _receipt(writer: ChainWriter, alert: str) -> bytes:
    return writer.append("RECEIPT", {"partner": "COL", "alert_id": alert, "status": "RECEIVED"})


def _walk(values: list[bytes], **kw: object) -> tuple[PartitionWalk, list[tuple[int, str]], dict[str, list[int]]]:
    """Walk ``values`` as readers that prune do; the findings (offset, problem) and every offset pruned."""
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, **kw)  # type: ignore[arg-type]
    found: list[tuple[int, str]] = []
    pruned: dict[str, list[int]] = {}
    for offset, value in enumerate(values):
        _, at = walk.feed(offset, value)
        found += [(f.offset, f.problem) for f in (*at, *walk.settled)]
        for chain, offsets in walk.pruned.items():
            pruned.setdefault(chain, []).extend(offsets)
    return walk, found, pruned


def _genuine_and_forger() -> tuple[ChainWriter, ChainWriter, list[bytes]]:
    """COL's chain up to a checkpoint, and a forger holding COL's Kafka login (not its key) continuing it."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt(writer, "SNM:0"), writer.checkpoint(NEW, _sign, SIGNED_AT)]
    forger = ChainWriter("access", 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62, chain="COL")
    return writer, forger, values


def test_a_forged_record_at_the_next_seq_does_not_push_the_signed_path_out() -> None:
    """A forged receipt written first at COL's next seq is the fork reported (chain, seq, offset, no content);
    COL's own receipts, on its checkpoint's path, are sound and only the forged one is pruned."""
    writer, forger, values = _genuine_and_forger()
    values += [_receipt(forger, "SNM:forged"), _receipt(writer, "SNM:1"), _receipt(writer, "SNM:2"),
               writer.checkpoint(NEW, _sign, SIGNED_AT)]
    _, found, pruned = _walk(values)
    assert found == [(2, "chain COL fork at seq 2: 1 record(s) from offset 2 on hold places in the chain that other "
                         "records hold, and the signed record at offset 5 (seq 4) vouches for the other branch: no "
                         "signature vouches for them")]
    assert pruned == {"COL": [2]}
    assert all("SNM:forged" not in problem for _, problem in found)


def test_a_forged_branch_written_after_the_genuine_record_is_pruned_and_cuts_nothing() -> None:
    """A forged record claiming the place of a receipt COL already wrote forks the chain: the checkpoint's path
    keeps COL's receipts; the forged branch alone is reported and pruned."""
    writer, forger, values = _genuine_and_forger()
    values += [_receipt(writer, "SNM:1"), _receipt(forger, "SNM:forged"), _receipt(forger, "SNM:forged2"),
               _receipt(writer, "SNM:2"), writer.checkpoint(NEW, _sign, SIGNED_AT)]
    walk, found, pruned = _walk(values)
    assert [(at, problem.split(":")[0]) for at, problem in found] == [(3, "chain COL fork at seq 2")]
    assert "2 record(s) from offset 3" in found[0][1] and pruned == {"COL": [3, 4]}
    assert walk.vouched()[0].seq == 4


def test_a_reader_that_holds_a_chain_as_one_lot_takes_none_of_a_fork() -> None:
    """Without ``prunes`` (a reader holding a chain's waiting records as one lot) a settled fork cuts the chain at
    the signed record, with the fork as its finding: the forged receipt is never vouched for."""
    writer, forger, values = _genuine_and_forger()
    values += [_receipt(forger, "SNM:forged"), _receipt(writer, "SNM:1"), writer.checkpoint(NEW, _sign, SIGNED_AT)]
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL")
    results = [(walk.feed(offset, value)[1], list(walk.cut)) for offset, value in enumerate(values)]
    last_found, last_cut = results[-1]
    assert last_cut == ["COL"] and [f.offset for f in last_found] == [2] and "fork at seq 2" in last_found[0].problem


def test_a_flood_of_forks_stays_within_the_bounds_tracked_and_is_never_vouched() -> None:
    """Forks beyond the records tracked per chain are findings at once, held by no one; what the walk tracks stays
    within its bound, and the checkpoint still vouches for COL's own path."""
    writer, _, values = _genuine_and_forger()
    values.append(_receipt(writer, "SNM:1"))
    anchor = ChainHead.after(json.loads(values[1]))
    for i in range(20):  # twenty siblings of SNM:1, each at seq 2
        values.append(ChainWriter("access", 0, ChainHead(anchor.seq, anchor.prev), chain="COL").append(
            "RECEIPT", {"partner": "COL", "alert_id": f"SNM:f{i}", "status": "RECEIVED"}))
    values.append(writer.checkpoint(NEW, _sign, SIGNED_AT))
    walk, found, pruned = _walk(values, tracked=(5, 8))
    untracked = [at for at, problem in found if "than are tracked" in problem]
    assert len(untracked) == 16 and len(pruned["COL"]) == 4  # four siblings tracked (with SNM:1), then refused
    assert walk._tracked == 0 and walk.vouched()[0].seq == 3


def test_unvouched_drops_only_the_offsets_pruned() -> None:
    """A reader's held receipts lose exactly the offsets a settled fork pruned, counts and bytes included."""
    held: Unvouched[str] = Unvouched()
    for offset in range(4):
        held.add("COL", offset, f"r{offset}", 10)
    assert held.drop("COL", [1, 3, 9]) == 2 and len(held) == 2
    assert held.pop("COL", vouched=True) == [(0, "r0"), (2, "r2")]
    assert held.drop("COL", [0]) == 0


def test_a_retired_receipt_key_vouches_for_no_chain_a_new_one_included() -> None:
    """Once COL's newer key has signed one chain, its retired key signing another chain (one it never signed
    before) is reported and vouches for nothing; an index continuing from saved states finds the same."""
    main = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt(main, "SNM:0"), main.checkpoint(OLD, _sign, SIGNED_AT),
              _receipt(main, "SNM:1"), main.checkpoint(NEW, _sign, SIGNED_AT)]
    fresh = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL/x")
    late = [fresh.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:x", "status": "RECEIVED"}),
            fresh.checkpoint(OLD, _sign, SIGNED_AT)]
    report = verify_partition("access", 0, enumerate([*values, *late]), _verify, "receipts", "COL")
    problems = [f.problem for f in report.findings]
    assert any("COL/x checkpoint seq 1 is signed by COL-rcpt-2026a, a key COL had moved on from "
               "(COL-rcpt-2026b signed after it" in p for p in problems)
    assert [v.chain for v in report.vouched] == ["COL"]

    walk = PartitionWalk("access", 0, _verify, "receipts", "COL")
    for offset, value in enumerate(values):
        walk.feed(offset, value)
    saved = {chain: ChainState.from_json(json.loads(json.dumps(state.to_json())))
             for chain, state in walk.chains.items()}
    again = PartitionWalk("access", 0, _verify, "receipts", "COL", chains=saved)
    again.feed(4, late[0])
    _, found = again.feed(5, late[1])
    assert any("moved on from" in f.problem for f in found)


def test_an_older_receipt_key_col_never_used_here_vouches_for_no_chain() -> None:
    """COL's chains signed by its 2026b key only: a chain signed later by its 2026a key, which no record in the
    partition was signed with (those expired, or it leaked unused), is reported by the generation order."""
    main = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt(main, "SNM:0"), main.checkpoint(NEW, _sign, SIGNED_AT)]
    fresh = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL/x")
    late = [fresh.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:x", "status": "RECEIVED"}),
            fresh.checkpoint(OLD, _sign, SIGNED_AT)]
    report = verify_partition("access", 0, enumerate([*values, *late]), _verify, "receipts", "COL")
    assert any(f.offset == 3 and "COL/x checkpoint seq 1 is signed by COL-rcpt-2026a, a key COL had moved on from "
               "(COL-rcpt-2026b, of a newer generation, signed before it in this partition)" in f.problem
               for f in report.findings)
    assert [v.chain for v in report.vouched] == ["COL"]


def test_a_rotation_across_chains_is_no_finding() -> None:
    """COL rotating forward (old, then new, in any of its chains) is sound."""
    main = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    other = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL/x")
    values = [_receipt(main, "SNM:0"), main.checkpoint(OLD, _sign, SIGNED_AT),
              other.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:1", "status": "RECEIVED"}),
              other.checkpoint(NEW, _sign, SIGNED_AT), _receipt(main, "SNM:2"), main.checkpoint(NEW, _sign, SIGNED_AT)]
    assert verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL").ok
