"""Read YAML with its node tree, so that an error can name the file and the line.

PyYAML's safe loader silently keeps the last of two equal keys; in a policy
file that would let a second ``payload.person.surnames: keep`` undo a
``drop`` above it, so duplicate keys are refused here. Anchors and aliases
are refused too: a few lines of aliases can stand for billions of values
(the "billion laughs"), and a policy file has no need of them. Nesting is
bounded (the composer recurses) and so is a file's size.

Every mapping key must be a plain or quoted string: a key YAML reads as
something else (``yes`` a boolean, ``1`` a number, ``2026-01-01`` a date,
``~`` null, ``!!binary ...`` bytes) would be made a string by validation
after the duplicate check above had compared it as read, and could then
silently replace the entry a reader of the file sees. Explicit tags
(``!!binary``, ``!!set``, ``!!omap``, ``!!str``...) are refused wherever they
are, and so are YAML 1.1's other spellings of booleans (``yes``, ``off``)
and of integers (``010``, ``0x10``, ``1_000``, ``1:30``): a policy file says
``true``, ``false`` and ``180`` as its reader would read them.

A text runs over several lines only under the keys a file's ``Texts`` names
(an agreement's legal basis, a term's description): a ``>`` or ``|`` block
takes in every more-indented line after it, blank lines included, so a rule
written below a ``why: >-`` would be the why's text while a reviewer reads a
rule. Under those keys, a line that reads as an entry of the policy is
refused too (``Texts.reads_as_entry``).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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
from puente.strict import TooLarge, one_line, printable, read_bounded

MAX_BYTES = 8 * 1024 * 1024  # the largest policy file, areas.yaml, is a few tens of KB
MAX_DEPTH = 40  # a policy file nests a dozen levels at most
_STR = "tag:yaml.org,2002:str"
_BOOL_TEXT = frozenset({"true", "false", "True", "False", "TRUE", "FALSE"})  # YAML 1.2's spellings
_N = TypeVar("_N", int, float)
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_KEY_KINDS = {  # what YAML reads a plain key as, by the tag its resolver gives it
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "a whole number",
    "tag:yaml.org,2002:float": "a decimal number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:value": "YAML's value indicator",
}


class _Refused(Exception):
    """A YAML construct policy files may not use, at a 1-based line."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _short_tag(tag: object) -> str:
    """``tag:yaml.org,2002:binary`` -> ``!!binary``, at most 40 characters."""
    text = str(tag)
    text = "!!" + text[len("tag:yaml.org,2002:") :] if text.startswith("tag:yaml.org,2002:") else text
    return printable(text[:40])


class _StrictChecks(Composer, SafeConstructor, Resolver):
    """SafeLoader's composing and constructing, refusing duplicate mapping keys, anchors, aliases,
    explicit tags, booleans and integers in YAML 1.1's other spellings, and deep nesting. The parser
    comes from the loaders below; PyYAML's own composer (first in their method order) builds the node
    tree, so every node passes ``compose_node`` here."""

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
        tag = getattr(event, "tag", None)  # set only when the file writes one (`!!binary`, `!`, `!foo`)
        if isinstance(event, yaml.NodeEvent) and tag is not None:
            raise _Refused(
                line,
                f"tag {_short_tag(tag)} refused: policy files may not use YAML tags; "
                "write the value plainly (quote it if it is text)",
            )
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

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        value = bool(super().construct_yaml_bool(node))
        if node.value not in _BOOL_TEXT:  # yes, No, on, OFF...
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{printable(str(node.value)[:40])} is read by YAML as a boolean ({str(value).lower()}); "
                "write true or false, or quote it if it is text",
                node.start_mark,
            )
        return value

    def construct_yaml_int(self, node: ScalarNode) -> int:
        # 010 (octal), 0x10, 0b10, 1_000, 1:30 (base 60)
        return _plainly(node, int(super().construct_yaml_int(node)), _DECIMAL)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR):  # read_yaml's key check came first
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key on line {line} is not text", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key on line {line} is not text", key_node.start_mark
                )
            first = seen.get(key)
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first})", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        # 1_0.0, 0:0.5 (base 60); .nan and .inf are the models' to refuse
        return _plainly(node, float(super().construct_yaml_float(node)), _FLOAT)

    # SafeConstructor's table, with this class's booleans and numbers (a copy: SafeLoader's stays as it is)
    yaml_constructors: ClassVar[dict[Any, Any]] = {
        **SafeConstructor.yaml_constructors,
        "tag:yaml.org,2002:bool": construct_yaml_bool,
        "tag:yaml.org,2002:int": construct_yaml_int,
        "tag:yaml.org,2002:float": construct_yaml_float,
    }


def _plainly(node: ScalarNode, value: _N, spelling: re.Pattern[str]) -> _N:
    """``value``, the number YAML read from ``node``, if the file writes it in plain decimal (``spelling``); else
    refused, saying what YAML read: a reader of the file must see the number the policy holds."""
    if not spelling.fullmatch(str(node.value)):
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"{printable(str(node.value)[:40])} is read by YAML as the number {str(value)[:40]}; "
            "write it in plain decimal digits, or quote it if it is text",
            node.start_mark,
        )
    return value


