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
no working window serves it. A figure is *capped* (read "at least") when a run at or below the
median was cut so: a ticket of that run would have waited longer than the figure says.

A single change (:func:`single_changes`) is what a manager does with one window: open a closed one
as it is, or put a category first in a window's profile (adding it if it is not there; a closed
window opens so). :func:`outlook` forecasts them for every category that needs it (its longest
wait at least ``NEED`` of its target, or nobody serving it: more service for a category well
within its target only takes windows from the others); :func:`suggest` picks, for the category
furthest over its target, the changes that cut its longest wait most. Runs cost a policy call per
ticket called, so their number per layout follows a budget of ``BUDGET`` calls (``RUNS`` at
most, ``MIN_RUNS`` at least; beyond, fewer changes are tried, the likeliest first), and each run
stops after ``STEPS`` calls: the work is bounded whatever the number waiting (the live view
refuses a what-if above the forecast's ``WAITING_LIMIT``).

Everything here reads a :class:`Live`, the live state copied once (:func:`read_live`, cheap,
under the hall writer's lock), never the live state itself: the runs then go on outside the
writer (in a thread) while the hall keeps calling and issuing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from hall.config import HallConfig
from hall.domain.state import HallState, WindowState, WindowStatus
from scheduling.estimate import ServiceTimes
from scheduling.forecast import seed_of
from scheduling.forward import Layout, Start, simulate, start
from scheduling.policy import Policy

HOUR = 3600.0  # seconds ahead
FOLLOW = 2 * HOUR  # a run follows the hour's tickets this long at most
RUNS = 8
MIN_RUNS = 2
BUDGET = 60_000  # policy calls for the changes of one outlook or suggestion
STEPS = 3_000  # policy calls a run makes at most (one run of the baseline, RUNS of them)
NEED = 0.5  # of the target: a category whose longest wait is under this gets no change of its own
CANDIDATES = 24  # changes a suggestion tries at most

Longest = dict[str, float | None]  # category -> its longest wait over the next hour, minutes
Capped = frozenset[str]  # categories whose figure is a lower bound (a run cut at ``FOLLOW``)
PerRun = dict[str, list[tuple[float, bool]]]  # category -> each run's (longest, cut)


@dataclass(frozen=True, slots=True)
class Change:
    """One window's change: ``open`` it (closed now), and/or give it ``categories`` (its new
    profile, in order; None: the one it has)."""

    window: str
    open: bool
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """One category's longest wait over the next hour (minutes) before and after a change;
    ``*_capped``: that figure is a lower bound (see the module)."""

    category: str
    before: float | None
    after: float | None
    before_capped: bool = False
    after_capped: bool = False


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A change that would cut ``category``'s longest wait: open ``window`` (closed now) or have
    it serve ``categories`` (its profile, the category first), with ``category``'s longest wait
    before and after and whether each is capped (see the module)."""

    window: str
    open: bool
    categories: tuple[str, ...]
    category: str
    before: float | None
    after: float | None
    before_capped: bool = False
    after_capped: bool = False


@dataclass(frozen=True, slots=True)
class Outlook:
    """Each category's longest wait over the next hour with the windows as they are (``now``),
    and after each single change tried, over ``runs`` runs each; the categories whose figure is
    a lower bound, as they are (``capped_now``) and after each change (``capped``)."""

    now: Longest
    changes: dict[Change, Longest]
    runs: int
    capped_now: Capped = frozenset()
    capped: dict[Change, Capped] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Live:
    """What the what-if reads of the live state, copied (:func:`read_live`)."""

    begun: Start  # the runs' start: waiting tickets, queues, rates, busy windows
    windows: dict[str, WindowStatus]  # copies, in the hall file's order
    seed: int

    @property
    def config(self) -> HallConfig:
        return self.begun.config

    def waiting(self, category: str) -> int:
        return len(self.begun.queues.get(category, ()))


def read_live(state: HallState, now: datetime, times: ServiceTimes, policy: Policy) -> Live:
    """The live state copied for the what-if: a few milliseconds, for the writer's lock."""
    windows = {w: dataclasses.replace(status) for w, status in state.windows.items()}
    return Live(start(state, now, times, policy), windows, seed_of(state))


def live_layout(live: Live) -> Layout:
    """The windows as they are."""
    return Layout(live.windows)


def layout_after(live: Live, change: Change) -> Layout:
    """The windows after ``change``; ``live`` is not touched."""
    windows = dict(live.windows)
    status = live.windows[change.window]
    if change.categories is not None:
        status = dataclasses.replace(status, categories=change.categories)
    if change.open:
        status = dataclasses.replace(status, state=WindowState.OPEN, since=None)
    windows[change.window] = status
    return Layout(windows)


class Forecaster:
    """The runs of one live state, from which every layout is forecast alike."""

    def __init__(self, live: Live):
        self.begun = live.begun
        if self.begun.shared is None:  # every layout runs on the same seeds: draw arrivals once
            self.begun.shared = {}
        self.until = self.begun.now + HOUR
        self.seeds = [live.seed + r for r in range(RUNS)]
        self.waiting = frozenset(self.begun.tickets)  # simulate() leaves those nobody may call
        self.present = {category for category, _ in self.begun.kinds} | set(self.begun.queues)
        self.steps = 0  # policy calls so far

    def per_run(self, layout: Layout, runs: int) -> PerRun:
        """Each category's longest wait (minutes) in each of the first ``runs`` runs, and
        whether the run stopped following one of its tickets still uncalled (whose wait then
        counts what it had waited by then)."""
        begun, until = self.begun, self.until
        found: PerRun = {c.id: [] for c in begun.config.categories}
        for seed in self.seeds[:runs]:
            run = simulate(
                begun, layout, seed, targets=self.waiting, until=until, steps=STEPS, horizon=FOLLOW
            )
            self.steps += run.steps
            longest: dict[str, float] = {}
            cut: set[str] = set()
            followed = [
                (ticket_id, ticket.category, ticket.issued_at.timestamp())
                for ticket_id, ticket in begun.tickets.items()
            ]
            followed += [
                (ticket_id, category, issued)
                for ticket_id, (category, issued) in run.arrived.items()
                if issued < until
            ]
            for ticket_id, category, issued in followed:
                called = run.called.get(ticket_id)
                if called is None:
                    cut.add(category)
                waited = (run.end if called is None else called) - issued
                if waited > longest.get(category, 0.0):
                    longest[category] = waited
            for category, values in found.items():
                values.append((longest.get(category, 0.0) / 60, category in cut))
        return found

    def summary(self, layout: Layout, per_run: PerRun, runs: int) -> Longest:
        """The medians of the first ``runs`` runs; None for a category with people waiting or
        expected and no working window serving it."""
        return {
            category: None
            if category in self.present and not layout.callers(category)
            else median([minutes for minutes, _ in values[:runs]])
            for category, values in per_run.items()
        }

    def longest(self, layout: Layout, runs: int = RUNS) -> tuple[Longest, Capped]:
        """The medians of the first ``runs`` runs and the categories among them capped."""
        found = self.per_run(layout, runs)
        longest = self.summary(layout, found, runs)
        return longest, capped(found, longest, runs)

    def runs_for(self, changes: int, baseline_runs: int) -> tuple[int, int]:
        """(changes, runs per change) within ``BUDGET``, from what the baseline's runs cost: at
        least ``MIN_RUNS`` each, so fewer changes (the first ones) when they cannot all have them;
        one at least."""
        per_run = max(self.steps / max(baseline_runs, 1), 1.0)
        affordable = max(int(BUDGET // (MIN_RUNS * per_run)), 1)
        changes = min(changes, affordable)
        return changes, min(max(int(BUDGET // (max(changes, 1) * per_run)), MIN_RUNS), RUNS)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def capped(per_run: PerRun, longest: Longest, runs: int) -> Capped:
    """The categories whose median is a lower bound: a run at or below the median was cut, so
    its true figure may lie above the median (those above it stay above, cut or not)."""
    found = set()
    for category, values in per_run.items():
        if longest.get(category) is None:
            continue
        ordered = sorted(values[:runs])
        if any(cut for _, cut in ordered[: len(ordered) // 2 + 1]):
            found.add(category)
    return frozenset(found)


def needing(config: HallConfig, longest: Longest) -> list[str]:
    """Categories whose longest wait is at least ``NEED`` of their target, or that nobody
    serves while people wait or are expected."""
    return [
        c.id
        for c in config.categories
        if (wait := longest.get(c.id, 0.0)) is None or wait >= NEED * c.target_wait_minutes
    ]


def single_changes(live: Live, categories: Iterable[str] | None = None) -> Iterator[Change]:
    """Every change a manager can make to one window: a closed window opened as it is; a
    category of ``categories`` (all if None) put first in a window's profile (added if missing;
    a closed window opens so)."""
    chosen = [c.id for c in live.config.categories] if categories is None else list(categories)
    for status in live.windows.values():
        closed = status.state is WindowState.CLOSED
        if closed:
            yield Change(status.id, True)
        for category in chosen:
            profile = (category, *(c for c in status.categories if c != category))
            if profile != status.categories:
                yield Change(status.id, closed, profile)


def outlook(live: Live, changes: Sequence[Change] | None = None) -> Outlook:
    """Each category's longest wait over the next hour now and after each of ``changes`` (every
    single change for the categories that need one, if None; the first ones the budget allows)."""
    forecaster = Forecaster(live)
    layout = live_layout(live)
    baseline = forecaster.per_run(layout, RUNS)
    if changes is None:
        changes = list(
            single_changes(live, needing(live.config, forecaster.summary(layout, baseline, RUNS)))
        )
    count, runs = forecaster.runs_for(len(changes), RUNS)
    found = {c: forecaster.longest(layout_after(live, c), runs) for c in changes[:count]}
    as_they_are = forecaster.summary(layout, baseline, runs)
    return Outlook(
        as_they_are,
        {change: longest for change, (longest, _) in found.items()},
        runs,
        capped(baseline, as_they_are, runs),
        {change: cut for change, (_, cut) in found.items()},
    )


def what_if(
    live: Live, window: str, categories: tuple[str, ...] | None, open_it: bool
) -> list[Effect]:
    """Each category the change touches (the window's profile before and after, in that order),
    with its longest wait over the next hour before and after."""
    change = Change(window, open_it, categories)
    found = outlook(live, [change])
    after, capped_after = found.changes[change], found.capped[change]
    touched = [*live.windows[window].categories, *(categories or ())]
    return [
        Effect(
            c, found.now.get(c, 0.0), after.get(c, 0.0), c in found.capped_now, c in capped_after
        )
        for c in dict.fromkeys(touched)
    ]


def worst(live: Live, longest: Longest) -> tuple[str, float | None] | None:
    """The category with people waiting whose longest wait is furthest over its target (one
    nobody serves first); None when nobody waits."""
    found: tuple[float, str, float | None] | None = None
    for category in live.config.categories:
        if not live.waiting(category.id):
            continue
        wait = longest.get(category.id)
        ratio = math.inf if wait is None else wait / category.target_wait_minutes
        if found is None or ratio > found[0]:
            found = (ratio, category.id, wait)
    return None if found is None else (found[1], found[2])


def candidates(live: Live, category: str, longest: Longest) -> list[Change]:
    """The changes a suggestion for ``category`` tries: closed windows opened (as they are if
    they serve it, else with it first; one per profile: closed windows of one profile open
    alike), then open windows given it first, those whose first category has the most to spare
    first; ``CANDIDATES`` at most (a city hall has a hundred windows, and a suggestion is asked
    for while the manager waits)."""
    closed: list[Change] = []
    opened: list[tuple[float, int, Change]] = []
    profiles: set[tuple[str, ...]] = set()
    for change in single_changes(live, [category]):
        status = live.windows[change.window]
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
                (c.target_wait_minutes for c in live.config.categories if c.id == first), 1
            )
            wait = longest.get(first or "", 0.0)
            opened.append((math.inf if wait is None else wait / target, len(opened), change))
    opened.sort(key=lambda found: found[:2])
    return [*closed, *(change for _, _, change in opened)][:CANDIDATES]


def suggest(live: Live, limit: int = 3) -> list[Suggestion]:
    """For the worst category (:func:`worst`), the ``limit`` single changes that cut its longest
    wait over the next hour most, best first: a closed window that serves it opened, a closed
    one opened with it first, or an open one given it first. One window is suggested twice
    (opened as it is, and opened with the category first) only when the second does better."""
    forecaster = Forecaster(live)
    layout = live_layout(live)
    baseline = forecaster.per_run(layout, RUNS)
    found = worst(live, forecaster.summary(layout, baseline, RUNS))
    if found is None:
        return []
    category = found[0]
    changes = candidates(live, category, forecaster.summary(layout, baseline, RUNS))
    count, runs = forecaster.runs_for(len(changes), RUNS)
    live_longest = forecaster.summary(layout, baseline, runs)
    before = live_longest[category]
    before_capped = category in capped(baseline, live_longest, runs)
    tried: list[tuple[tuple[float, bool, bool, int], Suggestion]] = []
    for order, change in enumerate(changes[:count]):
        longest, cut = forecaster.longest(layout_after(live, change), runs)
        after = longest[category]
        # Figures show to a tenth of a minute: a gain that rounds away is none.
        if after is None or (before is not None and round(after, 1) >= round(before, 1)):
            continue
        profile = change.categories or live.windows[change.window].categories
        # Equal gains: a window that keeps its profile first, then a closed one (nobody's work
        # is taken away), then the hall file's order.
        rank = (round(after, 1), change.categories is not None, not change.open, order)
        suggestion = Suggestion(
            change.window,
            change.open,
            profile,
            category,
            before,
            after,
            before_capped,
            category in cut,
        )
        tried.append((rank, suggestion))
    # A window given the category first for no more than it gains opened as it is: the same
    # advice with its work moved for nothing (a policy that reads no profile order gains nothing).
    as_it_is = {s.window: rank[0] for rank, s in tried if not rank[1]}
    tried = [
        (rank, s) for rank, s in tried if not rank[1] or as_it_is.get(s.window, math.inf) > rank[0]
    ]
    tried.sort(key=lambda pair: pair[0])
    return [suggestion for _, suggestion in tried[:limit]]
