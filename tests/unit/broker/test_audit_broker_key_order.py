"""The broker's signing key rotates forward across all its chains: a key it moved on from in one decisions partition
vouches for no later block in another, and a worker left on the old key reads as a rotation unfinished, no worse."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.auditor as auditor
from broker.audit import ChainWriter, PartitionReport
from broker.audit.verify import Holds
from broker.audit_index import AuditIndex, Scope
from broker.crypto import checker, sign_checkpoint
from puente.wire import iso_utc
from tests.unit.broker.conftest import AuditConsumer, read_audit_from

DECISIONS = "t.audit.decisions"
OLD, NEW = "broker-sign-2026a", "broker-sign-2026b"
KEYS = {kid: Ed25519PrivateKey.generate() for kid in (OLD, NEW)}
VERIFY = checker({kid: key.public_key() for kid, key in KEYS.items()})
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROTATED = T0 + timedelta(hours=1)  # NEW signs slot 0 from here on


class _Slot:
    """One decisions partition's chain: each block takes the next ingress offset of its own ingress partition."""

    def __init__(self, partition: int) -> None:
        self.partition, self.writer, self.next = partition, ChainWriter(DECISIONS, partition), 0
        self.blocks: list[bytes] = []
        self.appended: list[int] = []

    def block(self, kid: str, at: datetime, jump: int = 0, stated: str | None = None) -> _Slot:
        """A block Kafka appended at ``at``, stating ``stated`` as its time (default ``at``: an honest worker's)."""
        self.next += jump
        alert = {"kind": "ALERT", "alert_id": f"SNM:{self.partition}-{self.next}", "at": iso_utc(at),
                 "ingress": f"t.ingress.SNM:{self.partition}:{self.next}", "decisions": []}
        self.blocks.append(self.writer.block([alert], kid, lambda p: sign_checkpoint(KEYS[kid], p),
                                             iso_utc(at) if stated is None else stated))
        self.appended.append(int(at.timestamp() * 1000))
        self.next += 1
        return self


class _Consumer(AuditConsumer):
    """The auditor's reader of a cluster holding the decisions topic alone: no ingress or feed log to list."""

    async def topics(self) -> set[str]:
        return {DECISIONS}


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, int], _Slot]:
    """The decisions partitions `verify_topics` reads: (topic, partition) -> the slot whose records they are."""
    held: dict[tuple[str, int], _Slot] = {}

    def records(tp: Any) -> Iterable[tuple[bytes, int | None]]:
        slot = held[(tp.topic, tp.partition)]
        return zip(slot.blocks, slot.appended, strict=True)

    read_audit_from(monkeypatch, lambda topic: sorted(p for t, p in held if t == topic), records, _Consumer())
    return held


def _verify(held: dict[tuple[str, int], _Slot], slots: list[_Slot],
            ends: dict[tuple[str, int], int] | None = None) -> list[PartitionReport]:
    held.update({(DECISIONS, s.partition): s for s in slots})
    roles: dict[str, Holds] = {DECISIONS: "decisions"}
    return asyncio.run(auditor.verify_topics(None, roles, VERIFY, ends=ends))  # type: ignore[arg-type]


def _problems(reports: list[PartitionReport]) -> list[tuple[int, int, str]]:
    return [(f.partition, f.offset, f.problem) for r in reports for f in r.findings]


def test_a_retired_key_vouches_for_no_later_block_in_another_partition(
        kafka: dict[tuple[str, int], _Slot]) -> None:
    """Slot 0 moved on to NEW at 13:00; a block signed by OLD in quiet slot 1 days later (a leaked key jumping the
    slot's ingress offset ahead) is one finding there, naming both keys and both times; slot 1's block from before
    the rotation is none."""
    slot0 = _Slot(0).block(OLD, T0).block(NEW, ROTATED)
    slot1 = _Slot(1).block(OLD, T0).block(OLD, T0 + timedelta(days=3), jump=100_000)
    problems = _problems(_verify(kafka, [slot0, slot1], {("t.ingress.SNM", 0): 2, ("t.ingress.SNM", 1): 1}))
    assert problems == [(1, 1, (
        f"block seq 1 is signed by {OLD}, a key the broker had moved on from ({NEW} signed a block of "
        f"{DECISIONS}[0] Kafka appended at 2026-03-01T13:00:00Z, more than 60 minutes before this one's "
        "2026-03-04T12:00:00Z): a retired key in use, or a worker left on it (this chain's newest such block)"))]


def test_a_retired_key_is_older_by_its_generation_whenever_it_first_signed(
        kafka: dict[tuple[str, int], _Slot]) -> None:
    """Every chain held was signed by NEW from the start (OLD's blocks expired, or OLD never signed here): a block
    of quiet slot 1 signed by OLD days later is still a retired key in use, by the generation order, though OLD first
    signed after NEW did."""
    slot0 = _Slot(0).block(NEW, T0).block(NEW, ROTATED)
    slot1 = _Slot(1).block(OLD, T0 + timedelta(days=3), jump=100_000)
    problems = _problems(_verify(kafka, [slot0, slot1]))
    assert problems == [(1, 0, (
        f"block seq 0 is signed by {OLD}, a key the broker had moved on from ({NEW} signed a block of "
        f"{DECISIONS}[0] Kafka appended at 2026-03-01T12:00:00Z, more than 60 minutes before this one's "
        "2026-03-04T12:00:00Z): a retired key in use, or a worker left on it (this chain's newest such block)"))]


