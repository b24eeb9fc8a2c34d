"""The auditors' console accounts and sessions: one SQLite file in the auditors' own folder.

An account is a name, a scope and an Argon2id password hash (argon2-cffi's ``PasswordHasher``,
whose defaults are RFC 9106's second recommended profile). The scope is ``national`` (the
oversight body: everything) or a partner id the policy names (a joint-oversight auditor of that
country: only what concerns it). A scope the policy does not name is refused when the account is
made, and an account whose partner the policy has since dropped cannot sign in: fail closed. A
policy that names a partner ``national`` is refused outright: the two scopes would be one. A name
that another account's differs from only in case or in '.', '_' and '-' (``name_key``) is refused
when the account is made; such twins an older file holds still open, and are named (``twins``).

Signing in (:meth:`ConsoleAccounts.sign_in`) takes as long for an unknown name as for a known one
(a dummy hash is checked), and after ``MAX_FAILURES`` failures in a row an account is locked for
``LOCK_MINUTES`` whatever password comes next.

The console signs in in two steps, so that the lock and the audit agree: :meth:`ConsoleAccounts.check` counts a
wrong password at once (every check after it sees the count, and the one that reaches ``MAX_FAILURES`` locks
the account then, in order) and :meth:`ConsoleAccounts.withdraw` takes back exactly that count when the attempt
cannot be recorded; a right password changes nothing until :meth:`ConsoleAccounts.confirm`, once the audit holds
the sign-in, clears the failures it saw and gives the browser its device token. Each failure is a row of its own
(``failed_attempts``), so that taking one back, or clearing those a sign-in saw, touches no other.

That lock bounds guessing from everywhere at once, but anyone who knows a name could keep its auditor out
with it. So a browser that signed in gets a device token (OWASP's "device cookie"; the file keeps only its
SHA-256, ``MAX_DEVICES`` per account, for ``DEVICE_DAYS``): a sign-in that brings one for its account is not
held by the account's lock, and its failures count against that device alone, which ``MAX_FAILURES`` of
them end. A guesser without one meets the lock as before; the auditor's own browser does not. A device
token proves nothing by itself: it opens no session and skips no password.

A session is a random 32-byte token given to the
browser once; the file keeps only its SHA-256, so a copy of the file opens no session. A session
ends after ``SESSION_HOURS`` in all, after ``IDLE_MINUTES`` unused, on sign-out, or when its
account is removed or its password changed.

Session and device tokens are each taken only from the kind of origin they were given to (``https``: the console's
``origin``): one given to an https origin begins with ``HTTPS_MARK``, which its SHA-256 covers, and one given to a
plain-http origin does not. A token given in clear (and so perhaps read on the way) is never taken as an https
origin's cookie, nor the other way; a token made before tokens were marked is a plain origin's.

Files: made 0600 in a folder made 0700 (``<keys>/auditor/console-accounts.sqlite`` by default);
one others may read, or whose folder others may write, is refused. Errors are ``ConfigError``
(a name, scope or password that cannot be used) and ``StoreError`` (the file); messages never
carry a password or a token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from broker.keystore import auditor_path
from broker.private_files import PrivateFile
from puente.errors import ConfigError, StoreError

ACCOUNTS_FILE = "console-accounts.sqlite"
NATIONAL = "national"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_FAILURES = 5
LOCK_MINUTES = 15
MAX_DEVICES = 8
DEVICE_DAYS = 30
SESSION_HOURS = 8
IDLE_MINUTES = 30
AHEAD_MS = 5 * 60_000
"""How far a session's or device token's times may lie ahead of the clock before it is taken as made while the clock
ran ahead (set back since): ended, since its limits, counted from then, would last the step longer."""
HTTPS_MARK = "s."  # begins a token given to an https origin (module docstring); never in a token_urlsafe
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

_LAYOUT = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, -- no longer used: kept 0, its counts moved to failed_attempts (_setup)
    locked_until_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failed_attempts (
    -- AUTOINCREMENT: an id is never used again, so a late withdraw cannot take back another failure
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    lock_ms INTEGER -- NULL: counting toward the next lock, else the locked_until_ms of the lock they made
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0
);
"""


