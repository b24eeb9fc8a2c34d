"""The edge without Kafka: --check, tallies, dead-letter keys, the CLI parser and the folder watcher."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from adapter_fakes import FakeKafka, Pipe
from unreachable import unreachable_kafka

from adapters.config import Context
from adapters.core import Result
from adapters.ledger import Ledger
from adapters.registry import ADAPTERS, get
from adapters.run import AdapterRun, Tally, check, dead_key
from adapters.watch import open_dropped, pending, watch
from broker.topology import TopicNames
from puente.commands.adapt import register
from puente.errors import KafkaUnavailableError
from puente.settings import AGENCY_COUNTRIES, AGENCY_UNITS, PuenteSettings
from puente.wire import Record

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="puente")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_the_cli_offers_one_command_per_adapter() -> None:
    """`puente adapt NAME FILE|-|--watch DIR` parses for every adapter."""
    parser = _parser()
    for name in ADAPTERS:
        args = parser.parse_args(["adapt", name, "a.csv", "-"])
        assert (args.adapter, args.files, args.watch) == (name, ["a.csv", "-"], None)
    args = parser.parse_args(["adapt", "pn", "--watch", "drop/x", "--exit-when-idle", "5"])
    assert args.watch == Path("drop/x") and args.exit_when_idle == 5.0


def test_check_mode_lists_every_rejection_without_kafka(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`--check` maps and validates, prints each bad record's file, line and reason, and exits 1."""
    monkeypatch.setenv("PUENTE_BOOTSTRAP", "127.0.0.1:1")  # never contacted
    bad = SAMPLES / "bad" / "senafront" / "fechas-imposibles.csv"
    good = SAMPLES / "senafront" / "patrullas-2026-11.csv"
    args = _parser().parse_args(["adapt", "senafront", "--check", str(good), str(bad)])
    assert args.func(args) == 1
    out, err = capsys.readouterr()
    assert "read 40, valid 40, duplicates 0, rejected 0" in out
    assert "rejected 7 (future-date 1, invalid-date 6)" in out
    assert f"{bad}:2: invalid-date: Fecha is not a date that exists" in err
    assert "31/02/2026" not in err  # dates are never quoted: a shifted column may hold a date of birth


def test_files_and_watch_are_exclusive(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Giving both, or neither, is a usage error (exit 2) saying which."""
    parser = _parser()
    for argv, said in ((["adapt", "snm"], "or --watch DIR"), (["adapt", "snm", "x.jsonl", "--watch", "drop"],
                                                               "not both")):
        args = parser.parse_args(argv)
        with pytest.raises(SystemExit) as done:
            args.func(args)
        assert done.value.code == 2 and said in capsys.readouterr().err


def test_check_counts_repeated_ids_as_duplicates(ctx_for: Callable[[str], Context]) -> None:
    """The same record twice in one file is one valid record and one duplicate."""
    line = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[0]
    tally = check(get("snm"), ctx_for("SNM"), io.BytesIO(line * 2), "x", err=io.StringIO())
    assert (tally.read, tally.published, tally.duplicates, tally.rejected) == (2, 1, 1, 0)


def test_tallies_add_up_and_read_well() -> None:
    """A summary line names every count and each reason."""
    total = Tally(3, 1, 1, 1)
    total.reasons["encoding"] += 1
    total.add(Tally(2, 2, 0, 0))
    assert total.line() == "read 5, published 3, duplicates 1, rejected 1 (encoding 1)"


def test_dead_letter_keys_are_stable_per_file_and_record(run: Callable[..., list[Result]]) -> None:
    """The same bad record of the same file gets the same key wherever the file lies; another record, or the same
    record in a file of other content, another."""
    results = run("snm", SAMPLES / "bad" / "snm" / "valores-invalidos.jsonl")
    a = dead_key("snm", "/in/valores.jsonl", results[0], b"digest-1")
    assert a == dead_key("snm", "/in/done/valores.jsonl", results[0], b"digest-1")
    assert a != dead_key("snm", "/in/valores.jsonl", results[1], b"digest-1")
    assert a != dead_key("snm", "/in/valores.jsonl", results[0], b"digest-2")
    assert a.startswith(b"adapter:snm:")


class _FakeRun:
    """Stands in for AdapterRun: records which files were adapted."""

    def __init__(self) -> None:
        self.adapter = get("snm")
        self.err = io.StringIO()
        self.seen: list[str] = []

    async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
        self.seen.append(Path(source).name)
        return Tally(read=len(stream.read().splitlines()), published=1)


def test_the_watcher_takes_finished_files_once_and_moves_them(tmp_path: Path) -> None:
    """Files are adapted after two polls without change, then moved to done/; temporary names are left alone."""
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "b.jsonl.part").write_text("{}\n")
    (tmp_path / ".hidden.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("x")
    fake = _FakeRun()
    out = io.StringIO()
    total = asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.4, out=out))  # type: ignore[arg-type]
    assert fake.seen == ["a.jsonl"] and total.read == 1
    assert (tmp_path / "done" / "a.jsonl").exists() and not (tmp_path / "a.jsonl").exists()
    assert [p.name for p in pending(tmp_path, ("*.jsonl",))] == []
    assert "snm a.jsonl: read 1, published 1" in out.getvalue()


def test_a_stop_ends_the_watch_after_the_file_in_flight_not_the_backlog(tmp_path: Path) -> None:
    """SIGTERM (the stop event) with many files ready: the file being read is finished and archived, and the watch
    returns before the next one, leaving the rest in place for the next run."""
    for i in range(20):
        (tmp_path / f"f{i:02d}.jsonl").write_text("{}\n")
    stop = asyncio.Event()

    class _Stopped(_FakeRun):
        async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
            stop.set()  # the signal arrives while this file is read
            return await super().run(stream, source)

    fake = _Stopped()
    total = asyncio.run(watch(fake, tmp_path, interval=0.05, stop=stop, out=io.StringIO()))  # type: ignore[arg-type]
    assert len(fake.seen) == 1 and total.read == 1
    assert [p.name for p in (tmp_path / "done").iterdir()] == fake.seen
    assert len(pending(tmp_path, ("*.jsonl",))) == 19


def test_the_watcher_never_follows_a_symbolic_link(tmp_path: Path) -> None:
    """A link in the drop folder (to the adapter's keys, say) is neither read nor moved: whoever may write
    the folder cannot have the adapter read a file for them. A link swapped in after the poll is refused
    at the open."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": "x"}\n')
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.jsonl").symlink_to(secret)
    (drop / "b.jsonl").write_text("{}\n")
    fake = _FakeRun()
    asyncio.run(watch(fake, drop, interval=0.05, idle_exit=0.4, out=io.StringIO()))  # type: ignore[arg-type]
    assert fake.seen == ["b.jsonl"] and (drop / "a.jsonl").is_symlink()
    assert [p.name for p in pending(drop, ("*.jsonl",))] == []
    with pytest.raises(OSError, match="symbolic link"):
        open_dropped(drop / "a.jsonl")


def test_a_file_written_to_while_it_is_read_is_read_again_before_it_is_moved(tmp_path: Path) -> None:
    """Lines appended while a run reads (its Kafka flush, say) are not archived unread: the run sees the
    file as it was opened, the file stays, and the next run reads it whole; one replaced meanwhile stays
    too."""
    class _Growing(_FakeRun):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[int] = []

        async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
            data = stream.read()
            self.lines.append(len(data.splitlines()))
            if len(self.lines) == 1:
                with open(source, "ab") as f:
                    f.write(b'{"late": 1}\n')
            elif len(self.lines) == 2:
                other = Path(source).with_name("c.tmp")
                other.write_text("{}\n{}\n{}\n")
                other.replace(source)
            return Tally(read=len(data.splitlines()), published=len(data.splitlines()))

    (tmp_path / "a.jsonl").write_text("{}\n")
    fake = _Growing()
    err_out = io.StringIO()
    asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.5, out=err_out))  # type: ignore[arg-type]
    assert fake.lines == [1, 2, 3]
    assert len((tmp_path / "done" / "a.jsonl").read_text().splitlines()) == 3
    assert fake.err.getvalue().count("changed while it was read; left in place") == 2


