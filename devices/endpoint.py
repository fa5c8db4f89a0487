"""The hall's end of the device link, ``/ws/halls/{hall}/devices``: a ``HallSession``
(devices/session.py) per connection, with thin asyncio I/O around it.

Any device of the hall file may connect with its token (hello): printers get print jobs, speakers
play jobs, the others (kiosk, caller and pad pages, screens) only keep their health. One live
connection per device: a newer one closes the older (4409), whose going is then no news.

Health is journaled (``DeviceReported``): "online" at each hello, a hardware state the agent
reports ("ok" is "online"), "offline" when the connection ends or falls silent, unless another
connection of the device took over or the server is stopping (the journal keeps "online" then;
the devices reconnect to the next server). A watcher per hall compares, every three heartbeats,
what the journal says with the connections there are, and journals the difference: a device
online in the journal that did not come back after a restart goes offline, and a report that
failed while the journal was out is made good.

Close codes: those of the protocol (4400 malformed, 4401 bad token, 4408 no hello within
``hello_seconds`` or no heartbeat for three, 1008 a message out of place, or more than
``MAX_FRAMES`` frames in a heartbeat that are not acks of the job sent), 4404 unknown hall, 4409
replaced by a newer connection of the same device, 4429 too many connections (counted with the
screens and event feeds: hall/api/feeds.py), 1013 the journal did not take an ack (the job is sent
again on the next connection), 1001 the server is stopping, 1009 a frame over 4 KiB (uvicorn).
Each refusal sends an error frame first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, get_args, get_type_hints

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from devices import jobs
from devices.protocol import Error, Job, Print, encode
from devices.session import (
    SILENT_BEATS,
    Acked,
    Close,
    DeviceInfo,
    Effect,
    HallSession,
    Online,
    Reported,
    Send,
)
from hall.api import errors, feeds
from hall.api.auth import device_principal, token_hash
from hall.api.feeds import Connections
from hall.api.service import HallService, estimator
from hall.config import Device, HallConfig
from hall.domain.commands import MarkPrinted, ReportDevice
from hall.domain.errors import HallError
from hall.domain.state import HallState
from hall.engine import HallEngine
from hall.journal.base import JournalError, Recorded

log = logging.getLogger(__name__)

HELLO_SECONDS: Final = 5.0
RETRY: Final = 5.0
SHUTDOWN_SECONDS: Final = 1.0  # how long a stopping server waits for its links to close
REPLACED: Final = 4409
UNAVAILABLE: Final = 1013
GOING_AWAY: Final = 1001
UVICORN_SHUTDOWN: Final = 1012  # uvicorn closes every WebSocket with this as it stops
# Frames a device may send per heartbeat beside acks of the job sent: a heartbeat and a state
# change or two are all it needs; a device in a loop must not busy the hall's one process.
MAX_FRAMES: Final = 20
PLAYED_KEPT: Final = 256  # a speaker's acked play ids kept, per device
KINDS: Final = frozenset(get_args(get_type_hints(Device)["kind"]))
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,100}")


class ShuttingDown(Exception):
    pass


class DeviceLinks:
    """The device links of one server: which connection is each device's, the speakers' played
    jobs, the health watchers, and the shutdown. Timings are attributes (tests shorten them)."""

    def __init__(self, service: HallService, connections: Connections) -> None:
        self.service = service
        self.connections = connections
        self.heartbeat = service.settings.device_heartbeat
        self.hello_seconds = HELLO_SECONDS
        self.retry = RETRY
        self.current: dict[tuple[str, str], Link] = {}  # (hall, device) -> its live link
        self.links: set[Link] = set()
        self.played: dict[tuple[str, str], dict[str, None]] = {}  # insertion-ordered sets
        self.closing = False
        self._watchers: list[asyncio.Task[None]] = []
        self._gone = asyncio.Event()

    def start(self) -> None:
        """One health watcher per hall (after the halls started)."""
        self.closing = False
        for engine in self.service.engines.values():
            task = asyncio.create_task(self._watch(engine), name=f"device-health-{engine.hall}")
            self._watchers.append(task)

    async def close(self) -> None:
        """Close every link with 1001, journaling nothing; stop the watchers. Idempotent."""
        self.closing = True
        watchers, self._watchers = self._watchers, []
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for link in list(self.links):
            link.kick(GOING_AWAY, "shutting_down", "the server is stopping")
        if self.links:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), SHUTDOWN_SECONDS)

    def joined(self, link: Link) -> None:
        self.links.add(link)
        self._gone.clear()

    def left(self, link: Link) -> None:
        self.links.discard(link)
        if not self.links:
            self._gone.set()

    def claim(self, link: Link, device: str) -> Link | None:
        """Make ``link`` the device's live one; returns the one it replaces."""
        key = (link.hall, device)
        old = self.current.get(key)
        self.current[key] = link
        return old if old is not link else None

    def unclaim(self, link: Link) -> bool:
        """Forget ``link`` as its device's live one; False if it was not (any more)."""
        if link.device is None:
            return False
        key = (link.hall, link.device.device)
        if self.current.get(key) is not link:
            return False
        del self.current[key]
        return True

    def is_current(self, link: Link) -> bool:
        return link.device is not None and self.current.get((link.hall, link.device.device)) is link

    def play_done(self, hall: str, device: str, job_id: str) -> None:
        done = self.played.setdefault((hall, device), {})
        done[job_id] = None
        while len(done) > PLAYED_KEPT:
            del done[next(iter(done))]

    async def report(self, engine: HallEngine, device: str, status: str) -> None:
        """Journal a device's status; a journal that is out is retried by the watcher."""
        try:
            await engine.execute(ReportDevice(device=device, status=status))
        except (JournalError, HallError) as exc:
            log.warning("device %s: %s not journaled: %s", device, status, exc)

    async def _watch(self, engine: HallEngine) -> None:
        while True:
            await asyncio.sleep(SILENT_BEATS * self.heartbeat)
            with contextlib.suppress(JournalError):
                await self.reconcile(engine)

    async def reconcile(self, engine: HallEngine) -> None:
        """Journal each device's status where the journal differs from the links there are."""
        journaled = await engine.read(lambda s: {d: h.status for d, h in s.devices.items()})
        for device in engine.config.devices:
            if self.closing:
                return
            # Looked up after each await: what is journaled is what holds as it is queued.
            link = self.current.get((engine.hall, device.id))
            wanted = link.status if link is not None else "offline"
            if journaled.get(device.id, "offline") != wanted:
                await self.report(engine, device.id, wanted)


