"""Rejection messages name the field and the problem, never a person's data: no refused value is quoted."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import _fields as f
from adapters.core import Result
from adapters.pn import split
from puente.errors import AdapterError

ROOT = Path(__file__).resolve().parents[3]
BAD = ROOT / "samples" / "bad"
EXPECTED: dict[str, dict[str, dict[int, str]]] = yaml.safe_load((BAD / "expected.yaml").read_text("utf-8"))
PANAMA = ZoneInfo("America/Panama")
TODAY = date(2026, 11, 22)

GIVEN = ["José Luis", "María José", "Iván Darío", "Yuleisy", "Jhon Freddy", "Efraín", "Ángela", "Raúl"]
FAMILY = ["Núñez", "Peña", "Pérez", "Gómez", "Muñoz", "Ibáñez", "Quiñones", "Mosquera", "Ávila"]
PEOPLE = st.one_of(
    st.builds(lambda g, a, b: f"{g} {a} {b}", st.sampled_from(GIVEN), st.sampled_from(FAMILY), st.sampled_from(FAMILY)),
    st.builds(lambda a, b, g: f"{a} {b}, {g}".upper(), st.sampled_from(FAMILY), st.sampled_from(FAMILY),
              st.sampled_from(GIVEN)),
    st.sampled_from(["PA1234567", "E-8-123456", "8-765-4321", "1077456789", "AX1234567", "PE-12-3456"]),
    st.from_regex(r"[A-Z]{2}[0-9]{7}", fullmatch=True),
    st.from_regex(r"(E|N|PE|[1-9])-[0-9]{1,4}-[0-9]{4,6}", fullmatch=True),
    st.from_regex(r"1[0-9]{9}", fullmatch=True),
    st.dates(date(1930, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%d/%m/%Y")),  # dates of birth
    st.dates(date(2027, 1, 1), date(2099, 12, 31)).map(date.isoformat),  # a birth date not yet come
    st.builds(lambda y, d: f"{d}/02/{y}", st.integers(1930, 2010), st.sampled_from([30, 31])),  # impossible
)


def _parsers() -> dict[str, Callable[[str], Any]]:
    table = {"DARIEN": "DARIEN", "NORTE": "NORTHBOUND"}
    return {
        "text too long": lambda v: f.text(v, "Nombres", 5),
        "text hidden": lambda v: f.text(v + "\u202e", "Nombres", 200),
        "code": lambda v: f.code(v, "Provincia", table),
        "countries": lambda v: f.countries(v, "Nacionalidades"),
        "countries list": lambda v: f.countries([v], "Nacionalidades"),
        "integer": lambda v: f.integer(v, "Cantidad de personas", maximum=50_000),
        "quantity": lambda v: f.quantity(v, "cantidad", maximum=1e6),
        "dmy": lambda v: f.dmy(v, "Fecha"),
        "ymd": lambda v: f.ymd(v, "fecha"),
        "ymd compact": lambda v: f.ymd(v, "fecha", compact=True),
        "clock": lambda v: f.clock(v, "Hora"),
        "iso_datetime": lambda v: f.iso_datetime(v, "fecha_hora", PANAMA),
        "birth_date": lambda v: f.birth_date(v, "fecha_nacimiento", TODAY),
        "birth_date compact": lambda v: f.birth_date(v, "fecha_nacimiento", TODAY, compact=True),
        "latitude": lambda v: f.coordinate(v, "Latitud", "lat"),
        "longitude": lambda v: f.coordinate(v, "Longitud", "lon"),
    }


def _forms(value: str) -> set[str]:
    """The ways a value could show up in a message: as given, trimmed, upper-cased, composed, as a number."""
    forms = {value, value.strip(), value.upper(), unicodedata.normalize("NFC", value)}
    forms |= {run for run in re.findall(r"\d{5,}", value)}  # the digits of a document number
    forms |= {word for word in value.replace(",", " ").split() if len(word) >= 4}  # a surname alone
    if value.isdigit():
        forms |= {f"{int(value):,}", f"{float(value):g}"}
    return forms


def test_naming_never_quotes_even_a_code_shaped_value() -> None:
    """naming() gives the field alone: 'ULTRASECRETO' and 'H7' look like codes, but so do 'GARCIA-MARQUEZ' and
    'PAA-123'; nor a name, a document number, a date or a long text."""
    for value in ("ULTRASECRETO", "H7", "Z9", "XYZ", "2.0", "LANCHA_RAPIDA", "GARCIA-MARQUEZ", "PAA-123", "MENDOZA",
                  "PA1234567", "E-8-123456", "José", "GARCÍA", "en círculos", "31/02/2026", "A" * 25, "Cruce", 42):
        assert f.naming("campo", value) == "campo"


@settings(max_examples=300, deadline=None)
@given(value=PEOPLE, parser=st.sampled_from(sorted(_parsers())))
def test_no_field_parser_quotes_a_persons_data(value: str, parser: str) -> None:
    """Whatever a field parser refuses, the message never contains the name, document number or date it was given."""
    try:
        _parsers()[parser](value)
    except AdapterError as exc:
        message = str(exc)
        leaked = sorted(form for form in _forms(value) if form and form in message)
        assert not leaked, (parser, value, message)
        assert message  # and it still says something


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _strings(item)


def _values(name: str, raw: bytes) -> list[str]:
    """The text values of one raw record as its agency wrote them (repeated keys and all)."""
    encoding = "cp1252" if name == "pn" else "utf-8"
    try:
        text = raw.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError:
        return []
    if name == "senafront":  # the file's delimiter is not known here: the cells under each
        return [cell for sep in ";,\t" for row in csv.reader(io.StringIO(text), delimiter=sep) for cell in row]
    if name == "pn":
        out = []
        for n, line in enumerate(text.splitlines()):
            try:
                out += list(split(line, n).values())
            except AdapterError:
                continue
        return out
    try:
        pairs = json.loads(text, object_pairs_hook=lambda p: [v for _, v in p])
    except ValueError:
        return []
    return list(_strings(pairs))




def _may_be_shown(value: str) -> bool:
    """The rule, written out independently of the code: a code-shaped value. (A coordinate is not: a position is
    the record's data.)"""
    return bool(re.fullmatch(r"[A-Z0-9_.-]{1,24}", value) and sum(c.isdigit() for c in value) <= 3)


def _leaks(name: str, file: str, run: Callable[..., list[Result]]) -> set[tuple[str, str, int, str]]:
    found = set()
    for r in run(name, BAD / name / file):
        if r.error is None:
            continue
        for value in {v.strip() for v in _values(name, r.item.raw)}:
            if len(value) < 4 or _may_be_shown(value):
                continue
            if value in str(r.error):
                found.add((name, file, r.item.line, value))
    return found


@pytest.mark.parametrize(("name", "file"), [(n, x) for n, files in sorted(EXPECTED.items()) for x in sorted(files)])
def test_no_bad_corpus_message_quotes_a_value_that_is_not_a_code(name: str, file: str,
                                                                  run: Callable[..., list[Result]]) -> None:
    """Over every refused record of the corpus: no text value of the record, unless code-shaped, is in its message."""
    assert _leaks(name, file, run) == set()


def test_the_document_expiry_message_does_not_quote_the_date(run: Callable[..., list[Result]]) -> None:
    """A document's implausible expiry date is not quoted in its rejection."""
    assert _leaks("snm", "valores-invalidos.jsonl", run) == set()


def test_the_cli_check_of_a_shifted_csv_does_not_print_the_name(tmp_path: Path) -> None:
    """`puente adapt senafront --check` on rows whose columns slid: stderr names fields, not the person or document."""
    rows = ["N° Informe;Fecha;Hora;Tipo de evento;Observaciones",
            "IP-DAR-2026-000901;Núñez Peña José Luis;03/11/2026;06:40;Cruce",  # a name slid into Fecha
            "IP-DAR-2026-000902;03/11/2026;PA1234567;Cruce;x",  # a passport number in Hora
            "IP-DAR-2026-000903;02/03/1988;06:40;E-8-123456;x",  # a date of birth and a cédula
            "MARÍA GÓMEZ;03/11/2026;06:40;Cruce;x"]  # a name as the report number
    export = tmp_path / "desplazado.csv"
    export.write_bytes("\r\n".join(rows).encode("utf-8-sig") + b"\r\n")
    env = {**os.environ, "PUENTE_BOOTSTRAP": "127.0.0.1:1", "PUENTE_KEYS": str(tmp_path / "keys")}
    done = subprocess.run([sys.executable, "-m", "puente.cli", "adapt", "senafront", "--check", str(export)],
                          cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 1, err
    assert b"rejected 4" in done.stdout
    assert ":2: invalid-date: Fecha" in err and ":3: invalid-date: Hora" in err
    for private in ("Núñez", "Peña", "José Luis", "PA1234567", "1234567", "1988", "E-8-123456", "MARÍA", "GÓMEZ"):
        assert private not in err, (private, err)


def _refusals(tree: ast.AST) -> Iterator[ast.Call]:
    """Every call that builds a rejection: fail(...), f.fail(...) or AdapterError(...)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"fail", "AdapterError"}:
                yield node


def test_no_rejection_message_quotes_a_value_by_itself() -> None:
    """In adapters/, a rejection's message never applies !r or repr() to a value: only helpers that print a
    vocabulary (did_you_mean) or a known key quote."""
    offences = []
    for path in sorted((ROOT / "adapters").glob("*.py")):
        for call in _refusals(ast.parse(path.read_text("utf-8"))):
            for node in ast.walk(call):
                quoted = isinstance(node, ast.FormattedValue) and node.conversion == ord("r")
                called = isinstance(node, ast.Call) and getattr(node.func, "id", "") == "repr"
                if quoted or called:
                    offences.append(f"{path.name}:{node.lineno}")
    assert offences == []
