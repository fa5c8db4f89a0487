"""The journal contract: every backend runs this file unchanged (see ``conftest.store``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from hall.domain.events import (
    SCHEMA_VERSION,
    AnyEvent,
    DayStarted,
    Outcome,
    ProfileChanged,
    ServiceFinished,
    TicketCalled,
    TicketIssued,
    TicketTransferred,
)
from hall.journal.base import Journal, JournalUnavailable, Recorded, WrongVersion
from tests.contract.conftest import Store

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=BEIJING)
PROMPT = 0.5  # seconds: a follower must see an append sooner than this (SQLite polls every 1 s)


def sample(i: int) -> AnyEvent:
    """The ``i``-th of a varied run of events: unions, enums, tuples, None, Chinese text, tz."""
    at = T0 + timedelta(seconds=i)
    match i % 6:
        case 0:
            return TicketIssued(
                at=at,
                ticket=f"t{i}",
                number=f"A{i:03d}",
                category="社保",
                seq=i,
                day=date(2025, 3, 3),
            )
        case 1:
            return TicketCalled(at=at.astimezone(UTC), ticket=f"t{i}", window="5号窗口")
        case 2:
            return ServiceFinished(at=at, ticket=f"t{i}", window="5", outcome=Outcome.ACCEPTED)
        case 3:
            return TicketTransferred(at=at, ticket=f"t{i}", window="5", category="税务")
        case 4:
            return ProfileChanged(at=at, window="7", categories=("企业", "项目"), by="王经理")
        case _:
            return DayStarted(at=at, day=date(2025, 3, 4), expired=(f"t{i}", "t0"))


def samples(start: int, count: int) -> list[AnyEvent]:
    return [sample(i) for i in range(start, start + count)]


async def take(events: AsyncIterator[Recorded], count: int, within: float = 2.0) -> list[Recorded]:
    async with asyncio.timeout(within):
        return [await anext(events) for _ in range(count)]


# -- append, read, versions --------------------------------------------------------------------


async def test_a_new_journal_is_empty(journal: Journal) -> None:
    assert await journal.version("nowhere") == 0
    assert await journal.read("nowhere") == []
    assert await journal.read_all() == []
    assert await journal.halls() == []


async def test_appended_events_read_back_equal(journal: Journal) -> None:
    events = samples(0, 6)
    assert await journal.append("镇中心:1", events, 0) == 6
    stored = await journal.read("镇中心:1")
    assert [r.event for r in stored] == events
    assert [r.version for r in stored] == [1, 2, 3, 4, 5, 6]
    assert {r.hall for r in stored} == {"镇中心:1"}
    assert {r.schema for r in stored} == {SCHEMA_VERSION}
    positions = [r.position for r in stored]
    assert positions == sorted(set(positions)) and positions[0] >= 1


async def test_versions_count_events_across_appends(journal: Journal) -> None:
    assert await journal.append("h", samples(0, 2), 0) == 2
    assert await journal.append("h", samples(2, 3), 2) == 5
    assert await journal.version("h") == 5
    assert [r.event for r in await journal.read("h")] == samples(0, 5)


@pytest.mark.parametrize("expected", [-1, 0, 1, 3, 99])
async def test_wrong_version_writes_nothing(journal: Journal, expected: int) -> None:
    await journal.append("h", samples(0, 2), 0)
    before_all = await journal.read_all()
    with pytest.raises(WrongVersion) as caught:
        await journal.append("h", samples(10, 3), expected)
    assert (caught.value.hall, caught.value.expected, caught.value.actual) == ("h", expected, 2)
    assert await journal.version("h") == 2
    assert await journal.read_all() == before_all


async def test_wrong_version_on_a_new_hall_does_not_create_it(journal: Journal) -> None:
    with pytest.raises(WrongVersion) as caught:
        await journal.append("h", samples(0, 1), 1)
    assert caught.value.actual == 0
    assert await journal.halls() == []
    assert await journal.read_all() == []


async def test_empty_append_checks_the_version_and_writes_nothing(journal: Journal) -> None:
    assert await journal.append("h", [], 0) == 0
    assert await journal.halls() == []  # an empty append does not create a hall
    await journal.append("h", samples(0, 3), 0)
    assert await journal.append("h", [], 3) == 3
    with pytest.raises(WrongVersion):
        await journal.append("h", [], 2)
    assert await journal.version("h") == 3
    assert len(await journal.read_all()) == 3


async def test_read_after_and_limit(journal: Journal) -> None:
    await journal.append("h", samples(0, 10), 0)
    assert [r.version for r in await journal.read("h", after=3)] == [4, 5, 6, 7, 8, 9, 10]
    assert [r.version for r in await journal.read("h", after=3, limit=4)] == [4, 5, 6, 7]
    assert [r.event for r in await journal.read("h", 3, 4)] == samples(3, 4)
    assert await journal.read("h", after=3, limit=0) == []
    assert await journal.read("h", after=10) == []
    assert await journal.read("h", after=50, limit=5) == []
    assert [r.version for r in await journal.read("h", limit=2)] == [1, 2]
    assert await journal.read("other") == []
    with pytest.raises(ValueError):
        await journal.read("h", limit=-1)


async def test_read_all_follows_append_order_across_halls(journal: Journal) -> None:
    await journal.append("a", samples(0, 2), 0)
    await journal.append("b", samples(2, 1), 0)
    await journal.append("a", samples(3, 3), 2)
    await journal.append("b", samples(6, 2), 1)
    everything = await journal.read_all()
    assert [(r.hall, r.version) for r in everything] == [
        ("a", 1), ("a", 2), ("b", 1), ("a", 3), ("a", 4), ("a", 5), ("b", 2), ("b", 3)
    ]  # fmt: skip
    assert [r.event for r in everything] == samples(0, 8)
    positions = [r.position for r in everything]
    assert all(x < y for x, y in itertools.pairwise(positions))
    # the same records as each hall's own stream
    assert [r for r in everything if r.hall == "a"] == await journal.read("a")
    # paging by position
    assert await journal.read_all(after=positions[2], limit=3) == everything[3:6]
    assert await journal.read_all(after=positions[-1]) == []
    assert await journal.read_all(limit=0) == []
    pages, after = [], 0
    while page := await journal.read_all(after, limit=3):
        pages += page
        after = page[-1].position
    assert pages == everything


async def test_halls_lists_halls_with_events_sorted(journal: Journal) -> None:
    for hall in ["town-b", "city", "town-a"]:
        await journal.append(hall, samples(0, 1), 0)
    await journal.append("empty", [], 0)
    assert await journal.halls() == ["city", "town-a", "town-b"]


async def test_a_big_batch_is_one_append(journal: Journal) -> None:
    events = samples(0, 1000)
    started = time.monotonic()
    assert await journal.append("h", events, 0) == 1000
    assert time.monotonic() - started < 5
    stored = await journal.read("h")
    assert [r.event for r in stored] == events
    assert [r.version for r in stored] == list(range(1, 1001))
    assert len(await journal.read_all()) == 1000
    assert await journal.append("h", samples(1000, 1), 1000) == 1001


# -- concurrency and durability ----------------------------------------------------------------


async def test_concurrent_appends_at_one_version_exactly_one_wins(store: Store) -> None:
    first, second = store.open(), store.open()  # two writers: two processes, in effect
    await first.append("h", samples(0, 2), 0)
    writers = [first, second] * 5
    results = await asyncio.gather(
        *(w.append("h", samples(100 + 10 * k, 3), 2) for k, w in enumerate(writers)),
        return_exceptions=True,
    )
    winners = [k for k, result in enumerate(results) if result == 5]
    assert len(winners) == 1, results
    assert all(isinstance(r, WrongVersion) for k, r in enumerate(results) if k != winners[0])
    stored = await second.read("h")
    assert [r.event for r in stored] == samples(0, 2) + samples(100 + 10 * winners[0], 3)
    assert len(await first.read_all()) == 5


async def test_events_survive_close_and_reopen(store: Store, journal: Journal) -> None:
    await journal.append("a", samples(0, 3), 0)
    await journal.append("b", samples(3, 2), 0)
    before = await journal.read_all()
    await journal.close()
    reopened = store.open()
    assert await reopened.read_all() == before
    assert await reopened.version("a") == 3 and await reopened.version("b") == 2
    assert await reopened.halls() == ["a", "b"]
    assert await reopened.append("a", samples(5, 1), 3) == 4
    newest = (await reopened.read("a", after=3))[0]
    assert newest.position > before[-1].position


async def test_a_closed_journal_refuses_calls_and_closes_twice(journal: Journal) -> None:
    await journal.append("h", samples(0, 1), 0)
    await journal.close()
    await journal.close()
    with pytest.raises(JournalUnavailable):
        await journal.append("h", samples(1, 1), 1)
    with pytest.raises(JournalUnavailable):
        await journal.read("h")


# -- follow ------------------------------------------------------------------------------------


async def test_follow_yields_stored_then_new_events_promptly(journal: Journal) -> None:
    await journal.append("h", samples(0, 3), 0)
    await journal.append("other", samples(50, 2), 0)
    async with contextlib.aclosing(journal.follow("h")) as events:  # type: ignore[type-var]
        assert [r.event for r in await take(events, 3)] == samples(0, 3)
        for version in (3, 5):
            waiting = asyncio.create_task(take(events, 2))
            await asyncio.sleep(0.05)  # the follower has caught up and waits for news
            await journal.append("other", samples(60, 1), await journal.version("other"))
            assert not waiting.done()  # another hall's append is no news
            started = time.monotonic()
            await journal.append("h", samples(version, 2), version)
            got = await waiting
            assert time.monotonic() - started < PROMPT
            assert [r.event for r in got] == samples(version, 2)
            assert [r.version for r in got] == [version + 1, version + 2]
            assert {r.hall for r in got} == {"h"}


async def test_follow_starts_after_the_given_version(journal: Journal) -> None:
    await journal.append("h", samples(0, 5), 0)
    async with contextlib.aclosing(journal.follow("h", after=3)) as events:  # type: ignore[type-var]
        assert [r.version for r in await take(events, 2)] == [4, 5]


async def test_follow_catches_up_on_more_than_a_page(journal: Journal) -> None:
    await journal.append("h", samples(0, 1200), 0)
    async with contextlib.aclosing(journal.follow("h", after=100)) as events:  # type: ignore[type-var]
        got = await take(events, 1100, within=5)
    assert [r.version for r in got] == list(range(101, 1201))


async def test_a_waiting_follower_can_be_cancelled(journal: Journal) -> None:
    seen: list[Recorded] = []
    first = asyncio.Event()

    async def pump() -> None:
        async for recorded in journal.follow("h"):
            seen.append(recorded)
            first.set()

    await journal.append("h", samples(0, 1), 0)
    task = asyncio.create_task(pump())
    async with asyncio.timeout(2):
        await first.wait()
    await asyncio.sleep(0.1)  # now blocked waiting for more
    task.cancel()
    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await journal.append("h", samples(1, 1), 1) == 2  # the journal is still usable
    assert len(seen) == 1


async def test_closing_the_journal_stops_its_followers(journal: Journal) -> None:
    async def pump() -> None:
        async for _ in journal.follow("h"):
            pass

    task = asyncio.create_task(pump())
    await asyncio.sleep(0.1)
    await journal.close()
    async with asyncio.timeout(2):
        with pytest.raises(JournalUnavailable):
            await task
