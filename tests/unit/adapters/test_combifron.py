"""Colombia's COMBIFRON messages -> alerts of every type, originated in Colombia with its restrictions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from adapters import _fields as f
from adapters.config import AgencyProfile, load_config

ENVELOPE: dict[str, Any] = {
    "version": "1.0", "id_mensaje": "COL-ARC-2026-00412", "entidad": "ARC", "dependencia": "Fuerza Naval del Pacífico",
    "fecha_evento": "2026-11-02T05:10:00-05:00", "fecha_envio": "2026-11-02T09:00:00-05:00",
    "ubicacion": {"latitud": 8.633, "longitud": -77.35, "provincia": "Chocó", "lugar": "Capurganá"},
    "restricciones": {"clasificacion": "RESERVADA", "difusion": ["COL", "FEAN"], "manejo": "H2",
                      "consentimiento": ["FEAN"], "calificacion": "B2"},
}
BORDER = {"tipo": "EVENTO_FRONTERA", "contenido": {"tipo_evento": "GRUPO_ARMADO", "cantidad_personas": 12,
                                                  "direccion": "HACIA_PANAMA", "nacionalidades": ["COL"]}}
SEIZURE = {"tipo": "INCAUTACION", "contenido": {
    "elementos": [{"tipo": "droga", "descripcion": "clorhidrato de cocaína", "cantidad": 1100, "unidad": "kg"}],
    "medio": {"tipo": "semisumergible", "bandera": "COL"},
    "capturados": [{"nombres": "Yeison", "apellidos": "Murillo Palacios", "nacionalidades": ["COL"]}]}}
WATCH = {"tipo": "ALERTA_MIGRATORIA", "entidad": "MIGRACION", "id_mensaje": "COL-MIGRACION-2026-00412",
         "ubicacion": {"provincia": "Guna Yala", "sector": "Puerto Obaldía", "lugar": "Puerto Obaldía"},
         "contenido": {"persona": {"nombres": "Yeison", "apellidos": "Murillo Palacios", "nacionalidades": ["COL"]},
                       "lista": "COL_PARTNER", "riesgo": "alto", "puesto": "PUERTO_OBALDIA", "accion": "detenido"}}


def _line(body: dict[str, Any]) -> bytes:
    return json.dumps({**ENVELOPE, **body}, ensure_ascii=False).encode() + b"\n"


def test_every_alert_type_arrives_from_colombia(one: Callable[..., dict[str, Any]]) -> None:
    """Border events, seizures and migration alerts all map; each is COMBIFRON's, originated in COL."""
    kinds = {}
    for body in (BORDER, SEIZURE, WATCH):
        alert = one("combifron", _line(body))
        kinds[alert["alert_type"]] = alert
        entity = alert["markings"]["originator"]["agency"]
        assert alert["agency"] == "COMBIFRON" and alert["alert_id"] == f"COMBIFRON:{entity}-2026-00412"
        assert alert["markings"]["originator"]["country"] == "COL"
        assert alert["source_timezone"] == "America/Bogota"
    assert kinds["BORDER_EVENT"]["payload"]["event_type"] == "ARMED_GROUP_SIGHTING"
    assert kinds["SEIZURE"]["payload"]["items"][0]["kind"] == "COCAINE"
    assert kinds["SEIZURE"]["payload"]["conveyance"]["kind"] == "SEMI_SUBMERSIBLE"
    assert kinds["WATCHLIST_HIT"]["payload"]["list_owner"] == "COL"
    assert kinds["WATCHLIST_HIT"]["location"]["border_sector"] == "DARIEN_PUERTO_OBALDIA"


def test_colombias_restrictions_travel_with_the_alert(one: Callable[..., dict[str, Any]]) -> None:
    """Colombia's classification term maps onto Panama's scale; its handling and consent are kept."""
    m = one("combifron", _line(BORDER))["markings"]
    assert m["classification"] == "CONFIDENCIAL"  # RESERVADA
    assert (m["handling_code"], m["originator_consent"], m["releasable_to"]) == ("H2", ["FEAN"], ["COL", "FEAN"])
    assert m["originator"] == {"agency": "COL-ARC", "unit": "Fuerza Naval del Pacífico", "country": "COL"}


def test_a_silent_message_gets_restrictive_defaults(one: Callable[..., dict[str, Any]]) -> None:
    """Without restricciones: H2 (no onward sharing without consent), REL TO COL and FEAN only."""
    m = one("combifron", json.dumps({**{k: v for k, v in ENVELOPE.items() if k != "restricciones"}, **BORDER})
            .encode())["markings"]
    assert (m["handling_code"], m["releasable_to"], m["originator_consent"]) == ("H2", ["COL", "FEAN"], [])


