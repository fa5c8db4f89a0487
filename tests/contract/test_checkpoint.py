"""Checkpoints: start-up and recovery replay only what follows one, into the same state a full
replay gives, on every journal; a config change falls back to a full replay once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from hall import checkpoint, recovery
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import (
    CallNext,
    CancelTicket,
    Finish,
    ForceClose,
    IssueTicket,
    Login,
    Logout,
    Start,
    Transfer,
)
from hall.domain.events import AnyEvent, Outcome
from hall.domain.state import HallState, apply
from hall.engine import HallEngine
from hall.journal.base import Journal
from scheduling.estimate import ServiceTimes

pytestmark = pytest.mark.usefixtures("small_checkpoints")


@pytest.fixture
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "CHECKPOINT_EVENTS", 7)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


async def _history(config: HallConfig, journal: Journal, clock: Clock) -> HallEngine:
    """Two days of a hall: tickets of every kind, calls, transfers, a cancel, a day turn."""
    engine = HallEngine(config, journal, Bus(), clock=clock)
    await engine.start()
    for day in range(2):
        await engine.execute(Login(window="2", by="zhangwei"))
        await engine.execute(Login(window="3", by="lina"))
        for i in range(12):
            green = i % 4 == 3
            await engine.execute(
                IssueTicket(category="general", priority="green" if green else "normal")
            )
        for _ in range(3):
            await engine.execute(CallNext(window="2", by="zhangwei"))
            await engine.execute(Start(window="2", by="zhangwei"))
            await engine.execute(Finish(window="2", by="zhangwei", outcome=Outcome.DONE))
        await engine.execute(CallNext(window="2", by="zhangwei"))
        await engine.execute(Transfer(window="2", by="zhangwei", to_window="3"))
        done = await engine.execute(IssueTicket(category="household"))
        await engine.execute(CancelTicket(ticket=done.records[-1].event.ticket))  # type: ignore[union-attr]
        await engine.execute(CallNext(window="3", by="lina"))
        if day == 0:
            await engine.execute(Logout(window="2", by="zhangwei"))
            clock.now += timedelta(days=1)
    return engine


async def _full(config: HallConfig, journal: Journal) -> tuple[HallState, ServiceTimes]:
    """The state and service times of a replay from the first event."""
    events: list[AnyEvent] = [r.event for r in await journal.read(config.hall.id)]
    state, times = HallState.initial(config), ServiceTimes.from_config(config)
    for event in events:
        apply(state, event)
        times.update(state, event)
    return state, times


async def _restart(config: HallConfig, journal: Journal) -> HallEngine:
    engine = HallEngine(config, journal, Bus(), clock=Clock())
    await engine.start()
    await engine.stop()
    return engine


async def test_the_journal_keeps_one_checkpoint_per_hall(journal: Journal) -> None:
    assert await journal.load_checkpoint("h") is None
    await journal.save_checkpoint("h", 3, b"three")
    await journal.save_checkpoint("h", 5, b"five")
    await journal.save_checkpoint("other", 1, b"one")
    assert await journal.load_checkpoint("h") == (5, b"five")
    assert await journal.load_checkpoint("other") == (1, b"one")


async def test_start_from_a_checkpoint_equals_a_full_replay(
    default_config: HallConfig, journal: Journal
) -> None:
    hall = default_config.hall.id
    engine = await _history(default_config, journal, Clock())
    await engine.stop()
    saved = await journal.load_checkpoint(hall)
    assert saved is not None and 0 < saved[0] < engine.state.version  # a tail is left to replay
    restarted = await _restart(default_config, journal)
    state, times = await _full(default_config, journal)
    assert restarted.state == state == engine.state
    assert restarted.times == times


async def test_a_checkpoint_that_does_not_decode_is_ignored(
    default_config: HallConfig, journal: Journal
) -> None:
    engine = await _history(default_config, journal, Clock())
    await engine.stop()
    await journal.save_checkpoint(default_config.hall.id, 5, b"\x00not a checkpoint")
    restarted = await _restart(default_config, journal)
    assert restarted.state == (await _full(default_config, journal))[0]


async def test_a_changed_config_replays_in_full_once_then_checkpoints_again(
    default_config: HallConfig, journal: Journal
) -> None:
    hall = default_config.hall.id
    engine = await _history(default_config, journal, Clock())
    await engine.stop()
    # Window 3 (which holds a called ticket and one sent to it by name) and the household
    # category (which has a cancelled ticket) are retired; zhangwei leaves.
    changed = msgspec.structs.replace(
        default_config,
        windows=tuple(w for w in default_config.windows if w.id != "3"),
        staff=tuple(s for s in default_config.staff if s.username != "zhangwei"),
    )
    changed = msgspec.structs.replace(
        changed,
        categories=tuple(c for c in changed.categories if c.id != "household"),
        windows=tuple(
            msgspec.structs.replace(
                w, categories=tuple(c for c in w.categories if c != "household")
            )
            for w in changed.windows
        ),
    )
    assert checkpoint.fingerprint(changed) != checkpoint.fingerprint(default_config)
    restarted = await _restart(changed, journal)
    state, _ = await _full(changed, journal)
    assert restarted.state == state
    assert "3" not in restarted.state.windows
    saved = await journal.load_checkpoint(hall)
    assert saved is not None
    found = checkpoint.restore(saved[1], changed)
    assert found is not None and found.state == state
    assert checkpoint.restore(saved[1], default_config) is None  # keyed by the config


async def test_recovery_after_a_failed_append_starts_from_the_checkpoint_in_memory(
    default_config: HallConfig, journal: Journal
) -> None:
    engine = await _history(default_config, journal, Clock())
    try:
        memory = engine.checkpoints.blob
        assert memory is not None
        restored = checkpoint.restore(memory, default_config)
        assert restored is not None and 0 < restored.state.version <= engine.state.version
        engine.state.tickets.clear()  # what a half-applied batch might leave
        engine._stale = True
        version = await engine.read(lambda s: s.version)
        assert version == await journal.version(default_config.hall.id)
        assert engine.state == (await _full(default_config, journal))[0]
    finally:
        await engine.stop()


async def test_a_ticket_changed_by_an_event_that_does_not_name_it_is_checkpointed_anew(
    default_config: HallConfig, journal: Journal
) -> None:
    """A force-close puts the window's ticket back in its queue: the next checkpoint must hold
    it waiting, not as the checkpoint before (which held it called) had encoded it."""
    engine = HallEngine(default_config, journal, Bus(), clock=Clock())
    await engine.start()
    await engine.execute(Login(window="2", by="zhangwei"))
    await engine.execute(IssueTicket(category="general"))
    await engine.execute(CallNext(window="2", by="zhangwei"))
    for _ in range(7):  # a checkpoint, with the ticket called
        await engine.execute(IssueTicket(category="general"))
    await engine.execute(ForceClose(window="2", by="manager"))
    for _ in range(7):  # another, after the force-close
        await engine.execute(IssueTicket(category="general"))
    await engine.stop()
    restarted = await _restart(default_config, journal)
    state, _ = await _full(default_config, journal)
    assert restarted.state == state


async def test_the_journal_gets_one_checkpoint_in_many_and_the_last_at_stop(
    default_config: HallConfig, journal: Journal
) -> None:
    engine = HallEngine(default_config, journal, Bus(), clock=Clock())
    await engine.start()
    for _ in range(40):  # 40 events: five checkpoints in memory, fewer than SAVED_EVERY of them
        await engine.execute(IssueTicket(category="general"))
    saved = await journal.load_checkpoint(default_config.hall.id)
    assert saved is not None and saved[0] < 35 < engine.checkpoints.version  # the day's first
    await engine.stop()
    saved = await journal.load_checkpoint(default_config.hall.id)
    assert saved is not None and saved[0] == engine.checkpoints.version  # the newest, at stop