def _check_keys(node: Node, path: tuple[int | str, ...] = ()) -> None:
    """Refuse, with where it is and what to write, a mapping key that YAML does not read as text."""
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check_keys(item, (*path, index))
        return
    if not isinstance(node, MappingNode):
        return
    where = f"{dotted(path)}: " if path else ""
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if isinstance(key_node, SequenceNode | MappingNode):
            kind = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
            raise _Refused(line, f"{where}the key on line {line} is {kind}; a key must be a name")
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Refused(
                line,
                f"{where}merge key << on line {line} refused: policy files may not use merge keys; write each key out",
            )
        if key_node.tag != _STR:
            kind = _KEY_KINDS.get(str(key_node.tag), _short_tag(key_node.tag))
            text = printable(str(key_node.value)[:40]) or "an empty key"
            raise _Refused(line, f"{where}the key on line {line} is read by YAML as {kind} ({text}); quote it")
        _check_keys(value_node, (*path, str(key_node.value)))


def _no_entry(line: str) -> str | None:
    return None


@dataclass(frozen=True)
class Texts:
    """How a file may write its texts: ``prose`` names the keys whose text may run over several lines (a ``>`` or
    ``|`` block, or a quoted or plain text continued on the next line), and ``reads_as_entry`` says what a line of
    such a text reads as to a reviewer (``min_grading:``), or None for a line of prose. Every other text is one
    line: the default, ``Texts()``, lets no text of the file run over lines."""

    prose: frozenset[str] = frozenset()
    reads_as_entry: Callable[[str], str | None] = _no_entry


ONE_LINE = Texts()


def _check_texts(node: Node, lines: Sequence[str], texts: Texts, path: tuple[int | str, ...] = ()) -> None:
    """Refuse a text over several lines under a key ``texts`` does not name as prose, and a line of a prose text
    that reads as an entry: in both, YAML reads as text a line a reviewer may read as part of the policy."""
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check_texts(item, lines, texts, (*path, index))
    elif isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else ""
            _check_text(key_node, lines, ONE_LINE, path)  # a key is never prose
            _check_texts(value_node, lines, texts, (*path, key))
    else:
        _check_text(node, lines, texts, path)


def _check_text(node: Node, lines: Sequence[str], texts: Texts, path: tuple[int | str, ...]) -> None:
    start, end = node.start_mark.line, node.end_mark.line
    block = isinstance(node, ScalarNode) and node.style in ("|", ">")
    if not (block or end > start):
        return
    # A block ends at the start of the line after it (and after the blank lines it takes in); a quoted or plain
    # text, on its last line.
    last = end if node.end_mark.column > 0 else end - 1
    while last > start and last < len(lines) and not lines[last].strip():
        last -= 1
    key = path[-1] if path else ""
    where = f"{dotted(path)}: " if path else ""
    if not (isinstance(key, str) and key in texts.prose):
        allowed = f"only {', '.join(sorted(texts.prose))} may" if texts.prose else "no text of this file may"
        raise _Refused(
            start + 1,
            f"{where}a text over several lines (lines {start + 1} to {last + 1}) refused: write it on one line; "
            f"{allowed} run over lines, since a text block takes in the indented lines below it and a reviewer "
            "would read them as entries",
        )
    for number in range(start, min(last, len(lines) - 1) + 1):
        entry = texts.reads_as_entry(_text_on(node, lines, number))
        if entry is not None:
            raise _Refused(
                number + 1,
                f"{where}this line reads as {printable(entry[:80])}, but YAML reads it as part of the text of "
                f"{key}: move it out of the text (outdented to where it belongs), or reword the line",
            )


def _text_on(node: Node, lines: Sequence[str], number: int) -> str:
    """The part of the file's line ``number`` (0-based) that is ``node``'s text: on its first line, what follows
    where the text starts (its key may stand before it, or nothing), less a quoted text's opening quote, and
    nothing for a block, whose first line holds only its ``>`` or ``|``; on the lines after, the whole line."""
    if number != node.start_mark.line:
        return lines[number]
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        return ""
    text = lines[number][node.start_mark.column :]
    return text[1:] if isinstance(node, ScalarNode) and node.style in ("'", '"') else text


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


