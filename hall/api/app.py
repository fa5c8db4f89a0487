"""The one composition root: ``create_app(settings)`` loads the halls and wires the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from hall import config as hall_config
from hall.api import errors
from hall.api.halls import HallController, event_feed
from hall.api.managers import ManagerController
from hall.api.service import HallService
from hall.api.tickets import TicketController
from hall.api.windows import WindowController
from hall.settings import Settings


def create_app(settings: Settings) -> Litestar:
    """Build the app; halls start (journal replayed) when the app starts. Bad configs raise here."""
    configs = [hall_config.load(path) for path in settings.configs]
    service = HallService(configs, settings.journal_url, settings.feed_queue)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    return Litestar(
        route_handlers=[
            HallController,
            TicketController,
            WindowController,
            ManagerController,
            event_feed,
        ],
        lifespan=[lifespan],
        state=State({"service": service}),
        exception_handlers={Exception: errors.handle},
        # The JSON document itself at /schema: the HTML viewers load scripts from a CDN, and halls
        # run on closed networks.
        openapi_config=OpenAPIConfig(
            title="Hall",
            version="0.1.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        ),
        logging_config=None,
    )
