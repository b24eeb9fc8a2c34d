"""National Migration Service: border-screening hits as JSON Lines -> WATCHLIST_HIT alerts.

One object per line, as the screening system writes them at Tocumen and the land posts::

    {"id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
     "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "segundo_apellido": "Gómez",
                 "fecha_nacimiento": "1988-03-02", "sexo": "M", "nacionalidades": ["COL", "ESP"],
                 "documentos": [{"tipo": "pasaporte", "numero": "AX1234567", "pais": "COL", "vence": "2029-05-01"}]},
     "coincidencia": {"lista": "INTERPOL_RED_NOTICE", "motivo": "nombre y fecha de nacimiento", "puntaje": 0.93},
     "riesgo": "alto", "vuelo": "CM 204", "accion": "inspección secundaria", "marcado": {...}}

Times without an offset are Panama time. The alert's summary names the list and the post,
never the traveller: summaries are kept by more agreements than names are.

Corrections and cancellations (optional fields; a hit without them is its first publication).
The screening system sends the whole hit again, as it now stands, under the same
``id_control``; the alert keeps its id and takes the revision as its version. A correction states
its ``marcado`` (clasificacion, difusion, advertencias, manejo and calificacion; ``[]`` for none),
even when the first hit left it to the defaults, or is refused as ``missing-field``: the defaults
are for a first hit only, and in a correction they would replace what the hit had before (a
SECRETO hit released to no one, corrected without its marcado, went to every default partner).
A cancellation need not (the broker ignores a recall's content)::

    "revision": 2                      whole number from 1 (default 1)
    "estado": "ANULADO"                VIGENTE (default): in force; on a revision above 1, a correction
                                       (an UPDATE: new content or new marcado alike). ANULADO: withdrawn
                                       for good; needs revision 2 or more
    "motivo_anulacion": "ERROR"        with ANULADO, and only there: ERROR (a hit on the wrong person),
                                       LEGAL, PROTECCION_FUENTE, SUPERADA

``accion`` stays what it always was, the action taken at the post (so the state is ``estado``).
An ANULADO hit is still the whole record and must map like any other (the broker ignores its
content); when the export cannot produce it, the agency's officer can recall the alert with
``puente recall``. The format has no consent of its own: a consent travels in a correction's
``marcado.consentimiento``, or as ``puente consent grant``.

Those are the keys the adapter reads (``KEYS``), at every level; any other key refuses the hit,
saying where it is, unless ``agencies.yaml`` lists its path under SNM's ``ignored_keys``. A key in
``marcado`` that is no marking refuses the hit whatever the configuration says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from adapters import _fields as f
from adapters import _shared as sh
from adapters._codes import norm_key
from adapters._readers import Item, json_lines, recognised
from adapters.config import Context
from adapters.core import (
    Adapter,
    Each,
    Keys,
    alert,
    alert_id,
    either,
    lifecycle,
    location,
    lookup,
    markings,
    obj,
    revision,
    seq,
)
from adapters.senan import MARKINGS, marking_labels, marking_overrides

# Watchlists: label -> (list code, who keeps it).
LISTS = {
    "INTERPOL_RED_NOTICE": ("INTERPOL_RED_NOTICE", "INTERPOL"),
    "NOTIFICACION_ROJA": ("INTERPOL_RED_NOTICE", "INTERPOL"),
    "INTERPOL_DIFFUSION": ("INTERPOL_DIFFUSION", "INTERPOL"),
    "DIFUSION_INTERPOL": ("INTERPOL_DIFFUSION", "INTERPOL"),
    "INTERPOL_SLTD": ("INTERPOL_SLTD", "INTERPOL"),
    "DOCUMENTO_ROBADO_O_PERDIDO": ("INTERPOL_SLTD", "INTERPOL"),
    "PAN_NATIONAL": ("PAN_NATIONAL", "PAN"), "IMPEDIMENTO_DE_ENTRADA": ("PAN_NATIONAL", "PAN"),
    "USA_PARTNER": ("USA_PARTNER", "USA"), "COL_PARTNER": ("COL_PARTNER", "COL"), "CRI_PARTNER": ("CRI_PARTNER", "CRI"),
}
_LIST_FORMS = {form: form for form in LISTS}  # f.code's table: the lookup forms LISTS is keyed by
LIST_LABELS = {"INTERPOL_RED_NOTICE": "notificación roja de INTERPOL", "INTERPOL_DIFFUSION": "difusión de INTERPOL",
               "INTERPOL_SLTD": "documento robado o perdido (INTERPOL)", "PAN_NATIONAL": "impedimento de entrada",
               "USA_PARTNER": "lista de Estados Unidos", "COL_PARTNER": "lista de Colombia",
               "CRI_PARTNER": "lista de Costa Rica"}
RISK = {"BAJO": "LOW", "MEDIO": "MEDIUM", "ALTO": "HIGH", "MUY_ALTO": "CRITICAL", "CRITICO": "CRITICAL",
        "DESCONOCIDO": "UNKNOWN", **{c: c for c in ("LOW", "MEDIUM", "HIGH", "CRITICAL", "UNKNOWN")}}
STATES = {"VIGENTE": "VIGENTE", "ANULADO": "ANULADO"}
# The person screened, as traveller() reads it (COMBIFRON's migration alerts share it).
TRAVELLER = Keys("nombres", "primer_apellido", "segundo_apellido", "apellidos", "fecha_nacimiento", "sexo",
                 "nacionalidades", documentos=Each(sh.DOCUMENT_KEYS))
KEYS = Keys("id_control", "puesto", "fecha_hora", "fecha_reporte", "unidad", "riesgo", "vuelo", "cruce", "accion",
            "revision", "estado", "motivo_anulacion", viajero=TRAVELLER,
            coincidencia=Keys("lista", "motivo", "puntaje", "propietario"), marcado=MARKINGS)
ACTIONS = {
    "INSPECCION_SECUNDARIA": "SECONDARY_INSPECTION", "SEGUNDA_REVISION": "SECONDARY_INSPECTION",
    "INADMITIDO": "REFUSED_ENTRY", "NO_ADMITIDO": "REFUSED_ENTRY", "INGRESO_DENEGADO": "REFUSED_ENTRY",
    "RECHAZADO": "REFUSED_ENTRY", "APREHENDIDO": "DETAINED", "DETENIDO": "DETAINED", "ADMITIDO": "ADMITTED",
    "INGRESO_PERMITIDO": "ADMITTED", "DEPORTADO": "DEPORTED", "REMITIDO_A_LA_DIJ": "HANDED_OVER",
    **{c: c for c in ("SECONDARY_INSPECTION", "REFUSED_ENTRY", "DETAINED", "ADMITTED", "DEPORTED", "HANDED_OVER")},
}


def read(stream: BinaryIO, ctx: Context) -> Iterator[Item]:
    """Screening hits, parsed; a file whose first line is no hit (``FORMATS["snm"]``) is refused whole."""
    return recognised(json_lines(stream, ctx.profile.encoding, ctx.limits.record_bytes), "snm")


def traveller(v: dict[str, Any], field: str, ctx: Context) -> dict[str, Any]:
    """The person screened: two surnames joined, several nationalities, documents."""
    born = f.birth_date(v.get("fecha_nacimiento"), f"{field}.fecha_nacimiento", ctx.now.date())
    if f.given(v.get("apellidos"), f"{field}.apellidos"):
        # both surnames in one field, or each in its own: one way or the other, never both
        either(v, f"{field}.apellidos", "apellidos", "primer_apellido", "segundo_apellido")
        family = sh.surnames(v["apellidos"], None, f"{field}.apellidos", ctx)
    else:
        family = sh.surnames(v.get("primer_apellido"), v.get("segundo_apellido"), f"{field}.apellidos", ctx)
    out = sh.person(v.get("nombres"), family, born, v.get("sexo"), v.get("nacionalidades"),
                    seq(v, "documentos", f"{field}.documentos", limit=5), field, ctx)
    if not (out["given_names"] or out["surnames"]):
        raise f.fail(f.MISSING_FIELD, f"{field} has neither names nor surnames")
    return out


def score(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise f.fail(f.INVALID, f"{field} must be a number from 0 to 1")
    return float(value)


def hit(doc: dict[str, Any], ctx: Context, *, person_key: str, match: dict[str, Any]) -> dict[str, Any]:
    """The WatchlistHit payload (shared with COMBIFRON's migration alerts)."""
    label = f.text(match.get("lista"), "lista", 60, required=True) or ""
    if norm_key(label) not in LISTS:  # its own message: the lists known, and the one meant
        raise f.fail(f.UNKNOWN_CODE, f"lista is not a known watchlist{f.did_you_mean(label, LISTS)} "
                                     f"({', '.join(sorted({c for c, _ in LISTS.values()}))})")
    # Through f.code, as every code: a name or a number beside the label ('Notificación roja — Иван Петров') is
    # refused, never folded away with the lookup form.
    found = LISTS[f.code(label, "lista", _LIST_FORMS) or ""]
    owner = found[1]
    if f.given(match.get("propietario"), "propietario"):
        owners = f.countries([match["propietario"]], "propietario")
        if not owners:  # blank: no owner stated, and none may be taken from the list in its place
            raise f.fail(f.MISSING_FIELD, "propietario is blank; leave it out (or null) for the list's own keeper")
        if owners[0] != owner:
            # A list has one keeper, and the policy holds a hit to it (vocabulary.yaml, owners.lists): another named
            # here is a record at odds with itself, refused so a person settles which list matched, rather than the
            # hit leaving with either keeper silently dropped.
            raise f.fail(f.INVALID, f"propietario {owners[0]} is not the keeper of lista {found[0]} ({owner}); "
                                    "leave it out (or null) for the list's own keeper, or name the list it keeps")
    return {
        "person": traveller(obj(doc, person_key, person_key, required=True), person_key, ctx),
        "list_name": found[0],
        "list_owner": owner,
        "match_reason": f.text(match.get("motivo"), "motivo", ctx.limits.place),
        "match_score": score(match.get("puntaje"), "puntaje"),
        "risk_level": lookup(RISK, doc.get("riesgo"), "riesgo", required=False) or "UNKNOWN",
        "port_of_entry": None,
        "encounter": f.text(either(doc, "vuelo", "vuelo", "cruce"), "vuelo", ctx.limits.place),
        "encountered_at": None,
        "action_taken": lookup(ACTIONS, doc.get("accion"), "accion", required=False),
    }


def port(value: Any, ctx: Context) -> tuple[str, dict[str, Any]]:
    """A post code or name -> (code, location)."""
    table = {code: code for code in ctx.config.ports} | {norm_key(p.name): c for c, p in ctx.config.ports.items()}
    code = lookup(table, value, "puesto") or ""
    p = ctx.config.ports[code]
    return code, location(ctx, p.latitude, p.longitude, province=p.province, sector=p.border_sector,
                          place=p.name, where="puesto") or {}


def state(doc: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """The hit's version and lifecycle, from ``revision``, ``estado`` and ``motivo_anulacion``."""
    version = revision(doc.get("revision"), "revision")
    withdrawn = lookup(STATES, doc.get("estado"), "estado", required=False) == "ANULADO"
    if withdrawn and version == 1:
        raise f.fail(f.INVALID, "estado ANULADO withdraws a hit already sent and needs revision 2 or more")
    reason = None
    if withdrawn:
        reason = sh.recall_reason(doc.get("motivo_anulacion"), "estado ANULADO")
    elif f.given(doc.get("motivo_anulacion"), "motivo_anulacion"):
        raise f.fail(f.INVALID, "motivo_anulacion goes only with estado ANULADO")
    action = "RECALL" if withdrawn else ("UPDATE" if version > 1 else None)
    return version, lifecycle(version, action, reason=reason)


def to_alert(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One screening hit -> a WATCHLIST_HIT alert (pure)."""
    version, life = state(doc)
    when = f.iso_datetime(doc.get("fecha_hora"), "fecha_hora", ctx.profile.zone)
    code, loc = port(doc.get("puesto"), ctx)
    payload = hit(doc, ctx, person_key="viajero", match=obj(doc, "coincidencia", "coincidencia", required=True))
    payload["port_of_entry"], payload["encountered_at"] = code, when
    return alert(
        ctx,
        alert_id=alert_id(ctx, doc.get("id_control"), "id_control"),
        alert_type="WATCHLIST_HIT",
        occurred_at=when,
        reported_at=f.iso_datetime(doc["fecha_reporte"], "fecha_reporte", ctx.profile.zone)
        if f.given(doc.get("fecha_reporte"), "fecha_reporte") else None,
        location=loc,
        markings=markings(ctx, marking_overrides(doc), f.text(doc.get("unidad"), "unidad", ctx.limits.unit),
                          later=f"revision {version}" if life and life["action"] != "RECALL" else None,
                          labels=marking_labels()),
        summary=f"Coincidencia con {LIST_LABELS[payload['list_name']]} en {loc['place_name']}",
        payload=payload,
        version=version,
        lifecycle=life,
    )


ADAPTER = Adapter("snm", "SNM", "Migration screening hits (JSON lines) -> watchlist hits", ("*.jsonl", "*.ndjson"),
                  read, to_alert, keys=KEYS)
