"""A file in UTF-16 or UTF-32 is one refusal of the file, encoding, saying so: never lines of bad bytes, CR-only
line ends, or a last NUL line held as cut."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import _fields as f
from adapters import _readers
from adapters.core import Result
from adapters.registry import ADAPTERS

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SAMPLE_FILES = {"senafront": "senafront/patrullas-2026-11.csv", "senan": "senan/interdicciones-2026-11.json",
                "pn": "pn/incautaciones-2026-11.txt", "snm": "snm/alertas-migratorias-2026-11.jsonl",
                "combifron": "combifron/mensajes-colombia-2026-11.jsonl"}
WIDE = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]  # the first of each with a BOM


@pytest.mark.parametrize("encoding", WIDE)
@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_a_sample_exported_in_utf16_or_utf32_is_one_encoding_refusal_not_cut(
        name: str, encoding: str, run: Callable[..., list[Result]]) -> None:
    """The sample re-encoded, with CRLF or LF line ends, with or without a byte-order mark, gives one result: the
    file as a whole (record 0), encoding, not cut, naming the encoding found and the one to export in; it read as
    Windows-1252 lines, as CR-only line ends (PN), or ended in a NUL line held as cut."""
    text = (SAMPLES / SAMPLE_FILES[name]).read_bytes().decode("cp1252" if name == "pn" else "utf-8-sig")
    want = "Windows-1252" if name == "pn" else "UTF-8"
    for line_ends in (text, text.replace("\r\n", "\n")):
        results = run(name, line_ends.encode(encoding))
        assert len(results) == 1 and results[0].item.number == 0, [(r.item.number, r.error) for r in results]
        err = results[0].error
        assert err is not None and err.reason == f.ENCODING and not err.cut, err
        assert f"the file is {encoding[:6].upper()}: export it as {want}" in str(err)


def test_only_a_wide_start_is_taken_for_utf16_or_utf32() -> None:
    """Text in the agencies' encodings, an empty start and a file of NULs (space reserved, not yet written) are
    none; a byte-order mark, or an ASCII first character with its NULs, is."""
    for text in (b"", b"{", b"N\xc2\xb0 Informe;", b"HSIIP", b"\xef\xbb\xbf{", b"\x00\x00\x00\x00", b"\x00"):
        assert _readers.wide(text) is None, text
    assert [_readers.wide(start) for start in (b"\xff\xfe", b"\xfe\xff", b"{\x00", b"\x00{")] == ["UTF-16"] * 4
    assert [_readers.wide(start) for start in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"{\x00\x00\x00",
                                               b"\x00\x00\x00{")] == ["UTF-32"] * 4
