"""The broker's metrics: counted per batch, exposed as Prometheus text that Prometheus' own parser reads."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import socket
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from puente_testing import free_port

import broker.metrics as metrics_module
from broker.metrics import BUCKETS_S, Metrics, host_allowed, serve_metrics
from puente.errors import ConfigError

NOW_S = 1_800_000_000.0
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _outcome(decisions: list[tuple[str, str]], dead: str | None = None, records: int = 1) -> Any:
    return SimpleNamespace(decisions=decisions, dead_reason=dead, records=records)


def _families(m: Metrics) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.floats(min_value=-50, max_value=20_000, allow_nan=False), max_size=60), max_size=4))
def test_latency_buckets_match_one_bisection_per_alert(batches: list[list[float]]) -> None:
    """Bucketing a batch at once gives the histogram that bucketing each latency alone gives."""
    m = Metrics()
    expected = [0] * (len(BUCKETS_S) + 1)
    total = 0.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metrics_module.time, "time", lambda: NOW_S)
        for latencies in batches:
            stamps = [int(NOW_S * 1000 - lat) for lat in latencies]
            m.count_batch([_outcome([]) for _ in stamps], stamps, "t.ingress.SNM")
            for ts in stamps:
                latency = max(0.0, NOW_S * 1000 - ts) / 1000
                expected[bisect.bisect_left(BUCKETS_S, latency)] += 1
                total += latency
    assert m.latency.buckets == expected
    assert m.latency.sum_s == pytest.approx(total)
    assert m.inputs == sum(len(b) for b in batches)


def test_an_unreadable_batch_counts_each_of_its_records_as_an_input() -> None:
    """The one outcome standing for a batch the Kafka client could not read counts as every record it answers for
    in puente_ingress_records_total and ``inputs`` (the topic's offsets are inputs plus skipped records), and as the
    one dead letter written for it in puente_dead_letters_total."""
    m = Metrics()
    m.count_batch([_outcome([("COL", "DELIVER")]), _outcome([], "unreadable", records=10), _outcome([], "replay")],
                  [1, 2, 3], "t.ingress.SNM")
    m.skipped("t.ingress.SNM", 4)
    assert m.inputs == 12
    assert m.value("puente_ingress_records_total", topic="t.ingress.SNM") == 12
    assert m.value("puente_ingress_skipped_records_total", topic="t.ingress.SNM") == 4
    assert m.value("puente_dead_letters_total", reason="unreadable") == 1


def test_the_exposition_parses_with_prometheus_own_parser() -> None:
    """Every metric has help, conventional names and units, and the counts made from a batch."""
    m = Metrics()
    m.count_batch([_outcome([("COL", "DELIVER"), ("USA", "WITHHOLD")]), _outcome([], "replay"),
                   _outcome([("COL", "DELIVER"), ("USA", "DELIVER_REDACTED")])], [1, 2, 3], "t.ingress.SNM")
    m.transaction(0.02)
    m.lag("t.ingress.SNM", 2, 40, 1.5)
    m.fetch_age("t.ingress.SNM", 2, 0.1)
    families = _families(m)
    for name in ("puente_decisions", "puente_dead_letters", "puente_ingress_records", "puente_transactions",
                 "puente_transaction_duration_seconds", "puente_end_to_end_latency_seconds",
                 "puente_consumer_lag_records", "puente_consumer_lag_seconds", "puente_consumer_fetch_age_seconds",
                 "puente_build_info",
                 "process_cpu_seconds"):
        assert name in families, name
        assert families[name].documentation
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("puente_decisions_total", (("decision", "DELIVER"), ("partner", "COL")))] == 2
    assert samples[("puente_dead_letters_total", (("reason", "replay"),))] == 1
    assert samples[("puente_ingress_records_total", (("topic", "t.ingress.SNM"),))] == 3
    assert samples[("puente_consumer_lag_records", (("partition", "2"), ("topic", "t.ingress.SNM")))] == 40
    assert samples[("puente_end_to_end_latency_seconds_count", ())] == 3
    assert families["puente_end_to_end_latency_seconds"].type == "histogram"
    assert any(s.labels.get("version") for s in families["puente_build_info"].samples)


def test_a_released_partition_leaves_no_stale_lag() -> None:
    """Lag is reported only for partitions this process owns."""
    m = Metrics()
    m.lag("t", 1, 5, 0.5)
    m.forget("t", 1)
    m.forget("t", 9)  # never reported: nothing to forget, no error
    assert "puente_consumer_lag_records" not in {
        s.name for f in _families(m).values() for s in f.samples}


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await writer.drain()
    raw = (await reader.read()).decode()
    writer.close()
    head, _, body = raw.partition("\r\n\r\n")
    return head.splitlines()[0], body


async def test_the_endpoint_serves_metrics_health_and_readiness() -> None:
    """/metrics is Prometheus text, /healthz is up, /readyz follows the workers' readiness."""
    ready = [False]
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: ready[0])
    try:
        status, body = await _get(port, "/metrics")
        assert status.endswith("200 OK") and list(text_string_to_metric_families(body))
        assert (await _get(port, "/healthz"))[0].endswith("200 OK")
        assert (await _get(port, "/readyz"))[0].endswith("503 Service Unavailable")
        ready[0] = True
        assert (await _get(port, "/readyz"))[0].endswith("200 OK")
        assert (await _get(port, "/nope"))[0].endswith("404 Not Found")
    finally:
        server.close()


