"""How many windows to open: Erlang C, Allen–Cunneen, square-root staffing, profile capacity.

Units: time in minutes, rates in arrivals per minute, ``load`` (offered load, Erlangs) = arrival
rate x mean service time. A queue with ``servers`` identical windows is stable only when
``load < servers``; every function below returns the unstable answer (probability 1, infinite
wait, no service level) rather than raising, so a plan can show "not enough windows" plainly.

* Erlang C (M/M/c): P(wait) = C(c, a); mean wait = C s / (c - a); P(W > t) = C exp(-(c - a) t / s).
* Allen–Cunneen (G/G/c): the M/M/c mean wait times (ca² + cs²) / 2, where ca² and cs² are the
  squared coefficients of variation of inter-arrival and service times. For the tail we keep
  P(wait) = C and stretch the conditional wait by the same factor (Whitt's usual approximation).
* Cobham: mean waits of non-preemptive priority classes sharing c windows with one exponential
  service time: W_k = (C s / c) / ((1 - σ_{k-1}) (1 - σ_k)), σ_k = the load share of classes 1..k.
* Square-root staffing (Halfin–Whitt): c ≈ a + β √a, where β solves
  α = 1 / (1 + β Φ(β) / φ(β)) for a target probability α of waiting at all.

Staffing a day (:func:`staffing_plan`) treats each half-hour on its own, in steady state (the
"stationary independent period" approximation); it is reliable when service times are short next
to the period, as they are in a service hall, and it is what the square-root rule assumes too.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations


def erlang_b(servers: int, load: float) -> float:
    """Erlang B blocking probability, by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must be non-negative")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits at all in M/M/c (1.0 when ``load >= servers``)."""
    if load >= servers:
        return 1.0
    if load <= 0:
        return 0.0
    blocking = erlang_b(servers, load)
    return servers * blocking / (servers - load * (1 - blocking))


def mmc_mean_wait(servers: int, rate: float, mean_service: float) -> float:
    """Mean wait in queue of M/M/c, minutes (inf when unstable)."""
    load = rate * mean_service
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) * mean_service / (servers - load)


def mmc_wait_tail(servers: int, rate: float, mean_service: float, minutes: float) -> float:
    """P(wait > minutes) in M/M/c."""
    load = rate * mean_service
    if load >= servers:
        return 1.0
    return erlang_c(servers, load) * math.exp(-(servers - load) * minutes / mean_service)


def mmc_wait_quantile(servers: int, rate: float, mean_service: float, quantile: float) -> float:
    """The ``quantile`` (e.g. 0.95) of the M/M/c wait, minutes: 0 while P(wait) <= 1 - quantile."""
    load = rate * mean_service
    if load >= servers:
        return math.inf
    p_wait = erlang_c(servers, load)
    if p_wait <= 1 - quantile:
        return 0.0
    return mean_service * math.log(p_wait / (1 - quantile)) / (servers - load)


def allen_cunneen_mean_wait(
    servers: int, rate: float, mean_service: float, ca2: float = 1.0, cs2: float = 1.0
) -> float:
    """Allen–Cunneen G/G/c mean wait: the M/M/c wait times (ca² + cs²) / 2."""
    return mmc_mean_wait(servers, rate, mean_service) * (ca2 + cs2) / 2


def service_level(
    servers: int,
    rate: float,
    mean_service: float,
    within: float,
    ca2: float = 1.0,
    cs2: float = 1.0,
) -> float:
    """P(wait <= within minutes), Erlang C stretched by Allen–Cunneen (0 when unstable)."""
    load = rate * mean_service
    if load >= servers:
        return 0.0
    stretch = (ca2 + cs2) / 2
    tail = erlang_c(servers, load) * math.exp(-(servers - load) * within / (mean_service * stretch))
    return 1.0 - tail


