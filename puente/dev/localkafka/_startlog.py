"""Where a node that died starting says why: the first error its logs hold since it was started.

A start-up error may quote what it could not parse (a JAAS line with a password in it, a property's value), so
what reaches the user is only where the error is and what kind it is: the log file, the line number and the
Java exception's class (else the logger that wrote the ERROR line). Never the line's text; the user reads it
in the file, which is as private as the node's folder.

Kafka appends to its logs across runs, so ``mark`` records each log's size and inode when a node is started (in
``logs/run.start``) and ``first_error`` reads only what was written after it: from the mark in the file that held
it, rolled over since (``server.log.N``: its inode) or not, then any newer one from its start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LOGS = ("server.log", "console.log")
_MARK = "run.start"
_MAX_READ = 16 * 1024 * 1024  # a start-up's worth of log, at most
_LEVEL = re.compile(r"^\[[^\]]*\] (?:ERROR|FATAL) ")
_JVM = re.compile(r"^(?:Exception in thread |Error: |Caused by: )")
_CLASS = re.compile(r"\b((?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable))\b")
_STARTS_WITH_CLASS = re.compile(r"^(?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)\b")
_LOGGER = re.compile(r"\(([\w.$]+)\)\s*$")


@dataclass(frozen=True)
class FirstError:
    """Where the first error of a run is, and its kind: never its text."""

    path: Path
    line: int  # counting from 1, in the whole file
    kind: str  # a Java class name, or "ERROR from <logger>", or "ERROR"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.kind})"


def mark(logs: Path) -> None:
    """Record the size and inode of each log in ``logs`` now, before a node is started (or found running)."""
    sizes = []
    for name in LOGS:
        path = logs / name
        try:
            stat = path.stat()
            size, inode = stat.st_size, stat.st_ino
        except FileNotFoundError:
            size, inode = 0, 0
        sizes.append(f"{name} {size} {inode}\n")
    (logs / _MARK).write_text("".join(sizes), encoding="ascii")


def _marks(logs: Path) -> dict[str, tuple[int, int]]:
    """Each log's (size, inode) at the mark; inode 0: not known (no file then, or a mark of an older Puente)."""
    try:
        text = (logs / _MARK).read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, size, inode = [*line.split(" "), "0", "0"][:3]
        if size.isascii() and size.isdigit() and inode.isascii() and inode.isdigit():
            found[name] = (int(size), int(inode))
    return found


def _since(logs: Path, name: str, marked: tuple[int, int]) -> list[tuple[Path, int]]:
    """The files holding what ``name`` logged since its mark, oldest first, each with the byte it starts from: the
    marked file, wherever a roll-over moved it (``name.N`` of the same inode), from the mark, then the current one
    from its start; the current one alone from the mark when it was not rolled over (or the inode is not known)."""
    size, inode = marked
    path = logs / name
    try:
        current = path.stat().st_ino
    except FileNotFoundError:
        current = 0
    if not inode or current == inode:
        return [(path, size)]
    rolled = next((old for old in sorted(logs.glob(f"{name}.*")) if _inode(old) == inode), None)
    return ([(rolled, size)] if rolled is not None else []) + [(path, 0)]


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return 0


def _kind(lines: list[str], at: int) -> str:
    """The exception class on the error's line or the stack trace just after it, else its logger."""
    for line in lines[at:at + 6]:
        found = _CLASS.search(line)
        if found:
            return found.group(1)
    logger = _LOGGER.search(lines[at])
    return f"ERROR from {logger.group(1)}" if logger else "ERROR"


def _is_error(line: str) -> bool:
    return bool(_LEVEL.match(line) or _JVM.match(line) or _STARTS_WITH_CLASS.match(line))


def _read_from(path: Path, start: int) -> tuple[int, list[str]]:
    """The number of lines before byte ``start`` of ``path`` (0 and the whole file when it is shorter: cut since
    the mark), and the lines from there on (at most ``_MAX_READ`` bytes), split at LF only, as they were counted
    (a byte 0x85 inside a UTF-8 letter, or a form feed, is no line end)."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = start if start <= size else 0
        file.seek(0)
        before, left = 0, start
        while left > 0:
            chunk = file.read(min(left, 1024 * 1024))
            if not chunk:
                break
            before += chunk.count(b"\n")
            left -= len(chunk)
        return before, [line.removesuffix(b"\r").decode("iso-8859-1")
                        for line in file.read(_MAX_READ).split(b"\n")]


def first_error(logs: Path) -> FirstError | None:
    """The first error written to the logs in ``logs`` since ``mark`` (the whole file when it was not marked, or
    rolled over since): server.log's, else console.log's (where the JVM's own failures go); None when neither
    holds one."""
    marks = _marks(logs)
    for name in LOGS:
        for path, start in _since(logs, name, marks.get(name, (0, 0))):
            try:
                before, lines = _read_from(path, start)
            except OSError:
                continue
            for index, line in enumerate(lines):
                if _is_error(line):
                    return FirstError(path, before + index + 1, _kind(lines, index))
    return None
