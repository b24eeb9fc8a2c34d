"""What an owner checks before it extends its chain, and what a receipt must match to count."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker import auditor
from broker.audit import ChainHead, ChainWriter, last_ingress, resume_offset, verify_partition
from broker.audit.chain import canonical, sealed
from broker.audit.receipts import sent_records
from broker.audit.verify import ChainState, PartitionWalk, ReceiptReach, feed_place, head_problem
from broker.audit_index import AuditIndex
from broker.kafka import StillOpen
from broker.topology import TopicNames
from puente.errors import AuditChainError, ConfigError, KafkaUnavailableError
from tests.unit.broker.test_receipt_forks import _receipt as _receipt_of


@pytest.fixture(autouse=True)
def _no_topic_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """These walks run with no Kafka (conn None): a receipts topic's retention.ms is then not read, and an emptied
    receipts partition stays not checked (``auditor.receipts_kept``)."""
    async def unread(conn: Any, topics: Any) -> dict[str, int]:
        return {}
    monkeypatch.setattr(auditor, "receipts_kept", unread)


SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
KEY = b"k" * 32


def _sign(payload: bytes) -> bytes:
    # 64 bytes, as an Ed25519 signature: a record's sig must be exactly 128 lowercase hex digits
    return hmac.new(KEY, payload, hashlib.sha512).digest()


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return hmac.compare_digest(_sign(payload), sig)


def _receipts(chain: str = "COL") -> tuple[ChainWriter, list[bytes]]:
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain=chain)
    values = [writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{i}", "status": "RECEIVED"})
              for i in range(3)]
    values.append(writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT))
    return writer, values


def test_a_head_the_owner_signed_may_be_extended() -> None:
    """A chain that ends with its owner's valid checkpoint has a sound head."""
    _, values = _receipts()
    assert head_problem("access", 0, values[-1], "COL", _verify) is None


def test_a_forged_receipt_after_the_checkpoint_is_not_a_sound_head() -> None:
    """A receipt someone else appended after the owner's checkpoint is unsigned: the owner must not sign over it."""
    writer, _ = _receipts()
    forged = writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:withheld", "status": "RECEIVED"})
    problem = head_problem("access", 0, forged, "COL", _verify)
    assert problem is not None and "unsigned" in problem


def test_a_head_signed_by_another_partner_or_badly_is_refused() -> None:
    """A checkpoint by another partner's key, or one whose signature fails, is no sound head."""
    writer, _ = _receipts()
    other = writer.checkpoint("USA-rcpt-2026a", _sign, SIGNED_AT)
    assert "may not vouch" in (head_problem("access", 0, other, "COL", _verify) or "")
    writer2, _ = _receipts()
    bad = writer2.checkpoint("COL-rcpt-2026a", lambda p: b"\0" * 64, SIGNED_AT)
    assert "does not verify" in (head_problem("access", 0, bad, "COL", _verify) or "")


def test_a_head_with_a_duplicate_key_is_refused_and_reported() -> None:
    """A record whose bytes carry a duplicate key (which a parser resolves silently) is not as sealed."""
    _, values = _receipts()
    tampered = values[0].replace(b'"status":"RECEIVED"', b'"status":"REJECTED","status":"RECEIVED"')
    report = verify_partition("access", 0, enumerate([tampered, *values[1:]]), _verify, "receipts")
    assert any("not in the form its writer sealed" in f.problem for f in report.findings)
    assert head_problem("access", 0, tampered, "COL", _verify) is not None


def test_a_block_names_the_feed_records_it_sent() -> None:
    """The feed records a block says went out: views delivered and recall notices sent, each with its feed topic,
    the version it carries and the decision's time; nothing withheld or not sent."""
    block = ChainWriter("decisions", 0).block(
        [{"kind": "ALERT", "alert_id": "SNM:1", "at": "2026-11-01T10:00:00Z",
          "decisions": [{"partner": "COL", "decision": "DELIVER_REDACTED", "feed": "p.feed.COL"},
                        {"partner": "USA", "decision": "WITHHOLD"},
                        {"partner": "CRI", "decision": "DELIVER", "feed": "p.feed.CRI", "sent": False}]},
         {"kind": "ALERT", "alert_id": "SNM:2", "version": 2, "action": "RECALL", "previous_version": 3,
          "at": "2026-11-01T10:01:00Z", "decisions": [{"partner": "COL", "decision": "RECALL", "feed": "p.feed.COL"}]}],
        "broker-sign-2026a", _sign, "t")
    assert sent_records(json.loads(block)) == [("SNM:1", "COL", "p.feed.COL", 1, "2026-11-01T10:00:00Z"),
                                               ("SNM:2", "COL", "p.feed.COL", 4, "2026-11-01T10:01:00Z")]


def test_blocks_always_fit_and_the_chain_still_verifies() -> None:
    """However large the entries, every block stays under the limit, and the blocks form one sound chain."""
    reasons = [f"caveat 'X{i}' is unknown to the policy" for i in range(5_000)]
    huge = {"partner": "COL", "decision": "WITHHOLD", "reasons": reasons, "rules": ["unknown.caveat"]}
    normal = {"partner": "USA", "decision": "DELIVER", "reasons": ["ok"], "rules": ["R"]}
    entries = [{"kind": "ALERT", "alert_id": f"SNM:{i}", "decisions": [huge if i % 3 == 0 else normal]}
               for i in range(30)]
    writer = ChainWriter("decisions", 0)
    blocks = writer.blocks(entries, "broker-sign-2026a", _sign, "t", max_bytes=64 * 1024)
    assert all(len(b) <= 64 * 1024 for b in blocks)
    report = verify_partition("decisions", 0, enumerate(blocks), _verify, "decisions")
    assert report.ok and report.records == len(blocks)
    ids = [e["alert_id"] for b in blocks for e in json.loads(b)["entries"]]
    assert ids == [f"SNM:{i}" for i in range(30)]  # every entry once, in order
    shrunk = [d for b in blocks for d in json.loads(b)["decision_table"] if d.get("truncated")]
    assert shrunk and all(len(d["reasons"]) <= 20 for d in shrunk)


def _indexed(tmp_path: Path, values: list[bytes]) -> tuple[list[str], list[tuple[int, str]]]:
    """COL's receipts ``values`` indexed alone: the receipts held unmatched (a receipts topic alone vouches for no
    delivery: no row), and the chain findings."""
    with AuditIndex(tmp_path / "index.sqlite") as index:
        index.register({"access": "receipts"}, {"access": "COL"})
        ingest = index.partition("access", 0, "receipts", _verify, owner="COL")
        for offset, value in enumerate(values):
            ingest.add(offset, value)
        ingest.commit()
        assert index._all("SELECT alert_id FROM receipts") == []
        held = [r[0] for r in index._all("SELECT alert_id FROM unmatched_receipts ORDER BY \"offset\"")]
        return held, index._all("SELECT \"offset\", problem FROM findings WHERE unmatched = 0 ORDER BY 1, 2")


def _slipped_in(bad_checkpoint: bool = False) -> list[bytes]:
    """COL's chain with a receipt someone else slipped in after a checkpoint, continuing it (and, with
    ``bad_checkpoint``, a checkpoint of theirs whose signature fails), before COL's next batch (whose writer goes
    on from its own head): that batch repeats the seq, and its checkpoint follows it."""
    writer, values = _receipts()
    forged = ChainWriter("access", 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62, chain="COL")
    values.append(forged.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:forged", "status": "RECALLED"}))
    if bad_checkpoint:
        values.append(forged.checkpoint("COL-rcpt-2026a", lambda payload: b"\0" * 64, SIGNED_AT))
    values.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:next", "status": "RECEIVED"}))
    values.append(writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT))
    return values


