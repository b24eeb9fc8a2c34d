"""Secrets mounted as real deployments mount them are read, still failing closed: Docker's ``/run/secrets``
(a root-owned file, mode 0400) and Kubernetes' secret volumes (``name -> ..data/name``, ``..data ->
..<timestamp>``, root-owned); a link is followed only when no one but this user or root could have made it or
changed the folders it leads through, and the file is checked as opened."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.keys import KeyKind, record_to_json
from broker.kafka import connection_from_properties
from broker.keystore import Keystore, load_key_file
from broker.partner_store import PartnerStore
from broker.private_files import folder_refusal, read_secret
from puente.errors import ConfigError, KeyMaterialError, StoreError
from tests.unit.broker.test_secret_files import PLANTED, _one_line

LOGIN = ("bootstrap.servers=kafka:9093\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
         "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
         f'username="partner-COL" password="{PLANTED}";\n').encode()
STAMP = "..2026_12_01_00_00_00.123456789"
ME = 1000  # the broker's own uid in these tests: root-owned files are then root's, not the broker's
OTHER = 4321
# Skipped outside CI for a user who is not root; under CI=true it runs, and fails there without root, never skips.
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                               reason="giving a file to another user needs root")
_NOW = datetime(2026, 1, 5, tzinfo=UTC)
Layout = Callable[..., Path]  # (folder, name, data[, mode]) -> the path the broker is given


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker runs as uid 1000 (the tests run as root, who may still read every file made here)."""
    monkeypatch.setattr(os, "geteuid", lambda: ME)


def _folder(path: Path, mode: int = 0o755) -> Path:
    path.mkdir()
    path.chmod(mode)
    return path


def _docker(tmp_path: Path, name: str, data: bytes, mode: int = 0o400) -> Path:
    """``<tmp>/run/secrets/<name>``: a root-owned file in root-owned 0755 folders, as compose mounts it."""
    secrets = _folder(_folder(tmp_path / "run") / "secrets")
    path = secrets / name
    path.write_bytes(data)
    path.chmod(mode)
    os.chown(path, 0, 0)
    return path


def _kubernetes(tmp_path: Path, name: str, data: bytes, mode: int = 0o400) -> Path:
    """A secret volume as the kubelet writes it: ``name -> ..data/name``, ``..data -> ..<timestamp>``."""
    volume = _folder(tmp_path / "volume")
    stamped = _folder(volume / STAMP)
    (stamped / name).write_bytes(data)
    (stamped / name).chmod(mode)
    (volume / "..data").symlink_to(STAMP)
    (volume / name).symlink_to(f"..data/{name}")
    return volume / name


def _key_bytes(tmp_path: Path) -> tuple[str, bytes]:
    record = Keystore(tmp_path / "made").generate(KeyKind.BROKER_SIGNING, "broker", generation="2026a", now=_NOW)
    return record.key_id, record_to_json(record)


# 1. what is read


@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("layout", [_docker, _kubernetes], ids=["docker", "kubernetes"])
def test_a_mounted_client_configuration_is_read(tmp_path: Path, layout: Layout) -> None:
    """A root-owned 0400 client.properties, in /run/secrets or behind a Kubernetes volume's links, loads."""
    path = layout(tmp_path, "client.properties", LOGIN)
    conn = connection_from_properties(path)
    assert conn.password is not None and conn.password.get_secret_value() == PLANTED


@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("layout", [_docker, _kubernetes], ids=["docker", "kubernetes"])
def test_a_mounted_key_file_and_secret_file_are_read(tmp_path: Path, layout: Layout) -> None:
    """A private key file and a secret file (the local Kafka's passwords) mounted root-owned 0400 are read."""
    key_id, data = _key_bytes(tmp_path)
    (tmp_path / "keys").mkdir()
    key = layout(tmp_path / "keys", f"{key_id}.json", data)
    assert load_key_file(key).secret is not None
    (tmp_path / "pw").mkdir()
    secret = layout(tmp_path / "pw", "secrets.json", b"{}")
    assert read_secret(secret, 1024, ConfigError, "the local Kafka's passwords") == b"{}"


