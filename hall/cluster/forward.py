"""Commands a follower sends to the hall's writer, and the writer's side of it.

The follower has already authorised the request (sessions and device tokens are shared); the
writer checks only that the sender is a process of the region (the cluster secret, which only
those holding the Redis credentials can read) and runs the command as if it were its own.

A command the writer never received (connection refused: the writer died, or the lease just
moved) is sent again to the hall's new writer: it cannot have happened. One whose answer was lost
is ambiguous, like a lost append: :class:`JournalUnavailable`, and an idempotency key settles it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath

from hall.domain.commands import AnyCommand
from hall.domain.errors import Forbidden, HallError, InvalidInput
from hall.domain.events import AnyEvent
from hall.engine import Done, HallBusy, HallEngine, WriteHere
from hall.journal.base import JournalUnavailable, NotWriter

log = logging.getLogger(__name__)

PATH = "/internal/halls/{hall:str}/commands"
SECRET_HEADER = "X-Hall-Cluster"
RETRY_SECONDS = 0.1  # between looks for a hall's writer while the lease moves
LAST_ATTEMPT_SECONDS = 0.5
WATCH_SECONDS = 0.25  # how often a forward waiting for its answer looks whether the lease moved


class Forwarded(msgspec.Struct, frozen=True):
    command: AnyCommand
    key: str | None = None


class Executed(msgspec.Struct, frozen=True):
    first: int  # the version of the first event (events are consecutive)
    events: list[AnyEvent]


class Relayed(HallError):
    """The writer refused the command (a HallError there): its status and body, passed on as
    they were, so a client cannot tell which process it spoke to."""

    code = "relayed"  # never shown: the writer's own code is

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message", "")), **(body.get("detail") or {}))
        self.status, self.error = status, str(body.get("error", "hall_error"))


_decode_executed = msgspec.json.Decoder(Executed).decode
_decode_forwarded = msgspec.json.Decoder(Forwarded).decode
_encode = msgspec.json.Encoder().encode

# Where a hall's writer is now: (hall) -> URL of its process, "" for this one, None for none.
WriterAt = Callable[[str], Awaitable[str | None]]


class Forwarder:
    """``forward(hall, command, key)`` for every follower engine of this process."""

    def __init__(self, writer_at: WriterAt, secret: bytes, deadline: float) -> None:
        self._writer_at = writer_at
        self._secret = secret.hex()
        self.deadline = deadline
        # Writers' URLs no connection could be made to, since when (monotonic): one that stays
        # so while its process holds leases (it reaches Redis, not us) makes /ready say so.
        self.unreachable: dict[str, tuple[float, float]] = {}  # url -> (first, last failure)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(deadline, connect=1.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def __call__(
        self, hall: str, command: AnyCommand, key: str | None
    ) -> tuple[int, list[AnyEvent]]:
        body = _encode(Forwarded(command, key))
        give_up = time.monotonic() + self.deadline
        unsure = False  # an attempt reached a writer that went away before it answered
        while True:
            url = await self._writer_at(hall)
            if url == "":
                raise WriteHere(hall)
            if url is not None:
                try:
                    response = await self._post(hall, url, body, give_up)
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                    # Never reached the writer: nothing happened; find the new one.
                    if not isinstance(exc, httpx.PoolTimeout):
                        now = time.monotonic()
                        first = self.unreachable.get(url, (now, now))[0]
                        if first == now:
                            log.warning("hall %s: writer at %s unreachable (%r)", hall, url, exc)
                        self.unreachable[url] = (first, now)
                except httpx.HTTPError as exc:
                    # The writer went away mid-request. The command carries a key (the
                    # engine gives it one): the next writer answers it from the journal if it
                    # landed, so sending it again cannot do it twice.
                    log.warning("hall %s: forward to %s failed (%r); again", hall, url, exc)
                    unsure = True
                    if key is None:
                        raise JournalUnavailable(
                            f"hall {hall}: the writer did not answer ({type(exc).__name__}); "
                            "the command may have happened"
                        ) from None
                else:
                    self.unreachable.pop(url, None)
                    found = _answer(response)
                    if found is not None:
                        return found
            # No new attempt in the last moments: it could only time out, and leave the
            # command in doubt where refusals so far say it never happened.
            if time.monotonic() >= give_up - LAST_ATTEMPT_SECONDS:
                if unsure:
                    raise JournalUnavailable(
                        f"hall {hall}: no writer answered in time; the command may have "
                        "happened: send it again with the same Idempotency-Key to know"
                    )
                raise NotWriter(f"hall {hall}: no writer could be reached; try again")
            await asyncio.sleep(RETRY_SECONDS)

    async def _post(self, hall: str, url: str, body: bytes, give_up: float) -> httpx.Response:
        """The writer's answer; given up (as a read timeout: the command carries its key) when
        the hall's lease moves meanwhile, so a writer that hangs (paused, cut off without a
        reset) holds a command up only until its standby takes over, not for the deadline."""
        sent = asyncio.create_task(
            self._client.post(
                f"{url}/internal/halls/{hall}/commands",
                content=body,
                headers={SECRET_HEADER: self._secret, "Content-Type": "application/json"},
            )
        )
        try:
            while True:
                left = give_up - time.monotonic()
                done, _ = await asyncio.wait({sent}, timeout=max(0.0, min(WATCH_SECONDS, left)))
                if done:
                    return sent.result()
                if left <= 0 or await self._writer_at(hall) != url:
                    raise httpx.ReadTimeout(
                        f"no answer from {url}; the lease moved or time ran out"
                    )
        finally:
            sent.cancel()


def _answer(response: httpx.Response) -> tuple[int, list[AnyEvent]] | None:
    """The writer's answer; None when it was no longer the writer (nothing was done)."""
    if response.status_code == 200:
        executed = _decode_executed(response.content)
        return executed.first, executed.events
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if error == "not_writer":
        return None
    if response.status_code == 403:  # our cluster secret is not the writer's: not the client's
        log.error("the writer refused this process's forward: cluster secrets differ")
        raise JournalUnavailable("this process and the hall's writer disagree on the region")
    if error == "busy":
        raise HallBusy(str(body.get("message", "the hall is busy")))
    if response.status_code == 503 or not isinstance(error, str):
        raise JournalUnavailable(f"the hall's writer answered {response.status_code}")
    raise Relayed(response.status_code, body)


@post(PATH, status_code=200, include_in_schema=False)
async def run_forwarded(
    request: Request[Any, Any, Any], state: State, hall: FromPath[str]
) -> Response[bytes]:
    """The writer's side: run a command a follower sent (refused unless this process writes
    the hall: a follower never forwards onwards, so a command cannot go round in circles)."""
    secret = getattr(state.service, "cluster_secret", None)
    given = request.headers.get(SECRET_HEADER, "")
    if secret is None or not hmac.compare_digest(given.encode(), secret.hex().encode()):
        raise Forbidden("not a process of this region")
    engine: HallEngine = state.service.engine(hall)
    try:
        forwarded = _decode_forwarded(await request.body())
    except msgspec.MsgspecError as exc:
        raise InvalidInput(f"not a forwarded command: {exc}") from None
    done: Done[None] = await engine.execute(forwarded.command, key=forwarded.key, here=True)
    first = done.records[0].version if done.records else 0
    executed = Executed(first, [record.event for record in done.records])
    return Response(_encode(executed), media_type="application/json")