@pytest.mark.parametrize("bad_checkpoint", [False, True], ids=["receipt", "receipt-and-bad-checkpoint"])
def test_a_checkpoint_does_not_vouch_for_a_receipt_its_hash_path_does_not_reach(
        tmp_path: Path, audit_topics: dict[str, list[bytes]], bad_checkpoint: bool) -> None:
    """The checkpoint vouches only for what its hash path runs back through: a receipt slipped in at the place of
    COL's next one is a fork the checkpoint settles against (COL's own receipt counts), and so is one followed by a
    checkpoint of the intruder's that does not verify (reported, and never the chain's newest record: it cuts off
    none of COL's receipts); the forged one is never counted."""
    values = _slipped_in(bad_checkpoint)
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    problems = [(f.offset, f.problem) for f in report.findings]
    if bad_checkpoint:
        assert problems == [(5, "checkpoint seq 5 has an invalid signature"),
                            (4, "chain COL fork at seq 4: 2 record(s) from offset 4 on hold places in the chain that "
                                "other records hold, and the signed record at offset 7 (seq 5) vouches for the other "
                                "branch: no signature vouches for them")]
    else:
        assert problems == [(4, "chain COL fork at seq 4: 1 record(s) from offset 4 on hold places in the chain that "
                                "other records hold, and the signed record at offset 6 (seq 5) vouches for the other "
                                "branch: no signature vouches for them")]
    # A receipts topic alone vouches for no delivery: what a checkpoint vouched for waits, unmatched, for the
    # decisions (a finding each, never a row). The index keeps the signed path as `audit verify` does: COL's
    # own receipt after the fork is vouched for, the forged one never; its chain findings are verify's.
    held, chain_findings = _indexed(tmp_path, values)
    assert held == ["SNM:0", "SNM:1", "SNM:2", "SNM:next"]
    assert chain_findings == sorted(problems)

    audit_topics["access"] = values
    left: list[int] = []
    found = asyncio.run(_rows(auditor.read_log(None, {"access": "receipts"}, auditor.LogFilter(),  # type: ignore[arg-type]
                                               _verify, left, {"access": "COL"})))
    assert [r["alert_id"] for r in found] == ["SNM:0", "SNM:1", "SNM:2", "SNM:next"]
    assert left == [2 if bad_checkpoint else 1]


def _intruded(intruder: str) -> tuple[list[bytes], int]:
    """COL's chain: a checkpoint, two receipts, an intruder's record, COL's third receipt and its checkpoint; and
    the intruder's offset. The intruder has COL's write access to the receipts topic, never its key."""
    writer, values = _receipts()
    values += [writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:w{i}", "status": "RECEIVED"})
               for i in range(2)]
    newest = json.loads(values[-1])
    at_next = ChainWriter("access", 0, ChainHead.after(newest), checkpoint_every=1 << 62, chain="COL")
    ahead = ChainWriter("access", 0, ChainHead(seq=newest["seq"] + 1000, prev="ab" * 32), checkpoint_every=1 << 62,
                        chain="COL")
    bad = {"at-next-bad-signature": lambda: at_next.checkpoint("COL-rcpt-2026a", lambda payload: b"\0" * 64, SIGNED_AT),
           "at-next-edited": lambda: at_next.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:x",
                                                                "status": "RECEIVED"}).replace(b"SNM:x", b"SNM:y"),
           "replay-of-the-newest": lambda: values[-1],
           "replay-of-an-old-one": lambda: values[1],
           "gap-ahead": lambda: ahead.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:z", "status": "RECEIVED"}),
           "gap-ahead-signed-badly": lambda: ahead.checkpoint("COL-rcpt-2026a", lambda payload: b"\1" * 64, SIGNED_AT)}
    values.append(bad[intruder]())
    values.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:w2", "status": "RECEIVED"}))
    values.append(writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT))
    return values, 6


@pytest.mark.parametrize("intruder", ["at-next-bad-signature", "at-next-edited", "replay-of-the-newest",
                                      "replay-of-an-old-one", "gap-ahead", "gap-ahead-signed-badly"])
def test_a_record_that_is_not_sound_cuts_off_none_of_the_receipts_waiting_for_the_partners_checkpoint(
        tmp_path: Path, audit_topics: dict[str, list[bytes]], intruder: str) -> None:
    """Whoever may write a partner's receipts topic can put a record that is not sound among the receipts waiting for
    the partner's next checkpoint: one at the chain's next place whose signature fails or that was edited, a copy of
    the partner's own record, one ahead of the chain. It is reported at its offset, and never becomes the chain's
    newest record: the partner's checkpoint then vouches for every receipt of its own, in `audit verify`, the index
    and `audit log` alike; the intruder's record is never counted."""
    values, at = _intruded(intruder)
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    assert report.findings and {f.offset for f in report.findings} == {at}, report.findings
    assert not any("cut off" in f.problem for f in report.findings)
    own = ["SNM:0", "SNM:1", "SNM:2", "SNM:w0", "SNM:w1", "SNM:w2"]
    held, chain_findings = _indexed(tmp_path, values)
    assert held == own
    assert chain_findings == sorted((f.offset, f.problem) for f in report.findings)
    audit_topics["access"] = values
    left: list[int] = []
    found = asyncio.run(_rows(auditor.read_log(None, {"access": "receipts"}, auditor.LogFilter(),  # type: ignore[arg-type]
                                               _verify, left, {"access": "COL"})))
    assert [r["alert_id"] for r in found] == own and left == [1]


def _stray(seq: int, prev: str, claimed: str | None = None) -> bytes:
    """A receipt of COL's chain at ``seq`` after ``prev``, sealed right, or claiming the hash ``claimed``."""
    body = canonical({"v": 1, "seq": seq, "prev": prev, "kind": "RECEIPT", "chain": "COL", "partner": "COL",
                      "alert_id": "SNM:stray", "status": "RECEIVED"})
    return sealed(body, claimed or hashlib.sha256(body).hexdigest())


def test_records_whose_claimed_hashes_loop_never_hang_a_reader() -> None:
    """Records that are not sound claim any hash and follow any hash: one following its own, two following each
    other. They are reported, and COL's next checkpoint vouches for its receipts, without the walk going round."""
    writer, values = _receipts()
    values += [_stray(50, "ab" * 32, "ab" * 32), _stray(60, "cd" * 32, "ef" * 32), _stray(61, "ef" * 32, "cd" * 32),
               writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:3", "status": "RECEIVED"}),
               writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    assert {f.offset for f in report.findings} == {4, 5, 6}
    assert [v.seq for v in report.vouched] == [json.loads(values[-1])["seq"]]


def test_a_flood_of_strays_and_forks_never_keeps_the_partners_chain_from_its_next_checkpoints() -> None:
    """Records ahead of the chain fill what a walk tracks, a forged receipt holds the chain's next place, and COL's
    own receipt after them cannot be tracked: that batch is lost, reported, and COL's own signed checkpoint (ahead
    of the chain as the walk knows it) breaks the chain there, so every later batch is vouched for again."""
    writer, values = _receipts()
    forger = ChainWriter("access", 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62, chain="COL")
    values.append(forger.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:forged", "status": "RECEIVED"}))
    values.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:3", "status": "RECEIVED"}))
    values += [_stray(900 + i, "cd" * 32) for i in range(4)]
    values.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:4", "status": "RECEIVED"}))
    values.append(writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT))
    found = _later_batches_vouched(writer, values)
    assert any("cut off" in f.problem for _, problems in found for f in problems)


def _later_batches_vouched(writer: ChainWriter, values: list[bytes]) -> list[tuple[int, list[Any]]]:
    """Three more batches of COL's (a receipt and its checkpoint each) after ``values``, walked with small bounds (6
    records per chain, 100 in all): they have no finding and COL's last checkpoint is vouched for. The findings of
    the records before them, per offset."""
    later = len(values)
    for i in range(3):
        values.append(writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:b{i}", "status": "RECEIVED"}))
        values.append(writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT))
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, tracked=(6, 100))
    found = [(offset, walk.feed(offset, value)[1]) for offset, value in enumerate(values)]
    assert all(not problems for offset, problems in found if offset >= later), found[later:]
    assert [v.seq for v in walk.vouched()] == [json.loads(values[-1])["seq"]]
    return found[:later]


def _reach(values: list[bytes]) -> ReceiptReach:
    """The feed offsets COL's receipts chain ``values`` reach, walked as `audit verify` walks it."""
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True)
    reach = ReceiptReach({"p.feed.COL": "COL"}, "p.feed.")
    reach.begin("COL")
    for offset, value in enumerate(values):
        doc, found = walk.feed(offset, value)
        reach.take(doc, not found, [*walk.cut, *walk.pruned])
    return reach


