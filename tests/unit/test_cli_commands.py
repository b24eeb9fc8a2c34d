"""The command line imports only the module of the command typed, and its table names every command."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

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


def test_without_argv_every_command_is_registered_whatever_the_process_was_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`build_parser()` is every command's parser: a caller parsing its own list (a test run with `-k broker`,
    the compose check) must not get the parser of the process's own first argument."""
    monkeypatch.setattr(sys, "argv", ["pytest", "-k", "broker"])
    assert sorted(_names(build_parser())) == sorted(COMMANDS)


@pytest.mark.parametrize("argv", [["-h", "broker"], ["--", "broker"], ["--version"]])
def test_a_command_line_not_starting_with_a_command_gets_every_command(argv: list[str]) -> None:
    assert sorted(_names(build_parser(argv))) == sorted(COMMANDS)


def test_a_development_command_missing_from_the_install_is_refused_with_the_commands_there_are() -> None:
    """The service image has no puente.dev: `puente kafka up` there is a usage error listing the commands it has."""
    probe = ("import sys; sys.modules['puente.dev'] = None; from puente.cli import main; "
             "sys.exit(main(['kafka', 'up']))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "invalid choice: 'kafka'" in done.stderr and "'broker'" in done.stderr and "'demo'" not in done.stderr


def test_an_unknown_command_is_refused_with_the_full_list() -> None:
    done = subprocess.run([sys.executable, "-m", "puente.cli", "brokr", "run"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert "invalid choice: 'brokr'" in done.stderr and "'broker'" in done.stderr and "'audit'" in done.stderr


def test_a_service_command_leaves_the_others_unimported() -> None:
    """`puente broker run` loads neither the console, the audit tools nor the demo."""
    probe = ("import sys; from puente.cli import build_parser; build_parser(['broker', 'run']); "
             "print(sorted(m for m in sys.modules if m.startswith(('puente.commands.', 'puente.console', "
             "'puente.dev', 'broker.audit_index'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['puente.commands._common', 'puente.commands.broker']"


def test_each_commands_docstring_names_only_verbs_it_registers() -> None:
    """A command module's docstring (``puente schema check|show``) promises no verb the command does not have."""
    def verbs_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(found[0].choices) if found else {}

    commands = verbs_of(build_parser())
    checked = 0
    for name in sorted(set(COMMANDS.values())):
        doc = importlib.import_module(f"puente.commands.{name}").__doc__ or ""
        for words, verbs in re.findall(r"``puente ([a-z-]+(?: [a-z-]+)*?) ([a-z-]+(?:\|[a-z-]+)+)", doc):
            first, *more = words.split()
            parser = commands[first]
            for word in more:
                parser = verbs_of(parser)[word]
            assert set(verbs.split("|")) <= set(verbs_of(parser)), (name, words, verbs)
            checked += 1
    assert checked >= 5


ROOT = Path(__file__).resolve().parents[2]
# What Puente tells a person to run: its messages, docstrings and documents (bench/ records past runs as they were).
_TOLD = [*ROOT.glob("broker/**/*.py"), *ROOT.glob("puente/**/*.py"), *ROOT.glob("adapters/**/*.py"),
         *ROOT.glob("policies/**/*.py"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("scripts/*"), ROOT / "README.md",
         ROOT / "compose.yaml", ROOT / "Makefile"]
# `puente acls plan`, or a command with a verb and no `puente` (`acls plan`), as messages often name them.
_MENTION = re.compile(r"`(?:puente ((?:[a-z][a-z0-9-]* ?)+)|((?:kafka|schema|policy|keys|topics|users|acls|broker|"
                      r"store|audit|consent) [a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*))")


def _unknown(words: list[str]) -> str | None:
    """The first of ``words`` that is not a command or verb where the parser expects one; None when they resolve
    (a word after a command without verbs is an argument)."""
    parser = build_parser([])
    for word in words:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None:
            return None
        if word not in sub.choices:
            return word
        parser = sub.choices[word]
    return None


def test_every_command_puente_tells_a_person_to_run_exists() -> None:
    """A `puente ...` named in a message, docstring or document is a real command and verb (`audit verify` once said
    `puente acl plan`, which argparse refuses)."""
    wrong = []
    for path in _TOLD:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for found in _MENTION.finditer(line):
                words = (found.group(1) or found.group(2)).split()
                word = _unknown(words)
                if word is not None:
                    wrong.append(f"{path.relative_to(ROOT)}:{number}: `puente {' '.join(words)}` ({word!r})")
    assert wrong == []
