"""The command line against hostile input: files that are no files, escape sequences, values that do not parse,
and a fault of Puente's own. Each is one line with a documented exit status: no hang, no traceback, nothing typed
echoed raw to the terminal, no value of a failing call's own error text."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from broker.audit.denials import CutLine
from broker.audit_index import ChainEnds
from broker.auditor import _authorizer_lines
from broker.kafka import KafkaConnection
from puente import cli
from puente.commands import audit, console_verbs, policy
from puente.errors import ConfigError

NO_KAFKA = KafkaConnection(bootstrap="kafka:9092")  # commands reach no Kafka here: every call is stubbed

pytestmark = pytest.mark.timeout(60)  # a FIFO read would hang: the test fails instead


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("args", [
    ["policy", "explain", "{fifo}", "--partner", "COL"],
    ["keys", "import-public", "{fifo}", "--id", "COL-enc-2099a", "--dir", "{tmp}/keys"],
    ["adapt", "snm", "--check", "{sample}", "--config", "{fifo}"],
], ids=["alert-file", "pem", "adapters-config"])
@pytest.mark.parametrize("source", ["fifo", "device"])
def test_a_pipe_no_one_writes_or_a_device_never_hangs(args: list[str], source: str, fifo: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO named as an input file with no writer reads as empty (one line about what it holds); a device (here
    /dev/zero, through a link) is refused before any read: neither hangs, nor reads without end."""
    sample = Path(__file__).resolve().parents[2] / "samples" / "snm"
    sample = next(sample.iterdir())
    named = fifo
    if source == "device":
        named = tmp_path / "zero"
        named.symlink_to("/dev/zero")
    code = cli.main([a.format(fifo=named, tmp=tmp_path, sample=sample) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1, err
    assert ("not a regular file or a pipe" in err[0]) == (source == "device"), err


def test_a_pipe_someone_writes_is_read() -> None:
    """A password given as `--password-file <(pass show x)` is a pipe its writer holds (/dev/fd/N): it is read,
    not refused."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"from a pipe\n")
        os.close(write_end)
        named = Path(f"/proc/self/fd/{read_end}")
        assert console_verbs._password(argparse.Namespace(password_file=named, name="alice")) == "from a pipe"
    finally:
        os.close(read_end)


def test_an_authorizer_log_is_streamed_and_a_device_refused(tmp_path: Path) -> None:
    """Denials are read line by line (a log of any size is never held whole); a line longer than any Kafka writes
    is given cut, with the whole line's length and hash (``denial`` still records it if it says denied), and the
    lines around it are read as before."""
    log = tmp_path / "authorizer.log"
    long = b"x" * 600_000
    log.write_bytes(b"first\r\n" + long + b"\r\nsecond\nlast, being written")
    assert list(_authorizer_lines(log)) == [
        "first", CutLine("x" * 4_096, len(long), hashlib.sha256(long).hexdigest()), "second"]
    log.write_bytes(b"first\n" + long)  # a long line Kafka is still writing
    assert list(_authorizer_lines(log)) == ["first"]
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    with pytest.raises(OSError, match="not a regular file or a pipe"):
        list(_authorizer_lines(zero))


def test_a_password_file_that_is_not_utf8_never_shows_its_bytes(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(b"caf\xa1-secret\n")
    secret.chmod(0o600)
    args = argparse.Namespace(password_file=secret, name="alice")
    with pytest.raises(ConfigError) as caught:
        console_verbs._password(args)
    assert "not UTF-8" in str(caught.value) and "0xa1" not in str(caught.value) and "secret" not in \
        str(caught.value).replace(str(secret), "")


def test_escape_sequences_typed_never_reach_the_terminal_raw(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["schema", "check", "\x1b]0;T\x07\x1b[2J\nFAKE"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "\x1b" not in err and "\\x1b" in err and "\nFAKE" not in err
    code = cli.main(["policy", "explain", "/nowhere/\x1b[2Jalert.json", "--partner", "COL"])
    err = capsys.readouterr().err
    assert code == 3 and "\x1b" not in err and "\\x1b[2J" in err and len(err.strip().splitlines()) == 1


def test_keys_init_prints_a_typed_folder_escaped(tmp_path: Path) -> None:
    """The folder `keys init` names comes from PUENTE_KEYS: a bidi override in it is shown escaped, never sent to
    the terminal to reorder the line; an escape sequence or a line break in it is refused, by the variable's name,
    before anything is made."""
    env = {**os.environ, "PUENTE_KEYS": str(tmp_path / "a\u202eFAKE"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "init"], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "\u202e" not in done.stdout and "a\\u202eFAKE" in done.stdout
    env["PUENTE_KEYS"] = str(tmp_path / "b\x1b[31m\nFAKE")
    done = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "init"], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 3 and done.stderr.startswith("puente: error: PUENTE_KEYS holds a control"), done.stderr
    assert "\x1b" not in done.stderr and "FAKE" not in done.stderr and not (tmp_path / "b\x1b[31m\nFAKE").exists()


def test_a_setting_that_does_not_parse_is_named(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PUENTE_AGENCIES", "not json")
    code = cli.main(["policy", "lint"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "PUENTE_AGENCIES" in err[0] and "not json" not in err[0]


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+14:00", "9999-12-31"])
@pytest.mark.parametrize("command", [["policy", "lint", "--at"], ["audit", "log", "--since"],
                                     ["audit", "log", "--until"], ["audit", "collect-denials", "--since"]])
def test_a_time_at_the_calendars_edge_is_a_usage_error(command: list[str], at: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Every time option reads alike (``_common.when``): one the commands cannot turn to UTC and back is a usage
    error in one line, not an internal one (`audit log --since 9999-12-31` was exit 70)."""
    with pytest.raises(SystemExit) as done:
        cli.main([*command, at])
    assert done.value.code == 2 and "between the years 0001 and 9999" in capsys.readouterr().err


def test_a_fault_of_puentes_own_is_one_line_with_its_own_status(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Anything a command did not expect is exit 70 and one line naming the kind of error, never its text (it
    may quote what was being read) and never a traceback."""
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("PE3480186 Pérez")

    monkeypatch.setattr(policy, "_lint", broken)
    code = cli.main(["policy", "lint"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERNAL == 70 and "internal error (RuntimeError)" in err
    assert "PE3480186" not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_kafka_env_quotes_its_values_for_the_eval_it_is_made_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "my dir;echo INJECTED"
    monkeypatch.setenv("PUENTE_HOME", str(home))
    assert cli.main(["kafka", "env"]) == 0
    out = capsys.readouterr().out
    assert shlex.split(out.splitlines()[1])[1].startswith(f"PUENTE_CLIENT_CONFIG={home}")
    assert "INJECTED" not in subprocess.run(["sh", "-c", out], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("args", [
    ["audit", "serve", "--refresh", "nan"], ["audit", "serve", "--refresh", "-1"],
    ["adapt", "snm", "--watch", ".", "--interval", "inf"], ["adapt", "snm", "--watch", ".", "--interval", "0"],
    ["broker", "run", "--exit-when-idle", "nan"], ["broker", "run", "--workers", "0"],
    ["broker", "run", "--metrics-port", "70000"], ["demo", "--alerts", "-5"],
    ["store", "list", "--partner", "COL", "--limit", "99999999999999999999999"],
], ids=["refresh-nan", "refresh-negative", "interval-inf", "interval-zero", "idle-nan", "no-workers", "port",
        "demo-alerts", "store-limit"])
def test_numbers_that_make_no_sense_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(args)
    err = capsys.readouterr().err
    assert done.value.code == 2 and ("seconds" in err or "give a whole number from 1 to" in err), err


def test_explain_escapes_what_the_alert_file_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`policy explain` quotes the alert as the file gives it: an escape sequence, a C1 control or a bidi override in
    its id reaches stdout escaped, never as one (the broker would refuse such an id outright)."""
    example = Path(__file__).resolve().parents[2] / "policies" / "examples" / "tocumen-red-notice-hit.json"
    alert = json.loads(example.read_text("utf-8"))
    alert["alert_id"] = alert["alert_id"] + "\x1b]0;PWN\x07\x9b\u202e"
    named = tmp_path / "alert.json"
    named.write_text(json.dumps(alert), "utf-8")
    code = cli.main(["policy", "explain", str(named), "--partner", "COL", "--at", "2026-11-03T12:00:00Z"])
    out = capsys.readouterr().out
    assert code == 0 and not any(c in out for c in "\x1b\x07\x9b\u202e") and "\\x1b]0;PWN\\x07" in out


@pytest.mark.parametrize("verb", [["lint"], ["explain", "{alert}", "--partner", "ALL"]], ids=["lint", "explain"])
def test_policy_at_reads_a_time_without_an_offset_as_utc(verb: list[str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`policy lint|explain --at` read a time without an offset as UTC, as every other time flag does, instead
    of refusing it as a usage error; it decides as the same time with Z."""
    alert = Path(__file__).resolve().parents[2] / "policies" / "examples" / "senan-gofast-seizure.json"
    args = ["policy", *[a.format(alert=alert) for a in verb]]
    assert cli.main([*args, "--at", "2025-06-02T14:00:00"]) == 0
    without = capsys.readouterr().out
    assert cli.main([*args, "--at", "2025-06-02T14:00:00Z"]) == 0
    assert capsys.readouterr().out == without


@pytest.mark.parametrize("partner", ["col", "ATLANTIS"])
def test_policy_explain_refuses_a_partner_the_policy_does_not_name(partner: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown partner (or one typed in lower case) is refused in one line listing the known ones, exit 3, as
    `store purge` does, rather than explained as denied everything with exit 0."""
    alert = Path(__file__).resolve().parents[2] / "policies" / "examples" / "senan-gofast-seizure.json"
    code = cli.main(["policy", "explain", str(alert), "--partner", "COL", "--partner", partner])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 3 and len(err) == 1 and f"unknown partner {partner!r}; known: " in err[0] and "COL" in err[0], err
    assert captured.out == ""


@pytest.mark.parametrize(("args", "said"), [
    (["keys", "generate", "--for", "partner"], "--for partner needs the partner's id, e.g. COL"),
    (["keys", "generate", "--for", "agency"], "--for agency needs the agency's id, e.g. SENAN"),
    (["keys", "generate", "--for", "agency", "SENAN", "--missing-only"], "--missing-only is for the broker's"),
])
def test_keys_generate_usage_mistakes_are_usage_errors(args: list[str], said: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A partner's or agency's keys without its id, or --missing-only for anyone but the broker: the command line
    lacks what it needs, exit 2 with the usage and one line saying which, before any key is read or written."""
    with pytest.raises(SystemExit) as done:
        cli.main([*args, "--dir", str(tmp_path / "keys")])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and err[0].startswith("usage: puente keys generate"), err
    assert err[-1].startswith("puente keys generate: error: ") and said in err[-1], err
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize(("args", "said"), [
    (["adapt", "senan"], "give export files to read ('-' for standard input), or --watch DIR"),
    (["adapt", "senan", "x.json", "--watch", "."], "not both"),
    (["adapt", "senan", "--watch", ".", "--check"], "--check reads files, not a watched folder"),
    (["adapt", "senan", "x.json", "--interval", "5"], "--interval applies only with --watch DIR"),
    (["adapt", "senan", "x.json", "--exit-when-idle", "5"], "--exit-when-idle applies only with --watch DIR"),
], ids=["nothing", "both", "check-watch", "interval", "idle"])
def test_adapt_usage_mistakes_are_usage_errors(args: list[str], said: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """No files and no --watch, both, or a --watch option without --watch: exit 2 with the usage and one line
    saying which, never exit 3 nor an option silently ignored."""
    with pytest.raises(SystemExit) as done:
        cli.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and err[0].startswith("usage: puente adapt senan"), err
    assert err[-1].startswith("puente adapt senan: error: ") and said in err[-1], err


FORGED = "x\npuente: error: forged\x1b[2J"


# A variable's value holding a control character or a line break is refused by its name (``puente.settings``):
# one that reaches an error holds other characters a terminal acts on, a bidi override and isolate.
FORGED_VARIABLE = "x\u202e\u2066puente: error: forged"


@pytest.mark.parametrize(("args", "env", "shown"), [
    (["keys", "import-public", FORGED, "--id", "COL-enc-2026b", "--dir", "{tmp}/keys"], {}, "\\n"),
    (["keys", "export-public", "COL-enc-2026a", "--dir", FORGED], {}, "\\n"),
    (["keys", "export-public", "COL-enc-2026a", "--out", FORGED + "/y", "--dir", "{tmp}/keys"], {}, "\\n"),
    (["policy", "explain", FORGED, "--partner", "COL"], {}, "\\n"),
    (["policy", "lint"], {"PUENTE_POLICY_DIR": FORGED_VARIABLE}, "x\\u202e\\u2066puente: error: forged"),
    (["policy", "lint"], {"PUENTE_AGENCY_COUNTRIES": '{"SENAN\\n\\u001b[2J": "COL"}'}, "\\n"),
], ids=["pem-path", "keystore", "out-path", "alert-path", "policy-dir-variable", "variable-key"])
def test_an_error_is_one_line_whatever_the_path_or_value_it_names(args: list[str], env: dict[str, str], shown: str,
                                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A line break, an escape sequence or a bidi control in a path, an id or a variable an error names is escaped
    by the one error boundary, whatever raised it: the error stays one line and never fakes a second
    `puente: error:` line."""
    assert cli.main(["keys", "generate", "--for", "partner", "COL", "--dir", str(tmp_path / "keys")]) == 0
    capsys.readouterr()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main([a.replace("{tmp}", str(tmp_path)) for a in args])
    err = capsys.readouterr().err
    assert code == 3 and len(err.strip().splitlines()) == 1 and "\x1b" not in err and "\u202e" not in err, err
    assert err.startswith("puente: error: ") and shown in err, err


def test_the_problems_of_a_policy_are_a_line_each_and_escaped(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """An error listing problems (a policy that does not load) prints each on a line of its own, escaped: a field
    name holding a line break stays within its problem's line."""
    root = tmp_path / "policy"
    shutil.copytree(Path(__file__).resolve().parents[2] / "policies" / "data", root)
    agreement = root / "agreements" / "pan-cri.yaml"
    text = agreement.read_text("utf-8")
    assert "\n      location.latitude: generalise" in text
    agreement.write_text(text.replace("\n      location.latitude: generalise",
                                      '\n      "location.lat\\e]0;pwned\\a\\nFAKE": generalise'), "utf-8")
    code = cli.main(["policy", "test", "--dir", str(root)])
    err = capsys.readouterr().err.splitlines()
    assert code == 3 and len(err) == 2 and err[0].startswith("puente: error: policy in ") and "\x1b" not in err[1], err
    assert err[1].startswith("agreements/pan-cri.yaml:") and "location.lat\\x1b]0;pwned\\x07\\nFAKE" in err[1], err


def test_policy_lint_and_test_print_what_the_policy_files_say_escaped(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`policy lint` findings quote field names from the policy files: an escape sequence or a line break in one
    reaches stdout escaped, on the line of its finding. A case name holds printable characters only: one holding an
    escape sequence is refused at load, the refusal escaped."""
    root = tmp_path / "policy"
    shutil.copytree(Path(__file__).resolve().parents[2] / "policies" / "data", root)
    suite = root / "agreements" / "pan-cri.tests.yaml"
    name = "  - name: migrant flow at Paso Canoas goes to CRI as numbers and places\n"
    # (a line break in a case name is refused at load: a name is one line)
    forged = '  - name: "\\e]0;pwned\\a FAKE migrant flow"\n'
    suite.write_text(suite.read_text("utf-8").replace(name, forged), "utf-8")
    assert cli.main(["policy", "test", "--dir", str(root), "--suite", "pan-cri"]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and "\x1b" not in captured.err and "\x07" not in captured.err, captured
    assert "pan-cri.tests.yaml:" in captured.err and "U+001B" in captured.err, captured.err
    agreement = root / "agreements" / "pan-cri.yaml"
    agreement.write_text(agreement.read_text("utf-8").replace(
        "\n      location.latitude: generalise", '\n      "location.lat\\e[2J\\nFAKE": generalise'), "utf-8")
    suite.unlink()  # the suite would name the field the agreement no longer has
    assert cli.main(["policy", "lint", "--dir", str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("agreements/pan-cri.yaml:") and "location.lat\\x1b[2J\\nFAKE" in out[0]


def test_a_typed_folder_is_echoed_escaped_on_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`keys generate` and `keys import-public` say where they wrote, naming the folder as --dir gave it: an escape
    sequence in it reaches stdout escaped, a line break never starts a line of its own."""
    folder = tmp_path / "\x1b[31mred\nFAKE"
    assert cli.main(["keys", "generate", "--for", "partner", "COL", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\nFAKE" not in out and "\\x1b[31mred\\nFAKE" in out, out
    pem = tmp_path / "COL-enc-2026a.pem"
    assert cli.main(["keys", "export-public", "COL-enc-2026a", "--dir", str(folder), "--out", str(pem)]) == 0
    assert cli.main(["keys", "import-public", str(pem), "--id", "COL-enc-2026a", "--dir", str(folder / "x")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\nFAKE" not in out and "\\x1b[31mred\\nFAKE" in out, out


@pytest.mark.parametrize("number", ["12345678901234567890123", "-1234567890123456789e999"], ids=["long", "double"])
def test_a_number_too_large_is_named_by_its_size_never_quoted(number: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`policy explain` refuses a number too large for the alert's types without quoting any of its digits: they
    are the alert's own (a document number, say); the error names only its size."""
    named = tmp_path / "a4.json"
    named.write_text(f'{{"a": {number}}}', "utf-8")
    code = cli.main(["policy", "explain", str(named), "--partner", "USA"])
    err = capsys.readouterr().err
    assert code == 3 and "too large" in err and "12345" not in err, err


@pytest.mark.parametrize(("name", "value"), [("PUENTE_NATIVE_AVRO", "2"), ("PUENTE_NATIVE_AVRO", "off"),
                                             ("PUENTE_DEBUG", "yes"), ("PUENTE_TYPO", "1"), ("PUENTE_KEYS", "")])
def test_schema_check_refuses_a_variable_every_command_refuses(name: str, value: str, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`schema check` reads no setting but PUENTE_NATIVE_AVRO, yet refuses a PUENTE_* variable that is no setting or
    cannot be read as it is, as every command does: PUENTE_NATIVE_AVRO=off must not check the native codec."""
    monkeypatch.setenv(name, value)
    code = cli.main(["schema", "check"])
    captured = capsys.readouterr()
    assert code == 3 and captured.out == "" and captured.err.startswith(f"puente: error: {name}"), captured




def test_audit_index_names_a_typed_index_path_and_its_reasons_escaped(bare_keys: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`audit index` says which index it caught up, as --index gave it, and why chain ends were not checked: an
    escape sequence or a line break in either is shown escaped, never sent to the terminal, nor starting a line
    that seems Puente's own."""
    def caught_up(coro: Any) -> SimpleNamespace:
        coro.close()  # the catch-up itself is Kafka's: only its summary line is checked here
        return SimpleNamespace(records=0, seconds=0.0, rows=0, partitions=0, problems=0,
                               ends=ChainEnds(why=["offsets of \x1b]0;T\x07\nFAKE group"]))

    monkeypatch.setattr(audit, "kafka", lambda cfg, name: NO_KAFKA)
    monkeypatch.setattr(audit, "signature_checks", lambda *a, **k: None)
    monkeypatch.setattr(audit, "run", caught_up)
    index = tmp_path / "a\npuente: error: FORGED LINE\x1b[31m.sqlite"
    assert cli.main(["audit", "index", "--index", str(index)]) == 5
    out = capsys.readouterr().out
    assert "\x1b" not in out and len(out.strip().splitlines()) == 1, out
    assert "a\\npuente: error: FORGED LINE\\x1b[31m.sqlite" in out and "\\x1b]0;T\\x07\\nFAKE group" in out


def test_audit_users_list_shows_what_the_accounts_file_holds_escaped(bare_keys: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`audit users list` reads names and scopes from the accounts file, which anyone with write access to it
    may have edited: shown escaped, one line per account."""
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    secret.chmod(0o600)
    accounts = tmp_path / "accounts.sqlite"
    assert cli.main(["audit", "users", "add", "ana", "--scope", "national", "--password-file", str(secret),
                     "--accounts", str(accounts)]) == 0
    with contextlib.closing(sqlite3.connect(accounts)) as db, db:
        db.execute("UPDATE accounts SET name = ?, scope = ?", ("ana\x1b[2J\nFAKE", "nat\x1b]0;T\x07"))
    capsys.readouterr()
    assert cli.main(["audit", "users", "list", "--accounts", str(accounts)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and len(out.strip().splitlines()) == 2, out
    assert "ana\\x1b[2J\\nFAKE" in out and "nat\\x1b]0;T\\x07" in out


def test_a_cancellation_nobody_asked_for_is_one_line_with_the_internal_status(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A CancelledError coming out of a command (a client library's task cancelled under it) is exit 70 and one
    line, as any fault of Puente's own; before, a BaseException, it went past the last resort: exit 1 and a
    traceback."""
    def cancelled(args: argparse.Namespace) -> int:
        raise asyncio.CancelledError

    monkeypatch.setattr(policy, "_lint", cancelled)
    code = cli.main(["policy", "lint"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERNAL and "internal error (CancelledError)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
