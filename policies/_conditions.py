"""An agreement's conditions (``when:``), compiled into small predicates.

Each predicate returns None when the alert meets it, or a short reason when
it does not. They only read the alert; a missing value fails the condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from policies._model import When


class PartnerLike(Protocol):
    @property
    def country(self) -> str: ...
    @property
    def watchlists(self) -> frozenset[str]: ...


Condition = Callable[[Mapping[str, Any], PartnerLike], "str | None"]


def _area(provinces: frozenset[str], sectors: frozenset[str]) -> Condition:
    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        loc = alert.get("location")
        if loc is None:
            return "the alert has no location, and the agreement covers only listed areas"
        province, sector = loc.get("province"), loc.get("border_sector")
        if province in provinces or sector in sectors:
            return None
        return f"province {province or '-'} / sector {sector or '-'} is outside the agreed area"

    return check


def _event_types(types: frozenset[str]) -> Condition:
    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        event = alert["payload"]["event_type"]
        return None if event in types else f"event type {event} is not among those agreed"

    return check


def _watchlist(levels: frozenset[str], own_list: bool) -> Condition:
    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        hit = alert["payload"]
        if hit["risk_level"] in levels:
            return None
        if own_list and (hit["list_owner"] == partner.country or hit["list_name"] in partner.watchlists):
            return None
        tail = " and the list is not the partner's own" if own_list else ""
        return f"risk {hit['risk_level']} is below the agreed levels{tail}"

    return check


def _categories(categories: frozenset[str]) -> Condition:
    def check(alert: Mapping[str, Any], partner: PartnerLike) -> str | None:
        found = [item["category"] for item in alert["payload"]["items"]]
        if any(c in categories for c in found):
            return None
        return f"seized categories {', '.join(found) or 'none'} are not among those agreed"

    return check


def compile_when(when: When) -> list[tuple[str, Condition]]:
    """(name, predicate) for each condition set; the name becomes part of the rule id."""
    out: list[tuple[str, Condition]] = []
    if when.area is not None:
        out.append(("area", _area(frozenset(when.area.provinces), frozenset(when.area.border_sectors))))
    if when.event_types is not None:
        out.append(("event_types", _event_types(frozenset(when.event_types))))
    if when.watchlist is not None:
        out.append(("watchlist", _watchlist(frozenset(when.watchlist.risk_levels), when.watchlist.or_own_list)))
    if when.categories is not None:
        out.append(("categories", _categories(frozenset(when.categories))))
    return out
