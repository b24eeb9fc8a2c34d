"""The shared core: markings from defaults and overrides, locations, final checks, configuration."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters.config import (
    DEFAULT_CONFIG,
    AdaptersConfig,
    Context,
    Vocabulary,
    check_profile,
    load_config,
    make_context,
)
from adapters.core import Adapter, alert, alert_id, convert, finish, location, markings
from policies import Areas
from puente.errors import AdapterError, ConfigError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _reason(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AdapterError) as caught:
        call(*args, **kwargs)
    return caught.value.reason


def test_markings_default_from_the_agency_profile(ctx_for: Callable[[str], Context]) -> None:
    """A record that carries no markings gets its agency's defaults and its originator."""
    m = markings(ctx_for("SENAFRONT"), {})
    assert (m["classification"], m["handling_code"], m["source_reliability"], m["information_credibility"]) == (
        "RESTRINGIDO", "H0", "B", "2")
    assert m["releasable_to"] == ["COL", "CRI", "USA", "FEAN"] and m["caveats"] == ["LES"]
    assert m["originator"] == {"agency": "SENAFRONT", "unit": "Servicio Nacional de Fronteras, Dirección de "
                               "Inteligencia", "country": "PAN"}


def test_record_markings_replace_defaults_field_by_field(ctx_for: Callable[[str], Context]) -> None:
    """What the record says wins; what it does not say keeps the default."""
    m = markings(ctx_for("SENAFRONT"), {"classification": "Confidencial", "releasable_to": "REL TO COL, USA",
                                        "grading": "c3"}, unit="Batallón Oriental")
    assert m["classification"] == "CONFIDENCIAL" and m["releasable_to"] == ["COL", "USA"]
    assert (m["source_reliability"], m["information_credibility"]) == ("C", "3")
    assert m["caveats"] == ["LES"] and m["handling_code"] == "H0"
    assert m["originator"]["unit"] == "Batallón Oriental"


def test_explicit_empty_release_means_none_outside_panama(ctx_for: Callable[[str], Context]) -> None:
    """releasable_to [] is kept as empty, not replaced by the default."""
    assert markings(ctx_for("SNM"), {"releasable_to": []})["releasable_to"] == []


def test_a_blank_marking_text_is_refused_neither_default_nor_none(ctx_for: Callable[[str], Context],
                                                                   run: Callable[..., list[Any]]) -> None:
    """A release, caveats or consent written as a blank text says neither: taken as the default it would widen a
    release the lost value may have narrowed, taken as "none" it would drop the default caveats (PII). Refused,
    naming the field; left out or null keeps the default, and only an empty list says "none"."""
    ctx = ctx_for("SNM")
    default = markings(ctx, {})
    for field in ("releasable_to", "caveats", "originator_consent"):
        for blank in ("", "   "):
            with pytest.raises(AdapterError) as refused:
                markings(ctx, {field: blank})
            assert refused.value.reason == f.MISSING_FIELD and str(refused.value).startswith(f"{field} is blank")
        assert markings(ctx, {field: None})[field] == default[field]
    assert default["caveats"] == ["PII"] and markings(ctx, {"caveats": []})["caveats"] == []
    line = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0]
    for marcado in (b'{"advertencias": ""}', b'{"difusion": " "}'):
        result = run("snm", line[:-1] + b', "marcado": ' + marcado + b"}\n")[0]
        assert result.alert is None and result.error is not None and result.error.reason == f.MISSING_FIELD


