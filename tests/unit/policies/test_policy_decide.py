"""The decision core: every withholding rule, default deny, and decisions as values."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policies import Outcome, PolicySet, build_view, decide, decide_many
from puente.dev.synthetic import generate

MakeAlert = Callable[..., dict[str, Any]]

# (fixture, changes, partner, rule id that must withhold)
WITHHOLDS = [
    ("darien_sighting", {"markings.classification": "SECRETO"}, "COL", "partner.clearance"),
    ("tocumen_hit", {"markings.classification": "SECRETO"}, "USA", "PAN-USA.max_classification"),
    ("darien_sighting", {"markings.releasable_to": ["USA"]}, "COL", "marking.releasability"),
    ("darien_sighting", {"markings.caveats": ["PANAMA_ONLY"]}, "COL", "caveat.PANAMA_ONLY"),
    ("tocumen_hit", {"markings.caveats": ["ORCON"]}, "USA", "caveat.ORCON"),
    ("darien_sighting", {"markings.handling_code": "H2"}, "COL", "handling.H2"),
    ("darien_sighting", {"markings.handling_code": "H3"}, "COL", "handling.H3"),
    ("darien_sighting", {"markings.source_reliability": "D"}, "COL", "COMBIFRON.min_grading"),
    ("darien_sighting", {"markings.information_credibility": "5"}, "COL", "COMBIFRON.min_grading"),
    ("darien_sighting", {}, "USA", "agreement.coverage"),
    ("darien_sighting", {"payload.event_type": "OTHER"}, "COL", "COMBIFRON-BORDER.event_types"),
    ("darien_sighting", {"location.province": "COLON", "location.border_sector": None}, "COL", "COMBIFRON-BORDER.area"),
    # No position: a sector whose outline the agreed province does not meet contradicts it.
    ("darien_sighting", {"location.border_sector": "CHIRIQUI_PASO_CANOAS", "location.latitude": None,
                         "location.longitude": None}, "COL", "COMBIFRON-BORDER.area"),
    ("tocumen_hit", {"payload.risk_level": "MEDIUM"}, "USA", "USA-WATCHLIST.watchlist"),
    ("gofast_seizure", {"payload.items[0].category": "OTHER", "payload.items[1].category": "OTHER"}, "USA",
     "USA-SEIZURE.categories"),
    ("colombia_inbound_hit", {"payload.risk_level": "HIGH"}, "USA", "originator.foreign"),
    ("darien_sighting", {"markings.expires_at": "2025-06-01T00:00:00Z"}, "COL", "alert.expired"),
]  # fmt: skip

UNKnowN_MARKINGS = [
    ({"markings.classification": "TOP_SECRET"}, "unknown.classification"),
    ({"markings.caveats": ["NOFORN"]}, "unknown.caveat"),
    ({"markings.handling_code": "H9"}, "unknown.handling_code"),
    ({"markings.source_reliability": "Z"}, "unknown.grading"),
    ({"markings.information_credibility": "9"}, "unknown.grading"),
    ({"markings.releasable_to": ["COL", "XXX"]}, "unknown.releasable_to"),
    ({"markings.originator_consent": ["XXX"]}, "unknown.originator_consent"),
    ({"markings.originator.country": "XXX"}, "unknown.originator_country"),
]


@pytest.mark.parametrize(("fixture", "changes", "partner", "rule"), WITHHOLDS)
def test_each_rule_withholds_on_its_own(
    policy_set: PolicySet,
    fixture: str,
    changes: dict[str, Any],
    partner: str,
    rule: str,
    make_alert: MakeAlert,
    now: datetime,
) -> None:
    """Each listed condition alone withholds, naming its rule id."""
    decision = decide(make_alert(fixture, changes), partner, policy_set, now)
    assert decision.outcome is Outcome.WITHHOLD
    assert rule in decision.rule_ids
    assert len(decision.reasons) >= len(decision.rule_ids)


@pytest.mark.parametrize(("changes", "rule"), UNKnowN_MARKINGS)
def test_unknown_marking_withholds_from_every_partner(
    policy_set: PolicySet, changes: dict[str, Any], rule: str, make_alert: MakeAlert, now: datetime
) -> None:
    """A marking value the policy does not know withholds for every partner, internal ones included."""
    alert = make_alert("darien_sighting", changes)
    for partner in policy_set.partners:
        decision = decide(alert, partner, policy_set, now)
        assert decision.outcome is Outcome.WITHHOLD, partner
        assert rule in decision.rule_ids


@pytest.mark.parametrize(("field", "rule", "said"), [
    ("classification", "unknown.classification",
     "the classification is not on the policy's scale (PUBLICO, RESTRINGIDO, CONFIDENCIAL, SECRETO)"),
    ("handling_code", "unknown.handling_code", "the handling code is not one the policy knows (H0, H1, H2, H3)"),
    ("source_reliability", "unknown.grading",
     "the grading's source reliability is not one the policy knows (A, B, C, D, E, F)"),
    ("information_credibility", "unknown.grading",
     "the grading's information credibility is not one the policy knows (1, 2, 3, 4, 5, 6)"),
])
def test_an_unknown_level_handling_code_or_grading_is_never_quoted(
    policy_set: PolicySet, field: str, rule: str, said: str, make_alert: MakeAlert, now: datetime
) -> None:
    """A classification, handling code or grading the policy does not know is named by its field, with the codes
    the policy knows, never quoted: anything but one of those is the agency's text (a name written as a code), and
    the reasons reach the audit entry."""
    alert = make_alert("darien_sighting", {f"markings.{field}": "Juan.Perez.Pasaporte.AB123456"})
    for decision in decide_many(alert, list(policy_set.partners), policy_set, now):
        assert decision.outcome is Outcome.WITHHOLD and rule in decision.rule_ids
        assert said in decision.reasons and not any("Juan" in reason for reason in decision.reasons)


def test_the_fixture_itself_is_delivered(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """The base alert of WITHHOLDS is delivered, so each withhold above is caused by its change."""
    for fixture, _, partner, rule in WITHHOLDS:
        if rule in ("agreement.coverage", "originator.foreign", "USA-WATCHLIST.watchlist"):
            continue
        assert decide(make_alert(fixture), partner, policy_set, now).delivers, (fixture, partner)


def test_unknown_partner_and_naive_time_withhold(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """An unknown partner or a time without offset is a withhold decision, not an exception."""
    alert = make_alert()
    assert decide(alert, "GBR", policy_set, now).rule_ids == ("unknown.partner",)
    naive = decide(alert, "COL", policy_set, now.replace(tzinfo=None))
    assert naive.rule_ids == ("time.naive",)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda a: a.pop("markings"),
        lambda a: a["markings"].pop("caveats"),
        lambda a: a["markings"].update(caveats=None),
        lambda a: a["markings"].update(originator="PAN"),
        lambda a: a["payload"].pop("event_type"),
        lambda a: a["markings"].update(expires_at="yesterday"),
        lambda a: a["markings"].pop("expires_at"),  # missing is not "never expires"
        lambda a: a["markings"].update(releasable_to="COL"),  # a string is not a list of names
    ],
)
def test_malformed_alert_withholds_without_raising(
    policy_set: PolicySet, breakage: Any, make_alert: MakeAlert, now: datetime
) -> None:
    """A malformed alert yields a withhold decision naming alert.malformed; decide never raises."""
    alert = copy.deepcopy(make_alert())
    breakage(alert)
    decision = decide(alert, "COL", policy_set, now)
    assert decision.outcome is Outcome.WITHHOLD
    assert decision.rule_ids == ("alert.malformed",)


def test_every_failing_check_is_reported(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """A withhold lists every failing rule, not just the first: the officer sees them all."""
    alert = make_alert("darien_sighting", {"markings.classification": "SECRETO", "markings.caveats": ["PANAMA_ONLY"]})
    decision = decide(alert, "COL", policy_set, now)
    assert {"partner.clearance", "COMBIFRON.max_classification", "caveat.PANAMA_ONLY"} <= set(decision.rule_ids)


def test_delivery_carries_agreement_terms_and_version(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """A delivery names its agreement and rule, the retention, onward sharing and the policy version."""
    decision = decide(make_alert("paso_canoas_flow"), "CRI", policy_set, now)
    assert decision.outcome is Outcome.DELIVER_REDACTED
    assert decision.agreement_id == "PAN-CRI"
    assert decision.rule_ids == ("CRI-MIGRATION",)
    assert (decision.retention_days, decision.onward_sharing) == (90, True)
    assert decision.policy_version == policy_set.version
    assert {r.path for r in decision.redactions} >= {"summary", "payload.patrol_unit", "occurred_at"}


def test_unredacted_agreement_delivers_plainly(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """An agreement that keeps every field gives DELIVER, with no redactions."""
    decision = decide(make_alert("gofast_seizure"), "FEAN", policy_set, now)
    assert decision.outcome is Outcome.DELIVER
    assert decision.redactions == ()


def test_h1_notice_travels_with_the_delivery(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """H1 does not withhold; the decision names it and states the evidence restriction."""
    decision = decide(make_alert("darien_sighting", {"markings.handling_code": "H1"}), "COL", policy_set, now)
    assert decision.delivers
    assert "handling.H1" in decision.rule_ids
    assert any("evidence" in r for r in decision.reasons)


def test_review_overdue_notice_travels_with_the_delivery(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """A review date already past does not withhold (expiry does); the delivery names alert.review_overdue and
    the date. More in test_policy_review.py."""
    decision = decide(make_alert("darien_sighting", {"markings.review_at": "2025-06-01T00:00:00Z"}), "COL",
                      policy_set, now)
    assert decision.delivers
    assert decision.rule_ids == ("COMBIFRON-BORDER", "alert.review_overdue")
    assert "2025-06-01T00:00:00+00:00" in decision.reasons[-1]


def test_validity_is_judged_in_panama_time(policy_set: PolicySet, make_alert: MakeAlert) -> None:
    """COMBIFRON ends 2027-02-28 in Panama: 04:59Z on 1 March is in force, 05:00Z is not."""
    alert = make_alert()
    inside = datetime(2027, 3, 1, 4, 59, tzinfo=UTC)
    assert decide(alert, "COL", policy_set, inside).delivers
    after = decide(alert, "COL", policy_set, inside + timedelta(minutes=1))
    assert after.rule_ids == ("COMBIFRON.validity",)
    assert "expired" in after.reasons[0]


def test_two_clocks_hold_the_decision_for_every_moment_between_them(policy_set: PolicySet, now: datetime,
                                                                     make_alert: MakeAlert) -> None:
    """With ``until`` (Kafka's time of the record, ahead of the worker's clock), the agreement must be in force from
    ``now`` to ``until``, and expiry is judged at ``until``: a slow worker clock never delivers past an agreement's
    end. ``until`` before ``now`` changes nothing; one that is no aware datetime withholds."""
    alert = make_alert()
    inside = datetime(2027, 3, 1, 4, 30, tzinfo=UTC)  # COMBIFRON is in force until 05:00Z
    later = inside + timedelta(minutes=40)
    assert decide(alert, "COL", policy_set, inside).delivers
    for held in (decide(alert, "COL", policy_set, inside, later), decide_many(alert, ["COL"], policy_set, inside,
                                                                               later)[0]):
        assert held.rule_ids == ("COMBIFRON.validity",)
        assert "COMBIFRON is expired by the later of the decision's two clocks" in held.reasons[0]
    assert decide(alert, "COL", policy_set, inside, inside - timedelta(hours=1)).delivers
    assert decide(alert, "COL", policy_set, inside, inside + timedelta(minutes=29)).delivers
    # The start is judged at the worker's time: a Kafka time after it is no proof the agreement has begun.
    start = datetime(2024, 3, 1, 5, 0, tzinfo=UTC)  # 1 March 2024 in Panama
    assert decide(alert, "COL", policy_set, start - timedelta(minutes=1), start + timedelta(minutes=5)).rule_ids == \
        ("COMBIFRON.validity",)
    expiring = make_alert("darien_sighting", {"markings.expires_at": "2025-06-03T12:00:00Z"})
    assert decide(expiring, "COL", policy_set, now).delivers
    assert "alert.expired" in decide(expiring, "COL", policy_set, now, now + timedelta(hours=12)).rule_ids
    naive = decide(alert, "COL", policy_set, inside, later.replace(tzinfo=None))
    assert not naive.delivers and naive.rule_ids == ("time.naive",) and "(now, or until)" in naive.reasons[0]


def test_a_window_across_a_renewal_is_covered_by_both_agreements(policy_copy: Any) -> None:
    """PAN-USA ends 2028-03-31 and PAN-USA-2028, its renewal, begins the next day: a decision whose two clocks fall on
    either side of midnight in Panama (a record appended before it, decided after) is covered for every moment, by
    one agreement then the other, and delivers under both, their rules together. A day with no agreement between
    them leaves a moment uncovered: withheld, each agreement saying which clock it fails."""
    body = policy_copy.text("agreements/pan-usa.yaml")
    renewed = (body.replace("id: PAN-USA\n", "id: PAN-USA-2028\n")
               .replace("valid_from: 2025-04-01", "valid_from: 2028-04-01")
               .replace("valid_until: 2028-03-31", "valid_until: 2031-03-31").replace("rule: USA-", "rule: USA2-"))
    policy_copy.write("agreements/pan-usa-2028.yaml", renewed)
    ps = policy_copy.load()
    change = datetime(2028, 4, 1, 5, 0, tzinfo=UTC)  # midnight in Panama
    before, after = change - timedelta(minutes=20), change + timedelta(minutes=10)
    alerts = [a for a in generate(400, seed=3, now=change) if decide(a, "USA", ps, before).delivers]
    assert alerts
    for alert in alerts:
        both = decide(alert, "USA", ps, before, after)
        assert both.delivers and both.agreement_ids == ("PAN-USA", "PAN-USA-2028"), both
        assert {r.split("-")[0] for r in both.rule_ids if "-" in r} == {"USA", "USA2"}, both.rule_ids
        assert decide_many(alert, ["USA"], ps, before, after)[0] == both
    # A day between them: 1 April 2028 covered by neither.
    policy_copy.write("agreements/pan-usa-2028.yaml",
                      renewed.replace("valid_from: 2028-04-01", "valid_from: 2028-04-02"))
    gap = policy_copy.load()
    held = decide(alerts[0], "USA", gap, before, after)
    assert held.rule_ids == ("PAN-USA.validity", "PAN-USA-2028.validity")
    assert "PAN-USA is expired by the later of the decision's two clocks" in held.reasons[0]
    assert "PAN-USA-2028 is not yet in force (valid" in held.reasons[1]
    # Across the next day's start, the other way: not in force by the earlier clock.
    late = decide(alerts[0], "USA", gap, change + timedelta(days=1) - timedelta(minutes=5), change + timedelta(days=1))
    assert late.rule_ids == ("PAN-USA.validity", "PAN-USA-2028.validity") and not late.delivers
    assert "PAN-USA-2028 is not yet in force by the earlier of the decision's two clocks" in late.reasons[1]


def test_equal_inputs_give_equal_decisions(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """The same alert, partner and time give equal decisions, also for a copy of the alert."""
    alert = make_alert("gofast_seizure")
    for partner in policy_set.partners:
        assert decide(alert, partner, policy_set, now) == decide(copy.deepcopy(alert), partner, policy_set, now)


def test_decide_does_not_change_the_alert(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """Deciding reads the alert only."""
    alert = make_alert("gofast_seizure")
    before = copy.deepcopy(alert)
    for partner in policy_set.partners:
        decide(alert, partner, policy_set, now)
    assert alert == before


# COMBIFRON's successor for border events, from the day after the copy's COMBIFRON ends (2025-06-02); loading
# refuses two agreements sharing a day, so several apply at once only to a window across such a change.
SUCCESSOR = """
id: COMBIFRON-ANNEX
title: COMBIFRON annex on border events
parties: [PAN, COL]
legal_basis: Annex to the COMBIFRON framework
purpose: Border events in Guna Yala only
valid_from: 2025-06-03
valid_until: 2026-12-31
max_classification: RESTRINGIDO
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
      location: keep
      summary: keep
      payload: keep
      location.place_name: drop
