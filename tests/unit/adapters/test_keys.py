"""Keys and columns are an allow-list: one the adapter does not read refuses its record (or file), unless ignored."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from adapters import _fields as f
from adapters.config import AdaptersConfig, AgencyProfile, Context, Vocabulary, make_context
from adapters.core import Each, Keys, Result, check_ignored, check_keys, convert
from adapters.registry import ADAPTERS, get
from adapters.run import AdapterRun
from puente import cli
from puente.errors import AdapterError, ConfigError
from puente.settings import AGENCY_UNITS

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SECRET = "Valor-Que-No-Debe-Salir-7731"  # a value put beside a bad key: no message may show it

SNM = {"id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
       "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "segundo_apellido": "Gómez",
                   "fecha_nacimiento": "1988-03-02", "sexo": "M", "nacionalidades": ["COL"],
                   "documentos": [{"tipo": "pasaporte", "numero": "AX1234567", "pais": "COL"}]},
       "coincidencia": {"lista": "INTERPOL_RED_NOTICE", "puntaje": 0.93}, "vuelo": "CM 204",
       "marcado": {"clasificacion": "SECRETO", "difusion": ["FEAN"]}}
SENAN: dict[str, Any] = json.loads((SAMPLES / "senan" / "interdicciones-2026-11.json").read_text("utf-8")
                                   .split("\n{")[0])
_COMBIFRON = [json.loads(line) for line in
              (SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_text("utf-8").splitlines()]
BORDER, HIT, SEIZURE = (next(m for m in _COMBIFRON if m["tipo"] == t)
                        for t in ("EVENTO_FRONTERA", "ALERTA_MIGRATORIA", "INCAUTACION"))
CSV_HEADER = "N° Informe;Fecha;Hora;Tipo de evento"
CSV_ROW = "SF-2026-0001;02/11/2026;05:15;Cruce irregular"


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


def _with(doc: dict[str, Any], where: tuple[str | int, ...], key: str, value: Any = SECRET) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``key`` added to the object at ``where``."""
    out = copy.deepcopy(doc)
    target: Any = out
    for step in where:
        target = target[step]
    target[key] = value
    return out


