"""The lock and the audit agree: a sign-in attempt the console cannot record (503) counts for nothing, and tells a
guesser nothing either; and however slow the record, no check is made against a count that is not yet written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from broker.console_accounts import MAX_DEVICES, MAX_FAILURES, ConsoleAccounts, Counted
from broker.oversight import QueryLogUncertain
from puente.console import ConsoleConfig, create_app
from puente.errors import PuenteError

from .conftest import BROWSER, LOCAL, PASSWORD, FakeIndex, Sink

WRONG = "not the password at all"
AT = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_wrong_passwords_that_cannot_be_recorded_do_not_lock_the_account(
        make_client: Callable[..., TestClient], sign_in: Callable[..., Any], sink: Sink) -> None:
    """MAX_FAILURES wrong passwords answered 503 (the audit unwritable) leave the account open; recorded, the same
    lock it, each failure in the audit."""
    sink.failing = True
    for _ in range(MAX_FAILURES):
        assert sign_in(make_client(), "ana", WRONG).status_code == 503
    sink.failing = False
    assert sign_in(make_client(), "ana").status_code == 303
    for _ in range(MAX_FAILURES):
        assert sign_in(make_client(), "ana", WRONG).status_code == 401
    assert sign_in(make_client(), "ana").status_code == 401  # locked: the right password opens nothing
    refused = [r for r in sink.records if r["page"] == "sign-in refused" and r["auditor"] == "ana"]
    assert len(refused) == MAX_FAILURES + 1 and refused[MAX_FAILURES - 1]["params"] == {"locked": "yes"}


def test_a_right_password_that_cannot_be_recorded_is_answered_as_a_wrong_one(
        make_client: Callable[..., TestClient], sign_in: Callable[..., Any], sink: Sink) -> None:
    """With the audit unwritable, a right and a wrong password get the same 503 and set no cookie (a device token set
    only for the right one would tell a guesser, whose failures are not counted then, that it was right)."""
    sink.failing = True
    right, wrong = sign_in(make_client(), "ana"), sign_in(make_client(), "ana", WRONG)
    assert right.status_code == wrong.status_code == 503 and right.text == wrong.text
    assert "set-cookie" not in right.headers and "set-cookie" not in wrong.headers


class HeldLog:
    """A query log that writes one record at a time, in the order asked (as the real one, on its one writer), and
    holds each until ``gate`` is set: a slow log. The records numbered in ``failing`` (from 1) fail."""

    def __init__(self, failing: tuple[int, ...] = ()) -> None:
        self.records: list[dict[str, Any]] = []
        self.asked = 0
        self.failing = failing
        self.uncertain = False  # the failing ones fail at their commit, whose outcome is unknown
        self.gate = asyncio.Event()
        self._turn = asyncio.Lock()
        self._arrived = asyncio.Condition()

    async def record(self, auditor: str, scope: str, page: str, params: Mapping[str, Any], results: int) -> None:
        async with self._arrived:
            self.asked += 1
            number = self.asked
            self._arrived.notify_all()
        async with self._turn:
            await self.gate.wait()
            if number in self.failing:
                raise (QueryLogUncertain if self.uncertain else PuenteError)("Kafka at x could not be reached")
            self.records.append({"auditor": auditor, "page": page, "params": dict(params)})

    async def asked_for(self, count: int) -> None:
        """Until ``count`` records have been asked for (each asked once its password was checked)."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: self.asked >= count), 30)


@pytest.fixture
async def held_console(accounts: ConsoleAccounts) -> Any:
    """A console over a ``HeldLog``, its client (one address, a sign-in form open) and a sign-in attempt to send."""
    log = HeldLog()
    app = create_app(ConsoleConfig(lambda: FakeIndex(), accounts, log, login_per_address=100, login_overall=100))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=LOCAL,
                                  headers=BROWSER) as client:
        page = (await client.get("/login")).text
        token = page.split('name="form_token" value="', 1)[1].split('"', 1)[0]

        def attempt(password: str) -> asyncio.Task[httpx2.Response]:
            form = {"name": "ana", "password": password, "form_token": token, "next": "/"}
            return asyncio.ensure_future(client.post("/login", data=form))

        yield log, attempt


