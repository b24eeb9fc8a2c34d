"""Puente end to end on the local Kafka, against a raw aiokafka pass-through of the same records.

    python bench/bench_broker.py            # full run (about a minute and a half on an idle machine)
    python bench/bench_broker.py --quick    # about twenty seconds, for a smoke check
    python bench/bench_broker.py --json out.jsonl   # the results line goes to a file instead of stdout

One run, one Kafka, one pre-published input: synthetic alerts from the built-in
generator, Avro single-object encoded, with the ingress MAC headers, published by
``IngressPublisher`` exactly as the adapters do. Over that same input it measures:

1. Raw pass-through with aiokafka, a fresh consumer group per run, every record's
   key, value and headers produced unchanged to one output topic. Its clients are aiokafka's
   own, with a Puente slot's producer settings (its retry backoff ``PUENTE_PRODUCER_RETRY_BACKOFF_MS``,
   and the transaction retry backoff ``tune_transactions`` sets) and its consumer's 50 ms fetch
   wait, but their bootstrap and security come from the same ``KafkaConnection`` as Puente's
   (``conn.aiokafka()``), so both sides always reach Kafka the same way:
   - *transactional*: per poll, one transaction: produce, ``send_offsets_to_transaction``,
     commit (the exactly-once pattern); this is the headline ratio's denominator;
   - *plain*: produce (idempotent, acks=all), then ``consumer.commit`` (at-least-once);
   - *txn per partition*: Puente's own shape, one transactional producer and one
     transaction per ingress partition per poll, without the consumer offsets, which are
     committed outside the transactions every 0.2 s as Puente's worker does (Puente's audit
     block is where a slot stands; the raw copies record no position, so this reference is not
     exactly once: it measures what the shape costs), for reference.
   Each runs ``--repeat`` times (the median counts): they are short.
2. Puente: ``--workers`` worker processes (default one) of one consumer group, each a
   ``BrokerWorker`` (``build_worker``) with three partners, encryption, the ingress MAC
   check and exactly-once on, until every input record is committed. The input is
   published in one Kafka transaction that is committed only once every worker has
   joined, so no group join or rebalance falls inside the measurement. Each of the
   ``--repeat`` rounds uses fresh topics and the same input; the median counts.
3. Latency at a steady rate (default 1,000 alerts/s): while a worker runs, alerts are
   published paced; a read_committed consumer of the audit decisions topic and of every
   feed notes when each alert's audit record and each feed record it delivers become
   visible, and the last of them counts: a slot's feed records commit in the transaction
   after their decisions' (``broker.lifecycle.outbox_records``). Then the
   raw baseline, in the same run: the same frames at the same rate, published the same way
   to ingress topics of its own, through the raw transactional pass-through (one
   transaction per poll, as above); a read_committed consumer of its output notes when each
   copy becomes visible. The report gives both p50/p99 and Puente's ratio to raw. Last, for
   reference, the same again through the raw *txn per partition* pass-through (Puente's
   transaction shape and nothing else of Puente's), and through the raw transactional one with
   librdkafka's clients and KIP-447 group metadata (``_raw_rdkafka``: what the client limits).
4. Peak RSS of each measured process (its ``VmHWM``: see ``rss_mib`` for why not ``ru_maxrss``).

Each measured side runs in its own process (spawned), one at a time, so that its
figures are its own; the driver only waits, except in the latency phase where it
publishes and observes. Throughput is counted from the start of the first batch to
the commit of the last, so group joins and start-up are left out (shown apart).
The policy is a copy of the shipped one (or of ``PUENTE_POLICY_DIR``) cut down to three
partners, COL, USA and FEAN: the others are removed from partners.yaml, and agreements left
with no partner are removed with their test suites (see ``prepare_policy``). Keys are made
fresh in a temporary folder, topics fresh under ``bench-<time>`` (made by Puente's own
``apply_topics``) and deleted at the end unless ``--keep-topics``. Kafka is the one
``PUENTE_BOOTSTRAP`` or ``PUENTE_CLIENT_CONFIG`` names (``eval "$(puente kafka env)"`` for the
local one; ``scripts/bench.sh`` does it); other ``PUENTE_*`` settings (partitions, max batch) apply.
Nothing here asserts a timing: it reports what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without install, in the spawned children too

import orjson  # noqa: E402 - after the path fix above
import yaml  # noqa: E402

from broker.kafka import KafkaConnection  # noqa: E402
from puente.settings import PuenteSettings  # noqa: E402

PARTNERS = ("COL", "USA", "FEAN")
RAW_MODES = ("tx", "plain", "slots")
OLD_KEY_ID = re.compile(r"encryption: (\w+)-feed-enc-2025")
ALERT_ID = re.compile(rb'"alert_id":"([^"]+)"')
HOME = "PAN"


# ---- setup: policy copy, keys, topics, input --------------------------------------------------
# PyYAML folds a long text over lines at 80 columns; the policy loader takes a text over lines only where it is
# prose, and no line of prose may read as an entry, so texts are written whole on one line.
_ONE_LINE = 1 << 30

def prepare_policy(source: Path, dest: Path, keep: tuple[str, ...]) -> list[str]:
    """Copy the policy data to ``dest``, keeping only the partners in ``keep``; return what was changed.

    Removes the other partners from partners.yaml, drops them from agreement parties, and
    deletes agreements (and their test suites) left without a partner. If the shipped file
    still names partner keys ``<x>-feed-enc-2025`` (which ``keys init`` does not create),
    rewrites them to ``<X>-enc-2026a``; once the shipped data is fixed, nothing is rewritten.
    """
    shutil.copytree(source, dest)
    notes: list[str] = []
    partners_file = dest / "partners.yaml"
    text = partners_file.read_text(encoding="utf-8")
    if OLD_KEY_ID.search(text):
        text = OLD_KEY_ID.sub(lambda m: f"encryption: {m.group(1).upper()}-enc-2026a", text)
        notes.append("partner key ids rewritten <x>-feed-enc-2025 -> <X>-enc-2026a (shipped data still old)")
    doc = yaml.safe_load(text)
    removed = sorted(p["id"] for p in doc["partners"] if p["id"] not in keep)
    missing = sorted(set(keep) - {p["id"] for p in doc["partners"]})
    if missing:
        raise SystemExit(f"bench: partners {', '.join(missing)} are not in {source / 'partners.yaml'}")
    if removed:
        doc["partners"] = [p for p in doc["partners"] if p["id"] in keep]
        notes.append(f"removed partner(s) {', '.join(removed)} from partners.yaml")
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=_ONE_LINE)
    partners_file.write_text(text, encoding="utf-8")
    for path in sorted((dest / "agreements").glob("*.yaml")):
        if path.name.endswith(".tests.yaml"):
            continue
        agreement = yaml.safe_load(path.read_text(encoding="utf-8"))
        parties = list(agreement.get("parties", []))
        if not set(parties) & set(removed):
            continue
        if not (set(parties) - {HOME}) - set(removed):
            path.unlink()
            suite = path.with_name(path.name[: -len(".yaml")] + ".tests.yaml")
            suite.unlink(missing_ok=True)
            notes.append(f"removed agreement {path.name} (and its test suite): no partner left")
        else:
            agreement["parties"] = [p for p in parties if p not in removed]
            path.write_text(yaml.safe_dump(agreement, sort_keys=False, allow_unicode=True, width=_ONE_LINE),
                            encoding="utf-8")
            notes.append(f"dropped {', '.join(sorted(set(parties) & set(removed)))} from {path.name} parties")
    return notes


def settings_for(update: dict[str, Any]) -> PuenteSettings:
    return PuenteSettings().model_copy(update=update)


def quiet_logs() -> None:
    """Puente's warnings and errors (one pipeline, ``puente.logs``); none of aiokafka's lines.

    aiokafka logs every request it retries, at WARNING or ERROR: Kafka 4 answers
    NOT_ENOUGH_REPLICAS to a transactional produce that races the previous transaction's
    markers, so both sides log such lines by the hundred. The retries are part of what is
    measured, on both sides alike; their lines would bury the report, and a failure that
    matters reaches the bench as an exception. (Before ``broker.kafka``, importing
    ``broker.kafka_io`` silenced aiokafka the same way in every process.)
    """
    import logging

    from puente import logs

    logs.configure("warning")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def rss_mib() -> float:
    """This process's peak RSS in MiB.

    On Linux, ``getrusage``'s ``ru_maxrss`` survives fork+exec: a spawned child starts with the
    driver's RSS at the time of the fork as its maximum, whatever it uses itself. ``VmHWM`` is the
    high-water mark of the child's own address space, so it is read first; ``ru_maxrss`` is the fallback.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            return int(found.group(1)) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Clock:
    """Batch timings of one measured process: first batch start to last batch commit, and CPU."""

    def __init__(self) -> None:
        self.first_start: float | None = None
        self.last_end = 0.0
        self.records = 0
        self.batches = 0
        self.cpu0: float | None = None
        self.n0 = 0
        self.cpu1 = 0.0

    def batch(self, size: int, started: float) -> None:
        now = time.monotonic()
        cpu = time.process_time()
        if self.first_start is None or started < self.first_start:
            self.first_start = started
        self.last_end = max(self.last_end, now)
        self.records += size
        self.batches += 1
        if self.cpu0 is None:
            self.cpu0, self.n0 = cpu, self.records
        self.cpu1 = cpu

    def work_started(self) -> None:
        """Where a process works on several batches at once, CPU counts from the first record's start."""
        self.cpu0, self.n0 = time.process_time(), 0

    def result(self) -> dict[str, Any]:
        seconds = self.last_end - self.first_start if self.first_start is not None else 0.0
        after_first = self.records - self.n0
        cpu_us = (self.cpu1 - (self.cpu0 or 0.0)) * 1e6 / after_first if after_first > 0 else None
        return {"records": self.records, "seconds": seconds, "batches": self.batches,
                "per_s": self.records / seconds if seconds > 0 else 0.0, "cpu_us_per_record": cpu_us,
                "first_start": self.first_start, "last_end": self.last_end}