async def test_a_port_in_use_is_one_clear_error() -> None:
    """Serving on a port already taken is a configuration error naming the port, not an OSError."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True)


async def _until_closed(reader: asyncio.StreamReader, within_s: float) -> bytes:
    """What the server sent before it closed the connection (a reset counts as closed); a
    connection still open after ``within_s`` fails the test."""
    try:
        return await asyncio.wait_for(reader.read(), within_s)
    except ConnectionError:
        return b""
    except TimeoutError:
        pytest.fail(f"the server still held the connection after {within_s} s")


async def _dribble(writer: asyncio.StreamWriter, every_s: float) -> None:
    with contextlib.suppress(ConnectionError):
        while True:
            await asyncio.sleep(every_s)
            writer.write(b"X-Slow: still here\r\n")
            await writer.drain()


async def _scrape_soon(port: int, within_s: float = 10.0) -> tuple[str, str]:
    """A GET /metrics, retried while the server is still letting go of earlier connections."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while True:
        with contextlib.suppress(ConnectionError, IndexError):
            return await _get(port, "/metrics")
        if loop.time() > give_up:
            pytest.fail(f"no scrape answered within {within_s} s")
        await asyncio.sleep(0.1)


async def test_a_client_that_dribbles_headers_is_cut_off_at_the_deadline() -> None:
    """The whole request head must arrive within the deadline: a header line now and then does not
    keep a connection open, and the endpoint goes on serving scrapes."""
    deadline_s = 1.0
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True, deadline_s=deadline_s)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\n")
        dribbling = asyncio.create_task(_dribble(writer, deadline_s / 5))
        try:
            assert await _until_closed(reader, 5 * deadline_s) == b""  # dropped, not answered
        finally:
            dribbling.cancel()
            writer.close()
        status, body = await _scrape_soon(port)
        assert status.endswith("200 OK") and list(text_string_to_metric_families(body))
    finally:
        server.close()


async def _answer_to(port: int, request: bytes) -> bytes:
    """What the endpoint sends back to ``request`` before it closes the connection (``b""``: nothing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    answer = await _until_closed(reader, 30)
    writer.close()
    return answer


async def test_an_overlong_request_line_is_refused_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A request line over the limit is answered 400 or closed; nothing is logged with a traceback."""
    caplog.set_level(logging.DEBUG)
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True)
    try:
        answer = await _answer_to(port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
        assert (await _scrape_soon(port))[0].endswith("200 OK")  # the server went on, and its handler ended
    finally:
        server.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_head_with_too_many_headers_is_refused() -> None:
    """The request head is bounded in lines and bytes: thousands of headers are not read to the end
    and answered as a scrape."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True)
    try:
        answer = await _answer_to(port, b"GET /metrics HTTP/1.1\r\n" + b"X-Many: header\r\n" * 5_000 + b"\r\n")
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
    finally:
        server.close()


async def test_past_the_cap_a_new_connection_closes_the_oldest_idle_one() -> None:
    """Past the cap on open connections, a new one closes the idle one (its head still coming) opened longest
    ago, however it dribbles, and is answered; the other held one stays open."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True, deadline_s=60, max_connections=2)
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    dribbling = [asyncio.create_task(_dribble(writer, 0.2)) for _, writer in held]
    try:
        for _, writer in held:
            writer.write(b"GET /metrics HTTP/1.1\r\n")  # and no more than a header now and then
        await asyncio.sleep(0.1)
        status, body = await _get(port, "/metrics")
        assert status.endswith("200 OK") and list(text_string_to_metric_families(body))
        assert await _until_closed(held[0][0], 10) == b""
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(held[1][0].read()), 0.3)
    finally:
        for task in dribbling:
            task.cancel()
        for _, writer in held:
            writer.close()
        server.close()