def name_key(name: str) -> str:
    """An account name as a person reads it: ``Alice`` and ``alice``, ``a.lopez`` and ``a_lopez`` are one auditor
    to whoever reads the audit or a sign-in list, as partner ids are one whatever their case and separators
    (``policies._check``). ``ConsoleAccounts.add`` refuses a name whose key another account's has."""
    return name.casefold().replace(".", "_").replace("-", "_")


def default_accounts_path(keys: Path) -> Path:
    """``<keys>/auditor/console-accounts.sqlite``: in the auditors' own folder."""
    return auditor_path(keys) / ACCOUNTS_FILE


@dataclass(frozen=True)
class Account:
    """An auditor as the console knows one (never the hash)."""

    name: str
    scope: str  # "national" or a partner id
    created_at: datetime
    locked_until: datetime | None = None

    @property
    def national(self) -> bool:
        return self.scope == NATIONAL

    @property
    def partner(self) -> str | None:
        """The partner a joint-oversight auditor sees; None for a national one."""
        return None if self.national else self.scope


@dataclass(frozen=True)
class SignIn:
    """What one sign-in attempt gave: the account (None when refused), and whether the name was an
    account's (for the audit of the attempt: an unknown name is never written down, it may be a
    password typed in the wrong box)."""

    account: Account | None
    known: bool
    locked: bool = False
    device: str | None = None
    """On success, the browser's new device token (module docstring), given here once and never stored."""
    counted: Counted | None = None
    """A wrong password ``check`` counted: ``withdraw`` takes it back."""
    checked: Checked | None = None
    """A right password ``check`` left for ``confirm``: until then the account is not signed in."""


@dataclass(frozen=True)
class Counted:
    """A wrong password counted by ``check``: its ``failed_attempts`` row, or the device token it counted against
    (``row`` None), and, when it locked the account, the lock it set and the one before (locked_until_ms each)."""

    name: str
    row: int | None
    device: str | None = None
    lock: tuple[int, int] | None = None


@dataclass(frozen=True)
class Checked:
    """A right password ``check`` changed nothing for: the hash it matched, the live device token it came through,
    and the account's newest failure row and lock as they were then (what ``confirm`` clears)."""

    name: str
    hashed: str
    device: str | None
    newest_failure: int
    locked_ms: int
    https: bool = False
    """Whether the sign-in came from an https origin: the device token ``confirm`` gives is for that kind alone."""


