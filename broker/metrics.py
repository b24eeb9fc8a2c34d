"""The broker's metrics as Prometheus collectors, and the HTTP endpoint operators scrape.

Names follow Prometheus' conventions (base units, ``_total`` for counters, ``_seconds``)::

    puente_ingress_records_total{topic}                  ingress records committed (decided or dead-lettered)
    puente_ingress_skipped_records_total{topic}          ingress records deleted unread, skipped with --accept-gap
    puente_decisions_total{partner,decision}            decisions committed (a holder the policy no longer names:
                                                         partner "(not in the policy)", one label for all)
    puente_dead_letters_total{reason}                    dead letters written
    puente_transactions_total                            slot transactions committed
    puente_transaction_duration_seconds                  a slot batch, from its first record taken to its commit
    puente_end_to_end_latency_seconds                    Kafka's ingress append time to the commit that carried it
    puente_consumer_lag_records{topic,partition}         committed records (to the last stable offset) not processed yet
    puente_consumer_lag_seconds{topic,partition}         how long the oldest unprocessed record has waited
    puente_consumer_fetch_age_seconds{topic,partition}   since Kafka last answered a fetch for the partition (or,
                                                         before any answer, since the worker took it)
    puente_build_info{version,python,aiokafka,native_codec}
    process_* and python_*                               prometheus_client's process and platform collectors

A batch Kafka took but its client cannot read (``broker.kafka.unreadable``) is read as one record and dead-lettered
by one dead letter (``unreadable``), yet ``puente_ingress_records_total`` counts each of its records (each offset
from where the reader stood: ``Outcome.records``), so that per topic the ingress offsets a broker committed are its
ingress records plus its skipped ones (but for transaction markers, which Kafka writes for a transactional producer;
Puente's adapters are none).

``GET /metrics`` serves them; ``/healthz`` answers 200 while the process runs its event loop;
``/readyz`` answers 200 once every worker has joined its group and holds its slots, 503 before
and while it stops (each path with any query string; HEAD as GET, without the body). The
end-to-end latency histogram is bucketed a batch at a time (a sort and a few bisections) and
exposed through its own collector: a per-record ``observe`` cost more.
The endpoint bounds each request's time and size, and the connections it serves at once, in all
and from one address (see ``serve_metrics``): a client can neither hold the broker's file
descriptors nor keep the health checks out. ``/metrics`` answers only a request bearing the token of
``PUENTE_METRICS_TOKEN_FILE`` when one is set, and one must be set to serve it off loopback
(``metrics_token``): the per-partner decision counts are the audit's to show, not any network neighbour's.
It serves the text it rendered up to ``RENDER_EVERY_S`` ago: the endpoint shares the workers' event loop,
and rendering costs about half a millisecond, so a client asking as fast as it can must not decide how
much of the loop goes to it.
The worker sets the lag gauges every second from its consumer's state, whether records arrive or
not: a worker that stalls with records behind shows ``puente_consumer_lag_seconds`` growing. The records behind
are counted to the partition's end as the last answered fetch gave it, so a slot caught up when Kafka stopped
answering its fetches (its leader gone, say) shows none behind however long that lasts: the fetch age shows that
silence, growing each second (a worker answered long-polls about every 100 ms, so more than a few seconds is a
partition out of reach; the stall watch warns of it too, ``broker.stall``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import ipaddress
import platform
import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from importlib import metadata
from itertools import chain
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from broker.gate import Gate, client_address
from broker.private_files import read_secret
from puente import __version__, logs
from puente.errors import ConfigError
from puente.settings import PuenteSettings
from schemas import alert_codec

# End-to-end latency buckets, in seconds (1 ms to 10 s).
BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

_log = logs.get("puente.broker.metrics")


class Counted(Protocol):
    """What the metrics read of one record's outcome."""

    @property
    def decisions(self) -> Sequence[tuple[str, str]]: ...
    @property
    def dead_reason(self) -> str | None: ...
    @property
    def records(self) -> int:
        """How many ingress records the outcome answers for (more than one for an unreadable batch)."""
        ...


