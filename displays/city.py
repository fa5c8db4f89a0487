"""The city view: every hall of the region with its live load, rolled up by town and city, and
the feed that pushes it to the supervisors' page (``/ws/region``).

A hall's figures are the manager's live view's (:class:`displays.manager.ManagerScreen`: the
same waiting count, longest wait, windows, served and ratings today), read from the hall's
engine on this process (every process of a region hosts every hall, writer or follower), so
the city and the hall's manager never disagree. A hall's view is computed again only when its
version moved, or every ``REFRESH_SECONDS`` (waits grow with the clock alone).

The feed speaks the screens' protocol (``/static/feed.js``): a ``view`` frame with the whole
city view, at most ``1 / MIN_GAP_SECONDS`` a second however busy the halls, and a ``ping`` after
``PING_SECONDS`` of nothing. Its version is this process's count of distinct city views: a page
that reconnects (here or to another process) always gets the whole view first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import WebSocket

from displays.manager import ManagerScreen
from hall.domain.state import HallState
from hall.engine import HallEngine, utc_now
from hall.journal.base import JournalError
from hall.region import Region, Unit

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0  # a hall's view, computed again without an event (waits grow)
MIN_GAP_SECONDS = 0.5  # between two city views sent: at most two a second
PING_SECONDS = 10.0  # the screens' ping interval: feed.js calls 25 s of silence stale
RECHECK_SECONDS = 1.0  # between looks at the supervisor's session, as the manager's feed
OPEN = frozenset({"open", "calling", "serving", "paused"})  # a window someone is logged in at


class HallLoad(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    name_en: str
    waiting: int
    longest_wait_minutes: float | None  # of those waiting now (None: nobody waits)
    over_target: bool  # someone waits over [alerts] wait_factor × their category's target
    windows_open: int  # open, calling, serving or paused
    windows: int
    served: int  # today
    rated: int  # today
    rating_mean: float | None  # today's levels, 1-5
    bad: int  # today's 不满意 + 非常不满意
    leading: bool  # this process writes the hall (else it follows another's writes)
    version: int  # the hall's journal version these figures are of
    stale: bool  # the hall could not be read just now (its last figures), or may be behind


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    halls: int
    halls_over_target: int
    waiting: int
    longest_wait_minutes: float | None
    windows_open: int
    windows: int
    served: int
    rated: int
    rating_mean: float | None
    bad: int


class UnitLoad(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # city, town, village
    id: str
    name: str
    name_en: str
    halls: list[HallLoad]  # its own
    units: list[UnitLoad]  # a city's towns, a town's villages
    total: Totals  # its halls and every unit's under it


class RegionName(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    name_en: str


class CityView(msgspec.Struct, frozen=True, kw_only=True):
    region: RegionName
    city: UnitLoad


@dataclass
class _Figures:
    """One hall's figures as read, before ``now`` turns its oldest ticket into a wait."""

    load: HallLoad
    oldest: datetime | None
    level_sum: int
    at: float  # monotonic time of the read


class City:
    """Computes the city view from the engines; one per server (shared by the API and feeds)."""

    def __init__(self, service: Any) -> None:
        self.service = service  # a HallService
        self._figures: dict[str, _Figures] = {}
        self._screens: dict[str, ManagerScreen] = {}

    @property
    def region(self) -> Region | None:
        region: Region | None = self.service.region
        return region

    async def view(self) -> CityView:
        region = self.region
        assert region is not None
        for config in region.configs:
            await self._refresh(self.service.engine(config.hall.id))
            await asyncio.sleep(0)  # hundreds of halls: let the writers and leases run between
        now = utc_now()
        return CityView(
            region=RegionName(id=region.id, name=region.name, name_en=region.name_en),
            city=self._unit(region.city, now),
        )

    async def _refresh(self, engine: HallEngine) -> None:
        hall = engine.hall
        kept = self._figures.get(hall)
        fresh = kept is not None and time.monotonic() - kept.at < REFRESH_SECONDS
        current = kept is not None and kept.load.version == engine.state.version
        if fresh and current and kept is not None and kept.load.stale != engine.fresh():
            return
        screen = self._screens.get(hall)
        if screen is None:
            screen = ManagerScreen(engine.config, lambda: engine.times, forecasts=False)
            self._screens[hall] = screen
        try:
            self._figures[hall] = await engine.read(lambda state: self._read(engine, screen, state))
        except JournalError as exc:  # its last figures, marked stale
            log.info("city view: hall %s not read: %s", hall, exc)
            if kept is not None:
                load = msgspec.structs.replace(kept.load, stale=True)
                self._figures[hall] = _Figures(load, kept.oldest, kept.level_sum, kept.at)

    @staticmethod
    def _read(engine: HallEngine, screen: ManagerScreen, state: HallState) -> _Figures:
        view = screen.view(state, engine.clock())
        olds = [c.oldest for z in view.zones for c in z.categories if c.oldest is not None]
        # The mean needs the levels, which the live view counts but does not add: the same
        # tickets as its ``rated`` (today's, rated).
        levels = [t.rating for t in state.tickets.values() if t.day == state.day and t.rating]
        figures = view.figures
        load = HallLoad(
            id=engine.hall,
            name=engine.config.hall.name,
            name_en=engine.config.hall.name_en,
            waiting=figures.waiting,
            longest_wait_minutes=None,
            over_target=any(c.over_target for z in view.zones for c in z.categories),
            windows_open=sum(w.state in OPEN for w in view.windows),
            windows=len(view.windows),
            served=figures.served,
            rated=figures.rated,
            rating_mean=round(sum(levels) / len(levels), 2) if levels else None,
            bad=figures.bad,
            leading=engine.leading,
            version=state.version,
            stale=not engine.fresh(),  # this process has lost sight of the journal
        )
        return _Figures(load, min(olds) if olds else None, sum(levels), time.monotonic())

    def _hall(self, hall: str, now: datetime) -> tuple[HallLoad, _Figures]:
        figures = self._figures[hall]
        longest = None
        if figures.oldest is not None:
            longest = round(max(0.0, (now - figures.oldest).total_seconds() / 60), 1)
        return msgspec.structs.replace(figures.load, longest_wait_minutes=longest), figures

    def _unit(self, unit: Unit, now: datetime) -> UnitLoad:
        own = [self._hall(hall, now) for hall in unit.halls if hall in self._figures]
        units = [self._unit(child, now) for child in unit.units]
        every = [*own, *(pair for child in unit.units for pair in self._pairs(child, now))]
        return UnitLoad(
            kind=unit.kind,
            id=unit.id,
            name=unit.name,
            name_en=unit.name_en,
            halls=[load for load, _ in own],
            units=units,
            total=_total(every),
        )

    def _pairs(self, unit: Unit, now: datetime) -> list[tuple[HallLoad, _Figures]]:
        return [
            self._hall(hall, now)
            for path in unit.walk()
            for hall in path[-1].halls
            if hall in self._figures
        ]