def test_a_release_text_that_names_no_code_is_refused_not_read_as_none(ctx_for: Callable[[str], Context],
                                                                       run: Callable[..., list[Any]]) -> None:
    """'REL TO', ',' or 'REL TO:' alone names no partner: it is refused, never read as [] ("none"), which in a
    SENAFRONT Difusión cell also left out the PANAMA_ONLY caveat its own "Solo Panamá" adds."""
    ctx = ctx_for("SNM")
    for text in ("REL TO", ",", "REL TO: ", "; /", "releasable to"):
        for name in ("releasable_to", "caveats", "originator_consent"):
            with pytest.raises(AdapterError) as refused:
                markings(ctx, {name: text})
            assert refused.value.reason == f.MISSING_FIELD and str(refused.value).startswith(f"{name} names no code")
    assert markings(ctx, {"releasable_to": "REL TO: COL, USA"})["releasable_to"] == ["COL", "USA"]
    header = "N° Informe;Fecha;Hora;Tipo de evento;Difusión"
    for cell in ("REL TO", ",", '"REL TO, "'):
        result = run("senafront", f"{header}\r\nSF-1;02/11/2026;05:15;Cruce irregular;{cell}\r\n".encode())[0]
        assert result.alert is None and result.error is not None and result.error.reason == f.MISSING_FIELD, cell


def test_a_blank_optional_field_is_refused_as_blank_not_as_required(run: Callable[..., list[Any]]) -> None:
    """An optional date, country or owner written as whitespace alone is refused, each alike, saying it is blank
    and may be left out or null: never taken as absent, never called required."""
    line = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0]
    for old, new, field in ((b'"vence":"2027-12-01"', b'"vence":"  "', "vence"),
                            (b'"pais":"AFG"', b'"pais":" "', "pais"),
                            (b'"puntaje":0.86', b'"puntaje":0.86,"propietario":"  "', "propietario"),
                            (b'"riesgo"', b'"fecha_reporte":"   ","riesgo"', "fecha_reporte")):
        assert line.count(old) == 1
        result = run("snm", line.replace(old, new) + b"\n")[0]
        assert result.error is not None and result.error.reason == f.MISSING_FIELD, field
        assert str(result.error).endswith(f"{field} is blank; leave it empty, out or null")
    assert run("snm", line.replace(b'"vence":"2027-12-01"', b'"vence":""') + b"\n")[0].error is None


@pytest.mark.parametrize(("path", "field"), [
    (("viajero", "nombres"), "viajero nombres"), (("viajero", "segundo_apellido"), "(segundo apellido)"),
    (("viajero", "sexo"), "viajero sexo"), (("unidad",), "unidad"), (("vuelo",), "vuelo"),
    (("coincidencia", "motivo"), "motivo"), (("riesgo",), "riesgo"), (("accion",), "accion"),
    (("viajero", "documentos", 0, "numero"), "documento.numero"),
])
def test_a_blank_text_anywhere_is_refused_never_taken_as_absent(path: tuple[Any, ...], field: str,
                                                                 run: Callable[..., list[Any]]) -> None:
    """Names, unit, flight, reason, risk and action written as blanks are refused as blank: taken as absent, each
    fell back to its default (risk UNKNOWN, the agency's unit); markings, empty too (test_blank_markings)."""
    line = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0]
    for blank in (" ", "   ", "\t"):
        doc = json.loads(line)
        target = doc
        for step in path[:-1]:
            target = target[step] if isinstance(target, list) else target.setdefault(step, {})
        target[path[-1]] = blank
        result = run("snm", json.dumps(doc).encode() + b"\n")[0]
        assert result.alert is None and result.error is not None and result.error.reason == f.MISSING_FIELD, path
        assert str(result.error).endswith(f"{field} is blank; leave it empty, out or null"), str(result.error)
    target[path[-1]] = ""
    result = run("snm", json.dumps(doc).encode() + b"\n")[0]
    assert result.error is None or path[-1] in ("numero",), (path, result.error)


