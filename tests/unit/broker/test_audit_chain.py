"""Audit chains: appended records verify, and every kind of tampering is reported."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.auditor as auditor
from broker.audit import ChainHead, ChainWriter, flatten, seal, verify_partition
from broker.audit.chain import checkpoint_payload, shrink, unresolved_decisions
from broker.audit.receipts import sent_records
from broker.audit.verify import Holds, head_problem, signature_bytes
from broker.crypto import checker, sign_checkpoint

SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
KEY = b"k" * 32


def _sign(payload: bytes) -> bytes:
    # 64 bytes, as an Ed25519 signature: a record's sig must be exactly 128 lowercase hex digits
    return hmac.new(KEY, payload, hashlib.sha512).digest()


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return signer in ("broker-sign-test", "COL-rcpt-test") and hmac.compare_digest(_sign(payload), sig)


def _receipt(i: int, status: str = "RECEIVED") -> dict[str, str]:
    return {"alert_id": f"A{i}", "partner": "COL", "status": status}


def _chain(n: int, every: int = 4) -> list[bytes]:
    """A plain chain (COL's receipts: the broker's own chains hold signed blocks only) with checkpoints."""
    writer = ChainWriter("audit", 0, checkpoint_every=every, chain="COL")
    out = []
    for i in range(n):
        out.append(writer.append("RECEIPT", _receipt(i)))
        if writer.checkpoint_due:
            out.append(writer.checkpoint("COL-rcpt-test", _sign, "2026-11-01T00:00:00Z"))
    return out


def _walk(values: list[bytes]):
    return verify_partition("audit", 0, enumerate(values), _verify)


def test_untouched_chain_verifies() -> None:
    """A chain as written has no findings, and counts its checkpoints and unsigned tail."""
    report = _walk(_chain(10))
    assert report.ok and report.records == 12 and report.checkpoints == 2 and report.unsigned_tail == 2


def test_edited_field_is_found() -> None:
    """Changing one field of one record is reported as an edit at that offset; the record after it, which follows
    a hash the edited record no longer has, does not follow a record sealed as written. The next checkpoint
    vouches for the chain again."""
    values = _chain(10)
    doc = json.loads(values[5])  # the first record after a checkpoint: no unsigned ones before it to cut off
    doc["status"] = "REJECTED"
    values[5] = json.dumps(doc).encode()
    report = _walk(values)
    assert [f.offset for f in report.findings] == [5, 6]
    assert "edited" in report.findings[0].problem
    assert [v.seq for v in report.vouched] == [9]


def test_removed_record_is_a_gap() -> None:
    """Deleting a record is reported as a gap."""
    values = _chain(10)
    del values[5]
    assert any("gap" in f.problem for f in _walk(values).findings)


def test_swapped_records_are_reordering() -> None:
    """Swapping two records is reported."""
    values = _chain(10)
    values[1], values[2] = values[2], values[1]
    assert any("reordered" in f.problem or "gap" in f.problem for f in _walk(values).findings)


def test_rewritten_tail_with_fresh_hashes_fails_the_checkpoint() -> None:
    """A forger who recomputes every hash after an edit is still caught by the signed checkpoint."""
    values = _chain(4, every=4)  # 4 records then a checkpoint at index 4
    writer = ChainWriter("audit", 0, checkpoint_every=100, chain="COL")
    forged = []
    for i in range(4):
        forged.append(writer.append("RECEIPT", _receipt(i, "REJECTED" if i == 2 else "RECEIVED")))
    forged.append(values[4])  # keep the genuine checkpoint
    findings = _walk(forged).findings
    assert findings and all("checkpoint" in f.problem or "follow" in f.problem for f in findings)


def test_checkpoint_signed_by_someone_else_fails() -> None:
    """A checkpoint whose signature does not verify is reported."""
    writer = ChainWriter("audit", 0, chain="COL")
    values = [writer.append("RECEIPT", _receipt(0)),
              writer.checkpoint("COL-rcpt-test", lambda p: b"\0" * 64, SIGNED_AT)]
    assert any("signature" in f.problem for f in _walk(values).findings)


def test_checkpoint_copied_to_another_partition_fails() -> None:
    """A checkpoint is bound to its topic and partition."""
    values = _chain(4, every=4)
    report = verify_partition("audit", 1, enumerate(values), _verify)
    assert any("signature" in f.problem for f in report.findings)


def test_garbage_record_is_reported_not_raised() -> None:
    """A non-JSON value in an audit partition is a finding, not a crash."""
    values = _chain(2)
    values.insert(1, b"\xff\x00garbage")
    assert any("not an audit record" in f.problem for f in _walk(values).findings)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_writer_resumes_after_the_last_record(n: int) -> None:
    """A writer restarted from the last record continues the same chain without findings."""
    values = _chain(n, every=3)
    last = json.loads(values[-1]) if values else None
    writer = ChainWriter("audit", 0, head=ChainHead.after(last), checkpoint_every=3, chain="COL")
    values.append(writer.append("RECEIPT", _receipt(99)))
    assert _walk(values).ok


def _blocks(n: int, per_block: int = 3) -> list[bytes]:
    writer = ChainWriter("audit", 0)
    out = []
    for b in range(n):
        decisions = [{"partner": "COL", "decision": "DELIVER"}, {"partner": "USA", "decision": "WITHHOLD"}]
        entries = [{"kind": "ALERT", "alert_id": f"A{b}-{i}", "ingress_ms": 1000 * b + i, "decisions": decisions}
                   for i in range(per_block)]
        entries.append({"kind": "DEAD_LETTER", "alert_id": f"B{b}", "reason": "replay"})
        out.append(writer.block(entries, "broker-sign-test", _sign, "2026-11-01T00:00:00Z"))
    return out


def test_blocks_are_signed_and_verify() -> None:
    """Every block carries its own signature: a chain of blocks has no unsigned tail."""
    report = _walk(_blocks(4))
    assert report.ok and report.records == 4 and report.checkpoints == 4 and report.unsigned_tail == 0


def test_flatten_gives_one_row_per_decision_and_dead_letter() -> None:
    """Auditors see a block as rows: each alert's decisions, each with the alert's fields, and its dead letters."""
    rows = [row for value in _blocks(2) for row in flatten(json.loads(value))]
    decisions = [r for r in rows if r["kind"] == "DECISION"]
    assert len(decisions) == 2 * 3 * 2
    assert {(r["alert_id"], r["partner"]) for r in decisions} >= {("A0-0", "COL"), ("A1-2", "USA")}
    assert all("decisions" not in r and r["block"] in (0, 1) for r in rows)
    assert [r["alert_id"] for r in rows if r["kind"] == "DEAD_LETTER"] == ["B0", "B1"]
    assert flatten({"kind": "RECEIPT", "x": 1}) == [{"kind": "RECEIPT", "x": 1}]


def test_edit_inside_a_block_is_found() -> None:
    """Changing one decision deep inside a block breaks that block's hash."""
    values = _blocks(3)
    doc = json.loads(values[1])
    doc["decision_table"][1]["decision"] = "DELIVER"
    values[1] = json.dumps(doc).encode()
    report = _walk(values)
    assert {f.offset for f in report.findings} == {1}  # the edit, and the signature it no longer matches
    assert any("edited" in f.problem for f in report.findings)


