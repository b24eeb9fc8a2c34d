"""The --out copy: synced before each batch's Kafka commit, and a last line a crash cut short cut off on open."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from broker.partner import durable, open_copy


@pytest.mark.parametrize(("before", "after"), [
    (b'{"a": 1}\n{"b": 2}\n{"c": ', b'{"a": 1}\n{"b": 2}\n'),
    (b'{"c": 3', b""),
    (b'{"a": 1}\n' + b"x" * 200_000, b'{"a": 1}\n'),
    (b'{"a": 1}\n', b'{"a": 1}\n'),
    (b"", b""),
])
def test_a_line_a_crash_cut_short_is_cut_off_and_the_batch_appended_whole(tmp_path: Path, before: bytes,
                                                                          after: bytes) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(before)
    notes: list[str] = []
    with open_copy(path, notes.append) as out:
        out.write('{"c": 3}\n')
        out.flush()
        durable(out)
    assert path.read_bytes() == after + b'{"c": 3}\n'
    assert bool(notes) == (before != after)
    if notes:
        assert f"its last {len(before) - len(after)} byte(s) were a line a crash cut short" in notes[0]
        assert '"c"' not in notes[0] and "x" * 10 not in notes[0]  # no content in the note


def test_a_new_copy_is_made_private_and_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.jsonl"
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr("broker.partner.os.fsync", lambda fd: (synced.append(fd), real(fd))[1])
    with open_copy(path, lambda _: None) as out:
        assert len(synced) == 1  # the folder, for the new name
        out.write("{}\n")
        out.flush()
        durable(out)
        assert synced[1:] == [out.fileno()]
    assert path.stat().st_mode & 0o777 == 0o600
    durable(io.StringIO())  # no file behind it: nothing to sync, no error
