"""The demo's trespass step, on the real secured Kafka: it claims Kafka refused a partner another's feed only
when the feed's own ACL refused it."""

from __future__ import annotations

import pytest
from puente_testing import Env

from broker.access import Acl, partner_principal
from broker.kafka import Admin
from broker.kafka.acls import AclChanges, apply_acls
from puente.dev import demo
from puente.errors import ConfigError

pytestmark = pytest.mark.kafka


async def test_the_trespass_is_refused_by_the_feeds_acl(env: Env) -> None:
    """With the plan's ACLs, COL asking for USA's feed in its own group is refused the topic, and the demo says so."""
    line = await demo._trespass(env.cfg, env.policy)
    assert "TopicAuthorizationFailedError" in line and partner_principal("COL") in line, line


async def test_a_trespass_the_acls_let_through_fails_the_demo(env: Env) -> None:
    """With an ACL granting COL READ on USA's feed, the trespass is not called refused: it is a ConfigError in one
    line saying COL read the feed."""
    feed = env.feed("USA")
    granted = tuple(Acl(partner_principal("COL"), "TOPIC", feed, "LITERAL", op) for op in ("READ", "DESCRIBE"))
    assert await apply_acls(Admin(env.conn), AclChanges(granted, ())) == []
    try:
        with pytest.raises(ConfigError) as failed:
            await demo._trespass(env.cfg, env.policy)
    finally:
        assert await apply_acls(Admin(env.conn), AclChanges((), granted)) == []
    assert f"read {feed}" in str(failed.value) and "\n" not in str(failed.value), failed.value