def test_a_stray_settled_away_leaves_the_partners_reach_whole() -> None:
    """The feed offsets COL's receipts reach count every receipt its checkpoint vouches for: records that are not
    sound among them (one edited, one ahead of the chain), reported and settled away, are held by no reader, so
    they cut nothing from what the end check sees."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")

    def receipt(n: int) -> bytes:
        return writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{n}", "feed": f"p.feed.COL:0:{n}",
                                         "status": "RECEIVED", "at": "2026-01-01T00:00:00Z"})

    values = [receipt(0), writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT), receipt(1), receipt(2),
              _stray(99, "cd" * 32, "ee" * 32), _stray(99, "cd" * 32), receipt(3),
              writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    reach = _reach(values)
    assert reach.sound == {("p.feed.COL", 0): 3}


@pytest.mark.parametrize("status", ["RECЕIVED", "OK", "REJECTED: x; y", None])
def test_a_receipt_whose_status_no_subscriber_writes_moves_no_accepted_end(status: object) -> None:
    """``accepted`` (the offsets the subscriber is taken to have opened, checked against its group's commit) counts
    only statuses a subscriber writes (``known_status``): a look-alike RECEIVED counts as an opened record no more
    than a REJECTED one, whatever it is signed with."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")

    def receipt(n: int, said: object) -> bytes:
        return writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{n}", "feed": f"p.feed.COL:0:{n}",
                                         "status": said, "at": "2026-01-01T00:00:00Z", "version": 1})

    values = [receipt(0, "RECEIVED"), receipt(1, status), writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    reach = _reach(values)
    assert reach.sound == {("p.feed.COL", 0): 1} and reach.accepted == {("p.feed.COL", 0): 0}


@pytest.mark.parametrize("replayed", [slice(2, 4), slice(0, 4), slice(3, 4)],
                         ids=["an-old-receipt-and-its-checkpoint", "a-whole-old-batch", "an-old-checkpoint"])
def test_a_copy_of_an_old_batch_settles_nothing_and_counts_for_nothing(
        tmp_path: Path, audit_topics: dict[str, list[bytes]], replayed: slice) -> None:
    """Whoever may write COL's receipts topic can copy COL's own old records, its signed checkpoints included, after
    a later checkpoint. The copies are reported where they stand; none starts a branch that a copied checkpoint then
    settles (which would prune COL's receipts waiting for its next checkpoint, or count a copied receipt twice):
    `audit verify`, the index and `audit log` all count each of COL's receipts once."""
    writer, values = _receipts()
    values += [writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:3", "status": "RECEIVED"}),
               writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    values += [writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:w{i}", "status": "RECEIVED"})
               for i in range(2)]
    copies = values[replayed]
    first = len(values)
    values += copies
    values += [writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:w2", "status": "RECEIVED"}),
               writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    assert {f.offset for f in report.findings} == set(range(first, first + len(copies))), report.findings
    assert not any("cut off" in f.problem or "fork" in f.problem for f in report.findings)
    assert [v.seq for v in report.vouched] == [json.loads(values[-1])["seq"]]
    own = ["SNM:0", "SNM:1", "SNM:2", "SNM:3", "SNM:w0", "SNM:w1", "SNM:w2"]
    held, chain_findings = _indexed(tmp_path, values)
    assert held == own
    assert chain_findings == sorted((f.offset, f.problem) for f in report.findings)
    audit_topics["access"] = values
    found = asyncio.run(_rows(auditor.read_log(None, {"access": "receipts"}, auditor.LogFilter(),  # type: ignore[arg-type]
                                               _verify, [], {"access": "COL"})))
    assert [r["alert_id"] for r in found] == own


@pytest.mark.parametrize("before_any_checkpoint", [False, True])
def test_a_flood_continuing_the_chain_past_the_bounds_never_stops_the_partners_later_checkpoints(
        before_any_checkpoint: bool) -> None:
    """A forger continues COL's chain, hashes right, with more receipts than a walk tracks (here 6; by default
    20,000), ahead of COL's own next batch: that batch is lost and reported, and COL's own checkpoint, behind the
    flood as the walk knows the chain, breaks it there, so every later batch of COL's is vouched for again."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:0", "status": "RECEIVED"})]
    if not before_any_checkpoint:
        values.append(writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT))
    forger = ChainWriter("access", 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62, chain="COL")
    values += [forger.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:f{i}", "status": "RECEIVED"})
               for i in range(10)]
    values += [writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:1", "status": "RECEIVED"}),
               writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    assert any(problems for _, problems in _later_batches_vouched(writer, values))


def _vouched_receipts(values: list[bytes], **kw: Any) -> list[str]:
    """The receipts a reader that prunes takes as vouched for, walking ``values`` (``PartitionWalk(prunes=True)``)."""
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True, **kw)
    waiting: list[tuple[int, str]] = []
    taken: list[str] = []
    for offset, value in enumerate(values):
        doc, found = walk.feed(offset, value)
        if walk.cut:
            waiting = []
        dropped = set(walk.pruned.get("COL", []))
        waiting = [(at, alert) for at, alert in waiting if at not in dropped]
        if doc is not None and not found:
            if doc["kind"] == "RECEIPT":
                waiting.append((offset, doc["alert_id"]))
            elif doc["kind"] == "CHECKPOINT":
                taken += [alert for _, alert in waiting]
                waiting = []
    return taken


def test_a_copy_of_a_checkpoint_signed_with_a_key_retention_deleted_does_not_retire_the_key_in_use() -> None:
    """Retention deleted every record COL signed with its old key; a copy of one of them, appended now, is reported,
    and does not make COL's key in use look retired: its later checkpoints vouch for its receipts."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    old = [_receipt_of(writer, "SNM:old"), writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    values = [_receipt_of(writer, "SNM:0"), writer.checkpoint("COL-rcpt-2026b", _sign, SIGNED_AT), old[1]]
    for i in range(3):
        values += [_receipt_of(writer, f"SNM:b{i}"), writer.checkpoint("COL-rcpt-2026b", _sign, SIGNED_AT)]
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    assert {f.offset for f in report.findings} == {0, 2}, report.findings  # the first record walked, and the copy
    assert [v.seq for v in report.vouched] == [json.loads(values[-1])["seq"]]
    assert _vouched_receipts(values) == ["SNM:b0", "SNM:b1", "SNM:b2"]


def test_before_any_checkpoint_a_copy_of_one_retention_deleted_cuts_off_nothing() -> None:
    """The walk begins where retention cut COL's partition, inside a batch; a copy of COL's deleted checkpoint is
    older than the receipts walked after the cut: it is reported and cuts none of them off."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    for i in range(3):
        _receipt_of(writer, f"SNM:old{i}")
    deleted = writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)
    values = [_receipt_of(writer, "SNM:a"), _receipt_of(writer, "SNM:b"), _receipt_of(writer, "SNM:c"), deleted,
              writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT), _receipt_of(writer, "SNM:d"),
              writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    without = [v for v in values if v is not deleted]
    assert _vouched_receipts(values) == _vouched_receipts(without) == ["SNM:b", "SNM:c", "SNM:d"]
    report = verify_partition("access", 0, enumerate(values), _verify, "receipts", "COL")
    assert not any("cut off" in f.problem for f in report.findings)


def test_chains_that_never_checkpoint_do_not_keep_the_partners_own_chain_from_settling_forks() -> None:
    """Chains of COL's that no signed record ever anchors (a forger's, COL/e1 and COL/e2) fill the records tracked
    for a whole partition (here 8; by default 200,000) once and for good; COL's own chain, anchored by its
    checkpoints, still settles each later fork, so one forged receipt at its next place loses no batch."""
    values: list[bytes] = []
    for name in ("COL/e1", "COL/e2"):
        junk = ChainWriter("access", 0, checkpoint_every=1 << 62, chain=name)
        values += [_receipt_of(junk, f"X{name}{i}") for i in range(4)]
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values += [_receipt_of(writer, "SNM:0"), writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    own = ["SNM:0"]
    for b in range(3):
        forger = ChainWriter("access", 0, ChainHead.after(json.loads(values[-1])), checkpoint_every=1 << 62,
                             chain="COL")
        values.append(_receipt_of(forger, f"X{b}"))
        values += [_receipt_of(writer, f"SNM:b{b}"), _receipt_of(writer, f"SNM:c{b}"),
                   writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
        own += [f"SNM:b{b}", f"SNM:c{b}"]
    assert [a for a in _vouched_receipts(values, tracked=(4, 8)) if not a.startswith("XCOL")] == own


def test_a_stray_far_ahead_and_a_flood_to_the_bound_never_keep_the_partners_checkpoints_out() -> None:
    """Retention cut COL's partition inside a batch; the first record walked is a forger's, far ahead of the chain,
    and a forged line from genesis fills the records tracked per chain (here 6). COL's own records, arriving as gaps,
    cannot be tracked: that is reported, and COL's next checkpoint breaks the chain there, so its later batches are
    vouched for."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    for i in range(4):
        _receipt_of(writer, f"SNM:old{i}")
    writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)  # deleted by retention, with the receipts before it
    values = [_stray(10**12, "ab" * 32)]
    forger = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values += [_receipt_of(forger, f"X{i}") for i in range(5)]
    for b in range(4):
        values += [_receipt_of(writer, f"SNM:{b}a"), _receipt_of(writer, f"SNM:{b}b"),
                   writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    assert _vouched_receipts(values, tracked=(6, 100)) == [f"SNM:{b}{x}" for b in range(1, 4) for x in "ab"]
    walk = PartitionWalk("access", 0, _verify, "receipts", "COL", tracked=(6, 100))
    found = [f.problem for offset, value in enumerate(values) for f in walk.feed(offset, value)[1]]
    assert any("than are tracked" in problem for problem in found)


def test_a_state_saved_with_a_copy_at_or_below_its_anchor_is_cleaned_when_a_walk_resumes_from_it() -> None:
    """An index written by an earlier version may have saved a copy of an old receipt as a record waiting at or below
    the anchor; a walk resuming from that state drops it, so a copy of the old checkpoint after it settles nothing."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    values = [_receipt_of(writer, "SNM:0"), _receipt_of(writer, "SNM:1"),
              writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT), _receipt_of(writer, "SNM:2"),
              writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT), _receipt_of(writer, "SNM:w0")]
    first = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True)
    for offset, value in enumerate(values):
        first.feed(offset, value)
    saved = first.chains["COL"].to_json()
    copy = json.loads(values[1])
    saved["nodes"][copy["hash"]] = [copy["seq"], copy["prev"], len(values), 2]  # as the earlier version kept it
    resumed = PartitionWalk("access", 0, _verify, "receipts", "COL", prunes=True,
                            chains={"COL": ChainState.from_json(saved)})
    assert copy["hash"] not in resumed.chains["COL"].nodes and resumed._tracked == 1
    later = [values[2], _receipt_of(writer, "SNM:w1"), writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    found = [resumed.feed(offset, value)[1] for offset, value in enumerate(later, start=len(values) + 1)]
    assert found[0] and not found[1] and not found[2] and not resumed.settled
    assert resumed.vouched()[0].seq == json.loads(later[-1])["seq"]


async def _rows(rows: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row async for row in rows]


def test_a_record_nested_too_deeply_is_a_finding_and_the_index_goes_on(tmp_path: Path) -> None:
    """orjson reads JSON nested deeper than it writes: such a record (one a partner may write unsigned to its
    receipts topic) is reported as not sealed as written, never an error that stops `audit verify` or the index
    at that offset for good; the records after it are still indexed."""
    _, values = _receipts()
    deep = b'{"kind":"RECEIPT","seq":0,"prev":"0","hash":"x","chain":"COL","x":' + b"[" * 300 + b"]" * 300 + b"}"
    assert "nested too deeply" in (head_problem("access", 0, deep, "COL", _verify) or "")
    report = verify_partition("access", 0, enumerate([deep, *values]), _verify, "receipts", "COL")
    assert any("nested too deeply" in f.problem and f.offset == 0 for f in report.findings)
    with AuditIndex(tmp_path / "index.sqlite") as index:
        index.register({"access": "receipts"}, {"access": "COL"})
        ingest = index.partition("access", 0, "receipts", _verify, owner="COL")
        for offset, value in enumerate([deep, *values]):
            ingest.add(offset, value)
        ingest.commit()
        assert ingest.next_offset == len(values) + 1


def _forged_after_blocks() -> list[bytes]:
    """Two sound decision blocks, then unsigned DECISION records (the kind written before blocks) that continue
    the chain: one claims a delivery to USA, one a recall from COL."""
    writer = ChainWriter("decisions", 0)
    values = [writer.block([{"kind": "ALERT", "alert_id": f"SNM:{i}", "at": "2026-11-01T10:00:00Z",
                             "decisions": [{"partner": "COL", "decision": "DELIVER"}]}],
                           "broker-sign-2026a", _sign, "2026-11-01T10:00:00Z") for i in range(2)]
    values.append(writer.append("DECISION", {"alert_id": "SNM:forged", "partner": "USA", "decision": "DELIVER",
                                             "at": "2026-11-01T10:00:01Z"}))
    values.append(writer.append("DECISION", {"alert_id": "SNM:0", "partner": "COL", "decision": "RECALL",
                                             "version": 1, "at": "2026-11-01T10:00:02Z"}))
    return values


def test_unsigned_records_after_the_last_block_are_reported_and_listed_nowhere(
        tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """Records someone else appended to the broker's chain, unsigned, are problems for `audit verify`, and
    `audit log`, `audit recalls` (which read `read_log`'s rows) and the audit index leave them out."""
    values = _forged_after_blocks()
    audit_topics["decisions"] = values
    [report] = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify))  # type: ignore[arg-type]
    assert [f.offset for f in report.findings] == [2, 3]
    assert report.vouched_text() == "signed up to seq 1 (2026-11-01T10:00:00Z)"
    left: list[int] = []
    rows = asyncio.run(_rows(auditor.read_log(None, {"decisions": "decisions"}, auditor.LogFilter(),  # type: ignore[arg-type]
                                              _verify, left)))
    assert [(r["alert_id"], r["decision"]) for r in rows] == [("SNM:0", "DELIVER"), ("SNM:1", "DELIVER")]
    assert left == [2]
    with AuditIndex(tmp_path / "index.sqlite") as index:
        index.register({"decisions": "decisions"}, {})
        ingest = index.partition("decisions", 0, "decisions", _verify, owner=None)
        for offset, value in enumerate(values):
            ingest.add(offset, value)
        ingest.commit()
        assert index._all("SELECT alert_id, decision FROM decisions ORDER BY id") == [
            ("SNM:0", "DELIVER"), ("SNM:1", "DELIVER")]
        assert index.problems() == 2


# collect-denials over the stand-in for Kafka (conftest.py), with a producer that keeps what it is sent.

NAMES = TopicNames("p")
LINE = ("[2026-12-01T11:50:{s:02d}.000Z] INFO Principal = User:partner-COL is Denied operation = READ from host = "
        "10.1.1.1 on resource = Topic:LITERAL:p.feed.USA for request = Fetch with resourceRefCount = 1 "
        "based on rule DefaultDeny")


class _Producer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.transactions = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.transactions += 1
        yield None

    async def send(self, topic: str, value: bytes, partition: int) -> asyncio.Future[None]:
        self.sent.append(value)
        delivered = asyncio.get_running_loop().create_future()  # what aiokafka gives: the record's delivery
        delivered.set_result(None)
        return delivered


async def kept_as_stated(*args: Any) -> bool:
    """``check_audit_retention`` finding the topic's retention the one the blocks state (no Kafka here)."""
    return False


def _collect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: list[str],
             new_chain: bool = False) -> tuple[int, list[bytes]]:
    out = _Producer()
    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: out)
    monkeypatch.setattr(auditor, "check_audit_retention", kept_as_stated)
    log = tmp_path / "authorizer.log"
    log.write_text("".join(line + "\n" for line in lines))
    added = asyncio.run(auditor.collect_denials(None, NAMES, [log], frozenset({"partner-COL"}),  # type: ignore[arg-type]
                                                "broker-sign-2026a", _sign, _verify, keep_days=30,
                                                new_chain=new_chain))
    return added, out.sent


