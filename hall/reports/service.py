"""The server's reports: each hall's read model, kept following its journal in the background
(so a quarter's report does not wait on a long catch-up), caught up to the moment before each
report is computed, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from hall.config import HallConfig
from hall.domain.state import HallState
from hall.engine import AfterBatch, HallEngine
from hall.journal.base import Journal, Recorded
from hall.reports.figures import compute
from hall.reports.model import Grouping, Report
from hall.reports.periods import Period
from hall.reports.store import ReadModel, model_path

log = logging.getLogger(__name__)

# After an append, wait this long for more before folding: a busy hall appends many small
# batches a second, and one page folded is cheaper than many.
SETTLE_SECONDS = 1.0
# Catch up at least this often, should a wake-up be missed (another process appending).
POLL_SECONDS = 60.0


class Reports:
    def __init__(self, configs: list[HallConfig], data_dir: Path | None) -> None:
        """``data_dir`` None: read models in memory (a server on a journal in memory)."""
        self.configs = {c.hall.id: c for c in configs}
        self.data_dir = data_dir
        self.models: dict[str, ReadModel] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._journal: Journal | None = None

    def start(self, journal: Journal, engines: dict[str, HallEngine]) -> None:
        self._journal = journal
        for hall in self.configs:
            path = ":memory:" if self.data_dir is None else model_path(self.data_dir, hall)
            self.models[hall] = ReadModel(path)
            wake = self._wake[hall] = asyncio.Event()
            wake.set()  # catch up at start
            engine = engines.get(hall)
            if engine is not None:
                engine.after_batch.append(_waker(wake))
            self._tasks.append(asyncio.create_task(self._follow(hall), name=f"reports-{hall}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for model in self.models.values():
            model.close()
        self.models.clear()

    async def report(self, hall: str, period: Period, by: Grouping, now: datetime) -> Report:
        """The report, with every event journaled before the call."""
        model, journal = self.models[hall], self._journal
        assert journal is not None, "reports not started"
        await model.catch_up(journal, hall)
        return await asyncio.to_thread(compute, model, self.configs[hall], period, by, now)

    async def _follow(self, hall: str) -> None:
        wake, model, journal = self._wake[hall], self.models[hall], self._journal
        assert journal is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_SECONDS)
            await asyncio.sleep(SETTLE_SECONDS)
            wake.clear()
            try:
                await model.catch_up(journal, hall)
            except Exception:  # the next wake-up tries again; a report catches up itself
                log.exception("hall %s: the reports' read model could not catch up", hall)


def _waker(wake: asyncio.Event) -> AfterBatch:
    """An after-batch hook that wakes the follower (hooks must not await)."""

    def hook(state: HallState, records: Sequence[Recorded]) -> None:
        wake.set()

    return hook