"""


def test_agreements_across_a_renewal_both_apply_and_the_stricter_wins(
    policy_copy: Any, make_alert: MakeAlert
) -> None:
    """With two agreements in force for one partner and type over a decision's window (its two clocks on either
    side of the day one ends and the next begins), every check of both applies."""
    policy_copy.replace("agreements/combifron.yaml", "valid_until: 2027-02-28", "valid_until: 2025-06-02")
    policy_copy.write("agreements/annex.yaml", SUCCESSOR)
    ps = policy_copy.load()
    change = datetime(2025, 6, 3, 5, 0, tzinfo=UTC)  # midnight in Panama
    before, after = change - timedelta(minutes=10), change + timedelta(minutes=10)
    decision = decide(make_alert(), "COL", ps, before, after)
    assert set(decision.rule_ids) == {"COMBIFRON-BORDER", "ANNEX-BORDER"}
    assert decision.retention_days == 30
    # The delivery names the agreement whose retention binds: the partner's store keeps the alert by it.
    assert decision.agreement_ids == ("COMBIFRON-ANNEX", "COMBIFRON") and decision.agreement_id == "COMBIFRON-ANNEX"
    assert "location.place_name" in {r.path for r in decision.redactions}
    confidential = make_alert("darien_sighting", {"markings.classification": "CONFIDENCIAL"})
    assert decide(confidential, "COL", ps, before).delivers  # COMBIFRON alone allows it
    assert decide(confidential, "COL", ps, before, after).rule_ids == ("COMBIFRON-ANNEX.max_classification",)


def test_partner_without_agreement_is_withheld(policy_copy: Any, make_alert: MakeAlert, now: datetime) -> None:
    """A partner with keys and a topic but no agreement receives nothing."""
    policy_copy.replace(
        "partners.yaml",
        "partners:\n",
        "partners:\n  - {id: GTM, name: Guatemala, country: GTM, kind: foreign, clearance: RESTRINGIDO,\n"
        "     feed_topic: puente.feed.GTM, contact: {name: enlace}}\n",
    )
    ps = policy_copy.load()
    decision = decide(make_alert("darien_sighting", {"markings.releasable_to": ["GTM"]}), "GTM", ps, now)
    assert decision.rule_ids == ("agreement.none",)


def test_consent_for_one_partner_does_not_reach_another_of_its_country(
        policy_copy: Any, make_alert: MakeAlert, now: datetime) -> None:
    """Consent is given per partner: the originator's consent for USA releases an H2 alert to USA only, not to a
    second United States partner under the same agreement; and consent naming a country, not a partner, names no
    one, so it is refused as unknown."""
    policy_copy.replace(
        "partners.yaml",
        "partners:\n",
        "partners:\n  - {id: USA-CBP, name: CBP desk, country: USA, kind: foreign, clearance: SECRETO,\n"
        "     feed_topic: puente.feed.USA-CBP, contact: {name: enlace}}\n",
    )
    policy_copy.replace("agreements/pan-usa.yaml", "parties: [PAN, USA]", "parties: [PAN, USA, USA-CBP]")
    ps = policy_copy.load()
    alert = make_alert("tocumen_hit", {"markings.caveats": ["ORCON"], "markings.originator_consent": ["USA"]})
    assert decide(alert, "USA", ps, now).delivers
    second = decide(alert, "USA-CBP", ps, now)
    assert not second.delivers and "caveat.ORCON" in second.rule_ids
    country = make_alert("tocumen_hit", {"markings.handling_code": "H2", "markings.originator_consent": ["PAN"]})
    assert "unknown.originator_consent" in decide(country, "FEAN", ps, now).rule_ids


def test_a_partners_own_list_is_one_it_names_not_one_of_its_country(
        policy_copy: Any, make_alert: MakeAlert, now: datetime) -> None:
    """A medium hit on DHS's USA_PARTNER list goes to USA, whose watchlists name it, not to a second United States
    partner with lists of its own under the same agreement: a list is a partner's own when it names it."""
    policy_copy.replace(
        "partners.yaml",
        "partners:\n",
        "partners:\n  - {id: USA-CBP, name: CBP desk, country: USA, kind: foreign, clearance: SECRETO,\n"
        "     feed_topic: puente.feed.USA-CBP, watchlists: [CBP_OWN], contact: {name: enlace}}\n",
    )
    policy_copy.replace("agreements/pan-usa.yaml", "parties: [PAN, USA]", "parties: [PAN, USA, USA-CBP]")
    policy_copy.replace("vocabulary.yaml", "        CRI_PARTNER: CRI\n",
                        "        CRI_PARTNER: CRI\n        CBP_OWN: USA\n")
    ps = policy_copy.load()
    hit = make_alert("tocumen_hit", {"payload.risk_level": "MEDIUM", "payload.list_name": "USA_PARTNER",
                                     "payload.list_owner": "USA"})
    assert decide(hit, "USA", ps, now).delivers
    assert decide(hit, "USA-CBP", ps, now).rule_ids == ("USA-WATCHLIST.watchlist",)