def test_reforged_block_with_fresh_hash_fails_its_signature() -> None:
    """A forger who recomputes the hash after an edit still cannot sign: the block is reported."""
    values = _blocks(3)
    doc = json.loads(values[2])
    doc["entries"][0]["decisions"][0] = 1  # COL's delivery now reads as USA's withholding
    values[2] = seal(doc)
    problems = [f.problem for f in _walk(values).findings]
    assert problems and all("signature" in p for p in problems)


def test_unsigned_block_is_reported() -> None:
    """A block without a signature is a finding, not an unsigned tail."""
    values = _blocks(2)
    doc = json.loads(values[1])
    del doc["sig"]
    values[1] = seal(doc)
    assert any("signature" in f.problem for f in _walk(values).findings)


def test_a_block_writes_each_distinct_decision_once() -> None:
    """Alerts that share a decision refer to one copy in the block's table; flattening restores every row."""
    doc = json.loads(_blocks(1, per_block=5)[0])
    assert doc["decision_table"] == [{"partner": "COL", "decision": "DELIVER"},
                                     {"partner": "USA", "decision": "WITHHOLD"}]
    assert [e.get("decisions") for e in doc["entries"]] == [[0, 1]] * 5 + [None]
    rows = [r for r in flatten(doc) if r["kind"] == "DECISION"]
    assert [(r["alert_id"], r["partner"], r["decision"]) for r in rows[:2]] == [("A0-0", "COL", "DELIVER"),
                                                                             ("A0-0", "USA", "WITHHOLD")]


