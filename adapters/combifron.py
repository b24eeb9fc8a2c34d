"""Colombia's alerts through COMBIFRON, in the binational agreed JSON format -> any alert type.

One message per line (JSON Lines), in Spanish, version 1.x of the agreed envelope::

    {"version": "1.0", "id_mensaje": "COL-ARC-2026-00412", "tipo": "EVENTO_FRONTERA",
     "entidad": "ARC", "dependencia": "Fuerza Naval del Pacífico",
     "fecha_evento": "2026-11-02T05:10:00-05:00", "fecha_envio": "2026-11-02T09:00:00-05:00",
     "ubicacion": {"latitud": 8.61, "longitud": -77.36, "provincia": "Chocó", "sector": null, "lugar": "Capurganá"},
     "restricciones": {"clasificacion": "RESERVADA", "difusion": ["COL", "FEAN"], "manejo": "H2",
                       "consentimiento": ["FEAN"], "advertencias": [], "calificacion": "B2"},
     "resumen": "...", "contenido": {...}}

``id_mensaje`` is numbered by each entity in its own series, starting ``COL-<entidad>-`` (the entity's
originator code and a hyphen), and the alert id is ``COMBIFRON:<id_mensaje>`` for every revision. A
message whose id_mensaje does not start with its own entity's code is refused: without that rule one
entity's message carrying another's number would be a later version of the other's alert (the broker
refuses it too, as naming another originator than the first version's, but only once that one reached
a partner).

``tipo`` is EVENTO_FRONTERA (-> BORDER_EVENT), INCAUTACION (-> SEIZURE) or ALERTA_MIGRATORIA
(-> WATCHLIST_HIT); ``contenido`` holds that type's fields in the same Spanish keys the
Panamanian agencies use. The alert is published by agency COMBIFRON, but its originator is
the Colombian entity with country COL: the policy then applies Colombia's restrictions at
every hop (a third country receives it only with Colombia's recorded consent), and the
message's own markings, in Colombia's terms, are mapped onto Panama's scale by the table in
``agencies.yaml``. Where a first message is silent, the defaults are restrictive (H2: no onward
sharing without consent).

Revisions (envelope 1.x, optional fields; a message without them is a first publication). Each
revision of an ``id_mensaje`` is the whole message again, as it now stands, under the same
``id_mensaje`` and a higher ``revision``; the alert keeps its id and takes the revision as its
version. Its ``restricciones`` too: a revision other than an ANULACION states clasificacion, difusion,
advertencias, manejo and calificacion (``[]`` for none), or is refused as ``missing-field``. The defaults
are for a first message only: filling a revision's gaps, they would replace what the revision before set,
a RECLASIFICACION to SECRETA released to no one followed by an ACTUALIZACION that left it out going to
COL and FEAN as RESTRINGIDA. An ANULACION's restricciones are not required (the broker ignores a
recall's content)::

    "revision": 3                      whole number from 1 (default 1)
    "accion": "ANULACION"              ALTA (default): first publication, with revision 1 only;
                                       ACTUALIZACION: corrected content; RECLASIFICACION: new restricciones;
                                       CONSENTIMIENTO: Colombia consents to release to consentimiento_nuevo;
                                       ANULACION: withdrawn for good. All but ALTA need revision 2 or more
    "motivo_anulacion": "ERROR"        with ANULACION, and only there: ERROR, LEGAL, PROTECCION_FUENTE, SUPERADA
    "consentimiento_nuevo": ["USA"]    with CONSENTIMIENTO, and only there: the partners now consented to,
                                       not empty, each a partner id the policy knows

A consent's partners are added to the alert's ``originator_consent`` (which holds every consent
given, and is what the policy reads) whether or not ``restricciones.consentimiento`` lists them
too: the consent is what the message is for, and asking for the same ids twice would turn a
mismatch into a dead letter that holds back a consent Colombia gave. ``consentimiento`` may list
them as well (the union is taken); it should still list every earlier consent, since each
revision is the whole message. An ANULACION is also the whole message and must map like any
other (the broker ignores its content); when the export cannot produce it, the agency's officer
can recall the alert with ``puente recall``.

Those are the keys the adapter reads (``KEYS``), at every level, and ``contenido`` holds only its
type's keys (a seizure's ``elementos`` in an EVENTO_FRONTERA is refused, not dropped); any other
key refuses the message, saying where it is, unless ``agencies.yaml`` lists its path under COMBIFRON's
``ignored_keys``. A key in ``restricciones`` that is no marking refuses the message whatever the
configuration says: Colombia's restrictions must never be lost to a misspelling.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from adapters import _fields as f
from adapters import _shared as sh
from adapters._readers import Item, json_lines, recognised
from adapters.config import Context
from adapters.core import (
    Adapter,
    ByKind,
    Each,
    Keys,
    alert,
    alert_id,
    lifecycle,
    location,
    lookup,
    markings,
    names,
    obj,
    revision,
    seq,
)
from adapters.senafront import DIRECTIONS, EVENT_TYPES, LABELS
from adapters.senan import MARKINGS, marking_labels, marking_overrides
from adapters.snm import LIST_LABELS, TRAVELLER, hit
from puente.wire import series_unit

TYPES = {"EVENTO_FRONTERA": "BORDER_EVENT", "INCAUTACION": "SEIZURE", "ALERTA_MIGRATORIA": "WATCHLIST_HIT"}
# accion -> the schema's LifecycleAction (ALTA, a first publication, has none).
ACTIONS = {"ALTA": None, "ACTUALIZACION": "UPDATE", "RECLASIFICACION": "RECLASSIFY", "CONSENTIMIENTO": "CONSENT",
           "ANULACION": "RECALL"}
_LATER = "ACTUALIZACION, RECLASIFICACION, CONSENTIMIENTO or ANULACION"
# contenido per alert type, as _border, _seizure and _watchlist (with snm.hit) read it.
_CONTENT = {
    "BORDER_EVENT": Keys("tipo_evento", "cantidad_personas", "direccion", "nacionalidades", "unidad", "observaciones"),
    "SEIZURE": Keys("operacion", elementos=Each(Keys("tipo", "descripcion", "cantidad", "unidad")),
                    medio=Keys("tipo", "nombre", "matricula", "bandera"),
                    capturados=Each(Keys("nombres", "apellidos", "fecha_nacimiento", "sexo", "nacionalidades",
                                         documentos=Each(sh.DOCUMENT_KEYS)))),
    "WATCHLIST_HIT": Keys("lista", "propietario", "motivo", "puntaje", "riesgo", "vuelo", "cruce", "accion", "puesto",
                          persona=TRAVELLER),
}


def kind(doc: Mapping[str, Any]) -> str:
    """The alert type ``tipo`` names: what the mapping builds, and so whose keys ``contenido`` may hold (``KEYS``)."""
    return lookup(TYPES, doc.get("tipo"), "tipo") or ""


KEYS = Keys("version", "id_mensaje", "tipo", "entidad", "dependencia", "fecha_evento", "fecha_envio", "resumen",
            "revision", "accion", "motivo_anulacion", "consentimiento_nuevo",
            ubicacion=Keys("latitud", "longitud", "provincia", "sector", "lugar"), restricciones=MARKINGS,
            contenido=ByKind(kind, _CONTENT))


def read(stream: BinaryIO, ctx: Context) -> Iterator[Item]:
    """Messages, parsed; a file whose first line is no message (``FORMATS["combifron"]``) is refused whole."""
    return recognised(json_lines(stream, ctx.profile.encoding, ctx.limits.record_bytes), "combifron")


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


def _revision(doc: dict[str, Any], ctx: Context) -> tuple[int, str | None, str | None, list[str]]:
    """The message's revision, what it does, why (ANULACION) and whom it consents to (CONSENTIMIENTO)."""
    version = revision(doc.get("revision"), "revision")
    label = lookup({k: k for k in ACTIONS}, doc.get("accion"), "accion", required=False)
    if label is None and version > 1:
        raise f.fail(f.MISSING_FIELD, f"revision {version} needs an accion saying what it does ({_LATER})")
    label = label or "ALTA"
    if label == "ALTA" and version > 1:
        raise f.fail(f.INVALID, f"accion ALTA is a first publication and goes only with revision 1; revision "
                                f"{version} needs {_LATER}")
    if label != "ALTA" and version == 1:
        raise f.fail(f.INVALID, f"accion {label} changes a message already sent and needs revision 2 or more")
    action = ACTIONS[label]
    reason = None
    if action == "RECALL":
        reason = sh.recall_reason(doc.get("motivo_anulacion"), "accion ANULACION")
    elif f.given(doc.get("motivo_anulacion"), "motivo_anulacion"):
        raise f.fail(f.INVALID, "motivo_anulacion goes only with accion ANULACION")
    partners: list[str] = []
    if action == "CONSENT":
        partners = names(doc.get("consentimiento_nuevo"), "consentimiento_nuevo", ctx.vocab.partners) or []
        if not partners:
            raise f.fail(f.MISSING_FIELD, "accion CONSENTIMIENTO needs consentimiento_nuevo: the partners it "
                                          "consents to")
    elif f.given(doc.get("consentimiento_nuevo"), "consentimiento_nuevo") and doc["consentimiento_nuevo"] != []:
        raise f.fail(f.INVALID, "consentimiento_nuevo goes only with accion CONSENTIMIENTO")
    return version, action, reason, partners


