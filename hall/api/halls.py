"""What anyone may read: the halls of this server, a hall's snapshot, and its live event feed.

The feed (``/ws/halls/{hall}/events``) sends ``{"type": "snapshot", ...}`` first, or, when the
client gives ``?after=N`` (the last version it has), every event after N from the journal; then
each new event as ``{"type": "event", "version": V, "event": {...}}``, versions consecutive. A
screen that falls behind is caught up from the journal: it never misses an event and never holds
up the hall.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from litestar import Controller, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from hall.api.service import estimator
from hall.bus import Lagged
from hall.engine import HallEngine
from hall.views import HallSnapshot, public_event, snapshot

CATCH_UP_PAGE = 1000


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


@websocket("/ws/halls/{hall:str}/events")
async def event_feed(socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str]) -> None:
    engine: HallEngine = state.service.engine(hall)
    after_text = socket.query_params.get("after")
    await socket.accept()
    after: int | None = None
    if after_text is not None:
        current = await engine.read(lambda s: s.version)
        if not after_text.isdigit() or int(after_text) > current:
            await socket.send_json(
                {
                    "type": "error",
                    "error": "invalid_after",
                    "message": f"after must be 0..{current}",
                }
            )
            await socket.close(code=4400)
            return
        after = int(after_text)
    sender = asyncio.create_task(_feed(socket, engine, after))
    receiver = asyncio.create_task(_drain(socket))
    _, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await task


async def _drain(socket: WebSocket[Any, Any, Any]) -> None:
    """Read (and ignore) what the client sends, until it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")


async def _feed(socket: WebSocket[Any, Any, Any], engine: HallEngine, after: int | None) -> None:
    # Subscribe before reading, so nothing appended in between is missed.
    with engine.bus.subscribe(engine.hall) as subscription:
        if after is None:
            view = await read_snapshot(engine)
            await socket.send_json({"type": "snapshot", "version": view.version, "snapshot": view})
            last = view.version
        else:
            last = await _catch_up(socket, engine, after)
        while True:
            try:
                record = await subscription.get()
            except Lagged:
                last = await _catch_up(socket, engine, last)
                continue
            if record.version > last + 1:
                last = await _catch_up(socket, engine, last)
            if record.version == last + 1:
                await socket.send_json({"type": "event", **public_event(record, engine.config)})
                last = record.version


async def read_snapshot(engine: HallEngine) -> HallSnapshot:
    return await engine.read(lambda s: snapshot(s, estimator(engine)))


async def _catch_up(socket: WebSocket[Any, Any, Any], engine: HallEngine, last: int) -> int:
    while True:
        records = await engine.journal.read(engine.hall, last, CATCH_UP_PAGE)
        for record in records:
            await socket.send_json({"type": "event", **public_event(record, engine.config)})
            last = record.version
        if len(records) < CATCH_UP_PAGE:
            return last