async def _hold(port: int, source: str) -> Streams:
    """A connection from the loopback address ``source`` whose request head never ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /readyz HTTP/1.1\r\n")
    await writer.drain()
    return reader, writer


async def _closed_soon(reader: asyncio.StreamReader) -> bool:
    """Whether the server has closed the connection (or does within a moment)."""
    try:
        await asyncio.wait_for(reader.read(), 0.05)
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def _status_from(port: int, source: str, path: str = "/readyz") -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    except ConnectionError:
        return "closed"
    finally:
        writer.close()


@pytest.mark.parametrize("holders", [["127.0.0.2"], [f"127.0.0.{2 + i}" for i in range(8)]])
async def test_clients_holding_every_place_do_not_keep_the_health_checks_out(holders: list[str]) -> None:
    """Slow request heads from one address, or from eight, on every place the endpoint has: an address holds
    MAX_PER_ADDRESS at most, and a health check is answered, from this machine's own address and from an address
    that holds connections itself."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True, deadline_s=60)
    held = [await _hold(port, holders[i % len(holders)]) for i in range(metrics_module.MAX_CONNECTIONS)]
    try:
        await asyncio.sleep(0.2)
        assert await _status_from(port, "127.0.0.1") == "HTTP/1.1 200 OK"
        assert await _status_from(port, holders[0]) == "HTTP/1.1 200 OK"
        closed = await asyncio.gather(*(_closed_soon(reader) for reader, _ in held))
        still = Counter(w.get_extra_info("sockname")[0] for (_, w), gone in zip(held, closed, strict=True) if not gone)
        assert still and max(still.values()) <= metrics_module.MAX_PER_ADDRESS
    finally:
        for _, writer in held:
            writer.close()
        server.close()


class _CountedRenders(Metrics):
    def __init__(self) -> None:
        super().__init__()
        self.renders = 0

    def render(self) -> bytes:
        self.renders += 1
        return super().render()


