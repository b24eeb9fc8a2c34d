"""National Police fixed-width export -> SEIZURE: layout, grouping of case lines, trailer, encoding."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters import _fields as f
from adapters.config import Context
from adapters.core import convert
from adapters.pn import LAYOUTS, WIDTHS
from adapters.registry import get


def _line(kind: str, **fields: str) -> str:
    return "".join(str(fields.get(n, kind if n == "kind" else "")).ljust(w)[:w] for n, w in LAYOUTS[kind])


CASE = dict(case="DIJ-26-0000412", date="20261103", time="0640", province="COLON", place="ZONA LIBRE DE COLÓN",
            lat="+09.35012", lon="-079.90821", unit="DIJ COLÓN", operation="OPERACION CENTINELA", conveyance="CA",
            plate="C123456", flag="PAN")
ITEMS = [_line("I", case="DIJ-26-0000412", category="DR", item="COCAINA", quantity="25.5".rjust(12), unit="KG"),
         _line("I", case="DIJ-26-0000412", category="EF", item="DOLARES", quantity="48500".rjust(12), unit="USD")]
PERSON = _line("P", case="DIJ-26-0000412", surname1="NÚÑEZ", surname2="PEÑA", given="JOSÉ LUIS", born="19880302",
               sex="M", nationality="PAN", doc_type="CE", doc_number="8-765-4321", doc_country="PAN")


def _file(*lines: str, trailer: int | None = 1, encoding: str = "cp1252") -> bytes:
    body = [_line("H", system="SIIP-DIJ", exported="20261120120000"), *lines]
    if trailer is not None:
        body.append(_line("T", count=f"{trailer:08d}"))
    return ("\r\n".join(body) + "\r\n").encode(encoding)


def test_a_case_with_its_items_and_detainee_becomes_one_seizure(one: Callable[..., dict[str, Any]]) -> None:
    """The S line and the I and P lines after it make one alert; names keep their Ñ and accents."""
    alert = one("pn", _file(_line("S", **CASE), *ITEMS, PERSON))
    assert alert["alert_id"] == "PN:DIJ-26-0000412"
    assert alert["occurred_at"] == datetime(2026, 11, 3, 11, 40, tzinfo=UTC)
    p = alert["payload"]
    assert [(i["category"], i["kind"], i["quantity"], i["unit"]) for i in p["items"]] == [
        ("DRUGS", "COCAINE", 25.5, "KG"), ("CASH", "USD", 48500.0, "USD")]
    assert p["conveyance"]["kind"] == "TRUCK" and p["operation_name"] == "OPERACION CENTINELA"
    d = p["detainees"][0]
    assert (d["given_names"], d["surnames"], d["nationalities"]) == ("JOSÉ LUIS", "NÚÑEZ PEÑA", ["PAN"])
    assert alert["location"]["place_name"] == "ZONA LIBRE DE COLÓN"
    assert alert["markings"]["handling_code"] == "H1" and alert["markings"]["caveats"] == ["PII"]


def test_legacy_one_letter_classification_and_markings(one: Callable[..., dict[str, Any]]) -> None:
    """'S' is SECRETO; handling, grading and REL TO columns override the defaults."""
    alert = one("pn", _file(_line("S", **CASE, classification="S", handling="H2", grading="A2", release="USA FEAN"),
                            *ITEMS))
    m = alert["markings"]
    assert (m["classification"], m["handling_code"], m["source_reliability"], m["releasable_to"]) == (
        "SECRETO", "H2", "A", ["USA", "FEAN"])


def test_trimmed_trailing_spaces_are_tolerated(one: Callable[..., dict[str, Any]]) -> None:
    """A transfer tool that cut trailing blanks does not shift any field."""
    alert = one("pn", _file(_line("S", **CASE).rstrip(), *(i.rstrip() for i in ITEMS)))
    assert len(alert["payload"]["items"]) == 2


def test_a_bad_item_line_refuses_its_whole_case(run: Callable[..., list[Any]]) -> None:
    """A seizure without one of its items would be published as smaller than it was."""
    bad = ITEMS[0].replace("       25.5", "      -25.5")
    second = {**CASE, "case": "DIJ-26-0000413"}
    results = run("pn", _file(_line("S", **CASE), bad, ITEMS[1], _line("S", **second),
                              _line("I", case="DIJ-26-0000413", category="DR", item="MARIHUANA",
                                    quantity="3".rjust(12), unit="KG"), trailer=2))
    assert [r.error.reason if r.error else "ok" for r in results] == [f.NEGATIVE, "ok"]


def test_an_item_line_of_another_case_number_refuses_its_case_not_ends_it(run: Callable[..., list[Any]]) -> None:
    """An I or P line whose case number is mistyped is a bad line of the case it is among: the case is refused
    whole, and the lines after it stay the case's. Ending the case there published it with fewer items, and
    refused its later lines as lines of no case, while the trailer's count still matched."""
    typo = ITEMS[0].replace("DIJ-26-0000412", "DIJ-26-0000421")
    second = {**CASE, "case": "DIJ-26-0000413"}
    results = run("pn", _file(_line("S", **CASE), ITEMS[1], typo, PERSON, _line("S", **second),
                              ITEMS[0].replace("0000412", "0000413"), trailer=2))
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(1, f.INVALID), (2, "ok")]
    assert results[0].item.line == 2 and "line 4: the I line's case number" in str(results[0].error)
    assert "0000421" not in str(results[0].error)