def test_envelope_problems_say_why(reason: Callable[..., str]) -> None:
    """Another format version, an unknown type or entity, and a partner the policy does not know are refused."""
    assert reason("combifron", _line({**BORDER, "version": "2.0"})) == f.UNKNOWN_CODE
    assert reason("combifron", _line({**BORDER, "tipo": "INTELIGENCIA"})) == f.UNKNOWN_CODE
    assert reason("combifron", _line({**BORDER, "entidad": "DAS"})) == f.UNKNOWN_CODE
    assert reason("combifron", _line({**BORDER, "restricciones": {"difusion": ["VEN"]}})) == f.UNKNOWN_CODE
    assert reason("combifron", _line({**BORDER, "ubicacion": {"latitud": 40.7, "longitud": -74.0}})) == f.OUT_OF_REGION


def test_consent_names_partners_not_countries(reason: Callable[..., str]) -> None:
    """Consent is given per partner: a country in restricciones.consentimiento (PAN) names no one, and the policy
    would withhold the alert from every partner for good, so the record is refused here with the code named."""
    restricted = {**ENVELOPE["restricciones"], "consentimiento": ["PAN"]}
    assert reason("combifron", _line({**BORDER, "restricciones": restricted})) == f.UNKNOWN_CODE
    assert reason("combifron", _line({**BORDER, "restricciones": {**restricted, "consentimiento": ["GTM"]}})) == (
        f.UNKNOWN_CODE)


def test_each_entity_numbers_its_own_messages(reason: Callable[..., str], one: Callable[..., dict[str, Any]]) -> None:
    """An id_mensaje not in the entity's own series (COL-<entidad>-...) is refused: the alert id is the message's,
    so DIJIN's message with ARC's number would otherwise be a revision of ARC's alert; DIJIN's own is taken."""
    assert reason("combifron", _line({**BORDER, "entidad": "DIJIN"})) == f.INVALID
    for number in ("2026-00412", "COL-ARCX-1", "COL-ARC", "ARC-2026-1"):
        assert reason("combifron", _line({**BORDER, "id_mensaje": number})) == f.INVALID
    own = one("combifron", _line({**BORDER, "entidad": "DIJIN", "id_mensaje": "COL-DIJIN-2026-00412"}))
    assert own["alert_id"] == "COMBIFRON:COL-DIJIN-2026-00412"
    assert own["markings"]["originator"]["agency"] == "COL-DIJIN"


@pytest.mark.parametrize("entity", ["ARC-NORTE", "arc", "ARC NORTE", ""])
def test_an_originator_code_must_be_one_the_broker_admits(entity: str) -> None:
    """COMBIFRON's entities are codes of capitals, digits and _: no hyphen, so COL-<entidad>- starts one entity's
    message ids only, and COL-<entidad> is an originator the broker admits."""
    combifron = load_config().agencies["COMBIFRON"].model_dump()
    with pytest.raises(ValidationError, match="capitals, digits and _"):
        AgencyProfile.model_validate({**combifron, "originators": {**combifron["originators"], entity: "X"}})


def _seizure(amount: Any, unit: str) -> bytes:
    item = {"tipo": "droga", "descripcion": "clorhidrato de cocaína", "cantidad": amount, "unidad": unit}
    return _line({**SEIZURE, "contenido": {**SEIZURE["contenido"], "elementos": [item]}})


def test_a_quantity_with_a_thousands_separator_is_refused_not_read_as_decimals(
        one: Callable[..., dict[str, Any]], reason: Callable[..., str]) -> None:
    """'1.250' and '1,250' kg may be 1250 or 1.25: refused as ambiguous, never read a thousand times smaller;
    '1250', '1250,5', '0,250' and '1250.500' have one reading, and are read."""
    for amount in ("1.250", "1,250", "12.500", "999,999"):
        assert reason("combifron", _seizure(amount, "kg")) == f.INVALID, amount
    for amount, read in (("1250", 1250.0), ("1250,5", 1250.5), ("0,250", 0.25), ("1250.500", 1250.5), (1.25, 1.25)):
        assert one("combifron", _seizure(amount, "kg"))["payload"]["items"][0]["quantity"] == read, amount


def test_a_counted_unit_takes_whole_numbers_only(one: Callable[..., dict[str, Any]],
                                                 reason: Callable[..., str]) -> None:
    """Packages, units and rounds are counted: 2.5 of them is a typing error, refused; kilograms take fractions."""
    for unit in ("paquetes", "unidades", "cartuchos"):
        assert reason("combifron", _seizure("2,5", unit)) == f.INVALID, unit
        assert reason("combifron", _seizure(2.5, unit)) == f.INVALID, unit
        assert one("combifron", _seizure(3, unit))["payload"]["items"][0]["quantity"] == 3.0
    assert one("combifron", _seizure("2,5", "kg"))["payload"]["items"][0]["quantity"] == 2.5
