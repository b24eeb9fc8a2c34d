"""Colombia's alerts through COMBIFRON, in the binational agreed JSON format -> any alert type.

One message per line (JSON Lines), in Spanish, version 1.x of the agreed envelope::

    {"version": "1.0", "id_mensaje": "COL-ARC-2026-00412", "tipo": "EVENTO_FRONTERA",
     "entidad": "ARC", "dependencia": "Fuerza Naval del Pacífico",
     "fecha_evento": "2026-11-02T05:10:00-05:00", "fecha_envio": "2026-11-02T09:00:00-05:00",
     "ubicacion": {"latitud": 8.61, "longitud": -77.36, "provincia": "Chocó", "sector": null, "lugar": "Capurganá"},
     "restricciones": {"clasificacion": "RESERVADA", "difusion": ["COL", "FEAN"], "manejo": "H2",
                       "consentimiento": ["FEAN"], "advertencias": [], "calificacion": "B2"},
     "resumen": "...", "contenido": {...}}

``tipo`` is EVENTO_FRONTERA (-> BORDER_EVENT), INCAUTACION (-> SEIZURE) or ALERTA_MIGRATORIA
(-> WATCHLIST_HIT); ``contenido`` holds that type's fields in the same Spanish keys the
Panamanian agencies use. The alert is published by agency COMBIFRON, but its originator is
the Colombian entity with country COL: the policy then applies Colombia's restrictions at
every hop (a third country receives it only with Colombia's recorded consent), and the
message's own markings, in Colombia's terms, are mapped onto Panama's scale by the table in
``agencies.yaml``. Where a message is silent, the defaults are restrictive (H2: no onward
sharing without consent).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from adapters import _fields as f
from adapters import _shared as sh
from adapters._readers import Item, json_lines
from adapters.config import Context
from adapters.core import Adapter, alert, alert_id, location, lookup, markings, obj, seq
from adapters.senafront import DIRECTIONS, EVENT_TYPES, LABELS
from adapters.senan import marking_overrides
from adapters.snm import LIST_LABELS, hit

TYPES = {"EVENTO_FRONTERA": "BORDER_EVENT", "INCAUTACION": "SEIZURE", "ALERTA_MIGRATORIA": "WATCHLIST_HIT"}


def read(stream: BinaryIO, ctx: Context) -> Iterator[Item]:
    """Messages, parsed."""
    return json_lines(stream, ctx.profile.encoding, ctx.limits.record_bytes)


def _border(c: dict[str, Any], ctx: Context) -> tuple[dict[str, Any], str]:
    event = lookup(EVENT_TYPES, c.get("tipo_evento"), "contenido.tipo_evento") or "OTHER"
    headcount = f.integer(c.get("cantidad_personas"), "contenido.cantidad_personas", maximum=50_000)
    return {
        "event_type": event,
        "headcount": headcount,
        "direction": lookup(DIRECTIONS, c.get("direccion"), "contenido.direccion", required=False),
        "nationalities_observed": f.countries(c.get("nacionalidades"), "contenido.nacionalidades"),
        "patrol_unit": f.text(c.get("unidad"), "contenido.unidad", ctx.limits.unit),
        "remarks": f.text(c.get("observaciones"), "contenido.observaciones", ctx.limits.remarks, multiline=True),
    }, LABELS[event] + (f" de {headcount} personas" if headcount else "")


def _captured(p: Any, i: int, ctx: Context) -> dict[str, Any]:
    field = f"contenido.capturados[{i}]"
    if not isinstance(p, dict):
        raise f.fail(f.INVALID, f"{field} must be a JSON object")
    born = f.birth_date(p.get("fecha_nacimiento"), f"{field}.fecha_nacimiento", ctx.now.date())
    return sh.person(p.get("nombres"), sh.surnames(p.get("apellidos"), None, field, ctx), born, p.get("sexo"),
                     p.get("nacionalidades"), seq(p, "documentos", f"{field}.documentos", limit=5), field, ctx)


def _seizure(c: dict[str, Any], ctx: Context) -> tuple[dict[str, Any], str]:
    items = [sh.item(e.get("tipo"), e.get("descripcion"), e.get("cantidad"), e.get("unidad"),
                     f"contenido.elementos[{i}]") if isinstance(e, dict) else _not_object(f"contenido.elementos[{i}]")
             for i, e in enumerate(seq(c, "elementos", "contenido.elementos", required=True))]
    means = obj(c, "medio", "contenido.medio")
    captured = [_captured(p, i, ctx) for i, p in enumerate(seq(c, "capturados", "contenido.capturados", limit=60))]
    return {
        "items": items,
        "conveyance": sh.conveyance(means.get("tipo"), means.get("nombre"), means.get("matricula"),
                                    means.get("bandera"), "contenido.medio", ctx) if means else None,
        "persons_detained": len(captured),
        "detainees": captured,
        "operation_name": f.text(c.get("operacion"), "contenido.operacion", ctx.limits.name),
    }, f"Incautación reportada por Colombia: {len(items)} elemento(s)"


def _watchlist(c: dict[str, Any], ctx: Context, when: Any) -> tuple[dict[str, Any], str]:
    payload = hit(c, ctx, person_key="persona", match=c)
    payload["port_of_entry"] = f.text(c.get("puesto"), "contenido.puesto", ctx.limits.code)
    payload["encountered_at"] = when
    return payload, f"Alerta migratoria de Colombia: {LIST_LABELS[payload['list_name']]}"


def _not_object(field: str) -> dict[str, Any]:
    raise f.fail(f.INVALID, f"{field} must be a JSON object")


def to_alert(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One COMBIFRON message -> an alert of its type, originated in Colombia (pure)."""
    version = f.text(doc.get("version"), "version", 10, required=True) or ""
    if not version.startswith("1."):
        raise f.fail(f.UNKNOWN_CODE, f"{f.naming('format version', version)} is not 1.x, the agreed version")
    kind = lookup(TYPES, doc.get("tipo"), "tipo") or ""
    entity = lookup({k: k for k in ctx.profile.originators}, doc.get("entidad"), "entidad") or ""
    zone, limits = ctx.profile.zone, ctx.limits
    occurred = f.iso_datetime(doc.get("fecha_evento"), "fecha_evento", zone)
    sent = f.iso_datetime(doc["fecha_envio"], "fecha_envio", zone) if doc.get("fecha_envio") else None
    u = obj(doc, "ubicacion", "ubicacion")
    loc = location(ctx, f.coordinate(u.get("latitud"), "ubicacion.latitud", "lat"),
                   f.coordinate(u.get("longitud"), "ubicacion.longitud", "lon"), province=u.get("provincia"),
                   sector=u.get("sector"), place=u.get("lugar"), where="ubicacion",
                   labels=("ubicacion.provincia", "ubicacion.sector", "ubicacion.lugar"))
    content = obj(doc, "contenido", "contenido", required=True)
    if kind == "BORDER_EVENT":
        payload, title = _border(content, ctx)
    elif kind == "SEIZURE":
        payload, title = _seizure(content, ctx)
    else:
        payload, title = _watchlist(content, ctx, occurred)
    over = marking_overrides(doc, "restricciones") | {"originator_agency": f"COL-{entity}"}
    unit = f.text(doc.get("dependencia"), "dependencia", limits.unit) or ctx.profile.originators[entity]
    return alert(
        ctx,
        alert_id=alert_id(ctx, doc.get("id_mensaje"), "id_mensaje"),
        alert_type=kind,
        occurred_at=occurred,
        reported_at=sent,
        location=loc,
        markings=markings(ctx, over, unit),
        summary=f.text(doc.get("resumen"), "resumen", limits.summary) or title,
        payload=payload,
    )


ADAPTER = Adapter("combifron", "COMBIFRON", "Colombia's alerts through COMBIFRON (agreed JSON lines) -> any type",
                  ("*.jsonl", "*.json"), read, to_alert)
