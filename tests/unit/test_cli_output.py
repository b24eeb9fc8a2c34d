"""What the command line does when its own output cannot be written: a reader that left, a full disk."""

from __future__ import annotations

import argparse
import errno
import io

import pytest

from puente import cli
from puente.commands import policy


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
