"""Both ends of one device link as pure state machines, in the manner of python-websockets'
sans-I/O core: frames and the time go in (``receive``, ``tick``, and a few calls of the owner),
a list of effects comes out, and the caller performs them in order. No I/O, no clock, no
randomness: the I/O shells (devices/link.py for agents, the hall's device endpoint) own those,
and the tests drive the whole protocol without a socket.

``deadline()`` on either side is the time by which ``tick`` has something to do, so a shell
can sleep exactly until then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from devices.protocol import (
    CLOSE_CODES,
    Ack,
    Error,
    Heartbeat,
    Hello,
    Job,
    Message,
    Play,
    Print,
    ProtocolError,
    State,
    Status,
    Welcome,
    decode,
)

SILENT_BEATS = 3  # heartbeats missed before a link counts as dead
# The kinds with hardware behind an agent; a page (kiosk, pad, caller, screen) has none to report.
HARDWARE_KINDS = frozenset({"printer", "speaker"})


# -- effects --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    message: Message


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code; nothing more comes from the session."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Online:
    """hall: the device authenticated (record it online)."""

    device: DeviceInfo


@dataclass(frozen=True, slots=True)
class Reported:
    """hall: the device's status changed: a hardware state from a ``state`` message, or
    "offline" once when an online device's connection ends for whatever reason."""

    status: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Acked:
    """hall: the device did this job (journal it before anything else depends on it)."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Perform:
    """agent: do this job, then call ``done`` or ``failed``."""

    job: Job


@dataclass(frozen=True, slots=True)
class Reconnect:
    """agent: drop this connection and connect again (after a backoff)."""

    reason: str


Effect = Send | Close | Online | Reported | Acked | Perform | Reconnect


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the hall knows of a device token."""

    device: str
    kind: str
    window: str | None = None


def close_reason(text: str) -> str:
    # A close frame's reason is at most 123 bytes of UTF-8.
    return text.encode()[:120].decode(errors="ignore")


def _parse(frame: str | bytes | Message) -> Message:
    return decode(frame) if isinstance(frame, str | bytes) else frame


# -- the hall's side ------------------------------------------------------------------------------


