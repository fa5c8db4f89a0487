"""The calling policies on small hand-made states, and properties over random ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.domain.events import WindowPaused
from hall.domain.state import HallState, Ticket, TicketState, apply
from scheduling.policies import HOLD, LEAD
from scheduling.policy import POLICIES, Policy, policy_named
from scheduling.priority import call_order, effective_issue, priority_table
from tests.unit.test_scheduling_support import (
    APPOINTMENT,
    GREEN,
    at,
    drop_queue,
    hall,
    issue,
    send_to,
)

profile_order = POLICIES["profile-order"]
novosga = POLICIES["novosga"]
novosga_weighted = POLICIES["novosga-weighted"]
longest_wait = POLICIES["longest-wait"]
deadline = POLICIES["deadline"]
weighted = POLICIES["weighted"]
reserve = POLICIES["reserve"]


def test_the_registry_resolves_names() -> None:
    assert set(POLICIES) >= {
        "profile-order",
        "novosga",
        "longest-wait",
        "deadline",
        "weighted",
        "reserve",
    }
    assert policy_named("deadline") is deadline
    with pytest.raises(KeyError, match="known: profile-order"):
        policy_named("fastest")


class TestProfileOrder:
    def test_first_non_empty_category_in_the_window_order(self) -> None:
        state = hall([["a", "b"]])
        b = issue(state, "b", 0)
        a = issue(state, "a", 10)
        assert profile_order(state, "1", at(20)) is a
        drop_queue(state, "a")
        assert profile_order(state, "1", at(20)) is b

    def test_priority_within_the_category_with_aging(self) -> None:
        state = hall([["a"]])
        normal = issue(state, "a", 0)
        green = issue(state, "a", 29, priority="green")  # head start: 30 min (rank 20 x 1.5)
        assert profile_order(state, "1", at(40)) is green
        green.issued_at = at(31)  # now the normal ticket has waited more than 30 min longer
        assert profile_order(state, "1", at(40)) is normal

    def test_first_come_first_served_among_equals(self) -> None:
        state = hall([["a"]])
        first = issue(state, "a", 5)
        issue(state, "a", 5)
        assert profile_order(state, "1", at(6)) is first


class TestLongestWait:
    def test_the_oldest_head_across_the_profile(self) -> None:
        state = hall([["a", "b"]])
        issue(state, "a", 10)
        b = issue(state, "b", 0)
        assert longest_wait(state, "1", at(20)) is b

    def test_ignores_priority(self) -> None:
        state = hall([["a"]])
        normal = issue(state, "a", 0)
        issue(state, "a", 1, priority="green")
        assert longest_wait(state, "1", at(2)) is normal

    def test_ties_go_to_profile_order(self) -> None:
        state = hall([["b", "a"]])
        issue(state, "a", 3)
        b = issue(state, "b", 3)
        assert longest_wait(state, "1", at(4)) is b


class TestNovoSGA:
    """Novo SGA's order as shipped: appointment time, then priority weight, then arrival, across
    every category the window serves; the profile's order plays no part."""

    def test_appointments_first_by_appointment_time(self) -> None:
        state = hall([["a", "b"]])
        issue(state, "a", 0, priority="green")
        late_slot = issue(state, "a", 1, priority="appointment", appointment=60)
        early_slot = issue(state, "b", 20, priority="appointment", appointment=30)
        # Appointment time beats priority, the profile and arrival, with no slot check.
        assert novosga(state, "1", at(21)) is early_slot
        drop_queue(state, "b")
        assert novosga(state, "1", at(21)) is late_slot

    def test_priority_across_categories_then_arrival(self) -> None:
        state = hall([["a", "b"]])
        a = issue(state, "a", 0)
        green = issue(state, "b", 10, priority="green")
        assert novosga(state, "1", at(11)) is green  # strict priority, whatever the category
        drop_queue(state, "b")
        assert novosga(state, "1", at(11)) is a

    def test_arrival_across_categories_not_profile_order(self) -> None:
        state = hall([["a", "b"]])
        issue(state, "a", 10)
        b = issue(state, "b", 0)
        assert novosga(state, "1", at(11)) is b  # the window's first category does not count

    def test_strict_priority_without_aging(self) -> None:
        state = hall([["a"]])
        issue(state, "a", 0)
        green = issue(state, "a", 200, priority="green")
        assert novosga(state, "1", at(201)) is green

    def test_arrival_order_among_equals(self) -> None:
        state = hall([["a"]])
        first = issue(state, "a", 1)
        issue(state, "a", 2)
        assert novosga(state, "1", at(3)) is first

    def test_tickets_sent_to_the_window_first(self) -> None:
        state = hall([["a"], ["a"]])
        issue(state, "a", 0, priority="green")
        sent = send_to(state, issue(state, "a", 5), "1", 6)
        assert novosga(state, "1", at(7)) is sent


