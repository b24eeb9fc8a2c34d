"""A record an agency's publisher sends raw (``IngressPublisher.send_raw``, the demo's and the tests' hostile input)
that Kafka refuses is never lost unsaid: flushing, or leaving the publisher, raises its failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters import publisher as publisher_module
from adapters.publisher import IngressPublisher
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
    """Past ``_RAW_CHECK`` sends, one found failed raises at the next send; the ones that succeeded are let go."""
    async def run() -> None:
        pub = _publisher(monkeypatch, {b"bad"})
        await pub.send_raw(b"bad", b"v", [])
        for n in range(publisher_module._RAW_CHECK):
            await pub.send_raw(str(n).encode(), b"v", [])

    with pytest.raises(RuntimeError):
        asyncio.run(run())

    async def fine() -> int:
        pub = _publisher(monkeypatch, set())
        for n in range(publisher_module._RAW_CHECK * 2):
            await pub.send_raw(str(n).encode(), b"v", [])
        return len(pub._raw)

    assert asyncio.run(fine()) < publisher_module._RAW_CHECK
