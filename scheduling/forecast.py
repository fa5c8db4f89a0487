"""Wait forecasts that hold under any calling policy: the policy itself run forward.

The quick estimate (:mod:`scheduling.estimate`) assumes roughly first come first served, and is
wrong by as much as the hall's policy departs from it. A forecast asks the policy instead: runs
of :mod:`scheduling.forward` from the live state, each calling ticket after ticket as windows
free up, with holding times, pauses and arrivals drawn; the median of the runs is the estimate
the screens show ("about N minutes") and the 10th and 90th percentiles its 80% interval.

One run gives the call time of every waiting ticket, and of a *ghost* per category (a normal
ticket taken now), so one forecast answers every ticket's view, the kiosk and the queues'
estimates. A hall's views ask after every command (each phone following its ticket, the manager's
live view), so :func:`hall_forecast` keeps a forecast for ``REUSE`` seconds while the windows stay
as they were: calls and finishes are what it foresaw. A ticket issued since is its category's
ghost when it joined right behind the last ticket forecast (the ghost stood just there), and a
queue's estimate stands until a ticket joins it; otherwise a fresh forecast is made. The runs are
seeded from the hall and the state version: the same state gives the same forecast.

Runs cost a policy call per ticket called, so their number follows the queue (a budget of
``BUDGET`` policy calls): ``RUNS`` runs while each is short, down to ``MIN_FULL`` runs that reach
every ticket when the queue is long (``STEPS`` calls each at most: a 200-ticket queue on 16
windows takes about 400 with the arrivals that pass and the ghosts). Then ``RUNS`` shorter runs
share what is left of the budget, so the tickets near the front (whose waits are the most
skewed) still have ``RUNS`` samples. A ticket with fewer samples gets the normal fit of them:
their mean, and the 80% *prediction* interval (Student's t with the samples' degrees of
freedom), which covers a wait drawn like them 80% of the time however few they are. A long wait
is a sum of many holding times, close to normal, which is where samples are few.

Where the forecast does not run, the quick estimate answers (minutes only, no interval): when more
than ``WAITING_LIMIT`` tickets wait; for a ticket that not every full run reached (beyond
``STEPS`` calls, or 8 hours from now); and, in a rush, when the forecasts of the last second made
``RATE`` policy calls already (see :func:`hall_forecast`). A forecast runs inside the hall's
writer, so both bound what the writer spends on them: ``MIN_FULL`` runs of ``STEPS`` calls at
most (the budget aside), about 40 ms with the slowest policy at ``WAITING_LIMIT`` waiting on a
16-window hall, and ``RATE`` calls a second of the clock however they are asked for.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

from hall.domain.state import HallState, WindowState
from scheduling.estimate import ServiceTimes, estimate_new, estimate_wait
from scheduling.forward import LOGNORMAL, Holding, Run, live_layout, simulate, start
from scheduling.policy import Policy

RUNS = 24
MIN_FULL = 3  # runs that reach every ticket, at least
BUDGET = 1_200  # policy calls per forecast: 10-45 ms, by the policy, on a 16-window hall
STEPS = 500  # policy calls a full run makes at most (about 200 waiting on 16 windows)
SHORT = 20  # policy calls a short run needs at least to be worth it
# Above this the quick estimate answers: a forecast costs up to 1,500 policy calls, and each call
# costs more the longer the queues (reserve: ~40 ms at 300 waiting, ~65 ms at 500).
WAITING_LIMIT = 300
LOW, HIGH = 0.10, 0.90
REUSE = 10.0  # seconds: how long a forecast answers while the windows stay as they were
RATE = 1_500  # policy calls a second of the clock for fresh forecasts (20-45 ms of CPU)
NEW = "normal"  # the class of each category's ghost
_Z = NormalDist().inv_cdf(HIGH)
_AWAY = (WindowState.CLOSED, WindowState.PAUSED)


@dataclass(frozen=True, slots=True)
class Forecast:
    """A wait in minutes from now: ``minutes`` the median, ``low`` and ``high`` the 10th and 90th
    percentiles; None when no working window can call the ticket. From the quick estimate (no
    interval) where the forecast does not run."""

    minutes: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class HallForecast:
    """Call-time quantiles (low, median, high; POSIX seconds) of every waiting ticket and ghost
    the runs reached, made at ``now`` from the state's ``version``."""

    now: float
    version: int
    calls: dict[str, tuple[float, float, float]]
    ghosts: dict[tuple[str, str], str]  # (category, class) -> the ghost's id
    unserved: frozenset[str]  # tickets and ghosts no working window may call
    last: dict[str, str]  # category -> its last waiting ticket then (its ghost came right after)
    steps: int  # policy calls the runs made

    def forecast(self, ticket_id: str, now: datetime) -> Forecast | None:
        """The ticket's forecast in minutes from ``now``; None where the runs did not reach it."""
        if ticket_id in self.unserved:
            return Forecast(None)
        found = self.calls.get(ticket_id)
        if found is None:
            return None
        now_s = now.timestamp()
        low, median, high = (max(at - now_s, 0.0) / 60 for at in found)
        return Forecast(median, low, high)

    def new(self, state: HallState, category: str, now: datetime) -> Forecast | None:
        """A normal ticket of ``category`` taken now: the ghost's forecast, if no ticket has
        joined the back of the category's queue since (else None)."""
        queue = state.queues.get(category)
        if (queue[-1] if queue else None) != self.last.get(category):
            return None
        ghost = self.ghosts.get((category, NEW))
        return None if ghost is None else self.forecast(ghost, now)

    def issued(self, state: HallState, ticket_id: str, now: datetime) -> Forecast | None:
        """A normal ticket issued since, right behind the last one of its queue then: the
        ghost's forecast (it stood just there); None otherwise."""
        ticket = state.tickets[ticket_id]
        queue = state.queues.get(ticket.category)
        if ticket.priority != NEW or ticket.target_window or not queue or queue[-1] != ticket_id:
            return None
        if (queue[-2] if len(queue) > 1 else None) != self.last.get(ticket.category):
            return None
        ghost = self.ghosts.get((ticket.category, NEW))
        return None if ghost is None else self.forecast(ghost, now)


