"""Read YAML with its node tree, so that an error can name the file and the line.

PyYAML's safe loader silently keeps the last of two equal keys; in a policy
file that would let a second ``payload.person.surnames: keep`` undo a
``drop`` above it, so duplicate keys are refused here. Anchors and aliases
are refused too: a few lines of aliases can stand for billions of values
(the "billion laughs"), and a policy file has no need of them. Nesting is
bounded (the composer recurses) and so is a file's size.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner

try:
    from yaml._yaml import CParser

    LIBYAML = True
except ImportError:  # a PyYAML built without libyaml: its own reader, scanner and parser serve
    CParser = Parser  # type: ignore[assignment,misc]  # only for _LibyamlLoader's definition; never used
    LIBYAML = False

from puente.errors import PolicyError
from puente.strict import TooLarge, printable, read_bounded

MAX_BYTES = 8 * 1024 * 1024  # the largest policy file, areas.yaml, is a few tens of KB
MAX_DEPTH = 40  # a policy file nests a dozen levels at most


class _Refused(Exception):
    """A YAML construct policy files may not use, at a 1-based line."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


class _StrictChecks(Composer, SafeConstructor, Resolver):
    """SafeLoader's composing and constructing, refusing duplicate mapping keys, anchors, aliases and
    deep nesting. The parser comes from the loaders below; PyYAML's own composer (first in their
    method order) builds the node tree, so every node passes ``compose_node`` here."""

    _depth = 0
    BYTE_POSITIONS = False
    """Whether a ReaderError's position counts bytes of the UTF-8 text (libyaml) or characters."""
    peek_event: Callable[[], yaml.Event | None]  # the parser's

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event is not None and event.start_mark is not None else 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                line, f"alias *{str(event.anchor)[:40]} refused: policy files may not use anchors or aliases"
            )
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused(line, f"anchor &{event.anchor[:40]} refused: policy files may not use anchors or aliases")
        if self._depth >= MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        # a date like 2025-02-30, an integer of 5,000 digits; PyYAML's constructors raise AttributeError or
        # TypeError on some values a tag does not fit (`!!timestamp nope`)
        except (ValueError, OverflowError, AttributeError, TypeError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            why = f": {str(exc)[:80]}" if isinstance(exc, ValueError | OverflowError) else ""  # not Python's internals
            raise yaml.constructor.ConstructorError(None, None, f"not a valid {kind}{why}", node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; the base class reports it properly
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first})", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _LibyamlLoader(_StrictChecks, CParser):
    """libyaml scans and parses: a fifth of the pure-Python parser's time, and every command and each
    broker start reads the policy files."""

    BYTE_POSITIONS = True

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


class _PythonLoader(_StrictChecks, Reader, Scanner, Parser):
    """PyYAML's own reader, scanner and parser, where libyaml is not built in."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


_StrictLoader: type[_LibyamlLoader] | type[_PythonLoader] = _LibyamlLoader if LIBYAML else _PythonLoader


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "pipe"
    return "socket" if stat.S_ISSOCK(mode) else "special file"


def not_a_file(path: Path) -> str | None:
    """Why ``path`` is no policy file, from its directory entry alone (nothing is opened, so a device is
    never read): ``missing``, ``missing: a link to X, which does not exist``, ``not a regular file: a
    folder`` or ``not a regular file: a link to the device /dev/zero``; None for a regular file or a link
    to one. A link to a device must not read as a file that is not there: the operator would look for it."""
    link = path.is_symlink()
    try:
        mode = path.stat().st_mode  # follows links
    except FileNotFoundError:
        return f"missing: a link to {printable(os.readlink(path))}, which does not exist" if link else "missing"
    except OSError as exc:  # a loop of links, a folder that may not be searched
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return None
    if link:
        return f"not a regular file: a link to the {_kind(mode)} {printable(os.path.realpath(path))}"
    return f"not a regular file: a {_kind(mode)}"


def read_yaml(path: Path, label: str) -> tuple[Any, Node | None]:
    """The data of one YAML file and its node tree; any problem raises PolicyError naming file and line.

    Only a regular file (or a link to one) is read: a policy folder is given, not a stream, so a pipe
    is refused by name before anything opens it (a FIFO with no writer would read as empty, and the
    error would be a schema message about an empty document)."""
    problem = not_a_file(path)
    if problem is not None:
        raise PolicyError(f"{label}: {problem}")
    try:
        raw = read_bounded(path, MAX_BYTES)
    except TooLarge:
        raise PolicyError(f"{label}: larger than {MAX_BYTES // (1024 * 1024)} MiB; not a policy file") from None
    except OSError as exc:
        # replaced since the check above (a race): open_regular refuses a device (EINVAL), Python's open a
        # folder (EISDIR); say which, as for a file that is not there
        problem = not_a_file(path) if exc.errno in (errno.EINVAL, errno.EISDIR, errno.ENOENT) else None
        raise PolicyError(f"{label}: {problem or f'cannot read: {exc.strerror or exc}'}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError(f"{label}:{line}: not UTF-8 text (byte {exc.start + 1})") from exc
    try:
        loader = _StrictLoader(text)  # PyYAML's reader checks every character here
    except ReaderError as exc:
        raise _unreadable(label, raw, text, exc, _StrictLoader.BYTE_POSITIONS) from exc
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise PolicyError(f"{label}:{exc.line}: {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        raise PolicyError(f"{where}: {exc.problem or exc.context or 'invalid YAML'}") from exc
    except ReaderError as exc:  # libyaml's reader checks as it goes
        raise _unreadable(label, raw, text, exc, loader.BYTE_POSITIONS) from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{label}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return data, node


def _unreadable(label: str, raw: bytes, text: str, exc: ReaderError, in_bytes: bool) -> PolicyError:
    """A character YAML does not allow (a control character, say), with the line it is on."""
    before = raw[: exc.position].count(b"\n") if in_bytes else text[: exc.position].count("\n")
    return PolicyError(f"{label}:{before + 1}: character #x{exc.character:04x}: {exc.reason}")


def locate(node: Node | None, loc: Sequence[int | str]) -> tuple[int, tuple[int | str, ...]]:
    """The 1-based line a pydantic-style location points at (or its nearest parent), and the parts that matched.

    Location parts that match no key (pydantic adds union tags such as
    ``function-before[...]``) are skipped rather than ending the walk.
    """
    if node is None:
        return 1, ()
    matched: list[int | str] = []
    for part in loc:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    node = value_node
                    matched.append(part)
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            matched.append(part)
    return int(node.start_mark.line) + 1, tuple(matched)


def line_of(node: Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the value at ``loc``, or of its nearest parent."""
    return locate(node, loc)[0]


def dotted(loc: Sequence[int | str]) -> str:
    """``('covers', 0, 'when')`` -> ``covers[0].when``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
