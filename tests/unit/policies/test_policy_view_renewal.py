"""Across a renewal, several agreements apply: each field takes one change, the strictest, and one pseudonym."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policies import PolicySet, build_view, decide

MakeAlert = Callable[..., dict[str, Any]]

# COMBIFRON ends 2027-02-28; a renewal beginning 2027-03-01 (Panama time) is in force with it over a window that
# holds Panama's midnight: 04:59 to 05:01 UTC.
ACROSS = (datetime(2027, 3, 1, 4, 59, tzinfo=UTC), datetime(2027, 3, 1, 5, 1, tzinfo=UTC))
BEFORE = datetime(2027, 2, 27, 12, tzinfo=UTC)  # COMBIFRON alone
AFTER = datetime(2027, 3, 2, 12, tzinfo=UTC)  # the renewal alone
NAME = "payload.detainees[].given_names: {action: pseudonymise, domain: person_name}"


def _key(agreement: str) -> bytes:
    """Each agreement's own pseudonym key."""
    return (agreement.encode() * 32)[:32]


def _renew(policy_copy: Any, renewal: str = "COMBIFRON2", name_rule: str = NAME, retention: int = 180) -> PolicySet:
    """The shipped policy with ``renewal``, COMBIFRON's copy from 2027-03-01, its given-names rule ``name_rule``."""
    text = (policy_copy.text("agreements/combifron.yaml")
            .replace("id: COMBIFRON\n", f"id: {renewal}\n").replace("rule: COMBIFRON-", f"rule: {renewal}-")
            .replace("valid_from: 2024-03-01", "valid_from: 2027-03-01")
            .replace("valid_until: 2027-02-28", "valid_until: 2030-02-28")
            .replace("retention_days: 180", f"retention_days: {retention}")
            .replace(NAME, name_rule))
    assert f"id: {renewal}\n" in text and name_rule in text
    policy_copy.write(f"agreements/{renewal.lower()}.yaml", text)
    return policy_copy.load()


def _detainee(ps: PolicySet, alert: dict[str, Any], now: datetime, until: datetime | None = None) -> dict[str, Any]:
    decision = decide(alert, "COL", ps, now, until)
    assert decision.delivers, decision.reasons
    detainee: dict[str, Any] = build_view(alert, decision, ps, _key)["payload"]["detainees"][0]
    return detainee


def test_a_pseudonym_across_a_renewal_is_the_named_agreements_own(
        policy_copy: Any, make_alert: MakeAlert) -> None:
    """Both agreements pseudonymise names and document numbers: across the renewal each takes one pseudonym, of the
    original value under the key of the agreement the decision names, the one COL got the day before; it is never
    the pseudonym of another pseudonym, which matched neither agreement's and broke the partner's matching."""
    ps = _renew(policy_copy)
    alert = make_alert("gofast_seizure")
    decision = decide(alert, "COL", ps, *ACROSS)
    assert decision.agreement_ids == ("COMBIFRON", "COMBIFRON2")
    across = _detainee(ps, alert, *ACROSS)
    before = _detainee(ps, alert, BEFORE)
    assert across["given_names"] == before["given_names"]
    assert across["surnames"] == before["surnames"]
    assert across["documents"][0]["number"] == before["documents"][0]["number"]
    assert across["given_names"] != _detainee(ps, alert, AFTER)["given_names"]  # the keys differ


def test_the_named_agreement_decides_whose_key_whatever_the_rules_order(
        policy_copy: Any, make_alert: MakeAlert) -> None:
    """A renewal with the shorter retention is the agreement a delivery names, and the one whose key gives the
    pseudonym across the change (its rules applying first or last by id makes no difference)."""
    ps = _renew(policy_copy, renewal="AA-RENEWAL", retention=90)
    alert = make_alert("gofast_seizure")
    assert decide(alert, "COL", ps, *ACROSS).agreement_id == "AA-RENEWAL"
    assert _detainee(ps, alert, *ACROSS)["given_names"] == _detainee(ps, alert, AFTER)["given_names"]


