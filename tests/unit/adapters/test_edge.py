"""The edge without Kafka: --check, tallies, dead-letter keys, the CLI parser and the folder watcher."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.config import Context
from adapters.core import Result
from adapters.registry import ADAPTERS, get
from adapters.run import Tally, check, dead_key
from adapters.watch import pending, watch
from puente.commands.adapt import register

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


def test_files_and_watch_are_exclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Giving both, or neither, is a clear configuration error."""
    from puente.errors import ConfigError

    parser = _parser()
    for argv in (["adapt", "snm"], ["adapt", "snm", "x.jsonl", "--watch", "drop"]):
        args = parser.parse_args(argv)
        with pytest.raises(ConfigError, match="not both"):
            args.func(args)


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
    """The same bad record of the same file gets the same key wherever the file lies; another record another."""
    results = run("snm", SAMPLES / "bad" / "snm" / "valores-invalidos.jsonl")
    a = dead_key("snm", "/in/valores.jsonl", results[0])
    assert a == dead_key("snm", "/in/done/valores.jsonl", results[0])
    assert a != dead_key("snm", "/in/valores.jsonl", results[1])
    assert a.startswith(b"adapter:snm:")


class _FakeRun:
    """Stands in for AdapterRun: records which files were adapted."""

    def __init__(self) -> None:
        self.adapter = get("snm")
        self.err = io.StringIO()
        self.seen: list[str] = []

    async def run(self, stream: Any, source: str) -> Tally:
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


def test_unreadable_files_stop_the_run_before_kafka_naming_each(tmp_path: Path) -> None:
    """`puente adapt` with a missing file and a folder among good ones fails at once, naming both, without Kafka."""
    import os
    import subprocess
    import sys
    import time

    good = SAMPLES / "senafront" / "patrullas-2026-11.csv"
    missing, folder = tmp_path / "no-existe.csv", tmp_path / "carpeta.csv"
    folder.mkdir()
    env = {**os.environ, "PUENTE_BOOTSTRAP": "127.0.0.1:1", "PUENTE_KEYS": str(tmp_path / "keys")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "puente.cli", "adapt", "senafront", str(good), str(missing),
                           str(folder)], cwd=SAMPLES.parent, env=env, capture_output=True, timeout=120, check=False)
    err = done.stderr.decode()
    assert done.returncode == 3, err
    assert f"{missing} (No such file or directory)" in err and f"{folder} (is a folder)" in err
    assert "nothing was read or published" in err and "Kafka" not in err and "key" not in err.lower()
    assert done.stdout == b"" and err.count("\n") == 1  # one line, and no summary of a file never read
    assert time.monotonic() - started < 60


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

    async def run(self, stream: Any, source: str) -> Tally:
        from puente.errors import KafkaSetupError

        self.files += 1
        if self.files == 2:
            raise KafkaSetupError("publishing stopped after 0 acknowledged records")
        return Tally(read=40, published=40)


def test_each_files_summary_is_printed_as_it_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """When Kafka fails on the second file, the first file's summary has already been printed."""
    from puente.errors import KafkaSetupError

    monkeypatch.setenv("PUENTE_BOOTSTRAP", "127.0.0.1:1")
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
        async def run(self, stream: Any, source: str) -> Tally:
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