def _renamed(doc: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {(new if k == old else k): v for k, v in doc.items()}


def _ctx(config: AdaptersConfig, vocab: Vocabulary, agency: str, **update: Any) -> Context:
    """The agency's context with its profile changed (e.g. ignored_keys)."""
    profile = config.agencies[agency].model_copy(update=update)
    return make_context(agency, NOW, config.model_copy(update={"agencies": {**config.agencies, agency: profile}}),
                        vocab)


def _refused(results: list[Result]) -> AdapterError:
    assert len(results) == 1 and results[0].error is not None, [r.alert and r.alert["alert_id"] for r in results]
    assert results[0].alert is None and results[0].value is None
    return results[0].error


def test_the_records_these_tests_bend_are_valid(one: Callable[..., dict[str, Any]]) -> None:
    """Each base record maps, so every refusal below comes from the one key added or renamed."""
    one("snm", _json(SNM))
    one("senan", _json(SENAN))
    for doc in (BORDER, HIT, SEIZURE):
        one("combifron", _json(doc))
    one("senafront", f"{CSV_HEADER}\n{CSV_ROW}\n".encode())


# ---- a block of markings under a name no adapter reads ---------------------------------------------
@pytest.mark.parametrize(("name", "doc", "key"), [
    ("snm", _renamed({**SNM, "marcado": {"clasificacion": "SECRETO", "difusion": []}}, "marcado", "Marcado"),
     "Marcado"),
    ("snm", _renamed({**SNM, "marcado": {"clasificacion": "SECRETO", "difusion": []}}, "marcado", "marcado "),
     "marcado "),
    ("senan", _renamed(SENAN, "marcado", "marcado_seguridad"), "marcado_seguridad"),
    ("combifron", _renamed(BORDER, "restricciones", "Restricciones"), "Restricciones"),
])
def test_a_misspelt_marking_block_refuses_the_record(name: str, doc: dict[str, Any], key: str,
                                                     run: Callable[..., list[Result]]) -> None:
    """'Marcado' or 'marcado ' is not read as nothing (the wider defaults would apply): the record is refused, the
    key not quoted (a key may be data), only the known key it nearly matches."""
    error = _refused(run(name, _json(doc)))
    assert error.reason == f.UNKNOWN_CODE
    assert str(error).startswith("the record has an unexpected key (") and "SECRETO" not in str(error)
    assert repr(key) not in str(error)


def test_a_near_miss_is_named_with_the_key_meant(run: Callable[..., list[Result]]) -> None:
    """The message says which key was probably meant, so the operator fixes the export, not the configuration."""
    error = _refused(run("snm", _json(_renamed(SNM, "marcado", "Marcado"))))
    assert "did you mean 'marcado'" in str(error)
    error = _refused(run("senan", _json(_with(SENAN, ("tripulacion", 0), "documento", [{"tipo": "cédula"}]))))
    assert "tripulacion[0] has an unexpected key (did you mean 'documentos'?)" in str(error)
    assert "'documento'" not in str(error)  # the known key is printed, never the one given


def test_among_markings_only_the_same_key_written_otherwise_is_suggested(run: Callable[..., list[Result]]) -> None:
    """'consentimiento_previo' is not offered as 'consentimiento': renaming it so would widen the release."""
    error = _refused(run("combifron", _json(_with(BORDER, ("restricciones",), "consentimiento_previo", ["USA"]))))
    assert "did you mean" not in str(error) and "a new kind of marking needs the adapter" in str(error)
    error = _refused(run("combifron", _json(_with(BORDER, ("restricciones",), "Difusión", ["USA"]))))
    assert "did you mean 'difusion'" in str(error)


@pytest.mark.parametrize(("name", "doc", "where"), [
    ("senan", _renamed(SENAN, "tripulacion", "tripulación"), "the record"),  # the crew, silently dropped before
    ("senan", _with(SENAN, ("posicion",), "altitud"), "posicion"),
    ("senan", _with(SENAN, ("embarcacion",), "eslora"), "embarcacion"),
    ("senan", _with(SENAN, ("carga", 0), "destino"), "carga[0]"),
    ("senan", _with(SENAN, ("tripulacion", 0), "alias"), "tripulacion[0]"),
    ("senan", _with(SENAN, ("tripulacion", 0, "documentos", 0), "emitido"), "tripulacion[0].documentos[0]"),
    ("senan", _with(SENAN, ("marcado",), "origen"), "marcado"),
    ("snm", _with(SNM, (), "observacion"), "the record"),
    ("snm", _with(SNM, ("viajero",), "alias"), "viajero"),
    ("snm", _with(SNM, ("viajero", "documentos", 0), "emitido"), "viajero.documentos[0]"),
    ("snm", _with(SNM, ("coincidencia",), "fuente"), "coincidencia"),
    ("combifron", _with(BORDER, (), "prioridad"), "the record"),
    ("combifron", _with(BORDER, ("ubicacion",), "altitud"), "ubicacion"),
    ("combifron", _with(BORDER, ("contenido",), "elementos", []), "contenido"),  # another type's key
    ("combifron", _with(HIT, ("contenido", "persona"), "alias"), "contenido.persona"),
    ("combifron", _with(SEIZURE, ("contenido",), "persona", {}), "contenido"),
    ("combifron", _with(SEIZURE, ("contenido", "elementos", 0), "destino"), "contenido.elementos[0]"),
    ("combifron", _with(SEIZURE, ("contenido", "medio"), "eslora"), "contenido.medio"),
])
def test_a_key_no_adapter_reads_refuses_the_record_at_any_depth(name: str, doc: dict[str, Any], where: str,
                                                                run: Callable[..., list[Result]]) -> None:
    """Top level, nested objects and array entries alike: said where it is, never with its value."""
    error = _refused(run(name, _json(doc)))
    assert error.reason == f.UNKNOWN_CODE
    assert str(error).startswith(f"{where} has an unexpected key (") and SECRET not in str(error)
    assert "\n" not in str(error) and len(str(error)) <= 500


def test_contenido_holds_only_its_own_types_keys(run: Callable[..., list[Result]]) -> None:
    """A watchlist hit's lista is read in an ALERTA_MIGRATORIA's contenido, and refused in an INCAUTACION's."""
    assert run("combifron", _json(HIT))[0].error is None
    assert _refused(run("combifron", _json(_with(SEIZURE, ("contenido",), "lista", "PAN_NATIONAL")))).reason \
        == f.UNKNOWN_CODE


@pytest.mark.parametrize("tipo", [" " * 80 + "INCAUTACION", "INCAUTACION" + " " * 80, "\tincautación ",
                                  "  INCAUTACION  "])
def test_contenido_is_held_to_the_type_the_mapping_reads(tipo: str, run: Callable[..., list[Result]]) -> None:
    """A tipo padded with blanks is the type the mapping reads once trimmed: an INCAUTACION's contenido holding a
    border event's keys (remarks) is refused, not mapped as a seizure with the remarks dropped."""
    doc = _with(_with(SEIZURE, ("contenido",), "observaciones", SECRET), (), "tipo", tipo)
    error = _refused(run("combifron", _json(doc)))
    assert error.reason == f.UNKNOWN_CODE and str(error).startswith("contenido has an unexpected key (")


def test_a_tipo_the_mapping_refuses_admits_no_contenido_keys(run: Callable[..., list[Result]]) -> None:
    """An unknown or blank tipo is refused as the mapping refuses it, whatever contenido holds: no type's keys,
    nor all types' together, are admitted for it."""
    for tipo in ("INCAUTACIONES", " " * 81, "", None):
        doc = _with(_with(SEIZURE, ("contenido",), "observaciones", SECRET), (), "tipo", tipo)
        error = _refused(run("combifron", _json(doc)))
        assert error.reason in (f.UNKNOWN_CODE, f.MISSING_FIELD) and str(error).startswith("tipo ")
        assert SECRET not in str(error)


def test_a_key_that_is_no_near_miss_is_not_shown_at_all(run: Callable[..., list[Result]]) -> None:
    """A key hiding a control character, or a very long one, is not shown: only its place and its length."""
    error = _refused(run("snm", _json(_with(SNM, (), "mar\u202ecado" + "x" * 100))))
    assert "the record has an unexpected key (key 8 of 8, 108 characters)" in str(error)
    assert "u202e" not in str(error) and "\u202e" not in str(error) and "xxxx" not in str(error)


def test_check_keys_leaves_a_value_of_the_wrong_type_to_the_mapping(run: Callable[..., list[Result]]) -> None:
    """An array where an object belongs is not walked (the mapping refuses it with its own reason)."""
    check_keys({"a": [1, 2], "b": "x", "c": {"z": 1}}, Keys(a=Keys("z"), b=Keys("z"), c=Each(Keys("y"))))
    assert _refused(run("snm", _json({**SNM, "viajero": ["x"]}))).reason == f.INVALID


# ---- ignored_keys: a known extra field of an export, tolerated by configuration ---------------------------
def test_ignored_keys_tolerate_a_listed_path_and_only_it(config: AdaptersConfig, vocab: Vocabulary,
                                                         run: Callable[..., list[Result]]) -> None:
    """A listed path (top level, nested, every array entry) is accepted; the same key elsewhere is still refused."""
    ctx = _ctx(config, vocab, "SNM", ignored_keys=("sistema", "viajero.documentos[].emitido"))
    doc = _with(_with(SNM, (), "sistema", "SIM-2"), ("viajero", "documentos", 0), "emitido", "2020-01-01")
    assert run("snm", _json(doc), ctx)[0].error is None
    assert run("snm", _json(doc))[0].error is not None  # the shipped configuration lists neither
    elsewhere = _with(SNM, ("viajero",), "sistema", "SIM-2")
    assert _refused(run("snm", _json(elsewhere), ctx)).reason == f.UNKNOWN_CODE


def test_an_ignored_path_under_contenido_holds_for_the_types_that_have_it(config: AdaptersConfig, vocab: Vocabulary,
                                                                         run: Callable[..., list[Result]]) -> None:
    """'contenido.persona.alias' tolerates an alias in a migration alert's persona; 'contenido.foto' in every type."""
    ctx = _ctx(config, vocab, "COMBIFRON", ignored_keys=("contenido.persona.alias", "contenido.foto"))
    assert run("combifron", _json(_with(HIT, ("contenido", "persona"), "alias")), ctx)[0].error is None
    for doc in (BORDER, HIT, SEIZURE):
        assert run("combifron", _json(_with(doc, ("contenido",), "foto")), ctx)[0].error is None
    assert _refused(run("combifron", _json(_with(SEIZURE, ("contenido",), "alias")), ctx)).reason == f.UNKNOWN_CODE


def test_nothing_is_tolerated_inside_a_block_of_markings() -> None:
    """Even handed a path into a sealed block (check_ignored refuses one first), the block admits only its markings."""
    keys = Keys("a", marcado=Keys.markings("clasificacion")).tolerating(["marcado.origen", "b"])
    check_keys({"a": 1, "b": 2, "marcado": {"clasificacion": "X"}}, keys)
    with pytest.raises(AdapterError, match=r"marcado has an unexpected key \(6 characters\), which is no marking"):
        check_keys({"marcado": {"origen": SECRET}}, keys)


def test_the_shipped_senan_export_fields_are_listed_and_tolerated(config: AdaptersConfig,
                                                                   run: Callable[..., list[Result]]) -> None:
    """SENAN's samples carry embarcacion.motores and carga[].peso_kg, which agencies.yaml lists; nothing else does."""
    assert config.agencies["SENAN"].ignored_keys == ("embarcacion.motores", "carga[].peso_kg")
    assert {a for a, p in config.agencies.items() if p.ignored_keys or p.ignored_columns} == {"SENAN"}
    assert "motores" in SENAN["embarcacion"] and run("senan", _json(SENAN))[0].error is None


@pytest.mark.parametrize(("agency", "update", "words"), [
    ("SNM", {"ignored_keys": ("marcado.origen",)}, "inside a block of markings"),
    ("COMBIFRON", {"ignored_keys": ("restricciones.nivel",)}, "inside a block of markings"),
    ("SNM", {"ignored_keys": ("Marcado",)}, "only in case, accents or spacing"),
    ("SENAN", {"ignored_keys": ("tripulación",)}, "only in case, accents or spacing"),
    ("SNM", {"ignored_keys": ("vuelo",)}, "is a key this adapter reads"),
    ("SNM", {"ignored_keys": ("pasajero.alias",)}, "pasajero is no object"),
    ("SENAN", {"ignored_keys": ("tripulacion.alias",)}, "tripulacion is no object"),
    ("SENAN", {"ignored_keys": ("posicion[].x",)}, "posicion is no array of objects"),
    ("PN", {"ignored_keys": ("x",)}, "have no JSON keys"),
    ("SNM", {"ignored_columns": ("Foto",)}, "have no header columns"),
    ("SENAFRONT", {"ignored_columns": ("Clasificacion",)}, "is a column this adapter reads"),
    ("SENAFRONT", {"ignored_columns": ("Clasificación de seguridad",)}, "looks like the marking column CLASIFICACION"),
    ("SENAFRONT", {"ignored_columns": ("Difusión a",)}, "looks like the marking column DIFUSION"),
])
def test_an_ignore_that_does_not_fit_stops_the_adapter_before_any_record(
        agency: str, update: dict[str, Any], words: str, config: AdaptersConfig, vocab: Vocabulary) -> None:
    """Ignoring a marking, a key read, a misspelling of one, or a place records lack is a configuration error."""
    ctx = _ctx(config, vocab, agency, **update)
    adapter = get(next(name for name, (_, a, _t) in ADAPTERS.items() if a == agency))
    with pytest.raises(ConfigError, match=words) as caught:
        check_ignored(adapter, ctx)
    assert "\n" not in str(caught.value) and "agencies.yaml" in str(caught.value)
    with pytest.raises(ConfigError):  # convert refuses before reading anything
        next(convert(adapter, _Unread(), ctx))
    with pytest.raises(ConfigError):  # and the Kafka run before connecting
        AdapterRun(SimpleNamespace(topic_prefix="t"), None, adapter, ctx)  # type: ignore[arg-type]


class _Unread:
    """A stream that fails the test if it is read."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("read")

    readline = read


def test_the_shipped_configuration_fits_every_adapter(ctx_for: Callable[[str], Context]) -> None:
    """Every agency's ignored_keys and ignored_columns, as shipped, fit its adapter."""
    for name, (_, agency, _title) in ADAPTERS.items():
        check_ignored(get(name), ctx_for(agency))


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", "carga[]", "carga[].", "a[]b.c", "a[0].b"])
def test_a_malformed_ignored_path_is_refused_when_the_configuration_loads(path: str, config: AdaptersConfig) -> None:
    """A path is keys joined by '.', '[]' after an array's key, ending at a key."""
    with pytest.raises(ValidationError, match="not a key path"):
        AgencyProfile.model_validate({**config.agencies["SNM"].model_dump(), "ignored_keys": [path]})


# ---- CSV header columns -------------------------------------------------------------------------------
def test_a_misspelt_marking_column_refuses_the_file(run: Callable[..., list[Result]]) -> None:
    """'Clasificación de seguridad' and 'Difusión a' are not read as nothing: the file is refused, naming the column."""
    data = (f"{CSV_HEADER};Clasificación de seguridad;Difusión a\n{CSV_ROW};SECRETO;SOLO_PANAMA\n").encode()
    results = run("senafront", data)
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(0, f.UNKNOWN_CODE)]
    message = str(results[0].error)
    assert "the header has a column this adapter does not read (column 5, 26 characters): " in message
    assert "SECRETO" not in message and "seguridad" not in message and "ignored_columns" in message


