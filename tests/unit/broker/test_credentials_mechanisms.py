"""A party's SCRAM credential of another mechanism than Puente's (Kafka's tools add SCRAM-SHA-256 beside SCRAM-SHA-512)
is deleted by `users apply`, and the party's password made anew: it would outlive every rotation, and a stolen
password with it. Kafka's SCRAM calls are replaced by stand-ins that record what was asked."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import pytest

import broker.credentials as credentials


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    made: list[tuple[str, Any]] = []
    held = {"partner-COL": frozenset({"SCRAM_SHA_256", "SCRAM_SHA_512"}), "partner-USA": frozenset({"SCRAM_SHA_512"})}

    async def scram_users(admin: Any) -> dict[str, frozenset[str]]:
        return held

    async def upsert_users(admin: Any, passwords: dict[str, str]) -> None:
        made.append(("upsert", sorted(passwords)))

    async def delete_users(admin: Any, users: dict[str, Any]) -> None:
        made.append(("delete", {user: sorted(mechanisms) for user, mechanisms in users.items()}))

    async def usable(config: Path, timeout_s: float) -> None:
        pass

    monkeypatch.setattr(credentials, "scram_users", scram_users)
    monkeypatch.setattr(credentials, "upsert_users", upsert_users)
    monkeypatch.setattr(credentials, "delete_users", delete_users)
    monkeypatch.setattr(credentials, "_wait_usable", usable)
    return made


class _Admin:
    conn = types.SimpleNamespace(bootstrap="kafka:9092", ca_file=None, timeout_s=5)

    async def require_admin(self, what: str) -> None:
        pass


@pytest.mark.parametrize("rotate", [False, True])
def test_another_mechanism_of_a_partys_login_is_deleted_and_its_password_made_anew(
        calls: list[tuple[str, Any]], tmp_path: Path, rotate: bool) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    plan = asyncio.run(credentials.apply_users(_Admin(), keys, ["partner-COL"], rotate=rotate, former="leave",
                                                dry_run=True))
    assert [(login.principal, login.action) for login in plan] == [("partner-COL", "rotated")]
    assert calls == []  # a plan changes nothing
    done = asyncio.run(credentials.apply_users(_Admin(), keys, ["partner-COL"], rotate=rotate, former="leave"))
    assert [(login.principal, login.action) for login in done] == [("partner-COL", "rotated")]
    assert calls == [("delete", {"partner-COL": ["SCRAM_SHA_256"]}), ("upsert", ["partner-COL"])]
