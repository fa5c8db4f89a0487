"""The bus: bounded per subscriber, never blocking the hall; a lagging subscriber is told once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hall.bus import Bus, Lagged
from hall.domain.events import WindowResumed
from hall.journal.base import Recorded


def records(first: int, count: int) -> list[Recorded]:
    at = datetime(2026, 11, 23, 1, tzinfo=UTC)
    return [
        Recorded(hall="h", version=v, position=v, event=WindowResumed(at=at, window="1"))
        for v in range(first, first + count)
    ]


async def test_each_subscriber_gets_each_record_in_order() -> None:
    bus = Bus(capacity=10)
    first, second = bus.subscribe("h"), bus.subscribe("h")
    other = bus.subscribe("elsewhere")
    bus.publish("h", records(1, 3))
    for subscription in (first, second):
        assert [(await subscription.get()).version for _ in range(3)] == [1, 2, 3]
    assert other.empty()


async def test_a_slow_subscriber_lags_without_holding_up_the_others() -> None:
    bus = Bus(capacity=2)
    slow, quick = bus.subscribe("h"), bus.subscribe("h")
    bus.publish("h", records(1, 2))
    assert [(await quick.get()).version for _ in range(2)] == [1, 2]
    bus.publish("h", records(3, 2))  # slow now holds 4 > 2: it lags, quick does not
    assert [(await quick.get()).version for _ in range(2)] == [3, 4]
    with pytest.raises(Lagged):
        await slow.get()
    bus.publish("h", records(5, 1))
    assert (await slow.get()).version == 5  # after the lag, new records flow again


async def test_a_waiting_subscriber_is_woken_by_its_lag() -> None:
    bus = Bus(capacity=1)
    subscription = bus.subscribe("h")
    waiting = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    bus.publish("h", records(1, 3))
    with pytest.raises(Lagged):
        await asyncio.wait_for(waiting, 1)


async def test_closed_subscriptions_get_nothing() -> None:
    bus = Bus()
    with bus.subscribe("h") as subscription:
        assert bus.subscribers("h") == 1
    assert bus.subscribers("h") == 0
    bus.publish("h", records(1, 1))
    assert subscription.empty()
