"""A province an adapter may write that the policy's areas.yaml lacks stops the adapter at configuration load."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from adapters.config import AdaptersConfig, Vocabulary, make_context
from policies import Areas
from puente.errors import ConfigError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _refusal(agency: str, config: AdaptersConfig, vocab: Vocabulary) -> str:
    with pytest.raises(ConfigError) as caught:
        make_context(agency, NOW, config, vocab)
    return str(caught.value)


def test_a_province_without_an_outline_stops_every_adapter(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """A code under provinces: that areas.yaml does not outline would have every alert naming it withheld from
    every partner (rule unknown.area): the adapter refuses to start, on one line naming the code and areas.yaml."""
    bad = config.model_copy(update={"provinces": (*config.provinces, "CHEPO")})
    for agency in bad.agencies:
        message = _refusal(agency, bad, vocab)
        assert f"{agency}: provinces names 'CHEPO', not a province or comarca of the policy's areas.yaml" in message
        assert "\n" not in message
        assert "'PANAMA'" not in message


def test_an_extra_province_without_an_outline_stops_its_agency(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """An agency's extra_provinces (COMBIFRON's Colombian departments) are held to the areas too, and only that
    agency is refused: another agency never writes them."""
    combifron = config.agencies["COMBIFRON"]
    bad = config.model_copy(update={"agencies": {**config.agencies, "COMBIFRON": combifron.model_copy(
        update={"extra_provinces": (*combifron.extra_provinces, "ARAUCA")})}})
    assert "COMBIFRON: extra_provinces names 'ARAUCA', not a province or comarca of the policy's areas.yaml" \
        in _refusal("COMBIFRON", bad, vocab)
    make_context("SENAFRONT", NOW, bad, vocab)


def test_a_port_or_alias_province_resolves_to_a_checked_code(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Every province an adapter writes, a port's or an alias's too, is a value of the province table, which holds
    only the codes the check covers: so the check covers every code an adapter can write."""
    for agency in config.agencies:
        ctx = make_context(agency, NOW, config, vocab)
        written = set(ctx.province_table.values())
        assert written == {*config.provinces, *config.agencies[agency].extra_provinces}
        assert written <= vocab.areas.provinces
    snm = make_context("SNM", NOW, config, vocab)
    assert all(snm.province_table[port.province] in vocab.areas.provinces for port in config.ports.values())


def test_a_policy_without_areas_holds_no_province(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """A policy with no areas.yaml outlines nothing, and no province is held to it (as no border sector is)."""
    bad = config.model_copy(update={"provinces": (*config.provinces, "CHEPO")})
    make_context("SNM", NOW, bad, dataclasses.replace(vocab, areas=Areas()))
