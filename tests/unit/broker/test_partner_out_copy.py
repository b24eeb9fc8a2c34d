"""The --out copy: synced before each batch's Kafka commit, and a last line a crash cut short cut off on open."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from broker.partner import COPY_LINE_MAX, durable, open_copy
from puente.errors import StoreError

A = b'{"alert_id": "SNM:a", "v": 1}\n'
B = b'{"alert_id": "SNM:b", "v": 2}\n'
C = '{"alert_id": "SNM:c", "v": 3}\n'


@pytest.mark.parametrize(("before", "after"), [
    (A + B + b'{"alert_id": "SNM:c", ', A + B),
    (b'{"alert_id": "SNM:c', b""),
    (A + b'{"alert_id": "' + b"x" * 200_000, A),
    (A, A),
    (b"", b""),
    (A + b"{", A),  # a power cut right after a line's first byte
    (A + b"\0" * 4096, A),  # grown by the file system, never written
    (A + b'{"alert_id": "SNM:c", ' + b"\0" * 100, A),
    (A + B.rstrip(b"\n"), A),  # all of a line but its line feed
    (A + b'{"a":' + b"[" * 200_000, A),  # the start of a line too deep to parse: cut as any other
])
def test_a_line_a_crash_cut_short_is_cut_off_and_the_batch_appended_whole(tmp_path: Path, before: bytes,
                                                                          after: bytes) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(before)
    notes: list[str] = []
    with open_copy(path, notes.append) as out:
        out.write(C)
        out.flush()
        durable(out)
    assert path.read_bytes() == after + C.encode()
    assert bool(notes) == (before != after)
    if notes:
        assert f"its last {len(before) - len(after)} byte(s) were a line a crash cut short" in notes[0]
        assert "SNM:c" not in notes[0] and "x" * 10 not in notes[0]  # no content in the note


@pytest.mark.parametrize(("before", "why"), [
    (b'{"name": "a document of the user\'s own"}', "ends in something other than a JSON line"),
    (b'{"name": "no newline at all"', None),  # one line cut short: nothing whole to tell it by, so it is cut
    (b"SQLite format 3\x00" + b"\x00" * 4000 + b"\n" + b"\x01" * 100, "does not start as a JSON line"),
    (b'{\n  "key_id": "COL-enc-2026a",\n  "secret": "c2VjcmV0"\n}\n', "does not start as a JSON line"),
    (b'{"key_id": "COL-enc-2026a", "secret": "c2VjcmV0"}\n', "has a last line that is no alert's JSON line"),
    (A + b"notes of mine\n", "has a last line that is no alert's JSON line"),
    (A + b"[1, 2]\n", "has a last line that is no alert's JSON line"),
    (A + b'{"alert_id": 7}\n', "has a last line that is no alert's JSON line"),
    (A + b'{"key_id": "COL-enc-2026a"}', "ends in something other than a JSON line"),
    (A + b'{"a":' + b"[" * 200_000 + b"\n", "has a last line that is no alert's JSON line"),
    (b'{"name": "' + b"x" * (COPY_LINE_MAX + 10) + b'"}', "ends in a line too long to be an alert's"),
])
def test_a_file_that_is_no_copy_is_refused_untouched(tmp_path: Path, before: bytes, why: str | None) -> None:
    """Whatever was at the --out path that no subscriber wrote (a store, a key file, a document) is neither cut
    nor appended to: one line names the file and why, and quotes nothing of what it holds."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(before)
    if why is None:
        with open_copy(path, lambda _: None):
            pass
        assert path.read_bytes() == b""
        return
    with pytest.raises(StoreError) as refused:
        open_copy(path, lambda _: None)
    assert path.read_bytes() == before
    assert why in str(refused.value) and str(path) in str(refused.value) and "\n" not in str(refused.value)
    assert "c2VjcmV0" not in str(refused.value) and "COL-enc" not in str(refused.value)


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


def test_the_folder_is_synced_for_a_copy_made_before_it_was_opened(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`puente subscribe` makes the --out file when it checks it, before it opens the copy: the folder holding the
    new name is synced all the same, before any line is committed past."""
    path = tmp_path / "out.jsonl"
    path.touch(mode=0o600)
    folders: list[int] = []
    real = os.fsync
    monkeypatch.setattr("broker.partner.os.fsync",
                        lambda fd: (folders.append(fd) if os.path.isdir(f"/proc/self/fd/{fd}") else None, real(fd))[1])
    with open_copy(path, lambda _: None):
        assert len(folders) == 1
