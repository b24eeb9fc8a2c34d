"""``puente policy lint|test|explain``: check the policy files, run their suites, explain one decision."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from policies._alerts import alert_value
from policies._decide import decide
from policies._explain import DEMO_KEY, explain
from policies._lint import lint
from policies._load import load_policy_set, schema_fields
from policies._suite import SuiteReport, run_suites
from policies._view import build_view
from puente.errors import PolicyError


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2025-06-01T10:00:00-05:00")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("policy", help="check, test and explain the sharing policy")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    dir_help = "policy directory (default: the shipped policies/data)"

    text = "find mistakes in the policy files; exits 1 when there are findings"
    check = verbs.add_parser("lint", help=text, description=text)
    check.add_argument("--dir", type=Path, help=dir_help)
    check.add_argument("--keys", type=Path, metavar="DIR", help="check that DIR/<key id>.* exists for each key")
    check.add_argument("--at", type=_when, help="judge expiry at this time (default: now)")
    check.set_defaults(func=_lint)

    text = "run the suites of expected decisions beside each agreement"
    test = verbs.add_parser("test", help=text, description=text)
    test.add_argument("--dir", type=Path, help=dir_help)
    test.add_argument("--suite", action="append", default=[], help="run only this suite (repeatable)")
    test.set_defaults(func=_test)

    text = "show the decision, its reasons and the partner's view for one alert"
    show = verbs.add_parser("explain", help=text, description=text)
    show.add_argument("alert", type=Path, metavar="ALERT.json", help="an alert in its JSON form")
    show.add_argument("--partner", action="append", required=True, help="partner id, repeatable, or ALL")
    show.add_argument("--at", type=_when, help="decide at this time (default: now)")
    show.add_argument("--dir", type=Path, help=dir_help)
    show.add_argument("--key-file", type=Path, help="pseudonym key (default: a demonstration key)")
    show.set_defaults(func=_explain)


def _lint(args: argparse.Namespace) -> int:
    now = args.at or datetime.now(UTC)
    findings = lint(args.dir, now=now, keys_dir=args.keys)
    for finding in findings:
        print(finding)
    where = args.dir or "the shipped policy"
    print(f"{len(findings)} finding(s) in {where}" if findings else f"{where}: no findings")
    return 1 if findings else 0


def _print_report(report: SuiteReport) -> None:
    rows = [("suite", "case", "partner", "expected", "got", "result")]
    rows += [(r.suite, r.case, r.partner, r.expected, r.got, "pass" if r.passed else "FAIL") for r in report.results]
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        problems = report.results[n - 1].problems if n else ()
        for problem in problems:
            print(f"    - {problem}")


def _test(args: argparse.Namespace) -> int:
    ps = load_policy_set(args.dir)
    report = run_suites(ps, args.suite)
    if not report.results:
        raise PolicyError("no suite cases found" + (f" for {', '.join(args.suite)}" if args.suite else ""))
    _print_report(report)
    failed = len(report.failed)
    print(f"\n{len(report.results)} cases: {len(report.results) - failed} passed, {failed} failed")
    for suite, rules in report.exercised.items():
        print(f"  {suite} exercises: {', '.join(rules)}")
    gaps = () if args.suite else report.unexercised
    exercised = len(report.rules) - len(report.unexercised)
    print(f"rules exercised: {exercised} of {len(report.rules)}" + (f"; never: {', '.join(gaps)}" if gaps else ""))
    return 1 if failed or gaps else 0


def _explain(args: argparse.Namespace) -> int:
    ps = load_policy_set(args.dir)
    try:
        doc = json.loads(args.alert.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{args.alert}: cannot read a JSON alert: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyError(f"{args.alert}: an alert is a JSON object")
    alert = alert_value(doc, schema_fields(), str(args.alert))
    at = args.at or datetime.now(UTC)
    key = args.key_file.read_bytes() if args.key_file else DEMO_KEY
    partners = list(ps.partners) if [p.upper() for p in args.partner] == ["ALL"] else args.partner
    pseudonyms = False
    for n, partner in enumerate(partners):
        decision = decide(alert, partner, ps, at)
        view = build_view(alert, decision, ps, key) if decision.delivers else None
        pseudonyms |= view is not None and any(r.action == "pseudonymise" for r in decision.redactions)
        print(("\n" + "=" * 78 + "\n" if n else "") + explain(alert, decision, ps, at, view))
    if pseudonyms and not args.key_file:
        print("\n(pseudonyms above use a demonstration key; the broker's key gives different ones)")
    return 0
