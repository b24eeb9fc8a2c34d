"""A key file is never replaced: made as a new name, so a second run on one folder fails instead of overwriting."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import broker.keystore as keystore
import broker.private_files as private_files
from broker.crypto.keys import KeyKind, KeyRecord, new_key, record_to_json
from broker.crypto.pem import public_pem
from broker.keystore import Holder, Keystore
from broker.private_files import write_atomic
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
KEY_ID = "COL-enc-2026a"


def _racing(monkeypatch: pytest.MonkeyPatch, store: Keystore, other: KeyRecord) -> None:
    """Make ``other`` appear at its name once ``store`` has checked the name is free and is about to write: what a
    second ``puente keys generate`` on the same folder does in that window."""
    real: Callable[..., None] = keystore.private_folder

    def then_the_other_run(path: Path, *, error: Callable[[str], Exception]) -> None:
        real(path, error=error)
        target = store.path / f"{other.key_id}.json"
        if not target.exists():
            write_atomic(target, record_to_json(other), 0o600 if other.secret is not None else 0o644)

    monkeypatch.setattr(keystore, "private_folder", then_the_other_run)


def test_generate_never_replaces_a_key_made_after_its_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key made by another run between generate's check and its write stays, and generate fails in one line."""
    store = Keystore(tmp_path / "COL")
    first = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    _racing(monkeypatch, store, first)
    with pytest.raises(KeyMaterialError) as info:
        store.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    assert str(info.value) == f"key {KEY_ID}: already exists in {store.path}; choose a new generation"
    assert store.load(KEY_ID).public == first.public
    assert [p.name for p in store.path.iterdir()] == [f"{KEY_ID}.json"]  # no temporary file left


def test_two_concurrent_generates_make_one_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs that both pass the check: exactly one key is made, the other run fails, and the file is the one made."""
    store = Keystore(tmp_path / "COL")
    both_checked = threading.Barrier(2, timeout=10)
    real_put = Keystore.put

    def put_once_both_checked(self: Keystore, record: KeyRecord) -> Path:
        both_checked.wait()
        return real_put(self, record)

    monkeypatch.setattr(Keystore, "put", put_once_both_checked)
    made: list[KeyRecord] = []
    failed: list[str] = []

    def run() -> None:
        try:
            made.append(store.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW))
        except KeyMaterialError as exc:
            failed.append(str(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len(failed) == 1 and "already exists" in failed[0]
    assert store.load(KEY_ID).public == made[0].public


def test_import_never_replaces_a_public_half_imported_after_its_check(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A different public half imported under the same id while an import runs stays; the import fails."""
    broker = Keystore(tmp_path / "broker")
    first = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW).public_only()
    second = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW)
    _racing(monkeypatch, broker, first)
    with pytest.raises(KeyMaterialError, match="already holds a different public key"):
        broker.import_public(public_pem(second), KEY_ID, source="col.pem", now=NOW)
    assert broker.load(KEY_ID).public == first.public


def test_put_refuses_a_name_that_holds_a_public_half(tmp_path: Path) -> None:
    """Writing a key over a public half of the same id is refused: the public half is not replaced."""
    store = Keystore(tmp_path / "broker")
    held = new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW).public_only()
    store.put(held)
    with pytest.raises(KeyMaterialError, match="already exists"):
        store.put(new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026a", NOW).public_only())
    assert store.load(KEY_ID).public == held.public


def test_export_of_the_same_public_half_again_writes_nothing(tmp_path: Path) -> None:
    """Exporting a public half into a folder that holds that very half leaves the file as it is."""
    store = Keystore(tmp_path / "COL")
    store.generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    path = store.export_public(KEY_ID, tmp_path / "out")
    before = path.stat().st_ino
    assert store.export_public(KEY_ID, tmp_path / "out") == path
    assert path.stat().st_ino == before


def test_set_writes_at_once_never_remove_a_key_another_run_kept(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs writing one set at once (`keys init` twice or more): one whose first key is in place and second not yet
    makes the others wait for the folder. Else one kept that first key, the first run's rollback removed it when its
    second name was taken, and a third made another key under that id: each run returns the keys the folder holds."""
    store = Keystore(tmp_path / "COL")
    real_link, real_flock = private_files._link_new, fcntl.flock
    links: list[str] = []
    waiting = threading.Event()
    made: dict[str, dict[str, bytes | None]] = {}
    others: list[threading.Thread] = []

    def run(name: str) -> None:
        keys = Keystore(store.path).generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW, keep_existing=True)
        made[name] = {record.key_id: record.public for record in keys}

    def flock(fd: int, operation: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            waiting.set()  # another run at the lock, about to wait for it
        real_flock(fd, operation)

    def link(tmp: Path, path: Path, data: bytes, mode: int) -> None:
        if threading.current_thread() is threading.main_thread():
            links.append(path.name)
            if len(links) >= 2:  # the first run past its first link: another starts, and ends or waits
                waiting.clear()
                other = threading.Thread(target=run, args=(f"run {len(links)}",))
                others.append(other)
                other.start()
                deadline = time.monotonic() + 10
                while not waiting.is_set() and other.is_alive() and time.monotonic() < deadline:
                    time.sleep(0.01)
        real_link(tmp, path, data, mode)

    monkeypatch.setattr(private_files, "_link_new", link)
    monkeypatch.setattr(fcntl, "flock", flock)
    run("first")
    for other in others:
        other.join(10)
    held = {key_id: store.load(key_id).public for key_id in ("COL-enc-2026a", "COL-rcpt-2026a")}
    assert len(made) == 1 + len(others) and all(keys == held for keys in made.values()), made
