"""Apply a decision: the partner's view of an alert, still valid against the alert schema.

Field rules are compiled once, at load, into small closures over the path
they change; building a view runs them in order on a copy of the alert that copies
only what the rules change.

Every change is total: a value a rule cannot apply to (a string where a number
belongs, a coordinate that is NaN or infinite, a number in a masked field)
takes the field's empty value rather than passing through as it came, so a
malformed alert fails closed. Whatever the alert holds, ``build_view`` raises
nothing but PolicyError.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from policies._decision import Decision, Outcome, day_of
from policies._fields import FieldInfo, children, parent_path
from policies._model import Action, FieldRule, ViewSettings
from puente.errors import PolicyError
from puente.strict import unaccented

if TYPE_CHECKING:
    from policies._compile import CompiledCover, PolicySet

MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class ViewContext:
    """What a field change may need besides the value: the pseudonym key, the partner and the alert's
    pseudonym space (``pseudonym``)."""

    key: bytes | None  # None: the agreement pseudonymises nothing, and was given no key
    partner_id: str
    settings: ViewSettings
    space: str = ""  # "": the home country's alerts; else the country that originated the alert


Record = dict[str, Any]
Step = Callable[[Record, ViewContext], None]
Leaf = Callable[[Record, str, ViewContext], None]


def _normal(value: str) -> str:
    # Values that differ only in case, accents or spacing are the same value for correlation.
    return " ".join(unaccented(value).casefold().split())


def pseudonym(value: str, domain: str, ctx: ViewContext) -> str:
    """Keyed HMAC-SHA256 of the normalised value, per partner, domain and space, as truncated base32.

    The partner id is in the MAC input so that two partners cannot join
    their feeds on pseudonyms; the domain lets one value (a surname, a
    passport number) get the same pseudonym wherever it appears in the
    alerts of one originating country.

    The space keeps apart what the originators chose: the home country's alerts
    take the domain as it is, a foreign originator's (Colombia's, relayed by
    COMBIFRON) the domain qualified by that country (``person_name@COL``, which
    no rule can name: a domain is a code, without ``@``). A foreign country
    chooses the values of its own alerts, and knows them, as does any partner
    it tells them to; in a shared space each such alert it receives back, or
    has consented to another partner, would be a table of value -> pseudonym
    that names the same people in Panama's pseudonymised alerts.
    """
    if ctx.space:
        domain = f"{domain}@{ctx.space}"
    # surrogatepass: a lone surrogate (which no valid text holds) gets a pseudonym too, instead of
    # raising; every other string encodes exactly as in strict UTF-8.
    msg = f"{ctx.partner_id}\x1f{domain}\x1f{_normal(value)}".encode("utf-8", "surrogatepass")
    if ctx.key is None:  # (never: a key is asked for every agreement with a pseudonymise rule)
        raise PolicyError("a pseudonym was asked for under an agreement given no pseudonym key")
    length = ctx.settings.pseudonym_length
    # Base32 turns each 5 bytes into 8 characters on their own: encode only the bytes shown.
    digest = _hmac_sha256(ctx.key, msg)[: min(32, 5 * -(-length // 8))]
    text = base64.b32encode(digest).decode("ascii").lower()
    return ctx.settings.pseudonym_prefix + text[:length]


REFERENCE_PREFIX = "ref-"
REFERENCE_BYTES = 16  # 128 bits, as hex: two alerts' references meet by chance about once in 2**64 pairs


def alert_reference(key: bytes, partner_id: str, alert_id: str) -> str:
    """The id by which ``partner_id`` knows alert ``alert_id``: a keyed HMAC-SHA256 of the two, as
    ``ref-`` and 32 hex digits (hex, not base32, which Python encodes at a cost each delivery would pay).

    An agency's own id is its source system's reference (``SENAFRONT:IP-BOC-2026-000014``): it names
    the publishing agency, the unit that wrote the report and its place in the unit's series, which
    the envelope keeps from every partner and an agreement may drop. A partner's view, its feed's key
    and headers, its receipts and its recall notices all name the alert by this reference instead:
    the same for every version of the alert (corrections and recalls find what the partner holds),
    different for each partner (two partners cannot join their feeds on it), and without the key
    neither guessed from a guessable id nor turned back into one. The broker records each in the
    audit, so Panama's auditors can tell which alert a partner's receipt names.

    The message starts with a zero byte, which no pseudonym's (``pseudonym``: a partner id first) does,
    so that one key may serve both without one output standing for the other.
    """
    msg = b"\0alert\x1f" + partner_id.encode("utf-8", "surrogatepass") + b"\x1f" + alert_id.encode(
        "utf-8", "surrogatepass")
    return REFERENCE_PREFIX + _hmac_sha256(key, msg)[:REFERENCE_BYTES].hex()


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
    if info.kind == "array" and not info.nullable:

        def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
            rec[name] = []  # a new list per view: views must not share a mutable value

        return leaf
    empty = info.empty()  # None, or an immutable "", 0, epoch or enum default

    def constant(rec: Record, name: str, ctx: ViewContext) -> None:
        rec[name] = empty

    return constant


def _textual(info: FieldInfo, each: Callable[[str, ViewContext], str]) -> Leaf:
    """Mask or pseudonymise a string, or each string of an array; anything else is emptied."""

    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        value = rec.get(name)
        if type(value) is str:
            rec[name] = each(value, ctx)
        elif type(value) is list and all(type(v) is str for v in value):
            rec[name] = [each(v, ctx) for v in value]
        elif value is not None:
            rec[name] = info.empty()  # not text: nothing to hide it behind, so nothing is shown

    return leaf


_NANO = 1_000_000_000  # ``_grid``'s unit: a billionth (of a degree, for a coordinate)


def _grid(info: FieldInfo, step: float) -> Leaf:
    """Put a number in its grid cell: the multiple of ``step`` at or below it (7.869 on 0.01 is 7.86, -77.461 is
    -77.47), as a time is cut to its hour. From below, not to the nearest: cells of the nearest multiple do not
    nest (the 0.01 cell of 7.75 straddles two 0.1 cells), so two versions on two grids of the ladder (``GRIDS``)
    would pin a value to half the finer cell. A value that is not a finite number, or whose cell is not one (NaN,
    infinity, an int too large for a float), is emptied: raising would crash the worker, and passing it through
    would show what the rule hides."""
    decimals = max(0, len(f"{step:.10f}".rstrip("0").split(".")[1]))
    units = round(step * _NANO)  # the grid in billionths, exactly: every grid of the ladder divides the coarser ones
    empty = info.empty()

    def snap(value: Any) -> Any:
        if type(value) not in (float, int):
            return empty
        try:
            # In whole billionths, the one rounding every grid shares (7.86 is 7860000000, not the float error of
            # 7.86 * 100): the cell is then an exact integer floor, the same edges on every grid, so a value's
            # cell on a finer grid always lies inside its cell on a coarser one, however many decimals it has.
            cell = round(value * _NANO) // units * units
            rounded = round(cell / _NANO, decimals)
        except (OverflowError, ValueError):
            return empty
        return rounded if math.isfinite(rounded) else empty

    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        value = rec.get(name)
        if value is not None:
            rec[name] = snap(value)

    return leaf


def _birth_year(rec: Record, name: str, ctx: ViewContext) -> None:
    value = rec.get(name)
    if isinstance(value, date):
        rec["birth_year"] = value.year
    rec[name] = None


def _truncate(info: FieldInfo, to: str) -> Leaf:
    """Truncate a timestamp to the hour or the day; a value that is not one is emptied."""
    empty = info.empty()

    def leaf(rec: Record, name: str, ctx: ViewContext) -> None:
        value = rec.get(name)
        if isinstance(value, datetime):
            value = value.replace(minute=0, second=0, microsecond=0)
            rec[name] = value.replace(hour=0) if to == "day" else value
        elif value is not None:
            rec[name] = empty

    return leaf


def grid_of(info: FieldInfo, rule: FieldRule, settings: ViewSettings) -> float | None:
    """The grid ``rule`` rounds its field to (a number generalised), or None for any other rule."""
    if rule.action is not Action.GENERALISE or info.kind in ("date", "timestamp"):
        return None
    return rule.grid or settings.grid


def _leaf(info: FieldInfo, rule: FieldRule, settings: ViewSettings) -> Leaf | None:
    action = rule.action
    if action is Action.KEEP:
        return None
    if action is Action.DROP:
        return _drop(info)
    if action is Action.MASK:
        return _textual(info, lambda value, ctx: ctx.settings.mask)
    if action is Action.PSEUDONYMISE:
        domain = rule.domain or info.path.rsplit(".", 1)[-1]
        return _textual(info, lambda value, ctx: pseudonym(value, domain, ctx))
    if info.kind == "date":
        return _birth_year
    if info.kind == "timestamp":
        return _truncate(info, rule.to or "hour")
    return _grid(info, grid_of(info, rule, settings) or settings.grid)


def _walk(segments: list[str], leaf: Leaf) -> Step:
    """A step that follows ``segments`` (``name[]`` goes into each item) and applies ``leaf`` at the end.

    Copy on write: every dict or list on the way down is copied before the leaf changes it,
    so the view shares only the parts no rule touches with the alert, and the alert itself is
    never changed. (Leaves replace values; they never change one in place.) Something other
    than a dict where the schema has a record, or a list where it has an array, raises
    TypeError (``build_view`` makes it a PolicyError): no view is better than a guessed one.
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
                if not isinstance(items, list):
                    raise TypeError("an array holds something other than a list")
                copied = [_copy(item) for item in items]
                rec[name] = copied
                for item in copied:
                    inner(item, ctx)

        return each

    def into(rec: Record, ctx: ViewContext) -> None:
        sub = rec.get(head)
        if sub is not None:
            sub = rec[head] = _copy(sub)
            inner(sub, ctx)

    return into


