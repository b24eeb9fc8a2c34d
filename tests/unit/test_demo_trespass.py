"""The demo claims Kafka refused a partner another's feed only on the evidence of that refusal: Kafka refusing the
topic itself, and a collected denial of that login on that topic."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from puente.dev import demo
from puente.errors import ConfigError, KafkaAccessError, KafkaError, KafkaUnavailableError

FEED = "demo-x.feed.USA"
POLICY = SimpleNamespace(partners={"USA": SimpleNamespace(feed_topic="puente.feed.USA"),
                                 "COL": SimpleNamespace(feed_topic="puente.feed.COL")})
CFG = SimpleNamespace(login_root=Path("logins"), topic_prefix="demo-x")


def _access(resource: str) -> KafkaAccessError:
    refused = KafkaAccessError(f"Kafka refused partner-COL access ({resource})")
    refused.resource = resource
    return refused


def _kafka(monkeypatch: pytest.MonkeyPatch, raised: KafkaError | None,
           fetched: dict[Any, Any] | None = None) -> list[dict[str, Any]]:
    """Stand in for the Kafka seam: reading raises ``raised`` (or returns ``fetched``, by default nothing); the
    consumers asked for."""
    asked: list[dict[str, Any]] = []

    def consumer(conn: Any, client_id: str, *topics: str, **kw: Any) -> Any:
        asked.append({"topics": topics, **kw})
        return SimpleNamespace()

    @contextlib.asynccontextmanager
    async def running(client: Any, conn: Any, what: str) -> AsyncIterator[Any]:
        async def getmany(timeout_ms: int) -> dict[Any, Any]:
            if raised is not None:
                raise raised
            return fetched or {}
        yield SimpleNamespace(getmany=getmany)

    monkeypatch.setattr(demo, "party_connection", lambda root, who, **_: SimpleNamespace(principal=who))
    monkeypatch.setattr(demo, "consumer", consumer)
    monkeypatch.setattr(demo, "running", running)
    return asked


async def test_a_topic_refusal_is_the_refusal_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka refusing the topic is the line the demo shows, asked in COL's own subscriber group, for USA's feed."""
    asked = _kafka(monkeypatch, _access("TOPIC"))
    line = await demo._trespass(CFG, POLICY)  # type: ignore[arg-type]
    assert "(TOPIC)" in line
    assert asked == [{"topics": (FEED,), "group_id": "demo-x.feed.COL.subscriber", "enable_auto_commit": False}]


@pytest.mark.parametrize("raised", [_access("GROUP"), KafkaUnavailableError("Kafka could not be reached"),
                                    KafkaError("something else")], ids=["group", "unavailable", "other"])
async def test_any_other_failure_is_no_refusal(monkeypatch: pytest.MonkeyPatch, raised: KafkaError) -> None:
    """A refused group, an unreachable Kafka or another error fails the demo in one line: none shows the feed's
    ACL refusing the read."""
    _kafka(monkeypatch, raised)
    with pytest.raises(ConfigError) as failed:
        await demo._trespass(CFG, POLICY)  # type: ignore[arg-type]
    assert "was not refused by the topic's ACL" in str(failed.value) and "\n" not in str(failed.value)


async def test_a_read_let_through_fails_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read Kafka let through (records fetched from USA's feed) fails the demo, saying COL read it."""
    _kafka(monkeypatch, None, {("demo-x.feed.USA", 0): [SimpleNamespace(value=b"alert")]})
    with pytest.raises(ConfigError, match=f"partner-COL read {FEED}"):
        await demo._trespass(CFG, POLICY)  # type: ignore[arg-type]


async def test_no_answer_within_the_wait_fails_the_demo_without_claiming_a_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing fetched and nothing refused within the wait fails the demo in one line saying COL was not refused
    within it, never that COL read the feed: no record was seen."""
    _kafka(monkeypatch, None)
    with pytest.raises(ConfigError) as failed:
        await demo._trespass(CFG, POLICY)  # type: ignore[arg-type]
    said = str(failed.value)
    assert f"partner-COL asking for {FEED} in its own group demo-x.feed.COL.subscriber was not refused within 3 s" \
        in said and "\n" not in said, said
    assert " read " not in said, said


def _denial(**changes: Any) -> dict[str, Any]:
    return {"kind": "DENIAL", "at": "2026-12-08T00:10:29.066Z", "principal": "User:partner-COL",
            "operation": "DESCRIBE", "resource": f"Topic:{FEED}", "pattern": "LITERAL", "host": "127.0.0.1",
            "request": "Metadata", "line_sha256": "0" * 64, **changes}


def test_only_a_denial_of_that_login_on_that_feed_counts() -> None:
    """READ or DESCRIBE by partner-COL on USA's feed topic counts; a group's denial, another login's, another
    topic's, another operation's, or an unparsed line does not."""
    counted = [_denial(), _denial(operation="READ")]
    others = [_denial(resource="Group:demo-x.feed.USA.subscriber", operation="READ"),
              _denial(principal="User:partner-CRI"), _denial(principal="User:partner-COLX"),
              _denial(resource=f"Topic:{FEED}x"), _denial(resource="Topic:demo-x.feed.COL"),
              _denial(operation="WRITE"),
              _denial(resource="?", operation="?", unparsed=True)]
    assert demo.trespass_denials([*others, *counted], "partner-COL", FEED) == counted
    assert demo.trespass_denials(others, "partner-COL", FEED) == []
