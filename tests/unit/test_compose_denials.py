"""compose.yaml's denials collector fails loudly: its command, taken from compose.yaml as sh would run it, with a
stand-in ``puente`` on PATH, stops with the collect's status or a one-line refusal, never skipping a node in
silence; and its health check reads the stamp a successful collect leaves.

No container runs here (the test machine has no container engine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LOGS = "/run/kafka-logs"
STAMP = "/tmp/puente-denials.ok"  # noqa: S108 (the container's own /tmp, replaced below)
NODES = ["kafka-1", "kafka-2", "kafka-3"]


def _service() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["denials"]


def _run(tmp_path: Path, status: int) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The denials command (compose's ``$$`` read as ``$``) run by sh with its log root and stamp moved under
    ``tmp_path``, on a PATH whose ``puente`` keeps its arguments and exits ``status``; the run, and the arguments
    ``puente`` was given (empty when it did not run)."""
    command = _service()["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("$$", "$")
    assert LOGS in script and STAMP in script
    script = script.replace(LOGS, str(tmp_path / "logs")).replace(STAMP, str(tmp_path / "stamp"))
    fake = tmp_path / "bin"
    fake.mkdir()
    called = tmp_path / "called"
    tools = {"id": "echo 1000", "sleep": 'echo "RAN sleep $*"',
             "puente": f'for a in "$@"; do printf "%s\\n" "$a"; done > {called}; exit {status}'}
    for tool, body in tools.items():
        (fake / tool).write_text(f"#!/bin/sh\n{body}\n")
        (fake / tool).chmod(0o755)
    (fake / "sh").symlink_to(shutil.which("sh") or "/bin/sh")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False, timeout=30,
                          env={**os.environ, "PATH": str(fake)})
    return done, called.read_text().splitlines() if called.exists() else []


def _logs(tmp_path: Path, *, without: str | None = None) -> None:
    for node in NODES:
        folder = tmp_path / "logs" / node
        folder.mkdir(parents=True)
        (folder / "server.log").write_text("")
        if node != without:
            (folder / "authorizer.log").write_text("")
    (tmp_path / "logs" / "kafka-2" / "authorizer.log.1").write_text("")


def test_a_successful_collect_reads_every_nodes_log_stamps_and_pauses(tmp_path: Path) -> None:
    """Every node's authorizer.log and its rolled-over files reach `puente audit collect-denials`; once it succeeds
    the stamp is left and the pause runs."""
    _logs(tmp_path)
    done, argv = _run(tmp_path, 0)
    assert done.returncode == 0, done.stderr
    assert argv[:2] == ["audit", "collect-denials"]
    logs = [argv[i + 1] for i, a in enumerate(argv) if a == "--log"]
    assert sorted(logs) == sorted([str(tmp_path / "logs" / n / "authorizer.log") for n in NODES]
                                  + [str(tmp_path / "logs" / "kafka-2" / "authorizer.log.1")])
    assert "RAN sleep 300" in done.stdout and (tmp_path / "stamp").exists()


@pytest.mark.parametrize("status", [1, 2, 5])
def test_a_failed_collect_stops_the_container_with_its_status(tmp_path: Path, status: int) -> None:
    """A collect that fails (refused login, wrong keys, a bad argument) ends the container with its exit status,
    neither pausing as after a success nor leaving the stamp the health check reads."""
    _logs(tmp_path)
    done, argv = _run(tmp_path, status)
    assert argv[:2] == ["audit", "collect-denials"]
    assert done.returncode == status
    assert "RAN sleep" not in done.stdout and not (tmp_path / "stamp").exists()


def test_a_node_log_folder_without_its_authorizer_log_is_refused_in_one_line(tmp_path: Path) -> None:
    """A node whose log folder holds no authorizer.log is not skipped: the container stops before collecting, with
    one line naming that folder."""
    _logs(tmp_path, without="kafka-3")
    done, argv = _run(tmp_path, 0)
    assert done.returncode != 0 and argv == []
    assert done.stderr.splitlines() == [f"puente: no authorizer.log in {tmp_path / 'logs' / 'kafka-3'}: that "
                                        "node's denials cannot be collected"]
    assert "RAN sleep" not in done.stdout and not (tmp_path / "stamp").exists()


def test_the_health_check_is_healthy_only_after_a_recent_successful_collect(tmp_path: Path) -> None:
    """The health check passes while the stamp is younger than one pause and a margin, and fails when it is
    missing (no collect has succeeded) or older (none has since)."""
    check = _service()["healthcheck"]
    assert check["test"][:2] == ["CMD", "python"]
    argv = [sys.executable, *[a.replace(STAMP, str(tmp_path / "stamp")) for a in check["test"][2:]]]

    def healthy() -> bool:
        return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode == 0

    assert not healthy()
    _logs(tmp_path)
    assert _run(tmp_path, 0)[0].returncode == 0
    assert healthy()
    old = time.time() - 300 - 10 * 60
    os.utime(tmp_path / "stamp", (old, old))
    assert not healthy()
