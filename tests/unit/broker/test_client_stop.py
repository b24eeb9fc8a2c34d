"""Stopping a Kafka client while Kafka is out of reach: the error on its way up, or a clean stop, stays what it was.

aiokafka's consumer stop (``Fetcher.close``) cancels its fetch tasks and awaits each; one sleeping in its retry
backoff re-raises that CancelledError into the task stopping it. A BaseException, it went past every ``except
Exception``, replaced the worker's retriable Kafka error, skipped its restart, and the broker stopped with a
traceback and exit 1 (on SIGTERM and --exit-when-idle too). ``FetchingConsumer`` does what aiokafka's consumer
does there; the integration tests run the worker on the real Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from worker_fakes import Pipeline

from broker import worker as worker_module
from broker.kafka import KafkaConnection, running, stop_client
from broker.topology import Slots, TopicNames
from broker.worker import BrokerWorker, WorkerConfig
from puente.errors import KafkaUnavailableError

CONN = KafkaConnection(bootstrap="unused:9092")


class _Inner:
    """aiokafka's client under a consumer: its connections and metadata task."""

    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class _Fetcher:
    def __init__(self) -> None:
        self._pending_tasks: set[asyncio.Task[None]] = set()


class FetchingConsumer:
    """aiokafka's consumer as far as stopping it goes, with Kafka out of reach: its fetch tasks sleep in their
    retry backoff after a failed request, and ``stop()`` marks it closed, then cancels each and awaits it (as
    ``Fetcher.close`` does: the first re-raises its CancelledError, and the client is never closed)."""

    def __init__(self, fetches: int = 2) -> None:
        self._fetcher = _Fetcher()
        self._client = _Inner()
        self.fetches = fetches
        self.subscribed: list[str] = []

    async def start(self) -> None:
        for _ in range(self.fetches):
            self._fetcher._pending_tasks.add(asyncio.create_task(self._fetch()))
        await asyncio.sleep(0)  # each fetch reaches its backoff

    @staticmethod
    async def _fetch() -> None:
        try:
            raise KafkaConnectionError("no node answered")
        except KafkaConnectionError:
            await asyncio.sleep(3600)  # aiokafka's retry backoff, outside its own CancelledError clause

    async def stop(self) -> None:
        for task in list(self._fetcher._pending_tasks):
            task.cancel()
            await task
        await self._client.close()

    # ---- what the worker's main loop asks of its group consumer --------------------------------
    async def topics(self) -> set[str]:
        return set()

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.subscribed = topics

    async def getmany(self, **kwargs: Any) -> dict[Any, Any]:
        raise KafkaConnectionError("no node answered")

    def assignment(self) -> set[Any]:
        return set()


def test_a_stray_cancellation_from_stopping_a_consumer_is_absorbed_and_its_stop_finished() -> None:
    """A fetch task's CancelledError does not come out of ``stop_client``; the other fetch tasks are cancelled
    and the consumer's client closed, as aiokafka's stop would have done had it gone on."""
    async def go() -> FetchingConsumer:
        made = FetchingConsumer(fetches=3)
        await made.start()
        await stop_client(made)  # type: ignore[arg-type]
        return made

    made = asyncio.run(go())
    assert all(task.done() for task in made._fetcher._pending_tasks)
    assert made._client.closed


def test_a_real_cancellation_of_the_task_stopping_a_client_still_goes_on_up() -> None:
    """The task stopping a client that hangs is cancelled for real (here by a bound, ``asyncio.timeout``):
    that cancellation is not absorbed, and the bound ends the wait as it should."""
    class Hanging:
        async def stop(self) -> None:
            await asyncio.Event().wait()

    async def go() -> None:
        async with asyncio.timeout(0.05):
            await stop_client(Hanging())  # type: ignore[arg-type]

    with pytest.raises(TimeoutError):
        asyncio.run(go())


def test_the_kafka_error_raised_in_a_running_block_is_what_comes_out() -> None:
    """A Kafka error raised while ``running`` holds a consumer comes out as Puente's error, not as the
    CancelledError its stop met."""
    async def go() -> None:
        async with running(FetchingConsumer(), CONN, "reading the audit"):  # type: ignore[type-var]
            raise KafkaConnectionError("no node answered")

    with pytest.raises(KafkaUnavailableError, match="reading the audit"):
        asyncio.run(go())


def test_a_worker_restarts_after_a_kafka_error_when_stopping_its_consumer_meets_a_stray_cancellation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka out of reach: each run's fetch fails (retriable), and stopping the group consumer meets a fetch
    task's CancelledError. The worker starts again as often as allowed, then raises the Kafka error, one line
    naming what to check; before, the CancelledError came out of the first run, with no restart."""
    made: list[FetchingConsumer] = []

    def group(*args: Any, **kwargs: Any) -> FetchingConsumer:
        made.append(FetchingConsumer())
        return made[-1]

    async def start(client: FetchingConsumer, conn: KafkaConnection, what: str) -> FetchingConsumer:
        await client.start()
        return client

    monkeypatch.setattr(worker_module, "consumer", group)
    monkeypatch.setattr(worker_module, "start", start)
    config = WorkerConfig(CONN, "g", Slots(("SENAN",), 1, TopicNames("t")))
    worker = BrokerWorker(config, Pipeline(), lambda p: b"sig")  # type: ignore[arg-type]

    with pytest.raises(KafkaUnavailableError, match="Kafka is running"):
        asyncio.run(worker.run(["t.ingress.SENAN"], max_restarts=1))
    assert len(made) == 2  # the first run, and one restart
    assert all(consumer._client.closed for consumer in made)
