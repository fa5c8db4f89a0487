"""The public read models on hand-made states."""

from __future__ import annotations

from hall.views import Estimator, snapshot, ticket_view
from scheduling.estimate import ServiceTimes
from tests.unit.test_scheduling_support import at, hall, issue


def test_next_numbers_are_in_calling_order_as_ahead_counts() -> None:
    state = hall([["a"]])
    early = issue(state, "a", 0)
    middle = issue(state, "a", 1)
    green = issue(state, "a", 2, priority="green")  # a 30 minute head start: called first
    estimator = Estimator(ServiceTimes.from_config(state.config), at(3))
    [queue] = snapshot(state, estimator).queues
    assert queue.next_numbers == [green.number, early.number, middle.number]
    places = {t.number: ticket_view(state, t, estimator).ahead for t in (early, middle, green)}
    assert sorted(places, key=places.__getitem__) == queue.next_numbers
