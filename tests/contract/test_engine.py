"""HallEngine on real journals: group commit, refusals inside a batch, and storage failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import IssueTicket, Login
from hall.domain.errors import UnknownCategory
from hall.domain.events import AnyEvent
from hall.domain.state import fold
from hall.engine import HallEngine
from hall.journal.base import Journal, JournalUnavailable, Recorded
from hall.journal.memory import MemoryJournal
from hall.journal.redis import RedisJournal
from hall.journal.sqlite import SqliteJournal
from tests.support.redis import PrivateRedis


class CountingSqlite(SqliteJournal):
    """A real SQLite journal that counts its appends (one append = one fsync)."""

    appends = 0

    async def append(
        self, hall: str, events: Sequence[AnyEvent], expected_version: int, **fence: Any
    ) -> int:
        self.appends += 1
        return await super().append(hall, events, expected_version, **fence)


async def _started(config: HallConfig, journal: Journal, bus: Bus | None = None) -> HallEngine:
    engine = HallEngine(config, journal, bus or Bus())
    await engine.start()
    return engine


@pytest.fixture
async def on_sqlite(
    default_config: HallConfig, tmp_path: Path
) -> AsyncIterator[tuple[HallEngine, CountingSqlite]]:
    """A started engine of the default hall on a real SQLite journal; stopped and closed after."""
    journal = CountingSqlite(tmp_path / "journal.sqlite3")
    engine = await _started(default_config, journal)
    yield engine, journal
    await engine.stop()
    await journal.close()


async def test_concurrent_commands_share_appends(
    default_config: HallConfig, on_sqlite: tuple[HallEngine, CountingSqlite]
) -> None:
    engine, journal = on_sqlite
    done = await asyncio.gather(
        *(engine.execute(IssueTicket(category="general")) for _ in range(200))
    )
    numbers = sorted(d.records[-1].event.number for d in done)  # type: ignore[union-attr]
    assert numbers == [f"A{i:03d}" for i in range(1, 201)]
    assert journal.appends < 50, "commands queued together should be appended together"
    stored = await journal.read(default_config.hall.id)
    assert len(stored) == engine.state.version == 201  # the day's start, then 200 tickets
    assert fold(default_config, [r.event for r in stored]) == engine.state


async def test_a_refusal_inside_a_batch_leaves_the_others(
    default_config: HallConfig, on_sqlite: tuple[HallEngine, CountingSqlite]
) -> None:
    engine, journal = on_sqlite
    results = await asyncio.gather(
        engine.execute(IssueTicket(category="general")),
        engine.execute(IssueTicket(category="nope")),
        engine.execute(IssueTicket(category="general")),
        return_exceptions=True,
    )
    assert isinstance(results[1], UnknownCategory)
    assert [r.records[-1].event.number for r in (results[0], results[2])] == ["A001", "A002"]  # type: ignore[union-attr]
    assert await journal.version(default_config.hall.id) == engine.state.version == 3


@pytest.mark.redis
async def test_a_failed_append_fails_the_command_and_the_journal_stays_the_truth(
    default_config: HallConfig, tmp_path: Path
) -> None:
    hall = default_config.hall.id
    bus = Bus()
    with PrivateRedis(tmp_path) as server:
        journal = RedisJournal(server.url, retries=0)
        engine = await _started(default_config, journal, bus)
        subscription = bus.subscribe(hall)
        try:
            await engine.execute(IssueTicket(category="general"))
            await engine.execute(Login(window="1", by="zhangwei"))
            published = [subscription.get_nowait() for _ in range(3)]
            assert [r.version for r in published] == [1, 2, 3]

            server.kill9()
            with pytest.raises(JournalUnavailable):
                await engine.execute(IssueTicket(category="general"))
            # Nothing was published, and nothing is read from a state that cannot be trusted.
            assert subscription.empty()
            with pytest.raises(JournalUnavailable):
                await engine.read(lambda state: state.version)

            server.restart()
            done = await engine.execute(IssueTicket(category="general"))
            # The failed ticket took no number: numbering goes on without a gap.
            assert done.records[-1].event.number == "A002"  # type: ignore[union-attr]
            assert await engine.read(lambda state: state.version) == 4
            assert engine.state.windows["1"].staff == "zhangwei"
        finally:
            subscription.close()
            await engine.stop()
            await journal.close()


async def test_a_bug_mid_batch_leaves_no_phantom_state(
    default_config: HallConfig, on_sqlite: tuple[HallEngine, CountingSqlite]
) -> None:
    engine, journal = on_sqlite

    def broken_view(state: object, events: object) -> None:
        raise RuntimeError("a bug in a view")

    with pytest.raises(JournalUnavailable, match="reloads its journal"):
        await engine.execute(IssueTicket(category="general"), broken_view)
    # The ticket was applied in memory but never appended: it must not linger.
    assert await engine.read(lambda state: len(state.tickets)) == 0
    done = await engine.execute(IssueTicket(category="general"))
    assert done.records[-1].event.number == "A001"  # type: ignore[union-attr]
    stored = await journal.read(default_config.hall.id)
    assert fold(default_config, [r.event for r in stored]) == engine.state


async def test_the_day_turns_at_midnight_without_any_command(
    default_config: HallConfig, tmp_path: Path
) -> None:
    now = [datetime(2026, 11, 23, 15, 59, tzinfo=UTC)]  # 23:59 in Shanghai
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    engine = HallEngine(
        default_config, journal, Bus(), clock=lambda: now[0], day_check_seconds=0.01
    )
    await engine.start()
    try:
        done = await engine.execute(IssueTicket(category="general"))
        ticket = done.records[-1].event.ticket  # type: ignore[union-attr]
        now[0] += timedelta(minutes=2)  # 00:01 the next day; nobody does anything
        for _ in range(200):
            if await engine.read(lambda state: str(state.day)) == "2026-11-24":
                break
            await asyncio.sleep(0.01)
        assert await engine.read(lambda state: str(state.day)) == "2026-11-24"
        assert ticket not in engine.state.tickets  # yesterday's waiting ticket expired
        stored = await journal.read(default_config.hall.id)
        assert [r.event.__struct_config__.tag for r in stored][-1] == "day_started"
        assert fold(default_config, [r.event for r in stored]) == engine.state
    finally:
        await engine.stop()
        await journal.close()


async def test_stop_finishes_the_commands_already_queued(
    default_config: HallConfig, on_sqlite: tuple[HallEngine, CountingSqlite]
) -> None:
    engine, journal = on_sqlite
    commands = [
        asyncio.create_task(engine.execute(IssueTicket(category="general"))) for _ in range(50)
    ]
    await asyncio.sleep(0)  # all queued
    await engine.stop()
    results = await asyncio.gather(*commands, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert await journal.version(default_config.hall.id) == 51
    with pytest.raises(JournalUnavailable):
        await engine.execute(IssueTicket(category="general"))


class StallingJournal(MemoryJournal):
    """An in-memory journal whose first append never answers and whose next read takes
    ``read_stall`` seconds: the writer is then busy recovering for longer than a command's
    deadline."""

    def __init__(self, read_stall: float) -> None:
        super().__init__()
        self.stall_append, self.read_stall = True, 0.0
        self._next_read_stall = read_stall

    async def append(
        self, hall: str, events: Sequence[AnyEvent], expected_version: int, **fence: Any
    ) -> int:
        if self.stall_append:
            self.stall_append, self.read_stall = False, self._next_read_stall
            await asyncio.sleep(3600)
        return await super().append(hall, events, expected_version, **fence)

    async def read(self, hall: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        stall, self.read_stall = self.read_stall, 0.0
        await asyncio.sleep(stall)
        return await super().read(hall, after, limit)


async def test_a_command_past_its_deadline_is_answered_and_never_done(
    default_config: HallConfig,
) -> None:
    journal = StallingJournal(read_stall=1.0)
    engine = HallEngine(default_config, journal, Bus(), store_timeout=0.2)
    await engine.start()
    try:
        first = asyncio.create_task(engine.execute(IssueTicket(category="general")))
        await asyncio.sleep(0.05)  # the writer is stuck in the first append
        started = asyncio.get_running_loop().time()
        with pytest.raises(JournalUnavailable, match="may have happened"):
            await engine.execute(IssueTicket(category="general"))
        assert 0.35 < asyncio.get_running_loop().time() - started < 0.9  # 2 x store_timeout
        with pytest.raises(JournalUnavailable):
            await first  # past its deadline too: the writer is still recovering
        assert await engine.read(lambda state: state.version) == 0  # recovered (in ~1 s)
        # Neither was done late (the second was skipped): the next one takes the first number.
        done = await engine.execute(IssueTicket(category="general"))
        assert done.records[-1].event.number == "A001"  # type: ignore[union-attr]
        stored = [r.event for r in await journal.read(default_config.hall.id)]
        assert [type(e).__name__ for e in stored] == ["DayStarted", "TicketIssued"]
    finally:
        await engine.stop()


async def test_a_cancelled_caller_gets_its_cancellation_not_a_journal_error(
    default_config: HallConfig,
) -> None:
    journal = StallingJournal(read_stall=0.0)
    engine = HallEngine(default_config, journal, Bus(), store_timeout=0.5)
    await engine.start()
    try:
        caller = asyncio.create_task(engine.execute(IssueTicket(category="general")))
        await asyncio.sleep(0.05)
        caller.cancel()  # a client that went away, or a deadline of the caller's own
        with pytest.raises(asyncio.CancelledError):
            await caller
    finally:
        await engine.stop()
