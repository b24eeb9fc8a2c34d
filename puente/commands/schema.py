"""``puente schema check``: the alert schema's versions and their compatibility."""

from __future__ import annotations

import argparse

from puente.commands._common import Subparsers, say
from puente.errors import SchemaError
from schemas import ALERT, AlertCodec, current, known_writers, releases
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
    try:
        # The codec the broker builds at start: it also refuses what resolution does not see (two versions with one
        # fingerprint that differ in a default or a logicalType), and a check that passes must mean the broker starts.
        AlertCodec(cur, known_writers(ALERT))
    except SchemaError as exc:
        failures += 1
        say("  codec " + str(exc))
    return 1 if failures else 0