def test_a_partner_naming_a_list_another_keeps_gets_no_more_of_it(
        policy_copy: Any, make_alert: MakeAlert, now: datetime) -> None:
    """USA holding INTERPOL's or Panama's list among its watchlists (as a policy loaded before the check would
    hold it: loading refuses the claim) does not widen the agreement's "high and critical only": the own-list
    clause wants the vocabulary's keeper of the list and its keeper as the agency gives it both to be the
    partner's country, so a hit on INTERPOL's list whose agency names the USA as its keeper is withheld too."""
    ps = policy_copy.load()
    claimed = dataclasses.replace(ps.partners["USA"], watchlists=frozenset(
        {"USA_PARTNER", "INTERPOL_RED_NOTICE", "PAN_NATIONAL"}))
    ps = dataclasses.replace(ps, partners={**ps.partners, "USA": claimed})
    for name, owner in (("INTERPOL_RED_NOTICE", "INTERPOL"), ("PAN_NATIONAL", "PAN"), ("USA_PARTNER", "PAN"),
                        ("INTERPOL_RED_NOTICE", "USA"), ("PAN_NATIONAL", "USA")):
        hit = make_alert("tocumen_hit", {"payload.risk_level": "LOW", "payload.list_name": name,
                                         "payload.list_owner": owner})
        assert decide(hit, "USA", ps, now).rule_ids == ("USA-WATCHLIST.watchlist",), (name, owner)
    own = make_alert("tocumen_hit", {"payload.risk_level": "LOW", "payload.list_name": "USA_PARTNER",
                                     "payload.list_owner": "USA"})
    assert decide(own, "USA", ps, now).delivers