def test_collect_denials_continues_only_a_chain_that_verifies(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """The collector walks the denials partition as `audit verify` does: on a sound chain it adds only the lines
    not yet collected, after the last block; an old block replayed at the end, or a record someone else wrote
    (claiming lines as collected), stops it with one error naming `puente audit verify`, and nothing is sent."""
    audit_topics[NAMES.denials] = []
    added, first = _collect(monkeypatch, tmp_path, [LINE.format(s=1), LINE.format(s=2)])
    assert added == 2 and len(first) == 1
    audit_topics[NAMES.denials] = list(first)
    added, more = _collect(monkeypatch, tmp_path, [LINE.format(s=1), LINE.format(s=2), LINE.format(s=3)])
    assert added == 1
    chain = [*first, *more]
    assert verify_partition(NAMES.denials, 0, enumerate(chain), _verify, "denials").ok

    forged = ChainWriter(NAMES.denials, 0, ChainHead.after(json.loads(chain[-1])))
    suppress = forged.append("BLOCK", {"entries": [{"kind": "DENIAL", "line_sha256": "x"}]})
    for tampered in ([*chain, chain[0]], [*chain, suppress]):
        audit_topics[NAMES.denials] = tampered
        with pytest.raises(AuditChainError, match=r"cannot be continued: .*run `puente audit verify`") as err:
            _collect(monkeypatch, tmp_path, [LINE.format(s=4)])
        assert "\n" not in str(err.value)


def test_a_long_log_is_collected_in_bounded_transactions_each_line_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """A flood of denied requests is read as a stream and written ``per_transaction`` denials at a time (here 4;
    default 10,000): the chain verifies, each line is collected once, and a run again adds nothing."""
    monkeypatch.setitem(auditor.collect_denials.__kwdefaults__, "per_transaction", 4)
    audit_topics[NAMES.denials] = []
    lines = [LINE.format(s=s) for s in range(10)]
    out = _Producer()
    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: out)
    log = tmp_path / "authorizer.log"
    log.write_text("".join(line + "\n" for line in [*lines, *lines[:3]]))  # repeats, in this run and the next
    added = asyncio.run(auditor.collect_denials(None, NAMES, [log], frozenset({"partner-COL"}),  # type: ignore[arg-type]
                                                "broker-sign-2026a", _sign, _verify))
    assert added == 10 and out.transactions == 3
    assert verify_partition(NAMES.denials, 0, enumerate(out.sent), _verify, "denials").ok
    entries = [e for block in out.sent for e in json.loads(block)["entries"]]
    assert len({e["line_sha256"] for e in entries}) == len(entries) == 10
    audit_topics[NAMES.denials] = list(out.sent)
    assert _collect(monkeypatch, tmp_path, lines) == (0, [])


