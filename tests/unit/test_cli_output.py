"""What the command line does when its own output cannot be written: a reader that left, a full disk."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pytest

from puente import cli
from puente.commands import policy
from puente.errors import ConfigError


class _Gone(io.StringIO):
    """Standard output whose reader left (`puente ... | head`): every write and flush is a broken pipe."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_reader_that_left_mid_output_is_141_never_success(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command cut short by its reader leaving exits 141 (128 + SIGPIPE), never 0: `puente audit verify | head`
    must not pass a log nobody saw the end of."""
    def lint(args: argparse.Namespace) -> int:
        print("a finding")
        return 0

    monkeypatch.setattr(policy, "_lint", lint)
    monkeypatch.setattr("sys.stdout", _Gone())
    monkeypatch.setattr("sys.stderr", io.StringIO())  # kept apart from pytest's own capture
    assert cli.main(["policy", "lint"]) == cli.EXIT_SIGPIPE == 141


@pytest.mark.parametrize("found", [0, 1])
def test_a_reader_that_left_after_the_last_line_is_seen_before_exit(monkeypatch: pytest.MonkeyPatch,
                                                                    found: int) -> None:
    """Output still buffered when the command returns is flushed inside the error boundary: the reader's leaving
    is found there (status 141 or the command's own), not at interpreter exit as status 120 and a traceback."""
    class Buffered(_Gone):
        def write(self, text: str) -> int:
            return len(text)

    def lint(args: argparse.Namespace) -> int:
        print("a finding")
        return found

    monkeypatch.setattr(policy, "_lint", lint)
    monkeypatch.setattr("sys.stdout", Buffered())
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert cli.main(["policy", "lint"]) == (found or cli.EXIT_SIGPIPE)


@pytest.fixture
def closed_pipe() -> Iterator[Callable[[], TextIO]]:
    """Makes text streams on a pipe whose reader already left, as Python's own are: buffered, on a descriptor."""
    made: list[TextIO] = []

    def make() -> TextIO:
        read, write = os.pipe()
        os.close(read)
        made.append(open(write, "w", encoding="utf-8"))  # noqa: SIM115 - closed after the test, below
        return made[-1]

    yield make
    for stream in made:
        with contextlib.suppress(OSError):
            stream.close()


def _fails_after_output(args: argparse.Namespace) -> int:
    print("a finding")
    raise ConfigError("the policy folder is gone")


def test_output_left_by_a_failing_command_is_written_before_exit(monkeypatch: pytest.MonkeyPatch,
                                                                 closed_pipe: Callable[[], TextIO]) -> None:
    """A command that printed and then failed keeps its own status, and its buffered output meets the reader's
    leaving inside main: nothing is left to fail at interpreter exit (status 120, "Exception ignored")."""
    out, err = closed_pipe(), io.StringIO()
    monkeypatch.setattr(policy, "_lint", _fails_after_output)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    assert cli.main(["policy", "lint"]) == 3
    assert err.getvalue() == "puente: error: the policy folder is gone\n"
    out.flush()  # what Python does at exit: the leftover now goes nowhere, without an error


def test_a_failure_whose_stderr_is_gone_keeps_its_status(monkeypatch: pytest.MonkeyPatch,
                                                         closed_pipe: Callable[[], TextIO]) -> None:
    """With standard error gone, the error line is dropped, never raised past main: the status still says what
    failed, and nothing is left in stderr's buffer to fail at exit."""
    err = closed_pipe()
    monkeypatch.setattr(policy, "_lint", _fails_after_output)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.setattr("sys.stderr", err)
    assert cli.main(["policy", "lint"]) == 3
    err.flush()


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_or_the_version_to_a_reader_that_left_is_141(option: str, monkeypatch: pytest.MonkeyPatch,
                                                          closed_pipe: Callable[[], TextIO]) -> None:
    """argparse's own exit goes through the same boundary: `puente --help | true` is 141, not 0 nor 120."""
    out = closed_pipe()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with pytest.raises(SystemExit) as done:
        cli.main([option])
    assert done.value.code == cli.EXIT_SIGPIPE
    out.flush()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_help_to_a_full_disk_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output that cannot be written (`puente --version > /dev/full`) is one line and status 3, never 0."""
    err = io.StringIO()
    with open("/dev/full", "w", encoding="utf-8") as full:
        monkeypatch.setattr("sys.stdout", full)
        monkeypatch.setattr("sys.stderr", err)
        with pytest.raises(SystemExit) as done:
            cli.main(["--version"])
        full.flush()
    assert done.value.code == 3
    assert err.getvalue().count("\n") == 1 and "No space left on device" in err.getvalue(), err.getvalue()


def test_a_closed_pipe_ends_the_process_with_141_and_no_traceback() -> None:
    """The real process, its stdout a pipe nobody reads: 141 and a silent stderr, buffered or not."""
    for unbuffered in ("", "1"):
        read, write = os.pipe()
        os.close(read)
        try:
            done = subprocess.run([sys.executable, "-m", "puente.cli", "--help"], stdout=write, stderr=subprocess.PIPE,
                                  env={**os.environ, "PYTHONUNBUFFERED": unbuffered}, timeout=60, check=False)
        finally:
            os.close(write)
        assert (done.returncode, done.stderr) == (cli.EXIT_SIGPIPE, b""), (unbuffered, done.stderr)


def test_adapt_check_whose_report_reader_left_is_141_not_the_files_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """`adapt --check FILE 2>&1 | head -1`: the report of rejections on standard error fails to be written, and that
    is 141 as any reader that left, never exit 3 blaming FILE ("reading FILE failed: Broken pipe")."""
    bad = Path(__file__).resolve().parents[2] / "samples" / "bad" / "snm" / "valores-invalidos.jsonl"
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", _Gone())
    assert cli.main(["adapt", "snm", "--check", str(bad)]) == cli.EXIT_SIGPIPE
    assert "failed" not in out.getvalue()


def test_a_closed_stderr_never_sends_errors_or_notes_into_the_output(tmp_path: Path) -> None:
    """Started with standard error closed (`2>&-`), a command's error line and its notes go nowhere, never into its
    standard output: `keys export-public ID 2>&- > key.pem` holds the PEM alone, or nothing when it fails."""
    def puente(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["sh", "-c", 'exec "$0" "$@" 2>&-', sys.executable, "-m", "puente.cli", *args],
                              capture_output=True, timeout=60, check=False)

    keys = str(tmp_path / "keys")
    assert puente("keys", "generate", "--for", "partner", "COL", "--dir", keys).returncode == 0
    failed = puente("keys", "export-public", "COL-enc-2099z", "--dir", keys)
    assert (failed.returncode, failed.stdout) == (3, b""), failed
    done = puente("keys", "export-public", "COL-enc-2026a", "--dir", keys)
    assert done.returncode == 0 and done.stdout.endswith(b"-----END PUBLIC KEY-----\n"), done


def test_a_closed_stdout_ends_a_command_that_writes_there_in_one_line(tmp_path: Path) -> None:
    """Started with standard output closed (`>&-`), a command that writes there (a public key's PEM, a check's
    result) stops at its first write in one line naming it, exit 3: never an internal error, never exit 0 with its
    output thrown away. A command that writes nothing there runs as it would."""
    def puente(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', sys.executable, "-m", "puente.cli", *args],
                              capture_output=True, timeout=60, check=False,
                              env={**os.environ, "PUENTE_KEYS": str(tmp_path / "keys")})

    keys = str(tmp_path / "keys" / "partners" / "COL")
    for args in (("keys", "export-public", "COL-enc-2026a", "--dir", keys), ("schema", "check")):
        if args[0] == "keys":
            made = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "generate", "--for", "partner", "COL",
                                   "--dir", keys], capture_output=True, timeout=60, check=False)
            assert made.returncode == 0, made
        done = puente(*args)
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode == 3 and lines == [
            "puente: error: standard output is closed; give the command somewhere to write (> FILE)"], done


class _Full(io.StringIO):
    """Standard output on a full disk (`> /dev/full`): every write and flush fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("flush", [False, True])
def test_output_that_fails_while_the_command_runs_is_named_as_standard_output(
        monkeypatch: pytest.MonkeyPatch, flush: bool) -> None:
    """A write to standard output failing mid-command (unbuffered, a long report, a flush) says the output could
    not be written and to check where standard output goes, as the final flush says it: a bare "No space left on
    device" sent the operator looking for a file the command wrote."""
    def lint(args: argparse.Namespace) -> int:
        print("a finding", flush=flush)
        return 0

    err = io.StringIO()
    monkeypatch.setattr(policy, "_lint", lint)
    monkeypatch.setattr("sys.stdout", _Full())
    monkeypatch.setattr("sys.stderr", err)
    assert cli.main(["policy", "lint"]) == 3
    assert err.getvalue() == ("puente: error: cannot write the output: No space left on device; check where "
                              "standard output goes\n"), err.getvalue()


def test_a_file_the_command_writes_failing_is_still_named_as_that_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only standard output's own failure is said as the output's: a file the command opened failing alike is said
    as before, naming that file, while standard output works; and main leaves standard output as it found it."""
    def lint(args: argparse.Namespace) -> int:
        print("a finding")
        raise OSError(errno.ENOSPC, "No space left on device", "/var/lib/puente/store.sqlite")

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(policy, "_lint", lint)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    assert cli.main(["policy", "lint"]) == 3
    assert err.getvalue() == "puente: error: No space left on device (/var/lib/puente/store.sqlite)\n"
    assert sys.stdout is out and out.getvalue() == "a finding\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_an_unbuffered_export_to_a_full_disk_names_standard_output(tmp_path: Path) -> None:
    """The real process: `keys export-public ... > /dev/full` unbuffered fails at the command's own write."""
    keys = str(tmp_path / "keys")
    made = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "generate", "--for", "partner", "COL", "--dir",
                           keys], capture_output=True, timeout=60, check=False)
    assert made.returncode == 0, made
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "export-public", "COL-enc-2026a", "--dir",
                               keys], stdout=full, stderr=subprocess.PIPE, timeout=60, check=False,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 3 and done.stderr.decode().splitlines() == [
        "puente: error: cannot write the output: No space left on device; check where standard output goes"], done
