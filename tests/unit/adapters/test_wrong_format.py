"""Another agency's export given to an adapter is refused whole, before any record; a bad record of its own is one."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters._readers import FORMATS, HELD
from adapters.core import Result
from adapters.registry import ADAPTERS

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
PAIRS = [(reader, owner, p.name) for reader in ADAPTERS for owner in ADAPTERS if owner != reader
         for p in sorted((SAMPLES / owner).iterdir()) if p.is_file()]
FIRST = {"snm": SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl",
         "combifron": SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl"}


def _refused(results: list[Result], reader: str) -> str:
    """The message of ``results`` when they are the file's one refusal as not in ``reader``'s format."""
    assert len(results) == 1, [(r.item.number, r.error and r.error.reason) for r in results[:5]]
    (only,) = results
    assert only.item.number == 0 and only.item.raw == b"" and only.alert is None and only.error is not None
    assert only.error.reason == "wrong-format"
    return str(only.error)


@pytest.mark.parametrize(("reader", "owner", "file"), PAIRS)
def test_another_agencys_sample_is_refused_whole(reader: str, owner: str, file: str,
                                                 run: Callable[..., list[Result]]) -> None:
    """Each sample read by every other adapter is one refusal of the file, naming its owner and no byte of it."""
    message = _refused(run(reader, SAMPLES / owner / file), reader)
    why = f"line 1 is as {owner}'s export writes it: give the file to that adapter"
    if owner == "senan":  # its first line, '{' alone, shows no format: JSON lines read on to its second
        why = ("line 2 is as senan's export writes it: give the file to that adapter" if reader in ("snm", "combifron")
               else "no record up to line 1 shows it")
    assert message == f"the file is not in {reader}'s format ({FORMATS[reader].what}): {why}; nothing was read"


@pytest.mark.parametrize("reader", list(ADAPTERS))
def test_another_agencys_sample_after_a_byte_order_mark_is_refused_whole(
        reader: str, run: Callable[..., list[Result]]) -> None:
    """A byte-order mark does not hide the format: COMBIFRON's messages after one are still refused whole."""
    other = "snm" if reader == "combifron" else "combifron"
    _refused(run(reader, codecs.BOM_UTF8 + FIRST.get(other, FIRST["combifron"]).read_bytes()), reader)


@pytest.mark.parametrize("name", ["snm", "combifron"])
@pytest.mark.parametrize("breaking", [
    lambda line: line.rstrip(b"\n")[:-1] + b"\n",  # its closing brace lost
    lambda line: line.replace(b'":"', b'":"\xff', 1),  # a byte that is not UTF-8
    lambda line: line.replace(b",", b",,", 1),  # bad syntax
    lambda line: b"[1, 2]\n",  # a JSON array: shows no format, one dead letter once the next line shows its own
])
def test_own_json_lines_with_a_broken_first_line_read_the_rest(
        name: str, breaking: Callable[[bytes], bytes], run: Callable[..., list[Result]]) -> None:
    """A first line of the adapter's own export that is bad is one dead letter; every other line is read."""
    first, rest = FIRST[name].read_bytes().split(b"\n", 1)
    results = run(name, breaking(first + b"\n") + rest)
    assert results[0].item.number == 1 and results[0].error is not None
    assert results[0].error.reason != "wrong-format"
    assert [r.error for r in results[1:] if r.error] == [] and len(results) == 40


def test_own_document_with_a_broken_first_document_reads_the_rest(run: Callable[..., list[Result]]) -> None:
    """SENAN: a first document with a comma missing is one dead letter; the other 39 are read."""
    data = (SAMPLES / "senan" / "interdicciones-2026-11.json").read_bytes()
    broken = data.replace(b'",\n', b'"\n', 1)
    results = run("senan", broken)
    assert results[0].item.number == 1 and results[0].error is not None and results[0].error.reason == "syntax"
    assert [r.error for r in results[1:] if r.error] == [] and len(results) == 40


