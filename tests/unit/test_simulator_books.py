"""The simulator hides no ticket: every ticket issued ends exactly once, with an outcome that
agrees with how its day went (closing practice, the hard stop before midnight, abandonment, lunch,
staff speeds), on random days overloaded ones included; and the estimator hook."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.domain.state import HallState, TicketState
from scheduling.estimate import ServiceTimes
from scheduling.policy import POLICIES, Policy
from scheduling.report import EstimateError, format_compare, format_summary, summarize
from scheduling.simulator import (
    OUTCOMES,
    DayResult,
    LunchRota,
    ProfileMove,
    Service,
    Workload,
    draw_visitors,
    hard_stop,
    simulate_day,
)
from scheduling.workloads import APPOINTMENT, GREEN, hall_config


def one_queue(
    windows: int, load: float, *, minutes: float = 120.0, start: time = time(9, 0), **extra: object
) -> Workload:
    """One category, ``windows`` windows, 8-minute lognormal service, ``minutes`` of issuing."""
    config = hall_config("books", [("a", 8.0, 15)], [["a"]] * windows)
    workload = Workload(
        name="books",
        description="one queue",
        config=config,
        rates={"a": [windows * load / 8.0]},
        service={"a": Service(8.0, 0.75)},
        period_minutes=minutes,
        start=start,
    )
    return replace(workload, **extra)  # type: ignore[arg-type]


def check_books(workload: Workload, result: DayResult) -> None:
    """Every ticket once, and each outcome consistent with the day (see Record)."""
    horizon, stop = workload.horizon, hard_stop(workload)
    records = result.records
    assert len(records) == result.tickets  # no warm-up on these days
    assert Counter(r.outcome for r in records) == {o: n for o, n in result.outcomes.items() if n}
    assert sum(result.outcomes.values()) == result.tickets
    for r in records:
        assert r.called is None or r.issued <= r.called <= stop, r
        assert r.left is None or r.issued <= r.left <= stop, r
        match r.outcome:
            case "served":
                assert r.called is not None and r.called < horizon and not r.no_show, r
                assert r.left is None
            case "after-hours":
                assert r.called is not None and r.called >= horizon and not r.no_show, r
                assert workload.closing == "serve" and r.left is None
            case "no-show":
                assert r.called is not None and r.no_show and r.left is None, r
            case "abandoned":
                assert workload.patience is not None and r.reason == "left", r
                assert r.called is None and r.left is not None and r.left < stop, r
            case "sent-home":
                if r.reason == "closing":
                    assert workload.closing == "send-home" and r.called is None, r
                    assert r.left == horizon
                else:
                    assert r.reason == "day-end" and r.left == stop, r
            case _:
                raise AssertionError(f"no outcome: {r}")
    assert 0 <= result.busy <= result.available + 1e-9
    assert result.after_hours >= 0


@st.composite
def random_days(draw: st.DrawFn) -> Workload:
    """A small hall day: 1-3 categories, 1-4 windows (a category may have none), load up to
    1.5, patience, lunch, speeds, pauses, no-shows, priorities, a profile move, either closing
    practice; some days close so late that the hard stop comes before the queue is empty."""
    categories = ["a", "b", "c"][: draw(st.integers(1, 3))]
    means = {c: draw(st.sampled_from([2.0, 5.0, 10.0])) for c in categories}
    windows = draw(st.integers(1, 4))
    profiles = [
        draw(st.permutations(categories).map(lambda p: p[: 1 + len(p) // 2]))
        for _ in range(windows)
    ]
    config = hall_config(
        "random",
        [(c, means[c], 15) for c in categories],
        profiles,
        priorities=[GREEN, APPOINTMENT],
    )
    load = draw(st.floats(0.2, 1.5))
    periods = draw(st.integers(1, 3))
    shape = [draw(st.floats(0.5, 1.5)) for _ in range(periods)]
    rates = {c: [windows * load / len(categories) / means[c] * s for s in shape] for c in means}
    patience = draw(
        st.none() | st.sampled_from([Service(5.0, kind="exponential"), Service(20.0, 0.5)])
    )
    lunch = draw(st.none() | st.builds(LunchRota, st.sampled_from([0.0, 20.0]), st.just(15.0)))
    speeds = {
        str(i + 1): draw(st.sampled_from([0.5, 1.0, 1.0, 2.0]))
        for i in range(windows)
        if draw(st.booleans())
    }
    moves = ()
    if draw(st.booleans()):
        moves = (ProfileMove(draw(st.floats(0, 60)), "1", tuple(reversed(categories))),)
    return Workload(
        name="random",
        description="a random small day",
        config=config,
        rates=rates,
        service={c: Service(m, draw(st.sampled_from([0.0, 0.75, 1.5]))) for c, m in means.items()},
        period_minutes=30.0,
        priority_share={"green": draw(st.sampled_from([0.0, 0.2])), "appointment": 0.1},
        no_show=draw(st.sampled_from([0.0, 0.1])),
        walk=draw(st.sampled_from([0.0, 0.5])),
        pauses_per_window=draw(st.sampled_from([0.0, 2.0])),
        profile_moves=moves,
        start=draw(st.sampled_from([time(9, 0), time(21, 30), time(22, 0)])),
        patience=patience,
        lunch=lunch,
        speeds=speeds,
        closing=draw(st.sampled_from(["serve", "send-home"])),
    )


@settings(max_examples=25, deadline=None)
@given(workload=random_days(), seed=st.integers(0, 2**31))
def test_every_ticket_is_accounted_for_once(workload: Workload, seed: int) -> None:
    for name, policy in POLICIES.items():
        result = simulate_day(workload, policy, seed)
        try:
            check_books(workload, result)
        except AssertionError as error:
            raise AssertionError(f"policy {name}, seed {seed}") from error


def test_a_day_that_would_run_past_midnight_sends_the_rest_home() -> None:
    """Two hours of 1.6x overload closing at 23:00: the queue would empty after midnight, where
    the core expires open tickets. The hall serves after hours until 23:30, then sends the rest
    home, those at a window too; nothing is dropped and nothing crosses the business day."""
    workload = one_queue(2, 1.6, start=time(21, 0), walk=0.5)
    stop = hard_stop(workload)
    assert stop == 150.0  # 23:30, the hard stop, 150 minutes after 21:00
    for name, policy in POLICIES.items():
        result = simulate_day(workload, policy, 4)
        check_books(workload, result)
        late = [r for r in result.records if r.reason == "day-end"]
        assert len(late) >= 10, name
        assert all(r.outcome == "sent-home" and r.left == stop for r in late)
        held = [r for r in late if r.called is not None]
        assert 0 < len(held) <= 2, name  # the two windows' visitors at the stop
        assert result.outcomes["after-hours"] > 0
        assert result.after_hours == pytest.approx(2 * (stop - workload.horizon), abs=1.0)


def test_sending_home_at_closing_serves_nobody_after_hours() -> None:
    workload = one_queue(2, 1.4, closing="send-home")
    result = simulate_day(workload, POLICIES["longest-wait"], 2)
    check_books(workload, result)
    home = [r for r in result.records if r.outcome == "sent-home"]
    assert home and all(r.reason == "closing" and r.left == 120.0 for r in home)
    assert len(home) == result.backlog
    assert result.outcomes["after-hours"] == 0
    served = simulate_day(replace(workload, closing="serve"), POLICIES["longest-wait"], 2)
    assert served.outcomes["after-hours"] == len(home)  # the same visitors, served after hours


def test_impatient_visitors_leave_at_their_patience() -> None:
    """A deterministic 6-minute patience in an overload: whoever is not called within 6 minutes
    leaves at exactly issue + 6, and nobody called waited longer."""
    workload = one_queue(2, 1.5, patience=Service(6.0, kind="deterministic"))
    result = simulate_day(workload, POLICIES["longest-wait"], 3)
    check_books(workload, result)
    gone = [r for r in result.records if r.outcome == "abandoned"]
    assert len(gone) > 10
    assert all(r.left == pytest.approx(r.issued + 6.0) for r in gone)
    assert all(r.wait <= 6.0 + 1e-9 for r in result.records if r.wait is not None)
    summary = summarize(workload, "longest-wait", 3, [result])
    assert summary.left.n == len(gone) and summary.left.max == pytest.approx(6.0)
    assert "left uncalled" in format_summary(summary) and "abandoned" in format_summary(summary)


def test_patience_shifts_no_other_draw() -> None:
    """Common random numbers: patience has its own stream, so the visitors stay the same."""
    plain = one_queue(2, 0.9)
    patient = replace(plain, patience=Service(10.0))
    a = simulate_day(plain, POLICIES["weighted"], 8, estimates=False)
    b = simulate_day(patient, POLICIES["weighted"], 8, estimates=False)
    assert [(r.issued, r.service, r.no_show) for r in a.records] == [
        (r.issued, r.service, r.no_show) for r in b.records
    ]
    assert draw_visitors(plain, random.Random(8)) == draw_visitors(patient, random.Random(8))


def test_lunch_takes_its_minutes_out_of_opening_hours() -> None:
    """Two shifts of 30 minutes on four windows: 120 window-minutes less available, exactly,
    and lunch is taken in turns (never more than two windows away at once)."""
    workload = one_queue(4, 0.5, minutes=240.0)
    rota = replace(workload, lunch=LunchRota(start=60.0, minutes=30.0, shifts=2))
    plain = simulate_day(workload, POLICIES["deadline"], 5)
    lunched = simulate_day(rota, POLICIES["deadline"], 5)
    check_books(rota, lunched)
    assert plain.available == 4 * 240.0
    assert lunched.available == pytest.approx(4 * 240.0 - 4 * 30.0)
    assert statistics.fmean(r.wait or 0 for r in lunched.records) > statistics.fmean(
        r.wait or 0 for r in plain.records
    )


def test_a_faster_window_takes_less_time_per_visitor() -> None:
    """One window at speed 2 with fixed 8-minute service: each visitor holds it 4 minutes."""
    config = hall_config("speed", [("a", 8.0, 15)], [["a"]])
    workload = Workload(
        name="speed",
        description="one fast window",
        config=config,
        rates={"a": [0.1]},
        service={"a": Service(8.0, kind="deterministic")},
        period_minutes=600.0,
        speeds={"1": 2.0},
    )
    result = simulate_day(workload, POLICIES["deadline"], 1, estimates=False)
    check_books(workload, result)
    assert all(r.service == 8.0 for r in result.records)  # the draw stays the visitor's
    assert result.busy + result.after_hours == pytest.approx(4.0 * result.tickets)
    with pytest.raises(ValueError, match="speed"):
        simulate_day(replace(workload, speeds={"9": 2.0}), POLICIES["deadline"], 1)


def test_a_day_that_issues_past_the_hard_stop_is_refused() -> None:
    with pytest.raises(ValueError, match="hard stop"):
        simulate_day(one_queue(1, 0.5, start=time(22, 0)), POLICIES["deadline"], 1)


@dataclass(frozen=True)
class Guess:
    minutes: float
    low: float
    high: float


class QueueLength:
    """A tiny estimator: one mean service per ticket waiting ahead, interval [0, 2x that]."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, state: HallState, ticket_id: str, now: datetime, times: ServiceTimes, policy: Policy
    ) -> Guess:
        ticket = state.tickets[ticket_id]
        assert ticket.state is TicketState.WAITING and ticket.issued_at == now
        assert policy is POLICIES["longest-wait"]
        self.calls.append(ticket_id)
        ahead = state.queues[ticket.category].index(ticket_id)
        minutes = ahead * times.mean(ticket.category) / len(state.windows)
        return Guess(minutes, 0.0, 2 * minutes)