def test_a_signed_block_with_a_dangling_decision_reference_is_reported() -> None:
    """Even correctly signed, a block whose entry points outside its table is a finding, and reads as UNREADABLE."""
    values = _blocks(2)
    doc = json.loads(values[1])
    doc["entries"][1]["decisions"] = [0, 7]
    del doc["hash"], doc["sig"]
    doc["sig"] = _sign(checkpoint_payload("audit", 0, doc)).hex()
    values[1] = seal(doc)
    problems = [f.problem for f in _walk(values).findings]
    assert problems == ["block seq 1 refers 1 time(s) to decisions missing from its decision table"]
    assert [r["decision"] for r in flatten(doc) if r.get("alert_id") == "A1-1"] == ["DELIVER", "UNREADABLE"]


def test_blocks_written_before_the_decision_table_still_flatten() -> None:
    """Older blocks held each decision in full inside its entry."""
    old = {"kind": "BLOCK", "seq": 3, "entries": [{"kind": "ALERT", "alert_id": "A", "decisions": [
        {"partner": "COL", "decision": "DELIVER"}]}]}
    assert [(r["partner"], r["decision"], r["block"]) for r in flatten(old)] == [("COL", "DELIVER", 3)]


def _verify_any(signer: str, payload: bytes, sig: bytes) -> bool:
    return hmac.compare_digest(_sign(payload), sig)  # every key "verifies": only who may sign what is tested


def _receipts(chain: str, signer: str) -> list[bytes]:
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain=chain)
    out = [writer.append("RECEIPT", {"partner": chain.split("/")[0], "alert_id": f"A{i}", "status": "RECEIVED"})
           for i in range(3)]
    out.append(writer.checkpoint(signer, _sign, "2026-11-01T00:00:00Z"))
    return out


def test_a_partner_signs_its_own_receipt_chains_and_no_one_elses() -> None:
    """COL's key vouches for COL's receipts (any instance); USA's key or the broker's does not, nor does
    a partner's key vouch for the broker's decisions."""
    def walk(values: list[bytes], topic: str = "access") -> list[str]:
        return [f.problem for f in verify_partition(topic, 0, enumerate(values), _verify_any).findings]

    assert walk(_receipts("COL", "COL-rcpt-2026a")) == []
    assert walk(_receipts("COL/backup", "COL-rcpt-2026a")) == []
    assert walk(_receipts("COL", "USA-rcpt-2026a")) == [  # the receipts it claimed to vouch for wait for COL's own
        "chain COL checkpoint seq 3 is signed by USA-rcpt-2026a, which may not vouch for COL's receipts"]
    assert walk(_receipts("COL", "broker-sign-2026a")) != []
    assert walk(_receipts("COL", "not a key id")) != []
    writer = ChainWriter("audit", 0)
    block = writer.block([{"kind": "ALERT", "alert_id": "A", "decisions": []}], "COL-rcpt-2026a", _sign, "t")
    assert walk([block], "audit") == [
        "block seq 0 is signed by COL-rcpt-2026a, which may not vouch for the broker's decisions"]


