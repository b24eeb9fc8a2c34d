"""The auditor's spills: `audit log`'s rows put in time order, and the deliveries receipts are matched against,
kept in a private temporary SQLite file that is always removed; and `read_log` and `verify_topics` over them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import stat
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit import ChainWriter
from broker.audit.receipts import UNVOUCHED_PER_CHAIN, Unvouched
from broker.auditor import LogFilter, _Delivered, read_log, verify_topics
from broker.spill import TimeSorted, sort_key
from puente.errors import StoreError
from puente.wire import iso_utc

SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
KEY = b"k" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _sign(payload: bytes) -> bytes:
    # 64 bytes, as an Ed25519 signature: a record's sig must be exactly 128 lowercase hex digits
    return hmac.new(KEY, payload, hashlib.sha512).digest()


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return hmac.compare_digest(_sign(payload), sig)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder, for this test only: what the spills leave there can be seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _sorted(docs: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    with TimeSorted(folder) as spill:
        for doc in docs:
            spill.add(doc)
        return list(spill)


def test_rows_come_back_in_time_order_and_ties_in_arrival_order(tmp_path: Path) -> None:
    """Rows come back oldest first; rows of one time (and rows without one, last) keep the order they came in,
    exactly as a stable sort on the instant `at` states gives them."""
    docs: list[dict[str, Any]] = [{"at": "2026-03-02T10:00:00Z", "n": 0}, {"at": "2026-03-01T09:00:00Z", "n": 1},
            {"at": "2026-03-02T10:00:00Z", "n": 2}, {"n": 3}, {"at": "2026-03-01T09:00:00Z", "n": 4},
            {"at": "2026-03-02T10:00:00Z", "n": 5}, {"at": "2026-01-01T00:00:00Z", "n": 6, "kind": "ñandú ✓"}]
    assert _sorted(docs, tmp_path) == sorted(docs, key=lambda d: sort_key(d.get("at")))
    assert [d["n"] for d in _sorted(docs, tmp_path)] == [6, 1, 4, 0, 2, 5, 3]


def test_rows_come_back_as_they_went_in(tmp_path: Path) -> None:
    """A row read back equals the row added: nested values, numbers, null, non-ASCII text and key order kept."""
    doc = {"at": "t", "kind": "DECISION", "reasons": ["caveat 'X' unknown", "ñ"], "redacted": [{"field": "a"}],
           "version": 2, "ratio": 0.25, "sent": None, "ok": True}
    back = _sorted([doc], tmp_path)
    assert back == [doc] and list(back[0]) == list(doc)


def test_many_rows_sort_without_being_held_in_memory(tmp_path: Path) -> None:
    """100,000 rows (some 45 MB as a list of dicts) go through with a peak of a few MB of Python memory, come back
    sorted, and can be read again; len and the longest alert id are known without reading them back."""
    count = 100_000

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(count):  # times out of order: descending, in runs of ten ties
            yield {"at": iso_utc(T0 + timedelta(milliseconds=(count - i) // 10)), "i": i,
                   "kind": "DECISION", "alert_id": f"SNM:PTY-{i:08d}", "reasons": ["withheld by rule r-7"] * 3}

    tracemalloc.start()
    try:
        with TimeSorted(tmp_path) as spill:
            for row in rows():
                spill.add(row)
            assert len(spill) == count and spill.longest_alert_id == len("SNM:PTY-00000000")
            previous: tuple[int, int] = (-1, -1)
            seen = 0
            for doc in spill:
                key = (sort_key(doc["at"]), doc["i"])
                assert key > previous
                previous, seen = key, seen + 1
            assert seen == count
            assert next(iter(spill))["i"] == count - 9  # the first of the oldest run
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB: the rows are held in memory"
    assert list(tmp_path.iterdir()) == []


def test_reading_back_walks_the_index_without_a_sort(tmp_path: Path) -> None:
    """The read is a walk of the (time, arrival) index: SQLite plans no sort (which would need memory or a
    temporary file outside the private folder)."""
    with TimeSorted(tmp_path) as spill:
        plan = " ".join(str(row) for row in spill.conn.execute(f"EXPLAIN QUERY PLAN {TimeSorted.READ}"))
    assert "rows_by_time" in plan and "TEMP B-TREE" not in plan


def test_the_spill_is_private_and_removed_afterwards(tmp_path: Path) -> None:
    """While in use the spill is a 0600 file alone in a fresh 0700 folder; once the block ends both are gone."""
    with TimeSorted(tmp_path) as spill:
        spill.add({"at": "t"})
        list(spill)
        (folder,) = tmp_path.iterdir()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = list(folder.iterdir())
        assert [f.name for f in files] == ["spill.sqlite"]  # no journal beside it
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == []


def test_the_spill_is_removed_on_error_too(tmp_path: Path) -> None:
    """An error inside the block (a Kafka failure, Ctrl-C) still removes the spill, and is not rewrapped."""
    with pytest.raises(KeyboardInterrupt), TimeSorted(tmp_path) as spill:
        spill.add({"at": "t"})
        raise KeyboardInterrupt
    with pytest.raises(OSError, match="disk"), _Delivered(tmp_path):
        raise OSError("disk")
    assert list(tmp_path.iterdir()) == []


def test_a_spill_that_cannot_be_made_is_a_store_error(tmp_path: Path) -> None:
    """No room for the spill is one StoreError naming the folder and TMPDIR, not a traceback."""
    with pytest.raises(StoreError, match="TMPDIR") as caught, TimeSorted(tmp_path / "missing"):
        pass
    assert str(tmp_path / "missing") in str(caught.value)


def test_fill_takes_an_async_stream(tmp_path: Path) -> None:
    """`fill` spills rows as an async stream (what `read_log` is) gives them, and counts them."""

    async def stream() -> AsyncIterator[dict[str, Any]]:
        for i in (3, 1, 2):
            yield {"at": f"2026-01-01T00:00:0{i}Z"}

    with TimeSorted(tmp_path) as spill:
        assert asyncio.run(spill.fill(stream())) == 3
        assert [d["at"][-2] for d in spill] == ["1", "2", "3"]


def _block(alerts: list[str], partner: str = "COL", version: int = 1) -> bytes:
    return ChainWriter("p.decisions", 0).block(
        [{"kind": "ALERT", "alert_id": a, "version": version, "at": "2026-11-01T09:59:00Z",
          "decisions": [{"partner": partner, "decision": "DELIVER", "feed": f"p.feed.{partner}"},
                        {"partner": "USA", "decision": "WITHHOLD"}]}
         for a in alerts], "broker-sign-2026a", _sign, "t")


def _vouched(delivered: _Delivered, receipt: dict[str, Any]) -> str | None:
    """What ``delivered`` finds of ``receipt`` once a checkpoint of its chain vouches for it (None: it matches)."""
    assert delivered.check(receipt, 0) == []  # held until a checkpoint vouches for it
    found = delivered.check({"kind": "CHECKPOINT", "chain": receipt["chain"]}, 1)
    assert [at for at, _ in found] in ([], [0])
    return found[0][1] if found else None


def test_deliveries_match_receipts_from_the_spill(tmp_path: Path) -> None:
    """Receipts match the deliveries sound blocks named (and only those), whichever block named them, each at
    the one feed record its receipts name, once a checkpoint of their chain vouches for them."""
    receipt = {"kind": "RECEIPT", "chain": "COL", "partner": "COL", "alert_id": "SNM:1", "version": 1,
               "status": "RECEIVED", "feed": "p.feed.COL:0:0", "at": "2026-11-01T10:00:00Z"}
    with _Delivered(tmp_path) as delivered:
        assert _vouched(delivered, receipt) is None  # no decisions walked yet: nothing to match against
        for alerts, version in ((["SNM:1", "SNM:2"], 1), (["SNM:3"], 1), (["SNM:1"], 2)):
            delivered.check(json.loads(_block(alerts, version=version)), 2)
        assert _vouched(delivered, receipt) is None
        assert _vouched(delivered, {**receipt, "status": "DUPLICATE"}) is None  # the same record read again
        assert "never delivered" in (_vouched(delivered, {**receipt, "alert_id": "SNM:9"}) or "")
        assert "never delivered" in (_vouched(delivered, {**receipt, "chain": "USA", "partner": "USA"}) or "")
        assert "one feed record holds one delivery" in (
            _vouched(delivered, {**receipt, "version": 2}) or "")  # that record was version 1
        assert _vouched(delivered, {**receipt, "version": 2, "feed": "p.feed.COL:0:1"}) is None
        assert delivered.conn.execute("SELECT count(*) FROM delivered").fetchone() == (4,)
    assert list(tmp_path.iterdir()) == []


def test_a_receipt_no_checkpoint_vouches_for_binds_no_delivery(tmp_path: Path) -> None:
    """Anyone may write a receipts topic: an unsigned receipt in a chain of its own, naming a real delivery at
    another feed record, binds nothing, so the partner's own receipt, vouched for, still matches it; a chain cut
    off drops what it held."""
    receipt = {"kind": "RECEIPT", "chain": "COL", "partner": "COL", "alert_id": "SNM:1", "version": 1,
               "status": "RECEIVED", "feed": "p.feed.COL:0:0", "at": "2026-11-01T10:00:00Z"}
    with _Delivered(tmp_path) as delivered:
        delivered.check(json.loads(_block(["SNM:1"])), 0)
        assert delivered.check({**receipt, "chain": "COL/x", "feed": "p.feed.COL:0:99"}, 1) == []
        assert _vouched(delivered, receipt) is None
        delivered.check({**receipt, "chain": "COL/y", "feed": "p.feed.COL:0:98"}, 2)
        delivered.cut(["COL/y"])
        assert delivered.check({"kind": "CHECKPOINT", "chain": "COL/y"}, 3) == []


# read_log and verify_topics over a stand-in for the Kafka seam: ``audit_topics`` (conftest.py).


def _receipts(alerts: list[str]) -> list[bytes]:
    writer = ChainWriter("p.receipts.COL", 0, checkpoint_every=1 << 62, chain="COL")
    values = [writer.append("RECEIPT", {"partner": "COL", "alert_id": a, "version": 1, "status": "RECEIVED",
                                        "feed": f"p.feed.COL:0:{i}", "at": f"2026-11-01T10:00:0{a[-1]}Z"})
              for i, a in enumerate(alerts)]
    return [*values, writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]


def test_verify_topics_reports_a_receipt_for_no_delivery_and_leaves_no_spill(
        audit_topics: dict[str, list[bytes]], scratch: Path) -> None:
    """`verify_topics` matches receipts to the deliveries it spilled: the one for an undelivered alert is reported,
    and the spill is gone once it returns."""
    audit_topics["p.decisions"] = [_block(["SNM:1", "SNM:2"])]
    audit_topics["p.receipts.COL"] = _receipts(["SNM:1", "SNM:9"])
    roles: dict[str, Any] = {"p.decisions": "decisions", "p.receipts.COL": "receipts"}
    reports = asyncio.run(verify_topics(None, roles, _verify, {"p.receipts.COL": "COL"}))  # type: ignore[arg-type]
    assert [(r.topic, r.records) for r in reports] == [("p.decisions", 1), ("p.receipts.COL", 3)]
    assert [(f.offset, "never delivered" in f.problem) for f in reports[1].findings] == [(1, True)]
    assert list(scratch.iterdir()) == []


def test_read_log_into_time_sorted_lists_what_verifies_in_time_order(
        audit_topics: dict[str, list[bytes]], scratch: Path) -> None:
    """`read_log` streamed into `TimeSorted` gives the sound rows oldest first, leaves the unmatched receipt out
    (counted), and leaves no spill behind."""
    audit_topics["p.decisions"] = [_block(["SNM:1", "SNM:2"])]
    audit_topics["p.receipts.COL"] = _receipts(["SNM:2", "SNM:9", "SNM:1"])
    roles: dict[str, Any] = {"p.decisions": "decisions", "p.receipts.COL": "receipts"}
    left_out: list[int] = []
    with TimeSorted() as docs:
        asyncio.run(docs.fill(read_log(None, roles, LogFilter(kinds=frozenset({"RECEIPT"})),  # type: ignore[arg-type]
                                       _verify, left_out, {"p.receipts.COL": "COL"})))
        assert [d["alert_id"] for d in docs] == ["SNM:1", "SNM:2"]
        assert len(os.listdir(scratch)) == 1  # this spill; read_log's own is gone already
    assert sum(left_out) == 1
    assert list(scratch.iterdir()) == []


def test_verify_topics_and_read_log_hold_each_receipt_to_the_feed_record_it_names(
        audit_topics: dict[str, list[bytes]], scratch: Path) -> None:
    """A receipt of a version never sent, one dated before the delivery it names, and one naming a delivery already
    receipted at another feed record are each reported by `audit verify` and left out of `audit log`; the receipt
    of version 1 at its own record is sound."""
    decisions = ChainWriter("p.decisions", 0)
    audit_topics["p.decisions"] = [decisions.block(
        [{"kind": "ALERT", "alert_id": "SNM:1", "version": version, "at": at,
          "decisions": [{"partner": "COL", "decision": "DELIVER", "feed": "p.feed.COL"}]}], "broker-sign-2026a", _sign,
        "t") for version, at in ((1, "2026-11-01T09:59:00Z"), (2, "2026-11-03T10:00:00Z"))]
    writer = ChainWriter("p.receipts.COL", 0, checkpoint_every=1 << 62, chain="COL")
    audit_topics["p.receipts.COL"] = [
        *(writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:1", "version": version, "status": "RECEIVED",
                                    "feed": f"p.feed.COL:0:{offset}", "at": "2026-11-01T10:00:05Z"})
          for version, offset in ((1, 0), (99, 1), (2, 2), (1, 3))),
        writer.checkpoint("COL-rcpt-2026a", _sign, SIGNED_AT)]
    roles: dict[str, Any] = {"p.decisions": "decisions", "p.receipts.COL": "receipts"}
    reports = asyncio.run(verify_topics(None, roles, _verify, {"p.receipts.COL": "COL"}))  # type: ignore[arg-type]
    found = [(f.offset, f.problem) for f in reports[-1].findings]
    assert [offset for offset, _ in found] == [1, 2, 3]
    assert "never delivered to COL at that version (it sent version 1, 2 there)" in found[0][1]
    assert "a receipt cannot precede its delivery" in found[1][1]
    assert "already put that delivery at p.feed.COL:0:0" in found[2][1]
    left_out: list[int] = []
    with TimeSorted() as docs:
        asyncio.run(docs.fill(read_log(None, roles, LogFilter(kinds=frozenset({"RECEIPT"})),  # type: ignore[arg-type]
                                       _verify, left_out, {"p.receipts.COL": "COL"})))
        assert [(d["version"], d["feed"]) for d in docs] == [(1, "p.feed.COL:0:0")]
    assert sum(left_out) == 3 and list(scratch.iterdir()) == []


def test_unvouched_receipts_are_held_within_bounds_and_what_is_given_up_is_returned() -> None:
    """Per chain, the oldest goes once the chain holds more than its bound; in all, the chain waiting longest
    gives up its oldest; pop returns a chain's held items in order and clear says how many it dropped."""
    held: Unvouched[str] = Unvouched(per_chain=3, in_all=4)
    assert [held.add("A", i, f"a{i}") for i in range(3)] == [[], [], []]
    assert held.add("A", 3, "a3") == [(0, "a0")]  # A over its own bound
    assert held.add("B", 10, "b0") == [] and held.add("B", 11, "b1") == [(1, "a1")]  # five in all: A waited longest
    assert len(held) == 4
    assert held.pop("A") == [(2, "a2"), (3, "a3")] and held.pop("A") == [] and len(held) == 2
    assert held.add("C", 20, "c0") == [] and held.clear() == 3 and len(held) == 0 and held.pop("B") == []


