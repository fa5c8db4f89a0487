"""The order a window will call its tickets in (scheduling.lookahead): what successive call-next
commands really call, for every policy, and the state left exactly as it was."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest

from hall.config import HallConfig
from hall.domain.commands import CallNext, IssueTicket, Login, NoShow, Transfer
from hall.domain.decide import execute
from hall.domain.events import TicketCalled
from hall.domain.state import HallState, Ticket
from scheduling.lookahead import callable_count, next_calls
from scheduling.policy import POLICIES, Policy
from tests.unit.conftest import T0

MINUTE = timedelta(minutes=1)
NOW = T0 + 45 * MINUTE


def busy_hall(config: HallConfig, policy: Policy) -> HallState:
    """Window 1 (general, then tax) with a mix to choose from: both categories, the green lane
    and appointments issued late enough that aging matters, an estate ticket it may not call, and
    one sent to it by name from window 2."""
    state = HallState.initial(config)
    tickets = [
        (0, "general", "normal"),
        (2, "tax", "normal"),
        (4, "general", "normal"),
        (5, "estate", "normal"),
        (8, "tax", "appointment"),
        (12, "general", "green"),
        (20, "general", "normal"),
        (25, "tax", "green"),
        (30, "general", "appointment"),
        (40, "tax", "normal"),
        (44, "general", "green"),
    ]
    for minute, category, priority in tickets:
        execute(state, IssueTicket(category, priority), T0 + minute * MINUTE, policy)
    execute(state, Login(window="1", by="alice"), NOW, policy)
    execute(state, Login(window="2", by="bob"), NOW, policy)
    execute(state, CallNext(window="2", by="bob"), NOW, policy)
    execute(state, Transfer(window="2", by="bob", to_window="1"), NOW, policy)
    return state


def orders(state: HallState) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """What equality of states does not see: the order of the dicts' keys."""
    return list(state.queues), list(state.lanes), {k: list(v) for k, v in state.lanes.items()}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_order_is_what_successive_calls_call(config: HallConfig, name: str) -> None:
    policy = POLICIES[name]
    state = busy_hall(config, policy)
    before, keys = copy.deepcopy(state, {id(config): config}), orders(state)

    ahead = next_calls(state, "1", NOW, policy, 50)
    assert state == before and orders(state) == keys  # everything put back where it was
    assert len(ahead) == callable_count(state, "1") == 10  # all but the estate ticket
    assert next_calls(state, "1", NOW, policy, 4) == ahead[:4]

    called: list[str] = []
    for _ in ahead:  # each call, then the window free again (a no-show), at the same moment
        events = execute(state, CallNext(window="1", by="alice"), NOW, policy)
        called += [e.ticket for e in events if isinstance(e, TicketCalled)]
        execute(state, NoShow(window="1", by="alice"), NOW, policy)
    assert called == [t.id for t in ahead]
    assert execute(state, CallNext(window="1", by="alice"), NOW, policy) == []
    assert next_calls(state, "1", NOW, policy, 10) == [] and callable_count(state, "1") == 0


def test_the_ticket_sent_by_name_and_the_priorities_come_first(config: HallConfig) -> None:
    policy = POLICIES["profile-order"]
    state = busy_hall(config, policy)
    ahead = [(t.number, t.priority) for t in next_calls(state, "1", NOW, policy, 4)]
    # Window 2 (tax first) called B002 (an appointment: 15 minutes' head start) and sent it here
    # by name; then window 1's first category, where A003 (green lane, 30 minutes' head start,
    # issued at 12) goes before A001 (issued at 0).
    assert ahead == [
        ("B002", "appointment"),
        ("A003", "green"),
        ("A001", "normal"),
        ("A002", "normal"),
    ]


def test_a_policy_that_fails_midway_leaves_the_state_as_it_was(config: HallConfig) -> None:
    real = POLICIES["weighted"]
    state = busy_hall(config, real)
    before, keys = copy.deepcopy(state, {id(config): config}), orders(state)
    asked: list[int] = []

    def failing(state: HallState, window: str, now: datetime) -> Ticket | None:
        asked.append(1)
        if len(asked) == 4:
            raise RuntimeError("a policy's bug")
        return real(state, window, now)

    with pytest.raises(RuntimeError):
        next_calls(state, "1", NOW, failing, 10)
    assert state == before and orders(state) == keys


def test_a_policy_that_picks_what_it_may_not_stops_the_order(config: HallConfig) -> None:
    state = busy_hall(config, POLICIES["weighted"])
    before = copy.deepcopy(state, {id(config): config})
    estate = next(t for t in state.tickets.values() if t.category == "estate")
    same = next_calls(state, "1", NOW, lambda s, w, n: estate, 10)
    assert len(same) == 1  # taken out once; then it is nowhere to be found: no endless loop
    assert state == before