def _copy(value: Any) -> Record:
    # Any mapping, a dict subclass included, is copied into a plain dict: changing the caller's own
    # object in place would change the alert (and every other view that shares it).
    if isinstance(value, dict):
        return dict(value)
    raise TypeError("a record holds something other than a dict")


def compile_step(info: FieldInfo, rule: FieldRule, settings: ViewSettings) -> Step | None:
    """The view step for one field rule, or None when it changes nothing (keep)."""
    leaf = _leaf(info, rule, settings)
    return None if leaf is None else _walk(info.path.split("."), leaf)


Fits = Callable[[Mapping[Any, Any]], bool]
"""Whether a record holds only keys its schema names, at every depth, with a record (a plain dict) or an array of
records (a list of plain dicts) wherever the schema has one, an array (a list) of values wherever it has an array,
and a value (text, a number, a date or time, a flag or None) wherever it has a field: what ``build_view`` lets
through, as an allow-list of shapes. Whether a value suits its field is the codec's to check: a step empties a
value it cannot apply to, and the codec refuses a view that does not fit the schema. A dict subclass is refused:
its own ``__iter__`` or ``keys`` could show the check other keys than a copy takes."""

# The types a decoded field holds (the codec's, and what the adapters build): never a container.
_VALUES = frozenset({str, int, float, bool, type(None), date, datetime})