def _total(halls: list[tuple[HallLoad, _Figures]]) -> Totals:
    loads = [load for load, _ in halls]
    rated = sum(load.rated for load in loads)
    waits = [load.longest_wait_minutes for load in loads if load.longest_wait_minutes is not None]
    return Totals(
        halls=len(loads),
        halls_over_target=sum(load.over_target for load in loads),
        waiting=sum(load.waiting for load in loads),
        longest_wait_minutes=max(waits) if waits else None,
        windows_open=sum(load.windows_open for load in loads),
        windows=sum(load.windows for load in loads),
        served=sum(load.served for load in loads),
        rated=rated,
        rating_mean=round(sum(f.level_sum for _, f in halls) / rated, 2) if rated else None,
        bad=sum(load.bad for load in loads),
    )


_encoder = msgspec.json.Encoder()


class CityFeed:
    """The city view's feed: one task per server, started by the first socket, listens to every
    hall's bus and sends each distinct view to every socket, coalesced."""

    def __init__(self, service: Any) -> None:
        self.city = City(service)
        self.service = service
        self.version = 0
        self.frame: bytes | None = None  # the last view frame's body
        self._view: bytes | None = None
        self._sent = asyncio.Event()
        self._sockets: set[WebSocket[Any, Any, Any]] = set()
        self._task: asyncio.Task[None] | None = None

    async def follow(self, socket: WebSocket[Any, Any, Any], still: Any) -> None:
        """Send ``socket`` the view, then each new one, until it leaves or ``still()`` raises."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="city-feed")
        if not self._sockets:  # nobody was watching: the last view may be old
            await self._publish()
        self._sockets.add(socket)
        reader = asyncio.create_task(socket.receive_data("text"))
        try:
            assert self.frame is not None
            await socket.send_text(self.frame.decode())
            said = time.monotonic()
            while True:
                seen = self.version
                waiter = asyncio.create_task(self._sent.wait())
                done, _ = await asyncio.wait(
                    {reader, waiter}, timeout=RECHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if reader in done:  # the page has nothing to say: a message ends it
                    return
                await still()  # a session ended elsewhere closes the feed within RECHECK_SECONDS
                if self.version != seen and self.frame is not None:
                    await socket.send_text(self.frame.decode())
                elif time.monotonic() - said >= PING_SECONDS:
                    ping = {"type": "ping", "version": self.version, "now": utc_now()}
                    await socket.send_text(_encoder.encode(ping).decode())
                else:
                    continue
                said = time.monotonic()
        finally:
            self._sockets.discard(socket)
            reader.cancel()

    async def _publish(self) -> None:
        view = await self.city.view()
        body = _encoder.encode(view)
        if body == self._view:
            return
        self._view = body
        self.version += 1
        frame = {"type": "view", "version": self.version, "now": utc_now(), "view": view}
        self.frame = _encoder.encode(frame)
        self._sent.set()
        self._sent = asyncio.Event()

    async def _run(self) -> None:
        region = self.city.region
        assert region is not None
        changed = asyncio.Event()
        subscriptions = [self.service.bus.subscribe(c.hall.id) for c in region.configs]

        async def listen(subscription: Any) -> None:
            while True:
                with contextlib.suppress(Exception):  # a lagged feed: the view reads state
                    await subscription.get()
                changed.set()

        listeners = [asyncio.create_task(listen(s)) for s in subscriptions]
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REFRESH_SECONDS):
                        await changed.wait()
                changed.clear()
                if not self._sockets:
                    continue
                try:
                    await self._publish()
                except Exception:  # the next change or refresh tries again
                    log.exception("city view: not computed")
                await asyncio.sleep(MIN_GAP_SECONDS)  # what comes meanwhile goes in one view
        finally:
            for task in listeners:
                task.cancel()
            for subscription in subscriptions:
                subscription.close()

    async def close(self) -> None:
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close(code=1001)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
