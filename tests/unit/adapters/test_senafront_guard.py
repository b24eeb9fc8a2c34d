"""SENAFRONT's header columns and its "Panama only" release pass the unknown-code guard every code passes: a
letter, a digit or a sign of another script beside the name is refused, never folded away."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters import _fields as f
from adapters.core import plain_name
from puente.errors import AdapterError

HEADER = "N° Informe;Fecha;Hora;Tipo de evento;Observaciones;Difusión;Advertencias"
ROW = "IP-DAR-2026-000412;03/11/2026;06:40;Flujo migratorio;Grupo con 31 menores.;{release};"
JUNK = ("— Иван Петров", "✓", "٨١٢٣", "🅿🅰", "★")


def _csv(release: str = "", header: str = HEADER) -> bytes:
    return f"{header}\r\n{ROW.format(release=release)}\r\n".encode()


@pytest.mark.parametrize("junk", JUNK)
def test_a_panama_only_release_with_junk_beside_it_is_refused(run: Callable[..., list[Any]], junk: str) -> None:
    """'Solo Panamá' with a name, digits or signs of another script beside it is refused as unknown-code, naming the
    column and not its text: read as Solo Panamá, the rest would vanish from the record unseen."""
    results = run("senafront", _csv(f"Solo Panamá {junk}"))
    assert len(results) == 1 and results[0].error is not None
    assert results[0].error.reason == f.UNKNOWN_CODE and "Difusión" in str(results[0].error)
    assert junk.strip("— ") not in str(results[0].error)


@pytest.mark.parametrize("release", ["Solo Panamá", "solo panama", "PANAMA_ONLY", "No difundir.", "Ninguno"])
def test_a_plain_panama_only_release_still_keeps_the_alert_home(one: Callable[..., dict[str, Any]],
                                                                release: str) -> None:
    """The Panama-only labels, typed any way staff type them (case, accents, punctuation), still mean no partner
    and the PANAMA_ONLY caveat."""
    markings = one("senafront", _csv(release))["markings"]
    assert markings["releasable_to"] == [] and "PANAMA_ONLY" in markings["caveats"]


@pytest.mark.parametrize("column", ["Difusión", "Fecha", "Observaciones", "Tipo de evento"])
@pytest.mark.parametrize("junk", JUNK)
def test_a_header_with_junk_beside_a_columns_name_is_refused(run: Callable[..., list[Any]], column: str,
                                                             junk: str) -> None:
    """A header cell holding a column's name and a letter, a digit or a sign of another script is not read as that
    column: the file is refused as unknown-code, naming the column's place, never the cell's text."""
    place = HEADER.split(";").index(column) + 1
    results = run("senafront", _csv("COL", header=HEADER.replace(column, f"{column} {junk}")))
    assert len(results) == 1 and results[0].error is not None
    error = str(results[0].error)
    assert results[0].error.reason == f.UNKNOWN_CODE and f"header column {place} " in error
    assert junk.strip("— ") not in error and "COL" not in error


def test_headers_as_battalions_type_them_are_still_read(one: Callable[..., dict[str, Any]]) -> None:
    """Accents, case, punctuation and the degree sign typed for an ordinal ('N° Informe', 'Nº', 'No.') pass."""
    for number in ("N° Informe", "Nº Informe", "No. Informe", "N°. informe"):
        header = HEADER.replace("N° Informe", number).replace("Difusión", "DIFUSION").replace("Fecha", "fecha.")
        assert one("senafront", _csv("COL", header=header))["markings"]["releasable_to"] == ["COL"]


def test_plain_name_refuses_by_field_and_takes_any_length() -> None:
    """The guard names its field, never the value, and bounds no name's length (only a word's)."""
    plain_name("Observaciones " * 40, "header column 9")
    with pytest.raises(AdapterError, match="header column 9 holds") as caught:
        plain_name("Difusión Иван", "header column 9")
    assert "Иван" not in str(caught.value)