@pytest.mark.parametrize(("changes", "rule"), [
    ({"markings.releasable_to": ["COL", "MARIA_PEREZ_GOMEZ_1985"]}, "unknown.releasable_to"),
    ({"markings.caveats": ["TESTIGO_PROTEGIDO_JUAN_RIVAS"]}, "unknown.caveat"),
    ({"markings.originator_consent": ["CONFIDENTE_ALIAS_EL_MONO"]}, "unknown.originator_consent"),
    ({"markings.releasable_to": ["MARIA_PEREZ_GOMEZ_1985", "CRI"]}, "marking.releasability"),
    ({"markings.originator.country": "MARIA_PEREZ"}, "unknown.originator_country"),
], ids=["releasable_to", "caveat", "consent", "releasability", "originator-country"])
def test_a_marking_entry_the_policy_does_not_know_is_counted_never_quoted(
    policy_set: PolicySet, changes: dict[str, Any], rule: str, make_alert: MakeAlert, now: datetime
) -> None:
    """A code-shaped marking entry no policy code names is the agency's text (a name typed into a marking column):
    every partner's decision withholds and names the field, counts such entries and lists the policy's codes, and
    no reason quotes the entry, in any partner's decision."""
    alert = make_alert("darien_sighting", changes)
    told = False
    for decision in decide_many(alert, sorted(policy_set.partners), policy_set, now):
        text = " ".join(decision.reasons)
        assert not any(word in text for word in ("MARIA", "JUAN", "MONO")), text
        told |= rule in decision.rule_ids
        assert decision.outcome is Outcome.WITHHOLD or rule == "marking.releasability", decision.reasons
    assert told
    releasability = decide(alert, "USA", policy_set, now)
    if rule == "marking.releasability":
        assert "releasable_to (CRI; 1 entry unknown to the policy) omits USA" in releasability.reasons


