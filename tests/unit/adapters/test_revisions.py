"""Later versions in the agencies' formats: COMBIFRON's revision and accion, SNM's revision and estado."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from adapters import _fields as f
from adapters.core import Result, check_lifecycle, lifecycle, revision
from puente.errors import AdapterError

MESSAGE: dict[str, Any] = {
    "version": "1.0", "id_mensaje": "COL-ARC-2026-00412", "tipo": "EVENTO_FRONTERA", "entidad": "ARC",
    "fecha_evento": "2026-11-02T05:10:00-05:00", "fecha_envio": "2026-11-02T09:00:00-05:00",
    "ubicacion": {"latitud": 8.633, "longitud": -77.35, "provincia": "Chocó", "lugar": "Capurganá"},
    "restricciones": {"clasificacion": "RESERVADA", "difusion": ["COL", "FEAN", "USA"], "advertencias": [],
                      "manejo": "H2", "consentimiento": ["FEAN"], "calificacion": "B2"},
    "contenido": {"tipo_evento": "GRUPO_ARMADO", "cantidad_personas": 12, "direccion": "HACIA_PANAMA"},
}
HIT: dict[str, Any] = {
    "id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
    "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "fecha_nacimiento": "1988-03-02"},
    "coincidencia": {"lista": "notificación roja", "puntaje": 0.93}, "riesgo": "alto", "accion": "inadmitido",
}


def _line(doc: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**doc, **changes}, ensure_ascii=False).encode() + b"\n"


def test_a_message_without_revision_fields_is_a_first_publication(one: Callable[..., dict[str, Any]]) -> None:
    """No revision and no accion (or ALTA with revision 1): version 1, no lifecycle."""
    for line in (_line(MESSAGE), _line(MESSAGE, revision=1, accion="alta")):
        alert = one("combifron", line)
        assert (alert["version"], alert["lifecycle"]) == (1, None)


@pytest.mark.parametrize(("accion", "action"), [("ACTUALIZACION", "UPDATE"), ("Reclasificación", "RECLASSIFY")])
def test_later_revisions_keep_the_id_and_say_what_they_do(one: Callable[..., dict[str, Any]], accion: str,
                                                          action: str) -> None:
    """A later revision of the same id_mensaje is the same alert id, its revision the version, its accion the action."""
    first = one("combifron", _line(MESSAGE))
    later = one("combifron", _line(MESSAGE, revision=4, accion=accion))
    assert later["alert_id"] == first["alert_id"] == "COMBIFRON:COL-ARC-2026-00412"
    assert later["version"] == 4
    assert later["lifecycle"] == {"action": action, "reason": None, "partners": []}


def test_a_cancellation_maps_its_reason(one: Callable[..., dict[str, Any]]) -> None:
    """ANULACION's motivo_anulacion becomes the RecallReason symbol (PROTECCION_FUENTE -> SOURCE_PROTECTION)."""
    alert = one("combifron", _line(MESSAGE, revision=2, accion="ANULACION", motivo_anulacion="protección fuente"))
    assert alert["lifecycle"] == {"action": "RECALL", "reason": "SOURCE_PROTECTION", "partners": []}
    for label, symbol in (("ERROR", "ERROR"), ("LEGAL", "LEGAL"), ("SUPERADA", "SUPERSEDED")):
        got = one("combifron", _line(MESSAGE, revision=2, accion="ANULACION", motivo_anulacion=label))
        assert got["lifecycle"]["reason"] == symbol


def test_a_consent_adds_its_partners_to_the_originators_consent(one: Callable[..., dict[str, Any]]) -> None:
    """consentimiento_nuevo is named in the lifecycle and added to originator_consent, even when the envelope's
    consentimiento does not list it; one listed in both appears once."""
    alert = one("combifron", _line(MESSAGE, revision=2, accion="CONSENTIMIENTO", consentimiento_nuevo=["USA"]))
    assert alert["lifecycle"] == {"action": "CONSENT", "reason": None, "partners": ["USA"]}
    assert alert["markings"]["originator_consent"] == ["FEAN", "USA"]
    both = {**MESSAGE["restricciones"], "consentimiento": ["FEAN", "USA"]}
    alert = one("combifron", _line(MESSAGE, restricciones=both, revision=3, accion="CONSENTIMIENTO",
                                   consentimiento_nuevo="USA, CRI"))
    assert alert["lifecycle"]["partners"] == ["USA", "CRI"]
    assert alert["markings"]["originator_consent"] == ["FEAN", "USA", "CRI"]


