"""Fan-out to screens: one hub per (hall, kind[, window]), fed by the engine after each batch.

A hub holds the current view of its screen kind. After each durable batch the engine calls
:meth:`ScreenHub.publish` synchronously (its state is exactly the batch's): the hub projects the
new view once, the delta once, encodes the delta frame once, keeps it in a ring of the last
``RING`` deltas (for resuming clients), and offers the same string to every client. A client's
queue is bounded (``QUEUE`` frames): one that falls that far behind is never waited for; its
backlog is dropped and it gets the current full view when it next sends (a resync). The full
view is encoded lazily, once per version. A hall with no screens has no hub: hubs are made when
the first client of their kind connects, from the state at that moment, and dropped ``LINGER``
seconds after the last one leaves (a screen that blinks resumes from the ring).

Frames (JSON text): ``{"type": "view", "version", "now", "view"}``, ``{"type": "delta", "from",
"version", "now", "changes"}``, ``{"type": "ping", "version", "now"}`` (after ``PING_SECONDS``
with nothing else sent, give or take ``PING_CHECK_SECONDS``, and at once to a client that resumes
already current).

A projection whose view changes with time alone (a desk's call order: under the weighted policy
a ticket's claim grows at its category's own rate, so two categories' heads can swap with no
event) sets ``refresh_seconds``: while its hub has clients, it is projected again that often
(under ``engine.read``, on durable state only) and, if the view changed, a delta goes out whose
``from`` and ``version`` are both the hall's current version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Any, Generic

import msgspec

from displays.projection import Projection, V
from hall.api.halls import InvalidAfter
from hall.domain.state import HallState
from hall.engine import HallEngine
from hall.journal.base import JournalError, Recorded

log = logging.getLogger(__name__)

RING = 256  # delta frames kept for resuming clients
QUEUE = 32  # frames a client may have waiting before it is resynced instead
PING_SECONDS = 10.0
# How often a hub looks for clients to ping: one timer per hub, not one per client (a timeout
# around each client's wait cost 15% of the server's CPU with 1,000 screens).
PING_CHECK_SECONDS = 1.0
LINGER = 30.0  # seconds a hub outlives its last client, so a screen that blinks resumes

_encoder = msgspec.json.Encoder()


def _time(moment: datetime) -> str:
    return _encoder.encode(moment).decode()


class Client:
    """One connected screen: the frames waiting for it, at most ``QUEUE`` (plus a resume's)."""

    __slots__ = ("_waiter", "closing", "extra", "frames", "hub", "resync", "sent", "stale")

    def __init__(self, hub: ScreenHub[Any]) -> None:
        self.hub = hub
        self.frames: deque[str] = deque()
        self.resync = True  # the next frame is the full view (a new client, or one that lagged)
        self.extra = 0  # frames of a resume's chain still queued, allowed beyond QUEUE
        self.closing = False
        self.sent = time.monotonic()  # when it was last handed a frame
        self.stale = False  # told that the hall's copy here may be out of date
        # What next() awaits when there is nothing to send. A bare future rather than an
        # asyncio.Event: publish() wakes every screen of a hub for each batch, and the Event's
        # waiter list and loop checks cost more than the wake itself (bench/screens.py).
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, frame: str) -> None:
        if self.resync:
            return  # the view it will get includes this
        if len(self.frames) >= QUEUE + self.extra:
            self.restart()
            return
        self.frames.append(frame)
        self._wake()

    def restart(self) -> None:
        """Drop what is queued: the next frame is the view."""
        if not self.resync:
            self.hub.resyncs += 1
        self.frames.clear()
        self.extra = 0
        self.resync = True
        self._wake()

    def close(self) -> None:
        self.closing = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> str | None:
        """The next frame to send; None once closed."""
        while not self.closing:
            if self.resync:
                self.resync = False
                self.frames.clear()
                self.sent = time.monotonic()
                return self.hub.view_frame()
            if self.frames:
                if self.extra:
                    self.extra -= 1
                self.sent = time.monotonic()
                return self.frames.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return None


