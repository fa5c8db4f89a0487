"""The bus: how recorded events reach what shows them (screens, feeds), after they are durable.

Fan-out is bounded: each subscriber has a queue of ``capacity`` records. A subscriber that falls
that far behind is not allowed to hold up the hall: its queue is dropped and it is marked
``lagged``; it then catches up from the journal (the feed does this) and carries on. Nothing is
lost, because the journal has everything; the bus is only the fast path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hall.journal.base import Recorded


class Lagged(Exception):
    """The subscriber fell more than ``capacity`` records behind; read the journal to catch up."""


class Subscription:
    def __init__(self, bus: Bus, hall: str, capacity: int) -> None:
        self.bus, self.hall = bus, hall
        self._queue: asyncio.Queue[Recorded] = asyncio.Queue(capacity)
        self._lagged = False

    def offer(self, record: Recorded) -> None:
        if self._lagged:
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            # Drop the backlog (the journal has it) but keep one item, so a waiting get() wakes.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._lagged = True
            self._queue.put_nowait(record)

    async def get(self) -> Recorded:
        """The next record; raises Lagged once after an overflow, then delivers new ones again."""
        record = await self._queue.get()
        if self._lagged:
            self._lagged = False
            raise Lagged(self.hall)
        return record

    def get_nowait(self) -> Recorded:
        """The next record if one is queued (asyncio.QueueEmpty if not); Lagged as get()."""
        record = self._queue.get_nowait()
        if self._lagged:
            self._lagged = False
            raise Lagged(self.hall)
        return record

    def empty(self) -> bool:
        return self._queue.empty()

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus:
    """In-process bus. ``publish`` never blocks and never fails because of a subscriber."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, hall: str) -> Subscription:
        subscription = Subscription(self, hall, self.capacity)
        self._subscribers.setdefault(hall, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.get(subscription.hall, set()).discard(subscription)

    def publish(self, hall: str, records: Sequence[Recorded]) -> None:
        for subscription in list(self._subscribers.get(hall, ())):
            for record in records:
                subscription.offer(record)

    def subscribers(self, hall: str) -> int:
        return len(self._subscribers.get(hall, ()))
