"""The discipline watcher beside a real engine on a real SQLite journal: what its clock tick
finds is recorded once; a journal that refuses appends only delays it; a restart rebuilds the
watcher from the day's events and records nothing again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hall.bus import Bus
from hall.config import Discipline, HallConfig
from hall.domain.commands import IssueTicket, Login
from hall.domain.events import AnyEvent, BreachRecorded
from hall.engine import HallEngine
from hall.journal.base import JournalUnavailable
from hall.journal.sqlite import SqliteJournal
from hall.oversight import runner
from hall.oversight.runner import WatcherRunner

# A Sunday in the demo hall (no opening period: the shift rules have nothing to say).
SUNDAY = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


class Refusing(SqliteJournal):
    """A real SQLite journal that refuses every append while ``refusing`` is set."""

    refusing = False

    async def append(
        self, hall: str, events: Sequence[AnyEvent], expected_version: int, **fence: Any
    ) -> int:
        if self.refusing:
            raise JournalUnavailable("the store is down (test)")
        return await super().append(hall, events, expected_version, **fence)


class Clock:
    def __init__(self) -> None:
        self.now = SUNDAY

    def __call__(self) -> datetime:
        return self.now


async def started(config: HallConfig, journal: SqliteJournal, clock: Clock) -> WatcherRunner:
    engine = HallEngine(config, journal, Bus(), clock=clock)
    await engine.start()
    watcher = WatcherRunner(engine, tick_seconds=0.02)
    await watcher.start()
    return watcher


async def stopped(watcher: WatcherRunner) -> None:
    await watcher.stop()
    await watcher.engine.stop()


async def breaches(journal: SqliteJournal, hall: str) -> list[BreachRecorded]:
    return [r.event for r in await journal.read(hall) if isinstance(r.event, BreachRecorded)]


async def test_a_refused_breach_is_recorded_once_the_journal_takes_it_and_never_twice(
    default_config: HallConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "RETRY_SECONDS", 0.05)
    config = msgspec.structs.replace(default_config, discipline=Discipline(idle_seconds=60))
    hall, clock = config.hall.id, Clock()
    journal = Refusing(tmp_path / "journal.sqlite3")
    watcher = await started(config, journal, clock)
    try:
        await watcher.engine.execute(Login(window="1", by="zhangwei"))
        await watcher.engine.execute(IssueTicket(category="general"))
        journal.refusing = True
        clock.now += timedelta(seconds=61)  # idle for longer than allowed
        await asyncio.sleep(0.3)
        journal.refusing = False
        assert await breaches(journal, hall) == []
        for _ in range(100):
            if found := await breaches(journal, hall):
                break
            await asyncio.sleep(0.02)
        assert [(b.rule, b.window, b.staff, b.since) for b in found] == [
            ("idle_with_queue", "1", "zhangwei", SUNDAY)
        ]
        await asyncio.sleep(0.2)  # more ticks: nothing new
        assert await breaches(journal, hall) == found
    finally:
        await stopped(watcher)
    # Restarted, still idle with the ticket waiting: the rebuilt watcher knows it is recorded,
    # and goes on finding what is new.
    clock.now += timedelta(minutes=5)
    watcher = await started(config, journal, clock)
    try:
        await asyncio.sleep(0.2)
        assert await breaches(journal, hall) == found
        await watcher.engine.execute(Login(window="2", by="lina"))
        clock.now += timedelta(seconds=61)
        for _ in range(100):
            if len(await breaches(journal, hall)) == 2:
                break
            await asyncio.sleep(0.02)
        second = (await breaches(journal, hall))[1]
        assert (second.rule, second.window) == ("idle_with_queue", "2")
        assert watcher.engine.state.day_version == 1
    finally:
        await stopped(watcher)
        await journal.close()