@dataclass(frozen=True)
class Session:
    """A live session: its account, and the token that proves it (the CSRF token derives from it)."""

    account: Account
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(token: str) -> str:
    """The form token of a session: bound to it, and useless without the cookie it derives from."""
    return hashlib.sha256(b"puente-console-csrf\0" + token.encode()).hexdigest()


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleAccounts:
    """The accounts file (module docstring). Safe to share between threads (one lock, short holds:
    Argon2 runs outside it)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, partners: Collection[str],
                 hasher: PasswordHasher) -> None:
        self._conn, self.path, self.partners, self._hasher = conn, path, frozenset(partners), hasher
        self._lock = threading.Lock()
        # Checked when a name is unknown, so that such a sign-in costs what a known one costs.
        self._dummy = hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def open(cls, path: Path, partners: Collection[str], *, create: bool = True,
             hasher: PasswordHasher | None = None) -> ConsoleAccounts:
        """The accounts at ``path`` (made 0600 in a 0700 folder when missing and ``create``); ``partners``
        are the partner ids the policy names, the only scopes besides ``national``. A policy that names a partner
        ``national`` is refused (ConfigError) before the file is touched: that partner's joint-oversight auditors
        would be national ones, seeing every partner."""
        if NATIONAL in partners:
            raise ConfigError(f"the policy names a partner {NATIONAL!r}, the console's scope for national auditors "
                              "(who see every partner): rename that partner in the policy")
        path = Path(path)
        _PRIVATE.prepare(path, create=create, missing=f"no console accounts at {path}: add one with `puente audit "
                         "users add NAME --scope national`")
        try:
            conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _translated(exc, path) from None
        try:
            _setup(conn, path, create=create)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, partners, hasher or PasswordHasher())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ConsoleAccounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise _translated(exc, self.path) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: it holds the file's write lock from its first read, so
        what it reads is still so when it writes), committed when the block ends, rolled back on error."""
        with self._sql() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    # accounts ---------------------------------------------------------------------------------

    def check_scope(self, scope: str) -> str:
        """``scope`` when it is ``national`` or a partner the policy names; ConfigError otherwise."""
        if scope == NATIONAL or scope in self.partners:
            return scope
        raise ConfigError(f"unknown scope {scope[:40]!r}: use national or a partner the policy names "
                          f"({', '.join(sorted(self.partners)) or 'none'})")

    def add(self, name: str, scope: str, password: str, now: datetime | None = None) -> Account:
        """A new account; ConfigError when the name is taken or not usable, the scope unknown or the
        password too short."""
        _check_name(name)
        self.check_scope(scope)
        hashed = self._hasher.hash(_check_password(password))
        when = now or datetime.now(UTC)
        with self._write() as c:  # the twin looked for and the row added in one transaction: no other add between
            twin = next((n for (n,) in c.execute("SELECT name FROM accounts")
                         if n != name and name_key(n) == name_key(name)), None)
            if twin is not None:
                raise ConfigError(f"{name!r} differs from the account {twin[:64]!r} only in case or in '.', '_' "
                                  "and '-': a reader of the audit takes them for one auditor; choose another name")
            try:
                c.execute("INSERT INTO accounts (name, scope, hash, created_ms) VALUES (?, ?, ?, ?)",
                          (name, scope, hashed, _ms(when)))
            except sqlite3.IntegrityError:
                raise ConfigError(f"there is already an account {name!r}") from None
        return Account(name, scope, when)

    def twins(self) -> list[list[str]]:
        """The accounts whose names are one to a reader (``name_key``), each group sorted: made before ``add``
        refused such a name. They still open and sign in, each with its own password and scope (refusing the
        file would shut every auditor out); ``puente audit users list`` names them, for one to be renamed."""
        groups: dict[str, list[str]] = {}
        for account in self.list():
            groups.setdefault(name_key(account.name), []).append(account.name)
        return [names for names in groups.values() if len(names) > 1]

    def list(self) -> list[Account]:
        """Every account, by name."""
        with self._sql() as c:
            rows = c.execute("SELECT name, scope, created_ms, locked_until_ms FROM accounts ORDER BY name").fetchall()
        return [Account(n, s, _time(cms), _time(lms) if lms else None) for n, s, cms, lms in rows]

    def remove(self, name: str) -> None:
        """Remove an account and end its sessions; ConfigError when there is none of that name."""
        with self._sql() as c:
            if c.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount == 0:
                raise ConfigError(f"no account {name[:64]!r}")

    def set_password(self, name: str, password: str) -> None:
        """Change a password, unlock the account, and end its sessions and its devices."""
        hashed = self._hasher.hash(_check_password(password))
        with self._write() as c:
            done = c.execute("UPDATE accounts SET hash = ?, locked_until_ms = 0 WHERE name = ?",
                             (hashed, name)).rowcount
            c.execute("DELETE FROM failed_attempts WHERE name = ?", (name,))
            c.execute("DELETE FROM sessions WHERE name = ?", (name,))
            c.execute("DELETE FROM devices WHERE name = ?", (name,))
        if done == 0:
            raise ConfigError(f"no account {name[:64]!r}")

    # signing in ----------------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, now: datetime | None = None, device: str | None = None, *,
                https: bool = False) -> SignIn:
        """Check a name and password, and sign a right one in at once (``check`` then ``confirm``): for a caller with
        no audit to write first."""
        result = self.check(name, password, now, device, https=https)
        if result.checked is None:
            return result
        fresh = self.confirm(result.checked, password, now)
        if fresh is None:
            return SignIn(None, known=True)
        return SignIn(result.account, known=True, device=fresh)

    def check(self, name: str, password: str, now: datetime | None = None, device: str | None = None, *,
              https: bool = False) -> SignIn:
        """Check a name and password, brought from an https origin or not (``https``). The same work is done for an
        unknown name; a locked account is refused whatever the password, unless ``device`` is a live device token of
        this account given to the same kind of origin (module docstring); ``MAX_FAILURES`` failures in a row lock it,
        or end the device that brought them.

        Argon2 runs outside any transaction; what it decided is then applied in one write transaction
        that reads the account again. A wrong password is counted there and then (a row of its own, so parallel
        failures all count, and the one that reaches ``MAX_FAILURES`` says ``locked``): ``counted``, for ``withdraw``
        when the attempt cannot be recorded. A right password changes nothing: it is refused when the account was
        locked, or its password changed, while it was being checked; otherwise the SignIn names the account and
        holds ``checked``, which ``confirm`` makes a sign-in once the audit holds it."""
        name, when = name[:64], now or datetime.now(UTC)
        at = _ms(when)
        with self._sql() as c:
            row = c.execute("SELECT scope, hash, created_ms FROM accounts WHERE name = ?", (name,)).fetchone()
        password = password[:MAX_PASSWORD]
        if row is None:
            _verify(self._hasher, self._dummy, password)
            return SignIn(None, known=False)
        scope, hashed, created_ms = row
        good = _verify(self._hasher, hashed, password)
        with self._write() as c:
            now_row = c.execute("SELECT hash, locked_until_ms FROM accounts WHERE name = ?", (name,)).fetchone()
            if now_row is None:
                return SignIn(None, known=True)  # removed while its password was being checked
            current, locked_ms = now_row
            held = _live_device(c, device, at, https)
            trusted = held is not None and held[0] == name
            if locked_ms > at and not trusted:
                return SignIn(None, known=True, locked=True)
            if not good:
                counted = _count(c, name, device if trusted else None, when, locked_ms)
                return SignIn(None, known=True, locked=counted.lock is not None, counted=counted)
            if current != hashed:
                return SignIn(None, known=True)  # its password changed while this one was being checked
            if scope != NATIONAL and scope not in self.partners:
                return SignIn(None, known=True)  # the policy no longer names its partner: fail closed
            newest = c.execute("SELECT COALESCE(MAX(id), 0) FROM failed_attempts WHERE name = ?",
                               (name,)).fetchone()[0]
        checked = Checked(name, hashed, device if trusted else None, int(newest), int(locked_ms), https)
        return SignIn(Account(name, scope, _time(created_ms)), known=True, checked=checked)

    def confirm(self, checked: Checked, password: str, now: datetime | None = None, *,
                device: bool = True) -> str | None:
        """Sign in the right ``password`` ``check`` held, once the audit holds the sign-in: the browser's new device
        token ("" without ``device``: the console's plain origin, whose cookies reach every port of the host, is given
        none, and one made there only to be ended would push one of the account's https browsers out of its
        ``MAX_DEVICES``), or None when the account was removed or its password changed meanwhile, or the device token
        it came through was used up or ended meanwhile (no sign-in then).

        A sign-in through a device token uses it up and leaves the account's failures and lock as they were (a
        guesser elsewhere gets no fresh tries from it). Any other clears the failures counted before it was checked,
        and the lock when none was set since: failures counted while its record was being written stay counted,
        and a lock they made stays (its record is in the audit). Until the lock is decided, a right password costs
        what a wrong one does: a hash made under other Argon2 parameters is hashed again only here (``_rehash``)."""
        at = _ms(now or datetime.now(UTC))
        with self._write() as c:
            row = c.execute("SELECT hash, locked_until_ms FROM accounts WHERE name = ?", (checked.name,)).fetchone()
            if row is None or row[0] != checked.hashed:
                return None
            if checked.device is not None:  # one use each: a second check through it, made meanwhile, signs no one in
                if not c.execute("DELETE FROM devices WHERE token_sha256 = ? AND failures < ?",
                                 (_digest(checked.device), MAX_FAILURES)).rowcount:
                    return None
            else:
                c.execute("DELETE FROM failed_attempts WHERE name = ? AND id <= ?",
                          (checked.name, checked.newest_failure))
                if row[1] == checked.locked_ms:
                    c.execute("UPDATE accounts SET locked_until_ms = 0 WHERE name = ?", (checked.name,))
            fresh = self._new_device(c, checked.name, at, checked.https) if device else ""
        if self._hasher.check_needs_rehash(checked.hashed):
            self._rehash(checked.name, checked.hashed, password[:MAX_PASSWORD])
        return fresh

    def withdraw(self, counted: Counted) -> None:
        """Take back the failure ``check`` counted, the attempt not being in the audit, so that it counts for nothing;
        and the lock it set, unless the lock has since been lifted or replaced. No other failure is touched."""
        with self._write() as c:
            if counted.row is None:
                c.execute("UPDATE devices SET failures = failures - 1 WHERE token_sha256 = ? AND failures > 0",
                          (_digest(counted.device or ""),))
                return
            c.execute("DELETE FROM failed_attempts WHERE id = ?", (counted.row,))
            if counted.lock is None:
                return
            until, before = counted.lock
            if c.execute("UPDATE accounts SET locked_until_ms = ? WHERE name = ? AND locked_until_ms = ?",
                         (before, counted.name, until)).rowcount:
                c.execute("UPDATE failed_attempts SET lock_ms = NULL WHERE name = ? AND lock_ms = ?",
                          (counted.name, until))

    def _rehash(self, name: str, hashed: str, password: str) -> None:
        """Store ``password`` hashed with the console's current Argon2 parameters in place of ``hashed``, unless the
        hash changed meanwhile (a new password). Only after a sign-in succeeded: the extra Argon2 run depends on the
        password being right, so done any earlier it would time a right guess on a locked account apart from a
        wrong one, and the lock would stop no guessing."""
        rehashed = self._hasher.hash(password)
        with self._sql() as c:
            c.execute("UPDATE accounts SET hash = ? WHERE name = ? AND hash = ?", (rehashed, name, hashed))

    def _new_device(self, c: sqlite3.Connection, name: str, at: int, https: bool) -> str:
        """A new device token for ``name``, for an https origin or a plain one; the account keeps its ``MAX_DEVICES``
        newest, and tokens past ``DEVICE_DAYS`` or ended by failures go, anyone's."""
        token = _new_token(https)
        c.execute("DELETE FROM devices WHERE created_ms < ? OR created_ms > ? OR failures >= ?",
                  (at - DEVICE_DAYS * 86_400_000, at + AHEAD_MS, MAX_FAILURES))
        c.execute("INSERT INTO devices (token_sha256, name, created_ms) VALUES (?, ?, ?)", (_digest(token), name, at))
        c.execute("DELETE FROM devices WHERE name = ? AND token_sha256 NOT IN (SELECT token_sha256 FROM devices "
                  "WHERE name = ? ORDER BY created_ms DESC, rowid DESC LIMIT ?)", (name, name, MAX_DEVICES))
        return token

    def device(self, token: str | None, now: datetime | None = None, *, https: bool = False) -> str | None:
        """The account whose live device token ``token`` is, or None (unknown, ended, too old, or given to the other
        kind of origin than ``https`` says it is brought from)."""
        with self._sql() as c:
            held = _live_device(c, token, _ms(now or datetime.now(UTC)), https)
        return None if held is None else held[0]

    def end_device(self, token: str | None) -> None:
        """The device token ends, whoever holds it (nothing happens for an unknown token)."""
        if token and len(token) <= 100:
            with self._sql() as c:
                c.execute("DELETE FROM devices WHERE token_sha256 = ?", (_digest(token),))

    # sessions ------------------------------------------------------------------------------------

    def start_session(self, account: Account, now: datetime | None = None, *, https: bool = False) -> Session:
        """A new session for a signed-in account, at an https origin or a plain one; its token is given here once and
        never stored."""
        token = _new_token(https)
        at = _ms(now or datetime.now(UTC))
        with self._sql() as c:
            c.execute("DELETE FROM sessions WHERE created_ms < ? OR seen_ms < ? OR MAX(created_ms, seen_ms) > ?",
                      (at - SESSION_HOURS * 3_600_000, at - IDLE_MINUTES * 60_000, at + AHEAD_MS))
            c.execute("INSERT INTO sessions (token_sha256, name, created_ms, seen_ms) VALUES (?, ?, ?, ?)",
                      (_digest(token), account.name, at, at))
        return Session(account, token)

    def session(self, token: str | None, now: datetime | None = None, *, https: bool = False) -> Session | None:
        """The live session ``token`` proves (and it is marked used), or None: unknown, expired, idle too
        long, its account's scope no longer valid, or started at the other kind of origin than ``https`` says it is
        brought from."""
        if not token or len(token) > 100 or not _given_to(token, https):
            return None
        at = _ms(now or datetime.now(UTC))
        with self._sql() as c:
            row = c.execute("SELECT a.name, a.scope, a.created_ms, s.created_ms, s.seen_ms FROM sessions s "
                            "JOIN accounts a ON a.name = s.name WHERE s.token_sha256 = ?",
                            (_digest(token),)).fetchone()
            if row is None:
                return None
            name, scope, created_ms, started, seen = row
            if (started < at - SESSION_HOURS * 3_600_000 or seen < at - IDLE_MINUTES * 60_000
                    or max(started, seen) > at + AHEAD_MS  # begun or used while the clock ran ahead: its limits
                    or (scope != NATIONAL and scope not in self.partners)):  # would last that much longer
                c.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_digest(token),))
                return None
            c.execute("UPDATE sessions SET seen_ms = ? WHERE token_sha256 = ?", (at, _digest(token)))
        return Session(Account(name, scope, _time(created_ms)), token)

    def end_session(self, token: str | None) -> None:
        """Sign out: the session ends (nothing happens for an unknown token)."""
        if token:
            with self._sql() as c:
                c.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_digest(token),))


