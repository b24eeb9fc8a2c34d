"""The shipped samples, mapped by their adapters, name only provinces and border sectors of the shipped policy's
areas: the policy withholds any other (rule ``unknown.area``, ``policies.decide``), so a demo or a test counting
deliveries of them would otherwise change outcome."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import ADAPTERS
from policies import load_areas

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
FILES = [(name, path) for name in sorted(ADAPTERS) for path in sorted((SAMPLES / name).glob("*")) if path.is_file()]


@pytest.mark.parametrize(("name", "path"), FILES, ids=[f"{n}/{p.name}" for n, p in FILES])
def test_every_sample_alert_names_only_the_policys_areas(name: str, path: Path, run: Callable[..., list[Any]]) -> None:
    """Each alert an adapter makes of a shipped sample names a province and a border sector (when it names one) of
    the shipped areas."""
    areas = load_areas()
    alerts = [r.alert for r in run(name, path) if r.alert is not None]
    assert alerts, path
    for alert in alerts:
        location = alert.get("location") or {}
        assert location.get("province") in areas.provinces | {None}, alert["alert_id"]
        assert location.get("border_sector") in areas.border_sectors | {None}, alert["alert_id"]
