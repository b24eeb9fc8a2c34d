"""The command line imports only the module of the command typed, and its table names every command."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from puente.cli import COMMANDS, build_parser


def _names(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_the_table_names_exactly_the_commands_the_modules_register() -> None:
    """A command added to a module but not to the table (or the reverse) fails here, not in a user's hands."""
    every = _names(build_parser([]))
    assert sorted(every) == sorted(COMMANDS)
    assert every == list(COMMANDS)  # `puente --help` lists them in the table's order


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_typed_gets_its_own_module_s_commands_only(name: str) -> None:
    module = COMMANDS[name]
    assert _names(build_parser([name, "--help"])) == [n for n, m in COMMANDS.items() if m == module]


def test_an_unknown_command_is_refused_with_the_full_list() -> None:
    done = subprocess.run([sys.executable, "-m", "puente.cli", "brokr", "run"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert "invalid choice: 'brokr'" in done.stderr and "'broker'" in done.stderr and "'audit'" in done.stderr


def test_a_service_command_leaves_the_others_unimported() -> None:
    """`puente broker run` loads neither the console, the audit tools nor the demo."""
    probe = ("import sys; from puente.cli import build_parser; build_parser(['broker', 'run']); "
             "print(sorted(m for m in sys.modules if m.startswith('puente.commands.')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['puente.commands._common', 'puente.commands.broker']"
