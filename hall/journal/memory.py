"""The in-process journal: for fast tests and the simulator, with the semantics of the real ones.

Events are encoded and decoded on append exactly as the stored backends do, so an event that would
not survive SQLite or Redis does not survive here either, and what you read back is what they would
return. Nothing is kept on disk: the data lives in a :class:`MemoryStore`, which several journals
may share (as several processes share a file or a server) and which outlives ``close()``.

This module also holds the in-process follow machinery (:class:`Wakeups`, :func:`follow_by_reading`)
that the SQLite backend reuses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from hall.domain import events as ev
from hall.domain.events import SCHEMA_VERSION, AnyEvent
from hall.journal.base import Journal, JournalUnavailable, Recorded, WrongVersion

FOLLOW_PAGE = 500  # events read per round trip while a follower catches up


class Wakeups:
    """Wakes the followers of a hall when it is appended to.

    A follower takes ``watch(hall)`` *before* it reads, so an append that lands between its read
    and its wait still wakes it. Each notify swaps in a fresh :class:`asyncio.Event`, so nobody
    has to clear one. Use from the event loop's thread only (asyncio primitives are not
    thread-safe); backends notify after their write has completed and returned to the loop.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def watch(self, hall: str) -> asyncio.Event:
        event = self._events.get(hall)
        if event is None:
            event = self._events[hall] = asyncio.Event()
        return event

    def notify(self, hall: str) -> None:
        event = self._events.pop(hall, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


async def follow_by_reading(
    journal: Journal, wakeups: Wakeups, hall: str, after: int, poll: float | None
) -> AsyncIterator[Recorded]:
    """``Journal.follow`` for backends that can only read: read, then sleep until woken.

    ``poll`` (seconds) also wakes the follower with no notification, to see appends made by
    other processes; ``None`` waits for notifications only. Errors of ``journal.read`` (such as
    :class:`JournalUnavailable` once the journal is closed) end the iteration by propagating.
    """
    while True:
        woken = wakeups.watch(hall)  # before reading: see the class docstring
        batch = await journal.read(hall, after, FOLLOW_PAGE)
        for recorded in batch:
            after = recorded.version
            yield recorded
        if batch:
            continue  # maybe more: read again before sleeping
        if poll is None:
            await woken.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await woken.wait()


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, not {limit}")


class MemoryStore:
    """The events of every hall, in memory; shared by the :class:`MemoryJournal` opened on it."""

    def __init__(self) -> None:
        self.streams: dict[str, list[Recorded]] = {}
        self.all: list[Recorded] = []  # all[i].position == i + 1
        self.wakeups = Wakeups()
        self.checkpoints: dict[str, tuple[int, bytes]] = {}  # hall -> (version, blob)


class MemoryJournal(Journal):
    """A :class:`Journal` in this process's memory. ``store`` defaults to a fresh, private one.

    Positions are gapless here (1, 2, 3...), which the contract allows but does not promise.
    Appends are atomic because nothing in ``append`` awaits.
    """

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store if store is not None else MemoryStore()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise JournalUnavailable("the journal is closed")

    async def append(
        self,
        hall: str,
        events: Sequence[AnyEvent],
        expected_version: int,
        *,
        fence: str | None = None,
    ) -> int:
        self._check_open()
        stream = self.store.streams.get(hall, [])
        if len(stream) != expected_version:
            raise WrongVersion(hall, expected_version, len(stream))
        if not events:
            return expected_version
        # Round trip through JSON, as the stored backends do, before touching the store: an
        # event that cannot be encoded fails here and leaves nothing behind.
        decoded = [ev.decode(ev.encode(event)) for event in events]
        stream = self.store.streams.setdefault(hall, stream)
        for event in decoded:
            recorded = Recorded(
                hall=hall,
                version=len(stream) + 1,
                position=len(self.store.all) + 1,
                event=event,
                schema=SCHEMA_VERSION,
            )
            stream.append(recorded)
            self.store.all.append(recorded)
        self.store.wakeups.notify(hall)
        return len(stream)

    async def read(self, hall: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        self._check_open()
        check_limit(limit)
        start = max(after, 0)
        stream = self.store.streams.get(hall, [])
        return stream[start : None if limit is None else start + limit]

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        self._check_open()
        check_limit(limit)
        start = max(after, 0)
        return self.store.all[start : None if limit is None else start + limit]

    async def version(self, hall: str) -> int:
        self._check_open()
        return len(self.store.streams.get(hall, ()))

    async def halls(self) -> list[str]:
        self._check_open()
        return sorted(hall for hall, stream in self.store.streams.items() if stream)

    def follow(self, hall: str, after: int = 0) -> AsyncIterator[Recorded]:
        return follow_by_reading(self, self.store.wakeups, hall, after, poll=None)

    async def close(self) -> None:
        """Idempotent. The store keeps its events; followers of this journal stop with an error."""
        if not self._closed:
            self._closed = True
            self.store.wakeups.notify_all()

    async def save_checkpoint(self, hall: str, version: int, blob: bytes) -> None:
        self._check_open()
        self.store.checkpoints[hall] = (version, blob)

    async def load_checkpoint(self, hall: str) -> tuple[int, bytes] | None:
        self._check_open()
        return self.store.checkpoints.get(hall)