@pytest.mark.usefixtures("as_user")
def test_a_secret_of_this_user_through_a_link_of_its_own_is_read(tmp_path: Path) -> None:
    """A link this user made, to its own 0600 file in its own 0700 folder, is followed (no longer refused)."""
    private = _folder(tmp_path / "private", 0o700)
    (private / "secrets.json").write_bytes(b"{}")
    (private / "secrets.json").chmod(0o600)
    os.chown(private, ME, ME)
    os.chown(private / "secrets.json", ME, ME)
    link = tmp_path / "secrets.json"
    link.symlink_to("private/secrets.json")
    os.chown(link, ME, ME, follow_symlinks=False)
    assert read_secret(link, 1024, ConfigError, "the local Kafka's passwords") == b"{}"


# 2. what is still refused


@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("mode", [0o440, 0o444, 0o404, 0o600], ids=oct)
@pytest.mark.parametrize("layout", [_docker, _kubernetes], ids=["docker", "kubernetes"])
def test_a_mounted_secret_others_may_read_is_refused_naming_the_setting(tmp_path: Path, layout: Layout,
                                                                         mode: int) -> None:
    """A root-owned secret group or others may read (a defaultMode or mode: left open; 0600 of root's is
    writable only by root, but 0440 is not 0400) is refused in one line naming the file and the mount setting."""
    path = layout(tmp_path, "client.properties", LOGIN, mode)
    if not mode & 0o077:
        assert connection_from_properties(path).password is not None
        return
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), f"{mode:04o}", "defaultMode", "mode:", "0400")


@ROOT_ONLY
@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("layout", [_docker, _kubernetes], ids=["docker", "kubernetes"])
def test_a_mounted_secret_of_another_user_is_refused(tmp_path: Path, layout: Layout) -> None:
    """A secret file of neither this user nor root is refused, however closed its mode: its owner knows it."""
    path = layout(tmp_path, "client.properties", LOGIN)
    os.chown(path, OTHER, OTHER)  # the file itself, or the file the links lead to
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "another user", str(OTHER))


@ROOT_ONLY
@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("link", ["client.properties", "..data"])
def test_a_link_of_another_user_is_never_followed(tmp_path: Path, link: str) -> None:
    """A link planted by another user, at the name or as ``..data`` (a swap of what the volume holds), is
    refused in one line naming that link and chown -h, without reading what it leads to."""
    path = _kubernetes(tmp_path, "client.properties", LOGIN)
    os.chown(path.parent / link, OTHER, OTHER, follow_symlinks=False)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "symbolic link", str(path.parent / link), "another user", "chown -h")


def _read_only_mounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file system reads as mounted read-only, as a Kubernetes secret volume is (mounting one needs rights
    the tests do not have): ``statvfs`` and ``fstatvfs`` answer with ST_RDONLY set."""
    def flagged(real: os.statvfs_result) -> os.statvfs_result:
        fields = list(real)
        fields[8] = real.f_flag | os.ST_RDONLY
        return os.statvfs_result(fields)

    statvfs, fstatvfs = os.statvfs, os.fstatvfs
    monkeypatch.setattr(os, "statvfs", lambda path: flagged(statvfs(path)))
    monkeypatch.setattr(os, "fstatvfs", lambda fd: flagged(fstatvfs(fd)))


@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("folder", ["volume", f"volume/{STAMP}"])
def test_a_secret_volume_of_mode_1777_on_a_read_only_mount_is_read(tmp_path: Path, folder: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes mounts a secret volume read-only in a root-owned folder of mode 1777: nothing changes through
    that mount, and by any other path others could at most add entries (sticky), which are refused where they
    are met; so its links are followed. The same folder on a writable mount is refused (above), and so are one
    of another user's and one that is not sticky even when read-only (below)."""
    path = _kubernetes(tmp_path, "client.properties", LOGIN)
    (tmp_path / folder).chmod(0o1777)
    with pytest.raises(ConfigError):
        connection_from_properties(path)
    _read_only_mounts(monkeypatch)
    assert connection_from_properties(path).bootstrap == "kafka:9093"


