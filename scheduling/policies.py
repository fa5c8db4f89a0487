"""The calling policies: which waiting ticket a window calls next.

Each is a pure ``choose(state, window, now) -> Ticket | None`` (see :mod:`scheduling.policy`). All
of them call only tickets the window may call: first those transferred to the window by name (its
``@<window>`` queue), then those of the categories of its current work profile (which a manager
may change at run time, journaled as ``ProfileChanged``). Queues hold ticket ids in arrival order,
which the early stops below rely on.

* ``profile-order`` (the Qmatic work profile): the first non-empty category in the window's order;
  within it, priority with aging (:mod:`scheduling.priority`), then first come first served.
* ``novosga``: Novo SGA's queue ordering as it ships, the peer baseline (see :func:`novosga`);
  ``novosga-weighted`` with the user-service weights a hall configures (``Window.weights``).
* ``longest-wait``: the longest-waiting eligible ticket, priority ignored: plain FCFS per window.
* ``deadline``: ours, earliest due date with priority head starts (see :func:`deadline`).
* ``weighted``: ours, the generalised c-mu rule on the categories' targets (see :func:`weighted`);
  the same as ``deadline`` where categories share one target and one service time.
* ``reserve``: ours, first come first served with head starts that leaves narrower windows their
  share and gives short transactions a bounded lead (see :func:`reserve`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING

from hall.domain.state import WindowState
from scheduling.priority import PriorityTable, call_order, priority_table
from scheduling.topology import Topology, topology

if TYPE_CHECKING:
    from hall.domain.state import HallState, Ticket

DEFAULT_TARGET = 15 * 60.0  # seconds; a category missing from the config (only in odd tests)
DEFAULT_SERVICE = 8 * 60.0  # seconds; likewise


def eligible_queues(state: HallState, window_id: str) -> Iterator[str]:
    """The non-empty queues a window may call from: tickets transferred to it by name, then its
    profile's categories in profile order."""
    targeted = f"@{window_id}"
    if state.queues.get(targeted):
        yield targeted
    for category in state.windows[window_id].categories:
        if state.queues.get(category):
            yield category


def first_by_priority(state: HallState, queue: str) -> Ticket | None:
    """The highest-rank ticket of a queue, first come first served among equals (strict
    priority, no aging: the rule of the original engine, kept for callers that want it)."""
    table = priority_table(state.config)
    heads = [
        (-table.rank_of(priority), state.tickets[ids[0]].order_key, ids[0])
        for priority, ids in state.lanes.get(queue, {}).items()
        if ids
    ]
    return state.tickets[min(heads)[2]] if heads else None


def aged_first(
    state: HallState, table: PriorityTable, queue: str, now: float, bound: float
) -> tuple[Ticket | None, float]:
    """The ticket of ``queue`` with the earliest effective issue time, and that time, if it is
    earlier than ``bound`` (else ``(None, bound)``). Ties go to the earlier ticket in the queue.

    Each priority class's first ticket is its earliest (one head start per class), so this reads
    one ticket per class however long the queue is (see :func:`call_order`).
    """
    if not table.head_start:  # no aging classes: the head of the queue is the answer
        first = state.tickets[state.queues[queue][0]]
        key = first.issued_at.timestamp()
        return (first, key) if key < bound else (None, bound)
    for key, ticket in call_order(state, table, queue, now):
        return (ticket, key) if key < bound else (None, bound)
    return None, bound


