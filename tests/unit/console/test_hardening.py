"""Review fixes: the queries chain's head past aborted transactions, an atomic lockout, sign-in
throttling and bounded Argon2, refusals recorded or 503, and the CSV formula guard."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

import broker.oversight as oversight
from broker.audit.chain import ChainHead, ChainWriter
from broker.console_accounts import MAX_DEVICES, MAX_FAILURES, ConsoleAccounts, SignIn
from broker.kafka import KafkaConnection
from broker.oversight import CHAIN, KIND, QueryLog, last_records, query_body
from broker.topology import TopicNames
from puente.console import ConsoleConfig, create_app
from puente.console.core import UNRECORDED, LoginThrottle, csv_lines
from puente.console.views import cell
from puente.errors import AuditChainError, PuenteError
from puente.wire import Record

from .conftest import BROWSER, LOCAL, local_client, secure_client

PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
AT = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
TOPIC = "t.audit.queries"


# 1. the queries chain's head ----------------------------------------------------------------------

def _committed(offsets: list[int]) -> list[Record]:
    """Records of the console chain (seq 0, 1, ...) at ``offsets``: every other offset of the partition
    held aborted records or transaction markers, which a read_committed reader never sees."""
    writer = ChainWriter(TOPIC, 0, ChainHead(), chain=CHAIN)
    return [Record(TOPIC, 0, off, None, writer.append(KIND, query_body("ana", "national", "search", {}, i, AT)), (), 0)
            for i, off in enumerate(offsets)]


class _Partition:
    """What a read_committed reader sees of one partition: ``records`` between ``begin`` and ``end``."""

    def __init__(self, begin: int, end: int, records: list[Record]) -> None:
        self.begin, self.end, self.records = begin, end, records
        self.reads: list[int] = []

    async def read_from(self, first: int) -> list[Record]:
        self.reads.append(first)
        return [r for r in self.records if r.offset >= first]


async def test_the_head_is_found_behind_more_than_a_window_of_aborted_offsets() -> None:
    """Two committed records, then 500 offsets of aborted transactions: the window widens back to them
    instead of taking the chain for empty (and starting it again at seq 0, a fork)."""
    part = _Partition(0, 502, _committed([0, 1]))
    found = await last_records(TOPIC, part.begin, part.end, part.read_from)
    assert [r.offset for r in found.records] == [0, 1] and found.whole
    assert part.reads[0] == 502 - 64 and part.reads[-1] == 0
    one = _Partition(0, 400, _committed([0]))
    assert [r.offset for r in (await last_records(TOPIC, 0, 400, one.read_from)).records] == [0]


async def test_only_a_partition_without_any_committed_record_starts_a_chain() -> None:
    """No offsets at all, or nothing committed since offset 0: a new chain. Offsets lost to retention and
    nothing committed in what is left: the head is gone, refused."""
    assert (await last_records(TOPIC, 5, 5, _Partition(5, 5, []).read_from)).records == []
    assert (await last_records(TOPIC, 0, 300, _Partition(0, 300, []).read_from)).records == []
    with pytest.raises(AuditChainError, match="no committed record"):
        await last_records(TOPIC, 100, 300, _Partition(100, 300, []).read_from)


async def test_the_query_log_continues_its_chain_past_aborted_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    """QueryLog._head over a partition whose last 200 offsets hold no committed record: it continues
    after seq 2, not from the genesis."""
    records = _committed([0, 1, 2])
    tail = _Partition(0, 203, records)

    class Consumer:
        def assign(self, tps: Any) -> None:
            pass

        async def end_offsets(self, tps: Any) -> dict[Any, int]:
            return {tp: tail.end for tp in tps}

        async def beginning_offsets(self, tps: Any) -> dict[Any, int]:
            return {tp: tail.begin for tp in tps}

    async def settled(*args: Any, **kwargs: Any) -> None:
        pass

    @asynccontextmanager
    async def running(client: Any, *args: Any) -> AsyncIterator[Any]:
        yield client

    async def read_range(consumer: Any, tp: Any, start: int | None = None) -> AsyncIterator[Record]:
        for rec in await tail.read_from(start or 0):
            yield rec

    monkeypatch.setattr(oversight, "wait_settled", settled)
    monkeypatch.setattr(oversight, "running", running)
    monkeypatch.setattr(oversight, "reader", lambda *a, **k: Consumer())
    monkeypatch.setattr(oversight, "read_range", read_range)
    head = await QueryLog(KafkaConnection(bootstrap="unused:9092"), TopicNames("t"))._head()
    assert head.seq == 3 and head.prev == json.loads(records[-1].value)["hash"]


# 2. the lockout, counted in the file --------------------------------------------------------------

class _Meddling(PasswordHasher):
    """A cheap hasher that, the first time a password is checked, runs ``meanwhile`` (other sign-ins
    finishing while this one is in Argon2, as threads or other processes do)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.meanwhile: Callable[[], None] | None = None

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().verify(hash, password)


