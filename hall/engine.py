"""HallEngine: the one writer of a hall. Commands one at a time: decide, append, apply, publish.

Commands queue up and the writer takes them in batches (group commit): each command of a batch is
decided against the state left by the ones before it, and the batch's events go to the journal in
one append, so one fsync serves many commands. Nothing is acknowledged or published before that
append returns. If it fails, the in-memory state (which already holds the batch) is rebuilt from
the journal, which stays the only truth, and decides what happened: a failed append (a lost reply,
or no reply within ``store_timeout``) may have landed. If the journal holds the batch, its commands
succeed; if not, or if the journal cannot be read, they fail with ``JournalUnavailable``.

A command may carry an idempotency key: it is recorded on the command's events, so a retry with
the same key (after a 503, whatever really happened) is answered from the journal instead of being
done again, and a key already used for another command is refused (``KeyReused``).

In a region of many processes on one Redis journal (hall/cluster), every process runs an engine
for every hall: the one holding the hall's lease writes (``leading``, its appends fenced by the
lease), the others follow the journal (``absorb``) and forward commands to it (``forward``).

Readers take the same lock as the writer, so they never see an event not yet durable; they wait
for it at most ``read_timeout`` (then ``JournalUnavailable`` while the writer waits on the
journal, else ``HallBusy``): a stalled store or a long view must not hold up every reader
without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import msgspec

from hall import recovery
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.commands import AnyCommand, IssueTicket, OpenDay
from hall.domain.decide import day_events, decide
from hall.domain.errors import HallError, KeyReused
from hall.domain.events import AnyEvent, Requested
from hall.domain.state import Answered, HallState, apply
from hall.journal.base import (
    Journal,
    JournalError,
    JournalUnavailable,
    LeaseLost,
    NotWriter,
    Recorded,
)
from hall.journal.mark import DurableMark, JournalBehind
from hall.observe import NO_OBSERVER, Observer
from hall.recovery import Checkpoints
from scheduling.estimate import ServiceTimes
from scheduling.policy import Policy, policy_named

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]
Reply = Callable[[HallState, list[AnyEvent]], T]
# Called with the state and the records of each durable batch, right after it is applied.
AfterBatch = Callable[[HallState, Sequence[Recorded]], None]
# A follower's way to the writer: (hall, command, idempotency key) -> (first version, events).
Forward = Callable[[str, AnyCommand, str | None], Awaitable[tuple[int, list[AnyEvent]]]]

REPLAY_PAGE = 5000
FOLLOWER_MARK_SECONDS = 30.0
FORWARDED_KEY = "forwarded"  # the owner part of the keys a follower gives keyless commands
REPLAY_DEADLINE_FACTOR = 20


def utc_now() -> datetime:
    return datetime.now(UTC)


class WriteHere(NotWriter):
    """Raised by a forward that finds this process has become the hall's writer."""


class HallBusy(JournalUnavailable):
    """A reader waited ``read_timeout`` for the hall's state (the writer holding it: commands
    being appended, a slow journal): nothing was read or done; try again."""


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
    answered: list[Recorded] | None = None  # a retried key: the records of its first answer


@dataclass(slots=True)
class _Pending:
    command: AnyCommand
    reply: Reply[Any] | None
    future: asyncio.Future[Done[Any]]
    key: str | None = None


_command_encoder = msgspec.json.Encoder()


