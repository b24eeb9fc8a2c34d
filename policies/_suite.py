"""Run the YAML suites of expected decisions kept beside each agreement (``puente policy test``).

A case names a fixture alert, optional changes to it, a partner and the
expected outcome, rule ids, redactions and view values. Every delivery's
view is also encoded with the alert codec, so a suite fails if an agreement
would produce a view the schema does not accept.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemas
from policies._alerts import alert_value, get_path, with_changes
from policies._compile import PolicySet
from policies._decide import (
    ALERT_EXPIRED,
    ALERT_REVIEW_OVERDUE,
    CLEARANCE,
    NO_AGREEMENT,
    NOT_COVERED,
    ORIGINATOR_FOREIGN,
    RELEASABILITY,
    UNKNOWN_AREA,
    UNKNOWN_CAVEAT,
    UNKNOWN_CLASSIFICATION,
    UNKNOWN_CONSENT,
    UNKNOWN_GRADING,
    UNKNOWN_HANDLING,
    UNKNOWN_ORIGINATOR,
    UNKNOWN_OWNER,
    UNKNOWN_PARTNER,
    UNKNOWN_RELEASABLE_TO,
    decide,
)  # fmt: skip
from policies._decision import Decision
from policies._load import schema_fields
from policies._model import Case, Effect, Fixtures, Suite
from policies._source import FIXTURES, present, read_doc, suite_files
from policies._view import build_view
from puente.errors import CodecError, PolicyError

# Only for the pseudonyms suites compute; not a secret, and never the broker's key.
SUITE_KEY = b"puente-policy-suite-key--not-a-secret"

# Checks any valid alert can trigger; a suite should exercise each one at least once. Every alert type has a
# location, so any alert can name a province or border sector the policy's areas do not list (``unknown.area``).
_GENERIC = (
    UNKNOWN_PARTNER, UNKNOWN_CLASSIFICATION, UNKNOWN_CAVEAT, UNKNOWN_HANDLING, UNKNOWN_GRADING,
    UNKNOWN_RELEASABLE_TO, UNKNOWN_CONSENT, UNKNOWN_ORIGINATOR, UNKNOWN_AREA, CLEARANCE, RELEASABILITY,
    ORIGINATOR_FOREIGN, NO_AGREEMENT, NOT_COVERED, ALERT_EXPIRED, ALERT_REVIEW_OVERDUE,
)  # fmt: skip


@dataclass(frozen=True)
class CaseResult:
    suite: str
    case: str
    partner: str
    expected: str
    got: str
    problems: tuple[str, ...]
    rule_ids: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class SuiteReport:
    results: tuple[CaseResult, ...]
    rules: tuple[str, ...]  # every rule id a suite can exercise
    exercised: dict[str, tuple[str, ...]] = field(default_factory=dict)  # suite -> rule ids of passing cases

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def unexercised(self) -> tuple[str, ...]:
        seen = {rule for rules in self.exercised.values() for rule in rules}
        return tuple(r for r in self.rules if r not in seen)


def all_rules(ps: PolicySet) -> tuple[str, ...]:
    """Every rule id a valid alert can trigger under this policy set."""
    # A rule no valid alert can reach is left out: no agreement when every partner has one,
    # an agreement's ceiling when it is the top of the scale.
    out = [r for r in _GENERIC if r != NO_AGREEMENT]
    if any(not any(p in a.partner_ids for a in ps.agreements.values()) for p in ps.partners):
        out.append(NO_AGREEMENT)
    if ps.owner_fields or ps.list_keepers:  # only an alert type with owner fields or lists names an unknown owner
        out.append(UNKNOWN_OWNER)
    for kind, effects in (("caveat", ps.caveat_effects), ("handling", ps.handling_effects)):
        out += [f"{kind}.{name}" for name, effect in effects.items() if effect is not Effect.NONE]
    for a in ps.agreements.values():
        out.append(f"{a.id}.validity")
        out += [f"{a.id}.max_classification"] if a.max_rank < len(ps.scale) - 1 else []
        out += [f"{a.id}.min_grading"] if a.min_grading else []
    for cover in ps.covers.values():
        out += [cover.rule_id] + [rule_id for rule_id, _ in cover.conditions]
    return tuple(out)


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and "*" in expected:
        return isinstance(actual, str) and fnmatch.fnmatchcase(actual, expected)
    return bool(expected == actual)


def _check_view(case: Case, alert: dict[str, Any], decision: Decision, ps: PolicySet) -> list[str]:
    problems = []
    view = build_view(alert, decision, ps, SUITE_KEY)
    try:
        schemas.alert_codec().encode(view)
    except CodecError as exc:
        problems.append(f"the view does not fit the schema: {exc}")
    shown = schemas.to_json(view)
    for path, expected in case.expect.view.items():
        try:
            actual = get_path(shown, path)
        except PolicyError as exc:
            problems.append(str(exc))
            continue
        if not _matches(expected, actual):
            problems.append(f"view {path} is {actual!r}, expected {expected!r}")
    return problems


def _check(case: Case, alert: dict[str, Any], decision: Decision, ps: PolicySet) -> list[str]:
    problems = []
    if decision.outcome.value != case.expect.outcome:
        problems += [f"outcome {decision.outcome.value}, expected {case.expect.outcome}"]
        problems += [f"  reason: {r}" for r in decision.reasons]
    missing = [r for r in case.expect.rules if r not in decision.rule_ids]
    if missing:
        problems.append(f"rules {', '.join(missing)} not among {', '.join(decision.rule_ids) or 'none'}")
    done = {(r.path, r.action) for r in decision.redactions}
    for path, action in case.expect.redacted.items():
        if (path, action.value) not in done:
            problems.append(f"{path} is not redacted by {action.value}")
    if decision.delivers:
        problems += _check_view(case, alert, decision, ps)
    elif case.expect.view:
        problems.append("a view is expected but the alert is withheld")
    return problems


def run_case(suite: Suite, case: Case, fixtures: Mapping[str, dict[str, Any]], ps: PolicySet) -> CaseResult:
    """Decide one case and compare; a case that cannot be built fails with the reason."""
    head = (suite.suite, case.name, case.partner, case.expect.outcome)
    doc = suite.alerts.get(case.alert) or fixtures.get(case.alert)
    if doc is None:
        return CaseResult(*head, "-", (f"no fixture alert named {case.alert}",))
    try:
        alert = alert_value(with_changes(doc, case.set), schema_fields(), f"{suite.suite}/{case.name}")
        decision = decide(alert, case.partner, ps, case.at or suite.at)
        problems = _check(case, alert, decision, ps)
    except PolicyError as exc:
        return CaseResult(*head, "-", (str(exc),))
    return CaseResult(*head, decision.outcome.value, tuple(problems), decision.rule_ids)


def run_suites(ps: PolicySet, names: Iterable[str] = ()) -> SuiteReport:
    """Run every suite beside the agreements of ``ps`` (or those whose suite name is in ``names``)."""
    wanted = set(names)
    fixtures: dict[str, dict[str, Any]] = {}
    if present(ps.root / FIXTURES):  # a link to a device is refused by name, not skipped
        fixtures = read_doc(Fixtures, ps.root, FIXTURES).model.alerts
    results: list[CaseResult] = []
    exercised: dict[str, tuple[str, ...]] = {}
    for path in suite_files(ps.root):
        suite = read_doc(Suite, ps.root, f"{path.parent.name}/{path.name}").model
        if wanted and suite.suite not in wanted:
            continue
        ran = [run_case(suite, case, fixtures, ps) for case in suite.cases]
        results += ran
        exercised[suite.suite] = tuple(dict.fromkeys(r for res in ran if res.passed for r in res.rule_ids))
    return SuiteReport(tuple(results), all_rules(ps), exercised)
