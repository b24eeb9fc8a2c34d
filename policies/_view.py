"""Apply a decision: the partner's view of an alert, still valid against the alert schema.

Field rules are compiled once, at load, into small closures over the path
they change; building a view runs them in order on a copy of the alert that copies
only what the rules change.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from policies._decision import Decision, Outcome
from policies._fields import FieldInfo
from policies._model import Action, FieldRule, ViewSettings
from puente.errors import PolicyError

if TYPE_CHECKING:
    from policies._compile import PolicySet

MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class ViewContext:
    """What a field change may need besides the value: the pseudonym key and the partner."""

    key: bytes
    partner_id: str
    settings: ViewSettings


Record = dict[str, Any]
Step = Callable[[Record, ViewContext], None]
Leaf = Callable[[Record, str, ViewContext], None]


def _normal(value: str) -> str:
    # Values that differ only in case, accents or spacing are the same value for correlation.
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def pseudonym(value: str, domain: str, ctx: ViewContext) -> str:
    """Keyed HMAC-SHA256 of the normalised value, per partner and domain, as truncated base32.

    The partner id is in the MAC input so that two partners cannot join
    their feeds on pseudonyms; the domain lets one value (a surname, a
    passport number) get the same pseudonym wherever it appears.
    """
    msg = f"{ctx.partner_id}\x1f{domain}\x1f{_normal(value)}".encode()
    length = ctx.settings.pseudonym_length
    # Base32 turns each 5 bytes into 8 characters on their own: encode only the bytes shown.
    digest = _hmac_sha256(ctx.key, msg)[: min(32, 5 * -(-length // 8))]
    text = base64.b32encode(digest).decode("ascii").lower()
    return ctx.settings.pseudonym_prefix + text[:length]


_PADS_LIMIT = 64
_pads: dict[bytes, tuple[Any, Any]] = {}


def _hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) from the key's inner and outer pads, hashed once per key (a view
    pseudonymises several values under one agreement's key; ``hmac.digest`` sets the key up
    again for each)."""
    pads = _pads.get(key)
    if pads is None:
        raw = hashlib.sha256(key).digest() if len(key) > 64 else key
        raw = raw.ljust(64, b"\0")
        if len(_pads) >= _PADS_LIMIT:
            _pads.clear()
        pads = _pads[key] = (hashlib.sha256(raw.translate(_TRANS_36)), hashlib.sha256(raw.translate(_TRANS_5C)))
    inner = pads[0].copy()
    inner.update(msg)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()


_TRANS_36 = bytes(x ^ 0x36 for x in range(256))
_TRANS_5C = bytes(x ^ 0x5C for x in range(256))


def _drop(info: FieldInfo) -> Leaf:
    empty: Callable[[], Any] = list if info.kind == "array" else type(None)

    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        rec[name] = empty()

    return leaf


def _textual(each: Callable[[str, ViewContext], str]) -> Leaf:
    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        value = rec.get(name)
        if isinstance(value, str):
            rec[name] = each(value, ctx)
        elif isinstance(value, list):
            rec[name] = [each(v, ctx) if isinstance(v, str) else v for v in value]

    return leaf


def _grid(step: float) -> Leaf:
    decimals = max(0, len(f"{step:.10f}".rstrip("0").split(".")[1]))

    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        value = rec.get(name)
        if isinstance(value, (int, float)):
            rec[name] = round(round(value / step) * step, decimals)

    return leaf


def _birth_year(rec: Record, name: str, ctx: ViewContext) -> None:
    value = rec.get(name)
    if isinstance(value, date):
        rec["birth_year"] = value.year
    rec[name] = None


def _truncate(to: str) -> Leaf:
    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        value = rec.get(name)
        if isinstance(value, datetime):
            value = value.replace(minute=0, second=0, microsecond=0)
            rec[name] = value.replace(hour=0) if to == "day" else value

    return leaf


def _leaf(info: FieldInfo, rule: FieldRule, settings: ViewSettings) -> Leaf | None:
    action = rule.action
    if action is Action.KEEP:
        return None
    if action is Action.DROP:
        return _drop(info)
    if action is Action.MASK:
        return _textual(lambda value, ctx: ctx.settings.mask)
    if action is Action.PSEUDONYMISE:
        domain = rule.domain or info.path.rsplit(".", 1)[-1]
        return _textual(lambda value, ctx: pseudonym(value, domain, ctx))
    if info.kind == "date":
        return _birth_year
    if info.kind == "timestamp":
        return _truncate(rule.to or "hour")
    return _grid(rule.grid or settings.grid)


def _walk(segments: list[str], leaf: Leaf) -> Step:
    """A step that follows ``segments`` (``name[]`` goes into each item) and applies ``leaf`` at the end.

    Copy on write: every dict or list on the way down is copied before the leaf changes it,
    so the view shares only the parts no rule touches with the alert, and the alert itself is
    never changed. (Leaves replace values; they never change one in place.)
    """
    head = segments[0]
    if len(segments) == 1:
        return lambda rec, ctx: leaf(rec, head, ctx)
    inner = _walk(segments[1:], leaf)
    if head.endswith("[]"):
        name = head[:-2]

        def each(rec: Record, ctx: ViewContext) -> None:
            items = rec.get(name)
            if items:
                copied = [dict(item) if type(item) is dict else item for item in items]
                rec[name] = copied
                for item in copied:
                    if item is not None:
                        inner(item, ctx)

        return each

    def into(rec: Record, ctx: ViewContext) -> None:
        sub = rec.get(head)
        if sub is not None:
            if type(sub) is dict:
                sub = rec[head] = dict(sub)
            inner(sub, ctx)

    return into


def compile_step(info: FieldInfo, rule: FieldRule, settings: ViewSettings) -> Step | None:
    """The view step for one field rule, or None when it changes nothing (keep)."""
    leaf = _leaf(info, rule, settings)
    return None if leaf is None else _walk(info.path.split("."), leaf)


def build_view(
    alert: Mapping[str, Any], decision: Decision, policy_set: PolicySet, pseudonym_key: bytes
) -> dict[str, Any]:
    """The partner's view of ``alert`` under ``decision``: a new dict; the alert is not changed.

    Asking for the view of a withheld alert, or with a decision from another
    policy set or for another alert type, is a programming error and raises
    PolicyError: a view is only ever built for a delivery.
    """
    if decision.outcome is Outcome.WITHHOLD:
        raise PolicyError("a withheld alert has no partner view")
    if decision.policy_version != policy_set.version:
        raise PolicyError(f"decision made under policy {decision.policy_version}, not {policy_set.version}")
    if not isinstance(pseudonym_key, bytes) or len(pseudonym_key) < MIN_KEY_BYTES:
        raise PolicyError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    covers = [policy_set.covers[r] for r in decision.rule_ids if r in policy_set.covers]
    if not covers:
        raise PolicyError("the decision names no agreement rule of this policy set")
    alert_type = alert.get("alert_type")
    for cover in covers:
        if cover.alert_type != alert_type:
            raise PolicyError(f"decision is for {cover.alert_type} alerts, not {alert_type}")
    ctx = ViewContext(pseudonym_key, decision.partner_id, policy_set.view_settings)
    view = dict(alert)  # the steps copy what they change below the top level
    for cover in covers:  # several agreements in force: each one's changes apply, the strictest prevails
        for step in cover.steps:
            step(view, ctx)
    return view
