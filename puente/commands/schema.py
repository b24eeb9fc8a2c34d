"""``puente schema check|show``: the alert schema's versions and their compatibility."""

from __future__ import annotations

import argparse

from puente.commands._common import Subparsers
from schemas import ALERT, current, releases
from schemas.compat import check_compatible


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", help="inspect the Avro schemas and their released versions")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    check = verbs.add_parser("check", help="check the current schema against every released version")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    cur = current(ALERT)
    print(f"{ALERT} current fingerprint {cur.fingerprint.hex()}")
    failures = 0
    for rel in releases(ALERT):
        problems = check_compatible(rel, cur)
        state = "compatible both ways" if not problems else "; ".join(problems)
        failures += bool(problems)
        print(f"  {rel.label:<4} {rel.fingerprint.hex()}  {state}")
    return 1 if failures else 0
