"""The demo's broker runs as ``puente broker run`` does: the workers are told what the topology check found."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from puente.dev import demo
from puente.settings import PuenteSettings


@pytest.mark.parametrize("forever", [True, False])
async def test_the_demos_workers_are_told_the_audit_is_kept_for_ever(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path, forever: bool) -> None:
    """A decisions topic kept for ever (``retention.ms=-1``) makes an emptied audit slot a deletion, not expiry:
    the demo's workers must hear it from the check, as the broker's do."""
    told: list[bool] = []

    class Done:
        metrics = SimpleNamespace(inputs=0)

        async def run(self, topics: list[str], *, idle_exit_s: float | None = None) -> None:
            return None

    async def checked(*args: object) -> bool:
        return forever

    def build(*args: object, audit_kept_forever: bool = False, **kw: Any) -> tuple[Done, list[str], list[str]]:
        told.append(audit_kept_forever)
        return Done(), ["t"], []

    monkeypatch.setattr(demo, "load_policy_set", lambda path: SimpleNamespace(version="p-test"))
    monkeypatch.setattr(demo, "check_topology", checked)
    monkeypatch.setattr(demo, "build_worker", build)
    await demo._broker(PuenteSettings(keys=tmp_path), SimpleNamespace(), 2, 0)  # type: ignore[arg-type]
    assert told == [forever, forever]
