"""Chaos on the 3-node cluster: a Kafka node and a broker worker killed mid-stream lose and duplicate nothing.

Agencies publish a steady stream while two `puente broker run` processes route it (once as static
members, as compose runs them, once as dynamic members); one Kafka node is killed with SIGKILL and
restarted, then one worker (started again 1 s later, under its name when static). Afterwards every
(alert, partner) is decided once in the audit, each feed holds each delivery once, each partner's
subscriber receives exactly its deliveries, and `puente audit verify` is clean. After each kill two
figures are printed, neither asserted (no timing assertions in tests): the longest processing gap
(the largest time between consecutive decisions in the audit, overall and within one slot), and the
longest an alert that reached Kafka in the window waited to be decided, which a pause in the
agencies' own publishing does not lengthen.

A second test kills two of the three nodes (the controller quorum lost) and checks that `puente kafka
up --shape cluster` says "up" only once both serve again.

These take minutes, so they run only with PUENTE_CHAOS=1: `make chaos` starts the cluster, runs them and
stops the cluster. With PUENTE_CHAOS=1 an unreachable cluster fails the tests; they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from puente_testing import (
    Env,
    Workers,
    audit_docs,
    cli,
    committed_decisions,
    delete_env_topics,
    ids,
    make_env,
    open_feed,
    read_topic,
    tail,
)

from adapters.publisher import IngressPublisher
from broker.kafka import ClientError
from broker.keystore import Keystore
from broker.partner import Subscriber, opener_for, receipt_signer
from puente.dev.localkafka import LocalKafka
from puente.dev.localkafka._ready import answers
from puente.dev.synthetic import generate
from puente.errors import KafkaError, KafkaSetupError
from schemas import alert_codec

chaos = pytest.mark.skipif(os.environ.get("PUENTE_CHAOS") != "1",
                           reason="the chaos test runs only with PUENTE_CHAOS=1 (`make chaos`)")

RATE = 60  # alerts per second, all agencies together: a steady stream, well within what two workers route
KILLED_NODE = 2
RESTART_DELAY_S = 1.0
"""How long after its kill the worker is started again: a supervisor's restart policy (compose's
`restart: unless-stopped`, systemd's `Restart=`) starts a crashed process again within about a second."""


@pytest.fixture(scope="module")
def cluster() -> LocalKafka:
    """The running 3-node local cluster (`make chaos` starts it); fails, never skips, when it is not usable."""
    kafka = LocalKafka("cluster")
    if not kafka.admin_config.exists() or not any(s.alive for s in kafka.status()):
        pytest.fail("no local 3-node cluster is running: start it with `puente kafka up --shape cluster`, or run "
                    "`make chaos`", pytrace=False)
    try:
        kafka.wait_ready(timeout=60)
    except KafkaSetupError as exc:
        pytest.fail(f"the 3-node local cluster is not usable: {exc}. Start it with `puente kafka up --shape "
                    "cluster`, or run `make chaos`", pytrace=False)
    return kafka


