"""The reports' read model: the journal folded into SQLite tables a report reads in one pass.

A hall's figures for a quarter come from ~400,000 events; folding them for every report would
take too long, so this file keeps the fold: one row per ticket (its times, windows, staff, end
and rating), per rating, per bad rating's case and each of its steps, per breach and per pause,
with the journal version it has read up to (the cursor). The managers' case and breach lists read
their details here too (``hall/reports/details.py``): hence a rating's comment, a step's text and
a breach's evidence, which no figure needs. ``catch_up`` reads the events after the cursor in
pages and folds each page in one transaction with the new cursor: a crash leaves whole pages, a
page done twice (two processes at once) is refused by its cursor check, and the fold of a page
depends on nothing but the rows and the events, so catching up again gives the same rows.

The file is a cache: deleting it costs one full catch-up; a file from another layout, another
hall or a journal that is shorter than its cursor is rebuilt from the first event.

Times are stored as UNIX seconds (UTC); days as ISO dates, the hall's business day (the day of
the last ``DayStarted``, which is what the hall's own state counts in).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hall.domain import rating
from hall.domain.events import (
    AlertAcknowledged,
    AnyEvent,
    BreachExcused,
    BreachRecorded,
    CaseStepped,
    DayStarted,
    DeviceReported,
    NoticePosted,
    PasswordChanged,
    ProfileChanged,
    ServiceFinished,
    ServiceStarted,
    TicketCalled,
    TicketCancelled,
    TicketIssued,
    TicketNoShow,
    TicketPrinted,
    TicketRated,
    TicketRecalled,
    TicketTransferred,
    WindowClosed,
    WindowOpened,
    WindowPaused,
    WindowResumed,
)
from hall.journal.base import Journal, Recorded

LAYOUT = 2  # PRAGMA user_version of the tables below; another value: rebuilt
PAGE = 5000  # events folded per transaction

Progress = Callable[[int, int], None]  # (events folded so far, events to fold in all)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tickets (
    id          TEXT PRIMARY KEY,
    day         TEXT NOT NULL,     -- business day of issue
    number      TEXT NOT NULL,
    category    TEXT NOT NULL,     -- as issued (the visitor's request, its target)
    final       TEXT NOT NULL,     -- after transfers
    priority    TEXT NOT NULL,
    issued      REAL NOT NULL,
    called      REAL,              -- first call
    started     REAL,              -- start of the service that ended it (reset by a transfer)
    ended       REAL,              -- finished, no-show, cancelled or expired
    window      TEXT,              -- the last window that held it
    staff       TEXT,              -- the staff member there when it last held it
    state       TEXT NOT NULL,     -- waiting called serving finished no_show cancelled expired
    outcome     TEXT,              -- done, accepted, returned (finished only)
    rating      INTEGER,           -- 1-5
    rated       REAL,
    channel     TEXT,              -- pad, phone
    not_rated   INTEGER NOT NULL,  -- the pad offered a rating and got none
    recalls     INTEGER NOT NULL,
    transfers   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tickets_day ON tickets (day);
CREATE TABLE IF NOT EXISTS ratings (
    version  INTEGER PRIMARY KEY,  -- the TicketRated event's
    ticket   TEXT NOT NULL,
    day      TEXT NOT NULL,
    at       REAL NOT NULL,
    window   TEXT NOT NULL,
    staff    TEXT NOT NULL,
    level    INTEGER,              -- NULL: not rated
    reasons  TEXT NOT NULL,        -- space-separated codes
    channel  TEXT NOT NULL,
    comment  TEXT                  -- the visitor's words: managers only
) STRICT;
CREATE INDEX IF NOT EXISTS ratings_ticket ON ratings (ticket);
CREATE INDEX IF NOT EXISTS ratings_day ON ratings (day);
CREATE TABLE IF NOT EXISTS cases (
    id         TEXT PRIMARY KEY,   -- the rated ticket's id
    day        TEXT NOT NULL,      -- business day of the rating: deadlines count from it
    rated      REAL NOT NULL,
    window     TEXT NOT NULL,
    staff      TEXT NOT NULL,
    category   TEXT NOT NULL,
    level      INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    stage      TEXT NOT NULL,      -- the step it waits for; "closed" once closed
    valid      INTEGER,            -- the last verdict (verify or confirm); NULL before one
    verified   REAL,               -- first verify step
    rectified  REAL,
    revisited  REAL,
    result     TEXT,               -- the revisit's result code
    closed     REAL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cases_day ON cases (day);
CREATE TABLE IF NOT EXISTS case_steps (
    version  INTEGER PRIMARY KEY,
    case_id  TEXT NOT NULL,
    step     TEXT NOT NULL,
    at       REAL NOT NULL,
    by       TEXT NOT NULL,
    valid    INTEGER,
    result   TEXT,
    text     TEXT NOT NULL         -- why not valid, what was done, a note
) STRICT;
CREATE INDEX IF NOT EXISTS case_steps_case ON case_steps (case_id);
CREATE TABLE IF NOT EXISTS breaches (
    id        TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    day       TEXT NOT NULL,       -- business day it was recorded on
    rule      TEXT NOT NULL,
    window    TEXT NOT NULL,
    staff     TEXT,
    since     REAL NOT NULL,
    at        REAL NOT NULL,
    measured  REAL NOT NULL,
    limit_    REAL NOT NULL,
    evidence  TEXT NOT NULL,       -- space-separated journal versions
    excused   INTEGER NOT NULL,
    excused_at REAL,
    excused_by TEXT,
    reason    TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS breaches_day ON breaches (day);
CREATE TABLE IF NOT EXISTS pauses (
    version  INTEGER PRIMARY KEY,  -- the WindowPaused event's
    day      TEXT NOT NULL,
    window   TEXT NOT NULL,
    staff    TEXT,
    reason   TEXT NOT NULL,
    start    REAL NOT NULL,
    end      REAL                  -- resumed, closed or opened again; NULL: still paused
) STRICT;
CREATE INDEX IF NOT EXISTS pauses_day ON pauses (day);
CREATE TABLE IF NOT EXISTS windows (
    id     TEXT PRIMARY KEY,
    staff  TEXT,                   -- logged in now
    pause  INTEGER                 -- the open pause's version
) STRICT, WITHOUT ROWID;
"""

