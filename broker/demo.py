"""``puente demo``: the whole path on the local Kafka, with progress, ending in a table a person can read.

Keys and topics are made; each agency's adapter reads the shipped sample files, a
larger export made for the run and its corpus of bad records; a handful of bad
records the broker itself must catch go straight onto the ingress topics; two
broker workers share the ingress partitions, every
partner's subscriber reads, verifies and decrypts its own feed, and the audit
chains are verified. The table is built from the audit topic, not from the
workers' memory, so it shows what an auditor would find.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from puente.settings import PuenteSettings

STEPS = 7


def _step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run the whole path end to end on the local Kafka and print the result")
    demo.add_argument("--alerts", type=int, default=3000,
                      help="records in the fresh export made for each run, over the five agencies (default 3000)")
    demo.add_argument("--workers", type=int, default=2, help="broker workers in the consumer group (default 2)")
    demo.add_argument("--seed", type=int, default=2026)
    demo.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(demo(args.alerts, args.workers, args.seed))


async def _bad_inputs(cfg: PuenteSettings, seed: int) -> list[tuple[str, str]]:
    """Publish one record of each bad kind; return (agency, expected reason) for each."""
    from adapters.publisher import IngressPublisher
    from adapters.synthetic import generate
    from broker.crypto import Keystore, SecretBytes, sign_ingress
    from broker.topics import TopicNames

    names = TopicNames(cfg.topic_prefix)
    now = datetime.now(UTC)
    good = [a for a in generate(50, seed=seed + 1, now=now) if a["agency"] == "SENAN"][:5]
    for i, alert in enumerate(good):
        alert["alert_id"] = f"SENAN:BAD-{i}"
    mac = Keystore(cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    expected: list[tuple[str, str]] = []
    async with IngressPublisher(cfg.bootstrap, "SENAN", mac.key_id, mac, names) as pub:
        garbage = b"<alerta>no es avro</alerta>"
        await pub.send_raw(b"SENAN:BAD-x", garbage, sign_ingress("SENAN", mac.key_id, mac, garbage, "SENAN:BAD-x"))
        expected.append(("SENAN", "not-avro"))
        key, value, _ = pub.frame(good[0])
        unknown = value[:2] + b"\x13\x37" * 4 + value[10:]
        await pub.send_raw(key, unknown, sign_ingress("SENAN", mac.key_id, mac, unknown, good[0]["alert_id"]))
        expected.append(("SENAN", "unknown-schema"))
        forged_key = SecretBytes(b"\x00" * 32, key_id=mac.key_id)
        key, value, _ = pub.frame(good[1])
        await pub.send_raw(key, value, sign_ingress("SENAN", mac.key_id, forged_key, value, good[1]["alert_id"]))
        expected.append(("SENAN", "origin"))
        far = {**good[2], "location": {**(good[2]["location"] or {}), "latitude": 123.0}}
        await pub.send_raw(*pub.frame(far))
        expected.append(("SENAN", "invalid"))
        key, value, headers = pub.frame(good[3])
        await pub.send_raw(key, value, headers)
        await pub.send_raw(key, value, headers)  # the same record twice: the second is a replay
        expected.append(("SENAN", "replay"))
        key, value, _ = pub.frame(good[4])
        old = int((now - timedelta(days=cfg.replay_window_days + 1)).timestamp() * 1000)
        await pub.send_raw(key, value, sign_ingress("SENAN", mac.key_id, mac, value, good[4]["alert_id"], old))
        expected.append(("SENAN", "stale"))  # published longer ago than the replay window
    return expected


ADAPTERS = ("senafront", "senan", "pn", "snm", "combifron")
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def _adapt_all(cfg: PuenteSettings, alerts: int, run_id: str) -> dict[str, Any]:
    """Each agency's adapter reads its shipped samples, a larger export made for this run, and its bad corpus."""
    import io
    from zoneinfo import ZoneInfo

    from adapters import samplegen
    from adapters.config import make_context
    from adapters.registry import get
    from adapters.run import Tally, adapt_paths

    folder = Path(".puente/demo/input") / run_id
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    base = now.astimezone(ZoneInfo("America/Panama")).replace(tzinfo=None) - timedelta(hours=1)
    tallies: dict[str, Any] = {}
    for name in ADAPTERS:
        export = folder / f"{samplegen.FILE_NAMES[name]}-{run_id}{samplegen.SUFFIX[name]}"
        with open(export, "wb") as out:
            stamp = run_id.replace("-", "")
            samplegen.write(name, out, max(1, alerts // len(ADAPTERS)), seed=int(stamp) % 10_000, base=base,
                            prefix="D" + stamp)
        files = [*sorted(p for p in (SAMPLES / name).iterdir() if p.is_file()), export]
        files += sorted(p for p in (SAMPLES / "bad" / name).iterdir() if p.is_file())
        adapter = get(name)
        results = await adapt_paths(cfg, adapter, make_context(adapter.agency, now), [str(f) for f in files],
                                    err=io.StringIO())
        total = Tally()
        for _, tally in results:
            total.add(tally)
        tallies[name] = total
        print(f"      {name:<10} {len(files)} files: {total.line()}", flush=True)
    return tallies


async def _broker(cfg: PuenteSettings, workers: int, total: int) -> list[Any]:
    from broker.service import build_worker

    built = [build_worker(cfg, client_suffix=f"-demo{i}") for i in range(workers)]
    tasks = [asyncio.create_task(w.run(topics, idle_exit_s=6.0)) for w, topics, _ in built]
    last = -1
    while not all(t.done() for t in tasks):
        await asyncio.sleep(1.0)
        done = sum(w.metrics.inputs for w, _, _ in built)
        if done != last:
            print(f"      broker: {done}/{total} input records processed by {workers} workers", flush=True)
            last = done
    for t in tasks:
        t.result()
    return [w for w, _, _ in built]


async def _subscribers(cfg: PuenteSettings, out_dir: Path) -> dict[str, Any]:
    from broker.cli import make_opener, receipt_signer
    from broker.subscriber import Subscriber
    from broker.topics import TopicNames
    from policies import load_policy_set
    from schemas import alert_codec

    names = TopicNames(cfg.topic_prefix)
    partners = load_policy_set(cfg.policy_dir).partners
    out_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    async def one(pid: str) -> Any:
        partner = partners[pid]
        folder = cfg.keys / "partners" / pid
        key_file = folder / f"{partner.encryption_key_id}.json"
        opener = make_opener(pid, key_file, None, partner.encryption_key_id)
        sub = Subscriber(cfg.bootstrap, pid, names.feed(partner.feed_topic), names.access, opener, alert_codec(),
                         signer=receipt_signer(pid, key_file, None), on_error=errors.append)
        with open(out_dir / f"{pid}.jsonl", "w", encoding="utf-8") as out:
            return await sub.run(out, idle_exit_s=4.0)

    results = await asyncio.gather(*(one(pid) for pid in sorted(partners)))
    for line in errors[:5]:
        print(f"      {line}")
    return dict(zip(sorted(partners), results, strict=True))


async def _audit_counts(cfg: PuenteSettings) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str]]:
    from broker.audit.store import LogFilter, read_log
    from broker.cli import verifier
    from broker.topics import TopicNames

    names = TopicNames(cfg.topic_prefix)
    decisions: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    receipts: Counter[str] = Counter()
    async for doc in read_log(cfg.bootstrap, names.audit_roles(), LogFilter(), verifier(cfg, None)):
        if doc["kind"] == "DECISION":
            decisions[(doc["partner"], doc["decision"])] += 1
        elif doc["kind"] == "DEAD_LETTER":
            dead[doc["reason"]] += 1
        elif doc["kind"] == "RECEIPT" and doc.get("status") == "RECEIVED":
            receipts[doc["partner"]] += 1
    return decisions, dead, receipts


