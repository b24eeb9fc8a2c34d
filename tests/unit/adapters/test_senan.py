"""SENAN interdiction documents -> SEIZURE: nested vessel, cargo and crew, times and markings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters import _fields as f

DOC: dict[str, Any] = {
    "numero_operacion": "FTC-2026-0311",
    "fecha_hora": "2026-11-03T03:40:00-05:00",
    "fecha_hora_reporte": "2026-11-03 09:15",
    "unidad": "Grupo Aeronaval Oriental",
    "operacion": "Escudo Marino",
    "posicion": {"latitud": 7.35, "longitud": -78.3, "zona": "Darién", "referencia": "12 mn al suroeste de Jaqué"},
    "embarcacion": {"tipo": "lancha rápida", "nombre": None, "matricula": "S/M", "bandera": "COL"},
    "carga": [{"tipo": "droga", "descripcion": "cocaína", "cantidad": 1250, "unidad": "paquetes"},
              {"tipo": "munición", "descripcion": "cartuchos", "cantidad": 300, "unidad": "cartuchos"}],
    "tripulacion": [
        {"nombres": "Jhon Freddy", "primer_apellido": "Mosquera", "segundo_apellido": "Palacios",
         "fecha_nacimiento": "1991-04-02", "sexo": "M", "nacionalidades": ["COL"],
         "documentos": [{"tipo": "cédula", "numero": "1077456789", "pais": "COL"}]},
        {"nombres": "Efraín", "apellidos": "Cuesta", "detenido": False},
    ],
    "marcado": {"clasificacion": "SECRETO", "difusion": ["USA", "FEAN"], "manejo": "H2", "consentimiento": ["USA"]},
}


def _docs(*docs: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(d, ensure_ascii=False, indent=2).encode() + b"\n" for d in docs)


def test_an_interdiction_becomes_a_seizure(one: Callable[..., dict[str, Any]]) -> None:
    """Cargo items, the vessel and detained crew map to the schema; released crew are not detainees."""
    alert = one("senan", _docs(DOC))
    assert alert["alert_id"] == "SENAN:FTC-2026-0311" and alert["alert_type"] == "SEIZURE"
    assert alert["occurred_at"] == datetime(2026, 11, 3, 8, 40, tzinfo=UTC)
    assert alert["reported_at"] == datetime(2026, 11, 3, 14, 15, tzinfo=UTC)  # no offset: Panama time
    p = alert["payload"]
    assert p["items"] == [{"category": "DRUGS", "kind": "COCAINE", "quantity": 1250.0, "unit": "PACKAGES"},
                          {"category": "AMMUNITION", "kind": "CARTRIDGES", "quantity": 300.0, "unit": "ROUNDS"}]
    assert p["conveyance"] == {"kind": "GO_FAST", "name": None, "identifier": "S/M", "flag_country": "COL"}
    assert p["persons_detained"] == 1
    assert p["detainees"][0]["surnames"] == "Mosquera Palacios"
    assert p["detainees"][0]["date_of_birth"] == date(1991, 4, 2)
    assert p["detainees"][0]["documents"][0]["document_type"] == "NATIONAL_ID"
    assert alert["summary"] == "Interdicción: 1250 paquetes de cocaína"


def test_the_summary_takes_the_cargo_labels_as_cleaned(one: Callable[..., dict[str, Any]]) -> None:
    """Separators and line breaks that text cleaning reads as whitespace (\\x1c-\\x1f, NEL, LS, PS) let a label
    match its code; the summary then keeps the cleaned label, never the raw characters."""
    cargo = {**DOC["carga"][0], "cantidad": 1684, "descripcion": "\u2028\x1ccocaína\x1f\u2029\x85",
             "unidad": "\x1epaquetes\u2028"}
    alert = one("senan", _docs(dict(DOC, carga=[cargo])))
    assert alert["payload"]["items"][0]["kind"] == "COCAINE"
    assert alert["summary"] == "Interdicción: 1684 paquetes de cocaína"


def test_the_documents_marking_block_wins(one: Callable[..., dict[str, Any]]) -> None:
    """marcado carries classification, REL TO, handling and consent; grading keeps the default."""
    m = one("senan", _docs(DOC))["markings"]
    assert (m["classification"], m["releasable_to"], m["handling_code"], m["originator_consent"]) == (
        "SECRETO", ["USA", "FEAN"], "H2", ["USA"])
    assert (m["source_reliability"], m["information_credibility"]) == ("B", "2")
    assert m["originator"]["unit"] == "Grupo Aeronaval Oriental"


def test_one_broken_document_does_not_take_the_next(run: Callable[..., list[Any]]) -> None:
    """A document with a syntax error is refused; the documents after it are read."""
    broken = _docs(DOC).replace(b'"unidad": "Grupo', b'"unidad" "Grupo')
    second = dict(DOC, numero_operacion="FTC-2026-0312")
    results = run("senan", broken + _docs(second))
    assert [r.error.reason if r.error else r.alert["alert_id"] for r in results] == [f.SYNTAX, "SENAN:FTC-2026-0312"]


def test_cargo_must_be_known_and_positive(reason: Callable[..., str]) -> None:
    """Unknown substances, negative or zero quantities and an empty cargo list each have their reason."""
    def cargo(**item: Any) -> bytes:
        return _docs(dict(DOC, carga=[{**DOC["carga"][0], **item}]))

    assert reason("senan", cargo(descripcion="polvo blanco")) == f.UNKNOWN_CODE
    assert reason("senan", cargo(cantidad=-5)) == f.NEGATIVE
    assert reason("senan", cargo(cantidad=0)) == f.INVALID
    assert reason("senan", _docs(dict(DOC, carga=[]))) == f.MISSING_FIELD


def test_a_cargo_label_carries_nothing_beside_it(reason: Callable[..., str], run: Callable[..., list[Any]]) -> None:
    """The summary shows the cargo's label as the agency wrote it, so a label holds no other word: words or digits
    of another script beside it (which the lookup form folds away as it does punctuation, 'cocaína — «Операция
    Буря»' reading as COCAINE) refuse the document, quoting none of it, rather than reach partners whose agreement
    drops the operation name, in a field it keeps."""
    def cargo(**item: Any) -> bytes:
        return _docs(dict(DOC, carga=[{**DOC["carga"][0], **item}]))

    for hostile in ({"descripcion": "cocaína — «Операция Буря» 李明"}, {"descripcion": "cocaína \u0668\u0661\u0662"},
                    {"descripcion": "cocaína øæ"}, {"unidad": "paquetes (Иван Петров)"},
                    {"descripcion": "cocaína \U0001f178\U0001f185\U0001f170\U0001f17d"},  # IVAN, as signs
                    {"descripcion": "cocaína \U0001f1f7\U0001f1fa"}):  # a flag's regional letters
        assert reason("senan", cargo(**hostile)) == f.UNKNOWN_CODE
        [result] = run("senan", cargo(**hostile))
        shown = str(result.error)
        assert "Операция" not in shown and "Иван" not in shown and "\u0668" not in shown and "\U0001f178" not in shown
    # what a label holds is still taken however it is typed, with the punctuation staff type around it
    for label in ("Cocaina", "COCAÍNA", " cocaína ", "cocaína;", "\u201ccocaína\u201d"):
        [taken] = run("senan", cargo(descripcion=label))
        assert taken.error is None and taken.alert["payload"]["items"][0]["kind"] == "COCAINE", label


def test_detenido_is_a_json_boolean_or_absent(one: Callable[..., dict[str, Any]], reason: Callable[..., str],
                                               run: Callable[..., list[Any]]) -> None:
    """"no", 0, "false" or null would have read as detained, sending a rescued person's name and documents to
    partners as a detainee's: each refuses the document, naming the field, never the value."""
    crew = DOC["tripulacion"]
    assert one("senan", _docs(DOC))["payload"]["persons_detained"] == 1
    assert one("senan", _docs(dict(DOC, tripulacion=[crew[0], {**crew[1], "detenido": True}])))[
        "payload"]["persons_detained"] == 2
    for flag in ("no", 0, "false", None, "sí"):
        results = run("senan", _docs(dict(DOC, tripulacion=[crew[0], {**crew[1], "detenido": flag}])))
        assert results[0].error is not None and results[0].error.reason == f.INVALID
        assert "tripulacion[1].detenido must be true or false" in str(results[0].error)


def test_a_number_too_large_for_a_float_is_refused_not_read_as_inf(run: Callable[..., list[Any]]) -> None:
    """1e999 was read as infinity, then as the text "inf": two records with 1e999 and 2e400 for their
    reference got one alert id. A number where text is wanted is taken only as a whole number's digits."""
    raw = json.dumps(dict(DOC, numero_operacion="X")).replace('"X"', "1e999").encode() + b"\n"
    results = run("senan", raw)
    assert results[0].error is not None and results[0].error.reason == f.SYNTAX
    assert "too large" in str(results[0].error) and "999" not in str(results[0].error)
    for number in ("12.5", "1e3"):
        raw = json.dumps(dict(DOC, numero_operacion="X")).replace('"X"', number).encode() + b"\n"
        results = run("senan", raw)
        assert results[0].error is not None and results[0].error.reason == f.INVALID
        assert "numero_operacion must be text, got a number with a fraction or an exponent" in str(results[0].error)
    whole = run("senan", json.dumps(dict(DOC, numero_operacion=20261103)).encode() + b"\n")
    assert whole[0].alert is not None and whole[0].alert["alert_id"] == "SENAN:20261103"


@pytest.mark.parametrize(("amount", "unit", "shown"), [(1234567, "paquetes", "1234567 paquetes"),
                                                      (12345678.5, "kg", "12345678.5 kg"), (0.25, "kg", "0.25 kg")])
def test_the_summary_gives_the_quantity_exactly(one: Callable[..., dict[str, Any]], amount: float, unit: str,
                                                shown: str) -> None:
    """A summary is kept under more agreements than the payload's figure: its quantity is never rounded (six
    significant digits made 1,234,567 packages read 1.23457e+06)."""
    cargo = {**DOC["carga"][0], "cantidad": amount, "unidad": unit}
    alert = one("senan", _docs(dict(DOC, carga=[cargo])))
    assert alert["summary"] == f"Interdicción: {shown} de cocaína"
