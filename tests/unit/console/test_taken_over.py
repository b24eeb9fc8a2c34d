"""One console per deployment: a second one whose port is taken stops before it reaches Kafka (and so fences no
one), and a console whose query log another has taken over stops, in one error, rather than answer 503 for good."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx2
import pytest
import uvicorn

from broker.audit.chain import ChainHead, ChainWriter
from broker.console_accounts import ConsoleAccounts
from broker.kafka import KafkaConnection, ProducerFenced
from broker.oversight import CHAIN, QueryLog, QueryLogError, QueryLogFenced, QueryLogUncertain
from broker.topology import TopicNames
from puente.console import ConsoleConfig
from puente.console.server import Listen, serve
from puente.errors import ConfigError, KafkaUnavailableError

from .conftest import BROWSER, FakeIndex, Sink, free_port


class _TakenLog:
    """A query log as ``serve`` uses it, which another console takes over when the test says (``take_over``): from
    then on every record is refused as fenced, as ``QueryLog.record`` refuses it."""

    def __init__(self, sink: Sink) -> None:
        self.sink, self.started, self.stopped = sink, False, False
        self.fenced: QueryLogFenced | None = None
        self._taken = asyncio.Event()

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def take_over(self) -> None:
        self.fenced = QueryLogFenced("another console took over the auditors' query log under the same "
                                     "transactional id (t.console): this one stops")

    async def record(self, auditor: str, scope: str, page: str, params: Mapping[str, Any], results: int) -> None:
        if self.fenced is not None:
            self._taken.set()
            raise QueryLogFenced(str(self.fenced))
        await self.sink.record(auditor, scope, page, params, results)

    async def taken_over(self) -> QueryLogFenced:
        await self._taken.wait()
        assert self.fenced is not None
        return self.fenced


@contextlib.contextmanager
def _held_port() -> Iterator[int]:
    """A loopback port another program listens on, until the block ends."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@contextlib.asynccontextmanager
async def _serving(accounts: ConsoleAccounts, log: _TakenLog, port: int) -> AsyncIterator[asyncio.Task[None]]:
    servers: list[uvicorn.Server] = []
    config = ConsoleConfig(lambda: FakeIndex(), accounts, log)
    task = asyncio.create_task(serve(Listen("127.0.0.1", port), config, log, started=servers.append))  # type: ignore[arg-type]
    try:
        while not (servers and servers[0].started):
            assert not task.done(), task
            await asyncio.sleep(0.05)
        yield task
    finally:
        if servers:
            servers[0].should_exit = True
        with contextlib.suppress(QueryLogFenced):
            await asyncio.wait_for(task, 10)


async def test_a_console_whose_port_is_taken_stops_before_its_query_log_starts(accounts: ConsoleAccounts,
                                                                              sink: Sink) -> None:
    """A second console on a port another listens on is refused in one ConfigError naming the address, before its
    query log starts: starting it would fence the console that holds the port."""
    log = _TakenLog(sink)
    with _held_port() as port:
        config = ConsoleConfig(lambda: FakeIndex(), accounts, log)
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: the address is in use"):
            await serve(Listen("127.0.0.1", port), config, log)  # type: ignore[arg-type]
    assert not log.started


async def test_a_console_whose_query_log_is_taken_over_stops_with_one_error(accounts: ConsoleAccounts,
                                                                           sink: Sink) -> None:
    """Once another console takes the query log over, the next page is answered 503 (it cannot be recorded) and the
    console stops: ``serve`` raises QueryLogFenced naming what happened, and the port takes no one after."""
    log, port = _TakenLog(sink), free_port()
    async with _serving(accounts, log, port) as task, \
            httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=BROWSER) as web:
        assert (await web.get("/login")).status_code == 200
        log.take_over()
        form = await web.get("/login")
        token = form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
        refused = await web.post("/login", data={"name": "ana", "password": "wrong password, long enough",
                                                 "form_token": token})
        assert refused.status_code == 503
        with pytest.raises(QueryLogFenced, match="another console took over the auditors' query log"):
            await asyncio.wait_for(task, 10)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert log.stopped


class _FencedProducer:
    """A transactional producer another with the same transactional id has fenced: its commit is refused, and it
    counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.asked += 1
        yield
        raise ProducerFenced()

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> None:
        pass


async def test_a_commit_refused_as_fenced_fences_the_query_log_for_good() -> None:
    """QueryLog.record, its commit refused as fenced: QueryLogFenced naming the takeover and the transactional id,
    ``taken_over`` woken; every record after is refused at once, without asking Kafka again."""
    log = QueryLog(KafkaConnection(bootstrap="unused:9092"), TopicNames("t"))
    producer = _FencedProducer()
    log._producer, log._chain = producer, ChainWriter("t.audit.queries", 0, ChainHead(), chain=CHAIN)  # type: ignore[assignment]
    waiting = asyncio.create_task(log.taken_over())
    with pytest.raises(QueryLogFenced, match=r"another console took over .* same transactional id \(t\."):
        await log.record("ana", "national", "search", {}, 0)
    assert (await asyncio.wait_for(waiting, 1)) is log.fenced
    with pytest.raises(QueryLogFenced):
        await log.record("ana", "national", "search", {}, 0)
    assert producer.asked == 1
    assert isinstance(log.fenced, QueryLogError) and not log.fenced.retriable and log.fenced.exit_code == 1


class _FailingProducer:
    """A transactional producer whose send (``at="send"``) or commit (``at="commit"``) fails as Kafka unreachable."""

    def __init__(self, at: str) -> None:
        self.at = at

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        if self.at == "commit":
            raise KafkaUnavailableError("Kafka at x could not be reached")

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> None:
        if self.at == "send":
            raise KafkaUnavailableError("Kafka at x could not be reached")


@pytest.mark.parametrize(("at", "uncertain"), [("send", False), ("commit", True)])
async def test_a_record_whose_commit_failed_may_be_written(at: str, uncertain: bool) -> None:
    """A record whose send failed is certainly not in the audit (its transaction aborts): QueryLogError; one whose
    commit was sent and failed may be: QueryLogUncertain, so that what a refusal counted stays counted."""
    log = QueryLog(KafkaConnection(bootstrap="unused:9092"), TopicNames("t"))
    log._producer, log._chain = _FailingProducer(at), ChainWriter("t.audit.queries", 0, ChainHead(), chain=CHAIN)  # type: ignore[assignment]
    with pytest.raises(QueryLogError, match="check Kafka") as caught:
        await log.record("ana", "national", "sign-in refused", {}, 0)
    assert isinstance(caught.value, QueryLogUncertain) is uncertain
