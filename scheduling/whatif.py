"""What if a window opened, or served other categories: each category's longest wait over the next
hour, with the windows as they are and after the change ("open window 7 for 不动产: longest wait
38 → 14 min"). The staffing advice of the manager's live view.

Pure. The hall's own calling policy is run forward from the live state for the next ``HOUR``
(:mod:`scheduling.forward`: holding times, pauses ending, arrivals at the recent rates), ``RUNS``
times, once with the windows as they are and once per change, every layout on the same runs:
the same visitors arriving at the same moments, each holding a window as long, each busy window
freeing at the same moment (common random numbers). So a difference between two layouts is what
the change does, not noise from one set of draws to the next.

A category's longest wait over the hour is, in one run, the longest any of its tickets waits
until it is called: those waiting now and those arriving within the hour (the run goes on until
all of them are called, however long that takes, with arrivals going on meanwhile). Cut at the
hour's end, every ticket of an overloaded category would read "an hour and then some" with one
window or three, and the change a manager most needs to see would show nothing. The figure is
the median over the runs; 0 when no ticket of the category waits or comes, and None when some do
and no working window serves it. A ticket not called within ``HORIZON`` of now does not count
(only a window left to starve a category that long would do that).

A single change (:func:`single_changes`) is what a manager does with one window: open a closed
one as it is, or put a category first in its profile (adding it if it is not there; a closed
window opens with it). :func:`outlook` forecasts all of them; :func:`suggest` picks, for the
category furthest over its target, the changes that cut its longest wait most.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from hall.domain.state import HallState, WindowState
from scheduling.estimate import ServiceTimes
from scheduling.forecast import seed_of
from scheduling.forward import Layout, Start, live_layout, simulate, start
from scheduling.policy import Policy

HOUR = 3600.0  # seconds ahead
RUNS = 8


@dataclass(frozen=True, slots=True)
class Change:
    """One window's change: ``open`` it (closed now), and/or give it ``categories`` (its new
    profile, in order; None: the one it has)."""

    window: str
    open: bool
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """One category's longest wait over the next hour (minutes) before and after a change."""

    category: str
    before: float | None
    after: float | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A change that would cut ``category``'s longest wait: open ``window`` (closed now) or have
    it serve ``categories`` (its profile, the category first)."""

    window: str
    open: bool
    categories: tuple[str, ...]
    category: str
    before: float | None
    after: float | None


Longest = dict[str, float | None]


@dataclass(frozen=True, slots=True)
class Outlook:
    """Each category's longest wait over the next hour with the windows as they are (``now``),
    and after each single change."""

    now: Longest
    changes: dict[Change, Longest]


def layout_after(state: HallState, change: Change) -> Layout:
    """The windows after ``change``; the state is not touched."""
    status = state.windows[change.window]
    windows = dict(state.windows)
    if change.categories is not None:
        windows[change.window] = dataclasses.replace(status, categories=change.categories)
    opened = frozenset({change.window}) if change.open else frozenset()
    return Layout(windows, opened)


class Forecaster:
    """The runs of one live state, from which every layout is forecast alike."""

    def __init__(
        self, state: HallState, now: datetime, times: ServiceTimes, policy: Policy, runs: int
    ) -> None:
        self.state = state
        self.begun: Start = start(state, now, times, policy)
        self.until = self.begun.now + HOUR
        seed = seed_of(state)
        self.seeds = [seed + r for r in range(runs)]
        self.arriving = {category for category, _ in self.begun.kinds}
        self.waiting = frozenset(self.begun.tickets)  # simulate() skips those nobody may call

    def longest(self, layout: Layout) -> Longest:
        """Each category's longest wait over the hour with ``layout``, minutes (see the module)."""
        begun, until = self.begun, self.until
        per_run: dict[str, list[float]] = {c.id: [] for c in begun.config.categories}
        for seed in self.seeds:
            run = simulate(begun, layout, seed, targets=self.waiting, until=until)
            longest: dict[str, float] = {}
            for ticket_id, ticket in begun.tickets.items():
                called = run.called.get(ticket_id)
                if called is not None and called - ticket.issued_at.timestamp() > longest.get(
                    ticket.category, 0.0
                ):
                    longest[ticket.category] = called - ticket.issued_at.timestamp()
            for ticket_id, (category, issued) in run.arrived.items():
                called = run.called.get(ticket_id)
                if (
                    issued < until
                    and called is not None
                    and called - issued > longest.get(category, 0.0)
                ):
                    longest[category] = called - issued
            for category, values in per_run.items():
                values.append(longest.get(category, 0.0) / 60)
        result: Longest = {}
        for category, values in per_run.items():
            present = category in self.arriving or self.state.queues.get(category)
            if present and not layout.callers(category):
                result[category] = None
            else:
                result[category] = median(values)
        return result


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def single_changes(state: HallState) -> Iterator[Change]:
    """Every change a manager can make to one window: a closed window opened as it is; a
    category put first in a window's profile (added if missing; a closed window opens so)."""
    categories = [c.id for c in state.config.categories]
    for status in state.windows.values():
        closed = status.state is WindowState.CLOSED
        if closed:
            yield Change(status.id, True)
        for category in categories:
            profile = (category, *(c for c in status.categories if c != category))
            if profile != status.categories:
                yield Change(status.id, closed, profile)


