"""A stray quote the file never closes: refused for what it is when a row was taken in, held as cut only if not."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from adapters import _fields as f
from adapters._readers import csv_rows
from puente.errors import AdapterError

HEADER = "N° Informe;Fecha;Hora;Tipo de evento;Cantidad de personas;Latitud;Longitud;Difusión;Observaciones\n"


def _row(i: int, remark: str = "ok") -> str:
    return f"A-{i};14/11/2026;20:54;Cruce;3;8.5;-77.5;;{remark}\n"


def test_a_stray_quote_taking_rows_to_the_end_is_syntax_not_cut(run: Callable[..., list[Any]]) -> None:
    """A remark opening with a quote that never closes takes every later row; at the file's end it was reported
    truncated and cut, so a watcher held it for ever. A row it took in holds a row's delimiters: it is the
    crowded syntax refusal, not cut, naming the record's lines, and counted once."""
    data = (HEADER + _row(1, '"Fuente humana') + "".join(_row(i) for i in range(2, 6))).encode()
    results = run("senafront", data)
    assert len(results) == 1
    err = results[0].error
    assert err is not None and err.reason == f.SYNTAX and not err.cut, err
    assert "lines 2-6" in str(err) and "line 3" in str(err) and "Fuente" not in str(err)


def test_a_quoted_cell_the_file_stops_within_is_still_cut_when_no_row_was_taken_in() -> None:
    """A remark whose closing quote is not written yet (the file still being written) stays truncated and cut."""
    rows = list(csv_rows(io.BytesIO((HEADER + _row(1, '"Fuente\nhumana')).encode()), "utf-8", 10_000,
                         lambda header: [len(header) - 1]))
    err = rows[-1][2]
    assert isinstance(err, AdapterError) and err.reason == f.TRUNCATED and err.cut


def test_a_crowded_record_too_long_at_the_end_is_too_long_not_cut() -> None:
    """Over the record limit as well, it is refused as too long, as it would be had it closed, and not cut."""
    data = (HEADER + _row(1, '"Fuente humana') + "".join(_row(i) for i in range(2, 60))).encode()
    rows = list(csv_rows(io.BytesIO(data), "utf-8", 1000, lambda header: [len(header) - 1]))
    err = rows[-1][2]
    assert isinstance(err, AdapterError) and err.reason == f.TOO_LONG and not err.cut


def test_a_stray_quote_in_a_middle_column_closed_in_the_next_row_s_same_column_is_refused(
        run: Callable[..., list[Any]]) -> None:
    """A guard for any change to how a taken-in line is counted: a stray quote in column 3 takes in the next row up
    to a quote closing that row's column 3, giving a record of the header's width whose Difusión is the second
    row's (COL) and whose remark holds the first row's SOLO PANAMA. Inside the cell the second line holds only 2
    delimiters; the whole line holds a row's 5, and that refuses it."""
    header = "N° Informe;Fecha;Observaciones;Hora;Tipo de evento;Difusión\n"
    data = (header + 'A-1;14/11/2026;"Fuente humana;20:54;Cruce;SOLO PANAMA\n'
                     'A-2;14/11/2026;x";20:54;Cruce;COL\n').encode()
    results = run("senafront", data)
    assert len(results) == 1 and results[0].alert is None
    err = results[0].error
    assert err is not None and err.reason == f.SYNTAX and "takes in line 3" in str(err), err