def to_alert(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One COMBIFRON message -> an alert of its type, originated in Colombia (pure)."""
    envelope = f.text(doc.get("version"), "version", 10, required=True) or ""
    if not envelope.startswith("1."):
        raise f.fail(f.UNKNOWN_CODE, "format version is not 1.x, the agreed version")
    version, action, reason, consented = _revision(doc, ctx)
    alert_type = kind(doc)
    entity = lookup({k: k for k in ctx.profile.originators}, doc.get("entidad"), "entidad") or ""
    zone, limits = ctx.profile.zone, ctx.limits
    occurred = f.iso_datetime(doc.get("fecha_evento"), "fecha_evento", zone)
    sent = (f.iso_datetime(doc["fecha_envio"], "fecha_envio", zone)
            if f.given(doc.get("fecha_envio"), "fecha_envio") else None)
    u = obj(doc, "ubicacion", "ubicacion")
    loc = location(ctx, f.coordinate(u.get("latitud"), "ubicacion.latitud", "lat"),
                   f.coordinate(u.get("longitud"), "ubicacion.longitud", "lon"), province=u.get("provincia"),
                   sector=u.get("sector"), place=u.get("lugar"), where="ubicacion",
                   labels=("ubicacion.provincia", "ubicacion.sector", "ubicacion.lugar"))
    content = obj(doc, "contenido", "contenido", required=True)
    if alert_type == "BORDER_EVENT":
        payload, title = _border(content, ctx)
    elif alert_type == "SEIZURE":
        payload, title = _seizure(content, ctx)
    else:
        payload, title = _watchlist(content, ctx, occurred)
    originator = f"COL-{entity}"
    over = marking_overrides(doc, "restricciones") | {"originator_agency": originator}
    unit = f.text(doc.get("dependencia"), "dependencia", limits.unit) or ctx.profile.originators[entity]
    later = f"revision {version}" if version > 1 and action != "RECALL" else None
    marks = markings(ctx, over, unit, later=later, labels=marking_labels("restricciones"))
    marks["originator_consent"] = list(dict.fromkeys([*marks["originator_consent"], *consented]))
    ident = alert_id(ctx, doc.get("id_mensaje"), "id_mensaje")
    if series_unit(ident, ctx.agency, "COL-") != originator:
        raise f.fail(f.INVALID, f"id_mensaje must start with {originator}- (the entidad's own series): the id "
                                "is the alert's for every revision, and another entity's number would make this "
                                "message a revision of that entity's alert")
    return alert(
        ctx,
        alert_id=ident,
        alert_type=alert_type,
        occurred_at=occurred,
        reported_at=sent,
        location=loc,
        markings=marks,
        summary=f.text(doc.get("resumen"), "resumen", limits.summary) or title,
        payload=payload,
        version=version,
        lifecycle=lifecycle(version, action, reason=reason, partners=consented),
    )


ADAPTER = Adapter("combifron", "COMBIFRON", "Colombia's alerts through COMBIFRON (agreed JSON lines) -> any type",
                  ("*.jsonl", "*.json"), read, to_alert, keys=KEYS)