class _Latency(Collector):
    """The end-to-end latency histogram, bucketed a batch at a time (see ``Metrics.count_batch``)."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS_S) + 1)
        self.sum_s = 0.0

    def add(self, ingress_ms: Iterable[int], now_ms: float) -> None:
        # Bucket by the ingress times instead of each latency: the bucket edges, as ingress times,
        # cut the sorted times, so a batch costs a sort and a few bisections.
        negated = sorted(-t for t in ingress_ms)  # newest first: smallest latency first
        start = 0
        for i, edge in enumerate(BUCKETS_S):
            # latency <= edge  <=>  ts >= now - edge  <=>  -ts <= edge - now
            end = bisect.bisect_right(negated, edge * 1000 - now_ms, start)
            self.buckets[i] += end - start
            start = end
        self.buckets[-1] += len(negated) - start
        self.sum_s += sum(max(0.0, now_ms + t) for t in negated) / 1000

    def collect(self) -> Iterator[HistogramMetricFamily]:
        running, cumulative = 0, []
        for bound, n in zip((*(str(b) for b in BUCKETS_S), "+Inf"), self.buckets, strict=True):
            running += n
            cumulative.append((bound, running))
        family = HistogramMetricFamily("puente_end_to_end_latency_seconds",
                                       "Time from Kafka's ingress append to the commit of the batch that carried it",
                                       buckets=cumulative, sum_value=self.sum_s)
        yield family


class Metrics:
    """The counters one broker process keeps (every worker of the process shares them)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.inputs = 0  # also kept as a plain number: the demo and the logs read it
        self._inputs = Counter("puente_ingress_records", "Ingress records committed, decided or dead-lettered "
                               "(each record of an unreadable batch)", ["topic"], registry=r)
        self._decisions = Counter("puente_decisions", "Decisions committed, by partner and outcome",
                                  ["partner", "decision"], registry=r)
        self._dead = Counter("puente_dead_letters", "Dead letters written, by reason (one for a whole unreadable "
                             "batch)", ["reason"], registry=r)
        self._skipped = Counter("puente_ingress_skipped_records",
                                "Ingress records deleted before the broker read them, skipped with --accept-gap "
                                "(each recorded as a GAP in the audit)", ["topic"], registry=r)
        self._transactions = Counter("puente_transactions", "Slot transactions committed", registry=r)
        self._duration = Histogram("puente_transaction_duration_seconds",
                                   "A slot batch, from its first record taken to its commit", registry=r,
                                   buckets=BUCKETS_S)
        self._lag = Gauge("puente_consumer_lag_records", "Committed records not processed yet",
                          ["topic", "partition"], registry=r)
        self._lag_s = Gauge("puente_consumer_lag_seconds", "How long the oldest unprocessed record has waited",
                            ["topic", "partition"], registry=r)
        self._fetch_age = Gauge("puente_consumer_fetch_age_seconds",
                                "Seconds since Kafka last answered a fetch for the partition (before any answer, "
                                "since the worker took it): the lag is only as recent as that answer",
                                ["topic", "partition"], registry=r)
        self.latency = _Latency()
        r.register(self.latency)
        Info("puente_build", "Puente's version and what it runs on", registry=r).info({
            "version": __version__, "python": platform.python_version(), **_versions()})
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def count_batch(self, outcomes: Sequence[Counted], ingress_ts_ms: Sequence[int], topic: str = "") -> None:
        """Count a committed batch, with one clock reading."""
        now_ms = time.time() * 1000
        for (partner, decision), n in Tally(chain.from_iterable(o.decisions for o in outcomes)).items():
            self._decisions.labels(partner, decision).inc(n)
        for reason, n in Tally(o.dead_reason for o in outcomes if o.dead_reason).items():
            self._dead.labels(reason).inc(n)
        self.latency.add(ingress_ts_ms, now_ms)
        records = sum(o.records for o in outcomes)  # an unreadable batch's one outcome counts each of its records
        self.inputs += records
        self._inputs.labels(topic).inc(records)

    def skipped(self, topic: str, records: int) -> None:
        """A gap committed: ``records`` ingress records of ``topic`` that no one will decide."""
        self._skipped.labels(topic).inc(records)

    def transaction(self, seconds: float) -> None:
        """A slot transaction committed after ``seconds``."""
        self._transactions.inc()
        self._duration.observe(seconds)

    def lag(self, topic: str, partition: int, records: int, waited_s: float) -> None:
        """The lag of one owned partition: records behind, and how long the oldest of them has waited."""
        self._lag.labels(topic, str(partition)).set(records)
        self._lag_s.labels(topic, str(partition)).set(waited_s)

    def fetch_age(self, topic: str, partition: int, seconds: float) -> None:
        """How long ago Kafka last answered a fetch for one owned partition (``puente_consumer_fetch_age_seconds``)."""
        self._fetch_age.labels(topic, str(partition)).set(seconds)

    def forget(self, topic: str, partition: int) -> None:
        """A partition this process no longer owns: its lag and fetch age are someone else's to report."""
        for gauge in (self._lag, self._lag_s, self._fetch_age):
            with contextlib.suppress(KeyError):
                gauge.remove(topic, str(partition))

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 when absent), for tests and the demo."""
        found = self.registry.get_sample_value(name, labels)
        return float(found or 0.0)

    def render(self) -> bytes:
        """The exposition text ``/metrics`` serves."""
        return generate_latest(self.registry)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("aiokafka",):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    out["native_codec"] = "yes" if alert_codec().uses_native else "no"
    return out


# The endpoint's bounds (see ``serve_metrics``).
REQUEST_DEADLINE_S = 5.0  # to read the whole request head, and again to write the answer and close
MAX_CONNECTIONS = 64  # open at once; past it a new one closes an idle one, or is closed (``serve_metrics``)
MAX_PER_ADDRESS = 8  # of those, from one client address (Prometheus opens one per scrape, a health check one)
MAX_HEAD_BYTES = 16 * 1024  # the request line and headers together (also the longest line read)
MAX_HEADERS = 100
REFUSALS_LOGGED_EVERY_S = 60.0
# /metrics serves text rendered up to this long ago: at most 20 renders a second, about 1% of the loop however
# fast it is asked, and no staler than a person (or a test polling for a count) would notice.
RENDER_EVERY_S = 0.05


class _Rendered:
    """``render``'s text, rendered again only once it is ``every_s`` old (``RENDER_EVERY_S``): however fast
    ``/metrics`` is asked, the registry is rendered at most once per ``every_s``."""

    def __init__(self, render: Callable[[], bytes], every_s: float) -> None:
        self.render, self.every_s = render, every_s
        self.text, self.until = b"", float("-inf")

    def __call__(self) -> bytes:
        now = time.monotonic()
        if now >= self.until:
            self.text, self.until = self.render(), now + self.every_s
        return self.text


class _BadRequest(Exception):
    """A request head over ``MAX_HEAD_BYTES`` or ``MAX_HEADERS`` lines."""


async def serve_metrics(metrics: Metrics, address: str, port: int, ready: Callable[[], bool], *,
                        deadline_s: float = REQUEST_DEADLINE_S,
                        max_connections: int = MAX_CONNECTIONS, max_per_address: int = MAX_PER_ADDRESS,
                        render_every_s: float = RENDER_EVERY_S, hosts: Collection[str] = (),
                        token: bytes | None = None) -> asyncio.AbstractServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``address:port``; a port in use is a ConfigError.

    The endpoint is bounded so that no client can take the broker's resources with it: the whole
    request head (request line and headers) must arrive within ``deadline_s``, and the answer
    must be written and the connection closed within ``deadline_s`` again, else the connection is
    dropped; the head is at most ``MAX_HEAD_BYTES`` and ``MAX_HEADERS`` lines, else it is answered
    400 (a line longer than that too, instead of an uncaught ValueError). Why: a per-line timeout
    let a client sending a header line every few seconds hold a connection for ever, and a few
    hundred such connections used up the process's file descriptors, so the workers' own Kafka
    connections failed.
    At most ``max_connections`` are open at once, ``max_per_address`` of them from one client
    address (an IPv6 one by its /64), kept by ``broker.gate.Gate`` as the console's are: a new
    connection past a cap closes an idle one (its request head still to come) of its own address,
    or of the address holding the most; only when none is idle is the new one closed on arrival.
    Why: one pool for every client let one of them hold all 64 places with slow heads, and every
    /readyz health check was refused. Refused connections are counted and reported in one warning
    per ``REFUSALS_LOGGED_EVERY_S`` at most, never a line each, each count logged within that interval
    even when no refusal follows, and when the endpoint closes (``_Refusals``, ``_Endpoint``).
    ``/metrics`` answers with the text rendered at most ``render_every_s`` ago (``_Rendered``): the
    endpoint runs on the workers' event loop, and a render per request let a flood of scrapes take
    most of it (a stand-in worker lost 92% of its batches).
    A request is answered only under a Host that names this endpoint (``host_allowed``: an IP address, localhost,
    or one of ``hosts``), and only for GET and HEAD (405 else). Why: the per-partner decision counts are the
    audit's to show, and a DNS-rebinding page, at a name of its own resolved to this address, read them through
    the browser of anyone on the broker's host or network; it cannot choose the Host header, which is its name.
    With ``token`` (``metrics_token``), ``/metrics`` is answered only to a request whose one Authorization header
    is ``Bearer <token>`` (401 else, compared in constant time): the counts are for the operator's Prometheus, not
    for whatever else can reach the port. ``/healthz`` and ``/readyz`` stay open: they say only that the process
    runs and its workers hold their slots, which a container runtime's health check must be able to ask.
    """
    gate = Gate(max_connections, max_per_address)
    names = frozenset(name.lower() for name in hosts)
    rendered = _Rendered(metrics.render, render_every_s)
    refusals = _Refusals()

    async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes]]:
        """The request line and the values of its Host and Authorization headers, each at most once (absent when
        not sent); _BadRequest past the bounds, or for either header twice (which of two a proxy or a client
        believed is unknowable)."""
        request = await reader.readline()
        size, count, named = len(request), 0, {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            size, count = size + len(line), count + 1
            if size > MAX_HEAD_BYTES or count > MAX_HEADERS:
                raise _BadRequest
            name, colon, value = line.partition(b":")
            key = name.strip().lower()
            if colon and key in (b"host", b"authorization"):
                if key in named:
                    raise _BadRequest
                named[key] = value.strip()
        return request, named

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        if not gate.admit(conn):
            writer.transport.abort()
            refusals.note(address, port)
            return
        try:
            named: dict[bytes, bytes] = {}
            try:
                async with asyncio.timeout(deadline_s):
                    request: bytes | None
                    request, named = await read_head(reader)
            except (_BadRequest, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
                request = None  # ValueError: a line over the reader's limit
            if conn.evicted:
                return  # closed for a newer connection while its head was still coming
            conn.reading = False  # a request in hand: the gate no longer closes it for another
            method, path = _target(request or b"")
            extra = b""  # header lines some answers add
            if request is None:
                body, status, kind = b"request head too large or malformed\n", b"400 Bad Request", _TEXT
            elif not host_allowed(named.get(b"host"), names):
                body, status, kind = MISNAMED, b"400 Bad Request", _TEXT
            elif method not in (b"GET", b"HEAD"):
                body, status, kind = b"only GET and HEAD are answered here\n", b"405 Method Not Allowed", _TEXT
                extra = b"Allow: GET, HEAD\r\n"
            elif token is not None and path == b"/metrics" and not bearer_ok(named.get(b"authorization"), token):
                body, status, kind = UNAUTHORISED, b"401 Unauthorized", _TEXT
                extra = b'WWW-Authenticate: Bearer realm="puente-metrics"\r\n'
            else:
                body, status, kind = _answer(path, rendered, ready)
            # A HEAD is answered as its GET, without the body (RFC 9110, 9.3.2): Content-Length still says its size.
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind.encode() + b"\r\n" + extra
                         + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + (b"" if method == b"HEAD" else body))
            async with asyncio.timeout(deadline_s):
                await writer.drain()
                writer.close()
                await writer.wait_closed()
        except (TimeoutError, OSError):
            pass  # too slow, or gone: dropped below
        except asyncio.CancelledError:
            pass  # the loop is stopping; nobody awaits this task (3.11 would log its cancellation)
        finally:
            gate.leave(conn)
            writer.transport.abort()  # nothing if closed already; else drop what is unsent

    try:
        # The listen backlog is the cap too: asyncio accepts up to ``backlog`` connections per wake-up, so
        # a flood holds a few times the cap in descriptors at most, each only until its handler closes it.
        server = await asyncio.start_server(handle, address, port, limit=MAX_HEAD_BYTES, backlog=max_connections)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}; choose another "
                          "--metrics-port or PUENTE_METRICS_ADDRESS") from None
    return _Endpoint(server, refusals)


