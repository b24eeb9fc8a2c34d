"""A static worker's check of who holds its group.instance.id before it starts again after a Kafka error.

The other consumer's slot producers fence this worker's, so a fenced transaction may be the first it hears
of another consumer under its name; joining again would take the name back. The real-Kafka test (the
second worker under a running one's name) covers the revocation path; this covers the restart path, with
Kafka's answer to "who holds the name" given by the test.
"""

from __future__ import annotations

from typing import Any

import pytest
from worker_fakes import Pipeline

from broker import worker as worker_module
from broker.kafka import KafkaConnection
from broker.topology import Slots, TopicNames
from broker.worker import BrokerWorker, WorkerConfig
from puente.errors import ConfigError, KafkaOperationError, KafkaUnavailableError

CONN = KafkaConnection(bootstrap="unused:9092")


def _worker(monkeypatch: pytest.MonkeyPatch, holder: tuple[str, str] | Exception | None,
            failure: Exception, name: str | None = "worker-a") -> tuple[BrokerWorker, list[int]]:
    config = WorkerConfig(CONN, "g", Slots(("SENAN",), 1, TopicNames("t")), group_instance_id=name)
    worker = BrokerWorker(config, Pipeline(), lambda p: b"sig")  # type: ignore[arg-type]
    worker._members.add("worker-a-1")  # it has been a member, under this member id
    runs: list[int] = []

    async def run_once(topics: list[str], idle: float | None) -> None:
        runs.append(1)
        raise failure

    async def who(conn: Any, group: str, instance: str) -> tuple[str, str] | None:
        assert (group, instance) == ("g", "worker-a")
        if isinstance(holder, Exception):
            raise holder
        return holder

    monkeypatch.setattr(worker, "_run_once", run_once)
    monkeypatch.setattr(worker_module, "instance_holder", who)
    monkeypatch.setattr(worker_module.asyncio, "sleep", _no_sleep)
    return worker, runs


async def _no_sleep(seconds: float) -> None:
    return None


async def test_a_fenced_static_worker_whose_name_another_holds_stops_instead_of_joining_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    worker, runs = _worker(monkeypatch, ("worker-a-2", "puente-broker-0 on 10.0.0.7"),
                           KafkaUnavailableError("producer fenced"))  # retriable: it would start again
    with pytest.raises(ConfigError, match=r"puente-broker-0 on 10\.0\.0\.7.*took this worker.s place"):
        await worker.run(["t.ingress.SENAN"], max_restarts=3)
    assert runs == [1]  # no second join


async def test_an_unknown_error_from_a_taken_name_is_named_for_what_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's FENCED_INSTANCE_ID reaches aiokafka as an unknown error, which is not retried."""
    worker, _ = _worker(monkeypatch, ("worker-a-2", "other on host"), KafkaOperationError("UnknownError()"))
    with pytest.raises(ConfigError, match=r"group\.instance\.id worker-a"):
        await worker.run(["t.ingress.SENAN"])


@pytest.mark.parametrize("holder", [None, ("worker-a-1", "this process"), KafkaUnavailableError("no answer")])
async def test_a_static_worker_starts_again_when_the_name_is_its_own_free_or_unknown(
        monkeypatch: pytest.MonkeyPatch, holder: Any) -> None:
    """Its own previous membership, nobody, or Kafka not answering: the error is retried as before."""
    worker, runs = _worker(monkeypatch, holder, KafkaUnavailableError("producer fenced"))
    with pytest.raises(KafkaUnavailableError):
        await worker.run(["t.ingress.SENAN"], max_restarts=2)
    assert runs == [1, 1, 1]


async def test_a_dynamic_member_is_never_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    worker, runs = _worker(monkeypatch, ("worker-a-2", "other"), KafkaUnavailableError("x"), name=None)
    with pytest.raises(KafkaUnavailableError):
        await worker.run(["t.ingress.SENAN"], max_restarts=1)
    assert runs == [1, 1]