async def test_a_flood_of_scrapes_renders_the_metrics_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many scrapes arrive within RENDER_EVERY_S, the registry is rendered once and each gets that text;
    once it is older, the next scrape renders it again, with what was counted since."""
    clock = [1000.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: clock[0])
    m = _CountedRenders()
    port = free_port()
    server = await serve_metrics(m, "127.0.0.1", port, lambda: True)
    try:
        bodies = {(await _get(port, "/metrics"))[1] for _ in range(20)}
        assert m.renders == 1 and len(bodies) == 1
        m.transaction(0.01)
        clock[0] += metrics_module.RENDER_EVERY_S
        status, body = await _get(port, "/metrics")
        assert m.renders == 2 and status.endswith("200 OK") and "puente_transactions_total 1.0" in body
    finally:
        server.close()


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/nope"])
async def test_a_head_is_answered_as_its_get_without_the_body(path: str) -> None:
    """HEAD gets the status and headers GET gets, Content-Length included, and no body."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True)
    try:
        answer = await _answer_to(port, f"HEAD {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        head, _, body = answer.partition(b"\r\n\r\n")
        status, got = await _get(port, path)
        assert head.decode().splitlines()[0] == status and body == b""
        assert f"Content-Length: {len(got.encode())}" in head.decode() and got
    finally:
        server.close()


async def test_a_query_string_is_ignored_on_every_path() -> None:
    """/healthz?x and /readyz?x answer as /healthz and /readyz do, as /metrics?x answers as /metrics."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: False)
    try:
        assert (await _get(port, "/metrics?x"))[0].endswith("200 OK")
        assert (await _get(port, "/healthz?x=1"))[0].endswith("200 OK")
        assert (await _get(port, "/readyz?probe"))[0].endswith("503 Service Unavailable")
        assert (await _get(port, "/nope?metrics"))[0].endswith("404 Not Found")
    finally:
        server.close()


@pytest.mark.parametrize(("host", "allowed"), [
    (b"127.0.0.1", True), (b"127.0.0.1:9464", True), (b"10.1.2.3:9464", True), (b"[::1]:9464", True), (b"[::1]", True),
    (b"localhost:9464", True), (b"LOCALHOST", True), (b"broker-1:9464", True), (b"Broker-1", True),
    (None, False), (b"", False), (b"rebound.attacker.example:9464", False), (b"broker-2:9464", False),
    (b"localhost.attacker.example", False), (b"127.0.0.1.nip.io:9464", False), (b"::1", False), (b"[::1", False),
    (b"[localhost]:9464", False), (b"127.0.0.1:", False), (b"127.0.0.1:0", False), (b"127.0.0.1:99999", False),
    (b"127.0.0.1:94x", False), (b"[::1]:9464:1", False), (b"broker-1\xff", False), (b"127.0.0.1 :9464", False),
])
def test_a_host_names_the_endpoint_only_as_an_address_localhost_or_a_listed_name(host: bytes | None,
                                                                                   allowed: bool) -> None:
    """Only an IP address, localhost, or a listed name (any case, with or without a valid port) passes: a name of
    anyone else's, which a DNS-rebinding page would send, never does."""
    assert host_allowed(host, frozenset({"broker-1"})) is allowed


@pytest.mark.parametrize("host", ["Host: rebound.attacker.example:{port}", "", "Host: 127.0.0.1\r\nHost: evil"])
async def test_a_request_under_a_name_not_its_own_gets_no_metrics(host: str) -> None:
    """A DNS-rebinding page (its own name, resolved to the broker's address), a request without a Host, or one with
    two, is answered 400 on every path, with none of the per-partner counts; one under the listed name is served."""
    port = free_port()
    m = Metrics()
    m.count_batch([_outcome([("USA", "WITHHOLD")])], [int(NOW_S * 1000)], "pa.ingress.SENAFRONT")
    server = await serve_metrics(m, "127.0.0.1", port, lambda: True, hosts=("broker-1",))
    try:
        for path in ("/metrics", "/readyz", "/healthz"):
            head = host.format(port=port)
            answer = await _answer_to(port, f"GET {path} HTTP/1.1\r\n{head + chr(13) + chr(10) if head else ''}\r\n"
                                      .encode())
            assert answer.startswith(b"HTTP/1.1 400 ") and b"puente_" not in answer, answer[:200]
        answer = await _answer_to(port, f"GET /metrics HTTP/1.1\r\nHost: broker-1:{port}\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200 ") and b'partner="USA"' in answer
    finally:
        server.close()


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "OPTIONS", "TRACE", "PATCH"])
async def test_only_get_and_head_are_answered(method: str) -> None:
    """Any other method is 405 with an Allow header, and no metrics."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True)
    try:
        answer = await _answer_to(port, f"{method} /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = answer.partition(b"\r\n\r\n")[0].decode().splitlines()
        assert head[0] == "HTTP/1.1 405 Method Not Allowed" and "Allow: GET, HEAD" in head
        assert b"puente_" not in answer
    finally:
        server.close()


TOKEN = b"0123456789abcdef0123456789abcdef-metrics"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-of-the-same-length-0123456789ab",
                                           "Basic " + TOKEN.decode(), "Bearer", TOKEN.decode(),
                                           "Bearer " + TOKEN.decode() + "x", "Bearer " + TOKEN.decode()[:-1]])
async def test_with_a_token_metrics_are_served_only_to_its_bearer(authorization: str | None) -> None:
    """With a token, /metrics without it, with another, or under another scheme is 401 with a WWW-Authenticate
    challenge and none of the per-partner counts; the bearer of the token (the scheme in any case) is served, and
    /healthz and /readyz stay open for a container's health check."""
    port = free_port()
    m = Metrics()
    m.count_batch([_outcome([("USA", "WITHHOLD")])], [int(NOW_S * 1000)], "pa.ingress.SENAFRONT")
    server = await serve_metrics(m, "127.0.0.1", port, lambda: True, token=TOKEN)
    try:
        sent = f"Authorization: {authorization}\r\n" if authorization is not None else ""
        answer = await _answer_to(port, f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{sent}\r\n".encode())
        head = answer.partition(b"\r\n\r\n")[0].decode().splitlines()
        assert head[0] == "HTTP/1.1 401 Unauthorized" and 'WWW-Authenticate: Bearer realm="puente-metrics"' in head
        assert b"puente_" not in answer and TOKEN not in answer
        for scheme in ("Bearer", "bearer"):
            answer = await _answer_to(port, (f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                             f"Authorization: {scheme} {TOKEN.decode()}\r\n\r\n").encode())
            assert answer.startswith(b"HTTP/1.1 200 ") and b'partner="USA"' in answer
        for path in ("/healthz", "/readyz"):
            assert (await _get(port, path))[0].endswith("200 OK")
    finally:
        server.close()


async def test_two_authorization_headers_are_refused() -> None:
    """Which of two Authorization headers a proxy passed on is unknowable: 400, as for two Host headers."""
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True, token=TOKEN)
    try:
        bearer = f"Authorization: Bearer {TOKEN.decode()}\r\n"
        answer = await _answer_to(port, f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}{bearer}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 400 ") and b"puente_" not in answer
    finally:
        server.close()