@pytest.mark.parametrize(("changes", "why"), [
    ({"revision": "2", "accion": "ACTUALIZACION"}, f.INVALID),
    ({"revision": 0}, f.INVALID),
    ({"revision": 1_000_001, "accion": "ACTUALIZACION"}, f.INVALID),
    ({"revision": True}, f.INVALID),
    ({"revision": 2, "accion": "ALTA"}, f.INVALID),
    ({"revision": 2}, f.MISSING_FIELD),
    ({"accion": "ANULACION", "motivo_anulacion": "ERROR"}, f.INVALID),
    ({"revision": 2, "accion": "BORRAR"}, f.UNKNOWN_CODE),
    ({"revision": 2, "accion": "ANULACION"}, f.MISSING_FIELD),
    ({"revision": 2, "accion": "ANULACION", "motivo_anulacion": "CAPRICHO"}, f.UNKNOWN_CODE),
    ({"revision": 2, "accion": "ACTUALIZACION", "motivo_anulacion": "ERROR"}, f.INVALID),
    ({"revision": 2, "accion": "CONSENTIMIENTO"}, f.MISSING_FIELD),
    ({"revision": 2, "accion": "CONSENTIMIENTO", "consentimiento_nuevo": []}, f.MISSING_FIELD),
    ({"revision": 2, "accion": "CONSENTIMIENTO", "consentimiento_nuevo": ["VEN"]}, f.UNKNOWN_CODE),
    ({"revision": 2, "accion": "CONSENTIMIENTO", "consentimiento_nuevo": {"USA": True}}, f.INVALID),
    ({"revision": 2, "accion": "RECLASIFICACION", "consentimiento_nuevo": ["USA"]}, f.INVALID),
])
def test_bad_revision_fields_are_refused_with_their_reason(reason: Callable[..., str], changes: dict[str, Any],
                                                           why: str) -> None:
    """A revision not a whole number from 1, an action without its revision or its reason, a reason or a consent
    where none belongs, an unknown action or partner: each is refused with its reason code."""
    assert reason("combifron", _line(MESSAGE, **changes)) == why


@pytest.mark.parametrize("accion", ["RECLASIFICACION", "ACTUALIZACION", "CONSENTIMIENTO"])
def test_a_later_revision_states_its_markings_or_is_refused(run: Callable[..., list[Result]], accion: str) -> None:
    """The agency's defaults are for a first version: a revision 2 without restricciones, or without one of the
    markings whose default could be wider than what revision 1 set (SECRETA, released to no one), is refused
    as missing-field naming what it leaves out, never published as RESTRINGIDO to COL and FEAN."""
    secret = {**MESSAGE, "restricciones": {**MESSAGE["restricciones"], "clasificacion": "SECRETA", "difusion": []}}
    extra = {"consentimiento_nuevo": ["USA"]} if accion == "CONSENTIMIENTO" else {}
    bare = {k: v for k, v in secret.items() if k != "restricciones"}
    partial = {**secret, "restricciones": {k: v for k, v in secret["restricciones"].items() if k != "difusion"}}
    for later in (bare, partial):
        results = run("combifron", _line(secret) + _line(later, revision=2, accion=accion, **extra))
        assert results[0].alert is not None and results[0].alert["markings"]["releasable_to"] == []
        error = results[1].error
        assert results[1].alert is None and error is not None and error.reason == f.MISSING_FIELD
        assert "restricciones.difusion" in str(error) and "COL-ARC" not in str(error)
    assert "restricciones.clasificacion" in str(run("combifron", _line(bare, revision=2, accion=accion, **extra))[0]
                                                 .error)
    stated = run("combifron", _line(secret, revision=2, accion=accion, **extra))[0]
    assert stated.alert is not None and stated.alert["markings"]["classification"] == "SECRETO"
    assert run("combifron", _line(bare))[0].alert is not None  # a first version still takes the defaults


def test_an_snm_correction_states_its_marcado_and_a_cancellation_need_not(run: Callable[..., list[Result]]) -> None:
    """An SNM revision in force (an UPDATE) without marcado is refused as missing-field; a cancellation (a RECALL,
    whose content and markings the broker ignores) is published without one, as refusing it would keep a hit on
    the wrong person at the partners that received it."""
    corrected = run("snm", _line(HIT, revision=2, riesgo="medio"))[0]
    assert corrected.error is not None and corrected.error.reason == f.MISSING_FIELD
    assert "marcado.clasificacion" in str(corrected.error)
    withdrawn = run("snm", _line(HIT, revision=2, estado="ANULADO", motivo_anulacion="ERROR"))[0]
    assert withdrawn.alert is not None and withdrawn.alert["lifecycle"]["action"] == "RECALL"