HUGE = "X" * 1_000_000
MARKING_TARGETS = [
    ({"markings.classification": HUGE}, "unknown.classification"),
    ({"markings.caveats": [HUGE, HUGE + "Y"]}, "unknown.caveat"),
    ({"markings.handling_code": HUGE}, "unknown.handling_code"),
    ({"markings.source_reliability": HUGE, "markings.information_credibility": HUGE}, "unknown.grading"),
    ({"markings.releasable_to": ["COL", *(f"{i}{HUGE}" for i in range(20))]}, "unknown.releasable_to"),
    ({"markings.originator_consent": [f"{i}{HUGE}" for i in range(20)]}, "unknown.originator_consent"),
    ({"markings.originator.country": HUGE}, "unknown.originator_country"),
    ({"location.province": HUGE, "location.border_sector": HUGE}, "COMBIFRON-BORDER.area"),
]


@pytest.mark.parametrize(("changes", "rule"), MARKING_TARGETS, ids=[r for _, r in MARKING_TARGETS])
def test_a_megabyte_marking_gives_reasons_of_a_few_hundred_bytes(
    policy_set: PolicySet, changes: dict[str, Any], rule: str, make_alert: MakeAlert, now: datetime
) -> None:
    """Reasons quote alert values as short excerpts (lists cut to a few items and a count), so one
    huge marking cannot make an audit record, or the decision memo, megabytes long."""
    alert = make_alert("darien_sighting", changes)
    decision = decide(alert, "COL", policy_set, now)
    assert decision.outcome is Outcome.WITHHOLD and rule in decision.rule_ids
    quoted = decision.reasons[decision.rule_ids.index(rule)]
    assert len(quoted) < 250, quoted
    assert sum(len(r.encode()) for r in decision.reasons) < 800, decision.reasons
    if isinstance(changes.get("markings.releasable_to"), list):
        assert "names 20 entries unknown to the policy" in quoted  # counted, none quoted


