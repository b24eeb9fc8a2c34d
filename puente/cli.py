"""The ``puente`` command line: every command registers here, and here is the one error boundary.

Commands are thin: parse, call a service, print. Whatever goes wrong reaches a person as one line,
``puente: error: ...``, naming what to check, and the exit status says what kind of failure it was
(``EXIT_STATUSES``, as ``puente --help`` and the README list them): 0 done, 1 problems found, 2 usage,
3 configuration or input, 4 Kafka unavailable, 5 not everything could be checked (``puente.errors``), 70
internal error, 130 interrupted, 141 the output's reader left. No traceback and no resource warning reaches
an operator; ``PUENTE_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import errno
import importlib
import io
import os
import sys
import traceback
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from puente import __version__, logs
from puente.commands._common import Subparsers
from puente.errors import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_PROBLEMS,
    EXIT_UNAVAILABLE,
    EXIT_UNCHECKED,
    EXIT_USAGE,
    PuenteError,
)
from puente.settings import check_variables
from puente.strict import one_line

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

# Each command's module under puente.commands, by the names it registers, in the order `puente --help`
# lists them. Only the module of the command typed is imported: `puente broker run` starts without
# loading the console, the audit tools or the demo (a restarted worker is back in its slots that much
# sooner), and a command's help is as quick. No name, or one not here, registers them all.
COMMANDS: dict[str, str] = {
    "kafka": "kafka", "schema": "schema", "policy": "policy", "keys": "keys", "topics": "topics",
    "users": "access", "acls": "access", "adapt": "adapt", "broker": "broker", "subscribe": "subscribe",
    "store": "subscribe", "audit": "audit", "recall": "lifecycle", "consent": "lifecycle",
    "reclassify": "lifecycle", "publish": "publish", "demo": "demo",
}  # fmt: skip
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a fault in Puente, not in what it was given
EXIT_SIGPIPE = 141  # 128 + SIGPIPE, as a shell reports a tool whose reader left
# Every exit status, as `puente --help` lists it (the module docstring and the README's list say the same).
EXIT_STATUSES: dict[int, str] = {
    0: "done", EXIT_PROBLEMS: "problems found", EXIT_USAGE: "usage", EXIT_CONFIG: "bad configuration or input",
    EXIT_UNAVAILABLE: "Kafka unavailable", EXIT_UNCHECKED: "no problem found, but not everything could be checked",
    EXIT_INTERNAL: "internal error (report it)", EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_SIGPIPE: "the reader of the output left before its end (| head)",
}

# The modules of the development commands exist where puente.dev does: not in the service image.
DEVELOPMENT = frozenset({"kafka", "publish", "demo"})


def _modules(argv: Sequence[str] | None) -> list[str]:
    # The top level has only --help and --version, which exit: a command line that runs starts with its command.
    if argv and argv[0] in COMMANDS:
        return [COMMANDS[argv[0]]]
    return list(dict.fromkeys(COMMANDS.values()))


def _register(sub: Subparsers[argparse.ArgumentParser], modules: Sequence[str]) -> int:
    """Register ``modules``' commands; how many modules this install has."""
    done = 0
    for name in modules:
        try:
            module = importlib.import_module(f"puente.commands.{name}")
        except ModuleNotFoundError as missing:
            if name not in DEVELOPMENT or missing.name is None or not missing.name.startswith("puente.dev"):
                raise
            continue
        module.register(sub)
        done += 1
    return done


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for the command ``argv`` starts with; every command's without ``argv``, when it starts
    with none, or when that command's module is not in this install (so the error lists those that are)."""
    parser = _Parser(
        prog="puente",
        description="Puente: interagency alert sharing with agreement-based release, over Apache Kafka.",
        epilog="Exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_STATUSES.items()) + ".",
    )
    parser.add_argument("--version", action="version", version=f"puente {__version__}")
    sub = cast("Subparsers[argparse.ArgumentParser]",
               parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    wanted = _modules(argv)
    if not _register(sub, wanted) and len(wanted) == 1:
        _register(sub, _modules(None))
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its usage errors escaped (they quote what was typed: a stray argument may hold an
    escape sequence); every command's parser is one (argparse makes subparsers of their parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse drops a failed write silently: unbuffered (PYTHONUNBUFFERED), `puente --help | true` would be 0.
        # On standard output the failure reaches main, which says 141 for a reader that left.
        if message and file is not None and file is sys.stdout:
            file.write(message)
            return
        super()._print_message(message, file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors print one clear line to stderr and exit with their status."""
    _stderr_somewhere()
    _stdout_refusing()
    _stdout_escaping()
    # A client left unclosed after a failure would print a warning nobody can act on; each
    # service closes what it opened, and this keeps the rare leftover off the operator's screen.
    warnings.simplefilter("ignore", ResourceWarning)
    # Short commands speak for themselves in one line; the clients' own retries and refused
    # connections would only bury it. Long-running commands set the level from PUENTE_LOG_LEVEL.
    logs.configure("critical")
    argv = sys.argv[1:] if argv is None else list(argv)
    given = sys.stdout
    if not isinstance(given, _ClosedOutput):  # whose one failure already says standard output is closed
        sys.stdout = cast("TextIO", _WatchedOutput(given))
    try:
        code = _run(argv)
    except SystemExit as done:  # argparse's --help, --version and usage errors
        # What argparse printed is still in the buffer: written here too, so a reader that left is seen below.
        raise SystemExit(_written(done.code) if isinstance(done.code, int) or done.code is None else done.code) \
            from None
    finally:
        sys.stdout = given
    return _written(code)


def _stderr_somewhere() -> None:
    """Give standard error a place when Python started with it closed (`puente ... 2>&-`): ``sys.stderr`` is then
    None, and ``print(..., file=None)`` writes to standard output, so an error line or a note would end up in the
    command's output (`keys export-public ... 2>&- > key.pem` would hold an error, or a fingerprint after its PEM).
    Opened first, /dev/null also takes descriptor 2, so that no file the command opens later gets it and a
    library's own messages to descriptor 2 never land in that file."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - the process's stderr, open to its end


class _ClosedOutput(io.TextIOBase):
    """Standard output when Python started with it closed (`puente ... >&-`): a command's first write raises
    OSError, which ends it in one line (``_run``), rather than an AttributeError on None ("internal error") or, were
    it /dev/null, output thrown away under exit 0. A command that writes nothing there runs as it would."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed; give the command somewhere to write (> FILE)")


class _WatchedOutput:
    """Standard output while a command runs, as it is but for one thing: a write or flush of it that fails is kept
    (``failed``), so that the error boundary (``_run``) can tell the command's output failing (`> /dev/full`) from a
    file or socket the command opened failing: the one is said as the final flush says it (``_cannot_write``),
    naming standard output, where a bare "No space left on device" sent the operator to look for a file. Every
    other attribute is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.failed = exc
            raise

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self.failed = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _from_output(exc: OSError) -> bool:
    """Whether ``exc`` is (or was raised while handling) a failed write to standard output (``_WatchedOutput``)."""
    failed = getattr(sys.stdout, "failed", None) if isinstance(sys.stdout, _WatchedOutput) else None
    seen: BaseException | None = exc
    while failed is not None and seen is not None:
        if seen is failed:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cannot_write(exc: BaseException) -> str:
    """The one line for standard output that could not be written, whichever write found it."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return f"puente: error: cannot write the output: {reason}; check where standard output goes"


def _stdout_refusing() -> None:
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()


def _escaped(error: UnicodeError) -> tuple[str, int]:
    """The characters standard output's encoding cannot write, as JSON writes them (``\\u00ed``; a pair of
    surrogates beyond the BMP): readable in text, and a JSON line (`audit log --json`) stays JSON meaning the
    same, where Python's ``backslashreplace`` (``\\xed``, ``\\U0001f600``) would make it invalid."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = []
    for char in error.object[error.start:error.end]:
        code = ord(char)
        out.append(f"\\u{code:04x}" if code <= 0xFFFF else
                   f"\\u{0xD800 + ((code - 0x10000) >> 10):04x}\\u{0xDC00 + ((code - 0x10000) & 0x3FF):04x}")
    return "".join(out), error.end


codecs.register_error("puente.escape", _escaped)


def _stdout_escaping() -> None:
    """Standard output in an encoding that cannot write every character (PYTHONIOENCODING=latin-1 or ascii, a
    legacy locale) escapes those it cannot (``_escaped``), as standard error does: strict, the first Spanish
    letter or dash a command printed raised UnicodeEncodeError, which ended it as an internal error (exit 70).
    Only a strict handler is replaced: one the user chose (PYTHONIOENCODING=ascii:replace, UTF-8 mode's
    surrogateescape) is theirs, and already writes every character somehow."""
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="puente.escape")


