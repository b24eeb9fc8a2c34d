"""``puente policy lint|test|explain``: check the policy files, run their suites, explain one decision.

Each reads the policy the broker would: ``--dir``, else ``PUENTE_POLICY_DIR``,
else the shipped policy; and each says which one it read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from broker.crypto import KeyKind
from broker.crypto.keys import BROKER_OWNER
from broker.keystore import Keystore, load_key_file, others_keys_problem
from policies import (
    DEFAULT_DIR,
    DEMO_KEY,
    PSEUDONYM_KEY,
    SuiteReport,
    alert_value,
    build_view,
    decide,
    explain,
    lint,
    load_policy_set,
    read_alert_json,
    run_suites,
    schema_fields,
)
from puente.commands._common import Subparsers, say, settings, when
from puente.errors import ConfigError, KeyMaterialError, PolicyError
from puente.strict import as_written, one_line, printable


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("policy", help="check, test and explain the sharing policy")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    dir_help = "policy directory (default: PUENTE_POLICY_DIR, else the shipped policies/data)"

    text = "find mistakes in the policy files; exits 1 when there are findings"
    check = verbs.add_parser("lint", help=text, description=text)
    check.add_argument("--dir", type=Path, help=dir_help)
    check.add_argument("--keys", type=Path, metavar="DIR",
                       help="the broker's keystore: check that DIR/<key id>.json is a key of the right kind for "
                            "each partner key, that each agreement that pseudonymises has its "
                            "pseudonym key, and that DIR holds no other party's private half and no "
                            "public key under two owners' ids")  # fmt: skip
    check.add_argument("--at", type=when, help="judge expiry at this time, ISO 8601, UTC without an offset "
                                                "(default: now)")
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
    show.add_argument("--at", type=when, help="decide at this time, ISO 8601, UTC without an offset (default: now)")
    show.add_argument("--dir", type=Path, help=dir_help)
    show.add_argument(
        "--key-file",
        type=Path,
        help="a pseudonym key file, <agreement>-pseudo-<generation>.json, for that agreement's views (default: a "
             "demonstration key)",
    )
    show.set_defaults(func=_explain)


def _policy_dir(args: argparse.Namespace) -> tuple[Path, str]:
    """The policy directory the command reads, and where that choice came from."""
    if args.dir is not None:
        return args.dir, "--dir"
    chosen = settings().policy_dir
    if chosen is not None:
        if not chosen.is_dir():
            raise ConfigError(f"PUENTE_POLICY_DIR={chosen}: no such policy directory")
        return chosen, "PUENTE_POLICY_DIR"
    return DEFAULT_DIR, "the shipped policy"


def _shown(root: Path, origin: str) -> str:
    return f"{root.resolve()} ({origin})"


def _keystore_check(folder: Path) -> Callable[[str, str, str], str | None]:
    """lint's key port over the broker's keystore in ``folder``: exact ``<key id>.json`` files, of the right kind."""

    if not folder.is_dir():
        raise ConfigError(f"--keys {folder}: no such keystore directory")
    store = Keystore(folder)

    def problem(name: str, kind: str, owner: str) -> str | None:
        try:
            expected = KeyKind(kind)
            # <agreement>-pseudo-<generation>.json, the newest of them; else <key id>.json exactly, of that kind
            if kind == PSEUDONYM_KEY:
                key = store.current(name, expected)
            elif expected in (KeyKind.PARTNER_ENCRYPTION, KeyKind.PARTNER_SIGNING):
                key = store.load_public(name, expected)  # a partner's private half is refused, as the broker does
            else:
                key = store.load(name, expected)
        except KeyMaterialError as exc:
            return str(exc)
        if key.owner != owner:
            return f"key {key.key_id} is {key.owner}'s, not {owner}'s"
        return None

    return problem


def _lint(args: argparse.Namespace) -> int:
    now = args.at or datetime.now(UTC)
    root, origin = _policy_dir(args)
    key_problem = _keystore_check(args.keys) if args.keys is not None else None
    owner = Keystore(args.keys).own_folder_of() if args.keys is not None else None
    # PUENTE_KEYS itself, the parties' folders in it, named for the broker's (one level too high): its broker/ folder
    # would be "a folder the broker does not keep" to move out, and the broker's keys made again beside it.
    # Told by a broker/ folder and none of the broker's own key files beside it (a broker host's keys root holds
    # broker/ alone: each party keeps its keys on its own side).
    root_of_keys = (args.keys is not None and owner is None and (args.keys / "broker").is_dir()
                    and not any(args.keys.glob("broker-*.json")))
    if owner is not None or root_of_keys:
        # A party's own folder named for the broker's: each of its private keys would be "another party's private
        # half" to move out, and following that would take the party's own keys away. One finding says so instead.
        key_problem = None
    findings = [str(finding) for finding in lint(root, now=now, key_problem=key_problem)]
    if root_of_keys:
        findings.append(f"{args.keys}: [keys] holds a broker/ folder and none of the broker's keys: it looks like "
                        f"PUENTE_KEYS itself; --keys names the broker's own folder, {args.keys / 'broker'}")
    elif owner is not None:
        findings.append(f"{args.keys}: [keys] holds {owner}'s private keys and none of the broker's: it looks like "
                        f"{owner}'s own keystore, not the broker's, which --keys names (PUENTE_KEYS/broker); leave "
                        f"{owner}'s keys where they are")
    elif args.keys is not None:
        # What stops the broker's start beyond the keys the policy names. Each problem starts "key <id>:"; a key
        # another line names already is not named twice (its next problem shows once that one is fixed).
        findings += [f"{args.keys}: [keys] {problem}" for problem in Keystore(args.keys).broker_custody_problems()
                     if not any(problem.split(":", 1)[0] + ":" in line for line in findings)]
        # Other parties' private keys anywhere under the keys root stop the start too (``require_custody``), which
        # scans PUENTE_KEYS, the folder its broker/ is in: here the folder around the one --keys names, made absolute
        # first (``--keys .`` has no parent of its own) but not resolved, as PUENTE_KEYS/broker names it through a
        # link. Not PUENTE_KEYS itself: on a compose host it is the container's path, and --keys names the keys.
        if (others := others_keys_problem(Path(os.path.abspath(args.keys)).parent)) is not None:
            findings.append(f"{args.keys}: [keys] {others}")
        try:  # no policy names it, and the broker does not start without it (``service.require_reference_key``)
            Keystore(args.keys).load_reference_key()
        except KeyMaterialError as exc:
            findings.append(f"{args.keys}: [keys] the broker's alert-reference key: {exc}; restore it from the "
                            "keystore's backup if it was lost; a keystore made before references makes it with "
                            f"`puente keys generate --for broker --generation G --missing-only --dir {args.keys}`, G "
                            "being the generation of the broker's keys in use")
    # Findings quote the policy files (a field name, an id): each is one escaped line.
    say(*findings)
    where = _shown(root, origin)
    say(f"{len(findings)} finding(s) in {where}" if findings else f"{where}: no findings")
    return 1 if findings else 0


def _print_report(report: SuiteReport) -> None:
    """The suite report as a table, a case a row, its problems under it. Its cells come from the suite files (a
    case's name, a partner): each is escaped, for the terminal and as standard output will write it (``as_written``),
    before it is measured, so that the columns line up as printed."""
    rows: list[tuple[str, ...]] = [("suite", "case", "partner", "expected", "got", "result")]
    rows += [(r.suite, r.case, r.partner, r.expected, r.got, "pass" if r.passed else "FAIL") for r in report.results]
    rows = [tuple(as_written(one_line(cell), sys.stdout) for cell in row) for row in rows]
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        say("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        problems = report.results[n - 1].problems if n else ()
        say(*(f"    - {problem}" for problem in problems))


def _test(args: argparse.Namespace) -> int:
    root, origin = _policy_dir(args)
    ps = load_policy_set(root)
    report = run_suites(ps, args.suite)
    if not report.results:
        raise PolicyError("no suite cases found" + (f" for {', '.join(args.suite)}" if args.suite else ""))
    _print_report(report)
    failed = len(report.failed)
    say("", f"{len(report.results)} cases: {len(report.results) - failed} passed, {failed} failed")
    say(*(f"  {suite} exercises: {', '.join(rules)}" for suite, rules in report.exercised.items()))
    gaps = () if args.suite else report.unexercised
    exercised = len(report.rules) - len(report.unexercised)
    say(f"rules exercised: {exercised} of {len(report.rules)}" + (f"; never: {', '.join(gaps)}" if gaps else ""))
    say(f"policy {_shown(root, origin)}, version {ps.version}")
    return 1 if failed or gaps else 0


def _pseudonym_key(path: Path) -> Callable[[str], bytes]:
    """The pseudonym keys by agreement that a pseudonym key file gives, as the broker's keystore holds it: only its
    own agreement's (the owner its id names). Refused if it is anything else, the broker's alert-reference key
    included; and asked for another agreement, a PolicyError naming both, rather than pseudonyms under the wrong
    key shown as the broker's."""
    try:
        record = load_key_file(path)
        secret = record.symmetric(KeyKind.PSEUDONYM).reveal()
    except KeyMaterialError as exc:
        raise PolicyError(f"--key-file: {exc}") from None
    if record.owner == BROKER_OWNER:
        raise PolicyError(f"--key-file: {record.key_id} is the broker's alert-reference key, not an agreement's "
                          "pseudonym key")

    def key_for(agreement: str) -> bytes:
        if agreement != record.owner:
            raise PolicyError(f"--key-file: {record.key_id} is agreement {record.owner}'s pseudonym key, but the view "
                              f"pseudonymises under agreement {agreement}: give {agreement}'s key file")
        return secret

    return key_for


def _explain(args: argparse.Namespace) -> int:
    root, origin = _policy_dir(args)
    ps = load_policy_set(root)
    alert = alert_value(read_alert_json(args.alert), schema_fields(), str(args.alert))
    at = args.at or datetime.now(UTC)
    key = _pseudonym_key(args.key_file) if args.key_file else DEMO_KEY
    # ALL exactly, as partner ids are matched exactly: `all` accepted while `col` is refused would be a guess.
    partners = list(ps.partners) if args.partner == ["ALL"] else args.partner
    unknown = [p for p in partners if p not in ps.partners]
    if unknown:  # a partner the policy does not name is denied everything: an answer that explains nothing
        raise ConfigError(f"unknown partner {unknown[0][:40]!r}; known: {', '.join(sorted(ps.partners))} (or ALL)")
    say(f"Policy dir {_shown(root, origin)}")
    pseudonyms = False
    for n, partner in enumerate(partners):
        decision = decide(alert, partner, ps, at)
        view = build_view(alert, decision, ps, key) if decision.delivers else None
        pseudonyms |= view is not None and any(r.action == "pseudonymise" for r in decision.redactions)
        # The alert's fields are quoted as the file gave them: escaped for the terminal (``printable``).
        print(("\n" + "=" * 78 + "\n" if n else "") + printable(explain(
            alert, decision, ps, at, view, written=lambda text: as_written(text, sys.stdout))))
    if pseudonyms and not args.key_file:
        print("\n(pseudonyms above use a demonstration key; the broker's key gives different ones)")
    return 0
