"""Every folder above a secret's folder counts too, as OpenSSH's StrictModes has it: one others may write, or another
user's, lets them rename the secret's folder and put their own in its place; a sticky one (/tmp) does not."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.keys import KeyKind
from broker.keystore import Keystore, load_key_file
from broker.private_files import folder_problem, private_folder
from puente.errors import ConfigError, KeyMaterialError

NOW = datetime(2026, 1, 5, tzinfo=UTC)
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                               reason="giving a folder to another user needs root")


def _key_in(shared: Path, mode: int) -> Path:
    """A private key file in ``shared``/keys (0700), once ``shared`` has ``mode``."""
    path = Keystore(shared / "keys").generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=NOW)
    shared.chmod(mode)
    return Keystore(shared / "keys").path / f"{path.key_id}.json"


def test_a_key_below_a_folder_others_may_write_is_refused(tmp_path: Path) -> None:
    """A 0700 key folder inside a folder all may write (not sticky): refused in one line naming that folder and the
    chmod, though the key's own folder is fine."""
    key = _key_in(tmp_path / "open", 0o777)
    with pytest.raises(KeyMaterialError) as info:
        load_key_file(key)
    message = str(info.value)
    assert "\n" not in message and f"inside {tmp_path / 'open'}," in message
    assert f"run chmod o-w on {tmp_path / 'open'}" in message
    (tmp_path / "open").chmod(0o755)
    assert load_key_file(key).secret is not None


def test_a_folder_all_may_write_two_levels_up_is_refused(tmp_path: Path) -> None:
    """Not only the folder just above: any folder on the way up that all may write is named."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    private_folder(tmp_path / "a" / "b" / "keys")
    (tmp_path / "a").chmod(0o777)
    problem = folder_problem(tmp_path / "a" / "b" / "keys")
    assert problem is not None and f"inside {tmp_path / 'a'}, which all may write (mode 0777)" in problem


def test_folders_above_that_their_group_may_write_are_taken(tmp_path: Path) -> None:
    """Under a umask of 002 (a user with a group of their own) every folder a user makes is 0775: a clone, its
    caches and a volume mounted for a group. Taken, as Debian's OpenSSH takes them: the keys and their own folder
    are still held to 0600 and 0700."""
    key = _key_in(tmp_path / "clone", 0o775)
    (tmp_path / "clone" / "keys").parent.chmod(0o2775)
    assert load_key_file(key).secret is not None
    private_folder(tmp_path / "clone" / "more" / "keys")
    assert folder_problem(tmp_path / "clone" / "more" / "keys") is None


def test_a_link_in_a_folder_all_may_write_is_refused(tmp_path: Path) -> None:
    """The folders of the name as given count too: whoever may write the folder holding a link to the keys may
    point it elsewhere."""
    _key_in(tmp_path / "real", 0o755)
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "keys").symlink_to(tmp_path / "real" / "keys")
    (tmp_path / "open").chmod(0o777)
    problem = folder_problem(tmp_path / "open" / "keys")
    assert problem is not None and f"inside {tmp_path / 'open'}, which all may write" in problem


def test_a_sticky_folder_above_is_taken(tmp_path: Path) -> None:
    """A sticky folder all may write (as /tmp) above the key's folder: others may add entries, never rename this
    user's, so the key is read."""
    key = _key_in(tmp_path / "shared", 0o1777)
    assert load_key_file(key).secret is not None


def test_a_folder_is_never_made_below_one_others_may_write(tmp_path: Path) -> None:
    """private_folder refuses, before making anything, to make a folder inside one others may write, naming it."""
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(ConfigError, match=f"inside {tmp_path / 'open'}, which all may write"):
        private_folder(tmp_path / "open" / "keys" / "broker")
    assert not (tmp_path / "open" / "keys").exists()


def test_the_folders_a_link_leads_through_are_the_ones_checked(tmp_path: Path) -> None:
    """A key folder reached through a link: the folders above where it really is are checked, not those of the
    link's name."""
    key = _key_in(tmp_path / "real", 0o777)
    (tmp_path / "safe").mkdir(mode=0o700)
    (tmp_path / "safe" / "keys").symlink_to(tmp_path / "real" / "keys")
    problem = folder_problem(tmp_path / "safe" / "keys")
    assert problem is not None and f"inside {tmp_path / 'real'}," in problem
    assert key.exists()


@ROOT_ONLY
def test_a_folder_above_of_another_user_is_refused(tmp_path: Path) -> None:
    """A folder above the key's folder that belongs to another user, who may rename what it holds: refused."""
    key = _key_in(tmp_path / "theirs", 0o755)
    os.chown(tmp_path / "theirs", 4321, 4321)
    with pytest.raises(KeyMaterialError, match=f"inside {tmp_path / 'theirs'}, which belongs to another user"):
        load_key_file(key)