def test_a_flood_gives_up_its_own_receipts_before_those_of_a_chain_a_checkpoint_vouched_for() -> None:
    """Over the bound in all, the chain waiting longest that no checkpoint vouched for yet gives up its oldest, so a
    flood of chains no one signs cannot push out a genuine chain's held receipts; the bound counts the records'
    bytes too (a few large receipts), and a new partition (clear) vouches for no chain."""
    held: Unvouched[str] = Unvouched(per_chain=10, in_all=4, in_bytes=1_000)
    held.add("COL", 0, "c0")
    assert held.pop("COL", vouched=True) == [(0, "c0")]  # its checkpoint came
    assert held.add("COL", 1, "c1") == []
    assert [held.add(f"x{i}", 10 + i, f"x{i}") for i in range(3)] == [[], [], []]
    assert held.add("x3", 13, "x3") == [(10, "x0")]  # five in all: not COL's, though it waited longest
    assert held.add("x4", 14, "big", size=990) == [(11, "x1")]
    assert held.add("x5", 15, "x5", size=20) == [(12, "x2"), (13, "x3"), (14, "big")]  # over 1,000 bytes in all
    assert held.pop("COL") == [(1, "c1")] and len(held) == 1
    held.clear()
    held.add("COL", 20, "c2")
    assert held.add("y", 21, "y0", size=2_000) == [(20, "c2"), (21, "y0")]  # no chain vouched for any more