def _run(argv: list[str]) -> int:
    code = None
    try:
        args = build_parser(argv).parse_args(argv)
        # Every command refuses a PUENTE_* variable that is no setting or cannot be read as it is, here, before it
        # runs: a command that reads few settings (schema check reads only PUENTE_NATIVE_AVRO) would otherwise
        # leave a misspelt or misread one's default in force unseen. Only `kafka`'s verbs that stop or report
        # check for themselves, leniently (``lenient_variables``): a cleanup must still stop Kafka.
        if not getattr(args, "lenient_variables", False):
            check_variables(os.environ)
        code = args.func(args)
    except PuenteError as exc:
        _trace()
        _say(f"puente: error: {_message(exc)}")
        return exc.exit_code
    except BrokenPipeError:  # e.g. `puente audit verify | head`: the reader left before the end
        return _reader_left(code)
    except KeyboardInterrupt:
        _say("puente: interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # standard output (`> /dev/full`), or a file or a socket the command itself opened
        _trace()
        if _from_output(exc):
            _say(_cannot_write(exc))
            return EXIT_CONFIG
        where = f" ({one_line(str(exc.filename))})" if exc.filename else ""
        _say(f"puente: error: {exc.strerror or type(exc).__name__}{where}")
        return EXIT_CONFIG
    # The last resort: one line, never a traceback or the error's text. A CancelledError nobody asked for (a
    # client library's task cancelled under a command: Ctrl-C comes as KeyboardInterrupt) is one too: a
    # BaseException, it went past this clause, and the command ended with a traceback and exit 1.
    except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001
        _trace()
        _say(f"puente: error: internal error ({type(exc).__name__}); run again with PUENTE_DEBUG=1 to see where, "
             "and report it")
        return EXIT_INTERNAL
    return int(code or 0)


def _written(code: int | None) -> int:
    """Write out what standard output still holds, on every way out (success, failure, argparse's exit): output
    left in the buffer would otherwise fail at interpreter exit, as status 120 and two lines of traceback. The
    command's own failure wins; else 141 when the reader left, 3 when the output could not be written."""
    code = int(code or 0)
    try:
        if sys.stdout is not None:  # None when Python started with it closed (`puente ... >&-`)
            sys.stdout.flush()
    except BrokenPipeError:
        code = _reader_left(code)
    except (OSError, ValueError) as exc:  # a full disk (`> /dev/full`); ValueError: a stream already closed
        _discard(sys.stdout)
        if not code:  # a command that failed has said so; a second line about its output would only bury it
            _say(_cannot_write(exc))
            code = EXIT_CONFIG
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        _discard(sys.stderr)
    return code


def _say(line: str) -> None:
    """Print ``line`` to standard error; when that is gone too there is nobody left to tell."""
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        _discard(sys.stderr)


def _reader_left(code: int | None) -> int:
    """The status when standard output's reader left: never 0, since nobody read the whole output (a
    `verify | head` that passed would hide the problems after the first lines): the command's own failure
    when it had one, else 141, as a shell tool killed by SIGPIPE."""
    _discard(sys.stdout)
    return int(code) if code else EXIT_SIGPIPE


def _discard(stream: TextIO | None) -> None:
    """Send what is left in ``stream``'s buffer nowhere: it would fail again when Python flushes at exit
    (status 120, a traceback). A stream with no descriptor (a test's capture) has nothing to flush there."""
    if stream is None:  # no descriptor at all: Python started with it closed
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        pass


def _message(exc: PuenteError) -> str:
    """The error as a person reads it after ``puente: error:``: its message on one line, then each of its
    ``problems`` (every mistake in the policy files, say) on a line of its own: the one place several lines help.
    Every line goes through ``one_line``, here and not at each raise site: a path, an id or a variable's value
    holding a line break or an escape sequence would otherwise split the line, or fake a second error."""
    if exc.problems:
        return "\n".join(one_line(line) for line in ([exc.heading] if exc.heading else []) + list(exc.problems))
    return one_line(str(exc).strip() or type(exc).__name__)


def _trace() -> None:
    if os.environ.get("PUENTE_DEBUG") == "1":
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
