"""Operator commands tell the truth on a real Kafka: what topics apply did, and when there is nothing to run on."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourcePatternType,
    ResourceType,
)
from puente_testing import Env, cli

from broker.kafka import Admin, KafkaConnection
from broker.keystore import provision_all
from puente.settings import PuenteSettings

pytestmark = pytest.mark.kafka


def _fresh(kafka_admin: KafkaConnection, tmp_path: Path, **overrides: object) -> dict[str, str]:
    """PUENTE_* variables for a deployment whose topics do not exist yet (keys made), as the admin."""
    prefix = f"op-{uuid.uuid4().hex[:8]}"
    cfg = PuenteSettings(bootstrap=kafka_admin.bootstrap, topic_prefix=prefix, keys=tmp_path / "keys")
    provision_all(cfg)
    out = {"PUENTE_BOOTSTRAP": kafka_admin.bootstrap, "PUENTE_CLIENT_CONFIG": kafka_admin.source,
           "PUENTE_TOPIC_PREFIX": prefix, "PUENTE_KEYS": str(tmp_path / "keys")}
    out.update({f"PUENTE_{k.upper()}": str(v) for k, v in overrides.items()})
    return out


def _run(variables: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(cli(*args), env={**os.environ, **variables}, capture_output=True, text=True, timeout=180,
                          check=False)


async def _topics(kafka_admin: KafkaConnection, prefix: str) -> dict[str, int]:
    admin = Admin(kafka_admin)
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=10))
    return {n: len(t.partitions) for n, t in metadata.topics.items() if n.startswith(prefix + ".")}


async def test_a_replication_larger_than_the_cluster_fails_and_claims_nothing(kafka_admin: KafkaConnection,
                                                                              tmp_path: Path) -> None:
    """`topics apply` with replication 3 on one node reports every topic failed, names why, exits 1, and no
    topic exists afterwards."""
    variables = _fresh(kafka_admin, tmp_path, replication=3)
    done = _run(variables, "topics", "apply")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "created" not in done.stdout and "failed" in done.stdout
    assert "replication" in done.stdout.lower()
    assert await _topics(kafka_admin, variables["PUENTE_TOPIC_PREFIX"]) == {}


async def test_a_second_apply_changes_only_what_puente_owns(kafka_admin: KafkaConnection, tmp_path: Path) -> None:
    """A setting an operator set by hand on a key Puente does not own survives a second apply; those Puente owns
    and that drifted (the retention, the largest batch every fetch takes whole) are set back and named; the rest
    reads unchanged."""
    variables = _fresh(kafka_admin, tmp_path)
    first = _run(variables, "topics", "apply")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count(" created ") >= 9
    topic = f"{variables['PUENTE_TOPIC_PREFIX']}.deadletter"
    admin = Admin(kafka_admin)
    change = [ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])]
    await admin.results("altering", await admin.call("altering", lambda c: c.incremental_alter_configs(change)))
    second = _run(variables, "topics", "apply")
    assert second.returncode == 0, second.stdout + second.stderr
    line = next(row for row in second.stdout.splitlines() if row.startswith(topic + " "))
    assert " updated " in line and "retention.ms=" in line and "max.message.bytes=1048588 (was 2000000)" in line
    assert all(" unchanged " in row for row in second.stdout.splitlines()[1:] if not row.startswith(topic + " "))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = await admin.results("describing", await admin.call("describing",
                                                                   lambda c: c.describe_configs([resource])))
    assert described[resource]["segment.ms"].value == "3600000"
    assert described[resource]["max.message.bytes"].value == "1048588"


async def test_apply_refuses_to_change_the_ingress_partitions(kafka_admin: KafkaConnection, tmp_path: Path) -> None:
    """Ingress partitions are slots: a later apply with another count refuses, explains, exits 1, and leaves
    every ingress topic as it was."""
    variables = _fresh(kafka_admin, tmp_path)
    assert _run(variables, "topics", "apply").returncode == 0
    done = _run({**variables, "PUENTE_INGRESS_PARTITIONS": "6"}, "topics", "apply")
    assert done.returncode == 1
    assert "refused" in done.stdout and "slot" in done.stdout
    topics = await _topics(kafka_admin, variables["PUENTE_TOPIC_PREFIX"])
    assert all(n == 3 for name, n in topics.items() if ".ingress." in name)


async def test_verify_fails_where_there_is_nothing_to_verify(kafka_admin: KafkaConnection, tmp_path: Path) -> None:
    """`audit verify` and `audit log` under a prefix with no audit topics fail (exit 3) naming the prefix, instead of
    reporting "no problems"; `broker run` there refuses to start instead of idling."""
    variables = _fresh(kafka_admin, tmp_path)
    for args in (("audit", "verify"), ("audit", "log")):
        done = _run(variables, *args)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "no audit topics under prefix" in done.stderr and "no problems" not in done.stdout
    broker = _run(variables, "broker", "run", "--exit-when-idle", "2")
    assert broker.returncode == 3 and "run `puente topics apply`" in broker.stderr


async def test_the_metrics_endpoint_of_a_running_broker_parses(env: Env, tmp_path: Path) -> None:
    """A running broker's /metrics parses with Prometheus' parser and /readyz says ready once it has joined."""
    import asyncio
    import os
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "broker.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(cli("broker", "run", "--metrics-port", str(port)),
                                env={**os.environ, **env.env_vars("broker")}, stdout=subprocess.DEVNULL, stderr=err)
    try:
        ready = False
        for _ in range(200):
            await asyncio.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    ready = answer.status == 200
            except OSError:
                continue
            if ready:
                break
        assert ready
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            names = {f.name for f in text_string_to_metric_families(answer.read().decode())}
        assert {"puente_decisions", "puente_build_info", "process_cpu_seconds"} <= names
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            tail = log.read_text(errors="replace").splitlines()[-15:]
            pytest.fail("the broker did not stop within 60s of SIGTERM; its last log lines:\n" + "\n".join(tail))
    assert proc.returncode == 0, log.read_text(errors="replace")[-2000:]


async def test_the_broker_will_not_start_on_a_lifecycle_topic_that_forgets_states_too_soon(env: Env) -> None:
    """The lifecycle topic must keep an alert's state as long as any agreement lets a partner keep the alert:
    shortened (retention.ms) or capped by size (retention.bytes), `broker run` refuses to start with one line
    naming the topic and `puente topics apply`, which restores it; then the broker starts."""
    admin = Admin(env.conn)
    topic = env.names.lifecycle

    async def setting(name: str, value: str) -> None:
        change = [ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])]
        await admin.results("altering", await admin.call("altering", lambda c: c.incremental_alter_configs(change)))

    def broker() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                              capture_output=True, text=True, timeout=180, check=False)

    await setting("retention.ms", str(86_400_000))
    short = broker()
    assert short.returncode == 3 and "Traceback" not in short.stderr, short.stderr
    assert f"{topic} keeps alert states for retention.ms=86400000" in short.stderr
    assert "run `puente topics apply`" in short.stderr and len(short.stderr.strip().splitlines()) == 1
    applied = subprocess.run(cli("topics", "apply"), env=env.env_vars(), capture_output=True, text=True,
                             timeout=180, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    await setting("retention.bytes", str(1 << 30))
    capped = broker()
    assert capped.returncode == 3 and f"{topic} keeps alert states by size (retention.bytes)" in capped.stderr
    assert subprocess.run(cli("topics", "apply"), env=env.env_vars(), capture_output=True, text=True, timeout=180,
                          check=False).returncode == 0
    # An ingress topic that keeps the producers' own times would let a writer replay a signed record with a
    # fresh stamp: refused the same way, and `topics apply` restores it.
    ingress = env.names.ingress(env.cfg.agencies[0])
    change = [ConfigResource(ConfigResource.Type.TOPIC, ingress, incremental_configs=[
        ConfigEntry("message.timestamp.type", "CreateTime", incremental_operation=AlterConfigOpType.SET)])]
    await admin.results("altering", await admin.call("altering", lambda c: c.incremental_alter_configs(change)))
    stamped = broker()
    assert stamped.returncode == 3 and "Traceback" not in stamped.stderr, stamped.stderr
    assert f"{ingress} keeps the producers' own times (message.timestamp.type=CreateTime)" in stamped.stderr
    assert len(stamped.stderr.strip().splitlines()) == 1
    assert subprocess.run(cli("topics", "apply"), env=env.env_vars(), capture_output=True, text=True, timeout=180,
                          check=False).returncode == 0
    started = broker()
    assert started.returncode == 0, started.stderr[-2000:]

    # A deployment whose ACLs predate the check: one line saying to apply them.
    grant = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:broker", "*",
                             AclOperation.DESCRIBE_CONFIGS, AclPermissionType.ALLOW)
    await admin.results("removing", await admin.call("removing", lambda c: c.delete_acls([grant])))
    refused = broker()
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    assert f"may not read {topic}'s settings" in refused.stderr and "`puente acls apply`" in refused.stderr
