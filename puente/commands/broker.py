"""``puente broker run``: the routing service, as a foreground process (SIGTERM stops it cleanly)."""

from __future__ import annotations

import argparse

from broker.access import BROKER
from broker.credentials import require_party
from broker.service import run_broker
from puente import logs
from puente.commands._common import Subparsers, kafka, kafka_options, run, seconds, settings, whole


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    broker = sub.add_parser("broker", help="the policy routing service").add_subparsers(dest="verb", required=True)
    text = ("consume ingress, decide, deliver feeds and audit; refuses to start when its topics are missing; "
            "SIGTERM finishes the batch in flight and stops")
    start = broker.add_parser("run", help="run the routing service", description=text, parents=[kafka_options()])
    start.add_argument("--workers", type=whole(1, 64), default=1, help="workers in this process (one consumer group)")
    start.add_argument("--exit-when-idle", type=seconds(0, 7 * 86400), metavar="SECONDS",
                       help="stop once caught up with every assigned partition and quiet for SECONDS: "
                            "nothing read or in flight for that long, then every record Kafka holds committed in "
                            "this worker's ingress partitions processed (asked of Kafka then; if not, it goes on "
                            "and asks again after another quiet period)")
    start.add_argument("--metrics-port", type=whole(1, 65535), help="serve /metrics, /healthz and /readyz on this port "
                                                        "(address: PUENTE_METRICS_ADDRESS, default 127.0.0.1)")
    start.add_argument("--group-instance-id", metavar="NAME",
                       help="Kafka's group.instance.id (PUENTE_GROUP_INSTANCE_ID): a restart under the same "
                            "name within the session timeout keeps this worker's slots, with no rebalance; "
                            "give each worker its own")
    start.add_argument("--accept-gap", action="store_true",
                       help="when an ingress topic no longer holds records the broker had not read (deleted by "
                            "retention), read on from its first record, logging what was skipped; default: stop")
    start.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = settings(args, group_instance_id=args.group_instance_id)
    conn = kafka(cfg, "puente-broker")
    require_party(conn, "puente broker run", BROKER)
    logs.configure(cfg.log_level, cfg.log_format)
    run(run_broker(cfg, conn, args.workers, exit_when_idle=args.exit_when_idle,
                   metrics_port=args.metrics_port or cfg.metrics_port, accept_gaps=args.accept_gap))
    return 0
