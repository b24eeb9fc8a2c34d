"""Record splitting: CSV with multi-line quoted fields, JSON Lines, concatenated JSON documents."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import _fields as f
from adapters._readers import Item, csv_rows, decode, json_documents, json_lines, physical_lines
from puente.errors import AdapterError


def _csv(data: bytes, limit: int = 1000, multiline: Callable[[list[str]], Iterable[int]] = lambda header: range(
        len(header))) -> list[tuple[int, bytes, list[str] | AdapterError]]:
    """The records of ``data``; by default any column's quoted cells may span lines."""
    return list(csv_rows(io.BytesIO(data), "utf-8", limit, multiline))


def _docs(data: bytes, limit: int = 1000) -> list[Item]:
    return list(json_documents(io.BytesIO(data), "utf-8", limit))


def test_csv_quoted_field_spans_lines_and_keeps_its_quotes() -> None:
    """A remark typed with line breaks stays one record, starting at its first line."""
    rows = _csv(b'a;b;c\n1;"uno; dos\n""tres""";3\n\n4;5;6\n')
    assert [(line, fields) for line, _, fields in rows] == [
        (1, ["a", "b", "c"]), (2, ["1", 'uno; dos\n"tres"', "3"]), (5, ["4", "5", "6"])]


def test_csv_quote_inside_an_unquoted_field_is_a_plain_character() -> None:
    """8°40'12"N written without quotes does not open a quoted field."""
    rows = _csv("a;b\n8°40'12\"N;x\n9;y\n".encode())
    assert [fields for _, _, fields in rows][1:] == [["8°40'12\"N", "x"], ["9", "y"]]


def test_csv_delimiter_comes_from_the_header() -> None:
    """A comma-separated export is read as such."""
    rows = _csv(b"a,b\n1,2\n")
    assert rows[1][2] == ["1", "2"]


def test_csv_unclosed_quote_is_truncated_not_swallowed() -> None:
    """A quote that never closes is reported at the line where it opened."""
    line, _, err = _csv(b'a;b\n1;2\n3;"open\nmore\n')[-1]
    assert line == 3 and isinstance(err, AdapterError) and err.reason == f.TRUNCATED


def test_csv_text_after_a_closing_quote_refuses_the_record_and_takes_no_more_lines() -> None:
    """A closing quote followed by other text than the delimiter or the line end is invalid CSV (strict): the
    record is refused as syntax, naming its lines, and ends with that line, so a quote opened later on it does
    not take the next row in; a lenient reader read '"q" t' as text and went on."""
    rows = _csv(b'a;b;c\n1;"Fuente;x\n2;"q" t;"open\n3;4;5\n')
    assert [line for line, _, _ in rows] == [1, 2, 4]
    err = rows[1][2]
    assert isinstance(err, AdapterError) and err.reason == f.SYNTAX and "lines 2-3" in str(err)
    assert "Fuente" not in str(err) and rows[2][2] == ["3", "4", "5"]
    single = _csv(b'a;b\n"x"y;1\n2;"z" \n3;4\n')
    assert [r[2].reason if isinstance(r[2], AdapterError) else r[2] for r in single] == [
        ["a", "b"], f.SYNTAX, f.SYNTAX, ["3", "4"]]
    # A quote that closes a cell at the end of a line, or before the delimiter, or is doubled, is valid as before.
    assert [r[2] for r in _csv(b'a;b\n"x";"y"\n"p""q";"r\ns"\n')] == [["a", "b"], ["x", "y"], ['p"q', "r\ns"]]