@pytest.fixture
async def env(cluster: LocalKafka, tmp_path: Path) -> AsyncIterator[Env]:
    """An isolated Puente on the cluster, its topics replicated three times."""
    made = await make_env(cluster.admin_connection(), tmp_path, replication=3)
    yield made
    await delete_env_topics(made)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch without a decision that overlaps [start, end): from the last decision before
    ``start`` through those inside to the first one after (or to ``end`` when none followed)."""
    ordered = sorted(times)
    before = [t for t in ordered if t < start][-1:] or [start]
    inside = [t for t in ordered if start <= t < end]
    after = [t for t in ordered if t >= end][:1] or [end]
    points = before + inside + after
    return max(later - earlier for earlier, later in itertools.pairwise(points))


def test_longest_gap_spans_the_fault() -> None:
    """The gap that straddles the fault counts, and one that begins inside the window; gaps wholly
    before the fault do not."""
    times = [0.0, 1.0, 2.0, 9.0, 9.5, 10.0, 11.5, 30.0]
    assert longest_gap(times, 5.0, 11.0) == 7.0  # 2.0 -> 9.0, across the fault at 5.0
    assert longest_gap(times, 9.2, 12.0) == 18.5  # 11.5 -> 30.0 begins inside the window
    assert longest_gap([0.0, 1.0], 5.0, 12.0) == 11.0  # nothing decided after the fault: up to the end


class Stream:
    """Agencies publishing generated alerts at a steady rate, each logged in as itself, until stopped.

    A chunk whose publishing fails (a node killed under the producer) is sent again by a new publisher;
    a copy that had landed the first time is then a replay, which the broker dead-letters: it is
    decided once either way, as the checks require."""

    def __init__(self, env: Env, limit: int) -> None:
        self.env = env
        self.alerts: Iterator[dict[str, Any]] = generate(limit, seed=2026, now=datetime.now(UTC))
        self.sent: list[str] = []
        self.acked: list[tuple[float, int]] = []  # when each chunk was acknowledged, and its size
        self.resent = 0
        self.stopping = asyncio.Event()
        self.publishers: dict[str, IngressPublisher] = {}

    async def _publisher(self, agency: str) -> IngressPublisher:
        if agency not in self.publishers:
            mac = Keystore(self.env.cfg.keys / "agencies" / agency).load_agency_mac(agency)
            pub = IngressPublisher(self.env.login(f"agency-{agency}"), agency, mac.key_id, mac, self.env.names)
            await pub.__aenter__()
            self.publishers[agency] = pub
        return self.publishers[agency]

    async def _send(self, agency: str, alerts: list[dict[str, Any]]) -> None:
        for attempt in range(5):
            try:
                await (await self._publisher(agency)).publish(alerts)
                return
            except (ClientError, KafkaError):  # aiokafka's error, or Puente's when a publisher starts
                if attempt == 4:
                    raise
                self.resent += len(alerts)
                with contextlib.suppress(ClientError, KafkaError, KeyError):
                    await self.publishers.pop(agency).__aexit__(None, None, None)
                await asyncio.sleep(2)

    async def run(self) -> None:
        tick = 0.1
        per_tick = max(1, int(RATE * tick))
        try:
            while not self.stopping.is_set():
                began = time.monotonic()
                chunk = [a for _, a in zip(range(per_tick), self.alerts, strict=False)]
                if not chunk:
                    return
                by_agency: dict[str, list[dict[str, Any]]] = {}
                for alert in chunk:
                    by_agency.setdefault(alert["agency"], []).append(alert)
                for agency, alerts in by_agency.items():
                    await self._send(agency, alerts)
                    self.sent += [a["alert_id"] for a in alerts]
                    self.acked.append((time.time(), len(alerts)))
                await asyncio.sleep(max(0.0, tick - (time.monotonic() - began)))
        finally:
            for pub in self.publishers.values():
                with contextlib.suppress(ClientError, KafkaError):
                    await pub.__aexit__(None, None, None)


async def _until(what: str, check: Any, timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        await asyncio.sleep(every)


async def _decision_times(env: Env) -> tuple[list[tuple[float, int, int]], list[tuple[float, float]]]:
    """From one read of the audit: when each block that holds decisions was written (its ``at``, the
    worker's clock), how many decisions it holds and its audit partition (one per slot); and the
    (ingress append time, decided time) of every decided alert, how long each waited in Kafka for
    Puente, which a pause in the agencies' own publishing does not lengthen."""
    times, waits = [], []
    for record in await read_topic(env.conn, env.names.decisions):
        doc = json.loads(record.value)
        if doc.get("kind") != "BLOCK":
            continue
        entries = [e for e in doc.get("entries") or () if isinstance(e, dict)]
        at = doc.get("at")
        when = datetime.fromisoformat(at).timestamp() if at else record.timestamp_ms / 1000
        count = sum(len(e.get("decisions") or ()) for e in entries)
        if count:
            times.append((when, count, record.partition))
        if at:
            waits += [(e["ingress_ms"] / 1000, when) for e in entries
                      if e.get("kind") == "ALERT" and isinstance(e.get("ingress_ms"), int)]
    return times, waits


def _longest_wait(waits: list[tuple[float, float]], start: float, end: float) -> str:
    """The longest an alert that reached Kafka in [start, end) waited to be decided."""
    inside = [decided - appended for appended, decided in waits if start <= appended < end]
    return f"{max(inside):.1f}s" if inside else "no alert"


def _gaps(blocks: list[tuple[float, int, int]], start: float, end: float) -> str:
    """The longest gap between decisions overall, and the longest within one slot (audit partition), in
    [start, end): another worker's slots keep deciding while a killed worker's wait."""
    overall = longest_gap([at for at, _, _ in blocks], start, end)
    slots = {part for _, _, part in blocks}
    one = max(longest_gap([at for at, _, part in blocks if part == slot], start, end) for slot in slots)
    return f"{overall:.1f}s (in one slot: {one:.1f}s)"


def _timeline(blocks: list[tuple[float, int, int]], faults: dict[str, float], step: float = 5.0) -> str:
    """Counts (decisions, alerts) per ``step`` seconds from the node kill, each fault marked where it fell."""
    zero = faults["node"]
    per: Counter[int] = Counter()
    for at, count, _ in blocks:
        per[int((at - zero) // step)] += count
    marks = {int((t - zero) // step): name for name, t in faults.items()}
    cells = []
    for i in range(min(per), max(per) + 1):
        mark = f"[{marks[i]}] " if i in marks else ""
        cells.append(f"{mark}{i * step:+.0f}s:{per[i]}")
    return " ".join(cells)


def _log_counts(workers: Workers) -> str:
    """How often each worker's log says it restarted or stalled (all its runs, the killed one's included)."""
    counts = []
    for log in sorted(workers.folder.glob("worker-*.log")):
        text = log.read_text(errors="replace")
        counts.append(f"{log.stem}: {text.count('worker restarting')} restart(s), "
                      f"{text.count('worker stalled')} stall warning(s)")
    return "; ".join(counts)


@chaos
@pytest.mark.kafka
@pytest.mark.cluster
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("membership", ["static", "dynamic"])
async def test_a_node_and_a_worker_killed_mid_stream_lose_and_duplicate_nothing(
        cluster: LocalKafka, env: Env, tmp_path: Path, membership: str) -> None:
    """SIGKILL of a Kafka node and of a worker mid-stream, each restarted: every (alert, partner) decided once,
    no feed duplicate, each subscriber receives exactly its deliveries, the audit verifies."""
    partners = sorted(env.policy.partners)
    # static, as compose runs them: the restarted worker takes its place back, fencing its own dead
    # producers; dynamic: the survivor takes the dead worker's slots once its session ends
    workers = Workers(env, tmp_path, static=membership == "static")
    stream = Stream(env, limit=8000)
    faults: dict[str, float] = {}
    workers.start("a")
    workers.start("b")
    publishing = asyncio.ensure_future(stream.run())
    try:
        async def deciding() -> bool:
            workers.check_alive()
            if publishing.done():
                publishing.result()  # raises what stopped the agencies
            return all(committed_decisions(port) > 0 for _, port, _ in workers.procs.values())
        await _until("both workers' first decisions", deciding, 180)
        await asyncio.sleep(10)  # a steady stream first

        faults["node"] = time.time()
        await asyncio.to_thread(cluster.stop_node, KILLED_NODE, kill=True)
        await asyncio.sleep(12)  # longer than the broker session: the cluster fences the node and goes on
        await asyncio.to_thread(cluster.start_node, KILLED_NODE)
        await asyncio.to_thread(cluster.wait_ready, timeout=300)
        faults["node back"] = time.time()
        await asyncio.sleep(8)
        workers.check_alive()

        faults["worker"] = time.time()
        await asyncio.to_thread(workers.kill, "a")
        await asyncio.sleep(RESTART_DELAY_S)
        workers.start("a")
        await asyncio.sleep(20)  # the stream goes on while the group settles
        workers.check_alive()
        faults["stream end"] = time.time()
        stream.stopping.set()
        await asyncio.wait_for(publishing, 120)
        want = len(stream.sent) * len(partners)

        async def complete() -> bool:
            workers.check_alive()
            rows = {(d["alert_id"], d["partner"]) for d in await audit_docs(env) if d["kind"] == "DECISION"}
            return len(rows) >= want
        await _until(f"{want} decisions in the audit", complete, 600, every=5)
    finally:
        stream.stopping.set()
        if not publishing.done():
            publishing.cancel()
        statuses = workers.stop()
    assert set(statuses.values()) == {0}, {n: tail(log) for n, (_, _, log) in workers.procs.items()}

    docs = await audit_docs(env)
    decisions = [d for d in docs if d["kind"] == "DECISION"]
    per_pair = Counter((d["alert_id"], d["partner"]) for d in decisions)
    assert set(per_pair) == {(a, p) for a in stream.sent for p in partners}
    assert set(per_pair.values()) == {1}, [k for k, n in per_pair.items() if n > 1][:5]
    # What each partner was delivered, by its reference of each alert (what its feed and receipts name).
    delivered = {p: {d["ref"] for d in decisions if d["partner"] == p and d["decision"] != "WITHHOLD"}
                 for p in partners}
    for partner in partners:
        feed_ids = ids(await open_feed(env, partner))
        assert len(feed_ids) == len(set(feed_ids)), f"a duplicate in {partner}'s feed"
        assert set(feed_ids) == delivered[partner]
        assert not set(feed_ids) & set(stream.sent)
        opener = opener_for(partner, env.key_file(partner), None)
        stats = await Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner),
                                 env.names.receipts(partner), opener, alert_codec(),
                                 signer=receipt_signer(partner, env.key_file(partner), None)).run(
            io.StringIO(), idle_exit_s=3)
        assert (stats.received, stats.rejected) == (len(delivered[partner]), 0), partner
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=300, check=False)
    assert verify.returncode == 0 and "no problems" in verify.stdout, verify.stdout[-3000:] + verify.stderr[-2000:]

    blocks, waits = await _decision_times(env)
    print(f"\nchaos ({membership} members): {len(stream.sent)} alerts x {len(partners)} partners, each decided once "
          f"({stream.resent} sent again after a publishing error); node {KILLED_NODE} back and the cluster "
          f"ready {faults['node back'] - faults['node']:.1f}s after its kill")
    for what, start, end in (("after the node kill", "node", "node back"),
                             ("around the node's return", "node back", "worker"),
                             ("after the worker kill", "worker", "stream end")):
        print(f"chaos: longest processing gap {what}: {_gaps(blocks, faults[start], faults[end])}; "
              f"longest an alert waited: {_longest_wait(waits, faults[start], faults[end])}")
    published = _timeline([(t, n, 0) for t, n in stream.acked], faults)
    print(f"chaos: alerts published per 5 s from the node kill: {published}")
    print(f"chaos: decisions per 5 s from the node kill: {_timeline(blocks, faults)}")
    print(f"chaos: {_log_counts(workers)}")


@chaos
@pytest.mark.kafka
@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_up_after_a_quorum_loss_says_up_only_once_every_node_serves(cluster: LocalKafka) -> None:
    """Two of three nodes killed (the quorum lost): `puente kafka up --shape cluster` returns "up" only once
    both serve again, one leader leads the quorum and every replica is in sync."""
    cluster.stop_node(2, kill=True)
    cluster.stop_node(3, kill=True)
    up = subprocess.run(cli("kafka", "up", "--shape", "cluster"), capture_output=True, text=True, timeout=400,
                        check=False)
    assert up.returncode == 0 and "is up" in up.stdout, up.stdout + up.stderr
    assert [answers(n.port, cluster.ca_file) for n in cluster.nodes] == [True, True, True]
    assert cluster.readiness() is None
    print(f"\nquorum loss: {up.stdout.strip()}")
