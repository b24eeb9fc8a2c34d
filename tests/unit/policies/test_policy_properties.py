"""Invariants of the decision core over generated alerts (hypothesis), against the shipped policy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
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
    """In every partner view a dropped field is empty, a masked one is the mask, a pseudonymised one ps:…."""
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
                assert all(v is None or v == [] for v in values), (partner, r.path, values)
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
