"""A worker's background loops end when cancelled, even when the cancellation meets a wait that has just
finished. Python 3.11's ``asyncio.wait_for`` then returns the result and loses the cancellation: the loop of
periodic commits ran on, and a broker told to stop (SIGTERM) waited on it for ever (``_run_once`` awaits it).
The project bounds its waits with ``asyncio.timeout`` instead (ruff's banned-api rule keeps it so)."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from tests.unit.broker.test_worker_lifecycle_loss import _worker
from tests.unit.broker.test_worker_settle import _slot

ROOT = Path(__file__).resolve().parents[3]


class _Group:
    """The group consumer, as far as committing positions asks; each commit answers at once."""

    def __init__(self, tps: list[TopicPartition]) -> None:
        self.tps = tps
        self.committed = asyncio.Event()

    def assignment(self) -> set[TopicPartition]:
        return set(self.tps)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.committed.set()


def test_the_loop_of_periodic_commits_ends_when_cancelled_as_a_commit_finishes() -> None:
    """Cancelled right as a commit has finished (the moment ``wait_for`` lost it), the loop ends cancelled;
    before the fix it slept and committed on, and the test's bound ran out."""
    worker = _worker()
    state = _slot(0)
    state.done_to = 5  # a position the group does not have yet: the first round commits it
    worker._owned[state.tp] = state
    group = _Group([state.tp])

    async def cancel_after_commit() -> bool:
        committer = asyncio.create_task(worker._commit_every(group))  # type: ignore[arg-type]
        await group.committed.wait()
        committer.cancel()
        done, _ = await asyncio.wait({committer}, timeout=3.0)
        if not done:
            committer.cancel()  # lost again: stop it so the test's loop can end
        return committer in done and committer.cancelled()

    assert asyncio.run(cancel_after_commit())
    assert state.group_has == 5


def test_no_product_code_waits_with_asyncio_wait_for() -> None:
    """The rule is in force: ruff's banned-api names ``asyncio.wait_for``, and the check covers product code
    (only the tests, which bound their own waits and are never cancelled mid-wait, are exempt)."""
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "TID251" in lint["select"] or "TID" in lint["select"]
    assert "asyncio.wait_for" in lint["flake8-tidy-imports"]["banned-api"]
    assert all("TID251" not in rules for pattern, rules in lint["per-file-ignores"].items() if pattern != "tests/**")
    found = [str(path.relative_to(ROOT)) for folder in ("adapters", "broker", "policies", "puente", "schemas")
             for path in (ROOT / folder).rglob("*.py") if "wait_for(" in path.read_text()]
    assert found == []
