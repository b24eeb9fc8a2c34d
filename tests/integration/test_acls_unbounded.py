"""`acls plan` and `acls apply` against the real Kafka, on a rule its Python client cannot name: a USER resource rule
(Kafka's own ``kafka-acls --user-principal``) that lets a login mint delegation tokens for a party."""

from __future__ import annotations

import subprocess

import pytest
from puente_testing import Env, cli

from puente.dev.localkafka import KAFKA_VERSION, fetch_kafka

pytestmark = pytest.mark.kafka

# Who may mint and see partner-COL's delegation tokens, in kafka-acls's words.
TOKENS_FOR_COL = ["--allow-principal", "User:evil", "--operation", "CreateTokens", "--operation", "DescribeTokens",
                  "--user-principal", "User:partner-COL"]


def _kafka_acls(env: Env, *args: str) -> None:
    """Run Kafka's own ACL tool as the admin (the Java client names the USER resource type)."""
    classpath = fetch_kafka(KAFKA_VERSION)
    done = subprocess.run(["java", "-Xmx256m", "-cp", f"{classpath}/*", "org.apache.kafka.tools.AclCommand",
                           "--bootstrap-server", env.conn.bootstrap, "--command-config", str(env.cfg.client_config),
                           *args], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_rule_minting_a_partys_tokens_is_drift_to_remove_by_hand(env: Env) -> None:
    """`acls plan` exits 1 and lists the token rule to remove, never as "not Puente's, left as it is"; `acls apply`
    exits 1 with a line saying to remove it with kafka-acls."""
    _kafka_acls(env, "--add", *TOKENS_FOR_COL)
    try:
        plan = subprocess.run(cli("acls", "plan"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                              check=False)
        assert plan.returncode == 1, plan.stdout + plan.stderr
        named = [line for line in plan.stdout.splitlines() if "User:evil" in line]
        assert named and all(line.startswith("- User:evil ") and "User:partner-COL" in line for line in named), named
        apply = subprocess.run(cli("acls", "apply"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                               check=False)
        assert apply.returncode == 1, apply.stdout + apply.stderr
        failed = [line for line in apply.stdout.splitlines() if line.startswith("FAILED remove User:evil ")]
        assert failed and all("kafka-acls" in line for line in failed), apply.stdout
    finally:
        _kafka_acls(env, "--remove", "--force", *TOKENS_FOR_COL)
