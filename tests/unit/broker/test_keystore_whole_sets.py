"""One holder's set of keys is made whole or not at all: a run that fails half-way leaves none of it, so a rerun
makes the set, and the broker never signs with a new signing key whose set failed."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.keystore import Holder, Keystore
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
    """The broker's next generation, its signing key written first: a link that fails for the second key (after the
    signing key was put in place) removes the signing key again, so the broker still signs with the generation in
    use, and the rotation run again goes through."""
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