class _Endpoint(asyncio.AbstractServer):
    """The metrics endpoint's server (``serve_metrics``): closing it also logs the refusals counted and not yet
    reported (``_Refusals.flush``). Why: their timer dies with the event loop when the process stops, and the count
    of a burst just before it would never be logged."""

    def __init__(self, server: asyncio.Server, refusals: _Refusals) -> None:
        self._server, self._refusals = server, refusals

    def close(self) -> None:
        self._server.close()
        self._refusals.flush()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._server.get_loop()

    def is_serving(self) -> bool:
        return self._server.is_serving()

    async def start_serving(self) -> None:
        await self._server.start_serving()

    async def serve_forever(self) -> None:
        await self._server.serve_forever()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


class _Connection:
    """One connection to the endpoint, as ``Gate`` sees it: idle while its request head is still coming."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = client_address(str(peer[0])) if isinstance(peer, tuple) and peer else "-"
        self.reading, self.evicted = True, False

    def idle(self) -> bool:
        return self.reading

    def evict(self) -> None:
        self.evicted = True
        self.writer.transport.abort()


class _Refusals:
    """Connections closed at the cap, reported in one warning per ``every_s`` (``REFUSALS_LOGGED_EVERY_S``) at most,
    each counting the refusals since the last.

    The first refusal after a quiet interval is logged at once; those that follow within the interval are counted,
    and a timer on the event loop logs their count when the interval ends, whether or not any refusal comes after.
    Why: counted only until the next refusal came, a burst followed by silence was never reported past its first
    connection (999 refusals left unlogged for good)."""

    def __init__(self, every_s: float = REFUSALS_LOGGED_EVERY_S) -> None:
        self.every_s = every_s
        self.unreported = 0
        self.last_s = float("-inf")
        self._where: tuple[str, int] = ("", 0)
        self._timer: asyncio.TimerHandle | None = None

    def note(self, address: str, port: int) -> None:
        """One connection refused (on the event loop that serves the endpoint)."""
        self.unreported += 1
        self._where = (address, port)
        wait_s = self.last_s + self.every_s - time.monotonic()
        if wait_s <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait_s, self.flush)

    def flush(self) -> None:
        """Log the refusals counted and not yet reported, if any, and cancel the timer armed for them: flushed
        early (a refusal past the interval, the endpoint closing), its timer would log again at once when a busy
        event loop ran it late, a second line within the interval."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.unreported:
            address, port = self._where
            _log.warning("metrics endpoint at its connection cap; closing new connections",
                         address=address, port=port, count=self.unreported)
            self.unreported, self.last_s = 0, time.monotonic()


