"""``puente demo``: the whole path on the local Kafka, ending in a table a person can read."""

from __future__ import annotations

import argparse

from puente.commands._common import Subparsers, run, whole
from puente.dev.demo import demo


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="run the whole path end to end on the local Kafka and print the result")
    parser.add_argument("--alerts", type=whole(1, 1_000_000), default=3000,
                        help="records in the fresh export made for each run, over the five agencies (default 3000)")
    parser.add_argument("--workers", type=whole(1, 16), default=2,
                        help="broker workers in the consumer group (default 2)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    return run(demo(args.alerts, args.workers, args.seed))