class ScreenHub(Generic[V]):
    """The view of one screen kind, its recent deltas and its clients (see the module)."""

    def __init__(
        self,
        projection: Projection[V],
        state: HallState,
        clock: Callable[[], datetime],
        fresh: Callable[[], bool] = lambda: True,
    ) -> None:
        self.projection = projection
        self.clock = clock
        self.fresh = fresh  # False while this process cannot know the hall is current
        self.view: V = projection.view(state, clock())
        self.version = state.version
        self.ring: deque[tuple[int, str]] = deque(maxlen=RING)  # (from version, delta frame)
        self.clients: set[Client] = set()
        self.resyncs = 0  # clients that lagged and got the view again
        self._view_json: str | None = None
        self._drop: asyncio.TimerHandle | None = None
        self._pinger: asyncio.TimerHandle | None = None
        self.refresh_seconds: float | None = getattr(projection, "refresh_seconds", None)
        self.refresher: asyncio.Task[None] | None = None

    def publish(self, state: HallState, records: Sequence[Recorded]) -> None:
        """The engine's after-batch hook: project, diff and encode once; offer to every client."""
        now = records[-1].event.at
        new = self.projection.view(state, now)
        first = records[0].version
        if first <= self.version:  # versions that went back (the engine refuses that): afresh
            log.warning("screen hub at %d got versions from %d", self.version, first)
            self.view, self.version, self._view_json = new, state.version, None
            self.ring.clear()
            for client in self.clients:
                client.restart()
            return
        if first > self.version + 1:
            log.info("screen hub at %d got versions from %d: one delta", self.version, first)
        # A gap (first > version + 1): the engine replayed batches after a journal outage
        # without publishing them. Still one delta from our version, its calls all the new
        # ones since (a view would announce none of them), so the chain stays whole.
        changes = self.projection.changes(self.view, new, state, records, self.version)
        frame = _encoder.encode(
            {
                "type": "delta",
                "from": self.version,
                "version": state.version,
                "now": now,
                "changes": changes,
            }
        ).decode()
        self.ring.append((self.version, frame))
        self.view, self.version, self._view_json = new, state.version, None
        for client in self.clients:
            client.offer(frame)

    def refresh(self, state: HallState) -> None:
        """Project again at the clock's time, with no new event (see the module); a delta to
        every client if the view changed. Run under ``engine.read``: the state is durable and
        its version is the hub's."""
        now = self.clock()
        new = self.projection.view(state, now)
        if new == self.view:
            return
        changes = self.projection.changes(self.view, new, state, [], self.version)
        frame = _encoder.encode(
            {
                "type": "delta",
                "from": self.version,
                "version": self.version,
                "now": now,
                "changes": changes,
            }
        ).decode()
        self.ring.append((self.version, frame))
        self.view, self._view_json = new, None
        for client in self.clients:
            client.offer(frame)

    def view_frame(self) -> str:
        if self._view_json is None:
            self._view_json = _encoder.encode(self.view).decode()
        return (
            f'{{"type":"view","version":{self.version},"now":{_time(self.clock())},'
            f'"view":{self._view_json}}}'
        )

    def stale_frame(self) -> str:
        return f'{{"type":"stale","version":{self.version},"now":{_time(self.clock())}}}'

    def ping_frame(self) -> str:
        return f'{{"type":"ping","version":{self.version},"now":{_time(self.clock())}}}'

    def join(self, after: int | None) -> Client:
        """A new client: it gets the view, or (``after`` = a version it has) the deltas since
        from the ring, or a ping if it is current; the view if the ring no longer reaches back."""
        client = Client(self)
        if after == self.version:
            client.resync = False
            client.frames.append(self.ping_frame())
        elif after is not None:
            chain = self._chain(after)
            if chain is not None:
                client.resync = False
                client.frames.extend(chain)
                client.extra = len(chain)
        self.clients.add(client)
        if self._drop is not None:
            self._drop.cancel()
            self._drop = None
        if self._pinger is None:
            self._pinger = asyncio.get_running_loop().call_later(PING_CHECK_SECONDS, self._ping)
        return client

    def _ping(self) -> None:
        """Ping each client that was sent nothing for ``PING_SECONDS`` (one frame for all)."""
        if not self.clients:
            self._pinger = None
            return
        idle = time.monotonic() - PING_SECONDS
        fresh = self.fresh()
        frame = None
        for client in self.clients:
            if client.resync:
                continue
            if not fresh:  # the page shows it is stale at once, not after a silence
                if not client.stale:
                    client.stale = True
                    client.offer(self.stale_frame())
            elif client.stale or (client.sent <= idle and not client.frames):
                client.stale = False
                frame = frame or self.ping_frame()
                client.offer(frame)
        self._pinger = asyncio.get_running_loop().call_later(PING_CHECK_SECONDS, self._ping)

    def _chain(self, after: int) -> list[str] | None:
        for index, (start, _) in enumerate(self.ring):
            if start == after:
                return [frame for _, frame in list(self.ring)[index:]]
            if start > after:
                break
        return None


