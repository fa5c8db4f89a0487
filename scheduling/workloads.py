"""The benchmark workloads: the hall days the targets of the scheduling issue are measured on.

* ``comprehensive`` — 10 fully comprehensive windows (every window serves all 5 categories, each
  in its own rotated order), one steady Poisson stream at 85% load, mean service 8 min,
  exponential (M/M/10: Erlang C applies exactly) or lognormal with CV 0.75 (Allen–Cunneen).
  Optionally a share of 绿色通道 (green lane) tickets.
* ``chain`` — 10 windows, two categories each, arranged as a long chain (Jordan & Graves): window
  ``i`` serves categories ``i`` and ``i+1`` (mod m). With m = 10 each category has 2 windows;
  with m = 5 each has 4 (windows i and i+5 are the same link). Optionally one hot category.
* ``skewed`` — our realistic day (see :func:`skewed`): a Latin square of comprehensive windows,
  two specialised ones, peaks, a surge in a category nine windows can serve.
* ``skewed-specialised`` — the first skewed day (context): the surge falls on tax-only windows.
* ``big`` — a 10,000-ticket city-hall day, for the simulator's speed.

Steady workloads run 20 hours from 01:00 local time (no midnight inside the day), issue for the
whole span, and count only tickets issued after a 2-hour warm-up: a hall that opens empty
needs about that long to reach the steady state that the formulas describe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from functools import partial
from typing import Any

import msgspec

from hall.config import DEFAULT_POLICY, HallConfig
from scheduling.simulator import ProfileMove, Service, Workload
from scheduling.staffing import allen_cunneen_mean_wait, mixture, mmc_wait_quantile

MEAN_SERVICE = 8.0  # minutes
WINDOWS = 10
LOAD = 0.85  # per window
STEADY_MINUTES = 1200.0
WARMUP = 120.0


def hall_config(
    name: str,
    categories: Sequence[tuple[str, float, int]],
    profiles: Sequence[Sequence[str]],
    *,
    policy: str = DEFAULT_POLICY,
    priorities: Sequence[Mapping[str, Any]] = (),
    weights: Sequence[Mapping[str, int]] = (),
) -> HallConfig:
    """A hall config: ``categories`` as (id, mean service minutes, target wait minutes);
    windows ``1..n`` with the given profiles (and ``weights[i]``, window i's category weights,
    where given); the zone and names are filler."""
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # ticket prefixes, skipping I and O
    table = {
        "hall": {"id": name, "name": name, "name_en": name, "policy": policy},
        "zones": [{"id": "main", "name": "main", "name_en": "main"}],
        "categories": [
            {
                "id": cid,
                "prefix": letters[i],
                "name": cid,
                "name_en": cid,
                "zone": "main",
                "mean_service_minutes": mean,
                "target_wait_minutes": target,
            }
            for i, (cid, mean, target) in enumerate(categories)
        ],
        "windows": [
            {
                "id": str(i + 1),
                "name": f"{i + 1}号窗口",
                "name_en": f"Window {i + 1}",
                "zone": "main",
                "categories": list(profile),
                "weights": dict(weights[i]) if i < len(weights) else {},
            }
            for i, profile in enumerate(profiles)
        ],
        "priorities": list(priorities),
    }
    return msgspec.convert(table, HallConfig)


GREEN = {"id": "green", "name": "绿色通道", "name_en": "Green lane", "rank": 20}
APPOINTMENT = {
    "id": "appointment",
    "name": "预约",
    "name_en": "Appointment",
    "rank": 10,
    "slot_minutes": 30,
}


def comprehensive(
    kind: str = "exponential", cv: float = 1.0, priority_share: float = 0.0
) -> Workload:
    """M/M/10 (or M/G/10) at 85% load through 10 fully comprehensive windows."""
    cats = [f"c{i}" for i in range(5)]
    profiles = [cats[i % 5 :] + cats[: i % 5] for i in range(WINDOWS)]
    config = hall_config(
        "comprehensive",
        [(c, MEAN_SERVICE, 15) for c in cats],
        profiles,
        priorities=[GREEN] if priority_share else [],
    )
    rate = WINDOWS * LOAD / MEAN_SERVICE
    service = Service(MEAN_SERVICE, cv, "exponential" if kind == "exponential" else "lognormal")
    label = "M/M/10" if kind == "exponential" else f"M/G/10 lognormal CV {cv}"
    extra = f", {priority_share:.0%} green-lane tickets" if priority_share else ""
    return Workload(
        name=f"comprehensive-{kind}" + ("-priority" if priority_share else ""),
        description=f"{label}: 10 comprehensive windows, 5 categories, 85% load{extra}",
        config=config,
        rates={c: [rate / 5] for c in cats},
        service={c: service for c in cats},
        period_minutes=STEADY_MINUTES,
        priority_share={"green": priority_share} if priority_share else {},
        start=time(1, 0),
        warmup=WARMUP,
    )


def chain(categories: int = 10, hot_share: float | None = None) -> Workload:
    """10 windows in a long chain over ``categories`` categories, exponential service, 85% load;
    with ``hot_share``, category c0 carries that share of the load and the rest share equally."""
    cats = [f"c{i}" for i in range(categories)]
    profiles = [[cats[i % categories], cats[(i + 1) % categories]] for i in range(WINDOWS)]
    config = hall_config("chain", [(c, MEAN_SERVICE, 15) for c in cats], profiles)
    rate = WINDOWS * LOAD / MEAN_SERVICE
    shares = {c: 1 / categories for c in cats}
    if hot_share is not None:
        shares = {c: (1 - hot_share) / (categories - 1) for c in cats}
        shares[cats[0]] = hot_share
    hot = f", c0 carries {hot_share:.0%}" if hot_share is not None else ", balanced"
    return Workload(
        name=f"chain{categories}" + ("-hot" if hot_share is not None else ""),
        description=f"10 windows x 2 categories in a chain over {categories} categories{hot}",
        config=config,
        rates={c: [rate * shares[c]] for c in cats},
        service={c: Service(MEAN_SERVICE, kind="exponential") for c in cats},
        period_minutes=STEADY_MINUTES,
        start=time(1, 0),
        warmup=WARMUP,
    )


# The skewed day, per half-hour from 09:00 to 17:00 (16 periods): a morning peak, a lunch dip,
# an afternoon peak. Multiplied by each category's base rate (arrivals per minute).
DAY_SHAPE = (0.9, 1.2, 1.3, 1.3, 1.2, 1.0, 0.8, 0.6, 0.6, 0.8, 1.1, 1.2, 1.2, 1.0, 0.8, 0.6)


# The demo county hall's categories (id, mean service minutes, target wait minutes) and their
# arrivals per minute at shape 1.0: the demand of both skewed days.
COUNTY_CATEGORIES = (
    ("general", 8.0, 20),
    ("social", 6.0, 15),
    ("medical", 5.0, 15),
    ("tax", 10.0, 20),
    ("estate", 15.0, 30),
    ("police", 7.0, 20),
    ("collection", 3.0, 10),
)
COUNTY_RATES = {
    "general": 0.28,
    "social": 0.145,
    "medical": 0.145,
    "tax": 0.14,
    "estate": 0.055,
    "police": 0.085,
    "collection": 0.17,
}
# The five categories of the comprehensive windows, in the order the Latin square rotates.
COMPREHENSIVE = ("general", "social", "medical", "tax", "police")


def skewed_profiles() -> list[list[str]]:
    """The skewed day's 12 windows: a 5 x 2 Latin square of comprehensive windows, 2 estate.

    Window ``i`` (1..10) lists :data:`COMPREHENSIVE` rotated by ``(i - 1) mod 5``; windows 1-5 keep
    all five, windows 6-10 drop the fifth of their rotation (so each category is dropped once);
    every comprehensive window lists certificate collection last. Each of the five categories is
    therefore first on exactly 2 windows, and at each later position on 2 windows (1 for the
    fifth), and is served by 9 of the 10 comprehensive windows. Windows 11-12 are real estate only.
    """
    profiles = []
    for i in range(10):
        rotation = [*COMPREHENSIVE[i % 5 :], *COMPREHENSIVE[: i % 5]]
        profiles.append([*rotation[: 5 if i < 5 else 4], "collection"])
    return [*profiles, ["estate"], ["estate"]]


def skewed(scale: float = 1.0, surge: float = 3.0, surging: str = "tax") -> Workload:
    """Our skewed day: a county hall of comprehensive windows (综合窗口), one category surging.

    Seven categories with the demo county hall's targets (config/default.toml; 10 to 30 min) and
    the first skewed day's demand (:data:`COUNTY_RATES`); lognormal service (CV 0.75), means 3 to
    15 minutes; 10% green-lane and 5% appointment tickets; 4% no-shows (the window waits 2 min),
    0.5 min to walk up; two staff pauses of about 10 minutes per window; a morning peak, a lunch
    dip, an afternoon peak (:data:`DAY_SHAPE`).

    The windows (:func:`skewed_profiles`): ten comprehensive windows over general, social,
    medical, tax and police affairs whose preference orders form a Latin square (each category
    first on exactly two windows and at every later position as often; windows 6-10 serve four of
    the five), certificate collection last on each, as halls list it; two specialised real-estate
    windows. Equal positions are not equal demand: general carries about 2.2 Erlangs at shape 1,
    police 0.6, so a fixed order still shelters the small categories most. From 10:00 to 11:30
    ``surging`` arrivals (tax by default: a filing deadline) are multiplied by ``surge``; nine of
    the ten comprehensive windows may serve them. At 10:30 the manager moves window 5 (where tax
    is last) to put the surging category first, and back at 12:00, the same for every policy.
    About 64% load on average (``scale`` 1), above 100% for the hall during the surge. ``scale``,
    ``surge`` and ``surging`` exist for the bench's sensitivity scan; the default is the
    benchmark day.
    """
    profiles = skewed_profiles()
    moved = (surging, *[c for c in profiles[4] if c != surging])
    return _county_day(
        "skewed",
        f"skewed county-hall day: 10 comprehensive windows (Latin square) + 2 estate,"
        f" {surging} x{surge:g} 10:00-11:30",
        profiles,
        (ProfileMove(90.0, "5", moved), ProfileMove(180.0, "5", tuple(profiles[4]))),
        scale,
        surge,
        surging,
    )


def skewed_specialised(scale: float = 1.0, surge: float = 3.0, surging: str = "tax") -> Workload:
    """The first skewed day, kept for context: the surge falls on windows nobody else can help.

    The same demand, service, priorities, no-shows and pauses as :func:`skewed` (so the same
    visitors), but the layout of the first design: six comprehensive windows over general, social,
    medical and police affairs, each in its own order, collection last; two tax windows that help
    with general; one tax-only window; two real-estate windows; window 12 general/medical/police.
    Tax is served only by the three tax windows (and window 5 from 10:30 to 12:00, moved by the
    manager to put tax first), so during a tax surge no calling policy can add capacity to it:
    the tax backlog is the same whatever the order, and only the other categories can be moved.
    """
    profiles = [
        ["general", "social", "medical", "collection"],
        ["social", "medical", "general", "collection"],
        ["medical", "general", "social", "collection"],
        ["general", "police", "social", "collection"],
        ["social", "medical", "general", "collection"],
        ["police", "general", "collection"],
        ["tax", "general"],
        ["tax", "general"],
        ["tax"],
        ["estate"],
        ["estate"],
        ["general", "medical", "police", "collection"],
    ]
    return _county_day(
        "skewed-specialised",
        f"first skewed day: {surging} x{surge:g} 10:00-11:30 on tax-only windows (context)",
        profiles,
        (
            ProfileMove(90.0, "5", ("tax", "social", "medical", "general")),
            ProfileMove(180.0, "5", ("social", "medical", "general", "collection")),
        ),
        scale,
        surge,
        surging,
    )


def _county_day(
    name: str,
    description: str,
    profiles: Sequence[Sequence[str]],
    moves: tuple[ProfileMove, ...],
    scale: float,
    surge: float,
    surging: str,
) -> Workload:
    """A 09:00-17:00 county-hall day with the demo county's demand and ``surging`` x ``surge``
    from 10:00 to 11:30 (half-hours 2-4)."""
    config = hall_config(name, COUNTY_CATEGORIES, profiles, priorities=[GREEN, APPOINTMENT])
    rates = {c: [scale * r * s for s in DAY_SHAPE] for c, r in COUNTY_RATES.items()}
    rates[surging] = [r * (surge if 2 <= i < 5 else 1.0) for i, r in enumerate(rates[surging])]
    return Workload(
        name=name,
        description=description,
        config=config,
        rates=rates,
        service={c: Service(mean, 0.75) for c, mean, _ in COUNTY_CATEGORIES},
        priority_share={"green": 0.10, "appointment": 0.05},
        no_show=0.04,
        walk=0.5,
        no_show_wait=2.0,
        pauses_per_window=2.0,
        pause_minutes=10.0,
        profile_moves=moves,
        start=time(9, 0),
    )


def big(tickets: int = 10_000) -> Workload:
    """A city hall's day of about ``tickets`` visitors over 9 hours: 190 windows, 8 categories,
    comprehensive and specialised windows, the skewed day's shape, lognormal service."""
    cats = [f"k{i}" for i in range(8)]
    means = [8.0, 6.0, 5.0, 10.0, 12.0, 7.0, 9.0, 6.0]
    profiles: list[list[str]] = []
    for i in range(190):
        if i < 110:  # comprehensive: 4 categories each, rotated
            profiles.append([cats[(i + k) % 8] for k in range(4)])
        else:  # specialised: one category, helping with a second
            profiles.append([cats[i % 8], cats[(i + 3) % 8]])
    config = hall_config("big", [(c, m, 15) for c, m in zip(cats, means, strict=True)], profiles)
    shape = (*DAY_SHAPE, 0.6, 0.5)
    per_minute = tickets / (sum(shape) * 30.0) / len(cats)
    return Workload(
        name="big",
        description=f"city hall, about {tickets} tickets in 9 h, 190 windows, 8 categories",
        config=config,
        rates={c: [per_minute * s for s in shape] for c in cats},
        service={c: Service(m, 0.75) for c, m in zip(cats, means, strict=True)},
        priority_share={},
        no_show=0.03,
        walk=0.5,
        start=time(8, 30),
    )


