"""The checkpoints a hall's writer keeps, so start-up and recovery replay only what follows one.

:mod:`hall.checkpoint` encodes and restores a state; this module decides when, and keeps them:
one in memory (every ``CHECKPOINT_EVENTS`` and at each day start, for a recovery after a failed
append), and one in the journal (each day's first, one in ``SAVED_EVERY``, the last at stop, for
start-up). It also notes which tickets changed since the one in memory, so that a recovery
decodes, and the next checkpoint encodes, only those. The engine calls it with its writer's lock
held; saving to the journal runs in the background, and a failure there costs a longer start-up,
nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import msgspec

from hall import checkpoint
from hall.config import HallConfig
from hall.domain.events import AnyEvent, DayStarted, WindowClosed
from hall.domain.state import HallState, targeted_queue
from hall.journal.base import Journal, JournalError
from scheduling.estimate import ServiceTimes

log = logging.getLogger(__name__)

# Encoding a checkpoint costs about as much as applying a few hundred events.
CHECKPOINT_EVENTS = 1000
# Writing a day's checkpoint (MBs by the afternoon) to the journal every second took 7% of a busy
# server's CPU, while start-up replays the events after it at ~50,000/s.
SAVED_EVERY = 20


class Checkpoints:
    def __init__(self, config: HallConfig, journal: Journal) -> None:
        self.config, self.hall, self.journal = config, config.hall.id, journal
        self.blob: bytes | None = None  # the last durable state, encoded
        self.version = 0  # of that state
        self._day: date | None = None  # of that state
        self._saved_version = 0  # of the last checkpoint sent to the journal
        self._saving: asyncio.Task[None] | None = None
        self._touched: set[str] = set()  # tickets named by events since ``blob``
        self._encoded: dict[str, msgspec.Raw] = {}  # each ticket as ``blob`` holds it
        # Only a hall's writer saves to the journal: a follower behind it would put back an older
        # checkpoint (it keeps its own in memory all the same).
        self.saves = True

    def touch(self, event: AnyEvent, state: HallState) -> None:
        """Note the tickets ``event`` will change (before it is applied to ``state``): a ticket
        missed here would be restored, and checkpointed, as it was before the event."""
        if isinstance(event, DayStarted):
            self._touched.update(event.expired)
        if isinstance(event, WindowClosed):  # tickets sent to it by name go back to a queue
            self._touched.update(state.queues.get(targeted_queue(event.window), ()))
        if (ticket := getattr(event, "ticket", None)) is not None:  # force-close: its held one
            self._touched.add(ticket)

    async def restore(self, current: HallState) -> checkpoint.Restored | None:
        """The state to replay from: the one in memory (``current`` holds the tickets no event
        touched since), else the journal's; None when there is none the journal still vouches
        for (then replay from the start)."""
        blob = self.blob
        if blob is None:
            try:
                found = await self.journal.load_checkpoint(self.hall)
            except JournalError as exc:
                log.warning("hall %s: no checkpoint (%s); replaying in full", self.hall, exc)
                found = None
            if found is not None:  # from here on, the in-memory one (its tickets all decoded)
                self.version, blob = found
                self.blob, self._saved_version = blob, self.version
                self._touched, self._encoded = set(), {}
        restored = None
        if blob is not None:
            tickets = current.tickets if current.version else None
            restored = checkpoint.restore(blob, self.config, tickets, self._touched)
        if restored is None or restored.state.version == 0:
            if restored is None:
                self.blob, self._encoded = None, {}
            return restored
        self._day = restored.state.day
        # The journal must still hold the event the checkpoint ended on (a store that lost data
        # or was swapped is not folded onto a state it never had).
        at = await self.journal.read(self.hall, restored.state.version - 1, 1)
        if not at or checkpoint.digest(at[0].event) != restored.digest:
            log.warning("hall %s: checkpoint does not match the journal; replaying", self.hall)
            self.blob, self._encoded = None, {}
            return None
        return restored

    def take(
        self, state: HallState, times: ServiceTimes, last: AnyEvent | None, *, save: bool
    ) -> None:
        """Encode the durable ``state`` (whose last event is ``last``) and keep it; when
        ``save``, also in the journal, in the background."""
        if last is None and state.version > 0:
            return  # the digest needs the last event; the next checkpoint will do
        self.blob = checkpoint.encode(state, times, last, self._encoded, self._touched)
        self._touched = set()
        self.version, self._day = state.version, state.day
        if save and self.saves and (self._saving is None or self._saving.done()):
            self._saving = asyncio.create_task(self._save(self.blob, state.version))
            self._saved_version = state.version

    def after_durable(self, state: HallState, times: ServiceTimes, events: list[AnyEvent]) -> None:
        """After an append: a checkpoint at each new day and every CHECKPOINT_EVENTS."""
        new_day = state.day != self._day
        if events and (new_day or state.version - self.version >= CHECKPOINT_EVENTS):
            unsaved = state.version - self._saved_version
            save = new_day or unsaved >= CHECKPOINT_EVENTS * SAVED_EVERY
            self.take(state, times, events[-1], save=save)

    async def close(self) -> None:
        """Finish saving, and save the newest one: a short start-up next time."""
        if self._saving is not None:
            await self._saving
        if self.saves and self.blob is not None and self.version > self._saved_version:
            await self._save(self.blob, self.version)
            self._saved_version = self.version

    async def _save(self, blob: bytes, version: int) -> None:
        try:
            await self.journal.save_checkpoint(self.hall, version, blob)
        except Exception:
            log.warning("hall %s: checkpoint not saved", self.hall, exc_info=True)
