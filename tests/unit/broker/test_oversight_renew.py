"""A console whose query-log producer stopped for good (its transactional id refused for a while, a sequence Kafka
lost) stops, naming why, rather than answering 503 until it is restarted; it never makes a new producer itself,
which would fence a newer console that took the log over meanwhile."""

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
        self.fail, self.sent = fail, []
        self._closed = True  # it never connects: nothing to close

    async def send_and_wait(self, topic: str, value: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        if self.fail is not None:
            self._txn_manager.fatal_error(self.fail)
            raise self.fail
        self.sent.append(value)

    async def commit_transaction(self) -> None:
        self._txn_manager.committing_transaction()
        self._txn_manager.complete_transaction()

    async def abort_transaction(self) -> None:
        self._txn_manager.aborting_transaction()
        self._txn_manager.complete_transaction()


def _log(first: _Producer, made: list[Any], monkeypatch: pytest.MonkeyPatch) -> QueryLog:
    log = QueryLog(KafkaConnection(bootstrap="127.0.0.1:1"), TopicNames("t"))
    log._producer, log._chain = first, ChainWriter("t.audit.queries", 0, ChainHead(), chain=CHAIN)
    monkeypatch.setattr(oversight, "producer", lambda *args, **kwargs: made.append(args) or _Producer(None))

    async def head() -> ChainHead:  # the head read back after a failed write: the one the log held
        assert log._chain is not None
        return log._chain.head

    monkeypatch.setattr(log, "_head", head)
    return log


@pytest.mark.parametrize("cause", [TransactionalIdAuthorizationFailed("t.console"), OutOfOrderSequenceNumber()])
async def test_a_producer_stopped_for_good_ends_the_log_naming_why(cause: BaseException,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The query that met the failure is refused, the log ends (``taken_over`` woken: ``serve`` stops, exit 1) with
    one line naming the cause and what to check; no new producer is made, and later queries are refused at once
    (before, every later query failed on aiokafka's assertion, 503 until the console was restarted)."""
    made: list[Any] = []
    log = _log(_Producer(cause), made, monkeypatch)
    with pytest.raises(QueryLogFenced, match=f"stopped for good \\({type(cause).__name__}\\); check the console's"):
        await log.record("ana", "national", "search", {}, 0)
    assert log.fenced is not None and (await log.taken_over()) is log.fenced
    assert not log.fenced.retriable and log.fenced.exit_code == 1
    with pytest.raises(QueryLogFenced):
        await log.record("ana", "national", "search", {}, 1)
    assert not made


async def test_a_producer_stopped_by_a_takeover_fences_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped for good because another console took the transactional id: fenced as such, no producer made."""
    first, made = _Producer(ProducerFenced()), []
    log = _log(first, made, monkeypatch)
    with pytest.raises(QueryLogFenced, match="another console took over"):
        await log.record("ana", "national", "search", {}, 0)
    assert not made and isinstance(broken_for_good(first), ProducerFenced)  # read: never logged at collection


async def test_a_write_that_failed_with_the_producer_still_sound_is_only_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that leaves the producer able to write (Kafka away for a moment) refuses that query alone."""
    class _Away(_Producer):
        async def send_and_wait(self, topic: str, value: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
            if not self.sent:
                self.sent.append(None)
                raise OSError("connection reset")
            self.sent.append(value)

    log = _log(_Away(None), [], monkeypatch)
    with pytest.raises(QueryLogError, match="check Kafka") as caught:
        await log.record("ana", "national", "search", {}, 0)
    assert not isinstance(caught.value, QueryLogFenced) and log.fenced is None
    await log.record("ana", "national", "search", {}, 1)


async def test_a_producer_that_can_still_write_is_not_broken() -> None:
    assert broken_for_good(_Producer(None)) is None
