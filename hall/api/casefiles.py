"""What a manager reads about open cases and recent breaches beyond what the state keeps: the
rating's reasons and comment, each step with who and when, a breach's measure and evidence, an
excuse's reason. The state keeps only what deciding needs; these are in the journal.

An index per hall, in memory, read from the journal on demand: the first read starts at the
oldest thing it must explain (the oldest open case's rating, the oldest breach the state keeps),
found by bisecting the journal on event time, and each later read catches up from where the
last one stopped. Nothing is written; a restart reads again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hall.domain.events import BreachExcused, BreachRecorded, CaseStepped, TicketRated
from hall.engine import HallEngine

PAGE = 5000
# Event times follow versions but for clock corrections: start a little earlier than needed.
SLACK = timedelta(minutes=30)


@dataclass(slots=True)
class Rated:
    version: int
    reasons: tuple[str, ...]
    comment: str | None


@dataclass(slots=True)
class Step:
    version: int
    event: CaseStepped


@dataclass(slots=True)
class Measured:
    version: int
    event: BreachRecorded
    excuse: BreachExcused | None = None


@dataclass(slots=True)
class CaseFiles:
    """The journal's facts about cases and breaches, up to ``version``."""

    engine: HallEngine
    version: int | None = None  # None: not read yet
    ratings: dict[str, Rated] = field(default_factory=dict)
    steps: dict[str, list[Step]] = field(default_factory=dict)
    breaches: dict[str, Measured] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def catch_up(self, version: int, oldest: datetime | None) -> None:
        """Read the journal up to ``version`` (the state's); ``oldest`` is the earliest time
        whose events the caller will ask about (None: nothing before ``version``)."""
        async with self.lock:
            if self.version is None:
                self.version = version if oldest is None else await self._first(oldest) - 1
            while self.version < version:
                records = await self.engine.history(self.version, min(PAGE, version - self.version))
                if not records:
                    break
                for record in records:
                    self._take(record.version, record.event)
                self.version = records[-1].version

    def forget(self, version: int, cases: Iterable[str], breaches: Iterable[str]) -> None:
        """Drop what the state at ``version`` no longer holds (closed cases, breaches past
        BREACH_DAYS); anything newer than ``version`` stays (the state will catch up)."""
        open_cases, kept = set(cases), set(breaches)
        for case in [c for c, r in self.ratings.items() if r.version <= version]:
            if case not in open_cases:
                del self.ratings[case]
                self.steps.pop(case, None)
        for breach in [b for b, m in self.breaches.items() if m.version <= version]:
            if breach not in kept:
                del self.breaches[breach]

    def _take(self, version: int, event: object) -> None:
        match event:
            case TicketRated(ticket=ticket, reasons=reasons, comment=comment):
                self.ratings[ticket] = Rated(version, reasons, comment)
                self.steps.pop(ticket, None)
            case CaseStepped(case=case):
                self.steps.setdefault(case, []).append(Step(version, event))
            case BreachRecorded(breach=breach):
                self.breaches[breach] = Measured(version, event)
            case BreachExcused(breach=breach):
                measured = self.breaches.get(breach)
                if measured is not None:
                    measured.excuse = event

    async def _first(self, oldest: datetime) -> int:
        """The first version at or after ``oldest`` (less SLACK): a bisection of the journal."""
        target = oldest - SLACK
        low, high = 1, await self.engine.journal.version(self.engine.hall) + 1
        while low < high:
            middle = (low + high) // 2
            found = await self.engine.history(middle - 1, 1)
            if found and found[0].event.at < target:
                low = middle + 1
            else:
                high = middle
        return low
