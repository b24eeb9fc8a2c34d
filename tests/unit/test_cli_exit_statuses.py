"""The exit statuses a person can look up: `puente --help`, the README and the command line's docstring agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from puente import cli

ROOT = Path(__file__).resolve().parents[2]


def _codes(text: str) -> set[int]:
    """The statuses a list of the form "Exit status: 0 done; 1 ...; 141 ..." names, whatever its line breaks."""
    listed = " ".join(text.split()).split("Exit status: ", 1)[1].split(". ", 1)[0]
    return {int(code) for code in re.findall(r"(?:^|; )(\d+) ", listed)}


def test_the_help_and_the_readme_list_the_same_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    """`puente --help` and the README's list name every status the command line ends with, and only those."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    helped = _codes(capsys.readouterr().out)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = _codes(readme[readme.index("(`PUENTE_DEBUG=1` shows it). Exit status: "):])
    assert helped == documented == set(cli.EXIT_STATUSES) == {0, 1, 2, 3, 4, 5, 70, 130, 141}


def test_the_docstring_names_every_exit_status() -> None:
    """The module docstring, where a reader of the code looks first, names each status too."""
    doc = " ".join((cli.__doc__ or "").split())
    assert all(re.search(rf"(?:\): |, ){code} ", doc) for code in cli.EXIT_STATUSES), doc