def test_done_must_be_a_folder_and_only_the_file_read_is_moved(tmp_path: Path) -> None:
    """done/ as a link to another folder (another agency's drop folder, say) is refused; a file replaced after it
    was read is not moved (nor the new one lost); a file with other names (hard links) is not read."""
    from adapters.watch import archive

    drop, elsewhere = tmp_path / "drop", tmp_path / "elsewhere"
    drop.mkdir()
    elsewhere.mkdir()
    (drop / "done").symlink_to(elsewhere)
    (drop / "a.jsonl").write_text("{}\n")
    with pytest.raises(OSError, match="done/ is not a folder of its own"):
        archive(drop / "a.jsonl", drop / "done")
    assert list(elsewhere.iterdir()) == [] and (drop / "a.jsonl").exists()

    (drop / "done").unlink()
    stream, identity = open_dropped(drop / "a.jsonl")
    stream.close()
    (drop / "b.tmp").write_text("{}\n{}\n")
    (drop / "b.tmp").replace(drop / "a.jsonl")  # replaced after the read
    assert archive(drop / "a.jsonl", drop / "done", identity) is None
    assert (drop / "a.jsonl").read_text() == "{}\n{}\n" and list((drop / "done").iterdir()) == []

    secret = tmp_path / "key.json"
    secret.write_text("{}\n")
    os.link(secret, drop / "c.jsonl")
    with pytest.raises(OSError, match="hard links"):
        open_dropped(drop / "c.jsonl")


def test_a_move_a_stop_cut_short_is_read_again_not_refused(tmp_path: Path, ticks: Any) -> None:
    """The watcher stopped between linking a file into done/ and removing its drop-folder name: the next run takes it
    out of done/ and reads it again (the ledger skips what was published) instead of refusing a file with two names,
    whether the journal recorded it or not: no journal entry makes a file skip its read."""
    from adapters.watch import Journal

    drop = tmp_path / "drop"
    (drop / "done").mkdir(parents=True)
    for name, recorded in (("a.jsonl", True), ("b.jsonl", False)):
        (drop / name).write_text("{}\n")
        os.link(drop / name, drop / "done" / name)
        st = (drop / name).stat()
        if recorded:
            Journal(drop, print).note(name, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        fake = _FakeRun()
        asyncio.run(watch(fake, drop, interval=0.05, idle_exit=0.3, clock=ticks(), out=io.StringIO()))  # type: ignore[arg-type]
        assert fake.seen == [name] and not (drop / name).exists() and (drop / "done" / name).exists()
        assert "taken out of done/ and read again" in fake.err.getvalue()
    # A link to another archived file (an operator dropping one again) is no move cut short: refused, kept.
    os.link(drop / "done" / "a.jsonl", drop / "redo.jsonl")
    fake = _FakeRun()
    asyncio.run(watch(fake, drop, interval=0.05, idle_exit=0.3, clock=ticks(), out=io.StringIO()))  # type: ignore[arg-type]
    assert (drop / "redo.jsonl").exists() and "hard links" in fake.err.getvalue()


def test_unreadable_files_stop_the_run_before_kafka_naming_each(tmp_path: Path) -> None:
    """`puente adapt` with a missing file and a folder among good ones fails at once, naming both, without Kafka."""
    import os
    import subprocess
    import sys

    good = SAMPLES / "senafront" / "patrullas-2026-11.csv"
    missing, folder = tmp_path / "no-existe.csv", tmp_path / "carpeta.csv"
    folder.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "PUENTE_BOOTSTRAP"}, **unreachable_kafka(tmp_path, port=1),
           "PUENTE_KEYS": str(tmp_path / "keys")}
    done = subprocess.run([sys.executable, "-m", "puente.cli", "adapt", "senafront", str(good), str(missing),
                           str(folder)], cwd=SAMPLES.parent, env=env, capture_output=True, timeout=120, check=False)
    err = done.stderr.decode()
    assert done.returncode == 3, err
    assert f"{missing} (No such file or directory)" in err and f"{folder} (is a folder)" in err
    assert "nothing was read or published" in err and "Kafka" not in err and "key" not in err.lower()
    assert done.stdout == b"" and err.count("\n") == 1  # one line, and no summary of a file never read


