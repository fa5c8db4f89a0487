"""``reserve`` made fast, checked against the implementation it replaced: over random hall
states (narrower windows, priority classes with and without appointments, paused and closed
windows, tickets sent by name) and the changes a forward run and a live hall make between calls
(tickets called, arrivals, pauses ending without a layout bump, profile changes, windows closing
and opening), every window calls exactly the ticket the reference calls."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hall.domain.events import ProfileChanged, WindowClosed, WindowOpened, WindowPaused
from hall.domain.state import HallState, WindowState, apply
from scheduling.policies import DEFAULT_SERVICE, HOLD, LEAD, aged_first, reserve
from scheduling.priority import call_order, priority_table
from scheduling.topology import Topology, topology
from tests.unit.test_scheduling_support import APPOINTMENT, GREEN, at, hall, issue, send_to

if TYPE_CHECKING:
    from hall.domain.state import Ticket

# ------------------------------------------------ the reference: reserve as it was, verbatim


def reference_reserve(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    table = priority_table(state.config)
    now_s = now.timestamp()
    targeted = f"@{window_id}"
    if state.queues.get(targeted):
        return aged_first(state, table, targeted, now_s, math.inf)[0]
    profile = state.windows[window_id].categories
    breadth = len(profile)
    narrower = _narrower(state)
    windows = state.windows
    tickets = state.tickets
    best: Ticket | None = None
    best_claim = math.inf
    for category in profile:
        queue = state.queues.get(category)
        if not queue:
            continue
        service = table.service.get(category, DEFAULT_SERVICE)
        lead = LEAD * service
        # Every claim is at least the head's effective issue (>= its issue less ``reach``).
        if tickets[queue[0]].issued_at.timestamp() - table.reach + lead >= best_claim:
            continue
        held = 0
        for other_breadth, other in narrower.get(category, ()):
            if other_breadth >= breadth:
                break
            if other != window_id and windows[other].state is not WindowState.PAUSED:
                held += 1
        head: Ticket | None = None
        claim = math.inf
        if not table.head_start:  # no priority classes: arrival order is calling order
            head = tickets[queue[0]]
            claim = head.issued_at.timestamp() + HOLD * service
            if held < len(queue):
                claim = min(claim, tickets[queue[held]].issued_at.timestamp())
        else:
            for rank, (key, ticket) in enumerate(call_order(state, table, category, now_s)):
                if rank == 0:
                    head, claim = ticket, key + HOLD * service
                if rank == held:
                    claim = min(claim, key)
                    break
        if head is not None and claim + lead < best_claim:
            best, best_claim = head, claim + lead
    return best


_NARROWER: dict[int, tuple[Topology, dict[str, tuple[tuple[int, str], ...]]]] = {}


def _narrower(state: HallState) -> dict[str, tuple[tuple[int, str], ...]]:
    current = topology(state)
    cached = _NARROWER.get(id(state))
    if cached is not None and cached[0] is current:
        return cached[1]
    breadth = {window_id: len(categories) for window_id, categories, _ in current.layout}
    by_breadth = {
        category: tuple(sorted((breadth[w], w) for w in windows))
        for category, windows in current.serving.items()
    }
    if len(_NARROWER) > 64:  # states are few per process; this only stops a leak in test runs
        _NARROWER.clear()
    _NARROWER[id(state)] = (current, by_breadth)
    return by_breadth


# ------------------------------------------------------------------------------ the property

CATEGORIES = ("a", "b", "c")
NOW_MINUTE = 120


@st.composite
def any_hall(draw: st.DrawFn) -> HallState:
    """Windows of every breadth (so some are narrower than others), some closed, some paused."""
    categories = list(CATEGORIES[: draw(st.integers(2, 3))])
    profiles = [
        tuple(draw(st.permutations(categories))[: draw(st.integers(1, len(categories)))])
        for _ in range(draw(st.integers(2, 6)))
    ]
    green = {**GREEN, "head_start_minutes": draw(st.sampled_from([0.0, 5.0, 30.0]))}
    priorities: tuple[dict[str, Any], ...] = draw(
        st.sampled_from([(), (green,), (APPOINTMENT,), (green, APPOINTMENT)])
    )
    ids = [str(i + 1) for i in range(len(profiles))]
    state = hall(
        profiles,
        means={c: draw(st.sampled_from([3.0, 8.0, 15.0])) for c in categories},
        priorities=priorities,
        closed=draw(st.lists(st.sampled_from(ids), unique=True)),
    )
    classes = ["normal", "normal", *(p["id"] for p in priorities)]
    served = sorted({c for p in profiles for c in p})
    # Tickets a few minutes apart, so that the held-th often counts and classes tie.
    earliest = NOW_MINUTE - draw(st.sampled_from([10, 30, NOW_MINUTE]))
    for _ in range(draw(st.integers(4, 24))):
        minute = draw(st.integers(earliest, NOW_MINUTE))
        priority = draw(st.sampled_from(classes))
        slot = draw(st.integers(0, NOW_MINUTE + 30)) if priority == "appointment" else None
        ticket = issue(state, draw(st.sampled_from(served)), minute, priority, slot)
        if draw(st.integers(0, 11)) == 0:
            send_to(state, ticket, draw(st.sampled_from(ids)), minute)
    for window in draw(st.lists(st.sampled_from(ids), unique=True)):
        if state.windows[window].state is not WindowState.CLOSED:
            apply(state, WindowPaused(at=at(NOW_MINUTE), window=window, reason="break"))
    return state


# Between two rounds of calls: (what, window index, a category index, a number).
Step = tuple[str, int, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["call", "call", "call", "arrive", "later", "toggle", "profile", "shut"]),
        st.integers(0, 5),
        st.integers(0, 3),
        st.integers(1, 20),
    ),
    max_size=8,
)


def same_choices(state: HallState, now: datetime) -> None:
    for window in state.windows:
        expected = reference_reserve(state, window, now)
        assert reserve(state, window, now) is expected, window


def take(state: HallState, ticket: Ticket) -> None:
    """Remove a called ticket the way a forward run does (lists left empty stay)."""
    queue = f"@{ticket.target_window}" if ticket.target_window else ticket.category
    state.queues[queue].remove(ticket.id)
    state.lanes[queue][ticket.priority].remove(ticket.id)


def change(state: HallState, step: Step, minute: int) -> int:
    """Apply one step; the minute it leaves the clock at."""
    what, w, c, n = step
    window = list(state.windows)[w % len(state.windows)]
    status = state.windows[window]
    if what == "call":
        chosen = reference_reserve(state, window, at(minute))
        if chosen is not None:
            take(state, chosen)
    elif what == "arrive":
        categories = sorted({c for w in state.windows.values() for c in w.categories})
        classes = ["normal", *(p.id for p in state.config.priorities)]
        priority = classes[n % len(classes)]
        slot = minute - n % 40 if priority == "appointment" else None
        issue(state, categories[c % len(categories)], minute, priority, slot)
    elif what == "later":
        minute += n
    elif what == "toggle" and status.state is not WindowState.CLOSED:
        # As a forward run does when a pause ends: the status replaced, no layout bump.
        back = WindowState.OPEN if status.state is WindowState.PAUSED else WindowState.PAUSED
        state.windows[window] = dataclasses.replace(status, state=back)
    elif what == "profile":
        categories = sorted({c for w in state.windows.values() for c in w.categories})
        profile = tuple(categories[c % len(categories) :][:n])
        apply(state, ProfileChanged(at=at(minute), window=window, categories=profile, by="m"))
    elif what == "shut" and status.state is WindowState.CLOSED:
        apply(state, WindowOpened(at=at(minute), window=window, staff="s"))
    elif what == "shut":
        apply(state, WindowClosed(at=at(minute), window=window, staff="s"))
    return minute


@settings(max_examples=200, deadline=None)
@given(state=any_hall(), changes=steps)
def test_reserve_calls_what_the_reference_calls(state: HallState, changes: list[Step]) -> None:
    minute = NOW_MINUTE
    same_choices(state, at(minute))
    for step in changes:
        minute = change(state, step, minute)
        same_choices(state, at(minute))


def test_the_held_back_first_ticket_counts_from_its_hold_however_many_wait() -> None:
    """Window 1 leaves the first ``a`` ticket to window 2: ``a`` claims from its second ticket
    (10), but never later than the first's issue plus one mean service (0 + 8), plus its lead
    (4): 12, after ``b``'s 7 + 4."""
    state = hall([["a", "b"], ["a"]])
    issue(state, "a", 0)
    issue(state, "a", 10)
    b = issue(state, "b", 7)
    assert reserve(state, "1", at(12)) is b is reference_reserve(state, "1", at(12))
    b.issued_at = at(9)  # 13: now a's 12 is earlier
    assert reserve(state, "1", at(12)) is not b