def test_the_estimator_hook() -> None:
    workload = one_queue(2, 0.95)
    estimator = QueueLength()
    result = simulate_day(
        workload, POLICIES["longest-wait"], 6, estimator=estimator, estimate_every=3
    )
    records = result.records
    assert len(estimator.calls) == len(records[::3])
    assert all(r.estimate is not None and r.estimate_high is not None for r in records[::3])
    skipped = [r for i, r in enumerate(records) if i % 3]
    assert all(r.estimate is None and r.estimate_low is None for r in skipped)
    for r in records[::3]:
        assert r.estimate_high == 2 * r.estimate and r.estimate_low == 0.0
    error = EstimateError.of(records)
    assert error is not None
    estimated = [r for r in records[::3] if r.wait is not None]
    inside = [r for r in estimated if r.wait is not None and r.wait <= 2 * (r.estimate or 0)]
    assert error.intervals == len(estimated)
    assert error.coverage == pytest.approx(len(inside) / len(estimated))
    assert 0 < error.coverage < 1
    summary = summarize(workload, "longest-wait", 6, [result])
    assert "80% interval covers" in format_summary(summary)
    assert "80% interval coverage" in format_compare([summary])
    quick = simulate_day(workload, POLICIES["longest-wait"], 6, estimate_every=3)
    assert [r.estimate is None for r in quick.records] == [i % 3 != 0 for i in range(len(records))]
    assert all(r.estimate_low is None for r in quick.records)  # the quick one gives no interval
    assert EstimateError.of(quick.records) is not None
    assert EstimateError.of(quick.records).coverage is None  # type: ignore[union-attr]


def test_the_summary_counts_every_outcome() -> None:
    workload = one_queue(2, 1.4, patience=Service(15.0), closing="send-home", no_show=0.1)
    results = [simulate_day(workload, POLICIES["weighted"], s) for s in (1, 2)]
    summary = summarize(workload, "weighted", 1, results)
    assert sum(summary.outcomes.values()) == summary.tickets == sum(d.tickets for d in results)
    assert set(summary.outcomes) == set(OUTCOMES)
    assert all(summary.outcomes[o] > 0 for o in ("served", "no-show", "abandoned", "sent-home"))
    text = format_summary(summary)
    assert f"{summary.tickets} tickets issued: served {summary.outcomes['served']}," in text
    assert "utilisation over opening hours" in text
