"""Which audit topics a verification walks: found in the cluster's metadata, and never receipts without the
decisions they are checked against."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import broker.auditor as auditor
from broker.kafka import KafkaConnection
from puente.errors import ConfigError


def _present(monkeypatch: pytest.MonkeyPatch, topics: set[str]) -> None:
    class Consumer:
        async def topics(self) -> set[str]:
            return topics

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        yield Consumer()

    monkeypatch.setattr(auditor, "reader", lambda conn, name: None)
    monkeypatch.setattr(auditor, "running", running)


def test_receipts_without_the_decisions_topic_are_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A login that cannot see the decisions topic (its ACL, a wrong prefix) would leave every receipt unchecked:
    a configuration error naming the topic, not a verification with no problems."""
    _present(monkeypatch, {"p.receipts.COL", "p.feed.COL", "p.audit.denials"})
    with pytest.raises(ConfigError) as caught:
        asyncio.run(auditor.audit_topics(KafkaConnection(bootstrap="k:9093"), "p"))
    message = str(caught.value)
    assert "p.audit.decisions" in message and "`puente acls plan`" in message and "\n" not in message


def test_the_audit_topics_are_walked_decisions_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decisions first, the receipts topics present, then the planned denials and queries (present or not:
    one missing is the walk's finding); another prefix's topics are not among them."""
    _present(monkeypatch, {"p.receipts.COL", "p.audit.decisions", "p.feed.COL", "other.audit.decisions"})
    found = asyncio.run(auditor.audit_topics(KafkaConnection(bootstrap="k:9093"), "p"))
    assert list(found.roles.items()) == [("p.audit.decisions", "decisions"), ("p.receipts.COL", "receipts"),
                                         ("p.audit.denials", "denials"), ("p.audit.queries", "queries")]
    assert found.owners == {"p.receipts.COL": "COL"}