def test_check_mode_checks_every_file_before_reading_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--check` with a missing second file names it before printing any summary; '-' twice is refused too."""
    from puente.errors import ConfigError

    good = SAMPLES / "senafront" / "patrullas-2026-11.csv"
    args = _parser().parse_args(["adapt", "senafront", "--check", str(good), str(tmp_path / "x.csv")])
    with pytest.raises(ConfigError, match=r"x\.csv"):
        args.func(args)
    assert capsys.readouterr().out == ""
    args = _parser().parse_args(["adapt", "senafront", "--check", "-", "-"])
    with pytest.raises(ConfigError, match="more than once"):
        args.func(args)


class _FailingSecondRun:
    """Stands in for AdapterRun in adapt_paths: the first file publishes, the second loses Kafka."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.files = 0

    async def __aenter__(self) -> _FailingSecondRun:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
        from puente.errors import KafkaSetupError

        self.files += 1
        if self.files == 2:
            raise KafkaSetupError("publishing stopped after 0 acknowledged records")
        return Tally(read=40, published=40)


def test_each_files_summary_is_printed_as_it_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """When Kafka fails on the second file, the first file's summary has already been printed."""
    from puente.errors import KafkaSetupError

    monkeypatch.delenv("PUENTE_BOOTSTRAP", raising=False)
    for name, value in unreachable_kafka(tmp_path, port=1).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("adapters.run.AdapterRun", _FailingSecondRun)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"x")
    second.write_bytes(b"y")
    args = _parser().parse_args(["adapt", "senafront", str(first), str(second)])
    with pytest.raises(KafkaSetupError):
        args.func(args)
    assert capsys.readouterr().out == f"senafront {first}: read 40, published 40, duplicates 0, rejected 0\n"


def test_the_watcher_survives_a_file_it_cannot_read(tmp_path: Path) -> None:
    """An I/O error on one file is reported and the file left in place; the next file is still adapted."""
    class _Flaky(_FakeRun):
        async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
            if Path(source).name == "a.jsonl":
                raise OSError(5, "Input/output error")
            return await super().run(stream, source)

    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "b.jsonl").write_text("{}\n")
    fake = _Flaky()
    total = asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.4, out=io.StringIO()))  # type: ignore[arg-type]
    assert fake.seen == ["b.jsonl"] and total.read == 1
    assert (tmp_path / "a.jsonl").exists() and (tmp_path / "done" / "b.jsonl").exists()
    assert "cannot read a.jsonl: Input/output error; left in place" in fake.err.getvalue()


def test_file_level_dead_letter_keys_tell_distinct_failures_apart(run: Callable[..., list[Result]]) -> None:
    """Record 0 has no bytes of its own: its reason, detail and the file's digest name it, so two exports of one
    name cut at different lines, or with other content, get two keys; the same file read again the same key."""
    lines = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes().splitlines(keepends=True)
    short, long = b"".join(lines[:10]), b"".join(lines[:20])
    cut = [r for r in run("pn", short) if r.item.number == 0]
    cut_later = [r for r in run("pn", long) if r.item.number == 0]
    assert len(cut) == len(cut_later) == 1 and cut[0].item.raw == cut_later[0].item.raw == b""
    a = dead_key("pn", "/in/export.txt", cut[0], b"digest-1")
    assert a == dead_key("pn", "/in/done/export.txt", cut[0], b"digest-1")  # a true re-run
    assert a != dead_key("pn", "/in/export.txt", cut_later[0], b"digest-1")  # cut at another line
    assert a != dead_key("pn", "/in/export.txt", cut[0], b"digest-2")  # same detail, other content


@pytest.mark.parametrize("pipe", [False, True])
def test_two_exports_of_one_name_cut_short_each_get_their_dead_letter(pipe: bool, tmp_path: Path,
                                                                      ctx_for: Callable[[str], Context]) -> None:
    """Each file's tally of rejections matches the dead letters written for it (its truncation, and the conflict
    of the case the first cut short, in each later file), read from a file or a pipe; the same file again writes
    none, and counts its rejections as already rejected."""
    from types import SimpleNamespace

    from adapters.run import AdapterRun

    lines = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes().splitlines(keepends=True)
    exports = []
    for folder, end in (("a", 10), ("b", 20), ("c", 20)):
        (tmp_path / folder).mkdir()
        body = b"".join(lines[:end])
        if folder == "c":  # as long as b, with one case's place changed: same detail, other content
            body = body.replace(b"PUERTO DE BALBOA", b"PUERTO DE COLON ")
        (tmp_path / folder / "incautaciones.txt").write_bytes(body)
        exports.append(tmp_path / folder / "incautaciones.txt")

    async def go() -> list[tuple[int, int, int]]:
        kafka = FakeKafka()
        offline: Any = SimpleNamespace(topic_prefix="t", agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
        adapter_run = AdapterRun(offline, None, get("pn"), ctx_for("PN"), err=io.StringIO())  # type: ignore[arg-type]
        adapter_run._publisher, adapter_run._dlq = kafka, kafka
        counts = []
        for path in [*exports, exports[0]]:
            before = len(kafka.dead)
            with path.open("rb") as file:
                stream: Any = io.BufferedReader(Pipe(file.read())) if pipe else file
                tally = await adapter_run.run(stream, str(path))
            counts.append((tally.rejected, len(kafka.dead) - before, tally.already_rejected))
        assert len(set(kafka.dead)) == len(kafka.dead)
        return counts

    counts = asyncio.run(go())
    assert all(rejected == written >= 1 for rejected, written, _ in counts[:3]), counts
    assert counts[3] == (0, 0, counts[0][0])


def test_the_archive_never_replaces_an_earlier_export_of_the_same_name(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A second (and third) file of a name already in done/ is kept beside it under a numbered name; with hard
    links unsupported (some network shares) the same holds."""
    from adapters.watch import archive

    done = tmp_path / "done"
    for content in ("first", "second", "third"):
        (tmp_path / "export.jsonl").write_text(content)
        archive(tmp_path / "export.jsonl", done)
    assert {p.name: p.read_text() for p in done.iterdir()} == {
        "export.jsonl": "first", "export.1.jsonl": "second", "export.2.jsonl": "third"}
    assert not (tmp_path / "export.jsonl").exists()

    def no_links(src: object, dst: object, **_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("adapters.watch.os.link", no_links)
    (tmp_path / "export.jsonl").write_text("fourth")
    assert archive(tmp_path / "export.jsonl", done).name == "export.3.jsonl"
    assert (done / "export.jsonl").read_text() == "first" and (done / "export.3.jsonl").read_text() == "fourth"


def test_an_export_dropped_again_with_the_same_name_size_and_time_is_read_within_one_run(tmp_path: Path) -> None:
    """A second export of one name, with the size and modification time of the first (copied keeping its time, or
    unzipped), dropped while the same watcher runs: read and archived like any other, never passed over in
    silence as the file already handled."""
    fake = _FakeRun()
    first = tmp_path / "a.jsonl"
    first.write_text("{}\n")
    os.utime(first, (1_700_000_000, 1_700_000_000))

    async def drop_again() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch(fake, tmp_path, interval=0.05, stop=stop, out=io.StringIO()))  # type: ignore[arg-type]
        async with asyncio.timeout(5):
            while not (tmp_path / "done" / "a.jsonl").exists():
                await asyncio.sleep(0.02)
            again = tmp_path / "a.jsonl"
            again.write_text("[]\n")  # the same size
            os.utime(again, (1_700_000_000, 1_700_000_000))
            while not (tmp_path / "done" / "a.1.jsonl").exists():
                await asyncio.sleep(0.02)
        stop.set()
        await task

    asyncio.run(drop_again())
    assert fake.seen == ["a.jsonl", "a.jsonl"]


def test_a_file_not_taken_that_comes_again_is_reported_again(tmp_path: Path) -> None:
    """A file the watcher will not take is reported once while it lies there; removed and put there again, it is
    reported again (the watcher forgets what left the folder: its memory does not grow with every file seen)."""
    fake = _FakeRun()

    async def twice() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch(fake, tmp_path, interval=0.05, stop=stop, out=io.StringIO()))  # type: ignore[arg-type]
        stray = tmp_path / "notes.txt"
        async with asyncio.timeout(5):
            for _ in range(2):
                stray.write_text("x")
                said = fake.err.getvalue().count("notes.txt is not taken")
                while fake.err.getvalue().count("notes.txt is not taken") == said:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.15)  # polls with it still there: said once
                stray.unlink()
                await asyncio.sleep(0.15)  # a poll without it
        stop.set()
        await task

    asyncio.run(twice())
    assert fake.err.getvalue().count("notes.txt is not taken") == 2


def test_a_long_watch_reads_what_its_agency_published_anew_now_and_then(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A watcher running for months reads its ledger anew (``REFRESH_S``, a day) so its memory holds what the topics
    keep, not all it ever published; Kafka away then is said, and tried again later, the watch going on."""
    monkeypatch.setattr("adapters.watch.REFRESH_S", 0.1)
    monkeypatch.setattr("adapters.watch.REFRESH_RETRY_S", 0.1)
    fake = _FakeRun()
    refreshed: list[float] = []

    async def refresh() -> None:
        refreshed.append(time.monotonic())
        if len(refreshed) == 1:
            raise KafkaUnavailableError("Kafka at k:9093 did not answer")

    fake.refresh = refresh  # type: ignore[attr-defined]
    asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.6, out=io.StringIO()))  # type: ignore[arg-type]
    assert len(refreshed) >= 2
    assert "could not read what SNM published anew (Kafka at k:9093 did not answer)" in fake.err.getvalue()


def test_refreshing_a_run_replaces_its_ledger_and_dead_letter_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AdapterRun.refresh`` holds what the topics hold now: what they no longer keep is forgotten."""
    run = AdapterRun.__new__(AdapterRun)
    run.cfg, run.conn, run.adapter = PuenteSettings(), None, get("snm")  # type: ignore[assignment]
    run.ctx, run.names, run.dead_topic = SimpleNamespace(vocab=SimpleNamespace(home_country=None)), TopicNames("t"), "d"  # type: ignore[assignment]
    run.ledger, run.dead = Ledger(), {b"adapter:snm:old"}
    run.ledger.add("SNM:OLD", 1, b"x")
    fresh = Ledger()
    fresh.add("SNM:NEW", 1, b"y")

    async def read_ledger(*args: Any) -> Ledger:
        return fresh

    async def scan(conn: Any, topic: str, each: Any) -> None:
        each(Record(topic, 0, 0, b"adapter:snm:new", b"", (), 0))
        each(Record(topic, 0, 1, b"adapter:pn:other", b"", (), 0))

    monkeypatch.setattr("adapters.run.read_ledger", read_ledger)
    monkeypatch.setattr("adapters.run.scan", scan)
    monkeypatch.setattr("adapters.run.Keystore", lambda path: None)
    monkeypatch.setattr("adapters.run.own_mac_lookup", lambda keystore, agency: None)
    asyncio.run(run.refresh())
    assert run.ledger is fresh and run.ledger.latest("SNM:OLD") is None and run.dead == {b"adapter:snm:new"}


def test_the_watcher_keeps_both_exports_of_one_name(tmp_path: Path) -> None:
    """An export arriving under the name of one already processed is adapted and archived beside it, and said so."""
    fake = _FakeRun()
    (tmp_path / "a.jsonl").write_text("{}\n")
    asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.3, out=io.StringIO()))  # type: ignore[arg-type]
    (tmp_path / "a.jsonl").write_text("{}\n{}\n")
    asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.3, out=io.StringIO()))  # type: ignore[arg-type]
    assert fake.seen == ["a.jsonl", "a.jsonl"]
    assert {p.name: p.read_text() for p in (tmp_path / "done").iterdir()} == {"a.jsonl": "{}\n",
                                                                              "a.1.jsonl": "{}\n{}\n"}
    assert "kept as done/a.1.jsonl" in fake.err.getvalue()


def _offline_run(ctx_for: Callable[[str], Context], name: str, kafka: FakeKafka) -> Any:
    """A real AdapterRun whose Kafka producers are ``kafka``: the watcher drives it as it drives the real one."""
    from types import SimpleNamespace

    from adapters.run import AdapterRun

    adapter = get(name)
    offline: Any = SimpleNamespace(topic_prefix="t", agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
    adapter_run = AdapterRun(offline, None, adapter, ctx_for(adapter.agency), err=io.StringIO())
    adapter_run._publisher, adapter_run._dlq = kafka, kafka
    return adapter_run


def test_a_file_that_ends_within_a_record_is_read_again_not_archived(tmp_path: Path,
                                                                     ctx_for: Callable[[str], Context]) -> None:
    """An export written in place that pauses within a record (longer than two polls) is not archived with its
    later records unread: it is left, said so, and read whole once it changes; what was published is not again."""
    lines = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "snm", kafka)
    export = tmp_path / "hits.jsonl"
    export.write_bytes(b"".join(lines[:3]) + lines[3][:50])
    out = io.StringIO()

    async def go() -> Tally:
        stop = asyncio.Event()
        task = asyncio.create_task(watch(adapter_run, tmp_path, interval=0.05, stop=stop, out=out))
        await asyncio.sleep(0.5)
        assert export.exists() and kafka.published == 3
        with export.open("ab") as f:
            f.write(lines[3][50:] + b"".join(lines[4:]))
        await asyncio.sleep(0.5)
        stop.set()
        return await task

    total = asyncio.run(go())
    assert kafka.published == 6 and not export.exists()
    # The record the first read met cut is held, not dead-lettered: it is published once the file is whole, and
    # the counts add up (read: each read's records, less those an earlier read held and this one read again);
    # nothing is held at the stop (its first read's line said held 1).
    assert kafka.dead == [] and (total.read, total.published, total.duplicates, total.rejected, total.held) == (
        9, 6, 3, 0, 0)
    assert "hits.jsonl: read 4, published 3, duplicates 0, rejected 0, held 1 (the file ends within a record)" in (
        out.getvalue())
    assert (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(lines)
    assert adapter_run.err.getvalue().count("hits.jsonl ends within a record (cut short, or still being written); "
                                            "left in place, to be read again when it changes") == 1


def test_a_file_grown_after_it_was_read_is_not_archived(tmp_path: Path) -> None:
    """The archive moves only the file as it was read: one grown since (same file, same name) stays to be read."""
    from adapters.watch import archive

    (tmp_path / "a.jsonl").write_text("{}\n")
    stream, identity = open_dropped(tmp_path / "a.jsonl")
    stream.close()
    with (tmp_path / "a.jsonl").open("a") as f:
        f.write("{}\n")
    assert archive(tmp_path / "a.jsonl", tmp_path / "done", identity) is None
    assert (tmp_path / "a.jsonl").read_text() == "{}\n{}\n" and list((tmp_path / "done").iterdir()) == []


def test_one_folder_has_one_watcher(tmp_path: Path, ctx_for: Callable[[str], Context]) -> None:
    """SNM's and COMBIFRON's watchers both take *.jsonl: the second on a folder stops at the start, naming the
    folder and the holder, so that Colombia's messages are not read as SNM's bad records; once the first stops,
    the folder can be watched again, and the lock file is never read as an export."""
    from puente.errors import ConfigError

    snm, combifron = FakeKafka(), FakeKafka()

    async def go() -> None:
        stop = asyncio.Event()
        first = asyncio.create_task(watch(_offline_run(ctx_for, "snm", snm), tmp_path, interval=0.05, stop=stop,
                                          out=io.StringIO()))
        await asyncio.sleep(0.01)
        with pytest.raises(ConfigError, match=f"^{tmp_path} is watched already by the snm adapter "
                                              r"\(process [0-9]+\): give each adapter a drop folder of its own$"):
            await watch(_offline_run(ctx_for, "combifron", combifron), tmp_path, interval=0.05, idle_exit=0.3)
        stop.set()
        await first

    asyncio.run(go())
    (tmp_path / "colombia.jsonl").write_bytes((SAMPLES / "combifron" / "mensajes-colombia-2026-11.jsonl").read_bytes())
    asyncio.run(watch(_offline_run(ctx_for, "combifron", combifron), tmp_path, interval=0.05, idle_exit=0.3,
                      out=io.StringIO()))
    assert combifron.published > 0 and combifron.dead == [] and (tmp_path / ".puente-watch.lock").exists()


def test_the_watch_lock_is_never_a_link(tmp_path: Path) -> None:
    """A lock name that is a link (to the adapter's keys, say) is neither followed nor written: the watch stops."""
    from puente.errors import ConfigError

    secret = tmp_path / "secret"
    secret.write_text("key")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / ".puente-watch.lock").symlink_to(secret)
    with pytest.raises(ConfigError, match="cannot open the watch lock"):
        asyncio.run(watch(_FakeRun(), drop, interval=0.05, idle_exit=0.1))  # type: ignore[arg-type]
    os.link(secret, drop / "hard")
    (drop / ".puente-watch.lock").unlink()
    (drop / "hard").rename(drop / ".puente-watch.lock")
    with pytest.raises(ConfigError, match="is not a plain file of the folder's own"):
        asyncio.run(watch(_FakeRun(), drop, interval=0.05, idle_exit=0.1))  # type: ignore[arg-type]
    assert secret.read_text() == "key"


def test_a_file_name_that_is_not_utf8_is_read_and_dead_lettered(tmp_path: Path,
                                                                ctx_for: Callable[[str], Context]) -> None:
    """A name in Latin-1 ('ñ' as one byte) does not stop the watcher on every restart: the file's bad record is
    dead-lettered under a key of the name's bytes, with headers every reader can decode, and the next file goes
    on."""
    lines = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / os.fsdecode(b"alertas-\xf1-nov.jsonl")).write_bytes(lines[0] + b'{"broken" 1}\n')
    (tmp_path / "later.jsonl").write_bytes(lines[1])
    kafka = FakeKafka()
    asyncio.run(watch(_offline_run(ctx_for, "snm", kafka), tmp_path, interval=0.05, idle_exit=0.4,
                      out=io.StringIO()))
    assert kafka.published == 2 and len(kafka.dead) == 1
    headers = {k: v.decode("utf-8") for k, v in kafka.headers[0].items()}
    assert headers["puente-dlq-source"] == "adapter:snm:alertas-\\udcf1-nov.jsonl:2"
    assert sorted(os.listdir(tmp_path / "done")) == ["alertas-\udcf1-nov.jsonl", "later.jsonl"]


def test_a_fault_in_one_file_is_reported_and_the_others_go_on(tmp_path: Path) -> None:
    """Whatever fails while one file is read, the watcher says which file in which folder, by the fault's kind (a
    message of its own might quote the content), leaves it in place and goes on with the next."""
    class _Faulty(_FakeRun):
        async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
            if Path(source).name == "a.jsonl":
                raise ValueError("the content 'SECRET' is bad")
            return await super().run(stream, source)

    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "b.jsonl").write_text("{}\n")
    fake = _Faulty()
    asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.4, out=io.StringIO()))  # type: ignore[arg-type]
    assert fake.seen == ["b.jsonl"] and (tmp_path / "a.jsonl").exists()
    said = fake.err.getvalue()
    assert said.startswith(f"snm: reading a.jsonl in {tmp_path} failed (ValueError); left in place, trying again in "
                           "0.1s, and the other files go on\n")
    assert "SECRET" not in said and "a.jsonl in" in said.splitlines()[-1]  # retried, then left unfinished


def test_a_file_name_cannot_write_the_terminals_lines(tmp_path: Path, ctx_for: Callable[[str], Context]) -> None:
    """A dropped file's name reaches the terminal escaped, line breaks included: it can neither send escape
    sequences nor forge a summary line of its own, in the watcher's lines or in the run's rejection lines."""
    name = "hits\x1b[2J\x07\nsnm ok.jsonl: read 1, published 1, duplicates 0, rejected 0\r.jsonl"
    (tmp_path / name).write_bytes(b'{"id_control": 1 2}\n')
    out = io.StringIO()
    adapter_run = _offline_run(ctx_for, "snm", FakeKafka())
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.4, out=out))
    shown = "hits\\x1b[2J\\x07\\nsnm ok.jsonl: read 1, published 1, duplicates 0, rejected 0\\r.jsonl"
    assert out.getvalue() == f"snm {shown}: read 1, published 0, duplicates 0, rejected 1 (syntax 1)\n"
    assert adapter_run.err.getvalue().startswith(f"  {tmp_path}/{shown}:1: syntax: ")
    assert adapter_run.err.getvalue().count("\n") == 1 and "\x1b" not in adapter_run.err.getvalue()


def test_names_match_whatever_their_case_and_what_is_not_taken_is_said_once(tmp_path: Path) -> None:
    """A legacy export named in capitals ('HITS.JSONL') is taken; a file of another kind and a link are each
    reported once, however many polls pass, and hidden, temporary and folder names are left unsaid."""
    (tmp_path / "HITS.JSONL").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "linked.jsonl").symlink_to(tmp_path / "notes.txt")
    (tmp_path / "c.jsonl.PART").write_text("{}\n")
    (tmp_path / ".hidden.jsonl").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    fake = _FakeRun()
    asyncio.run(watch(fake, tmp_path, interval=0.05, idle_exit=0.4, out=io.StringIO()))  # type: ignore[arg-type]
    assert fake.seen == ["HITS.JSONL"] and (tmp_path / "done" / "HITS.JSONL").exists()
    assert sorted(fake.err.getvalue().splitlines()) == [
        "snm: linked.jsonl is not taken: a symbolic link (never followed in a drop folder): copy the file in instead",
        "snm: notes.txt is not taken: its name does not match *.jsonl, *.ndjson"]


def test_an_export_revision_does_not_undo_a_reclassification(tmp_path: Path,
                                                             ctx_for: Callable[[str], Context]) -> None:
    """An officer restricts a hit (v2, SECRETO, released to no one); the screening system's next revision (v3)
    arrives with the markings it always had, and is dead-lettered rather than publish them again; a revision
    with the officer's markings is published, and so is a later reclassification."""
    import json

    from adapters.ledger import published_entry
    from adapters.lifecycle import Change, check_change, next_version
    from schemas import alert_codec

    codec, ctx = alert_codec(), ctx_for("SNM")
    base = json.loads((SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines()[0])
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "snm", kafka)

    def export(name: str, **fields: Any) -> Path:
        (tmp_path / name).write_text(json.dumps({**base, **fields}, ensure_ascii=False) + "\n", "utf-8")
        return tmp_path / name

    async def go(path: Path) -> Tally:
        with path.open("rb") as stream:
            return await adapter_run.run(stream, str(path))

    assert asyncio.run(go(export("v1.jsonl"))).published == 1
    v1 = codec.decode(codec.encode(next(iter(run_alerts(ctx_for, export("v1.jsonl"))))))
    change = check_change(Change("RECLASSIFY", markings={"classification": "SECRETO", "releasable_to": []}), ctx,
                          ctx.vocab.partners)
    v2 = next_version(v1, change)
    adapter_run.ledger.add(*published_entry(codec, v2["alert_id"].encode(), codec.encode(v2)))  # read from the topic

    # v1 had SNM's default markings; a later revision states them (a later version takes no defaults).
    always = {"clasificacion": "RESTRINGIDO", "difusion": ["COL", "USA", "CRI", "FEAN"], "advertencias": ["PII"],
              "manejo": "H0", "calificacion": "A2"}
    undone = asyncio.run(go(export("v3.jsonl", revision=3, riesgo="medio", marcado=always)))
    assert (undone.published, undone.reasons) == (0, {"conflict": 1})
    assert "version 2 of this record's alert id reclassified it" in adapter_run.err.getvalue()
    kept = asyncio.run(go(export("v4.jsonl", revision=4, riesgo="medio",
                                 marcado={**always, "clasificacion": "SECRETO", "difusion": []})))
    assert (kept.published, kept.rejected) == (1, 0)


def run_alerts(ctx_for: Callable[[str], Context], path: Path) -> list[dict[str, Any]]:
    """The alerts an export maps to, without Kafka."""
    from adapters.core import convert

    adapter = get("snm")
    with path.open("rb") as stream:
        return [r.alert for r in convert(adapter, stream, ctx_for(adapter.agency)) if r.alert is not None]


@pytest.mark.parametrize("within", [b'"puntaje":0.', b'"puntaje":0', b"S\xc3"])
def test_a_file_paused_within_a_number_or_a_character_is_read_again(tmp_path: Path, within: bytes,
                                                                     ctx_for: Callable[[str], Context]) -> None:
    """An export paused within a number or a character of two bytes (its last record reads as bad syntax or a bad
    byte, not as truncated) is still left in place and read whole once it changes: its later records are not lost."""
    lines = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]
    at = lines[3].index(within) + len(within)
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "snm", kafka)
    export = tmp_path / "hits.jsonl"
    export.write_bytes(b"".join(lines[:3]) + lines[3][:at])

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch(adapter_run, tmp_path, interval=0.05, stop=stop, out=io.StringIO()))
        await asyncio.sleep(0.5)
        assert export.exists() and kafka.published == 3
        with export.open("ab") as f:
            f.write(lines[3][at:] + b"".join(lines[4:]))
        await asyncio.sleep(0.5)
        stop.set()
        await task

    asyncio.run(go())
    assert kafka.published == 6 and (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(lines)
    assert "hits.jsonl ends within a record" in adapter_run.err.getvalue()


def test_a_file_that_holds_no_record_is_left_with_its_own_words(tmp_path: Path,
                                                                  ctx_for: Callable[[str], Context]) -> None:
    """An export with no record (0 bytes; a header alone, ended with CRLF: a day with nothing to report) is left in
    place and said so once, as holding no record that the operator may remove, not as a record to end with a line
    break; the other files are adapted and archived."""
    data = (SAMPLES / "senafront" / "patrullas-2026-11.csv").read_bytes()
    header = data.split(b"\n", 1)[0].rstrip(b"\r") + b"\r\n"
    (tmp_path / "sin-novedades.csv").write_bytes(header)
    (tmp_path / "vacio.csv").write_bytes(b"")
    (tmp_path / "patrullas.csv").write_bytes(data)
    adapter_run = _offline_run(ctx_for, "senafront", FakeKafka())
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.6, out=io.StringIO()))
    assert (tmp_path / "done" / "patrullas.csv").exists()
    assert (tmp_path / "sin-novedades.csv").exists() and (tmp_path / "vacio.csv").exists()
    err = adapter_run.err.getvalue()
    for name in ("sin-novedades.csv", "vacio.csv"):
        assert err.count(f"{name} holds no record (empty, or still being written); left in place, to be read again "
                         "when it changes; if the export really is empty, remove it") == 1, err
    assert "ends within a record" not in err and "line break and drop it again" not in err


def test_a_complete_pn_file_whose_trailer_miscounts_is_archived(tmp_path: Path,
                                                                ctx_for: Callable[[str], Context]) -> None:
    """A PN export with its trailer, but a trailer counting other than the cases read, is complete: its dead
    letter says trailer-mismatch, and the watcher moves it to done/ rather than wait for it for ever."""
    data = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes()
    assert b"T00000040" in data
    (tmp_path / "INCAU1125.TXT").write_bytes(data.replace(b"T00000040", b"T00000041"))
    adapter_run = _offline_run(ctx_for, "pn", FakeKafka())
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, out=io.StringIO()))
    assert (tmp_path / "done" / "INCAU1125.TXT").exists() and not (tmp_path / "INCAU1125.TXT").exists()
    assert "trailer-mismatch: the trailer counts 41 cases; the file holds 40" in adapter_run.err.getvalue()
    assert "ends within a record" not in adapter_run.err.getvalue()


def test_a_file_with_cr_only_line_ends_is_archived_with_its_reason(tmp_path: Path,
                                                                   ctx_for: Callable[[str], Context]) -> None:
    """A CSV exported with CR-only line ends is refused once, saying to export it with LF or CRLF, and moved to
    done/: it is no file cut short, and was left in place for ever with advice to add a final line break."""
    data = (SAMPLES / "senafront" / "patrullas-2026-11.csv").read_bytes().replace(b"\r\n", b"\r")
    (tmp_path / "patrullas.csv").write_bytes(data)
    adapter_run = _offline_run(ctx_for, "senafront", FakeKafka())
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, out=io.StringIO()))
    assert (tmp_path / "done" / "patrullas.csv").exists() and not (tmp_path / "patrullas.csv").exists()
    err = adapter_run.err.getvalue()
    assert "syntax: line ends are CR only" in err and "export the file with LF or CRLF line ends" in err
    assert "line break and drop it again" not in err and "ends within a record" not in err


def test_a_csv_saved_without_a_final_line_break_says_how_to_have_it_read(tmp_path: Path,
                                                                         ctx_for: Callable[[str], Context]) -> None:
    """A complete CSV saved without a final line break is still refused at its last row (a cell lost at a cut reads
    as empty) and left in place, that row held (not dead-lettered: the next read publishes it); the watcher's line
    says to end it with a line break and drop it again, and so done it is read whole and archived."""
    src = next((SAMPLES / "senafront").glob("*.csv")).read_bytes()
    (tmp_path / "informe.csv").write_bytes(src.rstrip(b"\r\n"))
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "senafront", kafka)
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, out=io.StringIO()))
    said = adapter_run.err.getvalue()
    assert (tmp_path / "informe.csv").exists() and kafka.dead == []
    assert said.count("if the export is complete, end its last line with a line break and drop it again") == 1
    published = kafka.published
    (tmp_path / "informe.csv").unlink()
    (tmp_path / "informe.csv").write_bytes(src.rstrip(b"\r\n") + b"\r\n")
    asyncio.run(watch(adapter_run, tmp_path, interval=0.05, idle_exit=0.5, out=io.StringIO()))
    assert (tmp_path / "done" / "informe.csv").exists() and kafka.dead == [] and kafka.published == published + 1


def test_a_lock_file_another_account_left_still_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock file this account may only read (another account's watcher left it, 0644) does not stop the watch:
    it is opened to read, locked all the same (a second watcher is still refused) and left unwritten."""
    from puente.errors import ConfigError

    lock = tmp_path / ".puente-watch.lock"
    lock.write_text("the snm adapter (process 4242)\n")
    real_open = os.open

    def as_another_account(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == lock and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("adapters.watch.os.open", as_another_account)
    (tmp_path / "a.jsonl").write_text("{}\n")
    fake = _FakeRun()

    async def go() -> None:
        stop = asyncio.Event()
        first = asyncio.create_task(watch(fake, tmp_path, interval=0.05, stop=stop,  # type: ignore[arg-type]
                                          out=io.StringIO()))
        await asyncio.sleep(0.3)
        with pytest.raises(ConfigError, match="is watched already by the snm adapter"):
            await watch(_FakeRun(), tmp_path, interval=0.05, idle_exit=0.1)  # type: ignore[arg-type]
        stop.set()
        await first

    asyncio.run(go())
    assert fake.seen == ["a.jsonl"] and lock.read_text() == "the snm adapter (process 4242)\n"


def test_a_folder_without_file_locks_is_said_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the file system gives no locks (ENOLCK), the watch stops saying so in one line, naming the folder."""
    import errno

    from puente.errors import ConfigError

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("adapters.watch.fcntl.flock", no_locks)
    with pytest.raises(ConfigError, match=f"^the file system of {tmp_path} gives no file locks, so one watcher per "
                                          "folder cannot be made sure of: use a drop folder") as caught:
        asyncio.run(watch(_FakeRun(), tmp_path, interval=0.05, idle_exit=0.1))  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_a_file_written_to_between_link_and_check_is_not_archived(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An export appended to just after the archive linked it into done/ is unlinked from done/ and left, with one
    name, to be read again (not taken later for a move a stop cut short, its new records unread); one replaced
    then leaves the file read in done/ and the new one in place."""
    from adapters import watch as w

    export = tmp_path / "hits.jsonl"
    real_stat = os.stat

    def archived_while(change: Callable[[], None]) -> Path | None:
        stream, identity = open_dropped(export)
        stream.close()

        def stat_then_change(*args: Any, **kwargs: Any) -> os.stat_result:
            st = real_stat(*args, **kwargs)
            if kwargs.get("dir_fd") is not None:  # the archive's look at done/<name>, just after the link
                change()
            return st

        monkeypatch.setattr(w.os, "stat", stat_then_change)
        try:
            return w.archive(export, tmp_path / "done", identity)
        finally:
            monkeypatch.setattr(w.os, "stat", real_stat)

    export.write_text("{}\n{}\n")

    def append() -> None:
        with export.open("a") as f:
            f.write("{}\n")

    assert archived_while(append) is None
    assert export.stat().st_nlink == 1 and list((tmp_path / "done").iterdir()) == []
    assert not w.finish_move(export, tmp_path / "done") and export.read_text() == "{}\n{}\n{}\n"

    def replace() -> None:
        (tmp_path / "new.tmp").write_text("{}\n{}\n{}\n{}\n")
        (tmp_path / "new.tmp").replace(export)

    assert archived_while(replace) is None
    assert (tmp_path / "done" / "hits.jsonl").read_text() == "{}\n{}\n{}\n"
    assert export.read_text() == "{}\n{}\n{}\n{}\n" and export.stat().st_nlink == 1


def test_a_path_in_an_error_is_shown_on_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dropped name holding a line break (the shell passes it on as it is) cannot write a line that seems
    Puente's own: unreadable, missing, or failing mid-read (whose OSError text quotes the path), the error is one
    line with the break escaped."""
    import errno

    from adapters.run import adapt_paths, check_sources, open_source
    from puente.errors import ConfigError

    forged = "x.csv\npuente: senafront ok.csv: read 9, published 9, duplicates 0, rejected 0"
    (tmp_path / forged).mkdir()
    (tmp_path / "good.csv").write_bytes(b"x")
    failing: list[str] = []

    class _FailingRead(_FailingSecondRun):
        async def run(self, stream: Any, source: str, *, hold_cut: bool = False, whole_upto: Any = None) -> Tally:
            raise OSError(errno.EIO, "Input/output error", source)

    def fails(call: Callable[[], Any]) -> str:
        with pytest.raises(ConfigError) as caught:
            call()
        failing.append(str(caught.value))
        return str(caught.value)

    assert "x.csv\\npuente: senafront" in fails(lambda: check_sources([str(tmp_path / forged)]))
    fails(lambda: open_source(str(tmp_path / (forged + ".missing"))))
    monkeypatch.setattr("adapters.run.AdapterRun", _FailingRead)
    monkeypatch.setattr("adapters.run.open_source", lambda path: (io.BytesIO(b"x"), str(tmp_path / forged)))
    fails(lambda: asyncio.run(adapt_paths(None, None, get("senafront"), None,  # type: ignore[arg-type]
                                          [str(tmp_path / "good.csv")])))
    class _FailingStream(io.BytesIO):  # the file fails mid-read, as check's reads meet it
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

        def readline(self, size: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("puente.commands.adapt.open_source", lambda path: (_FailingStream(), str(tmp_path / forged)))
    args = _parser().parse_args(["adapt", "senafront", "--check", str(tmp_path / "good.csv")])
    fails(lambda: args.func(args))
    assert len(failing) == 4 and all("\n" not in message and "x.csv\\npuente" in message for message in failing)


def test_a_folder_gone_for_a_while_does_not_stop_the_watcher(tmp_path: Path) -> None:
    """A drop folder that cannot be listed for a few polls (a share remounting) is said once, polled on, said back
    when it is, and a file dropped then is taken."""
    drop = tmp_path / "drop"
    drop.mkdir()
    fake = _FakeRun()

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch(fake, drop, interval=0.05, stop=stop,  # type: ignore[arg-type]
                                         out=io.StringIO()))
        await asyncio.sleep(0.2)
        drop.rename(tmp_path / "away")
        await asyncio.sleep(0.3)
        (tmp_path / "away").rename(drop)
        (drop / "a.jsonl").write_text("{}\n")
        await asyncio.sleep(0.4)
        stop.set()
        await task

    asyncio.run(go())
    said = fake.err.getvalue()
    assert fake.seen == ["a.jsonl"] and (drop / "done" / "a.jsonl").exists()
    assert said.count(f"snm: cannot list {drop} (No such file or directory); still watching, and going on when it "
                      "is back") == 1
    assert said.count(f"snm: {drop} can be listed again; watching it") == 1


def test_a_dead_letters_file_headers_carry_no_control_character(tmp_path: Path,
                                                               ctx_for: Callable[[str], Context]) -> None:
    """A file's name is the agency's (or anyone's who can drop a file): its escape sequences, bells, line breaks
    and separators reach a dead letter's ``puente-dlq-file`` and ``puente-dlq-source`` headers escaped, as they
    reach the terminal, so a reader printing a header (kcat) is not steered by them; bytes that are not UTF-8 stay
    escapes, so every header decodes."""
    from types import SimpleNamespace

    from adapters.run import AdapterRun
    from puente import wire

    lines = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes().splitlines(keepends=True)
    name = "inc\x1b[2J\x07\nS 0001\u2028\udcf1.txt"
    path = tmp_path / name
    path.write_bytes(b"".join(lines[:10]))  # cut short: one dead letter

    async def go() -> dict[str, bytes]:
        kafka = FakeKafka()
        offline: Any = SimpleNamespace(topic_prefix="t", agency_countries=AGENCY_COUNTRIES, agency_units=AGENCY_UNITS)
        adapter_run = AdapterRun(offline, None, get("pn"), ctx_for("PN"), err=io.StringIO())  # type: ignore[arg-type]
        adapter_run._publisher, adapter_run._dlq = kafka, kafka
        with path.open("rb") as file:
            await adapter_run.run(file, str(path))
        return kafka.headers[0]

    headers = asyncio.run(go())
    for header in (wire.DLQ_FILE, wire.DLQ_SOURCE):
        shown = headers[header].decode("utf-8")
        assert shown.isprintable() and "\\x1b[2J\\x07\\nS 0001" in shown and "\\udcf1" in shown, shown


class _KafkaGone(FakeKafka):
    """Kafka gone while ``down``: aiokafka's own errors, as its producer raises them. The first sends are queued and
    their futures fail later (a batch expired, never delivered); then ``send`` itself raises (the batch is full and
    nothing drains it)."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.queued, self.acked = True, 0, 0

    async def send_framed(self, key: bytes, value: bytes, headers: Any) -> asyncio.Future[Any]:
        from aiokafka.errors import KafkaTimeoutError

        if not self.down:
            self.acked += 1
            return await super().send_framed(key, value, headers)
        self.queued += 1
        if self.queued > 3:
            raise KafkaTimeoutError()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(KafkaTimeoutError())
        return future


def test_kafka_gone_mid_file_stops_the_run_and_loses_no_record(tmp_path: Path,
                                                                ctx_for: Callable[[str], Context]) -> None:
    """aiokafka's own error from a send is raised as Puente's (exit 4 from the command, a stop for a watcher, which
    took it for a fault of the file and went on). The records queued before it, which the ledger took and Kafka
    never acknowledged, are not skipped as duplicates by a later run: the ledger is read anew from the topic first."""
    lines = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:8]
    export = tmp_path / "hits.jsonl"
    export.write_bytes(b"".join(lines))
    kafka = _KafkaGone()
    adapter_run = _offline_run(ctx_for, "snm", kafka)
    adapter_run.conn = SimpleNamespace(bootstrap="kafka:9093", principal="agency-SNM", timeout_s=15.0,
                                       servers_from="bootstrap.servers in client.properties",
                                       source="client.properties", ca_file=None)
    refreshed: list[int] = []

    async def refresh() -> None:  # what the topic holds: only what Kafka acknowledged (nothing here)
        refreshed.append(kafka.acked)
        adapter_run.ledger = Ledger()

    adapter_run.refresh = refresh

    async def go() -> Tally:
        with (open(export, "rb") as stream,
              pytest.raises(KafkaUnavailableError, match="publishing stopped: Kafka at kafka:9093 could not be")):
            await adapter_run.run(stream, str(export))
        kafka.down = False
        with open(export, "rb") as stream:
            return await adapter_run.run(stream, str(export))

    tally = asyncio.run(go())
    assert refreshed == [0] and (tally.published, tally.duplicates) == (8, 0) and kafka.acked == 8
    # The watcher stops at it, the file left in place, rather than marking it tried and going on.
    kafka.down, kafka.queued = True, 0
    adapter_run = _offline_run(ctx_for, "snm", kafka)
    adapter_run.conn = SimpleNamespace(bootstrap="kafka:9093", principal="agency-SNM", timeout_s=15.0,
                                       servers_from="bootstrap.servers", source="client.properties", ca_file=None)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "hits.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(KafkaUnavailableError):
        asyncio.run(watch(adapter_run, drop, interval=0.01, idle_exit=2.0, out=io.StringIO()))
    assert (drop / "hits.jsonl").exists() and not (drop / "done" / "hits.jsonl").exists()


def test_an_export_written_on_after_it_was_archived_is_read_again(tmp_path: Path,
                                                                  ctx_for: Callable[[str], Context]) -> None:
    """An exporter that writes in place, pauses at a record's end longer than two polls and writes on through its
    open file writes into the file done/ now names (archiving links it there): the watcher moves that file back into
    the folder when it grows, where it is read as any other (once still, a cut record held, across a restart too),
    publishing only the new records, and says to write under a temporary name. Before, those records were never
    read, nor dead-lettered, nor said."""
    lines = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "snm", kafka)
    out = io.StringIO()

    async def go() -> Tally:
        stop = asyncio.Event()
        with (tmp_path / "hits.jsonl").open("ab") as exporter:
            exporter.write(b"".join(lines[:3]))
            exporter.flush()
            task = asyncio.create_task(watch(adapter_run, tmp_path, interval=0.05, stop=stop, out=out))
            await asyncio.sleep(0.5)
            assert kafka.published == 3 and (tmp_path / "done" / "hits.jsonl").exists()
            exporter.write(b"".join(lines[3:]))
        await asyncio.sleep(0.5)
        stop.set()
        return await task

    total = asyncio.run(go())
    assert kafka.published == 6 and kafka.dead == [] and (total.read, total.duplicates) == (9, 3)
    assert "snm hits.jsonl: read 6, published 3, duplicates 3, rejected 0" in out.getvalue()
    assert adapter_run.err.getvalue().count("done/hits.jsonl was written to after it was archived (its exporter kept "
                                            "it open); moved back as hits.jsonl to be read again") == 1
    assert (tmp_path / "done" / "hits.jsonl").read_bytes() == b"".join(lines) and not (tmp_path / "hits.jsonl").exists()


def test_an_archived_export_that_grows_goes_back_beside_a_new_one_of_its_name(tmp_path: Path,
                                                                           ctx_for: Callable[[str], Context]) -> None:
    """A file moved back from done/ never replaces one of its name dropped since (a link): it goes back numbered, and
    a record it is cut within while its exporter is gone is held in the folder, said, never dead-lettered nor
    forgotten."""
    lines = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "snm", kafka)

    async def go() -> None:
        stop = asyncio.Event()
        with (tmp_path / "hits.jsonl").open("ab") as exporter:
            exporter.write(b"".join(lines[:3]))
            exporter.flush()
            task = asyncio.create_task(watch(adapter_run, tmp_path, interval=0.05, stop=stop, out=io.StringIO()))
            await asyncio.sleep(0.5)
            (tmp_path / "hits.jsonl").write_bytes(lines[5])  # the next export, under the same name
            exporter.write(lines[3] + lines[4][:40])  # the exporter dies within a record
        await asyncio.sleep(0.2)
        assert (tmp_path / "hits.1.jsonl").exists() or (tmp_path / "done" / "hits.1.jsonl").exists()
        await asyncio.sleep(0.5)
        stop.set()
        await task

    asyncio.run(go())
    assert (tmp_path / "hits.1.jsonl").read_bytes() == b"".join(lines[:4]) + lines[4][:40]
    assert kafka.published == 5 and kafka.dead == []
    assert "hits.1.jsonl ends within a record" in adapter_run.err.getvalue()


def test_a_pn_file_being_written_holds_its_open_case_and_missing_trailer(ctx_for: Callable[[str], Context]) -> None:
    """PN's reader gives two results for a file that stops before its trailer: the case still open, then the file's
    missing trailer. Both are held (hold_cut, a watcher's), neither dead-lettered; the whole file then publishes the
    case, once."""
    src = (SAMPLES / "pn" / "incautaciones-2026-11.txt").read_bytes()
    kafka = FakeKafka()
    adapter_run = _offline_run(ctx_for, "pn", kafka)
    part = b"".join(src.splitlines(keepends=True)[:6])
    first = asyncio.run(adapter_run.run(io.BytesIO(part), "/in/incautaciones.txt", hold_cut=True))
    assert (first.read, first.published, first.rejected, first.held, first.cut) == (3, 1, 0, 2, True)
    assert kafka.dead == [] and "held 2 (the file ends within a record)" in first.line()
    whole = asyncio.run(adapter_run.run(io.BytesIO(src), "/in/incautaciones.txt", hold_cut=True))
    assert (whole.rejected, whole.held, whole.duplicates, kafka.dead) == (0, 0, 1, [])


@pytest.mark.parametrize("renameat2", [True, False])
def test_a_file_moves_back_in_one_step_never_over_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          renameat2: bool) -> None:
    """A file moved back from done/ never has two names (a stop then would have ``finish_move`` take it for an
    archive cut short and remove it from the folder), nor takes the name of a file there: it goes numbered. Where
    the system has no renameat2 (or the file system refuses it), a look then a rename."""
    from adapters import watch as watch_module

    if not renameat2:
        monkeypatch.setattr(watch_module, "_LIBC", SimpleNamespace())
    (tmp_path / "done").mkdir()
    grown = tmp_path / "done" / "hits.jsonl"
    grown.write_text("{}\n{}\n")
    (tmp_path / "hits.jsonl").write_text("next export\n")
    back = watch_module._move_free(grown, tmp_path)
    assert back == tmp_path / "hits.1.jsonl" and back.stat().st_nlink == 1 and not grown.exists()
    assert (tmp_path / "hits.jsonl").read_text() == "next export\n" and back.read_text() == "{}\n{}\n"
    assert not watch_module.finish_move(back, tmp_path / "done") and back.exists()
