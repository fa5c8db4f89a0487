"""The calling order of a queue (scheduling.priority.call_order) against its definition."""

from __future__ import annotations

import itertools

from hypothesis import given, settings

from hall.domain.state import HallState
from scheduling.priority import call_order, effective_issue, priority_table
from tests.unit.test_scheduling_policies import NOW_MINUTE, random_hall
from tests.unit.test_scheduling_support import at


@settings(max_examples=150, deadline=None)
@given(state=random_hall())
def test_call_order_is_by_effective_issue_then_arrival(state: HallState) -> None:
    """Its first ticket (found without merging the classes, what the policies read) and all of
    them (merged) are the queue's tickets sorted by effective issue time, ties to arrival."""
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
