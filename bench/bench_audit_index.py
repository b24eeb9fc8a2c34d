"""The audit index at scale: at least a million decision records on the local Kafka, indexed by
``puente audit index``, against a raw read of the same records.

    python bench/bench_audit_index.py                  # 1,000,000 decisions (a few minutes)
    python bench/bench_audit_index.py --decisions 100000 --quick
    python bench/bench_audit_index.py --json out.jsonl

What it does, in one run on one Kafka:

1. Writes ``--decisions`` decision records into a fresh decisions topic (``bench-index-<time>.audit.decisions``,
   made by Puente's own ``apply_topics``) as the broker writes them: signed BLOCK records of 200
   alerts each, every alert decided for four partners (deliver, deliver redacted with named field
   changes, withhold with reasons; a share of them versions 2 and recalls), spread over the
   topic's partitions. The alerts' shapes (agencies, types, sectors, agreements, rules) come from
   a seeded generator, so two runs index the same records.
2. **Raw**: a read_committed consumer reads every record of the topic and does nothing else: what
   Kafka and the client allow on this machine for the same bytes (the denominator).
3. **Index**: ``puente audit index`` in its own process, from an empty index file: read, verify
   every chain and signature, and write the rows. Its wall time, decisions indexed per second,
   and its peak RSS (the ``VmHWM`` of the process, polled while it runs).
4. **Search**: on that index, ``--queries`` searches of each kind an auditor runs (by partner and
   outcome, by alert id, by agency and time range, by rule, a deep page, an alert's timeline, and
   the indicators), as a national auditor and as a partner-scoped one; p50 and p95 per kind.

Nothing here asserts a timing: it reports what it measures. Keys are made fresh in a temporary
folder; the topics are deleted at the end unless ``--keep-topics``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import delete_topics, ensure_topics, pct, quiet_logs

from broker.audit.chain import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope
from broker.crypto import BROKER_OWNER, KeyKind, sign_checkpoint
from broker.kafka import KafkaConnection, TopicPartition, connection, producer, reader, running
from broker.kafka.topics import plan_topics
from broker.keystore import Keystore, provision_all
from policies import load_policy_set
from puente.settings import PuenteSettings
from puente.wire import iso_utc

PARTNERS = ("COL", "USA", "CRI", "FEAN")
AGENCIES = ("SENAFRONT", "SENAN", "PN", "SNM")
TYPES = ("WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT")
SECTORS = ("DARIEN_PUERTO_OBALDIA", "DARIEN_YAVIZA", "COMARCA_GUNA_YALA", "BOCAS_GUABITO", "CHIRIQUI_PASO_CANOAS",
           None)
AGREEMENTS = {"COL": "combifron", "USA": "pan-usa", "CRI": "pan-cri", "FEAN": "fean"}


def decision_pool(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Per partner, the distinct decisions alerts get (the pipeline shares equal decisions the same way)."""
    pool: dict[str, list[dict[str, Any]]] = {}
    for partner in PARTNERS:
        agreement = AGREEMENTS[partner]
        rules = [f"{agreement}.{name}" for name in ("watchlist", "seizures", "border-events", "default")]
        choices = []
        for i, rule in enumerate(rules):
            choices.append({"partner": partner, "decision": "DELIVER", "agreement": agreement, "rules": [rule],
                            "reasons": [], "redacted": [], "policy_version": "bench"})
            choices.append({"partner": partner, "decision": "DELIVER_REDACTED", "agreement": agreement,
                            "rules": [rule], "reasons": [],
                            "redacted": [{"field": "subject.document.number", "action": "mask", "rule": rule},
                                         {"field": "location.latitude", "action": "generalise", "rule": rule},
                                         {"field": "originator.unit", "action": "drop", "rule": "markings",
                                          "named": False}][: 1 + i % 3],
                            "policy_version": "bench"})
            choices.append({"partner": partner, "decision": "WITHHOLD", "agreement": agreement, "rules": [rule],
                            "reasons": [f"classification above what {agreement} releases",
                                        "originator restricts to national use"][: 1 + i % 2],
                            "redacted": [], "policy_version": "bench"})
        pool[partner] = choices
    return pool


