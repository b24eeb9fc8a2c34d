"""``puente topics apply``: make Kafka's topics what the settings and the policy say, and say what changed."""

from __future__ import annotations

import argparse

from broker.kafka import Admin, TopicResult, apply_topics, plan_topics
from policies import load_policy_set
from puente.commands._common import Subparsers, kafka, kafka_options, run, settings


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser("topics", help="Puente's Kafka topics").add_subparsers(dest="verb", required=True)
    text = ("create missing topics and change only the settings Puente owns on existing ones; exit 1 when any "
            "topic failed or was refused")
    apply = topics.add_parser("apply", help="create or update every topic, idempotently", description=text,
                              parents=[kafka_options()])
    apply.set_defaults(func=_apply)


def _apply(args: argparse.Namespace) -> int:
    cfg = settings(args)
    conn = kafka(cfg, "puente-topics")
    results = run(apply_topics(Admin(conn), plan_topics(cfg, load_policy_set(cfg.policy_dir))))
    _print(results)
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(results)} topics failed or were refused; nothing above is claimed done "
              "for them")
    return 1 if failed else 0


def _print(results: list[TopicResult]) -> None:
    width = max(len(r.spec.name) for r in results)
    print(f"{'topic':<{width}} {'role':<11} {'parts':>5} {'rf':>3} {'retention':>10}  action     detail")
    for r in results:
        days = int(r.spec.config.get("retention.ms", "0")) // 86_400_000
        print(f"{r.spec.name:<{width}} {r.spec.role:<11} {r.spec.partitions:>5} {r.spec.replication:>3} "
              f"{days:>8} d  {r.action:<9}  {r.detail}")
