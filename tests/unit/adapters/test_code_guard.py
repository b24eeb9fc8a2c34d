"""A watchlist label or a country holding a name, a number or a sign beside it is refused, as every code is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters.core import Result

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
JUNK = ["Notificación roja — Иван Петров", "USA_PARTNER 中国 ٨١٢٣", "COL_PARTNER ✓✓", "difusión interpol ٣"]


def _snm(**match: Any) -> dict[str, Any]:
    first = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_text(encoding="utf-8").splitlines()[0]
    doc: dict[str, Any] = json.loads(first)
    doc["coincidencia"] = dict(doc["coincidencia"], **match)
    return doc


def _combifron(**content: Any) -> dict[str, Any]:
    lines = (SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_text(encoding="utf-8").splitlines()
    doc: dict[str, Any] = next(d for d in map(json.loads, lines) if "lista" in d["contenido"])
    doc["contenido"] = dict(doc["contenido"], **content)
    return doc


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


@pytest.mark.parametrize("label", JUNK)
def test_a_watchlist_label_with_text_beside_it_is_refused(label: str, run: Callable[..., list[Result]]) -> None:
    """SNM's and COMBIFRON's lista go through the unknown-code guard: a traveller's name, digits of another script or
    a sign beside a known label is refused as unknown-code, never read as that list with the rest dropped."""
    for name, doc in (("snm", _snm(lista=label)), ("combifron", _combifron(lista=label))):
        (result,) = run(name, _line(doc))
        assert result.error is not None and result.error.reason == f.UNKNOWN_CODE, (name, result.error)
        assert "Иван" not in str(result.error) and "中国" not in str(result.error)


@pytest.mark.parametrize(("label", "code"), [("notificación roja", "INTERPOL_RED_NOTICE"),
                                             ("Notificación Roja.", "INTERPOL_RED_NOTICE"),
                                             ("COL_PARTNER", "COL_PARTNER"), ("difusión de INTERPOL", None)])
def test_a_watchlist_label_alone_is_read(label: str, code: str | None, run: Callable[..., list[Result]]) -> None:
    """The labels staff write, in any case, accents or punctuation, are read; an unknown one keeps its message."""
    (result,) = run("snm", _line(_snm(lista=label)))
    if code is None:
        assert result.error is not None and "lista is not a known watchlist" in str(result.error)
    else:
        assert result.error is None and result.alert is not None
        assert result.alert["payload"]["list_name"] == code


@pytest.mark.parametrize("nationality", ["Colombia Иван", "COL ٨١٢٣", "Panamá ✓"])
def test_a_country_with_text_beside_it_is_refused(nationality: str, run: Callable[..., list[Result]]) -> None:
    """A nationality, a document's country or a list's owner holding more than a country is refused as unknown-code,
    not read as that country; a country's Spanish name, accents and all, still is."""
    snm = _snm()
    snm["viajero"] = dict(snm["viajero"], nacionalidades=[nationality])
    for name, doc in (("snm", snm), ("combifron", _combifron(propietario=nationality)),
                      ("snm", _snm(propietario=nationality))):
        (result,) = run(name, _line(doc))
        assert result.error is not None and result.error.reason == f.UNKNOWN_CODE, (name, result.error)
    snm["viajero"]["nacionalidades"] = ["Panamá", "colombia."]
    (result,) = run("snm", _line(snm))
    assert result.error is None and result.alert is not None
    assert result.alert["payload"]["person"]["nationalities"] == ["PAN", "COL"]


@pytest.mark.parametrize(("name", "lista", "propietario"), [
    ("snm", "USA_PARTNER", "Colombia"), ("snm", "USA_PARTNER", "PAN"), ("snm", "INTERPOL_RED_NOTICE", "USA"),
    ("combifron", "USA_PARTNER", "COL"),
])
def test_a_propietario_other_than_the_lists_keeper_is_refused(
        name: str, lista: str, propietario: str, run: Callable[..., list[Result]]) -> None:
    """A list has one keeper: a propietario naming another is refused, naming both, never sent as the hit's
    list_owner in place of the list's own keeper (the policy holds a hit on the USA's list to the USA's consent)."""
    doc = _snm(lista=lista, propietario=propietario) if name == "snm" else _combifron(lista=lista,
                                                                                     propietario=propietario)
    (result,) = run(name, _line(doc))
    assert result.error is not None and result.error.reason == f.INVALID, (name, result.error)
    assert f"not the keeper of lista {lista}" in str(result.error)


def test_a_propietario_naming_the_lists_keeper_is_kept(run: Callable[..., list[Result]]) -> None:
    """A propietario that agrees with the list (Colombia for COL_PARTNER) maps as before."""
    (result,) = run("snm", _line(_snm(lista="COL_PARTNER", propietario="Colombia")))
    assert result.error is None and result.alert is not None
    assert (result.alert["payload"]["list_name"], result.alert["payload"]["list_owner"]) == ("COL_PARTNER", "COL")
