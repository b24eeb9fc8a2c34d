"""Invariants of the decision core over generated alerts (hypothesis), against the shipped policy."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import schemas
from policies import PolicySet, build_view, decide

NAMES = ["darien_sighting", "paso_canoas_flow", "gofast_seizure", "tocumen_hit", "colombia_inbound_hit"]
PROVINCES = ["DARIEN", "GUNA_YALA", "CHIRIQUI", "BOCAS_DEL_TORO", "COLON", "PANAMA", None]
SECTORS = ["DARIEN_PALO_DE_LAS_LETRAS", "DARIEN_PUERTO_OBALDIA", "CHIRIQUI_PASO_CANOAS", "BOCAS_GUABITO", None]
NAMES_IN_MARKINGS = ["COL", "USA", "CRI", "FEAN", "PAN"]
SETTINGS = settings(max_examples=150, deadline=None)
TIMES = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC))

Alert = dict[str, Any]


@pytest.fixture(scope="module")
def bases(make_alert: Callable[..., Alert]) -> dict[str, Alert]:
    """The decoded suite fixtures that generated alerts start from."""
    return {name: make_alert(name) for name in NAMES}


def _alert(data: st.DataObject, bases: dict[str, Alert], ps: PolicySet) -> Alert:
    """A generated alert: a fixture with markings, place and payload details drawn from known values."""
    alert = copy.deepcopy(bases[data.draw(st.sampled_from(NAMES))])
    m = alert["markings"]
    m["classification"] = data.draw(st.sampled_from(ps.scale))
    m["releasable_to"] = data.draw(st.lists(st.sampled_from(NAMES_IN_MARKINGS), unique=True, max_size=4))
    m["caveats"] = data.draw(st.lists(st.sampled_from(sorted(ps.caveat_effects)), unique=True, max_size=2))
    m["handling_code"] = data.draw(st.sampled_from(sorted(ps.handling_effects)))
    m["originator_consent"] = data.draw(st.lists(st.sampled_from(NAMES_IN_MARKINGS), unique=True, max_size=2))
    m["source_reliability"] = data.draw(st.sampled_from(sorted(ps.reliability_rank)))
    m["information_credibility"] = data.draw(st.sampled_from(sorted(ps.credibility_rank)))
    m["originator"]["country"] = data.draw(st.sampled_from(["PAN", "PAN", "COL", "USA", "CRI"]))
    m["expires_at"] = data.draw(st.none() | TIMES)
    m["review_at"] = data.draw(st.none() | TIMES)
    if alert["location"] is not None:
        alert["location"]["province"] = data.draw(st.sampled_from(PROVINCES))
        alert["location"]["border_sector"] = data.draw(st.sampled_from(SECTORS))
    payload, kind = alert["payload"], alert["alert_type"]
    if kind == "BORDER_EVENT":
        payload["event_type"] = data.draw(
            st.sampled_from(["CROSSING", "MIGRANT_FLOW", "ARMED_GROUP_SIGHTING", "OTHER"])
        )
    elif kind == "WATCHLIST_HIT":
        payload["risk_level"] = data.draw(st.sampled_from(["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]))
    else:
        payload["items"][0]["category"] = data.draw(st.sampled_from(["OTHER", "DRUGS", "ARMS", "CASH"]))
    return alert


def _delivered(alert: Alert, ps: PolicySet, now: datetime) -> set[str]:
    return {p for p in ps.partners if decide(alert, p, ps, now).delivers}


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_raising_classification_never_turns_withhold_into_deliver(
    policy_set: PolicySet, bases: dict[str, Alert], data: st.DataObject, now: datetime
) -> None:
    """If an alert is delivered at a higher classification, it is delivered at every lower one."""
    alert = _alert(data, bases, policy_set)
    levels = st.integers(0, len(policy_set.scale) - 1)
    low, high = (policy_set.scale[i] for i in sorted(data.draw(st.tuples(levels, levels))))
    alert["markings"]["classification"] = low
    at_low = _delivered(alert, policy_set, now)
    alert["markings"]["classification"] = high
    assert _delivered(alert, policy_set, now) <= at_low


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_removing_a_partner_from_releasability_never_adds_a_delivery(
    policy_set: PolicySet, bases: dict[str, Alert], data: st.DataObject, now: datetime
) -> None:
    """Taking a name out of REL TO can only shrink the set of partners that receive the alert."""
    alert = _alert(data, bases, policy_set)
    rel = alert["markings"]["releasable_to"] = data.draw(
        st.lists(st.sampled_from(NAMES_IN_MARKINGS), unique=True, min_size=1, max_size=4)
    )
    before = _delivered(alert, policy_set, now)
    rel.remove(data.draw(st.sampled_from(rel)))
    assert _delivered(alert, policy_set, now) <= before


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_adding_a_caveat_never_adds_a_delivery(
    policy_set: PolicySet, bases: dict[str, Alert], data: st.DataObject, now: datetime
) -> None:
    """Restrictions only tighten: one more caveat can only shrink the set of recipients."""
    alert = _alert(data, bases, policy_set)
    before = _delivered(alert, policy_set, now)
    extra = data.draw(st.sampled_from(sorted(policy_set.caveat_effects)))
    if extra not in alert["markings"]["caveats"]:
        alert["markings"]["caveats"].append(extra)
    assert _delivered(alert, policy_set, now) <= before


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_dropped_masked_and_pseudonymised_fields_never_show(
    policy_set: PolicySet,
    bases: dict[str, Alert],
    key: bytes,
    find: Callable[[Any, str], list[Any]],
    data: st.DataObject,
    now: datetime,
) -> None:
    """In every partner view a dropped field is empty (None, [], or the schema's empty value of a required
    field), a masked one is the mask, a pseudonymised one ps:…."""
    alert = _alert(data, bases, policy_set)
    codec = schemas.alert_codec()
    mask, prefix = policy_set.view_settings.mask, policy_set.view_settings.pseudonym_prefix
    for partner in policy_set.partners:
        decision = decide(alert, partner, policy_set, now)
        if not decision.delivers:
            continue
        view = build_view(alert, decision, policy_set, key)
        codec.encode(view)  # raises if the view does not fit the schema
        for r in decision.redactions:
            values = find(view, r.path)
            flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
            if r.action == "drop":
                assert all(_is_empty(v, alert["alert_type"], r.path) for v in values), (partner, r.path, values)
            elif r.action == "mask":
                assert all(v is None or v == mask for v in flat), (partner, r.path, values)
            elif r.action == "pseudonymise":
                assert all(v is None or v.startswith(prefix) for v in flat), (partner, r.path, values)


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_decisions_and_views_are_deterministic(
    policy_set: PolicySet, bases: dict[str, Alert], key: bytes, data: st.DataObject, now: datetime
) -> None:
    """The same inputs give equal decisions and equal views, whatever was decided in between."""
    alert = _alert(data, bases, policy_set)
    twin = copy.deepcopy(alert)
    for partner in policy_set.partners:
        first = decide(alert, partner, policy_set, now)
        decide(_alert(data, bases, policy_set), partner, policy_set, now)  # something else in between
        assert decide(twin, partner, policy_set, now) == first
        if first.delivers:
            assert build_view(alert, first, policy_set, key) == build_view(twin, first, policy_set, key)


UNKNOWN_TARGETS = [
    "classification", "caveats", "handling_code", "source_reliability", "information_credibility",
    "releasable_to", "originator_consent", "originator.country",
]  # fmt: skip


@SETTINGS
@given(data=st.data(), now=TIMES, target=st.sampled_from(UNKNOWN_TARGETS))
def test_an_unknown_marking_never_yields_a_delivery(
    policy_set: PolicySet, bases: dict[str, Alert], data: st.DataObject, now: datetime, target: str
) -> None:
    """One marking value the policy does not know withholds the alert from every partner."""
    alert = _alert(data, bases, policy_set)
    known = (
        set(policy_set.scale) | set(policy_set.caveat_effects) | set(policy_set.handling_effects)
        | set(policy_set.reliability_rank) | set(policy_set.credibility_rank) | set(policy_set.known_names)
    )  # fmt: skip
    strange = data.draw(
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=6).filter(lambda s: s not in known)
    )
    m = alert["markings"]
    if target == "originator.country":
        m["originator"]["country"] = strange
    elif isinstance(m[target], list):
        m[target].append(strange)
    else:
        m[target] = strange
    assert _delivered(alert, policy_set, now) == set()


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_deciding_for_every_partner_at_once_equals_deciding_one_by_one(
    policy_set: PolicySet, bases: dict[str, Alert], data: st.DataObject, now: datetime
) -> None:
    """decide_many shares the per-alert look-ups; its decisions, reasons in order, are decide's, unknown
    markings, an unknown partner and a malformed alert included."""
    from policies import decide_many

    alert = _alert(data, bases, policy_set)
    m = alert["markings"]
    for key in data.draw(st.lists(st.sampled_from(["classification", "handling_code", "source_reliability"]),
                                  unique=True, max_size=2)):
        m[key] = "BOGUS"
    if data.draw(st.booleans()):
        m["caveats"] = [*m["caveats"], "NOFORN-X"]
    if data.draw(st.booleans()):
        m["releasable_to"] = [*m["releasable_to"], "ATLANTIS"]
    if data.draw(st.integers(0, 9)) == 0:
        del alert["markings"]
    partners = [*sorted(policy_set.partners), "NOBODY"]
    assert decide_many(alert, partners, policy_set, now) == [decide(alert, p, policy_set, now) for p in partners]


@SETTINGS
@given(data=st.data(), now=TIMES)
def test_a_review_date_never_changes_who_gets_an_alert(
    policy_set: PolicySet, bases: dict[str, Alert], data: st.DataObject, now: datetime
) -> None:
    """review_at only adds a notice: with or without it, the same partners get the alert, the same way, and a
    delivery names alert.review_overdue exactly when the date is not after the decision time."""
    from policies._decide import ALERT_REVIEW_OVERDUE

    alert = _alert(data, bases, policy_set)
    review = alert["markings"]["review_at"]
    without = copy.deepcopy(alert)
    without["markings"]["review_at"] = None
    for partner in policy_set.partners:
        got, base = decide(alert, partner, policy_set, now), decide(without, partner, policy_set, now)
        overdue = got.delivers and review is not None and review <= now
        event(f"review overdue: {overdue}")
        assert (got.outcome, got.agreement_ids, got.redactions, got.onward_sharing) == (
            base.outcome, base.agreement_ids, base.redactions, base.onward_sharing)
        assert got.rule_ids == ((*base.rule_ids, ALERT_REVIEW_OVERDUE) if overdue else base.rule_ids)
        assert got.reasons[: len(base.reasons)] == base.reasons


def test_a_partner_id_of_the_wrong_type_is_withheld_by_decide_many_as_by_decide(
    policy_set: PolicySet, bases: dict[str, Alert]
) -> None:
    """An unhashable partner id (a caller's bug) is a withhold for that partner, not a crash for all."""
    from policies import Decision, decide_many

    alert = next(iter(bases.values()))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    partners: list[Any] = [sorted(policy_set.partners)[0], ["COL"]]
    got = decide_many(alert, partners, policy_set, now)
    assert got == [decide(alert, p, policy_set, now) for p in partners]
    assert isinstance(got[1], Decision) and got[1].outcome.name == "WITHHOLD"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, value) for every leaf of a view: a list of records is followed into its items (``[]``),
    any other value (a list of strings included) is one leaf."""
    if isinstance(value, dict):
        return [leaf for key, sub in value.items() for leaf in _leaves(sub, f"{path}.{key}" if path else key)]
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return [leaf for item in value for leaf in _leaves(item, path + "[]")]
    return [(path, value)]


def _named(path: str, names: set[str]) -> bool:
    """Whether ``path`` or a field holding it is named (``a.b[].c`` is held by ``a.b`` and ``a``)."""
    while True:
        if path in names:
            return True
        head, sep, _ = path.rpartition(".")
        if not sep:
            return False
        path = head.removesuffix("[]")


def _is_empty(value: Any, alert_type: str, path: str) -> bool:
    """The value a dropped field holds: None, [], or the schema's empty value of a required field."""
    from policies._load import schema_fields

    info = schema_fields()[alert_type].get(path)
    if value is None or value == []:
        return True
    if info is None or info.nullable:
        return False
    if info.kind == "enum":
        return value == info.enum_default
    return any(type(value) is type(e) and value == e for e in ("", 0, 0.0, False, EPOCH))


