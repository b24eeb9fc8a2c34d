"""Fixtures of the integration tests: an isolated Puente (own topic prefix and keys) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from puente_testing import Env, delete_env_topics, make_env

from broker.kafka import KafkaConnection


@pytest.fixture
async def env(kafka_admin: KafkaConnection, tmp_path: Path) -> AsyncIterator[Env]:
    made = await make_env(kafka_admin, tmp_path)
    yield made
    await delete_env_topics(made)
