"""A record an agency's publisher sends raw (``IngressPublisher.send_raw``, the demo's and the tests' hostile input)
that Kafka refuses is never lost unsaid: flushing, or leaving the publisher, raises its failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters import publisher as publisher_module
from adapters import run as run_module
from adapters.publisher import IngressPublisher
from adapters.run import AdapterRun
from broker.crypto import SecretBytes
from broker.kafka import KafkaConnection


class _Producer:
    """Stands in for the Kafka producer: each send's future fails when ``refuse`` names its key."""

    def __init__(self, refuse: set[bytes]) -> None:
        self.refuse, self.sent = refuse, []

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if key in self.refuse:
            fut.set_exception(RuntimeError("TopicAuthorizationFailed"))
        else:
            fut.set_result(None)
            self.sent.append(key)
        return fut

    async def flush(self) -> None:
        pass


def _publisher(monkeypatch: pytest.MonkeyPatch, refuse: set[bytes]) -> IngressPublisher:
    async def nothing(*_: Any) -> None:
        return None

    monkeypatch.setattr(publisher_module, "start", nothing)
    monkeypatch.setattr(publisher_module, "stop_client", nothing)
    pub = IngressPublisher(KafkaConnection(bootstrap="127.0.0.1:9"), "SENAN", "SENAN-mac-2026a",
                           SecretBytes(b"k" * 32, key_id="SENAN-mac-2026a"))
    pub._producer = _Producer(refuse)  # type: ignore[assignment]
    return pub


def test_a_raw_send_kafka_refused_raises_when_the_publisher_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        async with _publisher(monkeypatch, {b"bad"}) as pub:
            await pub.send_raw(b"good", b"v", [])
            await pub.send_raw(b"bad", b"v", [])

    with pytest.raises(RuntimeError, match="TopicAuthorizationFailed"):
        asyncio.run(run())


def test_the_publisher_left_by_a_failure_stops_without_waiting_or_raising_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Left with an exception in flight (as ``AdapterRun`` and the bench pass it on), the publisher raises nothing of
    its own over it, and still stops its producer; left with no arguments, it is left normally."""
    stopped: list[bool] = []

    async def stop(*_: Any) -> None:
        stopped.append(True)

    async def run() -> None:
        pub = _publisher(monkeypatch, {b"bad"})
        monkeypatch.setattr(publisher_module, "stop_client", stop)
        await pub.send_raw(b"bad", b"v", [])
        await pub.__aexit__(ValueError, ValueError("in flight"), None)
        other = _publisher(monkeypatch, {b"bad"})
        monkeypatch.setattr(publisher_module, "stop_client", stop)
        await other.send_raw(b"bad", b"v", [])
        with pytest.raises(RuntimeError):
            await other.__aexit__()

    asyncio.run(run())
    assert stopped == [True, True]


def test_several_refused_sends_are_told_as_one_failure_and_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> BaseException:
        pub = _publisher(monkeypatch, {b"bad1", b"bad2", b"bad3"})
        for key in (b"bad1", b"good", b"bad2", b"bad3"):
            await pub.send_raw(key, b"v", [])
        with pytest.raises(RuntimeError) as info:
            await pub.flush()
        return info.value

    failure = asyncio.run(run())
    assert failure.__notes__ == ["2 other record(s) sent raw failed too"]


def test_flush_raises_a_refused_raw_send_and_then_starts_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> list[bytes]:
        pub = _publisher(monkeypatch, {b"bad"})
        await pub.send_raw(b"bad", b"v", [])
        with pytest.raises(RuntimeError):
            await pub.flush()
        await pub.send_raw(b"good", b"v", [])
        await pub.flush()
        return pub._producer.sent  # type: ignore[attr-defined, no-any-return]

    assert asyncio.run(run()) == [b"good"]


def test_many_raw_sends_are_checked_as_they_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_RAW_CHECK`` sends, one found failed raises at the next send, once (a caller that goes on is not told
    again, nor at ``flush``); the ones that succeeded are let go."""
    async def run() -> int:
        pub = _publisher(monkeypatch, {b"bad"})
        await pub.send_raw(b"bad", b"v", [])
        raised = 0
        for n in range(publisher_module._RAW_CHECK * 3):
            try:
                await pub.send_raw(str(n).encode(), b"v", [])
            except RuntimeError:
                raised += 1
        await pub.flush()
        return raised

    assert asyncio.run(run()) == 1

    async def fine() -> int:
        pub = _publisher(monkeypatch, set())
        for n in range(publisher_module._RAW_CHECK * 2):
            await pub.send_raw(str(n).encode(), b"v", [])
        return len(pub._raw)

    assert asyncio.run(fine()) < publisher_module._RAW_CHECK


def test_an_adapter_run_leaves_its_publisher_as_it_is_left_and_always_stops_its_dead_letters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``AdapterRun`` hands how it is left on to its publisher: left normally (with no arguments too), nothing is
    raised for a publisher whose sends all went; a raw send that failed is raised, and the dead-letter producer is
    stopped all the same."""
    stopped: list[Any] = []

    async def stop(client: Any) -> None:
        stopped.append(client)

    monkeypatch.setattr(run_module, "stop_client", stop)

    def adapter_run(refuse: set[bytes]) -> AdapterRun:
        run = AdapterRun.__new__(AdapterRun)  # no configuration, adapter or Kafka: only what leaving it touches
        run._publisher, run._dlq = _publisher(monkeypatch, refuse), "dlq"
        return run

    async def leave() -> None:
        await adapter_run(set()).__aexit__()
        await adapter_run(set()).__aexit__(None, None, None)
        failing = adapter_run({b"bad"})
        await failing._publisher.send_raw(b"bad", b"v", [])
        with pytest.raises(RuntimeError):
            await failing.__aexit__(None, None, None)

    asyncio.run(leave())
    assert stopped == ["dlq", "dlq", "dlq"]