def test_a_log_that_cannot_be_read_is_named_and_a_kafka_timeout_is_not_taken_for_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    audit_topics[NAMES.denials] = []
    out = _Producer()
    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: out)
    missing = tmp_path / "gone.log"
    with pytest.raises(ConfigError, match=f"cannot read the authorizer log {missing}"):
        asyncio.run(auditor.collect_denials(None, NAMES, [missing], frozenset({"partner-COL"}),  # type: ignore[arg-type]
                                            "broker-sign-2026a", _sign, _verify))

    class _TimesOut(_Producer):
        async def send(self, topic: str, value: bytes, partition: int) -> None:
            raise TimeoutError

    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: _TimesOut())
    monkeypatch.setitem(auditor.collect_denials.__kwdefaults__, "per_transaction", 1)  # written while reading
    log = tmp_path / "authorizer.log"
    log.write_text(LINE.format(s=1) + "\n")
    with pytest.raises(TimeoutError):
        asyncio.run(auditor.collect_denials(None, NAMES, [log], frozenset({"partner-COL"}),  # type: ignore[arg-type]
                                            "broker-sign-2026a", _sign, _verify))


def test_collected_denials_are_in_time_order_within_a_second(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """A denial on a whole second is written without a fraction (``...:05Z``), which sorts as text after
    ``...:05.500000Z``: the block lists them by the instant, the whole second first."""
    audit_topics[NAMES.denials] = []
    half = LINE.format(s=5).replace(":05.000Z]", ":05.500Z]")
    added, sent = _collect(monkeypatch, tmp_path, [half, LINE.format(s=5)])
    assert added == 2
    entries = json.loads(sent[0])["entries"]
    assert [e["at"] for e in entries] == ["2026-12-01T11:50:05Z", "2026-12-01T11:50:05.500000Z"]


def _slot_blocks(offsets: list[list[int]]) -> list[bytes]:
    """A slot's decision blocks, one per batch, each entry naming the ingress record it decided."""
    writer = ChainWriter("decisions", 0)
    return [writer.block([{"kind": "ALERT", "alert_id": f"SNM:{o}", "ingress": f"p.ingress.SNM:0:{o}",
                           "decisions": []} for o in batch], "broker-sign-2026a", _sign, "2026-11-01T10:00:00Z")
            for batch in offsets]


@pytest.mark.parametrize(("committed", "short"), [(6, False), (4, False), (9, True)],
                         ids=["reaches-it", "past-it", "short-of-it"])
def test_a_decision_chains_end_is_checked_against_the_broker_groups_committed_offset(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch, committed: int, short: bool) -> None:
    """The walk cannot see blocks dropped from a chain's end (what remains is whole); the broker group's committed
    offset, committed after each block, can: a chain ending before the record just before it is a finding,
    naming the missing offsets. A chain past it (the broker's commit trails its blocks) is not short, and says so."""
    async def settled(conn: object, tp: object, *, timeout_s: float) -> None:
        return None

    monkeypatch.setattr(auditor, "wait_settled", settled)
    audit_topics["decisions"] = _slot_blocks([[0, 1, 2], [3, 4, 5]])
    [report] = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                                 ends={("p.ingress.SNM", 0): committed}))
    assert report.end is not None and (report.end.last, report.end.committed, report.end.short) == (5, committed, short)
    if short:
        [finding] = report.findings
        assert finding.offset == 1 and "offsets 6 to 8 are missing from the chain's end" in finding.problem
    else:
        assert report.ok
        trails = "at or past the broker group's committed offset 4, which trails it"
        assert (trails in report.end.describe()) == (committed == 4)


def test_with_no_decisions_topic_every_ingress_partition_committed_past_is_unnamed(
        audit_topics: dict[str, list[bytes]]) -> None:
    """The decisions topic deleted (or not visible): a walk of what remains sees no chain at all, and each ingress
    partition the broker group has committed past is a finding, never a silent pass."""
    audit_topics["decisions"] = []
    reports = asyncio.run(auditor.verify_topics(None, {}, _verify,  # type: ignore[arg-type]
                                                ends={("p.ingress.SNM", 0): 4, ("p.ingress.PN", 0): 0}))
    assert [(r.topic, r.partition, len(r.findings)) for r in reports] == [("p.ingress.SNM", 0, 1)]
    assert "no sound decision chain records any of this partition's records" in reports[0].findings[0].problem