def test_own_fixed_width_with_a_broken_first_case_reads_the_rest(run: Callable[..., list[Result]]) -> None:
    """PN: a first case line with a bad date is that case's dead letter; the other 39 cases are read."""
    lines = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes().split(b"\n")
    lines[1] = lines[1][:15] + b"2026XX15" + lines[1][23:]
    results = run("pn", b"\n".join(lines))
    assert results[0].item.number == 1 and results[0].error is not None
    assert results[0].error.reason != "wrong-format"
    assert [r.error for r in results[1:] if r.error] == [] and len(results) == 40


def test_own_header_lacking_a_column_is_refused_as_such(run: Callable[..., list[Result]]) -> None:
    """SENAFRONT: a header of its own without a required column is refused as missing-column, not wrong-format."""
    data = (SAMPLES / "senafront" / "novedades-batallon-occidental-2026-11.csv").read_bytes()
    results = run("senafront", data.replace(b"Hora del evento", b"Hour", 1))
    assert len(results) == 1 and results[0].error is not None and results[0].error.reason == "missing-column"


@pytest.mark.parametrize("name", ["snm", "combifron"])
def test_records_showing_no_format_are_held_up_to_a_bound(name: str, run: Callable[..., list[Result]]) -> None:
    """Lines that show no format before the first of the export's own are each a dead letter; past HELD of them,
    the file is refused whole instead."""
    data = FIRST[name].read_bytes()
    few = run(name, b"[1]\n" * 3 + data)
    assert [r.item.number for r in few if r.error] == [1, 2, 3] and len(few) == 43
    _refused(run(name, b"[1]\n" * (HELD + 1) + data), name)


@pytest.mark.parametrize("name", ["snm", "combifron", "senan"])
def test_a_file_showing_no_format_whose_writer_is_not_done_is_left_to_change(
        name: str, run: Callable[..., list[Result]]) -> None:
    """A file that stops within its first record, before anything shows a format, is refused as cut: a watcher
    reads it again once it changes, and an empty file still holds no record."""
    message = _refused(results := run(name, b'{"ver'), name)
    assert results[0].error is not None and results[0].error.cut and "no record up to line 1" in message
    for empty in (b"", codecs.BOM_UTF8, b"\n\n"):
        (only,) = run(name, empty)
        assert only.error is not None and only.error.reason == "truncated" and only.error.cut


@pytest.mark.parametrize("first", ["Hora", "Tipo de evento", "Sector", "Provincia", "Informe"])
def test_a_senafront_header_starting_as_a_pn_kind_is_refused_whole_by_pn(
        first: str, run: Callable[..., list[Result]]) -> None:
    """A SENAFRONT export whose upper-case header (no byte-order mark) starts with a column whose first letters fit a
    PN kind and a capital (HORA, TIPO, SECTOR, PROVINCIA, INFORME) is not PN's: refused whole, no row dead-lettered."""
    data = (SAMPLES / "senafront" / "patrullas-2026-11.csv").read_bytes().removeprefix(codecs.BOM_UTF8)
    header, rows = data.split(b"\n", 1)
    cells = [cell.replace("N° Informe", "Informe") for cell in header.decode().split(";")]  # an alias it reads
    cells.insert(0, cells.pop(cells.index(first)))  # header order is free: the rows are not looked at
    message = _refused(run("pn", ";".join(cells).upper().encode() + b"\n" + rows), "pn")
    assert "line 1 is as senafront's export writes it" in message


def test_pn_h_line_with_leading_blanks_is_one_dead_letter(run: Callable[..., list[Result]]) -> None:
    """PN: spaces or a tab before the H line (a transfer tool's) make it a bad line of PN's own, one dead letter;
    the file is not refused whole, and its 40 cases are read."""
    data = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes()
    for blanks in (b"  ", b"\t", b" \t "):
        results = run("pn", blanks + data)
        assert [r.error.reason for r in results if r.error] == ["unknown-code"], blanks
        assert len(results) == 41


def test_pn_h_line_with_a_bad_export_time_is_still_pn(run: Callable[..., list[Result]]) -> None:
    """PN's format is told by the H line's layout, never by whether its date is one: the file is read."""
    data = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes()
    results = run("pn", data[:11] + b"20261399999999" + data[25:])
    assert [r for r in results if r.error and r.error.reason == "wrong-format"] == [] and len(results) == 40
