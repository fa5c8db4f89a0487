"""What only the SQLite journal promises: its settings, its file, and surviving ``kill -9``."""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall.domain.events import TicketCalled
from hall.journal.base import JournalUnavailable, Recorded
from hall.journal.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[2]


def called(ticket: str, window: str) -> TicketCalled:
    return TicketCalled(at=datetime(2025, 3, 3, 9, tzinfo=UTC), ticket=ticket, window=window)


async def test_wal_and_synchronous_full_are_set(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "hall.db"  # the directories are created too
    journal = SqliteJournal(path)
    try:
        await journal.append("h", [called("t1", "1")], 0)
        settings = await journal.diagnostics()
        assert settings["journal_mode"] == "wal"
        assert settings["synchronous"] == 2  # FULL
    finally:
        await journal.close()
    with sqlite3.connect(path) as raw:  # WAL is a property of the file itself
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = raw.execute("SELECT hall, version, type, schema, data FROM events").fetchone()
        assert row[:4] == ("h", 1, "ticket_called", 1) and '"ticket":"t1"' in row[4]
        with pytest.raises(sqlite3.IntegrityError):  # UNIQUE (hall, version)
            raw.execute(
                "INSERT INTO events (hall, version, type, schema, data, recorded_at)"
                " VALUES ('h', 1, 'x', 1, '{}', 0)"
            )


async def test_journals_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL does not wait for the lock: before the journal retried it,
    # about 7% of these rounds failed with "database is locked".
    for round_ in range(40):
        journals = [SqliteJournal(tmp_path / f"{round_}.db") for _ in range(4)]
        start = threading.Barrier(len(journals))  # all writer threads open at the same moment
        for journal in journals:
            journal._writer.submit(start.wait)
        try:
            results = await asyncio.gather(
                *(j.append("h", [], 0) for j in journals), return_exceptions=True
            )
        finally:
            for journal in journals:
                await journal.close()
        assert results == [0] * len(journals)


async def test_an_unusable_path_is_journal_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    journal = SqliteJournal(tmp_path / "a-file" / "hall.db")
    try:
        with pytest.raises(JournalUnavailable):
            await journal.append("h", [called("t1", "1")], 0)
        with pytest.raises(JournalUnavailable):
            await journal.read("h")
    finally:
        await journal.close()


async def test_a_file_from_a_newer_hall_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hall.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    journal = SqliteJournal(path)
    try:
        with pytest.raises(JournalUnavailable, match="newer"):
            await journal.version("h")
    finally:
        await journal.close()


async def test_a_locked_database_times_out_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "hall.db"
    journal = SqliteJournal(path, busy_timeout=0.3)
    try:
        await journal.append("h", [called("t1", "1")], 0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        tick_task = asyncio.create_task(ticker())
        try:
            with pytest.raises(JournalUnavailable, match="locked"):
                await journal.append("h", [called("t2", "1")], 1)
        finally:
            tick_task.cancel()
            blocker.execute("ROLLBACK")
            blocker.close()
        assert ticks >= 10  # the loop kept running while the writer thread waited 0.3 s
        assert await journal.version("h") == 1
        assert await journal.append("h", [called("t2", "1")], 1) == 2
    finally:
        await journal.close()


async def test_a_follower_sees_appends_by_another_process_by_polling(tmp_path: Path) -> None:
    path = tmp_path / "hall.db"
    reader, writer = SqliteJournal(path, poll_interval=0.05), SqliteJournal(path)
    try:
        events = reader.follow("h")
        await writer.append("h", [called("t1", "1"), called("t2", "1")], 0)
        async with asyncio.timeout(1):
            got = [await anext(events), await anext(events)]
        assert [r.event.ticket for r in got] == ["t1", "t2"]  # type: ignore[union-attr]
        await events.aclose()  # type: ignore[attr-defined]
    finally:
        await reader.close()
        await writer.close()


# -- kill -9 while appending ---------------------------------------------------------------------

# Appends batches of 1..7 events forever; every event of a batch names the batch (ticket
# "b<version before it>") and its place in it (window "i/size"); prints each acknowledged version.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    from hall.domain.events import TicketCalled
    from hall.journal.sqlite import SqliteJournal

    async def main() -> None:
        journal = SqliteJournal(sys.argv[1])
        version = await journal.version("h")
        while True:
            size = 1 + version % 7
            at = datetime.now(UTC)
            batch = [TicketCalled(at=at, ticket=f"b{version}", window=f"{i}/{size}")
                     for i in range(size)]
            version = await journal.append("h", batch, version)
            print(version, flush=True)

    asyncio.run(main())
    """
)


def check_whole_batches(stored: list[Recorded]) -> None:
    assert [r.version for r in stored] == list(range(1, len(stored) + 1))
    batches: dict[str, list[Recorded]] = defaultdict(list)
    for recorded in stored:
        batches[recorded.event.ticket].append(recorded)  # type: ignore[union-attr]
    for ticket, batch in batches.items():
        before = int(ticket.removeprefix("b"))
        size = 1 + before % 7
        assert [r.version for r in batch] == list(range(before + 1, before + size + 1)), ticket
        assert [r.event.window for r in batch] == [f"{i}/{size}" for i in range(size)]  # type: ignore[union-attr]


def append_until_killed(path: Path, pause: float) -> int:
    """Run CHILD on ``path``, SIGKILL it ``pause`` s into its loop; return the last acked one."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    with child.stdout:
        acknowledged = 0
        for line in itertools.islice(iter(child.stdout.readline, ""), 20):  # well into its loop
            acknowledged = int(line)
        time.sleep(pause)
        child.send_signal(signal.SIGKILL)
        acknowledged = max([acknowledged, *map(int, child.stdout.read().split())])
    assert child.wait() == -signal.SIGKILL
    return acknowledged


@pytest.mark.slow
async def test_kill_9_while_appending_leaves_only_whole_appends(tmp_path: Path) -> None:
    path = tmp_path / "hall.db"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    for _round in range(3):  # each round continues the file the previous one left
        acknowledged = await asyncio.to_thread(append_until_killed, path, rng.uniform(0, 0.1))
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        journal = SqliteJournal(path)
        try:
            stored = await journal.read("h")
            assert await journal.version("h") == len(stored)
        finally:
            await journal.close()
        check_whole_batches(stored)
        assert len(stored) >= acknowledged, f"an acknowledged append is lost (seed {seed})"