def test_a_block_whose_commit_shows_late_is_waited_for_not_reported(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka writes a transaction's markers partition by partition: the group's offset can show before the block
    committed with it. A short-looking end is read again once the transactions open on the partition have ended."""
    first, second = _slot_blocks([[0, 1, 2], [3, 4, 5]])
    audit_topics["decisions"] = [first]

    async def settled(conn: object, tp: object, *, timeout_s: float) -> None:
        audit_topics["decisions"] = [first, second]

    monkeypatch.setattr(auditor, "wait_settled", settled)
    [report] = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                                 ends={("p.ingress.SNM", 0): 6}))
    assert report.ok and report.records == 2 and report.end is not None and report.end.checked
    assert not report.end.short


def test_an_end_behind_a_transaction_that_does_not_end_is_unchecked_not_short(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """While a transaction stays open on the partition (a node down, a writer stuck), what it will commit cannot be
    read: the end is reported as not checked, neither sound nor a finding."""
    audit_topics["decisions"] = _slot_blocks([[0, 1, 2]])

    async def stuck(conn: object, tp: object, *, timeout_s: float) -> None:
        raise StillOpen("decisions[0] still has a transaction open after 15s")

    monkeypatch.setattr(auditor, "wait_settled", stuck)
    [report] = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                                 ends={("p.ingress.SNM", 0): 6}))
    assert report.ok and report.end is not None and not report.end.checked and not report.end.short
    assert "end not checked" in report.end.describe()


def test_an_end_with_no_visible_committed_offset_is_unchecked_not_sound(audit_topics: dict[str, list[bytes]]) -> None:
    """Kafka lists only the offsets of topics the login may describe: a chain whose ingress partition has none is
    reported as not checked (``committed`` None), neither short nor a finding; a receipts topic is never checked."""
    audit_topics["decisions"] = _slot_blocks([[0, 1]])
    audit_topics["receipts"] = _receipts()[1]
    reports = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions", "receipts": "receipts"},  # type: ignore[arg-type]
                                                _verify, ends={}))
    assert [(r.end.committed, r.end.short) if r.end else None for r in reports] == [(None, False), None]
    assert "end not checked" in reports[0].end.describe()  # type: ignore[union-attr]


def test_an_entry_cut_to_fit_its_block_keeps_its_ingress_whole() -> None:
    """An entry too large for a block is shrunk (strings cut to 200 characters), but its ``ingress``, which the slot
    and end checks read, stays whole for the longest topic name Kafka allows."""
    topic = "p" * 230 + ".ingress.SNM"
    entry = {"kind": "ALERT", "alert_id": "SNM:" + "x" * 5000, "ingress": f"{topic}:2:41",
             "decisions": [{"partner": "COL", "decision": "WITHHOLD", "reasons": ["r" * 5000] * 200}]}
    [value] = ChainWriter("decisions", 0).blocks([entry], "broker-sign-2026a", _sign, "t", max_bytes=8192)
    doc = json.loads(value)
    assert len(value) <= 8192 and len(doc["entries"][0]["alert_id"]) == 200
    assert last_ingress(doc) == (topic, 2, 41)
    assert resume_offset(doc) == 42 and ChainHead.after(doc).resume == 42


def test_a_slot_resumes_after_the_newest_record_its_last_block_names() -> None:
    """Where a slot reads on from is its last block's: after the newest ingress record its entries name (records
    and dead letters alike, in any order), after a gap's last skipped record, at 0 after a gap at a topic made
    anew (which names no record); nothing known from an empty partition or a block that names no record."""
    def block(*entries: dict[str, object]) -> dict[str, object]:
        return {"kind": "BLOCK", "seq": 3, "hash": "h", "entries": list(entries)}

    assert resume_offset(block({"kind": "ALERT", "ingress": "t.ingress.SNM:1:7"},
                               {"kind": "DEAD_LETTER", "ingress": "t.ingress.SNM:1:9"},
                               {"kind": "ALERT", "ingress": "t.ingress.SNM:1:8"})) == 10
    assert resume_offset(block({"kind": "GAP", "from_offset": 4, "next_offset": 10,
                                "ingress": "t.ingress.SNM:1:9"})) == 10
    assert resume_offset(block({"kind": "GAP", "reason": "topic-remade", "from_offset": 50, "next_offset": 0})) == 0
    assert resume_offset(block({"kind": "GAP", "next_offset": 7})) is None  # a gap past records names its last one
    assert resume_offset(block({"kind": "ALERT", "ingress": "not an ingress"})) is None
    assert resume_offset(None) is None and ChainHead.after(None).resume is None


def test_an_ingress_partition_committed_past_with_no_chain_naming_it_is_a_finding(
        audit_topics: dict[str, list[bytes]]) -> None:
    """A decision partition emptied (or all of it unsound) leaves nothing to walk; the broker group's offset of its
    ingress partition still shows records were decided: a finding at that ingress partition. One with nothing
    committed yet is no finding."""
    audit_topics["decisions"] = _slot_blocks([[0, 1]])
    reports = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                                ends={("p.ingress.SNM", 0): 2, ("p.ingress.PN", 1): 7,
                                                      ("p.ingress.PN", 2): 0}))
    assert [(r.topic, r.partition, r.ok) for r in reports] == [("decisions", 0, True), ("p.ingress.PN", 1, False)]
    [finding] = reports[1].findings
    assert finding.offset == 6 and "no sound decision chain records any" in finding.problem


def test_the_ends_are_this_deployments_ingress_partitions_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group id set by hand may hold offsets of other topics (another deployment's, a non-Puente topic): only
    this prefix's ingress partitions are ends a chain must reach."""
    async def group_offsets(conn: object, group: str) -> dict[tuple[str, int], int]:
        return {("p.ingress.SNM", 0): 4, ("q.ingress.SNM", 0): 9, ("p.audit.decisions", 1): 3, ("orders", 0): 2}

    monkeypatch.setattr(auditor, "group_offsets", group_offsets)
    assert asyncio.run(auditor.broker_ends(None, "g", "p")) == {("p.ingress.SNM", 0): 4}  # type: ignore[arg-type]


def test_only_a_transaction_left_open_makes_an_end_unchecked_other_errors_stop_the_walk(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """An end is "not checked" only when the transaction it waits for does not end; Kafka unreachable while it
    waits is that error, with its own message and exit status, not a transaction said to be open."""
    audit_topics["decisions"] = _slot_blocks([[0, 1, 2]])

    async def unreachable(conn: object, tp: object, *, timeout_s: float) -> None:
        raise KafkaUnavailableError("Kafka at k:9093 could not be reached")

    monkeypatch.setattr(auditor, "wait_settled", unreachable)
    with pytest.raises(KafkaUnavailableError):
        asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                          ends={("p.ingress.SNM", 0): 6}))


