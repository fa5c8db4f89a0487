"""The embedded journal: one SQLite file, WAL, ``synchronous=FULL``.

Durability: an append is one transaction (``BEGIN IMMEDIATE``, version check, insert every event,
``COMMIT``); with WAL and ``synchronous=FULL`` the commit returns after the WAL is fsynced, so a
batch costs one fsync however many events it holds, and a crash (``kill -9``, power loss) leaves
whole appends only.

Threads: all writes run on one dedicated writer thread with its own connection (SQLite allows one
writer at a time anyway, and the event loop must never wait on an fsync); reads run on a reader
thread with a second connection, which WAL lets proceed while a write is in progress.

Several journals (or processes) may open the same file: ``BEGIN IMMEDIATE`` serialises their
writes (waiting up to ``busy_timeout``) and the version check keeps them honest. ``follow`` is woken
at once by appends made through the same journal object; appends by others are seen by a slow poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hall.domain import events as ev
from hall.domain.events import SCHEMA_VERSION, AnyEvent
from hall.journal.base import Journal, JournalError, JournalUnavailable, Recorded, WrongVersion
from hall.journal.memory import Wakeups, check_limit, follow_by_reading

T = TypeVar("T")

USER_VERSION = 1  # the layout below; bump with a migration when it changes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY,  -- rowid: never reused, as nothing is ever deleted
    hall        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT    NOT NULL,     -- the event's tag, for people reading the file
    schema      INTEGER NOT NULL,
    data        TEXT    NOT NULL,     -- msgspec JSON of the event, tag included
    recorded_at REAL    NOT NULL,     -- server clock at append (unix seconds); informational
    UNIQUE (hall, version)
) STRICT;
-- One row per hall: its version. Written in the same transaction as the events, so version()
-- and halls() need not scan the events table.
CREATE TABLE IF NOT EXISTS streams (
    hall    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"""

_INSERT = (
    "INSERT INTO events (hall, version, type, schema, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_SET_VERSION = (
    "INSERT INTO streams (hall, version) VALUES (?, ?) "
    "ON CONFLICT (hall) DO UPDATE SET version = excluded.version"
)
_COLUMNS = "position, hall, version, schema, data"

Row = tuple[int, str, int, int, str]


def _recorded(row: Row) -> Recorded:
    position, hall, version, schema, data = row
    return Recorded(
        hall=hall, version=version, position=position, event=ev.decode(data), schema=schema
    )


