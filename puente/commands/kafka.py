"""``puente kafka fetch|up|down|status|wipe|env``: the local Kafka for development, tests and the demo;
``puente kafka stop-node|start-node``: one node of the local cluster, for fault tests by hand;
``puente kafka compose-files``: the secrets and configurations compose.yaml's deployment mounts."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from puente.commands._common import Subparsers, say, whole
from puente.dev import compose
from puente.dev.localkafka import KAFKA_VERSION, SHAPES, LocalKafka, fetch_kafka
from puente.errors import ConfigError
from puente.settings import misnamed_variables, variable_problems


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("kafka", help="run a local Apache Kafka (KRaft) on 127.0.0.1")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, func, text in (
        ("fetch", _fetch, f"fetch Kafka {KAFKA_VERSION} with Maven into the cache (once)"),
        ("up", _up, "start Kafka and wait until it is usable: every node serving, one controller quorum "
                    "leader, every replica in sync"),
        ("down", _down, "stop Kafka, leaving no process behind"),
        ("status", _status, "show each node, its process and its port; exit 0 only when every node runs and "
                            "listens"),
        ("wipe", _wipe, "stop Kafka and delete its data"),
        ("env", _env, "print the PUENTE_* settings that point Puente at it, as its admin "
                      "(eval \"$(puente kafka env)\")"),
    ):
        verb = verbs.add_parser(name, help=text, description=text)
        verb.add_argument("--shape", choices=SHAPES, default="single", help="single node (default) or 3-node cluster")
        verb.set_defaults(**({"func": func} if name in ("fetch", "up") else _lenient(func)))
    for name, func, text in (
        ("stop-node", _stop_node, "stop one node of the running local cluster (SIGTERM; --kill: SIGKILL)"),
        ("start-node", _start_node, "start one stopped node of the local cluster and wait until the cluster "
                                    "is usable again"),
    ):
        verb = verbs.add_parser(name, help=text, description=text)
        verb.add_argument("node", type=whole(1, 3), metavar="N", help="the node's number (1-3)")
        if name == "stop-node":
            verb.add_argument("--kill", action="store_true", help="SIGKILL, as a crash would, instead of a clean stop")
        verb.set_defaults(**({"func": func} if name == "start-node" else _lenient(func)), shape="cluster")
    text = ("write the trial CA, node certificates and configurations, and the admin's login that "
            "compose.yaml mounts (kept if present)")
    files = verbs.add_parser("compose-files", help=text, description=text)
    files.add_argument("--out", type=Path, default=Path("deploy"), metavar="DIR",
                       help="where compose.yaml finds them (default: ./deploy, in the current folder: run it "
                            "beside compose.yaml)")
    files.set_defaults(func=_compose_files)


def _lenient(func: Callable[[argparse.Namespace], int]) -> dict[str, object]:
    """The defaults of a verb that stops or reports (down, wipe, status, env, stop-node): ``func`` after checks of
    the PUENTE_* variables of its own, in place of those the command line makes before every command (told so by
    ``lenient_variables``): a stray variable is a warning, not a refusal, so `make clean` and a script's cleanup
    trap still stop Kafka (refused, the wipe failed unseen and the data was deleted under a running Kafka). A
    problem with what the verb reads itself (PUENTE_HOME, the first port, or a name close to one) is still
    refused: acting on the default place would stop or delete another Kafka than the one meant. A verb that deletes
    (wipe) refuses any PUENTE_* name it does not know, however far from those (PUENTE_KAFKA_HOME is no near match
    of PUENTE_HOME, and may well be the one meant): what it would delete cannot be undone."""
    def run(args: argparse.Namespace) -> int:
        needed = ("PUENTE_HOME", "PUENTE_KAFKA_PORT" if args.shape == "single" else "PUENTE_KAFKA_CLUSTER_PORT")
        problems = variable_problems(os.environ)
        for name, why in problems:
            if name in needed or difflib.get_close_matches(name.removeprefix("PUENTE_"),
                                                           [n.removeprefix("PUENTE_") for n in needed], cutoff=0.7):
                raise ConfigError(why)
        if args.verb == "wipe" and (misnamed := misnamed_variables(os.environ)):
            raise ConfigError(f"{misnamed[0][1]} (`kafka wipe` deletes data, so it refuses any PUENTE_* name it does "
                              "not know: the one meant may be PUENTE_HOME)")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            say(f"puente: warning: {problems[0][1]}{more}; going on, as `kafka {args.verb}` reads only "
                f"{' and '.join(needed)}", file=sys.stderr)
        return func(args)
    return {"func": run, "lenient_variables": True}


def _fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    path = fetch_kafka(KAFKA_VERSION)
    say(f"Kafka {KAFKA_VERSION} ready in {path} ({time.monotonic() - started:.1f}s)")
    return 0


def _noted(kafka: LocalKafka) -> None:
    """Tell, on standard error, each stale pid file the verb removed (a process it did not take for a node)."""
    for note in kafka.notes:
        say(f"puente kafka: note: {note}", file=sys.stderr)
    kafka.notes.clear()


def _up(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    try:
        seconds = kafka.up()
    finally:
        _noted(kafka)
    print(f"Kafka {KAFKA_VERSION} ({args.shape}) is up at {kafka.bootstrap} after {seconds:.1f}s")
    return 0


def _stop_node(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    try:
        kafka.stop_one(args.node, kill=args.kill)
    finally:
        _noted(kafka)
    print(f"node {args.node} of Kafka ({args.shape}) is stopped ({'SIGKILL' if args.kill else 'clean shutdown'})")
    return 0


def _start_node(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    try:
        seconds = kafka.start_one(args.node)
    finally:
        _noted(kafka)
    print(f"node {args.node} is back: Kafka ({args.shape}) is up at {kafka.bootstrap} after {seconds:.1f}s")
    return 0


def _down(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    try:
        kafka.down()
    finally:
        _noted(kafka)
    print(f"Kafka ({args.shape}) is stopped")
    return 0


def _wipe(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    try:
        kafka.wipe()
    finally:
        _noted(kafka)
    print(f"Kafka ({args.shape}) is stopped and its data deleted")
    return 0


def _status(args: argparse.Namespace) -> int:
    """Exit 0 only when every node is its Kafka process and listens: one still starting (alive, port not yet
    open) is not usable, and a script asking `status` whether to go on must hear so."""
    kafka = LocalKafka(args.shape)
    nodes = kafka.status()
    _noted(kafka)
    print(f"{'node':<5} {'address':<18} {'pid':>8}  state")
    for st in nodes:
        state = ("running" if st.listening else "starting") if st.alive else \
            "stopped; its port is taken by another process" if st.listening else "stopped"
        print(f"{st.spec.node_id:<5} {st.spec.address:<18} {st.pid or '-':>8}  {state}")
    return 0 if all(st.alive and st.listening for st in nodes) else 1


def _env(args: argparse.Namespace) -> int:
    kafka = LocalKafka(args.shape)
    # Quoted for the shell: the help says to eval this, and a path may hold spaces or ';'.
    print(f"export PUENTE_BOOTSTRAP={shlex.quote(str(kafka.bootstrap))}")
    # The admin's login: what operator commands (topics, users, acls) run as. Each party's own is
    # written by `puente users apply` into its folder; services run with that one.
    print(f"export PUENTE_CLIENT_CONFIG={shlex.quote(str(kafka.admin_config))}")
    if not kafka.admin_config.is_file():  # on standard error: the eval this output is made for stays as it is
        up = "puente kafka up" + ("" if args.shape == "single" else f" --shape {args.shape}")
        say(f"puente kafka env: no local Kafka is made under {kafka.folder} yet, so PUENTE_CLIENT_CONFIG names a "
            f"file that does not exist: run `{up}` first", file=sys.stderr)
    return 0


def _compose_files(args: argparse.Namespace) -> int:
    made = compose.write(args.out)
    say(f"wrote the files of a {made.nodes}-node secured Kafka under {made.folder} (secrets 0600, folders 0700):")
    print("  tls/ca.pem               the CA Puente's services and partners trust (its key stays in tls/)\n"
          "  kafka-<n>/config/        each node's certificate, configuration and first logins\n"
          "  admin/admin.properties   the operator's login (a super user): only the setup service mounts it\n"
          "next: the broker's own keys, and the public halves the other parties hand over (never their keys):\n"
          "  PUENTE_KEYS=keys puente keys generate --for broker\n"
          "  puente keys import-public P-enc-<g>.pem --id P-enc-<g> --dir keys/broker --fingerprint FP\n"
          "    (each partner's P-enc-<g> and P-rcpt-<g>, each agency's A-kex-<g>; FP as its owner reads it out)\n"
          "  mkdir -m 700 logins\n"
          "  PUENTE_UID=$(id -u) PUENTE_GID=$(id -g) docker compose up -d\n"
          "  puente kafka compose-files    # again, once the nodes have started: removes the first logins' file, "
          "which holds the admin's password")
    for note in made.notes:
        say(f"puente kafka compose-files: note: {note}", file=sys.stderr)
    return 0
