"""Pieces several agencies' records share: people, travel documents, seized items and conveyances.

The label tables map what Spanish-speaking staff write (in norm_key form: no accents, upper
case, words joined by '_') to the schema's codes. A label not in a table is refused as an
unknown code rather than passed through: a partner's filter on COCAINE must not miss a
'cocaína' that nobody mapped.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from adapters import _fields as f
from adapters.config import Context
from adapters.core import Keys

SEX = {"M": "M", "F": "F", "X": "X", "MASCULINO": "M", "HOMBRE": "M", "H": "M", "FEMENINO": "F", "MUJER": "F"}
DOCUMENT_TYPES = {
    "PASAPORTE": "PASSPORT", "PASSPORT": "PASSPORT", "P": "PASSPORT",
    "CEDULA": "NATIONAL_ID", "CEDULA_DE_CIUDADANIA": "NATIONAL_ID", "CEDULA_DE_IDENTIDAD": "NATIONAL_ID",
    "DNI": "NATIONAL_ID", "NATIONAL_ID": "NATIONAL_ID", "CARNE_DE_RESIDENTE": "RESIDENCE_PERMIT",
    "PERMISO_DE_RESIDENCIA": "RESIDENCE_PERMIT", "RESIDENCE_PERMIT": "RESIDENCE_PERMIT",
    "OTRO": "OTHER", "OTHER": "OTHER",
}
CATEGORIES = {
    "DROGA": "DRUGS", "DROGAS": "DRUGS", "ESTUPEFACIENTES": "DRUGS", "ARMA": "ARMS", "ARMAS": "ARMS",
    "MUNICION": "AMMUNITION", "MUNICIONES": "AMMUNITION", "EFECTIVO": "CASH", "DINERO": "CASH", "OTRO": "OTHER",
    **{c: c for c in ("DRUGS", "ARMS", "AMMUNITION", "CASH", "OTHER")},
}
# What was seized, per category: label -> the kind code partners filter on.
KINDS: dict[str, dict[str, str]] = {
    "DRUGS": {"COCAINA": "COCAINE", "CLORHIDRATO_DE_COCAINA": "COCAINE", "MARIHUANA": "MARIJUANA",
              "CANNABIS": "MARIJUANA", "HEROINA": "HEROIN", "PASTA_BASE": "COCA_BASE", "BASE_DE_COCA": "COCA_BASE",
              "CRACK": "CRACK", "DROGA_SINTETICA": "SYNTHETIC", "FENTANILO": "FENTANYL"},
    "ARMS": {"FUSIL": "RIFLE", "PISTOLA": "PISTOL", "REVOLVER": "REVOLVER", "ESCOPETA": "SHOTGUN",
             "AMETRALLADORA": "MACHINE_GUN", "SUBAMETRALLADORA": "SUBMACHINE_GUN", "GRANADA": "GRENADE"},
    "AMMUNITION": {"CARTUCHOS": "CARTRIDGES", "CARTUCHO": "CARTRIDGES", "PROVEEDORES": "MAGAZINES",
                   "PROVEEDOR": "MAGAZINES", "MUNICION": "CARTRIDGES"},
    "CASH": {"DOLARES": "USD", "USD": "USD", "EUROS": "EUR", "EUR": "EUR", "PESOS_COLOMBIANOS": "COP", "COP": "COP",
             "BALBOAS": "PAB", "PAB": "PAB"},
    "OTHER": {"PRECURSORES": "PRECURSORS", "COMBUSTIBLE": "FUEL", "VEHICULO": "VEHICLE", "EMBARCACION": "VESSEL"},
}
for _table in KINDS.values():
    _table.update({v: v for v in list(_table.values())})
UNITS = {
    "PAQUETES": "PACKAGES", "PAQ": "PACKAGES", "PACAS": "PACKAGES", "KG": "KG", "KILOS": "KG", "KILOGRAMOS": "KG",
    "UNIDADES": "UNITS", "UNI": "UNITS", "UND": "UNITS", "CARTUCHOS": "ROUNDS", "CART": "ROUNDS",
    "USD": "USD", "DOLARES": "USD", "EUR": "EUR", "COP": "COP", "PAB": "PAB", "GALONES": "GALLONS",
    **{c: c for c in ("PACKAGES", "UNITS", "ROUNDS", "GALLONS")},
}
COUNTED = frozenset({"PACKAGES", "UNITS", "ROUNDS"})  # units that count whole things: no fraction of one
CONVEYANCES = {
    "LANCHA_RAPIDA": "GO_FAST", "GO_FAST": "GO_FAST", "SEMISUMERGIBLE": "SEMI_SUBMERSIBLE",
    "BARCO_PESQUERO": "FISHING_VESSEL", "PESQUERO": "FISHING_VESSEL", "BUQUE_DE_CARGA": "CARGO_VESSEL",
    "CARGUERO": "CARGO_VESSEL", "PORTACONTENEDORES": "CARGO_VESSEL", "YATE": "YACHT", "VELERO": "YACHT",
    "VEHICULO": "VEHICLE", "AUTO": "VEHICLE", "CAMION": "TRUCK", "AERONAVE": "AIRCRAFT", "AVIONETA": "AIRCRAFT",
    "A_PIE": "ON_FOOT", "OTRO": "OTHER", "PANGA": "OTHER",
    **{c: c for c in ("SEMI_SUBMERSIBLE", "FISHING_VESSEL", "CARGO_VESSEL", "YACHT", "VEHICLE", "TRUCK",
                      "AIRCRAFT", "ON_FOOT", "OTHER")},
}
# Why a record is withdrawn, as COMBIFRON and SNM write it -> the schema's RecallReason. A category,
# never free text: a recall must not carry what it withdraws.
RECALL_REASONS = {"ERROR": "ERROR", "LEGAL": "LEGAL", "PROTECCION_FUENTE": "SOURCE_PROTECTION",
                  "SUPERADA": "SUPERSEDED"}
# The keys of a travel document, as document() reads them: the allow-list (adapters.core.Keys) every format shares.
DOCUMENT_KEYS = Keys("tipo", "numero", "pais", "vence")
_NOT_IN_NAMES = re.compile(r"[\d@#$%&*=<>{}\[\]|\\/\"_:;]")
_DOC_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9-]*")


def recall_reason(value: Any, withdrawal: str) -> str:
    """The RecallReason for ``motivo_anulacion``, which ``withdrawal`` (the format's own words for it) requires."""
    if value is None or value == "":
        raise f.fail(f.MISSING_FIELD, f"{withdrawal} needs motivo_anulacion: {', '.join(RECALL_REASONS)}")
    return f.code(value, "motivo_anulacion", RECALL_REASONS) or ""


def name(value: Any, field: str, ctx: Context) -> str | None:
    """A given name or surnames as written, accents kept; digits and symbols are refused."""
    out = f.text(value, field, ctx.limits.name)
    if out is not None and (_NOT_IN_NAMES.search(out) or not any(c.isalpha() for c in out)):
        raise f.fail(f.INVALID, f"{field} contains digits or symbols that names do not have")
    return out


def surnames(first: Any, second: Any, field: str, ctx: Context) -> str | None:
    """Both surnames as one field, the Hispanic way ('Pérez Gómez'); either may be absent."""
    parts = [name(first, f"{field} (primer apellido)", ctx), name(second, f"{field} (segundo apellido)", ctx)]
    joined = " ".join(p for p in parts if p)
    if len(joined) > ctx.limits.name:
        raise f.fail(f.TOO_LONG, f"{field} has {len(joined)} characters; at most {ctx.limits.name} are accepted")
    return joined or None


def document(doc: dict[str, Any], field: str, ctx: Context) -> dict[str, Any]:
    """A travel document: type, number (upper case, no spaces), issuing country, expiry.

    The number is required: a type, country or expiry without it describes no document a partner can match, and
    is refused rather than kept as a document with no number (PN's layout refuses the same, ``adapters.pn``)."""
    number = (f.text(doc.get("numero"), f"{field}.numero", ctx.limits.document) or "").upper().replace(" ", "")
    if not number:
        raise f.fail(f.MISSING_FIELD, f"{field}.numero is empty: a document's type, country and expiry are read "
                                      "only with its number; give it, or leave the document out")
    if not _DOC_NUMBER.fullmatch(number):
        raise f.fail(f.INVALID, f"{field}.numero may hold only letters, digits and '-'")
    issuer = f.countries([doc["pais"]] if f.given(doc.get("pais"), f"{field}.pais") else [], f"{field}.pais")
    expires = doc.get("vence")
    expiry = f.ymd(expires, f"{field}.vence") if f.given(expires, f"{field}.vence") else None
    if expiry is not None and not date(1990, 1, 1) <= expiry <= date(2100, 12, 31):
        raise f.fail(f.INVALID_DATE, f"{field}.vence is not a plausible expiry date")
    return {
        "document_type": f.code(doc.get("tipo"), f"{field}.tipo", DOCUMENT_TYPES) or "OTHER",
        "number": number,
        "issuing_country": issuer[0] if issuer else None,
        "expires_on": expiry,
    }


def person(given: Any, family: str | None, born: date | None, sex: Any, nationalities: Any,
           documents: list[dict[str, Any]], field: str, ctx: Context) -> dict[str, Any]:
    """A Person in the schema's shape."""
    return {
        "given_names": name(given, f"{field} nombres", ctx),
        "surnames": family,
        "date_of_birth": born,
        "birth_year": None,
        "sex": f.code(sex, f"{field} sexo", SEX, required=False),
        "nationalities": f.countries(nationalities, f"{field} nacionalidades"),
        "documents": [document(d, f"{field} documento", ctx) if isinstance(d, dict) else _not_object(field)
                      for d in documents],
    }


def _not_object(field: str) -> dict[str, Any]:
    raise f.fail(f.INVALID, f"{field}: each document must be a JSON object")


def item(category: Any, kind: Any, amount: Any, unit: Any, field: str) -> dict[str, Any]:
    """One seized item; the kind must be one known for its category, the quantity more than 0, and whole when
    its unit counts things (UNITS, ROUNDS, PACKAGES)."""
    cat = f.code(category, f"{field} tipo", CATEGORIES) or "OTHER"
    kind_code = f.code(kind, f"{field} descripción ({cat.lower()})", KINDS[cat]) or ""
    unit_code = f.code(unit, f"{field} unidad", UNITS) or ""
    return {
        "category": cat,
        "kind": kind_code,
        "quantity": f.quantity(amount, f"{field} cantidad", whole=unit_code in COUNTED),
        "unit": unit_code,
    }


def conveyance(kind: Any, label: Any, identifier: Any, flag: Any, field: str, ctx: Context) -> dict[str, Any]:
    """A vessel, vehicle or aircraft."""
    flags = f.countries([flag] if f.given(flag, f"{field} bandera") else [], f"{field} bandera")
    return {
        "kind": f.code(kind, f"{field} tipo", CONVEYANCES) or "OTHER",
        "name": f.text(label, f"{field} nombre", ctx.limits.name),
        "identifier": f.text(identifier, f"{field} matrícula", ctx.limits.document),
        "flag_country": flags[0] if flags else None,
    }
