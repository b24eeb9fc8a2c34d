"""Client quotas on the real secured Kafka: `acls apply` gives every party the plan's quotas as Kafka reads them back,
a quota set by hand on a party is drift `acls plan` reports and `acls apply` removes, and a party's own login may
neither read nor set quotas."""

from __future__ import annotations

import subprocess

import pytest
from puente_testing import Env, cli

from broker.access import BROKER, MiB, parties, quota_plan
from broker.kafka import set_user_quotas, user_quotas
from puente.errors import KafkaAccessError

pytestmark = pytest.mark.kafka


def _acls(env: Env, verb: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("acls", verb), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                          check=False)


async def test_acls_apply_gives_every_party_the_plans_quotas(env: Env) -> None:
    """With every party's quotas gone, `acls plan` lists each to set (exit 1); after `acls apply` Kafka reads back
    exactly the plan's for every party, none for the broker, and `acls plan` finds no change."""
    wanted = quota_plan(env.policy, env.cfg.agencies, logins=())
    held = await user_quotas(env.conn)
    assert await set_user_quotas(env.conn, {user: dict.fromkeys(held.get(user, {})) for user in
                                            parties(env.policy, env.cfg.agencies)}) == {}
    plan = _acls(env, "plan")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "+ quota User:partner-COL producer_byte_rate=1048576" in plan.stdout.splitlines()
    apply = _acls(env, "apply")
    assert apply.returncode == 0, apply.stdout + apply.stderr
    found = await user_quotas(env.conn)
    assert {user: found.get(user) for user in wanted} == wanted
    assert BROKER not in found
    assert found["partner-COL"] == {"producer_byte_rate": 1 * MiB, "consumer_byte_rate": 16 * MiB,
                                    "request_percentage": 50.0}
    after = _acls(env, "plan")
    assert after.returncode == 0 and "no change" in after.stdout, after.stdout + after.stderr


async def test_a_quota_set_by_hand_on_a_party_is_drift_that_apply_removes(env: Env) -> None:
    """A partner's produce rate raised by hand, a quota the plan does not name for it, and one on the broker: `acls
    plan` exits 1 naming each, `acls apply` makes them the plan's again."""
    assert await set_user_quotas(env.conn, {"partner-COL": {"producer_byte_rate": 100 * MiB,
                                                            "controller_mutation_rate": 50.0},
                                            BROKER: {"request_percentage": 10.0}}) == {}
    plan = _acls(env, "plan")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    lines = plan.stdout.splitlines()
    assert "+ quota User:partner-COL producer_byte_rate=1048576 (now 104857600)" in lines
    assert "- quota User:partner-COL controller_mutation_rate=50" in lines
    assert "- quota User:broker request_percentage=10" in lines
    assert lines[-1] == "0 to add, 0 to remove; client quotas: 1 to set, 2 to remove"
    apply = _acls(env, "apply")
    assert apply.returncode == 0, apply.stdout + apply.stderr
    found = await user_quotas(env.conn)
    assert found["partner-COL"] == quota_plan(env.policy, env.cfg.agencies, logins=())["partner-COL"]
    assert BROKER not in found
    after = _acls(env, "plan")
    assert after.returncode == 0 and "no change" in after.stdout, after.stdout + after.stderr


async def test_a_partner_may_neither_set_nor_read_quotas(env: Env) -> None:
    """A partner's own login asking AlterClientQuotas (to lift its own bound) or DescribeClientQuotas is refused:
    KafkaAccessError naming it, never its password; its quotas stay the plan's."""
    login = env.login("partner-COL")
    with pytest.raises(KafkaAccessError) as refused:
        await set_user_quotas(login, {"partner-COL": {"producer_byte_rate": 1e12, "request_percentage": None}})
    assert "User:partner-COL" in str(refused.value)
    assert login.password is not None and login.password.get_secret_value() not in str(refused.value)
    with pytest.raises(KafkaAccessError, match="User:partner-COL"):
        await user_quotas(login)
    found = await user_quotas(env.conn)
    assert found["partner-COL"] == quota_plan(env.policy, env.cfg.agencies, logins=())["partner-COL"]


async def test_a_quota_for_a_client_id_of_a_partys_login_is_drift_that_apply_removes(env: Env) -> None:
    """Kafka takes a user's quota for its default client id before the user's own: one set by hand on partner-COL's
    login would lift the plan's bounds. `acls plan` exits 1 naming it, and `acls apply` removes it."""
    key = "partner-COL/client-id=<default>"
    assert await set_user_quotas(env.conn, {key: {"request_percentage": 10_000.0}}) == {}
    assert (await user_quotas(env.conn))[key] == {"request_percentage": 10_000.0}
    plan = _acls(env, "plan")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert f"- quota User:{key} request_percentage=10000" in plan.stdout.splitlines()
    apply = _acls(env, "apply")
    assert apply.returncode == 0, apply.stdout + apply.stderr
    assert key not in await user_quotas(env.conn)
    assert _acls(env, "plan").returncode == 0
