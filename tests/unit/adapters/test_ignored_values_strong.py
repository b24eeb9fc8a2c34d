"""An ignored value is refused only where it is a marking, however disguised. A token nobody writes in prose (NOFORN,
ORCON, FOUO, TLP, ULTRASECRETO, SOLO_PANAMA, PANAMA_ONLY, NO_DIFUNDIR, NO_DIVULGAR, joined too) or REL TO and a
partner refuses it anywhere; otherwise only a value wholly a marking (levels, labels, handling codes, gradings,
caveats, no-release labels, with filler) does. A partner or country alone, and everyday prose, pass. Format
characters are dropped and Greek and Cyrillic look-alikes folded before reading; only control characters and bidi
overrides are refused as characters. Every adapter knows the no-release labels, and an ignored name holding a
marking is refused at start-up."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters.config import AdaptersConfig, Context, Vocabulary
from adapters.core import Result, check_ignored, convert
from adapters.registry import get
from puente.errors import ConfigError
from tests.unit.adapters.test_ignored_values import _ctx, _senafront

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _senan(value: Any, ctx: Context) -> Result:
    doc = json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0])
    doc["embarcacion"]["motores"] = value
    return next(convert(get("senan"), io.BytesIO(json.dumps(doc).encode()), ctx))


@pytest.mark.parametrize("cell", [
    "NOFORN", "Remitido con ORCON", "fouo", "TLP:AMBER", "Ultrasecreto", "Viaja solo Panamá", "Informe PANAMA_ONLY",
    "No difundir", "no divulgar este informe", "SOLOPANAMA", "PANAMAONLY", "NODIFUNDIR", "NODIVULGAR",
    "Nota: REL TO COL", "rel to Costa Rica", "SECRETO REL TO USA",
])
def test_a_token_nobody_writes_in_prose_refuses_an_ignored_cell_anywhere(cell: str, config: AdaptersConfig,
                                                                         vocab: Vocabulary) -> None:
    """Rule (2): such a token as a word, separated or joined, or a release phrase, refuses the row wherever it is."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is not None and result.error.reason == f.INVALID, result.error
    assert "'Notas'" in str(result.error) and cell not in str(result.error).replace("Notas", "")


@pytest.mark.parametrize("cell", [
    "Secreto", "SECRETO (S)", "Reservada", "H2", "B2", "Nivel 3", "Clasificación: secreto", "PII", "Uso interno",
    "Restringida - uso oficial", "Secreto, COL", "Confidencial y LES",
])
def test_an_ignored_cell_wholly_a_marking_refuses_its_row(cell: str, config: AdaptersConfig,
                                                          vocab: Vocabulary) -> None:
    """Rule (3): levels, labels, handling codes, gradings, caveats and no-release labels with filler only."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is not None and result.error.reason == f.INVALID, result.error
    assert "'Notas'" in str(result.error) and cell not in str(result.error).replace("Notas", "")


@pytest.mark.parametrize("cell", [
    "SE\u00adCRETO", "N\u200bO\u200bF\u200bO\u200bR\u200bN", "Solo Pana\u00adm\u00e1", "\u041d2", "\u04122",
    "\u0422L\u0420", "\u0420ANAMA_ONLY", "\u039d\u039fFORN", "\ufeffReservada", "H\u200d2",
    "\uff33\uff25\uff23\uff32\uff25\uff34\uff2f", "\U0001d412ECRETO",
])
def test_a_disguised_marking_in_an_ignored_cell_is_read_and_refused(cell: str, config: AdaptersConfig,
                                                                    vocab: Vocabulary) -> None:
    """Format characters (soft hyphen, zero-width, BOM) are dropped, Greek and Cyrillic look-alikes folded, and
    compatibility forms decomposed before the value is read: the marking underneath refuses the row."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is not None and result.error.reason == f.INVALID, result.error
    assert "'Notas'" in str(result.error) and cell not in str(result.error)


@pytest.mark.parametrize(("cell", "reason"), [
    ("ok\x01", f.INVALID), ("ok\x85", f.INVALID), ("a\u202eb", f.INVISIBLE), ("a\u202ab", f.INVISIBLE),
    ("x\u2066y\u2069", f.INVISIBLE),
])
def test_a_control_character_or_bidi_override_in_an_ignored_cell_is_refused(
        cell: str, reason: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Control characters and the bidi overrides and isolates (which can show a person a marking the adapter reads
    otherwise) are refused, the column named, never the value."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is not None and result.error.reason == reason, result.error
    assert "ignored column 'Notas'" in str(result.error) and cell not in str(result.error)


# The critical reader's everyday border-patrol Spanish, refused whole by the rule before: none is a marking.
EVERYDAY = [
    "Zona restringida por crecida del río", "Acceso restringido", "Droga oculta en compartimiento secreto",
    "Vehículo de uso oficial", "Camioneta Hyundai H1 blanca", "Bus H2 de traslado",
    "Distribución de alimentos a migrantes", "Se recomienda no compartir rutas en redes",
    "Difusión de videos en redes sociales", "Consentimiento verbal del menor", "Fuente confidencial",
    "Playa El Secreto", "En Colombia", "Entre Colombia y Panamá", "EE.UU.", "Usa",
]
# Legitimate text the read field's guards refused: a Persian name with ZWNJ, Arabic with RLM, Word's soft hyphen,
# signs and ligatures, Greek and Russian names, and a long remark.
LEGITIMATE = [
    "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627", "\u200f\u0645\u062d\u0645\u062f \u0623\u062d\u0645\u062f\u200f",
    "Coordinaci\u00adón con Fuerza Pública", "Yamaha\u2122", "Lancha \u2116 3", "Con\ufb01rmado por radio",
    "\u0393\u03b9\u03ac\u03bd\u03bd\u03b7\u03c2", "\u0418\u0432\u0430\u043d \u041f\u0435\u0442\u0440\u043e\u0432",
    "Sin novedad\u200b",
    "Grupo de migrantes cruzó por la trocha sin novedad. " * 200,
]


@pytest.mark.parametrize("cell", [
    *EVERYDAY, *LEGITIMATE, "Sujeto con antecedentes en Colombia, viaja solo", "A1-334", "les fue negada la entrada",
    "Ministerio Público de Colombia", "cruce por paso no autorizado", "nivel del río alto", "sin novedad", "X",
    "Solamente Panamá", "Países: COL, USA", "U.S.A.", "PAN",
])
def test_everyday_prose_and_places_in_an_ignored_cell_are_dropped(cell: str, config: AdaptersConfig,
                                                                  vocab: Vocabulary) -> None:
    """Prose holding a marking word among others, a partner or country alone (a destination or nationality column
    holds them), and text with format characters or signs of its own are no marking: the row is published."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is None, result.error


@pytest.mark.parametrize("value", ["No difundir", "NO_DIFUNDIR", "Ninguno", "Secreto (S)", "SOLOPANAMA",
                                   {"destino": "REL TO USA"}, "SE\u00adCRETO", ["ok", "\u0422L\u0420"]])
def test_a_json_adapter_refuses_the_no_release_labels_and_disguises(value: Any, config: AdaptersConfig,
                                                                    vocab: Vocabulary) -> None:
    """SENAN knows 'No difundir' as SENAFRONT does; an ignored key's value is read the same way, and a destination
    alone passes."""
    ctx = _ctx(config, vocab, "SENAN", ignored_keys=("embarcacion.motores", "carga[].peso_kg"))
    assert _senan("dos motores", ctx).error is None
    assert _senan({"destino": "EE.UU."}, ctx).error is None
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
