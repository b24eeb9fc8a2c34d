"""A blank marking is refused naming it as the record does ('marcado.clasificacion', SENAFRONT's 'Manejo'), with
advice that fits the record: a CSV row can only leave its cell empty (a cell [] is refused), a JSON record leaves the
key out or null, and a later version takes no default."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
HEADER = ("N° Informe;Fecha;Hora;Tipo de evento;Clasificación;Difusión;Advertencias;Manejo;Texto de manejo;"
          "Calificación")


@pytest.mark.parametrize(("cell", "column"), [(0, "Clasificación"), (2, "Advertencias"), (3, "Manejo"),
                                              (4, "Texto de manejo"), (5, "Calificación")])
def test_a_blank_senafront_marking_cell_is_named_by_its_header(cell: int, column: str,
                                                               run: Callable[..., list[Any]]) -> None:
    """The message names the column as the header does and says only what a CSV can do: leave the cell empty."""
    cells = [""] * 6
    cells[cell] = "  "
    data = f"{HEADER}\r\nSF-1;02/11/2026;05:15;Cruce irregular;{';'.join(cells)}\r\n".encode()
    error = run("senafront", data)[0].error
    assert error is not None and str(error) == f"{column} is blank: leave its cell empty for the agency's default"


def test_a_blank_senan_marking_is_named_by_its_key(run: Callable[..., list[Any]]) -> None:
    """SENAN names marcado.clasificacion, as SNM and COMBIFRON name theirs, and speaks of keys, not CSV cells."""
    doc = json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0])
    doc["marcado"] = {"clasificacion": ""}
    error = run("senan", json.dumps(doc).encode())[0].error
    assert error is not None
    assert str(error) == "marcado.clasificacion is blank: leave it out (or null) for the agency's default"


def test_a_blank_marking_in_a_later_version_is_not_told_of_a_default(run: Callable[..., list[Any]]) -> None:
    """A revision takes no default: a blank handling text is told that leaving it out means none."""
    line = (SAMPLES / "combifron" / "revisiones-colombia-2026-11.jsonl").read_bytes().splitlines()[0]
    doc = json.loads(line)
    doc["restricciones"]["texto_manejo"] = ""
    error = run("combifron", json.dumps(doc).encode() + b"\n")[0].error
    assert error is not None and str(error) == "restricciones.texto_manejo is blank: leave it out (or null) for none"
