"""Wait estimates: the running service time and the M/M/c conditional wait on hand-made states."""

from __future__ import annotations

import pytest

from hall.domain.events import Outcome, ServiceFinished, TicketCalled
from hall.domain.state import HallState, apply
from scheduling.estimate import ServiceTimes, estimate_new, estimate_wait
from scheduling.priority import count_before, effective_issue, priority_table
from tests.unit.test_scheduling_support import at, hall, issue, send_to


def busy(state: HallState, window: str, category: str, minute: float = 0) -> None:
    """Window ``window`` holds a fresh ticket of ``category``."""
    ticket = issue(state, category, minute)
    apply(state, TicketCalled(at=at(minute), ticket=ticket.id, window=window))


class TestServiceTimes:
    def test_starts_from_the_config_and_follows_the_data(self) -> None:
        state = hall([["a", "b"]], means={"a": 8.0, "b": 20.0})
        times = ServiceTimes.from_config(state.config, alpha=0.1)
        assert (times.mean("a"), times.mean("b")) == (8.0, 20.0)
        times.observe("a", 4.0)  # the prior counts as one observation
        assert times.mean("a") == pytest.approx(6.0)
        for _ in range(200):
            times.observe("a", 4.0)
        assert times.mean("a") == pytest.approx(4.0, abs=1e-6)
        times.observe("a", 14.0)  # late on, each observation moves it by alpha
        assert times.mean("a") == pytest.approx(5.0, abs=1e-6)

    def test_fed_by_events_from_call_to_release(self) -> None:
        state = hall([["a"]])
        times = ServiceTimes.from_config(state.config)
        ticket = issue(state, "a", 0)
        apply(state, TicketCalled(at=at(2), ticket=ticket.id, window="1"))
        finished = ServiceFinished(at=at(14), ticket=ticket.id, window="1", outcome=Outcome.DONE)
        apply(state, finished)
        times.update(state, finished)
        assert times.counts["a"] == 1
        assert times.mean("a") == pytest.approx(8 + (12 - 8) / 2)


class TestEstimate:
    def test_mmc_conditional_wait_when_every_window_is_busy(self) -> None:
        state = hall([["a"], ["a"], ["a"]])
        for window in "123":
            busy(state, window, "a")
        for minute in range(4):
            issue(state, "a", minute)
        times = ServiceTimes.from_config(state.config)
        expected = (4 + 1) * 8.0 / 3  # (n + 1) s / c: the M/M/c mean under FCFS
        before = estimate_new(state, "a", "normal", at(5), times)
        assert (before.ahead, before.windows) == (4, 3)
        assert before.minutes == pytest.approx(expected)
        ticket = issue(state, "a", 5)
        after = estimate_wait(state, ticket.id, at(5), times)
        assert after == before

    def test_an_idle_window_means_no_wait(self) -> None:
        state = hall([["a"], ["a"]])
        busy(state, "1", "a")
        ticket = issue(state, "a", 1)
        estimate = estimate_wait(state, ticket.id, at(1), ServiceTimes.from_config(state.config))
        assert (estimate.ahead, estimate.minutes) == (0, 0.0)

    def test_shared_windows_count_other_categories_by_their_share(self) -> None:
        state = hall([["a", "b"], ["b"]], means={"a": 8.0, "b": 8.0})
        busy(state, "1", "b")
        busy(state, "2", "b")
        issue(state, "b", 1)
        issue(state, "b", 2)
        estimate = estimate_new(state, "a", "normal", at(3), ServiceTimes.from_config(state.config))
        # Two b tickets, each taken by window 1 half the time: one ticket's work ahead.
        assert estimate.ahead == 0
        assert estimate.minutes == pytest.approx((1 + 1) * 8.0 / 1)

    def test_a_priority_ticket_goes_before_recent_normal_ones(self) -> None:
        state = hall([["a"]])
        busy(state, "1", "a")
        issue(state, "a", 1)
        issue(state, "a", 2)
        times = ServiceTimes.from_config(state.config)
        green = estimate_new(state, "a", "green", at(3), times)
        assert (green.ahead, green.minutes) == (0, pytest.approx(8.0))
        normal = estimate_new(state, "a", "normal", at(3), times)
        assert (normal.ahead, normal.minutes) == (2, pytest.approx(24.0))

    def test_no_open_window_no_estimate_but_still_a_place_in_line(self) -> None:
        state = hall([["a"], ["b"]], closed=("1",))
        times = ServiceTimes.from_config(state.config)
        estimate = estimate_new(state, "a", "normal", at(0), times)
        assert (estimate.ahead, estimate.minutes, estimate.windows) == (0, None, 0)
        issue(state, "a", 1)
        ticket = issue(state, "a", 2)
        estimate = estimate_wait(state, ticket.id, at(3), times)
        assert (estimate.ahead, estimate.minutes, estimate.windows) == (1, None, 0)

    def test_a_ticket_sent_to_a_window_waits_for_that_window_only(self) -> None:
        state = hall([["a"], ["a"]])
        busy(state, "1", "a")
        busy(state, "2", "a")
        for minute in range(3):
            issue(state, "a", minute)
        sent = send_to(state, issue(state, "a", 4), "2", minute=4)
        busy(state, "1", "a", minute=4)  # send_to freed window 1
        estimate = estimate_wait(state, sent.id, at(5), ServiceTimes.from_config(state.config))
        assert (estimate.ahead, estimate.windows) == (0, 1)
        assert estimate.minutes == pytest.approx(8.0)


def test_count_before_is_the_count_of_tickets_whose_effective_issue_is_earlier() -> None:
    # Keys before, at, between and after the lanes' tickets, around their last ones above all
    # (where count_before answers without bisecting), with a head-start lane beside a plain one.
    state = hall([["a"]])
    for minute, priority in [
        (0, "normal"),
        (1, "green"),
        (2, "normal"),
        (2, "normal"),
        (5, "green"),
    ]:
        issue(state, "a", minute, priority)
    table = priority_table(state.config)
    now = at(6).timestamp()
    for key_minute in [x / 2 for x in range(-70, 14)]:
        key = at(key_minute).timestamp()
        expected = sum(
            effective_issue(table, state.tickets[t], now) < key for t in state.queues["a"]
        )
        assert count_before(state, table, "a", key, now) == expected, key_minute