def test_a_partner_key_vouches_only_for_receipts_naming_that_partner() -> None:
    """A partner's receipt key cannot pass off decisions, nor receipts for another partner; records of
    one sort in the other's topic are reported; a foreign receipt is listed under the chain's owner."""
    def walk(values: list[bytes], holds: str | None = None) -> list[str]:
        return [f.problem for f in verify_partition("access", 0, enumerate(values), _verify_any, holds).findings]

    entry = {"kind": "ALERT", "alert_id": "A", "decisions": [{"partner": "USA", "decision": "DELIVER"}]}
    forged = ChainWriter("access", 0, chain="COL").block([entry], "COL-rcpt-2026a", _sign, "t")
    assert walk([forged]) == [
        "seq 0: 'BLOCK' record in COL's receipt chain, which may hold only receipts and checkpoints"]

    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    claim = writer.append("RECEIPT", {"partner": "USA", "alert_id": "A", "status": "RECEIVED"})
    signed = writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)
    assert walk([claim, signed]) == ["seq 0: receipt for partner 'USA' in COL's receipt chain"]
    assert flatten(json.loads(claim))[0]["partner"] == "COL"

    # The broker's chain takes the broker's signing key only, not a key of another kind it owns.
    decisions = ChainWriter("access", 0).block([entry], "broker-rcpt-2026a", _sign, "t")
    assert walk([decisions]) == ["block seq 0 is signed by broker-rcpt-2026a, which may not vouch for the "
                                 "broker's decisions"]
    good_block = ChainWriter("access", 0).block([{"kind": "ALERT", "alert_id": "A", "decisions": []}],
                                               "broker-sign-2026a", _sign, "t")
    assert walk([good_block], "decisions") == []
    assert walk([good_block], "receipts") == [
        "seq 0: 'BLOCK' record outside any partner's receipt chain, in a topic that holds receipts"]
    assert walk(_receipts("COL", "COL-rcpt-2026a"), "receipts") == []
    assert walk(_receipts("COL", "COL-rcpt-2026a"), "decisions")[0] == (
        "seq 0: chain COL record in a topic that holds only the broker's decisions")


def test_receipts_no_checkpoint_vouches_for_are_reported_in_a_topic_of_receipts() -> None:
    """A subscriber signs every batch it commits: unsigned receipts at a chain's end were written by
    someone else, so in a topic of receipts they are a finding, not just a count."""
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="USA/x")
    forged = [writer.append("RECEIPT", {"partner": "USA", "alert_id": f"A{i}", "status": "RECEIVED"}) for i in range(2)]
    values = [*_receipts("COL", "COL-rcpt-2026a"), *forged]
    report = verify_partition("access", 0, enumerate(values), _verify_any, "receipts")
    assert [(f.offset, f.problem) for f in report.findings] == [
        (4, "chain USA/x: 2 receipt record(s) from here on that no checkpoint of the partner's vouches for")]
    assert verify_partition("access", 0, enumerate(values), _verify_any).findings == []  # no topic rule given


@pytest.mark.parametrize("value", [
    b'{"kind": ["BLOCK"], "seq": 0, "prev": "", "hash": ""}',
    b'{"kind": "RECEIPT", "chain": 5, "seq": 0, "prev": "", "hash": ""}',
    b'{"kind": {"a": 1}, "chain": "COL", "seq": 0, "prev": "", "hash": ""}',
    b'{"kind": "BLOCK", "seq": 1e999, "prev": "", "hash": ""}',
    b'{"kind": "BLOCK", "seq": 0, "prev": "", "hash": "", "sig": "zz", "signer": ["a"]}',
    b'[1, 2]', b'"x"', b'\xff\xfe', b'{"seq": 0, "prev": "", "hash": ""}',
])
def test_hostile_records_are_findings_never_crashes(value: bytes) -> None:
    for holds in (None, "decisions", "receipts"):
        report = verify_partition("access", 0, [(0, value)], _verify_any, holds)
        assert report.records == 1 and report.findings


def test_findings_quote_record_values_cut_short() -> None:
    writer = ChainWriter("access", 0, checkpoint_every=1 << 62, chain="COL")
    huge = writer.append("X" * 100_000, {"partner": "COL"})
    findings = verify_partition("access", 0, [(0, huge)], _verify_any, "receipts").findings
    assert findings and all(len(f.problem) < 200 for f in findings)


def _after_blocks(kind: str, holds: str) -> list[bytes]:
    """Two sound signed blocks, then two unsigned records of a kind written before blocks, continuing the
    chain with the right seq, prev and hash (SHA-256 is unkeyed: anyone who may write the topic can)."""
    writer = ChainWriter("audit", 0)
    entry = ({"kind": "DENIAL", "principal": "User:x", "line_sha256": "a"} if holds == "denials" else
             {"kind": "ALERT", "alert_id": "A1", "decisions": [{"partner": "COL", "decision": "DELIVER"}]})
    values = [writer.block([entry], "broker-sign-test", _sign, "2026-11-01T00:00:00Z") for _ in range(2)]
    values.append(writer.append(kind, {"alert_id": "FORGED", "partner": "USA", "decision": "DELIVER",
                                       "principal": "User:partner-USA"}))
    values.append(writer.append(kind, {"alert_id": "A1", "partner": "COL", "decision": "RECALL"}))
    return values


