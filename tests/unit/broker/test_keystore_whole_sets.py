"""One holder's set of keys is made whole or not at all: a run that fails half-way leaves none of it, so a rerun
makes the set, and the broker never signs with a new signing key whose set failed; a run killed half-way leaves the
generation in use as it was, and the rest of that generation is refused: a new generation is made instead."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import broker.private_files
from broker.crypto import KeyKind
from broker.crypto.keys import new_key
from broker.keystore import TRIAL_MARK, Holder, Keystore, holder_path, trial_marked
from puente.errors import KeyMaterialError

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
AGREEMENTS = ["COMBIFRON", "PAN-USA"]


def _failing_on_second(monkeypatch: pytest.MonkeyPatch, name: str, error: int,
                       counts: Callable[[tuple[object, ...]], bool]) -> None:
    """``os.<name>`` raising ``error`` at its second call that ``counts``, as a full disk or a failing device would."""
    real = getattr(os, name)
    seen = [0]

    def flaky(*args: object, **kwargs: object) -> object:
        if counts(args):
            seen[0] += 1
            if seen[0] == 2:
                raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, flaky)


def _file_written(args: tuple[object, ...]) -> bool:
    """Whether an ``os.fsync`` call syncs a regular file (a key being written), not a folder."""
    fd = args[0]
    return isinstance(fd, int) and stat.S_ISREG(os.fstat(fd).st_mode)


def test_a_full_disk_on_the_second_key_leaves_none_and_the_rerun_makes_them(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the second key file of a partner's set: the run fails in one line saying none was written, the
    folder holds no key and no temporary file, and the same command run again makes both keys."""
    store = Keystore(tmp_path / "COL")
    with monkeypatch.context() as patched:
        _failing_on_second(patched, "fsync", errno.ENOSPC, _file_written)
        with pytest.raises(KeyMaterialError) as info:
            store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message and "none of them was written" in message
    assert sorted(p.name for p in store.path.iterdir()) == []
    made = store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    assert sorted(r.key_id for r in made) == ["COL-enc-2026a", "COL-rcpt-2026a"]


def test_a_broker_rotation_that_fails_half_way_leaves_no_new_signing_key(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker's next generation: a link that fails for the second key (after the first was put in place) removes
    the first again, so the broker still signs with the generation in use, and the rotation run again goes through."""
    store = Keystore(tmp_path / "broker")
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=AGREEMENTS)
    before = sorted(p.name for p in store.path.iterdir())
    with monkeypatch.context() as patched:
        _failing_on_second(patched, "link", errno.EIO, lambda args: True)
        with pytest.raises(KeyMaterialError, match="none of them was written"):
            store.generate_own(Holder.BROKER, "broker", generation="2026b", now=NOW, agreements=AGREEMENTS)
    assert sorted(p.name for p in store.path.iterdir()) == before
    assert store.broker_signing_keys()[0].key_id == "broker-sign-2026a"
    made = store.generate_own(Holder.BROKER, "broker", generation="2026b", now=NOW, agreements=AGREEMENTS)
    assert [r.key_id for r in made] == ["broker-sign-2026b", "broker-kex-2026b"]
    assert store.broker_signing_keys()[0].key_id == "broker-sign-2026b"


def test_missing_pseudonym_keys_are_made_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--missing-only making two agreements' pseudonym keys: the second failing leaves neither, and the rerun makes
    both."""
    store = Keystore(tmp_path / "broker")
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=AGREEMENTS)
    before = sorted(p.name for p in store.path.iterdir())
    later = [*AGREEMENTS, "FEAN-JTF", "PAN-CRI"]
    with monkeypatch.context() as patched:
        _failing_on_second(patched, "fsync", errno.EIO, _file_written)
        with pytest.raises(KeyMaterialError, match="none of them was written"):
            store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=later,
                               missing_only=True)
    assert sorted(p.name for p in store.path.iterdir()) == before
    made = store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=later,
                              missing_only=True)
    assert sorted(r.key_id for r in made) == ["FEAN-JTF-pseudo-2026a", "PAN-CRI-pseudo-2026a"]


# A generation made in a process killed (SIGKILL, a power cut: no exception to undo anything) right after it put its
# first key file in place.
_KILLED = textwrap.dedent("""
    import os, sys
    from datetime import UTC, datetime
    from pathlib import Path
    import broker.private_files as files
    from broker.keystore import Holder, Keystore
    folder, holder, ident, generation = sys.argv[1:]
    real = files._link_new
    def link_then_die(*args):
        real(*args)
        os._exit(9)
    files._link_new = link_then_die
    Keystore(Path(folder)).generate_own(Holder(holder), ident, generation=generation,
                                        now=datetime(2026, 1, 6, tzinfo=UTC), agreements=["COMBIFRON", "PAN-USA"])
""")


