"""The per-account page budget: requests past it answer 429, unrecorded, summed up in one record a window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import puente.commands.console as console_commands
from broker.console_accounts import Account, ConsoleAccounts, Session
from broker.kafka import KafkaConnection
from puente.cli import main
from puente.console import ConsoleConfig, create_app
from puente.console.core import Console
from puente.console.rate import PageBudget
from puente.settings import PuenteSettings

from .conftest import FakeIndex, Sink, _sign_in, local_client, served

NO_KAFKA = KafkaConnection(bootstrap="kafka:9092")  # commands reach no Kafka here: every call is stubbed

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


class Clock:
    """A console's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _console(accounts: ConsoleAccounts, sink: Sink, clock: Clock, **limits: int) -> TestClient:
    config = ConsoleConfig(lambda: FakeIndex(), accounts, sink, clock=clock, **limits)  # type: ignore[arg-type]
    return local_client(create_app(config), follow_redirects=False)


def test_requests_past_the_budget_answer_429_and_are_summed_up_in_one_record(accounts: ConsoleAccounts,
                                                                             sink: Sink) -> None:
    """Past its burst an account's pages, 404s and refusals answer 429 with Retry-After, and none is written to the
    query log; once its window is over, one record says how many were refused, from when until when."""
    clock = Clock()
    client = _console(accounts, sink, clock, page_rate=6, page_burst=3)
    assert _sign_in(client, "ana").status_code == 303
    assert [client.get("/search", params={"partner": "COL"}).status_code for _ in range(3)] == [200] * 3
    before = len(sink.records)
    for path in ("/search?partner=COL", "/nope", "/indicators?since=nonsense", "/search.csv", "/queries"):
        clock.now += timedelta(seconds=1)
        answer = client.get(path)
        assert answer.status_code == 429, path
        assert 1 <= int(answer.headers["retry-after"]) <= 10  # a token every 10 s
        assert answer.headers["content-type"].startswith("text/plain") and "Too many requests" in answer.text
        assert answer.headers["x-frame-options"] == "DENY"
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 429
    assert len(sink.records) == before  # none of the six written
    clock.now = T0 + timedelta(seconds=61)  # past the window from the first refusal (T0 + 1 s)
    assert client.get("/").status_code == 200
    summary, page = sink.records[before:]
    assert summary == {"auditor": "ana", "scope": "national", "page": "over the page rate",
                       "params": {"refused": 6, "from": "2026-11-01T10:00:01Z", "until": "2026-11-01T10:00:05Z"},
                       "results": 0}
    assert page["page"] == "home"


def test_a_flood_writes_one_record_a_window(accounts: ConsoleAccounts, sink: Sink) -> None:
    """At the default budget, 200 requests at once with arbitrary parameters: the first 60 answered and recorded,
    the other 140 refused and written as one record once the window is over; a flood over two windows, two."""
    clock = Clock()
    client = _console(accounts, sink, clock)
    assert _sign_in(client, "sam").status_code == 303
    before = len(sink.records)
    codes = [client.get("/search", params={f"k{i}": "v" * 200}).status_code for i in range(200)]
    assert codes == [200] * 60 + [429] * 140
    assert len(sink.records) - before == 60
    clock.now += timedelta(seconds=60)  # the bucket refills 60, then 60 more are refused
    codes = [client.get("/search").status_code for _ in range(121)]
    assert codes == [200] * 60 + [429] * 61
    clock.now += timedelta(seconds=60)
    assert client.get("/").status_code == 200
    summaries = [r for r in sink.records[before:] if r["page"] == "over the page rate"]
    assert [(r["auditor"], r["scope"], r["params"]["refused"]) for r in summaries] == [("sam", "USA", 140),
                                                                                     ("sam", "USA", 61)]
    assert len(sink.records) - before == 60 + 1 + 60 + 1 + 1


