"""The running halls of one server: their engines, journal, bus and sessions, started and stopped
together. ``create_app`` builds one and keeps it in ``app.state.service``.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection

from hall.api.auth import Sessions
from hall.api.limits import IssueLimiter
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.errors import UnknownHall
from hall.engine import HallEngine
from hall.journal import open_journal
from hall.journal.base import Journal
from hall.views import Estimator

log = logging.getLogger(__name__)


class HallService:
    def __init__(self, configs: list[HallConfig], journal_url: str, feed_queue: int = 1000) -> None:
        self.configs = configs
        self.journal_url = journal_url
        self.bus = Bus(feed_queue)
        self.sessions = Sessions()
        self.issue_limits = IssueLimiter()
        self.journal: Journal | None = None
        self.engines: dict[str, HallEngine] = {}

    async def start(self) -> None:
        self.journal = open_journal(self.journal_url)
        for config in self.configs:
            engine = HallEngine(config, self.journal, self.bus)
            await engine.start()
            self.engines[config.hall.id] = engine
        log.info("serving halls %s from %s", ", ".join(self.engines), self.journal_url)

    async def stop(self) -> None:
        for engine in self.engines.values():
            await engine.stop()
        self.engines.clear()
        if self.journal is not None:
            await self.journal.close()
            self.journal = None

    def engine(self, hall: str) -> HallEngine:
        engine = self.engines.get(hall)
        if engine is None:
            raise UnknownHall(f"no hall {hall!r} on this server", hall=hall)
        return engine


def estimator(engine: HallEngine) -> Estimator:
    """For wait estimates in views: the engine's running service times, at the engine's now."""
    return Estimator(engine.times, engine.clock())


def service_of(connection: ASGIConnection[Any, Any, Any, Any]) -> HallService:
    service: HallService = connection.app.state.service
    return service
