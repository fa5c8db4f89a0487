"""The order a window will call the tickets it may call: its calling policy asked again and again.

A policy answers one question, who is next (:mod:`scheduling.policy`). The k-th ticket a window
would call is what the policy picks once the k-1 before it have left their queues, as their calls
would take them out. So each pick is taken out of its queue and its priority lane, the policy is
asked again, and every pick is put back at the very place it held before returning (lists and
dicts as they were, whatever happens). The state is changed for a moment: run this where nothing
else reads or writes the state meanwhile (in the engine's writer: ``engine.read``, an after-batch
hook), never across an ``await``.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import TYPE_CHECKING

from hall.domain.state import TicketState, queue_key, targeted_queue
from scheduling.policy import Policy

if TYPE_CHECKING:
    from hall.domain.state import HallState, Ticket


def next_calls(
    state: HallState, window: str, now: datetime, policy: Policy, limit: int
) -> list[Ticket]:
    """The next ``limit`` (at most) tickets that successive call-next commands at ``window``
    would call at ``now``, in that order, if nothing else happened meanwhile."""
    picked: list[Ticket] = []
    # Where each pick was: its queue and lane, and its index in each, to put it back exactly.
    taken: list[tuple[list[str], int, list[str], int]] = []
    try:
        while len(picked) < limit:
            ticket = policy(state, window, now)
            if ticket is None or ticket.state is not TicketState.WAITING:
                break
            key = queue_key(ticket)
            queue = state.queues.get(key)
            lane = state.lanes.get(key, {}).get(ticket.priority)
            at_queue = _index(state, queue, ticket)
            at_lane = _index(state, lane, ticket)
            if queue is None or lane is None or at_queue is None or at_lane is None:
                break  # not where a waiting ticket is kept: a policy's bug, not ours to loop on
            # Emptied lists stay (the policies skip empty queues and lanes), so no dict changes.
            del queue[at_queue], lane[at_lane]
            taken.append((queue, at_queue, lane, at_lane))
            picked.append(ticket)
    finally:
        for ticket, (queue, at_queue, lane, at_lane) in zip(
            reversed(picked), reversed(taken), strict=True
        ):
            lane.insert(at_lane, ticket.id)
            queue.insert(at_queue, ticket.id)
    return picked


def callable_count(state: HallState, window: str) -> int:
    """How many waiting tickets ``window`` may call: those sent to it by name, and those of the
    categories of its current profile."""
    queues = (targeted_queue(window), *state.windows[window].categories)
    return sum(len(state.queues.get(queue, ())) for queue in queues)


def _index(state: HallState, ids: list[str] | None, ticket: Ticket) -> int | None:
    """Where ``ticket`` is in ``ids`` (kept in arrival order, ``Ticket.order_key``), if there."""
    if not ids:
        return None
    if ids[0] == ticket.id:  # the usual case: a queue's head is called
        return 0
    tickets = state.tickets
    index = bisect.bisect_left(ids, ticket.order_key, key=lambda t: tickets[t].order_key)
    while index < len(ids) and tickets[ids[index]].order_key == ticket.order_key:
        if ids[index] == ticket.id:
            return index
        index += 1
    return None
