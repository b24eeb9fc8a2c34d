"""`puente recall`, `consent grant` and `reclassify` without Kafka: usage, bad input and an unreachable Kafka,
each one line with its documented exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from unreachable import unreachable_kafka

ALERT = "SNM:PTY-20261103-00231"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore made by `puente keys init`, so that the commands get as far as Kafka."""
    root = tmp_path_factory.mktemp("lifecycle") / "keys"
    done = subprocess.run([sys.executable, "-m", "puente.cli", "keys", "init"],
                          env={**os.environ, "PUENTE_KEYS": str(root)}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return root


def _puente(keys: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k not in ("PUENTE_CLIENT_CONFIG", "PUENTE_BOOTSTRAP")}
    variables = {**inherited, **unreachable_kafka(keys.parent), "PUENTE_KAFKA_TIMEOUT_S": "2",
                 "PUENTE_KEYS": str(keys), **env}
    return subprocess.run([sys.executable, "-m", "puente.cli", *args], env=variables, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(("args", "words"), [
    (("recall", ALERT), "--reason"),
    (("recall", ALERT, "--reason", "whim"), "invalid choice"),
    (("recall", "--reason", "error"), "ALERT_ID"),
    (("consent", ALERT), "invalid choice"),
    (("consent", "grant", ALERT), "--partner"),
    (("reclassify", ALERT), "give at least one change"),
])
def test_a_wrong_command_line_is_usage_exit_2(keys: Path, args: tuple[str, ...], words: str) -> None:
    """A missing or unknown argument, a consent without a partner, a reclassification without a change: exit 2,
    argparse's usage and one error line naming what is missing."""
    done = _puente(keys, *args)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "words"), [
    (("recall", "PTY-20261103-00231", "--reason", "error"), "starts with the code of the agency"),
    (("recall", "XYZ:PTY-1", "--reason", "legal"), "starts with the code of the agency"),
    (("consent", "grant", ALERT, "--partner", "USA", "--partner", "VEN"), "--partner VEN: not a partner the policy"),
    (("reclassify", ALERT, "--classification", "ULTRA"), "--classification is not a known code"),
    (("reclassify", ALERT, "--releasable-to", "COL,VEN"), "--releasable-to (entry 2 of 2) is not a known code"),
    (("reclassify", ALERT, "--handling-code", "H7"), "--handling-code is not a known code"),
])
def test_bad_input_is_refused_before_kafka_exit_3(keys: Path, args: tuple[str, ...], words: str) -> None:
    """An id without its agency prefix, a partner or a marking the policy does not know: one line, exit 3, and
    Kafka (unreachable here) is never asked."""
    done = _puente(keys, *args)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("puente: error:") and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "could not be reached" not in done.stderr


def test_missing_agency_keys_are_named(keys: Path, tmp_path: Path) -> None:
    """Without the agency's own keys the command says which keystore it looked in, exit 3, before Kafka."""
    done = _puente(keys, "recall", ALERT, "--reason", "error", PUENTE_KEYS=str(tmp_path / "nowhere"))
    assert done.returncode == 3, done.stderr
    assert "nowhere/agencies/SNM" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ("recall", ALERT, "--reason", "source-protection"),
    ("consent", "grant", ALERT, "--partner", "USA,CRI"),
    ("reclassify", ALERT, "--classification", "confidencial", "--caveats", ""),
])
def test_an_unreachable_kafka_is_one_line_and_exit_4(keys: Path, args: tuple[str, ...]) -> None:
    """With valid input and Kafka at a closed port, each command prints one `puente: error:` line naming what to
    check, no traceback and no resource warning, and exits 4."""
    done = _puente(keys, *args)
    assert done.returncode == 4, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("puente: error:"), done.stderr
    assert "could not be reached" in lines[0] and f"check bootstrap.servers in {keys.parent}" in lines[0]
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(("args", "words"), [
    (("recall", "XYZ:PTY-1", "--reason", "error"), "starts with the code of the agency"),
    (("consent", "grant", ALERT, "--partner", "VEN"), "--partner VEN: not a partner the policy"),
    (("reclassify", ALERT, "--handling-code", "H7"), "--handling-code is not a known code"),
])
def test_bad_input_is_named_before_missing_kafka_settings(keys: Path, args: tuple[str, ...], words: str) -> None:
    """With no Kafka settings at all and a wrong id or code, the one error names the wrong input, not the Kafka
    settings: an officer fixing the first error is not sent to the second on the next run."""
    env = {k: v for k, v in os.environ.items() if k not in ("PUENTE_CLIENT_CONFIG", "PUENTE_BOOTSTRAP")}
    done = subprocess.run([sys.executable, "-m", "puente.cli", *args], env={**env, "PUENTE_KEYS": str(keys)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("puente: error:") and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "PUENTE_CLIENT_CONFIG" not in done.stderr