def compile_fits(fields: Mapping[str, FieldInfo]) -> Fits:
    """The allow-list of an alert of the type whose fields are ``fields`` (its payload the type's own branch)."""
    kids = children(fields)

    def fits(paths: list[str]) -> Fits:
        keys = frozenset(p.rsplit(".", 1)[-1] for p in paths)
        plain, lists, records, arrays = [], [], [], []
        for path in paths:
            info, name = fields[path], path.rsplit(".", 1)[-1]
            if info.kind == "record":
                records.append((name, fits(kids.get(path, []))))
            elif info.kind == "array" and info.items == "record":
                arrays.append((name, fits(kids.get(path, []))))
            elif info.kind == "array":
                lists.append(name)
            else:
                plain.append(name)
        values, nested, of_values, of_records = tuple(plain), tuple(records), tuple(lists), tuple(arrays)
        if not nested and not of_values and not of_records:
            def leaf(rec: Mapping[Any, Any]) -> bool:  # a record of plain fields: every value it holds is one
                return type(rec) is dict and keys.issuperset(rec) and _VALUES.issuperset(map(type, rec.values()))

            return leaf

        def check(rec: Mapping[Any, Any]) -> bool:
            # The common case in C: the keys, and the types of the plain fields (a missing one reads as None).
            if type(rec) is not dict or not keys.issuperset(rec) or not _VALUES.issuperset(
                    map(type, map(rec.get, values))):
                return False
            for name in of_values:
                items = rec.get(name)
                if items is not None and (type(items) is not list or not _VALUES.issuperset(map(type, items))):
                    return False
            for name, sub in nested:
                value = rec.get(name)
                if value is not None and not sub(value):
                    return False
            for name, sub in of_records:
                items = rec.get(name)
                if items is not None and (type(items) is not list or not all(map(sub, items))):
                    return False
            return True

        return check

    return fits([p for p in fields if parent_path(p) is None])


