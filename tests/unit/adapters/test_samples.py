"""The shipped samples: every record maps, round-trips through the codec, and passes the broker's checks."""

from __future__ import annotations

from collections import Counter
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
    versions = [(r.alert["alert_id"], r.alert["version"]) for r in results if r.alert]
    assert len(versions) == len(set(versions)) == len(results)
    for r in results:
        assert r.value is not None and r.alert is not None
        decoded = codec.decode(r.value)
        assert decoded == r.alert
        assert decoded["agency"] == get(name).agency
        assert _sanity(decoded, datetime.now(UTC)) is None


def test_later_revisions_follow_alerts_the_samples_first_published(run: Callable[..., list[Result]]) -> None:
    """Read in file-name order (as `make demo` publishes them), every sample is a first version or the next
    version of an alert published before it, under the same id: nothing is a conflict, a gap or out of order;
    and the revisions cover corrections, a reclassification, a consent and a recall."""
    actions: Counter[str] = Counter()
    for name in ADAPTERS:
        latest: dict[str, int] = {}
        for n, file in FILES:
            if n != name:
                continue
            for r in run(name, SAMPLES / name / file):
                assert r.alert is not None
                alert_id, version = r.alert["alert_id"], r.alert["version"]
                assert version == latest.get(alert_id, 0) + 1, (file, r.item.line)
                assert (r.alert["lifecycle"] is None) == (version == 1)
                latest[alert_id] = version
                if r.alert["lifecycle"] is not None:
                    actions[f"{name}:{r.alert['lifecycle']['action']}"] += 1
    assert {"combifron:UPDATE", "combifron:RECLASSIFY", "combifron:CONSENT", "combifron:RECALL", "snm:UPDATE",
            "snm:RECALL"} <= set(actions)


def test_samples_use_the_languages_and_shapes_the_issue_asks_for(run: Callable[..., list[Result]]) -> None:
    """Spanish remarks, accented names with two surnames, several nationalities, Colombian originators."""
    alerts = {name: [r.alert for n, f in FILES if n == name for r in run(name, SAMPLES / name / f) if r.alert]
              for name in ADAPTERS}
    remarks = [a["payload"]["remarks"] for a in alerts["senafront"] if a["payload"]["remarks"]]
    assert any("\n" in r for r in remarks) and any("menores" in r for r in remarks)
    people = [a["payload"]["person"] for a in alerts["snm"]]
    assert any(" " in p["surnames"] and any(c in p["surnames"] for c in "áéíóúñÁÉÍÓÚÑ") for p in people)
    assert any(len(p["nationalities"]) > 1 for p in people)
    assert {a["markings"]["originator"]["country"] for a in alerts["combifron"]} == {"COL"}
    assert {a["alert_type"] for a in alerts["combifron"]} == {"BORDER_EVENT", "SEIZURE", "WATCHLIST_HIT"}