async def demo(alerts: int, workers: int, seed: int) -> int:
    from broker.audit.store import verify_topics
    from broker.cli import apply_all, init_keys, verifier
    from broker.logging import configure_logging
    from broker.topics import TopicNames

    configure_logging(logging.WARNING)  # the demo prints its own progress; workers' logs would drown it
    started = time.monotonic()
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = PuenteSettings()
    keys = base.keys if "PUENTE_KEYS" in os.environ else Path(".puente/demo/keys")
    cfg = base.model_copy(update={"topic_prefix": f"demo-{run_id}", "keys": keys})
    print(f"Puente demo {run_id}: Kafka at {cfg.bootstrap}, topics under '{cfg.topic_prefix}.*'")
    _step(1, f"keys: broker signing key, partner encryption keys, agency MAC keys (in {cfg.keys})")
    init_keys(cfg)
    _step(2, "topics: ingress per agency, feed per partner, audit decisions and access, dead letter")
    await apply_all(cfg)
    _step(3, "adapters turn each agency's own files (samples, a fresh export, a bad corpus) into signed alerts")
    tallies = await _adapt_all(cfg, alerts, run_id)
    bad = await _bad_inputs(cfg, seed)
    print(f"      and straight onto the ingress topics, one bad record of each kind the broker must catch: "
          f"{', '.join(reason for _, reason in bad)}")
    published = sum(t.published for t in tallies.values())
    total = published + len(bad) + 1  # the replay was sent twice
    _step(4, f"broker: {workers} workers in one consumer group, exactly-once into feeds and audit")
    await _broker(cfg, workers, total)
    _step(5, "partners: each subscriber verifies, decrypts and decodes its own feed, and sends receipts")
    out_dir = Path(".puente/demo/feeds") / run_id
    stats = await _subscribers(cfg, out_dir)
    _step(6, "auditor: verify every hash chain and every signature")
    names = TopicNames(cfg.topic_prefix)
    reports = await verify_topics(cfg.bootstrap, names.audit_roles(), verifier(cfg, None))
    problems = [f for r in reports for f in r.findings]
    _step(7, "result, from the audit topic")
    decisions, dead, receipts = await _audit_counts(cfg)
    rejected = sum(t.rejected for t in tallies.values())
    print(f"\n  records read by adapters     {sum(t.read for t in tallies.values()):>7}")
    print(f"  rejected at the adapters     {rejected:>7}   (dead-lettered with file, line and reason)")
    ok = _table(total, decisions, dead, receipts, stats, reports, problems, out_dir)
    print(f"Finished in {time.monotonic() - started:.0f}s.")
    return 0 if ok else 1


