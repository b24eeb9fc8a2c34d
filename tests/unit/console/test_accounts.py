"""Auditor accounts: Argon2id hashes, scopes the policy names, lockout, hashed server-side sessions."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from broker.console_accounts import IDLE_MINUTES, MAX_FAILURES, SESSION_HOURS, ConsoleAccounts, csrf_token
from puente.errors import ConfigError, StoreError

PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _open(path: Path, partners: tuple[str, ...] = ("COL", "USA")) -> ConsoleAccounts:
    return ConsoleAccounts.open(path, partners, hasher=_hasher())


def test_the_file_is_private_and_holds_argon2id_hashes_only(tmp_path: Path) -> None:
    """Made 0600 in a 0700 folder; the password is stored as an Argon2id hash, never as itself."""
    path = tmp_path / "keys" / "auditor" / "accounts.sqlite"
    with _open(path) as accounts:
        accounts.add("ana", "national", PASSWORD)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    (hashed,) = sqlite3.connect(path).execute("SELECT hash FROM accounts").fetchone()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed


def test_a_file_others_may_read_is_refused(tmp_path: Path) -> None:
    """Password hashes readable by others: the file is refused until chmod 600."""
    path = tmp_path / "accounts.sqlite"
    _open(path).close()
    path.chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        _open(path)


def test_a_scope_the_policy_does_not_name_is_refused(tmp_path: Path) -> None:
    """Only national or a partner id of the policy: anything else fails closed when the account is made."""
    with _open(tmp_path / "a.sqlite") as accounts:
        accounts.add("sam", "USA", PASSWORD)
        for scope in ("XYZ", "usa", "", "National"):
            with pytest.raises(ConfigError, match="unknown scope"):
                accounts.add("eve", scope, PASSWORD)
        with pytest.raises(ConfigError, match="already"):
            accounts.add("sam", "USA", PASSWORD)
        with pytest.raises(ConfigError, match="characters"):
            accounts.add("bob", "USA", "short")
        assert [(a.name, a.scope) for a in accounts.list()] == [("sam", "USA")]


def test_an_account_whose_partner_the_policy_dropped_cannot_sign_in(tmp_path: Path) -> None:
    """Fail closed: a scope the current policy no longer names opens no session, and ends any open one."""
    path = tmp_path / "a.sqlite"
    with _open(path) as accounts:
        accounts.add("sam", "USA", PASSWORD)
        session = accounts.start_session(accounts.sign_in("sam", PASSWORD, T0).account, T0)  # type: ignore[arg-type]
    with _open(path, ("COL",)) as accounts:
        assert accounts.sign_in("sam", PASSWORD, T0).account is None
        assert accounts.session(session.token, T0) is None


def test_sign_in_refuses_wrong_and_unknown_alike_and_locks_after_repeated_failures(tmp_path: Path) -> None:
    """Wrong password or unknown name: no account. After MAX_FAILURES failures even the right password is
    refused until the lock expires."""
    with _open(tmp_path / "a.sqlite") as accounts:
        accounts.add("ana", "national", PASSWORD)
        unknown = accounts.sign_in("nobody", PASSWORD, T0)
        assert unknown.account is None and not unknown.known
        assert accounts.sign_in("ana", PASSWORD, T0).account is not None
        for i in range(MAX_FAILURES):
            result = accounts.sign_in("ana", "wrong password!", T0 + timedelta(seconds=i))
            assert result.account is None and result.known
        assert result.locked
        assert accounts.sign_in("ana", PASSWORD, T0 + timedelta(minutes=1)).locked
        assert accounts.list()[0].locked_until is not None
        assert accounts.sign_in("ana", PASSWORD, T0 + timedelta(hours=1)).account is not None


def test_failures_an_older_file_counted_still_count(tmp_path: Path) -> None:
    """A file whose account holds MAX_FAILURES - 1 failures in its old column: opened now, one more locks it."""
    path = tmp_path / "a.sqlite"
    with _open(path) as accounts:
        accounts.add("ana", "national", PASSWORD)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE accounts SET failures = ?", (MAX_FAILURES - 1,))
    conn.close()
    with _open(path) as accounts:
        assert accounts.sign_in("ana", "wrong password!", T0).locked
        assert accounts.sign_in("ana", PASSWORD, T0).locked


def test_sessions_are_stored_hashed_and_expire_when_idle_or_old(tmp_path: Path) -> None:
    """The token is never stored; a session ends after IDLE_MINUTES unused or SESSION_HOURS in all."""
    path = tmp_path / "a.sqlite"
    with _open(path) as accounts:
        account = accounts.add("ana", "national", PASSWORD)
        session = accounts.start_session(account, T0)
        assert len(session.token) >= 40
        assert session.token not in path.read_bytes().decode("latin-1")
        assert session.csrf == csrf_token(session.token) != session.token
        at = T0
        while at < T0 + timedelta(hours=SESSION_HOURS - 1):
            at += timedelta(minutes=IDLE_MINUTES - 1)
            assert accounts.session(session.token, at) is not None
        assert accounts.session(session.token, T0 + timedelta(hours=SESSION_HOURS, minutes=1)) is None
        idle = accounts.start_session(account, T0)
        assert accounts.session(idle.token, T0 + timedelta(minutes=IDLE_MINUTES + 1)) is None
        assert accounts.session("not-a-token", T0) is None and accounts.session(None, T0) is None


@pytest.mark.parametrize("ahead", [timedelta(hours=2), timedelta(days=2)])
def test_a_session_or_device_made_while_the_clock_ran_ahead_ends_once_it_is_set_back(tmp_path: Path,
                                                                                     ahead: timedelta) -> None:
    """A session begun (or used) and a device token made while the clock ran ahead, set back since: their limits,
    counted from those times, would last the step longer (a session left unused for days still valid). Ended;
    a few minutes' difference (clocks read moments apart) is not."""
    with _open(tmp_path / "a.sqlite") as accounts:
        account = accounts.add("ana", "national", PASSWORD)
        session = accounts.start_session(account, T0 + ahead)
        device = accounts.sign_in("ana", PASSWORD, T0 + ahead).device
        assert accounts.session(session.token, T0 + timedelta(minutes=1)) is None
        assert accounts.device(device, T0 + timedelta(minutes=1)) is None
        near = accounts.start_session(account, T0 + timedelta(minutes=3))
        near_device = accounts.sign_in("ana", PASSWORD, T0 + timedelta(minutes=3)).device
        assert accounts.session(near.token, T0) is not None and accounts.device(near_device, T0) == "ana"