async def test_a_burst_of_guesses_on_a_slow_log_locks_before_the_right_password(held_console: Any) -> None:
    """Nine wrong passwords checked while none of their records is written yet, then the right one: the fifth locks
    the account, the right password is refused, and the records from the fifth on say locked."""
    log, attempt = held_console
    wrong = [attempt(f"wrong guess number {i}") for i in range(9)]
    await log.asked_for(9)
    right = attempt(PASSWORD)
    await log.asked_for(10)
    log.gate.set()
    answers = await asyncio.gather(*wrong, right)
    assert [a.status_code for a in answers] == [401] * 10 and "set-cookie" not in answers[-1].headers
    assert [r["page"] for r in log.records] == ["sign-in refused"] * 10
    assert sorted(len(r["params"]) for r in log.records) == [0] * 4 + [1] * 6  # 4 open, 5th locks, 5 more locked
    assert log.records[-1]["params"] == {"locked": "yes"}  # the right password's


async def test_a_wrong_password_answered_503_takes_back_its_own_count_and_lock(held_console: Any,
                                                                                accounts: ConsoleAccounts) -> None:
    """MAX_FAILURES - 1 failures recorded; the next locks the account, and a right password checked meanwhile is
    refused; that failure's record fails (503): the lock it set goes, the earlier failures stay (one more locks)."""
    log, attempt = held_console
    log.gate.set()
    for i in range(MAX_FAILURES - 1):
        assert (await attempt(f"wrong guess number {i}")).status_code == 401
    log.gate.clear()
    log.failing = (MAX_FAILURES,)
    last = attempt("the locking guess")
    await log.asked_for(MAX_FAILURES)
    right = attempt(PASSWORD)
    await log.asked_for(MAX_FAILURES + 1)
    log.gate.set()
    assert (await last).status_code == 503 and (await right).status_code == 401
    assert log.records[-1]["params"] == {"locked": "yes"}  # the right password was refused as locked
    assert accounts.list()[0].locked_until is None
    assert (await attempt("one more guess")).status_code == 401 and log.records[-1]["params"] == {"locked": "yes"}


async def test_a_wrong_password_whose_record_may_have_landed_keeps_its_count(held_console: Any,
                                                                              accounts: ConsoleAccounts) -> None:
    """A failure's record whose commit was sent and failed (``QueryLogUncertain``) may be in the audit: answered 503,
    its count and the lock it made stay, so the audit never shows more failures than the lock counted; a right
    password after it is refused as locked."""
    log, attempt = held_console
    log.gate.set()
    for i in range(MAX_FAILURES - 1):
        assert (await attempt(f"wrong guess number {i}")).status_code == 401
    log.failing, log.uncertain = (MAX_FAILURES,), True
    assert (await attempt("the locking guess")).status_code == 503
    assert accounts.list()[0].locked_until is not None
    assert (await attempt(PASSWORD)).status_code == 401 and log.records[-1]["params"] == {"locked": "yes"}


def test_a_right_password_answered_503_uses_nothing_up_and_clears_nothing(
        make_client: Callable[..., TestClient], sign_in: Callable[..., Any], sink: Sink,
        accounts: ConsoleAccounts) -> None:
    """At an https origin (the one kind given device tokens), with the audit unwritable, a right password (with the
    browser's device token, or MAX_DEVICES times without) mints no token, uses up none, and clears no failure: the
    browser's token still works, and the failures made before still count toward the lock."""
    browser = make_client(tls=True)
    assert sign_in(browser, "ana").status_code == 303
    token = browser.cookies["__Host-puente-device"]
    for _ in range(2):
        assert sign_in(make_client(tls=True), "ana", WRONG).status_code == 401
    sink.failing = True
    answer = sign_in(browser, "ana")
    assert answer.status_code == 503 and "set-cookie" not in answer.headers
    for _ in range(MAX_DEVICES):
        assert sign_in(make_client(tls=True), "ana").status_code == 503
    assert accounts.device(token, https=True) == "ana"
    sink.failing = False
    for _ in range(MAX_FAILURES - 2):
        assert sign_in(make_client(tls=True), "ana", WRONG).status_code == 401
    assert sink.records[-1]["params"] == {"locked": "yes"}
    assert sign_in(browser, "ana").status_code == 303  # her token, kept, lets her past the lock


