"""`make clean` removes only what is rebuilt, never the keystore."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_keeps_the_keystore_and_the_audit_index() -> None:
    """`make clean` removes the local Kafka's and the demo's folders and the build, never `.puente` whole: it holds
    the default keystore (keys, partners' stores, console accounts) and the auditors' index."""
    commands = subprocess.run(["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              check=True).stdout.splitlines()
    removed = {arg.rstrip("/") for line in commands if line.startswith("rm ") for arg in shlex.split(line)[1:]
               if not arg.startswith("-")}
    assert {".puente/kafka", ".puente/demo", ".venv", "build"} <= removed, removed
    assert not removed & {".puente", ".puente/keys", ".puente/audit", ".", "*"}, removed


def _project(tmp_path: Path, puente: str) -> Path:
    """A copy of the Makefile beside a .puente with a local Kafka's folder, and a stand-in ``.venv/bin/puente``."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".puente" / "kafka" / "single").mkdir(parents=True)
    (tmp_path / ".puente" / "demo").mkdir()
    tool = tmp_path / ".venv" / "bin" / "puente"
    tool.parent.mkdir(parents=True)
    tool.write_text(f"#!/bin/sh\n{puente}\n")
    tool.chmod(0o755)
    return tmp_path


def _clean(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k != "PUENTE_HOME"} | env
    return subprocess.run(["make", "--no-print-directory", "clean"], cwd=project, env=variables, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_keeps_the_kafka_folder_when_the_wipe_failed(tmp_path: Path) -> None:
    """A wipe that failed (its Kafka may still run) keeps .puente/kafka and .venv, says so, and fails: deleting the
    folder would leave that Kafka running with its data gone. A wipe that worked lets clean go on."""
    project = _project(tmp_path, "exit 3")
    done = _clean(project)
    assert done.returncode != 0 and "kept .puente/kafka" in done.stderr, done.stderr
    assert (project / ".puente" / "kafka").is_dir() and (project / ".venv").is_dir()
    (project / ".venv" / "bin" / "puente").write_text("#!/bin/sh\nexit 0\n")
    assert _clean(project).returncode == 0
    assert not (project / ".puente" / "kafka").exists() and not (project / ".venv").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_refuses_a_puente_home_elsewhere(tmp_path: Path) -> None:
    """`kafka wipe` follows PUENTE_HOME while clean deletes ./.puente's folders: with PUENTE_HOME elsewhere, clean
    refuses in one line and deletes nothing; PUENTE_HOME naming ./.puente itself is fine."""
    (tmp_path / "p").mkdir()
    project = _project(tmp_path / "p", "exit 0")
    done = _clean(project, PUENTE_HOME=str(tmp_path / "elsewhere"))
    assert done.returncode != 0 and "PUENTE_HOME" in done.stderr and (project / ".puente" / "kafka").is_dir()
    assert _clean(project, PUENTE_HOME=str(project / ".puente")).returncode == 0
