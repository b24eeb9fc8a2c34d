"""`puente schema check`: exit 0 only when the broker could build its codec over every known version."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from puente import cli
from schemas import _registry as registry


@pytest.fixture
def schema_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of schemas/avro that the registry loads instead, with its caches emptied before and after."""
    copy = tmp_path / "avro"
    shutil.copytree(registry.SCHEMA_DIR, copy)
    monkeypatch.setattr(registry, "SCHEMA_DIR", copy)
    registry.current.cache_clear()
    yield copy
    registry.current.cache_clear()


def test_the_schemas_as_they_are_pass(schema_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Today's schemas pass the check: every release compatible, the codec built."""
    assert cli.main(["schema", "check"]) == 0
    assert "codec" not in capsys.readouterr().out


def test_a_changed_default_that_keeps_the_fingerprint_fails_the_check(schema_dir: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A default changed in place keeps the fingerprint and resolves both ways, but the codec refuses to build over
    it (the broker would not start): the check says so in one line and exits 1."""
    path = schema_dir / "puente.RiskLevel.avsc"
    schema = json.loads(path.read_text())
    schema["default"] = "HIGH"
    path.write_text(json.dumps(schema))
    assert cli.main(["schema", "check"]) == 1
    codec_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  codec ")]
    assert len(codec_lines) == 1 and "v2 and current have the same fingerprint" in codec_lines[0]