def test_a_trailer_or_header_line_within_a_case_does_not_publish_it_without_its_last_items(
        run: Callable[..., list[Any]]) -> None:
    """S, I, T, I and S, I, H, I: the T or H line does not end the case before its last item; the case is refused
    whole (and the stray trailer, not the file's last line, with the file). A trailer followed by the next S line,
    by blank lines or by nothing ends the case, as it always did."""
    trailer, header = _line("T", count="00000001"), _line("H", system="SIIP-DIJ", exported="20261120120000")
    # The stray trailer is the file's only one (it counts the case); after the stray header, a trailer ends the file.
    for stray, count, at, file_level in ((trailer, None, "follows the T trailer at line 4", [(0, f.TRAILER_MISMATCH)]),
                                         (header, 1, "an H line within the case", [])):
        results = run("pn", _file(_line("S", **CASE), ITEMS[0], stray, ITEMS[1], trailer=count))
        assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [(1, f.INVALID),
                                                                                          *file_level], stray
        assert at in str(results[0].error)
    second = {**CASE, "case": "DIJ-26-0000413"}
    ended = _file(_line("S", **CASE), *ITEMS, trailer=1) + b"\r\n\r\n"
    assert [len(r.alert["payload"]["items"]) for r in run("pn", ended)] == [2]
    two = _file(_line("S", **CASE), *ITEMS, trailer=None) + (
        "\r\n".join([_line("T", count="00000001"), _line("S", **second), ITEMS[0].replace("0000412", "0000413"),
                      _line("T", count="00000002")]) + "\r\n").encode("cp1252")
    assert [len(r.alert["payload"]["items"]) if r.alert else r.error.reason for r in run("pn", two)] == [
        2, 1, f.TRAILER_MISMATCH]


def test_a_trailer_within_the_file_is_refused_whatever_it_counts(run: Callable[..., list[Any]]) -> None:
    """A T line that any line but a blank one follows is not the file's end: it is refused with the file, naming its
    line, whether it counts the cases before it or not (only the last trailer's count was held against the file);
    the cases are read as any others."""
    second = {**CASE, "case": "DIJ-26-0000413"}
    other = ITEMS[0].replace("0000412", "0000413")
    for count, after, last in (("00000007", [_line("S", **second), other], 2),  # the reviewer's: 7, then 2
                               ("00000001", [_line("S", **second), other], 2),  # each counts its part
                               ("00000001", ["", _line("T", count="00000001")], None),  # the trailer twice
                               ("00000001", [_line("H", system="SIIP-DIJ")], None)):  # a second export's header
        results = run("pn", _file(_line("S", **CASE), *ITEMS, _line("T", count=count), *after, trailer=last))
        refused = [r for r in results if r.item.number == 0]
        assert [(r.item.line, r.error.reason) for r in refused if r.error] == [(5, f.TRAILER_MISMATCH)], after
        assert "line 5: the T trailer is not the file's last line" in str(refused[0].error)
        assert results[0].alert is not None and len(results[0].alert["payload"]["items"]) == 2


