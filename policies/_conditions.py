"""An agreement's conditions (``when:``), compiled into small predicates.

Each predicate returns None when the alert meets it, or a short reason when
it does not. They only read the alert; a missing value fails the condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from policies._areas import Areas
from policies._excerpt import excerpt
from policies._model import When


class PartnerLike(Protocol):
    @property
    def country(self) -> str: ...
    @property
    def watchlists(self) -> frozenset[str]: ...
    @property
    def internal(self) -> bool: ...


Condition = Callable[[Mapping[str, Any], PartnerLike], "str | None"]
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _label(value: Any) -> str:
    # Reasons reach the audit log: quote a label only when it looks like a code.
    if value is None:
        return "-"
    return value if isinstance(value, str) and _CODE.fullmatch(value) else "(not a code)"


def _area(provinces: frozenset[str], sectors: frozenset[str], areas: Areas) -> Condition:
    # Reasons reach the audit: an area label is quoted only when the policy names it (an outline, or the agreement's
    # own list); any other, a code in form as it may be, is the agency's text (a name written as one).
    known = frozenset(areas.outlines) | provinces | sectors

    def shown(label: Any) -> str:
        return "-" if label is None else label if label in known else "(an area the policy does not know)"

    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        loc = alert.get("location")
        if loc is None:
            return "the alert has no location, and the agreement covers only listed areas"
        province, sector = loc.get("province"), loc.get("border_sector")
        if province not in provinces and sector not in sectors:
            return f"province {shown(province)} / sector {shown(sector)} is outside the agreed area"
        lat, lon = loc.get("latitude"), loc.get("longitude")
        if lat is None and lon is None:
            # No position: the labels decide alone, so they must agree with each other. An agreed one
            # beside one whose outline it does not meet (province DARIEN with the Paso Canoas sector),
            # or beside one no outline can check, contradicts itself: no match.
            if province is not None and sector is not None:
                meet = areas.meet(province, sector)
                if meet is None:
                    return (f"province {shown(province)} / sector {shown(sector)}: one has no outline, so the "
                            "labels cannot be checked against each other, and the alert has no position")
                if not meet:
                    return (f"province {shown(province)} and sector {shown(sector)} do not meet: the labels "
                            "contradict each other, and the alert has no position to settle it")
            return None
        if not (_degrees(lat, 90) and _degrees(lon, 180)):
            return "the alert's position is incomplete or out of range, so its area cannot be confirmed"
        # Every label must agree with the position: one that contradicts it, or that no outline
        # lets the position confirm (never an agreed one: loading refuses those), withholds.
        for kind, label in (("province", province), ("border sector", sector)):
            if label is None:
                continue
            inside = areas.contains(label, lat, lon)
            if inside is None:
                return f"{kind} {shown(label)} has no outline, so the position cannot confirm it"
            if not inside:
                # Never the position itself, even rounded: reasons reach the audit, and a place is the alert's
                # content, not the policy's.
                return f"the position is outside {kind} {shown(label)}: the coordinates disagree with the label"
        return None

    return check


def _degrees(value: Any, limit: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -limit <= value <= limit  # NaN fails


def _event_types(types: frozenset[str]) -> Condition:
    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        event = alert["payload"]["event_type"]
        return None if event in types else f"event type {_label(event)} is not among those agreed"

    return check


def _watchlist(levels: frozenset[str], own_list: bool, keepers: Mapping[str, str]) -> Condition:
    """A hit at one of ``levels``, or (``own_list``) on a list a foreign partner itself keeps: one its
    ``watchlists`` name, that the vocabulary names as kept by the partner's country (``keepers``, its
    ``owners.lists`` for the alert type), and whose keeper the publishing agency gives as the partner's
    country (``list_owner``). All three, because none alone says it: two partners of one country keep
    their own lists, partners.yaml is another file than the agreement, edited by others, and an agency's
    ``list_owner`` is its own text: a partner naming INTERPOL's list, or Panama's, must not widen "high
    and critical only" to every hit on it, even on a hit whose agency names the partner's country. Never an
    internal partner: its country is the home country (and a foreign partner's never is: ``_check``), the
    keeper every list defaults to, so its claim would widen the clause to every hit on Panama's lists;
    loading refuses such a claim as well (``_check``)."""

    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        hit = alert["payload"]
        if hit["risk_level"] in levels:
            return None
        if own_list and not partner.internal:
            name = hit["list_name"]
            if (name in partner.watchlists and keepers.get(name) == partner.country
                    and hit.get("list_owner") == partner.country):
                return None
        tail = " and the list is not the partner's own" if own_list else ""
        return f"risk {_label(hit['risk_level'])} is below the agreed levels{tail}"

    return check


def _categories(categories: frozenset[str]) -> Condition:
    """Every seized item's category must be agreed: the view keeps the items whole, so one agreed item
    must not carry the others (a token kilo of drugs beside ammunition the agreement excludes)."""

    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        found = [item["category"] for item in alert["payload"]["items"]]
        if not found:
            return "no seized item names a category among those agreed"
        others = list(dict.fromkeys(c for c in found if c not in categories))
        if not others:
            return None
        return f"seized categories {', '.join(excerpt(c) for c in others)} are not among those agreed"

    return check


def compile_when(when: When, areas: Areas, keepers: Mapping[str, str]) -> list[tuple[str, Condition]]:
    """(name, predicate) for each condition set; the name becomes part of the rule id. ``keepers`` are the keepers
    of the lists the alert type may name (the vocabulary's ``owners.lists``), for the own-list clause.

    An area holds an alert with an agreed label and, when the alert has a
    position, whose position lies inside the outline of every label it carries;
    without a position the labels decide alone.
    """
    out: list[tuple[str, Condition]] = []
    if when.area is not None:
        out.append(("area", _area(frozenset(when.area.provinces), frozenset(when.area.border_sectors), areas)))
    if when.event_types is not None:
        out.append(("event_types", _event_types(frozenset(when.event_types))))
    if when.watchlist is not None:
        out.append(("watchlist", _watchlist(frozenset(when.watchlist.risk_levels), when.watchlist.or_own_list,
                                            keepers)))
    if when.categories is not None:
        out.append(("categories", _categories(frozenset(when.categories))))
    return out