def test_a_quoted_cell_spans_lines_only_in_the_columns_that_may() -> None:
    """Only the columns ``multiline`` names from the header may hold a quoted cell across lines (none before the
    header, none by default): elsewhere a quoted cell open at its line's end ends the record there, refused as
    syntax naming the column, and the next row is read on its own, not taken into that cell."""
    data = b'a;b;c\n1;"Fuente;y\n2;3;4"\n5;6;"p\nq"\n'
    rows = _csv(data, multiline=lambda header: [header.index("c")])
    assert [line for line, _, _ in rows] == [1, 2, 3, 4]
    err = rows[1][2]
    assert isinstance(err, AdapterError) and err.reason == f.SYNTAX and "column 2" in str(err)
    assert "Fuente" not in str(err) and [r[2] for r in rows[2:]] == [["2", "3", '4"'], ["5", "6", "p\nq"]]
    default = list(csv_rows(io.BytesIO(data), "utf-8", 1000))
    assert [r[2].reason if isinstance(r[2], AdapterError) else r[2] for r in default][1:] == [
        f.SYNTAX, ["2", "3", '4"'], f.SYNTAX, ['q"']]
    [(line, _, header)] = _csv(b'"a\nb";c\n')[:1]
    assert isinstance(header, AdapterError) and header.reason == f.SYNTAX and line == 1


def test_a_quoted_cell_that_takes_in_a_line_holding_a_row_is_refused_naming_its_lines() -> None:
    """A stray quote ('"Fuente;x') closed by a quote ending a cell of the next row in the same column ('12"') is
    valid strict CSV of the header's width: the record is refused as syntax, naming its lines and no value, when
    a line it takes in holds as many delimiters as a row (the header's columns less one); it was read as one row,
    published with the next row's markings, and the next row vanished. Fewer delimiters there are remark text."""
    rows = _csv(b'a;b;c;d\n1;2;"Fuente;x\n3;4;12";y\n5;6;7;8\n')
    assert [line for line, _, _ in rows] == [1, 2, 4]
    err = rows[1][2]
    assert isinstance(err, AdapterError) and err.reason == f.SYNTAX and "lines 2-3" in str(err)
    assert "Fuente" not in str(err) and "12" not in str(err) and rows[2][2] == ["5", "6", "7", "8"]
    # A line in the middle counts as the last does; a line holding a row is ambiguous however narrow the header.
    assert isinstance(_csv(b'a;b;c\n1;"x\n3;4;5\ny";z\n')[1][2], AdapterError)
    assert isinstance(_csv(b'a;b;c\n1;"uno\ndos; ""tres""";3\n')[1][2], AdapterError)
    assert _csv(b'a;b;c;d\n1;2;"x;y\nz; w";3\n')[1][2] == ["1", "2", "x;y\nz; w", "3"]


def test_a_long_line_follows_the_strict_rule_across_its_parts() -> None:
    """Read in parts, a long line's closing quote is judged by what starts the next part: text there ends the
    record with the line (refused too long), and the row after it is read on its own."""
    # The head is read as limit + 1 bytes: its last byte is the closing quote, and the next part starts with 'x'.
    long_row = b'1;"' + b"y" * (101 - 4) + b'"x;"open\n'
    rows = _csv(b"a;b\n" + long_row + b"3;4\n", 100)
    assert [line for line, _, _ in rows] == [1, 2, 3] and rows[2][2] == ["3", "4"]
    assert isinstance(rows[1][2], AdapterError) and rows[1][2].reason == f.TOO_LONG


def test_only_a_first_line_holding_a_cr_says_the_line_ends_are_cr_only() -> None:
    """CR-only line ends are told by the file's first line; a CR in a later quoted cell, and lines ending CR CRLF
    (a CRLF file converted twice), are read as before."""
    assert [r[2] for r in _csv(b'a;b\n1;"x\ry"\n')] == [["a", "b"], ["1", "x\ry"]]
    assert [r[2] for r in _csv(b"a;b\r\r\n1;2\r\r\n")] == [["a", "b"], ["1", "2"]]
    [(line, raw, err)] = _csv(b"a;b\r1;2\r")
    assert isinstance(err, AdapterError) and err.reason == f.SYNTAX and not err.cut and (line, raw) == (1, b"")
    [item] = list(json_lines(io.BytesIO(b'{"a": 1}\r{"a": 2}\r'), "utf-8", 1000))
    assert (item.number, item.error is not None and "CR only" in str(item.error)) == (0, True)
    [item] = _docs(b'{\r  "a": 1\r}\r{\r  "a": 2\r}\r')
    assert (item.number, item.error is not None and "CR only" in str(item.error)) == (0, True)


