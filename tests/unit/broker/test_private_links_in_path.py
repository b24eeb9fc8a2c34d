"""A symbolic link anywhere in a secret folder's name is held to the rule of a link naming the file: this user's or
root's, in a folder no one else may change; whoever may re-point it may swap the folder a key is read from or
written to. Reading, checking and making a folder all hold to it; a folder is never chmod-ed through a link."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.keys import KeyKind
from broker.keystore import Keystore, load_key_file
from broker.private_files import folder_problem, private_folder, read_regular
from puente.errors import ConfigError, KeyMaterialError

NOW = datetime(2026, 1, 5, tzinfo=UTC)
NOBODY = 65534
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                               reason="giving a link to another user needs root")


def _keys(folder: Path) -> Path:
    """A 0700 keys folder at ``folder`` holding COL's private decryption key; the key file's path."""
    record = Keystore(folder).generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    return folder / f"{record.key_id}.json"


def _shared(tmp_path: Path) -> Path:
    """A folder all may write, sticky, as /tmp."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


@ROOT_ONLY
def test_a_key_read_through_another_users_link_in_its_folder_name_is_refused(tmp_path: Path) -> None:
    """The reviewer's case: a key folder reached through a link another user owns, in a sticky folder all may
    write: they could re-point it at a folder of theirs. Refused in one line naming the link and its owner; the
    key itself reads by its own name."""
    key = _keys(tmp_path / "real" / "keys")
    link = _shared(tmp_path) / "col"
    link.symlink_to(key.parent)
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    with pytest.raises(KeyMaterialError) as info:
        load_key_file(link / key.name)
    message = str(info.value)
    assert "\n" not in message and f"symbolic link {link} of another user (uid {NOBODY})" in message
    assert "chown -h" in message
    assert load_key_file(key).secret is not None


@ROOT_ONLY
def test_keys_are_never_written_through_another_users_link(tmp_path: Path) -> None:
    """`keys generate --dir` naming a link another user owns (or a folder below one): refused before anything is
    written where it leads."""
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = _shared(tmp_path) / "xl"
    link.symlink_to(target)
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    for folder in (link, link / "sub"):
        with pytest.raises(KeyMaterialError, match=f"symbolic link {link} of another user"):
            Keystore(folder).generate(KeyKind.PARTNER_ENCRYPTION, "ZZZ", generation="2026a", now=NOW)
    assert list(target.iterdir()) == []


@ROOT_ONLY
def test_a_link_planted_while_a_folder_is_made_is_refused_not_chmoded(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user plants a link at the name private_folder is about to make (a sticky folder all may write): the
    folder it leads to keeps its mode and is not taken as the keys folder."""
    shared = _shared(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    made = Path.mkdir

    def planted_first(self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if self == shared / "keys":
            self.symlink_to(victim)
            os.chown(self, NOBODY, NOBODY, follow_symlinks=False)
        made(self, mode, parents, exist_ok)

    monkeypatch.setattr(Path, "mkdir", planted_first)
    with pytest.raises(ConfigError, match=f"symbolic link {shared / 'keys'} of another user"):
        private_folder(shared / "keys")
    assert victim.stat().st_mode & 0o7777 == 0o755


def test_a_link_of_ones_own_in_a_folder_all_may_write_is_refused(tmp_path: Path) -> None:
    """A link of this user's in a folder all may write, not sticky: anyone may swap it. Refused when reading a file
    below it and when checking the folder, naming the link and the chmod; the folders above a keys folder are held
    to the same rule (``_above_problem``)."""
    key = _keys(tmp_path / "real" / "keys")
    open_to_all = tmp_path / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    link = open_to_all / "keys"
    link.symlink_to(key.parent)
    problem = folder_problem(link)
    assert problem is not None and "which all may write" in problem and f"chmod o-w on {open_to_all}" in problem
    with pytest.raises(KeyMaterialError, match=f"leads through the symbolic link {link}, in {open_to_all}"):
        read_regular(link / key.name, 4096, KeyMaterialError)


def test_a_link_of_ones_own_in_a_sticky_or_group_folder_is_followed(tmp_path: Path) -> None:
    """A link of this user's in a sticky folder all may write (/tmp: others may add entries, never rename or remove
    this user's), or in one its group may write (a umask of 002, taken for the folders above a keys folder too), is
    followed as those folders are: no stricter rule for a link than for the folders its name runs through."""
    key = _keys(tmp_path / "real" / "keys")
    grouped = tmp_path / "grouped"
    grouped.mkdir()
    grouped.chmod(0o775)
    for holder in (_shared(tmp_path), grouped):
        link = holder / "keys"
        link.symlink_to(key.parent)
        assert folder_problem(link) is None
        assert read_regular(link / key.name, 4096, KeyMaterialError)[0] == key.read_bytes()


def test_a_trusted_link_in_a_private_folder_is_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link of this user's in a folder only it may write, to a private keys folder, is followed: by its absolute
    name, by a relative one, and through a relative link."""
    key = _keys(tmp_path / "real" / "keys")
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o700)
    (safe / "keys").symlink_to(Path("..") / "real" / "keys")
    assert folder_problem(safe / "keys") is None
    assert load_key_file(safe / "keys" / key.name).secret is not None
    monkeypatch.chdir(tmp_path)
    assert load_key_file(Path("safe") / "keys" / key.name).secret is not None
    assert load_key_file(Path("safe") / ".." / "real" / "keys" / key.name).secret is not None
