"""Expand one agreement rule's field rules into the ordered list of changes a view makes.

Fields the rule does not name follow its ``others`` setting. With ``others:
drop`` (the default, so that a field added to the schema later is not
shared by accident) every content field that can be emptied is dropped;
required fields stay, since the view must still fit the schema. The
envelope (ids, times, markings) is kept unless a rule names a field of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policies._fields import CONTENT_ROOTS, FieldInfo, children, parent_path
from policies._model import Action, Cover, FieldRule

_DROP = FieldRule(action=Action.DROP)


@dataclass(frozen=True, slots=True)
class Planned:
    """One field change: the path, the rule, and whether the agreement named the field."""

    path: str
    rule: FieldRule
    named: bool


def _ancestors(path: str) -> list[str]:
    out = []
    parent = parent_path(path)
    while parent is not None:
        out.append(parent)
        parent = parent_path(parent)
    return out


def plan_fields(fields: Mapping[str, FieldInfo], cover: Cover) -> list[Planned]:
    """The changes for one alert type, ancestors before descendants, in schema order."""
    named = cover.fields
    above_named = {a for path in named for a in _ancestors(path)}
    kids = children(fields)
    out: list[Planned] = []

    def walk(path: str, mode: str) -> None:
        rule = named.get(path)
        if rule is not None:
            out.append(Planned(path, rule, True))
            if rule.action is not Action.KEEP:
                return  # rules below a changed field are moot; lint reports them as shadowed
            mode = "keep"
        elif path not in above_named:
            if mode == "keep":
                return
            if fields[path].droppable:
                out.append(Planned(path, _DROP, False))
                return
        for child in kids.get(path, ()):
            walk(child, mode)

    for root in (p for p in fields if parent_path(p) is None):
        walk(root, cover.others if root in CONTENT_ROOTS else "keep")
    return out


def shadowed(cover: Cover) -> list[tuple[str, str]]:
    """(path, ancestor) for each named field whose ancestor's rule already changes it."""
    out = []
    for path in cover.fields:
        for ancestor in _ancestors(path):
            rule = cover.fields.get(ancestor)
            if rule is not None and rule.action is not Action.KEEP:
                out.append((path, ancestor))
                break
    return out