def test_sign_out_password_change_and_removal_end_sessions(tmp_path: Path) -> None:
    """Every way out ends the sessions it concerns."""
    with _open(tmp_path / "a.sqlite") as accounts:
        account = accounts.add("ana", "national", PASSWORD)
        first, second, third = (accounts.start_session(account, T0) for _ in range(3))
        accounts.end_session(first.token)
        assert accounts.session(first.token, T0) is None and accounts.session(second.token, T0) is not None
        accounts.set_password("ana", "another long password")
        assert accounts.session(second.token, T0) is None
        assert accounts.sign_in("ana", PASSWORD, T0).account is None
        fourth = accounts.start_session(account, T0)
        accounts.remove("ana")
        assert accounts.session(fourth.token, T0) is None and accounts.session(third.token, T0) is None
        with pytest.raises(ConfigError, match="no account"):
            accounts.remove("ana")


@pytest.mark.parametrize("create", [False, True])
def test_another_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path, create: bool) -> None:
    """A database with other tables (a partner store) is no accounts file: refused naming --accounts, its bytes
    untouched (no accounts tables written, no switch to WAL), whether or not one may be made."""
    path = tmp_path / "feed.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alerts (alert_id TEXT PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    path.chmod(0o600)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"is not a console accounts file \(.*alerts.*\): check --accounts"):
        ConsoleAccounts.open(path, ("COL",), create=create, hasher=_hasher())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.sqlite"]


