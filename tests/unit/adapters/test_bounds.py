"""The adapters publish nothing the broker refuses for its size (``schemas.bounds``)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from adapters import _fields as f
from adapters._codes import ISO_ALPHA3
from adapters.config import AdaptersConfig, Context, Limits, Vocabulary, make_context
from adapters.core import Result, convert
from adapters.registry import get
from schemas import bounds

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HEADER = ("N° Informe;Fecha;Hora;Provincia;Sector;Lugar;Latitud;Longitud;Tipo de evento;Cantidad de personas;"
          "Dirección;Nacionalidades;Unidad;Observaciones;Clasificación;Difusión;Manejo;Calificación")


def _row(nationalities: list[str]) -> str:
    return ("IP-DAR-2026-000412;03/11/2026;06:40;Darién;Bajo Chiquito;Bajo Chiquito;8°02'24\"N;77°36'00\"O;"
            f"Flujo migratorio;240;Norte;{', '.join(nationalities)};Patrulla Tigre 3;Grupo.;;;;")


@pytest.mark.parametrize("extra", [0, 1])
def test_an_adapter_refuses_what_the_broker_would(ctx_for: Callable[[str], Context], extra: int) -> None:
    """A patrol report naming more nationalities than the broker admits is refused at its line, as too long,
    naming the field and the bound; at the bound it is published."""
    codes = sorted(ISO_ALPHA3)[: bounds.MAX_NATIONALITIES_OBSERVED + extra]
    data = ("\r\n".join([HEADER, _row(codes)]) + "\r\n").encode("utf-8-sig")
    [result] = convert(get("senafront"), io.BytesIO(data), ctx_for("SENAFRONT"))
    if not extra:
        assert result.error is None and result.alert is not None
        assert bounds.bounds_problem(result.alert) is None
        return
    assert result.error is not None and result.item.line == 2 and result.error.reason == f.TOO_LONG
    assert str(result.error) == (f"payload.nationalities_observed has {len(codes)} entries; at most "
                                 f"{bounds.MAX_NATIONALITIES_OBSERVED} are accepted")


@pytest.mark.parametrize(("name", "bound"), [("remarks", bounds.REMARKS), ("name", bounds.NAME),
                                             ("document", bounds.DOCUMENT), ("summary", bounds.SUMMARY)])
def test_a_text_limit_may_be_lowered_never_raised_past_the_brokers(name: str, bound: int) -> None:
    """agencies.yaml may lower a field's limit; one above the broker's bound is refused where it is configured,
    rather than every long value being published only to be dead-lettered."""
    assert getattr(Limits.model_validate({name: bound}), name) == bound
    assert getattr(Limits.model_validate({name: 10}), name) == 10
    with pytest.raises(ValidationError):
        Limits.model_validate({name: bound + 1})


def test_the_shipped_limits_are_within_the_brokers() -> None:
    """The default limits are the bounds the broker holds alerts to (or within them)."""
    limits = Limits()
    assert (limits.remarks, limits.name, limits.place, limits.unit) == (bounds.REMARKS, bounds.NAME, bounds.PLACE,
                                                                        bounds.UNIT)
    assert limits.summary <= bounds.SUMMARY and limits.document <= bounds.DOCUMENT and limits.code <= bounds.PORT


def test_a_summary_over_a_lowered_limit_is_refused_never_cut(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """The summary an adapter writes ('Flujo migratorio de 1534 personas en Yaviza') over a limits.summary lowered in
    agencies.yaml is refused as too-long, saying the setting, never cut to 'Flujo migratorio de 15'; at its length
    it is published whole."""
    data = "N° Informe;Fecha;Hora;Lugar;Tipo de evento;Cantidad de personas\r\nIP-1;14/11/2026;20:54;Yaviza;" \
           "Flujo migratorio;1534\r\n".encode()
    whole = "Flujo migratorio de 1534 personas en Yaviza"

    def summary(limit: int) -> Result:
        changed = config.model_copy(update={"limits": config.limits.model_copy(update={"summary": limit})})
        [result] = convert(get("senafront"), io.BytesIO(data), make_context("SENAFRONT", NOW, changed, vocab))
        return result

    published = summary(len(whole)).alert
    assert published is not None and published["summary"] == whole
    for limit in (20, len(whole) - 1):
        refused = summary(limit)
        assert refused.alert is None and refused.error is not None and refused.error.reason == f.TOO_LONG
        assert f"limits.summary in agencies.yaml allows {limit}" in str(refused.error)
        assert "Yaviza" not in str(refused.error) and "1534" not in str(refused.error)
