"""The auditors' console in a real browser (Debian's Chromium, through Playwright) over a real Kafka.

The audit is filled by the real path (agencies publish, the broker routes), indexed as the console (its own login),
and served as ``puente audit serve`` serves it (``puente.console.server.serve``: the query log on
Kafka, uvicorn on a free port). Set PUENTE_SCREENSHOT=1 to save the timeline page to
docs/console-timeline.png.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from puente_testing import Env, free_port, publish, read_topic, run_broker

from broker.access import partner_principal
from broker.audit_index import AlwaysKept, AuditIndex, Query, Scope
from broker.console_accounts import ConsoleAccounts
from broker.kafka import producer, running
from broker.oversight import QueryLog
from broker.partner import subscriber_for
from puente.console import ConsoleConfig, IndexReader
from puente.console.server import Listen, catch_up_index, serve
from puente.dev.pki import ensure_ca, issue
from puente.dev.synthetic import generate

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PUENTE_CHROMIUM", "/usr/bin/chromium")  # Debian's; never a downloaded one
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "a long console password"
T = TypeVar("T")


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a loop of its own in another thread: Playwright's sync API keeps a loop
    running in the test's thread, where ``asyncio.run`` may not start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@dataclass
class Running:
    url: str
    index: Path
    env: Env
    catch_up: Any

    def reindex(self) -> None:
        _run(self.catch_up)


@contextlib.contextmanager
def _served(env: Env, tmp_path: Path, tls: tuple[Path, Path] | None = None) -> Iterator[Running]:
    """A console over the env's audit: filled by the broker, indexed, served on a free loopback port,
    over HTTPS with ``tls`` (certificate chain, key) as `puente audit serve --tls-cert --tls-key` serves it."""
    asyncio.run(_fill(env, tmp_path / "stores"))
    console_login = env.login("console")  # as `audit serve` runs: the console's own login reads and records
    index = tmp_path / "audit" / "index.sqlite"
    catch_up = catch_up_index(env.cfg, console_login, index)
    accounts = ConsoleAccounts.open(tmp_path / "auditor" / "accounts.sqlite", env.policy.partners)
    accounts.add("ana", "national", PASSWORD)
    accounts.add("sam", "USA", PASSWORD)

    def open_index() -> IndexReader:
        return AuditIndex(index, readonly=True)

    log = QueryLog(console_login, env.names)
    listen = Listen("127.0.0.1", free_port(), *(tls or (None, None))).check()
    config = ConsoleConfig(open_index, accounts, log, deployment=env.cfg.topic_prefix,
                           envelope=AlwaysKept.of(env.policy))
    servers: list[Any] = []
    failed: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(serve(listen, config, log, catch_up=catch_up, index=index, started=servers.append))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failed.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    _wait_listening(listen.port, failed, servers)
    try:
        yield Running(listen.url, index, env, catch_up)
    finally:
        if servers:
            servers[0].should_exit = True
        thread.join(30)
        accounts.close()


@pytest.fixture
def console(env: Env, tmp_path: Path) -> Iterator[Running]:
    with _served(env, tmp_path) as running:
        yield running


def _wait_listening(port: int, failed: list[BaseException], servers: list[Any]) -> None:
    """Until the console serves: its port is bound before its first catch-up of the index (an early client waits
    in the backlog), so the index is there to read once its server is made (``servers``), not once it listens."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if failed:
            raise failed[0]
        if not servers:
            time.sleep(0.2)
            continue
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the console did not start listening")


async def _fill(env: Env, stores: Path) -> None:
    """Agencies publish, the broker routes, every partner's subscriber receipts what it received."""
    await publish(env, list(generate(60, seed=15, now=datetime.now(UTC))))
    await run_broker(env, workers=1)

    async def subscribe(pid: str) -> None:
        key_file = env.key_file(pid)
        sub = subscriber_for(env.cfg, env.login(partner_principal(pid)), pid, key_file,
                             store_path=stores / f"{pid}.sqlite")
        try:
            await sub.run(None, idle_exit_s=1.0)  # the broker has finished: caught up and quiet, it ends
        finally:
            sub.close()

    await asyncio.gather(*(subscribe(pid) for pid in sorted(env.policy.partners_with_agreements)))