def test_each_account_has_its_own_budget(accounts: ConsoleAccounts, sink: Sink) -> None:
    """One account over its budget does not spend another's, even from the same client."""
    clock = Clock()
    ana = _console(accounts, sink, clock, page_rate=1, page_burst=2)
    sam = local_client(ana.app, follow_redirects=False)
    assert _sign_in(ana, "ana").status_code == 303 and _sign_in(sam, "sam").status_code == 303
    assert [ana.get("/").status_code for _ in range(4)] == [200, 200, 429, 429]
    assert [sam.get("/").status_code for _ in range(2)] == [200, 200]


def test_ordinary_use_within_the_default_budget_is_unchanged(accounts: ConsoleAccounts, sink: Sink) -> None:
    """A person opening 60 pages at once (tabs), then one a second, is never refused, and every page is recorded."""
    clock = Clock()
    client = _console(accounts, sink, clock)
    assert _sign_in(client, "ana").status_code == 303
    before = len(sink.records)
    assert all(client.get(f"/alerts/A-BOTH?partner={p}").status_code == 200 for p in ("USA", "COL") * 30)
    for _ in range(120):
        clock.now += timedelta(seconds=1)
        assert client.get("/search", params={"decision": "DELIVER"}).status_code == 200
    assert len(sink.records) - before == 180
    assert "over the page rate" not in {r["page"] for r in sink.records}


def test_static_files_and_the_sign_in_form_spend_no_budget(accounts: ConsoleAccounts, sink: Sink) -> None:
    """The style sheet each page loads, and anything asked without a session, are never recorded: not counted."""
    clock = Clock()
    client = _console(accounts, sink, clock, page_rate=1, page_burst=1)
    assert _sign_in(client, "ana").status_code == 303
    before = len(sink.records)
    assert all(client.get("/static/console.css").status_code == 200 for _ in range(5))
    assert len(sink.records) == before
    assert client.get("/").status_code == 200


def test_the_budget_refills_at_its_rate_up_to_its_burst() -> None:
    """A token bucket: ``burst`` at once, then one every 60/``per_minute`` seconds; the wait is told; a clock set
    back takes nothing and refills nothing."""
    budget = PageBudget(per_minute=30, burst=2)
    assert budget.admit("ana", "national", T0) == 0 and budget.admit("ana", "national", T0) == 0
    assert budget.admit("ana", "national", T0) == pytest.approx(2.0)
    assert budget.admit("ana", "national", T0 + timedelta(seconds=2)) == 0
    assert budget.admit("ana", "national", T0 - timedelta(hours=1)) == pytest.approx(2.0)
    assert budget.admit("ana", "national", T0 + timedelta(hours=1)) == 0  # refilled to the burst, no more
    assert budget.admit("ana", "national", T0 + timedelta(hours=1)) == 0
    assert budget.admit("ana", "national", T0 + timedelta(hours=1)) > 0
    assert [r.count for r in budget.due(None)] == [3]


def test_a_summary_that_cannot_be_written_goes_with_the_next(accounts: ConsoleAccounts, sink: Sink) -> None:
    """Kafka down when a window ends: its refusals are kept and written, with the next window's, in one record."""
    clock = Clock()
    client = _console(accounts, sink, clock, page_rate=1, page_burst=1)
    assert _sign_in(client, "ana").status_code == 303
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 429
    clock.now += timedelta(seconds=61)
    sink.failing = True
    assert client.get("/").status_code == 503  # the page itself is not recorded either: refused as ever
    assert client.get("/").status_code == 429
    sink.failing = False
    clock.now += timedelta(seconds=61)
    before = len(sink.records)
    assert client.get("/").status_code == 200
    assert sink.records[before]["page"] == "over the page rate" and sink.records[before]["params"]["refused"] == 2