@pytest.mark.parametrize("holds", ["decisions", "denials", None])
@pytest.mark.parametrize("kind", ["DECISION", "DEAD_LETTER", "DENIAL"])
def test_unsigned_records_in_the_broker_chain_are_reported(kind: str, holds: Holds | None) -> None:
    """The broker writes only signed blocks: an unsigned record in its chain (decisions or denials), even one
    of a kind written before blocks that continues the chain perfectly, is a finding where it stands."""
    report = verify_partition("audit", 0, enumerate(_after_blocks(kind, holds or "decisions")), _verify, holds)
    assert [f.offset for f in report.findings] == [2, 3]
    assert all("the broker never wrote it" in f.problem for f in report.findings)


def _sealed_raw(fields: bytes) -> bytes:
    """A record whose fields are given as raw JSON text (so nesting orjson will not write can be used)."""
    return b'{"hash":"x","prev":"' + b"0" * 64 + b'","seq":0,' + fields + b"}"


DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize("value", [
    seal({"v": 1, "seq": 0, "prev": "0" * 64, "kind": "DECISION", "entries": 5}),
    seal({"v": 1, "seq": 0, "prev": "0" * 64, "kind": "BLOCK", "signer": "broker-sign-test", "sig": "00",
          "entries": True}),
    seal({"v": 1, "seq": 0, "prev": "0" * 64, "kind": "BLOCK", "signer": "broker-sign-test", "sig": "00",
          "entries": [{"kind": "ALERT", "alert_id": "A", "decisions": 5}, 7, {"kind": ["x"]}]}),
    _sealed_raw(b'"kind":"BLOCK","sig":"00","signer":' + DEEP),
    _sealed_raw(b'"kind":"BLOCK","sig":' + DEEP + b',"signer":"broker-sign-test","entries":[]'),
    _sealed_raw(b'"kind":"BLOCK","sig":"00","signer":"broker-sign-test","entries":' + DEEP),
    _sealed_raw(b'"kind":"RECEIPT","chain":"COL","partner":' + DEEP),
    _sealed_raw(b'"kind":"RECEIPT","chain":"COL","partner":"COL","at":' + DEEP),
    b'{"hash":"x","kind":"RECEIPT","prev":' + DEEP + b',"seq":0}',
    b'{"hash":' + DEEP + b',"kind":"RECEIPT","prev":"0","seq":0}',
    b'{"hash":"x","kind":"RECEIPT","prev":"0","seq":"0"}',
    b'{"hash":"x","kind":"RECEIPT","prev":"0","seq":true}',
])
def test_hostile_values_are_findings_never_crashes(value: bytes) -> None:
    """Whatever a record someone else wrote holds where a list, a string or a number belongs (an int, a
    boolean, lists nested a thousand deep), the walk reports it at that record, with findings of one short
    line each, and readers of its rows do not crash on it either."""
    for holds in (None, "decisions", "denials", "receipts"):
        report = verify_partition("audit", 0, [(0, value)], _verify, holds)
        assert report.records == 1 and report.findings
        assert all(len(f.problem) < 200 and "\n" not in f.problem for f in report.findings)
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return
    if isinstance(doc, dict):
        flatten(doc)
        unresolved_decisions(doc)
        sent_records(doc)