class SqliteJournal(Journal):
    """A :class:`Journal` in the SQLite file at ``path`` (created, with its directory, if absent).

    ``busy_timeout``: seconds a write waits for another connection's write lock before giving up
    with :class:`JournalUnavailable`. ``poll_interval``: how often ``follow`` looks for appends
    made by other journal objects or processes. The constructor does no I/O: the file is opened
    on first use, and one that cannot be opened is :class:`JournalUnavailable` for each call
    until it can.
    """

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 5.0, poll_interval: float = 1.0
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._poll_interval = poll_interval
        self._wakeups = Wakeups()
        self._closed = False
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="journal-reader")
        self._released = False  # set by close() on the writer thread, after queued writes ran
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None

    # -- threads -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; the sqlite3 module's implicit
        # transactions would otherwise wrap statements in deferred transactions of its own.
        # Each connection is made and used on its own thread only, which sqlite3 checks for us.
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)

    def _writer_conn(self) -> sqlite3.Connection:
        """The writer's connection, opened (file, settings, schema) on first use; writer thread.

        A failure is not remembered: the next call tries again (the disk may have been full).
        """
        if self._released:  # a reader's call that reached here after close_writer()
            raise sqlite3.ProgrammingError("the journal is closed")
        if self._wconn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._wconn = conn
        return self._wconn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs an exclusive lock and, unlike other statements, does
        # not wait for one: when two journals open a new file at once, one of them gets
        # SQLITE_BUSY at once. So wait here, as busy_timeout would.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        if mode != "wal":  # e.g. a filesystem without shared memory: refuse rather than degrade
            raise sqlite3.OperationalError(f"journal_mode is {mode!r}, WAL is required")
        conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every commit
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > USER_VERSION:
            raise sqlite3.DatabaseError(f"layout {found} is newer than this Hall ({USER_VERSION})")
        conn.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {USER_VERSION}; COMMIT;"
        )

    def _reader_conn(self) -> sqlite3.Connection:
        """The reader's connection; reader thread. The writer makes the file and schema first."""
        if self._rconn is None:
            self._writer.submit(self._writer_conn).result()
            self._rconn = self._connect()
            self._rconn.execute("PRAGMA query_only = ON")
        return self._rconn

    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        if self._closed:
            raise JournalUnavailable("the journal is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn)
        except JournalError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnavailable(f"sqlite journal {self.path}: {exc}") from exc

    # -- writes ----------------------------------------------------------------------------------

    async def append(
        self,
        hall: str,
        events: Sequence[AnyEvent],
        expected_version: int,
        *,
        fence: str | None = None,
    ) -> int:
        """See :meth:`Journal.append`.

        Cancelling the caller cancels a write still waiting for the writer thread; a write already
        running completes (and wakes followers) all the same: read the version to know.
        """
        loop = asyncio.get_running_loop()
        rows = [
            (
                hall,
                expected_version + i,
                str(e.__struct_config__.tag),
                SCHEMA_VERSION,
                ev.encode(e).decode(),
            )
            for i, e in enumerate(events, start=1)
        ]

        def write() -> int:
            conn = self._writer_conn()
            if not rows:  # a version check needs no write lock
                actual = self._version_on(conn, hall)
                if actual != expected_version:
                    raise WrongVersion(hall, expected_version, actual)
                return actual
            conn.execute("BEGIN IMMEDIATE")
            try:
                actual = self._version_on(conn, hall)
                if actual != expected_version:
                    raise WrongVersion(hall, expected_version, actual)
                now = time.time()
                conn.executemany(_INSERT, [(*row, now) for row in rows])
                conn.execute(_SET_VERSION, (hall, expected_version + len(rows)))
                conn.execute("COMMIT")
                # From here, not from append(): a caller cancelled meanwhile must not leave the
                # followers asleep until their next poll.
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to wake
                    loop.call_soon_threadsafe(self._wakeups.notify, hall)
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may already have rolled back
                    conn.execute("ROLLBACK")
                raise
            return expected_version + len(rows)

        return await self._run(self._writer, write)

    @staticmethod
    def _version_on(conn: sqlite3.Connection, hall: str) -> int:
        row = conn.execute("SELECT version FROM streams WHERE hall = ?", (hall,)).fetchone()
        return int(row[0]) if row else 0

    # -- reads -----------------------------------------------------------------------------------

    async def read(self, hall: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        check_limit(limit)
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE hall = ? AND version > ? ORDER BY version LIMIT ?"
        )
        args = (hall, after, -1 if limit is None else limit)  # LIMIT -1: no limit
        return await self._run(
            self._reader, lambda: [_recorded(r) for r in self._reader_conn().execute(sql, args)]
        )

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        check_limit(limit)
        sql = f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        args = (after, -1 if limit is None else limit)
        return await self._run(
            self._reader, lambda: [_recorded(r) for r in self._reader_conn().execute(sql, args)]
        )

    async def version(self, hall: str) -> int:
        return await self._run(self._reader, lambda: self._version_on(self._reader_conn(), hall))

    async def halls(self) -> list[str]:
        sql = "SELECT hall FROM streams WHERE version > 0 ORDER BY hall"
        return await self._run(
            self._reader, lambda: [r[0] for r in self._reader_conn().execute(sql)]
        )

    def follow(self, hall: str, after: int = 0) -> AsyncIterator[Recorded]:
        return follow_by_reading(self, self._wakeups, hall, after, poll=self._poll_interval)

    async def diagnostics(self) -> dict[str, str | int]:
        """The writer connection's settings, for health checks and tests."""

        def probe() -> dict[str, str | int]:
            conn = self._writer_conn()
            return {
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],  # 2 = FULL
                "sqlite_version": sqlite3.sqlite_version,
            }

        return await self._run(self._writer, probe)

    # -- lifecycle -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Idempotent. Waits for queued writes, closes both connections, stops followers."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()

        def close_writer() -> None:
            self._released = True
            if self._wconn is not None:
                self._wconn.close()

        def close_reader() -> None:
            if self._rconn is not None:
                self._rconn.close()

        # Queued behind whatever each thread is doing, so in-flight calls finish first.
        await asyncio.gather(
            loop.run_in_executor(self._writer, close_writer),
            loop.run_in_executor(self._reader, close_reader),
        )
        self._writer.shutdown(wait=False)
        self._reader.shutdown(wait=False)
        self._wakeups.notify_all()

    async def save_checkpoint(self, hall: str, version: int, blob: bytes) -> None:
        """One row per hall in a table of its own (made on first use, so files written before
        checkpoints existed need no migration)."""

        def write() -> None:
            conn = self._writer_conn()
            conn.execute(_CHECKPOINTS)
            conn.execute(_SET_CHECKPOINT, (hall, version, blob))

        await self._run(self._writer, write)

    async def load_checkpoint(self, hall: str) -> tuple[int, bytes] | None:
        def read() -> tuple[int, bytes] | None:
            sql = "SELECT version, data FROM checkpoints WHERE hall = ?"
            try:
                row = self._reader_conn().execute(sql, (hall,)).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
            return None if row is None else (int(row[0]), bytes(row[1]))

        return await self._run(self._reader, read)


_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS checkpoints (
    hall    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL,
    data    BLOB    NOT NULL      -- hall/checkpoint.py; a cache of the fold of the events
) STRICT
"""
_SET_CHECKPOINT = (
    "INSERT INTO checkpoints (hall, version, data) VALUES (?, ?, ?) "
    "ON CONFLICT (hall) DO UPDATE SET version = excluded.version, data = excluded.data"
)
