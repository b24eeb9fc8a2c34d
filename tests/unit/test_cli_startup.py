"""What a command loads as it starts: the tests run the command line as a process hundreds of times, and an
operator's every audit verb waits on it, so a command must not load what only another command needs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The console's web stack: only `puente audit serve` needs it.
WEB = ("puente.console", "puente.commands.console", "starlette", "uvicorn", "jinja2")

_LOADED = """
import sys
from puente.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\n".join(sys.modules))
"""


def _loaded(*argv: str) -> set[str]:
    """The modules a fresh ``puente ARGV`` process holds when it ends."""
    done = subprocess.run([sys.executable, "-c", _LOADED, *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PUENTE_DEBUG": "0"}, check=False)
    return set(done.stderr.split("\n"))


@pytest.mark.parametrize("argv", [("audit", "verify", "--help"), ("audit", "log", "--help"), ("audit", "--help"),
                                  ("audit", "users", "list", "--help"), ("audit", "serve", "--help")])
def test_audit_verbs_start_without_the_web_console(argv: tuple[str, ...]) -> None:
    """No `audit` verb loads the console's web application, server or templates to start (serve's help neither)."""
    loaded = _loaded(*argv)
    assert "puente.commands.audit" in loaded  # the command did start
    assert sorted(name for name in loaded if name in WEB or name.startswith(tuple(f"{web}." for web in WEB))) == []


def test_serve_loads_the_console_when_it_runs(tmp_path: os.PathLike[str]) -> None:
    """`audit serve` itself reaches its handler, in the console's module: refused here before Kafka, on its index."""
    loaded = _loaded("audit", "serve", "--index", os.path.join(tmp_path, "missing", "index.sqlite"))
    assert "puente.commands.console" in loaded
