"""A subscriber whose receipts producer cannot start leaves no Kafka client behind, and says what to check."""

from __future__ import annotations

from typing import ClassVar

import pytest
from aiokafka import errors as aiokafka_errors

from broker.kafka import KafkaConnection
from broker.partner import Subscriber
from puente.errors import KafkaAccessError, KafkaError


class _Client:
    """A Kafka client that records whether it was ever stopped; ``fails`` makes its start fail as an
    unreachable Kafka does, or with the error given."""

    made: ClassVar[list[_Client]] = []

    def __init__(self, fails: bool | Exception) -> None:
        self.fails, self.stopped = fails, False
        _Client.made.append(self)

    async def start(self) -> None:
        if isinstance(self.fails, Exception):
            raise self.fails
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


@pytest.mark.parametrize(("refusal", "named"), [
    (aiokafka_errors.TransactionalIdAuthorizationFailed(), "`instances` in partners.yaml"),
    (aiokafka_errors.TopicAuthorizationFailedError(), "`puente acls plan`"),
])
async def test_a_refused_transactional_id_names_the_instances_partners_yaml_lists(
        monkeypatch: pytest.MonkeyPatch, refusal: Exception, named: str) -> None:
    """Kafka refusing the instance's transactional id (partners.yaml on this side names it, the cluster's ACLs do
    not) is one line naming the id and `instances` in partners.yaml; another refusal keeps its own line."""
    monkeypatch.setattr("broker.partner.producer", lambda *args, **options: _Client(fails=refusal))
    monkeypatch.setattr("broker.partner.consumer", lambda *args, **options: _Client(fails=False))
    sub = Subscriber(KafkaConnection(bootstrap="127.0.0.1:1", timeout_s=1), "COL", "t.feed.COL", "t.receipts.COL",
                     object(), object(), signer=object(), instance="site-b",  # type: ignore[arg-type]
                     on_note=lambda note: None)
    with pytest.raises(KafkaAccessError) as refused:
        await sub.run(idle_exit_s=0)
    message = str(refused.value)
    assert "\n" not in message and named in message, message
    if "instances" in named:
        assert "'site-b' (puente-subscriber:t.receipts.COL:COL/site-b)" in message and "acls apply" in message
