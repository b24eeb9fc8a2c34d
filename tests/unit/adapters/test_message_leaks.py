"""A value that looks like a code (an upper-case surname, a vessel's name, a plate) and a key that is really data (a
record keyed by a traveller's name, documents keyed by passport number) never reach a rejection: not the message
`--check` prints, not the dead letter's puente-dlq-detail header. Only a vocabulary member or a known key is named."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import _fields as f
from adapters._codes import norm_key
from adapters._readers import parse_json
from adapters.config import Context
from adapters.core import Result, names
from adapters.registry import get
from adapters.run import AdapterRun, check
from puente import wire
from puente.errors import AdapterError
from puente.settings import AGENCY_COUNTRIES, AGENCY_UNITS

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SNM: dict[str, Any] = json.loads((SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_text("utf-8")
                                 .splitlines()[0])
HEADER = ("N° Informe;Fecha;Hora;Fecha del informe;Hora del informe;Provincia;Sector;Lugar;Latitud;Longitud;"
          "Tipo de evento;Cantidad de personas;Dirección;Nacionalidades;Unidad;Batallón;Observaciones;Clasificación;"
          "Difusión;Manejo;Texto de manejo;Calificación")
# code-shaped, and a person's or a thing's: what a shifted column or a wrong cell puts in a code field
CODE_SHAPED = ["GARCIA-MARQUEZ", "MENDOZA", "ROJAS", "CASTANO-GIL", "PAA-123", "LA_ESPERANZA_II", "AX1234567",
               "SR.MARTINEZ", "NAVEGANTE-7", "PEREZ_GOMEZ"]
TABLE = {"COMBATE": "CLASH", "CRUCE": "CROSSING", "AVISTAMIENTO": "SIGHTING", "DARIEN": "DARIEN"}


def _row(number: int, *, event: str = "Enfrentamiento", direction: str = "", nationalities: str = "COL") -> str:
    return (f"IP-DAR-2026-{number:06d};18/11/2026;13:55;;;Darién;Palo de las Letras;Hito;8.0;-77.4;{event};3;"
            f"{direction};{nationalities};Patrulla;;;;;;;")


def _snm(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SNM)
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for step in parents:
            target = target[step]
        target[last] = value
    return doc


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


def _without_vocabulary(message: str, vocabulary: list[str]) -> str:
    """The message with every vocabulary member taken out: what is left must hold nothing of the record."""
    for member in sorted(vocabulary, key=len, reverse=True):
        message = message.replace(member, "")
    return message


# ---- the field parsers -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", CODE_SHAPED)
def test_a_code_shaped_value_is_never_quoted_by_code_or_countries(value: str) -> None:
    """code() and countries() name the field alone, whatever the refused value looks like."""
    for refuse in (lambda: f.code(value, "Tipo de evento", TABLE), lambda: f.countries(value, "Nacionalidades"),
                   lambda: f.countries(["COL", value], "viajero nacionalidades")):
        with pytest.raises(AdapterError) as caught:
            refuse()
        assert value not in str(caught.value) and value.lower() not in str(caught.value).lower(), str(caught.value)


@settings(max_examples=200, deadline=None)
@given(value=st.from_regex(r"[A-Z]{3,12}([-_. ][A-Z0-9]{2,10})?", fullmatch=True))
def test_no_code_shaped_value_survives_in_a_code_message(value: str) -> None:
    """Whatever code-shaped text code() refuses, only the field, the table's members and fixed words are printed."""
    try:
        f.code(value, "Tipo de evento", TABLE)
    except AdapterError as exc:
        rest = _without_vocabulary(str(exc), list(TABLE))
        assert value not in rest and norm_key(value) not in rest, (value, str(exc))


def test_a_near_miss_is_offered_from_the_vocabulary() -> None:
    """'Combat' and 'Avistamento' are refused with the member meant, from the table; 'VENEZOLANOO' with VENEZOLANO."""
    with pytest.raises(AdapterError, match=r"Tipo de evento is not a known code \(did you mean 'COMBATE'\?\)"):
        f.code("Combat", "Tipo de evento", TABLE)
    with pytest.raises(AdapterError, match=r"did you mean 'AVISTAMIENTO'\?"):
        f.code("Avistamento", "Tipo de evento", TABLE)
    with pytest.raises(AdapterError) as caught:
        f.code("GARCIA-MARQUEZ", "Tipo de evento", TABLE)
    assert "did you mean" not in str(caught.value)  # nothing close: no hint, rather than a random code
    with pytest.raises(AdapterError, match=r"nacionalidades \(entry 2 of 2\) is not an ISO 3166 alpha-3 code or a "
                                             r"known country \(did you mean 'VENEZOLANO'\?\)"):
        f.countries(["COL", "Venezolanoo"], "nacionalidades")


def test_a_list_of_codes_says_which_entry_is_refused() -> None:
    """releasable_to 'COL, MENDOZA': the second entry is refused, by position, never by its text."""
    with pytest.raises(AdapterError) as caught:
        names("REL TO COL, MENDOZA", "releasable_to", frozenset({"COL", "USA"}))
    assert "releasable_to (entry 2 of 2) is not a known code" in str(caught.value)
    assert "MENDOZA" not in str(caught.value)


