"""``puente topics plan|apply``: make Kafka's topics what the settings and the policy say, and say what changed
(or, planning, what would change: every setting Puente owns that drifted, and every topic it refuses)."""

from __future__ import annotations

import argparse

from broker.kafka import Admin, TopicResult, apply_topics, plan_topics
from policies import load_policy_set
from puente.commands._common import Subparsers, kafka, kafka_options, run, settings
from puente.strict import one_line


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser("topics", help="Puente's Kafka topics").add_subparsers(dest="verb", required=True)
    text = ("create missing topics and change only the settings Puente owns on existing ones, setting back any "
            "that drifted (retention, min ISR, cleanup.policy=delete, retention.bytes=-1, no unclean leader "
            "election, LogAppendTime on ingress and audit topics); refuse a topic whose replication factor, or "
            "meaningful partition count, differs from the plan, and one the settings would weaken (a shorter "
            "retention where the settings set it, a lower min ISR) unless --allow-weaker; exit 1 when any topic "
            "failed or was refused")
    apply = topics.add_parser("apply", help="create or update every topic, idempotently", description=text,
                              parents=[kafka_options()])
    apply.add_argument("--allow-weaker", action="store_true",
                       help="also shorten a retention, lower a min ISR or move a topic off LogAppendTime where the "
                            "settings say so (refused without it: Kafka would delete what it keeps for good)")
    apply.set_defaults(func=_apply, dry_run=False)
    show = topics.add_parser("plan", help="show what `topics apply` would create, set back or refuse (exit 1 when "
                                          "it would change or refuse anything); changes nothing",
                             parents=[kafka_options()])
    show.set_defaults(func=_apply, dry_run=True, allow_weaker=False)


def _apply(args: argparse.Namespace) -> int:
    cfg = settings(args)
    conn = kafka(cfg, "puente-topics")
    specs = plan_topics(cfg, load_policy_set(cfg.policy_dir))
    results = run(apply_topics(Admin(conn), specs, dry_run=args.dry_run, allow_weaker=args.allow_weaker))
    _print(results)
    failed = [r for r in results if not r.ok]
    if args.dry_run:
        changes = [r for r in results if r.action != "unchanged"]
        print(f"{len(changes)} of {len(results)} topics to create, update or refuse" if changes
              else "no change: every topic is what the settings and the policy say")
        return 1 if changes else 0
    if failed:
        print(f"{len(failed)} of {len(results)} topics failed or were refused; nothing above is claimed done "
              "for them but the settings named as set back")
    return 1 if failed else 0


def _print(results: list[TopicResult]) -> None:
    width = max(len(r.spec.name) for r in results)
    print(f"{'topic':<{width}} {'role':<11} {'parts':>5} {'rf':>3} {'retention':>10}  action     detail")
    for r in results:
        days = int(r.spec.config.get("retention.ms", "0")) // 86_400_000
        detail = one_line(r.detail)  # a value read from Kafka stays on its line
        print(f"{r.spec.name:<{width}} {r.spec.role:<11} {r.spec.partitions:>5} {r.spec.replication:>3} "
              f"{days:>8} d  {r.action:<9}  {detail}")
