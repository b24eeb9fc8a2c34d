"""Watching a drop folder: adapt each new export once it has stopped growing, then move it to ``done/``.

Polling (every ``interval`` seconds) rather than inotify: it works the same on network shares
and in containers, and an export lands every few minutes, not every millisecond. A file is
taken only when its size and modification time are the same on two polls in a row, so a file
still being copied is not read half-written; writers should still write under a temporary
name (hidden, or ending in .tmp or .part, which are ignored) and rename when done. Moving a
processed file to ``done/`` keeps the folder's meaning simple (what is there is pending); if
the move fails, the file is remembered for as long as the watcher runs, and a restart would
read it again harmlessly: the run is idempotent. The move never replaces a file already in
``done/``: agencies reuse export names (one per month, one per day), and the earlier export's
copy is the record of what was read; the later one gets a numbered name beside it.

Whoever may write the drop folder is not trusted with what the adapter itself may read: only regular
files with no other name are taken, never through a symbolic link or a hard link (one to the adapter's
keys, or to /proc/self/environ, would otherwise come back whole in a dead letter), and ``done/`` must be a
folder, not a link to another. A file is read up to the size it had when opened, and archived only if
it is still that file, unchanged: one written to, or replaced, while it was read or before it was moved
is left for the next poll, which reads it again (the ledger publishes only what is missing).

One folder has one watcher: SNM's and COMBIFRON's both take ``*.jsonl``, and SNM's would read
Colombia's messages as its own bad records, into its own dead-letter topic. A watcher holds an exclusive
lock (``flock``) on ``.puente-watch.lock`` in the folder for as long as it runs, the file naming it; a
second one stops at the start, naming the folder and the holder. The lock goes with the process, so a
watcher killed leaves none behind.

A folder that cannot be listed for a while (a network share unmounted or remounting) does not stop
the watcher: it says so once, polls on, and says when the folder is back. A file whose read fails (an I/O error, a
permission refused, partway or before its first record) is left in place and tried again after a wait that doubles
each time, up to ``RETRY_MAX_S``, each failure said with what to do for its cause (``_advice``); what a failed read
published is counted, and a file still failing when the watcher stops is counted left unfinished
(``Tally.unfinished``) and named, with what to do. A file gone between the listing and its read (removed, moved away)
is no failure: nothing to read, nothing retried. An idle exit (``--exit-when-idle``) waits for the retries: it comes
only once every failing file has been tried again ``IDLE_RETRIES`` times, or was not tried within the idle seconds
after its try was due (its folder could not be listed), and idle seconds count from the last arrival (a file new
or grown), read, archive or failure; a file still failing then is left unfinished, and ``puente adapt --watch``
exits 3. A fault that is no I/O error (an adapter's bug met in one file) is a failed try too; a file refused, or
gone, is no longer retried.

Two polls without change do not prove a file complete: an exporter may pause (a slow query, a stalled
share) longer than that. A file whose reader says it stops within a record (its last, without its line
end, whatever error that gives: a JSON line cut within a number reads as bad syntax) or before its end
(PN: no trailer), or that holds no record at all (an exporter that opened its file and has not written
yet), is therefore not archived: it is left in place, and read again once it changes; what the first read
published is then a duplicate, and the records after the cut are published. One still so when the watcher stops is
named left unfinished, with what to do, its held records counted (``Tally.held``: those held at the stop, neither
published nor dead-lettered), and ``puente adapt --watch`` exits 3, as for a file whose read still fails.
Nor does a whole last record: an exporter writing in place may pause at a record's end and write on through its open
file, into the file ``done/`` names by then.
So a file archived is still looked at for an hour (``REGROWN_WATCH_S``), and moved back into the
folder if it grows, saying so: read again as any file there (once still, a cut record held, safe across a restart),
publishing only what is new. What was archived, and when, is kept in a journal in the folder
(``.puente-watch.archived``, beside the lock), so that a watcher restarted meanwhile looks at it as the one that
archived it did; and after the hour a file there that grows is still said, loudly, with what to do, never passed over.
A week after its hour (``JOURNAL_KEEP_S``) a file unchanged leaves the journal, which so holds about a week of
archives; one that grows after that is found by a look at ``done/`` every ten minutes, its modification time past
that of every file the journal let go (``_look_at_done``), and said the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import fnmatch
import hashlib
import io
import json
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from adapters.run import AdapterRun, Tally, UnfinishedRead
from puente.errors import ConfigError, PuenteError
from puente.strict import one_line

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
LOCK_NAME = ".puente-watch.lock"  # hidden: never taken for an export
REFRESH_S = 86_400.0
"""How often a watcher reads what its agency published anew (``AdapterRun.refresh``): its memory then holds what
the topics keep, not all it ever published. After a failed read, it tries again in ``REFRESH_RETRY_S``."""
REFRESH_RETRY_S = 3_600.0
REGROWN_WATCH_S = 3_600.0
"""How long a file moved to ``done/`` is still looked at for growth (``_look_at_archived``): an exporter that writes
in place, pauses longer than two polls at a record's end and writes on, writes into the file ``done/`` now names."""


RETRY_MAX_S = 600.0
"""The longest wait before a file whose read failed (an I/O error, partway or at its start) is tried again: the first
waits two poll intervals, each later one twice the one before, up to this (``_Retries``)."""
_REFUSALS = (errno.ELOOP, errno.EMLINK, errno.EINVAL)  # ``open_dropped`` refusing a file: not a failure to retry
IDLE_RETRIES = 3
"""How many times a file whose read failed is tried again before an idle exit may come (``_Retries.holding``): with
the default two-second polls, about half a minute of tries (4, 8 and 16 s apart) before the file is left unfinished."""


def _advice(code: int | None) -> str:
    """What the operator does about a read failing with ``code`` (an errno)."""
    if code in (errno.EACCES, errno.EPERM):
        return "let this account read it: its owner and mode"
    if code in (errno.EMFILE, errno.ENFILE):
        return "the watcher has too many files open: raise its open-file limit (ulimit -n, LimitNOFILE)"
    if code in (errno.ENOMEM, errno.ENOSPC):
        return "the watcher's machine is short of memory or space: free some"
    return "check the folder's disk or share"


class Clock:
    """The watcher's time: ``now``, in seconds that only go forward (``time.monotonic``), and ``pause``, the wait
    between two polls, cut short by a stop. Tests give one of their own, whose polls take no time and whose seconds
    pass only as the watcher waits, so that what they check does not hang on a loaded machine's timing."""

    def now(self) -> float:
        return time.monotonic()

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):  # the poll interval passed without a stop
            async with asyncio.timeout(seconds):
                await stop.wait()


class _Retries:
    """The files whose read failed (an I/O error, partway or before the first byte), each with how often and when it
    is tried again: after two poll intervals, then twice as long each time, up to ``RETRY_MAX_S``. A file read in
    full, or gone from the folder, is dropped; one still here when the watcher stops is left unfinished
    (``Tally.unfinished``)."""

    def __init__(self, interval: float, clock: Clock) -> None:
        self.interval, self.clock = interval, clock
        # path -> (failures, when to try again, why it failed, what to do)
        self.due: dict[Path, tuple[int, float, str, str]] = {}

    def failed(self, path: Path, why: str, advice: str) -> float:
        """Record a failure of ``path``; the seconds until it is tried again."""
        count = self.due[path][0] + 1 if path in self.due else 1
        wait = min(self.interval * 2.0 ** min(count, 30), RETRY_MAX_S)
        self.due[path] = (count, self.clock.now() + wait, why, advice)
        return wait

    def holding(self, idle: float) -> bool:
        """Whether a failing file is still to be tried again before an idle exit: one that failed no more than
        ``IDLE_RETRIES`` times (its first read and the retries after it), and whose try is due less than ``idle``
        seconds ago. One not tried then (its folder cannot be listed, a share away) holds the exit no longer: it is
        left unfinished, so an idle exit always comes."""
        now = self.clock.now()
        return any(count <= IDLE_RETRIES and now < at + max(idle, self.interval)
                   for count, at, *_ in self.due.values())

    def waiting(self, path: Path) -> bool:
        """Whether ``path`` failed and is not to be tried again yet."""
        return path in self.due and self.clock.now() < self.due[path][1]

    def keep(self, listed: set[Path]) -> None:
        """Forget the files no longer in the folder (removed, or moved away by the operator)."""
        self.due = {path: entry for path, entry in self.due.items() if path in listed}


