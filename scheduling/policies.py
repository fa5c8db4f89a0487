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
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from hall.domain.state import WindowState
from scheduling.priority import (
    PriorityTable,
    first_in_order,
    nth_issue,
    priority_table,
    seconds,
)
from scheduling.topology import Layout, layout

if TYPE_CHECKING:
    from hall.config import HallConfig
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
    one ticket per class however long the queue is (see :func:`first_in_order`).
    """
    if not table.head_start:  # no aging classes: the head of the queue is the answer
        first = state.tickets[state.queues[queue][0]]
        key = seconds(first.issued_at)
        return (first, key) if key < bound else (None, bound)
    found = first_in_order(state, table, state.lanes.get(queue), now)
    if found is None or found[0] >= bound:
        return None, bound
    return found[1], found[0]


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
            appointment = math.inf if ticket.appointment is None else seconds(ticket.appointment)
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
    plan = _plan(state, window_id)
    table = plan.table
    now_s = now.timestamp()
    if state.queues.get(plan.targeted):
        return aged_first(state, table, plan.targeted, now_s, math.inf)[0]
    queues, lanes, tickets, windows = state.queues, state.lanes, state.tickets, state.windows
    paused, by_class = WindowState.PAUSED, plan.by_class
    best: Ticket | None = None
    best_claim = math.inf
    for category, hold, lead, narrower in plan.claims:
        if by_class:
            found = first_in_order(state, table, lanes.get(category), now_s)
            if found is None:
                continue
            key, head = found
        else:  # no priority classes: arrival order is calling order
            queue = queues.get(category)
            if not queue:
                continue
            head = tickets[queue[0]]
            key = seconds(head.issued_at)
        if key + lead >= best_claim:  # the claim is at least the head's
            continue
        held = 0
        for other in narrower:
            if windows[other].state is not paused:
                held += 1
        if held == 0:
            claim = key
        elif held >= len(queues[category]):
            claim = key + hold
        elif by_class:
            claim = nth_issue(state, table, lanes[category], now_s, held, key + hold)
        else:
            claim = min(key + hold, seconds(tickets[queues[category][held]].issued_at))
        if claim + lead < best_claim:
            best, best_claim = head, claim + lead
    return best


@dataclass(frozen=True, slots=True)
class _Plan:
    """What :func:`reserve` reads at a window's every call that changes only with the layout,
    the config or the window's profile: for each category of the profile, in its order, the most
    its first ticket is held back and its lead (seconds: ``HOLD`` and ``LEAD`` of its mean
    service), and the other open windows that serve it with a shorter profile (those of them not
    paused when the window calls hold back its first tickets)."""

    profile: tuple[str, ...]
    table: PriorityTable
    by_class: bool  # some class has a head start: calling order is not arrival order
    targeted: str  # the window's ``@`` queue
    claims: tuple[tuple[str, float, float, tuple[str, ...]], ...]


# The last hall state asked about: the state, its layout version and config when its plans
# were found, its layout then, and the plans (shared by every state of that layout and config:
# the copies of the state that forward runs make). One state only: those copies come and go by
# the hundred, and keeping them would keep their tickets for the collector to walk and free.
_PLANS: dict[int, tuple[HallState, int, HallConfig, Layout, dict[str, _Plan]]] = {}
_BY_LAYOUT: dict[Layout, tuple[HallConfig, dict[str, _Plan]]] = {}


def _plan(state: HallState, window_id: str) -> _Plan:
    """The window's plan, found again when the state's layout changes (a window opened, closed
    or given another profile: ``layout_version``, as :mod:`scheduling.topology`), its config or
    the window's profile. Paused windows are read at each call: a forward run ends pauses
    without a layout change (:mod:`scheduling.forward`)."""
    cached = _PLANS.get(id(state))
    if (
        cached is None
        or cached[0] is not state
        or cached[1] != state.layout_version
        or cached[2] is not state.config
    ):
        current = layout(state)
        shared = _BY_LAYOUT.get(current)
        if shared is None or shared[0] is not state.config:
            if len(_BY_LAYOUT) > 256:  # a what-if tries a few hundred layouts
                _BY_LAYOUT.clear()
            shared = _BY_LAYOUT[current] = (state.config, {})
        _PLANS.clear()
        cached = (state, state.layout_version, state.config, current, shared[1])
        _PLANS[id(state)] = cached
    profile = state.windows[window_id].categories
    found = cached[4].get(window_id)
    if found is not None and found.profile == profile:
        return found
    table = priority_table(state.config)
    claims = tuple(
        (
            category,
            HOLD * table.service.get(category, DEFAULT_SERVICE),
            LEAD * table.service.get(category, DEFAULT_SERVICE),
            tuple(
                other
                for other, categories, closed in cached[3]
                if not closed
                and other != window_id
                and category in categories
                and len(categories) < len(profile)
            ),
        )
        for category in profile
    )
    found = _Plan(profile, table, bool(table.head_start), f"@{window_id}", claims)
    cached[4][window_id] = found
    return found
