"""``puente kafka fetch|up|down|status|wipe``: the local Kafka for development, tests and the demo."""

from __future__ import annotations

import argparse
import time

from puente.commands._common import Subparsers
from puente.dev.localkafka import KAFKA_VERSION, SHAPES, LocalKafka, fetch_kafka


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("kafka", help="run a local Apache Kafka (KRaft) on 127.0.0.1")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, func, text in (
        ("fetch", _fetch, f"fetch Kafka {KAFKA_VERSION} with Maven into the cache (once)"),
        ("up", _up, "start Kafka and wait until it serves requests"),
        ("down", _down, "stop Kafka, leaving no process behind"),
        ("status", _status, "show each node, its process and its port"),
        ("wipe", _wipe, "stop Kafka and delete its data"),
        ("env", _env, "print the PUENTE_* settings that point Puente at it (eval \"$(puente kafka env)\")"),
    ):
        verb = verbs.add_parser(name, help=text, description=text)
        verb.add_argument("--shape", choices=SHAPES, default="single", help="single node (default) or 3-node cluster")
        verb.set_defaults(func=func)


def _fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    path = fetch_kafka(KAFKA_VERSION)
    print(f"Kafka {KAFKA_VERSION} ready in {path} ({time.monotonic() - started:.1f}s)")
    return 0


def _up(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    seconds = kafka.up()
    print(f"Kafka {KAFKA_VERSION} ({args.shape}) is up at {kafka.bootstrap} after {seconds:.1f}s")
    return 0


def _down(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    kafka.down()
    print(f"Kafka ({args.shape}) is stopped")
    return 0


def _wipe(args: argparse.Namespace) -> int:
    LocalKafka(args.shape).wipe()
    print(f"Kafka ({args.shape}) is stopped and its data deleted")
    return 0


def _status(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    print(f"{'node':<5} {'address':<18} {'pid':>8}  state")
    running = 0
    for st in kafka.status():
        state = "running" if st.alive and st.listening else "starting" if st.alive else "stopped"
        running += st.alive
        print(f"{st.spec.node_id:<5} {st.spec.address:<18} {st.pid or '-':>8}  {state}")
    return 0 if running == len(kafka.nodes) else 1


def _env(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    print(f"export PUENTE_BOOTSTRAP={kafka.bootstrap}")
    return 0
