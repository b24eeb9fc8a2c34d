"""The worker's pure work per alert, in process, without Kafka: what a slot does between a fetch and a send.

    python bench/bench_pipeline.py                 # 6,000 alerts, best of 5 rounds
    python bench/bench_pipeline.py --quick         # 2,000 alerts, best of 3 (``make bench --quick``)
    python bench/bench_pipeline.py --profile 25    # and the 25 costliest functions (cProfile, one round)

The broker is the one ``build_worker`` makes, on a copy of the shipped policy cut to the three partners
``bench_broker.py`` uses (COL, USA, FEAN), with keys made fresh in a temporary folder. The input is
synthetic alerts framed as the adapters frame them (Avro single-object encoding, the ingress MAC
headers), as records of their agencies' ingress partitions. Each round runs, per batch of
``PUENTE_MAX_BATCH`` records of one slot, what ``BrokerWorker._work_out`` and ``_transaction`` do
outside Kafka: ``Pipeline.process`` for each record, then the lifecycle states' encoding and the slot's
signed audit blocks. Kafka's own cost (fetch, produce, transactions) is ``bench_broker.py``'s to
measure: this one isolates what Puente adds, so that a change to the hot path can be judged in
seconds, on a quiet core, with nothing else moving.

Nothing here asserts a timing; it reports what it measures (microseconds of one core per alert).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without install
sys.path.insert(0, str(ROOT / "bench"))

from bench_broker import PARTNERS, prepare_policy, settings_for  # noqa: E402 - after the path fix above


def _records(cfg: Any, count: int, seed: int, now: datetime) -> list[Any]:
    """``count`` synthetic alerts as the records a worker reads, in the order an ingress partition holds them."""
    from adapters.publisher import frame_alert
    from broker.keystore import Keystore
    from broker.topology import TopicNames, key_partition
    from puente.dev.synthetic import generate
    from puente.wire import Record

    names = TopicNames(cfg.topic_prefix)
    macs: dict[str, Any] = {}
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    now_ms = int(now.timestamp() * 1000)
    out = []
    for alert in generate(count, seed=seed, now=now):
        agency = alert["agency"]
        if agency not in macs:
            macs[agency] = Keystore(cfg.keys / "agencies" / agency).load_agency_mac(agency)
        key, value, headers = frame_alert(agency, macs[agency].key_id, macs[agency], alert)
        topic, partition = names.ingress(agency), key_partition(key, cfg.ingress_partitions)
        offset = offsets[topic, partition]
        offsets[topic, partition] += 1
        out.append(Record(topic, partition, offset, key, value, tuple(headers), now_ms, True))
    return out


def _round(worker: Any, batches: list[tuple[int, list[Any]]], now: datetime) -> tuple[float, float, int]:
    """One pass over the input: seconds of CPU in the pipeline, seconds in states and audit blocks, deliveries."""
    from broker.audit.chain import ChainWriter

    pipeline, sign = worker.pipeline, worker.sign
    names, signer = worker.names, worker.config.signer_id
    chains: dict[int, Any] = {}
    seen: set[str] = set()
    states: dict[str, Any] = {}
    at = now.isoformat().replace("+00:00", "Z")
    t_process = t_audit = 0.0
    delivered = 0
    for slot, recs in batches:
        t0 = time.process_time()
        outcomes = []
        for rec in recs:
            outcome = pipeline.process(rec, seen, now, states.get)
            outcomes.append(outcome)
            if outcome.seen_id:
                seen.add(outcome.seen_id)
            if outcome.state is not None:
                states[str(outcome.entry["alert_id"])] = outcome.state
        t1 = time.process_time()
        chain = chains.get(slot)
        if chain is None:
            chain = chains[slot] = ChainWriter(names.decisions, slot, keep_days=worker.config.audit_retention_days)
        for outcome in outcomes:
            if outcome.state is not None:
                alert_id = str(outcome.entry["alert_id"])
                outcome.state.encode(alert_id, at)
            delivered += len(outcome.feeds)
        chain.blocks([o.entry for o in outcomes], signer, sign, at, states=0)
        t_process += t1 - t0
        t_audit += time.process_time() - t1
    return t_process, t_audit, delivered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, help="alerts per round (default 6,000; quick 2,000)")
    parser.add_argument("--rounds", type=int, help="rounds; the best counts (default 5; quick 3)")
    parser.add_argument("--quick", action="store_true", help="a smaller run, a few seconds")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="after the rounds, profile one more and print its N costliest functions")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"),
                        help="the profile's order: own time (default) or with callees")
    args = parser.parse_args(argv)
    args.alerts = args.alerts or (2000 if args.quick else 6000)
    args.rounds = args.rounds or (3 if args.quick else 5)

    from broker.kafka import KafkaConnection
    from broker.keystore import provision_all
    from broker.service import build_worker
    from puente import logs

    logs.configure("warning")
    work = Path(tempfile.mkdtemp(prefix="puente-bench-pipeline-"))
    try:
        source = settings_for({}).policy_dir or ROOT / "policies" / "data"
        prepare_policy(source, work / "policy", PARTNERS)
        cfg = settings_for({"topic_prefix": "bench", "keys": work / "keys", "policy_dir": work / "policy"})
        provision_all(cfg)
        # No Kafka is reached: the worker is built, never run.
        worker, _, _ = build_worker(cfg, KafkaConnection(bootstrap="127.0.0.1:9"), audit_kept_forever=False)
        for topic in worker.pipeline.uncounted_feeds:
            worker.pipeline.feed_counts[topic] = cfg.feed_partitions
        now = datetime.now(UTC)
        records = _records(cfg, args.alerts, args.seed, now)
        by_slot: dict[int, list[Any]] = defaultdict(list)
        slots = worker.config.slots
        for rec in records:
            by_slot[slots.slot(rec.topic, rec.partition)].append(rec)
        batches = [(slot, recs[i:i + cfg.max_batch]) for slot, recs in sorted(by_slot.items())
                   for i in range(0, len(recs), cfg.max_batch)]
        gc.collect()
        gc.freeze()
        results = [_round(worker, batches, now) for _ in range(args.rounds)]
        best = min(results, key=lambda r: r[0] + r[1])
        n = len(records)
        print(f"Puente pipeline bench: {n:,} alerts in {len(batches)} batches of up to {cfg.max_batch}, partners "
              f"{', '.join(PARTNERS)}, {best[2] / n:.2f} deliveries an alert, best of {args.rounds} rounds, "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(f"  pipeline (Pipeline.process)    {best[0] / n * 1e6:7.1f} us an alert")
        print(f"  states and audit blocks        {best[1] / n * 1e6:7.1f} us an alert")
        print(f"  total                          {(best[0] + best[1]) / n * 1e6:7.1f} us an alert "
              f"(rounds: {', '.join(f'{(p + a) / n * 1e6:.1f}' for p, a, _ in results)})")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            _round(worker, batches, now)
            profiler.disable()
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.profile)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
