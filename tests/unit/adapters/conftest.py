"""Fixtures for the adapter tests: a checked context per agency at a fixed time, and record runners.

pytest runs with --import-mode=importlib, so tests take their helpers as fixtures, not imports.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from adapter_fakes import FakeKafka

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


@pytest.fixture
def offline(ctx_for: Callable[[str], Context]) -> Callable[..., tuple[Any, FakeKafka]]:
    """A real AdapterRun of adapter ``name`` whose Kafka producers are a FakeKafka, and that FakeKafka. ``after``: an
    earlier run whose ledger and dead-letter keys this one starts with, as a restart reads them back from the topics."""
    from adapters.run import AdapterRun
    from puente.settings import AGENCY_COUNTRIES, AGENCY_UNITS

    def make(name: str, after: Any = None) -> tuple[Any, FakeKafka]:
        adapter, kafka = get(name), FakeKafka()
        settings: Any = SimpleNamespace(topic_prefix="t", agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
        adapter_run = AdapterRun(settings, None, adapter, ctx_for(adapter.agency), err=io.StringIO())
        adapter_run._publisher, adapter_run._dlq = kafka, kafka
        if after is not None:
            adapter_run.ledger, adapter_run.dead = after.ledger, set(after.dead)
        return adapter_run, kafka

    return make


class StepClock:
    """A watcher's clock (``adapters.watch.Clock``) whose seconds pass only as the watcher waits between polls, by
    exactly the interval, and whose polls take no time: a test's idle exits and retry waits count polls, never a
    loaded machine's timing. ``on_pause(now)`` runs at each wait (a test changing files mid-watch); a watch still
    polling after ``limit`` seconds fails the test rather than hang it."""

    def __init__(self, on_pause: Callable[[float], None] | None = None, limit: float = 86_400.0) -> None:
        self.t, self.on_pause, self.limit, self.pauses = 0.0, on_pause, limit, 0

    def now(self) -> float:
        return self.t

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        self.t += seconds
        self.pauses += 1
        assert self.t <= self.limit, "the watch went on past the test's limit"
        if self.on_pause is not None:
            self.on_pause(self.t)
        await asyncio.sleep(0)  # a stop set by another task is seen at the next turn


@pytest.fixture
def ticks() -> type[StepClock]:
    """The StepClock class, for a test to make a clock of its own."""
    return StepClock
