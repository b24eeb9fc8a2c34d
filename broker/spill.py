"""Scratch files for walks over the whole audit: what a walk must keep until it ends goes to a
private temporary SQLite file, so a tool's memory stays flat whatever the audit's size.

``Spill`` is the base (one file, its tables, for one ``with`` block); ``TimeSorted`` puts audit rows
in time order for ``audit log``; ``broker.auditor`` keeps the deliveries receipts are matched
against in one. Each file sits alone in a fresh 0700 folder (TMPDIR), 0600 itself, and is removed
with its folder when the block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import orjson

from broker.audit.receipts import acknowledged
from broker.audit.verify import when
from puente.errors import StoreError

SPILL_CACHE_KIB = 8_192  # SQLite's page cache for one spill file: the most a spill holds in memory
SPILL_BATCH = 1_000  # rows buffered between two writes to a spill file
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def spill_file(what: str, folder: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A scratch SQLite file for ``what``, alone in a fresh private temporary folder (0700; in
    ``folder``, else the system's: TMPDIR), removed with the folder when the block ends, however it
    ends. No journal and no sync: a crash loses nothing the audit topics do not hold."""
    try:
        where = Path(tempfile.mkdtemp(prefix="puente-audit-", dir=folder))
    except OSError as exc:
        raise spill_error(what, exc, folder) from None
    conn = None
    try:
        try:
            os.chmod(where, 0o700)  # mkdtemp's mode already; the file's privacy rests on it
            path = where / "spill.sqlite"
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            conn = sqlite3.connect(path, isolation_level=None)
            for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{SPILL_CACHE_KIB}"):
                conn.execute(f"PRAGMA {pragma}")
        except (OSError, sqlite3.Error) as exc:
            raise spill_error(what, exc, folder) from None
        yield conn
    finally:
        if conn is not None:
            conn.close()
        shutil.rmtree(where, ignore_errors=True)


def spill_error(what: str, exc: Exception, folder: Path | None = None) -> StoreError:
    return StoreError(f"the temporary file for {what} (in {folder or tempfile.gettempdir()}) failed: {exc}; "
                      "set TMPDIR to a private folder with room")


UNREADABLE_TIME = 2**63 - 1  # past any time's key (year 9999 is about 2.5e17): SQLite's largest integer


def sort_key(at: object) -> int:
    """Where a row stating time ``at`` goes in time order: whole microseconds since the epoch, UTC, of
    the instant it states (read as ``broker.audit.verify.when`` reads times: ISO 8601 with an offset), or
    ``UNREADABLE_TIME`` when it states none, so such a row comes after every row with a time."""
    instant = when(at)
    if instant is None:
        return UNREADABLE_TIME
    return (instant - EPOCH) // timedelta(microseconds=1)


def row_time(doc: dict[str, Any]) -> Any:
    """The time audit row ``doc`` is placed and shown at: its ``at``; a receipt's, when it acknowledges
    (``broker.audit.receipts.acknowledged``): its ``appended_at``, Kafka's time (``read_log`` gives it), when
    that is later than the ``at`` its partner wrote with its own clock. A partner that back-dates a receipt
    would otherwise have it listed before what it answers, and its receipts read as prompt."""
    at = doc.get("at")
    if doc.get("kind") != "RECEIPT":
        return at
    acked = acknowledged(doc)
    return doc.get("appended_at") if acked is not None and acked != when(at) else at


class Spill:
    """Base of the spills: a ``spill_file`` with the tables ``_schema`` makes, for one ``with``
    (or ``async with``, beside the Kafka client it serves) block."""

    _what = "the audit"
    _schema: tuple[str, ...] = ()

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._stack = contextlib.ExitStack()
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(spill_file(self._what, self._folder))
            try:
                for statement in self._schema:
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise spill_error(self._what, exc, self._folder) from None
            self._stack = stack.pop_all()
        self._conn = conn
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn = None
        self._stack.close()

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is used inside its `with` block only")
        return self._conn

    def write(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Run ``statement`` for every row, in one transaction."""
        if not rows:
            return
        try:
            self.conn.execute("BEGIN")
            self.conn.executemany(statement, rows)
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise spill_error(self._what, exc, self._folder) from None


class TimeSorted(Spill):
    """Audit rows in time order, however many: spilled to a private temporary SQLite file as they
    come (``add``, ``fill``) and read back oldest first by iterating (again if need be); rows of
    one time come in the order they were added, as a stable sort on ``at`` gives them. Memory
    stays flat: one batch of rows and SQLite's page cache. The file keeps the rows in an index on
    (time, arrival), so reading them back walks that index: no sort, no temporary file elsewhere.
    Use it as a context manager: the file and its folder are removed when the block ends.

    Time order is the order of the instants ``at`` states (``sort_key``; a receipt's ``row_time``), never
    of its text: a time on a whole second is written without a fraction (``...12:00:00Z``), which sorts as
    text after ``...12:00:00.5Z``, and receipts may say ``+00:00``. Rows whose ``at`` states no time come
    last, in the order they were added: the walk keeps them, and shows them where none is taken for a time.
    """

    _what = "sorting the audit rows by time"
    _schema = ("CREATE TABLE rows (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, doc BLOB NOT NULL)",
               "CREATE INDEX rows_by_time ON rows (at, seq)")
    READ = "SELECT doc FROM rows ORDER BY at, seq"

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__(folder)
        self._batch: list[tuple[Any, ...]] = []
        self.count = 0
        self.longest_alert_id = 0  # a table's column width, known before the first row is read back

    def __len__(self) -> int:
        return self.count

    def add(self, doc: dict[str, Any]) -> None:
        """Take in one row: a JSON object, as ``read_log`` gives them."""
        self._batch.append((self.count, sort_key(row_time(doc)), orjson.dumps(doc)))
        self.count += 1
        if doc.get("alert_id") is not None:
            self.longest_alert_id = max(self.longest_alert_id, len(str(doc["alert_id"])))
        if len(self._batch) >= SPILL_BATCH:
            self._flush()

    async def fill(self, docs: AsyncIterable[dict[str, Any]]) -> int:
        """``add`` every row of ``docs`` (``read_log``'s stream) as it comes; how many."""
        before = self.count
        async for doc in docs:
            self.add(doc)
        self._flush()
        return self.count - before

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._flush()
        try:
            for (doc,) in self.conn.execute(self.READ):
                yield orjson.loads(doc)
        except sqlite3.Error as exc:
            raise spill_error(self._what, exc, self._folder) from None

    def _flush(self) -> None:
        if self._batch:
            self.write("INSERT INTO rows VALUES (?, ?, ?)", self._batch)
            self._batch.clear()