def test_a_flood_of_receipts_no_checkpoint_vouches_for_is_given_up_and_reported(tmp_path: Path) -> None:
    """Anyone may write a receipts topic: receipts no checkpoint vouches for are held only up to a bound per chain
    (and in all), so a flood cannot fill an auditor's memory. Each given up is a finding, the first hundred of a
    partition one by one and then one line saying more are not listed; the partner's own receipts, in a chain of
    their own, are still matched once their checkpoint comes."""
    receipt = {"kind": "RECEIPT", "chain": "COL", "partner": "COL", "alert_id": "SNM:1", "version": 1,
               "status": "RECEIVED", "feed": "p.feed.COL:0:0", "at": "2026-11-01T10:00:00Z"}
    with _Delivered(tmp_path) as delivered:
        delivered.check(json.loads(_block(["SNM:1"])), 0)
        assert delivered.check(receipt, 1) == []
        found = [f for i in range(UNVOUCHED_PER_CHAIN + 150)
                 for f in delivered.check({**receipt, "chain": "COL/flood", "feed": f"p.feed.COL:0:{i}"}, 2 + i)]
        assert len(found) == 101 and [at for at, _ in found[:2]] == [2, 3]
        assert all("no checkpoint of its chain vouched for it" in why for _, why in found)
        assert "not listed one by one" in found[-1][1] and "not listed" not in found[-2][1]
        assert len(delivered._waiting) == UNVOUCHED_PER_CHAIN + 1  # the flood's newest, and COL's receipt
        assert delivered.check({"kind": "CHECKPOINT", "chain": "COL"}, 10**6) == []  # COL's own still matches
        delivered.begin()  # a new partition: its findings are listed one by one again
        assert len(delivered._waiting) == 0