JOURNAL_NAME = ".puente-watch.archived"  # hidden, beside the lock: never taken for an export
JOURNAL_BYTES = 64 << 20
"""The most a journal may hold: one past it is not read (no journal this watcher wrote), and a write that would pass
it is refused, said, and the journal on disk kept as it was. Pruning (``JOURNAL_KEEP_S``) keeps a journal far below
it: about 130 bytes a file archived within the last week, so half a million files a week before it is reached."""
VERSION = 3
"""The journal's version, in its header: 3 since files moved back are journalled (``back`` lines, with what vouches
for them). A watcher from before reads no version it does not know: it sets the journal aside as not its own (said),
never reading its lines as it would its own (it has no word for a newer version: any unknown one is garbled to it).
A journal of version 1 or 2 is still read, and written whole at its next write, as 3 (``_read_journal``'s size -1):
never appended to under an older header. Its ``back`` lines, if any, vouch for nothing: their files are read as new."""
JOURNAL_KEEP_S = 7 * 86_400.0
"""How long past ``REGROWN_WATCH_S`` a file archived stays named in the journal, looked at every ``LATE_LOOK_S``:
after it, one unchanged is pruned (its name dropped, its modification time folded into ``Journal.settled_ns``), so the
journal holds about a week of archives, not every file ever archived. A pruned file that grows later is still said:
its exporter's write gives it a modification time past ``settled_ns``, which the look at ``done/`` every
``LATE_LOOK_S`` finds (``_look_at_done``), and warns of as a grown archive is, never passed over."""
LATE_LOOK_S = 600.0
"""How often a file archived more than ``REGROWN_WATCH_S`` ago is looked at for growth: it is no longer moved back,
but one that grows is said, loudly (``_look_at_archived``, ``_look_at_done``); a look every poll at every file done/
holds would cost more than it tells."""
_COMPACT_BYTES = 1 << 20  # appended past the last whole write by more than this and its own size: written whole anew


@dataclass
class _Archived:
    """A file ``archive`` moved to ``done/``, as the journal keeps it: its identity as read, and when (wall clock, so
    that the watch window outlives a restart). ``told``, in memory only: the identity last said grown after the window
    (said once per change within a run, and again after a restart, since what it holds is still unread)."""

    identity: tuple[int, int, int, int]
    at: float
    told: tuple[int, int, int, int] | None = None
    whole: int | None = None  # its size when first archived, if it grew and was moved back since
    read_as: str | None = None  # its name when first read, if not its name in done/ (its dead letters' keys name it)


@dataclass(frozen=True)
class _Regrown:
    """A file moved back from ``done/`` because it grew after its archive, as its first read knew it: its size then
    (``whole``: a refusal of it whole keyed by those bytes) and its name then (``read_as``: each dead letter keyed by
    it, ``AdapterRun.run``'s ``named``), so that its reads again make no new dead letter under a numbered name.
    ``file``: its device and inode, so that a file put at its name since (a dropper's new export) inherits neither."""

    whole: int
    read_as: str
    file: tuple[int, int]
    # The journal's own check of a ``back`` line it reads after a restart (``Journal.regrown``): the identity its
    # ``done/`` entry had when it was archived (``archived``, the line honoured only after an entry of it), and a
    # digest of its first ``whole`` bytes as moved back (``head``: an append keeps them, a file put at its name or on
    # its inode since, or one never archived, does not). ``vouched``: read after such an entry, or made by this one.
    archived: tuple[int, int, int, int] | None = None
    head: str | None = None
    vouched: bool = False


