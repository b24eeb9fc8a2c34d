"""A marking stated as empty or blank text is refused as blank, every marking alike: taken for absent it took the
agency's default, which may be wider than what the lost value said (a SECRETO read as SENAN's CONFIDENCIAL, an H2 as
H0). Only a marking left out, or null, takes the default; a SENAFRONT cell left empty is absent, as before."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters.config import Context
from adapters.core import MARKING_FIELDS, markings
from adapters.senan import MARKING_KEYS
from puente.errors import AdapterError

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _first(name: str) -> dict[str, Any]:
    """The first sample record of adapter ``name``, parsed."""
    if name == "senan":
        return json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0])
    return json.loads((SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0])


@pytest.mark.parametrize("name", MARKING_FIELDS)
@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_markings_refuses_every_empty_or_blank_marking(name: str, blank: str,
                                                       ctx_for: Callable[[str], Context]) -> None:
    """Each marking field given as empty or blank text is refused as blank, naming it; null keeps the default."""
    ctx = ctx_for("SENAN")
    with pytest.raises(AdapterError) as refused:
        markings(ctx, {name: blank})
    assert refused.value.reason == f.MISSING_FIELD and str(refused.value).startswith(f"{name} is blank")
    assert markings(ctx, {name: None}) == markings(ctx, {})


@pytest.mark.parametrize("adapter", ["senan", "snm"])
@pytest.mark.parametrize("key", sorted(MARKING_KEYS))
def test_an_empty_key_in_a_marking_block_is_refused_not_defaulted(adapter: str, key: str,
                                                                  run: Callable[..., list[Any]]) -> None:
    """'marcado': {'clasificacion': ''} is refused, as a blank 'difusion' is; the key left out or null publishes
    the record with the agency's default."""
    doc = _first(adapter)
    doc.setdefault("marcado", {})[key] = ""
    result = run(adapter, json.dumps(doc).encode() + b"\n")[0]
    assert result.alert is None and result.error is not None and result.error.reason == f.MISSING_FIELD
    assert f"{MARKING_KEYS[key]} is blank" in str(result.error) or f"marcado.{key} is blank" in str(result.error)
    for absent in (None, ...):
        if absent is None:
            doc["marcado"][key] = None
        else:
            del doc["marcado"][key]
        result = run(adapter, json.dumps(doc).encode() + b"\n")[0]
        assert result.error is None, (absent, result.error)


def test_an_empty_secret_classification_does_not_become_the_default(run: Callable[..., list[Any]]) -> None:
    """The reviewer's case: SENAN's default is CONFIDENCIAL, so an emptied SECRETO must be refused, not lowered."""
    doc = _first("senan")
    doc["marcado"] = {"clasificacion": "SECRETO", "manejo": "H2", "calificacion": "E5"}
    assert run("senan", json.dumps(doc).encode() + b"\n")[0].alert["markings"]["classification"] == "SECRETO"
    for key in ("clasificacion", "manejo", "calificacion"):
        emptied = {**doc, "marcado": {**doc["marcado"], key: ""}}
        result = run("senan", json.dumps(emptied).encode() + b"\n")[0]
        assert result.alert is None and result.error is not None and result.error.reason == f.MISSING_FIELD, key


def test_an_empty_senafront_marking_cell_still_takes_the_default(run: Callable[..., list[Any]],
                                                                 ctx_for: Callable[[str], Context]) -> None:
    """A CSV cell left empty is absent, by SENAFRONT's convention: every marking column empty gives the defaults."""
    header = ("N° Informe;Fecha;Hora;Tipo de evento;Clasificación;Difusión;Advertencias;Manejo;Texto de manejo;"
              "Calificación")
    result = run("senafront", f"{header}\r\nSF-1;02/11/2026;05:15;Cruce irregular;;;;;;\r\n".encode())[0]
    assert result.error is None and result.alert is not None, result.error
    default = markings(ctx_for("SENAFRONT"), {})
    assert {k: v for k, v in result.alert["markings"].items() if k not in ("originator", "review_at")} == \
           {k: v for k, v in default.items() if k not in ("originator", "review_at")}
