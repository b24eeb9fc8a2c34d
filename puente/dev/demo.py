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

import asyncio
import io
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.config import make_context
from adapters.publisher import IngressPublisher
from adapters.registry import get
from adapters.run import Tally, adapt_paths
from broker.auditor import LogFilter, read_log, signature_checks, verify_topics
from broker.crypto import SecretBytes, sign_ingress
from broker.kafka import Admin, KafkaConnection, apply_topics, connection, plan_topics
from broker.keystore import Keystore, provision_all
from broker.partner import subscriber_for
from broker.service import build_worker, check_topology
from broker.topology import TopicNames
from policies import load_policy_set
from puente import logs
from puente.dev import samplegen
from puente.dev.localkafka import LocalKafka
from puente.dev.synthetic import generate
from puente.errors import ConfigError
from puente.settings import PuenteSettings, load_settings

STEPS = 7


def _step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


async def _bad_inputs(cfg: PuenteSettings, conn: KafkaConnection, seed: int) -> list[tuple[str, str]]:
    """Publish one record of each bad kind; return (agency, expected reason) for each."""
    names = TopicNames(cfg.topic_prefix)
    now = datetime.now(UTC)
    good = [a for a in generate(50, seed=seed + 1, now=now) if a["agency"] == "SENAN"][:5]
    for i, alert in enumerate(good):
        alert["alert_id"] = f"SENAN:BAD-{i}"
    mac = Keystore(cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    expected: list[tuple[str, str]] = []
    async with IngressPublisher(conn, "SENAN", mac.key_id, mac, names) as pub:
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
SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # the repository's; the demo runs from a clone


async def _adapt_all(cfg: PuenteSettings, conn: KafkaConnection, alerts: int, run_id: str) -> dict[str, Any]:
    """Each agency's adapter reads its shipped samples, a larger export made for this run, and its bad corpus."""
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
        results = await adapt_paths(cfg, conn, adapter, make_context(adapter.agency, now), [str(f) for f in files],
                                    err=io.StringIO())
        total = Tally()
        for _, tally in results:
            total.add(tally)
        tallies[name] = total
        print(f"      {name:<10} {len(files)} files: {total.line()}", flush=True)
    return tallies


async def _broker(cfg: PuenteSettings, conn: KafkaConnection, workers: int, total: int) -> list[Any]:
    await check_topology(cfg, conn)
    built = [build_worker(cfg, conn, client_suffix=f"-demo{i}") for i in range(workers)]
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


async def _subscribers(cfg: PuenteSettings, conn: KafkaConnection, out_dir: Path) -> dict[str, Any]:
    partners = load_policy_set(cfg.policy_dir).partners
    out_dir.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    async def one(pid: str) -> Any:
        partner = partners[pid]
        key_file = cfg.keys / "partners" / pid / f"{partner.encryption_key_id}.json"
        sub = subscriber_for(cfg, conn, pid, key_file)
        sub.on_error = errors.append
        with open(out_dir / f"{pid}.jsonl", "w", encoding="utf-8") as out:
            return await sub.run(out, idle_exit_s=4.0)

    results = await asyncio.gather(*(one(pid) for pid in sorted(partners)))
    for line in errors[:5]:
        print(f"      {line}")
    return dict(zip(sorted(partners), results, strict=True))


async def _audit_counts(cfg: PuenteSettings, conn: KafkaConnection,
                        ) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str]]:
    decisions: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    receipts: Counter[str] = Counter()
    names = TopicNames(cfg.topic_prefix)
    async for doc in read_log(conn, names.audit_roles(), LogFilter(), signature_checks(cfg.keys / "broker", None)):
        if doc["kind"] == "DECISION":
            decisions[(doc["partner"], doc["decision"])] += 1
        elif doc["kind"] == "DEAD_LETTER":
            dead[doc["reason"]] += 1
        elif doc["kind"] == "RECEIPT" and doc.get("status") == "RECEIVED":
            receipts[doc["partner"]] += 1
    return decisions, dead, receipts


async def demo(alerts: int, workers: int, seed: int) -> int:
    logs.configure("critical")  # the demo prints its own progress and checks the result; logs would drown it
    started = time.monotonic()
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = load_settings()
    if base.bootstrap is None and base.client_config is None:
        base = base.model_copy(update={"bootstrap": LocalKafka("single").bootstrap})  # the local Kafka, as make demo
    keys = base.keys if "PUENTE_KEYS" in os.environ else Path(".puente/demo/keys")
    cfg = base.model_copy(update={"topic_prefix": f"demo-{run_id}", "keys": keys})
    conn = connection(cfg, "puente-demo")
    print(f"Puente demo {run_id}: Kafka at {conn.bootstrap} as {conn.principal}, topics under '{cfg.topic_prefix}.*'")
    _step(1, f"keys: broker signing key, partner encryption keys, agency MAC keys (in {cfg.keys})")
    provision_all(cfg)
    _step(2, "topics: ingress per agency, feed per partner, audit decisions and access, dead letter")
    applied = await apply_topics(Admin(conn), plan_topics(cfg, load_policy_set(cfg.policy_dir)))
    failed = [r for r in applied if not r.ok]
    if failed:
        raise ConfigError(f"topics apply failed for {failed[0].spec.name}: {failed[0].detail}")
    _step(3, "adapters turn each agency's own files (samples, a fresh export, a bad corpus) into signed alerts")
    tallies = await _adapt_all(cfg, conn, alerts, run_id)
    bad = await _bad_inputs(cfg, conn, seed)
    print(f"      and straight onto the ingress topics, one bad record of each kind the broker must catch: "
          f"{', '.join(reason for _, reason in bad)}")
    published = sum(t.published for t in tallies.values())
    total = published + len(bad) + 1  # the replay was sent twice
    _step(4, f"broker: {workers} workers in one consumer group, exactly-once into feeds and audit")
    await _broker(cfg, conn, workers, total)
    _step(5, "partners: each subscriber verifies, decrypts and decodes its own feed, and sends receipts")
    out_dir = Path(".puente/demo/feeds") / run_id
    stats = await _subscribers(cfg, conn, out_dir)
    _step(6, "auditor: verify every hash chain and every signature")
    names = TopicNames(cfg.topic_prefix)
    reports = await verify_topics(conn, names.audit_roles(), signature_checks(cfg.keys / "broker", None))
    problems = [f for r in reports for f in r.findings]
    _step(7, "result, from the audit topic")
    decisions, dead, receipts = await _audit_counts(cfg, conn)
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

