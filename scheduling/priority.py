"""Priority classes and aging: when a waiting ticket counts as issued, for the calling order.

The model is additive aging, a *head start*: a ticket of class ``p`` is called as if it had been
issued ``H_p`` minutes earlier (``PriorityClass.head_start_minutes``; by default 1.5 minutes per
rank point, so the green lane at rank 20 gets 30; ``normal`` has 0). Its claim to be called is its
*effective wait*, ``now - issued + H_p``: it grows with the wait at the same rate for every class,
so the classes differ by a constant, never by a factor. Consequences:

* two tickets in one queue: the priority one goes first unless the other has waited more than
  ``H_p`` longer; with ``H_p`` large next to typical waits this is plain non-preemptive priority
  (on 10 windows at 85% load, 30 minutes gives the green lane a mean wait within 5% of Cobham's
  strict-priority formula);
* **the aging bound**: no ticket is ever overtaken by a ticket of its queue issued more than
  ``reach`` after it (``reach`` = the largest head start, plus the slot length for appointment
  classes). However many priority tickets arrive, a normal ticket waits at most what it would
  under first come first served plus the service of the priority tickets issued in the ``reach``
  after it. A multiplicative rule (claim = weight x wait) has no such bound: a ticket that has
  waited twice as long keeps losing to a class of twice the weight.

Appointment classes (``slot_minutes > 0``, 预约): a ticket of such a class carries its slot's start
(``Ticket.appointment``). It counts as a priority ticket only inside its slot: from the slot's
start, and only if it was issued before the slot's end. A visitor who comes early waits as a
walk-in until the slot starts, then as if issued ``H_p`` before the slot's start; one who comes
after the slot's end (or with no appointment time) is a walk-in.

Times here are POSIX seconds (floats): the policies compare thousands of them per call, and
aware datetimes cost several times more to subtract.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hall.config import HallConfig, PriorityClass
    from hall.domain.state import HallState, Ticket

NORMAL = "normal"
# The default head start per rank point: the green lane at rank 20 gets 30 minutes, an appointment
# class at rank 10 gets 15, so a higher rank still goes first among tickets a few minutes apart.
RANK_MINUTES = 1.5


@dataclass(frozen=True, slots=True)
class PriorityTable:
    """The lookups the policies need at every call, built once per hall config."""

    rank: Mapping[str, int]  # priority id -> rank (normal: 0); a higher rank is served first
    head_start: Mapping[str, float]  # priority id -> head start in seconds (only those > 0)
    slot: Mapping[str, float]  # appointment classes: priority id -> slot length in seconds
    target: Mapping[str, float]  # category id -> target wait in seconds
    service: Mapping[str, float]  # category id -> mean service in seconds (the config's prior)
    weights: Mapping[str, Mapping[str, int]]  # window id -> its configured category weights
    # The most a ticket's effective issue time can precede its real one, seconds: the largest
    # head start, plus the slot length for appointment classes (a visitor who comes inside the
    # slot counts from its start). 0 when no class has a head start.
    reach: float

    def rank_of(self, priority: str) -> int:
        """The rank of a priority id; unknown ids (a config changed under old tickets) are 0."""
        return self.rank.get(priority, 0)


_TABLES: dict[int, tuple[HallConfig, PriorityTable]] = {}


def priority_table(config: HallConfig) -> PriorityTable:
    """The table of ``config``, cached by identity (a config is immutable once loaded)."""
    cached = _TABLES.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    head_start = {p.id: head_start_minutes(p) * 60.0 for p in config.priorities}
    head_start = {k: v for k, v in head_start.items() if v > 0}
    slot = {p.id: p.slot_minutes * 60.0 for p in config.priorities if p.slot_minutes > 0}
    table = PriorityTable(
        rank={NORMAL: 0, **{p.id: p.rank for p in config.priorities}},
        head_start=head_start,
        slot=slot,
        target={c.id: c.target_wait_minutes * 60.0 for c in config.categories},
        service={c.id: c.mean_service_minutes * 60.0 for c in config.categories},
        weights={w.id: w.weights for w in config.windows},
        reach=max((h + slot.get(p, 0.0) for p, h in head_start.items()), default=0.0),
    )
    if len(_TABLES) > 64:  # configs are few; this only stops a leak in long test runs
        _TABLES.clear()
    _TABLES[id(config)] = (config, table)
    return table


def head_start_minutes(priority: PriorityClass) -> float:
    """The class's head start: as configured, else ``RANK_MINUTES`` per rank point."""
    if priority.head_start_minutes is not None:
        return priority.head_start_minutes
    return priority.rank * RANK_MINUTES


