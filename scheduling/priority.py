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
    issued = ticket.issued_at.timestamp()
    head = table.head_start.get(ticket.priority)
    if head is None:
        return issued
    slot_length = table.slot.get(ticket.priority)
    if slot_length is None:
        return issued - head
    if ticket.appointment is None:
        return issued
    slot = ticket.appointment.timestamp()
    if now < slot or issued > slot + slot_length:  # before its slot, or came after it ended
        return issued
    return min(issued, slot - head)


def in_priority(table: PriorityTable, ticket: Ticket, now: float) -> bool:
    """Whether the ticket's class gives it a head start at ``now`` (for reports and tests)."""
    return effective_issue(table, ticket, now) < ticket.issued_at.timestamp()


def seconds(moment: datetime) -> float:
    """POSIX seconds of an aware datetime (the unit of everything in this module)."""
    return moment.timestamp()


def call_order(
    state: HallState, table: PriorityTable, queue: str, now: float
) -> Iterator[tuple[float, Ticket]]:
    """The waiting tickets of ``queue`` in calling order at ``now`` (POSIX seconds): by effective
    issue time, ties to arrival order; each with its effective issue time. Lazy: taking the
    first ``k`` costs ``k`` steps per priority class, however long the queue (only appointment
    classes, whose head starts depend on each ticket's slot, read ahead up to ``reach``)."""
    lanes = state.lanes.get(queue)
    if not lanes:
        return iter(())
    return _CallOrder(state, table, lanes, now)


def _merged(
    state: HallState, table: PriorityTable, lanes: dict[str, list[str]], now: float
) -> Iterator[tuple[float, Ticket]]:
    """Every class's tickets in calling order: their streams merged, ties to arrival order."""
    filled = [(priority, ids) for priority, ids in lanes.items() if ids]
    if not any(priority in table.slot for priority, _ in filled):
        shifted = [(ids, table.head_start.get(priority, 0.0)) for priority, ids in filled]
        return _by_hand(state.tickets, shifted)
    streams = [_lane(state, table, priority, ids, now) for priority, ids in filled]
    return heapq.merge(*streams, key=lambda pair: (pair[0], pair[1].order_key))


def _by_hand(
    tickets: dict[str, Ticket], lanes: list[tuple[list[str], float]]
) -> Iterator[tuple[float, Ticket]]:
    """Classes of one head start each (their own order is arrival order), merged by comparing
    their next tickets: for the few a policy reads, cheaper than setting up a heap merge."""
    positions = [0] * len(lanes)
    heads: list[tuple[float, Ticket] | None] = []
    for ids, shift in lanes:
        ticket = tickets[ids[0]]
        heads.append((ticket.issued_at.timestamp() - shift, ticket))
    while True:
        best: tuple[float, Ticket] | None = None
        best_lane = -1
        for lane, head in enumerate(heads):
            if head is not None and (
                best is None
                or head[0] < best[0]
                or (head[0] == best[0] and head[1].order_key < best[1].order_key)
            ):
                best, best_lane = head, lane
        if best is None:
            return
        yield best
        ids, shift = lanes[best_lane]
        position = positions[best_lane] = positions[best_lane] + 1
        if position < len(ids):
            ticket = tickets[ids[position]]
            heads[best_lane] = (ticket.issued_at.timestamp() - shift, ticket)
        else:
            heads[best_lane] = None


class _CallOrder:
    """:func:`call_order`'s iterator. Most readers take the first ticket only (a policy asks who
    is next, once per class of each queue it may call from, at every call), so that one is found
    from each class's first without building the merge; the merge is built, and its first
    skipped, only if more are asked for."""

    __slots__ = ("_lanes", "_now", "_rest", "_state", "_table")

    def __init__(
        self, state: HallState, table: PriorityTable, lanes: dict[str, list[str]], now: float
    ) -> None:
        self._state, self._table, self._lanes, self._now = state, table, lanes, now
        self._rest: Iterator[tuple[float, Ticket]] | None = None

    def __iter__(self) -> _CallOrder:
        return self

    def __next__(self) -> tuple[float, Ticket]:
        rest = self._rest
        if rest is None:
            self._rest = _NOT_YET
            found = _first(self._state, self._table, self._lanes, self._now)
            if found is None:
                raise StopIteration
            return found
        if rest is _NOT_YET:
            rest = self._rest = _merged(self._state, self._table, self._lanes, self._now)
            next(rest, None)  # the first, given already
        return next(rest)


_NOT_YET: Iterator[tuple[float, Ticket]] = iter(())  # the first given, the merge not built


def _first(
    state: HallState, table: PriorityTable, lanes: dict[str, list[str]], now: float
) -> tuple[float, Ticket] | None:
    """The first of the calling order, as the merge would give it (ties to arrival order)."""
    tickets, slot, head_start = state.tickets, table.slot, table.head_start
    best: Ticket | None = None
    best_key = math.inf
    for priority, ids in lanes.items():
        if not ids:
            continue
        if priority in slot:
            key, ticket = _slot_first(state, table, ids, now)
        else:
            ticket = tickets[ids[0]]
            key = ticket.issued_at.timestamp() - head_start.get(priority, 0.0)
        if key < best_key or (
            key == best_key and best is not None and ticket.order_key < best.order_key
        ):
            best, best_key = ticket, key
    return None if best is None else (best_key, best)


def _slot_first(
    state: HallState, table: PriorityTable, ids: list[str], now: float
) -> tuple[float, Ticket]:
    """An appointment class's first in calling order: the earliest effective issue, read until no
    later arrival (its issue less ``reach`` and on) could be earlier; ties to arrival order."""
    tickets = state.tickets
    best_key, best = math.inf, tickets[ids[0]]
    for ticket_id in ids:
        ticket = tickets[ticket_id]
        if ticket.issued_at.timestamp() - table.reach >= best_key:
            break
        key = effective_issue(table, ticket, now)
        if key < best_key:
            best_key, best = key, ticket
    return best_key, best


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
                if ticket.issued_at.timestamp() - table.reach >= key:
                    break
                if effective_issue(table, ticket, now) < key:
                    n += 1
            continue
        head = table.head_start.get(priority)
        if head is None:
            if tickets[ids[-1]].issued_at.timestamp() < key:  # a lane is in arrival order
                n += len(ids)
            else:
                n += bisect.bisect_left(ids, key, key=lambda t: tickets[t].issued_at.timestamp())
        else:
            shift = head  # the same arithmetic as effective_issue, so ties fall the same way
            if tickets[ids[-1]].issued_at.timestamp() - shift < key:
                n += len(ids)
            else:
                n += bisect.bisect_left(
                    ids, key, key=lambda t: tickets[t].issued_at.timestamp() - shift
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
            issued = ticket.issued_at.timestamp()
            yield (issued if head is None else issued - head), ticket
        return
    # Appointment classes: a ticket counts from its slot, so hold each back until no later
    # arrival (whose effective issue is at least its issue less ``reach``) can precede it.
    pending: list[tuple[float, int, Ticket]] = []
    for index, ticket_id in enumerate(ids):
        ticket = tickets[ticket_id]
        floor = ticket.issued_at.timestamp() - table.reach
        while pending and pending[0][0] <= floor:
            key, _, ready = heapq.heappop(pending)
            yield key, ready
        heapq.heappush(pending, (effective_issue(table, ticket, now), index, ticket))
    while pending:
        key, _, ready = heapq.heappop(pending)
        yield key, ready
