"""Private SQLite files: a partner's store, the audit index, the console's accounts.

Each holds what others must neither read (decrypted alerts, the audit trail, password hashes) nor
swap for their own (whoever may write the folder may replace the file or its WAL). One
:class:`PrivateFile` per kind of file says how its errors name it; the checks are the same for all:
the folder is made 0700 and must not be writable by others, the file is created 0600 (whatever the
umask) without following a link, and an existing one must be a regular file that others cannot read.
Errors are :class:`StoreError` naming the file and the fix.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from broker.keystore import private_folder
from puente.errors import StoreError


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
            private_folder(path.parent)
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
        """Refuse a folder of ``path`` that others may write (a missing one is made 0700 on creation)."""
        try:
            folder = stat.S_IMODE(os.stat(path.parent).st_mode)
        except FileNotFoundError:
            if missing_ok:
                return
            raise StoreError(f"cannot reach {self.folder} {path.parent}: it does not exist") from None
        except OSError as exc:
            raise StoreError(f"cannot reach {self.folder} {path.parent}: {exc.strerror}") from None
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
