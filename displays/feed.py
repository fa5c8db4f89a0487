"""The screens' WebSocket feeds: ``/ws/halls/{hall}/screens/hall`` and
``/ws/halls/{hall}/screens/windows/{window}``, query ``after=V`` (resume) and ``token=T``.

Each connection is accepted first, so that a refusal reaches the screen as a message it can show
and a close code it can act on: ``{"type": "error", "error", "message"}`` then 4400 (a bad
``after``), 4401 (a token needed and missing or unknown), 4403 (a token not for this screen),
4404 (no such hall or window), 4429 (too many feeds, screens and event feeds counted together,
on the server or from one address), 1013 (the hall's journal is unavailable: try again), 1001
(the server is stopping), 1008 (the screen sent a message: it has nothing to say; WebSocket
pings are answered), 1009 (a frame over 4 KiB). What is sent is :mod:`displays.hub`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from displays.hub import Client, Hubs
from displays.projection import HallScreen, Projection, WindowScreen
from hall.api import errors, feeds
from hall.api.auth import device_principal
from hall.api.errors import Unauthorized
from hall.api.feeds import Connections
from hall.api.halls import InvalidAfter
from hall.api.service import HallService
from hall.config import HallConfig
from hall.domain.errors import ECHO_CHARS, Forbidden, UnknownWindow, shown
from hall.engine import HallEngine

_VERSION = re.compile(r"[0-9]{1,18}")  # ASCII digits only; 18 fit any journal's int64
# How often a feed with a ``still`` check asks it: a session ended elsewhere closes the feed
# within this (a dict lookup, or one Redis GET, per feed; managers' feeds are a handful).
RECHECK_SECONDS = 1.0
SHUTDOWN_SECONDS = 1.0  # how long a stopping server waits for its screens' close frames


class ShuttingDown(Exception):
    """The server is stopping: a screen connecting now is told to come back (1001)."""


class Screens:
    """The screen feeds of one server: their hubs, their share of the feed caps (counted with
    the event feeds': :mod:`hall.api.feeds`), and their shutdown."""

    def __init__(self, service: HallService, connections: Connections) -> None:
        self.service = service
        self.connections = connections
        self.hubs = Hubs()
        self.total = 0  # screens connected, for the shutdown to wait on
        self.closing = False
        self._gone = asyncio.Event()  # set whenever no screen is connected
        service.metrics.registry.register(_ScreenMetrics(self.hubs))

    def admit(self, address: str) -> None:
        if self.closing:
            raise ShuttingDown
        self.connections.admit(address)
        self.total += 1
        self._gone.clear()

    def release(self, address: str) -> None:
        self.connections.release(address)
        self.total -= 1
        if not self.total:
            self._gone.set()

    async def close(self) -> None:
        """Tell every screen the server is stopping (1001), waiting for them a moment."""
        self.closing = True
        for client in self.hubs.clients():
            client.close()
        if self.total:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), SHUTDOWN_SECONDS)


class _ScreenMetrics(Collector):
    """``hall_screen_connections`` and ``hall_screen_resyncs`` (screens that lagged and got the
    view again) per hall and screen kind, read from the hubs at each scrape."""

    def __init__(self, hubs: Hubs) -> None:
        self.hubs = hubs

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ["hall", "kind"]
        connected = GaugeMetricFamily("hall_screen_connections", "Screen feeds", labels=labels)
        resyncs = CounterMetricFamily(
            "hall_screen_resyncs", "Screens that fell behind and got the view again", labels=labels
        )
        totals: dict[tuple[str, str], list[int]] = {}
        for key, hub in self.hubs.items():
            assert isinstance(key, tuple)
            found = totals.setdefault((str(key[0]), str(key[1])), [0, 0])
            found[0] += len(hub.clients)
            found[1] += hub.resyncs
        for (hall, kind), (clients, lagged) in sorted(totals.items()):
            connected.add_metric([hall, kind], clients)
            resyncs.add_metric([hall, kind], lagged)
        yield from (connected, resyncs)


@websocket("/ws/halls/{hall:str}/screens/hall")
async def hall_screen(socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str]) -> None:
    await serve(socket, state.screens, hall, ("hall",), None, lambda e: HallScreen(e.config))


@websocket("/ws/halls/{hall:str}/screens/windows/{window:str}")
async def window_screen(
    socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str], window: FromPath[str]
) -> None:
    await serve(
        socket,
        state.screens,
        hall,
        ("window", window),
        window,
        lambda engine: WindowScreen(engine.config, window),
        # A window's evaluation pad follows its screen: the staff card, the rating to offer.
        admit=window_devices(socket, window, ("pad",)),
    )


ROUTES = [hall_screen, window_screen]


