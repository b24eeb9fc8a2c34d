"""A console whose query-log producer stopped for good (its transactional id refused for a while, a sequence Kafka
lost) makes a new one at the next query, rather than answering 503 until it is restarted; one fenced by another
console stops, as before."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber, TransactionalIdAuthorizationFailed

import broker.oversight as oversight
from broker.audit.chain import ChainHead, ChainWriter
from broker.kafka import KafkaConnection, ProducerFenced, broken_for_good
from broker.oversight import CHAIN, QueryLog, QueryLogError, QueryLogFenced
from broker.topology import TopicNames


class _Producer(AIOKafkaProducer):
    """A real transactional producer that never reaches Kafka: each transaction's send fails with ``fail`` (the
    sender stopping for good, as aiokafka stops it) or, without one, is kept in ``sent``."""

    def __init__(self, fail: BaseException | None) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1", transactional_id="t.console", enable_idempotence=True)
        self._txn_manager.set_pid_and_epoch(1, 0)
        self.fail, self.sent, self.stopped = fail, [], False
        self._closed = True  # it never connects: nothing to close

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, value: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        if self.fail is not None:
            self._txn_manager.fatal_error(self.fail)
            raise self.fail
        self.sent.append(value)

    async def commit_transaction(self) -> None:
        self._txn_manager.committing_transaction()
        self._txn_manager.complete_transaction()


def _log(first: _Producer, made: list[_Producer], monkeypatch: pytest.MonkeyPatch) -> QueryLog:
    log = QueryLog(KafkaConnection(bootstrap="127.0.0.1:1"), TopicNames("t"))
    log._producer, log._chain = first, ChainWriter("t.audit.queries", 0, ChainHead(), chain=CHAIN)

    def new_producer(*args: Any, **kwargs: Any) -> _Producer:
        made.append(_Producer(None))
        return made[-1]

    async def head() -> ChainHead:
        return log._chain.head if log._chain else ChainHead()

    monkeypatch.setattr(oversight, "producer", new_producer)
    monkeypatch.setattr(log, "_head", head)
    return log


@pytest.mark.parametrize("cause", [TransactionalIdAuthorizationFailed("t.console"), OutOfOrderSequenceNumber()])
async def test_a_producer_stopped_for_good_is_made_anew_at_the_next_query(cause: BaseException,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The query that met the failure is refused (503); the producer is stopped, and the next queries are written
    through a new one (before, every later query failed on aiokafka's assertion until the console restarted)."""
    first, made = _Producer(cause), []
    log = _log(first, made, monkeypatch)
    with pytest.raises(QueryLogError, match="check Kafka"):
        await log.record("ana", "national", "search", {}, 0)
    assert broken_for_good(first) is cause and first.stopped and not made
    await log.record("ana", "national", "search", {}, 1)
    await log.record("ana", "national", "search", {}, 2)
    assert len(made) == 1 and len(made[0].sent) == 2 and log.fenced is None


async def test_a_producer_stopped_by_a_takeover_fences_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped for good because another console took the transactional id: the log is fenced, no producer made."""
    first, made = _Producer(ProducerFenced()), []
    log = _log(first, made, monkeypatch)
    with pytest.raises(QueryLogFenced):
        await log.record("ana", "national", "search", {}, 0)
    with pytest.raises(QueryLogFenced):
        await log.record("ana", "national", "search", {}, 0)
    assert not made and isinstance(broken_for_good(first), ProducerFenced)  # read: never logged at collection


async def test_a_producer_that_can_still_write_is_not_broken() -> None:
    assert broken_for_good(_Producer(None)) is None
