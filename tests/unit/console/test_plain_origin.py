"""The plain origin (http://127.0.0.1:PORT) shares its cookies with every other port of the machine: it is given a
session alone, never a device token, and takes none."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broker.console_accounts import MAX_DEVICES, ConsoleAccounts
from puente.console import ConsoleConfig, create_app

from .conftest import PASSWORD, FakeIndex, Sink, _sign_in, local_client, secure_client


def _set(answer: Any) -> dict[str, str]:
    """The cookies an answer sets (or deletes), by name: each one's whole Set-Cookie value."""
    return {v.split("=", 1)[0]: v for k, v in answer.headers.multi_items() if k == "set-cookie"}


def _devices(tmp_path: Path) -> int:
    """How many device tokens the accounts file holds (the ``accounts`` fixture's)."""
    with sqlite3.connect(f"file:{tmp_path / 'auditor' / 'accounts.sqlite'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM devices").fetchone()[0])


def test_a_sign_in_at_the_plain_origin_gives_a_session_cookie_and_no_device_token(accounts: ConsoleAccounts,
                                                                                  tmp_path: Path) -> None:
    """Signed in at the plain origin, the browser is given the session cookie only, lasting until the browser closes
    (no Max-Age, no Expires), and the accounts file keeps no device token for it; at an https origin the same
    sign-in still gives one."""
    sink = Sink()
    plain = local_client(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)), follow_redirects=False)
    done = _sign_in(plain, "ana")
    assert done.status_code == 303
    made = _set(done)
    assert "puente-console" in made and "puente-device" not in made and "__Host-puente-device" not in made
    assert not any(p.strip().lower().startswith(("max-age", "expires")) for p in made["puente-console"].split(";"))
    assert _devices(tmp_path) == 0
    assert plain.get("/").status_code == 200
    secure = secure_client(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, sink)), follow_redirects=False)
    assert "__Host-puente-device" in _set(_sign_in(secure, "ana")) and _devices(tmp_path) == 1


def test_at_the_plain_origin_a_device_token_lets_no_one_past_the_sign_in_limits(accounts: ConsoleAccounts) -> None:
    """A plain device token given before this version (read by whatever listened on another port) is no device at
    the plain origin: a sign-in bringing it is held by the limits as any other, and the token is ended."""
    device = accounts.sign_in("ana", PASSWORD, datetime.now(UTC)).device
    assert device is not None and accounts.device(device, datetime.now(UTC)) == "ana"
    app = create_app(ConsoleConfig(lambda: FakeIndex(), accounts, Sink(), login_per_address=1, login_overall=1))
    assert _sign_in(local_client(app, follow_redirects=False), "ana").status_code == 303  # spends the limits
    holder = local_client(app, follow_redirects=False, cookies={"puente-device": device})
    assert _sign_in(holder, "ana").status_code == 429
    assert accounts.device(device, datetime.now(UTC)) is None


def test_signing_in_at_the_plain_origin_leaves_every_https_browsers_device_token(accounts: ConsoleAccounts) -> None:
    """An account holding its most device tokens from https browsers (``MAX_DEVICES``) signs in at the plain origin
    of a console on the same accounts file: no token is made there, so none of the https browsers' is pushed out
    (before, one was made and ended, and the oldest https one went with it)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    held = [accounts.sign_in("ana", PASSWORD, start + timedelta(minutes=i), https=True).device
            for i in range(MAX_DEVICES)]
    assert all(accounts.device(t, https=True) == "ana" for t in held)
    for _ in range(3):
        plain = local_client(create_app(ConsoleConfig(lambda: FakeIndex(), accounts, Sink())), follow_redirects=False)
        assert _sign_in(plain, "ana").status_code == 303
    assert all(accounts.device(t, https=True) == "ana" for t in held)
