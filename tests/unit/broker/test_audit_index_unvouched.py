"""The audit index holds receipts no checkpoint vouched for by `audit verify`'s rule, and reports what it gives up."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from broker import auditor
from broker.audit import ChainWriter
from broker.audit.receipts import GIVEN_UP, GIVEN_UP_LISTED, Unvouched
from broker.audit.verify import Finding, PartitionWalk
from broker.audit_index import AuditIndex, Scope
from broker.audit_index import _ingest as ingest_module
from puente.wire import iso_utc
from tests.unit.broker.test_audit_index import T0, USA_RCPT, VERIFY, _ingest, _signer

PER_CHAIN, IN_ALL, IN_BYTES = 4, 10, 6_000  # small bounds, so a flood takes a few dozen records


@pytest.fixture(autouse=True)
def _small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index and `audit verify` both hold receipts in an ``Unvouched`` with the same small bounds."""
    small = functools.partial(Unvouched, per_chain=PER_CHAIN, in_all=IN_ALL, in_bytes=IN_BYTES)
    monkeypatch.setattr(auditor, "Unvouched", small)
    monkeypatch.setattr(ingest_module, "Unvouched", small, raising=False)  # (before the fix: not there)


class _Receipts:
    """USA's receipts topic: receipts in any chain, checkpoints signed with USA's key (a flood's chains get none)."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self._writers: dict[str, ChainWriter] = {}
        self._n = 0

    def _writer(self, chain: str) -> ChainWriter:
        if chain not in self._writers:
            self._writers[chain] = ChainWriter(USA_RCPT, 0, checkpoint_every=1 << 62, chain=chain)
        return self._writers[chain]

    def receipts(self, chain: str, count: int, pad: int = 0) -> _Receipts:
        for _ in range(count):
            self._n += 1
            self.records.append(self._writer(chain).append("RECEIPT", {
                "partner": "USA", "alert_id": f"X:{self._n}", "version": 1, "status": "RECEIVED",
                "feed": f"t.feed.USA:0:{self._n}", "at": iso_utc(T0), "pad": "x" * pad}))
        return self

    def checkpoint(self, chain: str) -> _Receipts:
        self.records.append(self._writer(chain).checkpoint("USA-rcpt-2026a", _signer("USA-rcpt-2026a"), iso_utc(T0)))
        return self


def _verified(records: list[bytes]) -> list[Finding]:
    """`audit verify`'s findings in the partition, assembled as ``auditor._verify_partition`` does."""
    walk = PartitionWalk(USA_RCPT, 0, VERIFY, "receipts", "USA")
    findings: list[Finding] = []
    unmatched: list[Finding] = []
    with auditor._Delivered() as delivered:
        # The index matches every vouched receipt against the decisions it holds, none here: `audit verify` does
        # so once it has walked some decisions, and finds each receipt names no delivery.
        delivered.known = True
        delivered.begin()
        for offset, value in enumerate(records):
            doc, found = walk.feed(offset, value)
            findings += found
            delivered.cut(walk.cut)
            if doc is not None and not found:
                unmatched += [Finding(USA_RCPT, 0, at, why) for at, why in delivered.check(doc, offset, len(value))]
    tail = walk.tail_findings()
    return findings + tail + [f for f in unmatched if f.offset not in {t.offset for t in tail}]


def _given_up(findings: list[dict[str, Any]] | list[Finding]) -> list[tuple[int, str]]:
    out = [(f["offset"], f["problem"]) if isinstance(f, dict) else (f.offset, f.problem) for f in findings]
    return sorted((at, why) for at, why in out if why.startswith(GIVEN_UP))


def _indexed(folder: Path, records: list[bytes], stops: tuple[int, ...] = ()) -> AuditIndex:
    """The index of ``records``, caught up in one run, or in several ending at each of ``stops``."""
    index = AuditIndex(folder / "index.sqlite")
    for stop in (*stops, len(records)):
        _ingest(index, {USA_RCPT: records}, {USA_RCPT: stop})
    return index


