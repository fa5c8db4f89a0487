"""Runs a discipline watcher beside a hall engine: fed each durable batch (an after-batch hook)
and a clock tick, its findings recorded through the engine like any command.

At start it is rebuilt from the journal: today's events, from the day's ``DayStarted``, with the
breaches already on record, so a restart finds again only what was never recorded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence

from hall.domain.commands import RecordBreach
from hall.domain.errors import HallError
from hall.domain.events import DayStarted
from hall.domain.state import HallState
from hall.engine import REPLAY_PAGE, HallEngine
from hall.journal.base import JournalError, Recorded
from hall.oversight.watcher import Watcher

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # after the journal refused a breach (stalled, failing): try it again


class WatcherRunner:
    def __init__(self, engine: HallEngine, tick_seconds: float = 1.0) -> None:
        self.engine = engine
        self.tick_seconds = tick_seconds
        self.watcher = Watcher(engine.config)
        self._ready = False
        self._backlog: list[Recorded] = []  # batches made while the watcher was rebuilt
        self._pending: collections.deque[RecordBreach] = collections.deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        engine = self.engine

        def begin(state: HallState) -> tuple[int, int]:
            # Under the writer's lock: every batch up to ``version`` is in the journal, and every
            # later one reaches the hook.
            engine.after_batch.append(self._after_batch)
            return state.version, state.day_version

        version, day_version = await engine.read(begin)
        records = await self._today(version, day_version)
        found = await engine.read(lambda state: self._rebuild(state, records))
        self._submit(found)
        hall = engine.hall
        log.info("hall %s: discipline watcher rebuilt from %d events", hall, len(records))
        self._tasks = [
            asyncio.create_task(self._tick_forever(), name=f"hall-watcher-tick-{hall}"),
            asyncio.create_task(self._record_forever(), name=f"hall-watcher-record-{hall}"),
        ]

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.engine.after_batch.remove(self._after_batch)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _today(self, version: int, day_version: int) -> list[Recorded]:
        """The journal's events from today's DayStarted to ``version``. A state of an older
        checkpoint does not know where the day began: then the whole journal is read once."""
        after = max(day_version - 1, 0)
        records: list[Recorded] = []
        while after < version:
            page = await self.engine.history(after, min(REPLAY_PAGE, version - after))
            if not page:
                break
            for record in page:
                if day_version == 0 and isinstance(record.event, DayStarted):
                    records = []
                records.append(record)
            after = page[-1].version
        return records

    def _rebuild(self, state: HallState, records: list[Recorded]) -> list[RecordBreach]:
        """Fold today's events (and the batches made meanwhile) into the watcher. Windows no
        event names today are as the state has them since before the day began."""
        named = {getattr(r.event, "window", None) for r in records}
        for window in state.windows:
            if window not in named:
                self.watcher.resume(state, window, records[0].version if records else 0)
        seen = records[-1].version if records else 0
        later = [r for r in self._backlog if r.version > seen]
        found: list[RecordBreach] = []
        for record in [*records, *later]:
            found += self.watcher.observe(state, record.version, record.event)
        self._backlog, self._ready = [], True
        return found

    def _after_batch(self, state: HallState, records: Sequence[Recorded]) -> None:
        if not self._ready:
            self._backlog.extend(records)
            return
        found: list[RecordBreach] = []
        for record in records:
            found += self.watcher.observe(state, record.version, record.event)
        self._submit(found)

    def _submit(self, found: list[RecordBreach]) -> None:
        if found:
            self._pending.extend(found)
            self._wake.set()

    async def _tick_forever(self) -> None:
        engine = self.engine
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                found = await engine.read(lambda state: self.watcher.tick(state, engine.clock()))
            except JournalError as exc:  # the next tick finds it all the same
                log.warning("hall %s: discipline tick skipped: %s", engine.hall, exc)
                continue
            except Exception:
                log.exception("hall %s: discipline tick failed", engine.hall)
                continue
            self._submit(found)

    async def _record_forever(self) -> None:
        """Record each breach found, in order; one the journal did not take is tried again."""
        engine = self.engine
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            command = self._pending[0]
            try:
                await engine.execute(command)
            except JournalError as exc:
                log.warning(
                    "hall %s: breach %s not recorded yet: %s", engine.hall, command.breach, exc
                )
                await asyncio.sleep(RETRY_SECONDS)
                continue
            except HallError as exc:  # a window retired from the config since, say
                log.warning("hall %s: breach %s refused: %s", engine.hall, command.breach, exc)
            except Exception:
                log.exception("hall %s: breach %s failed", engine.hall, command.breach)
            self._pending.popleft()