# ---- child processes ------------------------------------------------------------------------
def raw_child(pipe: Any, kafka: KafkaConnection, topics: list[str], out_topic: str, group: str, mode: str,
              expect: int, max_batch: int, deadline_s: float, done: Any = None, index: int = 0,
              owned: Any = None, stop: Any = None) -> None:
    if mode == "rdkafka":
        pipe.send(_raw_rdkafka(kafka, topics, out_topic, group, max_batch, deadline_s, stop))
        return
    pipe.send(asyncio.run(_raw(kafka, topics, out_topic, group, mode, expect, max_batch, deadline_s,
                               done, index, owned, stop)))


def _raw_rdkafka(kafka: KafkaConnection, topics: list[str], out_topic: str, group: str, max_batch: int,
                 deadline_s: float, stop: Any) -> dict[str, Any]:
    """Mode "rdkafka", in the latency phase only: the "tx" pass-through (one transactional producer, one
    transaction per poll) with librdkafka's clients (confluent-kafka, which Puente already uses for
    administration), its offsets sent with the consumer's group metadata (KIP-447, which aiokafka cannot
    send: without it Puente fences a slot's zombie with a producer per ingress partition). A reference for
    what a C client with that fencing reaches on the same machine and Kafka, in the same run; its producer
    retries after Puente's slot backoff (librdkafka's default, 100 ms, is the wait a transaction meets while
    the last one's markers are written), and Nagle's algorithm is off, as aiokafka has it."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    quiet_logs()
    conf = {**kafka.librdkafka(), "socket.nagle.disable": True}
    worker_cfg = PuenteSettings()
    backoff = worker_cfg.producer_retry_backoff_ms
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "fetch.wait.max.ms": worker_cfg.fetch_max_wait_ms,
                         "fetch.min.bytes": worker_cfg.fetch_min_bytes})
    producer = Producer({**conf, "transactional.id": f"{group}-rd", "enable.idempotence": True, "acks": "all",
                         "linger.ms": 0, "retry.backoff.ms": backoff, "retry.backoff.max.ms": max(backoff, 20)})
    began = time.monotonic()
    producer.init_transactions(max(kafka.timeout_s, 30))
    consumer.subscribe(topics)
    clock = Clock()
    first_batch_at: float | None = None
    timed_out = False
    try:
        while not stop.is_set():
            if time.monotonic() - began > deadline_s:
                timed_out = True
                break
            head = consumer.poll(0.2)  # then what else is already fetched, without waiting for more
            if head is None:
                continue
            msgs = [m for m in (head, *consumer.consume(max_batch - 1, timeout=0)) if m.error() is None]
            if not msgs:
                continue
            started = time.monotonic()
            first_batch_at = first_batch_at or started
            producer.begin_transaction()
            offsets: dict[tuple[str, int], int] = {}
            for m in msgs:
                producer.produce(out_topic, m.value(), m.key(), headers=m.headers())
                topic, partition, offset = m.topic(), m.partition(), m.offset()
                if topic is not None and partition is not None and offset is not None:  # set on every record
                    offsets[(topic, partition)] = offset + 1
            producer.send_offsets_to_transaction([TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                                 consumer.consumer_group_metadata())
            producer.commit_transaction()
            clock.batch(len(msgs), started)
    finally:
        consumer.close()
    out = clock.result()
    out.update(startup_s=(first_batch_at or began) - began, timed_out=timed_out, rss_mib=rss_mib())
    return out


async def _raw(kafka: KafkaConnection, topics: list[str], out_topic: str, group: str, mode: str, expect: int,
               max_batch: int, deadline_s: float, done: Any = None, index: int = 0,
               owned: Any = None, stop: Any = None) -> dict[str, Any]:
    """Pass every record through unchanged; modes: "tx" (one transaction per poll), "slots" (one
    transactional producer and transaction per partition, the offsets committed outside the transactions
    every ``COMMIT_EVERY_S``, as Puente's worker), "plain" (at-least-once).

    The clients are aiokafka's own, not ``broker.kafka``'s, so nothing of Puente's sits in the
    baseline; only where and how they connect (bootstrap, TLS, SASL) comes from ``kafka``, the
    connection Puente's side uses too. It crosses into this process as the (frozen, picklable)
    model and its client arguments are made here: an ``SSLContext`` cannot be pickled.

    With ``done`` (a shared counter) several processes of one group count together towards ``expect``,
    and each reports how many partitions it holds in ``owned[index]``. With ``stop`` (an event) it runs
    until that is set instead (the latency phase).
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    from broker.kafka import partitions_of, tune_transactions
    from broker.worker import COMMIT_EVERY_S

    quiet_logs()
    worker_cfg = PuenteSettings()  # this process's environment is the bench's: the settings a Puente worker has
    retry_backoff_ms = worker_cfg.producer_retry_backoff_ms  # what a Puente slot producer uses
    # The transaction retry backoff a Puente worker sets when it starts (a process-wide aiokafka
    # setting): the baseline gains what Puente gains, so the ratio compares the work, not the setting.
    tune_transactions()
    client = kafka.aiokafka()

    def producer(name: str, transactional_id: str | None) -> AIOKafkaProducer:
        # The same settings as a Puente slot producer (broker.worker, through broker.kafka.producer).
        return AIOKafkaProducer(
            **client, client_id=f"bench-{name}", enable_idempotence=True, acks="all", linger_ms=0,
            max_batch_size=256 * 1024, request_timeout_ms=int(max(kafka.timeout_s, 30) * 1000),
            transactional_id=transactional_id, retry_backoff_ms=retry_backoff_ms,
        )

    began = time.monotonic()
    consumer = AIOKafkaConsumer(
        **client, group_id=group, client_id=f"bench-{mode}", enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=max_batch,
        fetch_max_bytes=16 * 1024 * 1024,  # and its fetches gather records as a Puente worker's do
        fetch_max_wait_ms=worker_cfg.fetch_max_wait_ms, fetch_min_bytes=worker_cfg.fetch_min_bytes,
    )
    await consumer.start()
    await consumer.topics()
    producers: dict[Any, AIOKafkaProducer] = {}
    if mode == "slots":
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(consumer, t)]
        for i, tp in enumerate(tps):
            producers[tp] = producer(f"slot{i}", f"{group}-slot-{i}")
    else:
        producers[None] = producer(mode, f"{group}-tx-{index}" if mode == "tx" else None)
    await asyncio.gather(*(p.start() for p in producers.values()))
    consumer.subscribe(topics)
    clock = Clock()
    first_batch_at: float | None = None
    timed_out = False

    positions: dict[Any, OffsetAndMetadata] = {}  # "slots": committed outside the transactions
    committed_at = time.monotonic()

    async def transact(prod: AIOKafkaProducer, msgs: dict[Any, list[Any]]) -> None:
        started = time.monotonic()
        async with prod.transaction():
            sends = [await prod.send(out_topic, m.value, key=m.key, headers=list(m.headers or ()))
                     for part in msgs.values() for m in part]
            offsets = {tp: OffsetAndMetadata(part[-1].offset + 1, "") for tp, part in msgs.items()}
            if mode == "slots":
                positions.update(offsets)
            else:
                await prod.send_offsets_to_transaction(offsets, group)  # while the records fly
            await asyncio.gather(*sends)
        size = sum(len(part) for part in msgs.values())
        clock.batch(size, started)
        if done is not None:
            with done.get_lock():
                done.value += size

    def total() -> int:
        return int(done.value) if done is not None else clock.records

    def more() -> bool:
        return not stop.is_set() if stop is not None else total() < expect

    try:
        while more():
            if owned is not None:
                owned[index] = len(consumer.assignment())
            if time.monotonic() - began > deadline_s:
                timed_out = True
                break
            batch = await consumer.getmany(timeout_ms=200, max_records=max_batch)
            if not batch:
                continue
            started = time.monotonic()
            first_batch_at = first_batch_at or started
            if mode == "tx":
                await transact(producers[None], batch)
            elif mode == "slots":
                await asyncio.gather(*(transact(producers[tp], {tp: msgs}) for tp, msgs in batch.items()))
                if positions and time.monotonic() - committed_at >= COMMIT_EVERY_S:
                    committed_at = time.monotonic()
                    due, positions = dict(positions), {}
                    await consumer.commit(due)
            else:
                prod = producers[None]
                sends = [await prod.send(out_topic, m.value, key=m.key, headers=list(m.headers or ()))
                         for msgs in batch.values() for m in msgs]
                await asyncio.gather(*sends)
                await consumer.commit({tp: OffsetAndMetadata(msgs[-1].offset + 1, "") for tp, msgs in batch.items()})
                clock.batch(sum(len(msgs) for msgs in batch.values()), started)
    finally:
        await consumer.stop()
        await asyncio.gather(*(p.stop() for p in producers.values()))
    out = clock.result()
    out.update(startup_s=(first_batch_at or began) - began, timed_out=timed_out, rss_mib=rss_mib())
    return out