def _comprehensive_lognormal() -> Workload:
    return comprehensive("lognormal", 0.75)


def _comprehensive_priority() -> Workload:
    return comprehensive(priority_share=0.2)


WORKLOADS: dict[str, Callable[[], Workload]] = {
    "comprehensive": comprehensive,
    "comprehensive-lognormal": _comprehensive_lognormal,
    "comprehensive-priority": _comprehensive_priority,
    "chain10": chain,
    "chain10-hot": partial(chain, 10, 0.3),
    "chain5": partial(chain, 5),
    "chain5-hot": partial(chain, 5, 0.3),
    "skewed": skewed,
    "skewed-specialised": skewed_specialised,
    "big": big,
}


def from_config(
    config: HallConfig,
    *,
    load: float = 0.8,
    priority_share: float = 0.1,
    cv: float = 0.75,
    shape: Sequence[float] = DAY_SHAPE,
) -> Workload:
    """A plain day for any hall file: each category's demand matches the windows serving it (a
    window's capacity spread evenly over its profile) so that the windows are ``load`` busy on
    average, arriving with the skewed day's peaks (no surge); lognormal
    service (CV ``cv``) with each category's ``mean_service_minutes``; ``priority_share`` of the
    tickets split evenly over the priority classes (appointment classes book the slot that holds
    their arrival); 3% no-shows, 0.5 min to walk up, one 10-minute pause per window. The day
    starts at the first opening time of the hall's first period (09:00 if none)."""
    means = {c.id: c.mean_service_minutes for c in config.categories}
    # Each window's capacity is spread evenly over its profile: a category's demand (Erlangs)
    # is its share of the windows that serve it, so no category is over- or under-staffed.
    erlangs = dict.fromkeys(means, 0.0)
    for window in config.windows:
        for category in window.categories:
            erlangs[category] += load / len(window.categories)
    average_shape = sum(shape) / len(shape)
    rates = {c: erlangs[c] / means[c] / average_shape for c in means}
    start = time(9, 0)
    if config.hours.periods:
        hours, minutes = config.hours.periods[0].open.split(":")
        start = time(int(hours), int(minutes))
    classes = [p.id for p in config.priorities]
    return Workload(
        name=config.hall.id,
        description=f"{config.hall.name_en}: demand matched to the profiles, {load:.0%} load",
        config=config,
        rates={c: [rates[c] * s for s in shape] for c in means},
        service={c: Service(m, cv) for c, m in means.items()},
        priority_share={p: priority_share / len(classes) for p in classes},
        no_show=0.03,
        walk=0.5,
        pauses_per_window=1.0,
        start=start,
    )


