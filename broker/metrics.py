"""Counters and a plain-text ``/metrics`` endpoint (Prometheus exposition format) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.pipeline import Outcome

_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Metrics:
    """What the worker has done: decisions by partner, dead letters by reason, latency, lag."""

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.inputs = 0
        self.batches = 0
        self.latency_buckets = [0] * (len(_BUCKETS_MS) + 1)
        self.latency_sum_ms = 0.0
        self.lag: dict[str, int] = {}
        self.started = time.time()

    def count(self, outcome: Outcome, ingress_ts_ms: int) -> None:
        self.count_batch([outcome], [ingress_ts_ms])

    def count_batch(self, outcomes: list[Outcome], ingress_ts_ms: list[int]) -> None:
        """``count`` for a committed batch, with one clock reading."""
        now_ms = time.time() * 1000
        self.decisions.update(chain.from_iterable(o.decisions for o in outcomes))
        dead = [o.dead_reason for o in outcomes if o.dead_reason]
        if dead:
            self.dead_letters.update(dead)
        # Bucket by the ingress times instead of each latency: the bucket edges, as ingress times,
        # cut the sorted times, so a batch costs a sort and a few bisections.
        times = sorted(ingress_ts_ms, reverse=True)  # newest first: smallest latency first
        negated = [-t for t in times]
        start = 0
        buckets = self.latency_buckets
        for i, edge in enumerate(_BUCKETS_MS):
            # latency <= edge  <=>  ts >= now - edge  <=>  -ts <= edge - now
            end = bisect.bisect_right(negated, edge - now_ms, start)
            buckets[i] += end - start
            start = end
        buckets[-1] += len(times) - start
        self.inputs += len(outcomes)
        self.latency_sum_ms += sum(max(0.0, now_ms - t) for t in times)

    def batch(self, size: int, seconds: float) -> None:
        self.batches += 1

    def observe_lag(self, consumer: Any, positions: dict[Any, int]) -> None:
        """Lag per owned partition: the high-water mark minus the next offset to process."""
        for tp, pos in positions.items():
            high = consumer.highwater(tp)
            if high is not None:
                self.lag[f"{tp.topic}[{tp.partition}]"] = max(0, high - pos)

    def render(self) -> str:
        """The metrics in Prometheus text format."""
        lines = ["# TYPE puente_inputs_total counter", f"puente_inputs_total {self.inputs}",
                 "# TYPE puente_decisions_total counter"]
        for (partner, decision), n in sorted(self.decisions.items()):
            lines.append(f'puente_decisions_total{{partner="{partner}",decision="{decision}"}} {n}')
        lines.append("# TYPE puente_dead_letters_total counter")
        for reason, n in sorted(self.dead_letters.items()):
            lines.append(f'puente_dead_letters_total{{reason="{reason}"}} {n}')
        lines.append("# TYPE puente_latency_ms histogram")
        running = 0
        for bound, n in zip((*_BUCKETS_MS, "+Inf"), self.latency_buckets, strict=True):
            running += n
            lines.append(f'puente_latency_ms_bucket{{le="{bound}"}} {running}')
        lines += [f"puente_latency_ms_sum {self.latency_sum_ms:.1f}", f"puente_latency_ms_count {running}",
                  "# TYPE puente_consumer_lag gauge"]
        for tp, lag in sorted(self.lag.items()):
            lines.append(f'puente_consumer_lag{{partition="{tp}"}} {lag}')
        return "\n".join(lines) + "\n"


async def serve_metrics(metrics: Metrics, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on 127.0.0.1:port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            if request.startswith(b"GET /metrics"):
                body, status = metrics.render().encode(), b"200 OK"
            else:
                body, status = b"not found; try /metrics\n", b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)