def make_blocks(decisions: int, partitions: int, topic: str, signer_id: str, sign: Any, seed: int,
                ) -> tuple[dict[int, list[bytes]], int, list[str]]:
    """Signed BLOCK records holding ``decisions`` decisions (four per alert), per partition; the
    decision count and a sample of alert ids."""
    rng = random.Random(seed)
    pool = decision_pool(rng)
    alerts = -(-decisions // len(PARTNERS))
    writers = {p: ChainWriter(topic, p) for p in range(partitions)}
    out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step_s = 330 * 86400 / alerts  # the alerts spread over eleven months: the indicators have months to count
    sample: list[str] = []
    batch: dict[int, list[dict[str, Any]]] = {p: [] for p in range(partitions)}
    for n in range(alerts):
        agency = AGENCIES[n % len(AGENCIES)]
        alert_id = f"{agency}:bench-{n:08d}"
        published = start + timedelta(seconds=n * step_s)
        decided = published + timedelta(milliseconds=rng.randint(20, 400))
        entry = {"kind": "ALERT", "alert_id": alert_id, "alert_type": TYPES[n % len(TYPES)],
                 "originator": agency, "originator_country": "PAN",
                 "classification": ("RESTRICTED", "CONFIDENTIAL", "SECRET")[n % 3],
                 "ingress": f"{topic}.ingress:{n % partitions}:{n}", "ingress_ms": int(published.timestamp() * 1000),
                 "at": iso_utc(decided), "decisions": [rng.choice(pool[p]) for p in PARTNERS]}
        if (sector := SECTORS[rng.randrange(len(SECTORS))]) is not None:
            entry["sector"] = sector
        if n % 10 == 9:
            entry["version"] = 2
            entry["action"] = "UPDATE"
        if rng.random() < 0.0005:
            sample.append(alert_id)
        part = n % partitions
        batch[part].append(entry)
        if len(batch[part]) == 200:
            out[part] += writers[part].blocks(batch[part], signer_id, sign, entry["at"])
            batch[part] = []
    for part, entries in batch.items():
        if entries:
            out[part] += writers[part].blocks(entries, signer_id, sign, entries[-1]["at"])
    return out, alerts * len(PARTNERS), sample


async def write_blocks(conn: KafkaConnection, topic: str, blocks: dict[int, list[bytes]]) -> float:
    """Write the blocks as the broker's producer would (idempotent, acks=all); seconds taken."""
    t0 = time.perf_counter()
    writer = producer(conn, "bench-index", enable_idempotence=True, acks="all", linger_ms=20,
                      max_request_size=2 * 1024 * 1024)
    async with running(writer, conn, f"writing {topic}"):
        for part, values in blocks.items():
            pending = [await writer.send(topic, value, partition=part) for value in values]
            for fut in pending:
                await fut
    return time.perf_counter() - t0


async def raw_read(conn: KafkaConnection, topic: str, partitions: int) -> tuple[float, int, int]:
    """Read every record of ``topic`` (read_committed) and do nothing with it: (seconds, records, bytes)."""
    from broker.kafka import read_range

    records = size = 0
    t0 = time.perf_counter()
    async with running(reader(conn, "bench-index-raw"), conn, f"reading {topic}") as consumer:
        for part in range(partitions):
            async for rec in read_range(consumer, TopicPartition(topic, part)):
                records += 1
                size += len(rec.value)
    return time.perf_counter() - t0, records, size


def run_index(env: dict[str, str], index: Path) -> dict[str, Any]:
    """``puente audit index`` in its own process: wall seconds, exit status, peak RSS (MiB), its last line."""
    exe = Path(sys.executable).with_name("puente")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "puente.cli"]),
           "audit", "index", "--index", str(index)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text(encoding="ascii")
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if found:
                peak_kb = max(peak_kb, int(found.group(1)))
        except OSError:
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    return {"seconds": seconds, "rc": proc.returncode, "peak_rss_mib": peak_kb / 1024,
            "last": lines[-1] if lines else "", "tail": lines[-5:]}


