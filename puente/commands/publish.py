"""``puente publish``: synthetic alerts from the built-in generator (development and benchmarks)."""

from __future__ import annotations

import argparse

from puente.commands._common import Subparsers, kafka, kafka_options, run, settings
from puente.dev.synthetic import MAX_COUNT, publish_synthetic


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    pub = sub.add_parser("publish", help="publish synthetic alerts from the built-in generator (development)",
                         parents=[kafka_options()])
    pub.add_argument("--count", type=_count, default=1000, metavar="N",
                     help=f"how many alerts, 1 to {MAX_COUNT:,} (default 1000)")
    pub.add_argument("--seed", type=int, default=7)
    pub.set_defaults(func=_publish)


def _count(text: str) -> int:
    """A count of alerts: 1 to ``MAX_COUNT`` (a typo of many digits would otherwise run for days)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number") from None
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_COUNT:,}" + (f", not {value}" if len(text) <= 20 else ""))
    return value


def _publish(args: argparse.Namespace) -> int:
    cfg = settings(args)
    sent = run(publish_synthetic(cfg, kafka(cfg, "puente-publish"), args.count, args.seed))
    for agency, n in sorted(sent.items()):
        print(f"{agency:<10} {n:>7} alerts published")
    return 0