_DERIVED_TIMES = ("review_at", "expires_at")  # markings an adapter sets from the event's own time
STATED_HANDLING = "H3"  # the handling code whose restriction handling_text states (vocabulary.yaml)

PseudonymKeys = Callable[[str], bytes]
"""agreement id -> that agreement's pseudonym key (raising when it has none)."""


def build_view(
    alert: Mapping[str, Any], decision: Decision, policy_set: PolicySet, pseudonym_key: bytes | PseudonymKeys
) -> dict[str, Any]:
    """The partner's view of ``alert`` under ``decision``: a new dict; the alert is not changed.

    ``pseudonym_key``: each agreement's values are pseudonymised under that agreement's own key,
    given by agreement id, and asked for only for agreements whose rules pseudonymise (one key for
    all, as bytes, is for tests and tools). Pseudonyms then do not change with which other
    agreements happen to be in force (where several apply, a field takes one pseudonym, under the
    key of the agreement the decision names: ``chosen``), and a missing key withholds only where it
    is needed.

    Asking for the view of a withheld alert, or with a decision from another
    policy set or for another alert type, is a programming error and raises
    PolicyError: a view is only ever built for a delivery. An alert that does
    not have the shape of the schema raises PolicyError too, naming the kind of
    fault only: the message of the error underneath may quote alert content. So
    does one holding a key its type's schema lacks, at any depth, or another
    type's payload: a view is an allow-list, never a copy of whatever came.
    """
    if decision.outcome is Outcome.WITHHOLD:
        raise PolicyError("a withheld alert has no partner view")
    if decision.policy_version != policy_set.version:
        raise PolicyError(f"decision made under policy {decision.policy_version}, not {policy_set.version}")
    covers = [policy_set.covers[r] for r in decision.rule_ids if r in policy_set.covers]
    if not covers:
        raise PolicyError("the decision names no agreement rule of this policy set")
    selected = chosen(covers, decision.agreement_id)
    keys = {}
    # Only the keys of the pseudonyms that run: another agreement in force that would pseudonymise a field, where
    # the named one's pseudonym or a stricter change runs, needs none (and its missing key withholds nothing).
    for agreement in dict.fromkeys(c.agreement.id for c, i in selected
                                   if c.redactions[i].action == Action.PSEUDONYMISE.value):
        key = pseudonym_key if isinstance(pseudonym_key, bytes) else pseudonym_key(agreement)
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise PolicyError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
        keys[agreement] = key
    try:
        return _apply(alert, decision, covers, selected, policy_set, keys)
    except PolicyError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything an alert can cause; KeyboardInterrupt is not one
        fault = type(exc).__name__
        raise PolicyError(f"no view: the alert is malformed ({fault}); nothing is released until it is fixed") from None


