"""Each adapter's records per second on a 100,000-record file in its agency's own format.

    python bench/bench_adapters.py                 # 100,000 records per adapter, in-process
    python bench/bench_adapters.py --quick         # 10,000 records per adapter
    python bench/bench_adapters.py --kafka snm     # also publish one adapter's file to the local Kafka

In-process, on one core, it times what an adapter does to every record: read and parse
(CSV, JSON documents, fixed-width, JSON Lines), map and check (the pure mapping plus the
final checks), Avro encode (the schema check), and the ingress MAC, and shows the share of
each. File generation is not timed. ``--kafka NAME`` then runs the real edge against the
local Kafka in a throwaway topic prefix: a first run that publishes every record (acks=all,
idempotent producer), and a second run over the same file that publishes nothing, which
measures the idempotence ledger (reading the ingress topic's keys back) plus the mapping.
That Kafka is the one ``PUENTE_BOOTSTRAP`` (or ``PUENTE_CLIENT_CONFIG``) names: for the local
one, ``eval "$(puente kafka env)"`` first. Its keys, topics and clients are made as
``puente keys init``, ``puente topics apply`` and ``puente adapt`` make them.
Nothing here asserts a timing; the machine is shared, so figures vary between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.config import Context, Vocabulary, load_config, make_context
from adapters.core import finish
from adapters.registry import ADAPTERS, get
from broker.crypto import SecretBytes, sign_ingress
from puente.dev.samplegen import SUFFIX, write
from puente.errors import AdapterError, CodecError
from schemas import alert_codec

if TYPE_CHECKING:
    from broker.kafka import KafkaConnection


def _generate(folder: Path, count: int) -> dict[str, Path]:
    files = {}
    for name in ADAPTERS:
        path = folder / f"{name}{SUFFIX[name]}"
        started = time.perf_counter()
        with open(path, "wb") as out:
            # Fresh dates (the day before now), so that no record is refused as too old or in the future.
            write(name, out, count, seed=2026, base=_panama_now_minus_days(1.0), prefix="B")
        print(f"  generated {name:<10} {count:>8,} records, {path.stat().st_size / 1e6:7.1f} MB "
              f"in {time.perf_counter() - started:5.1f}s", file=sys.stderr)
        files[name] = path
    return files


def _panama_now_minus_days(days: float) -> datetime:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("America/Panama")).replace(tzinfo=None) - timedelta(days=days)


def measure(name: str, path: Path, ctx: Context) -> dict[str, float]:
    """Seconds spent per stage over the whole file, and the record counts."""
    adapter, codec = get(name), alert_codec()
    mac = SecretBytes(os.urandom(32), key_id=f"{adapter.agency}-mac-bench")
    t = {"read": 0.0, "map": 0.0, "encode": 0.0, "mac": 0.0}
    records = rejected = 0
    clock = time.perf_counter
    with open(path, "rb") as stream:
        items = adapter.read(stream, ctx)
        mark = clock()
        for item in items:
            t0 = clock()
            t["read"] += t0 - mark
            records += 1
            if item.error is not None:
                rejected += 1
                mark = clock()
                continue
            try:
                alert = finish(adapter.map(item.parsed, ctx), ctx)
                t1 = clock()
                value = codec.encode(alert)
                t2 = clock()
            except (AdapterError, CodecError):
                rejected += 1
                mark = clock()
                continue
            sign_ingress(adapter.agency, mac.key_id, mac, value, alert["alert_id"])
            mark = clock()
            t["map"] += t1 - t0
            t["encode"] += t2 - t1
            t["mac"] += mark - t2
    return {**t, "records": records, "rejected": rejected, "bytes": path.stat().st_size}


def report(name: str, m: dict[str, float]) -> None:
    total = m["read"] + m["map"] + m["encode"] + m["mac"]
    shares = "  ".join(f"{k} {100 * m[k] / total:4.1f}%" for k in ("read", "map", "encode", "mac"))
    print(f"{name:<10} {int(m['records']):>8,} rec {int(m['rejected']):>4} bad  {m['records'] / total:>9,.0f} rec/s "
          f"{1e6 * total / m['records']:>7.1f} µs/rec  {m['bytes'] / total / 1e6:5.1f} MB/s   {shares}", flush=True)


async def publish(name: str, path: Path) -> None:
    """The full edge for one adapter against Kafka, in a throwaway topic prefix deleted afterwards."""
    import logging

    from adapters.run import AdapterRun
    from broker.kafka import Admin, apply_topics, connection, plan_topics
    from broker.keystore import provision_all
    from policies import load_policy_set
    from puente.errors import ConfigError
    from puente.settings import load_settings

    with tempfile.TemporaryDirectory() as keys:
        cfg = load_settings(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}", keys=Path(keys))
        try:
            conn = connection(cfg, "bench-adapters")
        except ConfigError as exc:
            raise SystemExit(f"bench: {exc} (for the local Kafka: eval \"$(puente kafka env)\")") from None
        provision_all(cfg)
        # aiokafka logs each request it retries while the fresh topics settle (NotLeaderForPartition,
        # at ERROR); the adapter run reports what matters itself, as bench_broker's processes do.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        try:
            results = await apply_topics(Admin(conn), plan_topics(cfg, load_policy_set(cfg.policy_dir)))
            failed = [f"{r.spec.name} {r.action}: {r.detail}" for r in results if not r.ok]
            if failed:
                raise SystemExit(f"bench: {len(failed)} topic(s) not made: " + "; ".join(failed[:3]))
            adapter = get(name)
            ctx = make_context(adapter.agency, datetime.now(UTC))
            for label in ("first run (publishes)", "second run (all duplicates)"):
                started = time.perf_counter()
                async with AdapterRun(cfg, conn, adapter, ctx, progress_every=3600) as run:
                    ledger = time.perf_counter() - started
                    with open(path, "rb") as stream:
                        tally = await run.run(stream, str(path))
                took = time.perf_counter() - started
                print(f"kafka {name:<10} {label:<28} {tally.read / took:>9,.0f} rec/s  ({took:5.1f}s; reading the "
                      f"ledger of {len(run.ledger) - tally.published:,} ids took {ledger:4.1f}s)  {tally.line()}",
                      flush=True)
        finally:
            await _delete(conn, cfg.topic_prefix)


async def _delete(conn: KafkaConnection, prefix: str) -> None:
    """Delete the run's topics (``<prefix>.*``) through Puente's admin client; each result is checked."""
    from broker.kafka import Admin

    admin = Admin(conn)
    timeout = conn.timeout_s
    metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=timeout))
    mine = sorted(t for t in metadata.topics if t.startswith(prefix + "."))
    if not mine:
        return
    futures = await admin.call("deleting the bench topics", lambda c: c.delete_topics(
        mine, operation_timeout=timeout, request_timeout=timeout))
    failed = [t for t, e in (await admin.results("deleting the bench topics", futures)).items()
              if isinstance(e, Exception)]
    if failed:
        print(f"bench: could not delete {len(failed)} of the {len(mine)} bench topics ({', '.join(failed[:3])})",
              file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 records per adapter instead of 100,000")
    parser.add_argument("--count", type=int, help="records per adapter (overrides --quick)")
    parser.add_argument("--only", choices=list(ADAPTERS), action="append", help="bench only these adapters")
    parser.add_argument("--kafka", choices=list(ADAPTERS), help="also publish this adapter's file to Kafka")
    parser.add_argument("--dir", type=Path, help="keep the generated files here (default: a temporary folder)")
    args = parser.parse_args()
    count = args.count or (10_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = _generate(folder, count)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the figures claim
        config, vocab = load_config(), Vocabulary.load()
        print(f"{count:,} records per adapter, one core, mapping + Avro encoding + ingress MAC in-process")
        for name in args.only or list(ADAPTERS):
            ctx = make_context(get(name).agency, datetime.now(UTC), config, vocab)
            report(name, measure(name, files[name], ctx))
        if args.kafka:
            asyncio.run(publish(args.kafka, files[args.kafka]))


if __name__ == "__main__":
    main()
