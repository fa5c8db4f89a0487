"""HallEngine: the one writer of a hall. Commands one at a time: decide, append, apply, publish.

Commands queue up and the writer takes them in batches (group commit): each command of a batch is
decided against the state left by the ones before it, and the batch's events go to the journal in
one append, so one fsync serves many commands. Nothing is acknowledged or published before that
append returns. If it fails, the in-memory state (which already holds the batch) is rebuilt from
the journal and every command of the batch fails with ``JournalUnavailable``: the journal stays the
only truth. Readers take the same lock as the writer, so they never see an event not yet durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import AnyCommand, OpenDay
from hall.domain.decide import day_events, decide
from hall.domain.errors import HallError
from hall.domain.events import AnyEvent
from hall.domain.state import HallState, apply
from hall.journal.base import Journal, JournalError, JournalUnavailable, Recorded
from hall.observe import NO_OBSERVER, Observer
from scheduling.estimate import ServiceTimes
from scheduling.policy import Policy, policy_named

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]
Reply = Callable[[HallState, list[AnyEvent]], T]

REPLAY_PAGE = 5000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Done(Generic[T]):
    """What an executed command produced: its events as recorded, and the caller's reply."""

    records: list[Recorded]
    reply: T


@dataclass(slots=True)
class _Outcome:
    pending: _Pending
    error: HallError | None = None
    first: int = 0
    last: int = 0
    reply: Any = None


@dataclass(slots=True)
class _Pending:
    command: AnyCommand
    reply: Reply[Any] | None
    future: asyncio.Future[Done[Any]]


class HallEngine:
    def __init__(
        self,
        config: HallConfig,
        journal: Journal,
        bus: Bus,
        *,
        policy: Policy | None = None,
        clock: Clock = utc_now,
        max_batch: int = 512,
        day_check_seconds: float = 30.0,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self.config = config
        self.hall = config.hall.id
        self.journal = journal
        self.bus = bus
        self.policy = policy or policy_named(config.hall.policy)
        self.clock = clock
        self.max_batch = max_batch
        self.state = HallState.initial(config)
        # Running service times per category, for wait estimates: derived from the same events.
        self.times = ServiceTimes.from_config(config)
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()  # None: stop
        self._writer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.day_check_seconds = day_check_seconds
        self.observer = observer  # metrics (hall/metrics.py); a no-op by default
        # Set when an append failed and the replay after it failed too: the state cannot be
        # trusted until a replay succeeds, so nothing is decided or read from it meanwhile.
        self._stale = False

    async def start(self) -> None:
        """Replay the journal into a fresh state, then start taking commands."""
        await self._replay()
        self._writer = asyncio.create_task(self._write_forever(), name=f"hall-writer-{self.hall}")
        self._ticker = asyncio.create_task(self._open_days(), name=f"hall-days-{self.hall}")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop taking commands; let the writer finish those already queued (for up to
        ``drain_seconds``), so a command is not made durable after its client was told it failed.
        """
        writer, ticker, self._writer, self._ticker = self._writer, self._ticker, None, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if writer is not None:
            self._queue.put_nowait(None)  # the writer stops once it reaches this
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), drain_seconds)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None and not pending.future.done():
                pending.future.set_exception(JournalUnavailable("the hall is shutting down"))

    async def _open_days(self) -> None:
        """Turn the business day on time even when nobody does anything at midnight."""
        while True:
            await asyncio.sleep(self.day_check_seconds)
            if not self._stale and day_events(self.state, self.clock()):
                with contextlib.suppress(JournalError):  # the next tick tries again
                    await self.execute(OpenDay())

    async def execute(self, command: AnyCommand, reply: Reply[T] | None = None) -> Done[T]:
        """Run one command; return once its events are durable (raises HallError, JournalError).

        ``reply(state, events)`` runs right after this command's events are applied, before any
        later command, so it sees exactly the state the command produced (e.g. a ticket's place).
        """
        if self._writer is None:
            raise JournalUnavailable(f"hall {self.hall} is not running")
        future: asyncio.Future[Done[T]] = asyncio.get_running_loop().create_future()
        self.observer.command(self.hall, command, future)
        await self._queue.put(_Pending(command, reply, future))
        return await future

    async def read(self, view: Callable[[HallState], T]) -> T:
        """``view(state)`` on durable state only (never mid-append, never after a failed one
        until the journal has been replayed: raises JournalUnavailable while it cannot be)."""
        async with self._lock:
            if self._stale:
                await self._replay()
            return view(self.state)

    async def _replay(self) -> None:
        self._stale = True
        state, times = HallState.initial(self.config), ServiceTimes.from_config(self.config)
        while True:
            records = await self.journal.read(self.hall, state.version, REPLAY_PAGE)
            for record in records:
                apply(state, record.event)
                times.update(state, record.event)
            if len(records) < REPLAY_PAGE:
                break
        self.state, self.times, self._stale = state, times, False
        log.info("hall %s replayed: version %d", self.hall, state.version)

    def _apply(self, event: AnyEvent) -> None:
        apply(self.state, event)
        self.times.update(self.state, event)

    async def _write_forever(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Pending] = []
            while not stopping and len(batch) < self.max_batch:
                if batch and self._queue.empty():
                    break
                item = await self._queue.get() if not batch else self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if not batch:
                continue
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(JournalUnavailable("the hall stopped"))
                raise
            except Exception as exc:
                # The state may hold events of this batch that were never appended (a bug in a
                # view, or the journal failing): the next batch, and any read, replays first.
                self._stale = True
                if isinstance(exc, JournalError):
                    failure: Exception = exc
                else:
                    log.exception("hall %s: batch failed", self.hall)
                    failure = JournalUnavailable("internal error; the hall reloads its journal")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(failure)

    async def _write(self, batch: list[_Pending]) -> None:
        async with self._lock:
            if self._stale:
                await self._replay()
            base = self.state.version
            events: list[AnyEvent] = []
            outcomes: list[_Outcome] = []
            for pending in batch:
                if pending.future.cancelled():
                    continue
                now = self.clock()
                # A new day is its own fact: it stands even if the command after it is refused.
                for event in day_events(self.state, now):
                    self._apply(event)
                    events.append(event)
                try:
                    decided = decide(self.state, pending.command, now, self.policy)
                except HallError as error:
                    outcomes.append(_Outcome(pending, error))
                    continue
                first = len(events)
                for event in decided:
                    self._apply(event)
                    events.append(event)
                reply = pending.reply(self.state, decided) if pending.reply else None
                outcomes.append(_Outcome(pending, None, first, len(events), reply))
            records: list[Recorded] = []
            if events:
                timer = self.observer.append(self.hall, len(events), len(outcomes))
                try:
                    await self.journal.append(self.hall, events, base)
                except BaseException as exc:
                    failure = (
                        exc
                        if isinstance(exc, JournalUnavailable)
                        else JournalUnavailable(f"the journal refused the write: {exc}")
                    )
                    for outcome in outcomes:
                        if not outcome.pending.future.done():
                            outcome.pending.future.set_exception(failure)
                    self._stale = True
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    with contextlib.suppress(Exception):
                        await self._replay()
                    return
                timer.done()
                # Positions are the journal's business; subscribers only need hall versions.
                records = [
                    Recorded(hall=self.hall, version=base + i + 1, position=0, event=event)
                    for i, event in enumerate(events)
                ]
        if records:
            self.bus.publish(self.hall, records)
        for outcome in outcomes:
            future = outcome.pending.future
            if future.done():
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(Done(records[outcome.first : outcome.last], outcome.reply))