def _killed_after_first_link(folder: Path, holder: Holder, ident: str, generation: str) -> None:
    run = subprocess.run([sys.executable, "-c", _KILLED, str(folder), holder.value, ident, generation],
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 9, run.stderr


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(("holder", "ident", "in_use", "kept"),
                         [(Holder.BROKER, "broker", "broker-sign", "broker-kex-2026b"),
                          (Holder.PARTNER, "COL", "COL-rcpt", "COL-enc-2026b")])
def test_a_rotation_killed_half_way_keeps_the_generation_in_use_and_its_rerun_is_refused(
        tmp_path: Path, holder: Holder, ident: str, in_use: str, kept: str) -> None:
    """Killed after its first link, a rotation leaves the key that puts the set in use unwritten (linked last), so
    the broker still signs, a partner its receipts, with the old generation; the same command run again is refused
    in one line, writing nothing, and the next generation is made whole, its write removing the temporary key
    files the killed run left (no other's)."""
    store = Keystore(tmp_path / ident)
    store.generate_own(holder, ident, generation="2026a", now=NOW, agreements=AGREEMENTS)
    _killed_after_first_link(store.path, holder, ident, "2026b")
    assert (store.path / f"{kept}.json").exists() and not (store.path / f"{in_use}-2026b.json").exists()
    assert _leftovers(store.path)
    signer = (store.broker_signing_keys()[0] if holder is Holder.BROKER else store.load_receipt_key(ident))
    assert signer.key_id == f"{in_use}-2026a"
    before = sorted(p.name for p in store.path.iterdir())
    with pytest.raises(KeyMaterialError, match=r"2026b .* is incomplete") as info:
        store.generate_own(holder, ident, generation="2026b", now=NOW, agreements=AGREEMENTS)
    assert "\n" not in str(info.value) and f"({kept}.json) stay unused" in str(info.value)
    assert sorted(p.name for p in store.path.iterdir()) == before
    login = store.path / ".client.properties.0123456789ab.tmp"  # not a key file's: left alone
    login.write_text("")
    store.generate_own(holder, ident, generation="2026c", now=NOW, agreements=AGREEMENTS)
    assert _leftovers(store.path) == [login.name]
    signer = (store.broker_signing_keys()[0] if holder is Holder.BROKER else store.load_receipt_key(ident))
    assert signer.key_id == f"{in_use}-2026c"


# A whole set, linked and synced, in a process killed before its temporary files were removed: exportable, so its
# public halves may be handed out.
_KILLED_BEFORE_CLEANUP = textwrap.dedent("""
    import os, sys
    from datetime import UTC, datetime
    from pathlib import Path
    import broker.private_files as files
    from broker.keystore import Holder, Keystore
    folder = sys.argv[1]
    real = files._sync_folder
    def sync_then_die(*args):
        real(*args)
        os._exit(9)
    files._sync_folder = sync_then_die
    Keystore(Path(folder)).generate_own(Holder.PARTNER, "COL", generation="2026b",
                                        now=datetime(2026, 1, 6, tzinfo=UTC))
""")


def test_a_whole_set_a_killed_run_left_is_never_made_again_after_a_file_is_lost(tmp_path: Path) -> None:
    """A set written whole by a run killed before it removed its temporary files, one key file lost since: the rerun
    makes no second key under an id whose public half may have been handed out, and keeps the temporary file that
    still holds the original private key."""
    store = Keystore(tmp_path / "COL")
    store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    run = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_CLEANUP, str(store.path)],
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 9, run.stderr
    handed_out = store.public_pem("COL-rcpt-2026b")
    (store.path / "COL-rcpt-2026b.json").unlink()
    before = sorted(p.name for p in store.path.iterdir())
    with pytest.raises(KeyMaterialError, match="incomplete"):
        store.generate_own(Holder.PARTNER, "COL", generation="2026b", now=NOW)
    assert sorted(p.name for p in store.path.iterdir()) == before
    assert not (store.path / "COL-rcpt-2026b.json").exists() and handed_out


def test_a_run_waiting_for_one_stopped_half_way_decides_on_what_it_left(tmp_path: Path) -> None:
    """A generate waiting while another run holds the folder decides once it has the folder: the other stopped
    half-way (its encryption key linked, not its receipt key), so the waiting one refuses the generation rather
    than adding a receipt key to a set it never made."""
    store = Keystore(tmp_path / "COL")
    store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    store.put(new_key(KeyKind.PARTNER_ENCRYPTION, "COL", "2026b", NOW))
    os.link(store.path / "COL-enc-2026b.json", store.path / ".COL-enc-2026b.json.0123456789ab.tmp")
    fd = os.open(store.path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the other run, under way
    outcome: list[object] = []

    def rerun() -> None:
        try:
            outcome.append(store.generate_own(Holder.PARTNER, "COL", generation="2026b", now=NOW))
        except KeyMaterialError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=rerun)
    try:
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not outcome
    finally:
        os.close(fd)  # the other run stops
        waiting.join(30)
    assert isinstance(outcome[0], KeyMaterialError) and "incomplete" in str(outcome[0])
    assert not (store.path / "COL-rcpt-2026b.json").exists()