def _first_with_documents(name: str) -> tuple[bytes, Callable[[dict[str, Any]], list[dict[str, Any]]]]:
    """A sample record of ``name`` holding a travel document, and where its first person's documents are."""
    if name == "senan":
        return ((SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes().split(b"\n{")[0],
                lambda d: d["tripulacion"][0]["documentos"])
    if name == "snm":
        return ((SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0],
                lambda d: d["viajero"]["documentos"])
    lines = (SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_bytes().splitlines()
    return (next(line for line in lines if b'"capturados"' in line and b'"documentos"' in line),
            lambda d: d["contenido"]["capturados"][0]["documentos"])


@pytest.mark.parametrize("name", ["snm", "senan", "combifron"])
def test_a_document_without_its_number_is_refused_not_kept(name: str, run: Callable[..., list[Any]]) -> None:
    """A document type, country or expiry with no number is refused (as PN refuses it), never published as a
    document with no number; README lists 'a document type or country without its number' as refused."""
    raw, documents = _first_with_documents(name)
    assert run(name, json.dumps(json.loads(raw)).encode() + b"\n")[0].error is None
    for without in ({"tipo": "pasaporte", "pais": "COL"}, {"tipo": "pasaporte", "numero": ""},
                    {"tipo": "pasaporte", "numero": None, "vence": "2030-01-01"}):
        doc = json.loads(raw)
        documents(doc)[:] = [without]
        result = run(name, json.dumps(doc).encode() + b"\n")[0]
        assert result.alert is None and result.error is not None and result.error.reason == f.MISSING_FIELD, without
        assert "documento.numero is empty" in str(result.error)


@pytest.mark.parametrize(("over", "reason"), [
    ({"classification": "ULTRASECRETO"}, f.UNKNOWN_CODE),
    ({"releasable_to": ["RUS"]}, f.UNKNOWN_CODE),
    ({"caveats": ["NOFORN"]}, f.UNKNOWN_CODE),
    ({"handling_code": "H7"}, f.UNKNOWN_CODE),
    ({"grading": "Z9"}, f.UNKNOWN_CODE),
    ({"handling_code": "H3"}, f.MISSING_FIELD),
    ({"releasable_to": 7}, f.INVALID),
])
def test_markings_the_policy_does_not_know_are_refused(ctx_for: Callable[[str], Context], over: dict[str, Any],
                                                      reason: str) -> None:
    """Codes outside the policy vocabulary are refused here instead of withholding the alert everywhere."""
    assert _reason(markings, ctx_for("SENAN"), over) == reason


def test_combifron_markings_use_colombias_scale_and_country(ctx_for: Callable[[str], Context]) -> None:
    """Colombia's terms map onto Panama's scale; the originator country is COL, restrictive by default."""
    m = markings(ctx_for("COMBIFRON"), {"classification": "Reservada", "originator_agency": "COL-ARC"})
    assert m["classification"] == "CONFIDENCIAL" and m["handling_code"] == "H2"
    assert m["originator"]["country"] == "COL" and m["originator"]["agency"] == "COL-ARC"
    assert _reason(markings, ctx_for("COMBIFRON"), {"classification": "ALTO SECRETO"}) == f.UNKNOWN_CODE


def test_location_outside_the_region_suggests_the_missing_minus(ctx_for: Callable[[str], Context]) -> None:
    """A longitude without its minus sign is out-of-region, and the message says what was probably meant."""
    with pytest.raises(AdapterError) as caught:
        location(ctx_for("SENAFRONT"), 8.04, 77.6)
    assert caught.value.reason == f.OUT_OF_REGION and "lacks its minus sign" in str(caught.value)
    assert _reason(location, ctx_for("SENAFRONT"), 8.04, None) == f.MISSING_FIELD


@pytest.mark.parametrize(("lat", "lon", "crossed", "hint"), [
    (8.63206, 77.3969, ["the longitude is east of"], "longitude looks like it lacks its minus sign"),
    (-8.63206, -77.3969, ["the latitude is south of"], "latitude looks like it has the wrong sign"),
    (40.712776, -74.005974, ["the latitude is north of", "the longitude is east of"], None),
])
def test_an_out_of_region_message_names_the_bound_crossed_not_the_position(
        ctx_for: Callable[[str], Context], lat: float, lon: float, crossed: list[str], hint: str | None) -> None:
    """Out of region, the message names the field, the region's bounds and which one the point crosses, with the
    likely slip; it never quotes the coordinates (a patrol's position would reach stderr and the dead letter)."""
    with pytest.raises(AdapterError) as caught:
        location(ctx_for("SENAFRONT"), lat, lon, where="Latitud/Longitud")
    message = str(caught.value)
    assert caught.value.reason == f.OUT_OF_REGION and message.startswith("Latitud/Longitud is outside the panama")
    assert all(side in message for side in crossed) and (hint is None or hint in message)
    assert "\n" not in message
    for number in (lat, lon, -lat, -lon):
        for form in (f"{number:g}", f"{abs(number):g}", str(number), str(abs(number))):
            assert form not in message, (form, message)


def test_location_codes_from_names(ctx_for: Callable[[str], Context]) -> None:
    """Province and sector names, accents and 'Comarca' aside, become their codes; no location is None."""
    loc = location(ctx_for("SENAFRONT"), 8.667, -77.418, province="Comarca Guna Yala", sector="Puerto Obaldía",
                   place="Puerto Obaldía")
    assert loc == {"latitude": 8.667, "longitude": -77.418, "province": "GUNA_YALA",
                   "border_sector": "DARIEN_PUERTO_OBALDIA", "place_name": "Puerto Obaldía"}
    assert location(ctx_for("SENAFRONT"), None, None) is None


def _alert(ctx: Context, occurred: datetime, reported: datetime | None = None) -> dict[str, Any]:
    return alert(ctx, alert_id=alert_id(ctx, "R-1", "ref"), alert_type="BORDER_EVENT", occurred_at=occurred,
                 reported_at=reported, location=None, markings=markings(ctx, {}), summary="x",
                 payload={"event_type": "OTHER"})


def test_finish_refuses_the_future_the_ancient_and_reports_before_events(ctx_for: Callable[[str], Context]) -> None:
    """The broker's time checks are applied first, so it never dead-letters an adapter's alert."""
    ctx = ctx_for("SENAFRONT")
    assert _reason(finish, _alert(ctx, NOW + timedelta(hours=2)), ctx) == f.FUTURE
    assert _reason(finish, _alert(ctx, datetime(1926, 1, 1, tzinfo=UTC)), ctx) == f.INVALID_DATE
    assert _reason(finish, _alert(ctx, NOW - timedelta(days=1), NOW - timedelta(days=2)), ctx) == f.INVALID_DATE
    done = finish(_alert(ctx, NOW - timedelta(days=1)), ctx)
    assert done["markings"]["review_at"] == NOW - timedelta(days=1) + timedelta(days=90)


def test_alert_ids_are_the_agencys_own_reference(ctx_for: Callable[[str], Context]) -> None:
    """The id is AGENCY:reference; spaces or other symbols in the reference are refused."""
    assert alert_id(ctx_for("PN"), "DIJ-26-0000001", "case") == "PN:DIJ-26-0000001"
    assert _reason(alert_id, ctx_for("PN"), "DIJ 26 (copia)", "case") == f.INVALID
    assert _reason(alert_id, ctx_for("PN"), "", "case") == f.MISSING_FIELD


def test_convert_turns_unforeseen_shapes_into_dead_letters(ctx_for: Callable[[str], Context]) -> None:
    """A mapping that trips over an odd record yields an invalid-value result, never an exception."""
    from adapters._readers import Item

    def read(stream: Any, ctx: Context) -> Any:
        yield Item(1, 1, b"{}", {"x": 1})
        yield Item(2, 2, b"{}", error=AdapterError("bad", f.SYNTAX))

    def broken(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return doc["missing"]  # type: ignore[no-any-return]

    adapter = Adapter("t", "SNM", "test", ("*",), read, broken, keys=None)
    results = list(convert(adapter, io.BytesIO(b""), ctx_for("SNM")))
    assert [r.error.reason if r.error else "ok" for r in results] == [f.INVALID, f.SYNTAX]


def test_shipped_profiles_fit_the_policy(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Every agency's defaults use codes the shipped policy knows."""
    assert {a: check_profile(a, config, vocab) for a in config.agencies} == {a: [] for a in config.agencies}


def test_profile_problems_are_listed_before_any_record_is_read(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """A default marking unknown to the policy stops the adapter with every problem named."""
    bad = config.model_copy(update={"agencies": {**config.agencies, "SNM": config.agencies["SNM"].model_copy(
        update={"markings": config.agencies["SNM"].markings.model_copy(update={"classification": "TOP",
                                                                              "releasable_to": ("XYZ",)})})}})
    with pytest.raises(ConfigError) as caught:
        make_context("SNM", NOW, bad, vocab)
    assert "TOP" in str(caught.value) and "XYZ" in str(caught.value)
    with pytest.raises(ConfigError):
        make_context("NOBODY", NOW, config, vocab)


def test_a_border_sector_the_policys_areas_lack_stops_the_adapter(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """A custom configuration's border sector that the policy's areas.yaml does not outline would be in no area a
    rule names, and recorded in the audit as no area: the adapter refuses to start, naming it. A policy with no areas
    at all holds no sector to its outlines."""
    bad = config.model_copy(update={"border_sectors": {**config.border_sectors, "DARIEN_NUEVO": "Nuevo puesto"}})
    with pytest.raises(ConfigError) as caught:
        make_context("SENAFRONT", NOW, bad, vocab)
    assert "border_sectors names 'DARIEN_NUEVO', not a border sector of the policy's areas" in str(caught.value)
    assert "BOCAS_GUABITO" not in str(caught.value)
    make_context("SENAFRONT", NOW, bad, dataclasses.replace(vocab, areas=Areas()))


def test_invalid_configuration_file_names_file_and_field(tmp_path: Path) -> None:
    """A configuration that does not validate raises ConfigError with its path and the field."""
    path = tmp_path / "agencies.yaml"
    path.write_text("agencies: {SNM: {region: panama, timezone: Mars/Olympus, markings: {classification: X}}}\n"
                    "regions: {}\nprovinces: []\nborder_sectors: {}\nports: {}\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and "timezone" in str(caught.value)


def test_a_line_break_only_yaml_sees_is_refused_in_the_adapters_configuration(tmp_path: Path) -> None:
    """As in a policy file: a line that shows as a comment cannot hold a setting YAML reads."""
    shown = DEFAULT_CONFIG.read_text("utf-8")
    path = tmp_path / "agencies.yaml"
    path.write_bytes(("# the shipped file\u2028" + shown).encode())
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"{path}:1: character U+2028 (a line break only YAML sees) refused: what YAML "
                                 "reads there is not what a reviewer sees; remove it (end lines with a line feed)")
    path.write_bytes(shown.encode())
    assert load_config(path).agencies


def test_review_and_expiry_days_past_a_century_are_refused_as_the_broker_would(tmp_path: Path) -> None:
    """An agency's review or expiry interval past a century is refused at load, naming the field: the broker
    dead-letters a date that far ahead, so what the adapters pass would never be admitted."""
    path = tmp_path / "agencies.yaml"
    path.write_text("agencies: {SNM: {region: panama, expires_days: 40000, markings: {classification: X}}}\n"
                    "regions: {}\nprovinces: []\nborder_sectors: {}\nports: {}\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "expires_days" in str(caught.value)


def test_context_needs_an_aware_utc_now(config: AdaptersConfig, vocab: Vocabulary) -> None:
    """A naive 'now' is a caller bug, refused."""
    with pytest.raises(ValueError, match="UTC"):
        make_context("SNM", datetime(2026, 11, 22), config, vocab)
