"""Who a window calls next: the calling-policy interface and its default.

A policy is a pure function ``choose(state, window, now) -> Ticket | None``: it reads the hall state
(never changes it) and returns the waiting ticket the window should call, or None. It may only
return a ticket the window is allowed to call (see :func:`eligible_queues`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hall.domain.state import HallState, Ticket

Policy = Callable[["HallState", str, datetime], "Ticket | None"]


def eligible_queues(state: HallState, window_id: str) -> Iterator[str]:
    """The queues a window may call from: tickets transferred to it by name, then its profile."""
    targeted = f"@{window_id}"
    if state.queues.get(targeted):
        yield targeted
    for category in state.windows[window_id].categories:
        if state.queues.get(category):
            yield category


def first_by_priority(state: HallState, queue: str) -> Ticket | None:
    """The highest-priority ticket of a queue, first come first served among equals."""
    best: Ticket | None = None
    best_rank = -1
    for ticket_id in state.queues.get(queue, ()):
        ticket = state.tickets[ticket_id]
        rank = state.config.priority_rank(ticket.priority) or 0
        if rank > best_rank:
            best, best_rank = ticket, rank
    return best


def profile_order(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """The first non-empty queue in the window's profile order; priority, then FIFO, within it."""
    for queue in eligible_queues(state, window_id):
        return first_by_priority(state, queue)
    return None


POLICIES: dict[str, Policy] = {"profile-order": profile_order}


def policy_named(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise KeyError(f"unknown calling policy {name!r}; known: {', '.join(POLICIES)}") from None
