"""A journal append cut short (a full disk) never garbles the journal, and a garbled journal is set aside, said,
never replaced by an empty one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters import watch as watch_module
from adapters.watch import JOURNAL_NAME, Journal


def test_a_short_append_is_undone_and_the_journal_written_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An append the disk took only part of is cut back and the journal written whole: it reads back with every
    file. Before, half a line stayed, the next append made it garbled, and a restart started empty."""
    said: list[str] = []
    journal = Journal.load(tmp_path, said.append)
    for i in range(3):
        journal.note(f"f{i}.jsonl", (1, i, 10, 10))
    real = os.write
    monkeypatch.setattr(watch_module.os, "write", lambda fd, data: real(fd, data[: len(data) // 2]))
    journal.note("f3.jsonl", (1, 3, 10, 10))
    monkeypatch.setattr(watch_module.os, "write", real)
    journal.note("f4.jsonl", (1, 4, 10, 10))
    again = Journal.load(tmp_path, said.append)
    assert list(again.entries) == [f"f{i}.jsonl" for i in range(5)] and said == []


def test_a_garbled_journal_is_set_aside_not_replaced(tmp_path: Path) -> None:
    """A journal that is not one (garbled) is renamed aside, said so, and its bytes kept; the next write starts a
    journal of its own beside it."""
    garbled = b'{"version": 2, "settled_ns": null}\n{"name": "a.jsonl", "ident\n'
    (tmp_path / JOURNAL_NAME).write_bytes(garbled + b'{"name": "b.jsonl"}\n')
    said: list[str] = []
    journal = Journal.load(tmp_path, said.append)
    journal.note("c.jsonl", (1, 3, 10, 10))
    aside = tmp_path / f"{JOURNAL_NAME}.bad"
    assert aside.read_bytes().startswith(garbled)
    assert len(said) == 1 and "cannot be read" in said[0] and f"{JOURNAL_NAME}.bad" in said[0]
    assert list(Journal.load(tmp_path, said.append).entries) == ["c.jsonl"]
    (tmp_path / JOURNAL_NAME).write_bytes(b"garbled again\n")
    Journal.load(tmp_path, said.append)
    assert aside.read_bytes().startswith(garbled) and (tmp_path / f"{JOURNAL_NAME}.1.bad").exists()
