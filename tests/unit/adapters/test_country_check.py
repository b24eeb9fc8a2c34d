"""An adapter whose originator country is not the one the broker holds its agency to stops before any record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.config import AdaptersConfig, Vocabulary, load_config, make_context
from adapters.run import check_units
from puente import cli
from puente.errors import EXIT_CONFIG, ConfigError
from puente.settings import AGENCY_COUNTRIES, AGENCY_UNITS

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _with_country(agency: str, country: str) -> AdaptersConfig:
    data = load_config().model_dump()
    data["agencies"][agency]["country"] = country
    return AdaptersConfig.model_validate(data)


@pytest.mark.parametrize(("agency", "country", "countries", "named"), [
    ("COMBIFRON", "PAN", {"COMBIFRON": "COL"}, "only as of COL (PUENTE_AGENCY_COUNTRIES)"),
    ("SENAFRONT", "COL", {"COMBIFRON": "COL"}, "only as of PAN (the policy's home country"),
    ("SNM", "CRI", {"SNM": "PAN", "COMBIFRON": "COL"}, "only as of PAN (PUENTE_AGENCY_COUNTRIES)"),
])
def test_a_country_the_broker_does_not_hold_the_agency_to_is_refused(
        agency: str, country: str, countries: dict[str, str], named: str) -> None:
    """agencies.yaml (or --config) naming another originator country than PUENTE_AGENCY_COUNTRIES (or the home
    country, by default) would have the broker dead-letter every alert: refused in one line naming both."""
    cfg: Any = SimpleNamespace(agency_countries=countries, agency_units=AGENCY_UNITS)
    ctx = make_context(agency, NOW, _with_country(agency, country), Vocabulary.load())
    with pytest.raises(ConfigError) as caught:
        check_units(cfg, ctx)
    said = str(caught.value)
    assert f"originator country {country}" in said and named in said and "agencies.yaml" in said
    assert "\n" not in said


@pytest.mark.parametrize("agency", ["SENAFRONT", "SENAN", "PN", "SNM", "COMBIFRON"])
def test_the_shipped_configuration_agrees_with_the_broker(agency: str) -> None:
    """Every shipped agency's country is the one the broker's default settings hold it to."""
    cfg: Any = SimpleNamespace(agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
    check_units(cfg, make_context(agency, NOW, load_config(), Vocabulary.load()))


def test_adapt_check_refuses_the_country_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`puente adapt combifron --check --config` with COMBIFRON as PAN stops as a run would: exit 3, one line."""
    shipped = (ROOT / "adapters" / "agencies.yaml").read_text(encoding="utf-8")
    assert shipped.count("country: COL") == 1
    config = tmp_path / "agencies.yaml"
    config.write_text(shipped.replace("country: COL", "country: PAN"), encoding="utf-8")
    sample = ROOT / "samples" / "combifron" / "mensajes-colombia-2026-11.jsonl"
    assert cli.main(["adapt", "combifron", "--check", "--config", str(config), str(sample)]) == EXIT_CONFIG
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "originator country PAN" in captured.err and "PUENTE_AGENCY_COUNTRIES" in captured.err