def test_an_snm_hit_in_force_is_first_published_then_corrected(one: Callable[..., dict[str, Any]]) -> None:
    """VIGENTE (the default) is version 1 with no lifecycle; with revision 2 it is an UPDATE of the same alert id;
    the screening action taken at the post stays accion."""
    first = one("snm", _line(HIT))
    marked = {"clasificacion": "RESTRINGIDO", "difusion": ["COL", "USA", "CRI", "FEAN"], "advertencias": ["PII"],
              "manejo": "H0", "calificacion": "A2"}  # the defaults HIT took, stated: a later version takes none
    later = one("snm", _line(HIT, revision=2, estado="vigente", riesgo="medio", marcado=marked))
    assert later["markings"] == first["markings"]
    assert (first["version"], first["lifecycle"]) == (1, None)
    assert later["alert_id"] == first["alert_id"] and later["version"] == 2
    assert later["lifecycle"] == {"action": "UPDATE", "reason": None, "partners": []}
    assert later["payload"]["action_taken"] == "REFUSED_ENTRY"


def test_an_snm_cancellation_is_a_recall_with_its_reason(one: Callable[..., dict[str, Any]]) -> None:
    """ANULADO with motivo_anulacion ERROR (a hit on the wrong person) is a RECALL, reason ERROR."""
    alert = one("snm", _line(HIT, revision=3, estado="ANULADO", motivo_anulacion="error"))
    assert (alert["version"], alert["lifecycle"]) == (3, {"action": "RECALL", "reason": "ERROR", "partners": []})


@pytest.mark.parametrize(("changes", "why"), [
    ({"revision": -1}, f.INVALID),
    ({"revision": "dos"}, f.INVALID),
    ({"revision": 2.5}, f.INVALID),
    ({"estado": "ANULADO", "motivo_anulacion": "ERROR"}, f.INVALID),
    ({"revision": 2, "estado": "ANULADO"}, f.MISSING_FIELD),
    ({"revision": 2, "estado": "ANULADO", "motivo_anulacion": "DUPLICADO"}, f.UNKNOWN_CODE),
    ({"revision": 2, "estado": "SUSPENDIDO"}, f.UNKNOWN_CODE),
    ({"revision": 2, "motivo_anulacion": "ERROR"}, f.INVALID),
])
def test_bad_snm_revision_fields_are_refused_with_their_reason(reason: Callable[..., str], changes: dict[str, Any],
                                                               why: str) -> None:
    """SNM's revision, estado and motivo_anulacion follow the same rules, in its own words."""
    assert reason("snm", _line(HIT, **changes)) == why


def test_messages_never_quote_the_record(run: Callable[..., list[Result]]) -> None:
    """A revision given as text, or as a number out of range, is not quoted back (a shifted column could put a
    document number there)."""
    results = run("snm", _line(HIT, revision="PA1234567"))
    assert results[0].error is not None and "PA1234567" not in str(results[0].error)
    results = run("snm", _line(HIT, revision=81234567))
    assert results[0].error is not None and "81234567" not in str(results[0].error)


def test_the_core_rules_hold_whatever_the_format() -> None:
    """revision() takes JSON whole numbers; lifecycle() and check_lifecycle() refuse what no version may be."""
    assert (revision(None, "r"), revision(3, "r"), revision(3.0, "r")) == (1, 3, 3)
    assert lifecycle(1, None) is None
    assert lifecycle(2, "CONSENT", partners=["USA", "USA"]) == {"action": "CONSENT", "reason": None,
                                                                "partners": ["USA"]}
    for version, action, kw in ((1, "UPDATE", {}), (2, None, {}), (2, "DELETE", {}), (2, "RECALL", {}),
                                (2, "RECALL", {"reason": "WHIM"}), (2, "UPDATE", {"reason": "ERROR"}),
                                (2, "CONSENT", {}), (2, "UPDATE", {"partners": ["USA"]})):
        with pytest.raises(AdapterError):
            lifecycle(version, action, **kw)
    consent = {"version": 2, "lifecycle": {"action": "CONSENT", "reason": None, "partners": ["USA"]},
               "markings": {"originator_consent": ["FEAN"]}}
    with pytest.raises(AdapterError, match="originator_consent lacks"):
        check_lifecycle(consent)
    with pytest.raises(AdapterError):
        check_lifecycle({"version": 2, "lifecycle": None, "markings": {"originator_consent": []}})