def test_receipts_are_checked_against_a_decisions_topic_that_holds_no_record(
        audit_topics: dict[str, list[bytes]], scratch: Path) -> None:
    """A decisions topic walked while empty delivered nothing: COL's receipts, vouched for by its checkpoint, each
    claim a delivery never made, so `audit verify` reports each and `audit log` leaves each out, never passing them
    unchecked (as the audit index holds them: findings, no rows)."""
    audit_topics["p.decisions"] = []
    audit_topics["p.receipts.COL"] = _receipts(["SNM:1", "SNM:2"])
    roles: dict[str, Any] = {"p.decisions": "decisions", "p.receipts.COL": "receipts"}
    reports = asyncio.run(verify_topics(None, roles, _verify, {"p.receipts.COL": "COL"}))  # type: ignore[arg-type]
    assert [(r.topic, r.records) for r in reports] == [("p.decisions", 0), ("p.receipts.COL", 3)]
    assert [(f.offset, "never delivered to COL" in f.problem) for f in reports[1].findings] == [(0, True), (1, True)]
    left_out: list[int] = []
    with TimeSorted() as docs:
        asyncio.run(docs.fill(read_log(None, roles, LogFilter(kinds=frozenset({"RECEIPT"})),  # type: ignore[arg-type]
                                       _verify, left_out, {"p.receipts.COL": "COL"})))
        assert len(docs) == 0
    assert sum(left_out) == 2 and list(scratch.iterdir()) == []