def test_a_header_run_on_into_the_first_row_quotes_none_of_its_cells(run: Callable[..., list[Result]]) -> None:
    """A header line whose line end was lost runs on into the first row: its cells (a name, a passport number)
    read as header columns. The file is refused naming the first one by place and length, never its text; a
    near miss of a known header names the header meant."""
    data = (f"{CSV_HEADER};Núñez Peña José Luis;PA1234567\n{CSV_ROW}\n").encode()
    results = run("senafront", data)
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(0, f.UNKNOWN_CODE)]
    message = str(results[0].error)
    assert "the header has a column this adapter does not read (column 5, 20 characters): " in message
    assert not any(part in message for part in ("Núñez", "Peña", "José", "Luis", "PA1234567", "1234567"))
    near = run("senafront", f"{CSV_HEADER};Clasificasion\n{CSV_ROW};SECRETO\n".encode())
    assert "(column 5, 13 characters) (did you mean 'CLASIFICACION'?): " in str(near[0].error)


def test_an_ignored_column_is_tolerated(config: AdaptersConfig, vocab: Vocabulary,
                                        run: Callable[..., list[Result]]) -> None:
    """A column listed under ignored_columns (matched like any header) is skipped; its cells are not read."""
    ctx = _ctx(config, vocab, "SENAFRONT", ignored_columns=("Código interno", "#"))
    data = f"#;{CSV_HEADER};CODIGO INTERNO\n7;{CSV_ROW};X-1\n".encode()
    assert [r.error for r in run("senafront", data, ctx)] == [None]
    assert run("senafront", data)[0].error is not None


