"""Partner views: each field action, schema validity, and the guards around build_view."""

from __future__ import annotations

import base64
import copy
import hmac
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from policies import Decision, Outcome, PolicySet, build_view, decide, pseudonym
from policies._model import ViewSettings
from policies._view import ViewContext, _normal
from puente.errors import PolicyError

MakeAlert = Callable[..., dict[str, Any]]
Find = Callable[[Any, str], list[Any]]


def _view(ps: PolicySet, alert: dict[str, Any], partner: str, now: datetime, key: bytes) -> dict[str, Any]:
    decision = decide(alert, partner, ps, now)
    assert decision.delivers, decision.reasons
    return build_view(alert, decision, ps, key)


def test_dropped_fields_become_none_or_empty(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """Dropped optional fields become None; a dropped array becomes []."""
    view = _view(policy_set, make_alert("paso_canoas_flow"), "CRI", now, key)
    assert view["summary"] is None
    assert view["payload"]["patrol_unit"] is None
    assert view["payload"]["remarks"] is None
    assert view["markings"]["originator"]["unit"] is None


def test_masked_field_shows_the_fixed_mask(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A masked string is replaced by the configured mask."""
    view = _view(policy_set, make_alert("gofast_seizure"), "COL", now, key)
    assert view["payload"]["operation_name"] == policy_set.view_settings.mask == "■■■"


def test_pseudonyms_hide_values_and_correlate(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, find: Find
) -> None:
    """Pseudonyms never show the value, repeat for the same value, and are prefixed ps:."""
    alert = make_alert("gofast_seizure", {"payload.detainees[1].surnames": "MEJIA  torres"})
    view = _view(policy_set, alert, "COL", now, key)
    surnames = find(view, "payload.detainees[].surnames")
    assert all(s.startswith("ps:") and len(s) == 3 + 16 for s in surnames)
    assert "Mejía Torres" not in str(view)
    assert surnames[0] == surnames[1]  # case, accents and spacing do not break correlation
    assert surnames[0] != surnames[2]


def test_pseudonyms_differ_per_partner_and_key() -> None:
    """The partner id and the key are part of the pseudonym, so partners cannot join their feeds."""
    vs = ViewSettings()
    one = pseudonym("1045678912", "document_number", ViewContext(b"k" * 32, "COL", vs))
    assert one == pseudonym("1045678912", "document_number", ViewContext(b"k" * 32, "COL", vs))
    assert one != pseudonym("1045678912", "document_number", ViewContext(b"k" * 32, "USA", vs))
    assert one != pseudonym("1045678912", "document_number", ViewContext(b"j" * 32, "COL", vs))
    assert one != pseudonym("1045678912", "person_name", ViewContext(b"k" * 32, "COL", vs))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=100), st.integers(12, 52), st.text(max_size=40))
def test_a_pseudonym_is_the_truncated_base32_of_the_hmac(key: bytes, length: int, value: str) -> None:
    """The definition, written out the slow way: HMAC-SHA256 over partner, domain and the
    normalised value, base32 of the whole digest, lower case, cut to the configured length."""
    vs = ViewSettings(pseudonym_length=length)
    msg = f"COL\x1fsurname\x1f{_normal(value)}".encode()
    expected = vs.pseudonym_prefix + base64.b32encode(hmac.digest(key, msg, "sha256")).decode().lower()[:length]
    assert pseudonym(value, "surname", ViewContext(key, "COL", vs)) == expected


def _from_colombia(alert: dict[str, Any]) -> dict[str, Any]:
    """``alert`` as COMBIFRON relays it: originated in Colombia, the same values."""
    alert["alert_id"] = "COMBIFRON:COL-PONAL-2025-000001"
    alert["markings"]["originator"] = {"agency": "COL-PONAL", "unit": None, "country": "COL"}
    return alert


def test_a_partner_gets_no_pseudonym_of_panamas_data_from_its_own_alerts(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, find: Find
) -> None:
    """Colombia chooses the values of its own alerts: sent back to it, they are pseudonymised in Colombia's own
    space, so they never give it the pseudonym that names the same person in Panama's alerts (an oracle)."""
    paths = ("payload.detainees[].surnames", "payload.detainees[].given_names",
             "payload.detainees[].documents[].number")
    panama = _view(policy_set, make_alert("gofast_seizure"), "COL", now, key)
    own = _view(policy_set, _from_colombia(make_alert("gofast_seizure")), "COL", now, key)
    for path in paths:
        assert set(find(panama, path)).isdisjoint(find(own, path)), path
    # Panama's alerts keep the pseudonyms partners already hold; Colombia's own still repeat among themselves.
    vs = policy_set.view_settings
    assert find(panama, paths[2])[0] == pseudonym("1045678912", "document_number", ViewContext(key, "COL", vs))
    assert find(own, paths[2])[0] == pseudonym("1045678912", "document_number@COL", ViewContext(key, "COL", vs))
    again = _view(policy_set, _from_colombia(make_alert("gofast_seizure")), "COL", now, key)
    assert find(again, paths[0]) == find(own, paths[0])


def test_a_third_partner_correlates_within_one_originator_never_across(
    policy_copy: Any, make_alert: MakeAlert, now: datetime, key: bytes, find: Find
) -> None:
    """A partner matches one person across Panama's alerts, and across Colombia's; never between them: Colombia
    knows its own values, and could tell them to the partner it consented its alert to (an oracle)."""
    policy_copy.replace("agreements/pan-usa.yaml", "      payload.detainees: keep\n",
                        "      payload.detainees[].surnames: {action: pseudonymise, domain: person_name}\n")
    ps = policy_copy.load()
    path = "payload.detainees[].surnames"
    panama = find(_view(ps, make_alert("gofast_seizure"), "USA", now, key), path)
    other = make_alert("gofast_seizure", {"alert_id": "SENAN:GLR-2025-0999", "payload.detainees[0].surnames": "MEJIA"})
    assert find(_view(ps, other, "USA", now, key), path)[1:] == panama[1:]
    consented = {"markings.originator_consent": ["USA"]}
    colombia = find(_view(ps, _from_colombia(make_alert("gofast_seizure", consented)), "USA", now, key), path)
    assert set(colombia).isdisjoint(panama)
    again = _from_colombia(make_alert("gofast_seizure", {**consented, "payload.detainees[0].given_names": "Juan"}))
    assert find(_view(ps, again, "USA", now, key), path) == colombia


def test_no_pseudonyms_for_an_alert_from_a_country_the_policy_does_not_know(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """Values of an alert whose originator country is unknown have no pseudonym space: no view, rather than
    pseudonyms in Panama's space (``decide`` withholds such an alert; a decision made for another is no way round)."""
    alert = make_alert("gofast_seizure")
    decision = decide(alert, "COL", policy_set, now)
    for country in ("VEN", None, ""):
        spoilt = copy.deepcopy(alert)
        spoilt["markings"]["originator"]["country"] = country
        with pytest.raises(PolicyError, match="originator country"):
            build_view(spoilt, decision, policy_set, key)


def test_generalise_rounds_coordinates_to_the_grid(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """Coordinates go to their cell of the agreement's grid, the multiple at or below them: 0.01 for COMBIFRON border
    events, 0.1 by default (-82.83 is in the cell from -82.9 to -82.8)."""
    col = _view(policy_set, make_alert("darien_sighting"), "COL", now, key)
    assert (col["location"]["latitude"], col["location"]["longitude"]) == (7.83, -77.43)
    cri = _view(policy_set, make_alert("paso_canoas_flow"), "CRI", now, key)
    assert (cri["location"]["latitude"], cri["location"]["longitude"]) == (8.5, -82.9)


def test_date_of_birth_becomes_birth_year(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, find: Find
) -> None:
    """A generalised date of birth is removed and its year kept in birth_year."""
    view = _view(policy_set, make_alert("gofast_seizure"), "COL", now, key)
    assert find(view, "payload.detainees[].date_of_birth") == [None, None, None]
    assert find(view, "payload.detainees[].birth_year") == [1991, 1987, 1999]


def test_timestamp_is_truncated_to_the_hour(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A generalised timestamp keeps only its hour."""
    view = _view(policy_set, make_alert("paso_canoas_flow"), "CRI", now, key)
    assert schemas.to_json(view["occurred_at"]) == "2025-06-01T19:00:00Z"


def _times(value: Any) -> list[datetime]:
    if isinstance(value, datetime):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    return []


@pytest.mark.parametrize("fixture", ["darien_sighting", "paso_canoas_flow", "gofast_seizure", "tocumen_hit",
                                     "colombia_inbound_hit"])
def test_no_view_gives_back_an_event_time_its_agreement_cuts(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, fixture: str
) -> None:
    """Adapters set review_at and expires_at to the event's time plus a number of days (``adapters.core``), so
    exact in a view they would give the event's time back to a partner whose agreement cuts it to the hour, or
    drops it. Every view states both to the day, and no time in a view shows the event's minutes and seconds
    unless its occurred_at does."""
    alert = make_alert(fixture)
    occurred = alert["occurred_at"].replace(minute=17, second=43)
    alert["occurred_at"] = occurred
    alert["markings"]["review_at"] = occurred + timedelta(days=30)
    alert["markings"]["expires_at"] = occurred + timedelta(days=400)
    clock = (occurred.minute, occurred.second)
    shown = 0
    for partner in sorted(policy_set.partners):
        decision = decide(alert, partner, policy_set, now)
        if not decision.delivers:
            continue
        view = build_view(alert, decision, policy_set, key)
        markings = view["markings"]
        assert markings["review_at"] == datetime(*(occurred + timedelta(days=30)).timetuple()[:3], tzinfo=UTC)
        assert markings["expires_at"] == datetime(*(occurred + timedelta(days=400)).timetuple()[:3], tzinfo=UTC)
        if view.get("occurred_at") != occurred:
            shown += 1
            assert [t for t in _times(view) if (t.minute, t.second) == clock] == [], partner
    assert alert["markings"]["review_at"] == occurred + timedelta(days=30)  # the alert itself is left alone
    if fixture in ("paso_canoas_flow", "tocumen_hit"):
        assert shown  # an agreement that cuts the time (CRI, COMBIFRON-WATCHLIST) is among them


@pytest.mark.parametrize("fixture", ["darien_sighting", "paso_canoas_flow", "gofast_seizure", "tocumen_hit"])
def test_every_view_fits_the_schema(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, fixture: str
) -> None:
    """Every partner view encodes with the alert codec and decodes back to itself."""
    codec = schemas.alert_codec()
    alert = make_alert(fixture)
    for partner in policy_set.partners:
        decision = decide(alert, partner, policy_set, now)
        if decision.delivers:
            view = build_view(alert, decision, policy_set, key)
            assert codec.decode(codec.encode(view)) == view


def test_building_a_view_leaves_the_alert_alone(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """The alert is unchanged, and every container a rule changes is the view's own copy."""
    alert = make_alert("gofast_seizure")
    before = copy.deepcopy(alert)
    view = _view(policy_set, alert, "COL", now, key)
    assert alert == before
    assert view["payload"]["detainees"][0] is not alert["payload"]["detainees"][0]


def test_unredacted_view_equals_the_alert(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A DELIVER view is the alert as published, but for whom it may go to: FEAN's agreement forbids onward
    sharing, so the view is releasable to FEAN alone."""
    alert = make_alert("gofast_seizure")
    assert _view(policy_set, alert, "FEAN", now, key) == {**alert, "markings": {**alert["markings"],
                                                                                "releasable_to": ["FEAN"]}}


def test_a_partner_that_may_not_pass_an_alert_on_gets_it_releasable_to_itself_alone(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """The view tells the partner whether it may pass the alert on, in the marking it already honours: where the
    agreement allows onward sharing (PAN-CRI) the originator's list travels as it is; where it does not
    (COMBIFRON), or where the release rests on consent, the list is narrowed to the partner, never widened."""
    flow = make_alert("paso_canoas_flow")
    assert decide(flow, "CRI", policy_set, now).onward_sharing
    assert _view(policy_set, flow, "CRI", now, key)["markings"]["releasable_to"] == flow["markings"]["releasable_to"]
    hit = make_alert("tocumen_hit")
    assert len(hit["markings"]["releasable_to"]) > 1 and not decide(hit, "COL", policy_set, now).onward_sharing
    assert _view(policy_set, hit, "COL", now, key)["markings"]["releasable_to"] == ["COL"]
    assert len(hit["markings"]["releasable_to"]) > 1  # the alert itself unchanged


def test_a_partner_reads_its_own_consent_never_whom_else_the_originator_consented_to(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """Consent is given per alert and per partner: a view's originator_consent, and a CONSENT version's
    lifecycle.partners, name the receiving partner when the originator consented to it, and no other partner
    (that would tell it who else receives the alert); the alert itself keeps every name."""
    consent = {"action": "CONSENT", "reason": None, "partners": ["USA", "COL"]}
    hit = make_alert("tocumen_hit", {"markings.originator_consent": ["USA", "COL"], "version": 2,
                                     "lifecycle": consent})
    decision = decide(hit, "COL", policy_set, now)
    assert decision.delivers
    view = build_view(hit, decision, policy_set, key)
    assert view["markings"]["originator_consent"] == ["COL"] and view["lifecycle"]["partners"] == ["COL"]
    assert hit["markings"]["originator_consent"] == ["USA", "COL"] and hit["lifecycle"]["partners"] == ["USA", "COL"]
    other = make_alert("tocumen_hit", {"markings.originator_consent": ["USA"]})
    assert _view(policy_set, other, "COL", now, key)["markings"]["originator_consent"] == []


def test_a_consent_that_does_not_name_a_partner_reads_to_it_as_an_update(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A partner that already holds the alert, re-sent a CONSENT version naming another partner, reads it as an
    UPDATE naming no one: a CONSENT would tell it someone else now receives the alert. The partner it names reads
    the CONSENT, naming itself."""
    hit = make_alert("tocumen_hit", {"markings.handling_code": "H2", "markings.originator_consent": ["COL", "USA"],
                                     "version": 2, "lifecycle": {"action": "CONSENT", "reason": None,
                                                                 "partners": ["USA"]}})
    col, usa = _view(policy_set, hit, "COL", now, key), _view(policy_set, hit, "USA", now, key)
    assert col["lifecycle"] == {"action": "UPDATE", "reason": None, "partners": []}
    assert col["markings"]["originator_consent"] == ["COL"]
    assert usa["lifecycle"] == {"action": "CONSENT", "reason": None, "partners": ["USA"]}
    first = make_alert("tocumen_hit", {"markings.handling_code": "H2", "markings.originator_consent": ["COL"]})
    assert {**_view(policy_set, first, "COL", now, key), "version": 2, "lifecycle": col["lifecycle"]} == col
    assert hit["lifecycle"]["action"] == "CONSENT"


@pytest.mark.parametrize("code", ["H0", "H1", "H2"])
def test_a_handling_text_reaches_a_partner_only_with_handling_code_h3(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, code: str
) -> None:
    """handling_text is the H3 restriction in words: with another code it is free text no agreement redacts (CRI's
    drops the summary, which may name people), and no view holds it; with H3 the partner reads what binds it."""
    text = "Ana Pérez Gómez, pasaporte PA1234567"
    alert = make_alert("paso_canoas_flow", {"markings.handling_code": code, "markings.handling_text": text,
                                            "markings.originator_consent": ["CRI"]})
    view = _view(policy_set, alert, "CRI", now, key)
    assert view["summary"] is None
    assert view["markings"]["handling_code"] == code and view["markings"]["handling_text"] is None
    assert "Pérez" not in str(view)
    alert["markings"]["handling_code"] = "H3"
    assert _view(policy_set, alert, "CRI", now, key)["markings"]["handling_text"] == text


def test_no_view_for_a_withheld_alert(policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes) -> None:
    """build_view refuses a withhold decision."""
    alert = make_alert("darien_sighting", {"markings.caveats": ["PANAMA_ONLY"]})
    decision = decide(alert, "COL", policy_set, now)
    with pytest.raises(PolicyError, match="withheld"):
        build_view(alert, decision, policy_set, key)


def test_view_guards(policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes) -> None:
    """A decision from another policy, a short key or another alert type is refused."""
    alert = make_alert("darien_sighting")
    decision = decide(alert, "COL", policy_set, now)
    stale = Decision(Outcome.DELIVER_REDACTED, "COL", decision.agreement_ids, decision.rule_ids, (), (), "sha256:old")
    with pytest.raises(PolicyError, match="policy"):
        build_view(alert, stale, policy_set, key)
    seizure = make_alert("gofast_seizure")  # COMBIFRON-SEIZURE pseudonymises the detainees
    with pytest.raises(PolicyError, match="16 bytes"):
        build_view(seizure, decide(seizure, "COL", policy_set, now), policy_set, b"short")
    with pytest.raises(PolicyError, match="BORDER_EVENT"):
        build_view(make_alert("gofast_seizure"), decision, policy_set, key)


def test_each_agreement_pseudonymises_under_its_own_key_asked_for_only_when_needed(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes) -> None:
    """The key is asked for by agreement, and only for an agreement whose rules pseudonymise: a border event to COL
    (nothing pseudonymised) needs no key at all; a seizure asks for COMBIFRON's, and gets its pseudonyms from it."""
    asked: list[str] = []

    def keys(agreement: str) -> bytes:
        asked.append(agreement)
        return key

    sighting = make_alert("darien_sighting")
    assert build_view(sighting, decide(sighting, "COL", policy_set, now), policy_set, keys) is not None
    assert asked == []
    seizure = make_alert("gofast_seizure")
    decision = decide(seizure, "COL", policy_set, now)
    assert build_view(seizure, decision, policy_set, keys) == build_view(seizure, decision, policy_set, key)
    assert set(asked) == {"COMBIFRON"}


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**400, "7.83124"],
    ids=["nan", "inf", "-inf", "1e308", "-1e308", "10**400", "text"],
)
@pytest.mark.parametrize(("fixture", "partner"), [("darien_sighting", "COL"), ("paso_canoas_flow", "CRI")])
def test_a_coordinate_that_cannot_be_generalised_is_dropped(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, value: Any, fixture: str, partner: str
) -> None:
    """Generalising NaN, an infinity, a number whose rounding overflows or a value that is not a number
    drops the coordinate (it is nullable) instead of raising or passing the value through."""
    alert = make_alert(fixture)
    decision = decide(alert, partner, policy_set, now)
    alert["location"] = {**alert["location"], "latitude": value}
    view = build_view(alert, decision, policy_set, key)
    assert view["location"]["latitude"] is None
    assert view["location"]["longitude"] is not None
    schemas.alert_codec().encode(view)


@pytest.mark.parametrize("value", [[7.8], {"deg": 7}, (7.8,), {7.8}, b"7.8", bytearray(b"7")],
                         ids=["list", "dict", "tuple", "set", "bytes", "bytearray"])
@pytest.mark.parametrize("path", ["location.latitude", "summary", "markings.originator.unit", "payload.operation_name",
                                  "payload.conveyance.kind"])
def test_a_container_where_the_schema_has_a_value_leaves_no_view(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, value: Any, path: str
) -> None:
    """A list, a dict, bytes or any other container where the schema has one value is no alert the codec decodes,
    and a record hidden there (under a field a rule keeps) would reach the view whole: no view is built, whatever
    the field's rule, and the error quotes nothing of the value."""
    alert = make_alert("gofast_seizure")
    decision = decide(alert, "USA", policy_set, now)
    *parents, last = path.split(".")
    target = alert
    for part in parents:
        target = target[part]
    target[last] = value
    with pytest.raises(PolicyError, match="no view") as caught:
        build_view(alert, decision, policy_set, key)
    assert "deg" not in str(caught.value) and "7.8" not in str(caught.value)


def test_a_dict_subclass_that_hides_keys_leaves_no_view(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A mapping whose iteration shows the check fewer keys than a copy takes (a dict subclass with its own
    ``__iter__``) is refused, at the top and at any depth: the allow-list takes plain dicts only."""

    class Hiding(dict):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            return (k for k in super().__iter__() if k != "informant")

        def keys(self) -> Any:
            return [k for k in dict.keys(self) if k != "informant"]

    alert = make_alert("gofast_seizure")
    decision = decide(alert, "USA", policy_set, now)
    for where in ("top", "markings"):
        hidden = Hiding(alert) if where == "top" else {**alert, "markings": Hiding(alert["markings"])}
        (hidden if where == "top" else hidden["markings"])["informant"] = "Pérez"
        with pytest.raises(PolicyError, match="no view"):
            build_view(hidden, decision, policy_set, key)


def test_generalising_a_required_number_empties_it_when_it_cannot_be_rounded() -> None:
    """A required double has no null: a non-finite value that is generalised becomes 0.0, the schema's
    empty value, and a finite one is rounded."""
    from policies._fields import FieldInfo
    from policies._model import Action, FieldRule
    from policies._view import compile_step

    rule = FieldRule(action=Action.GENERALISE, grid=0.5)
    step = compile_step(FieldInfo("quantity", "double", False), rule, ViewSettings())
    assert step is not None
    ctx = ViewContext(b"k" * 32, "COL", ViewSettings())
    for value, expected in [(float("nan"), 0.0), (float("inf"), 0.0), (10**400, 0.0), ("12", 0.0), (12.3, 12.0),
                            (12.5, 12.5), (-0.2, -0.5)]:
        rec = {"quantity": value}
        step(rec, ctx)
        assert rec["quantity"] == expected, value


def test_masked_and_pseudonymised_values_that_are_not_text_are_emptied(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A value a mask or pseudonym cannot apply to (a number, a lone surrogate aside) is emptied rather than shown as
    it came. (A list or any other container where the schema has a value leaves no view at all: below.)"""
    alert = make_alert("gofast_seizure")
    decision = decide(alert, "COL", policy_set, now)
    alert["payload"] = {**alert["payload"], "operation_name": 1234}
    person = {**alert["payload"]["detainees"][0], "surnames": 7, "given_names": "\ud800"}
    alert["payload"]["detainees"] = [person]
    view = build_view(alert, decision, policy_set, key)
    assert view["payload"]["operation_name"] is None
    assert view["payload"]["detainees"][0]["surnames"] is None
    assert view["payload"]["detainees"][0]["given_names"].startswith("ps:")


@pytest.mark.parametrize(
    "spoil",
    [
        lambda a: a.update(location="Alto Limón, 7.83124 -77.42671"),
        lambda a: a.update(markings=["Batallón de Darién"]),
        lambda a: a["payload"].update(nationalities_observed="Batallón de Darién") or a.update(payload=7),
        lambda a: a.update(alert_type="Batallón de Darién" * 1000),
    ],
)
def test_a_malformed_alert_gives_a_policy_error_that_quotes_nothing(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, spoil: Any
) -> None:
    """build_view raises only PolicyError, naming the kind of fault, never a value of the alert (nor
    chaining the original error, whose message may quote one)."""
    alert = make_alert("darien_sighting")
    decision = decide(alert, "COL", policy_set, now)
    spoilt = copy.deepcopy(alert)
    spoil(spoilt)
    with pytest.raises(PolicyError) as caught:
        build_view(spoilt, decision, policy_set, key)
    assert "Batallón" not in str(caught.value) and "Alto Limón" not in str(caught.value)
    assert len(str(caught.value)) < 200
    assert caught.value.__cause__ is None


def test_a_dict_subclass_in_the_alert_leaves_no_view_and_is_not_changed(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes
) -> None:
    """A record held in a dict subclass, even one that changes nothing, leaves no view (only plain dicts are what
    the allow-list knows the keys of), and the alert is not changed."""

    class Record(dict[str, Any]):
        pass

    alert = make_alert("darien_sighting")
    decision = decide(alert, "COL", policy_set, now)
    alert["payload"] = Record(alert["payload"])
    with pytest.raises(PolicyError, match="no view"):
        build_view(alert, decision, policy_set, key)
    assert alert["payload"]["patrol_unit"] == "Patrulla Tigre 3"


# Loading refuses two agreements covering one partner's alert type on a common day: several apply at once only
# to a decision whose two clocks fall on either side of the day one ends and the next begins. Here COMBIFRON ends
# 2025-06-02 and its successor begins the next day; a decision at ACROSS applies both.
ENDS, BEGINS = "valid_until: 2025-06-02", "valid_from: 2025-06-03"
ACROSS = (datetime(2025, 6, 3, 4, 50, tzinfo=UTC), datetime(2025, 6, 3, 5, 10, tzinfo=UTC))  # midnight in Panama


def _end_combifron(policy_copy: Any) -> None:
    """COMBIFRON ending the day before a successor beginning ``BEGINS``."""
    policy_copy.replace("agreements/combifron.yaml", "valid_until: 2027-02-28", ENDS)


ANNEX = """id: COMBIFRON-ANNEX
title: COMBIFRON annex on border events
parties: [PAN, COL]
legal_basis: Annex to the COMBIFRON framework
purpose: Border events in Darién
valid_from: 2025-06-03
valid_until: 2026-12-31
max_classification: CONFIDENCIAL
onward_sharing: false
retention_days: 30
covers:
  - rule: ANNEX-BORDER
    alert_type: BORDER_EVENT
    fields:
      agency: keep
      occurred_at: keep
      reported_at: keep
      source_timezone: keep
      location.latitude: {action: generalise, grid: 0.1}
      location.longitude: {action: generalise, grid: 0.1}
      location.province: keep
      location.border_sector: keep
      payload.event_type: keep
      payload.headcount: keep
      payload.direction: keep
      payload.nationalities_observed: keep
      payload.patrol_unit: drop
      markings.originator.unit: drop
      payload.remarks: drop
"""


@pytest.mark.parametrize("latitude", [7.7496, 7.8496, 7.749, 7.75])
def test_overlapping_grids_round_once_to_the_coarsest_whatever_the_file_names(
        policy_copy: Any, make_alert: MakeAlert, key: bytes, latitude: float) -> None:
    """An annex rounding to 0.1° beside COMBIFRON's 0.01° (both in force over a window across the day one ends and
    the other begins) gave 7.7 for latitude 7.7496 as ``a-annex.yaml`` and 7.8 (rounded twice) as
    ``zz-annex.yaml``, under one version: rules apply by agreement id, and a field several rules round is rounded
    once, to the coarsest grid."""
    _end_combifron(policy_copy)
    seen = []
    for name in ("a-annex.yaml", "zz-annex.yaml"):
        policy_copy.write(f"agreements/{name}", ANNEX)
        ps = policy_copy.load()
        alert = make_alert("darien_sighting", {"location.latitude": latitude})
        decision = decide(alert, "COL", ps, *ACROSS)
        view = build_view(alert, decision, ps, key)
        seen.append((ps.version, decision.rule_ids, view["location"]["latitude"]))
        (policy_copy.root / "agreements" / name).unlink()
    assert seen[0] == seen[1]
    assert seen[0][1] == ("COMBIFRON-BORDER", "ANNEX-BORDER")
    assert seen[0][2] == {7.7496: 7.7, 7.8496: 7.8, 7.749: 7.7, 7.75: 7.7}[latitude]  # the 0.1 cell it is in


@pytest.mark.parametrize("agreement", ["AA-STRICT", "ZZ-STRICT"])  # its rules apply before COMBIFRON's, or after
def test_a_year_of_birth_one_agreement_derives_is_not_shown_where_another_in_force_hides_the_date(
        policy_copy: Any, make_alert: MakeAlert, now: datetime, key: bytes, agreement: str) -> None:
    """COMBIFRON generalises a detainee's date of birth to its year, written to ``birth_year``; its successor, both
    in force over a window across the day one ends and the other begins, drops the date, year and all, and keeps
    ``birth_year`` as the alert states it (none here). Applied one after the other, the first wrote the year and the
    second kept it: the partner read the year of birth no rule in force alone would give it, or not, by the
    agreements' ids. Where any agreement in force hides the date, no year is derived from it."""
    strict = (policy_copy.text("agreements/combifron.yaml")
              .replace("id: COMBIFRON\n", f"id: {agreement}\n").replace("rule: COMBIFRON-", f"rule: {agreement}-")
              .replace("valid_from: 2024-03-01", BEGINS)
              .replace("payload.detainees[].date_of_birth: {action: generalise, to: year}",
                       "payload.detainees[].date_of_birth: {action: drop, why: no birth dates or years}"))
    assert f"id: {agreement}\n" in strict and "date_of_birth: {action: drop" in strict and BEGINS in strict
    name = f"{agreement.lower()}.yaml"
    _end_combifron(policy_copy)
    policy_copy.write(f"agreements/{name}", strict)
    ps = policy_copy.load()
    alert = make_alert("gofast_seizure", {"payload.detainees[0].date_of_birth": date(1991, 3, 14),
                                          "payload.detainees[0].birth_year": None})
    decision = decide(alert, "COL", ps, *ACROSS)
    assert len(decision.rule_ids) == 2
    detainee = build_view(alert, decision, ps, key)["payload"]["detainees"][0]
    assert (detainee["date_of_birth"], detainee["birth_year"]) == (None, None)
    stated = make_alert("gofast_seizure", {"payload.detainees[0].date_of_birth": date(1991, 3, 14),
                                           "payload.detainees[0].birth_year": 1991})
    detainee = build_view(stated, decide(stated, "COL", ps, *ACROSS), ps, key)["payload"]["detainees"][0]
    assert (detainee["date_of_birth"], detainee["birth_year"]) == (None, 1991)  # as the alert states it: both keep it
    (policy_copy.root / "agreements" / name).unlink()
    alone = policy_copy.load()  # COMBIFRON alone still gives the year
    detainee = build_view(alert, decide(alert, "COL", alone, now), alone, key)["payload"]["detainees"][0]
    assert (detainee["date_of_birth"], detainee["birth_year"]) == (None, 1991)


def test_a_cell_of_a_finer_grid_lies_inside_one_cell_of_every_coarser() -> None:
    """A partner may read one coordinate on two grids (versions sent under different agreements in force): what the
    two cells tell together must be no more than the finer cell. Put in cells from below on grids of the ladder,
    a value's finer cell lies inside its coarser cell, values on cell edges and in float-awkward spots included.
    (Rounded to the nearest, 7.75 went to 7.8 on 0.1 and 7.75 on 0.01, and 7.749 to 7.7 and 7.75: the 0.01 value
    7.75 then told the 0.1 rounding's side, halving the finer cell.)"""
    from policies._fields import FieldInfo
    from policies._model import GRIDS, Action, FieldRule
    from policies._view import compile_step

    ctx = ViewContext(b"k" * 32, "COL", ViewSettings())
    steps = {}
    for grid in GRIDS:
        step = compile_step(FieldInfo("v", "double", True), FieldRule(action=Action.GENERALISE, grid=grid),
                            ViewSettings())
        assert step is not None
        steps[grid] = step
    rng = random.Random(7)
    values = [7.75, 7.749, 7.7496, -77.45, -77.461, 0.0, -0.0001, 8.05, 0.3, 12.5, -82.83, 179.995, -89.9999]
    values += [round(rng.uniform(-180, 180), rng.randint(0, 6)) for _ in range(3000)]
    # a GPS fix of eight decimals just below or above a line of a coarse grid: 7.79999999, -131.60000001
    values += [round(rng.randint(-1800, 1800) / 10 + rng.choice((-1, 1)) * 1e-8, 8) for _ in range(3000)]
    values += [7.79999999, -131.60000001, 7.80000001, 0.09999999999]
    for value in values:
        cells = {}
        for grid, step in steps.items():
            rec = {"v": value}
            step(rec, ctx)
            cells[grid] = rec["v"]
            assert cells[grid] <= value + 1e-9 < cells[grid] + grid + 1e-9, (value, grid, cells[grid])
        for fine in GRIDS:
            for coarse in GRIDS:
                if fine < coarse:
                    inside = cells[coarse] - 1e-9 <= cells[fine] and cells[fine] + fine <= cells[coarse] + coarse + 1e-9
                    assert inside, (value, fine, coarse, cells)