def not_a_file(path: Path, within: Path | None = None) -> str | None:
    """Why ``path`` is no policy file, from its directory entry alone (nothing is opened, so a device is
    never read): ``missing``, ``missing: a link to X, which does not exist``, ``not a regular file: a
    folder`` or ``not a regular file: a link to the device /dev/zero``; None for a regular file or a link
    to one. A link to a device must not read as a file that is not there: the operator would look for it.

    With ``within`` (the policy folder), a file whose links (its own or a folder's on its way) lead out of
    that folder is refused too: a policy folder handed over for review (a proposal, a pull request checked in
    CI) must not make ``policy lint`` read, and quote in its findings, a file elsewhere on the machine. Links
    that stay inside (a mounted configuration's ``..data`` links) are read."""
    link = path.is_symlink()
    try:
        mode = path.stat().st_mode  # follows links
    except FileNotFoundError:
        return f"missing: a link to {one_line(os.readlink(path))}, which does not exist" if link else "missing"
    except OSError as exc:  # a loop of links, a folder that may not be searched
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        if within is not None and not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(within)):
            return (f"not read: a link to {one_line(os.path.realpath(path))}, outside the policy folder; "
                    "a policy folder holds its own files (copy the file in)")
        return None
    if link:
        return f"not a regular file: a link to the {_kind(mode)} {one_line(os.path.realpath(path))}"
    return f"not a regular file: a {_kind(mode)}"


# Characters YAML reads as a line break that git, grep and a reviewer's editor do not (NEL, LS, PS, a carriage
# return with no line feed after it), and those that reorder how a line shows (the bidirectional controls): with
# them, a line that shows as a comment can hold a rule.
_UNSEEN = re.compile("[\x85\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def unseen_character(text: str) -> str | None:
    """Why ``text`` (a YAML file's) is refused, as ``<line>: <problem>`` with the line counted as a reviewer counts
    it (by line feeds), or None: it holds a character that makes YAML read something other than what it shows."""
    found = _UNSEEN.search(text)
    if found is None:
        return None
    char = found.group()
    why = ("a line break only YAML sees" if char in "\x85\u2028\u2029\r" else
           "a control that reorders how the text shows")
    return (f"{text.count(chr(10), 0, found.start()) + 1}: character U+{ord(char):04X} ({why}) refused: what YAML "
            "reads there is not what a reviewer sees; remove it (end lines with a line feed)")


def read_yaml(path: Path, label: str, texts: Texts = ONE_LINE, within: Path | None = None) -> tuple[Any, Node | None]:
    """The data of one YAML file and its node tree; any problem raises PolicyError naming file and line.

    ``texts`` says which keys' texts may run over several lines, and which of their lines read as entries
    (``Texts``); by default no text of the file may. ``within`` is the policy folder the file must lie in,
    links followed (``not_a_file``).

    Only a regular file (or a link to one) is read: a policy folder is given, not a stream, so a pipe
    is refused by name before anything opens it (a FIFO with no writer would read as empty, and the
    error would be a schema message about an empty document)."""
    problem = not_a_file(path, within)
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
    unseen = unseen_character(text)
    if unseen is not None:
        raise PolicyError(f"{label}:{unseen}")
    try:
        loader = _StrictLoader(text)  # PyYAML's reader checks every character here
    except ReaderError as exc:
        raise _unreadable(label, raw, text, exc, _StrictLoader.BYTE_POSITIONS) from exc
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_keys(node)
            _check_texts(node, text.split("\n"), texts)
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise PolicyError(f"{label}:{exc.line}: {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        raise PolicyError(yaml_problem(label, exc, text)) from exc
    except ReaderError as exc:  # libyaml's reader checks as it goes
        raise _unreadable(label, raw, text, exc, loader.BYTE_POSITIONS) from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{label}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return data, node


def yaml_problem(label: str, exc: yaml.YAMLError, text: str) -> str:
    """One line for the YAML error ``exc`` in the file ``label`` whose text was ``text``: ``label:line: problem``,
    never PyYAML's own several lines quoting the file."""
    if isinstance(exc, ReaderError):  # a character YAML does not allow; its position counts characters of ``text``
        return f"{label}:{text[: exc.position].count(chr(10)) + 1}: character #x{exc.character:04x}: {exc.reason}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        return f"{where}: {exc.problem or exc.context or 'invalid YAML'}"
    return f"{label}: invalid YAML"


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
            found = _keys(node).get(str(part))
            if found is not None:
                node = found
                matched.append(part)
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            matched.append(part)
    return int(node.start_mark.line) + 1, tuple(matched)


_KEYS = "_puente_keys"  # a composed mapping node's index of its text keys (``_keys``)


def _keys(node: MappingNode) -> dict[str, Node]:
    """Each text key of ``node`` to its value node (the first, as a walk of its pairs finds it), made at the first
    lookup and kept on the node: a check locates every field of a mapping, and a walk of the pairs for each one
    took a policy of thousands of entries minutes to load. Composed nodes are never changed afterwards."""
    index: dict[str, Node] | None = getattr(node, _KEYS, None)
    if index is None:
        index = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                index.setdefault(key_node.value, value_node)
        setattr(node, _KEYS, index)
    return index


def line_of(node: Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the value at ``loc``, or of its nearest parent."""
    return locate(node, loc)[0]


def dotted(loc: Sequence[int | str]) -> str:
    """``('covers', 0, 'when')`` -> ``covers[0].when``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
