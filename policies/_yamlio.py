"""Read YAML with its node tree, so that an error can name the file and the line.

PyYAML's safe loader silently keeps the last of two equal keys; in a policy
file that would let a second ``payload.person.surnames: keep`` undo a
``drop`` above it, so duplicate keys are refused here.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from puente.errors import PolicyError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""

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


def read_yaml(path: Path, label: str) -> tuple[Any, Node | None]:
    """The data of one YAML file and its node tree; any problem raises PolicyError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        raise PolicyError(f"{where}: {exc.problem or exc.context or 'invalid YAML'}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{label}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return data, node


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