@SETTINGS
@given(data=st.data())
def test_every_leaf_of_a_view_is_named_by_a_rule_or_empty(
    policy_set: PolicySet, bases: dict[str, Alert], key: bytes, now: datetime, data: st.DataObject
) -> None:
    """Views are allow-lists over the whole record: each leaf a partner gets is named by the agreement
    rule (itself or through a kept record), or kept by the envelope rule, or is the empty value of a
    field nothing names."""
    if data.draw(st.booleans()):  # a generated alert, at any time
        alert, now = _alert(data, bases, policy_set), data.draw(TIMES)
    else:  # a fixture as it is, when every agreement is in force: delivered to most partners
        alert = bases[data.draw(st.sampled_from(NAMES))]
    envelope = set(policy_set.sources.vocabulary.model.envelope.keep)
    names = {c.rule: set(c.fields) for d in policy_set.sources.agreements for c in d.model.covers}
    for partner in policy_set.partners:
        decision = decide(alert, partner, policy_set, now)
        if not decision.delivers:
            continue
        rules = [r for r in decision.rule_ids if r in names]
        event(f"view for {partner}")
        for path, value in _leaves(build_view(alert, decision, policy_set, key)):
            for rule in rules:
                shown = _named(path, names[rule] | envelope) or _is_empty(value, alert["alert_type"], path)
                assert shown, f"{partner} gets {path} = {value!r}, which {rule} does not name"