def _inflating(chain: str, count: int, items: int) -> list[bytes]:
    """``count`` receipts of ``chain`` no checkpoint vouches for, each padded with ``items`` empty objects: 3 bytes each
    as JSON, some 70 each parsed."""
    writer = ChainWriter("p.receipts.COL", 0, checkpoint_every=1 << 62, chain=chain)
    pad = [{} for _ in range(items)]
    return [writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{i}", "version": 1, "status": "RECEIVED",
                                      "feed": f"p.feed.COL:0:{i}", "at": SIGNED_AT, "pad": pad}) for i in range(count)]


def test_what_waits_for_a_checkpoint_takes_no_more_memory_than_its_records_bytes(tmp_path: Path) -> None:
    """Receipts whose JSON swells when parsed (lists of empty objects) wait in no more memory than their records' bytes,
    which is what ``Unvouched`` counts (``UNVOUCHED_BYTES``), not twenty times as much; once a checkpoint vouches for
    them they are matched as before (here to no delivery)."""
    values = _inflating("COL", 20, 20_000)
    written = sum(len(v) for v in values)
    with _Delivered(tmp_path) as delivered:
        delivered.known = True
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for offset, value in enumerate(values):
                assert delivered.check(json.loads(value), offset, len(value)) == []
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert held - before < written / 4, f"{(held - before) / 1e6:.1f} MB held for {written / 1e6:.1f} MB written"
        found = delivered.check({"kind": "CHECKPOINT", "chain": "COL"}, len(values))
        assert [at for at, _ in found] == list(range(20)) and all("never delivered" in why for _, why in found)


def test_read_log_holds_waiting_receipts_as_their_records_bytes(
        audit_topics: dict[str, list[bytes]], scratch: Path) -> None:
    """`audit log` holds a receipt waiting for its checkpoint as its record's bytes, not its parsed rows: a flood of
    receipts that swell when parsed, never vouched for, peaks near one parsed record plus the bytes written, not at
    twenty times them; each is left out."""
    values = _inflating("COL/flood", 60, 10_000)
    written = sum(len(v) for v in values)
    audit_topics["p.decisions"] = [_block(["SNM:1"])]
    audit_topics["p.receipts.COL"] = values
    roles: dict[str, Any] = {"p.decisions": "decisions", "p.receipts.COL": "receipts"}
    left_out: list[int] = []
    tracemalloc.start()
    try:
        with TimeSorted() as docs:
            asyncio.run(docs.fill(read_log(None, roles, LogFilter(kinds=frozenset({"RECEIPT"})),  # type: ignore[arg-type]
                                           _verify, left_out, {"p.receipts.COL": "COL"})))
            assert len(docs) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(left_out) == 60
    assert peak < 6 * written, f"peak {peak / 1e6:.1f} MB for {written / 1e6:.1f} MB written"