def _table(total: int, decisions: Counter[tuple[str, str]], dead: Counter[str], receipts: Counter[str],
           stats: dict[str, Any], reports: list[Any], problems: list[Any], out_dir: Path) -> bool:
    partners = sorted({p for p, _ in decisions})
    decided = {p: sum(n for (q, _), n in decisions.items() if q == p) for p in partners}
    inputs_decided = max(decided.values(), default=0)
    print(f"  input records published      {total:>7}")
    print(f"  decided (every partner)      {inputs_decided:>7}")
    print(f"  dead-lettered                {sum(dead.values()):>7}   "
          + ", ".join(f"{r}: {n}" for r, n in sorted(dead.items())))
    adds_up = inputs_decided + sum(dead.values()) == total and len(set(decided.values())) <= 1
    print(f"  adds up                      {'yes' if adds_up else 'NO'}")
    print()
    print(f"  {'partner':<8} {'delivered':>9} {'redacted':>9} {'withheld':>9} {'received':>9} {'receipts':>9}")
    consistent = True
    for p in partners:
        d, r, w = (decisions[(p, k)] for k in ("DELIVER", "DELIVER_REDACTED", "WITHHOLD"))
        got = stats[p].received if p in stats else 0
        consistent &= got == d + r and stats.get(p) is not None and stats[p].rejected == 0
        print(f"  {p:<8} {d:>9} {r:>9} {w:>9} {got:>9} {receipts[p]:>9}")
    chains = sum(1 for r in reports if r.records)
    records = sum(r.records for r in reports)
    checkpoints = sum(r.checkpoints for r in reports)
    print()
    print(f"  audit verify: {records} records in {chains} chains, {checkpoints} of them signed, "
          + ("no problems" if not problems else f"{len(problems)} PROBLEM(S)"))
    for f in problems[:10]:
        print(f"    {f.topic}[{f.partition}] offset {f.offset}: {f.problem}")
    print(f"  partner views written to {out_dir}/<partner>.jsonl")
    return adds_up and consistent and not problems