def test_an_empty_file_is_laid_out_only_when_one_may_be_made(tmp_path: Path) -> None:
    """An empty file opened to be read is refused and stays empty; opened to add an account, it is laid out."""
    path = tmp_path / "accounts.sqlite"
    path.touch(mode=0o600)
    with pytest.raises(StoreError, match=r"not a console accounts file \(empty: no tables\)"):
        ConsoleAccounts.open(path, ("COL",), create=False, hasher=_hasher())
    assert path.stat().st_size == 0
    with ConsoleAccounts.open(path, ("COL",), create=True, hasher=_hasher()) as accounts:
        accounts.add("ana", "national", PASSWORD)
    with ConsoleAccounts.open(path, ("COL",), create=False, hasher=_hasher()) as accounts:
        assert [a.name for a in accounts.list()] == ["ana"]


def test_a_partner_named_as_the_national_scope_is_refused_before_the_file_is_touched(tmp_path: Path) -> None:
    """A policy whose partner id is ``national`` would make that partner's joint-oversight accounts national ones
    (seeing every partner): the accounts are not opened at all, in one line, and no file is made."""
    path = tmp_path / "auditor" / "accounts.sqlite"
    with pytest.raises(ConfigError, match="names a partner 'national'") as refused:
        _open(path, ("national", "USA"))
    assert "\n" not in str(refused.value) and not path.exists()


@pytest.mark.parametrize("https", [True, False])
def test_a_token_is_taken_only_from_the_kind_of_origin_it_was_given_to(tmp_path: Path, https: bool) -> None:
    """A session or device token given to an https origin is taken from one alone, and one given to a plain origin
    (as every token made before tokens were marked) from a plain one alone: a token given in clear is never an
    https origin's."""
    with _open(tmp_path / "a.sqlite") as accounts:
        account = accounts.add("ana", "national", PASSWORD)
        device = accounts.sign_in("ana", PASSWORD, https=https).device
        session = accounts.start_session(account, https=https).token
        assert device is not None and device.startswith("s.") is https and session.startswith("s.") is https
        assert accounts.device(device, https=https) == "ana" and accounts.device(device, https=not https) is None
        assert accounts.session(session, https=not https) is None and accounts.session(session, https=https)
        assert accounts.sign_in("ana", PASSWORD, device=device, https=not https).account is not None
        assert accounts.device(device, https=https) == "ana"  # not used up: it was no device there


@pytest.mark.parametrize("twin", ["a_lice", "A_LICE", "a.lice", "A-lice"])
def test_a_name_differing_from_an_account_only_in_case_or_separators_is_refused(tmp_path: Path, twin: str) -> None:
    """`A_lice` taken: a name one to a reader (case, '.', '_' and '-' alike) is refused, naming the account it
    would be taken for, and nothing is added; a name differing otherwise is added."""
    accounts = _open(tmp_path / "a.sqlite")
    accounts.add("A_lice", "COL", PASSWORD)
    with pytest.raises(ConfigError, match=rf"^'{twin}' differs from the account 'A_lice' only in case or in '\.', "
                                          "'_' and '-'"):
        accounts.add(twin, "national", PASSWORD)
    assert [a.name for a in accounts.list()] == ["A_lice"]
    accounts.add("alice2", "national", PASSWORD)
    assert accounts.twins() == []


def test_twins_an_older_file_holds_still_open_sign_in_and_are_named(tmp_path: Path) -> None:
    """A file made before such names were refused, holding `Alice` (COL) and `alice` (national): it opens, each signs
    in as itself with its own password and scope, and ``twins`` names them together."""
    path = tmp_path / "a.sqlite"
    accounts = _open(path)
    accounts.add("Alice", "COL", PASSWORD)
    with sqlite3.connect(path) as db:  # as an older Puente added it
        hashed = db.execute("SELECT hash FROM accounts WHERE name = 'Alice'").fetchone()[0]
        db.execute("INSERT INTO accounts (name, scope, hash, created_ms) VALUES ('alice', 'national', ?, 0)",
                   (hashed,))
    db.close()
    accounts.close()
    accounts = _open(path)
    assert accounts.twins() == [["Alice", "alice"]]
    assert [(a.name, a.scope) for a in accounts.list()] == [("Alice", "COL"), ("alice", "national")]
    for name, scope in (("Alice", "COL"), ("alice", "national")):
        signed = accounts.sign_in(name, PASSWORD, T0)
        assert signed.account is not None and (signed.account.name, signed.account.scope) == (name, scope)
