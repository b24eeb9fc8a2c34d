"""Standard output in an encoding that cannot write every character escapes those it cannot, never failing the
command as an internal error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import puente.cli  # noqa: F401 - registers the "puente.escape" error handler

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
