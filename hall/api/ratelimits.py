"""Rate limits at the edge: password guessing, the cost of argon2 checks, and kiosk issuing.

Kept apart from sessions: these are counters in memory, lost on restart (which lifts every lock,
like waiting does), and each map is capped so that a client inventing keys cannot grow it.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from hall.api.errors import Busy, TooManyAttempts

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

# Password guessing: after MAX_FAILURES wrong passwords within FAILURE_WINDOW seconds a username
# is locked for LOCK_SECONDS. Short, so that a prankster cannot keep staff out for long. A client
# address gets more tries (a hall's counter PCs may share one address behind a router) but then
# also waits, whatever username it tries: that is what stops a sweep over invented usernames.
MAX_FAILURES, FAILURE_WINDOW, LOCK_SECONDS = 5, 15 * 60, 5 * 60
MAX_ADDRESS_FAILURES = 20
# An argon2 check costs ~64 MiB and ~200 ms, on several cores (4 lanes): at most this many run at
# once, leaving a core to the event loop (measured on 2 cores, 32 logins at once: one at a time
# checked as many per second as two did, with a 111 MB peak instead of 175 MB and reads stalled
# half as long). A login waits CHECK_WAIT_SECONDS for its turn, then is told to come back.
PARALLEL_CHECKS = max(1, (os.cpu_count() or 2) // 2)
CHECK_WAIT_SECONDS = 5.0
MAX_KEYS = 10_000  # per map; the least recently touched key goes first


class Capped(Generic[K, V]):
    """A dict that forgets its least recently used key beyond ``limit`` keys, except those
    ``keep(value)`` holds on to: a flood of invented usernames must not push a lock out. What is
    kept costs an attacker a lock's worth of checked passwords each, so it stays small."""

    def __init__(self, limit: int = MAX_KEYS, keep: Callable[[V], bool] | None = None) -> None:
        self.limit = limit
        self._keep = keep
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        kept: list[tuple[K, V]] = []
        while len(self._items) > self.limit:
            old = self._items.popitem(last=False)
            if self._keep is not None and self._keep(old[1]):
                kept.append(old)
        for old_key, old_value in kept:  # now the most recent: the next overflow looks elsewhere
            self._items[old_key] = old_value

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class LoginLimiter:
    """Counts a username's attempt as a failure *before* its slow check, so parallel guesses at
    one username count one each; a success takes its own attempt back (and forgets the
    username's failures). An address counts the wrong passwords it sent plus its checks running
    now, never requests merely waiting: a hall's staff logging in together behind one router at
    opening time are not locked out, while a sweep over invented usernames is, after
    ``MAX_ADDRESS_FAILURES`` checks.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = MAX_KEYS,
        check_wait: float = CHECK_WAIT_SECONDS,
        parallel: int = PARALLEL_CHECKS,
    ) -> None:
        self.parallel = parallel
        self._clock = clock
        self.check_wait = check_wait
        self._users: Capped[tuple[str, str], list[float]] = Capped(
            max_keys, lambda times: self._locking(times, MAX_FAILURES)
        )
        self._addresses: Capped[tuple[str, str], list[float]] = Capped(
            max_keys, lambda times: self._locking(times, MAX_ADDRESS_FAILURES)
        )
        self._checking: dict[tuple[str, str], int] = {}  # at most ``parallel`` entries
        self._checks: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def sizes(self) -> tuple[int, int]:
        """Keys held (usernames, addresses): for tests and metrics."""
        return len(self._users), len(self._addresses)

    def attempt(self, hall: str, username: str, address: str) -> float:
        """Count one attempt or raise TooManyAttempts; returns its time, for :meth:`succeeded`."""
        now = self._clock()
        self._gate(hall, address, now)
        key = (hall, username)
        self._users.put(key, [*self._recent(self._users, key, MAX_FAILURES, now), now])
        return now

    def refund(self, hall: str, username: str, address: str, at: float) -> None:
        """Take back the attempt counted at ``at``: it was never checked (busy, or locked)."""
        times = self._users.get((hall, username))
        if times is not None and at in times:
            times.remove(at)
            if not times:  # an invented username leaves nothing behind
                self._users.pop((hall, username))

    def succeeded(self, hall: str, username: str, address: str, at: float) -> None:
        self.refund(hall, username, address, at)
        self._users.pop((hall, username))

    def failed(self, hall: str, address: str) -> None:
        """A checked password was wrong (the username's attempt counts already)."""
        key, now = (hall, address), self._clock()
        recent = self._recent(self._addresses, key, MAX_ADDRESS_FAILURES, now)
        self._addresses.put(key, [*recent, now])

    async def check(self, slow: Callable[[], T], source: tuple[str, str] | None = None) -> T:
        """Run ``slow`` (an argon2 verify or hash) in a thread, at most ``parallel`` at once; for
        a login from ``source`` (hall, address), once that address is found not locked (again:
        it may have been locked while this one waited its turn)."""
        loop = asyncio.get_running_loop()
        if self._checks is None or self._loop is not loop:  # a semaphore serves one event loop
            self._checks, self._loop = asyncio.Semaphore(self.parallel), loop
        checks = self._checks
        try:
            await asyncio.wait_for(checks.acquire(), self.check_wait)
        except TimeoutError:
            raise Busy("too many logins at once; try again in a moment", retry_after=1) from None
        try:
            if source is None:
                return await asyncio.to_thread(slow)
            self._gate(*source, self._clock())
            self._checking[source] = self._checking.get(source, 0) + 1
            try:
                return await asyncio.to_thread(slow)
            finally:
                self._checking[source] -= 1
                if not self._checking[source]:
                    del self._checking[source]
        finally:
            checks.release()

    def _locking(self, times: list[float], limit: int) -> bool:
        return len(times) >= limit and self._clock() - times[-1] < LOCK_SECONDS

    def _gate(self, hall: str, address: str, now: float) -> None:
        key = (hall, address)
        failures = self._recent(self._addresses, key, MAX_ADDRESS_FAILURES, now)
        if len(failures) + self._checking.get(key, 0) >= MAX_ADDRESS_FAILURES:
            _refuse(LOCK_SECONDS - (now - failures[-1]) if failures else 1)

    def _recent(
        self,
        table: Capped[tuple[str, str], list[float]],
        key: tuple[str, str],
        limit: int,
        now: float,
    ) -> list[float]:
        """The key's failures within the window; TooManyAttempts while they lock it."""
        recent = [t for t in table.get(key) or () if now - t < FAILURE_WINDOW]
        if len(recent) >= limit and now - recent[-1] < LOCK_SECONDS:
            _refuse(LOCK_SECONDS - (now - recent[-1]))
        return recent[-limit:]


def _refuse(seconds: float) -> None:
    wait = max(1, math.ceil(seconds))
    raise TooManyAttempts(f"too many wrong passwords; try again in {wait} s", retry_after=wait)


class IssueLimiter:
    """A token bucket per (hall, device): ``burst`` tickets at once, then one per ``seconds``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: Capped[tuple[str, str], tuple[float, float]] = Capped()

    def take(self, hall: str, device: str, seconds: float, burst: int) -> None:
        if seconds <= 0:
            return
        now = self._clock()
        tokens, then = self._buckets.get((hall, device)) or (float(burst), now)
        tokens = min(float(burst), tokens + (now - then) / seconds)
        if tokens < 1:
            wait = math.ceil((1 - tokens) * seconds)
            raise TooManyAttempts(
                f"this device issues at most one ticket every {seconds:g} s; wait {wait} s",
                retry_after=wait,
            )
        self._buckets.put((hall, device), (tokens - 1, now))