def test_csv_bad_encoding_refuses_only_that_record() -> None:
    """A Windows-1252 row in a UTF-8 file is refused with a hint; the next row is read."""
    rows = _csv("a;b\nPeña;1\n".encode("cp1252") + b"ok;2\n")
    assert isinstance(rows[1][2], AdapterError) and rows[1][2].reason == f.ENCODING
    assert "Windows-1252" in str(rows[1][2])
    assert rows[2][2] == ["ok", "2"]


def test_a_line_inside_a_long_quoted_field_is_never_a_record_of_its_own() -> None:
    """Remarks longer than the limit are refused whole; the lines inside them, however much they look like a row
    (whoever types the remarks chooses), are read as nothing: the quotes are followed through a long record and
    through a long line read in parts ('""' split between two parts included), and the next real row is read."""
    row = b"FAKE-1;2026-11-21;RESTRINGIDO;COL, USA"
    many_lines = b'a;b;c\n1;"' + b"x\n" * 400 + row + b'\nend";3\n4;5;6\n'
    one_line = b'a;b;c\n1;"' + b"x" * 5000 + b'\n' + row + b'\nend";3\n4;5;6\n'
    # The head is read as limit + 1 bytes, the rest in parts of 64 KiB: the pair's first quote ends the first part.
    split_quote = b'a;b;c\n1;"' + b"x" * (101 + (1 << 16) - 1 - 3) + b'""\n' + row + b'\nend";3\n4;5;6\n'
    for data in (many_lines, one_line, split_quote):
        rows = _csv(data, 100)
        assert [line for line, _, _ in rows] == [1, 2, data.count(b"\n")], [line for line, _, _ in rows]
        assert isinstance(rows[1][2], AdapterError) and rows[1][2].reason == f.TOO_LONG
        assert len(rows[1][1]) <= 100 and rows[2][2] == ["4", "5", "6"]


def test_a_long_blank_line_is_a_record_refused_and_leaves_the_quotes_and_the_delimiter_alone() -> None:
    """A line of blanks longer than the limit is refused as too long (only its start was looked at, so it is not
    taken for a blank line); the delimiter still comes from the first line that is not blank, and the record
    after it is read with its own quotes."""
    for data in (b"a,b\n" + b" " * 500 + b'\n1,"x\ny"\n2,z\n', b" " * 500 + b'\na,b\n1,"x\ny"\n2,z\n'):
        rows = _csv(data, 100)
        assert isinstance(rows[0 if data.startswith(b" ") else 1][2], AdapterError)
        assert [fields for _, _, fields in rows if not isinstance(fields, AdapterError)] == [
            ["a", "b"], ["1", "x\ny"], ["2", "z"]]


def test_long_lines_are_skipped_unread() -> None:
    """A line over the limit is reported too-long and the reader carries on after it."""
    lines = list(physical_lines(io.BytesIO(b"short\n" + b"x" * 5000 + b"\nnext\n"), 100))
    assert [(n, long) for n, _, long in lines] == [(1, False), (2, True), (3, False)]
    assert lines[2][1] == b"next\n"  # line ends are kept, so records can be given back byte for byte


def test_decode_tells_truncation_from_wrong_encoding() -> None:
    """UTF-8 cut inside a character is truncated; a Latin-1 accent, even on the last letter, is encoding."""
    cut = "Núñez Peña".encode()[:-2]  # ends inside the ñ
    for raw, reason in ((cut, f.TRUNCATED), ("Núñez".encode("latin-1"), f.ENCODING), (b"Jos\xe9", f.ENCODING)):
        try:
            decode(raw, "utf-8", "line 1")
        except AdapterError as exc:
            assert exc.reason == reason
        else:
            raise AssertionError("decoded bad bytes")


