"""An ignored column or key named like a marking, in Spanish or English, abbreviated or inflected, or with another
script's letters or signs beside its name, stops the adapter before any record: markings are never ignored. A name
that only shares letters with a marking word ('Consecutivo', 'Marca del vehículo') is no marking, and is ignored."""

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
    "Consentimiento", "Consent", "Originador", "Originator", "Marking", "Marcado", "Restricciones", "Restriction",
    "Grading", "Reliability", "Credibilidad", "Evaluación de la fuente", "Advertencia", "Dif.", "Rel", "Liberable",
    "Nivel de seguridad", "Subclasificación", "NOFORN", "Clasificación de seguridad", "REL TO (2024)",
    "Rel. to otros", "Rel.to old", "releasableTo", "nivelClasificacion", "Sec.", "Conf.", "Clas. anterior",
    "Reservado", "Secreto", "Confidencial", "Desclasificado", "TLP", "Difusión (antigua)",
    "Dist.",  # may abbreviate Distribución as well as Distrito: refused, as an abbreviation that may be a marking is
])
def test_an_ignored_column_named_like_a_marking_is_refused(column: str, config: AdaptersConfig,
                                                           vocab: Vocabulary) -> None:
    """Any column holding a marking word, in any form a person writes it (inflected, abbreviated with a dot, in
    camelCase, inside a compound), or a word of a marking column the adapter reads, is taken for a renamed marking:
    ignored, the battalion's defaults would decide who receives the report."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,))
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(get("senafront"), ctx)
    data = (HEADER.format(extra=column) + "\n" + ROW + "\n").encode()
    with pytest.raises(ConfigError):  # before a record is read: its cell would be dropped, the defaults used
        next(convert(get("senafront"), io.BytesIO(data), ctx))


def _written(alias: str) -> list[str]:
    """How an export may write a marking column ``alias`` (norm_key form) renamed: the alias with a word added, and
    each of its words that names a marking alone, with a word added (so that none is a column the adapter reads)."""
    words = [w for w in alias.split("_") if len(w) >= 3 and w not in {"CODIGO", "TEXTO", "DEL"}]
    return [f"{alias.replace('_', ' ').title()} anterior", *(f"{w.lower()} anterior" for w in words)]


@pytest.mark.parametrize("column", sorted({c for alias in get("senafront").marking_columns for c in _written(alias)}))
def test_an_ignored_column_named_like_the_adapters_own_marking_column_is_refused(
        column: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """The words of the marking columns the adapter reads ('Código de manejo', 'Liberable a', 'REL TO') are marking
    words: a column holding one is that marking renamed."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,))
    with pytest.raises(ConfigError, match=r"looks like the marking column \w+, and markings are never ignored"):
        check_ignored(get("senafront"), ctx)


@pytest.mark.parametrize("column", ["REL TO", "Rel. to", "Código de manejo", "Liberable a", "Difusión", "Caveats"])
def test_an_ignored_column_the_adapter_reads_as_a_marking_is_refused(column: str, config: AdaptersConfig,
                                                                     vocab: Vocabulary) -> None:
    """A marking column as the adapter reads it is refused too, as a column the adapter reads."""
    with pytest.raises(ConfigError, match="is a column this adapter reads"):
        check_ignored(get("senafront"), _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,)))


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


@pytest.mark.parametrize("key", ["clasificacion", "difusion", "embarcacion.caveats", "consentimiento",
                                 "embarcacion.relTo", "embarcacion.nivel_clasificacion", "carga[].restricciones"])
def test_an_ignored_key_named_like_a_marking_is_refused(key: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Outside a block of markings too, a key named like a marking is never ignored (a marking moved out of
    'marcado' would be dropped, and the defaults used)."""
    with pytest.raises(ConfigError, match="markings are never ignored"):
        check_ignored(get("senan"), _ctx(config, vocab, "SENAN", ignored_keys=(key,)))


@pytest.mark.parametrize("column", [
    "Código interno", "#", "Distrito", "Foto", "Notas del operador", "Calle", "Evacuación", "Sistema de origen",
    "Clase de vehículo",
    # words that share letters with a marking word, and name nothing of the kind
    "Consecutivo", "Marca del vehículo", "Marca", "Contacto con", "Seguro", "Crédito", "Confianza", "Conservación",
    "Secretaría", "Mar territorial", "Relato", "Relación con el caso",
])
def test_columns_about_something_else_may_still_be_ignored(column: str, config: AdaptersConfig,
                                                           vocab: Vocabulary) -> None:
    """A column plainly about something else is still ignored: its cells are read by no one, the record published."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=(column,))
    check_ignored(get("senafront"), ctx)
    data = (HEADER.format(extra=column) + "\n" + ROW.replace(";SECRETO", ";ver anexo 3") + "\n").encode()
    results = list(convert(get("senafront"), io.BytesIO(data), ctx))
    assert len(results) == 1 and results[0].error is None, results[0].error


@pytest.mark.parametrize("key", ["embarcacion.marca", "consecutivo", "embarcacion.secretaria", "carga[].seguro"])
def test_keys_about_something_else_may_still_be_ignored(key: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """A key that only shares letters with a marking word (a vessel's 'marca', a 'consecutivo') is no marking."""
    check_ignored(get("senan"), _ctx(config, vocab, "SENAN", ignored_keys=(key,)))