def test_distinct_huge_markings_leave_the_memo_small(make_alert: MakeAlert, now: datetime) -> None:
    """10,000 alerts each with its own 100 kB classification: the memo of shared decisions stays within
    its byte budget, and what it holds is a few MB at most, not a gigabyte of quoted markings."""
    import sys

    from policies import load_policy_set
    from policies._decide import MEMO_BYTES

    ps = load_policy_set()  # a memo of its own
    alert = make_alert("darien_sighting")
    big = "X" * 100_000
    for i in range(10_000):
        alert["markings"]["classification"] = f"{i:05d}{big}"
        for partner in ("COL", "FEAN"):
            assert decide(alert, partner, ps, now).rule_ids[0] == "unknown.classification"
    held = sum(sys.getsizeof(r) for d in ps.memo.values() for r in d.reasons)
    assert 0 < ps.memo.size <= MEMO_BYTES
    assert held < 8 << 20, held
    assert all(len(r) < 250 for d in ps.memo.values() for r in d.reasons)


class _Faulty(dict[str, Any]):
    """An alert whose markings raise a given exception when read: any fault an alert can cause."""

    fault: type[BaseException] = Exception

    def __getitem__(self, key: str) -> Any:
        if key == "markings":
            raise self.fault("a message that quotes alert content: Quiñónez")
        return super().__getitem__(key)


FAULTS = [OverflowError, RecursionError, MemoryError, ZeroDivisionError, UnicodeError, LookupError, RuntimeError,
          ArithmeticError, NotImplementedError, AssertionError]  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_any_fault_an_alert_causes_withholds(
    policy_set: PolicySet, fault: type[Exception], make_alert: MakeAlert, now: datetime
) -> None:
    """decide and decide_many withhold as alert.malformed for every kind of exception, not only the
    usual four, naming the kind of fault and never its message."""
    from policies import decide_many

    faulty = type("Faulty", (_Faulty,), {"fault": fault})(make_alert())
    partners = sorted(policy_set.partners)
    decisions = decide_many(faulty, partners, policy_set, now)
    assert decisions == [decide(faulty, p, policy_set, now) for p in partners]
    for d in decisions:
        assert d.outcome is Outcome.WITHHOLD and d.rule_ids == ("alert.malformed",)
        assert fault.__name__ in d.reasons[0] and "Quiñónez" not in d.reasons[0]