class TestNovoSGAWeighted:
    """With configured weights: a heavier category first at that window, then priority, then
    arrival (``servicoUsuario.peso`` descending comes before priority)."""

    def test_heavier_category_before_priority_and_arrival(self) -> None:
        state = hall([["a", "b"], ["a", "b"]], weights=[{"b": 5}])
        a_green = issue(state, "a", 0, priority="green")
        b = issue(state, "b", 10)
        assert novosga_weighted(state, "1", at(11)) is b
        assert novosga_weighted(state, "2", at(11)) is a_green  # window 2 has no weights
        drop_queue(state, "b")
        assert novosga_weighted(state, "1", at(11)) is a_green

    def test_equal_weights_fall_back_to_priority_then_arrival(self) -> None:
        state = hall([["a", "b"]], weights=[{"a": 3, "b": 3}])
        issue(state, "a", 0)
        green = issue(state, "b", 10, priority="green")
        assert novosga_weighted(state, "1", at(11)) is green

    def test_no_weights_is_novosga(self) -> None:
        state = hall([["b", "a"]])
        for minute, category in enumerate("abab"):
            issue(state, category, minute, priority="green" if minute == 3 else "normal")
        assert novosga_weighted(state, "1", at(9)) is novosga(state, "1", at(9))


class TestDeadline:
    def test_most_overdue_against_its_category_target(self) -> None:
        state = hall([["a", "b"]], targets={"a": 10, "b": 30})
        a = issue(state, "a", 5)  # due at 15
        b = issue(state, "b", 0)  # due at 30
        assert deadline(state, "1", at(6)) is a
        a.issued_at = at(25)  # due at 35: b is now the most overdue
        assert deadline(state, "1", at(26)) is b

    def test_equal_targets_is_longest_wait(self) -> None:
        state = hall([["a", "b", "c"]])
        issue(state, "a", 7)
        issue(state, "b", 3)
        c = issue(state, "c", 1)
        assert deadline(state, "1", at(8)) is c is longest_wait(state, "1", at(8))

    def test_ties_go_to_profile_order(self) -> None:
        state = hall([["b", "a"]])
        issue(state, "a", 3)
        b = issue(state, "b", 3)
        assert deadline(state, "1", at(4)) is b

    def test_green_head_start_and_its_bound(self) -> None:
        state = hall([["a", "b"]])
        normal = issue(state, "b", 0)
        green = issue(state, "a", 20, priority="green")
        assert deadline(state, "1", at(21)) is green
        green.issued_at = at(31)
        assert deadline(state, "1", at(32)) is normal

    def test_appointment_counts_only_from_the_slot_start(self) -> None:
        state = hall([["a"]])
        walk_in = issue(state, "a", 3)
        booked = issue(state, "a", 5, priority="appointment", appointment=10)
        assert deadline(state, "1", at(8)) is walk_in  # before the slot: a walk-in
        assert deadline(state, "1", at(12)) is booked  # in the slot: from 10 - 15 min

    def test_appointment_after_the_slot_is_a_walk_in(self) -> None:
        state = hall([["a"]])
        walk_in = issue(state, "a", 41)
        issue(state, "a", 45, priority="appointment", appointment=10)  # slot 10..40
        assert deadline(state, "1", at(50)) is walk_in


