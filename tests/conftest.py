"""Shared fixtures. Kafka-backed fixtures fail (never skip) when Kafka cannot be reached."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from puente.dev.localkafka import LocalKafka


def _reachable(bootstrap: str) -> str | None:
    """None when Kafka answers a metadata request at ``bootstrap``, else what went wrong."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            await admin.describe_cluster()
        finally:
            await admin.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), 15))
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap address of a running Kafka: $PUENTE_BOOTSTRAP or the local single node.

    Integration tests need a real broker. When it is unreachable the test fails with
    instructions; it never skips (CI=true or not), so a missing Kafka cannot pass as green.
    """
    bootstrap = os.environ.get("PUENTE_BOOTSTRAP") or LocalKafka("single").bootstrap
    problem = _reachable(bootstrap)
    if problem:
        pytest.fail(
            f"Kafka is not reachable at {bootstrap} ({problem}). Start it with `puente kafka up` "
            "or run the whole suite with `make test`, which starts and stops it.",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[object]:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
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
