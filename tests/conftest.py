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