def _apply(
    alert: Mapping[str, Any], decision: Decision, covers: list[CompiledCover],
    selected: list[tuple[CompiledCover, int]], policy_set: PolicySet, keys: Mapping[str, bytes],
) -> dict[str, Any]:
    alert_type = alert.get("alert_type")
    for cover in covers:
        if cover.alert_type != alert_type:
            shown = alert_type if alert_type in policy_set.alert_types else "an alert of an unknown type"
            raise PolicyError(f"decision is for {cover.alert_type} alerts, not {shown}")
    # An allow-list: an alert holding a key its type's schema lacks, or another type's payload, has no view
    # (the codec never decodes one; a dict built elsewhere might hold anything). Checked, not filtered: what
    # passes is copied as it is, so a view costs no more than the changes its rules make.
    if not covers[0].fits(alert):
        raise PolicyError(f"no view: the alert holds fields the {alert_type} schema lacks, or is not shaped as a "
                          f"{alert_type} alert; nothing is released until it is fixed")
    space = _space(alert, policy_set) if keys else ""
    view = dict(alert)  # the steps copy what they change below the top level
    contexts = {cover.agreement.id: ViewContext(keys.get(cover.agreement.id), decision.partner_id,
                                                policy_set.view_settings, space) for cover in covers}
    for cover, i in selected:  # several in force: each field's strictest change (``chosen``)
        cover.steps[i](view, contexts[cover.agreement.id])
    markings = view.get("markings")
    if isinstance(markings, dict):
        # The review and expiry times an adapter derives from the event's time, stated to the day, so that no
        # partner reads the event's time back from them (``day_of``); every view, whatever its rules.
        view["markings"] = markings = {**markings, **{name: day_of(value) for name in _DERIVED_TIMES
                                                      if isinstance(value := markings.get(name), datetime)}}
    if isinstance(markings, dict) and markings.get("handling_text") is not None \
            and markings.get("handling_code") != STATED_HANDLING:
        # The envelope keeps handling_text as the H3 restriction in words. Under any other code it restricts
        # nothing a partner honours, and is free text no agreement redacts (one that drops the summary because
        # it may name people would still pass it): the view holds none. (The adapters write it only with H3,
        # and the broker dead-letters an alert that holds it with another code.)
        view["markings"] = markings = {**markings, "handling_text": None}
    if not decision.onward_sharing and isinstance(markings, dict):
        # The agreement forbids passing it on (or the release rests on the originator's consent, which reaches
        # this partner and no further, or the information is a third country's, which goes further only on that
        # country's consent): the view says so in the marking partners already honour, releasable to
        # this partner alone. The release only tightens: whatever the originator's list allowed (countries,
        # several partners, or [] for anyone inside Panama), it now names the one recipient.
        view["markings"] = markings = {**markings, "releasable_to": [decision.partner_id]}
    # Consent is given per partner: a partner reads whether it has the originator's consent, never to which
    # other partners the originator gave it (that would tell it who else receives the alert).
    if isinstance(markings, dict) and _others(markings.get("originator_consent"), decision.partner_id):
        view["markings"] = {**markings, "originator_consent": _own(markings["originator_consent"],
                                                                   decision.partner_id)}
    life = view.get("lifecycle")
    if isinstance(life, dict) and life.get("action") == _CONSENT and not _names(life.get("partners"),
                                                                                decision.partner_id):
        # A consent that does not name this partner gave it nothing: read as a CONSENT (naming no one), the version
        # would tell it that another partner now receives the alert. It reads as what it is for this partner, a
        # later version whose content it sees unchanged, or changed where its agreement hides it.
        view["lifecycle"] = {**life, "action": _UPDATE, "partners": []}
    elif isinstance(life, dict) and _others(life.get("partners"), decision.partner_id):
        view["lifecycle"] = {**life, "partners": _own(life["partners"], decision.partner_id)}
    return view


_CONSENT, _UPDATE = "CONSENT", "UPDATE"  # lifecycle actions (the LifecycleAction enum)


# How much of a value a change lets through, least first (a keep has no step): where several agreements in force
# change one field, the strictest change alone runs. Generalise and pseudonymise never meet on one field (one takes
# numbers and times, the other text: ``_check.rule_problem``); a mask shows less than a pseudonym, a drop nothing.
_STRICTNESS = {Action.GENERALISE.value: 1, Action.PSEUDONYMISE.value: 1, Action.MASK.value: 2, Action.DROP.value: 3}


