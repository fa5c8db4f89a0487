"""Reports beside a store that stalls: a report answers 503 within its deadline instead of
hanging as long as the store does, and is whole again once the store answers; and a flood of
report requests is held to a few at once, the rest told to come back."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall.api import reports as reports_api
from hall.api.errors import Busy
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import IssueTicket
from hall.engine import HallEngine
from hall.journal.base import JournalUnavailable, Recorded
from hall.journal.sqlite import SqliteJournal
from hall.reports import service
from hall.reports.periods import parse
from hall.reports.service import Reports

MONDAY = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


class Stalling(SqliteJournal):
    """A real SQLite journal whose reads hang while ``flowing`` is clear (a store that froze)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def read(self, hall: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        await self.flowing.wait()
        return await super().read(hall, after, limit)

    async def version(self, hall: str) -> int:
        await self.flowing.wait()
        return await super().version(hall)


async def test_a_report_on_a_stalled_store_is_a_503_in_time_then_whole_again(
    tmp_path: Path, default_config: HallConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CATCH_UP_SECONDS", 0.5)
    hall = default_config.hall.id
    journal = Stalling(tmp_path / "journal.sqlite3")
    engine = HallEngine(default_config, journal, Bus(), clock=lambda: MONDAY)
    await engine.start()
    reports = Reports([default_config], tmp_path)
    reports.start(journal, {hall: engine})
    try:
        for _ in range(3):
            await engine.execute(IssueTicket(category="general"))
        period = parse("2026-11-30", MONDAY.date())
        assert (await reports.report(hall, period, "hall", MONDAY)).total.issued == 3
        journal.flowing.clear()
        started = time.monotonic()
        with pytest.raises(JournalUnavailable, match="did not catch up"):
            await reports.report(hall, period, "hall", MONDAY)
        assert time.monotonic() - started < 2.0
        journal.flowing.set()
        assert (await reports.report(hall, period, "hall", MONDAY)).total.issued == 3
    finally:
        journal.flowing.set()
        await reports.stop()
        await engine.stop()
        await journal.close()


async def test_reports_are_computed_a_few_at_a_time_and_a_flood_is_told_to_wait() -> None:
    gate = reports_api.Gate()
    release = asyncio.Event()
    inside = 0
    most = 0

    async def one() -> None:
        nonlocal inside, most
        async with gate:
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    admitted = [
        asyncio.create_task(one()) for _ in range(reports_api.COMPUTING + reports_api.WAITING)
    ]
    await asyncio.sleep(0.01)
    with pytest.raises(Busy) as refused:
        await one()
    assert refused.value.detail["retry_after"] == reports_api.RETRY_SECONDS
    release.set()
    await asyncio.gather(*admitted)
    assert most == reports_api.COMPUTING
    await one()  # room again once the flood is done