def _failures(accounts: ConsoleAccounts, count: int) -> list[Counted]:
    made = [accounts.check("ana", WRONG, AT).counted for _ in range(count)]
    assert all(c is not None for c in made)
    return [c for c in made if c is not None]


@pytest.mark.parametrize("order", [1, -1])
def test_withdrawing_failures_in_any_order_leaves_the_count_as_it_was(accounts: ConsoleAccounts, order: int) -> None:
    """Two failures kept; MAX_FAILURES more checked (one locks), then all withdrawn, first to last or last to first:
    the account is open, its count two, so MAX_FAILURES - 2 more lock it."""
    _failures(accounts, 2)
    burst = _failures(accounts, MAX_FAILURES - 2)
    assert accounts.check("ana", PASSWORD, AT).locked
    for counted in burst[::order]:
        accounts.withdraw(counted)
    assert accounts.list()[0].locked_until is None
    results = [accounts.check("ana", WRONG, AT) for _ in range(MAX_FAILURES - 2)]
    assert [r.locked for r in results] == [False] * (MAX_FAILURES - 3) + [True]


def test_a_sign_in_clears_only_the_failures_its_check_saw(accounts: ConsoleAccounts) -> None:
    """A right password is checked after two failures; two more are counted while its record is written; once
    confirmed, the first two are cleared (one withdrawn late changes nothing) and the later two still count."""
    before = _failures(accounts, 2)
    checked = accounts.check("ana", PASSWORD, AT).checked
    assert checked is not None
    _failures(accounts, 2)
    assert accounts.confirm(checked, PASSWORD, AT)
    accounts.withdraw(before[0])
    results = [accounts.check("ana", WRONG, AT) for _ in range(MAX_FAILURES - 2)]
    assert [r.locked for r in results] == [False] * (MAX_FAILURES - 3) + [True]


def test_a_device_ended_by_a_failure_withdrawn_comes_back(accounts: ConsoleAccounts) -> None:
    """MAX_FAILURES failures through a device token end it; withdrawing the last brings it back, and the account's
    own count is untouched by any of them."""
    token = accounts.sign_in("ana", PASSWORD, AT).device
    made = [accounts.check("ana", WRONG, AT, token).counted for _ in range(MAX_FAILURES)]
    assert accounts.device(token, AT) is None and made[-1] is not None
    accounts.withdraw(made[-1])
    assert accounts.device(token, AT) == "ana"
    assert [accounts.check("ana", WRONG, AT).locked for _ in range(MAX_FAILURES)][-1]


def test_one_device_token_signs_in_once_however_many_checks_hold_it(accounts: ConsoleAccounts) -> None:
    """Two right passwords checked through the same device token while the account is locked, both before either is
    confirmed (each waiting on its record): the first signs in and uses the token up; the second signs no one in."""
    device = accounts.sign_in("ana", PASSWORD, AT).device
    assert device is not None
    for _ in range(MAX_FAILURES):
        accounts.check("ana", WRONG, AT)
    assert accounts.list()[0].locked_until is not None
    first, second = (accounts.check("ana", PASSWORD, AT, device) for _ in range(2))
    assert first.checked is not None and second.checked is not None
    assert accounts.confirm(first.checked, PASSWORD, AT) is not None
    assert accounts.confirm(second.checked, PASSWORD, AT) is None
