"""``puente subscribe``: a partner reads its feed: verify, decrypt, decode, JSON lines, signed receipts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broker.partner import DEFAULT_INSTANCE, subscriber_for
from puente import logs
from puente.commands._common import Subparsers, kafka, kafka_options, run, settings


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    text = ("read a partner's feed: verify, decrypt, print JSON lines, send signed receipts; stops (exit 1) at a "
            "record it cannot open, committing nothing past it")
    subs = sub.add_parser("subscribe", help="read a partner's feed", description=text, parents=[kafka_options()])
    subs.add_argument("--partner", required=True)
    subs.add_argument("--key", required=True, type=Path, help="the partner's private decryption key file")
    subs.add_argument("--verify-key", type=Path, help="the broker's public signing key (default: beside --key)")
    subs.add_argument("--sign-key", type=Path,
                      help="the partner's receipt-signing key file (default: the current one beside --key)")
    subs.add_argument("--out", type=Path, help="append JSON lines here instead of writing standard output")
    subs.add_argument("--follow", action="store_true", help="keep reading; default: stop when idle for 5 s")
    subs.add_argument("--instance", default=DEFAULT_INSTANCE,
                      help="this subscriber's name (default main): subscribers of one partner that run at once "
                           "need different names; starting one with a name in use stops the other")
    subs.set_defaults(func=_subscribe)


def _subscribe(args: argparse.Namespace) -> int:
    cfg = settings(args)
    if args.follow:
        logs.configure(cfg.log_level, cfg.log_format)
    sub = subscriber_for(cfg, kafka(cfg, f"puente-subscriber-{args.partner}"), args.partner, args.key,
                         args.verify_key, args.sign_key, args.instance)
    out = open(args.out, "a", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115 - closed below
    try:
        run(sub.run(out, idle_exit_s=None if args.follow else 5.0))
    finally:
        if args.out:
            out.close()
        stopped = ", stopped at a record it could not open" if sub.stats.rejected else ""
        print(f"{sub.partner}: {sub.stats.received} alerts received{stopped}", file=sys.stderr)
    return 0
