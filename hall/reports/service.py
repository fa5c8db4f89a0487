"""The server's reports: each hall's read model, kept following its journal in the background
(so a quarter's report does not wait on a long catch-up), caught up to the moment before each
report is computed (or the oversight API's details read), off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from hall.config import HallConfig
from hall.engine import HallEngine
from hall.journal.base import Journal, JournalUnavailable
from hall.reports.figures import compute
from hall.reports.model import Grouping, Report
from hall.reports.periods import Period
from hall.reports.store import ReadModel, model_path

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often the follower looks at the hall's version (in memory: free) and folds what is new;
# a busy hall appends many small batches a second, and one page folded is cheaper than many.
FOLLOW_SECONDS = 1.0
# How often it asks the journal itself (appends by another process, or no engine here).
POLL_SECONDS = 60.0
# How long a report waits for the read model to catch up: the follower keeps it within a second
# of the journal, so only a stalled store (or a model rebuilt from the start) takes longer, and
# then the answer is a 503 to retry, not a request hanging as long as the store does.
CATCH_UP_SECONDS = 5.0


class Reports:
    def __init__(self, configs: list[HallConfig], data_dir: Path | None) -> None:
        """``data_dir`` None: read models in memory (a server on a journal in memory)."""
        self.configs = {c.hall.id: c for c in configs}
        self.data_dir = data_dir
        self.models: dict[str, ReadModel] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._journal: Journal | None = None

    def start(self, journal: Journal, engines: dict[str, HallEngine]) -> None:
        self._journal = journal
        for hall in self.configs:
            path = ":memory:" if self.data_dir is None else model_path(self.data_dir, hall)
            self.models[hall] = ReadModel(path)
            follow = self._follow(hall, engines.get(hall))
            self._tasks.append(asyncio.create_task(follow, name=f"reports-{hall}"))

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
        config = self.configs[hall]
        return await self.read(hall, lambda model: compute(model, config, period, by, now))

    async def read(self, hall: str, query: Callable[[ReadModel], T]) -> T:
        """``query`` on the hall's read model caught up with every event journaled before the
        call, off the event loop (a query holds the connection while it reads)."""
        model, journal = self.models[hall], self._journal
        assert journal is not None, "reports not started"
        try:
            async with asyncio.timeout(CATCH_UP_SECONDS):
                await model.catch_up(journal, hall)
        except TimeoutError:
            raise JournalUnavailable(
                f"hall {hall}: the reports did not catch up with the journal within "
                f"{CATCH_UP_SECONDS:g} s (a slow store, or a read model being rebuilt); try again"
            ) from None
        return await asyncio.to_thread(query, model)

    async def _follow(self, hall: str, engine: HallEngine | None) -> None:
        """Fold what the hall journaled, a second at most after it did (and at start)."""
        model, journal = self.models[hall], self._journal
        assert journal is not None
        asked = -POLL_SECONDS  # the journal is asked at once: catch up at start
        while True:
            now = time.monotonic()
            behind = engine is not None and engine.state.version > model.folded
            if behind or now - asked >= POLL_SECONDS:
                asked = now
                try:
                    await model.catch_up(journal, hall)
                except Exception:  # the next round tries again; a report catches up itself
                    log.exception("hall %s: the reports' read model could not catch up", hall)
            await asyncio.sleep(FOLLOW_SECONDS)