def test_a_utf8_export_is_refused_as_a_wrong_encoding(reason: Callable[..., str]) -> None:
    """UTF-8 bytes where Windows-1252 is expected are an encoding problem, with the hint to re-export."""
    assert reason("pn", _file(_line("S", **CASE), *ITEMS, PERSON, encoding="utf-8")) == f.ENCODING


def test_a_missing_trailer_refuses_the_open_case_and_flags_the_file(run: Callable[..., list[Any]]) -> None:
    """The cases another S line closed are good; the last one, which no line closes, may be cut after any of its
    lines and is refused; a file-level dead letter says the export may be incomplete."""
    second = {**CASE, "case": "DIJ-26-0000413"}
    results = run("pn", _file(_line("S", **CASE), *ITEMS, _line("S", **second),
                              ITEMS[0].replace("0000412", "0000413"), trailer=None))
    assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [
        (1, "ok"), (2, f.TRUNCATED), (0, f.TRUNCATED)]
    assert "the case at line 5 is the file's last and no T trailer follows it" in str(results[1].error)


def test_a_trailer_count_that_is_not_ascii_digits_is_a_bad_trailer(run: Callable[..., list[Any]]) -> None:
    """A count of '²' (0xB2) or other non-ASCII digits is no count: the file's dead letter says the trailer is bad
    (trailer-mismatch), not that the file could not be read."""
    for count in ("²", "0000001²", "¹³"):
        body = _file(_line("S", **CASE), *ITEMS, trailer=None) + (_line("T", count=count) + "\r\n").encode("cp1252")
        results = run("pn", body)
        assert [(r.item.number, r.error.reason if r.error else "ok") for r in results] == [
            (1, "ok"), (0, f.TRAILER_MISMATCH)]
        assert results[1].error is not None and "case count is not a number" in str(results[1].error)


def test_the_complete_export_publishes_the_case_a_cut_one_refused(run: Callable[..., list[Any]]) -> None:
    """An export cut (or read while written) after a case's first item does not publish the case without its
    other items, which would then make the complete export's case a conflict: the complete file publishes it."""
    whole = _file(_line("S", **CASE), *ITEMS, PERSON)
    cut = whole[:whole.index(ITEMS[1].encode())]
    assert [r.error.reason if r.error else "ok" for r in run("pn", cut)] == [f.TRUNCATED, f.TRUNCATED]
    assert [len(r.alert["payload"]["items"]) for r in run("pn", whole)] == [2]


def test_a_last_line_without_its_line_end_is_cut_not_trimmed(run: Callable[..., list[Any]]) -> None:
    """A final line that stops short is not padded as if trailing spaces were trimmed: an item or a detainee cut
    within it refuses its case; a trailer cut within its count is no trailer (the case before it had ended)."""
    for last in (ITEMS[1][:40], PERSON[:55]):
        data = _file(_line("S", **CASE), ITEMS[0], trailer=None) + last.encode("cp1252")
        assert [r.error.reason if r.error else "ok" for r in run("pn", data)] == [f.TRUNCATED, f.TRUNCATED], last
    ended = _file(_line("S", **CASE), *ITEMS)
    assert [r.error.reason if r.error else "ok" for r in run("pn", ended[:-3])] == ["ok", f.TRUNCATED, f.TRUNCATED]


def test_a_long_line_that_starts_blank_refuses_its_case(run: Callable[..., list[Any]]) -> None:
    """A line longer than the layout allows whose start is blank (an item pushed right) is refused as too long, and
    with it its case: it is never skipped as a blank line, which would publish the seizure without that item."""
    data = _file(_line("S", **CASE), ITEMS[0], " " * 5000 + ITEMS[1])
    results = run("pn", data)
    assert [r.error.reason if r.error else "ok" for r in results] == [f.TOO_LONG]
    assert "line 4 is longer than" in str(results[0].error)