Key = Hashable


class Hubs:
    """The hubs of one server by key ((hall, kind[, window])), made at their first client."""

    def __init__(self) -> None:
        self._hubs: dict[Key, ScreenHub[Any]] = {}

    def __len__(self) -> int:
        return len(self._hubs)

    def get(self, key: Key) -> ScreenHub[Any] | None:
        return self._hubs.get(key)

    async def join(
        self,
        engine: HallEngine,
        key: Key,
        projection: Callable[[], Projection[Any]],
        after: int | None,
    ) -> Client:
        """A client of the hub ``key`` (made now from the engine's durable state if there is
        none). Raises InvalidAfter if ``after`` is beyond the hall's version, JournalError if the
        state cannot be read."""

        def attach(state: HallState) -> Client:
            # Under the engine's lock, with no await: no batch can slip between the hub's view
            # and its hook (engine.read runs this between batches).
            if after is not None and after > state.version:
                raise InvalidAfter(f"after must be a version 0..{state.version}", after=after)
            hub = self._hubs.get(key)
            if hub is None:
                hub = ScreenHub(projection(), state, engine.clock, engine.fresh)
                self._hubs[key] = hub
                engine.after_batch.append(hub.publish)
            return hub.join(after)

        client: Client = await engine.read(attach)
        hub = client.hub
        if hub.refresh_seconds and hub.refresher is None:
            hub.refresher = asyncio.create_task(self._refresh(engine, hub, hub.refresh_seconds))
        return client

    @staticmethod
    async def _refresh(engine: HallEngine, hub: ScreenHub[Any], seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            with contextlib.suppress(JournalError):  # the next turn tries again
                await engine.read(hub.refresh)

    def leave(self, engine: HallEngine, key: Key, client: Client) -> None:
        client.close()
        hub = self._hubs.get(key)
        if hub is None or client.hub is not hub:
            return
        hub.clients.discard(client)
        if not hub.clients and hub.refresher is not None:
            hub.refresher.cancel()
            hub.refresher = None
        if not hub.clients and hub._drop is None:
            loop = asyncio.get_running_loop()
            hub._drop = loop.call_later(LINGER, self._forget, engine, key, hub)

    def _forget(self, engine: HallEngine, key: Key, hub: ScreenHub[Any]) -> None:
        if hub.clients or self._hubs.get(key) is not hub:
            return
        del self._hubs[key]
        with contextlib.suppress(ValueError):
            engine.after_batch.remove(hub.publish)

    def items(self) -> list[tuple[Key, ScreenHub[Any]]]:
        return list(self._hubs.items())

    def clients(self) -> list[Client]:
        return [client for hub in self._hubs.values() for client in hub.clients]