_TABLES = ("meta", "tickets", "ratings", "cases", "case_steps", "breaches", "pauses", "windows")

TICKET_COLUMNS = [
    "id",
    "day",
    "number",
    "category",
    "final",
    "priority",
    "issued",
    "called",
    "started",
    "ended",
    "window",
    "staff",
    "state",
    "outcome",
    "rating",
    "rated",
    "channel",
    "not_rated",
    "recalls",
    "transfers",
]
CASE_COLUMNS = [
    "id",
    "day",
    "rated",
    "window",
    "staff",
    "category",
    "level",
    "channel",
    "stage",
    "valid",
    "verified",
    "rectified",
    "revisited",
    "result",
    "closed",
]
BREACH_COLUMNS = [
    "id",
    "version",
    "day",
    "rule",
    "window",
    "staff",
    "since",
    "at",
    "measured",
    "limit_",
    "evidence",
    "excused",
    "excused_at",
    "excused_by",
    "reason",
]
RATING_COLUMNS = [
    "version",
    "ticket",
    "day",
    "at",
    "window",
    "staff",
    "level",
    "reasons",
    "channel",
    "comment",
]
STEP_COLUMNS = ["version", "case_id", "step", "at", "by", "valid", "result", "text"]
PAUSE_COLUMNS = ["version", "day", "window", "staff", "reason", "start", "end"]

Row = dict[str, Any]


class ReadModelError(Exception):
    """The read model cannot follow this journal (e.g. another hall's file)."""


def model_path(data_dir: Path, hall: str) -> Path:
    """Where a hall's read model lives: beside the SQLite journal (or in the data directory of
    a server on Redis: the file is local either way)."""
    return data_dir / f"reports-{hall}.sqlite3"