def test_the_summary_takes_the_item_labels_as_cleaned(one: Callable[..., dict[str, Any]]) -> None:
    """Control characters that text cleaning reads as whitespace let 'PASTA\\x1cBASE' match its code; the summary
    keeps the cleaned label, never the raw character."""
    item = _line("I", case="DIJ-26-0000412", category="DR", item="PASTA\x1cBASE", quantity="3".rjust(12), unit="KG")
    alert = one("pn", _file(_line("S", **CASE), item))
    assert alert["payload"]["items"][0]["kind"] == "COCA_BASE"
    assert alert["summary"] == "Aprehensión: 3 kg de pasta base"


def test_layout_widths_are_fixed() -> None:
    """The record layouts keep the widths the legacy system writes."""
    assert WIDTHS == {"H": 49, "S": 180, "I": 45, "P": 118, "T": 9}


def test_a_case_past_the_size_limit_keeps_memory_and_time_bounded(ctx_for: Callable[[str], Context]) -> None:
    """A case of 20,000 item lines is refused as too long, held in memory no larger than the limit allows (its
    later lines are taken as its own but not kept), and its dead letter's raw bytes stay within the limit; the case
    after it is read as usual."""
    ctx = ctx_for("PN")
    item = ITEMS[0]
    second = {**CASE, "case": "DIJ-26-0000413"}
    data = _file(_line("S", **CASE), *([item] * 20_000), _line("S", **second),
                 _line("I", case="DIJ-26-0000413", category="DR", item="COCAINA", quantity="3".rjust(12), unit="KG"),
                 trailer=2)
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        results = list(convert(get("pn"), stream, ctx))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.error.reason if r.error else "ok" for r in results] == [f.TOO_LONG, "ok"]
    assert len(results[0].item.raw) <= ctx.limits.record_bytes
    assert results[0].item.raw == data[data.index(b"SDIJ"):][: len(results[0].item.raw)]  # the case's first bytes
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MB for one refused case"


def test_a_trailer_that_miscounts_is_no_cut(run: Callable[..., list[Any]]) -> None:
    """A complete file whose trailer counts other than the cases read is refused as trailer-mismatch, not as a
    file that stops before its end (a watcher would wait for it for ever); a file without a trailer is one."""
    [case, miscount] = run("pn", _file(_line("S", **CASE), *ITEMS, trailer=2))
    assert case.error is None and miscount.error is not None
    assert (miscount.error.reason, miscount.error.cut) == (f.TRAILER_MISMATCH, False)
    assert "the trailer counts 2 cases; the file holds 1" in str(miscount.error)
    missing = run("pn", _file(_line("S", **CASE), *ITEMS, trailer=None))
    assert [(r.error.reason, r.error.cut) for r in missing] == [(f.TRUNCATED, True), (f.TRUNCATED, True)]


def test_a_full_trailer_without_a_final_line_break_ends_a_complete_file(run: Callable[..., list[Any]]) -> None:
    """A complete export whose T trailer has no final line break is read whole (nothing of a line of its full
    width is missing), not left waiting as cut; a trailer one digit short is still a cut."""
    whole = _file(_line("S", **CASE), *ITEMS, PERSON).rstrip(b"\r\n")
    assert whole.endswith(b"T00000001")
    results = run("pn", whole)
    assert [r.error for r in results] == [None] and len(results[0].alert["payload"]["items"]) == 2
    short = run("pn", whole[:-1])
    assert [(r.error.reason, r.error.cut) for r in short if r.error] == [(f.TRUNCATED, True), (f.TRUNCATED, True)]



def test_a_plate_flag_or_document_detail_without_what_it_belongs_to_is_refused(run: Callable[..., list[Any]]) -> None:
    """A plate or flag with no conveyance code, or a document type or country with no document number, was never
    read: the case is refused, naming the line and the field, rather than published without them."""
    bare = {**CASE, "conveyance": ""}
    person = dict(case="DIJ-26-0000412", surname1="NÚÑEZ", given="JOSÉ", sex="M", nationality="PAN")
    bad = [(_line("S", **bare), PERSON, 2, "conveyance"), (_line("S", **{**bare, "flag": ""}), PERSON, 2, "conveyance"),
           (_line("S", **{**bare, "plate": ""}), PERSON, 2, "conveyance"),
           (_line("S", **CASE), _line("P", **person, doc_type="CE"), 5, "document number"),
           (_line("S", **CASE), _line("P", **person, doc_country="PAN"), 5, "document number")]
    for s_line, p_line, line, field in bad:
        err = run("pn", _file(s_line, *ITEMS, p_line))[0].error
        assert err is not None and err.reason == f.MISSING_FIELD, err
        assert str(err).startswith(f"line {line}:") and field in str(err), err
    assert run("pn", _file(_line("S", **{**bare, "plate": "", "flag": ""}), *ITEMS, _line("P", **person)))[0].error \
        is None