class TestWeighted:
    def test_short_transactions_with_short_targets_go_first_when_both_are_late(self) -> None:
        # a: 5 min service, 10 min target (weight 50); b: 10 min service, 20 min target (200).
        state = hall([["b", "a"]], targets={"a": 10, "b": 20}, means={"a": 5.0, "b": 10.0})
        b = issue(state, "b", 0)
        a = issue(state, "a", 20)
        # At 30: a has waited 10 (index 10/50), b 30 (30/200): a goes first, b has waited longer.
        assert weighted(state, "1", at(30)) is a
        assert deadline(state, "1", at(30)) is b  # b is 10 min overdue, a not yet
        # b is passed over only while its wait is under 200/50 = 4 times a's.
        a.issued_at = at(33)
        assert weighted(state, "1", at(40)) is b  # 7 x 4 = 28 < 40

    def test_equal_targets_and_services_is_deadline(self) -> None:
        state = hall([["a", "b", "c"]])
        issue(state, "a", 7)
        green = issue(state, "b", 6, priority="green")
        issue(state, "c", 1)
        assert weighted(state, "1", at(8)) is green is deadline(state, "1", at(8))

    def test_ties_go_to_profile_order(self) -> None:
        state = hall([["b", "a"]])
        issue(state, "a", 3)
        b = issue(state, "b", 3)
        assert weighted(state, "1", at(4)) is b


def pause(state: HallState, window: str, minute: float) -> None:
    apply(state, WindowPaused(at=at(minute), window=window, reason="break"))


class TestReserve:
    # Equal means (8 min) unless said: the lead is 4 min, the hold 8 min.
    def test_a_broad_window_leaves_a_narrower_one_its_ticket(self) -> None:
        state = hall([["a", "b"], ["a"]])
        a = issue(state, "a", 0)  # window 2 can call it: window 1 counts it from 0 + 8
        b = issue(state, "b", 5)
        assert reserve(state, "1", at(10)) is b
        assert longest_wait(state, "1", at(10)) is a
        assert reserve(state, "2", at(10)) is a  # the narrower window has no one to leave it to

    def test_a_paused_narrower_window_is_not_waited_for(self) -> None:
        state = hall([["a", "b"], ["a"]])
        a = issue(state, "a", 0)
        issue(state, "b", 5)
        pause(state, "2", 9)
        assert reserve(state, "1", at(10)) is a

    def test_a_queue_longer_than_the_narrower_windows_is_shared(self) -> None:
        state = hall([["a", "b"], ["a"]])
        a = issue(state, "a", 0)
        issue(state, "a", 1)  # the second ticket is window 1's to take: a claims from 1
        issue(state, "b", 5)
        assert reserve(state, "1", at(10)) is a

    @pytest.mark.parametrize("priorities", [(GREEN, APPOINTMENT), ()])
    def test_the_reserve_counts_tickets_in_calling_order(self, priorities: tuple[Any, ...]) -> None:
        state = hall([["a", "b"], ["a"], ["a"]], priorities=priorities)
        first = issue(state, "a", 0)
        issue(state, "a", 2)
        issue(state, "b", 4)
        assert reserve(state, "1", at(5)) is not first  # both a tickets are left to 2 and 3
        issue(state, "a", 3)  # the third is window 1's: a claims from 3, before b's 4
        assert reserve(state, "1", at(5)) is first

    def test_a_ticket_is_held_back_at_most_one_mean_service(self) -> None:
        state = hall([["a", "b"], ["a"]])
        a = issue(state, "a", 0)
        issue(state, "b", 9)  # a's claim 0 + 8 is earlier
        assert reserve(state, "1", at(10)) is a

    def test_windows_as_broad_leave_nothing_to_each_other(self) -> None:
        state = hall([["a", "b"], ["b", "a"], ["b"]])
        a = issue(state, "a", 0)
        issue(state, "b", 5)  # held for window 3, not for window 2
        assert reserve(state, "1", at(10)) is a

    def test_short_transactions_lead_by_half_a_mean_service(self) -> None:
        state = hall([["long", "short"]], means={"long": 16.0, "short": 4.0})
        issue(state, "long", 0)  # claims from 0 + 8
        short = issue(state, "short", 5)  # from 5 + 2
        assert reserve(state, "1", at(10)) is short
        short.issued_at = at(7)  # from 9: now the long transaction is first
        assert reserve(state, "1", at(10)) is not short

    def test_green_head_start(self) -> None:
        state = hall([["a", "b"]])
        normal = issue(state, "b", 0)
        green = issue(state, "a", 20, priority="green")  # counts from 20 - 30
        assert reserve(state, "1", at(21)) is green
        green.issued_at = at(31)
        assert reserve(state, "1", at(32)) is normal

    def test_one_category_and_no_narrower_window_is_first_come_first_served(self) -> None:
        state = hall([["a", "b", "c"]])
        issue(state, "a", 7)
        issue(state, "b", 3)
        c = issue(state, "c", 1)
        assert reserve(state, "1", at(8)) is c is longest_wait(state, "1", at(8))

    def test_ties_go_to_profile_order(self) -> None:
        state = hall([["b", "a"]])
        issue(state, "a", 3)
        b = issue(state, "b", 3)
        assert reserve(state, "1", at(4)) is b