def test_a_receipt_time_that_is_not_utc_is_reported() -> None:
    """Subscribers write a receipt's time in UTC: one without an offset (which readers could only compare
    naively), in another zone, or not a time at all is a finding; one in UTC is not."""
    def problems(at: object) -> list[str]:
        writer = ChainWriter("audit", 0, checkpoint_every=1 << 62, chain="COL")
        values = [writer.append("RECEIPT", {**_receipt(0), "at": at}),
                  writer.checkpoint("COL-rcpt-test", _sign, "2026-11-01T00:00:00Z")]
        return [f.problem for f in verify_partition("audit", 0, enumerate(values), _verify, "receipts").findings]

    assert problems("2026-11-01T10:00:00Z") == [] and problems("2026-11-01T10:00:00+00:00") == []
    for at in ("2026-11-01T10:00:00", "2026-11-01T10:00:00+02:00", "yesterday", 5, ["x"]):
        found = problems(at)
        assert found and "receipt in COL's receipt chain: its time" in found[0], at


def test_a_checkpoint_time_that_is_not_utc_is_reported() -> None:
    """A checkpoint's time is held to what a receipt's is: a partner's checkpoint whose time is no time (a bidi
    override reversing a plausible one), in another zone, or without an offset is a finding; one in UTC is not."""
    def problems(at: object) -> list[str]:
        writer = ChainWriter("audit", 0, checkpoint_every=1 << 62, chain="COL")
        values = [writer.append("RECEIPT", {**_receipt(0), "at": "2026-11-01T10:00:00Z"}),
                  writer.checkpoint("COL-rcpt-test", _sign, at)]  # type: ignore[arg-type]
        return [f.problem for f in verify_partition("audit", 0, enumerate(values), _verify, "receipts").findings]

    assert problems("2026-11-01T10:00:00Z") == [] and problems("2026-11-01T10:00:00+00:00") == []
    for at in ("\u202eZ00:00:21T10-30-6202\x1b[2J", "2026-11-01T10:00:00", "2026-11-01T10:00:00-05:00", 5):
        found = problems(at)
        assert found and "checkpoint in COL's receipt chain: its time" in found[0], at
        assert all(c.isprintable() for c in found[0])


def test_a_report_names_the_last_signed_record_it_vouches_for() -> None:
    """What the topic vouches for ends at each chain's last sound signed record: the report names its seq and
    time, since records dropped after it leave no trace in the topic."""
    values = _blocks(3)
    report = _walk(values)
    assert report.ok and [(v.chain, v.seq, v.offset) for v in report.vouched] == [(None, 2, 2)]
    assert report.vouched_text() == "signed up to seq 2 (2026-11-01T00:00:00Z)"
    shorter = _walk(values[:2])  # the last block dropped: still sound, and the report says where it stops
    assert shorter.ok and shorter.vouched_text() == "signed up to seq 1 (2026-11-01T00:00:00Z)"
    receipts = verify_partition("audit", 0, enumerate(_chain(6, every=4)), _verify)
    assert receipts.vouched_text() == "chain COL signed up to seq 4 (2026-11-01T00:00:00Z)"
    assert _walk([]).vouched_text() == "empty"
    assert _walk(_chain(2, every=4)).vouched_text() == "no sound signed record"


def test_a_shrunk_entry_still_says_which_notices_were_not_sent() -> None:
    """An entry cut down to fit a block (``shrink``) keeps, per decision, whether its feed record was sent and
    which versions it recalled or superseded: a recall notice that could not be sent (the partner still holds
    the alert) must not read as sent once an agency's long recall reason makes its entry too large."""
    failed = {"partner": "USA", "decision": "RECALL", "agreement": None, "rules": ["lifecycle.recall"],
              "reasons": ["the recall notice could not be sent: CryptoError"], "redacted": [],
              "policy_version": "p1", "recalls": 1, "sent": False}
    updated = {"partner": "COL", "decision": "DELIVER", "agreement": "A", "rules": ["r"], "reasons": ["x"],
               "redacted": [], "policy_version": "p1", "feed": "t.feed.col", "supersedes": 1}
    entry = {"kind": "ALERT", "alert_id": "R:1", "version": 2, "action": "RECALL", "reason": "x" * 20_000,
             "ingress": "t.ingress.PN:0:1", "decisions": [failed, updated, {**failed, "sent": "no", "recalls": [1]}]}
    for limit in (8_000, 200):  # cut, and cut to what identifies it
        # Its version and action too: the replay window is rebuilt from them (``BrokerWorker._processed_ids``).
        assert (shrink(entry, limit)["version"], shrink(entry, limit)["action"]) == (2, "RECALL")
        assert shrink(entry, limit)["reason"] == "x" * 200  # a recall for good only with its reason
        small = shrink(entry, limit)["decisions"]
        assert (small[0]["sent"], small[0]["recalls"]) == (False, 1), limit
        assert small[1]["supersedes"] == 1
        assert "sent" not in small[2] and "recalls" not in small[2]  # only booleans and integers are kept