def test_deeply_nested_values_withhold(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """A marking list nested 100,000 deep (beyond any recursion limit) withholds; it does not raise."""
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    for path in ("markings.caveats", "markings.releasable_to", "markings.originator_consent"):
        alert = make_alert()
        section, name = path.split(".")
        alert[section][name] = deep
        for partner in policy_set.partners:
            assert not decide(alert, partner, policy_set, now).delivers


def test_a_marking_list_of_the_wrong_type_withholds(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """A dict whose keys are known names is not a REL TO list: read as its keys it would release."""
    alert = make_alert("darien_sighting")
    alert["markings"]["releasable_to"] = {"COL": "yes", "USA": "yes"}
    decision = decide(alert, "COL", policy_set, now)
    assert decision.rule_ids == ("alert.malformed",)


@pytest.mark.parametrize("changes", [{"markings.handling_code": "H2"}, {"markings.caveats": ["ORCON"]}])
def test_a_release_on_consent_forbids_onward_sharing(policy_set: PolicySet, make_alert: MakeAlert, now: datetime,
                                                     changes: dict[str, Any]) -> None:
    """PAN-CRI allows onward sharing; an alert whose code needs consent, consented to CRI, goes to CRI with the
    consent recorded as a reason and no onward sharing: the consent covers CRI, not whom CRI shares with."""
    plain = decide(make_alert("paso_canoas_flow"), "CRI", policy_set, now)
    assert plain.delivers and plain.onward_sharing
    consented = decide(make_alert("paso_canoas_flow", {**changes, "markings.originator_consent": ["CRI"]}), "CRI",
                       policy_set, now)
    assert consented.delivers and not consented.onward_sharing
    code = next(rule for rule in consented.rule_ids if rule.startswith(("handling.", "caveat.")))
    assert code in ("handling.H2", "caveat.ORCON")
    assert any("the originator consented to CRI; no onward sharing" in reason for reason in consented.reasons)


def test_without_a_position_agreed_labels_alone_still_deliver(policy_set: PolicySet, make_alert: MakeAlert,
                                                             now: datetime) -> None:
    """No coordinates, and every label given agreed: the labels decide, as before."""
    alert = make_alert("darien_sighting", {"location.latitude": None, "location.longitude": None})
    assert decide(alert, "COL", policy_set, now).delivers
    alone = make_alert("darien_sighting", {"location.latitude": None, "location.longitude": None,
                                           "location.border_sector": None})
    assert decide(alone, "COL", policy_set, now).delivers
    # A sector the agreement does not list, inside the agreed province: the labels agree, as with a position.
    inside = make_alert("darien_sighting", {"location.latitude": None, "location.longitude": None,
                                            "location.border_sector": "DARIEN_YAVIZA"})
    assert decide(inside, "COL", policy_set, now).delivers
    unknown = make_alert("darien_sighting", {"location.latitude": None, "location.longitude": None,
                                             "location.border_sector": "NOWHERE"})
    assert not decide(unknown, "COL", policy_set, now).delivers  # no outline to check it against


def test_a_third_countrys_information_released_on_its_consent_forbids_onward_sharing(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """Colombian information goes to Costa Rica only on Colombia's consent, and then no further: PAN-CRI's onward
    sharing does not extend to it, and the consent is recorded as the reason it went."""
    foreign = {"markings.originator.country": "COL"}
    assert not decide(make_alert("paso_canoas_flow", foreign), "CRI", policy_set, now).delivers
    consented = decide(make_alert("paso_canoas_flow", {**foreign, "markings.originator_consent": ["CRI"]}), "CRI",
                       policy_set, now)
    assert consented.delivers and not consented.onward_sharing and "originator.foreign" in consented.rule_ids
    assert "information from COL: its originator recorded consent for CRI; no onward sharing" in consented.reasons


# (fixture, changes, partner, onward sharing, whether originator.foreign is a notice), under a copy of the policy
# whose every agreement but PAN-USA allows onward sharing: only a third country's information forbids it.
ONWARD = [
    # A third country's information (Colombia's): inside Panama as much as abroad, no onward sharing.
    ("colombia_inbound_hit", {}, "FEAN", False, True),
    ("colombia_inbound_hit", {"markings.originator_consent": ["FEAN"]}, "FEAN", False, True),
    ("paso_canoas_flow", {"markings.originator.country": "COL", "markings.originator_consent": ["CRI"]}, "CRI",
     False, True),
    # Panama's own information: the agreement decides, as before.
    ("gofast_seizure", {}, "FEAN", True, False),
    ("paso_canoas_flow", {}, "CRI", True, False),
    ("darien_sighting", {}, "COL", True, False),
    # The partner's own country's information: its own to share, the agreement decides.
    ("colombia_inbound_hit", {}, "COL", True, False),
    ("paso_canoas_flow", {"markings.originator.country": "CRI"}, "CRI", True, False),
]  # fmt: skip


def _many_agrees(alert: dict[str, Any], ps: PolicySet, now: datetime) -> bool:
    """Whether ``decide_many`` for every partner gives what ``decide`` gives for each."""
    partners = list(ps.partners)
    return decide_many(alert, partners, ps, now) == [decide(alert, p, ps, now) for p in partners]


@pytest.fixture
def onward_policy(policy_copy: Any) -> PolicySet:
    """The shipped policy with FEAN-JTF and COMBIFRON allowing onward sharing too (PAN-CRI already does)."""
    for name in ("fean", "combifron"):
        policy_copy.replace(f"agreements/{name}.yaml", "onward_sharing: false", "onward_sharing: true")
    return policy_copy.load()


@pytest.mark.parametrize(("fixture", "changes", "partner", "onward", "notice"), ONWARD)
def test_a_third_countrys_information_is_never_shared_onward_whoever_receives_it(
    onward_policy: PolicySet, make_alert: MakeAlert, now: datetime, key: bytes, fixture: str,
    changes: dict[str, Any], partner: str, onward: bool, notice: bool,
) -> None:
    """Information whose originator is neither Panama nor the partner's own country goes no further than the
    partner, internal or foreign, whatever its agreement allows: the decision says why (originator.foreign) and
    the view is releasable to the partner alone. Panama's and the partner's own country's information keep
    the agreement's onward sharing and the originator's list."""
    alert = make_alert(fixture, changes)
    decision = decide(alert, partner, onward_policy, now)
    assert decision.delivers and decision.onward_sharing is onward, decision.reasons
    assert ("originator.foreign" in decision.rule_ids) is notice
    assert _many_agrees(alert, onward_policy, now)
    view = build_view(alert, decision, onward_policy, key)
    rel = alert["markings"]["releasable_to"]
    assert view["markings"]["releasable_to"] == (rel if onward else [partner])


def test_an_internal_partner_is_told_why_a_third_countrys_information_goes_no_further(
    onward_policy: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """Colombian information REL TO COL, USA reaches FEAN, but FEAN is not told it may pass it to the USA, which
    Puente itself withholds without Colombia's consent: the reason names the originator and the consent."""
    alert = make_alert("colombia_inbound_hit", {"payload.risk_level": "HIGH"})
    assert decide(alert, "USA", onward_policy, now).rule_ids == ("originator.foreign",)
    fean = decide(alert, "FEAN", onward_policy, now)
    assert fean.delivers and not fean.onward_sharing
    assert fean.rule_ids == ("FEAN-WATCHLIST", "originator.foreign")
    assert fean.reasons[-1] == ("information from COL: FEAN may use it inside PAN; passing it on needs COL's "
                                "consent, so no onward sharing")


def test_a_list_of_caveats_gives_one_reason_for_its_unknown_ones_and_one_per_known(
    policy_set: PolicySet, make_alert: MakeAlert, now: datetime
) -> None:
    """Every unknown caveat goes in one reason (counted, never quoted), each known caveat counts once
    however often repeated: the reasons of a decision do not grow with the list, which the broker copies into every
    partner's audit entry. (The codec refuses more than 64 caveats, so the list is set on the decoded value: the
    decision takes any value it is given.)"""
    many = [f"X{i}" for i in range(10_000)] + ["ORCON"] * 10_000 + ["X1"] * 1_000
    alert = make_alert("tocumen_hit")
    alert["markings"]["caveats"] = many
    decision = decide(alert, "USA", policy_set, now)
    assert decision.outcome is Outcome.WITHHOLD
    assert decision.rule_ids.count("unknown.caveat") == 1 and decision.rule_ids.count("caveat.ORCON") == 1
    quoted = decision.reasons[decision.rule_ids.index("unknown.caveat")]
    assert quoted == "10,000 caveats are unknown to the policy (it knows PANAMA_ONLY, ORCON, LES, PII)"
    assert len(decision.reasons) < 10 and sum(len(r) for r in decision.reasons) < 1_000
    one = decide(make_alert("tocumen_hit", {"markings.caveats": ["NOFORN", "NOFORN"]}), "USA", policy_set, now)
    assert one.reasons[one.rule_ids.index("unknown.caveat")] == \
        "1 caveat is unknown to the policy (it knows PANAMA_ONLY, ORCON, LES, PII)"