def test_json_lines_one_object_per_line() -> None:
    """Blank lines are skipped; arrays, NaN and cut lines are refused with their reasons."""
    items = list(json_lines(io.BytesIO(b'{"a":1}\n\n[1]\n{"a": NaN}\n{"a": "x\n{"b":2}'), "utf-8", 1000))
    assert [(i.number, i.line) for i in items] == [(1, 1), (2, 3), (3, 4), (4, 5), (5, 6)]
    assert [i.error.reason if i.error else "ok" for i in items] == ["ok", f.INVALID, f.SYNTAX, f.TRUNCATED, "ok"]


def test_json_documents_split_at_lines_opening_with_a_brace() -> None:
    """Pretty-printed documents are split and numbered by their first line; a broken one stays alone."""
    data = b'\n{\n  "a": 1\n}\n{\n  "b": [1,\n  2]\n}\r\n{\n  "c": \n}\n{\n  "d": [\n'
    items = _docs(data)
    assert [(i.number, i.line) for i in items] == [(1, 2), (2, 5), (3, 9), (4, 12)]
    assert [i.error.reason if i.error else i.parsed for i in items] == [
        {"a": 1}, {"b": [1, 2]}, f.SYNTAX, f.TRUNCATED]


def test_json_documents_skip_an_oversized_document_and_go_on() -> None:
    """A document over the limit is too-long and the next one is read, with the right line number."""
    huge = b'{"c": "' + b"x\n" * 600_000 + b'"\n}\n'
    items = _docs(b'{"a": 1}\n' + huge + b'{"d": 4}\n', limit=1000)
    assert [(i.number, i.line, i.error.reason if i.error else i.parsed) for i in items] == [
        (1, 1, {"a": 1}), (2, 2, f.TOO_LONG), (3, 600_004, {"d": 4})]


@pytest.mark.timeout(60)  # the fault this guards against spun for ever without reading
def test_a_long_line_across_blocks_is_read_through_and_the_documents_after_it_are_read() -> None:
    """A document with a line longer than the limit, crossing the reader's 1 MiB block wherever its line end and
    the next '{' fall, is refused as too long once, and the documents after it are read, with their lines; one
    that runs to the end of the file without a line end ends the reading."""
    head = b'{"a": 1}\n{\n  "x": "'
    for size in [(1 << 20) - len(head) - k for k in range(6)] + [(1 << 20) + 5, 3 << 20]:
        data = head + b"x" * size + b'"}\n{"b": 2}\n{\n  "c": 3\n}\n'
        items = _docs(data, 1000)
        assert [(i.number, i.line, i.error.reason if i.error else i.parsed) for i in items] == [
            (1, 1, {"a": 1}), (2, 2, f.TOO_LONG), (3, 4, {"b": 2}), (4, 5, {"c": 3})], size
    items = _docs(b'{\n  "x": "' + b"x" * (1 << 21), 1000)
    assert [(i.line, i.error.reason if i.error else None) for i in items] == [(1, f.TOO_LONG)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=8), max_size=4),
                min_size=1, max_size=8))
def test_json_documents_read_back_what_was_written(docs: list[dict[str, object]]) -> None:
    """Any objects written pretty-printed one after another are read back, in order."""
    data = b"".join(json.dumps(d, indent=2, ensure_ascii=False).encode() + b"\n" for d in docs)
    assert [i.parsed for i in _docs(data, limit=100_000)] == docs


def test_a_record_cut_anywhere_is_never_given_out_whole() -> None:
    """A file cut at any byte of its last record (or read while written) never yields that record as good: a CSV
    row without its line end is truncated, and a JSON object cut before its closing brace does not parse."""
    row, obj = b'a;"b\nc";d;\r\n', '{"k": "ñ", "n": [1, 2]}\n'.encode()
    for cut in range(1, len(row) - 1):
        last = _csv(b"h1;h2;h3;h4\r\n" + row[:cut])[-1][2]
        assert isinstance(last, AdapterError) and last.reason == f.TRUNCATED, cut
    for cut in range(1, len(obj) - 1):
        for items in (list(json_lines(io.BytesIO(obj + obj[:cut]), "utf-8", 100)), _docs(obj + obj[:cut])):
            assert items[-1].error is not None, cut