def _accounts(tmp_path: Path) -> tuple[ConsoleAccounts, _Meddling]:
    hasher = _Meddling()
    accounts = ConsoleAccounts.open(tmp_path / "auditor" / "a.sqlite", ("USA",), hasher=hasher)
    accounts.add("ana", "national", PASSWORD)
    return accounts, hasher


def test_failures_checked_at_once_all_count(tmp_path: Path) -> None:
    """MAX_FAILURES wrong passwords, all but one while the first is being checked: the account is
    locked (a count read before Argon2 and written after lost all but one)."""
    accounts, hasher = _accounts(tmp_path)
    with accounts:
        others: list[SignIn] = []
        hasher.meanwhile = lambda: others.extend(accounts.sign_in("ana", "wrong password!", T0)
                                                 for _ in range(MAX_FAILURES - 1))
        last = accounts.sign_in("ana", "wrong password!", T0)
        assert not any(r.locked for r in others) and last.locked
        assert accounts.sign_in("ana", PASSWORD, T0 + timedelta(minutes=1)).locked


def test_a_right_password_checked_while_the_account_was_locked_opens_nothing(tmp_path: Path) -> None:
    """The lock is read again after Argon2: the account locked meanwhile refuses the right password, and
    stays locked (a reset written late cleared the lock)."""
    accounts, hasher = _accounts(tmp_path)
    with accounts:
        hasher.meanwhile = lambda: [accounts.sign_in("ana", "wrong password!", T0) for _ in range(MAX_FAILURES)]
        result = accounts.sign_in("ana", PASSWORD, T0)
        assert result.account is None and result.locked
        assert accounts.list()[0].locked_until is not None
        assert accounts.sign_in("ana", PASSWORD, T0 + timedelta(minutes=1)).locked


def test_a_password_changed_while_the_old_one_was_checked_opens_nothing(tmp_path: Path) -> None:
    accounts, hasher = _accounts(tmp_path)
    with accounts:
        hasher.meanwhile = lambda: accounts.set_password("ana", "a new password here")
        assert accounts.sign_in("ana", PASSWORD, T0).account is None
        assert accounts.sign_in("ana", "a new password here", T0).account is not None


