"""What anyone may read: the halls of this server, a hall's snapshot, and its live event feed.

The feed (``/ws/halls/{hall}/events``) sends ``{"type": "snapshot", ...}`` first, or, when the
client gives ``?after=N`` (the last version it has), every event after N from the journal; then
each new event as ``{"type": "event", "version": V, "event": {...}}``, versions consecutive. A
screen that falls behind is caught up from the journal: it never misses an event and never holds
up the hall. ``{"type": "stale", "version": V}`` says this process cannot reach the region's Redis
(events appended elsewhere may be missing from here on, until ``{"type": "live", "version": V}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import msgspec
from litestar import Controller, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from hall.api import errors
from hall.api.feeds import Connections, address, drain, send
from hall.api.service import estimator
from hall.bus import Lagged, Subscription
from hall.config import HallConfig
from hall.domain.errors import HallError
from hall.engine import HallEngine
from hall.journal.base import Recorded
from hall.views import HallSnapshot, public_event, snapshot

CATCH_UP_PAGE = 1000
FRESH_CHECK_SECONDS = 1.0  # how soon a feed says that its process lost sight of the journal
FRAMES_KEPT = 4096  # encoded events kept for the feeds: a catch-up page and then some
_VERSION = re.compile(r"[0-9]{1,18}")  # ASCII only; 18 digits fit any journal's int64


class InvalidAfter(HallError):
    code = "invalid_after"


class HallSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    name_en: str


class HallController(Controller):
    path = "/api/halls"
    tags = ["halls"]

    @get("/")
    async def list_halls(self, state: State) -> list[HallSummary]:
        return [
            HallSummary(id=e.config.hall.id, name=e.config.hall.name, name_en=e.config.hall.name_en)
            for e in state.service.engines.values()
        ]

    @get("/{hall:str}/snapshot")
    async def hall_snapshot(self, state: State, hall: FromPath[str]) -> HallSnapshot:
        """Queues per category and every window's state and ticket, at one journal version."""
        return await read_snapshot(state.service.engine(hall))


class EventFrames:
    """Each event's feed frame, encoded once for every feed that sends it (by hall and version,
    which name one event for good): every client gets the same string."""

    def __init__(self, size: int = FRAMES_KEPT) -> None:
        self.size = size
        self._frames: dict[tuple[str, int], str] = {}

    def frame(self, record: Recorded, config: HallConfig) -> str:
        key = (record.hall, record.version)
        frame = self._frames.get(key)
        if frame is None:
            frame = _encoder.encode({"type": "event", **public_event(record, config)}).decode()
            if len(self._frames) >= self.size:  # versions rise: the first in is the oldest
                del self._frames[next(iter(self._frames))]
            self._frames[key] = frame
        return frame


_encoder = msgspec.json.Encoder()


@websocket("/ws/halls/{hall:str}/events")
async def event_feed(socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str]) -> None:
    # Accept first, so that a refusal reaches the client as a message and a close code it can
    # act on (4000 + the HTTP status: 4404 unknown hall, 4400 bad ``after``, 4429 too many
    # feeds), not a bare 403.
    await socket.accept()
    connections: Connections = state.connections
    client = address(socket)
    try:
        engine: HallEngine = state.service.engine(hall)
        after = await _after(engine, socket.query_params.get("after"))
        connections.admit(client)
    except Exception as exc:
        status, body = errors.to_response(exc)
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await socket.send_json({"type": "error", **body})
            await socket.close(code=4000 + status)
        return
    try:
        await _serve(socket, engine, after, state.event_frames)
    finally:
        connections.release(client)


async def _serve(
    socket: WebSocket[Any, Any, Any], engine: HallEngine, after: int | None, frames: EventFrames
) -> None:
    sender = asyncio.create_task(_feed(socket, engine, after, frames))
    receiver = asyncio.create_task(drain(socket))
    done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
            await task
    failure = sender.exception() if sender in done else None
    # A client gone (OSError: uvicorn's ClientDisconnected) is no failure of ours.
    if isinstance(failure, Exception) and not isinstance(failure, WebSocketDisconnect | OSError):
        # A stalled journal (503) closes with 1013, "try again later": the page reconnects
        # with ?after= and misses nothing. Anything else is ours: 1011, logged.
        status, body = errors.to_response(failure)
        with contextlib.suppress(Exception):
            await socket.send_json({"type": "error", **body})
            await socket.close(code=1013 if status == 503 else 1011)


async def _after(engine: HallEngine, text: str | None) -> int | None:
    """The version a client has (``?after=N``): ASCII digits only (``str.isdigit`` accepts '²'),
    at most the hall's current version."""
    if text is None:
        return None
    current: int = await engine.read(lambda s: s.version)
    if not _VERSION.fullmatch(text) or int(text) > current:
        raise InvalidAfter(f"after must be a version 0..{current}", after=text[:20])
    return int(text)


async def _feed(
    socket: WebSocket[Any, Any, Any], engine: HallEngine, after: int | None, frames: EventFrames
) -> None:
    # Subscribe before reading, so nothing appended in between is missed.
    with engine.bus.subscribe(engine.hall) as subscription:
        if after is None:
            view = await read_snapshot(engine)
            snapshot = {"type": "snapshot", "version": view.version, "snapshot": view}
            await send(socket, _encoder.encode(snapshot).decode())
            last = view.version
        else:
            last = await _catch_up(socket, engine, after, frames)
        stale = False
        while True:
            try:
                record = await _next(subscription)
            except Lagged:
                last = await _catch_up(socket, engine, last, frames)
                continue
            if record is None or stale:
                if stale != (not engine.fresh()):
                    stale = not stale
                    kind = "stale" if stale else "live"
                    await send(socket, f'{{"type":"{kind}","version":{last}}}')
                if record is None:
                    continue
            if record.version > last + 1:
                last = await _catch_up(socket, engine, last, frames)
            if record.version == last + 1:
                await send(socket, frames.frame(record, engine.config))
                last = record.version


async def _next(subscription: Subscription) -> Recorded | None:
    """The next event, or None after ``FRESH_CHECK_SECONDS`` without one."""
    if not subscription.empty():
        return subscription.get_nowait()
    try:
        return await asyncio.wait_for(subscription.get(), FRESH_CHECK_SECONDS)
    except TimeoutError:
        return None


async def read_snapshot(engine: HallEngine) -> HallSnapshot:
    return await engine.read(lambda s: snapshot(s, estimator(engine)))


async def _catch_up(
    socket: WebSocket[Any, Any, Any], engine: HallEngine, last: int, frames: EventFrames
) -> int:
    while True:
        records = await engine.history(last, CATCH_UP_PAGE)
        for record in records:
            await send(socket, frames.frame(record, engine.config))
            last = record.version
        if len(records) < CATCH_UP_PAGE:
            return last
