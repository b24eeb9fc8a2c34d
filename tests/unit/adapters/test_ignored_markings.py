"""An ignored column or key named like a marking, in Spanish or English, abbreviated or inflected, or with another
script's letters or signs beside its name, stops the adapter before any record: markings are never ignored."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.config import AdaptersConfig, Context, Vocabulary, make_context
from adapters.core import check_ignored, convert
from adapters.registry import get
from puente.errors import ConfigError

HEADER = "N° Informe;Fecha;Hora;Tipo de evento;{extra}"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # as the adapter tests run: every shipped agreement in force
ROW = "IP-DAR-2026-000412;03/11/2026;06:40;Flujo migratorio;SECRETO"


def _ctx(config: AdaptersConfig, vocab: Vocabulary, agency: str, **update: Any) -> Context:
    profile = config.agencies[agency].model_copy(update=update)
    return make_context(agency, NOW, config.model_copy(update={"agencies": {**config.agencies, agency: profile}}),
                        vocab)


@pytest.mark.parametrize("column", [
    "Releasable to", "Release", "Caveat", "Caveats (old)", "Clasif.", "Classification", "Handling", "Handling code",
    "Consentimiento", "Consent", "Originador", "Originator", "Marca", "Marking", "Restricciones", "Restriction",
    "Grading", "Reliability", "Credibilidad", "Evaluación de la fuente", "Advertencia", "Dif.", "Rel", "Liberable",
    "Nivel de seguridad", "Subclasificación", "NOFORN",
])
def test_an_ignored_column_named_like_a_marking_is_refused(column: str, config: AdaptersConfig,
                                                           vocab: Vocabulary) -> None:
    """Any column whose words share a stem with a marking word (or a word of a marking column the adapter reads) is
    taken for a renamed marking: ignored, the battalion's defaults would decide who receives the report."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,))
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(get("senafront"), ctx)
    data = (HEADER.format(extra=column) + "\n" + ROW + "\n").encode()
    with pytest.raises(ConfigError):  # before a record is read: its cell would be dropped, the defaults used
        next(convert(get("senafront"), io.BytesIO(data), ctx))


@pytest.mark.parametrize(("agency", "update"), [
    ("SENAFRONT", {"ignored_columns": ("Notas Иван",)}),
    ("SENAFRONT", {"ignored_columns": ("Notas ✓",)}),
    ("SENAFRONT", {"ignored_columns": ("Foto ٨١٢٣",)}),
    ("SENAN", {"ignored_keys": ("embarcacion.motores ✓",)}),
    ("SNM", {"ignored_keys": ("sistema — Иван",)}),
])
def test_an_ignored_name_with_another_scripts_letters_or_signs_is_refused(
        agency: str, update: dict[str, Any], config: AdaptersConfig, vocab: Vocabulary) -> None:
    """An entry holding, beside its words, what the lookup form folds away names no column or key as written: it
    passes the guard every code passes, or the adapter does not start."""
    adapter = get(next(n for n in ("senafront", "senan", "snm") if get(n).agency == agency))
    with pytest.raises(ConfigError, match="holds letters, digits or signs"):
        check_ignored(adapter, _ctx(config, vocab, agency, **update))


@pytest.mark.parametrize("key", ["clasificacion", "difusion", "embarcacion.caveats", "consentimiento"])
def test_an_ignored_key_named_like_a_marking_is_refused(key: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Outside a block of markings too, a key named like a marking is never ignored (a marking moved out of
    'marcado' would be dropped, and the defaults used)."""
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(get("senan"), _ctx(config, vocab, "SENAN", ignored_keys=(key,)))


@pytest.mark.parametrize("column", ["Código interno", "#", "Distrito", "Foto", "Notas del operador", "Calle",
                                    "Evacuación", "Sistema de origen", "Clase de vehículo"])
def test_columns_about_something_else_may_still_be_ignored(column: str, config: AdaptersConfig,
                                                           vocab: Vocabulary) -> None:
    """A column plainly about something else is still ignored: its cells are read by no one, the record published."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,))
    check_ignored(get("senafront"), ctx)
    data = (HEADER.format(extra=column) + "\n" + ROW + "\n").encode()
    results = list(convert(get("senafront"), io.BytesIO(data), ctx))
    assert len(results) == 1 and results[0].error is None, results[0].error
