"""Migration screening JSON lines -> WATCHLIST_HIT: travellers' names, nationalities, documents, posts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from adapters import _fields as f

HIT: dict[str, Any] = {
    "id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
    "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "segundo_apellido": "Gómez",
                "fecha_nacimiento": "1988-03-02", "sexo": "M", "nacionalidades": ["colombiana", "ESP"],
                "documentos": [{"tipo": "pasaporte", "numero": "ax1234567", "pais": "COL", "vence": "2029-05-01"}]},
    "coincidencia": {"lista": "notificación roja", "motivo": "nombre y fecha de nacimiento", "puntaje": 0.93},
    "riesgo": "alto", "vuelo": "CM 204", "accion": "inspección secundaria",
}


def _lines(*docs: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in docs)


def test_a_screening_hit_becomes_a_watchlist_hit(one: Callable[..., dict[str, Any]]) -> None:
    """Two surnames are joined, several nationalities kept, the post gives the location."""
    alert = one("snm", _lines(HIT))
    assert alert["alert_id"] == "SNM:PTY-20261103-00231"
    assert alert["occurred_at"] == datetime(2026, 11, 4, 3, 15, 3, tzinfo=UTC)
    p = alert["payload"]
    person = p["person"]
    assert (person["given_names"], person["surnames"], person["nationalities"]) == (
        "José Luis", "Pérez Gómez", ["COL", "ESP"])
    assert person["documents"] == [{"document_type": "PASSPORT", "number": "AX1234567", "issuing_country": "COL",
                                    "expires_on": date(2029, 5, 1)}]
    assert (p["list_name"], p["list_owner"], p["risk_level"], p["action_taken"]) == (
        "INTERPOL_RED_NOTICE", "INTERPOL", "HIGH", "SECONDARY_INSPECTION")
    assert (p["port_of_entry"], p["encounter"], p["match_score"]) == ("PTY", "CM 204", 0.93)
    assert alert["location"]["place_name"] == "Aeropuerto Internacional de Tocumen"


def test_the_summary_never_names_the_traveller(one: Callable[..., dict[str, Any]]) -> None:
    """Summaries are kept by more agreements than names are, so they name the list and the post."""
    summary = one("snm", _lines(HIT))["summary"]
    assert "Pérez" not in summary and "notificación roja" in summary and "Tocumen" in summary


def test_surnames_in_one_field_and_land_posts(one: Callable[..., dict[str, Any]]) -> None:
    """'apellidos' is taken whole; a land post by name gives its border sector."""
    traveller = {k: v for k, v in HIT["viajero"].items() if "apellido" not in k} | {"apellidos": "Ibáñez Muñoz"}
    alert = one("snm", _lines(dict(HIT, viajero=traveller, puesto="Paso Canoas")))
    assert alert["payload"]["person"]["surnames"] == "Ibáñez Muñoz"
    assert alert["location"]["border_sector"] == "CHIRIQUI_PASO_CANOAS"


def test_bad_hits_say_why(reason: Callable[..., str]) -> None:
    """Unknown posts and lists, impossible scores and names with digits are refused with their reasons."""
    assert reason("snm", _lines(dict(HIT, puesto="Marte"))) == f.UNKNOWN_CODE
    assert reason("snm", _lines(dict(HIT, coincidencia={"lista": "LISTA_PRIVADA"}))) == f.UNKNOWN_CODE
    assert reason("snm", _lines(dict(HIT, coincidencia={**HIT["coincidencia"], "puntaje": 93}))) == f.INVALID
    assert reason("snm", _lines(dict(HIT, viajero={**HIT["viajero"], "nombres": "J0sé"}))) == f.INVALID


def test_a_handling_text_needs_handling_code_h3(one: Callable[..., dict[str, Any]],
                                                reason: Callable[..., str]) -> None:
    """A stated restriction is never dropped: with no handling code (the default H0) or another code than H3 the
    record is refused, since its text would not travel and partners would use the alert more widely; with H3 it
    is kept."""
    text = "No difundir a CRI sin consulta previa"
    for marks in ({"texto_manejo": text}, {"manejo": "H2", "texto_manejo": text}):
        assert reason("snm", _lines({**HIT, "marcado": marks})) == f.INVALID
    kept = one("snm", _lines({**HIT, "marcado": {"manejo": "H3", "texto_manejo": text}}))["markings"]
    assert (kept["handling_code"], kept["handling_text"]) == ("H3", text)
