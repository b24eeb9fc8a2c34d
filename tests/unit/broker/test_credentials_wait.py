"""A new login is waited for through slow answers, up to the whole time allowed."""
from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import pytest

import broker.credentials as credentials
from puente.errors import KafkaAuthError, KafkaUnavailableError


def _properties(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A login's file, read as a connection with a 5 s bound per try (the file's reading is tested elsewhere)."""
    monkeypatch.setattr(credentials, "connection_from_properties",
                        lambda path, timeout_s: types.SimpleNamespace(timeout_s=timeout_s))
    return tmp_path / "client.properties"


@pytest.mark.parametrize("first", [KafkaAuthError, KafkaUnavailableError])
def test_a_slow_or_refused_first_answer_is_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       first: type[Exception]) -> None:
    """A node too loaded to answer one try in time is asked again, as a login it has not taken yet is."""
    answers: list[Exception | None] = [first("not yet"), None]

    class _Admin:
        def __init__(self, conn: Any) -> None:
            pass

        async def call(self, what: str, fn: Any) -> None:
            answer = answers.pop(0)
            if answer is not None:
                raise answer

    monkeypatch.setattr(credentials, "Admin", _Admin)
    asyncio.run(credentials._wait_usable(_properties(tmp_path, monkeypatch), timeout_s=60.0))
    assert answers == []


def test_past_the_whole_time_the_last_error_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreachable for the whole time allowed: the error reaches the caller, naming Kafka."""
    tries: list[int] = []

    class _Admin:
        def __init__(self, conn: Any) -> None:
            pass

        async def call(self, what: str, fn: Any) -> None:
            tries.append(1)
            raise KafkaUnavailableError("Kafka could not be reached")

    monkeypatch.setattr(credentials, "Admin", _Admin)
    with pytest.raises(KafkaUnavailableError):
        asyncio.run(credentials._wait_usable(_properties(tmp_path, monkeypatch), timeout_s=0.0))
    assert len(tries) == 1
