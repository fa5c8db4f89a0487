"""What a device link may cost the hall before its device is known, and how often a device may
come back.

A connection that has not said a valid hello is nobody yet: it waits in a small budget of its own
(``Pending``), not among the places screens, event feeds and devices share (hall/api/feeds.py),
so connections that never say hello cannot lock out a real printer or a screen. A device that
said hello too often lately is refused for a while (``Rate``), so a reconnect loop with a stolen
or broken token costs a hash and a frame, not journal entries and takeovers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Pending(Generic[T]):
    """Connections waiting for their hello, at most ``max_per_address`` from one address and
    ``max_total`` in all. A newcomer beyond either pushes out the oldest waiting (of its address,
    else of all) rather than being refused: a real device says hello as it connects, so clients
    that open and wait cannot keep it out, however many they open."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total, self.max_per_address = max_total, max_per_address
        self._all: dict[T, str] = {}  # insertion-ordered: the oldest first
        self._by_address: dict[str, dict[T, None]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def add(self, waiting: T, address: str) -> T | None:
        """Count ``waiting`` from ``address``; returns the one it pushed out, counted no more."""
        mine = self._by_address.get(address, {})
        out = None
        if len(mine) >= self.max_per_address:
            out = next(iter(mine))
        elif len(self._all) >= self.max_total:
            out = next(iter(self._all))
        if out is not None:
            self.remove(out)
        self._all[waiting] = address
        self._by_address.setdefault(address, {})[waiting] = None
        return out

    def remove(self, waiting: T) -> None:
        """Count ``waiting`` no more (it said hello or went); idempotent."""
        address = self._all.pop(waiting, None)
        if address is None:
            return
        mine = self._by_address[address]
        del mine[waiting]
        if not mine:
            del self._by_address[address]


class Rate:
    """At most ``limit`` events per ``seconds`` for each key, in a sliding window. Keys should be
    few (configured devices): each keeps its recent times."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._times: dict[Hashable, deque[float]] = {}

    def take(self, key: Hashable, now: float) -> float:
        """0.0 after counting an event of ``key`` at ``now``; or, if ``key`` had ``limit`` in the
        last ``seconds``, the seconds until it may have one more (nothing counted: a refusal does
        not push the end of the wait further)."""
        times = self._times.setdefault(key, deque())
        while times and times[0] <= now - self.seconds:
            times.popleft()
        if len(times) >= self.limit:
            return times[0] + self.seconds - now
        times.append(now)
        return 0.0
