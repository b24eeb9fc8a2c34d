"""Standard output in an encoding that cannot write every character escapes those it cannot, never failing the
command as an internal error."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import puente.cli  # noqa: F401 - registers the "puente.escape" error handler
import puente.commands.audit as audit
import puente.commands.policy as policy
from policies._suite import CaseResult, SuiteReport

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies" / "examples" / "darien-armed-group-sighting.json"


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_spanish_text_on_a_narrow_standard_output_is_escaped_not_an_internal_error(encoding: str) -> None:
    """`policy explain` (Policía, Panamá, dashes) with PYTHONIOENCODING=latin-1 or ascii exits 0, its output in that
    encoding with what it cannot write escaped: before, exit 70, "internal error ... report it"."""
    env = {k: v for k, v in os.environ.items() if "PUENTE" not in k.upper()}
    done = subprocess.run([sys.executable, "-m", "puente.cli", "policy", "explain", str(EXAMPLE), "--partner", "COL"],
                          env={**env, "PYTHONIOENCODING": encoding}, capture_output=True, timeout=120, check=False,
                          cwd=ROOT)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    out = done.stdout.decode(encoding)
    assert "Partner    COL \\u2014 Colombia \\u2014 Polic" in out
    assert ("Polic\\u00eda Nacional" if encoding == "ascii" else "Policía Nacional") in out


@pytest.mark.parametrize(("io_encoding", "utf8_mode", "errors"), [("ascii:replace", "0", "replace"),
                                                                  ("latin-1:backslashreplace", "0", "backslashreplace"),
                                                                  ("", "1", "surrogateescape"),
                                                                  ("ascii", "0", "puente.escape")])
def test_a_handler_the_user_chose_for_standard_output_is_kept(io_encoding: str, utf8_mode: str, errors: str) -> None:
    """PYTHONIOENCODING=ascii:replace or UTF-8 mode's surrogateescape are the user's choice: Puente keeps them, and
    replaces only a strict handler, which would end the command at the first character it cannot write."""
    env = {k: v for k, v in os.environ.items() if "PUENTE" not in k.upper() and k != "PYTHONIOENCODING"}
    env.update({"PYTHONUTF8": utf8_mode, **({"PYTHONIOENCODING": io_encoding} if io_encoding else {})})
    code = "import sys, puente.cli as c; c._stdout_escaping(); print(sys.stdout.errors)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=True, cwd=ROOT)
    assert done.stdout.decode().strip() == errors


def test_a_json_line_escaped_so_is_the_same_json() -> None:
    """The escapes are JSON's (a surrogate pair beyond the BMP), so a JSON line written through them reads back as
    the same value: Python's backslashreplace (\\xed, \\U0001f600) would make it invalid JSON."""
    value = {"summary": "Policía — Panamá \U0001f6a8", "quote": 'a "\\u00ed" as text'}
    for encoding in ("ascii", "latin-1", "cp1252"):
        written = json.dumps(value, ensure_ascii=False).encode(encoding, "puente.escape")
        assert json.loads(written.decode(encoding)) == value


def test_the_explain_tables_line_up_as_an_ascii_output_writes_them() -> None:
    """`policy explain --partner COL` with PYTHONIOENCODING=ascii: the `0.01° grid` cells are written `\\u00b0`, and
    the columns are measured as written, so every row's rule starts where the header's does."""
    env = {k: v for k, v in os.environ.items() if "PUENTE" not in k.upper()}
    done = subprocess.run([sys.executable, "-m", "puente.cli", "policy", "explain", str(EXAMPLE), "--partner", "COL"],
                          env={**env, "PYTHONIOENCODING": "ascii"}, capture_output=True, timeout=120, check=True,
                          cwd=ROOT)
    lines = done.stdout.decode("ascii").splitlines()
    table = lines[lines.index("Changes    the agreement's own") + 1:]
    table = table[:next(i for i, line in enumerate(table) if not line.startswith("  "))]
    assert any("0.01\\u00b0 grid" in line for line in table)
    assert {line.index("COMBIFRON-BORDER") for line in table[1:]} == {table[0].index("rule")}


def _ascii_stdout(monkeypatch: pytest.MonkeyPatch) -> io.TextIOWrapper:
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="puente.escape", newline="\n")
    monkeypatch.setattr(sys, "stdout", out)
    return out


def _written(out: io.TextIOWrapper) -> list[str]:
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("ascii").splitlines()


def test_the_audit_log_table_lines_up_as_an_ascii_output_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alert ids and partners an ASCII output escapes (``Polic\\u00eda``) are measured and padded as written: the
    version and partner columns of every row start where the header's do."""
    out = _ascii_stdout(monkeypatch)
    rows = [{"kind": "DECISION", "at": "2026-11-03T10:00:00Z", "alert_id": "SNM:Policía-Panamá", "version": 1,
             "partner": "COLñ", "decision": "DELIVER", "agreement": "Acuerdo-ñ"},
            {"kind": "DECISION", "at": "2026-11-03T10:01:00Z", "alert_id": "SNM:1", "version": 2, "partner": "USA",
             "decision": "WITHHOLD", "agreement": "A"}]
    audit._rows(rows, max(audit._width(r["alert_id"]) for r in rows))
    header, first, second = _written(out)
    assert "Polic\\u00eda" in first
    for column in (" v ", " partner", " outcome", " agreement", " why"):
        at = header.index(column)
        assert first[at] == second[at] == " " and first[at + 1] != " " and second[at + 1] != " ", column


def test_the_policy_test_table_lines_up_as_an_ascii_output_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite case named in Spanish is measured as an ASCII output writes it: the partner column stays in line."""
    out = _ascii_stdout(monkeypatch)
    results = (CaseResult("s", "protección de menores", "COL", "DELIVER", "DELIVER", ()),
               CaseResult("s", "b", "USA", "WITHHOLD", "WITHHOLD", ()))
    policy._print_report(SuiteReport(results, ()))
    header, first, second = _written(out)
    assert "protecci\\u00f3n" in first
    assert first.index("COL") == second.index("USA") == header.index("partner")
