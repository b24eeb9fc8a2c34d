"""SENAN interdictions: JSON documents from its operations system -> SEIZURE alerts.

The export is one pretty-printed JSON object per interdiction, one after another, each
starting with '{' at the beginning of a line (a folder may also hold one per file)::

    {
      "numero_operacion": "FTC-2026-0311",
      "fecha_hora": "2026-11-03T03:40:00-05:00",        # ISO 8601; without offset: Panama time
      "fecha_hora_reporte": "2026-11-03T09:15:00-05:00", # optional
      "unidad": "Grupo Aeronaval Oriental",  "operacion": "Escudo Marino",
      "posicion": {"latitud": 7.41, "longitud": -78.3, "zona": "Darién", "referencia": "12 mn al SO de Jaqué"},
      "embarcacion": {"tipo": "lancha rápida", "nombre": null, "matricula": "S/M", "bandera": "COL"},
      "carga": [{"tipo": "droga", "descripcion": "cocaína", "cantidad": 1250, "unidad": "paquetes"}],
      "tripulacion": [{"nombres": "...", "primer_apellido": "...", "segundo_apellido": "...",
                       "fecha_nacimiento": "1991-04-02", "sexo": "M", "nacionalidades": ["COL"],
                       "documentos": [{"tipo": "cédula", "numero": "...", "pais": "COL"}], "detenido": true}],
      "marcado": {"clasificacion": "CONFIDENCIAL", "difusion": ["COL", "USA"], "manejo": "H0", "calificacion": "B2"}
    }

Crew members with ``"detenido": false`` (rescued, released at sea) are not detainees; ``true`` or no
``detenido`` means detained, and any other value (``"no"``, ``0``, null) refuses the document.

Those are the keys the adapter reads (``KEYS``), at every level; any other key refuses the
document, naming it, unless ``agencies.yaml`` lists its path under SENAN's ``ignored_keys``
(the shipped export adds ``embarcacion.motores`` and ``carga[].peso_kg``, which are listed).
A key in ``marcado`` that is no marking refuses the document whatever the configuration says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from adapters import _fields as f
from adapters import _shared as sh
from adapters._readers import Item, json_documents, recognised
from adapters.config import Context
from adapters.core import Adapter, Each, Keys, alert, alert_id, either, location, markings, obj, seq

# The marking block's Spanish keys (SENAN's and SNM's marcado, COMBIFRON's restricciones) -> markings().
MARKING_KEYS = {"clasificacion": "classification", "difusion": "releasable_to", "advertencias": "caveats",
                "manejo": "handling_code", "texto_manejo": "handling_text", "calificacion": "grading",
                "consentimiento": "originator_consent"}
# A block of markings is sealed: a key there that is no marking refuses the record, whatever agencies.yaml says.
MARKINGS = Keys.markings(*MARKING_KEYS)
CREW = Keys("nombres", "primer_apellido", "apellidos", "segundo_apellido", "fecha_nacimiento", "sexo",
            "nacionalidades", "nacionalidad", "detenido", documentos=Each(sh.DOCUMENT_KEYS))
KEYS = Keys("numero_operacion", "fecha_hora", "fecha_hora_reporte", "unidad", "operacion",
            posicion=Keys("latitud", "longitud", "zona", "sector", "referencia"),
            embarcacion=Keys("tipo", "nombre", "matricula", "bandera"),
            carga=Each(Keys("tipo", "descripcion", "cantidad", "unidad")), tripulacion=Each(CREW), marcado=MARKINGS)


def read(stream: BinaryIO, ctx: Context) -> Iterator[Item]:
    """Interdiction documents, parsed; one whose first is no interdiction (``FORMATS["senan"]``) refuses the file."""
    return recognised(json_documents(stream, ctx.profile.encoding, ctx.limits.record_bytes), "senan")


def marking_overrides(doc: dict[str, Any], field: str = "marcado") -> dict[str, Any]:
    """The optional marking block, in the Spanish keys agencies' systems use.

    The block is ``MARKINGS`` in the adapter's keys, so a key it does not know has refused the record before this.
    """
    m = obj(doc, field, field)
    return {ours: m.get(theirs) for theirs, ours in MARKING_KEYS.items()}


def marking_labels(field: str = "marcado") -> dict[str, str]:
    """How a message names each marking of the block: 'marcado.difusion' for releasable_to."""
    return {ours: f"{field}.{theirs}" for theirs, ours in MARKING_KEYS.items()}


def crew_member(c: Any, i: int, ctx: Context) -> dict[str, Any]:
    field = f"tripulacion[{i}]"
    if not isinstance(c, dict):
        raise f.fail(f.INVALID, f"{field} must be a JSON object")
    born = f.birth_date(c.get("fecha_nacimiento"), f"{field}.fecha_nacimiento", ctx.now.date())
    first = either(c, f"{field}.primer_apellido", "primer_apellido", "apellidos")
    family = sh.surnames(first, c.get("segundo_apellido"), field, ctx)
    nationalities = either(c, f"{field}.nacionalidades", "nacionalidades", "nacionalidad")
    return sh.person(c.get("nombres"), family, born, c.get("sexo"), nationalities,
                     seq(c, "documentos", f"{field}.documentos", limit=5), field, ctx)


def _detained(c: Any, i: int) -> bool:
    """Whether crew member ``i`` is a detainee: ``"detenido"`` true, or absent (the export's default); false
    leaves them out. Anything else refuses the document: "no", 0 or "false" read as true would send a rescued
    person's name and documents to partners as a detainee's."""
    if not isinstance(c, dict):
        return True  # crew_member refuses it, by position
    flag = c.get("detenido", True)
    if type(flag) is not bool:
        raise f.fail(f.INVALID, f"tripulacion[{i}].detenido must be true or false (JSON), got {type(flag).__name__}")
    return flag


def to_alert(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One interdiction document -> a SEIZURE alert (pure)."""
    zone, limits = ctx.profile.zone, ctx.limits
    occurred = f.iso_datetime(doc.get("fecha_hora"), "fecha_hora", zone)
    reported = f.iso_datetime(doc["fecha_hora_reporte"], "fecha_hora_reporte", zone) \
        if f.given(doc.get("fecha_hora_reporte"), "fecha_hora_reporte") else None
    pos = obj(doc, "posicion", "posicion", required=True)
    loc = location(ctx, f.coordinate(pos.get("latitud"), "posicion.latitud", "lat"),
                   f.coordinate(pos.get("longitud"), "posicion.longitud", "lon"),
                   province=pos.get("zona"), sector=pos.get("sector"), place=pos.get("referencia"),
                   where="posicion", labels=("posicion.zona", "posicion.sector", "posicion.referencia"))
    items = [sh.item(c.get("tipo"), c.get("descripcion"), c.get("cantidad"), c.get("unidad"), f"carga[{i}]")
             if isinstance(c, dict) else _bad_entry(f"carga[{i}]")
             for i, c in enumerate(seq(doc, "carga", "carga", required=True))]
    vessel = obj(doc, "embarcacion", "embarcacion")
    crew = seq(doc, "tripulacion", "tripulacion", limit=60)
    detained = [crew_member(c, i, ctx) for i, c in enumerate(crew) if _detained(c, i)]
    # The summary keeps the agency's words for the first item, as cleaned when they were checked above (control
    # characters and odd line breaks that text() folds as whitespace must not come back raw).
    first = seq(doc, "carga", "carga")[0]
    unit = f.text(first.get("unidad"), "carga[0].unidad", 80)
    kind = f.text(first.get("descripcion"), "carga[0].descripcion", 80)
    summary = f"Interdicción: {f.quantity_text(items[0]['quantity'])} {unit} de {kind}"
    return alert(
        ctx,
        alert_id=alert_id(ctx, doc.get("numero_operacion"), "numero_operacion"),
        alert_type="SEIZURE",
        occurred_at=occurred,
        reported_at=reported,
        location=loc,
        markings=markings(ctx, marking_overrides(doc), f.text(doc.get("unidad"), "unidad", limits.unit),
                          labels=marking_labels()),
        summary=summary,
        payload={
            "items": items,
            "conveyance": sh.conveyance(vessel.get("tipo"), vessel.get("nombre"), vessel.get("matricula"),
                                        vessel.get("bandera"), "embarcacion", ctx) if vessel else None,
            "persons_detained": len(detained),
            "detainees": detained,
            "operation_name": f.text(doc.get("operacion"), "operacion", limits.name),
        },
    )


def _bad_entry(field: str) -> dict[str, Any]:
    raise f.fail(f.INVALID, f"{field} must be a JSON object")


ADAPTER = Adapter("senan", "SENAN", "SENAN interdictions (JSON documents) -> seizures", ("*.json",), read, to_alert,
                  keys=KEYS)
