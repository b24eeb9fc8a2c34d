"""Shared fixtures. Kafka-backed fixtures fail (never skip) when Kafka cannot be reached."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from broker.kafka import Admin, KafkaConnection, connection_from_properties
from puente.dev.localkafka import LocalKafka


def _own_kafka() -> tuple[str, str] | None:
    """This pytest-xdist worker's own local Kafka (its PUENTE_HOME and port), when it has one: worker gw<n>
    (n from 1) takes the n-th entry of ``PUENTE_TEST_KAFKAS`` ("<port>:<home>;..."), which scripts/test.sh
    sets after starting them; the first worker (gw0) uses the Kafka named as usual."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    entries = [e for e in os.environ.get("PUENTE_TEST_KAFKAS", "").split(";") if e]
    index = int(worker[2:]) if worker[:2] == "gw" and worker[2:].isdigit() else 0
    if index == 0 or index > len(entries):
        return None
    port, home = entries[index - 1].split(":", 1)
    return home, port


def pytest_configure(config: pytest.Config) -> None:
    """Under `make test`'s parallel run each worker but the first uses its own local Kafka (``_own_kafka``):
    its tests, and the CLI processes they start. Logins and cluster-wide ACLs are one per cluster, so two
    workers sharing one Kafka would change each other's parties mid-test."""
    own = _own_kafka()
    if own:
        os.environ["PUENTE_HOME"], os.environ["PUENTE_KAFKA_PORT"] = own
        local = LocalKafka("single")
        os.environ["PUENTE_CLIENT_CONFIG"] = str(local.admin_config)
        os.environ["PUENTE_BOOTSTRAP"] = local.bootstrap


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the 3-node local cluster run on one worker, one after another: the cluster has fixed ports."""
    for item in items:
        if item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.xdist_group("kafka-cluster"))


def _shared_by_workers() -> bool:
    """Whether this is a pytest-xdist worker past the first without a Kafka of its own (`pytest -n` by hand)."""
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0" and _own_kafka() is None


def _reachable(conn: KafkaConnection) -> str | None:
    """None when Kafka answers a metadata request as ``conn``, else what went wrong."""
    admin = Admin(conn)

    async def probe() -> None:
        await admin.call("listing topics", lambda c: c.list_topics(timeout=5))

    try:
        asyncio.run(asyncio.wait_for(probe(), 15))
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def kafka_admin() -> KafkaConnection:
    """The admin's connection to a running Kafka: $PUENTE_CLIENT_CONFIG (with $PUENTE_BOOTSTRAP), or the
    local single node's admin login.

    Integration tests need a real, secured broker. When it is unreachable the test fails with
    instructions; it never skips (CI=true or not), so a missing Kafka cannot pass as green.
    """
    if _shared_by_workers():
        pytest.fail("parallel workers each need a Kafka of their own: run the suite with `make test` "
                    "(PUENTE_TEST_WORKERS sets how many), or without -n", pytrace=False)
    config = os.environ.get("PUENTE_CLIENT_CONFIG")
    if config:
        conn = connection_from_properties(Path(config), bootstrap=os.environ.get("PUENTE_BOOTSTRAP") or None)
    else:
        local = LocalKafka("single")
        if not local.admin_config.exists():
            pytest.fail("no local Kafka: start it with `puente kafka up`, or run the suite with `make test`",
                        pytrace=False)
        conn = local.admin_connection()
    problem = _reachable(conn)
    if problem:
        pytest.fail(
            f"Kafka is not reachable at {conn.bootstrap} ({problem}). Start it with `puente kafka up` "
            "or run the whole suite with `make test`, which starts and stops it.",
            pytrace=False,
        )
    return conn


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_admin: KafkaConnection) -> str:
    """The bootstrap addresses of the running Kafka (what its admin connection names)."""
    return kafka_admin.bootstrap


@pytest.fixture
async def admin(kafka_admin: KafkaConnection) -> AsyncIterator[object]:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(**kafka_admin.aiokafka())
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def topic_factory(admin: object) -> AsyncIterator[Callable[..., object]]:
    """Create uniquely named topics for one test; they are deleted afterwards."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    assert isinstance(admin, AIOKafkaAdminClient)
    made: list[str] = []

    async def make(prefix: str = "test", partitions: int = 3, replication: int = 1, **config: str) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        await admin.create_topics([NewTopic(name, partitions, replication, topic_configs=config or None)])
        made.append(name)
        return name

    yield make
    if made:
        await admin.delete_topics(made)


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[LocalKafka]:
    """A fresh 3-node local cluster for fault tests, started here and stopped afterwards."""
    cluster = LocalKafka("cluster")
    cluster.wipe()
    try:
        cluster.up(timeout=180)
    except Exception as exc:  # noqa: BLE001 - report any start failure as a test failure
        cluster.down()
        pytest.fail(f"the 3-node local Kafka cluster did not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.wipe()


@pytest.fixture
def bare_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private keystore folder (PUENTE_KEYS, returned), and no other PUENTE_* setting."""
    for name in [n for n in os.environ if n.upper().startswith("PUENTE_")]:
        monkeypatch.delenv(name)
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    monkeypatch.setenv("PUENTE_KEYS", str(keys))
    return keys