@pytest.mark.parametrize("renewal", ["AA-RENEWAL", "ZZ-RENEWAL"])  # its rules apply before COMBIFRON's, or after
@pytest.mark.parametrize(("rule", "expected"), [
    ("payload.detainees[].given_names: {action: mask}", "■■■"),
    ("payload.detainees[].given_names: {action: drop}", None),
])
def test_the_strictest_change_of_a_field_alone_applies(
        policy_copy: Any, make_alert: MakeAlert, renewal: str, rule: str, expected: str | None) -> None:
    """Where COMBIFRON pseudonymises given names and its renewal masks or drops them, the view masks or drops them,
    whichever agreement's rules come first: a mask is not pseudonymised, nor a pseudonym masked."""
    ps = _renew(policy_copy, renewal=renewal, name_rule=rule)
    detainee = _detainee(ps, make_alert("gofast_seizure"), *ACROSS)
    assert detainee["given_names"] == expected


def test_a_field_one_agreement_keeps_takes_the_others_single_pseudonym(
        policy_copy: Any, make_alert: MakeAlert) -> None:
    """Where the named agreement keeps the given names and the other pseudonymises them, the view holds the other's
    pseudonym of the original value, as that agreement alone gives it."""
    ps = _renew(policy_copy, renewal="AA-RENEWAL", name_rule="payload.detainees[].given_names: keep", retention=90)
    alert = make_alert("gofast_seizure")
    assert decide(alert, "COL", ps, *ACROSS).agreement_id == "AA-RENEWAL"
    across = _detainee(ps, alert, *ACROSS)
    assert across["given_names"] == _detainee(ps, alert, BEFORE)["given_names"]
    assert across["given_names"] != alert["payload"]["detainees"][0]["given_names"]


def test_the_window_is_the_reviewers_case(policy_copy: Any, make_alert: MakeAlert) -> None:
    """The reproduction as reported: COMBIFRON2 from 2027-03-01, now 04:59Z and until two minutes later, gives COL
    the detainee as COMBIFRON alone gave it the day before (its keys, its rules: both agreements' are the same)."""
    ps = _renew(policy_copy)
    now = ACROSS[0]
    alert = make_alert("gofast_seizure")
    assert _detainee(ps, alert, now, now + timedelta(minutes=2)) == _detainee(ps, alert, BEFORE)


def test_a_renewal_decisions_redactions_name_the_changes_that_run(policy_copy: Any, make_alert: MakeAlert) -> None:
    """Across a renewal the audit's redactions list each field once, with the rule whose change the view made: the
    named agreement's pseudonym (whose key it is), or the stricter mask of the other; never every agreement's rule."""
    alert = make_alert("gofast_seizure")
    ps = _renew(policy_copy)
    decision = decide(alert, "COL", ps, *ACROSS)
    paths = [r.path for r in decision.redactions]
    assert len(paths) == len(set(paths))
    (names,) = [r for r in decision.redactions if r.path == "payload.detainees[].given_names"]
    assert names.action == "pseudonymise" and names.rule_id.startswith("COMBIFRON-")
    (policy_copy.root / "agreements" / "combifron2.yaml").unlink()
    masked = _renew(policy_copy, "ZZ-RENEWAL", "payload.detainees[].given_names: {action: mask}")
    decision = decide(alert, "COL", masked, *ACROSS)
    (names,) = [r for r in decision.redactions if r.path == "payload.detainees[].given_names"]
    assert names.action == "mask" and names.rule_id.startswith("ZZ-RENEWAL-")
    assert build_view(alert, decision, masked, _key)["payload"]["detainees"][0]["given_names"] \
        == masked.view_settings.mask


def test_a_renewal_view_asks_only_for_the_keys_its_pseudonyms_use(policy_copy: Any, make_alert: MakeAlert) -> None:
    """Across a renewal every pseudonym is the named agreement's: the view is built without the other's key,
    which may not exist yet, and a missing named key still withholds the view."""
    ps = _renew(policy_copy)
    alert = make_alert("gofast_seizure")
    decision = decide(alert, "COL", ps, *ACROSS)
    asked: list[str] = []

    def keys(agreement: str) -> bytes:
        asked.append(agreement)
        if agreement != "COMBIFRON":
            raise KeyError(agreement)
        return _key(agreement)

    assert build_view(alert, decision, ps, keys)["payload"]["detainees"][0] == _detainee(ps, alert, BEFORE)
    assert asked == ["COMBIFRON"]
