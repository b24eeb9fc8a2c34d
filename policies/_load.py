"""Load a policy directory: read, validate, cross-check against the alert schema, compile."""

from __future__ import annotations

from pathlib import Path

import schemas
from policies._areas import Areas, AreasFile, compile_areas
from policies._check import check_sources
from policies._compile import PolicySet, compile_policy
from policies._fields import schema_fields as schema_fields  # named here too: _lint, _suite and tests look it up
from policies._fields import schema_releases as schema_releases  # in this module (tests replace it here)
from policies._source import AREAS, DEFAULT_DIR, present, read_doc, read_sources
from policies._yamlio import not_a_file
from puente.errors import PolicyError


def load_policy_set(directory: Path | str | None = None) -> PolicySet:
    """The compiled policy set of ``directory`` (default: the shipped ``policies/data``).

    Raises PolicyError, naming file and line, for any file that does not
    validate and for any name that refers to nothing.
    """
    sources = read_sources(directory)
    fields = schema_fields()
    releases = schema_releases()
    problems = check_sources(sources, fields, releases)
    if problems:
        raise PolicyError(f"policy in {sources.root} has {len(problems)} problem(s):", problems=map(str, problems))
    return compile_policy(sources, fields, schemas.current(schemas.ALERT).fingerprint, releases)


def load_areas(directory: Path | str | None = None) -> Areas:
    """The area outlines of ``directory`` (default: the shipped ``policies/data``), for adapters and tools.

    A directory without ``areas.yaml`` has no outlines (``contains`` answers
    None). Raises PolicyError, naming file and line, when the file does not validate, and naming the file
    when it is no regular file: a link to nothing, or to a folder, is refused as ``load_policy_set`` refuses it.
    """
    root = Path(directory) if directory is not None else DEFAULT_DIR
    if not root.is_dir():
        raise PolicyError(f"{root}: no such policy directory")
    if not present(root / AREAS):
        return compile_areas(None)
    if (problem := not_a_file(root / AREAS, root)) is not None:  # a link to nothing is a mistake, not "no outlines"
        raise PolicyError(f"{root / AREAS}: {problem}")
    return compile_areas(read_doc(AreasFile, root, AREAS).model)
