"""`puente audit users add|passwd`: how the password is asked for, or read from --password-file."""

from __future__ import annotations

import getpass
import io
from pathlib import Path

import pytest

from puente import cli


@pytest.fixture
def keys(bare_keys: Path) -> Path:
    """A private keystore folder for the accounts file, and no other PUENTE_* setting."""
    return bare_keys


def _add(capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, list[str]]:
    code = cli.main(["audit", "users", "add", "ana", "--scope", "national", *more])
    return code, capsys.readouterr().err.strip().splitlines()


def test_no_terminal_is_refused_in_one_line_naming_the_password_file(keys: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """With no terminal getpass would read standard input with echo on after a multi-line warning: refused in
    one line naming --password-file, the password never read."""
    monkeypatch.setattr("getpass.getpass", lambda prompt="": getpass.fallback_getpass(prompt))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n" * 2))
    code, err = _add(capsys)
    assert code == 3 and len(err) == 1 and "--password-file" in err[0], err


def test_no_password_at_all_is_a_configuration_error(keys: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """End of input where the password was asked for is "no password given", exit 3, not an internal error."""
    def closed(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("getpass.getpass", closed)
    code, err = _add(capsys)
    assert code == 3 and err == ["puente: error: no password given; nothing changed"]


def test_a_password_file_others_may_read_is_refused(keys: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A --password-file others may read is refused as every secret file is (chmod 600 named); one that is
    private is read."""
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    secret.chmod(0o644)
    code, err = _add(capsys, "--password-file", str(secret))
    assert code == 3 and len(err) == 1 and "chmod 600" in err[0] and "long enough" not in err[0], err
    secret.chmod(0o600)
    assert _add(capsys, "--password-file", str(secret))[0] == 0


def test_a_password_file_in_a_shared_folder_is_refused_in_words_that_fit(keys: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A --password-file in a sticky folder others may write (as /tmp) is refused in one line that separates the
    file from the problem, and says to keep it elsewhere: never to chmod 700 a folder everyone shares."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    secret = shared / "password"
    secret.write_text("a long enough password\n")
    secret.chmod(0o600)
    code, err = _add(capsys, "--password-file", str(secret))
    assert code == 3 and err == [f"puente: error: the password file {secret}: the folder {shared} is shared, writable "
                                 "by others like /tmp (mode 1777): keep the file in a folder only you can write; "
                                 "nothing changed"], err


def _signs_in(keys: Path, password: str) -> bool:
    from broker.console_accounts import ConsoleAccounts, default_accounts_path
    with ConsoleAccounts.open(default_accounts_path(keys), ["COL"], create=False) as accounts:
        return accounts.check("ana", password).checked


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_a_password_file_is_its_whole_text_less_one_final_line_break(keys: Path, tmp_path: Path, ending: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The password is the file's text exactly, spaces and all, less one final \\n or \\r\\n."""
    secret = tmp_path / "password"
    secret.write_bytes(f" correct horse battery staple {ending}".encode())
    secret.chmod(0o600)
    assert _add(capsys, "--password-file", str(secret))[0] == 0
    assert _signs_in(keys, " correct horse battery staple ")


@pytest.mark.parametrize("breaker", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r", "\t",
                                     "\x00", "\x1b", "\x9b", "\n", "\n\n"])
def test_a_password_file_holding_another_line_break_or_control_is_refused_not_cut(
        keys: Path, tmp_path: Path, breaker: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A line break other than the final one (any Unicode line terminator), a second line, or a C0 or C1 control
    character is refused in one line quoting nothing of the file, and no account is made: splitlines() cut the
    password there, and the account got its first part as the password, under exit 0."""
    secret = tmp_path / "password"
    secret.write_bytes(f"correct horse battery{breaker}staple extra\n".encode())
    secret.chmod(0o600)
    code, err = _add(capsys, "--password-file", str(secret))
    assert code == 3 and len(err) == 1 and "nothing changed" in err[0], err
    assert "horse" not in err[0] and "staple" not in err[0], err
    assert cli.main(["audit", "users", "list"]) == 0
    assert "ana" not in capsys.readouterr().out


def test_passwd_reads_its_password_file_by_the_same_rule(keys: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`audit users passwd --password-file` refuses a password holding \\x0b, and the old password still signs in."""
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    secret.chmod(0o600)
    assert _add(capsys, "--password-file", str(secret))[0] == 0
    secret.write_text("another good password\x0bthat was cut\n")
    code = cli.main(["audit", "users", "passwd", "ana", "--password-file", str(secret)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "another" not in err[0], err
    assert _signs_in(keys, "a long enough password") and not _signs_in(keys, "another good password")


@pytest.mark.parametrize("password", ["family\U0001F468\u200d\U0001F469\u200d\U0001F467 pass",  # emoji joiners
                                      "\u05e9\u05dc\u05d5\u05dd\u200f12345678",  # a right-to-left mark
                                      "pass\u00adword long enough", "pass\u00a0word long enough",
                                      "ends with a zero-width no-break\ufeff"])
def test_a_format_character_a_person_types_is_a_passwords_in_a_file_as_at_the_prompt(
        keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A format character is typed with the text it sits in (an emoji's joiners, Hebrew's right-to-left mark, a soft
    hyphen): the prompt, ConsoleAccounts and the sign-in form take it, so a password file holding it is that
    password too. 1b4d554 refused it from a file only: one password, two answers."""
    secret = tmp_path / "password"
    secret.write_bytes(f"{password}\n".encode())
    secret.chmod(0o600)
    assert _add(capsys, "--password-file", str(secret))[0] == 0
    assert _signs_in(keys, password)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": password)
    assert cli.main(["audit", "users", "passwd", "ana"]) == 0 and _signs_in(keys, password)


def test_a_tab_is_refused_typed_as_in_a_file(keys: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """One rule on every path of `audit users`: a control character (a tab) cannot be typed at the sign-in form, so
    the prompt refuses it as the password file does, and the help says so. The prompt took it."""
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "correct\thorse battery")
    code, err = _add(capsys)
    assert code == 3 and err == ["puente: error: the password typed holds a control character (a tab, an "
                                 "escape...), which a password may not; nothing changed"], err
    secret = tmp_path / "password"
    secret.write_bytes(b"correct\thorse battery\n")
    secret.chmod(0o600)
    code, err = _add(capsys, "--password-file", str(secret))
    assert code == 3 and err[0].endswith("the password holds a control character (a tab, an escape...), which a "
                                         "password may not; nothing changed"), err
    for verb in ("add", "passwd"):
        with pytest.raises(SystemExit):
            cli.main(["audit", "users", verb, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert "A password may hold any character but a control character (a tab, an escape...) or a line break" \
            in shown and "--password-file <(pass show x | head -n1)" in shown, shown


def test_a_password_file_saved_with_a_byte_order_mark_says_so(keys: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A BOM at the start is an editor's (Notepad's "UTF-8 with BOM"), never typed: its own message, not a generic
    "control or format character" that sends the person looking in the password."""
    secret = tmp_path / "password"
    secret.write_bytes("\ufeffcorrect horse battery\r\n".encode())
    secret.chmod(0o600)
    code, err = _add(capsys, "--password-file", str(secret))
    assert code == 3 and err == [f"puente: error: the password file {secret} was saved with a byte-order mark: save "
                                 "it as UTF-8 without BOM; nothing changed"], err


def test_a_pass_entry_of_several_lines_is_refused_with_the_way_to_give_its_first(
        keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pass show x` prints the password, then login: and url: lines: refused (never cut to its first line), and the
    message says how to give only the first."""
    secret = tmp_path / "password"
    secret.write_bytes(b"correct horse battery\nlogin: ana\nurl: https://console.example\n")
    secret.chmod(0o600)
    code, err = _add(capsys, "--password-file", str(secret))
    assert code == 3 and len(err) == 1 and "--password-file <(pass show x | head -n1)" in err[0], err
    assert "horse" not in err[0] and "login:" not in err[0] and "console.example" not in err[0], err
