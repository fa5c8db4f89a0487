"""The hall's end of the device link, ``/ws/halls/{hall}/devices``: a ``HallSession``
(devices/session.py) per connection, with thin asyncio I/O around it.

Any device of the hall file may connect with its token (hello): printers get print jobs, speakers
play jobs, the others (kiosk, caller and pad pages, screens) only keep their health. One live
connection per device: a newer one closes the older (4409), whose going is then no news.

Health is journaled (``DeviceReported``): "online" at each hello, a hardware state a printer or
speaker agent reports ("ok" is "online"; from any other kind a ``state`` is a protocol error),
"offline" when the connection ends or falls silent, unless another connection of the device took
over or the server is stopping (the journal keeps "online" then; the devices reconnect to the next
server). At most one report per device per heartbeat is journaled: one that comes sooner waits
for its turn, which journals what holds then (so a device that flaps costs a few entries, and the
journal ends on the truth). A watcher per hall compares, every three heartbeats, what the journal
says with the connections there are, and journals the difference: a device online in the journal
that did not come back after a restart goes offline, and a report that failed while the journal
was out is made good.

What a connection costs (devices/limits.py): until its hello is verified it takes a place only
among the pending hellos (``MAX_PENDING_PER_ADDRESS`` from one address, ``MAX_PENDING`` in all;
beyond, the oldest waiting is closed with 4429), so connections that never say hello lock out
nobody; a verified device then takes its place among the connections screens and event feeds
share (hall/api/feeds.py), or is refused with 4429. A device that said hello
``HELLOS_PER_MINUTE`` times in the last minute is refused (4429) until the oldest is a minute old.

Close codes: those of the protocol (4400 malformed, 4401 bad token, 4408 no hello within
``hello_seconds`` or no heartbeat for three, 1008 a message out of place, or more than
``MAX_FRAMES`` frames in a heartbeat that are not acks of the job sent), 4404 unknown hall, 4409
replaced by a newer connection of the same device, 4429 too many connections (pending hellos, or
the caps shared with screens and event feeds) or too many hellos of one device, 1013 the journal
did not take an ack (the job is sent again on the next connection), 1001 the server is stopping,
1009 a frame over 4 KiB (uvicorn).
Each refusal sends an error frame first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, get_args, get_type_hints

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from devices import jobs
from devices.limits import Pending, Rate
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
    close_reason,
)
from hall.api import errors, feeds
from hall.api.auth import device_principal, token_hash
from hall.api.feeds import Connections, TooManyConnections
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
TOO_MANY: Final = 4429
UNAVAILABLE: Final = 1013
GOING_AWAY: Final = 1001
UVICORN_SHUTDOWN: Final = 1012  # uvicorn closes every WebSocket with this as it stops
# Frames a device may send per heartbeat beside acks of the job sent: a heartbeat and a state
# change or two are all it needs; a device in a loop must not busy the hall's one process.
MAX_FRAMES: Final = 20
PLAYED_KEPT: Final = 256  # a speaker's acked play ids kept, per device
# Connections that have not said hello yet: a hall's devices reconnect together after a restart,
# a few per machine; more from one address is a client that opens and waits.
MAX_PENDING: Final = 256
MAX_PENDING_PER_ADDRESS: Final = 16
# An agent reconnects with a backoff (devices/session.py) and a page on reload: six hellos in a
# minute is a loop, and each one costs a takeover and health reports.
HELLOS_PER_MINUTE: Final = 6
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
        self.pending: Pending[Link] = Pending(MAX_PENDING, MAX_PENDING_PER_ADDRESS)
        self.hellos = Rate(HELLOS_PER_MINUTE, 60.0)  # per (hall, device)
        self.replaced_logs = Rate(1, 60.0)  # "connected again" lines, per (hall, device)
        self.current: dict[tuple[str, str], Link] = {}  # (hall, device) -> its live link
        self.links: set[Link] = set()
        self.played: dict[tuple[str, str], dict[str, None]] = {}  # insertion-ordered sets
        self.closing = False
        self._watchers: list[asyncio.Task[None]] = []
        self._journaled_at: dict[tuple[str, str], float] = {}  # (hall, device) -> its last report
        self._turns: dict[tuple[str, str], asyncio.Task[None]] = {}  # reports waiting their turn
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
        watchers += self._turns.values()
        self._turns = {}
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

    def status(self, hall: str, device: str) -> str:
        """What the live links say of a device."""
        link = self.current.get((hall, device))
        return link.status if link is not None else "offline"

    async def report(self, engine: HallEngine, device: str, status: str) -> None:
        """Journal a device's status, at most once per heartbeat: a report before the device's
        turn leaves it to the turn, which journals what the links say then."""
        if self.closing:
            return
        key = (engine.hall, device)
        now = asyncio.get_running_loop().time()
        turn = self._journaled_at.get(key, -math.inf) + self.heartbeat
        if now < turn:
            if key not in self._turns:
                task = asyncio.create_task(self._turn(engine, device, turn - now))
                self._turns[key] = task
            return
        self._journaled_at[key] = now
        await self._journal(engine, device, status)

    async def _turn(self, engine: HallEngine, device: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._turns.pop((engine.hall, device), None)
        await self.report(engine, device, self.status(engine.hall, device))

    async def _journal(self, engine: HallEngine, device: str, status: str) -> None:
        """A journal that is out is retried by the watcher."""
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
            wanted = self.status(engine.hall, device.id)
            if journaled.get(device.id, "offline") != wanted:
                await self.report(engine, device.id, wanted)


@websocket("/ws/halls/{hall:str}/devices")
async def device_link(socket: WebSocket[Any, Any, Any], state: State, hall: FromPath[str]) -> None:
    await serve(socket, state.devices, hall)


ROUTES = [device_link]


async def serve(socket: WebSocket[Any, Any, Any], links: DeviceLinks, hall: str) -> None:
    await socket.accept()
    try:
        if links.closing:
            raise ShuttingDown
        engine = links.service.engine(hall)
    except Exception as exc:
        await _refuse(socket, exc)
        return
    link = Link(links, engine, socket, feeds.address(socket), base_url(engine.config, socket))
    pushed = links.pending.add(link, link.address)
    if pushed is not None:
        pushed.kick(TOO_MANY, "too_many_connections", _PUSHED)
    links.joined(link)
    try:
        await link.run()
    finally:
        link.detach()
        links.left(link)
        link.leave()


class Link:
    """One device connection: the session, the jobs the hall's batches offer it, and the I/O."""

    def __init__(
        self,
        links: DeviceLinks,
        engine: HallEngine,
        socket: WebSocket[Any, Any, Any],
        address: str,
        base_url: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.links = links
        self.engine = engine
        self.hall = engine.hall
        self.socket = socket
        self.address = address
        self.admitted = False  # counted in the shared caps (after its hello), else pending
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
                    text = message.get("text")
                    frame = text if text is not None else message.get("bytes") or b""
                    effects += self._received(frame, now)
                effects += session.tick(now)
                if not await self._apply(effects) or not await self._fill():
                    return
        except (WebSocketDisconnect, OSError, TimeoutError):
            await self._lost(None)  # gone while being sent to
        finally:
            receiving.cancel()
            if receiving.done() and not receiving.cancelled():
                receiving.exception()  # retrieved: a receive after the end is no news

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
                    refused = self._admit(device)
                    if refused is not None:
                        return await self._apply(self._end(TOO_MANY, *refused, offline=False))
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

    def _admit(self, device: DeviceInfo) -> tuple[str, str] | None:
        """Move the verified device from the pending hellos to the shared caps; (error, message)
        if it said hello too often lately or the caps are full."""
        links = self.links
        now = asyncio.get_running_loop().time()
        wait = links.hellos.take((self.hall, device.device), now)
        if wait:
            return "too_many_hellos", (
                f"more than {links.hellos.limit} hellos of this device in "
                f"{links.hellos.seconds:g} s: connect again in {math.ceil(wait)} s"
            )
        try:
            links.connections.admit(self.address)
        except TooManyConnections as exc:
            return exc.code, exc.message
        links.pending.remove(self)
        self.admitted = True
        return None

    def leave(self) -> None:
        """Give back its place, among the shared caps or the pending hellos."""
        if self.admitted:
            self.admitted = False
            self.links.connections.release(self.address)
        else:
            self.links.pending.remove(self)

    async def _online(self, device: DeviceInfo) -> bool:
        """Take over the device's link, read its pending jobs and watch for new ones, journal it
        online. False if the journal cannot be read."""
        self.device = device
        old = self.links.claim(self, device.device)
        if old is not None:
            # One line a minute: a device in a reconnect loop must not fill the log either.
            now = asyncio.get_running_loop().time()
            if not self.links.replaced_logs.take((self.hall, device.device), now):
                log.warning(
                    "device %s connected again: closing its older connection", device.device
                )
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
                name = self.device.device
                log.warning("device %s: ack of %s not journaled: %s", name, job_id, exc)
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
        return [
            Send(Error(error=error, message=message)),
            *lost,
            Close(code, close_reason(message)),
        ]

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
_PUSHED = "too many connections wait for their hello (from this address or in all): oldest first"


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