class HallSession:
    """The hall's side of one device connection, from accept to close.

    ``authenticate`` maps a token to the device it belongs to (None: no such token); ``kinds``
    are the device kinds this endpoint serves. Jobs go out one at a time in the order offered;
    the next leaves when the device acks the one before, and an unacked job is sent again every
    ``retry`` seconds. Jobs offered before the hello wait for the welcome.
    """

    def __init__(
        self,
        *,
        now: float,
        authenticate: Callable[[str], DeviceInfo | None],
        kinds: Collection[str],
        heartbeat: float = 10.0,
        hello_seconds: float = 5.0,
        retry: float = 5.0,
    ) -> None:
        self._authenticate = authenticate
        self._kinds = kinds
        self.heartbeat = heartbeat
        self._hello_by = now + hello_seconds
        self._retry = retry
        self.device: DeviceInfo | None = None
        self.closed = False
        self._queue: list[Job] = []  # the first is in flight once sent
        self._queued: set[str] = set()
        self._acked: set[str] = set()
        self._sent_at: float | None = None  # when the job in flight last went out
        self._last_sent = now
        self._last_heard = now

    @property
    def in_flight(self) -> str | None:
        return self._queue[0].id if self._queue and self._sent_at is not None else None

    @property
    def pending(self) -> list[str]:
        """The ids of the jobs not yet acked, the one in flight first."""
        return [job.id for job in self._queue]

    def offer(self, job: Job, now: float) -> list[Effect]:
        """Queue a job unless one with its id is queued or was acked on this connection."""
        if self.closed or job.id in self._queued or job.id in self._acked:
            return []
        self._queue.append(job)
        self._queued.add(job.id)
        return self._send_next(now)

    def receive(self, frame: str | bytes | Message, now: float) -> list[Effect]:
        if self.closed:
            return []
        try:
            message = _parse(frame)
        except ProtocolError as error:
            return self._close(error.code, error.message)
        self._last_heard = now
        if self.device is None:
            if not isinstance(message, Hello):
                return self._close("protocol", f"expected hello, got {type(message).__name__}")
            return self._hello(message, now)
        match message:
            case Heartbeat():
                return []
            case Ack(id=job_id):
                return self._ack(job_id, now)
            case State(status=status, detail=detail):
                if self.device.kind not in HARDWARE_KINDS:
                    kind = self.device.kind
                    return self._close("protocol", f"a {kind} has no hardware state to report")
                return [Reported(status, detail)]
            case _:
                return self._close("protocol", f"a device does not send {type(message).__name__}")

    def tick(self, now: float) -> list[Effect]:
        if self.closed:
            return []
        if self.device is None:
            if now >= self._hello_by:
                return self._close("timeout", "no hello in time")
            return []
        if now >= self._last_heard + SILENT_BEATS * self.heartbeat:
            return self._close("timeout", "no heartbeat from the device")
        effects: list[Effect] = []
        if self._sent_at is not None and now >= self._sent_at + self._retry:
            self._sent_at = None
            effects += self._send_next(now)
        if now >= self._last_sent + self.heartbeat:
            effects += self._send(Heartbeat(), now)
        return effects

    def deadline(self) -> float | None:
        if self.closed:
            return None
        if self.device is None:
            return self._hello_by
        times = [self._last_heard + SILENT_BEATS * self.heartbeat, self._last_sent + self.heartbeat]
        if self._sent_at is not None:
            times.append(self._sent_at + self._retry)
        return min(times)

    def connection_lost(self) -> list[Effect]:
        """The connection ended under the session (the peer left, the network broke)."""
        if self.closed:
            return []
        self.closed = True
        return [Reported("offline")] if self.device is not None else []

    def _hello(self, hello: Hello, now: float) -> list[Effect]:
        device = self._authenticate(hello.token)
        if device is None:
            return self._close("bad_token", "unknown device token")
        if device.kind not in self._kinds:
            kinds = ", ".join(sorted(self._kinds))
            return self._close("wrong_kind", f"a {device.kind} device; this link serves {kinds}")
        self.device = device
        welcome = Welcome(
            device=device.device, kind=device.kind, window=device.window, heartbeat=self.heartbeat
        )
        return [Online(device), *self._send(welcome, now), *self._send_next(now)]

    def _ack(self, job_id: str, now: float) -> list[Effect]:
        if job_id != self.in_flight:
            return []  # a late duplicate, or a job never sent: acks are idempotent
        self._queue.pop(0)
        self._queued.discard(job_id)
        self._acked.add(job_id)
        self._sent_at = None
        return [Acked(job_id), *self._send_next(now)]

    def _send_next(self, now: float) -> list[Effect]:
        if self.device is None or self._sent_at is not None or not self._queue:
            return []
        self._sent_at = now
        return self._send(self._queue[0], now)

    def _send(self, message: Message, now: float) -> list[Effect]:
        self._last_sent = now
        return [Send(message)]

    def _close(self, code: str, message: str) -> list[Effect]:
        offline: list[Effect] = [Reported("offline")] if self.device is not None else []
        self.closed = True
        error = Send(Error(error=code, message=message[:200]))
        return [error, *offline, Close(CLOSE_CODES[code], close_reason(message))]


# -- the agent's side -----------------------------------------------------------------------------

_FAILING = frozenset({"error", "printer_offline", "paper_out"})