def chosen(covers: Sequence[CompiledCover], named: str | None) -> list[tuple[CompiledCover, int]]:
    """The changes that run for ``covers``, each as its cover and the index of its step (and of its redaction, the
    audit's record of it), in the decision's order: the one selection both the view (``build_view``) and the
    decision's ``redactions`` (``_decide._deliver``) follow, so an audit names the rule that ran and no other.

    Where several change one field, one change applies, the strictest (``_STRICTNESS``), and no step works on a value
    another already changed: a field several pseudonymise takes one pseudonym of the original value, under the
    agreement the decision names (``named``) where its rules pseudonymise the field, else the first in the decision's
    order that does, so a partner matches one person across alerts whichever agreements are in force; a field several
    round to a grid is rounded once, to the coarsest, so the view is that grid's cell whatever rule ran first.
    Truncations nest (an hour inside its day), so each that is strictest runs, an identical one once. A date of birth
    generalised to its year, which writes ``birth_year``, runs only where no agreement in force hides the date more:
    the year shows only if each lets it."""
    if len(covers) == 1:
        return [(covers[0], i) for i in range(len(covers[0].steps))]
    strictest: dict[str, int] = {}
    coarsest: dict[str, float] = {}
    keyed: dict[str, str] = {}  # path -> the agreement whose pseudonym it takes
    for cover in covers:
        for rounds, redaction in zip(cover.rounds, cover.redactions, strict=True):
            path = redaction.path
            strictest[path] = max(_STRICTNESS[redaction.action], strictest.get(path, 0))
            if rounds is not None:
                coarsest[path] = max(rounds[1], coarsest.get(path, rounds[1]))
            if redaction.action == Action.PSEUDONYMISE.value and (path not in keyed or cover.agreement.id == named):
                keyed[path] = cover.agreement.id
    out: list[tuple[CompiledCover, int]] = []
    done: set[str] = set()
    truncated: set[tuple[str, str]] = set()
    for cover in covers:
        for i, (rounds, redaction) in enumerate(zip(cover.rounds, cover.redactions, strict=True)):
            path, action = redaction.path, redaction.action
            if _STRICTNESS[action] < strictest[path]:
                continue
            if action != Action.GENERALISE.value or rounds is not None:  # one step: a drop, mask, pseudonym or grid
                if path in done or (action == Action.PSEUDONYMISE.value and keyed[path] != cover.agreement.id) \
                        or (rounds is not None and rounds[1] < coarsest[path]):
                    continue
                done.add(path)
            elif (path, redaction.detail) in truncated:  # the same truncation twice changes nothing more
                continue
            else:
                truncated.add((path, redaction.detail))
            out.append((cover, i))
    return out


def _names(names: Any, partner_id: str) -> bool:
    """Whether ``names`` (a list of partner ids) names ``partner_id``."""
    return isinstance(names, list) and partner_id in names


def _space(alert: Mapping[str, Any], policy_set: PolicySet) -> str:
    """The pseudonym space of ``alert``'s values (``pseudonym``): "" when the home country originated it, else
    the originating country. A country the policy does not know (which ``decide`` withholds) gives no view:
    pseudonymised in the home country's space, its values would be an oracle for whoever chose them."""
    origin = alert["markings"]["originator"]["country"]
    if type(origin) is not str or origin not in policy_set.known_countries:
        raise PolicyError("no view: the alert's originator country is unknown to the policy, so its values have "
                          "no pseudonym space; nothing is released until it is fixed")
    return "" if origin == policy_set.home_country else origin


def _others(names: Any, partner_id: str) -> bool:
    """Whether ``names`` (a list of partner ids, as consent names them) names anyone but ``partner_id``."""
    return isinstance(names, list) and any(name != partner_id for name in names)


def _own(names: list[Any], partner_id: str) -> list[str]:
    return [partner_id] if partner_id in names else []
