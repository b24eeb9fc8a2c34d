"""An ignored value is read as a marking however it is disguised. A strong marking (a level, a no-release label, a
handling code, ORCON, a marking word) refuses it wherever it stands as a word, written without separators too; an
ambiguous one (a partner or country, LES, PII, a grading) only among filler words. Dotted abbreviations are joined,
and an invisible character or a word mixing scripts is refused as in a read field. Every adapter knows the no-release
labels, and an ignored name holding a strong marking is refused at start-up."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters.config import AdaptersConfig, Context, Vocabulary, make_context
from adapters.core import Result, check_ignored, convert
from adapters.registry import get
from puente.errors import ConfigError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[3] / "samples"
HEADER = "N° Informe;Fecha;Hora;Tipo de evento;Notas"
ROW = "IP-DAR-2026-000412;03/11/2026;06:40;Flujo migratorio;{cell}"


def _ctx(config: AdaptersConfig, vocab: Vocabulary, agency: str, **update: Any) -> Context:
    profile = config.agencies[agency].model_copy(update=update)
    return make_context(agency, NOW, config.model_copy(update={"agencies": {**config.agencies, agency: profile}}),
                        vocab)


def _senafront(cell: str, ctx: Context) -> Result:
    data = (HEADER + "\n" + ROW.format(cell=cell) + "\n").encode()
    return next(convert(get("senafront"), io.BytesIO(data), ctx))


def _senan(value: Any, ctx: Context) -> Result:
    doc = json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0])
    doc["embarcacion"]["motores"] = value
    return next(convert(get("senan"), io.BytesIO(json.dumps(doc).encode()), ctx))


@pytest.mark.parametrize("cell", [
    "Solo EE.UU.", "EE. UU.", "U.S.A.", "Solamente Panamá", "Únicamente Panamá", "Panamá solamente", "Exclusivo PAN",
    "Uso exclusivo de Panamá", "Secreto (S)", "Nivel 3", "Restringida - uso oficial", "Países: COL, USA",
    "Compartible con COL", "SOLOPANAMA", "PANAMAONLY", "No divulgar", "Uso interno",
])
def test_a_disguised_marking_in_an_ignored_cell_refuses_its_row(cell: str, config: AdaptersConfig,
                                                                vocab: Vocabulary) -> None:
    """Dotted abbreviations, extra filler words, a strong marking among other words, joined labels: all refused."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is not None and result.error.reason == f.INVALID, result.error
    assert "'Notas'" in str(result.error) and cell not in str(result.error).replace("Notas", "")


@pytest.mark.parametrize(("cell", "reason"), [
    ("SE\u00adCRETO", f.INVISIBLE), ("P\u200bA\u200bN", f.INVISIBLE), ("Solo Pana\u00adm\u00e1", f.INVISIBLE),
    ("\u0420\u0410N", f.MIXED_SCRIPT), ("ok\x01", f.INVALID),
])
def test_a_hidden_or_look_alike_character_in_an_ignored_cell_is_refused_as_in_a_read_field(
        cell: str, reason: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """The read field's guards run on an ignored cell: same reason, the column named, never the value."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is not None and result.error.reason == reason, result.error
    assert "ignored column 'Notas'" in str(result.error) and cell not in str(result.error)


@pytest.mark.parametrize("cell", [
    "Sujeto con antecedentes en Colombia, viaja solo", "A1-334", "les fue negada la entrada",
    "Ministerio Público de Colombia", "cruce por paso no autorizado", "nivel del río alto", "sin novedad", "X",
])
def test_prose_in_an_ignored_cell_is_still_dropped(cell: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Prose naming a country or holding a common word that is also a marking word is no marking."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is None, result.error


@pytest.mark.parametrize("value", ["No difundir", "NO_DIFUNDIR", "Ninguno", "Secreto (S)", "Solamente Panamá",
                                   {"destino": "U.S.A."}, "SE\u00adCRETO"])
def test_a_json_adapter_refuses_the_no_release_labels_and_disguises(value: Any, config: AdaptersConfig,
                                                                    vocab: Vocabulary) -> None:
    """SENAN knows 'No difundir' as SENAFRONT does; an ignored key's value is guarded the same way."""
    ctx = _ctx(config, vocab, "SENAN", ignored_keys=("embarcacion.motores", "carga[].peso_kg"))
    assert _senan("dos motores", ctx).error is None
    result = _senan(value, ctx)
    assert result.error is not None and "'embarcacion.motores'" in str(result.error), result.error


@pytest.mark.parametrize(("adapter", "name"), [
    ("senafront", "Solo para EE.UU."), ("senafront", "Únicamente EE.UU."), ("senafront", "U.S.A. only"),
    ("senafront", "Uso interno"), ("senafront", "No divulgar"), ("senan", "no_difundir"), ("snm", "no_difundir"),
    ("senan", "solopanama"), ("senan", "solo_ee_uu"),
])
def test_an_ignored_name_holding_a_marking_so_written_is_refused(adapter: str, name: str, config: AdaptersConfig,
                                                                 vocab: Vocabulary) -> None:
    """At start-up, dotted abbreviations, joined labels and the no-release labels are refused for every adapter."""
    a = get(adapter)
    setting = {"ignored_columns": (name,)} if a.columns is not None else {"ignored_keys": (name,)}
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(a, _ctx(config, vocab, a.agency, **setting))


def test_a_long_ignored_list_of_harmless_strings_is_dropped(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """10,000 short strings in an ignored key, none a marking: the record is published. (No timing here: each string
    is split into words once and looked up in sets; bench/ measures speed, tests never do.)"""
    ctx = _ctx(config, vocab, "SENAN", ignored_keys=("embarcacion.motores", "carga[].peso_kg"))
    assert _senan(["ab"], ctx).error is None
    assert _senan(["ab"] * 10_000, ctx).error is None
