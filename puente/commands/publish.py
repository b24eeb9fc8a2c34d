"""``puente publish``: synthetic alerts from the built-in generator (development and benchmarks)."""

from __future__ import annotations

import argparse

from puente.commands._common import Subparsers, kafka, kafka_options, run, settings
from puente.dev.synthetic import publish_synthetic


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    pub = sub.add_parser("publish", help="publish synthetic alerts from the built-in generator (development)",
                         parents=[kafka_options()])
    pub.add_argument("--count", type=int, default=1000)
    pub.add_argument("--seed", type=int, default=7)
    pub.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    cfg = settings(args)
    sent = run(publish_synthetic(cfg, kafka(cfg, "puente-publish"), args.count, args.seed))
    for agency, n in sorted(sent.items()):
        print(f"{agency:<10} {n:>7} alerts published")
    return 0