@pytest.mark.usefixtures("as_user")
def test_a_read_only_mount_does_not_make_a_folder_others_may_write_trusted_without_the_sticky_bit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only mount is no promise that the folder cannot change (a read-only bind of a writable folder stays
    writable by its other path), and in a folder of mode 0777 another user may rename or remove what is there."""
    path = _kubernetes(tmp_path, "client.properties", LOGIN)
    (tmp_path / "volume").chmod(0o777)
    _read_only_mounts(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "writable by others")


@ROOT_ONLY
@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("what", ["verify key", "client configuration"])
@pytest.mark.parametrize("linked", [True, False], ids=["through a trusted link", "in a trusted folder"])
def test_a_public_file_of_another_user_is_refused_whatever_its_mode(tmp_path: Path, what: str,
                                                                     linked: bool) -> None:
    """A public key half or a client configuration without a password may be readable by all, but its owner may
    rewrite it whatever its mode (a verify key of their own, their servers, their CA): another user's is refused,
    reached through a trusted link or not."""
    shared = _folder(tmp_path / "srv")
    if what == "verify key":
        key_id, _ = _key_bytes(tmp_path)
        record = Keystore(tmp_path / "made").load(key_id).public_only()
        name, data = f"{key_id}.json", record_to_json(record)
    else:
        name, data = "client.properties", b"bootstrap.servers=evil:9093\nsecurity.protocol=SSL\n"
    target = shared / name
    target.write_bytes(data)
    target.chmod(0o644)
    os.chown(target, OTHER, OTHER)
    path = target
    if linked:
        mine = _folder(tmp_path / "mine", 0o700)
        os.chown(mine, ME, ME)
        path = mine / name
        path.symlink_to(Path("..") / "srv" / name)
        os.chown(path, ME, ME, follow_symlinks=False)
    read = load_key_file if what == "verify key" else connection_from_properties
    with pytest.raises((ConfigError, KeyMaterialError)) as caught:
        read(path)
    _one_line(caught, str(path), f"another user (uid {OTHER})")


@ROOT_ONLY
@pytest.mark.usefixtures("as_user")
def test_a_read_only_mount_does_not_make_another_users_folder_trusted(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = _kubernetes(tmp_path, "client.properties", LOGIN)
    os.chown(tmp_path / "volume", OTHER, OTHER)
    _read_only_mounts(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "another user")


@ROOT_ONLY
@pytest.mark.usefixtures("as_user")
@pytest.mark.parametrize("folder", ["volume", f"volume/{STAMP}"])
@pytest.mark.parametrize("change", ["open", "sticky", "theirs"])
def test_a_link_through_a_folder_another_user_may_change_is_refused(tmp_path: Path, folder: str,
                                                                    change: str) -> None:
    """The link's own folder or the folder it leads to, writable by others (even root's, even sticky like /tmp)
    or another user's, is refused in one line naming that folder and the fix: whoever may change it may swap
    the secret."""
    path = _kubernetes(tmp_path, "client.properties", LOGIN)
    if change == "theirs":
        os.chown(tmp_path / folder, OTHER, OTHER)
    else:
        (tmp_path / folder).chmod(0o777 if change == "open" else 0o1777)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    fix = {"open": "chmod go-w", "sticky": "make the link lead elsewhere", "theirs": "another user"}[change]
    _one_line(caught, str(path), "symbolic link", str(tmp_path / folder), fix)


@pytest.mark.usefixtures("as_user")
def test_a_link_to_a_folder_a_pipe_or_a_loop_is_refused(tmp_path: Path) -> None:
    """A trusted link that leads to a folder, to a FIFO, or round in a loop is refused in one line, never hangs."""
    volume = _folder(tmp_path / "v")
    _folder(volume / "dir")
    os.mkfifo(volume / "fifo", 0o600)
    (volume / "to-dir").symlink_to("dir")
    (volume / "to-fifo").symlink_to("fifo")
    (volume / "loop").symlink_to("loop")
    for name, words in (("to-dir", ("not a regular file",)), ("to-fifo", ("not a regular file",)),
                        ("loop", ("more than 40",))):
        with pytest.raises(ConfigError) as caught:
            read_secret(volume / name, 1024, ConfigError, "the secret")
        _one_line(caught, str(volume / name), *words)


@pytest.mark.usefixtures("as_user")
def test_a_file_swapped_after_the_walk_is_refused_as_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is checked as opened, not as named: one renamed over the linked file between the walk's check
    and the open (another 0400 file, of another secret) is refused as changed, never read."""
    path = _kubernetes(tmp_path, "client.properties", LOGIN)
    other = tmp_path / "volume" / STAMP / "other"
    other.write_bytes(b"bootstrap.servers=evil:9093\nsecurity.protocol=PLAINTEXT\n")
    other.chmod(0o400)
    real_open = os.open

    def swapping_open(name: object, flags: int, *args: object, **kwargs: object) -> int:
        if name == "client.properties" and flags & os.O_NOFOLLOW and not flags & os.O_DIRECTORY:
            os.replace(other, tmp_path / "volume" / STAMP / "client.properties")
        return real_open(name, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", swapping_open)
    with pytest.raises(ConfigError) as caught:
        connection_from_properties(path)
    _one_line(caught, str(path), "changed while it was read")


def test_a_store_behind_a_trusted_link_is_still_refused(tmp_path: Path) -> None:
    """Only reads follow links: a partner store (read and written) behind a link of this user's is refused."""
    real = tmp_path / "real" / "feed.sqlite"
    PartnerStore.open(real, "COL").close()
    (tmp_path / "via").mkdir(mode=0o700)
    (tmp_path / "via" / "feed.sqlite").symlink_to("../real/feed.sqlite")
    with pytest.raises(StoreError, match="not a regular file"):
        PartnerStore.open(tmp_path / "via" / "feed.sqlite", "COL")


# 3. one folder check, one message


def test_an_unreachable_folder_is_a_refusal_not_an_error(tmp_path: Path) -> None:
    """folder_refusal says why a file's folder cannot hold a secret, a missing one included, never raising."""
    assert folder_refusal(tmp_path) is None
    gone = tmp_path / "gone"
    assert folder_refusal(gone) == f"cannot reach its folder {gone}: No such file or directory"
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    assert folder_refusal(tmp_path / "open") == (f"the folder {tmp_path / 'open'} is writable by others "
                                                 "(mode 0777): run chmod 700 on it")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o1777)  # as /tmp: the advice is to keep the file elsewhere, never chmod 700
    assert folder_refusal(tmp_path / "shared") == (f"the folder {tmp_path / 'shared'} is shared, writable by others "
                                                   "like /tmp (mode 1777): keep the file in a folder only you can "
                                                   "write")


def test_a_store_folder_others_may_write_is_named_as_the_stores(tmp_path: Path) -> None:
    """A partner store's folder others may write is refused naming it as the store's folder, with its advice."""
    path = tmp_path / "col" / "feed.sqlite"
    PartnerStore.open(path, "COL").close()
    path.parent.chmod(0o777)
    with pytest.raises(StoreError) as caught:
        PartnerStore.open(path, "COL")
    message = _one_line(caught, f"the store's folder {path.parent} is writable by others (mode 0777)")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o777, message  # told, never changed behind the operator