def puente_child(pipe: Any, kafka: KafkaConnection, update: dict[str, Any], expect: int | None, stop: Any,
                 deadline_s: float, collect: bool, done: Any = None, index: int = 0, owned: Any = None) -> None:
    pipe.send(asyncio.run(_puente(kafka, update, expect, stop, deadline_s, collect, done, index, owned)))


async def _puente(kafka: KafkaConnection, update: dict[str, Any], expect: int | None, stop: Any, deadline_s: float,
                  collect: bool, done: Any = None, index: int = 0, owned: Any = None) -> dict[str, Any]:
    """One worker process; with ``done`` (a shared counter), the inputs of all workers count towards ``expect``."""
    from broker.metrics import Metrics
    from broker.service import build_worker

    quiet_logs()
    began = time.monotonic()
    cfg = settings_for(update)
    worker, topics, problems = build_worker(cfg, kafka, client_suffix=f"-bench{index}", audit_kept_forever=False)
    clock = Clock()

    committed: list[tuple[int, float]] = []  # per input: ingress timestamp, and ms from it to its commit
    txn_ms: list[float] = []  # per slot transaction, from its start to its commit

    class TimedMetrics(Metrics):
        """The worker's own metrics, also timing each slot transaction for the bench.

        The worker reports a committed batch as ``count_batch`` then ``transaction``, with no
        await between them, so the size noted by the one is that of the batch the other times.
        """

        size = 0

        def count_batch(self, outcomes: Sequence[Any], ingress_ts_ms: Sequence[int], topic: str = "") -> None:
            super().count_batch(outcomes, ingress_ts_ms, topic)
            self.size = len(outcomes)
            if collect:
                now_ms = time.time() * 1000
                committed.extend((ts, now_ms - ts) for ts in ingress_ts_ms)

        def transaction(self, seconds: float) -> None:
            super().transaction(seconds)
            clock.batch(self.size, time.monotonic() - seconds)
            txn_ms.append(seconds * 1000)
            if done is not None:
                with done.get_lock():
                    done.value += self.size

    worker.metrics = TimedMetrics()
    process = worker.pipeline.process

    def timed_process(*args: Any) -> Any:
        if clock.cpu0 is None:
            clock.work_started()
        return process(*args)

    worker.pipeline.process = timed_process  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(worker.run(topics))
    timed_out = False
    while not task.done():
        await asyncio.sleep(0.05)
        if owned is not None:
            owned[index] = len(worker._owned)  # the driver waits for every worker to hold slots
        total = done.value if done is not None else worker.metrics.inputs
        if (expect is not None and total >= expect) or stop.is_set():
            worker.stop()
        elif time.monotonic() - began > deadline_s:
            timed_out = True
            worker.stop()
    await task
    out = clock.result()
    metrics = worker.metrics
    decisions, dead_letters = tallies(metrics)
    out.update(
        startup_s=(clock.first_start or began) - began, timed_out=timed_out, rss_mib=rss_mib(),
        inputs=metrics.inputs, problems=problems,
        decisions=[[p, d, n] for (p, d), n in sorted(decisions.items())],
        dead_letters=dict(dead_letters), committed=committed,
        txn_ms_p50=pct(sorted(txn_ms), 50), txn_ms_p99=pct(sorted(txn_ms), 99), transactions=len(txn_ms),
    )
    return out


def tallies(metrics: Any) -> tuple[Counter[tuple[str, str]], Counter[str]]:
    """Decisions by (partner, outcome) and dead letters by reason, read from the worker's Prometheus
    counters once it has stopped: nothing is counted twice on the measured path."""
    decisions: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "puente_decisions_total":
                decisions[(sample.labels["partner"], sample.labels["decision"])] += int(sample.value)
            elif sample.name == "puente_dead_letters_total":
                dead[sample.labels["reason"]] += int(sample.value)
    return decisions, dead


