"""`puente kafka wipe` reports the local Kafka's data deleted only once its folder is gone."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from puente import cli


@contextmanager
def _unremovable(path: Path) -> Iterator[None]:
    """``path`` cannot be deleted while inside: its folder made read-only (0500), or, for root, whom modes do not
    stop, the file made immutable; undone on leaving, so the test's folder can be cleaned up."""
    if os.geteuid() != 0:
        path.parent.chmod(0o500)
        try:
            yield
        finally:
            path.parent.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False).returncode:
        why = "running as root, where only an immutable file (chattr +i) resists deletion, and it is not available here"
        if os.environ.get("CI") == "true":
            pytest.fail(why)  # CI runs every test: a machine that cannot is told, never passed over
        pytest.skip(why)
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], capture_output=True, check=True)


def test_a_wipe_that_cannot_delete_a_file_fails_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A file the wipe cannot remove ends it non-zero, with one line naming that file, and no claim that the data
    was deleted."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    data = tmp_path / "kafka" / "single" / "node1" / "data"
    data.mkdir(parents=True)
    stuck = data / "meta.properties"
    stuck.write_text("version=1\n")
    with _unremovable(stuck):
        code = cli.main(["kafka", "wipe"])
        out, err = capsys.readouterr()
    assert code != 0
    assert "deleted" not in out and "is stopped" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("puente: error: ") and str(stuck) in lines[0], lines
    assert stuck.exists()


def test_a_wipe_deletes_the_folder_and_one_with_nothing_to_delete_succeeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A wipe removes the shape's whole folder and says so; run again, with nothing left, it succeeds as well."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    folder = tmp_path / "kafka" / "single"
    (folder / "node1" / "data").mkdir(parents=True)
    (folder / "node1" / "data" / "meta.properties").write_text("version=1\n")
    for _ in range(2):
        assert cli.main(["kafka", "wipe"]) == 0
        assert "its data deleted" in capsys.readouterr().out
        assert not folder.exists()