def test_ends_wait_within_one_settle_time_for_the_whole_walk(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Many short-looking ends (a node down) share one END_SETTLE_S: the first waits what is left of it, the
    next ones what remains then; an end that is not short does not wait at all."""
    audit_topics["decisions"] = _slot_blocks([[0, 1, 2]])
    given: list[float] = []

    async def stuck(conn: object, tp: object, *, timeout_s: float) -> None:
        given.append(timeout_s)
        await asyncio.sleep(0.05)  # the time a wait takes
        raise StillOpen("still open")

    monkeypatch.setattr(auditor, "wait_settled", stuck)
    monkeypatch.setattr(auditor, "partitions_of", lambda consumer, topic: _async([0, 0, 0]))
    reports = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                                ends={("p.ingress.SNM", 0): 6}))
    assert len(reports) == 3 and all(r.ok and r.end is not None and not r.end.checked for r in reports)
    assert len(given) == 3 and given[0] <= auditor.END_SETTLE_S and given[0] > given[1] > given[2]
    given.clear()
    asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                      ends={("p.ingress.SNM", 0): 3}))
    assert given == []


async def _async(value: Any) -> Any:
    return value


def test_a_short_end_behind_unsound_records_is_not_reported_twice(audit_topics: dict[str, list[bytes]],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """When the records after the last sound block are unsound, those are the findings: the chain is not also
    called short (the missing blocks may be the unsound ones)."""
    first, second = _slot_blocks([[0, 1, 2], [3, 4, 5]])
    audit_topics["decisions"] = [first, second[:-20] + b"tampered" + second[-12:]]

    async def settled(conn: object, tp: object, *, timeout_s: float) -> None:
        return None

    monkeypatch.setattr(auditor, "wait_settled", settled)
    [report] = asyncio.run(auditor.verify_topics(None, {"decisions": "decisions"}, _verify,  # type: ignore[arg-type]
                                                 ends={("p.ingress.SNM", 0): 6}))
    assert report.end is not None and report.end.short
    assert report.findings and all(f.offset == 1 for f in report.findings)
    assert not any("missing from the chain's end" in f.problem for f in report.findings)


# A partner's receipts against its subscriber group's committed feed offsets.

FEED = "p.feed.COL"


def _feed_receipts(places: list[int], *, chain: str = "COL", signed: bool = True,
                   writer: ChainWriter | None = None, topic: str = "receipts", feed: str = FEED,
                   status: str = "RECEIVED") -> list[bytes]:
    """A subscriber's batch: a receipt per offset of ``feed`` partition 0, then its checkpoint."""
    writer = writer or ChainWriter(topic, 0, checkpoint_every=1 << 62, chain=chain)
    values = [writer.append("RECEIPT", {"partner": chain.split("/")[0], "alert_id": f"SNM:{i}", "feed": f"{feed}:0:{i}",
                                        "status": status}) for i in places]
    if signed:
        values.append(writer.checkpoint(f"{chain.split('/')[0]}-rcpt-2026a", _sign, SIGNED_AT))
    return values


READERS = {FEED: "COL", "p.feed.USA": "USA"}  # as the policy gives each feed its partner


def _receipt_ends(monkeypatch: pytest.MonkeyPatch, committed: dict[tuple[str, int], int],
                  asked: frozenset[str] = frozenset(READERS), still_open: bool | str = False,
                  owners: dict[str, str] | None = None, start: int = 0,
                  ) -> tuple[list[auditor.PartitionReport], list[float]]:
    """``verify_topics`` over the receipts topics ``owners`` names (default COL's "receipts"), with the subscriber
    groups' ``committed`` offsets; ``still_open``: True, every receipts partition keeps a transaction open; a
    topic's name, that topic's alone; ``start``: the receipts partitions' first offset held (above 0: records
    were deleted)."""
    waits: list[float] = []

    async def settle(conn: object, tps: list[Any], *, timeout_s: float) -> set[Any]:
        waits.append(timeout_s)
        return {tp for tp in tps if still_open is True or tp.topic == still_open}

    async def log_starts(consumer: object, tps: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(tps, start)

    monkeypatch.setattr(auditor, "log_starts", log_starts)

    monkeypatch.setattr(auditor, "settle", settle)
    owners = owners or {"receipts": "COL"}
    feed_ends = auditor.FeedEnds(committed, asked, "p.feed.", READERS)
    reports = asyncio.run(auditor.verify_topics(None, dict.fromkeys(owners, "receipts"), _verify,  # type: ignore[arg-type]
                                                owners, feed_ends=feed_ends))
    return reports, waits


@pytest.mark.parametrize(("committed", "short"), [(6, False), (4, False), (9, True)],
                         ids=["reaches-it", "past-it", "short-of-it"])
def test_a_partners_receipts_are_checked_against_its_subscriber_groups_committed_offset(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch, committed: int, short: bool) -> None:
    """A subscriber commits each batch's receipts with its feed offsets: receipts that stop short of the record
    just before the group's committed offset lost their end (or the offsets were moved forward past records never
    received), a finding at the feed partition naming the offsets; receipts reaching past it are no finding. The
    receipts partitions' open transactions are let end once, before the walk."""
    audit_topics["receipts"] = _feed_receipts([0, 1, 2]) + _feed_receipts([3, 4, 5], chain="COL/backup")
    reports, waits = _receipt_ends(monkeypatch, {(FEED, 0): committed})
    assert len(waits) == 1 and waits[0] <= auditor.END_SETTLE_S
    receipts, end = reports
    assert receipts.ok and receipts.end is None
    assert end.end is not None and (end.topic, end.end.last, end.end.committed, end.end.short) == (
        FEED, 5, committed, short)
    assert end.end.group == "p.feed.COL.subscriber" and end.end.of_receipts
    if short:
        [finding] = end.findings
        assert finding.offset == committed - 1
        assert "receipts of the feed records from offset 6 to 8 are missing" in finding.problem
    else:
        assert end.ok and "as the subscriber group p.feed.COL.subscriber's committed offset" in end.end.describe()


def test_receipts_no_checkpoint_vouches_for_do_not_reach_and_are_not_reported_twice(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Receipts after the last checkpoint count for nothing (anyone could have appended them); they are the
    finding already, so the end they leave short is not reported again."""
    writer = ChainWriter("receipts", 0, checkpoint_every=1 << 62, chain="COL")
    audit_topics["receipts"] = _feed_receipts([0, 1], writer=writer) + _feed_receipts([2, 3], writer=writer,
                                                                                       signed=False)
    receipts, end = _receipt_ends(monkeypatch, {(FEED, 0): 4})[0]
    assert end.end is not None and end.end.last == 1 and end.end.short and end.ok
    assert [f.offset for f in receipts.findings] == [3] and "no checkpoint" in receipts.findings[0].problem


def test_a_feed_partition_committed_past_with_no_receipt_naming_it_is_a_finding(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A receipts topic emptied (DeleteRecords) leaves nothing to walk; the subscriber group's offset still shows
    records were received: a finding at the feed partition. One that never held a record is a partner reading
    with a reader of its own, which writes no receipts: not checked, no finding. A partition with nothing
    committed is neither."""
    audit_topics["receipts"] = []
    reports, _ = _receipt_ends(monkeypatch, {(FEED, 0): 3, (FEED, 1): 0}, start=7)
    assert [(r.topic, r.partition) for r in reports] == [("receipts", 0), (FEED, 0)]
    [finding] = reports[1].findings
    assert finding.offset == 2 and "no sound receipt names any record there" in finding.problem
    reports, _ = _receipt_ends(monkeypatch, {(FEED, 0): 3}, start=0)
    end = reports[1].end
    assert reports[1].ok and end is not None and not end.checked and "a reader of its own" in end.describe()


def test_a_feed_no_partner_in_the_policy_reads_counts_its_one_claimants_receipts_or_is_unchecked(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Which partner's receipts count for a feed is the policy's word; for a feed it gives no partner (one that
    left, its feed kept) they are those of the one partner whose sound receipts name it, checked as before. With
    none, or two, whose receipts to expect is unknown: "not checked", with why, never sound."""
    gone = {("p.feed.GONE", 0): 3}
    audit_topics["receipts"] = _feed_receipts([0, 1, 2], feed="p.feed.GONE")
    reports, _ = _receipt_ends(monkeypatch, gone, asked=frozenset({*READERS, "p.feed.GONE"}))
    [end] = [r.end for r in reports if r.end is not None]
    assert all(r.ok for r in reports) and end.checked and end.last == 2
    reports, _ = _receipt_ends(monkeypatch, {("p.feed.GONE", 0): 9}, asked=frozenset({*READERS, "p.feed.GONE"}))
    assert [f.offset for r in reports for f in r.findings] == [8]
    audit_topics["receipts"] = []
    reports, _ = _receipt_ends(monkeypatch, gone, asked=frozenset({*READERS, "p.feed.GONE"}), start=4)
    [end] = [r.end for r in reports if r.end is not None]
    assert all(r.ok for r in reports) and not end.checked and "whose receipts to expect is unknown" in end.describe()
    audit_topics["receipts"] = _feed_receipts([0, 1, 2], feed="p.feed.GONE")
    audit_topics["receipts-usa"] = _feed_receipts([0], chain="USA", topic="receipts-usa", feed="p.feed.GONE")
    reports, _ = _receipt_ends(monkeypatch, gone, asked=frozenset({*READERS, "p.feed.GONE"}),
                               owners={"receipts": "COL", "receipts-usa": "USA"})
    [end] = [r.end for r in reports if r.end is not None]
    assert all(r.ok for r in reports) and not end.checked


def test_receipts_end_unchecked_when_the_group_was_not_read_or_a_transaction_stays_open(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed the receipts name whose group this login could not read (no DESCRIBE, a refused OffsetFetch) is
    "not checked", never sound; so is a short end while a receipts partition keeps a transaction open."""
    audit_topics["receipts"] = _feed_receipts([0, 1, 2])
    reports, waits = _receipt_ends(monkeypatch, {}, asked=frozenset())
    assert waits == []  # nothing committed to wait for
    [end] = [r for r in reports if r.end is not None and r.topic == FEED]
    assert end.ok and not end.end.checked and "end not checked" in end.end.describe()  # type: ignore[union-attr]
    # USA's feed, which no receipt names, is not checked either: its offsets were not read.
    [usa] = [r.end for r in reports if r.end is not None and r.topic == "p.feed.USA"]
    assert not usa.checked and "offsets were not read" in usa.describe()
    reports, _ = _receipt_ends(monkeypatch, {(FEED, 0): 9}, still_open=True)
    [end] = [r for r in reports if r.end is not None]
    assert end.ok and not end.end.checked and not end.end.short  # type: ignore[union-attr]


def test_a_receipt_for_another_partners_feed_is_a_finding_and_counts_for_nothing(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the feed's own partner (the policy's) can have read its records: USA's receipt naming COL's feed, signed
    with USA's own key, is a finding at that receipt, and cannot stand in for COL's missing ones."""
    audit_topics["receipts"] = _feed_receipts([0, 1])
    audit_topics["receipts-usa"] = _feed_receipts([2, 3], chain="USA", topic="receipts-usa")
    reports, _ = _receipt_ends(monkeypatch, {(FEED, 0): 4}, owners={"receipts": "COL", "receipts-usa": "USA"})
    usa = next(r for r in reports if r.topic == "receipts-usa")
    assert [f.offset for f in usa.findings] == [0, 1]
    assert "which the policy gives COL, not USA" in usa.findings[0].problem
    [col] = [r for r in reports if r.topic == FEED]
    assert col.end is not None and col.end.last == 1 and col.end.short and len(col.findings) == 1


@pytest.mark.parametrize("feed", [5, None, ["p.feed.COL:0:1"], "p.feed.COL:0", "p.feed.COL:x:1", "p.feed.COL:0:-1",
                                  "p.feed.COL:0:١", ":0:1", "a" * 300 + ":0:1", {"t": 1}, "p.feed\nCOL:0:1",
                                  "p.feed.COL\x1b[31m:0:1", "p.feed.CÖL:0:1"])
def test_a_receipt_naming_no_feed_place_reaches_nowhere(feed: Any) -> None:
    """A receipt's ``feed`` is the partner's word: one not of the form topic:partition:offset reaches nothing, and
    a chain name that is not a string is ignored, never a crash."""
    assert feed_place(feed) is None
    reach = ReceiptReach(READERS, "p.feed.")
    reach.take({"kind": "RECEIPT", "chain": "COL", "feed": feed}, True, [])
    reach.take({"kind": "RECEIPT", "chain": ["COL"], "feed": "p.feed.COL:0:1"}, True, [])
    reach.take({"kind": "CHECKPOINT", "chain": "COL"}, True, [])
    assert reach.sound == {} and reach.seen == {}


def test_a_checkpoint_that_does_not_verify_vouches_for_no_receipt(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a sound checkpoint of the partner's makes its receipts reach: one whose signature fails (someone without
    the partner's key) leaves them out, and its findings are the problem, not a second one for the end."""
    writer = ChainWriter("receipts", 0, checkpoint_every=1 << 62, chain="COL")
    good = _feed_receipts([0, 1], writer=writer)
    forged = _feed_receipts([2, 3], writer=writer, signed=False)
    forged.append(writer.checkpoint("COL-rcpt-2026a", lambda payload: b"\x00" * 64, SIGNED_AT))
    audit_topics["receipts"] = good + forged
    receipts, end = _receipt_ends(monkeypatch, {(FEED, 0): 4})[0]
    assert end.end is not None and end.end.last == 1 and end.end.short and end.ok
    assert any("invalid signature" in f.problem for f in receipts.findings)



def test_receipts_a_subscriber_accepted_with_no_committed_offset_are_unchecked_not_sound(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Receipts of records a subscriber opened commit with the group's offsets: where the group (read) has none (an
    admin deleted them, or they did not settle), the end is "not checked", never passed over. A REJECTED receipt
    alone (a record the subscriber could not open is never committed past) expects no offset."""
    audit_topics["receipts"] = _feed_receipts([0, 1, 2])
    [_, end] = _receipt_ends(monkeypatch, {})[0]
    assert end.ok and end.end is not None and end.end.committed is None and not end.end.checked
    audit_topics["receipts"] = _feed_receipts([0], status="REJECTED: CryptoError")
    assert [r.end for r in _receipt_ends(monkeypatch, {})[0]] == [None]


def test_a_receipt_naming_a_topic_that_is_no_feed_is_a_finding(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner's subscriber names the feed record it read; a sound receipt naming another topic (signed with the
    partner's own key) is a finding against it, not an end left unchecked for ever."""
    writer = ChainWriter("receipts", 0, checkpoint_every=1 << 62, chain="COL")
    audit_topics["receipts"] = (_feed_receipts([0, 1], writer=writer)
                                + _feed_receipts([5], feed="p.audit.decisions", writer=writer))
    reports = _receipt_ends(monkeypatch, {(FEED, 0): 2})[0]
    [finding] = [f for r in reports for f in r.findings]
    assert (finding.topic, finding.offset) == ("receipts", 3)
    assert "names p.audit.decisions, which is no feed of this deployment" in finding.problem
    assert all(r.end is None or r.end.checked for r in reports)


def test_another_partners_open_transaction_does_not_unsettle_this_partners_end(
        audit_topics: dict[str, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction kept open on USA's receipts topic (a crashed subscriber, or USA on purpose) leaves COL's short
    end a finding; only COL's own receipts topic left unsettled makes it "not checked"."""
    audit_topics["receipts"] = _feed_receipts([0, 1])
    audit_topics["receipts-usa"] = _feed_receipts([0], chain="USA", topic="receipts-usa", feed="p.feed.USA")
    both = {"receipts": "COL", "receipts-usa": "USA"}
    reports = _receipt_ends(monkeypatch, {(FEED, 0): 5}, still_open="receipts-usa", owners=both)[0]
    [short] = [r for r in reports if r.topic == FEED]
    assert short.end is not None and short.end.short and short.findings
    reports = _receipt_ends(monkeypatch, {(FEED, 0): 5}, still_open="receipts", owners=both)[0]
    [short] = [r for r in reports if r.topic == FEED]
    assert short.ok and short.end is not None and not short.end.checked


def test_receipts_waiting_in_one_partition_are_not_vouched_by_a_checkpoint_in_another() -> None:
    """A checkpoint vouches for the receipts before it in its own partition's chain: receipts left unvouched at the
    end of one partition stay so, whatever a chain of the same name does in another."""
    reach = ReceiptReach(READERS, "p.feed.")
    reach.begin("COL")
    reach.take({"kind": "RECEIPT", "chain": "COL", "feed": f"{FEED}:0:99", "status": "RECEIVED"}, True, [])
    reach.begin("COL")
    reach.take({"kind": "RECEIPT", "chain": "COL", "feed": f"{FEED}:0:3", "status": "RECEIVED"}, True, [])
    reach.take({"kind": "CHECKPOINT", "chain": "COL"}, True, [])
    # ``seen`` notes only places followed: (FEED, 0) is, from the checkpoint on (``MAX_PLACES``).
    assert reach.sound == {(FEED, 0): 3} and reach.seen == {}
    reach.take({"kind": "RECEIPT", "chain": "COL", "feed": f"{FEED}:0:120", "status": "RECEIVED"}, True, [])
    assert reach.sound == {(FEED, 0): 3} and reach.seen == {(FEED, 0): 120}


def test_a_key_the_chain_moved_on_from_signing_again_is_reported(tmp_path: Path) -> None:
    """A signing key rotates forward only. A retired generation that signs again after its successor (the
    key leaked, and whoever holds it can write the topic) is a finding in `audit verify` and in an index that
    continues a walk from its saved state; a rotation itself (a, then b) is not."""
    writer = ChainWriter("decisions", 0)

    def block(signer: str, n: int) -> bytes:
        return writer.block([{"kind": "ALERT", "alert_id": f"SNM:{n}", "decisions": []}], signer, _sign,
                            "2026-11-01T10:00:00Z")

    values = [block("broker-sign-2026a", 0), block("broker-sign-2026b", 1), block("broker-sign-2026b", 2)]
    walk = PartitionWalk("decisions", 0, _verify, "decisions")
    assert [found for value in values for found in walk.feed(values.index(value), value)[1]] == []
    saved = {chain: ChainState.from_json(json.loads(json.dumps(state.to_json())))
             for chain, state in walk.chains.items()}
    again = PartitionWalk("decisions", 0, _verify, "decisions", chains=saved)  # an index continuing
    _, found = again.feed(3, block("broker-sign-2026a", 3))
    assert len(found) == 1 and "moved on from" in found[0].problem and "broker-sign-2026b" in found[0].problem


def test_an_older_generation_the_chain_never_used_is_a_retired_key_in_use() -> None:
    """A chain begun under broker-sign-2026b (or whose 2026a blocks expired) takes no block signed later by 2026a,
    a key of an older generation it never saw (a leak): reported, by the generation order, not only by the keys seen;
    a key whose label says nothing of its order against the chain's is not."""
    writer = ChainWriter("decisions", 0)

    def block(signer: str, n: int) -> bytes:
        return writer.block([{"kind": "ALERT", "alert_id": f"SNM:{n}", "decisions": []}], signer, _sign,
                            "2026-11-01T10:00:00Z")

    values = [block("broker-sign-2026b", 0), block("broker-sign-2026b", 1), block("broker-sign-2026a", 2)]
    report = verify_partition("decisions", 0, enumerate(values), _verify, "decisions")
    assert [(f.offset, f.problem) for f in report.findings] == [(2, (
        "block seq 2 is signed by broker-sign-2026a, a key this chain had moved on from (broker-sign-2026b, of a "
        "newer generation, signed before it): a retired key in use"))]
    writer = ChainWriter("decisions", 0)
    values = [block("broker-sign-2026b", 0), block("broker-sign-spring", 1), block("broker-sign-2026c", 2)]
    assert verify_partition("decisions", 0, enumerate(values), _verify, "decisions").ok
