"""The calling order of a queue (scheduling.priority.call_order) against its definition."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings

from hall.domain.state import HallState
from scheduling.priority import (
    call_order,
    effective_issue,
    first_in_order,
    nth_issue,
    priority_table,
)
from tests.unit.test_scheduling_policies import NOW_MINUTE, random_hall
from tests.unit.test_scheduling_support import GREEN, at, hall, issue


@settings(max_examples=150, deadline=None)
@given(state=random_hall())
def test_call_order_is_by_effective_issue_then_arrival(state: HallState) -> None:
    """All of them (merged), the first (found without merging the classes, what the policies
    read) and the time of the n-th below a bound (what ``reserve`` reads) are those of the
    queue's tickets sorted by effective issue time, ties to arrival."""
    now = at(NOW_MINUTE).timestamp()
    table = priority_table(state.config)
    for queue, ids in state.queues.items():
        tickets = [state.tickets[t] for t in ids]
        expected = sorted(
            ((effective_issue(table, t, now), t) for t in tickets),
            key=lambda pair: (pair[0], pair[1].order_key),
        )
        assert list(call_order(state, table, queue, now)) == expected
        assert list(itertools.islice(call_order(state, table, queue, now), 1)) == expected[:1]
        lanes = state.lanes.get(queue)
        assert first_in_order(state, table, lanes, now) == (expected[0] if expected else None)
        for n in range(len(expected) + 1):
            nth = expected[n][0] if n < len(expected) else math.inf
            for bound in (math.inf, now - 60 * 60, now - 20 * 60):
                assert nth_issue(state, table, lanes or {}, now, n, bound) == min(nth, bound)


def test_a_tie_between_classes_goes_to_the_earlier_arrival_whichever_class_came_first() -> None:
    state = hall([["a"]], priorities=({**GREEN, "head_start_minutes": 5.0},))
    issue(state, "a", 45, priority="green")  # the green lane is the queue's first class
    normal = issue(state, "a", 40)  # counts from 40, as the green ticket does
    table = priority_table(state.config)
    now = at(50).timestamp()
    assert list(state.lanes["a"]) == ["green", "normal"]
    assert first_in_order(state, table, state.lanes["a"], now) == (at(40).timestamp(), normal)