def test_a_column_without_a_header_may_only_hold_empty_cells(run: Callable[..., list[Result]]) -> None:
    """A trailing empty header column is fine while its cells are empty; a value there is refused, not dropped."""
    data = f"{CSV_HEADER};\n{CSV_ROW};\n{CSV_ROW.replace('0001', '0002')};{SECRET}\n".encode()
    results = run("senafront", data)
    assert [r.error.reason if r.error else "ok" for r in results] == ["ok", f.MISSING_COLUMN]
    assert "column 5, which has no header" in str(results[1].error) and SECRET not in str(results[1].error)


def test_a_first_row_of_data_is_not_quoted_as_a_header(run: Callable[..., list[Result]]) -> None:
    """A file without its header is refused whole, its first line naming no column (not SENAFRONT's format), before
    any cell could be named as a column; the line's bytes are not kept."""
    results = run("senafront", f"SF-1;02/11/2026;05:15;Cruce;{SECRET}\n".encode())
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(0, f.WRONG_FORMAT)]
    assert SECRET not in str(results[0].error) and results[0].item.raw == b""


@pytest.mark.parametrize(("units", "refused"), [
    (AGENCY_UNITS, None),
    ({"COMBIFRON": ("ARC", "DIJIN", "PONAL", "EJC", "FAC", "MIGRACION", "OTHER")}, None),
    ({"COMBIFRON": ("ARC", "DIJIN")}, "EJC, FAC, MIGRACION, PONAL"),
    ({}, "ARC, DIJIN, EJC, FAC, MIGRACION, PONAL"),
])
def test_an_adapter_naming_a_unit_the_broker_refuses_stops_before_any_record(
        units: dict[str, tuple[str, ...]], refused: str | None, ctx_for: Callable[[str], Context]) -> None:
    """COMBIFRON's adapter maps each Colombian entity it knows to a unit; one the broker does not take
    (PUENTE_AGENCY_UNITS) would have every alert of it dead-lettered after publication: the run stops first, in one
    line naming the units, the setting and the file. An agency of the home country is held to no units."""
    cfg: Any = SimpleNamespace(topic_prefix="t", agency_countries={"COMBIFRON": "COL"}, agency_units=units)
    adapter = get(next(name for name, (_, a, _t) in ADAPTERS.items() if a == "COMBIFRON"))
    if refused is None:
        AdapterRun(cfg, None, adapter, ctx_for("COMBIFRON"))  # type: ignore[arg-type]
    else:
        with pytest.raises(ConfigError) as caught:
            AdapterRun(cfg, None, adapter, ctx_for("COMBIFRON"))  # type: ignore[arg-type]
        said = str(caught.value)
        assert f"originators the broker does not take: {refused};" in said and "PUENTE_AGENCY_UNITS" in said
        assert "agencies.yaml" in said and "\n" not in said
    snm = get(next(name for name, (_, a, _t) in ADAPTERS.items() if a == "SNM"))
    AdapterRun(cfg, None, snm, ctx_for("SNM"))  # type: ignore[arg-type]
    home: Any = SimpleNamespace(topic_prefix="t", agency_countries={"SNM": "PAN"}, agency_units={"SNM": ("ARC",)})
    with pytest.raises(ConfigError, match="PUENTE_AGENCY_UNITS names units of SNM, an agency of the policy's home"):
        AdapterRun(home, None, snm, ctx_for("SNM"))  # type: ignore[arg-type]


def test_adapt_check_refuses_a_unit_the_broker_would_refuse(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`puente adapt combifron --check FILE` says what a run would publish: with PUENTE_AGENCY_UNITS naming fewer
    units than agencies.yaml maps entities to, it stops as the run would, in one line, before reading FILE."""
    sample = Path(__file__).resolve().parents[3] / "samples" / "combifron" / "mensajes-colombia-2026-11.jsonl"
    monkeypatch.setenv("PUENTE_AGENCY_UNITS", '{"COMBIFRON": ["ARC"]}')
    assert cli.main(["adapt", "combifron", "--check", str(sample)]) == cli.EXIT_CONFIG
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "originators the broker does not take: DIJIN, EJC, FAC, MIGRACION, PONAL;" in captured.err
    monkeypatch.delenv("PUENTE_AGENCY_UNITS")
    assert cli.main(["adapt", "combifron", "--check", str(sample)]) in (0, 1)
    assert "valid" in capsys.readouterr().out
