"""Expand one agreement rule's field rules into the ordered list of changes a view makes.

A view is an allow-list over the whole record: a field reaches the partner
only when the agreement rule names it (``keep`` on a record or an array keeps
what it held in the schema release the policy was reviewed against,
``reviewed_schema``) or the policy-wide envelope rule keeps it. Every other
field is dropped, so that a field added to the schema later is never shared by
accident, even under a record an agreement keeps whole: a nullable field
becomes None, an array [], and a required field the schema-valid value that
says nothing (``FieldInfo.empty``); a required record
stays, with each of its own fields dropped in turn.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from policies._fields import FieldInfo, children, parent_path
from policies._model import Action, Cover, FieldRule

_DROP = FieldRule(action=Action.DROP)


@dataclass(frozen=True, slots=True)
class Planned:
    """One field change: the path, the rule, and whether the agreement named the field."""

    path: str
    rule: FieldRule
    named: bool
    unreviewed: bool = False  # dropped although a record that holds it is kept: newer than the reviewed release


def ancestors(path: str) -> list[str]:
    """The fields that hold ``path``, nearest first: ``a.b[].c`` -> ``a.b``, ``a``."""
    out = []
    parent = parent_path(path)
    while parent is not None:
        out.append(parent)
        parent = parent_path(parent)
    return out


def plan_fields(fields: Mapping[str, FieldInfo], cover: Cover, envelope: Collection[str],
                reviewed: Collection[str] | None) -> list[Planned]:
    """The changes for one alert type, ancestors before descendants, in schema order.

    Fields nothing names are planned as unnamed drops, even one that has no empty value
    (a required enum without a default): ``_check`` refuses such a plan at load. ``reviewed``
    holds the alert type's field paths in the release the policy was reviewed against: a
    ``keep`` on a record keeps only those below it, at any depth, and a newer field there is planned as an
    unnamed drop (``Planned.unreviewed``) until a rule names it or the policy names a release
    holding it. None only where every kept field is named (the recall notice).
    """
    named = cover.fields
    above = {a for path in (*named, *envelope) for a in ancestors(path)}
    # Fields holding a field the reviewed release lacks, at any depth: keeping one keeps only what was reviewed.
    stale = set() if reviewed is None else {a for path in fields if path not in reviewed for a in ancestors(path)}
    kids = children(fields)
    out: list[Planned] = []

    def walk(path: str, kept: bool) -> None:
        rule = named.get(path)
        if rule is not None:
            out.append(Planned(path, rule, True))
            if rule.action is not Action.KEEP:
                return  # rules below a changed field never apply; loading refuses them (``shadowed``)
            kept = True
        elif path in envelope:
            kept = True
        elif path not in above:
            newer = kept and reviewed is not None and path not in reviewed
            if kept and not newer:
                if path not in stale:
                    return  # kept with what holds it, and no rule below or newer field under it
                # reviewed, but something newer is under it: keep it and look further down
            else:
                info = fields[path]
                if info.kind != "record" or info.nullable:
                    out.append(Planned(path, _DROP, False, newer))
                    return
        for child in kids.get(path, ()):  # a required record nothing keeps: drop its fields one by one
            walk(child, kept)

    for root in (p for p in fields if parent_path(p) is None):
        walk(root, False)
    return out


def shadowed(cover: Cover) -> list[tuple[str, str]]:
    """(path, ancestor) for each named field whose ancestor's rule already changes it."""
    out = []
    for path in cover.fields:
        for ancestor in ancestors(path):
            rule = cover.fields.get(ancestor)
            if rule is not None and rule.action is not Action.KEEP:
                out.append((path, ancestor))
                break
    return out
