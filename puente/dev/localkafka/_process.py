"""Which process is a node's Kafka: the record kept in its ``kafka.pid`` and the checks that trust it.

A pid alone names whatever process holds that number now. After Kafka exits (a crash, a reboot,
a killed test) the number is free, and the next process given it would be signalled by ``down``,
``wipe`` and ``stop-node`` and counted as the node by ``up`` and ``status``. So the record is
the pid *and* the process's start time (field 22 of ``/proc/<pid>/stat``, in clock ticks since
boot), written when the node is started, and a recorded process is the node's Kafka only when
(allow-list, both must hold):

    same process    it runs (not a zombie) and its start time is the one recorded
    this node       its command line names ``kafka.Kafka`` followed by this node's ``server.properties``

A record whose pid no process holds (or only the node's own zombie) means the node exited. Anything
else that is not the node (a process started later, a command line that is not this node's Kafka) is
stale: the caller removes the record and never signals the process. A bare pid, as Puente wrote
before it kept start times, is the node only when its process's command line is this node's Kafka
(``adopt``): then it can be no other process, and its record is written again with its start time.
Linux only, as the local Kafka is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_MAX_PID_DIGITS = 10
_CMDLINE_TRIES, _CMDLINE_PAUSE_S = 50, 0.02
_STARTTIME_FIELD = 22  # of /proc/<pid>/stat, counting from 1; fields 3 on follow the ")" closing the name


@dataclass(frozen=True)
class NodeProcess:
    """A started node's process: its pid and the start time the kernel gave it."""

    pid: int
    start: int

    def line(self) -> str:
        """What the node's ``kafka.pid`` holds: ``<pid> <start time>``."""
        return f"{self.pid} {self.start}\n"


def parse_record(text: str) -> NodeProcess | None:
    """The process a ``kafka.pid`` records, or None when the text is not exactly ``<pid> <start time>``
    (a bare pid, as Puente wrote before start times were kept, is not enough to trust)."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= _MAX_PID_DIGITS for p in parts):
        return None
    pid, start = int(parts[0]), int(parts[1])
    return NodeProcess(pid, start) if pid > 0 else None


def _stat(pid: int) -> tuple[str, int] | None:
    """The state letter and start time of process ``pid`` from ``/proc/<pid>/stat``, or None when it is gone
    or unreadable. The fields are counted after the ")" closing the name, which may hold spaces and ")"."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) <= _STARTTIME_FIELD - 3 or not fields[_STARTTIME_FIELD - 3].isdigit():
        return None
    return fields[0], int(fields[_STARTTIME_FIELD - 3])


def record_of(pid: int) -> NodeProcess:
    """The record to keep for a child process just started (its start time is readable until it is reaped;
    0, which no process started after boot has, if it cannot be read)."""
    stat = _stat(pid)
    return NodeProcess(pid, 0 if stat is None else stat[1])


def still_running(proc: NodeProcess) -> bool:
    """Whether the recorded process still runs: its pid is alive, not a zombie, and started when recorded
    (a pid reused since then has a later start time)."""
    stat = _stat(proc.pid)
    return stat is not None and stat[0] != "Z" and stat[1] == proc.start


def _cmdline(pid: int) -> bytes | None:
    """The command line of process ``pid``, or None when it cannot be read. A process caught inside exec
    (a node ``start_node`` has just started: Popen returns once close-on-exec files close, before the new
    program's arguments are in place) shows an empty one for a moment: it is read again, for up to a second,
    rather than taken for another program."""
    for _ in range(_CMDLINE_TRIES):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if raw:
            return raw
        time.sleep(_CMDLINE_PAUSE_S)
    return b""


def adopt(text: str, properties: Path) -> NodeProcess | None:
    """The node's Kafka a bare-pid ``kafka.pid`` (one Puente wrote before start times) names, with its start
    time now; None when the text is not one pid, or that process is not the Kafka configured by ``properties``
    (its command line says so, which no reused pid's can: Kafka locks its data folder, so one runs per node).
    A node started by an earlier Puente is then still stopped by ``down``, not left running with its file gone."""
    words = text.split()
    if len(words) != 1 or not (words[0].isascii() and words[0].isdigit() and len(words[0]) <= _MAX_PID_DIGITS):
        return None
    stat = _stat(int(words[0]))
    if stat is None or stat[0] == "Z" or int(words[0]) <= 0:
        return None
    proc = NodeProcess(int(words[0]), stat[1])
    return proc if identify(proc, properties) == "node" else None


def identify(proc: NodeProcess, properties: Path) -> Literal["node", "gone", "other"]:
    """What the recorded process is now: ``node``, the Kafka configured by ``properties`` (the same process
    as recorded, running, whose command line names ``kafka.Kafka`` and then ``properties``); ``gone``, it
    exited (no process holds the pid, or only its own zombie); ``other``, the pid now names another process
    (started later, or not this node's Kafka), which must never be signalled."""
    stat = _stat(proc.pid)
    if stat is None:
        return "gone"
    if stat[1] != proc.start:
        return "other"
    if stat[0] == "Z":
        return "gone"
    raw = _cmdline(proc.pid)
    if raw is None:
        return "gone" if _stat(proc.pid) is None else "other"
    args = raw.split(b"\0")
    want = [b"kafka.Kafka", str(properties).encode()]
    return "node" if any(args[i:i + 2] == want for i in range(len(args) - 1)) else "other"
