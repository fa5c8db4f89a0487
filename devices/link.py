"""An agent's end of the device link: the ``websockets`` client around ``AgentSession``.

``run_agent`` connects, says hello, sends heartbeats, hands each job to ``perform`` (one at a
time), records it in the ``DoneStore`` once ``perform`` returns and then acks it, reports a failed
job's hardware state, and reconnects with backoff until ``stop`` is set. A job being performed
carries on across a lost connection; its ack goes out on the next one, when the hall sends the job
again. Everything the protocol decides is in devices/session.py; this module only moves frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidURI, WebSocketException

from devices.done import DoneStore
from devices.protocol import MAX_FRAME, STATUSES, Job, Status, encode
from devices.session import AgentSession, Effect, Perform, Reconnect, Send, backoff

log = logging.getLogger(__name__)

PerformJob = Callable[[Job], Awaitable[None]]
StatusProbe = Callable[[], Awaitable[str]]


class JobFailed(Exception):
    """What ``perform`` raises when the hardware says why (paper out): that state goes to the
    hall. Any other exception is reported as "error"."""

    def __init__(self, status: Status, detail: str = "") -> None:
        super().__init__(detail or status)
        self.status: Status = status
        self.detail = detail


async def run_agent(
    url: str,
    *,
    token: str,
    agent_name: str,
    perform: PerformJob,
    done_store: DoneStore,
    stop: asyncio.Event,
    status: StatusProbe | None = None,
    status_seconds: float = 5.0,
    stop_grace: float = 10.0,
    rand: Callable[[], float] = random.random,
) -> None:
    """Serve the hall at ``url`` (ws://host/ws/halls/{hall}/devices) until ``stop`` is set.

    ``status`` (optional) is asked for the hardware's state every ``status_seconds`` while no job
    is being performed; its answer is one of protocol.STATUSES. At stop a job being performed gets
    ``stop_grace`` seconds to finish (an interrupted print is printed again after a restart).
    """
    agent = _Agent(token, agent_name, perform, done_store, stop, status, status_seconds)
    attempt = 0
    while not stop.is_set():
        try:
            async with connect(
                url,
                max_size=MAX_FRAME,
                # The link's own heartbeats watch both directions and tell the hall; one
                # mechanism is enough.
                ping_interval=None,
                open_timeout=10,
                close_timeout=2,
            ) as socket:
                if await agent.serve(socket):
                    attempt = 0
        except InvalidURI:
            raise
        except (OSError, TimeoutError, WebSocketException) as error:
            log.warning("device link to %s: %s: %s", url, type(error).__name__, error)
        agent.session.disconnected()
        if stop.is_set():
            break
        delay = backoff(attempt, rand())
        attempt += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    await agent.finish(stop_grace)


class _Agent:
    def __init__(
        self,
        token: str,
        agent_name: str,
        perform: PerformJob,
        store: DoneStore,
        stop: asyncio.Event,
        status: StatusProbe | None,
        status_seconds: float,
    ) -> None:
        self.session = AgentSession(token=token, agent=agent_name, done=store)
        self._perform = perform
        self._store = store
        self._stop = stop
        self._status = status
        self._status_seconds = status_seconds
        self._task: asyncio.Task[None] | None = None  # the job being performed, across connections
        self._job_id = ""

    async def serve(self, socket: ClientConnection) -> bool:
        """One connection, until it ends; True if the hall welcomed the agent on it."""
        loop = asyncio.get_running_loop()
        session = self.session
        receiving = asyncio.ensure_future(socket.recv())
        stopping = asyncio.ensure_future(self._stop.wait())
        probe: asyncio.Future[str] | None = None
        next_probe = loop.time()
        try:
            if not await self._apply(socket, session.connected(loop.time())):
                return False
            while True:
                waits: set[asyncio.Future[Any]] = {receiving, stopping}
                if self._task is not None:
                    waits.add(self._task)
                if probe is not None:
                    waits.add(probe)
                wake = session.deadline()
                probing = self._status is not None and probe is None and self._task is None
                if probing and session.welcome is not None:
                    wake = next_probe if wake is None else min(wake, next_probe)
                timeout = None if wake is None else max(0.0, wake - loop.time())
                done, _ = await asyncio.wait(
                    waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                now = loop.time()
                if stopping in done:
                    return session.welcome is not None
                effects: list[Effect] = []
                if self._task is not None and self._task.done():
                    effects += self._finished(self._task, now)
                if probe is not None and probe.done():
                    effects += self._probed(probe, now)
                    probe, next_probe = None, now + self._status_seconds
                if receiving in done:
                    frame = receiving.result()  # ConnectionClosed: the caller reconnects
                    receiving = asyncio.ensure_future(socket.recv())
                    effects += session.receive(frame, now)
                effects += session.tick(now)
                if (
                    self._status is not None
                    and probe is None
                    and self._task is None
                    and session.welcome is not None
                    and now >= next_probe
                ):
                    probe = asyncio.ensure_future(self._status())
                if not await self._apply(socket, effects):
                    return session.welcome is not None
        finally:
            for future in (receiving, stopping, probe):
                if future is not None:
                    future.cancel()

    async def finish(self, grace: float) -> None:
        """At stop: let the job being performed end (and be recorded), within ``grace``."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def _apply(self, socket: ClientConnection, effects: list[Effect]) -> bool:
        """Perform the effects in order; False when the session wants a new connection."""
        for effect in effects:
            match effect:
                case Send(message=message):
                    await socket.send(encode(message))
                case Perform(job=job):
                    self._job_id = job.id
                    self._task = asyncio.create_task(self._do(job), name=f"perform {job.id}")
                case Reconnect(reason=reason):
                    log.warning("device link: reconnecting: %s", reason)
                    return False
        return True

    async def _do(self, job: Job) -> None:
        await self._perform(job)
        # On disk before the ack leaves: a crash between the two costs an ack, never a reprint.
        self._store.add(job.id)

    def _finished(self, task: asyncio.Task[None], now: float) -> list[Effect]:
        self._task = None
        if task.cancelled():
            return self.session.failed(self._job_id, "error", now, "cancelled")
        error = task.exception()
        if error is None:
            return self.session.done(self._job_id, now)
        if isinstance(error, JobFailed):
            log.warning("job %s failed: %s %s", self._job_id, error.status, error.detail)
            return self.session.failed(self._job_id, error.status, now, error.detail)
        log.error("job %s failed", self._job_id, exc_info=error)
        return self.session.failed(self._job_id, "error", now, _describe(error))

    def _probed(self, probe: asyncio.Future[str], now: float) -> list[Effect]:
        if probe.cancelled():
            return []
        error = probe.exception()
        if error is not None:
            log.warning("status probe failed: %s", _describe(error))
            return self.session.hardware("error", now, _describe(error))
        answer = probe.result()
        if answer not in STATUSES:
            return self.session.hardware("error", now, f"unknown status {answer[:40]!r}")
        return self.session.hardware(cast(Status, answer), now)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]