@dataclass(frozen=True, slots=True)
class Reference:
    """Queueing theory for a workload pooled into one queue at its mean load over the day: exact
    for the steady comprehensive workloads, a lower reference for anything less pooled or more
    peaked. Allen–Cunneen mean wait (Erlang C when cs2 = 1) and the M/M/c p95 stretched alike."""

    servers: int
    rate: float  # per minute
    mean_service: float
    cs2: float
    mean_wait: float
    p95: float

    def describe(self) -> str:
        return (
            f"pooled reference: M/G/{self.servers}, {self.rate:.3f}/min, mean service"
            f" {self.mean_service:.2f} min, cs2 {self.cs2:.2f}: mean wait {self.mean_wait:.2f},"
            f" p95 {self.p95:.2f} (Erlang C + Allen-Cunneen)"
        )


def reference(workload: Workload) -> Reference:
    horizon = workload.horizon
    rates = {c: sum(r) * workload.period_minutes / horizon for c, r in workload.rates.items()}
    means = {c: workload.service[c].mean for c in rates}
    cvs = {c: math.sqrt(workload.service[c].cs2) for c in rates}
    rate, mean, cs2 = mixture(rates, means, cvs)
    servers = len(workload.config.windows)
    stretch = (1 + cs2) / 2
    return Reference(
        servers,
        rate,
        mean,
        cs2,
        allen_cunneen_mean_wait(servers, rate, mean, 1.0, cs2),
        mmc_wait_quantile(servers, rate, mean, 0.95) * stretch,
    )
