"""What if a window opened, or served other categories: each category's longest wait over the next
hour, with the windows as they are and after the change ("open window 7 for 不动产: longest wait
38 → 14 min"). The staffing advice of the manager's live view.

Pure. The hall's own calling policy is run forward from the live state (:mod:`scheduling.forward`:
holding times, pauses ending, arrivals at the recent rates), once with the windows as they are
and once per change, every layout on the same runs: the same visitors arriving at the same
moments, each holding a window as long, each busy window freeing at the same moment (common
random numbers). So a difference between two layouts is what the change does, not noise from one
set of draws to the next, and a few runs tell changes apart.

A category's longest wait over the next hour is, in one run, the longest any of its tickets
waits until it is called: those waiting now and those arriving within the hour. A run follows
them until they are called, for ``FOLLOW`` at most (arrivals going on meanwhile); one still
waiting then counts what it has waited by then, the same cut for every layout. Cut at the hour's
end instead, every ticket of an overloaded category would read "an hour and then some" with one
window or three, and the change a manager most needs to see would show nothing. The figure is the
median over the runs; 0 when no ticket of the category waits or comes, and None when some do and
no working window serves it.

A single change (:func:`single_changes`) is what a manager does with one window: open a closed one
as it is, or put a category first in a window's profile (adding it if it is not there; a closed
window opens so). :func:`outlook` forecasts them for every category that needs it (its longest
wait at least ``NEED`` of its target, or nobody serving it: more service for a category well
within its target only takes windows from the others); :func:`suggest` picks, for the category
furthest over its target, the changes that cut its longest wait most. Runs cost a policy call per
ticket called, so their number per layout follows a budget of ``BUDGET`` calls (``RUNS`` at
most, ``MIN_RUNS`` at least): 0.3-0.75 s for every change of a 16-window hall.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from hall.domain.state import HallState, WindowState
from scheduling.estimate import ServiceTimes
from scheduling.forecast import seed_of
from scheduling.forward import Layout, live_layout, simulate, start
from scheduling.policy import Policy

HOUR = 3600.0  # seconds ahead
FOLLOW = 2 * HOUR  # a run follows the hour's tickets this long at most
RUNS = 8
MIN_RUNS = 2
BUDGET = 60_000  # policy calls for the changes of one outlook or suggestion
NEED = 0.5  # of the target: a category whose longest wait is under this gets no change of its own
CANDIDATES = 24  # changes a suggestion tries at most

Longest = dict[str, float | None]  # category -> its longest wait over the next hour, minutes


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


@dataclass(frozen=True, slots=True)
class Outlook:
    """Each category's longest wait over the next hour with the windows as they are (``now``),
    and after each single change tried, over ``runs`` runs each."""

    now: Longest
    changes: dict[Change, Longest]
    runs: int


def layout_after(state: HallState, change: Change) -> Layout:
    """The windows after ``change``; the state is not touched."""
    windows = dict(state.windows)
    status = state.windows[change.window]
    if change.categories is not None:
        status = dataclasses.replace(status, categories=change.categories)
    if change.open:
        status = dataclasses.replace(status, state=WindowState.OPEN, since=None)
    windows[change.window] = status
    return Layout(windows)


class Forecaster:
    """The runs of one live state, from which every layout is forecast alike."""

    def __init__(self, state: HallState, now: datetime, times: ServiceTimes, policy: Policy):
        self.state = state
        self.begun = start(state, now, times, policy)
        self.begun.shared = {}  # every layout runs on the same seeds: draw their arrivals once
        self.until = self.begun.now + HOUR
        seed = seed_of(state)
        self.seeds = [seed + r for r in range(RUNS)]
        self.waiting = frozenset(self.begun.tickets)  # simulate() leaves those nobody may call
        self.present = {category for category, _ in self.begun.kinds} | {
            c for c, ids in state.queues.items() if ids
        }
        self.steps = 0  # policy calls so far

    def per_run(self, layout: Layout, runs: int) -> dict[str, list[float]]:
        """Each category's longest wait (minutes) in each of the first ``runs`` runs."""
        begun, until = self.begun, self.until
        found: dict[str, list[float]] = {c.id: [] for c in begun.config.categories}
        for seed in self.seeds[:runs]:
            run = simulate(begun, layout, seed, targets=self.waiting, until=until, horizon=FOLLOW)
            self.steps += run.steps
            longest: dict[str, float] = {}
            for ticket_id, ticket in begun.tickets.items():
                waited = run.called.get(ticket_id, run.end) - ticket.issued_at.timestamp()
                if waited > longest.get(ticket.category, 0.0):
                    longest[ticket.category] = waited
            for ticket_id, (category, issued) in run.arrived.items():
                if issued < until:
                    waited = run.called.get(ticket_id, run.end) - issued
                    if waited > longest.get(category, 0.0):
                        longest[category] = waited
            for category, values in found.items():
                values.append(longest.get(category, 0.0) / 60)
        return found

    def summary(self, layout: Layout, per_run: dict[str, list[float]], runs: int) -> Longest:
        """The medians of the first ``runs`` runs; None for a category with people waiting or
        expected and no working window serving it."""
        return {
            category: None
            if category in self.present and not layout.callers(category)
            else median(values[:runs])
            for category, values in per_run.items()
        }

    def longest(self, layout: Layout, runs: int = RUNS) -> Longest:
        return self.summary(layout, self.per_run(layout, runs), runs)

    def runs_for(self, changes: int, baseline_runs: int) -> int:
        """Runs per change within ``BUDGET``, from what the baseline's runs cost."""
        per_run = self.steps / max(baseline_runs, 1)
        return min(max(int(BUDGET // max(changes * per_run, 1.0)), MIN_RUNS), RUNS)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def needing(state: HallState, longest: Longest) -> list[str]:
    """Categories whose longest wait is at least ``NEED`` of their target, or that nobody
    serves while people wait or are expected."""
    return [
        c.id
        for c in state.config.categories
        if (wait := longest.get(c.id, 0.0)) is None or wait >= NEED * c.target_wait_minutes
    ]


def single_changes(state: HallState, categories: Iterable[str] | None = None) -> Iterator[Change]:
    """Every change a manager can make to one window: a closed window opened as it is; a
    category of ``categories`` (all if None) put first in a window's profile (added if missing;
    a closed window opens so)."""
    chosen = [c.id for c in state.config.categories] if categories is None else list(categories)
    for status in state.windows.values():
        closed = status.state is WindowState.CLOSED
        if closed:
            yield Change(status.id, True)
        for category in chosen:
            profile = (category, *(c for c in status.categories if c != category))
            if profile != status.categories:
                yield Change(status.id, closed, profile)


def outlook(
    state: HallState,
    now: datetime,
    times: ServiceTimes,
    policy: Policy,
    changes: Sequence[Change] | None = None,
) -> Outlook:
    """Each category's longest wait over the next hour now and after each of ``changes`` (every
    single change for the categories that need one, if None)."""
    forecaster = Forecaster(state, now, times, policy)
    live = live_layout(state)
    baseline = forecaster.per_run(live, RUNS)
    if changes is None:
        changes = list(
            single_changes(state, needing(state, forecaster.summary(live, baseline, RUNS)))
        )
    runs = forecaster.runs_for(len(changes), RUNS)
    found = {change: forecaster.longest(layout_after(state, change), runs) for change in changes}
    return Outlook(forecaster.summary(live, baseline, runs), found, runs)


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


def candidates(state: HallState, category: str, longest: Longest) -> list[Change]:
    """The changes a suggestion for ``category`` tries: closed windows opened (as they are if
    they serve it, else with it first; one per profile: closed windows of one profile open
    alike), then open windows given it first, those whose first category has the most to spare
    first; ``CANDIDATES`` at most (a city hall has a hundred windows, and a suggestion is asked
    for while the manager waits)."""
    closed: list[Change] = []
    opened: list[tuple[float, int, Change]] = []
    profiles: set[tuple[str, ...]] = set()
    for change in single_changes(state, [category]):
        status = state.windows[change.window]
        if change.categories is None and category not in status.categories:
            continue  # opened as it is, it would not serve the category
        if change.open:
            profile = change.categories or status.categories
            if profile not in profiles:
                profiles.add(profile)
                closed.append(change)
        else:
            first = status.categories[0] if status.categories else None
            target = next(
                (c.target_wait_minutes for c in state.config.categories if c.id == first), 1
            )
            wait = longest.get(first or "", 0.0)
            opened.append((math.inf if wait is None else wait / target, len(opened), change))
    opened.sort(key=lambda found: found[:2])
    return [*closed, *(change for _, _, change in opened)][:CANDIDATES]


def suggest(
    state: HallState, now: datetime, times: ServiceTimes, policy: Policy, limit: int = 3
) -> list[Suggestion]:
    """For the worst category (:func:`worst`), the ``limit`` single changes that cut its longest
    wait over the next hour most, best first: a closed window that serves it opened, a closed
    one opened with it first, or an open one given it first."""
    forecaster = Forecaster(state, now, times, policy)
    live = live_layout(state)
    baseline = forecaster.per_run(live, RUNS)
    found = worst(state, forecaster.summary(live, baseline, RUNS))
    if found is None:
        return []
    category = found[0]
    changes = candidates(state, category, forecaster.summary(live, baseline, RUNS))
    runs = forecaster.runs_for(len(changes), RUNS)
    before = forecaster.summary(live, baseline, runs)[category]
    tried: list[tuple[tuple[float, bool, bool, int], Suggestion]] = []
    for order, change in enumerate(changes):
        after = forecaster.longest(layout_after(state, change), runs)[category]
        if after is None or (before is not None and after >= before):
            continue
        profile = change.categories or state.windows[change.window].categories
        # Equal gains: a window that keeps its profile first, then a closed one (nobody's work
        # is taken away), then the hall file's order.
        rank = (round(after, 1), change.categories is not None, not change.open, order)
        tried.append(
            (rank, Suggestion(change.window, change.open, profile, category, before, after))
        )
    tried.sort(key=lambda pair: pair[0])
    return [suggestion for _, suggestion in tried[:limit]]
