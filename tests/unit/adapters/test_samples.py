"""The shipped samples: every record maps, round-trips through the codec, and passes the broker's checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.core import Result
from adapters.registry import ADAPTERS, get
from broker.pipeline import _sanity
from schemas import alert_codec

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
FILES = sorted((name, p.name) for name in ADAPTERS for p in (SAMPLES / name).iterdir() if p.is_file())


def test_every_adapter_ships_a_few_dozen_sample_records(run: Callable[..., list[Result]]) -> None:
    """Each adapter has samples, 40 or more records in all, in the agency's own format."""
    for name in ADAPTERS:
        total = sum(len(run(name, SAMPLES / name / f)) for n, f in FILES if n == name)
        assert total >= 40, name


@pytest.mark.parametrize(("name", "file"), FILES)
def test_sample_records_all_map_and_pass_the_broker(name: str, file: str, run: Callable[..., list[Result]]) -> None:
    """No sample record is refused; each decodes to itself and passes the broker's sanity checks."""
    codec = alert_codec()
    results = run(name, SAMPLES / name / file)
    assert [r.error for r in results if r.error] == []
    ids = [r.alert["alert_id"] for r in results if r.alert]
    assert len(ids) == len(set(ids)) == len(results)
    for r in results:
        assert r.value is not None and r.alert is not None
        decoded = codec.decode(r.value)
        assert decoded == r.alert
        assert decoded["agency"] == get(name).agency
        assert _sanity(decoded, datetime.now(UTC)) is None


def test_samples_use_the_languages_and_shapes_the_issue_asks_for(run: Callable[..., list[Result]]) -> None:
    """Spanish remarks, accented names with two surnames, several nationalities, Colombian originators."""
    alerts = {name: [r.alert for r in run(name, SAMPLES / name / f) if r.alert] for name, f in FILES}
    remarks = [a["payload"]["remarks"] for a in alerts["senafront"] if a["payload"]["remarks"]]
    assert any("\n" in r for r in remarks) and any("menores" in r for r in remarks)
    people = [a["payload"]["person"] for a in alerts["snm"]]
    assert any(" " in p["surnames"] and any(c in p["surnames"] for c in "áéíóúñÁÉÍÓÚÑ") for p in people)
    assert any(len(p["nationalities"]) > 1 for p in people)
    assert {a["markings"]["originator"]["country"] for a in alerts["combifron"]} == {"COL"}
    assert {a["alert_type"] for a in alerts["combifron"]} == {"BORDER_EVENT", "SEIZURE", "WATCHLIST_HIT"}
