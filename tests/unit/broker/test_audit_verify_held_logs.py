"""`audit verify` asks the ingress and feed logs what they hold: offsets no decision chain accounts for and no
group offset vouches for are "not checked", never "no problems", whatever the groups' offsets say."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.auditor as auditor
from broker.audit import ChainWriter, PartitionReport
from broker.audit.verify import FeedEnds, Holds
from broker.crypto import checker, sign_checkpoint
from tests.unit.broker.conftest import AuditConsumer, read_audit_from

DECISIONS, INGRESS, FEED = "t.audit.decisions", "t.ingress.SNM", "t.feed.COL"
ROLES: dict[str, Holds] = {DECISIONS: "decisions"}


KEY = Ed25519PrivateKey.generate()
VERIFY = checker({"broker-sign-2026a": KEY.public_key()})


class _Cluster(AuditConsumer):
    """The auditor's reader of a cluster whose ingress and feed logs hold ``spans`` ((topic, partition) -> (log
    start, log end)) besides the decisions topic."""

    def __init__(self, spans: dict[tuple[str, int], tuple[int, int]]) -> None:
        self.spans = spans

    async def topics(self) -> set[str]:
        return {DECISIONS} | {t for t, _ in self.spans}

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self.spans.get((tp.topic, tp.partition), (0, 0))[0] for tp in tps}

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self.spans[(tp.topic, tp.partition)][1] for tp in tps}


def _block(upto: int, feed: str | None = None) -> bytes:
    """A decisions partition's one block taking ingress offsets 0 to ``upto`` of SNM[0], delivered to ``feed``."""
    decisions = [] if feed is None else [{"partner": "COL", "decision": "DELIVER", "feed": feed, "ref": "r1",
                                          "rules": ["col.cover"], "version": 1}]
    alerts = [{"kind": "ALERT", "alert_id": f"SNM:{i}", "at": "2026-03-01T12:00:00Z", "ingress": f"{INGRESS}:0:{i}",
               "decisions": decisions if i == upto else []} for i in range(upto + 1)]
    return ChainWriter(DECISIONS, 0).block(alerts, "broker-sign-2026a", lambda p: sign_checkpoint(KEY, p),
                                           "2026-03-01T12:00:00Z")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the walk reads: ``blocks``, the decisions partition's records; ``spans``, the other logs."""
    held: dict[str, Any] = {"blocks": [], "spans": {}}

    def records(tp: Any) -> Iterable[tuple[bytes, int | None]]:
        return [(b, None) for b in held["blocks"]]

    def partitions(topic: str) -> list[int]:
        return [0] if topic == DECISIONS else sorted(p for t, p in held["spans"] if t == topic)

    read_audit_from(monkeypatch, partitions, records, _Cluster(held["spans"]))
    return held


def _verify(committed: dict[tuple[str, int], int], feeds: bool = True) -> list[PartitionReport]:
    feed_ends = FeedEnds({}, frozenset({FEED}), "t.feed.", {FEED: "COL"}) if feeds else None
    return asyncio.run(auditor.verify_topics(None, ROLES, VERIFY, ends=committed,  # type: ignore[arg-type]
                                             feed_ends=feed_ends))


def _unchecked(reports: list[PartitionReport]) -> list[str]:
    return [f"{r.topic}[{r.partition}] {r.end.describe()}" for r in reports
            if r.end is not None and not r.end.checked and r.end.held is not None]


def test_ingress_records_no_chain_names_and_no_group_vouches_for_are_not_checked(cluster: dict[str, Any]) -> None:
    """The decisions topic empty (remade) and the broker group gone, an ingress partition holding offsets 0 to 4
    is not checked, naming the partition, its offsets and what to check; no finding is invented."""
    cluster["spans"][(INGRESS, 0)] = (0, 5)
    reports = _verify({}, feeds=False)
    [line] = _unchecked(reports)
    assert line.startswith(f"{INGRESS}[0] {INGRESS}:0 holds offsets 0 to 4; no sound decision chain names")
    assert "decisions topic and the broker group's offsets were deleted, or the broker has not yet run" in line
    assert not any(r.findings for r in reports)


def test_a_group_offset_or_a_chain_vouches_for_an_ingress_log(cluster: dict[str, Any]) -> None:
    """An ingress log the broker group has committed in (lag) or a chain names is judged by its end, as before;
    an empty log, or one whose records all expired, holds nothing to account for."""
    cluster["spans"].update({(INGRESS, 0): (0, 9), (INGRESS, 1): (0, 7), (INGRESS, 2): (0, 0), (INGRESS, 3): (4, 4)})
    cluster["blocks"].append(_block(2))
    assert _unchecked(_verify({(INGRESS, 1): 3}, feeds=False)) == []


def test_feed_records_no_block_delivered_are_not_checked(cluster: dict[str, Any]) -> None:
    """A feed partition holding offsets while no sound block records any delivery to that feed (the decisions
    remade) is not checked; a feed some block delivered to is left to its receipts' ends."""
    cluster["spans"].update({(FEED, 0): (0, 2), (FEED, 1): (0, 0)})
    [line] = _unchecked(_verify({}))
    assert line.startswith(f"{FEED}[0] {FEED}:0 holds offsets 0 to 1; no sound decision block records any delivery")
    cluster["blocks"].append(_block(0, FEED))
    cluster["spans"][(INGRESS, 0)] = (0, 2)
    assert _unchecked(_verify({})) == []