def priority_mean_waits(servers: int, rates: Sequence[float], mean_service: float) -> list[float]:
    """Cobham's mean waits of non-preemptive priority classes in M/M/c, highest class first.

    ``rates`` are the classes' arrival rates; all share one exponential service time. A class
    whose cumulative load reaches ``servers`` (and every lower one) gets inf.
    """
    total = sum(rates) * mean_service
    base = math.inf if total >= servers else erlang_c(servers, total) * mean_service / servers
    waits: list[float] = []
    above = 0.0
    for rate in rates:
        below = above + rate * mean_service / servers
        if below >= 1 or math.isinf(base):
            waits.append(math.inf)
        else:
            waits.append(base / ((1 - above) * (1 - below)))
        above = below
    return waits


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _normal_pdf(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def halfin_whitt_beta(p_wait: float) -> float:
    """The β of square-root staffing that makes P(wait) = ``p_wait`` in the Halfin–Whitt limit."""
    if not 0 < p_wait < 1:
        raise ValueError("p_wait must be in (0, 1)")
    low, high = 0.0, 10.0  # the Halfin–Whitt function falls from 1 at β=0 to ~0 by β=10
    for _ in range(100):
        beta = (low + high) / 2
        if 1 / (1 + beta * _normal_cdf(beta) / _normal_pdf(beta)) > p_wait:
            low = beta
        else:
            high = beta
    return (low + high) / 2


def square_root_staffing(load: float, p_wait: float) -> int:
    """Windows by the square-root rule: ceil(a + β √a) for a target P(wait) = ``p_wait``."""
    return math.ceil(load + halfin_whitt_beta(p_wait) * math.sqrt(load))


def servers_for_p_wait(load: float, p_wait: float) -> int:
    """The fewest windows with Erlang C P(wait) <= ``p_wait`` (what square-root staffing
    approximates)."""
    servers = max(1, math.floor(load) + 1)
    while erlang_c(servers, load) > p_wait:
        servers += 1
    return servers


def windows_needed(
    rate: float,
    mean_service: float,
    *,
    within: float = 10.0,
    share: float = 0.8,
    ca2: float = 1.0,
    cs2: float = 1.0,
) -> int:
    """The fewest windows that call ``share`` of visitors within ``within`` minutes (0 when no
    one comes), by Erlang C with the Allen–Cunneen stretch."""
    if rate <= 0:
        return 0
    servers = max(1, math.floor(rate * mean_service) + 1)
    while service_level(servers, rate, mean_service, within, ca2, cs2) < share:
        servers += 1
    return servers


def mixture(
    rates: Mapping[str, float], means: Mapping[str, float], cvs: Mapping[str, float]
) -> tuple[float, float, float]:
    """(total rate, mean service, cs²) of the pooled stream of several categories: comprehensive
    windows see the mixture, whose variability includes the spread between category means."""
    total = sum(rates.values())
    if total <= 0:
        return 0.0, 0.0, 1.0
    mean = sum(rates[c] * means[c] for c in rates) / total
    second = sum(rates[c] * means[c] ** 2 * (1 + cvs[c] ** 2) for c in rates) / total
    return total, mean, second / mean**2 - 1


@dataclass(frozen=True, slots=True)
class SlotAdvice:
    """Advice for one period: windows for comprehensive (pooled) and for dedicated windows."""

    start: float  # minutes from the start of the day
    arrivals: float  # visitors expected in the period
    load: float  # offered load, Erlangs
    pooled: int  # comprehensive windows, every one serving every category
    dedicated: int  # windows if each category had its own (the sum over categories)


def staffing_plan(
    arrivals: Mapping[str, Sequence[float]],
    means: Mapping[str, float],
    cvs: Mapping[str, float] | None = None,
    *,
    slot_minutes: float = 30.0,
    within: float = 10.0,
    share: float = 0.8,
) -> list[SlotAdvice]:
    """Windows per period from expected arrivals per period and category (e.g. per half-hour).

    ``means``: mean service minutes per category; ``cvs``: their coefficients of variation
    (default 1, exponential). Arrivals are taken as Poisson (ca² = 1). The gap between ``pooled``
    and ``dedicated`` is what comprehensive windows (无差别受理) save.
    """
    cvs = cvs or dict.fromkeys(arrivals, 1.0)
    periods = max((len(v) for v in arrivals.values()), default=0)
    plan: list[SlotAdvice] = []
    for i in range(periods):
        rates = {c: (v[i] if i < len(v) else 0.0) / slot_minutes for c, v in arrivals.items()}
        total, mean, cs2 = mixture(rates, means, cvs)
        dedicated = sum(
            windows_needed(r, means[c], within=within, share=share, cs2=cvs[c] ** 2)
            for c, r in rates.items()
        )
        pooled = windows_needed(total, mean, within=within, share=share, cs2=cs2) if total else 0
        advice = SlotAdvice(i * slot_minutes, total * slot_minutes, total * mean, pooled, dedicated)
        plan.append(advice)
    return plan


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A set of categories whose load the windows able to serve them cannot carry."""

    categories: tuple[str, ...]
    load: float  # Erlangs offered by these categories
    windows: int  # windows serving at least one of them


def profile_shortfalls(
    profiles: Mapping[str, Collection[str]], loads: Mapping[str, float], *, limit: int = 16
) -> list[Shortfall]:
    """Sets of categories with load >= the number of windows that serve any of them.

    By Hall's theorem (max-flow min-cut on the window–category graph) work profiles can carry the
    loads, under any policy, only if no such set exists; a policy can still fail when one does
    not. Checks every subset, so only up to ``limit`` categories with load; minimal sets first.
    """
    categories = sorted(c for c, load in loads.items() if load > 0)
    if len(categories) > limit:
        raise ValueError(f"{len(categories)} loaded categories; the check is exponential")
    found: list[Shortfall] = []
    for size in range(1, len(categories) + 1):
        for subset in combinations(categories, size):
            if any(set(s.categories) <= set(subset) for s in found):
                continue
            windows = sum(1 for cats in profiles.values() if any(c in cats for c in subset))
            load = sum(loads[c] for c in subset)
            if load >= windows:
                found.append(Shortfall(subset, load, windows))
    return found