@pytest.mark.parametrize("name", sorted(POLICIES))
class TestEveryPolicy:
    def test_tickets_sent_to_the_window_come_first(self, name: str) -> None:
        state = hall([["a"], ["b"]])
        issue(state, "a", 0, priority="green")
        sent = send_to(state, issue(state, "b", 5), "1", minute=6)  # b is not in window 1's profile
        assert policy_named(name)(state, "1", at(7)) is sent
        assert policy_named(name)(state, "2", at(7)) is None

    def test_nothing_eligible_is_none(self, name: str) -> None:
        state = hall([["a"], ["b"]])
        issue(state, "b", 0)
        assert policy_named(name)(state, "1", at(1)) is None

    def test_a_profile_change_takes_effect_at_once(self, name: str) -> None:
        state = hall([["a"], ["b"]])
        b = issue(state, "b", 0)
        state.windows["1"].categories = ("a", "b")  # what ProfileChanged does
        assert policy_named(name)(state, "1", at(1)) is b


# ----------------------------------------------------------------------------- properties

NOW_MINUTE = 150


@st.composite
def random_hall(draw: st.DrawFn) -> HallState:
    categories = ["a", "b", "c", "d"][: draw(st.integers(2, 4))]
    profiles = [
        draw(st.permutations(categories).map(lambda p: p[: 1 + len(p) // 2]))
        for _ in range(draw(st.integers(1, 4)))
    ]
    targets = {c: draw(st.sampled_from([5, 15, 30])) for c in categories}
    means = {c: draw(st.sampled_from([3.0, 8.0, 15.0])) for c in categories}
    head_start = draw(st.sampled_from([0.0, 5.0, 30.0]))
    state = hall(
        profiles,
        targets=targets,
        means=means,
        priorities=({**GREEN, "head_start_minutes": head_start}, APPOINTMENT),
    )
    for _ in range(draw(st.integers(0, 14))):
        category = draw(st.sampled_from(sorted({c for p in profiles for c in p})))
        minute = draw(st.integers(0, NOW_MINUTE))
        priority = draw(st.sampled_from(["normal", "normal", "green", "appointment"]))
        slot = draw(st.integers(0, NOW_MINUTE)) if priority == "appointment" else None
        ticket = issue(state, category, minute, priority, slot)
        if draw(st.integers(0, 9)) == 0:
            send_to(state, ticket, draw(st.sampled_from(sorted(state.windows))), minute)
    return state


def eligible(state: HallState, window: str) -> list[Ticket]:
    profile = state.windows[window].categories
    return [
        t
        for t in state.tickets.values()
        if t.state is TicketState.WAITING
        and (t.target_window == window or (t.target_window is None and t.category in profile))
    ]


@settings(max_examples=150, deadline=None)
@given(state=random_hall())
def test_a_window_only_ever_gets_an_eligible_ticket(state: HallState) -> None:
    now = at(NOW_MINUTE)
    for name, policy in POLICIES.items():
        for window in state.windows:
            chosen = policy(state, window, now)
            allowed = eligible(state, window)
            if not allowed:
                assert chosen is None, name
                continue
            assert chosen in allowed, name  # never outside the profile, never idle if work
            if any(t.target_window == window for t in allowed):
                assert chosen.target_window == window, name


@settings(max_examples=150, deadline=None)
@given(state=random_hall())
def test_the_aging_bound(state: HallState) -> None:
    """No ticket is called before an eligible one of its queue issued more than ``reach``
    earlier (deadline: more than ``reach`` plus the difference of their targets)."""
    now = at(NOW_MINUTE)
    table = priority_table(state.config)
    reach = timedelta(seconds=table.reach)
    policy: Policy
    for policy in (profile_order, deadline):
        for window in state.windows:
            chosen = policy(state, window, now)
            if chosen is None or chosen.target_window:
                continue
            for other in eligible(state, window):
                if other.target_window:
                    continue
                slack = timedelta(0)
                if other.category != chosen.category:
                    if policy is profile_order:
                        continue  # profile order compares queues by order, not by age
                    slack = timedelta(
                        seconds=table.target[other.category] - table.target[chosen.category]
                    )
                assert chosen.issued_at <= other.issued_at + reach + slack


@settings(max_examples=100, deadline=None)
@given(state=random_hall())
def test_deadline_calls_the_earliest_due(state: HallState) -> None:
    """Against a brute-force search over every eligible ticket (the early stop loses nothing)."""
    now = at(NOW_MINUTE)
    table = priority_table(state.config)
    for window in state.windows:
        chosen = deadline(state, window, now)
        candidates = [t for t in eligible(state, window) if not t.target_window]
        if chosen is None or chosen.target_window or not candidates:
            continue

        def due(t: Ticket) -> float:
            return effective_issue(table, t, now.timestamp()) + table.target[t.category]

        assert due(chosen) == min(due(t) for t in candidates)


@settings(max_examples=100, deadline=None)
@given(state=random_hall())
def test_reserve_never_passes_a_head_over_for_a_ticket_much_younger(state: HallState) -> None:
    """The chosen ticket was issued at most (LEAD + HOLD) x the passed head's mean service, less
    LEAD x its own, plus ``reach`` after the head of any other eligible queue."""
    now = at(NOW_MINUTE)
    table = priority_table(state.config)
    for window in state.windows:
        chosen = reserve(state, window, now)
        if chosen is None or chosen.target_window:
            continue
        for category in state.windows[window].categories:
            if not state.queues.get(category):
                continue
            head = next(iter(call_order(state, table, category, now.timestamp())))[1]
            slack = (LEAD + HOLD) * table.service[category] - LEAD * table.service[chosen.category]
            assert chosen.issued_at.timestamp() <= (
                head.issued_at.timestamp() + slack + table.reach + 1e-6
            )


@settings(max_examples=100, deadline=None)
@given(state=random_hall())
def test_weighted_calls_the_highest_index_and_its_bound_holds(state: HallState) -> None:
    """Against a brute-force search; and no eligible ticket that is passed over has waited more
    than its weight over the chosen one's times the chosen one's wait (the no-starvation bound)."""
    now = at(NOW_MINUTE)
    table = priority_table(state.config)

    def wait(t: Ticket) -> float:
        return now.timestamp() - effective_issue(table, t, now.timestamp())

    def weight(t: Ticket) -> float:
        return table.target[t.category] * table.service[t.category]

    for window in state.windows:
        chosen = weighted(state, window, now)
        candidates = [t for t in eligible(state, window) if not t.target_window]
        if chosen is None or chosen.target_window or not candidates:
            continue
        assert wait(chosen) / weight(chosen) == max(wait(t) / weight(t) for t in candidates)
        for other in candidates:
            assert wait(other) <= wait(chosen) * weight(other) / weight(chosen) + 1e-6
