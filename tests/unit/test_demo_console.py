"""`puente demo` makes the auditors' console sign-ins and prints who may sign in, never a password: the passwords go
to a file only this user may read, under the demo's own folder, which a CI log or a shared scrollback never keeps."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from broker.console_accounts import ConsoleAccounts
from puente.dev import demo
from puente.errors import ConfigError

PARTNERS = ["COL", "CRI", "FEAN", "USA"]
SCOPES = {"auditor": "national", "usa-oversight": "USA"}


def _passwords(path: Path) -> dict[str, str]:
    """The passwords file as name -> password (its comment line left out)."""
    lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return {fields[0]: fields[1] for fields in lines}


def _signs_in(accounts_path: Path, name: str, password: str) -> str | None:
    """The scope ``name`` signs in to with ``password``, or None."""
    with ConsoleAccounts.open(accounts_path, PARTNERS, create=False) as accounts:
        account = accounts.sign_in(name, password).account
    return None if account is None else account.scope


def _make(tmp_path: Path, run_id: str = "20261206-080000") -> tuple[list[str], Path, Path]:
    accounts_path = tmp_path / "keys" / "auditor" / "console-accounts.sqlite"
    passwords_file = tmp_path / ".puente" / "demo" / "console-passwords"
    return demo.console_accounts(accounts_path, PARTNERS, run_id, passwords_file), accounts_path, passwords_file


async def test_the_demos_console_step_prints_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lines the demo's last step prints name both sign-ins and the file their passwords are in, and hold
    neither password; the file, 0600 in the demo's folder, holds the passwords, and each signs in to its scope."""
    monkeypatch.chdir(tmp_path)  # the demo's folder is .puente/demo under where it runs

    async def index_topics(*_: Any, **__: Any) -> Any:
        ends = SimpleNamespace(reports=[], all_checked=True, why=[])
        return SimpleNamespace(rows=0, records=0, problems=0, ends=ends)

    made = iter(["Fresh-Password-One", "Fresh-Password-Two"])
    monkeypatch.setattr(demo, "secrets", SimpleNamespace(token_urlsafe=lambda _: next(made)))
    monkeypatch.setattr(demo, "index_topics", index_topics)
    monkeypatch.setattr(demo, "signature_checks", lambda *_: None)
    monkeypatch.setattr(demo, "party_connection", lambda *_: SimpleNamespace(source="client.properties"))
    cfg = SimpleNamespace(keys=tmp_path / "keys", login_root=tmp_path / "logins", topic_prefix="demo-x",
                          audit_retention_days=3650)
    ok, lines = await demo._console(cfg, None, SimpleNamespace(roles={}, owners={}),  # type: ignore[arg-type]
                                    SimpleNamespace(partners=set(PARTNERS)), "20261206-080000", None)  # type: ignore[arg-type]
    printed = "\n".join(lines)
    assert ok and "Fresh-Password" not in printed
    assert all(name in printed for name in SCOPES) and ".puente/demo/console-passwords" in printed
    passwords_file = tmp_path / ".puente" / "demo" / "console-passwords"
    assert stat.S_IMODE(passwords_file.lstat().st_mode) == 0o600
    passwords = _passwords(passwords_file)
    assert set(passwords) == set(SCOPES) and set(passwords.values()) == {"Fresh-Password-One", "Fresh-Password-Two"}
    accounts_path = tmp_path / "keys" / "auditor" / "console-accounts.sqlite"
    assert {name: _signs_in(accounts_path, name, password) for name, password in passwords.items()} == SCOPES


def test_each_run_replaces_the_passwords_and_the_file(tmp_path: Path) -> None:
    """A second run's passwords replace the first's, in the accounts and in the file: the first's no longer sign
    in, and the file names the run that made them."""
    _, accounts_path, passwords_file = _make(tmp_path, "20261206-080000")
    first = _passwords(passwords_file)
    _make(tmp_path, "20261206-090000")
    second = _passwords(passwords_file)
    assert "20261206-090000" in passwords_file.read_text(encoding="utf-8")
    for name in SCOPES:
        assert first[name] != second[name]
        assert _signs_in(accounts_path, name, first[name]) is None
        assert _signs_in(accounts_path, name, second[name]) == SCOPES[name]


def test_a_link_planted_at_the_passwords_file_is_replaced_not_followed(tmp_path: Path) -> None:
    """A link found where the passwords file goes is replaced by the file: what it pointed to is left as it was."""
    target = tmp_path / "elsewhere"
    target.write_text("theirs\n")
    folder = tmp_path / ".puente" / "demo"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "console-passwords").symlink_to(target)
    _, _, passwords_file = _make(tmp_path)
    assert target.read_text() == "theirs\n"
    assert stat.S_ISREG(passwords_file.lstat().st_mode) and stat.S_IMODE(passwords_file.lstat().st_mode) == 0o600


def test_a_folder_others_may_write_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    """A demo folder others may write (where anyone could swap the file) is refused, naming the fix, before the
    passwords file or any account is made."""
    folder = tmp_path / ".puente" / "demo"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match="chmod"):
        _make(tmp_path)
    assert not (folder / "console-passwords").exists()
    assert not (tmp_path / "keys" / "auditor" / "console-accounts.sqlite").exists()