def test_blank_lines_after_a_document_of_the_limit_do_not_make_it_too_long() -> None:
    """A document of exactly the limit is read, last in the file or not, whatever blank lines follow it; one
    byte more is too long."""
    doc = json.dumps({"a": "x" * 10}, indent=1)
    doc = (doc[:-2] + " " * (1024 - len(doc)) + doc[-2:]).encode()
    for tail in (b"", b"\n", b"\n\n\n", b"\r\n\r\n", b"\n\n" + b'{"next": 1}\n'):
        assert [i.error for i in _docs(b'{"first": 1}\n' + doc + tail, 1024)] == [None] * (3 if b"next" in tail else 2)
    assert _docs(b'{"first": 1}\n' + doc[:-1] + b' }\n\n', 1024)[1].error is not None


def test_a_file_that_stops_within_its_last_record_says_so_whatever_the_error() -> None:
    """Cut at any byte of its last record (within a number, a 'null', a character of two bytes), the file's last
    record is flagged ``cut``, whether it reads as truncated, bad syntax or a bad byte; a complete record that is
    broken (its line ended, its document closed) is not, and neither is a complete last line without its end."""
    obj = '{"k": "ñ", "n": [1, 2.5], "z": null}'.encode()
    reasons = set()
    for cut in range(1, len(obj)):
        data = obj + b"\n" + obj[:cut]
        for items in (list(json_lines(io.BytesIO(data), "utf-8", 100)), _docs(data)):
            last = items[-1].error
            assert last is not None and last.cut, cut
            reasons.add(last.reason)
    assert reasons >= {f.TRUNCATED, f.SYNTAX, f.ENCODING}
    pretty = json.dumps(json.loads(obj), indent=2).encode()
    for cut in (i + 1 for i, b in enumerate(pretty[:-1]) if b == ord("\n")):  # a writer flushing line by line
        last = _docs(obj + b"\n" + pretty[:cut])[-1].error
        assert last is not None and last.cut, cut
    for line in (obj[:-1] + b"\n", b'{"n": 1.}\n', b'{"n": nul}\n'):
        last = list(json_lines(io.BytesIO(line), "utf-8", 100))[-1].error
        assert last is not None and not last.cut
    last = _docs(b'{\n  "n": 1.,\n  "m": 2\n}\n')[-1].error
    assert last is not None and not last.cut
    assert [i.error for i in json_lines(io.BytesIO(obj + b"\n" + obj), "utf-8", 100)] == [None, None]
    row = b'a;"b\nc";d;\r\n'
    for cut in range(1, len(row) - 1):
        last_row = _csv(b"h1;h2;h3;h4\r\n" + row[:cut])[-1][2]
        assert isinstance(last_row, AdapterError) and last_row.cut, cut


def test_a_last_record_too_long_to_read_is_cut_unless_it_ended() -> None:
    """A last record over the limit that runs to the end of the file without its end (a line break; a document's
    closing '}' at the start of a line, then a line break) is flagged ``cut``, so the file is read again once it
    grows rather than archived; one that ended, or that a next document follows, is a complete record refused."""
    long = b"x" * 5000
    jsonl = list(json_lines(io.BytesIO(b'{"a": 1}\n{"b": "' + long), "utf-8", 100))
    csv = _csv(b"h1;h2\n1;2\n3;" + long)
    docs = [_docs(b'{"a": 1}\n{\n  "b": "' + long + end) for end in (b'"\n}', b'",\n', b'",\n  "c": {\n  }\n')]
    for err in (jsonl[-1].error, csv[-1][2], *(d[-1].error for d in docs)):
        assert isinstance(err, AdapterError) and err.reason == f.TOO_LONG and err.cut
    jsonl = list(json_lines(io.BytesIO(b'{"b": "' + long + b'"}\n'), "utf-8", 100))
    csv = _csv(b"h1;h2\n3;" + long + b"\n")
    docs = [_docs(b'{"a": 1}\n{\n  "b": "' + long + end) for end in (b'"\n}\n', b'"\r\n}\r\n\r\n', b'"\n}  \n  ')]
    docs.append(_docs(b'{\n  "b": "' + long + b'"\n}\n{"a": 1}\n'))
    for err in (jsonl[-1].error, csv[-1][2], docs[-1][0].error, *(d[-1].error for d in docs[:-1])):
        assert isinstance(err, AdapterError) and err.reason == f.TOO_LONG and not err.cut