def profile_order(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """The first non-empty queue in the window's profile order; within it, priority with aging
    (the earliest effective issue time), first come first served among equals."""
    table = priority_table(state.config)
    for queue in eligible_queues(state, window_id):
        ticket, _ = aged_first(state, table, queue, now.timestamp(), math.inf)
        return ticket
    return None


def longest_wait(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """The longest-waiting eligible ticket (priority ignored): its ``@window`` queue first, then
    the earliest-issued head among its categories' queues; ties go to profile order."""
    best: Ticket | None = None
    for queue in eligible_queues(state, window_id):
        head = state.tickets[state.queues[queue][0]]
        if queue.startswith("@"):
            return head
        if best is None or head.order_key < best.order_key:
            best = head
    return best


def novosga(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """Novo SGA's queue ordering as it ships: the peer baseline (every service weight 1).

    Novo SGA (``App\\Dto\\Settings\\QueueSettings``; the 2.x ``queue.ordering`` default in its
    ``config/app.default.php``) sorts the waiting tickets of every service a user serves by:
    appointment time ascending (tickets without one last, PostgreSQL's order for NULLs, its default
    database), the user-service weight (``servicoUsuario.peso``) descending, the priority weight
    (``prioridade.peso``) descending, the unit-service weight descending, then arrival
    (``dataChegada``) ascending. As shipped every user-service weight is 1
    (``UsuarioService::addServicoUsuario`` sets ``peso`` 1) and so is every unit-service weight,
    so the order is: appointments by their time, then strict priority, then first come first
    served across all the window's categories. The profile's order plays no part and nothing ages:
    a priority ticket always passes a normal one. Tickets transferred to this window by name come
    first (our rule for every policy; Novo SGA sorts them in with the rest).
    """
    return _novosga(state, window_id, weighted=False)


def novosga_weighted(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """Novo SGA's ordering with the user-service weights a hall configures (``Window.weights``,
    1 to 100 per category, 1 where not given): a category of a higher weight always goes first at
    that window (``servicoUsuario.peso`` descending comes before priority and arrival; see
    :func:`novosga`). With no weights configured it is :func:`novosga`.
    """
    return _novosga(state, window_id, weighted=True)


def _novosga(state: HallState, window_id: str, *, weighted: bool) -> Ticket | None:
    table = priority_table(state.config)
    weights = table.weights.get(window_id, {}) if weighted else {}
    targeted = f"@{window_id}"
    queues = [targeted] if state.queues.get(targeted) else state.windows[window_id].categories
    best: Ticket | None = None
    best_key: tuple[float, int, int, tuple[datetime, date, int]] | None = None
    for queue in queues:
        weight = weights.get(queue, 1)
        for ticket in _novosga_candidates(state, table, queue):
            appointment = math.inf if ticket.appointment is None else ticket.appointment.timestamp()
            key = (appointment, -weight, -table.rank_of(ticket.priority), ticket.order_key)
            if best_key is None or key < best_key:
                best, best_key = ticket, key
    return best


def _novosga_candidates(state: HallState, table: PriorityTable, queue: str) -> Iterator[Ticket]:
    """Tickets that may come first in Novo's order: every appointment ticket (ordered by its
    appointment), and the head of each other class (there, arrival order decides)."""
    for priority, ids in state.lanes.get(queue, {}).items():
        if priority in table.slot:
            yield from (state.tickets[t] for t in ids)
        elif ids:
            yield state.tickets[ids[0]]


def deadline(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """Ours: earliest due date, with priority head starts. Tickets sent to the window come first.

    Every waiting ticket has a due time: when it counts as issued (its issue time less its class's
    head start, :mod:`scheduling.priority`) plus its category's target wait (``Category.
    target_wait_minutes``, the SLA). The window calls the eligible ticket due first, that is the
    one furthest past (or least short of) its target: ``wait + head start - target`` is largest.
    Ties go to the window's profile order, then to arrival order.

    Why this rule. On one server, earliest due date minimises the largest lateness (Jackson's
    rule), which is what an SLA per category asks. With equal targets and no priorities it is
    longest-wait (FCFS per window), so comprehensive windows pool fully and the mean wait is that
    of M/M/c. Unlike a static profile order it cannot starve a window's later categories: a
    ticket's claim grows one minute per minute whichever category it is in, so a surge spreads
    over every window that may serve it instead of shutting the others out, and a category every
    window lists last (certificate collection) is still called within about its target. Unlike
    strict priority, the head start bounds how far a priority ticket can jump: a ticket is never
    called before an eligible one issued more than ``reach + target difference`` earlier
    (``reach``: the largest head start, plus the slot for appointment classes). The price, shown
    by the benchmark: categories that a static order shelters (first on many windows) wait
    closer to everyone else, so their worst waits can rise while the hall's tail falls.
    """
    table = priority_table(state.config)
    now_s = now.timestamp()
    targeted = f"@{window_id}"
    if state.queues.get(targeted):
        return aged_first(state, table, targeted, now_s, math.inf)[0]
    best: Ticket | None = None
    best_due = math.inf
    for category in state.windows[window_id].categories:
        if not state.queues.get(category):
            continue
        target = table.target.get(category, DEFAULT_TARGET)
        ticket, issue = aged_first(state, table, category, now_s, best_due - target)
        if ticket is not None:
            best, best_due = ticket, issue + target
    return best


def weighted(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """Ours: the generalised c-mu rule, on each category's target wait and mean service time.

    Each category's queue offers its first ticket by effective issue time (priority head starts,
    :mod:`scheduling.priority`), with the index ``effective wait / (target x mean service)``; the
    window calls the ticket of the highest index. Tickets sent to the window come first; ties go
    to the window's profile order.

    Why this rule. Say a visitor's wait costs its category ``w^2 / (2 target)``: nothing while
    short, then more and more, sooner for categories with a short target. The generalised c-mu
    rule, serving the queue with the largest marginal cost times service rate (``w / target`` x
    ``1 / service``), is asymptotically optimal for such convex costs in heavy traffic (Van
    Mieghem 1995; Mandelbaum and Stolyar 2004 for parallel servers with several skills: our
    comprehensive windows). In plain terms: when the hall is overloaded, short transactions of
    categories with short targets go first, which leaves the fewest people waiting long. Where
    categories share one target and one service time it is ``deadline`` exactly (FCFS per window
    with head starts), so comprehensive windows pool as in M/M/c.

    No ticket waits without bound: every index grows in proportion to its wait, so a ticket of
    weight ``k = target x service`` is never passed over by one whose effective wait is below
    ``k_other / k`` times its own.

    The price, measured by bench/simulate.py: on the skewed day (a surge that comprehensive
    windows can share) no category's worst wait exceeds the fixed-order baseline's and the mean
    wait falls by a quarter, but long transactions of a surging category wait longer than under
    ``deadline``. When the surge is in a category only its own windows serve, the comprehensive
    windows keep favouring short transactions, and categories of long transactions that a fixed
    order would shelter wait longer than under it; ``deadline`` is the fairer choice there.
    """
    table = priority_table(state.config)
    now_s = now.timestamp()
    targeted = f"@{window_id}"
    if state.queues.get(targeted):
        return aged_first(state, table, targeted, now_s, math.inf)[0]
    best: Ticket | None = None
    best_index = -math.inf
    for category in state.windows[window_id].categories:
        if not state.queues.get(category):
            continue
        ticket, issue = aged_first(state, table, category, now_s, math.inf)
        weight = table.target.get(category, DEFAULT_TARGET) * table.service.get(
            category, DEFAULT_SERVICE
        )
        index = (now_s - issue) / weight
        if index > best_index:
            best, best_index = ticket, index
    return best


# ``reserve``: the lead of short transactions and the most a ticket is held back for a narrower
# window, each in mean service times of the ticket's category (see :func:`reserve`).
LEAD = 0.5
HOLD = 1.0


def reserve(state: HallState, window_id: str, now: datetime) -> Ticket | None:
    """Ours: first come first served with priority head starts, leaving narrower windows their
    share, with a bounded lead for short transactions. Tickets sent to the window come first.

    Each category of the window's profile offers its first ticket in calling order (effective
    issue time, :mod:`scheduling.priority`) with a claim, and the window calls the ticket of the
    earliest claim (ties: profile order). A category's claim is the effective issue time of
    its ``R + 1``-th ticket, where ``R`` is the number of other windows (open, not paused) that
    serve it with a shorter profile than this one, but never later than its first ticket's plus
    ``HOLD`` mean service times of the category; plus ``LEAD`` mean service times. With no
    narrower window and equal service times this is first come first served with head starts.

    Why this rule. First come first served across a window's categories (Novo SGA's order, the
    peer) pools comprehensive windows well, but it lets a comprehensive window take the only
    waiting ticket of a category that a specialised window is about to be free for; that window
    then idles, since it can serve nothing else, while other categories wait. Leaving narrower
    windows the first ``R`` tickets of their categories is the threshold rule that is
    asymptotically optimal for parallel servers with dedicated and flexible ones in heavy traffic
    (Bell and Williams 2001 and 2005): the flexible window helps a category only once its queue
    outgrows the windows dedicated to it, so the dedicated windows stay busy and the flexible ones
    go where nobody else can. The lead is the c-mu direction (Van Mieghem 1995: in an overload,
    short transactions first leave the fewest people waiting), but additive, not the factor of
    ``weighted``: a ticket's claim grows one minute per minute whatever its category.

    Hence the bound (checked by the property tests): a ticket at the head of its queue is never
    passed over by an eligible ticket issued more than ``(LEAD + HOLD) x its category's mean
    service + reach`` after it (``reach``: the largest head start, :mod:`scheduling.priority`),
    so long transactions are not starved in a surge, and neither the reserve nor the lead moves a
    category's waits by more than about its own mean service. Measured by bench/policies.py over
    generated hall days against Novo SGA's order and the flexibility bound.
    """
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
    """Per category, its open windows as (profile length, id), narrowest first; rebuilt with the
    state's topology (when a window opens, closes or changes profile)."""
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
