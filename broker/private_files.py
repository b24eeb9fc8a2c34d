"""Files that hold a secret, and the folders they sit in: one set of checks for all of them.

A secret file (a Kafka client configuration with its password, a key file's private half, the local
Kafka's passwords, a partner's store, the audit index, the console's accounts) is trusted only when no one
else could have read it or put it there: a regular file, never a link (opened with ``O_NOFOLLOW``, so
one swapped in after the check is refused too), owned by this user, with no permission for group or
others (``mode & 0o077 == 0``), in a folder others cannot write and that belongs to this user or root
(whoever may write the folder may swap the file). These are ssh's rules for its keys; ``read_regular``,
``secret_problem`` and ``folder_problem`` state them once, and every reader of a secret file uses them.

A folder meant to hold secrets (``private_folder``) is made 0700 whatever the umask; one that exists
already is checked, never silently used nor silently changed: one others may write is refused with the
chmod to run. Secret files are written whole or not at all (``write_atomic``): a new file of a random
name, then renamed over the old name, so a link planted at that name is replaced, never followed.

:class:`PrivateFile` applies the same checks to the SQLite files (a partner's store, the audit index,
the console's accounts), naming each kind in its errors (:class:`StoreError` with the fix).
Bottom of the keystore layer: imports no other Puente module but the error tree.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from puente.errors import ConfigError, PuenteError, StoreError

# The error a refusal raises: each caller's own kind (KeyMaterialError, ConfigError, StoreError, ...).
Refusal = Callable[[str], PuenteError]


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot hold a secret file, in words fit for an error; None when it can.

    The folder a link leads to is the one checked (a keystore may be reached through a link to a private
    folder). It must be a folder, belong to this user or root, and not be writable by group or others.
    OSError (FileNotFoundError for a missing one) as ``os.stat`` raises it."""
    info = os.stat(folder)
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if info.st_uid not in (os.geteuid(), 0):
        return (f"the folder {folder} belongs to another user (uid {info.st_uid}), who may replace what it holds: "
                "use a folder of your own (mkdir -m 700)")
    if mode & 0o022:
        return f"the folder {folder} is writable by others (mode {mode:04o}): run chmod 700 on it"
    return None


def check_folder(folder: Path, error: Refusal = ConfigError, *, missing_ok: bool = True) -> None:
    """Raise ``error`` (one line naming the folder and the fix) when ``folder`` exists but cannot hold a
    secret file (``folder_problem``); a missing one passes when ``missing_ok`` (``private_folder`` makes it 0700)."""
    try:
        problem = folder_problem(folder)
    except FileNotFoundError:
        if missing_ok:
            return
        raise error(f"the folder {folder} does not exist") from None
    except OSError as exc:
        raise error(f"cannot reach the folder {folder}: {exc.strerror}") from None
    if problem is not None:
        raise error(problem)


def private_folder(path: Path, *, error: Refusal = ConfigError) -> None:
    """Create ``path`` and any missing folder above it as 0700, whatever the umask; refuse (``error``) a
    ``path`` that exists but others may write or that is another user's (``folder_problem``).

    ``Path.mkdir(parents=True)`` gives the folders above the last the umask's default mode, and under a
    permissive umask (0) those are world-writable: anyone could then replace a secret file. An existing
    folder is not tightened behind the operator's back: someone made it open, and what it already holds may
    have been planted, so the operator is told which folder and the chmod to run."""
    check_folder(path, error)
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask; this is not
    check_folder(path, error)  # another process may have made it first, open


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all, with ``mode`` whatever the umask: a new file of a random name
    beside it (O_EXCL, O_NOFOLLOW: never one planted there first, nor a link followed), synced, then
    renamed over the name, which replaces a link found there instead of writing where it leads."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have changed the mode os.open gave
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def read_regular(path: Path, limit: int, error: Refusal) -> tuple[bytes, os.stat_result]:
    """The first ``limit + 1`` bytes of the regular file ``path`` and its status, read without following
    a link: ``error`` for a link or anything but a regular file (the name must be the file itself: the folder
    checked is the one the name sits in, and a link would lead to a file kept elsewhere); OSError as
    ``os.open`` gives it otherwise (FileNotFoundError for a missing file). Opened O_NONBLOCK: a FIFO cannot
    hang the read. The caller checks the length and the status (``secret_problem``)."""
    named = os.lstat(path)
    if not stat.S_ISREG(named.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(named.st_mode) else "not a regular file"
        raise error(f"{path} is {what}; it must be the file itself, in its own folder: check who made it and "
                    "where it leads, remove it and put the file itself there")
    # O_NOFOLLOW: a link swapped in after the lstat is refused too.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        opened = os.fstat(fh.fileno())
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino) or not stat.S_ISREG(opened.st_mode):
            raise error(f"{path} changed while it was read; check who else writes its folder")
        return fh.read(limit + 1), opened


