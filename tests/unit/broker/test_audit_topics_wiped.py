"""The auditors' query log and the collected denials cannot be wiped unnoticed: every planned audit topic is walked,
one missing is a finding, and the index's lost-record check covers every audit topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.auditor as auditor
from broker.audit import ChainWriter
from broker.audit.verify import FeedEnds, GroupEnds, Holds
from broker.audit_index import AuditIndex, Scope
from broker.crypto import checker, sign_checkpoint
from broker.kafka import KafkaConnection
from broker.oversight import query_body
from puente.wire import iso_utc
from tests.unit.broker.conftest import AuditConsumer, read_audit_from

DECISIONS, DENIALS, QUERIES = "t.audit.decisions", "t.audit.denials", "t.audit.queries"
ROLES: dict[str, Holds] = {DECISIONS: "decisions", DENIALS: "denials", QUERIES: "queries"}
KEY = Ed25519PrivateKey.generate()
VERIFY = checker({"broker-sign-2026a": KEY.public_key()})
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ENDS = GroupEnds({("t.ingress.SNM", 0): 1}, FeedEnds({}, frozenset(), "t.feed.", {}))


def _decisions() -> list[bytes]:
    block = {"kind": "ALERT", "alert_id": "SNM:0", "ingress": "t.ingress.SNM:0:0", "at": iso_utc(T0), "decisions": []}
    return [ChainWriter(DECISIONS, 0).block([block], "broker-sign-2026a", lambda p: sign_checkpoint(KEY, p),
                                             iso_utc(T0))]


def _queries(n: int, who: str) -> list[bytes]:
    """The console's chain of ``n`` queries, from seq 0 (a topic made again starts a new one)."""
    writer = ChainWriter(QUERIES, 0, chain="console")
    return [writer.append("QUERY", query_body(who, "national", "search", {"partner": "USA"}, 3, T0))
            for _ in range(n)]


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[bytes]]:
    """The cluster: topic -> its one partition's records; a topic not in it does not exist."""
    held: dict[str, list[bytes]] = {}

    class Consumer(AuditConsumer):
        async def topics(self) -> set[str]:
            return set(held)

        async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
            return {tp: len(held[tp.topic]) for tp in tps if tp.topic in held}

    async def settle(conn: Any, tps: Any, timeout_s: float) -> set[Any]:
        return set()

    read_audit_from(monkeypatch, lambda topic: [0] if topic in held else [],
                    lambda tp: ((value, None) for value in held[tp.topic]), Consumer())
    monkeypatch.setattr(auditor, "settle", settle)
    monkeypatch.setattr(auditor, "LOST_CONFIRM_S", 0.0)
    return held


def _problems(reports: list[Any]) -> list[str]:
    return [f"{f.topic}: {f.problem}" for r in reports for f in r.findings]


def test_the_planned_audit_topics_are_walked_whether_present_or_not(kafka: dict[str, list[bytes]]) -> None:
    """`audit_topics` gives every audit topic the deployment plans (decisions, each receipts topic present, the
    denials, the queries), in the order the walk needs, not only those the cluster holds."""
    kafka.update({DECISIONS: [], "t.receipts.COL": [], "t.feed.COL": []})
    found = asyncio.run(auditor.audit_topics(KafkaConnection(bootstrap="k:9093"), "t"))
    assert list(found.roles.items()) == [(DECISIONS, "decisions"), ("t.receipts.COL", "receipts"),
                                         (DENIALS, "denials"), (QUERIES, "queries")]


def test_an_audit_topic_deleted_outright_is_a_finding_of_verify(kafka: dict[str, list[bytes]]) -> None:
    """The queries topic gone from the cluster is one finding naming it and what to check, never "no problems";
    the denials topic present and empty is none."""
    kafka.update({DECISIONS: _decisions(), DENIALS: []})
    reports = asyncio.run(auditor.verify_topics(KafkaConnection(bootstrap="k:9093"), ROLES, VERIFY))
    problems = _problems(reports)
    assert len(problems) == 1 and problems[0].startswith(f"{QUERIES}: this audit topic (it holds the queries) is not "
                                                          "in the cluster")
    assert "`puente topics plan`" in problems[0]


def _catch_up(path: Path) -> tuple[int, list[str], int]:
    """One `audit index` run: the index's problems, their texts, and the queries it lists."""
    with AuditIndex(path) as index:
        run = asyncio.run(auditor.index_topics(KafkaConnection(bootstrap="k:9093"), ROLES, VERIFY, index, {},
                                               ends=ENDS))
        texts = [f["problem"] for f in index.integrity(Scope())["findings"]]
        return run.problems, texts, len(index.queries(Scope()))


def test_a_query_log_wiped_and_made_again_is_a_finding_of_the_index(kafka: dict[str, list[bytes]],
                                                                    tmp_path: Path) -> None:
    """40 queries indexed, then the topic made again with one new query: the index reports the queries topic ends
    before what it verified (its position is checked as the decisions' are); once the new chain passes the old
    position, its break is the finding. Deleted outright, it is missing as well as lost."""
    path = tmp_path / "index.sqlite"
    kafka.update({DECISIONS: _decisions(), DENIALS: [], QUERIES: _queries(40, "ana")})
    assert _catch_up(path) == (0, [], 40)

    kafka[QUERIES] = _queries(1, "mallory")
    problems, texts, _ = _catch_up(path)
    assert problems == 1 and "verified this partition to offset 39, but Kafka ended it at offset 1" in texts[0]

    kafka[QUERIES] = _queries(41, "mallory")
    problems, texts, _ = _catch_up(path)
    assert problems == 1 and "does not follow the record before it" in texts[0]

    del kafka[QUERIES]
    problems, texts, _ = _catch_up(path)
    assert any("Kafka ended it at offset 0" in t for t in texts)
    assert any("this audit topic (it holds the queries) is not in the cluster" in t for t in texts)


def test_a_missing_national_topic_is_neither_counted_nor_described_for_a_partners_auditor(
        kafka: dict[str, list[bytes]], tmp_path: Path) -> None:
    """The collected denials missing: a national auditor reads the finding; a partner's auditor, to whom the
    denials are nothing, neither counts nor reads it."""
    kafka.update({DECISIONS: _decisions(), QUERIES: []})
    problems, texts, _ = _catch_up(tmp_path / "index.sqlite")
    assert problems == 1 and "(it holds the denials) is not in the cluster" in texts[0]
    with AuditIndex(tmp_path / "index.sqlite") as index:
        scoped = index.integrity(Scope("COL"))
        assert index.problems(Scope("COL")) == 0 and scoped["findings"] == [] and scoped["end_problems"] == 0