def test_a_long_last_document_is_closed_however_it_is_read() -> None:
    """Whether a long last document closes does not depend on where the blocks it is read in end: its closing
    '}' and line break are seen when they fall in another block than the rest of it."""
    for size in ((1 << 20) - 3, (1 << 20) - 2, (1 << 20) - 1, 1 << 20, (1 << 20) + 1):
        body = b'{\n  "b": "' + b"x" * (size - 12) + b'"\n'
        closed, open_ = _docs(body + b"}\n", 100)[-1].error, _docs(body + b"  }\n", 100)[-1].error
        assert closed is not None and closed.reason == f.TOO_LONG and not closed.cut, size
        assert open_ is not None and open_.reason == f.TOO_LONG and open_.cut, size


def test_whitespace_around_a_document_does_not_count_toward_its_size() -> None:
    """Blank lines before or after a document, more of them than the limit (one block or many), leave it read
    and the lines after it counted; whitespace with content after it, within one document, makes it too long."""
    doc = b'{\n  "a": 1\n}\r\n'
    for blank in (b"\r\n" * 700, b"\r\n" * 70_000, b"\n" * 3_000_000, b" " * 3_000_000 + b"\n"):
        lines = blank.count(b"\n")
        items = _docs(doc + blank, 1000)
        assert [(i.line, i.error) for i in items] == [(1, None)], len(blank)
        items = _docs(blank + doc + blank + doc, 1000)
        assert [(i.line, i.error) for i in items] == [(lines + 1, None), (2 * lines + 4, None)], len(blank)
    for blank in (b"\r\n" * 70_000, b" " * 3_000_000):
        for after in (b'  "b": 2\n}\n', b'  "b": 2\n}\n{"c": 3}\n'):
            items = _docs(b'{\n  "a": 1,\n' + blank + after, 1000)
            err = items[0].error
            assert err is not None and err.reason == f.TOO_LONG and not err.cut, len(blank)
            assert items[0].raw == (b'{\n  "a": 1,\n' + blank)[:1000]
            assert [i.error for i in items[1:]] == [None] * (len(items) - 1)


def test_a_long_line_that_starts_blank_is_refused_not_skipped() -> None:
    """A JSON line longer than the limit whose first bytes are whitespace is refused as too long, never dropped
    as a blank line: only its start was looked at."""
    for end in (b"\n", b""):
        items = list(json_lines(io.BytesIO(b'{"a": 1}\n' + b" " * 200 + b'{"b": 2}' + end), "utf-8", 100))
        assert [(i.number, i.line) for i in items] == [(1, 1), (2, 2)]
        err = items[1].error
        assert err is not None and err.reason == f.TOO_LONG and err.cut == (not end)


def test_a_line_of_exactly_the_limit_is_read_whatever_its_line_end() -> None:
    """A JSON line of exactly the limit is read when it ends in CRLF as when it ends in LF: the '\\r' is part of
    its end, not of it; one byte more is too long either way."""
    for end in (b"\n", b"\r\n"):
        exact = b'{"a": "' + b"x" * 91 + b'"}'
        assert len(exact) == 100
        items = list(json_lines(io.BytesIO(exact + end + exact + end), "utf-8", 100))
        assert [(i.line, i.error, i.raw) for i in items] == [(1, None, exact), (2, None, exact)], end
        over = b'{"a": "' + b"x" * 92 + b'"}'
        items = list(json_lines(io.BytesIO(over + end + exact + end), "utf-8", 100))
        err = items[0].error
        assert err is not None and err.reason == f.TOO_LONG and not err.cut, end
        assert [(i.line, i.error) for i in items[1:]] == [(2, None)], end