def _setup(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """Lay out a new file, or check an existing one is console accounts; StoreError otherwise. The check comes
    before WAL is switched on and again under the write lock, so a file that is none is left as it was."""
    try:
        _identify(conn, path, create=create)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _identify(conn, path, create=create)
            for statement in _LAYOUT.split(";"):  # executescript would commit the transaction first
                if statement.strip():
                    conn.execute(statement)
            _move_counts(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise _translated(exc, path) from None


def _move_counts(conn: sqlite3.Connection) -> None:
    """Failures an older Puente counted in ``accounts.failures`` become rows of ``failed_attempts``, as they are now
    counted (nothing once done)."""
    moved = conn.execute("SELECT name, failures FROM accounts WHERE failures > 0").fetchall()
    for name, failures in moved:
        conn.executemany("INSERT INTO failed_attempts (name) VALUES (?)", [(name,)] * min(failures, MAX_FAILURES))
    if moved:
        conn.execute("UPDATE accounts SET failures = 0 WHERE failures > 0")


def _identify(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """Nothing when the file holds the accounts (an older Puente may have made them without sessions), or has no
    tables and ``create`` lets it be laid out; StoreError for an empty file opened to be read, or another SQLite
    file (a partner store, an audit index)."""
    tables = sorted(str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    if "accounts" in tables:
        return
    if not tables:
        if create:
            return
        raise StoreError(f"{path} is not a console accounts file (empty: no tables): check --accounts")
    named = ", ".join(t[:40] for t in tables[:4]) + (", ..." if len(tables) > 4 else "")
    raise StoreError(f"{path} is not a console accounts file (an SQLite database with tables {named}): "
                     "check --accounts")


def _count(c: sqlite3.Connection, name: str, device: str | None, when: datetime, locked_ms: int) -> Counted:
    """Count a wrong password for ``name`` in the write transaction ``c``: against ``device`` (a live device token of
    the account) alone when given, else against the account, whose lock until now is ``locked_ms``."""
    if device is not None:
        # The device's own count: MAX_FAILURES end it (``_live_device``), and its browser meets the account's lock.
        # The token stays in the file, ended, so that withdrawing the count that ended it brings it back.
        c.execute("UPDATE devices SET failures = failures + 1 WHERE token_sha256 = ?", (_digest(device),))
        return Counted(name, None, device)
    row = int(c.execute("INSERT INTO failed_attempts (name) VALUES (?)", (name,)).lastrowid or 0)
    (counting,) = c.execute("SELECT COUNT(*) FROM failed_attempts WHERE name = ? AND lock_ms IS NULL",
                            (name,)).fetchone()
    if counting < MAX_FAILURES:
        return Counted(name, row)
    # Locking starts the count again: the failures it counted are marked with it (the next MAX_FAILURES lock it
    # again), kept so that withdrawing this one, the lock's, gives them back to the count. Those of an earlier lock
    # go: past taking back.
    until = _ms(when + timedelta(minutes=LOCK_MINUTES))
    c.execute("DELETE FROM failed_attempts WHERE name = ? AND lock_ms IS NOT NULL", (name,))
    c.execute("UPDATE failed_attempts SET lock_ms = ? WHERE name = ? AND lock_ms IS NULL", (until, name))
    c.execute("UPDATE accounts SET locked_until_ms = ? WHERE name = ?", (until, name))
    return Counted(name, row, lock=(until, locked_ms))


def _new_token(https: bool) -> str:
    """A new session or device token, for an https origin (``HTTPS_MARK``) or a plain one."""
    return (HTTPS_MARK if https else "") + secrets.token_urlsafe(32)


def _given_to(token: str, https: bool) -> bool:
    """Whether ``token`` was given to the kind of origin it is brought from (module docstring)."""
    return token.startswith(HTTPS_MARK) == https


def _live_device(c: sqlite3.Connection, token: str | None, at: int, https: bool) -> tuple[str, int] | None:
    """(account name, failures) of the device token ``token``, when it is one, given to the kind of origin ``https``
    says it is brought from, not past ``DEVICE_DAYS`` and not ended by ``MAX_FAILURES`` failures."""
    if not token or len(token) > 100 or not _given_to(token, https):
        return None
    row = c.execute("SELECT name, failures FROM devices WHERE token_sha256 = ? AND created_ms BETWEEN ? AND ? "
                    "AND failures < ?", (_digest(token), at - DEVICE_DAYS * 86_400_000, at + AHEAD_MS,
                                         MAX_FAILURES)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _verify(hasher: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"an account name is 1 to 64 letters, digits or . _ @ - (starting with a letter or digit): "
                          f"{name[:64]!r} is not")
    return name


def _check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ConfigError(f"a console password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


_PRIVATE = PrivateFile("the console accounts", "the console accounts' folder",
                       "hold password hashes but others may read them",
                       "run chmod 700 on it, or pass --accounts")


def _translated(exc: sqlite3.Error, path: Path) -> StoreError:
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return StoreError(f"{path} is not a console accounts file (not an SQLite database)")
    return StoreError(f"the console accounts {path} failed: {str(exc)[:200]}")