async def _plant_edit(env: Env) -> None:
    """As the admin (who may write any topic), append an edited copy of a decision block to its partition."""
    records = await read_topic(env.conn, env.names.decisions)
    victim = next(r for r in records if b'"BLOCK"' in r.value)
    doc = json.loads(victim.value)
    doc["at"] = "2020-01-01T00:00:00Z"  # the edit: its hash no longer matches
    made = producer(env.conn, "puente-test-forger")
    async with running(made, env.conn, "forging an audit record"):
        await made.send_and_wait(env.names.decisions, json.dumps(doc).encode(), partition=victim.partition)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        made = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield made
        finally:
            made.close()


def _sign_in(page: Any, url: str, name: str) -> None:
    page.goto(url + "login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#auditor")
    assert page.inner_text("#auditor") == name


def _partners_listed(page: Any) -> set[str]:
    return {t.strip() for t in page.locator("#results td.partner").all_inner_texts()}


def test_an_auditor_searches_follows_an_alert_exports_and_sees_a_planted_edit(console: Running, browser: Any,
                                                                                tmp_path: Path) -> None:
    """Sign in, search, open a timeline, export CSV; after a planted edit and a catch-up, integrity flags it."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    _sign_in(page, console.url, "ana")
    assert "national scope" in page.inner_text("#scope")

    page.goto(console.url + "search?partner=COL")
    assert _partners_listed(page) == {"COL"}
    total = int(page.inner_text("#total").replace(",", ""))
    assert total == 60  # one decision per alert for COL, of whatever outcome

    page.locator("#results tbody tr[class^=decision-deliver] td.mono a").first.click()  # one COL received
    page.wait_for_selector("#timeline")
    events = page.locator("#timeline li.event")
    assert events.count() >= 1 + len(console.env.policy.partners)  # published, then a decision per partner
    assert "Published" in page.inner_text("#timeline")
    assert "Receipt" in page.inner_text("#timeline")  # the partners' subscribers acknowledged what they got
    # "why" names the policy's envelope rule for what it keeps, the agreement's rules for what they kept.
    alert_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    page.goto(console.url + f"why?alert={alert_id}&partner=COL&field=markings.classification")
    assert "kept" in page.inner_text("#why") and console.env.policy.envelope.rule in page.inner_text("#why")
    if os.environ.get("PUENTE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(ROOT / "docs" / "console-timeline.png"), full_page=True)

    page.goto(console.url + "search?partner=COL")
    with page.expect_download() as download:
        page.click("#csv")
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert len(rows) == 60 and {r["partner"] for r in rows} == {"COL"}

    page.goto(console.url + "integrity")
    assert page.locator("#no-findings").count() == 1

    _run(lambda: _plant_edit(console.env))
    console.reindex()
    page.goto(console.url + "integrity")
    findings = page.inner_text("#findings")
    assert "edited" in findings and console.env.names.decisions in findings
    assert page.locator("#chains tbody tr.bad").count() >= 1
    context.close()


def test_a_usa_auditor_cannot_see_a_decision_about_col_by_url_or_search(console: Running, browser: Any) -> None:
    """Joint oversight: COL's decisions answer 404 by URL (COL named as the partner: 400, as an unknown partner)
    and never appear in search; the national auditor
    then sees the USA auditor's queries in the audit."""
    # An alert both were sent: USA's auditor reads it by USA's reference (its ``ref``), never by its own id.
    with AuditIndex(console.index, readonly=True) as index:
        usa_sent = {r["alert_id"]: r["ref"] for decision in ("DELIVER", "DELIVER_REDACTED")
                    for r in index.search(Scope(), Query(partner="USA", decision=decision), 1, 500).rows}
        col = next(r["alert_id"] for r in index.search(Scope(), Query(partner="COL", decision="DELIVER_REDACTED"),
                                                       1, 500).rows if r["alert_id"] in usa_sent)
    usa_ref = usa_sent[col]
    assert usa_ref.startswith("ref-")
    page = browser.new_page()
    _sign_in(page, console.url, "sam")
    assert "USA" in page.inner_text("#scope")

    absent = page.goto(console.url + "alerts/NO-SUCH-ALERT")
    assert absent is not None and absent.status == 404
    nothing = page.inner_text("main")
    for path in ("dead-letters", "queries", f"alerts/{col}"):
        answer = page.goto(console.url + path)
        assert answer is not None and answer.status == 404, path
        assert page.inner_text("main") == nothing, path  # hidden reads exactly as absent
    # COL named as the partner on an alert's pages is refused as an unknown partner is, whatever the alert.
    for path in (f"alerts/{col}?partner=", f"why?alert={col}&field=subject&partner=", f"alerts/{usa_ref}?partner=",
                 "alerts/NO-SUCH-ALERT?partner="):
        told = {}
        for other in ("COL", "NOPE"):
            answer = page.goto(console.url + path + other)
            assert answer is not None and answer.status == 400, path + other
            told[other] = page.inner_text("main")
        assert told["COL"] == told["NOPE"] and "unknown partner; you may name USA" in told["COL"], path
    own = page.goto(console.url + f"alerts/{usa_ref}")  # the same alert's USA decision is the USA auditor's to see
    assert own is not None and own.status == 200
    assert "COL" not in page.inner_text("#timeline") and col not in page.content() and usa_ref in page.title()

    # Another partner named as a filter is refused as an unknown one is (the same answer for COL as for NOPE): its
    # scope holds no other partner's decisions.
    for other in ("COL", "NOPE"):
        refused = page.goto(console.url + f"search?partner={other}")
        assert refused is not None and refused.status == 400, other
        assert "unknown partner; you may name USA" in page.inner_text("main") and other not in page.inner_text("main")
    page.goto(console.url + "search")
    assert _partners_listed(page) == {"USA"}
    # Playwright's own request, not the page's: it sends what a browser's address bar would (the console answers only
    # requests from its own origin, by Sec-Fetch-Site).
    csv_text = page.request.get(console.url + "search.csv", headers={"Sec-Fetch-Site": "same-origin"}).text()
    exported = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["partner"] for r in exported} == {"USA"}
    # Every alert by USA's reference, or an alias while USA was never sent it: never an agency's own id.
    assert all(r["alert_id"].startswith(("ref-", "withheld-")) for r in exported) and col not in csv_text
    # A decision that sent USA nothing shows the decision, never the alert's type, agency or publication.
    unsent = [r for r in exported if r["decision"] not in ("DELIVER", "DELIVER_REDACTED")]
    assert unsent and all(r["alert_type"] == r["originator"] == r["ingress"] == "" for r in unsent)
    page.close()

    console.reindex()
    national = browser.new_page()
    _sign_in(national, console.url, "ana")
    national.goto(console.url + "queries")
    table = national.inner_text("#queries")
    assert "sam" in table and "USA" in table and "alert" in table
    national.close()