def search_latency(index_path: Path, sample: list[str], queries: int, seed: int) -> dict[str, Any]:
    """p50/p95 (ms) of each kind of query, national and partner-scoped."""
    rng = random.Random(seed)
    index = AuditIndex(index_path, readonly=True)
    cold = {}
    for scope_name, scope in (("national", Scope()), ("USA-scoped", Scope("USA"))):
        t0 = time.perf_counter()
        index.facets(scope)
        cold[scope_name] = (time.perf_counter() - t0) * 1000
    since = datetime(2026, 3, 1, tzinfo=UTC)
    kinds: dict[str, Any] = {
        "partner+decision": lambda s: index.search(s, Query(partner=rng.choice(PARTNERS), decision="WITHHOLD")),
        "alert id": lambda s: index.search(s, Query(alert=rng.choice(sample))),
        "agency+time range": lambda s: index.search(s, Query(
            agency=rng.choice(AGENCIES), since=since + timedelta(days=rng.randrange(200)),
            until=since + timedelta(days=rng.randrange(200, 260)))),
        "rule": lambda s: index.search(s, Query(rule=f"{AGREEMENTS[rng.choice(PARTNERS)]}.seizures")),
        "page 100": lambda s: index.search(s, Query(partner=rng.choice(PARTNERS)), page=100),
        "timeline": lambda s: index.timeline(s, rng.choice(sample)),
        "search form choices": lambda s: index.facets(s),
    }
    out: dict[str, Any] = {}
    try:
        for scope_name, scope in (("national", Scope()), ("USA-scoped", Scope("USA"))):
            for name, fn in kinds.items():
                times = []
                for _ in range(queries):
                    t0 = time.perf_counter()
                    fn(scope)
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                out[f"{scope_name} {name}"] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "n": len(times)}
            times = []
            for _ in range(max(3, queries // 20)):
                t0 = time.perf_counter()
                index.indicators(scope)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            out[f"{scope_name} indicators"] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "n": len(times)}
    finally:
        index.close()
    for scope_name, ms in cold.items():  # the first read, before the choices are kept
        out[f"{scope_name} search form choices, first"] = {"p50_ms": ms, "p95_ms": ms, "n": 1}
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    quiet_logs()
    run_id = f"bench-index-{int(time.time())}"
    tmp = Path(tempfile.mkdtemp(prefix="puente-bench-index-"))
    cfg = PuenteSettings().model_copy(update={"topic_prefix": run_id, "keys": tmp / "keys"})
    conn = connection(cfg)
    provision_all(cfg)
    policy = load_policy_set(cfg.policy_dir)
    decisions_topic = f"{run_id}.audit.decisions"
    specs = [s for s in plan_topics(cfg, policy) if s.name == decisions_topic]
    await ensure_topics(cfg, conn, specs)
    partitions = specs[0].partitions
    keys = Keystore(cfg.keys / "broker")
    signing = keys.load_signing_key()
    signer_id = keys.current(BROKER_OWNER, KeyKind.BROKER_SIGNING).key_id
    try:
        print(f"generating {args.decisions:,} decisions in signed blocks over {partitions} partitions ...",
              file=sys.stderr)
        t0 = time.perf_counter()
        blocks, count, sample = make_blocks(args.decisions, partitions, decisions_topic, signer_id,
                                            lambda payload: sign_checkpoint(signing, payload), args.seed)
        made_s = time.perf_counter() - t0
        n_blocks = sum(len(v) for v in blocks.values())
        print(f"  {n_blocks:,} blocks in {made_s:.1f}s; writing them to {decisions_topic} ...", file=sys.stderr)
        write_s = await write_blocks(conn, decisions_topic, blocks)
        del blocks
        print(f"  written in {write_s:.1f}s; raw read ...", file=sys.stderr)
        raw_s, raw_records, raw_bytes = await raw_read(conn, decisions_topic, partitions)
        env = {**os.environ, "PUENTE_TOPIC_PREFIX": run_id, "PUENTE_KEYS": str(cfg.keys),
               "PUENTE_CLIENT_CONFIG": str(conn.source) if conn.source else os.environ.get("PUENTE_CLIENT_CONFIG", "")}
        index_path = tmp / "index.sqlite"
        print("  puente audit index ...", file=sys.stderr)
        indexed = run_index(env, index_path)
        if indexed["rc"] not in (0,):
            raise SystemExit(f"bench: `puente audit index` exited {indexed['rc']}: " + " | ".join(indexed["tail"]))
        again = run_index(env, index_path)
        print("  searching ...", file=sys.stderr)
        latency = search_latency(index_path, sample, args.queries, args.seed)
        size_mib = sum(p.stat().st_size for p in tmp.glob("index.sqlite*")) / 2**20
    finally:
        if not args.keep_topics:
            await delete_topics(conn, run_id)
    raw_rate = count / raw_s
    index_rate = count / indexed["seconds"]
    return {
        "bench": "audit_index", "run": run_id, "at": iso_utc(datetime.now(UTC)), "load1": os.getloadavg()[0],
        "decisions": count, "blocks": n_blocks, "partitions": partitions, "generate_s": made_s, "write_s": write_s,
        "raw": {"seconds": raw_s, "records": raw_records, "mib": raw_bytes / 2**20, "decisions_per_s": raw_rate},
        "index": {"seconds": indexed["seconds"], "decisions_per_s": index_rate, "peak_rss_mib": indexed["peak_rss_mib"],
                  "summary": indexed["last"], "file_mib": size_mib},
        "catch_up": {"seconds": again["seconds"], "summary": again["last"]},
        "ratio_to_raw": index_rate / raw_rate, "search": latency,
    }


def report(result: dict[str, Any]) -> None:
    raw, idx = result["raw"], result["index"]
    print(f"\naudit index: {result['decisions']:,} decisions in {result['blocks']:,} signed blocks, "
          f"{result['partitions']} partitions (load {result['load1']:.2f})")
    print(f"  raw read_committed read: {raw['seconds']:.1f}s, {raw['mib']:.0f} MiB, "
          f"{raw['decisions_per_s']:,.0f} decisions/s")
    print(f"  puente audit index:      {idx['seconds']:.1f}s, {idx['decisions_per_s']:,.0f} decisions/s "
          f"(ratio to raw {result['ratio_to_raw']:.3f}), peak RSS {idx['peak_rss_mib']:.0f} MiB, "
          f"index file {idx['file_mib']:.0f} MiB")
    print(f"  catch-up with nothing new: {result['catch_up']['seconds']:.1f}s")
    print(f"  {'query':<36} {'p50 ms':>8} {'p95 ms':>8}")
    for name, row in result["search"].items():
        print(f"  {name:<36} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument("--quick", action="store_true", help="100,000 decisions, 50 queries of each kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="append the results line to this file")
    parser.add_argument("--keep-topics", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.decisions, args.queries = min(args.decisions, 100_000), min(args.queries, 50)
    result = asyncio.run(bench(args))
    report(result)
    line = json.dumps(result)
    if args.json:
        with args.json.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
    else:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