async def test_a_tally_started_as_a_window_ends_is_written_with_no_request_after_it(sink: Sink) -> None:
    """A request just as a window ends writes that window's tally and, refused, starts the next: the flood stopping
    there, the next is written all the same once its own window ends, by the account's timer (it once went unwritten
    until the account's next request, the timer of the first window finding nothing due and ending)."""
    clock = Clock()
    console = Console(ConsoleConfig(lambda: FakeIndex(), None, sink, clock=clock))  # type: ignore[arg-type]
    console.budget = PageBudget(1, 1, window_s=0.1)  # a real loop's timer, at a tenth of a second's window
    session = Session(Account("ana", "national", T0), "token")
    assert [await console.over_rate(session) is None for _ in range(3)] == [True, False, False]
    clock.now += timedelta(seconds=0.15)  # the window is over; before the timer wakes, one more request
    assert await console.over_rate(session) is not None  # writes the first tally, and starts the second
    await asyncio.sleep(0.5)  # the timer wakes, the clock standing where it was: the second is not yet due
    clock.now += timedelta(seconds=0.2)  # now it is, and no request comes
    async with asyncio.timeout(5):
        while len(sink.records) < 2:
            await asyncio.sleep(0.02)
    assert [r["params"]["refused"] for r in sink.records] == [2, 1]
    assert sink.records[1]["params"]["from"] == "2026-11-01T10:00:00.150000Z"
    await asyncio.sleep(0.05)
    assert all(task.done() for task in console._summaries.values())  # the account holds no tally: its timer ended
    await console.stopping()


async def test_a_tally_is_written_when_the_clock_is_set_back(sink: Sink) -> None:
    """A wall clock stepped back (an hour, say) makes a tally due at once, rather than held until the clock passes
    its first refusal and a window again, to be lost with an unclean exit meanwhile."""
    clock = Clock()
    console = Console(ConsoleConfig(lambda: FakeIndex(), None, sink, clock=clock))  # type: ignore[arg-type]
    console.budget = PageBudget(1, 1, window_s=0.1)
    session = Session(Account("ana", "national", T0), "token")
    for _ in range(3):
        await console.over_rate(session)
    clock.now -= timedelta(hours=1)
    async with asyncio.timeout(5):
        while not sink.records:
            await asyncio.sleep(0.02)
    assert [r["params"]["refused"] for r in sink.records] == [2]
    await console.stopping()


async def test_a_console_stopping_while_a_tally_is_written_keeps_it(sink: Sink) -> None:
    """The console stopping while an account's timer is writing its tally (the write cancelled half way) puts the
    tally back and writes it as it stops: a flood just before a restart is not lost from the audit."""
    clock = Clock()
    slow = asyncio.Event()
    recording = sink.record

    async def record(*args: Any) -> None:
        slow.set()
        await asyncio.sleep(0.5)
        await recording(*args)

    sink.record = record  # type: ignore[method-assign]
    console = Console(ConsoleConfig(lambda: FakeIndex(), None, sink, clock=clock))  # type: ignore[arg-type]
    console.budget = PageBudget(1, 1, window_s=0.1)
    session = Session(Account("ana", "national", T0), "token")
    for _ in range(5):
        await console.over_rate(session)
    clock.now += timedelta(seconds=0.2)
    async with asyncio.timeout(5):
        await slow.wait()  # the timer is inside the write
    await console.stopping()
    assert [r["params"]["refused"] for r in sink.records] == [4]


async def test_a_console_stopping_while_one_tally_is_written_keeps_every_other_due(sink: Sink) -> None:
    """Two accounts' tallies due together, the console stopping while the first is written: both are written as it
    stops (the second, taken out with the first, was once dropped with the cancelled write)."""
    clock = Clock()
    slow = asyncio.Event()
    recording = sink.record

    async def record(*args: Any) -> None:
        slow.set()
        await asyncio.sleep(0.5)
        await recording(*args)

    sink.record = record  # type: ignore[method-assign]
    console = Console(ConsoleConfig(lambda: FakeIndex(), None, sink, clock=clock))  # type: ignore[arg-type]
    console.budget = PageBudget(1, 1, window_s=0.1)
    for name in ("ana", "ben"):
        session = Session(Account(name, "national", T0), "token")
        for _ in range(5):
            await console.over_rate(session)
    clock.now += timedelta(seconds=0.2)
    async with asyncio.timeout(5):
        await slow.wait()  # a timer is inside the first write
    await console.stopping()
    assert sorted((r["auditor"], r["params"]["refused"]) for r in sink.records) == [("ana", 4), ("ben", 4)]


