"""PN: a case is every line of the file that names it, so one named out of place is never published smaller."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from adapter_fakes import Pipe

from adapters import _fields as f
from adapters import pn
from adapters.config import Context
from adapters.core import Result, convert
from adapters.registry import get


def _line(kind: str, **fields: str) -> str:
    return "".join(str(fields.get(n, kind if n == "kind" else "")).ljust(w)[:w] for n, w in pn.LAYOUTS[kind])


def S(case: str) -> str:
    return _line("S", case=case, date="20261115", time="1128", province="PANAMA", place="AVENIDA ESPANA",
                 lat="+09.03197", lon="-079.49227", unit="DIJ", operation="OPERACION X")


def I(case: str, item: str = "COCAINA", quantity: str = "100", unit: str = "KG",  # noqa: E743 - the record kind
      category: str = "DR") -> str:
    return _line("I", case=case, category=category, item=item, quantity=quantity.rjust(12), unit=unit)


def P(case: str) -> str:
    return _line("P", case=case, surname1="PEREZ", given="JUAN", born="19800101", sex="M", nationality="PAN")


def T(count: int) -> str:
    return _line("T", count=f"{count:08d}")


ONE, TWO, THREE = "DIJ-26-0000001", "DIJ-26-0000002", "DIJ-26-0000003"
RIFLES = I(ONE, item="FUSIL", quantity="5", unit="UNI", category="AR")


def _file(*lines: str) -> bytes:
    return ("\r\n".join([_line("H", system="SIIP-DIJ", exported="20261120120000"), *lines]) + "\r\n").encode("cp1252")


def _outcome(results: list[Result]) -> list[tuple[int, int, str]]:
    return [(r.item.number, r.item.line, r.error.reason if r.error else r.alert["alert_id"] if r.alert else "?")
            for r in results]


def test_an_item_after_the_next_case_refuses_the_case_it_names(run: Callable[..., list[Result]]) -> None:
    """S1 I1 S2 I1 I2 T: case 1 is not published without its rifles; its dead letter names the line elsewhere."""
    results = run("pn", _file(S(ONE), I(ONE), S(TWO), RIFLES, I(TWO), T(2)))
    assert _outcome(results) == [(1, 2, f.INVALID), (2, 4, f.INVALID)]
    assert "named by the I or P line at line 5" in str(results[0].error)
    assert "smaller than it was" in str(results[0].error)


def test_a_detainee_after_the_next_case_refuses_the_case_it_names(run: Callable[..., list[Result]]) -> None:
    """A P line is a case's line as an I line is: one among a later case's lines refuses the case it names."""
    results = run("pn", _file(S(ONE), I(ONE), S(TWO), I(TWO), P(ONE), S(THREE), I(THREE), T(3)))
    assert _outcome(results) == [(1, 2, f.INVALID), (2, 4, f.INVALID), (3, 7, "PN:DIJ-26-0000003")]
    assert "named by the I or P line at line 6" in str(results[0].error)


def test_a_line_before_its_case_refuses_that_case(run: Callable[..., list[Result]]) -> None:
    """An I line read before its case's S line (outside any case, or among another's) refuses the case it names,
    which would otherwise be published without it; the line itself is refused as before."""
    early = run("pn", _file(I(TWO), S(ONE), I(ONE), S(TWO), I(TWO), T(2)))
    assert _outcome(early) == [(1, 2, f.INVALID), (2, 3, "PN:DIJ-26-0000001"), (3, 5, f.INVALID)]
    assert "named by the I or P line at line 2" in str(early[2].error)
    among = run("pn", _file(S(ONE), I(ONE), I(TWO), S(TWO), I(TWO), T(2)))
    assert _outcome(among) == [(1, 2, f.INVALID), (2, 5, f.INVALID)]
    assert "named by the I or P line at line 4" in str(among[1].error)


def test_a_case_number_opened_twice_refuses_both_parts(run: Callable[..., list[Result]]) -> None:
    """A second S line of a case number already read (a case split in two) refuses both parts, each naming the
    other's line; the case between them is published."""
    results = run("pn", _file(S(ONE), I(ONE), S(TWO), I(TWO), S(ONE), RIFLES, T(3)))
    assert _outcome(results) == [(1, 2, f.INVALID), (2, 4, "PN:DIJ-26-0000002"), (3, 6, f.INVALID)]
    assert "also that of the S line at line 6" in str(results[0].error)
    assert "also that of the S line at line 2" in str(results[2].error)


def test_a_line_after_a_case_its_trailer_closed_refuses_it(run: Callable[..., list[Result]]) -> None:
    """S1 I1 T H I1: the line after the H that ended the case is outside any case, and names it: the case is
    refused, not published without it; the misplaced trailer is said as before."""
    results = run("pn", _file(S(ONE), I(ONE), T(1), _line("H", system="SIIP-DIJ"), RIFLES))
    assert [r.error.reason if r.error else "ok" for r in results] == [
        f.INVALID, f.INVALID, f.INVALID, f.TRAILER_MISMATCH]
    assert "named by the I or P line at line 6" in str(results[0].error)


