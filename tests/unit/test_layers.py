"""The layer contracts hold, and they are not decoration: a planted reverse import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("puente", "broker", "adapters", "policies", "schemas")
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=where, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The packages and the contracts, copied where a test may break them."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data",
                                                                                   "releases", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_shipped_code_keeps_every_contract(copy: Path) -> None:
    """lint-imports passes on the code as it is."""
    done = _lint(copy)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("policies/_decide.py", "import puente.cli", "Layers point down"),  # a pure core reaching the command line
    ("broker/pipeline.py", "from broker.worker import BrokerWorker", "Layers point down"),  # pure reaching a service
    ("broker/worker.py", "import aiokafka.admin", "Only broker.kafka"),  # a service around the Kafka seam
    ("broker/topology.py", "from puente.settings import PuenteSettings", "Pure cores do no I/O"),
])
def test_a_planted_reverse_import_fails(copy: Path, module: str, line: str, contract: str) -> None:
    """One import against the layers, added anywhere, makes lint-imports fail naming the contract."""
    path = copy / module
    text = path.read_text()
    path.write_text(text.replace("from __future__ import annotations\n",
                                 f"from __future__ import annotations\n\n{line}  # planted\n", 1))
    done = _lint(copy)
    assert done.returncode != 0
    assert contract in done.stdout and "BROKEN" in done.stdout


def test_a_production_install_runs_without_the_development_tools() -> None:
    """Without puente.dev (the service image leaves it out) the command line works and offers no development
    command. (The package is made unimportable in the child, as if it were not installed.)"""
    code = ("import sys, runpy; sys.modules['puente.dev'] = None; sys.argv = ['puente', '--help']; "
            "runpy.run_module('puente.cli', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "broker" in done.stdout and "subscribe" in done.stdout
    assert "demo" not in done.stdout and "kafka " not in done.stdout
