"""Fetch Apache Kafka's runtime class path with Maven into the cache folder.

Every node runs ``java -cp <cache>/kafka-<v>/classpath/*`` with its passwords and keys: whoever can put
a jar in that folder runs code as the node. So the cache root, ``kafka-<v>`` and ``classpath`` are made
0700 by the fetch, and each must be a folder of this user (or root) that others may not write before
the class path is trusted (``check_folder``); the jars' SHA-256 are recorded when Maven has fetched
them (``DIGESTS``) and checked whenever the class path is handed out, before each node starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from broker.private_files import check_folder, private_folder, read_regular, write_atomic
from puente.errors import KafkaSetupError

KAFKA_VERSION = "4.1.1"
_MARKER = "READY"
DIGESTS = "classpath.sha256"  # beside READY: "<sha256>  <file name>" for each file of the class path
_MAX_DIGESTS_BYTES = 1024 * 1024  # a few hundred lines


def cache_root() -> Path:
    """The folder that keeps fetched Kafka builds between runs and clones."""
    explicit = os.environ.get("PUENTE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "puente"


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    """Where the class path of one Kafka version lives."""
    return cache_root() / f"kafka-{version}"


def fetch_kafka(version: str = KAFKA_VERSION, *, quiet: bool = False) -> Path:
    """Return the class-path folder for ``version``, fetching it on first use.

    The folder is only marked ready after Maven succeeds, so an interrupted
    fetch is retried rather than used half-done. A ready folder is handed out only
    while the cache's folders are private and the class path holds exactly the files
    fetched, with the digests they had (KafkaSetupError otherwise).

    Several processes may ask at once (``make test`` starts a Kafka per test worker): one fetches, under a lock
    (``<cache>/kafka-<v>.lock``), into a folder of its own that is renamed into place whole, digests and
    marker written after it; the others wait for the lock and take what it fetched. A class path is never
    removed or refilled while another process may be checking it.
    """
    home = kafka_home(version)
    classpath = home / "classpath"
    pom = resources.files("puente.dev.localkafka").joinpath("pom.xml").read_text()
    # The marker names what was fetched: the version and the pom's digest, so that a pom that asks
    # for more (Kafka's console tools, say) fetches again instead of using an older class path.
    ready = f"{version} {hashlib.sha256(pom.encode()).hexdigest()[:16]}\n"
    _tighten_own(home)
    _check_folders(home)
    if _ready(home, ready):
        _check_digests(home)
        return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError("Maven ('mvn') is not on PATH; it is needed once to fetch Kafka")
    if shutil.which("java") is None:
        raise KafkaSetupError("Java ('java', 17 or newer) is not on PATH; Kafka needs it")
    private_folder(home, error=KafkaSetupError)  # and the cache root above it, 0700 whatever the umask
    with _locked(home.parent / f"kafka-{version}.lock"):
        if _ready(home, ready):  # another process fetched it while this one waited
            _check_digests(home)
            return classpath
        fresh = home / "classpath.fetching"
        if fresh.exists():
            shutil.rmtree(fresh)  # what an interrupted fetch left
        private_folder(fresh, error=KafkaSetupError)  # Maven copies into it
        (home / "pom.xml").write_text(pom)
        if not quiet:
            print(f"Fetching Apache Kafka {version} with Maven into {home} (first run only)...", file=sys.stderr)
        cmd = [mvn, "-B", "-q", f"-Dkafka.version={version}", "-Dclasspath.dir=" + str(fresh), "package"]
        proc = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(fresh.glob("kafka_2.13-*.jar")):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise KafkaSetupError(f"Maven could not fetch Kafka {version} (exit {proc.returncode}):", problems=tail)
        digests = _digests(fresh)
        (home / _MARKER).unlink(missing_ok=True)
        if classpath.exists():
            shutil.rmtree(classpath)
        os.rename(fresh, classpath)
        _check_folders(home)
        write_atomic(home / DIGESTS, "".join(f"{d}  {n}\n" for n, d in digests.items()).encode(), 0o600)
        write_atomic(home / _MARKER, ready.encode(), 0o600)
    return classpath


def _ready(home: Path, ready: str) -> bool:
    """Whether ``home`` holds a class path fetched as ``ready`` names it, with its digests recorded."""
    return _marked(home, ready) and (home / "classpath").is_dir() and (home / DIGESTS).exists()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (made 0600 in the private cache root), held while the block runs."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KafkaSetupError(f"cannot open the fetch lock {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tighten_own(home: Path) -> None:
    """An older Puente made the cache folders with the umask's mode: 0775 under umask 002, the default of many
    systems' users. Such a folder of this user's own is made 0700 again, and the Kafka build under it removed, to
    be fetched anew (a jar someone could have put there is not kept). A folder of another user's stays, and
    ``_check_folders`` refuses it, as it refuses a folder all may write by design (/tmp), left as it is."""
    opened = False
    for folder in (home.parent, home, home / "classpath"):
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX and info.st_mode & 0o002:
            continue  # shared by design (PUENTE_CACHE=/tmp, as root its owner): never closed to everyone else
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o022:
            opened = True
            if folder == home.parent:
                os.chmod(folder, 0o700)
    if opened and home.is_dir() and not home.is_symlink():
        shutil.rmtree(home, ignore_errors=True)  # a process beside this one may be doing the same


def _check_folders(home: Path) -> None:
    """KafkaSetupError unless the cache root, ``home`` and its class path, where they exist, are folders of this
    user (or root) that others may not write."""
    for folder in (home.parent, home, home / "classpath"):
        check_folder(folder, KafkaSetupError, kind="the Kafka cache folder",
                     advice="others could have planted a jar that Kafka's nodes would run with their secrets: remove "
                            "it and run `puente kafka fetch` again, which makes it 0700 (or point PUENTE_CACHE at a "
                            "folder of your own)",
                     shared="point PUENTE_CACHE at a folder of your own")


def _marked(home: Path, ready: str) -> bool:
    try:
        return (home / _MARKER).read_text() == ready
    except FileNotFoundError:
        return False


def _digests(classpath: Path) -> dict[str, str]:
    """Each entry of the class path folder by name, with the SHA-256 of its bytes (KafkaSetupError for one that is
    not a regular file: a link or a folder could lead anywhere)."""
    found = {}
    try:
        entries = sorted(classpath.iterdir())
    except OSError as exc:
        raise KafkaSetupError(f"cannot list Kafka's class path {classpath} ({exc.strerror}); run `puente kafka "
                              "fetch` again") from None
    for entry in entries:
        if entry.is_symlink() or not entry.is_file():
            raise KafkaSetupError(f"{entry} in Kafka's class path is not a regular file; remove "
                                  f"{classpath.parent} and run `puente kafka fetch` again")
        digest = hashlib.sha256()
        try:
            with entry.open("rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    digest.update(chunk)
        except OSError as exc:
            raise KafkaSetupError(f"cannot read {entry} in Kafka's class path ({exc.strerror}); run `puente kafka "
                                  "fetch` again") from None
        found[entry.name] = digest.hexdigest()
    return found


_CHECKED: set[tuple[Any, ...]] = set()  # class paths whose digests matched, as their files stood then


def _check_digests(home: Path) -> None:
    """KafkaSetupError unless the class path holds exactly the files recorded when it was fetched, with the same
    SHA-256 each. Hashed once per process while the digests file and every file of the class path stand as they
    did (inode, size, modification time): a 3-node start asks seven times, and hashing 70 MB again each time
    would find what the first did."""
    try:
        recorded_file = os.stat(home / DIGESTS)
        seen: tuple[Any, ...] | None = (
            str(home), recorded_file.st_ino, recorded_file.st_mtime_ns,
            tuple(sorted((e.name, e.inode(), (i := e.stat(follow_symlinks=False)).st_size, i.st_mtime_ns)
                         for e in os.scandir(home / "classpath"))))
    except OSError:
        seen = None
    if seen is not None and seen in _CHECKED:
        return
    _compare_digests(home)
    if seen is not None:
        _CHECKED.add(seen)


def _compare_digests(home: Path) -> None:
    raw, _ = read_regular(home / DIGESTS, _MAX_DIGESTS_BYTES, KafkaSetupError)
    recorded = {}
    for line in raw.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        recorded[name] = digest
    found = _digests(home / "classpath")
    changed = sorted(n for n in recorded.keys() | found.keys() if recorded.get(n) != found.get(n))
    if changed:
        names = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise KafkaSetupError(f"Kafka's class path in {home / 'classpath'} is not what was fetched ({names} added, "
                              f"removed or changed since): remove {home} and run `puente kafka fetch` again")
