"""The one composition root: ``create_app(settings)`` loads the halls and wires the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware

from devices import endpoint as device_endpoint
from devices import pages as device_pages
from displays import feed as screen_feeds
from displays import manage as manager_pages
from displays import office, pages
from displays.city import CityFeed
from displays.voice import route as voice_route
from hall import config as hall_config
from hall.api import errors, openapi
from hall.api import region as region_api
from hall.api.auth import Authorize
from hall.api.devices import DeviceController
from hall.api.feeds import Connections
from hall.api.halls import EventFrames, HallController, event_feed
from hall.api.limits import MAX_BODY_BYTES, BodyLimits
from hall.api.live import LiveController
from hall.api.managers import ManagerController
from hall.api.ops import ROUTES as OPERATING
from hall.api.oversight import OversightController
from hall.api.reports import ReportController
from hall.api.service import HallService
from hall.api.tickets import TicketController
from hall.api.windows import WindowController
from hall.cluster import forward
from hall.region import load_region
from hall.settings import Settings, load_hall


def create_app(settings: Settings) -> Litestar:
    """Build the app; halls start (journal replayed) when the app starts. Bad configs raise here."""
    region = None if settings.region is None else load_region(settings.region)
    if region is not None:
        configs = list(region.configs)  # the region checks its halls' ids itself
    else:
        configs = [load_hall(path) for path in settings.configs]
        seen: dict[str, str] = {}
        for path, config in zip(settings.configs, configs, strict=True):
            other = seen.get(config.hall.id)
            if other is not None:  # two writers on one hall would fight over its journal
                raise hall_config.ConfigError(
                    str(path), "hall.id", f"hall id {config.hall.id!r} is also the id in {other}"
                )
            seen[config.hall.id] = str(path)
    service = HallService(configs, settings.journal_url, settings.feed_queue, settings, region)
    city = CityFeed(service)
    connections = Connections(settings.max_screens, settings.max_screens_per_address)
    screens = screen_feeds.Screens(service, connections)
    devices = device_endpoint.DeviceLinks(service, connections)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await service.start()
        devices.start()
        try:
            yield
        finally:
            await city.close()  # its sockets close with 1001, before the halls stop
            await devices.close()  # 1001 to each device, journaling nothing: they come back
            await screens.close()  # 1001 to each screen, before the halls stop
            await service.stop()

    app = Litestar(
        route_handlers=[
            HallController,
            TicketController,
            WindowController,
            ManagerController,
            OversightController,
            LiveController,
            ReportController,
            DeviceController,
            event_feed,
            forward.run_forwarded,
            *screen_feeds.ROUTES,
            *device_endpoint.ROUTES,
            voice_route.announcement,
            openapi.viewer_assets(),
            *OPERATING,
            *pages.routes(),
            *office.ROUTES,
            *manager_pages.ROUTES,
            *region_api.ROUTES,
            *device_pages.routes(),
        ],
        after_exception=[service.metrics.after_exception],  # counts refused logins
        lifespan=[lifespan],
        state=State(
            {
                "service": service,
                "event_frames": EventFrames(),
                "screens": screens,
                "devices": devices,
                "connections": connections,
                "device_pages": device_pages.DEVICE_PAGES,
                "city": city,
            }
        ),
        exception_handlers={Exception: errors.handle},
        # In this order: a body too large or too deep is refused before its token is looked at.
        middleware=[DefineMiddleware(BodyLimits), DefineMiddleware(Authorize, service=service)],
        request_max_body_size=MAX_BODY_BYTES,  # BodyLimits checks first; this if it is ever removed
        openapi_config=openapi.config(),
        template_config=pages.template_config(device_pages.TEMPLATES),
        logging_config=None,
    )
    openapi.declare_errors(app)
    region_api.declare(app)
    voice_route.declare(app)
    return app