def forecast_hall(
    state: HallState,
    now: datetime,
    times: ServiceTimes,
    policy: Policy,
    ghosts: Sequence[tuple[str, str]] = (),
    holding: Holding = LOGNORMAL,
) -> HallForecast:
    """Runs from the live state (see the module) until every waiting ticket and ghost is called;
    the state is not changed."""
    begun = start(state, now, times, policy, ghosts, holding)
    layout = live_layout(state)
    served = {queue for queue in begun.queues if layout.callers(queue)}
    targets = frozenset(t for q in served for t in begun.queues[q])
    unserved = frozenset(t for q, ids in begun.queues.items() if q not in served for t in ids)
    seed = seed_of(state)
    full = [simulate(begun, layout, seed, targets=targets, steps=STEPS)]
    wanted = min(max(BUDGET // max(full[0].steps, 1), MIN_FULL), RUNS)
    full += [
        simulate(begun, layout, seed + r, targets=targets, steps=STEPS) for r in range(1, wanted)
    ]
    short: list[Run] = []
    left = (BUDGET - sum(run.steps for run in full)) // RUNS  # for each short run
    if len(full) < RUNS and left >= SHORT:
        short = [
            simulate(begun, layout, seed + RUNS + r, targets=targets, steps=left)
            for r in range(RUNS)
        ]
    calls = {}
    for ticket_id in targets:
        found = summary(ticket_id, full, short)
        if found is not None:
            calls[ticket_id] = found
    last = {queue: ids[-1] for queue, ids in state.queues.items() if ids}
    steps = sum(run.steps for run in (*full, *short))
    return HallForecast(begun.now, state.version, calls, dict(begun.ghosts), unserved, last, steps)


def summary(
    ticket_id: str, full: Sequence[Run], short: Sequence[Run]
) -> tuple[float, float, float] | None:
    """The ticket's call-time quantiles: empirical over ``RUNS`` runs that all reached it, else
    the normal fit of the full runs (see the module); None if a full run did not reach it."""
    samples = [at for run in full if (at := run.called.get(ticket_id)) is not None]
    if len(samples) < len(full):
        return None
    if len(samples) < RUNS and short:
        more = [at for run in short if (at := run.called.get(ticket_id)) is not None]
        if len(more) == len(short):
            samples = more
    if len(samples) >= RUNS:
        low, median, high = quantiles(samples, LOW, 0.5, HIGH)
        return low, median, high
    n = len(samples)
    mean = sum(samples) / n
    deviation = math.sqrt(sum((at - mean) ** 2 for at in samples) / (n - 1))
    spread = student_t(n - 1) * deviation * math.sqrt(1 + 1 / n)
    return mean - spread, mean, mean + spread


def quantiles(values: Sequence[float], *qs: float) -> list[float]:
    """The ``qs`` quantiles of ``values``, interpolated between order statistics."""
    ordered = sorted(values)
    last = len(ordered) - 1
    found = []
    for q in qs:
        position = q * last
        below = math.floor(position)
        above = min(below + 1, last)
        found.append(ordered[below] + (ordered[above] - ordered[below]) * (position - below))
    return found


def student_t(freedom: int) -> float:
    """The ``HIGH`` quantile of Student's t with ``freedom`` degrees of freedom (Cornish-Fisher
    expansion about the normal: within 0.5% from 2 degrees on)."""
    z = _Z
    v = max(freedom, 1)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def seed_of(state: HallState) -> int:
    """The runs' seed: the hall's id and the state version."""
    return random.Random(f"{state.config.hall.id}:{state.version}").getrandbits(40)


@dataclass(slots=True)
class _Cached:
    state: HallState
    key: tuple[object, ...]
    now: float
    version: int
    forecast: HallForecast | None  # None: too many wait, the quick estimate answers


_CACHE: dict[int, _Cached] = {}
# Per state: (when, policy calls) of the forecasts made in the last second of the clock.
_MADE: dict[int, tuple[HallState, list[tuple[float, int]]]] = {}


def _may_run(state: HallState, now_s: float) -> bool:
    """Whether the forecasts of the last second of the clock left room under ``RATE``."""
    entry = _MADE.get(id(state))
    if entry is None or entry[0] is not state:
        return True
    entry[1][:] = [(at, steps) for at, steps in entry[1] if 0 <= now_s - at < 1.0]
    return sum(steps for _, steps in entry[1]) < RATE


def _made(state: HallState, now_s: float, steps: int) -> None:
    entry = _MADE.get(id(state))
    if entry is None or entry[0] is not state:
        if len(_MADE) > 64:  # states are few per process; this only stops a leak in test runs
            _MADE.clear()
        entry = _MADE[id(state)] = (state, [])
    entry[1].append((now_s, steps))


def hall_forecast(
    state: HallState, now: datetime, times: ServiceTimes, policy: Policy, *, fresh: bool = False
) -> HallForecast | None:
    """The forecast of every waiting ticket and of a normal ticket of each category taken now;
    None when more than ``WAITING_LIMIT`` wait, or when none holds and the forecasts of the last
    second made ``RATE`` policy calls already (the caller falls back to the quick estimate).

    A forecast answers for ``REUSE`` seconds while the windows stay as they were (none opened,
    closed, paused, resumed or given another profile): calls and finishes change little that it
    did not foresee, and a hall's views ask after every command. ``fresh`` asks for one of the
    state's version. Any new forecast (fresh, expired, or the windows changed) is made only
    within ``RATE``; beyond, the one at hand answers while it holds, so that a rush of commands
    never queues behind forecasts in the hall's writer.
    """
    windows = (state.layout_version, tuple(w.state in _AWAY for w in state.windows.values()))
    key = (policy, id(times), windows)
    cached = _CACHE.get(id(state))
    now_s = now.timestamp()
    holds = (
        cached is not None
        and cached.state is state
        and cached.key == key
        and abs(now_s - cached.now) <= REUSE
    )
    if cached is not None and holds and (cached.version == state.version or not fresh):
        return cached.forecast
    if sum(len(ids) for ids in state.queues.values()) > WAITING_LIMIT:
        found = None
    elif _may_run(state, now_s):
        ghosts = [(c.id, NEW) for c in state.config.categories]
        found = forecast_hall(state, now, times, policy, ghosts)
        _made(state, now_s, found.steps)
    else:
        return cached.forecast if cached is not None and holds else None
    if len(_CACHE) > 64:  # states are few per process; this only stops a leak in test runs
        _CACHE.clear()
    _CACHE[id(state)] = _Cached(state, key, now_s, state.version, found)
    return found


def forecast_wait(
    state: HallState, ticket_id: str, now: datetime, times: ServiceTimes, policy: Policy
) -> Forecast:
    """The forecast of a waiting ticket (KeyError if unknown); the quick estimate where the
    forecast does not run (see the module). Also the simulator's estimator hook."""
    found = hall_forecast(state, now, times, policy)
    answer = None
    if found is not None:
        answer = found.forecast(ticket_id, now) or found.issued(state, ticket_id, now)
        if answer is None and found.version != state.version:  # issued since, not behind
            found = hall_forecast(state, now, times, policy, fresh=True)
            answer = found.forecast(ticket_id, now) if found is not None else None
    if answer is not None:
        return answer
    return Forecast(estimate_wait(state, ticket_id, now, times).minutes)


def forecast_new(
    state: HallState,
    category: str,
    priority: str,
    now: datetime,
    times: ServiceTimes,
    policy: Policy,
) -> Forecast:
    """The forecast of a ticket of ``category`` and ``priority`` taken now: a queue's estimate, a
    kiosk's before printing."""
    answer = None
    if priority == NEW:
        found = hall_forecast(state, now, times, policy)
        answer = found.new(state, category, now) if found is not None else None
        if answer is None and found is not None and found.version != state.version:
            found = hall_forecast(state, now, times, policy, fresh=True)
            answer = found.new(state, category, now) if found is not None else None
    elif sum(len(ids) for ids in state.queues.values()) <= WAITING_LIMIT and _may_run(
        state, now.timestamp()
    ):
        found = forecast_hall(state, now, times, policy, [(category, priority)])
        _made(state, now.timestamp(), found.steps)
        ghost = found.ghosts[(category, priority)]
        answer = found.forecast(ghost, now)
    if answer is not None:
        return answer
    return Forecast(estimate_new(state, category, priority, now, times).minutes)