def test_a_bad_line_naming_a_closed_case_refuses_it_too(run: Callable[..., list[Result]]) -> None:
    """A line that does not parse (too long here) still names its case by its bytes: the case is refused."""
    results = run("pn", _file(S(ONE), I(ONE), S(TWO), RIFLES + "X", I(TWO), T(2)))
    assert _outcome(results) == [(1, 2, f.INVALID), (2, 4, f.MISSING_COLUMN)]
    assert "named by the I or P line at line 5" in str(results[0].error)


def test_an_ordered_file_and_its_lines_of_another_case_read_as_before(run: Callable[..., list[Result]]) -> None:
    """Cases whose lines all follow their S line are published; a line of a number no S line opens refuses only
    the case it stands in."""
    assert _outcome(run("pn", _file(S(ONE), I(ONE), RIFLES, S(TWO), I(TWO), P(TWO), T(2)))) == [
        (1, 2, "PN:DIJ-26-0000001"), (2, 5, "PN:DIJ-26-0000002")]
    assert _outcome(run("pn", _file(S(ONE), I(ONE), I(THREE), S(TWO), I(TWO), T(2)))) == [
        (1, 2, f.INVALID), (2, 5, "PN:DIJ-26-0000002")]


def test_a_pipe_is_read_as_a_file(ctx_for: Callable[[str], Context]) -> None:
    """Standard input, which cannot be rewound, is read to its end first too: the same results as from a file."""
    data = _file(S(ONE), I(ONE), S(TWO), RIFLES, I(TWO), S(THREE), I(THREE), T(3))
    piped = list(convert(get("pn"), io.BufferedReader(Pipe(data)), ctx_for("PN")))
    filed = list(convert(get("pn"), io.BytesIO(data), ctx_for("PN")))
    assert _outcome(piped) == _outcome(filed) == [(1, 2, f.INVALID), (2, 4, f.INVALID), (3, 7, "PN:DIJ-26-0000003")]


def test_a_pipe_past_what_is_kept_in_memory_is_refused_saying_so(ctx_for: Callable[[str], Context],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe is copied in memory to be read twice, never to a temporary file: one longer than ``PIPE_BYTES`` is
    refused whole, in one line that says what to do, not cut (never waited on); the same bytes from a file are
    read as any other, read twice where they lie."""
    lines = [line for n in range(1, 41) for line in (S(f"DIJ-26-{n:07d}"), I(f"DIJ-26-{n:07d}"))]
    data = _file(*lines[:10], I("DIJ-26-0000001"), *lines[10:], T(40))
    monkeypatch.setattr(pn, "PIPE_BYTES", len(data) - 1)
    [refused] = list(convert(get("pn"), io.BufferedReader(Pipe(data)), ctx_for("PN")))
    assert refused.error is not None and (refused.error.reason, refused.error.cut) == (f.TOO_LONG, False)
    assert "adapt the file itself; nothing was read" in str(refused.error) and "\n" not in str(refused.error)
    filed = list(convert(get("pn"), io.BytesIO(data), ctx_for("PN")))
    assert [o[2] for o in _outcome(filed)[:6]] == [f.INVALID, *[f"PN:DIJ-26-{n:07d}" for n in (2, 3, 4)],
                                                   f.INVALID, "PN:DIJ-26-0000006"]  # 5: the stray among its lines
    assert len(filed) == 40
    monkeypatch.setattr(pn, "PIPE_BYTES", len(data))
    assert _outcome(list(convert(get("pn"), io.BufferedReader(Pipe(data)), ctx_for("PN")))) == _outcome(filed)


def test_too_many_case_numbers_out_of_place_refuse_every_case(run: Callable[..., list[Result]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory for numbers named out of place is bounded: past the bound the file's order is not trusted, and no
    case of it is published (each refused, saying why), rather than some published smaller."""
    monkeypatch.setattr(pn, "STRAY_CASES", 2)
    strays = [I(f"DIJ-26-99{n:05d}") for n in range(3)]
    results = run("pn", _file(S(ONE), I(ONE), *strays, S(TWO), I(TWO), S(THREE), I(THREE), T(3)))
    assert _outcome(results) == [(1, 2, f.INVALID), (2, 7, f.INVALID), (3, 9, f.INVALID)]
    assert "more than 2 case numbers are named by I or P lines out of place" in str(results[1].error)


def test_every_case_is_published_or_refused_once(run: Callable[..., list[Result]]) -> None:
    """However the lines are scattered, each case is one result, numbered in turn: nothing lost, counts add up."""
    results = run("pn", _file(S(ONE), I(TWO), S(TWO), I(ONE), S(THREE), P(ONE), I(THREE), S(ONE), I(ONE), T(4)))
    numbered: list[Any] = [r.item.number for r in results if r.item.number]
    assert numbered == [1, 2, 3, 4]
    assert [r.error is None for r in results] == [False, False, False, False]
