"""`make clean` removes only what is rebuilt, never the keystore."""

from __future__ import annotations

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