@websocket("/ws/halls/{hall:str}/devices")
async def device_link(socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str]) -> None:
    await serve(socket, state.devices, hall)


ROUTES = [device_link]


async def serve(socket: WebSocket[Any, Any, Any], links: DeviceLinks, hall: str) -> None:
    await socket.accept()
    address = feeds.address(socket)
    try:
        if links.closing:
            raise ShuttingDown
        engine = links.service.engine(hall)
        links.connections.admit(address)
    except Exception as exc:
        await _refuse(socket, exc)
        return
    try:
        link = Link(links, engine, socket, base_url(engine.config, socket))
        links.joined(link)
        try:
            await link.run()
        finally:
            link.detach()
            links.left(link)
    finally:
        links.connections.release(address)


class Link:
    """One device connection: the session, the jobs the hall's batches offer it, and the I/O."""

    def __init__(
        self,
        links: DeviceLinks,
        engine: HallEngine,
        socket: WebSocket[Any, Any, Any],
        base_url: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.links = links
        self.engine = engine
        self.hall = engine.hall
        self.socket = socket
        self.base_url = base_url
        self.session = HallSession(
            now=loop.time(),
            authenticate=self._authenticate,
            kinds=KINDS,
            heartbeat=links.heartbeat,
            hello_seconds=links.hello_seconds,
            retry=links.retry,
        )
        self.device: DeviceInfo | None = None
        self.status = "online"  # what this link says of its device, once it said hello
        self._offers: list[Job] = []  # from the hall's batches, for the loop to hand the session
        # A printer's tickets to print, oldest first: each job is made as the one before is acked
        # (so its place and wait are current, and a reconnect with thousands waiting makes one).
        self._backlog: deque[str] = deque()
        self._wakeup: asyncio.Future[None] = loop.create_future()
        self._ending: tuple[int, str, str] | None = None  # (code, error, message) from outside
        self._hooked = False
        self._frames = 0
        self._frames_since = loop.time()

    def kick(self, code: int, error: str, message: str) -> None:
        """End this link from another task (replaced, or the server stopping)."""
        if self._ending is None:
            self._ending = (code, error, message)
        self.detach()
        self._wake()

    def detach(self) -> None:
        """No more jobs for this link; it is no longer its device's live one."""
        if self._hooked:
            self._hooked = False
            with contextlib.suppress(ValueError):
                self.engine.after_batch.remove(self._on_batch)
        self.links.unclaim(self)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        session = self.session
        receiving: asyncio.Future[Any] = asyncio.ensure_future(self.socket.receive())
        try:
            while True:
                wake = session.deadline()
                timeout = None if wake is None else max(0.0, wake - loop.time())
                waits: set[asyncio.Future[Any]] = {receiving, self._wakeup}
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                now = loop.time()
                if self._ending is not None:
                    await self._apply(self._end(*self._ending, offline=False))
                    return
                effects: list[Effect] = []
                if self._wakeup.done():
                    self._wakeup = loop.create_future()
                    offers, self._offers = self._offers, []
                    for job in offers:
                        effects += session.offer(job, now)
                if receiving.done():
                    message: dict[str, Any] = receiving.result()
                    if message["type"] == "websocket.disconnect":
                        await self._lost(message.get("code"))
                        return
                    receiving = asyncio.ensure_future(self.socket.receive())
                    frame = message.get("text")
                    effects += self._received(frame if frame is not None else message["bytes"], now)
                effects += session.tick(now)
                if not await self._apply(effects) or not await self._fill():
                    return
        except (WebSocketDisconnect, OSError, TimeoutError):
            await self._lost(None)  # gone while being sent to
        finally:
            receiving.cancel()

    # -- what the session's effects do ---------------------------------------------------------

    async def _apply(self, effects: Sequence[Effect]) -> bool:
        """Perform the effects in order; False once the link is to end."""
        for effect in effects:
            match effect:
                case Send(message=message):
                    async with asyncio.timeout(SILENT_BEATS * self.links.heartbeat):
                        await feeds.send(self.socket, encode(message))
                case Close(code=code, reason=reason):
                    await self._close(code, reason)
                    return False
                case Online(device=device):
                    if not await self._online(device):
                        return await self._apply(
                            self._end(UNAVAILABLE, "unavailable", _UNAVAILABLE, offline=False)
                        )
                case Reported(status=status):
                    await self._report("online" if status == "ok" else status)
                case Acked(job_id=job_id):
                    if not await self._acked(job_id):
                        return await self._apply(
                            self._end(UNAVAILABLE, "unavailable", _UNAVAILABLE, offline=False)
                        )
        return True

    async def _online(self, device: DeviceInfo) -> bool:
        """Take over the device's link, read its pending jobs and watch for new ones, journal it
        online. False if the journal cannot be read."""
        self.device = device
        old = self.links.claim(self, device.device)
        if old is not None:
            log.warning("device %s connected again: closing its older connection", device.device)
            old.kick(REPLACED, "replaced", "a newer connection of this device took over")
        try:
            await self.engine.read(self._attach)
        except JournalError as exc:
            log.warning("device %s: its jobs cannot be read: %s", device.device, exc)
            return False
        await self._report("online")
        return True

    async def _fill(self) -> bool:
        """Give the session a printer's next job once it has none; False if the link ends."""
        session = self.session
        while self._backlog and not session.pending and not session.closed:
            ticket = self._backlog[0]
            try:
                job = await self.engine.read(functools.partial(self._print, ticket=ticket))
            except JournalError:
                return await self._apply(
                    self._end(UNAVAILABLE, "unavailable", _UNAVAILABLE, offline=False)
                )
            self._backlog.popleft()
            if job is not None and self._ending is None:
                loop = asyncio.get_running_loop()
                return await self._apply(session.offer(job, loop.time()))
        return True

    async def _report(self, status: str) -> None:
        if self.device is None or self.links.closing:
            return
        if status == "offline":
            if not self.links.unclaim(self):
                return  # replaced by a newer connection, which speaks for the device now
        elif not self.links.is_current(self):
            return
        else:
            self.status = status
        await self.links.report(self.engine, self.device.device, status)

    async def _acked(self, job_id: str) -> bool:
        """Record a done job. False if the journal did not take it: the job stays to print, and
        the link closes (1013), so the next connection sends it again."""
        assert self.device is not None
        if self.device.kind == "printer":
            command = MarkPrinted(ticket=job_id, printer=self.device.device)
            try:
                await self.engine.execute(command)
            except JournalError as exc:
                log.warning("device %s: ack of %s not journaled: %s", self.device, job_id, exc)
                return False
        elif self.device.kind == "speaker":
            self.links.play_done(self.hall, self.device.device, job_id)
        return True

    async def _lost(self, code: int | None) -> None:
        """The connection ended under the link. uvicorn's own close at shutdown is no news."""
        lost = self.session.connection_lost()
        if code == UVICORN_SHUTDOWN:
            return
        for effect in lost:
            if isinstance(effect, Reported):
                await self._report(effect.status)

    def _end(self, code: int, error: str, message: str, *, offline: bool) -> list[Effect]:
        """The effects of closing the link on the hall's own account."""
        lost = self.session.connection_lost()
        if not offline:
            self.links.unclaim(self)  # no news: the device is back soon, or the watcher tells
            lost = []
        return [Send(Error(error=error, message=message)), *lost, Close(code, message)]

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(feeds.CLOSE_SECONDS):
                await self.socket.close(code=code, reason=reason)

    def _received(self, frame: str | bytes, now: float) -> list[Effect]:
        effects = self.session.receive(frame, now)
        if any(isinstance(effect, Acked) for effect in effects):
            return effects
        if now >= self._frames_since + self.links.heartbeat:
            self._frames, self._frames_since = 0, now
        self._frames += 1
        if self._frames > MAX_FRAMES and not self.session.closed:
            message = f"more than {MAX_FRAMES} frames in {self.links.heartbeat:g} s"
            return [*effects, *self._end(1008, "too_many_frames", message, offline=True)]
        return effects

    # -- jobs -------------------------------------------------------------------------------------

    def _authenticate(self, token: str) -> DeviceInfo | None:
        config = self.engine.config
        principal = device_principal(config, token_hash(token))
        if principal is None or principal.device_kind is None:
            return None
        defined = config.device(principal.name)
        window = defined.window if defined is not None else None
        return DeviceInfo(device=principal.name, kind=principal.device_kind, window=window)

    def _attach(self, state: HallState) -> None:
        """Under the engine's lock, with no await: the jobs pending now, and a hook for those of
        every later batch (none can slip in between)."""
        device = self.device
        if device is None or self._ending is not None or device.kind not in ("printer", "speaker"):
            return
        if device.kind == "printer":
            self._backlog.extend(state.printing.get(device.device, ()))
        else:
            played = self.links.played.get((self.hall, device.device), {})
            self._offers += jobs.recent_plays(state, self.engine.clock(), played)
        self.engine.after_batch.append(self._on_batch)
        self._hooked = True
        self._wake()

    def _on_batch(self, state: HallState, records: Sequence[Recorded]) -> None:
        device = self.device
        assert device is not None
        if device.kind == "printer":
            issued = jobs.issued_for(records, device.device)
            if issued:
                self._backlog.extend(issued)
                self._wake()
        else:
            self._offer(jobs.new_plays(state, records))

    def _print(self, state: HallState, ticket: str) -> Print | None:
        assert self.device is not None
        return jobs.print_job(
            state, ticket, self.device.device, estimator(self.engine), self.base_url
        )

    def _offer(self, offered: Sequence[Job]) -> None:
        if offered:
            self._offers += offered
            self._wake()

    def _wake(self) -> None:
        if not self._wakeup.done():
            self._wakeup.set_result(None)


_UNAVAILABLE = "the hall's journal is unavailable; connect again later"


def base_url(config: HallConfig, socket: WebSocket[Any, Any, Any]) -> str:
    """Where visitors' phones reach the hall: ``hall.public_url``, else the address the device
    connected to (its Host header; the server's own address if that is not a plain host)."""
    if config.hall.public_url:
        return config.hall.public_url
    host = socket.headers.get("host", "")
    if not _HOST.fullmatch(host):
        server = socket.scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "127.0.0.1"
    return f"http://{host}"


async def _refuse(socket: WebSocket[Any, Any, Any], exc: Exception) -> None:
    if isinstance(exc, ShuttingDown):
        code, error, message = GOING_AWAY, "shutting_down", "the server is stopping"
    else:
        status, body = errors.to_response(exc)
        code = UNAVAILABLE if status == 503 else 4000 + status
        error, message = body["error"], body["message"][:200]
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError, TimeoutError):
        async with asyncio.timeout(feeds.CLOSE_SECONDS):
            await feeds.send(socket, encode(Error(error=error, message=message)))
            await socket.close(code=code)
