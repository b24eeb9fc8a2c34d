"""PN case order: a file that changes between the reads (written again in place, or written on during the first)
publishes only cases whose bytes are those the order check read; the rest is refused as cut, to be read again."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import _fields as f
from adapters import pn
from adapters.config import Context
from adapters.core import Result, convert
from adapters.registry import get
from adapters.watch import open_dropped, watch
from tests.unit.adapters.test_pn_order import I, S, T, _line

X, Y, Z = "FEAN-26-1", "FEAN-26-2", "FEAN-26-3"


def _file(*lines: str) -> bytes:
    return ("\r\n".join([_line("H", system="SIIP-DIJ", exported="20261120120000"), *lines]) + "\r\n").encode("cp1252")


OLD = _file(S(X), I(X), S(Y), I(Y), S(Z), I(Z), I(Z), I(Z), T(3))
NEW = _file(S(X), I(X), S(Y), I(Y), S(X), I(X), T(3))  # case X opened twice: refused whole when read alone


def _seen(results: list[Result]) -> list[tuple[int, str, bool]]:
    return [(r.item.line, r.error.reason if r.error else r.alert["alert_id"] if r.alert else "?",
             bool(r.error and r.error.cut)) for r in results]


@pytest.fixture
def rewrite_after(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, bytes, int], None]:
    """``rewrite_after(path, data, n)``: once pn's scan has read the file ``n`` times, the file is truncated and
    ``data`` written in its place, on the same inode (an exporter run again to the same name)."""

    def arm(path: Path, data: bytes, n: int) -> None:
        scan, calls = pn._scan, [0]

        def scanned(*args: Any) -> None:
            scan(*args)
            calls[0] += 1
            if calls[0] == n:
                with path.open("r+b") as file:
                    file.truncate(0)
                    file.write(data)

        monkeypatch.setattr(pn, "_scan", scanned)

    return arm


def _read(path: Path, ctx: Context) -> list[Result]:
    stream, _ = open_dropped(path)
    with stream:
        return list(convert(get("pn"), stream, ctx))


def test_a_file_rewritten_between_the_reads_publishes_no_case_the_check_did_not_see(
        tmp_path: Path, ctx_for: Callable[[str], Context], rewrite_after: Callable[[Path, bytes, int], None]) -> None:
    """S1 I1 S2 I2 S3 I3 I3 I3 T written again as S1 I1 S2 I2 S1 I1 T after the order scan: no case is published
    (before: both parts of case 1, which the new file refuses, as the read gave bytes the scan never saw); one
    result, cut, says the file changed, so a watcher holds it and reads the file again."""
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(NEW)
    assert _seen(_read(path, ctx_for("PN"))) == [(2, f.INVALID, False), (4, f"PN:{Y}", False), (6, f.INVALID, False)]
    path.write_bytes(OLD)
    rewrite_after(path, NEW, 1)
    results = _read(path, ctx_for("PN"))
    assert _seen(results) == [(1, f.TRUNCATED, True)]
    assert "changed while it was read" in str(results[0].error)


def test_only_stretches_read_alike_give_cases(tmp_path: Path, ctx_for: Callable[[str], Context],
                                              rewrite_after: Callable[[Path, bytes, int], None],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked in stretches of 64 bytes: case 1, closed within the bytes both reads share, is published; case 2,
    closed by the S line that differs, is not, nor anything after; one cut result stands for the rest."""
    monkeypatch.setattr(pn, "CHECK_BYTES", 64, raising=False)
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(OLD)
    rewrite_after(path, NEW, 1)
    results = _read(path, ctx_for("PN"))
    assert _seen(results) == [(2, f"PN:{X}", False), (4, f.TRUNCATED, True)]
    shared = next(n for n, (a, b) in enumerate(zip(OLD, NEW, strict=False)) if a != b)
    assert "bytes after the first" in str(results[-1].error)
    assert int(str(results[-1].error).split("the first ")[1].split(" ")[0].replace(",", "")) <= shared


def test_a_file_rewritten_before_the_check_of_its_doubts_gives_no_case(
        tmp_path: Path, ctx_for: Callable[[str], Context], rewrite_after: Callable[[Path, bytes, int], None]) -> None:
    """A file whose scan saw case 1 opened twice, written again (same length, case 1 opened once) before the scan
    that checks the numbers in doubt: no case is published, as the check read other bytes than the scan did
    (before: all three, though the file the scan read opened case 1 twice)."""
    doubled = _file(S(X), I(X), S(Y), I(Y), S(X), I(X), T(3))
    single = _file(S(X), I(X), S(Y), I(Y), S(Z), I(Z), T(3))
    assert len(doubled) == len(single)
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(doubled)
    rewrite_after(path, single, 1)
    results = _read(path, ctx_for("PN"))
    assert _seen(results) == [(1, f.TRUNCATED, True)]


class _Appended(io.FileIO):
    """A file as the OS gives it, whose writer appends ``rest`` as soon as a read first meets its end."""

    def __init__(self, path: Path, rest: bytes) -> None:
        super().__init__(path, "rb")
        self.path, self.rest = path, rest

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer) or 0
        if n == 0 and self.rest:
            with self.path.open("ab") as file:
                file.write(self.rest)
            self.rest = b""
        return n


