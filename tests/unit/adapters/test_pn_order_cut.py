"""PN case order: a file still being written refuses no case for a line cut short, and the order is checked in
memory that does not grow with the file's cases."""

from __future__ import annotations

import asyncio
import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters import pn
from adapters.config import Context
from adapters.core import Result, convert
from adapters.registry import get
from adapters.watch import watch
from tests.unit.adapters.test_pn_order import I, S, T, _line, _outcome

SHORT, LONG = "FEAN-26-12", "FEAN-26-123"  # the first is the second cut within its number


def _file(*lines: str, tail: bytes = b"") -> bytes:
    head = "\r\n".join([_line("H", system="SIIP-DIJ", exported="20261120120000"), *lines]) + "\r\n"
    return head.encode("cp1252") + tail


def _cuts(results: list[Result]) -> list[tuple[str, bool]]:
    return [(r.error.reason, r.error.cut) if r.error else ("ok", False) for r in results]


def test_a_last_line_cut_within_its_case_number_refuses_no_closed_case(run: Callable[..., list[Result]]) -> None:
    """S(12) I S(123) I, then 'IFEAN-26-12' with no line end (the writer mid-way through an I line of case 123): case
    12 is published, and only what the file stops within is refused as cut (held by a watcher). Before, the cut line
    named case 12 out of place, which was dead-lettered, not cut, and published once the file was whole."""
    results = run("pn", _file(S(SHORT), I(SHORT), S(LONG), I(LONG), tail=b"IFEAN-26-12"))
    assert _outcome(results)[0] == (1, 2, f"PN:{SHORT}")
    assert _cuts(results)[1:] == [(f.TRUNCATED, True), (f.TRUNCATED, True)]


def test_a_last_s_line_cut_within_its_case_number_opens_no_case_twice(run: Callable[..., list[Result]]) -> None:
    """'SFEAN-26-1' with no line end (the S line of case FEAN-26-10 being written) does not open case FEAN-26-1 a
    second time: both cases before it are published."""
    one, two = "FEAN-26-1", "FEAN-26-2"
    results = run("pn", _file(S(one), I(one), S(two), I(two), tail=b"SFEAN-26-1"))
    assert [o[2] for o in _outcome(results)[:2]] == [f"PN:{one}", f"PN:{two}"]
    assert _cuts(results)[2:] == [(f.TRUNCATED, True), (f.TRUNCATED, True)]


def test_a_last_line_whose_case_number_is_written_whole_still_names_it(run: Callable[..., list[Result]]) -> None:
    """A last line cut after its case number names that case as the whole line will: the case it names out of place
    is refused now, as it is once the file is whole, never published first and refused later."""
    whole = I(SHORT).encode("cp1252")
    results = run("pn", _file(S(SHORT), I(SHORT), S(LONG), I(LONG), tail=whole[:16]))
    assert _cuts(results)[0] == (f.INVALID, False) and "named by the I or P line at line 6" in str(results[0].error)
    later = run("pn", _file(S(SHORT), I(SHORT), S(LONG), I(LONG), I(SHORT), T(2)))
    assert _cuts(later)[0] == (f.INVALID, False) and "named by the I or P line at line 6" in str(later[0].error)


def _watch_growing(tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any, first: bytes,
                   rest: bytes) -> Any:
    """A watcher reading ``first``, then the file once ``rest`` is written after it: the FakeKafka it sent to."""
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(first)
    adapter_run, kafka = offline("pn")

    def write_on(_: float) -> None:
        if path.exists() and path.read_bytes() == first and (kafka.published or kafka.dead):
            with path.open("ab") as file:
                file.write(rest)

    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=1.0, clock=ticks(write_on), out=io.StringIO()))
    assert (tmp_path / "done" / "incautaciones.txt").read_bytes() == first + rest
    return kafka