@pytest.mark.parametrize("stated", ["2026-03-01T12:30:00Z", "2026-03-04T12:00:00", "later", ""])
def test_the_time_a_forged_block_states_does_not_date_it(kafka: dict[tuple[str, int], _Slot], stated: str) -> None:
    """Whoever holds a retired key chooses the time its block states (before the rotation, without an offset,
    unreadable): the block is dated by when Kafka appended it, days after the rotation, and is a finding all the
    same."""
    slot0 = _Slot(0).block(OLD, T0).block(NEW, ROTATED)
    slot1 = _Slot(1).block(OLD, T0).block(OLD, T0 + timedelta(days=3), jump=100_000, stated=stated)
    problems = _problems(_verify(kafka, [slot0, slot1]))
    assert [(p, o) for p, o, _ in problems] == [(1, 1)] and "a retired key in use" in problems[0][2]


def test_a_rotation_every_chain_follows_is_no_finding(kafka: dict[tuple[str, int], _Slot]) -> None:
    """Every slot signing with OLD until the rotation and with NEW after it, in any partition order, is sound."""
    slot0 = _Slot(0).block(OLD, T0).block(NEW, ROTATED + timedelta(minutes=5))
    slot1 = _Slot(1).block(OLD, T0 + timedelta(minutes=59)).block(NEW, ROTATED)
    assert _problems(_verify(kafka, [slot0, slot1])) == []


def test_workers_restarted_one_after_another_are_no_finding(kafka: dict[tuple[str, int], _Slot]) -> None:
    """A rolling restart: slot 1's worker keeps signing with OLD for 50 minutes after slot 0's moved on. Within
    ``ROTATION_GRACE_MS`` that is no finding: a routine rotation must not read as an incident for as long as the
    audit keeps those blocks."""
    slot0 = _Slot(0).block(OLD, T0).block(NEW, ROTATED)
    slot1 = _Slot(1).block(OLD, ROTATED + timedelta(minutes=1)).block(OLD, ROTATED + timedelta(minutes=50))
    assert _problems(_verify(kafka, [slot0, slot1])) == []


def test_a_worker_left_on_the_old_key_is_one_finding_and_nothing_worse(kafka: dict[tuple[str, int], _Slot]) -> None:
    """A worker still signing slot 1 with OLD two hours after slot 0's worker moved on: one retired-key finding at
    its newest such block, as a partner's subscriber left on its old key gets; its blocks stay sound, so slot 1's
    chain is vouched to its end and its end reaches the broker group's offset (no missing-records finding)."""
    slot0 = _Slot(0).block(OLD, T0).block(NEW, ROTATED)
    slot1 = _Slot(1).block(OLD, ROTATED + timedelta(minutes=1)).block(OLD, ROTATED + timedelta(hours=2))
    reports = _verify(kafka, [slot0, slot1], {("t.ingress.SNM", 0): 2, ("t.ingress.SNM", 1): 2})
    problems = _problems(reports)
    assert len(problems) == 1 and problems[0][:2] == (1, 1) and "a retired key in use, or a worker left on it" in \
        problems[0][2]
    lagging = next(r for r in reports if r.partition == 1)
    assert [v.seq for v in lagging.vouched] == [1] and lagging.end is not None and lagging.end.checked \
        and not lagging.end.short


def test_within_one_chain_the_order_of_records_rules_not_the_clock(kafka: dict[tuple[str, int], _Slot]) -> None:
    """A slot handed from OLD's worker to NEW's, whose clock runs behind, dates NEW's first block before OLD's last:
    offsets order a chain's own blocks (``moved_back``), so that is no finding."""
    slot0 = _Slot(0).block(OLD, ROTATED + timedelta(seconds=2)).block(NEW, ROTATED)
    assert _problems(_verify(kafka, [slot0])) == []


def test_the_index_finds_the_retired_key_across_partitions_whatever_order_it_caught_up_in(tmp_path: Path) -> None:
    """The index, catching up slot 1 first and slot 0 (the rotation) later, reports the retired key once it knows
    of the newer one: to a national auditor as text, to a partner's auditor as a count."""
    slot0 = _Slot(0).block(OLD, T0).block(NEW, ROTATED)
    slot1 = _Slot(1).block(OLD, T0).block(OLD, T0 + timedelta(days=3))
    with AuditIndex(tmp_path / "index.sqlite") as index:
        index.register({DECISIONS: "decisions"})
        for slot in (slot1, slot0):
            assert index.problems() == 0
            ingest = index.partition(DECISIONS, slot.partition, "decisions", VERIFY)
            for offset, (value, appended) in enumerate(zip(slot.blocks, slot.appended, strict=True)):
                ingest.add(offset, value, appended)
            ingest.commit()
        found = index.integrity(Scope())
        assert index.problems() == 1 and found["findings_total"] == 1
        assert found["findings"][0]["offset"] == 1 and "a key the broker had moved on from" in \
            found["findings"][0]["problem"]
        assert [c["problems"] for c in found["chains"] if c["partition"] == 1] == [1]
        assert index.problems(Scope("COL")) == 1 and index.integrity(Scope("COL"))["findings"] == []
