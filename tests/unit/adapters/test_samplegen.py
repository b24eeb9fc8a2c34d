"""The sample generator: any seed gives files of valid records in each agency's own format."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.core import Result
from adapters.registry import ADAPTERS
from puente.dev.samplegen import main, write


@pytest.mark.parametrize("name", list(ADAPTERS))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_generated_files_are_all_valid(name: str, seed: int, run: Callable[..., list[Result]]) -> None:
    """300 generated records of any seed all map to alerts with distinct ids."""
    out = io.BytesIO()
    assert write(name, out, 300, seed=seed, base=datetime(2026, 11, 20, 12, 0), prefix="T") == 300
    results = run(name, out.getvalue())
    problems = [f"{r.item.line}: {r.error}" for r in results if r.error]
    assert problems == [] and len(results) == 300
    assert len({r.alert["alert_id"] for r in results if r.alert}) == 300


def test_the_generator_is_deterministic_for_a_seed() -> None:
    """The same seed and base give the same bytes; another seed other bytes."""
    def gen(seed: int) -> bytes:
        out = io.BytesIO()
        write("snm", out, 20, seed=seed, base=datetime(2026, 11, 20, 12, 0))
        return out.getvalue()

    assert gen(1) == gen(1) != gen(2)


def test_the_command_writes_one_file_per_adapter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`python -m puente.dev.samplegen all --count N --out DIR` writes the five files."""
    assert main(["all", "--count", "5", "--out", str(tmp_path)]) == 0
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".csv", ".json", ".jsonl", ".jsonl", ".txt"]
