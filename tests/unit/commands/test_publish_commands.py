"""`puente publish`: a bounded, positive --count, and alerts generated as they are sent, not all before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import puente.dev.synthetic as synthetic
from puente.cli import build_parser


@pytest.mark.parametrize("count", ["0", "-5", "99999999999999999999999", "10000001", "many"])
def test_a_count_out_of_bounds_is_a_usage_error(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Zero, a negative, a count past the maximum or no number at all: exit 2 with one line, before any work."""
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["publish", "--count", count])
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--count" in errors[0]


def test_a_count_in_bounds_is_taken() -> None:
    """1 and the maximum are counts."""
    for count in (1, synthetic.MAX_COUNT):
        assert build_parser().parse_args(["publish", "--count", str(count)]).count == count


def test_alerts_are_generated_as_they_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most CHUNK alerts are generated ahead of what is sent; every one is sent once, by its agency's publisher,
    each publisher opened once and closed at the end."""
    monkeypatch.setattr(synthetic, "CHUNK", 50)
    made = [0]
    real = synthetic.generate

    def counted(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for alert in real(*args, **kwargs):
            made[0] += 1
            yield alert

    sent: list[tuple[str, int, int]] = []  # agency, batch size, alerts made when it was sent
    opened: list[str] = []
    closed: list[str] = []

    class Publisher:
        def __init__(self, agency: str) -> None:
            self.agency = agency

        async def __aenter__(self) -> Publisher:
            opened.append(self.agency)
            return self

        async def __aexit__(self, *exc: object) -> None:
            closed.append(self.agency)

        async def publish(self, alerts: list[dict[str, Any]]) -> int:
            assert {a["agency"] for a in alerts} == {self.agency}
            sent.append((self.agency, len(alerts), made[0]))
            return len(alerts)

    monkeypatch.setattr(synthetic, "generate", counted)
    monkeypatch.setattr(synthetic, "_publisher", lambda cfg, conn, agency: Publisher(agency))
    nothing: Any = SimpleNamespace()  # no settings or Kafka: the publishers stand in for both
    counts = asyncio.run(synthetic.publish_synthetic(nothing, nothing, 175, seed=3))
    assert sum(counts.values()) == sum(n for _, n, _ in sent) == 175
    before = 0
    for _, n, generated in sent:
        assert generated - before <= 50  # never more than a chunk generated ahead of what was sent
        before += n
    assert sorted(opened) == sorted(closed) == sorted(set(opened)) == sorted(counts)