class AgentSession:
    """An agent's side of the link, for the agent's whole life (across connections).

    ``done`` holds the ids of jobs done before this session began (the agent's done file); the
    session adds the ones done since. One job is performed at a time: a job that arrives while
    another is being performed is ignored (the hall sends it again), one already done is acked
    without being performed again.
    """

    def __init__(
        self, *, token: str, agent: str, done: Collection[str] = (), heartbeat: float = 10.0
    ) -> None:
        self._hello = Hello(token=token, agent=agent)
        self._done_before = done
        self._done: set[str] = set()
        self.heartbeat = heartbeat
        self.welcome: Welcome | None = None
        self.connected_now = False
        self.performing: str | None = None
        self._status: Status | None = None  # the hardware state last reported (or to report)
        self._last_sent = 0.0
        self._last_heard = 0.0

    def is_done(self, job_id: str) -> bool:
        return job_id in self._done or job_id in self._done_before

    def connected(self, now: float) -> list[Effect]:
        """A new connection is open: say hello."""
        self.connected_now = True
        self.welcome = None
        self._last_heard = now
        return self._send(self._hello, now)

    def disconnected(self) -> None:
        """The connection is gone (closed by either side, or never opened)."""
        self.connected_now = False
        self.welcome = None

    def receive(self, frame: str | bytes | Message, now: float) -> list[Effect]:
        if not self.connected_now:
            return []
        try:
            message = _parse(frame)
        except ProtocolError as error:
            return self._reconnect(f"a malformed frame from the hall: {error.message}")
        self._last_heard = now
        if isinstance(message, Error):
            return self._reconnect(f"the hall refused: {message.error}: {message.message}")
        if self.welcome is None:
            if not isinstance(message, Welcome):
                return self._reconnect(f"expected welcome, got {type(message).__name__}")
            self.welcome = message
            self.heartbeat = message.heartbeat
            # The hall marks a device "online" on each hello: tell it again what the hardware says.
            if self._status is not None:
                return self._send(State(status=self._status), now)
            return []
        match message:
            case Heartbeat():
                return []
            case Print() | Play():
                return self._job(message, now)
            case _:
                return self._reconnect(f"the hall does not send {type(message).__name__}")

    def done(self, job_id: str, now: float) -> list[Effect]:
        """The job performed has been done (and recorded durably by the caller): ack it."""
        self._done.add(job_id)
        if self.performing == job_id:
            self.performing = None
        effects: list[Effect] = []
        if self._status in _FAILING:
            effects += self.hardware("ok", now)  # the hardware evidently works again
        if self.welcome is not None:
            effects += self._send(Ack(id=job_id), now)
        return effects

    def failed(self, job_id: str, status: Status, now: float, detail: str = "") -> list[Effect]:
        """The job could not be done: report the hardware state; the hall sends the job again."""
        if self.performing == job_id:
            self.performing = None
        return self.hardware(status, now, detail)

    def hardware(self, status: Status, now: float, detail: str = "") -> list[Effect]:
        """The hardware's state as last seen; the hall hears of it when it changes."""
        if status == self._status:
            return []
        self._status = status
        if self.welcome is None:
            return []  # told after the next welcome
        return self._send(State(status=status, detail=detail[:200]), now)

    def tick(self, now: float) -> list[Effect]:
        if not self.connected_now:
            return []
        if now >= self._last_heard + SILENT_BEATS * self.heartbeat:
            return self._reconnect("the hall went silent")
        if self.welcome is not None and now >= self._last_sent + self.heartbeat:
            return self._send(Heartbeat(), now)
        return []

    def deadline(self) -> float | None:
        if not self.connected_now:
            return None
        silent = self._last_heard + SILENT_BEATS * self.heartbeat
        if self.welcome is None:
            return silent
        return min(silent, self._last_sent + self.heartbeat)

    def _job(self, job: Job, now: float) -> list[Effect]:
        if self.is_done(job.id):
            return self._send(Ack(id=job.id), now)
        if self.performing is not None:
            return []
        self.performing = job.id
        return [Perform(job)]

    def _send(self, message: Message, now: float) -> list[Effect]:
        self._last_sent = now
        return [Send(message)]

    def _reconnect(self, reason: str) -> list[Effect]:
        self.disconnected()
        return [Reconnect(reason)]


def backoff(attempt: int, rand: float) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 first): full jitter under a cap that
    starts at 0.5 s and doubles to 10 s, so agents that lost the hall together do not return
    together. ``rand`` is uniform in [0, 1)."""
    return rand * min(10.0, 0.5 * 2.0 ** min(attempt, 5))
