"""The lock and the audit agree: a sign-in attempt the console cannot record (503) counts for nothing, and tells a
guesser nothing either."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from broker.console_accounts import MAX_FAILURES, ConsoleAccounts

from .conftest import PASSWORD, Sink

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


def test_a_failure_left_uncounted_counts_only_when_told(accounts: ConsoleAccounts) -> None:
    """sign_in(count=False) counts no wrong password, and says which would lock; count_failure counts each as
    sign_in would have, so MAX_FAILURES lock the account."""
    for n in range(1, MAX_FAILURES + 1):
        result = accounts.sign_in("ana", WRONG, AT, count=False)
        assert result.account is None and result.failure is not None
        assert result.locked is (n == MAX_FAILURES)
        assert accounts.sign_in("ana", WRONG, AT, count=False).locked is (n == MAX_FAILURES)  # still uncounted
        assert accounts.count_failure(result.failure, AT) is (n == MAX_FAILURES)
    assert accounts.sign_in("ana", PASSWORD, AT).locked