async def run_child(target: Callable[..., None], *args: Any) -> dict[str, Any]:
    """Run ``target(pipe, *args)`` in a spawned process and return what it sends back."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(child, *args))
    proc.start()
    child.close()
    try:
        while not parent.poll():
            if not proc.is_alive():
                await asyncio.sleep(0.1)
                if not parent.poll():
                    raise RuntimeError(f"bench: the {target.__name__} process died (exit code {proc.exitcode})")
                break
            await asyncio.sleep(0.05)
        try:
            result: dict[str, Any] = parent.recv()
        except EOFError:
            await asyncio.to_thread(proc.join, 5)
            raise RuntimeError(f"bench: the {target.__name__} process died (exit code {proc.exitcode})") from None
    finally:
        await asyncio.to_thread(proc.join, 30)
        if proc.is_alive():
            proc.kill()
    return result


# ---- the latency phase -----------------------------------------------------------------------
async def latency_phase(cfg: PuenteSettings, kafka: KafkaConnection, update: dict[str, Any],
                        alerts: list[dict[str, Any]], rate: float, warm_s: float, measure_s: float,
                        probe: int) -> dict[str, Any]:
    """Publish ``alerts`` paced at ``rate`` while a Puente worker runs, then the same alerts at the same
    rate through a raw transactional pass-through on topics of their own; per alert, the time from its
    publication until its output is visible to read_committed (Puente: its audit record and every feed record
    it delivers, the last of them; raw: its copy). A slot's feed records go out in the transaction after their
    decisions' (``broker.lifecycle.outbox_records``), so the audit record alone would show less than a partner
    waits."""
    from adapters.publisher import IngressPublisher
    from broker.keystore import Keystore
    from broker.topology import TopicNames, TopicSpec, slots_for
    from policies import load_policy_set

    names = TopicNames(cfg.topic_prefix)
    macs = {agency: Keystore(cfg.keys / "agencies" / agency).load_agency_mac(agency)
            for agency in sorted({a["agency"] for a in alerts})}
    slots = slots_for(cfg.agencies, cfg.ingress_partitions, cfg.topic_prefix).count

    def publishers(on: TopicNames) -> dict[str, IngressPublisher]:
        return {agency: IngressPublisher(kafka, agency, mac.key_id, mac, on) for agency, mac in macs.items()}

    pubs = publishers(names)
    frames = [(a["agency"], *pubs[a["agency"]].frame(a)) for a in alerts]
    sizes = [len(value) for _, _, value, _ in frames]

    refs: dict[bytes, list[bytes]] = {}  # alert id -> the references its feed records are keyed by

    def puente_ids(value: bytes | None, key: bytes | None) -> list[bytes]:
        if key is not None:  # a feed record, keyed by the partner's reference (an audit block has no key)
            return [key]
        doc = orjson.loads(value or b"{}")
        for entry in doc.get("entries", []) if isinstance(doc, dict) else []:  # an audit block records many alerts
            if isinstance(entry, dict) and "alert_id" in entry:
                refs[str(entry["alert_id"]).encode()] = [str(r).encode() for r in (entry.get("refs") or {}).values()]
        return ALERT_ID.findall(value or b"")

    def delivered_at(seen_at: dict[bytes, float], key: bytes) -> float | None:
        # When the last of the alert's outputs was visible: its audit record and each feed record.
        outputs = [key, *refs.get(key, ())] if key in refs else [key]
        times = [seen_at.get(k) for k in outputs]
        return None if None in times else max(t for t in times if t is not None)

    feeds = sorted({names.feed(p.feed_topic) for p in load_policy_set(cfg.policy_dir).partners.values()})
    outputs = [(names.decisions, s) for s in range(slots)] + [(f, p) for f in feeds for p in range(cfg.feed_partitions)]
    stop = mp.get_context("spawn").Event()
    puente = await paced_run(
        kafka, pubs, frames, outputs, puente_ids,
        run_child(puente_child, kafka, update, None, stop, 600.0, True), stop, rate, warm_s, measure_s, probe,
        delivered_at)
    worker = puente.pop("child")
    # The worker's own view of the same window: ingress timestamp to the end of the alert's transaction.
    own = sorted(ms for ts, ms in worker.pop("committed")
                 if puente["window_ms"][0] - 1 <= ts <= puente["window_ms"][1] + 1)

    async def raw_run(mode: str, suffix: str) -> dict[str, Any]:
        # Ingress and output topics of its own per mode (the prefix ends in "-r...": the run's clean-up
        # deletes them), the same frames at the same rate, through one raw pass-through process.
        raw_cfg = settings_for({**update, "topic_prefix": f"{cfg.topic_prefix}-{suffix}"})
        raw_names = TopicNames(raw_cfg.topic_prefix)
        out_topic = f"{raw_cfg.topic_prefix}.bench.raw-latency"
        await ensure_topics(raw_cfg, kafka, [
            *(TopicSpec(raw_names.ingress(a), cfg.ingress_partitions, cfg.replication,
                        {"min.insync.replicas": str(cfg.effective_min_insync)}) for a in cfg.agencies),
            TopicSpec(out_topic, cfg.feed_partitions, cfg.replication,
                      {"min.insync.replicas": str(cfg.effective_min_insync)})])

        def copied_key(value: bytes | None, key: bytes | None) -> list[bytes]:
            return [key] if key else []

        raw_stop = mp.get_context("spawn").Event()
        raw = await paced_run(
            kafka, publishers(raw_names), frames, [(out_topic, p) for p in range(cfg.feed_partitions)], copied_key,
            run_child(raw_child, kafka, [raw_names.ingress(a) for a in cfg.agencies], out_topic,
                      f"{raw_cfg.topic_prefix}-raw-latency", mode, 0, cfg.max_batch, 600.0, None, 0, None, raw_stop),
            raw_stop, rate, warm_s, measure_s, probe)
        child = raw.pop("child")
        return {**raw, "cpu_us_per_record": child["cpu_us_per_record"]}

    # The baseline: one transaction per poll. Then, for reference, Puente's own transaction shape (a
    # transactional producer and a transaction per ingress partition) with nothing else of Puente's:
    # how much of Puente's latency that shape alone accounts for.
    raw = await raw_run("tx", "rlat")
    raw_slots = await raw_run("slots", "rlats")
    # And the baseline's shape with librdkafka's clients and KIP-447 (``_raw_rdkafka``): what the client limits.
    raw_rdkafka = await raw_run("rdkafka", "rlatr")
    return {
        **puente, "commit_p50_ms": pct(own, 50), "commit_p99_ms": pct(own, 99),
        "value_bytes_avg": sum(sizes) / len(sizes), "worker": worker, "raw": raw, "raw_slots": raw_slots,
        "raw_rdkafka": raw_rdkafka,
    }


async def paced_run(kafka: KafkaConnection, pubs: dict[str, Any], frames: list[tuple[str, bytes, bytes, Any]],
                    outputs: list[tuple[str, int]], ids_in: Callable[[bytes | None, bytes | None], list[bytes]],
                    child: Any, stop: Any, rate: float, warm_s: float, measure_s: float,
                    probe: int, done_at: Callable[[dict[bytes, float], bytes], float | None] | None = None,
                    ) -> dict[str, Any]:
    """Run ``child`` (a coroutine: the measured process) while ``frames`` are published paced at ``rate``;
    per alert, publish to its id (``ids_in(value, key)``) first visible read_committed in ``outputs`` (or to what
    ``done_at(seen, id)`` makes of the times each id ``ids_in`` gave was first seen; None: not yet).

    A probe of ``probe`` alerts goes first, at once: when all of it is visible the process has joined
    and owns its partitions. Then a warm-up and the measured window, continuously at the same rate.
    """
    from broker.kafka import TopicPartition, consumer
    from broker.kafka import start as start_client

    observer = await start_client(consumer(kafka, "bench-observer", enable_auto_commit=False,
                                           isolation_level="read_committed", fetch_max_wait_ms=50),
                                  kafka, f"reading {outputs[0][0]}")
    tps = [TopicPartition(topic, p) for topic, p in outputs]
    observer.assign(tps)
    await observer.seek_to_end(*tps)
    for tp in tps:
        await observer.position(tp)  # resolve the end now, before anything is published
    seen_at: dict[bytes, float] = {}
    sent_at: dict[bytes, float] = {}
    done = asyncio.Event()

    def seen(key: bytes) -> float | None:
        return seen_at.get(key) if done_at is None else done_at(seen_at, key)

    async def observe() -> None:
        while not done.is_set():
            batch = await observer.getmany(timeout_ms=100)
            now = time.time()
            for msgs in batch.values():
                for m in msgs:
                    for found in ids_in(m.value, m.key):
                        seen_at.setdefault(found, now)

    async def send(i: int) -> None:
        agency, key, value, headers = frames[i]
        sent_at[key] = time.time()  # aiokafka stamps the record's CreateTime in this same call
        await pubs[agency].send_raw(key, value, headers)

    async def wait_seen(keys: list[bytes], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(seen(k) is not None for k in keys):
                return True
            await asyncio.sleep(0.05)
        return False

    for pub in pubs.values():
        await pub.__aenter__()
    raised: BaseException | None = None
    watcher = asyncio.create_task(observe())
    task = asyncio.create_task(child)
    warm_n, measure_n = int(rate * warm_s), int(rate * measure_s)
    try:
        t0 = time.monotonic()
        for i in range(probe):
            await send(i)
        if not await wait_seen([frames[i][1] for i in range(probe)], 90.0):
            raise RuntimeError("bench: the latency run's process did not pass the probe through within 90 s")
        ready_s = time.monotonic() - t0
        start = time.monotonic()
        i = probe
        last = probe + warm_n + measure_n
        measure_started = measure_ended = window_from_ms = window_to_ms = 0.0
        while i < last:
            due = probe + min(last - probe, int((time.monotonic() - start) * rate) + 1)
            while i < due:
                if i == probe + warm_n:
                    measure_started = time.monotonic()
                    window_from_ms = time.time() * 1000
                await send(i)
                i += 1
            await asyncio.sleep(0.002)
        measure_ended = time.monotonic()
        window_to_ms = time.time() * 1000
        measured = [frames[j][1] for j in range(probe + warm_n, last)]
        drained = await wait_seen(measured, 30.0)
    except BaseException as exc:
        raised = exc
        raise
    finally:
        stop.set()
        try:
            result = await task
            done.set()
            await watcher
            await observer.stop()
        finally:
            # Leaving normally, a publisher raises a send that failed (else it lets it go): each is stopped all the
            # same, whatever failed before, and the first failure is raised once all are, none over another.
            left = await asyncio.gather(*(pub.__aexit__(None if raised is None else type(raised))
                                          for pub in pubs.values()), return_exceptions=True)
            failed = [outcome for outcome in left if isinstance(outcome, BaseException)]
            if failed and raised is None and sys.exc_info()[0] is None:
                raise failed[0]
    at = {k: seen(k) for k in measured}
    lat = sorted((t - sent_at[k]) * 1000 for k, t in at.items() if t is not None)
    return {
        "rate_target": rate, "rate_achieved": measure_n / (measure_ended - measure_started),
        "measured": measure_n, "observed": len(lat), "drained": drained, "warm_up": warm_n, "probe": probe,
        "ready_s": ready_s, "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
        "max_ms": lat[-1] if lat else None, "window_ms": (window_from_ms, window_to_ms), "child": result,
    }


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, min(len(values), int(-(-p * len(values) // 100))))
    return values[rank - 1]


# ---- the driver ----------------------------------------------------------------------------
async def ensure_topics(cfg: PuenteSettings, kafka: KafkaConnection, specs: list[Any] | None = None) -> None:
    """Make the run's topics with Puente's own ``apply_topics`` (default: every topic the settings and
    policy plan); a topic Kafka did not make stops the bench, naming it, before anything is measured."""
    from broker.kafka import Admin, apply_topics, plan_topics
    from policies import load_policy_set

    if specs is None:
        specs = plan_topics(cfg, load_policy_set(cfg.policy_dir))
    failed = [f"{r.spec.name} {r.action}: {r.detail}" for r in await apply_topics(Admin(kafka), specs) if not r.ok]
    if failed:
        raise SystemExit(f"bench: {len(failed)} topic(s) not made: " + "; ".join(failed[:3]))


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from broker.kafka import connection
    from broker.keystore import provision_all
    from broker.topology import TopicNames, TopicSpec, slots_for
    from policies import load_policy_set
    from puente.dev.synthetic import generate
    from puente.errors import ConfigError

    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{os.getpid() % 1000:03d}"
    prefix = f"bench-{run_id}"
    base = PuenteSettings()
    work = Path(tempfile.mkdtemp(prefix="puente-bench-"))
    source = base.policy_dir or ROOT / "policies" / "data"
    policy_notes = prepare_policy(source, work / "policy", PARTNERS)
    update = {"topic_prefix": prefix, "keys": work / "keys", "policy_dir": work / "policy"}
    cfg = settings_for(update)
    try:
        # One connection for every client of the run, Puente's and the raw baseline's alike.
        kafka = connection(cfg)
    except ConfigError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(f"bench: {exc} (for the local Kafka: eval \"$(puente kafka env)\")") from None
    slots = slots_for(cfg.agencies, cfg.ingress_partitions, cfg.topic_prefix).count
    ps = load_policy_set(cfg.policy_dir)
    load1 = os.getloadavg()[0]
    print(f"Puente broker bench {run_id}: Kafka {kafka.bootstrap}, topics '{prefix}.*', "
          f"{'quick' if args.quick else 'full'} run, load average {load1:.2f} on {os.cpu_count()} cores")
    print(f"  policy: partners {', '.join(sorted(ps.partners))}, agreements {', '.join(sorted(ps.agreements))}")
    for note in policy_notes:
        print(f"    ({note})")
    try:
        provision_all(cfg)
        await ensure_topics(cfg, kafka)
        raw_topics = {mode: f"{prefix}.bench.raw-{mode}" for mode in RAW_MODES}
        await ensure_topics(cfg, kafka, [TopicSpec(t, cfg.feed_partitions, cfg.replication,
                                                   {"min.insync.replicas": str(cfg.effective_min_insync)})
                                         for t in raw_topics.values()])
        results: dict[str, Any] = {}
        rounds: list[dict[str, Any]] = []
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in RAW_MODES}
        ratios: list[float] = []
        runs_n: list[dict[str, Any]] = []
        ratios_n: list[float] = []
        publish_s, n = 0.0, 0
        for rnd in range(args.repeat):
            # Each round needs its own topics: a second run over the same audit would see replays. Raw
            # pass-through then reads the same round's input right after Puente, under the same conditions.
            r_update = update if rnd == 0 else {**update, "topic_prefix": f"{prefix}-r{rnd}"}
            r_cfg = settings_for(r_update)
            if rnd:
                await ensure_topics(r_cfg, kafka)
            t0 = time.monotonic()
            held, sent = await publish_held(r_cfg, kafka, args.alerts, args.seed, args.lifecycle)
            n = sum(sent.values())
            publish_s = time.monotonic() - t0
            if rnd == 0:
                print(f"  input: {n} alerts published in {publish_s:.1f}s ({n / publish_s:,.0f}/s) over "
                      f"{len(sent)} agencies x {cfg.ingress_partitions} partitions, in one transaction held open "
                      f"until the Puente workers have joined; max batch {cfg.max_batch}"
                      + (f"; {args.lifecycle:.0%} of the records are later versions (4 updates to 1 recall)"
                         if args.lifecycle else ""))
            print(f"  round {rnd + 1}/{args.repeat}: Puente ({args.workers} worker process(es) in one group), "
                  f"then raw {', '.join(RAW_MODES)} on the same input ...", flush=True)
            ctx = mp.get_context("spawn")
            stop, done, owned = ctx.Event(), ctx.Value("q", 0), ctx.Array("i", args.workers)
            children = [asyncio.create_task(run_child(puente_child, kafka, r_update, n, stop, args.deadline, False,
                                                      done, i, owned)) for i in range(args.workers)]
            await release_when_joined(held, owned, slots, children)
            rounds.append(merge_workers(list(await asyncio.gather(*children))))
            r_ingress = [TopicNames(r_cfg.topic_prefix).ingress(a) for a in cfg.agencies]
            for mode in RAW_MODES:
                runs[mode].append(await run_child(raw_child, kafka, r_ingress, raw_topics[mode],
                                                  f"{prefix}-raw-{mode}-{rnd}", mode, n, cfg.max_batch,
                                                  args.deadline))
            if args.workers > 1:
                # The same number of raw processes in one group, on an input of its own released once
                # they have all joined: the like-for-like denominator for several Puente workers.
                x_cfg = settings_for({**update, "topic_prefix": f"{prefix}-r{rnd}x"})
                await ensure_topics(x_cfg, kafka)
                held_x, _ = await publish_held(x_cfg, kafka, args.alerts, args.seed, args.lifecycle)
                done_x, owned_x = ctx.Value("q", 0), ctx.Array("i", args.workers)
                x_ingress = [TopicNames(x_cfg.topic_prefix).ingress(a) for a in cfg.agencies]
                kids = [asyncio.create_task(run_child(raw_child, kafka, x_ingress, raw_topics["tx"],
                                                      f"{prefix}-rawN-{rnd}", "tx", n, cfg.max_batch, args.deadline,
                                                      done_x, i, owned_x)) for i in range(args.workers)]
                await release_when_joined(held_x, owned_x, slots, kids)
                runs_n.append(merge_raw(list(await asyncio.gather(*kids))))
                if runs_n[-1]["per_s"]:
                    ratios_n.append(rounds[-1]["per_s"] / runs_n[-1]["per_s"])
            if runs["tx"][-1]["per_s"]:
                ratios.append(rounds[-1]["per_s"] / runs["tx"][-1]["per_s"])
            print(f"    Puente {rounds[-1]['per_s']:,.0f}/s, raw transactional {runs['tx'][-1]['per_s']:,.0f}/s"
                  + (f", ratio {ratios[-1]:.3f}" if runs["tx"][-1]["per_s"] else "")
                  + (f"; raw transactional x{args.workers} {runs_n[-1]['per_s']:,.0f}/s, ratio {ratios_n[-1]:.3f}"
                     if runs_n and ratios_n else ""), flush=True)
        ordered = sorted(rounds, key=lambda r: r["per_s"])
        results["puente"] = {**ordered[(len(ordered) - 1) // 2], "rounds": [round(r["per_s"], 1) for r in rounds],
                             "round_ratios": [round(r, 4) for r in ratios]}
        if runs_n:
            ordered = sorted(runs_n, key=lambda r: r["per_s"])
            results["raw_tx_n"] = {**ordered[(len(ordered) - 1) // 2], "rounds": [round(r["per_s"], 1) for r in runs_n],
                                   "round_ratios": [round(r, 4) for r in ratios_n]}
        for mode, done_runs in runs.items():
            ordered = sorted(done_runs, key=lambda r: r["per_s"])
            results[f"raw_{mode}"] = {**ordered[(len(ordered) - 1) // 2],
                                      "rounds": [round(r["per_s"], 1) for r in done_runs]}

        extra = args.probe + int(args.rate * (args.warm + args.seconds))
        later = list(islice(generate(n + extra, seed=args.seed + 1, now=datetime.now(UTC)), n, None))
        print(f"  latency: {args.rate:,.0f} alerts/s for {args.warm:g}s warm-up + {args.seconds:g}s measured ...",
              flush=True)
        results["latency"] = await latency_phase(cfg, kafka, update, later, args.rate, args.warm, args.seconds,
                                                 args.probe)
    finally:
        if not args.keep_topics:
            await delete_topics(kafka, prefix)
        shutil.rmtree(work, ignore_errors=True)
    return summarise(run_id, args, n, publish_s, load1, policy_notes, sorted(ps.partners), results)


def with_lifecycle(alerts: Iterable[dict[str, Any]], share: float) -> Iterator[dict[str, Any]]:
    """The same number of records, ``share`` of them later versions of alerts earlier in the input:
    four updates for each recall, half right after the first version (the same batch), half some
    hundred records later (another batch, or another transaction)."""
    every = round(1 / share) if share > 0 else 0
    deferred: deque[tuple[int, dict[str, Any]]] = deque()
    for i, alert in enumerate(alerts):
        if deferred and deferred[0][0] <= i:
            yield deferred.popleft()[1]
            continue
        yield alert
        if every and i % every == 0:
            later = {**alert, "version": 2, "lifecycle": {
                "action": "RECALL" if (i // every) % 5 == 4 else "UPDATE",
                "reason": "SUPERSEDED" if (i // every) % 5 == 4 else None, "partners": []}}
            deferred.append((i + (1 if (i // every) % 2 else 200), later))


async def publish_held(cfg: PuenteSettings, kafka: KafkaConnection, count: int,
                       seed: int, lifecycle: float = 0.0) -> tuple[Any, Counter[str]]:
    """Publish the input as the adapters frame it, in one transaction left open; return its producer.

    read_committed consumers see none of it until the caller commits, so the workers of a
    multi-worker run can all join the group first, and no rebalance falls inside the measurement.
    (``IngressPublisher`` cannot hold a transaction, so this producer is made here, from the same
    connection, and frames each alert with the publisher's own ``frame_alert``.)
    """
    from adapters.publisher import frame_alert
    from broker.crypto import SecretBytes
    from broker.kafka import producer as make_producer
    from broker.kafka import start
    from broker.keystore import Keystore
    from broker.topology import TopicNames
    from puente.dev.synthetic import generate

    names = TopicNames(cfg.topic_prefix)
    macs: dict[str, SecretBytes] = {}
    producer = make_producer(kafka, "bench-input", transactional_id=f"{cfg.topic_prefix}-input",
                             transaction_timeout_ms=600_000, linger_ms=20, max_batch_size=512 * 1024)
    await start(producer, kafka, "publishing the bench input")
    await producer.begin_transaction()
    sent: Counter[str] = Counter()
    futures = []
    for alert in with_lifecycle(generate(count, seed=seed, now=datetime.now(UTC)), lifecycle):
        agency = alert["agency"]
        if agency not in macs:
            macs[agency] = Keystore(cfg.keys / "agencies" / agency).load_agency_mac(agency)
        mac = macs[agency]
        key, value, headers = frame_alert(agency, mac.key_id, mac, alert)
        futures.append(await producer.send(names.ingress(agency), value, key=key, headers=headers))
        sent[agency] += 1
    await asyncio.gather(*futures)
    return producer, sent


async def release_when_joined(held: Any, owned: Any, slots: int, children: list[asyncio.Task[Any]]) -> None:
    """Commit the held input once every worker owns slots and together they own all, steadily for 1 s."""
    steady_since: float | None = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any(c.done() for c in children):
        joined = all(x > 0 for x in owned[:]) and sum(owned[:]) == slots
        if not joined:
            steady_since = None
        elif steady_since is None:
            steady_since = time.monotonic()
        elif time.monotonic() - steady_since >= 1.0:
            break
        await asyncio.sleep(0.05)
    else:
        print("  WARNING the workers did not settle in the group; releasing the input anyway")
    await held.commit_transaction()
    await held.stop()


def merge_raw(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several raw pass-through processes as one: records summed, first start to last commit."""
    starts = [p["first_start"] for p in parts if p["first_start"] is not None]
    seconds = max(p["last_end"] for p in parts) - min(starts) if starts else 0.0
    records = sum(p["records"] for p in parts)
    cpu = [p["cpu_us_per_record"] * p["records"] for p in parts if p["cpu_us_per_record"] is not None]
    return {**parts[0], "workers": len(parts), "records": records, "seconds": seconds,
            "batches": sum(p["batches"] for p in parts), "per_s": records / seconds if seconds > 0 else 0.0,
            "cpu_us_per_record": sum(cpu) / records if records and cpu else None,
            "rss_mib": max(p["rss_mib"] for p in parts), "timed_out": any(p["timed_out"] for p in parts),
            "startup_s": max(p["startup_s"] for p in parts)}


def merge_workers(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several worker processes as one: records summed, time from the first start to the last commit."""
    if len(parts) == 1:
        return {**parts[0], "workers": 1}
    starts = [p["first_start"] for p in parts if p["first_start"] is not None]
    seconds = max(p["last_end"] for p in parts) - min(starts) if starts else 0.0
    records = sum(p["records"] for p in parts)
    decisions: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    for p in parts:
        decisions.update({(a, b): c for a, b, c in p["decisions"]})
        dead.update(p["dead_letters"])
    cpu = [p["cpu_us_per_record"] * p["records"] for p in parts if p["cpu_us_per_record"] is not None]
    return {
        **parts[0], "workers": len(parts), "records": records, "seconds": seconds,
        "batches": sum(p["batches"] for p in parts), "per_s": records / seconds if seconds > 0 else 0.0,
        "cpu_us_per_record": sum(cpu) / records if records and cpu else None,
        "rss_mib": max(p["rss_mib"] for p in parts), "inputs": sum(p["inputs"] for p in parts),
        "timed_out": any(p["timed_out"] for p in parts),
        "startup_s": max(p["startup_s"] for p in parts),
        "decisions": [[a, b, c] for (a, b), c in sorted(decisions.items())], "dead_letters": dict(dead),
        "per_worker_records": [p["records"] for p in parts],
    }


async def delete_topics(kafka: KafkaConnection, prefix: str) -> None:
    """Delete every topic of this run (``<prefix>.*`` and the later rounds' ``<prefix>-r<n>.*``).

    Best effort: the figures are already taken, so a failure is reported, never raised.
    """
    from broker.kafka import Admin

    admin = Admin(kafka)
    timeout = kafka.timeout_s
    try:
        metadata = await admin.call("listing topics", lambda c: c.list_topics(timeout=timeout))
        mine = sorted(t for t in metadata.topics if t.startswith((prefix + ".", prefix + "-r")))
        if not mine:
            return
        futures = await admin.call("deleting the bench topics", lambda c: c.delete_topics(
            mine, operation_timeout=timeout, request_timeout=timeout))
        failed = {t: e for t, e in (await admin.results("deleting the bench topics", futures)).items()
                  if isinstance(e, Exception)}
        if failed:
            name, error = next(iter(failed.items()))
            print(f"  (could not delete {len(failed)} of the {len(mine)} bench topics, e.g. {name}: {error})",
                  file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort; the figures are already taken
        print(f"  (could not delete the bench topics: {exc})", file=sys.stderr)


def summarise(run_id: str, args: argparse.Namespace, n: int, publish_s: float, load1: float,
              notes: list[str], partners: list[str], r: dict[str, Any]) -> dict[str, Any]:
    tx, plain, slots, pu, lat = r["raw_tx"], r["raw_plain"], r["raw_slots"], r["puente"], r["latency"]

    def ratio(base: dict[str, Any]) -> float | None:
        return pu["per_s"] / base["per_s"] if base["per_s"] else None

    delivered: Counter[str] = Counter()
    withheld: Counter[str] = Counter()
    for partner, decision, count in pu["decisions"]:
        (withheld if decision == "WITHHOLD" else delivered)[partner] += count
    rss = max(pu["rss_mib"], lat["worker"]["rss_mib"])

    def f0(x: float | None) -> str:
        return "-" if x is None else f"{x:,.0f}"

    def f1(x: float | None) -> str:
        return "-" if x is None else f"{x:,.1f}"

    def row(name: str, value: str, unit: str, note: str = "") -> None:
        print(f"  {name:<44} {value:>9} {unit:<9} {note}".rstrip())

    print()
    row("measure", "value", "unit", "notes")
    row("-" * 44, "-" * 9, "-" * 9, "-" * 44)
    for name, res in (("raw pass-through, transactional (EOS)", tx), ("raw pass-through, plain (at-least-once)", plain),
                      ("raw pass-through, txn per partition (slots)", slots)):
        row(name, f0(res["per_s"]), "alerts/s", f"median of {', '.join(f0(x) for x in res['rounds'])}")
    row(f"Puente end to end (3 partners, EOS, {pu['workers']} worker{'s' if pu['workers'] > 1 else ''})",
        f0(pu["per_s"]), "alerts/s",
        f"median of {', '.join(f0(x) for x in pu['rounds'])}" + (" - TIMED OUT" if pu["timed_out"] else ""))
    round_ratios = sorted(pu.get("round_ratios") or [])
    median_ratio = round_ratios[(len(round_ratios) - 1) // 2] if round_ratios else None
    row("ratio Puente / raw transactional", "-" if median_ratio is None else f"{median_ratio:.3f}", "",
        "the headline: median of the rounds' ratios (" + ", ".join(f"{x:.3f}" for x in pu.get("round_ratios") or [])
        + "); issue target >= 0.25, long-run 0.5")
    row("ratio of the medians", "-" if ratio(tx) is None else f"{ratio(tx):.3f}", "",
        "Puente's median throughput / raw transactional's median")
    txn = r.get("raw_tx_n")
    median_ratio_n = None
    if txn is not None:
        rr = sorted(txn["round_ratios"])
        median_ratio_n = rr[(len(rr) - 1) // 2] if rr else None
        row(f"raw pass-through, transactional, {txn['workers']} processes", f0(txn["per_s"]), "alerts/s",
            f"one group; median of {', '.join(f0(x) for x in txn['rounds'])}")
        row(f"ratio Puente / raw, both {txn['workers']} processes", "-" if median_ratio_n is None
            else f"{median_ratio_n:.3f}", "", "like for like; median of the rounds' ratios ("
            + ", ".join(f"{x:.3f}" for x in txn["round_ratios"]) + ")")
    row("ratio Puente / raw plain", "-" if ratio(plain) is None else f"{ratio(plain):.3f}", "", "for reference")
    row("ratio Puente / raw txn per partition", "-" if ratio(slots) is None else f"{ratio(slots):.3f}", "",
        "for reference: the same transaction pattern as Puente")
    raw_lat = lat["raw"]

    def times(a: float | None, b: float | None) -> str:
        return "-" if a is None or not b else f"{a / b:.2f}"

    row(f"latency p50 at {lat['rate_target']:,.0f} alerts/s", f1(lat["p50_ms"]), "ms",
        f"publish -> audit record and feed records visible to read_committed; "
        f"{lat['observed']}/{lat['measured']} alerts seen")
    row(f"latency p99 at {lat['rate_target']:,.0f} alerts/s", f1(lat["p99_ms"]), "ms",
        f"p90 {f1(lat['p90_ms'])} ms, max {f1(lat['max_ms'])} ms; rate achieved {lat['rate_achieved']:,.0f}/s")
    row("raw transactional latency p50", f1(raw_lat["p50_ms"]), "ms",
        f"same rate and frames, publish -> copy visible to read_committed; {raw_lat['observed']}/"
        f"{raw_lat['measured']} seen")
    row("raw transactional latency p99", f1(raw_lat["p99_ms"]), "ms",
        f"p90 {f1(raw_lat['p90_ms'])} ms, max {f1(raw_lat['max_ms'])} ms; "
        f"rate achieved {raw_lat['rate_achieved']:,.0f}/s")
    row("latency ratio Puente / raw, p50 and p99", f"{times(lat['p50_ms'], raw_lat['p50_ms'])}",
        f"{times(lat['p99_ms'], raw_lat['p99_ms'])}", "p50 ratio, then p99 ratio")
    def reference(name: str, res: dict[str, Any], what: str) -> None:
        row(f"{name} p50", f1(res["p50_ms"]), "ms", f"for reference: {what}; {res['observed']}/{res['measured']} seen")
        row(f"{name} p99", f1(res["p99_ms"]), "ms", f"p90 {f1(res['p90_ms'])} ms, max {f1(res['max_ms'])} ms")

    raw_slots_lat, rd_lat = lat["raw_slots"], lat["raw_rdkafka"]
    reference("raw txn per partition latency", raw_slots_lat,
              "Puente's transaction shape (a transaction per ingress partition), nothing else")
    reference("raw transactional, librdkafka,", rd_lat,
              "the baseline's shape with confluent-kafka's clients and KIP-447 group metadata")
    row("peak RSS, Puente worker process (largest)", f1(rss), "MiB",
        f"throughput run {pu['rss_mib']:.0f} MiB, latency run {lat['worker']['rss_mib']:.0f} MiB")
    row("peak RSS, raw transactional process", f1(tx["rss_mib"]), "MiB", "for reference")
    print()
    print("  details")
    for name, res in (("raw transactional", tx), ("raw plain", plain), ("raw txn per partition", slots),
                      ("Puente", pu)):
        print(f"    {name:<22} {res['records']:>6} records in {res['seconds']:6.2f}s, "
              f"{res['records'] / max(res['batches'], 1):5.0f} per transaction/commit, "
              f"{f1(res['cpu_us_per_record']):>6} µs client CPU per alert, start-up {res['startup_s']:.1f}s")
    print(f"    latency run CPU per alert at {lat['rate_target']:,.0f}/s: Puente "
          f"{f1(lat['worker']['cpu_us_per_record'])} µs, raw transactional "
          f"{f1(raw_lat['cpu_us_per_record'])} µs, raw txn per partition "
          f"{f1(raw_slots_lat['cpu_us_per_record'])} µs, librdkafka {f1(rd_lat['cpu_us_per_record'])} µs "
          "(client process only)")
    print(f"    latency, worker side: ingress timestamp -> its commit p50 {f1(lat['commit_p50_ms'])} ms, "
          f"p99 {f1(lat['commit_p99_ms'])} ms; slot transactions p50 {f1(lat['worker']['txn_ms_p50'])} ms, "
          f"p99 {f1(lat['worker']['txn_ms_p99'])} ms, {lat['worker']['transactions']:,} of them for "
          f"{lat['worker']['inputs']:,} alerts; worker ready {lat['ready_s']:.1f}s after start")
    print("    Puente decisions: " + ", ".join(f"{p} {delivered[p]} delivered/{withheld[p]} withheld"
                                             for p in partners)
          + f"; dead letters {sum(pu['dead_letters'].values())}; ingress values {lat['value_bytes_avg']:.0f} B avg")
    for problem in pu["problems"]:
        print(f"  WARNING key problem: {problem}")
    if pu["inputs"] < n:
        print(f"  WARNING Puente processed {pu['inputs']} of {n} inputs before its deadline")
    if any(res["timed_out"] for res in (tx, plain, slots)):
        print("  WARNING a raw pass-through run hit its deadline")
    for side, res in (("Puente", lat), ("raw", raw_lat), ("raw txn per partition", raw_slots_lat),
                      ("raw librdkafka", rd_lat)):
        if not res["drained"]:
            print(f"  WARNING latency, {side}: {res['measured'] - res['observed']} measured alerts were not seen "
                  "within 30 s")
        if res["rate_achieved"] < 0.95 * res["rate_target"]:
            print(f"  WARNING latency, {side}: the publisher did not keep up with the target rate")

    def r2(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    def r4(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "bench": "broker", "run": run_id, "quick": args.quick, "alerts": n, "partners": partners,
        "policy_changes": notes, "load_avg_1m_at_start": round(load1, 2), "cpus": os.cpu_count(),
        "publish_per_s": round(n / publish_s, 1),
        "raw_tx_per_s": round(tx["per_s"], 1), "raw_plain_per_s": round(plain["per_s"], 1),
        "raw_slots_per_s": round(slots["per_s"], 1),
        "raw_rounds": {"tx": tx["rounds"], "plain": plain["rounds"], "slots": slots["rounds"]},
        "puente_workers": pu["workers"], "puente_per_worker_records": pu.get("per_worker_records"),
        "puente_per_s": round(pu["per_s"], 1),
        "puente_rounds": pu["rounds"], "ratio_denominator": "raw_tx",
        "ratio_to_raw_tx": r4(median_ratio), "ratio_of_medians_to_raw_tx": r4(ratio(tx)),
        "round_ratios_to_raw_tx": pu.get("round_ratios"),
        "raw_tx_n_per_s": None if txn is None else round(txn["per_s"], 1),
        "ratio_to_raw_tx_same_processes": r4(median_ratio_n),
        "ratio_to_raw_plain": r4(ratio(plain)), "ratio_to_raw_slots": r4(ratio(slots)),
        "cpu_us_per_alert": {k: r2(v["cpu_us_per_record"]) for k, v in
                             (("raw_tx", tx), ("raw_plain", plain), ("raw_slots", slots), ("puente", pu))},
        "latency_rate_target": lat["rate_target"], "latency_rate_achieved": round(lat["rate_achieved"], 1),
        "latency_p50_ms": r2(lat["p50_ms"]), "latency_p90_ms": r2(lat["p90_ms"]),
        "latency_p99_ms": r2(lat["p99_ms"]), "latency_max_ms": r2(lat["max_ms"]),
        "latency_commit_p50_ms": r2(lat["commit_p50_ms"]), "latency_commit_p99_ms": r2(lat["commit_p99_ms"]),
        "latency_observed": lat["observed"], "latency_measured": lat["measured"],
        "latency_worker_ready_s": round(lat["ready_s"], 2),
        "latency_raw_p50_ms": r2(raw_lat["p50_ms"]), "latency_raw_p90_ms": r2(raw_lat["p90_ms"]),
        "latency_raw_p99_ms": r2(raw_lat["p99_ms"]), "latency_raw_max_ms": r2(raw_lat["max_ms"]),
        "latency_raw_observed": raw_lat["observed"], "latency_raw_rate_achieved": round(raw_lat["rate_achieved"], 1),
        "latency_raw_slots_p50_ms": r2(raw_slots_lat["p50_ms"]),
        "latency_raw_slots_p99_ms": r2(raw_slots_lat["p99_ms"]),
        "latency_raw_rdkafka_p50_ms": r2(rd_lat["p50_ms"]), "latency_raw_rdkafka_p99_ms": r2(rd_lat["p99_ms"]),
        "latency_ratio_p50": r2(None if lat["p50_ms"] is None or not raw_lat["p50_ms"]
                                else lat["p50_ms"] / raw_lat["p50_ms"]),
        "latency_ratio_p99": r2(None if lat["p99_ms"] is None or not raw_lat["p99_ms"]
                                else lat["p99_ms"] / raw_lat["p99_ms"]),
        "latency_cpu_us_per_alert": {"puente": r2(lat["worker"]["cpu_us_per_record"]),
                                     "raw_tx": r2(raw_lat["cpu_us_per_record"]),
                                     "raw_slots": r2(raw_slots_lat["cpu_us_per_record"]),
                                     "raw_rdkafka": r2(rd_lat["cpu_us_per_record"])},
        "peak_rss_mib_puente": round(rss, 1), "peak_rss_mib_raw_tx": round(tx["rss_mib"], 1),
        "delivered": dict(delivered), "withheld": dict(withheld), "dead_letters": pu["dead_letters"],
        "key_problems": pu["problems"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--alerts", type=int, help="alerts pre-published for the throughput runs "
                                                   "(default 30000, quick 8000)")
    parser.add_argument("--repeat", type=int, help="rounds of Puente and of each raw pass-through; the median counts "
                                                   "(default 3, quick 1)")
    parser.add_argument("--rate", type=float, default=1000.0, help="alerts/s in the latency phase (default 1000)")
    parser.add_argument("--seconds", type=float, help="measured seconds at that rate (default 12, quick 5)")
    parser.add_argument("--warm", type=float, help="warm-up seconds at that rate before measuring "
                                                   "(default 3, quick 1)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=1,
                        help="Puente worker processes in one consumer group for the throughput run (default 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results line here instead of stdout")
    parser.add_argument("--keep-topics", action="store_true", help="leave the run's topics on Kafka")
    parser.add_argument("--lifecycle", type=float, default=0.0, metavar="SHARE",
                        help="share of the throughput input that is later versions (updates, recalls) of alerts "
                             "earlier in it (default 0; e.g. 0.1)")
    args = parser.parse_args(argv)
    args.alerts = args.alerts or (8000 if args.quick else 30000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.seconds = args.seconds if args.seconds is not None else (5.0 if args.quick else 12.0)
    args.warm = args.warm if args.warm is not None else (1.0 if args.quick else 3.0)
    args.probe = 20
    args.deadline = 45.0 if args.quick else 120.0  # per throughput child; it reports what it did by then
    started = time.monotonic()
    result = asyncio.run(bench(args))
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(f"  finished in {result['wall_s']:.0f}s")
    line = json.dumps(result, sort_keys=True)
    if args.json:
        args.json.write_text(line + "\n", encoding="utf-8")
        print(f"  results written to {args.json}")
    else:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
