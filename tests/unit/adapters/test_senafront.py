"""SENAFRONT patrol-report CSV -> BORDER_EVENT: headers, dates, positions, remarks and markings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters import _fields as f

HEADER = ("N° Informe;Fecha;Hora;Provincia;Sector;Lugar;Latitud;Longitud;Tipo de evento;Cantidad de personas;"
          "Dirección;Nacionalidades;Unidad;Observaciones;Clasificación;Difusión;Manejo;Calificación")
ROW = ("IP-DAR-2026-000412;03/11/2026;06:40;Darién;Bajo Chiquito;Bajo Chiquito;8°02'24\"N;77°36'00\"O;"
       "Flujo migratorio;240;Norte;venezolanos, HTI;Patrulla Tigre 3;\"Grupo con 31 menores.\nSe informó al SNM.\";;;;")


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8-sig")


def test_a_patrol_report_becomes_a_border_event(one: Callable[..., dict[str, Any]]) -> None:
    """Every column lands in its place: Panama time to UTC, DMS to decimal, labels to codes, remarks kept."""
    alert = one("senafront", _csv(ROW))
    assert alert["alert_id"] == "SENAFRONT:IP-DAR-2026-000412"
    assert alert["occurred_at"] == datetime(2026, 11, 3, 11, 40, tzinfo=UTC)
    assert alert["location"] == {"latitude": 8.04, "longitude": -77.6, "province": "DARIEN",
                                 "border_sector": "DARIEN_BAJO_CHIQUITO", "place_name": "Bajo Chiquito"}
    p = alert["payload"]
    assert (p["event_type"], p["headcount"], p["direction"]) == ("MIGRANT_FLOW", 240, "NORTHBOUND")
    assert p["nationalities_observed"] == ["VEN", "HTI"]
    assert p["remarks"] == "Grupo con 31 menores.\nSe informó al SNM."
    assert alert["summary"] == "Flujo migratorio de 240 personas en Bajo Chiquito"
    assert alert["markings"]["classification"] == "RESTRINGIDO"  # the battalion's default


def test_other_battalions_headers_and_commas_are_understood(one: Callable[..., dict[str, Any]]) -> None:
    """'No. Informe', 'Fecha del evento', 'Sentido', ',' as delimiter and decimal degrees all work."""
    header = "No. Informe,Fecha del evento,Hora del evento,Provincia o comarca,Localidad,Lat,Long,Tipo,Personas,Sentido"
    alert = one("senafront", _csv("BOC-1,02/11/2026,05:15,Chiriquí,Paso Canoas,8.5312,-82.8421,Cruce,37,Hacia Panamá",
                                  header=header))
    assert alert["payload"]["direction"] == "INTO_PANAMA" and alert["location"]["province"] == "CHIRIQUI"


def test_marking_columns_override_and_solo_panama_adds_the_caveat(one: Callable[..., dict[str, Any]]) -> None:
    """Filled marking cells replace the defaults; 'SOLO PANAMÁ' empties REL TO and adds PANAMA_ONLY."""
    marked = one("senafront", _csv(ROW[:-4] + ";Confidencial;REL TO COL, USA;H1;C3"))["markings"]
    assert (marked["classification"], marked["releasable_to"], marked["handling_code"]) == (
        "CONFIDENCIAL", ["COL", "USA"], "H1")
    domestic = one("senafront", _csv(ROW[:-4] + ";;SOLO PANAMÁ;;"))["markings"]
    assert domestic["releasable_to"] == [] and domestic["caveats"] == ["LES", "PANAMA_ONLY"]
    # A caveat cell beside it is read as codes (it was taken letter by letter, and the report refused).
    both = one("senafront", _csv(ROW[:-4] + ";;SOLO PANAMÁ;;;LES, ORCON", header=HEADER + ";Advertencias"))
    assert both["markings"]["caveats"] == ["LES", "ORCON", "PANAMA_ONLY"]


def test_report_date_without_time_is_not_before_the_event(one: Callable[..., dict[str, Any]]) -> None:
    """A report date alone means that day, but never earlier than the event itself."""
    header = HEADER + ";Fecha del informe"
    alert = one("senafront", _csv(ROW + ";03/11/2026", header=header))
    assert alert["reported_at"] == alert["occurred_at"]


def test_a_report_time_without_its_date_is_refused_not_dropped(run: Callable[..., list[Any]]) -> None:
    """A report time with no report date was never read, whatever it held: the row is refused, naming both."""
    header = HEADER + ";Fecha del informe;Hora del informe"
    for time in ("09:15", "99:99"):
        err = run("senafront", _csv(ROW + f";;{time}", header=header))[0].error
        assert err is not None and err.reason == f.MISSING_FIELD, err
        assert "Hora del informe" in str(err) and "Fecha del informe" in str(err) and time not in str(err)


def test_a_cell_of_blanks_is_refused_as_blank_not_read_as_empty(run: Callable[..., list[Any]]) -> None:
    """An empty cell is absent (the battalion's default, no report date); a cell of blanks only, in any column read,
    is refused as blank, naming the column: a Difusión of spaces must not give the default release."""
    header = HEADER + ";Fecha del informe;Hora del informe"
    assert ROW.endswith('";;;;')  # Clasificación, Difusión, Manejo, Calificación: empty

    def row(cell: int, value: str) -> str:  # the cell-th of those four and the two report cells set to value
        cells = [""] * 6
        cells[cell] = value
        return ROW.removesuffix(";;;;") + ";" + ";".join(cells)

    assert run("senafront", _csv(row(0, ""), header=header))[0].error is None
    # the markings are named as markings() names them
    for cell, column in enumerate(("Clasificación", "Difusión", "Manejo", "Calificación", "Fecha del informe",
                                   "Hora del informe")):
        for blank in (" ", "\t", "   "):
            err = run("senafront", _csv(row(cell, blank), header=header))[0].error
            assert err is not None and err.reason == f.MISSING_FIELD, (column, blank)
            assert str(err).startswith(f"{column} is blank"), str(err)



def test_a_header_without_required_columns_refuses_the_file(run: Callable[..., list[Any]]) -> None:
    """One dead letter for the whole file (record 0), naming the missing column; no row is read."""
    results = run("senafront", _csv(ROW, header=HEADER.replace("Fecha;", "")))
    assert len(results) == 1 and results[0].item.number == 0
    assert results[0].error.reason == f.MISSING_COLUMN and "FECHA" in str(results[0].error)


def test_row_with_missing_fields_is_refused_alone(run: Callable[..., list[Any]]) -> None:
    """A short row is missing-column; the rows around it are published."""
    results = run("senafront", _csv(ROW, "IP-2;03/11/2026;06:40", ROW.replace("000412", "000413")))
    assert [r.error.reason if r.error else "ok" for r in results] == ["ok", f.MISSING_COLUMN, "ok"]
    assert [r.item.line for r in results] == [2, 4, 5]  # the quoted remark spans lines 2 and 3


def test_a_file_cut_after_a_delimiter_is_refused_not_given_default_markings(
        run: Callable[..., list[Any]]) -> None:
    """A last row without its line end was cut (or is still being written): its last cells may be lost, and one
    lost just after a delimiter would read as empty and take the default markings, a wider release. It is
    refused as truncated; the complete file publishes the row with its own markings."""
    whole = _csv(ROW, ROW.replace("000412", "000413")[:-4] + ";Confidencial;SOLO PANAMÁ;H1;C3")
    for cut in (whole[:whole.rindex(b";") + 1], whole[:-2]):
        assert [r.error.reason if r.error else "ok" for r in run("senafront", cut)] == ["ok", f.TRUNCATED]
    results = run("senafront", whole)
    assert [r.alert["markings"]["releasable_to"] if r.alert else None for r in results] == [
        ["COL", "CRI", "USA", "FEAN"], []]


def test_a_stray_quote_refuses_its_row_with_the_next_not_publishes_one_with_the_others_markings(
        run: Callable[..., list[Any]]) -> None:
    """A remark typed '"Fuente humana' opens a quoted cell that the next row's first quoted cell closes: both rows
    are refused as one syntax error, naming their lines; a lenient read published the first row with the second
    row's empty (default, wider) marking cells and its own SECRETO as remark text, and the second row vanished."""
    stray = ROW[:ROW.index(';"Grupo')] + ';"Fuente humana;Secreto;SOLO PANAMÁ;H2;'
    second = ROW.replace("000412", "000413").replace('"Grupo con 31 menores.\nSe', '"Dijo ""hola"" y se fue. Se')
    results = run("senafront", _csv(stray, second))
    assert [(r.alert, r.error.reason if r.error else None) for r in results] == [(None, f.SYNTAX)]
    assert "lines 2-3" in str(results[0].error) and "Fuente" not in str(results[0].error)


def test_a_stray_quote_closed_by_the_next_rows_remark_refuses_both_rows_naming_their_lines(
        run: Callable[..., list[Any]]) -> None:
    """A remark typed '"Fuente humana' opens a quoted cell that the next row's remark 'Tubo de 12"' closes, as
    strict CSV allows, in a record of the header's width: it is refused as syntax naming lines 2-3 and no value,
    since line 3 holds a row's delimiters; it was published with the second row's empty (default, wider) marking
    cells, SECRETO and SOLO PANAMÁ sent on as remark text, and the second row vanished."""
    plain = ROW.replace("8°02'24\"N;77°36'00\"O", "8.04;-77.6")  # no quote before the remark to end the cell
    stray = plain[:plain.index(';"Grupo')] + ';"Fuente humana;Secreto;SOLO PANAMÁ;H2;'
    second = plain.replace("000412", "000413")[:plain.index(';"Grupo')] + ';Tubo de 12";;;;'
    results = run("senafront", _csv(stray, second))
    assert [(r.alert, r.error.reason if r.error else None) for r in results] == [(None, f.SYNTAX)]
    err = str(results[0].error)
    assert "lines 2-3" in err and "Fuente" not in err and "Tubo" not in err


def test_a_stray_quote_outside_the_remarks_refuses_its_row_alone(run: Callable[..., list[Any]]) -> None:
    """Only the remarks may span lines: a place typed '"Bajo Chiquito' opens a cell that ends with its line, so
    its row is refused as syntax, naming the column, and the next row, whose place 'Km 12"' closed that cell as
    strict CSV allows, is read on its own and published; the two were read as one row, refused for its place
    (the rest of the first row, a line break and the start of the second), and the second row never read."""
    plain = ROW.replace("8°02'24\"N;77°36'00\"O", "8.04;-77.6").replace(
        '"Grupo con 31 menores.\nSe informó al SNM.";;;;', "Sin novedad;;;;")
    stray = plain.replace(";Bajo Chiquito;8.04", ';"Bajo Chiquito;8.04').replace(";;;;", ";Secreto;SOLO PANAMÁ;H2;")
    second = plain.replace("000412", "000413").replace(";Bajo Chiquito;8.04", ';Km 12";8.04')
    results = run("senafront", _csv(stray, second))
    assert [(r.item.line, r.error.reason if r.error else None) for r in results] == [(2, f.SYNTAX), (3, None)]
    assert "column 6" in str(results[0].error) and "Bajo" not in str(results[0].error)
    assert results[1].alert["alert_id"] == "SENAFRONT:IP-DAR-2026-000413"
    assert results[1].alert["location"]["place_name"] == 'Km 12"'


def test_a_handling_text_column_needs_handling_code_h3(reason: Callable[..., str]) -> None:
    """A restriction stated in the handling-text column with the Manejo column empty (H0) is refused, not dropped."""
    assert reason("senafront", _csv(ROW + ";Consultar a SENAFRONT antes de usar",
                                    header=HEADER + ";Texto de manejo")) == f.INVALID