def effective_issue(table: PriorityTable, ticket: Ticket, now: float) -> float:
    """When ``ticket`` counts as issued at ``now`` (POSIX seconds): its issue time less its head
    start. Never later than the real issue time, never earlier than it by more than
    ``table.reach``; the policies' early stops rely on both bounds.
    """
    issued = seconds(ticket.issued_at)
    head = table.head_start.get(ticket.priority)
    if head is None:
        return issued
    slot_length = table.slot.get(ticket.priority)
    if slot_length is None:
        return issued - head
    return _slot_issue(ticket, issued, head, slot_length, now)


def _slot_issue(ticket: Ticket, issued: float, head: float, length: float, now: float) -> float:
    """:func:`effective_issue` of a ticket of an appointment class (slots of ``length``) with a
    head start."""
    if ticket.appointment is None:
        return issued
    slot = seconds(ticket.appointment)
    if now < slot or issued > slot + length:  # before its slot, or came after it ended
        return issued
    return min(issued, slot - head)


def in_priority(table: PriorityTable, ticket: Ticket, now: float) -> bool:
    """Whether the ticket's class gives it a head start at ``now`` (for reports and tests)."""
    return effective_issue(table, ticket, now) < seconds(ticket.issued_at)


# Every datetime's POSIX seconds, by value (so never stale): ``timestamp()`` of an aware datetime
# costs six lookups here, and a policy call reads dozens of issue times (a forward run makes
# hundreds of calls on the same tickets).
_SECONDS: dict[datetime, float] = {}


def seconds(moment: datetime) -> float:
    """POSIX seconds of an aware datetime (the unit of everything in this module)."""
    found = _SECONDS.get(moment)
    if found is None:
        if len(_SECONDS) >= 100_000:  # a day's tickets and the forecasts' arrivals, then again
            _SECONDS.clear()
        found = _SECONDS[moment] = moment.timestamp()
    return found


def call_order(
    state: HallState, table: PriorityTable, queue: str, now: float
) -> Iterator[tuple[float, Ticket]]:
    """The waiting tickets of ``queue`` in calling order at ``now`` (POSIX seconds): by effective
    issue time, ties to arrival order; each with its effective issue time. Lazy: each class is
    read only as far as the order has gone (appointment classes, whose head starts depend on
    each ticket's slot, up to ``reach`` ahead). The policies, which read the first ticket or the
    time of the n-th at every call, use :func:`first_in_order` and :func:`nth_issue` instead:
    they give the same without setting up the merge."""
    streams = [
        _lane(state, table, priority, ids, now)
        for priority, ids in state.lanes.get(queue, {}).items()
        if ids
    ]
    return heapq.merge(*streams, key=lambda pair: (pair[0], pair[1].order_key))


def first_in_order(
    state: HallState, table: PriorityTable, lanes: dict[str, list[str]] | None, now: float
) -> tuple[float, Ticket] | None:
    """The first of a queue's calling order at ``now`` with its effective issue time, as
    :func:`call_order` gives it (``lanes``: the queue's, ``state.lanes[queue]``); None if it is
    empty. Reads each class's first ticket (an appointment class's first few)."""
    if not lanes:
        return None
    tickets, slot, head_start = state.tickets, table.slot, table.head_start
    best: Ticket | None = None
    best_key = math.inf
    for priority, ids in lanes.items():
        if not ids:
            continue
        slot_length = slot.get(priority)
        if slot_length is None:
            ticket = tickets[ids[0]]
            key = seconds(ticket.issued_at) - head_start.get(priority, 0.0)
        elif seconds(tickets[ids[0]].issued_at) - table.reach > best_key:
            continue  # none of the class can come first (see _slot_first)
        else:
            found = _slot_first(state, table, priority, ids, slot_length, now, best_key)
            if found is None:
                continue
            key, ticket = found
        if key < best_key:
            best, best_key = ticket, key
        elif key == best_key and best is not None and ticket.order_key < best.order_key:
            best = ticket
    return None if best is None else (best_key, best)