class Journal:
    """The files archived to ``done/`` and still looked at for growth, kept in ``.puente-watch.archived`` in the drop
    folder beside the watch lock, so that a restarted watcher looks at them as the one that archived them did.

    Whoever may write the drop folder may write this file too, so an entry can only ever add a look, never take a
    read away: what it names is only ever a name in ``done/`` (no folder, no link followed); a file there is acted
    on only when it is the file named (its device and inode), and then at most moved back into the folder to be read
    again (which publishes only what is missing) or warned of. No entry makes a file in the folder skip its read:
    ``finish_move`` reads again every file a stop left with a name in ``done/`` too, whatever the journal says.

    Its lines are JSON: a header, then one line per file archived, forgotten or pruned, each appended and synced
    (one small write per archive, whatever the journal holds); once the appended lines outgrow the last whole write
    by its own size and a mebibyte, it is written whole anew (a new file renamed over the old: a link planted at its
    name is replaced, never followed), so a backlog of N files costs O(N) to journal, not O(N²). Entries are
    pruned ``JOURNAL_KEEP_S`` after their window (``prune``). One that cannot be read or written is said, never
    passed over in silence: files it would have named are then looked at only while this watcher runs. One found
    too large, or that could not be read for an I/O error, is never written over (an empty journal would replace
    what it holds): the watcher keeps its journal in memory, saying so, until it is moved aside. One garbled (not a
    journal this watcher wrote) is renamed aside (``.puente-watch.archived.bad``, then ``.1.bad``...; kept as it is
    if that fails), said, and a new one begun; a link or a file with other names at its name is replaced, never
    followed. A write that would pass ``JOURNAL_BYTES`` is refused, said, and the journal on disk kept. An append the
    disk takes only part of (full) is cut back to what was there, and the journal written whole instead (all this
    watcher holds, renamed over: never less than the appends held); until a whole write succeeds, none is appended.

    It keeps too each file moved back into the folder until it is archived again (``back``, keyed by its device and
    inode: its name there, its size and name when first read), written before the move, so that a watcher restarted
    between the move back and the archive reads it as the first read knew it (``regrown``): else its dead letters
    would be keyed by its numbered name, made and counted again. A line written and the move not made (a stop
    between them, a move refused) names a file not there: ``regrown`` passes it over, as it does a file put at that
    name since (another device or inode: a dropper's replacement inherits nothing). Whoever may write the folder may
    write these lines too: after a restart one is honoured only when it reads after its file's archive entry, with
    its size and name, names it by its own name or a numbered form, and the file still begins with the bytes it had
    when moved back (``_honoured``); any other is let go, said, and its file read as new."""

    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.path, self.say = folder / JOURNAL_NAME, say
        self.entries: dict[str, _Archived] = {}
        self.back: dict[tuple[int, int], tuple[str, _Regrown]] = {}  # moved back, not archived again: its name there
        # The newest modification time of a file the journal stopped naming, unchanged then (``prune``): a file in
        # done/ the journal does not name and modified after it was written to after it was archived.
        self.settled_ns: int | None = None
        self._failed: str | None = None  # the last write's failure, said once until a write succeeds
        self._kept: str | None = None  # why the journal on disk must not be written over (``load``)
        self._size = -1  # bytes of the journal on disk as this watcher wrote it; -1: none yet, written whole first
        self._whole = 0  # bytes of its last whole write
        self._full_at: int | None = None  # entries when a whole write was refused for size: tried again below that

    @classmethod
    def load(cls, folder: Path, say: Callable[[str], None]) -> Journal:
        """The folder's journal as its last watcher left it; empty (said so) when it cannot be read."""
        journal = cls(folder, say)
        try:
            journal.entries, journal.back, journal.settled_ns, journal._size = _read_journal(journal.path)
            journal._whole = max(journal._size, 0)
            if journal.settled_ns is not None:
                # No file was pruned after the journal was last written, nor after now: a time past either (a watcher
                # before ``prune`` capped times at its clock, folding in a file dated ahead; a journal's modification
                # time set ahead, touch -d, by whoever may write the folder) would hide every write to done/ until it.
                journal.settled_ns = min(journal.settled_ns, os.stat(journal.path).st_mtime_ns, time.time_ns())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            why = exc.strerror or type(exc).__name__ if isinstance(exc, OSError) else str(exc)
            keep = ""
            if isinstance(exc, _Garbled):  # what it holds may still tell an operator what was archived: kept aside
                try:
                    keep = f" It is kept aside as {one_line(_set_aside(journal.path).name)}; a new one is begun"
                except OSError as aside:
                    why = f"{why}; cannot be set aside: {aside.strerror or type(aside).__name__}"
            if not keep and (isinstance(exc, OSError | _Garbled) or str(exc).startswith("larger than")):
                journal._kept = why
                keep = (" It is kept as it is, never written over: this watcher's journal is kept in memory until "
                        "it is moved aside or removed")
            say(f"the journal of files archived to done/ ({one_line(str(journal.path))}) cannot be read ({why}); "
                "files archived before this start are not looked at for growth: compare each recent file in done/ "
                "with its export, and move back into the folder any written to after it was archived (only what is "
                f"new is published).{keep}")
        return journal

    def note(self, name: str, identity: tuple[int, int, int, int], whole: int | None = None,
             read_as: str | None = None) -> None:
        """Record ``done/<name>`` as archived now, read as ``identity``; ``whole``: its size when first archived, for
        a file that grew after it and was moved back (a refusal of it whole keyed by those bytes: ``whole_upto``);
        ``read_as``: its name when first read (its dead letters keyed by it, whatever name it comes back under)."""
        entry = _Archived(identity, time.time(), whole=whole, read_as=None if read_as == name else read_as)
        self.entries[name] = entry
        self._append([_line(name, entry)])

    def noting(self, identity: tuple[int, int, int, int], first: _Regrown | None,
               read_as: str) -> Callable[[Path], None]:
        """``note`` of a file read as ``identity`` under the name ``read_as`` (``first``: as its first read knew it,
        if it was moved back), for ``archive`` to call with the path it gave it in ``done/``."""
        if first is None:
            return lambda kept: self.note(kept.name, identity, None, read_as)
        return lambda kept: self.note(kept.name, identity, first.whole, first.read_as)

    def moving_back(self, name: str, first: _Regrown) -> None:
        """Record, before the move is tried, that the file ``first.file`` names is moved back from ``done/`` into
        the folder as ``name`` (each name tried replaces the last), as its first read knew it (``first``, with the
        identity of its entry in done/ and the digest of its first bytes, ``_Regrown.head``)."""
        self.back[first.file] = (name, first)
        self._append([_back_line(name, first)])

    def moving(self, first: _Regrown) -> Callable[[Path], None]:
        """``moving_back`` of the file ``first`` names, for ``_move_free`` to call with each name it tries."""
        return lambda target: self.moving_back(target.name, first)

    def moved_away(self, *files: tuple[int, int]) -> None:
        """Keep no more the files moved back that ``files`` name (device, inode): archived again, gone from the
        folder, or never moved."""
        gone = [file for file in files if self.back.pop(file, None) is not None]
        if gone:
            self._append([{"unback": list(file)} for file in gone])

    def regrown(self, folder: Path) -> dict[Path, _Regrown]:
        """The files moved back into ``folder`` and not archived again, each as its first read knew it: only those
        still at the name and the file (device, inode) the journal gives; the others are let go (never moved, or
        removed, or replaced by a dropper's file, which must not be read as the one moved back)."""
        found, stale = {}, []
        for file, (name, first) in self.back.items():
            honoured = _honoured(folder / name, first)
            if honoured:
                found[folder / name] = first
            elif honoured is not None:  # None: cannot be looked at just now (EIO, EACCES): the line kept
                stale.append(file)
                if os.path.lexists(folder / name):
                    self.say(f"the journal says {one_line(name)} was moved back from done/, and the file there is "
                             "not the one it names (nothing vouches for the line, or its first bytes differ): it is "
                             "read as a new file, its dead letters its own")
        self.moved_away(*stale)
        return found

    def keep_back(self, listed: set[Path]) -> None:
        """Keep no more the files moved back whose names ``listed`` (the folder's files now) no longer holds."""
        self.moved_away(*(file for file, (name, _) in self.back.items()
                          if self.path.parent / name not in listed))

    def forget(self, *names: str) -> None:
        """Look no more at ``done/<name>``: moved back, removed, or another file by now."""
        gone = [name for name in names if self.entries.pop(name, None) is not None]
        if gone:
            self._append([{"forget": name} for name in gone])

    def prune(self, settled: dict[str, int]) -> None:
        """Name no more the files ``settled`` names (each with its modification time, unchanged since it was
        archived, ``JOURNAL_KEEP_S`` past its window): their times fold into ``settled_ns``, which the look at
        ``done/`` compares every file the journal does not name with. Each time is taken at most as now: one ahead
        (a clock set wrong, touch -d) would otherwise hide every write before it."""
        if not settled:
            return
        now = time.time_ns()
        self.settled_ns = max(self.settled_ns or 0, *(min(ns, now) for ns in settled.values()))
        for name in settled:
            self.entries.pop(name, None)
        self._append([{"settled_ns": self.settled_ns}, *({"forget": name} for name in settled)])

    def name_late(self, name: str, st: os.stat_result) -> None:
        """Name again ``done/<name>``, a file pruned and written to since (``_look_at_done`` warned of it, ``st``): a
        later prune's time must not hide it. Its entry matches no state of the file, so it is never pruned again:
        ``_look_at_archived`` warns of it by name after each restart and once per change, until it is moved back or
        removed."""
        entry = _Archived((st.st_dev, st.st_ino, -1, -1), 0.0, told=_identity(st))
        self.entries[name] = entry
        self._append([_line(name, entry)])

    def _append(self, items: list[dict[str, Any]]) -> None:
        if self._kept is not None:
            return self._said(f"kept as it is ({self._kept})", "move it aside or remove it")
        data = b"".join(json.dumps(item).encode() + b"\n" for item in items)
        if self._size < 0 or self._size + len(data) > min(2 * self._whole + _COMPACT_BYTES, JOURNAL_BYTES):
            return self._save()
        try:
            _append_to(self.path, data, self._size)
        except OSError:  # gone, another file by now, or a short write (a full disk): written whole in its place
            self._size = -1  # whole writes only, until one succeeds: never an append after what a failure left
            return self._save()
        self._size += len(data)
        self._failed = None

    def _save(self) -> None:
        if self._full_at is not None and len(self.entries) >= self._full_at:
            return  # refused for size, and no smaller since: said already
        lines = [{"version": VERSION, "settled_ns": self.settled_ns},
                 *(_line(n, e) for n, e in self.entries.items()),
                 *(line for name, first in self.back.values() for line in _back_lines(name, first))]
        data = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
        if len(data) > JOURNAL_BYTES:
            self._full_at = len(self.entries)
            self.say(f"WARNING: the journal of files archived to done/ ({one_line(str(self.path))}) would pass "
                     f"{_bytes(JOURNAL_BYTES)} ({len(self.entries):,} files archived within "
                     f"{JOURNAL_KEEP_S / 86_400:g} days of their watch window); it is kept as it was, and files "
                     "archived since are looked at for growth only while this watcher runs: compare each recent file "
                     "in done/ with its export after a restart")
            return
        self._full_at = None
        try:
            _write_whole(self.path, data)
        except OSError as exc:
            return self._said(exc.strerror or type(exc).__name__, "let this account write the folder")
        self._size = self._whole = len(data)
        self._failed = None

    def _said(self, why: str, what: str) -> None:
        if why != self._failed:
            self._failed = why
            self.say(f"cannot write the journal of files archived to done/ ({one_line(str(self.path))}: {why}); "
                     f"files archived meanwhile are looked at for growth only while this watcher runs: {what}")


