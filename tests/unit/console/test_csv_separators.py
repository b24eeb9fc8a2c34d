"""Every CSV the console writes quotes every field, and no piece of a cell a spreadsheet may split off (at ``,``,
``;`` or a tab, as a locale's separator) starts a formula."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.console_accounts import ConsoleAccounts
from puente.console import ConsoleConfig, create_app
from puente.console.views import cell

from .conftest import FakeIndex, Sink, _decision, _sign_in, local_client

TRIGGERS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\t", "\r")
SPLIT = re.compile("[,;\t]")
QUOTED_LINE = re.compile(r'"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*')


def _runs_in_a_piece(written: str) -> bool:
    """Whether a piece of ``written`` split at any locale's separator would start a formula in a spreadsheet."""
    if written == "-":  # the placeholder for "none": a sign alone computes nothing
        return False
    pieces = SPLIT.split(written)
    return written.startswith(("\t", "\r")) or any(p.lstrip().startswith(TRIGGERS) for p in pieces)


@pytest.mark.parametrize(("text", "written"), [
    ("SNM:9;=cmd|' /C calc'!A0", "SNM:9;'=cmd|' /C calc'!A0"),
    ("marking R;@SUM(9*9) not shared", "marking R;'@SUM(9*9) not shared"),
    ("a, +1", "a, '+1"),
    ("a\t-1", "a\t'-1"),
    ("a; \uff1d1", "a; '\uff1d1"),
    ("a;\t=x", "a;'\t'=x"),
    (" \t=x", "' \t'=x"),
    ("=1;=2", "'=1;'=2"),
])
def test_a_formula_after_a_separator_is_led_by_a_quote(text: str, written: str) -> None:
    """A trigger right after ``,`` ``;`` or a tab (spaces between) is led by ``'`` there, as at the cell's start."""
    assert cell(text) == written


@pytest.mark.parametrize("text", ["a;b", "1-2;x", "x@y, z", "a=1,b=2", "SNM:9; plain", "-"])
def test_separators_followed_by_no_formula_are_left_as_they_are(text: str) -> None:
    """Only a trigger after a separator is marked: other text is written as it is."""
    assert cell(text) == text


@given(st.lists(st.one_of(st.sampled_from([*TRIGGERS, ",", ";", " ", "\u3000", "\n", "'"]),
                          st.text(max_size=3)), max_size=12).map("".join))
def test_no_piece_of_a_written_cell_starts_a_formula(text: str) -> None:
    """Whatever the text, no piece of its cell split at any separator (or the whole) starts with a trigger."""
    assert not _runs_in_a_piece(cell(text))


def test_every_csv_route_quotes_every_field_and_no_piece_runs(accounts: ConsoleAccounts, sink: Sink) -> None:
    """The reviewer's rows through /search.csv, and /indicators.csv: every line's every field in double quotes, and
    no piece of any cell, split at ``;`` as Excel in es-CO does, starts a formula."""
    rows = [_decision(1, "SNM:9;=cmd|' /C calc'!A0", "USA", "WITHHOLD", reasons=["marking R;@SUM(9*9) not shared"],
                      rules=["r1;=1+1"])]
    client = local_client(create_app(ConsoleConfig(lambda: FakeIndex(rows), accounts, sink)), follow_redirects=False)
    assert _sign_in(client, "ana").status_code == 303
    answers = [client.get(path) for path in ("/search.csv", "/indicators.csv?table=shared",
                                             "/indicators.csv?table=withheld", "/indicators.csv?table=latency")]
    assert [a.status_code for a in answers] == [200] * 4
    exported = answers[0].text
    assert "SNM:9;'=cmd" in exported and "r1;'=1+1" in exported and "R;'@SUM" in exported
    for answer in answers:
        lines = answer.text.splitlines()
        assert len(lines) >= 2 and all(QUOTED_LINE.fullmatch(line) for line in lines), lines
        for row in csv.reader(io.StringIO(answer.text)):
            assert not any(_runs_in_a_piece(field) for field in row), row
