"""Every country whose information an alert carries is an originator: its markings' and a watchlist's keeper."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from policies import Outcome, PolicySet, decide, decide_many

MakeAlert = Callable[..., dict[str, Any]]


def _hit(make_alert: MakeAlert, owner: str, **changes: Any) -> dict[str, Any]:
    """Panama's own report (originator PAN, REL TO USA, COL) of a high-risk hit on ``owner``'s list."""
    lists = {"USA": "USA_PARTNER", "COL": "COL_PARTNER", "INTERPOL": "INTERPOL_RED_NOTICE"}
    return make_alert("tocumen_hit", {"payload.list_name": lists.get(owner, "PAN_NATIONAL"),
                                      "payload.list_owner": owner, **changes})


@pytest.mark.parametrize(("owner", "partner"), [("USA", "COL"), ("COL", "USA")])
def test_a_hit_on_a_third_countrys_list_goes_abroad_only_on_consent(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime, owner: str, partner: str) -> None:
    """A hit Panama reports on one partner's list is that country's information: another foreign partner gets it
    only when the alert records consent for it, and then may pass it on to nobody."""
    withheld = decide(_hit(make_alert, owner), partner, policy_set, now)
    assert withheld.outcome is Outcome.WITHHOLD
    assert withheld.rule_ids == ("originator.foreign",)
    assert withheld.reasons == (f"information from {owner} goes to a third country only with its consent",)
    released = decide(_hit(make_alert, owner, **{"markings.originator_consent": [partner]}), partner, policy_set, now)
    assert released.delivers
    assert "originator.foreign" in released.rule_ids
    assert not released.onward_sharing


def test_an_internal_partner_is_told_a_foreign_lists_hit_goes_no_further(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """Inside Panama a hit on the USA's list may be used, with the notice that passing it on needs the USA's
    consent, and no onward sharing."""
    decision = decide(_hit(make_alert, "USA"), "FEAN", policy_set, now)
    assert decision.delivers
    assert decision.rule_ids[-1] == "originator.foreign"
    assert "passing it on needs USA's consent" in decision.reasons[-1]
    assert not decision.onward_sharing


@pytest.mark.parametrize(("owner", "partner"), [("USA", "USA"), ("COL", "COL"), ("PAN", "USA"), ("INTERPOL", "COL"),
                                                ("INTERPOL", "FEAN")])
def test_the_home_countrys_the_partners_own_and_an_open_keepers_lists_need_no_consent(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime, owner: str, partner: str) -> None:
    """A hit on Panama's list, on the partner's own country's list, or on a list its keeper opens to every partner
    (INTERPOL, as vocabulary.yaml declares) is released without the third-country rule."""
    decision = decide(_hit(make_alert, owner), partner, policy_set, now)
    assert decision.delivers, decision.reasons
    assert "originator.foreign" not in decision.rule_ids


def test_each_owner_besides_the_partners_country_is_named(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """Colombia's relay of a hit on the USA's list carries both countries' information: the task force is told of
    both, Colombia needs the USA's consent, and consent for Colombia releases it."""
    relayed = _hit(make_alert, "USA", **{"markings.originator.country": "COL"})
    inside = decide(relayed, "FEAN", policy_set, now)
    assert inside.rule_ids.count("originator.foreign") == 1
    assert "information from COL and USA" in inside.reasons[-1]
    abroad = decide(relayed, "COL", policy_set, now)
    assert abroad.reasons == ("information from USA goes to a third country only with its consent",)
    consented = _hit(make_alert, "USA", **{"markings.originator.country": "COL",
                                           "markings.originator_consent": ["COL"]})
    assert decide(consented, "COL", policy_set, now).delivers


