"""Hall days drawn from a seed: the family a calling policy is judged on, so it cannot be tuned
to one day.

:func:`generate` draws a whole day from ``random.Random(seed)``:

* **the hall**: 5 to 20 windows; 3 to 8 categories, each with a lognormal service time (mean 3 to
  20 minutes, log-uniform; CV 0.5 to 1.0) and a target wait (10 to 30 minutes, longer for longer
  transactions);
* **the layout**: at least two fully comprehensive windows (综合窗口: every category, each window
  in its own random order, and never one category last on every one of them), the rest
  specialised (one to three categories, drawn in proportion to demand: halls open dedicated
  windows for busy categories);
* **the demand**: a random mix over the categories plus each specialised window's worth (give or
  take 40%) for the categories it serves; a morning and an afternoon peak around a lunch dip on a
  09:00-17:00-ish day (opening 08:30 or 09:00, 8 to 9 hours); on most days one or two surges (1
  to 2 hours at 2 to 4 times the rate) on any category, long transactions included;
* **the load** (0.6 to 1.1, see :func:`load`): the day's mean demand against the capacity of the
  windows that can serve it, at the most loaded group of categories;
* **the people**: a green-lane (绿色通道) share of 0 to 15%; appointments (预约) on half the days;
  0 to 8% no-shows; staff pauses; a lunch rota on most days; staff speeds 0.8 to 1.25; visitors
  who give up after a patience of 30 to 90 minutes (mean) on a third of the days.

:func:`flexible` is the same day with every window serving every category: run with ``novosga``
(first come first served with strict priority), it is the flexibility bound, a practical lower
bound on what any routing of the real layout can do.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from datetime import time
from itertools import combinations

import msgspec

from scheduling.simulator import LunchRota, Service, Workload, day_seed
from scheduling.workloads import APPOINTMENT, GREEN, hall_config

PERIOD = 30.0  # minutes
LOADS = (0.6, 1.1)
SPEEDS = (0.8, 1.25)
GREEN_SHARE = (0.0, 0.15)


def generate(seed: int) -> Workload:
    """The hall day of ``seed`` (see the module's docstring for what is drawn and how)."""
    rng = random.Random(f"hall-day-{seed}")  # a string seed: independent of the simulator's draws
    windows = rng.randint(5, 20)
    categories = [f"c{i}" for i in range(rng.randint(3, 8))]
    means = {c: round(math.exp(rng.uniform(math.log(3), math.log(20))), 2) for c in categories}
    cvs = {c: rng.uniform(0.5, 1.0) for c in categories}
    targets = {c: _target(means[c], rng) for c in categories}

    comprehensive = max(2, round(windows * rng.uniform(0.2, 1.0)))
    mix = _dirichlet(rng, len(categories))
    profiles = [rng.sample(categories, len(categories)) for _ in range(comprehensive)]
    lasts = {p[-1] for p in profiles}
    if len(lasts) == 1:  # no category is last everywhere: swap one window's first and last
        profiles[0][0], profiles[0][-1] = profiles[0][-1], profiles[0][0]
    for _ in range(windows - comprehensive):
        size = min(len(categories) - 1, rng.choice((1, 1, 2, 3)))
        profiles.append(_weighted_sample(rng, categories, mix, size))
    ids = [str(i + 1) for i in range(windows)]
    speeds = {w: rng.uniform(*SPEEDS) for w in ids}

    start = rng.choice((time(8, 30), time(9, 0)))
    periods = rng.randint(16, 18)
    shape = _day_shape(rng, periods)
    lunch = None
    if rng.random() < 0.75:
        shifts = 2 if windows < 12 else 3
        lunch = LunchRota(
            start=rng.uniform(150, 210), minutes=rng.choice((30, 45, 60)), shifts=shifts
        )
    pauses_per_window = rng.uniform(0, 3)
    pause_minutes = rng.uniform(5, 15)

    # Demand (Erlangs at the day's mean): a random mix of the comprehensive windows' capacity,
    # plus each specialised window's capacity for the categories it serves, give or take 40%:
    # departments staff their own windows, nobody sizes them to the day's demand.
    available = _available(periods * PERIOD, lunch, windows, pauses_per_window, pause_minutes)
    erlangs = {c: 0.0 for c in categories}
    comprehensive_capacity = sum(speeds[w] * available[w] for w in ids[:comprehensive])
    for c, share in zip(categories, mix, strict=True):
        erlangs[c] += comprehensive_capacity * share
    for w, profile in zip(ids[comprehensive:], profiles[comprehensive:], strict=True):
        sized = rng.uniform(0.6, 1.4)
        for c in profile:
            erlangs[c] += sized * speeds[w] * available[w] / len(profile)
    surges: list[tuple[str, int, int, float]] = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        length = rng.randint(2, 4)  # half-hours: 1 to 2 hours
        first = rng.randint(1, periods - length - 1)
        surges.append((rng.choice(categories), first, length, rng.uniform(2, 4)))
    profile_shape = {c: [s * rng.uniform(0.85, 1.15) for s in shape] for c in categories}
    for c, first, length, factor in surges:
        for i in range(first, first + length):
            profile_shape[c][i] *= factor
    rates = {
        c: [erlangs[c] / means[c] * s / _mean(profile_shape[c]) for s in profile_shape[c]]
        for c in categories
    }
    green = rng.uniform(*GREEN_SHARE)
    appointments = rng.uniform(0.02, 0.10) if rng.random() < 0.5 else 0.0
    priorities = [GREEN] + ([APPOINTMENT] if appointments else [])
    shares = {"green": green, **({"appointment": appointments} if appointments else {})}
    config = hall_config(
        f"generated-{seed}",
        [(c, means[c], targets[c]) for c in categories],
        profiles,
        priorities=priorities,
    )
    patience = Service(rng.uniform(30, 90), 1.0) if rng.random() < 1 / 3 else None
    workload = Workload(
        name=f"generated-{seed}",
        description="",
        config=config,
        rates=rates,
        service={c: Service(means[c], cvs[c]) for c in categories},
        period_minutes=PERIOD,
        priority_share=shares,
        no_show=rng.uniform(0, 0.08),
        walk=rng.uniform(0.3, 1.0),
        pauses_per_window=pauses_per_window,
        pause_minutes=pause_minutes,
        start=start,
        patience=patience,
        lunch=lunch,
        speeds=speeds,
    )
    # Surges and the peaks came on top of the mix: scale the whole day to the drawn load.
    target_load = rng.uniform(*LOADS)
    factor = target_load / load(workload)
    workload = dataclasses.replace(
        workload, rates={c: [r * factor for r in rs] for c, rs in rates.items()}
    )
    surge_text = ", ".join(
        f"{c} x{f:.1f} {first * PERIOD / 60:.1f}h+{n / 2:g}h" for c, first, n, f in surges
    )
    description = (
        f"{windows} windows ({comprehensive} comprehensive), {len(categories)} categories,"
        f" load {target_load:.2f}, green {green:.0%}"
        + (f", appointments {appointments:.0%}" if appointments else "")
        + (f", surges: {surge_text}" if surges else ", no surge")
        + (f", lunch {lunch.minutes:g} min x{lunch.shifts}" if lunch else "")
        + (f", patience {patience.mean:.0f} min" if patience else "")
    )
    return dataclasses.replace(workload, description=description)


def days(seed: int, n: int) -> list[Workload]:
    """Days ``0..n-1`` of a run seeded ``seed``: ``generate(day_seed(seed, d))``."""
    return [generate(day_seed(seed, d)) for d in range(n)]


def flexible(workload: Workload) -> Workload:
    """The same visitors in the same hall, every window serving every category (the flexibility
    bound when run with ``novosga``). Each window keeps its own categories first, in its order."""
    config = workload.config
    every = [c.id for c in config.categories]
    windows = tuple(
        msgspec.structs.replace(
            w, categories=(*w.categories, *[c for c in every if c not in w.categories])
        )
        for w in config.windows
    )
    return dataclasses.replace(
        workload,
        name=f"{workload.name}-flexible",
        description=f"{workload.description}; every window serves every category",
        config=msgspec.structs.replace(config, windows=windows),
    )


def capacity(workload: Workload) -> dict[str, float]:
    """Each window's capacity over the day, in Erlangs (the share of the opening hours it is
    staffed, not at lunch nor on an expected pause, times its staff's speed)."""
    ids = [w.id for w in workload.config.windows]
    available = _available(
        workload.horizon,
        workload.lunch,
        len(ids),
        workload.pauses_per_window,
        workload.pause_minutes,
    )
    return {w: workload.speeds.get(w, 1.0) * available[w] for w in ids}


def erlangs(workload: Workload) -> dict[str, float]:
    """Each category's mean offered load over the day, Erlangs."""
    horizon = workload.horizon
    return {
        c: sum(r) * workload.period_minutes * workload.service[c].mean / horizon
        for c, r in workload.rates.items()
    }


def load(workload: Workload) -> float:
    """The day's load on the hall: the largest, over every group of categories, of the group's
    mean offered load divided by the capacity of the windows that serve any of them (Hall's
    condition: below 1 some routing of the windows can serve the day's mean demand). The group of
    all categories gives offered load / capacity; a smaller group is larger when its windows are
    few. Each category is served by at least one window (else the load is infinite)."""
    demand = erlangs(workload)
    cap = capacity(workload)
    serving = {c: {w.id for w in workload.config.windows if c in w.categories} for c in demand}
    worst = 0.0
    names = sorted(demand)
    for size in range(1, len(names) + 1):
        for group in combinations(names, size):
            windows = set().union(*(serving[c] for c in group))
            total = sum(demand[c] for c in group)
            supply = sum(cap[w] for w in windows)
            if supply <= 0:
                return math.inf if total > 0 else worst
            worst = max(worst, total / supply)
    return worst


def _available(
    horizon: float,
    lunch: LunchRota | None,
    windows: int,
    pauses_per_window: float,
    pause_minutes: float,
) -> dict[str, float]:
    """Each window's expected staffed share of the opening hours (ids ``1..windows``)."""
    away = pauses_per_window * pause_minutes + (lunch.minutes if lunch else 0.0)
    share = max(0.0, 1 - away / horizon) if horizon else 0.0
    return {str(i + 1): share for i in range(windows)}


def _target(mean: float, rng: random.Random) -> int:
    """A target wait for a category of mean service ``mean``: 10 to 30 minutes, in fives."""
    return int(min(30, max(10, 5 * round(mean * rng.uniform(1.0, 2.5) / 5))))


def _dirichlet(rng: random.Random, n: int) -> list[float]:
    draws = [rng.gammavariate(1.0, 1.0) for _ in range(n)]
    total = sum(draws)
    return [d / total for d in draws]


def _weighted_sample(
    rng: random.Random, items: Sequence[str], weights: Sequence[float], k: int
) -> list[str]:
    """``k`` distinct items, each drawn in proportion to its weight among those left."""
    left = dict(zip(items, weights, strict=True))
    chosen: list[str] = []
    for _ in range(k):
        pick = rng.choices(list(left), weights=list(left.values()))[0]
        chosen.append(pick)
        del left[pick]
    return chosen


def _day_shape(rng: random.Random, periods: int) -> list[float]:
    """Arrival intensity per half-hour: a base, a morning and an afternoon peak (Gaussian bumps
    of about an hour), a dip at lunch between them."""
    morning, afternoon = rng.uniform(1.0, 2.5), rng.uniform(5.0, 6.5)  # hours after opening
    high_am, high_pm = rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9)
    shape = []
    for i in range(periods):
        t = (i + 0.5) * PERIOD / 60
        shape.append(
            0.5
            + high_am * math.exp(-((t - morning) ** 2) / 2)
            + high_pm * math.exp(-((t - afternoon) ** 2) / 2)
        )
    return shape


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


__all__ = ["capacity", "days", "erlangs", "flexible", "generate", "load"]