async def serve(
    socket: WebSocket[Any, Any, Any],
    screens: Screens,
    hall: str,
    kind: tuple[str, ...],
    window: str | None,
    projection: Callable[[HallEngine], Projection[Any]],
    admit: Callable[[HallEngine], Awaitable[None]] | None = None,
    still: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve one screen feed: the hub of ``(hall, *kind)``, made with ``projection`` (of the
    hall's engine: its config, its running service times) when it is the first screen of its
    kind. ``window`` is the window the screen shows, if any (checked
    to exist, and against a device token bound to one). Any screen-like feed (a desk, a
    visitor's ticket) is served by this, with the same caps, frames and close codes.
    ``admit``, if given, replaces the screens' device-token check: it raises to refuse (a
    visitor's unknown ticket: 4404) before any hub is joined, so a refused feed makes none.
    ``still``, if given, is asked every ``RECHECK_SECONDS`` while the feed runs and raises when
    the screen may no longer have it (a manager's session ended): the feed then ends with that
    refusal's close code, as if refused at connect."""
    await socket.accept()
    address = feeds.address(socket)
    try:
        engine = screens.service.engine(hall)
        config = engine.config
        if window is not None and config.window(window) is None:
            raise UnknownWindow(
                f"no window {shown(window)} in this hall", window=window[:ECHO_CHARS]
            )
        if admit is None:
            _check_token(config, socket.query_params.get("token"), window)
        else:
            await admit(engine)
        after = _after(socket.query_params.get("after"))
        screens.admit(address)
    except Exception as exc:
        await _refuse(socket, exc)
        return
    try:
        key = (hall, *kind)
        try:
            client = await screens.hubs.join(engine, key, lambda: projection(engine), after)
        except Exception as exc:
            await _refuse(socket, exc)
            return
        try:
            ended = await _send(socket, client, still)
            if ended is not None:
                await _refuse(socket, ended)
        finally:
            screens.hubs.leave(engine, key, client)
    finally:
        screens.release(address)


async def _send(
    socket: WebSocket[Any, Any, Any], client: Client, still: Callable[[], Awaitable[None]] | None
) -> Exception | None:
    """Send the client's frames until it goes or is closed; the refusal that ended it, if
    ``still`` raised one (the caller sends it)."""
    receiver = asyncio.create_task(feeds.drain(socket))
    receiver.add_done_callback(lambda _: client.close())
    ended: list[Exception] = []
    watcher = asyncio.create_task(_watch(client, still, ended)) if still is not None else None
    try:
        while (frame := await client.next()) is not None:
            await feeds.send(socket, frame)
        if ended:
            return ended[0]
        if not receiver.done():  # closed by us: the server is stopping
            with contextlib.suppress(RuntimeError):  # uvicorn closed it already (feeds.send)
                await socket.close(code=1001, reason="server shutting down")
    except (WebSocketDisconnect, OSError):
        pass  # the screen went away; it reconnects with ?after=
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
            await receiver
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return None


async def _watch(
    client: Client, still: Callable[[], Awaitable[None]], ended: list[Exception]
) -> None:
    """Ask ``still`` every ``RECHECK_SECONDS``; when it refuses, note why and end the feed."""
    while not client.closing:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            await still()
        except Exception as exc:
            ended.append(exc)
            client.close()
            return


async def _refuse(socket: WebSocket[Any, Any, Any], exc: Exception) -> None:
    if isinstance(exc, ShuttingDown):
        code, body = 1001, {"error": "shutting_down", "message": "the server is stopping"}
    else:
        status, body = errors.to_response(exc)
        code = 1013 if status == 503 else 4000 + status
    with contextlib.suppress(WebSocketDisconnect, OSError):
        await socket.send_json(
            {"type": "error", "error": body["error"], "message": body["message"]}
        )
        await socket.close(code=code)


def _check_token(config: HallConfig, token: str | None, window: str | None) -> None:
    """Where the hall requires it, a device token of kind "screen"; one bound to a window opens
    only that window's screen."""
    if not config.screens.require_device:
        return
    if not token:
        raise Unauthorized("this hall's screens need a device token (?token=...)")
    device = device_principal(config, hashlib.sha256(token.encode()).hexdigest())
    if device is None:
        raise Unauthorized("unknown device token")
    # A kiosk follows the hall screen's feed too: the waiting counts on its buttons.
    if device.device_kind not in (("screen", "kiosk") if window is None else ("screen",)):
        raise Forbidden("this token is not a screen's")
    bound = next(d.window for d in config.devices if d.id == device.name)
    if bound is not None and bound != window:
        raise Forbidden("this screen's token opens only its own window's screen")


def window_devices(
    socket: WebSocket[Any, Any, Any], window: str, kinds: tuple[str, ...]
) -> Callable[[HallEngine], Awaitable[None]]:
    """An ``admit`` for :func:`serve`: where the hall requires devices, the screens' tokens and
    also those of ``kinds`` bound to ``window`` (its pad, its caller) open a window's feed."""

    async def admit(engine: HallEngine) -> None:
        config, token = engine.config, socket.query_params.get("token")
        digest = hashlib.sha256(token.encode()).hexdigest() if token else ""
        found = device_principal(config, digest) if config.screens.require_device else None
        device = config.device(found.name) if found is not None else None
        if device is None or device.kind not in kinds:
            _check_token(config, token, window)  # a screen's token, or the screens' refusals
        elif device.window != window:
            raise Forbidden("this device's token opens only its own window's feeds")

    return admit


def _after(text: str | None) -> int | None:
    if text is None:
        return None
    if not _VERSION.fullmatch(text):
        raise InvalidAfter("after must be a version: ASCII digits", after=text[:20])
    return int(text)
