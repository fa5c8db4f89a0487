"""Staffing: Erlang C against its closed form, the square-root rule, Cobham, profile capacity.

Every reference value is computed here from a textbook formula written independently of
scheduling/staffing.py (factorial sums instead of the Erlang B recursion, direct sums instead of
bisection), never typed in.
"""

from __future__ import annotations

import math

import pytest

from scheduling.staffing import (
    allen_cunneen_mean_wait,
    erlang_c,
    halfin_whitt_beta,
    mixture,
    mmc_mean_wait,
    mmc_wait_quantile,
    mmc_wait_tail,
    priority_mean_waits,
    profile_shortfalls,
    servers_for_p_wait,
    service_level,
    square_root_staffing,
    staffing_plan,
    windows_needed,
)
from scheduling.workloads import chain


def erlang_c_closed_form(c: int, a: float) -> float:
    """P(wait) = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a)))."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (2, 1.0), (5, 4.2), (10, 8.5), (30, 25.0)])
def test_erlang_c_matches_the_closed_form(c: int, a: float) -> None:
    assert erlang_c(c, a) == pytest.approx(erlang_c_closed_form(c, a), rel=1e-12)


def test_erlang_c_edges() -> None:
    assert erlang_c(3, 0.0) == 0.0
    assert erlang_c(3, 3.0) == 1.0  # unstable: everyone waits
    assert mmc_mean_wait(3, 3 / 8, 8.0) == math.inf


def test_mm1_mean_wait() -> None:
    rho, s = 0.7, 8.0
    assert mmc_mean_wait(1, rho / s, s) == pytest.approx(rho * s / (1 - rho))


def test_the_reference_values_follow_from_the_formulas() -> None:
    """10 windows at 85%, 8 minutes: the reference values bench/simulate.py quotes (2.83, 12.6,
    2.21)."""
    c, s = 10, 8.0
    rate = c * 0.85 / s
    pw = erlang_c_closed_form(c, rate * s)
    mean = pw * s / (c - rate * s)
    assert mmc_mean_wait(c, rate, s) == pytest.approx(mean)
    assert round(mean, 2) == 2.83
    p95 = mmc_wait_quantile(c, rate, s, 0.95)
    assert mmc_wait_tail(c, rate, s, p95) == pytest.approx(0.05)
    assert round(p95, 1) == 12.6
    ac = allen_cunneen_mean_wait(c, rate, s, 1.0, 0.75**2)
    assert ac == pytest.approx(mean * (1 + 0.5625) / 2)
    assert round(ac, 2) == 2.21


def test_quantile_is_zero_when_few_wait() -> None:
    assert mmc_wait_quantile(10, 0.3, 8.0, 0.95) == 0.0  # P(wait) < 5% at 24% load


def test_cobham_conserves_work_and_reduces_to_fcfs() -> None:
    """With one service time, the classes' mean waits average (by rate) to the FCFS wait
    (Kleinrock's conservation law); a single class is plain M/M/c."""
    c, s = 10, 8.0
    rates = [0.2 * 1.0625, 0.8 * 1.0625]
    waits = priority_mean_waits(c, rates, s)
    fcfs = mmc_mean_wait(c, sum(rates), s)
    assert sum(r * w for r, w in zip(rates, waits, strict=True)) / sum(rates) == pytest.approx(fcfs)
    assert waits[0] < fcfs < waits[1]
    assert priority_mean_waits(c, [sum(rates)], s) == [pytest.approx(fcfs)]
    assert priority_mean_waits(2, [0.1, 0.3], 8.0)[1] == math.inf  # the normal class is unstable


@pytest.mark.parametrize("p_wait", [0.1, 0.2, 0.5])
def test_halfin_whitt_beta_inverts_its_function(p_wait: float) -> None:
    beta = halfin_whitt_beta(p_wait)
    phi = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    assert 1 / (1 + beta * big_phi / phi) == pytest.approx(p_wait, abs=1e-9)


@pytest.mark.parametrize("load", [9.0, 25.0, 60.0, 150.0, 400.0])
@pytest.mark.parametrize("p_wait", [0.2, 0.5])
def test_square_root_staffing_agrees_with_erlang_c(load: float, p_wait: float) -> None:
    """Halfin–Whitt: the square-root rule is the Erlang C answer to within a window or so."""
    exact = servers_for_p_wait(load, p_wait)
    assert erlang_c(exact, load) <= p_wait < erlang_c(exact - 1, load)
    assert abs(square_root_staffing(load, p_wait) - exact) <= 1


def test_windows_needed_is_the_smallest_meeting_the_service_level() -> None:
    rate, s = 1.0625, 8.0
    c = windows_needed(rate, s, within=10, share=0.8)
    assert service_level(c, rate, s, 10) >= 0.8 > service_level(c - 1, rate, s, 10)
    # 10 windows call 1 - C e^{-(c-a) t / s} of visitors within 10 minutes:
    assert service_level(10, rate, s, 10) == pytest.approx(
        1 - erlang_c_closed_form(10, 8.5) * math.exp(-(10 - 8.5) * 10 / 8)
    )
    assert windows_needed(rate, s, within=10, share=0.95) >= c
    assert windows_needed(rate, s, cs2=0.5) <= c  # less variable service needs no more windows
    assert windows_needed(0.0, s) == 0


def test_mixture_of_categories() -> None:
    rate, mean, cs2 = mixture({"a": 1.0, "b": 1.0}, {"a": 4.0, "b": 12.0}, {"a": 0.0, "b": 0.0})
    assert (rate, mean) == (2.0, 8.0)
    assert cs2 == pytest.approx((16 + 144) / 2 / 64 - 1)  # the spread of the means alone


def test_staffing_plan_pools_better_than_dedicated_windows() -> None:
    arrivals = {"a": [30.0, 60.0, 0.0], "b": [15.0, 30.0, 0.0]}
    plan = staffing_plan(arrivals, {"a": 8.0, "b": 12.0}, {"a": 0.75, "b": 0.75})
    assert [p.start for p in plan] == [0.0, 30.0, 60.0]
    assert plan[0].arrivals == pytest.approx(45.0)
    assert plan[0].load == pytest.approx((30 * 8 + 15 * 12) / 30)
    assert all(p.load < p.pooled <= p.dedicated for p in plan[:2])
    assert plan[1].pooled > plan[0].pooled
    assert (plan[2].pooled, plan[2].dedicated) == (0, 0)


def test_profile_shortfalls_find_an_overloaded_chain_link() -> None:
    """A 10-category chain gives each category 2 windows: 30% of 8.5 Erlangs does not fit."""
    hot = chain(10, 0.3)
    profiles = {w.id: w.categories for w in hot.config.windows}
    loads = {c: r[0] * hot.service[c].mean for c, r in hot.rates.items()}
    shortfalls = profile_shortfalls(profiles, loads)
    assert shortfalls and shortfalls[0].categories == ("c0",)
    assert shortfalls[0].load == pytest.approx(0.3 * 8.5)
    assert shortfalls[0].windows == 2
    balanced = chain(10)
    loads = {c: r[0] * balanced.service[c].mean for c, r in balanced.rates.items()}
    assert profile_shortfalls(profiles, loads) == []
    five = chain(5, 0.3)
    profiles5 = {w.id: w.categories for w in five.config.windows}
    loads5 = {c: r[0] * five.service[c].mean for c, r in five.rates.items()}
    assert profile_shortfalls(profiles5, loads5) == []
