"""bench/city.py's city day is what it says: the halls' events, written through the Redis journal,
replay into states that hold every ticket issued, each printed, each finished one rated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hall.bus import Bus
from hall.domain.events import TicketIssued
from hall.domain.state import TicketState
from hall.engine import HallEngine
from hall.journal.redis import RedisJournal

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import city


@pytest.mark.redis
async def test_a_town_and_villages_replay_to_what_was_written(
    redis_url: str, redis_prefix: str
) -> None:
    days = city.city()
    some = [days[1], *days[-3:]]  # a town and three villages: the centre takes too long here
    tickets, events = await city.generate(redis_url, some, redis_prefix, quiet=True)
    journal = RedisJournal(redis_url, redis_prefix)
    try:
        issued = finished = replayed = 0
        for config in city.configs(some):
            written = await journal.read(config.hall.id)
            engine = HallEngine(config, journal, Bus(), clock=city._evening, day_check_seconds=1e9)
            await engine.start()
            await engine.stop()
            state = engine.state
            assert state.version == len(written) == await journal.version(config.hall.id)
            assert len(state.tickets) == sum(isinstance(r.event, TicketIssued) for r in written)
            assert not state.printing  # every ticket printed
            done = [t for t in state.tickets.values() if t.state is TicketState.FINISHED]
            assert done and all(t.rating is not None or t.not_rated for t in done)
            issued += len(state.tickets)
            finished += len(done)
            replayed += state.version
    finally:
        await journal.close()
    assert (issued, replayed) == (tickets, events)
    assert events > 5 * tickets  # issue, print, call, start, finish, rating
