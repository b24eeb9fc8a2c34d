"""`audit verify` after the audit topics are wiped and the groups deleted: the ingress and feed logs still say
records were taken and sent, so the verdict is never "no problems"."""

from __future__ import annotations

import asyncio
import io
import subprocess

from puente_testing import Env, cli, delivered_most

from broker.access import subscriber_group
from broker.kafka.admin import Admin
from broker.kafka.topics import apply_topics, plan_topics
from broker.partner import Subscriber, opener_for, receipt_signer
from schemas import alert_codec


async def _wipe(env: Env, partner: str) -> None:
    """What an operator with the admin login can do: delete the decisions and receipts topics, make them anew
    empty (`topics apply`), and delete the broker's and the partner's subscriber groups."""
    admin = Admin(env.conn)
    victims = [env.names.decisions, env.names.receipts(partner)]
    await admin.results("deleting", await admin.call("deleting", lambda c: c.delete_topics(victims)))
    for _ in range(60):  # a deleted topic's name is free once its deletion completes
        results = await apply_topics(admin, plan_topics(env.cfg, env.policy))
        if all(r.ok for r in results):
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError([r.detail for r in results if not r.ok])
    groups = [env.cfg.broker_group, subscriber_group(env.feed(partner))]
    for future in (await admin.call("deleting groups", lambda c: c.delete_consumer_groups(groups))).values():
        future.result()


def _verify(env: Env) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                          check=False)


async def test_verify_is_not_clean_after_audit_topics_and_groups_are_wiped(env: Env) -> None:
    """Wiping the decisions and receipts topics and deleting the groups leaves the ingress and feed logs holding
    offsets no chain accounts for: verify says which, not checked (exit 5), where it said "no problems"."""
    partner, _, _ = await delivered_most(env, 6, seed=3)
    subscriber = Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner),
                            opener_for(partner, env.key_file(partner), None), alert_codec(),
                            signer=receipt_signer(partner, env.key_file(partner), None))
    await subscriber.run(io.StringIO(), idle_exit_s=2)
    clean = _verify(env)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    await _wipe(env, partner)
    wiped = _verify(env)
    assert wiped.returncode == 5, wiped.stdout + wiped.stderr
    assert "no sound decision chain names any of them and the broker group has committed no offset" in wiped.stdout
    assert f"{env.feed(partner)}:" in wiped.stdout
    assert "no sound decision block records any delivery to this feed" in wiped.stdout