def test_parallel_wrong_passwords_in_threads_lock_the_account(tmp_path: Path) -> None:
    """Wrong passwords from many threads at once: the account ends locked."""
    accounts, _ = _accounts(tmp_path)
    with accounts:
        threads = [threading.Thread(target=accounts.sign_in, args=("ana", "wrong password!", T0))
                   for _ in range(MAX_FAILURES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert accounts.sign_in("ana", PASSWORD, T0).locked


class _Counting(PasswordHasher):
    """A cheap hasher whose parameters differ from ``_Meddling``'s, counting the Argon2 runs it does."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=8, parallelism=1)
        self.runs = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.runs += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.runs += 1
        return super().verify(hash, password)


def test_a_locked_account_costs_the_same_for_a_right_password_as_for_a_wrong_one(tmp_path: Path) -> None:
    """An account hashed under other Argon2 parameters, locked: a right password takes as many Argon2 runs as a
    wrong one (hashing it again first timed a right guess apart); once the lock ends, signing in upgrades it."""
    path = tmp_path / "auditor" / "a.sqlite"
    made, _ = _accounts(tmp_path)
    made.close()
    hasher = _Counting()
    with ConsoleAccounts.open(path, ("USA",), hasher=hasher) as accounts:
        for _ in range(MAX_FAILURES):
            accounts.sign_in("ana", "wrong password!", T0)
        runs = []
        for password in ("another wrong one", PASSWORD):
            hasher.runs = 0
            assert accounts.sign_in("ana", password, T0 + timedelta(minutes=1)).locked
            runs.append(hasher.runs)
        assert runs == [1, 1]
        later = T0 + timedelta(hours=1)
        assert accounts.sign_in("ana", PASSWORD, later).account is not None
        with accounts._sql() as c:
            stored = c.execute("SELECT hash FROM accounts WHERE name = 'ana'").fetchone()[0]
        assert not hasher.check_needs_rehash(stored)
        assert accounts.sign_in("ana", PASSWORD, later).account is not None


# 3. sign-in floods ----------------------------------------------------------------------------------

def test_the_throttle_limits_each_address_and_all_together() -> None:
    now = [0.0]
    throttle = LoginThrottle(per_address=2, overall=3, window_s=60, clock=lambda: now[0])
    assert throttle.admit("a") is None and throttle.admit("a") is None
    assert throttle.admit("a") == "address"
    assert throttle.admit("b") is None
    assert throttle.admit("c") == "all"
    now[0] = 61.0
    assert throttle.admit("a") is None and throttle.admit("c") is None
    assert [throttle.record_refusal() for _ in range(4)] == [True, True, True, False]


def test_the_throttle_counts_an_ipv6_client_by_its_64_as_the_gate_does() -> None:
    """Every address of one /64 is one client (one host is given a whole /64), an IPv4-mapped one is its IPv4
    address; another /64 is another client."""
    throttle = LoginThrottle(per_address=2, overall=10, window_s=60, clock=lambda: 0.0)
    assert throttle.admit("2001:db8:0:1::1") is None and throttle.admit("2001:db8:0:1::ffff:2") is None
    assert throttle.admit("2001:db8:0:1:abcd::3") == "address"
    assert throttle.admit("2001:db8:0:2::1") is None
    assert throttle.admit("192.0.2.1") is None and throttle.admit("::ffff:192.0.2.1") is None
    assert throttle.admit("192.0.2.1") == "address"


def test_one_host_with_a_64_does_not_spend_the_overall_limit_and_keep_auditors_out(accounts: ConsoleAccounts,
                                                                                    sink: Any) -> None:
    """Sign-ins from many addresses of one /64 are held to the per-address limit; an auditor elsewhere, with no
    device token, still signs in."""
    app = create_app(ConsoleConfig(_no_index, accounts, sink, login_per_address=3, login_overall=6))

    def attempt(client: TestClient, name: str, password: str) -> int:
        return client.post("/login", data={"name": name, "password": password,
                                           "form_token": _token(client)}).status_code

    codes = [attempt(local_client(app, follow_redirects=False, client=(f"2001:db8:0:1::{i + 1:x}", 5000)),
                     "nobody", "wrong password!") for i in range(8)]
    assert codes == [401] * 3 + [429] * 5
    assert sink.records[-1]["params"] == {"limit": "address"}
    assert attempt(local_client(app, follow_redirects=False, client=("192.0.2.10", 5000)), "ana", PASSWORD) == 303


def test_a_flood_from_elsewhere_does_not_keep_out_a_browser_with_a_device_token() -> None:
    """The overall budget spent by a flood: an attempt bringing a live device token is held to its own
    limit for its account, wherever it comes from, and counted there alone; without one it is refused."""
    now = [0.0]
    throttle = LoginThrottle(per_address=2, overall=2, window_s=60, clock=lambda: now[0])
    assert throttle.admit("x") is None and throttle.admit("y") is None and throttle.admit("z") == "all"
    assert throttle.admit("a1", "dev") is None and throttle.admit("a2", "dev") is None
    assert throttle.admit("a3", "dev") == "all"  # the account's own limit, whatever the address
    assert throttle.admit("a3", "other") is None
    assert throttle.admit("x", "dev2") is None and throttle.admit("x", "dev2") is None
    assert throttle.admit("x", "dev2") == "all"  # its own limit spent, the first limit it met refuses it
    assert len(throttle._all) == 2 and throttle._by_address == {"x": 1, "y": 1}  # what devices passed is not there
    now[0] = 61.0
    assert throttle.admit("a3", "dev") is None and not throttle._by_holder.get("other")


def test_a_flood_from_the_same_address_does_not_keep_out_a_browser_with_a_device_token() -> None:
    """Every client behind one proxy has its address: once they spend its limit, an attempt bringing a live
    device token is held to its account's own limit; without one it is refused."""
    throttle = LoginThrottle(per_address=2, overall=100, window_s=60, clock=lambda: 0.0)
    assert throttle.admit("proxy") is None and throttle.admit("proxy") is None
    assert throttle.reached("proxy") == "address" and throttle.admit("proxy") == "address"
    assert throttle.admit("proxy", "dev") is None and throttle.admit("proxy", "dev") is None
    assert throttle.admit("proxy", "dev") == "address"
    assert throttle.admit("proxy", "dev2") is None and throttle.reached("elsewhere") is None


def test_signing_in_again_and_again_with_a_device_does_not_spend_the_overall_limit(accounts: ConsoleAccounts,
                                                                                 sink: Any) -> None:
    """Every sign-in gives the browser a fresh device token: the budget a device adds is its account's, so one
    client with its own password signing in again and again is held to it, and what it spends past the limits
    is not counted against them: an auditor elsewhere, with no device token, still signs in."""
    app = create_app(ConsoleConfig(_no_index, accounts, sink, login_per_address=3, login_overall=6))

    def attempt(client: TestClient, name: str) -> int:
        return client.post("/login", data={"name": name, "password": PASSWORD,
                                           "form_token": _token(client)}).status_code

    sam = secure_client(app, follow_redirects=False, client=("192.0.2.9", 5000))
    codes = [attempt(sam, "sam") for _ in range(12)]
    assert codes == [303] * 6 + [429] * 6  # 3 under the address limit, 3 past it on the account's own budget
    other = secure_client(app, follow_redirects=False, client=("198.51.100.7", 5000))
    assert attempt(other, "ana") == 303


def test_behind_a_proxy_a_guesser_does_not_keep_out_an_auditors_browser(accounts: ConsoleAccounts,
                                                                        sink: Any) -> None:
    """Every client has the proxy's address: wrong sign-ins spend its limit, then a browser without a device token
    is refused 429; ana's browser with its token still signs her in, and her token lets no other name past."""
    app = create_app(ConsoleConfig(_no_index, accounts, sink, login_per_address=3))
    proxy = ("10.0.0.5", 5000)

    def attempt(client: TestClient, name: str, password: str) -> int:
        return client.post("/login", data={"name": name, "password": password,
                                           "form_token": _token(client)}).status_code

    browser = secure_client(app, follow_redirects=False, client=proxy)
    assert attempt(browser, "ana", PASSWORD) == 303
    guesser = secure_client(app, follow_redirects=False, client=proxy)
    assert [attempt(guesser, "nobody", "wrong password!") for _ in range(2)] == [401, 401]  # ana's was the first
    assert attempt(guesser, "ana", PASSWORD) == 429
    assert sink.records[-1]["params"] == {"limit": "address"}
    assert attempt(browser, "ana", PASSWORD) == 303
    assert attempt(browser, "sam", "wrong password!") == 429
    assert sink.records[-1]["params"] == {"limit": "address"}


def test_a_device_token_lets_its_own_account_past_the_lock_and_nobody_else(tmp_path: Path) -> None:
    """A guesser locks ana's account; her browser's device token still signs her in (and the lock stays for
    everyone else); the token is used once, and is no use for another account, after a password change, or
    after DEVICE_DAYS; MAX_FAILURES failures through it end it."""
    accounts, _ = _accounts(tmp_path)
    with accounts:
        accounts.add("ben", "USA", PASSWORD)
        first = accounts.sign_in("ana", PASSWORD, T0)
        assert first.account is not None and first.device and accounts.device(first.device, T0) == "ana"
        for _ in range(MAX_FAILURES):
            accounts.sign_in("ana", "wrong password!", T0)
        assert accounts.sign_in("ana", PASSWORD, T0).locked
        again = accounts.sign_in("ana", PASSWORD, T0, first.device)
        assert again.account is not None and again.device and again.device != first.device
        assert accounts.device(first.device, T0) is None  # used once
        assert accounts.sign_in("ana", PASSWORD, T0, first.device).locked
        assert accounts.list()[0].locked_until is not None  # the lock holds for everyone else
        assert accounts.sign_in("ben", "wrong password!", T0).account is None
        assert accounts.sign_in("ben", PASSWORD, T0, again.device).account is not None  # ben's lock not held
        for _ in range(MAX_FAILURES):
            accounts.sign_in("ben", "wrong password!", T0)
        assert accounts.sign_in("ben", PASSWORD, T0, again.device).locked  # ana's token is not ben's
        # Failures through the token count against it alone, and end it.
        token = again.device
        for _ in range(MAX_FAILURES - 1):
            assert not accounts.sign_in("ana", "wrong password!", T0, token).locked
        assert accounts.device(token, T0) == "ana"
        assert accounts.sign_in("ana", "wrong password!", T0, token).account is None
        assert accounts.device(token, T0) is None and accounts.sign_in("ana", PASSWORD, T0, token).locked
        # Too old, or the password changed: no longer a device.
        late = accounts.sign_in("ana", PASSWORD, T0 + timedelta(minutes=20)).device
        assert accounts.device(late, T0 + timedelta(days=31)) is None
        accounts.set_password("ana", "a new password here")
        assert accounts.device(late, T0 + timedelta(minutes=21)) is None


def test_an_account_keeps_its_newest_devices_only(tmp_path: Path) -> None:
    accounts, _ = _accounts(tmp_path)
    with accounts:
        tokens = [accounts.sign_in("ana", PASSWORD, T0 + timedelta(seconds=i)).device for i in range(MAX_DEVICES + 3)]
        live = [t for t in tokens if accounts.device(t, T0) == "ana"]
        assert live == tokens[-MAX_DEVICES:]


def _token(client: TestClient) -> str:
    return client.get("/login").text.split('name="form_token" value="', 1)[1].split('"', 1)[0]


def _no_index() -> Any:
    raise PuenteError("the audit index is being rebuilt")


def test_too_many_attempts_from_one_address_are_answered_429_and_recorded(accounts: ConsoleAccounts,
                                                                          sink: Any) -> None:
    client = local_client(create_app(ConsoleConfig(_no_index, accounts, sink, login_per_address=3)),
                          follow_redirects=False)
    token = _token(client)
    form = {"name": "ana", "password": "wrong password!", "form_token": token}
    assert [client.post("/login", data=form).status_code for _ in range(3)] == [401, 401, 401]
    refused = client.post("/login", data=form)
    assert refused.status_code == 429 and refused.text.count("\n") == 1 and "wrong" not in refused.text
    assert sink.records[-1]["page"] == "sign-in throttled" and sink.records[-1]["params"] == {"limit": "address"}
    sink.failing = True
    assert client.post("/login", data=form).status_code == 503


def test_an_auditor_signs_in_with_her_browser_while_others_flood_and_lock_her_account(
        accounts: ConsoleAccounts, sink: Any) -> None:
    """The console end to end: ana signs in and her browser keeps a device token; a flood from other
    addresses spends the overall limit and locks her account; another browser is refused, 429 or locked;
    ana, with her browser, from a new address, still signs in, and the page says nothing of tokens."""
    app = create_app(ConsoleConfig(_no_index, accounts, sink, login_per_address=6, login_overall=7))
    browser = secure_client(app, follow_redirects=False, client=("10.0.0.5", 5000))

    def attempt(client: TestClient, password: str) -> int:
        form = {"name": "ana", "password": password, "form_token": _token(client)}
        return client.post("/login", data=form).status_code

    assert attempt(browser, PASSWORD) == 303
    assert browser.cookies.get("__Host-puente-device")
    flood = [secure_client(app, follow_redirects=False, client=(f"10.9.9.{i}", 5000)) for i in range(3)]
    assert [attempt(c, "wrong password!") for c in flood for _ in range(2)] == [401] * 6
    assert sink.records[-1]["params"] == {"locked": "yes"}
    stranger = secure_client(app, follow_redirects=False, client=("10.9.9.9", 5000))
    assert attempt(stranger, PASSWORD) == 429
    browser_elsewhere = secure_client(app, follow_redirects=False, client=("192.0.2.7", 5000),
                                     cookies={"__Host-puente-device": browser.cookies["__Host-puente-device"]})
    form = {"name": "ana", "password": PASSWORD, "form_token": _token(browser_elsewhere)}
    answer = browser_elsewhere.post("/login", data=form)
    assert answer.status_code == 303
    token = answer.cookies["__Host-puente-device"]
    # A made-up token is no device.
    forged = secure_client(app, follow_redirects=False, client=("10.9.9.8", 5000),
                           cookies={"__Host-puente-device": "x" * 43})
    assert attempt(forged, PASSWORD) == 429
    # Ana's token lets ana past the overall limit, not guesses at another account.
    accounts.add("ben", "USA", PASSWORD)
    other = secure_client(app, follow_redirects=False, client=("192.0.2.9", 5000),
                          cookies={"__Host-puente-device": token})
    form = {"name": "ben", "password": "wrong password!", "form_token": _token(other)}
    assert other.post("/login", data=form).status_code == 429
    assert sink.records[-1]["page"] == "sign-in throttled" and sink.records[-1]["params"] == {"limit": "all"}
    # A sign-in that cannot be recorded is refused and uses nothing up: the browser's token still works.
    sink.failing = True
    again = secure_client(app, follow_redirects=False, client=("192.0.2.8", 5000),
                          cookies={"__Host-puente-device": token})
    answer = again.post("/login", data={"name": "ana", "password": PASSWORD, "form_token": _token(again)})
    assert answer.status_code == 503 and "set-cookie" not in answer.headers
    assert accounts.device(token, https=True) == "ana"


async def test_argon2_checks_run_two_at_a_time(accounts: ConsoleAccounts, sink: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Six sign-ins at once: at most two passwords are checked at the same time."""
    running, most = [0], [0]
    lock = threading.Lock()
    real = accounts.check

    def sign_in(*args: Any, **kwargs: Any) -> SignIn:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(accounts, "check", sign_in)
    app = create_app(ConsoleConfig(_no_index, accounts, sink))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=LOCAL, headers=BROWSER) as client:
        page = (await client.get("/login")).text
        token = page.split('name="form_token" value="', 1)[1].split('"', 1)[0]
        form = {"name": "nobody", "password": "wrong password!", "form_token": token}
        answers = await asyncio.gather(*(client.post("/login", data=form) for _ in range(6)))
    assert [a.status_code for a in answers] == [401] * 6
    assert most[0] == 2


# 5. refusals are recorded, or 503 -------------------------------------------------------------------

def test_an_index_failure_that_cannot_be_recorded_says_so(accounts: ConsoleAccounts, sink: Any) -> None:
    client = local_client(create_app(ConsoleConfig(_no_index, accounts, sink)), follow_redirects=False)
    form = {"name": "ana", "password": PASSWORD, "form_token": _token(client)}
    assert client.post("/login", data=form).status_code == 303
    assert client.get("/").status_code == 503 and "being rebuilt" in client.get("/").text
    # A partner's auditor is not shown the index's own error (it names the file): only that it failed.
    scoped = local_client(create_app(ConsoleConfig(_no_index, accounts, sink)), follow_redirects=False)
    assert scoped.post("/login", data={**form, "name": "sam", "form_token": _token(scoped)}).status_code == 303
    answer = scoped.get("/")
    assert answer.status_code == 503 and "being rebuilt" not in answer.text
    assert "operator has the details" in answer.text
    sink.failing = True
    answer = client.get("/")
    assert answer.status_code == 503 and UNRECORDED in answer.text and "being rebuilt" not in answer.text


def test_an_expired_sign_in_form_is_recorded_or_503(accounts: ConsoleAccounts, sink: Any) -> None:
    client = local_client(create_app(ConsoleConfig(_no_index, accounts, sink)), follow_redirects=False)
    _token(client)
    form = {"name": "ana", "password": PASSWORD, "form_token": "not the form's"}
    assert client.post("/login", data=form).status_code == 400
    assert sink.records[-1] == {"auditor": "(not checked)", "scope": "-", "page": "sign-in refused",
                                "params": {"form": "expired"}, "results": 0}
    sink.failing = True
    assert client.post("/login", data=form).status_code == 503


def test_sign_in_and_sign_out_forms_are_read_only_small_and_as_utf8(accounts: ConsoleAccounts, sink: Any) -> None:
    """The sign-in and sign-out forms are posted by anyone: a body over a few kilobytes (whatever Content-Length
    says), too many fields, a multipart body (whose parts name their own charset: UTF-7 makes lone surrogates) or
    bytes that are not UTF-8 are refused before they are read whole; a sign-in so refused is recorded, and a
    sign-out without a session reads nothing. A token of any text compares (no 500, the attempt recorded)."""
    client = local_client(create_app(ConsoleConfig(_no_index, accounts, sink)), follow_redirects=False)
    token = _token(client)
    form = {"name": "ana", "password": "wrong password!!", "form_token": token}
    refused = {"auditor": "(not checked)", "scope": "-", "page": "sign-in refused", "params": {"form": "unreadable"},
               "results": 0}
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    bodies: list[tuple[dict[str, str], Any]] = [
        (urlencoded, b"name=ana&password=" + b"x" * 5000),
        (urlencoded, (f"form_token={token}&" + "&".join(f"f{i}=1" for i in range(20))).encode()),
        (urlencoded, f"form_token={token}&name=%ff%fe&password=x".encode()),
        (urlencoded, f"form_token={token}&name=\xe9&password=x".encode("latin-1")),
        ({"content-type": "multipart/form-data; boundary=b"},
         (f'--b\r\nContent-Disposition: form-data; name="form_token"\r\n\r\n{token}\r\n--b\r\n'
          'Content-Disposition: form-data; name="name"\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n'
          '+2AA-\r\n--b--\r\n').encode()),
    ]
    for headers, body in bodies:
        sink.records.clear()
        assert client.post("/login", content=body, headers=headers).status_code == 400
        assert sink.records == [refused]

    def chunks() -> Any:  # no Content-Length: refused as it streams
        yield b"name=ana&password="
        for _ in range(100):
            yield b"x" * 1000
    assert client.post("/login", content=chunks(), headers=urlencoded).status_code == 400

    sink.records.clear()
    assert client.post("/login", data={**form, "form_token": "\u00e9"}).status_code == 400
    surrogate = b"name=ana&password=x&form_token=%ED%A0%80"  # a lone surrogate's bytes: not UTF-8
    assert client.post("/login", content=surrogate, headers=urlencoded).status_code == 400
    assert [r["params"] for r in sink.records] == [{"form": "expired"}, {"form": "unreadable"}]
    answer = client.post("/login", data={**form, "name": "an\u00e1"})
    assert answer.status_code == 401 and sink.records[-1]["page"] == "sign-in refused"

    assert client.post("/logout", content=b"x" * 100_000, headers=urlencoded).status_code == 303  # no session
    assert client.post("/login", data={**form, "password": PASSWORD}).status_code == 303
    assert client.post("/logout", data={"csrf": "\u00e9"}).status_code == 400
    assert client.post("/logout", content=b"csrf=" + b"x" * 5000, headers=urlencoded).status_code == 400


# 4. the CSV formula guard ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["=1+1", " =1+1", "\u3000=1", "+1", "-1", "@SUM(A1)", "\uff1d1+1", "\uff0b1",
                                  "\uff0d1", "\uff20A", "\tx", "\rx"])
def test_a_cell_that_may_run_as_a_formula_is_led_by_a_quote(text: str) -> None:
    assert cell(text) == "'" + text


@pytest.mark.parametrize("text", ["a=1", "1-2", "", "x@y", " plain", "-"])
def test_other_cells_are_left_as_they_are(text: str) -> None:
    assert cell(text) == text


@pytest.mark.parametrize(("value", "written"), [(-1500, "-1500"), (-0.5, "-0.5"), (3, "3"), (True, "True"),
                                                (False, "False"), (float("-inf"), "-inf")])
def test_a_number_is_written_as_a_number_never_led_by_a_quote(value: Any, written: str) -> None:
    """Only text can hold a formula: a negative latency stays a number in the sheet."""
    assert cell(value) == written


def test_the_indicators_csv_writes_its_placeholder_and_negative_numbers_as_they_are() -> None:
    """The withheld table's "-" (no rule) and a negative latency are written as they are; a text "-1" is led by a quote
    (every field is in double quotes: ``csv.QUOTE_ALL``)."""
    lines = "".join(csv_lines(["reason", "partner", "p50_ms", "note"], iter([["-", "USA", -1500, "-1"]])))
    assert lines.splitlines()[1] == '"-","USA","-1500","\'-1"'
