"""`puente kafka compose-files` prints what the operator must do by hand, each note one line on standard error."""
from __future__ import annotations

from pathlib import Path

import pytest

from puente import cli
from puente.commands import kafka
from puente.dev.compose import ComposeFiles


def test_each_note_of_the_files_written_reaches_the_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A note (a kept kafka-node password removed, and the steps to delete its login) is never dropped."""
    note = "deploy/secrets.json held a kafka-node password: restart every node together, then delete its login"
    monkeypatch.setattr(kafka.compose, "write", lambda out: ComposeFiles(tmp_path, 3, (note,)))
    assert cli.main(["kafka", "compose-files", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"puente kafka compose-files: note: {note}"]