# ---- whole records: what --check prints and what the dead letter carries --------------------------------------
def _messages(adapter: str, ctx: Context, data: bytes) -> tuple[str, list[str]]:
    """The lines `check` prints, and the puente-dlq-detail headers a run writes, for ``data``."""
    printed = io.StringIO()
    check(get(adapter), ctx, io.BytesIO(data), "export", err=printed)
    details: list[str] = []

    class _DeadLetters:
        async def send(self, topic: str, value: bytes, *, key: bytes, headers: Any) -> asyncio.Future[Any]:
            details.extend(v.decode() for k, v in headers if k == wire.DLQ_DETAIL)
            future = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

        async def flush(self) -> None:
            return None

    async def go() -> None:
        offline: Any = SimpleNamespace(topic_prefix="t", agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
        adapter_run = AdapterRun(offline, None, get(adapter), ctx, err=io.StringIO())  # type: ignore[arg-type]
        adapter_run._dlq = _DeadLetters()
        adapter_run._publisher = SimpleNamespace(flush=_DeadLetters().flush)
        await adapter_run.run(io.BytesIO(data), "export")

    asyncio.run(go())
    return printed.getvalue(), details


def test_senafront_code_fields_holding_names_and_plates_are_not_quoted(ctx_for: Callable[[str], Context]) -> None:
    """A surname in Tipo de evento or Nacionalidades, a plate in Dirección: neither stderr nor the header has them."""
    rows = [_row(1, nationalities="CASTAÑO-GIL"), _row(2, event="GARCIA-MARQUEZ"), _row(3, direction="PAA-123"),
            _row(4, nationalities="COL, ROJAS")]
    printed, details = _messages("senafront", ctx_for("SENAFRONT"), "\n".join([HEADER, *rows, ""]).encode())
    assert len(details) == 4 and printed.count("unknown-code") == 4, (printed, details)
    for private in ("CASTAÑO", "CASTANO", "GARCIA", "MARQUEZ", "PAA-123", "ROJAS"):
        assert private not in printed and all(private not in d for d in details), (private, printed, details)
    assert "Nacionalidades (entry 2 of 2) is not an ISO 3166" in printed


def test_snm_watchlist_and_nationality_holding_surnames_are_not_quoted(ctx_for: Callable[[str], Context]) -> None:
    """A surname typed into lista or into the nationalities: named by field; a misspelt list gets the list meant."""
    data = (_line(_snm(id_control="PTY-20261117-000091", coincidencia__lista="MENDOZA"))
            + _line(_snm(id_control="PTY-20261117-000092", viajero__nacionalidades=["ROJAS"]))
            + _line(_snm(id_control="PTY-20261117-000093", coincidencia__lista="INTERPOL_RED_NOTCE")))
    printed, details = _messages("snm", ctx_for("SNM"), data)
    assert len(details) == 3, (printed, details)
    for private in ("MENDOZA", "ROJAS", "NOTCE"):
        assert private not in printed and all(private not in d for d in details), (private, printed, details)
    assert "lista is not a known watchlist (did you mean 'INTERPOL_RED_NOTICE'?)" in details[2]


def test_keys_that_are_data_are_not_quoted(ctx_for: Callable[[str], Context]) -> None:
    """A record keyed by a traveller's name, documents keyed by passport number: the place and length, not the key;
    a near miss names the known key, never the one given."""
    keyed = _snm()
    keyed["viajero"]["PE3480186"] = keyed["viajero"].pop("documentos")[0]
    misspelt = _snm()
    misspelt["Viajero"] = misspelt.pop("viajero")
    data = _line(keyed) + _line({"Raúl Ávila Cuesta": SNM}) + _line(misspelt)
    printed, details = _messages("snm", ctx_for("SNM"), data)
    assert len(details) == 3, (printed, details)
    for private in ("PE3480186", "3480186", "Raúl", "Ávila", "Cuesta", "'Viajero'"):
        assert private not in printed and all(private not in d for d in details), (private, printed, details)
    assert details[0].startswith(f"viajero has an unexpected key (key {len(keyed['viajero'])} of "
                                 f"{len(keyed['viajero'])}, 9 characters), which this adapter does not read")
    assert details[1].startswith("the record has an unexpected key (17 characters)")
    assert details[2].startswith("the record has an unexpected key (did you mean 'viajero'?)")


def test_a_marking_block_keyed_by_data_is_not_quoted(run: Callable[..., list[Result]]) -> None:
    """Inside a block of markings too: a key that is data is said by place; one written otherwise by the marking."""
    results = run("snm", _line(_snm(marcado={"clasificacion": "SECRETO", "GARCIA-MARQUEZ": "x"}))
                  + _line(_snm(id_control="PTY-20261117-000095", marcado={"Clasificación": "SECRETO"})))
    first, second = (str(r.error) for r in results)
    assert first.startswith("marcado has an unexpected key (key 2 of 2, 14 characters), which is no marking")
    assert "GARCIA" not in first
    assert second.startswith("marcado has an unexpected key (did you mean 'clasificacion'?)")
    assert "Clasificación" not in second


@pytest.mark.parametrize("key", ["releasable_to", "maria_gonzalez", "PE3480186", "Raúl Ávila Cuesta"])
def test_a_key_given_twice_is_said_by_its_length(key: str) -> None:
    """A repeated key is a syntax problem found before any adapter reads the record, so it may be data (documents
    keyed by passport number, people by name): the message gives its length and the line, never the key."""
    with pytest.raises(AdapterError) as caught:
        parse_json(json.dumps({"a": 1}).replace("}", f', "{key}": 1, "{key}": 2}}'), 7)
    assert f"the key of {len(key)} characters appears twice" in str(caught.value) and key not in str(caught.value)