def test_part_of_a_set_is_refused_and_never_to_be_removed(tmp_path: Path) -> None:
    """Part of a generation (a key lost, or removed) is refused in one line, writing nothing, naming a new
    generation and the files present as unused, never telling the operator to remove one (it may be handed out)."""
    store = Keystore(tmp_path / "broker")
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=AGREEMENTS)
    store.generate_own(Holder.BROKER, "broker", generation="2026b", now=NOW, agreements=AGREEMENTS)
    (store.path / "broker-sign-2026b.json").unlink()
    before = sorted(p.name for p in store.path.iterdir())
    with pytest.raises(KeyMaterialError) as info:
        store.generate_own(Holder.BROKER, "broker", generation="2026b", now=NOW, agreements=AGREEMENTS)
    message = str(info.value)
    assert "\n" not in message and "remove" not in message
    assert message.startswith(f"generation 2026b of the broker in {store.path} is incomplete (a run stopped "
                              "half-way, or a key file was lost): choose a new generation (`--generation`); the "
                              "files present (broker-kex-2026b.json")
    assert message.endswith(") stay unused")
    assert sorted(p.name for p in store.path.iterdir()) == before


def test_a_set_rolled_back_is_made_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files a failed set write removes again are removed for good: their folder is synced after the removal,
    so a power cut does not bring back a new signing key without its set."""
    store = Keystore(tmp_path / "broker")
    store.generate_own(Holder.BROKER, "broker", generation="2026a", now=NOW, agreements=AGREEMENTS)
    events: list[str] = []
    real_unlink, real_sync = os.unlink, broker.private_files._sync_folder

    def unlink(path: object, *args: object, **kwargs: object) -> None:
        events.append(f"unlink {Path(str(path)).name}")
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    def sync(folder: Path) -> None:
        events.append("sync")
        real_sync(folder)

    with monkeypatch.context() as patched:
        _failing_on_second(patched, "link", errno.EIO, lambda args: True)
        patched.setattr(os, "unlink", unlink)
        patched.setattr(broker.private_files, "_sync_folder", sync)
        with pytest.raises(KeyMaterialError, match="none of them was written"):
            store.generate_own(Holder.BROKER, "broker", generation="2026b", now=NOW, agreements=AGREEMENTS)
    placed = [event for event in events if event.startswith("unlink") and not event.endswith(".tmp")]
    assert placed, events
    assert "sync" in events[events.index(placed[-1]):], events


def test_a_trial_set_up_whose_first_keys_cannot_be_written_leaves_no_mark(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`keys init` whose first set write fails (a full disk: none of it written) removes the trial's mark it had just
    left, so a root with no keys is not taken as a trial's and the custody guards stay on."""
    root = tmp_path / "keys"
    with monkeypatch.context() as patched:
        _failing_on_second(patched, "fsync", errno.ENOSPC, _file_written)
        with pytest.raises(KeyMaterialError, match="none of them was written"):
            Keystore.provision(root, partners=["COL"], agencies=[], agreements=AGREEMENTS, now=NOW)
    assert not trial_marked(root) and not (root / TRIAL_MARK).exists()
    assert not list(Keystore(holder_path(root, Holder.BROKER, "broker")).path.glob("*.json"))


def test_a_folder_that_cannot_be_locked_keeps_the_temporary_files_a_run_may_be_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock fails (ENOLCK on a network mount) the set is written unlocked, and the temporary key files there,
    which may be another run's under way, are left alone."""
    store = Keystore(tmp_path / "COL")
    store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    theirs = store.path / ".COL-enc-2026b.json.0123456789ab.tmp"
    theirs.write_bytes(b"")

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    store.generate_own(Holder.PARTNER, "COL", generation="2026c", now=NOW)
    assert theirs.exists() and (store.path / "COL-rcpt-2026c.json").exists()


def test_a_run_waiting_for_the_folder_says_so_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A generate finding the folder held by another run says in one line on standard error that it waits, then
    waits, and writes its set once the other is done."""
    store = Keystore(tmp_path / "COL")
    store.generate_own(Holder.PARTNER, "COL", generation="2026a", now=NOW)
    fd = os.open(store.path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    waiting = threading.Thread(target=lambda: store.generate_own(Holder.PARTNER, "COL", generation="2026b", now=NOW))
    try:
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()
    finally:
        os.close(fd)
        waiting.join(30)
    assert capsys.readouterr().err == f"puente: waiting for another run on {store.path}\n"
    assert (store.path / "COL-rcpt-2026b.json").exists()