def test_a_watcher_never_dead_letters_a_case_it_publishes_once_the_file_is_whole(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """Through the watcher: a file read while its last line is cut within a case number, then read again whole:
    both cases published, nothing dead-lettered (before: case 12 dead-lettered, then published)."""
    whole = _file(S(SHORT), I(SHORT), S(LONG), I(LONG), I(LONG), T(2))
    cut = len(_file(S(SHORT), I(SHORT), S(LONG), I(LONG))) + len("IFEAN-26-12")
    kafka = _watch_growing(tmp_path, offline, ticks, whole[:cut], whole[cut:])
    assert (kafka.published, kafka.dead) == (2, [])


def test_a_watcher_never_publishes_a_case_a_line_being_written_names(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """Through the watcher: a last line cut after the number of a closed case refuses that case at once, as the whole
    line does: nothing of the file is published (not the case first, and its refusal later)."""
    whole = _file(S(SHORT), I(SHORT), S(LONG), I(LONG), I(SHORT), T(2))
    cut = len(_file(S(SHORT), I(SHORT), S(LONG), I(LONG))) + 16
    kafka = _watch_growing(tmp_path, offline, ticks, whole[:cut], whole[cut:])
    assert kafka.published == 0 and kafka.dead


def test_a_chance_match_in_the_filter_refuses_no_case(run: Callable[..., list[Result]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With a filter of 64 bits, most of 200 case numbers look opened before: each is checked against the file, so
    every case is published but the one truly opened twice, whose two parts each name the other's line."""
    monkeypatch.setattr(pn, "SEEN_BITS", 64)
    numbers = [f"DIJ-26-{n:07d}" for n in range(1, 201)]
    lines = [line for n in numbers for line in (S(n), I(n))]
    results = run("pn", _file(*lines, S(numbers[5]), I(numbers[5]), T(201)))
    refused = [(r.item.line, str(r.error)) for r in results if r.error]
    assert [line for line, _ in refused] == [12, 402]
    assert "also that of the S line at line 402" in refused[0][1] and "S line at line 12" in refused[1][1]
    assert len(results) == 201


def test_too_many_numbers_in_doubt_refuse_every_case(run: Callable[..., list[Result]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``STRAY_CASES`` numbers in doubt (a filter too full to tell cases apart), the order cannot be checked in
    bounded memory: every case is refused, saying why and what to do, none published."""
    monkeypatch.setattr(pn, "SEEN_BITS", 64)
    monkeypatch.setattr(pn, "STRAY_CASES", 3)
    numbers = [f"DIJ-26-{n:07d}" for n in range(1, 101)]
    results = run("pn", _file(*[line for n in numbers for line in (S(n), I(n))], T(100)))
    assert {r.error.reason if r.error else "ok" for r in results} == {f.INVALID}
    assert "case numbers may be opened by a second S line" in str(results[-1].error)
    assert "export the cases in smaller files" in str(results[-1].error)


def test_many_cases_are_read_in_memory_that_does_not_grow_with_them(ctx_for: Callable[[str], Context]) -> None:
    """The order is checked in a fixed filter, not one entry per case: reading 50,000 short S lines takes no more
    memory than reading 10,000 (before: some 100 bytes a case, 4 MB more here, and the first pass parsed every line as
    the second does). Two sizes rather than one large one: the growth is the claim, and tracing 200,000 cases took
    half a minute."""

    def peak_for(cases: int) -> int:
        data = _file() + b"".join(b"S%014d\n" % n for n in range(cases))
        tracemalloc.start()
        try:
            count = sum(1 for _ in convert(get("pn"), io.BytesIO(data), ctx_for("PN")))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == cases + 1  # every case refused, and the trailer missing
        return peak

    small, large = peak_for(10_000), peak_for(50_000)
    assert large < 6 * 2**20, f"{large / 2**20:.1f} MB for 50,000 cases"
    assert large - small < 2**19, f"{(large - small) / 2**20:.2f} MB more for 40,000 more cases"


class _Growing(io.BytesIO):
    """A file written on while it is read: ``more`` appears once the reader first goes back to its start."""

    def __init__(self, data: bytes, more: bytes) -> None:
        super().__init__(data)
        self.more = more

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.more and offset == 0 and whence == io.SEEK_SET:
            super().seek(0, io.SEEK_END)
            self.write(self.more)
            self.more = b""
        return super().seek(offset, whence)


def test_the_second_read_sees_no_line_the_first_did_not_check(run: Callable[..., list[Result]],
                                                              ctx_for: Callable[[str], Context]) -> None:
    """A file that grows between the reads (its writer mid-way) is read the second time only as far as the first
    got: a case whose lines the first read did not see is not published unchecked; the file reads as cut there."""
    head = _file(S(SHORT), I(SHORT), S(LONG), I(LONG))
    grown = list(convert(get("pn"), _Growing(head, _file(I(SHORT), T(2))[len(_file()):]), ctx_for("PN")))
    assert _outcome(grown) == _outcome(run("pn", head))
    assert _cuts(grown) == [("ok", False), (f.TRUNCATED, True), (f.TRUNCATED, True)]
