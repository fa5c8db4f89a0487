"""The simulator: exact against the FCFS recursion, statistical against M/M/c, and its mechanics
(common random numbers, determinism, profile moves, pauses, the virtual clock)."""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import replace
from datetime import UTC, time

import pytest

from scheduling.policy import POLICIES
from scheduling.report import summarize
from scheduling.simulator import (
    ProfileMove,
    Service,
    Workload,
    day_seed,
    draw_visitors,
    origin,
    simulate,
    simulate_day,
)
from scheduling.staffing import erlang_c, mmc_mean_wait
from scheduling.workloads import (
    COMPREHENSIVE,
    hall_config,
    skewed,
    skewed_profiles,
    skewed_specialised,
)


def mmc(servers: int, load: float, *, minutes: float = 1200.0, warmup: float = 120.0) -> Workload:
    """M/M/c: one category, ``servers`` windows, exponential 8-minute service."""
    config = hall_config("mmc", [("a", 8.0, 15)], [["a"]] * servers)
    return Workload(
        name="mmc",
        description="M/M/c",
        config=config,
        rates={"a": [servers * load / 8.0]},
        service={"a": Service(8.0, kind="exponential")},
        period_minutes=minutes,
        start=time(1, 0),
        warmup=warmup,
    )


def test_equals_the_fcfs_recursion_ticket_by_ticket() -> None:
    """With one queue, longest-wait is FCFS: each wait is max(0, earliest free window - arrival)
    (Kiefer–Wolfowitz). The simulator, driving the real core, must agree exactly."""
    workload = mmc(3, 0.9, minutes=600, warmup=0)
    for day in range(3):
        seed = day_seed(5, day)
        visitors = draw_visitors(workload, random.Random(seed))
        free = [0.0] * 3
        expected = []
        for visitor in visitors:
            start = max(heapq.heappop(free), visitor.at)
            expected.append(start - visitor.at)
            heapq.heappush(free, start + visitor.service)
        result = simulate_day(workload, POLICIES["longest-wait"], seed, estimates=False)
        assert [r.wait for r in result.records] == pytest.approx(expected, abs=1e-6)


def test_mmc_against_erlang_c() -> None:
    """M/M/3 at 60% load, 80 days of 18 counted hours (~19,000 tickets). Stated tolerance: the mean
    wait within 20% of Erlang C (about 3.5 standard errors of an 80-day mean here) and the share
    of visitors who wait within 0.03 of C(3, 1.8). The bench runs the 10-window case longer."""
    workload = mmc(3, 0.6)
    results = simulate(workload, POLICIES["deadline"], days=80, seed=2026, estimates=False)
    waits = [r.wait for day in results for r in day.records if r.wait is not None]
    rate = 3 * 0.6 / 8.0
    assert statistics.fmean(waits) == pytest.approx(mmc_mean_wait(3, rate, 8.0), rel=0.20)
    share_waiting = sum(1 for w in waits if w > 0) / len(waits)
    assert share_waiting == pytest.approx(erlang_c(3, 1.8), abs=0.03)
    busy = sum(d.busy for d in results) / sum(d.available for d in results)
    assert busy == pytest.approx(0.6, abs=0.03)


def test_the_estimate_is_honest_on_mmc() -> None:
    """At issue the estimate is E[wait | queue] under M/M/c FCFS, so over many tickets its error
    averages out: bias within 0.3 min (the mean wait is ~2.4 min)."""
    workload = mmc(3, 0.6, minutes=600, warmup=60)
    results = simulate(workload, POLICIES["longest-wait"], days=20, seed=7)
    summary = summarize(workload, "longest-wait", 7, results)
    assert summary.estimate is not None
    assert abs(summary.estimate.bias) < 0.3
    assert summary.estimate.mae < summary.overall.mean


def test_common_random_numbers_and_determinism() -> None:
    workload = skewed()
    a = simulate_day(workload, POLICIES["deadline"], 11)
    b = simulate_day(workload, POLICIES["novosga"], 11)
    again = simulate_day(workload, POLICIES["deadline"], 11)
    key = [(r.category, r.priority, r.issued, r.service, r.no_show) for r in a.records]
    assert key == [(r.category, r.priority, r.issued, r.service, r.no_show) for r in b.records]
    assert [r.called for r in a.records] == [r.called for r in again.records]
    assert [r.called for r in a.records] != [r.called for r in b.records]