def _token_settings(tmp_path: Any, address: str, content: bytes | None, mode: int = 0o600) -> Any:
    folder = tmp_path / "metrics"
    folder.mkdir(mode=0o700, parents=True)
    path = None
    if content is not None:
        path = folder / "token"
        path.write_bytes(content)
        path.chmod(mode)
    return SimpleNamespace(metrics_token_file=path, metrics_address=address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.1.2.3"])  # noqa: S104 - the addresses refused
def test_off_loopback_without_a_token_file_the_endpoint_is_refused(tmp_path: Any, address: str) -> None:
    """Bound where others reach it, /metrics without a token would give each partner's counts to anyone: refused,
    naming the setting; on loopback no token is needed."""
    with pytest.raises(ConfigError, match="PUENTE_METRICS_TOKEN_FILE") as refused:
        metrics_module.metrics_token(_token_settings(tmp_path, address, None))
    assert address in str(refused.value) and "\n" not in str(refused.value)
    for loopback in ("127.0.0.1", "::1"):
        assert metrics_module.metrics_token(SimpleNamespace(metrics_token_file=None, metrics_address=loopback)) is None


def test_a_token_file_is_read_as_a_secret_and_must_hold_a_usable_token(tmp_path: Any) -> None:
    """The token's one line, trailing newline dropped; a file others may read, a short token or one with spaces is
    refused without showing what it holds."""
    assert metrics_module.metrics_token(_token_settings(tmp_path / "a", "0.0.0.0", TOKEN + b"\n")) == TOKEN  # noqa: S104
    with pytest.raises(ConfigError, match="others may read") as refused:
        metrics_module.metrics_token(_token_settings(tmp_path / "b", "0.0.0.0", TOKEN, 0o644))  # noqa: S104
    assert TOKEN.decode() not in str(refused.value)
    for n, bad in enumerate((b"short-token", b"0123456789abcdef 0123456789abcdef", b"\n\n", "é".encode() * 40)):
        with pytest.raises(ConfigError, match="no usable token") as refused:
            metrics_module.metrics_token(_token_settings(tmp_path / str(n), "127.0.0.1", bad))
        assert bad.decode(errors="replace").strip() not in str(refused.value) or not bad.strip()


class _Timers:
    """The event loop's timers for ``_Refusals``, on a fake clock: armed by ``call_later``, run by ``run_due`` (the
    loop's wake at ``clock[0]``), each at most once, none once cancelled. No real time passes, so the tests of the
    interval hold however slow or loaded the machine."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.armed: list[tuple[float, asyncio.TimerHandle]] = []

    def call_later(self, delay: float, callback: Any) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(self.clock[0] + delay, callback, (), asyncio.get_running_loop())
        self.armed.append((self.clock[0] + delay, handle))
        return handle

    def run_due(self) -> None:
        due = [handle for when, handle in self.armed if when <= self.clock[0] and not handle.cancelled()]
        self.armed = [(when, handle) for when, handle in self.armed if handle not in due]
        for handle in due:
            handle._run()


def _fake_timers(monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> _Timers:
    """``metrics``' clock and event loop timers, fake (only ``metrics``' names: the test's own loop runs as ever)."""
    timers = _Timers(clock)
    monkeypatch.setattr(metrics_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(metrics_module, "asyncio", SimpleNamespace(get_running_loop=lambda: timers))
    return timers


async def test_a_burst_of_refusals_is_reported_within_the_interval_with_no_refusal_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first refusal is logged at once; the rest of a burst are counted and logged once the interval ends,
    though no refusal comes after them (they used to wait for one, and a burst then silence went unreported)."""
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(metrics_module, "_log", SimpleNamespace(warning=lambda _msg, **kw: logged.append(kw)))
    clock = [1000.0]
    timers = _fake_timers(monkeypatch, clock)
    refusals = metrics_module._Refusals(every_s=60.0)
    for _ in range(1000):  # a burst within the interval, whatever the machine's speed (the clock stands still)
        refusals.note("127.0.0.1", 9464)
    assert [line["count"] for line in logged] == [1]
    clock[0] += 59.0
    timers.run_due()  # before the interval's end: nothing
    assert [line["count"] for line in logged] == [1]
    clock[0] += 1.0
    timers.run_due()  # the interval's end, no refusal since
    assert [line["count"] for line in logged] == [1, 999] and refusals.unreported == 0
    assert logged[1]["address"] == "127.0.0.1" and logged[1]["port"] == 9464


async def test_a_count_flushed_early_is_not_logged_again_by_its_overdue_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal past the interval logs the count at once; the timer armed for that count is cancelled, or a busy
    event loop running it late logged a second line within the interval (two lines at once)."""
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(metrics_module, "_log", SimpleNamespace(warning=lambda _msg, **kw: logged.append(kw)))
    clock = [1000.0]
    timers = _fake_timers(monkeypatch, clock)
    refusals = metrics_module._Refusals(every_s=60.0)
    refusals.note("127.0.0.1", 9464)  # logged at once
    clock[0] += 1.0
    refusals.note("127.0.0.1", 9464)  # counted: a timer is armed for the interval's end (1060)
    clock[0] += 69.0  # the event loop busy past the interval: the timer is overdue, not run
    refusals.note("127.0.0.1", 9464)  # past the interval: the count (2) is logged now
    clock[0] += 1.0
    refusals.note("127.0.0.1", 9464)  # counted, for a timer at the new interval's end (1130)
    timers.run_due()  # the overdue timer would run here
    assert [line["count"] for line in logged] == [1, 2] and refusals.unreported == 1
    clock[0] += 60.0
    timers.run_due()  # the new interval's end: its one refusal
    assert [line["count"] for line in logged] == [1, 2, 1] and refusals.unreported == 0


async def test_closing_the_endpoint_logs_the_refusals_not_yet_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals counted within the interval are logged when the endpoint closes: their timer would die with the
    event loop as the process stops."""
    logged: list[dict[str, Any]] = []
    made: list[Any] = []
    monkeypatch.setattr(metrics_module, "_log", SimpleNamespace(warning=lambda _msg, **kw: logged.append(kw)))

    class Kept(metrics_module._Refusals):
        def __init__(self) -> None:
            super().__init__(every_s=3600.0)
            made.append(self)

    monkeypatch.setattr(metrics_module, "_Refusals", Kept)
    port = free_port()
    server = await serve_metrics(Metrics(), "127.0.0.1", port, lambda: True)
    for _ in range(3):
        made[0].note("127.0.0.1", port)
    assert [line["count"] for line in logged] == [1]
    server.close()
    assert [line["count"] for line in logged] == [1, 2] and made[0].unreported == 0
    await server.wait_closed()