def _digest(command: AnyCommand) -> str:
    """What makes two requests under one key the same command: a ticket's secret is drawn anew by
    each try, so it does not count (the retry is answered with the first try's secret)."""
    if isinstance(command, IssueTicket):
        command = msgspec.structs.replace(command, secret="")
    return hashlib.sha256(_command_encoder.encode(command)).hexdigest()[:32]


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
        store_timeout: float = 2.0,
        read_timeout: float = 2.0,
        mark: DurableMark | None = None,
        observer: Observer = NO_OBSERVER,
        leading: bool = True,
        forward: Forward | None = None,
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
        # True while the writer waits on the journal (an append, or finding out whether one
        # landed): a read timing out then is the journal's doing, not a busy hall.
        self._in_journal = False
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()  # None: stop
        self._writer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.day_check_seconds = day_check_seconds
        self.observer = observer  # metrics (hall/metrics.py); a no-op by default
        # Set when an append failed and the replay after it failed too: the state cannot be
        # trusted until a replay succeeds, so nothing is decided or read from it meanwhile.
        self._stale = False
        self.checkpoints = Checkpoints(config, journal)
        # Deadlines: an append, or a replay while recovering, gets ``store_timeout``; a command
        # waits for its answer at most twice that; a reader waits ``read_timeout``.
        self.store_timeout = store_timeout
        self.read_timeout = read_timeout
        self.mark = mark
        self._durable = 0  # the highest version known durable: the journal must never go below
        self._published = 0  # the highest version told to the bus and the after-batch hooks
        # Synchronous hooks run after each durable batch, beside ``bus.publish``, while
        # ``state`` is exactly the state after that batch (screens project it; hall/ knows
        # nothing of them). They must be quick and must not await; one that raises is logged.
        self.after_batch: list[AfterBatch] = []
        # The writer (True) or a follower of the journal; ``fence`` is the writer's lease, which
        # every append carries (None where the journal is this process's alone).
        self.leading = leading
        self.fence: str | None = None
        self.forward = forward
        self.checkpoints.saves = leading
        # Whether this process can tell its state is current (in a region: its link to Redis
        # works); screens say they are stale while it cannot.
        self.fresh: Callable[[], bool] = lambda: True

    async def start(self) -> None:
        """Replay the journal into a fresh state, then start taking commands.

        Raises :class:`JournalBehind` if the journal holds less than ``mark`` says it made durable.
        """
        await self._replay()
        if self.mark is not None:
            self.mark.check(self.hall, self.state.version)
        self._durable = self._published = self.state.version
        if self.leading:
            self._start_writing()

    def _start_writing(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name=f"hall-writer-{self.hall}")
        self._ticker = asyncio.create_task(self._open_days(), name=f"hall-days-{self.hall}")

    async def take_over(self, fence: str | None) -> None:
        """Become the hall's writer under the lease ``fence``: first take in every event the
        journal holds (nobody else can append now), then take commands."""
        async with asyncio.timeout(self.store_timeout * REPLAY_DEADLINE_FACTOR), self._lock:
            if self._stale:
                await self._recover()
            else:
                await self._follow_journal()
            self.fence, self.leading, self.checkpoints.saves = fence, True, True
        if self._writer is None:
            self._start_writing()

    async def step_down(self, drain_seconds: float = 5.0) -> None:
        """Stop writing (the lease is lost or given away): commands from now on are forwarded;
        those already queued are still appended under the old fence (refused if it is gone)."""
        self.leading, self.checkpoints.saves = False, False
        await self._stop_writing(drain_seconds)
        self.fence = None

    async def absorb(self, records: Sequence[Recorded]) -> None:
        """A follower takes in events another process appended (from the journal's tail, in
        version order; a gap is filled from the journal)."""
        async with asyncio.timeout(self.store_timeout), self._lock:
            if self.leading:
                return
            if self._stale:
                await self._recover()
            elif records and records[0].version > self.state.version + 1:
                await self._follow_journal()
            else:
                self._take_in(records)

    async def _follow_journal(self) -> None:
        """Take in what the journal holds after our version (the lock held)."""
        while True:
            records = await self.journal.read(self.hall, self.state.version, REPLAY_PAGE)
            self._take_in(records)
            if len(records) < REPLAY_PAGE:
                return

    def _take_in(self, records: Sequence[Recorded]) -> None:
        fresh = [r for r in records if r.version > self.state.version]
        for record in fresh:
            if record.version != self.state.version + 1:
                raise JournalUnavailable(f"hall {self.hall}: the journal's tail skipped a version")
            self._apply(record.event)
        if fresh:
            events = [record.event for record in fresh]
            self.checkpoints.after_durable(self.state, self.times, events)
            self._durable = max(self._durable, self.state.version)
            self._publish(list(fresh))
            if self.mark is not None:  # a follower of hundreds of halls: not an fsync each second
                self.mark.update(self._durable, every=FOLLOWER_MARK_SECONDS)

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop taking commands; let the writer finish those already queued (for up to
        ``drain_seconds``), so a command is not made durable after its client was told it failed.
        """
        await self._stop_writing(drain_seconds)
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None and not pending.future.done():
                pending.future.set_exception(JournalUnavailable("the hall is shutting down"))
        await self.checkpoints.close()

    async def _stop_writing(self, drain_seconds: float) -> None:
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
            if self.mark is not None:
                self.mark.update(self._durable, force=True)

    async def _open_days(self) -> None:
        """Turn the business day on time even when nobody does anything at midnight."""
        while True:
            await asyncio.sleep(self.day_check_seconds)
            if self.mark is not None:  # an idle hall's last appends get their mark too
                self.mark.update(self._durable)
            if not self._stale and day_events(self.state, self.clock()):
                with contextlib.suppress(JournalError):  # the next tick tries again
                    await self.execute(OpenDay())

    async def execute(
        self,
        command: AnyCommand,
        reply: Reply[T] | None = None,
        *,
        key: str | None = None,
        here: bool = False,
    ) -> Done[T]:
        """Run one command; return once its events are durable (raises HallError, JournalError).

        ``reply(state, events)`` runs right after this command's events are applied, before any
        later command, so it sees exactly the state the command produced (e.g. a ticket's place).
        With ``key``, a command already done under that key today is not done again: ``reply``
        runs on the current state with the events it made then. JournalUnavailable means the
        command may or may not have happened: retry with the same key to know.
        """
        if not self.leading:
            if here:  # forwarded to us already: never onwards, so nothing goes round in circles
                raise NotWriter(f"hall {self.hall}: this process no longer writes it")
            return await self._forwarded(command, reply, key)
        if self._writer is None:
            raise JournalUnavailable(f"hall {self.hall} is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Done[T]] = loop.create_future()
        self.observer.command(self.hall, command, future)
        self._queue.put_nowait(_Pending(command, reply, future, key))  # unbounded: never waits
        # The deadline cancels the future (the writer skips a cancelled command it has not
        # decided yet), as asyncio.timeout() would by cancelling this task: one timer instead of
        # a context manager per command, which cost as much as the rest of this method.
        deadline = loop.call_later(2 * self.store_timeout, future.cancel)
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # this task was cancelled: not a timeout
                raise
            raise JournalUnavailable(
                f"hall {self.hall}: no answer from the journal within "
                f"{2 * self.store_timeout:g} s; the command may have happened"
            ) from None
        finally:
            deadline.cancel()

    async def _forwarded(
        self, command: AnyCommand, reply: Reply[T] | None, key: str | None
    ) -> Done[T]:
        """Have the writer run ``command``; answer from our own state once it holds the
        command's events (at that version or a little later)."""
        if self.forward is None:
            raise NotWriter(f"hall {self.hall}: this process does not write it")
        # Under a key of its own if the client gave none: a forward whose answer was lost (the
        # writer died mid-request) is then sent again to the next writer, which answers it
        # from the journal if it landed, instead of the client hearing "may have happened".
        key = key or f"{FORWARDED_KEY}/{secrets.token_hex(12)}"
        try:
            first, events = await self.forward(self.hall, command, key)
        except WriteHere:  # the lease came to us meanwhile
            return await self.execute(command, reply, key=key, here=True)
        records = [
            Recorded(hall=self.hall, version=first + i, position=0, event=event)
            for i, event in enumerate(events)
        ]
        if reply is None:
            return Done(records, cast(T, None))
        last = first + len(events) - 1

        def answer(state: HallState) -> T:
            return reply(state, events)

        return Done(records, await self._read_at(records, last, answer))

    async def _read_at(
        self, records: list[Recorded], version: int, view: Callable[[HallState], T]
    ) -> T:
        """``view`` on a state that holds at least ``version``: ``records`` (durable: the
        writer's answer) taken in at once when they follow on, else the journal read."""
        try:
            async with asyncio.timeout(self.store_timeout), self._lock:
                if self._stale:
                    await self._recover()
                if self.state.version < version and not self.leading:
                    if records and records[0].version == self.state.version + 1:
                        self._take_in(records)
                    else:
                        await self._follow_journal()
                return view(self.state)
        except TimeoutError:
            raise JournalUnavailable(
                f"hall {self.hall}: the command was done, but this process could not read "
                "its outcome in time; send it again with the same Idempotency-Key to see it"
            ) from None

    async def read(self, view: Callable[[HallState], T]) -> T:
        """``view(state)`` on durable state only (never mid-append, never after a failed one
        until the journal has been replayed: raises JournalUnavailable while it cannot be, or
        when that takes longer than ``read_timeout``: then :class:`HallBusy`)."""
        try:
            async with asyncio.timeout(self.read_timeout), self._lock:
                if self._stale:
                    await self._recover()
                return view(self.state)
        except TimeoutError:
            if self._in_journal or self._stale:
                raise JournalUnavailable(
                    f"hall {self.hall}: waiting for its journal for {self.read_timeout:g} s"
                ) from None
            raise HallBusy(
                f"hall {self.hall} is busy: its state could not be read within "
                f"{self.read_timeout:g} s"
            ) from None

    async def history(self, after: int, limit: int) -> list[Recorded]:
        """The hall's journaled events after version ``after``, at most ``limit``, within the
        store's deadline (for catching screens up and for managers; never the live state)."""
        try:
            async with asyncio.timeout(self.store_timeout):
                return await self.journal.read(self.hall, after, limit)
        except TimeoutError:
            raise JournalUnavailable(f"hall {self.hall}: the journal did not answer") from None

    async def _recover(self) -> None:
        """Replay after a failure; refuse a journal that went back.

        A store that does not answer one read within ``store_timeout`` fails at once; one that
        answers gets ``REPLAY_DEADLINE_FACTOR`` times that for the whole replay, which reads the
        day's history and must not be cut short because a hall is busy.
        """
        try:
            async with asyncio.timeout(self.store_timeout):
                await self.journal.version(self.hall)
            async with asyncio.timeout(self.store_timeout * REPLAY_DEADLINE_FACTOR):
                await self._replay()
        except TimeoutError:
            raise JournalUnavailable(
                f"hall {self.hall}: the journal did not answer within its deadline"
            ) from None
        if self.state.version < self._durable:
            self._stale = True
            path = self.mark.path if self.mark is not None else None
            raise JournalBehind(self.hall, self.state.version, self._durable, path)
        self._durable = self.state.version
        await self._publish_missed(self.state.version)

    async def _landed(self, base: int, events: list[AnyEvent]) -> bool:
        """After a failed append of ``events`` at ``base``: does the journal hold them?"""
        try:
            await self._recover()
            if self.state.version < base + len(events):
                return False
            async with asyncio.timeout(self.store_timeout):
                stored = await self.journal.read(self.hall, base, len(events))
        except (JournalError, TimeoutError):
            return False
        return [record.event for record in stored] == events

    async def _replay(self) -> None:
        """Rebuild the state from the journal: from the last checkpoint when it can be trusted
        (the one in memory, else the journal's), else from the start."""
        self._stale = True
        restored = await self.checkpoints.restore(self.state)
        if restored is None:
            state, times = HallState.initial(self.config), ServiceTimes.from_config(self.config)
        else:
            state, times = restored.state, restored.times
        start = state.version
        last: AnyEvent | None = None
        while True:
            records = await self.journal.read(self.hall, state.version, REPLAY_PAGE)
            for record in records:
                self.checkpoints.touch(record.event, state)
                apply(state, record.event)
                times.update(state, record.event)
                last = record.event
            if len(records) < REPLAY_PAGE:
                break
        self.state, self.times, self._stale = state, times, False
        log.info("hall %s replayed: version %d (from %d)", self.hall, state.version, start)
        if restored is None or state.version - start >= recovery.CHECKPOINT_EVENTS:
            self.checkpoints.take(state, times, last, save=True)

    def _apply(self, event: AnyEvent) -> None:
        self.checkpoints.touch(event, self.state)
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
        if not self.leading:  # deposed (lease lost) with commands still queued: none can land
            self._fail([_Outcome(pending) for pending in batch], NotWriter("lease lost"))
            return
        async with self._lock:
            if self._stale:
                await self._recover()
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
                digest = _digest(pending.command) if pending.key is not None else ""
                answered = self.state.answered.get(pending.key) if pending.key else None
                if answered is not None:
                    outcomes.append(self._answer_again(pending, digest, answered))
                    continue
                try:
                    decided = decide(self.state, pending.command, now, self.policy)
                except HallError as error:
                    outcomes.append(_Outcome(pending, error))
                    continue
                if pending.key is not None:
                    request = Requested(pending.key, digest)
                    decided = [msgspec.structs.replace(e, request=request) for e in decided]
                first = len(events)
                for event in decided:
                    self._apply(event)
                    events.append(event)
                reply = pending.reply(self.state, decided) if pending.reply else None
                outcomes.append(_Outcome(pending, None, first, len(events), reply))
            records: list[Recorded] = []
            if events:
                timer = self.observer.append(self.hall, len(events), len(outcomes))
                self._in_journal = True
                try:
                    async with asyncio.timeout(self.store_timeout):
                        await self.journal.append(self.hall, events, base, fence=self.fence)
                except BaseException as exc:
                    self._stale = True
                    if isinstance(exc, LeaseLost):  # refused whole: another process writes now
                        self.leading = self.checkpoints.saves = False
                        log.warning("hall %s: lease lost; following the journal", self.hall)
                        self._fail(outcomes, exc)
                        return
                    # A lost reply or a timeout leaves the append ambiguous: the journal tells.
                    if isinstance(exc, asyncio.CancelledError) or not await self._landed(
                        base, events
                    ):
                        self._fail(outcomes, exc)
                        if isinstance(exc, asyncio.CancelledError):
                            raise
                        return
                    log.warning("hall %s: append failed (%s) but landed: answered", self.hall, exc)
                finally:
                    self._in_journal = False
                self._durable = max(self._durable, base + len(events))
                timer.done()
                # Positions are the journal's business; subscribers only need hall versions.
                records = [
                    Recorded(hall=self.hall, version=base + i + 1, position=0, event=event)
                    for i, event in enumerate(events)
                ]
                self.checkpoints.after_durable(self.state, self.times, events)
            if records:
                await self._publish_missed(records[0].version - 1)
                self._publish(records)
        if records and self.mark is not None:
            self.mark.update(self._durable)
        for outcome in outcomes:
            future = outcome.pending.future
            if future.done():
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                made = outcome.answered or records[outcome.first : outcome.last]
                future.set_result(Done(made, outcome.reply))

    def _publish(self, records: list[Recorded]) -> None:
        """Tell the bus and the after-batch hooks of durable ``records`` not told before."""
        records = [r for r in records if r.version > self._published]
        if not records:
            return
        self._published = records[-1].version
        self.bus.publish(self.hall, records)
        for hook in list(self.after_batch):
            try:
                hook(self.state, records)
            except Exception:  # a screen's bug must not fail the commands, which are durable
                log.exception("hall %s: an after-batch hook failed", self.hall)

    async def _publish_missed(self, upto: int) -> None:
        """Publish what the journal holds up to ``upto`` that was never published: a batch whose
        append seemed to fail (no answer in time) but landed, found by a later replay. Without
        this, screens and the event feed would skip those events until the next batch, and the
        feed would never carry them."""
        if upto <= self._published:
            return
        try:
            async with asyncio.timeout(self.store_timeout):
                missed = await self.journal.read(self.hall, self._published, upto - self._published)
        except (JournalError, TimeoutError):  # the next batch or replay tries again
            log.warning("hall %s: events %d-%d not yet published", self.hall, self._published, upto)
            return
        self._publish(missed)

    def _answer_again(self, pending: _Pending, digest: str, answered: Answered) -> _Outcome:
        if answered.digest != digest:
            return _Outcome(
                pending,
                KeyReused(
                    "this Idempotency-Key was already used today for a different request",
                    key=(pending.key or "").rpartition("/")[2],
                ),
            )
        first = answered.version - len(answered.events) + 1
        records = [
            Recorded(hall=self.hall, version=first + i, position=0, event=event)
            for i, event in enumerate(answered.events)
        ]
        reply = pending.reply(self.state, answered.events) if pending.reply else None
        return _Outcome(pending, None, reply=reply, answered=records)

    @staticmethod
    def _fail(outcomes: list[_Outcome], exc: BaseException) -> None:
        failure = (
            exc
            if isinstance(exc, JournalUnavailable | NotWriter)
            else JournalUnavailable(f"the journal did not take the write: {exc!r}")
        )
        for outcome in outcomes:
            if not outcome.pending.future.done():
                outcome.pending.future.set_exception(failure)