HUGE = st.builds(lambda n, c: c * n, st.integers(10_000, 1_500_000), st.sampled_from(["x", "é", " ", "\x00", "☃"]))
HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**400, -(10**30), True, False]),
    st.integers(),
    st.text(max_size=30),
    HUGE,
    st.sampled_from(["\ud800", "a\udfffb", "\u0301" * 50]),  # a lone surrogate, combining marks only
    st.binary(max_size=20),
    st.none(),
    st.lists(st.integers() | st.text(max_size=5) | st.none(), max_size=5),
    st.lists(HUGE, min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
)  # deep nesting, and faults of any type, are in test_policy_decide.py: hypothesis cannot print them


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a nested alert: the places a hostile value can go."""
    out: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for k, sub in value.items():
            out.append((value, k))
            out += _slots(sub)
    elif isinstance(value, list) and len(value) < 50:
        for i, sub in enumerate(value):
            out.append((value, i))
            out += _slots(sub)
    return out


def _spoil(alert: Alert, data: st.DataObject) -> Alert:
    """A copy of ``alert`` with one to three of its values, anywhere in it, replaced by hostile ones."""
    spoilt = copy.deepcopy(alert)
    for _ in range(data.draw(st.integers(1, 3))):
        slots = _slots(spoilt)
        if not slots:
            break
        container, where = data.draw(st.sampled_from(slots))
        container[where] = data.draw(HOSTILE)
    return spoilt


def _fails_closed(view: Alert, decision: Any, ps: PolicySet, alert_type: str, find: Any) -> None:
    """What a rule changes never shows as it came: dropped is empty, masked the mask, a pseudonym ps:…,
    a generalised coordinate a finite number or nothing."""
    settings_ = ps.view_settings
    for r in decision.redactions:
        values = find(view, r.path)
        flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
        if r.action == "drop":
            assert all(_is_empty(v, alert_type, r.path) for v in values), (r.path, values)
        elif r.action == "mask":
            assert all(v == settings_.mask or _is_empty(v, alert_type, r.path) for v in flat), (r.path, values)
        elif r.action == "pseudonymise":
            assert all(
                (isinstance(v, str) and v.startswith(settings_.pseudonym_prefix)) or _is_empty(v, alert_type, r.path)
                for v in flat
            ), (r.path, values)
        elif r.path.endswith(("latitude", "longitude")):
            assert all(v is None or (type(v) is float and math.isfinite(v)) for v in values), (r.path, values)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_hostile_values_never_make_the_policy_core_raise(
    policy_set: PolicySet,
    bases: dict[str, Alert],
    key: bytes,
    find: Callable[[Any, str], list[Any]],
    now: datetime,
    data: st.DataObject,
) -> None:
    """NaN, infinities, huge numbers and strings, lone surrogates, wrong types, deep nesting, anywhere in
    an alert: decide and decide_many withhold or decide, with short reasons; build_view returns a view
    that shows nothing a rule hides, or raises PolicyError, never anything else."""
    from policies import decide_many
    from puente.errors import PolicyError

    # A fixture as it is, at a time every agreement is in force, is delivered to most partners: so most
    # draws reach build_view, which is asked for the view of the spoilt alert under the sound one's decision.
    alert = bases[data.draw(st.sampled_from(NAMES))]
    spoilt = _spoil(alert, data)
    partners = sorted(policy_set.partners)
    decisions = decide_many(spoilt, partners, policy_set, now)
    assert decisions == [decide(spoilt, p, policy_set, now) for p in partners]
    for d in decisions:
        assert all(len(reason) < 400 for reason in d.reasons), d.reasons
    alert_type = spoilt.get("alert_type") if isinstance(spoilt, dict) else None
    for partner in partners:
        decision = decide(alert, partner, policy_set, now)  # delivered for the sound alert...
        if not decision.delivers:
            continue
        try:
            view = build_view(spoilt, decision, policy_set, key)  # ...then asked for the spoilt one
        except PolicyError as exc:
            assert len(str(exc)) < 400
            event("no view: PolicyError")
            continue
        event("view built")
        if alert_type in policy_set.alert_types:
            _fails_closed(view, decision, policy_set, alert_type, find)
