"""Read the policy files of one directory into validated models, keeping their node trees for line numbers.

Layout of a policy directory::

    vocabulary.yaml               scales, caveats, handling codes, grading, view settings
    partners.yaml                 everyone Puente may deliver to
    agreements/<name>.yaml        one agreement each
    agreements/<name>.tests.yaml  expected decisions for that agreement (``puente policy test``)
    fixtures.yaml                 named example alerts the suites start from
    areas.yaml                    outlines of the provinces and border sectors area conditions name
"""

from __future__ import annotations

import re
import typing
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from yaml.nodes import Node

from policies._areas import AreasFile
from policies._fields import schema_fields, schema_releases
from policies._model import PROSE, Agreement, Fixtures, PartnersFile, Suite, Vocabulary
from policies._yamlio import Texts, dotted, line_of, locate, not_a_file, read_yaml
from puente.errors import PolicyError
from puente.strict import one_line

DEFAULT_DIR = Path(__file__).resolve().parent / "data"
VOCABULARY = "vocabulary.yaml"
PARTNERS = "partners.yaml"
AGREEMENTS = "agreements"
SUITE_SUFFIX = ".tests.yaml"
FIXTURES = "fixtures.yaml"
AREAS = "areas.yaml"

M = TypeVar("M", bound=BaseModel)
_TAG = re.compile(r"^(function-\w+|\w+)\[.*\]$|^(str|int|float|bool|list|dict)$")


@dataclass(frozen=True)
class Doc(Generic[M]):
    """One validated file: its label (path relative to the policy dir), model and YAML nodes."""

    label: str
    model: M
    node: Node | None = field(default=None, repr=False, compare=False)

    def where(self, *loc: int | str) -> str:
        """``label:line`` of the value at ``loc`` (or its nearest parent)."""
        return f"{self.label}:{locate(self.node, loc)[0]}"


@dataclass(frozen=True)
class PolicySources:
    """Every policy file of one directory, validated for form but not yet cross-checked."""

    root: Path
    vocabulary: Doc[Vocabulary]
    partners: Doc[PartnersFile]
    agreements: tuple[Doc[Agreement], ...]
    areas: Doc[AreasFile] | None = None  # None: the directory has no areas.yaml, so no area has an outline


def _loc_text(node: Node | None, loc: Sequence[int | str]) -> tuple[int, str]:
    line, matched = locate(node, loc)
    # Keep the parts that exist in the file plus an unmatched last one (a missing or unknown key);
    # drop pydantic's union tags, which mean nothing to someone editing YAML.
    shown = list(matched)
    tail = loc[len(loc) - 1] if loc else None
    if tail is not None and len(matched) < len(loc) and not (isinstance(tail, str) and _TAG.match(tail)):
        shown.append(tail)
    return line, dotted(shown)


_FILES: tuple[type[BaseModel], ...] = (Vocabulary, PartnersFile, Agreement, Suite, Fixtures, AreasFile)
# What opens a line of YAML before a key: a list's ``-``, an explicit key's ``?`` or its value's ``:`` (each followed by
# a space or the line's end), a flow collection's ``{`` or ``[``.
_INDICATOR = re.compile(r"(?:([-?:])(?=\s|$)|[{\[]|[&!]\S*(?=\s|$))\s*")  # and an anchor (&x) or a tag (!!str)
# A line of prose that opens with a key after those: ``min_grading: {...}``, ``min_grading : {...}``, ``"payload.x":
# keep``, ``H3:``; the colon may have spaces before it, as YAML allows, and anything after it.
_KEYED = re.compile(r"(['\"]?)([^\s'\"]+?)\1\s*:(.*)")
_PATH = re.compile(r"[A-Za-z_]\w*(?:\[\])?(?:\.[A-Za-z_]\w*(?:\[\])?)+")  # a field path: payload.person.surnames


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation (``list[Cover]``, ``dict[str, Term] | None``) holds."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _fields_of(*roots: type[BaseModel]) -> list[tuple[str, bool]]:
    """Every key the models ``roots`` and those within them define, each with whether its text is prose."""
    seen: set[type[BaseModel]] = set()
    todo, found = list(roots), []
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            prose = PROSE in info.metadata or any(PROSE in getattr(a, "__metadata__", ()) for a in
                                                  typing.get_args(info.annotation))
            found.append((info.alias or name, prose))
            todo.extend(_models(info.annotation))
    return found


