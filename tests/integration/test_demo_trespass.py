"""The demo's trespass step, on the real secured Kafka: it claims Kafka refused a partner another's feed only
when the feed's own ACL refused it."""

from __future__ import annotations

import asyncio

import pytest
from puente_testing import Env

from broker.access import Acl, partner_principal
from broker.kafka import Admin
from broker.kafka.acls import AclChanges, apply_acls
from puente.dev import demo
from puente.errors import ConfigError

pytestmark = pytest.mark.kafka

POLLS = 120  # about 30 s at POLL_S: far beyond the lag a loaded CI machine shows, short of hanging the run
POLL_S = 0.25


async def _describable(env: Env, principal: str, topic: str) -> bool:
    """Whether ``principal``'s own login may describe ``topic`` now: Kafka's metadata answer names it without an
    authorization error."""
    metadata = await Admin(env.login(principal)).call(
        f"describing {topic}", lambda client: client.list_topics(topic=topic, timeout=10))
    found = metadata.topics.get(topic)
    return found is not None and found.error is None


async def _await_describable(env: Env, principal: str, topic: str) -> None:
    """Wait, a bounded number of polls, until ``principal`` may describe ``topic``: KRaft applies ACLs a moment
    after CreateAcls answers, so a grant just made may not be in force yet."""
    for _ in range(POLLS):
        if await _describable(env, principal, topic):
            return
        await asyncio.sleep(POLL_S)
    pytest.fail(f"{principal} was still refused {topic} after {POLLS} polls of the grant")


async def test_the_trespass_is_refused_by_the_feeds_acl(env: Env) -> None:
    """With the plan's ACLs, COL asking for USA's feed in its own group is refused the topic, and the demo says so."""
    line = await demo._trespass(env.cfg, env.policy)
    assert "TopicAuthorizationFailedError" in line and partner_principal("COL") in line, line


async def test_a_trespass_the_acls_let_through_fails_the_demo(env: Env) -> None:
    """With an ACL granting COL READ on USA's feed, the trespass is not called refused: it is a ConfigError in one
    line naming the feed (the feed holds no record, so COL was not refused within the wait, and read nothing)."""
    feed = env.feed("USA")
    granted = tuple(Acl(partner_principal("COL"), "TOPIC", feed, "LITERAL", op) for op in ("READ", "DESCRIBE"))
    assert await apply_acls(Admin(env.conn), AclChanges(granted, ())) == []
    try:
        await _await_describable(env, partner_principal("COL"), feed)
        with pytest.raises(ConfigError) as failed:
            await demo._trespass(env.cfg, env.policy)
    finally:
        assert await apply_acls(Admin(env.conn), AclChanges((), granted)) == []
    assert f"asking for {feed} in its own group" in str(failed.value), failed.value
    assert "was not refused within" in str(failed.value) and "\n" not in str(failed.value), failed.value