def secret_problem(path: Path, info: os.stat_result) -> str | None:
    """Why the file ``path`` (``info``, its status as opened) cannot be trusted with a secret, in words that
    follow its name in an error; None when it can: it must be this user's, with no permission for group or
    others, in a folder fit for it (``folder_problem``: the folder the name is in, as given)."""
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        return (f"holds a secret but belongs to another user (uid {info.st_uid}), who may know or change it: make "
                "a new one of your own")
    if mode & 0o077:
        return f"holds a secret but others may read or write it (mode {mode:04o}); run chmod 600 on it"
    try:
        return folder_problem(path.parent)
    except OSError as exc:
        return f"cannot reach its folder {path.parent}: {exc.strerror}"


def read_secret(path: Path, limit: int, error: Refusal, what: str) -> bytes:
    """The bytes of the secret file ``path`` (``what`` names it in errors: "the local Kafka's passwords"),
    after every check of the module docstring; ``error`` (one line, never the content) when one fails, when it
    cannot be read, or when it is larger than ``limit``."""
    try:
        data, info = read_regular(path, limit, error)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    problem = secret_problem(path, info)
    if problem is not None:
        raise error(f"{what} {path}: {problem}")
    if len(data) > limit:
        raise error(f"{what} {path} is too large ({limit:,} bytes at most)")
    return data


@dataclass(frozen=True)
class PrivateFile:
    """How one kind of private file is named in errors."""

    name: str  # "the store", "the audit index", "the console accounts"
    folder: str  # "the store's folder"
    exposed: str  # what it holds, as the error says it: "holds decrypted alerts but others may read it"
    folder_advice: str  # what to do about a folder others may write

    def exists(self, path: Path) -> bool:
        """Whether ``path`` exists (a link counts: ``check`` refuses it)."""
        try:
            os.lstat(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot reach {self.name} {path}: {exc.strerror}") from None
        return True

    def create(self, path: Path) -> None:
        """Make ``path`` empty and 0600 in a 0700 folder, unless it exists (another process may have
        made it first: ``check`` follows either way)."""
        try:
            private_folder(path.parent, error=StoreError)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise StoreError(f"cannot create {self.name} {path}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)  # the umask may have changed the mode os.open gave
        finally:
            os.close(fd)

    def check_folder(self, path: Path, *, missing_ok: bool = True) -> None:
        """Refuse a folder of ``path`` that others may write or that is another user's (its owner may replace what
        it holds, whatever its mode); a missing one is made 0700 on creation."""
        try:
            info = os.stat(path.parent)
            folder = stat.S_IMODE(info.st_mode)
        except FileNotFoundError:
            if missing_ok:
                return
            raise StoreError(f"cannot reach {self.folder} {path.parent}: it does not exist") from None
        except OSError as exc:
            raise StoreError(f"cannot reach {self.folder} {path.parent}: {exc.strerror}") from None
        if info.st_uid not in (os.geteuid(), 0):
            raise StoreError(f"{self.folder} {path.parent} belongs to another user (uid {info.st_uid}), who may "
                             "replace what it holds: use a folder of your own (mkdir -m 700)")
        if folder & 0o022:
            raise StoreError(f"{self.folder} {path.parent} is writable by others (mode {folder:04o}): "
                             f"{self.folder_advice}")

    def check(self, path: Path) -> None:
        """Refuse ``path`` unless it is a regular file others cannot read, in a folder others cannot write."""
        self.check_folder(path)
        try:
            info = os.lstat(path)
        except OSError as exc:
            raise StoreError(f"cannot reach {self.name} {path}: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(f"{self.name} {path} is not a regular file (a link or a folder?)")
        if info.st_uid != os.geteuid():  # its owner may read it, or swap it, whatever its mode
            raise StoreError(f"{self.name} {path} belongs to another user (uid {info.st_uid}): use one of your own")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise StoreError(f"{self.name} {path} {self.exposed} (mode {stat.S_IMODE(info.st_mode):04o}); "
                             "run chmod 600 on it")

    def prepare(self, path: Path, *, create: bool, missing: str) -> None:
        """Make ``path`` when it is missing and ``create`` (else StoreError: ``missing``, the fix), then
        ``check`` it: what every private file goes through before it is opened."""
        if not self.exists(path):
            if not create:
                raise StoreError(missing)
            self.check_folder(path)
            self.create(path)
        self.check(path)