def test_a_list_keeper_the_policy_does_not_know_withholds_unquoted(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """A list_owner that is neither a partner's country nor an open keeper withholds the hit from every partner,
    internal or not, and the reason never quotes it (it may be the agency's text)."""
    hit = _hit(make_alert, "MARIA_PEREZ")
    for decision in decide_many(hit, ["USA", "COL", "FEAN"], policy_set, now):
        assert decision.outcome is Outcome.WITHHOLD
        assert decision.rule_ids == ("unknown.owner",)
        assert "MARIA" not in " ".join(decision.reasons)


@pytest.mark.parametrize("said", ["COL", "PAN", "INTERPOL"])
def test_a_lists_own_keeper_is_an_owner_whatever_list_owner_says(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime, said: str) -> None:
    """A hit on the USA's list is the USA's information even when list_owner names Colombia, Panama (the schema's
    default) or INTERPOL: Colombia gets it only with consent, which then releases it to go no further."""
    hit = make_alert("tocumen_hit", {"payload.list_name": "USA_PARTNER", "payload.list_owner": said})
    withheld = decide(hit, "COL", policy_set, now)
    assert withheld.outcome is Outcome.WITHHOLD
    assert withheld.reasons == ("information from USA goes to a third country only with its consent",)
    consented = make_alert("tocumen_hit", {"payload.list_name": "USA_PARTNER", "payload.list_owner": said,
                                           "markings.originator_consent": ["COL"]})
    released = decide(consented, "COL", policy_set, now)
    assert released.delivers and not released.onward_sharing


def test_list_owner_names_an_owner_besides_the_lists_keeper(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """Both the list's keeper and the keeper the agency gives are owners: a hit on Colombia's list given as the
    USA's is withheld from Colombia and from the USA, each for the other's information."""
    hit = make_alert("tocumen_hit", {"payload.list_name": "COL_PARTNER", "payload.list_owner": "USA"})
    assert decide(hit, "COL", policy_set, now).reasons == (
        "information from USA goes to a third country only with its consent",)
    assert decide(hit, "USA", policy_set, now).reasons == (
        "information from COL goes to a third country only with its consent",)


def test_a_list_the_policy_does_not_know_withholds_unquoted(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """A list vocabulary.yaml names no keeper for withholds the hit from every partner, whatever list_owner says,
    and the reason never quotes the list's name (it may be the agency's text)."""
    hit = make_alert("tocumen_hit", {"payload.list_name": "MARIA_PEREZ_LIST", "payload.list_owner": "PAN"})
    for decision in decide_many(hit, ["USA", "COL", "FEAN"], policy_set, now):
        assert decision.outcome is Outcome.WITHHOLD
        assert decision.rule_ids == ("unknown.owner",)
        assert "MARIA" not in " ".join(decision.reasons)
        assert "payload.list_name names a list the policy does not know" in decision.reasons[0]


def test_decide_many_agrees_with_decide_on_owners(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """The owners read once per alert give each partner the decision ``decide`` gives it."""
    for owner in ("USA", "COL", "INTERPOL", "PAN", "VEN"):
        for name in ("USA_PARTNER", "PAN_NATIONAL", "NO_SUCH_LIST"):
            hit = _hit(make_alert, owner, **{"markings.originator.country": "COL", "payload.list_name": name})
            partners = ["USA", "COL", "CRI", "FEAN"]
            assert decide_many(hit, partners, policy_set, now) == [decide(hit, p, policy_set, now) for p in partners]


def test_open_keepers_are_the_policys_to_declare(policy_copy: Any, make_alert: MakeAlert, now: datetime) -> None:
    """Left out of vocabulary.yaml's open keepers, INTERPOL is a keeper the policy does not know: its red notices
    are withheld."""
    policy_copy.replace("vocabulary.yaml", "open_keepers: [INTERPOL]", "open_keepers: []")
    ps = policy_copy.load()
    assert decide(_hit(make_alert, "INTERPOL"), "USA", ps, now).rule_ids == ("unknown.owner",)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("open_keepers: [INTERPOL]", "open_keepers: [INTERPOL, COL]", "open keeper COL is a country code"),
    ("open_keepers: [INTERPOL]", "open_keepers: [INTERPOL, VEN]", "open keeper VEN is a country code"),
    ("open_keepers: [INTERPOL]", "open_keepers: [Interpol]", "must be written in capitals"),
    ("WATCHLIST_HIT: [payload.list_owner]", "WATCHLIST_HIT: [payload.list_ownr]", "has no field payload.list_ownr"),
    ("WATCHLIST_HIT: [payload.list_owner]", "WATCHLIST_HIT: [payload.person]", "has no field payload.person"),
    ("WATCHLIST_HIT: [payload.list_owner]", "WATCHLIST_HITS: [payload.list_owner]", "alert type WATCHLIST_HITS"),
    ("      field: payload.list_name", "      field: payload.list_nme", "has no field payload.list_nme"),
    ("        CRI_PARTNER: CRI", "        CRI_PARTNER: cri", "keeper cri must be written in capitals"),
], ids=["partner-country", "other-country", "case", "typo", "record", "alert-type", "list-field", "list-keeper"])
def test_the_owners_declaration_is_checked_at_load(policy_copy: Any, old: str, new: str, message: str) -> None:
    """An open keeper that is a country (whose information needs consent) or not written as alerts carry it, and an
    owner field that is not one code of a known alert type, refuse the policy, at the line that says so."""
    policy_copy.replace("vocabulary.yaml", old, new)
    where = new.split(":")[0] if "open_keepers" not in new else "  open_keepers: ["
    line = policy_copy.line_of("vocabulary.yaml", where)
    with pytest.raises(Exception, match=rf"vocabulary.yaml:{line}: \[invalid\] owners: .*{message}"):
        policy_copy.load()


def test_an_alert_naming_no_other_owner_does_no_owner_work(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Panama's own alert of a type with no owner fields nor lists (a sighting) is decided without reading owners,
    as before they were declared; a foreign originator's still is read for them."""
    from policies import _decide

    def _no(*_: Any) -> Any:
        raise AssertionError("owners read")

    sighting = make_alert("darien_sighting", {"markings.originator.country": "PAN"})
    expected = decide_many(sighting, ["USA", "COL", "FEAN"], policy_set, now)
    monkeypatch.setattr(_decide, "_owners", _no)
    assert decide_many(sighting, ["USA", "COL", "FEAN"], policy_set, now) == expected
    foreign = make_alert("darien_sighting", {"markings.originator.country": "COL"})
    assert all(d.rule_ids == ("alert.malformed",) for d in decide_many(foreign, ["USA"], policy_set, now))


def test_consent_for_a_list_keepers_information_is_the_originators_record(
        policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """Consent Panama's agency records for a hit on the USA's list is credited to that originator, on the USA's
    behalf, never to the USA."""
    hit = _hit(make_alert, "USA", **{"markings.originator_consent": ["COL"]})
    assert decide(hit, "COL", policy_set, now).reasons[-1] == (
        "information from USA: consent for COL recorded by the alert's originator (PAN) on USA's behalf; "
        "no onward sharing")


@pytest.mark.parametrize(("alert_type", "path"), [
    ("SEIZURE", "payload.conveyance.kind"),  # under a nullable record: a seizure without a conveyance
    ("WATCHLIST_HIT", "payload.match_reason"),  # nullable itself
])
def test_an_owner_field_that_may_be_null_is_refused_at_load(policy_copy: Any, alert_type: str, path: str) -> None:
    """An owner field is a code every alert of its type holds: one that is nullable, or under a nullable record,
    would name no owner when null and let the alert pass as having none; loading refuses it, at its line."""
    policy_copy.replace("vocabulary.yaml", "WATCHLIST_HIT: [payload.list_owner]",
                        f"WATCHLIST_HIT: [payload.list_owner]\n    {alert_type}: [{path}]"
                        if alert_type != "WATCHLIST_HIT" else f"WATCHLIST_HIT: [payload.list_owner, {path}]")
    line = policy_copy.line_of("vocabulary.yaml", f"{path}]")
    message = rf"vocabulary.yaml:{line}: \[invalid\] owners: .*has no field {path} .*never null"
    with pytest.raises(Exception, match=message):
        policy_copy.load()
