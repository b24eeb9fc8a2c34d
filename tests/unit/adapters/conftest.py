"""Fixtures for the adapter tests: a checked context per agency at a fixed time, and record runners.

pytest runs with --import-mode=importlib, so tests take their helpers as fixtures, not imports.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.config import AdaptersConfig, Context, Vocabulary, load_config, make_context
from adapters.core import Result, convert
from adapters.registry import ADAPTERS, get

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # after every sample; every shipped agreement in force
ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
BAD = SAMPLES / "bad"
EXPECTED: dict[str, dict[str, dict[int, str]]] = yaml.safe_load((BAD / "expected.yaml").read_text("utf-8"))
NAMES = list(ADAPTERS)


@pytest.fixture(scope="session")
def vocab() -> Vocabulary:
    """The shipped policy's vocabulary, loaded once."""
    return Vocabulary.load()


@pytest.fixture(scope="session")
def config() -> AdaptersConfig:
    """The shipped adapters/agencies.yaml."""
    return load_config()


@pytest.fixture(scope="session")
def ctx_for(config: AdaptersConfig, vocab: Vocabulary) -> Callable[[str], Context]:
    """A checked context for an agency at NOW."""
    made: dict[str, Context] = {}

    def make(agency: str) -> Context:
        if agency not in made:
            made[agency] = make_context(agency, NOW, config, vocab)
        return made[agency]

    return make


@pytest.fixture(scope="session")
def run(ctx_for: Callable[[str], Context]) -> Callable[..., list[Result]]:
    """Every result of adapter ``name`` over ``data`` (bytes, or a path under samples/)."""

    def go(name: str, data: bytes | Path, ctx: Context | None = None) -> list[Result]:
        adapter = get(name)
        raw = data.read_bytes() if isinstance(data, Path) else data
        return list(convert(adapter, io.BytesIO(raw), ctx or ctx_for(adapter.agency)))

    return go


@pytest.fixture(scope="session")
def one(run: Callable[..., list[Result]]) -> Callable[..., dict[str, Any]]:
    """The alert of a single good record (fails the test with the reason if it was refused)."""

    def go(name: str, data: bytes, ctx: Context | None = None) -> dict[str, Any]:
        results = run(name, data, ctx)
        assert len(results) == 1, results
        assert results[0].error is None, f"{results[0].error.reason}: {results[0].error}"
        assert results[0].alert is not None
        return results[0].alert

    return go


@pytest.fixture(scope="session")
def reason(run: Callable[..., list[Result]]) -> Callable[..., str]:
    """The reason code of a single bad record (fails the test if it was accepted)."""

    def go(name: str, data: bytes, ctx: Context | None = None) -> str:
        results = run(name, data, ctx)
        bad = [r for r in results if r.error is not None]
        assert bad, f"expected a rejection, got {[r.alert and r.alert['alert_id'] for r in results]}"
        assert bad[0].error is not None
        return bad[0].error.reason

    return go
