"""Files that hold a secret, and the folders they sit in: one set of checks for all of them.

A secret file (a Kafka client configuration with its password, a key file's private half, the local
Kafka's passwords, a partner's store, the audit index, the console's accounts) is trusted only when no one
else could have read it or put it there. These are OpenSSH's rules for its keys (StrictModes), stated once in
``read_regular``, ``secret_problem`` and ``folder_problem``, and every reader of a secret file uses them:

- every file read this way (a secret, a public key half, a client configuration) is a regular file owned by
  this user or root, whose owner alone may rewrite it (root may read anything anyway, and is who mounts
  Docker's ``/run/secrets`` and Kubernetes' secret volumes); a secret with no permission for group or others
  (``mode & 0o077 == 0``: a mounted secret sets compose's ``mode:`` or Kubernetes' ``defaultMode`` to 0400);
- the folder its name is in belongs to this user or root and others cannot write it (whoever may write the
  folder may swap the file), by its mode, or sticky on a read-only mount (Kubernetes mounts a secret volume
  read-only, in a folder of mode 1777: others could at most add entries, by another path, never replace one);
  and every folder above it, up to ``/`` (of the name as given and of its real path), belongs to this user or root
  and is not writable by all, unless sticky (/tmp): whoever may write one of them may rename the folder below and
  put their own in its place (one its group may write is taken, as Debian's OpenSSH does: a umask of 002 makes
  every folder so);
- a symbolic link is followed only when the link and every folder on the way from the link's folder to the
  file belong to this user or root and others cannot write them: no one else could have planted the link
  nor swapped what it leads through (Kubernetes' ``name -> ..data/name``, ``..data -> ..2026_...``).
  The walk opens each folder and checks the folder it opened, and the file is opened ``O_NOFOLLOW`` from
  the last folder and checked as opened, so nothing swapped in after a check is trusted;
- a symbolic link anywhere in the name of the folder (``/srv/keys -> /data/keys``) is held to the same rule for
  itself and the folder it is in (this user's or root's, in a folder no one else may change), whether the folder
  is read from (``_open_file``, walked from ``/``), checked (``folder_problem``) or made (``private_folder``); the
  folders it leads through are those of the real path, checked as every folder above is.

Everything else is refused, in one line naming the file and the chmod, chown or setting to fix.

Only reads follow links. A folder meant to hold secrets (``private_folder``) is made 0700 whatever the umask
(the new folder tightened through a descriptor opened ``O_NOFOLLOW``); one that exists already, or appears
while it is made, is checked, never silently used nor silently changed (nor changed through a link): one
others may write is refused with the chmod to run. Secret files are written whole or not at all
(``write_atomic``): a new file of a random name, then renamed over the old name, so a link planted at that
name is replaced, never followed; a set of new files (one party's keys), all of them or none (``write_new_all``),
written by one run at a time (``folder_locked``).

:class:`PrivateFile` applies the same checks to the SQLite files (a partner's store, the audit index,
the console's accounts), which are written as well as read: never a link, and this user's own; it names each
kind in its errors (:class:`StoreError` with the fix).
Bottom of the keystore layer: imports no other Puente module but the error tree.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from puente.errors import ConfigError, PuenteError, StoreError
from puente.strict import one_line

# The error a refusal raises: each caller's own kind (KeyMaterialError, ConfigError, StoreError, ...).
Refusal = Callable[[str], PuenteError]
# The temporary name ``write_atomic`` and ``write_new_all`` write ``name`` under beside it, left behind by a write whose
# process was killed (or lost its power) before it removed it.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp", re.DOTALL)


def _trusted(uid: int) -> bool:
    """Whether what ``uid`` owns may lead to or hold a secret: this user's own, or root's (root may read or
    change any file anyway, so trusting it trusts no one more; it is who mounts Docker's and Kubernetes' secrets)."""
    return uid in (os.geteuid(), 0)


def _read_only(fs: os.statvfs_result) -> bool:
    """Whether the mount ``fs`` describes is read-only, as Kubernetes mounts a secret volume (in a folder of mode
    1777). That says nothing through this mount can change, not that nothing can: the same folder may be
    writable by another path (a read-only bind of a writable folder), so ``_folder_info_problem`` takes it
    only with the sticky bit, where others may add entries but never rename or remove one they do not own."""
    return bool(fs.f_flag & os.ST_RDONLY)


# The fix for a sticky folder all may write (/tmp): shared by design, so a chmod would break it for everyone else.
_SHARED = "keep the file in a folder only you can write"


def _folder_info_problem(folder: Path, info: os.stat_result, kind: str, advice: str, *, read_only: bool = False,
                         shared: str = _SHARED) -> str | None:
    """``folder_problem`` for the folder whose status is ``info`` (as found, or as opened); ``read_only``: it
    is on a read-only mount (``_read_only``). Then a sticky folder others may write is taken: through another
    path they could at most add an entry, never replace this user's or root's, and an entry of theirs (a link,
    a folder, the file) is refused where it is met (``_open_file``, ``read_regular``). ``shared`` is the fix for
    a sticky folder all may write, as /tmp: no chmod, which would break it for everyone else."""
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if not _trusted(info.st_uid):
        return (f"{kind} {folder} belongs to another user (uid {info.st_uid}), who may replace what it holds: "
                "use a folder of your own (mkdir -m 700)")
    if mode & 0o022 and not (read_only and mode & stat.S_ISVTX):
        if mode & stat.S_ISVTX and mode & 0o002:
            return f"{kind} {folder} is shared, writable by others like /tmp (mode {mode:04o}): {shared}"
        return f"{kind} {folder} is writable by others (mode {mode:04o}): {advice}"
    return None


def folder_problem(folder: Path, *, kind: str = "the folder", advice: str = "run chmod 700 on it",
                   shared: str = _SHARED) -> str | None:
    """Why ``folder`` cannot hold a secret file, in words fit for an error; None when it can.

    The folder a link leads to is the one checked (a keystore may be reached through a link to a private
    folder). It must be a folder, belong to this user or root, and not be writable by group or others unless
    it is on a read-only mount (``_read_only``); and so must every folder above it (``_above_problem``).
    ``kind`` names it ("the store's folder") and ``advice`` is the fix for one others may write (``shared``, for
    one all may write by design, as /tmp), so each caller's message says what the folder is for. OSError
    (FileNotFoundError for a missing one) as ``os.stat`` raises it."""
    problem = _folder_info_problem(folder, os.stat(folder), kind, advice, read_only=_read_only(os.statvfs(folder)),
                                   shared=shared)
    return problem if problem is not None else _above_problem(folder, kind)


def _above_problem(folder: Path, kind: str = "the folder", *, start: Path | None = None) -> str | None:
    """Why a folder above ``folder`` lets someone else replace it, in words fit for an error; None when none does.

    As OpenSSH's StrictModes: whoever may write a folder on the way may rename the one below it and put their own
    in its place, so each folder above must belong to this user or root, and not be writable by all, unless it is
    sticky (/tmp: others may add entries there, never rename or remove this user's or root's). Both ways up are
    checked: the folders of the name as given (one holding a link to the keys), and those of its real path (the
    folders a link leads through hold it). A folder its group may write is taken, as Debian's OpenSSH takes one
    (``user-group-modes``): under a umask of 002 every folder a user makes is so, a clone and its caches included,
    and a volume mounted for a group (Kubernetes' ``fsGroup``) too; the group is the deployment's to choose.
    ``start``: the first folder to check, for one that does not exist yet (``private_folder``: the nearest one
    that does); else the one above ``folder``. OSError as ``os.stat`` raises it."""
    given = Path(os.path.abspath(start if start is not None else folder))
    real = Path(os.path.realpath(given))
    seen: set[Path] = set()
    for above in [*([given, real] if start is not None else []), *given.parents, *real.parents]:
        if above in seen:
            continue
        seen.add(above)
        info = os.stat(above)
        who = _replacer(info)
        if who == "owner":
            return (f"{kind} {folder} is inside {above}, which belongs to another user (uid {info.st_uid}), who may "
                    "replace what it holds: use a folder inside folders only you or root own")
        if who == "all":
            return (f"{kind} {folder} is inside {above}, which all may write (mode {stat.S_IMODE(info.st_mode):04o}) "
                    f"and so replace what it holds: run chmod o-w on {above}")
    return _links_problem(start if start is not None else folder, kind)


def _links_problem(folder: Path, kind: str) -> str | None:
    """Why a symbolic link in the name ``folder`` (any part of it, the last included) lets someone else point it
    elsewhere, in words fit for an error; None when none does. Each link met must be this user's or root's, in a
    folder no one else may rename it in: one of this user's or root's, not writable by all unless sticky (where
    others may add entries, never rename or remove this user's or root's), as ``_above_problem`` holds the folders
    above a keys folder (a group-writable one taken, as there: a umask of 002 makes every folder so). A link in a
    folder that passes ``_above_problem`` can be replaced by no one its folders could not replace already, so it is
    held to no stricter rule than they are. The folders it leads through are
    ``_above_problem``'s (those of the real path). Walked one part at a time as the kernel follows the name, each
    link's target in its turn; a part that does not exist ends the walk (``private_folder`` makes it). OSError as
    ``os.lstat`` raises it."""
    pending = list(reversed((Path(os.getcwd()) / folder).parts))  # the next part last
    at = Path("/")  # the folder reached, links resolved
    links = 0
    while pending:
        name = pending.pop()
        if name in ("/", "", "."):
            continue
        if name == "..":
            at = at.parent
            continue
        here = at / name
        try:
            info = os.lstat(here)
        except FileNotFoundError:
            return None
        if not stat.S_ISLNK(info.st_mode):
            at = here
            continue
        links += 1
        if links > _MAX_LINKS:
            return f"{kind} {folder} leads through more than {_MAX_LINKS} symbolic links: check where it leads"
        if not _trusted(info.st_uid):
            return (f"{kind} {folder} leads through the symbolic link {here} of another user (uid {info.st_uid}), "
                    "who may point it anywhere: check where it leads, then remove it or chown -h it to yourself or "
                    "root")
        problem = _link_folder_problem(at, os.stat(at))
        if problem is not None:
            return f"{kind} {folder} leads through the symbolic link {here}, in {problem}"
        target = PurePosixPath(os.readlink(here))
        if target.is_absolute():
            at = Path("/")
        pending.extend(reversed(target.parts))
    return None


def _link_folder_problem(folder: Path, info: os.stat_result) -> str | None:
    """Why the folder ``folder`` (status ``info``) lets someone else replace a link of this user's or root's in it,
    the words following "in"; None when no one may: it is this user's or root's, and not writable by all unless
    sticky (``_links_problem``: the rule ``_above_problem`` holds folders above a keys folder to)."""
    who = _replacer(info)
    if who == "owner":
        return (f"{folder}, which belongs to another user (uid {info.st_uid}), who may replace the link: make the "
                "link lead elsewhere")
    if who == "all":
        return (f"{folder}, which all may write (mode {stat.S_IMODE(info.st_mode):04o}) and so replace the link: run "
                f"chmod o-w on {folder}")
    return None


def _replacer(info: os.stat_result) -> str | None:
    """Who besides this user and root may replace an entry of the folder with status ``info``: ``owner`` (it is
    another user's), ``all`` (all may write it, and it is not sticky), or None. The one rule folders above a keys
    folder (``_above_problem``) and those holding a link in its path (``_link_folder_problem``) are held to."""
    if not _trusted(info.st_uid):
        return "owner"
    mode = stat.S_IMODE(info.st_mode)
    return "all" if mode & 0o002 and not mode & stat.S_ISVTX else None


def folder_refusal(folder: Path) -> str | None:
    """``folder_problem`` of the folder a file is in, with a folder that cannot be reached a problem too rather
    than an OSError: the words a reader of that file puts after the file's name; None when the folder is fit."""
    try:
        return folder_problem(folder)
    except OSError as exc:
        return f"cannot reach its folder {folder}: {exc.strerror}"


def check_folder(folder: Path, error: Refusal = ConfigError, *, missing_ok: bool = True,
                 kind: str = "the folder", advice: str = "run chmod 700 on it", shared: str = _SHARED) -> None:
    """Raise ``error`` (one line naming the folder and the fix) when ``folder`` exists but cannot hold a
    secret file (``folder_problem``, with ``kind``, ``advice`` and ``shared``); a missing one passes when ``missing_ok``
    (``private_folder`` makes it 0700)."""
    try:
        problem = folder_problem(folder, kind=kind, advice=advice, shared=shared)
    except FileNotFoundError:
        if missing_ok:
            return
        raise error(f"{kind} {folder} does not exist") from None
    except OSError as exc:
        raise error(f"cannot reach {kind} {folder}: {exc.strerror}") from None
    if problem is not None:
        raise error(problem)


def private_folder(path: Path, *, error: Refusal = ConfigError) -> None:
    """Create ``path`` and any missing folder above it as 0700, whatever the umask; refuse (``error``) a
    ``path`` that exists but others may write or that is another user's (``folder_problem``), and, before
    making any, a folder above it that others may write or that is another user's (``_above_problem``).

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
    if missing:  # before any is made: the folders it goes in must be fit to hold it
        try:
            problem = _above_problem(path, start=at)
        except OSError as exc:
            raise error(f"cannot reach the folder {at}: {exc.strerror}") from None
        if problem is not None:
            raise error(problem)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made since, by another process, or planted (a link): checked, never chmod-ed
            check_folder(folder, error, missing_ok=False)
            continue
        _tighten(folder, error)
    check_folder(path, error, missing_ok=False)  # another process may have made it first, open


def _tighten(folder: Path, error: Refusal) -> None:
    """Make ``folder``, which this process has just made, 0700 (mkdir's mode is masked by the umask; this is not),
    through a descriptor opened without following a link: never the mode of what a link put there leads to."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except PermissionError:  # a umask that took the owner's own bits: the folder cannot be opened to read
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise error(f"{folder} changed as it was made: check who else writes {folder.parent}") from None
        os.chmod(folder, 0o700)  # just found a folder of this user's, not a link: Linux has no lchmod
        return
    except OSError as exc:  # ELOOP: a link where the folder was just made
        raise error(f"cannot open the folder {folder} just made: {exc.strerror}; check who else writes "
                    f"{folder.parent}") from None
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all, with ``mode`` whatever the umask: a new file of a random name
    beside it (O_EXCL, O_NOFOLLOW: never one planted there first, nor a link followed), synced, then
    renamed over the name, which replaces a link found there instead of writing where it leads. A private
    ``mode`` (nothing for group or others) the file does not keep is refused before anything is written
    (PermissionError, ``_refuse_open_mode``)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have changed the mode os.open gave
            _refuse_open_mode(fh.fileno(), mode)
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


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all, as ``write_atomic`` does, but only as a new name: when anything
    exists there (a file, a link, a folder), nothing is written and ``FileExistsError`` is raised. For a
    file a person names on the command line, where replacing what is there could destroy a private key
    or a store: the new file is linked into place, which the kernel refuses over an existing name. Where
    the file system has no hard links (vfat, exFAT: the USB stick a public key is handed over on), the
    name itself is created (O_EXCL: never over anything) and written, and removed again if the write fails,
    or if a private ``mode`` would not hold there (``_refuse_open_mode``: vfat gives the mode its mount says)."""
    write_new_all([(path, data, mode)])


def write_new_all(files: Sequence[tuple[Path, bytes, int]]) -> None:
    """Write every ``(path, data, mode)`` of ``files`` as ``write_new`` writes one, all of them or none: each is
    written and synced under a temporary name beside its own (O_EXCL, O_NOFOLLOW, ``mode``) before any is linked
    into place, then each is linked. When a write, a link or the folders' sync fails, or a name is taken
    (``FileExistsError`` naming that path), the names this call placed are removed again; the temporary files
    are removed whatever happens. For a set of files that means nothing without the others (one party's keys): a
    run that fails half-way leaves none of it, which a rerun would have to refuse to replace.

    Only an exception is undone: a process killed between two links leaves the files linked so far and the
    temporary files of all. So the file whose presence puts the set in use goes last in ``files``, the caller never
    takes part of a set as a set, and removes the temporary files on its next write (``remove_leftovers``)."""
    temporary: list[Path] = []
    placed: list[Path] = []
    try:
        for path, data, mode in files:
            temporary.append(_write_temporary(path, data, mode))
        for (path, data, mode), tmp in zip(files, temporary, strict=True):
            _link_new(tmp, path, data, mode)
            placed.append(path)
        for folder in dict.fromkeys(path.parent for path in placed):
            _sync_folder(folder)
    except BaseException:
        for path in reversed(placed):
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in dict.fromkeys(path.parent for path in placed):
            with contextlib.suppress(OSError):  # the removals made durable: a power cut brings none of them back
                _sync_folder(folder)
        raise
    finally:
        for tmp in temporary:
            with contextlib.suppress(OSError):
                tmp.unlink()


# flock's errors on a file system that does not lock (some network mounts): the folder is written unlocked there.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EINVAL, errno.ENOSYS})


@contextlib.contextmanager
def folder_locked(folder: Path, error: Refusal,
                  waiting: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on the folder ``folder`` itself (``flock`` on a descriptor of it; it must exist) while
    the block runs, so that two runs writing one set of files into it (two ``keys init``, two ``keys generate``) take
    turns: each sees the other's files whole, and its rollback can remove only what it placed itself. The folder's
    own descriptor, no lock file: nothing new in a folder whose every entry a custody scan names. A lock is between
    the runs of this user's own commands, not a guard against anyone: where the file system has none (``_NO_LOCKS``),
    the block runs unlocked, each write all or none as before. Yields whether it is locked: only then may the block
    remove what a killed run left (``remove_leftovers``). Held by another run, ``waiting`` is told once (one line,
    standard error by default) before this one waits. ``error`` (one line) when the folder cannot be opened or the
    lock fails otherwise."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot open the folder {folder} to write in it alone: {exc.strerror}") from None
    try:
        yield _lock(fd, folder, error, waiting)
    finally:
        os.close(fd)  # which releases the lock


def _lock(fd: int, folder: Path, error: Refusal, waiting: Callable[[str], None] | None) -> bool:
    """``folder_locked``'s lock on ``fd``: whether it was taken (False where the file system has none)."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            (waiting or _say_waiting)(f"waiting for another run on {folder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise error(f"cannot lock the folder {folder} to write in it alone: {exc.strerror}") from None
        return False
    return True


def _say_waiting(line: str) -> None:
    print(f"puente: {one_line(line)}", file=sys.stderr, flush=True)


def remove_leftovers(folder: Path, names: Callable[[str], bool]) -> list[Path]:
    """Remove the temporary files (``TEMPORARY``) a killed ``write_new_all`` or ``write_atomic`` left in ``folder`` for
    the names ``names`` takes, each by its own name (a link is removed, never followed), make that durable, and return
    those removed. Only while no write of those names is under way there (``folder_locked``): it would lose its
    temporary file. What cannot be removed stays, as harmless as before."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    removed: list[Path] = []
    for name in entries:
        found = TEMPORARY.fullmatch(name)
        if found is None or not names(found["name"]):
            continue
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
            removed.append(folder / name)
    if removed:
        with contextlib.suppress(OSError):
            _sync_folder(folder)
    return removed


def _write_temporary(path: Path, data: bytes, mode: int) -> Path:
    """``data`` written and synced to a new file of a random name beside ``path`` (``.<name>.<hex>.tmp``: never one
    planted there first, nor a link followed), with ``mode`` whatever the umask; removed again when the write
    fails, or when a private ``mode`` does not hold (``_refuse_open_mode``)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            _refuse_open_mode(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _link_new(tmp: Path, path: Path, data: bytes, mode: int) -> None:
    """Put the written file ``tmp`` in place as the new name ``path``: a hard link, which the kernel refuses over
    anything (``FileExistsError`` naming ``path``); on a file system without hard links, ``path`` created and
    written itself (``_write_in_place``)."""
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        _write_in_place(path, data, mode)


def _sync_folder(folder: Path) -> None:
    """Make the names just put in ``folder`` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_in_place(path: Path, data: bytes, mode: int) -> None:
    """``write_new`` without a hard link: create ``path`` (never over anything, never through a link), write and
    sync it; a write that fails removes the part written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            with contextlib.suppress(OSError):  # a file system without modes (vfat) refuses this; it keeps none
                os.fchmod(fh.fileno(), mode)
            _refuse_open_mode(fh.fileno(), mode)  # so a secret is never put where its mount lets others read it
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _refuse_open_mode(fd: int, mode: int) -> None:
    """Raise PermissionError when the file open as ``fd``, meant to be private (``mode`` gives group and others
    nothing), gives them something all the same: a file system with no modes of its own (vfat's come from its
    mount options) or a chmod it ignored. Checked on the file as opened, before anything is written into it; the
    writer removes it."""
    if mode & 0o077:
        return
    kept = stat.S_IMODE(os.fstat(fd).st_mode)
    if kept & 0o077:
        raise PermissionError(errno.EPERM, f"others could read it there (its mode is {kept:04o}, not {mode:04o}: a "
                                           "file system without modes, as a USB stick's?); write it on one that keeps "
                                           "modes")


_MAX_LINKS = 40  # the kernel's own limit on the links followed for one name (ELOOP)
# O_PATH: a folder on the way needs only search permission, as when the kernel walks a name itself.
_FOLDER = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC


def _open_file(path: Path, error: Refusal) -> tuple[int, os.stat_result]:
    """A descriptor open for reading on the file ``path`` names, and the status of the name that was opened.

    The name is walked one part at a time from an open folder (``/``, or the working folder for a relative name),
    never by path, the folders it is in included. A link on the way to the name's folder is followed only when it
    is trusted (this user's or root's) and sits in a folder no one else may change (``_folder_info_problem``), as
    ``folder_problem`` holds it; a link that is the name itself, also only when every folder entered after it is
    (each checked as opened). So no one else could have planted or re-pointed anything on the way. ``error`` for
    a refusal, OSError otherwise."""
    at = os.open("/" if path.is_absolute() else ".", _FOLDER)
    where = Path("/") if path.is_absolute() else Path(".")  # the folder ``at`` is, as walked: what messages name
    pending = list(reversed(path.parts[1:] if path.is_absolute() else path.parts))  # still to walk, the next last
    checked = False  # whether ``at`` was checked as it was entered
    strict = False  # past a link that is the name itself: every folder entered is checked
    links = 0
    try:
        while True:
            if not pending:  # the name, or a link on the way, ends in a folder: ``/``, ``.``, a link to ``.``
                raise error(f"{path} names a folder, not a file: name the file itself")
            name = pending.pop()
            if name in ("", "."):
                continue
            found = os.stat(name, dir_fd=at, follow_symlinks=False)
            if stat.S_ISLNK(found.st_mode):
                strict = strict or not pending  # the name itself (what the name's own link leads to, after)
                links += 1
                if links > _MAX_LINKS:
                    raise error(f"{path} leads through more than {_MAX_LINKS} symbolic links: check where it leads")
                if not _trusted(found.st_uid):
                    raise error(f"{path} leads through the symbolic link {where / name} of another user "
                                f"(uid {found.st_uid}), who may point it anywhere: check where it leads, then "
                                "remove it or chown -h it to yourself or root")
                if not checked:  # the folder holding the link: one entered after a link was checked then
                    _check_linked_folder(path, where, at, error, where / name if not strict else None)
                    checked = strict
                target = PurePosixPath(os.readlink(name, dir_fd=at))
                parts = list(target.parts)
                if target.is_absolute():
                    at, where = _replace(at, _enter(path, at, "/", Path("/"), error, strict)), Path("/")
                    checked, parts = strict, parts[1:]
                pending.extend(reversed(parts))
                continue
            if pending:  # a folder on the way to the file
                at, where = _replace(at, _enter(path, at, name, where / name, error, strict)), where / name
                checked = strict
                continue
            if not stat.S_ISREG(found.st_mode):
                what = f"leads to {where / name}, which is" if links else "is"
                raise error(f"{path} {what} not a regular file: put the file itself there")
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=at), found
    finally:
        os.close(at)


def _replace(old: int, new: int) -> int:
    """``new``, once the descriptor ``old`` it replaces is closed."""
    os.close(old)
    return new


def _enter(path: Path, at: int, name: str, folder: Path, error: Refusal, check: bool = True) -> int:
    """Open the folder ``name`` of the open folder ``at`` without following a link, and, with ``check``, check the
    folder opened: one on the way a link naming the file leads, which no one but this user or root may change."""
    opened = os.open(name, _FOLDER | os.O_NOFOLLOW, dir_fd=at)
    try:
        if check:
            _check_linked_folder(path, folder, opened, error)
    except BaseException:
        os.close(opened)
        raise
    return opened


def _check_linked_folder(path: Path, folder: Path, fd: int, error: Refusal, link: Path | None = None) -> None:
    """Raise ``error`` when the folder ``folder`` (open as ``fd``), holding the link ``link`` on the way to the file's
    folder or on the way a link naming the file leads (``link`` None), is another user's or writable by others on a
    mount that is not read-only: whoever may write it may swap what the link leads to."""
    info = os.fstat(fd)
    if link is not None:
        # A link on the way to the file's folder, as ``_links_problem`` holds it: no stricter than the folders above.
        problem = _link_folder_problem(folder, info)
        if problem is not None:
            raise error(f"{path} leads through the symbolic link {link}, in {problem}")
        return
    # A sticky folder others may write (/tmp) is theirs to fill: no chmod fixes that, a link elsewhere does.
    problem = _folder_info_problem(folder, info, "the folder", "run chmod go-w on it",
                                   read_only=_read_only(os.fstatvfs(fd)), shared="make the link lead elsewhere")
    if problem is not None:
        raise error(f"{path} is a symbolic link, followed only through folders no one else may change: {problem}")


def read_regular(path: Path, limit: int, error: Refusal) -> tuple[bytes, os.stat_result]:
    """The first ``limit + 1`` bytes of the regular file ``path`` and its status as opened: ``error`` for
    anything but a regular file, a file of another user (not this user's nor root's: its owner may rewrite
    it whatever its mode, swapping in their own verify key, servers or CA), or a symbolic link this module's
    docstring does not trust (one of another user, or leading through a folder others may change:
    ``_open_file``); OSError as ``os.open`` gives it otherwise (FileNotFoundError for a missing file).
    Opened O_NONBLOCK: a FIFO cannot hang the read. The caller checks the length and the status
    (``secret_problem``: who may read it) and the folder the name is in."""
    fd, named = _open_file(path, error)
    with os.fdopen(fd, "rb") as fh:
        opened = os.fstat(fh.fileno())
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino) or not stat.S_ISREG(opened.st_mode):
            raise error(f"{path} changed while it was read; check who else writes its folder")
        if not _trusted(opened.st_uid):
            raise error(f"{path} belongs to another user (uid {opened.st_uid}), who may rewrite it whatever its mode: "
                        "use a copy of your own (or root's)")
        return fh.read(limit + 1), opened


def secret_problem(path: Path, info: os.stat_result) -> str | None:
    """Why the file ``path`` (``info``, its status as opened) cannot be trusted with a secret, in words that
    follow its name in an error; None when it can: it must be this user's or root's, with no permission for
    group or others, in a folder fit for it (``folder_refusal``: the folder the name is in, as given)."""
    mode = stat.S_IMODE(info.st_mode)
    if not _trusted(info.st_uid):
        return (f"holds a secret but belongs to another user (uid {info.st_uid}), who may know or change it: make "
                "a new one of your own")
    if mode & 0o077:
        # A file of root's, or reached through a link, is most likely a mounted secret: chmod cannot fix that.
        mounted = info.st_uid != os.geteuid() or os.path.islink(path)
        fix = ("set its mode to 0400 where it is mounted (compose's secrets mode:, Kubernetes' defaultMode) or run "
               "chmod 600 on it") if mounted else "run chmod 600 on it"
        return f"holds a secret but others may read or write it (mode {mode:04o}); {fix}"
    return folder_refusal(path.parent)


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
        it holds, whatever its mode), naming it as this kind's folder; a missing one is made 0700 on creation."""
        check_folder(path.parent, StoreError, missing_ok=missing_ok, kind=self.folder, advice=self.folder_advice)

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