_TEXT = "text/plain; charset=utf-8"
MISNAMED = (b"this Host is not one the metrics endpoint answers under: use its IP address, localhost, or a name "
            b"PUENTE_METRICS_HOSTS lists\n")


UNAUTHORISED = (b"/metrics needs the bearer token of PUENTE_METRICS_TOKEN_FILE (Prometheus: authorization: "
                b"credentials_file, naming the same file)\n")
MIN_TOKEN_BYTES = 32
MAX_TOKEN_FILE_BYTES = 4096


def bearer_ok(value: bytes | None, token: bytes) -> bool:
    """Whether an Authorization header's value is ``Bearer <token>`` (the scheme in any case, RFC 9110 11.1),
    compared in constant time: how long a wrong guess took says nothing of the token."""
    if value is None:
        return False
    scheme, _, given = value.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)


def metrics_token(settings: PuenteSettings) -> bytes | None:
    """The bearer token ``/metrics`` asks for (``serve_metrics``): the one line of ``PUENTE_METRICS_TOKEN_FILE``,
    read as every secret file is (``read_secret``: this user's or root's, mode 0600 or stricter, in a folder fit
    for it), at least ``MIN_TOKEN_BYTES`` printable characters without spaces. None when no file is set, which is
    allowed only on a loopback address: off loopback, anything that reaches the port (another container on the
    deployment's network, a neighbour on the host's) would read each partner's decision counts, which are the
    audit's to show. A ConfigError, one line naming what to set, otherwise."""
    path, address = settings.metrics_token_file, settings.metrics_address
    if path is None:
        if not ipaddress.ip_address(address).is_loopback:
            raise ConfigError(f"PUENTE_METRICS_ADDRESS {address} is not a loopback address, so /metrics would serve "
                              "each partner's decision counts to anyone who reaches it: set PUENTE_METRICS_TOKEN_FILE "
                              "to a file holding a bearer token (Prometheus: authorization: credentials_file), or "
                              "bind it to 127.0.0.1")
        return None
    what = "PUENTE_METRICS_TOKEN_FILE"
    token = read_secret(path, MAX_TOKEN_FILE_BYTES, ConfigError, what).strip()
    if len(token) < MIN_TOKEN_BYTES or not all(0x21 <= b <= 0x7E for b in token):
        raise ConfigError(f"{what} {path} holds no usable token: one line of at least {MIN_TOKEN_BYTES} printable "
                          "characters without spaces (openssl rand -hex 32 makes one)")
    return token