def outlook(
    state: HallState,
    now: datetime,
    times: ServiceTimes,
    policy: Policy,
    changes: Sequence[Change] | None = None,
    runs: int = RUNS,
) -> Outlook:
    """Each category's longest wait over the next hour now and after each of ``changes`` (every
    single change if None)."""
    forecaster = Forecaster(state, now, times, policy, runs)
    found = {
        change: forecaster.longest(layout_after(state, change))
        for change in (single_changes(state) if changes is None else changes)
    }
    return Outlook(forecaster.longest(live_layout(state)), found)


def what_if(
    state: HallState,
    window: str,
    categories: tuple[str, ...] | None,
    open_it: bool,
    now: datetime,
    times: ServiceTimes,
    policy: Policy,
) -> list[Effect]:
    """Each category the change touches (the window's profile before and after, in that order),
    with its longest wait over the next hour before and after."""
    change = Change(window, open_it, categories)
    found = outlook(state, now, times, policy, [change])
    after = found.changes[change]
    touched = [*state.windows[window].categories, *(categories or ())]
    return [Effect(c, found.now.get(c, 0.0), after.get(c, 0.0)) for c in dict.fromkeys(touched)]


def worst(state: HallState, longest: Longest) -> tuple[str, float | None] | None:
    """The category with people waiting whose longest wait is furthest over its target (one
    nobody serves first); None when nobody waits."""
    found: tuple[float, str, float | None] | None = None
    for category in state.config.categories:
        if not state.queues.get(category.id):
            continue
        wait = longest.get(category.id)
        ratio = math.inf if wait is None else wait / category.target_wait_minutes
        if found is None or ratio > found[0]:
            found = (ratio, category.id, wait)
    return None if found is None else (found[1], found[2])


def suggest(
    state: HallState, now: datetime, times: ServiceTimes, policy: Policy, limit: int = 3
) -> list[Suggestion]:
    """For the worst category (:func:`worst`), the ``limit`` single changes that cut its longest
    wait over the next hour most, best first; the others' waits are forecast alike."""
    forecaster = Forecaster(state, now, times, policy, RUNS)
    current = forecaster.longest(live_layout(state))
    found = worst(state, current)
    if found is None:
        return []
    category, before = found
    tried: list[tuple[tuple[float, bool, bool, int], Suggestion]] = []
    for order, change in enumerate(single_changes(state)):
        profile = change.categories or state.windows[change.window].categories
        if profile[0] != category and not (change.categories is None and category in profile):
            continue  # a change for another category
        after = forecaster.longest(layout_after(state, change)).get(category)
        if after is None or (before is not None and after >= before):
            continue
        # Equal gains: a window that keeps its profile first, then a closed one (nobody's work
        # is taken away), then the hall file's order.
        changed = change.categories is not None
        rank = (round(after, 1), changed, not change.open, order)
        suggestion = Suggestion(change.window, change.open, profile, category, before, after)
        tried.append((rank, suggestion))
    tried.sort(key=lambda pair: pair[0])
    return [suggestion for _, suggestion in tried[:limit]]