def _respelled_checkpoint(respell: Callable[[str], str]) -> tuple[bytes, Callable[[str, bytes, bytes], bool]]:
    key = Ed25519PrivateKey.generate()
    writer = ChainWriter("t", 0, chain="COL")
    doc = json.loads(writer.checkpoint("COL-rcpt-2026a", lambda p: sign_checkpoint(key, p), "2026-12-01T00:00:00Z"))
    doc["sig"] = respell(doc["sig"])
    return seal(doc), checker({"COL-rcpt-2026a": key.public_key()})


@pytest.mark.parametrize("respell", [
    str.upper,
    lambda h: " ".join(h[i:i + 2] for i in range(0, len(h), 2)),
    lambda h: " " + h,
    lambda h: h + "\n",
    lambda h: h[:64].upper() + h[64:],
], ids=["upper", "spaced", "leading-space", "trailing-newline", "half-upper"])
def test_a_signature_respelled_in_other_hex_is_invalid(respell: Callable[[str], str]) -> None:
    """The same signature bytes spelt other than as 128 lowercase hex digits (a record with another hash) do not
    verify: one signature vouches for one record only."""
    value, check = _respelled_checkpoint(respell)
    assert any("invalid signature" in f.problem
               for f in verify_partition("t", 0, [(0, value)], check, holds="receipts", owner="COL").findings)
    assert "does not verify" in (head_problem("t", 0, value, "COL", check) or "")


def test_a_signature_as_its_writer_spells_it_is_valid() -> None:
    """The lowercase hex the writer makes verifies, in the walk and as a chain's head."""
    value, check = _respelled_checkpoint(lambda h: h)
    report = verify_partition("t", 0, [(0, value)], check, holds="receipts", owner="COL")
    assert report.ok and report.checkpoints == 1
    assert head_problem("t", 0, value, "COL", check) is None


@pytest.mark.parametrize("sig", ["ab" * 64, "AB" * 64, "ab" * 63, "ab" * 65, " " + "ab" * 64, 5, None])
def test_signature_bytes_takes_only_128_lowercase_hex_digits(sig: object) -> None:
    """Exactly 128 lowercase hex digits give 64 bytes; anything else gives None."""
    assert signature_bytes(sig) == (bytes.fromhex(sig) if sig == "ab" * 64 else None)  # type: ignore[arg-type]


def test_a_report_counts_the_chains_walked_not_the_partition() -> None:
    """A receipts partition holding three subscriber instances' chains reports three chains; a broker's partition
    one; an empty partition none."""
    values = []
    for name in ("COL/a", "COL/b", "COL/c"):
        writer = ChainWriter("audit", 0, checkpoint_every=1 << 62, chain=name)
        values += [writer.append("RECEIPT", _receipt(1)), writer.checkpoint("COL-rcpt-test", _sign, SIGNED_AT)]
    assert verify_partition("audit", 0, enumerate(values), _verify, "receipts", "COL").chains == 3
    block = ChainWriter("audit", 0).block([{"kind": "ALERT", "alert_id": "A1", "decisions": []}],
                                          "broker-sign-test", _sign, "2026-11-01T00:00:00Z")
    assert verify_partition("audit", 0, [(0, block)], _verify, "decisions").chains == 1
    assert verify_partition("audit", 0, [], _verify, "decisions").chains == 0


def test_the_auditors_walk_counts_the_chains_too(audit_topics: dict[str, list[bytes]]) -> None:
    """`verify_topics`, which `audit verify` prints the count of, counts chains as ``verify_partition`` does."""
    for name in ("COL/a", "COL/b"):
        writer = ChainWriter("p.receipts.COL", 0, checkpoint_every=1 << 62, chain=name)
        audit_topics.setdefault("p.receipts.COL", []).extend(
            [writer.append("RECEIPT", _receipt(1)), writer.checkpoint("COL-rcpt-test", _sign, SIGNED_AT)])
    reports = asyncio.run(auditor.verify_topics(None, {"p.receipts.COL": "receipts"}, _verify))  # type: ignore[arg-type]
    assert [r.chains for r in reports] == [2]


