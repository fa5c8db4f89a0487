"""Hand-made hall states for the scheduling tests (and a check that they are what they say).

States are built by applying events directly (no decide), so a test can put any ticket anywhere
at any time: ``hall(profiles)`` opens every window, ``issue`` adds a waiting ticket issued at a
minute after ``T0``, ``send_to`` transfers a ticket to a named window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hall.domain.events import TicketCalled, TicketIssued, TicketTransferred, WindowOpened
from hall.domain.state import HallState, Ticket, TicketState, apply
from scheduling.workloads import hall_config

# Monday 2 March 2026, 09:00 in Shanghai.
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

GREEN: dict[str, Any] = {"id": "green", "name": "绿色通道", "name_en": "Green", "rank": 20}
APPOINTMENT: dict[str, Any] = {
    "id": "appointment",
    "name": "预约",
    "name_en": "Appointment",
    "rank": 10,
    "slot_minutes": 30,
}


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def hall(
    profiles: Sequence[Sequence[str]],
    *,
    targets: Mapping[str, int] | None = None,
    means: Mapping[str, float] | None = None,
    priorities: Sequence[Mapping[str, Any]] = (GREEN, APPOINTMENT),
    closed: Sequence[str] = (),
    weights: Sequence[Mapping[str, int]] = (),
) -> HallState:
    """A hall whose windows "1".."n" have ``profiles`` and are open (except ``closed``)."""
    names = sorted({c for profile in profiles for c in profile})
    targets = targets or {}
    means = means or {}
    config = hall_config(
        "unit",
        [(c, means.get(c, 8.0), targets.get(c, 15)) for c in names],
        profiles,
        priorities=priorities,
        weights=weights,
    )
    state = HallState.initial(config)
    for window in config.windows:
        if window.id not in closed:
            apply(state, WindowOpened(at=T0, window=window.id, staff=f"staff{window.id}"))
    return state


def issue(
    state: HallState,
    category: str,
    minute: float,
    priority: str = "normal",
    appointment: float | None = None,
) -> Ticket:
    """A waiting ticket issued at ``minute`` (appointment: the slot's start, a minute too)."""
    seq = state.sequences.get(category, 0) + 1
    prefix = next(c.prefix for c in state.config.categories if c.id == category)
    event = TicketIssued(
        at=at(minute),
        ticket=f"20260302-{prefix}{seq:03d}",
        number=f"{prefix}{seq:03d}",
        category=category,
        seq=seq,
        day=at(minute).date(),
        priority=priority,
        appointment=None if appointment is None else at(appointment),
    )
    apply(state, event)
    return state.tickets[event.ticket]


def drop_queue(state: HallState, queue: str) -> None:
    """Empty a queue, as if its tickets had gone (the state keeps its indexes consistent)."""
    state.queues[queue].clear()
    state.lanes[queue].clear()


def send_to(state: HallState, ticket: Ticket, window: str, minute: float) -> Ticket:
    """Call ``ticket`` at some other window, then transfer it to ``window`` by name."""
    holder = next((w for w in state.windows if w != window), window)
    apply(state, TicketCalled(at=at(minute), ticket=ticket.id, window=holder))
    transfer = TicketTransferred(
        at=at(minute), ticket=ticket.id, window=holder, category=ticket.category, to_window=window
    )
    apply(state, transfer)
    return ticket


def test_the_helpers_build_what_they_say() -> None:
    state = hall([["a", "b"], ["b"]])
    first = issue(state, "b", 1)
    second = issue(state, "b", 0, priority="green")
    assert state.queues["b"] == [second.id, first.id]  # arrival order, whatever the call order
    send_to(state, first, "2", 5)
    assert state.queues["@2"] == [first.id]
    assert first.state is TicketState.WAITING and first.target_window == "2"
    assert state.queues["b"] == [second.id]