def test_every_ticket_is_called_and_the_books_balance() -> None:
    workload = skewed()
    for name, policy in POLICIES.items():
        result = simulate_day(workload, policy, 3)
        assert all(r.called is not None and r.called >= r.issued for r in result.records), name
        assert 0 < result.busy <= result.available, name
        assert result.tickets == len(result.records)  # no warm-up on a hall day


def test_draws_follow_the_workload() -> None:
    workload = skewed()
    visitors = [v for d in range(20) for v in draw_visitors(workload, random.Random(d))]
    expected = sum(sum(r) for r in workload.rates.values()) * workload.period_minutes
    assert len(visitors) / 20 == pytest.approx(expected, rel=0.05)
    green = sum(1 for v in visitors if v.priority == "green") / len(visitors)
    assert green == pytest.approx(0.10, abs=0.02)
    booked = [v for v in visitors if v.priority == "appointment"]
    assert booked and all(v.appointment is not None and v.appointment % 30 == 0 for v in booked)
    assert all(v.appointment is None for v in visitors if v.priority != "appointment")
    tax = [v.service for v in visitors if v.category == "tax"]
    assert statistics.fmean(tax) == pytest.approx(10.0, rel=0.1)


def test_a_profile_move_opens_a_category_at_its_minute() -> None:
    config = hall_config("move", [("a", 5.0, 15), ("b", 5.0, 15)], [["a"], ["a"]])
    workload = Workload(
        name="move",
        description="b has no window until minute 60",
        config=config,
        rates={"a": [0.2], "b": [0.1]},
        service={"a": Service(5.0), "b": Service(5.0)},
        period_minutes=120,
        profile_moves=(ProfileMove(60.0, "2", ("b", "a")),),
    )
    result = simulate_day(workload, POLICIES["deadline"], 1)
    b = [r for r in result.records if r.category == "b"]
    assert b and all(r.called is not None and r.called >= 60.0 for r in b)
    assert any(r.issued < 60.0 for r in b)


def test_pauses_take_window_time() -> None:
    workload = mmc(3, 0.5, minutes=480, warmup=0)
    plain = simulate_day(workload, POLICIES["deadline"], 9)
    paused = simulate_day(replace(workload, pauses_per_window=3.0), POLICIES["deadline"], 9)
    assert paused.available < plain.available
    assert statistics.fmean(r.wait or 0 for r in paused.records) > statistics.fmean(
        r.wait or 0 for r in plain.records
    )


def test_the_virtual_clock_is_aware_and_local() -> None:
    workload = skewed()
    start = origin(workload)
    assert start.tzinfo is UTC
    assert start.astimezone(workload.config.tz).time() == time(9, 0)
    assert start.astimezone(workload.config.tz).date() == workload.day


def test_the_skewed_day_is_a_latin_square_of_comprehensive_windows() -> None:
    """Each comprehensive category is first on exactly two windows and at every later position
    as often (no category sheltered by the layout more than another); the surging category can
    be served by nine windows; collection is last wherever it is listed; two estate windows."""
    profiles = skewed_profiles()
    comprehensive = profiles[:10]
    assert profiles[10:] == [["estate"], ["estate"]]
    assert all(p[-1] == "collection" and 5 <= len(p) <= 6 for p in comprehensive)
    for position in range(4):
        column = sorted(p[position] for p in comprehensive)
        assert column == sorted(COMPREHENSIVE * 2)
    assert sorted(p[4] for p in comprehensive[:5]) == sorted(COMPREHENSIVE)
    workload = skewed()
    assert sum("tax" in w.categories for w in workload.config.windows) == 9
    moved = workload.profile_moves[0].categories
    assert moved[0] == "tax" and sorted(moved) == sorted(profiles[4])
    assert workload.profile_moves[1].categories == tuple(profiles[4])


def test_both_skewed_days_see_the_same_visitors() -> None:
    """Only the windows differ between the skewed day and the first (specialised) one."""
    ours, first = skewed(), skewed_specialised()
    assert ours.rates == first.rates and ours.service == first.service
    for day in range(2):
        assert draw_visitors(ours, random.Random(day)) == draw_visitors(first, random.Random(day))
    assert [w.categories for w in first.config.windows if "tax" in w.categories] == [
        ("tax", "general"),
        ("tax", "general"),
        ("tax",),
    ]