def _bytes(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def _line(name: str, entry: _Archived) -> dict[str, Any]:
    line: dict[str, Any] = {"name": name, "identity": list(entry.identity), "at": entry.at}
    if entry.whole is not None:
        line["whole"] = entry.whole
    if entry.read_as is not None:
        line["read_as"] = entry.read_as
    return line


def _back_line(name: str, first: _Regrown) -> dict[str, Any]:
    line: dict[str, Any] = {"back": name, "file": list(first.file), "whole": first.whole, "read_as": first.read_as}
    if first.archived is not None:
        line["archived"] = list(first.archived)
    if first.head is not None:
        line["head"] = first.head
    return line


def _back_lines(name: str, first: _Regrown) -> list[dict[str, Any]]:
    """A file moved back as a whole write keeps it: its ``done/`` entry as archived (forgotten at once) before its
    line, so that the line reads after an entry of it, as it did when appended (``_read_journal``)."""
    if not first.vouched or first.archived is None:
        return [_back_line(name, first)]
    entry = _Archived(first.archived, 0.0, whole=first.whole, read_as=first.read_as)
    return [_line(_ENTRY, entry), {"forget": _ENTRY}, _back_line(name, first)]


_ENTRY = ".puente-moved-back"  # the name a whole write gives a moved-back file's entry, forgotten at once


def _read_back(item: dict[str, Any],
               archived: dict[tuple[int, int, int, int], tuple[int, str]]) -> tuple[str, _Regrown]:
    """A ``back`` line's name and file as its first read knew it; ValueError when it is not one. ``archived``: the
    entries read before it (identity: size when first archived, name when first read); the line is ``vouched`` only
    when one of them is its file, as the line says, with the same size and name."""
    name, file, whole, read_as = item["back"], item["file"], item["whole"], item["read_as"]
    identity, head = item.get("archived"), item.get("head")
    if (not _a_name(name) or not _a_name(read_as) or type(whole) is not int or not isinstance(file, list)
            or len(file) != 2 or not all(type(n) is int for n in file) or not (head is None or type(head) is str)
            or not (identity is None or (isinstance(identity, list) and len(identity) == 4
                                         and all(type(n) is int for n in identity)))):
        raise ValueError
    ids = None if identity is None else (identity[0], identity[1], identity[2], identity[3])
    vouched = ids is not None and ids[:2] == (file[0], file[1]) and archived.get(ids) == (whole, read_as)
    return name, _Regrown(whole, read_as, (file[0], file[1]), ids, head, vouched)


def _head(fd: int, whole: int) -> str | None:
    """A digest of the first ``whole`` bytes of the file open at ``fd``; None when it holds fewer."""
    h, at = hashlib.blake2b(digest_size=16), 0
    while at < whole:
        block = os.pread(fd, min(whole - at, 1 << 20), at)
        if not block:
            return None
        h.update(block)
        at += len(block)
    return h.hexdigest()


def _family(name: str, read_as: str) -> bool:
    """Whether ``name`` is ``read_as`` or a numbered form of it (``_numbered``): the names ``_move_free`` gives."""
    read = Path(read_as)
    if name == read_as:
        return True
    if not (name.startswith(read.stem + ".") and name.endswith(read.suffix)):
        return False
    n = name[len(read.stem) + 1:len(name) - len(read.suffix)]
    return n.isdigit() and n == str(int(n)) and _numbered(read, int(n)) == name


def _head_in(done: int, name: str, st: os.stat_result, whole: int) -> str | None:
    """``_head`` of ``done/<name>``, the file ``st`` is; None when it cannot be read (its line then vouches for
    nothing after a restart: the file is read as new, its dead letters made again rather than one passed over)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=done)
    except OSError:
        return None
    try:
        seen = os.fstat(fd)
        return _head(fd, whole) if (seen.st_dev, seen.st_ino) == (st.st_dev, st.st_ino) else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _honoured(path: Path, first: _Regrown) -> bool | None:
    """Whether the file at ``path`` is to be read as the file a ``back`` line read after a restart says was moved
    back there (``first``); None when it cannot be looked at just now (the line is kept). Whoever may write the
    folder may write the journal: a planted line must not make a file never archived (a new export) be read with
    another's first size and name (a refusal of it keyed by bytes it chose, colliding with a dead letter it made).
    So a line is honoured only when it is ``vouched`` (read after its file's archive entry, with its size and
    name), names its file by its own name or a numbered form (``_family``: only its name's own family keys its
    dead letters), holds 0 < ``whole`` <= its size, and the file's first ``whole`` bytes are those it had when moved
    back (``head``). Neither its change time nor its modification time could tell an append since the move (a
    file moved back is one its exporter kept writing) from a new export on the inode of one removed: both are later;
    its first bytes do (an append keeps them)."""
    if not first.vouched or first.head is None or first.whole <= 0 or not _family(path.name, first.read_as):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        return False if exc.errno == errno.ELOOP else None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != first.file or st.st_size < first.whole:
            return False
        return _head(fd, first.whole) == first.head
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_journal(path: Path) -> tuple[dict[str, _Archived], dict[tuple[int, int], tuple[str, _Regrown]],
                                       int | None, int]:
    """The entries of the journal at ``path``, the files it says moved back (``Journal.back``), its ``settled_ns``
    and size; ValueError when it is not one (OSError when it cannot be read). A last line cut short (a stop within
    an append) is left out, and the size is then -1: the next write is whole, never an append after the cut."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link planted at its name: replaced by the next write, never followed
            raise ValueError("a symbolic link, never followed") from None
        raise
    with io.FileIO(fd, "rb", closefd=True) as file:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise ValueError("not a plain file of the folder's own; remove it")
        data = file.read(JOURNAL_BYTES + 1)
    if len(data) > JOURNAL_BYTES:
        raise ValueError(f"larger than {_bytes(JOURNAL_BYTES)}")
    entries: dict[str, _Archived] = {}
    back: dict[tuple[int, int], tuple[str, _Regrown]] = {}
    archived: dict[tuple[int, int, int, int], tuple[int, str]] = {}  # every entry read, forgotten since or not
    settled: int | None = None
    try:
        lines = data.split(b"\n")
        head = json.loads(lines[0])
        if head["version"] == 1:  # one JSON document, as the first journals were written
            items, settled = json.loads(data)["archived"], None
        elif head["version"] in (2, VERSION) and (head["settled_ns"] is None or type(head["settled_ns"]) is int):
            settled = head["settled_ns"]
            items = [json.loads(line) for line in lines[1:-1]]  # the last: empty, or an append cut short
        else:
            raise ValueError
        for item in items:
            if "forget" in item:
                entries.pop(item["forget"], None)
                continue
            if "back" in item:
                name, first = _read_back(item, archived)
                back[first.file] = (name, first)
                continue
            if "unback" in item:
                file = item["unback"]
                if not isinstance(file, list) or len(file) != 2:
                    raise ValueError
                back.pop((file[0], file[1]), None)
                continue
            if "settled_ns" in item:
                if type(item["settled_ns"]) is not int:
                    raise ValueError
                settled = max(settled or 0, item["settled_ns"])
                continue
            name, identity, at, whole = item["name"], tuple(item["identity"]), item["at"], item.get("whole")
            read_as = item.get("read_as")
            if (not _a_name(name) or not (read_as is None or _a_name(read_as))
                    or len(identity) != 4 or not all(type(n) is int for n in identity)
                    or not isinstance(at, int | float) or not (whole is None or type(whole) is int)):
                raise ValueError
            entries[name] = _Archived((identity[0], identity[1], identity[2], identity[3]), float(at), whole=whole,
                                      read_as=read_as)
            archived[entries[name].identity] = (identity[2] if whole is None else whole, read_as or name)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        raise _Garbled("not a journal this watcher wrote") from None
    return entries, back, settled, len(data) if data.endswith(b"\n") and head["version"] == VERSION else -1


def _a_name(name: object) -> bool:
    """Whether ``name`` is a file's name in a folder (not below it), as the journal may hold one."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name


class _Garbled(ValueError):
    """A journal whose content is not one this watcher wrote (a file it did not write, or written over by hand)."""


def _set_aside(path: Path) -> Path:
    """Rename the garbled journal at ``path`` to a hidden name beside it no file has ('….bad', '….1.bad'...), never
    over another file: what it holds is kept for the operator, never written over by a new journal."""
    for n in range(100):
        aside = path.with_name(f"{path.name}.bad" if n == 0 else f"{path.name}.{n}.bad")
        try:
            _rename_new(path, aside)
        except FileExistsError:
            continue
        return aside
    raise OSError(errno.EEXIST, "a hundred journals set aside already: remove them", str(path))


def _append_to(path: Path, data: bytes, size: int) -> None:
    """Append ``data`` to the journal at ``path``, ``size`` bytes as last written, and sync it: never through a link,
    never to a file with another name (then OSError: the journal is written whole instead). A write the disk takes
    only part of (full) is cut back to ``size`` and raises OSError: never half a line left for the next to garble."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise OSError(errno.EMLINK, "not a plain file of the folder's own", str(path))
        written = os.write(fd, data)
        if written != len(data):
            with contextlib.suppress(OSError):  # if this fails too, the next write is whole (``Journal._append``)
                os.ftruncate(fd, size)
            raise OSError(errno.ENOSPC, f"{written} of {len(data)} bytes written", str(path))
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a new file beside it, synced, renamed over it (a link at ``path`` is
    replaced, never followed), and the folder synced so that the rename outlives a crash."""
    temp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")  # hidden and temporary: never an export
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with open(fd, "wb", closefd=True) as file:
            file.write(data)
            file.flush()
            os.fsync(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse a folder's fsync: the rename stands all the same
            os.fsync(folder)
    finally:
        os.close(folder)


def _signature(path: Path) -> tuple[int, float] | None:
    """Size and modification time of a regular file (not followed if a link), or None when it is something
    else or has gone (moved away between two looks)."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime) if stat.S_ISREG(st.st_mode) else None


def pending(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Regular files in ``folder`` (not below it, not symbolic links) matching the adapter's patterns whatever
    the case of their names ('INCAU1125.TXT' is a '*.txt'), oldest first."""
    return scan(folder, patterns)[0]


def scan(folder: Path, patterns: tuple[str, ...]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``pending``'s files, and the regular files and links in ``folder`` it will not take, each with why.

    Hidden and temporary names (a writer's file not finished yet) are neither: they are left alone, unsaid.
    """
    wanted = [pattern.lower() for pattern in patterns]
    ready: dict[Path, tuple[int, float]] = {}
    refused: list[tuple[Path, str]] = []
    for name in os.listdir(folder):
        if name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES):
            continue
        path = folder / name
        try:
            mode = path.lstat().st_mode
        except OSError:  # gone since the listing
            continue
        if stat.S_ISLNK(mode):
            refused.append((path, "a symbolic link (never followed in a drop folder): copy the file in instead"))
        elif not stat.S_ISREG(mode):
            continue  # done/, and any other folder: not files
        elif not any(fnmatch.fnmatchcase(name.lower(), pattern) for pattern in wanted):
            refused.append((path, f"its name does not match {', '.join(patterns)}"))
        elif (sig := _signature(path)) is not None:
            ready[path] = sig
    return sorted(ready, key=lambda p: (ready[p][1], p.name)), refused


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def open_dropped(path: Path) -> tuple[BinaryIO, tuple[int, int, int, int]]:
    """A dropped file opened for reading, seen as it is now (the first ``size`` bytes only), with its
    identity (device, inode, size, modification time) for ``unchanged``. OSError when it is a symbolic link
    (never followed) or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link (never followed in a drop folder)", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_nlink != 1:  # another name for a file elsewhere, which the dropper may not be allowed to read
            raise OSError(errno.EMLINK, "a file with other names (hard links): copy it into the folder instead",
                          str(path))
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(_Prefix(raw, st.st_size), 1 << 16), _identity(st)


def unchanged(path: Path, stream: BinaryIO, identity: tuple[int, int, int, int]) -> bool:
    """Whether ``path`` is still the file ``stream`` read, as it was when opened."""
    try:
        return _identity(os.fstat(stream.fileno())) == identity == _identity(path.lstat())
    except OSError:
        return False


class _Prefix(io.RawIOBase):
    """The first ``size`` bytes of a file: what was there when it was opened, whatever is written after."""

    def __init__(self, raw: io.FileIO, size: int) -> None:
        super().__init__()
        self._raw, self._size = raw, size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self._raw.seek(self._size + offset)
        return self._raw.seek(offset, whence)

    def readinto(self, buffer: Any) -> int:
        room = max(0, self._size - self._raw.tell())
        view = memoryview(buffer).cast("B")[:room]
        return self._raw.readinto(view) or 0 if room else 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def archive(path: Path, done: Path, identity: tuple[int, int, int, int] | None = None,
            noted: Callable[[Path], None] | None = None) -> Path | None:
    """Move ``path`` into ``done`` under its own name, or 'name.1.ext', 'name.2.ext'... if taken; never replaces one.

    A hard link is made under the new name and then the original removed, since a link, unlike
    a rename, fails when the name is taken (no window between looking and moving). Where links
    are not supported (some network shares), a name no file has is renamed to instead. ``done`` must be a
    folder, not a symbolic link (whoever may write the drop folder could otherwise have the adapter put files
    where it may write). With ``identity`` (``open_dropped``'s), only that file is moved: None when ``path``
    is another file by now (replaced after it was read), which is left for the next poll. ``noted(done/<name>)`` is
    called once the file is in ``done/`` and before its name in the drop folder is removed (the watcher records it in
    its journal then, so that a file archived just before a stop is looked at for growth after it; a stop between
    the two leaves it with two names, which ``finish_move`` reads again).
    """
    done.mkdir(exist_ok=True)
    try:
        folder = _open_done(done)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(exc.errno, "done/ is not a folder of its own (a symbolic link?)", str(done)) from None
        raise
    try:
        return _archive(path, done, folder, identity, noted or (lambda _: None))
    finally:
        os.close(folder)


def finish_move(path: Path, done: Path, journal: Journal | None = None) -> bool:
    """Whether ``path`` was a file ``archive`` had linked into ``done`` (under its own name, or a numbered one) when
    the watcher stopped, before it removed the name in the drop folder; if so its name in ``done/`` is removed (and
    forgotten by the ``journal``), and the file, with one name, is read again as any file in the folder: the ledger
    publishes only what is missing, and its bad records' dead letters are on the topic already (already rejected).
    Such a file has two names, which ``open_dropped`` refuses.

    The move is never finished the other way (the drop-folder name removed, the file unread): whoever may write the
    drop folder may write the journal and make hard links into ``done/``, and could so make an export look archived
    and have it removed unread; and a file written to since its link holds records never read. A read again costs
    duplicates, never a record. A link to another archived file (an operator re-dropping one) is not taken for
    one: refused as ever."""
    names = re.compile(re.escape(path.stem) + r"(?:\.[0-9]+)?" + re.escape(path.suffix))  # what archive names it
    try:
        st = path.lstat()
        if st.st_nlink != 2 or not stat.S_ISREG(st.st_mode):
            return False
        folder = _open_done(done)  # listed and unlinked in through it: a link swapped in for done/ is never followed
    except OSError:  # gone, or done/ away, not a folder, or a link
        return False
    try:
        with os.scandir(folder) as entries:
            linked = next((e.name for e in entries if e.is_file(follow_symlinks=False) and names.fullmatch(e.name)
                           and e.inode() == st.st_ino and e.stat(follow_symlinks=False).st_dev == st.st_dev), None)
        again = path.lstat()  # still that file: one renamed over it meanwhile is a new export, to be read
        if linked is None or (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
            return False
        if not _unlink_same(folder, linked, again):
            return False
    except OSError:
        return False
    finally:
        os.close(folder)
    if journal is not None:
        journal.forget(linked)
    return True


def _unlink_same(folder: int, name: str, st: os.stat_result) -> bool:
    """Remove ``<name>`` in ``folder`` (the descriptor of done/) if it is still the file ``st`` is (never a file put
    in its place since)."""
    now = os.stat(name, dir_fd=folder, follow_symlinks=False)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        return False
    os.unlink(name, dir_fd=folder)
    return True


def _open_done(done: Path) -> int:
    """A descriptor of the folder ``done`` (OSError if it is a link, or no folder): whoever may write the drop folder
    may replace ``done`` by a link to a folder of the watcher's own at any time, so each look at done/ opens it once
    and makes every look, listing, rename and unlink in it through this descriptor, never by a path anew."""
    return os.open(done, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _numbered(path: Path, n: int) -> str:
    """The ``n``-th name a file named as ``path`` may take where its own is taken: its own, then 'name.1.ext',
    'name.2.ext'... (what ``finish_move`` reads back)."""
    return path.name if n == 0 else f"{path.stem}.{n}{path.suffix}"


def _same(st: os.stat_result, identity: tuple[int, int, int, int] | None) -> bool:
    """Whether ``st`` is the file ``identity`` names, as it was read: the same file, neither grown nor rewritten."""
    return identity is None or _identity(st) == identity


def _archive(path: Path, done: Path, folder: int, identity: tuple[int, int, int, int] | None,
             noted: Callable[[Path], None]) -> Path | None:
    n = 0
    while True:
        name = _numbered(path, n)
        n += 1
        try:
            os.link(path, name, dst_dir_fd=folder, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:  # no hard links here: look, then rename (the watcher is done/'s only writer)
            try:
                os.stat(name, dir_fd=folder, follow_symlinks=False)
                continue
            except FileNotFoundError:
                pass
            if not _same(path.lstat(), identity):
                return None
            noted(done / name)  # before: a stop just after the rename must leave it recorded
            os.rename(path, name, dst_dir_fd=folder)
            return done / name
        linked = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if not _same(linked, identity):
            os.unlink(name, dir_fd=folder)  # what was linked is a file put there after the read: not archived
            return None
        noted(done / name)
        try:
            now = path.lstat()
        except FileNotFoundError:  # removed meanwhile: done/ holds the only name of the file read
            return done / name
        if _same(now, identity):
            path.unlink()
            return done / name
        if (now.st_dev, now.st_ino) == (linked.st_dev, linked.st_ino):
            # The file read, written to since the link: left with two names, it would be taken for a move a stop
            # cut short (finish_move) and its new records never read. Unlinked from done/, it is read again.
            os.unlink(name, dir_fd=folder)
        # else replaced since the link: the file read stays in done/, and the new one is read at the next poll
        return None


@contextlib.contextmanager
def folder_lock(folder: Path, holder: str) -> Iterator[None]:
    """Hold the folder's watch lock, naming ``holder`` in it; ConfigError, naming the folder and the holder, when
    another watcher holds it. The lock file is never followed if a link, and never written unless it is the
    folder's own (one name, a regular file): whoever may write the folder must not have it overwrite another.

    A lock file this account may not write (left by a watcher run under another account) is opened to read
    only: ``flock`` needs no write, so the lock holds all the same; only the holder's name is not written in
    it. A file system that gives no locks (some network shares) is said so, in one line: without a lock, one
    watcher per folder cannot be made sure of."""
    path = folder / LOCK_NAME
    shown = one_line(str(path))
    fd, writable = _open_lock(path, shown)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise ConfigError(f"the watch lock {shown} is not a plain file of the folder's own; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = one_line(os.pread(fd, 200, 0).decode("utf-8", "replace").strip())
            raise ConfigError(f"{one_line(str(folder))} is watched already by "
                              f"{other or 'another watcher'}: give each adapter a drop folder of its own") from None
        except OSError as exc:
            if exc.errno != errno.ENOLCK:
                raise ConfigError(f"cannot lock the watch lock {shown}: {exc.strerror or type(exc).__name__}") from None
            raise ConfigError(f"the file system of {one_line(str(folder))} gives no file locks, so one watcher per "
                              "folder cannot be made sure of: use a drop folder on a file system with locks (a "
                              "local disk, or a share mounted with locking)") from None
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder} (process {os.getpid()})\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, naming the last holder that could write it


def _open_lock(path: Path, shown: str) -> tuple[int, bool]:
    """The lock file's descriptor, and whether it may be written: opened to read only when this account may not
    write it (a lock file another account's watcher left, 0644). Never through a link."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644), True
    except OSError as exc:
        if exc.errno != errno.EACCES:
            raise ConfigError(f"cannot open the watch lock {shown}: {exc.strerror or type(exc).__name__} "
                              "(remove it if it is a link)") from None
    try:
        return os.open(path, os.O_RDONLY | flags), False
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # no lock file, and the folder is not this account's to write
            raise ConfigError(f"cannot create the watch lock {shown}: permission denied; let this account write "
                              "the folder") from None
        raise ConfigError(f"cannot open the watch lock {shown}: {exc.strerror or type(exc).__name__} "
                          "(remove it if it is a link)") from None


async def watch(run: AdapterRun, folder: Path, *, interval: float = 2.0, idle_exit: float | None = None,
                stop: asyncio.Event | None = None, out: TextIO | None = None, clock: Clock | None = None) -> Tally:
    """Adapt files as they arrive until ``stop`` is set, or until nothing arrived for ``idle_exit`` seconds, holding
    the folder's lock (``folder_lock``) meanwhile. A caller that must know the folder is its own before it says
    anything or reaches Kafka (``puente adapt --watch``) takes the lock itself, then calls ``watching``."""
    if not folder.is_dir():
        raise ConfigError(f"{one_line(str(folder))} is not a folder")
    with folder_lock(folder, watcher(run.adapter.name)):
        return await watching(run, folder, interval=interval, idle_exit=idle_exit, stop=stop, out=out, clock=clock)


def watcher(adapter: str) -> str:
    """How a watch lock names the ``adapter``'s watcher holding it (the process is added)."""
    return f"the {adapter} adapter"


async def watching(run: AdapterRun, folder: Path, *, interval: float = 2.0, idle_exit: float | None = None,
                   stop: asyncio.Event | None = None, out: TextIO | None = None, clock: Clock | None = None) -> Tally:
    """``watch``, the folder's lock held by the caller already (``folder_lock``)."""
    return await _watch(run, folder, interval, idle_exit, stop, out or sys.stdout, clock or Clock())


async def _watch(run: AdapterRun, folder: Path, interval: float, idle_exit: float | None,
                 stop: asyncio.Event | None, out: TextIO, clock: Clock) -> Tally:
    stop = stop or asyncio.Event()
    done_dir = folder / "done"
    where = one_line(str(folder))
    total = Tally()
    sizes: dict[Path, tuple[int, float]] = {}
    handled: set[tuple[Path, int, float]] = set()
    idle_since = clock.now()
    told: set[tuple[Path, str]] = set()  # each file not taken is reported once
    gone = False  # the folder could not be listed at the last poll
    refresh_at = clock.now() + REFRESH_S  # the run's ledger was read as it started
    journal = Journal.load(folder, lambda text: print(f"{run.adapter.name}: {text}", file=run.err, flush=True))
    late_at = clock.now()  # files archived before the window: looked at now, then every LATE_LOOK_S
    told_done: set[tuple[str, int, int]] = set()  # ``_look_at_done``'s warnings, each said once per change
    retries = _Retries(interval, clock)
    # Files moved back from done/ once grown: as their first read knew them, a restart between the move and the
    # archive again included (the journal keeps them until then).
    regrown = journal.regrown(folder)
    holding: dict[Path, tuple[int, bool]] = {}  # files whose last read ended within a record: held, and whether empty
    while not stop.is_set():
        if clock.now() >= refresh_at:  # between files: none is in flight
            try:
                await run.refresh()
            except PuenteError as exc:  # Kafka away for a while: the ledger held still answers; tried again later
                print(f"{run.adapter.name}: could not read what {run.adapter.agency} published anew "
                      f"({one_line(str(exc))[:300]}); going on with what is known, trying again in an hour",
                      file=run.err, flush=True)
                refresh_at = clock.now() + REFRESH_RETRY_S
            else:
                refresh_at = clock.now() + REFRESH_S
        try:
            ready, refused = scan(folder, run.adapter.patterns)
        except OSError as exc:  # a share unmounted or remounting: said once, and polled until it is back
            if not gone:
                print(f"{run.adapter.name}: cannot list {where} ({exc.strerror or type(exc).__name__}); still "
                      "watching, and going on when it is back", file=run.err, flush=True)
            gone, ready, refused = True, [], []
        else:
            if gone:
                print(f"{run.adapter.name}: {where} can be listed again; watching it", file=run.err, flush=True)
            gone = False
        # What no longer lies in the folder is forgotten: read, moved away or removed, a later file of that name is
        # new (and this run's memory does not grow with every file it ever saw).
        listed = set(ready) | {path for path, _ in refused}
        if not gone:
            handled = {entry for entry in handled if entry[0] in listed}
            told = {entry for entry in told if entry[0] in listed}
            sizes = {path: sig for path, sig in sizes.items() if path in listed}
            regrown = {path: first for path, first in regrown.items() if path in listed}
            journal.keep_back(listed)
            holding = {path: held for path, held in holding.items() if path in listed}
            retries.keep(listed)
        for path, why in refused:
            if (path, why) not in told:
                told.add((path, why))
                print(f"{run.adapter.name}: {one_line(path.name)} is not taken: {why}", file=run.err,
                      flush=True)
        if (journal.entries or journal.settled_ns is not None) and not gone:
            late = clock.now() >= late_at
            _look_at_archived(run, journal, folder, late=late, regrown=regrown)
            if late:
                _look_at_done(run, journal, folder, told_done)
                late_at = clock.now() + LATE_LOOK_S
        for path in ready:
            if stop.is_set():  # a backlog can hold thousands of files: a stop waits for the one in flight, no more
                break
            sig = _signature(path)
            if sig is None:  # gone, or no longer a regular file, since the listing: nothing to try again
                retries.due.pop(path, None)
                continue
            if sizes.get(path) != sig:  # seen for the first time, or still changing: wait one more poll
                sizes[path] = sig
                if (path, *sig) not in handled:  # a file arrived or grew: no idle exit before it is read
                    idle_since = clock.now()
                continue
            if (path, *sig) in handled:  # read already as it is (held, refused): read again once it changes
                continue
            if retries.waiting(path):  # its read failed: tried again once its wait is over
                continue
            handled.add((path, *sig))  # tried once per content: an unreadable file is not retried every poll
            name = one_line(path.name)  # whoever names a file must not write the terminal's lines
            if finish_move(path, done_dir, journal):
                print(f"{run.adapter.name}: {name} was linked into done/ by a move a stop cut short: taken out of "
                      "done/ and read again, publishing only what is missing", file=run.err, flush=True)
            try:
                stream, identity = open_dropped(path)
            except OSError as exc:  # refused, unreadable, or gone: one file must not stop the watcher
                why = exc.strerror or type(exc).__name__
                if exc.errno in _REFUSALS:  # not a failure: the same file is refused again, until it changes
                    retries.due.pop(path, None)
                    print(f"{run.adapter.name}: cannot read {name}: {why}; left in place", file=run.err, flush=True)
                else:
                    handled.discard((path, *sig))  # tried again after a wait, changed or not
                    if _failed(run, retries, path, exc, None, out):
                        idle_since = clock.now()
                continue
            try:
                with stream:
                    first = regrown.get(path)  # moved back: read as its first read knew it (its dead letters' keys)
                    if first is None and path.name == journal.back.get(identity[:2], ("",))[0]:
                        # its line kept at the start, the file not to be looked at then (EIO, EACCES): looked at now
                        first = journal.back[identity[:2]][1]
                        if _honoured(path, first):
                            regrown[path] = first
                        else:
                            journal.moved_away(first.file)
                            first = None
                    if first is not None and first.file != identity[:2]:
                        # another file put at its name since: a new export, read as its own, never as the one moved
                        journal.moved_away(regrown.pop(path).file)
                        first = None
                    reading = (run.run(stream, str(path), hold_cut=True) if first is None else
                               run.run(stream, str(path), hold_cut=True, whole_upto=first.whole, named=first.read_as))
                    tally = await reading
                    same = unchanged(path, stream, identity)
            except UnfinishedRead as exc:  # what was read is published and counted; the rest is read again later
                _read_again(total, holding, path)
                total.add(exc.tally)
                handled.discard((path, *sig))  # tried again after a wait, changed or not
                if _failed(run, retries, path, exc.cause, exc.tally, out):
                    idle_since = clock.now()
                continue
            except OSError as exc:  # failing before a record was read
                handled.discard((path, *sig))
                if _failed(run, retries, path, exc, None, out):
                    idle_since = clock.now()
                continue
            except PuenteError:  # Kafka or keys failing fail every file: stop (a re-run is safe)
                raise
            except Exception as exc:  # noqa: BLE001 - a fault met in one file must not stop the others
                # named by its kind only: a message of a third party's may quote the file's content; a failed try,
                # tried again after a wait and left unfinished at the stop as an I/O error's
                wait = retries.failed(path, type(exc).__name__, "report it to the adapter's maintainers")
                handled.discard((path, *sig))
                idle_since = clock.now()
                print(f"{run.adapter.name}: reading {name} in {where} failed ({type(exc).__name__}); left in place, "
                      f"trying again in {wait:g}s, and the other files go on", file=run.err, flush=True)
                continue
            _read_again(total, holding, path)
            total.add(tally)
            retries.due.pop(path, None)
            if tally.cut:  # its held results wait for the file to change; said at the stop if it has not by then
                holding[path] = (tally.held, tally.empty)
            else:
                holding.pop(path, None)
            print(f"{run.adapter.name} {name}: {tally.line()}", file=out, flush=True)
            if not same:  # written to or replaced meanwhile: read again once it is still (what was read is kept)
                print(f"{run.adapter.name}: {name} changed while it was read; left in place to be read "
                      "again", file=run.err, flush=True)
                sizes.pop(path, None)
                handled.discard((path, *sig))
                continue
            if tally.cut:  # still being written, or cut short: read again once it changes (handled keeps it till then)
                if tally.empty:  # a line break added would not make a record: the operator decides
                    why = ("holds no record (empty, or still being written); left in place, to be read again when "
                           "it changes; if the export really is empty, remove it")
                else:
                    why = ("ends within a record (cut short, or still being written); left in place, to be read "
                           "again when it changes; if the export is complete, end its last line with a line break "
                           "and drop it again")
                print(f"{run.adapter.name}: {name} {why}", file=run.err, flush=True)
                idle_since = clock.now()
                continue
            try:
                moved = archive(path, done_dir, identity, journal.noting(identity, regrown.get(path), path.name))
            except OSError as exc:
                print(f"{run.adapter.name}: could not move {name} to done/: {exc.strerror}", file=run.err)
            else:
                if moved is None:  # changed or replaced after the read: read again at a later poll
                    print(f"{run.adapter.name}: {name} changed or was replaced after it was read; it is left "
                          "in place to be read again", file=run.err, flush=True)
                    handled.discard((path, *sig))
                else:
                    journal.moved_away(identity[:2])  # archived again: its journal entry in done/ keeps its facts
                    # Moved out of the folder: a later export of the same name, size and time (a copy keeping
                    # its time, an unzip) is a new file, not this one, and is read.
                    handled.discard((path, *sig))
                    if moved.name != path.name:
                        kept = one_line(moved.name)
                        print(f"{run.adapter.name}: done/{name} exists (an earlier export of that name); "
                              f"this one is kept as done/{kept}", file=run.err, flush=True)
            sizes.pop(path, None)
            idle_since = clock.now()
        if idle_exit is not None and clock.now() - idle_since >= idle_exit and not retries.holding(idle_exit):
            break
        await clock.pause(interval, stop)
    _left(run, where, retries, holding, total)
    return total


def _read_again(total: Tally, holding: dict[Path, tuple[int, bool]], path: Path) -> None:
    """Take off ``total.read`` what an earlier read of ``path`` held (``holding``), as it is read again: the read
    again counts those records anew (published, a duplicate, rejected or held again), and ``_left`` counts held
    only what is held at the stop, so that the summary adds up: read == published + duplicates + rejected +
    already rejected + held."""
    earlier = holding.pop(path, None)
    if earlier is not None:
        total.read -= earlier[0]


def _left(run: AdapterRun, where: str, retries: _Retries, holding: dict[Path, tuple[int, bool]], total: Tally) -> None:
    """Name, at the stop, each file left unfinished (its read still failing) and each left held (it ends within a
    record, or holds none: what it holds past its last whole record is neither published nor dead-lettered), each
    with what to do; and count them in ``total``: ``unfinished``, and ``held`` as the results held at the stop (not
    the sum of every read's, which counts again a file read twice while it was written)."""
    for path, (count, _, why, advice) in retries.due.items():
        print(f"{run.adapter.name}: {one_line(path.name)} in {where} is left unfinished: reading it failed {count} "
              f"time(s) ({why}); what was read of it is published; {advice}, then run the watcher again: it reads "
              "the file again, publishing only what is missing", file=run.err, flush=True)
    total.unfinished = len(retries.due)
    for path, (held, empty) in holding.items():
        if empty:
            what = ("holds no record (empty, or still being written); if the export really is empty, remove it; "
                    "otherwise let its exporter finish it")
        else:
            what = (f"ends within a record ({held} result(s) held, neither published nor dead-lettered; what came "
                    "before is published); if the export is complete, end its last line with a line break")
        print(f"{run.adapter.name}: {one_line(path.name)} in {where} is left unfinished: it {what}, then run the "
              "watcher again: it reads the file again, publishing only what is missing", file=run.err, flush=True)
    total.held = sum(held for held, _ in holding.values())


def _failed(run: AdapterRun, retries: _Retries, path: Path, exc: OSError, partial: Tally | None,
            out: TextIO) -> bool:
    """Say that reading ``path`` failed with ``exc`` (``partial``: partway, with what was read), what to do, and when
    it is tried again; whether it is to be (False: the file is gone, removed or moved away since it was listed, and
    is forgotten, neither retried nor left unfinished)."""
    name = one_line(path.name)
    if partial is not None:
        print(f"{run.adapter.name} {name}: {partial.line()} (unfinished: reading failed partway)", file=out, flush=True)
    if exc.errno == errno.ENOENT and not os.path.lexists(path):
        retries.due.pop(path, None)
        return False
    why, advice = exc.strerror or type(exc).__name__, _advice(exc.errno)
    wait = retries.failed(path, why, advice)
    read = f" after {partial.read:,} record(s), which are published or counted" if partial is not None else ""
    print(f"{run.adapter.name}: cannot read {name}: {why}{read}; left in place, trying again in {wait:g}s (only what "
          f"is missing is published): {advice}", file=run.err, flush=True)
    return True


def _look_at_archived(run: AdapterRun, journal: Journal, folder: Path, *, late: bool,
                      regrown: dict[Path, _Regrown] | None = None) -> None:
    """Look at each file the journal names in ``done/`` for growth: its exporter kept it open and wrote on after a
    pause at a record's end (two polls without change do not prove a file complete, and one whose last record is
    whole looks complete), into the file ``done/`` names since.

    Within ``REGROWN_WATCH_S`` of its archiving (a restart between them included: the journal says when), a file that
    grew is moved back into the folder and read as any file there: once still for two polls, a record it ends within
    held; the ledger makes it publish only what is new. It goes back under its own name, or a numbered one if a file
    of that name is there (``_move_free``: in one step, never over a name taken), and the operator is told to have the
    exporter write under a temporary name. Later (looked at only when ``late``: every ``LATE_LOOK_S``), a file that
    grew is not moved (whoever writes to an archive an hour on may not be its exporter), but said, loudly, once per
    change and again after a restart, with what to do, until it is moved back or removed: what it holds since is
    never read otherwise. One unchanged ``JOURNAL_KEEP_S`` past its window is pruned from the journal (a growth after
    that is ``_look_at_done``'s to say). One replaced or removed in ``done/`` is forgotten; while ``done/`` cannot be
    looked at (a share away), nothing is. Each file moved back is put in ``regrown`` with its size and name when first
    read: a refusal of it whole is keyed by those bytes (``AdapterRun.run``'s ``whole_upto``), however it grew, and
    each dead letter by that name (``named``), whatever numbered name it comes back under; and in the journal, each
    name tried written before the try (``Journal.moving_back``), kept until it is archived again: a watcher
    restarted meanwhile reads it so too (``Journal.regrown``).

    ``done/`` is opened once, never through a link, and every look and move is made in the folder so opened
    (``_open_done``): whoever may write the drop folder may swap ``done`` for a link to a folder of the watcher's
    own between two steps, and a planted entry naming a file there (its device and inode) would otherwise have it
    moved into the drop folder and read, a key in a dead letter."""
    try:
        done = _open_done(folder / "done")
    except OSError:  # away (a share), not a folder, or a link: nothing looked at, looked at again later
        return
    try:
        _look_in_done(run, journal, folder, done, late, regrown)
    finally:
        os.close(done)


def _look_in_done(run: AdapterRun, journal: Journal, folder: Path, done: int, late: bool,
                  regrown: dict[Path, _Regrown] | None) -> None:
    """``_look_at_archived`` in ``done``, the descriptor of ``done/`` opened: no name below it is looked up anew."""
    now, gone, settled = time.time(), [], {}
    for name, entry in list(journal.entries.items()):
        recent = now - entry.at <= REGROWN_WATCH_S
        if not (recent or late):
            continue
        try:
            st = os.stat(name, dir_fd=done, follow_symlinks=False)
        except FileNotFoundError:
            gone.append(name)
            continue
        except OSError:  # cannot be looked at just now: looked at again later
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != entry.identity[:2]:
            gone.append(name)  # another file by now
            continue
        if _identity(st) == entry.identity:
            if now - entry.at > REGROWN_WATCH_S + JOURNAL_KEEP_S:
                settled[name] = st.st_mtime_ns  # looked at long enough: a growth now is ``_look_at_done``'s
            continue
        if st.st_nlink > 1 and _named_in(folder, st):
            continue  # still named in the folder too (a move a stop cut short): ``finish_move``'s
        shown = one_line(name)
        if not recent:
            if entry.told != _identity(st):
                entry.told = _identity(st)
                print(f"{run.adapter.name}: WARNING: done/{shown} was written to after it was archived, more than "
                      f"{REGROWN_WATCH_S / 3600:g} hour after: what was written since is not read; move it back into "
                      f"{one_line(str(folder))} to have it read (only what is new is published), and have the "
                      "exporter write under a temporary name (.tmp, .part) and rename the file when done",
                      file=run.err, flush=True)
            continue
        gone.append(name)
        whole = entry.identity[2] if entry.whole is None else entry.whole
        first = _Regrown(whole, entry.read_as or name, (st.st_dev, st.st_ino), entry.identity,
                         _head_in(done, name, st, whole), vouched=True)
        try:  # each name tried is journalled before the try: a restart after the move reads it as ``first``
            back = _move_free(Path(name), folder, at=done, trying=journal.moving(first))
        except OSError as exc:
            journal.moved_away(first.file)  # not moved: nothing in the folder is this file
            print(f"{run.adapter.name}: done/{shown} was written to after it was archived, and cannot be moved back "
                  f"to be read again ({exc.strerror or type(exc).__name__}): move it back into the folder by hand",
                  file=run.err, flush=True)
            continue
        if regrown is not None:
            regrown[back] = first
        print(f"{run.adapter.name}: done/{shown} was written to after it was archived (its exporter kept it open); "
              f"moved back as {one_line(back.name)} to be read again: have the exporter write under a temporary name "
              "(.tmp, .part) and rename the file when done", file=run.err, flush=True)
    journal.forget(*gone)
    journal.prune(settled)


def _look_at_done(run: AdapterRun, journal: Journal, folder: Path, told: set[tuple[str, int, int]]) -> None:
    """Warn of each file in ``done/`` the journal no longer names (pruned, ``JOURNAL_KEEP_S``) and modified after
    ``settled_ns``: every file pruned was unchanged then, with a modification time at or before it, so one past it
    was written to since (its exporter still writing, weeks on), or put in done/ since by another hand. Its bytes
    since are not read: said, loudly, once per change (``told``: name, size, time) while this watcher runs, and
    again after a restart, with what to do; and named in the journal again (``Journal.name_late``), so that a file
    pruned later, with a later time, cannot hide it: warned of by name until moved back. A cheap look (one listing
    and one lstat a file, every ``LATE_LOOK_S``); it trusts the file system's clock, as a modification time set back
    by hand (touch -d) would hide a write."""
    if journal.settled_ns is None:
        return
    seen: set[tuple[str, int, int]] = set()
    try:
        done = _open_done(folder / "done")  # listed through it: a link swapped in for done/ is never followed
    except OSError:  # done/ away (a share), not a folder, or a link: looked at again at the next late look
        return
    try:
        with os.scandir(done) as entries:
            for entry in entries:
                if entry.name in journal.entries or not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
                if st.st_mtime_ns <= journal.settled_ns:
                    continue
                key = (entry.name, st.st_size, st.st_mtime_ns)
                seen.add(key)
                journal.name_late(entry.name, st)  # warned of by name from now on, whatever is pruned later
                if key in told:
                    continue
                days = (REGROWN_WATCH_S + JOURNAL_KEEP_S) / 86_400
                print(f"{run.adapter.name}: WARNING: done/{one_line(entry.name)} was written to after it was "
                      f"archived, more than {days:.0f} day(s) after (or put in done/ since by another hand): what it "
                      f"holds since is not read; move it back into {one_line(str(folder))} to have it read (only "
                      "what is new is published), and have the exporter write under a temporary name (.tmp, .part) "
                      "and rename the file when done", file=run.err, flush=True)
    except OSError:  # done/ away (a share) meanwhile: looked at again at the next late look
        return
    finally:
        os.close(done)
    told.intersection_update(seen)
    told.update(seen)


def _named_in(folder: Path, st: os.stat_result) -> bool:
    """Whether a name in ``folder`` (not below it) is the file ``st`` is."""
    try:
        with os.scandir(folder) as entries:
            return any(e.inode() == st.st_ino and e.is_file(follow_symlinks=False)
                       and e.stat(follow_symlinks=False).st_dev == st.st_dev for e in entries)
    except OSError:
        return False


def _move_free(path: Path, folder: Path, at: int | None = None,
               trying: Callable[[Path], None] | None = None) -> Path:
    """Move ``path`` (a name in the folder ``at`` is open on, if given) into ``folder`` under a name no file there
    has: its own, or 'name.1.ext', 'name.2.ext'... In one step, never with two names (a stop between a link and an
    unlink would leave it with two, which ``finish_move`` takes for an archive a stop cut short, and reads again),
    and never over a file of that name (an exporter's next export): ``_rename_new``. ``trying(target)`` is called
    before each name is tried (the watcher journals it: a stop just after the move must leave it recorded)."""
    n = 0
    while True:
        target = folder / _numbered(path, n)
        n += 1
        if trying is not None:
            trying(target)
        try:
            _rename_new(path, target, at)
        except FileExistsError:
            continue
        return target


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_LIBC = ctypes.CDLL(None, use_errno=True)


def _rename_new(source: Path, target: Path, at: int | None = None) -> None:
    """Rename ``source`` (a name in the folder ``at`` is open on, if given) to ``target``, FileExistsError if
    ``target`` exists: Linux's ``renameat2`` with RENAME_NOREPLACE, which decides in the same step. Where the system
    or the file system has no such rename (some network shares), a look first, then a rename: a file made at that
    name in between would be replaced."""
    renameat2 = getattr(_LIBC, "renameat2", None)
    if renameat2 is not None:
        source_dir = _AT_FDCWD if at is None else at
        if renameat2(source_dir, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(target))  # FileExistsError for EEXIST
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target, src_dir_fd=at)