async def _status(port: int, path: str, cookie: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: none\r\n"
                 f"Cookie: puente-console={cookie}\r\n"
                 "Connection: close\r\n\r\n".encode())
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).split(b" ")[1]
    finally:
        writer.close()


async def test_a_console_stopping_writes_the_refusals_not_yet_told(accounts: ConsoleAccounts, sink: Sink) -> None:
    """Served, an account's refusals whose window has not ended are written as its summary when the console stops,
    while the query log still runs: a flood just before a restart is not lost from the audit."""
    ana = next(a for a in accounts.list() if a.name == "ana")
    session = accounts.start_session(ana, datetime.now(UTC))
    async with served(accounts, sink) as port:
        codes = [await _status(port, "/integrity", session.token) for _ in range(70)]
        assert codes.count(b"429") >= 9 and "over the page rate" not in {r["page"] for r in sink.records}
    summary = sink.records[-1]
    assert summary["page"] == "over the page rate" and summary["params"]["refused"] == codes.count(b"429")


def test_the_budget_is_a_setting_that_audit_serve_passes_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PUENTE_CONSOLE_PAGE_RATE and PUENTE_CONSOLE_PAGE_BURST (60 and 60, at least 1 each) reach the console that
    `puente audit serve` runs."""
    fields = PuenteSettings.model_fields
    assert (fields["console_page_rate"].default, fields["console_page_burst"].default) == (60, 60)
    for bad in ({"console_page_rate": 0}, {"console_page_burst": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PuenteSettings(**bad)  # type: ignore[arg-type]
    given: list[ConsoleConfig] = []

    class Accounts:
        def list(self) -> list[str]:
            return ["ana"]

        def close(self) -> None:
            pass

    monkeypatch.setattr(console_commands, "_accounts", lambda *args, **kwargs: Accounts())
    monkeypatch.setattr(console_commands, "kafka", lambda *args: NO_KAFKA)
    monkeypatch.setattr(console_commands, "QueryLog", lambda *args, **kwargs: None)
    monkeypatch.setattr(console_commands, "catch_up_index", lambda *args: None)
    monkeypatch.setattr(console_commands, "serve", lambda listen, config, *args, **kwargs: given.append(config))
    monkeypatch.setattr(console_commands, "run", lambda _: None)
    monkeypatch.setenv("PUENTE_AUDIT_INDEX", str(tmp_path / "index.sqlite"))
    monkeypatch.setenv("PUENTE_CONSOLE_PAGE_RATE", "7")
    monkeypatch.setenv("PUENTE_CONSOLE_PAGE_BURST", "9")
    assert main(["audit", "serve"]) == 0
    assert [(c.page_rate, c.page_burst) for c in given] == [(7, 9)]


def test_a_page_names_its_icon_inline_so_a_view_is_one_recorded_request(ana: TestClient, sink: Sink) -> None:
    """A browser asks every page's site for /favicon.ico unless the page names an icon: signed in, that is a "not
    found" query record and a request of the budget for each page seen. Every page names an empty one inline (the
    CSP's img-src allows data:); the style sheet, the one file a page loads, is recorded nowhere."""
    for path in ("/", "/search", "/nope"):
        assert '<link rel="icon" href="data:,">' in ana.get(path).text, path
    assert "data:" in ana.get("/").headers["content-security-policy"].split("img-src", 1)[1].split(";", 1)[0]