def _slot_first(
    state: HallState,
    table: PriorityTable,
    priority: str,
    ids: list[str],
    slot_length: float,
    now: float,
    bound: float,
) -> tuple[float, Ticket] | None:
    """An appointment class's first in calling order: the earliest effective issue, read until no
    later arrival (its issue less ``reach`` and on) could be earlier, or tie with ``bound`` (the
    other classes' first); ties to arrival order. None if none could."""
    tickets, reach = state.tickets, table.reach
    head = table.head_start.get(priority)
    best_key, best = math.inf, None
    for ticket_id in ids:
        ticket = tickets[ticket_id]
        issued = seconds(ticket.issued_at)
        floor = issued - reach
        if floor >= best_key or floor > bound:
            break
        key = issued if head is None else _slot_issue(ticket, issued, head, slot_length, now)
        if key < best_key:
            best_key, best = key, ticket
    return None if best is None else (best_key, best)


def nth_issue(
    state: HallState,
    table: PriorityTable,
    lanes: dict[str, list[str]],
    now: float,
    n: int,
    bound: float,
) -> float:
    """The effective issue time of the ``n``-th ticket (from 0) of a queue's calling order at
    ``now`` (``lanes``: the queue's) if it is earlier than ``bound``, else ``bound``: what
    walking :func:`call_order` to it gives (its order is by that time), without the merge.
    Reads the first ``n + 1`` of each class, and of an appointment class those issued less than
    ``reach`` before ``bound``."""
    tickets, slot, head_start, reach = state.tickets, table.slot, table.head_start, table.reach
    keys: list[float] = []
    for priority, ids in lanes.items():
        length = slot.get(priority)
        if length is None:
            shift = head_start.get(priority, 0.0)  # the arithmetic of the merge, to the bit
            for ticket_id in ids[: n + 1]:
                key = seconds(tickets[ticket_id].issued_at) - shift
                if key >= bound:
                    break
                keys.append(key)
            continue
        head = head_start.get(priority)
        for ticket_id in ids:
            ticket = tickets[ticket_id]
            issued = seconds(ticket.issued_at)
            if issued - reach >= bound:
                break
            key = issued if head is None else _slot_issue(ticket, issued, head, length, now)
            if key < bound:
                keys.append(key)
    if len(keys) <= n:
        return bound
    keys.sort()
    return keys[n]


def count_before(state: HallState, table: PriorityTable, queue: str, key: float, now: float) -> int:
    """How many waiting tickets of ``queue`` count as issued before ``key`` at ``now``: one
    bisection per priority class (appointment classes: a walk of their own few tickets), or none
    when the class's last ticket already does (the usual case for a ticket issued just now)."""
    tickets = state.tickets
    n = 0
    for priority, ids in state.lanes.get(queue, {}).items():
        if not ids:
            continue
        if priority in table.slot:
            for ticket_id in ids:
                ticket = tickets[ticket_id]
                if seconds(ticket.issued_at) - table.reach >= key:
                    break
                if effective_issue(table, ticket, now) < key:
                    n += 1
            continue
        head = table.head_start.get(priority)
        if head is None:
            if seconds(tickets[ids[-1]].issued_at) < key:  # a lane is in arrival order
                n += len(ids)
            else:
                n += bisect.bisect_left(ids, key, key=lambda t: seconds(tickets[t].issued_at))
        else:
            shift = head  # the same arithmetic as effective_issue, so ties fall the same way
            if seconds(tickets[ids[-1]].issued_at) - shift < key:
                n += len(ids)
            else:
                n += bisect.bisect_left(
                    ids, key, key=lambda t: seconds(tickets[t].issued_at) - shift
                )
    return n


def _lane(
    state: HallState, table: PriorityTable, priority: str, ids: list[str], now: float
) -> Iterator[tuple[float, Ticket]]:
    """One class's tickets of a queue (in arrival order) in calling order."""
    tickets = state.tickets
    if priority not in table.slot:  # one head start for all: arrival order is calling order
        head = table.head_start.get(priority)
        for ticket_id in ids:
            ticket = tickets[ticket_id]
            issued = seconds(ticket.issued_at)
            yield (issued if head is None else issued - head), ticket
        return
    # Appointment classes: a ticket counts from its slot, so hold each back until no later
    # arrival (whose effective issue is at least its issue less ``reach``) can precede it.
    pending: list[tuple[float, int, Ticket]] = []
    for index, ticket_id in enumerate(ids):
        ticket = tickets[ticket_id]
        floor = seconds(ticket.issued_at) - table.reach
        while pending and pending[0][0] <= floor:
            key, _, ready = heapq.heappop(pending)
            yield key, ready
        heapq.heappush(pending, (effective_issue(table, ticket, now), index, ticket))
    while pending:
        key, _, ready = heapq.heappop(pending)
        yield key, ready