def test_trailers_within_the_file_are_refused_once_in_bounded_memory(run: Callable[..., list[Any]],
                                                                      ctx_for: Callable[[str], Context]) -> None:
    """Every T line a line follows is out of place, and the file says so once, naming the first and how many: a file
    of 200,000 T lines is read in memory that does not grow with them (one refusal was held per line until the
    end, some 50 bytes of memory per byte of input)."""
    results = run("pn", _file(_line("S", **CASE), *ITEMS, _line("T", count="00000001"), _line("T", count="00000001"),
                              "T00000001"))
    refused = [r.error for r in results if r.item.number == 0 and r.error]
    assert [e.reason for e in refused] == [f.TRAILER_MISMATCH]
    assert "line 5: the T trailer is not the file's last line (line 6 follows it, nor are 2 later T line(s))" in str(
        refused[0])
    data = b"T00000001\r\n" * 200_000
    tracemalloc.start()
    try:
        flood = list(convert(get("pn"), io.BytesIO(data), ctx_for("PN")))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The out-of-place ones, and the last, whose count of 1 is not the file's 0 cases.
    assert [r.error.reason for r in flood if r.error] == [f.TRAILER_MISMATCH] * 2
    assert "nor are 199,998 later T line(s)" in str(flood[0].error)
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MB for {len(data):,} bytes of trailers"


def test_a_marking_cell_of_anything_but_spaces_is_read_never_taken_as_silent(run: Callable[..., list[Any]]) -> None:
    """The layout pads with spaces, and only a cell of spaces is silent (the agency's default): a classification,
    handling or release cell holding a tab, a no-break space or a separator is refused, never the default, which may
    be wider than what the damaged cell said; and a separator is no separator in a REL TO list."""
    for field, value in (("classification", "\t"), ("classification", "\xa0"), ("classification", "\x1f"),
                         ("handling", "\x1c"), ("release", "REL TO\x1fCOL")):
        results = run("pn", _file(_line("S", **CASE, **{field: value}), *ITEMS))
        assert results[0].alert is None and results[0].error is not None, (field, value)
        assert results[0].error.reason in (f.MISSING_FIELD, f.INVALID), (field, value, results[0].error)


def test_a_case_number_is_read_alike_on_its_s_i_and_p_lines(one: Callable[..., dict[str, Any]]) -> None:
    """A tab or no-break space after the case number is part of the field on every line alike: the I and P lines of
    the case stay its own (the S line's number was trimmed of every kind of blank, theirs of spaces only)."""
    for tail in ("\t", "\xa0"):
        number = "DIJ-26-000041" + tail
        alert = one("pn", _file(_line("S", **{**CASE, "case": number}),
                                *(i.replace("DIJ-26-0000412", number) for i in ITEMS)))
        assert len(alert["payload"]["items"]) == 2


def test_a_release_list_may_be_spaced_with_any_blank(one: Callable[..., dict[str, Any]]) -> None:
    """No-break and other spaces separate REL TO codes as a space does; only control and format characters are
    refused."""
    alert = one("pn", _file(_line("S", **CASE, classification="S", release="REL TO USA,\xa0FEAN"), *ITEMS))
    assert alert["markings"]["releasable_to"] == ["USA", "FEAN"]


def test_the_summary_gives_the_quantity_exactly(one: Callable[..., dict[str, Any]]) -> None:
    """A summary is kept under more agreements than the payload's figure: 1,234,567 never reads 1.23457e+06."""
    item = _line("I", case="DIJ-26-0000412", category="DR", item="PASTA BASE", quantity="1234567".rjust(12), unit="KG")
    alert = one("pn", _file(_line("S", **CASE), item))
    assert alert["summary"] == "Aprehensión: 1234567 kg de pasta base"