def host_allowed(host: bytes | None, names: Collection[str]) -> bool:
    """Whether a request's Host header names this endpoint: an IP address (v4, or v6 in brackets), ``localhost``,
    or one of ``names`` (lower case), each with or without a port. A page can only be same-origin with an IP
    address's or localhost's answers if it was served from there itself, so those cannot be rebound; any other
    name must be one the operator listed (Prometheus' target). None (no Host: HTTP/1.1 requires one, and every
    browser sends it) is refused with the rest."""
    if host is None:
        return False
    try:
        text = host.decode("ascii").lower()
    except UnicodeDecodeError:
        return False
    if text.startswith("["):
        inner, bracket, port = text[1:].partition("]")
        return bool(bracket) and _port(port) and _ip(inner, 6)
    name, colon, port = text.partition(":")  # a name or an IPv4 address holds none; a bare IPv6 one is refused
    return _port(colon + port) and (_ip(name, 4) or name == "localhost" or name in names)


def _port(text: str) -> bool:
    """Nothing, or ':' and a port number."""
    return text == "" or (text[:1] == ":" and text[1:].isascii() and text[1:].isdigit() and 0 < int(text[1:]) < 65536)


def _ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _target(request: bytes) -> tuple[bytes, bytes]:
    """The method and the path of a request line, the path without its query (``/healthz?x`` is ``/healthz``, as
    ``/metrics?x`` is ``/metrics``); a line without both is an empty path, answered 404."""
    parts = request.split(b" ")
    if len(parts) < 3:
        return (parts[0] if parts else b""), b""
    return parts[0], parts[1].split(b"?")[0]


def _answer(path: bytes, rendered: Callable[[], bytes], ready: Callable[[], bool]) -> tuple[bytes, bytes, str]:
    text = _TEXT
    if path == b"/metrics":
        return rendered(), b"200 OK", CONTENT_TYPE_LATEST
    if path == b"/healthz":
        return b"ok\n", b"200 OK", text
    if path == b"/readyz":
        if ready():
            return b"ready\n", b"200 OK", text
        return b"not ready: joining the group or stopping\n", b"503 Service Unavailable", text
    return b"not found; try /metrics, /healthz or /readyz\n", b"404 Not Found", text