def _scenarios() -> dict[str, list[bytes]]:
    return {
        # One chain holds more than its bound before its checkpoint: the oldest are given up.
        "per chain": _Receipts().receipts("USA", PER_CHAIN + 3).checkpoint("USA").records,
        # A vouched chain's receipts outlast flood chains' until only vouched ones are left to give up.
        "in all": (_Receipts().receipts("USA", 2).checkpoint("USA").receipts("USA", 3)
                   .receipts("USA/f1", 4).receipts("USA/f2", 4).receipts("USA/f3", 4).receipts("USA", 1)
                   .checkpoint("USA").records),
        # The chain that began holding first gives up first, though its oldest held receipt is the newer.
        "order": (_Receipts().receipts("USA/a", 1).receipts("USA/b", 1).receipts("USA/a", PER_CHAIN)
                  .receipts("USA/c", 4).receipts("USA/d", 4).records),
        # Large receipts: the bytes bound gives up first.
        "bytes": (_Receipts().receipts("USA/f1", 3, pad=1_500).receipts("USA", 3, pad=1_500).checkpoint("USA")
                  .records),
        # A flood past the listing: the first ``GIVEN_UP_LISTED`` one by one, then one line.
        "listed": _Receipts().receipts("USA/f1", GIVEN_UP_LISTED + PER_CHAIN + 5).records,
    }


@pytest.mark.parametrize("name", sorted(_scenarios()))
def test_the_index_reports_what_audit_verify_reports(tmp_path: Path, name: str) -> None:
    """Receipts given up unvouched are the same findings, at the same offsets, in the index as in `audit verify`."""
    records = _scenarios()[name]
    verified = _verified(records)
    index = _indexed(tmp_path, records)
    assert _given_up(verified)  # every scenario gives some up
    assert _given_up(index.integrity(Scope())["findings"]) == _given_up(verified)
    assert index.problems() == len(verified)


def test_the_listing_stops_at_its_bound_with_one_line_more(tmp_path: Path) -> None:
    """A flood gives the index ``GIVEN_UP_LISTED`` findings and one saying more are not listed, no more."""
    index = _indexed(tmp_path, _scenarios()["listed"])
    given = [why for _, why in _given_up(index.integrity(Scope())["findings"])]
    assert len(given) == GIVEN_UP_LISTED and given[-1].endswith("not listed one by one")  # the first is the tail's


@pytest.mark.parametrize("name", sorted(_scenarios()))
def test_a_catch_up_in_several_runs_gives_up_what_one_run_gives_up(tmp_path: Path, name: str) -> None:
    """The bound, its order of giving up and the listing carry over from one catch-up to the next."""
    records = _scenarios()[name]
    whole = _indexed(tmp_path / "whole", records).integrity(Scope())["findings"]
    stops = tuple(range(1, len(records), 3))
    parts = _indexed(tmp_path / "parts", records, stops)
    assert _given_up(parts.integrity(Scope())["findings"]) == _given_up(whole)
    assert parts.problems() == len(_verified(records))


def test_what_waits_for_a_checkpoint_stays_within_the_bounds(tmp_path: Path) -> None:
    """A flood that never checkpoints leaves at most the bound in ``pending_receipts``, and no receipt row."""
    index = _indexed(tmp_path, _Receipts().receipts("USA/f1", 30).receipts("USA/f2", 30).records, (7, 33))
    assert index._one("SELECT COUNT(*) FROM pending_receipts") <= IN_ALL
    assert index._one("SELECT COUNT(*) FROM receipts") == 0


def test_a_receipt_given_up_is_no_row_when_its_checkpoint_comes(tmp_path: Path) -> None:
    """Given up, a receipt stays unmatched: its chain's checkpoint matches the receipts still held only (here to
    no delivery: no decisions are indexed, so they are held to be matched again, and no row)."""
    index = _indexed(tmp_path, _scenarios()["per chain"])
    assert index._one("SELECT COUNT(*) FROM receipts") == 0
    assert index._one("SELECT COUNT(*) FROM unmatched_receipts") == PER_CHAIN
    assert index._one("SELECT MIN(\"offset\") FROM unmatched_receipts") == 3


def test_audit_verify_lists_receipts_given_up_as_the_index_does() -> None:
    """`audit verify` words and lists receipts given up as the index does (``broker.audit.receipts.given_up``):
    the first GIVEN_UP_LISTED of a partition one by one, then one line, then none, across calls."""
    delivered = auditor._Delivered()
    first = delivered._given_up(list(range(GIVEN_UP_LISTED - 1)))
    second = delivered._given_up([1000, 1001, 1002])
    assert [why for _, why in first] == [GIVEN_UP] * (GIVEN_UP_LISTED - 1)
    assert second == [(1000, GIVEN_UP), (1001, f"{GIVEN_UP}; more such receipts in this partition are not listed one "
                                                "by one")]
