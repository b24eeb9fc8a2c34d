"""SENAFRONT patrol reports: a spreadsheet exported as CSV -> BORDER_EVENT alerts.

The export has Spanish headers (matched without regard to accents, case or spacing, and
under the names different battalions use), ';' or ',' as the delimiter, dates as
dd/mm/yyyy and times as HH:MM in Panama time, positions in decimal degrees or in
degrees-minutes-seconds with N/S and W/O, and free-text remarks that may span lines (no other
cell may: a quoted cell elsewhere that does not close on its line is refused with its row).
Marking columns (Clasificación, Difusión, Manejo, Calificación...) are optional; an empty
cell keeps the battalion's default from ``agencies.yaml``. Empty is a cell with nothing in it
(or ``""``); a cell of blanks only (spaces, a tab) in a column the adapter reads is refused as
blank, as JSON text of blanks is: a spreadsheet writes an empty cell as nothing, and a blank one
says neither a value nor none (a Difusión of spaces taken as empty would give the battalion's
default release, often wider). Cells no field is read from (under no header, or past the
header's last column) are only held to be empty or blank.

A header without a required column makes the file unreadable: one dead letter for the
file, naming the columns, rather than one per row. So does a header column the adapter does
not read (``COLUMNS``), named in the dead letter, unless ``agencies.yaml`` lists it under
SENAFRONT's ``ignored_columns``: a column nobody reads is a field lost without a word, and a
'Clasificación de seguridad' or 'Difusión a' read as nothing would let the battalion's defaults,
often wider, decide who receives the report. So an ignored column's cell is still held against every
marking known (``adapters.core.reads_as_marking``): one that reads as a marking refuses its row.
A column with no header may only hold empty cells.
A header cell holding, beside a column's name, a letter, a digit or a sign of another script
('Difusión — Иван', 'Fecha ✓') refuses the file too, naming the column's place: it passes the
guard every code passes (``adapters.core.plain_name``), as a "Panama only" Difusión does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from adapters import _fields as f
from adapters._codes import norm_key
from adapters._readers import Item, csv_rows, looks_like, no_record, wrong_format
from adapters.config import Context
from adapters.core import (
    DOMESTIC_LABELS,
    RESTRICTS,
    Adapter,
    MarkingVocabulary,
    alert,
    alert_id,
    location,
    lookup,
    marking_vocabulary,
    markings,
    names,
    plain_name,
    refuse_ignored,
)
from puente.errors import AdapterError

# Canonical column -> the headers battalions write for it (in norm_key form).
COLUMNS: dict[str, tuple[str, ...]] = {
    "report": ("N_INFORME", "NO_INFORME", "NRO_INFORME", "NUMERO_DE_INFORME", "NUMERO_INFORME", "INFORME"),
    "date": ("FECHA", "FECHA_DEL_EVENTO", "FECHA_EVENTO"),
    "time": ("HORA", "HORA_DEL_EVENTO", "HORA_EVENTO"),
    "report_date": ("FECHA_DEL_INFORME", "FECHA_INFORME"),
    "report_time": ("HORA_DEL_INFORME", "HORA_INFORME"),
    "province": ("PROVINCIA", "PROVINCIA_COMARCA", "PROVINCIA_O_COMARCA"),
    "sector": ("SECTOR", "SECTOR_FRONTERIZO"),
    "place": ("LUGAR", "LOCALIDAD", "SITIO"),
    "lat": ("LATITUD", "LAT"),
    "lon": ("LONGITUD", "LON", "LONG"),
    "type": ("TIPO_DE_EVENTO", "TIPO_EVENTO", "TIPO", "EVENTO"),
    "headcount": ("CANTIDAD_DE_PERSONAS", "CANTIDAD", "N_PERSONAS", "PERSONAS"),
    "direction": ("DIRECCION", "SENTIDO", "RUMBO"),
    "nationalities": ("NACIONALIDADES", "NACIONALIDAD"),
    "patrol": ("UNIDAD", "PATRULLA"),
    "battalion": ("BATALLON", "DEPENDENCIA"),
    "remarks": ("OBSERVACIONES", "NOVEDADES", "COMENTARIOS"),
    "classification": ("CLASIFICACION",),
    "release": ("DIFUSION", "REL_TO", "LIBERABLE_A"),
    "caveats": ("ADVERTENCIAS", "CAVEATS"),
    "handling": ("MANEJO", "CODIGO_DE_MANEJO"),
    "handling_text": ("TEXTO_DE_MANEJO", "RESTRICCION"),
    "grading": ("CALIFICACION", "EVALUACION"),
}
REQUIRED = ("report", "date", "time", "type")
MARKING_COLUMNS = ("classification", "release", "caveats", "handling", "handling_text", "grading")
MULTILINE = ("remarks",)  # the only free text that may span lines; a quoted cell elsewhere closes on its line
_BY_HEADER = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}
_UNNAMED = ""  # a column whose header cell is empty: no field, and its cells must be empty too

EVENT_TYPES = {
    "FLUJO_MIGRATORIO": "MIGRANT_FLOW", "FLUJO_DE_MIGRANTES": "MIGRANT_FLOW", "MIGRANTES": "MIGRANT_FLOW",
    "CRUCE": "CROSSING", "CRUCE_IRREGULAR": "CROSSING", "CRUCE_ILEGAL": "CROSSING",
    "AVISTAMIENTO_DE_GRUPO_ARMADO": "ARMED_GROUP_SIGHTING", "GRUPO_ARMADO": "ARMED_GROUP_SIGHTING",
    "ENFRENTAMIENTO": "CLASH", "COMBATE": "CLASH", "PISTA_CLANDESTINA": "CLANDESTINE_AIRSTRIP", "OTRO": "OTHER",
    **{c: c for c in ("MIGRANT_FLOW", "CROSSING", "ARMED_GROUP_SIGHTING", "CLASH", "CLANDESTINE_AIRSTRIP", "OTHER")},
}
LABELS = {"MIGRANT_FLOW": "Flujo migratorio", "CROSSING": "Cruce irregular", "OTHER": "Novedad",
          "ARMED_GROUP_SIGHTING": "Avistamiento de grupo armado", "CLASH": "Enfrentamiento",
          "CLANDESTINE_AIRSTRIP": "Pista clandestina"}
DIRECTIONS = {
    "NORTE": "NORTHBOUND", "HACIA_EL_NORTE": "NORTHBOUND", "RUMBO_NORTE": "NORTHBOUND",
    "SUR": "SOUTHBOUND", "HACIA_EL_SUR": "SOUTHBOUND", "RUMBO_SUR": "SOUTHBOUND",
    "HACIA_PANAMA": "INTO_PANAMA", "INGRESO": "INTO_PANAMA", "ENTRADA": "INTO_PANAMA",
    "HACIA_COLOMBIA": "OUT_OF_PANAMA", "HACIA_COSTA_RICA": "OUT_OF_PANAMA", "SALIDA": "OUT_OF_PANAMA",
    **{c: c for c in ("NORTHBOUND", "SOUTHBOUND", "INTO_PANAMA", "OUT_OF_PANAMA")},
}
DOMESTIC = {form: form for form in DOMESTIC_LABELS}  # lookup's table
# How a message names each marking: as the export's header does.
_MARKING_LABELS = {"classification": "Clasificación", "releasable_to": "Difusión", "caveats": "Advertencias",
                   "handling_code": "Manejo", "handling_text": "Texto de manejo", "grading": "Calificación"}


def read(stream: BinaryIO, ctx: Context) -> Iterator[Item]:
    """Records of a patrol-report CSV, as {canonical column: cell text}.

    A file with no header (0 bytes, a byte-order mark, blank lines), or with its header and no row, holds no
    record: it is refused as ``cut``, as an export whose writer has not got further may be.
    """
    limit = ctx.limits.record_bytes
    rows = csv_rows(stream, ctx.profile.encoding, limit, multiline=_multiline)
    columns: list[str | None] = []
    ignored: list[tuple[int, str]] = []  # (place, as agencies.yaml lists it) of each ignored column
    vocabulary = marking_vocabulary(ctx, DOMESTIC)
    number, header = 0, 0
    for line, raw, fields in rows:
        if not columns:
            # Another agency's export, refused whole before its header is judged, the header's bytes not kept: they
            # are that agency's content. Not judged: a header the file stops within (its writer may go on), and a
            # refusal of the file before any record (UTF-16, line ends CR only), which keeps no bytes.
            cut = isinstance(fields, AdapterError) and fields.cut
            if raw and not cut and not _shows_header(raw, ctx.profile.encoding):
                yield wrong_format("senafront", line, looks_like(raw, "senafront"))
                return
            if isinstance(fields, Exception):
                yield Item(0, line, raw, error=fields)
                return
            try:  # norm_key would read 'Difu\u200bsión' as an unknown column, and its markings would be lost
                for i, h in enumerate(fields, 1):
                    f.text(h, f"header column {i}", 200)
                    # And 'Difusión — Иван' or 'Fecha ✓' as that column, the rest folded away: a header line run on
                    # into a row may hold a name there. Refused by the guard every code passes, naming the column.
                    plain_name(h, f"header column {i}")
            except AdapterError as exc:
                yield Item(0, line, raw, error=exc)
                return
            columns = [_BY_HEADER.get(norm_key(h)) if h.strip() else _UNNAMED for h in fields]
            problem = _header_problem(columns)
            error = f.fail(f.MISSING_COLUMN, problem) if problem else _unknown_column(fields, columns, ctx)
            if error:
                yield Item(0, line, raw, error=error)
                return
            listed = {_column_form(c): c for c in ctx.profile.ignored_columns}
            ignored = [(i, listed[_column_form(h)]) for i, (h, c) in enumerate(zip(fields, columns, strict=True))
                       if c is None]
            header = line
            continue
        number += 1
        if isinstance(fields, Exception):
            yield Item(number, line, raw, error=fields)
        elif len(fields) < len(columns) or any(x.strip() for x in fields[len(columns):]):
            yield Item(number, line, raw, error=f.fail(
                f.MISSING_COLUMN, f"line {line} has {len(fields)} fields; the header has {len(columns)}"))
        elif (blank := next((i for i, (c, v) in enumerate(zip(columns, fields, strict=False), 1)
                             if c == _UNNAMED and v.strip()), None)) is not None:
            yield Item(number, line, raw, error=f.fail(
                f.MISSING_COLUMN, f"line {line} has a value in column {blank}, which has no header"))
        elif (refused := _ignored_refusal(fields, ignored, vocabulary)) is not None:
            # Dropped, it may have restricted release ('Países autorizados' = PAN): the battalion's defaults would
            # decide who receives the report. Named as agencies.yaml lists it, never its cell.
            yield Item(number, line, raw, error=refused)
        else:
            yield Item(number, line, raw, {c: v for c, v in zip(columns, fields, strict=False) if c})
    if not columns:
        yield Item(0, 0, b"", error=AdapterError("the file has no header (empty, or still being written); nothing "
                                                 "was read", f.MISSING_COLUMN, cut=True))
    elif not number:
        yield no_record(header, " after its header")


def _shows_header(raw: bytes, encoding: str) -> bool:
    """Whether ``raw``, the file's first record, names a column this adapter reads (``COLUMNS``): what shows a
    patrol-report export, however bad the rest of its header (a bad byte, a stray quote, a column missing or unknown,
    each refused as such). Cells are split at every delimiter the reader takes, blanks and enclosing quotes dropped;
    a cell holding JSON's punctuation is no column's name ('"advertencias":[]' is a key, not a header)."""
    text = raw.decode(encoding if encoding.lower().replace("_", "-") != "utf-8-sig" else "utf-8", "replace")
    for cell in re.split(r"[;,\t]", text):
        cell = cell.strip(" \t\r\n")
        if len(cell) >= 2 and cell[0] == cell[-1] == '"':
            cell = cell[1:-1]
        if not _NOT_A_NAME.search(cell) and norm_key(cell) in _BY_HEADER:
            return True
    return False


_NOT_A_NAME = re.compile(r'[:{}\[\]"]')


def _multiline(header: list[str]) -> list[int]:
    """The columns (from 0) whose quoted cells may span lines, by the header: the remarks, typed with Alt+Enter."""
    return [i for i, h in enumerate(header) if _BY_HEADER.get(norm_key(h)) in MULTILINE]


def _ignored_refusal(fields: list[str], ignored: list[tuple[int, str]],
                     vocabulary: MarkingVocabulary) -> AdapterError | None:
    """The refusal of a row whose ignored cell holds a control character or bidi override, or reads as a marking
    (``refuse_ignored``)."""
    try:
        for i, name in ignored:
            refuse_ignored(fields[i], "column", name, "ignored_columns", vocabulary)
    except AdapterError as exc:
        return exc
    return None


def _unknown_column(headers: list[str], columns: list[str | None], ctx: Context) -> AdapterError | None:
    """The first header column neither read (``columns`` names it) nor listed in ignored_columns, as a file-level error.

    The column is said by place and length, never quoted: a header line whose line end was lost runs on into the
    first row, so a header cell may be a traveller's name or a document number (as ``adapters.core._unknown_key``
    says a key). A near miss names the header meant instead, from the adapter's own vocabulary.
    """
    ignored = {_column_form(c) for c in ctx.profile.ignored_columns}
    for i, (header, column) in enumerate(zip(headers, columns, strict=True)):
        if column is None and _column_form(header) not in ignored:
            meant = f.did_you_mean(header, _BY_HEADER)
            return f.fail(f.UNKNOWN_CODE, f"the header has a column this adapter does not read (column {i + 1}, "
                                          f"{len(header):,} characters){meant}: check its spelling, or list it "
                                          "under ignored_columns in agencies.yaml if the export adds it and it holds "
                                          f"no marking: {RESTRICTS}")
    return None


def _column_form(header: str) -> str:
    """How an ignored column is matched: as the header is (norm_key), or as written when that leaves nothing ('#')."""
    return norm_key(header) or header.strip()


def _header_problem(columns: list[str | None]) -> str | None:
    missing = [COLUMNS[c][0] for c in REQUIRED if c not in columns]
    if missing:
        return "the header lacks required column(s): " + ", ".join(missing)
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    if twice:
        return "the header names the same column twice: " + ", ".join(twice)
    if ("lat" in columns) != ("lon" in columns):
        return "the header has one of Latitud and Longitud without the other"
    return None


def to_alert(row: dict[str, str], ctx: Context) -> dict[str, Any]:
    """One patrol report row -> a BORDER_EVENT alert (pure)."""
    zone, limits = ctx.profile.zone, ctx.limits
    event_day = f.dmy(row["date"], "Fecha")
    occurred = f.local(event_day, f.clock(row["time"], "Hora"), zone)
    reported = None
    report_date = f.given(row.get("report_date"), "Fecha del informe")
    report_time = f.given(row.get("report_time"), "Hora del informe")
    if report_time and not report_date:  # read only with its date: a time alone would be dropped unread
        raise f.fail(f.MISSING_FIELD, "Hora del informe is filled and Fecha del informe is empty")
    if report_date:
        day = f.dmy(row["report_date"], "Fecha del informe")
        if report_time:
            reported = f.local(day, f.clock(row["report_time"], "Hora del informe"), zone)
        elif day < event_day:  # as a report time before the event time is (``core.alert``)
            raise f.fail(f.INVALID_DATE, "Fecha del informe is before the event's date (Fecha)")
        else:  # a date alone: the report came that day, and on the event's own day not before the event
            reported = max(occurred, f.local(day, f.clock("00:00", ""), zone))
    event = lookup(EVENT_TYPES, row["type"], "Tipo de evento") or "OTHER"
    headcount = f.integer(row.get("headcount"), "Cantidad de personas", maximum=50_000)
    place = f.text(row.get("place"), "Lugar", limits.place)
    loc = location(ctx, f.coordinate(row.get("lat"), "Latitud", "lat"), f.coordinate(row.get("lon"), "Longitud", "lon"),
                   province=row.get("province"), sector=row.get("sector"), place=place, where="Latitud/Longitud",
                   labels=("Provincia", "Sector", "Lugar"))
    # An empty cell is absent (the battalion's default); one of blanks goes on, and markings() refuses it as blank.
    over: dict[str, Any] = {"classification": row.get("classification") or None,
                            "handling_code": row.get("handling") or None,
                            "handling_text": row.get("handling_text") or None, "grading": row.get("grading") or None,
                            "caveats": row.get("caveats") or None}
    release = row.get("release") or ""
    f.given(release, "Difusión")  # blanks only say neither the default release nor none: refused
    # Through lookup (f.code), as every code: 'Solo Panamá — Иван' is refused, never read as Solo Panamá with the
    # rest dropped. Any other release is read as partners, each through the same guard (``markings``).
    if norm_key(release) in DOMESTIC and lookup(DOMESTIC, release, "Difusión"):
        over["releasable_to"] = []
        given = names(over["caveats"], "caveats", ctx.vocab.caveats)  # a cell "LES;NOFORN": codes, not letters
        over["caveats"] = [*(ctx.profile.markings.caveats if given is None else given), "PANAMA_ONLY"]
    elif release:
        over["releasable_to"] = release
    label = LABELS[event] + (f" de {headcount} personas" if headcount else "")
    where = place or (loc or {}).get("border_sector") or (loc or {}).get("province")
    return alert(
        ctx,
        alert_id=alert_id(ctx, row["report"], "N° Informe"),
        alert_type="BORDER_EVENT",
        occurred_at=occurred,
        reported_at=reported,
        location=loc,
        markings=markings(ctx, over, f.text(row.get("battalion"), "Batallón", limits.unit), labels=_MARKING_LABELS,
                          cells=True),
        summary=f"{label} en {where}" if where else label,
        payload={
            "event_type": event,
            "headcount": headcount,
            "direction": lookup(DIRECTIONS, row.get("direction"), "Dirección", required=False),
            "nationalities_observed": f.countries(row.get("nationalities"), "Nacionalidades"),
            "patrol_unit": f.text(row.get("patrol"), "Unidad", limits.unit),
            "remarks": f.text(row.get("remarks"), "Observaciones", limits.remarks, multiline=True),
        },
    )


# keys=None: a record is the columns the header names, which the reader holds against COLUMNS.
ADAPTER = Adapter("senafront", "SENAFRONT", "SENAFRONT patrol reports (CSV) -> border events",
                  ("*.csv", "*.CSV"), read, to_alert, keys=None, columns=frozenset(_BY_HEADER),
                  marking_columns=frozenset(alias for name in MARKING_COLUMNS for alias in COLUMNS[name]),
                  marking_labels=frozenset(DOMESTIC))
