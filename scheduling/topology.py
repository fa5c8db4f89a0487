"""Which open windows serve which categories right now, cached per hall state.

The wait estimate and the ``deadline`` policy both need, at every call, how many open windows
serve each category. Recounting walks every window's profile; a city hall has ~200 windows and
the count is needed ~10,000 times a day, so it is cached. The cache is keyed by the state object
and its ``layout_version``, which :func:`hall.domain.state.apply` bumps whenever a window opens,
closes or changes profile: checking it costs nothing, and it can never go stale, whatever events
the caller did or did not feed anyone (a profile change or a login shows up at once). A state
changed behind ``apply``'s back (a test setting a profile by hand) must bump it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hall.domain.state import WindowState

if TYPE_CHECKING:
    from hall.domain.state import HallState

Layout = tuple[tuple[str, tuple[str, ...], bool], ...]


@dataclass(slots=True)
class Topology:
    """``serving[c]``: ids of the open windows whose profile holds category ``c``."""

    layout: Layout
    serving: dict[str, tuple[str, ...]]
    version: int = 0  # the state's layout_version it was built at
    _shares: dict[str, dict[str, float]] = field(default_factory=dict)

    def count(self, category: str) -> int:
        return len(self.serving.get(category, ()))

    def shares(self, category: str) -> dict[str, float]:
        """For each category ``c`` sharing a window with ``category``: the share of ``c``'s
        open windows that also serve ``category`` (1.0 for ``category`` itself)."""
        cached = self._shares.get(category)
        if cached is not None:
            return cached
        mine = set(self.serving.get(category, ()))
        shares = {
            c: sum(1 for w in windows if w in mine) / len(windows)
            for c, windows in self.serving.items()
            if not mine.isdisjoint(windows)
        }
        self._shares[category] = shares
        return shares


_CACHE: dict[int, tuple[HallState, Topology]] = {}


def layout(state: HallState) -> Layout:
    return tuple(
        (w.id, w.categories, w.state is WindowState.CLOSED) for w in state.windows.values()
    )


def topology(state: HallState) -> Topology:
    """The topology of ``state`` now (recomputed only when its layout changed)."""
    cached = _CACHE.get(id(state))
    if cached is not None and cached[0] is state and cached[1].version == state.layout_version:
        return cached[1]
    current = layout(state)
    serving: dict[str, list[str]] = {}
    for window_id, categories, closed in current:
        if not closed:
            for category in categories:
                serving.setdefault(category, []).append(window_id)
    result = Topology(current, {c: tuple(ws) for c, ws in serving.items()}, state.layout_version)
    if len(_CACHE) > 64:  # states are few per process; this only stops a leak in test runs
        _CACHE.clear()
    _CACHE[id(state)] = (state, result)
    return result
