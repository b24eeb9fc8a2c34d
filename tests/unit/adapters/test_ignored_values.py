"""An ignored column or key is dropped only when what it holds cannot be a marking. Its name is held, before any
record, against every marking the policy and the adapter know ('Solo Panamá', 'PII', 'Países autorizados'), and each
record's ignored cell or key value too: one that holds a token nobody writes in prose (NOFORN, SOLO_PANAMA, REL TO
COL...) or is wholly a marking (a level, handling code, grading, caveat or no-release label, with filler) refuses the
record, naming the column or key, never the value; a partner or country alone does not. Listed under ignored_columns,
a 'Solo Panamá' = X and a 'Países autorizados' = PAN released a report to the battalion's defaults (COL, CRI, USA,
FEAN)."""

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
    results = list(convert(get("senafront"), io.BytesIO(data), ctx))
    assert len(results) == 1
    return results[0]


@pytest.mark.parametrize("column", [
    "Solo Panamá", "solo panama", "SOLO_PANAMA", "No difundir", "PII", "les", "Panama only", "PANAMA_ONLY",
    "Distribución", "Destinatarios", "Países autorizados", "Compartir con", "Nivel", "Nivel de acceso", "USA", "FEAN",
    "Colombia", "Costa Rica", "Público", "H2", "B2",
])
def test_an_ignored_column_named_like_a_known_marking_is_refused(column: str, config: AdaptersConfig,
                                                                 vocab: Vocabulary) -> None:
    """The adapter's own release labels, the policy's caveats, levels, handling codes, gradings, partners and
    countries, and the words of a release or level column, accents and case aside, are never ignored."""
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(get("senafront"), _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,)))


@pytest.mark.parametrize("key", ["solo_panama", "embarcacion.pii", "carga[].destinatarios", "nivel",
                                 "paises_autorizados"])
def test_an_ignored_key_named_like_a_known_marking_is_refused(key: str, config: AdaptersConfig,
                                                              vocab: Vocabulary) -> None:
    """The same vocabulary holds for an ignored key's last key."""
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(get("senan"), _ctx(config, vocab, "SENAN", ignored_keys=(key,)))


def test_the_reviewers_configuration_is_refused(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """ignored_columns ['Solo Panamá', 'Países autorizados'] stops the adapter before a record is read."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=("Solo Panamá", "Países autorizados"))
    with pytest.raises(ConfigError) as refused:
        check_ignored(get("senafront"), ctx)
    assert "'Solo Panamá'" in str(refused.value) and "'Países autorizados'" in str(refused.value)


@pytest.mark.parametrize("cell", [
    "REL TO CRI", "Solo Panamá", "solo panama", "SECRETO", "reservada", "PII", "H2", "b2", "X PANAMA_ONLY",
    "Secreto, COL", "Ninguno",
])
def test_an_ignored_cell_that_reads_as_a_marking_refuses_its_row(cell: str, config: AdaptersConfig,
                                                                 vocab: Vocabulary) -> None:
    """A cell of an ignored column that is a level, release, caveat, handling code or grading (a partner or country
    beside it) refuses its row, naming the column as agencies.yaml lists it and never the cell."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.alert is None and result.error is not None and result.error.reason == f.INVALID
    message = str(result.error)
    assert "'Notas'" in message and "ignored_columns" in message and "must be read, not ignored" in message
    assert cell not in message.replace("Notas", "")


@pytest.mark.parametrize("cell", ["", "ver anexo 3", "sin novedad", "12", "PAN", "COL, USA", "FEAN", "Colombia",
                                  "estados unidos", "colombianos"])
def test_an_ignored_cell_that_holds_no_marking_is_dropped(cell: str, config: AdaptersConfig,
                                                          vocab: Vocabulary) -> None:
    """What cannot be a marking is dropped, the row published: a partner or country alone too (a destination or a
    nationality column holds them)."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is None, result.error


@pytest.mark.parametrize(("path", "value"), [
    ("embarcacion.motores", "NOFORN"), ("embarcacion.motores", {"nivel": "SECRETO"}), ("embarcacion.motores", ["H2"]),
    ("embarcacion.motores", {"PII": 1}), ("carga[].peso_kg", "solo Panamá"),
])
def test_an_ignored_key_whose_value_reads_as_a_marking_refuses_the_record(path: str, value: Any,
                                                                          config: AdaptersConfig,
                                                                          vocab: Vocabulary) -> None:
    """An ignored key holding a marking, at any depth of its value (its keys too), refuses the record, naming the
    key's path; a number, or text that is no marking, is still dropped."""
    doc = json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0])
    ctx = _ctx(config, vocab, "SENAN", ignored_keys=("embarcacion.motores", "carga[].peso_kg"))

    def run(put: Any) -> Result:
        if path.startswith("carga"):
            doc["carga"][0]["peso_kg"] = put
        else:
            doc["embarcacion"]["motores"] = put
        return next(convert(get("senan"), io.BytesIO(json.dumps(doc).encode()), ctx))

    result = run(value)
    assert result.alert is None and result.error is not None and result.error.reason == f.INVALID
    where = "carga[0].peso_kg" if path.startswith("carga") else path
    assert f"'{where}'" in str(result.error) and "must be read, not ignored" in str(result.error)
    for harmless in (2, "dos motores", None, "USA", ["COL"]):
        assert run(harmless).error is None, (harmless, run(harmless).error)


def test_the_advice_for_an_unknown_column_or_key_says_to_confirm_it_holds_no_marking(run: Any) -> None:
    """The refusal of an unknown column or key says to ignore it only if it holds no marking, and that one that
    restricts release must be read."""
    csv = run("senafront", (HEADER.replace("Notas", "Solo Panamá") + "\n" + ROW.format(cell="X") + "\n").encode())
    doc = json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0])
    doc["sistema_origen"] = "ops"
    key = run("senan", json.dumps(doc).encode())
    for result in (csv[0], key[0]):
        message = str(result.error)
        assert "ignored_" in message and "and it holds no marking" in message, message
        assert message.index("holds no marking") < message.index("must be read, not ignored")


@pytest.mark.parametrize("cell", [
    "les fue negada la entrada", "Sujeto con antecedentes en Colombia, viaja solo", "A1-334", "X", "", "ver anexo 3",
    "Ministerio Público de Colombia",
])
def test_an_ignored_cell_of_prose_or_an_id_is_dropped(cell: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Text that says more than a marking (a remark naming a country, a common word that is also a code, an id
    beginning like a grading) is no marking written out: an ignored free-text column does not refuse every row."""
    result = _senafront(cell, _ctx(config, vocab, "SENAFRONT", ignored_columns=("Notas",)))
    assert result.error is None and result.alert is not None
