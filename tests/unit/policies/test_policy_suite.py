"""``puente policy test``: the shipped suites pass and exercise every rule; a wrong expectation fails."""

from __future__ import annotations

from typing import Any

import pytest

from policies import PolicySet
from policies._suite import all_rules, run_suites
from puente.cli import main


def test_shipped_suites_pass(policy_set: PolicySet) -> None:
    """Every case of every shipped suite passes."""
    report = run_suites(policy_set)
    assert len(report.results) >= 60
    assert [(r.suite, r.case, r.problems) for r in report.failed] == []


def test_shipped_suites_exercise_every_rule(policy_set: PolicySet) -> None:
    """Every rule a valid alert can trigger is exercised by at least one passing case."""
    report = run_suites(policy_set)
    assert report.unexercised == ()
    assert set(report.exercised) == {"combifron", "pan-usa", "pan-cri", "fean"}


def test_each_agreement_rule_is_in_the_universe(policy_set: PolicySet) -> None:
    """The rule universe names every agreement rule and condition, and each effective caveat and code."""
    rules = set(all_rules(policy_set))
    assert {"COMBIFRON-BORDER.area", "USA-SEIZURE.categories", "caveat.PANAMA_ONLY", "handling.H1"} <= rules
    assert "caveat.LES" not in rules  # informational caveats cannot withhold
    assert "FEAN-JTF.max_classification" not in rules  # SECRETO is the top of the scale
    assert "agreement.none" not in rules  # every shipped partner has an agreement


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("outcome: WITHHOLD, rules: [COMBIFRON-BORDER.event_types]", "outcome: DELIVER_REDACTED", "outcome WITHHOLD"),
        ("location.latitude: 7.83\n", "location.latitude: 7.8\n", "view location.latitude is 7.83"),
        ("payload.operation_name: mask", "payload.operation_name: drop", "not redacted by drop"),
        ("rules: [COMBIFRON-SEIZURE.categories]", "rules: [COMBIFRON-SEIZURE.area]", "not among"),
        ("alert: colombia_inbound_hit\n    partner: COL", "alert: nowhere\n    partner: COL", "no fixture"),
        ("set: {payload.event_type: OTHER}", "set: {payload.event_typo: OTHER}",
         "lacks: payload.<a key of 10 characters (did you mean 'event_type'?)>"),
        ("payload.encounter: null", "payload.encounters: null", "the view has no payload.encounters"),
        ("location.province: DARIEN", "location.province[0]: D", "the view has no location.province[0]"),
    ],
)
def test_wrong_expectations_fail(policy_copy: Any, old: str, new: str, problem: str) -> None:
    """A suite case whose expectation does not hold fails with a readable problem."""
    policy_copy.replace("agreements/combifron.tests.yaml", old, new)
    report = run_suites(policy_copy.load(), ["combifron"])
    assert len(report.failed) == 1
    assert any(problem in p for p in report.failed[0].problems), report.failed[0].problems


def test_view_patterns_match_pseudonyms(policy_copy: Any) -> None:
    """A view value with * is a pattern: ps:* matches the pseudonym, Mejía* does not."""
    suite = "agreements/combifron.tests.yaml"
    policy_copy.replace(suite, 'payload.detainees[0].surnames: "ps:*"', "payload.detainees[0].surnames: Mejía*")
    report = run_suites(policy_copy.load(), ["combifron"])
    [problem] = [p for r in report.failed for p in r.problems]
    assert problem.startswith("view payload.detainees[0].surnames is 'ps:")
    assert problem.endswith("expected 'Mejía*'")


def test_test_command_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`puente policy test` prints a pass/fail table and the rule coverage, exit 0 when all pass."""
    assert main(["policy", "test"]) == 0
    out = capsys.readouterr().out
    assert "suite" in out.splitlines()[0] and "result" in out.splitlines()[0]
    assert "0 failed" in out
    assert "rules exercised: " in out and "never" not in out


def test_test_command_fails_on_a_failing_case(policy_copy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`puente policy test` exits 1 and shows FAIL with the problem when a case fails."""
    policy_copy.replace(
        "agreements/fean.tests.yaml", "expect: {outcome: WITHHOLD, rules: [handling.H2]}", "expect: {outcome: DELIVER}"
    )
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "outcome WITHHOLD, expected DELIVER" in out


def test_unexercised_rule_fails_the_command(policy_copy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Removing the only case for a rule makes `puente policy test` report it and exit 1."""
    body = policy_copy.text("agreements/pan-usa.tests.yaml")
    start = body.index("  - name: an originator country the policy does not know")
    policy_copy.write("agreements/pan-usa.tests.yaml", body[:start])
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 1
    assert "never: unknown.originator_country" in capsys.readouterr().out


def test_unknown_area_is_a_rule_suites_must_exercise(policy_set: PolicySet) -> None:
    """``unknown.area`` is in the rule universe (any alert has a location), and a shipped case exercises it."""
    assert "unknown.area" in all_rules(policy_set)
    assert "unknown.area" in run_suites(policy_set).exercised["combifron"]


def test_a_suite_without_an_unknown_area_case_fails_the_command(policy_copy: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Removing the only ``unknown.area`` case makes `puente policy test` name the rule as never exercised, exit 1."""
    body = policy_copy.text("agreements/combifron.tests.yaml")
    start = body.index("  - name: a province that is no code of the policy's areas")
    end = body.index("  - name: without coordinates the labels decide")
    policy_copy.write("agreements/combifron.tests.yaml", body[:start] + body[end:])
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 1
    assert "never: unknown.area" in capsys.readouterr().out