def test_the_console_over_https_sets_host_only_secure_cookies_and_refuses_plain_http(env: Env, tmp_path: Path) -> None:
    """`audit serve --tls-cert --tls-key` end to end: a client trusting only the CA reaches it, Chromium (trusting
    only the console's key) signs in and follows an alert with __Host- cookies, every answer carries HSTS,
    and the same port speaks no plain HTTP."""
    from playwright.sync_api import sync_playwright

    pki = tmp_path / "pki"
    chain = issue(pki, "console", ["127.0.0.1"], common="puente-console")
    ca_file, _ = ensure_ca(pki)
    cert = x509.load_pem_x509_certificate(chain.read_bytes())  # the first certificate: the console's own
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    with _served(env, tmp_path, (chain, chain)) as console:
        assert console.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(ca_file))
        typed = urllib.request.Request(console.url + "login", headers={"Sec-Fetch-Site": "none"})  # noqa: S310
        with urllib.request.urlopen(typed, context=trusting, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200
            assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
        with pytest.raises(urllib.error.URLError):  # a client that does not trust the CA is refused
            urllib.request.urlopen(console.url + "login", context=ssl.create_default_context(), timeout=10)  # noqa: S310
        plain = "http://" + console.url.removeprefix("https://")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(plain + "login", timeout=10)  # noqa: S310

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM,
                                        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"])
            try:
                page = browser.new_page()
                _sign_in(page, console.url, "ana")
                cookies = {c["name"]: c for c in page.context.cookies()}
                assert "__Host-puente-console" in cookies and "puente-console" not in cookies
                session = cookies["__Host-puente-console"]
                assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
                device = cookies["__Host-puente-device"]  # kept past the session: the lock's way round for ana
                assert device["secure"] and device["httpOnly"] and device["sameSite"] == "Strict"
                assert device["expires"] > session["expires"] and "puente-device" not in cookies
                answer = page.goto(console.url + "search?partner=COL")
                assert answer is not None and answer.status == 200
                assert answer.headers["strict-transport-security"] == "max-age=31536000"
                assert _partners_listed(page) == {"COL"}
                page.locator("#results tbody tr td.mono a").first.click()
                page.wait_for_selector("#timeline")
                assert "Published" in page.inner_text("#timeline")
            finally:
                browser.close()


def _console(env: Env, tmp_path: Path, port: int) -> subprocess.Popen[str]:
    """`puente audit serve` on ``port`` as the console's own login, over an index made at start."""
    return subprocess.Popen(
        [sys.executable, "-m", "puente", "audit", "serve", "--port", str(port), "--refresh", "0",
         "--index", str(tmp_path / "index.sqlite"), "--accounts", str(tmp_path / "accounts.sqlite")],
        env=env.env_vars("console"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the console did not start listening")


def _opener(*handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    """A client that says, as a browser's address bar does, that no other site sent it (``Sec-Fetch-Site: none``):
    the console answers nothing else but its own pages' requests."""
    client = urllib.request.build_opener(*handlers)
    client.addheaders = [*client.addheaders, ("Sec-Fetch-Site", "none")]
    return client


def _signed_in(url: str) -> urllib.request.OpenerDirector:
    """A client of the console at ``url``, signed in as ana."""
    client = _opener(urllib.request.HTTPCookieProcessor())
    with client.open(url + "login", timeout=10) as form:
        token = form.read().decode().split('name="form_token" value="', 1)[1].split('"', 1)[0]
    body = urllib.parse.urlencode({"name": "ana", "password": PASSWORD, "form_token": token, "next": "/"}).encode()
    with client.open(url + "login", body, timeout=10) as answer:  # the redirect is followed: the home page
        assert answer.status == 200
    return client


def _status(client: urllib.request.OpenerDirector, url: str) -> int:
    try:
        with client.open(url, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_a_second_console_takes_the_query_log_over_and_the_first_stops_saying_so(env: Env, tmp_path: Path) -> None:
    """Under the console's one login: a second `audit serve` on the running one's port stops in one line before it
    reaches Kafka, and the first serves on; a second on another port takes the query log over, and the first
    answers its next page 503 and exits 1 with one line naming the takeover, while the second serves."""
    accounts = ConsoleAccounts.open(tmp_path / "accounts.sqlite", env.policy.partners)
    accounts.add("ana", "national", PASSWORD)
    accounts.close()
    first_port, second_port = free_port(), free_port()
    first = _console(env, tmp_path, first_port)
    second: subprocess.Popen[str] | None = None
    try:
        _listening(first_port, first)
        url = f"http://127.0.0.1:{first_port}/"
        ana = _signed_in(url)
        assert _status(ana, url + "search") == 200

        same_port = _console(env, tmp_path, first_port)
        out, err = same_port.communicate(timeout=60)
        assert same_port.returncode == 3 and out == "", err
        assert err.strip() == (f"puente: error: cannot listen on 127.0.0.1:{first_port}: the address is in use "
                               "(another console, or another program, listens there): stop it, or give --port")
        assert _status(ana, url + "search") == 200  # nothing fenced it

        second = _console(env, tmp_path, second_port)
        _listening(second_port, second)
        # Its port is bound before it reaches Kafka: only once it answers a page has it taken the query log over.
        assert _status(_opener(), f"http://127.0.0.1:{second_port}/login") == 200
        assert _status(ana, url + "search") == 503
        out, err = first.communicate(timeout=60)
        assert first.returncode == 1, err
        said = [line for line in err.splitlines() if "puente" in line]
        assert said == [f"puente: error: another console took over the auditors' query log under the same "
                        f"transactional id ({env.cfg.topic_prefix}.console), so this one stops: run one "
                        "`puente audit serve` per deployment"], err
        assert _status(_signed_in(f"http://127.0.0.1:{second_port}/"), f"http://127.0.0.1:{second_port}/search") == 200
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.communicate(timeout=60)