@cache
def _entry_names() -> frozenset[str]:
    """The names a line of the policy language opens with: every key of a policy file's models, and every field
    path of the alert schema, current or released (``agency``, ``payload.detainees[].documents[].number``)."""
    paths = {p for fields in schema_fields().values() for p in fields}
    paths.update(p for release in schema_releases().values() for fields in release.values() for p in fields)
    return frozenset({name for name, _ in _fields_of(*_FILES)} | paths)


def _as_read(name: str) -> str:
    """``name`` as a reviewer reads it: compatibility forms folded (``ｍｉｎ`` to ``min``, ``․`` to ``.``), and
    accents, other combining marks and invisible format characters (a zero-width space) dropped (``onwárd`` to
    ``onward``)."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if unicodedata.category(c)[0] != "M"
                   and unicodedata.category(c) != "Cf")


def _entry_name(name: str) -> str | None:
    """The name of the policy language ``name`` reads as, or None: the name itself, as read (``_as_read``), or the
    known name whose ASCII characters it shares where its own are ASCII and whose length it has (a look-alike)."""
    read = _as_read(name)
    if read in _entry_names() or _PATH.fullmatch(read):
        return read
    if read.isascii():
        return None
    # The policy language's names are ASCII, and a reviewer cannot tell a letter of another script from the ASCII
    # one it resembles (Cyrillic і from i, ԝ from w): a non-ASCII character may stand for any.
    return next((known for known in sorted(_entry_names()) if len(known) == len(read)
                 and all(a == b or not a.isascii() for a, b in zip(read, known, strict=True))), None)


_STRUCTURE = frozenset(":-?{[&!#'\"")


def _structure_as_read(line: str) -> str:
    """``line`` with what gives it YAML's structure as a reviewer reads it: a character that reads as a colon, a
    dash or another indicator taken for it (a full-width colon ：, a dash ‐ – —, the minus sign −), and invisible
    format characters before the first name (a zero-width space before a dash) dropped. Names are left as
    written (``_entry_name`` reads them, and says how they were written)."""
    out: list[str] = []
    leading = True
    for c in line:
        if leading and unicodedata.category(c) == "Cf":
            continue
        folded = unicodedata.normalize("NFKD", c)
        c = folded if folded in _STRUCTURE else "-" if c == "\u2212" or unicodedata.category(c) == "Pd" else c
        leading = leading and (c in _STRUCTURE or c.isspace())
        out.append(c)
    return "".join(out)


def reads_as_entry(line: str) -> str | None:
    """What a line of prose reads as to a reviewer, when it reads as part of the policy rather than as text:
    ``the entry min_grading:``, ``an explicit key (?)`` or ``a comment``; None for a line of prose.

    A line reads as an entry when it opens (after its indentation and YAML's indicators: a list's ``- ``, a flow
    collection's ``{`` or ``[``) with a name, any spaces and a colon, and the name is one the policy language uses
    as a key: a key of a policy file's models (``min_grading``, ``why``, ``rule``), a field path of the alert schema
    or any dotted path (``payload.detainees[].documents[].number``), or any name with a ``{...}`` or ``[...]`` after
    it (``H3: {effect: none}``, a code of the vocabulary). A name is compared as a reviewer reads it: accents and
    invisible characters dropped, and a character that is not ASCII taken for any (``onward_sharіng`` with a
    Cyrillic і is ``onward_sharing``), since every name of the policy language is ASCII. A line opening with YAML's
    ``? `` or ``: `` reads as an explicit key or its value, whatever follows. Ordinary prose stays loadable:
    ``Note: ...``, ``Artículo 7: ...``, ``Año: ...`` and ``as follows:`` name nothing the policy knows, once read
    as a reviewer reads them. A line opening with ``#`` reads as a comment, though YAML reads it as text."""
    text = _structure_as_read(line).strip()
    if text.startswith("#"):
        return "a comment"
    at, marks = 0, set()
    while (found := _INDICATOR.match(text, at)) is not None and found.end() > at:
        marks.add(found.group(1))
        at = found.end()
    if "?" in marks:
        return "an explicit key (?)"
    if ":" in marks:
        return "the value of an explicit key (:)"
    keyed = _KEYED.fullmatch(text, at)
    if keyed is None:
        return None
    name, rest = keyed.group(2), keyed.group(3).strip()
    read = _entry_name(name)
    if read is not None:
        return f"the entry {read}:" if read == name else (
            f"the entry {read}: (written {name.encode('ascii', 'backslashreplace').decode()})")
    if rest.startswith(("{", "[")):
        return f"the entry {name}:"
    return None


@cache
def texts_of(model: type[BaseModel]) -> Texts:
    """How a file read as ``model`` may write its texts: over several lines only under its prose keys (a legal
    basis, a purpose, a description), and no line of those reading as an entry (``reads_as_entry``)."""
    prose = frozenset(name for name, is_prose in _fields_of(model) if is_prose)
    return Texts(prose, reads_as_entry)


def validate(model: type[M], data: object, node: Node | None, label: str) -> Doc[M]:
    """Validate ``data`` as ``model``; errors raise PolicyError with ``file:line: field: problem``."""
    try:
        return Doc(label, model.model_validate(data), node)
    except ValidationError as exc:
        lines = []
        for err in exc.errors()[:12]:
            line, where = _loc_text(node, err["loc"])
            lines.append(f"{label}:{line}: {where + ': ' if where else ''}{err['msg']}")
        raise PolicyError(problems=lines) from exc


def read_doc(model: type[M], root: Path, relative: str) -> Doc[M]:
    """Read and validate one file under ``root``."""
    data, node = read_yaml(root / relative, relative, texts_of(model), root)
    return validate(model, data, node, relative)


# The names the agreements folder's files may have: an allow-list, so a name ``ls`` does not show (``.x.yaml``), or
# one a reviewer may not read as written (a space, a look-alike letter), is never read as an agreement or a suite.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.yaml")


def _named(folder: Path, pattern: str) -> list[Path]:
    """The entries of ``folder`` matching the glob ``pattern`` whose names ``FILE_NAME`` allows, in name order."""
    return sorted(p for p in folder.glob(pattern) if FILE_NAME.fullmatch(p.name))


def agreement_files(root: Path) -> list[Path]:
    """The agreement files of a policy directory, in name order: ``X.yaml`` with a name ``FILE_NAME`` allows
    (``stray_files`` names every other). Suites beside them are excluded: ``read_sources`` reads each of those as a
    suite, so an agreement saved under a suite's name is refused, not left out."""
    return [p for p in _named(root / AGREEMENTS, "*.yaml") if not p.name.endswith(SUITE_SUFFIX)]


def _passed_over(name: str) -> bool:
    """A hidden file that is no YAML (``.gitkeep``, an editor's swap file, ``.DS_Store``): no one's agreement."""
    return name.startswith(".") and not name.lower().endswith((".yaml", ".yml"))


def stray_files(root: Path) -> list[str]:
    """The names in the agreements folder that are neither an agreement (``X.yaml``, named as ``FILE_NAME`` allows)
    nor the suite of one beside it (``X.tests.yaml`` with ``X.yaml``): a ``.yml``, a ``.YAML``, a hidden
    ``.X.yaml``, a folder, a backup, a suite with no agreement (an agreement saved under a suite's name). Refused,
    never skipped: a stricter agreement saved under another name would otherwise leave a more permissive one
    deciding alone, without a word, and a hidden one read would decide where no reviewer listing the folder sees
    it. A suite beside its agreement is no stray, but it is not skipped either: ``read_sources`` reads it as a
    suite (``check_suite``), so an agreement saved as ``X.tests.yaml`` beside ``X.yaml`` is refused too. Hidden
    files that are no YAML (``_passed_over``) are no one's agreement and are passed over."""
    folder = root / AGREEMENTS
    if not folder.is_dir():
        return []
    names = {p.name for p in folder.iterdir()}
    return sorted(name for name in names if not _passed_over(name)
                  and (not FILE_NAME.fullmatch(name)
                       or (name.endswith(SUITE_SUFFIX) and name.removesuffix(SUITE_SUFFIX) + ".yaml" not in names)))


def suite_files(root: Path) -> list[Path]:
    """The test suites of a policy directory, in name order: ``X.tests.yaml`` with a name ``FILE_NAME`` allows."""
    return _named(root / AGREEMENTS, "*" + SUITE_SUFFIX)


def present(path: Path) -> bool:
    """Whether the folder names ``path`` at all: a link to nothing counts (it is a mistake to report)."""
    return path.is_symlink() or path.exists()


def _attempt(model: type[M], root: Path, relative: str, problems: list[str]) -> Doc[M] | None:
    problem = not_a_file(root / relative, root)
    if problem is not None:  # fail closed: only a regular file (or a link to one) is read
        problems.append(f"{relative}: {problem}")
        return None
    try:
        return read_doc(model, root, relative)
    except PolicyError as exc:
        problems.extend(exc.problems or [str(exc)])
        return None


def check_suite(root: Path, relative: str) -> tuple[str, ...] | None:
    """What is wrong with the suite ``relative`` beside its agreement, read as ``puente policy test`` reads it
    (the Suite model), a problem a line, or None. The loader reads every ``X.tests.yaml`` as a suite, never as an
    agreement: unchecked, an agreement saved under a suite's name would be left out without a word, a more
    permissive agreement deciding alone. A file with neither ``suite:`` nor ``cases:`` is named in one line; a
    suite with mistakes, by each one's line, as any policy file."""
    try:
        # Read first as an agreement may be written (its legal basis over lines), so that an agreement saved under a
        # suite's name is named as such; a suite is then read again as a suite is written.
        data, node = read_yaml(root / relative, relative, texts_of(Agreement), root)  # refuses a pipe, unopened
        if not (isinstance(data, dict) and ("suite" in data or "cases" in data)):
            return (f"{relative}:{line_of(node, ())}: not a test suite (no suite: or cases:); a file named "
                    f"X{SUITE_SUFFIX} is read as the suite of X.yaml, never as an agreement: if it is an agreement, "
                    "name it <name>.yaml",)
        read_doc(Suite, root, relative)
    except PolicyError as exc:
        return exc.problems or (str(exc),)
    return None


def read_sources(directory: Path | str | None = None) -> PolicySources:
    """Read every policy file; problems in any file are collected and raised as one PolicyError."""
    root = Path(directory) if directory is not None else DEFAULT_DIR
    if not root.is_dir():
        raise PolicyError(f"{root}: no such policy directory")
    problems: list[str] = []
    vocabulary = _attempt(Vocabulary, root, VOCABULARY, problems)
    partners = _attempt(PartnersFile, root, PARTNERS, problems)
    agreements = [_attempt(Agreement, root, f"{AGREEMENTS}/{p.name}", problems) for p in agreement_files(root)]
    strays = stray_files(root)
    problems.extend(f"{AGREEMENTS}/{one_line(name)}: not an agreement file (agreements are named X.yaml, X of "
                    f"letters, digits, _ . and - and not starting with a dot, their tests X{SUITE_SUFFIX} beside "
                    "them): rename it or move it out; an agreement under another name would be left out"
                    for name in strays)
    # Suites are checked when the policy loads, not only by ``puente policy test``: see ``check_suite``.
    problems.extend(problem for path in suite_files(root) if path.name not in strays
                    for problem in check_suite(root, f"{AGREEMENTS}/{path.name}") or ())
    # Optional: without it every area an agreement names lacks an outline, which the checks refuse.
    areas = _attempt(AreasFile, root, AREAS, problems) if present(root / AREAS) else None
    if not agreements:
        problems.append(f"{AGREEMENTS}/: no agreement files")
    if problems or vocabulary is None or partners is None:
        raise PolicyError(f"policy files in {root} do not validate:", problems=problems)
    return PolicySources(root, vocabulary, partners, tuple(a for a in agreements if a is not None), areas)
