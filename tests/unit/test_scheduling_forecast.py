"""Wait forecasts (scheduling.forecast, scheduling.forward, scheduling.arrivals) on hand-made
states: against M/M/c theory, following the policy, leaving the live state alone."""

from __future__ import annotations

import math
import pickle
import random
from datetime import datetime, timedelta

import pytest

from hall.domain.events import TicketCalled, WindowPaused
from hall.domain.state import HallState, apply
from scheduling import forecast
from scheduling.arrivals import arrival_rates
from scheduling.estimate import ServiceTimes, estimate_wait
from scheduling.forecast import REUSE, forecast_hall, forecast_new, forecast_wait, hall_forecast
from scheduling.forward import EXPONENTIAL
from scheduling.policy import POLICIES
from scheduling.staffing import erlang_c
from scheduling.whatif import outlook, read_live
from tests.unit.test_scheduling_support import at, hall, issue

MEAN = 8.0  # minutes, every category's (the hall's prior)


def erlang_quantile(stages: int, rate: float, p: float) -> float:
    """The ``p`` quantile of a sum of ``stages`` exponentials of rate ``rate`` (bisection)."""

    def cdf(t: float) -> float:
        term = total = math.exp(-rate * t)
        for i in range(1, stages):
            term *= rate * t / i
            total += term
        return 1 - total

    low, high = 0.0, (stages + 10 * math.sqrt(stages)) / rate
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return low


def mmc_state(windows: int, in_system: int) -> tuple[HallState, str]:
    """``windows`` windows serving one category, ``in_system`` tickets already there (the first
    ``windows`` of them called), and the ticket arriving now (its id)."""
    state = hall([["a"]] * windows)
    for n in range(in_system):
        ticket = issue(state, "a", 0)
        if n < windows:
            apply(state, TicketCalled(at=at(0), ticket=ticket.id, window=str(n + 1)))
    return state, issue(state, "a", 0).id


def test_a_plain_fcfs_hall_against_erlang_c() -> None:
    """c = 4 windows, exponential holding, 85% load, first come first served. Arrivals see the
    stationary number in the system (PASTA); given it, the wait is 0 with a window free, else
    the sum of ``ahead + 1`` exponential gaps of rate c / s. Over the states an arrival sees, the
    forecasts' medians average the conditional medians, the intervals cover 80% of the
    conditional distribution, and the conditional means average Erlang C's mean wait."""
    c, load = 4, 0.85 * 4
    weights = [load**n / math.factorial(n) for n in range(c)]
    weights += [load**c / math.factorial(c) * (load / c) ** (n - c) for n in range(c, 60)]
    draws = random.Random(7)
    policy = POLICIES["longest-wait"]
    medians, theory, means, covered = [], [], [], []
    for _ in range(80):
        n = draws.choices(range(len(weights)), weights)[0]
        state, arriving = mmc_state(c, n)
        times = ServiceTimes.from_config(state.config)
        found = forecast_hall(state, at(0), times, policy, holding=EXPONENTIAL)
        result = found.forecast(arriving, at(0))
        assert result is not None and result.minutes is not None
        assert result.low is not None and result.high is not None
        medians.append(result.minutes)
        if n < c:
            theory.append(0.0)
            means.append(0.0)
            covered.append(1.0 if result.low == 0 else 0.0)
            continue
        stages, rate = n - c + 1, c / MEAN
        theory.append(erlang_quantile(stages, rate, 0.5))
        means.append(stages / rate)
        inside = [erlang_quantile(stages, rate, q / 200) for q in range(1, 200)]
        covered.append(sum(result.low <= t <= result.high for t in inside) / len(inside))
    wait = erlang_c(c, load) * MEAN / (c - load)  # Erlang C mean wait
    assert sum(means) / len(means) == pytest.approx(wait, rel=0.25)  # the states are typical
    assert sum(medians) / len(medians) == pytest.approx(sum(theory) / len(theory), rel=0.06)
    assert 0.74 <= sum(covered) / len(covered) <= 0.86


def test_the_forecast_follows_the_policy() -> None:
    """One idle window serving a then b; b has waited longer. Under profile-order the window
    calls a first, under longest-wait (and Novo SGA's arrival order) b first: the forecasts say
    so, where the quick estimate (roughly first come first served) cannot tell them apart."""
    state = hall([["a", "b"]])
    older = issue(state, "b", 0)
    newer = issue(state, "a", 1)
    times = ServiceTimes.from_config(state.config)
    now = at(2)
    first = {}
    for name in ("profile-order", "longest-wait", "novosga"):
        policy = POLICIES[name]
        b = forecast_wait(state, older.id, now, times, policy).minutes
        a = forecast_wait(state, newer.id, now, times, policy).minutes
        assert a is not None and b is not None
        first[name] = "a" if a < b else "b"
        assert min(a, b) == 0  # the idle window calls one of them now
    assert first == {"profile-order": "a", "longest-wait": "b", "novosga": "b"}


def busy_hall() -> tuple[HallState, ServiceTimes]:
    """Three windows, two categories, green-lane and normal tickets, one window paused."""
    state = hall([["a", "b"], ["b", "a"], ["a"]])
    for minute in range(30):
        issue(state, "a" if minute % 3 else "b", minute, "green" if minute % 7 == 0 else "normal")
    apply(state, TicketCalled(at=at(30), ticket=state.queues["a"][0], window="1"))
    return state, ServiceTimes.from_config(state.config)