class ReadModel:
    """One hall's read model in the SQLite file at ``path`` (created if absent).

    Thread use: one connection, used by one thread at a time (``catch_up`` folds pages in a
    worker thread; the figures read from any one thread); a lock keeps them apart.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # The cursor as this object last saw it, readable without the lock (another process
        # may have folded further: the tables say).
        self.folded = 0
        self._catching: asyncio.Lock | None = None
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode = WAL")
        # A cache: a commit lost to a power cut is folded again from the journal.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        if self._conn.execute("PRAGMA user_version").fetchone()[0] != LAYOUT:
            self._reset()
        self.folded = self.version

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reading --------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection in one read transaction: every query sees the same version."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    @property
    def version(self) -> int:
        """The journal version the tables include."""
        with self._lock:
            self.folded = int(self._meta(self._conn, "version") or 0)
            return self.folded

    @property
    def hall(self) -> str | None:
        with self._lock:
            return self._meta(self._conn, "hall")

    # -- catching up ----------------------------------------------------------------------------

    async def catch_up(
        self, journal: Journal, hall: str, progress: Progress | None = None, page: int = PAGE
    ) -> int:
        """Fold ``hall``'s events after the cursor, a page per transaction; return the version
        reached (the journal's at the start, or later). One catch-up at a time per model."""
        if self._catching is None:
            self._catching = asyncio.Lock()
        async with self._catching:
            total = await journal.version(hall)
            # Off the loop: a report's figures may hold the connection for a moment.
            known, cursor = await asyncio.to_thread(self._position)
            if (known is not None and known != hall) or cursor > total:
                # Another hall's file, or a journal started afresh: this fold says nothing of it.
                await asyncio.to_thread(self._reset)
                cursor = 0
            begun = cursor
            if progress is not None:
                progress(0, total - begun)
            while cursor < total:
                records = await journal.read(hall, cursor, page)
                if not records:
                    break
                cursor = await asyncio.to_thread(self.fold, hall, records)
                if progress is not None:
                    progress(cursor - begun, max(total, cursor) - begun)
            return cursor

    def _position(self) -> tuple[str | None, int]:
        with self._lock:
            return self.hall, self.version

    def fold(self, hall: str, records: Sequence[Recorded]) -> int:
        """Fold ``records`` (consecutive, from the cursor on) in one transaction; return the
        cursor after. Records another catch-up folded already are skipped."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = int(self._meta(conn, "version") or 0)
                fresh = [r for r in records if r.version > cursor]
                if fresh and fresh[0].version != cursor + 1:
                    raise ReadModelError(
                        f"events {cursor + 1}..{fresh[0].version - 1} of hall {hall} are missing"
                    )
                if fresh:
                    page = _Page(conn, self._meta(conn, "day"))
                    for record in fresh:
                        page.apply(record.version, record.event)
                    page.write()
                    cursor = fresh[-1].version
                    self._set_meta(conn, "version", str(cursor))
                    self._set_meta(conn, "hall", hall)
                    if page.day is not None:
                        self._set_meta(conn, "day", page.day)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.folded = cursor
            return cursor

    def _reset(self) -> None:
        drops = " ".join(f"DROP TABLE IF EXISTS {table};" for table in _TABLES)
        with self._lock:
            try:
                self._conn.executescript(
                    f"BEGIN IMMEDIATE; {drops} {_SCHEMA} PRAGMA user_version = {LAYOUT}; COMMIT;"
                )
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self.folded = 0

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


class _Page:
    """The rows one page of events touches, read on first use, written back at the end."""

    def __init__(self, conn: sqlite3.Connection, day: str | None) -> None:
        self.conn = conn
        self.day = day
        self.tickets: dict[str, Row] = {}
        self.cases: dict[str, Row] = {}
        self.breaches: dict[str, Row] = {}
        self.pauses: dict[int, Row] = {}
        self.ratings: list[tuple[Any, ...]] = []
        self.steps: list[tuple[Any, ...]] = []
        self.windows: dict[str, list[Any]] = {
            w: [staff, pause]
            for w, staff, pause in conn.execute("SELECT id, staff, pause FROM windows")
        }

    def _row(self, cache: dict[Any, Row], table: str, columns: list[str], key: Any) -> Row:
        row = cache.get(key)
        if row is None:
            key_column = columns[0]
            found = self.conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {key_column} = ?", (key,)
            ).fetchone()
            if found is None:
                raise ReadModelError(f"{table}: no {key!r} (an event of another journal?)")
            row = cache[key] = dict(zip(columns, found, strict=True))
        return row

    def ticket(self, ticket_id: str) -> Row:
        return self._row(self.tickets, "tickets", TICKET_COLUMNS, ticket_id)

    def _window(self, window: str) -> list[Any]:
        return self.windows.setdefault(window, [None, None])

    def _held(self, ticket_id: str, window: str, at: float, state: str) -> Row:
        """The ticket at ``window`` now: its last window and the staff member there."""
        row = self.ticket(ticket_id)
        row["window"], row["staff"], row["state"] = window, self._window(window)[0], state
        return row

    def _end_pause(self, window: str, at: float) -> None:
        status = self._window(window)
        if status[1] is not None:
            self._row(self.pauses, "pauses", PAUSE_COLUMNS, status[1])["end"] = at
            status[1] = None

    def apply(self, version: int, event: AnyEvent) -> None:
        at = event.at.timestamp()
        match event:
            case DayStarted(day=day, expired=expired):
                for ticket_id in expired:
                    row = self.ticket(ticket_id)
                    row["state"], row["ended"] = "expired", at
                self.day = day.isoformat()
            case TicketIssued():
                self.tickets[event.ticket] = {
                    "id": event.ticket,
                    "day": event.day.isoformat(),
                    "number": event.number,
                    "category": event.category,
                    "final": event.category,
                    "priority": event.priority,
                    "issued": at,
                    "called": None,
                    "started": None,
                    "ended": None,
                    "window": None,
                    "staff": None,
                    "state": "waiting",
                    "outcome": None,
                    "rating": None,
                    "rated": None,
                    "channel": None,
                    "not_rated": 0,
                    "recalls": 0,
                    "transfers": 0,
                }
                if self.day is None:
                    self.day = event.day.isoformat()
            case TicketCalled(ticket=ticket_id, window=window):
                row = self._held(ticket_id, window, at, "called")
                if row["called"] is None:
                    row["called"] = at
            case TicketRecalled(ticket=ticket_id, count=count):
                self.ticket(ticket_id)["recalls"] = count
            case ServiceStarted(ticket=ticket_id, window=window):
                self._held(ticket_id, window, at, "serving")["started"] = at
            case ServiceFinished(ticket=ticket_id, window=window, outcome=outcome):
                row = self._held(ticket_id, window, at, "finished")
                row["ended"], row["outcome"] = at, outcome.value
            case TicketNoShow(ticket=ticket_id, window=window):
                self._held(ticket_id, window, at, "no_show")["ended"] = at
            case TicketTransferred(ticket=ticket_id, category=category):
                row = self.ticket(ticket_id)
                row["final"], row["state"], row["started"] = category, "waiting", None
                row["transfers"] += 1
            case TicketCancelled(ticket=ticket_id):
                row = self.ticket(ticket_id)
                row["state"], row["ended"] = "cancelled", at
            case TicketRated():
                self._rated(version, event, at)
            case CaseStepped():
                self._stepped(version, event, at)
            case BreachRecorded():
                self.breaches[event.breach] = {
                    "id": event.breach,
                    "version": version,
                    "day": self.day or event.at.date().isoformat(),
                    "rule": event.rule,
                    "window": event.window,
                    "staff": event.staff,
                    "since": event.since.timestamp(),
                    "at": at,
                    "measured": event.measured,
                    "limit_": event.limit,
                    "evidence": " ".join(map(str, event.evidence)),
                    "excused": 0,
                    "excused_at": None,
                    "excused_by": None,
                    "reason": None,
                }
            case BreachExcused(breach=breach, reason=reason, by=by):
                row = self._row(self.breaches, "breaches", BREACH_COLUMNS, breach)
                row["excused"], row["excused_at"] = 1, at
                row["excused_by"], row["reason"] = by, reason
            case WindowOpened(window=window, staff=staff):
                self._end_pause(window, at)
                self._window(window)[0] = staff
            case WindowPaused(window=window, reason=reason):
                self._end_pause(window, at)
                status = self._window(window)
                status[1] = version
                self.pauses[version] = {
                    "version": version,
                    "day": self.day or event.at.date().isoformat(),
                    "window": window,
                    "staff": status[0],
                    "reason": reason,
                    "start": at,
                    "end": None,
                }
            case WindowResumed(window=window):
                self._end_pause(window, at)
            case WindowClosed(window=window, ticket=held):
                self._end_pause(window, at)
                self._window(window)[0] = None
                if held is not None:  # forced: the ticket waits again
                    row = self.ticket(held)
                    row["state"], row["started"] = "waiting", None
            case (
                TicketPrinted()
                | DeviceReported()
                | ProfileChanged()
                | PasswordChanged()
                | NoticePosted()
                | AlertAcknowledged()
            ):
                pass  # nothing a report counts
            case _:
                raise ReadModelError(f"unknown event {type(event).__name__}")

    def _rated(self, version: int, event: TicketRated, at: float) -> None:
        row = self.ticket(event.ticket)
        day = self.day or row["day"]
        if event.level is None:
            row["not_rated"] = 1
        else:
            row["rating"], row["rated"], row["channel"] = event.level, at, event.channel
        self.ratings.append(
            (
                version,
                event.ticket,
                day,
                at,
                event.window,
                event.staff,
                event.level,
                " ".join(event.reasons),
                event.channel,
                event.comment,
            )
        )
        if event.level in rating.LOW_LEVELS:
            self.cases[event.ticket] = {
                "id": event.ticket,
                "day": day,
                "rated": at,
                "window": event.window,
                "staff": event.staff,
                "category": row["category"],
                "level": event.level,
                "channel": event.channel,
                "stage": "verify",
                "valid": None,
                "verified": None,
                "rectified": None,
                "revisited": None,
                "result": None,
                "closed": None,
            }

    def _stepped(self, version: int, event: CaseStepped, at: float) -> None:
        row = self._row(self.cases, "cases", CASE_COLUMNS, event.case)
        valid = None if event.valid is None else int(event.valid)
        self.steps.append(
            (version, event.case, event.step, at, event.by, valid, event.result, event.text)
        )
        match event.step:
            case "verify":
                row["verified"] = row["verified"] or at
                row["valid"] = valid
                row["stage"] = "rectify" if event.valid else "confirm"
            case "confirm":
                row["valid"] = valid
                row["stage"] = "rectify" if event.valid else "close"
            case "rectify":
                row["rectified"], row["stage"] = at, "revisit"
            case "revisit":
                row["revisited"], row["result"], row["stage"] = at, event.result, "close"
            case "close":
                row["closed"], row["stage"] = at, "closed"
            case _:
                raise ReadModelError(f"unknown case step {event.step!r}")

    def write(self) -> None:
        conn = self.conn
        for table, columns, rows in (
            ("tickets", TICKET_COLUMNS, self.tickets.values()),
            ("cases", CASE_COLUMNS, self.cases.values()),
            ("breaches", BREACH_COLUMNS, self.breaches.values()),
            ("pauses", PAUSE_COLUMNS, self.pauses.values()),
        ):
            conn.executemany(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES "
                f"({_marks(len(columns))})",
                [tuple(row[c] for c in columns) for row in rows],
            )
        conn.executemany(
            f"INSERT OR REPLACE INTO ratings ({', '.join(RATING_COLUMNS)}) "
            f"VALUES ({_marks(len(RATING_COLUMNS))})",
            self.ratings,
        )
        conn.executemany(
            f"INSERT OR REPLACE INTO case_steps ({', '.join(STEP_COLUMNS)}) "
            f"VALUES ({_marks(len(STEP_COLUMNS))})",
            self.steps,
        )
        conn.executemany(
            "INSERT OR REPLACE INTO windows (id, staff, pause) VALUES (?, ?, ?)",
            [(w, staff, pause) for w, (staff, pause) in self.windows.items()],
        )


def _marks(n: int) -> str:
    return ", ".join("?" * n)
