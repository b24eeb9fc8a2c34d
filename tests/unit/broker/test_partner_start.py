"""A subscriber whose receipts producer cannot start leaves no Kafka client behind."""

from __future__ import annotations

from typing import ClassVar

import pytest
from aiokafka import errors as aiokafka_errors

from broker.kafka import KafkaConnection
from broker.partner import Subscriber
from puente.errors import KafkaError


class _Client:
    """A Kafka client that records whether it was ever stopped; ``fails`` makes its start fail as an
    unreachable Kafka does."""

    made: ClassVar[list[_Client]] = []

    def __init__(self, fails: bool) -> None:
        self.fails, self.stopped = fails, False
        _Client.made.append(self)

    async def start(self) -> None:
        if self.fails:
            raise aiokafka_errors.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    async def stop(self) -> None:
        self.stopped = True


async def test_a_feed_consumer_is_never_left_unclosed_when_the_receipts_producer_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With Kafka unreachable the receipts producer fails to start: the error is Puente's one line, and no feed
    consumer was made and left unclosed (aiokafka would log "Unclosed AIOKafkaConsumer" after that line)."""
    _Client.made = []
    monkeypatch.setattr("broker.partner.producer", lambda *args, **options: _Client(fails=True))
    monkeypatch.setattr("broker.partner.consumer", lambda *args, **options: _Client(fails=False))
    sub = Subscriber(KafkaConnection(bootstrap="127.0.0.1:1", timeout_s=1), "COL", "t.feed.COL", "t.receipts.COL",
                     object(), object(), signer=object(), on_note=lambda note: None)  # type: ignore[arg-type]
    with pytest.raises(KafkaError):
        await sub.run(idle_exit_s=0)
    assert _Client.made and all(client.stopped for client in _Client.made)