def test_the_live_state_is_left_as_it_was_and_a_state_gives_one_forecast() -> None:
    state, times = busy_hall()
    before = pickle.dumps(state)
    policy = POLICIES["weighted"]
    first = forecast_hall(state, at(31), times, policy, [("b", "normal")])
    outlook(read_live(state, at(31), times, policy))
    assert pickle.dumps(state) == before
    again = forecast_hall(state, at(31), times, policy, [("b", "normal")])
    assert again.calls == first.calls and len(first.calls) == 30  # 29 waiting, 1 ghost


def test_a_forecast_answers_for_a_while_unless_the_windows_change() -> None:
    """Views ask after every command; a forecast stands for ``REUSE`` seconds while no window
    opens, closes, pauses or changes profile. A ticket issued right behind the last one forecast
    is its category's ghost; a queue's estimate is made again once a ticket joins it."""
    state, times = busy_hall()
    policy = POLICIES["longest-wait"]

    def second(n: float) -> datetime:
        return at(31) + timedelta(seconds=n)

    made = hall_forecast(state, second(0), times, policy)
    assert made is not None
    head = state.queues["b"][0]
    apply(state, TicketCalled(at=second(2), ticket=head, window="2"))  # foreseen
    assert hall_forecast(state, second(3), times, policy) is made
    joined = issue(state, "a", 31 + 4 / 60)  # right behind the last a forecast
    ghost = made.forecast(made.ghosts[("a", "normal")], second(5))
    assert forecast_wait(state, joined.id, second(5), times, policy) == ghost
    assert hall_forecast(state, second(5), times, policy) is made
    later = forecast_new(state, "a", "normal", second(6), times, policy)  # behind the one joined
    again = hall_forecast(state, second(6), times, policy)
    assert again is not made and again is not None and again.version == state.version
    assert later.minutes is not None and ghost.minutes is not None and later.minutes > ghost.minutes
    apply(state, WindowPaused(at=second(7), window="3", reason="break"))
    paused = hall_forecast(state, second(7), times, policy)
    assert paused is not again
    assert hall_forecast(state, second(8 + REUSE), times, policy) is not paused


def test_fresh_forecasts_keep_within_the_rate_whatever_asks_for_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A window changing (or the forecast expiring) asks for a new forecast as ``fresh`` does:
    within ``RATE`` policy calls a second of the clock, else the quick estimate answers (None)
    until the second has passed. A priority ticket's forecast counts too."""
    state, times = busy_hall()
    policy = POLICIES["longest-wait"]
    made = hall_forecast(state, at(31), times, policy)
    assert made is not None
    monkeypatch.setattr(forecast, "RATE", made.steps)  # this one used the second's calls
    apply(state, WindowPaused(at=at(31), window="3", reason="break"))
    assert hall_forecast(state, at(31), times, policy) is None
    priority = forecast_new(state, "a", "green", at(31), times, policy)
    assert priority.low is None  # the quick estimate
    later = at(31) + timedelta(seconds=1)
    again = hall_forecast(state, later, times, policy)
    assert again is not None and again is not made


def test_where_the_forecast_does_not_run_the_quick_estimate_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, times = busy_hall()
    policy = POLICIES["weighted"]
    last = state.queues["a"][-1]
    found = forecast_wait(state, last, at(31), times, policy)
    assert found.low is not None and found.high is not None
    assert found.low <= found.minutes <= found.high  # type: ignore[operator]
    monkeypatch.setattr(forecast, "WAITING_LIMIT", 10)
    state, times = busy_hall()  # the same, not forecast yet (forecasts are kept per state)
    quick = forecast_wait(state, last, at(31), times, policy)
    assert quick.minutes == estimate_wait(state, last, at(31), times).minutes
    assert quick.low is None and quick.high is None


def test_nobody_to_call_it_is_no_forecast() -> None:
    state = hall([["a"]], closed=["1"])
    waiting = issue(state, "a", 0)
    times = ServiceTimes.from_config(state.config)
    policy = POLICIES["weighted"]
    assert forecast_wait(state, waiting.id, at(1), times, policy).minutes is None
    assert forecast_new(state, "a", "normal", at(1), times, policy).minutes is None


def test_a_new_ticket_waits_behind_those_waiting() -> None:
    state, times = busy_hall()
    policy = POLICIES["longest-wait"]  # first come first served: behind everyone
    new = forecast_new(state, "a", "normal", at(31), times, policy).minutes
    last = forecast_wait(state, state.queues["a"][-1], at(31), times, policy).minutes
    assert new is not None and last is not None and new > last


def test_arrival_rates_follow_todays_tickets() -> None:
    state = hall([["a", "b"]])
    for minute in range(120):  # one a a minute for two hours, a green b every ten
        issue(state, "a", minute)
        if minute % 10 == 0:
            issue(state, "b", minute, "green")
    rates = arrival_rates(state, at(120))
    assert rates[("a", "normal")] * 60 == pytest.approx(1.0, rel=0.05)
    assert rates[("b", "green")] * 60 == pytest.approx(0.1, rel=0.35)
    # The crowd at the door when the hall opens reads as a burst: ten tickets, a quarter of an
    # hour later, as under half a ticket a minute, fading.
    opening = hall([["a"]])
    for _ in range(10):
        issue(opening, "a", 0)
    assert arrival_rates(opening, at(15))[("a", "normal")] * 60 < 0.3
    assert arrival_rates(opening, at(44))[("a", "normal")] * 60 < 0.04
    assert arrival_rates(opening, at(46)) == {}
