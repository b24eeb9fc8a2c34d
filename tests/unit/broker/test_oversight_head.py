"""The queries chain is extended only from a head that follows the chain: a lone record at the start of a
partition that lost nothing must start the chain, and seq and since_checkpoint are plain integers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

import broker.oversight as oversight
from broker.audit.chain import ChainHead, ChainWriter, canonical, sealed
from broker.kafka import KafkaConnection
from broker.oversight import CHAIN, KIND, QueryLog, QueryLogError, query_body
from broker.topology import TopicNames
from puente.errors import AuditChainError
from puente.wire import Record

TOPIC = "t.audit.queries"
AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FORGED_PREV = "ab" * 32


def _body(i: int = 0) -> dict[str, Any]:
    return query_body("x", "national", "search", {}, i, AT)


def _from(head: ChainHead, offsets: list[int]) -> list[Record]:
    """QUERY records of the console chain from ``head`` on, at ``offsets``, each sealed as the writer seals."""
    writer = ChainWriter(TOPIC, 0, head, chain=CHAIN)
    return [Record(TOPIC, 0, off, None, writer.append(KIND, _body(i)), (), 0) for i, off in enumerate(offsets)]


def _sealed(offset: int, **fields: Any) -> Record:
    """One QUERY record sealed as written (its hash matches) whatever its fields hold."""
    doc = {**_body(), "v": 1, "kind": KIND, "chain": CHAIN, "prev": FORGED_PREV, "since_checkpoint": 1, **fields}
    body = canonical(doc)
    return Record(TOPIC, 0, offset, None, sealed(body, hashlib.sha256(body).hexdigest()), (), 0)


def _partition(monkeypatch: pytest.MonkeyPatch, begin: int, end: int, records: list[Record]) -> QueryLog:
    """A QueryLog whose reads see one partition: offsets ``begin`` to ``end`` holding ``records``."""

    class Consumer:
        def assign(self, tps: Any) -> None: ...

        async def end_offsets(self, tps: Any) -> dict[Any, int]:
            return dict.fromkeys(tps, end)

        async def beginning_offsets(self, tps: Any) -> dict[Any, int]:
            return dict.fromkeys(tps, begin)

    async def settled(*args: Any, **kwargs: Any) -> None: ...

    @asynccontextmanager
    async def running(client: Any, *args: Any) -> AsyncIterator[Any]:
        yield client

    async def read_range(consumer: Any, tp: Any, start: int | None = None) -> AsyncIterator[Record]:
        for rec in records:
            if rec.offset >= (start or 0):
                yield rec

    monkeypatch.setattr(oversight, "wait_settled", settled)
    monkeypatch.setattr(oversight, "running", running)
    monkeypatch.setattr(oversight, "reader", lambda *a, **k: Consumer())
    monkeypatch.setattr(oversight, "read_range", read_range)
    return QueryLog(KafkaConnection(bootstrap="unused:9092"), TopicNames("t"))


@pytest.mark.parametrize("forged", [
    _from(ChainHead(seq=7, prev=FORGED_PREV), [0]),  # the reviewer's case: one record, seq 7
    _from(ChainHead(seq=7, prev=FORGED_PREV), [0, 1]),  # two that follow each other, but not the genesis
    _from(ChainHead(seq=7, prev=FORGED_PREV), [40, 41]),  # after aborted offsets: still all the partition holds
], ids=["lone", "pair", "pair-after-aborted"])
async def test_a_head_that_follows_nothing_at_the_start_of_a_whole_partition_is_refused(
        monkeypatch: pytest.MonkeyPatch, forged: list[Record]) -> None:
    """Offsets from 0, none lost, and what they hold does not start at seq 0 from the genesis: not extended."""
    log = _partition(monkeypatch, 0, forged[-1].offset + 1, forged)
    with pytest.raises(AuditChainError, match="does not start the chain"):
        await log._head()


async def test_a_chain_from_the_genesis_or_a_head_past_lost_offsets_is_continued(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The genesis chain continues after its last record; past offsets lost to retention only the last two are
    checked (``audit verify`` walks the rest), so a head there at seq 7 is continued."""
    sound = _from(ChainHead(), [0, 1, 2])
    assert (await _partition(monkeypatch, 0, 3, sound)._head()).seq == 3
    kept = _from(ChainHead(seq=7, prev=FORGED_PREV, since_checkpoint=7), [100])
    head = await _partition(monkeypatch, 100, 101, kept)._head()
    assert head.seq == 8 and head.since_checkpoint == 8


async def test_a_query_log_whose_every_record_is_gone_begins_a_new_chain_only_when_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record deleted (its log starting at offset 50, nothing held): retention's work or a deletion by hand.
    The console refuses to begin a chain whose start nothing vouches for (a deletion would then verify clean),
    naming `--new-chain`; told so, it begins one at seq 0, once: a head read again later refuses as before. A
    partition that never held a record (offset 0) begins the chain as ever."""
    log = _partition(monkeypatch, 50, 50, [])
    with pytest.raises(AuditChainError, match=r"holds no record, but its log starts at offset 50.*--new-chain"):
        await log._head()
    assert (await _partition(monkeypatch, 0, 0, [])._head()).seq == 0

    class Made:
        async def stop(self) -> None: ...

    async def started(*args: Any) -> None: ...
    monkeypatch.setattr(oversight, "producer", lambda *args, **kwargs: Made())
    monkeypatch.setattr(oversight, "start", started)
    told = _partition(monkeypatch, 50, 50, [])
    told.new_chain = True
    await told.start()
    assert told._chain is not None and told._chain.head.seq == 0 and not told.new_chain
    with pytest.raises(AuditChainError, match="--new-chain"):
        await told._head()


@pytest.mark.parametrize("fields", [
    {"seq": "6"}, {"seq": 6.9}, {"seq": True}, {"seq": -1}, {"seq": 6, "since_checkpoint": "6"},
    {"seq": 6, "since_checkpoint": 6.5}, {"seq": 6, "since_checkpoint": False},
], ids=["seq-str", "seq-float", "seq-bool", "seq-negative", "since-str", "since-float", "since-bool"])
async def test_a_head_whose_seq_or_count_is_not_a_plain_integer_is_refused(
        monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]) -> None:
    """A sealed head with seq or since_checkpoint as text, a fraction or a boolean is malformed, not read with int()."""
    log = _partition(monkeypatch, 100, 101, [_sealed(100, **fields)])
    with pytest.raises(AuditChainError, match="malformed"):
        await log._head()


class _Producer:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> None: ...


async def test_a_malformed_head_is_named_as_such_when_a_query_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The head re-read before a query (after a failed write) has since_checkpoint "x": the query is refused with a
    message naming a malformed chain head, not Kafka."""
    log = _partition(monkeypatch, 100, 101, [_sealed(100, seq=6, since_checkpoint="x")])
    log._producer, log._chain, log._broken = _Producer(), ChainWriter(TOPIC, 0, chain=CHAIN), "a write failed"  # type: ignore[assignment]
    with pytest.raises(QueryLogError) as refused:
        await log.record("x", "national", "search", {}, 0, AT)
    assert "malformed" in str(refused.value) and "check Kafka" not in str(refused.value)