def _growing(tmp_path: Path, ctx: Context, first: bytes, rest: bytes) -> list[Result]:
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(first)
    with io.BufferedReader(_Appended(path, rest)) as stream:  # as `puente adapt pn FILE` opens it
        return list(convert(get("pn"), stream, ctx))


def test_a_line_completed_during_the_first_read_refuses_no_case_for_good(
        tmp_path: Path, ctx_for: Callable[[str], Context], run: Callable[..., list[Result]]) -> None:
    """'SFEAN-26-1' at the end of the file, then the rest of its line appended while the scan reads: the scan does
    not read on past the size the file had, so the case is cut (read again), as the bytes then there say. Before:
    'SFEAN-26-1' and '2 ...' were two lines to the scan only, and case FEAN-26-12's I lines, named out of place,
    refused it for good, dead-lettered while its file is whole."""
    a, b = "FEAN-26-12", "FEAN-26-13"
    data = _file(S(a), I(a), I(a), S(b), I(b), T(2))
    cut = data.index(S(a).encode("cp1252")) + len("SFEAN-26-1")
    results = _growing(tmp_path, ctx_for("PN"), data[:cut], data[cut:])
    assert _seen(results) == _seen(run("pn", data[:cut])) == [(2, f.TRUNCATED, True), (2, f.TRUNCATED, True)]


def test_a_line_completed_during_the_first_read_hides_no_second_s_line(
        tmp_path: Path, ctx_for: Callable[[str], Context], run: Callable[..., list[Result]]) -> None:
    """A second S line of case FEAN-26-12, half written when the scan met the file's end and completed then: not
    read on, so what the records read is what the scan checked, and no case is published the scan did not see
    whole (before: the scan saw 'SFEAN-26-1' and '2...', the record read a second case 12 and published it)."""
    a, b = "FEAN-26-12", "FEAN-26-13"
    data = _file(S(a), I(a), S(b), I(b), S(a), T(3))
    cut = data.rindex(S(a).encode("cp1252")) + len("SFEAN-26-1")
    results = _growing(tmp_path, ctx_for("PN"), data[:cut], data[cut:])
    assert _seen(results) == _seen(run("pn", data[:cut]))
    assert not any(r.alert and r.item.line == 6 for r in results)


def test_digests_stay_few_however_long_the_file(ctx_for: Callable[[str], Context], run: Callable[..., list[Result]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MARKS`` digests are kept: past them, stretches are twice as long. A file read so gives what it
    gives read with the defaults, and a change in its last bytes is still met before anything after it is given."""
    numbers = [f"DIJ-26-{n:07d}" for n in range(1, 41)]
    data = _file(*[line for n in numbers for line in (S(n), I(n))], T(40))
    expected = _seen(run("pn", data))
    monkeypatch.setattr(pn, "CHECK_BYTES", 16, raising=False)
    monkeypatch.setattr(pn, "MARKS", 4, raising=False)
    seen = pn._Seen(io.BytesIO(data), len(data))
    assert io.BufferedReader(seen).read() == data
    assert len(seen._marks) <= 4 * 16 and seen.every >= len(data) // 4 // 2
    assert _seen(run("pn", data)) == expected

    class Changing(io.BytesIO):
        """Its trailer's count written anew once it is read from its start a second time."""

        starts = 0

        def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
            if offset == 0 and whence == io.SEEK_SET:
                self.starts += 1
                if self.starts == 3:  # _extent's, the scan's, then the records'
                    self.getbuffer()[-4:-2] = b"41"
            return super().seek(offset, whence)

    results = list(convert(get("pn"), Changing(data), ctx_for("PN")))
    assert results[-1].error is not None and "changed while it was read" in str(results[-1].error)
    assert not any(r.error and r.error.reason == f.TRAILER_MISMATCH for r in results)
    assert [r for r in results if r.alert] and len(results) < len(expected)


def test_a_watcher_publishes_only_what_the_file_as_it_stays_says(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any,
        rewrite_after: Callable[[Path, bytes, int], None]) -> None:
    """Through the watcher: the file written again between the reads is held, not archived, read again once still,
    and only what the new file publishes is published: case 2; both parts of case 1 dead-lettered (before: case 1
    published from the rewritten bytes, then refused when read again)."""
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(OLD)
    rewrite_after(path, NEW, 1)
    adapter_run, kafka = offline("pn")
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=1.0, clock=ticks(), out=io.StringIO()))
    assert (tmp_path / "done" / "incautaciones.txt").read_bytes() == NEW
    assert kafka.published == 1 and len(kafka.dead) == 2


def test_counts_add_up_when_a_change_is_met(tmp_path: Path, offline: Callable[..., tuple[Any, Any]],
                                            rewrite_after: Callable[[Path, bytes, int], None],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A watcher's run of a file written again between the reads: every result read is published or held (none
    dead-lettered as bad), and the held one is the cut that says the file changed."""
    monkeypatch.setattr(pn, "CHECK_BYTES", 64, raising=False)
    path = tmp_path / "incautaciones.txt"
    path.write_bytes(OLD)
    rewrite_after(path, NEW, 1)
    adapter_run, kafka = offline("pn")
    stream, _ = open_dropped(path)
    with stream:
        tally = asyncio.run(adapter_run.run(stream, str(path), hold_cut=True))
    assert (tally.read, tally.published, tally.held, tally.rejected) == (2, 1, 1, 0)
    assert tally.cut and kafka.dead == []