def _counted(states: list[int], gap: dict[str, object] | None = None, at: int = -1) -> list[bytes]:
    """Broker blocks stating ``states`` in turn (their slot's lifecycle offset); ``gap`` is one more entry of the
    block at index ``at``."""
    writer = ChainWriter("audit", 0)
    out = []
    for b, count in enumerate(states):
        entries: list[dict[str, object]] = [{"kind": "ALERT", "alert_id": f"A{b}", "ingress_ms": b, "decisions": []}]
        if gap is not None and b == at:
            entries.insert(0, gap)
        out.append(writer.block(entries, "broker-sign-test", _sign, "2026-11-01T00:00:00Z", states=count))
    return out


def test_a_fall_in_a_slots_lifecycle_offset_is_a_finding_unless_its_block_records_the_loss() -> None:
    """A slot's blocks state how far its lifecycle partition reaches (``states``), which only grows. A block
    stating less, with no GAP entry saying alert states were lost, is a finding: the loss of who holds which
    version of each alert (recalls then reach no one) must be in the audit trail, not only in a log line."""
    assert _walk(_counted([1, 3, 3, 7])).ok
    report = _walk(_counted([1, 3, 0, 2]))
    assert not report.ok and len(report.findings) == 1
    finding = report.findings[0]
    assert finding.offset == 2 and "below the 3" in finding.problem and "without a GAP entry" in finding.problem
    lost = {"kind": "GAP", "reason": "states-lost", "detail": "x", "from_offset": 5, "next_offset": 5, "skipped": 0}
    assert _walk(_counted([1, 3, 0, 2], lost, at=2)).ok
    remade = {"kind": "GAP", "reason": "topic-remade", "detail": "x", "from_offset": 5, "next_offset": 0,
              "skipped": 0, "states_lost": "y"}
    assert _walk(_counted([1, 3, 0, 2], remade, at=2)).ok
    # Recorded in another block than the one that falls: still a finding there.
    assert not _walk(_counted([1, 3, 3, 0], lost, at=2)).ok
    # A fall is flagged once, at the block that falls: the blocks after it count on from there.
    # Only the broker's block in its place sets the count: a forged one neither hides a fall nor makes one.
    forged = _counted([1, 3, 5])
    forged[1] = forged[1].replace(b'"states":3', b'"states":100')
    assert {f.offset for f in _walk(forged).findings} == {1}


def test_only_the_brokers_own_block_in_its_place_sets_the_count_a_fall_is_judged_by() -> None:
    """A replayed genuine block, or one signed by a key that may not sign decisions, is a finding of its own and
    sets no count: the copy is no fall, and a real fall after a foreign block is still found. A block without a
    count (a worker from before it) counts from 0 again, as the worker reading that head back does: no fall is
    found after it."""
    blocks = _counted([1, 5, 7])
    replayed = _walk([blocks[0], blocks[1], blocks[0], blocks[2]])  # a copy of the first block, out of place
    assert not replayed.ok and not any("below" in f.problem for f in replayed.findings)
    writer = ChainWriter("audit", 0)
    first = writer.block([], "broker-sign-test", _sign, "2026-11-01T00:00:00Z", states=5)
    foreign = writer.block([], "COL-rcpt-test", _sign, "2026-11-01T00:00:00Z", states=0)
    after = writer.block([], "broker-sign-test", _sign, "2026-11-01T00:00:00Z", states=1)
    found = _walk([first, foreign, after]).findings
    assert any(f.offset == 1 and "may not vouch" in f.problem for f in found)
    assert any(f.offset == 2 and "below the 5" in f.problem for f in found)
    writer = ChainWriter("audit", 0)
    mixed = [writer.block([], "broker-sign-test", _sign, "2026-11-01T00:00:00Z", states=5),
             writer.block([], "broker-sign-test", _sign, "2026-11-01T00:00:00Z"),
             writer.block([], "broker-sign-test", _sign, "2026-11-01T00:00:00Z", states=2)]
    assert _walk(mixed).ok
