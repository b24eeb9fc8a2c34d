"""A partner's own list (``or_own_list``) is a foreign partner's, kept by its country, never the home country's."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from policies import PolicySet, decide
from policies._conditions import _watchlist

MakeAlert = Callable[..., dict[str, Any]]


def _low_home_hit(make_alert: MakeAlert) -> dict[str, Any]:
    return make_alert("tocumen_hit", {"payload.risk_level": "LOW", "payload.list_name": "PAN_NATIONAL",
                                      "payload.list_owner": "PAN"})


def test_an_internal_partners_claim_opens_no_list(policy_set: PolicySet, make_alert: MakeAlert) -> None:
    """The own-list clause gives an internal partner nothing: its country is Panama, every list's default keeper,
    so a claim on PAN_NATIONAL would release every low hit on it."""
    fean = dataclasses.replace(policy_set.partners["FEAN"], watchlists=frozenset({"PAN_NATIONAL"}))
    check = _watchlist(frozenset({"HIGH", "CRITICAL"}), True, {"PAN_NATIONAL": "PAN"})
    problem = check(_low_home_hit(make_alert), fean)
    assert problem == "risk LOW is below the agreed levels and the list is not the partner's own"


def test_an_internal_partners_claim_withholds_end_to_end(
        policy_copy: Any, make_alert: MakeAlert, now: datetime) -> None:
    """With an own-list clause in FEAN's agreement and a FEAN that claims Panama's list (as a policy loaded before
    the check would hold it), a low hit on that list is still withheld from FEAN."""
    policy_copy.replace("agreements/fean.yaml", "watchlist: {risk_levels: [MEDIUM, HIGH, CRITICAL]}",
                        "watchlist: {risk_levels: [HIGH, CRITICAL], or_own_list: true}")
    ps = policy_copy.load()
    claimed = dataclasses.replace(ps.partners["FEAN"], watchlists=frozenset({"PAN_NATIONAL"}))
    ps = dataclasses.replace(ps, partners={**ps.partners, "FEAN": claimed})
    decision = decide(_low_home_hit(make_alert), "FEAN", ps, now)
    assert decision.rule_ids == ("FEAN-WATCHLIST.watchlist",)


def test_a_foreign_partners_own_list_still_counts(policy_set: PolicySet, make_alert: MakeAlert, now: datetime) -> None:
    """A low hit on the list the USA keeps and names goes to the USA."""
    hit = make_alert("tocumen_hit", {"payload.risk_level": "LOW", "payload.list_name": "USA_PARTNER",
                                     "payload.list_owner": "USA"})
    assert decide(hit, "USA", policy_set, now).delivers


@pytest.mark.parametrize("lists", ["[PAN_NATIONAL]", "[FEAN_OWN]"])
def test_loading_refuses_an_internal_partner_claiming_a_list(policy_copy: Any, lists: str) -> None:
    """An internal partner naming any watchlist is refused at its watchlists' line: it keeps none of its own."""
    policy_copy.replace("partners.yaml", "    kind: internal\n", f"    kind: internal\n    watchlists: {lists}\n")
    line = policy_copy.line_of("partners.yaml", f"watchlists: {lists}")
    with pytest.raises(Exception, match=rf"partners.yaml:{line}: \[invalid\] FEAN: an internal partner keeps no "
                                        "watchlist"):
        policy_copy.load()


@pytest.mark.parametrize(("name", "why"), [
    ("PAN_NATIONAL", "is kept by PAN, not by USA"),
    ("INTERPOL_RED_NOTICE", "is kept by INTERPOL, not by USA"),
    ("CRI_PARTNER", "is kept by CRI, not by USA"),
    ("pan-migracion", "is named by no list table"),
    ("PANDORA_WATCH", "is named by no list table"),
    ("USA_PARTNERS", "is named by no list table"),
])
def test_loading_refuses_a_foreign_partner_claiming_a_list_its_country_does_not_keep(
        policy_copy: Any, name: str, why: str) -> None:
    """A foreign partner's own lists are an allow-list: each must be one the vocabulary's ``owners.lists`` names as
    kept by the partner's country. Panama's, INTERPOL's or another country's list, and a list no table names (whose
    hits are withheld as unknown anyway), are refused at their line."""
    policy_copy.replace("partners.yaml", "watchlists: [USA_PARTNER]", f"watchlists: [USA_PARTNER, {name}]")
    line = policy_copy.line_of("partners.yaml", name)
    with pytest.raises(Exception, match=rf"partners.yaml:{line}: \[invalid\] USA: watchlist {name} {why}"):
        policy_copy.load()


def test_a_list_the_vocabulary_names_as_the_partners_countrys_loads(policy_copy: Any) -> None:
    """A second list kept by the USA, once the vocabulary names it, may be the USA's own."""
    policy_copy.replace("vocabulary.yaml", "        CRI_PARTNER: CRI\n",
                        "        CRI_PARTNER: CRI\n        USA_CBP: USA\n")
    policy_copy.replace("partners.yaml", "watchlists: [USA_PARTNER]", "watchlists: [USA_PARTNER, USA_CBP]")
    assert policy_copy.load().partners["USA"].watchlists == {"USA_PARTNER", "USA_CBP"}
